// PDQ's float luma of RGB(A) rows, as hash_pdq.cpp feeds its box filters.
//
// Contract: for each pixel, PdqLuma::kReference is float32 (0.299f R + 0.587f G) + 0.114f B with
// each product rounded to float (the reference C++ hasher); PdqLuma::kPdqhash is numpy's float64
// R*0.299 + G*0.587 + B*0.114 rounded to float32 (pdqhash.compute). pdq_luma_row_ref is the
// oracle (tests/cpp/test_pdq.cpp checks every variant against it on all 2^24 colours, both
// modes, 3 and 4 channels, every width 0..100 ending at an unreadable page); a variant reads
// width * channels bytes and writes width floats, nothing more. No FMA anywhere: a fused
// multiply-add rounds once and changes the bits. Reentrant.
#pragma once
#include <cstdint>

#include "mmcore/backend.h"
#include "mmcore/hash.h"

namespace mmcore::detail {

using PdqLumaRowFn = void (*)(const std::uint8_t* px, std::int32_t channels, std::int32_t width, PdqLuma mode,
                              float* out);

void pdq_luma_row_ref(const std::uint8_t* px, std::int32_t channels, std::int32_t width, PdqLuma mode,
                      float* out);
#ifdef MMCORE_HAVE_AVX2
void pdq_luma_row_avx2(const std::uint8_t* px, std::int32_t channels, std::int32_t width, PdqLuma mode,
                       float* out);
#endif
#ifdef MMCORE_HAVE_AVX512
void pdq_luma_row_avx512(const std::uint8_t* px, std::int32_t channels, std::int32_t width, PdqLuma mode,
                         float* out);
#endif

/// The vector variant for `backend`, or nullptr (hash_pdq.cpp then keeps its table loop).
PdqLumaRowFn pdq_luma_row_fn(Backend backend);

}  // namespace mmcore::detail
