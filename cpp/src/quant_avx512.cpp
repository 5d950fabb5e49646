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
  const std::int64_t stride = quant_prepared_stride(d, kQuantUnitInt);
  const std::int64_t padded = (std::int64_t{d} + 63) / 64 * 64;
  for (int g = 0; g < nq; ++g) {
    std::uint8_t* w = prepared + g * stride;
    std::memcpy(w, static_cast<const std::int8_t*>(queries) + std::int64_t{g} * d,
                static_cast<std::size_t>(d));
    std::memset(w + d, 0, static_cast<std::size_t>(padded - d));
  }
}

// The sums of four accumulators' 16 lanes, as [sum a, sum b, sum c, sum d]: about a third of the
// instructions of four separate reductions, which cost as much as the products at D = 768.
inline __m128i hsum4(__m512i a, __m512i b, __m512i c, __m512i d) {
  // 128-bit lanes: [a0+a2, a1+a3, b0+b2, b1+b3] and the same for c, d.
  const __m512i ab = _mm512_add_epi32(_mm512_shuffle_i64x2(a, b, 0x44), _mm512_shuffle_i64x2(a, b, 0xee));
  const __m512i cd = _mm512_add_epi32(_mm512_shuffle_i64x2(c, d, 0x44), _mm512_shuffle_i64x2(c, d, 0xee));
  // Lane k holds four partial sums of accumulator k.
  __m512i u = _mm512_add_epi32(_mm512_shuffle_i64x2(ab, cd, 0x88), _mm512_shuffle_i64x2(ab, cd, 0xdd));
  u = _mm512_add_epi32(u, _mm512_shuffle_epi32(u, _MM_PERM_BADC));
  u = _mm512_add_epi32(u, _mm512_shuffle_epi32(u, _MM_PERM_CDAB));
  return _mm512_castsi512_si128(
      _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), u));
}

// Adds the products of 64 dimensions at i (the bytes of mask m) to acc.
template <int R, int S>
inline void dot8_step(__m512i (&acc)[R][S], const std::uint8_t* codes, std::int32_t d,
                      const std::uint8_t* const* q, std::int32_t i, __mmask64 m) {
  // The next tile's rows, 64 R bytes per step, as in the AVX2 kernel (never faults past the end).
  for (int r = 0; r < R; ++r)
    _mm_prefetch(reinterpret_cast<const char*>(codes + R * d + R * i + 64 * r), _MM_HINT_T0);
  __m512i x[R];
  for (int r = 0; r < R; ++r) x[r] = _mm512_maskz_loadu_epi8(m, codes + r * d + i);
  for (int s = 0; s < S; ++s) {
    const __m512i y = _mm512_load_si512(q[s] + i);
    for (int r = 0; r < R; ++r) acc[r][s] = _mm512_dpbusd_epi32(acc[r][s], x[r], y);
  }
}

template <int R, int S>
inline void dot8_tile(const std::uint8_t* codes, std::int32_t d, const std::uint8_t* const* q,
                      std::int32_t* out, std::int64_t ldo) {
  __m512i acc[R][S];
  for (int r = 0; r < R; ++r)
    for (int s = 0; s < S; ++s) acc[r][s] = _mm512_setzero_si512();
  const std::int32_t d64 = d / 64 * 64;
  for (std::int32_t i = 0; i < d64; i += 64) dot8_step<R, S>(acc, codes, d, q, i, ~__mmask64{0});
  if (d64 < d) dot8_step<R, S>(acc, codes, d, q, d64, (__mmask64{1} << (d - d64)) - 1);
  for (int r = 0; r < R; ++r) {
    if constexpr (S == 4) {
      alignas(16) std::int32_t v[4];
      _mm_store_si128(reinterpret_cast<__m128i*>(v), hsum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
      for (int s = 0; s < 4; ++s) out[s * ldo + r] = v[s];
    } else {
      for (int s = 0; s < S; ++s) out[s * ldo + r] = _mm512_reduce_add_epi32(acc[r][s]);
    }
  }
}

template <int R, int S>
void dot8_rows(const std::uint8_t* codes, std::int64_t nb, std::int32_t d, const std::uint8_t* prepared,
               std::int32_t* out, std::int64_t ldo) {
  const std::int64_t stride = quant_prepared_stride(d, kQuantUnitInt);
  const std::uint8_t* q[S];
  for (int s = 0; s < S; ++s) q[s] = prepared + s * stride;
  std::int64_t j = 0;
  for (; j + R <= nb; j += R) dot8_tile<R, S>(codes + j * d, d, q, out + j, ldo);
  for (; j < nb; ++j) dot8_tile<1, S>(codes + j * d, d, q, out + j, ldo);
}

// One query: rows in order with a software prefetch 2 KiB ahead (as the AVX2 kernel; in-order
// rows streamed faster than 4-row tiles there), four rows' sums reduced together (hsum4).
inline __m512i dot8_row(const std::uint8_t* c, std::int32_t d, const std::uint8_t* q) {
  __m512i acc = _mm512_setzero_si512();
  const std::int32_t d64 = d / 64 * 64;
  for (std::int32_t i = 0; i < d64; i += 64) {
    // A prefetch never faults, so running past the last row is harmless.
    _mm_prefetch(reinterpret_cast<const char*>(c + i + 2048), _MM_HINT_T0);
    acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(c + i), _mm512_load_si512(q + i));
  }
  if (d64 < d) {
    const __mmask64 m = (__mmask64{1} << (d - d64)) - 1;
    acc = _mm512_dpbusd_epi32(acc, _mm512_maskz_loadu_epi8(m, c + d64), _mm512_load_si512(q + d64));
  }
  return acc;
}

void dot8_single(const std::uint8_t* codes, std::int64_t nb, std::int32_t d, const std::uint8_t* prepared,
                 std::int32_t* out) {
  std::int64_t j = 0;
  for (; j + 4 <= nb; j += 4) {
    const std::uint8_t* c = codes + j * d;
    const __m512i a0 = dot8_row(c, d, prepared), a1 = dot8_row(c + d, d, prepared);
    const __m512i a2 = dot8_row(c + 2 * d, d, prepared), a3 = dot8_row(c + 3 * d, d, prepared);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + j), hsum4(a0, a1, a2, a3));
  }
  for (; j < nb; ++j) out[j] = _mm512_reduce_add_epi32(dot8_row(codes + j * d, d, prepared));
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
