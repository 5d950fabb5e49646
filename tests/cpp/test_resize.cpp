// C++ test of the resize kernels on what Python cannot reach: strided source and destination
// views, and sources that end exactly at an unreadable page (so any read past the last pixel,
// e.g. a vector over-read the driver failed to pad, crashes the test). Every variant the CPU
// runs is compared with the scalar ref, bit for bit; destination padding must stay untouched.
//
// Build and run (tests/test_resize.py does this when a build tree exists):
//   g++ -O2 -std=c++17 -Icpp/include tests/cpp/test_resize.cpp build/<tag>/cpp/libmmcore_cpu.a \
//       $(pkg-config --libs libjpeg libpng libwebp libwebpdemux) -lpthread -o /tmp/test_resize &&
//       /tmp/test_resize
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "mmcore/backend.h"
#include "mmcore/resize.h"
#include "resize_internal.h"

namespace {

using mmcore::Backend;
using mmcore::ConstImageView;
using mmcore::Filter;
using mmcore::ImageView;

/// `bytes` of memory whose end touches a PROT_NONE page.
struct GuardedBuffer {
  std::uint8_t* base = nullptr;
  std::size_t map_bytes = 0;
  std::uint8_t* data = nullptr;

  explicit GuardedBuffer(std::size_t bytes) {
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    const std::size_t body = (bytes + page - 1) / page * page;
    map_bytes = body + page;
    void* p = mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    base = static_cast<std::uint8_t*>(p);
    mprotect(base + body, page, PROT_NONE);
    data = base + body - bytes;
  }
  ~GuardedBuffer() {
    if (base != nullptr) munmap(base, map_bytes);
  }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;
};

int failures = 0;

void check(bool ok, const char* what, int sw, int sh, int dw, int dh, int c, int f, int b) {
  if (ok) return;
  ++failures;
  std::printf("FAIL %s: %dx%dx%d -> %dx%d filter %d backend %d\n", what, sw, sh, c, dw, dh, f, b);
}

void run_case(std::mt19937& rng, int sw, int sh, int dw, int dh, int c) {
  std::uniform_int_distribution<int> pad_dist(0, 37), byte(0, 255);
  const std::int64_t src_stride = static_cast<std::int64_t>(sw) * c + pad_dist(rng);
  const std::int64_t dst_stride = static_cast<std::int64_t>(dw) * c + pad_dist(rng) + 1;
  // The last row has no padding: the view's last byte is the buffer's last readable byte.
  GuardedBuffer src(static_cast<std::size_t>(src_stride * (sh - 1) + static_cast<std::int64_t>(sw) * c));
  if (src.data == nullptr) {
    ++failures;
    return;
  }
  for (std::int64_t i = 0; i < src_stride * (sh - 1) + static_cast<std::int64_t>(sw) * c; ++i) {
    src.data[i] = static_cast<std::uint8_t>(byte(rng));
  }
  const ConstImageView sv(src.data, sw, sh, c, src_stride);
  // Contiguous copy of the source: a strided view must give the same answer.
  std::vector<std::uint8_t> packed(static_cast<std::size_t>(sw) * sh * c);
  for (int y = 0; y < sh; ++y) std::memcpy(&packed[static_cast<std::size_t>(y) * sw * c], sv.row(y), sw * c);
  const ConstImageView pv(packed.data(), sw, sh, c, static_cast<std::int64_t>(sw) * c);

  for (int f = 0; f <= static_cast<int>(Filter::kLanczos3); ++f) {
    const Filter filter = static_cast<Filter>(f);
    std::vector<std::uint8_t> ref(static_cast<std::size_t>(dw) * dh * c);
    mmcore::resize(pv, ImageView{ref.data(), dw, dh, c, static_cast<std::int64_t>(dw) * c}, filter,
                   Backend::kRef);
    for (Backend b : {Backend::kRef, Backend::kAvx2, Backend::kAvx512}) {
      if (!mmcore::backend_supported(b) || !mmcore::backend_compiled(b)) continue;
      std::vector<std::uint8_t> out(static_cast<std::size_t>(dst_stride) * dh, 0xA5);
      mmcore::resize(sv, ImageView{out.data(), dw, dh, c, dst_stride}, filter, b);
      bool same = true, pad_kept = true;
      for (int y = 0; y < dh; ++y) {
        const std::uint8_t* row = out.data() + dst_stride * y;
        same = same && std::memcmp(row, &ref[static_cast<std::size_t>(y) * dw * c], dw * c) == 0;
        for (std::int64_t i = static_cast<std::int64_t>(dw) * c; i < dst_stride; ++i)
          pad_kept = pad_kept && row[i] == 0xA5;
      }
      check(same, "strided output differs from contiguous ref", sw, sh, dw, dh, c, f, static_cast<int>(b));
      check(pad_kept, "destination padding written", sw, sh, dw, dh, c, f, static_cast<int>(b));
    }
  }
}

// compute_axis' fast lanczos taps (no libm sin, guarded; the scalar and, where the CPU has them,
// the AVX2 and AVX-512 evaluations) against Pillow's expressions: the same integers for every
// source size 1..600 and a spread of output sizes, both directions, whole axes and windows.
int check_taps() {
  using mmcore::resize_detail::AxisTaps;
  using mmcore::resize_detail::compute_axis;
  using mmcore::resize_detail::LanczosTapsFn;
  using mmcore::resize_detail::TapMath;
  std::vector<std::pair<const char*, LanczosTapsFn>> fast = {{"scalar", nullptr}};
  if (mmcore::backend_supported(Backend::kAvx2) && mmcore::backend_compiled(Backend::kAvx2)) {
    fast.emplace_back("avx2", mmcore::resize_detail::lanczos_taps_for(Backend::kAvx2));
    if (fast.back().second == nullptr) {
      std::printf("FAIL: the avx2 backend has no lanczos taps variant\n");
      ++failures;
    }
  }
  if (mmcore::backend_supported(Backend::kAvx512) && mmcore::backend_compiled(Backend::kAvx512)) {
    fast.emplace_back("avx512", mmcore::resize_detail::lanczos_taps_for(Backend::kAvx512));
    if (fast.back().second == nullptr) {
      std::printf("FAIL: the avx512 backend has no lanczos taps variant\n");
      ++failures;
    }
  }
  int axes = 0;
  for (int in = 1; in <= 600; ++in) {
    const int outs[] = {1,      2,         3, 7, 32, 64, 100, 224, 256, 341, in / 2 + 1, in * 3 / 2 + 1,
                        in + 1, in * 5 + 3};
    for (int out : outs) {
      for (int first : {0, out / 3}) {
        const int count = first == 0 ? -1 : (out - first + 1) / 2;
        AxisTaps b;
        compute_axis(in, out, Filter::kLanczos3, &b, first, count, TapMath::kPillow);
        for (const auto& [name, fn] : fast) {
          AxisTaps a;
          compute_axis(in, out, Filter::kLanczos3, &a, first, count, TapMath::kFast, fn);
          ++axes;
          if (a.start != b.start || a.count != b.count || a.coeffs != b.coeffs) {
            std::printf(
                "FAIL: lanczos taps %d -> %d (first %d) differ between TapMath::kFast (%s) and kPillow\n", in,
                out, first, name);
            ++failures;
          }
        }
      }
    }
  }
  return axes;
}

}  // namespace

int main() {
  std::mt19937 rng(42);
  const int tails[] = {1, 7, 8, 9, 31, 32, 33, 63, 64, 65};
  int cases = 0;
  for (int c : {1, 3, 4}) {
    for (int s : tails) {
      for (int d : tails) {
        run_case(rng, s, s / 2 + 1, d, d + 2, c);              // both axes
        run_case(rng, s * 3 + 1, 5, d, 5, c);                  // horizontal only
        run_case(rng, 3, s + 4, 3, d, c);                      // vertical only
        run_case(rng, d + 1, s * 4 + 3, d * 2, s / 3 + 1, c);  // height shrinks most: vertical first
        cases += 4;
      }
    }
    run_case(rng, 1001, 77, 97, 61, c);  // wide windows
    run_case(rng, 97, 61, 1001, 77, c);
    // Windows of hundreds of taps (a hash's 8 or 9 outputs from a photo's row): every coefficient
    // then fits an int16, which the avx2 grey kernel uses whole.
    run_case(rng, 4001, 3, 9, 3, c);
    run_case(rng, 2500, 17, 8, 5, c);
    cases += 4;
  }
  const int axes = check_taps();
  std::printf("%d cases, %d tap axes, %d failures (backend %s)\n", cases, axes, failures,
              mmcore::backend_name(mmcore::active_backend()));
  return failures == 0 ? 0 : 1;
}
