// DecodeGpu: nvJPEG batched decode into a HashGpu-shaped device buffer (decode_gpu.h).
//
// nvJPEG comes in through dlopen, so the module has no link-time dependency on it: only its header
// is needed to build (the nvidia-nvjpeg wheel's, which DALI depends on, or a CUDA toolkit's).
// Host code only; the decoding kernels are nvJPEG's.
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nvjpeg.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>
#include <vector>

#include "cuda_util.cuh"
#include "mmcore/decode.h"
#include "mmcore/decode_gpu.h"

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
  nvjpegJpegStream_t parsed = nullptr;  // the hardware handle's, for nvjpegDecodeBatchedSupported

  ~Impl() {
    if (stream == nullptr && api.lib == nullptr) return;
    const cuda_util::DeviceGuard guard(device);
    if (api.lib != nullptr) {
      if (parsed != nullptr) api.stream_destroy(parsed);
      if (hw_state != nullptr) api.state_destroy(hw_state);
      if (hw != nullptr) api.destroy(hw);
      if (state != nullptr) api.state_destroy(state);
      if (handle != nullptr) api.destroy(handle);
    }
    if (stream != nullptr) cudaStreamDestroy(stream);
  }
};

DecodeGpu::DecodeGpu() : impl_(nullptr) {}

DecodeGpu::~DecodeGpu() {
  delete impl_;
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
  if (!im->api.load(error)) return fail(Status::kDevice);
  nvjpegStatus_t s = im->api.create_ex(NVJPEG_BACKEND_DEFAULT, nullptr, nullptr, 0, &im->handle);
  if (s == NVJPEG_STATUS_SUCCESS) s = im->api.state_create(im->handle, &im->state);
  if (s != NVJPEG_STATUS_SUCCESS) {
    error->set("nvJPEG initialisation failed: %s", nvjpeg_reason(s));
    return fail(s == NVJPEG_STATUS_ALLOCATOR_FAILURE ? Status::kNoMemory : Status::kDevice);
  }
  // The hardware engine is optional: GPUs without one refuse this backend.
  if (im->api.create_ex(NVJPEG_BACKEND_HARDWARE, nullptr, nullptr, 0, &im->hw) == NVJPEG_STATUS_SUCCESS) {
    if (im->api.state_create(im->hw, &im->hw_state) != NVJPEG_STATUS_SUCCESS ||
        im->api.stream_create(im->hw, &im->parsed) != NVJPEG_STATUS_SUCCESS) {
      if (im->hw_state != nullptr) im->api.state_destroy(im->hw_state);
      im->hw_state = nullptr;
      im->api.destroy(im->hw);
      im->hw = nullptr;
    }
  } else {
    im->hw = nullptr;
  }
  impl_ = im;
  return Status::kOk;
}

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
  std::vector<std::int32_t> todo, hw_batch, one_by_one;
  for (std::int32_t i = 0; i < n; ++i) {
    if (!status_ok(statuses[i])) continue;
    const GpuImage& g = images[i];
    // nvJPEG writes the JPEG's own size at the descriptor's pitch: the descriptor must be that
    // size and fit the buffer (descriptors come from the caller).
    ImageInfo info;
    ErrorText why;
    DecodeOptions o;
    o.exif_orientation = false;
    o.max_pixels = 0;  // plan() applied the limit
    const bool same_size = status_ok(decode_info(data[i], sizes[i], o, &info, &why)) &&
                           info.width == g.width && info.height == g.height;
    if (g.channels != 3 || !gpu_image_fits(g, pixel_bytes) || !same_size) {
      statuses[i] = Status::kUnsupported;
      messages[i].set(
          "descriptor %dx%d (stride %lld) at offset %lld does not match the JPEG or the %lld-byte buffer",
          g.width, g.height, static_cast<long long>(g.stride), static_cast<long long>(g.offset),
          static_cast<long long>(pixel_bytes));
      continue;
    }
    todo.push_back(i);
  }
  // The hardware engine takes the bitstreams it supports (baseline, single scan, most subsamplings):
  // nvjpegDecodeBatchedSupported sets 0 for those.
  for (std::int32_t i : todo) {
    int unsupported = 1;
    if (im.hw != nullptr &&
        im.api.stream_parse(im.hw, data[i], sizes[i], 0, 0, im.parsed) == NVJPEG_STATUS_SUCCESS &&
        im.api.batched_supported(im.hw, im.parsed, &unsupported) == NVJPEG_STATUS_SUCCESS &&
        unsupported == 0) {
      hw_batch.push_back(i);
    } else {
      one_by_one.push_back(i);
    }
  }
  if (!hw_batch.empty()) {
    std::vector<const unsigned char*> ptrs;
    std::vector<std::size_t> lens;
    std::vector<nvjpegImage_t> dests;
    for (std::int32_t i : hw_batch) {
      ptrs.push_back(data[i]);
      lens.push_back(sizes[i]);
      dests.push_back(dest(i));
    }
    nvjpegStatus_t s =
        im.api.batched_init(im.hw, im.hw_state, static_cast<int>(hw_batch.size()), 1, NVJPEG_OUTPUT_RGBI);
    if (s == NVJPEG_STATUS_SUCCESS)
      s = im.api.batched(im.hw, im.hw_state, ptrs.data(), lens.data(), dests.data(), im.stream);
    if (s == NVJPEG_STATUS_SUCCESS && cudaStreamSynchronize(im.stream) == cudaSuccess) {
      st.hardware = static_cast<std::int32_t>(hw_batch.size());
    } else {
      // One bad bitstream fails the whole hardware batch: decode its images one by one instead,
      // so that only the bad one gets a failure status.
      one_by_one.insert(one_by_one.end(), hw_batch.begin(), hw_batch.end());
      std::sort(one_by_one.begin(), one_by_one.end());
    }
  }
  for (std::int32_t i : one_by_one) {
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
  const cudaError_t ce = cudaStreamSynchronize(im.stream);
  if (ce != cudaSuccess) {
    error->set("CUDA: %s", cudaGetErrorString(ce));
    for (std::int32_t i : todo) {
      if (status_ok(statuses[i])) {
        statuses[i] = Status::kDevice;
        messages[i].set("CUDA: %s", cudaGetErrorString(ce));
      }
    }
    return Status::kDevice;
  }
  return Status::kOk;
}

}  // namespace mmcore
