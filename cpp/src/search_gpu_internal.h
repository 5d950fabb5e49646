// The work of the GPU search kernels (cuda/topk.cu, cuda/quant.cu, cuda/hamming.cu), written as
// __host__ __device__ per-thread functions so that the CPU runs the very same code:
// tests/gpu/search_emulator.h runs every thread of a phase, then the next phase, as the block
// barrier orders them, and tests/cpp/test_search_gpu_emu.cpp compares with quant_score_int8 and
// hamming_knn bit for bit.
//
// Top-k, exactly the CPU's answer (largest score, ties by smallest position):
// - A candidate is one uint64 key, larger = better: the int32 score (the int8 dot product, or
//   minus the Hamming distance) biased to unsigned in the high half, 0xFFFFFFFF - position in the
//   low half. Keys of distinct rows are distinct, so "the k largest keys" has one answer whatever
//   the order of work; key 0 is padding (no row has it: positions are < kSearchMaxRows).
// - Select (one block per query and segment): a shared buffer of kSelectCap keys and a threshold
//   (the k-th best key so far, 0 at first). Rounds of kSelectRound elements: a thread appends each
//   of its elements whose key beats the threshold (a shared atomic counter gives the slot); when
//   the next round could overflow the buffer, the block sorts it (bitonic, descending), keeps k
//   and raises the threshold. At the end the block sorts once more and writes its k best keys.
// - Schedule (run_topk, host): queries in groups, rows in chunks whose int32 score matrix fits a
//   budget; per chunk the score kernel, then level-1 select (from scores) into the candidate
//   buffer; then select rounds over candidate keys, each cutting the length by >= 4, until one
//   segment per query is left: its k keys are the answer.
#pragma once

#include <cstdint>
#include <cstring>

#include "hd_internal.h"

namespace mmcore::gpu_detail {

/// Base rows a search takes (positions fit the key's 32 low bits, 0xFFFFFFFF stays unused).
constexpr std::int64_t kSearchMaxRows = 0xFFFFFFFELL;
/// Largest k of the GPU top-k (faiss-gpu's own limit is 2048).
constexpr std::int32_t kSearchMaxK = 1024;

MMCORE_HD inline std::uint64_t make_key(std::int32_t score, std::uint32_t pos) {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(score) ^ 0x80000000u) << 32) |
         static_cast<std::uint64_t>(0xFFFFFFFFu - pos);
}
MMCORE_HD inline std::int32_t key_score(std::uint64_t key) {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(key >> 32) ^ 0x80000000u);
}
/// The position of a key, -1 for padding.
MMCORE_HD inline std::int64_t key_pos(std::uint64_t key) {
  return key == 0 ? -1 : static_cast<std::int64_t>(0xFFFFFFFFu - static_cast<std::uint32_t>(key));
}

// ---- select --------------------------------------------------------------------------------------

constexpr int kSelectThreads = 256;
constexpr int kSelectPerThread = 4;
constexpr int kSelectRound = kSelectThreads * kSelectPerThread;
/// Buffer keys: a power of two >= kSearchMaxK + kSelectRound (a round always fits after a sort).
constexpr int kSelectCap = 2048;
static_assert(kSelectCap >= kSearchMaxK + kSelectRound, "select buffer too small");
/// Smallest segment: >= 4 * kSearchMaxK, so every select round cuts the length by >= 4.
constexpr std::int64_t kSelectMinSegment = 4 * kSelectRound;

/// One select launch: grid (segments, queries). Input of query q: scores (int32, key made with
/// position pos_base + i) or keys, `length` elements at `in_stride` per query. Block (s, q) reads
/// elements [s * segment, min((s + 1) * segment, length)) and writes its k best keys, descending,
/// 0-padded, at out + q * out_stride + (seg_base + s) * k.
struct SelectArgs {
  const std::int32_t* scores;
  const std::uint64_t* keys;
  std::int64_t in_stride;
  std::int64_t length;
  std::int64_t segment;
  std::uint32_t pos_base;
  std::int32_t k;
  std::uint64_t* out;
  std::int64_t out_stride;
  std::int64_t seg_base;
};

struct SelectShared {
  std::uint64_t buf[kSelectCap];
  std::uint64_t threshold;
  std::int32_t count;
};

/// Phase: empty buffer.
MMCORE_HD inline void select_init(SelectShared& sh, int tid, int nthreads) {
  for (int i = tid; i < kSelectCap; i += nthreads) sh.buf[i] = 0;
  if (tid == 0) {
    sh.count = 0;
    sh.threshold = 0;
  }
}

MMCORE_HD inline std::int32_t shared_slot(std::int32_t* count) {
#if defined(__CUDA_ARCH__)
  return atomicAdd(count, 1);
#else
  return (*count)++;
#endif
}

/// Phase: round `r` of block (seg, q): each thread offers its elements.
MMCORE_HD inline void select_scan(const SelectArgs& a, SelectShared& sh, std::int64_t seg, std::int64_t q,
                                  std::int64_t r, int tid, int nthreads) {
  const std::int64_t begin = seg * a.segment;
  std::int64_t end = begin + a.segment;
  if (end > a.length) end = a.length;
  const std::uint64_t threshold = sh.threshold;
  for (int e = 0; e < kSelectPerThread; ++e) {
    const std::int64_t i = begin + r * (static_cast<std::int64_t>(nthreads) * kSelectPerThread) +
                           static_cast<std::int64_t>(e) * nthreads + tid;
    if (i >= end) break;
    const std::uint64_t key = a.scores != nullptr ? make_key(a.scores[q * a.in_stride + i],
                                                             a.pos_base + static_cast<std::uint32_t>(i))
                                                  : a.keys[q * a.in_stride + i];
    if (key > threshold) sh.buf[shared_slot(&sh.count)] = key;
  }
}

/// Rounds of block `seg`.
MMCORE_HD inline std::int64_t select_rounds(const SelectArgs& a, std::int64_t seg) {
  const std::int64_t begin = seg * a.segment;
  std::int64_t end = begin + a.segment;
  if (end > a.length) end = a.length;
  return end > begin ? (end - begin + kSelectRound - 1) / kSelectRound : 0;
}

/// After a scan's barrier: sort now (every thread reads the same count)?
MMCORE_HD inline bool select_must_sort(const SelectShared& sh) {
  return sh.count + kSelectRound > kSelectCap;
}

/// One bitonic step (size, stride) over the buffer, descending when complete.
MMCORE_HD inline void bitonic_step(std::uint64_t* buf, int size, int stride, int tid, int nthreads) {
  for (int t = tid; t < kSelectCap / 2; t += nthreads) {
    const int i = (t / stride) * stride * 2 + (t % stride);
    const int j = i + stride;
    const bool descending = (i & size) == 0;
    const std::uint64_t x = buf[i];
    const std::uint64_t y = buf[j];
    if ((x < y) == descending) {
      buf[i] = y;
      buf[j] = x;
    }
  }
}

/// Phase after a sort: keep k, clear the rest, raise the threshold.
MMCORE_HD inline void select_keep(SelectShared& sh, std::int32_t k, int tid, int nthreads) {
  for (int i = k + tid; i < kSelectCap; i += nthreads) sh.buf[i] = 0;
  if (tid == 0) {
    sh.count = k;
    sh.threshold = sh.buf[k - 1];
  }
}

/// Phase after the final sort: the block's k best keys.
MMCORE_HD inline void select_store(const SelectArgs& a, const SelectShared& sh, std::int64_t seg,
                                   std::int64_t q, int tid, int nthreads) {
  std::uint64_t* out = a.out + q * a.out_stride + (a.seg_base + seg) * a.k;
  for (int i = tid; i < a.k; i += nthreads) out[i] = sh.buf[i];
}

// ---- int8 scores ---------------------------------------------------------------------------------
// score(code row c, query t) = sum_d c_d * t_d, codes unsigned, queries signed: computed as
// sum_d (c_d - 128) * t_d + 128 * sum_d t_d, where c_d - 128 is the byte c_d ^ 0x80 read as
// signed, so that dp4a's signed x signed form applies; exact in int32 (|score| < 2^31 for
// d <= 65536, as on the CPU).

MMCORE_HD inline std::int32_t dp4a_s8(std::uint32_t a, std::uint32_t b, std::int32_t c) {
#if defined(__CUDA_ARCH__)
  return __dp4a(static_cast<int>(a), static_cast<int>(b), c);
#else
  for (int i = 0; i < 4; ++i) {
    c += static_cast<std::int32_t>(static_cast<std::int8_t>(a >> (8 * i))) *
         static_cast<std::int32_t>(static_cast<std::int8_t>(b >> (8 * i)));
  }
  return c;
#endif
}

struct Word4 {
  std::uint32_t x, y, z, w;
};

/// 16 bytes from a 16-byte-aligned address.
MMCORE_HD inline Word4 load16(const std::uint8_t* p) {
#if defined(__CUDA_ARCH__)
  const uint4 v = *reinterpret_cast<const uint4*>(p);
  return Word4{v.x, v.y, v.z, v.w};
#else
  Word4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
#endif
}

/// Little-endian word of bytes p[0..n), zero beyond n (n <= 4).
MMCORE_HD inline std::uint32_t load_word_tail(const std::uint8_t* p, std::int64_t n) {
  std::uint32_t w = 0;
  for (int b = 0; b < 4 && b < n; ++b) w |= static_cast<std::uint32_t>(p[b]) << (8 * b);
  return w;
}

/// Query sums for the correction term; one thread per query.
MMCORE_HD inline std::int32_t query_sum(const std::int8_t* q, std::int32_t d) {
  std::int32_t s = 0;
  for (std::int32_t i = 0; i < d; ++i) s += q[i];
  return s;
}

// Stream kernel (few queries, d % 16 == 0, 16-byte-aligned codes and queries): a group of
// `group` lanes reads one code row as 16-byte words (lane l takes words l, l + group, ...) and
// scores it against every query, held in shared memory as words; the lanes' partial sums are
// added (a warp shuffle on the GPU). Each block handles kStreamThreads / group rows per step.
constexpr int kStreamThreads = 256;
constexpr std::int64_t kStreamMaxQueryBytes = 32768;  ///< NQ * d bytes of queries in shared memory

/// Lanes per row: a power of two <= 32 and <= the row's 16-byte words.
inline int stream_group(std::int32_t d) {
  const std::int32_t words = d / 16;
  int g = 1;
  while (g < 32 && g * 2 <= words) g *= 2;
  return g;
}

inline bool aligned16(const void* p) {
  return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0;
}

/// The int8 kernel for a pass: the stream kernel's NQ (1, 2, 4 or 8 >= nqg), or 0 for the tile
/// kernel (more queries, d % 16 != 0, unaligned pointers, or queries too large for shared memory).
inline int int8_stream_nq(std::int32_t d, std::int64_t nqg, bool aligned) {
  if (!aligned || d % 16 != 0) return 0;
  const int nq = nqg <= 1 ? 1 : (nqg <= 2 ? 2 : (nqg <= 4 ? 4 : (nqg <= 8 ? 8 : 0)));
  if (nq == 0 || static_cast<std::int64_t>(nq) * d > kStreamMaxQueryBytes) return 0;
  return nq;
}

/// Lane `lane`'s partial dot products (without the correction) of `row` with the NQ queries at
/// qwords (query j's d / 4 words at qwords + j * d / 4).
template <int NQ>
MMCORE_HD inline void int8_stream_partial(const std::uint8_t* row, std::int32_t d,
                                          const std::uint32_t* qwords, int lane, int group,
                                          std::int32_t* acc) {
  const std::int32_t d16 = d / 16;
  const std::int32_t dw = d / 4;
  for (std::int32_t i = lane; i < d16; i += group) {
    const Word4 v = load16(row + 16 * static_cast<std::int64_t>(i));
    const std::uint32_t a0 = v.x ^ 0x80808080u, a1 = v.y ^ 0x80808080u, a2 = v.z ^ 0x80808080u,
                        a3 = v.w ^ 0x80808080u;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
    for (int j = 0; j < NQ; ++j) {
      const std::uint32_t* q = qwords + j * dw + 4 * i;
      std::int32_t s = acc[j];
      s = dp4a_s8(a0, q[0], s);
      s = dp4a_s8(a1, q[1], s);
      s = dp4a_s8(a2, q[2], s);
      s = dp4a_s8(a3, q[3], s);
      acc[j] = s;
    }
  }
}

// Tile kernel (any d, nq, alignment): a block scores kTileRows code rows against kTileQueries
// queries, kTileWords words (4 bytes) of d at a time through shared memory; 16 x 16 threads,
// thread (ty, tx) owns rows tx + 16 a and queries ty + 16 b (a, b < 4), so that a half-warp writes
// 16 consecutive scores of one query.
constexpr int kTileRows = 64;
constexpr int kTileQueries = 64;
constexpr int kTileWords = 64;
constexpr int kTileStride = kTileWords + 4;  ///< words per shared row (padding spreads the banks)
constexpr int kTileThreads = 256;

struct TileShared {
  std::uint32_t rows[kTileRows * kTileStride];  ///< code words ^ 0x80808080
  std::uint32_t queries[kTileQueries * kTileStride];
};

/// Where a tile block reads: rows [row0, row0 + kTileRows) of `codes` (n_rows in the chunk from
/// codes' row 0), queries [q0, q0 + kTileQueries) of nq.
struct TileArgs {
  const std::uint8_t* codes;
  const std::int8_t* queries;
  std::int64_t rows;  ///< rows of the chunk (codes points at its first)
  std::int32_t nq;
  std::int32_t d;
  bool vec;  ///< d % 16 == 0 and both pointers 16-byte aligned
};

/// Phase: load word slice [w0, w0 + kTileWords) of the tile (row0, q0) into shared memory.
MMCORE_HD inline void tile_load(const TileArgs& a, TileShared& sh, std::int64_t row0, std::int32_t q0,
                                std::int32_t w0, int tid, int nthreads) {
  const std::int32_t dw = (a.d + 3) / 4;
  // Rows then queries: kTileRows * kTileWords / 4 16-byte units each when vectorised.
  if (a.vec) {
    constexpr int kUnits = kTileWords / 4;
    for (int u = tid; u < (kTileRows + kTileQueries) * kUnits; u += nthreads) {
      const bool is_row = u < kTileRows * kUnits;
      const int uu = is_row ? u : u - kTileRows * kUnits;
      const int r = uu / kUnits;
      const int w = (uu % kUnits) * 4;
      Word4 v{0, 0, 0, 0};
      if (w0 + w < dw) {
        if (is_row && row0 + r < a.rows) {
          v = load16(a.codes + (row0 + r) * a.d + 4 * static_cast<std::int64_t>(w0 + w));
        } else if (!is_row && q0 + r < a.nq) {
          v = load16(reinterpret_cast<const std::uint8_t*>(a.queries) +
                     static_cast<std::int64_t>(q0 + r) * a.d + 4 * static_cast<std::int64_t>(w0 + w));
        }
      }
      std::uint32_t* dst = (is_row ? sh.rows : sh.queries) + r * kTileStride + w;
      const std::uint32_t flip = is_row ? 0x80808080u : 0u;
      dst[0] = v.x ^ flip;
      dst[1] = v.y ^ flip;
      dst[2] = v.z ^ flip;
      dst[3] = v.w ^ flip;
    }
    return;
  }
  for (int u = tid; u < (kTileRows + kTileQueries) * kTileWords; u += nthreads) {
    const bool is_row = u < kTileRows * kTileWords;
    const int uu = is_row ? u : u - kTileRows * kTileWords;
    const int r = uu / kTileWords;
    const int w = uu % kTileWords;
    std::uint32_t v = 0;
    const std::int64_t byte = 4 * static_cast<std::int64_t>(w0 + w);
    if (byte < a.d) {
      if (is_row && row0 + r < a.rows) {
        v = load_word_tail(a.codes + (row0 + r) * a.d + byte, a.d - byte);
      } else if (!is_row && q0 + r < a.nq) {
        v = load_word_tail(
            reinterpret_cast<const std::uint8_t*>(a.queries) + static_cast<std::int64_t>(q0 + r) * a.d + byte,
            a.d - byte);
      }
    }
    // Bytes past d: the query's are 0, so the code's (flipped) contribute nothing.
    (is_row ? sh.rows : sh.queries)[r * kTileStride + w] = is_row ? v ^ 0x80808080u : v;
  }
}

/// Phase: thread (tx, ty) accumulates its 4 x 4 dot products over the loaded slice.
MMCORE_HD inline void tile_compute(const TileShared& sh, int tid, std::int32_t (&acc)[4][4]) {
  const int tx = tid % 16;
  const int ty = tid / 16;
  for (int w = 0; w < kTileWords; w += 4) {
    std::uint32_t r[4][4];
    std::uint32_t q[4][4];
    for (int i = 0; i < 4; ++i) {
      const std::uint32_t* pr = sh.rows + (tx + 16 * i) * kTileStride + w;
      const std::uint32_t* pq = sh.queries + (ty + 16 * i) * kTileStride + w;
      for (int c = 0; c < 4; ++c) {
        r[i][c] = pr[c];
        q[i][c] = pq[c];
      }
    }
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j)
        for (int c = 0; c < 4; ++c) acc[i][j] = dp4a_s8(r[i][c], q[j][c], acc[i][j]);
  }
}

/// Phase: thread's scores, corrected, to scores[q * ld + row].
MMCORE_HD inline void tile_store(const TileArgs& a, const std::int32_t* qsum, std::int64_t row0,
                                 std::int32_t q0, int tid, const std::int32_t (&acc)[4][4],
                                 std::int32_t* scores, std::int64_t ld) {
  const int tx = tid % 16;
  const int ty = tid / 16;
  for (int j = 0; j < 4; ++j) {
    const std::int32_t q = q0 + ty + 16 * j;
    if (q >= a.nq) continue;
    for (int i = 0; i < 4; ++i) {
      const std::int64_t row = row0 + tx + 16 * i;
      if (row < a.rows) scores[q * ld + row] = acc[i][j] + 128 * qsum[q];
    }
  }
}

// Tensor-core kernel (many queries; sm_80 and later; d % 64 == 0 and <= kMmaMaxD; 16-byte-aligned
// codes and queries): mma.sync m16n8k32 with queries as the signed A operand (16 queries per
// m-tile) and code rows as the unsigned B operand (8 rows per n-tile), int32 accumulators: the
// exact u8 x s8 product, no correction term. A block holds kMmaQueries queries in shared memory
// and its warps score kMmaWarpRows rows each, kMmaChunk bytes of d per step (two k-steps).
// The fragments: lane (g = lane / 4, t = lane % 4) loads 16 bytes at offset 16 t of a chunk for
// code row g of each n-tile (B) and for queries g and g + 8 of each m-tile (A); k-step s takes
// words 2 s and 2 s + 1 of them. The instruction's k order inside a step is then a permutation of
// the chunk's bytes, the same one for A and B, which a dot product does not see.
constexpr int kMmaQueries = 64;   ///< 4 m-tiles of 16
constexpr int kMmaWarpRows = 32;  ///< 4 n-tiles of 8
constexpr int kMmaWarps = 4;
constexpr int kMmaThreads = 32 * kMmaWarps;
constexpr std::int64_t kMmaBlockRows = kMmaWarps * kMmaWarpRows;
constexpr std::int32_t kMmaChunk = 64;
constexpr int kMmaUnroll = 4;  ///< chunks of codes loaded before any is used (loads in flight)
constexpr std::int32_t kMmaMaxD = 2048;

/// Bytes between queries in shared memory: d, plus 64 where d % 128 == 0, so that the 8 lanes of
/// a 16-byte load phase (2 queries x 4 offsets) fall on all 32 banks once.
MMCORE_HD inline std::int32_t mma_query_stride(std::int32_t d) {
  return d % 128 == 0 ? d + 64 : d;
}

inline std::size_t mma_shared_bytes(std::int32_t d) {
  return static_cast<std::size_t>(kMmaQueries) * static_cast<std::size_t>(mma_query_stride(d));
}

/// Whether a pass of nqg queries takes the tensor-core kernel: not the stream kernel's case, and
/// the shapes above, on a device with the instruction and enough shared memory per block.
inline bool int8_mma_usable(std::int32_t d, std::int64_t nqg, bool aligned, bool tensor_cores,
                            std::size_t shared_optin) {
  return tensor_cores && aligned && int8_stream_nq(d, nqg, aligned) == 0 && d % kMmaChunk == 0 &&
         d <= kMmaMaxD && mma_shared_bytes(d) <= shared_optin;
}

/// Phase: queries [q0, q0 + kMmaQueries) of nq into shared memory (zeros past nq and past d).
MMCORE_HD inline void mma_fill_queries(const std::int8_t* queries, std::int32_t nq, std::int32_t d,
                                       std::int32_t q0, std::uint8_t* sq, int tid, int nthreads) {
  const std::int32_t stride = mma_query_stride(d);
  const std::int32_t units = stride / 16;
  for (std::int32_t u = tid; u < kMmaQueries * units; u += nthreads) {
    const std::int32_t q = u / units;
    const std::int32_t off = (u % units) * 16;
    Word4 v{0, 0, 0, 0};
    if (off < d && q0 + q < nq)
      v = load16(reinterpret_cast<const std::uint8_t*>(queries) + static_cast<std::int64_t>(q0 + q) * d +
                 off);
    std::uint32_t* dst = reinterpret_cast<std::uint32_t*>(sq + static_cast<std::int64_t>(q) * stride + off);
    dst[0] = v.x;
    dst[1] = v.y;
    dst[2] = v.z;
    dst[3] = v.w;
  }
}

/// Lane's code words of chunk c for the warp's rows [row0, row0 + kMmaWarpRows): x[nt] is row
/// row0 + 8 nt + g at chunk offset 16 t (zeros past `rows`).
MMCORE_HD inline void mma_load_codes(const std::uint8_t* codes, std::int64_t rows, std::int32_t d,
                                     std::int64_t row0, std::int32_t c, int lane, std::uint32_t (&x)[4][4]) {
  const int g = lane >> 2;
  const int t = lane & 3;
  for (int nt = 0; nt < 4; ++nt) {
    const std::int64_t row = row0 + 8 * nt + g;
    Word4 v{0, 0, 0, 0};
    if (row < rows) v = load16(codes + row * d + static_cast<std::int64_t>(c) * kMmaChunk + 16 * t);
    x[nt][0] = v.x;
    x[nt][1] = v.y;
    x[nt][2] = v.z;
    x[nt][3] = v.w;
  }
}

/// Lane's query words of chunk c for m-tile mt: w from query 16 mt + g, v from query 16 mt + g + 8.
MMCORE_HD inline void mma_load_queries(const std::uint8_t* sq, std::int32_t d, int mt, std::int32_t c,
                                       int lane, std::uint32_t (&w)[4], std::uint32_t (&v)[4]) {
  const std::int32_t stride = mma_query_stride(d);
  const std::uint8_t* p = sq + static_cast<std::int64_t>(16 * mt + (lane >> 2)) * stride +
                          static_cast<std::int64_t>(c) * kMmaChunk + 16 * (lane & 3);
  const Word4 a = load16(p);
  const Word4 b = load16(p + 8 * static_cast<std::int64_t>(stride));
  w[0] = a.x;
  w[1] = a.y;
  w[2] = a.z;
  w[3] = a.w;
  v[0] = b.x;
  v[1] = b.y;
  v[2] = b.z;
  v[3] = b.w;
}

/// The A fragment of k-step s (registers: row g k-word t, row g + 8 k-word t, row g k-word t + 4,
/// row g + 8 k-word t + 4) and the B fragment (k-word t, k-word t + 4 of column g).
MMCORE_HD inline void mma_fragments(const std::uint32_t (&w)[4], const std::uint32_t (&v)[4],
                                    const std::uint32_t (&x)[4], int s, std::uint32_t (&a)[4],
                                    std::uint32_t (&b)[2]) {
  a[0] = w[2 * s];
  a[1] = v[2 * s];
  a[2] = w[2 * s + 1];
  a[3] = v[2 * s + 1];
  b[0] = x[2 * s];
  b[1] = x[2 * s + 1];
}

/// Lane's accumulators to scores[q * ld + row]: acc[mt][nt] holds (query 16 mt + g, rows
/// 8 nt + 2 t and + 1) and (query 16 mt + g + 8, the same rows), queries counted from q0.
MMCORE_HD inline void mma_store(const std::int32_t (&acc)[4][4][4], std::int64_t row0, std::int64_t rows,
                                std::int32_t q0, std::int32_t nq, int lane, std::int32_t* scores,
                                std::int64_t ld) {
  const int g = lane >> 2;
  const int t = lane & 3;
  for (int mt = 0; mt < 4; ++mt) {
    for (int h = 0; h < 2; ++h) {
      const std::int32_t q = q0 + 16 * mt + g + 8 * h;
      if (q >= nq) continue;
      for (int nt = 0; nt < 4; ++nt) {
        const std::int64_t row = row0 + 8 * nt + 2 * t;
        if (row < rows) scores[q * ld + row] = acc[mt][nt][2 * h];
        if (row + 1 < rows) scores[q * ld + row + 1] = acc[mt][nt][2 * h + 1];
      }
    }
  }
}

/// What one mma.sync m16n8k32 (s8 A, u8 B, s32) does for a whole warp, from the 32 lanes' fragments
/// as the PTX ISA lays them out (CPU only: the emulator's stand-in for the instruction).
inline void mma_m16n8k32_warp(std::int32_t (*acc)[4], const std::uint32_t (*a)[4],
                              const std::uint32_t (*b)[2]) {
  std::int32_t A[16][32];
  std::int32_t B[32][8];
  const auto byte = [](std::uint32_t w, int j) { return (w >> (8 * j)) & 0xffu; };
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2;
    const int t = lane & 3;
    for (int j = 0; j < 4; ++j) {
      A[g][4 * t + j] = static_cast<std::int8_t>(byte(a[lane][0], j));
      A[g + 8][4 * t + j] = static_cast<std::int8_t>(byte(a[lane][1], j));
      A[g][16 + 4 * t + j] = static_cast<std::int8_t>(byte(a[lane][2], j));
      A[g + 8][16 + 4 * t + j] = static_cast<std::int8_t>(byte(a[lane][3], j));
      B[4 * t + j][g] = static_cast<std::int32_t>(byte(b[lane][0], j));
      B[16 + 4 * t + j][g] = static_cast<std::int32_t>(byte(b[lane][1], j));
    }
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2;
    const int t = lane & 3;
    for (int i = 0; i < 4; ++i) {
      const int m = g + 8 * (i >> 1);
      const int n = 2 * t + (i & 1);
      std::int32_t s = 0;
      for (int k = 0; k < 32; ++k) s += A[m][k] * B[k][n];
      acc[lane][i] += s;
    }
  }
}

// ---- binary ---------------------------------------------------------------------------------------

MMCORE_HD inline int popcount64(std::uint64_t x) {
#if defined(__CUDA_ARCH__)
  return __popcll(x);
#else
  return __builtin_popcountll(x);
#endif
}

/// Queries of one binary block (its shared memory holds them).
inline std::int32_t binary_query_group(std::int32_t words) {
  const std::int32_t g = 4096 / words;
  return g < 1 ? 1 : (g > 64 ? 64 : g);
}
constexpr int kBinaryThreads = 256;

/// Minus the Hamming distance of code row `row` (words uint64) to query q (shared memory).
MMCORE_HD inline std::int32_t binary_score(const std::uint64_t* row, const std::uint64_t* q,
                                           std::int32_t words) {
  std::int32_t d = 0;
  for (std::int32_t w = 0; w < words; ++w) d += popcount64(row[w] ^ q[w]);
  return -d;
}

// ---- Hamming join and radius search --------------------------------------------------------------
// Pairs (row a, column b) within distance r. Join: rows and columns are the same codes and b > a,
// ordered by (a, b) as hamming_join gives them. Radius: rows are the queries, columns the base, every
// b; per query ordered by (distance, b) as hamming_radius, by a stable sort of the b-ordered matches
// by distance. A warp takes row a (rows dealt round-robin to the warps of the grid) and scans the
// columns in steps of 32, lane l taking b0 + l; the ballot of matches orders them by b. Pass 1 counts
// each row's matches; an exclusive scan of the counts gives each row's first output slot; pass 2
// repeats the scan and writes each match at its row's slot + the matches of the lanes before it.

constexpr int kJoinWarpsPerBlock = 8;

/// Lane's test: is column b (< n) within r of `row`? dist gets the distance.
MMCORE_HD inline bool pair_match(const std::uint64_t* row, const std::uint64_t* cols, std::int32_t words,
                                 std::int64_t b, std::int64_t n, std::int32_t r, std::int32_t* dist) {
  if (b >= n) return false;
  const std::int32_t d = -binary_score(cols + b * words, row, words);
  *dist = d;
  return d <= r;
}

/// First column row a scans: a + 1 for the self-join, 0 for radius search.
MMCORE_HD inline std::int64_t pair_first_column(bool self_join, std::int64_t a) {
  return self_join ? a + 1 : 0;
}

/// Pass 2's write of one match: slot = first + the matches of the lanes below `lane` in `mask`
/// (`first` may be null: radius search keeps only b and the distance).
MMCORE_HD inline void pair_store(std::int64_t slot_base, std::uint32_t mask, int lane, std::int64_t a,
                                 std::int64_t b, std::int32_t dist, std::int64_t* first, std::int64_t* second,
                                 std::int32_t* dists) {
  const std::uint32_t below = lane == 0 ? 0u : (mask & ((1u << lane) - 1u));
  const std::int64_t slot = slot_base + popcount64(below);
  if (first != nullptr) first[slot] = a;
  second[slot] = b;
  dists[slot] = dist;
}

// ---- schedule (host) ------------------------------------------------------------------------------

struct TopkShape {
  std::int64_t n = 0;   ///< base rows
  std::int64_t nq = 0;  ///< queries
  std::int32_t k = 1;
  std::int32_t blocks_wanted = 528;         ///< select blocks per launch to aim at (4 per SM)
  std::int64_t score_budget = 512ll << 20;  ///< bytes of the int32 score matrix per chunk
  std::int64_t key_budget = 1ll << 30;  ///< bytes of each candidate-key buffer (query groups shrink to fit)
  std::int64_t min_segment = kSelectMinSegment;
  std::int64_t max_query_group = 2048;
  std::int64_t min_chunk_rows = 65536;
};

struct TopkPlan {
  std::int64_t query_group = 0;  ///< queries per pass
  std::int64_t chunk_rows = 0;   ///< rows scored per chunk
  std::int64_t chunks = 0;
  std::int64_t seg1 = 0;            ///< level-1 segment (elements of a chunk's scores)
  std::int64_t segs_per_chunk = 0;  ///< level-1 blocks per chunk and query (the last chunk may use fewer)
  std::int64_t level1_len = 0;      ///< candidate keys per query after level 1 (>= k)
  std::int64_t score_elems = 0;     ///< int32 elements of the score buffer
  std::int64_t key_elems = 0;       ///< uint64 elements of each of the two key buffers
};

/// A segment for `length` elements per query and `queries` queries: about blocks_wanted blocks in
/// all, a multiple of kSelectRound, >= min_segment.
inline std::int64_t select_segment(std::int64_t length, std::int64_t queries, const TopkShape& s) {
  std::int64_t per_query = (s.blocks_wanted + queries - 1) / queries;
  if (per_query < 1) per_query = 1;
  std::int64_t seg = (length + per_query - 1) / per_query;
  seg = (seg + kSelectRound - 1) / kSelectRound * kSelectRound;
  const std::int64_t lo = s.min_segment < kSelectMinSegment ? kSelectMinSegment : s.min_segment;
  if (seg < lo) seg = lo;
  if (seg > (std::int64_t{1} << 22)) seg = std::int64_t{1} << 22;
  return seg;
}

/// The plan for query groups of `group` queries.
inline TopkPlan plan_topk_group(const TopkShape& s, std::int64_t group) {
  TopkPlan p;
  p.query_group = group < 1 ? 1 : group;
  std::int64_t rows = s.score_budget / (4 * p.query_group);
  if (rows < s.min_chunk_rows) rows = s.min_chunk_rows;
  p.chunk_rows = s.n < rows ? s.n : rows;
  p.chunks = p.chunk_rows > 0 ? (s.n + p.chunk_rows - 1) / p.chunk_rows : 0;
  p.seg1 = select_segment(p.chunk_rows, p.query_group, s);
  p.segs_per_chunk = p.chunk_rows > 0 ? (p.chunk_rows + p.seg1 - 1) / p.seg1 : 0;
  p.level1_len = p.chunks * p.segs_per_chunk * s.k;
  if (p.level1_len < s.k) p.level1_len = s.k;
  p.score_elems = p.query_group * (p.chunk_rows > 0 ? p.chunk_rows : 1);
  p.key_elems = p.query_group * p.level1_len;
  return p;
}

/// Query groups of up to max_query_group queries, halved while the candidate keys of a group
/// (k per level-1 segment of every chunk) exceed key_budget: e.g. 1e9 rows, k = 100 and 2048
/// queries would need 2 x 62 GB; one query at a time needs < 0.2 GB for any n and k.
inline TopkPlan plan_topk(const TopkShape& s) {
  std::int64_t group = s.nq < s.max_query_group ? s.nq : s.max_query_group;
  for (;;) {
    const TopkPlan p = plan_topk_group(s, group);
    if (p.query_group <= 1 || p.key_elems * 8 <= s.key_budget) return p;
    group = (group + 1) / 2;
  }
}

/// Runs the schedule. Exec (the GPU, or the emulator) provides, each returning true on success:
///   zero_keys(keys, count)                          keys[0..count) = 0
///   score(q0, nqg, row0, rows, scores, ld)          scores[j * ld + i] = score(row row0 + i, query q0 + j)
///   select(args, segments, nqg)                     the select grid
///   finish(keys, stride, q0, nqg)                   answer of queries q0.. from keys[j * stride ...]
template <class Exec>
bool run_topk(Exec& ex, const TopkShape& s, const TopkPlan& p, std::int32_t* scores, std::uint64_t* keys_a,
              std::uint64_t* keys_b) {
  for (std::int64_t q0 = 0; q0 < s.nq; q0 += p.query_group) {
    const std::int64_t nqg = s.nq - q0 < p.query_group ? s.nq - q0 : p.query_group;
    if (!ex.zero_keys(keys_a, nqg * p.level1_len)) return false;
    for (std::int64_t c = 0; c < p.chunks; ++c) {
      const std::int64_t row0 = c * p.chunk_rows;
      const std::int64_t rows = s.n - row0 < p.chunk_rows ? s.n - row0 : p.chunk_rows;
      if (!ex.score(q0, nqg, row0, rows, scores, p.chunk_rows)) return false;
      const SelectArgs a{
          scores, nullptr,      p.chunk_rows,        rows, p.seg1, static_cast<std::uint32_t>(row0), s.k,
          keys_a, p.level1_len, c * p.segs_per_chunk};
      if (!ex.select(a, (rows + p.seg1 - 1) / p.seg1, nqg)) return false;
    }
    std::uint64_t* cur = keys_a;
    std::uint64_t* other = keys_b;
    std::int64_t len = p.level1_len;
    std::int64_t segs = p.chunks * p.segs_per_chunk;
    while (segs > 1) {
      const std::int64_t seg = select_segment(len, nqg, s);
      const std::int64_t next = (len + seg - 1) / seg;
      const SelectArgs a{nullptr, cur, len, len, seg, 0, s.k, other, next * s.k, 0};
      if (!ex.select(a, next, nqg)) return false;
      std::uint64_t* t = cur;
      cur = other;
      other = t;
      len = next * s.k;
      segs = next;
    }
    if (!ex.finish(cur, len, q0, nqg)) return false;
  }
  return true;
}

// ---- Hamming kNN with a bound (the filtered schedule) ---------------------------------------------
// run_topk writes every distance of a chunk to the score matrix and reads it back to select: 8 bytes
// of traffic per (row, query), 82 GB for 1024 queries over 10M codes, against 8 popcounts of compute
// for a 256-bit distance. The filtered schedule writes almost nothing:
// 1. the plain top-k over a sample (the first `sample` rows) gives each query a bound, its k-th
//    distance there, which is >= its k-th distance over all rows;
// 2. one pass over every row appends, per query, the key of each row within the query's bound to a
//    buffer of `cap` keys (a counter per query counts them all, kept or not);
// 3. select rounds over each query's buffer, as run_topk's.
// Every row of the answer is within the bound (its distance is <= the true k-th), so every one is a
// candidate, and the k best candidates are the answer. A query whose candidates outgrow the buffer
// (crowds of rows at or under its bound, e.g. many duplicates) is scored again by run_topk.
// Expected candidates: about k * n / sample plus ties at the bound; the sample is sized so that this
// is cap / 4.

struct KnnFilterShape {
  std::int64_t n = 0;
  std::int64_t nq = 0;
  std::int32_t k = 1;
  std::int64_t cap_budget = 256ll << 20;  ///< bytes of a query group's candidate buffer
  std::int64_t max_cap = 65536;           ///< candidate keys per query at most (a power of two)
  std::int64_t min_sample = 65536;        ///< sample rows at least (a tighter bound than k rows give)
  std::int64_t max_query_group = 2048;
};

struct KnnFilterPlan {
  bool filtered = false;         ///< false: run_topk over every row is cheaper (small n, large k)
  std::int64_t sample = 0;       ///< rows of the bound's top-k
  std::int64_t cap = 0;          ///< candidate keys per query
  std::int64_t query_group = 0;  ///< queries per filter pass
  std::int64_t key_elems = 0;    ///< uint64 elements each select buffer needs
};

inline KnnFilterPlan plan_knn_filter(const KnnFilterShape& s) {
  KnnFilterPlan p;
  p.query_group = s.nq < s.max_query_group ? s.nq : s.max_query_group;
  if (p.query_group < 1) p.query_group = 1;
  p.cap = s.max_cap;
  while (p.cap > 1 && p.cap * 8 * p.query_group > s.cap_budget) p.cap /= 2;
  const std::int64_t k = s.k;
  std::int64_t sample = (4 * k * s.n + p.cap - 1) / p.cap;
  if (sample < s.min_sample) sample = s.min_sample;
  if (sample < k) sample = k;
  p.sample = sample < s.n ? sample : s.n;
  // Worth it when the sample is a small part of the rows (and holds k of them) and the buffer
  // holds several k. Never for an empty base: there is nothing to filter (and no grid to launch).
  p.filtered = s.nq > 0 && s.n > 0 && p.sample >= k && p.cap >= 4 * k && 4 * p.sample <= s.n;
  // The first select over a buffer of cap keys makes at most cap / kSelectMinSegment segments.
  const std::int64_t segs = (p.cap + kSelectMinSegment - 1) / kSelectMinSegment;
  p.key_elems = p.query_group * (segs > 1 ? segs : 1) * k;
  return p;
}

/// Filter pass, one thread per row (rows dealt to warps of 32 consecutive rows), each of a block's
/// queries in turn: is `row` a candidate of query q (distance <= bound)? dist gets the distance.
MMCORE_HD inline bool knn_candidate(const std::uint64_t* row, const std::uint64_t* q, std::int32_t words,
                                    std::int32_t bound, std::int32_t* dist) {
  const std::int32_t d = -binary_score(row, q, words);
  *dist = d;
  return d <= bound;
}

/// The bound of query q: its k-th distance over the sample, from the sample's top-k outputs.
MMCORE_HD inline std::int32_t knn_bound(const std::int32_t* dist_out, std::int64_t q, std::int32_t k) {
  return dist_out[q * k + k - 1];
}

// The filter pass on the int8 tensor cores (sm_80+, codes of 1 to 4 words; cuda/hamming.cu's
// knn_mma_scan_kernel). Bits are expanded to bytes of 0 / 1, four at a time (bit j of a nibble to
// byte j: one multiply and a mask), so that mma.sync m16n8k32 (s8 queries x u8 rows, int32) counts
// popcount(q AND r) over 32 bits per k-step, and a distance is popcount(q) + popcount(r) - 2 x that:
// exact integers, the POPC kernel's distances. Lane (g, t) takes bits 4t..4t+3 and 16+4t..16+4t+3 of
// each 32-bit word for both operands (the k positions m16n8k32's fragments give it: any assignment
// of bits to k works when A and B share it). A block is kKnnMmaWarps warps, each with 32 queries
// (two m-tiles) whose A fragments stay in registers; the block stages tiles of kKnnMmaRows rows (their
// words and popcounts) in shared memory, and each warp scores them 8 rows (an n-tile) at a time.
constexpr int kKnnMmaWarps = 8;
constexpr int kKnnMmaRows = 64;
constexpr int kKnnMmaQueries = 32 * kKnnMmaWarps;  ///< queries per block

/// Whether the filter pass of a query group runs on the tensor cores: an sm_80+ device, not turned
/// off, codes of at most 4 words (the A fragments in registers), and a warp's 32 queries at least
/// (fewer leave most of each instruction's products unused; the POPC pass reads the rows once too).
MMCORE_HD inline bool knn_mma_usable(bool tensor_cores, bool enabled, std::int32_t words, std::int64_t nqg) {
  return tensor_cores && enabled && words <= 4 && nqg >= 32;
}

#if defined(__CUDACC__)
/// One mma.sync m16n8k32, s8 A x u8 B, s32 accumulators, for one lane (sm_80 and later; the callers
/// take their tensor-core kernels only there): the int8 search (queries x code rows), the Hamming
/// scans (bits expanded to bytes) and kernel_check's probe. The emulator runs the whole warp's
/// instruction instead (mma_m16n8k32_warp).
__device__ __forceinline__ void mma_s8u8(std::int32_t (&d)[4], const std::uint32_t (&a)[4],
                                         const std::uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.u8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();
#endif
}
#endif

/// Bits 0..3 of n to bytes 0..3 (each 0 or 1).
MMCORE_HD inline std::uint32_t nibble_bytes(std::uint32_t n) {
  return ((n & 0xFu) * 0x00204081u) & 0x01010101u;
}

/// Shared-memory words per staged row (2 x words 32-bit words, plus one: rows g = 0..7 of an n-tile
/// then fall in different banks).
MMCORE_HD inline int knn_mma_stride(int words) {
  return 2 * words + 1;
}

/// Lane's A fragment of m-tile m, k-step k (32-bit word k of each query): queries q0 + 16 m + g and
/// + 8 (of nq; past it zero), as 32-bit words `qw` (2 x words per query).
MMCORE_HD inline void knn_mma_a(const std::uint32_t* qw, int words, std::int64_t q0, std::int64_t nq, int m,
                                int k, int lane, std::uint32_t (&a)[4]) {
  const int g = lane >> 2, t = lane & 3;
  const std::int64_t qa = q0 + 16 * m + g, qb = qa + 8;
  const std::uint32_t lo = qa < nq ? qw[qa * 2 * words + k] : 0u;
  const std::uint32_t hi = qb < nq ? qw[qb * 2 * words + k] : 0u;
  a[0] = nibble_bytes(lo >> (4 * t));
  a[1] = nibble_bytes(hi >> (4 * t));
  a[2] = nibble_bytes(lo >> (16 + 4 * t));
  a[3] = nibble_bytes(hi >> (16 + 4 * t));
}

/// Lane's B fragment of n-tile nt, k-step k, from the staged rows (knn_mma_stride words each).
MMCORE_HD inline void knn_mma_b(const std::uint32_t* tile, int words, int nt, int k, int lane,
                                std::uint32_t (&b)[2]) {
  const int g = lane >> 2, t = lane & 3;
  const std::uint32_t w = tile[(8 * nt + g) * knn_mma_stride(words) + k];
  b[0] = nibble_bytes(w >> (4 * t));
  b[1] = nibble_bytes(w >> (16 + 4 * t));
}

/// Row `i` (< kKnnMmaRows) of the tile starting at row0: its words (zeros past n), loaded ahead of
/// their store (the device loads the next tile's while it scores the current one).
MMCORE_HD inline void knn_mma_load(const std::uint64_t* codes, std::int64_t n, int words, std::int64_t row0,
                                   int i, std::uint64_t (&v)[4]) {
  const std::int64_t r = row0 + i;
  for (int w = 0; w < 4; ++w) v[w] = r < n && w < words ? codes[r * words + w] : 0u;
}

/// Stores a loaded row as row `i` of the staged tile: its words and, in the slot after them, its
/// popcount.
MMCORE_HD inline void knn_mma_store(const std::uint64_t (&v)[4], int words, int i, std::uint32_t* tile) {
  std::uint32_t* dst = tile + i * knn_mma_stride(words);
  std::int32_t pop = 0;
  for (int w = 0; w < words; ++w) {
    dst[2 * w] = static_cast<std::uint32_t>(v[w]);
    dst[2 * w + 1] = static_cast<std::uint32_t>(v[w] >> 32);
    pop += popcount64(v[w]);
  }
  dst[2 * words] = static_cast<std::uint32_t>(pop);
}

/// The self-join's first tile for a block whose first row a is `a_first`: tiles before it hold only
/// rows b < a_first, never a pair's b > a.
MMCORE_HD inline std::int64_t tc_join_first_tile(std::int64_t a_first) {
  return a_first / kKnnMmaRows;
}

/// Whether the self-join keeps the pair (a, b) at distance d: each pair once (b > a), within r.
MMCORE_HD inline bool tc_join_keeps(std::int64_t a, std::int64_t b, std::int32_t d, std::int32_t r) {
  return b > a && d <= r;
}

/// Whether radius search's brute force runs on the tensor cores: as the kNN pass (32 queries or
/// more), with fewer than 2^23 queries (the result keys' query bits) and a non-empty base.
MMCORE_HD inline bool tc_radius_usable(bool tensor_cores, bool enabled, std::int32_t words, std::int64_t nq,
                                       std::int64_t n) {
  return knn_mma_usable(tensor_cores, enabled, words, nq) && nq < (std::int64_t{1} << 23) && n > 0;
}

/// Set bits of a code of `words` words.
MMCORE_HD inline std::int32_t knn_popcount(const std::uint64_t* code, int words) {
  std::int32_t pop = 0;
  for (int w = 0; w < words; ++w) pop += popcount64(code[w]);
  return pop;
}

/// The distance from a query and a row's popcounts and their AND count (the tensor cores' sum).
MMCORE_HD inline std::int32_t knn_mma_distance(std::int32_t pq, std::int32_t pr, std::int32_t dot) {
  return pq + pr - 2 * dot;
}

/// Accumulator j of a lane's m-tile m for n-tile nt: its query (relative to the block's q0) and row
/// (relative to the tile), as m16n8k32 lays out C: rows g and g + 8, columns 2t and 2t + 1.
MMCORE_HD inline int knn_mma_query(int warp, int m, int j, int lane) {
  return 32 * warp + 16 * m + (lane >> 2) + 8 * (j >> 1);
}
MMCORE_HD inline int knn_mma_row(int nt, int j, int lane) {
  return 8 * nt + 2 * (lane & 3) + (j & 1);
}

/// Runs the filtered schedule (plan.filtered). Exec provides run_topk's select and finish, and:
///   zero_keys(keys, count)           keys[0..count) = 0
///   sample_topk(rows)                run_topk over rows [0, rows) for every query, into the outputs
///   buffers(&cand, &keys_a, &keys_b) the candidate buffer (query_group * cap keys) and two select
///                                    buffers (key_elems each), sized after the sample's top-k
///   zero_counts(nqg)                 the group's candidate counters = 0
///   filter(q0, nqg, cand, cap)       step 2 for queries q0.. (bounds from the outputs' k-th column),
///                                    query j's keys at cand + j * cap
///   overflowed(q0, nqg, cap, redo)   appends to *redo the queries (absolute) counted over cap
///   rescore(redo)                    run_topk over every row for those queries, into the outputs
template <class Exec, class IndexList>
bool run_knn_filtered(Exec& ex, const TopkShape& s, const KnnFilterPlan& p, IndexList* redo) {
  std::uint64_t* cand = nullptr;
  std::uint64_t* keys_a = nullptr;
  std::uint64_t* keys_b = nullptr;
  if (!ex.sample_topk(p.sample) || !ex.buffers(&cand, &keys_a, &keys_b)) return false;
  for (std::int64_t q0 = 0; q0 < s.nq; q0 += p.query_group) {
    const std::int64_t nqg = s.nq - q0 < p.query_group ? s.nq - q0 : p.query_group;
    if (!ex.zero_keys(cand, nqg * p.cap) || !ex.zero_counts(nqg) || !ex.filter(q0, nqg, cand, p.cap))
      return false;
    // The first round reads the candidates, the next ones alternate between keys_a and keys_b.
    std::uint64_t* in = cand;
    std::uint64_t* out = keys_a;
    std::uint64_t* other = keys_b;
    std::int64_t len = p.cap;
    for (;;) {
      const std::int64_t seg = select_segment(len, nqg, s);
      const std::int64_t next = (len + seg - 1) / seg;
      const SelectArgs a{nullptr, in, len, len, seg, 0, s.k, out, next * s.k, 0};
      if (!ex.select(a, next, nqg)) return false;
      in = out;
      out = other;
      other = in;
      len = next * s.k;
      if (next == 1) break;
    }
    if (!ex.finish(in, len, q0, nqg)) return false;
    if (!ex.overflowed(q0, nqg, p.cap, redo)) return false;
  }
  return redo->empty() || ex.rescore(*redo);
}

/// Why a SearchGpu call's arguments are refused (nullptr: accepted). `width` is d (int8, 1..65536)
/// or words (binary, 1..4096); k is checked too unless k_checked is false (int8_scores).
inline const char* search_args_problem(bool binary, const void* codes, std::int64_t n, std::int32_t width,
                                       const void* queries, std::int64_t nq, std::int32_t k, bool k_checked,
                                       const void* out, const void* out2) {
  if (n < 0 || nq < 0) return "negative n or nq";
  if (n > kSearchMaxRows) return "more rows than 4294967294";
  if (binary && (width < 1 || width > 4096)) return "words outside 1..4096";
  if (!binary && (width < 1 || width > 65536)) return "d outside 1..65536";
  if (k_checked && (k < 1 || k > kSearchMaxK)) return "k outside 1..1024";
  if ((n > 0 && codes == nullptr) || (nq > 0 && (queries == nullptr || out == nullptr || out2 == nullptr)))
    return "null buffer";
  // Binary codes are read as 64-bit words: a misaligned load would be a sticky CUDA error that
  // spoils the whole context.
  if (binary && (reinterpret_cast<std::uintptr_t>(codes) % 8 != 0 ||
                 reinterpret_cast<std::uintptr_t>(queries) % 8 != 0))
    return "codes or queries not 8-byte aligned";
  return nullptr;
}

/// Why a hamming_join (join: the codes against themselves; queries, nq and lims ignored) or
/// hamming_radius call is refused (nullptr: accepted). a, b, dist are the outputs, needed when
/// capacity > 0 (a: the join's first rows).
inline const char* pairs_args_problem(bool join, const void* codes, std::int64_t n, std::int32_t words,
                                      const void* queries, std::int64_t nq, std::int32_t r, const void* lims,
                                      const void* a, const void* b, const void* dist, std::int64_t capacity,
                                      const void* count) {
  const char* problem = search_args_problem(true, codes, n, words, join ? codes : queries, join ? 0 : nq, 1,
                                            false, join ? count : lims, count);
  if (problem != nullptr) return problem;
  if (r < 0) return "negative radius";
  if (join && n > 0x7FFFFFFF) return "more than 2^31 - 1 rows";
  if (count == nullptr || (!join && lims == nullptr)) return "null lims or count";
  if (capacity > 0 && ((join && a == nullptr) || b == nullptr || dist == nullptr)) return "null output";
  return nullptr;
}

/// Why a join's method is refused (nullptr: accepted): 0 auto, 1 brute force, 2 multi-index
/// hashing (codes of at most 4 words, as on the CPU).
inline const char* join_method_problem(std::int32_t words, int method) {
  if (method < 0 || method > 2) return "method must be auto, brute or mih";
  if (method == 2 && words > 4) return "multi-index hashing takes codes of at most 256 bits";
  return nullptr;
}

/// The answer from a key: int8 (score, or INT32_MIN padding) or binary (distance, or INT32_MAX).
MMCORE_HD inline std::int32_t key_output(std::uint64_t key, bool binary) {
  if (key == 0) return binary ? 2147483647 : (-2147483647 - 1);
  return binary ? -key_score(key) : key_score(key);
}

}  // namespace mmcore::gpu_detail
