// The quant block kernels that quant.cpp drives (contract: mmcore/quant.h).
//
// Contract: prepare(queries, nq, d, prepared) lays out nq (1..QuantCodec::group) queries in the
// variant's own form, query g at prepared + g * quant_prepared_stride(d, unit) (the driver's buffer is
// 64-byte aligned and zeroed by prepare where the variant needs padding). block(codes, nb, d,
// prepared, nq, out, ldo) writes out[g * ldo + j] for every query g < nq and code row j < nb: the
// exact int32 dot (int8, int4) or the negated Hamming distance (binary, so that larger is better
// everywhere). Rows are read exactly, never past the last one. Every variant writes the ref's
// integers. For binary, d is the number of uint64 words and queries are uint64 rows.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <type_traits>

#include "mmcore/backend.h"

/// Stops the compiler from fusing a product with its add (FMA) in the functions that follow it in a
/// file: the rerank lanes and the l2 keys must round alike in every build and variant ((v - w)^2 is
/// not exact in double), and -march=native, -mfma, aarch64 or clang builds would fuse them. Each
/// quant file that computes them puts it before those functions (the SIMD files: before their
/// rerank section, the last of the file).
#if defined(__clang__)
#define MMCORE_QUANT_NO_FMA _Pragma("clang fp contract(off)")
#elif defined(__GNUC__)
#define MMCORE_QUANT_NO_FMA _Pragma("GCC optimize(\"fp-contract=off\")")
#else
#define MMCORE_QUANT_NO_FMA
#endif

namespace mmcore::detail {

/// Queries a block call scores at once.
constexpr int kQuantGroup = 4;

/// Calls f(std::integral_constant<int, S>{}, g) for the queries [g, g + S) of nq, S <= kQuantGroup:
/// the vector kernels take their query count as a template argument.
template <class F>
inline void quant_for_query_groups(int nq, F&& f) {
  for (int g = 0; g < nq; g += kQuantGroup) {
    switch (nq - g) {
      case 1: f(std::integral_constant<int, 1>{}, g); break;
      case 2: f(std::integral_constant<int, 2>{}, g); break;
      case 3: f(std::integral_constant<int, 3>{}, g); break;
      default: f(std::integral_constant<int, kQuantGroup>{}, g); break;
    }
  }
}

/// Bytes a prepared query of any variant may take, padded to 128 plus slack: `unit` is 2 for int8
/// and int4 (room for d int16) and 8 for binary (d uint64 words). The stride of query g.
inline std::int64_t quant_prepared_stride(std::int32_t d, std::int32_t unit) {
  return (static_cast<std::int64_t>(d) * unit + 127) / 128 * 128 + 64;
}

/// `unit` of quant_prepared_stride.
constexpr std::int32_t kQuantUnitInt = 2;
constexpr std::int32_t kQuantUnitBinary = 8;

/// Where the odd dimensions of a prepared int4 query start: (d + 1) / 2 bytes rounded up to `pad`
/// (the variant's vector width in bytes).
inline std::int64_t quant_int4_half(std::int32_t d, std::int64_t pad) {
  return ((d + 1) / 2 + pad - 1) / pad * pad;
}

/// The int4 queries split by parity for the nibble kernels: query g's even dimensions (the codes'
/// low nibbles) at 0, its odd ones at quant_int4_half(d, pad), zero-padded.
inline void quant_prepare_int4_split(const void* queries, int nq, std::int32_t d, std::uint8_t* prepared,
                                     std::int64_t pad) {
  const std::int64_t stride = quant_prepared_stride(d, kQuantUnitInt), half = quant_int4_half(d, pad);
  for (int g = 0; g < nq; ++g) {
    const std::int8_t* t = static_cast<const std::int8_t*>(queries) + std::int64_t{g} * d;
    auto* e = reinterpret_cast<std::int8_t*>(prepared + g * stride);
    for (std::int64_t i = 0; i < 2 * half; ++i) e[i] = 0;
    for (std::int32_t i = 0; i < d; ++i) e[(i % 2) * half + i / 2] = t[i];
  }
}

/// The int8 queries as bytes for the vpdpbusd / TDPBUSD kernels: query g at g * stride, its d bytes
/// then zeros up to a multiple of `pad` (the variant's vector width in bytes).
inline void quant_prepare_int8_bytes(const void* queries, int nq, std::int32_t d, std::uint8_t* prepared,
                                     std::int64_t pad) {
  const std::int64_t stride = quant_prepared_stride(d, kQuantUnitInt);
  const std::int64_t padded = (std::int64_t{d} + pad - 1) / pad * pad;
  for (int g = 0; g < nq; ++g) {
    const std::int8_t* t = static_cast<const std::int8_t*>(queries) + std::int64_t{g} * d;
    std::uint8_t* w = prepared + g * stride;
    for (std::int32_t i = 0; i < d; ++i) w[i] = static_cast<std::uint8_t>(t[i]);
    for (std::int64_t i = d; i < padded; ++i) w[i] = 0;
  }
}

/// Whether the environment switch `name` (MMCORE_NO_AMX, MMCORE_NO_AVX_VNNI) is set to anything but
/// empty or 0.
inline bool quant_switched_off(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] != '\0' && v[0] != '0';
}

using QuantPrepareFn = void (*)(const void* queries, int nq, std::int32_t d, std::uint8_t* prepared);
using QuantBlockFn = void (*)(const std::uint8_t* codes, std::int64_t nb, std::int32_t d,
                              const std::uint8_t* prepared, int nq, std::int32_t* out, std::int64_t ldo);

/// The vector part of the exact rescoring of nr <= kQuantRerankRows float rows against one float
/// query: lanes[8 * r + u] = the float64 sum, in order of t, of v[t] * q[t] (l2 = false) or
/// (v[t] - q[t])^2 (l2 = true) over the t < d8 (a multiple of 8) with t % 8 == u. The caller adds
/// the 8 lanes in a fixed tree and the dimensions from d8 on (quant_rerank). Every variant gives the
/// ref's doubles bit for bit (no fused multiply-add).
constexpr int kQuantRerankRows = 4;
using QuantRerankFn = void (*)(const float* const* rows, int nr, const float* q, std::int32_t d8, bool l2,
                               double* lanes);

struct QuantCodec {
  QuantPrepareFn prepare = nullptr;
  QuantBlockFn block = nullptr;
  /// The most queries one prepare / block call takes (the driver's group): kQuantGroup, or
  /// kQuantAmxGroup where the AVX-512 variant scores batches with AMX tiles.
  int group = kQuantGroup;
};

#ifdef MMCORE_HAVE_AMX
/// Queries of an AMX block call (two tiles of 16).
constexpr int kQuantAmxGroup = 32;
/// Whether AMX-INT8 tiles run here: the CPU has them, the OS enables their state and grants this
/// process their use (asked once), and MMCORE_NO_AMX is unset or 0.
bool quant_amx_usable();
/// Whether codes of d dimensions suit the AMX kernels: rows of whole 64-byte chunks (int8: d % 64
/// == 0; four_bit: (d + 1) / 2 % 64 == 0).
bool quant_amx_fits(std::int32_t d, bool four_bit);
/// prepare / block (contract above, nq <= kQuantAmxGroup) for int8 or int4 codes that fit. The
/// prepared queries take 32 * d bytes (+32 for odd int4 d) at `prepared`, one layout for the group.
void quant_amx_prepare(const void* queries, int nq, std::int32_t d, bool four_bit, std::uint8_t* prepared);
void quant_amx_block(const std::uint8_t* codes, std::int64_t nb, std::int32_t d, bool four_bit,
                     const std::uint8_t* prepared, int nq, std::int32_t* out, std::int64_t ldo);
#endif

/// The kernels of one variant.
struct QuantKernels {
  QuantCodec int8, int4, binary;
  QuantRerankFn rerank = nullptr;
  Backend backend = Backend::kRef;  ///< the variant these are (after any fallback)
};

QuantKernels quant_kernels_ref();
#ifdef MMCORE_HAVE_AVX2
QuantKernels quant_kernels_avx2();
#endif
#ifdef MMCORE_HAVE_AVXVNNI
/// The avx2 variant with int8 / int4 scored by AVX-VNNI (quant_avxvnni.cpp; the CPU must have it).
QuantKernels quant_kernels_avx_vnni();
#endif
/// Whether the avx2 variant scores int8 / int4 with AVX-VNNI here: compiled, the CPU has it
/// (cpu_has_avx_vnni) and MMCORE_NO_AVX_VNNI is unset or 0 (read once).
bool quant_avx_vnni_usable();
#ifdef MMCORE_HAVE_AVX512
QuantKernels quant_kernels_avx512();
#endif

/// The kernels of `backend`, falling back to the best variant below it that the build and the CPU have.
QuantKernels quant_kernels(Backend backend);

}  // namespace mmcore::detail
