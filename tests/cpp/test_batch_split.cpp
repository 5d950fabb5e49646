// split_failed_batch (cpp/src/batch_split_internal.h): the GPU decode's search for the images that
// fail a hardware batch alone, against a fake batch call that fails whenever a "bad" record is in
// it. Every good record is counted done exactly once, every bad one is reported, the tries stay
// within the bound, and a fatal try stops the search.
#include <cstdio>
#include <random>
#include <set>
#include <vector>

#include "batch_split_internal.h"

using mmcore::detail::BatchResult;
using mmcore::detail::split_failed_batch;

int main() {
  int failures = 0;
  std::mt19937 rng(7);
  for (int trial = 0; trial < 2000; ++trial) {
    const std::size_t n = 1 + rng() % (trial < 1000 ? 40 : 3000);
    std::vector<std::int32_t> idx(n);
    for (std::size_t i = 0; i < n; ++i) idx[i] = static_cast<std::int32_t>(3 * i + 1);  // sparse ids
    std::set<std::int32_t> bad;
    const std::size_t nbad = 1 + rng() % (trial % 5 == 0 ? n : std::min<std::size_t>(n, 4));
    while (bad.size() < nbad) bad.insert(idx[rng() % n]);
    const int fatal_at = trial % 7 == 0 ? static_cast<int>(rng() % 6) : -1;
    int tries = 0;
    std::vector<int> seen(3 * n + 2, 0);
    const auto try_batch = [&](const std::int32_t* p, std::size_t c) {
      if (tries++ == fatal_at) return BatchResult::kFatal;
      for (std::size_t k = 0; k < c; ++k)
        if (bad.count(p[k])) return BatchResult::kRefused;
      for (std::size_t k = 0; k < c; ++k) ++seen[static_cast<std::size_t>(p[k])];
      return BatchResult::kDone;
    };
    std::int64_t done = 0;
    std::vector<std::int32_t> alone;
    const bool ok = split_failed_batch(idx.data(), n, try_batch, &done, &alone);
    if (fatal_at >= 0 && tries > fatal_at) {
      if (ok) {
        std::printf("trial %d: a fatal try did not stop the search\n", trial);
        ++failures;
      }
      if (tries != fatal_at + 1) {
        std::printf("trial %d: %d tries after the fatal one\n", trial, tries - fatal_at - 1);
        ++failures;
      }
      continue;
    }
    if (!ok) {
      std::printf("trial %d: failed without a fatal try\n", trial);
      ++failures;
      continue;
    }
    if (std::set<std::int32_t>(alone.begin(), alone.end()) != bad || alone.size() != bad.size()) {
      std::printf("trial %d: %zu reported alone, %zu bad\n", trial, alone.size(), bad.size());
      ++failures;
    }
    for (std::size_t k = 1; k < alone.size(); ++k)
      if (alone[k - 1] >= alone[k]) {
        std::printf("trial %d: alone not in index order\n", trial);
        ++failures;
        break;
      }
    if (done != static_cast<std::int64_t>(n - bad.size())) {
      std::printf("trial %d: done %lld, want %zu\n", trial, static_cast<long long>(done), n - bad.size());
      ++failures;
    }
    for (std::int32_t i : idx) {
      const int want = bad.count(i) ? 0 : 1;
      if (seen[static_cast<std::size_t>(i)] != want) {
        std::printf("trial %d: record %d decoded %d times\n", trial, i, seen[static_cast<std::size_t>(i)]);
        ++failures;
        break;
      }
    }
    // Each bad record costs at most two tries per level of halving.
    int levels = 0;
    while ((std::size_t{1} << levels) < n) ++levels;
    if (tries > static_cast<int>(2 * bad.size() * static_cast<std::size_t>(levels) + 2)) {
      std::printf("trial %d: %d tries for %zu bad of %zu\n", trial, tries, bad.size(), n);
      ++failures;
    }
  }
  std::printf("%s (%d failures)\n", failures == 0 ? "PASS" : "FAIL", failures);
  return failures == 0 ? 0 : 1;
}
