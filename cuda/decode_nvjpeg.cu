// DecodeGpu: nvJPEG batched decode into a HashGpu-shaped device buffer (decode_gpu.h).
//
// nvJPEG comes in through dlopen, so the module has no link-time dependency on it: only its header
// is needed to build (the nvidia-nvjpeg wheel's, which DALI depends on, or a CUDA toolkit's).
// Host code only; the decoding kernels are nvJPEG's.
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nvjpeg.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include "batch_split_internal.h"
#include "cuda_util.cuh"
#include "mmcore/decode.h"
#include "mmcore/decode_gpu.h"
#include "mmcore/parallel.h"

namespace mmcore {
namespace {

const char* nvjpeg_reason(nvjpegStatus_t s) {
  switch (s) {
    case NVJPEG_STATUS_SUCCESS: return "success";
    case NVJPEG_STATUS_NOT_INITIALIZED: return "not initialised";
    case NVJPEG_STATUS_INVALID_PARAMETER: return "invalid parameter";
    case NVJPEG_STATUS_BAD_JPEG: return "bad JPEG";
    case NVJPEG_STATUS_JPEG_NOT_SUPPORTED: return "JPEG not supported";
    case NVJPEG_STATUS_ALLOCATOR_FAILURE: return "allocator failure";
    case NVJPEG_STATUS_EXECUTION_FAILED: return "execution failed";
    case NVJPEG_STATUS_ARCH_MISMATCH: return "architecture mismatch";
    case NVJPEG_STATUS_INTERNAL_ERROR: return "internal error";
    case NVJPEG_STATUS_IMPLEMENTATION_NOT_SUPPORTED: return "implementation not supported";
    case NVJPEG_STATUS_INCOMPLETE_BITSTREAM: return "incomplete bitstream";
    default: return "unknown nvJPEG status";
  }
}

/// A per-image nvJPEG failure as a record status.
Status record_status(nvjpegStatus_t s) {
  switch (s) {
    case NVJPEG_STATUS_BAD_JPEG:
    case NVJPEG_STATUS_INCOMPLETE_BITSTREAM: return Status::kCorrupt;
    case NVJPEG_STATUS_JPEG_NOT_SUPPORTED:
    case NVJPEG_STATUS_IMPLEMENTATION_NOT_SUPPORTED: return Status::kUnsupported;
    case NVJPEG_STATUS_ALLOCATOR_FAILURE: return Status::kNoMemory;
    default: return Status::kDevice;
  }
}

// The nvJPEG entry points decode() uses, resolved from the dlopen'ed library.
struct Api {
  void* lib = nullptr;
  decltype(&nvjpegCreateEx) create_ex = nullptr;
  decltype(&nvjpegDestroy) destroy = nullptr;
  decltype(&nvjpegJpegStateCreate) state_create = nullptr;
  decltype(&nvjpegJpegStateDestroy) state_destroy = nullptr;
  decltype(&nvjpegDecode) decode = nullptr;
  decltype(&nvjpegDecodeBatchedInitialize) batched_init = nullptr;
  decltype(&nvjpegDecodeBatched) batched = nullptr;
  decltype(&nvjpegJpegStreamCreate) stream_create = nullptr;
  decltype(&nvjpegJpegStreamDestroy) stream_destroy = nullptr;
  decltype(&nvjpegJpegStreamParse) stream_parse = nullptr;
  decltype(&nvjpegDecodeBatchedSupported) batched_supported = nullptr;

  bool load(ErrorText* error) {
    const char* env = std::getenv("MMCORE_NVJPEG");
    const char* name = env != nullptr && env[0] != '\0' ? env : "libnvjpeg.so.13";
    // Never closed (RTLD_NODELETE, no dlclose): nvJPEG's hardware backend may keep threads and exit
    // handlers that must not outlive its code.
    lib = dlopen(name, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (lib == nullptr) {
      const char* why = dlerror();
      error->set("nvJPEG not found (%s): %s (install nvidia-nvjpeg or set MMCORE_NVJPEG to the library)",
                 name, why != nullptr ? why : "dlopen failed");
      return false;
    }
    bool ok = true;
    const auto sym = [&](auto* fn, const char* s) {
      *fn = reinterpret_cast<std::remove_pointer_t<decltype(fn)>>(dlsym(lib, s));
      if (*fn == nullptr && ok) {
        error->set("nvJPEG library %s has no %s", name, s);
        ok = false;
      }
    };
    sym(&create_ex, "nvjpegCreateEx");
    sym(&destroy, "nvjpegDestroy");
    sym(&state_create, "nvjpegJpegStateCreate");
    sym(&state_destroy, "nvjpegJpegStateDestroy");
    sym(&decode, "nvjpegDecode");
    sym(&batched_init, "nvjpegDecodeBatchedInitialize");
    sym(&batched, "nvjpegDecodeBatched");
    sym(&stream_create, "nvjpegJpegStreamCreate");
    sym(&stream_destroy, "nvjpegJpegStreamDestroy");
    sym(&stream_parse, "nvjpegJpegStreamParse");
    sym(&batched_supported, "nvjpegDecodeBatchedSupported");
    return ok;
  }
};

}  // namespace

struct DecodeGpu::Impl {
  Api api;
  std::int32_t device = 0;
  cudaStream_t stream = nullptr;
  nvjpegHandle_t handle = nullptr;  // default backend: any bitstream nvJPEG decodes
  nvjpegJpegState_t state = nullptr;
  nvjpegHandle_t hw = nullptr;  // hardware engine (absent on GPUs without one)
  nvjpegJpegState_t hw_state = nullptr;
  // The hardware handle's parsed streams, one per screening thread (nvJPEG's streams are
  // per-thread objects; the handle is shared), grown on demand.
  std::vector<nvjpegJpegStream_t> parsed;
  // The CPU decodes' uploads: their own stream (beside the hardware batch), page-locked slots
  // (two per host thread, reused across calls) and an event per slot.
  cudaStream_t copy = nullptr;
  std::uint8_t* pinned = nullptr;
  std::size_t pinned_bytes = 0;
  std::vector<cudaEvent_t> slot_events;
  double cpu_share = -1;     // set_cpu_share's; < 0: auto
  std::int32_t threads = 0;  // set_host_threads's; <= 0: hardware_threads()

  ~Impl() {
    if (stream == nullptr && api.lib == nullptr) return;
    const cuda_util::DeviceGuard guard(device);
    if (api.lib != nullptr) {
      for (nvjpegJpegStream_t p : parsed) api.stream_destroy(p);
      if (hw_state != nullptr) api.state_destroy(hw_state);
      if (hw != nullptr) api.destroy(hw);
      if (state != nullptr) api.state_destroy(state);
      if (handle != nullptr) api.destroy(handle);
    }
    if (copy != nullptr) cudaStreamSynchronize(copy);
    for (cudaEvent_t e : slot_events) cudaEventDestroy(e);
    if (pinned != nullptr) cudaFreeHost(pinned);
    if (copy != nullptr) cudaStreamDestroy(copy);
    if (stream != nullptr) cudaStreamDestroy(stream);
  }
};

DecodeGpu::DecodeGpu() : impl_(nullptr) {}

DecodeGpu::~DecodeGpu() {
  delete impl_;
}

void DecodeGpu::set_cpu_share(double share) {
  if (impl_ != nullptr) impl_->cpu_share = share;
}

void DecodeGpu::set_host_threads(std::int32_t threads) {
  if (impl_ != nullptr) impl_->threads = threads;
}

void* DecodeGpu::stream() const {
  return impl_ != nullptr ? impl_->stream : nullptr;
}

Status DecodeGpu::init(std::int32_t device, ErrorText* error) {
  delete impl_;
  impl_ = nullptr;
  Impl* im = new Impl;
  const auto fail = [&](Status s) {
    delete im;
    return s;
  };
  // Non-blocking: the decode does not wait for the legacy default stream (decode() says what the
  // caller must have finished).
  const Status so =
      cuda_util::open_stream("DecodeGpu", device, device, &im->stream, error, cudaStreamNonBlocking);
  if (so != Status::kOk) return fail(so);
  im->device = device;
  if (const cudaError_t ce = cudaStreamCreateWithFlags(&im->copy, cudaStreamNonBlocking); ce != cudaSuccess) {
    im->copy = nullptr;
    error->set("CUDA: %s", cudaGetErrorString(ce));
    return fail(Status::kDevice);
  }
  if (!im->api.load(error)) return fail(Status::kDevice);
  nvjpegStatus_t s = im->api.create_ex(NVJPEG_BACKEND_DEFAULT, nullptr, nullptr, 0, &im->handle);
  if (s == NVJPEG_STATUS_SUCCESS) s = im->api.state_create(im->handle, &im->state);
  if (s != NVJPEG_STATUS_SUCCESS) {
    error->set("nvJPEG initialisation failed: %s", nvjpeg_reason(s));
    return fail(s == NVJPEG_STATUS_ALLOCATOR_FAILURE ? Status::kNoMemory : Status::kDevice);
  }
  // The hardware engine is optional: GPUs without one refuse this backend (and
  // MMCORE_NVJPEG_NO_HARDWARE=1 leaves it unused, to measure or work around it).
  const char* no_hw = std::getenv("MMCORE_NVJPEG_NO_HARDWARE");
  const bool want_hw = no_hw == nullptr || no_hw[0] == '\0' || std::strcmp(no_hw, "0") == 0;
  nvjpegJpegStream_t first = nullptr;
  if (want_hw &&
      im->api.create_ex(NVJPEG_BACKEND_HARDWARE, nullptr, nullptr, 0, &im->hw) == NVJPEG_STATUS_SUCCESS) {
    if (im->api.state_create(im->hw, &im->hw_state) != NVJPEG_STATUS_SUCCESS ||
        im->api.stream_create(im->hw, &first) != NVJPEG_STATUS_SUCCESS) {
      if (im->hw_state != nullptr) im->api.state_destroy(im->hw_state);
      im->hw_state = nullptr;
      im->api.destroy(im->hw);
      im->hw = nullptr;
    } else {
      im->parsed.push_back(first);
    }
  } else {
    im->hw = nullptr;
  }
  impl_ = im;
  return Status::kOk;
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Joins a thread when the scope ends, also when it ends by an exception.
struct Joiner {
  std::thread& thread;
  ~Joiner() {
    if (thread.joinable()) thread.join();
  }
};

// The outcome of one batched nvJPEG call.
enum class Batch { kDone, kRefused, kCuda };

}  // namespace

Status DecodeGpu::decode(const std::uint8_t* const* data, const std::size_t* sizes, std::int32_t n,
                         const GpuImage* images, Status* statuses, ErrorText* messages, std::uint8_t* pixels,
                         std::int64_t pixel_bytes, ErrorText* error, DecodeGpuStats* stats) {
  DecodeGpuStats local;
  DecodeGpuStats& st = stats != nullptr ? *stats : local;
  st = DecodeGpuStats{};
  if (impl_ == nullptr) {
    error->set("DecodeGpu::decode before a successful init");
    return Status::kDevice;
  }
  Impl& im = *impl_;
  st.hardware_available = im.hw != nullptr;
  if (const cudaError_t ce = cudaSetDevice(im.device); ce != cudaSuccess) {
    error->set("CUDA: %s", cudaGetErrorString(ce));
    return Status::kDevice;
  }
  const auto dest = [&](std::int32_t i) {
    nvjpegImage_t d;
    std::memset(&d, 0, sizeof d);
    d.channel[0] = pixels + images[i].offset;
    d.pitch[0] = static_cast<std::size_t>(images[i].stride);
    return d;
  };
  const int host = im.threads > 0 ? im.threads : hardware_threads();
  const bool all_cpu = im.cpu_share >= 1;  // exact pixels: every image on the CPU decoder
  DecodeOptions opts;                      // stored orientation; plan() applied the pixel limit
  opts.exif_orientation = false;
  opts.max_pixels = 0;

  // 1. Descriptor checks on every host thread: nvJPEG writes the JPEG's own size at the
  //    descriptor's pitch, so the descriptor (the caller's) must be that size and fit the buffer.
  auto t0 = std::chrono::steady_clock::now();
  std::vector<ImageInfo> infos(static_cast<std::size_t>(std::max(n, 0)));
  std::vector<char> accepted(infos.size(), 0);
  parallel_for(n, host, [&](std::int64_t k) {
    const auto i = static_cast<std::int32_t>(k);
    if (!status_ok(statuses[i])) return;
    const GpuImage& g = images[i];
    ErrorText why;
    const bool same_size = status_ok(decode_info(data[i], sizes[i], opts, &infos[k], &why)) &&
                           infos[k].width == g.width && infos[k].height == g.height;
    if (g.channels != 3 || !gpu_image_fits(g, pixel_bytes) || !same_size) {
      statuses[i] = Status::kUnsupported;
      messages[i].set(
          "descriptor %dx%d (stride %lld) at offset %lld does not match the JPEG or the %lld-byte buffer",
          g.width, g.height, static_cast<long long>(g.stride), static_cast<long long>(g.offset),
          static_cast<long long>(pixel_bytes));
      return;
    }
    accepted[k] = 1;
  });
  std::vector<std::int32_t> todo;
  for (std::int32_t i = 0; i < n; ++i)
    if (accepted[static_cast<std::size_t>(i)] != 0) todo.push_back(i);

  // 2. The bitstreams the hardware engine takes (baseline, single scan, most subsamplings):
  //    nvJPEG's own parse says so (nvjpegDecodeBatchedSupported sets 0), one parsed stream per
  //    thread. What it refuses (progressive, damaged headers) goes to the CPU decoder.
  std::vector<char> engine(infos.size(), 0);
  if (im.hw != nullptr && !all_cpu && !todo.empty()) {
    const auto want = static_cast<std::size_t>(
        std::max<std::int64_t>(1, std::min<std::int64_t>(host, (todo.size() + 31) / 32)));
    while (im.parsed.size() < want) {
      nvjpegJpegStream_t p = nullptr;
      if (im.api.stream_create(im.hw, &p) != NVJPEG_STATUS_SUCCESS) break;
      im.parsed.push_back(p);
    }
    const auto workers = static_cast<std::int64_t>(im.parsed.size());  // >= 1: init made one
    parallel_for(workers, static_cast<int>(workers), [&](std::int64_t w) {
      for (std::size_t j = static_cast<std::size_t>(w); j < todo.size();
           j += static_cast<std::size_t>(workers)) {
        const std::int32_t i = todo[j];
        int unsupported = 1;
        if (im.api.stream_parse(im.hw, data[i], sizes[i], 0, 0, im.parsed[w]) == NVJPEG_STATUS_SUCCESS &&
            im.api.batched_supported(im.hw, im.parsed[w], &unsupported) == NVJPEG_STATUS_SUCCESS &&
            unsupported == 0)
          engine[static_cast<std::size_t>(i)] = 1;
      }
    });
  }
  // The engine's candidates, split by pixels in index order: the CPU takes `share` of them
  // (besides the bitstreams the engine refuses) so that both sides finish together.
  std::vector<std::int32_t> hw_batch, rest;
  double cpu_px = 0, hw_px = 0;
  for (std::int32_t i : todo)
    if (engine[static_cast<std::size_t>(i)] == 0) {
      rest.push_back(i);
      cpu_px += static_cast<double>(images[i].width) * images[i].height;
    }
  const double share = all_cpu             ? 1.0
                       : im.hw == nullptr  ? 0.0
                       : im.cpu_share >= 0 ? im.cpu_share
                                           : auto_cpu_share(host);
  st.cpu_share = share;
  for (std::int32_t i : todo) {
    if (engine[static_cast<std::size_t>(i)] == 0) continue;
    const double px = static_cast<double>(images[i].width) * images[i].height;
    if (share > 0 && (cpu_px + px) * (1 - share) <= (hw_px + px) * share) {
      rest.push_back(i);
      cpu_px += px;
    } else {
      hw_batch.push_back(i);
      hw_px += px;
    }
  }
  st.screen_seconds = seconds_since(t0);

  ErrorText cuda_error;  // the first CUDA failure (fatal for the call)
  // One batched call over `count` images of `idx` on (handle, state), waited for.
  const auto run_batch = [&](nvjpegHandle_t handle, nvjpegJpegState_t state, const std::int32_t* idx,
                             std::size_t count, ErrorText* cuda_why) {
    std::vector<const unsigned char*> ptrs(count);
    std::vector<std::size_t> lens(count);
    std::vector<nvjpegImage_t> dests(count);
    for (std::size_t k = 0; k < count; ++k) {
      ptrs[k] = data[idx[k]];
      lens[k] = sizes[idx[k]];
      dests[k] = dest(idx[k]);
    }
    nvjpegStatus_t s = im.api.batched_init(handle, state, static_cast<int>(count), 1, NVJPEG_OUTPUT_RGBI);
    if (s == NVJPEG_STATUS_SUCCESS)
      s = im.api.batched(handle, state, ptrs.data(), lens.data(), dests.data(), im.stream);
    if (const cudaError_t ce = cudaStreamSynchronize(im.stream); ce != cudaSuccess) {
      cuda_why->set("CUDA: %s", cudaGetErrorString(ce));
      return Batch::kCuda;
    }
    return s == NVJPEG_STATUS_SUCCESS ? Batch::kDone : Batch::kRefused;
  };
  // mmcore's CPU decoder (Pillow's pixels) on every host thread, each image copied to its place as
  // soon as it is decoded: a worker decodes into one of its two page-locked slots, queues the copy
  // on the copy stream and records the slot's event, and waits on that event before it reuses the
  // slot. Images larger than a slot (or all, if no page-locked memory was to be had) go through a
  // pageable buffer and a synchronous copy. Returns false on a CUDA failure (cuda_error says it).
  const auto cpu_path = [&](const std::vector<std::int32_t>& list) {
    if (list.empty()) return true;
    // Copies a call that ended early (an exception) may have left in flight read from the slots.
    if (const cudaError_t ce = cudaStreamSynchronize(im.copy); ce != cudaSuccess) {
      cuda_error.set("CUDA: %s", cudaGetErrorString(ce));
      return false;
    }
    const auto n_list = static_cast<std::int64_t>(list.size());
    const int workers = static_cast<int>(std::min<std::int64_t>(host, n_list));
    std::size_t biggest = 0;
    for (std::int32_t i : list)
      biggest = std::max(biggest, static_cast<std::size_t>(images[i].width) * images[i].height * 3);
    constexpr std::size_t kSlotCap = std::size_t{64} << 20, kPinnedCap = std::size_t{2} << 30;
    std::size_t slot = (std::min(biggest, kSlotCap) + 4095) / 4096 * 4096;
    const auto slots = static_cast<std::size_t>(2 * workers);
    if (slot * slots > kPinnedCap) slot = kPinnedCap / slots / 4096 * 4096;
    bool pinned = slot > 0;
    if (pinned && im.pinned_bytes < slot * slots) {
      if (im.pinned != nullptr) cudaFreeHost(im.pinned);
      im.pinned = nullptr;
      im.pinned_bytes = 0;
      void* p = nullptr;
      if (cudaHostAlloc(&p, slot * slots, cudaHostAllocDefault) == cudaSuccess) {
        im.pinned = static_cast<std::uint8_t*>(p);
        im.pinned_bytes = slot * slots;
      } else {
        (void)cudaGetLastError();  // not sticky: pageable copies instead
        pinned = false;
      }
    }
    while (pinned && im.slot_events.size() < slots) {
      cudaEvent_t e = nullptr;
      if (cudaEventCreateWithFlags(&e, cudaEventDisableTiming) != cudaSuccess) {
        (void)cudaGetLastError();
        pinned = false;
        break;
      }
      im.slot_events.push_back(e);
    }
    std::vector<Status> got(list.size(), Status::kOk);
    std::atomic<std::int64_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex error_mutex;
    const auto cuda_fail = [&](cudaError_t ce) {
      const std::lock_guard<std::mutex> lock(error_mutex);
      if (!failed.exchange(true)) cuda_error.set("CUDA: %s", cudaGetErrorString(ce));
    };
    parallel_for(workers, workers, [&](std::int64_t w) {
      if (const cudaError_t ce = cudaSetDevice(im.device); ce != cudaSuccess) return cuda_fail(ce);
      std::vector<std::uint8_t> pageable;
      bool used[2] = {false, false};
      int parity = 0;
      for (std::int64_t k = next++; k < n_list && !failed; k = next++) {
        const std::int32_t i = list[static_cast<std::size_t>(k)];
        const GpuImage& g = images[i];
        const std::size_t row = static_cast<std::size_t>(g.width) * 3;
        const std::size_t bytes = row * static_cast<std::size_t>(g.height);
        std::uint8_t* buf;
        cudaEvent_t event = nullptr;
        if (pinned && bytes <= slot) {
          const std::size_t e = static_cast<std::size_t>(2 * w + parity);
          event = im.slot_events[e];
          if (used[parity]) {
            if (const cudaError_t ce = cudaEventSynchronize(event); ce != cudaSuccess) return cuda_fail(ce);
          }
          used[parity] = true;
          parity ^= 1;
          buf = im.pinned + e * slot;
        } else {
          pageable.resize(bytes);
          buf = pageable.data();
        }
        ImageView v;
        v.data = buf;
        v.width = g.width;
        v.height = g.height;
        v.channels = 3;
        v.stride = static_cast<std::int64_t>(row);
        // As decode_batch does it: decode_into writes over the header's message, and a clean
        // pixel pass leaves the header's status and message (a header warning survives).
        ErrorText why = messages[i];
        const Status s = decode_into(data[i], sizes[i], opts, infos[static_cast<std::size_t>(i)], v, &why);
        got[static_cast<std::size_t>(k)] = s;
        if (s != Status::kOk) messages[i] = why;
        if (!status_ok(s)) continue;
        cudaError_t ce =
            cudaMemcpy2DAsync(pixels + g.offset, static_cast<std::size_t>(g.stride), buf, row, row,
                              static_cast<std::size_t>(g.height), cudaMemcpyHostToDevice, im.copy);
        if (ce == cudaSuccess)
          ce = event != nullptr ? cudaEventRecord(event, im.copy) : cudaStreamSynchronize(im.copy);
        if (ce != cudaSuccess) return cuda_fail(ce);
      }
    });
    // The slots are reused by the next call: its copies must be done.
    if (const cudaError_t ce = cudaStreamSynchronize(im.copy); ce != cudaSuccess && !failed) cuda_fail(ce);
    if (failed) return false;
    for (std::size_t k = 0; k < list.size(); ++k) {
      const std::int32_t i = list[k];
      if (!status_ok(got[k])) {
        statuses[i] = got[k];
        ++st.failed;
        continue;
      }
      if (got[k] == Status::kOkWarning) statuses[i] = Status::kOkWarning;
      ++st.cpu;
    }
    return true;
  };

  bool ok = true;
  if (im.hw != nullptr || all_cpu) {
    // 3. The hardware batch on its own thread while the host threads decode the rest.
    Batch hw_result = Batch::kDone;
    ErrorText hw_cuda;
    {
      const auto hw_work = [&] {
        const auto th = std::chrono::steady_clock::now();
        if (const cudaError_t ce = cudaSetDevice(im.device); ce != cudaSuccess) {
          hw_cuda.set("CUDA: %s", cudaGetErrorString(ce));
          hw_result = Batch::kCuda;
        } else {
          try {
            hw_result = run_batch(im.hw, im.hw_state, hw_batch.data(), hw_batch.size(), &hw_cuda);
          } catch (const std::bad_alloc&) {
            hw_cuda.set("out of host memory for the hardware batch");
            hw_result = Batch::kCuda;
          }
        }
        st.hardware_seconds = seconds_since(th);
      };
      std::thread hw_thread;
      const Joiner joiner{hw_thread};
      if (!hw_batch.empty()) {
        try {
          hw_thread = std::thread(hw_work);
        } catch (const std::system_error&) {
          hw_work();  // no thread to be had: one after the other
        }
      }
      t0 = std::chrono::steady_clock::now();
      ok = cpu_path(rest);
      st.cpu_seconds = seconds_since(t0);
    }  // joined
    if (hw_result == Batch::kCuda) {
      if (ok) cuda_error = hw_cuda;
      ok = false;
    } else if (hw_result == Batch::kDone) {
      st.hardware += static_cast<std::int32_t>(hw_batch.size());
    }
    if (ok && hw_result == Batch::kRefused) {
      // One bad bitstream fails a whole hardware batch: halve and retry until the images that fail
      // alone are found; they go to the CPU decoder (which says what is wrong with them).
      t0 = std::chrono::steady_clock::now();
      std::vector<std::int32_t> alone;
      std::int64_t done = 0;
      const auto retry = [&](const std::int32_t* idx, std::size_t count) {
        switch (run_batch(im.hw, im.hw_state, idx, count, &cuda_error)) {
          case Batch::kDone: return detail::BatchResult::kDone;
          case Batch::kRefused: return detail::BatchResult::kRefused;
          default: return detail::BatchResult::kFatal;
        }
      };
      ok = detail::split_failed_batch(hw_batch.data(), hw_batch.size(), retry, &done, &alone);
      st.hardware += static_cast<std::int32_t>(done);
      st.hardware_seconds += seconds_since(t0);
      t0 = std::chrono::steady_clock::now();
      if (ok) ok = cpu_path(alone);
      st.cpu_seconds += seconds_since(t0);
    }
  } else if (!todo.empty()) {
    // 4. No hardware engine: the default backend, batched; one by one when it refuses the batch.
    t0 = std::chrono::steady_clock::now();
    const Batch b = run_batch(im.handle, im.state, todo.data(), todo.size(), &cuda_error);
    if (b == Batch::kCuda) {
      ok = false;
    } else if (b == Batch::kDone) {
      st.fallback += static_cast<std::int32_t>(todo.size());
    } else {
      for (std::int32_t i : todo) {
        nvjpegImage_t d = dest(i);
        const nvjpegStatus_t s =
            im.api.decode(im.handle, im.state, data[i], sizes[i], NVJPEG_OUTPUT_RGBI, &d, im.stream);
        if (s != NVJPEG_STATUS_SUCCESS) {
          statuses[i] = record_status(s);
          messages[i].set("nvJPEG: %s", nvjpeg_reason(s));
          ++st.failed;
          continue;
        }
        ++st.fallback;
      }
    }
    st.fallback_seconds = seconds_since(t0);
  }
  if (ok) {
    if (const cudaError_t ce = cudaStreamSynchronize(im.stream); ce != cudaSuccess) {
      cuda_error.set("CUDA: %s", cudaGetErrorString(ce));
      ok = false;
    }
  }
  if (!ok) {
    error->set("%s", cuda_error.text);
    for (std::int32_t i : todo) {
      if (status_ok(statuses[i])) {
        statuses[i] = Status::kDevice;
        messages[i].set("%s", cuda_error.text);
      }
    }
    return Status::kDevice;
  }
  return Status::kOk;
}

}  // namespace mmcore
