// EXIF orientation: locate the TIFF block in each container and read tag 0x0112 of IFD0.
// Every read is bounds-checked: this runs on untrusted bytes.
#include <cstring>

#include "decode_internal.h"

namespace mmcore::detail {
namespace {

std::uint32_t rd16(const std::uint8_t* p, bool le) {
  return le ? static_cast<std::uint32_t>(p[0] | (p[1] << 8)) : static_cast<std::uint32_t>((p[0] << 8) | p[1]);
}
std::uint32_t rd32(const std::uint8_t* p, bool le) {
  return le ? (rd16(p, true) | (rd16(p + 2, true) << 16)) : ((rd16(p, false) << 16) | rd16(p + 2, false));
}
std::uint32_t be32(const std::uint8_t* p) {
  return rd32(p, false);
}
std::uint32_t le32(const std::uint8_t* p) {
  return rd32(p, true);
}

}  // namespace

std::int32_t exif_orientation_from_tiff(const std::uint8_t* t, std::size_t n) {
  if (t == nullptr || n < 8) return 1;
  bool le;
  if (t[0] == 'I' && t[1] == 'I') {
    le = true;
  } else if (t[0] == 'M' && t[1] == 'M') {
    le = false;
  } else {
    return 1;
  }
  if (rd16(t + 2, le) != 42) return 1;
  const std::uint64_t ifd = rd32(t + 4, le);
  if (ifd + 2 > n) return 1;
  const std::uint32_t count = rd16(t + ifd, le);
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint64_t e = ifd + 2 + 12ull * i;
    if (e + 12 > n) return 1;
    if (rd16(t + e, le) != 0x0112) continue;
    const std::uint32_t type = rd16(t + e + 2, le);
    std::uint32_t v = 0;
    if (type == 3) {  // SHORT
      v = rd16(t + e + 8, le);
    } else if (type == 4) {  // LONG
      v = rd32(t + e + 8, le);
    } else {
      return 1;
    }
    return (v >= 1 && v <= 8) ? static_cast<std::int32_t>(v) : 1;
  }
  return 1;
}

ByteSpan jpeg_find_exif(const std::uint8_t* d, std::size_t n) {
  // Walk the markers before the first SOS; APP1 segments starting with "Exif\0\0".
  std::size_t p = 2;
  while (p + 4 <= n) {
    if (d[p] != 0xFF) return {};
    const std::uint8_t m = d[p + 1];
    if (m == 0xFF) {  // fill byte
      ++p;
      continue;
    }
    if (m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) {
      p += 2;
      continue;
    }
    if (m == 0xDA || m == 0xD9) return {};
    const std::size_t len = (static_cast<std::size_t>(d[p + 2]) << 8) | d[p + 3];
    if (len < 2 || p + 2 + len > n) return {};
    if (m == 0xE1 && len >= 8 && std::memcmp(d + p + 4, "Exif\0\0", 6) == 0) {
      return {d + p + 10, len - 8};
    }
    p += 2 + len;
  }
  return {};
}

ByteSpan png_find_exif(const std::uint8_t* d, std::size_t n) {
  std::size_t p = 8;
  while (p + 12 <= n) {
    const std::uint64_t len = be32(d + p);
    const std::uint8_t* type = d + p + 4;
    if (len > n - p - 12) return {};
    if (std::memcmp(type, "eXIf", 4) == 0) return {d + p + 8, static_cast<std::size_t>(len)};
    // eXIf may also follow the image data (libpng accepts it there; Pillow reads it after load):
    // the walk reads chunk headers only, up to IEND.
    if (std::memcmp(type, "IEND", 4) == 0) return {};
    p += 12 + len;
  }
  return {};
}

ByteSpan webp_find_exif(const std::uint8_t* d, std::size_t n) {
  std::size_t p = 12;
  while (p + 8 <= n) {
    const std::uint64_t len = le32(d + p + 4);
    if (len > n - p - 8) return {};
    if (std::memcmp(d + p, "EXIF", 4) == 0) {
      const std::uint8_t* e = d + p + 8;
      std::size_t m = static_cast<std::size_t>(len);
      if (m >= 6 && std::memcmp(e, "Exif\0\0", 6) == 0) e += 6, m -= 6;  // some writers keep the APP1 prefix
      return {e, m};
    }
    p += 8 + len + (len & 1);
  }
  return {};
}

}  // namespace mmcore::detail
