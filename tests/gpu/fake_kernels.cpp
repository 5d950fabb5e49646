// SearchGpu and ResizeGpu on the CPU for the emulated run of tests/gpu/kernel_check.cu (CMake
// target mmcore_kernel_check_emulated): the same argument checks as cuda/quant.cu, cuda/hamming.cu
// and cuda/resize.cu, then the emulators' run of the kernels' code and schedule
// (tests/gpu/search_emulator.h, resize_emulator.h). "Device" memory is
// host memory (tests/gpu/fake_device.cpp supplies the runtime calls), so search_check's own logic
// (data, comparisons, contract, report, bench loop) runs end to end before it is carried to a GPU
// host by bench/gpu_check_prepare.sh.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "mmcore/resize_gpu.h"
#include "mmcore/search_gpu.h"
#include "resize_emulator.h"
#include "search_emulator.h"

namespace mmcore {

struct SearchGpu::Impl {
  bool ready = false;
  mmcore_test::SearchEmu emu;
};

SearchGpu::SearchGpu() : impl_(new Impl) {}
SearchGpu::~SearchGpu() {
  delete impl_;
}
void* SearchGpu::stream() const {
  return nullptr;
}
Status SearchGpu::init(std::int32_t device, ErrorText* error) {
  if (device != 0) {
    error->set("no CUDA device %d (CPU emulation has one)", device);
    return Status::kDevice;
  }
  impl_->ready = true;
  impl_->emu.reverse = true;                                  // the thread order that exposes races
  const char* filter = std::getenv("MMCORE_GPU_KNN_FILTER");  // as cuda/topk.cu's init
  impl_->emu.knn_filter_on = filter == nullptr || std::strcmp(filter, "0") != 0;
  const char* knn_mma = std::getenv("MMCORE_GPU_KNN_MMA");
  impl_->emu.knn_mma_on = knn_mma == nullptr || std::strcmp(knn_mma, "0") != 0;
  return Status::kOk;
}

namespace {
bool refuse(bool ready, const char* fn, const char* problem, ErrorText* error) {
  if (!ready) {
    error->set("SearchGpu::%s: call init() first", fn);
    return true;
  }
  if (problem == nullptr) return false;
  error->set("SearchGpu::%s: %s", fn, problem);
  return true;
}
}  // namespace

Status SearchGpu::int8_topk(const std::uint8_t* codes, std::int64_t n, std::int32_t d,
                            const std::int8_t* queries, std::int64_t nq, std::int32_t k, std::int32_t* scores,
                            std::int64_t* idx, ErrorText* error) {
  if (refuse(impl_->ready, "int8_topk",
             gpu_detail::search_args_problem(false, codes, n, d, queries, nq, k, true, scores, idx), error))
    return Status::kUnsupported;
  impl_->emu.int8_topk(codes, n, d, queries, nq, k, scores, idx);
  return Status::kOk;
}

Status SearchGpu::int8_scores(const std::uint8_t* codes, std::int64_t n, std::int32_t d,
                              const std::int8_t* queries, std::int64_t nq, std::int32_t* out,
                              ErrorText* error) {
  if (refuse(impl_->ready, "int8_scores",
             gpu_detail::search_args_problem(false, codes, n, d, queries, nq, 1, false, out, out), error))
    return Status::kUnsupported;
  std::vector<std::int32_t> qsum(static_cast<std::size_t>(nq));
  for (std::int64_t q = 0; q < nq; ++q) qsum[q] = gpu_detail::query_sum(queries + q * d, d);
  impl_->emu.int8_scores(codes, n, d, queries, nq, qsum.data(), out, n);
  return Status::kOk;
}

Status SearchGpu::hamming_distances(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                                    const std::uint64_t* queries, std::int64_t nq, std::int32_t* out,
                                    ErrorText* error) {
  if (refuse(impl_->ready, "hamming_distances",
             gpu_detail::search_args_problem(true, codes, n, words, queries, nq, 1, false, out, out), error))
    return Status::kUnsupported;
  impl_->emu.binary_scores(codes, n, words, queries, nq, out, n);
  for (std::int64_t i = 0; i < n * nq; ++i) out[i] = -out[i];  // the kernel's distances flag
  return Status::kOk;
}

Status SearchGpu::hamming_knn(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                              const std::uint64_t* queries, std::int64_t nq, std::int32_t k,
                              std::int32_t* dist, std::int64_t* idx, ErrorText* error) {
  if (refuse(impl_->ready, "hamming_knn",
             gpu_detail::search_args_problem(true, codes, n, words, queries, nq, k, true, dist, idx), error))
    return Status::kUnsupported;
  impl_->emu.hamming_knn(codes, n, words, queries, nq, k, dist, idx);
  return Status::kOk;
}

Status SearchGpu::hamming_join(const std::uint64_t* codes, std::int64_t n, std::int32_t words, std::int32_t r,
                               std::int64_t* first, std::int64_t* second, std::int32_t* dist,
                               std::int64_t capacity, std::int64_t* count, ErrorText* error,
                               HammingMethod method) {
  const char* problem = gpu_detail::pairs_args_problem(true, codes, n, words, nullptr, 0, r, nullptr, first,
                                                       second, dist, capacity, count);
  if (problem == nullptr) problem = gpu_detail::join_method_problem(words, static_cast<int>(method));
  if (refuse(impl_->ready, "hamming_join", problem, error)) return Status::kUnsupported;
  std::vector<std::int64_t> a, b;
  std::vector<std::int32_t> d;
  impl_->emu.hamming_join(codes, n, words, r, &a, &b, &d, static_cast<int>(method));
  *count = static_cast<std::int64_t>(a.size());
  if (*count == 0 || capacity < *count) return Status::kOk;
  std::copy(a.begin(), a.end(), first);
  std::copy(b.begin(), b.end(), second);
  std::copy(d.begin(), d.end(), dist);
  return Status::kOk;
}

Status SearchGpu::hamming_radius(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                                 const std::uint64_t* queries, std::int64_t nq, std::int32_t r,
                                 std::int64_t* lims, std::int64_t* ids, std::int32_t* dist,
                                 std::int64_t capacity, std::int64_t* count, ErrorText* error,
                                 HammingMethod method) {
  const char* problem = gpu_detail::pairs_args_problem(false, codes, n, words, queries, nq, r, lims, nullptr,
                                                       ids, dist, capacity, count);
  if (problem == nullptr) problem = gpu_detail::join_method_problem(words, static_cast<int>(method));
  if (refuse(impl_->ready, "hamming_radius", problem, error)) return Status::kUnsupported;
  std::vector<std::int64_t> l, i;
  std::vector<std::int32_t> d;
  impl_->emu.hamming_radius(codes, n, words, queries, nq, r, &l, &i, &d, static_cast<int>(method));
  std::copy(l.begin(), l.end(), lims);
  *count = static_cast<std::int64_t>(i.size());
  if (*count == 0 || capacity < *count) return Status::kOk;
  std::copy(i.begin(), i.end(), ids);
  std::copy(d.begin(), d.end(), dist);
  return Status::kOk;
}

struct ResizeGpu::Impl {
  bool ready = false;
  gpu_detail::ResizePlanner planner;
};

ResizeGpu::ResizeGpu() : impl_(new Impl) {}
ResizeGpu::~ResizeGpu() {
  delete impl_;
}
void* ResizeGpu::stream() const {
  return nullptr;
}
Status ResizeGpu::init(std::int32_t device, ErrorText* error) {
  if (device != 0) {
    error->set("no CUDA device %d (CPU emulation has one)", device);
    return Status::kDevice;
  }
  impl_->ready = true;
  return Status::kOk;
}

Status ResizeGpu::resize_batch(const std::uint8_t* pixels, std::int64_t pixel_bytes, const GpuImage* src,
                               std::int32_t count, std::uint8_t* out, std::int64_t out_bytes,
                               const GpuImage* dst, Filter filter, Status* statuses, ErrorText* error) {
  if (!impl_->ready) {
    error->set("ResizeGpu::resize_batch: call init() first");
    return Status::kUnsupported;
  }
  if (const char* problem =
          gpu_detail::resize_batch_problem(count, pixels, src, out, dst, statuses, filter)) {
    error->set("ResizeGpu::resize_batch: %s", problem);
    return Status::kUnsupported;
  }
  impl_->planner.plan(src, dst, count, pixel_bytes, out_bytes, filter, statuses);
  mmcore_test::emulate_resize(impl_->planner, count, pixels, out);
  return Status::kOk;
}

}  // namespace mmcore
