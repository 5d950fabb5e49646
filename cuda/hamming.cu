// SearchGpu::hamming_knn (search_gpu.h): Hamming distances of binary codes (popcount of the XOR),
// then the shared top-k (cuda/topk.cu) on minus the distance. One thread per code row, a group of
// queries in shared memory per block; search_gpu_internal.h's binary_score is the arithmetic the
// CPU test runs too. Where its plan takes it (many rows, k small against them) the filtered
// schedule runs instead, writing no score matrix: a sample's top-k bounds each query, one pass
// appends the rows within the bound (knn_filter_kernel), a select over those
// (search_gpu_internal.h's run_knn_filtered). hamming_radius and hamming_join: multi-index hashing
// where the model finds it cheaper (hamming_mih_internal.h describes the steps), else brute force.
#include <cuda_runtime.h>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>
#include <cub/device/device_segmented_sort.cuh>
#include <vector>

#include "hamming_mih_internal.h"
#include "search_impl.cuh"

namespace mmcore {
namespace {

namespace g = gpu_detail;
namespace d = detail;

__global__ void __launch_bounds__(g::kBinaryThreads)
    binary_kernel(const std::uint64_t* codes, std::int64_t rows, std::int32_t words,
                  const std::uint64_t* queries, std::int32_t nq, std::int32_t qgroup, std::int32_t* scores,
                  std::int64_t ld, bool distances = false) {
  extern __shared__ std::uint64_t sq[];  // qgroup x words
  const int tid = static_cast<int>(threadIdx.x);
  const std::int32_t q0 = static_cast<std::int32_t>(blockIdx.y) * qgroup;
  const std::int32_t nqb = nq - q0 < qgroup ? nq - q0 : qgroup;
  for (std::int32_t i = tid; i < nqb * words; i += g::kBinaryThreads)
    sq[i] = queries[static_cast<std::int64_t>(q0) * words + i];
  __syncthreads();
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * g::kBinaryThreads + tid;
  if (row >= rows) return;
  const std::uint64_t* r = codes + row * words;
  const std::int32_t sign = distances ? -1 : 1;  // scores are minus the distance
  if (words == 4) {                              // PDQ: the row in registers
    const std::uint64_t rr[4] = {r[0], r[1], r[2], r[3]};
    for (std::int32_t j = 0; j < nqb; ++j)
      scores[(q0 + j) * ld + row] = sign * g::binary_score(rr, sq + 4 * j, 4);
  } else if (words == 1) {
    const std::uint64_t rr[1] = {r[0]};
    for (std::int32_t j = 0; j < nqb; ++j)
      scores[(q0 + j) * ld + row] = sign * g::binary_score(rr, sq + j, 1);
  } else {
    for (std::int32_t j = 0; j < nqb; ++j)
      scores[(q0 + j) * ld + row] =
          sign * g::binary_score(r, sq + static_cast<std::int64_t>(j) * words, words);
  }
}

unsigned pairs_blocks(std::int64_t nrows) {
  const std::int64_t want = (nrows + g::kJoinWarpsPerBlock - 1) / g::kJoinWarpsPerBlock;
  return static_cast<unsigned>(want < 65536 ? (want > 0 ? want : 1) : 65536);
}

/// Pass 1 (offsets == nullptr): counts[a] = matches of row a. Pass 2: writes them from offsets[a].
__global__ void __launch_bounds__(32 * g::kJoinWarpsPerBlock)
    pairs_kernel(const std::uint64_t* rows, std::int64_t nrows, const std::uint64_t* cols, std::int64_t ncols,
                 std::int32_t words, std::int32_t r, bool self_join, std::int64_t* counts,
                 const std::int64_t* offsets, std::int64_t* first, std::int64_t* second,
                 std::int32_t* dists) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const std::int64_t warp = (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const std::int64_t warps = (static_cast<std::int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (std::int64_t a = warp; a < nrows; a += warps) {  // warp-uniform bounds: every lane reaches the ballots
    const std::uint64_t* row = rows + a * words;
    std::int64_t done = offsets != nullptr ? offsets[a] : 0;
    for (std::int64_t b0 = g::pair_first_column(self_join, a); b0 < ncols; b0 += 32) {
      std::int32_t d = 0;
      const bool m = g::pair_match(row, cols, words, b0 + lane, ncols, r, &d);
      const std::uint32_t mask = __ballot_sync(0xffffffffu, m);
      if (offsets != nullptr && m) g::pair_store(done, mask, lane, a, b0 + lane, d, first, second, dists);
      done += __popc(mask);
    }
    if (offsets == nullptr && lane == 0) counts[a] = done;
  }
}

/// Pass 1 over nrows rows, then offsets = the exclusive scan of counts[0..nrows] (counts[nrows] is
/// 0, so offsets[nrows] is the total, also returned in *total).
Status count_pairs(SearchGpu::Impl& m, const std::uint64_t* rows, std::int64_t nrows,
                   const std::uint64_t* cols, std::int64_t ncols, std::int32_t words, std::int32_t r,
                   bool self_join, std::int64_t* offsets, std::int64_t* total, ErrorText* error) {
  const std::size_t bytes = static_cast<std::size_t>(nrows + 1) * sizeof(std::int64_t);
  std::size_t scan_bytes = 0;
  MMCORE_CUDA_TRY(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, static_cast<std::int64_t*>(nullptr),
                                                static_cast<std::int64_t*>(nullptr), nrows + 1, m.stream));
  Status st = m.join_counts.reserve(bytes, m.stream, error);
  if (st == Status::kOk) st = m.join_scan.reserve(scan_bytes + 16, m.stream, error);
  if (st != Status::kOk) return st;
  auto* counts = static_cast<std::int64_t*>(m.join_counts.ptr);
  MMCORE_CUDA_TRY(cudaMemsetAsync(counts + nrows, 0, sizeof(std::int64_t), m.stream));
  pairs_kernel<<<pairs_blocks(nrows), 32 * g::kJoinWarpsPerBlock, 0, m.stream>>>(
      rows, nrows, cols, ncols, words, r, self_join, counts, nullptr, nullptr, nullptr, nullptr);
  MMCORE_CUDA_TRY(cudaGetLastError());
  MMCORE_CUDA_TRY(
      cub::DeviceScan::ExclusiveSum(m.join_scan.ptr, scan_bytes, counts, offsets, nrows + 1, m.stream));
  MMCORE_CUDA_TRY(
      cudaMemcpyAsync(total, offsets + nrows, sizeof(std::int64_t), cudaMemcpyDeviceToHost, m.stream));
  MMCORE_CUDA_TRY(cudaStreamSynchronize(m.stream));
  return Status::kOk;
}

// ---- the MIH self-join (hamming_mih_internal.h) ------------------------------------------------

__global__ void mih_keys_kernel(const std::uint64_t* codes, std::int64_t n, std::int32_t words, int lo,
                                int len, std::uint32_t* keys, std::uint32_t* idx) {
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    keys[i] = d::substring_of(codes + i * words, lo, len);
    idx[i] = static_cast<std::uint32_t>(i);
  }
}

/// The codes in bucket order: row j of the output is code perm[j] (a thread per row, no division).
__global__ void mih_gather_kernel(const std::uint64_t* codes, const std::uint32_t* perm, std::int64_t n,
                                  std::int32_t words, std::uint64_t* out) {
  for (std::int64_t j = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < n;
       j += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::uint64_t* src = codes + static_cast<std::int64_t>(perm[j]) * words;
    for (std::int32_t w = 0; w < words; ++w) out[j * words + w] = src[w];
  }
}

__global__ void mih_offsets_kernel(const std::uint32_t* sorted_keys, std::int64_t n, std::int64_t slots,
                                   std::uint32_t* offsets) {
  for (std::int64_t j = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j <= n;
       j += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    d::mih_offsets_step(sorted_keys, n, slots, j, offsets);
}

__global__ void mih_chunks_kernel(const std::uint32_t* offsets, std::int64_t slots, std::uint32_t* chunks) {
  for (std::int64_t u = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; u <= slots;
       u += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    chunks[u] = d::mih_chunks(offsets, slots, u);
}

/// The warp's matches appended at *counter (every lane calls it): a hitting lane's slot, in lane
/// order after the earlier matches (one atomic per warp step with a match).
__device__ unsigned long long warp_append(bool hit, unsigned long long* counter) {
  const unsigned full = 0xffffffffu;
  const unsigned mask = __ballot_sync(full, hit);
  if (mask == 0) return 0;
  const int lane = static_cast<int>(threadIdx.x & 31u);
  unsigned long long base = 0;
  if (lane == 0) base = atomicAdd(counter, static_cast<unsigned long long>(__popc(mask)));
  base = __shfl_sync(full, base, 0);
  return base + __popc(mask & ((1u << lane) - 1u));
}

/// The filtered kNN's pass over every row (search_gpu_internal.h, run_knn_filtered step 2): a thread
/// per row, a group of queries and their bounds in shared memory per block (grid y); query j's
/// candidates appended a warp at a time at counts[j] (kept while within cap). Lanes past the rows
/// stay in the loop: the append's ballot takes the whole warp.
__global__ void __launch_bounds__(g::kBinaryThreads)
    knn_filter_kernel(const std::uint64_t* codes, std::int64_t rows, std::int32_t words,
                      const std::uint64_t* queries, std::int32_t nq, std::int32_t qgroup,
                      const std::int32_t* dist_out, std::int32_t k, std::uint64_t* cand, std::int64_t cap,
                      unsigned long long* counts) {
  extern __shared__ std::uint64_t sq[];  // qgroup x words, then qgroup int32 bounds
  std::int32_t* bounds = reinterpret_cast<std::int32_t*>(sq + static_cast<std::int64_t>(qgroup) * words);
  const int tid = static_cast<int>(threadIdx.x);
  const std::int32_t q0 = static_cast<std::int32_t>(blockIdx.y) * qgroup;
  const std::int32_t nqb = nq - q0 < qgroup ? nq - q0 : qgroup;
  for (std::int32_t i = tid; i < nqb * words; i += g::kBinaryThreads)
    sq[i] = queries[static_cast<std::int64_t>(q0) * words + i];
  for (std::int32_t i = tid; i < nqb; i += g::kBinaryThreads) bounds[i] = g::knn_bound(dist_out, q0 + i, k);
  __syncthreads();
  const std::int64_t row = static_cast<std::int64_t>(blockIdx.x) * g::kBinaryThreads + tid;
  const bool valid = row < rows;
  const std::uint64_t* r = codes + (valid ? row : 0) * words;
  const auto offer = [&](std::int32_t j, bool hit, std::int32_t dist) {
    const unsigned long long slot = warp_append(hit, &counts[q0 + j]);
    if (hit && slot < static_cast<unsigned long long>(cap))
      cand[static_cast<std::int64_t>(q0 + j) * cap + static_cast<std::int64_t>(slot)] =
          g::make_key(-dist, static_cast<std::uint32_t>(row));
  };
  if (words == 4) {  // PDQ: the row in registers
    std::uint64_t rr[4] = {0, 0, 0, 0};
    if (valid) {
      rr[0] = r[0];
      rr[1] = r[1];
      rr[2] = r[2];
      rr[3] = r[3];
    }
    for (std::int32_t j = 0; j < nqb; ++j) {
      std::int32_t dist = 0;
      const bool hit = g::knn_candidate(rr, sq + 4 * j, 4, bounds[j], &dist) && valid;
      offer(j, hit, dist);
    }
  } else {
    for (std::int32_t j = 0; j < nqb; ++j) {
      std::int32_t dist = 0;
      const bool hit =
          valid && g::knn_candidate(r, sq + static_cast<std::int64_t>(j) * words, words, bounds[j], &dist);
      offer(j, hit, dist);
    }
  }
}

/// What a tensor-core Hamming scan keeps (knn_mma_scan_kernel). kNN's filter pass: per query the
/// rows within its bound (the outputs' k-th column), in its buffer of `cap` keys at counts[q]. The
/// self-join's brute force: rows a (the "queries", codes a0 + ...) against every row b > a within r,
/// appended as pair keys (a << 32 | b) and distances at *found (kept while within capacity). Radius
/// search's brute force: every base row within r of each query (a0 + ... for the key), appended as
/// mih_radius_key keys at *found.
/// The modes of knn_mma_scan_kernel.
constexpr int kScanKnn = 0;     ///< kNN's filter pass
constexpr int kScanJoin = 1;    ///< the self-join's brute force
constexpr int kScanRadius = 2;  ///< radius search's brute force: keys query << 41 | d << 32 | row

struct TcScan {
  const std::uint64_t* codes;
  std::int64_t n;
  const std::uint64_t* queries;  ///< nq codes (join: codes + a0 * words)
  std::int32_t nq;
  const std::int32_t* dist_out;  ///< kNN
  std::int32_t k;
  std::uint64_t* cand;
  std::int64_t cap;
  unsigned long long* counts;
  std::int64_t a0;  ///< join: the first query's row; radius: the first query's index
  std::int32_t r;
  std::uint64_t* keys;
  std::int32_t* dists;
  unsigned long long capacity;
  unsigned long long* found;
};

/// A Hamming scan on the int8 tensor cores (search_gpu_internal.h, knn_mma_*): the same distances
/// as the POPC kernels. Grid: x strides over tiles of kKnnMmaRows rows (the join starts at the tile
/// of its block's first row: rows before it are never b > a), y over groups of kKnnMmaQueries
/// queries. Each warp's 32 queries stay in registers as A fragments (with their popcounts and
/// bounds); per tile the block stages the rows (loaded during the previous tile), then each warp
/// scores its queries against the tile 8 rows at a time and appends what is kept (rare: one atomic
/// per result).
template <int WORDS, int MODE>
__global__ void __launch_bounds__(32 * g::kKnnMmaWarps, 2)
    knn_mma_scan_kernel(const __grid_constant__ TcScan s) {
  constexpr bool JOIN = MODE == kScanJoin;
  constexpr int kStride = 2 * WORDS + 1;
  __shared__ std::uint32_t tile[g::kKnnMmaRows * kStride];
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31, warp = tid >> 5;
  const std::int64_t q0 = static_cast<std::int64_t>(blockIdx.y) * g::kKnnMmaQueries;
  const std::int64_t wq0 = q0 + 32 * warp;
  const auto* qw = reinterpret_cast<const std::uint32_t*>(s.queries);
  std::uint32_t a[2][2 * WORDS][4];
  std::int32_t pq[2][2], bound[2][2];
#pragma unroll
  for (int m = 0; m < 2; ++m) {
#pragma unroll
    for (int kk = 0; kk < 2 * WORDS; ++kk) g::knn_mma_a(qw, WORDS, wq0, s.nq, m, kk, lane, a[m][kk]);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const std::int64_t q = wq0 + 16 * m + (lane >> 2) + 8 * h;
      pq[m][h] = q < s.nq ? g::knn_popcount(s.queries + q * WORDS, WORDS) : 0;
      bound[m][h] = q < s.nq ? (MODE == kScanKnn ? g::knn_bound(s.dist_out, q, s.k) : s.r) : -1;  // -1: none
    }
  }
  const std::int64_t tiles = (s.n + g::kKnnMmaRows - 1) / g::kKnnMmaRows;
  const std::int64_t first = (JOIN ? g::tc_join_first_tile(s.a0 + q0) : 0) + blockIdx.x;
  std::uint64_t next[4];  // the staging threads' row of the next tile, loaded while this one is scored
  if (tid < g::kKnnMmaRows) g::knn_mma_load(s.codes, s.n, WORDS, first * g::kKnnMmaRows, tid, next);
  for (std::int64_t ti = first; ti < tiles; ti += gridDim.x) {
    const std::int64_t row0 = ti * g::kKnnMmaRows;
    __syncthreads();  // every warp is done with the previous tile
    if (tid < g::kKnnMmaRows) g::knn_mma_store(next, WORDS, tid, tile);
    __syncthreads();
    if (tid < g::kKnnMmaRows)
      g::knn_mma_load(s.codes, s.n, WORDS, (ti + gridDim.x) * g::kKnnMmaRows, tid, next);
    if (wq0 >= s.nq) continue;  // the same for the whole warp; no barrier below
#pragma unroll 1
    for (int nt = 0; nt < g::kKnnMmaRows / 8; ++nt) {
      std::int32_t acc[2][4] = {};
#pragma unroll
      for (int kk = 0; kk < 2 * WORDS; ++kk) {
        std::uint32_t b[2];
        g::knn_mma_b(tile, WORDS, nt, kk, lane, b);
        g::mma_s8u8(acc[0], a[0][kk], b);
        g::mma_s8u8(acc[1], a[1][kk], b);
      }
#pragma unroll
      for (int m = 0; m < 2; ++m) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int rr = g::knn_mma_row(nt, j, lane);
          const std::int64_t row = row0 + rr;
          const std::int32_t d = g::knn_mma_distance(
              pq[m][j >> 1], static_cast<std::int32_t>(tile[rr * kStride + 2 * WORDS]), acc[m][j]);
          if (row >= s.n || d > bound[m][j >> 1]) continue;
          const std::int64_t q = q0 + g::knn_mma_query(warp, m, j, lane);
          if (MODE == kScanJoin) {
            if (!g::tc_join_keeps(s.a0 + q, row, d, s.r)) continue;  // each pair once, b > a
            const unsigned long long slot = atomicAdd(s.found, 1ull);
            if (slot < s.capacity) {
              s.keys[slot] =
                  d::mih_pair_key(static_cast<std::uint32_t>(s.a0 + q), static_cast<std::uint32_t>(row));
              s.dists[slot] = d;
            }
          } else if (MODE == kScanRadius) {  // within r (the bound): one key per result
            const unsigned long long slot = atomicAdd(s.found, 1ull);
            if (slot < s.capacity)
              s.keys[slot] = d::mih_radius_key(s.a0 + q, d, static_cast<std::uint32_t>(row));
          } else {
            const unsigned long long slot = atomicAdd(&s.counts[q], 1ull);
            if (slot < static_cast<unsigned long long>(s.cap))
              s.cand[q * s.cap + static_cast<std::int64_t>(slot)] =
                  g::make_key(-d, static_cast<std::uint32_t>(row));
          }
        }
      }
    }
  }
}

/// Launches knn_mma_scan_kernel<words, MODE> (words 1 to 4).
template <int MODE>
cudaError_t launch_mma_scan(const TcScan& s, std::int32_t words, dim3 grid, cudaStream_t stream) {
  const unsigned threads = 32 * g::kKnnMmaWarps;
  switch (words) {
    case 1: knn_mma_scan_kernel<1, MODE><<<grid, threads, 0, stream>>>(s); break;
    case 2: knn_mma_scan_kernel<2, MODE><<<grid, threads, 0, stream>>>(s); break;
    case 3: knn_mma_scan_kernel<3, MODE><<<grid, threads, 0, stream>>>(s); break;
    default: knn_mma_scan_kernel<4, MODE><<<grid, threads, 0, stream>>>(s); break;
  }
  return cudaGetLastError();
}

/// Counters of one join: [0] pairs found, [1] the next work item of the current table./// Counters of one
/// join: [0] pairs found, [1] the next work item of the current table.
struct MihCounters {
  unsigned long long pairs;
  unsigned long long next_item;
};

/// A warp per work item, items taken in turn from counters->next_item (their work is uneven: a
/// crowded bucket's chunks meet as many columns as the bucket holds). item_start[slots] is the
/// item count.
__global__ void __launch_bounds__(32 * d::kMihWarpsPerBlock)
    mih_pairs_kernel(const d::MihPlan plan, int c, const std::uint64_t* codes, const std::uint32_t* perm,
                     const std::uint32_t* offsets, const std::uint32_t* item_start, std::int64_t slots,
                     const std::uint32_t* masks, int nmasks, std::int32_t words, std::int32_t r,
                     std::uint64_t* keys, std::int32_t* dists, unsigned long long capacity,
                     MihCounters* counters) {
  const unsigned full = 0xffffffffu;
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const std::uint32_t items = item_start[slots];
  for (;;) {
    unsigned long long next = 0;
    if (lane == 0) next = atomicAdd(&counters->next_item, 1ULL);
    next = __shfl_sync(full, next, 0);
    if (next >= items) return;  // warp-uniform
    const auto i = static_cast<std::uint32_t>(next);
    const std::int64_t u = d::mih_item_bucket(item_start, slots, i);
    for (int mi = 0; mi < nmasks; ++mi) {
      d::MihSpan sp;
      if (!d::mih_span(offsets, item_start, u, i, masks[mi], &sp)) continue;
      const std::int64_t total = sp.pairs();
      for (std::int64_t p0 = 0; p0 < total; p0 += 32) {
        const std::int64_t p = p0 + lane;
        std::int64_t ia = 0, ib = 0;
        std::int32_t dist = 0;
        const bool hit = p < total && d::mih_span_pair(sp, p, &ia, &ib) &&
                         d::mih_pair_match(plan, c, codes + ia * words, codes + ib * words, words, r, &dist);
        const unsigned long long slot = warp_append(hit, &counters->pairs);
        if (hit && slot < capacity) {
          keys[slot] = d::mih_pair_key(perm[ia], perm[ib]);
          dists[slot] = dist;
        }
      }
    }
  }
}

__global__ void mih_split_kernel(const std::uint64_t* keys, const std::int32_t* dists, std::int64_t count,
                                 std::int64_t* first, std::int64_t* second, std::int32_t* dist) {
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    first[i] = static_cast<std::int64_t>(keys[i] >> 32);
    second[i] = static_cast<std::int64_t>(keys[i] & 0xffffffffu);
    dist[i] = dists[i];
  }
}

/// A warp per query (queries dealt round-robin to the grid's warps): its substring's key, then
/// for each mask of the ball the bucket key ^ mask, the lanes over its codes 32 at a time.
__global__ void __launch_bounds__(32 * g::kJoinWarpsPerBlock)
    mih_radius_kernel(const d::MihPlan plan, int c, const std::uint64_t* codes, const std::uint32_t* perm,
                      const std::uint32_t* offsets, const std::uint32_t* masks, int nmasks,
                      const std::uint64_t* queries, std::int64_t nq, std::int32_t words, std::int32_t r,
                      std::uint64_t* keys, unsigned long long capacity, MihCounters* counters) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const std::int64_t warp = (static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const std::int64_t warps = (static_cast<std::int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (std::int64_t q = warp; q < nq; q += warps) {  // warp-uniform
    const std::uint64_t* query = queries + q * words;
    const std::uint32_t key = d::substring_of(query, plan.lo[c], plan.len[c]);
    for (int mi = 0; mi < nmasks; ++mi) {
      const std::uint32_t v = key ^ masks[mi];
      const std::int64_t b0 = offsets[v], nb = static_cast<std::int64_t>(offsets[v + 1]) - b0;
      for (std::int64_t j0 = 0; j0 < nb; j0 += 32) {
        const std::int64_t j = b0 + j0 + lane;
        std::int32_t dist = 0;
        const bool hit =
            j0 + lane < nb && d::mih_pair_match(plan, c, query, codes + j * words, words, r, &dist);
        const unsigned long long slot = warp_append(hit, &counters->pairs);
        if (hit && slot < capacity) keys[slot] = d::mih_radius_key(q, dist, perm[j]);
      }
    }
  }
}

__global__ void mih_lims_kernel(const std::uint64_t* keys, std::int64_t count, std::int64_t nq,
                                std::int64_t* lims) {
  for (std::int64_t j = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j <= count;
       j += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    d::mih_lims_step(keys, count, nq, j, lims);
}

__global__ void mih_radius_split_kernel(const std::uint64_t* keys, std::int64_t count, std::int64_t* ids,
                                        std::int32_t* dist) {
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    ids[i] = static_cast<std::int64_t>(keys[i] & 0xffffffffu);
    dist[i] = d::mih_radius_key_dist(keys[i]);
  }
}

unsigned grid_for(std::int64_t work, int threads, std::int32_t multiprocessors) {
  const std::int64_t want = (work + threads - 1) / threads;
  const std::int64_t most = static_cast<std::int64_t>(multiprocessors > 0 ? multiprocessors : 1) * 16;
  return static_cast<unsigned>(want < 1 ? 1 : (want < most ? want : most));
}

/// Bytes rounded up to 256 (carved sections stay aligned).
std::size_t round256(std::size_t b) {
  return (b + 255) & ~std::size_t{255};
}

/// A plan's ball masks per searched substring, and the largest substring and ball.
struct MihMasks {
  std::vector<std::vector<std::uint32_t>> masks;
  int max_len = 0;
  std::size_t max_masks = 1;
  explicit MihMasks(const d::MihPlan& plan) : masks(static_cast<std::size_t>(plan.m)) {
    for (int c = 0; c < plan.m; ++c) {
      if (plan.radius[c] < 0) continue;
      max_len = plan.len[c] > max_len ? plan.len[c] : max_len;
      masks[static_cast<std::size_t>(c)] = d::ball_masks(plan.len[c], plan.radius[c]);
      max_masks = std::max(max_masks, masks[static_cast<std::size_t>(c)].size());
    }
  }
};

/// The device sections of one MIH table (carved from m.mih_table) and cub's scratch sizes.
struct MihTable {
  std::uint32_t *keys_in, *keys_out, *idx_in, *perm;
  std::uint64_t* sorted;  ///< the codes in bucket order
  std::uint32_t *offsets, *chunks, *item_start, *masks;
  MihCounters* counters;
  std::size_t scratch_bytes = 0;  ///< cub's scratch (in m.join_scan) for the key sort and item scan
};

Status mih_table_reserve(SearchGpu::Impl& m, std::int64_t n, std::int32_t words, const MihMasks& mm,
                         MihTable* t, ErrorText* error) {
  const std::int64_t max_slots = std::int64_t{1} << mm.max_len;
  const std::size_t u32n = round256(static_cast<std::size_t>(n) * 4);
  const std::size_t code_bytes = round256(static_cast<std::size_t>(n) * words * 8);
  const std::size_t slot_bytes = round256(static_cast<std::size_t>(max_slots + 1) * 4);
  const std::size_t mask_bytes = round256(mm.max_masks * 4);
  Status st = m.mih_table.reserve(4 * u32n + code_bytes + 3 * slot_bytes + mask_bytes + 256, m.stream, error);
  if (st != Status::kOk) return st;
  auto* at = static_cast<unsigned char*>(m.mih_table.ptr);
  const auto carve = [&at](std::size_t bytes) {
    void* p = at;
    at += bytes;
    return p;
  };
  t->keys_in = static_cast<std::uint32_t*>(carve(u32n));
  t->keys_out = static_cast<std::uint32_t*>(carve(u32n));
  t->idx_in = static_cast<std::uint32_t*>(carve(u32n));
  t->perm = static_cast<std::uint32_t*>(carve(u32n));
  t->sorted = static_cast<std::uint64_t*>(carve(code_bytes));
  t->offsets = static_cast<std::uint32_t*>(carve(slot_bytes));
  t->chunks = static_cast<std::uint32_t*>(carve(slot_bytes));
  t->item_start = static_cast<std::uint32_t*>(carve(slot_bytes));
  t->masks = static_cast<std::uint32_t*>(carve(mask_bytes));
  t->counters = static_cast<MihCounters*>(carve(256));
  // cub's scratch for the largest table's key sort and item scan, reserved once for all tables.
  std::size_t sort_bytes = 0, scan_bytes = 0;
  MMCORE_CUDA_TRY(cub::DeviceRadixSort::SortPairs(nullptr, sort_bytes, t->keys_in, t->keys_out, t->idx_in,
                                                  t->perm, static_cast<int>(n), 0, mm.max_len, m.stream));
  MMCORE_CUDA_TRY(cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, t->chunks, t->item_start,
                                                static_cast<int>(max_slots + 1), m.stream));
  t->scratch_bytes = std::max(sort_bytes, scan_bytes);
  return m.join_scan.reserve(t->scratch_bytes + 16, m.stream, error);
}

/// Substring c's table of the n codes: sorted keys and positions, the codes gathered, the offsets,
/// the masks uploaded; with `items`, the work items too (the join's).
Status mih_table_build(SearchGpu::Impl& m, const MihTable& t, const std::uint64_t* codes, std::int64_t n,
                       std::int32_t words, const d::MihPlan& plan, int c,
                       const std::vector<std::uint32_t>& mk, bool items, ErrorText* error) {
  const int len = plan.len[c];
  const std::int64_t slots = std::int64_t{1} << len;
  MMCORE_CUDA_TRY(cudaMemcpyAsync(t.masks, mk.data(), mk.size() * 4, cudaMemcpyHostToDevice, m.stream));
  mih_keys_kernel<<<grid_for(n, 256, m.multiprocessors), 256, 0, m.stream>>>(codes, n, words, plan.lo[c], len,
                                                                             t.keys_in, t.idx_in);
  MMCORE_CUDA_TRY(cudaGetLastError());
  std::size_t tb = t.scratch_bytes;
  MMCORE_CUDA_TRY(cub::DeviceRadixSort::SortPairs(m.join_scan.ptr, tb, t.keys_in, t.keys_out, t.idx_in,
                                                  t.perm, static_cast<int>(n), 0, len, m.stream));
  mih_gather_kernel<<<grid_for(n, 256, m.multiprocessors), 256, 0, m.stream>>>(codes, t.perm, n, words,
                                                                               t.sorted);
  MMCORE_CUDA_TRY(cudaGetLastError());
  mih_offsets_kernel<<<grid_for(n + 1, 256, m.multiprocessors), 256, 0, m.stream>>>(t.keys_out, n, slots,
                                                                                    t.offsets);
  MMCORE_CUDA_TRY(cudaGetLastError());
  if (!items) return Status::kOk;
  mih_chunks_kernel<<<grid_for(slots + 1, 256, m.multiprocessors), 256, 0, m.stream>>>(t.offsets, slots,
                                                                                       t.chunks);
  MMCORE_CUDA_TRY(cudaGetLastError());
  tb = t.scratch_bytes;
  MMCORE_CUDA_TRY(cub::DeviceScan::ExclusiveSum(m.join_scan.ptr, tb, t.chunks, t.item_start,
                                                static_cast<int>(slots + 1), m.stream));
  return Status::kOk;
}

/// Result keys (and, for the join, distances) in m.mih_pairs: room for `capacity`, twice over
/// (the sort's second buffers). *capacity grows to what the buffer already holds.
Status mih_results_reserve(SearchGpu::Impl& m, bool with_dists, unsigned long long* capacity,
                           ErrorText* error) {
  const std::size_t per = with_dists ? 2 * (8 + 4) : 2 * 8;
  const std::size_t room = m.mih_pairs.cap > 1024 ? (m.mih_pairs.cap - 1024) / per : 0;  // 4 x round256
  if (room > *capacity) *capacity = room;
  const std::size_t need = round256(*capacity * 8) * 2 + (with_dists ? round256(*capacity * 4) * 2 : 0);
  return m.mih_pairs.reserve(need, m.stream, error);
}

/// After the second pass the buffer held them all (kDevice if not: the count changed), and cub's
/// sort counts items in int.
Status mih_found_problem(const char* fn, unsigned long long found, unsigned long long capacity,
                         ErrorText* error) {
  if (found > capacity) {
    error->set("SearchGpu::%s: the search found %llu results, then more", fn, found);
    return Status::kDevice;
  }
  if (found > 0x7FFFFFFFULL) {
    error->set("SearchGpu::%s: %llu results, more than 2^31 - 1 (a smaller r, or method brute)", fn, found);
    return Status::kUnsupported;
  }
  return Status::kOk;
}

/// The passes of an MIH search: per searched substring the table (join: with its work items),
/// then launch(table, c, masks) starts the search kernel, which appends to m.mih_pairs (room for
/// *capacity results; join: keys and distances, radius: keys); when more than that are found the
/// buffer grows to the count and every pass runs again. *found: the results.
template <class Launch>
Status mih_passes(SearchGpu::Impl& m, const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                  const d::MihPlan& plan, bool join, unsigned long long* capacity, unsigned long long* found,
                  ErrorText* error, Launch launch) {
  const MihMasks mm(plan);
  MihTable t;
  Status st = mih_table_reserve(m, n, words, mm, &t, error);
  if (st != Status::kOk) return st;
  for (int attempt = 0; attempt < 2; ++attempt) {
    st = mih_results_reserve(m, join, capacity, error);
    if (st != Status::kOk) return st;
    MMCORE_CUDA_TRY(cudaMemsetAsync(t.counters, 0, sizeof(MihCounters), m.stream));
    for (int c = 0; c < plan.m; ++c) {
      if (plan.radius[c] < 0) continue;
      const auto& mk = mm.masks[static_cast<std::size_t>(c)];
      st = mih_table_build(m, t, codes, n, words, plan, c, mk, join, error);
      if (st != Status::kOk) return st;
      if (join)
        MMCORE_CUDA_TRY(cudaMemsetAsync(&t.counters->next_item, 0, sizeof(unsigned long long), m.stream));
      launch(t, c, static_cast<int>(mk.size()));
      MMCORE_CUDA_TRY(cudaGetLastError());
    }
    MMCORE_CUDA_TRY(
        cudaMemcpyAsync(found, &t.counters->pairs, sizeof(*found), cudaMemcpyDeviceToHost, m.stream));
    MMCORE_CUDA_TRY(cudaStreamSynchronize(m.stream));
    if (*found <= *capacity) break;
    *capacity = *found;  // the same results again, now with room for all of them
  }
  return mih_found_problem(join ? "hamming_join" : "hamming_radius", *found, *capacity, error);
}

/// A join's pairs, appended to m.mih_pairs as keys (a << 32 | b) and distances (room for
/// `capacity`, `found` of them), sorted by (a, b) into the buffer's second halves: *keys, *dists,
/// *count.
Status sort_join_pairs(SearchGpu::Impl& m, std::int64_t n, unsigned long long capacity,
                       unsigned long long found, const std::uint64_t** keys, const std::int32_t** dists,
                       std::int64_t* count, ErrorText* error) {
  auto* pk = static_cast<std::uint64_t*>(m.mih_pairs.ptr);
  auto* pk_out =
      reinterpret_cast<std::uint64_t*>(reinterpret_cast<unsigned char*>(pk) + round256(capacity * 8));
  auto* pd =
      reinterpret_cast<std::int32_t*>(reinterpret_cast<unsigned char*>(pk) + round256(capacity * 8) * 2);
  auto* pd_out =
      reinterpret_cast<std::int32_t*>(reinterpret_cast<unsigned char*>(pd) + round256(capacity * 4));
  int pos_bits = 1;
  while ((std::int64_t{1} << pos_bits) < n) ++pos_bits;
  const int nf = static_cast<int>(found);
  if (found > 0) {
    std::size_t pair_sort_bytes = 0;
    MMCORE_CUDA_TRY(cub::DeviceRadixSort::SortPairs(nullptr, pair_sort_bytes, pk, pk_out, pd, pd_out, nf, 0,
                                                    32 + pos_bits, m.stream));
    const Status st = m.join_scan.reserve(pair_sort_bytes + 16, m.stream, error);
    if (st != Status::kOk) return st;
    MMCORE_CUDA_TRY(cub::DeviceRadixSort::SortPairs(m.join_scan.ptr, pair_sort_bytes, pk, pk_out, pd, pd_out,
                                                    nf, 0, 32 + pos_bits, m.stream));
  }
  *keys = pk_out;
  *dists = pd_out;
  *count = static_cast<std::int64_t>(found);
  return Status::kOk;
}

/// The appending tensor-core scans (the join's and radius search's brute force): queries (join:
/// the codes) [0, nq) against the n codes in launches of at most 65535 query groups, the results
/// appended at one counter to m.mih_pairs (room for *capacity; with distances for the join); when
/// more are found the buffer grows to the count and every launch runs again. *found: the results.
template <int MODE>
Status tc_append_passes(SearchGpu::Impl& m, const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                        const std::uint64_t* queries, std::int64_t nq, std::int32_t r,
                        unsigned long long* capacity, unsigned long long* found, ErrorText* error) {
  constexpr bool kJoin = MODE == kScanJoin;
  Status st = m.knn_counts.reserve(sizeof(unsigned long long), m.stream, error);
  if (st != Status::kOk) return st;
  auto* counter = static_cast<unsigned long long*>(m.knn_counts.ptr);
  const std::int64_t tiles = (n + g::kKnnMmaRows - 1) / g::kKnnMmaRows;
  const std::int64_t want = 8LL * (m.multiprocessors > 0 ? m.multiprocessors : 1);
  const std::int64_t per_launch = static_cast<std::int64_t>(g::kKnnMmaQueries) * 65535;  // grid y
  for (int attempt = 0; attempt < 2; ++attempt) {
    st = mih_results_reserve(m, kJoin, capacity, error);
    if (st != Status::kOk) return st;
    MMCORE_CUDA_TRY(cudaMemsetAsync(counter, 0, sizeof(unsigned long long), m.stream));
    auto* pk = static_cast<std::uint64_t*>(m.mih_pairs.ptr);
    for (std::int64_t q0 = 0; q0 < nq; q0 += per_launch) {
      const std::int64_t nqc = nq - q0 < per_launch ? nq - q0 : per_launch;
      TcScan sc{};
      sc.codes = codes;
      sc.n = n;
      sc.queries = queries + q0 * words;
      sc.nq = static_cast<std::int32_t>(nqc);
      sc.a0 = q0;
      sc.r = r;
      sc.keys = pk;
      sc.dists = kJoin ? reinterpret_cast<std::int32_t*>(reinterpret_cast<unsigned char*>(pk) +
                                                         round256(*capacity * 8) * 2)
                       : nullptr;
      sc.capacity = *capacity;
      sc.found = counter;
      const dim3 grid(static_cast<unsigned>(tiles < want ? tiles : want),
                      static_cast<unsigned>((nqc + g::kKnnMmaQueries - 1) / g::kKnnMmaQueries));
      MMCORE_CUDA_TRY(launch_mma_scan<MODE>(sc, words, grid, m.stream));
    }
    MMCORE_CUDA_TRY(cudaMemcpyAsync(found, counter, sizeof(*found), cudaMemcpyDeviceToHost, m.stream));
    MMCORE_CUDA_TRY(cudaStreamSynchronize(m.stream));
    if (*found <= *capacity) break;
    *capacity = *found;  // the same results again, now with room for all of them
  }
  return mih_found_problem(kJoin ? "hamming_join" : "hamming_radius", *found, *capacity, error);
}

/// The brute-force self-join on the tensor cores (knn_mma_scan_kernel<words, kScanJoin>): every row a
/// against every row b > a, the pairs within r appended (room for max(n, 65536) at first), then
/// sorted by (a, b) as the MIH join's.
Status join_tc(SearchGpu::Impl& m, const std::uint64_t* codes, std::int64_t n, std::int32_t words,
               std::int32_t r, const std::uint64_t** keys, const std::int32_t** dists, std::int64_t* count,
               ErrorText* error) {
  unsigned long long capacity = static_cast<unsigned long long>(std::max<std::int64_t>(n, 65536));
  unsigned long long found = 0;
  const Status st = tc_append_passes<kScanJoin>(m, codes, n, words, codes, n, r, &capacity, &found, error);
  if (st != Status::kOk) return st;
  return sort_join_pairs(m, n, capacity, found, keys, dists, count, error);
}

/// The MIH self-join of the n codes by `plan`: every pair within r, sorted by (a, b), left in
/// m.mih_pairs as keys (*keys) and distances (*dists); *count pairs.
Status join_mih(SearchGpu::Impl& m, const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                std::int32_t r, const d::MihPlan& plan, const std::uint64_t** keys,
                const std::int32_t** dists, std::int64_t* count, ErrorText* error) {
  // Pairs: room for max(n, 65536) at first, grown to the count when more are found.
  unsigned long long capacity = static_cast<unsigned long long>(std::max<std::int64_t>(n, 65536));
  unsigned long long found = 0;
  Status st = mih_passes(
      m, codes, n, words, plan, true, &capacity, &found, error, [&](const MihTable& t, int c, int nmasks) {
        auto* pk = static_cast<std::uint64_t*>(m.mih_pairs.ptr);
        auto* pd = reinterpret_cast<std::int32_t*>(reinterpret_cast<unsigned char*>(pk) +
                                                   round256(capacity * 8) * 2);
        // Enough warps to fill the device; each takes items until none is left.
        const unsigned blocks = static_cast<unsigned>(std::max(1, m.multiprocessors) * 8);
        mih_pairs_kernel<<<blocks, 32 * d::kMihWarpsPerBlock, 0, m.stream>>>(
            plan, c, t.sorted, t.perm, t.offsets, t.item_start, std::int64_t{1} << plan.len[c], t.masks,
            nmasks, words, r, pk, pd, capacity, t.counters);
      });
  if (st != Status::kOk) return st;
  return sort_join_pairs(m, n, capacity, found, keys, dists, count, error);
}

/// A radius search's results, appended to m.mih_pairs as mih_radius_key keys (room for `capacity`,
/// `found` of them): sorted (each query's by distance, then row), lims from where each query's keys
/// start, and, when capacity_out holds them, ids and distances.
Status finish_radius(SearchGpu::Impl& m, std::int64_t nq, unsigned long long capacity,
                     unsigned long long found, std::int64_t* lims, std::int64_t* ids, std::int32_t* dist,
                     std::int64_t capacity_out, std::int64_t* count, ErrorText* error) {
  Status st = Status::kOk;
  auto* rk = static_cast<std::uint64_t*>(m.mih_pairs.ptr);
  auto* rk_out =
      reinterpret_cast<std::uint64_t*>(reinterpret_cast<unsigned char*>(rk) + round256(capacity * 8));
  const int nf = static_cast<int>(found);
  if (found > 0) {
    std::size_t sort_bytes = 0;
    const int end_bit = d::kMihRadiusQueryShift + d::bits_for(nq);
    MMCORE_CUDA_TRY(
        cub::DeviceRadixSort::SortKeys(nullptr, sort_bytes, rk, rk_out, nf, 0, end_bit, m.stream));
    st = m.join_scan.reserve(sort_bytes + 16, m.stream, error);
    if (st != Status::kOk) return st;
    MMCORE_CUDA_TRY(
        cub::DeviceRadixSort::SortKeys(m.join_scan.ptr, sort_bytes, rk, rk_out, nf, 0, end_bit, m.stream));
  }
  mih_lims_kernel<<<grid_for(static_cast<std::int64_t>(found) + 1, 256, m.multiprocessors), 256, 0,
                    m.stream>>>(rk_out, static_cast<std::int64_t>(found), nq, lims);
  MMCORE_CUDA_TRY(cudaGetLastError());
  *count = static_cast<std::int64_t>(found);
  if (found > 0 && capacity_out >= *count) {
    mih_radius_split_kernel<<<grid_for(*count, 256, m.multiprocessors), 256, 0, m.stream>>>(rk_out, *count,
                                                                                            ids, dist);
    MMCORE_CUDA_TRY(cudaGetLastError());
  }
  MMCORE_CUDA_TRY(cudaStreamSynchronize(m.stream));
  return Status::kOk;
}

/// Radius search's brute force on the tensor cores (knn_mma_scan_kernel<words, kScanRadius>): every
/// query against every base row, the results within r appended as keys (room for max(32 nq, 65536)
/// at first), then finished as radius_mih's.
Status radius_tc(SearchGpu::Impl& m, const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                 const std::uint64_t* queries, std::int64_t nq, std::int32_t r, std::int64_t* lims,
                 std::int64_t* ids, std::int32_t* dist, std::int64_t capacity_out, std::int64_t* count,
                 ErrorText* error) {
  unsigned long long capacity = static_cast<unsigned long long>(std::max<std::int64_t>(32 * nq, 65536));
  unsigned long long found = 0;
  const Status st =
      tc_append_passes<kScanRadius>(m, codes, n, words, queries, nq, r, &capacity, &found, error);
  if (st != Status::kOk) return st;
  return finish_radius(m, nq, capacity, found, lims, ids, dist, capacity_out, count, error);
}

/// MIH radius search: per searched substring the base's table, then a warp per query probes the
/// buckets of its ball; a match is appended as the key query << 41 | distance << 32 | position
/// (hamming_mih_internal.h's mih_radius_key); the keys sorted give each query's results by
/// (distance, position), and lims from where each query's keys start.
Status radius_mih(SearchGpu::Impl& m, const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                  const std::uint64_t* queries, std::int64_t nq, std::int32_t r, const d::MihPlan& plan,
                  std::int64_t* lims, std::int64_t* ids, std::int32_t* dist, std::int64_t capacity_out,
                  std::int64_t* count, ErrorText* error) {
  unsigned long long capacity = static_cast<unsigned long long>(std::max<std::int64_t>(32 * nq, 65536));
  unsigned long long found = 0;
  Status st = mih_passes(m, codes, n, words, plan, false, &capacity, &found, error,
                         [&](const MihTable& t, int c, int nmasks) {
                           mih_radius_kernel<<<pairs_blocks(nq), 32 * g::kJoinWarpsPerBlock, 0, m.stream>>>(
                               plan, c, t.sorted, t.perm, t.offsets, t.masks, nmasks, queries, nq, words, r,
                               static_cast<std::uint64_t*>(m.mih_pairs.ptr), capacity, t.counters);
                         });
  if (st != Status::kOk) return st;
  return finish_radius(m, nq, capacity, found, lims, ids, dist, capacity_out, count, error);
}
}  // namespace

Status SearchGpu::hamming_join(const std::uint64_t* codes, std::int64_t n, std::int32_t words, std::int32_t r,
                               std::int64_t* first, std::int64_t* second, std::int32_t* dist,
                               std::int64_t capacity, std::int64_t* count, ErrorText* error,
                               HammingMethod method) {
  Impl& m = *impl_;
  const Status s = m.check_ready("hamming_join", error);
  if (s != Status::kOk) return s;
  const char* problem = g::pairs_args_problem(true, codes, n, words, nullptr, 0, r, nullptr, first, second,
                                              dist, capacity, count);
  if (problem == nullptr) problem = g::join_method_problem(words, static_cast<int>(method));
  if (problem != nullptr) {
    error->set("SearchGpu::hamming_join: %s (n %lld, words %d, r %d)", problem, static_cast<long long>(n),
               words, r);
    return Status::kUnsupported;
  }
  *count = 0;
  if (n < 2) return Status::kOk;
  MMCORE_CUDA_TRY(cudaSetDevice(m.device));
  const std::int32_t rc = r < 64 * words ? r : 64 * words;
  const d::MihPlan plan = d::gpu_join_plan(n, words, rc, static_cast<int>(method));
  // Multi-index hashing, or the brute force on the tensor cores: pairs appended, then sorted.
  if (plan.m > 0 || g::knn_mma_usable(m.tensor_cores, m.knn_mma, words, n)) {
    const std::uint64_t* keys = nullptr;
    const std::int32_t* dists = nullptr;
    Status st = plan.m > 0 ? join_mih(m, codes, n, words, rc, plan, &keys, &dists, count, error)
                           : join_tc(m, codes, n, words, rc, &keys, &dists, count, error);
    if (st != Status::kOk || *count == 0 || capacity < *count) return st;
    mih_split_kernel<<<grid_for(*count, 256, m.multiprocessors), 256, 0, m.stream>>>(keys, dists, *count,
                                                                                     first, second, dist);
    MMCORE_CUDA_TRY(cudaGetLastError());
    MMCORE_CUDA_TRY(cudaStreamSynchronize(m.stream));
    return Status::kOk;
  }
  Status st = m.join_offsets.reserve(static_cast<std::size_t>(n + 1) * sizeof(std::int64_t), m.stream, error);
  if (st != Status::kOk) return st;
  auto* offsets = static_cast<std::int64_t*>(m.join_offsets.ptr);
  st = count_pairs(m, codes, n, codes, n, words, r, true, offsets, count, error);
  if (st != Status::kOk || *count == 0 || capacity < *count) return st;
  pairs_kernel<<<pairs_blocks(n), 32 * g::kJoinWarpsPerBlock, 0, m.stream>>>(
      codes, n, codes, n, words, r, true, nullptr, offsets, first, second, dist);
  MMCORE_CUDA_TRY(cudaGetLastError());
  MMCORE_CUDA_TRY(cudaStreamSynchronize(m.stream));
  return Status::kOk;
}

Status SearchGpu::hamming_radius(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                                 const std::uint64_t* queries, std::int64_t nq, std::int32_t r,
                                 std::int64_t* lims, std::int64_t* ids, std::int32_t* dist,
                                 std::int64_t capacity, std::int64_t* count, ErrorText* error,
                                 HammingMethod method) {
  Impl& m = *impl_;
  const Status s = m.check_ready("hamming_radius", error);
  if (s != Status::kOk) return s;
  const char* problem = g::pairs_args_problem(false, codes, n, words, queries, nq, r, lims, nullptr, ids,
                                              dist, capacity, count);
  if (problem == nullptr) problem = g::join_method_problem(words, static_cast<int>(method));
  if (problem != nullptr) {
    error->set("SearchGpu::hamming_radius: %s (n %lld, words %d, nq %lld, r %d)", problem,
               static_cast<long long>(n), words, static_cast<long long>(nq), r);
    return Status::kUnsupported;
  }
  MMCORE_CUDA_TRY(cudaSetDevice(m.device));
  *count = 0;
  const std::int32_t rc = r < 64 * words ? r : 64 * words;
  const d::MihPlan plan = d::gpu_radius_plan(n, nq, words, rc, static_cast<int>(method));
  if (plan.m > 0)
    return radius_mih(m, codes, n, words, queries, nq, rc, plan, lims, ids, dist, capacity, count, error);
  if (g::tc_radius_usable(m.tensor_cores, m.knn_mma, words, nq, n))  // brute force on the tensor cores
    return radius_tc(m, codes, n, words, queries, nq, rc, lims, ids, dist, capacity, count, error);
  Status st = count_pairs(m, queries, nq, codes, n, words, r, false, lims, count, error);
  if (st != Status::kOk || *count == 0 || capacity < *count) return st;
  // Matches in id order into scratch, then sorted stably by distance into the outputs.
  const std::size_t c = static_cast<std::size_t>(*count);
  st = m.radius_tmp.reserve(c * (sizeof(std::int64_t) + sizeof(std::int32_t)) + 16, m.stream, error);
  if (st != Status::kOk) return st;
  auto* tmp_ids = static_cast<std::int64_t*>(m.radius_tmp.ptr);
  auto* tmp_dist = reinterpret_cast<std::int32_t*>(tmp_ids + c);
  pairs_kernel<<<pairs_blocks(nq), 32 * g::kJoinWarpsPerBlock, 0, m.stream>>>(
      queries, nq, codes, n, words, r, false, nullptr, lims, nullptr, tmp_ids, tmp_dist);
  MMCORE_CUDA_TRY(cudaGetLastError());
  std::size_t sort_bytes = 0;
  MMCORE_CUDA_TRY(cub::DeviceSegmentedSort::StableSortPairs(nullptr, sort_bytes, tmp_dist, dist, tmp_ids, ids,
                                                            *count, nq, lims, lims + 1, m.stream));
  st = m.join_scan.reserve(sort_bytes + 16, m.stream, error);
  if (st != Status::kOk) return st;
  MMCORE_CUDA_TRY(cub::DeviceSegmentedSort::StableSortPairs(
      m.join_scan.ptr, sort_bytes, tmp_dist, dist, tmp_ids, ids, *count, nq, lims, lims + 1, m.stream));
  MMCORE_CUDA_TRY(cudaStreamSynchronize(m.stream));
  return Status::kOk;
}

Status SearchGpu::hamming_distances(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                                    const std::uint64_t* queries, std::int64_t nq, std::int32_t* out,
                                    ErrorText* error) {
  Impl& m = *impl_;
  const Status s = m.check_ready("hamming_distances", error);
  if (s != Status::kOk) return s;
  if (const char* problem = g::search_args_problem(true, codes, n, words, queries, nq, 1, false, out, out)) {
    error->set("SearchGpu::hamming_distances: %s (n %lld, words %d, nq %lld)", problem,
               static_cast<long long>(n), words, static_cast<long long>(nq));
    return Status::kUnsupported;
  }
  if (n == 0 || nq == 0) return Status::kOk;
  MMCORE_CUDA_TRY(cudaSetDevice(m.device));
  const std::int32_t qgroup = g::binary_query_group(words);
  const unsigned row_blocks = static_cast<unsigned>((n + g::kBinaryThreads - 1) / g::kBinaryThreads);
  const std::size_t smem = static_cast<std::size_t>(qgroup) * words * 8;
  // gridDim.y <= 65535 query groups per launch.
  const std::int64_t per_launch = static_cast<std::int64_t>(qgroup) * 65535;
  for (std::int64_t q0 = 0; q0 < nq; q0 += per_launch) {
    const std::int64_t nqg = nq - q0 < per_launch ? nq - q0 : per_launch;
    const dim3 grid(row_blocks, static_cast<unsigned>((nqg + qgroup - 1) / qgroup));
    binary_kernel<<<grid, g::kBinaryThreads, smem, m.stream>>>(
        codes, n, words, queries + q0 * words, static_cast<std::int32_t>(nqg), qgroup, out + q0 * n, n, true);
    MMCORE_CUDA_TRY(cudaGetLastError());
  }
  MMCORE_CUDA_TRY(cudaStreamSynchronize(m.stream));
  return Status::kOk;
}

Status SearchGpu::hamming_knn(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                              const std::uint64_t* queries, std::int64_t nq, std::int32_t k,
                              std::int32_t* dist, std::int64_t* idx, ErrorText* error) {
  Impl& m = *impl_;
  const Status s = m.check_ready("hamming_knn", error);
  if (s != Status::kOk) return s;
  const char* problem = g::search_args_problem(true, codes, n, words, queries, nq, k, true, dist, idx);
  if (problem != nullptr) {
    error->set("SearchGpu::hamming_knn: %s (n %lld, words %d, nq %lld, k %d)", problem,
               static_cast<long long>(n), words, static_cast<long long>(nq), k);
    return Status::kUnsupported;
  }
  MMCORE_CUDA_TRY(cudaSetDevice(m.device));
  const std::int32_t qgroup = g::binary_query_group(words);
  // The score kernel over queries `qs` (the caller's, or the filtered schedule's gathered ones).
  const auto score_for = [&](const std::uint64_t* qs) -> Impl::ScoreFn {
    return [&m, codes, words, qgroup, qs](std::int64_t q0, std::int64_t nqg, std::int64_t row0,
                                          std::int64_t rows, std::int32_t* out, std::int64_t ld,
                                          ErrorText* err) {
      if (rows <= 0) return Status::kOk;
      const dim3 grid(static_cast<unsigned>((rows + g::kBinaryThreads - 1) / g::kBinaryThreads),
                      static_cast<unsigned>((nqg + qgroup - 1) / qgroup));
      const std::size_t smem = static_cast<std::size_t>(qgroup) * words * 8;
      binary_kernel<<<grid, g::kBinaryThreads, smem, m.stream>>>(
          codes + row0 * words, rows, words, qs + q0 * words, static_cast<std::int32_t>(nqg), qgroup, out,
          ld);
      const cudaError_t e = cudaGetLastError();
      return e == cudaSuccess ? Status::kOk : cuda_util::fail(err, "binary_kernel launch", e);
    };
  };
  g::KnnFilterShape fs;
  fs.n = n;
  fs.nq = nq;
  fs.k = k;
  const g::KnnFilterPlan plan = g::plan_knn_filter(fs);
  if (!m.knn_filter || !plan.filtered) return m.topk(n, nq, k, true, score_for(queries), dist, idx, error);
  const Impl::FilterFn filter = [&](std::int64_t q0, std::int64_t nqg, std::uint64_t* cand, std::int64_t cap,
                                    unsigned long long* counts, ErrorText* err) {
    if (g::knn_mma_usable(m.tensor_cores, m.knn_mma, words, nqg)) {  // the tensor-core pass
      const std::int64_t tiles = (n + g::kKnnMmaRows - 1) / g::kKnnMmaRows;
      const std::int64_t want = 8LL * (m.multiprocessors > 0 ? m.multiprocessors : 1);
      const dim3 grid(static_cast<unsigned>(tiles < want ? tiles : want),
                      static_cast<unsigned>((nqg + g::kKnnMmaQueries - 1) / g::kKnnMmaQueries));
      TcScan sc{};
      sc.codes = codes;
      sc.n = n;
      sc.queries = queries + q0 * words;
      sc.nq = static_cast<std::int32_t>(nqg);
      sc.dist_out = dist + q0 * k;
      sc.k = k;
      sc.cand = cand;
      sc.cap = cap;
      sc.counts = counts;
      const cudaError_t e = launch_mma_scan<kScanKnn>(sc, words, grid, m.stream);
      return e == cudaSuccess ? Status::kOk : cuda_util::fail(err, "knn_mma_scan_kernel launch", e);
    }
    const dim3 grid(static_cast<unsigned>((n + g::kBinaryThreads - 1) / g::kBinaryThreads),
                    static_cast<unsigned>((nqg + qgroup - 1) / qgroup));
    const std::size_t smem = static_cast<std::size_t>(qgroup) * (words * 8 + 4);
    knn_filter_kernel<<<grid, g::kBinaryThreads, smem, m.stream>>>(codes, n, words, queries + q0 * words,
                                                                   static_cast<std::int32_t>(nqg), qgroup,
                                                                   dist + q0 * k, k, cand, cap, counts);
    const cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? Status::kOk : cuda_util::fail(err, "knn_filter_kernel launch", e);
  };
  return m.topk_filtered(n, nq, k, plan, queries, words, score_for, filter, dist, idx, error);
}

}  // namespace mmcore
