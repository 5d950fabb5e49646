// Tar member headers read without Python's tarfile, for the job's WebDataset source.
//
// Contract: tar_scan reads a run of consecutive members whose headers are plain, and stops at the
// first header that is not, leaving that member to tarfile (the caller's reader). Plain means: a
// regular file ('0' or NUL) or folder ('5') header, alone or after one pax header ('x') whose
// records set only mtime, atime or ctime; every number field written as tar writers write it
// (optional white space, octal digits, optional white space, then nothing or a NUL and anything);
// the unsigned header checksum right. For such a header the member's name, type, size and data
// offset are what tarfile gives (name: the ustar prefix, '/', the name; a v7 file named 'x/' is a
// folder; a folder's trailing '/' removed). Anything else (an end-of-archive block, a long name,
// a link, a global or other pax header, a base-256 or odd number field, a signed-byte checksum, a
// file cut short before a member's first data bytes) ends the run before that member, so the
// caller's reader meets it, and says what it says. Thread-safe (pread only); no allocation.
#pragma once

#include <cstdint>

namespace mmcore {

/// One member of a run of plain headers.
struct TarMember {
  static constexpr int kNameCap = 256;  ///< prefix (155) + '/' + name (100)
  static constexpr int kHeadCap = 16;   ///< bytes of data kept (the image signatures need 12)
  std::int64_t header = 0;              ///< offset of its first header block (its pax header's)
  std::int64_t data = 0;                ///< offset of its data, just after its last header block
  std::int64_t size = 0;                ///< bytes of data
  char type = 0;                        ///< '0' or '\0' (a regular file) or '5' (a folder)
  int name_len = 0;
  int head_len = 0;                  ///< min(size, kHeadCap) for a regular file, else 0
  char name[kNameCap] = {};          ///< the name's bytes as stored (no NUL)
  std::uint8_t head[kHeadCap] = {};  ///< the first bytes of a regular file's data
};

/// Reads members from `offset` of the tar open as `fd` while their headers are plain (see
/// above), at most `max` of them, into `out`. Returns how many; `*next` is the offset after the
/// last one read (where the next member's header starts), `offset` when none was.
std::int64_t tar_scan(int fd, std::int64_t offset, TarMember* out, std::int64_t max, std::int64_t* next);

}  // namespace mmcore
