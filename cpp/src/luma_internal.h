// Pillow's convert("L") of RGB rows: L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16.
//
// Contract: every variant gives the same bytes as the scalar ref (luma_row_ref, the oracle),
// for any width >= 0; rows are read exactly (3 * width bytes) and written exactly (width bytes),
// never past their ends. Used by the hash path's grey conversion and by JPEG's Pillow-exact grey
// decode. Reentrant.
#pragma once
#include <cstdint>

#include "hd_internal.h"
#include "mmcore/backend.h"

namespace mmcore::detail {

/// Pillow's convert("L") of one RGB pixel: (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
/// Shared with cuda/hash.cu.
MMCORE_HD inline std::uint8_t luma_pillow(std::uint8_t r, std::uint8_t g, std::uint8_t b) {
  return static_cast<std::uint8_t>((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}

using LumaRowFn = void (*)(const std::uint8_t* rgb, std::uint8_t* out, std::int32_t width);

void luma_row_ref(const std::uint8_t* rgb, std::uint8_t* out, std::int32_t width);
#ifdef MMCORE_HAVE_AVX2
void luma_row_avx2(const std::uint8_t* rgb, std::uint8_t* out, std::int32_t width);
#endif
#ifdef MMCORE_HAVE_AVX512
void luma_row_avx512(const std::uint8_t* rgb, std::uint8_t* out, std::int32_t width);
#endif

/// The variant for `backend` (falls back to ref where the CPU or the build lacks it).
LumaRowFn luma_row_fn(Backend backend);
/// The variant for the active backend: callers fetch it once per image, not per row.
inline LumaRowFn luma_row_fn() {
  return luma_row_fn(active_backend());
}

}  // namespace mmcore::detail
