// AVX-512 PDQ luma rows (pdq_luma_internal.h), bit-identical to pdq_luma_row_ref.
//
// Each pixel becomes a dword (R, G, B, x): a 4-channel row is loaded as is; a 3-channel row's 48
// bytes go through vpermd (pixels 4L..4L+3 into 128-bit lane L) and vpshufb, as in
// luma_avx512.cpp. The products and sums use the explicit-rounding intrinsics
// (_mm512_mul_round_ps / _mm512_add_round_ps and the _pd ones, round to nearest): the compiler
// cannot contract those into FMAs, which this file's -mfma would otherwise allow. float32 mode:
// (R * 0.299f + G * 0.587f) + B * 0.114f in float; pdqhash mode: the same in double, 8 pixels per
// register, then rounded to float. Masked loads and stores handle the tail.
#include <immintrin.h>

#include "pdq_luma_internal.h"

namespace mmcore::detail {
namespace {

constexpr int kNear = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

/// 16 pixels as dwords (R, G, B, x) from `n` <= 16 pixels at p.
inline __m512i load_pixels(const std::uint8_t* p, std::int32_t channels, std::int32_t n) {
  if (channels == 4) {
    const __mmask16 m = n >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << n) - 1);
    return _mm512_maskz_loadu_epi32(m, p);
  }
  const std::int32_t bytes = 3 * n;
  const __mmask64 m = bytes >= 64 ? ~__mmask64{0} : ((__mmask64{1} << bytes) - 1);
  const __m512i raw = _mm512_maskz_loadu_epi8(m & 0xFFFFFFFFFFFFull, p);  // at most 48 bytes
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 0, 3, 4, 5, 0, 6, 7, 8, 0, 9, 10, 11, 0);
  const __m512i spread =
      _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1));
  return _mm512_shuffle_epi8(_mm512_permutexvar_epi32(lanes, raw), spread);
}

inline void luma16(__m512i px, PdqLuma mode, float* out, __mmask16 store) {
  const __m512i byte = _mm512_set1_epi32(0xFF);
  const __m512i r = _mm512_and_si512(px, byte);
  const __m512i g = _mm512_and_si512(_mm512_srli_epi32(px, 8), byte);
  const __m512i b = _mm512_and_si512(_mm512_srli_epi32(px, 16), byte);
  if (mode == PdqLuma::kReference) {
    const __m512 pr = _mm512_mul_round_ps(_mm512_cvtepi32_ps(r), _mm512_set1_ps(0.299f), kNear);
    const __m512 pg = _mm512_mul_round_ps(_mm512_cvtepi32_ps(g), _mm512_set1_ps(0.587f), kNear);
    const __m512 pb = _mm512_mul_round_ps(_mm512_cvtepi32_ps(b), _mm512_set1_ps(0.114f), kNear);
    _mm512_mask_storeu_ps(out, store, _mm512_add_round_ps(_mm512_add_round_ps(pr, pg, kNear), pb, kNear));
    return;
  }
  auto half = [&](__m256i r8, __m256i g8, __m256i b8) {
    const __m512d pr = _mm512_mul_round_pd(_mm512_cvtepi32_pd(r8), _mm512_set1_pd(0.299), kNear);
    const __m512d pg = _mm512_mul_round_pd(_mm512_cvtepi32_pd(g8), _mm512_set1_pd(0.587), kNear);
    const __m512d pb = _mm512_mul_round_pd(_mm512_cvtepi32_pd(b8), _mm512_set1_pd(0.114), kNear);
    return _mm512_cvt_roundpd_ps(_mm512_add_round_pd(_mm512_add_round_pd(pr, pg, kNear), pb, kNear), kNear);
  };
  const __m256 lo = half(_mm512_castsi512_si256(r), _mm512_castsi512_si256(g), _mm512_castsi512_si256(b));
  const __m256 hi =
      half(_mm512_extracti64x4_epi64(r, 1), _mm512_extracti64x4_epi64(g, 1), _mm512_extracti64x4_epi64(b, 1));
  const __m512 all = _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
  _mm512_mask_storeu_ps(out, store, all);
}

}  // namespace

void pdq_luma_row_avx512(const std::uint8_t* px, std::int32_t channels, std::int32_t width, PdqLuma mode,
                         float* out) {
  std::int32_t x = 0;
  for (; x + 16 <= width; x += 16)
    luma16(load_pixels(px + x * channels, channels, 16), mode, out + x, 0xFFFF);
  if (x < width) {
    const std::int32_t n = width - x;
    luma16(load_pixels(px + x * channels, channels, n), mode, out + x, static_cast<__mmask16>((1u << n) - 1));
  }
}

}  // namespace mmcore::detail
