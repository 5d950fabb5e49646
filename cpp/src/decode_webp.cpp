// WebP decoder: libwebp (still images) and libwebpdemux (animations: the first frame).
//
// Contract (see decode_internal.h), pixel rules matching Pillow 13's Image.open(f).convert(...):
// - Pillow decodes every WebP through WebPAnimDecoder in MODE_RGBA (non-premultiplied) and takes
//   frame 0. For a still image that is one WebPDecode of the whole picture into the canvas, so
//   still images are decoded here with WebPDecode straight into the caller's rows (kRgb: MODE_RGB,
//   kRgba: MODE_RGBA; same decoder, same samples, no canvas copy).
// - Animated files: frame 0 as WebPAnimDecoder makes it (the canvas outside the first frame's
//   rectangle is transparent black, as Pillow shows it), decoded straight into the caller's rows
//   through the demuxer (decode_animated), without WebPAnimDecoder's two canvases.
// - kRgb drops alpha without premultiplying; kRgba is 255 where the image has no alpha; kGray is
//   luma_pillow() of the RGB samples (Pillow's convert("L")).
// - Lossy decoding depends on the libwebp build: Pillow's wheel bundles a newer libwebp than
//   Debian's; the VP8 reconstruction and the default ("fancy") upsampler are the same, so pixels
//   match (the corpus test measures this).
// - Errors are libwebp status codes mapped to kCorrupt / kUnsupported / kNoMemory with a message;
//   nothing is printed. webp_info reads only the RIFF headers (and the demuxer's chunk index
//   for animations) and allocates no pixel memory.
#include <webp/decode.h>
#include <webp/demux.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "decode_internal.h"

namespace mmcore::detail {
namespace {

const char* vp8_status_text(VP8StatusCode s) {
  switch (s) {
    case VP8_STATUS_OK: return "ok";
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory";
    case VP8_STATUS_INVALID_PARAM: return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR: return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "unsupported feature";
    case VP8_STATUS_SUSPENDED: return "suspended";
    case VP8_STATUS_USER_ABORT: return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA: return "truncated (not enough data)";
  }
  return "unknown error";
}

Status map_status(VP8StatusCode s) {
  switch (s) {
    case VP8_STATUS_OK: return Status::kOk;
    case VP8_STATUS_OUT_OF_MEMORY: return Status::kNoMemory;
    case VP8_STATUS_UNSUPPORTED_FEATURE: return Status::kUnsupported;
    default: return Status::kCorrupt;
  }
}

// Pillow reads a file whose header says "no alpha" as RGBX: whatever alpha the decoder produced
// (a lossless stream can still carry it, or an animation canvas outside frame 0) is ignored.
void opaque_if_no_alpha(const ImageInfo& info, ImageView out) {
  if (info.has_alpha || out.channels != 4) return;
  for (std::int32_t y = 0; y < out.height; ++y) {
    std::uint8_t* d = out.row(y);
    for (std::int32_t x = 0; x < out.width; ++x) d[4 * x + 3] = 255;
  }
}

// Frame 1 of an animation as WebPAnimDecoder gives it (libwebp's anim_decode.c): the first frame
// is a key frame, so the canvas is zeroed (transparent black) and the frame's bitstream is decoded
// into its rectangle, no blending. Done here straight into the caller's rows, with no canvas of our
// own: WebPAnimDecoder keeps two RGBA canvases (8 bytes per canvas pixel), so a 90-byte file with
// a tiny frame on a 13000x13000 canvas peaked at 1.8 GB.
Status decode_animated(const std::uint8_t* data, std::size_t size, PixelFormat pixel, ImageView out,
                       ErrorText* error) {
  const WebPData wd{data, size};
  WebPDemuxer* demux = WebPDemux(&wd);
  if (demux == nullptr) {
    error->set("webp: cannot parse the animation (damaged or truncated container, %zu bytes)", size);
    return Status::kCorrupt;
  }
  const auto cw = static_cast<std::int64_t>(WebPDemuxGetI(demux, WEBP_FF_CANVAS_WIDTH));
  const auto ch = static_cast<std::int64_t>(WebPDemuxGetI(demux, WEBP_FF_CANVAS_HEIGHT));
  Status s = Status::kOk;
  WebPIterator it;
  std::memset(&it, 0, sizeof it);
  std::uint8_t* scratch = nullptr;
  if (cw != out.width || ch != out.height) {
    error->set("webp: animation canvas %lldx%lld differs from the header's %dx%d", static_cast<long long>(cw),
               static_cast<long long>(ch), out.width, out.height);
    s = Status::kCorrupt;
  } else if (!WebPDemuxGetFrame(demux, 1, &it) || it.width <= 0 || it.height <= 0 ||
             it.x_offset + static_cast<std::int64_t>(it.width) > cw ||
             it.y_offset + static_cast<std::int64_t>(it.height) > ch) {
    error->set("webp: cannot decode the first animation frame (damaged or truncated frame data)");
    s = Status::kCorrupt;
  } else {
    const std::size_t row_bytes = static_cast<std::size_t>(out.width) * out.channels;
    for (std::int32_t y = 0; y < out.height; ++y) std::memset(out.row(y), 0, row_bytes);
    ImageView region{out.row(it.y_offset) + static_cast<std::int64_t>(it.x_offset) * out.channels, it.width,
                     it.height, out.channels, out.stride};
    WebPDecoderConfig config;
    if (!WebPInitDecoderConfig(&config)) {
      error->set("webp: libwebp ABI mismatch (WebPInitDecoderConfig failed)");
      s = Status::kUnsupported;
    } else {
      WebPRGBABuffer& rgba = config.output.u.RGBA;
      config.output.is_external_memory = 1;
      if (pixel == PixelFormat::kGray) {  // RGB first, then luma (Pillow's convert("L"))
        const std::size_t stride = static_cast<std::size_t>(it.width) * 3;
        const std::size_t bytes = stride * static_cast<std::size_t>(it.height);
        scratch = static_cast<std::uint8_t*>(std::malloc(bytes));
        config.output.colorspace = MODE_RGB;
        rgba.rgba = scratch;
        rgba.stride = static_cast<int>(stride);
        rgba.size = bytes;
      } else {  // RGB equals the RGB of MODE_RGBA (non-premultiplied), as for still images
        config.output.colorspace = pixel == PixelFormat::kRgb ? MODE_RGB : MODE_RGBA;
        rgba.rgba = region.data;
        rgba.stride = static_cast<int>(out.stride);
        rgba.size = static_cast<std::size_t>(out.stride) * (it.height - 1) +
                    static_cast<std::size_t>(it.width) * out.channels;
      }
      if (pixel == PixelFormat::kGray && scratch == nullptr) {
        error->set("webp: out of memory allocating the first frame's RGB scratch");
        s = Status::kNoMemory;
      } else {
        const VP8StatusCode vs = WebPDecode(it.fragment.bytes, it.fragment.size, &config);
        if (vs != VP8_STATUS_OK) {
          error->set("webp: cannot decode the first animation frame: %s", vp8_status_text(vs));
          s = map_status(vs);
        } else if (scratch != nullptr) {
          convert_rgb_rows(scratch, static_cast<std::int64_t>(it.width) * 3, 3, region);
        }
      }
      WebPFreeDecBuffer(&config.output);
    }
  }
  std::free(scratch);
  WebPDemuxReleaseIterator(&it);
  WebPDemuxDelete(demux);
  return s;
}

}  // namespace

Status webp_info(const std::uint8_t* data, std::size_t size, const DecodeOptions& options, ImageInfo* info,
                 ErrorText* error) {
  WebPBitstreamFeatures f;
  const VP8StatusCode vs = WebPGetFeatures(data, size, &f);
  if (vs != VP8_STATUS_OK) {
    error->set("webp: cannot read the header: %s (%zu bytes)", vp8_status_text(vs), size);
    return map_status(vs);
  }
  info->format = ImageFormat::kWebp;
  info->width = f.width;
  info->height = f.height;
  info->has_alpha = f.has_alpha != 0;
  info->animated = false;
  if (f.has_animation) {
    // Frame count from the demuxer's chunk index (no pixel memory); Pillow's is_animated is
    // n_frames > 1.
    const WebPData wd{data, size};
    WebPDemuxer* demux = WebPDemux(&wd);
    if (demux == nullptr) {
      error->set("webp: cannot parse the animated container (damaged or truncated, %zu bytes)", size);
      return Status::kCorrupt;
    }
    const std::uint32_t frames = WebPDemuxGetI(demux, WEBP_FF_FRAME_COUNT);
    WebPDemuxDelete(demux);
    if (frames == 0) {
      error->set("webp: animation has no frames");
      return Status::kCorrupt;
    }
    info->animated = frames > 1;
  }
  info->scale_denom = 1;
  info->out_width = f.width;
  info->out_height = f.height;
  info->out_channels = pixel_channels(options.pixel);
  return Status::kOk;
}

Status webp_decode(const std::uint8_t* data, std::size_t size, const DecodeOptions& options,
                   const ImageInfo& info, ImageView out, ErrorText* error) {
  if (out.width != info.width || out.height != info.height || out.channels != pixel_channels(options.pixel) ||
      out.data == nullptr) {
    error->set("webp: output view %dx%dx%d does not match the image %dx%dx%d", out.width, out.height,
               out.channels, info.width, info.height, pixel_channels(options.pixel));
    return Status::kCorrupt;
  }
  if (out.stride < static_cast<std::int64_t>(out.width) * out.channels || out.stride > INT32_MAX) {
    error->set("webp: output stride %lld does not fit %d pixels of %d bytes (libwebp takes an int)",
               static_cast<long long>(out.stride), out.width, out.channels);
    return Status::kCorrupt;
  }
  WebPDecoderConfig config;
  if (!WebPInitDecoderConfig(&config)) {
    error->set("webp: libwebp ABI mismatch (WebPInitDecoderConfig failed)");
    return Status::kUnsupported;
  }
  VP8StatusCode vs = WebPGetFeatures(data, size, &config.input);
  if (vs != VP8_STATUS_OK) {
    error->set("webp: cannot read the header: %s", vp8_status_text(vs));
    return map_status(vs);
  }
  if (config.input.width != info.width || config.input.height != info.height) {
    error->set("webp: header changed between webp_info and webp_decode");
    return Status::kCorrupt;
  }
  if (config.input.has_animation) {
    const Status s = decode_animated(data, size, options.pixel, out, error);
    if (status_ok(s)) opaque_if_no_alpha(info, out);
    return s;
  }

  // Still image: decode into the caller's rows (kGray: into an RGB scratch image first).
  std::uint8_t* scratch = nullptr;
  WebPRGBABuffer& rgba = config.output.u.RGBA;
  config.output.is_external_memory = 1;
  if (options.pixel == PixelFormat::kGray) {
    const std::size_t stride = static_cast<std::size_t>(info.width) * 3;
    const std::size_t bytes = stride * static_cast<std::size_t>(info.height);
    scratch = static_cast<std::uint8_t*>(std::malloc(bytes));
    if (scratch == nullptr) {
      error->set("webp: out of memory allocating %zu bytes of RGB scratch", bytes);
      return Status::kNoMemory;
    }
    config.output.colorspace = MODE_RGB;
    rgba.rgba = scratch;
    rgba.stride = static_cast<int>(stride);
    rgba.size = bytes;
  } else {
    config.output.colorspace = options.pixel == PixelFormat::kRgb ? MODE_RGB : MODE_RGBA;
    rgba.rgba = out.data;
    rgba.stride = static_cast<int>(out.stride);
    rgba.size = static_cast<std::size_t>(out.stride) * (out.height - 1) +
                static_cast<std::size_t>(out.width) * out.channels;
  }
  vs = WebPDecode(data, size, &config);
  Status s = map_status(vs);
  if (vs != VP8_STATUS_OK) {
    error->set("webp: decode failed: %s (%s, %zu bytes)", vp8_status_text(vs),
               config.input.format == 2   ? "lossless"
               : config.input.format == 1 ? "lossy"
                                          : "extended format",
               size);
  } else if (scratch != nullptr) {
    convert_rgb_rows(scratch, static_cast<std::int64_t>(info.width) * 3, 3, out);
  }
  std::free(scratch);
  WebPFreeDecBuffer(&config.output);  // no-op for external memory; keeps the contract explicit
  if (status_ok(s)) opaque_if_no_alpha(info, out);
  return s;
}

}  // namespace mmcore::detail

namespace mmcore {
const char* webp_library_version() {
  static char text[40] = {0};
  static const bool once = [] {
    const int v = WebPGetDecoderVersion();
    std::snprintf(text, sizeof(text), "libwebp %d.%d.%d", (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
    return true;
  }();
  (void)once;
  return text;
}
}  // namespace mmcore
