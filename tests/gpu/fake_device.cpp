// A CPU stand-in for the CUDA runtime calls tests/gpu/gpu_check.cpp makes and for HashGpu
// (through the kernel emulator), so that gpu_check.cpp's own logic (batch packing, poisoning,
// column layout, contract checks, report, bench loop) runs end to end on a machine without a
// GPU: CMake target mmcore_gpu_check_emulated, run by bench/gpu_check_prepare.sh before the
// real binary is carried to a GPU host. "Device" memory is host memory here. Only the calls
// gpu_check.cpp uses are defined; the real runtime is not linked.
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernel_emulator.h"
#include "mmcore/hash_gpu.h"

struct CUevent_st {
  double seconds = 0;
};

extern "C" {

cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
cudaError_t cudaMalloc(void** p, size_t n) {
  *p = std::malloc(n == 0 ? 1 : n);
  return *p != nullptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind) {
  std::memcpy(dst, src, n);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* p, int v, size_t n) {
  std::memset(p, v, n);
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() {
  return cudaSuccess;
}
const char* cudaGetErrorString(cudaError_t) {
  return "error (CPU emulation)";
}
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = new CUevent_st;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  e->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) {
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = static_cast<float>((b->seconds - a->seconds) * 1e3);
  return cudaSuccess;
}

}  // extern "C"

namespace mmcore {

Status gpu_device_info(std::int32_t device, GpuDeviceInfo* info, ErrorText* error) {
  if (device != 0) {
    error->set("no CUDA device %d (CPU emulation has one)", device);
    return Status::kDevice;
  }
  std::snprintf(info->name, sizeof info->name, "CPU emulation of cuda/hash.cu (no GPU)");
  return Status::kOk;
}

struct HashGpu::Impl {
  bool ready = false;
};

HashGpu::HashGpu() : impl_(new Impl) {}
HashGpu::~HashGpu() {
  delete impl_;
}
void* HashGpu::stream() const {
  return nullptr;
}
Status HashGpu::init(std::int32_t device, ErrorText* error) {
  GpuDeviceInfo info;
  const Status s = gpu_device_info(device, &info, error);
  impl_->ready = s == Status::kOk;
  return s;
}

// The same argument checks as cuda/hash.cu, then the emulated kernel (threads backwards, blocks
// interleaved: the order that exposes races).
Status HashGpu::hash_batch(const std::uint8_t* pixels, std::int64_t pixel_bytes, const GpuImage* images,
                           std::int32_t count, std::uint32_t kinds, std::uint64_t* out, Status* statuses,
                           ErrorText* error) {
  if (!impl_->ready) {
    error->set("HashGpu::hash_batch: call init() first");
    return Status::kUnsupported;
  }
  if (kinds == 0 || (kinds & ~kGpuHashKinds) != 0) {
    error->set("HashGpu::hash_batch: kinds mask 0x%x is empty or names a kind the GPU lacks", kinds);
    return Status::kUnsupported;
  }
  if (const char* problem = gpu_detail::batch_args_problem(count, pixels, images, out, out, statuses)) {
    error->set("HashGpu::hash_batch: %s (count %d)", problem, count);
    return Status::kUnsupported;
  }
  if (!mmcore_test::emulate_hash_batch(pixels, pixel_bytes, images, count, kinds, std::int64_t{1} << 30, true,
                                       true, out, statuses)) {
    error->set("emulated planner made no progress");
    return Status::kDevice;
  }
  return Status::kOk;
}

Status HashGpu::pdq_batch(const std::uint8_t* pixels, std::int64_t pixel_bytes, const GpuImage* images,
                          std::int32_t count, std::uint8_t* hashes, std::int32_t* quality, Status* statuses,
                          ErrorText* error) {
  if (!impl_->ready) {
    error->set("HashGpu::pdq_batch: call init() first");
    return Status::kUnsupported;
  }
  if (const char* problem =
          gpu_detail::batch_args_problem(count, pixels, images, hashes, quality, statuses)) {
    error->set("HashGpu::pdq_batch: %s (count %d)", problem, count);
    return Status::kUnsupported;
  }
  // 64 resident blocks, or fewer under MMCORE_GPU_PDQ_BLOCKS, as the device's pdq_batch caps them.
  const std::int64_t cap = gpu_detail::pdq_blocks_from_env();
  const std::int64_t resident = cap > 0 && cap < 64 ? cap : 64;
  if (!mmcore_test::emulate_pdq_batch(pixels, pixel_bytes, images, count, resident, std::int64_t{1} << 30,
                                      true, true, hashes, quality, statuses,
                                      gpu_detail::pdq_layout_from_env())) {
    error->set("emulated PDQ planner made no progress");
    return Status::kDevice;
  }
  return Status::kOk;
}

}  // namespace mmcore
