// C++ test of mmcore::Workspace's contract (mmcore/workspace.h): a slot reuses its buffer while a
// request fits, grows when it does not, two slots never alias, end_record() frees what is under
// the retain size (last slot first) and keeps the rest, and fill() sets every held byte.
//
// Build and run (tests/test_hash.py does this when a build tree exists):
//   g++ -O2 -std=c++17 -Icpp/include -Icpp/src tests/cpp/test_workspace.cpp build/<tag>/cpp/libmmcore_cpu.a \
//       $(pkg-config --libs libjpeg libpng libwebp libwebpdemux zlib) -lpthread -o /tmp/test_workspace &&
//       /tmp/test_workspace
#include <cstdint>
#include <cstdio>

#include "mmcore/workspace.h"

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok && failures++ < 20) std::printf("FAIL %s\n", what);
}

}  // namespace

int main() {
  using mmcore::Workspace;
  using Slot = Workspace::Slot;
  constexpr std::size_t kMiB = std::size_t{1} << 20;
  {
    Workspace ws;
    check(ws.held_bytes() == 0, "a new workspace holds nothing");
    std::uint8_t* small = ws.get<std::uint8_t>(Slot::kDecode, kMiB);
    float* pdq = ws.get<float>(Slot::kPdq, kMiB);
    check(static_cast<void*>(small) != static_cast<void*>(pdq), "two slots do not alias");
    check(ws.held_bytes() == 5 * kMiB, "held bytes: 1 MiB of bytes and 1 Mi floats");
    check(ws.get<std::uint8_t>(Slot::kDecode, kMiB / 2) == small, "a request that fits reuses the buffer");
    ws.end_record();
    check(ws.held_bytes() == 0, "end_record frees buffers under kRetainBytes");
    std::uint8_t* big = ws.get<std::uint8_t>(Slot::kDecode, Workspace::kRetainBytes);
    small = ws.get<std::uint8_t>(Slot::kGrey, kMiB);
    big[0] = 1, big[Workspace::kRetainBytes - 1] = 2, small[0] = 3;
    ws.end_record();
    check(ws.held_bytes() == Workspace::kRetainBytes, "end_record keeps buffers of kRetainBytes and more");
    check(ws.get<std::uint8_t>(Slot::kDecode, 10 * kMiB) == big, "a kept buffer serves a smaller request");
    ws.fill(0xA7);
    check(big[0] == 0xA7 && big[Workspace::kRetainBytes - 1] == 0xA7, "fill sets every held byte");
    std::uint8_t* bigger = ws.get<std::uint8_t>(Slot::kDecode, Workspace::kRetainBytes + 1);
    bigger[Workspace::kRetainBytes] = 4;
    check(ws.held_bytes() == Workspace::kRetainBytes + 1, "a larger request replaces the buffer");
  }
  {
    Workspace keep_all(0);
    std::uint8_t* p = keep_all.get<std::uint8_t>(Slot::kThumbnailOrient, 100);
    keep_all.end_record();
    check(keep_all.held_bytes() == 100, "retain size 0 keeps every buffer");
    check(keep_all.get<std::uint8_t>(Slot::kThumbnailOrient, 50) == p, "and reuses it");
    std::uint8_t* z = keep_all.get<std::uint8_t>(Slot::kGrey, 0);
    check(z != nullptr, "a request of 0 bytes gives a pointer");
  }
  std::printf("%d failures\n", failures);
  if (failures != 0) return 1;
  std::printf("PASS\n");
  return 0;
}
