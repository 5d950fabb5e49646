// GPU JPEG decode check and bench (bench/gpu_check.sh runs it on GPU hosts; CMake target
// mmcore_nvjpeg_check, built only with CUDA and nvjpeg.h).
//
// 1. DecodeGpu (nvJPEG's hardware engine, mmcore's CPU decoder for the rest; then again without the
//    engine: nvJPEG's default backend) on every file of --images:
//    per image its status next to the CPU decoder's, and for images both decode, the dimensions
//    (must be equal), max abs difference and PSNR of nvJPEG's pixels against mmcore's CPU decode
//    (libjpeg-turbo; nvJPEG's IDCT and upsampling differ, so not bit-exact).
// 2. Hashes from the GPU-decoded pixels (HashGpu: pHash, dHash; PDQ) against the CPU's exact hashes
//    of the CPU decode: Hamming distances (agreement, like fast mode's).
// 3. Bench: the image set repeated to --bench-count images, decode alone (engine + host threads, and
//    the engine alone), decode + pHash on the GPU, and without the engine (unless
//    --no-default-backend-bench), against decode_into on every CPU thread; median of --repeat.
// Prints a markdown report. Exit status: 0 ok; 1 a mismatch (different dimensions, PSNR under 30
// dB, a crash-free run that lost an image decoded on the CPU without saying why); 2 usage or I/O;
// 3 no CUDA device or no nvJPEG; 4 a CUDA error.
#include <cuda_runtime.h>
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "mmcore/decode.h"
#include "mmcore/decode_gpu.h"
#include "mmcore/hash.h"
#include "mmcore/hash_gpu.h"
#include "mmcore/parallel.h"

namespace {

using mmcore::ErrorText;
using mmcore::GpuImage;
using mmcore::Status;

struct Cpu {
  Status status = Status::kOk;
  std::string message;
  std::vector<std::uint8_t> rgb;
  int w = 0, h = 0;
};

Cpu cpu_decode(const std::uint8_t* data, std::size_t size) {
  Cpu c;
  mmcore::DecodeOptions o;
  o.exif_orientation = false;
  mmcore::ImageInfo info;
  ErrorText e;
  c.status = mmcore::decode_info(data, size, o, &info, &e);
  if (mmcore::status_ok(c.status)) {
    c.rgb.resize(static_cast<std::size_t>(info.out_width) * info.out_height * 3);
    mmcore::ImageView v{c.rgb.data(), info.out_width, info.out_height, 3,
                        static_cast<std::int64_t>(info.out_width) * 3};
    const ErrorText header_error = e;
    const Status header = c.status;
    c.status = mmcore::decode_into(data, size, o, info, v, &e);
    if (header == Status::kOkWarning && c.status == Status::kOk) {  // decode_batch's rule
      c.status = header;
      e = header_error;
    }
    c.w = info.out_width;
    c.h = info.out_height;
  }
  c.message = e.text;
  return c;
}

bool cuda_ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return true;
  std::fprintf(stderr, "CUDA error in %s: %s\n", what, cudaGetErrorString(e));
  return false;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

/// PSNR of g against ref (99 when equal); the largest absolute difference in *maxd.
double psnr_of(const std::uint8_t* g, const std::vector<std::uint8_t>& ref, int* maxd) {
  double se = 0;
  *maxd = 0;
  for (std::size_t k = 0; k < ref.size(); ++k) {
    const int d = std::abs(static_cast<int>(g[k]) - static_cast<int>(ref[k]));
    *maxd = std::max(*maxd, d);
    se += static_cast<double>(d) * d;
  }
  const double mse = se / std::max<std::size_t>(ref.size(), 1);
  return mse == 0 ? 99.0 : 10 * std::log10(255.0 * 255.0 / mse);
}

/// One decode of the whole set: the plan, a device buffer poisoned before the decode, the
/// statuses, messages and counts, and the pixels copied back.
struct SetDecode {
  std::vector<GpuImage> desc;
  std::vector<Status> st;
  std::vector<ErrorText> msg;
  std::int64_t bytes = 0;
  std::uint8_t* dev = nullptr;
  std::vector<std::uint8_t> host;
  mmcore::DecodeGpuStats stats;
  SetDecode() = default;
  SetDecode(const SetDecode&) = delete;
  SetDecode& operator=(const SetDecode&) = delete;
  ~SetDecode() { cudaFree(dev); }
};

/// Plans and decodes the set with `dec` into *out; 0, or the exit status (the reason printed).
int decode_set(mmcore::DecodeGpu& dec, const std::vector<const std::uint8_t*>& ptrs,
               const std::vector<std::size_t>& sizes, const char* what, SetDecode* out) {
  const auto n = static_cast<std::int32_t>(ptrs.size());
  out->desc.assign(n, GpuImage{});
  out->st.assign(n, Status::kOk);
  out->msg.assign(n, ErrorText{});
  mmcore::DecodeGpu::plan(ptrs.data(), sizes.data(), n, mmcore::kDefaultMaxPixels, out->desc.data(),
                          out->st.data(), out->msg.data(), &out->bytes);
  const auto bytes = static_cast<std::size_t>(out->bytes);
  if (!cuda_ok(cudaMalloc(&out->dev, std::max<std::size_t>(bytes, 1)), "cudaMalloc") ||
      !cuda_ok(cudaMemset(out->dev, 0x5a, bytes), "cudaMemset"))
    return 4;
  ErrorText err;
  if (dec.decode(ptrs.data(), sizes.data(), n, out->desc.data(), out->st.data(), out->msg.data(), out->dev,
                 out->bytes, &err, &out->stats) != Status::kOk) {
    std::printf("%s: decode failed: %s\n", what, err.text);
    return 4;
  }
  out->host.resize(bytes);
  return cuda_ok(cudaMemcpy(out->host.data(), out->dev, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy") ? 0 : 4;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> dirs;
  int bench_count = 2000, repeat = 5;
  bool plan_only = false, sw_bench = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--images" && i + 1 < argc) {
      dirs.emplace_back(argv[++i]);
    } else if (a == "--bench-count" && i + 1 < argc) {
      bench_count = std::atoi(argv[++i]);
    } else if (a == "--plan-only") {
      plan_only = true;
    } else if (a == "--no-default-backend-bench") {
      sw_bench = false;
    } else if (a == "--repeat" && i + 1 < argc) {
      repeat = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr,
                   "usage: %s --images DIR [--images DIR ...] [--bench-count N] [--repeat R] "
                   "[--no-default-backend-bench] [--plan-only]\n",
                   argv[0]);
      return 2;
    }
  }
  std::vector<std::string> names;  // dir/file
  for (const std::string& dir : dirs) {
    std::vector<std::string> here;
    if (DIR* d = opendir(dir.c_str())) {
      while (dirent* e = readdir(d)) {
        struct stat sb;
        const std::string p = dir + "/" + e->d_name;
        if (e->d_name[0] != '.' && stat(p.c_str(), &sb) == 0 && S_ISREG(sb.st_mode)) here.push_back(p);
      }
      closedir(d);
    }
    std::sort(here.begin(), here.end());
    names.insert(names.end(), here.begin(), here.end());
  }
  if (names.empty()) {
    std::fprintf(stderr, "no files in the --images folders\n");
    return 2;
  }
  std::vector<std::vector<std::uint8_t>> files;
  for (const std::string& n : names) {
    std::ifstream f(n, std::ios::binary);
    files.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  const auto n = static_cast<std::int32_t>(files.size());

  if (plan_only) {  // CPU only: what DecodeGpu::plan makes of the files (runs without a GPU)
    std::vector<const std::uint8_t*> p;
    std::vector<std::size_t> z;
    for (const auto& f : files) {
      p.push_back(f.data());
      z.push_back(f.size());
    }
    std::vector<GpuImage> d(n);
    std::vector<Status> s(n);
    std::vector<ErrorText> m(n);
    std::int64_t total = 0;
    mmcore::DecodeGpu::plan(p.data(), z.data(), n, mmcore::kDefaultMaxPixels, d.data(), s.data(), m.data(),
                            &total);
    int bad = 0, planned = 0;
    std::int64_t end = 0;
    for (std::int32_t i = 0; i < n; ++i) {
      const Cpu c = cpu_decode(files[i].data(), files[i].size());
      const bool jpeg = mmcore::detect_format(p[i], z[i]) == mmcore::ImageFormat::kJpeg;
      if (mmcore::status_ok(s[i])) {
        ++planned;
        // The plan's geometry is the CPU decode's; records are 256-byte aligned and disjoint.
        if (d[i].width != c.w || d[i].height != c.h || d[i].channels != 3 || d[i].offset % 256 != 0 ||
            d[i].offset < end)
          ++bad;
        end = d[i].offset + d[i].stride * d[i].height;
      } else if (m[i].empty() || (jpeg && s[i] != c.status && mmcore::status_ok(c.status))) {
        ++bad;
      }
    }
    if (end > total) ++bad;
    std::printf("plan: %d files, %d planned, %lld device bytes, %d problems\n", n, planned,
                static_cast<long long>(total), bad);
    return bad == 0 ? 0 : 1;
  }

  mmcore::DecodeGpu dec;
  ErrorText err;
  if (dec.init(0, &err) != Status::kOk) {
    std::printf("nvJPEG decode unavailable: %s\n", err.text);
    return 3;
  }
  mmcore::HashGpu hash;
  if (hash.init(0, &err) != Status::kOk) {
    std::printf("HashGpu unavailable: %s\n", err.text);
    return 3;
  }

  // 1. Decode the set once, compare with the CPU.
  std::vector<const std::uint8_t*> ptrs;
  std::vector<std::size_t> sizes;
  for (const auto& f : files) {
    ptrs.push_back(f.data());
    sizes.push_back(f.size());
  }
  SetDecode set1;  // its device pixels are hashed in step 2
  if (const int r = decode_set(dec, ptrs, sizes, "the engine and the host threads", &set1); r != 0) return r;
  const std::vector<GpuImage>& desc = set1.desc;
  const std::vector<Status>& st = set1.st;
  const std::vector<ErrorText>& msg = set1.msg;
  const std::uint8_t* dev = set1.dev;
  const std::int64_t bytes = set1.bytes;
  const mmcore::DecodeGpuStats& stats1 = set1.stats;

  int bad = 0, both = 0, gpu_only_fail = 0, gpu_only_ok = 0;
  double worst_psnr = 1e9;
  std::printf(
      "# nvJPEG decode check\n\n%d files; hardware engine %s; hardware %d, CPU decoder %d, default backend "
      "%d, refused %d\n\n",
      n, stats1.hardware_available ? "present" : "absent", stats1.hardware, stats1.cpu, stats1.fallback,
      stats1.failed);
  std::printf(
      "| file | CPU status | GPU status | size | max abs diff | PSNR dB | GPU message "
      "|\n|---|---|---|---|---:|---:|---|\n");
  std::vector<Cpu> cpu(n);
  mmcore::parallel_for(n, 0, [&](std::int64_t i) { cpu[i] = cpu_decode(files[i].data(), files[i].size()); });
  for (std::int32_t i = 0; i < n; ++i) {
    const bool cok = mmcore::status_ok(cpu[i].status), gok = mmcore::status_ok(st[i]);
    int maxd = -1;
    double psnr = -1;
    if (cok && gok) {
      ++both;
      if (desc[i].width != cpu[i].w || desc[i].height != cpu[i].h) {
        ++bad;
      } else {
        psnr = psnr_of(set1.host.data() + desc[i].offset, cpu[i].rgb, &maxd);
        worst_psnr = std::min(worst_psnr, psnr);
        if (psnr < 30) ++bad;
      }
    } else if (cok && !gok && mmcore::detect_format(ptrs[i], sizes[i]) == mmcore::ImageFormat::kJpeg) {
      ++gpu_only_fail;
      if (msg[i].empty()) ++bad;  // a JPEG the CPU decodes lost on the GPU without a reason
    } else if (!cok && gok) {
      ++gpu_only_ok;  // damaged data the header screen let through and nvJPEG called good
    }
    std::printf("| %s | %d | %d | %dx%d | %d | %.1f | %s |\n", names[i].c_str(),
                static_cast<int>(cpu[i].status), static_cast<int>(st[i]), desc[i].width, desc[i].height, maxd,
                psnr, msg[i].text);
  }
  std::printf(
      "\n%d decoded by both; worst PSNR %.1f dB; %d JPEGs the CPU decodes but nvJPEG refused; %d files the "
      "CPU "
      "calls damaged that nvJPEG decoded with status OK\n\n",
      both, both ? worst_psnr : 0.0, gpu_only_fail, gpu_only_ok);

  // 1b. The same set without the hardware engine (nvJPEG's default backend, batched; what GPUs
  //     without the engine run), against the same CPU decodes.
  mmcore::DecodeGpu dec_sw;
  setenv("MMCORE_NVJPEG_NO_HARDWARE", "1", 1);
  const Status sw_init = dec_sw.init(0, &err);
  unsetenv("MMCORE_NVJPEG_NO_HARDWARE");
  if (sw_init != Status::kOk) {
    std::printf("nvJPEG default backend unavailable: %s\n", err.text);
    return 3;
  }
  {
    SetDecode set2;
    if (const int r = decode_set(dec_sw, ptrs, sizes, "without the hardware engine", &set2); r != 0) return r;
    const std::vector<Status>& st2 = set2.st;
    const std::vector<ErrorText>& msg2 = set2.msg;
    const mmcore::DecodeGpuStats& s2 = set2.stats;
    int both2 = 0, lost2 = 0, let2 = 0, bad2 = 0;
    double worst2 = 1e9;
    for (std::int32_t i = 0; i < n; ++i) {
      const bool cok = mmcore::status_ok(cpu[i].status), gok = mmcore::status_ok(st2[i]);
      if (cok && gok) {
        ++both2;
        int maxd = 0;
        const double psnr = psnr_of(set2.host.data() + set2.desc[i].offset, cpu[i].rgb, &maxd);
        worst2 = std::min(worst2, psnr);
        if (psnr < 30 || set2.desc[i].width != cpu[i].w || set2.desc[i].height != cpu[i].h) ++bad2;
      } else if (cok && !gok && mmcore::detect_format(ptrs[i], sizes[i]) == mmcore::ImageFormat::kJpeg) {
        ++lost2;
        if (msg2[i].empty()) ++bad2;
      } else if (!cok && gok) {
        ++let2;
      }
    }
    bad += bad2;
    std::printf(
        "without the hardware engine (MMCORE_NVJPEG_NO_HARDWARE=1): default backend %d, refused %d; %d "
        "decoded by both, worst PSNR %.1f dB; %d JPEGs the CPU decodes but nvJPEG refused; %d damaged "
        "files nvJPEG called good; %d problems\n\n",
        s2.fallback, s2.failed, both2, both2 ? worst2 : 0.0, lost2, let2, bad2);
  }

  // 1c. Exact mode (cpu share 1: every image on the host threads' CPU decoder, copied in): pixels,
  //     statuses and messages must equal the CPU decode's.
  {
    SetDecode set3;
    dec.set_cpu_share(1);
    const int r3 = decode_set(dec, ptrs, sizes, "exact mode", &set3);
    dec.set_cpu_share(-1);
    if (r3 != 0) return r3;
    const std::vector<Status>& st3 = set3.st;
    const std::vector<ErrorText>& msg3 = set3.msg;
    const mmcore::DecodeGpuStats& s3 = set3.stats;
    int exact_bad = 0, exact_ok = 0;
    for (std::int32_t i = 0; i < n; ++i) {
      if (mmcore::detect_format(ptrs[i], sizes[i]) != mmcore::ImageFormat::kJpeg) continue;
      if (st3[i] != cpu[i].status || cpu[i].message != msg3[i].text) {
        ++exact_bad;
        std::printf("exact mode: %s: status %d \"%s\", CPU %d \"%s\"\n", names[i].c_str(),
                    static_cast<int>(st3[i]), msg3[i].text, static_cast<int>(cpu[i].status),
                    cpu[i].message.c_str());
        continue;
      }
      if (!mmcore::status_ok(st3[i])) continue;
      ++exact_ok;
      if (std::memcmp(set3.host.data() + set3.desc[i].offset, cpu[i].rgb.data(), cpu[i].rgb.size()) != 0) {
        ++exact_bad;
        std::printf("exact mode: %s: pixels differ from the CPU decode\n", names[i].c_str());
      }
    }
    bad += exact_bad;
    std::printf(
        "exact mode (CPU share 1): %d JPEGs decoded, pixels equal to the CPU decode's; CPU decoder %d, "
        "hardware %d; %d problems (statuses, messages or pixels unlike the CPU decode's)\n\n",
        exact_ok, s3.cpu, s3.hardware, exact_bad);
  }

  // 2. Hashes from the GPU decode vs the CPU's exact hashes of the CPU decode.
  std::vector<GpuImage> ok_desc;
  std::vector<std::int32_t> ok_idx;
  for (std::int32_t i = 0; i < n; ++i) {
    if (mmcore::status_ok(st[i]) && mmcore::status_ok(cpu[i].status)) {
      ok_desc.push_back(desc[i]);
      ok_idx.push_back(i);
    }
  }
  const auto m = static_cast<std::int32_t>(ok_desc.size());
  if (m > 0) {
    std::uint64_t* out = nullptr;
    std::uint8_t* pdq = nullptr;
    std::int32_t* q = nullptr;
    if (!cuda_ok(cudaMalloc(&out, sizeof(std::uint64_t) * mmcore::kGpuHashColumns * m), "cudaMalloc") ||
        !cuda_ok(cudaMalloc(&pdq, 32 * static_cast<std::size_t>(m)), "cudaMalloc") ||
        !cuda_ok(cudaMalloc(&q, sizeof(std::int32_t) * m), "cudaMalloc"))
      return 4;
    std::vector<Status> hs(m);
    if (hash.hash_batch(dev, bytes, ok_desc.data(), m, mmcore::kGpuHashKinds, out, hs.data(), &err) !=
            Status::kOk ||
        hash.pdq_batch(dev, bytes, ok_desc.data(), m, pdq, q, hs.data(), &err) != Status::kOk) {
      std::printf("GPU hashing failed: %s\n", err.text);
      return 4;
    }
    std::vector<std::uint64_t> bits(static_cast<std::size_t>(mmcore::kGpuHashColumns) * m);
    std::vector<std::uint8_t> pbytes(32 * static_cast<std::size_t>(m));
    if (!cuda_ok(cudaMemcpy(bits.data(), out, bits.size() * 8, cudaMemcpyDeviceToHost), "cudaMemcpy") ||
        !cuda_ok(cudaMemcpy(pbytes.data(), pdq, pbytes.size(), cudaMemcpyDeviceToHost), "cudaMemcpy"))
      return 4;
    std::vector<int> dp, dd, dq;
    for (std::int32_t j = 0; j < m; ++j) {
      const Cpu& c = cpu[ok_idx[j]];
      mmcore::HashRequest r;
      r.kinds = (1u << 1) | (1u << 3) | (1u << 7);  // dHash, pHash, PDQ
      mmcore::HashRecord rec;
      const mmcore::ConstImageView v(c.rgb.data(), c.w, c.h, 3, static_cast<std::int64_t>(c.w) * 3);
      if (!mmcore::status_ok(mmcore::hash_image(v, r, &rec, &err))) continue;
      dp.push_back(__builtin_popcountll(rec.bits[3] ^ bits[3 * static_cast<std::size_t>(m) + j]));
      dd.push_back(__builtin_popcountll(rec.bits[1] ^ bits[1 * static_cast<std::size_t>(m) + j]));
      int pq = 0;
      for (int k = 0; k < 32; ++k) pq += __builtin_popcount(rec.pdq[0].bytes[k] ^ pbytes[32 * j + k]);
      dq.push_back(pq);
    }
    const auto share = [](const std::vector<int>& v, int t) {
      return v.empty() ? 0.0
                       : 100.0 * std::count_if(v.begin(), v.end(), [t](int d) { return d <= t; }) / v.size();
    };
    std::printf("hashes of nvJPEG's pixels vs the exact hashes of libjpeg-turbo's (%zu images):\n",
                dp.size());
    std::printf("- pHash: %.1f %% equal, %.1f %% within 2 bits, %.1f %% within 4\n", share(dp, 0),
                share(dp, 2), share(dp, 4));
    std::printf("- dHash: %.1f %% equal, %.1f %% within 2 bits, %.1f %% within 4\n", share(dd, 0),
                share(dd, 2), share(dd, 4));
    std::printf("- PDQ: %.1f %% within 8 bits, %.1f %% within 16, %.1f %% within 31\n\n", share(dq, 8),
                share(dq, 16), share(dq, 31));
    cudaFree(out);
    cudaFree(pdq);
    cudaFree(q);
  }

  // 3. Bench: the decodable JPEGs repeated to bench_count.
  if (bench_count > 0 && m > 0) {
    std::vector<const std::uint8_t*> bp;
    std::vector<std::size_t> bs;
    for (int k = 0; k < bench_count; ++k) {
      const std::int32_t i = ok_idx[static_cast<std::size_t>(k) % ok_idx.size()];
      bp.push_back(ptrs[i]);
      bs.push_back(sizes[i]);
    }
    const auto bn = static_cast<std::int32_t>(bp.size());
    std::vector<GpuImage> bd(bn);
    std::vector<Status> bst(bn);
    std::vector<ErrorText> bmsg(bn);
    std::int64_t bb = 0;
    mmcore::DecodeGpu::plan(bp.data(), bs.data(), bn, mmcore::kDefaultMaxPixels, bd.data(), bst.data(),
                            bmsg.data(), &bb);
    std::uint8_t* bdev = nullptr;
    std::uint64_t* out = nullptr;
    if (!cuda_ok(cudaMalloc(&bdev, static_cast<std::size_t>(bb)), "cudaMalloc") ||
        !cuda_ok(cudaMalloc(&out, sizeof(std::uint64_t) * mmcore::kGpuHashColumns * bn), "cudaMalloc"))
      return 4;
    std::vector<double> t_dec, t_all, t_cpu, t_sw, t_hw, t_exact;
    mmcore::DecodeGpuStats stats, sw_stats, hw_stats, exact_stats;
    for (int r = 0; r < repeat + 1; ++r) {
      std::vector<Status> s2 = bst;
      double t0 = now_s();
      if (dec.decode(bp.data(), bs.data(), bn, bd.data(), s2.data(), bmsg.data(), bdev, bb, &err, &stats) !=
          Status::kOk)
        return 4;
      const double t1 = now_s();
      std::vector<Status> hs(bn);
      if (hash.hash_batch(bdev, bb, bd.data(), bn, 1u << 3, out, hs.data(), &err) != Status::kOk) return 4;
      const double t2 = now_s();
      std::vector<Cpu> cpu_out(bn);
      mmcore::parallel_for(bn, 0, [&](std::int64_t i) { cpu_out[i] = cpu_decode(bp[i], bs[i]); });
      const double t3 = now_s();
      // The engine alone (cpu share 0: the host threads take only what it refuses).
      std::vector<Status> s4 = bst;
      dec.set_cpu_share(0);
      const Status hw_only =
          dec.decode(bp.data(), bs.data(), bn, bd.data(), s4.data(), bmsg.data(), bdev, bb, &err, &hw_stats);
      dec.set_cpu_share(-1);
      if (hw_only != Status::kOk) return 4;
      const double t4 = now_s();
      // Exact pixels: every image on the host threads' CPU decoder, copied in as each is done.
      std::vector<Status> s5 = bst;
      dec.set_cpu_share(1);
      const Status exact = dec.decode(bp.data(), bs.data(), bn, bd.data(), s5.data(), bmsg.data(), bdev, bb,
                                      &err, &exact_stats);
      dec.set_cpu_share(-1);
      if (exact != Status::kOk) return 4;
      const double t4b = now_s();
      if (sw_bench) {
        std::vector<Status> s3 = bst;
        if (dec_sw.decode(bp.data(), bs.data(), bn, bd.data(), s3.data(), bmsg.data(), bdev, bb, &err,
                          &sw_stats) != Status::kOk)
          return 4;
      }
      const double t5 = now_s();
      if (r == 0) continue;  // warm-up
      t_dec.push_back(t1 - t0);
      t_all.push_back(t2 - t0);
      t_cpu.push_back(t3 - t2);
      t_hw.push_back(t4 - t3);
      t_exact.push_back(t4b - t4);
      t_sw.push_back(t5 - t4b);
    }
    const auto phases = [](const char* what, const mmcore::DecodeGpuStats& s) {
      std::printf(
          "- %s: CPU share %.2f; hardware %d, CPU decoder %d, default backend %d; last run's phases: screen "
          "%.1f ms, hardware batch %.1f ms, CPU decodes + uploads %.1f ms (at the same time as the hardware "
          "batch), default backend %.1f ms\n",
          what, s.cpu_share, s.hardware, s.cpu, s.fallback, 1e3 * s.screen_seconds, 1e3 * s.hardware_seconds,
          1e3 * s.cpu_seconds, 1e3 * s.fallback_seconds);
    };
    std::printf("bench, %d JPEGs (the set repeated), median of %d:\n\n", bn, repeat);
    phases("GPU decode (default: engine + host threads)", stats);
    phases("engine only (cpu share 0)", hw_stats);
    phases("exact (cpu share 1)", exact_stats);
    if (sw_bench) phases("without the engine", sw_stats);
    std::printf("\n| what | images/s |\n|---|---:|\n");
    std::printf("| GPU decode (nvJPEG engine + %d host threads, CPU share %.2f) | %.0f |\n",
                mmcore::hardware_threads(), stats.cpu_share, bn / median(t_dec));
    std::printf("| GPU decode + pHash | %.0f |\n", bn / median(t_all));
    std::printf("| GPU decode, engine only (CPU share 0) | %.0f |\n", bn / median(t_hw));
    std::printf("| exact: CPU decoder into device memory (CPU share 1) | %.0f |\n", bn / median(t_exact));
    std::printf("| CPU decode, %d threads | %.0f |\n", mmcore::hardware_threads(), bn / median(t_cpu));
    if (sw_bench)
      std::printf("| GPU decode without the hardware engine (default backend, batched) | %.0f |\n",
                  bn / median(t_sw));
    cudaFree(bdev);
    cudaFree(out);
  }
  std::printf("\nresult: %s\n", bad == 0 ? "ok" : "MISMATCH");
  return bad == 0 ? 0 : 1;
}
