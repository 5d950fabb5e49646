// MmcoreHash (fn.mmcore_hash): decoded images (HWC or HW uint8, 1, 3 or 4 channels) -> the
// perceptual hashes of SPEC-hashes.md, bit for bit what mmcore.hash_batch gives for the same
// pixels (mmcore::hash_image, treating the array as Pillow's L / RGB image).
//
// Outputs, in order: one per kind in `kinds` (64-bit kinds: uint64 scalar in imagehash's bit
// order; colorhash: its 42 bits in a uint64; pdq: 32 uint8, the reference hex's bytes), then
// pdq_quality (int32 scalar) when pdq is asked for, then status (uint8 scalar) and message
// (1-D uint8). An empty or unusable image gets zeros and its status; it never raises.
#include <climits>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "common.h"
#include "hash_args.h"
#include "mmcore/hash.h"

namespace mmcore_dali {

class MmcoreHash : public dali::Operator<dali::CPUBackend> {
 public:
  explicit MmcoreHash(const dali::OpSpec& spec)
      : dali::Operator<dali::CPUBackend>(spec), kinds_(parse_kinds(spec)) {
    for (mmcore::HashKind k : kinds_) request_.kinds |= 1u << static_cast<int>(k);
    const std::string mode = spec.GetArgument<std::string>("mode");
    if (mode == "exact") {
      request_.mode = mmcore::HashMode::kExact;
    } else if (mode == "full") {
      request_.mode = mmcore::HashMode::kPdqFull;
    } else {
      DALI_FAIL("mmcore_hash: mode must be \"exact\" or \"full\", got \"" + mode + "\"");
    }
  }

 protected:
  bool SetupImpl(std::vector<dali::OutputDesc>&, const dali::Workspace&) override {
    return false;  // every output is sized in RunImpl (the messages' lengths are known only then)
  }

  void RunImpl(dali::Workspace& ws) override {
    const auto& in = ws.Input<dali::CPUBackend>(0);
    const int ndim = image_dims(in);
    const int n = in.num_samples();
    std::vector<mmcore::HashRecord> records(n);
    std::vector<Outcome> outcomes(n);
    auto& pool = ws.GetThreadPool();
    scratch_.size(pool.NumThreads());
    for (int i = 0; i < n; ++i) {
      const int64_t pixels = dali::volume(in.tensor_shape(i));
      pool.AddWork(
          [&, i, ndim](int thread) {
            mmcore::Workspace* scratch = scratch_.at(thread);
            hash(in, i, ndim, &records[i], &outcomes[i], scratch);
            if (scratch != nullptr) scratch->end_record();
          },
          pixels);
    }
    pool.RunAll();

    int o = 0;
    for (mmcore::HashKind k : kinds_) {
      auto& out = ws.Output<dali::CPUBackend>(o++);
      if (k == mmcore::HashKind::kPdq) {
        out.Resize(dali::uniform_list_shape(n, dali::TensorShape<>{32}), DALI_UINT8);
        for (int i = 0; i < n; ++i) std::memcpy(out.mutable_tensor<uint8_t>(i), records[i].pdq[0].bytes, 32);
      } else {
        out.Resize(dali::uniform_list_shape(n, dali::TensorShape<>{}), DALI_UINT64);
        for (int i = 0; i < n; ++i) *out.mutable_tensor<uint64_t>(i) = records[i].bits[static_cast<int>(k)];
      }
    }
    if (has_pdq(kinds_)) {
      auto& out = ws.Output<dali::CPUBackend>(o++);
      out.Resize(dali::uniform_list_shape(n, dali::TensorShape<>{}), DALI_INT32);
      for (int i = 0; i < n; ++i) *out.mutable_tensor<int32_t>(i) = records[i].pdq_quality;
    }
    write_outcomes(outcomes, ws.Output<dali::CPUBackend>(o), ws.Output<dali::CPUBackend>(o + 1));
  }

 private:
  void hash(const dali::TensorList<dali::CPUBackend>& in, int i, int ndim, mmcore::HashRecord* record,
            Outcome* out, mmcore::Workspace* scratch) const {
    const dali::TensorShape<>& s = in.tensor_shape(i);
    const int64_t h = s[0], w = s[1], c = ndim == 3 ? s[2] : 1;
    *record = mmcore::HashRecord{};
    if (h <= 0 || w <= 0) {
      out->status = mmcore::Status::kCorrupt;
      out->error.set("hash: empty image (%lldx%lld): nothing was decoded", static_cast<long long>(h),
                     static_cast<long long>(w));
      return;
    }
    if (h > INT32_MAX || w > INT32_MAX) {
      out->status = mmcore::Status::kTooLarge;
      out->error.set("hash: image %lldx%lld is too large", static_cast<long long>(h),
                     static_cast<long long>(w));
      return;
    }
    const mmcore::ConstImageView view(in.tensor<uint8_t>(i), static_cast<int32_t>(w), static_cast<int32_t>(h),
                                      static_cast<int32_t>(c), w * c);
    try {
      out->status = mmcore::hash_image(view, request_, record, &out->error, scratch);
    } catch (const std::bad_alloc&) {
      out->status = mmcore::Status::kNoMemory;
      out->error.set("hash: out of memory for a %lldx%lld image", static_cast<long long>(w),
                     static_cast<long long>(h));
    }
    if (!mmcore::status_ok(out->status)) *record = mmcore::HashRecord{};
  }

  std::vector<mmcore::HashKind> kinds_;
  mmcore::HashRequest request_;
  PoolScratch scratch_;  ///< consecutive large images on a pool thread reuse their buffers
};

}  // namespace mmcore_dali

namespace dali {

DALI_REGISTER_OPERATOR(MmcoreHash, ::mmcore_dali::MmcoreHash, CPU);

DALI_SCHEMA(MmcoreHash)
    .DocStr(R"(mmcore's perceptual hashes of decoded images (HWC or HW uint8; 1, 3 or 4 channels,
alpha ignored), bit for bit mmcore.hash_batch's for the same pixels.

Outputs: one per entry of ``kinds`` (uint64 scalar, imagehash bit order; pdq: 32 uint8), then
``pdq_quality`` (int32) when pdq is asked for, then status (uint8, mmcore.Status) and message
(1-D uint8, UTF-8). An empty image (a failed decode) gets zero hashes and status CORRUPT.)")
    .NumInput(1)
    .InputDox(0, "images", "TensorList of uint8", "Decoded images, e.g. mmcore_decode's first output.")
    .OutputFn(::mmcore_dali::output_count)
    .AddOptionalArg("kinds",
                    "Hashes: ahash, dhash, dhash_vertical, phash, phash_simple, whash, colorhash, pdq.",
                    std::vector<std::string>{"phash", "pdq"})
    .AddOptionalArg("mode",
                    R"("exact": imagehash / PDQ-reference bits (PDQ squashes images over 512 px);
"full": PDQ on the full-size image (pdqhash.compute).)",
                    std::string("exact"));

}  // namespace dali
