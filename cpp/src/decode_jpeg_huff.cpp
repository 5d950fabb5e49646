// mmcore's Huffman decoder for single-scan baseline JPEG, plugged into libjpeg-turbo in place of
// its own (jdhuff.c), which stays the reference: everything around the entropy decoder (markers,
// IDCT, upsampling, colour conversion) is still libjpeg's, and the coefficients handed to it are
// the same, so the pixels are the same.
//
// Why: Huffman decoding bounds every JPEG decode (82 % of a scaled decode's profile). libjpeg
// looks a code up in an 8-bit table, then reads its magnitude bits in a second, dependent step,
// refills its bit buffer one byte at a time (checking each for 0xFF), and drops to a slower
// routine for the whole stream when it has restart markers. Here one look-up in an 11-bit table
// gives the code length, the zero run and the coefficient's value together whenever the code and
// its magnitude fit in 11 bits (most of a photo's coefficients), and the bit buffer takes up to 7
// bytes at once when none of the next 8 is 0xFF.
//
// Scope: it handles clean data only. Anything unusual - a code no table has, a run past the 64th
// coefficient, bits needed past the end of the segment, a restart marker out of sequence, bytes
// between the last block and the next marker - calls the installer's `bail`, which abandons the
// decode; the caller then decodes the stream again with libjpeg's own decoder, whose warnings and
// statuses stay the reference for damaged files.
#include "decode_jpeg_huff.h"

#include <cstdint>
#include <cstring>
#include <new>

extern "C" {
#include <jpegint.h>  // struct jpeg_entropy_decoder, jpeg_marker_reader, D_MAX_BLOCKS_IN_MCU
}

namespace mmcore::detail {
namespace {

constexpr int kBits = 11;  ///< look-up width: codes plus magnitude bits up to this length decode in one step

// Table entry (int32): bits 0-5 the bits to consume, bits 6-9 the zero run, bits 10-11 the kind,
// bits 12-15 the magnitude size (kind kSymbol), bits 16-31 the coefficient (kind kFull).
constexpr std::int32_t kFull = 0;    ///< code + magnitude within kBits: value ready
constexpr std::int32_t kEob = 1;     ///< end of block (AC symbol with size 0 and run < 15)
constexpr std::int32_t kSymbol = 2;  ///< code within kBits, magnitude bits still to read
constexpr std::int32_t kLong = 3;    ///< code longer than kBits (or no code): canonical search

constexpr std::int32_t entry(int consume, int run, std::int32_t kind, int size, int value) {
  return consume | (run << 6) | (kind << 10) | (size << 12) |
         static_cast<std::int32_t>(static_cast<std::uint32_t>(value) << 16);
}

struct Table {
  std::int32_t fast[1 << kBits];
  std::int32_t maxcode[18];  ///< largest code of each length, -1 when none
  std::int32_t valoffset[18];
  std::uint8_t huffval[256];
};

/// The magnitude category's value: `bits` read MSB first, `size` of them (JPEG F.2.2.1 EXTEND).
inline int extend(std::uint32_t bits, int size) {
  return size == 0                   ? 0
         : (bits >> (size - 1)) != 0 ? static_cast<int>(bits)
                                     : static_cast<int>(bits) - ((1 << size) - 1);
}

// Zig-zag position -> natural (row-major) index.
constexpr std::uint8_t kNatural[64] = {0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,
                                       12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28,
                                       35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
                                       58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

/// Bit reader: `n` valid bits at the top of `buf`; `pad` of them are zeros past the segment's end.
struct Reader {
  std::uint64_t buf = 0;
  int n = 0;
  int pad = 0;
  const std::uint8_t* p = nullptr;
  bool at_marker = false;  ///< p has reached a marker (or the end of the data)
};

struct State {
  Table* dc[NUM_HUFF_TBLS] = {};
  Table* ac[NUM_HUFF_TBLS] = {};
  const Table* blk_dc[D_MAX_BLOCKS_IN_MCU] = {};
  const Table* blk_ac[D_MAX_BLOCKS_IN_MCU] = {};
  int blk_comp[D_MAX_BLOCKS_IN_MCU] = {};
  bool dc_needed[D_MAX_BLOCKS_IN_MCU] = {};
  bool ac_needed[D_MAX_BLOCKS_IN_MCU] = {};
  int last_dc[MAX_COMPS_IN_SCAN] = {};
  Reader in;  ///< between calls; decode_mcu works on a copy held in registers
  const std::uint8_t* end = nullptr;
  unsigned restart_interval = 0;
  unsigned restarts_to_go = 0;
  long mcus_left = 0;
  void (*bail)(j_decompress_ptr) = nullptr;
};

// Builds the look-up and canonical tables (the JHUFF_TBL was validated by libjpeg's start_pass).
void build_table(const JHUFF_TBL& h, bool is_dc, Table* t) {
  std::uint32_t code = 0;
  int p = 0;
  for (int l = 0; l < (1 << kBits); ++l) t->fast[l] = entry(0, 0, kLong, 0, 0);
  for (int len = 1; len <= 16; ++len) {
    const int count = h.bits[len];
    if (count == 0) {
      t->maxcode[len] = -1;
      t->valoffset[len] = 0;
    } else {
      t->valoffset[len] = p - static_cast<std::int32_t>(code);
      for (int i = 0; i < count; ++i, ++p, ++code) {
        const int sym = h.huffval[p];
        if (len > kBits) continue;
        const int run = is_dc ? 0 : sym >> 4;
        const int size = sym & 15;
        const int span = kBits - len;
        const std::uint32_t first = code << span;
        for (std::uint32_t x = 0; x < (1u << span); ++x) {
          std::int32_t e;
          if (!is_dc && size == 0 && run != 15) {
            e = entry(len, 0, kEob, 0, 0);
          } else if (!is_dc && size == 0) {  // ZRL: sixteen zeros
            e = entry(len, 15, kFull, 0, 0);
          } else if (len + size <= kBits) {
            const std::uint32_t bits = (x >> (span - size)) & ((1u << size) - 1);
            e = entry(len + size, run, kFull, 0, extend(bits, size));
          } else {
            e = entry(len, run, kSymbol, size, 0);
          }
          t->fast[first | x] = e;
        }
      }
      t->maxcode[len] = static_cast<std::int32_t>(code) - 1;
    }
    code <<= 1;
  }
  t->maxcode[17] = 0x7fffffff;
  t->valoffset[17] = 0;
  std::memcpy(t->huffval, h.huffval, sizeof t->huffval);
}

[[noreturn]] void give_up(j_decompress_ptr c) {
  static_cast<State*>(c->client_data)->bail(c);
  __builtin_unreachable();
}

// Byte-at-a-time refill, unstuffing FF 00; stops at a marker (FF followed by anything else) or
// at the end of the data, after which the reader supplies zero bits and counts them in `pad`.
[[gnu::noinline]] Reader refill_slow(Reader r, const std::uint8_t* end) {
  while (r.n <= 56) {
    if (!r.at_marker) {
      if (r.p < end) {
        const std::uint8_t b = r.p[0];
        if (b != 0xFF) {
          r.buf |= static_cast<std::uint64_t>(b) << (56 - r.n);
          r.n += 8;
          ++r.p;
          continue;
        }
        if (r.p + 1 < end && r.p[1] == 0x00) {
          r.buf |= std::uint64_t{0xFF} << (56 - r.n);
          r.n += 8;
          r.p += 2;
          continue;
        }
      }
      r.at_marker = true;
    }
    r.pad += 64 - r.n;
    r.n = 64;
  }
  return r;
}

// Tops the reader up to at least 56 bits: 7 bytes at once when none of the next 8 is 0xFF (the
// bits past `n` it also sets are the stream's next bits, which a later refill ORs in again).
[[gnu::always_inline]] inline void refill(Reader& r, const std::uint8_t* end) {
  if (end - r.p >= 8 && !r.at_marker) {
    std::uint64_t v;
    std::memcpy(&v, r.p, 8);
    v = __builtin_bswap64(v);
    const std::uint64_t inv = ~v;  // a zero byte of ~v is an 0xFF byte of v
    if (((inv - 0x0101010101010101ull) & ~inv & 0x8080808080808080ull) == 0) {
      r.buf |= v >> r.n;
      r.p += (63 - r.n) >> 3;
      r.n |= 56;
      return;
    }
  }
  r = refill_slow(r, end);
}

[[gnu::always_inline]] inline void skip(Reader& r, int bits) {
  r.buf <<= bits;
  r.n -= bits;
}

[[gnu::always_inline]] inline std::uint32_t take(Reader& r, int bits) {
  if (bits == 0) return 0;
  const auto v = static_cast<std::uint32_t>(r.buf >> (64 - bits));
  skip(r, bits);
  return v;
}

// A code longer than kBits: JPEG's canonical search (F.2.2.3) from kBits + 1 bits on.
[[gnu::always_inline]] inline int decode_long(j_decompress_ptr c, Reader& r, const Table& t) {
  int len = kBits + 1;
  std::uint32_t code = static_cast<std::uint32_t>(r.buf >> (64 - len));
  while (len <= 16 && static_cast<std::int32_t>(code) > t.maxcode[len]) {
    ++len;
    code = static_cast<std::uint32_t>(r.buf >> (64 - len));
  }
  if (len > 16) give_up(c);  // no such code: damaged data
  skip(r, len);
  return t.huffval[(static_cast<std::int32_t>(code) + t.valoffset[len]) & 0xFF];
}

// One block: DC difference, then the AC coefficients (stored when `block` is given).
[[gnu::always_inline]] inline void decode_block(j_decompress_ptr c, State* s, Reader& r, int blkn,
                                                JCOEF* block) {
  const std::uint8_t* end = s->end;
  if (r.n < 32) refill(r, end);
  const Table& dct = *s->blk_dc[blkn];
  int diff;
  const std::int32_t e = dct.fast[r.buf >> (64 - kBits)];
  if (((e >> 10) & 3) == kFull) {
    skip(r, e & 63);
    diff = e >> 16;
  } else {
    int size;
    if (((e >> 10) & 3) == kSymbol) {
      skip(r, e & 63);
      size = (e >> 12) & 15;
    } else {
      size = decode_long(c, r, dct) & 15;
    }
    diff = extend(take(r, size), size);
  }
  if (s->dc_needed[blkn]) {
    const int ci = s->blk_comp[blkn];
    const int v = static_cast<int>(static_cast<unsigned>(s->last_dc[ci]) + static_cast<unsigned>(diff));
    s->last_dc[ci] = v;
    if (block != nullptr) block[0] = static_cast<JCOEF>(v);
  }
  if (!s->ac_needed[blkn]) block = nullptr;
  const Table& act = *s->blk_ac[blkn];
  for (int k = 1; k < 64;) {
    if (r.n < 32) refill(r, end);
    const std::int32_t a = act.fast[r.buf >> (64 - kBits)];
    const std::int32_t kind = (a >> 10) & 3;
    int value;
    if (kind == kFull) {
      skip(r, a & 63);
      k += (a >> 6) & 15;
      value = a >> 16;
    } else if (kind == kEob) {
      skip(r, a & 63);
      break;
    } else {
      int sym;
      if (kind == kSymbol) {
        skip(r, a & 63);
        sym = (((a >> 6) & 15) << 4) | ((a >> 12) & 15);
      } else {
        sym = decode_long(c, r, act);
      }
      const int run = sym >> 4, size = sym & 15;
      if (size == 0 && run != 15) break;  // libjpeg reads any size-0 symbol but ZRL as end of block
      k += run;
      value = extend(take(r, size), size);
    }
    if (k > 63) give_up(c);  // a run past the block: damaged data
    if (block != nullptr) block[kNatural[k]] = static_cast<JCOEF>(value);
    ++k;
  }
}

// Reads up to the marker that must follow the segment's last block; gives up when a whole byte
// of data is left before it (libjpeg would warn, or silently drop what it had prefetched).
const std::uint8_t* segment_end(j_decompress_ptr c, Reader r, const std::uint8_t* end) {
  if (!r.at_marker) r = refill_slow(r, end);
  if (!r.at_marker || r.n < r.pad || r.n - r.pad >= 8) give_up(c);
  return r.p;
}

// The code of the marker at m (m < end, *m == 0xFF), past any 0xFF fill bytes as libjpeg's
// next_marker skips them; *next: the byte after the code. -1 when the data ends first, or when
// the run ends in 0x00: libjpeg reads FF..FF 00 as one stuffed data byte, not as a marker.
int marker_code(const std::uint8_t* m, const std::uint8_t* end, const std::uint8_t** next) {
  while (m < end && *m == 0xFF) ++m;
  if (m >= end || *m == 0x00) return -1;
  *next = m + 1;
  return *m;
}

boolean decode_mcu(j_decompress_ptr c, JBLOCKROW* mcu) {
  auto* s = static_cast<State*>(c->client_data);
  Reader r = s->in;
  if (s->restart_interval != 0) {
    if (s->restarts_to_go == 0) {
      const std::uint8_t* m = segment_end(c, r, s->end);
      const std::uint8_t* next = nullptr;
      if (m >= s->end || marker_code(m, s->end, &next) != 0xD0 + c->marker->next_restart_num) give_up(c);
      c->marker->next_restart_num = (c->marker->next_restart_num + 1) & 7;
      r = Reader{};
      r.p = next;
      for (int& v : s->last_dc) v = 0;
      s->restarts_to_go = s->restart_interval;
    }
    --s->restarts_to_go;
  }
  const int blocks = c->blocks_in_MCU;
  for (int b = 0; b < blocks; ++b) decode_block(c, s, r, b, mcu != nullptr ? mcu[b][0] : nullptr);
  if (r.n < r.pad) give_up(c);  // read past the segment's end
  if (--s->mcus_left == 0) {
    const std::uint8_t* m = segment_end(c, r, s->end);
    const std::uint8_t* next = nullptr;
    if (m < s->end && marker_code(m, s->end, &next) < 0) give_up(c);  // FF..FF 00: data to libjpeg
    c->src->next_input_byte = m;
    c->src->bytes_in_buffer = static_cast<std::size_t>(s->end - m);
  }
  s->in = r;
  return TRUE;
}

}  // namespace

bool jpeg_huff_install(j_decompress_ptr c, const std::uint8_t* data_end, void (*bail)(j_decompress_ptr)) {
  if (c->progressive_mode || c->arith_code || jpeg_has_multiple_scans(c) || c->entropy == nullptr ||
      c->comps_in_scan != c->num_components || c->Ss != 0 || c->Se != DCTSIZE2 - 1 || c->Ah != 0 ||
      c->Al != 0 || c->unread_marker != 0 || c->input_iMCU_row != 0 ||
      c->blocks_in_MCU > D_MAX_BLOCKS_IN_MCU || c->src == nullptr || c->src->next_input_byte == nullptr ||
      data_end < c->src->next_input_byte ||
      static_cast<std::size_t>(data_end - c->src->next_input_byte) != c->src->bytes_in_buffer) {
    return false;
  }
  auto* s = static_cast<State*>(
      (*c->mem->alloc_small)(reinterpret_cast<j_common_ptr>(c), JPOOL_IMAGE, sizeof(State)));
  new (s) State();
  for (int ci = 0; ci < c->comps_in_scan; ++ci) {
    const jpeg_component_info* comp = c->cur_comp_info[ci];
    const int dt = comp->dc_tbl_no, at = comp->ac_tbl_no;
    if (dt < 0 || dt >= NUM_HUFF_TBLS || at < 0 || at >= NUM_HUFF_TBLS ||
        c->dc_huff_tbl_ptrs[dt] == nullptr || c->ac_huff_tbl_ptrs[at] == nullptr) {
      return false;
    }
    if (s->dc[dt] == nullptr) {
      s->dc[dt] = static_cast<Table*>(
          (*c->mem->alloc_small)(reinterpret_cast<j_common_ptr>(c), JPOOL_IMAGE, sizeof(Table)));
      build_table(*c->dc_huff_tbl_ptrs[dt], true, s->dc[dt]);
    }
    if (s->ac[at] == nullptr) {
      s->ac[at] = static_cast<Table*>(
          (*c->mem->alloc_small)(reinterpret_cast<j_common_ptr>(c), JPOOL_IMAGE, sizeof(Table)));
      build_table(*c->ac_huff_tbl_ptrs[at], false, s->ac[at]);
    }
  }
  for (int b = 0; b < c->blocks_in_MCU; ++b) {
    const int ci = c->MCU_membership[b];
    const jpeg_component_info* comp = c->cur_comp_info[ci];
    s->blk_dc[b] = s->dc[comp->dc_tbl_no];
    s->blk_ac[b] = s->ac[comp->ac_tbl_no];
    s->blk_comp[b] = ci;
    s->dc_needed[b] = comp->component_needed != 0;
#if JPEG_LIB_VERSION >= 70
    const int scaled = comp->DCT_h_scaled_size;
#else
    const int scaled = comp->DCT_scaled_size;
#endif
    s->ac_needed[b] = comp->component_needed != 0 && scaled > 1;
  }
  s->in.p = c->src->next_input_byte;
  s->end = data_end;
  s->restart_interval = c->restart_interval;
  s->restarts_to_go = c->restart_interval;
  s->mcus_left = static_cast<long>(c->MCUs_per_row) * static_cast<long>(c->MCU_rows_in_scan);
  s->bail = bail;
  c->client_data = s;
  c->entropy->decode_mcu = decode_mcu;
  return true;
}

}  // namespace mmcore::detail
