// AVX2 Hamming scan (contract: hamming_internal.h). Distances are computed with vector nibble
// lookups (pshufb) or scalar POPCNT, whichever measured faster for the code width; a group of
// codes whose distances all miss their bounds costs one test, hits are re-derived with POPCNT.
#include <immintrin.h>

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

// 64-bit codes with scalar POPCNT.
template <int NQ>
std::int64_t scan64_popcnt(const std::uint64_t* queries, const std::uint64_t* base, std::int64_t nb,
                           const std::int32_t* bound, HammingHit* hits) {
  std::uint64_t q[NQ];
  std::int32_t bd[NQ];
  for (int i = 0; i < NQ; ++i) q[i] = queries[i], bd[i] = bound[i];
  std::int64_t n = 0;
  for (std::int64_t j = 0; j < nb; ++j) {
    const std::uint64_t x = base[j];
    for (int i = 0; i < NQ; ++i) {
      const std::int32_t d = scalar_dist64(x, q[i]);
      if (__builtin_expect(d < bd[i], 0)) {
        hits[n++] = {static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(j), d};
      }
    }
  }
  return n;
}

// 256-bit codes, one per vector: four codes' lane sums are folded into one vector of 32-bit
// distances.
template <int NQ>
std::int64_t scan256_pshufb(const std::uint64_t* queries, const std::uint64_t* base, std::int64_t nb,
                            const std::int32_t* bound, HammingHit* hits) {
  const __m256i lut = nibble_lut(), low = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
  __m256i q[NQ];
  __m128i bd[NQ];
  for (int i = 0; i < NQ; ++i) {
    q[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(queries + 4 * i));
    bd[i] = _mm_set1_epi32(bound[i]);
  }
  std::int64_t n = 0, j = 0;
  for (; j + 4 <= nb; j += 4) {
    __m256i x[4];
    for (int c = 0; c < 4; ++c)
      x[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + 4 * (j + c)));
    __m128i any = _mm_setzero_si128();
    for (int i = 0; i < NQ; ++i) {
      __m256i s[4];
      for (int c = 0; c < 4; ++c) {
        s[c] = _mm256_sad_epu8(popcount_bytes(_mm256_xor_si256(x[c], q[i]), lut, low), zero);
      }
      // 32-bit lanes: t01 = [s0.0 s1.0 s0.1 s1.1 | s0.2 s1.2 s0.3 s1.3], t23 likewise.
      const __m256i t01 = _mm256_or_si256(s[0], _mm256_slli_epi64(s[1], 32));
      const __m256i t23 = _mm256_or_si256(s[2], _mm256_slli_epi64(s[3], 32));
      const __m256i y = _mm256_add_epi32(_mm256_unpacklo_epi64(t01, t23), _mm256_unpackhi_epi64(t01, t23));
      const __m128i d = _mm_add_epi32(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
      any = _mm_or_si128(any, _mm_cmpgt_epi32(bd[i], d));
    }
    if (!_mm_testz_si128(any, any)) n = scalar_emit<4, NQ>(queries, base, j, j + 4, bound, hits, n);
  }
  return scalar_emit<4, NQ>(queries, base, j, nb, bound, hits, n);
}

// 256-bit codes with scalar POPCNT.
template <int NQ>
std::int64_t scan256_popcnt(const std::uint64_t* queries, const std::uint64_t* base, std::int64_t nb,
                            const std::int32_t* bound, HammingHit* hits) {
  std::int64_t n = 0;
  for (std::int64_t j = 0; j < nb; ++j) {
    const std::uint64_t* x = base + 4 * j;
    for (int i = 0; i < NQ; ++i) {
      const std::int32_t d = scalar_dist256(x, queries + 4 * i);
      if (__builtin_expect(d < bound[i], 0)) {
        hits[n++] = {static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(j), d};
      }
    }
  }
  return n;
}

#define MMCORE_HAMMING_BY_NQ(fn)                           \
  switch (nq) {                                            \
    case 1: return fn<1>(queries, base, nb, bound, hits);  \
    case 2: return fn<2>(queries, base, nb, bound, hits);  \
    case 3: return fn<3>(queries, base, nb, bound, hits);  \
    default: return fn<4>(queries, base, nb, bound, hits); \
  }

}  // namespace

std::int64_t hamming_scan64_avx2_pshufb(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                        std::int64_t nb, const std::int32_t* bound,
                                        HammingHit* hits){MMCORE_HAMMING_BY_NQ(scan64_pshufb)} std::int64_t
    hamming_scan64_avx2_popcnt(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                               std::int64_t nb, const std::int32_t* bound,
                               HammingHit* hits){MMCORE_HAMMING_BY_NQ(scan64_popcnt)} std::int64_t
    hamming_scan256_avx2_pshufb(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                std::int64_t nb, const std::int32_t* bound,
                                HammingHit* hits){MMCORE_HAMMING_BY_NQ(scan256_pshufb)} std::int64_t
    hamming_scan256_avx2_popcnt(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                std::int64_t nb, const std::int32_t* bound,
                                HammingHit* hits){MMCORE_HAMMING_BY_NQ(scan256_popcnt)}

std::int64_t hamming_scan64_avx2(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                 std::int64_t nb, const std::int32_t* bound, HammingHit* hits) {
  return hamming_scan64_avx2_pshufb(queries, nq, base, nb, bound, hits);
}
std::int64_t hamming_scan256_avx2(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                  std::int64_t nb, const std::int32_t* bound, HammingHit* hits) {
  return hamming_scan256_avx2_pshufb(queries, nq, base, nb, bound, hits);
}

}  // namespace mmcore::detail
