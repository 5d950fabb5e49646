// Constants of the islow IDCT shared by idct_ref.cpp and the vector variants.
#pragma once
#include <cstdint>

namespace mmcore::detail::idct {

constexpr int kConstBits = 13;
constexpr int kPass1Bits = 2;
constexpr int kShiftPass1 = kConstBits - kPass1Bits;      // 11
constexpr int kShiftPass2 = kConstBits + kPass1Bits + 3;  // 18

/// A multiplier in kConstBits fixed point, rounded to nearest (libjpeg's FIX()).
constexpr std::int32_t fix(double x) {
  return static_cast<std::int32_t>(x * (1 << kConstBits) + 0.5);
}

// The LL&M rotation factors: sqrt(2) * cos / sin of multiples of pi/16, in their usual combinations.
constexpr std::int32_t kF0298 = fix(0.298631336);
constexpr std::int32_t kF0390 = fix(0.390180644);
constexpr std::int32_t kF0541 = fix(0.541196100);
constexpr std::int32_t kF0765 = fix(0.765366865);
constexpr std::int32_t kF0899 = fix(0.899976223);
constexpr std::int32_t kF1175 = fix(1.175875602);
constexpr std::int32_t kF1501 = fix(1.501321110);
constexpr std::int32_t kF1847 = fix(1.847759065);
constexpr std::int32_t kF1961 = fix(1.961570560);
constexpr std::int32_t kF2053 = fix(2.053119869);
constexpr std::int32_t kF2562 = fix(2.562915447);
constexpr std::int32_t kF3072 = fix(3.072711026);
static_assert(kF0298 == 2446 && kF0541 == 4433 && kF1175 == 9633 && kF3072 == 25172, "13-bit constants");

}  // namespace mmcore::detail::idct
