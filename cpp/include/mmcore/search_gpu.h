// GPU search over device-resident codes: int8 scoring with top-k (cuda/quant.cu), Hamming kNN,
// radius search and self-join over binary codes (cuda/hamming.cu), the top-k exact (cuda/topk.cu).
//
// Contract
// - Answers: the CPU's, bit for bit. int8: quant_score_int8's scores (sum_d code_d * query_d in
//   int32, codes uint8, queries int8) and positions, per query the k best by (largest score,
//   smallest position), k > n padded with score INT32_MIN and position -1. Binary: hamming_knn's
//   (and faiss IndexBinaryFlat's) distances and positions, by (smallest distance, smallest
//   position), padded with INT32_MAX and -1. The answer is unique, so it does not depend on the
//   device, the launch shape or the chunking. Positions are rows of the base; mapping them to ids
//   is the caller's.
// - Inputs and outputs are device memory: codes n x d bytes (int8) or n x words uint64 (binary),
//   row-major and contiguous; queries nq x d int8 or nq x words uint64; scores / dist nq x k int32
//   and idx nq x k int64, row per query. int8: any alignment and d work; d % 16 == 0 with
//   16-byte-aligned codes and queries take the fast load path. Binary codes and queries must be
//   8-byte aligned (read as words; kUnsupported otherwise).
// - Limits: 1 <= k <= kSearchMaxK (1024), n <= 4294967294 rows, 1 <= d <= 65536 (int8),
//   1 <= words <= 4096 (binary); anything else returns kUnsupported with the reason, computing
//   nothing.
// - Errors: a CUDA failure returns Status::kDevice (kNoMemory when a device allocation failed)
//   with the reason in `error`; nothing aborts, throws (except std::bad_alloc) or prints.
// - Resources: a SearchGpu owns its stream and its device scratch (the int32 score matrix of one
//   chunk of rows, at most ~512 MB, and two candidate-key buffers of at most ~1 GB each: query
//   groups shrink until their keys fit; grown on demand, reused; Hamming kNN's filtered schedule's
//   candidates, at most ~256 MB; the MIH join's tables, about
//   n x (16 + 8 x words) bytes plus 12 bytes per slot, and its pairs, 24 bytes each). The stream
//   is a blocking one (it starts after work queued on the legacy default stream); each call returns
//   when its outputs are written. One SearchGpu per thread.
#pragma once

#include <cstdint>

#include "mmcore/hamming.h"
#include "mmcore/status.h"

namespace mmcore {

class SearchGpu {
 public:
  SearchGpu();
  ~SearchGpu();
  SearchGpu(const SearchGpu&) = delete;
  SearchGpu& operator=(const SearchGpu&) = delete;

  /// Binds to `device` and creates the stream; kDevice with the reason on failure.
  Status init(std::int32_t device, ErrorText* error);

  /// Top-k int8 scores of nq queries against n codes.
  Status int8_topk(const std::uint8_t* codes, std::int64_t n, std::int32_t d, const std::int8_t* queries,
                   std::int64_t nq, std::int32_t k, std::int32_t* scores, std::int64_t* idx,
                   ErrorText* error);

  /// k nearest binary codes by Hamming distance. Where its plan takes it (many rows, k small against
  /// them) no distance matrix is written: a sample's top-k bounds each query, and only rows within
  /// the bound are selected from (MMCORE_GPU_KNN_FILTER=0 at init: always the plain schedule).
  Status hamming_knn(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                     const std::uint64_t* queries, std::int64_t nq, std::int32_t k, std::int32_t* dist,
                     std::int64_t* idx, ErrorText* error);

  /// Self-join: every pair of rows a < b of the n binary codes within Hamming distance r (inclusive),
  /// ordered by (a, b) with their distances: hamming_join's answer. Counts the pairs into *count and
  /// writes them to first / second / dist (device memory of `capacity` entries each) when capacity >=
  /// *count; with less room it writes nothing (call again with room for *count: the join runs
  /// again). `method`: kMih, multi-index hashing on the device (codes of at most 256 bits; the pairs
  /// found go to device scratch, then sorted to the outputs); kBrute, about n^2 / 2 distances twice
  /// (a counting pass, then the writing pass); kAuto, the cheaper by a cost model.
  Status hamming_join(const std::uint64_t* codes, std::int64_t n, std::int32_t words, std::int32_t r,
                      std::int64_t* first, std::int64_t* second, std::int32_t* dist, std::int64_t capacity,
                      std::int64_t* count, ErrorText* error, HammingMethod method = HammingMethod::kAuto);

  /// Radius search: for each of the nq queries every base row within Hamming distance r (inclusive),
  /// as CSR ordered by (distance, row) per query: hamming_radius's answer (ids = positions). Writes
  /// lims (device memory, nq + 1) and counts the results into *count; writes ids / dist (device
  /// memory of `capacity` entries) when capacity >= *count, else nothing more (call again with room).
  /// `method`: kBrute, nq * n distances twice; kMih, multi-index hashing (codes of at most 256
  /// bits; a table of the base per substring, each query probing its ball; results to device
  /// scratch, sorted; with 2^23 queries or more, or 2^31 codes or more, the brute force runs);
  /// kAuto, the cheaper by the cost model.
  Status hamming_radius(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                        const std::uint64_t* queries, std::int64_t nq, std::int32_t r, std::int64_t* lims,
                        std::int64_t* ids, std::int32_t* dist, std::int64_t capacity, std::int64_t* count,
                        ErrorText* error, HammingMethod method = HammingMethod::kAuto);

  /// Every int8 score, no top-k: out[q * n + j] (device memory, nq * n int32), the scoring kernels
  /// alone (the bench's bandwidth figure and tests).
  Status int8_scores(const std::uint8_t* codes, std::int64_t n, std::int32_t d, const std::int8_t* queries,
                     std::int64_t nq, std::int32_t* out, ErrorText* error);

  /// Every Hamming distance, no top-k: out[q * n + j] (device memory, nq * n int32), hamming_knn's
  /// scoring kernel alone (the bench's split of kNN time between the scan and the selection).
  Status hamming_distances(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                           const std::uint64_t* queries, std::int64_t nq, std::int32_t* out,
                           ErrorText* error);

  /// The stream the kernels run on (a cudaStream_t).
  void* stream() const;

  struct Impl;

 private:
  Impl* impl_;
};

}  // namespace mmcore
