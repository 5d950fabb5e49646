// C++ test of imagehash's other sizes through the C++ API (hash.h): the size checks (every range,
// before anything is decoded), HashRecord::wide's width and placement, the default kinds left in
// HashRecord::bits beside sized ones, and DctPlan at n = 32 against the specialised dct2_32
// (bit-identical). The bits themselves are checked against imagehash in tests/test_hash_sizes.py.
//
// Build and run from the repository root (tests/test_hash_sizes.py does):
//   g++ -O2 -std=c++17 -Icpp/include -Icpp/src tests/cpp/test_hash_sizes.cpp build/<tag>/cpp/libmmcore_cpu.a
//   \
//       $(pkg-config --libs libjpeg libpng libwebp libwebpdemux zlib) -lpthread -o /tmp/t && /tmp/t
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "hash_internal.h"
#include "mmcore/hash.h"

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAIL: %s\n", what);
    ++failures;
  }
}

mmcore::HashRequest request(std::uint32_t kinds, int hash_size, int highfreq, int binbits) {
  mmcore::HashRequest r;
  r.kinds = kinds;
  r.hash_size = hash_size;
  r.highfreq_factor = highfreq;
  r.binbits = binbits;
  return r;
}

constexpr std::uint32_t bit(mmcore::HashKind k) {
  return 1u << static_cast<int>(k);
}

void test_ranges() {
  using mmcore::HashKind;
  struct Case {
    std::uint32_t kinds;
    int hash_size, highfreq, binbits;
    bool valid;
    const char* what;
  };
  const Case cases[] = {
      {bit(HashKind::kAhash), 2, 4, 3, true, "ahash 2"},
      {bit(HashKind::kAhash), 64, 4, 3, true, "ahash 64"},
      {bit(HashKind::kAhash), 1, 4, 3, false, "ahash 1"},
      {bit(HashKind::kDhash), 65, 4, 3, false, "dhash 65"},
      {bit(HashKind::kWhash), 12, 4, 3, false, "whash 12 (not a power of 2)"},
      {bit(HashKind::kWhash), 16, 4, 3, true, "whash 16"},
      {bit(HashKind::kPhash), 12, 4, 3, true, "phash 12 x 4 = 48"},
      {bit(HashKind::kPhash), 7, 4, 3, false, "phash 7 x 4 = 28"},
      {bit(HashKind::kPhash), 64, 32, 3, false, "phash 64 x 32 = 2048"},
      {bit(HashKind::kPhash), 8, 0, 3, false, "phash highfreq 0"},
      {bit(HashKind::kPhashSimple), 16, 1, 3, false, "phash_simple highfreq 1"},
      {bit(HashKind::kPhash), 16, 1, 3, true, "phash highfreq 1"},
      {bit(HashKind::kColorhash), 8, 4, 0, false, "colorhash binbits 0"},
      {bit(HashKind::kColorhash), 8, 4, 17, false, "colorhash binbits 17"},
      {bit(HashKind::kColorhash), 8, 4, 16, true, "colorhash binbits 16"},
      {bit(HashKind::kPdq), 1, 0, 0, true, "pdq ignores the sizes"},
      {bit(HashKind::kColorhash), 1, 0, 3, true, "colorhash ignores hash_size"},
  };
  const std::vector<std::uint8_t> junk(64, 0x11);  // not an image: a decode would say so
  std::vector<std::uint8_t> grey(16 * 16, 100);
  const mmcore::ConstImageView img(grey.data(), 16, 16, 1, 16);
  for (const Case& c : cases) {
    const mmcore::HashRequest r = request(c.kinds, c.hash_size, c.highfreq, c.binbits);
    mmcore::ErrorText e;
    check(mmcore::hash_sizes_valid(r, &e) == c.valid, c.what);
    check(c.valid == e.empty(), c.what);
    if (c.valid) continue;
    mmcore::HashRecord out;
    mmcore::ErrorText be, ie;
    check(mmcore::hash_bytes(junk.data(), junk.size(), r, &out, &be) == mmcore::Status::kUnsupported, c.what);
    check(std::string(be.text) == std::string(e.text), "hash_bytes: the sizes' message, before any decode");
    check(mmcore::hash_image(img, r, &out, &ie) == mmcore::Status::kUnsupported, c.what);
  }
}

void test_records() {
  using mmcore::HashKind;
  std::mt19937 gen(7);
  std::vector<std::uint8_t> rgb(40 * 30 * 3);
  for (auto& v : rgb) v = static_cast<std::uint8_t>(gen());
  const mmcore::ConstImageView img(rgb.data(), 40, 30, 3, 40 * 3);
  const std::uint32_t all = (1u << mmcore::kHashKindCount) - 1;
  const mmcore::HashRequest sized = request(all, 16, 4, 5);
  mmcore::HashRecord out;
  mmcore::ErrorText e;
  check(mmcore::hash_image(img, sized, &out, &e) == mmcore::Status::kOk, "sized record");
  for (int k = 0; k < 6; ++k) {
    check(out.wide[k].size() == 32, "a 256-bit kind: 32 bytes");
    check(out.bits[k] == 0, "a sized kind leaves bits[] alone");
  }
  check(out.wide[6].size() == 9, "colorhash at binbits 5: 70 bits, 9 bytes");
  check((out.wide[6][0] & 0xC0) == 0, "70 bits: the top two bits of 72 are padding");
  check(out.wide[7].empty(), "PDQ is never sized");
  check(mmcore::hash_bit_count(HashKind::kColorhash, sized) == 70, "hash_bit_count colorhash");
  check(mmcore::hash_bit_count(HashKind::kDhash, sized) == 256, "hash_bit_count dhash");

  // Only pHash sized (highfreq 8): the other kinds keep their default kernels and bits.
  mmcore::HashRecord def, mixed;
  check(mmcore::hash_image(img, request(all, 8, 4, 3), &def, &e) == mmcore::Status::kOk, "default record");
  check(mmcore::hash_image(img, request(all, 8, 8, 3), &mixed, &e) == mmcore::Status::kOk, "mixed record");
  for (int k = 0; k < 7; ++k) {
    const bool phash =
        k == static_cast<int>(HashKind::kPhash) || k == static_cast<int>(HashKind::kPhashSimple);
    check(phash ? (mixed.wide[k].size() == 8 && mixed.bits[k] == 0) : (mixed.bits[k] == def.bits[k]),
          "highfreq 8 sizes pHash and pHash-simple only");
  }
  check(std::memcmp(mixed.pdq, def.pdq, sizeof def.pdq) == 0, "PDQ unchanged beside sized kinds");
}

void test_dct_plan_32() {
  const mmcore::detail::DctPlan plan(32);
  check(plan.size() == 32, "plan 32");
  check(mmcore::detail::DctPlan(28).size() == 0, "28 has the factor 7: refused");
  std::mt19937 gen(3);
  std::uniform_real_distribution<double> u(0.0, 255.0);
  std::vector<double> x(32), a(32), b(32), scratch(64);
  for (int round = 0; round < 2000; ++round) {
    for (auto& v : x) v = round % 2 ? u(gen) : static_cast<double>(static_cast<int>(u(gen)));
    plan.run(x.data(), 1, a.data(), scratch.data());
    mmcore::detail::dct2_32(x.data(), 1, b.data());
    if (std::memcmp(a.data(), b.data(), 32 * sizeof(double)) != 0) {
      check(false, "DctPlan(32) == dct2_32, bit for bit");
      return;
    }
  }
}

}  // namespace

int main() {
  test_ranges();
  test_records();
  test_dct_plan_32();
  if (failures != 0) {
    std::printf("%d failures\n", failures);
    return 1;
  }
  std::printf("PASS\n");
  return 0;
}
