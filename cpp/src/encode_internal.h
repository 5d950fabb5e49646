// Internal contract between the encode dispatcher (encode.cpp) and the per-format encoders.
//
// encode.cpp has checked the view (data != nullptr, width and height >= 1, channels 1 or 3, stride
// >= width * channels), the quality (1..100) and the sink before calling <fmt>_encode; the encoder
// checks its own size limit and reports library failures as a Status plus a message.
#pragma once

#include "mmcore/encode.h"

namespace mmcore::detail {

Status jpeg_encode(ConstImageView image, const EncodeOptions& options, ByteSink sink, ErrorText* error);
Status webp_encode(ConstImageView image, const EncodeOptions& options, ByteSink sink, ErrorText* error);

}  // namespace mmcore::detail
