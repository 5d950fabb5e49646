// Thumbnail geometry and the decode -> resize -> crop chain.
#include "mmcore/image.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "scratch_internal.h"

namespace mmcore {
namespace {

using detail::Scratch;

// A size as int32, saturated: a 1 x 3e6 image at short side 1000 is 1000 x 3e9, which must reach
// the pixel-limit check as a huge size, not wrap to a small one.
std::int32_t saturate32(double v) {
  constexpr double kMax = std::numeric_limits<std::int32_t>::max();
  return v >= kMax ? std::numeric_limits<std::int32_t>::max() : static_cast<std::int32_t>(v);
}

std::int32_t scaled(std::int32_t v, double s) {
  return std::max<std::int32_t>(1, saturate32(std::round(v * s)));
}

// Scaled-decode constraint for a result dimension: the reduced image keeps reducing_gap times the
// resolution the result needs (Pillow's Image.thumbnail has the same knob, default 2.0).
// reducing_gap <= 0 disables the reduced decode. Measured on corpus jpeg/ (tests/test_image.py): a
// gap of 1.0 (just covering) puts the worst thumbnail at 24.6 dB PSNR from Pillow full decode +
// LANCZOS at short side 64; 2.0 gives 34.1 dB there and >= 42.8 dB from short side 128 up.
std::int32_t with_gap(std::int32_t v, std::int32_t full, double gap) {
  if (gap <= 0) return full;
  return saturate32(std::ceil(v * std::max(1.0, gap)));
}

int geometry_groups(const ThumbnailOptions& o) {
  return (o.short_side > 0) + (o.fit_width > 0 || o.fit_height > 0) +
         (o.crop_width > 0 || o.crop_height > 0) + (o.exact_width > 0 || o.exact_height > 0);
}

}  // namespace

void thumbnail_geometry(std::int32_t W, std::int32_t H, const ThumbnailOptions& options,
                        std::int32_t* resize_width, std::int32_t* resize_height, std::int32_t* out_width,
                        std::int32_t* out_height) {
  std::int32_t rw = W, rh = H, ow = 0, oh = 0;
  if (options.short_side > 0) {
    const std::int32_t side = options.short_side;
    if (options.upscale || side < std::min(W, H)) {
      if (W <= H) {
        rw = side;
        rh = scaled(H, static_cast<double>(side) / W);
      } else {
        rh = side;
        rw = scaled(W, static_cast<double>(side) / H);
      }
    }
  } else if (options.fit_width > 0) {
    const double sc =
        std::min(static_cast<double>(options.fit_width) / W, static_cast<double>(options.fit_height) / H);
    if (options.upscale || sc < 1.0) {
      rw = std::min(options.fit_width, scaled(W, sc));
      rh = std::min(options.fit_height, scaled(H, sc));
    }
  } else if (options.crop_width > 0) {
    const double sc =
        std::max(static_cast<double>(options.crop_width) / W, static_cast<double>(options.crop_height) / H);
    rw = std::max(options.crop_width, scaled(W, sc));
    rh = std::max(options.crop_height, scaled(H, sc));
    ow = options.crop_width;
    oh = options.crop_height;
  } else {
    rw = options.exact_width;
    rh = options.exact_height;
  }
  if (ow == 0) {
    ow = rw;
    oh = rh;
  }
  *resize_width = rw;
  *resize_height = rh;
  *out_width = ow;
  *out_height = oh;
}

Status thumbnail_info(const std::uint8_t* data, std::size_t size, const ThumbnailOptions& options,
                      ThumbnailInfo* info, ErrorText* error) {
  *info = ThumbnailInfo{};
  if (geometry_groups(options) != 1) {
    error->set("thumbnail needs exactly one of short_side, fit, crop or exact size");
    return Status::kUnsupported;
  }
  if ((options.fit_width > 0) != (options.fit_height > 0) ||
      (options.crop_width > 0) != (options.crop_height > 0) ||
      (options.exact_width > 0) != (options.exact_height > 0)) {
    error->set("thumbnail sizes need both a width and a height > 0");
    return Status::kUnsupported;
  }
  DecodeOptions full = options.decode;
  full.min_width = full.min_height = 0;
  ImageInfo whole;
  Status s = decode_info(data, size, full, &whole, error);
  if (!status_ok(s)) return s;
  const std::int32_t W = whole.out_width, H = whole.out_height;
  std::int32_t rw = 0, rh = 0, ow = 0, oh = 0;
  thumbnail_geometry(W, H, options, &rw, &rh, &ow, &oh);
  // The pixel limit bounds every buffer, not only the source: a legal 1x4718593 image scaled to
  // short side 64 would otherwise ask for a 64x301989952 result (found by the fuzzer). A crop's
  // resized image is never allocated (resize_crop computes the window alone): the output counts,
  // and each side of the resize (its taps are per output index) is held to the limit too.
  const std::int64_t limit = options.decode.max_pixels;
  const std::int64_t largest = std::max(
      {static_cast<std::int64_t>(ow) * oh, static_cast<std::int64_t>(rw), static_cast<std::int64_t>(rh)});
  if (limit > 0 && largest > limit) {
    error->set("thumbnail of the %dx%d image would be %dx%d = %lld pixels, over the limit of %lld", W, H, rw,
               rh, static_cast<long long>(largest), static_cast<long long>(limit));
    return Status::kTooLarge;
  }
  DecodeOptions reduced = options.decode;
  reduced.min_width = with_gap(rw, W, options.reducing_gap);
  reduced.min_height = with_gap(rh, H, options.reducing_gap);
  // Only JPEG decodes at a reduced scale, and only when half size still meets the constraint;
  // otherwise the full-size header pass already says everything (no second header parse).
  const bool may_reduce = whole.format == ImageFormat::kJpeg && (W + 1) / 2 >= reduced.min_width &&
                          (H + 1) / 2 >= reduced.min_height;
  if (may_reduce) {
    s = decode_info(data, size, reduced, &info->image, error);
    if (!status_ok(s)) return s;
  } else {
    info->image = whole;
  }
  info->decode_min_width = reduced.min_width;
  info->decode_min_height = reduced.min_height;
  info->resize_width = rw;
  info->resize_height = rh;
  info->out_width = ow;
  info->out_height = oh;
  info->out_channels = info->image.out_channels;
  return s;
}

namespace {

// What follows the decode in thumbnail_into: resize to (resize_width, resize_height), centre crop
// to (out_width, out_height). `decoded` is the oriented decode.
Status resize_and_crop(ConstImageView decoded, const ThumbnailOptions& options, const ThumbnailInfo& info,
                       ImageView out, ErrorText* error) {
  const std::int32_t c = info.out_channels;
  const bool same = decoded.width == info.resize_width && decoded.height == info.resize_height;
  const bool crop = info.resize_width != info.out_width || info.resize_height != info.out_height;
  if (!crop) {
    if (same) {
      for (std::int32_t y = 0; y < out.height; ++y)
        std::memcpy(out.row(y), decoded.row(y), static_cast<std::size_t>(out.width) * c);
    } else {
      resize(decoded, out, options.filter);
    }
    return Status::kOk;
  }
  // The centre window of the resize, computed alone (a 2x20000 image cropped to 224x224 would
  // otherwise be resized to 224x2240000 first).
  resize_crop(decoded, out, options.filter, info.resize_width, info.resize_height);
  (void)error;
  return Status::kOk;
}

}  // namespace

Status thumbnail_into(const std::uint8_t* data, std::size_t size, const ThumbnailOptions& options,
                      const ThumbnailInfo& info, ImageView out, ErrorText* error, Workspace* workspace) {
  DecodeOptions reduced = options.decode;
  reduced.min_width = info.decode_min_width;
  reduced.min_height = info.decode_min_height;
  const ImageInfo& im = info.image;
  const std::int32_t c = info.out_channels;
  const bool same = im.out_width == info.resize_width && im.out_height == info.resize_height;
  const bool crop = info.resize_width != info.out_width || info.resize_height != info.out_height;
  if (same && !crop) return decode_into(data, size, reduced, im, out, error, workspace);
  Scratch decoded(workspace, Workspace::Slot::kThumbnailDecode);
  if (!decoded.alloc(static_cast<std::size_t>(im.out_width) * im.out_height * c)) {
    error->set("out of memory allocating %dx%d scratch for a thumbnail", im.out_width, im.out_height);
    return Status::kNoMemory;
  }
  const ImageView dv{decoded.data(), im.out_width, im.out_height, c,
                     static_cast<std::int64_t>(im.out_width) * c};
  const Status s = decode_into(data, size, reduced, im, dv, error, workspace);
  if (!status_ok(s)) return s;
  const Status r = resize_and_crop(dv, options, info, out, error);
  return status_ok(r) ? s : r;
}

bool thumbnail_can_reuse(const ThumbnailOptions& options, const ThumbnailInfo& info,
                         const DecodeOptions& decoded) {
  // pillow_i16 changes the pixels of 16-bit grey PNGs only, pillow_gray those of grey output.
  const bool same_i16 = !info.image.grey16 || options.decode.pillow_i16 == decoded.pillow_i16;
  const bool same_gray =
      decoded.pixel != PixelFormat::kGray || options.decode.pillow_gray == decoded.pillow_gray;
  return info.image.scale_denom == 1 && info.image.format != ImageFormat::kUnknown && same_i16 && same_gray &&
         options.decode.pixel == decoded.pixel && !options.decode.fast && !decoded.fast;
}

Status thumbnail_from_decoded(ConstImageView stored, const ThumbnailOptions& options,
                              const ThumbnailInfo& info, ImageView out, ErrorText* error,
                              Workspace* workspace) {
  const ImageInfo& im = info.image;
  const bool orient = options.decode.exif_orientation && im.orientation >= 2 && im.orientation <= 8;
  const bool swap = orient && im.orientation >= 5;
  const std::int32_t w = swap ? stored.height : stored.width, h = swap ? stored.width : stored.height;
  if (stored.data == nullptr || stored.channels != info.out_channels || w != im.out_width ||
      h != im.out_height) {
    error->set("thumbnail: the decoded image (%dx%dx%d) is not the one the thumbnail plan expects (%dx%dx%d)",
               stored.width, stored.height, stored.channels, im.out_width, im.out_height, info.out_channels);
    return Status::kUnsupported;
  }
  if (!orient) return resize_and_crop(stored, options, info, out, error);
  const std::int32_t c = stored.channels;
  Scratch turned(workspace, Workspace::Slot::kThumbnailOrient);
  if (!turned.alloc(static_cast<std::size_t>(w) * h * c)) {
    error->set("out of memory allocating %dx%d for EXIF orientation", w, h);
    return Status::kNoMemory;
  }
  const ImageView tv{turned.data(), w, h, c, static_cast<std::int64_t>(w) * c};
  orient_pixels(stored, tv, im.orientation);
  return resize_and_crop(tv, options, info, out, error);
}

}  // namespace mmcore
