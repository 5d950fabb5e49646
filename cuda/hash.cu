// GPU aHash, dHash, dHash-vertical, pHash and pHash-simple, imagehash-exact, and PDQ,
// reference-exact (hash_gpu.h).
//
// The host plans each chunk of images (hash_gpu_internal.h's Planner: descriptor checks, the
// pass order of every resize target exactly as resize() picks it, scratch placement, and the
// CPU's own LANCZOS tables in one arena), uploads plans and arena, and launches one block per
// image. The block runs hash_gpu_internal.h's phases with a barrier between each: the same
// __host__ __device__ code that tests/cpp/test_hash_gpu_emu.cpp runs on the CPU. PDQ likewise
// with hash_pdq_gpu_internal.h's PdqPlanner and phases.
#include <cuda_runtime.h>

#include <cstdio>

#include "cuda_util.cuh"
#include "hash_gpu_internal.h"
#include "hash_internal.h"
#include "hash_pdq_gpu_internal.h"
#include "mmcore/hash_gpu.h"

namespace mmcore {
namespace {

using cuda_util::DeviceBuffer;

using gpu_detail::ImagePlan;
using gpu_detail::kThreads;

__global__ void __launch_bounds__(kThreads)
    hash_kernel(const std::uint8_t* pixels, const ImagePlan* plans, const std::int32_t* arena,
                std::uint8_t* scratch, std::uint64_t* out, std::int64_t column_stride, std::int64_t out_first,
                std::uint32_t kinds, detail::DctTwiddles twiddles) {
  __shared__ gpu_detail::BlockShared sh;
  const gpu_detail::BlockArgs a{pixels,        plans + blockIdx.x,     arena, scratch,  out,
                                column_stride, out_first + blockIdx.x, kinds, &twiddles};
  const int tid = static_cast<int>(threadIdx.x);
  if (!a.plan->valid) {  // the same for every thread of the block: no barrier is half-reached
    gpu_detail::store_invalid(a, tid);
    return;
  }
  for (int phase = 0; phase < gpu_detail::kPhases; ++phase) {
    gpu_detail::run_phase(phase, a, sh, tid, kThreads);
    // Also makes this block's global scratch writes visible to its other threads.
    __syncthreads();
  }
}

/// Resident blocks take images in turn from *next (zeroed before the launch); each block's scratch
/// is its own slot. `phases` < kPdqPhases stops each image early (MMCORE_GPU_PDQ_PHASES: the
/// bench's per-phase profile; the hashes are then not written); `layout` is the blur's buffer
/// layout (MMCORE_GPU_PDQ_LAYOUT): 0 or 1 in pdq_kernel<M, kPdqPlain>, layout 2 (the ring) in
/// pdq_kernel<M, kPdqRing>, layout 3 (the blur in shared memory: a gpu_detail::PdqStream of
/// dynamic shared memory, no scratch) in pdq_kernel<2, kPdqStream>, so that no build carries
/// another's code (registers). MinBlocks: 4 (63 registers, no spills: 4 blocks per SM, as the
/// compiler's own choice of 64 gave) or 8 (MMCORE_GPU_PDQ_OCCUPANCY=8: 32 registers, some
/// spilled; what the bench compares); layout 3's shared memory (~108 KB a block) allows 2.
enum PdqVariant : int { kPdqPlain = 0, kPdqRing = 1, kPdqStream = 2 };

template <int MinBlocks, int Variant>
__global__ void __launch_bounds__(kThreads, MinBlocks)
    pdq_kernel(const std::uint8_t* pixels, const gpu_detail::PdqPlan* plans, std::int32_t count,
               const float* dct, std::uint8_t* scratch, std::int64_t slot_bytes, std::uint8_t* hashes,
               std::int32_t* quality, std::int32_t* next, int phases, std::int32_t layout_arg) {
  const std::int32_t layout = Variant == kPdqRing     ? gpu_detail::kPdqLayoutRing
                              : Variant == kPdqStream ? gpu_detail::kPdqLayoutStream
                                                      : (layout_arg & 1);
  __shared__ gpu_detail::PdqShared sh;
  extern __shared__ float4 pdq_dynamic_shared[];  // layout 3's PdqStream (launched with its size)
  __shared__ std::int32_t image;
  const int tid = static_cast<int>(threadIdx.x);
  std::uint8_t* slot = scratch + static_cast<std::int64_t>(blockIdx.x) * slot_bytes;
  for (;;) {
    if (tid == 0) image = atomicAdd(next, 1);
    __syncthreads();
    const std::int32_t i = image;
    if (i >= count) return;  // the same for every thread of the block
    gpu_detail::PdqArgs a{pixels, plans + i, dct, slot, hashes, quality, i, layout};
    if (Variant == kPdqStream) a.stream = reinterpret_cast<gpu_detail::PdqStream*>(pdq_dynamic_shared);
    if (a.plan->mode == gpu_detail::kPdqZero) {
      gpu_detail::pdq_store_zero(a, tid);
    } else {
      for (int phase = 0; phase < phases; ++phase) {
        const int steps = gpu_detail::pdq_phase_steps(phase, a);
        for (int step = 0; step < steps; ++step) {
          gpu_detail::pdq_run_phase(phase, step, a, sh, tid, kThreads);
          __syncthreads();
        }
      }
    }
    // Every thread has read `image` (and finished with the slot) before thread 0 takes the next.
    __syncthreads();
  }
}

using PdqKernel = void (*)(const std::uint8_t*, const gpu_detail::PdqPlan*, std::int32_t, const float*,
                           std::uint8_t*, std::int64_t, std::uint8_t*, std::int32_t*, std::int32_t*, int,
                           std::int32_t);

/// pdq_kernel built for 8 blocks per SM (or 4) for a PdqVariant; layout 3's has one build.
PdqKernel pdq_kernel_for(int occupancy8, int variant) {
  if (variant == kPdqStream) return pdq_kernel<2, kPdqStream>;
  if (occupancy8 != 0) return variant == kPdqRing ? pdq_kernel<8, kPdqRing> : pdq_kernel<8, kPdqPlain>;
  return variant == kPdqRing ? pdq_kernel<4, kPdqRing> : pdq_kernel<4, kPdqPlain>;
}

/// The PdqVariant that runs a blur layout.
int pdq_variant(std::int32_t layout) {
  return layout == gpu_detail::kPdqLayoutRing     ? kPdqRing
         : layout == gpu_detail::kPdqLayoutStream ? kPdqStream
                                                  : kPdqPlain;
}

// Layout 3's launch bounds promise 2 blocks per SM: both blocks' shared memory (and the 1 KB the
// hardware reserves per block) must fit the 228 KB of an sm_90 SM (sm_80: 164 KB, so 1 there).
static_assert(2 * (sizeof(gpu_detail::PdqShared) + sizeof(gpu_detail::PdqStream) + 1024) <= 228 * 1024,
              "layout 3's shared memory no longer lets 2 blocks share an SM");

/// Dynamic shared memory a variant's launch takes.
std::size_t pdq_dynamic_bytes(int variant) {
  return variant == kPdqStream ? sizeof(gpu_detail::PdqStream) : 0;
}

// ---- host side -------------------------------------------------------------------------------

}  // namespace

Status gpu_device_info(std::int32_t device, GpuDeviceInfo* info, ErrorText* error) {
  int n = 0;
  MMCORE_CUDA_TRY(cudaGetDeviceCount(&n));
  if (n == 0 || device < 0 || device >= n) {
    error->set("no CUDA device %d (%d present)", device, n);
    return Status::kDevice;
  }
  cudaDeviceProp prop;
  MMCORE_CUDA_TRY(cudaGetDeviceProperties(&prop, device));
  std::snprintf(info->name, sizeof info->name, "%s", prop.name);
  info->multiprocessors = prop.multiProcessorCount;
  info->major = prop.major;
  info->minor = prop.minor;
  info->total_memory = static_cast<std::int64_t>(prop.totalGlobalMem);
  MMCORE_CUDA_TRY(cudaDriverGetVersion(&info->driver_version));
  MMCORE_CUDA_TRY(cudaRuntimeGetVersion(&info->runtime_version));
  return Status::kOk;
}

struct HashGpu::Impl {
  std::int32_t device = -1;
  /// pdq_kernel blocks the device holds at once, by [8 blocks per SM][PdqVariant]; 0: that
  /// variant cannot run here (layout 3 where a block cannot have its shared memory).
  std::int64_t pdq_resident[2][3] = {{1, 1, 0}, {1, 1, 0}};
  cudaStream_t stream = nullptr;
  DeviceBuffer plans_dev, arena_dev, scratch_dev, pdq_plans_dev, pdq_dct_dev;
  gpu_detail::Planner planner;
  gpu_detail::PdqPlanner pdq_planner;

  ~Impl() {
    cuda_util::close_stream(device, stream, plans_dev, arena_dev, scratch_dev, pdq_plans_dev, pdq_dct_dev);
  }

  /// PDQ's DCT matrix: the CPU's floats, uploaded once.
  Status upload_pdq_dct(ErrorText* error) {
    float dct[gpu_detail::kPdqDct * gpu_detail::kPdqGrid];
    detail::pdq_dct_matrix(dct);
    const Status r = reserve(&pdq_dct_dev, sizeof dct, error);
    if (r != Status::kOk) return r;
    MMCORE_CUDA_TRY(cudaMemcpy(pdq_dct_dev.ptr, dct, sizeof dct, cudaMemcpyHostToDevice));
    return Status::kOk;
  }

  Status reserve(DeviceBuffer* b, std::size_t bytes, ErrorText* error) {
    return b->reserve(bytes, stream, error);
  }
};

HashGpu::HashGpu() : impl_(new Impl) {}

HashGpu::~HashGpu() {
  delete impl_;
}

void* HashGpu::stream() const {
  return impl_->stream;
}

Status HashGpu::init(std::int32_t device, ErrorText* error) {
  if (impl_->stream != nullptr) {
    error->set("HashGpu::init: already bound to device %d", impl_->device);
    return Status::kUnsupported;
  }
  GpuDeviceInfo info;
  const Status s = gpu_device_info(device, &info, error);
  if (s != Status::kOk) return s;
  MMCORE_CUDA_TRY(cudaSetDevice(device));
  // A blocking stream: it waits for work the caller queued on the legacy default stream (plain
  // cudaMemcpy / cudaMemset of the pixels or outputs), so no extra synchronisation is needed.
  MMCORE_CUDA_TRY(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamDefault));
  impl_->device = device;
  // Layout 3's dynamic shared memory is over the 48 KB a block has unless it asks: where the
  // device refuses, that layout is unavailable (pdq_batch says so) and the others are unaffected.
  const PdqKernel stream_kernel = pdq_kernel_for(0, kPdqStream);
  const bool stream_ok = cudaFuncSetAttribute(stream_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                              static_cast<int>(pdq_dynamic_bytes(kPdqStream))) == cudaSuccess;
  if (!stream_ok) (void)cudaGetLastError();  // clear it: not this call's failure
  for (int o8 = 0; o8 < 2; ++o8) {
    for (int variant = 0; variant < 3; ++variant) {
      if (variant == kPdqStream && !stream_ok) {
        impl_->pdq_resident[o8][variant] = 0;
        continue;
      }
      int per_sm = 0;
      MMCORE_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, pdq_kernel_for(o8, variant),
                                                                    kThreads, pdq_dynamic_bytes(variant)));
      impl_->pdq_resident[o8][variant] = per_sm > 0 ? static_cast<std::int64_t>(per_sm) * info.multiprocessors
                                                    : (variant == kPdqStream ? 0 : 1);
    }
  }
  const Status r = impl_->upload_pdq_dct(error);
  if (r != Status::kOk) {  // not half-initialised: init() may be tried again
    impl_->pdq_dct_dev.release();
    (void)cudaStreamDestroy(impl_->stream);
    impl_->stream = nullptr;
  }
  return r;
}

Status HashGpu::hash_batch(const std::uint8_t* pixels, std::int64_t pixel_bytes, const GpuImage* images,
                           std::int32_t count, std::uint32_t kinds, std::uint64_t* out, Status* statuses,
                           ErrorText* error) {
  Impl& m = *impl_;
  if (m.stream == nullptr) {
    error->set("HashGpu::hash_batch: call init() first");
    return Status::kUnsupported;
  }
  if (kinds == 0 || (kinds & ~kGpuHashKinds) != 0) {
    error->set("HashGpu::hash_batch: kinds mask 0x%x is empty or names a kind the GPU lacks (mask 0x%x)",
               kinds, kGpuHashKinds);
    return Status::kUnsupported;
  }
  if (const char* problem = gpu_detail::batch_args_problem(count, pixels, images, out, out, statuses)) {
    error->set("HashGpu::hash_batch: %s (count %d)", problem, count);
    return Status::kUnsupported;
  }
  if (count == 0) return Status::kOk;
  MMCORE_CUDA_TRY(cudaSetDevice(m.device));

  // Images go in chunks whose scratch fits kScratchCap (one oversized image is a chunk alone).
  constexpr std::int64_t kScratchCap = std::int64_t{1} << 30;
  gpu_detail::Planner& plan = m.planner;
  for (std::int32_t first = 0; first < count;) {
    const std::int32_t end = plan.plan_chunk(images, first, count, pixel_bytes, kinds, kScratchCap, statuses);
    const std::size_t plan_bytes = plan.plans.size() * sizeof(ImagePlan);
    const std::size_t arena_bytes = plan.arena.size() * sizeof(std::int32_t);
    Status s = m.reserve(&m.plans_dev, plan_bytes, error);
    if (s == Status::kOk) s = m.reserve(&m.arena_dev, arena_bytes, error);
    if (s == Status::kOk)
      s = m.reserve(&m.scratch_dev, static_cast<std::size_t>(plan.scratch_bytes) + 1, error);
    if (s != Status::kOk) return s;
    MMCORE_CUDA_TRY(
        cudaMemcpyAsync(m.plans_dev.ptr, plan.plans.data(), plan_bytes, cudaMemcpyHostToDevice, m.stream));
    MMCORE_CUDA_TRY(
        cudaMemcpyAsync(m.arena_dev.ptr, plan.arena.data(), arena_bytes, cudaMemcpyHostToDevice, m.stream));
    hash_kernel<<<end - first, kThreads, 0, m.stream>>>(
        pixels, static_cast<const ImagePlan*>(m.plans_dev.ptr),
        static_cast<const std::int32_t*>(m.arena_dev.ptr), static_cast<std::uint8_t*>(m.scratch_dev.ptr), out,
        count, first, kinds, detail::kDctTwiddles);
    MMCORE_CUDA_TRY(cudaGetLastError());
    // The planner's host vectors are rewritten for the next chunk, and pageable copies may not
    // have read them yet: wait for the chunk (this also returns with the outputs written).
    MMCORE_CUDA_TRY(cudaStreamSynchronize(m.stream));
    first = end;
  }
  return Status::kOk;
}

Status HashGpu::pdq_batch(const std::uint8_t* pixels, std::int64_t pixel_bytes, const GpuImage* images,
                          std::int32_t count, std::uint8_t* hashes, std::int32_t* quality, Status* statuses,
                          ErrorText* error) {
  Impl& m = *impl_;
  if (m.stream == nullptr) {
    error->set("HashGpu::pdq_batch: call init() first");
    return Status::kUnsupported;
  }
  if (const char* problem =
          gpu_detail::batch_args_problem(count, pixels, images, hashes, quality, statuses)) {
    error->set("HashGpu::pdq_batch: %s (count %d)", problem, count);
    return Status::kUnsupported;
  }
  if (count == 0) return Status::kOk;
  MMCORE_CUDA_TRY(cudaSetDevice(m.device));
  // One launch: resident blocks, a scratch slot each (at most kScratchCap in all).
  constexpr std::int64_t kScratchCap = std::int64_t{1} << 30;
  gpu_detail::PdqPlanner& plan = m.pdq_planner;
  const int occupancy8 = gpu_detail::pdq_occupancy_from_env() == 8 ? 1 : 0;
  const std::int32_t layout = gpu_detail::pdq_layout_from_env();
  const int variant = pdq_variant(layout);
  std::int64_t resident = m.pdq_resident[occupancy8][variant];
  if (resident <= 0) {
    error->set(
        "HashGpu::pdq_batch: blur layout %d needs %zu bytes of shared memory per block, which device %d "
        "refused (MMCORE_GPU_PDQ_LAYOUT)",
        layout, pdq_dynamic_bytes(variant), m.device);
    return Status::kUnsupported;
  }
  plan.plan(images, count, pixel_bytes, statuses, variant != kPdqStream);
  if (const std::int64_t cap = gpu_detail::pdq_blocks_from_env(); cap > 0 && cap < resident) resident = cap;
  const std::int32_t blocks = plan.blocks(count, resident, kScratchCap);
  const std::size_t plan_bytes = plan.plans.size() * sizeof(gpu_detail::PdqPlan);
  Status s = m.reserve(&m.pdq_plans_dev, plan_bytes + 256, error);
  if (s == Status::kOk)
    s = m.reserve(&m.scratch_dev, static_cast<std::size_t>(plan.slot_bytes) * blocks + 1, error);
  if (s != Status::kOk) return s;
  auto* next = reinterpret_cast<std::int32_t*>(static_cast<std::uint8_t*>(m.pdq_plans_dev.ptr) +
                                               (plan_bytes + 15) / 16 * 16);
  MMCORE_CUDA_TRY(
      cudaMemcpyAsync(m.pdq_plans_dev.ptr, plan.plans.data(), plan_bytes, cudaMemcpyHostToDevice, m.stream));
  MMCORE_CUDA_TRY(cudaMemsetAsync(next, 0, sizeof(std::int32_t), m.stream));
  pdq_kernel_for(occupancy8, variant)<<<blocks, kThreads, pdq_dynamic_bytes(variant), m.stream>>>(
      pixels, static_cast<const gpu_detail::PdqPlan*>(m.pdq_plans_dev.ptr), count,
      static_cast<const float*>(m.pdq_dct_dev.ptr), static_cast<std::uint8_t*>(m.scratch_dev.ptr),
      plan.slot_bytes, hashes, quality, next, gpu_detail::pdq_phases_from_env(), layout);
  MMCORE_CUDA_TRY(cudaGetLastError());
  // The planner's host vector is rewritten by the next call, and a pageable copy may not have read
  // it yet: wait (this also returns with the outputs written).
  MMCORE_CUDA_TRY(cudaStreamSynchronize(m.stream));
  return Status::kOk;
}

}  // namespace mmcore
