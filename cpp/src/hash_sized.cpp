// imagehash's hashes at other sizes than its defaults: hash_size for aHash, dHash,
// dHash-vertical, pHash, pHash-simple and wHash, highfreq_factor for pHash and pHash-simple,
// binbits for colorhash. hash_ref.cpp, hash_whash.cpp and hash_colorhash.cpp are the default
// sizes' kernels; these are the same definitions with the sizes as parameters.
//
// Contract: with Filter::kLanczos3 the bits equal imagehash 4.3.2's (Pillow 13.0.0, scipy's
// pocketfft, numpy's median and mean) for the same 'L' / RGB pixels:
// - aHash: hash_size^2 pixels against their float64 mean (compared exactly in integers).
// - dHash: (hash_size + 1) x hash_size, P[:, 1:] > P[:, :-1]; vertical: hash_size x (hash_size + 1).
// - pHash: N = hash_size x highfreq_factor, dct(dct(P, axis=0), axis=1)[:hash_size, :hash_size]
//   against numpy.median (the middle value, or the mean of the middle two); the DCT is
//   detail::DctPlan, scipy's to the last bit for every N whose prime factors are 2, 3 and 5.
// - pHash-simple: dct(P)[:hash_size, 1:hash_size + 1] (rows) against numpy's mean: the
//   hash_size^2 values summed in row-major order by numpy's pairwise summation, then divided.
// - wHash: detail::whash_ll at hash_size, against numpy.median.
// - colorhash: detail::colorhash_values at binbits, binbits bits per value.
// The bits are packed as one big-endian integer (HashRecord::wide). No float products here
// (sums, comparisons, one division: nothing to contract; the DCT's live in hash_dct.cpp).
// Allocates (the resized image, the transforms' buffers); reentrant.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "hash_internal.h"
#include "mmcore/hash.h"

namespace mmcore {
namespace {

/// A one-channel image resized to w x h (contiguous).
std::vector<std::uint8_t> shrink(ConstImageView gray, std::int32_t w, std::int32_t h, Filter filter) {
  std::vector<std::uint8_t> out(static_cast<std::size_t>(w) * h);
  detail::shrink_gray(gray, w, h, filter, out.data());
  return out;
}

/// bits (one bool per element, element 0 the most significant) as a big-endian integer.
void pack(const std::vector<bool>& bits, std::vector<std::uint8_t>* out) {
  const std::size_t bytes = (bits.size() + 7) / 8;
  const std::size_t pad = bytes * 8 - bits.size();
  out->assign(bytes, 0);
  for (std::size_t i = 0; i < bits.size(); ++i) {
    if (bits[i]) (*out)[(pad + i) / 8] |= static_cast<std::uint8_t>(0x80u >> ((pad + i) % 8));
  }
}

/// numpy's pairwise summation of n float64 values (its blocks of 128, 8 accumulators each).
double pairwise_sum(const double* a, std::size_t n) {
  if (n < 8) {
    double res = 0.0;
    for (std::size_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    std::size_t i = 8;
    for (; i < n - n % 8; i += 8)
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  std::size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

/// numpy.median: the middle value, or the mean of the two middle values.
double median(std::vector<double> v) {
  const std::size_t m = v.size();
  std::sort(v.begin(), v.end());
  if (m % 2 == 1) return v[m / 2];
  return (v[m / 2 - 1] + v[m / 2]) / 2.0;
}

std::vector<bool> above(const std::vector<double>& v, double threshold) {
  std::vector<bool> bits(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) bits[i] = v[i] > threshold;
  return bits;
}

bool power_of_two(std::int32_t v) {
  return v > 0 && (v & (v - 1)) == 0;
}

std::vector<bool> ahash_bits(ConstImageView gray, std::int32_t n, Filter filter) {
  const std::vector<std::uint8_t> p = shrink(gray, n, n, filter);
  std::int64_t sum = 0;
  for (const std::uint8_t v : p) sum += v;
  // pixel > mean, the mean sum / n^2 in float64 (exact enough to decide: see hash_ref.cpp)
  const std::int64_t count = static_cast<std::int64_t>(n) * n;
  std::vector<bool> bits(p.size());
  for (std::size_t i = 0; i < p.size(); ++i) bits[i] = count * p[i] > sum;
  return bits;
}

std::vector<bool> dhash_bits(ConstImageView gray, std::int32_t n, Filter filter, bool vertical) {
  std::vector<bool> bits(static_cast<std::size_t>(n) * n);
  if (vertical) {
    const std::vector<std::uint8_t> p = shrink(gray, n, n + 1, filter);  // n + 1 rows of n
    for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = p[i + n] > p[i];
  } else {
    const std::vector<std::uint8_t> p = shrink(gray, n + 1, n, filter);  // n rows of n + 1
    for (std::int32_t r = 0; r < n; ++r)
      for (std::int32_t c = 0; c < n; ++c) bits[r * n + c] = p[r * (n + 1) + c + 1] > p[r * (n + 1) + c];
  }
  return bits;
}

std::vector<bool> phash_bits(ConstImageView gray, std::int32_t n, std::int32_t factor, Filter filter,
                             bool simple) {
  const std::int32_t big = n * factor;
  const detail::DctPlan plan(big);
  const std::vector<std::uint8_t> p = shrink(gray, big, big, filter);
  const auto side = static_cast<std::size_t>(big);
  std::vector<double> x(p.begin(), p.end());
  std::vector<double> coef(side), scratch(2 * side);
  std::vector<double> v(static_cast<std::size_t>(n) * n);
  if (simple) {
    // dct along the last axis, [:n, 1:n + 1], against numpy's mean of them.
    for (std::int32_t r = 0; r < n; ++r) {
      plan.run(x.data() + r * side, 1, coef.data(), scratch.data());
      std::copy(coef.begin() + 1, coef.begin() + 1 + n, v.begin() + static_cast<std::ptrdiff_t>(r) * n);
    }
    return above(v, pairwise_sum(v.data(), v.size()) / static_cast<double>(v.size()));
  }
  // dct along axis 0 (every column), then along axis 1 for the first n rows; [:n, :n].
  std::vector<double> cols(static_cast<std::size_t>(n) * side);  // cols[k * side + c]
  for (std::size_t c = 0; c < side; ++c) {
    plan.run(x.data() + c, big, coef.data(), scratch.data());
    for (std::int32_t k = 0; k < n; ++k) cols[k * side + c] = coef[k];
  }
  for (std::int32_t k = 0; k < n; ++k) {
    plan.run(cols.data() + k * side, 1, coef.data(), scratch.data());
    std::copy(coef.begin(), coef.begin() + n, v.begin() + static_cast<std::ptrdiff_t>(k) * n);
  }
  return above(v, median(v));
}

}  // namespace

bool hash_sizes_valid(const HashRequest& r, ErrorText* error) {
  const auto wants = [&](HashKind k) { return r.wants(k) && r.sized(k); };
  const bool grey = wants(HashKind::kAhash) || wants(HashKind::kDhash) || wants(HashKind::kDhashVertical) ||
                    wants(HashKind::kPhash) || wants(HashKind::kPhashSimple) || wants(HashKind::kWhash);
  if (grey && (r.hash_size < 2 || r.hash_size > 64)) {
    error->set("hash_size must be 2..64, got %d", r.hash_size);
    return false;
  }
  if (wants(HashKind::kWhash) && !power_of_two(r.hash_size)) {
    error->set("whash needs a power of 2 for hash_size (as imagehash), got %d", r.hash_size);
    return false;
  }
  if (wants(HashKind::kPhash) || wants(HashKind::kPhashSimple)) {
    const std::int64_t big = static_cast<std::int64_t>(r.hash_size) * r.highfreq_factor;
    if (r.highfreq_factor < 1 || big > 1024 ||
        !detail::dct_length_supported(static_cast<std::int32_t>(big))) {
      error->set(
          "phash needs hash_size x highfreq_factor up to 1024 with no prime factor over 5 (e.g. 16 x 4, 12 x "
          "4, "
          "10 x 4), got %d x %d",
          r.hash_size, r.highfreq_factor);
      return false;
    }
    if (wants(HashKind::kPhashSimple) && big <= r.hash_size) {
      error->set("phash_simple needs highfreq_factor >= 2 (it reads DCT coefficients 1..hash_size), got %d",
                 r.highfreq_factor);
      return false;
    }
  }
  if (wants(HashKind::kColorhash) && (r.binbits < 1 || r.binbits > 16)) {
    error->set("binbits must be 1..16, got %d", r.binbits);
    return false;
  }
  return true;
}

std::int32_t hash_bit_count(HashKind k, const HashRequest& request) {
  switch (k) {
    case HashKind::kColorhash: return 14 * request.binbits;
    case HashKind::kPdq: return 256;
    default: return request.hash_size * request.hash_size;
  }
}

namespace detail {

void hash_sized_gray(HashKind k, ConstImageView gray, const HashRequest& r, Filter filter, HashRecord* out) {
  const std::int32_t n = r.hash_size;
  std::vector<bool> bits;
  switch (k) {
    case HashKind::kAhash: bits = ahash_bits(gray, n, filter); break;
    case HashKind::kDhash: bits = dhash_bits(gray, n, filter, false); break;
    case HashKind::kDhashVertical: bits = dhash_bits(gray, n, filter, true); break;
    case HashKind::kPhash: bits = phash_bits(gray, n, r.highfreq_factor, filter, false); break;
    case HashKind::kPhashSimple: bits = phash_bits(gray, n, r.highfreq_factor, filter, true); break;
    case HashKind::kWhash: {
      std::vector<double> ll;
      if (whash_ll(gray, filter, n, &ll)) bits = above(ll, median(ll));
      break;
    }
    default: return;
  }
  pack(bits, &out->wide[static_cast<int>(k)]);
}

void hash_sized_colorhash(ConstImageView img, const HashRequest& r, HashRecord* out) {
  int values[14];
  std::vector<bool> bits;
  if (colorhash_values(img, r.binbits, values)) {
    for (const int v : values)
      for (int i = 0; i < r.binbits; ++i) bits.push_back(colorhash_value_bit(v, r.binbits, i));
  }
  pack(bits, &out->wide[static_cast<int>(HashKind::kColorhash)]);
}

}  // namespace detail
}  // namespace mmcore
