// AVX-512 VNNI quant kernels (contract: quant_internal.h). int8: vpdpbusd multiplies unsigned
// code bytes by signed query bytes and adds groups of four into int32 lanes without saturation,
// so it is exact as is; the row tail is a masked load (nothing read past the row). int4 feeds it
// the code nibbles; binary uses the AVX2 kernels.
#include <immintrin.h>

// GCC 12's _mm512_undefined_epi32() (inside the extracts of _mm512_reduce_add_epi32) initialises a
// variable from itself, which -Wuninitialized reports at every inlined use (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>

#include "quant_internal.h"

namespace mmcore::detail {
namespace {

// Query g as int8, zero-padded to a multiple of 64 dimensions.
void prepare_int8(const void* queries, int nq, std::int32_t d, std::uint8_t* prepared) {
  quant_prepare_int8_bytes(queries, nq, d, prepared, 64);
}

// The sums of four accumulators' 16 lanes, as [sum a, sum b, sum c, sum d]: about a third of the
// instructions of four separate reductions, which cost as much as the products at D = 768.
inline __m128i hsum4(__m512i a, __m512i b, __m512i c, __m512i d) {
  // 128-bit lanes: [a0+a2, a1+a3, b0+b2, b1+b3] and the same for c, d.
  const __m512i ab = _mm512_add_epi32(_mm512_shuffle_i64x2(a, b, 0x44), _mm512_shuffle_i64x2(a, b, 0xee));
  const __m512i cd = _mm512_add_epi32(_mm512_shuffle_i64x2(c, d, 0x44), _mm512_shuffle_i64x2(c, d, 0xee));
  // Lane k holds four partial sums of accumulator k.
  __m512i u = _mm512_add_epi32(_mm512_shuffle_i64x2(ab, cd, 0x88), _mm512_shuffle_i64x2(ab, cd, 0xdd));
  u = _mm512_add_epi32(u, _mm512_shuffle_epi32(u, _MM_PERM_BADC));
  u = _mm512_add_epi32(u, _mm512_shuffle_epi32(u, _MM_PERM_CDAB));
  return _mm512_castsi512_si128(
      _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), u));
}

// ---- int8 and int4: four code rows against S <= 4 queries ----
// int4 codes hold two dimensions per byte, the even one in the low nibble; vpdpbusd takes the
// nibbles (0..15, unsigned) times the signed query bytes as they are: 64 exact products per
// instruction with the int32 accumulation, where the AVX2 kernel needs a vpmaddubsw, a vpaddw and
// periodic widening. An int4 query is split by parity: even dimensions at 0, odd ones at `half`.
//
// The 16 accumulators are named variables. GCC 12 keeps an accumulator array (acc[R][S]) in memory
// here, or copies every accumulator through another register around each vpdpbusd: two to three
// instructions per product instruction, at half the speed of this loop, which issues only the
// loads, the prefetches, the nibble masks and the vpdpbusd of a 64-byte step.
#define MMCORE_TILE_DP(s, x0, x1, x2, x3, y) \
  a0##s = _mm512_dpbusd_epi32(a0##s, x0, y); \
  a1##s = _mm512_dpbusd_epi32(a1##s, x1, y); \
  a2##s = _mm512_dpbusd_epi32(a2##s, x2, y); \
  a3##s = _mm512_dpbusd_epi32(a3##s, x3, y);
#define MMCORE_TILE_QUERY(s)                                                \
  if constexpr (S > s) {                                                    \
    if constexpr (kInt4) {                                                  \
      MMCORE_TILE_DP(s, l0, l1, l2, l3, _mm512_load_si512(q[s] + i))        \
      MMCORE_TILE_DP(s, h0, h1, h2, h3, _mm512_load_si512(q[s] + half + i)) \
    } else {                                                                \
      MMCORE_TILE_DP(s, x0, x1, x2, x3, _mm512_load_si512(q[s] + i))        \
    }                                                                       \
  }
#define MMCORE_TILE_STEP(load)                                                                      \
  {                                                                                                 \
    const __m512i x0 = load(codes + i), x1 = load(codes + row + i), x2 = load(codes + 2 * row + i), \
                  x3 = load(codes + 3 * row + i);                                                   \
    [[maybe_unused]] const __m512i l0 = _mm512_and_si512(x0, low), l1 = _mm512_and_si512(x1, low),  \
                                   l2 = _mm512_and_si512(x2, low), l3 = _mm512_and_si512(x3, low);  \
    [[maybe_unused]] const __m512i h0 = _mm512_and_si512(_mm512_srli_epi16(x0, 4), low),            \
                                   h1 = _mm512_and_si512(_mm512_srli_epi16(x1, 4), low),            \
                                   h2 = _mm512_and_si512(_mm512_srli_epi16(x2, 4), low),            \
                                   h3 = _mm512_and_si512(_mm512_srli_epi16(x3, 4), low);            \
    MMCORE_TILE_QUERY(0) MMCORE_TILE_QUERY(1) MMCORE_TILE_QUERY(2) MMCORE_TILE_QUERY(3)             \
  }

// Rows of `row` code bytes at codes, codes + row, ...; out[s * ldo + r] for query s, row r.
template <bool kInt4, int S>
inline void tile4(const std::uint8_t* codes, std::int64_t row, std::int64_t half,
                  const std::uint8_t* const* q, std::int32_t* out, std::int64_t ldo) {
  const __m512i z = _mm512_setzero_si512(), low = _mm512_set1_epi8(0x0f);
  __m512i a00 = z, a10 = z, a20 = z, a30 = z, a01 = z, a11 = z, a21 = z, a31 = z;
  __m512i a02 = z, a12 = z, a22 = z, a32 = z, a03 = z, a13 = z, a23 = z, a33 = z;
  const std::int64_t r64 = row / 64 * 64;
  const auto full = [](const std::uint8_t* p) { return _mm512_loadu_si512(p); };
  std::int64_t i = 0;
  for (; i < r64; i += 64) {
    // The next tile's rows, 256 bytes per step, as in the AVX2 kernel (never faults past the end).
    const char* next = reinterpret_cast<const char*>(codes + 4 * row + 4 * i);
    _mm_prefetch(next, _MM_HINT_T0);
    _mm_prefetch(next + 64, _MM_HINT_T0);
    _mm_prefetch(next + 128, _MM_HINT_T0);
    _mm_prefetch(next + 192, _MM_HINT_T0);
    MMCORE_TILE_STEP(full)
  }
  if (i < row) {
    const __mmask64 m = (__mmask64{1} << (row - i)) - 1;
    const auto part = [m](const std::uint8_t* p) { return _mm512_maskz_loadu_epi8(m, p); };
    MMCORE_TILE_STEP(part)
  }
  const __m512i a[4][4] = {
      {a00, a10, a20, a30}, {a01, a11, a21, a31}, {a02, a12, a22, a32}, {a03, a13, a23, a33}};
  for (int s = 0; s < S; ++s) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + s * ldo), hsum4(a[s][0], a[s][1], a[s][2], a[s][3]));
  }
}
#undef MMCORE_TILE_STEP
#undef MMCORE_TILE_QUERY
#undef MMCORE_TILE_DP

// One row against S <= 4 queries (the rows after the last whole tile of a block).
template <bool kInt4, int S>
inline void row1(const std::uint8_t* c, std::int64_t row, std::int64_t half, const std::uint8_t* const* q,
                 std::int32_t* out, std::int64_t ldo) {
  const __m512i low = _mm512_set1_epi8(0x0f);
  for (int s = 0; s < S; ++s) {
    __m512i acc = _mm512_setzero_si512();
    for (std::int64_t i = 0; i < row; i += 64) {
      const __mmask64 m = row - i >= 64 ? ~__mmask64{0} : (__mmask64{1} << (row - i)) - 1;
      const __m512i x = _mm512_maskz_loadu_epi8(m, c + i);
      if constexpr (kInt4) {
        acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(x, low), _mm512_load_si512(q[s] + i));
        acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16(x, 4), low),
                                  _mm512_load_si512(q[s] + half + i));
      } else {
        acc = _mm512_dpbusd_epi32(acc, x, _mm512_load_si512(q[s] + i));
      }
    }
    out[s * ldo] = _mm512_reduce_add_epi32(acc);
  }
}

template <bool kInt4, int S>
void rows(const std::uint8_t* codes, std::int64_t nb, std::int32_t d, const std::uint8_t* prepared,
          std::int32_t* out, std::int64_t ldo) {
  const std::int64_t stride = quant_prepared_stride(d, kQuantUnitInt);
  const std::int64_t row = kInt4 ? (d + 1) / 2 : d, half = kInt4 ? quant_int4_half(d, 64) : 0;
  const std::uint8_t* q[S];
  for (int s = 0; s < S; ++s) q[s] = prepared + s * stride;
  std::int64_t j = 0;
  for (; j + 4 <= nb; j += 4) tile4<kInt4, S>(codes + j * row, row, half, q, out + j, ldo);
  for (; j < nb; ++j) row1<kInt4, S>(codes + j * row, row, half, q, out + j, ldo);
}

// One query: rows in order with a software prefetch 2 KiB ahead (as the AVX2 kernel; in-order
// rows streamed faster than 4-row tiles there), four rows' sums reduced together (hsum4).
inline __m512i dot8_row(const std::uint8_t* c, std::int32_t d, const std::uint8_t* q) {
  __m512i acc = _mm512_setzero_si512();
  const std::int32_t d64 = d / 64 * 64;
  for (std::int32_t i = 0; i < d64; i += 64) {
    // A prefetch never faults, so running past the last row is harmless.
    _mm_prefetch(reinterpret_cast<const char*>(c + i + 2048), _MM_HINT_T0);
    acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(c + i), _mm512_load_si512(q + i));
  }
  if (d64 < d) {
    const __mmask64 m = (__mmask64{1} << (d - d64)) - 1;
    acc = _mm512_dpbusd_epi32(acc, _mm512_maskz_loadu_epi8(m, c + d64), _mm512_load_si512(q + d64));
  }
  return acc;
}

void dot8_single(const std::uint8_t* codes, std::int64_t nb, std::int32_t d, const std::uint8_t* prepared,
                 std::int32_t* out) {
  std::int64_t j = 0;
  for (; j + 4 <= nb; j += 4) {
    const std::uint8_t* c = codes + j * d;
    const __m512i a0 = dot8_row(c, d, prepared), a1 = dot8_row(c + d, d, prepared);
    const __m512i a2 = dot8_row(c + 2 * d, d, prepared), a3 = dot8_row(c + 3 * d, d, prepared);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + j), hsum4(a0, a1, a2, a3));
  }
  for (; j < nb; ++j) out[j] = _mm512_reduce_add_epi32(dot8_row(codes + j * d, d, prepared));
}

// Up to 4 queries at a time through the vector kernels, the queries at g * stride.
template <bool kInt4>
void rows_any(const std::uint8_t* codes, std::int64_t nb, std::int32_t d, const std::uint8_t* prepared,
              int nq, std::int32_t* out, std::int64_t ldo) {
  const std::int64_t stride = quant_prepared_stride(d, kQuantUnitInt);
  quant_for_query_groups(nq, [&](auto s, int g) {
    rows<kInt4, decltype(s)::value>(codes, nb, d, prepared + g * stride, out + g * ldo, ldo);
  });
}

// Batches of more than 8 queries go to the AMX tiles where they run and the rows fit (46k x 512,
// 16 queries, two threads: 1.2-1.7 ms against 1.5-2.3 with the vectors); the choice depends only on
// (nq, d), so prepare and block always agree.
#ifdef MMCORE_HAVE_AMX
inline bool use_amx(int nq, std::int32_t d, bool four_bit) {
  return nq > 8 && quant_amx_fits(d, four_bit) && quant_amx_usable();
}
#endif

void prepare_int8_any(const void* queries, int nq, std::int32_t d, std::uint8_t* prepared) {
#ifdef MMCORE_HAVE_AMX
  if (use_amx(nq, d, false)) return quant_amx_prepare(queries, nq, d, false, prepared);
#endif
  prepare_int8(queries, nq, d, prepared);
}

void block_int8(const std::uint8_t* codes, std::int64_t nb, std::int32_t d, const std::uint8_t* prepared,
                int nq, std::int32_t* out, std::int64_t ldo) {
#ifdef MMCORE_HAVE_AMX
  if (use_amx(nq, d, false)) return quant_amx_block(codes, nb, d, false, prepared, nq, out, ldo);
#endif
  if (nq == 1) return dot8_single(codes, nb, d, prepared, out);
  rows_any<false>(codes, nb, d, prepared, nq, out, ldo);
}

void prepare_int4(const void* queries, int nq, std::int32_t d, std::uint8_t* prepared) {
#ifdef MMCORE_HAVE_AMX
  if (use_amx(nq, d, true)) return quant_amx_prepare(queries, nq, d, true, prepared);
#endif
  quant_prepare_int4_split(queries, nq, d, prepared, 64);
}

void block_int4(const std::uint8_t* codes, std::int64_t nb, std::int32_t d, const std::uint8_t* prepared,
                int nq, std::int32_t* out, std::int64_t ldo) {
#ifdef MMCORE_HAVE_AMX
  if (use_amx(nq, d, true)) return quant_amx_block(codes, nb, d, true, prepared, nq, out, ldo);
#endif
  rows_any<true>(codes, nb, d, prepared, nq, out, ldo);
}

// ---- binary: VPOPCNTDQ ----
// Eight words per `vpopcntq` (the AVX2 kernel counts bytes with vpshufb and the tail with scalar
// POPCNT); a row's words beyond a multiple of 8 are a masked load (zeros XOR zeros count 0). Four
// (row, query) counts are reduced together (reduce4).

// The four qword-lane sums of a0..a3 as int32 [a0, a1, a2, a3] (each sum below 2^32).
inline __m128i reduce4(__m512i a0, __m512i a1, __m512i a2, __m512i a3) {
  const __m512i t01 = _mm512_add_epi64(_mm512_unpacklo_epi64(a0, a1), _mm512_unpackhi_epi64(a0, a1));
  const __m512i t23 = _mm512_add_epi64(_mm512_unpacklo_epi64(a2, a3), _mm512_unpackhi_epi64(a2, a3));
  // Per 128-bit lane: qword 0 = a0 | a2 << 32, qword 1 = a1 | a3 << 32 (no carry: sums < 2^32).
  const __m512i u = _mm512_or_si512(t01, _mm512_slli_epi64(t23, 32));
  const __m256i h = _mm256_add_epi64(_mm512_castsi512_si256(u), _mm512_extracti64x4_epi64(u, 1));
  const __m128i q = _mm_add_epi64(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
  return _mm_shuffle_epi32(q, _MM_SHUFFLE(3, 1, 2, 0));  // [a0, a2, a1, a3] -> [a0, a1, a2, a3]
}

// Popcount of (row ^ query) over W words (W_RT when W is 0), in qword lanes.
template <int W>
inline __m512i hamming_lanes(const std::uint64_t* c, const std::uint64_t* q, std::int32_t w_rt) {
  const std::int32_t words = W ? W : w_rt;
  __m512i acc = _mm512_setzero_si512();
  std::int32_t w = 0;
  for (; w + 8 <= words; w += 8) {
    acc = _mm512_add_epi64(
        acc, _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(c + w), _mm512_loadu_si512(q + w))));
  }
  if (w < words) {
    const auto m = static_cast<__mmask8>((1u << (words - w)) - 1u);
    const __m512i x = _mm512_maskz_loadu_epi64(m, c + w), y = _mm512_maskz_loadu_epi64(m, q + w);
    acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(x, y)));
  }
  return acc;
}

// S <= 4 queries: one row at a time, the S counts reduced together. One query: four rows at a time.
template <int W, int S>
void binary_rows512(const std::uint8_t* codes, std::int64_t nb, std::int32_t w_rt,
                    const std::uint8_t* prepared, std::int32_t* out, std::int64_t ldo) {
  const std::int32_t words = W ? W : w_rt;
  const std::int64_t stride = quant_prepared_stride(words, kQuantUnitBinary);
  const auto* base = reinterpret_cast<const std::uint64_t*>(codes);
  const std::uint64_t* q[4];
  for (int s = 0; s < 4; ++s)
    q[s] = reinterpret_cast<const std::uint64_t*>(prepared + (s < S ? s : 0) * stride);
  alignas(16) std::int32_t t[4];
  std::int64_t j = 0;
  if constexpr (S == 1) {
    for (; j + 4 <= nb; j += 4) {
      const std::uint64_t* c = base + j * words;
      const __m128i r =
          reduce4(hamming_lanes<W>(c, q[0], words), hamming_lanes<W>(c + words, q[0], words),
                  hamming_lanes<W>(c + 2 * words, q[0], words), hamming_lanes<W>(c + 3 * words, q[0], words));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + j), _mm_sub_epi32(_mm_setzero_si128(), r));
    }
  }
  const __m512i zero = _mm512_setzero_si512();
  for (; j < nb; ++j) {
    const std::uint64_t* c = base + j * words;
    const __m512i a0 = hamming_lanes<W>(c, q[0], words);
    const __m512i a1 = S > 1 ? hamming_lanes<W>(c, q[1], words) : zero;
    const __m512i a2 = S > 2 ? hamming_lanes<W>(c, q[2], words) : zero;
    const __m512i a3 = S > 3 ? hamming_lanes<W>(c, q[3], words) : zero;
    _mm_store_si128(reinterpret_cast<__m128i*>(t), reduce4(a0, a1, a2, a3));
    for (int s = 0; s < S; ++s) out[s * ldo + j] = -t[s];
  }
}

template <int S>
void binary_rows512_any(const std::uint8_t* codes, std::int64_t nb, std::int32_t words,
                        const std::uint8_t* prepared, std::int32_t* out, std::int64_t ldo) {
  switch (words) {
    case 8: return binary_rows512<8, S>(codes, nb, words, prepared, out, ldo);
    case 12: return binary_rows512<12, S>(codes, nb, words, prepared, out, ldo);
    case 16: return binary_rows512<16, S>(codes, nb, words, prepared, out, ldo);
    default: return binary_rows512<0, S>(codes, nb, words, prepared, out, ldo);
  }
}

void block_binary(const std::uint8_t* codes, std::int64_t nb, std::int32_t words,
                  const std::uint8_t* prepared, int nq, std::int32_t* out, std::int64_t ldo) {
  const std::int64_t stride = quant_prepared_stride(words, kQuantUnitBinary);
  quant_for_query_groups(nq, [&](auto s, int g) {
    binary_rows512_any<decltype(s)::value>(codes, nb, words, prepared + g * stride, out + g * ldo, ldo);
  });
}

// ---- rerank ----
// As the AVX2 kernel, the 8 partial sums in one vector, four rows at a time (MMCORE_QUANT_NO_FMA: no
// product fused with its add, in the functions after it, the last of the file).
MMCORE_QUANT_NO_FMA

template <bool kL2>
inline __m512d rerank_term(__m512d acc, __m512d v, __m512d q) {
  if constexpr (kL2) {
    const __m512d e = _mm512_sub_pd(v, q);
    return _mm512_add_pd(acc, _mm512_mul_pd(e, e));
  } else {
    return _mm512_add_pd(acc, _mm512_mul_pd(v, q));
  }
}

template <bool kL2>
void rerank_rows(const float* const* rows, int nr, const float* q, std::int32_t d8, double* lanes) {
  __m512d acc[kQuantRerankRows];
  for (int r = 0; r < kQuantRerankRows; ++r) acc[r] = _mm512_setzero_pd();
  for (std::int32_t t = 0; t < d8; t += 8) {
    const __m512d qv = _mm512_cvtps_pd(_mm256_loadu_ps(q + t));
    for (int r = 0; r < kQuantRerankRows; ++r) {
      if (r >= nr) break;
      acc[r] = rerank_term<kL2>(acc[r], _mm512_cvtps_pd(_mm256_loadu_ps(rows[r] + t)), qv);
    }
  }
  for (int r = 0; r < nr; ++r) _mm512_storeu_pd(lanes + 8 * r, acc[r]);
}

void rerank(const float* const* rows, int nr, const float* q, std::int32_t d8, bool l2, double* lanes) {
  if (l2) {
    rerank_rows<true>(rows, nr, q, d8, lanes);
  } else {
    rerank_rows<false>(rows, nr, q, d8, lanes);
  }
}

}  // namespace

QuantKernels quant_kernels_avx512() {
  QuantKernels k = quant_kernels_avx2();
  // With AMX, groups of up to 32 queries (block_int8 / block_int4 pick the tiles or the vectors).
#ifdef MMCORE_HAVE_AMX
  const int group = quant_amx_usable() ? kQuantAmxGroup : kQuantGroup;
#else
  const int group = kQuantGroup;
#endif
  k.int8 = {prepare_int8_any, block_int8, group};
  k.int4 = {prepare_int4, block_int4, group};
  k.binary.block = block_binary;  // prepare: the ref's plain copy, as AVX2's
  k.rerank = rerank;
  k.backend = Backend::kAvx512;
  return k;
}

}  // namespace mmcore::detail
