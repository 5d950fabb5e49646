// The work of cuda/resize.cu, as a __host__ __device__ function per output byte, and its host
// planner, so that tests/cpp/test_resize_gpu_emu.cpp runs the very same code on the CPU and
// compares with mmcore::resize bit for bit.
//
// A record is one or two passes. Pass 0 exists for two-pass records only and writes the
// intermediate image (uint8, tightly packed) into scratch; pass 1 writes the output from the source
// or from that intermediate. Every output byte is independent: thread t of a launch finds its
// record from the per-record block offsets (pass_blocks), then computes bytes
// [t * kBytesPerThread ...) of it with resize_byte(): the taps of resize_ref.cpp's rows, in order.
#pragma once

#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

#include "hd_internal.h"
#include "mmcore/hash_gpu.h"
#include "resize_internal.h"

namespace mmcore::gpu_detail {

constexpr int kResizeThreads = 256;
constexpr int kResizeBytesPerThread = 4;
constexpr std::int64_t kResizeBlockBytes = kResizeThreads * kResizeBytesPerThread;

enum ResizePassKind : std::int32_t {
  kPassNone = 0,
  kPassCopy = 1,
  kPassHorizontal = 2,
  kPassVertical = 3,
  kPassNearest = 4,  ///< xi table at `start`, yi table at `count`
};

struct ResizePass {
  std::int32_t kind;
  std::int32_t channels;
  std::int32_t in_scratch;   ///< reads scratch (pass 1 of a two-pass record) instead of pixels
  std::int32_t out_scratch;  ///< writes scratch (pass 0)
  std::int64_t in_offset, in_stride;
  std::int64_t out_offset, out_stride;
  std::int32_t out_w, out_h;
  std::int64_t start, count, coeffs;  ///< arena offsets of the axis (or the nearest tables)
  std::int32_t ksize;
  std::int32_t reserved;
};

struct ResizeRecordPlan {
  ResizePass pass[2];
};

/// Output byte `i` (row-major over out_h x out_w x channels) of pass `p`.
MMCORE_HD inline void resize_byte(const ResizePass& p, const std::int32_t* arena, const std::uint8_t* pixels,
                                  std::uint8_t* scratch, std::uint8_t* out, std::int64_t i) {
  const std::int32_t c = p.channels;
  const std::int64_t row_bytes = static_cast<std::int64_t>(p.out_w) * c;
  const std::int32_t y = static_cast<std::int32_t>(i / row_bytes);
  const std::int64_t rem = i - y * row_bytes;
  const std::int32_t x = static_cast<std::int32_t>(rem / c);
  const std::int32_t ch = static_cast<std::int32_t>(rem - static_cast<std::int64_t>(x) * c);
  const std::uint8_t* in = (p.in_scratch ? scratch : pixels) + p.in_offset;
  std::uint8_t v = 0;
  if (p.kind == kPassCopy) {
    v = in[y * p.in_stride + rem];
  } else if (p.kind == kPassHorizontal) {
    const std::int32_t s = arena[p.start + x];
    const std::int32_t n = arena[p.count + x];
    const std::int32_t* k = arena + p.coeffs + static_cast<std::int64_t>(x) * p.ksize;
    const std::uint8_t* r = in + y * p.in_stride + static_cast<std::int64_t>(s) * c + ch;
    std::int32_t acc = resize_detail::kRoundHalf;
    for (std::int32_t t = 0; t < n; ++t)
      acc = resize_detail::mac(acc, r[static_cast<std::int64_t>(t) * c], k[t]);
    v = resize_detail::clip8(acc);
  } else if (p.kind == kPassVertical) {
    const std::int32_t s = arena[p.start + y];
    const std::int32_t n = arena[p.count + y];
    const std::int32_t* k = arena + p.coeffs + static_cast<std::int64_t>(y) * p.ksize;
    const std::uint8_t* r = in + static_cast<std::int64_t>(s) * p.in_stride + rem;
    std::int32_t acc = resize_detail::kRoundHalf;
    for (std::int32_t t = 0; t < n; ++t) acc = resize_detail::mac(acc, r[t * p.in_stride], k[t]);
    v = resize_detail::clip8(acc);
  } else if (p.kind == kPassNearest) {
    const std::int32_t sx = arena[p.start + x];
    const std::int32_t sy = arena[p.count + y];
    v = (sx < 0 || sy < 0) ? 0 : in[sy * p.in_stride + static_cast<std::int64_t>(sx) * c + ch];
  }
  (p.out_scratch ? scratch : out)[p.out_offset + y * p.out_stride + rem] = v;
}

/// Bytes pass `p` writes.
MMCORE_HD inline std::int64_t pass_bytes(const ResizePass& p) {
  return p.kind == kPassNone ? 0 : static_cast<std::int64_t>(p.out_w) * p.out_h * p.channels;
}

/// The record of block `b` of a launch: the last r with first_block[r] <= b (first_block has
/// count + 1 ascending entries; records with no bytes repeat an entry and are skipped).
MMCORE_HD inline std::int32_t block_record(const std::int64_t* first_block, std::int32_t count,
                                           std::int64_t b) {
  std::int32_t lo = 0, hi = count - 1;
  while (lo < hi) {
    const std::int32_t mid = (lo + hi + 1) / 2;
    if (first_block[mid] <= b)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

/// Why a descriptor pair is refused (nullptr: fine).
inline const char* resize_record_problem(const GpuImage& s, const GpuImage& d, std::int64_t pixel_bytes,
                                         std::int64_t out_bytes) {
  if (!gpu_image_fits(s, pixel_bytes)) return "source descriptor invalid or outside the pixel buffer";
  if (!gpu_image_fits(d, out_bytes)) return "destination descriptor invalid or outside the output buffer";
  if (s.channels != d.channels) return "source and destination channel counts differ";
  return nullptr;
}

/// Why a resize_batch call is refused as a whole (nullptr: accepted).
inline const char* resize_batch_problem(std::int32_t count, const void* pixels, const void* src,
                                        const void* out, const void* dst, const void* statuses,
                                        Filter filter) {
  if (count < 0) return "negative count";
  if (count > 0 &&
      (pixels == nullptr || src == nullptr || out == nullptr || dst == nullptr || statuses == nullptr))
    return "null buffer";
  if (static_cast<int>(filter) > static_cast<int>(Filter::kLanczos3)) return "unknown filter";
  return nullptr;
}

/// Plans a batch: per record two passes, the tables in one arena (one copy per distinct axis),
/// the scratch of intermediates, the block offsets of each launch.
class ResizePlanner {
 public:
  std::vector<ResizeRecordPlan> plans;
  std::vector<std::int32_t> arena;
  std::vector<std::int64_t> first_block[2];  ///< count + 1 per pass
  std::int64_t blocks[2] = {0, 0};
  std::int64_t scratch_bytes = 0;

  /// Scratch bytes record (s, d) needs (its intermediate image; 0 for one pass).
  static std::int64_t record_scratch(const GpuImage& s, const GpuImage& d, Filter filter) {
    if (filter == Filter::kNearest || s.width == d.width || s.height == d.height) return 0;
    const std::int32_t dh = s.height - d.height, dw = s.width - d.width;
    const bool vertical_first = dh > 0 && dh > dw * 2;
    const std::int64_t w = vertical_first ? s.width : d.width;
    const std::int64_t h = vertical_first ? d.height : s.height;
    return (w * s.channels * h + 15) / 16 * 16;
  }

  void plan(const GpuImage* src, const GpuImage* dst, std::int32_t count, std::int64_t pixel_bytes,
            std::int64_t out_bytes, Filter filter, Status* statuses) {
    plans.assign(static_cast<std::size_t>(count), ResizeRecordPlan{});
    arena.clear();
    axes_.clear();
    scratch_bytes = 0;
    for (std::int32_t i = 0; i < count; ++i) {
      statuses[i] = resize_record_problem(src[i], dst[i], pixel_bytes, out_bytes) == nullptr
                        ? Status::kOk
                        : Status::kUnsupported;
      if (statuses[i] == Status::kOk) plan_record(src[i], dst[i], filter, &plans[i]);
    }
    for (int p = 0; p < 2; ++p) {
      first_block[p].assign(static_cast<std::size_t>(count) + 1, 0);
      std::int64_t b = 0;
      for (std::int32_t i = 0; i < count; ++i) {
        first_block[p][i] = b;
        b += (pass_bytes(plans[i].pass[p]) + kResizeBlockBytes - 1) / kResizeBlockBytes;
      }
      first_block[p][count] = b;
      blocks[p] = b;
    }
  }

 private:
  std::map<std::tuple<std::int32_t, std::int32_t, int>, std::int64_t>
      axes_;  ///< (in, out, filter) -> arena offset

  /// Arena offset of the tables for in -> out: start, count (out each), coeffs (out * ksize); or
  /// for nearest the index table (out).
  std::int64_t axis(std::int32_t in, std::int32_t out, Filter filter, std::int32_t* ksize) {
    const auto key = std::make_tuple(in, out, static_cast<int>(filter));
    const auto it = axes_.find(key);
    if (it != axes_.end()) {
      *ksize = arena[it->second];
      return it->second + 1;
    }
    const std::int64_t at = static_cast<std::int64_t>(arena.size());
    if (filter == Filter::kNearest) {
      const std::vector<std::int32_t> idx = resize_detail::nearest_index(in, out);
      arena.push_back(0);
      arena.insert(arena.end(), idx.begin(), idx.end());
      *ksize = 0;
    } else {
      resize_detail::AxisTaps taps;
      resize_detail::compute_axis(in, out, filter, &taps);
      arena.push_back(taps.axis.ksize);
      arena.insert(arena.end(), taps.start.begin(), taps.start.end());
      arena.insert(arena.end(), taps.count.begin(), taps.count.end());
      arena.insert(arena.end(), taps.coeffs.begin(), taps.coeffs.end());
      *ksize = taps.axis.ksize;
    }
    axes_.emplace(key, at);
    return at + 1;
  }

  ResizePass pass_to(std::int32_t kind, std::int32_t c, const GpuImage& out) const {
    ResizePass p{};
    p.kind = kind;
    p.channels = c;
    p.out_offset = out.offset;
    p.out_stride = out.stride;
    p.out_w = out.width;
    p.out_h = out.height;
    return p;
  }

  void set_axis(ResizePass* p, std::int32_t in, std::int32_t out, Filter filter) {
    std::int32_t ksize = 0;
    const std::int64_t at = axis(in, out, filter, &ksize);
    p->start = at;
    p->count = at + out;
    p->coeffs = at + 2 * static_cast<std::int64_t>(out);
    p->ksize = ksize;
  }

  void plan_record(const GpuImage& s, const GpuImage& d, Filter filter, ResizeRecordPlan* r) {
    const std::int32_t c = s.channels;
    ResizePass& last = r->pass[1];
    if (s.width == d.width && s.height == d.height) {
      last = pass_to(kPassCopy, c, d);
    } else if (filter == Filter::kNearest) {
      last = pass_to(kPassNearest, c, d);
      std::int32_t k = 0;
      last.start = axis(s.width, d.width, filter, &k);
      last.count = axis(s.height, d.height, filter, &k);
    } else if (s.height == d.height) {
      last = pass_to(kPassHorizontal, c, d);
      set_axis(&last, s.width, d.width, filter);
    } else if (s.width == d.width) {
      last = pass_to(kPassVertical, c, d);
      set_axis(&last, s.height, d.height, filter);
    } else {
      // Two passes through a packed intermediate in scratch, in resize.cpp's order.
      const std::int32_t dh = s.height - d.height, dw = s.width - d.width;
      const bool vertical_first = dh > 0 && dh > dw * 2;
      GpuImage mid;
      mid.width = vertical_first ? s.width : d.width;
      mid.height = vertical_first ? d.height : s.height;
      mid.channels = c;
      mid.stride = static_cast<std::int64_t>(mid.width) * c;
      mid.offset = scratch_bytes;
      scratch_bytes += record_scratch(s, d, filter);
      ResizePass& first = r->pass[0];
      first = pass_to(vertical_first ? kPassVertical : kPassHorizontal, c, mid);
      first.out_scratch = 1;
      last = pass_to(vertical_first ? kPassHorizontal : kPassVertical, c, d);
      last.in_scratch = 1;
      last.in_offset = mid.offset;
      last.in_stride = mid.stride;
      if (vertical_first) {
        set_axis(&first, s.height, d.height, filter);
        set_axis(&last, s.width, d.width, filter);
      } else {
        set_axis(&first, s.width, d.width, filter);
        set_axis(&last, s.height, d.height, filter);
      }
      first.in_offset = s.offset;
      first.in_stride = s.stride;
      return;
    }
    last.in_offset = s.offset;
    last.in_stride = s.stride;
  }
};

}  // namespace mmcore::gpu_detail
