// Image encode: uint8 pixels -> JPEG (libjpeg-turbo's libjpeg API) or lossy WebP (libwebp) bytes,
// for the thumbnails that `mmcore run` stores.
//
// Contract
// - Input: a ConstImageView of 1 (grey) or 3 (RGB) channels, any stride >= width * channels.
// - JPEG: baseline, quality 1..100 through jpeg_set_quality (the same scale as Pillow's quality=),
//   4:2:0 chroma for RGB, one luma component for grey, accurate integer DCT, optimised Huffman
//   tables only when asked. At most kJpegMaxDimension pixels a side.
// - WebP: lossy VP8, quality 1..100, method 0..6 (4 by default, Pillow's: 0 is fastest, 6 smallest),
//   no alpha. WebP has no grey
//   format: grey is encoded as R = G = B (neutral chroma) and decodes as RGB. At most
//   kWebpMaxDimension pixels a side.
// - Output is streamed to a caller-supplied ByteSink, in order; the caller owns that memory
//   (nothing the library allocates outlives a call). On failure the sink may already have
//   received a prefix of the stream: the caller discards it.
// - Never throws, aborts or prints: an empty view, a bad channel count or stride -> kCorrupt
//   ("not an image"); an unknown format, a quality outside 1..100 or a WebP method outside 0..6 ->
//   kUnsupported; over the
//   format's size limit -> kTooLarge; any other refusal by the codec -> kUnsupported;
//   a failed allocation or a sink that refuses bytes -> kNoMemory; every status comes with a message.
// - Deterministic: the same pixels and options give the same bytes (per library build).
// - Thread safety: all functions are reentrant; each call owns its encoder; no shared state.
#pragma once

#include <cstddef>
#include <cstdint>

#include "mmcore/decode.h"
#include "mmcore/status.h"
#include "mmcore/views.h"

namespace mmcore {

/// libjpeg's JPEG_MAX_DIMENSION.
constexpr std::int32_t kJpegMaxDimension = 65500;
/// libwebp's WEBP_MAX_DIMENSION (the VP8 frame header stores 14 bits a side).
constexpr std::int32_t kWebpMaxDimension = 16383;

struct EncodeOptions {
  ImageFormat format = ImageFormat::kJpeg;  ///< kJpeg or kWebp; others are kUnsupported
  std::int32_t quality = 85;                ///< 1..100
  bool optimize = false;                    ///< JPEG: optimised Huffman tables (smaller, slower)
  std::int32_t webp_method = 4;             ///< WebP: libwebp's speed / size trade-off, 0..6
};

/// Receives the encoded stream in order, in one or more calls. Returns false to stop the encode
/// (it then fails with kNoMemory). Must not throw: it is called from inside the C codecs.
struct ByteSink {
  void* context = nullptr;
  bool (*write)(void* context, const std::uint8_t* data, std::size_t size) = nullptr;
};

/// Encodes one image, writing the bytes to sink.
Status encode_image(ConstImageView image, const EncodeOptions& options, ByteSink sink, ErrorText* error);

/// encode_image for images[i] -> sinks[i], statuses[i], errors[i], i in [0, n), on up to `threads`
/// threads (<= 0: all cores). A view with data == nullptr is a missing image: kCorrupt with a
/// message. Always completes; each sink is only called from one thread at a time.
void encode_batch(const ConstImageView* images, std::int64_t n, const EncodeOptions& options, int threads,
                  const ByteSink* sinks, Status* statuses, ErrorText* errors);

}  // namespace mmcore
