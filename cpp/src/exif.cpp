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

// The payload after `prefix` (of `plen` bytes) of the first (or, with `last`, the last) APP1
// segment that starts with it, walking the markers before the first SOS.
ByteSpan jpeg_find_app1(const std::uint8_t* d, std::size_t n, const char* prefix, std::size_t plen,
                        bool last = false) {
  ByteSpan found;
  std::size_t p = 2;
  while (p + 4 <= n) {
    if (d[p] != 0xFF) return found;
    const std::uint8_t m = d[p + 1];
    if (m == 0xFF) {  // fill byte
      ++p;
      continue;
    }
    if (m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) {
      p += 2;
      continue;
    }
    if (m == 0xDA || m == 0xD9) return found;
    const std::size_t len = (static_cast<std::size_t>(d[p + 2]) << 8) | d[p + 3];
    if (len < 2 || p + 2 + len > n) return found;
    if (m == 0xE1 && len >= 2 + plen && std::memcmp(d + p + 4, prefix, plen) == 0) {
      found = {d + p + 4 + plen, len - 2 - plen};
      if (!last) return found;
    }
    p += 2 + len;
  }
  return found;
}

}  // namespace

ByteSpan jpeg_find_xmp(const std::uint8_t* d, std::size_t n) {
  static const char kXmp[] = "http://ns.adobe.com/xap/1.0/";  // then a NUL
  // The last, as in Pillow, where each such segment replaces info["xmp"].
  return jpeg_find_app1(d, n, kXmp, sizeof kXmp, true);
}

ByteSpan jpeg_find_exif(const std::uint8_t* d, std::size_t n) {
  static const char kExif[] = "Exif\0";  // "Exif\0\0" with the literal's own NUL
  return jpeg_find_app1(d, n, kExif, sizeof kExif);
}

namespace {

// Calls at(type, payload, length) for every chunk up to IEND, in order (eXIf and text chunks may
// come before or after the image data; Pillow reads them all once the image is loaded, a later
// one replacing an earlier one's value).
template <class At>
void png_each(const std::uint8_t* d, std::size_t n, At at) {
  std::size_t p = 8;
  while (p + 12 <= n) {
    const std::uint64_t len = read_be32(d + p);
    const std::uint8_t* type = d + p + 4;
    if (len > n - p - 12) return;
    at(type, d + p + 8, static_cast<std::size_t>(len));
    if (std::memcmp(type, "IEND", 4) == 0) return;
    p += 12 + len;
  }
}

// Python's strict UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF).
bool valid_utf8(const std::uint8_t* s, std::size_t n) {
  std::size_t i = 0;
  while (i < n) {
    const std::uint8_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t k = 0;
    std::uint8_t lo = 0x80, hi = 0xBF;  // the first continuation byte's range
    if (c >= 0xC2 && c <= 0xDF) {
      k = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      k = 2;
      lo = c == 0xE0 ? 0xA0 : lo;
      hi = c == 0xED ? 0x9F : hi;
    } else if (c >= 0xF0 && c <= 0xF4) {
      k = 3;
      lo = c == 0xF0 ? 0x90 : lo;
      hi = c == 0xF4 ? 0x8F : hi;
    } else {
      return false;
    }
    if (n - i <= k) return false;  // the sequence runs past the end
    for (std::size_t j = 1; j <= k; ++j) {
      const std::uint8_t b = s[i + j];
      if (j == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return false;
    }
    i += k + 1;
  }
  return true;
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
  ByteSpan last;
  png_each(d, n, [&](const std::uint8_t* type, const std::uint8_t* data, std::size_t len) {
    if (std::memcmp(type, "eXIf", 4) == 0) last = {data, len};
  });
  return last;
}

ByteSpan webp_find_exif(const std::uint8_t* d, std::size_t n) {
  ByteSpan e = webp_chunk(d, n, "EXIF");
  if (e.size >= 6 && std::memcmp(e.data, "Exif\0\0", 6) == 0) {  // some writers keep the APP1 prefix
    e.data += 6;
    e.size -= 6;
  }
  return e;
}

std::int32_t png_xmp_orientation(const std::uint8_t* d, std::size_t n) {
  // Pillow, after load(), in getexif(): info["XML:com.adobe.xmp"] is the last tEXt, zTXt or iTXt
  // text with that keyword (an iTXt's only when its fields are UTF-8), info["xmp"] the last iTXt's
  // bytes; the first is searched unless empty, then the second. Compressed text is inflated up to
  // Pillow's MAX_TEXT_CHUNK (1 MiB; past it Pillow refuses the file, here the chunk is skipped).
  static const char kKey[] = "XML:com.adobe.xmp";  // then a NUL
  constexpr std::size_t kMaxText = 1u << 20;
  std::vector<std::uint8_t> text, raw;
  png_each(d, n, [&](const std::uint8_t* type, const std::uint8_t* data, std::size_t len) {
    const bool t = std::memcmp(type, "tEXt", 4) == 0, z = std::memcmp(type, "zTXt", 4) == 0,
               i = std::memcmp(type, "iTXt", 4) == 0;
    if (!(t || z || i) || len < sizeof kKey || std::memcmp(data, kKey, sizeof kKey) != 0) return;
    const std::uint8_t* c = data + sizeof kKey;
    const std::uint8_t* end = data + len;
    if (t) {
      text.assign(c, end);
      return;
    }
    std::vector<std::uint8_t> v;
    bool damaged = false;
    if (z) {  // method byte (only 0, deflate, is known), then the stream; a damaged one gives ""
      if (c == end || c[0] != 0) return;
      if (inflate_capped(c + 1, static_cast<std::size_t>(end - c - 1), kMaxText, &v, &damaged) > kMaxText)
        return;
      if (damaged) v.clear();
      text = std::move(v);
      return;
    }
    // iTXt: compression flag, method, language NUL, translated keyword NUL, text
    if (end - c < 2) return;
    const std::uint8_t flag = c[0], method = c[1];
    c += 2;
    const std::uint8_t* fields[2];
    for (int f = 0; f < 2; ++f) {
      const auto* nul =
          static_cast<const std::uint8_t*>(std::memchr(c, 0, static_cast<std::size_t>(end - c)));
      if (nul == nullptr) return;
      fields[f] = c;
      c = nul + 1;
    }
    if (flag != 0) {
      if (method != 0) return;
      if (inflate_capped(c, static_cast<std::size_t>(end - c), kMaxText, &v, &damaged) > kMaxText || damaged)
        return;
    } else {
      v.assign(c, end);
    }
    const bool utf8 = valid_utf8(fields[0], static_cast<std::size_t>(fields[1] - 1 - fields[0])) &&
                      valid_utf8(fields[1], static_cast<std::size_t>(c - 1 - fields[1])) &&
                      valid_utf8(v.data(), v.size());
    raw = v;
    if (utf8) text = std::move(v);
  });
  if (!text.empty()) return xmp_orientation(text.data(), text.size());
  return raw.empty() ? 0 : xmp_orientation(raw.data(), raw.size());
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
