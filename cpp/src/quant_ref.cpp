// Scalar quant kernels: the oracle every SIMD variant must match (contract: quant_internal.h).
#include <cstring>

#include "quant_internal.h"

// The rerank lanes round alike in every build and variant (quant_internal.h).
MMCORE_QUANT_NO_FMA

namespace mmcore::detail {
namespace {

void prepare_int8(const void* queries, int nq, std::int32_t d, std::uint8_t* prepared) {
  const std::int64_t stride = quant_prepared_stride(d, kQuantUnitInt);
  for (int g = 0; g < nq; ++g) {
    std::memcpy(prepared + g * stride, static_cast<const std::int8_t*>(queries) + std::int64_t{g} * d,
                static_cast<std::size_t>(d));
  }
}

void block_int8(const std::uint8_t* codes, std::int64_t nb, std::int32_t d, const std::uint8_t* prepared,
                int nq, std::int32_t* out, std::int64_t ldo) {
  const std::int64_t stride = quant_prepared_stride(d, kQuantUnitInt);
  for (int g = 0; g < nq; ++g) {
    const auto* t = reinterpret_cast<const std::int8_t*>(prepared + g * stride);
    for (std::int64_t j = 0; j < nb; ++j) {
      const std::uint8_t* c = codes + j * d;
      std::int32_t s = 0;
      for (std::int32_t i = 0; i < d; ++i) s += std::int32_t{c[i]} * std::int32_t{t[i]};
      out[g * ldo + j] = s;
    }
  }
}

void block_int4(const std::uint8_t* codes, std::int64_t nb, std::int32_t d, const std::uint8_t* prepared,
                int nq, std::int32_t* out, std::int64_t ldo) {
  const std::int64_t stride = quant_prepared_stride(d, kQuantUnitInt), row = (d + 1) / 2;
  for (int g = 0; g < nq; ++g) {
    const auto* t = reinterpret_cast<const std::int8_t*>(prepared + g * stride);
    for (std::int64_t j = 0; j < nb; ++j) {
      const std::uint8_t* c = codes + j * row;
      std::int32_t s = 0;
      for (std::int32_t i = 0; i < d; ++i) {
        const std::int32_t level = (c[i / 2] >> (4 * (i % 2))) & 15;
        s += level * std::int32_t{t[i]};
      }
      out[g * ldo + j] = s;
    }
  }
}

void prepare_binary(const void* queries, int nq, std::int32_t words, std::uint8_t* prepared) {
  const std::int64_t stride = quant_prepared_stride(words, kQuantUnitBinary);
  for (int g = 0; g < nq; ++g) {
    std::memcpy(prepared + g * stride, static_cast<const std::uint64_t*>(queries) + std::int64_t{g} * words,
                static_cast<std::size_t>(words) * 8);
  }
}

int popcount64(std::uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555u);
  x = (x & 0x3333333333333333u) + ((x >> 2) & 0x3333333333333333u);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fu;
  return static_cast<int>((x * 0x0101010101010101u) >> 56);
}

void block_binary(const std::uint8_t* codes, std::int64_t nb, std::int32_t words,
                  const std::uint8_t* prepared, int nq, std::int32_t* out, std::int64_t ldo) {
  const std::int64_t stride = quant_prepared_stride(words, kQuantUnitBinary);
  for (int g = 0; g < nq; ++g) {
    const auto* q = reinterpret_cast<const std::uint64_t*>(prepared + g * stride);
    for (std::int64_t j = 0; j < nb; ++j) {
      std::uint64_t c = 0;
      std::int32_t dist = 0;
      for (std::int32_t w = 0; w < words; ++w) {
        std::memcpy(&c, codes + (j * words + w) * 8, 8);
        dist += popcount64(c ^ q[w]);
      }
      out[g * ldo + j] = -dist;
    }
  }
}

void rerank(const float* const* rows, int nr, const float* q, std::int32_t d8, bool l2, double* lanes) {
  for (int r = 0; r < nr; ++r) {
    double* a = lanes + 8 * r;
    for (int u = 0; u < 8; ++u) a[u] = 0.0;
    for (std::int32_t t = 0; t < d8; t += 8) {
      for (int u = 0; u < 8; ++u) {
        const double v = rows[r][t + u], w = q[t + u];
        a[u] += l2 ? (v - w) * (v - w) : v * w;
      }
    }
  }
}

}  // namespace

QuantKernels quant_kernels_ref() {
  QuantKernels k;
  k.int8 = {prepare_int8, block_int8};
  k.int4 = {prepare_int8, block_int4};
  k.binary = {prepare_binary, block_binary};
  k.rerank = rerank;
  k.backend = Backend::kRef;
  return k;
}

}  // namespace mmcore::detail
