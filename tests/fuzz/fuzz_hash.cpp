// libFuzzer harness for the hash entry point: hash_bytes (decode + every hash kernel). The first
// input byte picks the request, the rest is the encoded image (format detected from content):
//   bits 0-1  mode: 0 exact, 1 PDQ full, 2 fast, 3 exact
//   bit  2    PDQ dihedral variants
//   bit  3    EXIF orientation (fast mode)
//   bits 4-7  kinds: 0 = all eight; otherwise bit 4 aHash+dHash+dHash-vertical, bit 5 pHash +
//             pHash-simple, bit 6 wHash + colorhash, bit 7 PDQ
// Besides what ASan/UBSan catch, it traps on a Status outside the enum, a failure without a
// message, and a PDQ quality outside 0..100. The pixel limit is 2^22 px: wHash's float64 wavelet
// buffer grows with the image's short side, and legal-but-large images must stay under
// -rss_limit_mb (refusing them before allocating is part of what is tested).
#include <cstddef>
#include <cstdint>

#include "mmcore/hash.h"
#include "mmcore/status.h"

namespace {

constexpr std::int64_t kFuzzMaxPixels = std::int64_t{1} << 22;

std::uint32_t kinds_of(std::uint8_t sel) {
  const std::uint32_t k = sel >> 4;
  if (k == 0) return (1u << mmcore::kHashKindCount) - 1;
  std::uint32_t mask = 0;
  if (k & 1) mask |= 0b0000111u;   // aHash, dHash, dHash-vertical
  if (k & 2) mask |= 0b0011000u;   // pHash, pHash-simple
  if (k & 4) mask |= 0b1100000u;   // wHash, colorhash
  if (k & 8) mask |= 0b10000000u;  // PDQ
  return mask;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t sel = data[0];
  ++data, --size;

  mmcore::HashRequest request;
  request.kinds = kinds_of(sel);
  const int mode = sel & 3;
  request.mode = mode == 1   ? mmcore::HashMode::kPdqFull
                 : mode == 2 ? mmcore::HashMode::kFast
                             : mmcore::HashMode::kExact;
  request.pdq_dihedral = (sel & 4) != 0;
  request.exif_orientation = (sel & 8) != 0;
  request.max_pixels = kFuzzMaxPixels;

  mmcore::HashRecord out;
  mmcore::ErrorText error;
  const mmcore::Status s = mmcore::hash_bytes(data, size, request, &out, &error);
  if (static_cast<int>(s) > static_cast<int>(mmcore::Status::kDevice)) __builtin_trap();
  if (!mmcore::status_ok(s) && error.empty()) __builtin_trap();
  if (out.pdq_quality < 0 || out.pdq_quality > 100) __builtin_trap();
  return 0;
}
