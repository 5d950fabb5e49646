// Internal contract between the decode dispatcher (decode.cpp) and the per-format decoders.
//
// A format decoder works in the image's stored orientation: decode.cpp reads EXIF, swaps the
// min_width / min_height constraints for orientations 5-8 before calling <fmt>_info, checks the
// pixel limit, and applies the orientation after <fmt>_decode.
//
// <fmt>_info fills: format, width, height (full size, stored), has_alpha, animated,
//   scale_denom (JPEG only; 1 elsewhere), out_width / out_height (decoded size, stored
//   orientation), out_channels (1, 3 or 4 from options.pixel). It must not allocate pixel memory.
// <fmt>_decode writes out_height x out_width x out_channels into out (stored orientation).
// Both return a Status and a message; kOkWarning when the data had recoverable defects.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "mmcore/decode.h"

namespace mmcore::detail {

/// The big-endian 32-bit number at p.
inline std::uint32_t read_be32(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

/// Channels of a decoded pixel layout: 1 (kGray), 3 (kRgb) or 4 (kRgba).
inline int pixel_channels(PixelFormat p) {
  return p == PixelFormat::kGray ? 1 : p == PixelFormat::kRgba ? 4 : 3;
}

/// RGB or RGBA rows (src_channels) -> out's layout (decode.cpp): kGray is luma_pillow() of the
/// colour, RGBA -> RGB drops alpha, RGB -> RGBA adds an opaque one.
void convert_rgb_rows(const std::uint8_t* src, std::int64_t src_stride, int src_channels, ImageView out);

Status jpeg_info(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, ImageInfo* info,
                 ErrorText* error);
/// Told after rows [y0, y0 + n) of the output hold their final pixels, while they are still in
/// cache (a caller derives something from them there). Called by the JPEG decode where libjpeg writes
/// the caller's rows directly, in order; a decode redone with libjpeg's Huffman decoder starts again
/// at row 0. Other paths do not call it: a caller checks that every row was reported.
using RowsDone = std::function<void(std::int32_t y0, std::int32_t n)>;

Status jpeg_decode(const std::uint8_t* data, std::size_t size, const DecodeOptions& options,
                   const ImageInfo& info, ImageView out, ErrorText* error,
                   const RowsDone* rows_done = nullptr);

/// decode_into, telling `rows_done` (when not null) of the rows as above.
Status decode_into_rows(const std::uint8_t* data, std::size_t size, const DecodeOptions& options,
                        const ImageInfo& info, ImageView out, ErrorText* error, Workspace* workspace,
                        const RowsDone* rows_done);

/// Lossless JPEG (SOF3), which libjpeg-turbo 2.1 does not decode (decode_jpeg_lossless.cpp);
/// jpeg_info / jpeg_decode hand such streams over.
bool jpeg_is_lossless(const std::uint8_t* data, std::size_t size);
Status jpeg_lossless_info(const std::uint8_t* data, std::size_t size, const DecodeOptions& options,
                          ImageInfo* info, ErrorText* error);
Status jpeg_lossless_decode(const std::uint8_t* data, std::size_t size, const DecodeOptions& options,
                            const ImageInfo& info, ImageView out, ErrorText* error);

Status png_info(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, ImageInfo* info,
                ErrorText* error);
Status png_decode(const std::uint8_t* data, std::size_t size, const DecodeOptions& options,
                  const ImageInfo& info, ImageView out, ErrorText* error);

Status webp_info(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, ImageInfo* info,
                 ErrorText* error);
Status webp_decode(const std::uint8_t* data, std::size_t size, const DecodeOptions& options,
                   const ImageInfo& info, ImageView out, ErrorText* error);

/// GIF, first frame (decode_gif.cpp): no library, Pillow's first-frame rules.
bool is_gif(const std::uint8_t* data, std::size_t size);
Status gif_info(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, ImageInfo* info,
                ErrorText* error);
Status gif_decode(const std::uint8_t* data, std::size_t size, const DecodeOptions& options,
                  const ImageInfo& info, ImageView out, ErrorText* error);

/// AVIF, first image (decode_avif.cpp): libavif, Pillow's conversion and orientation rules.
/// is_avif needs no library; without libavif, avif_info / avif_decode say kUnsupported.
bool is_avif(const std::uint8_t* data, std::size_t size);
std::int32_t avif_orientation(const std::uint8_t* data, std::size_t size);  ///< irot / imir; 1 without
Status avif_info(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, ImageInfo* info,
                 ErrorText* error);
Status avif_decode(const std::uint8_t* data, std::size_t size, const DecodeOptions& options,
                   const ImageInfo& info, ImageView out, ErrorText* error);

/// Orientation (1..8) from a TIFF-structured EXIF block (starting at "II*\0" / "MM\0*");
/// 1 when absent or malformed. `tag_found` (optional): whether the block has an Orientation entry
/// at all (Pillow then ignores XMP). Bounds-checked: any bytes are safe.
std::int32_t exif_orientation_from_tiff(const std::uint8_t* tiff, std::size_t size,
                                        bool* tag_found = nullptr);

/// Pillow's XMP fallback: the digit after the first `tiff:Orientation="` or `tiff:Orientation>`
/// in the packet, when it is 1..8; 0 otherwise.
std::int32_t xmp_orientation(const std::uint8_t* xmp, std::size_t size);

/// EXIF payload location inside a container; {nullptr, 0} when absent. Bounds-checked.
struct ByteSpan {
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
};
ByteSpan jpeg_find_exif(const std::uint8_t* data, std::size_t size);  ///< TIFF block of APP1 "Exif\0\0"
ByteSpan png_find_exif(const std::uint8_t* data, std::size_t size);   ///< the last eXIf chunk
ByteSpan webp_find_exif(const std::uint8_t* data, std::size_t size);  ///< EXIF chunk
ByteSpan jpeg_find_xmp(const std::uint8_t* data,
                       std::size_t size);  ///< the last APP1 "http://ns.adobe.com/xap/1.0/\0"
/// xmp_orientation of the XMP packet Pillow's getexif() reads from a PNG's text chunks (tEXt,
/// zTXt, iTXt "XML:com.adobe.xmp", the last one winning), inflated up to 1 MiB when compressed.
std::int32_t png_xmp_orientation(const std::uint8_t* data, std::size_t size);

/// Inflates a zlib stream (decode_png.cpp): returns the bytes it inflates to, counting stops once
/// past `cap` (so the work is bounded); keeps the first `cap` of them in *out when given;
/// *damaged (when given) says whether a data error ended it (a stream that just ends is not one).
std::size_t inflate_capped(const std::uint8_t* src, std::size_t n, std::size_t cap,
                           std::vector<std::uint8_t>* out, bool* damaged = nullptr);
ByteSpan webp_find_xmp(const std::uint8_t* data, std::size_t size);  ///< "XMP " chunk

}  // namespace mmcore::detail
