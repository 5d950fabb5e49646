// Host-side helpers the .cu files share: CUDA errors as Status + message, and device buffers that
// only grow.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

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

/// Binds to `device` (kDevice "no CUDA device" when it does not exist) and creates a stream, by
/// default a blocking one: it waits for work the caller queued on the legacy default stream
/// (plain cudaMemcpy / cudaMemset of inputs or outputs), so no extra synchronisation is needed.
inline Status open_stream(const char* owner, std::int32_t bound_device, std::int32_t device,
                          cudaStream_t* stream, ErrorText* error, unsigned flags = cudaStreamDefault) {
  if (*stream != nullptr) {
    error->set("%s::init: already bound to device %d", owner, bound_device);
    return Status::kUnsupported;
  }
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) return fail(error, "cudaGetDeviceCount", e);
  if (n == 0 || device < 0 || device >= n) {
    error->set("no CUDA device %d (%d present)", device, n);
    return Status::kDevice;
  }
  e = cudaSetDevice(device);
  if (e == cudaSuccess) e = cudaStreamCreateWithFlags(stream, flags);
  if (e != cudaSuccess) {
    *stream = nullptr;
    return fail(error, "cudaSetDevice / cudaStreamCreateWithFlags", e);
  }
  return Status::kOk;
}

/// Makes `device` current while it lives, then gives the thread its previous device back (a
/// destructor must not change the caller's device).
class DeviceGuard {
 public:
  explicit DeviceGuard(std::int32_t device) {
    restore_ = cudaGetDevice(&previous_) == cudaSuccess && previous_ != device;
    (void)cudaSetDevice(device);
  }
  ~DeviceGuard() {
    if (restore_) (void)cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
  bool restore_ = false;
};

/// Waits for `stream`, frees `buffers` and destroys the stream (a destructor's cleanup; errors
/// are ignored).
template <class... Buffers>
void close_stream(std::int32_t device, cudaStream_t stream, Buffers&... buffers) {
  if (stream == nullptr) return;
  const DeviceGuard guard(device);
  (void)cudaStreamSynchronize(stream);
  (buffers.release(), ...);
  (void)cudaStreamDestroy(stream);
}

}  // namespace mmcore::cuda_util

/// Returns the failure of a CUDA call from a function taking `ErrorText* error`.
#define MMCORE_CUDA_TRY(call)                                                                \
  do {                                                                                       \
    const cudaError_t mmcore_e_ = (call);                                                    \
    if (mmcore_e_ != cudaSuccess) return ::mmcore::cuda_util::fail(error, #call, mmcore_e_); \
  } while (0)
