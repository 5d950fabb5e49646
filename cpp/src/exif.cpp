// EXIF orientation: locate the TIFF block in each container and read tag 0x0112 of IFD0.
// Every read is bounds-checked: this runs on untrusted bytes.
#include <cstring>
#include <vector>

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

std::int32_t exif_orientation_from_tiff(const std::uint8_t* t, std::size_t n, bool* tag_found) {
  if (tag_found != nullptr) *tag_found = false;
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
    if (tag_found != nullptr) *tag_found = true;
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

namespace {

// The payload after `prefix` (of `plen` bytes) of the first APP1 segment that starts with it,
// walking the markers before the first SOS.
ByteSpan jpeg_find_app1(const std::uint8_t* d, std::size_t n, const char* prefix, std::size_t plen) {
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
    if (m == 0xE1 && len >= 2 + plen && std::memcmp(d + p + 4, prefix, plen) == 0) {
      return {d + p + 4 + plen, len - 2 - plen};
    }
    p += 2 + len;
  }
  return {};
}

}  // namespace

ByteSpan jpeg_find_xmp(const std::uint8_t* d, std::size_t n) {
  static const char kXmp[] = "http://ns.adobe.com/xap/1.0/";  // then a NUL
  return jpeg_find_app1(d, n, kXmp, sizeof kXmp);
}

ByteSpan jpeg_find_exif(const std::uint8_t* d, std::size_t n) {
  static const char kExif[] = "Exif\0";  // "Exif\0\0" with the literal's own NUL
  return jpeg_find_app1(d, n, kExif, sizeof kExif);
}

namespace {

// The first chunk for which at(type, payload, length) gives a span, walking a PNG's chunk headers
// up to IEND (eXIf and iTXt may come before or after the image data).
template <class At>
ByteSpan png_walk(const std::uint8_t* d, std::size_t n, At at) {
  std::size_t p = 8;
  while (p + 12 <= n) {
    const std::uint64_t len = be32(d + p);
    const std::uint8_t* type = d + p + 4;
    if (len > n - p - 12) return {};
    const ByteSpan got = at(type, d + p + 8, static_cast<std::size_t>(len));
    if (got.data != nullptr) return got;
    if (std::memcmp(type, "IEND", 4) == 0) return {};
    p += 12 + len;
  }
  return {};
}

// The payload of a WebP's first chunk with this FourCC.
ByteSpan webp_chunk(const std::uint8_t* d, std::size_t n, const char* fourcc) {
  std::size_t p = 12;
  while (p + 8 <= n) {
    const std::uint64_t len = le32(d + p + 4);
    if (len > n - p - 8) return {};
    if (std::memcmp(d + p, fourcc, 4) == 0) return {d + p + 8, static_cast<std::size_t>(len)};
    p += 8 + len + (len & 1);
  }
  return {};
}

}  // namespace

ByteSpan png_find_exif(const std::uint8_t* d, std::size_t n) {
  return png_walk(d, n, [](const std::uint8_t* type, const std::uint8_t* data, std::size_t len) {
    return std::memcmp(type, "eXIf", 4) == 0 ? ByteSpan{data, len} : ByteSpan{};
  });
}

ByteSpan webp_find_exif(const std::uint8_t* d, std::size_t n) {
  ByteSpan e = webp_chunk(d, n, "EXIF");
  if (e.size >= 6 && std::memcmp(e.data, "Exif\0\0", 6) == 0) {  // some writers keep the APP1 prefix
    e.data += 6;
    e.size -= 6;
  }
  return e;
}

ByteSpan png_find_xmp(const std::uint8_t* d, std::size_t n, bool* compressed) {
  static const char kKey[] = "XML:com.adobe.xmp";  // then a NUL
  bool deflated = false;
  const ByteSpan got =
      png_walk(d, n, [&](const std::uint8_t* type, const std::uint8_t* data, std::size_t len) {
        if (std::memcmp(type, "iTXt", 4) != 0 || len < sizeof kKey + 2 ||
            std::memcmp(data, kKey, sizeof kKey) != 0)
          return ByteSpan{};
        // keyword NUL, compression flag, method, language NUL, translated keyword NUL, text
        const std::uint8_t* c = data + sizeof kKey;
        const std::uint8_t* end = data + len;
        if (c[0] != 0 && c[1] != 0) return ByteSpan{};  // an unknown compression method: no text
        deflated = c[0] != 0;
        c += 2;
        for (int field = 0; field < 2; ++field) {
          const auto* z =
              static_cast<const std::uint8_t*>(std::memchr(c, 0, static_cast<std::size_t>(end - c)));
          if (z == nullptr) return ByteSpan{};
          c = z + 1;
        }
        return ByteSpan{c, static_cast<std::size_t>(end - c)};
      });
  if (compressed != nullptr) *compressed = got.data != nullptr && deflated;
  return got;
}

std::int32_t png_xmp_orientation(const std::uint8_t* d, std::size_t n) {
  bool compressed = false;
  const ByteSpan x = png_find_xmp(d, n, &compressed);
  if (!compressed) return xmp_orientation(x.data, x.size);
  // Pillow inflates a compressed iTXt up to its MAX_TEXT_CHUNK (1 MiB) and refuses more; damaged
  // data gives it no text either (a truncated stream gives what it holds).
  constexpr std::size_t kMaxText = 1u << 20;
  std::vector<std::uint8_t> text;
  bool damaged = false;
  if (inflate_capped(x.data, x.size, kMaxText, &text, &damaged) > kMaxText || damaged) return 0;
  return xmp_orientation(text.data(), text.size());
}

ByteSpan webp_find_xmp(const std::uint8_t* d, std::size_t n) {
  return webp_chunk(d, n, "XMP ");
}

std::int32_t xmp_orientation(const std::uint8_t* x, std::size_t n) {
  static const char kTag[] = "tiff:Orientation";
  constexpr std::size_t kLen = sizeof kTag - 1;
  for (std::size_t i = 0; x != nullptr && i + kLen < n; ++i) {
    if (x[i] != 't' || std::memcmp(x + i, kTag, kLen) != 0) continue;
    std::size_t j = i + kLen;
    if (x[j] == '>') {
      j += 1;
    } else if (x[j] == '=' && j + 1 < n && x[j + 1] == '"') {
      j += 2;
    } else {
      continue;  // Pillow's pattern needs one of the two right after the name
    }
    if (j < n && x[j] >= '0' && x[j] <= '9') {
      const int v = x[j] - '0';
      return v >= 1 && v <= 8 ? v : 0;
    }
  }
  return 0;
}

}  // namespace mmcore::detail
