// C++ test of the GPU resize kernel's code on the CPU: cuda/resize.cu's launches (pass 0, then
// pass 1; every block finds its record with block_record and computes its bytes with resize_byte)
// are run here block by block, threads backwards, and the outputs compared with mmcore::resize
// (bit-exact with Pillow 13) byte for byte, on random images: every filter, 1 / 3 / 4 channels,
// padded strides, shrinking and enlarging, one axis unchanged, the same size, vertical-first
// shapes, 1-pixel sides. Invalid descriptor pairs get kUnsupported and their output stays
// untouched. What it cannot check: the launch, memory and errors; bench/gpu_check.sh does that on
// a GPU host (mmcore_kernel_check).
//
// Build and run from the repository root (tests/test_resize.py does this):
//   g++ -O2 -std=c++17 -Icpp/include -Icpp/src tests/cpp/test_resize_gpu_emu.cpp
//       build/<tag>/cpp/libmmcore_cpu.a $(pkg-config --libs libjpeg libpng libwebp libwebpdemux zlib)
//       -lpthread -o /tmp/test_resize_gpu_emu && /tmp/test_resize_gpu_emu
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "../gpu/resize_emulator.h"
#include "mmcore/resize.h"
#include "resize_gpu_internal.h"

namespace {

namespace g = mmcore::gpu_detail;
using mmcore::GpuImage;

int failures = 0;

void run_batch(std::mt19937& rng, mmcore::Filter filter, int count) {
  std::vector<GpuImage> src, dst;
  std::vector<std::uint8_t> pixels;
  std::int64_t out_bytes = 0;
  const auto dim = [&](int hi) { return 1 + static_cast<int>(rng() % hi); };
  for (int i = 0; i < count; ++i) {
    GpuImage s, d;
    s.channels = d.channels = (i % 3 == 0) ? 1 : ((i % 3 == 1) ? 3 : 4);
    s.width = dim(i % 5 == 0 ? 8 : 300);
    s.height = dim(i % 7 == 0 ? 4 : 300);
    switch (i % 6) {
      case 0:
        d.width = s.width;
        d.height = s.height;
        break;  // copy
      case 1:
        d.width = dim(120);
        d.height = s.height;
        break;  // horizontal only
      case 2:
        d.width = s.width;
        d.height = dim(120);
        break;  // vertical only
      case 3:
        d.width = std::max(1, s.width - 3);
        d.height = dim(40);
        break;  // vertical first
      case 4:
        d.width = dim(500);
        d.height = dim(500);
        break;  // enlarge / mixed
      default:
        d.width = dim(64);
        d.height = dim(64);
        break;
    }
    s.stride = static_cast<std::int64_t>(s.width) * s.channels + (i % 4 == 0 ? 13 : 0);
    d.stride = static_cast<std::int64_t>(d.width) * d.channels + (i % 4 == 1 ? 7 : 0);
    s.offset = static_cast<std::int64_t>(pixels.size());
    pixels.resize(pixels.size() + static_cast<std::size_t>(s.stride * s.height));
    d.offset = out_bytes;
    out_bytes += d.stride * d.height;
    src.push_back(s);
    dst.push_back(d);
  }
  for (auto& p : pixels) p = static_cast<std::uint8_t>(rng() % 4 == 0 ? (rng() % 2) * 255 : rng());
  // Two refusals: mixed channels, and a destination past the output buffer.
  GpuImage bad_s = src[1], bad_d = dst[1];
  bad_d.channels = bad_s.channels == 1 ? 3 : 1;
  src.push_back(bad_s);
  dst.push_back(bad_d);
  GpuImage far = dst[2];
  far.offset = out_bytes;
  src.push_back(src[2]);
  dst.push_back(far);
  const std::int32_t n = static_cast<std::int32_t>(src.size());
  std::vector<std::uint8_t> out(static_cast<std::size_t>(out_bytes) + 64, 0x77);
  std::vector<mmcore::Status> statuses(n, mmcore::Status::kDevice);
  g::ResizePlanner plan;
  plan.plan(src.data(), dst.data(), n, static_cast<std::int64_t>(pixels.size()), out_bytes, filter,
            statuses.data());
  mmcore_test::emulate_resize(plan, n, pixels.data(), out.data());
  for (std::int32_t i = 0; i < count; ++i) {
    if (statuses[i] != mmcore::Status::kOk) {
      std::printf("record %d refused\n", i);
      ++failures;
      continue;
    }
    const GpuImage& s = src[i];
    const GpuImage& d = dst[i];
    std::vector<std::uint8_t> want(static_cast<std::size_t>(d.stride * d.height), 0x77);
    mmcore::resize(mmcore::ConstImageView{pixels.data() + s.offset, s.width, s.height, s.channels, s.stride},
                   mmcore::ImageView{want.data(), d.width, d.height, d.channels, d.stride}, filter);
    for (std::int32_t y = 0; y < d.height; ++y) {
      const std::int64_t row = static_cast<std::int64_t>(d.width) * d.channels;
      if (std::memcmp(out.data() + d.offset + y * d.stride, want.data() + y * d.stride, row) != 0) {
        if (++failures <= 10)
          std::printf("MISMATCH filter %d record %d: %dx%dx%d -> %dx%d, row %d\n", static_cast<int>(filter),
                      i, s.width, s.height, s.channels, d.width, d.height, y);
        break;
      }
      // Stride padding is not written.
      for (std::int64_t b = row; b < d.stride; ++b) {
        if (out[static_cast<std::size_t>(d.offset + y * d.stride + b)] != 0x77) {
          std::printf("padding written: record %d\n", i);
          ++failures;
          break;
        }
      }
    }
  }
  if (statuses[count] != mmcore::Status::kUnsupported ||
      statuses[count + 1] != mmcore::Status::kUnsupported) {
    std::printf("invalid descriptor pairs not refused\n");
    ++failures;
  }
  for (std::size_t b = static_cast<std::size_t>(out_bytes); b < out.size(); ++b)
    if (out[b] != 0x77) {
      std::printf("wrote past the outputs\n");
      ++failures;
      break;
    }
}

}  // namespace

int main() {
  std::mt19937 rng(20261128);
  const mmcore::Filter filters[] = {mmcore::Filter::kNearest, mmcore::Filter::kArea,
                                    mmcore::Filter::kBilinear, mmcore::Filter::kBicubic,
                                    mmcore::Filter::kLanczos3};
  for (int round = 0; round < 3; ++round)
    for (mmcore::Filter f : filters) run_batch(rng, f, 36);
  std::printf(failures == 0 ? "PASS\n" : "FAILED (%d)\n", failures);
  return failures == 0 ? 0 : 1;
}
