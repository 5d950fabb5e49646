// AVX2 YCbCr -> RGB rows, 16 pixels per step in int16 lanes, bit-identical to ycc_rgb_row_ref:
// color_avx512.cpp's arithmetic (its header explains the split constants) on 256-bit vectors.
// Packing: the (R | G << 8) and B words are reordered by 64-bit quarters first, so that unpacklo /
// unpackhi (which work within 128-bit lanes) give pixels 0-7 and 8-15 in order; vpshufb packs
// each lane's four (R, G, B, 0) dwords into 12 bytes and a dword permute joins the two lanes into
// 24 bytes, stored as 16 + 8. The last partial step works in a local buffer: nothing is read or
// written past the row.
#include <immintrin.h>

#include <cstring>

#include "color_internal.h"

namespace mmcore::detail {
namespace {

using namespace ycc;

/// (mulhi(2x, c) + 1) >> 1 = (c x + 2^15) >> 16 for int16 x, |x| <= 128.
inline __m256i round_mul(__m256i x2, __m256i c, __m256i one) {
  return _mm256_srai_epi16(_mm256_add_epi16(_mm256_mulhi_epi16(x2, c), one), 1);
}

/// Eight (R | G << 8, B) word pairs of one unpack -> 24 bytes of RGB at `out`.
inline void store8(__m256i rgb0, std::uint8_t* out) {
  const __m256i shuffle = _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1,  //
                                           0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
  const __m256i packed = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(rgb0, shuffle),
                                                     _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(packed));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out + 16), _mm256_extracti128_si256(packed, 1));
}

/// 16 pixels: Y, Cb, Cr as zero-extended int16 -> 48 bytes of RGB at `out`.
inline void convert16(__m256i y, __m256i cb, __m256i cr, std::uint8_t* out) {
  const __m256i one = _mm256_set1_epi16(1);
  const __m256i bias = _mm256_set1_epi16(128);
  cb = _mm256_sub_epi16(cb, bias);
  cr = _mm256_sub_epi16(cr, bias);
  const __m256i cb2 = _mm256_add_epi16(cb, cb), cr2 = _mm256_add_epi16(cr, cr);
  const __m256i r = _mm256_add_epi16(_mm256_add_epi16(y, cr), round_mul(cr2, _mm256_set1_epi16(kRLow), one));
  const __m256i b = _mm256_add_epi16(_mm256_add_epi16(y, cb2), round_mul(cb2, _mm256_set1_epi16(kBLow), one));
  const __m256i kg = _mm256_set1_epi32(static_cast<std::int32_t>(static_cast<std::uint16_t>(kCbG)) |
                                       (static_cast<std::int32_t>(kGCr) << 16));
  const __m256i half = _mm256_set1_epi32(1 << (kScaleBits - 1));
  // unpack / pack pair up within lanes, so packs gives the words back in their own order.
  const __m256i g_lo = _mm256_srai_epi32(
      _mm256_add_epi32(_mm256_madd_epi16(_mm256_unpacklo_epi16(cb, cr), kg), half), kScaleBits);
  const __m256i g_hi = _mm256_srai_epi32(
      _mm256_add_epi32(_mm256_madd_epi16(_mm256_unpackhi_epi16(cb, cr), kg), half), kScaleBits);
  const __m256i g = _mm256_add_epi16(_mm256_sub_epi16(y, cr), _mm256_packs_epi32(g_lo, g_hi));
  const __m256i zero = _mm256_setzero_si256(), top = _mm256_set1_epi16(255);
  auto clamp = [&](__m256i v) { return _mm256_min_epi16(_mm256_max_epi16(v, zero), top); };
  // Quarters (0, 2, 1, 3): lane 0 then holds pixels 0-3 and 8-11, lane 1 pixels 4-7 and 12-15, so
  // unpacklo gives pixels 0-7 in order and unpackhi 8-15.
  const __m256i rg =
      _mm256_permute4x64_epi64(_mm256_or_si256(clamp(r), _mm256_slli_epi16(clamp(g), 8)), 0xD8);
  const __m256i bb = _mm256_permute4x64_epi64(clamp(b), 0xD8);
  store8(_mm256_unpacklo_epi16(rg, bb), out);
  store8(_mm256_unpackhi_epi16(rg, bb), out + 24);
}

inline __m256i widen(const std::uint8_t* p) {
  return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

}  // namespace

void ycc_rgb_row_avx2(const std::uint8_t* y, const std::uint8_t* cb, const std::uint8_t* cr,
                      std::uint8_t* rgb, std::uint32_t width) {
  std::uint32_t i = 0;
  for (; i + 16 <= width; i += 16) convert16(widen(y + i), widen(cb + i), widen(cr + i), rgb + 3 * i);
  if (i == width) return;
  const std::size_t n = width - i;  // < 16
  alignas(32) std::uint8_t in[3][16] = {};
  alignas(32) std::uint8_t tail[48];
  std::memcpy(in[0], y + i, n);
  std::memcpy(in[1], cb + i, n);
  std::memcpy(in[2], cr + i, n);
  convert16(widen(in[0]), widen(in[1]), widen(in[2]), tail);
  std::memcpy(rgb + 3 * i, tail, 3 * n);
}

}  // namespace mmcore::detail
