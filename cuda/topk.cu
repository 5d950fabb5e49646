// Exact top-k for SearchGpu (search_gpu.h): the select kernel and the schedule of
// search_gpu_internal.h (the same __host__ __device__ code tests/cpp/test_search_gpu_emu.cpp runs on
// the CPU), SearchGpu's life cycle.
#include <cuda_runtime.h>

#include <cstdlib>

#include "search_impl.cuh"

namespace mmcore {
namespace {

namespace g = gpu_detail;

__global__ void __launch_bounds__(g::kSelectThreads) select_kernel(g::SelectArgs a) {
  __shared__ g::SelectShared sh;
  const int tid = static_cast<int>(threadIdx.x);
  const std::int64_t seg = blockIdx.x;
  const std::int64_t q = blockIdx.y;
  g::select_init(sh, tid, g::kSelectThreads);
  __syncthreads();
  const auto sort = [&]() {
    for (int size = 2; size <= g::kSelectCap; size <<= 1) {
      for (int stride = size >> 1; stride > 0; stride >>= 1) {
        g::bitonic_step(sh.buf, size, stride, tid, g::kSelectThreads);
        __syncthreads();
      }
    }
  };
  const std::int64_t rounds = g::select_rounds(a, seg);
  for (std::int64_t r = 0; r < rounds; ++r) {
    g::select_scan(a, sh, seg, q, r, tid, g::kSelectThreads);
    __syncthreads();
    const bool must_sort = g::select_must_sort(sh);
    // Every thread has read the count before any appends to it in the next round's scan (a
    // warp that read it late could otherwise see a later count and branch alone into sort()'s
    // barriers): the branch below is uniform.
    __syncthreads();
    if (must_sort) {
      sort();
      g::select_keep(sh, a.k, tid, g::kSelectThreads);
      __syncthreads();
    }
  }
  sort();
  g::select_store(a, sh, seg, q, tid, g::kSelectThreads);
}

__global__ void finish_kernel(const std::uint64_t* keys, std::int64_t stride, std::int64_t nqg,
                              std::int32_t k, bool binary, std::int32_t* out_scores, std::int64_t* out_idx) {
  const std::int64_t t = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= nqg * k) return;
  const std::int64_t q = t / k;
  const std::uint64_t key = keys[q * stride + t % k];
  out_scores[t] = g::key_output(key, binary);
  out_idx[t] = g::key_pos(key);
}

/// run_topk's Exec on the GPU.
struct GpuExec {
  SearchGpu::Impl* m;
  const SearchGpu::Impl::ScoreFn* score_fn;
  std::int32_t k;
  bool binary;
  std::int32_t* out_scores;
  std::int64_t* out_idx;
  ErrorText* error;
  Status status = Status::kOk;

  bool check(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return true;
    status = cuda_util::fail(error, what, e);
    return false;
  }
  bool zero_keys(std::uint64_t* keys, std::int64_t count) {
    return check(cudaMemsetAsync(keys, 0, static_cast<std::size_t>(count) * 8, m->stream), "cudaMemsetAsync");
  }
  bool score(std::int64_t q0, std::int64_t nqg, std::int64_t row0, std::int64_t rows, std::int32_t* scores,
             std::int64_t ld) {
    status = (*score_fn)(q0, nqg, row0, rows, scores, ld, error);
    return status == Status::kOk;
  }
  bool select(const g::SelectArgs& a, std::int64_t segments, std::int64_t nqg) {
    if (segments <= 0) return true;
    const dim3 grid(static_cast<unsigned>(segments), static_cast<unsigned>(nqg));
    select_kernel<<<grid, g::kSelectThreads, 0, m->stream>>>(a);
    return check(cudaGetLastError(), "select_kernel launch");
  }
  bool finish(const std::uint64_t* keys, std::int64_t stride, std::int64_t q0, std::int64_t nqg) {
    const std::int64_t total = nqg * k;
    const int threads = 256;
    finish_kernel<<<static_cast<unsigned>((total + threads - 1) / threads), threads, 0, m->stream>>>(
        keys, stride, nqg, k, binary, out_scores + q0 * k, out_idx + q0 * k);
    return check(cudaGetLastError(), "finish_kernel launch");
  }
};

}  // namespace

SearchGpu::Impl::~Impl() {
  cuda_util::close_stream(device, stream, scores, keys_a, keys_b, qsum, join_counts, join_scan, join_offsets,
                          radius_tmp, mih_table, mih_pairs);
}

Status SearchGpu::Impl::check_ready(const char* fn, ErrorText* error) const {
  if (stream != nullptr) return Status::kOk;
  error->set("SearchGpu::%s: call init() first", fn);
  return Status::kUnsupported;
}

Status SearchGpu::Impl::topk(std::int64_t n, std::int64_t nq, std::int32_t k, bool binary,
                             const ScoreFn& score, std::int32_t* out_scores, std::int64_t* out_idx,
                             ErrorText* error) {
  if (nq == 0) return Status::kOk;
  g::TopkShape shape;
  shape.n = n;
  shape.nq = nq;
  shape.k = k;
  shape.blocks_wanted = 4 * (multiprocessors > 0 ? multiprocessors : 1);
  const g::TopkPlan plan = g::plan_topk(shape);
  Status s = scores.reserve(static_cast<std::size_t>(plan.score_elems) * 4, stream, error);
  if (s == Status::kOk) s = keys_a.reserve(static_cast<std::size_t>(plan.key_elems) * 8, stream, error);
  if (s == Status::kOk) s = keys_b.reserve(static_cast<std::size_t>(plan.key_elems) * 8, stream, error);
  if (s != Status::kOk) return s;
  GpuExec ex{this, &score, k, binary, out_scores, out_idx, error};
  if (!g::run_topk(ex, shape, plan, static_cast<std::int32_t*>(scores.ptr),
                   static_cast<std::uint64_t*>(keys_a.ptr), static_cast<std::uint64_t*>(keys_b.ptr))) {
    // Kernels queued before the failure may still read the inputs and write the outputs: the
    // caller gets its buffers back only once they are done.
    (void)cudaStreamSynchronize(stream);
    return ex.status;
  }
  MMCORE_CUDA_TRY(cudaStreamSynchronize(stream));
  return Status::kOk;
}

SearchGpu::SearchGpu() : impl_(new Impl) {}

SearchGpu::~SearchGpu() {
  delete impl_;
}

void* SearchGpu::stream() const {
  return impl_->stream;
}

Status SearchGpu::init(std::int32_t device, ErrorText* error) {
  Status s = cuda_util::open_stream("SearchGpu", impl_->device, device, &impl_->stream, error);
  if (s != Status::kOk) return s;
  impl_->device = device;
  int sms = 0, major = 0, optin = 0;
  cudaError_t e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (e != cudaSuccess) {
    s = cuda_util::fail(error, "cudaDeviceGetAttribute", e);
    (void)cudaStreamDestroy(impl_->stream);  // not half-initialised: init() may be tried again
    impl_->stream = nullptr;
    return s;
  }
  impl_->multiprocessors = sms;
  impl_->tensor_cores = major >= 8 && std::getenv("MMCORE_GPU_NO_MMA") == nullptr;
  impl_->shared_optin = optin > 0 ? static_cast<std::size_t>(optin) : 0;
  const char* variant = std::getenv("MMCORE_GPU_MMA_PIPELINE");
  impl_->mma_variant = variant != nullptr ? std::atoi(variant) : 0;
  return Status::kOk;
}

}  // namespace mmcore
