// The only PYBIND11_MODULE: validate arguments, take raw pointers, release the GIL, call C++ (the
// GPU classes are bound in cpp/bindings/gpu.cpp, registered from here).
// No algorithm lives here; ergonomics live in mmcore/*.py.
#include <fcntl.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "mmcore/backend.h"
#include "mmcore/decode.h"
#include "mmcore/encode.h"
#include "mmcore/hamming.h"
#include "mmcore/hash.h"
#include "mmcore/image.h"
#include "mmcore/parallel.h"
#include "mmcore/quant.h"
#include "mmcore/resize.h"
#include "mmcore/tar.h"

#ifdef MMCORE_HAVE_CUDA
#include "gpu.h"
#include "mmcore/cuda_probe.h"
#endif

namespace py = pybind11;
using namespace mmcore;

namespace {

// Whether a's dtype is T's, by numpy's equality: a pickled array, or one whose dtype names its
// byte order, carries an equal dtype that is another object (an identity test refuses it).
template <class T>
bool has_dtype(const py::array& a) {
  const py::dtype want = py::dtype::of<T>();
  return a.dtype().is(want) || PyObject_RichCompareBool(a.dtype().ptr(), want.ptr(), Py_EQ) == 1;
}

using U8Array = py::array_t<std::uint8_t, py::array::c_style | py::array::forcecast>;

// A 1-D numpy array over a malloc'ed buffer it now owns (freed with the array).
template <class T>
py::array_t<T> adopt(T*& data, std::int64_t n) {
  T* p = data;
  data = nullptr;
  py::capsule owner(p, [](void* q) { std::free(q); });
  return py::array_t<T>({static_cast<py::ssize_t>(n)}, {static_cast<py::ssize_t>(sizeof(T))}, p, owner);
}

// A str path as the file system's bytes (surrogate escapes back to the bytes os.listdir found),
// not strict UTF-8, which refuses a name in another encoding.
std::string fs_path(py::handle str) {
  const py::object b = py::reinterpret_steal<py::object>(PyUnicode_EncodeFSDefault(str.ptr()));
  if (!b) throw py::error_already_set();
  return std::string(PyBytes_AS_STRING(b.ptr()), static_cast<std::size_t>(PyBytes_GET_SIZE(b.ptr())));
}

// A path's bytes as UTF-8 text for messages: bytes that are not UTF-8 (a file name in another
// encoding) become \xNN, so that the message is a valid Python str.
std::string printable_path(const std::string& p) {
  std::string out;
  const auto* b = reinterpret_cast<const unsigned char*>(p.data());
  const std::size_t n = p.size();
  for (std::size_t i = 0; i < n;) {
    int len = b[i] < 0x80 ? 1 : (b[i] >> 5) == 0x6 ? 2 : (b[i] >> 4) == 0xe ? 3 : (b[i] >> 3) == 0x1e ? 4 : 0;
    for (int k = 1; k < len; ++k) {
      if (i + k >= n || (b[i + k] >> 6) != 0x2) len = 0;
    }
    if (len == 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", b[i]);
      out += hex;
      ++i;
    } else {
      out.append(p, i, static_cast<std::size_t>(len));
      i += static_cast<std::size_t>(len);
    }
  }
  return out;
}

// One input record: a contiguous byte buffer held by Python, or a path read by a worker.
struct Source {
  Py_buffer view{};
  bool has_view = false;
  std::string path;
  std::vector<std::uint8_t> file;  // filled by read() for paths
  bool is_image = false;           // bind_image(): `image` views decoded pixels
  bool missing = false;            // bind() in a batch: the source was None
  Status rejected = Status::kOk;   // bind_image(): an array no kernel takes (read() reports it)
  std::string rejection;
  ConstImageView image;

  Source() = default;
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;
  ~Source() {
    if (has_view) PyBuffer_Release(&view);
  }

  // With the GIL held: a C-contiguous uint8 HxW / HxWxC numpy array is a decoded image (the
  // hash functions accept one); anything else goes to bind(). Returns whether it took obj.
  bool bind_image(py::handle obj, std::size_t index) {
    if (!py::isinstance<py::array>(obj)) return false;
    py::array a = py::reinterpret_borrow<py::array>(obj);
    if (a.ndim() != 2 && a.ndim() != 3) return false;
    if (!has_dtype<std::uint8_t>(a))
      throw py::type_error("source " + std::to_string(index) + ": a decoded image must be uint8, got " +
                           std::string(py::str(a.dtype())));
    const py::ssize_t c = a.ndim() == 2 ? 1 : a.shape(2);
    if (!(a.flags() & py::array::c_style))
      throw py::value_error("source " + std::to_string(index) + ": the image array must be C-contiguous");
    // A shape no kernel takes is a record status (a batch goes on), like an empty array.
    if (c != 1 && c != 3 && c != 4) {
      rejected = Status::kUnsupported;
      rejection = "a decoded image must be HxW, HxWx3 or HxWx4, got " + std::to_string(c) + " channels" +
                  (c == 2 ? " (grey + alpha: pass a[..., 0])" : "");
      return true;
    }
    constexpr py::ssize_t kMaxSide = std::numeric_limits<std::int32_t>::max();
    if (a.shape(0) > kMaxSide || a.shape(1) > kMaxSide) {
      rejected = Status::kTooLarge;
      rejection = "a decoded image of " + std::to_string(a.shape(0)) + "x" + std::to_string(a.shape(1)) +
                  " pixels: a side is over 2^31 - 1";
      return true;
    }
    if (PyObject_GetBuffer(obj.ptr(), &view, PyBUF_C_CONTIGUOUS) != 0) throw py::error_already_set();
    has_view = true;
    image = ConstImageView(static_cast<const std::uint8_t*>(view.buf), static_cast<std::int32_t>(a.shape(1)),
                           static_cast<std::int32_t>(a.shape(0)), static_cast<std::int32_t>(c),
                           static_cast<std::int64_t>(a.shape(1)) * c);
    is_image = true;
    return true;
  }

  // With the GIL held. Throws TypeError for an unusable object (misuse, not bad data); in a batch
  // (`in_batch`) None is a record without data, which read() reports, as encode_batch does.
  void bind(py::handle obj, std::size_t index, bool in_batch = false) {
    if (in_batch && obj.is_none()) {
      missing = true;
      return;
    }
    if (py::isinstance<py::str>(obj)) {
      path = fs_path(obj);
      return;
    }
    if (PyObject_CheckBuffer(obj.ptr()) && PyObject_GetBuffer(obj.ptr(), &view, PyBUF_C_CONTIGUOUS) == 0) {
      has_view = true;
      return;
    }
    PyErr_Clear();
    throw py::type_error("source " + std::to_string(index) +
                         ": expected bytes, a contiguous uint8 buffer or a path (str), got " +
                         std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  }

  // Without the GIL. For paths, reads the file; an unreadable file is a record status.
  Status read(ErrorText* error) {
    if (rejected != Status::kOk) {
      error->set("%s", rejection.c_str());
      return rejected;
    }
    if (missing) {
      error->set("no data: the source is None");
      return Status::kCorrupt;
    }
    if (path.empty()) return Status::kOk;
    const std::string shown = printable_path(path);
    if (path.find('\0') != std::string::npos) {  // fopen would open the path cut at the NUL
      error->set("cannot open %s: the path contains a NUL byte", shown.c_str());
      return Status::kCorrupt;
    }
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer (forever, with no
    // GIL to interrupt it); the type is checked on the open descriptor. A regular file's reads
    // ignore the flag.
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      error->set("cannot open %s: %s", shown.c_str(), std::strerror(errno));
      return Status::kCorrupt;
    }
    struct stat st{};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {  // a folder, a FIFO, /dev/zero
      error->set("cannot read %s: not a regular file", shown.c_str());
      ::close(fd);
      return Status::kCorrupt;
    }
    std::FILE* f = fdopen(fd, "rb");
    if (f == nullptr) {
      error->set("cannot open %s: %s", shown.c_str(), std::strerror(errno));
      ::close(fd);
      return Status::kCorrupt;
    }
    Status s = Status::kOk;
    try {
      // The first bytes decide: a file with no image signature (a stray video, an archive) is
      // refused without reading the rest, which once cost 15 s and 4 GB for a 4 GB file.
      std::uint8_t head[64];
      const std::size_t got = std::fread(head, 1, sizeof head, f);
      if (got > 0 && detect_format(head, got) == ImageFormat::kUnknown && !std::ferror(f)) {
        ImageInfo info;  // a known other format (HEIC, TIFF...) is UNSUPPORTED, with its name
        const bool other = decode_info(head, got, DecodeOptions{}, &info, error) == Status::kUnsupported;
        if (!other)
          error->set("not a %s image (unrecognised signature, %lld bytes)", kDecodedFormats,
                     static_cast<long long>(st.st_size));
        std::fclose(f);
        return other ? Status::kUnsupported : Status::kCorrupt;
      }
      if (st.st_size > 0) file.reserve(static_cast<std::size_t>(st.st_size));
      file.assign(head, head + got);
      std::uint8_t chunk[1 << 16];
      std::size_t n;
      while (got == sizeof head && (n = std::fread(chunk, 1, sizeof chunk, f)) > 0)
        file.insert(file.end(), chunk, chunk + n);
      if (std::ferror(f)) {
        error->set("error reading %s: %s", shown.c_str(), std::strerror(errno));
        s = Status::kCorrupt;
      }
    } catch (const std::bad_alloc&) {
      error->set("out of memory reading %s", shown.c_str());
      s = Status::kNoMemory;
    }
    std::fclose(f);
    return s;
  }

  const std::uint8_t* data() const {
    return has_view ? static_cast<const std::uint8_t*>(view.buf) : file.data();
  }
  std::size_t size() const { return has_view ? static_cast<std::size_t>(view.len) : file.size(); }
  void drop_file() { std::vector<std::uint8_t>().swap(file); }
};

struct Options {
  ThumbnailOptions thumb;
  bool is_thumbnail = false;
};

Options make_options(int pixel, bool exif, std::int64_t max_pixels, bool fast) {
  if (pixel < 0 || pixel > 2) throw py::value_error("pixel format must be 0 (rgb), 1 (gray) or 2 (rgba)");
  Options o;
  o.thumb.decode.pixel = static_cast<PixelFormat>(pixel);
  o.thumb.decode.exif_orientation = exif;
  o.thumb.decode.max_pixels = max_pixels;
  o.thumb.decode.fast = fast;
  return o;
}

Filter to_filter(int f) {
  if (f < 0 || f > 4) throw py::value_error("filter code must be in 0..4, got " + std::to_string(f));
  return static_cast<Filter>(f);
}

// One decoded record, owned by C++ until handed to numpy.
struct Record {
  Status status = Status::kOk;
  ErrorText error;
  std::unique_ptr<std::uint8_t[]> pixels;
  std::int32_t h = 0, w = 0, c = 0;
  // A batch's out= array: this record's pixels go into the caller's slot of exactly slot_w x
  // slot_h x slot_c bytes instead of a buffer of its own; the slot is zeroed when the record fails.
  std::uint8_t* slot = nullptr;
  std::int32_t slot_w = 0, slot_h = 0, slot_c = 0;
};

// Header + allocate + decode for one record, without the GIL.
void run_record_unguarded(Source& src, const Options& o, Record* r, Workspace* ws);

// A failed allocation deep in a decoder or the resize (std::vector) is that record's NO_MEMORY,
// not the batch's failure.
// ws: the worker's scratch for a thumbnail's full decode or a decode's copy before EXIF
// orientation (null: allocated per record).
void run_record(Source& src, const Options& o, Record* r, Workspace* ws = nullptr) {
  try {
    run_record_unguarded(src, o, r, ws);
  } catch (const std::bad_alloc&) {
    r->pixels.reset();
    r->status = Status::kNoMemory;
    r->error.set("out of memory while decoding this record");
  }
  if (r->slot != nullptr && !status_ok(r->status))  // no half-decoded or stale pixels left there
    std::memset(r->slot, 0, static_cast<std::size_t>(r->slot_w) * r->slot_h * r->slot_c);
}

// Maps the whole pages of [p, p + bytes) in one call instead of one page fault per page as the
// decoder first writes them. A batch's outputs are fresh memory (they are all kept until it
// returns): decode_batch of 341 ImageNet-size JPEGs x 5 took 288k page faults, 59k with this, and
// 4-7 % less time at one thread. Best effort: kernels before 5.14 refuse the advice, and a page
// that cannot be had now faults later as it would have.
void prefault(void* p, std::size_t bytes) {
#ifdef MADV_POPULATE_WRITE
  const long size = sysconf(_SC_PAGESIZE);
  if (size <= 0) return;
  const auto page = static_cast<std::uintptr_t>(size), a = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t lo = (a + page - 1) & ~(page - 1), hi = (a + bytes) & ~(page - 1);
  if (hi > lo) (void)madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_POPULATE_WRITE);
#else
  (void)p;
  (void)bytes;
#endif
}

// The output buffer for ti's geometry; false (and NO_MEMORY on the record) when it cannot be had.
bool allocate(Record* r, const ThumbnailInfo& ti, ImageView* out) {
  if (r->slot != nullptr) {
    if (ti.out_width != r->slot_w || ti.out_height != r->slot_h || ti.out_channels != r->slot_c) {
      r->status = Status::kUnsupported;
      r->error.set("this record decodes to %dx%dx%d, not out='s %dx%dx%d", ti.out_width, ti.out_height,
                   ti.out_channels, r->slot_w, r->slot_h, r->slot_c);
      return false;
    }
    *out =
        ImageView{r->slot, r->slot_w, r->slot_h, r->slot_c, static_cast<std::int64_t>(r->slot_w) * r->slot_c};
    return true;
  }
  const std::size_t bytes = static_cast<std::size_t>(ti.out_width) * ti.out_height * ti.out_channels;
  r->pixels.reset(new (std::nothrow) std::uint8_t[bytes == 0 ? 1 : bytes]);
  if (!r->pixels) {
    r->status = Status::kNoMemory;
    r->error.set("out of memory allocating %dx%dx%d output", ti.out_width, ti.out_height, ti.out_channels);
    return false;
  }
  prefault(r->pixels.get(), bytes);
  *out = ImageView{r->pixels.get(), ti.out_width, ti.out_height, ti.out_channels,
                   static_cast<std::int64_t>(ti.out_width) * ti.out_channels};
  return true;
}

// After the pixel pass: a failed record drops its pixels; a header warning survives a clean pass.
void settle(Record* r, const ThumbnailInfo& ti, Status header_status, const ErrorText& header_error) {
  if (!status_ok(r->status)) {
    r->pixels.reset();
    return;
  }
  if (header_status == Status::kOkWarning && r->status == Status::kOk) {
    r->status = header_status;
    r->error = header_error;
  }
  r->h = ti.out_height;
  r->w = ti.out_width;
  r->c = ti.out_channels;
}

void run_record_unguarded(Source& src, const Options& o, Record* r, Workspace* ws) {
  r->status = src.read(&r->error);
  if (!status_ok(r->status)) return;
  ThumbnailInfo ti;
  if (o.is_thumbnail) {
    r->status = thumbnail_info(src.data(), src.size(), o.thumb, &ti, &r->error);
  } else {
    r->status = decode_info(src.data(), src.size(), o.thumb.decode, &ti.image, &r->error);
    ti.out_width = ti.image.out_width;
    ti.out_height = ti.image.out_height;
    ti.out_channels = ti.image.out_channels;
  }
  ImageView out;
  if (!status_ok(r->status) || !allocate(r, ti, &out)) return;
  const ErrorText header_error = r->error;
  const Status header_status = r->status;
  r->status = o.is_thumbnail
                  ? thumbnail_into(src.data(), src.size(), o.thumb, ti, out, &r->error, ws)
                  : decode_into(src.data(), src.size(), o.thumb.decode, ti.image, out, &r->error, ws);
  settle(r, ti, header_status, header_error);
  if (status_ok(r->status)) src.drop_file();
}

// Hands the pixels to numpy without a copy (GIL held).
py::object to_array(Record& r) {
  if (!r.pixels) return py::none();
  std::uint8_t* p = r.pixels.release();
  py::capsule owner(p, [](void* q) { delete[] static_cast<std::uint8_t*>(q); });
  if (r.c == 1) return py::array_t<std::uint8_t>({r.h, r.w}, p, owner);
  return py::array_t<std::uint8_t>({r.h, r.w, r.c}, p, owner);
}

// (images, status, errors) of a batch, as BatchResult takes them (GIL held); a record decoded into
// its slot of `out` is out[i].
py::tuple to_batch(std::vector<Record>& records, py::handle out = py::none()) {
  const std::size_t n = records.size();
  py::list images(n), errors(n);
  py::array_t<std::uint8_t> status(static_cast<py::ssize_t>(n));
  auto st = status.mutable_unchecked<1>();
  for (std::size_t i = 0; i < n; ++i) {
    Record& r = records[i];
    st(static_cast<py::ssize_t>(i)) = static_cast<std::uint8_t>(r.status);
    images[i] = r.slot != nullptr && status_ok(r.status) ? out[py::int_(i)] : to_array(r);
    errors[i] = r.error.empty() ? py::object(py::none()) : py::object(py::str(r.error.text));
  }
  return py::make_tuple(images, status, errors);
}

py::tuple one(py::handle src, const Options& o) {
  Source s;
  s.bind(src, 0);
  Record r;
  {
    py::gil_scoped_release release;
    run_record(s, o, &r);
  }
  return py::make_tuple(static_cast<int>(r.status), std::string(r.error.text), to_array(r));
}

// How many records batch calls that share it may work on at once (mmcore.ThreadBudget): the jobs'
// runner hashes a batch while the next one starts, so that the cores a batch's slowest image leaves
// idle take the next batch's images, and the calls' threads wait for a token before each record
// instead of running twice as many decodes as there are cores. The call that entered first has
// the tokens first: a later call's records wait while it has records not yet started, so a batch
// ends as early as it would alone (with equal shares, two batches ended together: the first one's
// rows waited for the second, and mmcore run on two batches was 5% slower).
class ThreadBudget {
 public:
  explicit ThreadBudget(int tokens) : free_(tokens), tokens_(tokens) {
    if (tokens < 1)
      throw py::value_error("a ThreadBudget needs at least 1 token, got " + std::to_string(tokens));
  }
  int tokens() const { return tokens_; }
  // A call of `records` records starts: its ticket.
  std::uint64_t enter(std::int64_t records) {
    std::lock_guard<std::mutex> lk(m_);
    const std::uint64_t ticket = next_ticket_++;
    waiting_[ticket] = records;
    return ticket;
  }
  // The call is done (or cancelled): its records no longer go first.
  void leave(std::uint64_t ticket) {
    {
      std::lock_guard<std::mutex> lk(m_);
      waiting_.erase(ticket);
    }
    cv_.notify_all();
  }
  // Waits for a token, for one record of call `ticket`: while a token is free and no earlier call
  // has records waiting. False when `cancel` is set first (the call was interrupted).
  bool acquire(std::uint64_t ticket, const std::atomic<bool>& cancel) {
    std::unique_lock<std::mutex> lk(m_);
    while (free_ == 0 || (!waiting_.empty() && waiting_.begin()->first < ticket)) {
      if (cancel.load(std::memory_order_relaxed)) return false;
      cv_.wait_for(lk, std::chrono::milliseconds(20));
    }
    --free_;
    const auto it = waiting_.find(ticket);
    if (it != waiting_.end() && --it->second <= 0) {
      waiting_.erase(it);
      cv_.notify_all();  // the next call's records may go
    }
    return true;
  }
  void release() {
    {
      std::lock_guard<std::mutex> lk(m_);
      ++free_;
    }
    cv_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  int free_;
  const int tokens_;
  std::uint64_t next_ticket_ = 0;
  std::map<std::uint64_t, std::int64_t> waiting_;  // ticket -> records not yet given a token
};

// fn(i) for every i in [0, n) on `threads` workers without the GIL. The records go largest first
// (by `cost`, when given: the encoded bytes) over the whole batch, so that the large ones start
// early and the batch ends on small ones. With more than one worker the calling thread only waits,
// taking the GIL back every 50 ms to see signals: on Ctrl-C the workers take no new record and the
// KeyboardInterrupt is raised once the records in flight are done. (Rounds of 16 records per
// worker, each waiting for its slowest record, did the same before: a 300 ms image in a round held
// the other workers idle: on 16 threads, 35-60% busy on the corpus mix, by simulation.)
// With one worker it runs on the calling thread in rounds of 64 records, signals between rounds.
// fn(i, worker): worker < parallel_workers(n, threads), one thread's at a time (per-worker state).
// With a `budget`, each record first takes one of its tokens (calls sharing it run at most that
// many records at once between them).
template <class F>
void interruptible_for_workers(std::int64_t n, int threads, F&& fn,
                               const std::vector<std::size_t>* cost = nullptr,
                               ThreadBudget* budget = nullptr) {
  if (n <= 0) return;
  const int workers = parallel_workers(n, threads);
  if (workers == 1 && budget == nullptr) {
    for (std::int64_t start = 0; start < n; start += 64) {
      const std::int64_t stop = std::min<std::int64_t>(n, start + 64);
      {
        py::gil_scoped_release release;
        for (std::int64_t i = start; i < stop; ++i) fn(i, 0);
      }
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    }
    return;
  }
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
  if (cost != nullptr) {
    std::stable_sort(order.begin(), order.end(), [cost](std::int64_t a, std::int64_t b) {
      return (*cost)[static_cast<std::size_t>(a)] > (*cost)[static_cast<std::size_t>(b)];
    });
  }
  std::atomic<bool> cancel{false};
  // Entered here, left when the workers are done (or on the way out of an interrupted call).
  const std::uint64_t ticket = budget != nullptr ? budget->enter(n) : 0;
  struct Leave {
    ThreadBudget* b;
    std::uint64_t t;
    ~Leave() {
      if (b != nullptr) b->leave(t);
    }
  } leave{budget, ticket};
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  std::exception_ptr error;
  bool interrupted = false;
  auto run = [&] {
    try {
      parallel_for_workers(n, workers, [&](std::int64_t i, int worker) {
        if (cancel.load(std::memory_order_relaxed)) return;
        if (budget != nullptr && !budget->acquire(ticket, cancel)) return;
        struct Release {
          ThreadBudget* b;
          ~Release() {
            if (b != nullptr) b->release();
          }
        } release{budget};
        fn(order[static_cast<std::size_t>(i)], worker);
      });
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lk(m);
      done = true;
    }
    cv.notify_all();
  };
  {
    py::gil_scoped_release release;
    std::thread runner;
    try {
      runner = std::thread(run);
    } catch (const std::system_error&) {
      run();  // the OS refused a thread: the work runs here, without the signal checks
    }
    std::unique_lock<std::mutex> lk(m);
    while (!cv.wait_for(lk, std::chrono::milliseconds(50), [&] { return done; })) {
      if (interrupted) continue;  // the workers finish the records in flight
      lk.unlock();
      {
        py::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() != 0) {  // leaves the exception set on this thread
          interrupted = true;
          cancel.store(true, std::memory_order_relaxed);
        }
      }
      lk.lock();
    }
    lk.unlock();
    if (runner.joinable()) runner.join();
  }
  if (interrupted) throw py::error_already_set();
  if (error) std::rethrow_exception(error);
}

// Each source's encoded size where it is in memory (0 for paths and decoded images): the cost
// interruptible_for_workers orders a round by.
std::vector<std::size_t> encoded_sizes(const std::vector<std::unique_ptr<Source>>& sources) {
  std::vector<std::size_t> sizes(sources.size(), 0);
  for (std::size_t i = 0; i < sources.size(); ++i) {
    if (sources[i]->has_view && sources[i]->view.len > 0)
      sizes[i] = static_cast<std::size_t>(sources[i]->view.len);
  }
  return sizes;
}

// The slots of a batch's out= array, one per record: a writable C-contiguous uint8 array of shape
// (n, H, W) or (n, H, W, C) (mmcore.image checks it first and says what it should be).
void bind_slots(const py::object& out, std::vector<Record>& records) {
  const std::size_t n = records.size();
  if (!py::isinstance<py::array>(out)) throw py::type_error("out must be a numpy array");
  auto a = py::reinterpret_borrow<py::array>(out);
  if (!has_dtype<std::uint8_t>(a)) throw py::type_error("out must be a uint8 array");
  if ((a.ndim() != 3 && a.ndim() != 4) || static_cast<std::size_t>(a.shape(0)) != n)
    throw py::value_error("out must have shape (len(srcs), height, width[, channels])");
  if (!(a.flags() & py::array::c_style) || !a.writeable())
    throw py::value_error("out must be a writable C-contiguous array");
  const auto h = a.shape(1), w = a.shape(2), c = a.ndim() == 4 ? a.shape(3) : 1;
  constexpr py::ssize_t kMaxSide = std::numeric_limits<std::int32_t>::max();
  if (h < 1 || w < 1 || c < 1 || h > kMaxSide || w > kMaxSide || c > 4)
    throw py::value_error("out's images must be at least 1x1, with 1 to 4 channels");
  auto* base = static_cast<std::uint8_t*>(a.mutable_data());
  const std::size_t slot = static_cast<std::size_t>(h) * w * c;
  for (std::size_t i = 0; i < n; ++i) {
    Record& r = records[i];
    r.slot = base + i * slot;
    r.slot_h = static_cast<std::int32_t>(h);
    r.slot_w = static_cast<std::int32_t>(w);
    r.slot_c = static_cast<std::int32_t>(c);
  }
}

py::tuple many(const py::sequence& srcs, const Options& o, int threads, const py::object& out = py::none()) {
  const std::size_t n = py::len(srcs);
  std::vector<Record> records(n);
  if (!out.is_none()) bind_slots(out, records);
  std::vector<std::unique_ptr<Source>> sources(n);
  for (std::size_t i = 0; i < n; ++i) {
    sources[i] = std::make_unique<Source>();
    sources[i]->bind(srcs[i], i, true);
  }
  const std::vector<std::size_t> sizes = encoded_sizes(sources);
  std::vector<Workspace> workspaces(
      static_cast<std::size_t>(parallel_workers(static_cast<std::int64_t>(n), threads)));
  interruptible_for_workers(
      static_cast<std::int64_t>(n), threads,
      [&](std::int64_t i, int worker) {
        Workspace& ws = workspaces[static_cast<std::size_t>(worker)];
        run_record(*sources[static_cast<std::size_t>(i)], o, &records[static_cast<std::size_t>(i)], &ws);
        ws.end_record();
      },
      &sizes);
  return to_batch(records, out);
}

Options thumb_options(int pixel, bool exif, std::int64_t max_pixels, bool fast, std::int32_t short_side,
                      std::int32_t fit_w, std::int32_t fit_h, std::int32_t crop_w, std::int32_t crop_h,
                      std::int32_t exact_w, std::int32_t exact_h, int filter, bool upscale,
                      double reducing_gap) {
  Options o = make_options(pixel, exif, max_pixels, fast);
  o.is_thumbnail = true;
  o.thumb.short_side = short_side;
  o.thumb.fit_width = fit_w;
  o.thumb.fit_height = fit_h;
  o.thumb.crop_width = crop_w;
  o.thumb.crop_height = crop_h;
  o.thumb.exact_width = exact_w;
  o.thumb.exact_height = exact_h;
  o.thumb.filter = to_filter(filter);
  o.thumb.upscale = upscale;
  o.thumb.reducing_gap = reducing_gap;
  return o;
}

// full_width / full_height > 0: the centre width x height window of img resized to that size
// (resize_crop: the window alone is computed), as a thumbnail's crop.
py::array resize_py(const U8Array& img, std::int32_t width, std::int32_t height, int filter, int backend,
                    std::int32_t full_width, std::int32_t full_height) {
  if (img.ndim() != 2 && img.ndim() != 3) throw py::value_error("img must be HxW or HxWxC uint8");
  const std::int32_t c = img.ndim() == 2 ? 1 : static_cast<std::int32_t>(img.shape(2));
  if (c != 1 && c != 3 && c != 4)
    throw py::value_error("img must have 1, 3 or 4 channels, got " + std::to_string(c));
  if (width <= 0 || height <= 0) throw py::value_error("size must be positive");
  if (img.shape(0) <= 0 || img.shape(1) <= 0) throw py::value_error("img must not be empty");
  if (backend > 2) throw py::value_error("backend must be -1 (active), 0 (ref), 1 (avx2) or 2 (avx512)");
  const bool crop = full_width > 0 || full_height > 0;
  if (crop && (full_width < width || full_height < height))
    throw py::value_error("the crop window must fit inside the full size");
  const Filter f = to_filter(filter);
  py::array_t<std::uint8_t> out = img.ndim() == 2 ? py::array_t<std::uint8_t>({height, width})
                                                  : py::array_t<std::uint8_t>({height, width, c});
  ConstImageView src(img.data(), static_cast<std::int32_t>(img.shape(1)),
                     static_cast<std::int32_t>(img.shape(0)), c, static_cast<std::int64_t>(img.shape(1)) * c);
  ImageView dst{out.mutable_data(), width, height, c, static_cast<std::int64_t>(width) * c};
  {
    py::gil_scoped_release release;
    if (crop && backend < 0) {
      resize_crop(src, dst, f, full_width, full_height);
    } else if (crop) {
      resize_crop(src, dst, f, full_width, full_height, static_cast<Backend>(backend));
    } else if (backend < 0) {
      resize(src, dst, f);
    } else {
      resize(src, dst, f, static_cast<Backend>(backend));
    }
  }
  return out;
}

// Hashes: one record per source, without the GIL; bad data is a record status.
struct HashOut {
  Status status = Status::kOk;
  ErrorText error;
  HashRecord record;
};

void hash_record(Source& src, const HashRequest& request, HashOut* r, Workspace* ws) {
  try {
    if (src.is_image) {
      r->status = hash_image(src.image, request, &r->record, &r->error, ws);
      return;
    }
    r->status = src.read(&r->error);
    if (!status_ok(r->status)) return;
    r->status = hash_bytes(src.data(), src.size(), request, &r->record, &r->error, ws);
    src.drop_file();
  } catch (const std::bad_alloc&) {
    r->status = Status::kNoMemory;
    r->error.set("out of memory while hashing this record");
  }
}

// A record's hashes and its thumbnail from one decode where the thumbnail can use it
// (hash_bytes_with_thumbnail); an already decoded array gets no thumbnail (UNSUPPORTED).
void hash_thumbnail_record(Source& src, const HashRequest& request, const Options& o, HashOut* h, Record* t,
                           Workspace* ws) {
  try {
    if (src.is_image) {
      h->status = hash_image(src.image, request, &h->record, &h->error, ws);
      t->status = Status::kUnsupported;
      t->error.set("thumbnails are made from encoded bytes or a path, not from a decoded array");
      return;
    }
    h->status = src.read(&h->error);
    if (!status_ok(h->status)) {
      t->status = h->status;
      t->error = h->error;
      return;
    }
    ThumbnailInfo ti;
    ImageView out;
    t->status = thumbnail_info(src.data(), src.size(), o.thumb, &ti, &t->error);
    if (!status_ok(t->status) || !allocate(t, ti, &out)) {
      h->status = hash_bytes(src.data(), src.size(), request, &h->record, &h->error, ws);
      src.drop_file();
      return;
    }
    const ErrorText header_error = t->error;
    const Status header_status = t->status;
    h->status = hash_bytes_with_thumbnail(src.data(), src.size(), request, &h->record, &h->error, o.thumb, ti,
                                          out, &t->status, &t->error, ws);
    settle(t, ti, header_status, header_error);
    src.drop_file();
  } catch (const std::bad_alloc&) {
    h->status = t->status = Status::kNoMemory;
    h->error.set("out of memory while hashing this record");
    t->error = h->error;
    t->pixels.reset();
  }
}

py::tuple hash_batch_impl(const py::sequence& srcs, std::uint32_t kinds, int mode, bool dihedral, bool exif,
                          std::int64_t max_pixels, int threads, const Options* thumb, ThreadBudget* budget,
                          const HashRequest& size_request) {
  if (mode < 0 || mode > 2) throw py::value_error("mode code must be 0 (exact), 1 (pdq full) or 2 (fast)");
  if (kinds == 0 || kinds >= (1u << kHashKindCount)) throw py::value_error("kinds mask names no known kind");
  HashRequest request = size_request;
  request.kinds = kinds;
  {
    ErrorText why;
    if (!hash_sizes_valid(request, &why)) throw py::value_error(why.text);
  }
  request.mode = static_cast<HashMode>(mode);
  request.pdq_dihedral = dihedral;
  request.exif_orientation = exif;
  request.max_pixels = max_pixels;
  const std::size_t n = py::len(srcs);
  std::vector<std::unique_ptr<Source>> sources(n);
  for (std::size_t i = 0; i < n; ++i) {
    sources[i] = std::make_unique<Source>();
    if (!sources[i]->bind_image(srcs[i], i)) sources[i]->bind(srcs[i], i, true);
  }
  std::vector<HashOut> records(n);
  std::vector<Record> thumbs(thumb != nullptr ? n : 0);
  const std::vector<std::size_t> sizes = encoded_sizes(sources);
  // One workspace per worker: consecutive records on a thread reuse the large buffers (decode,
  // hashing scratch; held until the call returns).
  std::vector<Workspace> workspaces(
      static_cast<std::size_t>(parallel_workers(static_cast<std::int64_t>(n), threads)));
  interruptible_for_workers(
      static_cast<std::int64_t>(n), threads,
      [&](std::int64_t i, int worker) {
        const auto k = static_cast<std::size_t>(i);
        Workspace* ws = &workspaces[static_cast<std::size_t>(worker)];
        if (thumb != nullptr) {
          hash_thumbnail_record(*sources[k], request, *thumb, &records[k], &thumbs[k], ws);
        } else {
          hash_record(*sources[k], request, &records[k], ws);
        }
        ws->end_record();
      },
      &sizes, budget);
  const bool pdq = request.wants(HashKind::kPdq);
  const py::ssize_t variants = pdq ? (dihedral ? 8 : 1) : 0;
  const auto rows = static_cast<py::ssize_t>(n);
  py::array_t<std::uint64_t> bits({rows, static_cast<py::ssize_t>(7)});
  py::array_t<std::uint8_t> pdq_bytes({rows, variants, static_cast<py::ssize_t>(32)});
  py::array_t<std::uint8_t> quality(rows), status(rows);
  auto b = bits.mutable_unchecked<2>();
  auto q = pdq_bytes.mutable_unchecked<3>();
  auto qu = quality.mutable_unchecked<1>();
  auto st = status.mutable_unchecked<1>();
  py::list errors(n);
  for (py::ssize_t i = 0; i < rows; ++i) {
    const HashOut& r = records[static_cast<std::size_t>(i)];
    const bool ok = status_ok(r.status);
    st(i) = static_cast<std::uint8_t>(r.status);
    for (py::ssize_t k = 0; k < 7; ++k) b(i, k) = ok ? r.record.bits[k] : 0;
    for (py::ssize_t v = 0; v < variants; ++v)
      for (py::ssize_t j = 0; j < 32; ++j) q(i, v, j) = ok ? r.record.pdq[v].bytes[j] : 0;
    qu(i) = ok ? static_cast<std::uint8_t>(r.record.pdq_quality) : 0;
    errors[static_cast<std::size_t>(i)] =
        r.error.empty() ? py::object(py::none()) : py::object(py::str(r.error.text));
  }
  // Kinds at other sizes: {kind code: (rows, ceil(bits / 8)) uint8}, each row a big-endian integer.
  py::dict wide;
  for (int k = 0; k < kHashKindCount; ++k) {
    const auto kind = static_cast<HashKind>(k);
    if (!request.wants(kind) || !request.sized(kind)) continue;
    const auto width = static_cast<py::ssize_t>((hash_bit_count(kind, request) + 7) / 8);
    py::array_t<std::uint8_t> col({rows, width});
    auto c = col.mutable_unchecked<2>();
    for (py::ssize_t i = 0; i < rows; ++i) {
      const HashOut& r = records[static_cast<std::size_t>(i)];
      const std::vector<std::uint8_t>& w = r.record.wide[k];
      const bool ok = status_ok(r.status) && static_cast<py::ssize_t>(w.size()) == width;
      for (py::ssize_t j = 0; j < width; ++j) c(i, j) = ok ? w[static_cast<std::size_t>(j)] : 0;
    }
    wide[py::int_(k)] = col;
  }
  if (thumb == nullptr) return py::make_tuple(bits, pdq_bytes, quality, status, errors, py::none(), wide);
  return py::make_tuple(bits, pdq_bytes, quality, status, errors, to_batch(thumbs), wide);
}

py::tuple hash_batch_py(const py::sequence& srcs, std::uint32_t kinds, int mode, bool dihedral, bool exif,
                        std::int64_t max_pixels, int threads, const py::object& thumb, ThreadBudget* budget,
                        std::int32_t hash_size, std::int32_t highfreq_factor, std::int32_t binbits) {
  HashRequest sizes;
  sizes.hash_size = hash_size;
  sizes.highfreq_factor = highfreq_factor;
  sizes.binbits = binbits;
  if (thumb.is_none())
    return hash_batch_impl(srcs, kinds, mode, dihedral, exif, max_pixels, threads, nullptr, budget, sizes);
  const auto t = thumb.cast<py::tuple>();
  if (t.size() != 14) throw py::value_error("thumb must be the 14 thumbnail_batch option codes");
  const Options o =
      thumb_options(t[0].cast<int>(), t[1].cast<bool>(), t[2].cast<std::int64_t>(), t[3].cast<bool>(),
                    t[4].cast<std::int32_t>(), t[5].cast<std::int32_t>(), t[6].cast<std::int32_t>(),
                    t[7].cast<std::int32_t>(), t[8].cast<std::int32_t>(), t[9].cast<std::int32_t>(),
                    t[10].cast<std::int32_t>(), t[11].cast<int>(), t[12].cast<bool>(), t[13].cast<double>());
  return hash_batch_impl(srcs, kinds, mode, dihedral, exif, max_pixels, threads, &o, budget, sizes);
}

py::dict build_info_py() {
  py::dict d;
  py::list compiled;
  for (Backend b : {Backend::kRef, Backend::kAvx2, Backend::kAvx512}) {
    if (backend_compiled(b)) compiled.append(backend_name(b));
  }
  py::list supported;
  for (Backend b : {Backend::kRef, Backend::kAvx2, Backend::kAvx512}) {
    if (backend_supported(b)) supported.append(backend_name(b));
  }
  d["cpu_variants_compiled"] = compiled;
  d["cpu_variants_supported"] = supported;
  d["backend"] = backend_name(active_backend());
  d["backend_note"] = backend_note();
  d["quant_amx"] = quant_amx_active();
  d["quant_avx_vnni"] = quant_avx_vnni_active();
#ifdef MMCORE_HAVE_CUDA
  d["cuda_compiled"] = true;
  d["cuda_runtime_version"] = cuda_runtime_version();
  char msg[256] = {0};
  const int devices = cuda_device_count(msg, sizeof msg);
  d["cuda_devices"] = devices;
  d["cuda_available"] = devices > 0;
  d["cuda_note"] = std::string(msg);
#else
  d["cuda_compiled"] = false;
  d["cuda_available"] = false;
  d["cuda_devices"] = 0;
#endif
  py::dict codecs;
  codecs["jpeg"] = jpeg_library_version();
  codecs["png"] = png_library_version();
  codecs["webp"] = webp_library_version();
  codecs["avif"] = avif_library_version();
  d["codecs"] = codecs;
  d["hardware_threads"] = hardware_threads();
  return d;
}

py::dict image_info_py(py::handle src, bool exif) {
  Source s;
  s.bind(src, 0);
  ImageInfo info;
  ErrorText err;
  Status st;
  {
    py::gil_scoped_release release;
    st = s.read(&err);
    if (status_ok(st)) {
      DecodeOptions o;
      o.exif_orientation = exif;
      o.max_pixels = 0;
      st = decode_info(s.data(), s.size(), o, &info, &err);
    }
  }
  py::dict d;
  d["status"] = static_cast<int>(st);
  d["error"] = std::string(err.text);
  d["format"] = format_name(info.format);
  d["width"] = info.width;
  d["height"] = info.height;
  d["orientation"] = info.orientation;
  d["has_alpha"] = info.has_alpha;
  d["animated"] = info.animated;
  return d;
}

// Whole regular files read on `threads` threads without the GIL, for the Processor's path records:
// a list of memoryviews over the bytes (each its own buffer), None for a file this fast path
// leaves to the caller's reader (one that cannot be opened, is not a regular file, is over
// `max_bytes` (< 0: no limit), grew while it was read, or failed a read), which then says why.
// The Python reader's per-file work (a future, the open and reads, under the GIL) had cost ~70 us
// a file on 2 cores, more than hashing a small image.
py::list read_files_py(const py::sequence& paths, std::int64_t max_bytes, int threads) {
  const std::size_t n = py::len(paths);
  std::vector<std::string> names(n);
  for (std::size_t i = 0; i < n; ++i) names[i] = fs_path(py::str(paths[i]));
  struct Read {  // owns its buffer until handed to numpy (freed here if the call is interrupted)
    std::uint8_t* data = nullptr;
    std::size_t size = 0;
    Read() = default;
    Read(const Read&) = delete;
    Read& operator=(const Read&) = delete;
    ~Read() { std::free(data); }
  };
  std::vector<Read> reads(n);
  auto read_one = [&](std::int64_t k, int) {
    const std::string& name = names[static_cast<std::size_t>(k)];
    if (name.find('\0') != std::string::npos) return;
    const int fd = ::open(name.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st{};
    std::uint8_t* buf = nullptr;
    std::size_t got = 0;
    bool whole = false;
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (max_bytes < 0 || st.st_size <= max_bytes)) {
      const auto want = static_cast<std::size_t>(st.st_size) + 1;  // one more: a file that grew
      buf = static_cast<std::uint8_t*>(std::malloc(want));
      if (buf != nullptr) {
        whole = true;
        while (got < want) {
          const ssize_t r = ::read(fd, buf + got, want - got);
          if (r < 0 && errno == EINTR) continue;
          if (r < 0) whole = false;
          if (r <= 0) break;
          got += static_cast<std::size_t>(r);
        }
        if (got == want) whole = false;  // it grew since fstat: the caller reads it to its end
      }
    }
    ::close(fd);
    if (!whole) {
      std::free(buf);
      return;
    }
    Read& r = reads[static_cast<std::size_t>(k)];
    r.data = buf;
    r.size = got;
  };
  interruptible_for_workers(static_cast<std::int64_t>(n), threads, read_one);
  py::list out(n);
  for (std::size_t i = 0; i < n; ++i) {
    Read& r = reads[i];
    if (r.data == nullptr) {
      out[i] = py::none();
      continue;
    }
    out[i] = py::memoryview(adopt(r.data, static_cast<std::int64_t>(r.size)));
  }
  return out;
}

// Up to `max` members from `offset` of the tar open as `fd` while their headers are plain
// (mmcore/tar.h), read without the GIL: (offset after them, [(name, type, size, header offset,
// data offset, first bytes of the data), ...]); the name decoded as tarfile decodes it (UTF-8,
// surrogate escapes), the type as tarfile's one-byte code. Python's own header reader had taken
// 7-17 us of the GIL a member.
py::tuple tar_scan_py(int fd, std::int64_t offset, std::int64_t max) {
  if (max < 1 || max > (1 << 16))
    throw py::value_error("max must be in 1..65536, got " + std::to_string(max));
  std::vector<TarMember> members(static_cast<std::size_t>(max));
  std::int64_t next = offset;
  std::int64_t n = 0;
  {
    py::gil_scoped_release release;
    n = tar_scan(fd, offset, members.data(), max, &next);
  }
  py::list out(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const TarMember& m = members[static_cast<std::size_t>(i)];
    py::object name =
        py::reinterpret_steal<py::object>(PyUnicode_DecodeUTF8(m.name, m.name_len, "surrogateescape"));
    if (!name) throw py::error_already_set();
    out[static_cast<std::size_t>(i)] = py::make_tuple(
        std::move(name), py::bytes(&m.type, 1), m.size, m.header, m.data,
        py::bytes(reinterpret_cast<const char*>(m.head), static_cast<std::size_t>(m.head_len)));
  }
  return py::make_tuple(next, std::move(out));
}

// Header facts of a batch (the Processor's rows): per record the image_info status, the format
// code (ImageFormat; names from image_format_names()), width and height as stored, and the EXIF
// orientation. One call instead of one per record: the per-record Python calls were a third of
// the Processor's own (GIL-held) time per image.
py::tuple image_info_batch_py(const py::sequence& srcs, bool exif) {
  const std::size_t n = py::len(srcs);
  std::vector<std::unique_ptr<Source>> sources(n);
  for (std::size_t i = 0; i < n; ++i) {
    sources[i] = std::make_unique<Source>();
    sources[i]->bind(srcs[i], i, true);
  }
  const auto rows = static_cast<py::ssize_t>(n);
  py::array_t<std::uint8_t> status(rows);
  py::array_t<std::uint8_t> format(rows);
  py::array_t<std::int32_t> width(rows);
  py::array_t<std::int32_t> height(rows);
  py::array_t<std::int32_t> orientation(rows);
  auto st = status.mutable_unchecked<1>();
  auto fm = format.mutable_unchecked<1>();
  auto w = width.mutable_unchecked<1>();
  auto h = height.mutable_unchecked<1>();
  auto o = orientation.mutable_unchecked<1>();
  {
    py::gil_scoped_release release;
    DecodeOptions opts;
    opts.exif_orientation = exif;
    opts.max_pixels = 0;
    for (std::size_t i = 0; i < n; ++i) {
      ImageInfo info;
      ErrorText err;
      Status s = sources[i]->read(&err);
      if (status_ok(s)) s = decode_info(sources[i]->data(), sources[i]->size(), opts, &info, &err);
      const auto k = static_cast<py::ssize_t>(i);
      st(k) = static_cast<std::uint8_t>(s);
      fm(k) = static_cast<std::uint8_t>(info.format);
      w(k) = info.width;
      h(k) = info.height;
      o(k) = info.orientation;
    }
  }
  return py::make_tuple(status, format, width, height, orientation);
}

py::list image_format_names() {
  py::list names;
  for (auto f : {ImageFormat::kUnknown, ImageFormat::kJpeg, ImageFormat::kPng, ImageFormat::kWebp,
                 ImageFormat::kGif, ImageFormat::kAvif})
    names.append(format_name(f));
  return names;
}

// ---- encode ----

// The caller-owned memory encode.h streams into; a failed allocation refuses the bytes
// (the record's NO_MEMORY) instead of throwing through the C codecs.
struct EncodedBytes {
  std::vector<std::uint8_t> bytes;

  static bool append(void* self, const std::uint8_t* data, std::size_t size) noexcept {
    try {
      auto& b = static_cast<EncodedBytes*>(self)->bytes;
      b.insert(b.end(), data, data + size);
      return true;
    } catch (const std::bad_alloc&) {
      return false;
    }
  }
  ByteSink sink() { return ByteSink{this, &EncodedBytes::append}; }
  py::object to_bytes(Status s) const {
    if (!status_ok(s)) return py::none();
    return py::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
};

EncodeOptions encode_options(int format, int quality, bool optimize, int method) {
  if (format != static_cast<int>(ImageFormat::kJpeg) && format != static_cast<int>(ImageFormat::kWebp))
    throw py::value_error("format code must be 1 (jpeg) or 3 (webp), got " + std::to_string(format));
  if (quality < 1 || quality > 100)
    throw py::value_error("quality must be in 1..100, got " + std::to_string(quality));
  EncodeOptions o;
  o.format = static_cast<ImageFormat>(format);
  o.quality = quality;
  o.optimize = optimize;
  if (method < 0 || method > 6)
    throw py::value_error("method must be in 0..6, got " + std::to_string(method));
  o.webp_method = method;
  return o;
}

// With the GIL held: None -> a missing image (data == nullptr, a record status); a C-contiguous
// uint8 HxW or HxWx3 array -> its view (kept alive in *keep); anything else is misuse.
ConstImageView encode_view(py::handle obj, const std::string& name, py::array* keep) {
  if (obj.is_none()) return ConstImageView();
  if (!py::isinstance<py::array>(obj))
    throw py::value_error(name + " must be a numpy uint8 array (HxW or HxWx3), got " +
                          std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  *keep = py::reinterpret_borrow<py::array>(obj);
  const py::array& a = *keep;
  if (!has_dtype<std::uint8_t>(a))
    throw py::value_error(name + " must have dtype uint8, got " + std::string(py::str(a.dtype())));
  if (a.ndim() != 2 && !(a.ndim() == 3 && (a.shape(2) == 1 || a.shape(2) == 3)))
    throw py::value_error(name + " must be HxW (grey) or HxWx3 (RGB), got shape " +
                          std::string(py::str(a.attr("shape"))));
  if (!(a.flags() & py::array::c_style)) throw py::value_error(name + " must be C-contiguous");
  if (a.shape(0) > std::numeric_limits<std::int32_t>::max() ||
      a.shape(1) > std::numeric_limits<std::int32_t>::max())
    throw py::value_error(name + " is too large to encode: shape " + std::string(py::str(a.attr("shape"))));
  const auto c = static_cast<std::int32_t>(a.ndim() == 2 ? 1 : a.shape(2));
  const auto w = static_cast<std::int32_t>(a.shape(1));
  return ConstImageView(static_cast<const std::uint8_t*>(a.data()), w, static_cast<std::int32_t>(a.shape(0)),
                        c, static_cast<std::int64_t>(w) * c);
}

py::tuple encode_py(py::handle img, int format, int quality, bool optimize, int method) {
  const EncodeOptions o = encode_options(format, quality, optimize, method);
  py::array keep;
  const ConstImageView view = encode_view(img, "img", &keep);
  EncodedBytes out;
  ErrorText err;
  Status st;
  {
    py::gil_scoped_release release;
    st = encode_image(view, o, out.sink(), &err);
  }
  return py::make_tuple(static_cast<int>(st), std::string(err.text), out.to_bytes(st));
}

py::tuple encode_batch_py(const py::sequence& imgs, int format, int quality, bool optimize, int threads,
                          int method) {
  const EncodeOptions o = encode_options(format, quality, optimize, method);
  const std::size_t n = py::len(imgs);
  std::vector<py::array> keep(n);
  std::vector<ConstImageView> views(n);
  for (std::size_t i = 0; i < n; ++i)
    views[i] = encode_view(imgs[i], "images[" + std::to_string(i) + "]", &keep[i]);
  std::vector<EncodedBytes> outs(n);
  std::vector<ByteSink> sinks(n);
  for (std::size_t i = 0; i < n; ++i) sinks[i] = outs[i].sink();
  std::vector<Status> statuses(n);
  std::vector<ErrorText> errs(n);
  {
    py::gil_scoped_release release;
    encode_batch(views.data(), static_cast<std::int64_t>(n), o, threads, sinks.data(), statuses.data(),
                 errs.data());
  }
  py::list data(n), errors(n);
  py::array_t<std::uint8_t> status(static_cast<py::ssize_t>(n));
  auto st = status.mutable_unchecked<1>();
  for (std::size_t i = 0; i < n; ++i) {
    st(static_cast<py::ssize_t>(i)) = static_cast<std::uint8_t>(statuses[i]);
    data[i] = outs[i].to_bytes(statuses[i]);
    errors[i] = errs[i].empty() ? py::object(py::none()) : py::object(py::str(errs[i].text));
  }
  return py::make_tuple(data, status, errors);
}

// ---- Hamming ----

// A C-contiguous uint64 (N, W) array with W = 1 or 4; ValueError names the argument otherwise.
py::array codes_arg(const py::handle& obj, const char* name) {
  if (!py::isinstance<py::array>(obj)) {
    throw py::value_error(std::string(name) + " must be a numpy uint64 array of shape (N, W), got " +
                          std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  }
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (!has_dtype<std::uint64_t>(a)) {
    throw py::value_error(std::string(name) + " must have dtype uint64, got " +
                          std::string(py::str(a.dtype())));
  }
  if (a.ndim() != 2 || a.shape(1) < 1 || a.shape(1) > kHammingMaxWords) {
    throw py::value_error(std::string(name) + " must have shape (N, W) with W in 1.." +
                          std::to_string(kHammingMaxWords) + " (64-bit words per code), got " +
                          std::string(py::str(a.attr("shape"))));
  }
  if (!(a.flags() & py::array::c_style)) throw py::value_error(std::string(name) + " must be C-contiguous");
  return a;
}

// None, or a C-contiguous int64 (n,) array.
const std::int64_t* ids_arg(const py::object& obj, py::ssize_t n, py::array* keep) {
  if (obj.is_none()) return nullptr;
  if (!py::isinstance<py::array>(obj)) throw py::value_error("ids must be None or a numpy int64 array");
  *keep = py::reinterpret_borrow<py::array>(obj);
  if (!has_dtype<std::int64_t>(*keep)) {
    throw py::value_error("ids must have dtype int64, got " + std::string(py::str(keep->dtype())));
  }
  if (keep->ndim() != 1 || keep->shape(0) != n) {
    throw py::value_error("ids must have shape (" + std::to_string(n) + ",) to match base, got " +
                          std::string(py::str(keep->attr("shape"))));
  }
  if (!(keep->flags() & py::array::c_style)) throw py::value_error("ids must be C-contiguous");
  return static_cast<const std::int64_t*>(keep->data());
}

// r as the kernels take it: a radius past the code length (64 bits a word) finds what that length
// does.
std::int32_t radius_arg(std::int64_t r, const py::array& base) {
  if (r < 0) throw py::value_error("r must be >= 0, got " + std::to_string(r));
  return static_cast<std::int32_t>(std::min<std::int64_t>(r, 64 * std::max<py::ssize_t>(base.shape(1), 1)));
}

HammingMethod method_arg(const std::string& method) {
  if (method == "auto") return HammingMethod::kAuto;
  if (method == "brute") return HammingMethod::kBrute;
  if (method == "mih") return HammingMethod::kMih;
  throw py::value_error("method must be 'auto', 'brute' or 'mih', got '" + method + "'");
}

py::dict stats_dict(const HammingStats& s) {
  py::dict d;
  d["method"] = s.method == HammingMethod::kMih ? "mih" : "brute";
  d["m"] = s.m;
  d["sub_radius"] = s.sub_radius;
  d["candidates"] = s.candidates;
  d["table_bytes"] = s.table_bytes;
  return d;
}

py::tuple hamming_knn_py(const py::object& base_obj, const py::object& ids_obj, const py::object& queries_obj,
                         std::int64_t k, int threads) {
  const py::array base = codes_arg(base_obj, "base");
  const py::array queries = codes_arg(queries_obj, "queries");
  if (queries.shape(1) != base.shape(1)) {
    throw py::value_error("queries have " + std::to_string(queries.shape(1) * 64) +
                          "-bit codes but base has " + std::to_string(base.shape(1) * 64) + "-bit codes");
  }
  if (k < 1 || k > std::numeric_limits<std::int32_t>::max()) {
    throw py::value_error("k must be >= 1, got " + std::to_string(k));
  }
  py::array keep;
  const std::int64_t* ids = ids_arg(ids_obj, base.shape(0), &keep);
  const py::ssize_t nq = queries.shape(0);
  py::array_t<std::int32_t> dist({nq, static_cast<py::ssize_t>(k)});
  py::array_t<std::int64_t> labels({nq, static_cast<py::ssize_t>(k)});
  {
    py::gil_scoped_release release;
    hamming_knn(static_cast<const std::uint64_t*>(base.data()), ids, base.shape(0),
                static_cast<const std::uint64_t*>(queries.data()), nq,
                static_cast<std::int32_t>(base.shape(1)), static_cast<std::int32_t>(k), threads,
                dist.mutable_data(), labels.mutable_data());
  }
  return py::make_tuple(dist, labels);
}

py::tuple hamming_radius_py(const py::object& base_obj, const py::object& ids_obj,
                            const py::object& queries_obj, std::int64_t r, int threads,
                            const std::string& method) {
  const py::array base = codes_arg(base_obj, "base");
  const py::array queries = codes_arg(queries_obj, "queries");
  if (queries.shape(1) != base.shape(1)) {
    throw py::value_error("queries have " + std::to_string(queries.shape(1) * 64) +
                          "-bit codes but base has " + std::to_string(base.shape(1) * 64) + "-bit codes");
  }
  const HammingMethod m = method_arg(method);
  py::array keep;
  const std::int64_t* ids = ids_arg(ids_obj, base.shape(0), &keep);
  const std::int32_t radius = radius_arg(r, base);
  HammingOutput out;
  {
    py::gil_scoped_release release;
    hamming_radius(static_cast<const std::uint64_t*>(base.data()), ids, base.shape(0),
                   static_cast<const std::uint64_t*>(queries.data()), queries.shape(0),
                   static_cast<std::int32_t>(base.shape(1)), radius, threads, m, &out);
  }
  const std::int64_t count = out.count;
  return py::make_tuple(adopt(out.lims, queries.shape(0) + 1), adopt(out.dist, count),
                        adopt(out.second, count), stats_dict(out.stats));
}

py::tuple hamming_join_py(const py::object& base_obj, std::int64_t r, int threads,
                          const std::string& method) {
  const py::array base = codes_arg(base_obj, "base");
  const HammingMethod m = method_arg(method);
  const std::int32_t radius = radius_arg(r, base);
  HammingOutput out;
  {
    py::gil_scoped_release release;
    hamming_join(static_cast<const std::uint64_t*>(base.data()), base.shape(0),
                 static_cast<std::int32_t>(base.shape(1)), radius, threads, m, &out);
  }
  const std::int64_t count = out.count;
  return py::make_tuple(adopt(out.first, count), adopt(out.second, count), adopt(out.dist, count),
                        stats_dict(out.stats));
}

py::tuple hamming_components_py(const py::object& base_obj, std::int64_t r, int threads,
                                const std::string& method) {
  const py::array base = codes_arg(base_obj, "base");
  const HammingMethod m = method_arg(method);
  const std::int32_t radius = radius_arg(r, base);
  py::array_t<std::int64_t> roots(static_cast<py::ssize_t>(base.shape(0)));
  std::int64_t* out = roots.mutable_data();
  HammingStats stats;
  {
    py::gil_scoped_release release;
    hamming_components(static_cast<const std::uint64_t*>(base.data()), base.shape(0),
                       static_cast<std::int32_t>(base.shape(1)), radius, threads, m, out, &stats);
  }
  return py::make_tuple(roots, stats_dict(stats));
}

py::array_t<std::int64_t> union_find_py(std::int64_t n, const py::object& a_obj, const py::object& b_obj) {
  if (n < 0) throw py::value_error("n must be >= 0, got " + std::to_string(n));
  const char* names[2] = {"a", "b"};
  py::array arrays[2];
  const py::object objs[2] = {a_obj, b_obj};
  for (int i = 0; i < 2; ++i) {
    if (!py::isinstance<py::array>(objs[i]))
      throw py::value_error(std::string(names[i]) + " must be a numpy int64 array");
    arrays[i] = py::reinterpret_borrow<py::array>(objs[i]);
    if (!has_dtype<std::int64_t>(arrays[i]) || arrays[i].ndim() != 1 ||
        !(arrays[i].flags() & py::array::c_style)) {
      throw py::value_error(std::string(names[i]) + " must be a C-contiguous 1-D int64 array");
    }
  }
  if (arrays[0].shape(0) != arrays[1].shape(0)) {
    throw py::value_error("a and b must have the same length, got " + std::to_string(arrays[0].shape(0)) +
                          " and " + std::to_string(arrays[1].shape(0)));
  }
  py::array_t<std::int64_t> labels(static_cast<py::ssize_t>(n));
  const auto* a = static_cast<const std::int64_t*>(arrays[0].data());
  const auto* b = static_cast<const std::int64_t*>(arrays[1].data());
  std::int64_t* out = labels.mutable_data();
  const std::int64_t edges = arrays[0].shape(0);
  {
    py::gil_scoped_release release;
    union_find(n, a, b, edges, out);  // std::invalid_argument (a position out of range) -> ValueError
  }
  return labels;
}

// ---- quant ----

// A C-contiguous numpy array of dtype T and `ndim` dimensions (`what` names the dtype in errors).
template <class T>
py::array typed_arg(const py::handle& obj, const char* name, const char* what, int ndim) {
  if (!py::isinstance<py::array>(obj)) {
    throw py::value_error(std::string(name) + " must be a numpy " + what + " array, got " +
                          std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  }
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (!has_dtype<T>(a)) {
    throw py::value_error(std::string(name) + " must have dtype " + what + ", got " +
                          std::string(py::str(a.dtype())));
  }
  if (a.ndim() != ndim) {
    throw py::value_error(std::string(name) + " must be " + std::to_string(ndim) + "-D, got shape " +
                          std::string(py::str(a.attr("shape"))));
  }
  if (!(a.flags() & py::array::c_style)) throw py::value_error(std::string(name) + " must be C-contiguous");
  return a;
}

void check_len(const py::array& a, const char* name, py::ssize_t axis, py::ssize_t want, const char* why) {
  if (a.shape(axis) != want) {
    throw py::value_error(std::string(name) + " has " + std::to_string(a.shape(axis)) + " columns but " +
                          why + " needs " + std::to_string(want));
  }
}

std::int32_t quant_k_arg(std::int64_t k) {
  if (k < 1 || k > std::numeric_limits<std::int32_t>::max()) {
    throw py::value_error("k must be >= 1, got " + std::to_string(k));
  }
  return static_cast<std::int32_t>(k);
}

std::int32_t quant_dim_arg(py::ssize_t d) {
  if (d < 1 || d > kQuantMaxDim) {
    throw py::value_error("dimension must be in 1.." + std::to_string(kQuantMaxDim) + ", got " +
                          std::to_string(d));
  }
  return static_cast<std::int32_t>(d);
}

// The optional reflector of the encoders: None or f32 (D,).
const float* reflector_arg(const py::object& obj, py::array* keep, std::int32_t d) {
  if (obj.is_none()) return nullptr;
  *keep = typed_arg<float>(obj, "reflect", "float32", 1);
  check_len(*keep, "reflect", 0, d, "x");
  return static_cast<const float*>(keep->data());
}

// int8 / int4 encoders: x f32 (N, D), scale and offset f32 (D,), reflect None or f32 (D,).
py::array_t<std::uint8_t> quant_encode_py(const py::object& x_obj, const py::object& scale_obj,
                                          const py::object& offset_obj, int threads, bool four_bit,
                                          const py::object& reflect_obj) {
  const py::array x = typed_arg<float>(x_obj, "x", "float32", 2);
  const std::int32_t d = quant_dim_arg(x.shape(1));
  const py::array scale = typed_arg<float>(scale_obj, "scale", "float32", 1);
  const py::array offset = typed_arg<float>(offset_obj, "offset", "float32", 1);
  check_len(scale, "scale", 0, d, "x");
  check_len(offset, "offset", 0, d, "x");
  py::array reflect;
  const float* vp = reflector_arg(reflect_obj, &reflect, d);
  const py::ssize_t n = x.shape(0);
  py::array_t<std::uint8_t> codes({n, static_cast<py::ssize_t>(four_bit ? (d + 1) / 2 : d)});
  const auto* xp = static_cast<const float*>(x.data());
  const auto* sp = static_cast<const float*>(scale.data());
  const auto* op = static_cast<const float*>(offset.data());
  std::uint8_t* out = codes.mutable_data();
  {
    py::gil_scoped_release release;  // std::invalid_argument (NaN/Inf row, bad scale) -> ValueError
    if (four_bit) {
      quant_encode_int4(xp, n, d, sp, op, threads, out, vp);
    } else {
      quant_encode_int8(xp, n, d, sp, op, threads, out, vp);
    }
  }
  return codes;
}

py::array_t<float> quant_reflect_py(const py::object& x_obj, const py::object& v_obj, int threads) {
  const py::array x = typed_arg<float>(x_obj, "x", "float32", 2);
  const std::int32_t d = quant_dim_arg(x.shape(1));
  py::array v;
  const float* vp = reflector_arg(v_obj, &v, d);
  if (vp == nullptr) throw py::type_error("v must be a float32 (D,) array, not None");
  const py::ssize_t n = x.shape(0);
  py::array_t<float> out({n, static_cast<py::ssize_t>(d)});
  const auto* xp = static_cast<const float*>(x.data());
  float* op = out.mutable_data();
  {
    py::gil_scoped_release release;
    quant_reflect(xp, n, d, vp, threads, op);
  }
  return out;
}

py::array_t<std::uint64_t> quant_encode_binary_py(const py::object& x_obj, const py::object& mean_obj,
                                                  int threads) {
  const py::array x = typed_arg<float>(x_obj, "x", "float32", 2);
  const std::int32_t d = quant_dim_arg(x.shape(1));
  if (d % 64 != 0)
    throw py::value_error("binary codes need a dimension multiple of 64, got " + std::to_string(d));
  const py::array mean = typed_arg<float>(mean_obj, "mean", "float32", 1);
  check_len(mean, "mean", 0, d, "x");
  const py::ssize_t n = x.shape(0);
  py::array_t<std::uint64_t> codes({n, static_cast<py::ssize_t>(d / 64)});
  const auto* xp = static_cast<const float*>(x.data());
  const auto* mp = static_cast<const float*>(mean.data());
  std::uint64_t* out = codes.mutable_data();
  {
    py::gil_scoped_release release;
    quant_encode_binary(xp, n, d, mp, threads, out);
  }
  return codes;
}

// int8 (four_bit false) or int4 top-k: codes u8 (N, D or ceil(D / 2)), queries i8 (Q, D).
py::tuple quant_score_py(const py::object& codes_obj, const py::object& queries_obj, std::int64_t k,
                         int threads, bool four_bit) {
  const py::array codes = typed_arg<std::uint8_t>(codes_obj, "codes", "uint8", 2);
  const py::array queries = typed_arg<std::int8_t>(queries_obj, "queries", "int8", 2);
  const std::int32_t d = quant_dim_arg(queries.shape(1));
  check_len(codes, "codes", 1, four_bit ? (d + 1) / 2 : d, "queries of this dimension");
  const std::int32_t kk = quant_k_arg(k);
  const py::ssize_t n = codes.shape(0), nq = queries.shape(0);
  py::array_t<std::int32_t> scores({nq, static_cast<py::ssize_t>(kk)});
  py::array_t<std::int64_t> idx({nq, static_cast<py::ssize_t>(kk)});
  const auto* cp = static_cast<const std::uint8_t*>(codes.data());
  const auto* qp = static_cast<const std::int8_t*>(queries.data());
  std::int32_t* sp = scores.mutable_data();
  std::int64_t* ip = idx.mutable_data();
  {
    py::gil_scoped_release release;
    if (four_bit) {
      quant_score_int4(cp, n, d, qp, nq, kk, threads, sp, ip);
    } else {
      quant_score_int8(cp, n, d, qp, nq, kk, threads, sp, ip);
    }
  }
  return py::make_tuple(scores, idx);
}

// l2 top-k: codes u8 (N, D or ceil(D / 2)), queries i8 (Q, D) of 2q, qscale f64 (Q), bias f32 (N).
py::tuple quant_score_l2_py(const py::object& codes_obj, const py::object& queries_obj,
                            const py::object& qscale_obj, const py::object& bias_obj, std::int64_t k,
                            int threads, bool four_bit) {
  const py::array codes = typed_arg<std::uint8_t>(codes_obj, "codes", "uint8", 2);
  const py::array queries = typed_arg<std::int8_t>(queries_obj, "queries", "int8", 2);
  const py::array qscale = typed_arg<double>(qscale_obj, "qscale", "float64", 1);
  const py::array bias = typed_arg<float>(bias_obj, "bias", "float32", 1);
  const std::int32_t d = quant_dim_arg(queries.shape(1));
  check_len(codes, "codes", 1, four_bit ? (d + 1) / 2 : d, "queries of this dimension");
  check_len(qscale, "qscale", 0, queries.shape(0), "queries");
  check_len(bias, "bias", 0, codes.shape(0), "codes");
  const std::int32_t kk = quant_k_arg(k);
  const py::ssize_t n = codes.shape(0), nq = queries.shape(0);
  py::array_t<double> keys({nq, static_cast<py::ssize_t>(kk)});
  py::array_t<std::int64_t> idx({nq, static_cast<py::ssize_t>(kk)});
  const auto* cp = static_cast<const std::uint8_t*>(codes.data());
  const auto* qp = static_cast<const std::int8_t*>(queries.data());
  const auto* sp = static_cast<const double*>(qscale.data());
  const auto* bp = static_cast<const float*>(bias.data());
  double* kp = keys.mutable_data();
  std::int64_t* ip = idx.mutable_data();
  {
    py::gil_scoped_release release;
    quant_score_l2(cp, n, d, four_bit, qp, nq, sp, bp, kk, threads, kp, ip);
  }
  return py::make_tuple(keys, idx);
}

py::tuple quant_score_binary_py(const py::object& codes_obj, const py::object& queries_obj, std::int64_t k,
                                int threads) {
  const py::array codes = typed_arg<std::uint64_t>(codes_obj, "codes", "uint64", 2);
  const py::array queries = typed_arg<std::uint64_t>(queries_obj, "queries", "uint64", 2);
  const py::ssize_t words = queries.shape(1);
  if (words < 1 || words > kQuantMaxDim / 64) {
    throw py::value_error("queries must have 1.." + std::to_string(kQuantMaxDim / 64) +
                          " uint64 words, got " + std::to_string(words));
  }
  check_len(codes, "codes", 1, words, "queries");
  const std::int32_t kk = quant_k_arg(k);
  const py::ssize_t n = codes.shape(0), nq = queries.shape(0);
  py::array_t<std::int32_t> dist({nq, static_cast<py::ssize_t>(kk)});
  py::array_t<std::int64_t> idx({nq, static_cast<py::ssize_t>(kk)});
  const auto* cp = static_cast<const std::uint64_t*>(codes.data());
  const auto* qp = static_cast<const std::uint64_t*>(queries.data());
  std::int32_t* dp = dist.mutable_data();
  std::int64_t* ip = idx.mutable_data();
  {
    py::gil_scoped_release release;
    quant_score_binary(cp, n, static_cast<std::int32_t>(words), qp, nq, kk, threads, dp, ip);
  }
  return py::make_tuple(dist, idx);
}

py::array_t<std::int32_t> quant_dot_int8_all_py(const py::object& codes_obj, const py::object& queries_obj,
                                                int threads) {
  const py::array codes = typed_arg<std::uint8_t>(codes_obj, "codes", "uint8", 2);
  const py::array queries = typed_arg<std::int8_t>(queries_obj, "queries", "int8", 2);
  const std::int32_t d = quant_dim_arg(queries.shape(1));
  check_len(codes, "codes", 1, d, "queries of this dimension");
  const py::ssize_t n = codes.shape(0), nq = queries.shape(0);
  py::array_t<std::int32_t> out({nq, n});
  const auto* cp = static_cast<const std::uint8_t*>(codes.data());
  const auto* qp = static_cast<const std::int8_t*>(queries.data());
  std::int32_t* op = out.mutable_data();
  {
    py::gil_scoped_release release;
    quant_dot_int8_all(cp, n, d, qp, nq, threads, op);
  }
  return out;
}

py::tuple quant_rerank_py(const py::object& x_obj, const py::object& queries_obj, const py::object& cand_obj,
                          std::int64_t k, bool l2, int threads) {
  const py::array x = typed_arg<float>(x_obj, "x", "float32", 2);
  const py::array queries = typed_arg<float>(queries_obj, "queries", "float32", 2);
  const py::array cand = typed_arg<std::int64_t>(cand_obj, "cand", "int64", 2);
  const std::int32_t d = quant_dim_arg(queries.shape(1));
  check_len(x, "x", 1, d, "queries of this dimension");
  if (cand.shape(0) != queries.shape(0)) {
    throw py::value_error("cand has " + std::to_string(cand.shape(0)) + " rows but there are " +
                          std::to_string(queries.shape(0)) + " queries");
  }
  const py::ssize_t m = cand.shape(1), nq = queries.shape(0);
  const std::int32_t kk = quant_k_arg(k);
  if (m < kk || m > std::numeric_limits<std::int32_t>::max()) {
    throw py::value_error("cand needs at least k = " + std::to_string(kk) + " columns, got " +
                          std::to_string(m));
  }
  py::array_t<float> scores({nq, static_cast<py::ssize_t>(kk)});
  py::array_t<std::int64_t> pos({nq, static_cast<py::ssize_t>(kk)});
  const auto* xp = static_cast<const float*>(x.data());
  const auto* qp = static_cast<const float*>(queries.data());
  const auto* cp = static_cast<const std::int64_t*>(cand.data());
  float* sp = scores.mutable_data();
  std::int64_t* pp = pos.mutable_data();
  {
    py::gil_scoped_release release;  // std::invalid_argument (a candidate out of range) -> ValueError
    quant_rerank(xp, x.shape(0), d, qp, nq, cp, static_cast<std::int32_t>(m), kk, l2, threads, sp, pp);
  }
  return py::make_tuple(scores, pos);
}

// The Arrow C data interface's two structs (an ABI-stable layout, written by the interface's
// specification: https://arrow.apache.org/docs/format/CDataInterface.html), for the pixels a
// Pillow image lends through `__arrow_c_array__` (Pillow 11.2+) without a copy.
#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE
extern "C" {
struct ArrowSchema {
  const char* format;
  const char* name;
  const char* metadata;
  std::int64_t flags;
  std::int64_t n_children;
  struct ArrowSchema** children;
  struct ArrowSchema* dictionary;
  void (*release)(struct ArrowSchema*);
  void* private_data;
};
struct ArrowArray {
  std::int64_t length;
  std::int64_t null_count;
  std::int64_t offset;
  std::int64_t n_buffers;
  std::int64_t n_children;
  const void** buffers;
  struct ArrowArray** children;
  struct ArrowArray* dictionary;
  void (*release)(struct ArrowArray*);
  void* private_data;
};
}
#endif

// A plain uint8 array of `length` values, no nulls, no offset: its data buffer, else nullptr.
const std::uint8_t* arrow_bytes(const ArrowSchema* s, const ArrowArray* a, std::int64_t length) {
  if (s == nullptr || a == nullptr || s->format == nullptr || std::strcmp(s->format, "C") != 0 ||
      a->length != length || a->offset != 0 || a->null_count != 0 || a->n_buffers != 2 ||
      a->buffers == nullptr) {
    return nullptr;
  }
  return static_cast<const std::uint8_t*>(a->buffers[1]);
}

// The pixels of an image exported as Pillow exports them (a "C" (uint8) array of width x height
// values for one byte per pixel; a "+w:4" fixed-size list of four "C" for four), as a read-only
// HxW or HxWx4 array over that memory (no copy). The array keeps `array` (the capsule that owns
// the export, whose destructor releases it) alive. ValueError for any other layout.
py::array arrow_pixels_py(const py::capsule& schema, const py::capsule& array, std::int64_t width,
                          std::int64_t height) {
  const auto* s = static_cast<const ArrowSchema*>(PyCapsule_GetPointer(schema.ptr(), "arrow_schema"));
  const auto* a = static_cast<const ArrowArray*>(PyCapsule_GetPointer(array.ptr(), "arrow_array"));
  if (s == nullptr || a == nullptr) throw py::error_already_set();
  if (s->release == nullptr || a->release == nullptr)
    throw py::value_error("arrow_pixels: the export was released");
  if (width < 1 || height < 1) throw py::value_error("arrow_pixels: the image must be at least 1x1");
  const std::int64_t n = width * height;
  const std::uint8_t* data = arrow_bytes(s, a, n);
  std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(height), static_cast<py::ssize_t>(width)};
  if (data == nullptr && s->format != nullptr && std::strcmp(s->format, "+w:4") == 0 && s->n_children == 1 &&
      a->n_children == 1 && a->length == n && a->offset == 0 && a->null_count == 0 &&
      s->children != nullptr && a->children != nullptr) {
    data = arrow_bytes(s->children[0], a->children[0], 4 * n);
    shape.push_back(4);
  }
  if (data == nullptr) {
    throw py::value_error(std::string("arrow_pixels: not an image's uint8 pixels (Arrow format '") +
                          (s->format != nullptr ? s->format : "") + "')");
  }
  py::array out(py::dtype::of<std::uint8_t>(), shape, data, array);
  out.attr("flags").attr("writeable") = false;
  return out;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "mmcore native kernels (private: use the mmcore package)";
  m.attr("DEFAULT_MAX_PIXELS") = kDefaultMaxPixels;
#ifdef MMCORE_HAVE_CUDA
  bind_gpu(m);  // GpuContext, gpu_decode_plan (cpp/bindings/gpu.cpp)
#endif

  m.def(
      "decode",
      [](py::handle src, int pixel, bool exif, std::int64_t max_pixels, bool fast) {
        return one(src, make_options(pixel, exif, max_pixels, fast));
      },
      py::arg("src"), py::arg("pixel"), py::arg("exif"), py::arg("max_pixels"), py::arg("fast"));
  m.def(
      "decode_batch",
      [](const py::sequence& srcs, int pixel, bool exif, std::int64_t max_pixels, bool fast, int threads,
         const py::object& out) {
        return many(srcs, make_options(pixel, exif, max_pixels, fast), threads, out);
      },
      py::arg("srcs"), py::arg("pixel"), py::arg("exif"), py::arg("max_pixels"), py::arg("fast"),
      py::arg("threads"), py::arg("out") = py::none());
  m.def(
      "thumbnail",
      [](py::handle src, int pixel, bool exif, std::int64_t max_pixels, bool fast, std::int32_t short_side,
         std::int32_t fit_w, std::int32_t fit_h, std::int32_t crop_w, std::int32_t crop_h,
         std::int32_t exact_w, std::int32_t exact_h, int filter, bool upscale, double reducing_gap) {
        return one(src, thumb_options(pixel, exif, max_pixels, fast, short_side, fit_w, fit_h, crop_w, crop_h,
                                      exact_w, exact_h, filter, upscale, reducing_gap));
      },
      py::arg("src"), py::arg("pixel"), py::arg("exif"), py::arg("max_pixels"), py::arg("fast"),
      py::arg("short_side"), py::arg("fit_w"), py::arg("fit_h"), py::arg("crop_w"), py::arg("crop_h"),
      py::arg("exact_w"), py::arg("exact_h"), py::arg("filter"), py::arg("upscale"), py::arg("reducing_gap"));
  m.def(
      "thumbnail_batch",
      [](const py::sequence& srcs, int pixel, bool exif, std::int64_t max_pixels, bool fast,
         std::int32_t short_side, std::int32_t fit_w, std::int32_t fit_h, std::int32_t crop_w,
         std::int32_t crop_h, std::int32_t exact_w, std::int32_t exact_h, int filter, bool upscale,
         double reducing_gap, int threads, const py::object& out) {
        return many(srcs,
                    thumb_options(pixel, exif, max_pixels, fast, short_side, fit_w, fit_h, crop_w, crop_h,
                                  exact_w, exact_h, filter, upscale, reducing_gap),
                    threads, out);
      },
      py::arg("srcs"), py::arg("pixel"), py::arg("exif"), py::arg("max_pixels"), py::arg("fast"),
      py::arg("short_side"), py::arg("fit_w"), py::arg("fit_h"), py::arg("crop_w"), py::arg("crop_h"),
      py::arg("exact_w"), py::arg("exact_h"), py::arg("filter"), py::arg("upscale"), py::arg("reducing_gap"),
      py::arg("threads"), py::arg("out") = py::none());
  m.def(
      "thumbnail_geometry",
      [](std::int32_t w, std::int32_t h, std::int32_t short_side, std::int32_t fw, std::int32_t fh,
         std::int32_t cw, std::int32_t ch, std::int32_t ew, std::int32_t eh, bool upscale) {
        if (w < 1 || h < 1) throw py::value_error("thumbnail_geometry: the image must be at least 1x1");
        ThumbnailOptions o;
        o.short_side = short_side;
        o.fit_width = fw;
        o.fit_height = fh;
        o.crop_width = cw;
        o.crop_height = ch;
        o.exact_width = ew;
        o.exact_height = eh;
        o.upscale = upscale;
        std::int32_t rw = 0, rh = 0, ow = 0, oh = 0;
        thumbnail_geometry(w, h, o, &rw, &rh, &ow, &oh);
        return py::make_tuple(rw, rh, ow, oh);
      },
      py::arg("width"), py::arg("height"), py::arg("short_side"), py::arg("fit_width"), py::arg("fit_height"),
      py::arg("crop_width"), py::arg("crop_height"), py::arg("exact_width"), py::arg("exact_height"),
      py::arg("upscale"));
  m.def("resize", &resize_py, py::arg("img"), py::arg("width"), py::arg("height"), py::arg("filter"),
        py::arg("backend") = -1, py::arg("full_width") = 0, py::arg("full_height") = 0);
  m.def("image_info", &image_info_py, py::arg("src"), py::arg("exif") = true);
  m.def("image_info_batch", &image_info_batch_py, py::arg("srcs"), py::arg("exif") = true);
  m.def("image_format_names", &image_format_names);
  m.def(
      "dct2",
      [](const py::array_t<double, py::array::c_style | py::array::forcecast>& x) {
        if (x.ndim() != 1) throw py::value_error("dct2: x must be 1-D");
        py::array_t<double> out(x.shape(0));
        if (!dct2_scipy(x.data(), static_cast<std::int32_t>(x.shape(0)), out.mutable_data())) {
          throw py::value_error("dct2: the length must have no prime factor over 5");
        }
        return out;
      },
      py::arg("x"));
  m.def("arrow_pixels", &arrow_pixels_py, py::arg("schema"), py::arg("array"), py::arg("width"),
        py::arg("height"));
  m.def("read_files", &read_files_py, py::arg("paths"), py::arg("max_bytes"), py::arg("threads"));
  m.def("tar_scan", &tar_scan_py, py::arg("fd"), py::arg("offset"), py::arg("max"));
  py::class_<ThreadBudget>(m, "ThreadBudget",
                           "Tokens shared by batch calls running at the same time: ThreadBudget(n) lets them "
                           "work on at most n images at once between them (hash_batch(..., budget=)).")
      .def(py::init<int>(), py::arg("tokens"))
      .def_property_readonly("tokens", &ThreadBudget::tokens);
  m.def("hash_batch", &hash_batch_py, py::arg("srcs"), py::arg("kinds"), py::arg("mode"), py::arg("dihedral"),
        py::arg("exif"), py::arg("max_pixels"), py::arg("threads"), py::arg("thumb") = py::none(),
        py::arg("budget") = nullptr, py::arg("hash_size") = 8, py::arg("highfreq_factor") = 4,
        py::arg("binbits") = 3);
  m.def("encode", &encode_py, py::arg("img"), py::arg("format"), py::arg("quality"), py::arg("optimize"),
        py::arg("method") = 4);
  m.def("encode_batch", &encode_batch_py, py::arg("images"), py::arg("format"), py::arg("quality"),
        py::arg("optimize"), py::arg("threads"), py::arg("method") = 4);
  m.def("build_info", &build_info_py);
  m.def("hamming_knn", &hamming_knn_py, py::arg("base"), py::arg("ids"), py::arg("queries"), py::arg("k"),
        py::arg("threads"));
  m.def("hamming_radius", &hamming_radius_py, py::arg("base"), py::arg("ids"), py::arg("queries"),
        py::arg("r"), py::arg("threads"), py::arg("method") = "auto");
  m.def("hamming_join", &hamming_join_py, py::arg("base"), py::arg("r"), py::arg("threads"),
        py::arg("method") = "auto");
  m.def("hamming_components", &hamming_components_py, py::arg("base"), py::arg("r"), py::arg("threads"),
        py::arg("method") = "auto");
  m.def("union_find", &union_find_py, py::arg("n"), py::arg("a"), py::arg("b"));
  m.def(
      "quant_encode_int8",
      [](const py::object& x, const py::object& scale, const py::object& offset, int threads,
         const py::object& reflect) { return quant_encode_py(x, scale, offset, threads, false, reflect); },
      py::arg("x"), py::arg("scale"), py::arg("offset"), py::arg("threads"), py::arg("reflect") = py::none());
  m.def(
      "quant_encode_int4",
      [](const py::object& x, const py::object& scale, const py::object& offset, int threads,
         const py::object& reflect) { return quant_encode_py(x, scale, offset, threads, true, reflect); },
      py::arg("x"), py::arg("scale"), py::arg("offset"), py::arg("threads"), py::arg("reflect") = py::none());
  m.def("quant_reflect", &quant_reflect_py, py::arg("x"), py::arg("v"), py::arg("threads"));
  m.def("quant_encode_binary", &quant_encode_binary_py, py::arg("x"), py::arg("mean"), py::arg("threads"));
  m.def(
      "quant_score_int8",
      [](const py::object& codes, const py::object& queries, std::int64_t k, int threads) {
        return quant_score_py(codes, queries, k, threads, false);
      },
      py::arg("codes"), py::arg("queries"), py::arg("k"), py::arg("threads"));
  m.def("quant_score_l2", &quant_score_l2_py, py::arg("codes"), py::arg("queries"), py::arg("qscale"),
        py::arg("bias"), py::arg("k"), py::arg("threads"), py::arg("four_bit"));
  m.def(
      "quant_score_int4",
      [](const py::object& codes, const py::object& queries, std::int64_t k, int threads) {
        return quant_score_py(codes, queries, k, threads, true);
      },
      py::arg("codes"), py::arg("queries"), py::arg("k"), py::arg("threads"));
  m.def("quant_score_binary", &quant_score_binary_py, py::arg("codes"), py::arg("queries"), py::arg("k"),
        py::arg("threads"));
  m.def("quant_dot_int8_all", &quant_dot_int8_all_py, py::arg("codes"), py::arg("queries"),
        py::arg("threads"));
  m.def("quant_rerank", &quant_rerank_py, py::arg("x"), py::arg("queries"), py::arg("cand"), py::arg("k"),
        py::arg("l2"), py::arg("threads"));
}
