// JPEG decode on the GPU with nvJPEG (cuda/decode_nvjpeg.cu), straight into device memory laid out
// as HashGpu reads it (GpuImage records in one buffer): decode -> hash without a host round trip.
//
// Contract
// - nvJPEG is loaded by init() with dlopen (libnvjpeg.so.13: $MMCORE_NVJPEG if set, else the
//   loader's search path), never linked: mmcore builds and imports where it is absent, and init()
//   says why it cannot decode (Status::kDevice).
// - plan() runs on the CPU only: mmcore's own header parse (decode_info: the same statuses and
//   messages as mmcore.decode, the pixel limit checked before anything is allocated) gives each
//   JPEG its GpuImage (RGB, 3 channels, stored orientation, rows packed, offsets 256-byte
//   aligned) and the device bytes the batch needs; a non-JPEG gets kUnsupported ("decode it on
//   the CPU"), a bad header its status.
// - decode() fills a caller's device buffer for the images plan() accepted: the hardware engine
//   (NVJPEG_BACKEND_HARDWARE, batched) for the bitstreams it takes, nvJPEG's default backend one by
//   one for the others and for the images of a hardware batch that failed; an image nvJPEG refuses
//   gets kCorrupt / kUnsupported with nvJPEG's reason and leaves the others alone. It returns when
//   the pixels are written (the stream is synchronised).
// - Pixels are nvJPEG's (its IDCT and chroma upsampling): close to libjpeg-turbo's, not equal, so
//   hashes from them are not imagehash-exact (bench/gpu_check.sh measures the difference).
// - Errors: a CUDA or nvJPEG failure of the whole call is kDevice (kNoMemory for an allocation)
//   with the reason; nothing aborts, throws (except std::bad_alloc) or prints. No global state:
//   a DecodeGpu owns its library handle, nvJPEG handles, states and stream. Thread safety: one per
//   thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mmcore/hash_gpu.h"
#include "mmcore/status.h"

namespace mmcore {

/// What decode() did.
struct DecodeGpuStats {
  std::int32_t hardware = 0;  ///< images the hardware engine decoded
  std::int32_t fallback = 0;  ///< images decoded one by one by the default backend
  std::int32_t failed = 0;    ///< images nvJPEG refused (their status says why)
  bool hardware_available = false;
};

class DecodeGpu {
 public:
  DecodeGpu();
  ~DecodeGpu();
  DecodeGpu(const DecodeGpu&) = delete;
  DecodeGpu& operator=(const DecodeGpu&) = delete;

  /// Loads nvJPEG, binds to `device`, creates the handles and the stream; kDevice with the reason
  /// (no library, no device, no driver) on failure.
  Status init(std::int32_t device, ErrorText* error);

  /// CPU only (no init needed): per image its descriptor or a failure status and message, and the
  /// total device bytes. images / statuses / messages: n each, caller-owned.
  static void plan(const std::uint8_t* const* data, const std::size_t* sizes, std::int32_t n,
                   std::int64_t max_pixels, GpuImage* images, Status* statuses, ErrorText* messages,
                   std::int64_t* total_bytes);

  /// Decodes the images whose status plan() left OK / OK_WARNING into `pixels` (device memory of
  /// `pixel_bytes` >= plan's total); statuses / messages are updated per image. Returns kOk, or
  /// kDevice / kNoMemory when the call itself failed (then the statuses of the images it did not
  /// reach are kDevice too). Runs on the decoder's own non-blocking stream and returns once it is
  /// done: work the caller queued that touches `pixels` must be finished (host-synchronised)
  /// before the call. Binds the init() device for the call.
  Status decode(const std::uint8_t* const* data, const std::size_t* sizes, std::int32_t n,
                const GpuImage* images, Status* statuses, ErrorText* messages, std::uint8_t* pixels,
                std::int64_t pixel_bytes, ErrorText* error, DecodeGpuStats* stats = nullptr);

  /// The stream the decode runs on (a cudaStream_t).
  void* stream() const;

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace mmcore
