// SearchGpu::int8_topk / int8_scores (search_gpu.h): int8 scores with dp4a, exact in int32, then the
// shared top-k (cuda/topk.cu). The per-thread work is search_gpu_internal.h's, the same code
// tests/cpp/test_search_gpu_emu.cpp runs on the CPU.
//
// Three kernels: the stream kernel (1..8 queries, d % 16 == 0, aligned) reads each code row once
// with 16-byte loads, a group of lanes per row: bandwidth-bound, the one-query case. The
// tensor-core kernel (more queries, d % 64 == 0 and <= 2048, aligned, sm_80 and later) multiplies
// 64 queries by each warp's 32 rows with mma.sync (int8 in, int32 out, exact). The tile kernel
// (anything else) scores 64 rows x 64 queries per block through shared memory with dp4a.
#include <cuda_runtime.h>

#include "search_impl.cuh"

namespace mmcore {
namespace {

namespace g = gpu_detail;

__global__ void qsum_kernel(const std::int8_t* queries, std::int64_t nq, std::int32_t d, std::int32_t* qsum) {
  const std::int64_t q = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (q < nq) qsum[q] = g::query_sum(queries + q * d, d);
}

template <int NQ>
__global__ void __launch_bounds__(g::kStreamThreads)
    int8_stream_kernel(const std::uint8_t* codes, std::int64_t rows, std::int32_t d,
                       const std::int8_t* queries, std::int32_t nq, const std::int32_t* qsum,
                       std::int32_t* scores, std::int64_t ld, int group) {
  extern __shared__ std::uint32_t qwords[];  // NQ x d / 4 words, queries past nq zero
  const int tid = static_cast<int>(threadIdx.x);
  const std::int32_t dw = d / 4;
  const std::uint32_t* qsrc = reinterpret_cast<const std::uint32_t*>(queries);
  for (std::int32_t i = tid; i < NQ * dw; i += g::kStreamThreads) qwords[i] = i / dw < nq ? qsrc[i] : 0u;
  __syncthreads();
  const int lane = tid % group;
  const int rows_per_step = g::kStreamThreads / group;
  // The loop bound is block-uniform, so every lane of a warp reaches the shuffles.
  for (std::int64_t base = static_cast<std::int64_t>(blockIdx.x) * rows_per_step; base < rows;
       base += static_cast<std::int64_t>(gridDim.x) * rows_per_step) {
    const std::int64_t row = base + tid / group;
    std::int32_t acc[NQ];
#pragma unroll
    for (int j = 0; j < NQ; ++j) acc[j] = 0;
    if (row < rows) g::int8_stream_partial<NQ>(codes + row * d, d, qwords, lane, group, acc);
    for (int off = group / 2; off > 0; off >>= 1) {
#pragma unroll
      for (int j = 0; j < NQ; ++j) acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], off);
    }
    if (row < rows && lane == 0) {
#pragma unroll
      for (int j = 0; j < NQ; ++j)
        if (j < nq) scores[j * ld + row] = acc[j] + 128 * qsum[j];
    }
  }
}

__global__ void __launch_bounds__(g::kTileThreads)
    int8_tile_kernel(g::TileArgs a, const std::int32_t* qsum, std::int32_t* scores, std::int64_t ld) {
  __shared__ g::TileShared sh;
  const int tid = static_cast<int>(threadIdx.x);
  const std::int64_t row0 = static_cast<std::int64_t>(blockIdx.x) * g::kTileRows;
  const std::int32_t q0 = static_cast<std::int32_t>(blockIdx.y) * g::kTileQueries;
  std::int32_t acc[4][4] = {};
  const std::int32_t dw = (a.d + 3) / 4;
  for (std::int32_t w0 = 0; w0 < dw; w0 += g::kTileWords) {
    g::tile_load(a, sh, row0, q0, w0, tid, g::kTileThreads);
    __syncthreads();
    g::tile_compute(sh, tid, acc);
    __syncthreads();
  }
  g::tile_store(a, qsum, row0, q0, tid, acc, scores, ld);
}

// The tensor-core kernel (search_gpu_internal.h's int8_mma_* phases): a block's kMmaQueries
// queries in shared memory, then a grid-stride loop over tiles of kMmaBlockRows rows; each warp
// loads Unroll chunks of its rows' codes (16-byte loads, straight into B fragments) before it
// multiplies them. Pipelined: the warp walks its (tile, chunk group) sequence with the next group's
// loads issued before the current group's multiplies (across tiles too), so that its loads stay in
// flight while it computes. The default is <kMmaUnroll, false>, measured on an H200;
// MMCORE_GPU_MMA_PIPELINE=1 / 2 picks <1, true> / <2, true> (for the GPU check to compare).
template <int Unroll, bool Pipelined>
__global__ void __launch_bounds__(g::kMmaThreads)
    int8_mma_kernel(const std::uint8_t* codes, std::int64_t rows, std::int32_t d, const std::int8_t* queries,
                    std::int32_t nq, std::int32_t* scores, std::int64_t ld) {
  extern __shared__ __align__(16) std::uint8_t sq[];
  const int tid = static_cast<int>(threadIdx.x);
  const int lane = tid & 31;
  const int warp = tid >> 5;
  const std::int32_t q0 = static_cast<std::int32_t>(blockIdx.y) * g::kMmaQueries;
  g::mma_fill_queries(queries, nq, d, q0, sq, tid, g::kMmaThreads);
  __syncthreads();
  const std::int32_t chunks = d / g::kMmaChunk;
  const auto load = [&](std::int64_t row0, std::int32_t c0, std::uint32_t (&x)[Unroll][4][4]) {
#pragma unroll
    for (int u = 0; u < Unroll; ++u) {
      if (c0 + u < chunks) {
        g::mma_load_codes(codes, rows, d, row0, c0 + u, lane, x[u]);
      } else {
#pragma unroll
        for (int nt = 0; nt < 4; ++nt)
#pragma unroll
          for (int i = 0; i < 4; ++i) x[u][nt][i] = 0;
      }
    }
  };
  const auto multiply = [&](std::int32_t c0, const std::uint32_t (&x)[Unroll][4][4],
                            std::int32_t (&acc)[4][4][4]) {
#pragma unroll
    for (int u = 0; u < Unroll; ++u) {
      if (c0 + u >= chunks) break;
#pragma unroll
      for (int mt = 0; mt < 4; ++mt) {
        std::uint32_t w[4], v[4];
        g::mma_load_queries(sq, d, mt, c0 + u, lane, w, v);
#pragma unroll
        for (int s = 0; s < 2; ++s) {
#pragma unroll
          for (int nt = 0; nt < 4; ++nt) {
            std::uint32_t a[4], b[2];
            g::mma_fragments(w, v, x[u][nt], s, a, b);
            g::mma_s8u8(acc[mt][nt], a, b);
          }
        }
      }
    }
  };
  const auto zero = [](std::int32_t (&acc)[4][4][4]) {
#pragma unroll
    for (int mt = 0; mt < 4; ++mt)
#pragma unroll
      for (int nt = 0; nt < 4; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[mt][nt][i] = 0;
  };
  const auto first_row = [&](std::int64_t tile) { return tile * g::kMmaBlockRows + warp * g::kMmaWarpRows; };
  std::int32_t acc[4][4][4];
  if constexpr (!Pipelined) {
    for (std::int64_t tile = blockIdx.x; tile * g::kMmaBlockRows < rows; tile += gridDim.x) {
      const std::int64_t row0 = first_row(tile);
      zero(acc);
      for (std::int32_t c0 = 0; c0 < chunks; c0 += Unroll) {
        std::uint32_t x[Unroll][4][4];
        load(row0, c0, x);
        multiply(c0, x, acc);
      }
      g::mma_store(acc, row0, rows, q0, nq, lane, scores, ld);
    }
  } else {
    std::int64_t tile = blockIdx.x;
    if (tile * g::kMmaBlockRows >= rows) return;  // the whole block: no barrier follows
    std::int32_t c0 = 0;
    std::uint32_t x[Unroll][4][4], next[Unroll][4][4];
    load(first_row(tile), 0, x);
    zero(acc);
    for (;;) {
      // The next group's place: the next chunks of this tile, or the next tile's first.
      std::int64_t nt_tile = tile;
      std::int32_t nc0 = c0 + Unroll;
      if (nc0 >= chunks) {
        nt_tile += gridDim.x;
        nc0 = 0;
      }
      const bool more = nt_tile * g::kMmaBlockRows < rows;
      if (more) load(first_row(nt_tile), nc0, next);
      multiply(c0, x, acc);
      if (nt_tile != tile) {
        g::mma_store(acc, first_row(tile), rows, q0, nq, lane, scores, ld);
        zero(acc);
      }
      if (!more) break;
      tile = nt_tile;
      c0 = nc0;
#pragma unroll
      for (int u = 0; u < Unroll; ++u)
#pragma unroll
        for (int k = 0; k < 4; ++k)
#pragma unroll
          for (int i = 0; i < 4; ++i) x[u][k][i] = next[u][k][i];
    }
  }
}

/// Launches int8_mma_kernel<Unroll, Pipelined> over all query blocks (one resident wave of blocks).
template <int Unroll, bool Pipelined>
Status launch_mma(const SearchGpu::Impl& m, const std::uint8_t* codes, std::int64_t rows, std::int32_t d,
                  const std::int8_t* queries, std::int64_t nqg, std::int32_t* scores, std::int64_t ld,
                  ErrorText* error) {
  const auto kernel = int8_mma_kernel<Unroll, Pipelined>;
  const std::size_t smem = g::mma_shared_bytes(d);
  MMCORE_CUDA_TRY(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  // One wave of resident blocks (a second, partial wave would leave SMs idle at the end).
  int per_sm = 0;
  MMCORE_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, g::kMmaThreads, smem));
  const std::int64_t tiles = (rows + g::kMmaBlockRows - 1) / g::kMmaBlockRows;
  const std::int64_t cap =
      static_cast<std::int64_t>(per_sm > 0 ? per_sm : 1) * (m.multiprocessors > 0 ? m.multiprocessors : 1);
  const unsigned bx = static_cast<unsigned>(tiles < cap ? tiles : cap);
  const std::int64_t per_launch = std::int64_t{65535} * g::kMmaQueries;
  for (std::int64_t q0 = 0; q0 < nqg; q0 += per_launch) {
    const std::int64_t nqs = nqg - q0 < per_launch ? nqg - q0 : per_launch;
    const dim3 grid(bx, static_cast<unsigned>((nqs + g::kMmaQueries - 1) / g::kMmaQueries));
    kernel<<<grid, g::kMmaThreads, smem, m.stream>>>(codes, rows, d, queries + q0 * d,
                                                     static_cast<std::int32_t>(nqs), scores + q0 * ld, ld);
    MMCORE_CUDA_TRY(cudaGetLastError());
  }
  return Status::kOk;
}

/// Scores rows [0, rows) of `codes` against nqg queries (their sums at qsum) into scores[j * ld + i].
Status launch_int8(const SearchGpu::Impl& m, const std::uint8_t* codes, std::int64_t rows, std::int32_t d,
                   const std::int8_t* queries, std::int64_t nqg, const std::int32_t* qsum,
                   std::int32_t* scores, std::int64_t ld, ErrorText* error) {
  if (rows <= 0 || nqg <= 0) return Status::kOk;
  const int nq_stream = g::int8_stream_nq(d, nqg, g::aligned16(codes) && g::aligned16(queries));
  if (nq_stream > 0) {
    const int group = g::stream_group(d);
    const std::int64_t rows_per_block = g::kStreamThreads / group;
    std::int64_t blocks = (rows + rows_per_block - 1) / rows_per_block;
    const std::int64_t cap = 16LL * (m.multiprocessors > 0 ? m.multiprocessors : 1);
    if (blocks > cap) blocks = cap;
    const std::size_t smem = static_cast<std::size_t>(nq_stream) * d;
    const int nq = static_cast<int>(nqg);
    const unsigned grid = static_cast<unsigned>(blocks);
    switch (nq_stream) {
      case 1:
        int8_stream_kernel<1><<<grid, g::kStreamThreads, smem, m.stream>>>(codes, rows, d, queries, nq, qsum,
                                                                           scores, ld, group);
        break;
      case 2:
        int8_stream_kernel<2><<<grid, g::kStreamThreads, smem, m.stream>>>(codes, rows, d, queries, nq, qsum,
                                                                           scores, ld, group);
        break;
      case 4:
        int8_stream_kernel<4><<<grid, g::kStreamThreads, smem, m.stream>>>(codes, rows, d, queries, nq, qsum,
                                                                           scores, ld, group);
        break;
      default:
        int8_stream_kernel<8><<<grid, g::kStreamThreads, smem, m.stream>>>(codes, rows, d, queries, nq, qsum,
                                                                           scores, ld, group);
        break;
    }
  } else if (g::int8_mma_usable(d, nqg, g::aligned16(codes) && g::aligned16(queries), m.tensor_cores,
                                m.shared_optin)) {
    switch (m.mma_variant) {
      case 1: return launch_mma<1, true>(m, codes, rows, d, queries, nqg, scores, ld, error);
      case 2: return launch_mma<2, true>(m, codes, rows, d, queries, nqg, scores, ld, error);
      default: return launch_mma<g::kMmaUnroll, false>(m, codes, rows, d, queries, nqg, scores, ld, error);
    }
  } else {
    // gridDim.y <= 65535: int8_scores may bring millions of queries (topk's groups are <= 2048).
    const std::int64_t per_launch = std::int64_t{65535} * g::kTileQueries;
    for (std::int64_t q0 = 0; q0 < nqg; q0 += per_launch) {
      const std::int64_t nqs = nqg - q0 < per_launch ? nqg - q0 : per_launch;
      const std::int8_t* qs = queries + q0 * d;
      const g::TileArgs a{codes, qs,
                          rows,  static_cast<std::int32_t>(nqs),
                          d,     d % 16 == 0 && g::aligned16(codes) && g::aligned16(qs)};
      const dim3 grid(static_cast<unsigned>((rows + g::kTileRows - 1) / g::kTileRows),
                      static_cast<unsigned>((nqs + g::kTileQueries - 1) / g::kTileQueries));
      int8_tile_kernel<<<grid, g::kTileThreads, 0, m.stream>>>(a, qsum + q0, scores + q0 * ld, ld);
      MMCORE_CUDA_TRY(cudaGetLastError());
    }
  }
  MMCORE_CUDA_TRY(cudaGetLastError());
  return Status::kOk;
}

/// Query sums of all nq queries into m.qsum.
Status upload_qsum(SearchGpu::Impl& m, const std::int8_t* queries, std::int64_t nq, std::int32_t d,
                   ErrorText* error) {
  const Status s = m.qsum.reserve(static_cast<std::size_t>(nq > 0 ? nq : 1) * 4, m.stream, error);
  if (s != Status::kOk) return s;
  if (nq == 0) return Status::kOk;
  qsum_kernel<<<static_cast<unsigned>((nq + 255) / 256), 256, 0, m.stream>>>(
      queries, nq, d, static_cast<std::int32_t*>(m.qsum.ptr));
  MMCORE_CUDA_TRY(cudaGetLastError());
  return Status::kOk;
}

}  // namespace

Status SearchGpu::int8_topk(const std::uint8_t* codes, std::int64_t n, std::int32_t d,
                            const std::int8_t* queries, std::int64_t nq, std::int32_t k, std::int32_t* scores,
                            std::int64_t* idx, ErrorText* error) {
  Impl& m = *impl_;
  Status s = m.check_ready("int8_topk", error);
  if (s != Status::kOk) return s;
  if (const char* problem = g::search_args_problem(false, codes, n, d, queries, nq, k, true, scores, idx)) {
    error->set("SearchGpu::int8_topk: %s (n %lld, d %d, nq %lld, k %d)", problem, static_cast<long long>(n),
               d, static_cast<long long>(nq), k);
    return Status::kUnsupported;
  }
  MMCORE_CUDA_TRY(cudaSetDevice(m.device));
  s = upload_qsum(m, queries, nq, d, error);
  if (s != Status::kOk) return s;
  const Impl::ScoreFn fn = [&](std::int64_t q0, std::int64_t nqg, std::int64_t row0, std::int64_t rows,
                               std::int32_t* out, std::int64_t ld, ErrorText* err) {
    return launch_int8(m, codes + row0 * d, rows, d, queries + q0 * d, nqg,
                       static_cast<const std::int32_t*>(m.qsum.ptr) + q0, out, ld, err);
  };
  return m.topk(n, nq, k, false, fn, scores, idx, error);
}

Status SearchGpu::int8_scores(const std::uint8_t* codes, std::int64_t n, std::int32_t d,
                              const std::int8_t* queries, std::int64_t nq, std::int32_t* out,
                              ErrorText* error) {
  Impl& m = *impl_;
  Status s = m.check_ready("int8_scores", error);
  if (s != Status::kOk) return s;
  if (const char* problem = g::search_args_problem(false, codes, n, d, queries, nq, 1, false, out, out)) {
    error->set("SearchGpu::int8_scores: %s (n %lld, d %d, nq %lld)", problem, static_cast<long long>(n), d,
               static_cast<long long>(nq));
    return Status::kUnsupported;
  }
  MMCORE_CUDA_TRY(cudaSetDevice(m.device));
  s = upload_qsum(m, queries, nq, d, error);
  if (s == Status::kOk)
    s = launch_int8(m, codes, n, d, queries, nq, static_cast<const std::int32_t*>(m.qsum.ptr), out, n, error);
  if (s != Status::kOk) {
    (void)cudaStreamSynchronize(m.stream);  // nothing already queued still reads or writes the buffers
    return s;
  }
  MMCORE_CUDA_TRY(cudaStreamSynchronize(m.stream));
  return Status::kOk;
}

}  // namespace mmcore
