// MmcoreDecode (fn.mmcore_decode): encoded image bytes -> HWC uint8 pixels, a status, a message and
// the header's facts per sample. A bad sample never stops the pipeline: it yields a 0x0 image (or a zeroed
// one, when the data breaks after its header) with its status and message.
//
// With short_side / fit / crop it is mmcore.thumbnail (JPEG scaled IDCT where it loses nothing,
// orientation, resize, centre crop); without, mmcore.decode at full size. Passes over the batch
// on DALI's thread pool: headers first (they size the outputs; a header that claims far more
// pixels than its bytes plausibly hold is checked by decoding that sample first), then decoding
// straight into the output buffers.
#include <algorithm>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "common.h"
#include "mmcore/decode.h"
#include "mmcore/image.h"

namespace mmcore_dali {

namespace {

// Pass 1b's thresholds (see RunImpl): output bytes over both of these.
constexpr int64_t kVetBytes = int64_t{16} << 20;
constexpr int64_t kVetRatio = 64;

mmcore::PixelFormat parse_color(const std::string& s) {
  if (s == "rgb") return mmcore::PixelFormat::kRgb;
  if (s == "gray") return mmcore::PixelFormat::kGray;
  if (s == "rgba") return mmcore::PixelFormat::kRgba;
  DALI_FAIL("mmcore_decode: color must be \"rgb\", \"gray\" or \"rgba\", got \"" + s + "\"");
}

mmcore::Filter parse_filter(const std::string& s) {
  if (s == "nearest") return mmcore::Filter::kNearest;
  if (s == "area") return mmcore::Filter::kArea;
  if (s == "bilinear") return mmcore::Filter::kBilinear;
  if (s == "bicubic") return mmcore::Filter::kBicubic;
  if (s == "lanczos3") return mmcore::Filter::kLanczos3;
  DALI_FAIL("mmcore_decode: filter must be one of nearest, area, bilinear, bicubic, lanczos3, got \"" + s +
            "\"");
}

std::vector<int> pair_arg(const dali::OpSpec& spec, const char* name) {
  std::vector<int> v = spec.GetRepeatedArgument<int>(name);
  DALI_ENFORCE(v.empty() || (v.size() == 2 && v[0] > 0 && v[1] > 0),
               std::string("mmcore_decode: ") + name + " must be (width, height) with both > 0");
  return v;
}

}  // namespace

class MmcoreDecode : public dali::Operator<dali::CPUBackend> {
 public:
  explicit MmcoreDecode(const dali::OpSpec& spec) : dali::Operator<dali::CPUBackend>(spec) {
    mmcore::DecodeOptions& d = options_.decode;
    d.pixel = parse_color(spec.GetArgument<std::string>("color"));
    d.exif_orientation = spec.GetArgument<bool>("exif_orientation");
    d.max_pixels = spec.GetArgument<int64_t>("max_pixels");
    d.fast = spec.GetArgument<bool>("fast");
    d.pillow_i16 = spec.GetArgument<bool>("pillow_i16");
    options_.filter = parse_filter(spec.GetArgument<std::string>("filter"));
    options_.upscale = spec.GetArgument<bool>("upscale");
    options_.reducing_gap = spec.GetArgument<float>("reducing_gap");
    options_.short_side = spec.GetArgument<int>("short_side");
    DALI_ENFORCE(options_.short_side >= 0, "mmcore_decode: short_side must be >= 0 (0: no resize)");
    const std::vector<int> fit = pair_arg(spec, "fit"), crop = pair_arg(spec, "crop");
    if (!fit.empty()) options_.fit_width = fit[0], options_.fit_height = fit[1];
    if (!crop.empty()) options_.crop_width = crop[0], options_.crop_height = crop[1];
    const int groups = (options_.short_side > 0) + !fit.empty() + !crop.empty();
    DALI_ENFORCE(groups <= 1, "mmcore_decode: give at most one of short_side, fit, crop");
    resize_ = groups == 1;
    thumb_ = options_;
    thumb_.fit_width = thumb_.fit_height = thumb_.crop_width = thumb_.crop_height = 0;
    thumb_.short_side = spec.GetArgument<int>("thumbnail");
    DALI_ENFORCE(thumb_.short_side >= 0, "mmcore_decode: thumbnail must be >= 0 (0: none)");
    thumb_.upscale = spec.GetArgument<bool>("thumbnail_upscale");
    thumb_.decode.exif_orientation = spec.GetArgument<bool>("thumbnail_exif_orientation");
    thumb_.decode.pillow_i16 = false;
  }

 protected:
  bool SetupImpl(std::vector<dali::OutputDesc>&, const dali::Workspace&) override {
    return false;  // output sizes come from the headers, read in RunImpl
  }

  void RunImpl(dali::Workspace& ws) override {
    const auto& in = ws.Input<dali::CPUBackend>(0);
    DALI_ENFORCE(in.type() == DALI_UINT8,
                 "mmcore_decode: the input must be encoded image bytes (uint8), got " +
                     std::string(dali::TypeTable::GetTypeInfo(in.type()).name()));
    const int n = in.num_samples();
    auto& pool = ws.GetThreadPool();
    scratch_.size(pool.NumThreads());
    std::vector<Outcome> outcomes(n);
    std::vector<mmcore::ThumbnailInfo> infos(n);

    const bool thumbs = thumb_.short_side > 0;
    std::vector<Outcome> thumb_outcomes(thumbs ? n : 0);
    std::vector<mmcore::ThumbnailInfo> thumb_infos(thumbs ? n : 0);

    // Pass 1: headers (and the pixel limit) only.
    for (int i = 0; i < n; ++i) {
      pool.AddWork([&, i](int) {
        header(in, i, &infos[i], &outcomes[i]);
        if (thumbs) thumb_header(in, i, &thumb_infos[i], &thumb_outcomes[i]);
      });
    }
    pool.RunAll();

    // The header was read: decoded, or over the pixel limit (decode_info measured it first), as
    // mmcore run's image_info reports the facts of an image too large to decode.
    std::vector<char> header_ok(n);
    for (int i = 0; i < n; ++i) {
      const mmcore::ImageInfo& im = infos[i].image;
      header_ok[i] = mmcore::status_ok(outcomes[i].status) ||
                     (outcomes[i].status == mmcore::Status::kTooLarge && im.width > 0 && im.height > 0);
    }
    const int channels = channel_count();
    // Pass 1b: a full-size sample whose header asks for far more pixels than its bytes plausibly
    // hold (over kVetBytes and kVetRatio times its size: a crafted header, or a very flat image)
    // is decoded first, into memory of its own. One that fails then gets a 0x0 output instead of
    // the size its header claims, so a batch of tiny files with huge headers no longer sizes
    // gigabytes of outputs (as the library, which holds one image per thread at a time); one that
    // decodes is copied into its output in pass 2.
    std::vector<std::unique_ptr<uint8_t[]>> vetted(n);
    if (!resize_) {
      for (int i = 0; i < n; ++i) {
        if (!mmcore::status_ok(outcomes[i].status)) continue;
        const uint8_t* data;
        std::size_t size;
        sample_bytes(in, i, &data, &size);
        const int64_t bytes = int64_t{infos[i].out_width} * infos[i].out_height * channels;
        if (bytes <= kVetBytes || bytes <= kVetRatio * static_cast<int64_t>(size)) continue;
        pool.AddWork(
            [&, i](int thread) {
              mmcore::Workspace* w = scratch_.at(thread);
              vet(in, i, infos[i], &vetted[i], &outcomes[i], w);
              if (w != nullptr) w->end_record();
            },
            bytes);
      }
      pool.RunAll();
    }
    dali::TensorListShape<> shape(n, 3);
    for (int i = 0; i < n; ++i) {
      const bool ok = mmcore::status_ok(outcomes[i].status);
      shape.set_tensor_shape(
          i, dali::TensorShape<>{ok ? infos[i].out_height : 0, ok ? infos[i].out_width : 0, channels});
    }
    auto& out = ws.Output<dali::CPUBackend>(0);
    out.Resize(shape, DALI_UINT8);
    out.SetLayout("HWC");
    dali::TensorList<dali::CPUBackend>* thumb_out = nullptr;
    if (thumbs) {
      dali::TensorListShape<> tshape(n, 3);
      for (int i = 0; i < n; ++i) {
        const bool ok = mmcore::status_ok(thumb_outcomes[i].status);
        tshape.set_tensor_shape(i, dali::TensorShape<>{ok ? thumb_infos[i].out_height : 0,
                                                       ok ? thumb_infos[i].out_width : 0, channels});
      }
      thumb_out = &ws.Output<dali::CPUBackend>(4);
      thumb_out->Resize(tshape, DALI_UINT8);
      thumb_out->SetLayout("HWC");
    }

    // Pass 2: pixels, straight into the outputs; a thumbnail from the decoded image where that is
    // what its own decode would give (mmcore::thumbnail_can_reuse), else from the bytes.
    for (int i = 0; i < n; ++i) {
      const int64_t bytes = dali::volume(shape.tensor_shape(i));
      pool.AddWork(
          [&, i, bytes](int thread) {
            mmcore::Workspace* w = scratch_.at(thread);
            uint8_t* pixels = out.mutable_tensor<uint8_t>(i);
            if (vetted[i]) {
              std::memcpy(pixels, vetted[i].get(), static_cast<std::size_t>(bytes));
              vetted[i].reset();
            } else if (mmcore::status_ok(outcomes[i].status)) {
              decode(in, i, infos[i], pixels, &outcomes[i], w);
            }
            if (thumbs && mmcore::status_ok(thumb_outcomes[i].status)) {
              thumbnail(in, i, infos[i], pixels, outcomes[i], thumb_infos[i],
                        thumb_out->mutable_tensor<uint8_t>(i), &thumb_outcomes[i], w);
            }
            if (w != nullptr) w->end_record();
          },
          bytes);
    }
    pool.RunAll();
    write_outcomes(outcomes, ws.Output<dali::CPUBackend>(1), ws.Output<dali::CPUBackend>(2));
    if (thumbs)
      write_outcomes(thumb_outcomes, ws.Output<dali::CPUBackend>(5), ws.Output<dali::CPUBackend>(6));

    // What the header said, whatever the pixels did: full-size width and height as displayed
    // (after the EXIF orientation, even when it is not applied), orientation, format; zeros when
    // the header could not be read, but for the format, which is the signature's (as mmcore run's
    // format column: a damaged JPEG is still a JPEG), 0 when none matched.
    auto& meta = ws.Output<dali::CPUBackend>(3);
    meta.Resize(dali::uniform_list_shape(n, dali::TensorShape<>{4}), DALI_INT32);
    for (int i = 0; i < n; ++i) {
      const mmcore::ImageInfo& im = infos[i].image;
      const bool swap = im.orientation >= 5 && im.orientation <= 8;
      int32_t* m = meta.mutable_tensor<int32_t>(i);
      if (!header_ok[i]) {
        const uint8_t* data;
        std::size_t size;
        sample_bytes(in, i, &data, &size);
        m[0] = m[1] = m[2] = 0;
        m[3] = static_cast<int32_t>(mmcore::detect_format(data, size));
        continue;
      }
      m[0] = swap ? im.height : im.width;
      m[1] = swap ? im.width : im.height;
      m[2] = im.orientation;
      m[3] = static_cast<int32_t>(im.format);
    }
  }

 private:
  int channel_count() const {
    switch (options_.decode.pixel) {
      case mmcore::PixelFormat::kGray: return 1;
      case mmcore::PixelFormat::kRgba: return 4;
      default: return 3;
    }
  }

  void header(const dali::TensorList<dali::CPUBackend>& in, int i, mmcore::ThumbnailInfo* info,
              Outcome* o) const {
    const uint8_t* data;
    std::size_t size;
    sample_bytes(in, i, &data, &size);
    if (resize_) {
      o->status = mmcore::thumbnail_info(data, size, options_, info, &o->error);
      return;
    }
    o->status = mmcore::decode_info(data, size, options_.decode, &info->image, &o->error);
    info->out_width = info->image.out_width;
    info->out_height = info->image.out_height;
    info->out_channels = info->image.out_channels;
  }

  void thumb_header(const dali::TensorList<dali::CPUBackend>& in, int i, mmcore::ThumbnailInfo* info,
                    Outcome* o) const {
    const uint8_t* data;
    std::size_t size;
    sample_bytes(in, i, &data, &size);
    o->status = mmcore::thumbnail_info(data, size, thumb_, info, &o->error);
  }

  void thumbnail(const dali::TensorList<dali::CPUBackend>& in, int i, const mmcore::ThumbnailInfo& info,
                 const uint8_t* decoded, const Outcome& decoded_outcome, const mmcore::ThumbnailInfo& tinfo,
                 uint8_t* pixels, Outcome* o, mmcore::Workspace* w) const {
    const int c = channel_count();
    const mmcore::ImageView view{pixels, tinfo.out_width, tinfo.out_height, c,
                                 static_cast<int64_t>(tinfo.out_width) * c};
    Outcome result;
    try {
      // The decoded image is the thumbnail's input when it is full size, not turned (or needs no
      // turn), and decoded as the thumbnail's own decode would be.
      const bool reuse = !resize_ && mmcore::status_ok(decoded_outcome.status) &&
                         (!options_.decode.exif_orientation || info.image.orientation <= 1) &&
                         mmcore::thumbnail_can_reuse(thumb_, tinfo, options_.decode);
      if (reuse) {
        const mmcore::ConstImageView stored(decoded, info.out_width, info.out_height, c,
                                            static_cast<int64_t>(info.out_width) * c);
        result.status = mmcore::thumbnail_from_decoded(stored, thumb_, tinfo, view, &result.error, w);
        if (mmcore::status_ok(result.status)) result = decoded_outcome;  // the same decode's outcome
      }
      if (!reuse || !mmcore::status_ok(result.status)) {
        const uint8_t* data;
        std::size_t size;
        sample_bytes(in, i, &data, &size);
        result = Outcome{};
        result.status = mmcore::thumbnail_into(data, size, thumb_, tinfo, view, &result.error, w);
      }
    } catch (const std::bad_alloc&) {
      result.status = mmcore::Status::kNoMemory;
      result.error.set("out of memory making a %dx%d thumbnail", tinfo.out_width, tinfo.out_height);
    }
    settle(result, view, o);
  }

  /// Pass 1b (see RunImpl): decodes sample i into a buffer of its own, kept in *keep when the
  /// decode succeeds; a failure only records its outcome (nothing is zeroed or kept).
  void vet(const dali::TensorList<dali::CPUBackend>& in, int i, const mmcore::ThumbnailInfo& info,
           std::unique_ptr<uint8_t[]>* keep, Outcome* o, mmcore::Workspace* w) const {
    std::unique_ptr<uint8_t[]> buf(new (
        std::nothrow) uint8_t[static_cast<std::size_t>(info.out_width) * info.out_height * channel_count()]);
    const Outcome pass = pixels_into(in, i, info, buf.get(), w);
    merge(pass, o);
    if (mmcore::status_ok(pass.status)) *keep = std::move(buf);
  }

  void decode(const dali::TensorList<dali::CPUBackend>& in, int i, const mmcore::ThumbnailInfo& info,
              uint8_t* pixels, Outcome* o, mmcore::Workspace* w) const {
    const int c = channel_count();
    settle(pixels_into(in, i, info, pixels, w),
           mmcore::ImageView{pixels, info.out_width, info.out_height, c,
                             static_cast<int64_t>(info.out_width) * c},
           o);
  }

  /// The pixel pass of sample i (thumbnail or full decode) into `pixels`, sized by `info`; a null
  /// `pixels` (an allocation that failed) is NO_MEMORY.
  Outcome pixels_into(const dali::TensorList<dali::CPUBackend>& in, int i, const mmcore::ThumbnailInfo& info,
                      uint8_t* pixels, mmcore::Workspace* w) const {
    const uint8_t* data;
    std::size_t size;
    sample_bytes(in, i, &data, &size);
    const int c = channel_count();
    const mmcore::ImageView view{pixels, info.out_width, info.out_height, c,
                                 static_cast<int64_t>(info.out_width) * c};
    Outcome pass;
    try {
      if (pixels == nullptr) throw std::bad_alloc();
      pass.status = resize_ ? mmcore::thumbnail_into(data, size, options_, info, view, &pass.error, w)
                            : mmcore::decode_into(data, size, options_.decode, info.image, view, &pass.error);
    } catch (const std::bad_alloc&) {
      pass.status = mmcore::Status::kNoMemory;
      pass.error.set("out of memory decoding a %dx%d image", info.out_width, info.out_height);
    }
    return pass;
  }

  /// After a pixel pass: a failure zeroes the image and takes over the sample's outcome; a header
  /// warning (e.g. a damaged ancillary chunk) survives a clean pass.
  static void settle(const Outcome& pass, const mmcore::ImageView& image, Outcome* o) {
    if (!mmcore::status_ok(pass.status)) {
      std::memset(image.data, 0, static_cast<std::size_t>(image.stride) * image.height);
    }
    merge(pass, o);
  }

  /// A failed pass takes over the sample's outcome; a header warning survives a clean pass.
  static void merge(const Outcome& pass, Outcome* o) {
    if (!mmcore::status_ok(pass.status) ||
        !(o->status == mmcore::Status::kOkWarning && pass.status == mmcore::Status::kOk)) {
      *o = pass;
    }
  }

  mmcore::ThumbnailOptions options_;
  mmcore::ThumbnailOptions thumb_;  ///< the thumbnail outputs' (thumbnail > 0)
  /// A resize's full decode of a large image reuses its thread's buffer.
  PoolScratch scratch_;
  bool resize_ = false;
};

}  // namespace mmcore_dali

namespace dali {

DALI_REGISTER_OPERATOR(MmcoreDecode, ::mmcore_dali::MmcoreDecode, CPU);

DALI_SCHEMA(MmcoreDecode)
    .DocStr(R"(mmcore's robust image decoder (JPEG, PNG, WebP, GIF, AVIF; format from content).

Outputs the image (HWC uint8), its status (uint8 scalar, mmcore.Status), a message (1-D uint8,
UTF-8, empty when there is nothing to say) and the header's facts (int32 x 4: full-size width and
height as displayed, i.e. after the EXIF orientation even when it is not applied; the orientation
1-8; the format, 1 JPEG, 2 PNG, 3 WebP, 4 GIF, 5 AVIF; zeros where the header could not be read, but for
the format, which is the signature's (0 when none matched); an image over the pixel limit has
them all, as in mmcore run). A sample that cannot be decoded yields a 0x0 image
(or a zeroed one when its data breaks after a valid header) and its status: it never raises.
With ``short_side``, ``fit`` or ``crop`` it returns mmcore.thumbnail's result (JPEG's scaled
IDCT where the reduced image still covers ``reducing_gap`` times the target).)")
    .NumInput(1)
    .InputDox(0, "data", "TensorList of uint8", "Encoded image bytes, one sample per image.")
    .OutputFn([](const dali::OpSpec& spec) { return spec.GetArgument<int>("thumbnail") > 0 ? 7 : 4; })
    .AddOptionalArg("color", R"(Output pixels: "rgb", "gray" or "rgba".)", std::string("rgb"))
    .AddOptionalArg("exif_orientation", "Apply the EXIF orientation (1-8).", true)
    .AddOptionalArg<int64_t>("max_pixels",
                             "Pixel limit checked from the header (<= 0: none); over it: TOO_LARGE.",
                             mmcore::kDefaultMaxPixels)
    .AddOptionalArg("fast", "JPEG: fast integer IDCT and plain chroma upsampling (not Pillow-exact).", false)
    .AddOptionalArg("pillow_i16",
                    "16-bit grey PNG: clip samples to 255 as Pillow's convert does (what imagehash sees) "
                    "instead of keeping the high byte.",
                    false)
    .AddOptionalArg("short_side", "Resize so that the short side is this (0: full size).", 0)
    .AddOptionalArg("fit", "(width, height): resize keeping the aspect ratio to fit inside.",
                    std::vector<int>{})
    .AddOptionalArg("crop", "(width, height): resize to cover, then centre crop.", std::vector<int>{})
    .AddOptionalArg("upscale", "Allow enlarging (short_side / fit).", true)
    .AddOptionalArg("filter", "Resize filter: nearest, area, bilinear, bicubic, lanczos3.",
                    std::string("lanczos3"))
    .AddOptionalArg(
        "thumbnail",
        "Also output a thumbnail with this short side (0: none): outputs 4-6 are its image, status "
        "and message, as mmcore.thumbnail gives them; made from the decoded image where that is "
        "its input (full size, not turned, decoded alike), else by a second, reduced decode.",
        0)
    .AddOptionalArg("thumbnail_upscale", "Allow the thumbnail to enlarge small images.", false)
    .AddOptionalArg("thumbnail_exif_orientation", "Apply the EXIF orientation to the thumbnail.", true)
    .AddOptionalArg(
        "reducing_gap",
        "JPEG reduced decode keeps at least this times the result's size (<= 0: always full size).", 2.0f);

}  // namespace dali
