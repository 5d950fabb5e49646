// ResizeGpu (resize_gpu.h): one launch per pass over a chunk of records; thread t of a block
// computes output bytes of the block's record with resize_gpu_internal.h's resize_byte(), the code
// tests/cpp/test_resize_gpu_emu.cpp runs on the CPU. Records go in chunks whose intermediates fit
// kScratchCap (one oversized record is a chunk alone).
#include <cuda_runtime.h>

#include "cuda_util.cuh"
#include "mmcore/resize_gpu.h"
#include "resize_gpu_internal.h"

namespace mmcore {
namespace {

namespace g = gpu_detail;
using cuda_util::DeviceBuffer;

__global__ void __launch_bounds__(g::kResizeThreads)
    resize_kernel(int pass, const g::ResizeRecordPlan* plans, const std::int64_t* first_block,
                  std::int32_t count, const std::int32_t* arena, const std::uint8_t* pixels,
                  std::uint8_t* scratch, std::uint8_t* out) {
  __shared__ std::int32_t record;
  if (threadIdx.x == 0) record = g::block_record(first_block, count, blockIdx.x);
  __syncthreads();
  const g::ResizePass& p = plans[record].pass[pass];
  const std::int64_t total = g::pass_bytes(p);
  const std::int64_t base =
      (static_cast<std::int64_t>(blockIdx.x) - first_block[record]) * g::kResizeBlockBytes;
  for (int e = 0; e < g::kResizeBytesPerThread; ++e) {
    const std::int64_t i = base + static_cast<std::int64_t>(e) * g::kResizeThreads + threadIdx.x;
    if (i < total) g::resize_byte(p, arena, pixels, scratch, out, i);
  }
}

}  // namespace

struct ResizeGpu::Impl {
  std::int32_t device = -1;
  cudaStream_t stream = nullptr;
  DeviceBuffer plans_dev, arena_dev, blocks_dev, scratch_dev;
  g::ResizePlanner planner;

  ~Impl() { cuda_util::close_stream(device, stream, plans_dev, arena_dev, blocks_dev, scratch_dev); }
};

ResizeGpu::ResizeGpu() : impl_(new Impl) {}

ResizeGpu::~ResizeGpu() {
  delete impl_;
}

void* ResizeGpu::stream() const {
  return impl_->stream;
}

Status ResizeGpu::init(std::int32_t device, ErrorText* error) {
  const Status s = cuda_util::open_stream("ResizeGpu", impl_->device, device, &impl_->stream, error);
  if (s == Status::kOk) impl_->device = device;
  return s;
}

Status ResizeGpu::resize_batch(const std::uint8_t* pixels, std::int64_t pixel_bytes, const GpuImage* src,
                               std::int32_t count, std::uint8_t* out, std::int64_t out_bytes,
                               const GpuImage* dst, Filter filter, Status* statuses, ErrorText* error) {
  Impl& m = *impl_;
  if (m.stream == nullptr) {
    error->set("ResizeGpu::resize_batch: call init() first");
    return Status::kUnsupported;
  }
  if (const char* problem = g::resize_batch_problem(count, pixels, src, out, dst, statuses, filter)) {
    error->set("ResizeGpu::resize_batch: %s (count %d, filter %d)", problem, count, static_cast<int>(filter));
    return Status::kUnsupported;
  }
  if (count == 0) return Status::kOk;
  MMCORE_CUDA_TRY(cudaSetDevice(m.device));
  constexpr std::int64_t kScratchCap = std::int64_t{1} << 30;
  g::ResizePlanner& plan = m.planner;
  for (std::int32_t first = 0; first < count;) {
    std::int32_t end = first;
    std::int64_t scratch = 0;
    while (end < count) {
      const std::int64_t need =
          g::resize_record_problem(src[end], dst[end], pixel_bytes, out_bytes) == nullptr
              ? g::ResizePlanner::record_scratch(src[end], dst[end], filter)
              : 0;
      if (end > first && scratch + need > kScratchCap) break;
      scratch += need;
      ++end;
    }
    const std::int32_t n = end - first;
    plan.plan(src + first, dst + first, n, pixel_bytes, out_bytes, filter, statuses + first);
    const std::size_t plan_bytes = plan.plans.size() * sizeof(g::ResizeRecordPlan);
    const std::size_t arena_bytes = (plan.arena.size() + 1) * sizeof(std::int32_t);
    const std::size_t block_bytes = 2 * (static_cast<std::size_t>(n) + 1) * sizeof(std::int64_t);
    Status s = m.plans_dev.reserve(plan_bytes, m.stream, error);
    if (s == Status::kOk) s = m.arena_dev.reserve(arena_bytes, m.stream, error);
    if (s == Status::kOk) s = m.blocks_dev.reserve(block_bytes, m.stream, error);
    if (s == Status::kOk)
      s = m.scratch_dev.reserve(static_cast<std::size_t>(plan.scratch_bytes) + 16, m.stream, error);
    if (s != Status::kOk) return s;
    auto* blocks = static_cast<std::int64_t*>(m.blocks_dev.ptr);
    MMCORE_CUDA_TRY(
        cudaMemcpyAsync(m.plans_dev.ptr, plan.plans.data(), plan_bytes, cudaMemcpyHostToDevice, m.stream));
    if (!plan.arena.empty()) {
      MMCORE_CUDA_TRY(cudaMemcpyAsync(m.arena_dev.ptr, plan.arena.data(),
                                      plan.arena.size() * sizeof(std::int32_t), cudaMemcpyHostToDevice,
                                      m.stream));
    }
    for (int p = 0; p < 2; ++p) {
      MMCORE_CUDA_TRY(cudaMemcpyAsync(blocks + p * (n + 1), plan.first_block[p].data(),
                                      (static_cast<std::size_t>(n) + 1) * sizeof(std::int64_t),
                                      cudaMemcpyHostToDevice, m.stream));
    }
    for (int p = 0; p < 2; ++p) {
      if (plan.blocks[p] == 0) continue;
      resize_kernel<<<static_cast<unsigned>(plan.blocks[p]), g::kResizeThreads, 0, m.stream>>>(
          p, static_cast<const g::ResizeRecordPlan*>(m.plans_dev.ptr), blocks + p * (n + 1), n,
          static_cast<const std::int32_t*>(m.arena_dev.ptr), pixels,
          static_cast<std::uint8_t*>(m.scratch_dev.ptr), out);
      MMCORE_CUDA_TRY(cudaGetLastError());
    }
    // The planner's host vectors are rewritten for the next chunk: wait for this one.
    MMCORE_CUDA_TRY(cudaStreamSynchronize(m.stream));
    first = end;
  }
  return Status::kOk;
}

}  // namespace mmcore
