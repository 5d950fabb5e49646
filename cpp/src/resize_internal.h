// Internal contract between resize.cpp (planning, coefficients, pass driver) and the row kernels
// of each CPU variant (resize_ref.cpp, resize_avx2.cpp, resize_avx512.cpp).
//
// The arithmetic every variant must reproduce exactly (Pillow 13, libImaging/Resample.c):
//   acc = 1 << (kPrecisionBits - 1);  acc += pixel * coeff for each tap (int32, wrapping);
//   out = clamp(acc >> kPrecisionBits, 0, 255)   (arithmetic shift).
// Integer addition modulo 2^32 is associative, so a variant may sum the taps in any order and
// split a coefficient into parts (hi * 2^s + lo) and still give bit-identical results.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "hd_internal.h"
#include "mmcore/backend.h"
#include "mmcore/resize.h"

namespace mmcore::resize_detail {

constexpr int kPrecisionBits = 32 - 8 - 2;  ///< Pillow's PRECISION_BITS
constexpr std::int32_t kRoundHalf = 1 << (kPrecisionBits - 1);

/// Bytes a horizontal row kernel may read past the last pixel of a source row (zero-weighted
/// lanes of a vector load). The driver guarantees they are readable (it copies the few rows
/// where they would not be).
constexpr std::int64_t kRowOverRead = 64;

/// One axis of the separable filter: output i reads `count[i]` source pixels from `start[i]`
/// with weights `coeffs[i * ksize + t]` (22 fractional bits; entries past count[i] are zero).
struct Axis {
  std::int32_t in_size = 0;
  std::int32_t out_size = 0;
  std::int32_t ksize = 0;
  const std::int32_t* start = nullptr;
  const std::int32_t* count = nullptr;
  const std::int32_t* coeffs = nullptr;
};

/// Clamps a fixed-point accumulator to a byte, like Pillow's clip8. Shared with cuda/hash.cu.
MMCORE_HD inline std::uint8_t clip8(std::int32_t acc) {
  const std::int32_t v = acc >> kPrecisionBits;
  return static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

/// One tap: acc + p * k, wrapping modulo 2^32. Pillow's sums never overflow for normalised
/// filters, but the contract is modulo 2^32 so that split-coefficient SIMD variants are provably
/// identical. Shared with cuda/hash.cu.
MMCORE_HD inline std::int32_t mac(std::int32_t acc, std::uint8_t p, std::int32_t k) {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(acc) +
                                   static_cast<std::uint32_t>(p) * static_cast<std::uint32_t>(k));
}

/// One axis' taps (owning); `axis` points into the vectors.
struct AxisTaps {
  std::vector<std::int32_t> start, count, coeffs;
  Axis axis;
};

/// How compute_axis evaluates the filter: kPillow with Pillow's own expressions (two libm sin()
/// calls per lanczos tap), kFast (the default) without libm, falling back to kPillow for any output
/// whose quantised taps the difference could move. Both give the same integers; tests check it.
enum class TapMath { kPillow, kFast };

/// Pillow's taps for resampling in_size pixels to out_size with `filter` (not kNearest), for the
/// outputs [first, first + count) (all by default; taps.axis.out_size is count):
/// precompute_coeffs + normalize_coeffs_8bpc in float64, quantised to 22 bits. The GPU resize
/// uploads these same tables, so every backend rounds the same coefficients.
///
/// `fast_taps`: kFast's lanczos3 taps of one output (the variant's; nullptr: the scalar one).
using LanczosTapsFn = bool (*)(int xmin, int n, double center, double ss, double* w, std::int32_t* k);
void compute_axis(std::int32_t in_size, std::int32_t out_size, Filter filter, AxisTaps* taps,
                  std::int32_t first = 0, std::int32_t count = -1, TapMath math = TapMath::kFast,
                  LanczosTapsFn fast_taps = nullptr);

/// The variant's LanczosTapsFn for `backend` (as resize picks it; nullptr: the scalar one).
LanczosTapsFn lanczos_taps_for(Backend backend);

/// kFast's guard, in units of the 22-bit result: an output with a tap whose scaled value lies
/// closer than this to a rounding boundary (a half integer) is computed Pillow's way. 100x the
/// bound on the fast evaluations' difference from Pillow's (compute_axis in resize.cpp).
constexpr double kTapGuard = 1e-5;

/// kFast's sin(r) for |r| <= pi/2: r * sum_j kSinTaylor[j] r^(2 (10 - j)), the Taylor series to
/// r^21 (the next term is under 2e-18): 1 / (2j + 1)!, alternating in sign, highest first (Horner).
constexpr double kSinTaylor[11] = {1.0 / 51090942171709440000.0,
                                   -1.0 / 121645100408832000.0,
                                   1.0 / 355687428096000.0,
                                   -1.0 / 1307674368000.0,
                                   1.0 / 6227020800.0,
                                   -1.0 / 39916800.0,
                                   1.0 / 362880.0,
                                   -1.0 / 5040.0,
                                   1.0 / 120.0,
                                   -1.0 / 6.0,
                                   1.0};

/// NEAREST's source index of each output pixel (Pillow's affine rule; -1 gives black, which these
/// scales never produce). The GPU resize uploads this table too.
std::vector<std::int32_t> nearest_index(std::int32_t in_size, std::int32_t out_size, std::int32_t first = 0,
                                        std::int32_t count = -1);

// --- scalar reference (resize_ref.cpp) -------------------------------------------------------

/// One output row of the horizontal pass: dst[x*c + ch] = sum_t src[(start[x]+t)*c + ch] * k.
void horizontal_row_ref(const std::uint8_t* src, std::uint8_t* dst, std::int32_t channels, const Axis& ax);

/// One output row of the vertical pass over `bytes` bytes: dst[i] = sum_t rows[t][i] * k[t].
void vertical_row_ref(const std::uint8_t* const* rows, std::int32_t taps, const std::int32_t* k,
                      std::uint8_t* dst, std::int64_t bytes);

// --- shared by the SIMD variants' horizontal tables ---------------------------------------------

/// A coefficient k split as hi * 2^kSplit + lo with lo in [0, 2^kSplit) and hi = k >> kSplit: both
/// parts are int16 for |k| < 2^30, so a u8 pixel times either is an exact int16 x int16 product, and
/// (sum(p * hi) << kSplit) + sum(p * lo) is sum(p * k) modulo 2^32, the ref's wrapping sum.
constexpr int kSplit = 15;
inline std::int16_t coeff_hi(std::int32_t k) {
  return static_cast<std::int16_t>(k >> kSplit);
}
inline std::int16_t coeff_lo(std::int32_t k) {
  return static_cast<std::int16_t>(k & ((1 << kSplit) - 1));
}

/// The most taps any output of the axis reads.
inline std::int32_t widest_window(const Axis& ax) {
  std::int32_t widest = 1;
  for (std::int32_t x = 0; x < ax.out_size; ++x) widest = widest > ax.count[x] ? widest : ax.count[x];
  return widest;
}

/// Where a kernel reading `span` taps from `start` starts: moved left (the leading taps then get
/// zero weights) rather than read past the row end.
inline std::int32_t window_first(std::int32_t start, std::int32_t span, std::int32_t in_size) {
  if (start + span <= in_size) return start;
  return in_size - span > 0 ? in_size - span : 0;
}

// --- AVX2 (resize_avx2.cpp; only called when the CPU has AVX2) --------------------------------

/// Bytes of the per-call, per-axis table horizontal_row_avx2 needs (coefficients re-laid out).
std::size_t horizontal_table_bytes_avx2(const Axis& ax, std::int32_t channels);
/// Fills that table (32-byte aligned `table`).
void horizontal_table_fill_avx2(const Axis& ax, std::int32_t channels, void* table);
/// Same contract as horizontal_row_ref; may read kRowOverRead bytes past the row.
void horizontal_row_avx2(const std::uint8_t* src, std::uint8_t* dst, std::int32_t channels, const Axis& ax,
                         const void* table);
/// Two rows at once (shares coefficient work between them); same contract per row.
void horizontal_rows2_avx2(const std::uint8_t* src0, const std::uint8_t* src1, std::uint8_t* dst0,
                           std::uint8_t* dst1, std::int32_t channels, const Axis& ax, const void* table);
/// kFast's lanczos3 taps of one output, four at a time (a LanczosTapsFn; the AVX-512 one's math
/// on 256-bit vectors, guarded the same way).
bool lanczos_taps_avx2(int xmin, int n, double center, double ss, double* w, std::int32_t* k);
/// Same contract as vertical_row_ref; reads only the `bytes` bytes of each row.
void vertical_row_avx2(const std::uint8_t* const* rows, std::int32_t taps, const std::int32_t* k,
                       std::uint8_t* dst, std::int64_t bytes);

// --- AVX-512 BW + VNNI (resize_avx512.cpp; only called when the CPU has the avx512 backend) ----
// Same contracts as the AVX2 functions above, with their own table layout (1 channel: the AVX2
// table and kernel).

std::size_t horizontal_table_bytes_avx512(const Axis& ax, std::int32_t channels);
void horizontal_table_fill_avx512(const Axis& ax, std::int32_t channels, void* table);
void horizontal_row_avx512(const std::uint8_t* src, std::uint8_t* dst, std::int32_t channels, const Axis& ax,
                           const void* table);
void horizontal_rows2_avx512(const std::uint8_t* src0, const std::uint8_t* src1, std::uint8_t* dst0,
                             std::uint8_t* dst1, std::int32_t channels, const Axis& ax, const void* table);
void vertical_row_avx512(const std::uint8_t* const* rows, std::int32_t taps, const std::int32_t* k,
                         std::uint8_t* dst, std::int64_t bytes);
/// kFast's lanczos3 taps of one output, eight at a time (a LanczosTapsFn; the scalar one's math
/// with FMA, within the same bound of Pillow's values, guarded the same way).
bool lanczos_taps_avx512(int xmin, int n, double center, double ss, double* w, std::int32_t* k);

}  // namespace mmcore::resize_detail
