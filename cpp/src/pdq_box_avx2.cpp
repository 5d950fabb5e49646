// AVX2 row box of PDQ's blur (contract: pdq_box_internal.h).
#include <immintrin.h>

#include <cstdint>

#include "pdq_box_internal.h"

namespace mmcore::detail {
namespace {

// Rows i < 8 of src (stride ss) become columns of dst (stride ds): dst[j * ds + i] = src[i * ss + j].
[[gnu::always_inline]] inline void transpose8(const float* src, std::int64_t ss, float* dst,
                                              std::int64_t ds) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * ss);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * ds, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * ds, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

// Collects the strip's output columns (one vector of its 8 rows each) and writes them to the rows
// eight columns at a time (a transpose), the last cols % 8 one float at a time.
class ColumnWriter {
 public:
  ColumnWriter(float* out, std::int64_t stride) : out_(out), stride_(stride) {}
  void put(__m256 column) {
    _mm256_store_ps(block_ + 8 * n_, column);
    if (++n_ == 8) {
      transpose8(block_, 8, out_ + at_, stride_);
      at_ += 8;
      n_ = 0;
    }
  }
  void finish() {
    for (int j = 0; j < n_; ++j) {
      for (int i = 0; i < 8; ++i) out_[i * stride_ + at_ + j] = block_[8 * j + i];
    }
  }

 private:
  alignas(32) float block_[64];
  float* out_;
  std::int64_t stride_;
  std::int64_t at_ = 0;
  int n_ = 0;
};

// Keeps only the strip's output columns at pick[0..64) (non-decreasing; one picked twice is kept
// twice), dividing only those, and writes them as the strip's 8 rows of 64 (stride 64) at the end.
class PickWriter {
 public:
  PickWriter(float* out, const std::int32_t* pick) : out_(out), pick_(pick) {}
  template <class Divide>
  void put(__m256 sum, Divide divide) {
    if (p_ < 64 && pick_[p_] == oi_) {
      const __m256 v = divide(sum);
      for (; p_ < 64 && pick_[p_] == oi_; ++p_) _mm256_store_ps(block_ + 8 * p_, v);
    }
    ++oi_;
  }
  void finish() {
    for (int p = 0; p < 64; p += 8) transpose8(block_ + 8 * p, 8, out_ + p, 64);
  }

 private:
  alignas(32) float block_[8 * 64];
  float* out_;
  const std::int32_t* pick_;
  std::int32_t oi_ = 0;
  int p_ = 0;
};

// ColumnWriter behind PickWriter's interface: every column, divided.
class AllWriter {
 public:
  explicit AllWriter(ColumnWriter& w) : w_(w) {}
  template <class Divide>
  void put(__m256 sum, Divide divide) {
    w_.put(divide(sum));
  }
  void finish() { w_.finish(); }

 private:
  ColumnWriter& w_;
};

// The box along a strip of 8 rows transposed into t (column c's 8 samples at t + 8 c), each row's
// running sum a lane of one vector, the sums handed to w column by column with their division.
// (Two strips side by side, as two dependency chains, ran 8 % slower: their 32 KiB of columns at
// 512 px left L1.)
template <class Writer, class Divide>
void box_strip(const float* t, const PdqBoxPhases& ph, Divide divide_full, Writer& w) {
  const auto col = [t](std::int32_t c) { return _mm256_load_ps(t + 8 * std::int64_t{c}); };
  __m256 sum = _mm256_setzero_ps();
  std::int32_t li = 0, ri = 0;
  int count = 0;
  for (int m = 0; m < ph.accumulate; ++m, ++ri, ++count) sum = _mm256_add_ps(sum, col(ri));
  for (int m = 0; m < ph.grow; ++m, ++ri) {
    ++count;
    sum = _mm256_add_ps(sum, col(ri));
    const __m256 nv = _mm256_set1_ps(static_cast<float>(count));
    w.put(sum, [nv](__m256 s) { return _mm256_div_ps(s, nv); });
  }
  for (int m = 0; m < ph.full; ++m, ++li, ++ri) {
    sum = _mm256_add_ps(sum, col(ri));
    sum = _mm256_sub_ps(sum, col(li));
    w.put(sum, divide_full);
  }
  for (int m = 0; m < ph.shrink; ++m, ++li) {
    --count;
    sum = _mm256_sub_ps(sum, col(li));
    const __m256 nv = _mm256_set1_ps(static_cast<float>(count));
    w.put(sum, [nv](__m256 s) { return _mm256_div_ps(s, nv); });
  }
  w.finish();
}

// 8 rows of in (stride) transposed into t, boxed, and handed to w.
template <class Writer>
void box_rows8(const float* in, std::int64_t stride, std::int32_t cols, const PdqBoxPhases& ph, float* t,
               Writer& w) {
  const std::int32_t c8 = cols / 8 * 8;
  for (std::int32_t c = 0; c < c8; c += 8) transpose8(in + c, stride, t + 8 * std::int64_t{c}, 8);
  for (std::int32_t c = c8; c < cols; ++c) {
    for (int i = 0; i < 8; ++i) t[8 * std::int64_t{c} + i] = in[i * stride + c];
  }
  // The full window's count (the grow phase ends at it); a power of two divides as a multiply by
  // its exact inverse, the same bits (pdq_box_internal.h).
  const int n = ph.accumulate + ph.grow;
  if (pdq_box_divides_by_inverse(n)) {
    const __m256 inverse = _mm256_set1_ps(1.0f / static_cast<float>(n));
    box_strip(t, ph, [inverse](__m256 s) { return _mm256_mul_ps(s, inverse); }, w);
  } else {
    const __m256 nv = _mm256_set1_ps(static_cast<float>(n));
    box_strip(t, ph, [nv](__m256 s) { return _mm256_div_ps(s, nv); }, w);
  }
}

// Eight columns as one vector, and one column alone: the float ops of the column box on either.
struct Lanes8 {
  using T = __m256;
  static constexpr int kWidth = 8;
  static T zero() { return _mm256_setzero_ps(); }
  static T set(float v) { return _mm256_set1_ps(v); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T div(T a, T b) { return _mm256_div_ps(a, b); }
};
struct Lane1 {
  using T = float;
  static constexpr int kWidth = 1;
  static T zero() { return 0.0f; }
  static T set(float v) { return v; }
  static T load(const float* p) { return *p; }
  static void store(float* p, T v) { *p = v; }
  static T add(T a, T b) { return a + b; }
  static T sub(T a, T b) { return a - b; }
  static T mul(T a, T b) { return a * b; }
  static T div(T a, T b) { return a / b; }
};

// One row step of the column box over columns [x0, x1): each running sum adds the entering row s
// (kAdd), then subtracts the leaving row l (kSub), and with kOut its quotient goes to row o.
template <class L, bool kAdd, bool kSub, bool kOut, class Divide>
void cols_step(float* sums, std::int32_t x0, std::int32_t x1, const float* s, const float* l, float* o,
               Divide divide) {
  for (std::int32_t x = x0; x < x1; x += L::kWidth) {
    typename L::T v = L::load(sums + x);
    if constexpr (kAdd) v = L::add(v, L::load(s + x));
    if constexpr (kSub) v = L::sub(v, L::load(l + x));
    L::store(sums + x, v);
    if constexpr (kOut) L::store(o + x, divide(v));
  }
}

// The column box over columns [x0, x1) (a multiple of L::kWidth wide), all of them advancing row
// by row with their running sums in sums[x0, x1): the reference's phases and ops, L::kWidth
// columns at a time.
template <class L>
void box_cols_range(const float* in, float* out, std::int64_t cols, std::int32_t x0, std::int32_t x1,
                    const PdqBoxPhases& ph, float* sums) {
  using T = typename L::T;
  const auto line = [cols](auto* base, std::int32_t r) { return base + r * cols; };
  const auto by = [](int count) {
    const T n = L::set(static_cast<float>(count));
    return [n](T v) { return L::div(v, n); };
  };
  for (std::int32_t x = x0; x < x1; x += L::kWidth) L::store(sums + x, L::zero());
  std::int32_t li = 0, ri = 0, oi = 0;
  int count = 0;
  for (int t = 0; t < ph.accumulate; ++t, ++ri, ++count)
    cols_step<L, true, false, false>(sums, x0, x1, line(in, ri), nullptr, nullptr, by(1));
  for (int t = 0; t < ph.grow; ++t, ++ri, ++oi)
    cols_step<L, true, false, true>(sums, x0, x1, line(in, ri), nullptr, line(out, oi), by(++count));
  // The full window's count; a power of two divides as a multiply by its exact inverse, the same
  // bits (pdq_box_internal.h).
  const auto full = [&](auto divide) {
    for (int t = 0; t < ph.full; ++t, ++li, ++ri, ++oi)
      cols_step<L, true, true, true>(sums, x0, x1, line(in, ri), line(in, li), line(out, oi), divide);
  };
  if (pdq_box_divides_by_inverse(count)) {
    const T inverse = L::set(1.0f / static_cast<float>(count));
    full([inverse](T v) { return L::mul(v, inverse); });
  } else {
    full(by(count));
  }
  for (int t = 0; t < ph.shrink; ++t, ++li, ++oi)
    cols_step<L, false, true, true>(sums, x0, x1, nullptr, line(in, li), line(out, oi), by(--count));
}

}  // namespace

void pdq_box_cols_avx2(const float* in, float* out, std::int32_t rows, std::int32_t cols,
                       const PdqBoxPhases& ph, float* sums) {
  (void)rows;
  const std::int32_t c8 = cols / 8 * 8;
  box_cols_range<Lanes8>(in, out, cols, 0, c8, ph, sums);
  box_cols_range<Lane1>(in, out, cols, c8, cols, ph, sums);
}

std::int32_t pdq_box_rows_avx2(const float* in, float* out, std::int32_t rows, std::int32_t cols,
                               const PdqBoxPhases& ph, float* t) {
  std::int32_t r = 0;
  for (; r + 8 <= rows; r += 8) {
    ColumnWriter cw(out + std::int64_t{r} * cols, cols);
    AllWriter w(cw);
    box_rows8(in + std::int64_t{r} * cols, cols, cols, ph, t, w);
  }
  return r;
}

std::int32_t pdq_box_rows_picked_avx2(const float* in, float* out, std::int32_t rows, std::int32_t cols,
                                      const PdqBoxPhases& ph, const std::int32_t* pick, float* t) {
  std::int32_t r = 0;
  for (; r + 8 <= rows; r += 8) {
    PickWriter w(out + std::int64_t{r} * 64, pick);
    box_rows8(in + std::int64_t{r} * cols, cols, cols, ph, t, w);
  }
  return r;
}

}  // namespace mmcore::detail
