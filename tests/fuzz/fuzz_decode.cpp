// libFuzzer harness for the decode entry points: decode_info + decode_into, and the thumbnail path
// (thumbnail_info + thumbnail_into) that adds scaled decode + resize. All formats: the bytes after the
// first are the image, whose format is detected from content.
//
// The first input byte picks the options, so one corpus exercises every combination:
//   bits 0-1  pixel format: 0 RGB, 1 gray, 2 RGBA, 3 RGB
//   bit  2    EXIF orientation applied
//   bit  3    reduced-size decode (JPEG scaled IDCT): min_width/min_height from bits 4-5
//   bits 4-5  target size 1, 17, 64 or 256 px (scaled decode and thumbnail geometry)
//   bit  6    thumbnail path instead of decode (geometry from bits 4-5: short side / fit / crop / exact)
//   bit  7    fast JPEG decode (IFAST IDCT, plain upsampling)
//
// What counts as a bug (reported with __builtin_trap, besides what ASan/UBSan catch):
//   - a Status outside the enum, or a failure without a message;
//   - an OK header whose output geometry is empty or negative;
//   - bytes written outside the caller's view: the output rows are padded and the buffer has a tail,
//     both filled with a canary and checked after the decode. The Debian codec libraries are not
//     instrumented, so this is what catches a library writing past the rows mmcore hands it;
//   - a JPEG whose decode with mmcore's Huffman decoder (baseline and progressive) differs from the
//     decode with libjpeg's (DecodeOptions::libjpeg_huffman) in status, message or pixels.
// The pixel limit is lowered to 2^24 px (64 MB of RGBA output) so that legal-but-huge headers stay
// under -rss_limit_mb; refusing them before any allocation is itself part of what is tested.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "mmcore/decode.h"
#include "mmcore/image.h"
#include "mmcore/status.h"

namespace {

constexpr std::int64_t kFuzzMaxPixels = std::int64_t{1} << 24;
constexpr std::uint8_t kCanary = 0xA5;
constexpr std::size_t kTail = 64;
constexpr std::int32_t kTargets[4] = {1, 17, 64, 256};

void check_status(mmcore::Status s, const mmcore::ErrorText& e) {
  if (static_cast<unsigned>(s) > static_cast<unsigned>(mmcore::Status::kDevice)) __builtin_trap();
  if (::strnlen(e.text, mmcore::kErrorTextCap) >= mmcore::kErrorTextCap) __builtin_trap();
  if (!mmcore::status_ok(s) && e.empty()) __builtin_trap();  // every failure says what was wrong
}

// Runs `fill` on a canary-guarded buffer for a w x h x c view with `pad` bytes of row padding, then
// checks that only the pixels were written.
template <typename Fill>
void guarded(std::int32_t w, std::int32_t h, std::int32_t c, std::int32_t pad, Fill fill) {
  if (w <= 0 || h <= 0 || (c != 1 && c != 3 && c != 4)) __builtin_trap();
  const std::int64_t row = static_cast<std::int64_t>(w) * c;
  const std::int64_t stride = row + pad;
  const std::size_t bytes = static_cast<std::size_t>(stride * h) + kTail;
  auto* buf = new (std::nothrow) std::uint8_t[bytes];
  if (buf == nullptr) return;
  std::memset(buf, kCanary, bytes);
  mmcore::ImageView out{buf, w, h, c, stride};
  fill(out);
  for (std::int32_t y = 0; y < h; ++y) {
    const std::uint8_t* p = buf + stride * y + row;
    for (std::int32_t k = 0; k < pad; ++k)
      if (p[k] != kCanary) __builtin_trap();  // wrote into the row padding
  }
  for (std::size_t k = bytes - kTail; k < bytes; ++k)
    if (buf[k] != kCanary) __builtin_trap();  // wrote past the view
  delete[] buf;
}

// The same decode with libjpeg's Huffman decoder must give what `out` got from mmcore's: the same
// status, message and (when decoded) pixels.
void same_with_libjpeg_huffman(const std::uint8_t* data, std::size_t size, const mmcore::DecodeOptions& o,
                               const mmcore::ImageInfo& info, mmcore::ImageView out, mmcore::Status status,
                               const mmcore::ErrorText& error) {
  const std::int64_t row = static_cast<std::int64_t>(info.out_width) * info.out_channels;
  auto* ref = new (std::nothrow) std::uint8_t[static_cast<std::size_t>(row) * info.out_height];
  if (ref == nullptr) return;
  mmcore::DecodeOptions libjpeg = o;
  libjpeg.libjpeg_huffman = true;
  mmcore::ErrorText e;
  const mmcore::Status s = mmcore::decode_into(
      data, size, libjpeg, info,
      mmcore::ImageView{ref, info.out_width, info.out_height, info.out_channels, row}, &e);
  if (s != status || std::strcmp(e.text, error.text) != 0) __builtin_trap();
  if (mmcore::status_ok(s)) {
    for (std::int32_t y = 0; y < info.out_height; ++y)
      if (std::memcmp(out.row(y), ref + row * y, static_cast<std::size_t>(row)) != 0) __builtin_trap();
  }
  delete[] ref;
}

void fuzz_decode(const std::uint8_t* data, std::size_t size, const mmcore::DecodeOptions& o,
                 std::int32_t pad) {
  mmcore::ImageInfo info;
  mmcore::ErrorText err;
  mmcore::Status s = mmcore::decode_info(data, size, o, &info, &err);
  check_status(s, err);
  if (!mmcore::status_ok(s)) return;
  if (info.width <= 0 || info.height <= 0 || info.out_width <= 0 || info.out_height <= 0) __builtin_trap();
  if (info.width * static_cast<std::int64_t>(info.height) > kFuzzMaxPixels)
    __builtin_trap();  // limit ignored
  const bool jpeg = mmcore::detect_format(data, size) == mmcore::ImageFormat::kJpeg;
  guarded(info.out_width, info.out_height, info.out_channels, pad, [&](mmcore::ImageView out) {
    mmcore::ErrorText e2;
    const mmcore::Status s2 = mmcore::decode_into(data, size, o, info, out, &e2);
    check_status(s2, e2);
    if (jpeg) same_with_libjpeg_huffman(data, size, o, info, out, s2, e2);
  });
}

void fuzz_thumbnail(const std::uint8_t* data, std::size_t size, const mmcore::DecodeOptions& d,
                    std::uint8_t sel, std::int32_t pad) {
  mmcore::ThumbnailOptions o;
  o.decode = d;
  const std::int32_t t = kTargets[(sel >> 4) & 3];
  switch ((sel >> 4) & 3) {  // one geometry group per input, all four over the corpus
    case 0: o.short_side = t; break;
    case 1: o.fit_width = t, o.fit_height = t / 2 + 1; break;
    case 2: o.crop_width = t, o.crop_height = t; break;
    default: o.exact_width = t / 4 + 1, o.exact_height = t; break;
  }
  o.filter = static_cast<mmcore::Filter>(sel % 5);
  o.upscale = (sel & 1) != 0;
  if (o.decode.pixel == mmcore::PixelFormat::kRgba) o.decode.pixel = mmcore::PixelFormat::kRgb;
  mmcore::ThumbnailInfo info;
  mmcore::ErrorText err;
  mmcore::Status s = mmcore::thumbnail_info(data, size, o, &info, &err);
  check_status(s, err);
  if (!mmcore::status_ok(s)) return;
  guarded(info.out_width, info.out_height, info.out_channels, pad, [&](mmcore::ImageView out) {
    mmcore::ErrorText e2;
    check_status(mmcore::thumbnail_into(data, size, o, info, out, &e2), e2);
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t sel = data[0];
  ++data, --size;

  const mmcore::ImageFormat f = mmcore::detect_format(data, size);
  const std::int32_t orientation = mmcore::read_orientation(data, size, f);
  if (orientation < 1 || orientation > 8) __builtin_trap();

  mmcore::DecodeOptions o;
  o.pixel = static_cast<mmcore::PixelFormat>((sel & 3) == 3 ? 0 : (sel & 3));
  o.exif_orientation = (sel & 4) != 0;
  o.max_pixels = kFuzzMaxPixels;
  o.fast = (sel & 0x80) != 0;
  if (sel & 8) o.min_width = o.min_height = kTargets[(sel >> 4) & 3];
  const std::int32_t pad = (sel & 8) ? 3 : 0;

  if (sel & 0x40)
    fuzz_thumbnail(data, size, o, sel, pad);
  else
    fuzz_decode(data, size, o, pad);
  return 0;
}
