#include "mmcore/parallel.h"

#include <algorithm>
#include <atomic>
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
  auto work = [&] {
    for (std::int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
         i = next.fetch_add(1, std::memory_order_relaxed)) {
      fn(i);
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
}

}  // namespace mmcore
