// C++ test of the GPU search kernels' code on the CPU (tests/gpu/search_emulator.h runs
// cuda/topk.cu's, cuda/quant.cu's and cuda/hamming.cu's per-thread code and schedule phase by
// phase): top-k int8 scores and Hamming kNN equal to the CPU's quant_score_int8 and hamming_knn
// bit for bit, positions included, on
// - int8: d of the stream kernel (16, 32, 768) and of the tile kernel's word and byte paths
//   (7, 100, 257, misaligned pointers), 1..70 queries (stream NQ 1/2/4/8 and tile groups), extreme
//   codes (255 against -128 / 127) and tie-heavy data (codes and queries from two values);
// - binary: 1, 3 and 4 words (ties everywhere at 64 bits);
// - k = 1 .. 1024, k > n padding, n = 0, nq = 0;
// - schedules forced small (chunks of rows, query groups, several select rounds) giving the same;
// - threads of each phase run forwards and backwards (no thread reads what another writes in the
//   same phase; the select buffer's slot order does not matter).
// What it cannot check: dp4a / popc / shuffles / atomics themselves, launches and memory; the
// GPU check (bench/gpu_check.sh) does that on a GPU host.
//
// Build and run from the repository root (tests/test_quant.py does this):
//   g++ -O2 -std=c++17 -Icpp/include -Icpp/src tests/cpp/test_search_gpu_emu.cpp
//       build/<tag>/cpp/libmmcore_cpu.a $(pkg-config --libs libjpeg libpng libwebp libwebpdemux zlib)
//       -lpthread -o /tmp/test_search_gpu_emu && /tmp/test_search_gpu_emu
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <tuple>
#include <utility>
#include <vector>

#include "../gpu/search_emulator.h"
#include "mmcore/hamming.h"
#include "mmcore/quant.h"

namespace {

int failures = 0;
int cases = 0;
int mih_cases = 0;
int filtered_cases = 0;  ///< filtered kNN runs with POPC filter passes only
int filtered_mma_cases = 0;
int tc_join_cases = 0;
int tc_radius_cases =
    0;  ///< radius searches by the brute force on the (emulated) tensor cores  ///< joins by the brute force
        ///< on the (emulated) tensor cores  ///< and with a tensor-core pass (query groups of 32 or more)

void fail(const char* what, std::int64_t n, std::int32_t d, std::int64_t nq, std::int32_t k, std::int64_t q,
          std::int32_t i, long long got_s, long long want_s, long long got_i, long long want_i) {
  if (++failures <= 20) {
    std::printf("MISMATCH %s n=%lld d=%d nq=%lld k=%d: query %lld rank %d: (%lld, %lld) want (%lld, %lld)\n",
                what, static_cast<long long>(n), d, static_cast<long long>(nq), k, static_cast<long long>(q),
                i, got_s, got_i, want_s, want_i);
  }
}

/// What the schedule is forced to: 0 the GPU's defaults (4 SMs), 1 small chunks and query groups,
/// 2 many select rounds, 3 query groups shrunk by the key budget.
void configure(mmcore_test::SearchEmu* emu, int schedule) {
  emu->shape = {};
  emu->shape.blocks_wanted = 4 * emu->multiprocessors;
  if (schedule == 1) {
    emu->shape.score_budget = 4 * 3000;
    emu->shape.min_chunk_rows = 1000;
    emu->shape.max_query_group = 3;
  } else if (schedule == 2) {
    emu->shape.blocks_wanted = 4096;  // the minimum segment everywhere: the most select levels
  } else if (schedule == 3) {
    emu->shape.key_budget = 8 * 2000;  // query groups shrink to fit the candidate keys
    emu->shape.min_chunk_rows = 4096;
    emu->shape.score_budget = 4 * 8192;
  }
}

void check_int8(std::mt19937_64& rng, std::int64_t n, std::int32_t d, std::int64_t nq, std::int32_t k,
                int data, int offset, int schedule, bool reverse, bool tensor_cores = true) {
  ++cases;
  // offset shifts codes and queries off 16-byte alignment (the tile kernel's byte path).
  std::vector<std::uint8_t> cbuf(static_cast<std::size_t>(n * d) + 64);
  std::vector<std::int8_t> qbuf(static_cast<std::size_t>(nq * d) + 64);
  std::uint8_t* codes = cbuf.data() + (16 - reinterpret_cast<std::uintptr_t>(cbuf.data()) % 16) % 16 + offset;
  std::int8_t* queries =
      qbuf.data() + (16 - reinterpret_cast<std::uintptr_t>(qbuf.data()) % 16) % 16 + offset;
  for (std::int64_t i = 0; i < n * d; ++i) {
    const std::uint64_t r = rng();
    codes[i] = data == 0 ? static_cast<std::uint8_t>(r)
                         : (data == 1 ? (r & 1 ? 255 : 0) : static_cast<std::uint8_t>(r & 1));
  }
  for (std::int64_t i = 0; i < nq * d; ++i) {
    const std::uint64_t r = rng();
    queries[i] = data == 0 ? static_cast<std::int8_t>(r)
                           : (data == 1 ? (r & 1 ? 127 : -128) : static_cast<std::int8_t>(r & 1));
  }
  std::vector<std::int32_t> want_s(static_cast<std::size_t>(nq * k)), got_s(want_s.size(), 77);
  std::vector<std::int64_t> want_i(want_s.size()), got_i(want_s.size(), 77);
  mmcore::quant_score_int8(codes, n, d, queries, nq, k, 2, want_s.data(), want_i.data());
  mmcore_test::SearchEmu emu;
  emu.reverse = reverse;
  configure(&emu, schedule);
  emu.tensor_cores = tensor_cores;
  emu.int8_topk(codes, n, d, queries, nq, k, got_s.data(), got_i.data());
  for (std::int64_t q = 0; q < nq; ++q)
    for (std::int32_t i = 0; i < k; ++i) {
      const std::size_t t = static_cast<std::size_t>(q * k + i);
      if (got_s[t] != want_s[t] || got_i[t] != want_i[t]) {
        fail("int8", n, d, nq, k, q, i, got_s[t], want_s[t], got_i[t], want_i[t]);
        return;
      }
    }
}

/// Hamming kNN on the emulator against the CPU. filter_cap > 0: the filtered schedule's plan shrunk to
/// this size (candidate buffers of filter_cap keys, samples of at least filter_sample rows, query
/// groups of at most 32), so that it runs on small bases; crowd: that many extra copies of query 0
/// spread over the base (every other one at distance 1), so that query 0's candidates outgrow a
/// small buffer; want_rescored: the queries the filtered schedule must have rescored (-1: the plain
/// schedule must have run; -2: anything; -3: at least one); ladder: query q's answer is rows
/// 1 + q k .. q k + k at distances 1 .. k, every other row farther (words >= 2, k < 64).
void check_binary(std::mt19937_64& rng, std::int64_t n, std::int32_t words, std::int64_t nq, std::int32_t k,
                  int schedule, bool reverse, std::int64_t filter_cap = 0, std::int64_t filter_sample = 0,
                  std::int64_t crowd = 0, std::int64_t want_rescored = -2, bool ladder = false) {
  ++cases;
  std::vector<std::uint64_t> codes(static_cast<std::size_t>(n * words) + 1),
      queries(static_cast<std::size_t>(nq * words) + 1);
  for (auto& c : codes) c = rng();
  for (auto& c : queries) c = rng();
  // Some exact duplicates and near copies of the queries in the base (distance 0 and small).
  for (std::int64_t q = 0; q < nq && q < n / 3; ++q) {
    std::memcpy(&codes[static_cast<std::size_t>((3 * q) * words)],
                &queries[static_cast<std::size_t>(q * words)], 8 * words);
    std::memcpy(&codes[static_cast<std::size_t>((3 * q + 1) * words)],
                &queries[static_cast<std::size_t>(q * words)], 8 * words);
    codes[static_cast<std::size_t>((3 * q + 1) * words)] ^= 5;
  }
  if (ladder) {  // rows 1 + q * k + i at distance i + 1 from query q (bits of word 0), the rest far
    for (auto& c : codes) c = 0;
    for (auto& c : queries) c = ~0ULL;
    for (std::int64_t q = 0; q < nq; ++q) {
      queries[static_cast<std::size_t>(q * words)] = rng();
      for (std::int32_t i = 0; i < k; ++i) {
        const std::int64_t row = 1 + q * k + i;
        for (std::int32_t w = 0; w < words; ++w) codes[row * words + w] = queries[q * words + w];
        codes[row * words] ^= (1ULL << (i + 1)) - 1;
      }
    }
  }
  for (std::int64_t c = 0; c < crowd && nq > 0; ++c) {
    const std::int64_t row = n - 1 - c * (n / (crowd + 1));
    std::memcpy(&codes[static_cast<std::size_t>(row * words)], &queries[0], 8 * words);
    if (c % 2 == 1) codes[static_cast<std::size_t>(row * words)] ^= 1ULL << 40;
  }
  std::vector<std::int32_t> want_d(static_cast<std::size_t>(nq * k)), got_d(want_d.size(), 77);
  std::vector<std::int64_t> want_i(want_d.size()), got_i(want_d.size(), 77);
  if (words == 1 || words == 4) {
    mmcore::hamming_knn(codes.data(), nullptr, n, queries.data(), nq, words, k, 2, want_d.data(),
                        want_i.data());
  } else {
    mmcore::quant_score_binary(codes.data(), n, words, queries.data(), nq, k, 2, want_d.data(),
                               want_i.data());
  }
  // The filtered schedule's filter pass twice: on the (emulated) tensor cores and by POPC.
  for (const bool mma : {true, false}) {
    if (!mma && filter_cap == 0) break;
    mmcore_test::SearchEmu emu;
    emu.reverse = reverse;
    configure(&emu, schedule);
    emu.knn_mma_on = mma;
    if (filter_cap > 0) {
      emu.knn_shape.max_cap = filter_cap;
      emu.knn_shape.min_sample = filter_sample;
      emu.knn_shape.max_query_group = 32;
    }
    std::fill(got_d.begin(), got_d.end(), 77);
    std::fill(got_i.begin(), got_i.end(), 77);
    emu.hamming_knn(codes.data(), n, words, queries.data(), nq, k, got_d.data(), got_i.data());
    const bool rescored_ok = want_rescored == -2 || (want_rescored == -3 ? emu.knn_rescored >= 1
                                                                         : emu.knn_rescored == want_rescored);
    if (!rescored_ok && ++failures <= 20)
      std::printf(
          "MISMATCH binary n=%lld words=%d nq=%lld k=%d: %lld queries rescored, want %lld (-1: plain)\n",
          static_cast<long long>(n), words, static_cast<long long>(nq), k,
          static_cast<long long>(emu.knn_rescored), static_cast<long long>(want_rescored));
    if (filter_cap > 0 && emu.knn_rescored >= 0)
      ++(emu.knn_mma_passes > 0 ? filtered_mma_cases : filtered_cases);
    for (std::int64_t q = 0; q < nq; ++q)
      for (std::int32_t i = 0; i < k; ++i) {
        const std::size_t t = static_cast<std::size_t>(q * k + i);
        if (got_d[t] != want_d[t] || got_i[t] != want_i[t]) {
          fail(mma ? "binary (tensor-core filter)" : "binary", n, words, nq, k, q, i, got_d[t], want_d[t],
               got_i[t], want_i[t]);
          return;
        }
      }
  }
}

/// An emulator for the join and radius checks: thread order, the first result buffer, and whether
/// the brute force may take the (emulated) tensor cores.
mmcore_test::SearchEmu pairs_emu(bool reverse, std::int64_t mih_capacity, bool mma) {
  mmcore_test::SearchEmu emu;
  emu.reverse = reverse;
  emu.mih_capacity = mih_capacity;
  emu.mih_attempts = 0;
  emu.knn_mma_on = mma;
  return emu;
}

/// method: 0 auto, 1 brute force, 2 MIH (SearchGpu::hamming_join's); mih_capacity: the MIH pair
/// buffer to start with (0: the default); crowded: half the codes share their first 24 bits (crowded
/// buckets: many chunks per bucket, long spans).
void check_join(std::mt19937_64& rng, std::int64_t n, std::int32_t words, std::int32_t r, int method = 0,
                std::int64_t mih_capacity = 0, bool crowded = false, int want_attempts = 0) {
  ++cases;
  std::vector<std::uint64_t> codes(static_cast<std::size_t>(n * words) + 1);
  for (auto& c : codes) c = rng();
  if (crowded)
    for (std::int64_t i = 0; i < n; i += 2)
      codes[i * words] = (codes[i * words] & ~0xFFFFFFULL) | 0x5A5A5AULL;
  // Near copies of earlier rows (a few bits flipped) and exact duplicates, so that pairs exist.
  for (std::int64_t i = 1; i < n; ++i) {
    if (rng() % 3 != 0) continue;
    const std::int64_t src = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(i));
    for (std::int32_t w = 0; w < words; ++w) codes[i * words + w] = codes[src * words + w];
    for (std::uint64_t f = rng() % 6; f > 0; --f)
      codes[i * words + static_cast<std::int64_t>(rng() % words)] ^= 1ULL << (rng() % 64);
  }
  mmcore::HammingOutput want;
  if (words == 1 || words == 4) {
    mmcore::hamming_join(codes.data(), n, words, r, 2, mmcore::HammingMethod::kBrute, &want);
  } else {  // other widths: a plain double loop
    std::vector<std::int64_t> a, b;
    std::vector<std::int32_t> d;
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = i + 1; j < n; ++j) {
        std::int32_t dd = 0;
        for (std::int32_t w = 0; w < words; ++w)
          dd += __builtin_popcountll(codes[i * words + w] ^ codes[j * words + w]);
        if (dd <= r) {
          a.push_back(i);
          b.push_back(j);
          d.push_back(dd);
        }
      }
    want.count = static_cast<std::int64_t>(a.size());
    want.first = static_cast<std::int64_t*>(std::malloc(8 * a.size() + 8));
    want.second = static_cast<std::int64_t*>(std::malloc(8 * a.size() + 8));
    want.dist = static_cast<std::int32_t*>(std::malloc(4 * a.size() + 4));
    std::memcpy(want.first, a.data(), 8 * a.size());
    std::memcpy(want.second, b.data(), 8 * a.size());
    std::memcpy(want.dist, d.data(), 4 * a.size());
  }
  const bool reverse = (rng() & 1) != 0;
  // The brute force twice: on the (emulated) tensor cores where the device would take them, and by
  // the POPC pairs kernels (MMCORE_GPU_KNN_MMA=0).
  for (const bool mma : {true, false}) {
    mmcore_test::SearchEmu emu = pairs_emu(reverse, mih_capacity, mma);
    std::vector<std::int64_t> first, second;
    std::vector<std::int32_t> dist;
    emu.hamming_join(codes.data(), n, words, r, &first, &second, &dist, method);
    const mmcore::detail::MihPlan plan =
        mmcore::detail::gpu_join_plan(n, words, std::min(r, 64 * words), method);
    const bool tc = plan.m == 0 && mmcore::gpu_detail::knn_mma_usable(true, mma, words, n);
    bool same = static_cast<std::int64_t>(first.size()) == want.count;
    for (std::int64_t i = 0; same && i < want.count; ++i)
      same = first[i] == want.first[i] && second[i] == want.second[i] && dist[i] == want.dist[i];
    // The method asked for is the one that ran, and a small buffer made the MIH join (or the
    // tensor-core brute force) run twice.
    const bool ran = (method == 1 && plan.m == 0) || (method == 2 && (plan.m > 0 || n < 2)) || method == 0;
    const bool attempts = want_attempts == 0 || (plan.m == 0 && !tc) || emu.mih_attempts == want_attempts;
    if ((!same || !ran || !attempts) && ++failures <= 20)
      std::printf(
          "MISMATCH join n=%lld words=%d r=%d method=%d%s (plan m=%d, %d passes): %zu pairs, want %lld\n",
          static_cast<long long>(n), words, r, method, tc ? " tensor cores" : "", plan.m, emu.mih_attempts,
          first.size(), static_cast<long long>(want.count));
    if (tc) ++tc_join_cases;
    if (plan.m > 0) break;  // MIH: the same run twice
  }
  if (method == 2) ++mih_cases;
}

/// method, mih_capacity, crowded, want_attempts: as for check_join (crowded: a third of the base
/// equal to query 0).
void check_radius(std::mt19937_64& rng, std::int64_t n, std::int32_t words, std::int64_t nq, std::int32_t r,
                  int method = 0, std::int64_t mih_capacity = 0, bool crowded = false,
                  int want_attempts = 0) {
  ++cases;
  std::vector<std::uint64_t> codes(static_cast<std::size_t>(n * words) + 1),
      queries(static_cast<std::size_t>(nq * words) + 1);
  for (auto& c : codes) c = rng();
  for (auto& c : queries) c = rng();
  for (std::int64_t q = 0; q < nq && n > 0; ++q)  // near copies of each query in the base
    for (int copy = 0; copy < 5; ++copy) {
      const std::int64_t at = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n));
      for (std::int32_t w = 0; w < words; ++w) codes[at * words + w] = queries[q * words + w];
      codes[at * words + static_cast<std::int64_t>(rng() % words)] ^= rng() & rng() & rng();
    }
  if (n > 1 && nq > 0)  // the farthest code there is (every bit differs) in the base
    for (std::int32_t w = 0; w < words; ++w) codes[words + w] = ~queries[w];
  if (crowded && nq > 0)
    for (std::int64_t i = 0; i < n; i += 3)
      for (std::int32_t w = 0; w < words; ++w) codes[i * words + w] = queries[w];
  mmcore::HammingOutput want;
  mmcore::hamming_radius(codes.data(), nullptr, n, queries.data(), nq, words, r, 2,
                         mmcore::HammingMethod::kBrute, &want);
  const bool reverse = (rng() & 1) != 0;
  // The brute force twice, as check_join: on the (emulated) tensor cores where the device would
  // take them, and by the POPC pairs kernels.
  for (const bool mma : {true, false}) {
    mmcore_test::SearchEmu emu = pairs_emu(reverse, mih_capacity, mma);
    std::vector<std::int64_t> lims, ids;
    std::vector<std::int32_t> dist;
    emu.hamming_radius(codes.data(), n, words, queries.data(), nq, r, &lims, &ids, &dist, method);
    const mmcore::detail::MihPlan plan =
        mmcore::detail::gpu_radius_plan(n, nq, words, std::min(r, 64 * words), method);
    const bool tc = plan.m == 0 && mmcore::gpu_detail::tc_radius_usable(true, mma, words, nq, n);
    bool same = static_cast<std::int64_t>(ids.size()) == want.count;
    for (std::int64_t q = 0; same && q <= nq; ++q) same = lims[q] == want.lims[q];
    for (std::int64_t i = 0; same && i < want.count; ++i)
      same = ids[i] == want.second[i] && dist[i] == want.dist[i];
    const bool ran =
        (method == 1 && plan.m == 0) || (method == 2 && (plan.m > 0 || n < 1 || nq < 1)) || method == 0;
    const bool attempts = want_attempts == 0 || (plan.m == 0 && !tc) || emu.mih_attempts == want_attempts;
    if ((!same || !ran || !attempts) && ++failures <= 20)
      std::printf(
          "MISMATCH radius n=%lld words=%d nq=%lld r=%d method=%d%s (plan m=%d, %d passes): %zu results, "
          "want %lld\n",
          static_cast<long long>(n), words, static_cast<long long>(nq), r, method, tc ? " tensor cores" : "",
          plan.m, emu.mih_attempts, ids.size(), static_cast<long long>(want.count));
    if (tc) ++tc_radius_cases;
    if (plan.m > 0) break;  // MIH: the same run twice
  }
  if (method == 2) ++mih_cases;
}

}  // namespace

/// The default plan keeps both candidate-key buffers within the budget at sizes where 2048-query
/// groups would not fit a GPU.
void check_plan_budget() {
  for (const std::int64_t n :
       {std::int64_t{10'000'000}, std::int64_t{300'000'000}, std::int64_t{4'000'000'000}})
    for (const std::int32_t k : {10, 100, 1024}) {
      ++cases;
      mmcore::gpu_detail::TopkShape shape;
      shape.n = n;
      shape.nq = 5000;
      shape.k = k;
      shape.blocks_wanted = 4 * 132;
      const mmcore::gpu_detail::TopkPlan p = mmcore::gpu_detail::plan_topk(shape);
      if (p.key_elems * 8 > shape.key_budget || p.query_group < 1 || p.level1_len < k) {
        ++failures;
        std::printf("PLAN n=%lld k=%d: group %lld, %lld key bytes\n", static_cast<long long>(n), k,
                    static_cast<long long>(p.query_group), static_cast<long long>(p.key_elems * 8));
      }
    }
}

int main() {
  std::mt19937_64 rng(20261128);
  check_plan_budget();
  // int8: the stream kernel (d % 16 == 0, aligned, nq <= 8) ...
  for (std::int32_t d : {16, 32, 768})
    for (std::int64_t nq : {1, 2, 3, 5, 8})
      for (std::int32_t k : {1, 10}) check_int8(rng, 3000, d, nq, k, 0, 0, 0, nq == 3);
  // ... the tile kernel: many queries, odd d, misaligned pointers (and d = 768 on a device
  // without tensor cores) ...
  for (std::int32_t d : {7, 100, 257, 768})
    for (std::int64_t nq : {9, 70})
      for (int offset : {0, 1}) check_int8(rng, 1500, d, nq, 10, 0, offset, 0, offset == 1, false);
  // ... the tensor-core kernel: d % 64 == 0, more than 8 queries (one and several query blocks,
  // rows not a multiple of the 128-row tile, the 2048 limit, d % 128 == 64 and == 0 strides),
  // extreme and two-valued data.
  for (std::int32_t d : {64, 192, 768, 2048})
    for (std::int64_t nq : {9, 64, 70, 130})
      check_int8(rng, d == 2048 ? 300 : 1333, d, nq, 10, 0, 0, 0, nq == 70);
  for (int data : {1, 2}) check_int8(rng, 2100, 128, 33, 50, data, 0, 0, false);
  check_int8(rng, 20000, 64, 17, 100, 0, 0, 1, false);  // small chunks and query groups
  check_int8(rng, 1500, 4096, 9, 5, 0, 0, 0, false);    // over kMmaMaxD: the tile kernel
  check_int8(rng, 2000, 16, 1, 5, 0, 1, 0, false);      // nq 1 but misaligned: the tile kernel
  // extreme values and ties (two-valued data: many equal scores, decided by position)
  for (int data : {1, 2})
    for (std::int64_t nq : {1, 4, 20}) check_int8(rng, 5000, 32, nq, 100, data, 0, 0, false);
  // k from 1 to the limit; k > n padding; empty base or batch
  for (std::int32_t k : {1, 2, 63, 1024}) check_int8(rng, 9000, 48, 3, k, 0, 0, 0, false);
  check_int8(rng, 1500, 48, 2, 1024, 2, 0, 0, true);
  check_int8(rng, 5, 48, 3, 10, 0, 0, 0, false);
  check_int8(rng, 0, 48, 3, 10, 0, 0, 0, false);
  check_int8(rng, 100, 48, 0, 10, 0, 0, 0, false);
  // forced schedules: small chunks / query groups, and many select levels
  for (int schedule : {1, 2, 3}) {
    check_int8(rng, 20000, 32, 7, 10, 2, 0, schedule, false);
    check_int8(rng, 20000, 33, 11, 300, 0, 0, schedule, schedule == 2);
    check_int8(rng, 40000, 16, 1, 1024, 2, 0, schedule, false);
  }
  // binary
  for (std::int32_t words : {1, 3, 4})
    for (std::int64_t nq : {1, 5, 70})
      for (std::int32_t k : {1, 10, 100}) check_binary(rng, 6000, words, nq, k, 0, nq == 5);
  check_binary(rng, 3, 4, 2, 10, 0, false);
  check_binary(rng, 0, 4, 2, 10, 0, false);
  for (int schedule : {1, 2, 3}) {
    check_binary(rng, 30000, 1, 9, 1024, schedule, false);
    check_binary(rng, 30000, 4, 4, 50, schedule, true);
  }
  // the filtered kNN, its plan shrunk (candidate buffers of 1024 to 16384 keys, samples of >= 500
  // rows; the sample is then 4 k n / cap rows): 1, 3 and 4 words, query groups of 32 (70 queries:
  // three), both orders, forced small schedules, several select rounds over the candidates (16384
  // keys); nothing rescored where no query has a crowd (64-bit codes: ties may crowd a bound).
  for (std::int32_t words : {1, 3, 4})
    for (std::int64_t nq : {1, 5, 70})
      for (std::int32_t k : {1, 10, 64})
        check_binary(rng, 20000, words, nq, k, 0, nq == 5, 1024, 500, 0, words == 1 ? -2 : 0);
  check_binary(rng, 100000, 4, 40, 256, 2, true, 16384, 2000, 0, 0);
  check_binary(rng, 40000, 4, 3, 1024, 0, true, 65536, 500, 0, 0);  // three select rounds
  check_binary(rng, 30000, 4, 9, 100, 1, false, 4096, 500, 0, 0);
  check_binary(rng, 30000, 3, 9, 100, 3, true, 4096, 500, 0, 0);
  // the answer inside the sample at distinct distances, every other row far: each bound is exactly
  // the k-th distance of the answer.
  check_binary(rng, 20000, 4, 6, 12, 0, false, 1024, 500, 0, 0, true);
  // query 0 with a crowd of copies: more candidates than its buffer holds, rescored by the plain
  // schedule (alone, or among others; the copies at distance 0 and 1 fill its answer).
  check_binary(rng, 20000, 4, 1, 10, 0, false, 256, 500, 600, 1);
  check_binary(rng, 20000, 4, 37, 50, 0, true, 1024, 500, 2400, -3);
  check_binary(rng, 100000, 1, 33, 300, 1, false, 8192, 500, 18000, -3);
  // where the plan keeps the plain schedule: k over a quarter of the buffer, a sample over a
  // quarter of the base, and the default plan on a small base.
  check_binary(rng, 20000, 4, 3, 65, 0, false, 256, 500, 0, -1);
  check_binary(rng, 1900, 4, 3, 10, 0, false, 256, 500, 0, -1);
  check_binary(rng, 30000, 4, 3, 10, 0, false, 0, 0, 0, -1);
  check_binary(rng, 0, 4, 3, 10, 0, false, 1024, 500, 0, -1);  // an empty base: never filtered
  // The default plan: the smallest base it filters (4 x 65,536 rows), and the sizes of the bench.
  for (const auto& [n, nq, k, filtered, cap, sample] :
       {std::tuple<std::int64_t, std::int64_t, int, bool, std::int64_t, std::int64_t>{262144, 1, 10, true,
                                                                                      65536, 65536},
        {262143, 1, 10, false, 65536, 65536},
        {10000000, 1024, 10, true, 32768, 65536},
        {10000000, 64, 100, true, 65536, 65536},
        {10000000, 3, 1024, true, 65536, 625000},
        {0, 5, 10, false, 65536, 0}}) {
    ++cases;
    mmcore::gpu_detail::KnnFilterShape fs;
    fs.n = n;
    fs.nq = nq;
    fs.k = k;
    const mmcore::gpu_detail::KnnFilterPlan p = mmcore::gpu_detail::plan_knn_filter(fs);
    if ((p.filtered != filtered || p.cap != cap || p.sample != sample) && ++failures <= 20)
      std::printf("MISMATCH kNN filter plan n=%lld nq=%lld k=%d: filtered %d cap %lld sample %lld\n",
                  static_cast<long long>(n), static_cast<long long>(nq), k, p.filtered,
                  static_cast<long long>(p.cap), static_cast<long long>(p.sample));
  }
  // join
  for (std::int32_t words : {1, 3, 4})
    for (std::int32_t r : {0, 3, 10}) check_join(rng, 700, words, r);
  check_join(rng, 1, 4, 5);
  check_join(rng, 0, 4, 5);
  check_join(rng, 100, 1, 64);  // every pair
  // the MIH join (forced; the brute force forced; the model's choice at sizes where MIH wins)
  for (std::int32_t words : {1, 2, 3, 4})
    for (std::int32_t r : {0, 1, 5, 12, 31}) {
      check_join(rng, 900, words, r, 2);
      check_join(rng, 900, words, r, 1);
    }
  check_join(rng, 3000, 4, 31, 2, 0, true);  // crowded buckets: many chunks each
  check_join(rng, 3000, 1, 6, 2, 0, true);
  check_join(rng, 2000, 4, 20, 2, 10, false, 2);  // a 10-pair buffer: grown, run again
  check_join(rng, 2000, 1, 3, 2, 1, true, 2);
  check_join(rng, 2000, 4, 20, 1, 10, false, 2);  // the brute force on tensor cores, grown and run again
  check_join(rng, 1000, 1, 6, 1, 0, true);        // crowded, brute force
  check_join(rng, 1, 4, 5, 2);
  check_join(rng, 2, 4, 256, 2);
  check_join(rng, 60, 1, 64, 2);     // every pair by MIH
  check_join(rng, 40000, 4, 31, 0);  // auto: MIH by the model
  check_join(rng, 40000, 1, 4, 0);
  for (const auto& [n, words, r, mih] : {std::tuple<std::int64_t, int, int, bool>{40000, 4, 31, true},
                                         {40000, 1, 4, true},
                                         {1000000, 4, 31, true},
                                         {700, 4, 31, false},
                                         {40000, 4, 128, false}}) {
    const mmcore::detail::MihPlan plan = mmcore::detail::gpu_join_plan(n, words, r, 0);
    std::printf("GPU join plan n=%lld bits=%d r=%d: %s (m %d, substring radius %d)\n",
                static_cast<long long>(n), 64 * words, r, plan.m > 0 ? "mih" : "brute", plan.m, plan.s);
    if ((plan.m > 0) != mih && ++failures <= 20) std::printf("MISMATCH: the model's choice\n");
  }
  // radius (64 and 256 bits: hamming_radius's widths)
  for (std::int32_t words : {1, 4})
    for (std::int32_t r : {0, 8, 20, 30}) check_radius(rng, 3000, words, 17, r);
  check_radius(rng, 0, 4, 3, 10);
  check_radius(rng, 500, 1, 0, 10);
  check_radius(rng, 300, 1, 4, 64);  // everything, ties on distance decided by row
  // the brute force on tensor cores (32 queries or more): 1 and 4 words (hamming_radius's), a grown
  // result buffer, crowded queries, every code within r
  for (std::int32_t words : {1, 4})
    for (std::int32_t r : {0, 9, 30}) check_radius(rng, 2500, words, 40, r, 1);
  check_radius(rng, 3000, 4, 33, 40, 1, 50, true, 2);
  check_radius(rng, 700, 1, 300, 64, 1);
  // MIH radius search (forced; brute forced), crowded buckets, a grown result buffer
  for (std::int32_t words : {1, 4})
    for (std::int32_t r : {0, 3, 9, 31}) {
      check_radius(rng, 2000, words, 23, r, 2);
      check_radius(rng, 2000, words, 23, r, 1);
    }
  check_radius(rng, 3000, 4, 9, 40, 2, 0, true);
  check_radius(rng, 3000, 1, 9, 12, 2, 50, true, 2);
  check_radius(rng, 300, 1, 4, 64, 2);   // everything by MIH
  check_radius(rng, 200, 4, 3, 256, 2);  // distance 256 in the result keys
  check_radius(rng, 0, 4, 3, 10, 2);
  check_radius(rng, 500, 1, 0, 10, 2);
  check_radius(rng, 30000, 4, 3000, 31, 0);  // auto: MIH by the model
  for (const auto& [n, nq, words, r, mih] :
       {std::tuple<std::int64_t, std::int64_t, int, int, bool>{30000, 3000, 4, 31, true},
        {30000, 300, 4, 31, false},
        {10000000, 1000, 4, 31, true},
        {10000000, 1, 4, 31, false},
        {1000, 10, 4, 31, false}}) {
    const mmcore::detail::MihPlan plan = mmcore::detail::gpu_radius_plan(n, nq, words, r, 0);
    std::printf("GPU radius plan n=%lld nq=%lld bits=%d r=%d: %s (m %d, substring radius %d)\n",
                static_cast<long long>(n), static_cast<long long>(nq), 64 * words, r,
                plan.m > 0 ? "mih" : "brute", plan.m, plan.s);
    if ((plan.m > 0) != mih && ++failures <= 20) std::printf("MISMATCH: the model's choice\n");
  }
  // MIH's limits (2^31 codes, 2^23 queries): the brute force even when MIH is asked for.
  for (const auto& [n, nq] : {std::pair<std::int64_t, std::int64_t>{std::int64_t{3} << 30, 1000},
                              {100000, std::int64_t{1} << 23}}) {
    ++cases;
    if (mmcore::detail::gpu_radius_plan(n, nq, 4, 31, 2).m != 0 && ++failures <= 20)
      std::printf("MISMATCH: MIH radius search planned past its limits (n %lld, nq %lld)\n",
                  static_cast<long long>(n), static_cast<long long>(nq));
  }
  if ((filtered_cases < 20 || filtered_mma_cases < 10) && ++failures <= 20)
    std::printf("MISMATCH: only %d / %d filtered kNN cases ran (POPC / tensor-core filter)\n", filtered_cases,
                filtered_mma_cases);
  if (tc_radius_cases < 8 && ++failures <= 20)
    std::printf("MISMATCH: only %d radius searches by the tensor-core brute force\n", tc_radius_cases);
  if (tc_join_cases < 10 && ++failures <= 20)
    std::printf("MISMATCH: only %d joins by the tensor-core brute force\n", tc_join_cases);
  std::printf(
      "%d cases (%d of them MIH forced, %d / %d filtered kNN by POPC / tensor cores, %d / %d tensor-core "
      "joins / radius searches)\n",
      cases, mih_cases, filtered_cases, filtered_mma_cases, tc_join_cases, tc_radius_cases);
  std::printf(failures == 0 ? "PASS\n" : "FAILED (%d)\n", failures);
  return failures == 0 ? 0 : 1;
}
