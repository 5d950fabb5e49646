// Decode dispatch: format detection, EXIF orientation, pixel limit; per-format work in decode_<fmt>.cpp.
#include "mmcore/decode.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include "decode_internal.h"
#include "luma_internal.h"
#include "scratch_internal.h"

namespace mmcore {
namespace {

bool swaps_axes(std::int32_t orientation) {
  return orientation >= 5 && orientation <= 8;
}

/// Pillow's exif_transpose as a map: dst(x, y) = src(x0 + ax x + bx y, y0 + ay x + by y).
struct OrientMap {
  std::int64_t x0 = 0, ax = 1, bx = 0, y0 = 0, ay = 0, by = 1;
};

OrientMap orient_map(std::int32_t o, std::int64_t w, std::int64_t h) {
  OrientMap m;
  switch (o) {
    case 2: m.x0 = w - 1, m.ax = -1; break;
    case 3: m.x0 = w - 1, m.ax = -1, m.y0 = h - 1, m.by = -1; break;
    case 4: m.y0 = h - 1, m.by = -1; break;
    case 5: m.ax = 0, m.bx = 1, m.ay = 1, m.by = 0; break;
    case 6: m.ax = 0, m.bx = 1, m.y0 = h - 1, m.ay = -1, m.by = 0; break;
    case 7: m.x0 = w - 1, m.ax = 0, m.bx = -1, m.y0 = h - 1, m.ay = -1, m.by = 0; break;
    case 8: m.x0 = w - 1, m.ax = 0, m.bx = -1, m.ay = 1, m.by = 0; break;
    default: break;
  }
  return m;
}

/// One pixel of C channels (0: c at run time). C == 3 moves 4 bytes where the caller allows it
/// (`wide`: the byte after the pixel may be read and written, as it is rewritten later).
template <int C>
inline void copy_pixel(std::uint8_t* out, const std::uint8_t* in, int c, bool wide) {
  if (C == 3 && wide) {
    std::memcpy(out, in, 4);
  } else {
    std::memcpy(out, in, C > 0 ? C : c);
  }
}

/// The axis-swapping orientations (5-8), by tiles of kTile x kTile pixels: the tile's source
/// lines are copied into an L1 buffer first (one contiguous run each), and the tile's dst rows are
/// read from there. Walking the source pixel by pixel down its columns, a 12 MP photo took 79 ms;
/// tiles read in place, 28; staged, ~15.
template <int C>
void orient_swapped(const ConstImageView& src, const ImageView& dst, const OrientMap& m, int c) {
  constexpr std::int32_t kTile = 128;
  const std::int64_t ch = C > 0 ? C : c, line = kTile * ch;
  // A line per dst column of a tile; +1: a 4-byte read of the last pixel.
  std::vector<std::uint8_t> buf(static_cast<std::size_t>(std::min(kTile, dst.width) * line + 1));
  for (std::int32_t ty = 0; ty < dst.height; ty += kTile) {
    const std::int32_t ny = std::min(kTile, dst.height - ty);
    // dst rows ty .. ty + ny read source columns x0 + bx * y: a contiguous run starting at sx_lo.
    const std::int64_t sx_lo = m.bx > 0 ? m.x0 + ty : m.x0 - (ty + ny - 1);
    for (std::int32_t tx = 0; tx < dst.width; tx += kTile) {
      const std::int32_t nx = std::min(kTile, dst.width - tx);
      for (std::int32_t i = 0; i < nx; ++i)  // dst column tx + i reads source row y0 + ay * (tx + i)
        std::memcpy(buf.data() + i * line,
                    src.row(static_cast<std::int32_t>(m.y0 + m.ay * (tx + i))) + sx_lo * ch,
                    static_cast<std::size_t>(ny * ch));
      for (std::int32_t j = 0; j < ny; ++j) {
        const std::uint8_t* in = buf.data() + (m.bx > 0 ? j : ny - 1 - j) * ch;
        std::uint8_t* out = dst.row(ty + j) + tx * ch;
        // The last pixel of the tile's row moves exactly its bytes: the next one may be done already.
        for (std::int32_t i = 0; i < nx; ++i, in += line, out += ch) copy_pixel<C>(out, in, c, i + 1 < nx);
      }
    }
  }
}

template <int C>
void orient_all(const ConstImageView& src, const ImageView& dst, const OrientMap& m, int c) {
  if (m.ay != 0) return orient_swapped<C>(src, dst, m, c);
  const std::int64_t ch = C > 0 ? C : c;
  for (std::int32_t y = 0; y < dst.height; ++y) {  // rows stay rows: each dst row reads one src row
    const std::uint8_t* in = src.row(static_cast<std::int32_t>(m.y0 + m.by * y));
    std::uint8_t* out = dst.row(y);
    if (m.ax == 1) {
      std::memcpy(out, in, static_cast<std::size_t>(dst.width * ch));
    } else {  // mirrored
      in += (dst.width - 1) * ch;
      for (std::int32_t x = 0; x < dst.width; ++x, in -= ch, out += ch) copy_pixel<C>(out, in, c, false);
    }
  }
}

}  // namespace

void orient_pixels(ConstImageView src, ImageView dst, std::int32_t o) {
  const OrientMap m = orient_map(o, src.width, src.height);
  switch (src.channels) {
    case 1: return orient_all<1>(src, dst, m, 1);
    case 3: return orient_all<3>(src, dst, m, 3);
    case 4: return orient_all<4>(src, dst, m, 4);
    default: return orient_all<0>(src, dst, m, src.channels);
  }
}

ImageFormat detect_format(const std::uint8_t* d, std::size_t n) {
  if (d == nullptr) return ImageFormat::kUnknown;
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return ImageFormat::kJpeg;
  if (n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return ImageFormat::kPng;
  if (n >= 12 && std::memcmp(d, "RIFF", 4) == 0 && std::memcmp(d + 8, "WEBP", 4) == 0)
    return ImageFormat::kWebp;
  if (detail::is_gif(d, n)) return ImageFormat::kGif;
  if (detail::is_avif(d, n)) return ImageFormat::kAvif;
  return ImageFormat::kUnknown;
}

const char* format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::kJpeg: return "jpeg";
    case ImageFormat::kPng: return "png";
    case ImageFormat::kWebp: return "webp";
    case ImageFormat::kGif: return "gif";
    case ImageFormat::kAvif: return "avif";
    default: return "unknown";
  }
}

std::int32_t read_orientation(const std::uint8_t* data, std::size_t size, ImageFormat f) {
  detail::ByteSpan exif, xmp;
  switch (f) {
    case ImageFormat::kJpeg: exif = detail::jpeg_find_exif(data, size); break;
    case ImageFormat::kPng: exif = detail::png_find_exif(data, size); break;
    case ImageFormat::kWebp: exif = detail::webp_find_exif(data, size); break;
    case ImageFormat::kAvif: return detail::avif_orientation(data, size);  // Pillow: not EXIF's
    default: return 1;
  }
  bool tagged = false;
  const std::int32_t o = detail::exif_orientation_from_tiff(exif.data, exif.size, &tagged);
  if (tagged) return o;
  // As Pillow's getexif(): with no EXIF Orientation entry, an XMP tiff:Orientation counts.
  if (f == ImageFormat::kPng) {  // its packet may be compressed
    const std::int32_t x = detail::png_xmp_orientation(data, size);
    return x != 0 ? x : 1;
  }
  xmp = f == ImageFormat::kJpeg ? detail::jpeg_find_xmp(data, size) : detail::webp_find_xmp(data, size);
  const std::int32_t x = detail::xmp_orientation(xmp.data, xmp.size);
  return x != 0 ? x : 1;
}

void detail::convert_rgb_rows(const std::uint8_t* src, std::int64_t src_stride, int src_channels,
                              ImageView out) {
  for (std::int32_t y = 0; y < out.height; ++y) {
    const std::uint8_t* s = src + src_stride * y;
    std::uint8_t* d = out.row(y);
    if (out.channels == 1) {
      for (std::int32_t x = 0; x < out.width; ++x, s += src_channels) d[x] = luma_pillow(s[0], s[1], s[2]);
    } else if (out.channels == src_channels) {
      std::memcpy(d, s, static_cast<std::size_t>(out.width) * src_channels);
    } else if (out.channels == 3) {  // RGBA -> RGB
      for (std::int32_t x = 0; x < out.width; ++x, s += 4, d += 3) d[0] = s[0], d[1] = s[1], d[2] = s[2];
    } else {  // RGB -> RGBA
      for (std::int32_t x = 0; x < out.width; ++x, s += 3, d += 4)
        d[0] = s[0], d[1] = s[1], d[2] = s[2], d[3] = 255;
    }
  }
}

namespace {

/// The name of a common image format mmcore does not decode, from its signature; nullptr otherwise.
const char* other_image_format(const std::uint8_t* d, std::size_t n) {
  auto starts = [&](const char* magic, std::size_t len) {
    return n >= len && std::memcmp(d, magic, len) == 0;
  };
  if (starts("II*\0", 4) || starts("MM\0*", 4) || starts("II+\0", 4) || starts("MM\0+", 4)) return "TIFF";
  if (starts("BM", 2) && n >= 26) {  // BITMAPFILEHEADER, then a DIB header of a known size
    const std::uint32_t dib =
        d[14] | (d[15] << 8) | (d[16] << 16) | (static_cast<std::uint32_t>(d[17]) << 24);
    if (dib == 12 || dib == 40 || dib == 52 || dib == 56 || dib == 64 || dib == 108 || dib == 124)
      return "BMP";
  }
  if (n >= 3 && d[0] == 'P' && d[1] >= '1' && d[1] <= '7' &&
      (d[2] == '\n' || d[2] == ' ' || d[2] == '\r' || d[2] == '\t'))
    return "PNM (PBM / PGM / PPM / PAM)";
  if (starts("\0\0\1\0", 4) && n >= 6 && (d[4] | d[5]) != 0) return "ICO";
  if (n >= 12 && std::memcmp(d + 4, "ftyp", 4) == 0 &&
      (std::memcmp(d + 8, "heic", 4) == 0 || std::memcmp(d + 8, "heix", 4) == 0 ||
       std::memcmp(d + 8, "mif1", 4) == 0 || std::memcmp(d + 8, "msf1", 4) == 0))
    return "HEIF";  // AVIF's brands are detect_format's
  if (starts("\xff\x0a", 2) || starts("\0\0\0\x0cJXL \r\n\x87\n", 12)) return "JPEG XL";
  if (starts("\0\0\0\x0cjP  \r\n\x87\n", 12) || starts("\xff\x4f\xff\x51", 4)) return "JPEG 2000";
  if (starts("8BPS", 4)) return "Photoshop (PSD)";
  if (starts("qoif", 4)) return "QOI";
  return nullptr;
}

}  // namespace

Status decode_info(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, ImageInfo* info,
                   ErrorText* error) {
  *info = ImageInfo{};
  error->clear();
  const ImageFormat f = detect_format(data, size);
  if (f == ImageFormat::kUnknown) {
    if (size == 0) {
      error->set("empty input (0 bytes)");
      return Status::kCorrupt;
    }
    // A well-known format mmcore does not decode is UNSUPPORTED (convert it), not CORRUPT.
    if (const char* other = other_image_format(data, size)) {
      error->set("%s images are not supported (mmcore decodes %s)", other, kDecodedFormats);
      return Status::kUnsupported;
    }
    error->set("not a %s image (unrecognised signature, %zu bytes)", kDecodedFormats, size);
    return Status::kCorrupt;
  }
  const std::int32_t orientation = read_orientation(data, size, f);
  const bool rotate = options.exif_orientation && swaps_axes(orientation);
  DecodeOptions stored = options;
  if (rotate) std::swap(stored.min_width, stored.min_height);
  Status s = Status::kCorrupt;
  switch (f) {
    case ImageFormat::kJpeg: s = detail::jpeg_info(data, size, stored, info, error); break;
    case ImageFormat::kPng: s = detail::png_info(data, size, stored, info, error); break;
    case ImageFormat::kWebp: s = detail::webp_info(data, size, stored, info, error); break;
    case ImageFormat::kGif: s = detail::gif_info(data, size, stored, info, error); break;
    case ImageFormat::kAvif: s = detail::avif_info(data, size, stored, info, error); break;
    default: break;
  }
  info->format = f;
  info->orientation = orientation;
  if (!status_ok(s)) return s;
  if (info->width <= 0 || info->height <= 0) {
    error->set("%s header gives an empty image (%dx%d)", format_name(f), info->width, info->height);
    return Status::kCorrupt;
  }
  const std::int64_t pixels = static_cast<std::int64_t>(info->width) * info->height;
  if (options.max_pixels > 0 && pixels > options.max_pixels) {
    error->set("image is %dx%d = %lld pixels, over the limit of %lld (raise max_pixels to allow it)",
               info->width, info->height, static_cast<long long>(pixels),
               static_cast<long long>(options.max_pixels));
    return Status::kTooLarge;
  }
  if (rotate) std::swap(info->out_width, info->out_height);
  return s;
}

Status decode_into(const std::uint8_t* data, std::size_t size, const DecodeOptions& options,
                   const ImageInfo& info, ImageView out, ErrorText* error, Workspace* workspace) {
  return detail::decode_into_rows(data, size, options, info, out, error, workspace, nullptr);
}

Status detail::decode_into_rows(const std::uint8_t* data, std::size_t size, const DecodeOptions& options,
                                const ImageInfo& info, ImageView out, ErrorText* error, Workspace* workspace,
                                const RowsDone* rows_done) {
  const bool orient = options.exif_orientation && info.orientation >= 2 && info.orientation <= 8;
  DecodeOptions stored = options;
  ImageInfo stored_info = info;
  if (orient && swaps_axes(info.orientation)) {
    std::swap(stored.min_width, stored.min_height);
    std::swap(stored_info.out_width, stored_info.out_height);
  }
  auto run = [&](ImageView dst) {
    switch (info.format) {
      case ImageFormat::kJpeg:  // rows are reported only where they are the output's (no turn after)
        return detail::jpeg_decode(data, size, stored, stored_info, dst, error, orient ? nullptr : rows_done);
      case ImageFormat::kPng: return detail::png_decode(data, size, stored, stored_info, dst, error);
      case ImageFormat::kWebp: return detail::webp_decode(data, size, stored, stored_info, dst, error);
      case ImageFormat::kGif: return detail::gif_decode(data, size, stored, stored_info, dst, error);
      case ImageFormat::kAvif: return detail::avif_decode(data, size, stored, stored_info, dst, error);
      default: error->set("decode_into called without a successful decode_info"); return Status::kCorrupt;
    }
  };
  if (!orient) return run(out);
  // Not zero-filled: a decode that succeeds writes every byte (the contract above).
  detail::Scratch scratch(workspace, Workspace::Slot::kDecodeOrient);
  const std::int32_t c = info.out_channels;
  if (!scratch.alloc(static_cast<std::size_t>(stored_info.out_width) * stored_info.out_height * c)) {
    error->set("out of memory allocating %dx%d for EXIF orientation", stored_info.out_width,
               stored_info.out_height);
    return Status::kNoMemory;
  }
  ImageView tmp{scratch.data(), stored_info.out_width, stored_info.out_height, c,
                static_cast<std::int64_t>(stored_info.out_width) * c};
  const Status s = run(tmp);
  if (status_ok(s)) orient_pixels(tmp, out, info.orientation);
  return s;
}

}  // namespace mmcore
