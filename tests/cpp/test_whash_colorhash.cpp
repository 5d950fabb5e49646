// C++ test of whash_gray and colorhash_rgb (hash_whash.cpp, hash_colorhash.cpp).
//
// Always: properties that need no oracle (invalid views give 0, strided views, alpha ignored,
// a 1-channel image hashes like its 3-channel grey copy, tiny images).
// With arguments: the values imagehash 4.3.2 on Pillow 13.0.0 gives, written by an oracle script:
//   EXPECTED_CSV  rows file,mode,width,height,whash,colorhash,note (file relative to CORPUS_DIR;
//                 rows with an empty whash are skipped): each file is decoded by mmcore (RGB, no
//                 EXIF rotation), converted to grey as Pillow's convert('L'), and both hashes
//                 compared; prints the match counts per top-level folder and every mismatch.
//                 (Oracle: str(imagehash.whash(Image.open(f))), str(imagehash.colorhash(...)).)
//                 16-bit grey PNGs (Pillow mode I;16) are reported but do not fail: mmcore decodes
//                 them by a different, documented rule (see decode_png.cpp).
//   RANDOM_BIN    records: kind byte ('w': whash of a grey array, 'c': colorhash), int32 width,
//                 height, channels, the pixels, uint64 expected hash (little-endian).
//
// Build and run (one command line):
//   g++ -O2 -std=c++17 -Icpp/include tests/cpp/test_whash_colorhash.cpp build/<tag>/cpp/libmmcore_cpu.a
//       $(pkg-config --libs libjpeg libpng libwebp libwebpdemux zlib) -lpthread -o /tmp/test_whash_colorhash
//       &&
//   /tmp/test_whash_colorhash [CORPUS_DIR EXPECTED_CSV [RANDOM_BIN]]
// Exit status 0 when every check passes.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "mmcore/decode.h"
#include "mmcore/hash.h"

namespace {

using mmcore::ConstImageView;
using mmcore::Filter;
using mmcore::ImageView;

int g_failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    ++g_failures;
    std::printf("FAIL: %s\n", what);
  }
}

/// Pillow's convert("L") of RGB(A), written here so the test does not depend on gray_pillow.
std::vector<std::uint8_t> to_gray(ConstImageView rgb) {
  std::vector<std::uint8_t> g(static_cast<std::size_t>(rgb.width) * rgb.height);
  for (std::int32_t y = 0; y < rgb.height; ++y) {
    const std::uint8_t* p = rgb.row(y);
    for (std::int32_t x = 0; x < rgb.width; ++x, p += rgb.channels) {
      g[static_cast<std::size_t>(y) * rgb.width + x] =
          rgb.channels == 1
              ? p[0]
              : static_cast<std::uint8_t>((19595 * p[0] + 38470 * p[1] + 7471 * p[2] + 0x8000) >> 16);
    }
  }
  return g;
}

std::vector<std::uint8_t> random_pixels(std::mt19937& rng, std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = static_cast<std::uint8_t>(rng() & 255);
  return v;
}

void test_properties() {
  std::mt19937 rng(7);
  // Invalid views.
  std::uint8_t px[16] = {0};
  check(mmcore::whash_gray(ConstImageView(nullptr, 4, 4, 1, 4), Filter::kLanczos3) == 0, "whash null");
  check(mmcore::whash_gray(ConstImageView(px, 0, 4, 1, 4), Filter::kLanczos3) == 0, "whash empty");
  check(mmcore::whash_gray(ConstImageView(px, 2, 2, 3, 6), Filter::kLanczos3) == 0, "whash 3 channels");
  check(mmcore::colorhash_rgb(ConstImageView(nullptr, 4, 4, 3, 12)) == 0, "colorhash null");
  check(mmcore::colorhash_rgb(ConstImageView(px, 2, 2, 2, 4)) == 0, "colorhash 2 channels");

  for (int trial = 0; trial < 20; ++trial) {
    const std::int32_t w = 1 + static_cast<std::int32_t>(rng() % 90);
    const std::int32_t h = 1 + static_cast<std::int32_t>(rng() % 90);
    const std::size_t n = static_cast<std::size_t>(w) * h;
    // Strided grey view (4 bytes of junk per row) against the contiguous one.
    std::vector<std::uint8_t> g = random_pixels(rng, n);
    std::vector<std::uint8_t> gs = random_pixels(rng, static_cast<std::size_t>(w + 4) * h);
    for (std::int32_t y = 0; y < h; ++y)
      std::memcpy(&gs[static_cast<std::size_t>(y) * (w + 4)], &g[y * w], w);
    check(mmcore::whash_gray(ConstImageView(g.data(), w, h, 1, w), Filter::kLanczos3) ==
              mmcore::whash_gray(ConstImageView(gs.data(), w, h, 1, w + 4), Filter::kLanczos3),
          "whash strided view");
    // RGB, RGBA with random alpha, strided RGB: one colorhash.
    std::vector<std::uint8_t> rgb = random_pixels(rng, n * 3);
    std::vector<std::uint8_t> rgba = random_pixels(rng, n * 4);
    std::vector<std::uint8_t> rgbs = random_pixels(rng, static_cast<std::size_t>(w * 3 + 5) * h);
    for (std::size_t i = 0; i < n; ++i) std::memcpy(&rgba[i * 4], &rgb[i * 3], 3);
    for (std::int32_t y = 0; y < h; ++y)
      std::memcpy(&rgbs[static_cast<std::size_t>(y) * (w * 3 + 5)], &rgb[y * w * 3], w * 3);
    const std::uint64_t c3 = mmcore::colorhash_rgb(ConstImageView(rgb.data(), w, h, 3, w * 3));
    check(c3 == mmcore::colorhash_rgb(ConstImageView(rgba.data(), w, h, 4, w * 4)),
          "colorhash ignores alpha");
    check(c3 == mmcore::colorhash_rgb(ConstImageView(rgbs.data(), w, h, 3, w * 3 + 5)),
          "colorhash strided view");
    check((c3 >> 42) == 0, "colorhash fits 42 bits");
    // A 1-channel image hashes like its grey RGB copy.
    std::vector<std::uint8_t> grey3(n * 3);
    for (std::size_t i = 0; i < n; ++i) grey3[i * 3] = grey3[i * 3 + 1] = grey3[i * 3 + 2] = g[i];
    check(mmcore::colorhash_rgb(ConstImageView(g.data(), w, h, 1, w)) ==
              mmcore::colorhash_rgb(ConstImageView(grey3.data(), w, h, 3, w * 3)),
          "colorhash 1 channel == grey RGB");
  }
  // All black: black fraction 1 -> value 7 -> bits 111 at the top of the 42 bits, rest 0.
  std::vector<std::uint8_t> black(8 * 8 * 3, 0);
  check(mmcore::colorhash_rgb(ConstImageView(black.data(), 8, 8, 3, 24)) == (std::uint64_t{7} << 39),
        "colorhash all black");
  // A flat image: every Haar LL equals the median, so no bit is set.
  std::vector<std::uint8_t> flat(37 * 19, 200);
  check(mmcore::whash_gray(ConstImageView(flat.data(), 37, 19, 1, 37), Filter::kLanczos3) == 0, "whash flat");
}

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (char ch : line) {
    if (ch == '"') {
      quoted = !quoted;
    } else if (ch == ',' && !quoted) {
      out.push_back(cur);
      cur.clear();
    } else if (ch != '\r' && ch != '\n') {
      cur += ch;
    }
  }
  out.push_back(cur);
  return out;
}

bool read_file(const std::string& path, std::vector<std::uint8_t>* bytes) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  std::fseek(f, 0, SEEK_END);
  const long size = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  bytes->resize(size > 0 ? static_cast<std::size_t>(size) : 0);
  const bool ok = std::fread(bytes->data(), 1, bytes->size(), f) == bytes->size();
  std::fclose(f);
  return ok;
}

std::string hex(std::uint64_t v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*llx", digits, static_cast<unsigned long long>(v));
  return buf;
}

struct Tally {
  int files = 0, decoded = 0, whash_ok = 0, colorhash_ok = 0;
  int i16_known = 0;  ///< 16-bit grey PNGs that differ because of the decode rule, not the hash
};

void test_corpus(const std::string& root, const std::string& csv_path) {
  FILE* f = std::fopen(csv_path.c_str(), "r");
  if (!f) {
    check(false, "cannot open expected CSV");
    return;
  }
  std::map<std::string, Tally> tally;
  char line[4096];
  bool header = true;
  std::vector<std::uint8_t> bytes;
  while (std::fgets(line, sizeof line, f)) {
    if (header) {
      header = false;
      continue;
    }
    const std::vector<std::string> col = split_csv(line);
    if (col.size() < 6 || col[4].empty()) continue;  // Pillow failed or the oracle skipped it
    const std::string& file = col[0];
    const std::string folder = file.substr(0, file.find('/'));
    Tally& t = tally[folder];
    ++t.files;
    if (!read_file(root + "/" + file, &bytes)) {
      std::printf("  %s: unreadable\n", file.c_str());
      continue;
    }
    mmcore::DecodeOptions opt;
    opt.pixel = mmcore::PixelFormat::kRgb;
    opt.exif_orientation = false;
    mmcore::ImageInfo info;
    mmcore::ErrorText err;
    mmcore::Status st = mmcore::decode_info(bytes.data(), bytes.size(), opt, &info, &err);
    std::vector<std::uint8_t> rgb;
    if (mmcore::status_ok(st)) {
      rgb.resize(static_cast<std::size_t>(info.out_width) * info.out_height * info.out_channels);
      const std::int64_t stride = static_cast<std::int64_t>(info.out_width) * info.out_channels;
      st = mmcore::decode_into(
          bytes.data(), bytes.size(), opt, info,
          ImageView{rgb.data(), info.out_width, info.out_height, info.out_channels, stride}, &err);
    }
    if (!mmcore::status_ok(st)) {
      std::printf("  %s (Pillow mode %s): mmcore decode failed (status %d): %s\n", file.c_str(),
                  col[1].c_str(), static_cast<int>(st), err.text);
      continue;
    }
    ++t.decoded;
    const ConstImageView img(rgb.data(), info.out_width, info.out_height, info.out_channels,
                             static_cast<std::int64_t>(info.out_width) * info.out_channels);
    std::vector<std::uint8_t> grey = to_gray(img);
    const std::string wh =
        hex(mmcore::whash_gray(ConstImageView(grey.data(), img.width, img.height, 1, img.width),
                               Filter::kLanczos3),
            16);
    const std::string ch = hex(mmcore::colorhash_rgb(img), 11);
    t.whash_ok += wh == col[4];
    t.colorhash_ok += ch == col[5];
    if (wh != col[4] || ch != col[5]) {
      // Pillow opens 16-bit grey PNG as I;16, and its convert('L') / ('HSV') clip samples to
      // 255; mmcore's decoder keeps the high byte instead (decode_png.cpp), so these images
      // differ before any hashing. Counted apart; the hashes match on Pillow's clipped pixels.
      const bool known = col[1] == "I;16";
      t.i16_known += known;
      std::printf("  %s (Pillow mode %s, %sx%s): whash %s expected %s%s; colorhash %s expected %s%s%s\n",
                  file.c_str(), col[1].c_str(), col[2].c_str(), col[3].c_str(), wh.c_str(), col[4].c_str(),
                  wh == col[4] ? "" : " MISMATCH", ch.c_str(), col[5].c_str(),
                  ch == col[5] ? "" : " MISMATCH", known ? " (known: I;16 decode rule)" : "");
    }
  }
  std::fclose(f);
  for (const auto& [folder, t] : tally) {
    std::printf(
        "corpus %-8s files %4d decoded %4d whash %4d/%d colorhash %4d/%d (I;16 files differing: %d)\n",
        folder.c_str(), t.files, t.decoded, t.whash_ok, t.decoded, t.colorhash_ok, t.decoded, t.i16_known);
    check(t.whash_ok + t.i16_known >= t.decoded && t.colorhash_ok + t.i16_known >= t.decoded,
          "corpus hashes equal imagehash (I;16 aside)");
  }
}

void test_random(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    check(false, "cannot open random cases");
    return;
  }
  int n[2] = {0, 0}, ok[2] = {0, 0};
  char kind;
  std::int32_t dims[3];
  while (std::fread(&kind, 1, 1, f) == 1 && std::fread(dims, 4, 3, f) == 3) {
    std::vector<std::uint8_t> px(static_cast<std::size_t>(dims[0]) * dims[1] * dims[2]);
    std::uint64_t expected = 0;
    if (std::fread(px.data(), 1, px.size(), f) != px.size() || std::fread(&expected, 8, 1, f) != 1) break;
    const ConstImageView v(px.data(), dims[0], dims[1], dims[2],
                           static_cast<std::int64_t>(dims[0]) * dims[2]);
    const bool w = kind == 'w';
    const std::uint64_t got = w ? mmcore::whash_gray(v, Filter::kLanczos3) : mmcore::colorhash_rgb(v);
    ++n[w];
    ok[w] += got == expected;
    if (got != expected) {
      std::printf("  random %s %dx%dx%d: got %s expected %s\n", w ? "whash" : "colorhash", dims[0], dims[1],
                  dims[2], hex(got, w ? 16 : 11).c_str(), hex(expected, w ? 16 : 11).c_str());
    }
  }
  std::fclose(f);
  std::printf("random whash %d/%d colorhash %d/%d\n", ok[1], n[1], ok[0], n[0]);
  check(ok[0] == n[0] && ok[1] == n[1] && n[0] + n[1] > 0, "random arrays equal imagehash");
}

}  // namespace

int main(int argc, char** argv) {
  test_properties();
  if (argc >= 3) test_corpus(argv[1], argv[2]);
  if (argc >= 4) test_random(argv[3]);
  std::printf("%s (%d failures)\n", g_failures == 0 ? "OK" : "FAILED", g_failures);
  return g_failures == 0 ? 0 : 1;
}
