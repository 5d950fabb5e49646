// DecodeGpu in a build that found no nvjpeg.h (neither in the CUDA toolkit nor in an nvidia-nvjpeg
// wheel of the build's Python, e.g. `pip install .` in an isolated build environment): the class
// exists, so that the bindings link and import, and init() says why GPU decode is unavailable.
// plan() (CPU only) is in decode_plan.cu and works as in a build with nvJPEG.
#include "mmcore/decode_gpu.h"

namespace mmcore {

struct DecodeGpu::Impl {};

DecodeGpu::DecodeGpu() : impl_(nullptr) {}

DecodeGpu::~DecodeGpu() {
  delete impl_;
}

void DecodeGpu::set_cpu_share(double) {}

void DecodeGpu::set_host_threads(std::int32_t) {}

void* DecodeGpu::stream() const {
  return nullptr;
}

Status DecodeGpu::init(std::int32_t, ErrorText* error) {
  error->set(
      "GPU JPEG decode is not in this build: nvjpeg.h was not found when mmcore was compiled (install the "
      "CUDA toolkit's nvJPEG or the nvidia-nvjpeg wheel into the build's Python, then rebuild)");
  return Status::kDevice;
}

Status DecodeGpu::decode(const std::uint8_t* const*, const std::size_t*, std::int32_t n, const GpuImage*,
                         Status* statuses, ErrorText* messages, std::uint8_t*, std::int64_t, ErrorText* error,
                         DecodeGpuStats* stats) {
  if (stats != nullptr) *stats = DecodeGpuStats{};
  for (std::int32_t i = 0; i < n; ++i) {
    if (!status_ok(statuses[i])) continue;
    statuses[i] = Status::kDevice;
    messages[i].set("GPU JPEG decode is not in this build (no nvjpeg.h at build time)");
  }
  error->set("DecodeGpu::decode: GPU JPEG decode is not in this build (no nvjpeg.h at build time)");
  return Status::kDevice;
}

}  // namespace mmcore
