// AVX2 PDQ luma rows (pdq_luma_internal.h), bit-identical to pdq_luma_row_ref.
//
// Each pixel becomes a dword (R, G, B, x), 8 per register: a 4-channel row is loaded as is; a
// 3-channel row as bytes 0..15 and 12..27 of the 8 pixels' 24 (one 128-bit lane each), spread by
// vpshufb, so the main loop reads 4 bytes past the 8 pixels and stops 2 pixels before the row's end;
// the last pixels go through a zero-padded copy. float32 mode: (R * 0.299f + G * 0.587f) + B * 0.114f in
// float; pdqhash mode: the same in double, 4 pixels per register, then rounded to float. This file is built
// with -mfma and GCC contracts a vector multiply feeding an add into an FMA, which rounds once and changes
// the bits: every product passes through `rounded` (an empty asm that makes the value opaque), so each is
// rounded to its type before the sum.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "pdq_luma_internal.h"

namespace mmcore::detail {
namespace {

template <typename V>
[[gnu::always_inline]] inline V rounded(V v) {
  asm("" : "+x"(v));
  return v;
}

/// 8 pixels as dwords (R, G, B, x) at p; a 3-channel load reads 28 bytes.
[[gnu::always_inline]] inline __m256i load8(const std::uint8_t* p, std::int32_t channels) {
  if (channels == 4) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i raw = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 12)),
                                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m256i spread = _mm256_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1,  //
                                          0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1);
  return _mm256_shuffle_epi8(raw, spread);
}

[[gnu::always_inline]] inline __m256d sum_pd(__m128i r, __m128i g, __m128i b) {
  const __m256d pr = rounded(_mm256_mul_pd(_mm256_cvtepi32_pd(r), _mm256_set1_pd(0.299)));
  const __m256d pg = rounded(_mm256_mul_pd(_mm256_cvtepi32_pd(g), _mm256_set1_pd(0.587)));
  const __m256d pb = rounded(_mm256_mul_pd(_mm256_cvtepi32_pd(b), _mm256_set1_pd(0.114)));
  return _mm256_add_pd(_mm256_add_pd(pr, pg), pb);
}

[[gnu::always_inline]] inline void luma8(__m256i px, PdqLuma mode, float* out) {
  const __m256i byte = _mm256_set1_epi32(0xFF);
  const __m256i r = _mm256_and_si256(px, byte);
  const __m256i g = _mm256_and_si256(_mm256_srli_epi32(px, 8), byte);
  const __m256i b = _mm256_and_si256(_mm256_srli_epi32(px, 16), byte);
  if (mode == PdqLuma::kReference) {
    const __m256 pr = rounded(_mm256_mul_ps(_mm256_cvtepi32_ps(r), _mm256_set1_ps(0.299f)));
    const __m256 pg = rounded(_mm256_mul_ps(_mm256_cvtepi32_ps(g), _mm256_set1_ps(0.587f)));
    const __m256 pb = rounded(_mm256_mul_ps(_mm256_cvtepi32_ps(b), _mm256_set1_ps(0.114f)));
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(pr, pg), pb));
    return;
  }
  const __m128 lo = _mm256_cvtpd_ps(
      sum_pd(_mm256_castsi256_si128(r), _mm256_castsi256_si128(g), _mm256_castsi256_si128(b)));
  const __m128 hi = _mm256_cvtpd_ps(
      sum_pd(_mm256_extracti128_si256(r, 1), _mm256_extracti128_si256(g, 1), _mm256_extracti128_si256(b, 1)));
  _mm256_storeu_ps(out, _mm256_set_m128(hi, lo));
}

}  // namespace

void pdq_luma_row_avx2(const std::uint8_t* px, std::int32_t channels, std::int32_t width, PdqLuma mode,
                       float* out) {
  // A 3-channel load reads 4 bytes past its 8 pixels: at least 2 more pixels must follow.
  const std::int32_t spare = channels == 4 ? 0 : 2;
  std::int32_t x = 0;
  for (; x + 8 + spare <= width; x += 8) luma8(load8(px + x * channels, channels), mode, out + x);
  // The last pixels through a zero-padded copy: nothing read or written past the row, and no call to
  // the ref, whose tables cost more than a few pixels.
  while (x < width) {
    const std::int32_t n = std::min(width - x, std::int32_t{8});
    alignas(32) std::uint8_t in[32] = {};
    alignas(32) float lum[8];
    std::memcpy(in, px + x * channels, static_cast<std::size_t>(n) * channels);
    luma8(load8(in, channels), mode, lum);
    std::memcpy(out + x, lum, static_cast<std::size_t>(n) * sizeof(float));
    x += n;
  }
}

}  // namespace mmcore::detail
