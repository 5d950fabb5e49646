// Thumbnails: decode (scaled where that loses nothing) + orient + resize (+ centre crop).
//
// Contract: same two-phase, caller-owns-memory shape as decode.h. The geometry is computed on
// the oriented full-size image, so the result does not depend on the JPEG scale chosen except
// through the (small) quality difference of the scaled IDCT.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mmcore/decode.h"
#include "mmcore/resize.h"
#include "mmcore/workspace.h"

namespace mmcore {

/// Exactly one of the geometry groups is set (> 0).
struct ThumbnailOptions {
  DecodeOptions decode;                            ///< min_width / min_height are computed, not read
  std::int32_t short_side = 0;                     ///< keep aspect; the short side becomes this
  std::int32_t fit_width = 0, fit_height = 0;      ///< keep aspect; fits inside the box
  std::int32_t crop_width = 0, crop_height = 0;    ///< keep aspect, cover the box, centre crop
  std::int32_t exact_width = 0, exact_height = 0;  ///< stretch to exactly this size
  Filter filter = Filter::kLanczos3;
  bool upscale = true;  ///< false: never enlarge (short_side / fit only)
  /// JPEG reduced decode keeps at least reducing_gap x the result's size (<= 0: always full size).
  double reducing_gap = 2.0;
};

struct ThumbnailInfo {
  ImageInfo image;                    ///< the decode it will do (scaled size in out_width/out_height)
  std::int32_t decode_min_width = 0;  ///< the scaled-decode constraint used (oriented)
  std::int32_t decode_min_height = 0;
  std::int32_t resize_width = 0;  ///< size before the crop
  std::int32_t resize_height = 0;
  std::int32_t out_width = 0;  ///< final size
  std::int32_t out_height = 0;
  std::int32_t out_channels = 0;
};

/// The geometry of a thumbnail of a W x H image (as oriented): resize to resize_width x
/// resize_height, then centre-crop to out_width x out_height (x0 = (resize_width - out_width) / 2,
/// likewise y0). options' geometry group must be valid (thumbnail_info checks it).
void thumbnail_geometry(std::int32_t W, std::int32_t H, const ThumbnailOptions& options,
                        std::int32_t* resize_width, std::int32_t* resize_height, std::int32_t* out_width,
                        std::int32_t* out_height);

Status thumbnail_info(const std::uint8_t* data, std::size_t size, const ThumbnailOptions& options,
                      ThumbnailInfo* info, ErrorText* error);

/// workspace (optional, mmcore/workspace.h): where the full decode before the resize goes, kept
/// for the caller's next record.
Status thumbnail_into(const std::uint8_t* data, std::size_t size, const ThumbnailOptions& options,
                      const ThumbnailInfo& info, ImageView out, ErrorText* error,
                      Workspace* workspace = nullptr);

/// Whether thumbnail_into(info) decodes exactly what a full-size decode with `decoded` options
/// gives before orientation: no reduced JPEG scale, the same pixel format, neither decode fast,
/// and the same pillow_i16 for a 16-bit grey PNG (the only image it changes). Then
/// thumbnail_from_decoded can make
/// the thumbnail from those pixels instead of decoding again.
bool thumbnail_can_reuse(const ThumbnailOptions& options, const ThumbnailInfo& info,
                         const DecodeOptions& decoded);

/// thumbnail_into's result from `stored`: the image decoded at full size without EXIF orientation
/// (info.image's width x height, out_channels). Applies the orientation when options ask for it,
/// then resizes and crops as thumbnail_into does: the same pixels, when thumbnail_can_reuse holds.
Status thumbnail_from_decoded(ConstImageView stored, const ThumbnailOptions& options,
                              const ThumbnailInfo& info, ImageView out, ErrorText* error,
                              Workspace* workspace = nullptr);

}  // namespace mmcore
