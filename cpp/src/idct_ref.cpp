// Scalar reference of the islow IDCT with libjpeg-turbo's SIMD precision (see idct_internal.h),
// and the variant choice.
#include <algorithm>

#include "idct_internal.h"
#include "idct_kernel_internal.h"

namespace mmcore::detail {
namespace {

using namespace idct;

/// 16-bit wrap of an int32 value (a vpaddw / vpmullw / vpsllw result).
std::int32_t wrap16(std::int32_t v) {
  return static_cast<std::int16_t>(static_cast<std::uint16_t>(static_cast<std::uint32_t>(v)));
}

std::int16_t sat16(std::int32_t v) {
  return static_cast<std::int16_t>(std::clamp<std::int32_t>(v, -32768, 32767));
}

/// One 1-D pass over x[0..7] (stride apart in `in`); int32 sums wrap as vpaddd does.
void pass_1d(const std::int16_t* in, int stride, int shift, std::int16_t* out, int out_stride) {
  std::int32_t x[8];
  for (int i = 0; i < 8; ++i) x[i] = in[i * stride];
  using u32 = std::uint32_t;
  auto mul = [](std::int32_t a, std::int32_t c) { return static_cast<u32>(a * c); };
  // Even part: tmp0/tmp1 from the 16-bit sum and difference of x0, x4; tmp2/tmp3 from x2, x6.
  const u32 tmp0 = static_cast<u32>(wrap16(x[0] + x[4])) << kConstBits;
  const u32 tmp1 = static_cast<u32>(wrap16(x[0] - x[4])) << kConstBits;
  const u32 tmp3 = mul(x[2], kF0541 + kF0765) + mul(x[6], kF0541);
  const u32 tmp2 = mul(x[2], kF0541) + mul(x[6], kF0541 - kF1847);
  const u32 tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
  // Odd part: z3 = x7 + x3 and z4 = x5 + x1 in 16 bits, rotated by 1.175875602.
  const std::int32_t z3 = wrap16(x[7] + x[3]), z4 = wrap16(x[5] + x[1]);
  const u32 r3 = mul(z3, kF1175 - kF1961) + mul(z4, kF1175);
  const u32 r4 = mul(z3, kF1175) + mul(z4, kF1175 - kF0390);
  const u32 o0 = mul(x[7], kF0298 - kF0899) + mul(x[1], -kF0899) + r3;
  const u32 o1 = mul(x[5], kF2053 - kF2562) + mul(x[3], -kF2562) + r4;
  const u32 o2 = mul(x[5], -kF2562) + mul(x[3], kF3072 - kF2562) + r3;
  const u32 o3 = mul(x[7], -kF0899) + mul(x[1], kF1501 - kF0899) + r4;
  const u32 round = 1u << (shift - 1);
  auto descale = [&](u32 v) { return sat16(static_cast<std::int32_t>(v + round) >> shift); };
  out[0 * out_stride] = descale(tmp10 + o3);
  out[7 * out_stride] = descale(tmp10 - o3);
  out[1 * out_stride] = descale(tmp11 + o2);
  out[6 * out_stride] = descale(tmp11 - o2);
  out[2 * out_stride] = descale(tmp12 + o1);
  out[5 * out_stride] = descale(tmp12 - o1);
  out[3 * out_stride] = descale(tmp13 + o0);
  out[4 * out_stride] = descale(tmp13 - o0);
}

}  // namespace

void idct_islow_ref(const std::int16_t* coef, const std::int16_t* mult, std::uint8_t* const* rows,
                    std::uint32_t col) {
  std::int16_t x[64], ws[64];
  bool rows_1_7_zero = true;
  for (int i = 0; i < 64; ++i) {
    x[i] = static_cast<std::int16_t>(wrap16(coef[i] * mult[i]));
    if (i >= 8 && coef[i] != 0) rows_1_7_zero = false;
  }
  // Pass 1, down each column (coefficient row = vertical frequency).
  for (int c = 0; c < 8; ++c) {
    if (rows_1_7_zero) {
      const auto v = static_cast<std::int16_t>(wrap16(x[c] * 4));
      for (int r = 0; r < 8; ++r) ws[r * 8 + c] = v;
    } else {
      pass_1d(x + c, 8, kShiftPass1, ws + c, 8);
    }
  }
  // Pass 2, along each row; then signed saturation to 8 bits and the +128 centre (mod 256).
  for (int r = 0; r < 8; ++r) {
    std::int16_t px[8];
    pass_1d(ws + r * 8, 1, kShiftPass2, px, 1);
    for (int c = 0; c < 8; ++c) {
      const int v = std::clamp<int>(px[c], -128, 127) + 128;
      rows[r][col + static_cast<std::uint32_t>(c)] = static_cast<std::uint8_t>(v);
    }
  }
}

IdctPairFn idct_islow_pair_fn(Backend backend) {
#ifdef MMCORE_HAVE_AVX512
  if (backend == Backend::kAvx512 && backend_supported(Backend::kAvx512)) return idct_islow_pair_avx512;
#else
  (void)backend;
#endif
  return nullptr;
}

}  // namespace mmcore::detail
