// JPEG's YCbCr -> RGB conversion with libjpeg-turbo's arithmetic (jdcolor.c's tables, which its
// SIMD variants reproduce): with x = Cb - 128 or Cr - 128 and 16-bit fixed point,
//   R = clamp(Y + ((FIX(1.40200) Cr' + 2^15) >> 16))
//   G = clamp(Y + ((-FIX(0.34414) Cb' - FIX(0.71414) Cr' + 2^15) >> 16))
//   B = clamp(Y + ((FIX(1.77200) Cb' + 2^15) >> 16))
// clamp to [0, 255], FIX(v) = round(v * 2^16).
//
// Contract: ycc_rgb_row_ref is the oracle (tests/cpp/test_color.cpp checks it against the
// conversion libjpeg-turbo installs, on all 2^24 YCbCr values); every variant gives its bytes for
// any width >= 0, reads width bytes of each plane and writes 3 * width bytes, nothing more.
// Reentrant.
#pragma once
#include <cstdint>

#include "mmcore/backend.h"

namespace mmcore::detail {

using YccRgbRowFn = void (*)(const std::uint8_t* y, const std::uint8_t* cb, const std::uint8_t* cr,
                             std::uint8_t* rgb, std::uint32_t width);

void ycc_rgb_row_ref(const std::uint8_t* y, const std::uint8_t* cb, const std::uint8_t* cr, std::uint8_t* rgb,
                     std::uint32_t width);
#ifdef MMCORE_HAVE_AVX2
void ycc_rgb_row_avx2(const std::uint8_t* y, const std::uint8_t* cb, const std::uint8_t* cr,
                      std::uint8_t* rgb, std::uint32_t width);
#endif
#ifdef MMCORE_HAVE_AVX512
void ycc_rgb_row_avx512(const std::uint8_t* y, const std::uint8_t* cb, const std::uint8_t* cr,
                        std::uint8_t* rgb, std::uint32_t width);
#endif

/// The vector variant for `backend`, or nullptr where there is none (the JPEG decoder then keeps
/// libjpeg-turbo's own conversion).
YccRgbRowFn ycc_rgb_row_fn(Backend backend);

namespace ycc {
constexpr int kScaleBits = 16;
constexpr std::int32_t fix(double v) {
  return static_cast<std::int32_t>(v * (1 << kScaleBits) + 0.5);
}
constexpr std::int32_t kCrR = fix(1.40200);   // 91881 = 65536 + 26345
constexpr std::int32_t kCbB = fix(1.77200);   // 116130 = 131072 - 14942
constexpr std::int32_t kCbG = -fix(0.34414);  // -22554
constexpr std::int32_t kCrG = -fix(0.71414);  // -46802 = -65536 + 18734
static_assert(kCrR == 91881 && kCbB == 116130 && kCbG == -22554 && kCrG == -46802, "16-bit constants");
// The int16 parts of the vector kernels' split constants (color_avx512.cpp's header explains them).
constexpr std::int16_t kRLow = static_cast<std::int16_t>(kCrR - (1 << 16));  // 26345
constexpr std::int16_t kBLow = static_cast<std::int16_t>(kCbB - (2 << 16));  // -14942
constexpr std::int16_t kGCr = static_cast<std::int16_t>(kCrG + (1 << 16));   // 18734
static_assert(kRLow == 26345 && kBLow == -14942 && kGCr == 18734, "split constants");
}  // namespace ycc

}  // namespace mmcore::detail
