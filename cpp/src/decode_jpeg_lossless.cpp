// Lossless JPEG (ITU-T T.81 process 14, SOF3) with 8-bit samples.
//
// Why mmcore has its own: Debian 12's libjpeg-turbo 2.1 refuses SOF3, while Pillow 13 (bundling
// libjpeg-turbo 3) decodes it; the imagehash-exact hashes promise equal bits for every file Pillow
// reads. The format is small: per sample, a Huffman-coded difference from one of seven
// predictors over the already decoded neighbours (T.81 annex H).
//
// Scope, each refusal a kUnsupported with the reason:
// - 8-bit precision only (Pillow's build decodes no other precision either);
// - 1 component (grey), or 3 components stored as RGB (Adobe transform 0, or component ids
//   'R' 'G' 'B' with no JFIF marker): libjpeg's colour conversion of YCbCr-coded lossless data is
//   left out until a file with it can be checked against Pillow;
// - one scan holding every component, all sampled 1x1 (the layout encoders write).
// Samples follow libjpeg-turbo 3's arithmetic: the reconstructed value is kept modulo 2^16 and
// written as (uint8)(value << Pt), so damaged data gives the bytes Pillow gives.
// Entropy-coded data that ends early or holds a code no table has: kCorrupt, saying where.
#include <algorithm>
#include <array>
#include <cstring>
#include <new>
#include <vector>

#include "decode_internal.h"
#include "luma_internal.h"

namespace mmcore::detail {
namespace {

struct Huffman {
  bool defined = false;
  // Canonical code per length: codes of length l are mincode[l]..maxcode[l] and map to
  // values[valptr[l] + code - mincode[l]]; maxcode[l] = -1 when there are none.
  std::array<std::int32_t, 17> mincode{};
  std::array<std::int32_t, 18> maxcode{};
  std::array<std::int32_t, 17> valptr{};
  std::array<std::uint8_t, 256> values{};
};

struct Component {
  int id = 0;
  int h = 1, v = 1;
  int table = 0;  ///< DC table selector from the scan header
};

struct Frame {
  int precision = 0;
  int width = 0, height = 0;
  int ncomp = 0;
  std::array<Component, 4> comp{};
  bool jfif = false;
  int adobe_transform = -1;  ///< -1: no Adobe marker
  int restart_interval = 0;
  std::array<Huffman, 4> huff{};
  // Scan parameters (the first scan's).
  int scan_ncomp = 0;
  int predictor = 0;
  int point_transform = 0;
  std::size_t scan_data = 0;  ///< offset of the first entropy-coded byte
};

std::uint16_t be16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

bool build_huffman(const std::uint8_t* seg, std::size_t len, std::size_t* used, Huffman* h) {
  if (len < 17) return false;
  int total = 0;
  for (int l = 1; l <= 16; ++l) total += seg[l];
  if (total > 256 || len < 17 + static_cast<std::size_t>(total)) return false;
  std::memcpy(h->values.data(), seg + 17, static_cast<std::size_t>(total));
  std::int32_t code = 0;
  int k = 0;
  for (int l = 1; l <= 16; ++l) {
    const int n = seg[l];
    h->valptr[l] = k;
    h->mincode[l] = code;
    code += n;
    k += n;
    h->maxcode[l] = n > 0 ? code - 1 : -1;
    if (code > (1 << l)) return false;  // more codes than this length holds: not a prefix code
    code <<= 1;
  }
  h->maxcode[17] = 0x7FFFFFFF;
  h->defined = true;
  *used = 17 + static_cast<std::size_t>(total);
  return true;
}

// Reads the markers up to the first scan header. Returns kOk, or a refusal with its message.
Status parse_headers(const std::uint8_t* d, std::size_t n, Frame* f, ErrorText* error) {
  std::size_t i = 2;
  bool have_sof = false;
  while (true) {
    while (i < n && d[i] == 0xFF && i + 1 < n && d[i + 1] == 0xFF) ++i;  // fill bytes
    if (i + 4 > n || d[i] != 0xFF) {
      error->set("truncated lossless JPEG header (marker expected at byte %zu of %zu)", i, n);
      return Status::kCorrupt;
    }
    const int marker = d[i + 1];
    const std::size_t len = be16(d + i + 2);
    if (len < 2 || i + 2 + len > n) {
      error->set("lossless JPEG marker 0x%02X at byte %zu has a bad length %zu", marker, i, len);
      return Status::kCorrupt;
    }
    const std::uint8_t* seg = d + i + 4;
    const std::size_t sl = len - 2;
    if (marker == 0xE0 && sl >= 5 && std::memcmp(seg, "JFIF\0", 5) == 0) f->jfif = true;
    if (marker == 0xEE && sl >= 12 && std::memcmp(seg, "Adobe", 5) == 0) f->adobe_transform = seg[11];
    if (marker == 0xDD && sl >= 2) f->restart_interval = be16(seg);
    if (marker == 0xC4) {
      std::size_t p = 0;
      while (p < sl) {
        const int tc = seg[p] >> 4, th = seg[p] & 15;
        std::size_t used = 0;
        Huffman tmp;
        if (th > 3 || !build_huffman(seg + p, sl - p, &used, &tmp)) {
          error->set("corrupt lossless JPEG: bad Huffman table at byte %zu", i);
          return Status::kCorrupt;
        }
        if (tc == 0) f->huff[static_cast<std::size_t>(th)] = tmp;  // lossless uses DC tables only
        p += used;
      }
    }
    if (marker == 0xC3) {
      if (sl < 6 || sl < 6 + 3u * seg[5]) {
        error->set("corrupt lossless JPEG: short frame header");
        return Status::kCorrupt;
      }
      f->precision = seg[0];
      f->height = be16(seg + 1);
      f->width = be16(seg + 3);
      f->ncomp = seg[5];
      if (f->precision != 8) {
        error->set("unsupported JPEG: lossless with %d-bit samples (8-bit only)", f->precision);
        return Status::kUnsupported;
      }
      if (f->ncomp != 1 && f->ncomp != 3) {
        error->set("unsupported JPEG: lossless with %d components (1 or 3 only)", f->ncomp);
        return Status::kUnsupported;
      }
      if (f->height == 0) {
        error->set("unsupported JPEG: lossless with the height in a DNL marker");
        return Status::kUnsupported;
      }
      for (int c = 0; c < f->ncomp; ++c) {
        Component& k = f->comp[static_cast<std::size_t>(c)];
        k.id = seg[6 + 3 * c];
        k.h = seg[7 + 3 * c] >> 4;
        k.v = seg[7 + 3 * c] & 15;
        if (k.h != 1 || k.v != 1) {
          error->set("unsupported JPEG: lossless with %dx%d sampling (1x1 only)", k.h, k.v);
          return Status::kUnsupported;
        }
      }
      have_sof = true;
    }
    if (marker == 0xDA) {
      if (!have_sof) {
        error->set("corrupt lossless JPEG: scan before the frame header");
        return Status::kCorrupt;
      }
      const int ns = sl >= 1 ? seg[0] : 0;
      if (ns < 1 || sl < 4 + 2u * ns) {
        error->set("corrupt lossless JPEG: bad scan header");
        return Status::kCorrupt;
      }
      if (ns != f->ncomp) {
        error->set("unsupported JPEG: lossless with components in separate scans");
        return Status::kUnsupported;
      }
      for (int s = 0; s < ns; ++s) {
        const int id = seg[1 + 2 * s], td = seg[2 + 2 * s] >> 4;
        // Scan order must be frame order: the interleave is per sample in scan order.
        Component& k = f->comp[static_cast<std::size_t>(s)];
        if (k.id != id || td > 3 || !f->huff[static_cast<std::size_t>(td)].defined) {
          error->set(
              "corrupt lossless JPEG: scan component %d (id %d) has no matching frame component or table", s,
              id);
          return Status::kCorrupt;
        }
        k.table = td;
      }
      f->scan_ncomp = ns;
      f->predictor = seg[1 + 2 * ns];
      f->point_transform = seg[3 + 2 * ns] & 15;
      if (f->predictor < 1 || f->predictor > 7 || f->point_transform >= f->precision) {
        error->set("corrupt lossless JPEG: predictor %d, point transform %d", f->predictor,
                   f->point_transform);
        return Status::kCorrupt;
      }
      f->scan_data = i + 2 + len;
      break;
    }
    if (marker == 0xD9) {
      error->set("corrupt lossless JPEG: end of image before any scan");
      return Status::kCorrupt;
    }
    i += 2 + len;
  }
  if (f->ncomp == 3) {
    // libjpeg's rule for the colour space of 3-component data (jdapimin.c default_decompress_parms).
    const bool rgb_ids = f->comp[0].id == 'R' && f->comp[1].id == 'G' && f->comp[2].id == 'B';
    const bool rgb = f->jfif ? false : f->adobe_transform >= 0 ? f->adobe_transform == 0 : rgb_ids;
    if (!rgb) {
      error->set("unsupported JPEG: lossless with YCbCr-coded samples");
      return Status::kUnsupported;
    }
  }
  return Status::kOk;
}

// MSB-first bit reader over entropy-coded bytes: 0xFF00 is a data 0xFF; any other marker ends the
// data (reads past it yield zeros and set `ended`).
class BitReader {
 public:
  BitReader(const std::uint8_t* d, std::size_t n, std::size_t pos) : d_(d), n_(n), pos_(pos) {}

  int bit() {
    if (nbits_ == 0) fill();
    --nbits_;
    return static_cast<int>((acc_ >> nbits_) & 1u);
  }
  int bits(int k) {
    int v = 0;
    for (int j = 0; j < k; ++j) v = v << 1 | bit();
    return v;
  }
  bool ended() const { return ended_; }
  std::size_t pos() const { return pos_; }

  // At a restart boundary: drop the partial byte, expect RSTn, resume after it.
  bool restart() {
    nbits_ = 0;
    acc_ = 0;
    ended_ = false;
    while (pos_ + 1 < n_ && d_[pos_] == 0xFF && d_[pos_ + 1] == 0xFF) ++pos_;
    if (pos_ + 1 < n_ && d_[pos_] == 0xFF && d_[pos_ + 1] >= 0xD0 && d_[pos_ + 1] <= 0xD7) {
      pos_ += 2;
      return true;
    }
    return false;
  }

 private:
  void fill() {
    std::uint32_t byte = 0;
    if (!ended_ && pos_ < n_) {
      if (d_[pos_] != 0xFF) {
        byte = d_[pos_++];
      } else if (pos_ + 1 < n_ && d_[pos_ + 1] == 0x00) {
        byte = 0xFF;
        pos_ += 2;
      } else {
        ended_ = true;  // a marker (or the buffer's end) where data should be
      }
    } else {
      ended_ = true;
    }
    acc_ = byte;
    nbits_ = 8;
  }

  const std::uint8_t* d_;
  std::size_t n_;
  std::size_t pos_;
  std::uint32_t acc_ = 0;
  int nbits_ = 0;
  bool ended_ = false;
};

// One Huffman-coded difference (T.81 H.1.2.2); false on a code no table has or a bad category.
bool decode_diff(BitReader* br, const Huffman& h, std::int32_t* diff) {
  std::int32_t code = br->bit();
  int l = 1;
  while (code > h.maxcode[static_cast<std::size_t>(l)]) {
    if (++l > 16) return false;
    code = code << 1 | br->bit();
  }
  const int s = h.values[static_cast<std::size_t>(h.valptr[static_cast<std::size_t>(l)] + code -
                                                  h.mincode[static_cast<std::size_t>(l)])];
  if (s == 0) {
    *diff = 0;
  } else if (s == 16) {
    *diff = 32768;
  } else if (s < 16) {
    const std::int32_t r = br->bits(s);
    *diff = r < (1 << (s - 1)) ? r - (1 << s) + 1 : r;
  } else {
    return false;
  }
  return true;
}

std::int32_t predict(int predictor, std::int32_t ra, std::int32_t rb, std::int32_t rc) {
  switch (predictor) {
    case 1: return ra;
    case 2: return rb;
    case 3: return rc;
    case 4: return ra + rb - rc;
    case 5: return ra + ((rb - rc) >> 1);
    case 6: return rb + ((ra - rc) >> 1);
    default: return (ra + rb) >> 1;
  }
}

}  // namespace

bool jpeg_is_lossless(const std::uint8_t* d, std::size_t n) {
  std::size_t i = 2;
  while (i + 2 <= n && d[i] == 0xFF) {
    const int m = d[i + 1];
    if (m == 0xFF) {
      ++i;
      continue;
    }
    if (m == 0xC3) return true;  // even when cut short: the lossless parser reports the truncation
    if ((m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) || m == 0xDA || m == 0xD9)
      return false;
    if (i + 4 > n) return false;
    i += 2 + be16(d + i + 2);
  }
  return false;
}

Status jpeg_lossless_info(const std::uint8_t* data, std::size_t size, const DecodeOptions& options,
                          ImageInfo* info, ErrorText* error) {
  Frame f;
  const Status s = parse_headers(data, size, &f, error);
  info->width = f.width;
  info->height = f.height;
  if (s != Status::kOk) return s;
  info->scale_denom = 1;  // no reduced-size decode for lossless data
  info->out_width = f.width;
  info->out_height = f.height;
  info->out_channels = pixel_channels(options.pixel);
  info->has_alpha = false;
  info->animated = false;
  return Status::kOk;
}

Status jpeg_lossless_decode(const std::uint8_t* data, std::size_t size, const DecodeOptions& /*options*/,
                            const ImageInfo& info, ImageView out, ErrorText* error) {
  Frame f;
  const Status hs = parse_headers(data, size, &f, error);
  if (hs != Status::kOk) return hs;
  if (f.width != info.out_width || f.height != info.out_height) {
    error->set("lossless JPEG changed between decode_info and decode_into");
    return Status::kCorrupt;
  }
  const int nc = f.ncomp;
  const std::size_t w = static_cast<std::size_t>(f.width);
  std::vector<std::int32_t> prev, cur, rgb_row;
  try {
    prev.resize(w * static_cast<std::size_t>(nc));
    cur.resize(w * static_cast<std::size_t>(nc));
  } catch (const std::bad_alloc&) {
    error->set("out of memory for a %d-pixel lossless JPEG row", f.width);
    return Status::kNoMemory;
  }
  const int pt = f.point_transform;
  const std::int32_t initial = 1 << (f.precision - pt - 1);
  BitReader br(data, size, f.scan_data);
  const std::int64_t interval = f.restart_interval;  // in MCUs, one pixel each here
  std::int64_t mcus_left = interval;
  bool first_row = true;  // the first row of the image or of a restart interval
  const std::int32_t oc = out.channels;
  for (int y = 0; y < f.height; ++y) {
    for (std::size_t x = 0; x < w; ++x) {
      if (interval > 0 && mcus_left == 0) {
        if (!br.restart()) {
          error->set("corrupt lossless JPEG: restart marker missing at row %d of %d (byte %zu)", y, f.height,
                     br.pos());
          return Status::kCorrupt;
        }
        mcus_left = interval;
        // T.81 H.1.2.1: after a restart the next row predicts as the first row does; restart
        // intervals in lossless mode start at row boundaries.
        if (x != 0) {
          error->set("corrupt lossless JPEG: restart interval %lld is not a multiple of the row width %d",
                     static_cast<long long>(interval), f.width);
          return Status::kCorrupt;
        }
        first_row = true;
      }
      if (interval > 0) --mcus_left;
      for (int c = 0; c < nc; ++c) {
        const std::size_t k = x * static_cast<std::size_t>(nc) + static_cast<std::size_t>(c);
        std::int32_t diff = 0;
        if (!decode_diff(&br, f.huff[static_cast<std::size_t>(f.comp[static_cast<std::size_t>(c)].table)],
                         &diff)) {
          error->set("corrupt lossless JPEG data: bad Huffman code at row %d of %d (byte %zu)", y, f.height,
                     br.pos());
          return Status::kCorrupt;
        }
        std::int32_t pred;
        if (first_row) {
          pred = x == 0 ? initial : cur[k - static_cast<std::size_t>(nc)];
        } else if (x == 0) {
          pred = prev[k];
        } else {
          pred = predict(f.predictor, cur[k - static_cast<std::size_t>(nc)], prev[k],
                         prev[k - static_cast<std::size_t>(nc)]);
        }
        cur[k] = (pred + diff) & 0xFFFF;
      }
      if (br.ended()) {
        error->set("truncated lossless JPEG: the data ends at row %d of %d (byte %zu of %zu)", y, f.height,
                   br.pos(), size);
        return Status::kCorrupt;
      }
    }
    first_row = false;
    std::uint8_t* o = out.row(y);
    for (std::size_t x = 0; x < w; ++x) {
      const std::int32_t* p = &cur[x * static_cast<std::size_t>(nc)];
      const auto s0 = static_cast<std::uint8_t>(p[0] << pt);
      const auto s1 = nc == 3 ? static_cast<std::uint8_t>(p[1] << pt) : s0;
      const auto s2 = nc == 3 ? static_cast<std::uint8_t>(p[2] << pt) : s0;
      if (oc == 1) {
        o[x] = nc == 1 ? s0 : luma_pillow(s0, s1, s2);  // libjpeg's RGB->grey weights are Pillow's
      } else {
        o[x * oc] = s0;
        o[x * oc + 1] = s1;
        o[x * oc + 2] = s2;
        if (oc == 4) o[x * oc + 3] = 255;
      }
    }
    std::swap(prev, cur);
  }
  return Status::kOk;
}

}  // namespace mmcore::detail
