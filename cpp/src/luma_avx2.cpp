// AVX2 Pillow-L conversion: 16 RGB pixels (48 bytes) per step, bit-identical to luma_row_ref
// (tests/cpp/test_luma.cpp checks every RGB value, every width up to 80 and rows that end at an
// unreadable page).
//
// Each pixel becomes two dwords of 16-bit words, (R, G) and (B, G), straight from the loaded
// bytes by vpshufb, and one vpmaddwd per dword vector gives 19595 R + 32767 G and 7471 B + 5703 G
// (38470 = 32767 + 5703: G's weight does not fit an int16, its two parts do). Their sum plus
// 0x8000, shifted right by 16, is the reference's formula; every partial sum fits an int32. A
// 256-bit vector holds 8 pixels, 4 per 128-bit lane, each lane loaded from its own 16 bytes (the
// last lane's from bytes 32..47, its pixels at offset 4), so nothing past the 48 bytes is read;
// the tail (< 16 pixels) runs the scalar formula.
#include <immintrin.h>

#include "luma_internal.h"

namespace mmcore::detail {
namespace {

/// vpshufb mask for one 128-bit lane holding pixels at byte `base`: words (a, b) of each of its 4
/// pixels, where a and b are channel indices (0 R, 1 G, 2 B).
__m128i pair_mask(int base, int a, int b) {
  alignas(16) std::int8_t m[16];
  for (int j = 0; j < 4; ++j) {
    m[4 * j] = static_cast<std::int8_t>(base + 3 * j + a);
    m[4 * j + 1] = -1;
    m[4 * j + 2] = static_cast<std::int8_t>(base + 3 * j + b);
    m[4 * j + 3] = -1;
  }
  return _mm_load_si128(reinterpret_cast<const __m128i*>(m));
}

__m256i lanes(__m128i lo, __m128i hi) {
  return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

}  // namespace

void luma_row_avx2(const std::uint8_t* rgb, std::uint8_t* out, std::int32_t width) {
  // Lanes loaded from bytes 0 and 12 (pixels at offset 0), and from 24 (offset 0) and 32 (offset 4).
  const __m256i rg01 = lanes(pair_mask(0, 0, 1), pair_mask(0, 0, 1));
  const __m256i bg01 = lanes(pair_mask(0, 2, 1), pair_mask(0, 2, 1));
  const __m256i rg23 = lanes(pair_mask(0, 0, 1), pair_mask(4, 0, 1));
  const __m256i bg23 = lanes(pair_mask(0, 2, 1), pair_mask(4, 2, 1));
  const __m256i w_rg = _mm256_set1_epi32(19595 | (32767 << 16));
  const __m256i w_bg = _mm256_set1_epi32(7471 | (5703 << 16));
  const __m256i half = _mm256_set1_epi32(0x8000);
  const auto luma8 = [&](__m256i raw, __m256i rg, __m256i bg) {
    const __m256i s = _mm256_add_epi32(_mm256_madd_epi16(_mm256_shuffle_epi8(raw, rg), w_rg),
                                       _mm256_madd_epi16(_mm256_shuffle_epi8(raw, bg), w_bg));
    return _mm256_srli_epi32(_mm256_add_epi32(s, half), 16);
  };
  const auto load = [](const std::uint8_t* p) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  };
  std::int32_t x = 0;
  for (; x + 16 <= width; x += 16) {
    const std::uint8_t* p = rgb + 3 * static_cast<std::int64_t>(x);
    const __m256i lo = luma8(lanes(load(p), load(p + 12)), rg01, bg01);
    const __m256i hi = luma8(lanes(load(p + 24), load(p + 32)), rg23, bg23);
    // packus works within 128-bit lanes: [lo0-3 hi0-3 | lo4-7 hi4-7]; reorder the 64-bit quarters.
    const __m256i w = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xD8);
    const __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + x), bytes);
  }
  luma_row_ref(rgb + 3 * static_cast<std::int64_t>(x), out + x, width - x);
}

}  // namespace mmcore::detail
