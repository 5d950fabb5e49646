// SearchGpu::hamming_knn (search_gpu.h): Hamming distances of binary codes (popcount of the XOR),
// then the shared top-k (cuda/topk.cu) on minus the distance. One thread per code row, a group of
// queries in shared memory per block; search_gpu_internal.h's binary_score is the arithmetic the
// CPU test runs too.
#include <cuda_runtime.h>

#include <cub/device/device_scan.cuh>
#include <cub/device/device_segmented_sort.cuh>

#include "search_impl.cuh"

namespace mmcore {
namespace {

namespace g = gpu_detail;

__global__ void __launch_bounds__(g::kBinaryThreads)
    binary_kernel(const std::uint64_t* codes, std::int64_t rows, std::int32_t words,
                  const std::uint64_t* queries, std::int32_t nq, std::int32_t qgroup, std::int32_t* scores,
                  std::int64_t ld) {
  extern __shared__ std::uint64_t sq[];  // qgroup x words
  const int tid = static_cast<int>(threadIdx.x);
  const std::int32_t q0 = static_cast<std::int32_t>(blockIdx.y) * qgroup;
  const std::int32_t nqb = nq - q0 < qgroup ? nq - q0 : qgroup;
  for (std::int32_t i = tid; i < nqb * words; i += g::kBinaryThreads)
    sq[i] = queries[static_cast<std::int64_t>(q0) * words + i];
  __syncthreads();
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * g::kBinaryThreads + tid;
  if (row >= rows) return;
  const std::uint64_t* r = codes + row * words;
  if (words == 4) {  // PDQ: the row in registers
    const std::uint64_t rr[4] = {r[0], r[1], r[2], r[3]};
    for (std::int32_t j = 0; j < nqb; ++j) scores[(q0 + j) * ld + row] = g::binary_score(rr, sq + 4 * j, 4);
  } else if (words == 1) {
    const std::uint64_t rr[1] = {r[0]};
    for (std::int32_t j = 0; j < nqb; ++j) scores[(q0 + j) * ld + row] = g::binary_score(rr, sq + j, 1);
  } else {
    for (std::int32_t j = 0; j < nqb; ++j)
      scores[(q0 + j) * ld + row] = g::binary_score(r, sq + static_cast<std::int64_t>(j) * words, words);
  }
}

unsigned pairs_blocks(std::int64_t nrows) {
  const std::int64_t want = (nrows + g::kJoinWarpsPerBlock - 1) / g::kJoinWarpsPerBlock;
  return static_cast<unsigned>(want < 65536 ? (want > 0 ? want : 1) : 65536);
}

/// Pass 1 (offsets == nullptr): counts[a] = matches of row a. Pass 2: writes them from offsets[a].
__global__ void __launch_bounds__(32 * g::kJoinWarpsPerBlock)
    pairs_kernel(const std::uint64_t* rows, std::int64_t nrows, const std::uint64_t* cols, std::int64_t ncols,
                 std::int32_t words, std::int32_t r, bool self_join, std::int64_t* counts,
                 const std::int64_t* offsets, std::int64_t* first, std::int64_t* second,
                 std::int32_t* dists) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const std::int64_t warp = (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const std::int64_t warps = (static_cast<std::int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (std::int64_t a = warp; a < nrows; a += warps) {  // warp-uniform bounds: every lane reaches the ballots
    const std::uint64_t* row = rows + a * words;
    std::int64_t done = offsets != nullptr ? offsets[a] : 0;
    for (std::int64_t b0 = g::pair_first_column(self_join, a); b0 < ncols; b0 += 32) {
      std::int32_t d = 0;
      const bool m = g::pair_match(row, cols, words, b0 + lane, ncols, r, &d);
      const std::uint32_t mask = __ballot_sync(0xffffffffu, m);
      if (offsets != nullptr && m) g::pair_store(done, mask, lane, a, b0 + lane, d, first, second, dists);
      done += __popc(mask);
    }
    if (offsets == nullptr && lane == 0) counts[a] = done;
  }
}

/// Pass 1 over nrows rows, then offsets = the exclusive scan of counts[0..nrows] (counts[nrows] is
/// 0, so offsets[nrows] is the total, also returned in *total).
Status count_pairs(SearchGpu::Impl& m, const std::uint64_t* rows, std::int64_t nrows,
                   const std::uint64_t* cols, std::int64_t ncols, std::int32_t words, std::int32_t r,
                   bool self_join, std::int64_t* offsets, std::int64_t* total, ErrorText* error) {
  const std::size_t bytes = static_cast<std::size_t>(nrows + 1) * sizeof(std::int64_t);
  std::size_t scan_bytes = 0;
  MMCORE_CUDA_TRY(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, static_cast<std::int64_t*>(nullptr),
                                                static_cast<std::int64_t*>(nullptr), nrows + 1, m.stream));
  Status st = m.join_counts.reserve(bytes, m.stream, error);
  if (st == Status::kOk) st = m.join_scan.reserve(scan_bytes + 16, m.stream, error);
  if (st != Status::kOk) return st;
  auto* counts = static_cast<std::int64_t*>(m.join_counts.ptr);
  MMCORE_CUDA_TRY(cudaMemsetAsync(counts + nrows, 0, sizeof(std::int64_t), m.stream));
  pairs_kernel<<<pairs_blocks(nrows), 32 * g::kJoinWarpsPerBlock, 0, m.stream>>>(
      rows, nrows, cols, ncols, words, r, self_join, counts, nullptr, nullptr, nullptr, nullptr);
  MMCORE_CUDA_TRY(cudaGetLastError());
  MMCORE_CUDA_TRY(
      cub::DeviceScan::ExclusiveSum(m.join_scan.ptr, scan_bytes, counts, offsets, nrows + 1, m.stream));
  MMCORE_CUDA_TRY(
      cudaMemcpyAsync(total, offsets + nrows, sizeof(std::int64_t), cudaMemcpyDeviceToHost, m.stream));
  MMCORE_CUDA_TRY(cudaStreamSynchronize(m.stream));
  return Status::kOk;
}

}  // namespace

Status SearchGpu::hamming_join(const std::uint64_t* codes, std::int64_t n, std::int32_t words, std::int32_t r,
                               std::int64_t* first, std::int64_t* second, std::int32_t* dist,
                               std::int64_t capacity, std::int64_t* count, ErrorText* error) {
  Impl& m = *impl_;
  const Status s = m.check_ready("hamming_join", error);
  if (s != Status::kOk) return s;
  const char* problem = g::pairs_args_problem(true, codes, n, words, nullptr, 0, r, nullptr, first, second,
                                              dist, capacity, count);
  if (problem != nullptr) {
    error->set("SearchGpu::hamming_join: %s (n %lld, words %d, r %d)", problem, static_cast<long long>(n),
               words, r);
    return Status::kUnsupported;
  }
  *count = 0;
  if (n < 2) return Status::kOk;
  MMCORE_CUDA_TRY(cudaSetDevice(m.device));
  Status st = m.join_offsets.reserve(static_cast<std::size_t>(n + 1) * sizeof(std::int64_t), m.stream, error);
  if (st != Status::kOk) return st;
  auto* offsets = static_cast<std::int64_t*>(m.join_offsets.ptr);
  st = count_pairs(m, codes, n, codes, n, words, r, true, offsets, count, error);
  if (st != Status::kOk || *count == 0 || capacity < *count) return st;
  pairs_kernel<<<pairs_blocks(n), 32 * g::kJoinWarpsPerBlock, 0, m.stream>>>(
      codes, n, codes, n, words, r, true, nullptr, offsets, first, second, dist);
  MMCORE_CUDA_TRY(cudaGetLastError());
  MMCORE_CUDA_TRY(cudaStreamSynchronize(m.stream));
  return Status::kOk;
}

Status SearchGpu::hamming_radius(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                                 const std::uint64_t* queries, std::int64_t nq, std::int32_t r,
                                 std::int64_t* lims, std::int64_t* ids, std::int32_t* dist,
                                 std::int64_t capacity, std::int64_t* count, ErrorText* error) {
  Impl& m = *impl_;
  const Status s = m.check_ready("hamming_radius", error);
  if (s != Status::kOk) return s;
  const char* problem = g::pairs_args_problem(false, codes, n, words, queries, nq, r, lims, nullptr, ids,
                                              dist, capacity, count);
  if (problem != nullptr) {
    error->set("SearchGpu::hamming_radius: %s (n %lld, words %d, nq %lld, r %d)", problem,
               static_cast<long long>(n), words, static_cast<long long>(nq), r);
    return Status::kUnsupported;
  }
  MMCORE_CUDA_TRY(cudaSetDevice(m.device));
  *count = 0;
  Status st = count_pairs(m, queries, nq, codes, n, words, r, false, lims, count, error);
  if (st != Status::kOk || *count == 0 || capacity < *count) return st;
  // Matches in id order into scratch, then sorted stably by distance into the outputs.
  const std::size_t c = static_cast<std::size_t>(*count);
  st = m.radius_tmp.reserve(c * (sizeof(std::int64_t) + sizeof(std::int32_t)) + 16, m.stream, error);
  if (st != Status::kOk) return st;
  auto* tmp_ids = static_cast<std::int64_t*>(m.radius_tmp.ptr);
  auto* tmp_dist = reinterpret_cast<std::int32_t*>(tmp_ids + c);
  pairs_kernel<<<pairs_blocks(nq), 32 * g::kJoinWarpsPerBlock, 0, m.stream>>>(
      queries, nq, codes, n, words, r, false, nullptr, lims, nullptr, tmp_ids, tmp_dist);
  MMCORE_CUDA_TRY(cudaGetLastError());
  std::size_t sort_bytes = 0;
  MMCORE_CUDA_TRY(cub::DeviceSegmentedSort::StableSortPairs(nullptr, sort_bytes, tmp_dist, dist, tmp_ids, ids,
                                                            *count, nq, lims, lims + 1, m.stream));
  st = m.join_scan.reserve(sort_bytes + 16, m.stream, error);
  if (st != Status::kOk) return st;
  MMCORE_CUDA_TRY(cub::DeviceSegmentedSort::StableSortPairs(
      m.join_scan.ptr, sort_bytes, tmp_dist, dist, tmp_ids, ids, *count, nq, lims, lims + 1, m.stream));
  MMCORE_CUDA_TRY(cudaStreamSynchronize(m.stream));
  return Status::kOk;
}

Status SearchGpu::hamming_knn(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                              const std::uint64_t* queries, std::int64_t nq, std::int32_t k,
                              std::int32_t* dist, std::int64_t* idx, ErrorText* error) {
  Impl& m = *impl_;
  const Status s = m.check_ready("hamming_knn", error);
  if (s != Status::kOk) return s;
  const char* problem = g::search_args_problem(true, codes, n, words, queries, nq, k, true, dist, idx);
  if (problem != nullptr) {
    error->set("SearchGpu::hamming_knn: %s (n %lld, words %d, nq %lld, k %d)", problem,
               static_cast<long long>(n), words, static_cast<long long>(nq), k);
    return Status::kUnsupported;
  }
  MMCORE_CUDA_TRY(cudaSetDevice(m.device));
  const std::int32_t qgroup = g::binary_query_group(words);
  const Impl::ScoreFn fn = [&](std::int64_t q0, std::int64_t nqg, std::int64_t row0, std::int64_t rows,
                               std::int32_t* out, std::int64_t ld, ErrorText* err) {
    if (rows <= 0) return Status::kOk;
    const dim3 grid(static_cast<unsigned>((rows + g::kBinaryThreads - 1) / g::kBinaryThreads),
                    static_cast<unsigned>((nqg + qgroup - 1) / qgroup));
    const std::size_t smem = static_cast<std::size_t>(qgroup) * words * 8;
    binary_kernel<<<grid, g::kBinaryThreads, smem, m.stream>>>(
        codes + row0 * words, rows, words, queries + q0 * words, static_cast<std::int32_t>(nqg), qgroup, out,
        ld);
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? Status::kOk : cuda_util::fail(err, "binary_kernel launch", e);
  };
  return m.topk(n, nq, k, true, fn, dist, idx, error);
}

}  // namespace mmcore
