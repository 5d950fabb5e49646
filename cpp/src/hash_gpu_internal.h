// The work of cuda/hash.cu's kernel, written as __host__ __device__ phases so that the CPU can
// run the very same code: tests/cpp/test_hash_gpu_emu.cpp emulates the kernel (every thread of
// a phase, then a barrier) and compares with hash_image, on machines without a GPU.
//
// One block per image. Phases, separated by a block barrier (__syncthreads() on the GPU):
//   0 first pass   targets needing two resize passes: the first one, from the source (grey on
//                  the fly with Pillow's formula), into global scratch private to the image
//   1 last pass    the second (or only) pass into shared memory: 8x8, 9x8, 8x9, 32x32 bytes
//   2 compare      aHash / dHash / dHash-vertical bits; pHash input to float64
//   3 dct a        pHash: 32 column DCTs (threads 0..31); pHash-simple: 8 row DCTs (64..71)
//   4 dct b        pHash: 8 row DCTs of the kept column coefficients (threads 0..7)
//   5 threshold    pHash median (thread 0), pHash-simple mean (thread 32)
//   6 store        one uint64 per kind (threads 0..4)
// Within a phase a thread never reads what another thread of the same phase writes, so the
// result cannot depend on thread order; the emulator checks this by running the threads of
// each phase forwards and backwards. Scratch regions of different images do not overlap (the
// planner places them one after another), which the emulator checks by running every block's
// phase k before any block's phase k + 1.
//
// The planner (host only) mirrors resize()'s and hash_ref.cpp's choices: a target of the
// source's size is copied, an axis that keeps its size is not resampled, and the two-pass order
// is Pillow 13's (vertical first iff dh > 0 and dh > 2 dw). Its LANCZOS tables are the CPU's
// own (resize_detail::compute_axis).
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "hash_dct_impl.h"
#include "hash_internal.h"
#include "hd_internal.h"
#include "luma_internal.h"
#include "mmcore/hash_gpu.h"
#include "resize_internal.h"

namespace mmcore::gpu_detail {

constexpr int kThreads = 256;  ///< per block; the phases need at least 72
constexpr int kPhases = 7;
constexpr int kTargets = 4;  ///< 8x8 (aHash), 9x8 (dHash), 8x9 (dHash-vertical), 32x32 (pHash kinds)

// Functions rather than tables: a namespace-scope array is not addressable from device code.
MMCORE_HD constexpr std::int32_t target_w(int t) {
  return t == 1 ? 9 : (t == 3 ? 32 : 8);
}
MMCORE_HD constexpr std::int32_t target_h(int t) {
  return t == 2 ? 9 : (t == 3 ? 32 : 8);
}
MMCORE_HD constexpr bool wants(std::uint32_t kinds, int kind) {
  return ((kinds >> kind) & 1u) != 0;
}

/// How one target is made from the source.
enum PassMode : std::int32_t {
  kSkip = 0,        ///< not asked for
  kCopy = 1,        ///< the source's size: copied, as hash_ref.cpp's shrink() does
  kHorizontal = 2,  ///< only the width changes
  kVertical = 3,    ///< only the height changes
  kHThenV = 4,      ///< horizontal into scratch (tw x H), then vertical
  kVThenH = 5,      ///< vertical into scratch (W x th), then horizontal (Pillow 13's swap)
};

struct TargetPlan {
  std::int32_t mode;
  std::int32_t reserved;
  std::int64_t h_axis;  ///< arena offset of the W -> tw table (-1: none)
  std::int64_t v_axis;  ///< arena offset of the H -> th table (-1: none)
  std::int64_t mid;     ///< scratch offset of the intermediate image (two-pass modes)
};

struct ImagePlan {
  std::int64_t offset;
  std::int64_t stride;
  std::int32_t width;
  std::int32_t height;
  std::int32_t channels;
  std::int32_t valid;
  TargetPlan target[kTargets];
};

/// An axis table in the arena at offset o: in, out, ksize, then start[out], count[out] and
/// coeffs[out * ksize] (resize_detail::Axis, flattened).
constexpr std::int64_t kAxisHeader = 3;

struct AxisView {
  std::int32_t out;
  std::int32_t ksize;
  const std::int32_t* start;
  const std::int32_t* count;
  const std::int32_t* coeffs;
};

MMCORE_HD inline AxisView axis_at(const std::int32_t* arena, std::int64_t o) {
  const std::int32_t* p = arena + o;
  AxisView a;
  a.out = p[1];
  a.ksize = p[2];
  a.start = p + kAxisHeader;
  a.count = a.start + a.out;
  a.coeffs = a.count + a.out;
  return a;
}

/// Pillow 'L' pixels of an image: one channel as is, 3 or 4 through Pillow's formula.
struct GreySource {
  const std::uint8_t* data;
  std::int64_t stride;
  std::int32_t channels;
  MMCORE_HD std::uint8_t at(std::int32_t x, std::int32_t y) const {
    const std::uint8_t* q = data + stride * y + static_cast<std::int64_t>(x) * channels;
    return channels == 1 ? q[0] : detail::luma_pillow(q[0], q[1], q[2]);
  }
};

/// Output x of the horizontal pass over row y (horizontal_row_ref's arithmetic).
MMCORE_HD inline std::uint8_t resample_h(const GreySource& s, const AxisView& a, std::int32_t x,
                                         std::int32_t y) {
  const std::int32_t x0 = a.start[x], n = a.count[x];
  const std::int32_t* k = a.coeffs + static_cast<std::int64_t>(x) * a.ksize;
  std::int32_t acc = resize_detail::kRoundHalf;
  for (std::int32_t t = 0; t < n; ++t) acc = resize_detail::mac(acc, s.at(x0 + t, y), k[t]);
  return resize_detail::clip8(acc);
}

/// Output row y of the vertical pass at column x (vertical_row_ref's arithmetic).
MMCORE_HD inline std::uint8_t resample_v(const GreySource& s, const AxisView& a, std::int32_t x,
                                         std::int32_t y) {
  const std::int32_t y0 = a.start[y], n = a.count[y];
  const std::int32_t* k = a.coeffs + static_cast<std::int64_t>(y) * a.ksize;
  std::int32_t acc = resize_detail::kRoundHalf;
  for (std::int32_t t = 0; t < n; ++t) acc = resize_detail::mac(acc, s.at(x, y0 + t), k[t]);
  return resize_detail::clip8(acc);
}

/// A block's shared memory (plain data: __shared__ variables take no initialisers).
struct BlockShared {
  std::uint8_t small[kTargets][32 * 32];
  double x32[32 * 32];  ///< pHash input as float64
  double cols[8 * 32];  ///< pHash: coefficients 0..7 of every column, cols[k * 32 + n]
  double coef[2][64];   ///< [0] pHash's 8x8, [1] pHash-simple's 8x8
  bool bits[kGpuHashColumns][64];
  detail::DctTwiddles tw;
};

/// What one block reads and writes.
struct BlockArgs {
  const std::uint8_t* pixels;
  const ImagePlan* plan;
  const std::int32_t* arena;
  std::uint8_t* scratch;
  std::uint64_t* out;  ///< column k of image `row` at out[k * column_stride + row]
  std::int64_t column_stride;
  std::int64_t row;
  std::uint32_t kinds;
  const detail::DctTwiddles* twiddles;
};

/// An invalid record: its asked-for hashes are 0 (the whole block takes this path or none).
MMCORE_HD inline void store_invalid(const BlockArgs& a, int tid) {
  if (tid < kGpuHashColumns && wants(a.kinds, tid)) a.out[tid * a.column_stride + a.row] = 0;
}

/// Packs 64 flags, element 0 as the most significant bit (imagehash's order).
MMCORE_HD inline std::uint64_t pack64(const bool* bit) {
  std::uint64_t h = 0;
  for (int i = 0; i < 64; ++i) h = (h << 1) | (bit[i] ? 1u : 0u);
  return h;
}

MMCORE_HD inline void phase_first_pass(const BlockArgs& a, BlockShared& sh, int tid, int nthreads) {
  if (tid == 0) sh.tw = *a.twiddles;
  const ImagePlan& p = *a.plan;
  const GreySource src{a.pixels + p.offset, p.stride, p.channels};
  for (int t = 0; t < kTargets; ++t) {
    const TargetPlan& tp = p.target[t];
    if (tp.mode == kHThenV) {
      const AxisView ax = axis_at(a.arena, tp.h_axis);
      std::uint8_t* mid = a.scratch + tp.mid;  // ax.out x height
      const std::int64_t n = static_cast<std::int64_t>(ax.out) * p.height;
      for (std::int64_t j = tid; j < n; j += nthreads) {
        mid[j] =
            resample_h(src, ax, static_cast<std::int32_t>(j % ax.out), static_cast<std::int32_t>(j / ax.out));
      }
    } else if (tp.mode == kVThenH) {
      const AxisView ay = axis_at(a.arena, tp.v_axis);
      std::uint8_t* mid = a.scratch + tp.mid;  // width x ay.out
      const std::int64_t n = static_cast<std::int64_t>(p.width) * ay.out;
      for (std::int64_t j = tid; j < n; j += nthreads) {
        mid[j] = resample_v(src, ay, static_cast<std::int32_t>(j % p.width),
                            static_cast<std::int32_t>(j / p.width));
      }
    }
  }
}

MMCORE_HD inline void phase_last_pass(const BlockArgs& a, BlockShared& sh, int tid, int nthreads) {
  const ImagePlan& p = *a.plan;
  const GreySource src{a.pixels + p.offset, p.stride, p.channels};
  for (int t = 0; t < kTargets; ++t) {
    const TargetPlan& tp = p.target[t];
    if (tp.mode == kSkip) continue;
    const std::int32_t tw = target_w(t), th = target_h(t);
    for (std::int32_t j = tid; j < tw * th; j += nthreads) {
      const std::int32_t y = j / tw, x = j % tw;
      std::uint8_t v = 0;
      switch (tp.mode) {
        case kCopy: v = src.at(x, y); break;
        case kHorizontal: v = resample_h(src, axis_at(a.arena, tp.h_axis), x, y); break;
        case kVertical: v = resample_v(src, axis_at(a.arena, tp.v_axis), x, y); break;
        case kHThenV: {
          const GreySource mid{a.scratch + tp.mid, tw, 1};
          v = resample_v(mid, axis_at(a.arena, tp.v_axis), x, y);
          break;
        }
        default: {  // kVThenH
          const GreySource mid{a.scratch + tp.mid, p.width, 1};
          v = resample_h(mid, axis_at(a.arena, tp.h_axis), x, y);
          break;
        }
      }
      sh.small[t][j] = v;
    }
  }
}

MMCORE_HD inline void phase_compare(const BlockArgs& a, BlockShared& sh, int tid, int nthreads) {
  if (wants(a.kinds, 0) && tid == 0) {
    const std::uint8_t* q = sh.small[0];
    int sum = 0;
    for (int k = 0; k < 64; ++k) sum += q[k];
    for (int k = 0; k < 64; ++k) sh.bits[0][k] = 64 * q[k] > sum;  // pixel > float64 mean, exactly
  }
  if (wants(a.kinds, 1) && tid == 32) {
    const std::uint8_t* q = sh.small[1];  // 8 rows of 9
    for (int k = 0; k < 64; ++k) sh.bits[1][k] = q[(k / 8) * 9 + k % 8 + 1] > q[(k / 8) * 9 + k % 8];
  }
  if (wants(a.kinds, 2) && tid == 64) {
    const std::uint8_t* q = sh.small[2];  // 9 rows of 8
    for (int k = 0; k < 64; ++k) sh.bits[2][k] = q[k + 8] > q[k];
  }
  if (wants(a.kinds, 3) || wants(a.kinds, 4)) {
    for (int k = tid; k < 32 * 32; k += nthreads) sh.x32[k] = sh.small[3][k];
  }
}

MMCORE_HD inline void phase_dct_a(const BlockArgs& a, BlockShared& sh, int tid) {
  // pHash: dct along axis 0 (column n read with stride 32), coefficients 0..7 kept.
  if (wants(a.kinds, 3) && tid < 32) {
    double c[32];
    detail::dct2_32_impl(sh.x32 + tid, 32, c, sh.tw);
    for (int k = 0; k < 8; ++k) sh.cols[k * 32 + tid] = c[k];
  }
  // pHash-simple: dct of rows 0..7 along axis 1, coefficients 1..8 kept.
  if (wants(a.kinds, 4) && tid >= 64 && tid < 72) {
    const int r = tid - 64;
    double c[32];
    detail::dct2_32_impl(sh.x32 + r * 32, 1, c, sh.tw);
    for (int k = 0; k < 8; ++k) sh.coef[1][r * 8 + k] = c[k + 1];
  }
}

MMCORE_HD inline void phase_dct_b(const BlockArgs& a, BlockShared& sh, int tid) {
  if (wants(a.kinds, 3) && tid < 8) {
    double c[32];
    detail::dct2_32_impl(sh.cols + tid * 32, 1, c, sh.tw);
    for (int k = 0; k < 8; ++k) sh.coef[0][tid * 8 + k] = c[k];
  }
}

MMCORE_HD inline void phase_threshold(const BlockArgs& a, BlockShared& sh, int tid) {
  if (wants(a.kinds, 3) && tid == 0) {
    // numpy.median of 64: the mean of the 32nd and 33rd smallest. Order statistics are exact,
    // so sorting finds the same two values as the CPU's nth_element.
    double s[64];
    for (int k = 0; k < 64; ++k) s[k] = sh.coef[0][k];
    for (int i = 1; i < 64; ++i) {
      const double v = s[i];
      int j = i - 1;
      while (j >= 0 && s[j] > v) {
        s[j + 1] = s[j];
        --j;
      }
      s[j + 1] = v;
    }
    const double med = (s[31] + s[32]) / 2.0;
    for (int k = 0; k < 64; ++k) sh.bits[3][k] = sh.coef[0][k] > med;
  }
  if (wants(a.kinds, 4) && tid == 32) {
    const double mean = detail::numpy_mean64(sh.coef[1]);
    for (int k = 0; k < 64; ++k) sh.bits[4][k] = sh.coef[1][k] > mean;
  }
}

MMCORE_HD inline void phase_store(const BlockArgs& a, BlockShared& sh, int tid) {
  if (tid < kGpuHashColumns && wants(a.kinds, tid))
    a.out[tid * a.column_stride + a.row] = pack64(sh.bits[tid]);
}

/// Phase `phase` for thread `tid` of `nthreads`; callers put a block barrier between phases.
MMCORE_HD inline void run_phase(int phase, const BlockArgs& a, BlockShared& sh, int tid, int nthreads) {
  switch (phase) {
    case 0: phase_first_pass(a, sh, tid, nthreads); break;
    case 1: phase_last_pass(a, sh, tid, nthreads); break;
    case 2: phase_compare(a, sh, tid, nthreads); break;
    case 3: phase_dct_a(a, sh, tid); break;
    case 4: phase_dct_b(a, sh, tid); break;
    case 5: phase_threshold(a, sh, tid); break;
    default: phase_store(a, sh, tid); break;
  }
}

// ---- host-side planning ----------------------------------------------------------------------

/// hash_batch's and pdq_batch's argument checks: nullptr when fine, else what is wrong.
inline const char* batch_args_problem(std::int32_t count, const void* pixels, const void* images,
                                      const void* out, const void* out2, const void* statuses) {
  if (count < 0) return "negative count";
  if (count > 0 &&
      (pixels == nullptr || images == nullptr || out == nullptr || out2 == nullptr || statuses == nullptr))
    return "null buffer";
  return nullptr;
}

/// Plans chunks of a batch: per image an ImagePlan, one arena of LANCZOS tables, scratch bytes.
class Planner {
 public:
  std::vector<ImagePlan> plans;
  std::vector<std::int32_t> arena;
  std::int64_t scratch_bytes = 0;

  /// Plans images [first, n) until the scratch would pass `scratch_cap` (at least one image);
  /// fills statuses (kOk, or kUnsupported for an invalid descriptor) and returns the end.
  std::int32_t plan_chunk(const GpuImage* images, std::int32_t first, std::int32_t n,
                          std::int64_t pixel_bytes, std::uint32_t kinds, std::int64_t scratch_cap,
                          Status* statuses) {
    plans.clear();
    arena.clear();
    placed_.clear();
    scratch_bytes = 0;
    std::int32_t end = first;
    for (; end < n; ++end) {
      const std::size_t arena_before = arena.size();
      ImagePlan plan;
      const std::int64_t need = plan_image(images[end], pixel_bytes, kinds, scratch_bytes, &plan);
      if (need > 0 && scratch_bytes > 0 && scratch_bytes + need > scratch_cap) {
        // Starts the next chunk instead: forget the tables it placed here.
        arena.resize(arena_before);
        for (auto it = placed_.begin(); it != placed_.end();) {
          if (it->second >= static_cast<std::int64_t>(arena_before)) {
            it = placed_.erase(it);
          } else {
            ++it;
          }
        }
        break;
      }
      statuses[end] = need < 0 ? Status::kUnsupported : Status::kOk;
      if (need > 0) scratch_bytes += need;
      plans.push_back(plan);
    }
    if (arena.empty()) arena.push_back(0);  // a valid pointer even with nothing to resize
    return end;
  }

 private:
  std::unordered_map<std::uint64_t, resize_detail::AxisTaps> taps_;  ///< by (in, out), across calls
  std::unordered_map<std::uint64_t, std::int64_t> placed_;           ///< arena offsets, this chunk

  std::int64_t place_axis(std::int32_t in, std::int32_t out) {
    const std::uint64_t key =
        (static_cast<std::uint64_t>(static_cast<std::uint32_t>(in)) << 32) | static_cast<std::uint32_t>(out);
    const auto hit = placed_.find(key);
    if (hit != placed_.end()) return hit->second;
    auto it = taps_.find(key);
    if (it == taps_.end()) {
      if (taps_.size() >= 4096) taps_.clear();  // sizes repeat in a corpus, but keep it bounded
      it = taps_.emplace(key, resize_detail::AxisTaps{}).first;
      resize_detail::compute_axis(in, out, Filter::kLanczos3, &it->second);
    }
    const resize_detail::AxisTaps& t = it->second;
    const std::int64_t o = static_cast<std::int64_t>(arena.size());
    arena.push_back(in);
    arena.push_back(out);
    arena.push_back(t.axis.ksize);
    arena.insert(arena.end(), t.start.begin(), t.start.end());
    arena.insert(arena.end(), t.count.begin(), t.count.end());
    arena.insert(arena.end(), t.coeffs.begin(), t.coeffs.end());
    placed_.emplace(key, o);
    return o;
  }

  /// Scratch bytes image `im` needs at `scratch_at`, or -1 for an invalid descriptor.
  std::int64_t plan_image(const GpuImage& im, std::int64_t pixel_bytes, std::uint32_t kinds,
                          std::int64_t scratch_at, ImagePlan* p) {
    *p = ImagePlan{};
    for (TargetPlan& tp : p->target) tp = TargetPlan{kSkip, 0, -1, -1, 0};
    if (!gpu_image_fits(im, pixel_bytes)) return -1;
    p->offset = im.offset;
    p->stride = im.stride;
    p->width = im.width;
    p->height = im.height;
    p->channels = im.channels;
    p->valid = 1;
    const bool want_target[kTargets] = {wants(kinds, 0), wants(kinds, 1), wants(kinds, 2),
                                        wants(kinds, 3) || wants(kinds, 4)};
    std::int64_t used = 0;
    const std::int32_t w = im.width, h = im.height;
    for (int t = 0; t < kTargets; ++t) {
      if (!want_target[t]) continue;
      TargetPlan& tp = p->target[t];
      const std::int32_t tw = target_w(t), th = target_h(t);
      const bool need_h = w != tw, need_v = h != th;
      if (!need_h && !need_v) {
        tp.mode = kCopy;
        continue;
      }
      if (need_h) tp.h_axis = place_axis(w, tw);
      if (need_v) tp.v_axis = place_axis(h, th);
      if (!need_v) {
        tp.mode = kHorizontal;
      } else if (!need_h) {
        tp.mode = kVertical;
      } else {
        const std::int32_t dh = h - th, dw = w - tw;
        const bool v_first = dh > 0 && dh > dw * 2;
        tp.mode = v_first ? kVThenH : kHThenV;
        tp.mid = scratch_at + used;
        used += v_first ? static_cast<std::int64_t>(w) * th : static_cast<std::int64_t>(tw) * h;
      }
    }
    return used;
  }
};

}  // namespace mmcore::gpu_detail
