// orient_pixels (EXIF orientation: tiled for the axis-swapping orientations) against a one-pixel-
// at-a-time walk of Pillow's exif_transpose map: every orientation 0..9 (0 and 9 copy), 1 to 5
// channels, sizes around the 128-pixel tile, rows padded on both sides (the padding must stay as it
// was). Built and run by tests/test_decode_jpeg.py::test_cpp_orient_pixels_match_a_pixel_walk.
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "mmcore/decode.h"
#include "mmcore/views.h"

namespace {

/// dst(x, y) = src(sx, sy), written out per orientation (Pillow's ImageOps.exif_transpose).
void reference(const mmcore::ConstImageView& src, const mmcore::ImageView& dst, int o) {
  const int w = src.width, h = src.height, c = src.channels;
  for (int y = 0; y < dst.height; ++y) {
    for (int x = 0; x < dst.width; ++x) {
      int sx = x, sy = y;
      switch (o) {
        case 2: sx = w - 1 - x; break;                  // mirror left-right
        case 3: sx = w - 1 - x, sy = h - 1 - y; break;  // rotate 180
        case 4: sy = h - 1 - y; break;                  // mirror top-bottom
        case 5: sx = y, sy = x; break;                  // transpose
        case 6: sx = y, sy = h - 1 - x; break;          // rotate 270 (90 clockwise)
        case 7: sx = w - 1 - y, sy = h - 1 - x; break;  // transverse
        case 8: sx = w - 1 - y, sy = x; break;          // rotate 90
        default: break;
      }
      for (int k = 0; k < c; ++k) dst.row(y)[x * c + k] = src.row(sy)[sx * c + k];
    }
  }
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  long checks = 0, failures = 0;
  const int sizes[][2] = {{1, 1},     {1, 7},    {9, 1},   {63, 65}, {128, 128},
                          {129, 130}, {130, 97}, {257, 3}, {3, 257}};
  for (int c = 1; c <= 5; ++c) {
    for (const auto& wh : sizes) {
      const int w = wh[0], h = wh[1];
      const std::int64_t sstride = std::int64_t{w} * c + 5;
      std::vector<std::uint8_t> s(static_cast<std::size_t>(sstride * h));
      for (auto& v : s) v = static_cast<std::uint8_t>(rng());
      const mmcore::ConstImageView src(s.data(), w, h, c, sstride);
      for (int o = 0; o <= 9; ++o) {
        const bool swap = o >= 5 && o <= 8;
        const int dw = swap ? h : w, dh = swap ? w : h;
        const std::int64_t dstride = std::int64_t{dw} * c + 3;
        std::vector<std::uint8_t> got(static_cast<std::size_t>(dstride * dh), 0xA5), want(got);
        mmcore::orient_pixels(src, mmcore::ImageView{got.data(), dw, dh, c, dstride}, o);
        reference(src, mmcore::ImageView{want.data(), dw, dh, c, dstride}, o);
        ++checks;
        if (got != want) {
          if (failures < 10) std::printf("FAIL orientation %d, %dx%d, %d channels\n", o, w, h, c);
          ++failures;
        }
      }
    }
  }
  std::printf("%ld checks, %ld failures\n%s\n", checks, failures, failures == 0 ? "PASS" : "FAILED");
  return failures == 0 ? 0 : 1;
}
