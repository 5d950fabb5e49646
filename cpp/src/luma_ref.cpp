// Scalar Pillow-L conversion (the oracle of luma_internal.h) and the variant choice.
#include "luma_internal.h"

namespace mmcore::detail {

void luma_row_ref(const std::uint8_t* rgb, std::uint8_t* out, std::int32_t width) {
  for (std::int32_t x = 0; x < width; ++x, rgb += 3) out[x] = luma_pillow(rgb[0], rgb[1], rgb[2]);
}

LumaRowFn luma_row_fn(Backend backend) {
#ifdef MMCORE_HAVE_AVX512
  if (backend == Backend::kAvx512 && backend_supported(Backend::kAvx512)) return luma_row_avx512;
#endif
#ifdef MMCORE_HAVE_AVX2
  if ((backend == Backend::kAvx2 || backend == Backend::kAvx512) && backend_supported(Backend::kAvx2)) {
    return luma_row_avx2;
  }
#else
  (void)backend;
#endif
  return luma_row_ref;
}

}  // namespace mmcore::detail
