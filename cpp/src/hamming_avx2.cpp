// AVX2 Hamming scan (contract: hamming_internal.h). 64-bit codes: four per vector, byte counts by
// nibble lookups (pshufb) summed by vpsadbw; a group of codes whose distances all miss their
// bounds costs one test, hits are re-derived with POPCNT. 256-bit codes: scalar POPCNT, which beat
// the pshufb version (folding four codes' lane sums) at 1 to 4 queries on an AMD EPYC (Zen 3):
// 1.2-2.1 vs 2.2-5.4 ns per pair in a 2048-code L1 loop; for 64-bit codes pshufb measured 0.25-0.46
// vs 0.32-1.4 ns. Other widths: 5 to 7 words pshufb for the first 4 words and POPCNT for the rest
// (scan_wide4), 8 words and more pshufb 8 words at a time (scan_wide8), 2 and 3 words POPCNT
// (scan_small).
#include <immintrin.h>

#include <algorithm>

#include "hamming_internal.h"

namespace mmcore::detail {
namespace {

// Byte popcounts of v (each 0..8) by two nibble lookups.
inline __m256i popcount_bytes(__m256i v, __m256i lut, __m256i low) {
  const __m256i lo = _mm256_and_si256(v, low);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
  return _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
}

inline __m256i nibble_lut() {
  return _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3,
                          2, 3, 3, 4);
}

// 64-bit codes, four per vector: distances in 64-bit lanes from vpsadbw.
template <int NQ>
std::int64_t scan64_pshufb(const std::uint64_t* queries, const std::uint64_t* base, std::int64_t nb,
                           const std::int32_t* bound, HammingHit* hits) {
  const __m256i lut = nibble_lut(), low = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
  __m256i q[NQ], bd[NQ];
  for (int i = 0; i < NQ; ++i) {
    q[i] = _mm256_set1_epi64x(static_cast<long long>(queries[i]));
    bd[i] = _mm256_set1_epi64x(bound[i]);
  }
  std::int64_t n = 0, j = 0;
  for (; j + 4 <= nb; j += 4) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + j));
    __m256i any = zero;
    for (int i = 0; i < NQ; ++i) {
      const __m256i d = _mm256_sad_epu8(popcount_bytes(_mm256_xor_si256(x, q[i]), lut, low), zero);
      any = _mm256_or_si256(any, _mm256_cmpgt_epi64(bd[i], d));
    }
    if (!_mm256_testz_si256(any, any)) n = scalar_emit<1, NQ>(queries, base, j, j + 4, bound, hits, n);
  }
  return scalar_emit<1, NQ>(queries, base, j, nb, bound, hits, n);
}

// 256-bit codes with scalar POPCNT. Early: when every bound is at most 64, most pairs of
// unrelated codes (64 of the first 128 bits differ on average) already reach it over the first
// two words and skip the other two. At bound 32 (r = 31) and 4 queries that measured 0.9 vs 1.5 ns
// per pair, at bounds 90 to 120 (kNN on 256-bit codes) no gain or a loss, hence the switch.
template <int NQ, bool Early>
std::int64_t scan256_popcnt(const std::uint64_t* queries, const std::uint64_t* base, std::int64_t nb,
                            const std::int32_t* bound, HammingHit* hits) {
  std::int64_t n = 0;
  for (std::int64_t j = 0; j < nb; ++j) {
    const std::uint64_t* x = base + 4 * j;
#pragma GCC unroll 4
    for (int i = 0; i < NQ; ++i) {
      const std::uint64_t* q = queries + 4 * i;
      const auto half = static_cast<std::int32_t>(_mm_popcnt_u64(x[0] ^ q[0]) + _mm_popcnt_u64(x[1] ^ q[1]));
      if (Early && __builtin_expect(half >= bound[i], 1)) continue;
      const std::int32_t d =
          half + static_cast<std::int32_t>(_mm_popcnt_u64(x[2] ^ q[2]) + _mm_popcnt_u64(x[3] ^ q[3]));
      if (__builtin_expect(d < bound[i], 0)) {
        hits[n++] = {static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(j), d};
      }
    }
  }
  return n;
}

template <int NQ>
std::int64_t scan256(const std::uint64_t* queries, const std::uint64_t* base, std::int64_t nb,
                     const std::int32_t* bound, HammingHit* hits) {
  std::int32_t most = 0;
  for (int i = 0; i < NQ; ++i) most = std::max(most, bound[i]);
  return most <= 64 ? scan256_popcnt<NQ, true>(queries, base, nb, bound, hits)
                    : scan256_popcnt<NQ, false>(queries, base, nb, bound, hits);
}

// fn<NQ> for nq queries (1..4).
template <template <int> class Fn>
std::int64_t by_nq(const std::uint64_t* queries, int nq, const std::uint64_t* base, std::int64_t nb,
                   const std::int32_t* bound, HammingHit* hits) {
  switch (nq) {
    case 1: return Fn<1>::run(queries, base, nb, bound, hits);
    case 2: return Fn<2>::run(queries, base, nb, bound, hits);
    case 3: return Fn<3>::run(queries, base, nb, bound, hits);
    default: return Fn<4>::run(queries, base, nb, bound, hits);
  }
}

template <int NQ>
struct Scan64 {
  static std::int64_t run(const std::uint64_t* q, const std::uint64_t* b, std::int64_t nb,
                          const std::int32_t* bd, HammingHit* h) {
    return scan64_pshufb<NQ>(q, b, nb, bd, h);
  }
};

template <int NQ>
struct Scan256 {
  static std::int64_t run(const std::uint64_t* q, const std::uint64_t* b, std::int64_t nb,
                          const std::int32_t* bd, HammingHit* h) {
    return scan256<NQ>(q, b, nb, bd, h);
  }
};

// The four vpsadbw results' lane sums, sums[i] of sad[i] (each qword < 2^32: queries 0|1 and 2|3
// share qwords, then the lanes add up).
inline void sum_sads(const __m256i sad[4], std::int32_t sums[4]) {
  const __m256i p01 = _mm256_or_si256(sad[0], _mm256_slli_epi64(sad[1], 32));
  const __m256i p23 = _mm256_or_si256(sad[2], _mm256_slli_epi64(sad[3], 32));
  const __m128i a = _mm_add_epi64(_mm256_castsi256_si128(p01), _mm256_extracti128_si256(p01, 1));
  const __m128i b = _mm_add_epi64(_mm256_castsi256_si128(p23), _mm256_extracti128_si256(p23, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(sums),
                   _mm_add_epi32(_mm_unpacklo_epi64(a, b), _mm_unpackhi_epi64(a, b)));
}

// Codes of at least 8 words (512 bits and up): each 8 words of a code against each query counted
// with vpshufb (one load of the code serves every query), the code given up once every query's
// distance so far reaches its bound; the last words % 8 with POPCNT. W > 0: the width known at
// compile time.
template <int NQ, int W>
std::int64_t scan_wide8(const std::uint64_t* queries, const std::uint64_t* base, std::int64_t nb,
                        std::int32_t words, const std::int32_t* bound, HammingHit* hits) {
  if constexpr (W > 0) words = W;
  const __m256i lut = nibble_lut(), low = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
  const std::int32_t chunks = words / 8, blocks = words & ~3;
  std::int64_t n = 0;
  for (std::int64_t j = 0; j < nb; ++j) {
    const std::uint64_t* x = base + j * words;
    std::int32_t d[4] = {0, 0, 0, 0};
    bool out = false;
    for (std::int32_t c = 0; c < chunks && !out; ++c) {
      const std::uint64_t* xc = x + 8 * c;
      const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xc));
      const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xc + 4));
      __m256i sad[4] = {zero, zero, zero, zero};
      for (int i = 0; i < NQ; ++i) {
        const std::uint64_t* qc = queries + i * words + 8 * c;
        // At most 16 per byte: no overflow.
        const __m256i bytes = _mm256_add_epi8(
            popcount_bytes(_mm256_xor_si256(x0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qc))),
                           lut, low),
            popcount_bytes(_mm256_xor_si256(x1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qc + 4))),
                           lut, low));
        sad[i] = _mm256_sad_epu8(bytes, zero);
      }
      alignas(16) std::int32_t part[4];
      sum_sads(sad, part);
      out = true;
      for (int i = 0; i < NQ; ++i) {
        d[i] += part[i];
        out = out && d[i] >= bound[i];
      }
    }
    if (out) continue;
    for (int i = 0; i < NQ; ++i) {
      const std::uint64_t* q = queries + i * words;
      const std::int32_t bd = bound[i];
      std::int32_t dist = d[i], w = 8 * chunks;
      for (; w < blocks && dist < bd; w += 4) dist += scalar_dist256(x + w, q + w);
      if (dist >= bd) continue;
      for (; w < words; ++w) dist += scalar_dist64(x[w], q[w]);
      if (dist < bd) hits[n++] = {static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(j), dist};
    }
  }
  return n;
}

// Codes of 2 or 3 words (128, 192 bits): scalar POPCNT over the whole code.
template <int NQ, int W>
std::int64_t scan_small(const std::uint64_t* queries, const std::uint64_t* base, std::int64_t nb,
                        const std::int32_t* bound, HammingHit* hits) {
  static_assert(W == 2 || W == 3);
  std::int64_t n = 0;
  for (std::int64_t j = 0; j < nb; ++j) {
    const std::uint64_t* x = base + j * W;
    for (int i = 0; i < NQ; ++i) {
      const std::uint64_t* q = queries + i * W;
      std::int32_t d = 0;
      for (int w = 0; w < W; ++w) d += scalar_dist64(x[w], q[w]);
      if (d < bound[i]) hits[n++] = {static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(j), d};
    }
  }
  return n;
}

template <int W>
std::int64_t scan_small_nq(const std::uint64_t* queries, int nq, const std::uint64_t* base, std::int64_t nb,
                           const std::int32_t* bound, HammingHit* hits) {
  switch (nq) {
    case 1: return scan_small<1, W>(queries, base, nb, bound, hits);
    case 2: return scan_small<2, W>(queries, base, nb, bound, hits);
    case 3: return scan_small<3, W>(queries, base, nb, bound, hits);
    default: return scan_small<4, W>(queries, base, nb, bound, hits);
  }
}

// Codes of 5 to 7 words: the first 4 words of a code against each query counted with vpshufb
// (the queries' first words held in registers), the last 1 to 3 with POPCNT.
template <int NQ, int W>
std::int64_t scan_wide4(const std::uint64_t* queries, const std::uint64_t* base, std::int64_t nb,
                        const std::int32_t* bound, HammingHit* hits) {
  static_assert(W > 4 && W < 8);
  const __m256i lut = nibble_lut(), low = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
  __m256i q0[NQ];
  for (int i = 0; i < NQ; ++i) q0[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(queries + i * W));
  std::int64_t n = 0;
  for (std::int64_t j = 0; j < nb; ++j) {
    const std::uint64_t* x = base + j * W;
    const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
    __m256i sad[4] = {zero, zero, zero, zero};
    for (int i = 0; i < NQ; ++i) {
      sad[i] = _mm256_sad_epu8(popcount_bytes(_mm256_xor_si256(x0, q0[i]), lut, low), zero);
    }
    alignas(16) std::int32_t first[4];
    sum_sads(sad, first);
    for (int i = 0; i < NQ; ++i) {
      const std::uint64_t* q = queries + i * W;
      std::int32_t d = first[i];
      for (int w = 4; w < W; ++w) d += scalar_dist64(x[w], q[w]);
      if (d < bound[i]) hits[n++] = {static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(j), d};
    }
  }
  return n;
}

template <int W>
std::int64_t scan_wide4_nq(const std::uint64_t* queries, int nq, const std::uint64_t* base, std::int64_t nb,
                           const std::int32_t* bound, HammingHit* hits) {
  switch (nq) {
    case 1: return scan_wide4<1, W>(queries, base, nb, bound, hits);
    case 2: return scan_wide4<2, W>(queries, base, nb, bound, hits);
    case 3: return scan_wide4<3, W>(queries, base, nb, bound, hits);
    default: return scan_wide4<4, W>(queries, base, nb, bound, hits);
  }
}

template <int W>
std::int64_t scan_wide8_nq(const std::uint64_t* queries, int nq, const std::uint64_t* base, std::int64_t nb,
                           std::int32_t words, const std::int32_t* bound, HammingHit* hits) {
  switch (nq) {
    case 1: return scan_wide8<1, W>(queries, base, nb, words, bound, hits);
    case 2: return scan_wide8<2, W>(queries, base, nb, words, bound, hits);
    case 3: return scan_wide8<3, W>(queries, base, nb, words, bound, hits);
    default: return scan_wide8<4, W>(queries, base, nb, words, bound, hits);
  }
}

}  // namespace

std::int64_t hamming_scan64_avx2(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                 std::int64_t nb, const std::int32_t* bound, HammingHit* hits) {
  return by_nq<Scan64>(queries, nq, base, nb, bound, hits);
}

std::int64_t hamming_scan256_avx2(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                  std::int64_t nb, const std::int32_t* bound, HammingHit* hits) {
  return by_nq<Scan256>(queries, nq, base, nb, bound, hits);
}

std::int64_t hamming_scan_wide_avx2(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                    std::int64_t nb, std::int32_t words, const std::int32_t* bound,
                                    HammingHit* hits) {
  switch (words) {
    case 1: return by_nq<Scan64>(queries, nq, base, nb, bound, hits);
    case 2: return scan_small_nq<2>(queries, nq, base, nb, bound, hits);
    case 3: return scan_small_nq<3>(queries, nq, base, nb, bound, hits);
    case 4: return by_nq<Scan256>(queries, nq, base, nb, bound, hits);
    case 5: return scan_wide4_nq<5>(queries, nq, base, nb, bound, hits);
    case 6: return scan_wide4_nq<6>(queries, nq, base, nb, bound, hits);
    case 7: return scan_wide4_nq<7>(queries, nq, base, nb, bound, hits);
    case 8: return scan_wide8_nq<8>(queries, nq, base, nb, words, bound, hits);
    case 12: return scan_wide8_nq<12>(queries, nq, base, nb, words, bound, hits);
    case 16: return scan_wide8_nq<16>(queries, nq, base, nb, words, bound, hits);
    default: return scan_wide8_nq<0>(queries, nq, base, nb, words, bound, hits);  // 9 words and more
  }
}

}  // namespace mmcore::detail
