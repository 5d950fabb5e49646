// GIF decoder (first frame), written here: the format is small (a palette plus LZW-coded indices)
// and Pillow's semantics for the first frame are what the hashes must reproduce.
//
// Contract (see decode_internal.h), pixel rules matching Pillow 13's Image.open(f).convert(...):
// - The canvas is the logical screen, grown to cover the first frame where the frame pokes out.
//   Canvas pixels outside the frame hold index 0, or the frame's transparent index when its
//   graphic control extension names one.
// - Colours: the frame's local palette, else the global one; an index past the palette's end is
//   black; with no palette at all the index is the grey level (Pillow's mode "L").
// - kRgba: the transparent index gets alpha 0 (its palette colour kept), everything else 255;
//   kRgb ignores transparency; kGray is luma_pillow() of the colour (Pillow's convert("L") of a
//   "P" image goes through the palette's RGB with the same weights).
// - Interlaced frames are de-interlaced (rows 0,8,16..; 4,12..; 2,6..; 1,3..).
// - Bad input: a header or block that ends early, an LZW code that is not yet defined, or data
//   that ends before every pixel of the frame is written: kCorrupt with where it happened (Pillow
//   refuses these as truncated). Bytes after the frame's pixels are ignored.
// Only the first frame is decoded; info.animated says whether another follows.
#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

#include "decode_internal.h"
#include "luma_internal.h"

namespace mmcore::detail {
namespace {

std::uint16_t le16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | p[1] << 8);
}

struct Frame {
  std::int32_t screen_w = 0, screen_h = 0;
  std::int32_t x = 0, y = 0, w = 0, h = 0;  ///< first frame's rectangle
  const std::uint8_t* palette = nullptr;    ///< RGB triplets, nullptr when there is none
  int palette_size = 0;
  int transparent = -1;
  bool interlaced = false;
  int min_code = 0;
  std::size_t data = 0;        ///< offset of the first LZW sub-block
  std::size_t data_bytes = 0;  ///< LZW bytes in the sub-blocks (those inside the file)
  bool animated = false;
};

// Skips a chain of sub-blocks starting at *pos; false when it runs past the end.
bool skip_blocks(const std::uint8_t* d, std::size_t n, std::size_t* pos) {
  while (*pos < n) {
    const std::size_t len = d[*pos];
    *pos += 1 + len;
    if (len == 0) return *pos <= n;
  }
  return false;
}

Status parse(const std::uint8_t* d, std::size_t n, bool find_next_frame, Frame* f, ErrorText* error) {
  if (n < 13) {
    error->set("truncated GIF: %zu bytes, shorter than the header", n);
    return Status::kCorrupt;
  }
  f->screen_w = le16(d + 6);
  f->screen_h = le16(d + 8);
  const std::uint8_t flags = d[10];
  std::size_t pos = 13;
  const std::uint8_t* global = nullptr;
  int global_size = 0;
  if (flags & 0x80) {
    global_size = 2 << (flags & 7);
    if (pos + 3u * global_size > n) {
      error->set("truncated GIF: the global palette of %d colours runs past the end", global_size);
      return Status::kCorrupt;
    }
    global = d + pos;
    pos += 3u * global_size;
  }
  int transparent = -1;
  while (true) {
    if (pos >= n) {
      error->set("truncated GIF: no image in %zu bytes", n);
      return Status::kCorrupt;
    }
    const std::uint8_t block = d[pos];
    if (block == 0x3B) {
      error->set("GIF has no image (trailer at byte %zu)", pos);
      return Status::kCorrupt;
    }
    if (block == 0x21) {
      if (pos + 2 > n) break;
      const std::uint8_t label = d[pos + 1];
      // Graphic control extension: block size 4, flags, delay (2), transparent index.
      if (label == 0xF9 && pos + 7 <= n && d[pos + 2] >= 4) transparent = (d[pos + 3] & 1) ? d[pos + 6] : -1;
      pos += 2;
      if (!skip_blocks(d, n, &pos)) break;
      continue;
    }
    if (block != 0x2C) {
      error->set("corrupt GIF: unknown block 0x%02X at byte %zu", block, pos);
      return Status::kCorrupt;
    }
    if (pos + 10 > n) break;
    f->x = le16(d + pos + 1);
    f->y = le16(d + pos + 3);
    f->w = le16(d + pos + 5);
    f->h = le16(d + pos + 7);
    const std::uint8_t iflags = d[pos + 9];
    f->interlaced = (iflags & 0x40) != 0;
    pos += 10;
    f->palette = global;
    f->palette_size = global_size;
    if (iflags & 0x80) {
      const int local_size = 2 << (iflags & 7);
      if (pos + 3u * local_size > n) break;
      f->palette = d + pos;
      f->palette_size = local_size;
      pos += 3u * local_size;
    }
    if (pos >= n) break;
    f->min_code = d[pos];
    f->data = pos + 1;
    f->transparent = transparent;
    if (f->min_code < 1 || f->min_code > 11) {
      error->set("corrupt GIF: LZW minimum code size %d (1..11 allowed)", f->min_code);
      return Status::kCorrupt;
    }
    for (std::size_t p = f->data; p < n && d[p] != 0; p += 1 + d[p]) {
      f->data_bytes += std::min<std::size_t>(d[p], n - p - 1);
    }
    if (find_next_frame) {
      // Another image descriptor after this frame's data makes the file animated.
      std::size_t p = f->data;
      if (skip_blocks(d, n, &p)) {
        while (p < n && d[p] == 0x21 && p + 2 <= n) {
          p += 2;
          if (!skip_blocks(d, n, &p)) break;
        }
        f->animated = p < n && d[p] == 0x2C;
      }
    }
    return Status::kOk;
  }
  error->set("truncated GIF: a block runs past the end (%zu bytes)", n);
  return Status::kCorrupt;
}

// LZW over the sub-block chain at `pos`, writing up to `count` indices in stream order.
// Returns the number of indices written; sets *bad_code on an undefined code.
std::size_t lzw_decode(const std::uint8_t* d, std::size_t n, std::size_t pos, int min_code, std::uint8_t* out,
                       std::size_t count, bool* bad_code) {
  constexpr int kMaxCodes = 4096;
  std::vector<std::uint16_t> prefix(kMaxCodes);
  std::vector<std::uint8_t> suffix(kMaxCodes), first(kMaxCodes);
  std::vector<std::uint16_t> length(kMaxCodes);
  const int clear = 1 << min_code, eoi = clear + 1;
  for (int c = 0; c < clear; ++c) {
    suffix[static_cast<std::size_t>(c)] = first[static_cast<std::size_t>(c)] = static_cast<std::uint8_t>(c);
    length[static_cast<std::size_t>(c)] = 1;
  }
  int width = min_code + 1, next = clear + 2, prev = -1;
  std::uint32_t acc = 0;
  int nbits = 0;
  std::size_t block_left = 0, written = 0;
  while (written < count) {
    while (nbits < width) {
      if (block_left == 0) {
        if (pos >= n || d[pos] == 0) return written;  // the data ends
        block_left = d[pos++];
        continue;
      }
      if (pos >= n) return written;
      acc |= static_cast<std::uint32_t>(d[pos++]) << nbits;
      nbits += 8;
      --block_left;
    }
    const int code = static_cast<int>(acc & ((1u << width) - 1));
    acc >>= width;
    nbits -= width;
    if (code == clear) {
      width = min_code + 1;
      next = clear + 2;
      prev = -1;
      continue;
    }
    if (code == eoi) return written;
    int emit = code;
    if (prev < 0) {
      if (code >= clear) {
        *bad_code = true;
        return written;
      }
    } else if (code > next || (code == next && next >= kMaxCodes)) {
      *bad_code = true;
      return written;
    } else if (next < kMaxCodes) {
      // New entry: prev's string plus the first index of code's string (prev's own when code is
      // the entry being defined).
      const auto ni = static_cast<std::size_t>(next);
      const auto pi = static_cast<std::size_t>(prev);
      prefix[ni] = static_cast<std::uint16_t>(prev);
      first[ni] = first[pi];
      suffix[ni] = code == next ? first[pi] : first[static_cast<std::size_t>(code)];
      length[ni] = static_cast<std::uint16_t>(length[pi] + 1);
      ++next;
      if (next == (1 << width) && width < 12) ++width;
    }
    // Write emit's string backwards from its end, clipped to the pixels left.
    const std::size_t len = length[static_cast<std::size_t>(emit)];
    std::size_t end = written + len;
    int c = emit;
    for (std::size_t k = end; k-- > written;) {
      if (k < count) out[k] = suffix[static_cast<std::size_t>(c)];
      c = prefix[static_cast<std::size_t>(c)];
    }
    written = std::min(end, count);
    prev = code;
  }
  return written;
}

// Every LZW code has at least min_code + 1 bits and writes at most 4096 indices, so a frame that
// needs more than its data could ever hold is truncated for sure: refused before anything sized by
// its header is allocated (a 28-byte GIF could otherwise claim a 13000x13000 frame).
Status check_capacity(const Frame& f, ErrorText* error) {
  const std::uint64_t most =
      static_cast<std::uint64_t>(f.data_bytes) * 8 / static_cast<unsigned>(f.min_code + 1) * 4096;
  const std::uint64_t pixels = static_cast<std::uint64_t>(f.w) * static_cast<std::uint64_t>(f.h);
  if (pixels <= most) return Status::kOk;
  error->set(
      "truncated GIF: the %dx%d frame needs %llu pixels, but its %zu bytes of LZW data hold at most %llu",
      f.w, f.h, static_cast<unsigned long long>(pixels), f.data_bytes, static_cast<unsigned long long>(most));
  return Status::kCorrupt;
}

void colour(const Frame& f, std::uint8_t index, std::uint8_t rgb[3]) {
  if (f.palette == nullptr) {
    rgb[0] = rgb[1] = rgb[2] = index;
  } else if (index < f.palette_size) {
    std::memcpy(rgb, f.palette + 3 * index, 3);
  } else {
    rgb[0] = rgb[1] = rgb[2] = 0;
  }
}

}  // namespace

bool is_gif(const std::uint8_t* d, std::size_t n) {
  return n >= 6 && (std::memcmp(d, "GIF87a", 6) == 0 || std::memcmp(d, "GIF89a", 6) == 0);
}

Status gif_info(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, ImageInfo* info,
                ErrorText* error) {
  Frame f;
  const Status s = parse(data, size, true, &f, error);
  info->width = std::max(f.screen_w, f.x + f.w);
  info->height = std::max(f.screen_h, f.y + f.h);
  if (s != Status::kOk) return s;
  // The pixel limit speaks first (decode_info reports it); within it, data too short for the frame.
  const std::int64_t canvas = static_cast<std::int64_t>(info->width) * info->height;
  if (!(options.max_pixels > 0 && canvas > options.max_pixels)) {
    if (const Status c = check_capacity(f, error); c != Status::kOk) return c;
  }
  info->scale_denom = 1;
  info->out_width = info->width;
  info->out_height = info->height;
  info->out_channels = pixel_channels(options.pixel);
  info->has_alpha = f.transparent >= 0;
  info->animated = f.animated;
  return Status::kOk;
}

Status gif_decode(const std::uint8_t* data, std::size_t size, const DecodeOptions& /*options*/,
                  const ImageInfo& info, ImageView out, ErrorText* error) {
  Frame f;
  const Status hs = parse(data, size, false, &f, error);
  if (hs != Status::kOk) return hs;
  const std::int32_t cw = std::max(f.screen_w, f.x + f.w), ch = std::max(f.screen_h, f.y + f.h);
  if (cw != info.out_width || ch != info.out_height) {
    error->set("GIF changed between decode_info and decode_into");
    return Status::kCorrupt;
  }
  if (const Status c = check_capacity(f, error); c != Status::kOk) return c;
  const std::size_t pixels = static_cast<std::size_t>(f.w) * static_cast<std::size_t>(f.h);
  std::vector<std::uint8_t> stream, canvas;
  try {
    stream.resize(pixels);
    canvas.assign(static_cast<std::size_t>(cw) * static_cast<std::size_t>(ch),
                  static_cast<std::uint8_t>(f.transparent >= 0 ? f.transparent : 0));
  } catch (const std::bad_alloc&) {
    error->set("out of memory for a %dx%d GIF", cw, ch);
    return Status::kNoMemory;
  }
  bool bad_code = false;
  const std::size_t got = lzw_decode(data, size, f.data, f.min_code, stream.data(), pixels, &bad_code);
  if (got < pixels) {
    if (bad_code) {
      error->set("corrupt GIF data: undefined LZW code after %zu of %zu pixels", got, pixels);
    } else {
      error->set("truncated GIF: the image data ends after %zu of %zu pixels (%dx%d frame)", got, pixels, f.w,
                 f.h);
    }
    return Status::kCorrupt;
  }
  // Stream row r goes to frame row rows[r] (interlaced: four passes).
  std::size_t r = 0;
  auto place = [&](std::int32_t start, std::int32_t step) {
    for (std::int32_t fy = start; fy < f.h; fy += step, ++r) {
      std::memcpy(&canvas[static_cast<std::size_t>(f.y + fy) * static_cast<std::size_t>(cw) +
                          static_cast<std::size_t>(f.x)],
                  &stream[r * static_cast<std::size_t>(f.w)], static_cast<std::size_t>(f.w));
    }
  };
  if (pixels == 0) {
    // An empty frame: the canvas alone.
  } else if (f.interlaced) {
    place(0, 8);
    place(4, 8);
    place(2, 4);
    place(1, 2);
  } else {
    place(0, 1);
  }
  const std::int32_t oc = out.channels;
  for (std::int32_t y = 0; y < ch; ++y) {
    const std::uint8_t* src = &canvas[static_cast<std::size_t>(y) * static_cast<std::size_t>(cw)];
    std::uint8_t* o = out.row(y);
    for (std::int32_t x = 0; x < cw; ++x) {
      std::uint8_t rgb[3];
      colour(f, src[x], rgb);
      if (oc == 1) {
        o[x] = luma_pillow(rgb[0], rgb[1], rgb[2]);
      } else {
        std::memcpy(o + x * oc, rgb, 3);
        if (oc == 4) o[x * oc + 3] = src[x] == f.transparent ? 0 : 255;
      }
    }
  }
  return Status::kOk;
}

}  // namespace mmcore::detail
