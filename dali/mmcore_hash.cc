// MmcoreHash (fn.mmcore_hash): decoded images (HWC or HW uint8, 1, 3 or 4 channels) -> the
// perceptual hashes of SPEC-hashes.md, bit for bit what mmcore.hash_batch gives for the same
// pixels (mmcore::hash_image, treating the array as Pillow's L / RGB image).
//
// Outputs, in order: one per kind in `kinds` (64-bit kinds: uint64 scalar in imagehash's bit
// order; colorhash: its 42 bits in a uint64; pdq: 32 uint8, the reference hex's bytes; a kind at
// other sizes (hash_size / highfreq_factor / binbits): up to 64 bits a uint64, over 64 its
// ceil(bits / 8) bytes, big-endian as HashRecord::wide), then
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
    request_.hash_size = spec.GetArgument<int>("hash_size");
    request_.highfreq_factor = spec.GetArgument<int>("highfreq_factor");
    request_.binbits = spec.GetArgument<int>("binbits");
    mmcore::ErrorText why;
    DALI_ENFORCE(mmcore::hash_sizes_valid(request_, &why), std::string("mmcore_hash: ") + why.text);
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
      } else if (!request_.sized(k)) {
        out.Resize(dali::uniform_list_shape(n, dali::TensorShape<>{}), DALI_UINT64);
        for (int i = 0; i < n; ++i) *out.mutable_tensor<uint64_t>(i) = records[i].bits[static_cast<int>(k)];
      } else {
        write_sized(records, k, out);
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

  // A kind at other sizes: up to 64 bits a uint64 scalar (the big-endian integer), else its
  // ceil(bits / 8) bytes (HashRecord::wide); zeros for a failed record.
  void write_sized(const std::vector<mmcore::HashRecord>& records, mmcore::HashKind k,
                   dali::TensorList<dali::CPUBackend>& out) const {
    const int n = static_cast<int>(records.size());
    const int bits = mmcore::hash_bit_count(k, request_);
    const int64_t bytes = (bits + 7) / 8;
    if (bits <= 64) {
      out.Resize(dali::uniform_list_shape(n, dali::TensorShape<>{}), DALI_UINT64);
      for (int i = 0; i < n; ++i) {
        uint64_t v = 0;
        for (uint8_t b : records[i].wide[static_cast<int>(k)]) v = v << 8 | b;
        *out.mutable_tensor<uint64_t>(i) = v;
      }
      return;
    }
    out.Resize(dali::uniform_list_shape(n, dali::TensorShape<>{bytes}), DALI_UINT8);
    for (int i = 0; i < n; ++i) {
      const std::vector<uint8_t>& w = records[i].wide[static_cast<int>(k)];
      uint8_t* dst = out.mutable_tensor<uint8_t>(i);
      if (static_cast<int64_t>(w.size()) == bytes) {
        std::memcpy(dst, w.data(), static_cast<size_t>(bytes));
      } else {
        std::memset(dst, 0, static_cast<size_t>(bytes));
      }
    }
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

Outputs: one per entry of ``kinds`` (uint64 scalar, imagehash bit order; pdq: 32 uint8; a kind at
other sizes over 64 bits: ceil(bits / 8) uint8, the hash as one big-endian integer), then
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
                    std::string("exact"))
    .AddOptionalArg("hash_size",
                    R"(imagehash's hash_size for ahash, dhash, dhash_vertical, phash, phash_simple, whash
(2..64; a power of 2 for whash): hash_size^2 bits. CPU only.)",
                    8)
    .AddOptionalArg("highfreq_factor", "imagehash's highfreq_factor for phash and phash_simple. CPU only.", 4)
    .AddOptionalArg("binbits", "imagehash's binbits for colorhash (1..16): 14 x binbits bits. CPU only.", 3);

}  // namespace dali
