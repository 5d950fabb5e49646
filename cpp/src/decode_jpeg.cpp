// PLACEHOLDER: the jpeg decoder is being written.
#include "decode_internal.h"

namespace mmcore::detail {

Status jpeg_info(const std::uint8_t*, std::size_t, const DecodeOptions&, ImageInfo*, ErrorText* error) {
  error->set("jpeg decoding is not built yet");
  return Status::kUnsupported;
}

Status jpeg_decode(const std::uint8_t*, std::size_t, const DecodeOptions&, const ImageInfo&, ImageView,
                   ErrorText* error) {
  error->set("jpeg decoding is not built yet");
  return Status::kUnsupported;
}

}  // namespace mmcore::detail

namespace mmcore {
const char* jpeg_library_version() {
  return "jpeg ?";
}
}  // namespace mmcore
