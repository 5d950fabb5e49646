// GPU perceptual hashes from decoded pixels: imagehash-exact aHash, dHash, dHash-vertical, pHash
// and pHash-simple (hash_size 8), and reference-exact PDQ, for a batch of device-resident images
// (cuda/hash.cu).
//
// Contract
// - Bits: identical to the CPU's exact mode on the same decoded array (hash_image with
//   HashMode::kExact: Pillow's convert("L"), Pillow-exact LANCZOS resize, scipy-exact DCT,
//   numpy's median and mean). The GPU runs the CPU's own arithmetic: the luma formula, the
//   fixed-point taps and clip, the DCT and the mean come from shared __host__ __device__
//   headers, and the resize coefficients are the CPU's tables (resize_detail::compute_axis),
//   uploaded, not recomputed on the device. PDQ: hash_pdq.cpp's float32 operations in its
//   order per output, as non-fusing intrinsics; the DCT matrix is the CPU's, uploaded.
// - Input: uint8 HWC images with 1, 3 or 4 channels (alpha ignored), anywhere inside one device
//   buffer of `pixel_bytes` bytes, each described by a GpuImage (host array). Any size >= 1x1.
// - Output: `out` is caller-owned device memory of kGpuHashColumns * count uint64; the column
//   of HashKind k (k < kGpuHashColumns) is out[k * count + i]. Columns not asked for are not
//   written. Per record, statuses[i] (host) is kOk, or kUnsupported for a descriptor that is
//   invalid or reaches outside the buffer (its asked-for hashes are written as 0).
// - Errors: a CUDA failure returns Status::kDevice (kNoMemory when a device allocation failed)
//   with the reason in `error`; nothing aborts, throws (except std::bad_alloc) or prints.
// - Resources: a HashGpu owns its stream, its device scratch (grown on demand, reused across
//   calls) and a cache of resize tables; no global state. Its stream is a blocking one: it
//   starts after work queued on the legacy default stream (e.g. the cudaMemcpy of the pixels);
//   work on other streams must be synchronised by the caller. hash_batch returns when the
//   outputs are written (it synchronises its stream). Thread safety: one HashGpu per thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mmcore/hash.h"
#include "mmcore/status.h"

namespace mmcore {

/// One image inside a device buffer.
struct GpuImage {
  std::int64_t offset = 0;  ///< byte offset of pixel (0, 0) from the buffer's start
  std::int64_t stride = 0;  ///< bytes between rows, >= width * channels
  std::int32_t width = 0;
  std::int32_t height = 0;
  std::int32_t channels = 0;  ///< 1, 3 or 4
};

/// A usable descriptor: positive size, 1/3/4 channels, a stride that holds a row, and every byte
/// of the image inside a buffer of `bytes` (checked by division: descriptors come from callers, and
/// no product of a hostile stride and height may overflow).
inline bool gpu_image_fits(const GpuImage& im, std::int64_t bytes) {
  const std::int64_t row = static_cast<std::int64_t>(im.width) * im.channels;
  if (im.width <= 0 || im.height <= 0 || (im.channels != 1 && im.channels != 3 && im.channels != 4) ||
      im.offset < 0 || im.stride < row)
    return false;
  if (bytes < 0 || im.offset > bytes || row > bytes - im.offset) return false;
  return im.height - 1 <= (bytes - im.offset - row) / im.stride;  // rows after the first
}

/// Output columns of HashGpu::hash_batch: HashKind values 0..4 (aHash .. pHash-simple).
constexpr int kGpuHashColumns = 5;
/// The kinds the GPU computes, as a HashRequest::kinds mask.
constexpr std::uint32_t kGpuHashKinds = (1u << kGpuHashColumns) - 1;

/// A device as the reports print it.
struct GpuDeviceInfo {
  char name[256] = {0};
  std::int32_t multiprocessors = 0;
  std::int32_t major = 0;  ///< compute capability
  std::int32_t minor = 0;
  std::int64_t total_memory = 0;  ///< bytes
  std::int32_t driver_version = 0;
  std::int32_t runtime_version = 0;
};

/// Describes device `device`; kDevice with the reason (e.g. "no CUDA device") when unusable.
Status gpu_device_info(std::int32_t device, GpuDeviceInfo* info, ErrorText* error);

class HashGpu {
 public:
  HashGpu();
  ~HashGpu();
  HashGpu(const HashGpu&) = delete;
  HashGpu& operator=(const HashGpu&) = delete;

  /// Binds to `device` and creates the stream; kDevice with the reason on failure.
  Status init(std::int32_t device, ErrorText* error);

  /// Hashes `count` images of `pixels` (device memory, `pixel_bytes` long) into `out` (device
  /// memory, see the header comment) for the kinds in `kinds` (a non-empty subset of
  /// kGpuHashKinds; anything else returns kUnsupported and computes nothing).
  Status hash_batch(const std::uint8_t* pixels, std::int64_t pixel_bytes, const GpuImage* images,
                    std::int32_t count, std::uint32_t kinds, std::uint64_t* out, Status* statuses,
                    ErrorText* error);

  /// PDQ in reference mode (hash_image's HashMode::kExact: images over 512 px squashed to
  /// 512x512, the C++ reference's float32 luma) of the same kind of batch: hash i's 32 bytes
  /// (PdqHash::bytes order) at hashes + 32 * i and its quality at quality[i], both device
  /// memory. Images under 5 px on a side give a zero hash and quality 0 with kOk, as on the
  /// CPU; invalid descriptors give the same with kUnsupported. No dihedral variants.
  Status pdq_batch(const std::uint8_t* pixels, std::int64_t pixel_bytes, const GpuImage* images,
                   std::int32_t count, std::uint8_t* hashes, std::int32_t* quality, Status* statuses,
                   ErrorText* error);

  /// The stream the kernels run on (a cudaStream_t), for callers that order their own work.
  void* stream() const;

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace mmcore
