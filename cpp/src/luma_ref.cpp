// Scalar Pillow-L conversion (the oracle of luma_internal.h) and the variant choice.
#include "luma_internal.h"

namespace mmcore::detail {

void luma_row_ref(const std::uint8_t* rgb, std::uint8_t* out, std::int32_t width) {
  for (std::int32_t x = 0; x < width; ++x, rgb += 3) {
    out[x] = static_cast<std::uint8_t>((19595u * rgb[0] + 38470u * rgb[1] + 7471u * rgb[2] + 0x8000u) >> 16);
  }
}

LumaRowFn luma_row_fn(Backend backend) {
#ifdef MMCORE_HAVE_AVX2
  // AVX-512 has no variant of its own: it runs the AVX2 one.
  if ((backend == Backend::kAvx2 || backend == Backend::kAvx512) && backend_supported(Backend::kAvx2)) {
    return luma_row_avx2;
  }
#else
  (void)backend;
#endif
  return luma_row_ref;
}

}  // namespace mmcore::detail
