// MmcoreHash on the GPU (fn.mmcore_hash(images.gpu(), device="gpu")): the same outputs as the CPU
// operator (mmcore_hash.cc) for the kinds the GPU computes (ahash, dhash, dhash_vertical, phash,
// phash_simple, pdq; exact mode), computed by mmcore::HashGpu, whose kernels give the CPU's exact
// bits. Every output is a GPU tensor.
//
// The samples stay where DALI put them: HashGpu reads them through descriptors relative to the
// lowest sample address. Order: the operator waits for DALI's stream (the samples are ready), runs
// HashGpu (its own stream, synchronised on return), then copies each sample's results into the
// outputs on DALI's stream. An empty sample (a failed decode) gets zeros and status CORRUPT, as on
// the CPU; a CUDA failure of the whole batch is a DALI error (not a bad sample).
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "../cuda/cuda_util.cuh"
#include "common.h"
#include "hash_args.h"
#include "mmcore/hash_gpu.h"

namespace mmcore_dali {

namespace {

void cuda_check(cudaError_t e, const char* what) {
  DALI_ENFORCE(e == cudaSuccess,
               std::string("mmcore_hash (gpu): ") + what + " failed: " + cudaGetErrorString(e));
}

/// `buffer` grown to `bytes` (waiting for `stream` first), or the DALI error that says why not.
void* reserve(mmcore::cuda_util::DeviceBuffer* buffer, std::size_t bytes, cudaStream_t stream) {
  mmcore::ErrorText e;
  DALI_ENFORCE(buffer->reserve(bytes, stream, &e) == mmcore::Status::kOk,
               std::string("mmcore_hash (gpu): ") + e.text);
  return buffer->ptr;
}

}  // namespace

class MmcoreHashGpu : public dali::Operator<dali::GPUBackend> {
 public:
  explicit MmcoreHashGpu(const dali::OpSpec& spec)
      : dali::Operator<dali::GPUBackend>(spec),
        kinds_(parse_kinds(spec)),
        device_(spec.GetArgument<int>("device_id")) {
    for (mmcore::HashKind k : kinds_) {
      DALI_ENFORCE(
          k != mmcore::HashKind::kWhash && k != mmcore::HashKind::kColorhash,
          "mmcore_hash (gpu): the GPU computes ahash, dhash, dhash_vertical, phash, phash_simple and "
          "pdq; hash whash / colorhash with the CPU operator");
      if (k != mmcore::HashKind::kPdq) mask_ |= 1u << static_cast<int>(k);
    }
    const std::string mode = spec.GetArgument<std::string>("mode");
    DALI_ENFORCE(mode == "exact",
                 "mmcore_hash (gpu): mode must be \"exact\" on the GPU, got \"" + mode + "\"");
    DALI_ENFORCE(spec.GetArgument<int>("hash_size") == 8 && spec.GetArgument<int>("highfreq_factor") == 4 &&
                     spec.GetArgument<int>("binbits") == 3,
                 "mmcore_hash (gpu): the GPU hashes at imagehash's default sizes (hash_size 8, "
                 "highfreq_factor 4); other sizes with the CPU operator");
  }

 protected:
  bool SetupImpl(std::vector<dali::OutputDesc>&, const dali::Workspace&) override {
    return false;  // every output is sized in RunImpl (the messages' lengths are known only then)
  }

  void RunImpl(dali::Workspace& ws) override {
    const auto& in = ws.Input<dali::GPUBackend>(0);
    const int ndim = image_dims(in);
    const int n = in.num_samples();
    if (!ready_) {
      mmcore::ErrorText e;
      DALI_ENFORCE(gpu_.init(device_, &e) == mmcore::Status::kOk,
                   std::string("mmcore_hash (gpu): ") + e.text);
      ready_ = true;
    }
    // The samples that have pixels, as descriptors relative to the lowest address.
    std::vector<Outcome> outcomes(n);
    std::vector<int> rows;  // sample of each descriptor
    std::vector<mmcore::GpuImage> desc;
    const std::uint8_t* base = nullptr;
    for (int i = 0; i < n; ++i) {
      const dali::TensorShape<>& s = in.tensor_shape(i);
      const int64_t h = s[0], w = s[1], c = ndim == 3 ? s[2] : 1;
      if (h <= 0 || w <= 0 || (c != 1 && c != 3 && c != 4) || h > INT32_MAX || w > INT32_MAX) {
        outcomes[i].status = h <= 0 || w <= 0 ? mmcore::Status::kCorrupt : mmcore::Status::kUnsupported;
        outcomes[i].error.set(
            "hash: unusable image %lldx%lldx%lld (nothing was decoded, or not 1 / 3 / 4 channels)",
            static_cast<long long>(w), static_cast<long long>(h), static_cast<long long>(c));
        continue;
      }
      const std::uint8_t* p = in.tensor<uint8_t>(i);
      if (base == nullptr || p < base) base = p;
      rows.push_back(i);
    }
    std::int64_t extent = 0;
    for (int i : rows) {
      const dali::TensorShape<>& s = in.tensor_shape(i);
      mmcore::GpuImage g;
      g.width = static_cast<int32_t>(s[1]);
      g.height = static_cast<int32_t>(s[0]);
      g.channels = static_cast<int32_t>(ndim == 3 ? s[2] : 1);
      g.stride = static_cast<int64_t>(g.width) * g.channels;
      g.offset = in.tensor<uint8_t>(i) - base;
      extent = std::max(extent, g.offset + g.stride * g.height);
      desc.push_back(g);
    }
    const int m = static_cast<int>(desc.size());
    const bool pdq = has_pdq(kinds_);
    const std::size_t slots = static_cast<std::size_t>(std::max(m, 1));
    auto* bits = static_cast<uint64_t*>(
        reserve(&bits_, sizeof(uint64_t) * mmcore::kGpuHashColumns * slots, ws.stream()));
    auto* pdq_bytes = static_cast<uint8_t*>(reserve(&pdq_, 32 * slots, ws.stream()));
    auto* quality = static_cast<int32_t*>(reserve(&quality_, sizeof(int32_t) * slots, ws.stream()));
    if (m > 0) {
      cuda_check(cudaStreamSynchronize(ws.stream()), "cudaStreamSynchronize");  // the samples are ready
      std::vector<mmcore::Status> st(m, mmcore::Status::kOk);
      mmcore::ErrorText e;
      if (mask_ != 0) {
        const mmcore::Status s = gpu_.hash_batch(base, extent, desc.data(), m, mask_, bits, st.data(), &e);
        DALI_ENFORCE(s == mmcore::Status::kOk, std::string("mmcore_hash (gpu): ") + e.text);
      }
      if (pdq) {
        std::vector<mmcore::Status> st2(m, mmcore::Status::kOk);
        const mmcore::Status s =
            gpu_.pdq_batch(base, extent, desc.data(), m, pdq_bytes, quality, st2.data(), &e);
        DALI_ENFORCE(s == mmcore::Status::kOk, std::string("mmcore_hash (gpu): ") + e.text);
        for (int j = 0; j < m; ++j) st[j] = std::max(st[j], st2[j]);
      }
      for (int j = 0; j < m; ++j) {
        if (st[j] != mmcore::Status::kOk) {
          outcomes[rows[j]].status = st[j];
          outcomes[rows[j]].error.set("hash: the GPU kernels refused this image's layout");
        }
      }
    }
    std::vector<int> slot(n, -1);  // sample -> descriptor, -1: zeros
    for (int j = 0; j < m; ++j)
      if (outcomes[rows[j]].status == mmcore::Status::kOk) slot[rows[j]] = j;

    cudaStream_t stream = ws.stream();
    int o = 0;
    for (mmcore::HashKind k : kinds_) {
      auto& out = ws.Output<dali::GPUBackend>(o++);
      const bool is_pdq = k == mmcore::HashKind::kPdq;
      const std::size_t bytes = is_pdq ? 32 : sizeof(uint64_t);
      out.Resize(dali::uniform_list_shape(n, is_pdq ? dali::TensorShape<>{32} : dali::TensorShape<>{}),
                 is_pdq ? DALI_UINT8 : DALI_UINT64);
      for (int i = 0; i < n; ++i) {
        void* dst = is_pdq ? static_cast<void*>(out.mutable_tensor<uint8_t>(i))
                           : static_cast<void*>(out.mutable_tensor<uint64_t>(i));
        if (slot[i] < 0) {
          cuda_check(cudaMemsetAsync(dst, 0, bytes, stream), "cudaMemsetAsync");
        } else if (is_pdq) {
          cuda_check(cudaMemcpyAsync(dst, pdq_bytes + 32 * slot[i], 32, cudaMemcpyDeviceToDevice, stream),
                     "cudaMemcpyAsync");
        } else {
          const uint64_t* src = bits + static_cast<std::size_t>(k) * m + slot[i];
          cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream), "cudaMemcpyAsync");
        }
      }
    }
    if (pdq) {
      auto& out = ws.Output<dali::GPUBackend>(o++);
      out.Resize(dali::uniform_list_shape(n, dali::TensorShape<>{}), DALI_INT32);
      for (int i = 0; i < n; ++i) {
        int32_t* dst = out.mutable_tensor<int32_t>(i);
        if (slot[i] < 0) {
          cuda_check(cudaMemsetAsync(dst, 0, sizeof(int32_t), stream), "cudaMemsetAsync");
        } else {
          cuda_check(
              cudaMemcpyAsync(dst, quality + slot[i], sizeof(int32_t), cudaMemcpyDeviceToDevice, stream),
              "cudaMemcpyAsync");
        }
      }
    }
    // Status and message: made on the host, copied (a pageable copy is staged before it returns).
    auto& status = ws.Output<dali::GPUBackend>(o);
    auto& error = ws.Output<dali::GPUBackend>(o + 1);
    status.Resize(dali::uniform_list_shape(n, dali::TensorShape<>{}), DALI_UINT8);
    dali::TensorListShape<> error_shape(n, 1);
    for (int i = 0; i < n; ++i)
      error_shape.set_tensor_shape(
          i, dali::TensorShape<>{static_cast<int64_t>(std::strlen(outcomes[i].error.text))});
    error.Resize(error_shape, DALI_UINT8);
    for (int i = 0; i < n; ++i) {
      const auto code = static_cast<uint8_t>(outcomes[i].status);
      cuda_check(cudaMemcpyAsync(status.mutable_tensor<uint8_t>(i), &code, 1, cudaMemcpyHostToDevice, stream),
                 "cudaMemcpyAsync");
      const std::size_t len = std::strlen(outcomes[i].error.text);
      if (len > 0)
        cuda_check(cudaMemcpyAsync(error.mutable_tensor<uint8_t>(i), outcomes[i].error.text, len,
                                   cudaMemcpyHostToDevice, stream),
                   "cudaMemcpyAsync");
    }
    // The host sources of those copies (code, outcomes) end with this call: wait for them.
    cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  }

 private:
  std::vector<mmcore::HashKind> kinds_;
  std::uint32_t mask_ = 0;
  int device_;
  bool ready_ = false;
  mmcore::HashGpu gpu_;
  mmcore::cuda_util::DeviceBuffer bits_, pdq_, quality_;

 public:
  ~MmcoreHashGpu() override {
    bits_.release();
    pdq_.release();
    quality_.release();
  }
};

}  // namespace mmcore_dali

namespace dali {

DALI_REGISTER_OPERATOR(MmcoreHash, ::mmcore_dali::MmcoreHashGpu, GPU);

}  // namespace dali
