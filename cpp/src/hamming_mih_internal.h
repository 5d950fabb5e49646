// Multi-index hashing (MIH) for Hamming radius search and the self-join, shared by the CPU driver
// (hamming.cpp) and the GPU join (cuda/hamming.cu, run on the CPU by tests/gpu/search_emulator.h).
//
// A code of `bits` bits is cut into m substrings; two codes within r differ in at most
// floor(r / m) bits of at least one of them (pigeonhole), so only the pairs whose substrings fall
// in nearby buckets of some substring's table are compared. A pair is reported by the first
// searched substring in which it is close (`seen_earlier`), so each pair once.
//
// The GPU join (per searched substring c, cuda/hamming.cu):
// 1. keys: each code's substring c; a stable radix sort of (key, position) gives `perm` (the
//    positions in bucket order, by position within a bucket) and the codes are gathered in that
//    order; offsets[s] = the first sorted row whose key is >= s (s in 0..2^len).
// 2. items: bucket u is cut into chunks of kMihChunkRows rows; an exclusive scan of the chunk
//    counts numbers them (item_start). A warp takes an item: its rows against, for each mask of
//    the ball (mask 0 first: the bucket itself, columns after the row), the bucket v = u ^ mask
//    when v > u (each pair of buckets once). The (row, column) pairs of a span are numbered and
//    dealt to the lanes 32 at a time (buckets hold a few codes: lanes would idle on row-by-row).
// 3. a match (distance <= r and not seen earlier) is appended at an atomic counter's slot as the
//    key first << 32 | second and its distance, when the slot is within the buffer's capacity;
//    the counter counts on, so a full buffer is grown to the count and the join run again.
// 4. the pairs are sorted by key (positions < 2^31), which gives hamming_join's (a, b) order.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "hd_internal.h"

namespace mmcore::detail {

/// Largest substring for MIH: its offsets table is 4 * 2^b bytes.
constexpr int kMaxSubstringBits = 24;
/// Most substrings of a plan (m <= bits / 4; wider codes are cut into at most 64).
constexpr int kMihMaxSubstrings = 64;

/// Bits [lo, lo + len) of a code (len <= 32), bit 0 = bit 0 of word 0.
MMCORE_HD inline std::uint32_t substring_of(const std::uint64_t* code, int lo, int len) {
  const int w = lo >> 6, o = lo & 63;
  std::uint64_t v = code[w] >> o;
  if (o + len > 64) v |= code[w + 1] << (64 - o);
  return static_cast<std::uint32_t>(v & ((std::uint64_t{1} << len) - 1));
}

// Without -mpopcnt (hamming.cpp is built for every CPU) __builtin_popcount is a library call.
MMCORE_HD inline int popcount32(std::uint32_t x) {
#if defined(__CUDA_ARCH__)
  return __popc(x);
#else
  x = x - ((x >> 1) & 0x55555555u);
  x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
  return static_cast<int>((((x + (x >> 4)) & 0x0f0f0f0fu) * 0x01010101u) >> 24);
#endif
}

/// sum_{i <= s} C(b, i) as a double (cost model only).
inline double ball_volume(int b, int s) {
  if (s < 0) return 0;
  if (s >= b) return std::ldexp(1.0, b);
  double v = 0, c = 1;
  for (int i = 0; i <= s; ++i) {
    v += c;
    c = c * (b - i) / (i + 1);
  }
  return v;
}

/// A split of the code into m substrings and the radius searched in each (-1: not searched).
struct MihPlan {
  int m = 0;
  int s = 0;  // floor(r / m)
  int lo[kMihMaxSubstrings] = {0};
  int len[kMihMaxSubstrings] = {0};
  int radius[kMihMaxSubstrings] = {0};
  double candidates = 0;  // model estimate of distance computations
  double cost = 0;        // model estimate (ns on the CPU, relative units on the GPU)
};

/// First (bits mod m) substrings are one bit longer; with r = s*m + a the first a + 1 substrings
/// are searched within s, the rest within s - 1. m <= kMihMaxSubstrings.
inline MihPlan make_plan(int bits, int m, int r) {
  MihPlan p;
  p.m = m;
  p.s = r / m;
  const int a = r % m;
  int lo = 0;
  for (int c = 0; c < m; ++c) {
    p.lo[c] = lo;
    p.len[c] = bits / m + (c < bits % m ? 1 : 0);
    p.radius[c] = c <= a ? p.s : p.s - 1;
    lo += p.len[c];
  }
  return p;
}

/// Costs per unit; they only have to rank the choices. CPU (ns): measured single-threaded on an
/// AMD EPYC (Zen 3) with the AVX2 kernels (1M clustered 64-bit codes, r = 4 and 8); a bucket lookup
/// costs a cache miss once the offsets table outgrows L2.
struct CostModel {
  double pair_brute;   // one distance in a contiguous scan
  double pair_mih;     // one distance against gathered neighbour buckets
  double build;        // one code placed in one table (a scattered write: cache-miss bound)
  double slot;         // one offsets entry cleared, summed and shifted (and its page faulted in)
  double probe_small;  // one bucket looked up, tables of <= 2^17 slots
  double probe_large;  // the same in a larger table
  double gather = 0;   // radius search: one candidate copied into the query's run (its code and
                       // position); a join gathers once per bucket, for all of the bucket's rows
  // Other widths (the any-width kernel): 0.6 + 0.3 ns a word, its kNN cost per pair on an AMD
  // EPYC (Zen 3), one thread, when it counted with POPCNT only (1.3 ns at 2 words, 3.7 at 12, 5.0
  // at 16; its vpshufb counts since take 2.1 at 8, 2.6 at 12, 4.2 at 16: the model ranks plans, and
  // both methods pay the same per pair); a radius under a quarter of the bits gives most pairs up
  // after the first words, which both methods share.
  explicit CostModel(std::int32_t words)
      : pair_brute(words == 1   ? 0.5
                   : words == 4 ? 2.5
                                : wide_pair(words)),
        pair_mih(words == 1   ? 0.8
                 : words == 4 ? 2.5
                              : wide_pair(words)),
        build(25.0),
        slot(10.0),
        probe_small(3.0),
        probe_large(15.0),
        // 2.3 ns a candidate in all on crowded colorhash codes (Sapphire Rapids, 2 threads,
        // 2.6e8 candidates), 0.8 of it the distance.
        gather(words == 1   ? 1.5
               : words == 4 ? 3.0
                            : 1.0 + 0.5 * words) {}
  static double wide_pair(std::int32_t words) { return 0.6 + 0.3 * words; }
  CostModel(double pair_brute_, double pair_mih_, double build_, double slot_, double probe_small_,
            double probe_large_)
      : pair_brute(pair_brute_),
        pair_mih(pair_mih_),
        build(build_),
        slot(slot_),
        probe_small(probe_small_),
        probe_large(probe_large_) {}
  double probe(int len) const { return len <= 17 ? probe_small : probe_large; }
};

inline bool plan_usable(const MihPlan& p) {
  for (int c = 0; c < p.m; ++c) {
    if (p.len[c] > kMaxSubstringBits) return false;
  }
  return true;
}

/// XORs of sampled pairs of codes (query, base) or (base, base), `words` words each: what the
/// codes look like to a plan. Uniform codes meet in a substring's ball at the rate vol / slots;
/// codes with fixed bits (a 42-bit colorhash in a 64-bit index, 32-bit codes in uint64) or a
/// common value meet far more often, and a plan costed as uniform would scan most of the base per
/// query. Deterministic: fixed strides, no random state.
struct PairSample {
  std::vector<std::uint64_t> xors;
  std::int32_t words = 0;
  std::int64_t count() const { return words > 0 ? static_cast<std::int64_t>(xors.size()) / words : 0; }
};

inline PairSample sample_pairs(const std::uint64_t* a, std::int64_t na, const std::uint64_t* b,
                               std::int64_t nb, std::int32_t words, std::int64_t pairs = 4096) {
  PairSample ps;
  ps.words = words;
  if (na < 1 || nb < 2) return ps;
  ps.xors.reserve(static_cast<std::size_t>(pairs * words));
  for (std::int64_t i = 0; i < pairs; ++i) {
    const std::int64_t x =
        static_cast<std::int64_t>((static_cast<std::uint64_t>(i) * 0x9E3779B97F4A7C15ull) >> 11) % na;
    std::int64_t y =
        static_cast<std::int64_t>((static_cast<std::uint64_t>(i) * 0xC2B2AE3D27D4EB4Full + 1) >> 11) % nb;
    if (a == b && y == x) y = (y + 1) % nb;  // a self-join's pairs are of two rows
    for (std::int32_t w = 0; w < words; ++w) ps.xors.push_back(a[x * words + w] ^ b[y * words + w]);
  }
  return ps;
}

/// The rate at which a pair meets in substring (lo, len) within `radius`: vol / slots (uniform
/// codes) unless the sample shows at least 8 such pairs and 4 times that rate, then the sampled
/// rate. Uniform codes almost never pass that test (at 4x the expected count), so their plans
/// do not move with sampling noise.
inline double meet_rate(const PairSample* ps, int lo, int len, int radius) {
  const double uniform = ball_volume(len, radius) / std::ldexp(1.0, len);
  if (ps == nullptr || ps->count() == 0) return uniform;
  std::int64_t hits = 0;
  for (std::int64_t i = 0; i < ps->count(); ++i) {
    hits += popcount32(substring_of(ps->xors.data() + i * ps->words, lo, len)) <= radius ? 1 : 0;
  }
  const double rate = static_cast<double>(hits) / static_cast<double>(ps->count());
  return hits >= 8 && rate > 4 * uniform ? rate : uniform;
}

/// Model cost of a plan for nq queries against n codes, or for the self-join of n codes when
/// nq < 0: per searched substring, each query (join: each non-empty bucket) probes the ball of
/// buckets around its substring; pairs are counted as for uniform codes, or at the rate a sample
/// of pairs shows where the codes are far from uniform.
inline void cost_plan(MihPlan* p, double n, double nq, const CostModel& cm, const PairSample* ps = nullptr) {
  p->cost = 0;
  p->candidates = 0;
  for (int c = 0; c < p->m; ++c) {
    if (p->radius[c] < 0) continue;
    const double slots = std::ldexp(1.0, p->len[c]);
    const double vol = ball_volume(p->len[c], p->radius[c]);
    const double probers = nq < 0 ? slots * (1 - std::exp(-n / slots)) : nq;
    const double pairs = (nq < 0 ? n / 2 : nq) * n * meet_rate(ps, p->lo[c], p->len[c], p->radius[c]);
    p->candidates += pairs;
    const double per_pair = cm.pair_mih + (nq < 0 ? 0.0 : cm.gather);
    p->cost += cm.build * n + cm.slot * slots + cm.probe(p->len[c]) * probers * vol + per_pair * pairs;
  }
}

/// The cheapest usable plan (by the model) with substrings of at most max_len bits, or m = 0 when
/// none is usable.
inline MihPlan best_plan(int bits, int r, double n, double nq, const CostModel& cm,
                         int max_len = kMaxSubstringBits, const PairSample* ps = nullptr) {
  MihPlan best;
  best.cost = std::numeric_limits<double>::infinity();
  // m > r + 1 is a plan too: only the first r + 1 (shorter) substrings are searched, within 0.
  for (int m = 1; m <= bits / 4 && m <= kMihMaxSubstrings; ++m) {
    MihPlan p = make_plan(bits, m, r);
    if (!plan_usable(p) || p.len[0] > max_len) continue;
    cost_plan(&p, n, nq, cm, ps);
    if (p.cost < best.cost) best = p;
  }
  if (!std::isfinite(best.cost)) best.m = 0;
  return best;
}

/// All b-bit masks with at most s bits set, 0 first, then by the number of bits set.
inline std::vector<std::uint32_t> ball_masks(int b, int s) {
  std::vector<std::uint32_t> masks;
  if (s >= b) {
    masks.resize(std::size_t{1} << b);
    for (std::size_t i = 0; i < masks.size(); ++i) masks[i] = static_cast<std::uint32_t>(i);
    return masks;
  }
  masks.push_back(0);
  for (int bitsset = 1; bitsset <= s; ++bitsset) {
    // Gosper's hack over b-bit words with `bitsset` ones.
    std::uint64_t v = (std::uint64_t{1} << bitsset) - 1;
    while (v < (std::uint64_t{1} << b)) {
      masks.push_back(static_cast<std::uint32_t>(v));
      const std::uint64_t t = v | (v - 1);
      v = (t + 1) | (((~t & -~t) - 1) >> (__builtin_ctzll(v) + 1));
    }
  }
  return masks;
}

/// Whether the pair with XOR v (words <= 4) is close in a searched substring before c (so it is
/// reported there).
MMCORE_HD inline bool seen_earlier_xor(const MihPlan& p, int c, const std::uint64_t* v) {
  for (int e = 0; e < c; ++e) {
    if (p.radius[e] >= 0 && popcount32(substring_of(v, p.lo[e], p.len[e])) <= p.radius[e]) return true;
  }
  return false;
}

MMCORE_HD inline bool seen_earlier(const MihPlan& p, int c, const std::uint64_t* x, const std::uint64_t* y,
                                   std::int32_t words) {
  if (words > 4) {  // wider codes (CPU only): each substring of the two codes, XORed
    for (int e = 0; e < c; ++e) {
      if (p.radius[e] >= 0 &&
          popcount32(substring_of(x, p.lo[e], p.len[e]) ^ substring_of(y, p.lo[e], p.len[e])) <= p.radius[e])
        return true;
    }
    return false;
  }
  std::uint64_t v[4] = {0, 0, 0, 0};
  for (int w = 0; w < words; ++w) v[w] = x[w] ^ y[w];
  return seen_earlier_xor(p, c, v);
}

// ---- the GPU self-join -------------------------------------------------------------------------

/// Rows of a bucket per work item.
constexpr std::int64_t kMihChunkRows = 32;
/// Warps per block of the pairs kernel.
constexpr int kMihWarpsPerBlock = 8;
/// Largest substring of a GPU plan (its offsets and item tables: 8 * 2^b bytes).
constexpr int kMihGpuMaxBits = 20;

/// The GPU join's plan for n codes of `words` words (<= 4) at radius r; m = 0: brute force.
/// `method` 0 auto (the cheaper by the model), 1 brute force, 2 MIH. Model units: one distance
/// of the brute-force kernel (coalesced rows, ~1e11 a second on an H200) = 1; a gathered distance
/// costs 4 (an index division, scattered rows); a code placed in a table 40 (a radix sort of its
/// key and a 32-byte gather); an offsets slot 2; a bucket probed 40 (two dependent reads of the
/// offsets table from L2). First guesses, to be calibrated on a GPU (bench/gpu_check.sh times the
/// 1M-code join both ways).
inline MihPlan gpu_join_plan(std::int64_t n, std::int32_t words, std::int32_t r, int method) {
  MihPlan none;
  if (words < 1 || words > 4 || method == 1 || n < 2) return none;
  const CostModel cm(1.0, 4.0, 40.0, 2.0, 40.0, 40.0);
  const int bits = 64 * words;
  MihPlan plan = best_plan(bits, r, static_cast<double>(n), -1, cm, kMihGpuMaxBits);
  if (plan.m == 0 && method == 2) {
    plan = make_plan(bits, (bits + kMihGpuMaxBits - 1) / kMihGpuMaxBits, r);
    cost_plan(&plan, static_cast<double>(n), -1, cm);
  }
  const double brute = static_cast<double>(n) * static_cast<double>(n - 1) / 2;
  if (method == 0 && plan.m > 0 && plan.cost >= brute) plan.m = 0;
  return plan;
}

/// The GPU radius search's plan for nq queries against n codes (m = 0: brute force); method as
/// for the join. MIH needs nq < 2^23 (the result keys hold the query in 23 bits) and n < 2^31
/// (cub's sorts count items in int).
inline MihPlan gpu_radius_plan(std::int64_t n, std::int64_t nq, std::int32_t words, std::int32_t r,
                               int method) {
  MihPlan none;
  if (words < 1 || words > 4 || method == 1 || n < 1 || n > 0x7FFFFFFF || nq < 1 ||
      nq >= (std::int64_t{1} << 23))
    return none;
  const CostModel cm(1.0, 4.0, 40.0, 2.0, 40.0, 40.0);
  const int bits = 64 * words;
  MihPlan plan = best_plan(bits, r, static_cast<double>(n), static_cast<double>(nq), cm, kMihGpuMaxBits);
  if (plan.m == 0 && method == 2) {
    plan = make_plan(bits, (bits + kMihGpuMaxBits - 1) / kMihGpuMaxBits, r);
    cost_plan(&plan, static_cast<double>(n), static_cast<double>(nq), cm);
  }
  if (method == 0 && plan.m > 0 && plan.cost >= static_cast<double>(n) * static_cast<double>(nq)) plan.m = 0;
  return plan;
}

/// A radius result as one key, sorted = by (query, distance, position): query << 41 |
/// distance << 32 | position (distance <= 256 in 9 bits, position < 2^32).
constexpr int kMihRadiusQueryShift = 41;
MMCORE_HD inline std::uint64_t mih_radius_key(std::int64_t q, std::int32_t dist, std::uint32_t pos) {
  return static_cast<std::uint64_t>(q) << kMihRadiusQueryShift | static_cast<std::uint64_t>(dist) << 32 | pos;
}
MMCORE_HD inline std::int32_t mih_radius_key_dist(std::uint64_t key) {
  return static_cast<std::int32_t>((key >> 32) & 0x1FF);
}
/// Bits that hold 0..n - 1 (at least 1).
inline int bits_for(std::int64_t n) {
  int b = 1;
  while ((std::int64_t{1} << b) < n) ++b;
  return b;
}

/// lims from the sorted result keys, thread j of count + 1: lims[q] = j for the queries q in
/// (query of key j - 1, query of key j] (key -1's query -1, key count's nq), so lims[q] is where
/// query q's results start and lims[nq] = count.
MMCORE_HD inline void mih_lims_step(const std::uint64_t* keys, std::int64_t count, std::int64_t nq,
                                    std::int64_t j, std::int64_t* lims) {
  const std::int64_t prev = j == 0 ? -1 : static_cast<std::int64_t>(keys[j - 1] >> kMihRadiusQueryShift);
  const std::int64_t cur = j == count ? nq : static_cast<std::int64_t>(keys[j] >> kMihRadiusQueryShift);
  for (std::int64_t q = prev + 1; q <= cur; ++q) lims[q] = j;
}

/// Step 1's offsets, thread j of n + 1: offsets[s] = j for the slots s in (key[j-1], key[j]]
/// (key[-1] = -1, key[n] = slots), so every slot gets the first row at or after it.
MMCORE_HD inline void mih_offsets_step(const std::uint32_t* sorted_keys, std::int64_t n, std::int64_t slots,
                                       std::int64_t j, std::uint32_t* offsets) {
  const std::int64_t prev = j == 0 ? -1 : static_cast<std::int64_t>(sorted_keys[j - 1]);
  const std::int64_t cur = j == n ? slots : static_cast<std::int64_t>(sorted_keys[j]);
  for (std::int64_t s = prev + 1; s <= cur; ++s) offsets[s] = static_cast<std::uint32_t>(j);
}

/// Step 2's chunk count of bucket u (u == slots: 0, so the exclusive scan's last entry is the
/// total).
MMCORE_HD inline std::uint32_t mih_chunks(const std::uint32_t* offsets, std::int64_t slots, std::int64_t u) {
  if (u >= slots) return 0;
  const std::uint32_t rows = offsets[u + 1] - offsets[u];
  return static_cast<std::uint32_t>((rows + kMihChunkRows - 1) / kMihChunkRows);
}

/// The bucket of item i: the u with item_start[u] <= i < item_start[u + 1] (empty buckets have
/// item_start[u] == item_start[u + 1] and are never found).
MMCORE_HD inline std::int64_t mih_item_bucket(const std::uint32_t* item_start, std::int64_t slots,
                                              std::uint32_t i) {
  std::int64_t lo = 0, hi = slots;  // item_start[lo] <= i < item_start[hi]
  while (hi - lo > 1) {
    const std::int64_t mid = (lo + hi) >> 1;
    if (item_start[mid] <= i) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

/// The (row, column) pairs an item compares against one bucket: rows [a0, a0 + nrows) against
/// columns [b0, b0 + ncols); same: the bucket itself, where only columns after the row count.
struct MihSpan {
  std::int64_t a0 = 0, nrows = 0, b0 = 0, ncols = 0;
  bool same = false;
  MMCORE_HD std::int64_t pairs() const { return nrows * ncols; }
};

/// Item i's span against the bucket u ^ mask (false: nothing to compare).
MMCORE_HD inline bool mih_span(const std::uint32_t* offsets, const std::uint32_t* item_start, std::int64_t u,
                               std::uint32_t i, std::uint32_t mask, MihSpan* sp) {
  const std::int64_t chunk = static_cast<std::int64_t>(i - item_start[u]);
  sp->a0 = offsets[u] + chunk * kMihChunkRows;
  const std::int64_t end = offsets[u + 1];
  sp->nrows = end - sp->a0 < kMihChunkRows ? end - sp->a0 : kMihChunkRows;
  const std::int64_t v = static_cast<std::int64_t>(static_cast<std::uint32_t>(u) ^ mask);
  sp->same = mask == 0;
  if (sp->same) {
    sp->b0 = sp->a0 + 1;
    sp->ncols = end - sp->b0;
  } else {
    if (v < u) return false;
    sp->b0 = offsets[v];
    sp->ncols = static_cast<std::int64_t>(offsets[v + 1]) - sp->b0;
  }
  return sp->nrows > 0 && sp->ncols > 0;
}

/// Pair p (< sp.pairs()) of a span as sorted rows (ia, ib); false when it is no pair (same bucket,
/// column not after the row).
/// (A 32-bit division where the span allows: a 64-bit one is a long instruction sequence on a GPU.)
MMCORE_HD inline bool mih_span_pair(const MihSpan& sp, std::int64_t p, std::int64_t* ia, std::int64_t* ib) {
  if (sp.ncols <= 0xFFFFFFFFLL && p <= 0xFFFFFFFFLL) {
    const auto q = static_cast<std::uint32_t>(p), c = static_cast<std::uint32_t>(sp.ncols);
    *ia = sp.a0 + q / c;
    *ib = sp.b0 + q % c;
  } else {
    *ia = sp.a0 + p / sp.ncols;
    *ib = sp.b0 + p % sp.ncols;
  }
  return !sp.same || *ib > *ia;
}

/// Whether sorted rows x, y (words <= 4) are a pair of substring c's pass: within r and not close
/// in an earlier searched substring. *dist gets the distance.
MMCORE_HD inline bool mih_pair_match(const MihPlan& p, int c, const std::uint64_t* x, const std::uint64_t* y,
                                     std::int32_t words, std::int32_t r, std::int32_t* dist) {
  std::uint64_t v[4] = {0, 0, 0, 0};
  std::int32_t d = 0;
  for (int w = 0; w < words; ++w) {
    v[w] = x[w] ^ y[w];
#if defined(__CUDA_ARCH__)
    d += __popcll(v[w]);
#else
    d += __builtin_popcountll(v[w]);
#endif
  }
  *dist = d;
  return d <= r && !seen_earlier_xor(p, c, v);
}

/// The output key of a pair of original positions: smaller << 32 | larger.
MMCORE_HD inline std::uint64_t mih_pair_key(std::uint32_t pa, std::uint32_t pb) {
  return pa < pb ? (static_cast<std::uint64_t>(pa) << 32 | pb) : (static_cast<std::uint64_t>(pb) << 32 | pa);
}

}  // namespace mmcore::detail
