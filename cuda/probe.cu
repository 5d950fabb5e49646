// Proves the CUDA path builds and links; the GPU kernel families live beside it (cuda/<family>.cu).
#include <cuda_runtime.h>

#include <cstdio>

#include "mmcore/cuda_probe.h"

namespace mmcore {
namespace {

__global__ void probe_kernel(int* out) {
  *out = 42;
}

}  // namespace

int cuda_device_count(char* msg, std::size_t msg_cap) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    std::snprintf(msg, msg_cap, "%s", cudaGetErrorString(e));
    (void)cudaGetLastError();
    return 0;
  }
  if (n == 0) {
    std::snprintf(msg, msg_cap, "no CUDA device");
    return 0;
  }
  // Run one kernel so "available" means a kernel of this build actually executes here.
  int* d = nullptr;
  int h = 0;
  if (cudaMalloc(&d, sizeof(int)) != cudaSuccess) {
    std::snprintf(msg, msg_cap, "cudaMalloc failed");
    (void)cudaGetLastError();
    return 0;
  }
  probe_kernel<<<1, 1>>>(d);
  const cudaError_t k = cudaMemcpy(&h, d, sizeof(int), cudaMemcpyDeviceToHost);
  cudaFree(d);
  if (k != cudaSuccess || h != 42) {
    std::snprintf(msg, msg_cap, "probe kernel failed: %s", cudaGetErrorString(k));
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

int cuda_runtime_version() {
  return CUDART_VERSION;
}

}  // namespace mmcore
