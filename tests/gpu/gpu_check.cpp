// GPU hash check and bench (bench/gpu_check.sh runs it on GPU hosts; CMake target
// mmcore_gpu_check, built only with CUDA).
//
// 1. Lists the CUDA devices.
// 2. Correctness: HashGpu::hash_batch against the CPU oracle (hash_image, exact mode) on
//    synthetic images (sizes 1x1 .. 4000x3000, odd sizes, grey / RGB / RGBA, padded strides,
//    noise, flat, ramps, two-level patterns that make ties) and on real images from --images
//    (decoded on the CPU by mmcore; RGB and Pillow-L grey), bit for bit per kind; also against
//    hash_bytes (the CPU's whole exact path from the file) for the real images; kind subsets
//    leave other columns untouched; invalid descriptors get kUnsupported.
// 3. Bench: --bench-count images of 500x375 RGB already on the device, all five kinds and pHash
//    alone, median of --repeat runs after warm-up, against the CPU (hash_image on every core).
// 4. Writes a markdown report to --report.
//
// Exit status: 0 all equal; 1 a mismatch; 2 usage or I/O error; 3 no usable CUDA device;
// 4 a CUDA error during the check.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "check_report.h"
#include "mmcore/hash.h"
#include "mmcore/hash_gpu.h"
#include "mmcore/parallel.h"
#include "mmcore/resize.h"
#include "test_images.h"

namespace {

using mmcore::ErrorText;
using mmcore::GpuImage;
using mmcore::Status;
using mmcore_test::HostImage;
using mmcore_test::make_image;
using mmcore_test::Pattern;

constexpr int kExitMismatch = 1;
constexpr int kExitUsage = 2;
constexpr int kExitNoDevice = 3;
constexpr int kExitCuda = 4;
const char* const kKindNames[mmcore::kGpuHashColumns] = {"ahash", "dhash", "dhash_vertical", "phash",
                                                         "phash_simple"};

struct Options {
  std::string images_dir;
  std::string report = "gpu_check.md";
  int bench_count = 4000;
  int repeat = 10;
  int random_count = 400;
  int max_images = 0;  ///< > 0: an evenly spaced subset of the synthetic set (sanitizer runs)
  bool huge = true;    ///< 4000x3000 and 3000x4000 in the synthetic set
  std::uint64_t seed = 20261128;
};

using mmcore_test::say;

void write_report(const Options& o) {
  mmcore_test::write_report(o.report);
}

// ---- device batch ----------------------------------------------------------------------------

/// Images packed into one device buffer (16-byte aligned offsets) plus an output buffer.
struct DeviceBatch {
  std::uint8_t* pixels = nullptr;
  std::int64_t bytes = 0;
  std::uint64_t* out = nullptr;
  std::uint8_t* pdq = nullptr;  ///< 32 bytes per image
  std::int32_t* pdq_quality = nullptr;
  std::vector<GpuImage> desc;
  ~DeviceBatch() {
    if (pixels != nullptr) cudaFree(pixels);
    if (out != nullptr) cudaFree(out);
    if (pdq != nullptr) cudaFree(pdq);
    if (pdq_quality != nullptr) cudaFree(pdq_quality);
  }
};

bool cuda_ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  std::fprintf(stderr, "CUDA error in %s: %s\n", what, cudaGetErrorString(e));
  return false;
}

bool upload(const std::vector<const HostImage*>& ims, DeviceBatch* b) {
  std::int64_t at = 0;
  b->desc.clear();
  for (const HostImage* im : ims) {
    GpuImage g;
    g.offset = at;
    g.stride = im->stride;
    g.width = im->width;
    g.height = im->height;
    g.channels = im->channels;
    b->desc.push_back(g);
    at += (static_cast<std::int64_t>(im->pixels.size()) + 15) / 16 * 16;
  }
  b->bytes = at;
  if (!cuda_ok(cudaMalloc(&b->pixels, static_cast<std::size_t>(std::max<std::int64_t>(at, 1))), "cudaMalloc"))
    return false;
  const std::size_t outs =
      static_cast<std::size_t>(mmcore::kGpuHashColumns) * std::max<std::size_t>(ims.size(), 1);
  if (!cuda_ok(cudaMalloc(&b->out, outs * sizeof(std::uint64_t)), "cudaMalloc")) return false;
  const std::size_t images = std::max<std::size_t>(ims.size(), 1);
  if (!cuda_ok(cudaMalloc(&b->pdq, 32 * images), "cudaMalloc") ||
      !cuda_ok(cudaMalloc(&b->pdq_quality, sizeof(std::int32_t) * images), "cudaMalloc"))
    return false;
  for (std::size_t i = 0; i < ims.size(); ++i) {
    if (!cuda_ok(cudaMemcpy(b->pixels + b->desc[i].offset, ims[i]->pixels.data(), ims[i]->pixels.size(),
                            cudaMemcpyHostToDevice),
                 "cudaMemcpy"))
      return false;
  }
  return cuda_ok(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

/// Poisons the output columns (so an unwritten hash cannot pass), hashes, copies back.
bool run_gpu(mmcore::HashGpu& gpu, DeviceBatch& b, std::uint32_t kinds, std::vector<std::uint64_t>* host,
             std::vector<Status>* statuses) {
  const std::size_t n = b.desc.size();
  const std::size_t outs = static_cast<std::size_t>(mmcore::kGpuHashColumns) * n;
  // HashGpu's stream waits for the legacy default stream anyway; the explicit sync keeps this
  // check independent of that promise.
  if (!cuda_ok(cudaMemset(b.out, 0xA5, outs * sizeof(std::uint64_t)), "cudaMemset") ||
      !cuda_ok(cudaDeviceSynchronize(), "cudaDeviceSynchronize"))
    return false;
  statuses->assign(n, Status::kDevice);
  ErrorText err;
  const Status s = gpu.hash_batch(b.pixels, b.bytes, b.desc.data(), static_cast<std::int32_t>(n), kinds,
                                  b.out, statuses->data(), &err);
  if (s != Status::kOk) {
    std::fprintf(stderr, "hash_batch: status %d: %s\n", static_cast<int>(s), err.text);
    return false;
  }
  host->assign(outs, 0);
  return cuda_ok(cudaMemcpy(host->data(), b.out, outs * sizeof(std::uint64_t), cudaMemcpyDeviceToHost),
                 "cudaMemcpy");
}

/// The same for PDQ: hashes (32 bytes each) and qualities, poisoned first.
bool run_pdq(mmcore::HashGpu& gpu, DeviceBatch& b, std::vector<std::uint8_t>* hashes,
             std::vector<std::int32_t>* quality, std::vector<Status>* statuses) {
  const std::size_t n = b.desc.size();
  if (!cuda_ok(cudaMemset(b.pdq, 0xA5, 32 * n), "cudaMemset") ||
      !cuda_ok(cudaMemset(b.pdq_quality, 0xA5, sizeof(std::int32_t) * n), "cudaMemset") ||
      !cuda_ok(cudaDeviceSynchronize(), "cudaDeviceSynchronize"))
    return false;
  statuses->assign(n, Status::kDevice);
  ErrorText err;
  const Status s = gpu.pdq_batch(b.pixels, b.bytes, b.desc.data(), static_cast<std::int32_t>(n), b.pdq,
                                 b.pdq_quality, statuses->data(), &err);
  if (s != Status::kOk) {
    std::fprintf(stderr, "pdq_batch: status %d: %s\n", static_cast<int>(s), err.text);
    return false;
  }
  hashes->assign(32 * n, 0);
  quality->assign(n, 0);
  return cuda_ok(cudaMemcpy(hashes->data(), b.pdq, 32 * n, cudaMemcpyDeviceToHost), "cudaMemcpy") &&
         cuda_ok(cudaMemcpy(quality->data(), b.pdq_quality, sizeof(std::int32_t) * n, cudaMemcpyDeviceToHost),
                 "cudaMemcpy");
}

constexpr std::uint32_t kPdqBit = 1u << static_cast<int>(mmcore::HashKind::kPdq);

mmcore::HashRecord cpu_hash(const mmcore::ConstImageView& v, std::uint32_t kinds) {
  mmcore::HashRequest req;
  req.kinds = kinds;
  req.mode = mmcore::HashMode::kExact;
  mmcore::HashRecord rec;
  ErrorText err;
  mmcore::hash_image(v, req, &rec, &err);
  return rec;
}

constexpr std::uint64_t kPoison = 0xA5A5A5A5A5A5A5A5ULL;

/// Compares every image and kind; returns the mismatch count, prints the first few.
long compare_set(const char* label, const std::vector<HostImage>& set, mmcore::HashGpu& gpu,
                 bool* cuda_failed) {
  if (set.empty()) return 0;
  std::vector<const HostImage*> ptrs;
  for (const HostImage& im : set) ptrs.push_back(&im);
  DeviceBatch b;
  std::vector<std::uint64_t> got;
  std::vector<Status> st;
  std::vector<std::uint8_t> pdq;
  std::vector<std::int32_t> quality;
  std::vector<Status> pdq_st;
  // PDQ's variants, each selected by an environment variable and compared with the default (which
  // is compared with the CPU below): the other blur layouts, the kernel built for 8 blocks per SM,
  // and 7 resident blocks at most (each taking many images in turn).
  static const struct {
    const char* var;
    const char* value;
    const char* label;
  } kVariants[] = {
      {"MMCORE_GPU_PDQ_LAYOUT", "1", "pdq, blur layout 1 (MMCORE_GPU_PDQ_LAYOUT=1), vs layout 0"},
      {"MMCORE_GPU_PDQ_LAYOUT", "2", "pdq, blur layout 2 (MMCORE_GPU_PDQ_LAYOUT=2), vs layout 0"},
      {"MMCORE_GPU_PDQ_LAYOUT", "3", "pdq, blur layout 3 (MMCORE_GPU_PDQ_LAYOUT=3), vs layout 0"},
      {"MMCORE_GPU_PDQ_OCCUPANCY", "8", "pdq, 8 blocks per SM (MMCORE_GPU_PDQ_OCCUPANCY=8), vs the default"},
      {"MMCORE_GPU_PDQ_BLOCKS", "7",
       "pdq, at most 7 resident blocks (MMCORE_GPU_PDQ_BLOCKS=7), vs the default"}};
  constexpr int kCount = static_cast<int>(sizeof kVariants / sizeof kVariants[0]);
  struct PdqOut {
    std::vector<std::uint8_t> hashes;
    std::vector<std::int32_t> quality;
    std::vector<Status> st;
    long bad = 0;
  } outs[kCount];
  bool variants_ok = upload(ptrs, &b);
  for (int v = 0; v < kCount && variants_ok; ++v) {
    setenv(kVariants[v].var, kVariants[v].value, 1);
    variants_ok = run_pdq(gpu, b, &outs[v].hashes, &outs[v].quality, &outs[v].st);
    unsetenv(kVariants[v].var);
  }
  if (!variants_ok || !run_gpu(gpu, b, mmcore::kGpuHashKinds, &got, &st) ||
      !run_pdq(gpu, b, &pdq, &quality, &pdq_st)) {
    *cuda_failed = true;
    return 0;
  }
  for (PdqOut& o : outs) {
    for (std::size_t i = 0; i < set.size(); ++i) {
      if (o.st[i] != pdq_st[i] || o.quality[i] != quality[i] ||
          std::memcmp(o.hashes.data() + 32 * i, pdq.data() + 32 * i, 32) != 0)
        ++o.bad;
    }
  }
  const std::size_t n = set.size();
  std::vector<mmcore::HashRecord> ref(n);
  std::vector<mmcore::HashRecord> ref_bytes(n);
  std::vector<char> bytes_ok(n, 0);  // hash_bytes succeeded (only then is it compared)
  mmcore::parallel_for(static_cast<std::int64_t>(n), 0, [&](std::int64_t i) {
    ref[i] = cpu_hash(set[i].view(), mmcore::kGpuHashKinds | kPdqBit);
    if (!set[i].file.empty()) {
      mmcore::HashRequest req;
      req.kinds = mmcore::kGpuHashKinds | kPdqBit;
      ErrorText err;
      bytes_ok[i] = mmcore::status_ok(
          mmcore::hash_bytes(set[i].file.data(), set[i].file.size(), req, &ref_bytes[i], &err));
    }
  });
  long total = 0, printed = 0, bytes_mismatch = 0, with_bytes = 0;
  long per_kind[mmcore::kGpuHashColumns] = {0};
  long pdq_bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const bool pdq_same = pdq_st[i] == Status::kOk && quality[i] == ref[i].pdq_quality &&
                          std::memcmp(pdq.data() + 32 * i, ref[i].pdq[0].bytes, 32) == 0;
    if (!pdq_same) {
      ++pdq_bad;
      ++total;
      if (printed++ < 20)
        say("  MISMATCH %s pdq: status %d, quality gpu %d cpu %d, bytes 0-3 gpu %02x%02x%02x%02x cpu "
            "%02x%02x%02x%02x\n",
            set[i].name.c_str(), static_cast<int>(pdq_st[i]), quality[i], ref[i].pdq_quality, pdq[32 * i],
            pdq[32 * i + 1], pdq[32 * i + 2], pdq[32 * i + 3], ref[i].pdq[0].bytes[0], ref[i].pdq[0].bytes[1],
            ref[i].pdq[0].bytes[2], ref[i].pdq[0].bytes[3]);
    }
    if (bytes_ok[i] && (quality[i] != ref_bytes[i].pdq_quality ||
                        std::memcmp(pdq.data() + 32 * i, ref_bytes[i].pdq[0].bytes, 32) != 0))
      ++bytes_mismatch;
    if (st[i] != Status::kOk) {
      ++total;
      if (printed++ < 10) say("  %s: status %d\n", set[i].name.c_str(), static_cast<int>(st[i]));
      continue;
    }
    for (int k = 0; k < mmcore::kGpuHashColumns; ++k) {
      const std::uint64_t g = got[static_cast<std::size_t>(k) * n + i];
      if (g != ref[i].bits[k]) {
        ++per_kind[k];
        ++total;
        if (printed++ < 20)
          say("  MISMATCH %s %s: gpu %016llx cpu %016llx\n", set[i].name.c_str(), kKindNames[k],
              static_cast<unsigned long long>(g), static_cast<unsigned long long>(ref[i].bits[k]));
      }
    }
    if (bytes_ok[i]) {
      ++with_bytes;
      for (int k = 0; k < mmcore::kGpuHashColumns; ++k)
        if (got[static_cast<std::size_t>(k) * n + i] != ref_bytes[i].bits[k]) ++bytes_mismatch;
    }
  }
  say("\n### %s: %zu images\n\n| kind | mismatches vs hash_image |\n|---|---|\n", label, n);
  for (int k = 0; k < mmcore::kGpuHashColumns; ++k) say("| %s | %ld |\n", kKindNames[k], per_kind[k]);
  say("| pdq (reference mode: hash and quality) | %ld |\n", pdq_bad);
  for (int v = 0; v < kCount; ++v) {
    say("| %s | %ld |\n", kVariants[v].label, outs[v].bad);
    total += outs[v].bad;
  }
  if (with_bytes > 0) {
    say("\nvs hash_bytes (CPU exact path from the file) on %ld RGB decodes: %ld mismatching hashes\n",
        with_bytes, bytes_mismatch);
    total += bytes_mismatch;
  }
  return total;
}

/// Kind subsets leave the other columns as they were; bad descriptors get kUnsupported.
long check_contract(mmcore::HashGpu& gpu, bool* cuda_failed) {
  std::mt19937_64 rng(7);
  std::vector<HostImage> set;
  set.push_back(make_image(100, 80, 3, 0, Pattern::kNoise, rng));
  set.push_back(make_image(33, 47, 1, 3, Pattern::kRamp, rng));
  std::vector<const HostImage*> ptrs = {&set[0], &set[1], &set[0]};
  DeviceBatch b;
  if (!upload(ptrs, &b)) {
    *cuda_failed = true;
    return 0;
  }
  long bad = 0;
  // Record 2 reaches past the buffer's end; record 1 gets an impossible channel count below.
  b.desc[2].offset = b.bytes - 10;
  b.desc[1].channels = 2;
  std::vector<std::uint64_t> got;
  std::vector<Status> st;
  for (std::uint32_t kinds : {1u << 3, (1u << 0) | (1u << 4), 1u << 1 | 1u << 2}) {
    if (!run_gpu(gpu, b, kinds, &got, &st)) {
      *cuda_failed = true;
      return bad;
    }
    const mmcore::HashRecord ref = cpu_hash(set[0].view(), kinds);
    if (st[0] != Status::kOk || st[1] != Status::kUnsupported || st[2] != Status::kUnsupported) ++bad;
    for (int k = 0; k < mmcore::kGpuHashColumns; ++k) {
      const bool asked = (kinds >> k) & 1u;
      const std::uint64_t* col = got.data() + static_cast<std::size_t>(k) * 3;
      if (asked && (col[0] != ref.bits[k] || col[1] != 0 || col[2] != 0)) ++bad;
      if (!asked && (col[0] != kPoison || col[1] != kPoison || col[2] != kPoison)) ++bad;
    }
  }
  // PDQ: the same records.
  std::vector<std::uint8_t> pdq;
  std::vector<std::int32_t> quality;
  if (!run_pdq(gpu, b, &pdq, &quality, &st)) {
    *cuda_failed = true;
    return bad;
  }
  const mmcore::HashRecord pref = cpu_hash(set[0].view(), kPdqBit);
  if (st[0] != Status::kOk || st[1] != Status::kUnsupported || st[2] != Status::kUnsupported ||
      std::memcmp(pdq.data(), pref.pdq[0].bytes, 32) != 0 || quality[0] != pref.pdq_quality ||
      quality[1] != 0 || quality[2] != 0)
    ++bad;
  for (int k = 32; k < 96; ++k) bad += pdq[k] != 0;
  // Misuse is refused without touching anything.
  ErrorText err;
  if (gpu.hash_batch(b.pixels, b.bytes, b.desc.data(), 3, 1u << 5, b.out, st.data(), &err) !=
      Status::kUnsupported)
    ++bad;
  say("\n### contract (kind subsets, invalid records, misuse): %ld failures\n", bad);
  return bad;
}

// ---- bench -----------------------------------------------------------------------------------

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : (v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]));
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int bench(const Options& o, mmcore::HashGpu& gpu, const std::vector<HostImage>& real) {
  // 500x375 RGB sources: the real images resized to that size (CPU, Pillow-exact LANCZOS) when
  // given, else synthetic ramps and noise; cycled to bench_count images.
  std::vector<HostImage> base;
  for (const HostImage& r : real) {
    if (r.channels != 3 || base.size() >= 64) continue;
    HostImage im;
    im.width = 500;
    im.height = 375;
    im.channels = 3;
    im.stride = 1500;
    im.pixels.assign(1500 * 375, 0);
    mmcore::resize(r.view(), mmcore::ImageView{im.pixels.data(), 500, 375, 3, 1500},
                   mmcore::Filter::kLanczos3);
    base.push_back(std::move(im));
  }
  std::mt19937_64 rng(o.seed + 1);
  while (base.size() < 16)
    base.push_back(make_image(500, 375, 3, 0, base.size() % 2 ? Pattern::kRamp : Pattern::kNoise, rng));
  std::vector<const HostImage*> ptrs;
  for (int i = 0; i < o.bench_count; ++i) ptrs.push_back(&base[static_cast<std::size_t>(i) % base.size()]);
  DeviceBatch b;
  if (!upload(ptrs, &b)) return kExitCuda;
  const std::int32_t n = static_cast<std::int32_t>(ptrs.size());
  std::vector<Status> st(ptrs.size());
  cudaEvent_t e0, e1;
  if (!cuda_ok(cudaEventCreate(&e0), "cudaEventCreate") || !cuda_ok(cudaEventCreate(&e1), "cudaEventCreate"))
    return kExitCuda;
  const auto stream = static_cast<cudaStream_t>(gpu.stream());
  say("\n### bench: %d images of 500x375 RGB on the device (%zu distinct), median of %d runs\n\n", n,
      base.size(), o.repeat);
  say("| what | GPU call ms | GPU events ms | GPU images/s | CPU %d threads ms | CPU images/s | GPU / CPU "
      "|\n",
      mmcore::hardware_threads());
  say("|---|---|---|---|---|---|---|\n");
  const struct {
    const char* name;
    std::uint32_t kinds;  ///< kPdqBit alone: pdq_batch
    const char* layout;   ///< PDQ's blur layout (MMCORE_GPU_PDQ_LAYOUT)
    bool occupancy8;      ///< PDQ's kernel for 8 blocks per SM (MMCORE_GPU_PDQ_OCCUPANCY=8)
    const char* blocks;   ///< a cap on PDQ's resident blocks (MMCORE_GPU_PDQ_BLOCKS), "" for none
  } rows[] = {{"pHash", 1u << 3, "0", false, ""},
              {"all 5 kinds", mmcore::kGpuHashKinds, "0", false, ""},
              {"aHash", 1u << 0, "0", false, ""},
              {"PDQ", kPdqBit, "0", false, ""},
              {"PDQ, blur layout 1", kPdqBit, "1", false, ""},
              {"PDQ, blur layout 2", kPdqBit, "2", false, ""},
              {"PDQ, 8 blocks per SM", kPdqBit, "0", true, ""},
              {"PDQ, blur layout 1, 8 blocks per SM", kPdqBit, "1", true, ""},
              {"PDQ, blur layout 2, 8 blocks per SM", kPdqBit, "2", true, ""},
              {"PDQ, blur layout 3 (shared memory, 2 blocks per SM)", kPdqBit, "3", false, ""},
              // Fewer images in flight, so that their scratch slots (~1.5 MB each) stay in L2.
              {"PDQ, at most 32 blocks", kPdqBit, "0", false, "32"},
              {"PDQ, at most 64 blocks", kPdqBit, "0", false, "64"},
              {"PDQ, at most 132 blocks", kPdqBit, "0", false, "132"},
              {"PDQ, at most 264 blocks", kPdqBit, "0", false, "264"},
              {"PDQ, blur layout 1, at most 64 blocks", kPdqBit, "1", false, "64"},
              {"PDQ, blur layout 2, at most 132 blocks", kPdqBit, "2", false, "132"}};
  // One timed call: false on a failure (reported); the call's wall and event ms appended after
  // `warmup` calls.
  const auto timed = [&](std::uint32_t kinds, int runs, int warmup, std::vector<double>* call_ms,
                         std::vector<double>* event_ms) {
    for (int r = 0; r < runs + warmup; ++r) {
      ErrorText err;
      if (!cuda_ok(cudaEventRecord(e0, stream), "cudaEventRecord")) return false;
      const double t0 = now_s();
      const Status s =
          kinds == kPdqBit
              ? gpu.pdq_batch(b.pixels, b.bytes, b.desc.data(), n, b.pdq, b.pdq_quality, st.data(), &err)
              : gpu.hash_batch(b.pixels, b.bytes, b.desc.data(), n, kinds, b.out, st.data(), &err);
      const double t1 = now_s();
      if (s != Status::kOk) {
        std::fprintf(stderr, "bench hash_batch / pdq_batch: %s\n", err.text);
        return false;
      }
      if (!cuda_ok(cudaEventRecord(e1, stream), "cudaEventRecord") ||
          !cuda_ok(cudaEventSynchronize(e1), "cudaEventSynchronize"))
        return false;
      float ms = 0;
      cudaEventElapsedTime(&ms, e0, e1);
      if (r >= warmup) {
        call_ms->push_back((t1 - t0) * 1e3);
        event_ms->push_back(ms);
      }
    }
    return true;
  };
  for (const auto& row : rows) {
    std::vector<double> call_ms, event_ms;
    setenv("MMCORE_GPU_PDQ_LAYOUT", row.layout, 1);
    if (row.occupancy8) setenv("MMCORE_GPU_PDQ_OCCUPANCY", "8", 1);
    if (row.blocks[0] != '\0') setenv("MMCORE_GPU_PDQ_BLOCKS", row.blocks, 1);
    const bool ok = timed(row.kinds, o.repeat, 2, &call_ms, &event_ms);
    unsetenv("MMCORE_GPU_PDQ_LAYOUT");
    unsetenv("MMCORE_GPU_PDQ_OCCUPANCY");
    unsetenv("MMCORE_GPU_PDQ_BLOCKS");
    if (!ok) return kExitCuda;
    std::vector<double> cpu_ms;
    const int cpu_runs = std::max(1, std::min(3, o.repeat));
    for (int r = 0; r < cpu_runs; ++r) {
      const double t0 = now_s();
      mmcore::parallel_for(n, 0, [&](std::int64_t i) { (void)cpu_hash(ptrs[i]->view(), row.kinds); });
      cpu_ms.push_back((now_s() - t0) * 1e3);
    }
    const double g = median(call_ms), ge = median(event_ms), c = median(cpu_ms);
    say("| %s | %.2f | %.2f | %.0f | %.1f | %.0f | %.1fx |\n", row.name, g, ge, n / (g / 1e3), c,
        n / (c / 1e3), c / g);
  }
  say("\nGPU call = hash_batch / pdq_batch wall time (host planning, table upload, kernel, sync); events = "
      "the same span "
      "on "
      "the stream. CPU = hash_image per image on every core (mmcore::parallel_for), same pixels.\n");
  // Where PDQ's time goes: the kernel stopped after each phase (MMCORE_GPU_PDQ_PHASES=k; the hashes
  // are not written then), median event time of the same batch.
  static const char* const kPhaseNames[] = {
      "luma",          "box rows",        "box columns", "box rows, picked", "box columns, picked", "DCT D A",
      "DCT (D A) D^T", "median, quality", "bits"};
  for (const char* variant : {"0", "1", "2", "3", "0, 8 blocks per SM"}) {
    const char layout[2] = {variant[0], '\0'};
    say("\n#### PDQ per phase, blur layout %s (the kernel stopped after phase k)%s\n\n| k | phase | events "
        "ms "
        "(phases 0..k) | this phase ms |\n|---|---|---|---|\n",
        variant,
        variant[0] == '3' ? "; layout 3 runs all four box passes in phase 1 (band by band) and loads only "
                            "the first band's luma in phase 0"
                          : "");
    setenv("MMCORE_GPU_PDQ_LAYOUT", layout, 1);
    if (std::strlen(variant) > 1) setenv("MMCORE_GPU_PDQ_OCCUPANCY", "8", 1);
    double before = 0;
    for (int k = 1; k <= static_cast<int>(sizeof kPhaseNames / sizeof kPhaseNames[0]); ++k) {
      setenv("MMCORE_GPU_PDQ_PHASES", std::to_string(k).c_str(), 1);
      std::vector<double> call_ms, event_ms;
      const bool ok = timed(kPdqBit, o.repeat, 1, &call_ms, &event_ms);
      unsetenv("MMCORE_GPU_PDQ_PHASES");
      if (!ok) {
        unsetenv("MMCORE_GPU_PDQ_LAYOUT");
        unsetenv("MMCORE_GPU_PDQ_OCCUPANCY");
        return kExitCuda;
      }
      const double t = median(event_ms);
      say("| %d | %s | %.2f | %.2f |\n", k - 1, kPhaseNames[k - 1], t, t - before);
      before = t;
    }
    unsetenv("MMCORE_GPU_PDQ_LAYOUT");
    unsetenv("MMCORE_GPU_PDQ_OCCUPANCY");
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return 0;
}

bool parse(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&](const char*) { return mmcore_test::flag_value(argc, argv, &i, kExitUsage); };
    if (a == "--images") {
      o->images_dir = value("--images");
    } else if (a == "--report") {
      o->report = value("--report");
    } else if (a == "--bench-count") {
      o->bench_count = std::atoi(value("--bench-count"));
    } else if (a == "--repeat") {
      o->repeat = std::max(1, std::atoi(value("--repeat")));
    } else if (a == "--random") {
      o->random_count = std::max(0, std::atoi(value("--random")));
    } else if (a == "--max-images") {
      o->max_images = std::max(0, std::atoi(value("--max-images")));
    } else if (a == "--no-huge") {
      o->huge = false;
    } else if (a == "--seed") {
      o->seed = std::strtoull(value("--seed"), nullptr, 10);
    } else {
      std::fprintf(
          stderr,
          "usage: mmcore_gpu_check [--images DIR] [--report FILE.md] [--bench-count N (0: no bench)]\n"
          "                        [--repeat R] [--random N] [--max-images N] [--no-huge] [--seed S]\n"
          "exit: 0 equal, 1 mismatch, 2 usage, 3 no CUDA device, 4 CUDA error\n");
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, &o)) return kExitUsage;
  say("# mmcore GPU hash check\n\n");
  int devices = 0;
  const cudaError_t ce = cudaGetDeviceCount(&devices);
  if (ce != cudaSuccess || devices == 0) {
    say("no CUDA device: %s\n", ce != cudaSuccess ? cudaGetErrorString(ce) : "none present");
    write_report(o);
    return kExitNoDevice;
  }
  for (int d = 0; d < devices; ++d) {
    mmcore::GpuDeviceInfo info;
    ErrorText err;
    if (mmcore::gpu_device_info(d, &info, &err) != Status::kOk) {
      say("device %d: %s\n", d, err.text);
      continue;
    }
    say("- device %d: %s, sm_%d%d, %d SMs, %.1f GiB, driver %d, runtime %d\n", d, info.name, info.major,
        info.minor, info.multiprocessors, info.total_memory / 1073741824.0, info.driver_version,
        info.runtime_version);
  }
  say("- host: %d hardware threads\n", mmcore::hardware_threads());
  mmcore::HashGpu gpu;
  ErrorText err;
  const Status s = gpu.init(0, &err);
  if (s != Status::kOk) {
    say("HashGpu::init failed: %s\n", err.text);
    write_report(o);
    return kExitNoDevice;
  }

  bool cuda_failed = false;
  long mismatches = check_contract(gpu, &cuda_failed);
  std::vector<HostImage> synth = mmcore_test::synthetic_set(o.seed, o.random_count, 700, o.huge);
  if (o.max_images > 0 && synth.size() > static_cast<std::size_t>(o.max_images)) {
    std::vector<HostImage> subset;
    for (int i = 0; i < o.max_images; ++i)
      subset.push_back(std::move(synth[synth.size() * i / o.max_images]));
    synth = std::move(subset);
  }
  if (!cuda_failed) mismatches += compare_set("synthetic (seeded)", synth, gpu, &cuda_failed);
  int undecodable = 0;
  const std::vector<HostImage> real = mmcore_test::real_set(o.images_dir, 400, &undecodable);
  if (!o.images_dir.empty())
    say("\nreal images from %s: %zu decodes, %d files not decodable\n", o.images_dir.c_str(), real.size(),
        undecodable);
  if (!cuda_failed) mismatches += compare_set("real (decoded by mmcore)", real, gpu, &cuda_failed);
  if (cuda_failed) {
    say("\nCUDA error during the check (see stderr)\n");
    write_report(o);
    return kExitCuda;
  }
  say("\n**correctness: %s** (%ld mismatching hashes or records)\n", mismatches == 0 ? "PASS" : "FAIL",
      mismatches);
  int rc = mismatches == 0 ? 0 : kExitMismatch;
  if (o.bench_count > 0) {
    const int b = bench(o, gpu, real);
    if (b != 0 && rc == 0) rc = b;
  }
  write_report(o);
  return rc;
}
