// PDQ (Meta's 256-bit perceptual hash) on the CPU, bit-exact with the reference C++ hasher.
//
// Contract
// - Every float32 operation is the reference's, in the reference's order: the luma sum (or
//   pdqhash's float64 one, PdqLuma::kPdqhash), the Jarosz box filter's running sums (add the entering sample,
//   then subtract the leaving one; divide by the number of samples summed), the decimation indices (double),
//   the quality metric, and both DCT products with one float accumulator per output, k ascending. Loops are
//   reordered only across independent outputs (many rows or columns advance together), never within one
//   output's chain, so the results are the same bits.
// - No FMA: this file is compiled without -m flags (x86-64 baseline has no FMA, so nothing can
//   be contracted); a build that enables FMA here fails with an #error rather than hash wrong.
//   The colour luma rows come from pdq_luma_avx512.cpp on the avx512 backend, whose products
//   and sums use explicit-rounding intrinsics (never contracted); tests/cpp/test_pdq_luma.cpp
//   checks them against this file's table loop on every colour.
// - A 64x64 input is used as the 64x64 buffer without the blur, as the reference's and
//   pdqhash's non-dihedral entry points do (the reference's dihedral one does not).
// - The median is the 128th smallest of the 256 coefficients (what the reference's Torben
//   selection returns); each dihedral variant is thresholded by its own median.
// - Memory: only the caller's scratch; the DCT matrix is a function-local constant built once
//   (thread-safe initialisation). Reentrant; never throws.
// - Misuse (null data, channels not 1/3/4, stride too small) writes all-zero hashes and quality
//   0; pdq_reference_squash writes nothing and returns false when dst is not 512x512 with
//   src's channel count.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "hash_internal.h"
#include "mmcore/hash.h"
#include "pdq_box_internal.h"
#include "pdq_luma_internal.h"

#if defined(__FMA__) && !defined(__clang__)
#error "hash_pdq.cpp must be built without FMA (-mfma/-march): contraction changes PDQ bits"
#endif
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

namespace mmcore {

namespace {

constexpr int kMinDim = 5;        ///< the reference's MIN_HASHABLE_DIM
constexpr int kGrid = 64;         ///< decimated buffer side
constexpr int kDct = 16;          ///< DCT output side (frequencies 1..16, DC excluded)
constexpr int kJaroszPasses = 2;  ///< two [rows, columns] box passes approximate a tent filter
constexpr int kSquashSide = 512;  ///< the reference hasher's input size cap
constexpr int kRowBlock = 8;      ///< rows filtered together: independent chains hide add latency

/// Scratch floats after the two full-size buffers: 64x64, 16x64, two 16x16, one 16x16 for the
/// median selection.
constexpr std::size_t kFixedScratch =
    static_cast<std::size_t>(kGrid) * kGrid + kDct * kGrid + 3 * kDct * kDct;
/// After them, the AVX2 row box's transposed strip: 8 rows of the image, 32-byte aligned (8 floats
/// of slack).
constexpr std::size_t kStripRows = 8;
constexpr std::size_t kStripAlign = 8;

/// D[i][j] = sqrt(2/64) cos(pi/128 (i+1)(2j+1)), and its transpose. As the reference (and
/// pdqhash): the scale is rounded to float first, the product taken in double, then rounded.
struct DctMatrix {
  float d[kDct][kGrid];
  float dt[kGrid][kDct];
};

const DctMatrix& dct_matrix() {
  static const DctMatrix m = [] {
    DctMatrix r{};
    const float scale = static_cast<float>(std::sqrt(2.0 / 64.0));
    for (int i = 0; i < kDct; ++i) {
      for (int j = 0; j < kGrid; ++j) {
        r.d[i][j] = static_cast<float>(scale * std::cos((M_PI / 2 / 64.0) * (i + 1) * (2 * j + 1)));
        r.dt[j][i] = r.d[i][j];
      }
    }
    return r;
  }();
  return m;
}

bool valid_view(const ConstImageView& v) {
  return v.data != nullptr && v.width > 0 && v.height > 0 &&
         (v.channels == 1 || v.channels == 3 || v.channels == 4) &&
         v.stride >= static_cast<std::int64_t>(v.width) * v.channels;
}

/// Each product coefficient * value is rounded exactly as the reference (or pdqhash) rounds it,
/// so the scalar path reads it from a 256-entry table instead of recomputing it per pixel.
template <typename T>
struct LumaTable {
  T lut[3][256];
};

LumaTable<float> reference_table() {
  LumaTable<float> t;  // the reference: const float coefficient * uint8 -> float32 products
  for (int v = 0; v < 256; ++v) {
    t.lut[0][v] = 0.299f * static_cast<float>(v);
    t.lut[1][v] = 0.587f * static_cast<float>(v);
    t.lut[2][v] = 0.114f * static_cast<float>(v);
  }
  return t;
}

LumaTable<double> pdqhash_table() {
  LumaTable<double> t;  // numpy: uint8 * python float -> float64 products
  for (int v = 0; v < 256; ++v) {
    t.lut[0][v] = v * 0.299;
    t.lut[1][v] = v * 0.587;
    t.lut[2][v] = v * 0.114;
  }
  return t;
}

template <typename T>
void luma_row(const std::uint8_t* s, int c, std::int32_t w, const LumaTable<T>& t, float* o) {
  for (std::int32_t x = 0; x < w; ++x) {
    const std::uint8_t* p = s + static_cast<std::int64_t>(x) * c;
    o[x] = static_cast<float>(t.lut[0][p[0]] + t.lut[1][p[1]] + t.lut[2][p[2]]);
  }
}

/// Float luma into a dense rows x cols buffer: grey is the value; colour as PdqLuma says (a
/// vector row where the backend has one, same bits: pdq_luma_internal.h); alpha is ignored.
void fill_luma(const ConstImageView& img, PdqLuma mode, float* luma) {
  const std::int32_t w = img.width;
  if (img.channels == 1) {
    for (std::int32_t y = 0; y < img.height; ++y) {
      const std::uint8_t* s = img.row(y);
      float* o = luma + static_cast<std::int64_t>(y) * w;
      for (std::int32_t x = 0; x < w; ++x) o[x] = static_cast<float>(s[x]);
    }
    return;
  }
  if (const detail::PdqLumaRowFn row = detail::pdq_luma_row_fn(active_backend())) {
    for (std::int32_t y = 0; y < img.height; ++y)
      row(img.row(y), img.channels, w, mode, luma + std::int64_t{y} * w);
  } else if (mode == PdqLuma::kPdqhash) {
    const LumaTable<double> t = pdqhash_table();
    for (std::int32_t y = 0; y < img.height; ++y)
      luma_row(img.row(y), img.channels, w, t, luma + std::int64_t{y} * w);
  } else {
    const LumaTable<float> t = reference_table();
    for (std::int32_t y = 0; y < img.height; ++y)
      luma_row(img.row(y), img.channels, w, t, luma + std::int64_t{y} * w);
  }
}

using BoxPhases = detail::PdqBoxPhases;
using detail::pdq_box_phases;

/// x / n as the box filters write it. Where n is a power of two it is computed as x * (1 / n): 1 / n
/// is exact, and both forms are the correctly rounded value of the same real number, so the bits
/// are the same, and a multiply issues several times faster than a divide. Reference-mode images
/// (512 x 512 after the squash) have a window of 4, so every full-window output takes this path.
struct Divide {
  float n;
  float operator()(float x) const { return x / n; }
};
struct MultiplyByInverse {
  float inverse;
  float operator()(float x) const { return x * inverse; }
};

/// Calls f(Divide{count}) or, for a power-of-two count, f(MultiplyByInverse{1 / count}).
template <class F>
void with_division_by(int count, F&& f) {
  const float n = static_cast<float>(count);
  if (detail::pdq_box_divides_by_inverse(count)) {
    f(MultiplyByInverse{1.0f / n});
  } else {
    f(Divide{n});
  }
}

/// Where box_row_block's outputs go: every output, rows `cols` apart.
struct RowStore {
  float* out;
  std::int64_t cols;
  static constexpr bool keeps(std::int32_t) { return true; }
  void put(int b, std::int32_t oi, float v) { out[b * cols + oi] = v; }
};

/// Box along `NB` rows at once (`cols` long) so that their running sums form independent
/// dependency chains; per row the float ops are the reference's box1D. Output oi of row b goes to
/// store.put(b, oi, v) where store.keeps(oi) (only those are divided); the store is a copy, kept
/// in registers.
template <int NB, class Store>
void box_row_block(const float* in, std::int32_t cols, const BoxPhases& ph, Store store) {
  float sum[NB];
  for (int b = 0; b < NB; ++b) sum[b] = 0.0f;
  const std::int64_t st = cols;
  int li = 0, ri = 0, count = 0;
  std::int32_t oi = 0;
  for (int t = 0; t < ph.accumulate; ++t, ++ri, ++count) {
    for (int b = 0; b < NB; ++b) sum[b] += in[b * st + ri];
  }
  for (int t = 0; t < ph.grow; ++t, ++ri, ++oi) {
    ++count;
    const float n = static_cast<float>(count);
    for (int b = 0; b < NB; ++b) {
      sum[b] += in[b * st + ri];
      if (store.keeps(oi)) store.put(b, oi, sum[b] / n);
    }
  }
  with_division_by(count, [&](auto divide) {
    for (int t = 0; t < ph.full; ++t, ++li, ++ri, ++oi) {
      for (int b = 0; b < NB; ++b) {
        sum[b] += in[b * st + ri];
        sum[b] -= in[b * st + li];
        if (store.keeps(oi)) store.put(b, oi, divide(sum[b]));
      }
    }
  });
  for (int t = 0; t < ph.shrink; ++t, ++li, ++oi) {
    --count;
    const float m = static_cast<float>(count);
    for (int b = 0; b < NB; ++b) {
      sum[b] -= in[b * st + li];
      if (store.keeps(oi)) store.put(b, oi, sum[b] / m);
    }
  }
}

/// Box along every row: kRowBlock rows at a time, then the rest one by one. With a vector kernel
/// (`strip`: its scratch), 8 rows at a time with each row's sum in a vector lane first.
void box_rows(const float* in, float* out, std::int32_t rows, std::int32_t cols, int window,
              const detail::PdqBoxKernels& k, float* strip) {
  const BoxPhases ph = pdq_box_phases(cols, window);
  std::int32_t r = 0;
  if (k.rows != nullptr) r = k.rows(in, out, rows, cols, ph, strip);
  for (; r + kRowBlock <= rows; r += kRowBlock) {
    const std::int64_t off = static_cast<std::int64_t>(r) * cols;
    box_row_block<kRowBlock>(in + off, cols, ph, RowStore{out + off, cols});
  }
  for (; r < rows; ++r) {
    const std::int64_t off = static_cast<std::int64_t>(r) * cols;
    box_row_block<1>(in + off, cols, ph, RowStore{out + off, cols});
  }
}

/// Box along each column, all columns advancing together row by row: the same per-column chain
/// of float ops as the reference's one-column-at-a-time walk, but reading whole rows (that walk
/// uses one float per cache line and was ~12x slower on a 4032x3024 image). sums: cols floats.
/// With a vector kernel, several columns a vector.
void box_cols(const float* in, float* out, std::int32_t rows, std::int32_t cols, int window, float* sums,
              const detail::PdqBoxKernels& k) {
  const BoxPhases ph = pdq_box_phases(rows, window);
  if (k.cols != nullptr) {
    k.cols(in, out, rows, cols, ph, sums);
    return;
  }
  const auto line = [cols](const float* base, std::int32_t r) {
    return base + static_cast<std::int64_t>(r) * cols;
  };
  for (std::int32_t x = 0; x < cols; ++x) sums[x] = 0.0f;
  std::int32_t li = 0, ri = 0, oi = 0;
  int count = 0;
  for (int t = 0; t < ph.accumulate; ++t, ++ri, ++count) {
    const float* s = line(in, ri);
    for (std::int32_t x = 0; x < cols; ++x) sums[x] += s[x];
  }
  for (int t = 0; t < ph.grow; ++t, ++ri, ++oi) {
    ++count;
    const float n = static_cast<float>(count);
    const float* s = line(in, ri);
    float* o = out + static_cast<std::int64_t>(oi) * cols;
    for (std::int32_t x = 0; x < cols; ++x) {
      sums[x] += s[x];
      o[x] = sums[x] / n;
    }
  }
  with_division_by(count, [&](auto divide) {
    for (int t = 0; t < ph.full; ++t, ++li, ++ri, ++oi) {
      const float* s = line(in, ri);
      const float* l = line(in, li);
      float* o = out + static_cast<std::int64_t>(oi) * cols;
      for (std::int32_t x = 0; x < cols; ++x) {
        sums[x] += s[x];
        sums[x] -= l[x];
        o[x] = divide(sums[x]);
      }
    }
  });
  for (int t = 0; t < ph.shrink; ++t, ++li, ++oi) {
    --count;
    const float n = static_cast<float>(count);
    const float* l = line(in, li);
    float* o = out + static_cast<std::int64_t>(oi) * cols;
    for (std::int32_t x = 0; x < cols; ++x) {
      sums[x] -= l[x];
      o[x] = sums[x] / n;
    }
  }
}

/// The decimation's sample index: cell centre i of 64 over `size` (double, truncated).
int decimation_index(int i, std::int32_t size) {
  return static_cast<int>(((i + 0.5) * size) / kGrid);
}

/// One row's outputs at xs[0..64) only (non-decreasing; one picked twice is stored twice), into
/// out[0..64).
struct PickStore {
  const std::int32_t* xs;
  float* out;
  int p = 0;
  bool keeps(std::int32_t oi) const { return p < kGrid && xs[p] == oi; }
  void put(int, std::int32_t oi, float v) {
    for (; p < kGrid && xs[p] == oi; ++p) out[p] = v;
  }
};

/// The last row pass, storing only the decimation's 64 columns xs: out is rows x 64. With AVX2
/// (`k`, `strip` as box_rows's), 8 rows at a time first.
void box_rows_picked(const float* in, float* out, std::int32_t rows, std::int32_t cols, int window,
                     const std::int32_t* xs, const detail::PdqBoxKernels& k, float* strip) {
  const BoxPhases ph = pdq_box_phases(cols, window);
  std::int32_t r = 0;
  if (k.rows_picked != nullptr) r = k.rows_picked(in, out, rows, cols, ph, xs, strip);
  for (; r < rows; ++r) {
    box_row_block<1>(in + static_cast<std::int64_t>(r) * cols, cols, ph, PickStore{xs, out + r * kGrid});
  }
}

/// The last column pass over those 64 columns (g, rows x 64; box_cols's per-column float ops),
/// storing only the 64 decimation rows ys into out64: the decimated image.
/// (Kept apart from box_cols: an output policy inside box_cols's fused loop, measured, cost the
/// full pass 6 % on AVX-512 and 22 % on the ref backend.)
void box_cols_picked(const float* g, std::int32_t rows, int window, const std::int32_t* ys, float* sums,
                     float* out64) {
  const BoxPhases ph = pdq_box_phases(rows, window);
  const auto line = [g](std::int32_t r) { return g + static_cast<std::int64_t>(r) * kGrid; };
  int next = 0;  // the next decimation row to store
  const auto store = [&](std::int32_t oi, auto value) {
    for (; next < kGrid && ys[next] == oi; ++next) {
      float* o = out64 + next * kGrid;
      for (int x = 0; x < kGrid; ++x) o[x] = value(x);
    }
  };
  for (int x = 0; x < kGrid; ++x) sums[x] = 0.0f;
  std::int32_t li = 0, ri = 0, oi = 0;
  int count = 0;
  for (int t = 0; t < ph.accumulate; ++t, ++ri, ++count) {
    const float* s = line(ri);
    for (int x = 0; x < kGrid; ++x) sums[x] += s[x];
  }
  for (int t = 0; t < ph.grow; ++t, ++ri, ++oi) {
    ++count;
    const float n = static_cast<float>(count);
    const float* s = line(ri);
    for (int x = 0; x < kGrid; ++x) sums[x] += s[x];
    store(oi, [&](int x) { return sums[x] / n; });
  }
  with_division_by(count, [&](auto divide) {
    for (int t = 0; t < ph.full; ++t, ++li, ++ri, ++oi) {
      const float* s = line(ri);
      const float* l = line(li);
      for (int x = 0; x < kGrid; ++x) {
        sums[x] += s[x];
        sums[x] -= l[x];
      }
      store(oi, [&](int x) { return divide(sums[x]); });
    }
  });
  for (int t = 0; t < ph.shrink; ++t, ++li, ++oi) {
    --count;
    const float n = static_cast<float>(count);
    const float* l = line(li);
    for (int x = 0; x < kGrid; ++x) sums[x] -= l[x];
    store(oi, [&](int x) { return sums[x] / n; });
  }
}

/// Point-samples the filtered image at the 64x64 cell centres (indices in double, truncated).
void decimate(const float* in, std::int32_t rows, std::int32_t cols, float* out64) {
  int xs[kGrid];
  for (int j = 0; j < kGrid; ++j) xs[j] = decimation_index(j, cols);
  for (int i = 0; i < kGrid; ++i) {
    const int y = decimation_index(i, rows);
    const float* s = in + static_cast<std::int64_t>(y) * cols;
    for (int j = 0; j < kGrid; ++j) out64[i * kGrid + j] = s[xs[j]];
  }
}

/// The reference's gradient-sum quality: each neighbour difference scaled to 0..100 in float
/// and truncated to int, summed in absolute value, /90, capped at 100.
int quality_of(const float* a) {
  int sum = 0;
  for (int i = 0; i < kGrid - 1; ++i) {
    for (int j = 0; j < kGrid; ++j) {
      const int d = static_cast<int>(((a[i * kGrid + j] - a[(i + 1) * kGrid + j]) * 100) / 255);
      sum += std::abs(d);
    }
  }
  for (int i = 0; i < kGrid; ++i) {
    for (int j = 0; j < kGrid - 1; ++j) {
      const int d = static_cast<int>(((a[i * kGrid + j] - a[i * kGrid + j + 1]) * 100) / 255);
      sum += std::abs(d);
    }
  }
  return std::min(100, sum / 90);
}

/// B = D A D^T (16x16) through T = D A (16x64). Each output's float accumulator adds its 64
/// products with k ascending, as the reference; the loops run across outputs innermost.
void dct_64_to_16(const float* a, float* t, float* b) {
  const DctMatrix& m = dct_matrix();
  for (int i = 0; i < kDct; ++i) {
    float* ti = t + i * kGrid;
    for (int j = 0; j < kGrid; ++j) ti[j] = 0.0f;
    for (int k = 0; k < kGrid; ++k) {
      const float dik = m.d[i][k];
      const float* ak = a + k * kGrid;
      for (int j = 0; j < kGrid; ++j) ti[j] += dik * ak[j];
    }
  }
  for (int i = 0; i < kDct; ++i) {
    float* bi = b + i * kDct;
    const float* ti = t + i * kGrid;
    for (int j = 0; j < kDct; ++j) bi[j] = 0.0f;
    for (int k = 0; k < kGrid; ++k) {
      const float tik = ti[k];
      for (int j = 0; j < kDct; ++j) bi[j] += tik * m.dt[k][j];
    }
  }
}

/// Threshold at the 128th smallest value and pack as PdqHash (reference hex, big-endian).
/// tmp: 256 floats.
void to_bits(const float* b, float* tmp, PdqHash* out) {
  constexpr int n = kDct * kDct;
  std::copy(b, b + n, tmp);
  std::nth_element(tmp, tmp + (n - 1) / 2, tmp + n);
  const float median = tmp[(n - 1) / 2];
  std::uint16_t w[16] = {0};
  for (int k = 0; k < n; ++k) {
    if (b[k] > median) w[k >> 4] = static_cast<std::uint16_t>(w[k >> 4] | (1u << (k & 15)));
  }
  for (int m = 0; m < 16; ++m) {
    out->bytes[2 * (15 - m)] = static_cast<std::uint8_t>(w[m] >> 8);
    out->bytes[2 * (15 - m) + 1] = static_cast<std::uint8_t>(w[m] & 0xff);
  }
}

/// The spec's dihedral transforms of the 16x16 coefficients (index 1..7 of pdq_hash's output).
void dihedral(const float* a, int variant, float* out) {
  for (int i = 0; i < kDct; ++i) {
    for (int j = 0; j < kDct; ++j) {
      const float v = a[i * kDct + j];
      switch (variant) {
        case 1: out[j * kDct + i] = (j & 1) ? v : -v; break;         // rot90
        case 2: out[i * kDct + j] = ((i + j) & 1) ? -v : v; break;   // rot180
        case 3: out[j * kDct + i] = (i & 1) ? v : -v; break;         // rot270
        case 4: out[i * kDct + j] = (i & 1) ? v : -v; break;         // flipx
        case 5: out[i * kDct + j] = (j & 1) ? v : -v; break;         // flipy
        case 6: out[j * kDct + i] = v; break;                        // flip+1
        default: out[j * kDct + i] = ((i + j) & 1) ? -v : v; break;  // flip-1
      }
    }
  }
}

void zero_outputs(bool dihedral_too, PdqHash* hashes, std::int32_t* quality) {
  const int n = dihedral_too ? 8 : 1;
  for (int v = 0; v < n; ++v) hashes[v] = PdqHash{};
  *quality = 0;
}

}  // namespace

namespace detail {

void pdq_dct_matrix(float* d) {
  const DctMatrix& m = dct_matrix();
  std::memcpy(d, m.d, sizeof m.d);
}

void pdq_luma_row_ref(const std::uint8_t* px, std::int32_t channels, std::int32_t width, PdqLuma mode,
                      float* out) {
  if (mode == PdqLuma::kPdqhash) {
    luma_row(px, channels, width, pdqhash_table(), out);
  } else {
    luma_row(px, channels, width, reference_table(), out);
  }
}

PdqBoxKernels pdq_box_kernels(Backend backend) {
  PdqBoxKernels k;
#ifdef MMCORE_HAVE_AVX2
  if (backend >= Backend::kAvx2 && backend_supported(Backend::kAvx2)) {
    k.rows = pdq_box_rows_avx2;
    k.rows_picked = pdq_box_rows_picked_avx2;
    k.cols = pdq_box_cols_avx2;
  }
#else
  (void)backend;
#endif
  return k;
}

PdqLumaRowFn pdq_luma_row_fn(Backend backend) {
#ifdef MMCORE_HAVE_AVX512
  if (backend == Backend::kAvx512 && backend_supported(Backend::kAvx512)) return pdq_luma_row_avx512;
#endif
#ifdef MMCORE_HAVE_AVX2
  if (backend >= Backend::kAvx2 && backend_supported(Backend::kAvx2)) return pdq_luma_row_avx2;
#endif
  (void)backend;
  return nullptr;
}

}  // namespace detail

std::size_t pdq_scratch_floats(std::int32_t width, std::int32_t height) {
  const std::size_t w = width > 0 ? static_cast<std::size_t>(width) : 0;
  const std::size_t h = height > 0 ? static_cast<std::size_t>(height) : 0;
  return 2 * w * h + w + kFixedScratch + kStripRows * w + kStripAlign;
}

void pdq_hash(ConstImageView img, bool dihedral_too, float* scratch, PdqHash* hashes, std::int32_t* quality,
              PdqLuma luma) {
  if (!valid_view(img) || scratch == nullptr || img.width < kMinDim || img.height < kMinDim) {
    zero_outputs(dihedral_too, hashes, quality);
    return;
  }
  const std::int32_t rows = img.height;
  const std::int32_t cols = img.width;
  const std::size_t full = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
  float* buf1 = scratch;
  float* buf2 = buf1 + full;
  float* sums = buf2 + full;
  float* a64 = sums + cols;
  float* t16x64 = a64 + kGrid * kGrid;
  float* b16 = t16x64 + kDct * kGrid;
  float* aux = b16 + kDct * kDct;
  float* tmp = aux + kDct * kDct;
  const detail::PdqBoxKernels box = detail::pdq_box_kernels(active_backend());
  float* strip = nullptr;  // the vector row box's scratch (box_rows), 32-byte aligned
  if (box.rows != nullptr || box.rows_picked != nullptr) {
    const auto at = reinterpret_cast<std::uintptr_t>(tmp + kDct * kDct);
    strip = reinterpret_cast<float*>((at + 31) / 32 * 32);
  }

  if (rows == kGrid && cols == kGrid) {
    // The reference (and pdqhash) take a 64x64 input as already downsampled: no blur. Its
    // dihedral entry point lacks this shortcut; hashes[0] is kept independent of `dihedral`.
    fill_luma(img, luma, a64);
  } else {
    fill_luma(img, luma, buf1);
    // Window sizes: ceil(dim / 128), i.e. the reference's (dim + 2*64 - 1) / (2*64).
    const int window_rows = (cols + 2 * kGrid - 1) / (2 * kGrid);
    const int window_cols = (rows + 2 * kGrid - 1) / (2 * kGrid);
    for (int pass = 0; pass < kJaroszPasses; ++pass) {
      if (pass + 1 == kJaroszPasses && cols >= kGrid) {
        // The last pass computes only what the decimation reads (the same bits as the full pass
        // then decimate, for a fraction of the work): the 64 decimation columns of every row's box
        // (rows x 64 in buf2), then those columns' boxes at the 64 decimation rows, into a64.
        std::int32_t xs[kGrid], ys[kGrid];
        for (int j = 0; j < kGrid; ++j) {
          xs[j] = decimation_index(j, cols);
          ys[j] = decimation_index(j, rows);
        }
        box_rows_picked(buf1, buf2, rows, cols, window_rows, xs, box, strip);
        box_cols_picked(buf2, rows, window_cols, ys, sums, a64);
      } else {
        box_rows(buf1, buf2, rows, cols, window_rows, box, strip);
        box_cols(buf2, buf1, rows, cols, window_cols, sums, box);
        if (pass + 1 == kJaroszPasses) decimate(buf1, rows, cols, a64);
      }
    }
  }
  *quality = quality_of(a64);
  dct_64_to_16(a64, t16x64, b16);
  to_bits(b16, tmp, &hashes[0]);
  if (dihedral_too) {
    for (int v = 1; v < 8; ++v) {
      dihedral(b16, v, aux);
      to_bits(aux, tmp, &hashes[v]);
    }
  }
}

namespace {

template <int C>
void squash_row(const std::uint8_t* s, const std::int32_t* xs, std::uint8_t* o) {
  for (int x = 0; x < kSquashSide; ++x) std::memcpy(o + x * C, s + static_cast<std::int64_t>(xs[x]) * C, C);
}

}  // namespace

void detail::pdq_squash_columns(std::int32_t src_width, std::int32_t* xs) {
  for (int x = 0; x < kSquashSide; ++x) {
    xs[x] = static_cast<std::int32_t>(static_cast<std::int64_t>(x) * src_width / kSquashSide);
  }
}

std::int32_t detail::pdq_squash_rows_below(std::int32_t src_height, std::int32_t y) {
  // floor(r * h / 512) >= y  <=>  r * h >= 512 * y  <=>  r >= ceil(512 * y / h)
  const std::int64_t r = (static_cast<std::int64_t>(kSquashSide) * y + src_height - 1) / src_height;
  return static_cast<std::int32_t>(std::min<std::int64_t>(r, kSquashSide));
}

void detail::pdq_reference_squash_rows(ConstImageView src, ImageView dst, const std::int32_t* xs,
                                       std::int32_t y_begin, std::int32_t y_end) {
  for (std::int32_t y = y_begin; y < y_end; ++y) {
    const std::int32_t sy =
        static_cast<std::int32_t>(static_cast<std::int64_t>(y) * src.height / kSquashSide);
    const std::uint8_t* s = src.row(sy);
    std::uint8_t* o = dst.row(y);
    switch (src.channels) {  // a fixed-size copy per pixel (a variable one is a library call each)
      case 1: squash_row<1>(s, xs, o); break;
      case 3: squash_row<3>(s, xs, o); break;
      default: squash_row<4>(s, xs, o); break;
    }
  }
}

bool pdq_reference_squash(ConstImageView src, ImageView dst) {
  if (!valid_view(src) || (src.width <= kSquashSide && src.height <= kSquashSide)) return false;
  if (dst.data == nullptr || dst.width != kSquashSide || dst.height != kSquashSide ||
      dst.channels != src.channels || dst.stride < static_cast<std::int64_t>(kSquashSide) * dst.channels) {
    return false;
  }
  std::int32_t xs[kSquashSide];
  detail::pdq_squash_columns(src.width, xs);
  detail::pdq_reference_squash_rows(src, dst, xs, 0, kSquashSide);
  return true;
}

}  // namespace mmcore
