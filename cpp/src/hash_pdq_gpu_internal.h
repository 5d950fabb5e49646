// PDQ (reference mode) on the GPU, as __host__ __device__ phases that the CPU can run too
// (tests/gpu/kernel_emulator.h), like hash_gpu_internal.h does for the 64-bit kinds.
//
// The arithmetic is hash_pdq.cpp's, operation for operation and in the same order per output:
// the reference squash to 512x512 (nearest, integer indices), float32 luma
// (0.299f R + 0.587f G) + 0.114f B, the two Jarosz passes of [rows, columns] running-sum boxes
// (add the entering sample, subtract the leaving one, divide by the count), decimation at cell
// centres with double indices, the quality metric, T = D A and B = T D^T with one float
// accumulator per output, k ascending, and the 128th smallest coefficient as threshold. Every
// float operation is spelled as a correctly rounded intrinsic on the device (nvcc never fuses
// those into FMAs), and as the plain operator on the host, where hash_pdq.cpp is built without
// FMA. Integer sums (the quality) are split across threads: integer addition is associative.
// The DCT matrix is the CPU's (detail::pdq_dct_matrix), uploaded.
//
// Blocks stay resident and take images in turn (an atomic counter; as many blocks as the device
// holds at once, fewer when their scratch would pass the cap): each block owns one scratch slot
// (the largest image's two float buffers), reused image after image, so a batch is one launch with
// no tail of part-empty waves between chunks. Per image, phases separated by a block barrier:
//   0 luma         the decimation's 64 rows and 64 columns into shared memory; luma of the
//                  (squashed) image into scratch buf1 (column-major; layouts 1 and 2 compute it in
//                  pass 1 instead; layout 3 only its first band's, into shared memory), or straight
//                  into the 64x64 buffer for a 64x64 image (no blur, as the reference)
//   1, 2 blur      box rows (a thread per row), box columns (a thread per column); the layouts
//                  alternate so that each pass reads coalesced (see pdq_phase_rows)
//   3, 4 blur      the second pass, computing only what the decimation reads: box rows, each
//                  row's running sum walked in full but only the 64 decimation columns stored
//                  (64 x rows); box columns of those 64 -> the shared 64x64 buffer, only the 64
//                  decimation rows stored. The stored values are the full pass's, bit for bit:
//                  each is the same chain of float operations. Phase 4 also loads D into shared
//                  memory (layout 2's ring uses that space until then).
//                  Layout 2 runs phases 1-3 as sub-steps, a block barrier after each (pdq_ring_step).
//                  Layout 3 runs all four passes in phase 1, band by band in shared memory
//                  (pdq_phase_stream); its phases 2 and 3 do nothing, and phase 4 only loads D.
//   5 dct a        T = D A (a thread per output); quality partial sums (a thread per share)
//   6 dct b        B = T D^T (a thread per output)
//   7 median       the coefficient of rank 127 (every thread ranks its coefficients); quality
//   8 bits         16 threads, a row of bits each
#pragma once

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "hash_gpu_internal.h"
#include "hd_internal.h"
#include "mmcore/hash.h"
#include "mmcore/hash_gpu.h"

namespace mmcore::gpu_detail {

constexpr int kPdqPhases = 9;
constexpr int kPdqGrid = 64;
constexpr int kPdqDct = 16;
constexpr std::int32_t kPdqSquash = 512;

// Correctly rounded float32 operations that no compiler may fuse.
MMCORE_HD inline float f_add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
MMCORE_HD inline float f_sub(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
MMCORE_HD inline float f_mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
MMCORE_HD inline float f_div(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}

/// How a block makes its PDQ.
enum PdqMode : std::int32_t {
  kPdqZero = 0,    ///< invalid record, or under 5 px on a side: all-zero hash, quality 0
  kPdqDirect = 1,  ///< exactly 64x64: luma is the 64x64 buffer, no blur
  kPdqBlur = 2,    ///< luma, two Jarosz passes, decimation
};

struct PdqPlan {
  std::int64_t offset;
  std::int64_t stride;
  std::int32_t width;  ///< the source's size
  std::int32_t height;
  std::int32_t channels;
  std::int32_t mode;
  std::int32_t cols;  ///< the hashed size: the source's, or 512x512 when squashed
  std::int32_t rows;
  std::int32_t squash;
  std::int32_t reserved;
};

constexpr int kPdqChunk = 8;  ///< layout 2: samples of each line one sub-step loads
/// Layout 2's ring, floats per line: three chunks (the one loading, the one walked, the one before
/// it, which holds the leaving samples: window <= 4 <= kPdqChunk) and the walk's running sum.
/// Odd, so that 32 threads reading their own lines at one position hit 32 banks.
constexpr int kPdqRingStride = 3 * kPdqChunk + 1;

struct PdqDctBuffers {
  float d[kPdqDct * kPdqGrid];   ///< the DCT matrix, row-major 16 x 64
  float a[kPdqGrid * kPdqGrid];  ///< the 64x64 buffer
  float t[kPdqDct * kPdqGrid];   ///< D A
  float b[kPdqDct * kPdqDct];    ///< D A D^T
};

struct PdqShared {
  union {
    PdqDctBuffers m;                        ///< phase 0 (a, for a 64x64 image), phases 4-8
    float ring[kThreads * kPdqRingStride];  ///< layout 2's blur, phases 1-3: a line per thread
  };
  std::int32_t quality_part[kThreads];  ///< per-thread shares of the quality sum (nthreads <= kThreads)
  float median;                         ///< the 128th smallest coefficient
  std::int32_t pick_rows[kPdqGrid];     ///< the decimation's rows (cell centres)
  std::int32_t pick_cols[kPdqGrid];     ///< and columns
};

static_assert(sizeof(PdqDctBuffers) >= sizeof(float) * kThreads * kPdqRingStride,
              "layout 2's ring shares the DCT buffers' shared memory, which the blur does not use");

/// The blur's buffer layouts (see pdq_phase_rows).
enum PdqLayout : std::int32_t {
  kPdqLayoutReads = 0,   ///< coalesced reads, luma in a buffer of its own
  kPdqLayoutWrites = 1,  ///< coalesced writes, luma computed in the row pass
  kPdqLayoutRing = 2,    ///< lines staged through shared memory in chunks (pdq_ring_step)
  kPdqLayoutStream = 3,  ///< the whole blur in shared memory, a band of rows at a time (pdq_phase_stream)
};

constexpr int kPdqBand = 8;                   ///< layout 3: rows per band
constexpr int kPdqStreamRing = kPdqBand + 4;  ///< layout 3's ring rows: a band and the widest window (4)

/// Layout 3's row stride in shared memory: odd, so that the threads of a row pass, each on its
/// own row at the same column, hit distinct banks (a stride of 512 or 64 would put them all on one).
MMCORE_HD constexpr std::int32_t pdq_stream_stride(std::int32_t cols) {
  return cols | 1;
}

/// Layout 3's buffers, in a block's dynamic shared memory (63 KB; no global scratch). Rows of
/// each pass's output live only as long as the passes after it need them.
struct PdqStream {
  /// luma of the next band's rows (pass 1's input), row y at y % kPdqBand
  float luma[kPdqBand * pdq_stream_stride(kPdqSquash)];
  /// pass 1 (box rows) output, row y at y % kPdqStreamRing
  float p1[kPdqStreamRing * pdq_stream_stride(kPdqSquash)];
  float p2[kPdqBand * pdq_stream_stride(kPdqSquash)];  ///< pass 2 (box columns) output, row y at y % kPdqBand
  /// pass 3 output (the 64 decimation columns), row y at y % kPdqStreamRing
  float p3[kPdqStreamRing * pdq_stream_stride(kPdqGrid)];
  float sum2[kPdqSquash];  ///< pass 2's running sum of each column between bands
  float sum4[kPdqGrid];    ///< pass 4's, of each decimation column
};

struct PdqArgs {
  const std::uint8_t* pixels;
  const PdqPlan* plan;
  const float* dct;       ///< 1024 floats
  std::uint8_t* scratch;  ///< the block's slot: buf1 (rows x cols floats), then buf2 (rows x max(cols, 64))
  std::uint8_t* out;      ///< 32 bytes per image, at out + 32 * row
  std::int32_t* quality;
  std::int64_t row;
  std::int32_t layout;          ///< PdqLayout
  PdqStream* stream = nullptr;  ///< layout 3's shared memory
};

/// Luma of pixel (x, y) of the hashed image: the squash picks the source pixel first.
MMCORE_HD inline float pdq_luma(const PdqPlan& p, const std::uint8_t* pixels, std::int32_t x,
                                std::int32_t y) {
  if (p.squash) {
    x = static_cast<std::int32_t>(static_cast<std::int64_t>(x) * p.width / kPdqSquash);
    y = static_cast<std::int32_t>(static_cast<std::int64_t>(y) * p.height / kPdqSquash);
  }
  const std::uint8_t* q = pixels + p.offset + p.stride * y + static_cast<std::int64_t>(x) * p.channels;
  if (p.channels == 1) return static_cast<float>(q[0]);
  return f_add(f_add(f_mul(0.299f, static_cast<float>(q[0])), f_mul(0.587f, static_cast<float>(q[1]))),
               f_mul(0.114f, static_cast<float>(q[2])));
}

/// One line of the reference's box filter (box1D): `len` samples, summed in its order; output oi is handed to
/// emit(oi, value) with `value()` computing it (the division), so that an emitter may skip the outputs it
/// does not keep. `in(i)` is sample i (a strided buffer read, or luma computed from the pixels).
template <class In, class Emit>
MMCORE_HD inline void pdq_box_walk(In&& in, std::int32_t len, int window, Emit&& emit) {
  const int half = (window + 2) / 2;
  const int accumulate = half - 1, grow = window - half + 1, full = len - window, shrink = half - 1;
  float sum = 0.0f;
  std::int64_t li = 0, ri = 0;
  std::int32_t oi = 0;
  int count = 0;
  for (int t = 0; t < accumulate; ++t, ++ri, ++count) sum = f_add(sum, in(ri));
  for (int t = 0; t < grow; ++t, ++ri, ++oi) {
    ++count;
    sum = f_add(sum, in(ri));
    emit(oi, [&] { return f_div(sum, static_cast<float>(count)); });
  }
  const float n = static_cast<float>(count);
  // A power-of-two count divides as a multiply by its exact inverse: the same correctly rounded
  // value (pdq_box_divides_by_inverse, as on the CPU).
  const bool by_inverse = (count & (count - 1)) == 0;
  const float inverse = 1.0f / n;
  // Four steps' samples are loaded before their sums: the output buffer is another buffer, but
  // the compiler cannot know that, so without this each load would wait for the previous step's
  // store (a serial chain of memory round trips). The sums are the same chain of operations.
  int t = 0;
  for (; t + 4 <= full; t += 4) {
    float enter[4], leave[4];
    for (int u = 0; u < 4; ++u) {
      enter[u] = in(ri + u);
      leave[u] = in(li + u);
    }
    for (int u = 0; u < 4; ++u, ++li, ++ri, ++oi) {
      sum = f_add(sum, enter[u]);
      sum = f_sub(sum, leave[u]);
      emit(oi, [&] { return by_inverse ? f_mul(sum, inverse) : f_div(sum, n); });
    }
  }
  for (; t < full; ++t, ++li, ++ri, ++oi) {
    sum = f_add(sum, in(ri));
    sum = f_sub(sum, in(li));
    emit(oi, [&] { return by_inverse ? f_mul(sum, inverse) : f_div(sum, n); });
  }
  for (int t = 0; t < shrink; ++t, ++li, ++oi) {
    --count;
    sum = f_sub(sum, in(li));
    emit(oi, [&] { return f_div(sum, static_cast<float>(count)); });
  }
}

/// A line of a scratch buffer: samples `step` apart (read as the box walk's input, or written).
struct PdqStrided {
  float* p;
  std::int64_t step;
  MMCORE_HD float operator()(std::int64_t i) const { return p[i * step]; }
};

/// The whole line, written `out_step` apart.
template <class In>
MMCORE_HD inline void pdq_box_line(In&& in, float* out, std::int64_t out_step, std::int32_t len, int window) {
  pdq_box_walk(in, len, window, [&](std::int32_t oi, auto value) { out[oi * out_step] = value(); });
}

/// Only the outputs at positions pick[0..64) (non-decreasing; a position picked twice is stored
/// twice), output p at out[p * out_step].
MMCORE_HD inline void pdq_box_line_pick(const float* in, std::int64_t step, std::int32_t len, int window,
                                        const std::int32_t* pick, float* out, std::int64_t out_step) {
  int p = 0;
  pdq_box_walk([&](std::int64_t i) { return in[i * step]; }, len, window,
               [&](std::int32_t oi, auto value) {
                 if (p >= kPdqGrid || pick[p] != oi) return;
                 const float v = value();
                 for (; p < kPdqGrid && pick[p] == oi; ++p) out[p * out_step] = v;
               });
}

MMCORE_HD inline float* pdq_buf(const PdqArgs& a, int which) {
  const PdqPlan& p = *a.plan;
  return reinterpret_cast<float*>(a.scratch) + (which == 0 ? 0 : static_cast<std::int64_t>(p.rows) * p.cols);
}

MMCORE_HD inline std::int32_t pdq_cell(int i, std::int32_t size);
MMCORE_HD inline void pdq_stream_luma(const PdqArgs& a, std::int32_t k, int tid, int nthreads);

MMCORE_HD inline void pdq_phase_luma(const PdqArgs& a, PdqShared& sh, int tid, int nthreads) {
  const PdqPlan& p = *a.plan;
  for (int k = tid; k < kPdqGrid; k += nthreads) {
    sh.pick_rows[k] = pdq_cell(k, p.rows);
    sh.pick_cols[k] = pdq_cell(k, p.cols);
  }
  // The 64x64 buffer row-major; buf1 column-major, so that pass 1's row walks read it coalesced.
  // Layouts 1 and 2 compute luma in pass 1 itself (only the 64x64 image is written here).
  const bool direct = p.mode == kPdqDirect;
  if (!direct && a.layout == kPdqLayoutStream) {
    pdq_stream_luma(a, 0, tid, nthreads);  // band 0's; part 1 of each band makes the next one's
    return;
  }
  if (!direct && a.layout != kPdqLayoutReads) return;
  float* dst = direct ? sh.m.a : pdq_buf(a, 0);
  // 32-bit indices (rows x cols <= 512 x 512): a 64-bit division is a long call on a GPU.
  const std::int32_t n = p.rows * p.cols;
  for (std::int32_t j = tid; j < n; j += nthreads) {
    const std::int32_t y = j / p.cols, x = j - y * p.cols;
    dst[direct ? j : x * p.rows + y] = pdq_luma(p, a.pixels, x, y);
  }
}

// The blur's layouts (one thread per line: each line's chain of float operations is the
// reference's). Layout 0 (kPdqLayoutReads): every pass reads with its threads side by side in
// memory, so its reads are coalesced; writes go where the next pass reads from.
//   pass 1, rows:            buf1 column-major -> buf2 row-major
//   pass 2, columns:         buf2 row-major -> buf1 column-major
//   pass 3, rows, picked:    buf1 column-major -> buf2 as 64 x rows (the decimation's columns)
//   pass 4, columns, picked: buf2 (64 x rows) -> the 64x64 buffer (the decimation's rows)
// Layout 1 (kPdqLayoutWrites): writes side by side (coalesced), each thread reading its own line
// in order (a cache line serves it 32 steps); pass 1 computes luma from the pixels itself, so no
// luma buffer is written or read.
//   pass 1, rows:            pixels -> buf2 column-major
//   pass 2, columns:         buf2 column-major -> buf1 row-major
//   pass 3, rows, picked:    buf1 row-major -> buf2 as 64 x rows
//   pass 4:                  as layout 0

/// Line `line` of full-size buffer `which` (0: buf1, 1: buf2) as a strided view: a row (along
/// x) or a column (along y). buf1 is column-major in layout 0 and row-major in layout 1; buf2 the
/// other way round.
MMCORE_HD inline PdqStrided pdq_line(const PdqArgs& a, int which, std::int32_t line, bool row) {
  const PdqPlan& p = *a.plan;
  const bool column_major = (which == 0) == (a.layout == kPdqLayoutReads);
  const std::int64_t l = line;
  if (row)
    return column_major ? PdqStrided{pdq_buf(a, which) + l, p.rows}
                        : PdqStrided{pdq_buf(a, which) + l * p.cols, 1};
  return column_major ? PdqStrided{pdq_buf(a, which) + l * p.rows, 1}
                      : PdqStrided{pdq_buf(a, which) + l, p.cols};
}

MMCORE_HD inline void pdq_phase_rows(const PdqArgs& a, int tid, int nthreads) {
  const PdqPlan& p = *a.plan;
  if (p.mode != kPdqBlur) return;
  const int window = (p.cols + 2 * kPdqGrid - 1) / (2 * kPdqGrid);
  for (std::int32_t r = tid; r < p.rows; r += nthreads) {
    const PdqStrided out = pdq_line(a, 1, r, true);
    if (a.layout == kPdqLayoutWrites) {
      const auto luma = [&](std::int64_t x) {
        return pdq_luma(p, a.pixels, static_cast<std::int32_t>(x), r);
      };
      pdq_box_line(luma, out.p, out.step, p.cols, window);
    } else {
      pdq_box_line(pdq_line(a, 0, r, true), out.p, out.step, p.cols, window);
    }
  }
}

MMCORE_HD inline void pdq_phase_cols(const PdqArgs& a, int tid, int nthreads) {
  const PdqPlan& p = *a.plan;
  if (p.mode != kPdqBlur) return;
  const int window = (p.rows + 2 * kPdqGrid - 1) / (2 * kPdqGrid);
  for (std::int32_t c = tid; c < p.cols; c += nthreads) {
    const PdqStrided out = pdq_line(a, 0, c, false);
    pdq_box_line(pdq_line(a, 1, c, false), out.p, out.step, p.rows, window);
  }
}

MMCORE_HD inline void pdq_phase_rows_picked(const PdqArgs& a, const PdqShared& sh, int tid, int nthreads) {
  const PdqPlan& p = *a.plan;
  if (p.mode != kPdqBlur) return;
  const int window = (p.cols + 2 * kPdqGrid - 1) / (2 * kPdqGrid);
  float* out = pdq_buf(a, 1);
  for (std::int32_t r = tid; r < p.rows; r += nthreads) {
    const PdqStrided in = pdq_line(a, 0, r, true);
    pdq_box_line_pick(in.p, in.step, p.cols, window, sh.pick_cols, out + r, p.rows);
  }
}

MMCORE_HD inline void pdq_phase_cols_picked(const PdqArgs& a, PdqShared& sh, int tid, int nthreads) {
  const PdqPlan& p = *a.plan;
  // The DCT matrix for phases 5-6, loaded here because layout 2's ring held its place until now.
  for (int k = tid; k < kPdqDct * kPdqGrid; k += nthreads) sh.m.d[k] = a.dct[k];
  if (p.mode != kPdqBlur || a.layout == kPdqLayoutStream) return;  // layout 3 did it in phase 1
  const int window = (p.rows + 2 * kPdqGrid - 1) / (2 * kPdqGrid);
  const float* in = pdq_buf(a, 1);
  for (int c = tid; c < kPdqGrid; c += nthreads)
    pdq_box_line_pick(in + static_cast<std::int64_t>(c) * p.rows, 1, p.rows, window, sh.pick_rows, sh.m.a + c,
                      kPdqGrid);
}

// Layout 2 (kPdqLayoutRing): the threads of a block load each chunk of kPdqChunk samples of up to
// kThreads lines into a shared-memory ring together (a line's chunk is 32 contiguous bytes), then
// each thread walks its line through the chunk from shared memory, and writes its outputs where
// the threads beside it write theirs (coalesced). Layouts 0 and 1 walk global memory instead:
// either the writes or the reads go one 4-byte access per line, and every step of a line's walk
// waits on global memory. Here the load of chunk k + 1 and the walk of chunk k share one
// sub-step: the ring's three slots hold chunk k + 1, chunk k and chunk k - 1 (the leaving samples
// lag the entering ones by the window, at most 4 <= kPdqChunk).
//   pass 1, rows:            pixels (luma computed as loaded) -> buf2 column-major
//   pass 2, columns:         buf2 column-major -> buf1 row-major
//   pass 3, rows, picked:    buf1 row-major -> buf2 as 64 x rows
//   pass 4:                  as layout 0

/// Tick t of a line's box walk: the reference's box1D (pdq_box_walk) taken one step at a time,
/// with the same operations in the same order: sample t enters (t < len), then sample t - window
/// leaves (t >= window), then output t - (half - 1) is emitted (t >= half - 1), divided by the
/// count the walk has at that point. Ticks 0 .. len + half - 2 make the whole line.
template <class At, class Emit>
MMCORE_HD inline void pdq_box_tick(At&& at, std::int32_t t, std::int32_t len, int window, float& sum,
                                   Emit&& emit) {
  const int half = (window + 2) / 2;
  if (t < len) sum = f_add(sum, at(t));
  if (t >= window) sum = f_sub(sum, at(t - window));
  if (t < half - 1) return;
  const std::int32_t oi = t - (half - 1);
  if (t < window) {
    emit(oi, [&] { return f_div(sum, static_cast<float>(t + 1)); });
  } else if (t < len) {
    const float n = static_cast<float>(window);
    const bool by_inverse = (window & (window - 1)) == 0;
    emit(oi, [&] { return by_inverse ? f_mul(sum, 1.0f / n) : f_div(sum, n); });
  } else {
    emit(oi, [&] { return f_div(sum, static_cast<float>(window - 1 - (t - len))); });
  }
}

/// One of layout 2's passes: `lines` lines of `len` samples, in groups of `group_lines` (at most
/// kThreads, a thread each), each group chunks + 1 sub-steps.
struct PdqRingPass {
  std::int32_t lines, len, group_lines, chunks;
  int window;
};

MMCORE_HD inline PdqRingPass pdq_ring_pass(const PdqPlan& p, int phase) {
  const bool rows = phase != 2;
  const std::int32_t lines = rows ? p.rows : p.cols, len = rows ? p.cols : p.rows;
  const std::int32_t groups = (lines + kThreads - 1) / kThreads;
  return PdqRingPass{lines, len, (lines + groups - 1) / groups, (len + kPdqChunk - 1) / kPdqChunk,
                     (len + 2 * kPdqGrid - 1) / (2 * kPdqGrid)};
}

MMCORE_HD inline int pdq_stream_steps(const PdqPlan& p);

/// Sub-steps phase `phase` takes (a block barrier after each): 1, or layout 2's chunked walk, or
/// layout 3's bands (all in phase 1).
MMCORE_HD inline int pdq_phase_steps(int phase, const PdqArgs& a) {
  if (a.layout == kPdqLayoutStream && a.plan->mode == kPdqBlur && phase == 1)
    return pdq_stream_steps(*a.plan);
  if (a.layout != kPdqLayoutRing || a.plan->mode != kPdqBlur || phase < 1 || phase > 3) return 1;
  const PdqRingPass r = pdq_ring_pass(*a.plan, phase);
  return (r.lines + r.group_lines - 1) / r.group_lines * (r.chunks + 1);
}

/// Sub-step `step` of a layout-2 pass (nthreads == kThreads): load chunk k of the group's lines
/// into the ring (load(line, i) gives sample i of a line), and walk chunk k - 1 of this thread's
/// line, handing emit(line, oi, value) its outputs.
template <class Load, class Emit>
MMCORE_HD inline void pdq_ring_step(PdqShared& sh, const PdqRingPass& r, int step, int tid, int nthreads,
                                    Load&& load, Emit&& emit) {
  const std::int32_t group = step / (r.chunks + 1), k = step % (r.chunks + 1);
  const std::int32_t first = group * r.group_lines;
  const std::int32_t count = r.lines - first < r.group_lines ? r.lines - first : r.group_lines;
  if (k < r.chunks) {
    const int slot = (k % 3) * kPdqChunk;
    for (std::int32_t e = tid; e < count * kPdqChunk; e += nthreads) {
      const std::int32_t l = e / kPdqChunk, i = k * kPdqChunk + e % kPdqChunk;
      if (i < r.len) sh.ring[l * kPdqRingStride + slot + e % kPdqChunk] = load(first + l, i);
    }
  }
  if (k == 0 || tid >= count) return;
  float* line = sh.ring + tid * kPdqRingStride;
  const std::int32_t c = k - 1, t0 = c * kPdqChunk;
  const std::int32_t t1 = c + 1 == r.chunks ? r.len + (r.window + 2) / 2 - 1 : t0 + kPdqChunk;
  float sum = c == 0 ? 0.0f : line[3 * kPdqChunk];
  const auto at = [&](std::int32_t i) { return line[(i / kPdqChunk) % 3 * kPdqChunk + i % kPdqChunk]; };
  for (std::int32_t t = t0; t < t1; ++t)
    pdq_box_tick(at, t, r.len, r.window, sum,
                 [&](std::int32_t oi, auto value) { emit(first + tid, oi, value); });
  line[3 * kPdqChunk] = sum;
}

/// Output `pos` of a line of `size`, where the decimation picks it: value() (the division) is
/// computed once and handed to store(q, v) for each q with pick[q] == pos (a position picked
/// twice is stored twice, as pdq_box_line_pick does); nothing happens where none does. The
/// picks are non-decreasing, and those equal to pos start at or after pos * 64 / size - 1.
template <class Value, class Store>
MMCORE_HD inline void pdq_store_picked(const std::int32_t* pick, std::int32_t pos, std::int32_t size,
                                       Value&& value, Store&& store) {
  int q = pos * kPdqGrid / size - 1;
  q = q < 0 ? 0 : q;
  while (q < kPdqGrid && pick[q] < pos) ++q;
  if (q >= kPdqGrid || pick[q] != pos) return;
  const float v = value();
  for (; q < kPdqGrid && pick[q] == pos; ++q) store(q, v);
}

/// Layout 2's passes 1-3 (phase 1, 2 or 3), sub-step `step`.
MMCORE_HD inline void pdq_phase_ring(int phase, int step, const PdqArgs& a, PdqShared& sh, int tid,
                                     int nthreads) {
  const PdqPlan& p = *a.plan;
  if (p.mode != kPdqBlur) return;
  const PdqRingPass r = pdq_ring_pass(p, phase);
  float* buf1 = pdq_buf(a, 0);
  float* buf2 = pdq_buf(a, 1);
  const std::int32_t rows = p.rows, cols = p.cols;
  if (phase == 1) {
    pdq_ring_step(
        sh, r, step, tid, nthreads,
        [&](std::int32_t y, std::int32_t x) { return pdq_luma(p, a.pixels, x, y); },
        [&](std::int32_t y, std::int32_t x, auto value) { buf2[x * rows + y] = value(); });
  } else if (phase == 2) {
    pdq_ring_step(
        sh, r, step, tid, nthreads, [&](std::int32_t x, std::int32_t y) { return buf2[x * rows + y]; },
        [&](std::int32_t x, std::int32_t y, auto value) { buf1[y * cols + x] = value(); });
  } else {
    const std::int32_t* pick = sh.pick_cols;
    pdq_ring_step(
        sh, r, step, tid, nthreads, [&](std::int32_t y, std::int32_t x) { return buf1[y * cols + x]; },
        [&](std::int32_t y, std::int32_t x, auto value) {
          pdq_store_picked(pick, x, cols, value, [&](int q, float v) { buf2[q * rows + y] = v; });
        });
  }
}

// Layout 3 (kPdqLayoutStream): the four box passes in shared memory, a band of kPdqBand rows at a
// time, so that no pass's output goes to global memory (layouts 0-2 write and re-read ~3 MB per
// 500x375 image; here the pixels are the only global reads). Pass 2 walks down the columns one
// band of ticks at a time, keeping each column's running sum in shared memory between bands;
// pass 4 likewise down the 64 decimation columns. Each output is the same chain of float
// operations as the reference's (pdq_box_walk for the row passes, pdq_box_tick for the column
// passes), only scheduled band by band. Phase 1 runs it all, two sub-steps per band k (and one
// more round for the last band's passes 3 and 4):
//   part 0: pass 1 of band k's rows from their luma (a thread per row), beside pass 3 of the rows
//           pass 2 emitted in band k - 1 (a thread per row, another warp)
//   part 1: pass 2's ticks of band k (every column), beside pass 4's ticks over the rows pass 3
//           just made (64 columns; the decimation rows stored into the 64x64 buffer), and the
//           luma of band k + 1's rows, read from the pixels by the whole block side by side
//           (band 0's in phase 0): a thread walking a row of pixels by itself would make every
//           warp load touch a cache line per thread
// Rings: pass 2's tick t reads pass-1 rows t and t - window (window <= 4), so pass 1's output
// needs a band plus 4 rows; pass 2 emits a band's worth of rows, which pass 3 reads before the
// next band's part 1 overwrites them; pass 4 reads rows t and t - window of pass 3's output.

/// Layout 3's per-image constants: the column passes' window and ticks, the row passes' window.
struct PdqStreamPass {
  std::int32_t rows, cols;
  int window_rows;     ///< the column passes' window (over rows)
  int window_cols;     ///< the row passes' window (over columns)
  int lag;             ///< a column pass emits output row t - lag at tick t: half - 1
  std::int32_t ticks;  ///< a column pass's ticks: rows + lag
  std::int32_t bands;  ///< ceil(ticks / kPdqBand)
};

MMCORE_HD inline PdqStreamPass pdq_stream_pass(const PdqPlan& p) {
  PdqStreamPass s;
  s.rows = p.rows;
  s.cols = p.cols;
  s.window_rows = (p.rows + 2 * kPdqGrid - 1) / (2 * kPdqGrid);
  s.window_cols = (p.cols + 2 * kPdqGrid - 1) / (2 * kPdqGrid);
  s.lag = (s.window_rows + 2) / 2 - 1;
  s.ticks = p.rows + s.lag;
  s.bands = (s.ticks + kPdqBand - 1) / kPdqBand;
  return s;
}

MMCORE_HD inline int pdq_stream_steps(const PdqPlan& p) {
  return 2 * (pdq_stream_pass(p).bands + 1);
}

/// Output rows [first, end) that pass 2 emits in band k (ticks k B .. (k + 1) B, at most ticks).
MMCORE_HD inline void pdq_stream_emitted(const PdqStreamPass& s, std::int32_t k, std::int32_t* first,
                                         std::int32_t* end) {
  const std::int32_t t0 = k * kPdqBand, t1 = t0 + kPdqBand < s.ticks ? t0 + kPdqBand : s.ticks;
  *first = t0 - s.lag > 0 ? t0 - s.lag : 0;
  *end = t1 - s.lag > *first ? t1 - s.lag : *first;
}

/// Layout 3: luma of band k's rows into the luma buffer, the block's threads side by side.
MMCORE_HD inline void pdq_stream_luma(const PdqArgs& a, std::int32_t k, int tid, int nthreads) {
  const PdqPlan& p = *a.plan;
  const std::int32_t y0 = k * kPdqBand, stride = pdq_stream_stride(p.cols);
  const std::int32_t n = (p.rows - y0 < kPdqBand ? p.rows - y0 : kPdqBand) * p.cols;
  for (std::int32_t j = tid; j < n; j += nthreads) {
    const std::int32_t r = j / p.cols, x = j - r * p.cols;
    a.stream->luma[r * stride + x] = pdq_luma(p, a.pixels, x, y0 + r);
  }
}

/// Layout 3, phase 1, sub-step `step` (< pdq_stream_steps).
MMCORE_HD inline void pdq_phase_stream(int step, const PdqArgs& a, PdqShared& sh, int tid, int nthreads) {
  const PdqPlan& p = *a.plan;
  if (p.mode != kPdqBlur) return;
  PdqStream& st = *a.stream;
  const PdqStreamPass s = pdq_stream_pass(p);
  const std::int32_t k = step / 2, rows = s.rows, cols = s.cols;
  const std::int32_t stride = pdq_stream_stride(cols);
  constexpr std::int32_t kStride3 = pdq_stream_stride(kPdqGrid);
  // The row passes' second group of threads: another warp where the block has one.
  const int second = nthreads >= 64 ? 32 : 0;
  if (step % 2 == 0) {
    // Pass 1: band k's rows, from their luma.
    if (k < s.bands && tid < kPdqBand) {
      const std::int32_t y = k * kPdqBand + tid;
      if (y < rows)
        pdq_box_line(PdqStrided{st.luma + (y % kPdqBand) * stride, 1}, st.p1 + (y % kPdqStreamRing) * stride,
                     1, cols, s.window_cols);
    }
    // Pass 3: the rows pass 2 emitted in band k - 1, only the decimation's columns kept.
    if (k >= 1 && tid >= second && tid < second + kPdqBand) {
      std::int32_t first = 0, end = 0;
      pdq_stream_emitted(s, k - 1, &first, &end);
      const std::int32_t y = first + (tid - second);
      if (y < end)
        pdq_box_line_pick(st.p2 + (y % kPdqBand) * stride, 1, cols, s.window_cols, sh.pick_cols,
                          st.p3 + (y % kPdqStreamRing) * kStride3, 1);
    }
    return;
  }
  // Pass 2: band k's ticks down every column.
  if (k < s.bands) {
    const std::int32_t t0 = k * kPdqBand, t1 = t0 + kPdqBand < s.ticks ? t0 + kPdqBand : s.ticks;
    for (std::int32_t c = tid; c < cols; c += nthreads) {
      float sum = t0 == 0 ? 0.0f : st.sum2[c];
      const auto at = [&](std::int32_t y) { return st.p1[(y % kPdqStreamRing) * stride + c]; };
      for (std::int32_t t = t0; t < t1; ++t)
        pdq_box_tick(at, t, rows, s.window_rows, sum,
                     [&](std::int32_t oi, auto value) { st.p2[(oi % kPdqBand) * stride + c] = value(); });
      st.sum2[c] = sum;
    }
  }
  // The next band's luma, for part 0 of the next round.
  if (k + 1 < s.bands) pdq_stream_luma(a, k + 1, tid, nthreads);
  // Pass 4: its ticks over the rows pass 3 made in part 0 (and, after the last of them, the
  // ticks that only let rows leave: their output rows lie past the last decimation row, so they
  // only finish the reference's walk); the decimation's rows go to the 64x64 buffer.
  if (k >= 1) {
    std::int32_t first = 0, end = 0;
    pdq_stream_emitted(s, k - 1, &first, &end);
    if (end == rows) end = s.ticks;
    const std::int32_t* pick = sh.pick_rows;
    for (int c = tid; c < kPdqGrid && first < end; c += nthreads) {
      float sum = first == 0 ? 0.0f : st.sum4[c];
      const auto at = [&](std::int32_t y) { return st.p3[(y % kPdqStreamRing) * kStride3 + c]; };
      for (std::int32_t t = first; t < end; ++t)
        pdq_box_tick(at, t, rows, s.window_rows, sum, [&](std::int32_t oi, auto value) {
          pdq_store_picked(pick, oi, rows, value, [&](int q, float v) { sh.m.a[q * kPdqGrid + c] = v; });
        });
      st.sum4[c] = sum;
    }
  }
}

MMCORE_HD inline std::int32_t pdq_cell(int i, std::int32_t size) {
#if defined(__CUDA_ARCH__)
  return static_cast<std::int32_t>(__ddiv_rn(__dmul_rn(i + 0.5, static_cast<double>(size)), 64.0));
#else
  return static_cast<std::int32_t>(((i + 0.5) * size) / kPdqGrid);
#endif
}

/// (int)(((u - v) * 100) / 255), absolute.
MMCORE_HD inline int pdq_grad(float u, float v) {
  const int d = static_cast<int>(f_div(f_mul(f_sub(u, v), 100.0f), 255.0f));
  return d < 0 ? -d : d;
}

MMCORE_HD inline void pdq_phase_dct_a(const PdqArgs& a, PdqShared& sh, int tid, int nthreads) {
  (void)a;
  for (int o = tid; o < kPdqDct * kPdqGrid; o += nthreads) {
    const int i = o / kPdqGrid, j = o % kPdqGrid;
    float t = 0.0f;
    for (int k = 0; k < kPdqGrid; ++k)
      t = f_add(t, f_mul(sh.m.d[i * kPdqGrid + k], sh.m.a[k * kPdqGrid + j]));
    sh.m.t[o] = t;
  }
  // Quality terms: 63 x 64 vertical then 64 x 63 horizontal neighbour pairs, shared out by index.
  int part = 0;
  constexpr int kVertical = (kPdqGrid - 1) * kPdqGrid;
  for (int e = tid; e < 2 * kVertical; e += nthreads) {
    if (e < kVertical) {
      const int i = e / kPdqGrid, j = e % kPdqGrid;
      part += pdq_grad(sh.m.a[i * kPdqGrid + j], sh.m.a[(i + 1) * kPdqGrid + j]);
    } else {
      const int i = (e - kVertical) / (kPdqGrid - 1), j = (e - kVertical) % (kPdqGrid - 1);
      part += pdq_grad(sh.m.a[i * kPdqGrid + j], sh.m.a[i * kPdqGrid + j + 1]);
    }
  }
  sh.quality_part[tid] = part;
}

MMCORE_HD inline void pdq_phase_dct_b(const PdqArgs& a, PdqShared& sh, int tid, int nthreads) {
  (void)a;
  for (int o = tid; o < kPdqDct * kPdqDct; o += nthreads) {
    const int i = o / kPdqDct, j = o % kPdqDct;
    float b = 0.0f;
    for (int k = 0; k < kPdqGrid; ++k)
      b = f_add(b, f_mul(sh.m.t[i * kPdqGrid + k], sh.m.d[j * kPdqGrid + k]));
    sh.m.b[o] = b;
  }
}

/// The quality (thread 0) and the median: the 128th smallest of the 256 coefficients (the
/// reference's Torben median), as the coefficient whose rank is 127, ranks counted by every thread
/// for its coefficients (ties ranked by index, so exactly one coefficient has each rank and its
/// value is the sorted array's 128th).
MMCORE_HD inline void pdq_phase_median(const PdqArgs& a, PdqShared& sh, int tid, int nthreads) {
  constexpr int kCoefs = kPdqDct * kPdqDct;
  for (int i = tid; i < kCoefs; i += nthreads) {
    const float v = sh.m.b[i];
    int rank = 0;
    for (int k = 0; k < kCoefs; ++k) {
      const float w = sh.m.b[k];
      rank += (w < v || (w == v && k < i)) ? 1 : 0;
    }
    if (rank == (kCoefs - 1) / 2) sh.median = v;
  }
  if (tid == 0) {
    int sum = 0;
    for (int k = 0; k < nthreads; ++k) sum += sh.quality_part[k];
    const int q = sum / 90;
    a.quality[a.row] = q < 100 ? q : 100;
  }
}

/// The hash bits: 16 threads, a 16-bit row each (bit k of row m: coefficient (m, k) > median).
MMCORE_HD inline void pdq_phase_bits(const PdqArgs& a, PdqShared& sh, int tid, int nthreads) {
  std::uint8_t* o = a.out + 32 * a.row;
  for (int m = tid; m < kPdqDct; m += nthreads) {
    std::uint32_t w = 0;
    for (int k = 0; k < 16; ++k) w |= (sh.m.b[m * 16 + k] > sh.median ? 1u : 0u) << k;
    o[2 * (15 - m)] = static_cast<std::uint8_t>(w >> 8);
    o[2 * (15 - m) + 1] = static_cast<std::uint8_t>(w & 0xff);
  }
}

/// An all-zero record (invalid, or under 5 px): the whole block takes this path or none.
MMCORE_HD inline void pdq_store_zero(const PdqArgs& a, int tid) {
  if (tid < 32) a.out[32 * a.row + tid] = 0;
  if (tid == 0) a.quality[a.row] = 0;
}

/// Phase `phase`, sub-step `step` (< pdq_phase_steps(phase, a)), for thread tid.
MMCORE_HD inline void pdq_run_phase(int phase, int step, const PdqArgs& a, PdqShared& sh, int tid,
                                    int nthreads) {
  if (a.layout == kPdqLayoutRing && phase >= 1 && phase <= 3) {
    pdq_phase_ring(phase, step, a, sh, tid, nthreads);
    return;
  }
  if (a.layout == kPdqLayoutStream && phase >= 1 && phase <= 3) {
    if (phase == 1) pdq_phase_stream(step, a, sh, tid, nthreads);
    return;
  }
  switch (phase) {
    case 0: pdq_phase_luma(a, sh, tid, nthreads); break;
    case 1: pdq_phase_rows(a, tid, nthreads); break;
    case 2: pdq_phase_cols(a, tid, nthreads); break;
    case 3: pdq_phase_rows_picked(a, sh, tid, nthreads); break;
    case 4: pdq_phase_cols_picked(a, sh, tid, nthreads); break;
    case 5: pdq_phase_dct_a(a, sh, tid, nthreads); break;
    case 6: pdq_phase_dct_b(a, sh, tid, nthreads); break;
    case 7: pdq_phase_median(a, sh, tid, nthreads); break;
    default: pdq_phase_bits(a, sh, tid, nthreads); break;
  }
}

/// Phases each image runs: kPdqPhases, or MMCORE_GPU_PDQ_PHASES (1..kPdqPhases) for the bench's
/// per-phase profile (fewer phases leave the hashes unwritten).
inline int pdq_phases_from_env() {
  const char* e = std::getenv("MMCORE_GPU_PDQ_PHASES");
  if (e == nullptr || *e == '\0') return kPdqPhases;
  const int v = std::atoi(e);
  return v >= 1 && v <= kPdqPhases ? v : kPdqPhases;
}

/// The blur's layout: MMCORE_GPU_PDQ_LAYOUT=1 for kPdqLayoutWrites, 2 for kPdqLayoutRing (the
/// bench times all three; the default stays the measured layout 0 until a GPU run says which is
/// faster).
inline std::int32_t pdq_layout_from_env() {
  const char* e = std::getenv("MMCORE_GPU_PDQ_LAYOUT");
  if (e == nullptr || e[0] == '\0' || e[1] != '\0') return kPdqLayoutReads;
  switch (e[0]) {
    case '1': return kPdqLayoutWrites;
    case '2': return kPdqLayoutRing;
    case '3': return kPdqLayoutStream;
    default: return kPdqLayoutReads;
  }
}

/// Blocks per SM the PDQ kernel is compiled for (MMCORE_GPU_PDQ_OCCUPANCY=8: the kernel built for
/// 8 resident blocks per SM, registers capped at 32 with some spilled, against the default's 4 at
/// 63; the bench compares them: each block is one image whose line walks are chains of dependent
/// float operations, so more images in flight may hide more latency than the spills cost).
inline int pdq_occupancy_from_env() {
  const char* e = std::getenv("MMCORE_GPU_PDQ_OCCUPANCY");
  return e != nullptr && e[0] == '8' && e[1] == '\0' ? 8 : 0;
}

/// A cap on the PDQ kernel's resident blocks (MMCORE_GPU_PDQ_BLOCKS=N, N >= 1; 0: none, the
/// default). Each block's scratch slot is ~1.5 MB for a 500x375 image, so the ~528 blocks an H200
/// holds walk ~790 MB, far past its 50 MB L2, and layouts 0 and 1 walk it one 4-byte access per
/// line per step; the bench times a few caps to see whether fewer images in flight, their slots
/// held in L2, beat more images whose accesses go to HBM.
inline std::int64_t pdq_blocks_from_env() {
  const char* e = std::getenv("MMCORE_GPU_PDQ_BLOCKS");
  if (e == nullptr || *e == '\0') return 0;
  const long v = std::strtol(e, nullptr, 10);
  return v >= 1 ? v : 0;
}

/// Plans a PDQ batch: per image a PdqPlan; the scratch slot a block needs (the largest image's
/// rows x cols and rows x max(cols, 64) floats).
class PdqPlanner {
 public:
  std::vector<PdqPlan> plans;
  std::int64_t slot_bytes = 0;

  /// Plans images [0, n); statuses: kOk (a tiny image is kOk with a zero hash, as on the CPU) or
  /// kUnsupported.
  /// scratch: false for layout 3, whose blur needs no global memory (slot_bytes 0).
  void plan(const GpuImage* images, std::int32_t n, std::int64_t pixel_bytes, Status* statuses,
            bool scratch = true) {
    plans.assign(static_cast<std::size_t>(n), PdqPlan{});
    slot_bytes = 0;
    for (std::int32_t i = 0; i < n; ++i) {
      PdqPlan& p = plans[static_cast<std::size_t>(i)];
      const bool ok = plan_image(images[i], pixel_bytes, &p);
      const std::int64_t need = p.mode == kPdqBlur ? static_cast<std::int64_t>(p.rows) *
                                                         (p.cols + (p.cols > kPdqGrid ? p.cols : kPdqGrid)) *
                                                         std::int64_t{sizeof(float)}
                                                   : 0;
      slot_bytes = need > slot_bytes ? need : slot_bytes;
      statuses[i] = ok ? Status::kOk : Status::kUnsupported;
    }
    slot_bytes = scratch ? (slot_bytes + 255) / 256 * 256 : 0;  // slots stay aligned
  }

  /// Blocks to launch for n images: at most `resident` (what the device holds at once) and at
  /// most scratch_cap / slot_bytes (at least one).
  std::int32_t blocks(std::int32_t n, std::int64_t resident, std::int64_t scratch_cap) const {
    std::int64_t b = n < resident ? n : resident;
    if (slot_bytes > 0 && b > scratch_cap / slot_bytes) b = scratch_cap / slot_bytes;
    return static_cast<std::int32_t>(b < 1 ? 1 : b);
  }

 private:
  static bool plan_image(const GpuImage& im, std::int64_t pixel_bytes, PdqPlan* p) {
    p->mode = kPdqZero;
    if (!gpu_image_fits(im, pixel_bytes)) return false;
    p->offset = im.offset;
    p->stride = im.stride;
    p->width = im.width;
    p->height = im.height;
    p->channels = im.channels;
    p->squash = im.width > kPdqSquash || im.height > kPdqSquash;
    p->cols = p->squash ? kPdqSquash : im.width;
    p->rows = p->squash ? kPdqSquash : im.height;
    if (p->cols < 5 || p->rows < 5) {
      p->mode = kPdqZero;
    } else if (p->cols == kPdqGrid && p->rows == kPdqGrid) {
      p->mode = kPdqDirect;
    } else {
      p->mode = kPdqBlur;
    }
    return true;
  }
};

}  // namespace mmcore::gpu_detail
