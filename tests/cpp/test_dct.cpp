// C++ test of pHash's DCT (mmcore::detail::dct2_32) against scipy.fftpack.dct, bit for bit.
// The oracle is tests/cpp/data/dct32_scipy.bin, written by gen_dct32_fixture.py next to it
// (format there): 1,200 integer vectors with exact ties, 200 float vectors, and 48 32x32 uint8
// arrays run through both pHash passes (axis 0 through a column stride, then axis 1). Outputs
// are compared through a 64-bit FNV-1a digest of their IEEE bits, which keeps the fixture small;
// the first vectors that differ are printed in full. Also checks that the strided (column) and
// contiguous reads give the same bits and that out may alias the input.
//
// Build and run from the repository root:
//   g++ -O2 -std=c++17 -Icpp/include -Icpp/src tests/cpp/test_dct.cpp build/<tag>/cpp/libmmcore_cpu.a \
//       $(pkg-config --libs libjpeg libpng libwebp libwebpdemux) -lpthread -o /tmp/test_dct &&
//       /tmp/test_dct [tests/cpp/data/dct32_scipy.bin]
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "hash_internal.h"

namespace {

constexpr int kN = 32;
int failures = 0;

std::uint64_t bits_of(double v) {
  std::uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

double double_of(std::uint64_t b) {
  double v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

/// FNV-1a 64 over each double's IEEE bits, least significant byte first (as the generator).
std::uint64_t digest(const double* v, int n) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (int i = 0; i < n; ++i) {
    const std::uint64_t b = bits_of(v[i]);
    for (int byte = 0; byte < 8; ++byte) {
      h ^= (b >> (8 * byte)) & 0xff;
      h *= 0x100000001b3ULL;
    }
  }
  return h;
}

/// Little-endian reader over the fixture; `ok` turns false on a short read.
struct Reader {
  std::vector<unsigned char> data;
  std::size_t pos = 0;
  bool ok = true;

  std::uint64_t uint(int bytes) {
    if (pos + bytes > data.size()) {
      ok = false;
      return 0;
    }
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= std::uint64_t{data[pos + i]} << (8 * i);
    pos += bytes;
    return v;
  }
};

void report(const char* what, int index, const double* in, const double* got) {
  ++failures;
  if (failures > 3) return;
  std::printf("FAIL %s #%d\n  in :", what, index);
  for (int i = 0; i < kN; ++i) std::printf(" %.17g", in[i]);
  std::printf("\n  got:");
  for (int i = 0; i < kN; ++i) std::printf(" %a", got[i]);
  std::printf("\n");
}

/// One vector through dct2_32: the digest must match, and a strided copy and an in-place call
/// must give the same bits.
void check_vector(const char* what, int index, const double* in, std::uint64_t expected) {
  double got[kN];
  mmcore::detail::dct2_32(in, 1, got);
  if (digest(got, kN) != expected) {
    report(what, index, in, got);
    return;
  }
  double column[kN * 7];
  for (int i = 0; i < kN; ++i) column[i * 7 + 3] = in[i];
  double strided[kN];
  mmcore::detail::dct2_32(column + 3, 7, strided);
  double inplace[kN];
  std::memcpy(inplace, in, sizeof inplace);
  mmcore::detail::dct2_32(inplace, 1, inplace);
  if (std::memcmp(strided, got, sizeof got) != 0 || std::memcmp(inplace, got, sizeof got) != 0) {
    report(what, index, in, strided);
  }
}

/// pHash's transform of a 32x32 image: axis 0 (columns, stride 32), then axis 1 (rows).
void check_image(int index, const unsigned char* pixels, std::uint64_t expected) {
  double a[kN * kN], cols[kN * kN], out[kN * kN];
  for (int i = 0; i < kN * kN; ++i) a[i] = pixels[i];
  double col[kN];
  for (int x = 0; x < kN; ++x) {
    mmcore::detail::dct2_32(a + x, kN, col);
    for (int y = 0; y < kN; ++y) cols[y * kN + x] = col[y];
  }
  for (int y = 0; y < kN; ++y) mmcore::detail::dct2_32(cols + y * kN, 1, out + y * kN);
  if (digest(out, kN * kN) != expected) report("image (row 0 shown)", index, a, out);
}

}  // namespace

int main(int argc, char** argv) {
  const char* path = argc > 1 ? argv[1] : "tests/cpp/data/dct32_scipy.bin";
  Reader r;
  if (FILE* f = std::fopen(path, "rb")) {
    unsigned char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) r.data.insert(r.data.end(), buf, buf + n);
    std::fclose(f);
  }
  if (r.data.size() < 24 || std::memcmp(r.data.data(), "MMDCT32\0", 8) != 0) {
    std::printf("cannot read fixture %s (run from the repository root or pass its path)\n", path);
    return 2;
  }
  r.pos = 8;
  const int version = static_cast<int>(r.uint(4));
  const int n_int = static_cast<int>(r.uint(4));
  const int n_float = static_cast<int>(r.uint(4));
  const int n_2d = static_cast<int>(r.uint(4));
  if (version != 1) {
    std::printf("fixture version %d, expected 1\n", version);
    return 2;
  }

  double in[kN];
  for (int v = 0; v < n_int && r.ok; ++v) {
    for (int i = 0; i < kN; ++i) in[i] = static_cast<std::int16_t>(r.uint(2));
    check_vector("integer vector", v, in, r.uint(8));
  }
  for (int v = 0; v < n_float && r.ok; ++v) {
    for (int i = 0; i < kN; ++i) in[i] = double_of(r.uint(8));
    check_vector("float vector", v, in, r.uint(8));
  }
  std::vector<unsigned char> pixels(kN * kN);
  for (int v = 0; v < n_2d && r.ok; ++v) {
    for (auto& p : pixels) p = static_cast<unsigned char>(r.uint(1));
    check_image(v, pixels.data(), r.uint(8));
  }
  if (!r.ok || r.pos != r.data.size()) {
    std::printf("fixture %s is truncated or has trailing bytes\n", path);
    return 2;
  }
  std::printf("%d integer vectors, %d float vectors, %d 32x32 images: %d failures\n", n_int, n_float, n_2d,
              failures);
  return failures == 0 ? 0 : 1;
}
