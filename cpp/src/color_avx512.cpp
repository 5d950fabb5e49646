// AVX-512 (BW) YCbCr -> RGB rows, 32 pixels per step in int16 lanes, bit-identical to
// ycc_rgb_row_ref.
//
// The 16-bit constants do not fit an int16, so each product is split into what does:
//   R: FIX(1.402) = 2^16 + 26345, so R - Y = Cr' + ((26345 Cr' + 2^15) >> 16), and
//      floor((c x + 2^15) / 2^16) = (mulhi(2x, c) + 1) >> 1 (floor of a floor);
//   B: FIX(1.772) = 2^17 - 14942, so B - Y = 2 Cb' + ((-14942 Cb' + 2^15) >> 16), the same way;
//   G: -FIX(0.71414) = -2^16 + 18734, so G - Y = -Cr' + ((-22554 Cb' + 18734 Cr' + 2^15) >> 16),
//      whose two products are summed exactly in int32 by one vpmaddwd on (Cb', Cr') pairs.
// Each pixel then becomes a dword (R, G, B, 0); vpshufb packs each lane's four pixels into 12
// bytes and a two-source dword permute joins 16 pixels into 48 bytes, stored with a mask. The
// last partial step works in a local buffer: nothing is read or written past the row.
#include <immintrin.h>

#include <cstring>

#include "color_internal.h"

namespace mmcore::detail {
namespace {

using namespace ycc;

/// (mulhi(2x, c) + 1) >> 1 = (c x + 2^15) >> 16 for int16 x, |x| <= 128.
inline __m512i round_mul(__m512i x2, __m512i c, __m512i one) {
  return _mm512_srai_epi16(_mm512_add_epi16(_mm512_mulhi_epi16(x2, c), one), 1);
}

/// 32 pixels: Y, Cb, Cr as zero-extended int16 -> 96 bytes of RGB at `out`.
inline void convert32(__m512i y, __m512i cb, __m512i cr, std::uint8_t* out) {
  const __m512i one = _mm512_set1_epi16(1);
  const __m512i bias = _mm512_set1_epi16(128);
  cb = _mm512_sub_epi16(cb, bias);
  cr = _mm512_sub_epi16(cr, bias);
  const __m512i cb2 = _mm512_add_epi16(cb, cb), cr2 = _mm512_add_epi16(cr, cr);
  const __m512i r = _mm512_add_epi16(_mm512_add_epi16(y, cr), round_mul(cr2, _mm512_set1_epi16(kRLow), one));
  const __m512i b = _mm512_add_epi16(_mm512_add_epi16(y, cb2), round_mul(cb2, _mm512_set1_epi16(kBLow), one));
  const __m512i kg = _mm512_set1_epi32(static_cast<std::int32_t>(static_cast<std::uint16_t>(kCbG)) |
                                       (static_cast<std::int32_t>(kGCr) << 16));
  const __m512i half = _mm512_set1_epi32(1 << (kScaleBits - 1));
  const __m512i g_lo = _mm512_srai_epi32(
      _mm512_add_epi32(_mm512_madd_epi16(_mm512_unpacklo_epi16(cb, cr), kg), half), kScaleBits);
  const __m512i g_hi = _mm512_srai_epi32(
      _mm512_add_epi32(_mm512_madd_epi16(_mm512_unpackhi_epi16(cb, cr), kg), half), kScaleBits);
  const __m512i g = _mm512_add_epi16(_mm512_sub_epi16(y, cr), _mm512_packs_epi32(g_lo, g_hi));
  const __m512i zero = _mm512_setzero_si512(), top = _mm512_set1_epi16(255);
  auto clamp = [&](__m512i v) { return _mm512_min_epi16(_mm512_max_epi16(v, zero), top); };
  // (R | G << 8) and (B) words -> (R, G, B, 0) dwords: pixels 0-3 of each lane from unpacklo,
  // 4-7 from unpackhi.
  const __m512i rg = _mm512_or_si512(clamp(r), _mm512_slli_epi16(clamp(g), 8));
  const __m512i bb = clamp(b);
  const __m512i shuffle =
      _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1));
  const __m512i p_lo = _mm512_shuffle_epi8(_mm512_unpacklo_epi16(rg, bb), shuffle);
  const __m512i p_hi = _mm512_shuffle_epi8(_mm512_unpackhi_epi16(rg, bb), shuffle);
  // Lane k of p_lo holds pixels 8k..8k+3 in its first 12 bytes, lane k of p_hi 8k+4..8k+7.
  const __m512i first = _mm512_setr_epi32(0, 1, 2, 16, 17, 18, 4, 5, 6, 20, 21, 22, 0, 0, 0, 0);
  const __m512i second = _mm512_setr_epi32(8, 9, 10, 24, 25, 26, 12, 13, 14, 28, 29, 30, 0, 0, 0, 0);
  _mm512_mask_storeu_epi32(out, 0x0FFF, _mm512_permutex2var_epi32(p_lo, first, p_hi));
  _mm512_mask_storeu_epi32(out + 48, 0x0FFF, _mm512_permutex2var_epi32(p_lo, second, p_hi));
}

inline __m512i widen(const std::uint8_t* p) {
  return _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

}  // namespace

void ycc_rgb_row_avx512(const std::uint8_t* y, const std::uint8_t* cb, const std::uint8_t* cr,
                        std::uint8_t* rgb, std::uint32_t width) {
  std::uint32_t i = 0;
  for (; i + 32 <= width; i += 32) convert32(widen(y + i), widen(cb + i), widen(cr + i), rgb + 3 * i);
  if (i == width) return;
  const __mmask32 m = (1u << (width - i)) - 1;  // width - i < 32
  alignas(64) std::uint8_t tail[96];
  convert32(_mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, y + i)),
            _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, cb + i)),
            _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, cr + i)), tail);
  std::memcpy(rgb + 3 * i, tail, 3 * static_cast<std::size_t>(width - i));
}

}  // namespace mmcore::detail
