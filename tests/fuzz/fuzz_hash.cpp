// libFuzzer harness for the hash entry point: hash_bytes (decode + every hash kernel). The first
// input byte picks the request, the rest is the encoded image (format detected from content):
//   bits 0-1  mode: 0 exact, 1 PDQ full, 2 fast, 3 exact with a thumbnail (hash_bytes_with_thumbnail:
//             short side 48, or a 40x24 crop when bit 2 is set, EXIF orientation per bit 3),
//             checked pixel for pixel against thumbnail_into
//   bit  2    PDQ dihedral variants
//   bit  3    EXIF orientation (fast mode)
//   bits 4-7  kinds: 0 = all eight; otherwise bit 4 aHash+dHash+dHash-vertical, bit 5 pHash +
//             pHash-simple, bit 6 wHash + colorhash, bit 7 PDQ; all four set (0xF, all eight
//             again) runs the imagehash kinds at other sizes (hash_size 16, binbits 5)
// Besides what ASan/UBSan catch, it traps on a Status outside the enum, a failure without a
// message, a PDQ quality outside 0..100, and on any difference between the hashes made with a
// Workspace kept across inputs (every slot reused, as a batch worker's large buffers are) and
// with none: leftovers of an earlier input must never reach a result. The pixel limit is 2^22 px: wHash's
// float64 wavelet buffer grows with the image's short side, and legal-but-large images must stay under
// -rss_limit_mb (refusing them before allocating is part of what is tested).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "mmcore/hash.h"
#include "mmcore/image.h"
#include "mmcore/status.h"
#include "mmcore/workspace.h"

namespace {

/// Kept across inputs like a batch worker's, retaining every buffer (retain size 0).
mmcore::Workspace& reused() {
  static mmcore::Workspace w(0);
  return w;
}

/// reused(), its buffers filled with a byte that changes from input to input: a read of scratch
/// before it is written then differs from the run without a workspace (whose fresh memory may
/// hold the same leftovers).
mmcore::Workspace* reused_filled() {
  static unsigned char byte = 0x5A;
  reused().fill(byte += 0x3B);
  return &reused();
}

bool same_record(const mmcore::HashRecord& a, const mmcore::HashRecord& b) {
  for (int k = 0; k < mmcore::kHashKindCount; ++k)
    if (a.wide[k] != b.wide[k]) return false;
  return std::memcmp(a.bits, b.bits, sizeof a.bits) == 0 && std::memcmp(a.pdq, b.pdq, sizeof a.pdq) == 0 &&
         a.pdq_quality == b.pdq_quality;
}

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

/// hash_bytes_with_thumbnail: its hashes must be hash_bytes's and its thumbnail thumbnail_into's
/// (pixels, status, message presence), whether it reused the hash decode or decoded again.
mmcore::Status thumbnail_check(const std::uint8_t* data, std::size_t size, const mmcore::HashRequest& request,
                               std::uint8_t sel, mmcore::HashRecord* out, mmcore::ErrorText* error) {
  mmcore::ThumbnailOptions t;
  t.decode.max_pixels = kFuzzMaxPixels;
  t.decode.exif_orientation = (sel & 8) != 0;
  t.upscale = false;
  if (sel & 4) {
    t.crop_width = 40;
    t.crop_height = 24;
  } else {
    t.short_side = 48;
  }
  mmcore::ThumbnailInfo info;
  mmcore::ErrorText terr;
  if (!mmcore::status_ok(mmcore::thumbnail_info(data, size, t, &info, &terr))) {
    return mmcore::hash_bytes(data, size, request, out, error);
  }
  const std::size_t bytes = static_cast<std::size_t>(info.out_width) * info.out_height * info.out_channels;
  std::vector<std::uint8_t> got(bytes + 1, 0xAB), want(bytes + 1, 0xCD);
  const mmcore::ImageView gv{got.data(), info.out_width, info.out_height, info.out_channels,
                             static_cast<std::int64_t>(info.out_width) * info.out_channels};
  const mmcore::ImageView wv{want.data(), info.out_width, info.out_height, info.out_channels,
                             static_cast<std::int64_t>(info.out_width) * info.out_channels};
  mmcore::Status ts = mmcore::Status::kOk;
  mmcore::ErrorText tmsg, wmsg, herr;
  const mmcore::Status s = mmcore::hash_bytes_with_thumbnail(data, size, request, out, error, t, info, gv,
                                                             &ts, &tmsg, reused_filled());
  reused().end_record();
  const mmcore::Status ws = mmcore::thumbnail_into(data, size, t, info, wv, &wmsg);
  mmcore::HashRecord plain;
  const mmcore::Status hs = mmcore::hash_bytes(data, size, request, &plain, &herr);
  if (hs != s || (mmcore::status_ok(s) && !same_record(plain, *out))) __builtin_trap();
  if (mmcore::status_ok(ws) != mmcore::status_ok(ts)) __builtin_trap();
  if (!mmcore::status_ok(ts) && tmsg.empty()) __builtin_trap();
  if (mmcore::status_ok(ts) && std::memcmp(got.data(), want.data(), bytes) != 0) __builtin_trap();
  if (got[bytes] != 0xAB) __builtin_trap();  // nothing written past the thumbnail
  return s;
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
  if ((sel >> 4) == 0xF) {  // the sized kernels (hash_sized.cpp)
    request.hash_size = 16;
    request.binbits = 5;
  }

  mmcore::HashRecord out;
  mmcore::ErrorText error;
  mmcore::Status s;
  if (mode == 3) {
    s = thumbnail_check(data, size, request, sel, &out, &error);
  } else {
    s = mmcore::hash_bytes(data, size, request, &out, &error);
    mmcore::HashRecord again;
    mmcore::ErrorText again_error;
    const mmcore::Status s2 = mmcore::hash_bytes(data, size, request, &again, &again_error, reused_filled());
    reused().end_record();
    if (s2 != s || (mmcore::status_ok(s) && !same_record(out, again))) __builtin_trap();
  }
  if (static_cast<int>(s) > static_cast<int>(mmcore::Status::kDevice)) __builtin_trap();
  if (!mmcore::status_ok(s) && error.empty()) __builtin_trap();
  if (out.pdq_quality < 0 || out.pdq_quality > 100) __builtin_trap();
  return 0;
}
