#include "mmcore/tar.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mmcore {

namespace {

constexpr std::int64_t kBlock = 512;
// One read per member: a pax header, one block of its records, the member's header and the first
// bytes of its data (what a WebDataset writer's members take).
constexpr std::int64_t kWindow = 4 * kBlock + TarMember::kHeadCap;
constexpr std::int64_t kOffsetLimit = std::int64_t{1} << 62;  // tarfile's, past which the caller reads

std::int64_t blocks(std::int64_t n) {
  return (n + kBlock - 1) / kBlock * kBlock;
}

// Bytes read at `off`, fewer only at the end of the file or on an error.
std::int64_t read_at(int fd, std::uint8_t* buf, std::int64_t n, std::int64_t off) {
  std::int64_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, buf + got, static_cast<size_t>(n - got), static_cast<off_t>(off + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += r;
  }
  return got;
}

bool space(std::uint8_t c) {
  return c == ' ' || (c >= '\t' && c <= '\r');
}

// A number field as tar writers write it: white space, octal digits, white space, then the end
// or a NUL and anything. Such a field tarfile reads as the octal digits (none: 0).
bool octal_field(const std::uint8_t* f, int len, std::int64_t* value) {
  int i = 0;
  while (i < len && space(f[i])) ++i;
  std::int64_t v = 0;
  for (; i < len && f[i] >= '0' && f[i] <= '7'; ++i) v = v * 8 + (f[i] - '0');  // <= 12 digits
  while (i < len && space(f[i])) ++i;
  if (i < len && f[i] != 0) return false;
  *value = v;
  return true;
}

int text_len(const std::uint8_t* f, int cap) {
  const void* nul = std::memchr(f, 0, static_cast<std::size_t>(cap));
  return nul != nullptr ? static_cast<int>(static_cast<const std::uint8_t*>(nul) - f) : cap;
}

struct Header {
  char type;
  std::int64_t size;
};

// A plain header block (see tar.h): its type and size, false for any other block.
bool plain_header(const std::uint8_t* h, Header* out) {
  const char type = static_cast<char>(h[156]);
  if (type != '0' && type != '\0' && type != '5' && type != 'x') return false;
  static constexpr int kFields[][2] = {{100, 8},  {108, 8}, {116, 8}, {124, 12},
                                       {136, 12}, {329, 8}, {337, 8}};
  std::int64_t v = 0;
  for (const auto& f : kFields) {
    if (!octal_field(h + f[0], f[1], &v)) return false;
  }
  std::int64_t sum = 256;  // the checksum field counts as eight spaces
  for (int i = 0; i < kBlock; ++i) sum += (i >= 148 && i < 156) ? 0 : h[i];
  std::int64_t chksum = 0;
  if (!octal_field(h + 148, 8, &chksum) || chksum != sum) return false;  // (an all-zero block fails)
  octal_field(h + 124, 12, &out->size);
  out->type = type;
  return true;
}

bool digits(const std::uint8_t* p, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    if (p[i] < '0' || p[i] > '9') return false;
  }
  return n > 0;
}

bool key_is(const std::uint8_t* p, std::int64_t n, const char* key) {
  return n == static_cast<std::int64_t>(std::strlen(key)) &&
         std::memcmp(p, key, static_cast<std::size_t>(n)) == 0;
}

// Whether pax records are well formed ("<length> <key>=<value>\n") and set only times.
bool times_only(const std::uint8_t* d, std::int64_t n) {
  std::int64_t pos = 0;
  while (pos < n) {
    std::int64_t sp = pos;
    while (sp < n && sp < pos + 21 && d[sp] != ' ') ++sp;
    if (sp == n || sp == pos + 21 || !digits(d + pos, sp - pos) || sp - pos > 18) return false;
    std::int64_t len = 0;
    for (std::int64_t i = pos; i < sp; ++i) len = len * 10 + (d[i] - '0');
    const std::int64_t end = pos + len;
    if (end > n || end <= sp + 1 || d[end - 1] != '\n') return false;
    const std::uint8_t* kv = d + sp + 1;
    const std::int64_t kv_len = end - 1 - (sp + 1);
    const void* eq = std::memchr(kv, '=', static_cast<std::size_t>(kv_len));
    if (eq == nullptr) return false;
    const std::int64_t key_len = static_cast<const std::uint8_t*>(eq) - kv;
    if (!key_is(kv, key_len, "mtime") && !key_is(kv, key_len, "atime") && !key_is(kv, key_len, "ctime")) {
      return false;
    }
    const std::uint8_t* value = kv + key_len + 1;
    const std::int64_t value_len = kv_len - key_len - 1;
    const void* dot = std::memchr(value, '.', static_cast<std::size_t>(value_len));
    if (dot == nullptr) {
      if (!digits(value, value_len)) return false;
    } else {
      const std::int64_t a = static_cast<const std::uint8_t*>(dot) - value;
      if (a + 1 == value_len && a == 0) return false;  // "." alone
      if ((a > 0 && !digits(value, a)) ||
          (value_len - a - 1 > 0 && !digits(value + a + 1, value_len - a - 1))) {
        return false;
      }
    }
    pos = end;
  }
  return true;
}

// The member's name as tarfile assembles it from the name and ustar prefix fields.
void member_name(const std::uint8_t* h, TarMember* m) {
  int n = text_len(h, 100);
  const int p = text_len(h + 345, 155);
  if (m->type == '\0' && n > 0 && h[n - 1] == '/') m->type = '5';  // v7: a folder is a file 'x/'
  const bool folder = m->type == '5';
  if (folder) {
    while (n > 0 && h[n - 1] == '/') --n;
  }
  int len = 0;
  if (p > 0) {
    std::memcpy(m->name, h + 345, static_cast<std::size_t>(p));
    m->name[p] = '/';
    len = p + 1;
  }
  std::memcpy(m->name + len, h, static_cast<std::size_t>(n));
  len += n;
  if (folder) {
    while (len > 0 && m->name[len - 1] == '/') --len;
  }
  m->name_len = len;
}

}  // namespace

std::int64_t tar_scan(int fd, std::int64_t offset, TarMember* out, std::int64_t max, std::int64_t* next) {
  std::uint8_t buf[kWindow];
  std::int64_t count = 0;
  std::int64_t at = offset;
  while (count < max && at > 0 && at < kOffsetLimit) {
    const std::int64_t got = read_at(fd, buf, kWindow, at);
    if (got < kBlock) break;
    Header head{};
    if (!plain_header(buf, &head)) break;
    std::int64_t h = 0;  // the member's own header, in buf
    if (head.type == 'x') {
      const std::int64_t records = head.size;
      h = kBlock + blocks(records);
      if (h + kBlock > got || !times_only(buf + kBlock, records)) break;
      if (!plain_header(buf + h, &head) || head.type == 'x') break;
    }
    TarMember& m = out[count];
    m.header = at;
    m.data = at + h + kBlock;
    m.size = head.size;
    m.type = head.type;
    member_name(buf + h, &m);
    m.head_len = 0;
    const bool regular = m.type != '5';
    if (regular) {
      const std::int64_t want = head.size < TarMember::kHeadCap ? head.size : TarMember::kHeadCap;
      if (h + kBlock + want > got) break;  // cut short before its first bytes: the caller says so
      std::memcpy(m.head, buf + h + kBlock, static_cast<std::size_t>(want));
      m.head_len = static_cast<int>(want);
    }
    at = m.data + (regular ? blocks(head.size) : 0);
    ++count;
  }
  *next = count > 0 ? at : offset;
  return count;
}

}  // namespace mmcore
