#include "mmcore/parallel.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <system_error>
#include <thread>
#include <vector>

namespace mmcore {

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

int parallel_workers(std::int64_t n, int threads) {
  if (threads <= 0) threads = hardware_threads();
  return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, n)));
}

void parallel_for(std::int64_t n, int threads, const std::function<void(std::int64_t)>& fn) {
  parallel_for_workers(n, threads, [&fn](std::int64_t i, int) { fn(i); });
}

void parallel_for_workers(std::int64_t n, int threads, const std::function<void(std::int64_t, int)>& fn) {
  if (n <= 0) return;
  const int workers = parallel_workers(n, threads);
  if (workers == 1) {
    for (std::int64_t i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  // Dynamic scheduling: records differ wildly in cost (a 75x56 JPEG vs a 20000x14000 one).
  std::atomic<std::int64_t> next{0};
  // An exception escaping a std::thread would terminate the process: the first one is kept, the
  // remaining work is abandoned, and it is rethrown on the calling thread after the join.
  std::atomic<bool> failed{false};
  std::exception_ptr first;
  auto work = [&](int worker) {
    try {
      for (std::int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < n && !failed.load();
           i = next.fetch_add(1, std::memory_order_relaxed)) {
        fn(i, worker);
      }
    } catch (...) {
      if (!failed.exchange(true)) first = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(workers - 1));
  for (int t = 1; t < workers; ++t) {
    try {
      pool.emplace_back(work, t);
    } catch (const std::system_error&) {
      break;  // the OS refused a thread: the threads we have (at least this one) finish the work
    }
  }
  work(0);
  for (auto& th : pool) th.join();
  if (first) std::rethrow_exception(first);
}

}  // namespace mmcore
