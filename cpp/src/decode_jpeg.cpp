// JPEG decoding through libjpeg-turbo's libjpeg API (jpeglib.h), one decompressor per call.
//
// Why the libjpeg API and not TurboJPEG: per-warning control (TurboJPEG 2.1 only has "stop on
// any warning" or "ignore all"), grey output straight from the luma plane, a scan limit through
// the progress monitor, and scanlines written straight into the caller's rows.
//
// Exactness: the default settings (JDCT_ISLOW, fancy upsampling) are the ones Pillow 13 uses, so
// a full-size decode is pixel-identical to Image.open(f).convert("RGB"). CMYK / YCCK follow
// Pillow: the samples are read inverted ("CMYK;I", the Adobe convention Pillow assumes for every
// CMYK JPEG) and converted with Pillow's integer cmyk2rgb.
//
// Status policy
// - Library errors -> kCorrupt with libjpeg's message; kUnsupported for valid streams this 8-bit
//   build does not decode (12/16-bit precision, hierarchical, unknown colour spaces); lossless
//   SOF3 goes to decode_jpeg_lossless.cpp; kNoMemory when libjpeg's memory cap is reached.
// - Damaged entropy-coded data: libjpeg warns ("premature end of data segment", "bad Huffman
//   code", ...) and fills the rest of the scan with grey, or a damaged byte silently shifts the
//   DC predictor so that coefficients leave the range any 8-bit encoder can produce. Without
//   restart markers the damage runs to the end of the scan: kCorrupt. With restart markers
//   libjpeg resynchronises at the next marker and the damage stays local: kOkWarning (Pillow
//   decodes such files too).
// - Truncation (the buffer ends before the image data does): kCorrupt, saying where it ended.
// - A stream whose only defect is a missing EOI, or other recoverable defects (extraneous bytes
//   before a marker, a bad ICC segment, ...): kOkWarning with the first warning's text.
// - More than kMaxScans scans: kCorrupt (bounds the time a crafted progressive file can take).
//
// Thread safety: every call owns its decompressor, error manager and scratch; nothing global.
// setjmp/longjmp: the functions that call setjmp keep no objects with destructors alive across
// library calls, and every value read after a longjmp lives in a struct owned by the caller.
#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>

// clang-format off
#include <jpeglib.h>
#include <jerror.h>
extern "C" {
// Internal header shipped by libjpeg-turbo's -dev package: only for struct jpeg_inverse_dct,
// whose per-component IDCT pointers the DC range check wraps (see DcGuard).
#include <jpegint.h>
}
// clang-format on

#include "color_internal.h"
#include "decode_internal.h"
#include "decode_jpeg_huff.h"
#include "idct_internal.h"
#include "luma_internal.h"

#if !defined(LIBJPEG_TURBO_VERSION_NUMBER) || LIBJPEG_TURBO_VERSION_NUMBER < 2000000 || \
    LIBJPEG_TURBO_VERSION_NUMBER >= 3000000
#error "decode_jpeg.cpp is written against libjpeg-turbo 2.x (jpegint.h layout); check DcGuard"
#endif

#define MMCORE_STR2(x) #x
#define MMCORE_STR(x) MMCORE_STR2(x)
#define MMCORE_JPEG_VERSION_TEXT MMCORE_STR(LIBJPEG_TURBO_VERSION)

namespace mmcore::detail {
namespace {

/// A legitimate encoder writes at most a few dozen scans; each costs a pass over the image.
constexpr int kMaxScans = 1000;

/// Headroom on top of the coefficient buffer for libjpeg's tables and row buffers.
constexpr long kMemorySlack = 64L << 20;

/// An 8-bit encoder's DC coefficient is 8 x (block mean - 128), so |DC| <= 1024; quantisation
/// rounding adds at most half a step (one step allowed). Beyond that the data is damaged.
constexpr int kMaxDc = 1024;

/// kFallback: mmcore's Huffman decoder met data it leaves to libjpeg's (decode again without it).
enum class Abort : int { kNone = 0, kLibraryError, kDataLoss, kScans, kBadDc, kFallback };

struct DcGuard {
  inverse_DCT_method_ptr idct[MAX_COMPONENTS] = {};
  int limit[MAX_COMPONENTS] = {};  ///< max |quantised DC| per component
  long bad_blocks = 0;
  int first_value = 0;  ///< the first out-of-range DC (dequantised)
  int first_component = -1;
  JDIMENSION first_row = 0;  ///< output scanline when it was seen
  bool fatal = false;        ///< abort on the first bad block (no restart markers)
};

// The islow IDCT two blocks per call (idct_internal.h) where the backend has a pair kernel: each
// block waits in `coef` for the next one (of any component); the coefficient controller's
// decompress_data is wrapped so that a block still waiting when it returns is written then,
// before anything reads the rows.
struct PairedIdct {
  IdctPairFn fn = nullptr;
  int (*decompress_data)(j_decompress_ptr, JSAMPIMAGE) = nullptr;  ///< libjpeg's, wrapped
  bool paired[MAX_COMPONENTS] = {};
  alignas(64) std::int16_t mult[MAX_COMPONENTS][DCTSIZE2] = {};  ///< quant tables as ISLOW_MULT_TYPE
  // The waiting block (none when `waiting` is null).
  alignas(64) std::int16_t coef[DCTSIZE2] = {};
  const std::int16_t* waiting = nullptr;  ///< its multipliers
  std::uint8_t* rows[DCTSIZE] = {};
  JDIMENSION col = 0;
  // Where a lone block's partner (itself again) is written.
  std::uint8_t scratch[DCTSIZE2] = {};
  std::uint8_t* scratch_rows[DCTSIZE] = {};
};

struct Monitor {
  jpeg_error_mgr pub;  // first member: libjpeg hands back a pointer to it
  std::jmp_buf jump;
  Abort abort = Abort::kNone;
  int warnings = 0;
  int first_warning_code = -1;
  char first_warning[JMSG_LENGTH_MAX] = {0};
  int loss_warning_code = -1;  ///< first warning that means image data was lost
  char loss_warning[JMSG_LENGTH_MAX] = {0};
  bool eof = false;  ///< the buffer ran out (libjpeg then inserts a fake EOI and warns)
  // Progress monitor state.
  jpeg_progress_mgr progress;
  const std::uint8_t* progressive_data_end = nullptr;  ///< set: install mmcore's progressive decoder
  int last_scan = 0;
  unsigned components_seen = 0;  ///< bit per component index that appeared in some scan
  DcGuard dc;
  PairedIdct pair;
  YccRgbRowFn ycc_rgb = nullptr;  ///< mmcore's YCbCr -> RGB rows in place of libjpeg's, or null
};

// Scan headers that contradict the frame: no restart marker can contain the damage.
bool is_bad_scan_header(int code) {
  return code == JWRN_BOGUS_PROGRESSION || code == JWRN_NOT_SEQUENTIAL;
}

Monitor* monitor_of(j_common_ptr cinfo) {
  return reinterpret_cast<Monitor*>(cinfo->err);
}

// Warnings that mean image data was lost: libjpeg substitutes zeros (grey) and carries on.
bool loses_data(int code) {
  return code == JWRN_HIT_MARKER || code == JWRN_HUFF_BAD_CODE || code == JWRN_ARITH_BAD_CODE ||
         code == JWRN_MUST_RESYNC || is_bad_scan_header(code);
}

void on_error_exit(j_common_ptr cinfo) {
  Monitor* m = monitor_of(cinfo);
  m->abort = Abort::kLibraryError;
  std::longjmp(m->jump, 1);
}

void on_emit_message(j_common_ptr cinfo, int msg_level) {
  if (msg_level >= 0) return;  // trace messages: never formatted
  Monitor* m = monitor_of(cinfo);
  const int code = m->pub.msg_code;
  ++m->warnings;
  ++m->pub.num_warnings;
  if (code == JWRN_JPEG_EOF) m->eof = true;
  if (m->first_warning_code < 0) {
    m->first_warning_code = code;
    m->pub.format_message(cinfo, m->first_warning);
  }
  if (!loses_data(code)) return;
  if (m->loss_warning_code < 0) {
    m->loss_warning_code = code;
    m->pub.format_message(cinfo, m->loss_warning);
  }
  // Lost data is local only when restart markers let libjpeg resynchronise, never once the
  // buffer has ended (everything after that point is grey) nor when a scan header is wrong.
  const auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->restart_interval == 0 || m->eof || is_bad_scan_header(code)) {
    if (m->loss_warning_code != code) {  // report the warning that made it fatal
      m->loss_warning_code = code;
      m->pub.format_message(cinfo, m->loss_warning);
    }
    m->abort = Abort::kDataLoss;
    std::longjmp(m->jump, 1);
  }
}

void on_output_message(j_common_ptr) {}

[[noreturn]] void on_huffman_bail(j_decompress_ptr cinfo) {
  Monitor* m = monitor_of(reinterpret_cast<j_common_ptr>(cinfo));
  m->abort = Abort::kFallback;
  std::longjmp(m->jump, 1);
}

void on_progress(j_common_ptr cinfo) {
  Monitor* m = monitor_of(cinfo);
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (m->progressive_data_end != nullptr) {  // first call, in jpeg_start_decompress: before any MCU
    jpeg_phuff_install(d, m->progressive_data_end, on_huffman_bail);
    m->progressive_data_end = nullptr;
  }
  if (d->input_scan_number != m->last_scan) {
    m->last_scan = d->input_scan_number;
    for (int i = 0; i < d->comps_in_scan && i < MAX_COMPS_IN_SCAN; ++i) {
      m->components_seen |= 1u << (d->cur_comp_info[i]->component_index & 31);
    }
  }
  if (d->input_scan_number > kMaxScans) {
    m->abort = Abort::kScans;
    std::longjmp(m->jump, 1);
  }
}

// Wraps libjpeg's IDCT for one component: checks the block's DC, then runs the real IDCT.
void checked_idct(j_decompress_ptr cinfo, jpeg_component_info* comp, JCOEFPTR coef, JSAMPARRAY out,
                  JDIMENSION col) {
  Monitor* m = monitor_of(reinterpret_cast<j_common_ptr>(cinfo));
  DcGuard& g = m->dc;
  const int ci = comp->component_index;
  const int dc = coef[0];
  if (dc > g.limit[ci] || dc < -g.limit[ci]) {
    if (g.bad_blocks++ == 0) {
      g.first_value = dc * static_cast<int>(comp->quant_table->quantval[0]);
      g.first_component = ci;
      g.first_row = cinfo->output_scanline;
    }
    if (g.fatal) {
      m->abort = Abort::kBadDc;
      std::longjmp(m->jump, 1);
    }
  }
  PairedIdct& p = m->pair;
  if (!p.paired[ci]) {
    g.idct[ci](cinfo, comp, coef, out, col);  // libjpeg-turbo's, which prefetches the next block
    return;
  }
  // The next block, as libjpeg-turbo's IDCT does: a progressive image's coefficients come from
  // a whole-image buffer, out of cache by now.
  __builtin_prefetch(coef + DCTSIZE2);
  __builtin_prefetch(coef + DCTSIZE2 + 32);
  if (p.waiting == nullptr) {
    std::memcpy(p.coef, coef, sizeof p.coef);
    std::memcpy(p.rows, out, sizeof p.rows);
    p.col = col;
    p.waiting = p.mult[ci];
  } else {
    p.fn(p.coef, p.waiting, p.rows, p.col, coef, p.mult[ci], out, col);
    p.waiting = nullptr;
  }
}

// libjpeg's decompress_data, then the block left waiting (if any).
int decompress_data_paired(j_decompress_ptr cinfo, JSAMPIMAGE output_buf) {
  PairedIdct& p = monitor_of(reinterpret_cast<j_common_ptr>(cinfo))->pair;
  const int result = p.decompress_data(cinfo, output_buf);
  if (p.waiting != nullptr) {
    p.fn(p.coef, p.waiting, p.rows, p.col, p.coef, p.waiting, p.scratch_rows, 0);
    p.waiting = nullptr;
  }
  return result;
}

// Installs checked_idct (the DC guard) after jpeg_start_decompress, which set up the output pass's
// IDCTs, and the pair kernel behind it where the backend has one.
void install_idct_hooks(j_decompress_ptr c, Monitor* m) {
  DcGuard& g = m->dc;
  g.fatal = c->restart_interval == 0;
  for (int ci = 0; ci < c->num_components && ci < MAX_COMPONENTS; ++ci) {
    const JQUANT_TBL* q = c->comp_info[ci].quant_table;
    const int q0 = (q != nullptr && q->quantval[0] > 0) ? q->quantval[0] : 1;
    g.limit[ci] = (kMaxDc + q0) / q0;
    g.idct[ci] = c->idct->inverse_DCT[ci];
    if (g.idct[ci] != nullptr && q != nullptr) c->idct->inverse_DCT[ci] = checked_idct;
  }
  // The pair kernel replaces libjpeg's full-size islow IDCT (scaled sizes keep libjpeg's).
  PairedIdct& p = m->pair;
  p.fn = c->dct_method == JDCT_ISLOW ? idct_islow_pair_fn(active_backend()) : nullptr;
  p.waiting = nullptr;
  bool any = false;
  for (int ci = 0; ci < c->num_components && ci < MAX_COMPONENTS; ++ci) {
    const jpeg_component_info& comp = c->comp_info[ci];
    p.paired[ci] = p.fn != nullptr && g.idct[ci] != nullptr && comp.quant_table != nullptr &&
                   comp.DCT_scaled_size == DCTSIZE;
    if (!p.paired[ci]) continue;
    for (int k = 0; k < DCTSIZE2; ++k)
      p.mult[ci][k] = static_cast<std::int16_t>(comp.quant_table->quantval[k]);
    any = true;
  }
  if (any && c->coef != nullptr && c->coef->decompress_data != nullptr) {
    for (int r = 0; r < DCTSIZE; ++r) p.scratch_rows[r] = p.scratch;
    p.decompress_data = c->coef->decompress_data;
    c->coef->decompress_data = decompress_data_paired;
  } else {
    for (int ci = 0; ci < MAX_COMPONENTS; ++ci) p.paired[ci] = false;
  }
}

// libjpeg's colour_convert for YCbCr -> RGB, a row at a time through mmcore's kernel.
void ycc_rgb_convert(j_decompress_ptr cinfo, JSAMPIMAGE input_buf, JDIMENSION input_row,
                     JSAMPARRAY output_buf, int num_rows) {
  const YccRgbRowFn fn = monitor_of(reinterpret_cast<j_common_ptr>(cinfo))->ycc_rgb;
  for (int i = 0; i < num_rows; ++i, ++input_row) {
    fn(input_buf[0][input_row], input_buf[1][input_row], input_buf[2][input_row], output_buf[i],
       cinfo->output_width);
  }
}

// Installs ycc_rgb_convert after jpeg_start_decompress (which chose libjpeg's converter) where
// the backend has a kernel (same bytes: color_internal.h).
void install_color_convert(j_decompress_ptr c, Monitor* m) {
  m->ycc_rgb = nullptr;
  if (c->jpeg_color_space != JCS_YCbCr || c->out_color_space != JCS_RGB || c->num_components != 3 ||
      c->out_color_components != 3 || c->quantize_colors || c->cconvert == nullptr)
    return;
  m->ycc_rgb = ycc_rgb_row_fn(active_backend());
  if (m->ycc_rgb != nullptr) c->cconvert->color_convert = ycc_rgb_convert;
}

// One decompressor and its monitor; lives in the frame of the function that calls setjmp.
struct Session {
  jpeg_decompress_struct cinfo;
  Monitor mon;
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
  bool created = false;
};

void session_init(Session* s, const std::uint8_t* data, std::size_t size) {
  s->cinfo.err = jpeg_std_error(&s->mon.pub);
  s->mon.pub.error_exit = on_error_exit;
  s->mon.pub.emit_message = on_emit_message;
  s->mon.pub.output_message = on_output_message;
  jpeg_create_decompress(&s->cinfo);
  s->created = true;
  s->data = data;
  s->size = size;
  s->mon.progress.progress_monitor = on_progress;
  s->cinfo.progress = &s->mon.progress;
  jpeg_mem_src(&s->cinfo, data, static_cast<unsigned long>(size));
}

void session_destroy(Session* s) {
  if (s->created) jpeg_destroy_decompress(&s->cinfo);
  s->created = false;
}

std::size_t bytes_consumed(const Session& s) {
  if (s.mon.eof || s.cinfo.src == nullptr) return s.size;
  return static_cast<std::size_t>(s.cinfo.src->next_input_byte - s.data);
}

// Status for a library error (error_exit), classified by its message code.
Status library_error(Session* s, ErrorText* error) {
  char msg[JMSG_LENGTH_MAX];
  s->mon.pub.format_message(reinterpret_cast<j_common_ptr>(&s->cinfo), msg);
  switch (s->mon.pub.msg_code) {
    case JERR_BAD_PRECISION:
      error->set("unsupported JPEG: %s (this libjpeg-turbo " MMCORE_JPEG_VERSION_TEXT
                 " build decodes 8-bit JPEG only)",
                 msg);
      return Status::kUnsupported;
    case JERR_SOF_UNSUPPORTED:
      error->set("unsupported JPEG: %s (hierarchical JPEG is not decoded by libjpeg-turbo 2.1)", msg);
      return Status::kUnsupported;
    case JERR_CONVERSION_NOTIMPL:
      error->set("unsupported JPEG: %s (%d components, colour space %d)", msg, s->cinfo.num_components,
                 static_cast<int>(s->cinfo.jpeg_color_space));
      return Status::kUnsupported;
    case JERR_IMAGE_TOO_BIG:
      error->set("JPEG header claims %ux%u, over libjpeg's limit of %d pixels per side", s->cinfo.image_width,
                 s->cinfo.image_height, static_cast<int>(JPEG_MAX_DIMENSION));
      return Status::kTooLarge;
    case JERR_OUT_OF_MEMORY:
    case JERR_NO_BACKING_STORE:
      error->set("JPEG decoder memory limit reached (%ux%u image): %s", s->cinfo.image_width,
                 s->cinfo.image_height, msg);
      return Status::kNoMemory;
    default: error->set("corrupt JPEG: %s", msg); return Status::kCorrupt;
  }
}

// Reads the header and sets the output parameters for `options` (colour space, scale, IDCT).
// Must run inside the caller's setjmp scope.
void read_header_and_configure(Session* s, const DecodeOptions& options) {
  j_decompress_ptr c = &s->cinfo;
  jpeg_read_header(c, TRUE);
  const bool cmyk = c->jpeg_color_space == JCS_CMYK || c->jpeg_color_space == JCS_YCCK;
  if (cmyk) {
    c->out_color_space = JCS_CMYK;
  } else if (options.pixel == PixelFormat::kGray) {
    // Luma as coded for YCbCr / grey; an RGB-coded stream, or any colour stream when pillow_gray
    // asks for it, decodes to RGB and goes through Pillow's formula row by row.
    const bool via_rgb =
        c->jpeg_color_space == JCS_RGB || (options.pillow_gray && c->jpeg_color_space != JCS_GRAYSCALE);
    c->out_color_space = via_rgb ? JCS_RGB : JCS_GRAYSCALE;
  } else if (options.pixel == PixelFormat::kRgba) {
    c->out_color_space = JCS_EXT_RGBA;
  } else {
    c->out_color_space = JCS_RGB;
  }
  // The largest power-of-two reduction whose output still covers the requested size;
  // libjpeg's scaled size is ceil(W / d) (jpeg_calc_output_dimensions).
  const long w = static_cast<long>(c->image_width), h = static_cast<long>(c->image_height);
  unsigned denom = 1;
  if (options.min_width > 0 || options.min_height > 0) {
    for (unsigned d = 8; d > 1; d /= 2) {
      if ((w + d - 1) / d >= options.min_width && (h + d - 1) / d >= options.min_height) {
        denom = d;
        break;
      }
    }
  }
  c->scale_num = 1;
  c->scale_denom = denom;
  c->dct_method = options.fast ? JDCT_IFAST : JDCT_ISLOW;
  c->do_fancy_upsampling = options.fast ? FALSE : TRUE;
  jpeg_calc_output_dimensions(c);
}

// Pillow's "CMYK;I" unpack (every sample inverted) followed by its cmyk2rgb:
//   nk = 255 - K', out = nk - MULDIV255(C', nk), MULDIV255(a, b) = (t + (t >> 8)) >> 8, t = a*b + 128.
// With K' = 255 - k: nk = k (the sample as decoded).
inline void cmyk_inverted_to_rgb(const JSAMPLE* in, std::uint8_t* rgb) {
  const unsigned nk = in[3];
  for (int i = 0; i < 3; ++i) {
    const unsigned t = (255u - in[i]) * nk + 128u;
    rgb[i] = static_cast<std::uint8_t>(nk - ((t + (t >> 8)) >> 8));
  }
}

// Converts one row decoded in an intermediate colour space into the caller's pixel format.
void convert_row(const JSAMPLE* in, J_COLOR_SPACE space, JDIMENSION width, PixelFormat pixel, LumaRowFn luma,
                 std::uint8_t* out) {
  if (space == JCS_CMYK) {
    for (JDIMENSION x = 0; x < width; ++x, in += 4) {
      std::uint8_t rgb[3];
      cmyk_inverted_to_rgb(in, rgb);
      if (pixel == PixelFormat::kGray) {
        out[x] = luma_pillow(rgb[0], rgb[1], rgb[2]);
      } else if (pixel == PixelFormat::kRgba) {
        std::memcpy(out + 4 * x, rgb, 3);
        out[4 * x + 3] = 255;
      } else {
        std::memcpy(out + 3 * x, rgb, 3);
      }
    }
  } else {  // RGB decode, grey output
    luma(in, out, static_cast<std::int32_t>(width));
  }
}

// Whether a multi-scan stream (read completely by jpeg_start_decompress) left part of the image
// unsent. Every component must appear in some scan (else libjpeg outputs a flat plane); a
// progressive image must have sent each component's DC; and when the buffer ended early, every
// coefficient must have reached its final bit (else later scans were cut off).
const char* missing_scans(const Session& s) {
  const jpeg_decompress_struct& c = s.cinfo;
  const unsigned all = c.num_components >= 32 ? ~0u : ((1u << c.num_components) - 1u);
  if ((s.mon.components_seen & all) != all) return "a component never appeared in any scan";
  if (!c.progressive_mode || c.coef_bits == nullptr) return nullptr;
  for (int ci = 0; ci < c.num_components; ++ci) {
    if (c.coef_bits[ci][0] < 0) return "a component's DC coefficients were never sent";
    if (!s.mon.eof) continue;
    for (int k = 0; k < DCTSIZE2; ++k) {
      if (c.coef_bits[ci][k] != 0) return "later scans are missing (coefficients not fully sent)";
    }
  }
  return nullptr;
}

struct DecodeState {
  Status status = Status::kOk;
};

// The setjmp scope of a full decode. Returns false when a longjmp ended it.
bool decode_in_session(Session* s, const DecodeOptions& options, const ImageInfo& info, ImageView out,
                       DecodeState* st, ErrorText* error, const RowsDone* rows_done) {
  if (setjmp(s->mon.jump) != 0) return false;
  j_decompress_ptr c = &s->cinfo;
  read_header_and_configure(s, options);
  if (static_cast<std::int32_t>(c->output_width) != info.out_width ||
      static_cast<std::int32_t>(c->output_height) != info.out_height) {
    error->set("JPEG output size %ux%u differs from the header pass (%dx%d)", c->output_width,
               c->output_height, info.out_width, info.out_height);
    st->status = Status::kCorrupt;
    return true;
  }
  // The coefficient buffer of a multi-scan image is the only allocation that scales with the
  // image: cap libjpeg at what this header legitimately needs (2 bytes per coefficient, up to 4
  // full-resolution components), which the caller already accepted through max_pixels.
  c->mem->max_memory_to_use =
      kMemorySlack + 8L * static_cast<long>(c->image_width) * static_cast<long>(c->image_height);
  if (!options.libjpeg_huffman && c->progressive_mode && !c->arith_code)
    s->mon.progressive_data_end = s->data + s->size;
  jpeg_start_decompress(c);
  s->mon.progressive_data_end = nullptr;
  if (jpeg_has_multiple_scans(c)) {
    // jpeg_start_decompress has read every scan into the coefficient buffer.
    if (const char* what = missing_scans(*s)) {
      if (s->mon.eof) {
        error->set("truncated JPEG: the data ends at byte %zu, after %d scans: %s", s->size,
                   c->input_scan_number, what);
      } else {
        error->set("corrupt JPEG: %s (%d scans)", what, c->input_scan_number);
      }
      st->status = Status::kCorrupt;
      return true;
    }
  }
  install_idct_hooks(c, &s->mon);
  install_color_convert(c, &s->mon);
  if (!options.libjpeg_huffman) jpeg_huff_install(c, s->data + s->size, on_huffman_bail);
  const PixelFormat pixel = options.pixel;
  const bool direct =
      c->out_color_space != JCS_CMYK && !(pixel == PixelFormat::kGray && c->out_color_space == JCS_RGB);
  if (direct) {
    // libjpeg writes straight into the caller's rows, several per call.
    constexpr JDIMENSION kBatch = 16;
    JSAMPROW rows[kBatch];
    while (c->output_scanline < c->output_height) {
      const JDIMENSION y = c->output_scanline;
      const JDIMENSION n = std::min(kBatch, c->output_height - y);
      for (JDIMENSION i = 0; i < n; ++i) rows[i] = out.row(static_cast<std::int32_t>(y + i));
      const JDIMENSION got = jpeg_read_scanlines(c, rows, n);
      if (rows_done != nullptr && got > 0)
        (*rows_done)(static_cast<std::int32_t>(y), static_cast<std::int32_t>(got));
    }
  } else {
    const JDIMENSION stride = c->output_width * static_cast<JDIMENSION>(c->output_components);
    const auto nrows = std::max<JDIMENSION>(16, static_cast<JDIMENSION>(c->rec_outbuf_height));
    const LumaRowFn luma = luma_row_fn();
    JSAMPARRAY buf = (*c->mem->alloc_sarray)(reinterpret_cast<j_common_ptr>(c), JPOOL_IMAGE, stride, nrows);
    while (c->output_scanline < c->output_height) {
      const JDIMENSION y = c->output_scanline;
      // libjpeg hands out a row group (1-2 rows) per call. Fill the whole buffer before
      // converting: reading a row straight after libjpeg's vector stores wrote it stalls every
      // load on store forwarding (measured: the conversion ran 8x slower than on settled rows).
      JDIMENSION got = 0;
      while (got < nrows && c->output_scanline < c->output_height) {
        const JDIMENSION n = jpeg_read_scanlines(c, buf + got, nrows - got);
        if (n == 0) break;  // suspended source (cannot happen with a memory source): stop cleanly
        got += n;
      }
      for (JDIMENSION i = 0; i < got; ++i) {
        convert_row(buf[i], c->out_color_space, c->output_width, pixel, luma,
                    out.row(static_cast<std::int32_t>(y + i)));
      }
      if (got == 0) break;  // jpeg_finish_decompress reports the missing rows
    }
  }
  jpeg_finish_decompress(c);
  return true;
}

// The setjmp scope of a header read. Returns false when a longjmp ended it.
bool info_in_session(Session* s, const DecodeOptions& options) {
  if (setjmp(s->mon.jump) != 0) return false;
  read_header_and_configure(s, options);
  return true;
}

}  // namespace

Status jpeg_info(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, ImageInfo* info,
                 ErrorText* error) {
  if (jpeg_is_lossless(data, size)) return jpeg_lossless_info(data, size, options, info, error);
  Session s;
  session_init(&s, data, size);
  const bool finished = info_in_session(&s, options);
  const jpeg_decompress_struct& c = s.cinfo;
  info->width = static_cast<std::int32_t>(c.image_width);  // what the header claimed, if it got that far
  info->height = static_cast<std::int32_t>(c.image_height);
  Status status = Status::kOk;
  if (!finished) {
    if (s.mon.abort == Abort::kLibraryError) {
      status = library_error(&s, error);
    } else {
      error->set("corrupt JPEG header: %s", s.mon.loss_warning);
      status = Status::kCorrupt;
    }
  } else {
    info->scale_denom = static_cast<std::int32_t>(c.scale_denom);
    info->out_width = static_cast<std::int32_t>(c.output_width);
    info->out_height = static_cast<std::int32_t>(c.output_height);
    info->out_channels = options.pixel == PixelFormat::kGray   ? 1
                         : options.pixel == PixelFormat::kRgba ? 4
                                                               : 3;
    info->has_alpha = false;
    info->animated = false;
    if (s.mon.warnings > 0) {
      error->set("JPEG header: %s", s.mon.first_warning);
      status = Status::kOkWarning;
    }
  }
  session_destroy(&s);
  return status;
}

Status jpeg_decode(const std::uint8_t* data, std::size_t size, const DecodeOptions& options,
                   const ImageInfo& info, ImageView out, ErrorText* error, const RowsDone* rows_done) {
  if (jpeg_is_lossless(data, size)) return jpeg_lossless_decode(data, size, options, info, out, error);
  Session s;
  DecodeState st;
  session_init(&s, data, size);
  bool finished = decode_in_session(&s, options, info, out, &st, error, rows_done);
  if (!finished && s.mon.abort == Abort::kFallback) {
    // Unusual or damaged entropy-coded data: decode it again with libjpeg's Huffman decoder,
    // whose warnings and statuses are the reference (rows already written are overwritten).
    session_destroy(&s);
    s = Session{};
    st = DecodeState();
    DecodeOptions reference = options;
    reference.libjpeg_huffman = true;
    session_init(&s, data, size);
    finished = decode_in_session(&s, reference, info, out, &st, error, rows_done);
  }
  const Monitor& m = s.mon;
  const jpeg_decompress_struct& c = s.cinfo;
  Status status = st.status;
  if (!finished) {
    status = Status::kCorrupt;
    switch (m.abort) {
      case Abort::kScans:
        error->set("corrupt JPEG: more than %d scans (a crafted progressive stream?)", kMaxScans);
        break;
      case Abort::kDataLoss:
        if (m.eof) {
          error->set("truncated JPEG: the data ends at byte %zu, in scan %d, with %u of %u rows decoded (%s)",
                     size, c.input_scan_number, c.output_scanline, c.output_height, m.loss_warning);
        } else {
          error->set("corrupt JPEG data near byte %zu of %zu (scan %d, %u of %u rows decoded): %s",
                     bytes_consumed(s), size, c.input_scan_number, c.output_scanline, c.output_height,
                     m.loss_warning);
        }
        break;
      case Abort::kBadDc:
        error->set(
            "corrupt JPEG data: DC coefficient %d is outside the 8-bit range +-%d (component %d, "
            "row %u of %u): damaged entropy-coded data",
            m.dc.first_value, kMaxDc, m.dc.first_component, m.dc.first_row, c.output_height);
        break;
      default: status = library_error(&s, error); break;
    }
  } else if (status == Status::kOk) {
    if (m.loss_warning_code >= 0) {
      error->set("damaged JPEG data within restart intervals (decoded, damage is local): %s", m.loss_warning);
      status = Status::kOkWarning;
    } else if (m.dc.bad_blocks > 0) {
      error->set("damaged JPEG data within restart intervals: %ld blocks with an out-of-range DC coefficient",
                 m.dc.bad_blocks);
      status = Status::kOkWarning;
    } else if (m.warnings > 0) {
      if (m.first_warning_code == JWRN_JPEG_EOF) {
        error->set("JPEG has no end-of-image marker (all image data present): %s", m.first_warning);
      } else {
        error->set("%s", m.first_warning);
      }
      status = Status::kOkWarning;
    }
  }
  session_destroy(&s);
  return status;
}

}  // namespace mmcore::detail

namespace mmcore {

const char* jpeg_library_version() {
  return "libjpeg-turbo " MMCORE_JPEG_VERSION_TEXT;
}

}  // namespace mmcore
