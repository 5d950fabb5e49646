// Lossy WebP encoding through libwebp's advanced API (WebPConfig + WebPPicture + WebPEncode).
//
// Settings are Pillow's for WebP save: WebPConfigInit (the default preset), quality, method (4 by default),
// no sharp YUV; thread_level 0 because the batch parallelises across images.
// Output goes to the caller's sink through the picture's writer callback.
//
// Grey input: WebP has no grey format. The picture's YUV 4:2:0 planes are filled directly, Y with
// libwebp's own RGB -> Y' rule for R = G = B (dsp/yuv.h VP8RGBToY, BT.601 limited range, rounded)
// and U = V = 128 (what that rule gives for any neutral colour): the same planes
// WebPPictureImportRGB makes from the grey expanded to RGB, without the RGB copy (the tests compare
// the two encodings byte for byte).
#include <webp/encode.h>

#include <climits>
#include <cstring>

#include "encode_internal.h"

namespace mmcore::detail {
namespace {

struct SinkState {
  ByteSink sink;
  std::size_t written = 0;
  bool refused = false;
};

int write_to_sink(const std::uint8_t* data, std::size_t size, const WebPPicture* picture) {
  auto* st = static_cast<SinkState*>(picture->custom_ptr);
  if (size == 0) return 1;
  if (!st->sink.write(st->sink.context, data, size)) {
    st->refused = true;
    return 0;
  }
  st->written += size;
  return 1;
}

// libwebp's VP8RGBToY(v, v, v, YUV_HALF): (16839 + 33059 + 6420) * v, 16-bit fixed point, + 16.
inline std::uint8_t grey_to_y(unsigned v) {
  return static_cast<std::uint8_t>((56318u * v + (1u << 15) + (16u << 16)) >> 16);
}

// Fills an allocated YUV420 picture from grey rows: Y from the grey level, neutral chroma.
void fill_from_grey(ConstImageView image, WebPPicture* pic) {
  for (std::int32_t y = 0; y < image.height; ++y) {
    const std::uint8_t* src = image.row(y);
    std::uint8_t* dst = pic->y + static_cast<std::ptrdiff_t>(pic->y_stride) * y;
    for (std::int32_t x = 0; x < image.width; ++x) dst[x] = grey_to_y(src[x]);
  }
  const int uv_width = (image.width + 1) / 2, uv_height = (image.height + 1) / 2;
  for (int y = 0; y < uv_height; ++y) {
    std::memset(pic->u + static_cast<std::ptrdiff_t>(pic->uv_stride) * y, 128, uv_width);
    std::memset(pic->v + static_cast<std::ptrdiff_t>(pic->uv_stride) * y, 128, uv_width);
  }
}

Status from_encoder_error(const WebPPicture& pic, const SinkState& st, ErrorText* error) {
  const int w = pic.width, h = pic.height;
  // libwebp 1.2 leaves error_code at VP8_ENC_OK when a writer fails after the headers.
  if (st.refused) {
    error->set("the output sink refused WebP bytes after %zu bytes (out of memory?)", st.written);
    return Status::kNoMemory;
  }
  switch (pic.error_code) {
    case VP8_ENC_ERROR_OUT_OF_MEMORY:
    case VP8_ENC_ERROR_BITSTREAM_OUT_OF_MEMORY:
      error->set("WebP encoder out of memory (%dx%d image)", w, h);
      return Status::kNoMemory;
    case VP8_ENC_ERROR_BAD_DIMENSION:
      error->set("WebP encoder refused the size %dx%d (1..%d pixels a side)", w, h, WEBP_MAX_DIMENSION);
      return Status::kTooLarge;
    case VP8_ENC_ERROR_PARTITION0_OVERFLOW:
    case VP8_ENC_ERROR_PARTITION_OVERFLOW:
    case VP8_ENC_ERROR_FILE_TOO_BIG:
      error->set(
          "WebP output too large for the format (%dx%d image, error %d): lower the quality or the size", w, h,
          static_cast<int>(pic.error_code));
      return Status::kTooLarge;
    default:
      error->set("WebP encoder failed (%dx%d image, VP8 encoding error %d)", w, h,
                 static_cast<int>(pic.error_code));
      return Status::kUnsupported;
  }
}

}  // namespace

Status webp_encode(ConstImageView image, const EncodeOptions& options, ByteSink sink, ErrorText* error) {
  if (image.width > kWebpMaxDimension || image.height > kWebpMaxDimension) {
    error->set("image %dx%d is too large for WebP (at most %d pixels a side): resize it first or encode JPEG",
               image.width, image.height, kWebpMaxDimension);
    return Status::kTooLarge;
  }
  if (image.stride > INT_MAX) {
    error->set("row stride %lld is over libwebp's limit (INT_MAX): pass a contiguous image",
               static_cast<long long>(image.stride));
    return Status::kUnsupported;
  }
  WebPConfig config;
  WebPPicture pic;
  if (!WebPConfigInit(&config) || !WebPPictureInit(&pic)) {
    error->set("libwebp ABI mismatch (WebPConfigInit / WebPPictureInit failed)");
    return Status::kUnsupported;
  }
  config.quality = static_cast<float>(options.quality);
  config.method = options.webp_method;
  config.thread_level = 0;
  if (!WebPValidateConfig(&config)) {
    error->set("libwebp refused the configuration (quality %d)", options.quality);
    return Status::kUnsupported;
  }
  SinkState st;
  st.sink = sink;
  pic.use_argb = 0;
  pic.colorspace = WEBP_YUV420;
  pic.width = image.width;
  pic.height = image.height;
  pic.writer = write_to_sink;
  pic.custom_ptr = &st;
  int ok = 0;
  if (image.channels == 1) {
    ok = WebPPictureAlloc(&pic);
    if (ok) fill_from_grey(image, &pic);
  } else {
    ok = WebPPictureImportRGB(&pic, image.data, static_cast<int>(image.stride));
  }
  // Allocation and import fail with the picture's error_code set (out of memory, bad dimension).
  if (ok) ok = WebPEncode(&config, &pic);
  const Status status = ok ? Status::kOk : from_encoder_error(pic, st, error);
  WebPPictureFree(&pic);
  return status;
}

}  // namespace mmcore::detail
