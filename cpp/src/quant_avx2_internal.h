// AVX2 helpers shared by the quant kernels built with AVX2 (quant_avx2.cpp, quant_avxvnni.cpp); not
// included by the scalar code.
#pragma once
#include <immintrin.h>

namespace mmcore::detail {

/// The four int32 lane sums of a[0..3] (those from N on taken as zero) as one vector: three vphaddd
/// and one add where four separate horizontal sums take 24 instructions.
template <int N>
inline __m128i quant_hsum4(const __m256i* a) {
  const __m256i z = _mm256_setzero_si256();
  const __m256i h01 = _mm256_hadd_epi32(a[0], N > 1 ? a[1] : z);
  const __m256i h23 = _mm256_hadd_epi32(N > 2 ? a[2] : z, N > 3 ? a[3] : z);
  const __m256i h = _mm256_hadd_epi32(h01, h23);
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

}  // namespace mmcore::detail
