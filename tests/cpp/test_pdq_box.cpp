// C++ test of PDQ's vector box kernels (pdq_box_internal.h): each kernel the CPU runs against a
// box that walks one line at a time (the PDQ reference's box1D: accumulate, grow, full, shrink),
// bit for bit, over every output, for windows 1 to 17 (powers of two divide by their inverse),
// rows and columns that are and are not multiples of 8, and inputs of mixed magnitudes (so that a
// reordered sum or an inexact division changes bits).
//
// Build and run (tests/test_hash.py does this when a build tree exists):
//   g++ -O2 -std=c++17 -Icpp/include -Icpp/src tests/cpp/test_pdq_box.cpp build/<tag>/cpp/libmmcore_cpu.a \
//       $(pkg-config --libs libjpeg libpng libwebp libwebpdemux zlib) -lpthread -o /tmp/test_pdq_box &&
//       /tmp/test_pdq_box
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "pdq_box_internal.h"

namespace {

using mmcore::detail::PdqBoxPhases;

int failures = 0;

/// The box along one line of `length` samples `step` apart (in -> out), one sample at a time.
void box_line(const float* in, float* out, std::int64_t step, int length, int window) {
  const PdqBoxPhases ph = mmcore::detail::pdq_box_phases(length, window);
  float sum = 0.0f;
  int count = 0;
  std::int64_t li = 0, ri = 0, oi = 0;
  for (int t = 0; t < ph.accumulate; ++t, ++ri, ++count) sum += in[ri * step];
  for (int t = 0; t < ph.grow; ++t, ++ri, ++oi) {
    sum += in[ri * step];
    ++count;
    out[oi * step] = sum / static_cast<float>(count);
  }
  for (int t = 0; t < ph.full; ++t, ++li, ++ri, ++oi) {
    sum += in[ri * step];
    sum -= in[li * step];
    out[oi * step] = sum / static_cast<float>(count);
  }
  for (int t = 0; t < ph.shrink; ++t, ++li, ++oi) {
    sum -= in[li * step];
    --count;
    out[oi * step] = sum / static_cast<float>(count);
  }
}

bool same(const float* a, const float* b, std::size_t n) {
  return std::memcmp(a, b, n * sizeof(float)) == 0;
}

void report(const char* what, int rows, int cols, int window) {
  if (failures++ < 10) std::printf("FAIL %s: %d x %d, window %d\n", what, rows, cols, window);
}

}  // namespace

int main() {
  using namespace mmcore::detail;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  long checks = 0;
  for (mmcore::Backend backend : {mmcore::Backend::kAvx2, mmcore::Backend::kAvx512}) {
    const PdqBoxKernels k = pdq_box_kernels(backend);
    if (k.rows == nullptr && k.rows_picked == nullptr && k.cols == nullptr) continue;
    const char* name = mmcore::backend_name(backend);
    for (int rows : {1, 2, 7, 8, 9, 16, 31, 64, 67, 130}) {
      for (int cols : {1, 3, 8, 13, 16, 33, 64, 71, 129}) {
        for (int window = 1; window <= 17; ++window) {
          if (window > rows && window > cols) continue;
          const std::size_t n = static_cast<std::size_t>(rows) * cols;
          std::vector<float> in(n);
          for (float& v : in) v = unit(rng) * (unit(rng) < 0.1f ? 1e4f : 255.0f) + unit(rng) * 1e-3f;
          // Columns (a window longer than the column still boxes: the phases clamp nothing, so
          // only windows <= rows are valid there, as in PDQ, where the window is ~rows / 128).
          if (k.cols != nullptr && window <= rows) {
            std::vector<float> want(n, -1.0f), got(n, -2.0f), sums(static_cast<std::size_t>(cols));
            for (int x = 0; x < cols; ++x) box_line(in.data() + x, want.data() + x, cols, rows, window);
            k.cols(in.data(), got.data(), rows, cols, pdq_box_phases(rows, window), sums.data());
            if (!same(want.data(), got.data(), n)) report("cols", rows, cols, window);
            ++checks;
          }
          if (window > cols) continue;
          std::vector<float> want(n, -1.0f);
          for (int y = 0; y < rows; ++y) {
            box_line(in.data() + static_cast<std::size_t>(y) * cols,
                     want.data() + static_cast<std::size_t>(y) * cols, 1, cols, window);
          }
          // The strip: 8 * cols floats, 32-byte aligned.
          std::vector<float> strip_buf(8 * static_cast<std::size_t>(cols) + 8);
          float* strip =
              reinterpret_cast<float*>((reinterpret_cast<std::uintptr_t>(strip_buf.data()) + 31) / 32 * 32);
          const PdqBoxPhases ph = pdq_box_phases(cols, window);
          if (k.rows != nullptr) {
            std::vector<float> got(n, -2.0f);
            const std::int32_t done = k.rows(in.data(), got.data(), rows, cols, ph, strip);
            if (done != rows / 8 * 8 || !same(want.data(), got.data(), static_cast<std::size_t>(done) * cols))
              report("rows", rows, cols, window);
            ++checks;
          }
          if (k.rows_picked != nullptr) {
            // 64 non-decreasing picks, some twice (as PDQ's decimation picks on narrow images).
            std::int32_t pick[64];
            for (int j = 0; j < 64; ++j) pick[j] = static_cast<std::int32_t>(((j + 0.5) * cols) / 64);
            std::vector<float> got(static_cast<std::size_t>(rows) * 64, -2.0f);
            const std::int32_t done = k.rows_picked(in.data(), got.data(), rows, cols, ph, pick, strip);
            bool ok = done == rows / 8 * 8;
            for (int y = 0; ok && y < done; ++y) {
              for (int j = 0; j < 64; ++j) {
                const float w = want[static_cast<std::size_t>(y) * cols + pick[j]];
                ok = ok && std::memcmp(&w, &got[static_cast<std::size_t>(y) * 64 + j], sizeof w) == 0;
              }
            }
            if (!ok) report("rows_picked", rows, cols, window);
            ++checks;
          }
        }
      }
    }
    std::printf("%s: box kernels checked\n", name);
  }
  std::printf("%ld checks, %d failures\n", checks, failures);
  if (failures != 0) return 1;
  std::printf("PASS\n");
  return 0;
}
