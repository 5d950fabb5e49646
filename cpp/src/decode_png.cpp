// PLACEHOLDER: the png decoder is being written.
#include "decode_internal.h"

namespace mmcore::detail {

Status png_info(const std::uint8_t*, std::size_t, const DecodeOptions&, ImageInfo*, ErrorText* error) {
  error->set("png decoding is not built yet");
  return Status::kUnsupported;
}

Status png_decode(const std::uint8_t*, std::size_t, const DecodeOptions&, const ImageInfo&, ImageView,
                  ErrorText* error) {
  error->set("png decoding is not built yet");
  return Status::kUnsupported;
}

}  // namespace mmcore::detail

namespace mmcore {
const char* png_library_version() {
  return "png ?";
}
}  // namespace mmcore
