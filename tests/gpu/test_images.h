// Test images for the GPU hash checks: tests/gpu/gpu_check.cpp (on a GPU) and
// tests/cpp/test_hash_gpu_emu.cpp (the kernel's code emulated on the CPU) draw the same sets.
//
// Synthetic images are seeded and cover the cases that break resize and hash code: 1x1 and other
// sizes under, at and just over the hash grids, very wide and very tall images (Pillow 13's
// vertical-first order), grey / RGB / RGBA, padded strides with noise in the padding, and
// patterns that make exact ties (flat, two-level, blocks) besides noise and ramps. Real images are
// decoded by mmcore as the exact mode decodes them (full size, no EXIF rotation, Pillow's RGB
// and L).
#pragma once

#include <dirent.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "mmcore/decode.h"
#include "mmcore/views.h"

namespace mmcore_test {

/// One host image (rows `stride` bytes apart; stride > width * channels leaves padding).
struct HostImage {
  std::string name;
  std::int32_t width = 0, height = 0, channels = 0;
  std::int64_t stride = 0;
  std::vector<std::uint8_t> pixels;
  std::vector<std::uint8_t> file;  ///< encoded bytes of a real image's RGB decode, for hash_bytes
  mmcore::ConstImageView view() const { return {pixels.data(), width, height, channels, stride}; }
};

enum class Pattern { kNoise, kFlat, kRamp, kTwoLevel, kBlocks };

inline HostImage make_image(std::int32_t w, std::int32_t h, std::int32_t c, std::int32_t pad, Pattern pat,
                            std::mt19937_64& rng) {
  HostImage im;
  im.width = w;
  im.height = h;
  im.channels = c;
  im.stride = static_cast<std::int64_t>(w) * c + pad;
  im.pixels.assign(static_cast<std::size_t>(im.stride) * h, 0);
  const int flat = static_cast<int>(rng() & 255);
  const int lo = static_cast<int>(rng() & 255), hi = static_cast<int>(rng() & 255);
  const int block = 1 + static_cast<int>(rng() % 64);
  const double gx = static_cast<double>(rng() % 512) / 256.0, gy = static_cast<double>(rng() % 512) / 256.0;
  for (std::int32_t y = 0; y < h; ++y) {
    std::uint8_t* row = im.pixels.data() + im.stride * y;
    for (std::int32_t x = 0; x < w; ++x) {
      for (std::int32_t ch = 0; ch < c; ++ch) {
        int v = 0;
        switch (pat) {
          case Pattern::kNoise: v = static_cast<int>(rng() & 255); break;
          case Pattern::kFlat: v = flat; break;
          case Pattern::kRamp: v = static_cast<int>(gx * x + gy * y + 40 * ch) & 255; break;
          case Pattern::kTwoLevel: v = ((x / block + y / block + ch) & 1) ? hi : lo; break;
          case Pattern::kBlocks: v = ((x / block) * 37 + (y / block) * 91 + ch * 13) & 255; break;
        }
        row[static_cast<std::int64_t>(x) * c + ch] = static_cast<std::uint8_t>(v);
      }
    }
    // Padding holds noise: a kernel that reads it would show.
    for (std::int32_t b = 0; b < pad; ++b)
      row[static_cast<std::int64_t>(w) * c + b] = static_cast<std::uint8_t>(rng());
  }
  return im;
}

/// The seeded synthetic set: fixed edge sizes x {1, 3, 4} channels x patterns, then
/// `random_count` random sizes up to `max_side`. `huge` adds 4000x3000 and 3000x4000.
inline std::vector<HostImage> synthetic_set(std::uint64_t seed, int random_count, int max_side, bool huge) {
  std::mt19937_64 rng(seed);
  std::vector<HostImage> out;
  const Pattern pats[] = {Pattern::kNoise, Pattern::kFlat, Pattern::kRamp, Pattern::kTwoLevel,
                          Pattern::kBlocks};
  std::vector<std::pair<std::int32_t, std::int32_t>> sizes = {
      {1, 1},     {1, 2},     {2, 1},     {3, 5},    {7, 9},      {8, 8},     {9, 8},    {8, 9},
      {9, 9},     {16, 16},   {31, 33},   {32, 32},  {33, 31},    {32, 8},    {8, 32},   {63, 65},
      {64, 64},   {65, 17},   {17, 300},  {300, 17}, {1000, 5},   {5, 1000},  {1, 777},  {777, 1},
      {500, 375}, {375, 500}, {640, 480}, {1024, 1}, {257, 1031}, {40, 2000}, {2000, 40}};
  if (huge) {
    sizes.push_back({4000, 3000});
    sizes.push_back({3000, 4000});
  }
  int k = 0;
  for (const auto& s : sizes) {
    const bool big = static_cast<std::int64_t>(s.first) * s.second > 4'000'000;
    for (int c : {1, 3, 4}) {
      if (big && c == 4) continue;
      for (Pattern p : pats) {
        if (big && p != Pattern::kNoise && p != Pattern::kRamp) continue;
        const std::int32_t pad = (k++ % 3 == 0) ? static_cast<std::int32_t>(rng() % 7) : 0;
        HostImage im = make_image(s.first, s.second, c, pad, p, rng);
        im.name = std::to_string(s.first) + "x" + std::to_string(s.second) + "x" + std::to_string(c) +
                  " pattern " + std::to_string(static_cast<int>(p));
        out.push_back(std::move(im));
      }
    }
  }
  std::uniform_int_distribution<int> side(1, max_side);
  for (int i = 0; i < random_count; ++i) {
    const std::int32_t w = side(rng), h = side(rng);
    const std::int32_t c = (i % 3 == 0) ? 1 : (i % 3 == 1 ? 3 : 4);
    const std::int32_t pad = (i % 4 == 0) ? static_cast<std::int32_t>(rng() % 9) : 0;
    HostImage im = make_image(w, h, c, pad, pats[rng() % 5], rng);
    im.name = "random " + std::to_string(w) + "x" + std::to_string(h) + "x" + std::to_string(c);
    out.push_back(std::move(im));
  }
  return out;
}

inline bool read_file(const std::string& path, std::vector<std::uint8_t>* out) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  std::fseek(f, 0, SEEK_END);
  const long n = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  out->resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  const bool ok = n > 0 && std::fread(out->data(), 1, out->size(), f) == out->size();
  std::fclose(f);
  return ok;
}

/// Decodes as the exact mode does (full size, no EXIF rotation, Pillow's RGB or L).
inline bool decode_exact(const std::vector<std::uint8_t>& file, mmcore::PixelFormat px, HostImage* im) {
  mmcore::DecodeOptions opt;
  opt.pixel = px;
  opt.exif_orientation = false;
  opt.pillow_i16 = true;
  opt.pillow_gray = true;
  mmcore::ImageInfo info;
  mmcore::ErrorText err;
  if (!mmcore::status_ok(mmcore::decode_info(file.data(), file.size(), opt, &info, &err))) return false;
  im->width = info.out_width;
  im->height = info.out_height;
  im->channels = info.out_channels;
  im->stride = static_cast<std::int64_t>(im->width) * im->channels;
  im->pixels.assign(static_cast<std::size_t>(im->stride) * im->height, 0);
  mmcore::ImageView v{im->pixels.data(), im->width, im->height, im->channels, im->stride};
  return mmcore::status_ok(mmcore::decode_into(file.data(), file.size(), opt, info, v, &err));
}

/// Every decodable file of `dir` (not recursive, sorted, at most `limit`), as RGB (keeping the
/// file's bytes) and as Pillow's L. `undecodable` counts the files that did not decode.
inline std::vector<HostImage> real_set(const std::string& dir, std::size_t limit, int* undecodable) {
  std::vector<HostImage> out;
  *undecodable = 0;
  if (dir.empty()) return out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') names.push_back(e->d_name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  if (names.size() > limit) names.resize(limit);
  for (const std::string& n : names) {
    std::vector<std::uint8_t> file;
    if (!read_file(dir + "/" + n, &file)) continue;
    for (mmcore::PixelFormat px : {mmcore::PixelFormat::kRgb, mmcore::PixelFormat::kGray}) {
      HostImage im;
      if (!decode_exact(file, px, &im)) {
        if (px == mmcore::PixelFormat::kRgb) ++*undecodable;
        break;
      }
      im.name = n + (px == mmcore::PixelFormat::kRgb ? " (RGB)" : " (L)");
      if (px == mmcore::PixelFormat::kRgb) im.file = file;
      out.push_back(std::move(im));
    }
  }
  return out;
}

}  // namespace mmcore_test
