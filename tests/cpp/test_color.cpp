// C++ test of JPEG's YCbCr -> RGB rows (color_internal.h).
//
// 1. The scalar ref against the conversion libjpeg-turbo installs for a YCbCr JPEG decoded to
//    RGB (its SIMD variant on x86-64), on all 2^24 (Y, Cb, Cr) values.
// 2. Every variant this CPU runs against the ref on the same values, and on every width 0..100
//    with the planes ending exactly at an unreadable page and guard bytes after the output.
//
// Build and run (tests/test_decode_jpeg.py does this when a build tree exists):
//   g++ -O2 -std=c++17 -Icpp/include -Icpp/src tests/cpp/test_color.cpp build/<tag>/cpp/libmmcore_cpu.a \
//       $(pkg-config --libs libjpeg libpng libwebp libwebpdemux zlib) -lpthread -o /tmp/test_color &&
//       /tmp/test_color
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "color_internal.h"
#include "libjpeg_fixture.h"

namespace {

constexpr int kWidth = 4096;  // one row per (Cr, high bits of Cb): Y and Cb's low 4 bits vary along it
int failures = 0;

/// Planes for row `n` of the 4096 rows covering every value: Cr = n / 16, Cb = (n % 16) * 16 + i / 256,
/// Y = i % 256.
void fill(int n, std::uint8_t* y, std::uint8_t* cb, std::uint8_t* cr) {
  for (int i = 0; i < kWidth; ++i) {
    y[i] = static_cast<std::uint8_t>(i & 255);
    cb[i] = static_cast<std::uint8_t>((n % 16) * 16 + (i >> 8));
    cr[i] = static_cast<std::uint8_t>(n / 16);
  }
}

}  // namespace

int main() {
  using namespace mmcore::detail;
  // Planes padded as libjpeg's own buffers are (its SIMD reads whole vectors).
  std::vector<std::uint8_t> yp(kWidth + 64), cbp(kWidth + 64), crp(kWidth + 64);
  std::vector<std::uint8_t> want(3 * kWidth), got(3 * kWidth + 64);

  // 1. The ref against libjpeg-turbo.
  const std::vector<unsigned char> jpg =
      mmcore_test::make_jpeg(kWidth, 8, 3, [](int, int, int) { return static_cast<std::uint8_t>(128); });
  mmcore_test::StartedDecompress started(jpg, [](j_decompress_ptr c) { c->out_color_space = JCS_RGB; });
  jpeg_decompress_struct& d = started.d;
  long rows_vs_libjpeg = 0;
  if (d.jpeg_color_space != JCS_YCbCr || d.output_width != static_cast<JDIMENSION>(kWidth)) {
    std::printf("FAIL the test JPEG is not a %d-wide YCbCr image\n", kWidth);
    return 1;
  }
  for (int n = 0; n < 4096; ++n) {
    fill(n, yp.data(), cbp.data(), crp.data());
    JSAMPROW planes[3][1] = {{yp.data()}, {cbp.data()}, {crp.data()}};
    JSAMPARRAY image[3] = {planes[0], planes[1], planes[2]};
    JSAMPROW out = got.data();
    d.cconvert->color_convert(&d, image, 0, &out, 1);
    ycc_rgb_row_ref(yp.data(), cbp.data(), crp.data(), want.data(), kWidth);
    if (std::memcmp(got.data(), want.data(), want.size()) != 0 && failures++ < 5) {
      for (int i = 0; i < 3 * kWidth; ++i) {
        if (got[i] != want[i]) {
          std::printf("FAIL ref differs from libjpeg-turbo at Y %d Cb %d Cr %d channel %d: %d vs %d\n",
                      yp[i / 3], cbp[i / 3], crp[i / 3], i % 3, want[i], got[i]);
          break;
        }
      }
    }
    ++rows_vs_libjpeg;
  }

  // 2. Variants against the ref.
  long variant_rows = 0;
  YccRgbRowFn tested = nullptr;
  for (mmcore::Backend b : {mmcore::Backend::kAvx2, mmcore::Backend::kAvx512}) {
    const YccRgbRowFn fn = ycc_rgb_row_fn(b);
    if (fn == nullptr || fn == tested) continue;  // kAvx512 on a CPU without it gives the avx2 rows
    tested = fn;
    const char* name = mmcore::backend_name(b);
    std::printf("checking the %s variant\n", name);
    for (int n = 0; n < 4096; ++n) {
      fill(n, yp.data(), cbp.data(), crp.data());
      ycc_rgb_row_ref(yp.data(), cbp.data(), crp.data(), want.data(), kWidth);
      std::memset(got.data(), 0x5A, got.size());
      fn(yp.data(), cbp.data(), crp.data(), got.data(), kWidth);
      bool guard = true;
      for (std::size_t i = want.size(); i < got.size(); ++i) guard = guard && got[i] == 0x5A;
      if ((std::memcmp(got.data(), want.data(), want.size()) != 0 || !guard) && failures++ < 5)
        std::printf("FAIL %s row %d differs from ref%s\n", name, n, guard ? "" : " or wrote past it");
      ++variant_rows;
    }
    // Widths 0..100, each plane's last byte touching a PROT_NONE page.
    const long page = sysconf(_SC_PAGESIZE);
    auto* mem = static_cast<std::uint8_t*>(
        mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    mprotect(mem + page, page, PROT_NONE);
    std::mt19937 rng(5);
    for (std::uint32_t w = 0; w <= 100; ++w) {
      // Three planes of w bytes packed at the end of the readable page, in the order Y, Cb, Cr.
      std::uint8_t* cr = mem + page - w;
      std::uint8_t* cb = cr - w;
      std::uint8_t* y = cb - w;
      for (std::uint32_t i = 0; i < 3 * w; ++i) y[i] = static_cast<std::uint8_t>(rng());
      std::vector<std::uint8_t> ref(3 * w + 1, 0x5A), out(3 * w + 1, 0x5A);
      ycc_rgb_row_ref(y, cb, cr, ref.data(), w);
      fn(y, cb, cr, out.data(), w);
      if (out != ref && failures++ < 5)
        std::printf("FAIL %s width %u differs from ref or wrote past it\n", name, w);
    }
    munmap(mem, 2 * page);
  }
  if (failures == 0) {
    std::printf(
        "PASS color: %ld rows of %d (all 2^24 YCbCr values) against libjpeg-turbo, %ld variant rows\n",
        rows_vs_libjpeg, kWidth, variant_rows);
    return 0;
  }
  std::printf("FAILED %d\n", failures);
  return 1;
}
