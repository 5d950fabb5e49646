// Quant drivers (contract: mmcore/quant.h): encoding, blocking, threads, top-k and merge. The
// per-variant work is the block kernel of quant_internal.h.
#include "mmcore/quant.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "mmcore/hamming.h"
#include "mmcore/parallel.h"
#include "quant_internal.h"

// The rerank sums and the l2 keys round alike in every build and variant (quant_internal.h).
MMCORE_QUANT_NO_FMA

namespace mmcore {

namespace detail {

bool quant_avx_vnni_usable() {
#ifdef MMCORE_HAVE_AVXVNNI
  static const bool usable = cpu_has_avx_vnni() && !quant_switched_off("MMCORE_NO_AVX_VNNI");
  return usable;
#else
  return false;
#endif
}

QuantKernels quant_kernels(Backend backend) {
#ifdef MMCORE_HAVE_AVX512
  if (backend == Backend::kAvx512 && backend_supported(Backend::kAvx512)) return quant_kernels_avx512();
#endif
#ifdef MMCORE_HAVE_AVX2
  if (backend >= Backend::kAvx2 && backend_supported(Backend::kAvx2)) {
#ifdef MMCORE_HAVE_AVXVNNI
    if (quant_avx_vnni_usable()) return quant_kernels_avx_vnni();
#endif
    return quant_kernels_avx2();
  }
#endif
  (void)backend;
  return quant_kernels_ref();
}

}  // namespace detail

namespace {

using detail::QuantCodec;

// Rows a task encodes.
constexpr std::int64_t kEncodeRows = 1024;
// Code bytes a batch of queries sweeps per block: with the prepared queries (about 2 bytes per
// dimension per query) it stays in a 512 KiB L2.
constexpr std::int64_t kBlockBytes = 96 * 1024;
// Queries prepared and scored per pass over a block.
constexpr std::int64_t kBatchQueries = 64;
// Fewer rows than this are not split across tasks.
constexpr std::int64_t kMinSplitRows = 4096;

int resolve_threads(int threads) {
  return threads <= 0 ? hardware_threads() : threads;
}

void check_sizes(std::int64_t n, std::int32_t d, std::int64_t nq) {
  if (n < 0 || nq < 0) throw std::invalid_argument("row counts must be >= 0");
  if (d < 1 || d > kQuantMaxDim) {
    throw std::invalid_argument("dimension must be in 1.." + std::to_string(kQuantMaxDim) + ", got " +
                                std::to_string(d));
  }
}

// Whether every value of the row is finite: x * 0 is 0 for finite x and NaN for NaN or Inf, and
// a NaN stays in any sum, whatever its order. With SSE2, eight independent lanes: one running
// scalar sum waited on each add's latency (~1 us a 768-value row).
bool row_finite(const float* row, std::int32_t d) {
  std::int32_t i = 0;
  float acc = 0.0f;
#if defined(__SSE2__)
  const __m128 zero = _mm_setzero_ps();
  __m128 a0 = zero, a1 = zero;
  for (; i + 8 <= d; i += 8) {
    a0 = _mm_add_ps(a0, _mm_mul_ps(_mm_loadu_ps(row + i), zero));
    a1 = _mm_add_ps(a1, _mm_mul_ps(_mm_loadu_ps(row + i + 4), zero));
  }
  alignas(16) float lanes[4];
  _mm_store_ps(lanes, _mm_add_ps(a0, a1));
  acc = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
#endif
  for (; i < d; ++i) acc += row[i] * 0.0f;
  return acc == 0.0f;
}

// Rejects x with a NaN or Inf (naming the first such row) before anything is written.
void check_finite_rows(const float* x, std::int64_t n, std::int32_t d, int threads) {
  const std::int64_t tasks = (n + kEncodeRows - 1) / kEncodeRows;
  std::vector<std::int64_t> bad(static_cast<std::size_t>(tasks), -1);
  parallel_for(tasks, threads, [&](std::int64_t t) {
    const std::int64_t r1 = std::min(n, (t + 1) * kEncodeRows);
    for (std::int64_t r = t * kEncodeRows; r < r1; ++r) {
      if (!row_finite(x + r * d, d)) {
        bad[static_cast<std::size_t>(t)] = r;
        return;
      }
    }
  });
  for (const std::int64_t r : bad) {
    if (r >= 0) {
      throw std::invalid_argument("row " + std::to_string(r) +
                                  " of x has a NaN or Inf value; clean or drop it before encoding");
    }
  }
}

void check_params(const float* scale, const float* offset, std::int32_t d) {
  for (std::int32_t i = 0; i < d; ++i) {
    if (!std::isfinite(scale[i]) || scale[i] < 0.0f) {
      throw std::invalid_argument("scale[" + std::to_string(i) + "] must be finite and >= 0, got " +
                                  std::to_string(scale[i]));
    }
    if (offset != nullptr && !std::isfinite(offset[i])) {
      throw std::invalid_argument("offset[" + std::to_string(i) + "] must be finite, got " +
                                  std::to_string(offset[i]));
    }
  }
}

// round-half-to-even((x - offset) / scale) clipped to 0..top, in float32 as numpy computes it.
inline std::uint8_t level(float x, float scale, float offset, float top) {
  if (scale == 0.0f) return 0;
  const float v = std::min(std::max((x - offset) / scale, 0.0f), top);
  return static_cast<std::uint8_t>(std::nearbyint(v));
}

// level() of a row's d values. On x86-64 (SSE2, the base ISA) 16 at a time: the same IEEE
// subtraction, division and clamp, and cvtps2dq rounds in the current rounding mode as nearbyint
// does (ties to even); a scale of 0 gives Inf or NaN there, masked to 0. nearbyint is a libm call
// per value without SSE4.1, and had made encoding ~7 ns a value.
void level_row(const float* x, const float* scale, const float* offset, float top, std::int32_t d,
               std::uint8_t* out) {
  std::int32_t i = 0;
#if defined(__SSE2__)
  const __m128 zero = _mm_setzero_ps(), hi = _mm_set1_ps(top);
  for (; i + 16 <= d; i += 16) {
    __m128i q[4];
    for (int k = 0; k < 4; ++k) {
      const __m128 s = _mm_loadu_ps(scale + i + 4 * k);
      const __m128 v =
          _mm_div_ps(_mm_sub_ps(_mm_loadu_ps(x + i + 4 * k), _mm_loadu_ps(offset + i + 4 * k)), s);
      const __m128 c = _mm_andnot_ps(_mm_cmpeq_ps(s, zero), _mm_min_ps(_mm_max_ps(v, zero), hi));
      q[k] = _mm_cvtps_epi32(c);
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm_packus_epi16(_mm_packs_epi32(q[0], q[1]), _mm_packs_epi32(q[2], q[3])));
  }
#endif
  for (; i < d; ++i) out[i] = level(x[i], scale[i], offset[i], top);
}

// The exact sum of quant_rerank (and of the reflection's dot): the 8 interleaved float64 partial
// sums of a QuantRerankFn (`lanes`) in a fixed tree, then the dimensions from d8 = d / 8 * 8 on.
double rerank_sum(const double* lanes, const float* row, const float* q, std::int32_t d, bool l2) {
  double tail = 0.0;
  for (std::int32_t t = d / 8 * 8; t < d; ++t) {
    const double v = row[t], w = q[t];
    tail += l2 ? (v - w) * (v - w) : v * w;
  }
  const double* a = lanes;
  return (((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))) + tail;
}

// x reflected, x - 2 (x . v) v, into out (quant_reflect's contract); false when a value left
// float32's range. With SSE2 4 lanes at a time: the same product, rounded, then the same sum.
bool reflect_row(const float* x, const float* v, std::int32_t d, double dot, float* out) {
  const auto c = static_cast<float>(-2.0 * dot);
  std::int32_t i = 0;
#if defined(__SSE2__)
  const __m128 cv = _mm_set1_ps(c);
  for (; i + 4 <= d; i += 4)
    _mm_storeu_ps(out + i, _mm_add_ps(_mm_loadu_ps(x + i), _mm_mul_ps(cv, _mm_loadu_ps(v + i))));
#endif
  for (; i < d; ++i) out[i] = x[i] + c * v[i];
  return std::isfinite(c) && row_finite(out, d);
}

// Rows [r, r + nr) of x (nr <= kQuantRerankRows) reflected into out (nr rows of d); bit k of the
// result is set when row r + k left float32's range.
unsigned reflect_rows(detail::QuantRerankFn rerank, const float* x, std::int64_t r, int nr, std::int32_t d,
                      const float* v, float* out) {
  const float* rows[detail::kQuantRerankRows];
  for (int k = 0; k < nr; ++k) rows[k] = x + (r + k) * d;
  double lanes[8 * detail::kQuantRerankRows];
  rerank(rows, nr, v, d / 8 * 8, false, lanes);
  unsigned bad = 0;
  for (int k = 0; k < nr; ++k) {
    if (!reflect_row(rows[k], v, d, rerank_sum(lanes + 8 * k, rows[k], v, d, false),
                     out + std::int64_t{k} * d))
      bad |= 1u << k;
  }
  return bad;
}

// row(r, xr) for every row r of x, xr being the row itself or (v given) its reflection, on
// `threads` threads in tasks of kEncodeRows rows. A row whose reflection leaves float32's range is
// skipped, and the first such row throws std::invalid_argument once every task has ended.
template <class Row>
void encode_rows(const float* x, std::int64_t n, std::int32_t d, const float* v, int threads, Row&& row) {
  const std::int64_t tasks = (n + kEncodeRows - 1) / kEncodeRows;
  const detail::QuantRerankFn rerank =
      v != nullptr ? detail::quant_kernels(active_backend()).rerank : nullptr;
  std::vector<std::int64_t> bad(static_cast<std::size_t>(tasks), -1);
  parallel_for(tasks, threads, [&](std::int64_t t) {
    const std::int64_t r1 = std::min(n, (t + 1) * kEncodeRows);
    if (v == nullptr) {
      for (std::int64_t r = t * kEncodeRows; r < r1; ++r) row(r, x + r * d);
      return;
    }
    constexpr int kRows = detail::kQuantRerankRows;
    std::vector<float> buf(static_cast<std::size_t>(d) * kRows);
    for (std::int64_t r = t * kEncodeRows; r < r1; r += kRows) {
      const int nr = static_cast<int>(std::min<std::int64_t>(kRows, r1 - r));
      const unsigned out_of_range = reflect_rows(rerank, x, r, nr, d, v, buf.data());
      for (int k = 0; k < nr; ++k) {
        if (!(out_of_range >> k & 1u)) {
          row(r + k, buf.data() + static_cast<std::size_t>(k) * d);
        } else if (bad[static_cast<std::size_t>(t)] < 0) {
          bad[static_cast<std::size_t>(t)] = r + k;
        }
      }
    }
  });
  for (const std::int64_t r : bad) {
    if (r >= 0) {
      throw std::invalid_argument("row " + std::to_string(r) +
                                  " of x leaves float32's range when reflected (x - 2 (x . v) v)");
    }
  }
}

void check_reflector(const float* v, std::int32_t d) {
  if (v == nullptr) return;
  for (std::int32_t i = 0; i < d; ++i) {
    if (!std::isfinite(v[i]))
      throw std::invalid_argument("reflect[" + std::to_string(i) + "] must be finite, got " +
                                  std::to_string(v[i]));
  }
}

// ---- top-k ----

template <class K>
struct CandT {
  K s;
  std::int64_t j;
};
using Cand = CandT<std::int32_t>;

// Ranking: higher score first, then lower position. A function object, not a function: the
// standard algorithms inline it, where a function pointer costs an indirect call per comparison
// (a top-100 selection took a quarter of an int4 search that way).
struct Better {
  template <class K>
  bool operator()(const CandT<K>& a, const CandT<K>& b) const {
    return a.s > b.s || (a.s == b.s && a.j < b.j);
  }
};

// The k-th largest of a[0..n) (1 <= k <= n); a and tmp (n each) are overwritten. Quickselect
// with a branch-free three-way partition (greater to the front of tmp, smaller to its back, each
// value written to both ends and the counts deciding which write stands): on the scores of a
// top-k's room (random order) std::nth_element mispredicts a branch per comparison and took ~25
// cycles per score, this ~12. Falls back to nth_element after 40 rounds (adversarial pivots).
template <class K>
K kth_largest(K* a, K* tmp, std::int64_t n, std::int64_t k) {
  for (int round = 0; n > 16; ++round) {
    if (round == 40) {
      std::nth_element(a, a + (k - 1), a + n, std::greater<K>());
      return a[k - 1];
    }
    K x0 = a[0], x1 = a[n / 2];
    const K x2 = a[n - 1];
    if (x0 > x1) std::swap(x0, x1);
    const K p = x2 < x0 ? x0 : (x2 > x1 ? x1 : x2);  // the median of three
    std::int64_t g = 0, l = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const K x = a[i];
      tmp[g] = x;
      g += x > p;
      tmp[n - 1 - l] = x;
      l += x < p;
    }
    if (k <= g) {
      n = g;
    } else if (k <= n - l) {
      return p;
    } else {
      k -= n - l;
      tmp += n - l;
      n = l;
    }
    std::swap(a, tmp);
  }
  std::sort(a, a + n, std::greater<K>());
  return a[k - 1];
}

// Keeps the k best of buf[0..size) (k <= size), listed in increasing position, in place and in
// that order: every score above the k-th best and the first of those equal to it. Returns the k-th
// best score. scratch: room for 2 * size scores.
template <class K>
K keep_best(CandT<K>* buf, std::int64_t size, std::int64_t k, K* scratch) {
  for (std::int64_t i = 0; i < size; ++i) scratch[i] = buf[i].s;
  const K kth = kth_largest(scratch, scratch + size, size, k);
  std::int64_t above = 0;
  for (std::int64_t i = 0; i < size; ++i) above += buf[i].s > kth;
  // Branch-free: every candidate is written at w, which only advances past the kept ones.
  std::int64_t ties = k - above, w = 0;
  for (std::int64_t i = 0; i < size; ++i) {
    const CandT<K> c = buf[i];
    const bool tie = c.s == kth;
    const bool keep = (c.s > kth) | (tie & (ties > 0));
    ties -= tie & keep;
    buf[w] = c;
    w += keep;
  }
  return kth;
}

// Room a top-k of k keeps beyond its k: k (a selection per k accepted candidates), at most
// kTopKExtra so that a k near the row count does not double the candidate buffers (a selection
// then costs O(k / kTopKExtra) per accepted candidate, about a heap's log k).
constexpr std::int64_t kTopKExtra = 4096;
inline std::int64_t topk_room(std::int64_t k) {
  return k + std::min(k, kTopKExtra);
}

// The k best (score, position) of a task over caller-owned storage of topk_room(k) candidates:
// accepted candidates are appended, and when the room is full a selection keeps the k best and
// raises the threshold to the k-th best score. That is O(1) per accepted candidate where a bounded
// heap costs two sift passes (log k each, unpredictable branches): 64 queries x 46k binary codes
// with k = 200, one thread: 6.2 ns per (row, query) against 11.7 with the heap. The selection finds
// the k-th best score with kth_largest over a copy of the scores alone, then compacts the
// candidates in place in their order (increasing position), so that of the scores equal to it the
// first ones stay. Rows arrive in increasing position, so a score equal to the k-th best never
// enters. K: int32 (integer scores) or double (l2 keys, quant_score_l2).
//
// raise(t) lifts the threshold with what other tasks of the same query know (topk_impl): a score
// below another task's k-th best cannot be among the query's k best.
template <class K>
class TopKT {
 public:
  /// scratch: room for 2 * topk_room(k) keys, shared by the top-ks that one thread runs in turn.
  TopKT(CandT<K>* buf, std::int32_t k, K* scratch)
      : buf_(buf), k_(k), room_(topk_room(k)), scratch_(scratch) {}
  void push(K s, std::int64_t j) {
    if (s <= thr_) return;
    buf_[size_++] = {s, j};
    if (size_ == k_) {
      kth_ = min_score();  // first fill (later the size only returns to k through select)
      thr_ = std::max(thr_, kth_);
    } else if (size_ == room_) {
      select();
    }
  }
  /// Refuses from now on every score at or below t.
  void raise(K t) { thr_ = std::max(thr_, t); }
  /// Keeps only the k best (in no order); the number kept.
  std::int32_t finish() {
    if (size_ > k_) select();
    return static_cast<std::int32_t>(size_);
  }
  /// Scores at or below this never enter.
  K threshold() const { return thr_; }
  /// The k-th best score this task has seen once it holds k, else the lowest K.
  K kth() const { return kth_; }

 private:
  K min_score() const {
    K m = buf_[0].s;
    for (std::int64_t i = 1; i < size_; ++i) m = std::min(m, buf_[i].s);
    return m;
  }
  void select() {
    const K kth = keep_best(buf_, size_, k_, scratch_);
    size_ = k_;
    kth_ = kth;
    thr_ = std::max(thr_, kth);
  }

  CandT<K>* buf_;
  std::int32_t k_;
  std::int64_t room_;
  K* scratch_;             // the scores during a selection, and kth_largest's second buffer
  std::int64_t size_ = 0;  // up to room_
  // Every int32 score is > INT32_MIN (|score| <= 255 * 128 * 65536 < 2^31), and every double key
  // is finite, so nothing is refused until full.
  K thr_ = std::numeric_limits<K>::lowest();
  K kth_ = std::numeric_limits<K>::lowest();
};

// The largest K below b: raise(below(b)) refuses exactly the scores below b.
inline std::int32_t below(std::int32_t b) {
  return b - 1;
}
inline double below(double b) {
  return std::nextafter(b, std::numeric_limits<double>::lowest());
}
using TopK = TopKT<std::int32_t>;

// Pushes the scores of rows r .. r + nb - 1 that beat the threshold. Once k are held most scores do
// not, so they are found 16 at a time (compare, pack, movemask) and only those are pushed: a
// branch per score that rarely passes cost a fifth of a binary rerank-200 search. The threshold
// read for a group of 16 may be stale (a push can raise it); push checks again.
inline void push_above(TopK& h, const std::int32_t* s, std::int64_t nb, std::int64_t r) {
  std::int64_t i = 0;
#if defined(__SSE2__)
  for (; i + 16 <= nb; i += 16) {
    const __m128i t = _mm_set1_epi32(h.threshold());
    const auto* v = reinterpret_cast<const __m128i*>(s + i);
    const __m128i a = _mm_cmpgt_epi32(_mm_loadu_si128(v), t), b = _mm_cmpgt_epi32(_mm_loadu_si128(v + 1), t);
    const __m128i c = _mm_cmpgt_epi32(_mm_loadu_si128(v + 2), t),
                  d = _mm_cmpgt_epi32(_mm_loadu_si128(v + 3), t);
    // Bit o of the mask is lane o: the packs keep the lanes' order.
    auto mask = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_packs_epi16(_mm_packs_epi32(a, b), _mm_packs_epi32(c, d))));
    for (; mask != 0; mask &= mask - 1) {
      const int o = __builtin_ctz(mask);
      h.push(s[i + o], r + i + o);
    }
  }
#endif
  for (; i < nb; ++i) h.push(s[i], r + i);
}

// Splits [0, n) into `parts` ranges; range p is [split_point(p), split_point(p + 1)).
inline std::int64_t split_point(std::int64_t n, std::int64_t parts, std::int64_t p) {
  return n / parts * p + std::min(p, n % parts);
}

// What one scan computes: the codec, its codes and queries as bytes.
struct Scan {
  QuantCodec codec;
  const std::uint8_t* codes;
  std::int64_t n;
  std::int64_t row_bytes;
  std::int32_t d;  // dimensions (int8, int4) or words (binary)
  const std::uint8_t* queries;
  std::int64_t query_bytes;
  std::int64_t nq;
  std::int32_t unit;  // of quant_prepared_stride
};

// Tasks over (query batch, row range): row ranges only when there are too few batches to keep
// every thread busy.
struct Grid {
  std::int64_t batches = 0, splits = 1;
  Grid(std::int64_t nq, std::int64_t n, int threads) {
    batches = (nq + kBatchQueries - 1) / kBatchQueries;
    // Two tasks per thread balance a noisy machine; one thread gains nothing from splits (each costs
    // a top-k of its own).
    const std::int64_t want = threads > 1 ? 2 * static_cast<std::int64_t>(threads) : 1;
    if (batches > 0 && batches < want) {
      splits = std::min((want + batches - 1) / batches, std::max<std::int64_t>(1, n / kMinSplitRows));
    }
  }
};

// Scores rows [r0, r1) against queries [q0, q1), handing every block of scores to sink(q, r, s, nb)
// (s: nb scores of query q for rows r..r + nb - 1).
template <class Sink>
void scan_range(const Scan& sc, std::int64_t q0, std::int64_t q1, std::int64_t r0, std::int64_t r1,
                Sink&& sink) {
  const std::int64_t stride = detail::quant_prepared_stride(sc.d, sc.unit), nqb = q1 - q0;
  const std::int64_t block =
      std::clamp<std::int64_t>(kBlockBytes / std::max<std::int64_t>(1, sc.row_bytes), 8, 4096);
  const std::int64_t group = sc.codec.group;
  // A group's prepared queries may take its whole room (group * stride), even when it holds fewer.
  std::vector<std::uint8_t> prep_buf(
      static_cast<std::size_t>((nqb + group - 1) / group * group * stride + 64));
  std::uint8_t* prep = prep_buf.data() + (64 - reinterpret_cast<std::uintptr_t>(prep_buf.data()) % 64) % 64;
  for (std::int64_t g = 0; g < nqb; g += group) {
    const int ng = static_cast<int>(std::min(group, nqb - g));
    sc.codec.prepare(sc.queries + (q0 + g) * sc.query_bytes, ng, sc.d, prep + g * stride);
  }
  std::vector<std::int32_t> scores(static_cast<std::size_t>(nqb * block));
  for (std::int64_t r = r0; r < r1; r += block) {
    const std::int64_t nb = std::min(block, r1 - r);
    for (std::int64_t g = 0; g < nqb; g += group) {
      const int ng = static_cast<int>(std::min(group, nqb - g));
      sc.codec.block(sc.codes + r * sc.row_bytes, nb, sc.d, prep + g * stride, ng, scores.data() + g * block,
                     block);
    }
    for (std::int64_t q = 0; q < nqb; ++q) sink(q0 + q, r, scores.data() + q * block, nb);
  }
}

// The keys of a block for the l2 top-k: key = qscale[q] * score - bias[row], in double (the
// ranking of ||q - x||^2 = ||q||^2 - (2 q.x - ||x||^2) with the exact ||x||^2 of each row).
struct L2Keys {
  const double* qscale;
  const float* bias;
};

// Top-k of every query. Integer scores (keys == nullptr): out_s int32, negated when `negate`
// (binary distances). With keys: out_s double keys (K = double).
template <class K>
void topk_impl(const Scan& sc, std::int32_t k, int threads, bool negate, const L2Keys* keys, K* out_s,
               std::int64_t* out_j) {
  if (k < 1) throw std::invalid_argument("k must be >= 1, got " + std::to_string(k));
  threads = resolve_threads(threads);
  const Grid grid(sc.nq, sc.n, threads);
  // A split keeps at most its own rows (the first split is the largest), so k near n costs about
  // nq * n candidates, not splits times that.
  const std::int64_t kk = std::min<std::int64_t>(k, split_point(sc.n, grid.splits, 1));
  // Candidates of split p for query q: cand[(p * nq + q) * room ...], count[p * nq + q].
  const std::int64_t room = topk_room(kk);
  std::vector<CandT<K>> cand(static_cast<std::size_t>(grid.splits * sc.nq * room));
  std::vector<std::int32_t> count(static_cast<std::size_t>(grid.splits * sc.nq), 0);
  // The best k-th best score any split of query q has reached so far (relaxed: any value read is
  // one some split did reach, so the filter it gives is always safe, only weaker when stale).
  // Only a task that keeps the full k knows a k-th best (kk < k when k exceeds a split's rows).
  const bool shared = grid.splits > 1 && kk == k;
  std::vector<std::atomic<K>> bound(static_cast<std::size_t>(sc.nq));
  for (auto& b : bound) b.store(std::numeric_limits<K>::lowest(), std::memory_order_relaxed);
  if (kk > 0) {
    parallel_for(grid.batches * grid.splits, threads, [&](std::int64_t t) {
      const std::int64_t b = t / grid.splits, p = t % grid.splits;
      const std::int64_t q0 = b * kBatchQueries, q1 = std::min(sc.nq, q0 + kBatchQueries);
      std::vector<TopKT<K>> tops;
      tops.reserve(static_cast<std::size_t>(q1 - q0));
      std::vector<K> scratch(static_cast<std::size_t>(2 * room));  // one per task: its top-ks run in turn
      for (std::int64_t q = q0; q < q1; ++q) {
        tops.emplace_back(cand.data() + (p * sc.nq + q) * room, static_cast<std::int32_t>(kk),
                          scratch.data());
      }
      std::vector<double> key;
      std::vector<K> told(static_cast<std::size_t>(q1 - q0), std::numeric_limits<K>::lowest());
      scan_range(sc, q0, q1, split_point(sc.n, grid.splits, p), split_point(sc.n, grid.splits, p + 1),
                 [&](std::int64_t q, std::int64_t r, const std::int32_t* s, std::int64_t nb) {
                   TopKT<K>& h = tops[static_cast<std::size_t>(q - q0)];
                   // Share k-th bests between the splits of a query (see TopKT::raise).
                   const auto share = [&] {
                     K& mine = told[static_cast<std::size_t>(q - q0)];
                     if (h.kth() > mine) {
                       mine = h.kth();
                       std::atomic<K>& b = bound[static_cast<std::size_t>(q)];
                       K cur = b.load(std::memory_order_relaxed);
                       while (cur < mine && !b.compare_exchange_weak(cur, mine, std::memory_order_relaxed)) {
                       }
                     }
                   };
                   if (shared) {
                     const K b = bound[static_cast<std::size_t>(q)].load(std::memory_order_relaxed);
                     if (b > std::numeric_limits<K>::lowest()) h.raise(below(b));
                   }
                   if constexpr (std::is_same_v<K, std::int32_t>) {
                     push_above(h, s, nb, r);
                     if (shared) share();
                   } else {
                     key.resize(static_cast<std::size_t>(nb));
                     const double a = keys->qscale[q];
                     const float* bias = keys->bias + r;
                     double best = std::numeric_limits<double>::lowest();
                     for (std::int64_t i = 0; i < nb; ++i) {
                       key[i] = a * s[i] - static_cast<double>(bias[i]);
                       best = std::max(best, key[i]);
                     }
                     if (best <= h.threshold()) return;  // once k are held, most blocks
                     for (std::int64_t i = 0; i < nb; ++i) h.push(key[i], r + i);
                     if (shared) share();
                   }
                 });
      for (std::int64_t q = q0; q < q1; ++q) {
        count[static_cast<std::size_t>(p * sc.nq + q)] = tops[static_cast<std::size_t>(q - q0)].finish();
      }
    });
  }
  const K pad = negate ? std::numeric_limits<K>::max() : std::numeric_limits<K>::lowest();
  parallel_for(sc.nq, threads, [&](std::int64_t q) {
    std::vector<CandT<K>> all;
    for (std::int64_t p = 0; p < grid.splits; ++p) {
      const CandT<K>* c = cand.data() + (p * sc.nq + q) * room;
      all.insert(all.end(), c, c + count[static_cast<std::size_t>(p * sc.nq + q)]);
    }
    // The splits' candidates come in increasing position, as keep_best needs; then only the k kept
    // are sorted (a partial_sort of all of them took 6 of 30 ms of a 64-query top-1000).
    const std::size_t keep = std::min(all.size(), static_cast<std::size_t>(k));
    if (all.size() > keep) {
      std::vector<K> scratch(2 * all.size());
      keep_best(all.data(), static_cast<std::int64_t>(all.size()), static_cast<std::int64_t>(keep),
                scratch.data());
    }
    std::sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(keep), Better{});
    for (std::int64_t i = 0; i < k; ++i) {
      const bool has = static_cast<std::size_t>(i) < keep;
      out_s[q * k + i] =
          has ? (negate ? -all[static_cast<std::size_t>(i)].s : all[static_cast<std::size_t>(i)].s) : pad;
      out_j[q * k + i] = has ? all[static_cast<std::size_t>(i)].j : -1;
    }
  });
}

void topk(const Scan& sc, std::int32_t k, int threads, bool negate, std::int32_t* out_s,
          std::int64_t* out_j) {
  topk_impl<std::int32_t>(sc, k, threads, negate, nullptr, out_s, out_j);
}

Scan int8_scan(const detail::QuantKernels& kern, const std::uint8_t* codes, std::int64_t n, std::int32_t d,
               const std::int8_t* queries, std::int64_t nq) {
  check_sizes(n, d, nq);
  return {kern.int8, codes, n,
          d,         d,     reinterpret_cast<const std::uint8_t*>(queries),
          d,         nq,    detail::kQuantUnitInt};
}

Scan int4_scan(const detail::QuantKernels& kern, const std::uint8_t* codes, std::int64_t n, std::int32_t d,
               const std::int8_t* queries, std::int64_t nq) {
  check_sizes(n, d, nq);
  return {kern.int4,   codes, n,
          (d + 1) / 2, d,     reinterpret_cast<const std::uint8_t*>(queries),
          d,           nq,    detail::kQuantUnitInt};
}

}  // namespace

void quant_encode_int8(const float* x, std::int64_t n, std::int32_t d, const float* scale,
                       const float* offset, int threads, std::uint8_t* codes, const float* reflect) {
  check_sizes(n, d, 0);
  check_params(scale, offset, d);
  check_reflector(reflect, d);
  check_finite_rows(x, n, d, threads);
  encode_rows(x, n, d, reflect, threads, [&](std::int64_t r, const float* row) {
    level_row(row, scale, offset, 255.0f, d, codes + r * d);
  });
}

void quant_encode_int4(const float* x, std::int64_t n, std::int32_t d, const float* scale,
                       const float* offset, int threads, std::uint8_t* codes, const float* reflect) {
  check_sizes(n, d, 0);
  check_params(scale, offset, d);
  check_reflector(reflect, d);
  check_finite_rows(x, n, d, threads);
  const std::int64_t row_bytes = (d + 1) / 2;
  encode_rows(x, n, d, reflect, threads, [&](std::int64_t r, const float* row) {
    std::uint8_t* out = codes + r * row_bytes;
    // 64 levels (each <= 15) at a time, each pair folded into its byte; an odd d leaves the last
    // byte's high nibble 0.
    std::uint8_t levels[64];
    for (std::int32_t i0 = 0; i0 < d; i0 += 64) {
      const std::int32_t m = std::min(64, d - i0);
      level_row(row + i0, scale + i0, offset + i0, 15.0f, m, levels);
      for (std::int32_t i = 0; i + 1 < m; i += 2)
        out[(i0 + i) / 2] = static_cast<std::uint8_t>(levels[i] | (levels[i + 1] << 4));
      if (m % 2 == 1) out[(i0 + m - 1) / 2] = levels[m - 1];
    }
  });
}

void quant_reflect(const float* x, std::int64_t n, std::int32_t d, const float* v, int threads, float* out) {
  check_sizes(n, d, 0);
  if (v == nullptr) throw std::invalid_argument("quant_reflect needs a reflector v");
  check_reflector(v, d);
  const detail::QuantRerankFn rerank = detail::quant_kernels(active_backend()).rerank;
  constexpr int kRows = detail::kQuantRerankRows;
  parallel_for((n + kRows - 1) / kRows, resolve_threads(threads), [&](std::int64_t t) {
    const std::int64_t r = t * kRows;
    (void)reflect_rows(rerank, x, r, static_cast<int>(std::min<std::int64_t>(kRows, n - r)), d, v,
                       out + r * d);
  });
}

void quant_encode_binary(const float* x, std::int64_t n, std::int32_t d, const float* mean, int threads,
                         std::uint64_t* codes) {
  check_sizes(n, d, 0);
  if (d % 64 != 0)
    throw std::invalid_argument("binary codes need a dimension multiple of 64, got " + std::to_string(d));
  for (std::int32_t i = 0; i < d; ++i) {
    if (!std::isfinite(mean[i])) {
      throw std::invalid_argument("mean[" + std::to_string(i) + "] must be finite, got " +
                                  std::to_string(mean[i]));
    }
  }
  check_finite_rows(x, n, d, threads);
  const std::int32_t words = d / 64;
  encode_rows(x, n, d, nullptr, threads, [&](std::int64_t r, const float* row) {
    for (std::int32_t w = 0; w < words; ++w) {
      const float* xs = row + w * 64;
      const float* ms = mean + w * 64;
      std::uint64_t bits = 0;
#if defined(__SSE2__)  // the same subtraction and comparison, 4 bits per movemask
      for (int b = 0; b < 64; b += 4) {
        const __m128 gt =
            _mm_cmpgt_ps(_mm_sub_ps(_mm_loadu_ps(xs + b), _mm_loadu_ps(ms + b)), _mm_setzero_ps());
        bits |= static_cast<std::uint64_t>(_mm_movemask_ps(gt)) << b;
      }
#else
      for (int b = 0; b < 64; ++b) bits |= std::uint64_t{xs[b] - ms[b] > 0.0f} << b;
#endif
      codes[r * words + w] = bits;
    }
  });
}

bool quant_avx_vnni_active() {
  return active_backend() == Backend::kAvx2 && detail::quant_avx_vnni_usable();
}

bool quant_amx_active() {
  // The group the active variant's int8 kernels take: larger than the vectors' only with AMX.
  return detail::quant_kernels(active_backend()).int8.group > detail::kQuantGroup;
}

void quant_score_int8(const std::uint8_t* codes, std::int64_t n, std::int32_t d, const std::int8_t* queries,
                      std::int64_t nq, std::int32_t k, int threads, std::int32_t* scores, std::int64_t* idx) {
  quant_score_int8(codes, n, d, queries, nq, k, threads, scores, idx, active_backend());
}

void quant_score_int8(const std::uint8_t* codes, std::int64_t n, std::int32_t d, const std::int8_t* queries,
                      std::int64_t nq, std::int32_t k, int threads, std::int32_t* scores, std::int64_t* idx,
                      Backend backend) {
  const detail::QuantKernels kern = detail::quant_kernels(backend);
  topk(int8_scan(kern, codes, n, d, queries, nq), k, threads, false, scores, idx);
}

void quant_score_int4(const std::uint8_t* codes, std::int64_t n, std::int32_t d, const std::int8_t* queries,
                      std::int64_t nq, std::int32_t k, int threads, std::int32_t* scores, std::int64_t* idx) {
  quant_score_int4(codes, n, d, queries, nq, k, threads, scores, idx, active_backend());
}

void quant_score_int4(const std::uint8_t* codes, std::int64_t n, std::int32_t d, const std::int8_t* queries,
                      std::int64_t nq, std::int32_t k, int threads, std::int32_t* scores, std::int64_t* idx,
                      Backend backend) {
  const detail::QuantKernels kern = detail::quant_kernels(backend);
  topk(int4_scan(kern, codes, n, d, queries, nq), k, threads, false, scores, idx);
}

void quant_score_l2(const std::uint8_t* codes, std::int64_t n, std::int32_t d, bool four_bit,
                    const std::int8_t* queries, std::int64_t nq, const double* qscale, const float* bias,
                    std::int32_t k, int threads, double* keys, std::int64_t* idx) {
  quant_score_l2(codes, n, d, four_bit, queries, nq, qscale, bias, k, threads, keys, idx, active_backend());
}

void quant_score_l2(const std::uint8_t* codes, std::int64_t n, std::int32_t d, bool four_bit,
                    const std::int8_t* queries, std::int64_t nq, const double* qscale, const float* bias,
                    std::int32_t k, int threads, double* keys, std::int64_t* idx, Backend backend) {
  check_sizes(n, d, nq);
  for (std::int64_t q = 0; q < nq; ++q) {
    if (!std::isfinite(qscale[q]))
      throw std::invalid_argument("qscale[" + std::to_string(q) + "] must be finite");
  }
  for (std::int64_t j = 0; j < n; ++j) {
    if (!std::isfinite(bias[j]))
      throw std::invalid_argument("bias[" + std::to_string(j) + "] must be finite");
  }
  const detail::QuantKernels kern = detail::quant_kernels(backend);
  const L2Keys l2{qscale, bias};
  topk_impl<double>(
      four_bit ? int4_scan(kern, codes, n, d, queries, nq) : int8_scan(kern, codes, n, d, queries, nq), k,
      threads, false, &l2, keys, idx);
}

void quant_score_binary(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                        const std::uint64_t* queries, std::int64_t nq, std::int32_t k, int threads,
                        std::int32_t* dist, std::int64_t* idx) {
  quant_score_binary(codes, n, words, queries, nq, k, threads, dist, idx, active_backend());
}

void quant_score_binary(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                        const std::uint64_t* queries, std::int64_t nq, std::int32_t k, int threads,
                        std::int32_t* dist, std::int64_t* idx, Backend backend) {
  if (n < 0 || nq < 0) throw std::invalid_argument("row counts must be >= 0");
  if (words < 1 || words > kQuantMaxDim / 64) {
    throw std::invalid_argument("words must be in 1.." + std::to_string(kQuantMaxDim / 64) + ", got " +
                                std::to_string(words));
  }
  if (words < 8) {
    // The hamming family's kNN is the faster one under 8 words (its kernels skip codes beyond the
    // current k-th distance; at 2 and 3 words it measured 1.3-3.9x the block kernels, at 5 to 7
    // 2.0-2.3x, 16 and 200 queries, AVX2); same order, ties and padding. From 8 words on the two
    // measured the same (0.85-1.05x).
    if (k < 1) throw std::invalid_argument("k must be >= 1, got " + std::to_string(k));
    hamming_knn(codes, nullptr, n, queries, nq, words, k, threads, dist, idx, backend);
    return;
  }
  const detail::QuantKernels kern = detail::quant_kernels(backend);
  const Scan sc{kern.binary,
                reinterpret_cast<const std::uint8_t*>(codes),
                n,
                std::int64_t{words} * 8,
                words,
                reinterpret_cast<const std::uint8_t*>(queries),
                std::int64_t{words} * 8,
                nq,
                detail::kQuantUnitBinary};
  topk(sc, k, threads, true, dist, idx);
}

void quant_dot_int8_all(const std::uint8_t* codes, std::int64_t n, std::int32_t d, const std::int8_t* queries,
                        std::int64_t nq, int threads, std::int32_t* out) {
  quant_dot_int8_all(codes, n, d, queries, nq, threads, out, active_backend());
}

void quant_dot_int8_all(const std::uint8_t* codes, std::int64_t n, std::int32_t d, const std::int8_t* queries,
                        std::int64_t nq, int threads, std::int32_t* out, Backend backend) {
  const detail::QuantKernels kern = detail::quant_kernels(backend);
  const Scan sc = int8_scan(kern, codes, n, d, queries, nq);
  threads = resolve_threads(threads);
  const Grid grid(nq, n, threads);
  parallel_for(grid.batches * grid.splits, threads, [&](std::int64_t t) {
    const std::int64_t b = t / grid.splits, p = t % grid.splits;
    const std::int64_t q0 = b * kBatchQueries, q1 = std::min(nq, q0 + kBatchQueries);
    scan_range(sc, q0, q1, split_point(n, grid.splits, p), split_point(n, grid.splits, p + 1),
               [&](std::int64_t q, std::int64_t r, const std::int32_t* s, std::int64_t nb) {
                 std::memcpy(out + q * n + r, s, static_cast<std::size_t>(nb) * sizeof(std::int32_t));
               });
  });
}

// Exact rerank sums in float64 over 8 interleaved partial sums (dimension t into sum t % 8), added
// in a fixed tree (QuantRerankFn): independent chains, where one running sum waits on each add's
// latency (64 queries x 200 candidates x 512 dimensions: about a quarter of a binary + rerank
// search went to that chain). Deterministic: the same order for every row and backend. The SIMD
// variants score four candidates at a time in float64 vectors (quant_rerank, one thread, 64 queries
// x 100 random candidates of 512 dimensions: 0.6 / 1.1 / 1.7 ms for rows in L2 / L3 / memory,
// against 1.4 / 2.1 / 2.8 ms with the scalar sums and every line of a row prefetched).
void quant_rerank(const float* x, std::int64_t n, std::int32_t d, const float* queries, std::int64_t nq,
                  const std::int64_t* cand, std::int32_t m, std::int32_t k, bool l2, int threads,
                  float* scores, std::int64_t* pos) {
  quant_rerank(x, n, d, queries, nq, cand, m, k, l2, threads, scores, pos, active_backend());
}

void quant_rerank(const float* x, std::int64_t n, std::int32_t d, const float* queries, std::int64_t nq,
                  const std::int64_t* cand, std::int32_t m, std::int32_t k, bool l2, int threads,
                  float* scores, std::int64_t* pos, Backend backend) {
  check_sizes(n, d, nq);
  const detail::QuantRerankFn rerank = detail::quant_kernels(backend).rerank;
  const std::int32_t d8 = d / 8 * 8;
  if (m < 1 || k < 1 || k > m) {
    throw std::invalid_argument("rerank needs 1 <= k <= m, got k = " + std::to_string(k) +
                                ", m = " + std::to_string(m));
  }
  for (std::int64_t i = 0; i < nq * m; ++i) {
    if (cand[i] < 0 || cand[i] >= n) {
      throw std::invalid_argument("candidate " + std::to_string(cand[i]) + " is not a row of the " +
                                  std::to_string(n) + " float vectors");
    }
  }
  // Rows fetched ahead of the ones being scored: each is d * 4 bytes at a random place.
  constexpr std::int32_t kAhead = 8;
  parallel_for(nq, resolve_threads(threads), [&](std::int64_t q) {
    const float* qv = queries + q * d;
    const std::int64_t* c = cand + q * m;
    struct Scored {
      float key;  // smaller is better: -dot or the distance
      float score;
      std::int64_t j;
    };
    std::vector<Scored> all(static_cast<std::size_t>(m));
    // The first 4 lines of a row ahead: the hardware streams the rest once the row is being read,
    // and a prefetch of every line (32 for 512 dimensions) was a quarter of the time on cached rows.
    auto fetch = [&](std::int32_t i) {
      const char* row = reinterpret_cast<const char*>(x + c[i] * d);
      for (std::int64_t b = 0; b < std::min<std::int64_t>(std::int64_t{d} * 4, 256); b += 64)
        __builtin_prefetch(row + b);
    };
    for (std::int32_t i = 0; i < std::min(kAhead, m); ++i) fetch(i);
    for (std::int32_t i = 0; i < m; i += detail::kQuantRerankRows) {
      const int nr = std::min(detail::kQuantRerankRows, m - i);
      const float* rows[detail::kQuantRerankRows];
      for (int r = 0; r < nr; ++r) {
        if (i + r + kAhead < m) fetch(i + r + kAhead);
        rows[r] = x + c[i + r] * d;
      }
      double lanes[8 * detail::kQuantRerankRows];
      rerank(rows, nr, qv, d8, l2, lanes);
      for (int r = 0; r < nr; ++r) {
        const auto sc = static_cast<float>(rerank_sum(lanes + 8 * r, rows[r], qv, d, l2));
        all[static_cast<std::size_t>(i + r)] = {l2 ? sc : -sc, sc, c[i + r]};
      }
    }
    std::partial_sort(all.begin(), all.begin() + k, all.end(), [](const Scored& a, const Scored& b) {
      return a.key < b.key || (a.key == b.key && a.j < b.j);
    });
    for (std::int32_t i = 0; i < k; ++i) {
      scores[q * k + i] = all[static_cast<std::size_t>(i)].score;
      pos[q * k + i] = all[static_cast<std::size_t>(i)].j;
    }
  });
}

}  // namespace mmcore
