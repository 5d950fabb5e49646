// C++ test of the Hamming family (mmcore/hamming.h, hamming_internal.h): every variant this
// build has and this CPU runs (ref, avx2, avx512) against the scalar ref and a naive oracle.
// - scan kernels: bit-exact hits for 64- and 256-bit codes and the any-width kernel (2, 3, 5, 8,
//   13 and 16 words), 1..4 queries, base lengths that sweep the vector tails, bounds from 0 to
//   "everything", base ending at an unreadable page;
// - kNN: (distance, id) order, ties, k > N padding (INT32_MAX, -1), N = 0, user ids;
// - radius and join, brute force and MIH: the naive answer for r = 0 .. all bits, on random and
//   clustered codes (centres plus copies with a few flipped bits) and duplicates, at 64, 256 and
//   other widths (128 to 768 bits); widths outside 1..1024 words refused;
// - components: union_find of the naive pairs (and of the join's, 150k codes with repeats,
//   3 threads uniting at once);
// - union_find: components labelled by their smallest position, out-of-range edges refused.
// Prints the variants it checked, then PASS or FAIL. Run it with MMCORE_FORCE_BACKEND unset on
// a host with AVX-512 VPOPCNTDQ to check that variant.
//
// Build and run (tests/test_hamming.py does this when a build tree exists):
//   g++ -O2 -std=c++17 -Icpp/include -Icpp/src tests/cpp/test_hamming.cpp build/<tag>/cpp/libmmcore_cpu.a \
//       $(pkg-config --libs libjpeg libpng libwebp libwebpdemux zlib) -lpthread -o /tmp/test_hamming &&
//       /tmp/test_hamming
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "hamming_internal.h"
#include "mmcore/hamming.h"

namespace {

using mmcore::Backend;
using mmcore::HammingMethod;
using mmcore::HammingOutput;
using mmcore::detail::HammingHit;

int failures = 0;

void fail(const char* what, const char* variant, int words, long a, long b) {
  if (++failures < 20) std::printf("FAIL %s [%s, %d-bit] (%ld, %ld)\n", what, variant, 64 * words, a, b);
}

int popcount(std::uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555u);
  x = (x & 0x3333333333333333u) + ((x >> 2) & 0x3333333333333333u);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fu;
  return static_cast<int>((x * 0x0101010101010101u) >> 56);
}

int dist(const std::uint64_t* a, const std::uint64_t* b, int words) {
  int d = 0;
  for (int w = 0; w < words; ++w) d += popcount(a[w] ^ b[w]);
  return d;
}

// Random codes, or clustered: centres and copies with 0..flips flipped bits, shuffled.
std::vector<std::uint64_t> make_codes(std::mt19937_64& rng, std::int64_t n, int words, int flips) {
  std::vector<std::uint64_t> c(static_cast<std::size_t>(n * words));
  for (auto& x : c) x = rng();
  if (flips < 0) return c;
  const std::int64_t centres = std::max<std::int64_t>(1, n / 8);
  for (std::int64_t i = centres; i < n; ++i) {
    const std::int64_t from = static_cast<std::int64_t>(rng() % centres);
    for (int w = 0; w < words; ++w) c[i * words + w] = c[from * words + w];
    const int f = static_cast<int>(rng() % (flips + 1));
    for (int t = 0; t < f; ++t) {
      const int bit = static_cast<int>(rng() % (64 * words));
      c[i * words + bit / 64] ^= std::uint64_t{1} << (bit % 64);
    }
  }
  return c;
}

// Memory of `words` uint64 whose end touches a PROT_NONE page.
struct Guarded {
  std::uint8_t* map = nullptr;
  std::size_t bytes = 0;
  std::uint64_t* data = nullptr;
  explicit Guarded(std::size_t words) {
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    const std::size_t body = (words * 8 + page - 1) / page * page;
    bytes = body + page;
    map = static_cast<std::uint8_t*>(
        mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    mprotect(map + body, page, PROT_NONE);
    data = reinterpret_cast<std::uint64_t*>(map + body - words * 8);
  }
  ~Guarded() { munmap(map, bytes); }
};

void test_scan(const mmcore::detail::HammingKernels& k, const char* name, std::mt19937_64& rng) {
  const std::int64_t lengths[] = {0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 256};
  const mmcore::detail::HammingKernels ref_kernels = mmcore::detail::hamming_kernels(Backend::kRef);
  for (int words : {1, 4, 2, 3, 5, 8, 13, 16}) {
    const auto scan = k.scan(words);
    const auto ref = ref_kernels.scan(words);
    for (std::int64_t nb : lengths) {
      for (int nq = 1; nq <= mmcore::detail::kScanQueries; ++nq) {
        for (int trial = 0; trial < 6; ++trial) {
          Guarded base(static_cast<std::size_t>(nb * words));
          std::vector<std::uint64_t> q = make_codes(rng, nq, words, -1);
          for (std::int64_t i = 0; i < nb * words; ++i) base.data[i] = rng();
          // Near and equal codes so that small bounds hit.
          for (std::int64_t j = 0; j < nb; j += 3) {
            for (int w = 0; w < words; ++w)
              base.data[j * words + w] = q[(j % nq) * words + w] ^ (rng() & rng() & rng());
          }
          std::int32_t bound[4];
          const std::int32_t choices[] = {0,
                                          1,
                                          5,
                                          20,
                                          33,
                                          65,
                                          120,
                                          130,
                                          257,
                                          std::numeric_limits<std::int32_t>::max(),
                                          16 * words,
                                          32 * words,
                                          32 * words + 1};
          for (int i = 0; i < 4; ++i) bound[i] = choices[(trial + 3 * i + rng() % 2) % 13];
          std::vector<HammingHit> want(static_cast<std::size_t>(nq * nb + 1)), got(want.size());
          const std::int64_t nw = ref(q.data(), nq, base.data, nb, bound, want.data());
          const std::int64_t ng = scan(q.data(), nq, base.data, nb, bound, got.data());
          bool same = nw == ng;
          for (std::int64_t i = 0; same && i < nw; ++i) {
            same = want[i].q == got[i].q && want[i].j == got[i].j && want[i].d == got[i].d;
          }
          if (!same) fail("scan hits differ from ref", name, words, nb, nq);
        }
      }
    }
  }
}

void test_knn(Backend b, const char* name, std::mt19937_64& rng) {
  for (int words : {1, 4, 2, 3, 5, 12}) {
    for (std::int64_t n : {0, 1, 5, 100, 3000, 40000}) {
      if (n > 3000 && words != 1 && words != 4) continue;
      for (int flips : {-1, 3}) {
        std::vector<std::uint64_t> base = make_codes(rng, n, words, flips);
        // Duplicates: ties that must be ordered by id.
        for (std::int64_t i = 1; i < n; i += 7) std::copy_n(&base[0], words, &base[i * words]);
        const std::int64_t nq = n > 1000 ? 37 : 9;
        std::vector<std::uint64_t> q = make_codes(rng, nq, words, -1);
        if (n > 0) std::copy_n(&base[0], words, &q[0]);
        for (const bool user_ids : {false, true}) {
          std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
          for (std::int64_t i = 0; i < n; ++i) ids[i] = user_ids ? (i * 7919) % (n + 13) + 1000 * (i % 3) : i;
          for (std::int32_t k : {1, 10, 64, 200}) {
            if (n > 3000 && (k != 10 || user_ids || flips < 0))
              continue;  // the naive oracle is the slow part
            std::vector<std::int32_t> d(static_cast<std::size_t>(nq * k));
            std::vector<std::int64_t> l(d.size());
            mmcore::hamming_knn(base.data(), user_ids ? ids.data() : nullptr, n, q.data(), nq, words, k, 2,
                                d.data(), l.data(), b);
            for (std::int64_t qi = 0; qi < nq; ++qi) {
              std::vector<std::pair<std::int32_t, std::int64_t>> all;
              for (std::int64_t j = 0; j < n; ++j)
                all.push_back({dist(&q[qi * words], &base[j * words], words), ids[j]});
              std::sort(all.begin(), all.end());
              for (std::int32_t t = 0; t < k; ++t) {
                const bool have = t < static_cast<std::int32_t>(all.size());
                const std::int32_t wd = have ? all[t].first : std::numeric_limits<std::int32_t>::max();
                const std::int64_t wl = have ? all[t].second : -1;
                if (d[qi * k + t] != wd || l[qi * k + t] != wl) {
                  fail("knn differs from the naive answer", name, words, n, k);
                  break;
                }
              }
            }
          }
        }
      }
    }
  }
}

using Pairs = std::vector<std::tuple<std::int64_t, std::int64_t, std::int32_t>>;

void test_radius_join(Backend b, const char* name, std::mt19937_64& rng) {
  for (int words : {1, 4, 3, 12}) {
    const int bits = 64 * words;
    for (std::int64_t n : {0, 1, 2, 17, 700, 1500}) {
      for (int flips : {-1, 2, 6}) {
        std::vector<std::uint64_t> base = make_codes(rng, n, words, flips);
        for (std::int64_t i = 3; i < n; i += 11) std::copy_n(&base[0], words, &base[i * words]);
        const std::int64_t nq = std::min<std::int64_t>(n, 40) + 3;
        std::vector<std::uint64_t> q = make_codes(rng, nq, words, -1);
        for (std::int64_t i = 0; i < std::min<std::int64_t>(n, nq - 3); ++i) {
          for (int w = 0; w < words; ++w)
            q[i * words + w] = base[i * 5 % n * words + w] ^ (rng() & rng() & rng());
        }
        std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
        for (std::int64_t i = 0; i < n; ++i) ids[i] = 5 * (n - i);
        const std::int32_t radii[] = {0, 1, 3, 4, 8, 13, words == 1 ? 31 : 31, words == 1 ? 40 : 100, bits};
        for (std::int32_t r : radii) {
          if (n > 1000 && r > 13 && r < bits) continue;  // the naive oracle is the slow part
          // Radius: naive CSR per query, sorted by (d, id).
          for (const HammingMethod m : {HammingMethod::kBrute, HammingMethod::kMih, HammingMethod::kAuto}) {
            HammingOutput out;
            mmcore::hamming_radius(base.data(), ids.data(), n, q.data(), nq, words, r, 2, m, &out, b);
            bool ok = out.lims[0] == 0;
            for (std::int64_t qi = 0; qi < nq && ok; ++qi) {
              std::vector<std::pair<std::int32_t, std::int64_t>> want;
              for (std::int64_t j = 0; j < n; ++j) {
                const int d = dist(&q[qi * words], &base[j * words], words);
                if (d <= r) want.push_back({d, ids[j]});
              }
              std::sort(want.begin(), want.end());
              ok = out.lims[qi + 1] - out.lims[qi] == static_cast<std::int64_t>(want.size());
              for (std::size_t t = 0; ok && t < want.size(); ++t) {
                ok = out.dist[out.lims[qi] + t] == want[t].first &&
                     out.second[out.lims[qi] + t] == want[t].second;
              }
            }
            if (!ok)
              fail("radius differs from the naive answer", name, words, n, r * 10 + static_cast<int>(m));
          }
          Pairs want;
          for (std::int64_t i = 0; i < n; ++i) {
            for (std::int64_t j = i + 1; j < n; ++j) {
              const int d = dist(&base[i * words], &base[j * words], words);
              if (d <= r) want.emplace_back(i, j, d);
            }
          }
          for (const HammingMethod m : {HammingMethod::kBrute, HammingMethod::kMih, HammingMethod::kAuto}) {
            if (m == HammingMethod::kMih && r > 13 && n > 100)
              continue;  // MIH probes every bucket pair there
            HammingOutput out;
            mmcore::hamming_join(base.data(), n, words, r, 2, m, &out, b);
            Pairs got;
            for (std::int64_t i = 0; i < out.count; ++i)
              got.emplace_back(out.first[i], out.second[i], out.dist[i]);
            if (got != want)
              fail("join differs from the naive answer", name, words, n, r * 10 + static_cast<int>(m));
          }
          // Components: union_find of the naive pairs (identical codes grouped, pairs never kept).
          std::vector<std::int64_t> ea, eb, want_roots(static_cast<std::size_t>(n));
          for (const auto& p : want) ea.push_back(std::get<0>(p)), eb.push_back(std::get<1>(p));
          mmcore::union_find(n, ea.data(), eb.data(), static_cast<std::int64_t>(ea.size()),
                             want_roots.data());
          for (const HammingMethod m : {HammingMethod::kBrute, HammingMethod::kMih, HammingMethod::kAuto}) {
            if (m == HammingMethod::kMih && r > 13 && n > 100) continue;
            std::vector<std::int64_t> roots(static_cast<std::size_t>(n), -1);
            mmcore::HammingStats stats;
            mmcore::hamming_components(base.data(), n, words, r, 2, m, roots.data(), &stats, b);
            if (roots != want_roots)
              fail("components differ from union_find of the naive pairs", name, words, n,
                   r * 10 + static_cast<int>(m));
          }
        }
      }
    }
  }
}

// Tables over 65536 codes are built by several threads: the same answers as one thread (join)
// and as brute force (radius).
void test_large(Backend b, const char* name, std::mt19937_64& rng) {
  for (int words : {1, 4, 3}) {
    const std::int64_t n = 150000;
    std::vector<std::uint64_t> base = make_codes(rng, n, words, 4);
    const std::int32_t r = words == 1 ? 5 : words == 4 ? 20 : 14;
    HammingOutput one, many;
    mmcore::hamming_join(base.data(), n, words, r, 1, HammingMethod::kMih, &one, b);
    mmcore::hamming_join(base.data(), n, words, r, 3, HammingMethod::kMih, &many, b);
    bool same = one.count == many.count && one.count > 0;
    for (std::int64_t i = 0; same && i < one.count; ++i) {
      same = one.first[i] == many.first[i] && one.second[i] == many.second[i] && one.dist[i] == many.dist[i];
    }
    if (!same) fail("join with 3 threads differs from 1 thread", name, words, n, r);
    // Components with 3 threads (concurrent unions) against union_find of the 1-thread pairs, with
    // every tenth code repeated 50 times further on (identical codes grouped).
    std::vector<std::uint64_t> dup(base);
    for (std::int64_t i = 0; i < n / 10; i += 10)
      for (int c = 0; c < 50 && i * 50 + c < n; ++c)
        std::copy(base.begin() + i * words, base.begin() + (i + 1) * words,
                  dup.begin() + (n - 1 - (i * 50 + c)) * words);
    HammingOutput pairs;
    mmcore::hamming_join(dup.data(), n, words, r, 3, HammingMethod::kAuto, &pairs, b);
    std::vector<std::int64_t> want_roots(static_cast<std::size_t>(n)), roots(static_cast<std::size_t>(n));
    mmcore::union_find(n, pairs.first, pairs.second, pairs.count, want_roots.data());
    mmcore::HammingStats stats;
    mmcore::hamming_components(dup.data(), n, words, r, 3, HammingMethod::kMih, roots.data(), &stats, b);
    if (roots != want_roots) fail("large components differ from union_find of the join", name, words, n, r);
    const std::int64_t nq = 50;
    std::vector<std::uint64_t> q(base.begin(), base.begin() + nq * words);
    HammingOutput brute, mih;
    mmcore::hamming_radius(base.data(), nullptr, n, q.data(), nq, words, r, 3, HammingMethod::kBrute, &brute,
                           b);
    mmcore::hamming_radius(base.data(), nullptr, n, q.data(), nq, words, r, 3, HammingMethod::kMih, &mih, b);
    same = brute.count == mih.count && std::equal(brute.lims, brute.lims + nq + 1, mih.lims) &&
           std::equal(brute.second, brute.second + brute.count, mih.second) &&
           std::equal(brute.dist, brute.dist + brute.count, mih.dist);
    if (!same) fail("large radius: MIH differs from brute force", name, words, n, r);
  }
}

// Widths outside 1..kHammingMaxWords are refused before anything is read.
void test_widths() {
  for (const std::int32_t words : {0, -1, mmcore::kHammingMaxWords + 1}) {
    bool threw = false;
    try {
      std::int32_t d = 0;
      std::int64_t l = 0;
      mmcore::hamming_knn(nullptr, nullptr, 0, nullptr, 0, words, 1, 1, &d, &l);
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    if (!threw) fail("knn accepted a code width outside 1..1024 words", "ref", words, 0, 0);
    threw = false;
    try {
      HammingOutput out;
      mmcore::hamming_join(nullptr, 0, words, 1, 1, HammingMethod::kAuto, &out);
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    if (!threw) fail("join accepted a code width outside 1..1024 words", "ref", words, 0, 0);
  }
  // The widest code is searched.
  const std::int32_t w = mmcore::kHammingMaxWords;
  std::vector<std::uint64_t> codes(static_cast<std::size_t>(3 * w), ~std::uint64_t{0});
  std::fill_n(codes.begin(), w, 0);
  codes[static_cast<std::size_t>(w)] = 0;  // code 1: one word of zeros
  HammingOutput out;
  mmcore::hamming_join(codes.data(), 3, w, 64 * w, 1, HammingMethod::kAuto, &out);
  if (out.count != 3 || out.dist[0] != 64 * w - 64 || out.dist[1] != 64 * w || out.dist[2] != 64)
    fail("join of the widest codes", "ref", w, out.count, 0);
}

void test_union_find() {
  const std::int64_t a[] = {4, 1, 6, 9, 2}, b[] = {3, 4, 8, 8, 2};
  std::int64_t labels[10];
  mmcore::union_find(10, a, b, 5, labels);
  const std::int64_t want[] = {0, 1, 2, 1, 1, 5, 6, 7, 6, 6};
  if (!std::equal(labels, labels + 10, want)) fail("union_find labels", "ref", 1, 0, 0);
  const std::int64_t bad[] = {1, 10};
  bool threw = false;
  try {
    mmcore::union_find(10, bad, bad + 1, 1, labels);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  if (!threw) fail("union_find accepted position 10 of 10", "ref", 1, 0, 0);
  // A long chain in reverse order.
  std::vector<std::int64_t> ca, cb, l(100000);
  for (std::int64_t i = 99999; i > 0; --i) ca.push_back(i), cb.push_back(i - 1);
  mmcore::union_find(100000, ca.data(), cb.data(), static_cast<std::int64_t>(ca.size()), l.data());
  if (std::any_of(l.begin(), l.end(), [](std::int64_t x) { return x != 0; }))
    fail("union_find chain", "ref", 1, 0, 0);
}

}  // namespace

int main() {
  std::mt19937_64 rng(11);
  test_union_find();
  test_widths();
  for (Backend b : {Backend::kRef, Backend::kAvx2, Backend::kAvx512}) {
    const char* name = mmcore::backend_name(b);
    const mmcore::detail::HammingKernels k = mmcore::detail::hamming_kernels(b);
    if (k.backend != b) {
      std::printf("%s: not checked (%s)\n", name,
                  mmcore::backend_compiled(b) ? "this CPU lacks it" : "not compiled into this build");
      continue;
    }
    const int before = failures;
    if (b != Backend::kRef) test_scan(k, name, rng);
    test_knn(b, name, rng);
    test_radius_join(b, name, rng);
    test_large(b, name, rng);
    std::printf("%s: checked, %s\n", name, failures == before ? "ok" : "FAILED");
  }
  std::printf("active backend: %s\n", mmcore::backend_name(mmcore::active_backend()));
  std::printf("%s\n", failures == 0 ? "PASS" : "FAIL");
  return failures == 0 ? 0 : 1;
}
