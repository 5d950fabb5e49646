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
// - decode() fills a caller's device buffer for the images plan() accepted. Where the GPU has the
//   hardware engine (A100, H100, H200): one hardware batch (NVJPEG_BACKEND_HARDWARE) for the
//   bitstreams nvJPEG's parse says it takes (baseline), while the others (progressive, damaged
//   headers) are decoded at the same time on every host thread by mmcore's CPU decoder
//   (decode_into: Pillow's pixels, the CPU path's statuses and messages) and copied into place. A
//   hardware batch that fails is split in halves and retried until the images that fail it alone
//   are found; those go to the CPU decoder too. Without the engine: nvJPEG's default backend,
//   batched, then one by one for a batch it refuses; an image it refuses gets kCorrupt /
//   kUnsupported with nvJPEG's reason. One bad image never spoils the others. decode() returns when
//   the pixels are written (the stream is synchronised).
// - Pixels of the GPU decoders are nvJPEG's (its IDCT and chroma upsampling): close to
//   libjpeg-turbo's, not equal, so hashes from them are not imagehash-exact (bench/gpu_check.sh
//   measures the difference); the CPU-decoded images are exact.
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

/// What decode() did, and where its time went (wall seconds of each phase).
struct DecodeGpuStats {
  std::int32_t hardware = 0;  ///< images the hardware engine decoded
  std::int32_t fallback = 0;  ///< images nvJPEG's default backend decoded (GPUs without the engine)
  std::int32_t cpu = 0;       ///< images mmcore's CPU decoder decoded (those the engine does not take)
  std::int32_t failed = 0;    ///< images refused (their status says why)
  bool hardware_available = false;
  double cpu_share = 0;         ///< the share of the engine's pixels given to the CPU decoder
  double screen_seconds = 0;    ///< descriptor checks and nvJPEG's parse (all host threads)
  double hardware_seconds = 0;  ///< the hardware batches, until their pixels are written
  double cpu_seconds = 0;       ///< the CPU decodes (overlapping the hardware batch) and uploads
  double fallback_seconds = 0;  ///< the default backend
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

  /// Where the GPU has the hardware engine, the share (0..1) of the pixels the engine could take
  /// that decode() gives to mmcore's CPU decoder instead, so that the host threads work while the
  /// engine does (the engine alone is slower than a many-core host: ~2 Gpx/s on an H200, about
  /// 14 host threads' worth). The split is by pixels, in index order (the same batch and share
  /// always split the same way). Negative (the default): auto_cpu_share(host threads); 0: the
  /// engine takes all it can; >= 1: every image on the CPU decoder, on any GPU (exact pixels,
  /// those of mmcore::decode_into, straight into device memory; no nvJPEG parse).
  void set_cpu_share(double share);

  /// Host threads for the checks, the screen and the CPU decoder (<= 0, the default: all).
  void set_host_threads(std::int32_t threads);

  /// threads x kCpuPixelsPerThread / (that + kEnginePixelsPerSecond): the share that makes both
  /// finish together at the rates measured on an H200 host.
  static double auto_cpu_share(std::int32_t threads);
  static constexpr double kEnginePixelsPerSecond = 2.1e9;  ///< H200's engines, ImageNet-like JPEGs
  static constexpr double kCpuPixelsPerThread = 1.4e8;     ///< decode_into on one Xeon thread

  /// The stream the decode runs on (a cudaStream_t).
  void* stream() const;

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace mmcore
