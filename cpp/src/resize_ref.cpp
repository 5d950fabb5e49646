// Scalar reference row kernels for resize: the oracle every other variant is tested against.
// Written for clarity; the arithmetic is Pillow's (see resize_internal.h).
#include "resize_internal.h"

namespace mmcore::resize_detail {

void horizontal_row_ref(const std::uint8_t* src, std::uint8_t* dst, std::int32_t channels, const Axis& ax) {
  const int c = channels;
  for (std::int32_t x = 0; x < ax.out_size; ++x) {
    const std::uint8_t* s = src + static_cast<std::int64_t>(ax.start[x]) * c;
    const std::int32_t* k = ax.coeffs + static_cast<std::int64_t>(x) * ax.ksize;
    const std::int32_t n = ax.count[x];
    for (int ch = 0; ch < c; ++ch) {
      std::int32_t acc = kRoundHalf;
      for (std::int32_t t = 0; t < n; ++t) acc = mac(acc, s[t * c + ch], k[t]);
      dst[x * c + ch] = clip8(acc);
    }
  }
}

void vertical_row_ref(const std::uint8_t* const* rows, std::int32_t taps, const std::int32_t* k,
                      std::uint8_t* dst, std::int64_t bytes) {
  for (std::int64_t i = 0; i < bytes; ++i) {
    std::int32_t acc = kRoundHalf;
    for (std::int32_t t = 0; t < taps; ++t) acc = mac(acc, rows[t][i], k[t]);
    dst[i] = clip8(acc);
  }
}

}  // namespace mmcore::resize_detail
