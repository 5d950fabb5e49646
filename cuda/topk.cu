// Exact top-k for SearchGpu (search_gpu.h): the select kernel and the schedule of
// search_gpu_internal.h (the same __host__ __device__ code tests/cpp/test_search_gpu_emu.cpp runs on
// the CPU), SearchGpu's life cycle.
#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <vector>

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

/// Rows list[i] of src (words uint64 each) to row i of dst.
__global__ void gather_rows_kernel(const std::uint64_t* src, const std::int64_t* list, std::int64_t count,
                                   std::int32_t words, std::uint64_t* dst) {
  const std::int64_t t = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t < count * words) dst[t] = src[list[t / words] * words + t % words];
}

/// Row i of the rescored answers (k each) to row list[i] of the outputs.
__global__ void scatter_answers_kernel(const std::int32_t* dist, const std::int64_t* idx,
                                       const std::int64_t* list, std::int64_t count, std::int32_t k,
                                       std::int32_t* out_dist, std::int64_t* out_idx) {
  const std::int64_t t = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= count * k) return;
  const std::int64_t to = list[t / k] * k + t % k;
  out_dist[to] = dist[t];
  out_idx[to] = idx[t];
}

unsigned blocks_for(std::int64_t items, int threads) {
  return static_cast<unsigned>((items + threads - 1) / threads);
}

/// run_knn_filtered's Exec on the GPU: GpuExec's select and finish, and the filtered steps.
struct FilterExec : GpuExec {
  std::int64_t n = 0;
  std::int64_t nq = 0;
  std::int32_t words = 0;
  const std::uint64_t* queries = nullptr;
  const gpu_detail::KnnFilterPlan* plan = nullptr;
  const std::function<SearchGpu::Impl::ScoreFn(const std::uint64_t*)>* score_for = nullptr;
  const SearchGpu::Impl::FilterFn* filter_fn = nullptr;
  std::vector<unsigned long long> counts_host;

  unsigned long long* counts() const { return static_cast<unsigned long long*>(m->knn_counts.ptr); }
  bool ok(Status s) {
    status = s;
    return s == Status::kOk;
  }
  bool sample_topk(std::int64_t rows) {
    return ok(m->topk(rows, nq, k, true, (*score_for)(queries), out_scores, out_idx, error));
  }
  bool buffers(std::uint64_t** cand, std::uint64_t** a, std::uint64_t** b) {
    const auto key_bytes = static_cast<std::size_t>(plan->key_elems) * 8;
    if (!ok(m->knn_cand.reserve(static_cast<std::size_t>(plan->query_group * plan->cap) * 8, m->stream,
                                error)) ||
        !ok(m->knn_counts.reserve(static_cast<std::size_t>(plan->query_group) * 8, m->stream, error)) ||
        !ok(m->keys_a.reserve(key_bytes, m->stream, error)) ||
        !ok(m->keys_b.reserve(key_bytes, m->stream, error)))
      return false;
    *cand = static_cast<std::uint64_t*>(m->knn_cand.ptr);
    *a = static_cast<std::uint64_t*>(m->keys_a.ptr);
    *b = static_cast<std::uint64_t*>(m->keys_b.ptr);
    return true;
  }
  bool zero_counts(std::int64_t nqg) {
    return check(cudaMemsetAsync(counts(), 0, static_cast<std::size_t>(nqg) * 8, m->stream),
                 "cudaMemsetAsync");
  }
  bool filter(std::int64_t q0, std::int64_t nqg, std::uint64_t* cand, std::int64_t cap) {
    return ok((*filter_fn)(q0, nqg, cand, cap, counts(), error));
  }
  bool overflowed(std::int64_t q0, std::int64_t nqg, std::int64_t cap, std::vector<std::int64_t>* redo) {
    counts_host.resize(static_cast<std::size_t>(nqg));
    if (!check(cudaMemcpyAsync(counts_host.data(), counts(), static_cast<std::size_t>(nqg) * 8,
                               cudaMemcpyDeviceToHost, m->stream),
               "cudaMemcpyAsync") ||
        !check(cudaStreamSynchronize(m->stream), "cudaStreamSynchronize"))
      return false;
    for (std::int64_t j = 0; j < nqg; ++j)
      if (counts_host[static_cast<std::size_t>(j)] > static_cast<unsigned long long>(cap))
        redo->push_back(q0 + j);
    return true;
  }
  /// The queries in redo gathered, run_topk over every row, the answers scattered back.
  bool rescore(const std::vector<std::int64_t>& redo) {
    const auto count = static_cast<std::int64_t>(redo.size());
    // knn_redo: the list, the gathered queries, their answers (distances padded to 8 bytes).
    const std::int64_t list_bytes = 8 * count;
    const std::int64_t query_bytes = 8 * count * words;
    const std::int64_t dist_bytes = (4 * count * k + 7) / 8 * 8;
    if (!ok(m->knn_redo.reserve(
            static_cast<std::size_t>(list_bytes + query_bytes + dist_bytes + 8 * count * k), m->stream,
            error)))
      return false;
    auto* base = static_cast<std::uint8_t*>(m->knn_redo.ptr);
    auto* list = reinterpret_cast<std::int64_t*>(base);
    auto* gq = reinterpret_cast<std::uint64_t*>(base + list_bytes);
    auto* rdist = reinterpret_cast<std::int32_t*>(base + list_bytes + query_bytes);
    auto* ridx = reinterpret_cast<std::int64_t*>(base + list_bytes + query_bytes + dist_bytes);
    const int threads = 256;
    if (!check(cudaMemcpyAsync(list, redo.data(), static_cast<std::size_t>(list_bytes),
                               cudaMemcpyHostToDevice, m->stream),
               "cudaMemcpyAsync"))
      return false;
    gather_rows_kernel<<<blocks_for(count * words, threads), threads, 0, m->stream>>>(queries, list, count,
                                                                                      words, gq);
    if (!check(cudaGetLastError(), "gather_rows_kernel launch") ||
        !ok(m->topk(n, count, k, true, (*score_for)(gq), rdist, ridx, error)))
      return false;
    scatter_answers_kernel<<<blocks_for(count * k, threads), threads, 0, m->stream>>>(
        rdist, ridx, list, count, k, out_scores, out_idx);
    return check(cudaGetLastError(), "scatter_answers_kernel launch");
  }
};

}  // namespace

SearchGpu::Impl::~Impl() {
  cuda_util::close_stream(device, stream, scores, keys_a, keys_b, qsum, join_counts, join_scan, join_offsets,
                          radius_tmp, mih_table, mih_pairs, knn_cand, knn_counts, knn_redo);
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

Status SearchGpu::Impl::topk_filtered(std::int64_t n, std::int64_t nq, std::int32_t k,
                                      const g::KnnFilterPlan& plan, const std::uint64_t* queries,
                                      std::int32_t words,
                                      const std::function<ScoreFn(const std::uint64_t*)>& score_for,
                                      const FilterFn& filter, std::int32_t* dist, std::int64_t* idx,
                                      ErrorText* error) {
  g::TopkShape shape;
  shape.n = n;
  shape.nq = nq;
  shape.k = k;
  shape.blocks_wanted = 4 * (multiprocessors > 0 ? multiprocessors : 1);
  FilterExec ex{
      {this, nullptr, k, true, dist, idx, error}, n, nq, words, queries, &plan, &score_for, &filter, {}};
  std::vector<std::int64_t> redo;
  if (!g::run_knn_filtered(ex, shape, plan, &redo)) {
    (void)cudaStreamSynchronize(stream);  // as topk: the caller's buffers back only when idle
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
  const char* filter = std::getenv("MMCORE_GPU_KNN_FILTER");
  impl_->knn_filter = filter == nullptr || std::strcmp(filter, "0") != 0;
  const char* knn_mma = std::getenv("MMCORE_GPU_KNN_MMA");
  impl_->knn_mma = knn_mma == nullptr || std::strcmp(knn_mma, "0") != 0;
  return Status::kOk;
}

}  // namespace mmcore
