// cuda/resize.cu's two launches on the CPU: every block finds its record with block_record and
// computes its bytes with resize_byte (threads backwards). Used by
// tests/cpp/test_resize_gpu_emu.cpp and tests/gpu/fake_kernels.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "resize_gpu_internal.h"

namespace mmcore_test {

inline void emulate_resize(const mmcore::gpu_detail::ResizePlanner& plan, std::int32_t n,
                           const std::uint8_t* pixels, std::uint8_t* out) {
  namespace g = mmcore::gpu_detail;
  std::vector<std::uint8_t> scratch(static_cast<std::size_t>(plan.scratch_bytes) + 16, 0xEE);
  for (int p = 0; p < 2; ++p) {
    for (std::int64_t b = 0; b < plan.blocks[p]; ++b) {
      const std::int32_t r = g::block_record(plan.first_block[p].data(), n, b);
      const g::ResizePass& pass = plan.plans[r].pass[p];
      const std::int64_t total = g::pass_bytes(pass);
      const std::int64_t base = (b - plan.first_block[p][r]) * g::kResizeBlockBytes;
      for (int t = g::kResizeThreads - 1; t >= 0; --t)
        for (int e = 0; e < g::kResizeBytesPerThread; ++e) {
          const std::int64_t i = base + static_cast<std::int64_t>(e) * g::kResizeThreads + t;
          if (i < total) g::resize_byte(pass, plan.arena.data(), pixels, scratch.data(), out, i);
        }
    }
  }
}

}  // namespace mmcore_test
