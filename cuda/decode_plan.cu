// DecodeGpu::plan: the CPU-side layout of a GPU decode batch (header pass, descriptors, offsets);
// DecodeGpu::auto_cpu_share.
// Built with every CUDA build, with or without nvJPEG (decode_nvjpeg.cu / decode_nvjpeg_absent.cpp).
#include "mmcore/decode.h"
#include "mmcore/decode_gpu.h"

namespace mmcore {
namespace {

// Every image starts on a 256-byte boundary of the batch's buffer.
constexpr std::int64_t kAlign = 256;

}  // namespace

void DecodeGpu::plan(const std::uint8_t* const* data, const std::size_t* sizes, std::int32_t n,
                     std::int64_t max_pixels, GpuImage* images, Status* statuses, ErrorText* messages,
                     std::int64_t* total_bytes) {
  std::int64_t offset = 0;
  for (std::int32_t i = 0; i < n; ++i) {
    images[i] = GpuImage{};
    messages[i].clear();
    if (detect_format(data[i], sizes[i]) != ImageFormat::kJpeg) {
      statuses[i] = Status::kUnsupported;
      messages[i].set("GPU decode takes JPEG only: decode this %s on the CPU",
                      format_name(detect_format(data[i], sizes[i])));
      continue;
    }
    DecodeOptions o;
    o.exif_orientation = false;
    o.max_pixels = max_pixels;
    ImageInfo info;
    statuses[i] = decode_info(data[i], sizes[i], o, &info, &messages[i]);
    if (!status_ok(statuses[i])) continue;
    GpuImage& g = images[i];
    g.width = info.width;
    g.height = info.height;
    g.channels = 3;
    g.stride = static_cast<std::int64_t>(info.width) * 3;
    g.offset = offset;
    offset += (g.stride * g.height + kAlign - 1) / kAlign * kAlign;
  }
  *total_bytes = offset;
}

double DecodeGpu::auto_cpu_share(std::int32_t threads) {
  const double cpu = static_cast<double>(threads > 0 ? threads : 1) * kCpuPixelsPerThread;
  return cpu / (cpu + kEnginePixelsPerSecond);
}

}  // namespace mmcore
