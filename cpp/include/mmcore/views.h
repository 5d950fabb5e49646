// Non-owning views over caller-owned pixel memory.
//
// Pixels are uint8, interleaved (HxW, HxWx3 or HxWx4), rows `stride` bytes apart
// (stride >= width * channels). Views never allocate or free.
#pragma once

#include <cstdint>

namespace mmcore {

struct ImageView {
  std::uint8_t* data = nullptr;
  std::int32_t width = 0;
  std::int32_t height = 0;
  std::int32_t channels = 0;  ///< 1, 3 or 4
  std::int64_t stride = 0;    ///< bytes between rows

  std::uint8_t* row(std::int32_t y) const { return data + stride * y; }
};

struct ConstImageView {
  const std::uint8_t* data = nullptr;
  std::int32_t width = 0;
  std::int32_t height = 0;
  std::int32_t channels = 0;
  std::int64_t stride = 0;

  ConstImageView() = default;
  ConstImageView(const std::uint8_t* d, std::int32_t w, std::int32_t h, std::int32_t c, std::int64_t s)
      : data(d), width(w), height(h), channels(c), stride(s) {}
  ConstImageView(const ImageView& v)  // NOLINT(google-explicit-constructor): views convert freely
      : data(v.data), width(v.width), height(v.height), channels(v.channels), stride(v.stride) {}

  const std::uint8_t* row(std::int32_t y) const { return data + stride * y; }
};

}  // namespace mmcore
