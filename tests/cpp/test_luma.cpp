// C++ test of the Pillow-L row conversion (luma_internal.h): every variant the CPU runs against the
// scalar ref, bit for bit, on all 2^24 RGB values, on every width 0..80 (the SIMD tail), and with
// the row ending exactly at an unreadable page (so any read past 3 * width bytes crashes).
//
// Build and run (tests/test_hash.py does this when a build tree exists):
//   g++ -O2 -std=c++17 -Icpp/include -Icpp/src tests/cpp/test_luma.cpp build/<tag>/cpp/libmmcore_cpu.a \
//       $(pkg-config --libs libjpeg libpng libwebp libwebpdemux zlib) -lpthread -o /tmp/test_luma &&
//       /tmp/test_luma
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "luma_internal.h"

namespace {

int failures = 0;

void check(mmcore::detail::LumaRowFn fn, const char* name, const std::uint8_t* rgb, std::int32_t width) {
  std::vector<std::uint8_t> want(static_cast<std::size_t>(width) + 1, 0xAB), got(want);
  mmcore::detail::luma_row_ref(rgb, want.data(), width);
  fn(rgb, got.data(), width);
  if (got != want) {
    if (++failures < 10)
      std::printf("FAIL %s width %d differs from ref (or wrote past the row)\n", name, width);
  }
}

}  // namespace

int main() {
  using mmcore::Backend;
  const Backend variants[] = {Backend::kAvx2, Backend::kAvx512};
  std::mt19937 rng(7);
  for (Backend b : variants) {
    const mmcore::detail::LumaRowFn fn = mmcore::detail::luma_row_fn(b);
    const char* name = mmcore::backend_name(b);
    // Every RGB value: 2^24 pixels in rows of 4096 (+ odd widths for the tails).
    std::vector<std::uint8_t> row(3 * 4096);
    for (std::uint32_t base = 0; base < (1u << 24); base += 4096) {
      for (std::uint32_t i = 0; i < 4096; ++i) {
        const std::uint32_t v = base + i;
        row[3 * i] = v >> 16, row[3 * i + 1] = (v >> 8) & 255, row[3 * i + 2] = v & 255;
      }
      check(fn, name, row.data(), 4096);
    }
    // Every width up to 80, the row's last byte touching a PROT_NONE page.
    const long page = sysconf(_SC_PAGESIZE);
    auto* mem = static_cast<std::uint8_t*>(
        mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    mprotect(mem + page, page, PROT_NONE);
    for (std::int32_t w = 0; w <= 80; ++w) {
      std::uint8_t* p = mem + page - 3 * w;
      for (std::int32_t i = 0; i < 3 * w; ++i) p[i] = static_cast<std::uint8_t>(rng());
      check(fn, name, p, w);
    }
    munmap(mem, 2 * page);
    std::printf("%s: %s\n", name,
                fn == mmcore::detail::luma_row_ref ? "ref (variant not available)" : "checked");
  }
  std::printf("%s\n", failures == 0 ? "PASS" : "FAIL");
  return failures == 0 ? 0 : 1;
}
