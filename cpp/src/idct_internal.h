// The 8x8 "islow" inverse DCT with the arithmetic of libjpeg-turbo's x86 SIMD variants (the one
// libjpeg-turbo runs on every x86-64 CPU, and so the one Pillow's JPEG decode runs).
//
// The algorithm is libjpeg's jidctint (Loeffler-Ligtenberg-Moschytz, 13-bit constants, two 1-D
// passes with PASS1_BITS = 2), and the SIMD precision differs from the C code's only on inputs no
// encoder writes: the dequantised coefficient is a 16-bit product (wraps), x0 + x4, x1 + x5 and
// x3 + x7 are 16-bit sums (wrap), the first pass's outputs saturate to int16, and a block whose
// coefficient rows 1-7 are all zero takes a shortcut whose first pass is a wrapping x0 << 2.
//
// Contract: idct_islow_ref is the oracle (tests/cpp/test_idct.cpp checks it against the IDCT
// libjpeg-turbo itself installs, on random and extreme blocks); every variant gives its bytes for
// any coefficients and any multipliers. `mult` is the component's quantisation table as int16
// (libjpeg-turbo's ISLOW_MULT_TYPE), both in natural order; each block writes 8 bytes at
// rows[0..7] + col and nothing else. Reentrant.
#pragma once
#include <cstdint>

#include "mmcore/backend.h"

namespace mmcore::detail {

void idct_islow_ref(const std::int16_t* coef, const std::int16_t* mult, std::uint8_t* const* rows,
                    std::uint32_t col);

/// Two blocks at once (they may belong to different components and different rows).
using IdctPairFn = void (*)(const std::int16_t* coef0, const std::int16_t* mult0, std::uint8_t* const* rows0,
                            std::uint32_t col0, const std::int16_t* coef1, const std::int16_t* mult1,
                            std::uint8_t* const* rows1, std::uint32_t col1);

#ifdef MMCORE_HAVE_AVX512
void idct_islow_pair_avx512(const std::int16_t* coef0, const std::int16_t* mult0, std::uint8_t* const* rows0,
                            std::uint32_t col0, const std::int16_t* coef1, const std::int16_t* mult1,
                            std::uint8_t* const* rows1, std::uint32_t col1);
#endif

/// The pair variant for `backend`, or nullptr where there is none (the JPEG decoder then keeps
/// libjpeg-turbo's own IDCT, which runs one block per call).
IdctPairFn idct_islow_pair_fn(Backend backend);

}  // namespace mmcore::detail
