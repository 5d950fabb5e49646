// Colorhash: imagehash 4.3.2 `colorhash(img, binbits=3)` of a Pillow RGB or L image, bit-exact.
//
// Contract
// - Input: 3 or 4 channels (RGB; alpha ignored, as Pillow's RGBA -> L / HSV conversions do) or
//   1 channel (an 'L' image: its HSV has saturation 0, so every pixel is black or grey).
// - Per pixel, Pillow 13's integer convert('L') and its C rgb2hsv (libImaging/Convert.c), with
//   that code's float / double mix, so H and S are the same uint8 values:
//     black  L < 32;  grey  S < 85;  otherwise coloured: faint S < 170, bright S > 170 (S == 170
//     is coloured but in neither, as in imagehash); coloured pixels go to 6 hue bins with
//     numpy.histogram's edges linspace(0, 255, 7) (last bin closed).
// - 14 values: black and grey fractions of all pixels, then the 6 faint and 6 bright hue counts
//   as fractions of the coloured pixels, each min(7, int(fraction * 8)) in numpy's float64.
//   Each value v gives imagehash's three bits [v // 4 % 8 > 0, v // 2 % 4 > 0, v % 2 > 0] (not
//   plain binary: 4 -> 110), most significant first in the low 42 bits, so that
//   format(h, '011x') == str(imagehash.colorhash(img)).
// - Other binbits (detail::colorhash_values, the sized hashes): values min(2^b - 1, ...) and
//   imagehash's b bits per value, v // 2^(b-1-i) % 2^(b-i) > 0.
// - Invalid input (null data, other channel counts, empty) gives 0. No allocation. Reentrant.
#include "mmcore/hash.h"

#include <algorithm>
#include <cstdint>

#include "hash_internal.h"

namespace mmcore {

namespace {

/// Pillow's convert("L") (ITU-R 601-2 in 16-bit fixed point).
inline int luma(int r, int g, int b) {
  return (19595 * r + 38470 * g + 7471 * b + 0x8000) >> 16;
}

inline int clip8(int v) {
  return v <= 0 ? 0 : (v >= 255 ? 255 : v);
}

/// Pillow's rgb2hsv saturation for max != min: float quotient, scaled in double, truncated.
constexpr int hsv_saturation(int maxc, int minc) {
  const float s = static_cast<float>(maxc - minc) / static_cast<float>(maxc);
  const int v = static_cast<int>(static_cast<double>(s) * 255.0);
  return v >= 255 ? 255 : v;  // v >= 0: the quotient is positive
}

/// For each max channel value m, the smallest spread d = max - min whose saturation reaches 85,
/// 170 and 171 (m + 1 when none does). Saturation never decreases with d at fixed m (division,
/// scaling and truncation are all monotonic), so comparing d with these thresholds classifies a
/// pixel exactly without dividing. Built at compile time by the same expression as Pillow's.
struct SaturationThresholds {
  std::uint16_t reach[3][256] = {};
};

constexpr SaturationThresholds make_saturation_thresholds() {
  SaturationThresholds t;
  constexpr int kLevels[3] = {256 / 3, 256 * 2 / 3, 256 * 2 / 3 + 1};
  for (int k = 0; k < 3; ++k) {
    for (int m = 0; m < 256; ++m) {
      int d = 1;
      while (d <= m && hsv_saturation(m, m - d) < kLevels[k]) ++d;
      t.reach[k][m] = static_cast<std::uint16_t>(d);
    }
  }
  return t;
}

constexpr SaturationThresholds kSaturation = make_saturation_thresholds();

/// Pillow's rgb2hsv hue for max != min. The float / double mix is Pillow's: rc, gc, bc and h
/// are float; `2.0 + rc - bc` and `h / 6.0 + 1.0` are evaluated in double and stored back to
/// float. fmod(x, 1.0) is exact, and x lies in [5/6, 11/6], so it is x or x - 1 (exact too).
inline int hsv_hue(int r, int g, int b, int maxc, int minc) {
  const float cr = static_cast<float>(maxc - minc);
  float h;
  if (r == maxc) {
    h = static_cast<float>(maxc - b) / cr - static_cast<float>(maxc - g) / cr;
  } else if (g == maxc) {
    const float rc = static_cast<float>(maxc - r) / cr;
    const float bc = static_cast<float>(maxc - b) / cr;
    h = static_cast<float>(2.0 + rc - bc);
  } else {
    const float rc = static_cast<float>(maxc - r) / cr;
    const float gc = static_cast<float>(maxc - g) / cr;
    h = static_cast<float>(4.0 + gc - rc);
  }
  const double x = static_cast<double>(h) / 6.0 + 1.0;
  h = static_cast<float>(x >= 1.0 ? x - 1.0 : x);
  return clip8(static_cast<int>(static_cast<double>(h) * 255.0));
}

/// numpy.histogram bin of an integer hue with edges linspace(0, 255, 7) = 42.5 * k, the last
/// bin closed: [0, 42.5) [42.5, 85) ... [212.5, 255].
inline int hue_bin(int h) {
  const int bin = (2 * h) / 85;  // h >= 42.5 k  <=>  2h >= 85 k
  return bin > 5 ? 5 : bin;
}

struct Counts {
  std::int64_t black = 0;
  std::int64_t grey = 0;  ///< not black, S < 85
  std::int64_t faint[6] = {0};
  std::int64_t bright[6] = {0};
};

void count_rgb(ConstImageView img, Counts* c) {
  const int ch = img.channels;
  for (std::int32_t y = 0; y < img.height; ++y) {
    const std::uint8_t* p = img.row(y);
    for (std::int32_t x = 0; x < img.width; ++x, p += ch) {
      const int r = p[0], g = p[1], b = p[2];
      if (luma(r, g, b) < 32) {
        ++c->black;
        continue;
      }
      const int maxc = std::max(r, std::max(g, b));
      const int minc = std::min(r, std::min(g, b));
      const int spread = maxc - minc;  // saturation 0 when 0: below every threshold
      if (spread < kSaturation.reach[0][maxc]) {
        ++c->grey;  // S < 85
      } else if (spread < kSaturation.reach[1][maxc]) {
        ++c->faint[hue_bin(hsv_hue(r, g, b, maxc, minc))];  // S < 170
      } else if (spread >= kSaturation.reach[2][maxc]) {
        ++c->bright[hue_bin(hsv_hue(r, g, b, maxc, minc))];  // S > 170
      }  // S == 170: coloured, in no hue bin
    }
  }
}

void count_gray(ConstImageView img, Counts* c) {
  for (std::int32_t y = 0; y < img.height; ++y) {
    const std::uint8_t* p = img.row(y);
    std::int64_t black = 0;
    for (std::int32_t x = 0; x < img.width; ++x) black += p[x] < 32;
    c->black += black;
    c->grey += img.width - black;
  }
}

/// imagehash's black / grey value: min(2^b - 1, int(mask.mean() * 2^b)), the mean in float64.
inline int fraction_value(std::int64_t count, std::int64_t total, int binbits) {
  const double v =
      static_cast<double>(count) / static_cast<double>(total) * static_cast<double>(1 << binbits);
  return std::min((1 << binbits) - 1, static_cast<int>(v));
}

/// imagehash's hue-bin value: min(2^b - 1, int(counts * 2^b * 1. / c)), int64 product then float64.
inline int hue_value(std::int64_t count, std::int64_t coloured, int binbits) {
  const double v = static_cast<double>(count << binbits) / static_cast<double>(coloured);
  return std::min((1 << binbits) - 1, static_cast<int>(v));
}

}  // namespace

namespace detail {

bool colorhash_values(ConstImageView img, int binbits, int values[14]) {
  if (img.data == nullptr || img.width <= 0 || img.height <= 0 || binbits < 1 || binbits > 16) return false;
  Counts c;
  if (img.channels == 3 || img.channels == 4) {
    count_rgb(img, &c);
  } else if (img.channels == 1) {
    count_gray(img, &c);
  } else {
    return false;
  }
  const std::int64_t total = static_cast<std::int64_t>(img.width) * img.height;
  std::int64_t coloured = total - c.black - c.grey;  // includes S == 170
  if (coloured < 1) coloured = 1;                    // imagehash: c = max(1, mask_colors.sum())
  values[0] = fraction_value(c.black, total, binbits);
  values[1] = fraction_value(c.grey, total, binbits);
  for (int k = 0; k < 6; ++k) {
    values[2 + k] = hue_value(c.faint[k], coloured, binbits);
    values[8 + k] = hue_value(c.bright[k], coloured, binbits);
  }
  return true;
}

bool colorhash_value_bit(int v, int binbits, int i) {
  // imagehash: v // 2**(binbits - i - 1) % 2**(binbits - i) > 0 (binbits 3: 4 -> 110, 5 -> 101)
  return ((v >> (binbits - i - 1)) % (1 << (binbits - i))) > 0;
}

}  // namespace detail

std::uint64_t colorhash_rgb(ConstImageView img) {
  int values[14];
  if (!detail::colorhash_values(img, 3, values)) return 0;
  std::uint64_t bits = 0;
  for (int v : values) {
    for (int i = 0; i < 3; ++i) bits = (bits << 1) | (detail::colorhash_value_bit(v, 3, i) ? 1u : 0u);
  }
  return bits;
}

}  // namespace mmcore
