// AVX2 quant kernels (contract: quant_internal.h).
// int8: vpmaddubsw would saturate (255 * 127 * 2 > 32767), so codes are widened to int16
// (vpmovzxbw) and multiplied by int16 queries with vpmaddwd: exact int32 pair sums. A pass scores
// 4 code rows against 2 queries, so each widened code vector serves 2 queries and each query
// vector 4 rows (6 loads per 8 products; 2 x 4 tiles needed 10, as gcc fused the query loads).
// int4: the nibbles are already small enough for vpmaddubsw: 15 * 128 * 2 = 3840 per int16 lane
// per product, two products per 64 dimensions, so four such steps (30720) stay below 32767
// before the lanes are widened to int32 with vpmaddwd. This is exact without lookup tables or a
// transposed layout: one vpmaddubsw yields 32 products, where an exact pshufb table of 16-bit
// entries needs two shuffles for 32 lookups.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "quant_avx2_internal.h"
#include "quant_internal.h"

namespace mmcore::detail {
namespace {

inline std::int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// ---- int8 ----

// Query g as int16, zero-padded to a multiple of 16 dimensions.
void prepare_int8(const void* queries, int nq, std::int32_t d, std::uint8_t* prepared) {
  const std::int64_t stride = quant_prepared_stride(d, kQuantUnitInt);
  const std::int32_t padded = (d + 15) / 16 * 16;
  for (int g = 0; g < nq; ++g) {
    const std::int8_t* t = static_cast<const std::int8_t*>(queries) + std::int64_t{g} * d;
    auto* w = reinterpret_cast<std::int16_t*>(prepared + g * stride);
    for (std::int32_t i = 0; i < d; ++i) w[i] = t[i];
    for (std::int32_t i = d; i < padded; ++i) w[i] = 0;
  }
}

template <int R, int S>
inline void dot8_tile(const std::uint8_t* codes, std::int32_t d, const std::int16_t* const* q,
                      std::int32_t* out, std::int64_t ldo) {
  const std::int32_t d16 = d / 16 * 16;
  __m256i acc[R][S];
  for (int r = 0; r < R; ++r)
    for (int s = 0; s < S; ++s) acc[r][s] = _mm256_setzero_si256();
  for (std::int32_t i = 0; i < d16; i += 16) {
    // The next tile's rows, 16 R bytes per step: the first query group to reach a block reads it
    // from memory, and this overlaps that with the products (never faults past the end). 200k x
    // 768 codes, one thread, 16 queries: 258 and 269 vs 198 to 216 queries/s without it.
    _mm_prefetch(reinterpret_cast<const char*>(codes + R * d + R * i), _MM_HINT_T0);
    __m256i x[R];
    for (int r = 0; r < R; ++r) {
      x[r] = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + r * d + i)));
    }
    for (int s = 0; s < S; ++s) {
      const __m256i y = _mm256_load_si256(reinterpret_cast<const __m256i*>(q[s] + i));
      for (int r = 0; r < R; ++r) acc[r][s] = _mm256_add_epi32(acc[r][s], _mm256_madd_epi16(x[r], y));
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int s = 0; s < S; ++s) {
      std::int32_t v = hsum(acc[r][s]);
      for (std::int32_t i = d16; i < d; ++i) v += std::int32_t{codes[r * d + i]} * q[s][i];
      out[s * ldo + r] = v;
    }
  }
}

template <int R, int S>
void dot8_rows(const std::uint8_t* codes, std::int64_t nb, std::int32_t d, const std::uint8_t* prepared,
               std::int32_t* out, std::int64_t ldo) {
  const std::int64_t stride = quant_prepared_stride(d, kQuantUnitInt);
  const std::int16_t* q[S];
  for (int s = 0; s < S; ++s) q[s] = reinterpret_cast<const std::int16_t*>(prepared + s * stride);
  std::int64_t j = 0;
  for (; j + R <= nb; j += R) dot8_tile<R, S>(codes + j * d, d, q, out + j, ldo);
  for (; j < nb; ++j) dot8_tile<1, S>(codes + j * d, d, q, out + j, ldo);
}

// One query, R rows at a time: each 32-dimension step loads the query's two int16 vectors once
// for R rows, and the R sums are reduced together (hsum4), where a row at a time spent as many
// instructions on the query loads, the loop and the reduction as on the products. The next tile
// (the following R rows, contiguous) is prefetched 128 bytes per step, in order, so that
// streaming from memory keeps the prefetch distance of the earlier row-at-a-time loop (~2 KiB).
template <int R>
inline void dot8_single_tile(const std::uint8_t* c, std::int32_t d, const std::int16_t* q,
                             std::int32_t* out) {
  const std::int32_t d32 = d / 32 * 32;
  __m256i acc[4];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_si256();
  const std::uint8_t* next = c + static_cast<std::int64_t>(R) * d;
  for (std::int32_t i = 0; i < d32; i += 32) {
    // A prefetch never faults, so running past the last row is harmless.
    _mm_prefetch(reinterpret_cast<const char*>(next + (R * i) / 32 * 32), _MM_HINT_T0);
    if (R > 2) _mm_prefetch(reinterpret_cast<const char*>(next + (R * i) / 32 * 32 + 64), _MM_HINT_T0);
    const __m256i y0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(q + i));
    const __m256i y1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(q + i + 16));
    for (int r = 0; r < R; ++r) {
      const std::uint8_t* row = c + static_cast<std::int64_t>(r) * d + i;
      const __m256i x0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row)));
      const __m256i x1 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 16)));
      acc[r] =
          _mm256_add_epi32(acc[r], _mm256_add_epi32(_mm256_madd_epi16(x0, y0), _mm256_madd_epi16(x1, y1)));
    }
  }
  alignas(16) std::int32_t v[4];
  _mm_store_si128(reinterpret_cast<__m128i*>(v), quant_hsum4<R>(acc));
  for (int r = 0; r < R; ++r) {
    const std::uint8_t* row = c + static_cast<std::int64_t>(r) * d;
    for (std::int32_t i = d32; i < d; ++i) v[r] += std::int32_t{row[i]} * q[i];
    out[r] = v[r];
  }
}

void dot8_single(const std::uint8_t* codes, std::int64_t nb, std::int32_t d, const std::uint8_t* prepared,
                 std::int32_t* out) {
  const auto* q = reinterpret_cast<const std::int16_t*>(prepared);
  std::int64_t j = 0;
  for (; j + 4 <= nb; j += 4) dot8_single_tile<4>(codes + j * d, d, q, out + j);
  for (; j < nb; ++j) dot8_single_tile<1>(codes + j * d, d, q, out + j);
}

void block_int8(const std::uint8_t* codes, std::int64_t nb, std::int32_t d, const std::uint8_t* prepared,
                int nq, std::int32_t* out, std::int64_t ldo) {
  switch (nq) {
    case 1: dot8_single(codes, nb, d, prepared, out); break;
    case 2: dot8_rows<4, 2>(codes, nb, d, prepared, out, ldo); break;
    case 3:
      dot8_rows<4, 2>(codes, nb, d, prepared, out, ldo);
      dot8_rows<4, 1>(codes, nb, d, prepared + 2 * quant_prepared_stride(d, kQuantUnitInt), out + 2 * ldo,
                      ldo);
      break;
    default:
      dot8_rows<4, 2>(codes, nb, d, prepared, out, ldo);
      dot8_rows<4, 2>(codes, nb, d, prepared + 2 * quant_prepared_stride(d, kQuantUnitInt), out + 2 * ldo,
                      ldo);
      break;
  }
}

// ---- int4 ----

// Queries split by parity (quant_prepare_int4_split), each half padded to 32 bytes.
inline std::int64_t int4_half(std::int32_t d) {
  return quant_int4_half(d, 32);
}

void prepare_int4(const void* queries, int nq, std::int32_t d, std::uint8_t* prepared) {
  quant_prepare_int4_split(queries, nq, d, prepared, 32);
}

// One row against S <= 4 queries. Per 32 code bytes (64 dimensions): the two nibble vectors, then
// per query two vpmaddubsw and two int16 adds; the int16 lanes are widened to int32 (vpmaddwd with
// ones) after every 4 steps, where they hold at most 4 * 2 * 3840 < 32767.
template <int S>
inline void dot4_row(const std::uint8_t* c, std::int64_t row, std::int64_t half, const std::int8_t* const* q,
                     std::int32_t* out, std::int64_t ldo) {
  const std::int64_t r32 = row / 32 * 32;
  const __m256i low = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
  __m256i acc[S];
  for (int s = 0; s < S; ++s) acc[s] = _mm256_setzero_si256();
  std::int64_t i = 0;
  while (i < r32) {
    const std::int64_t i1 = std::min(r32, i + 128);
    __m256i a16[S];
    for (int s = 0; s < S; ++s) a16[s] = _mm256_setzero_si256();
    for (; i < i1; i += 32) {
      // The next row's bytes: the first query group to reach a block reads it from memory.
      _mm_prefetch(reinterpret_cast<const char*>(c + row + i), _MM_HINT_T0);
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + i));
      const __m256i lo = _mm256_and_si256(x, low), hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low);
      for (int s = 0; s < S; ++s) {
        const __m256i ye = _mm256_load_si256(reinterpret_cast<const __m256i*>(q[s] + i));
        const __m256i yo = _mm256_load_si256(reinterpret_cast<const __m256i*>(q[s] + half + i));
        a16[s] = _mm256_add_epi16(a16[s], _mm256_maddubs_epi16(lo, ye));
        a16[s] = _mm256_add_epi16(a16[s], _mm256_maddubs_epi16(hi, yo));
      }
    }
    for (int s = 0; s < S; ++s) acc[s] = _mm256_add_epi32(acc[s], _mm256_madd_epi16(a16[s], ones));
  }
  alignas(16) std::int32_t v[4];
  _mm_store_si128(reinterpret_cast<__m128i*>(v), quant_hsum4<S>(acc));
  for (int s = 0; s < S; ++s) {
    for (std::int64_t t = r32; t < row; ++t) {
      v[s] += std::int32_t{c[t] & 15} * q[s][t] + std::int32_t{c[t] >> 4} * q[s][half + t];
    }
    out[s * ldo] = v[s];
  }
}

template <int S>
void dot4_rows(const std::uint8_t* codes, std::int64_t nb, std::int32_t d, const std::uint8_t* prepared,
               std::int32_t* out, std::int64_t ldo) {
  const std::int64_t stride = quant_prepared_stride(d, kQuantUnitInt), half = int4_half(d), row = (d + 1) / 2;
  const std::int8_t* q[S];
  for (int s = 0; s < S; ++s) q[s] = reinterpret_cast<const std::int8_t*>(prepared + s * stride);
  for (std::int64_t j = 0; j < nb; ++j) dot4_row<S>(codes + j * row, row, half, q, out + j, ldo);
}

void block_int4(const std::uint8_t* codes, std::int64_t nb, std::int32_t d, const std::uint8_t* prepared,
                int nq, std::int32_t* out, std::int64_t ldo) {
  const std::int64_t stride = quant_prepared_stride(d, kQuantUnitInt);
  quant_for_query_groups(nq, [&](auto s, int g) {
    dot4_rows<decltype(s)::value>(codes, nb, d, prepared + g * stride, out + g * ldo, ldo);
  });
}

// ---- binary ----

// Popcount of 32 bytes by nibble look-up (vpshufb), as byte counts.
inline __m256i popcount_bytes(__m256i y) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3,
                                       1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0f);
  return _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(y, low)),
                         _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(y, 4), low)));
}

inline std::int64_t hsum64(__m256i v) {
  const __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
}

// S queries against each row: 4 words at a time counted with vpshufb into byte counters (at most
// 8 per step, flushed to 64-bit lanes with vpsadbw every 16 steps), the last words % 4 with POPCNT.
// One load of a row serves every query. 1M x 768-bit codes, 64 queries, one thread: 3.0-3.4 ns per
// (row, query) against 6.6-7.9 for POPCNT over words (Zen 3 issues one POPCNT per cycle).
template <int S>
void binary_rows(const std::uint8_t* codes, std::int64_t nb, std::int32_t words, const std::uint8_t* prepared,
                 std::int32_t* out, std::int64_t ldo) {
  const std::int64_t stride = quant_prepared_stride(words, kQuantUnitBinary);
  const std::int32_t w4 = words / 4 * 4;
  const std::uint64_t* q[S];
  for (int s = 0; s < S; ++s) q[s] = reinterpret_cast<const std::uint64_t*>(prepared + s * stride);
  const __m256i zero = _mm256_setzero_si256();
  for (std::int64_t j = 0; j < nb; ++j) {
    const std::uint8_t* c = codes + j * words * 8;
    __m256i wide[S], bytes[S];
    for (int s = 0; s < S; ++s) wide[s] = bytes[s] = zero;
    for (std::int32_t w = 0; w < w4; w += 4) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + w * 8));
      for (int s = 0; s < S; ++s) {
        const __m256i y = _mm256_xor_si256(x, _mm256_load_si256(reinterpret_cast<const __m256i*>(q[s] + w)));
        bytes[s] = _mm256_add_epi8(bytes[s], popcount_bytes(y));
      }
      if (w % 64 == 60) {
        for (int s = 0; s < S; ++s) {
          wide[s] = _mm256_add_epi64(wide[s], _mm256_sad_epu8(bytes[s], zero));
          bytes[s] = zero;
        }
      }
    }
    for (int s = 0; s < S; ++s) {
      std::int64_t dist = hsum64(_mm256_add_epi64(wide[s], _mm256_sad_epu8(bytes[s], zero)));
      for (std::int32_t w = w4; w < words; ++w) {
        std::uint64_t x = 0;
        std::memcpy(&x, c + w * 8, 8);
        dist += static_cast<std::int64_t>(_mm_popcnt_u64(x ^ q[s][w]));
      }
      out[s * ldo + j] = -static_cast<std::int32_t>(dist);
    }
  }
}

// The common widths, W = 8, 12 or 16 words (512, 768, 1024 bits), against S <= 4 queries held in
// registers: the first 8 words counted with vpshufb, the rest with POPCNT (integer ports, so both
// run at once), and the S vector counts reduced together (one vpsadbw each, then lanes packed two
// queries per qword). 4 queries, codes in L1, one thread: 2.1 / 2.5 / 3.6 ns per (row, query)
// against 3.0 / 3.7 / 4.4-4.7 for binary_rows.
template <int W, int S>
void binary_rows_fixed(const std::uint8_t* codes, std::int64_t nb, const std::uint8_t* prepared,
                       std::int32_t* out, std::int64_t ldo) {
  static_assert(W >= 8 && S >= 1 && S <= 4);
  constexpr int kVec = 8;  // words counted with vpshufb
  const std::int64_t stride = quant_prepared_stride(W, kQuantUnitBinary);
  const std::uint64_t* q[S];
  __m256i qv[S][2];
  for (int s = 0; s < S; ++s) {
    q[s] = reinterpret_cast<const std::uint64_t*>(prepared + s * stride);
    for (int v = 0; v < 2; ++v) qv[s][v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(q[s] + 4 * v));
  }
  const __m256i zero = _mm256_setzero_si256();
  for (std::int64_t j = 0; j < nb; ++j) {
    const std::uint8_t* c = codes + j * W * 8;
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c));
    const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 32));
    __m256i sad[4] = {zero, zero, zero, zero};
    for (int s = 0; s < S; ++s) {
      // At most 16 per byte lane: no overflow.
      const __m256i bytes = _mm256_add_epi8(popcount_bytes(_mm256_xor_si256(x0, qv[s][0])),
                                            popcount_bytes(_mm256_xor_si256(x1, qv[s][1])));
      sad[s] = _mm256_sad_epu8(bytes, zero);
    }
    // Each qword of sad[s] is < 2^32: queries 0|1 and 2|3 share qwords, then the four lanes add up.
    const __m256i p01 = _mm256_or_si256(sad[0], _mm256_slli_epi64(sad[1], 32));
    const __m256i p23 = _mm256_or_si256(sad[2], _mm256_slli_epi64(sad[3], 32));
    const __m128i a = _mm_add_epi64(_mm256_castsi256_si128(p01), _mm256_extracti128_si256(p01, 1));
    const __m128i b = _mm_add_epi64(_mm256_castsi256_si128(p23), _mm256_extracti128_si256(p23, 1));
    alignas(16) std::int32_t t[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(t),
                    _mm_add_epi32(_mm_unpacklo_epi64(a, b), _mm_unpackhi_epi64(a, b)));
    std::int64_t dist[S];
    for (int s = 0; s < S; ++s) dist[s] = t[s];
    for (int w = kVec; w < W; ++w) {
      std::uint64_t x = 0;
      std::memcpy(&x, c + w * 8, 8);
      for (int s = 0; s < S; ++s) dist[s] += static_cast<std::int64_t>(_mm_popcnt_u64(x ^ q[s][w]));
    }
    for (int s = 0; s < S; ++s) out[s * ldo + j] = -static_cast<std::int32_t>(dist[s]);
  }
}

template <int S>
void binary_rows_any(const std::uint8_t* codes, std::int64_t nb, std::int32_t words,
                     const std::uint8_t* prepared, std::int32_t* out, std::int64_t ldo) {
  switch (words) {
    case 8: return binary_rows_fixed<8, S>(codes, nb, prepared, out, ldo);
    case 12: return binary_rows_fixed<12, S>(codes, nb, prepared, out, ldo);
    case 16: return binary_rows_fixed<16, S>(codes, nb, prepared, out, ldo);
    default: return binary_rows<S>(codes, nb, words, prepared, out, ldo);
  }
}

void block_binary(const std::uint8_t* codes, std::int64_t nb, std::int32_t words,
                  const std::uint8_t* prepared, int nq, std::int32_t* out, std::int64_t ldo) {
  const std::int64_t stride = quant_prepared_stride(words, kQuantUnitBinary);
  quant_for_query_groups(nq, [&](auto s, int g) {
    binary_rows_any<decltype(s)::value>(codes, nb, words, prepared + g * stride, out + g * ldo, ldo);
  });
}

// ---- rerank ----
// Float64 sums in the order of QuantRerankFn: lanes 0-3 and 4-7 of the 8 partial sums in two
// vectors, four rows at a time so that eight add chains are in flight. A float times a float is
// exact in double, but (v - q)^2 is not, so no product may be fused with its add (MMCORE_QUANT_NO_FMA
// covers the functions after it: this section is the last of the file).
MMCORE_QUANT_NO_FMA

template <bool kL2>
inline __m256d rerank_term(__m256d acc, __m256d v, __m256d q) {
  if constexpr (kL2) {
    const __m256d e = _mm256_sub_pd(v, q);
    return _mm256_add_pd(acc, _mm256_mul_pd(e, e));
  } else {
    return _mm256_add_pd(acc, _mm256_mul_pd(v, q));
  }
}

template <bool kL2>
void rerank_rows(const float* const* rows, int nr, const float* q, std::int32_t d8, double* lanes) {
  __m256d lo[kQuantRerankRows], hi[kQuantRerankRows];
  for (int r = 0; r < kQuantRerankRows; ++r) lo[r] = hi[r] = _mm256_setzero_pd();
  for (std::int32_t t = 0; t < d8; t += 8) {
    const __m256d qlo = _mm256_cvtps_pd(_mm_loadu_ps(q + t)), qhi = _mm256_cvtps_pd(_mm_loadu_ps(q + t + 4));
    for (int r = 0; r < kQuantRerankRows; ++r) {
      if (r >= nr) break;
      lo[r] = rerank_term<kL2>(lo[r], _mm256_cvtps_pd(_mm_loadu_ps(rows[r] + t)), qlo);
      hi[r] = rerank_term<kL2>(hi[r], _mm256_cvtps_pd(_mm_loadu_ps(rows[r] + t + 4)), qhi);
    }
  }
  for (int r = 0; r < nr; ++r) {
    _mm256_storeu_pd(lanes + 8 * r, lo[r]);
    _mm256_storeu_pd(lanes + 8 * r + 4, hi[r]);
  }
}

void rerank(const float* const* rows, int nr, const float* q, std::int32_t d8, bool l2, double* lanes) {
  if (l2) {
    rerank_rows<true>(rows, nr, q, d8, lanes);
  } else {
    rerank_rows<false>(rows, nr, q, d8, lanes);
  }
}

}  // namespace

QuantKernels quant_kernels_avx2() {
  QuantKernels k;
  k.int8 = {prepare_int8, block_int8};
  k.int4 = {prepare_int4, block_int4};
  k.rerank = rerank;
  k.binary = {quant_kernels_ref().binary.prepare, block_binary};  // prepare: a plain copy
  k.backend = Backend::kAvx2;
  return k;
}

}  // namespace mmcore::detail
