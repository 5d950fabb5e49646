// SearchGpu's state and its top-k driver (cuda/topk.cu), shared by cuda/quant.cu and
// cuda/hamming.cu, which add the score kernels.
#pragma once

#include <cuda_runtime.h>

#include <functional>

#include "cuda_util.cuh"
#include "mmcore/search_gpu.h"
#include "search_gpu_internal.h"

namespace mmcore {

struct SearchGpu::Impl {
  std::int32_t device = -1;
  std::int32_t multiprocessors = 0;
  bool tensor_cores = false;     ///< compute capability >= 8.0: the int8 mma.sync kernel
  std::size_t shared_optin = 0;  ///< shared memory a block may opt in to
  int mma_variant = 0;           ///< MMCORE_GPU_MMA_PIPELINE: 0 the default kernel, 1 / 2 pipelined
  bool knn_filter = true;  ///< Hamming kNN's filtered schedule where planned (MMCORE_GPU_KNN_FILTER=0: never)
  bool knn_mma = true;     ///< its filter pass on the tensor cores where usable (MMCORE_GPU_KNN_MMA=0: POPC)
  cudaStream_t stream = nullptr;
  cuda_util::DeviceBuffer scores, keys_a, keys_b, qsum, join_counts, join_scan, join_offsets, radius_tmp;
  cuda_util::DeviceBuffer mih_table, mih_pairs;  ///< the MIH join's tables and its pairs (cuda/hamming.cu)
  cuda_util::DeviceBuffer knn_cand, knn_counts,
      knn_redo;  ///< the filtered kNN's candidates, counters, rescoring

  ~Impl();

  /// Scores rows [row0, row0 + rows) against queries [q0, q0 + nqg) into scores[j * ld + i].
  using ScoreFn =
      std::function<Status(std::int64_t q0, std::int64_t nqg, std::int64_t row0, std::int64_t rows,
                           std::int32_t* scores, std::int64_t ld, ErrorText* error)>;

  /// The top-k schedule (search_gpu_internal.h's run_topk) with `score` as the score kernel;
  /// binary: the outputs are distances (minus the score) and pad with INT32_MAX.
  Status topk(std::int64_t n, std::int64_t nq, std::int32_t k, bool binary, const ScoreFn& score,
              std::int32_t* out_scores, std::int64_t* out_idx, ErrorText* error);

  /// The filtered kNN's pass for queries q0 .. q0 + nqg (bounds in the outputs' k-th column):
  /// query j's candidate keys to cand + j * cap, all of them counted at counts[j].
  using FilterFn = std::function<Status(std::int64_t q0, std::int64_t nqg, std::uint64_t* cand,
                                        std::int64_t cap, unsigned long long* counts, ErrorText* error)>;

  /// Hamming kNN by search_gpu_internal.h's run_knn_filtered: `score_for(qs)` is the score kernel
  /// over queries qs (the sample's top-k; queries rescored after an overflow are gathered first),
  /// `filter` the candidate pass; outputs as topk's (binary).
  Status topk_filtered(std::int64_t n, std::int64_t nq, std::int32_t k, const gpu_detail::KnnFilterPlan& plan,
                       const std::uint64_t* queries, std::int32_t words,
                       const std::function<ScoreFn(const std::uint64_t*)>& score_for, const FilterFn& filter,
                       std::int32_t* dist, std::int64_t* idx, ErrorText* error);

  /// "call init() first" as kUnsupported.
  Status check_ready(const char* fn, ErrorText* error) const;
};

}  // namespace mmcore
