// C++ test of the GPU hash kernel's code on the CPU: cuda/hash.cu's kernel is a loop over the
// __host__ __device__ phases of hash_gpu_internal.h with a barrier between each; this test runs
// those phases (every thread of a phase, then the next phase) and compares the hashes with
// hash_image's exact mode, bit for bit, on the seeded synthetic set of tests/gpu/test_images.h
// and on corpus images when ../shared/corpus exists. It also checks that
// - the result does not depend on thread order within a phase (threads run forwards and
//   backwards): no thread reads what another writes in the same phase;
// - blocks do not share scratch: every block's phase k runs before any block's phase k + 1;
// - shared memory and scratch are fully written before being read (both start as garbage);
// - chunking (a small scratch cap) gives the same hashes, and invalid descriptors are refused.
// What it cannot check: the GPU's own arithmetic (the intrinsics), the launch, memory and
// errors; tests/gpu/gpu_check.cpp does that on a GPU host (bench/gpu_check.sh).
//
// Build and run from the repository root (tests/test_hash.py does this):
//   g++ -O2 -std=c++17 -Icpp/include -Icpp/src tests/cpp/test_hash_gpu_emu.cpp
//       build/<tag>/cpp/libmmcore_cpu.a $(pkg-config --libs libjpeg libpng libwebp libwebpdemux zlib)
//       -lpthread -o /tmp/test_hash_gpu_emu && /tmp/test_hash_gpu_emu
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "../gpu/kernel_emulator.h"
#include "../gpu/test_images.h"
#include "hash_gpu_internal.h"
#include "mmcore/hash.h"
#include "mmcore/parallel.h"

namespace {

using mmcore_test::HostImage;

int failures = 0;

struct Batch {
  std::vector<std::uint8_t> pixels;
  std::vector<mmcore::GpuImage> desc;
};

Batch pack(const std::vector<HostImage>& set) {
  Batch b;
  for (const HostImage& im : set) {
    mmcore::GpuImage d;
    d.offset = static_cast<std::int64_t>(b.pixels.size());
    d.stride = im.stride;
    d.width = im.width;
    d.height = im.height;
    d.channels = im.channels;
    b.desc.push_back(d);
    b.pixels.insert(b.pixels.end(), im.pixels.begin(), im.pixels.end());
    b.pixels.resize((b.pixels.size() + 15) / 16 * 16, 0x5A);
  }
  return b;
}

/// The emulated batch; out: kGpuHashColumns x n, poisoned first.
void emulate(const Batch& b, std::uint32_t kinds, std::int64_t scratch_cap, bool interleave, bool reverse,
             std::vector<std::uint64_t>* out, std::vector<mmcore::Status>* statuses) {
  const std::int32_t n = static_cast<std::int32_t>(b.desc.size());
  out->assign(static_cast<std::size_t>(mmcore::kGpuHashColumns) * n, 0xA5A5A5A5A5A5A5A5ULL);
  statuses->assign(n, mmcore::Status::kDevice);
  if (!mmcore_test::emulate_hash_batch(b.pixels.data(), static_cast<std::int64_t>(b.pixels.size()),
                                       b.desc.data(), n, kinds, scratch_cap, interleave, reverse, out->data(),
                                       statuses->data())) {
    std::printf("FAIL planner: no progress or wrong plan count\n");
    ++failures;
  }
}

const char* const kKindNames[mmcore::kGpuHashColumns] = {"ahash", "dhash", "dhash_vertical", "phash",
                                                         "phash_simple"};

/// Compares an emulation with hash_image; returns the number of differing hashes.
long compare(const char* label, const std::vector<HostImage>& set, const std::vector<std::uint64_t>& got,
             std::uint32_t kinds, const std::vector<mmcore::HashRecord>& ref) {
  const std::size_t n = set.size();
  long bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    for (int k = 0; k < mmcore::kGpuHashColumns; ++k) {
      const std::uint64_t v = got[static_cast<std::size_t>(k) * n + i];
      const bool asked = (kinds >> k) & 1u;
      const std::uint64_t want = asked ? ref[i].bits[k] : 0xA5A5A5A5A5A5A5A5ULL;
      if (v != want) {
        if (bad < 10)
          std::printf("FAIL %s: %s %s: emulated %016llx expected %016llx\n", label, set[i].name.c_str(),
                      kKindNames[k], static_cast<unsigned long long>(v),
                      static_cast<unsigned long long>(want));
        ++bad;
      }
    }
  }
  return bad;
}

std::vector<mmcore::HashRecord> reference(const std::vector<HostImage>& set) {
  std::vector<mmcore::HashRecord> ref(set.size());
  mmcore::parallel_for(static_cast<std::int64_t>(set.size()), 0, [&](std::int64_t i) {
    mmcore::HashRequest req;
    req.kinds = mmcore::kGpuHashKinds | (1u << static_cast<int>(mmcore::HashKind::kPdq));
    mmcore::ErrorText err;
    if (mmcore::hash_image(set[i].view(), req, &ref[i], &err) != mmcore::Status::kOk) {
      std::printf("FAIL hash_image refused %s: %s\n", set[i].name.c_str(), err.text);
      ++failures;
    }
  });
  return ref;
}

void check_pdq(const char* label, const std::vector<HostImage>& set,
               const std::vector<mmcore::HashRecord>& ref, const Batch& b);

void check_set(const char* label, const std::vector<HostImage>& set) {
  const Batch b = pack(set);
  const std::vector<mmcore::HashRecord> ref = reference(set);
  std::vector<std::uint64_t> got;
  std::vector<mmcore::Status> st;
  struct Mode {
    std::uint32_t kinds;
    std::int64_t cap;
    bool interleave, reverse;
  };
  const Mode modes[] = {
      {mmcore::kGpuHashKinds, std::int64_t{1} << 30, false, false},
      {mmcore::kGpuHashKinds, std::int64_t{1} << 30, true, true},
      {mmcore::kGpuHashKinds, 20000, true, false},  // many chunks
      {1u << 3, std::int64_t{1} << 30, false, true},
      {(1u << 1) | (1u << 4), 5000, true, false},
  };
  for (const Mode& m : modes) {
    emulate(b, m.kinds, m.cap, m.interleave, m.reverse, &got, &st);
    long bad = compare(label, set, got, m.kinds, ref);
    for (mmcore::Status s : st) bad += s != mmcore::Status::kOk;
    std::printf("%s: %zu images, kinds 0x%x, scratch cap %lld, %s, threads %s: %ld differences\n", label,
                set.size(), m.kinds, static_cast<long long>(m.cap),
                m.interleave ? "phase-major" : "block-major", m.reverse ? "backwards" : "forwards", bad);
    if (bad != 0) ++failures;
  }
  check_pdq(label, set, ref, b);
}

/// PDQ: the emulated kernel against hash_image's reference mode (hash and quality).
void check_pdq(const char* label, const std::vector<HostImage>& set,
               const std::vector<mmcore::HashRecord>& ref, const Batch& b) {
  const std::int32_t n = static_cast<std::int32_t>(set.size());
  struct Mode {
    std::int64_t resident, cap;
    bool interleave, reverse;
    std::int32_t layout;
  };
  // Every image on its own block; three resident blocks reusing their slots, image after image,
  // interleaved (a slot shared by two blocks would show); the scratch cap holding one slot.
  // All four blur layouts (the sub-steps of layouts 2 and 3 run backwards too: a thread reading
  // what another writes in the same sub-step would show).
  for (const Mode& m :
       {Mode{1 << 20, std::int64_t{1} << 30, false, false, 0}, Mode{3, std::int64_t{1} << 30, true, true, 0},
        Mode{1 << 20, 300000, true, false, 0}, Mode{1 << 20, std::int64_t{1} << 30, false, true, 1},
        Mode{3, std::int64_t{1} << 30, true, false, 1}, Mode{1 << 20, std::int64_t{1} << 30, false, false, 2},
        Mode{3, std::int64_t{1} << 30, true, true, 2}, Mode{1 << 20, std::int64_t{1} << 30, false, false, 3},
        Mode{3, std::int64_t{1} << 30, true, true, 3}}) {
    std::vector<std::uint8_t> hashes(static_cast<std::size_t>(n) * 32, 0xA5);
    std::vector<std::int32_t> quality(n, -1);
    std::vector<mmcore::Status> st(n, mmcore::Status::kDevice);
    long bad = 0;
    if (!mmcore_test::emulate_pdq_batch(b.pixels.data(), static_cast<std::int64_t>(b.pixels.size()),
                                        b.desc.data(), n, m.resident, m.cap, m.interleave, m.reverse,
                                        hashes.data(), quality.data(), st.data(), m.layout)) {
      ++bad;
    }
    for (std::int32_t i = 0; i < n; ++i) {
      const bool same = st[i] == mmcore::Status::kOk && quality[i] == ref[i].pdq_quality &&
                        std::memcmp(hashes.data() + 32 * i, ref[i].pdq[0].bytes, 32) == 0;
      if (!same) {
        if (bad < 10) {
          std::printf("FAIL %s pdq: %s: quality %d vs %d, first bytes %02x%02x vs %02x%02x\n", label,
                      set[i].name.c_str(), quality[i], ref[i].pdq_quality, hashes[32 * i], hashes[32 * i + 1],
                      ref[i].pdq[0].bytes[0], ref[i].pdq[0].bytes[1]);
        }
        ++bad;
      }
    }
    std::printf(
        "%s pdq: %d images, layout %d, %lld resident blocks, scratch cap %lld, %s, threads %s: %ld "
        "differences\n",
        label, n, m.layout, static_cast<long long>(m.resident), static_cast<long long>(m.cap),
        m.interleave ? "phase-major" : "block-major", m.reverse ? "backwards" : "forwards", bad);
    if (bad != 0) ++failures;
  }
}

void check_invalid() {
  std::mt19937_64 rng(3);
  std::vector<HostImage> set;
  set.push_back(mmcore_test::make_image(20, 30, 3, 0, mmcore_test::Pattern::kNoise, rng));
  set.push_back(mmcore_test::make_image(20, 30, 1, 0, mmcore_test::Pattern::kNoise, rng));
  Batch b = pack(set);
  mmcore::GpuImage extra = b.desc[0];
  extra.offset = static_cast<std::int64_t>(b.pixels.size()) - 5;  // reaches past the end
  b.desc.push_back(extra);
  b.desc[1].stride = 3;  // shorter than a row
  mmcore::GpuImage hostile = b.desc[0];
  hostile.stride = std::int64_t{1} << 62;  // stride * (height - 1) would overflow int64
  b.desc.push_back(hostile);
  mmcore::GpuImage last_row = b.desc[0];  // exactly fits: its last row ends at the buffer's end
  last_row.offset = static_cast<std::int64_t>(b.pixels.size()) - 20 * 30 * 3;
  b.desc.push_back(last_row);
  std::vector<std::uint64_t> got;
  std::vector<mmcore::Status> st;
  emulate(b, mmcore::kGpuHashKinds, std::int64_t{1} << 30, true, false, &got, &st);
  const std::size_t n = b.desc.size();  // 5
  bool ok = st[0] == mmcore::Status::kOk && st[1] == mmcore::Status::kUnsupported &&
            st[2] == mmcore::Status::kUnsupported && st[3] == mmcore::Status::kUnsupported &&
            st[4] == mmcore::Status::kOk;
  for (int k = 0; k < mmcore::kGpuHashColumns; ++k) {
    const std::uint64_t* col = got.data() + k * n;
    ok = ok && col[1] == 0 && col[2] == 0 && col[3] == 0 && col[0] != 0xA5A5A5A5A5A5A5A5ULL &&
         col[4] != 0xA5A5A5A5A5A5A5A5ULL;
  }
  std::printf("invalid descriptors: %s\n", ok ? "refused, hashes 0" : "FAIL");
  if (!ok) ++failures;
}

}  // namespace

int main() {
  check_invalid();
  check_set("synthetic", mmcore_test::synthetic_set(20261128, 300, 400, false));
  int undecodable = 0;
  std::vector<HostImage> real;
  for (const char* dir : {"../shared/corpus/jpeg", "../shared/corpus/png"}) {
    std::vector<HostImage> r = mmcore_test::real_set(dir, 30, &undecodable);
    for (HostImage& im : r) real.push_back(std::move(im));
  }
  if (real.empty()) {
    std::printf("corpus absent (../shared/corpus): real images skipped\n");
  } else {
    check_set("corpus", real);
  }
  std::printf(failures == 0 ? "PASS\n" : "FAILED (%d)\n", failures);
  return failures == 0 ? 0 : 1;
}
