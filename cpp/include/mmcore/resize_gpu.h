// GPU resize of a batch of device-resident images (cuda/resize.cu).
//
// Contract
// - Pixels: identical to mmcore::resize (resize.h) on the same image, size and filter, hence to
//   Pillow 13: the CPU's coefficient tables (resize_detail::compute_axis, nearest_index) are
//   uploaded, not recomputed; the fixed-point taps, clip and pass order (horizontal first, or
//   vertical first when the height shrinks by more than twice as many pixels as the width; an axis
//   that keeps its size is not resampled; the same size is a copy) are resize.cpp's, through
//   resize_gpu_internal.h's __host__ __device__ code that the CPU test runs too.
// - Input: uint8 HWC images (1, 3 or 4 channels) in one device buffer of `pixel_bytes`, each a
//   GpuImage; output: dst[i] (same channels, any size >= 1x1) in one device buffer of `out_bytes`.
//   Per record, statuses[i] (host) is kOk, or kUnsupported for a descriptor pair that is invalid,
//   reaches outside its buffer or mixes channel counts (its output is left untouched).
//   Output regions must not overlap each other or the inputs.
// - Errors: a CUDA failure returns Status::kDevice (kNoMemory when a device allocation failed)
//   with the reason in `error`; nothing aborts, throws (except std::bad_alloc) or prints.
// - Resources: a ResizeGpu owns its stream, its device scratch (intermediate images of two-pass
//   records, grown on demand) and the coefficient tables of a call. Its stream is a blocking one;
//   resize_batch returns when the outputs are written. One ResizeGpu per thread.
#pragma once

#include <cstdint>

#include "mmcore/hash_gpu.h"
#include "mmcore/resize.h"
#include "mmcore/status.h"

namespace mmcore {

class ResizeGpu {
 public:
  ResizeGpu();
  ~ResizeGpu();
  ResizeGpu(const ResizeGpu&) = delete;
  ResizeGpu& operator=(const ResizeGpu&) = delete;

  /// Binds to `device` and creates the stream; kDevice with the reason on failure.
  Status init(std::int32_t device, ErrorText* error);

  Status resize_batch(const std::uint8_t* pixels, std::int64_t pixel_bytes, const GpuImage* src,
                      std::int32_t count, std::uint8_t* out, std::int64_t out_bytes, const GpuImage* dst,
                      Filter filter, Status* statuses, ErrorText* error);

  /// The stream the kernels run on (a cudaStream_t).
  void* stream() const;

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace mmcore
