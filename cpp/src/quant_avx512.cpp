// AVX-512 VNNI quant kernels (contract: quant_internal.h). int8: vpdpbusd multiplies unsigned
// code bytes by signed query bytes and adds groups of four into int32 lanes without saturation,
// so it is exact as is; the row tail is a masked load (nothing read past the row). int4 and
// binary use the AVX2 kernels.
#include <immintrin.h>

// GCC 12's _mm512_undefined_epi32() (inside the extracts of _mm512_reduce_add_epi32) initialises a
// variable from itself, which -Wuninitialized reports at every inlined use (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <cstring>

#include "quant_internal.h"

namespace mmcore::detail {
namespace {

// Query g as int8, zero-padded to a multiple of 64 dimensions.
void prepare_int8(const void* queries, int nq, std::int32_t d, std::uint8_t* prepared) {
  const std::int64_t stride = quant_prepared_stride(d);
  const std::int64_t padded = (std::int64_t{d} + 63) / 64 * 64;
  for (int g = 0; g < nq; ++g) {
    std::uint8_t* w = prepared + g * stride;
    std::memcpy(w, static_cast<const std::int8_t*>(queries) + std::int64_t{g} * d,
                static_cast<std::size_t>(d));
    std::memset(w + d, 0, static_cast<std::size_t>(padded - d));
  }
}

template <int R, int S>
inline void dot8_tile(const std::uint8_t* codes, std::int32_t d, const std::uint8_t* const* q,
                      std::int32_t* out, std::int64_t ldo) {
  __m512i acc[R][S];
  for (int r = 0; r < R; ++r)
    for (int s = 0; s < S; ++s) acc[r][s] = _mm512_setzero_si512();
  for (std::int32_t i = 0; i < d; i += 64) {
    const int left = d - i;
    const __mmask64 m = left >= 64 ? ~__mmask64{0} : (__mmask64{1} << left) - 1;
    __m512i x[R];
    for (int r = 0; r < R; ++r) x[r] = _mm512_maskz_loadu_epi8(m, codes + r * d + i);
    for (int s = 0; s < S; ++s) {
      const __m512i y = _mm512_load_si512(q[s] + i);
      for (int r = 0; r < R; ++r) acc[r][s] = _mm512_dpbusd_epi32(acc[r][s], x[r], y);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int s = 0; s < S; ++s) out[s * ldo + r] = _mm512_reduce_add_epi32(acc[r][s]);
}

template <int R, int S>
void dot8_rows(const std::uint8_t* codes, std::int64_t nb, std::int32_t d, const std::uint8_t* prepared,
               std::int32_t* out, std::int64_t ldo) {
  const std::int64_t stride = quant_prepared_stride(d);
  const std::uint8_t* q[S];
  for (int s = 0; s < S; ++s) q[s] = prepared + s * stride;
  std::int64_t j = 0;
  for (; j + R <= nb; j += R) dot8_tile<R, S>(codes + j * d, d, q, out + j, ldo);
  for (; j < nb; ++j) dot8_tile<1, S>(codes + j * d, d, q, out + j, ldo);
}

// One query: rows in order with a software prefetch 2 KiB ahead (as the AVX2 kernel; in-order
// rows streamed faster than 4-row tiles there).
void dot8_single(const std::uint8_t* codes, std::int64_t nb, std::int32_t d, const std::uint8_t* prepared,
                 std::int32_t* out) {
  for (std::int64_t j = 0; j < nb; ++j) {
    const std::uint8_t* c = codes + j * d;
    __m512i acc = _mm512_setzero_si512();
    for (std::int32_t i = 0; i < d; i += 64) {
      // A prefetch never faults, so running past the last row is harmless.
      _mm_prefetch(reinterpret_cast<const char*>(c + i + 2048), _MM_HINT_T0);
      const int left = d - i;
      const __mmask64 m = left >= 64 ? ~__mmask64{0} : (__mmask64{1} << left) - 1;
      acc = _mm512_dpbusd_epi32(acc, _mm512_maskz_loadu_epi8(m, c + i), _mm512_load_si512(prepared + i));
    }
    out[j] = _mm512_reduce_add_epi32(acc);
  }
}

void block_int8(const std::uint8_t* codes, std::int64_t nb, std::int32_t d, const std::uint8_t* prepared,
                int nq, std::int32_t* out, std::int64_t ldo) {
  switch (nq) {
    case 1: dot8_single(codes, nb, d, prepared, out); break;
    case 2: dot8_rows<4, 2>(codes, nb, d, prepared, out, ldo); break;
    case 3: dot8_rows<4, 3>(codes, nb, d, prepared, out, ldo); break;
    default: dot8_rows<4, 4>(codes, nb, d, prepared, out, ldo); break;
  }
}

}  // namespace

QuantKernels quant_kernels_avx512() {
  QuantKernels k = quant_kernels_avx2();
  k.int8 = {prepare_int8, block_int8};
  k.backend = Backend::kAvx512;
  return k;
}

}  // namespace mmcore::detail
