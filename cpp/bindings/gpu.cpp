// Thin bindings of the GPU classes (HashGpu, ResizeGpu, SearchGpu, DecodeGpu) for mmcore/gpu.py:
// device memory comes in and out as integer pointers (mmcore/gpu.py takes them from
// __cuda_array_interface__ and allocates the outputs with cupy), descriptors as int64 numpy
// arrays; validate -> release the GIL -> call. A refused argument is ValueError, a failed call
// RuntimeError("<STATUS>: <reason>"), which mmcore/gpu.py turns into mmcore.DeviceError.
#include "gpu.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "mmcore/decode.h"
#include "mmcore/decode_gpu.h"
#include "mmcore/hash_gpu.h"
#include "mmcore/resize_gpu.h"
#include "mmcore/search_gpu.h"

namespace py = pybind11;

namespace mmcore {
namespace {

using I64Array = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;
using U8Out = py::array_t<std::uint8_t>;

constexpr int kDescColumns = 5;  ///< offset, stride, width, height, channels

const char* status_name(Status s) {
  switch (s) {
    case Status::kOk: return "OK";
    case Status::kOkWarning: return "OK_WARNING";
    case Status::kCorrupt: return "CORRUPT";
    case Status::kUnsupported: return "UNSUPPORTED";
    case Status::kTooLarge: return "TOO_LARGE";
    case Status::kNoMemory: return "NO_MEMORY";
    default: return "DEVICE";
  }
}

/// kOk passes; kUnsupported (an argument the kernel refused) is ValueError; anything else
/// RuntimeError("<STATUS>: <reason>").
void check(Status s, const ErrorText& e) {
  if (s == Status::kOk) return;
  if (s == Status::kUnsupported) throw py::value_error(e.text);
  throw std::runtime_error(std::string(status_name(s)) + ": " + e.text);
}

std::vector<GpuImage> descs_from(const I64Array& a, const char* what) {
  if (a.ndim() != 2 || a.shape(1) != kDescColumns)
    throw py::value_error(std::string(what) + ": descriptors must be an (N, 5) int64 array");
  std::vector<GpuImage> out(static_cast<std::size_t>(a.shape(0)));
  const std::int64_t* p = a.data();
  for (std::size_t i = 0; i < out.size(); ++i, p += kDescColumns) {
    out[i].offset = p[0];
    out[i].stride = p[1];
    out[i].width = static_cast<std::int32_t>(p[2]);
    out[i].height = static_cast<std::int32_t>(p[3]);
    out[i].channels = static_cast<std::int32_t>(p[4]);
  }
  return out;
}

U8Out statuses_out(const std::vector<Status>& s) {
  U8Out out(static_cast<py::ssize_t>(s.size()));
  for (std::size_t i = 0; i < s.size(); ++i) out.mutable_data()[i] = static_cast<std::uint8_t>(s[i]);
  return out;
}

template <class T>
T* ptr(std::uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

/// Pointers and sizes of Python bytes objects (alive as long as the list is).
struct Blobs {
  std::vector<const std::uint8_t*> data;
  std::vector<std::size_t> sizes;
  explicit Blobs(const std::vector<py::bytes>& srcs) : data(srcs.size()), sizes(srcs.size()) {
    for (std::size_t i = 0; i < srcs.size(); ++i) {
      char* p = nullptr;
      py::ssize_t len = 0;
      PyBytes_AsStringAndSize(srcs[i].ptr(), &p, &len);
      data[i] = reinterpret_cast<const std::uint8_t*>(p);
      sizes[i] = static_cast<std::size_t>(len);
    }
  }
};

/// Creates and initialises *p on first use (kOk when it exists).
template <class T>
Status lazy(std::unique_ptr<T>* p, int device, ErrorText* e) {
  if (*p) return Status::kOk;
  *p = std::make_unique<T>();
  const Status s = (*p)->init(device, e);
  if (s != Status::kOk) p->reset();
  return s;
}

/// Runs fn(&error) -> Status without the GIL, then raises what check() raises.
template <class F>
void nogil_call(F&& fn) {
  ErrorText e;
  Status s;
  {
    py::gil_scoped_release nogil;
    s = fn(&e);
  }
  check(s, e);
}

/// One device's GPU objects, created on first use (nvJPEG may be absent while the rest works).
class GpuContext {
 public:
  explicit GpuContext(int device) : device_(device) {
    ErrorText e;
    // HashGpu's init names the device and why it cannot be used (no driver, no device).
    check(hash_.init(device, &e), e);
  }

  int device() const { return device_; }

  U8Out hash(std::uintptr_t pixels, std::int64_t pixel_bytes, const I64Array& descs, std::uint32_t kinds,
             std::uintptr_t out) {
    const std::vector<GpuImage> d = descs_from(descs, "hash");
    std::vector<Status> st(d.size(), Status::kDevice);
    nogil_call([&](ErrorText* e) {
      return hash_.hash_batch(ptr<const std::uint8_t>(pixels), pixel_bytes, d.data(),
                              static_cast<std::int32_t>(d.size()), kinds, ptr<std::uint64_t>(out), st.data(),
                              e);
    });
    return statuses_out(st);
  }

  U8Out pdq(std::uintptr_t pixels, std::int64_t pixel_bytes, const I64Array& descs, std::uintptr_t hashes,
            std::uintptr_t quality) {
    const std::vector<GpuImage> d = descs_from(descs, "pdq");
    std::vector<Status> st(d.size(), Status::kDevice);
    nogil_call([&](ErrorText* e) {
      return hash_.pdq_batch(ptr<const std::uint8_t>(pixels), pixel_bytes, d.data(),
                             static_cast<std::int32_t>(d.size()), ptr<std::uint8_t>(hashes),
                             ptr<std::int32_t>(quality), st.data(), e);
    });
    return statuses_out(st);
  }

  U8Out resize(std::uintptr_t pixels, std::int64_t pixel_bytes, const I64Array& src, std::uintptr_t out,
               std::int64_t out_bytes, const I64Array& dst, int filter) {
    const std::vector<GpuImage> s_desc = descs_from(src, "resize");
    const std::vector<GpuImage> d_desc = descs_from(dst, "resize");
    if (s_desc.size() != d_desc.size()) throw py::value_error("resize: as many destinations as sources");
    if (filter < 0 || filter > static_cast<int>(Filter::kLanczos3))
      throw py::value_error("resize: unknown filter");
    std::vector<Status> st(s_desc.size(), Status::kDevice);
    nogil_call([&](ErrorText* e) {
      const Status s = lazy(&resize_, device_, e);
      if (s != Status::kOk) return s;
      return resize_->resize_batch(ptr<const std::uint8_t>(pixels), pixel_bytes, s_desc.data(),
                                   static_cast<std::int32_t>(s_desc.size()), ptr<std::uint8_t>(out),
                                   out_bytes, d_desc.data(), static_cast<Filter>(filter), st.data(), e);
    });
    return statuses_out(st);
  }

  void int8_topk(std::uintptr_t codes, std::int64_t n, std::int32_t d, std::uintptr_t queries,
                 std::int64_t nq, std::int32_t k, std::uintptr_t scores, std::uintptr_t idx) {
    nogil_call([&](ErrorText* e) {
      const Status s = lazy(&search_, device_, e);
      if (s != Status::kOk) return s;
      return search_->int8_topk(ptr<const std::uint8_t>(codes), n, d, ptr<const std::int8_t>(queries), nq, k,
                                ptr<std::int32_t>(scores), ptr<std::int64_t>(idx), e);
    });
  }

  void hamming_knn(std::uintptr_t codes, std::int64_t n, std::int32_t words, std::uintptr_t queries,
                   std::int64_t nq, std::int32_t k, std::uintptr_t dist, std::uintptr_t idx) {
    nogil_call([&](ErrorText* e) {
      const Status s = lazy(&search_, device_, e);
      if (s != Status::kOk) return s;
      return search_->hamming_knn(ptr<const std::uint64_t>(codes), n, words,
                                  ptr<const std::uint64_t>(queries), nq, k, ptr<std::int32_t>(dist),
                                  ptr<std::int64_t>(idx), e);
    });
  }

  /// Pairs within r: their count; written to first / second / dist when capacity >= the count.
  /// method: 0 auto, 1 brute force, 2 multi-index hashing (HammingMethod's values).
  std::int64_t hamming_join(std::uintptr_t codes, std::int64_t n, std::int32_t words, std::int32_t r,
                            std::uintptr_t first, std::uintptr_t second, std::uintptr_t dist,
                            std::int64_t capacity, std::int32_t method) {
    std::int64_t count = 0;
    nogil_call([&](ErrorText* e) {
      const Status s = lazy(&search_, device_, e);
      if (s != Status::kOk) return s;
      return search_->hamming_join(ptr<const std::uint64_t>(codes), n, words, r, ptr<std::int64_t>(first),
                                   ptr<std::int64_t>(second), ptr<std::int32_t>(dist), capacity, &count, e,
                                   static_cast<HammingMethod>(method < 0 || method > 2 ? 255 : method));
    });
    return count;
  }

  /// Radius search: lims written; the result count; ids / dist written when capacity >= it.
  /// method as for hamming_join.
  std::int64_t hamming_radius(std::uintptr_t codes, std::int64_t n, std::int32_t words,
                              std::uintptr_t queries, std::int64_t nq, std::int32_t r, std::uintptr_t lims,
                              std::uintptr_t ids, std::uintptr_t dist, std::int64_t capacity,
                              std::int32_t method) {
    std::int64_t count = 0;
    nogil_call([&](ErrorText* e) {
      const Status s = lazy(&search_, device_, e);
      if (s != Status::kOk) return s;
      return search_->hamming_radius(ptr<const std::uint64_t>(codes), n, words,
                                     ptr<const std::uint64_t>(queries), nq, r, ptr<std::int64_t>(lims),
                                     ptr<std::int64_t>(ids), ptr<std::int32_t>(dist), capacity, &count, e,
                                     static_cast<HammingMethod>(method < 0 || method > 2 ? 255 : method));
    });
    return count;
  }

  /// JPEGs -> pixels at `pixels` (laid out by decode_plan's descriptors); statuses and messages of
  /// the plan, updated; the counts of what decoded where.
  py::tuple decode(const std::vector<py::bytes>& srcs, const I64Array& descs,
                   const py::array_t<std::uint8_t>& plan_st, std::vector<std::string> messages,
                   std::uintptr_t pixels, std::int64_t pixel_bytes, double cpu_share, std::int32_t threads) {
    const std::vector<GpuImage> d = descs_from(descs, "decode");
    if (d.size() != srcs.size() || static_cast<std::size_t>(plan_st.size()) != srcs.size() ||
        messages.size() != srcs.size())
      throw py::value_error("decode: the plan's arrays must have one entry per source");
    const Blobs blobs(srcs);
    std::vector<Status> st(srcs.size());
    std::vector<ErrorText> msg(srcs.size());
    for (std::size_t i = 0; i < srcs.size(); ++i) {
      st[i] = static_cast<Status>(plan_st.data()[i]);
      msg[i].set("%s", messages[i].c_str());
    }
    ErrorText e;
    DecodeGpuStats stats;
    Status s;
    {
      py::gil_scoped_release nogil;
      s = lazy(&decode_, device_, &e);
      if (s == Status::kOk) {
        decode_->set_cpu_share(cpu_share);
        decode_->set_host_threads(threads);
      }
      if (s == Status::kOk)
        s = decode_->decode(blobs.data.data(), blobs.sizes.data(), static_cast<std::int32_t>(srcs.size()),
                            d.data(), st.data(), msg.data(), ptr<std::uint8_t>(pixels), pixel_bytes, &e,
                            &stats);
    }
    check(s, e);
    std::vector<std::string> out_msg(srcs.size());
    for (std::size_t i = 0; i < srcs.size(); ++i) out_msg[i] = msg[i].text;
    py::dict counts;
    counts["hardware"] = stats.hardware;
    counts["fallback"] = stats.fallback;
    counts["cpu"] = stats.cpu;
    counts["failed"] = stats.failed;
    counts["hardware_available"] = stats.hardware_available;
    counts["cpu_share"] = stats.cpu_share;
    py::dict seconds;
    seconds["screen"] = stats.screen_seconds;
    seconds["hardware"] = stats.hardware_seconds;
    seconds["cpu"] = stats.cpu_seconds;
    seconds["fallback"] = stats.fallback_seconds;
    counts["seconds"] = seconds;
    return py::make_tuple(statuses_out(st), out_msg, counts);
  }

 private:
  int device_;
  HashGpu hash_;
  std::unique_ptr<ResizeGpu> resize_;
  std::unique_ptr<SearchGpu> search_;
  std::unique_ptr<DecodeGpu> decode_;
};

/// CPU only: each JPEG's record (RGB, rows packed, 256-byte aligned offsets) or its status.
py::tuple decode_plan(const std::vector<py::bytes>& srcs, std::int64_t max_pixels) {
  const Blobs blobs(srcs);
  std::vector<GpuImage> d(srcs.size());
  std::vector<Status> st(srcs.size());
  std::vector<ErrorText> msg(srcs.size());
  std::int64_t total = 0;
  {
    py::gil_scoped_release nogil;
    DecodeGpu::plan(blobs.data.data(), blobs.sizes.data(), static_cast<std::int32_t>(srcs.size()), max_pixels,
                    d.data(), st.data(), msg.data(), &total);
  }
  I64Array descs({static_cast<py::ssize_t>(d.size()), static_cast<py::ssize_t>(kDescColumns)});
  std::int64_t* p = descs.mutable_data();
  for (const GpuImage& g : d) {
    *p++ = g.offset;
    *p++ = g.stride;
    *p++ = g.width;
    *p++ = g.height;
    *p++ = g.channels;
  }
  std::vector<std::string> messages(srcs.size());
  for (std::size_t i = 0; i < srcs.size(); ++i) messages[i] = msg[i].text;
  return py::make_tuple(descs, statuses_out(st), messages, total);
}

}  // namespace

void bind_gpu(py::module_& m) {
  m.def("gpu_decode_plan", &decode_plan, py::arg("srcs"), py::arg("max_pixels"));
  py::class_<GpuContext>(m, "GpuContext")
      .def(py::init<int>(), py::arg("device"))
      .def_property_readonly("device", &GpuContext::device)
      .def("hash", &GpuContext::hash, py::arg("pixels"), py::arg("pixel_bytes"), py::arg("descs"),
           py::arg("kinds"), py::arg("out"))
      .def("pdq", &GpuContext::pdq, py::arg("pixels"), py::arg("pixel_bytes"), py::arg("descs"),
           py::arg("hashes"), py::arg("quality"))
      .def("resize", &GpuContext::resize, py::arg("pixels"), py::arg("pixel_bytes"), py::arg("src"),
           py::arg("out"), py::arg("out_bytes"), py::arg("dst"), py::arg("filter"))
      .def("int8_topk", &GpuContext::int8_topk, py::arg("codes"), py::arg("n"), py::arg("d"),
           py::arg("queries"), py::arg("nq"), py::arg("k"), py::arg("scores"), py::arg("idx"))
      .def("hamming_knn", &GpuContext::hamming_knn, py::arg("codes"), py::arg("n"), py::arg("words"),
           py::arg("queries"), py::arg("nq"), py::arg("k"), py::arg("dist"), py::arg("idx"))
      .def("hamming_join", &GpuContext::hamming_join, py::arg("codes"), py::arg("n"), py::arg("words"),
           py::arg("r"), py::arg("first"), py::arg("second"), py::arg("dist"), py::arg("capacity"),
           py::arg("method") = 0)
      .def("hamming_radius", &GpuContext::hamming_radius, py::arg("codes"), py::arg("n"), py::arg("words"),
           py::arg("queries"), py::arg("nq"), py::arg("r"), py::arg("lims"), py::arg("ids"), py::arg("dist"),
           py::arg("capacity"), py::arg("method") = 0)
      .def("decode", &GpuContext::decode, py::arg("srcs"), py::arg("descs"), py::arg("statuses"),
           py::arg("messages"), py::arg("pixels"), py::arg("pixel_bytes"), py::arg("cpu_share") = -1.0,
           py::arg("threads") = 0);
}

}  // namespace mmcore
