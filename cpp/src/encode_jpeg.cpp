// JPEG encoding through libjpeg-turbo's libjpeg API (jpeglib.h), one compressor per call.
//
// Why the libjpeg API and not TurboJPEG: it is the API the project links already (decode_jpeg.cpp),
// a destination manager streams the output to the caller's sink in fixed chunks (no worst-case
// output buffer), and jpeg_write_scanlines reads the caller's rows in place at any stride.
//
// Settings are Pillow's for JPEG save: jpeg_set_defaults (YCbCr, 2x2 luma sampling = 4:2:0 for
// colour, JDCT_ISLOW) then jpeg_set_quality(quality, force_baseline); optimize_coding on request.
// Same library and settings, so files are close to Pillow's at the same quality (Pillow's wheel
// bundles a newer libjpeg-turbo, so the bytes may differ).
//
// setjmp/longjmp: compress_in_session keeps no objects with destructors alive across library
// calls, and everything read after a longjmp lives in the caller-owned Session.
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <type_traits>

// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include "encode_internal.h"

namespace mmcore::detail {
namespace {

/// Output is handed to the sink in chunks of this size (and the rest at the end).
constexpr std::size_t kChunk = 16384;
/// Rows handed to jpeg_write_scanlines per call.
constexpr int kRowsPerCall = 16;

enum class Abort : int { kNone = 0, kLibraryError, kSink };

struct Session {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  jpeg_destination_mgr dest;
  std::jmp_buf jump;
  Abort abort;
  ByteSink sink;
  std::size_t written;  ///< bytes the sink accepted
  JOCTET chunk[kChunk];
};

Session* session_of(j_common_ptr cinfo) {
  return static_cast<Session*>(cinfo->client_data);
}

void on_error_exit(j_common_ptr cinfo) {
  Session* s = session_of(cinfo);
  s->abort = Abort::kLibraryError;
  std::longjmp(s->jump, 1);
}

void on_emit_message(j_common_ptr, int) {}  // warnings and traces: an encoder from pixels has none to act on
void on_output_message(j_common_ptr) {}     // the library never prints

// Passes n bytes of the chunk to the sink; a refusal ends the compression (inside a library call).
void flush(Session* s, std::size_t n) {
  if (n == 0) return;
  if (!s->sink.write(s->sink.context, s->chunk, n)) {
    s->abort = Abort::kSink;
    std::longjmp(s->jump, 1);
  }
  s->written += n;
}

void on_init_destination(j_compress_ptr cinfo) {
  Session* s = session_of(reinterpret_cast<j_common_ptr>(cinfo));
  s->dest.next_output_byte = s->chunk;
  s->dest.free_in_buffer = kChunk;
}

// libjpeg's contract: the whole buffer is full, whatever free_in_buffer says.
boolean on_empty_output_buffer(j_compress_ptr cinfo) {
  Session* s = session_of(reinterpret_cast<j_common_ptr>(cinfo));
  flush(s, kChunk);
  s->dest.next_output_byte = s->chunk;
  s->dest.free_in_buffer = kChunk;
  return TRUE;
}

void on_term_destination(j_compress_ptr cinfo) {
  Session* s = session_of(reinterpret_cast<j_common_ptr>(cinfo));
  flush(s, kChunk - s->dest.free_in_buffer);
}

// The setjmp scope of one compression. Returns false when a longjmp ended it.
bool compress_in_session(Session* s, ConstImageView image, const EncodeOptions& options) {
  if (setjmp(s->jump)) return false;
  j_compress_ptr c = &s->cinfo;
  jpeg_create_compress(c);  // may fail (no memory): inside the setjmp scope
  c->client_data = s;
  c->dest = &s->dest;
  c->image_width = static_cast<JDIMENSION>(image.width);
  c->image_height = static_cast<JDIMENSION>(image.height);
  c->input_components = image.channels;
  c->in_color_space = image.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(c);
  jpeg_set_quality(c, options.quality, TRUE);
  c->optimize_coding = options.optimize ? TRUE : FALSE;
  jpeg_start_compress(c, TRUE);
  JSAMPROW rows[kRowsPerCall];
  while (c->next_scanline < c->image_height) {
    JDIMENSION k = 0;
    for (; k < kRowsPerCall && c->next_scanline + k < c->image_height; ++k) {
      // libjpeg's row type is non-const; it only reads the input rows.
      rows[k] = const_cast<JSAMPROW>(image.row(static_cast<std::int32_t>(c->next_scanline + k)));
    }
    jpeg_write_scanlines(c, rows, k);
  }
  jpeg_finish_compress(c);
  return true;
}

}  // namespace

Status jpeg_encode(ConstImageView image, const EncodeOptions& options, ByteSink sink, ErrorText* error) {
  if (image.width > kJpegMaxDimension || image.height > kJpegMaxDimension) {
    error->set("image %dx%d is too large for JPEG (at most %d pixels a side): resize it first", image.width,
               image.height, kJpegMaxDimension);
    return Status::kTooLarge;
  }
  // Zeroed first: jpeg_destroy_compress is then safe whatever point a failure reached.
  static_assert(std::is_trivially_copyable_v<Session>, "Session is zero-initialised with memset");
  Session session;
  Session* s = &session;
  std::memset(static_cast<void*>(s), 0, sizeof(Session));
  s->cinfo.err = jpeg_std_error(&s->err);
  s->err.error_exit = on_error_exit;
  s->err.emit_message = on_emit_message;
  s->err.output_message = on_output_message;
  s->cinfo.client_data = s;  // jpeg_create_compress keeps err and client_data
  s->dest.init_destination = on_init_destination;
  s->dest.empty_output_buffer = on_empty_output_buffer;
  s->dest.term_destination = on_term_destination;
  s->sink = sink;
  Status status = Status::kOk;
  if (!compress_in_session(s, image, options)) {
    if (s->abort == Abort::kSink) {
      error->set("the output sink refused JPEG bytes after %zu bytes (out of memory?)", s->written);
      status = Status::kNoMemory;
    } else {
      char msg[JMSG_LENGTH_MAX];
      s->err.format_message(reinterpret_cast<j_common_ptr>(&s->cinfo), msg);
      switch (s->err.msg_code) {
        case JERR_OUT_OF_MEMORY:
          error->set("JPEG encoder out of memory (%dx%d image): %s", image.width, image.height, msg);
          status = Status::kNoMemory;
          break;
        case JERR_IMAGE_TOO_BIG:
          error->set("JPEG encoder: image %dx%d too large: %s", image.width, image.height, msg);
          status = Status::kTooLarge;
          break;
        default:
          error->set("JPEG encoder refused the image (%dx%dx%d): %s", image.width, image.height,
                     image.channels, msg);
          status = Status::kUnsupported;
          break;
      }
    }
  }
  jpeg_destroy_compress(&s->cinfo);
  return status;
}

}  // namespace mmcore::detail
