// C++ test of the PDQ kernels against the ThreatExchange regression set in <corpus>/pdq_ref:
//   (a) reference mode (pdq_reference_squash when the image is over 512 px, then pdq_hash)
//       equals manifest.csv's hash and quality;
//   (b) the 8 dihedral hashes equal manifest_dihedral.csv's;
//   (c) full mode (pdq_hash on the full-size image) equals manifest_fullres_pil.csv (pdqhash);
//   (d) edge cases: under 5 px on a side, a flat image, grey vs R=G=B, alpha ignored, strides.
// Images are decoded with mmcore (RGB, no EXIF rotation), which equals Pillow's convert("RGB").
// Prints a summary; exits nonzero on any mismatch.
//
// Build and run (one command line):
//   g++ -O2 -std=c++17 -Icpp/include tests/cpp/test_pdq.cpp build/<tag>/cpp/libmmcore_cpu.a
//       $(pkg-config --libs libjpeg libpng libwebp libwebpdemux zlib) -lpthread -o /tmp/test_pdq
//       && /tmp/test_pdq ../shared/corpus
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "mmcore/decode.h"
#include "mmcore/hash.h"

namespace {

using mmcore::ConstImageView;
using mmcore::ImageView;
using mmcore::PdqHash;

struct Image {
  std::int32_t width = 0, height = 0, channels = 0;
  std::vector<std::uint8_t> pixels;
  ConstImageView view() const {
    return {pixels.data(), width, height, channels, static_cast<std::int64_t>(width) * channels};
  }
};

bool read_file(const std::string& path, std::vector<std::uint8_t>* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return true;
}

/// Decodes like Pillow's Image.open(f).convert("RGB"); false on any decode failure.
bool decode_rgb(const std::string& path, Image* img) {
  std::vector<std::uint8_t> bytes;
  if (!read_file(path, &bytes)) return false;
  mmcore::DecodeOptions opt;
  opt.pixel = mmcore::PixelFormat::kRgb;
  opt.exif_orientation = false;
  mmcore::ImageInfo info;
  mmcore::ErrorText err;
  if (!mmcore::status_ok(mmcore::decode_info(bytes.data(), bytes.size(), opt, &info, &err))) return false;
  img->width = info.out_width;
  img->height = info.out_height;
  img->channels = info.out_channels;
  img->pixels.assign(static_cast<std::size_t>(img->width) * img->height * img->channels, 0);
  ImageView v{img->pixels.data(), img->width, img->height, img->channels,
              static_cast<std::int64_t>(img->width) * img->channels};
  return mmcore::status_ok(mmcore::decode_into(bytes.data(), bytes.size(), opt, info, v, &err));
}

std::string hex(const PdqHash& h) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (std::uint8_t b : h.bytes) {
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

/// pdq_hash with its own scratch; hashes: 8 entries.
void hash_view(ConstImageView v, bool dihedral, PdqHash* hashes, std::int32_t* quality,
               mmcore::PdqLuma luma = mmcore::PdqLuma::kReference) {
  std::vector<float> scratch(mmcore::pdq_scratch_floats(v.width, v.height));
  mmcore::pdq_hash(v, dihedral, scratch.data(), hashes, quality, luma);
}

/// The reference hasher's input: squashed to 512x512 when over 512 px on a side.
void hash_reference(const Image& img, bool dihedral, PdqHash* hashes, std::int32_t* quality) {
  std::vector<std::uint8_t> sq(512 * 512 * static_cast<std::size_t>(img.channels));
  ImageView dst{sq.data(), 512, 512, img.channels, 512 * static_cast<std::int64_t>(img.channels)};
  if (mmcore::pdq_reference_squash(img.view(), dst)) {
    hash_view(dst, dihedral, hashes, quality);
  } else {
    hash_view(img.view(), dihedral, hashes, quality);
  }
}

std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream f(path);
  std::string line;
  bool header = true;
  while (std::getline(f, line)) {
    if (header) {
      header = false;
      continue;
    }
    if (line.empty()) continue;
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

int g_failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    ++g_failures;
    std::printf("FAIL: %s\n", what);
  }
}

bool all_zero(const PdqHash& h) {
  for (std::uint8_t b : h.bytes)
    if (b != 0) return false;
  return true;
}

bool same(const PdqHash* a, const PdqHash* b, int n) {
  for (int i = 0; i < n; ++i)
    if (std::memcmp(a[i].bytes, b[i].bytes, sizeof(a[i].bytes)) != 0) return false;
  return true;
}

/// Hashes every image of a manifest (file, hex, quality) with `hash` and compares hash and quality.
template <typename HashFn>
void check_manifest(const std::string& dir, const char* manifest, const char* what, HashFn hash) {
  const auto rows = read_csv(dir + "/" + manifest);
  int ok = 0, n = 0;
  for (const auto& r : rows) {
    ++n;
    Image img;
    if (r.size() < 3 || !decode_rgb(dir + "/" + r[0], &img)) {
      std::printf("  cannot decode %s\n", r[0].c_str());
      continue;
    }
    PdqHash h[8];
    std::int32_t q = -1;
    hash(img, h, &q);
    if (hex(h[0]) == r[1] && q == std::stoi(r[2])) {
      ++ok;
    } else {
      std::printf("  %s mismatch %s: %s q=%d, want %s q=%s\n", what, r[0].c_str(), hex(h[0]).c_str(), q,
                  r[1].c_str(), r[2].c_str());
    }
  }
  std::printf("%s: %d/%d hash+quality equal %s\n", what, ok, n, manifest);
  check(n > 0 && ok == n, what);
}

/// (a) and (b): reference mode against manifest.csv and manifest_dihedral.csv.
void test_reference(const std::string& dir) {
  check_manifest(dir, "manifest.csv", "(a) reference mode",
                 [](const Image& img, PdqHash* h, std::int32_t* q) { hash_reference(img, false, h, q); });

  const auto drows = read_csv(dir + "/manifest_dihedral.csv");
  static const char* names[8] = {"orig", "rot90", "rot180", "rot270", "flipx", "flipy", "flipp", "flipm"};
  int dok = 0, dn = 0, qok = 0;
  for (const auto& r : drows) {
    Image img;
    if (r.size() < 10 || !decode_rgb(dir + "/" + r[0], &img)) {
      dn += 8;
      std::printf("  cannot decode %s\n", r[0].c_str());
      continue;
    }
    PdqHash h[8];
    std::int32_t q = -1;
    hash_reference(img, true, h, &q);
    for (int v = 0; v < 8; ++v) {
      ++dn;
      if (hex(h[v]) == r[1 + v]) {
        ++dok;
      } else {
        std::printf("  dihedral %s mismatch %s\n", names[v], r[0].c_str());
      }
    }
    qok += q == std::stoi(r[9]);
  }
  std::printf("(b) dihedral: %d/%d hashes equal manifest_dihedral.csv (quality %d/%zu)\n", dok, dn, qok,
              drows.size());
  check(dn > 0 && dok == dn && qok == static_cast<int>(drows.size()), "dihedral");
}

/// (c): full mode against pdqhash's values in manifest_fullres_pil.csv.
void test_full(const std::string& dir) {
  check_manifest(dir, "manifest_fullres_pil.csv", "(c) full mode",
                 [](const Image& img, PdqHash* h, std::int32_t* q) {
                   hash_view(img.view(), false, h, q, mmcore::PdqLuma::kPdqhash);
                 });
}

/// (d): edge cases on synthetic images and on one corpus image.
void test_edges(const std::string& dir) {
  int cases = 0;
  // Under 5 px on a side: all-zero hashes (every variant) and quality 0, whatever was there.
  for (const auto& wh : {std::pair<int, int>{4, 100}, std::pair<int, int>{100, 4}}) {
    Image img;
    img.width = wh.first;
    img.height = wh.second;
    img.channels = 3;
    img.pixels.assign(static_cast<std::size_t>(img.width) * img.height * 3, 0);
    for (std::size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<std::uint8_t>(i * 37);
    PdqHash h[8];
    for (auto& x : h) std::memset(x.bytes, 0xab, sizeof(x.bytes));
    std::int32_t q = 55;
    hash_view(img.view(), true, h, &q);
    bool zero = q == 0;
    for (const auto& x : h) zero = zero && all_zero(x);
    check(zero,
          wh.first == 4 ? "4x100 gives zero hashes and quality 0" : "100x4 gives zero hashes and quality 0");
    ++cases;
  }
  {  // A flat image is valid input with quality 0.
    Image img;
    img.width = img.height = 64;
    img.channels = 3;
    img.pixels.assign(64 * 64 * 3, 128);
    PdqHash h[8];
    std::int32_t q = 55;
    hash_view(img.view(), false, h, &q);
    check(q == 0, "flat 64x64 grey has quality 0");
    ++cases;
  }

  {  // 64x64 skips the blur; the hash must not depend on whether dihedral variants are asked.
    Image img;
    img.width = img.height = 64;
    img.channels = 3;
    img.pixels.resize(64 * 64 * 3);
    std::mt19937 rng(3);
    for (auto& b : img.pixels) b = static_cast<std::uint8_t>(rng());
    PdqHash h1[8], h8[8];
    std::int32_t q1 = -1, q8 = -2;
    hash_view(img.view(), false, h1, &q1);
    hash_view(img.view(), true, h8, &q8);
    check(same(h1, h8, 1) && q1 == q8 && q1 > 0, "64x64: hashes[0] is the same with and without dihedral");
    ++cases;
  }

  Image rgb;
  if (!decode_rgb(dir + "/bridge-mods/aaa-orig.jpg", &rgb)) {
    check(false, "decode bridge-mods/aaa-orig.jpg for the edge cases");
    return;
  }
  const std::size_t npx = static_cast<std::size_t>(rgb.width) * rgb.height;
  PdqHash base[8];
  std::int32_t base_q = -1;
  hash_view(rgb.view(), true, base, &base_q);

  {  // Grey (1 channel, luma = value) equals R=G=B (3 channels).
    Image grey, rep;
    grey.width = rep.width = rgb.width;
    grey.height = rep.height = rgb.height;
    grey.channels = 1;
    rep.channels = 3;
    grey.pixels.resize(npx);
    rep.pixels.resize(npx * 3);
    for (std::size_t i = 0; i < npx; ++i) {
      grey.pixels[i] = rgb.pixels[i * 3 + 1];
      for (int c = 0; c < 3; ++c) rep.pixels[i * 3 + c] = grey.pixels[i];
    }
    // Both lumas: pdqhash's float64 sum gives exactly v for R=G=B=v; the reference's float32
    // sum is 1 ulp off for 35 of the 256 levels, which leaves this photo's bits unchanged.
    for (const auto luma : {mmcore::PdqLuma::kReference, mmcore::PdqLuma::kPdqhash}) {
      PdqHash hg[8], hr[8];
      std::int32_t qg = -1, qr = -2;
      hash_view(grey.view(), true, hg, &qg, luma);
      hash_view(rep.view(), true, hr, &qr, luma);
      check(same(hg, hr, 8) && qg == qr, luma == mmcore::PdqLuma::kReference
                                             ? "1-channel equals 3-channel R=G=B (reference luma)"
                                             : "1-channel equals 3-channel R=G=B (pdqhash luma)");
      ++cases;
    }
  }
  {  // Alpha is ignored.
    Image rgba;
    rgba.width = rgb.width;
    rgba.height = rgb.height;
    rgba.channels = 4;
    rgba.pixels.resize(npx * 4);
    std::mt19937 rng(7);
    for (std::size_t i = 0; i < npx; ++i) {
      for (int c = 0; c < 3; ++c) rgba.pixels[i * 4 + c] = rgb.pixels[i * 3 + c];
      rgba.pixels[i * 4 + 3] = static_cast<std::uint8_t>(rng());
    }
    PdqHash h[8];
    std::int32_t q = -1;
    hash_view(rgba.view(), true, h, &q);
    check(same(h, base, 8) && q == base_q, "4-channel ignores alpha");
    ++cases;
  }
  {  // Strided views (padding full of noise) for the hash and for both sides of the squash.
    const std::int64_t stride = static_cast<std::int64_t>(rgb.width) * 3 + 29;
    std::vector<std::uint8_t> padded(static_cast<std::size_t>(stride) * rgb.height);
    std::mt19937 rng(11);
    for (auto& b : padded) b = static_cast<std::uint8_t>(rng());
    for (std::int32_t y = 0; y < rgb.height; ++y) {
      std::memcpy(padded.data() + stride * y, rgb.pixels.data() + static_cast<std::size_t>(y) * rgb.width * 3,
                  static_cast<std::size_t>(rgb.width) * 3);
    }
    const ConstImageView sv{padded.data(), rgb.width, rgb.height, 3, stride};
    PdqHash h[8];
    std::int32_t q = -1;
    hash_view(sv, true, h, &q);
    check(same(h, base, 8) && q == base_q, "strided source view hashes as the dense one");

    PdqHash dense_ref[8];
    std::int32_t dense_q = -1;
    hash_reference(rgb, true, dense_ref, &dense_q);
    const std::int64_t dstride = 512 * 3 + 13;
    std::vector<std::uint8_t> sq(static_cast<std::size_t>(dstride) * 512, 0x5a);
    const ImageView dv{sq.data(), 512, 512, 3, dstride};
    const bool squashed = mmcore::pdq_reference_squash(sv, dv);
    bool pad_kept = true;
    for (int y = 0; y < 512; ++y)
      for (std::int64_t x = 512 * 3; x < dstride; ++x) pad_kept = pad_kept && sq[y * dstride + x] == 0x5a;
    hash_view(dv, true, h, &q);
    check(squashed && pad_kept && same(h, dense_ref, 8) && q == dense_q,
          "strided squash equals the dense one");
    cases += 2;
  }
  {  // No squash at or under 512 px; misuse writes nothing.
    std::vector<std::uint8_t> px(512 * 512 * 3, 1), dst(512 * 512 * 3, 9);
    const ConstImageView small{px.data(), 512, 512, 3, 512 * 3};
    const ImageView dv{dst.data(), 512, 512, 3, 512 * 3};
    const ImageView wrong{dst.data(), 512, 512, 1, 512};
    bool untouched =
        !mmcore::pdq_reference_squash(small, dv) && !mmcore::pdq_reference_squash(rgb.view(), wrong);
    for (std::uint8_t b : dst) untouched = untouched && b == 9;
    check(untouched, "pdq_reference_squash: no squash at 512x512, nothing written on a wrong dst");
    ++cases;
  }
  std::printf("(d) edge cases: %d checked\n", cases);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <corpus dir (holding pdq_ref/)>\n", argv[0]);
    return 2;
  }
  const std::string dir = std::string(argv[1]) + "/pdq_ref";
  test_reference(dir);
  test_full(dir);
  test_edges(dir);
  std::printf("%s (%d failure%s)\n", g_failures == 0 ? "PASS" : "FAIL", g_failures,
              g_failures == 1 ? "" : "s");
  return g_failures == 0 ? 0 : 1;
}
