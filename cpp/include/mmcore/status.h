// Per-record outcome of every batch kernel.
//
// Contract: a kernel that processes records writes one Status per record and always completes;
// bad data never throws, aborts or stops the batch. Messages are written into caller-owned
// fixed-size buffers (ErrorText) so the C++ API carries no std::string across the ABI.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mmcore {

/// Values are stable: they are stored in Parquet and exposed as mmcore.Status.
enum class Status : std::uint8_t {
  kOk = 0,
  kOkWarning = 1,    ///< decoded, but the stream had recoverable errors
  kCorrupt = 2,      ///< the data is damaged or is not an image
  kUnsupported = 3,  ///< a valid stream mmcore does not handle (e.g. 12-bit JPEG)
  kTooLarge = 4,     ///< over the pixel limit, refused before any allocation
  kNoMemory = 5,     ///< an allocation failed
  kDevice = 6,       ///< a GPU / driver error
};

/// True for kOk and kOkWarning: an image (or hash) was produced.
constexpr bool status_ok(Status s) {
  return s == Status::kOk || s == Status::kOkWarning;
}

constexpr std::size_t kErrorTextCap = 256;

/// A caller-owned message buffer; empty string when there is nothing to say.
struct ErrorText {
  char text[kErrorTextCap] = {0};
  /// printf-style; truncates silently at kErrorTextCap - 1 characters.
  void set(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
  void clear() { text[0] = '\0'; }
  bool empty() const { return text[0] == '\0'; }
};

}  // namespace mmcore
