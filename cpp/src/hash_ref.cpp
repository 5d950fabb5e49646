// imagehash's average_hash, dhash, dhash_vertical, phash and phash_simple (hash_size 8), and
// Pillow's convert("L").
//
// Contract: with Filter::kLanczos3 the bits equal imagehash 4.3.2 on Pillow 13.0.0 for the same
// 'L' pixels: the resize is mmcore's Pillow-exact one, comparisons on integers are exact, the
// DCT is scipy's to the last bit (dct2_32) and the median and mean round as numpy's do. Scratch
// is a few KiB on the stack; thread safety: reentrant.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "hash_internal.h"
#include "luma_internal.h"
#include "mmcore/hash.h"

namespace mmcore {
namespace detail {

void shrink_gray(ConstImageView gray, std::int32_t w, std::int32_t h, Filter filter, std::uint8_t* dst) {
  ImageView out{dst, w, h, 1, w};
  if (gray.width == w && gray.height == h) {
    for (std::int32_t y = 0; y < h; ++y) std::memcpy(out.row(y), gray.row(y), static_cast<std::size_t>(w));
    return;
  }
  resize(gray, out, filter);
}

}  // namespace detail

namespace {

using detail::shrink_gray;

/// Packs 64 booleans, element 0 first, into a uint64 whose most significant bit is element 0.
template <typename Pred>
std::uint64_t pack64(Pred bit) {
  std::uint64_t h = 0;
  for (int i = 0; i < 64; ++i) h = (h << 1) | (bit(i) ? 1u : 0u);
  return h;
}

/// numpy.median of 64 values: the mean of the 32nd and 33rd smallest.
double median64(const double* v) {
  double s[64];
  std::copy(v, v + 64, s);
  std::nth_element(s, s + 32, s + 64);
  const double hi = s[32];
  const double lo = *std::max_element(s, s + 32);
  return (lo + hi) / 2.0;
}

}  // namespace

void gray_pillow(ConstImageView src, ImageView dst) {
  const detail::LumaRowFn luma = detail::luma_row_fn();  // once per image
  for (std::int32_t y = 0; y < src.height; ++y) {
    const std::uint8_t* s = src.row(y);
    std::uint8_t* d = dst.row(y);
    if (src.channels == 1) {
      std::memcpy(d, s, static_cast<std::size_t>(src.width));
    } else if (src.channels == 3) {
      luma(s, d, src.width);
    } else {
      for (std::int32_t x = 0; x < src.width; ++x, s += 4) d[x] = detail::luma_pillow(s[0], s[1], s[2]);
    }
  }
}

std::uint64_t ahash_gray(ConstImageView gray, Filter filter) {
  std::uint8_t p[64];
  shrink_gray(gray, 8, 8, filter, p);
  int sum = 0;
  for (int v : p) sum += v;
  // pixel > mean, with mean = sum / 64 exact in float64: compare 64 * pixel with the sum.
  return pack64([&](int i) { return 64 * p[i] > sum; });
}

std::uint64_t dhash_gray(ConstImageView gray, Filter filter) {
  std::uint8_t p[72];  // 8 rows of 9
  shrink_gray(gray, 9, 8, filter, p);
  return pack64([&](int i) {
    const int r = i / 8, c = i % 8;
    return p[r * 9 + c + 1] > p[r * 9 + c];
  });
}

std::uint64_t dhash_vertical_gray(ConstImageView gray, Filter filter) {
  std::uint8_t p[72];  // 9 rows of 8
  shrink_gray(gray, 8, 9, filter, p);
  return pack64([&](int i) { return p[i + 8] > p[i]; });
}

std::uint64_t phash_gray(ConstImageView gray, Filter filter) {
  std::uint8_t p[32 * 32];
  shrink_gray(gray, 32, 32, filter, p);
  double x[32 * 32];
  for (int i = 0; i < 32 * 32; ++i) x[i] = p[i];
  // dct(dct(x, axis=0), axis=1)[:8, :8]: every column, then the first 8 rows of the result.
  double cols[32 * 32];  // cols[k * 32 + n]: coefficient k of column n
  double c[32];
  for (int n = 0; n < 32; ++n) {
    detail::dct2_32(x + n, 32, c);
    for (int k = 0; k < 8; ++k) cols[k * 32 + n] = c[k];
  }
  double v[64];
  for (int k = 0; k < 8; ++k) {
    detail::dct2_32(cols + k * 32, 1, c);
    std::copy(c, c + 8, v + k * 8);
  }
  const double med = median64(v);
  return pack64([&](int i) { return v[i] > med; });
}

std::uint64_t phash_simple_gray(ConstImageView gray, Filter filter) {
  std::uint8_t p[32 * 32];
  shrink_gray(gray, 32, 32, filter, p);
  double x[32 * 32];
  for (int i = 0; i < 32 * 32; ++i) x[i] = p[i];
  // dct(x) along the last axis, [:8, 1:9], bit = value > mean.
  double v[64];
  double c[32];
  for (int r = 0; r < 8; ++r) {
    detail::dct2_32(x + r * 32, 1, c);
    std::copy(c + 1, c + 9, v + r * 8);
  }
  const double mean = detail::numpy_mean64(v);
  return pack64([&](int i) { return v[i] > mean; });
}

}  // namespace mmcore
