// Hamming drivers (contract: mmcore/hamming.h): blocking, threads, top-k, multi-index hashing,
// union-find. The per-variant work is the scan kernel of hamming_internal.h.
#include "mmcore/hamming.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "hamming_internal.h"
#include "hamming_mih_internal.h"
#include "mmcore/parallel.h"

namespace mmcore {

HammingOutput::~HammingOutput() {
  std::free(lims);
  std::free(first);
  std::free(second);
  std::free(dist);
}

namespace {

using detail::ball_masks;
using detail::best_plan;
using detail::CostModel;
using detail::HammingHit;
using detail::HammingKernels;
using detail::HammingScan;
using detail::kMaxSubstringBits;
using detail::kScanQueries;
using detail::make_plan;
using detail::MihPlan;
using detail::PairSample;
using detail::sample_pairs;
using detail::seen_earlier;
using detail::substring_of;

// Base codes per scan call: bounds are refreshed between calls, and the hit buffer holds
// kScanQueries * kScanStep hits.
constexpr std::int64_t kScanStep = 256;
// Base bytes a group of queries sweeps before the next chunk: sized to stay in L2.
constexpr std::int64_t kChunkBytes = 128 * 1024;
// Queries per kNN / radius task.
constexpr std::int64_t kGroupQueries = 32;

void check_words(std::int32_t words) {
  if (words < 1 || words > kHammingMaxWords) {
    throw std::invalid_argument("words must be in 1.." + std::to_string(kHammingMaxWords) +
                                " (codes of 64 to " + std::to_string(64 * kHammingMaxWords) + " bits), got " +
                                std::to_string(words));
  }
}

void check_counts(std::int64_t n, std::int64_t nq) {
  if (n < 0 || nq < 0) throw std::invalid_argument("code counts must be >= 0");
  // Positions are stored as uint32 in scan hits and MIH tables.
  if (n > std::numeric_limits<std::uint32_t>::max()) {
    throw std::invalid_argument("at most 2^32 - 1 base codes per call, got " + std::to_string(n));
  }
}

int resolve_threads(int threads) {
  return threads <= 0 ? hardware_threads() : threads;
}

template <class T>
T* malloc_array(std::int64_t count) {
  void* p = std::malloc(static_cast<std::size_t>(std::max<std::int64_t>(count, 1)) * sizeof(T));
  if (p == nullptr) throw std::bad_alloc();
  return static_cast<T*>(p);
}

std::int64_t chunk_codes(std::int32_t words) {
  return kChunkBytes / (8 * words);
}

// ---- kNN ----

struct Entry {
  std::int32_t d;
  std::int64_t id;
};

inline bool entry_less(const Entry& a, const Entry& b) {
  return a.d < b.d || (a.d == b.d && a.id < b.id);
}

// At most k entries as a max-heap on (d, id): the worst kept entry is h[0].
struct TopK {
  Entry* h = nullptr;
  std::int32_t k = 0;
  std::int32_t size = 0;

  void push(const Entry& e) {
    if (size < k) {
      std::int32_t i = size++;
      while (i > 0) {
        const std::int32_t p = (i - 1) / 2;
        if (!entry_less(h[p], e)) break;
        h[i] = h[p];
        i = p;
      }
      h[i] = e;
    } else if (entry_less(e, h[0])) {
      std::int32_t i = 0;
      for (;;) {
        std::int32_t c = 2 * i + 1;
        if (c >= size) break;
        if (c + 1 < size && entry_less(h[c], h[c + 1])) ++c;
        if (!entry_less(e, h[c])) break;
        h[i] = h[c];
        i = c;
      }
      h[i] = e;
    }
  }

  // Scan bound: a code can enter only below it. With ids increasing in scan order a code at the
  // worst kept distance loses the tie, so the bound is that distance; otherwise one more.
  std::int32_t bound(bool monotonic) const {
    if (size < k) return std::numeric_limits<std::int32_t>::max();
    return monotonic ? h[0].d : h[0].d + 1;
  }
};

void write_row(Entry* e, std::int32_t size, std::int32_t k, std::int32_t* dist, std::int64_t* labels) {
  std::sort(e, e + size, entry_less);
  for (std::int32_t i = 0; i < k; ++i) {
    dist[i] = i < size ? e[i].d : std::numeric_limits<std::int32_t>::max();
    labels[i] = i < size ? e[i].id : -1;
  }
}

// Fills heaps[0..q1-q0) with the top-k of queries [q0, q1) over base codes [j0, j1).
void knn_block(const HammingScan& scan, const std::uint64_t* base, const std::int64_t* ids, bool monotonic,
               const std::uint64_t* queries, std::int64_t q0, std::int64_t q1, std::int64_t j0,
               std::int64_t j1, std::int32_t words, TopK* heaps, HammingHit* hits) {
  const std::int64_t chunk = chunk_codes(words);
  std::int32_t bound[kScanQueries];
  for (std::int64_t c0 = j0; c0 < j1; c0 += chunk) {
    const std::int64_t c1 = std::min(c0 + chunk, j1);
    for (std::int64_t qb = q0; qb < q1; qb += kScanQueries) {
      const int nqb = static_cast<int>(std::min<std::int64_t>(kScanQueries, q1 - qb));
      TopK* h = heaps + (qb - q0);
      for (std::int64_t s = c0; s < c1; s += kScanStep) {
        for (int i = 0; i < nqb; ++i) bound[i] = h[i].bound(monotonic);
        const std::int64_t nh =
            scan(queries + qb * words, nqb, base + s * words, std::min(kScanStep, c1 - s), bound, hits);
        for (std::int64_t t = 0; t < nh; ++t) {
          const std::int64_t pos = s + hits[t].j;
          h[hits[t].q].push({hits[t].d, ids != nullptr ? ids[pos] : pos});
        }
      }
    }
  }
}

bool ids_increasing(const std::int64_t* ids, std::int64_t n) {
  if (ids == nullptr) return true;
  for (std::int64_t i = 1; i < n; ++i) {
    if (ids[i] <= ids[i - 1]) return false;
  }
  return true;
}

// Splits [0, n) into `parts` ranges; range p is [split(p), split(p + 1)).
inline std::int64_t split_point(std::int64_t n, std::int64_t parts, std::int64_t p) {
  return n / parts * p + std::min(p, n % parts);
}

// Tasks over (query group, base range): base ranges only when there are too few query groups to
// keep every thread busy.
struct TaskGrid {
  std::int64_t groups = 0, splits = 1;
  TaskGrid(std::int64_t nq, std::int64_t n, std::int32_t words, int threads) {
    groups = (nq + kGroupQueries - 1) / kGroupQueries;
    const std::int64_t want = 4 * static_cast<std::int64_t>(threads);
    if (groups > 0 && groups < want) {
      const std::int64_t chunks = std::max<std::int64_t>(1, n / chunk_codes(words));
      splits = std::min((want + groups - 1) / groups, chunks);
    }
  }
  std::int64_t tasks() const { return groups * splits; }
};

void check_knn(std::int64_t n, std::int64_t nq, std::int32_t words, std::int32_t k) {
  check_words(words);
  check_counts(n, nq);
  if (k < 1) throw std::invalid_argument("k must be >= 1, got " + std::to_string(k));
}

// ---- radius search ----

struct RadiusHit {
  std::int64_t q;
  std::int64_t id;
  std::int32_t d;
};

// CSR from per-task results: lims by query, then each query's results sorted by (d, id).
void assemble_radius(std::vector<std::vector<RadiusHit>>& parts, std::int64_t nq, int threads,
                     HammingOutput* out) {
  std::int64_t total = 0;
  for (const auto& p : parts) total += static_cast<std::int64_t>(p.size());
  out->lims = malloc_array<std::int64_t>(nq + 1);
  out->second = malloc_array<std::int64_t>(total);
  out->dist = malloc_array<std::int32_t>(total);
  out->count = total;
  std::int64_t* lims = out->lims;
  std::fill(lims, lims + nq + 1, 0);
  for (const auto& p : parts)
    for (const RadiusHit& h : p) ++lims[h.q + 1];
  for (std::int64_t q = 0; q < nq; ++q) lims[q + 1] += lims[q];
  std::vector<std::int64_t> fill(lims, lims + nq);
  for (auto& p : parts) {
    for (const RadiusHit& h : p) {
      const std::int64_t at = fill[static_cast<std::size_t>(h.q)]++;
      out->second[at] = h.id;
      out->dist[at] = h.d;
    }
    std::vector<RadiusHit>().swap(p);
  }
  parallel_for(nq, threads, [&](std::int64_t q) {
    const std::int64_t a = lims[q], b = lims[q + 1];
    bool sorted = true;
    for (std::int64_t i = a + 1; i < b && sorted; ++i) {
      sorted = entry_less({out->dist[i - 1], out->second[i - 1]}, {out->dist[i], out->second[i]});
    }
    if (sorted) return;
    std::vector<Entry> e(static_cast<std::size_t>(b - a));
    for (std::int64_t i = a; i < b; ++i) e[static_cast<std::size_t>(i - a)] = {out->dist[i], out->second[i]};
    std::sort(e.begin(), e.end(), entry_less);
    for (std::int64_t i = a; i < b; ++i) {
      out->dist[i] = e[static_cast<std::size_t>(i - a)].d;
      out->second[i] = e[static_cast<std::size_t>(i - a)].id;
    }
  });
}

// ---- join ----

struct JoinPair {
  std::uint64_t key;  // a << 32 | b
  std::int32_t d;
};

// Pairs scattered by the top bits of a into partitions (each a contiguous range of a), then
// every partition sorted and written out by its own task: a single-threaded sort of a few
// million pairs cost as much as the MIH search itself at r = 8 under perf.
void assemble_join(std::vector<std::vector<JoinPair>>& parts, std::int64_t n, int threads,
                   HammingOutput* out) {
  int pos_bits = 1;
  while ((std::int64_t{1} << pos_bits) < n) ++pos_bits;
  const int shift = 32 + std::max(0, pos_bits - 10);  // at most 1024 partitions
  const std::size_t partitions = (std::size_t{1} << (pos_bits - (shift - 32))) + 1;
  std::vector<std::size_t> start(partitions + 1, 0);
  for (const auto& p : parts)
    for (const JoinPair& x : p) ++start[(x.key >> shift) + 1];
  for (std::size_t i = 0; i < partitions; ++i) start[i + 1] += start[i];
  const std::int64_t total = static_cast<std::int64_t>(start[partitions]);
  std::vector<JoinPair> all(static_cast<std::size_t>(total));
  {
    std::vector<std::size_t> fill(start.begin(), start.end() - 1);
    for (auto& p : parts) {
      for (const JoinPair& x : p) all[fill[x.key >> shift]++] = x;
      std::vector<JoinPair>().swap(p);
    }
  }
  out->first = malloc_array<std::int64_t>(total);
  out->second = malloc_array<std::int64_t>(total);
  out->dist = malloc_array<std::int32_t>(total);
  out->count = total;
  parallel_for(static_cast<std::int64_t>(partitions), threads, [&](std::int64_t part) {
    const std::size_t a = start[static_cast<std::size_t>(part)],
                      b = start[static_cast<std::size_t>(part) + 1];
    std::sort(all.begin() + static_cast<std::ptrdiff_t>(a), all.begin() + static_cast<std::ptrdiff_t>(b),
              [](const JoinPair& x, const JoinPair& y) { return x.key < y.key; });
    for (std::size_t i = a; i < b; ++i) {
      out->first[i] = static_cast<std::int64_t>(all[i].key >> 32);
      out->second[i] = static_cast<std::int64_t>(all[i].key & 0xffffffffu);
      out->dist[i] = all[i].d;
    }
  });
}

// ---- multi-index hashing (plans and shared helpers: hamming_mih_internal.h) ----

// One substring's table: positions sorted by substring, their codes in that order, bucket
// offsets.
struct MihTable {
  std::vector<std::uint32_t> offsets;  // 2^len + 1
  std::vector<std::uint32_t> perm;     // n
  std::vector<std::uint64_t> codes;    // n * words, in perm order
  std::int64_t bytes() const {
    return static_cast<std::int64_t>(offsets.size() * 4 + perm.size() * 4 + codes.size() * 8);
  }
};

// Returns the transient bytes it used beyond the table.
std::int64_t build_table(const std::uint64_t* base, std::int64_t n, std::int32_t words, int lo, int len,
                         int threads, MihTable* t) {
  const std::size_t slots = std::size_t{1} << len;
  std::vector<std::uint32_t>& off = t->offsets;
  off.assign(slots + 1, 0);
  t->perm.resize(static_cast<std::size_t>(n));
  t->codes.resize(static_cast<std::size_t>(n * words));
  auto place = [&](std::int64_t i, std::uint32_t at) {
    t->perm[at] = static_cast<std::uint32_t>(i);
    // A word loop: memcpy with a run-time size of 8 or 32 bytes is a library call per code.
    for (int w = 0; w < words; ++w) t->codes[static_cast<std::size_t>(at) * words + w] = base[i * words + w];
  };
  // The scatter is cache-miss bound, so threads help; each needs its own cursor per bucket, which
  // is allowed while those cursors stay within 8 bytes per code.
  std::int64_t parts = std::min<std::int64_t>(threads, n / 65536);
  while (parts > 1 && static_cast<std::int64_t>(slots) * parts > 2 * n) --parts;
  if (parts <= 1) {
    // Counting sort without a cursor copy: the offsets serve as cursors and are shifted back to
    // bucket starts afterwards.
    for (std::int64_t i = 0; i < n; ++i) ++off[substring_of(base + i * words, lo, len) + 1];
    for (std::size_t s = 0; s < slots; ++s) off[s + 1] += off[s];
    for (std::int64_t i = 0; i < n; ++i) place(i, off[substring_of(base + i * words, lo, len)]++);
    for (std::size_t s = slots; s > 0; --s) off[s] = off[s - 1];
    off[0] = 0;
    return 0;
  }
  // Chunk p's codes of bucket s go to cursor[p * slots + s] onwards, after the earlier chunks'
  // codes of that bucket, so the order within a bucket is by position as in the serial build.
  std::vector<std::uint32_t> cursor(slots * static_cast<std::size_t>(parts), 0);
  parallel_for(parts, threads, [&](std::int64_t p) {
    std::uint32_t* c = cursor.data() + p * slots;
    for (std::int64_t i = split_point(n, parts, p); i < split_point(n, parts, p + 1); ++i) {
      ++c[substring_of(base + i * words, lo, len)];
    }
  });
  std::uint32_t at = 0;
  for (std::size_t s = 0; s < slots; ++s) {
    off[s] = at;
    for (std::int64_t p = 0; p < parts; ++p) {
      const std::uint32_t count = cursor[p * slots + s];
      cursor[p * slots + s] = at;
      at += count;
    }
  }
  off[slots] = at;
  parallel_for(parts, threads, [&](std::int64_t p) {
    std::uint32_t* c = cursor.data() + p * slots;
    for (std::int64_t i = split_point(n, parts, p); i < split_point(n, parts, p + 1); ++i) {
      place(i, c[substring_of(base + i * words, lo, len)]++);
    }
  });
  return static_cast<std::int64_t>(cursor.size() * 4);
}

struct Scratch {
  std::vector<HammingHit> hits;
  Scratch() : hits(static_cast<std::size_t>(kScanQueries * kScanStep)) {}
};

// Scans `rows` (1..kScanQueries codes) against a run of codes with one bound for all rows;
// on_hit(row, index in the run, distance). Returns the pairs compared.
template <class OnHit>
std::int64_t scan_run(const HammingScan& scan, const std::uint64_t* rows, int nrows,
                      const std::uint64_t* codes, std::int64_t len, std::int32_t words,
                      const std::int32_t* bound, HammingHit* hits, OnHit on_hit) {
  for (std::int64_t s = 0; s < len; s += kScanStep) {
    const std::int64_t nh = scan(rows, nrows, codes + s * words, std::min(kScanStep, len - s), bound, hits);
    for (std::int64_t t = 0; t < nh; ++t) on_hit(hits[t].q, s + hits[t].j, hits[t].d);
  }
  return len * nrows;
}

// The codes of the buckets key ^ mask (for the masks `take` accepts) copied into one run, so the
// scan sees one long run instead of many short buckets; where[i] = table index of codes[i].
struct Gathered {
  std::vector<std::uint64_t> codes;
  std::vector<std::uint32_t> where;

  template <class Take>
  void gather(const MihTable& t, std::uint32_t key, const std::vector<std::uint32_t>& masks,
              std::int32_t words, Take take) {
    codes.clear();
    where.clear();
    for (const std::uint32_t mask : masks) {
      const std::uint32_t v = key ^ mask;
      if (!take(v)) continue;
      const std::uint32_t b0 = t.offsets[v], b1 = t.offsets[v + 1];
      for (std::uint32_t i = b0; i < b1; ++i) where.push_back(i);
      codes.insert(codes.end(), t.codes.data() + static_cast<std::size_t>(b0) * words,
                   t.codes.data() + static_cast<std::size_t>(b1) * words);
    }
  }
  std::int64_t size() const { return static_cast<std::int64_t>(where.size()); }
};

void radius_mih(const HammingKernels& kern, const std::uint64_t* base, const std::int64_t* ids,
                std::int64_t n, const std::uint64_t* queries, std::int64_t nq, std::int32_t words,
                std::int32_t r, int threads, const MihPlan& plan, HammingOutput* out) {
  const HammingScan scan = kern.scan(words);
  const std::int64_t groups = (nq + kGroupQueries - 1) / kGroupQueries;
  std::vector<std::vector<RadiusHit>> parts(static_cast<std::size_t>(groups));
  std::vector<std::int64_t> candidates(static_cast<std::size_t>(groups), 0);
  MihTable table;
  std::int64_t peak = 0;
  const std::int32_t bound = r + 1;
  for (int c = 0; c < plan.m; ++c) {
    if (plan.radius[c] < 0) continue;
    const std::int64_t transient = build_table(base, n, words, plan.lo[c], plan.len[c], threads, &table);
    peak = std::max(peak, table.bytes() + transient);
    const std::vector<std::uint32_t> masks = ball_masks(plan.len[c], plan.radius[c]);
    parallel_for(groups, threads, [&](std::int64_t g) {
      Scratch sc;
      Gathered run;
      auto& part = parts[static_cast<std::size_t>(g)];
      std::int64_t cand = 0;
      for (std::int64_t q = g * kGroupQueries; q < std::min(nq, (g + 1) * kGroupQueries); ++q) {
        const std::uint64_t* qc = queries + q * words;
        const std::uint32_t key = substring_of(qc, plan.lo[c], plan.len[c]);
        run.gather(table, key, masks, words, [](std::uint32_t) { return true; });
        cand += scan_run(scan, qc, 1, run.codes.data(), run.size(), words, &bound, sc.hits.data(),
                         [&](std::uint32_t, std::int64_t i, std::int32_t d) {
                           if (seen_earlier(plan, c, qc, run.codes.data() + i * words, words)) return;
                           const std::int64_t pos = table.perm[run.where[static_cast<std::size_t>(i)]];
                           part.push_back({q, ids != nullptr ? ids[pos] : pos, d});
                         });
      }
      candidates[static_cast<std::size_t>(g)] += cand;
    });
  }
  for (const std::int64_t c : candidates) out->stats.candidates += c;
  out->stats.table_bytes = peak;
  assemble_radius(parts, nq, threads, out);
}

// The plain scan of a join bucket's rows q0..q1 (table rows; the bucket ends at a1), up to four
// at a time: each row against the bucket's rows after it (within the bucket only those pairs are
// new) and against the run; every hit to emit(table row, table row, distance). Returns the pairs
// compared.
template <class Emit>
std::int64_t scan_rows(const HammingScan& scan, const std::uint64_t* codes, std::uint32_t q0,
                       std::uint32_t q1, std::uint32_t a1, const Gathered& run, std::int32_t words,
                       const std::int32_t* bound, Scratch& sc, Emit& emit) {
  std::int64_t cand = 0;
  for (std::uint32_t qa = q0; qa < q1; qa += kScanQueries) {
    const int nqa = static_cast<int>(std::min<std::uint32_t>(kScanQueries, q1 - qa));
    const std::uint64_t* rows = codes + static_cast<std::size_t>(qa) * words;
    const std::uint32_t next = qa + 1;
    cand += scan_run(scan, rows, nqa, codes + static_cast<std::size_t>(next) * words, a1 - next, words, bound,
                     sc.hits.data(), [&](std::uint32_t row, std::int64_t i, std::int32_t d) {
                       if (next + i > qa + row) emit(qa + row, next + i, d);
                     });
    cand += scan_run(scan, rows, nqa, run.codes.data(), run.size(), words, bound, sc.hits.data(),
                     [&](std::uint32_t row, std::int64_t i, std::int32_t d) {
                       emit(qa + row, run.where[static_cast<std::size_t>(i)], d);
                     });
  }
  return cand;
}

// A bucket of the join worth checking for a dominant component: its work (pairs it would compare)
// against the finds that check costs (one per member).
constexpr std::int64_t kDenseWork = std::int64_t{1} << 20;

// Pairs compared per member of a dense bucket before its split is rebuilt: a rebuild (a find and a
// copy per member) costs about as much as comparing ten pairs per member, and a group that stays
// apart (a far copy of the dominant image) never leaves the minority however often it is rebuilt.
constexpr std::int64_t kRebuildWork = 32;

// Members of a dense bucket split by component, reused by a task's buckets.
struct DenseScratch {
  std::vector<std::uint32_t> root;
  std::vector<std::uint64_t> major, minor;  // codes
  std::vector<std::uint32_t> major_node, minor_node;
};

// A join bucket (table rows a0..a1 and the run of codes from the buckets after it) for a sink
// that wants only the components. A near-duplicate group of k distinct codes shares a substring
// in most of the m tables: the plain scan compares (and unites) its k^2 / 2 pairs in each. Here,
// once one component holds at least 3/4 of the bucket's members, each row is compared with the
// members outside it (every hit united), and with the component's members only until one is
// within r (one edge joins the row to all of it; a row in it already needs none). Rows before a
// component dominates get the plain scan, in chunks that double, then the split is looked at
// again; the split is rebuilt once the rows since it have compared kRebuildWork pairs per member
// of the bucket. Each row is compared with every member (by the split) or with every later row
// and the run (the plain scan; the rows before it were compared with it): every edge of the
// bucket is either found or between members already joined. Returns the pairs compared.
template <class Sink, class Emit>
std::int64_t dense_bucket(const HammingScan& scan, const std::uint64_t* codes, const std::uint32_t* perm,
                          std::uint32_t a0, std::uint32_t a1, const Gathered& run, std::int32_t words,
                          const std::int32_t* bound, Scratch& sc, DenseScratch& ds, Sink& sink, Emit& emit) {
  const std::int64_t nq = a1 - a0;
  const std::int64_t m = nq + run.size();
  auto code_of = [&](std::int64_t k) {
    return k < nq ? codes + (a0 + k) * words : run.codes.data() + (k - nq) * words;
  };
  auto node_of = [&](std::int64_t k) {
    return k < nq ? perm[a0 + k] : perm[run.where[static_cast<std::size_t>(k - nq)]];
  };
  std::int64_t cand = 0, pos = 0, chunk = 64;
  while (pos < nq) {
    // The component holding most members, if one does (Boyer-Moore vote, then a count).
    ds.root.resize(static_cast<std::size_t>(m));
    std::uint32_t lead = 0;
    std::int64_t votes = 0;
    for (std::int64_t k = 0; k < m; ++k) {
      const std::uint32_t rt = sink.root(node_of(k));
      ds.root[static_cast<std::size_t>(k)] = rt;
      if (votes == 0) lead = rt;
      votes += rt == lead ? 1 : -1;
    }
    const auto held = std::count(ds.root.begin(), ds.root.end(), lead);
    // 3/4: a row is then compared one code at a time with the quarter outside the component, where
    // the plain scan compares four rows at a time with half the bucket on average.
    if (4 * held < 3 * m) {  // none dominates: the plain scan of the next rows
      const std::int64_t end = std::min(nq, pos + chunk);
      cand += scan_rows(scan, codes, static_cast<std::uint32_t>(a0 + pos),
                        static_cast<std::uint32_t>(a0 + end), a1, run, words, bound, sc, emit);
      pos = end;
      chunk *= 2;
      continue;
    }
    ds.major.clear();
    ds.minor.clear();
    ds.major_node.clear();
    ds.minor_node.clear();
    for (std::int64_t k = 0; k < m; ++k) {
      const std::uint64_t* c = code_of(k);
      const bool in = ds.root[static_cast<std::size_t>(k)] == lead;
      (in ? ds.major : ds.minor).insert((in ? ds.major : ds.minor).end(), c, c + words);
      (in ? ds.major_node : ds.minor_node).push_back(node_of(k));
    }
    const auto n_major = static_cast<std::int64_t>(ds.major_node.size());
    const auto n_minor = static_cast<std::int64_t>(ds.minor_node.size());
    const std::uint32_t anchor = ds.major_node[0];
    for (std::int64_t work = 0; pos < nq && work < kRebuildWork * m; ++pos) {
      const std::uint64_t* x = code_of(pos);
      const std::uint32_t xn = node_of(pos);
      cand += scan_run(scan, x, 1, ds.minor.data(), n_minor, words, bound, sc.hits.data(),
                       [&](std::uint32_t, std::int64_t i, std::int32_t d) {
                         const std::uint32_t yn = ds.minor_node[static_cast<std::size_t>(i)];
                         if (!sink.known(xn, yn)) sink(0, std::min(xn, yn), std::max(xn, yn), d);
                       });
      work += n_minor + 1;
      if (sink.known(xn, anchor)) continue;
      for (std::int64_t s0 = 0; s0 < n_major; s0 += kScanStep) {
        const std::int64_t len = std::min(kScanStep, n_major - s0);
        const std::int64_t nh = scan(x, 1, ds.major.data() + s0 * words, len, bound, sc.hits.data());
        cand += len;
        work += len;
        if (nh > 0) {
          const std::uint32_t yn = ds.major_node[static_cast<std::size_t>(s0 + sc.hits[0].j)];
          sink(0, std::min(xn, yn), std::max(xn, yn), sc.hits[0].d);
          break;
        }
      }
    }
  }
  return cand;
}

template <class Sink>
void join_mih(const HammingKernels& kern, const std::uint64_t* base, std::int64_t n, std::int32_t words,
              std::int32_t r, int threads, const MihPlan& plan, HammingStats* stats, Sink& sink) {
  const HammingScan scan = kern.scan(words);
  const std::int32_t bound[kScanQueries] = {r + 1, r + 1, r + 1, r + 1};
  MihTable table;
  std::int64_t peak = 0;
  // Key ranges per task: enough for dynamic balancing over uneven buckets.
  const std::int64_t tasks_per_table = 64 * static_cast<std::int64_t>(threads);
  sink.tasks(tasks_per_table);
  std::vector<std::int64_t> candidates(static_cast<std::size_t>(tasks_per_table), 0);
  for (int c = 0; c < plan.m; ++c) {
    if (plan.radius[c] < 0) continue;
    const std::int64_t transient = build_table(base, n, words, plan.lo[c], plan.len[c], threads, &table);
    peak = std::max(peak, table.bytes() + transient);
    const std::vector<std::uint32_t> masks = ball_masks(plan.len[c], plan.radius[c]);
    const std::int64_t slots = std::int64_t{1} << plan.len[c];
    const std::int64_t tasks = std::min(tasks_per_table, slots);
    parallel_for(tasks, threads, [&](std::int64_t task) {
      Scratch sc;
      std::int64_t cand = 0;
      const std::uint32_t* off = table.offsets.data();
      const std::uint64_t* codes = table.codes.data();
      const std::uint32_t* perm = table.perm.data();
      auto emit = [&](std::int64_t ia, std::int64_t ib, std::int32_t d) {
        const std::uint64_t* x = codes + ia * words;
        const std::uint64_t* y = codes + ib * words;
        const std::uint64_t pa = perm[ia], pb = perm[ib];
        if (sink.known(pa, pb) || seen_earlier(plan, c, x, y, words)) return;
        sink(task, std::min(pa, pb), std::max(pa, pb), d);
      };
      Gathered run;
      DenseScratch dense;
      for (std::int64_t u = split_point(slots, tasks, task); u < split_point(slots, tasks, task + 1); ++u) {
        const std::uint32_t a0 = off[u], a1 = off[u + 1];
        if (a0 == a1) continue;
        const auto key = static_cast<std::uint32_t>(u);
        run.gather(table, key, masks, words, [key](std::uint32_t v) { return v > key; });
        if constexpr (Sink::kComponents) {
          const std::int64_t q = a1 - a0;
          if (q * (q / 2 + run.size()) >= kDenseWork) {
            cand += dense_bucket(scan, codes, perm, a0, a1, run, words, bound, sc, dense, sink, emit);
            continue;
          }
        }
        cand += scan_rows(scan, codes, a0, a1, a1, run, words, bound, sc, emit);
      }
      candidates[static_cast<std::size_t>(task)] += cand;
    });
  }
  for (const std::int64_t c : candidates) stats->candidates += c;
  stats->table_bytes = peak;
}

void radius_brute(const HammingKernels& kern, const std::uint64_t* base, const std::int64_t* ids,
                  std::int64_t n, const std::uint64_t* queries, std::int64_t nq, std::int32_t words,
                  std::int32_t r, int threads, HammingOutput* out) {
  const HammingScan scan = kern.scan(words);
  const TaskGrid grid(nq, n, words, threads);
  std::vector<std::vector<RadiusHit>> parts(static_cast<std::size_t>(grid.tasks()));
  const std::int32_t bound[kScanQueries] = {r + 1, r + 1, r + 1, r + 1};
  const std::int64_t chunk = chunk_codes(words);
  parallel_for(grid.tasks(), threads, [&](std::int64_t task) {
    Scratch sc;
    auto& part = parts[static_cast<std::size_t>(task)];
    const std::int64_t g = task / grid.splits, sp = task % grid.splits;
    const std::int64_t q0 = g * kGroupQueries, q1 = std::min(nq, q0 + kGroupQueries);
    const std::int64_t j0 = split_point(n, grid.splits, sp), j1 = split_point(n, grid.splits, sp + 1);
    for (std::int64_t c0 = j0; c0 < j1; c0 += chunk) {
      const std::int64_t c1 = std::min(c0 + chunk, j1);
      for (std::int64_t qb = q0; qb < q1; qb += kScanQueries) {
        const int nqb = static_cast<int>(std::min<std::int64_t>(kScanQueries, q1 - qb));
        for (std::int64_t s = c0; s < c1; s += kScanStep) {
          const std::int64_t nh = scan(queries + qb * words, nqb, base + s * words,
                                       std::min(kScanStep, c1 - s), bound, sc.hits.data());
          for (std::int64_t t = 0; t < nh; ++t) {
            const std::int64_t pos = s + sc.hits[t].j;
            part.push_back({qb + sc.hits[t].q, ids != nullptr ? ids[pos] : pos, sc.hits[t].d});
          }
        }
      }
    }
  });
  out->stats.candidates = n * nq;
  assemble_radius(parts, nq, threads, out);
}

template <class Sink>
void join_brute(const HammingKernels& kern, const std::uint64_t* base, std::int64_t n, std::int32_t words,
                std::int32_t r, int threads, HammingStats* stats, Sink& sink) {
  const HammingScan scan = kern.scan(words);
  const std::int64_t groups = (n + kGroupQueries - 1) / kGroupQueries;
  sink.tasks(groups);
  const std::int32_t bound[kScanQueries] = {r + 1, r + 1, r + 1, r + 1};
  const std::int64_t chunk = chunk_codes(words);
  parallel_for(groups, threads, [&](std::int64_t g) {
    Scratch sc;
    const std::int64_t a0 = g * kGroupQueries, a1 = std::min(n, a0 + kGroupQueries);
    for (std::int64_t c0 = a0; c0 < n; c0 += chunk) {
      const std::int64_t c1 = std::min(c0 + chunk, n);
      for (std::int64_t qa = a0; qa < a1; qa += kScanQueries) {
        const int nqa = static_cast<int>(std::min<std::int64_t>(kScanQueries, a1 - qa));
        for (std::int64_t s = std::max(c0, qa + 1); s < c1; s += kScanStep) {
          const std::int64_t nh = scan(base + qa * words, nqa, base + s * words, std::min(kScanStep, c1 - s),
                                       bound, sc.hits.data());
          for (std::int64_t t = 0; t < nh; ++t) {
            const std::uint64_t a = static_cast<std::uint64_t>(qa + sc.hits[t].q);
            const std::uint64_t b = static_cast<std::uint64_t>(s + sc.hits[t].j);
            if (b > a) sink(g, a, b, sc.hits[t].d);
          }
        }
      }
    }
  });
  stats->candidates = n * (n - 1) / 2;
}

// The join's pairs, one list per task (assemble_join orders them).
struct PairSink {
  static constexpr bool kComponents = false;  // every pair is wanted (see dense_bucket)
  std::vector<std::vector<JoinPair>> parts;
  void tasks(std::int64_t count) { parts.resize(static_cast<std::size_t>(count)); }
  static bool known(std::uint64_t, std::uint64_t) { return false; }
  void operator()(std::int64_t task, std::uint64_t a, std::uint64_t b, std::int32_t d) {
    parts[static_cast<std::size_t>(task)].push_back({a << 32 | b, d});
  }
};

// Union-find shared by the join's threads: every pair is united as it is found, so no pair is
// kept. parent[x] <= x always (the smaller root wins), so a root is the smallest element of its
// component, and a pointer only ever moves to an ancestor: a stale read still names an ancestor,
// and a link is a compare-and-swap on a root that fails (and retries) when that root was linked
// meanwhile.
class ConcurrentUnionFind {
 public:
  explicit ConcurrentUnionFind(std::int64_t n)
      : parent_(new std::atomic<std::uint32_t>[static_cast<std::size_t>(n)]) {
    for (std::int64_t x = 0; x < n; ++x)
      parent_[x].store(static_cast<std::uint32_t>(x), std::memory_order_relaxed);
  }
  std::uint32_t find(std::uint32_t x) {
    for (;;) {
      std::uint32_t p = parent_[x].load(std::memory_order_acquire);
      if (p == x) return x;
      const std::uint32_t gp = parent_[p].load(std::memory_order_acquire);
      if (gp != p) parent_[x].compare_exchange_weak(p, gp, std::memory_order_acq_rel);  // path halving
      x = gp;
    }
  }
  void unite(std::uint32_t a, std::uint32_t b) {
    for (;;) {
      a = find(a);
      b = find(b);
      if (a == b) return;
      if (a > b) std::swap(a, b);
      std::uint32_t expected = b;
      if (parent_[b].compare_exchange_strong(expected, a, std::memory_order_acq_rel)) return;
    }
  }

 private:
  std::unique_ptr<std::atomic<std::uint32_t>[]> parent_;
};

struct UnionSink {
  static constexpr bool kComponents = true;  // only the components: dense_bucket may skip pairs
  ConcurrentUnionFind* uf;
  void tasks(std::int64_t) {}
  std::uint32_t root(std::uint32_t x) const { return uf->find(x); }
  // Already one component (every pair of a dense group after its first rows): nothing to do,
  // and cheaper to see than whether an earlier substring found the pair.
  bool known(std::uint64_t a, std::uint64_t b) const {
    return uf->find(static_cast<std::uint32_t>(a)) == uf->find(static_cast<std::uint32_t>(b));
  }
  void operator()(std::int64_t, std::uint64_t a, std::uint64_t b, std::int32_t) {
    uf->unite(static_cast<std::uint32_t>(a), static_cast<std::uint32_t>(b));
  }
};

// Rows with the same code: first[u] = the position of distinct code u's first row (increasing),
// of[i] = the distinct code of row i. Open addressing over a hash of the code.
void group_identical(const std::uint64_t* base, std::int64_t n, std::int32_t words,
                     std::vector<std::uint32_t>* first, std::vector<std::uint32_t>* of) {
  std::size_t cap = 16;
  while (cap < static_cast<std::size_t>(n) * 2) cap <<= 1;
  constexpr std::uint32_t kEmpty = std::numeric_limits<std::uint32_t>::max();
  std::vector<std::uint32_t> slot(cap, kEmpty);
  first->clear();
  of->resize(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const std::uint64_t* c = base + i * words;
    std::uint64_t h = 0;
    for (std::int32_t w = 0; w < words; ++w) {
      h = (h ^ c[w]) * 0x9E3779B97F4A7C15ull;
      h ^= h >> 29;
    }
    for (std::size_t s = static_cast<std::size_t>(h) & (cap - 1);; s = (s + 1) & (cap - 1)) {
      const std::uint32_t u = slot[s];
      if (u == kEmpty) {
        slot[s] = static_cast<std::uint32_t>(first->size());
        (*of)[static_cast<std::size_t>(i)] = slot[s];
        first->push_back(static_cast<std::uint32_t>(i));
        break;
      }
      if (std::equal(c, c + words, base + static_cast<std::int64_t>((*first)[u]) * words)) {
        (*of)[static_cast<std::size_t>(i)] = u;
        break;
      }
    }
  }
}

void check_radius(std::int64_t n, std::int64_t nq, std::int32_t words, std::int32_t r, HammingMethod method,
                  HammingOutput* out) {
  check_words(words);
  check_counts(n, nq);
  if (r < 0) throw std::invalid_argument("r must be >= 0, got " + std::to_string(r));
  if (method != HammingMethod::kAuto && method != HammingMethod::kBrute && method != HammingMethod::kMih) {
    throw std::invalid_argument("method must be auto, brute or mih");
  }
  if (out == nullptr) throw std::invalid_argument("out must not be null");
}

// The model's MIH plan for uniform codes (nq < 0: the self-join of b). Where MIH would run (auto
// finds it cheaper than brute_cost, or it is asked for), planned again with a sample of pairs
// (a, b): codes with fixed bits meet far more often than uniform ones, and a plan through them
// scans most of the base. Where brute force wins already, such codes would only make MIH dearer,
// so no sample is taken.
MihPlan plan_mih(HammingMethod method, int bits, int r, double n, double nq, const CostModel& cm,
                 double brute_cost, const std::uint64_t* a, std::int64_t na, const std::uint64_t* b,
                 std::int64_t nb, std::int32_t words) {
  MihPlan plan = best_plan(bits, r, n, nq, cm);
  if (method == HammingMethod::kBrute || plan.m == 0 ||
      (method == HammingMethod::kAuto && plan.cost >= brute_cost))
    return plan;
  const PairSample sample = sample_pairs(a, na, b, nb, words);
  return best_plan(bits, r, n, nq, cm, kMaxSubstringBits, &sample);
}

// kAuto becomes the cheaper method by the model; a forced MIH without a usable modelled plan
// (r too small for substrings of at most kMaxSubstringBits) takes the fewest substrings allowed.
HammingMethod resolve_method(HammingMethod method, double brute_cost, int bits, int r, MihPlan* plan) {
  if (method == HammingMethod::kAuto) {
    method = plan->m > 0 && plan->cost < brute_cost ? HammingMethod::kMih : HammingMethod::kBrute;
  }
  if (method == HammingMethod::kMih && plan->m == 0) {
    *plan = make_plan(bits, (bits + kMaxSubstringBits - 1) / kMaxSubstringBits, r);
  }
  return method;
}

void set_stats(HammingStats* stats, HammingMethod method, const MihPlan& plan) {
  stats->method = method;
  stats->m = method == HammingMethod::kMih ? plan.m : 0;
  stats->sub_radius = method == HammingMethod::kMih ? plan.s : 0;
}

// The self-join of n codes (checked; r clamped, threads resolved) with the method auto picks,
// every pair within r handed to the sink.
template <class Sink>
void run_join(Backend backend, const std::uint64_t* base, std::int64_t n, std::int32_t words, std::int32_t r,
              int threads, HammingMethod method, HammingStats* stats, Sink& sink) {
  const HammingKernels kern = detail::hamming_kernels(backend);
  const int bits = 64 * words;
  const CostModel cm(words);
  const double brute_cost = cm.pair_brute * static_cast<double>(n) * static_cast<double>(n) / 2;
  MihPlan plan =
      plan_mih(method, bits, r, static_cast<double>(n), -1, cm, brute_cost, base, n, base, n, words);
  method = resolve_method(method, brute_cost, bits, r, &plan);
  set_stats(stats, method, plan);
  if (method == HammingMethod::kMih) {
    join_mih(kern, base, n, words, r, threads, plan, stats, sink);
  } else {
    join_brute(kern, base, n, words, r, threads, stats, sink);
  }
}

}  // namespace

void hamming_knn(const std::uint64_t* base, const std::int64_t* ids, std::int64_t n,
                 const std::uint64_t* queries, std::int64_t nq, std::int32_t words, std::int32_t k,
                 int threads, std::int32_t* dist, std::int64_t* labels, Backend backend) {
  check_knn(n, nq, words, k);
  if (nq == 0) return;
  threads = resolve_threads(threads);
  const HammingKernels kern = detail::hamming_kernels(backend);
  const HammingScan scan = kern.scan(words);
  const bool monotonic = ids_increasing(ids, n);
  const TaskGrid grid(nq, n, words, threads);
  // Heaps hold at most n entries: the rest of a row is padding.
  const auto kept = static_cast<std::int32_t>(std::min<std::int64_t>(k, std::max<std::int64_t>(n, 1)));
  if (grid.splits == 1) {
    parallel_for(grid.groups, threads, [&](std::int64_t g) {
      const std::int64_t q0 = g * kGroupQueries, q1 = std::min(nq, q0 + kGroupQueries);
      std::vector<Entry> store(static_cast<std::size_t>((q1 - q0) * kept));
      std::vector<TopK> heaps(static_cast<std::size_t>(q1 - q0));
      for (std::size_t i = 0; i < heaps.size(); ++i) heaps[i] = {store.data() + i * kept, kept, 0};
      Scratch sc;
      knn_block(scan, base, ids, monotonic, queries, q0, q1, 0, n, words, heaps.data(), sc.hits.data());
      for (std::int64_t q = q0; q < q1; ++q) {
        TopK& h = heaps[static_cast<std::size_t>(q - q0)];
        write_row(h.h, h.size, k, dist + q * k, labels + q * k);
      }
    });
    return;
  }
  // Few queries: every (query group, base range) task keeps its own heaps, merged per query.
  const std::int64_t splits = grid.splits;
  std::vector<Entry> store(static_cast<std::size_t>(nq * splits * kept));
  std::vector<TopK> heaps(static_cast<std::size_t>(nq * splits));
  for (std::size_t i = 0; i < heaps.size(); ++i) heaps[i] = {store.data() + i * kept, kept, 0};
  parallel_for(grid.tasks(), threads, [&](std::int64_t task) {
    const std::int64_t g = task / splits, sp = task % splits;
    const std::int64_t q0 = g * kGroupQueries, q1 = std::min(nq, q0 + kGroupQueries);
    Scratch sc;
    knn_block(scan, base, ids, monotonic, queries, q0, q1, split_point(n, splits, sp),
              split_point(n, splits, sp + 1), words, heaps.data() + sp * nq + q0, sc.hits.data());
  });
  parallel_for(nq, threads, [&](std::int64_t q) {
    std::vector<Entry> all;
    for (std::int64_t sp = 0; sp < splits; ++sp) {
      const TopK& h = heaps[static_cast<std::size_t>(sp * nq + q)];
      all.insert(all.end(), h.h, h.h + h.size);
    }
    const std::int32_t size = static_cast<std::int32_t>(std::min<std::size_t>(all.size(), k));
    std::partial_sort(all.begin(), all.begin() + size, all.end(), entry_less);
    write_row(all.data(), size, k, dist + q * k, labels + q * k);
  });
}

void hamming_knn(const std::uint64_t* base, const std::int64_t* ids, std::int64_t n,
                 const std::uint64_t* queries, std::int64_t nq, std::int32_t words, std::int32_t k,
                 int threads, std::int32_t* dist, std::int64_t* labels) {
  hamming_knn(base, ids, n, queries, nq, words, k, threads, dist, labels, active_backend());
}

void hamming_radius(const std::uint64_t* base, const std::int64_t* ids, std::int64_t n,
                    const std::uint64_t* queries, std::int64_t nq, std::int32_t words, std::int32_t r,
                    int threads, HammingMethod method, HammingOutput* out, Backend backend) {
  check_radius(n, nq, words, r, method, out);
  r = std::min(r, 64 * words);
  threads = resolve_threads(threads);
  const HammingKernels kern = detail::hamming_kernels(backend);
  const int bits = 64 * words;
  const CostModel cm(words);
  const double brute_cost = cm.pair_brute * static_cast<double>(n) * static_cast<double>(nq);
  MihPlan plan = plan_mih(method, bits, r, static_cast<double>(n), static_cast<double>(nq), cm, brute_cost,
                          queries, nq, base, n, words);
  method = resolve_method(method, brute_cost, bits, r, &plan);
  set_stats(&out->stats, method, plan);
  if (method == HammingMethod::kMih) {
    radius_mih(kern, base, ids, n, queries, nq, words, r, threads, plan, out);
  } else {
    radius_brute(kern, base, ids, n, queries, nq, words, r, threads, out);
  }
}

void hamming_radius(const std::uint64_t* base, const std::int64_t* ids, std::int64_t n,
                    const std::uint64_t* queries, std::int64_t nq, std::int32_t words, std::int32_t r,
                    int threads, HammingMethod method, HammingOutput* out) {
  hamming_radius(base, ids, n, queries, nq, words, r, threads, method, out, active_backend());
}

void hamming_join(const std::uint64_t* base, std::int64_t n, std::int32_t words, std::int32_t r, int threads,
                  HammingMethod method, HammingOutput* out, Backend backend) {
  check_radius(n, 0, words, r, method, out);
  r = std::min(r, 64 * words);
  threads = resolve_threads(threads);
  PairSink sink;
  run_join(backend, base, n, words, r, threads, method, &out->stats, sink);
  assemble_join(sink.parts, n, threads, out);
}

void hamming_join(const std::uint64_t* base, std::int64_t n, std::int32_t words, std::int32_t r, int threads,
                  HammingMethod method, HammingOutput* out) {
  hamming_join(base, n, words, r, threads, method, out, active_backend());
}

void hamming_components(const std::uint64_t* base, std::int64_t n, std::int32_t words, std::int32_t r,
                        int threads, HammingMethod method, std::int64_t* roots, HammingStats* stats,
                        Backend backend) {
  HammingOutput check;
  check_radius(n, 0, words, r, method, &check);
  if ((roots == nullptr && n > 0) || stats == nullptr)
    throw std::invalid_argument("roots and stats must not be null");
  r = std::min(r, 64 * words);
  threads = resolve_threads(threads);
  *stats = HammingStats();
  // Identical codes are one node: a corpus's thousands of copies of one placeholder image would
  // otherwise be compared (and united) pair by pair.
  std::vector<std::uint32_t> first, of;
  group_identical(base, n, words, &first, &of);
  const auto m = static_cast<std::int64_t>(first.size());
  std::vector<std::uint64_t> distinct;
  const std::uint64_t* codes = base;
  if (m < n) {
    distinct.resize(static_cast<std::size_t>(m * words));
    for (std::int64_t u = 0; u < m; ++u) {
      std::copy(base + static_cast<std::int64_t>(first[static_cast<std::size_t>(u)]) * words,
                base + (static_cast<std::int64_t>(first[static_cast<std::size_t>(u)]) + 1) * words,
                distinct.data() + u * words);
    }
    codes = distinct.data();
  }
  ConcurrentUnionFind uf(m);
  UnionSink sink{&uf};
  run_join(backend, codes, m, words, r, threads, method, stats, sink);
  // The root of a distinct code is the smallest distinct code of its component, whose first row
  // is the component's smallest position (first[] increases).
  for (std::int64_t i = 0; i < n; ++i) {
    roots[i] = first[uf.find(of[static_cast<std::size_t>(i)])];
  }
}

void hamming_components(const std::uint64_t* base, std::int64_t n, std::int32_t words, std::int32_t r,
                        int threads, HammingMethod method, std::int64_t* roots, HammingStats* stats) {
  hamming_components(base, n, words, r, threads, method, roots, stats, active_backend());
}

void union_find(std::int64_t n, const std::int64_t* a, const std::int64_t* b, std::int64_t edges,
                std::int64_t* labels) {
  if (n < 0 || edges < 0) throw std::invalid_argument("n and the edge count must be >= 0");
  for (std::int64_t i = 0; i < edges; ++i) {
    if (a[i] < 0 || a[i] >= n || b[i] < 0 || b[i] >= n) {
      throw std::invalid_argument("edge " + std::to_string(i) + " (" + std::to_string(a[i]) + ", " +
                                  std::to_string(b[i]) + ") is outside [0, " + std::to_string(n) + ")");
    }
  }
  for (std::int64_t x = 0; x < n; ++x) labels[x] = x;
  auto find = [labels](std::int64_t x) {
    while (labels[x] != x) {
      labels[x] = labels[labels[x]];  // path halving
      x = labels[x];
    }
    return x;
  };
  for (std::int64_t i = 0; i < edges; ++i) {
    const std::int64_t ra = find(a[i]), rb = find(b[i]);
    // The smaller root wins, so every root is its component's smallest position.
    if (ra < rb) labels[rb] = ra;
    if (rb < ra) labels[ra] = rb;
  }
  for (std::int64_t x = 0; x < n; ++x) labels[x] = labels[labels[x]];
}

}  // namespace mmcore
