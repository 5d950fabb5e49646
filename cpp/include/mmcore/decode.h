// Image decode: JPEG (libjpeg-turbo; lossless JPEG and GIF by mmcore's own decoders), PNG (libpng),
// WebP (libwebp), AVIF (libavif, when the build has it) bytes -> uint8 pixels.
//
// Contract
// - Format is detected from content (magic bytes), never from a file name.
// - Two phases, caller owns memory: decode_info() parses headers only, applies the pixel limit
//   (before any pixel allocation) and states the output geometry; decode_into() writes exactly
//   info.out_height x info.out_width x info.out_channels bytes into a caller view.
// - Output at full size (scale_denom 1) is pixel-identical to Pillow 13's
//   Image.open(f).convert("RGB") for 8-bit JPEG / PNG / WebP / GIF / AVIF (see docs for 16-bit and CMYK
//   rules).
// - EXIF orientation 1..8 is applied when options.exif_orientation is set.
// - JPEG may decode at 1/2, 1/4 or 1/8 scale (scaled IDCT) when the options ask for a target
//   that the reduced image still covers.
// - Never throws, aborts or prints: every failure is a Status plus a message in ErrorText.
// - Thread safety: all functions are reentrant; no shared state.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mmcore/status.h"
#include "mmcore/views.h"

namespace mmcore {

class Workspace;

enum class ImageFormat : std::uint8_t { kUnknown = 0, kJpeg = 1, kPng = 2, kWebp = 3, kGif = 4, kAvif = 5 };

enum class PixelFormat : std::uint8_t {
  kRgb = 0,   ///< 3 channels
  kGray = 1,  ///< 1 channel: JPEG luma as coded; other formats Pillow's convert("L") (ITU-R 601-2)
  kRgba = 2,  ///< 4 channels: alpha kept (255 where the image has none)
};

/// Pillow's Image.MAX_IMAGE_PIXELS.
constexpr std::int64_t kDefaultMaxPixels = 178956970;

struct DecodeOptions {
  PixelFormat pixel = PixelFormat::kRgb;
  bool exif_orientation = true;
  std::int64_t max_pixels = kDefaultMaxPixels;  ///< width*height as stored; <= 0: no limit
  /// Reduced-size decode: the smallest power-of-two JPEG scale whose (oriented) output still
  /// has width >= min_width and height >= min_height. 0 = no constraint (full size).
  std::int32_t min_width = 0;
  std::int32_t min_height = 0;
  /// Faster JPEG decode for thumbnails (IFAST IDCT, no fancy upsampling). Off = Pillow-exact.
  bool fast = false;
  /// 16-bit grey PNG without alpha (Pillow mode "I;16"): clip the samples to 255 as Pillow's
  /// convert("L") / convert("RGB") do, instead of keeping the high byte (the default, which
  /// keeps the image's tones). The imagehash-exact hashes set it; kRgba ignores it.
  bool pillow_i16 = false;
  /// kGray on a colour JPEG: Pillow's convert("L") of the RGB decode (exactly what Pillow gives,
  /// converted row by row) instead of the luma as coded. Other formats' kGray is Pillow's already.
  bool pillow_gray = false;
  /// JPEG: decode the entropy-coded data with libjpeg-turbo's own Huffman decoder instead of
  /// mmcore's (decode_jpeg_huff_impl.h). Same pixels, statuses and messages; the tests' reference.
  bool libjpeg_huffman = false;
};

struct ImageInfo {
  ImageFormat format = ImageFormat::kUnknown;
  std::int32_t width = 0;  ///< as stored, full size, before orientation
  std::int32_t height = 0;
  std::int32_t orientation = 1;  ///< EXIF orientation found (1 when absent or invalid)
  std::int32_t scale_denom = 1;  ///< JPEG scaled IDCT: 1, 2, 4 or 8
  std::int32_t out_width = 0;    ///< after scaling and (if applied) orientation
  std::int32_t out_height = 0;
  std::int32_t out_channels = 0;
  bool has_alpha = false;
  bool animated = false;  ///< first frame only is decoded
  bool grey16 = false;    ///< 16-bit grey PNG without alpha: its 8-bit pixels depend on pillow_i16
};

/// The formats detect_format recognises, for messages ("not a %s image").
inline constexpr char kDecodedFormats[] = "JPEG, PNG, WebP, GIF or AVIF";

/// The format of a buffer from its first bytes.
ImageFormat detect_format(const std::uint8_t* data, std::size_t size);

/// "jpeg", "png", "webp", "gif", "avif" or "unknown".
const char* format_name(ImageFormat f);

/// EXIF orientation (1..8) from a JPEG APP1, PNG eXIf or WebP EXIF chunk, or an AVIF's irot / imir
/// properties; 1 when absent.
std::int32_t read_orientation(const std::uint8_t* data, std::size_t size, ImageFormat f);

/// Pillow's exif_transpose for orientation 1..8: dst gets src turned / mirrored (dst is src's
/// size, width and height swapped for 5..8). Other values copy.
void orient_pixels(ConstImageView src, ImageView dst, std::int32_t orientation);

/// Parses headers, checks the pixel limit and fills info. No pixel memory is allocated.
Status decode_info(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, ImageInfo* info,
                   ErrorText* error);

/// Decodes into out (out_width x out_height x out_channels, as decode_info stated).
/// On failure out's contents are unspecified (callers zero or drop it). With EXIF orientation the
/// image is decoded into scratch first: `workspace`'s kDecodeOrient slot when given (a batch
/// worker's, kept for the next record when large), else memory of its own.
Status decode_into(const std::uint8_t* data, std::size_t size, const DecodeOptions& options,
                   const ImageInfo& info, ImageView out, ErrorText* error, Workspace* workspace = nullptr);

/// Library versions as "libjpeg-turbo 2.1.5" style strings.
const char* jpeg_library_version();
const char* png_library_version();
const char* webp_library_version();
/// "libavif 0.11.1 (dav1d [dec]:1.0.0, ...)", or "none (built without libavif)".
const char* avif_library_version();

}  // namespace mmcore
