// SearchGpu::hamming_knn (search_gpu.h): Hamming distances of binary codes (popcount of the XOR),
// then the shared top-k (cuda/topk.cu) on minus the distance. One thread per code row, a group of
// queries in shared memory per block; search_gpu_internal.h's binary_score is the arithmetic the
// CPU test runs too.
#include <cuda_runtime.h>

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

}  // namespace

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
