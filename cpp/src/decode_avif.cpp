// AVIF decoder: libavif (>= 0.11; its AV1 decoder: dav1d, libgav1 or libaom, as the build has it).
//
// Contract (see decode_internal.h), pixel rules matching Pillow 13's Image.open(f).convert(...):
// - The first image (frame 0 of an image sequence), converted by libavif's avifImageYUVToRGB to
//   8-bit RGB / RGBA with its defaults, as Pillow's AVIF plugin does: AV1 decoding is exact by the
//   standard, so the pixels depend only on that conversion (Debian 12's libavif 0.11 gives Pillow
//   13's bundled 1.x pixels exactly on the files the tests make: 8 / 10 / 12 bit, 4:2:0 / 4:2:2 /
//   4:4:4 / 4:0:0, full and limited range, alpha).
// - kRgb of an image with alpha: RGBA first (un-premultiplied where the file is premultiplied),
//   then alpha dropped, as convert("RGB") does. kGray: luma_pillow() of the RGB samples.
// - Orientation comes from the irot / imir properties only (Pillow's rule: it writes their
//   orientation over any EXIF Orientation), applied by decode.cpp like EXIF's.
// - The container is parsed with libavif's default strictness, except that a missing 'pixi'
//   property (libheif 1.11 and older wrote none) and an invalid 'clap' are accepted: neither
//   changes the pixels decoded.
// - One thread per decode (maxThreads 1): batches run records in parallel.
// - Errors are libavif results mapped to kCorrupt / kUnsupported / kNoMemory with a message
//   (libavif's own text, and its diagnostic where it gives one). An image over libavif's pixel
//   limit (16384 x 16384), which it refuses while parsing, is kTooLarge; a coded frame over
//   max_pixels is refused by dav1d before it allocates (kCorrupt).
// - mmcore prints nothing, but dav1d does: its default logger writes a line to stderr for some
//   damaged AV1 data (96 lines over 3,000 mutated test files), and libavif 0.11 gives no way to
//   replace it. The record's status and message are not affected.
//   avif_info parses the container only and allocates no pixel memory.
// Built without libavif (MMCORE_AVIF=OFF, or no libavif found), AVIF files are recognised and
// refused as kUnsupported with a message that says so.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "decode_internal.h"

#ifdef MMCORE_HAVE_AVIF
#include <avif/avif.h>
#endif

namespace mmcore::detail {

bool is_avif(const std::uint8_t* d, std::size_t n) {
  if (d == nullptr || n < 12 || std::memcmp(d + 4, "ftyp", 4) != 0) return false;
  auto avif_brand = [&](std::size_t at) {
    return std::memcmp(d + at, "avif", 4) == 0 || std::memcmp(d + at, "avis", 4) == 0;
  };
  if (avif_brand(8)) return true;  // the major brand
  if (std::memcmp(d + 8, "mif1", 4) != 0 && std::memcmp(d + 8, "msf1", 4) != 0) return false;
  // A generic HEIF major brand: AVIF when a compatible brand (after the minor version) says so.
  const std::size_t box =
      (std::size_t{d[0]} << 24) | (std::size_t{d[1]} << 16) | (std::size_t{d[2]} << 8) | d[3];
  const std::size_t end = std::min(box == 0 ? n : box, n);
  for (std::size_t at = 16; at + 4 <= end; at += 4) {
    if (avif_brand(at)) return true;
  }
  return false;
}

}  // namespace mmcore::detail

#ifdef MMCORE_HAVE_AVIF
namespace mmcore::detail {
namespace {

Status map_result(avifResult r) {
  switch (r) {
    case AVIF_RESULT_OK: return Status::kOk;
    case AVIF_RESULT_OUT_OF_MEMORY: return Status::kNoMemory;
    case AVIF_RESULT_NO_CODEC_AVAILABLE:
    case AVIF_RESULT_NOT_IMPLEMENTED:
    case AVIF_RESULT_UNSUPPORTED_DEPTH: return Status::kUnsupported;
    default: return Status::kCorrupt;
  }
}

// One libavif decoder over the bytes, its container parsed; destroyed with the object.
class Parsed {
 public:
  /// size_limit: the most pixels an image or a coded AV1 frame may have (libavif's imageSizeLimit,
  /// which it passes on to dav1d); at most libavif's default.
  Parsed(const std::uint8_t* data, std::size_t size, std::uint32_t size_limit = AVIF_DEFAULT_IMAGE_SIZE_LIMIT)
      : d_(avifDecoderCreate()) {
    if (d_ == nullptr) {
      result_ = AVIF_RESULT_OUT_OF_MEMORY;
      return;
    }
    d_->maxThreads = 1;
    d_->strictFlags &= ~static_cast<avifStrictFlags>(AVIF_STRICT_PIXI_REQUIRED | AVIF_STRICT_CLAP_VALID);
    d_->ignoreExif = AVIF_TRUE;  // orientation is irot / imir's; no metadata is returned
    d_->ignoreXMP = AVIF_TRUE;
    // libavif refuses an imageSizeLimit over its default (16384 x 16384 pixels) as not
    // implemented: a larger image is refused while parsing, whatever max_pixels says (avif_info
    // then reports it as kTooLarge). The per-side limit (32768) is lifted: a long panorama within
    // max_pixels decodes.
    d_->imageSizeLimit = size_limit;
    d_->imageDimensionLimit = 0;
    result_ = avifDecoderSetIOMemory(d_, data, size);
    if (result_ == AVIF_RESULT_OK) result_ = avifDecoderParse(d_);
  }
  ~Parsed() {
    if (d_ != nullptr) avifDecoderDestroy(d_);
  }
  Parsed(const Parsed&) = delete;
  Parsed& operator=(const Parsed&) = delete;

  bool ok() const { return result_ == AVIF_RESULT_OK; }
  avifDecoder* get() const { return d_; }

  /// The failure as a status, with "avif: <what>: <libavif's text> (<its diagnostic>)".
  Status fail(const char* what, avifResult r, ErrorText* error) const {
    const char* diag = d_ != nullptr ? d_->diag.error : "";
    if (diag[0] != '\0') {
      error->set("avif: %s: %s (%s)", what, avifResultToString(r), diag);
    } else {
      error->set("avif: %s: %s", what, avifResultToString(r));
    }
    return map_result(r);
  }
  Status fail(const char* what, ErrorText* error) const { return fail(what, result_, error); }

 private:
  avifDecoder* d_;
  avifResult result_ = AVIF_RESULT_UNKNOWN_ERROR;
};

// Calls f(type, body, body_size) for each whole box in [p, p + n); stops at a malformed one.
template <class F>
void for_each_box(const std::uint8_t* p, std::size_t n, F&& f) {
  while (n >= 8) {
    std::uint64_t size = read_be32(p);
    std::size_t header = 8;
    if (size == 1) {
      if (n < 16) return;
      size = (std::uint64_t{read_be32(p + 8)} << 32) | read_be32(p + 12);
      header = 16;
    } else if (size == 0) {
      size = n;  // to the end
    }
    if (size < header || size > n) return;
    f(p + 4, p + header, static_cast<std::size_t>(size) - header);
    p += size;
    n -= static_cast<std::size_t>(size);
  }
}

// The largest width x height among the image spatial extents ('ispe' in meta / iprp / ipco), in
// pixels; 0 when there is none. Read only after libavif has refused the file.
std::uint64_t largest_extent(const std::uint8_t* data, std::size_t size, std::uint32_t* w, std::uint32_t* h) {
  std::uint64_t best = 0;
  auto in = [](const char* want, auto&& then) {
    return [want, then](const std::uint8_t* type, const std::uint8_t* body, std::size_t n) {
      if (std::memcmp(type, want, 4) == 0) then(body, n);
    };
  };
  auto ispe = in("ispe", [&](const std::uint8_t* b, std::size_t n) {
    if (n < 12) return;  // version and flags, width, height
    const std::uint32_t bw = read_be32(b + 4), bh = read_be32(b + 8);
    if (std::uint64_t{bw} * bh > best) best = std::uint64_t{bw} * bh, *w = bw, *h = bh;
  });
  auto ipco = in("ipco", [&](const std::uint8_t* b, std::size_t n) { for_each_box(b, n, ispe); });
  auto iprp = in("iprp", [&](const std::uint8_t* b, std::size_t n) { for_each_box(b, n, ipco); });
  auto meta = in("meta", [&](const std::uint8_t* b, std::size_t n) {
    if (n >= 4) for_each_box(b + 4, n - 4, iprp);  // a full box: version and flags first
  });
  for_each_box(data, size, meta);
  return best;
}

// EXIF orientation of the irot (anti-clockwise quarter turns) and imir (axis 0: top and bottom
// exchanged, 1: left and right) properties, applied rotation first: Pillow's values.
std::int32_t orientation_of(const avifImage* im) {
  static constexpr std::int8_t kByTurnAndMirror[4][3] = {{1, 4, 2}, {8, 5, 7}, {3, 2, 4}, {6, 7, 5}};
  const int turns = (im->transformFlags & AVIF_TRANSFORM_IROT) != 0 ? (im->irot.angle & 3) : 0;
#if AVIF_VERSION_MAJOR >= 1
  const int axis = im->imir.axis;  // libavif 1.0 renamed imir's field
#else
  const int axis = im->imir.mode;
#endif
  const int mirror = (im->transformFlags & AVIF_TRANSFORM_IMIR) != 0 ? 1 + (axis & 1) : 0;
  return kByTurnAndMirror[turns][mirror];
}

}  // namespace

std::int32_t avif_orientation(const std::uint8_t* data, std::size_t size) {
  const Parsed p(data, size);
  return p.ok() ? orientation_of(p.get()->image) : 1;
}

Status avif_info(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, ImageInfo* info,
                 ErrorText* error) {
  const Parsed p(data, size);
  if (!p.ok()) {
    std::uint32_t w = 0, h = 0;
    const std::uint64_t pixels = largest_extent(data, size, &w, &h);
    if (pixels > AVIF_DEFAULT_IMAGE_SIZE_LIMIT) {
      error->set("avif: image is %ux%u = %llu pixels, over libavif's limit of %u (16384 x 16384)", w, h,
                 static_cast<unsigned long long>(pixels),
                 static_cast<unsigned>(AVIF_DEFAULT_IMAGE_SIZE_LIMIT));
      return Status::kTooLarge;
    }
    return p.fail("cannot read the container", error);
  }
  const avifImage* im = p.get()->image;
  if (im->width > INT32_MAX || im->height > INT32_MAX) {
    error->set("avif: image size %ux%u is out of range", im->width, im->height);
    return Status::kCorrupt;
  }
  info->format = ImageFormat::kAvif;
  info->width = static_cast<std::int32_t>(im->width);
  info->height = static_cast<std::int32_t>(im->height);
  info->has_alpha = p.get()->alphaPresent != AVIF_FALSE;
  info->animated = p.get()->imageCount > 1;
  info->scale_denom = 1;
  info->out_width = info->width;
  info->out_height = info->height;
  info->out_channels = pixel_channels(options.pixel);
  return Status::kOk;
}

Status avif_decode(const std::uint8_t* data, std::size_t size, const DecodeOptions& options,
                   const ImageInfo& info, ImageView out, ErrorText* error) {
  const int channels = pixel_channels(options.pixel);
  if (out.width != info.width || out.height != info.height || out.channels != channels ||
      out.data == nullptr || out.stride < static_cast<std::int64_t>(out.width) * out.channels ||
      out.stride > UINT32_MAX) {
    error->set("avif: output view %dx%dx%d (stride %lld) does not match the image %dx%dx%d", out.width,
               out.height, out.channels, static_cast<long long>(out.stride), info.width, info.height,
               channels);
    return Status::kCorrupt;
  }
  // The coded frames may not be larger than max_pixels either: the container's extent passed
  // it, but a frame's own header is what dav1d allocates by (libavif then scales it to the extent).
  const std::uint32_t limit = options.max_pixels > 0 && options.max_pixels < AVIF_DEFAULT_IMAGE_SIZE_LIMIT
                                  ? static_cast<std::uint32_t>(options.max_pixels)
                                  : AVIF_DEFAULT_IMAGE_SIZE_LIMIT;
  const Parsed p(data, size, limit);
  if (!p.ok()) return p.fail("cannot read the container", error);
  avifImage* im = p.get()->image;
  if (im->width != static_cast<std::uint32_t>(info.width) ||
      im->height != static_cast<std::uint32_t>(info.height)) {
    error->set("avif: header changed between avif_info and avif_decode");
    return Status::kCorrupt;
  }
  const avifResult r = avifDecoderNextImage(p.get());
  if (r != AVIF_RESULT_OK) return p.fail("cannot decode the image", r, error);
  if (im->width != static_cast<std::uint32_t>(info.width) ||
      im->height != static_cast<std::uint32_t>(info.height)) {
    error->set("avif: the decoded image is %ux%u, the container says %dx%d", im->width, im->height,
               info.width, info.height);
    return Status::kCorrupt;
  }

  // RGB / RGBA straight into the caller's rows; otherwise RGB(A) scratch, then convert_rgb_rows.
  const bool direct =
      options.pixel == PixelFormat::kRgba || (options.pixel == PixelFormat::kRgb && !info.has_alpha);
  const int rgb_channels = direct ? channels : (info.has_alpha ? 4 : 3);
  avifRGBImage rgb;
  avifRGBImageSetDefaults(&rgb, im);
  rgb.depth = 8;
  rgb.format = rgb_channels == 4 ? AVIF_RGB_FORMAT_RGBA : AVIF_RGB_FORMAT_RGB;
  std::uint8_t* scratch = nullptr;
  if (direct) {
    rgb.pixels = out.data;
    rgb.rowBytes = static_cast<std::uint32_t>(out.stride);
  } else {
    const std::size_t stride = static_cast<std::size_t>(info.width) * rgb_channels;
    scratch = static_cast<std::uint8_t*>(std::malloc(stride * static_cast<std::size_t>(info.height)));
    if (scratch == nullptr) {
      error->set("avif: out of memory allocating %dx%dx%d of RGB scratch", info.width, info.height,
                 rgb_channels);
      return Status::kNoMemory;
    }
    rgb.pixels = scratch;
    rgb.rowBytes = static_cast<std::uint32_t>(stride);
  }
  const avifResult c = avifImageYUVToRGB(im, &rgb);
  Status s = Status::kOk;
  if (c != AVIF_RESULT_OK) {
    s = p.fail("cannot convert the image to RGB", c, error);
  } else if (scratch != nullptr) {
    convert_rgb_rows(scratch, static_cast<std::int64_t>(rgb.rowBytes), rgb_channels, out);
  }
  std::free(scratch);
  return s;
}

}  // namespace mmcore::detail

namespace mmcore {
const char* avif_library_version() {
  static char text[300] = {0};
  static const bool once = [] {
    char codecs[256] = {0};
    avifCodecVersions(codecs);
    std::snprintf(text, sizeof(text), "libavif %s (%s)", avifVersion(), codecs);
    return true;
  }();
  (void)once;
  return text;
}
}  // namespace mmcore

#else  // built without libavif

namespace mmcore::detail {

std::int32_t avif_orientation(const std::uint8_t*, std::size_t) {
  return 1;
}

Status avif_info(const std::uint8_t*, std::size_t, const DecodeOptions&, ImageInfo* info, ErrorText* error) {
  info->format = ImageFormat::kAvif;
  error->set("AVIF images are not supported by this build of mmcore (built without libavif)");
  return Status::kUnsupported;
}

Status avif_decode(const std::uint8_t*, std::size_t, const DecodeOptions&, const ImageInfo&, ImageView,
                   ErrorText* error) {
  error->set("AVIF images are not supported by this build of mmcore (built without libavif)");
  return Status::kUnsupported;
}

}  // namespace mmcore::detail

namespace mmcore {
const char* avif_library_version() {
  return "none (built without libavif)";
}
}  // namespace mmcore

#endif
