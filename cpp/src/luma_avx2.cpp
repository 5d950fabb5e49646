// AVX2 Pillow-L conversion: 16 RGB pixels (48 bytes) per step, deinterleaved with pshufb, then the
// exact integer formula in 32-bit lanes. Bit-identical to luma_row_ref (tests/cpp/test_luma.cpp
// checks every RGB value and every tail length); the tail (< 16 pixels) runs the scalar formula,
// so nothing is read or written past the row.
#include <immintrin.h>

#include "luma_internal.h"

namespace mmcore::detail {
namespace {

/// pshufb mask that gathers channel `c` of pixels from 16-byte block `k` of a 48-byte group into
/// the pixel's output position (-128 = zero, so the three blocks' results can be OR-ed).
__m128i gather_mask(int c, int k) {
  alignas(16) std::int8_t m[16];
  for (int j = 0; j < 16; ++j) {
    const int src = 3 * j + c - 16 * k;
    m[j] = static_cast<std::int8_t>(src >= 0 && src < 16 ? src : -128);
  }
  return _mm_load_si128(reinterpret_cast<const __m128i*>(m));
}

/// (cr R + cg G + cb B + 0x8000) >> 16 for 8 pixels, 32-bit lanes.
__m256i luma8(__m128i r, __m128i g, __m128i b, __m256i cr, __m256i cg, __m256i cb, __m256i half) {
  __m256i acc = _mm256_mullo_epi32(_mm256_cvtepu8_epi32(r), cr);
  acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(g), cg));
  acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(b), cb));
  return _mm256_srli_epi32(_mm256_add_epi32(acc, half), 16);
}

}  // namespace

void luma_row_avx2(const std::uint8_t* rgb, std::uint8_t* out, std::int32_t width) {
  __m128i mask[3][3];
  for (int c = 0; c < 3; ++c)
    for (int k = 0; k < 3; ++k) mask[c][k] = gather_mask(c, k);
  const __m256i cr = _mm256_set1_epi32(19595), cg = _mm256_set1_epi32(38470);
  const __m256i cb = _mm256_set1_epi32(7471), half = _mm256_set1_epi32(0x8000);
  std::int32_t x = 0;
  for (; x + 16 <= width; x += 16) {
    const std::uint8_t* p = rgb + 3 * x;
    const __m128i a0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i a1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16));
    const __m128i a2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32));
    __m128i ch[3];
    for (int c = 0; c < 3; ++c) {
      ch[c] = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(a0, mask[c][0]), _mm_shuffle_epi8(a1, mask[c][1])),
                           _mm_shuffle_epi8(a2, mask[c][2]));
    }
    const __m256i lo = luma8(ch[0], ch[1], ch[2], cr, cg, cb, half);
    const __m256i hi =
        luma8(_mm_srli_si128(ch[0], 8), _mm_srli_si128(ch[1], 8), _mm_srli_si128(ch[2], 8), cr, cg, cb, half);
    // packus works within 128-bit lanes: [lo0-3 hi0-3 | lo4-7 hi4-7]; reorder the 64-bit quarters.
    const __m256i w = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xD8);
    const __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + x), bytes);
  }
  luma_row_ref(rgb + 3 * x, out + x, width - x);
}

}  // namespace mmcore::detail
