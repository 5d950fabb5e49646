// Host-side helpers the .cu files share: CUDA errors as Status + message, and device buffers that
// only grow.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "mmcore/status.h"

namespace mmcore::cuda_util {

/// A CUDA failure as a Status with its reason in `error`; clears a non-sticky error so the next
/// call starts clean.
inline Status fail(ErrorText* error, const char* what, cudaError_t e) {
  error->set("CUDA: %s failed: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
  (void)cudaGetLastError();
  return e == cudaErrorMemoryAllocation ? Status::kNoMemory : Status::kDevice;
}

/// A device allocation that only grows.
struct DeviceBuffer {
  void* ptr = nullptr;
  std::size_t cap = 0;
  void release() {
    if (ptr != nullptr) (void)cudaFree(ptr);
    ptr = nullptr;
    cap = 0;
  }
  /// Grows to at least `bytes` (never shrinks); waits for `stream` first, since a kernel in flight
  /// may still read the old buffer.
  Status reserve(std::size_t bytes, cudaStream_t stream, ErrorText* error) {
    if (cap >= bytes) return Status::kOk;
    cudaError_t e = cudaStreamSynchronize(stream);
    if (e != cudaSuccess) return fail(error, "cudaStreamSynchronize", e);
    release();
    const std::size_t want = bytes + bytes / 4;
    e = cudaMalloc(&ptr, want);
    if (e != cudaSuccess) {
      ptr = nullptr;
      return fail(error, "cudaMalloc", e);
    }
    cap = want;
    return Status::kOk;
  }
};

}  // namespace mmcore::cuda_util

/// Returns the failure of a CUDA call from a function taking `ErrorText* error`.
#define MMCORE_CUDA_TRY(call)                                                                \
  do {                                                                                       \
    const cudaError_t mmcore_e_ = (call);                                                    \
    if (mmcore_e_ != cudaSuccess) return ::mmcore::cuda_util::fail(error, #call, mmcore_e_); \
  } while (0)
