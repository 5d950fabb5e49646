// Resize: Pillow-exact coefficients, the two-pass driver and the per-call variant choice.
//
// What is computed here, shared by every variant (so the variants cannot disagree on it):
// - the filter taps of each axis in float64 exactly as Pillow 13 computes them
//   (libImaging/Resample.c: precompute_coeffs + normalize_coeffs_8bpc), quantised to 22 bits;
// - NEAREST, which Pillow does not resample but maps through its affine transform
//   (Geometry.c ImagingScaleAffine): source index = (int)(a*0.5 + i*a) accumulated in double;
// - the order of the passes (each rounds to uint8): horizontal first, only over the source rows
//   the vertical pass reads, then vertical -- except where Pillow 13 swaps them (see below); an
//   axis that keeps its size is not resampled.
// The row kernels (resize_ref.cpp, resize_avx2.cpp, resize_avx512.cpp) only do the integer multiply-adds.
#include "mmcore/resize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "resize_internal.h"

namespace mmcore {

using resize_detail::Axis;
using resize_detail::kRowOverRead;

namespace {

// --- Pillow's filters (Resample.c). Same expressions, same evaluation order: the float64
// --- results must match to the last bit because they are rounded to 22-bit integers.

double box_filter(double x) {
  return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0;
}

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double sinc_filter(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return std::sin(x) / x;
}

double lanczos_filter(double x) {
  if (-3.0 <= x && x < 3.0) return sinc_filter(x) * sinc_filter(x / 3);
  return 0.0;
}

struct FilterDef {
  double (*fn)(double);
  double support;
};

FilterDef filter_def(Filter f) {
  switch (f) {
    case Filter::kArea: return {box_filter, 0.5};
    case Filter::kBilinear: return {bilinear_filter, 1.0};
    case Filter::kBicubic: return {bicubic_filter, 2.0};
    case Filter::kLanczos3:
    default: return {lanczos_filter, 3.0};
  }
}

}  // namespace

namespace resize_detail {

namespace {

/// Rounds a normalised tap to 22 bits as normalize_coeffs_8bpc does: half away from zero, by truncation.
inline std::int32_t quantise(double v) {
  const double q = v * (1 << kPrecisionBits);
  return static_cast<std::int32_t>(v < 0 ? -0.5 + q : 0.5 + q);
}

/// sin(z) for |z| <= pi: folded to |r| <= pi/2 (sin(pi - z) = sin z), then the Taylor series to
/// r^21 (the next term is under 2e-18). A few ulp from the correctly rounded value, and accurate
/// relative to the value near 0; no libm call, no branch on the data the compiler cannot select.
inline double sin_pi_range(double z) {
  constexpr double kHalfPi = M_PI / 2;
  const double r = z > kHalfPi ? M_PI - z : (z < -kHalfPi ? -M_PI - z : z);
  const double r2 = r * r;
  const double* c = kSinTaylor;
  double p = c[0];
  for (int j = 1; j < 11; ++j) p = p * r2 + c[j];
  return r * p;
}

/// Lanczos3 taps of one output without Pillow's two libm sin() calls per tap: s = sin(pi a / 3)
/// from sin_pi_range at Pillow's own argument fl(fl(a / 3) * pi), sin(pi a) from it by
/// sin(3t) = s (3 - 4 s^2), and the product divided once. Against Pillow's weights the difference
/// is under 5e-15 absolute (a few ulp in s, and 3 * fl(fl(a / 3) * pi) is within 3e-15 of
/// fl(a * pi) for |a| < 3; near a = 0 both forms are accurate relative to the value), so v * 2^22
/// moves by under 1e-7: a quantised tap can differ only where v * 2^22 lies that close to a
/// rounding boundary (a half integer). Returns false, with nothing written that counts, when any
/// tap lies within kGuard of one or the weights sum to under 1/2; the caller then computes the
/// output Pillow's way.
bool lanczos_taps_fast(int xmin, int n, double center, double ss, double* w, std::int32_t* k) {
  constexpr double kGuard = kTapGuard;
  constexpr double kPi2Over3 = M_PI * M_PI / 3;
  double ww = 0.0;
  for (int x = 0; x < n; ++x) {
    const double a = (x + xmin - center + 0.5) * ss;  // Pillow's filter argument, bit for bit
    double v;
    if (!(-3.0 <= a && a < 3.0)) {
      v = 0.0;
    } else if (a == 0.0) {
      v = 1.0;
    } else {
      // sinc(a) sinc(a / 3) = sin(pi a) sin(pi a / 3) / (pi^2 a^2 / 3), one division.
      const double s = sin_pi_range(a / 3 * M_PI), s2 = s * s;
      v = s2 * (3.0 - 4.0 * s2) / (kPi2Over3 * a * a);
    }
    w[x] = v;
    ww += v;
  }
  if (!(ww >= 0.5)) return false;
  const double scale = (1 << kPrecisionBits) / ww;
  for (int x = 0; x < n; ++x) {
    const double q = w[x] * scale;
    const double t = q < 0 ? q - 0.5 : q + 0.5;  // truncated below, as normalize_coeffs_8bpc does
    const double frac = std::fabs(t - static_cast<double>(static_cast<std::int64_t>(t)));
    if (frac < kGuard || frac > 1.0 - kGuard) return false;
    k[x] = static_cast<std::int32_t>(t);
  }
  return true;
}

}  // namespace

void compute_axis(std::int32_t in_size, std::int32_t out_size, Filter f, AxisTaps* t, std::int32_t first,
                  std::int32_t count, TapMath math, LanczosTapsFn fast_taps) {
  const FilterDef fd = filter_def(f);
  // Pillow's box is float32 (0, 0, w, h): in1 - in0 is the float in_size, exact below 2^24.
  const double scale = static_cast<double>(static_cast<float>(in_size)) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = fd.support * filterscale;
  const int ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  const double ss = 1.0 / filterscale;
  const bool fast_lanczos = math == TapMath::kFast && f == Filter::kLanczos3;
  if (fast_taps == nullptr) fast_taps = lanczos_taps_fast;

  // Each output's taps depend on its own index only: a window [first, first + n) of the axis is
  // computed exactly as the whole axis would have it.
  const std::int32_t n = count < 0 ? out_size - first : count;
  t->start.assign(n, 0);
  t->count.assign(n, 0);
  t->coeffs.assign(static_cast<std::size_t>(n) * ksize, 0);
  std::vector<double> w(ksize);
  // Reuse: output xx's taps depend only on (frac(center), xmin - floor(center), count): the
  // filter argument (x + xmin - center + 0.5) * ss is then the same real number before rounding,
  // so the same double (frac is exact by Sterbenz). Such repeats happen when `scale` has a short
  // binary fraction (2x, 1/8, ...); only then is the lookup worth its cost.
  const bool memo = std::floor(scale * 1024.0) == scale * 1024.0;
  std::unordered_map<std::uint64_t, std::int32_t> seen;
  std::vector<double> fracs(memo ? n : 0);
  std::vector<std::int32_t> shifts(memo ? n : 0);
  for (std::int32_t i = 0; i < n; ++i) {
    const std::int32_t xx = first + i;
    const double center = (xx + 0.5) * scale;
    // Truncation toward zero, then clamping: Pillow's "round" of the window ends.
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    t->start[i] = xmin;
    t->count[i] = xmax;
    std::int32_t* k = t->coeffs.data() + static_cast<std::size_t>(i) * ksize;
    if (memo) {
      const double fl = std::floor(center);
      fracs[i] = center - fl;
      shifts[i] = xmin - static_cast<std::int32_t>(fl);
      std::uint64_t bits;
      std::memcpy(&bits, &fracs[i], sizeof bits);
      const std::uint64_t key = bits ^
                                (static_cast<std::uint64_t>(static_cast<std::uint32_t>(shifts[i])) << 20) ^
                                (static_cast<std::uint64_t>(xmax) << 40);
      const auto it = seen.find(key);
      if (it != seen.end()) {
        const std::int32_t o = it->second;
        if (fracs[o] == fracs[i] && shifts[o] == shifts[i] && t->count[o] == xmax) {
          std::memcpy(k, t->coeffs.data() + static_cast<std::size_t>(o) * ksize,
                      sizeof(std::int32_t) * ksize);
          continue;
        }
      } else {
        seen.emplace(key, i);
      }
    }
    if (fast_lanczos && fast_taps(xmin, xmax, center, ss, w.data(), k)) continue;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double v = fd.fn((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    for (int x = 0; x < xmax; ++x) k[x] = quantise(ww != 0.0 ? w[x] / ww : w[x]);
  }
  t->axis = Axis{in_size, n, ksize, t->start.data(), t->count.data(), t->coeffs.data()};
}

std::vector<std::int32_t> nearest_index(std::int32_t in_size, std::int32_t out_size, std::int32_t first,
                                        std::int32_t count) {
  const double a = static_cast<double>(static_cast<float>(in_size)) / out_size;
  const std::int32_t n = count < 0 ? out_size - first : count;
  std::vector<std::int32_t> idx(n);
  double pos = a * 0.5;  // accumulated as Pillow does, so a window runs the sum from 0
  for (std::int32_t i = 0; i < first + n; ++i) {
    const int v = pos < 0.0 ? -1 : static_cast<int>(pos);
    if (i >= first) idx[i - first] = (v >= 0 && v < in_size) ? v : -1;
    pos += a;
  }
  return idx;
}

}  // namespace resize_detail

namespace {

using resize_detail::AxisTaps;
using resize_detail::compute_axis;

// --- NEAREST: Pillow's ImagingScaleAffine. Indices outside the source give black (its fill=1),
// --- which cannot happen for these scales but is kept so the rule is Pillow's, not ours.

template <int C>
void nearest_row(const std::uint8_t* s, std::uint8_t* d, const std::int32_t* xi, std::int32_t w) {
  for (std::int32_t x = 0; x < w; ++x) {
    if (xi[x] < 0) {
      std::memset(d + x * C, 0, C);
    } else {
      const std::uint8_t* p = s + static_cast<std::int64_t>(xi[x]) * C;
      for (int ch = 0; ch < C; ++ch) d[x * C + ch] = p[ch];
    }
  }
}

// dst is the window at (x0, y0) of src resized to full_w x full_h (the whole of it by default).
void resize_nearest(ConstImageView src, ImageView dst, std::int32_t full_w, std::int32_t full_h,
                    std::int32_t x0, std::int32_t y0) {
  using resize_detail::nearest_index;
  const std::vector<std::int32_t> xi = nearest_index(src.width, full_w, x0, dst.width);
  const std::vector<std::int32_t> yi = nearest_index(src.height, full_h, y0, dst.height);
  const std::int64_t row_bytes = static_cast<std::int64_t>(dst.width) * dst.channels;
  for (std::int32_t y = 0; y < dst.height; ++y) {
    std::uint8_t* d = dst.row(y);
    if (yi[y] < 0) {
      std::memset(d, 0, row_bytes);
      continue;
    }
    const std::uint8_t* s = src.row(yi[y]);
    switch (dst.channels) {
      case 1: nearest_row<1>(s, d, xi.data(), dst.width); break;
      case 3: nearest_row<3>(s, d, xi.data(), dst.width); break;
      default: nearest_row<4>(s, d, xi.data(), dst.width); break;
    }
  }
}

// --- the two-pass driver ----------------------------------------------------------------------

using HorizontalFn = void (*)(const std::uint8_t*, std::uint8_t*, std::int32_t, const Axis&, const void*);
using VerticalFn = void (*)(const std::uint8_t* const*, std::int32_t, const std::int32_t*, std::uint8_t*,
                            std::int64_t);

void horizontal_ref_adapter(const std::uint8_t* s, std::uint8_t* d, std::int32_t c, const Axis& ax,
                            const void*) {
  resize_detail::horizontal_row_ref(s, d, c, ax);
}

using Horizontal2Fn = void (*)(const std::uint8_t*, const std::uint8_t*, std::uint8_t*, std::uint8_t*,
                               std::int32_t, const Axis&, const void*);

using TableBytesFn = std::size_t (*)(const Axis&, std::int32_t);
using TableFillFn = void (*)(const Axis&, std::int32_t, void*);

struct Kernels {
  HorizontalFn horizontal;
  Horizontal2Fn horizontal2;  ///< two rows at once; nullptr: call `horizontal` twice
  VerticalFn vertical;
  TableBytesFn table_bytes;  ///< the horizontal kernels' per-call table; nullptr: none
  TableFillFn table_fill;
  resize_detail::LanczosTapsFn lanczos_taps;  ///< nullptr: compute_axis' scalar one
};

Kernels pick_kernels(Backend backend) {
#ifdef MMCORE_HAVE_AVX512
  if (backend == Backend::kAvx512 && backend_supported(Backend::kAvx512)) {
    return {resize_detail::horizontal_row_avx512,        resize_detail::horizontal_rows2_avx512,
            resize_detail::vertical_row_avx512,          resize_detail::horizontal_table_bytes_avx512,
            resize_detail::horizontal_table_fill_avx512, resize_detail::lanczos_taps_avx512};
  }
#endif
#ifdef MMCORE_HAVE_AVX2
  if ((backend == Backend::kAvx2 || backend == Backend::kAvx512) && backend_supported(Backend::kAvx2)) {
    return {resize_detail::horizontal_row_avx2,        resize_detail::horizontal_rows2_avx2,
            resize_detail::vertical_row_avx2,          resize_detail::horizontal_table_bytes_avx2,
            resize_detail::horizontal_table_fill_avx2, resize_detail::lanczos_taps_avx2};
  }
#else
  (void)backend;
#endif
  return {horizontal_ref_adapter, nullptr, resize_detail::vertical_row_ref, nullptr, nullptr, nullptr};
}

/// Aligned per-call scratch (vector of bytes with an aligned window).
struct Scratch {
  std::vector<std::uint8_t> bytes;
  std::uint8_t* get(std::size_t n) {
    bytes.assign(n + 64, 0);
    auto p = reinterpret_cast<std::uintptr_t>(bytes.data());
    return bytes.data() + ((64 - (p & 63)) & 63);
  }
};

}  // namespace

resize_detail::LanczosTapsFn resize_detail::lanczos_taps_for(Backend backend) {
  return pick_kernels(backend).lanczos_taps;
}

namespace {

// dst is the window at (x0, y0) of src resized to full_w x full_h: each output pixel is the one the
// whole resize gives (its taps depend on its own index only), and only the window is computed.
void resize_separable(ConstImageView src, ImageView dst, Filter filter, const Kernels& kern,
                      std::int32_t full_w, std::int32_t full_h, std::int32_t x0, std::int32_t y0) {
  const std::int32_t c = src.channels;
  const bool need_h = full_w != src.width;
  const bool need_v = full_h != src.height;

  AxisTaps h, v;
  using resize_detail::TapMath;
  if (need_h) compute_axis(src.width, full_w, filter, &h, x0, dst.width, TapMath::kFast, kern.lanczos_taps);
  if (need_v) {
    // Square-to-square shares its taps (lanczos' sin() calls are a visible cost on small images).
    if (need_h && src.width == src.height && full_w == full_h && x0 == y0 && dst.width == dst.height) {
      v.start = h.start;
      v.count = h.count;
      v.coeffs = h.coeffs;
      v.axis = Axis{h.axis.in_size, h.axis.out_size, h.axis.ksize,
                    v.start.data(), v.count.data(),  v.coeffs.data()};
    } else {
      compute_axis(src.height, full_h, filter, &v, y0, dst.height, TapMath::kFast, kern.lanczos_taps);
    }
  }

  // Horizontal table (the variant's layout) and a padded copy for rows whose over-read would leave src.
  Scratch table_mem, pad_mem, ring_mem;
  const void* table = nullptr;
  std::uint8_t* pad_rows = nullptr;  // two rows: horizontal2 may need both
  const std::int64_t src_row_bytes = static_cast<std::int64_t>(src.width) * c;
  if (need_h && kern.table_bytes != nullptr) {
    void* t = table_mem.get(kern.table_bytes(h.axis, c));
    kern.table_fill(h.axis, c, t);
    table = t;
    pad_rows = pad_mem.get(2 * static_cast<std::size_t>(src_row_bytes + kRowOverRead));
  }
  // Source row y may be read kRowOverRead bytes past its end when that stays inside src.
  const auto hsrc = [&](std::int32_t y, int slot = 0) -> const std::uint8_t* {
    const std::uint8_t* r = src.row(y);
    if (pad_rows == nullptr || (src.height - 1 - static_cast<std::int64_t>(y)) * src.stride >= kRowOverRead) {
      return r;
    }
    std::uint8_t* p = pad_rows + slot * (src_row_bytes + kRowOverRead);
    std::memcpy(p, r, src_row_bytes);
    return p;
  };
  // Resamples source rows y and y + 1 (two at once where the variant can share work).
  const auto horizontal_pair = [&](std::int32_t y, std::uint8_t* d0, std::uint8_t* d1) {
    if (kern.horizontal2 != nullptr) {
      kern.horizontal2(hsrc(y, 0), hsrc(y + 1, 1), d0, d1, c, h.axis, table);
    } else {
      kern.horizontal(hsrc(y), d0, c, h.axis, table);
      kern.horizontal(hsrc(y + 1), d1, c, h.axis, table);
    }
  };

  if (!need_v) {  // source rows y0.. as they are
    std::int32_t y = 0;
    for (; y + 1 < dst.height; y += 2) horizontal_pair(y0 + y, dst.row(y), dst.row(y + 1));
    if (y < dst.height) kern.horizontal(hsrc(y0 + y), dst.row(y), c, h.axis, table);
    return;
  }

  const std::int64_t out_row_bytes = static_cast<std::int64_t>(dst.width) * c;
  std::vector<const std::uint8_t*> rows(v.axis.ksize);
  if (!need_h) {  // source columns x0.. as they are
    const std::int64_t col = static_cast<std::int64_t>(x0) * c;
    for (std::int32_t y = 0; y < dst.height; ++y) {
      const std::int32_t y0 = v.axis.start[y], n = v.axis.count[y];
      for (std::int32_t t = 0; t < n; ++t) rows[t] = src.row(y0 + t) + col;
      kern.vertical(rows.data(), n, v.axis.coeffs + static_cast<std::int64_t>(y) * v.axis.ksize, dst.row(y),
                    out_row_bytes);
    }
    return;
  }

  // Pillow 13 runs the vertical pass first when the height shrinks more than twice as much (in
  // pixels) as the width: then each output row is one vertical row over the full source width,
  // horizontally resampled at once, so one scratch row suffices.
  const std::int32_t dh = src.height - full_h, dw = src.width - full_w;
  if (dh > 0 && dh > dw * 2) {
    std::uint8_t* mid = ring_mem.get(static_cast<std::size_t>(src_row_bytes + kRowOverRead));
    for (std::int32_t y = 0; y < dst.height; ++y) {
      const std::int32_t y0 = v.axis.start[y], n = v.axis.count[y];
      for (std::int32_t t = 0; t < n; ++t) rows[t] = src.row(y0 + t);
      kern.vertical(rows.data(), n, v.axis.coeffs + static_cast<std::int64_t>(y) * v.axis.ksize, mid,
                    src_row_bytes);
      kern.horizontal(mid, dst.row(y), c, h.axis, table);
    }
    return;
  }

  // Otherwise horizontal first (Pillow's usual order): horizontally resampled rows are made on demand into a
  // ring of ksize + 1 rows (a window never spans more than ksize, plus one row resampled ahead), so the
  // intermediate image stays in cache. Rows are resampled in pairs (the two-row kernel shares its
  // coefficient work): when a window needs one more row, the row after it is made too, while it exists.
  // Windows only move forward, so each source row is resampled at most once, as in Pillow.
  const std::int32_t ring_n = v.axis.ksize + 1;
  std::uint8_t* ring = ring_mem.get(static_cast<std::size_t>(ring_n) * out_row_bytes);
  const auto ring_row = [&](std::int32_t r) { return ring + (r % ring_n) * out_row_bytes; };
  std::int32_t next = 0;  // next source row to resample
  for (std::int32_t y = 0; y < dst.height; ++y) {
    const std::int32_t y0 = v.axis.start[y], n = v.axis.count[y];
    if (next < y0) next = y0;
    for (; next < y0 + n && next + 1 < src.height; next += 2)
      horizontal_pair(next, ring_row(next), ring_row(next + 1));
    if (next < y0 + n) {  // the last source row, alone
      kern.horizontal(hsrc(next), ring_row(next), c, h.axis, table);
      ++next;
    }
    for (std::int32_t t = 0; t < n; ++t) rows[t] = ring_row(y0 + t);
    kern.vertical(rows.data(), n, v.axis.coeffs + static_cast<std::int64_t>(y) * v.axis.ksize, dst.row(y),
                  out_row_bytes);
  }
}

}  // namespace

void resize(ConstImageView src, ImageView dst, Filter filter, Backend backend) {
  // Misuse the header rules out; cheap to refuse here rather than read or write out of bounds.
  const bool channels_ok =
      src.channels == dst.channels && (src.channels == 1 || src.channels == 3 || src.channels == 4);
  if (!channels_ok || src.data == nullptr || dst.data == nullptr || src.width <= 0 || src.height <= 0 ||
      dst.width <= 0 || dst.height <= 0 || src.stride < static_cast<std::int64_t>(src.width) * src.channels ||
      dst.stride < static_cast<std::int64_t>(dst.width) * dst.channels) {
    return;
  }
  if (src.width == dst.width && src.height == dst.height) {  // Pillow copies
    const std::int64_t row_bytes = static_cast<std::int64_t>(src.width) * src.channels;
    for (std::int32_t y = 0; y < src.height; ++y) std::memcpy(dst.row(y), src.row(y), row_bytes);
    return;
  }
  if (filter == Filter::kNearest) {
    resize_nearest(src, dst, dst.width, dst.height, 0, 0);
    return;
  }
  resize_separable(src, dst, filter, pick_kernels(backend), dst.width, dst.height, 0, 0);
}

void resize(ConstImageView src, ImageView dst, Filter filter) {
  resize(src, dst, filter, active_backend());
}

void resize_crop(ConstImageView src, ImageView dst, Filter filter, std::int32_t full_width,
                 std::int32_t full_height, Backend backend) {
  const bool channels_ok =
      src.channels == dst.channels && (src.channels == 1 || src.channels == 3 || src.channels == 4);
  if (!channels_ok || src.data == nullptr || dst.data == nullptr || src.width <= 0 || src.height <= 0 ||
      dst.width <= 0 || dst.height <= 0 || full_width < dst.width || full_height < dst.height ||
      src.stride < static_cast<std::int64_t>(src.width) * src.channels ||
      dst.stride < static_cast<std::int64_t>(dst.width) * dst.channels) {
    return;
  }
  const std::int32_t x0 = (full_width - dst.width) / 2, y0 = (full_height - dst.height) / 2;
  const std::int64_t c = src.channels;
  if (src.width == full_width && src.height == full_height) {  // a crop of the image as it is
    for (std::int32_t y = 0; y < dst.height; ++y)
      std::memcpy(dst.row(y), src.row(y0 + y) + x0 * c, static_cast<std::size_t>(dst.width) * c);
    return;
  }
  if (filter == Filter::kNearest) {
    resize_nearest(src, dst, full_width, full_height, x0, y0);
    return;
  }
  resize_separable(src, dst, filter, pick_kernels(backend), full_width, full_height, x0, y0);
}

void resize_crop(ConstImageView src, ImageView dst, Filter filter, std::int32_t full_width,
                 std::int32_t full_height) {
  resize_crop(src, dst, filter, full_width, full_height, active_backend());
}

}  // namespace mmcore
