// Reusable scratch memory for one thread's records.
//
// Contract: a Workspace hands out a few uninitialised buffers by slot; a buffer handed out is
// valid until the next get() of the same slot, until end_record(), or until the Workspace is
// destroyed; two slots never alias. A batch keeps one per worker thread and calls end_record()
// after each record. end_record() frees the buffers under kRetainBytes (by default; the allocator already
// reuses those from record to record: freed in the order they were taken, they go back to the
// heap) and keeps the larger ones, which glibc maps afresh for every request (its mmap threshold
// stops growing at 32 MB) and which the kernel would then fault in and zero page by page: on
// 12 MP images that was a quarter of exact pHash + PDQ and half of full-size PDQ. Not
// thread-safe: one thread uses a Workspace at a time.
#pragma once

#include <cstddef>
#include <memory>

namespace mmcore {

class Workspace {
 public:
  /// What a buffer is for; one user of each slot is live at a time.
  enum class Slot : int {
    kDecode = 0,       ///< the decoded pixels hash_bytes hashes
    kGrey,             ///< Pillow "L" of hash_image / hash_bytes
    kPdqSquash,        ///< PDQ's 512x512 reference squash
    kPdq,              ///< PDQ's float scratch (pdq_scratch_floats)
    kThumbnailDecode,  ///< thumbnail_into's decode before the resize
    kThumbnailOrient,  ///< thumbnail_from_decoded's EXIF-oriented copy
    kDecodeOrient,     ///< decode_into's decode before EXIF orientation turns or mirrors it
    kCount
  };

  /// Buffers of at least this many bytes are kept from record to record by default.
  static constexpr std::size_t kRetainBytes = std::size_t{32} << 20;

  /// retain_bytes: the size from which end_record() keeps a buffer (0 keeps every one: tests and
  /// the fuzz harness use it so that every slot is reused).
  explicit Workspace(std::size_t retain_bytes = kRetainBytes) : retain_bytes_(retain_bytes) {}

  /// n elements of T (trivial types only), uninitialised, in `slot`; the slot's previous contents
  /// are gone. Throws std::bad_alloc when the memory cannot be had.
  template <typename T>
  T* get(Slot slot, std::size_t n) {
    return static_cast<T*>(bytes(slot, n * sizeof(T)));
  }

  /// The record is done: frees the buffers under the retain size, last slot first.
  void end_record();

  /// Sets every byte the slots hold to `byte`. For tests: a kernel that reads scratch before
  /// writing it then sees the byte instead of an earlier record's leftovers.
  void fill(unsigned char byte);

  /// The bytes the slots hold now.
  std::size_t held_bytes() const;

 private:
  void* bytes(Slot slot, std::size_t size);

  struct Buffer {
    std::unique_ptr<unsigned char[]> data;
    std::size_t size = 0;
  };
  std::size_t retain_bytes_;
  Buffer buffers_[static_cast<int>(Slot::kCount)];
};

}  // namespace mmcore
