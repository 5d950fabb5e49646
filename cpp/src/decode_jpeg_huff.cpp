// mmcore's Huffman decoder (decode_jpeg_huff_impl.h): the baseline x86-64 copy and the one
// dispatch point between it and the avx2 copy (decode_jpeg_huff_avx2.cpp).
#define MMCORE_HUFF_VARIANT huff_base
#include "decode_jpeg_huff_impl.h"
#undef MMCORE_HUFF_VARIANT

#include "mmcore/backend.h"

namespace mmcore::detail {

#ifdef MMCORE_HAVE_AVX2
namespace huff_avx2 {
bool install(j_decompress_ptr c, const std::uint8_t* data_end, void (*bail)(j_decompress_ptr));
bool install_progressive(j_decompress_ptr c, const std::uint8_t* data_end, void (*bail)(j_decompress_ptr));
}  // namespace huff_avx2
#endif

bool jpeg_huff_avx2_available() {
#ifdef MMCORE_HAVE_AVX2
  return backend_supported(Backend::kAvx2);
#else
  return false;
#endif
}

#ifdef MMCORE_HAVE_AVX2
namespace {

// kAuto follows the active backend (MMCORE_FORCE_BACKEND=ref runs the baseline copy).
bool use_avx2(HuffVariant v) {
  if (v == HuffVariant::kBase || !jpeg_huff_avx2_available()) return false;
  return v == HuffVariant::kAvx2 || active_backend() != Backend::kRef;
}

}  // namespace
#endif

bool jpeg_huff_install(j_decompress_ptr c, const std::uint8_t* data_end, void (*bail)(j_decompress_ptr),
                       HuffVariant v) {
#ifdef MMCORE_HAVE_AVX2
  if (use_avx2(v)) return huff_avx2::install(c, data_end, bail);
#endif
  (void)v;
  return huff_base::install(c, data_end, bail);
}

bool jpeg_phuff_install(j_decompress_ptr c, const std::uint8_t* data_end, void (*bail)(j_decompress_ptr),
                        HuffVariant v) {
#ifdef MMCORE_HAVE_AVX2
  if (use_avx2(v)) return huff_avx2::install_progressive(c, data_end, bail);
#endif
  (void)v;
  return huff_base::install_progressive(c, data_end, bail);
}

}  // namespace mmcore::detail
