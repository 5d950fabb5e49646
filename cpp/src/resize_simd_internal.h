// SSE2 helpers shared by the resize vector variants (resize_avx2.cpp, resize_avx512.cpp); not
// included by the scalar or CUDA code.
#pragma once
#include <emmintrin.h>

#include <cstdint>
#include <cstring>

#include "resize_internal.h"

namespace mmcore::resize_detail {

/// Four pixels' int32 sums -> clip8((sum + round) >> kPrecisionBits) at dst[x], dst[x + 1], ...:
/// four bytes, or out - x at the row's end.
inline void store_four_sums(__m128i sum, std::uint8_t* dst, std::int32_t x, std::int32_t out) {
  sum = _mm_srai_epi32(_mm_add_epi32(sum, _mm_set1_epi32(kRoundHalf)), kPrecisionBits);
  sum = _mm_packus_epi16(_mm_packs_epi32(sum, sum), sum);
  const auto px = static_cast<std::uint32_t>(_mm_cvtsi128_si32(sum));
  // A fixed-size store in the loop (a variable-length memcpy compiles to a byte loop).
  if (out - x >= 4) {
    std::memcpy(dst + x, &px, 4);
  } else {
    std::memcpy(dst + x, &px, static_cast<std::size_t>(out - x));
  }
}

}  // namespace mmcore::resize_detail
