// Hamming search over binary codes: kNN, radius search, all-pairs join, union-find.
//
// Contract
// - Codes are rows of `words` uint64 (1: 64-bit hashes, 4: 256-bit PDQ; any width from 1 to
//   kHammingMaxWords: imagehash hashes of other sizes, binary embedding codes), row-major and
//   contiguous; the distance is the popcount of the XOR, independent of how bits are packed. A
//   code shorter than its words leaves the spare bits 0 in every code (they then add nothing).
// - Exact: every variant (ref, avx2, avx512) and every method (brute force, multi-index hashing)
//   gives the same answers. kNN: per query the k nearest codes ordered by (distance, id), the same
//   as faiss IndexBinaryFlat when ids are positions; when k > n the tail is padded as faiss 1.15
//   pads (distance INT32_MAX, id -1). Radius: the radius is inclusive (distance <= r; faiss's
//   binary range_search keeps distance < radius). Join: every unordered pair of positions a < b
//   with distance <= r exactly once.
// - Output order is deterministic (whatever the thread count): radius results per query by
//   (distance, id), join pairs by (a, b).
// - Variant: picked once per call, active_backend() unless a Backend is passed.
// - Threads: `threads` <= 0 means hardware_threads(); created per call, joined before return.
//   Reentrant, no shared state. Misuse (bad sizes, k < 1, r < 0) throws std::invalid_argument;
//   allocation failure throws std::bad_alloc.
// - Multi-index hashing (MIH): the code's bits are split into m substrings; r = s*m + a
//   (0 <= a < m) means a pair within r has one of the first a+1 substrings within s or one of
//   the others within s-1 (pigeonhole). Tables (a uint32 permutation sorted by substring, the
//   codes in that order and 2^b + 1 offsets) are built per call, one substring at a time; a pair
//   seen through substring c is kept only when no earlier substring also matched, so it is found
//   once without a hash set. kAuto picks brute force or MIH (and m) with a cost model.
#pragma once

#include <cstdint>

#include "mmcore/backend.h"

namespace mmcore {

/// Widest code, in 64-bit words: 65,536 bits (as the binary codes of mmcore/quant.h).
constexpr std::int32_t kHammingMaxWords = 1024;

enum class HammingMethod : std::uint8_t { kAuto = 0, kBrute = 1, kMih = 2 };

/// What a radius search or join did.
struct HammingStats {
  HammingMethod method = HammingMethod::kBrute;  ///< kBrute or kMih (never kAuto)
  std::int32_t m = 0;                            ///< substrings (0 for brute force)
  std::int32_t sub_radius = 0;                   ///< floor(r / m) (0 for brute force)
  std::int64_t candidates = 0;                   ///< code pairs whose distance was computed
  std::int64_t table_bytes = 0;                  ///< peak bytes of the MIH tables (0 for brute force)
};

/// Results of a radius search or join. The arrays are allocated by the call with std::malloc;
/// this object frees them unless the caller takes them (sets the pointer to nullptr and frees it
/// with std::free later).
struct HammingOutput {
  std::int64_t count = 0;          ///< results: L (radius) or P (join)
  std::int64_t* lims = nullptr;    ///< radius: Q + 1 offsets into the result arrays
  std::int64_t* first = nullptr;   ///< join: positions a
  std::int64_t* second = nullptr;  ///< join: positions b (a < b); radius: ids
  std::int32_t* dist = nullptr;    ///< distances
  HammingStats stats;

  HammingOutput() = default;
  HammingOutput(const HammingOutput&) = delete;
  HammingOutput& operator=(const HammingOutput&) = delete;
  ~HammingOutput();
};

/// kNN: for each of the nq queries the k nearest of the n base codes. ids: n int64 or nullptr
/// (positions). Writes dist[nq * k] and labels[nq * k] (caller-owned), row per query.
void hamming_knn(const std::uint64_t* base, const std::int64_t* ids, std::int64_t n,
                 const std::uint64_t* queries, std::int64_t nq, std::int32_t words, std::int32_t k,
                 int threads, std::int32_t* dist, std::int64_t* labels);
void hamming_knn(const std::uint64_t* base, const std::int64_t* ids, std::int64_t n,
                 const std::uint64_t* queries, std::int64_t nq, std::int32_t words, std::int32_t k,
                 int threads, std::int32_t* dist, std::int64_t* labels, Backend backend);

/// Radius search: every base code within r of each query, as CSR (lims, second = ids, dist).
void hamming_radius(const std::uint64_t* base, const std::int64_t* ids, std::int64_t n,
                    const std::uint64_t* queries, std::int64_t nq, std::int32_t words, std::int32_t r,
                    int threads, HammingMethod method, HammingOutput* out);
void hamming_radius(const std::uint64_t* base, const std::int64_t* ids, std::int64_t n,
                    const std::uint64_t* queries, std::int64_t nq, std::int32_t words, std::int32_t r,
                    int threads, HammingMethod method, HammingOutput* out, Backend backend);

/// Self-join: every pair of positions a < b within r (first = a, second = b, dist).
void hamming_join(const std::uint64_t* base, std::int64_t n, std::int32_t words, std::int32_t r, int threads,
                  HammingMethod method, HammingOutput* out);
void hamming_join(const std::uint64_t* base, std::int64_t n, std::int32_t words, std::int32_t r, int threads,
                  HammingMethod method, HammingOutput* out, Backend backend);

/// Connected components of the join's graph (codes as nodes, the pairs within r as edges):
/// roots[i] (n, caller-owned) = the smallest position in row i's component, as union_find of
/// hamming_join's pairs gives, without keeping the pairs: identical codes are grouped first (one
/// node each), and the pairs the join finds among the distinct codes are united as they are found
/// (memory O(n) whatever the number of pairs). stats: the join over the distinct codes.
void hamming_components(const std::uint64_t* base, std::int64_t n, std::int32_t words, std::int32_t r,
                        int threads, HammingMethod method, std::int64_t* roots, HammingStats* stats);
void hamming_components(const std::uint64_t* base, std::int64_t n, std::int32_t words, std::int32_t r,
                        int threads, HammingMethod method, std::int64_t* roots, HammingStats* stats,
                        Backend backend);

/// Connected components of the graph on 0..n-1 with the edges (a[i], b[i]): labels[x] (n,
/// caller-owned) = the smallest position in x's component. Positions outside [0, n) throw
/// std::invalid_argument before anything is written.
void union_find(std::int64_t n, const std::int64_t* a, const std::int64_t* b, std::int64_t edges,
                std::int64_t* labels);

}  // namespace mmcore
