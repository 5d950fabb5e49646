// A bounded parallel-for over record indices.
//
// Contract: fn(i) is called exactly once for each i in [0, n), on up to `threads` threads
// (the caller's thread is one of them). fn should not throw (workers write statuses); if it
// does, the first exception stops the remaining work and is rethrown on the calling thread after
// every worker has joined. Threads are created per call and joined before return, so nothing
// outlives the call (no global pool).
#pragma once

#include <cstdint>
#include <functional>

namespace mmcore {

/// Number of hardware threads (>= 1).
int hardware_threads();

/// Runs fn(i) for i in [0, n) on min(threads, n) threads; threads <= 0 means hardware_threads().
void parallel_for(std::int64_t n, int threads, const std::function<void(std::int64_t)>& fn);

/// The number of threads parallel_for(n, threads, ...) runs on: min(threads, n), at least 1.
int parallel_workers(std::int64_t n, int threads);

/// parallel_for, with the thread's index as fn(i, worker): worker is in [0, parallel_workers(n,
/// threads)) and no two threads share one, so fn may keep per-worker state (e.g. a Workspace)
/// in a vector indexed by it.
void parallel_for_workers(std::int64_t n, int threads, const std::function<void(std::int64_t, int)>& fn);

}  // namespace mmcore
