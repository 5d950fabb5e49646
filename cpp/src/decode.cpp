// PLACEHOLDER: replaced by the real decoders (decode helper).
#include "mmcore/decode.h"

#include <cstring>

namespace mmcore {

ImageFormat detect_format(const std::uint8_t* d, std::size_t n) {
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return ImageFormat::kJpeg;
  if (n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return ImageFormat::kPng;
  if (n >= 12 && std::memcmp(d, "RIFF", 4) == 0 && std::memcmp(d + 8, "WEBP", 4) == 0)
    return ImageFormat::kWebp;
  return ImageFormat::kUnknown;
}

const char* format_name(ImageFormat f) {
  switch (f) {
    case ImageFormat::kJpeg: return "jpeg";
    case ImageFormat::kPng: return "png";
    case ImageFormat::kWebp: return "webp";
    default: return "unknown";
  }
}

std::int32_t read_orientation(const std::uint8_t*, std::size_t, ImageFormat) {
  return 1;
}

Status decode_info(const std::uint8_t* data, std::size_t size, const DecodeOptions&, ImageInfo* info,
                   ErrorText* error) {
  *info = ImageInfo{};
  info->format = detect_format(data, size);
  error->set("decoder not built yet");
  return Status::kUnsupported;
}

Status decode_into(const std::uint8_t*, std::size_t, const DecodeOptions&, const ImageInfo&, ImageView,
                   ErrorText* error) {
  error->set("decoder not built yet");
  return Status::kUnsupported;
}

const char* jpeg_library_version() {
  return "libjpeg-turbo ?";
}
const char* png_library_version() {
  return "libpng ?";
}
const char* webp_library_version() {
  return "libwebp ?";
}

}  // namespace mmcore
