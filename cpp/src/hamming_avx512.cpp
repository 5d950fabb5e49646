// AVX-512 Hamming scan (contract: hamming_internal.h): VPOPCNTDQ counts eight 64-bit lanes per
// instruction, and compares write mask registers, so a group of codes whose distances all miss
// their bounds costs one mask test; hits are re-derived with scalar POPCNT.
#include <immintrin.h>

// GCC 12's _mm512_undefined_epi32() (inside unpack/shuffle/broadcast intrinsics) initialises a
// variable from itself, which -Wuninitialized reports at every inlined use (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "hamming_internal.h"

namespace mmcore::detail {
namespace {

// 64-bit codes, eight per vector.
template <int NQ>
std::int64_t scan64(const std::uint64_t* queries, const std::uint64_t* base, std::int64_t nb,
                    const std::int32_t* bound, HammingHit* hits) {
  __m512i q[NQ], bd[NQ];
  for (int i = 0; i < NQ; ++i) {
    q[i] = _mm512_set1_epi64(static_cast<long long>(queries[i]));
    bd[i] = _mm512_set1_epi64(bound[i]);
  }
  std::int64_t n = 0, j = 0;
  for (; j + 8 <= nb; j += 8) {
    const __m512i x = _mm512_loadu_si512(base + j);
    __mmask8 any = 0;
    for (int i = 0; i < NQ; ++i) {
      const __m512i d = _mm512_popcnt_epi64(_mm512_xor_si512(x, q[i]));
      any = static_cast<__mmask8>(any | _mm512_cmplt_epi64_mask(d, bd[i]));
    }
    if (any != 0) n = scalar_emit<1, NQ>(queries, base, j, j + 8, bound, hits, n);
  }
  return scalar_emit<1, NQ>(queries, base, j, nb, bound, hits, n);
}

// 256-bit codes, two per vector: eight codes' lane counts are folded into one vector of eight
// distances (in the code order 0 2 1 3 4 6 5 7, which only the any-hit test sees).
template <int NQ>
std::int64_t scan256(const std::uint64_t* queries, const std::uint64_t* base, std::int64_t nb,
                     const std::int32_t* bound, HammingHit* hits) {
  __m512i q[NQ], bd[NQ];
  for (int i = 0; i < NQ; ++i) {
    q[i] = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(queries + 4 * i)));
    bd[i] = _mm512_set1_epi64(bound[i]);
  }
  std::int64_t n = 0, j = 0;
  for (; j + 8 <= nb; j += 8) {
    __m512i x[4];
    for (int c = 0; c < 4; ++c) x[c] = _mm512_loadu_si512(base + 4 * (j + 2 * c));
    __mmask8 any = 0;
    for (int i = 0; i < NQ; ++i) {
      __m512i p[4];
      for (int c = 0; c < 4; ++c) p[c] = _mm512_popcnt_epi64(_mm512_xor_si512(x[c], q[i]));
      // Per 128-bit lane: the sum of each 64-bit pair of p[0] (then p[1]); likewise p[2], p[3].
      const __m512i s01 =
          _mm512_add_epi64(_mm512_unpacklo_epi64(p[0], p[1]), _mm512_unpackhi_epi64(p[0], p[1]));
      const __m512i s23 =
          _mm512_add_epi64(_mm512_unpacklo_epi64(p[2], p[3]), _mm512_unpackhi_epi64(p[2], p[3]));
      // Lanes 0+1 and 2+3 hold the halves of one code each.
      const __m512i d = _mm512_add_epi64(_mm512_shuffle_i64x2(s01, s23, _MM_SHUFFLE(2, 0, 2, 0)),
                                         _mm512_shuffle_i64x2(s01, s23, _MM_SHUFFLE(3, 1, 3, 1)));
      any = static_cast<__mmask8>(any | _mm512_cmplt_epi64_mask(d, bd[i]));
    }
    if (any != 0) n = scalar_emit<4, NQ>(queries, base, j, j + 8, bound, hits, n);
  }
  return scalar_emit<4, NQ>(queries, base, j, nb, bound, hits, n);
}

}  // namespace

std::int64_t hamming_scan64_avx512(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                   std::int64_t nb, const std::int32_t* bound, HammingHit* hits) {
  switch (nq) {
    case 1: return scan64<1>(queries, base, nb, bound, hits);
    case 2: return scan64<2>(queries, base, nb, bound, hits);
    case 3: return scan64<3>(queries, base, nb, bound, hits);
    default: return scan64<4>(queries, base, nb, bound, hits);
  }
}

std::int64_t hamming_scan256_avx512(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                    std::int64_t nb, const std::int32_t* bound, HammingHit* hits) {
  switch (nq) {
    case 1: return scan256<1>(queries, base, nb, bound, hits);
    case 2: return scan256<2>(queries, base, nb, bound, hits);
    case 3: return scan256<3>(queries, base, nb, bound, hits);
    default: return scan256<4>(queries, base, nb, bound, hits);
  }
}

}  // namespace mmcore::detail
