// libFuzzer harness for tar_scan (mmcore/tar.h): the input is a tar file (a memfd), scanned from
// offset 512 (where the job's reader calls it: after the first member, which tarfile reads) and
// from every block offset of the first few, with runs of 1, 3 and 1024 members.
//
// Besides what the sanitizers catch, it traps on: more members than asked; a name or head longer
// than its field; a head longer than the member or than 16 bytes; a member whose data does not
// follow its header, or that does not follow the one before; an offset after the run that is not
// the last member's end; a run that does not start again the same from any of its members; a run
// of 1 that disagrees with the longer run's first member.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "mmcore/tar.h"

namespace {

constexpr std::int64_t kBlock = 512;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool same(const mmcore::TarMember& a, const mmcore::TarMember& b) {
  return a.header == b.header && a.data == b.data && a.size == b.size && a.type == b.type &&
         a.name_len == b.name_len && std::memcmp(a.name, b.name, static_cast<std::size_t>(a.name_len)) == 0 &&
         a.head_len == b.head_len && std::memcmp(a.head, b.head, static_cast<std::size_t>(a.head_len)) == 0;
}

void scan_from(int fd, std::int64_t offset) {
  std::vector<mmcore::TarMember> run(1024);
  std::int64_t next = -1;
  const std::int64_t n = mmcore::tar_scan(fd, offset, run.data(), 1024, &next);
  check(n >= 0 && n <= 1024);
  if (n == 0) {
    check(next == offset);
    return;
  }
  std::int64_t at = offset;
  for (std::int64_t i = 0; i < n; ++i) {
    const mmcore::TarMember& m = run[static_cast<std::size_t>(i)];
    check(m.header == at);
    check(m.data >= m.header + kBlock && (m.data - m.header) % kBlock == 0);
    check(m.name_len >= 0 && m.name_len <= mmcore::TarMember::kNameCap);
    check(m.type == '0' || m.type == '\0' || m.type == '5');
    check(m.size >= 0);
    if (m.type == '5') {
      check(m.head_len == 0);
      at = m.data;
    } else {
      check(m.head_len == (m.size < mmcore::TarMember::kHeadCap ? m.size : mmcore::TarMember::kHeadCap));
      at = m.data + (m.size + kBlock - 1) / kBlock * kBlock;
    }
  }
  check(next == at);
  // The run read again from any member (as after a run cut at `max`) gives the same members.
  for (std::int64_t i = 0; i < n && i < 8; ++i) {
    mmcore::TarMember one[3];
    std::int64_t next_one = -1;
    const std::int64_t k = mmcore::tar_scan(fd, run[static_cast<std::size_t>(i)].header, one, 3, &next_one);
    check(k == (n - i < 3 ? n - i : 3));
    for (std::int64_t j = 0; j < k; ++j) check(same(one[j], run[static_cast<std::size_t>(i + j)]));
  }
  mmcore::TarMember first;
  std::int64_t next_first = -1;
  check(mmcore::tar_scan(fd, offset, &first, 1, &next_first) == 1 && same(first, run[0]));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const int fd = memfd_create("fuzz_tar", 0);
  if (fd < 0) std::abort();
  std::size_t done = 0;
  while (done < size) {
    const ssize_t w = write(fd, data + done, size - done);
    if (w <= 0) std::abort();
    done += static_cast<std::size_t>(w);
  }
  for (std::int64_t offset = kBlock; offset < static_cast<std::int64_t>(size) && offset <= 8 * kBlock;
       offset += kBlock) {
    scan_from(fd, offset);
  }
  close(fd);
  return 0;
}
