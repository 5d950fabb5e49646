// C++ test of the encode family (encode.h) on what Python cannot reach: a sink that refuses bytes
// part-way (kNoMemory, for every refusal point around the JPEG chunk size), strided views (the same
// bytes as the packed copy), the argument checks' statuses, and encode_batch against single calls.
//
// Build and run (tests/test_encode.py does this when a build tree exists):
//   g++ -O2 -std=c++17 -Icpp/include -Icpp/src tests/cpp/test_encode.cpp build/<tag>/cpp/libmmcore_cpu.a \
//       $(pkg-config --libs libjpeg libpng libwebp libwebpdemux zlib) -lpthread -o /tmp/test_encode &&
//       /tmp/test_encode
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "mmcore/encode.h"

namespace {

using mmcore::ByteSink;
using mmcore::ConstImageView;
using mmcore::EncodeOptions;
using mmcore::ErrorText;
using mmcore::ImageFormat;
using mmcore::Status;

int failures = 0;

void expect(bool ok, const char* what, const ErrorText& err) {
  if (!ok && ++failures < 20) std::printf("FAIL %s (message: %s)\n", what, err.text);
}

// Collects the stream; refuses once `limit` bytes would be exceeded.
struct Collector {
  std::vector<std::uint8_t> bytes;
  std::size_t limit = SIZE_MAX;
  static bool write(void* self, const std::uint8_t* data, std::size_t size) {
    auto* c = static_cast<Collector*>(self);
    if (c->bytes.size() + size > c->limit) return false;
    c->bytes.insert(c->bytes.end(), data, data + size);
    return true;
  }
  ByteSink sink() { return ByteSink{this, &Collector::write}; }
};

std::vector<std::uint8_t> noise(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) b = static_cast<std::uint8_t>(rng());
  return v;
}

Status encode(ConstImageView img, ImageFormat f, Collector* out, ErrorText* err, int quality = 90) {
  EncodeOptions o;
  o.format = f;
  o.quality = quality;
  return mmcore::encode_image(img, o, out->sink(), err);
}

void test_refusing_sink(ImageFormat f, const char* name) {
  const std::int32_t w = 300, h = 200;
  const auto px = noise(static_cast<std::size_t>(w) * h * 3, 1);
  const ConstImageView img(px.data(), w, h, 3, w * 3);
  Collector full;
  ErrorText err;
  expect(encode(img, f, &full, &err, 95) == Status::kOk, name, err);
  expect(full.bytes.size() > 20000, "noise encodes to more than one JPEG chunk", err);
  for (std::size_t limit : {std::size_t{0}, std::size_t{1}, std::size_t{100}, std::size_t{16383},
                            std::size_t{16384}, std::size_t{16385}, full.bytes.size() - 1}) {
    Collector c;
    c.limit = limit;
    ErrorText e;
    const Status s = encode(img, f, &c, &e, 95);
    if (s != Status::kNoMemory || e.empty()) {
      ++failures;
      std::printf("FAIL %s: sink refusing after %zu bytes gave status %d (%s)\n", name, limit,
                  static_cast<int>(s), e.text);
    }
  }
  Collector exact;
  exact.limit = full.bytes.size();
  expect(encode(img, f, &exact, &err, 95) == Status::kOk && exact.bytes == full.bytes,
         "a sink with exactly enough room gets the same bytes", err);
}

void test_strided(ImageFormat f, std::int32_t channels) {
  const std::int32_t w = 123, h = 77, pad = 29;
  const std::int64_t stride = static_cast<std::int64_t>(w) * channels + pad;
  const auto padded = noise(static_cast<std::size_t>(stride) * h, 2);
  std::vector<std::uint8_t> packed;
  for (std::int32_t y = 0; y < h; ++y)
    packed.insert(packed.end(), padded.begin() + stride * y, padded.begin() + stride * y + w * channels);
  Collector a, b;
  ErrorText err;
  expect(encode(ConstImageView(padded.data(), w, h, channels, stride), f, &a, &err) == Status::kOk,
         "strided encode", err);
  expect(encode(ConstImageView(packed.data(), w, h, channels, w * channels), f, &b, &err) == Status::kOk,
         "packed encode", err);
  expect(!a.bytes.empty() && a.bytes == b.bytes, "a strided view encodes as its packed copy", err);
}

void test_checks() {
  std::vector<std::uint8_t> px(64 * 64 * 4, 128);
  const struct {
    ConstImageView img;
    ImageFormat format;
    int quality;
    Status want;
    const char* what;
  } cases[] = {
      {ConstImageView(nullptr, 8, 8, 3, 24), ImageFormat::kJpeg, 90, Status::kCorrupt, "null data"},
      {ConstImageView(px.data(), 0, 8, 3, 0), ImageFormat::kJpeg, 90, Status::kCorrupt, "zero width"},
      {ConstImageView(px.data(), 8, 0, 3, 24), ImageFormat::kWebp, 90, Status::kCorrupt, "zero height"},
      {ConstImageView(px.data(), 8, 8, 4, 32), ImageFormat::kJpeg, 90, Status::kCorrupt, "4 channels"},
      {ConstImageView(px.data(), 8, 8, 3, 23), ImageFormat::kJpeg, 90, Status::kCorrupt, "short stride"},
      {ConstImageView(px.data(), 8, 8, 3, 24), ImageFormat::kJpeg, 0, Status::kUnsupported, "quality 0"},
      {ConstImageView(px.data(), 8, 8, 3, 24), ImageFormat::kWebp, 101, Status::kUnsupported, "quality 101"},
      {ConstImageView(px.data(), 8, 8, 3, 24), ImageFormat::kPng, 90, Status::kUnsupported, "png"},
      {ConstImageView(px.data(), 16384, 1, 1, 16384), ImageFormat::kWebp, 90, Status::kTooLarge,
       "webp 16384"},
      {ConstImageView(px.data(), 1, 16384, 1, 1), ImageFormat::kWebp, 90, Status::kTooLarge, "webp h 16384"},
      {ConstImageView(px.data(), 65501, 1, 1, 65501), ImageFormat::kJpeg, 90, Status::kTooLarge,
       "jpeg 65501"},
      {ConstImageView(px.data(), 1, 1, 1, 1), ImageFormat::kJpeg, 1, Status::kOk, "1x1 grey jpeg"},
      {ConstImageView(px.data(), 1, 1, 3, 3), ImageFormat::kWebp, 100, Status::kOk, "1x1 rgb webp"},
  };
  for (const auto& c : cases) {
    Collector out;
    ErrorText err;
    const Status s = encode(c.img, c.format, &out, &err, c.quality);
    if (s != c.want || (s != Status::kOk && err.empty())) {
      ++failures;
      std::printf("FAIL check %s: status %d, want %d (%s)\n", c.what, static_cast<int>(s),
                  static_cast<int>(c.want), err.text);
    }
  }
  ErrorText err;
  EncodeOptions o;
  expect(mmcore::encode_image(ConstImageView(px.data(), 8, 8, 3, 24), o, ByteSink{}, &err) ==
             Status::kUnsupported,
         "a sink without a write function", err);
}

void test_batch(ImageFormat f) {
  std::vector<std::vector<std::uint8_t>> pixels;
  std::vector<ConstImageView> views;
  for (int i = 0; i < 9; ++i) {
    const std::int32_t w = 17 + 13 * i, h = 9 + 7 * i, c = i % 3 == 0 ? 1 : 3;
    pixels.push_back(noise(static_cast<std::size_t>(w) * h * c, 10 + i));
    views.emplace_back(i == 4 ? nullptr : pixels.back().data(), w, h, c, static_cast<std::int64_t>(w) * c);
  }
  const auto n = static_cast<std::int64_t>(views.size());
  std::vector<Collector> outs(views.size());
  std::vector<ByteSink> sinks;
  for (auto& o : outs) sinks.push_back(o.sink());
  std::vector<Status> statuses(views.size());
  std::vector<ErrorText> errors(views.size());
  EncodeOptions o;
  o.format = f;
  mmcore::encode_batch(views.data(), n, o, 3, sinks.data(), statuses.data(), errors.data());
  for (std::size_t i = 0; i < views.size(); ++i) {
    Collector single;
    ErrorText err;
    const Status s = mmcore::encode_image(views[i], o, single.sink(), &err);
    expect(s == statuses[i] && single.bytes == outs[i].bytes, "batch record equals the single call", err);
    expect((i == 4) == (s == Status::kCorrupt), "only the missing image fails", err);
  }
}

}  // namespace

int main() {
  for (ImageFormat f : {ImageFormat::kJpeg, ImageFormat::kWebp}) {
    const char* name = mmcore::format_name(f);
    test_refusing_sink(f, name);
    test_strided(f, 1);
    test_strided(f, 3);
    test_batch(f);
  }
  test_checks();
  if (failures == 0) std::printf("PASS\n");
  return failures == 0 ? 0 : 1;
}
