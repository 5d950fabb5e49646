// C++ test of PDQ's float luma rows (pdq_luma_internal.h): every variant the CPU runs against the
// scalar ref, bit for bit, in both modes (the reference's float32, pdqhash's float64), for 3 and
// 4 channels, on all 2^24 RGB values, and on every width 0..100 with the row ending exactly at
// an unreadable page and guard values after the output.
//
// Build and run (tests/test_hash.py does this when a build tree exists):
//   g++ -O2 -std=c++17 -Icpp/include -Icpp/src tests/cpp/test_pdq_luma.cpp build/<tag>/cpp/libmmcore_cpu.a \
//       $(pkg-config --libs libjpeg libpng libwebp libwebpdemux zlib) -lpthread -o /tmp/test_pdq_luma &&
//       /tmp/test_pdq_luma
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "pdq_luma_internal.h"

namespace {

int failures = 0;

bool same_floats(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

int main() {
  using mmcore::PdqLuma;
  using namespace mmcore::detail;
  long rows = 0;
  PdqLumaRowFn tested = nullptr;
  for (mmcore::Backend backend : {mmcore::Backend::kAvx2, mmcore::Backend::kAvx512}) {
    const PdqLumaRowFn fn = pdq_luma_row_fn(backend);
    if (fn == nullptr || fn == tested) continue;  // kAvx512 on a CPU without it gives the avx2 row
    tested = fn;
    const char* name = mmcore::backend_name(backend);
    std::printf("checking the %s variant\n", name);
    for (PdqLuma mode : {PdqLuma::kReference, PdqLuma::kPdqhash}) {
      const char* mode_name = mode == PdqLuma::kReference ? "reference" : "pdqhash";
      for (int c : {3, 4}) {
        // Every RGB value, 4096 pixels per row (alpha random for 4 channels).
        constexpr int kW = 4096;
        std::vector<std::uint8_t> row(static_cast<std::size_t>(kW) * c);
        std::vector<float> want(kW + 1, -1.0f), got(kW + 1, -1.0f);
        std::mt19937 rng(3);
        for (std::uint32_t base = 0; base < (1u << 24); base += kW) {
          for (int i = 0; i < kW; ++i) {
            const std::uint32_t v = base + static_cast<std::uint32_t>(i);
            std::uint8_t* p = row.data() + static_cast<std::size_t>(i) * c;
            p[0] = static_cast<std::uint8_t>(v >> 16), p[1] = static_cast<std::uint8_t>(v >> 8),
            p[2] = static_cast<std::uint8_t>(v);
            if (c == 4) p[3] = static_cast<std::uint8_t>(rng());
          }
          pdq_luma_row_ref(row.data(), c, kW, mode, want.data());
          fn(row.data(), c, kW, mode, got.data());
          if (!same_floats(want, got) && failures++ < 5)
            std::printf("FAIL %s %s %d channels: colours from %u differ from ref\n", name, mode_name, c,
                        base);
          ++rows;
        }
        // Every width up to 100, the row's last byte touching a PROT_NONE page.
        const long page = sysconf(_SC_PAGESIZE);
        auto* mem = static_cast<std::uint8_t*>(
            mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        mprotect(mem + page, page, PROT_NONE);
        for (std::int32_t w = 0; w <= 100; ++w) {
          std::uint8_t* p = mem + page - static_cast<long>(w) * c;
          for (std::int32_t i = 0; i < w * c; ++i) p[i] = static_cast<std::uint8_t>(rng());
          std::vector<float> ref(static_cast<std::size_t>(w) + 1, -1.0f), out(ref);
          pdq_luma_row_ref(p, c, w, mode, ref.data());
          fn(p, c, w, mode, out.data());
          if (!same_floats(ref, out) && failures++ < 5)
            std::printf("FAIL %s %s %d channels: width %d differs from ref or wrote past it\n", name,
                        mode_name, c, w);
        }
        munmap(mem, 2 * page);
      }
    }
  }
  if (failures == 0) {
    std::printf("PASS pdq luma: %ld rows of 4096 (all 2^24 colours per mode and channel count)\n", rows);
    return 0;
  }
  std::printf("FAILED %d\n", failures);
  return 1;
}
