// Whole-record hashing: one decode per image serves every kind asked for.
//
// Contract (hash.h): exact modes decode at full size, RGB, no EXIF rotation, 16-bit grey PNG
// clipped as Pillow's I;16 conversions do; fast mode decodes JPEG at the smallest scaled-IDCT
// size that keeps both sides >= 128 px, as luma (RGB for colorhash alone), with EXIF orientation
// unless turned off, then resizes with LANCZOS as exact mode does
// (on an already decoded array nothing is decoded, so fast mode gives exact mode's bits). PDQ squashes
// images over 512 px to 512x512 (nearest) except in kPdqFull mode.
#include "mmcore/hash.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <utility>

#include "decode_internal.h"
#include "hash_internal.h"

namespace mmcore {
namespace {

constexpr std::uint32_t bit(HashKind k) {
  return 1u << static_cast<int>(k);
}
constexpr std::uint32_t kGreyKinds = bit(HashKind::kAhash) | bit(HashKind::kDhash) |
                                     bit(HashKind::kDhashVertical) | bit(HashKind::kPhash) |
                                     bit(HashKind::kPhashSimple) | bit(HashKind::kWhash);
constexpr std::uint32_t kAllKinds = (1u << kHashKindCount) - 1;
constexpr std::int32_t kPdqSquash = 512;

/// Whether PDQ hashes the 512x512 reference squash of a w x h image (reference mode, over 512 px).
bool pdq_squashes(const HashRequest& request, std::int32_t w, std::int32_t h) {
  return request.mode != HashMode::kPdqFull && (w > kPdqSquash || h > kPdqSquash);
}

/// Rows [y0, y0 + n) of v as a view of their own.
ImageView rows_of(const ImageView& v, std::int32_t y0, std::int32_t n) {
  return ImageView{v.row(y0), v.width, n, v.channels, v.stride};
}

/// Fast mode's scaled JPEG decode keeps both sides >= this: twice PDQ's 64x64 grid, the largest
/// any kind reads. One size for every kind, so that a kind's fast bits never depend on which
/// other kinds the same call asks for.
constexpr std::int32_t kFastMinSide = 128;

/// kFastMinSide, or twice the largest grid a kind asked for at another size reads (pHash at
/// hash_size x highfreq_factor; dHash hash_size + 1, and aHash / wHash counted the same), so that
/// fast mode never decodes under twice a hash's input: a call asking for a larger hash decodes
/// every kind it asks for at that size (documented).
std::int32_t fast_min_side(const HashRequest& r) {
  std::int32_t grid = 0;
  for (int k = 0; k < 6; ++k) {
    const auto kind = static_cast<HashKind>(k);
    if (!r.wants(kind) || !r.sized(kind)) continue;
    const bool dct = kind == HashKind::kPhash || kind == HashKind::kPhashSimple;
    grid = std::max(grid, dct ? r.hash_size * r.highfreq_factor : r.hash_size + 1);
  }
  return std::max(kFastMinSide, 2 * std::min(grid, 1024));
}

}  // namespace

namespace {

/// What hash_bytes made of the pixels while the decode finished their rows (null: not made).
struct Prepared {
  const ConstImageView* grey = nullptr;        ///< Pillow's "L" of an RGB image
  const ConstImageView* pdq_squash = nullptr;  ///< pdq_reference_squash of an image over 512 px
};

/// hash_image, with what `ready` holds already made.
Status hash_image_impl(ConstImageView img, const Prepared& ready, const HashRequest& request, HashRecord* out,
                       ErrorText* error, Workspace* workspace) {
  // Scratch that every kernel fully writes before reading it: no zero-fill (PDQ's float buffers
  // are 8 bytes per pixel, and std::vector would clear them for every image).
  Workspace local;
  Workspace& ws = workspace != nullptr ? *workspace : local;
  if (img.data == nullptr || img.width <= 0 || img.height <= 0 ||
      (img.channels != 1 && img.channels != 3 && img.channels != 4) ||
      img.stride < static_cast<std::int64_t>(img.width) * img.channels) {
    error->set("hash: image must be a non-empty HxW, HxWx3 or HxWx4 uint8 view (got %dx%dx%d)", img.height,
               img.width, img.channels);
    return Status::kUnsupported;
  }
  if ((request.kinds & ~kAllKinds) != 0 || request.kinds == 0) {
    error->set("hash: kinds mask 0x%x names no kind or an unknown one", request.kinds);
    return Status::kUnsupported;
  }
  // Fast mode keeps LANCZOS too: on the scaled (already small) image it costs little, and an
  // area filter there moved dHash by 6 bits on average from exact mode (LANCZOS: 0.6).
  const Filter filter = Filter::kLanczos3;

  if (request.kinds & kGreyKinds) {
    ConstImageView grey = img;
    if (ready.grey != nullptr) {
      grey = *ready.grey;
    } else if (img.channels != 1) {
      std::uint8_t* buffer =
          ws.get<std::uint8_t>(Workspace::Slot::kGrey, static_cast<std::size_t>(img.width) * img.height);
      ImageView g{buffer, img.width, img.height, 1, img.width};
      gray_pillow(img, g);
      grey = g;
    }
    std::uint64_t* b = out->bits;
    using Kernel = std::uint64_t (*)(ConstImageView, Filter);
    static constexpr Kernel kGrey[] = {ahash_gray, dhash_gray,        dhash_vertical_gray,
                                       phash_gray, phash_simple_gray, whash_gray};
    for (int k = 0; k < 6; ++k) {
      const auto kind = static_cast<HashKind>(k);
      if (!request.wants(kind)) continue;
      if (request.sized(kind)) {
        detail::hash_sized_gray(kind, grey, request, filter, out);  // imagehash's other sizes
      } else {
        b[k] = kGrey[k](grey, filter);
      }
    }
  }
  if (request.wants(HashKind::kColorhash)) {
    if (request.sized(HashKind::kColorhash)) {
      detail::hash_sized_colorhash(img, request, out);
    } else {
      out->bits[6] = colorhash_rgb(img);
    }
  }

  if (request.wants(HashKind::kPdq)) {
    ConstImageView src = img;
    if (pdq_squashes(request, img.width, img.height) && ready.pdq_squash != nullptr) {
      src = *ready.pdq_squash;
    } else if (pdq_squashes(request, img.width, img.height)) {
      std::uint8_t* squashed = ws.get<std::uint8_t>(
          Workspace::Slot::kPdqSquash, static_cast<std::size_t>(kPdqSquash) * kPdqSquash * img.channels);
      ImageView dst{squashed, kPdqSquash, kPdqSquash, img.channels,
                    static_cast<std::int64_t>(kPdqSquash) * img.channels};
      pdq_reference_squash(img, dst);
      src = dst;
    }
    float* scratch = ws.get<float>(Workspace::Slot::kPdq, pdq_scratch_floats(src.width, src.height));
    pdq_hash(src, request.pdq_dihedral, scratch, out->pdq, &out->pdq_quality,
             request.mode == HashMode::kPdqFull ? PdqLuma::kPdqhash : PdqLuma::kReference);
  }
  return Status::kOk;
}

}  // namespace

Status hash_image(ConstImageView img, const HashRequest& request, HashRecord* out, ErrorText* error,
                  Workspace* workspace) {
  if (!hash_sizes_valid(request, error)) return Status::kUnsupported;  // hash_bytes checks before decoding
  return hash_image_impl(img, Prepared{}, request, out, error, workspace);
}

namespace {

/// Sees the decoded pixels (as stored: no orientation in exact modes) and the decode's outcome
/// before they are freed.
using PixelSink = std::function<void(ConstImageView pixels, const DecodeOptions& used, Status status,
                                     const ErrorText& message)>;

/// rgb: decode RGB even when only the grey kinds are asked for (their bits are the same: JPEG's
/// Pillow-exact grey decode is that RGB decode converted with Pillow's formula, and WebP and GIF
/// convert their RGB the same way), so that a thumbnail can be made from the decode.
Status hash_bytes_impl(const std::uint8_t* data, std::size_t size, const HashRequest& request, bool rgb,
                       HashRecord* out, ErrorText* error, const PixelSink* sink, Workspace* workspace) {
  Workspace local;
  Workspace& ws = workspace != nullptr ? *workspace : local;
  if (!hash_sizes_valid(request, error)) return Status::kUnsupported;  // before decoding anything
  if (request.mode == HashMode::kFast && request.wants(HashKind::kColorhash) &&
      (request.kinds & ~bit(HashKind::kColorhash)) != 0) {
    // Fast mode decodes luma for the grey kinds and RGB only for colorhash: two decodes, so
    // that asking for colorhash does not change the other kinds' bits.
    HashRequest colour = request, grey = request;
    colour.kinds = bit(HashKind::kColorhash);
    grey.kinds &= ~bit(HashKind::kColorhash);
    HashRecord colour_out;
    ErrorText colour_error;
    const Status sc = hash_bytes(data, size, colour, &colour_out, &colour_error, &ws);
    if (!status_ok(sc)) {
      *error = colour_error;
      return sc;
    }
    const Status sg = hash_bytes(data, size, grey, out, error, &ws);
    if (!status_ok(sg)) return sg;
    out->bits[static_cast<int>(HashKind::kColorhash)] =
        colour_out.bits[static_cast<int>(HashKind::kColorhash)];
    out->wide[static_cast<int>(HashKind::kColorhash)] =
        std::move(colour_out.wide[static_cast<int>(HashKind::kColorhash)]);
    return sg;
  }
  DecodeOptions options;
  options.max_pixels = request.max_pixels;
  if (request.mode == HashMode::kFast) {
    options.pixel = request.wants(HashKind::kColorhash) ? PixelFormat::kRgb : PixelFormat::kGray;
    options.exif_orientation = request.exif_orientation;
    options.min_width = options.min_height = fast_min_side(request);
    options.fast = true;
  } else {
    // The imagehash kinds read Pillow's "L" image only: decode straight to it (a third of the
    // memory, and the conversion runs on rows still in cache). PDQ and colorhash need RGB.
    const bool grey_only = !rgb && !request.wants(HashKind::kPdq) && !request.wants(HashKind::kColorhash);
    options.pixel = grey_only ? PixelFormat::kGray : PixelFormat::kRgb;
    options.pillow_gray = true;
    options.exif_orientation = false;
    options.pillow_i16 = true;
  }
  ImageInfo info;
  Status status = decode_info(data, size, options, &info, error);
  if (!status_ok(status)) return status;
  const ErrorText header_error = *error;
  const Status header_status = status;

  const std::size_t bytes = static_cast<std::size_t>(info.out_width) * info.out_height * info.out_channels;
  std::uint8_t* pixels = nullptr;
  try {
    pixels = ws.get<std::uint8_t>(Workspace::Slot::kDecode, bytes);
  } catch (const std::bad_alloc&) {
    error->set("out of memory allocating the %dx%dx%d decode buffer", info.out_width, info.out_height,
               info.out_channels);
    return Status::kNoMemory;
  }
  ImageView view{pixels, info.out_width, info.out_height, info.out_channels,
                 static_cast<std::int64_t>(info.out_width) * info.out_channels};
  // Exact modes from an RGB JPEG decode: the grey kinds' Pillow "L" and PDQ's 512x512 squash are
  // made from each batch of rows as the decode finishes them, while the rows are in cache, instead
  // of passes over the whole RGB image after it (for a 12 MP photo, 36 MB read back from memory).
  // Same functions, same bytes.
  const bool exact_rgb = request.mode != HashMode::kFast && info.out_channels == 3;
  const bool want_grey = exact_rgb && (request.kinds & kGreyKinds) != 0;
  const bool want_squash =
      exact_rgb && request.wants(HashKind::kPdq) && pdq_squashes(request, info.out_width, info.out_height);
  ImageView grey{}, squash{};
  std::int32_t grey_rows = 0, squash_rows = 0;
  std::int32_t xs[kPdqSquash];
  try {
    if (want_grey) {
      grey = ImageView{ws.get<std::uint8_t>(Workspace::Slot::kGrey,
                                            static_cast<std::size_t>(info.out_width) * info.out_height),
                       info.out_width, info.out_height, 1, info.out_width};
    }
    if (want_squash) {
      squash = ImageView{
          ws.get<std::uint8_t>(Workspace::Slot::kPdqSquash, std::size_t{kPdqSquash} * kPdqSquash * 3),
          kPdqSquash, kPdqSquash, 3, std::int64_t{kPdqSquash} * 3};
      detail::pdq_squash_columns(info.out_width, xs);
    }
  } catch (const std::bad_alloc&) {
    error->set("out of memory allocating the grey or PDQ buffers of a %dx%d image", info.out_width,
               info.out_height);
    return Status::kNoMemory;
  }
  const detail::RowsDone on_rows = [&](std::int32_t y0, std::int32_t n) {
    if (want_grey) {
      gray_pillow(rows_of(view, y0, n), rows_of(grey, y0, n));
      grey_rows = y0 + n;  // a decode redone from row 0 reports its rows again
    }
    if (want_squash) {
      const std::int32_t hi = detail::pdq_squash_rows_below(view.height, y0 + n);
      detail::pdq_reference_squash_rows(view, squash, xs, detail::pdq_squash_rows_below(view.height, y0), hi);
      squash_rows = hi;
    }
  };
  status = detail::decode_into_rows(data, size, options, info, view, error, &ws,
                                    want_grey || want_squash ? &on_rows : nullptr);
  if (!status_ok(status)) return status;
  if (header_status == Status::kOkWarning && status == Status::kOk) {
    status = header_status;
    *error = header_error;
  }
  if (sink != nullptr) (*sink)(view, options, status, *error);
  ErrorText hash_error;
  const ConstImageView grey_done = grey, squash_done = squash;
  Prepared ready;
  if (want_grey && grey_rows == view.height) ready.grey = &grey_done;
  if (want_squash && squash_rows == kPdqSquash) ready.pdq_squash = &squash_done;
  const Status hashed = hash_image_impl(view, ready, request, out, &hash_error, &ws);
  if (!status_ok(hashed)) {
    *error = hash_error;
    return hashed;
  }
  return status;
}

}  // namespace

Status hash_bytes(const std::uint8_t* data, std::size_t size, const HashRequest& request, HashRecord* out,
                  ErrorText* error, Workspace* workspace) {
  return hash_bytes_impl(data, size, request, false, out, error, nullptr, workspace);
}

Status hash_bytes_with_thumbnail(const std::uint8_t* data, std::size_t size, const HashRequest& request,
                                 HashRecord* out, ErrorText* error, const ThumbnailOptions& thumb,
                                 const ThumbnailInfo& thumb_info, ImageView thumb_out, Status* thumb_status,
                                 ErrorText* thumb_error, Workspace* workspace) {
  bool made = false;
  const PixelSink sink = [&](ConstImageView pixels, const DecodeOptions& used, Status decoded,
                             const ErrorText& message) {
    if (!thumbnail_can_reuse(thumb, thumb_info, used)) return;
    ErrorText e;
    const Status s = thumbnail_from_decoded(pixels, thumb, thumb_info, thumb_out, &e, workspace);
    if (!status_ok(s)) return;  // e.g. out of memory for the turn: the second decode says it
    made = true;
    *thumb_status = decoded;  // the same decode's outcome (OK_WARNING with its message)
    *thumb_error = message;
  };
  // A thumbnail that would decode at full size can take the hash decode's pixels when they are
  // RGB: ask for RGB where the format gives the grey kinds the same bits that way (JPEG, WebP,
  // GIF, AVIF; a PNG is reused only when the hashes decode RGB anyway, for PDQ or colorhash).
  const ImageFormat f = detect_format(data, size);
  const bool rgb = thumb_info.image.scale_denom == 1 && thumb.decode.pixel == PixelFormat::kRgb &&
                   (f == ImageFormat::kJpeg || f == ImageFormat::kWebp || f == ImageFormat::kGif ||
                    f == ImageFormat::kAvif);
  const Status s = hash_bytes_impl(data, size, request, rgb, out, error, &sink, workspace);
  if (!made) *thumb_status = thumbnail_into(data, size, thumb, thumb_info, thumb_out, thumb_error, workspace);
  return s;
}

}  // namespace mmcore
