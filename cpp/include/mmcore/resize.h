// Resize: separable, antialiased when shrinking, fixed-point.
//
// Contract
// - Bit-exact with Pillow 13's Image.resize for modes L and RGB (NEAREST, BOX, BILINEAR,
//   BICUBIC, LANCZOS): coefficients in float64 exactly as Pillow computes them, quantised to
//   22 fractional bits, horizontal pass first into uint8, then vertical.
// - Channels are independent (4-channel input is not premultiplied).
// - Every variant (ref, avx2, ...) gives bit-identical output; ref is the oracle.
// - src and dst must have the same channel count (1, 3 or 4) and positive sizes; dst must not
//   alias src (a call that breaks these rules writes nothing). Thread safety: reentrant; scratch
//   memory is per call.
// - Order of the passes as Pillow 13: horizontal first, except when the height shrinks by more
//   than twice as many pixels as the width (then vertical first); an axis that keeps its size is
//   not resampled. NEAREST follows Pillow's affine-transform index rule, not the filter path.
#pragma once

#include <cstdint>

#include "mmcore/backend.h"
#include "mmcore/views.h"

namespace mmcore {

enum class Filter : std::uint8_t {
  kNearest = 0,
  kArea = 1,  ///< box filter (Pillow BOX)
  kBilinear = 2,
  kBicubic = 3,  ///< a = -0.5
  kLanczos3 = 4,
};

/// Resizes src to dst's size with the active backend.
void resize(ConstImageView src, ImageView dst, Filter filter);

/// Same with an explicit backend (tests compare variants with it).
void resize(ConstImageView src, ImageView dst, Filter filter, Backend backend);

/// The centre dst.width x dst.height window of src resized to full_width x full_height, equal to
/// resizing the whole and cropping, but computing (and allocating) the window only.
void resize_crop(ConstImageView src, ImageView dst, Filter filter, std::int32_t full_width,
                 std::int32_t full_height);
void resize_crop(ConstImageView src, ImageView dst, Filter filter, std::int32_t full_width,
                 std::int32_t full_height, Backend backend);

}  // namespace mmcore
