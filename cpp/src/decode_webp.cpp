// PLACEHOLDER: the webp decoder is being written.
#include "decode_internal.h"

namespace mmcore::detail {

Status webp_info(const std::uint8_t*, std::size_t, const DecodeOptions&, ImageInfo*, ErrorText* error) {
  error->set("webp decoding is not built yet");
  return Status::kUnsupported;
}

Status webp_decode(const std::uint8_t*, std::size_t, const DecodeOptions&, const ImageInfo&, ImageView,
                   ErrorText* error) {
  error->set("webp decoding is not built yet");
  return Status::kUnsupported;
}

}  // namespace mmcore::detail

namespace mmcore {
const char* webp_library_version() {
  return "webp ?";
}
}  // namespace mmcore
