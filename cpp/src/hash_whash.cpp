// wHash: imagehash 4.3.2 `whash(img)` with its defaults (hash_size 8, mode 'haar',
// remove_max_haar_ll=True), bit-exact with PyWavelets' float64 Haar transforms.
//
// Contract
// - Input: one channel (Pillow's 'L' image). scale = max(2**int(log2(min(W, H))), 8); the image
//   is resized to scale x scale with `filter` (kLanczos3 is imagehash's LANCZOS), divided by 255.
// - Haar wavedec2 at level log2(scale), approximation zeroed, waverec2, then wavedec2 at level
//   log2(scale) - 3; bit = LL > median of the 64 (mean of the 32nd and 33rd smallest), row-major,
//   element [0,0] in bit 63.
// - Every coefficient is computed with PyWavelets' own expression, so the float64 results are
//   identical (checked against PyWavelets 1.8.0 on random arrays, every value to the last bit):
//     forward  (dwt along one axis, pair x0 = x[2k], x1 = x[2k+1]):
//              a = c*x0 + c*x1,  d = c*x0 - c*x1   (each product rounded, then the sum)
//     inverse  (idwt):  x0 = c*a + c*d,  x1 = c*a - c*d
//   with c = 0x1.6a09e667f3bcdp-1 (pywt's haar taps, all four filters +-c). dwt2 goes over axis 0
//   (rows paired) then axis 1; idwt2 over axis 1 then axis 0. With two-term sums the order of the
//   operands does not matter (IEEE addition is commutative), the per-product rounding does: no
//   product may be fused into an FMA (see the pragma and scale_row below).
// - Invalid input (null data, not 1 channel, empty) gives 0. Allocates scale^2 doubles and a
//   scale x scale uint8 image; may throw std::bad_alloc. Reentrant.
#include "mmcore/hash.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "hash_internal.h"

// a*b + c*d contracted into fma(a, b, c*d) rounds differently from pywt (built without FMA).
// x86-64 baseline has no FMA, but aarch64 and -march=native builds do. (Not enough on its own
// for GCC's vectoriser: see scale_row below.)
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace mmcore {

namespace {

/// pywt.Wavelet('haar') taps: 1/sqrt(2) rounded to float64.
constexpr double kHaar = 0x1.6a09e667f3bcdp-1;

// The transforms run in place on a scale x scale array in the interleaved ("lifting") layout:
// at level spacing s the current band is the grid (i*s, j*s); one forward level writes the
// low-pass result at even grid positions and the high-pass at odd ones, so no scratch is needed
// and the next level continues on the grid of spacing 2s.

// Every operation of a level touches one pair of grid rows (2k s, (2k+1) s) only: axis 0 pairs
// the two rows, axis 1 pairs columns within a row. So a level runs pair by pair, both axes while
// the pair is in cache, and at the finest level (s = 1, 32 MB at scale 2048) the reconstruction's
// last inverse step and the second decomposition's first step share one sweep.

// Each 1-D Haar step multiplies both inputs of every pair by c, stores the products, then forms
// sum and difference in a separate loop. Keeping the multiply in its own loop is what makes the
// rounding pywt's on every compiler: GCC 12 with -mfma turns an in-loop [p0 + p1, p0 - p1] into
// vfmsubadd even under -ffp-contract=off; a product that went through memory cannot be fused.

/// r[j] *= c for the grid points j = 0, s, 2s, ... < n of one row.
inline void scale_row(double* r, std::int64_t n, std::int64_t s) {
  for (std::int64_t j = 0; j < n; j += s) r[j] *= kHaar;
}

/// Axis-0 butterfly between two grid rows: (r0, r1) <- (r0 + r1, r0 - r1).
inline void butterfly_rows(double* r0, double* r1, std::int64_t n, std::int64_t s) {
  for (std::int64_t j = 0; j < n; j += s) {
    const double x0 = r0[j];
    const double x1 = r1[j];
    r0[j] = x0 + x1;
    r1[j] = x0 - x1;
  }
}

/// Axis-1 butterfly within one grid row: (r[j], r[j + s]) <- (sum, difference), j = 0, 2s, ...
inline void butterfly_columns(double* r, std::int64_t n, std::int64_t s) {
  for (std::int64_t j = 0; j < n; j += 2 * s) {
    const double x0 = r[j];
    const double x1 = r[j + s];
    r[j] = x0 + x1;
    r[j + s] = x0 - x1;
  }
}

/// One pair of grid rows (spacing s, n = scale values per row) through one dwt2 level: axis 0
/// (a = c*x0 + c*x1, d = c*x0 - c*x1 down the pair), then axis 1 along each row.
inline void dwt2_pair(double* r0, double* r1, std::int64_t n, std::int64_t s) {
  scale_row(r0, n, s);
  scale_row(r1, n, s);
  butterfly_rows(r0, r1, n, s);
  scale_row(r0, n, s);
  scale_row(r1, n, s);
  butterfly_columns(r0, n, s);
  butterfly_columns(r1, n, s);
}

/// The inverse of dwt2_pair at the same spacing (x0 = c*a + c*d, x1 = c*a - c*d): axis 1, then
/// axis 0, pywt's idwt2 order.
inline void idwt2_pair(double* r0, double* r1, std::int64_t n, std::int64_t s) {
  scale_row(r0, n, s);
  scale_row(r1, n, s);
  butterfly_columns(r0, n, s);
  butterfly_columns(r1, n, s);
  scale_row(r0, n, s);
  scale_row(r1, n, s);
  butterfly_rows(r0, r1, n, s);
}

/// One dwt2 (or idwt2) level over the whole scale x scale array at grid spacing s.
void dwt2_level(double* a, std::int64_t scale, std::int64_t s) {
  for (std::int64_t i = 0; i < scale; i += 2 * s) dwt2_pair(a + i * scale, a + (i + s) * scale, scale, s);
}
void idwt2_level(double* a, std::int64_t scale, std::int64_t s) {
  for (std::int64_t i = 0; i < scale; i += 2 * s) idwt2_pair(a + i * scale, a + (i + s) * scale, scale, s);
}

/// imagehash's image_scale: max(2**int(numpy.log2(min(W, H))), hash_size). For a positive int32 n the
/// float64 log2 is never within rounding of the next integer (log2(2^k - 1) < k by ~2^-k, far
/// more than an ulp of k), so int(log2(n)) is the index of n's highest set bit.
std::int64_t whash_scale(std::int32_t width, std::int32_t height, std::int32_t hash_size) {
  std::uint32_t n = static_cast<std::uint32_t>(std::min(width, height));
  int k = 0;
  while (n > 1) {
    n >>= 1;
    ++k;
  }
  return std::max<std::int64_t>(std::int64_t{1} << k, hash_size);
}

/// The whole float64 pipeline on the resized pixels u (scale x scale, scale >= hash_size, both
/// powers of 2), result in p (scale x scale, interleaved layout): the hash_size x hash_size LL
/// ends on the grid of spacing ll_step = scale / hash_size.
void whash_transform(const std::uint8_t* u, std::int64_t scale, std::int64_t ll_step, double* p) {
  // remove_max_haar_ll: full decomposition, drop the 1x1 approximation, reconstruct; then
  // wavedec2 at level log2(scale / hash_size). Level 1 of the first decomposition also converts the
  // pixels (numpy's `/ 255.`); the last reconstruction step and the first step of the second
  // decomposition run together.
  for (std::int64_t i = 0; i < scale; i += 2) {
    double* r0 = p + i * scale;
    double* r1 = r0 + scale;
    const std::uint8_t* u0 = u + i * scale;
    for (std::int64_t j = 0; j < scale; ++j) {
      r0[j] = u0[j] / 255.0;
      r1[j] = u0[scale + j] / 255.0;
    }
    dwt2_pair(r0, r1, scale, 1);
  }
  for (std::int64_t s = 2; s < scale; s *= 2) dwt2_level(p, scale, s);
  p[0] = 0.0;
  for (std::int64_t s = scale / 2; s >= 2; s /= 2) idwt2_level(p, scale, s);
  for (std::int64_t i = 0; i < scale; i += 2) {
    idwt2_pair(p + i * scale, p + (i + 1) * scale, scale, 1);
    if (ll_step > 1) dwt2_pair(p + i * scale, p + (i + 1) * scale, scale, 1);
  }
  for (std::int64_t s = 2; s < ll_step; s *= 2) dwt2_level(p, scale, s);
}

}  // namespace

namespace detail {

bool whash_ll(ConstImageView gray, Filter filter, std::int32_t hash_size, std::vector<double>* ll) {
  if (gray.data == nullptr || gray.channels != 1 || gray.width <= 0 || gray.height <= 0 || hash_size < 1 ||
      (hash_size & (hash_size - 1)) != 0) {
    return false;
  }
  const std::int64_t scale = whash_scale(gray.width, gray.height, hash_size);

  std::vector<std::uint8_t> small(static_cast<std::size_t>(scale * scale));
  const std::int32_t side = static_cast<std::int32_t>(scale);
  resize(gray, ImageView{small.data(), side, side, 1, scale}, filter);

  std::vector<double> a(small.size());
  const double* p = a.data();
  const std::int64_t ll_step = scale / hash_size;  // the final approximation's grid spacing
  whash_transform(small.data(), scale, ll_step, a.data());

  ll->resize(static_cast<std::size_t>(hash_size) * hash_size);
  for (std::int32_t i = 0; i < hash_size; ++i)
    for (std::int32_t j = 0; j < hash_size; ++j)
      (*ll)[static_cast<std::size_t>(i) * hash_size + j] = p[i * ll_step * scale + j * ll_step];
  return true;
}

}  // namespace detail

std::uint64_t whash_gray(ConstImageView gray, Filter filter) {
  std::vector<double> ll;
  if (!detail::whash_ll(gray, filter, 8, &ll)) return 0;
  double sorted[64];
  std::copy(ll.begin(), ll.end(), sorted);
  std::sort(sorted, sorted + 64);
  const double median = (sorted[31] + sorted[32]) / 2.0;  // numpy.median: mean of the middle two

  std::uint64_t bits = 0;
  for (int k = 0; k < 64; ++k) bits = (bits << 1) | (ll[k] > median ? 1u : 0u);
  return bits;
}

}  // namespace mmcore
