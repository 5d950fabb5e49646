// Encode dispatcher: checks the view, the options and the sink once, then hands over to the
// format's encoder (encode_jpeg.cpp, encode_webp.cpp).
#include "mmcore/encode.h"

#include "encode_internal.h"
#include "mmcore/parallel.h"

namespace mmcore {

Status encode_image(ConstImageView image, const EncodeOptions& options, ByteSink sink, ErrorText* error) {
  error->clear();
  if (image.data == nullptr) {
    error->set("no image to encode (a missing record: the image is None / null)");
    return Status::kCorrupt;
  }
  if (image.width <= 0 || image.height <= 0) {
    error->set("empty image (%dx%d pixels): nothing to encode", image.width, image.height);
    return Status::kCorrupt;
  }
  if (image.channels != 1 && image.channels != 3) {
    error->set("cannot encode %d channels: give 1 (grey) or 3 (RGB)", image.channels);
    return Status::kCorrupt;
  }
  if (image.stride < static_cast<std::int64_t>(image.width) * image.channels) {
    error->set("row stride %lld is shorter than a row (%d pixels of %d bytes)",
               static_cast<long long>(image.stride), image.width, image.channels);
    return Status::kCorrupt;
  }
  if (options.quality < 1 || options.quality > 100) {
    error->set("quality must be in 1..100, got %d", options.quality);
    return Status::kUnsupported;
  }
  if (options.format == ImageFormat::kWebp && (options.webp_method < 0 || options.webp_method > 6)) {
    error->set("WebP method must be in 0..6, got %d", options.webp_method);
    return Status::kUnsupported;
  }
  if (sink.write == nullptr) {
    error->set("no output sink given (ByteSink::write is null)");
    return Status::kUnsupported;
  }
  switch (options.format) {
    case ImageFormat::kJpeg: return detail::jpeg_encode(image, options, sink, error);
    case ImageFormat::kWebp: return detail::webp_encode(image, options, sink, error);
    default:
      error->set("cannot encode to %s: mmcore encodes jpeg and webp", format_name(options.format));
      return Status::kUnsupported;
  }
}

void encode_batch(const ConstImageView* images, std::int64_t n, const EncodeOptions& options, int threads,
                  const ByteSink* sinks, Status* statuses, ErrorText* errors) {
  parallel_for(n, threads,
               [&](std::int64_t i) { statuses[i] = encode_image(images[i], options, sinks[i], &errors[i]); });
}

}  // namespace mmcore
