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

void parallel_for(std::int64_t n, int threads, const std::function<void(std::int64_t)>& fn) {
  if (n <= 0) return;
  if (threads <= 0) threads = hardware_threads();
  const int workers = static_cast<int>(std::min<std::int64_t>(threads, n));
  if (workers == 1) {
    for (std::int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  // Dynamic scheduling: records differ wildly in cost (a 75x56 JPEG vs a 20000x14000 one).
  std::atomic<std::int64_t> next{0};
  // An exception escaping a std::thread would terminate the process: the first one is kept, the
  // remaining work is abandoned, and it is rethrown on the calling thread after the join.
  std::atomic<bool> failed{false};
  std::exception_ptr first;
  auto work = [&] {
    try {
      for (std::int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < n && !failed.load();
           i = next.fetch_add(1, std::memory_order_relaxed)) {
        fn(i);
      }
    } catch (...) {
      if (!failed.exchange(true)) first = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(workers - 1));
  for (int t = 1; t < workers; ++t) {
    try {
      pool.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // the OS refused a thread: the threads we have (at least this one) finish the work
    }
  }
  work();
  for (auto& th : pool) th.join();
  if (first) std::rethrow_exception(first);
}

}  // namespace mmcore
