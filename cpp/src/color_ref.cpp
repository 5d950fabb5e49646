// Scalar reference of JPEG's YCbCr -> RGB (see color_internal.h), and the variant choice.
#include <algorithm>

#include "color_internal.h"

namespace mmcore::detail {

void ycc_rgb_row_ref(const std::uint8_t* y, const std::uint8_t* cb, const std::uint8_t* cr, std::uint8_t* rgb,
                     std::uint32_t width) {
  using namespace ycc;
  constexpr std::int32_t half = 1 << (kScaleBits - 1);
  for (std::uint32_t i = 0; i < width; ++i) {
    const std::int32_t l = y[i], b = cb[i] - 128, r = cr[i] - 128;
    const std::int32_t v[3] = {l + ((kCrR * r + half) >> kScaleBits),
                               l + ((kCbG * b + kCrG * r + half) >> kScaleBits),
                               l + ((kCbB * b + half) >> kScaleBits)};
    for (int c = 0; c < 3; ++c) rgb[3 * i + c] = static_cast<std::uint8_t>(std::clamp(v[c], 0, 255));
  }
}

YccRgbRowFn ycc_rgb_row_fn(Backend backend) {
#ifdef MMCORE_HAVE_AVX512
  if (backend == Backend::kAvx512 && backend_supported(Backend::kAvx512)) return ycc_rgb_row_avx512;
#endif
#ifdef MMCORE_HAVE_AVX2
  if (backend >= Backend::kAvx2 && backend_supported(Backend::kAvx2)) return ycc_rgb_row_avx2;
#endif
  (void)backend;
  return nullptr;
}

}  // namespace mmcore::detail
