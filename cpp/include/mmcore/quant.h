// Quantized vector codes: encoding (int8, int4, binary) and exact integer scoring with top-k.
//
// Contract
// - Encoding (the parameters come from Python): int8 code = round-half-to-even((x - offset) / scale)
//   clipped to 0..255, computed in float32 as numpy does; int4 the same clipped to 0..15, two codes
//   per byte (dimension 2i in the low nibble of byte i, 2i + 1 in the high nibble; an odd D leaves
//   the last high nibble 0); a dimension with scale 0 encodes as 0. Binary: bit d is
//   (x_d - mean_d) > 0, bit d % 64 of word d / 64 (D a multiple of 64). A NaN or Inf in x throws
//   std::invalid_argument naming the first such row before anything is written; so does a
//   negative or non-finite scale, a non-finite offset or mean.
// - Scores are exact integers: int8 and int4 score = sum_d c_d * t_d in int32 (codes unsigned,
//   queries int8), binary score = Hamming distance. Every variant (ref, avx2, avx512) gives the
//   scalar ref's integers bit for bit, whatever D (tails included) and the thread count.
// - Top-k: per query the k best rows, int8/int4 by (largest score, smallest position), binary by
//   (smallest distance, smallest position); the answer is unique, hence independent of threads and
//   blocking. k > N pads the tail with position -1 and score INT32_MIN (int8/int4) or distance
//   INT32_MAX (binary, as hamming_knn and faiss pad).
//   Binary codes of 1 to 7 words are searched by hamming_knn (mmcore/hamming.h), wider ones by the
//   quant block kernels.
// - |score| <= 255 * 128 * D must fit int32: D <= 65536 is checked (std::invalid_argument).
// - Many queries share one scan: the base is read in blocks sized for L2 and every query of a batch
//   is scored against a block before the next one is read.
// - Variant: active_backend() once per call unless a Backend is passed. Threads: `threads` <= 0
//   means hardware_threads(); created per call, joined before return; reentrant, no shared state.
//   Outputs are caller-owned: scores/idx nq * k, dot_all nq * n (row per query).
#pragma once

#include <cstdint>

#include "mmcore/backend.h"

namespace mmcore {

/// Largest D the int8/int4 scores accept (|score| stays below 2^31).
constexpr std::int32_t kQuantMaxDim = 65536;

/// x (n x d float32) -> n x d uint8 codes. With `reflect` (d floats, a unit vector v), each row is
/// reflected first as quant_reflect does and the reflection encoded; a row whose reflection leaves
/// float32's range throws std::invalid_argument naming it, after the other rows are written.
void quant_encode_int8(const float* x, std::int64_t n, std::int32_t d, const float* scale,
                       const float* offset, int threads, std::uint8_t* codes, const float* reflect = nullptr);
/// x (n x d float32) -> n x ceil(d / 2) bytes of 4-bit codes (`reflect` as for int8).
void quant_encode_int4(const float* x, std::int64_t n, std::int32_t d, const float* scale,
                       const float* offset, int threads, std::uint8_t* codes, const float* reflect = nullptr);
/// The Householder reflection of each row: out = x - 2 (x . v) v. The dot is quant_rerank's exact
/// float64 sum (8 interleaved partial sums in a fixed tree: the same bits on every machine, variant
/// and thread count), c = float32(-2 dot), then out_i = x_i + c v_i in float32, the product rounded
/// before the add. A row can come out non-finite when ||x|| is near float32's limit (not checked
/// here); v must be finite (std::invalid_argument).
void quant_reflect(const float* x, std::int64_t n, std::int32_t d, const float* v, int threads, float* out);
/// x (n x d float32, d a multiple of 64) -> n x d / 64 uint64 sign codes.
void quant_encode_binary(const float* x, std::int64_t n, std::int32_t d, const float* mean, int threads,
                         std::uint64_t* codes);

/// Top-k of int8 codes (n x d) against int8 queries (nq x d).
void quant_score_int8(const std::uint8_t* codes, std::int64_t n, std::int32_t d, const std::int8_t* queries,
                      std::int64_t nq, std::int32_t k, int threads, std::int32_t* scores, std::int64_t* idx);
void quant_score_int8(const std::uint8_t* codes, std::int64_t n, std::int32_t d, const std::int8_t* queries,
                      std::int64_t nq, std::int32_t k, int threads, std::int32_t* scores, std::int64_t* idx,
                      Backend backend);
/// Top-k of 4-bit codes (n x ceil(d / 2) bytes) against int8 queries (nq x d).
void quant_score_int4(const std::uint8_t* codes, std::int64_t n, std::int32_t d, const std::int8_t* queries,
                      std::int64_t nq, std::int32_t k, int threads, std::int32_t* scores, std::int64_t* idx);
void quant_score_int4(const std::uint8_t* codes, std::int64_t n, std::int32_t d, const std::int8_t* queries,
                      std::int64_t nq, std::int32_t k, int threads, std::int32_t* scores, std::int64_t* idx,
                      Backend backend);
/// l2 top-k of int8 (four_bit false) or 4-bit codes against int8 queries (those of 2q): per query
/// the k rows of largest key = qscale[q] * score - bias[row] in double (score the integer score
/// above, bias each row's ||x||^2: the key is 2 q.x - ||x||^2 up to the query's constant, so the
/// largest key is the nearest row), ties by smaller position; k > N pads with the lowest double
/// and position -1. qscale (nq) and bias (n) must be finite (std::invalid_argument).
void quant_score_l2(const std::uint8_t* codes, std::int64_t n, std::int32_t d, bool four_bit,
                    const std::int8_t* queries, std::int64_t nq, const double* qscale, const float* bias,
                    std::int32_t k, int threads, double* keys, std::int64_t* idx);
void quant_score_l2(const std::uint8_t* codes, std::int64_t n, std::int32_t d, bool four_bit,
                    const std::int8_t* queries, std::int64_t nq, const double* qscale, const float* bias,
                    std::int32_t k, int threads, double* keys, std::int64_t* idx, Backend backend);
/// Top-k by Hamming distance of binary codes (n x words uint64) against queries (nq x words).
void quant_score_binary(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                        const std::uint64_t* queries, std::int64_t nq, std::int32_t k, int threads,
                        std::int32_t* dist, std::int64_t* idx);
void quant_score_binary(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                        const std::uint64_t* queries, std::int64_t nq, std::int32_t k, int threads,
                        std::int32_t* dist, std::int64_t* idx, Backend backend);
/// Every int8 score: out[q * n + j] = dot(codes row j, query q).
void quant_dot_int8_all(const std::uint8_t* codes, std::int64_t n, std::int32_t d, const std::int8_t* queries,
                        std::int64_t nq, int threads, std::int32_t* out);
void quant_dot_int8_all(const std::uint8_t* codes, std::int64_t n, std::int32_t d, const std::int8_t* queries,
                        std::int64_t nq, int threads, std::int32_t* out, Backend backend);

/// Whether the active variant scores int8 / int4 batches of more than 8 queries with AMX tiles (an
/// AVX-512 build on a CPU and OS that grant them, MMCORE_NO_AMX unset or 0).
bool quant_amx_active();
/// Whether the active variant is avx2 and scores int8 / int4 with AVX-VNNI (vpdpbusd on 256-bit
/// vectors: a CPU that has it, MMCORE_NO_AVX_VNNI unset or 0).
bool quant_avx_vnni_active();

/// Exact rescoring of candidates with the float vectors x (n x d float32): for query q (row q of
/// queries, nq x d) and its m candidate positions cand[q * m ...] (each in 0..n-1, else
/// std::invalid_argument), the score of candidate j is dot(x_j, q) (l2 = false) or
/// ||x_j - q||^2 (l2 = true), accumulated in double and rounded to float32. Writes the k best
/// (largest dot / smallest distance, ties by smaller position) to scores[q * k ...] and
/// pos[q * k ...]; k <= m. The candidates' rows are prefetched a few ahead (they are random rows of
/// a large, possibly memory-mapped, array); queries are split across threads.
void quant_rerank(const float* x, std::int64_t n, std::int32_t d, const float* queries, std::int64_t nq,
                  const std::int64_t* cand, std::int32_t m, std::int32_t k, bool l2, int threads,
                  float* scores, std::int64_t* pos);
void quant_rerank(const float* x, std::int64_t n, std::int32_t d, const float* queries, std::int64_t nq,
                  const std::int64_t* cand, std::int32_t m, std::int32_t k, bool l2, int threads,
                  float* scores, std::int64_t* pos, Backend backend);

}  // namespace mmcore
