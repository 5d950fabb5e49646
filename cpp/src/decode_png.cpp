// PNG decoder: libpng's full read API (not the simplified png_image API, which converts through
// linear light when gamma chunks are present; Pillow never applies gAMA/iCCP/sBIT/cHRM).
//
// Contract (see decode_internal.h), pixel rules matching Pillow 13's Image.open(f).convert(...):
// - 1/2/4-bit grey is scaled to 8 bits by bit replication (x255, x85, x17), as Pillow's "1",
//   "L;2", "L;4" unpackers do.
// - 16-bit samples keep their high byte (Pillow's "RGB;16B", "RGBA;16B", "LA;16B" rawmodes).
//   Deliberate deviation: 16-bit grey without alpha is Pillow mode "I;16", whose convert("RGB")
//   and convert("L") clip values above 255 to 255 (a near-white image); we keep the high byte.
// - Palette indices beyond the PLTE entries give black (and opaque), as in Pillow.
// - kRgb drops alpha without premultiplying; kRgba expands tRNS to alpha (the comparison is
//   made on the stored samples, 16-bit ones included, as the PNG spec says) and is 255 elsewhere;
//   kGray keeps grey samples and maps colour through luma_pillow() (palette: per entry).
// - Ancillary chunks other than tRNS are skipped unread (no inflate of iCCP / zTXt / iTXt).
// - APNG: Debian's libpng has no APNG support, so the default (IDAT) image is decoded: that is
//   frame 0 as Pillow shows it. acTL before IDAT sets info.animated.
// - Errors (libpng's png_error, truncated input, bad CRC in a critical chunk, zlib errors) are
//   kCorrupt with libpng's message; libpng warnings and benign errors (bad CRC in a skipped
//   ancillary chunk or on IDAT, extra compressed data) give kOkWarning with the first one.
//   Nothing is ever printed.
// - Bounded: png_info reads only the chunks before the first IDAT (and the IDAT chunks' lengths)
//   and allocates no pixel memory; an IHDR that needs more pixel rows than its IDAT bytes can
//   inflate to (deflate's 1032:1 at most) is kCorrupt there, before anything sized by it; png_decode refuses
//   any IHDR that differs from what png_info measured, caps ancillary chunk allocations, and stops after the
//   last row (chunks after the image data are not read).
#include <png.h>
#include <zlib.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "decode_internal.h"
#include "luma_internal.h"

namespace mmcore::detail {
namespace {

// Known ancillary chunks we never need: libpng treats them as unknown and skips them (after a
// CRC check), so it never inflates or validates them. tRNS is kept; acTL is found by scan_chunks.
constexpr png_byte kIgnoredChunks[] =
    "bKGD\0cHRM\0eXIf\0gAMA\0hIST\0iCCP\0iTXt\0oFFs\0pCAL\0pHYs\0sBIT\0sCAL\0sPLT\0sRGB\0sTER\0tEXt\0"
    "tIME\0zTXt\0";
constexpr int kIgnoredCount = static_cast<int>((sizeof(kIgnoredChunks) - 1) / 5);

constexpr png_alloc_size_t kChunkMallocMax = 8u << 20;  // one ancillary chunk kept in memory
constexpr png_uint_32 kChunkCacheMax = 256;             // number of unknown chunks kept

// Everything the libpng callbacks touch; lives in the caller's frame, so it survives longjmp.
struct PngContext {
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
  std::size_t pos = 0;
  bool truncated = false;
  bool warned = false;
  char error[160] = {0};
  char warning[160] = {0};
  std::uint8_t* scratch = nullptr;  // malloc'd; freed by run() whatever happens
};

[[noreturn]] void on_error(png_structp png, png_const_charp msg) {
  auto* c = static_cast<PngContext*>(png_get_error_ptr(png));
  std::snprintf(c->error, sizeof(c->error), "%s", msg != nullptr ? msg : "unknown libpng error");
  png_longjmp(png, 1);
}

void on_warning(png_structp png, png_const_charp msg) {
  auto* c = static_cast<PngContext*>(png_get_error_ptr(png));
  // Pillow writes 1-bit grey tRNS as 255 (its 8-bit scale); libpng warns, then masks the sample
  // to the bit depth, which is what Pillow means. Not damage, so not a warning here.
  if (msg != nullptr && std::strncmp(msg, "tRNS chunk has out-of-range samples", 35) == 0) return;
  if (!c->warned) std::snprintf(c->warning, sizeof(c->warning), "%s", msg != nullptr ? msg : "warning");
  c->warned = true;
}

void on_read(png_structp png, png_bytep out, std::size_t n) {
  auto* c = static_cast<PngContext*>(png_get_io_ptr(png));
  if (n > c->size - c->pos) {
    c->truncated = true;
    png_error(png, "truncated");
  }
  std::memcpy(out, c->data + c->pos, n);
  c->pos += n;
}

// What the chunks before the first IDAT say beyond libpng's view (we make libpng skip most
// ancillary chunks unread, so their defects are found here, by a bounds-checked walk).
struct HeaderScan {
  bool actl = false;
  std::uint32_t num_frames = 0;
  bool fctl_before_idat = false;  // the default image is frame 0 of the animation
  char defect[120] = {0};         // first malformed ancillary chunk; empty when none
};

// Fixed data lengths of ancillary chunks (0: variable or unknown). Pillow rejects these chunks
// when their length is wrong ("Truncated cHRM chunk").
std::uint32_t fixed_length(const std::uint8_t* type, int color_type) {
  static constexpr struct {
    char name[5];
    std::uint32_t len;
  } kFixed[] = {{"cHRM", 32}, {"gAMA", 4}, {"sRGB", 1}, {"pHYs", 9}, {"tIME", 7}, {"oFFs", 9}};
  for (const auto& f : kFixed) {
    if (std::memcmp(type, f.name, 4) == 0) return f.len;
  }
  static constexpr std::uint32_t kBkgd[7] = {2, 0, 6, 1, 2, 0, 6};  // by colour type
  static constexpr std::uint32_t kSbit[7] = {1, 0, 3, 3, 2, 0, 4};
  if (color_type < 0 || color_type > 6) return 0;
  if (std::memcmp(type, "bKGD", 4) == 0) return kBkgd[color_type];
  if (std::memcmp(type, "sBIT", 4) == 0) return kSbit[color_type];
  return 0;
}

// Pillow's PngImagePlugin.MAX_TEXT_CHUNK and MAX_TEXT_MEMORY: a compressed text / ICC chunk
// that inflates to more, or all of them together, is refused by Pillow as a decompression bomb.
// We never use the text, but we report the bomb; the budget also bounds the work of checking.
constexpr std::size_t kMaxInflatedChunk = 1u << 20;
constexpr std::size_t kMaxInflatedTotal = 64u << 20;

// Offset of the zlib stream inside a zTXt / iTXt / iCCP chunk; 0 when there is none.
std::size_t zlib_offset(const std::uint8_t* type, const std::uint8_t* d, std::size_t len) {
  const void* nul = std::memchr(d, 0, len < 80 ? len : 80);  // keyword / profile name, <= 79 bytes
  if (nul == nullptr) return 0;
  std::size_t p = static_cast<const std::uint8_t*>(nul) - d + 1;
  if (std::memcmp(type, "zTXt", 4) == 0 || std::memcmp(type, "iCCP", 4) == 0) return p + 1 < len ? p + 1 : 0;
  if (std::memcmp(type, "iTXt", 4) == 0) {  // compression flag, method, language\0, keyword\0
    if (p + 2 > len || d[p] == 0) return 0;
    p += 2;
    for (int field = 0; field < 2; ++field) {
      const void* z = std::memchr(d + p, 0, len - p);
      if (z == nullptr) return 0;
      p = static_cast<const std::uint8_t*>(z) - d + 1;
    }
    return p < len ? p : 0;
  }
  return 0;
}

HeaderScan scan_chunks(const std::uint8_t* d, std::size_t n, int color_type) {
  HeaderScan r;
  std::size_t p = 8;
  std::size_t inflated = 0;  // all compressed chunks so far
  while (n >= 12 && p <= n - 12) {
    const std::uint32_t len = read_be32(d + p);
    const std::uint8_t* type = d + p + 4;
    if (std::memcmp(type, "IDAT", 4) == 0 || len > n - p - 12) break;
    const std::uint8_t* body = d + p + 8;
    if (std::memcmp(type, "acTL", 4) == 0 && len >= 8) {
      r.actl = true;
      r.num_frames = read_be32(body);
    } else if (std::memcmp(type, "fcTL", 4) == 0) {
      r.fctl_before_idat = true;
    } else if (r.defect[0] == '\0') {
      const std::uint32_t want = fixed_length(type, color_type);
      if (want != 0 && len != want) {
        std::snprintf(r.defect, sizeof(r.defect), "%.4s chunk has length %u, expected %u; it was ignored",
                      reinterpret_cast<const char*>(type), len, want);
      } else if (const std::size_t z = zlib_offset(type, body, len); z != 0) {
        const std::size_t left = kMaxInflatedTotal - inflated;
        const std::size_t cap = left < kMaxInflatedChunk ? left : kMaxInflatedChunk;
        const std::size_t got = inflate_capped(body + z, len - z, cap, nullptr);
        inflated += got < cap ? got : cap;
        if (got > cap) {
          std::snprintf(r.defect, sizeof(r.defect),
                        "%.4s chunk inflates to over %zu bytes%s (a decompression bomb); it was ignored",
                        reinterpret_cast<const char*>(type),
                        cap == kMaxInflatedChunk ? cap : kMaxInflatedTotal,
                        cap == kMaxInflatedChunk ? "" : " with the chunks before it");
        }
      }
    }
    p += 12 + static_cast<std::size_t>(len);
  }
  return r;
}

// Bytes of IDAT data in the file (a chunk that runs past the end counts what is there). The walk
// stops at IEND or at a chunk that cannot be framed.
std::size_t idat_bytes(const std::uint8_t* d, std::size_t n) {
  std::size_t p = 8, total = 0;
  while (n >= 12 && p <= n - 12) {
    const std::uint32_t len = read_be32(d + p);
    const std::uint8_t* type = d + p + 4;
    if (std::memcmp(type, "IEND", 4) == 0) break;
    const std::size_t body = n - p - 8;  // bytes after the chunk's length and type
    if (std::memcmp(type, "IDAT", 4) == 0) total += len < body ? len : body;
    if (len > n - p - 12) break;
    p += 12 + static_cast<std::size_t>(len);
  }
  return total;
}

// Filtered bytes (one filter byte per row) that the IHDR's image needs; Adam7 passes sum theirs.
std::uint64_t filtered_bytes(std::uint64_t w, std::uint64_t h, int bit_depth, int color_type, bool adam7) {
  const int samples = color_type == 2 ? 3 : color_type == 4 ? 2 : color_type == 6 ? 4 : 1;
  const std::uint64_t bits = static_cast<std::uint64_t>(samples) * static_cast<std::uint64_t>(bit_depth);
  const auto rows = [&](std::uint64_t pw, std::uint64_t ph) {
    return pw == 0 ? 0 : ph * (1 + (pw * bits + 7) / 8);
  };
  if (!adam7) return rows(w, h);
  static constexpr std::uint64_t kX0[7] = {0, 4, 0, 2, 0, 1, 0}, kDx[7] = {8, 8, 4, 4, 2, 2, 1};
  static constexpr std::uint64_t kY0[7] = {0, 0, 4, 0, 2, 0, 1}, kDy[7] = {8, 8, 8, 4, 4, 2, 2};
  std::uint64_t total = 0;
  for (int i = 0; i < 7; ++i) {
    const std::uint64_t pw = w > kX0[i] ? (w - kX0[i] + kDx[i] - 1) / kDx[i] : 0;
    const std::uint64_t ph = h > kY0[i] ? (h - kY0[i] + kDy[i] - 1) / kDy[i] : 0;
    total += rows(pw, ph);
  }
  return total;
}

// Deflate's largest expansion: a 258-byte match coded in 2 bits (zlib's FAQ: 1032:1). An IHDR that
// needs more filtered bytes than the IDAT data can inflate to is truncated for sure; refusing it
// at png_info keeps a tiny file from making libpng allocate rows sized by its header.
constexpr std::uint64_t kDeflateMaxRatio = 1032;
constexpr std::uint64_t kDeflateSlack = 1024;

enum class Plan : std::uint8_t {
  kDirect,       // libpng's output rows are the requested pixels: read straight into `out`
  kLumaFromRgb,  // libpng gives RGB; kGray wants luma_pillow
  kLumaFromLut,  // libpng gives palette indices; kGray wants luma_pillow of the entry
  kClip16,       // libpng gives 16-bit grey; Pillow's I;16 conversions clip it to 255 (pillow_i16)
};

struct Job {
  const DecodeOptions* options = nullptr;
  ImageInfo* info = nullptr;        // png_info: filled
  const ImageInfo* want = nullptr;  // png_decode: what png_info measured
  const ImageView* out = nullptr;   // png_decode: destination (nullptr: header only)
};

// Sets up the transforms so that libpng emits 8-bit samples in the layout of `pixel` (or RGB /
// indices that a row pass converts), returns the plan and the expected libpng channel count.
Plan set_transforms(png_structp png, png_infop pinfo, const DecodeOptions& options, int* channels) {
  const PixelFormat pixel = options.pixel;
  const int bit_depth = png_get_bit_depth(png, pinfo);
  const int ct = png_get_color_type(png, pinfo);
  const bool trns = png_get_valid(png, pinfo, PNG_INFO_tRNS) != 0;
  const bool grey = (ct & PNG_COLOR_MASK_COLOR) == 0;
  if (options.pillow_i16 && ct == PNG_COLOR_TYPE_GRAY && bit_depth == 16 && pixel != PixelFormat::kRgba) {
    *channels = 1;  // 16-bit big-endian samples; the row pass clips
    return Plan::kClip16;
  }
  if (bit_depth == 16) png_set_strip_16(png);  // high byte, as Pillow
  if (grey && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  Plan plan = Plan::kDirect;
  switch (pixel) {
    case PixelFormat::kRgb:
      if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
      if (grey) png_set_gray_to_rgb(png);
      png_set_strip_alpha(png);
      *channels = 3;
      break;
    case PixelFormat::kRgba:
      if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
      if (trns) png_set_tRNS_to_alpha(png);
      if (grey) png_set_gray_to_rgb(png);
      if ((ct & PNG_COLOR_MASK_ALPHA) == 0 && !trns) png_set_add_alpha(png, 0xff, PNG_FILLER_AFTER);
      *channels = 4;
      break;
    case PixelFormat::kGray:
      if (ct == PNG_COLOR_TYPE_PALETTE) {
        png_set_packing(png);  // one index per byte
        *channels = 1;
        plan = Plan::kLumaFromLut;
      } else {
        png_set_strip_alpha(png);
        *channels = grey ? 1 : 3;
        plan = grey ? Plan::kDirect : Plan::kLumaFromRgb;
      }
      break;
  }
  return plan;
}

// The body that runs under setjmp: only trivially destructible locals (longjmp skips them).
Status read_png(png_structp png, png_infop pinfo, PngContext* ctx, const Job& job, ErrorText* error) {
  const bool decoding = job.out != nullptr;
  const png_uint_32 wmax = decoding ? static_cast<png_uint_32>(job.want->width) : PNG_UINT_31_MAX;
  const png_uint_32 hmax = decoding ? static_cast<png_uint_32>(job.want->height) : PNG_UINT_31_MAX;
  png_set_user_limits(png, wmax, hmax);
  png_set_chunk_malloc_max(png, kChunkMallocMax);
  png_set_chunk_cache_max(png, kChunkCacheMax);
  png_set_benign_errors(png, 1);  // benign errors become warnings (kOkWarning), not failures
  // Pillow inflates with a 32K window whatever the zlib header claims; do the same.
  png_set_option(png, PNG_MAXIMUM_INFLATE_WINDOW, PNG_OPTION_ON);
  // Skip zlib's Adler-32 (about 5% of the decode): each IDAT chunk's CRC-32 already covers the
  // same bytes, and Pillow does not check it either.
  png_set_option(png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, kIgnoredChunks, kIgnoredCount);
  png_set_read_fn(png, ctx, on_read);
  png_read_info(png, pinfo);
  // Header chunks (IHDR, PLTE, tRNS) with a bad CRC were fatal above, as in Pillow. Image data
  // with a bad chunk CRC must still inflate to a whole image, and Pillow ignores IDAT CRCs: warn
  // (kOkWarning) and use it.
  png_set_crc_action(png, PNG_CRC_WARN_USE, PNG_CRC_NO_CHANGE);

  png_uint_32 w = 0, h = 0;
  int bit_depth = 0, ct = 0, interlace = 0;
  png_get_IHDR(png, pinfo, &w, &h, &bit_depth, &ct, &interlace, nullptr, nullptr);
  if (!decoding) {
    const HeaderScan apng = scan_chunks(ctx->data, ctx->size, ct);
    // The header's facts first: a file refused below still reports its size (image_info, job rows).
    ImageInfo* info = job.info;
    info->width = static_cast<std::int32_t>(w);
    info->height = static_cast<std::int32_t>(h);
    info->has_alpha = (ct & PNG_COLOR_MASK_ALPHA) != 0 || png_get_valid(png, pinfo, PNG_INFO_tRNS) != 0;
    info->animated = apng.actl && (apng.num_frames > 1 || !apng.fctl_before_idat);
    info->grey16 = ct == PNG_COLOR_TYPE_GRAY && bit_depth == 16;
    if (apng.actl && apng.num_frames == 0) {
      error->set("png: APNG acTL chunk gives 0 frames (invalid; at least 1 is required)");
      return Status::kCorrupt;
    }
    // The pixel limit speaks first (decode_info reports it); within it, data too short for the image.
    const std::int64_t max_px = job.options->max_pixels;
    const bool over_limit =
        max_px > 0 && static_cast<std::uint64_t>(w) * h > static_cast<std::uint64_t>(max_px);
    const std::uint64_t need = filtered_bytes(w, h, bit_depth, ct, interlace != PNG_INTERLACE_NONE);
    const std::uint64_t have = idat_bytes(ctx->data, ctx->size);
    if (!over_limit && need > kDeflateMaxRatio * have + kDeflateSlack) {
      error->set(
          "png: data is truncated: the %ux%u image needs %llu bytes of pixel rows, but its %llu bytes of "
          "IDAT data inflate to at most %llu",
          w, h, static_cast<unsigned long long>(need), static_cast<unsigned long long>(have),
          static_cast<unsigned long long>(kDeflateMaxRatio * have + kDeflateSlack));
      return Status::kCorrupt;
    }
    if (apng.defect[0] != '\0') on_warning(png, apng.defect);
    return Status::kOk;
  }
  if (static_cast<std::int32_t>(w) != job.want->width || static_cast<std::int32_t>(h) != job.want->height) {
    error->set("png: header changed between png_info and png_decode (%ux%u, expected %dx%d)", w, h,
               job.want->width, job.want->height);
    return Status::kCorrupt;
  }

  int channels = 0;
  const Plan plan = set_transforms(png, pinfo, *job.options, &channels);
  const int sample_bytes = plan == Plan::kClip16 ? 2 : 1;
  const int passes = png_set_interlace_handling(png);
  png_read_update_info(png, pinfo);
  const std::size_t rowbytes = png_get_rowbytes(png, pinfo);
  const ImageView& out = *job.out;
  if (png_get_bit_depth(png, pinfo) != 8 * sample_bytes || png_get_channels(png, pinfo) != channels ||
      rowbytes != static_cast<std::size_t>(w) * channels * sample_bytes ||
      (plan == Plan::kDirect && channels != out.channels)) {
    error->set("png: internal error: transforms gave %d channels of %d bits for colour type %d, bit depth %d",
               png_get_channels(png, pinfo), png_get_bit_depth(png, pinfo), ct, bit_depth);
    return Status::kCorrupt;
  }

  if (plan == Plan::kDirect) {
    for (int pass = 0; pass < passes; ++pass) {
      for (png_uint_32 y = 0; y < h; ++y) png_read_row(png, out.row(static_cast<std::int32_t>(y)), nullptr);
    }
    return Status::kOk;
  }

  // Converting plans: one scratch row, or the whole image when Adam7 passes revisit rows.
  std::uint8_t lut[256];
  if (plan == Plan::kLumaFromLut) {
    png_colorp palette = nullptr;
    int n = 0;
    if (png_get_PLTE(png, pinfo, &palette, &n) == 0) n = 0;
    for (int i = 0; i < 256; ++i) {
      lut[i] = i < n ? luma_pillow(palette[i].red, palette[i].green, palette[i].blue) : 0;
    }
  }
  const std::size_t rows = passes > 1 ? h : 1;
  ctx->scratch = static_cast<std::uint8_t*>(std::malloc(rowbytes * rows));
  if (ctx->scratch == nullptr) {
    error->set("png: out of memory allocating %zu bytes of row scratch", rowbytes * rows);
    return Status::kNoMemory;
  }
  const LumaRowFn luma = luma_row_fn();
  auto convert = [&](const std::uint8_t* src, std::uint8_t* dst) {
    if (plan == Plan::kLumaFromLut) {
      for (png_uint_32 x = 0; x < w; ++x) dst[x] = lut[src[x]];
    } else if (plan == Plan::kClip16) {
      const int c = out.channels;  // 1 (kGray) or 3 (kRgb)
      for (png_uint_32 x = 0; x < w; ++x, src += 2, dst += c) {
        const std::uint8_t v = src[0] != 0 ? 255 : src[1];
        for (int k = 0; k < c; ++k) dst[k] = v;
      }
    } else {
      luma(src, dst, static_cast<std::int32_t>(w));
    }
  };
  if (passes == 1) {
    for (png_uint_32 y = 0; y < h; ++y) {
      png_read_row(png, ctx->scratch, nullptr);
      convert(ctx->scratch, out.row(static_cast<std::int32_t>(y)));
    }
  } else {
    for (int pass = 0; pass < passes; ++pass) {
      for (png_uint_32 y = 0; y < h; ++y) png_read_row(png, ctx->scratch + rowbytes * y, nullptr);
    }
    for (png_uint_32 y = 0; y < h; ++y)
      convert(ctx->scratch + rowbytes * y, out.row(static_cast<std::int32_t>(y)));
  }
  return Status::kOk;
}

// Owns the libpng structs and the setjmp frame; maps libpng's outcome to a Status.
Status run(const std::uint8_t* data, std::size_t size, const Job& job, ErrorText* error) {
  PngContext ctx;
  ctx.data = data;
  ctx.size = size;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning);
  if (png == nullptr) {
    error->set("png: out of memory creating the libpng reader");
    return Status::kNoMemory;
  }
  png_infop pinfo = png_create_info_struct(png);
  if (pinfo == nullptr) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    error->set("png: out of memory creating the libpng info struct");
    return Status::kNoMemory;
  }
  Status s = Status::kCorrupt;
  if (setjmp(png_jmpbuf(png)) == 0) {
    s = read_png(png, pinfo, &ctx, job, error);
    if (s == Status::kOk && ctx.warned) {
      s = Status::kOkWarning;
      error->set("png: decoded, but the stream is damaged: %s", ctx.warning);
    }
  } else if (ctx.truncated) {
    s = Status::kCorrupt;
    error->set("png: data is truncated (%zu bytes; it ends inside a chunk%s)", size,
               job.out != nullptr ? " before the image data is complete" : " of the header");
  } else if (std::strstr(ctx.error, "memory") != nullptr) {
    s = Status::kNoMemory;
    error->set("png: %s", ctx.error);
  } else {
    s = Status::kCorrupt;
    error->set("png: %s", ctx.error);
  }
  png_destroy_read_struct(&png, &pinfo, nullptr);
  std::free(ctx.scratch);
  return s;
}

}  // namespace

std::size_t inflate_capped(const std::uint8_t* src, std::size_t n, std::size_t cap,
                           std::vector<std::uint8_t>* out, bool* damaged) {
  if (damaged != nullptr) *damaged = false;
  z_stream z;
  std::memset(&z, 0, sizeof(z));
  if (inflateInit(&z) != Z_OK) {
    if (damaged != nullptr) *damaged = true;
    return 0;
  }
  std::uint8_t sink[16384];
  z.next_in = const_cast<Bytef*>(src);
  z.avail_in = static_cast<uInt>(n);
  std::size_t total = 0;
  int rc = Z_OK;
  while (rc == Z_OK && total <= cap) {
    z.next_out = sink;
    z.avail_out = sizeof(sink);
    rc = inflate(&z, Z_NO_FLUSH);
    const std::size_t got = sizeof(sink) - z.avail_out;
    if (out != nullptr && out->size() < cap) {
      out->insert(out->end(), sink, sink + std::min(got, cap - out->size()));
    }
    total += got;
    if (rc == Z_BUF_ERROR || (rc == Z_OK && z.avail_out != 0 && z.avail_in == 0)) break;  // input ends
  }
  if (damaged != nullptr) *damaged = rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR;
  inflateEnd(&z);
  return total;
}

Status png_info(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, ImageInfo* info,
                ErrorText* error) {
  Job job;
  job.options = &options;
  job.info = info;
  const Status s = run(data, size, job, error);
  if (!status_ok(s)) return s;
  info->format = ImageFormat::kPng;
  info->scale_denom = 1;
  info->out_width = info->width;
  info->out_height = info->height;
  info->out_channels = pixel_channels(options.pixel);
  return s;
}

Status png_decode(const std::uint8_t* data, std::size_t size, const DecodeOptions& options,
                  const ImageInfo& info, ImageView out, ErrorText* error) {
  if (out.width != info.width || out.height != info.height || out.channels != info.out_channels ||
      out.data == nullptr || out.stride < static_cast<std::int64_t>(out.width) * out.channels) {
    error->set("png: output view %dx%dx%d does not match the image %dx%dx%d", out.width, out.height,
               out.channels, info.width, info.height, info.out_channels);
    return Status::kCorrupt;
  }
  Job job;
  job.options = &options;
  job.want = &info;
  job.out = &out;
  return run(data, size, job, error);
}

}  // namespace mmcore::detail

namespace mmcore {
const char* png_library_version() {
  static char text[40] = {0};
  static const bool once = [] {
    std::snprintf(text, sizeof(text), "libpng %s", png_get_libpng_ver(nullptr));
    return true;
  }();
  (void)once;
  return text;
}
}  // namespace mmcore
