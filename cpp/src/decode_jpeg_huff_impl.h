// The body of mmcore's Huffman decoder, compiled twice: decode_jpeg_huff.cpp (baseline x86-64)
// and decode_jpeg_huff_avx2.cpp (the avx2 flags: BMI2 shifts and pdep, which the refinement
// scans' zero skipping uses); MMCORE_HUFF_VARIANT names each copy's namespace.
//
// mmcore's Huffman decoder for single-scan baseline and for progressive JPEG, plugged into
// libjpeg-turbo in place of its own (jdhuff.c, jdphuff.c), which stays the reference: everything
// around the entropy decoder (markers, IDCT, upsampling, colour conversion) is still libjpeg's,
// and the coefficients handed to it are the same, so the pixels are the same.
//
// Why: Huffman decoding bounds every JPEG decode (82 % of a scaled decode's profile). libjpeg
// looks a code up in an 8-bit table, then reads its magnitude bits in a second, dependent step,
// refills its bit buffer one byte at a time (checking each for 0xFF), and drops to a slower
// routine for the whole stream when it has restart markers. Here one look-up in an 11-bit table
// gives the code length, the zero run and the coefficient's value together whenever the code and
// its magnitude fit in 11 bits (most of a photo's coefficients); where the 11 bits hold a second
// whole symbol after that one, a pair table gives both (0.66 look-ups per AC symbol on the
// corpus's photos, baseline only); and the bit buffer takes up to 7 bytes at once when none of the
// next 8 is 0xFF. Progressive scans use the same tables and reader; their refinement scans, which
// give each coefficient already nonzero one correction bit, find those coefficients from a per-
// block mask of nonzero positions that this decoder keeps across scans, where libjpeg tests all 63
// positions of every block with unpredictable branches. Blocks whose AC coefficients nobody needs
// (the chroma of a grey decode, every block of a 1/8 scale decode) are skipped up to three symbols
// per look-up of a 12-bit table.
//
// Scope: it handles clean data only. Anything unusual - a code no table has, a run past the 64th
// coefficient (or past a progressive scan's band), a refinement magnitude other than 1, a DC
// prediction overflowing, bits needed past the end of the segment, a restart marker out of
// sequence, bytes between the last block and the next marker - calls the installer's `bail`,
// which abandons the decode; the caller then decodes the stream again with libjpeg's own decoder,
// whose warnings and statuses stay the reference for damaged files.
#ifndef MMCORE_HUFF_VARIANT
#error "decode_jpeg_huff_impl.h is included by decode_jpeg_huff.cpp / decode_jpeg_huff_avx2.cpp only"
#endif

#include <climits>
#include <cstdint>

#include "decode_jpeg_huff.h"
#ifdef __BMI2__
#include <immintrin.h>
#endif
#include <cstring>
#include <new>

extern "C" {
#include <jpegint.h>  // struct jpeg_entropy_decoder, jpeg_marker_reader, D_MAX_BLOCKS_IN_MCU
}

namespace mmcore::detail::MMCORE_HUFF_VARIANT {
namespace {

constexpr int kBits = 11;  ///< look-up width: codes plus magnitude bits up to this length decode in one step

// Table entry (int32): bits 0-5 the bits to consume, bits 6-9 the zero run, bits 10-11 the kind,
// bits 12-15 the magnitude size (kinds kSymbol and kFull), bits 16-31 the coefficient (kind kFull).
constexpr std::int32_t kFull = 0;    ///< code + magnitude within kBits: value ready
constexpr std::int32_t kEob = 1;     ///< end of block (AC symbol with size 0 and run < 15)
constexpr std::int32_t kSymbol = 2;  ///< code within kBits, magnitude bits still to read
constexpr std::int32_t kLong = 3;    ///< code longer than kBits (or no code): canonical search

constexpr std::int32_t entry(int consume, int run, std::int32_t kind, int size, int value) {
  return consume | (run << 6) | (kind << 10) | (size << 12) |
         static_cast<std::int32_t>(static_cast<std::uint32_t>(value) << 16);
}

constexpr int kSkipBits = 12;  ///< window of the AC skip table (coefficients nobody needs)

struct Table {
  std::int32_t fast[1 << kBits];
  std::int32_t maxcode[18];  ///< largest code of each length, -1 when none
  std::int32_t valoffset[18];
  std::uint8_t huffval[256];
  // AC tables of blocks whose coefficients are not needed (a component the output does not use,
  // or a 1/8-scale decode that keeps only DC): per 12-bit window, the up to three whole symbols
  // it holds, stopping after an end of block: bits 0-3 the bits they take, 4-9 the coefficient
  // positions they advance (run + 1 each, 16 for ZRL), bit 10 an end of block; 0 when not even
  // one symbol fits (the one-symbol path then decodes it). Built only when such blocks exist.
  bool has_skip = false;
  std::uint16_t skip[1 << kSkipBits];
  // AC tables of blocks whose coefficients are stored: per kBits window, the fast entry of its
  // first symbol (low 32 bits) and, when that is kFull and the next symbol also lies wholly in the
  // window, the second (high 32 bits, see kPair*): about a third fewer look-ups on the corpus's
  // photos. Built only when such blocks exist.
  bool has_pair = false;
  std::uint64_t pair[1 << kBits];
};

// The high half of a pair entry: a second symbol that is a coefficient (kFull, ZRL included) or
// an end of block, its zero run, the bits it takes and its coefficient. All zero when none.
constexpr std::uint32_t kPairFull = 1;
constexpr std::uint32_t kPairEob = 2;
constexpr std::uint32_t pair_high(std::uint32_t kind, int run, int consume, int value) {
  return kind | (static_cast<std::uint32_t>(run) << 4) | (static_cast<std::uint32_t>(consume) << 8) |
         (static_cast<std::uint32_t>(value) << 16);
}

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
  // Progressive scans (jpeg_phuff_install): the scan's kind and band, the EOB run, libjpeg's own
  // start_pass (called first at every scan), and the AC table of the scan.
  int scan_kind = 0;
  int ss = 0, se = 0, al = 0;
  unsigned eobrun = 0;
  void (*libjpeg_start_pass)(j_decompress_ptr) = nullptr;
  const Table* scan_ac = nullptr;
  long scan_mcus = 0;  ///< MCUs in the scan (an AC scan's MCU index is its block's raster index)
  // Per component, a mask per block of its nonzero AC coefficients (bit k: zig-zag position k),
  // kept up to date by this decoder's AC scans so that refinement scans need not test every
  // position; dropped (nullptr, `masks_lost`) once libjpeg decodes an AC scan of the component.
  std::uint64_t* masks[MAX_COMPONENTS] = {};
  bool masks_lost[MAX_COMPONENTS] = {};
  std::uint64_t* scan_masks = nullptr;  ///< the current AC scan's component's masks, or nullptr
};

// Builds the look-up and canonical tables (the JHUFF_TBL was validated by libjpeg's start_pass).
void build_table(const JHUFF_TBL& h, bool is_dc, Table* t) {
  t->has_skip = false;  // the memory is libjpeg's pool: nothing was constructed
  t->has_pair = false;
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
          if (!is_dc && size == 0 && run != 15) {  // EOB (progressive scans: EOBRUN of 2^run + bits)
            e = entry(len, run, kEob, 0, 0);
          } else if (!is_dc && size == 0) {  // ZRL: sixteen zeros
            e = entry(len, 15, kFull, 0, 0);
          } else if (len + size <= kBits) {
            const std::uint32_t bits = (x >> (span - size)) & ((1u << size) - 1);
            e = entry(len + size, run, kFull, size, extend(bits, size));
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

// The skip table of an AC table whose fast table is built (see Table::skip). A symbol is taken
// only when its code and magnitude bits lie wholly inside the window: a fast entry depends on
// no bits past the ones it consumes, so the bits past the window (zeros here) do not matter.
void build_skip(Table* t) {
  for (std::uint32_t w = 0; w < (1u << kSkipBits); ++w) {
    int consume = 0, advance = 0, symbols = 0;
    bool eob = false;
    while (symbols < 3) {
      const std::uint32_t window = (w << consume) & ((1u << kSkipBits) - 1);
      const std::int32_t e = t->fast[window >> (kSkipBits - kBits)];
      const std::int32_t kind = (e >> 10) & 3;
      const int len = e & 63;
      if ((kind != kFull && kind != kEob) || consume + len > kSkipBits) break;
      consume += len;
      ++symbols;
      if (kind == kEob) {
        eob = true;
        break;
      }
      advance += ((e >> 6) & 15) + 1;
    }
    t->skip[w] =
        symbols == 0 ? 0 : static_cast<std::uint16_t>(consume | (advance << 4) | (eob ? 1 << 10 : 0));
  }
  t->has_skip = true;
}

// The pair table of an AC table whose fast table is built (see Table::pair). As for the skip
// table, a fast entry depends on no bits past the ones it consumes, so the second symbol read from
// the window's remaining bits (zeros after them) is the symbol a look-up at its own position gives.
void build_pair(Table* t) {
  constexpr std::uint32_t kMask = (1u << kBits) - 1;
  for (std::uint32_t x = 0; x <= kMask; ++x) {
    const std::int32_t e = t->fast[x];
    std::uint32_t high = 0;
    if (((e >> 10) & 3) == kFull) {
      const int used = e & 63;
      const std::int32_t e2 = t->fast[(x << used) & kMask];
      const std::int32_t kind2 = (e2 >> 10) & 3;
      const int len2 = e2 & 63;
      if (used + len2 <= kBits) {
        if (kind2 == kFull) high = pair_high(kPairFull, (e2 >> 6) & 15, len2, e2 >> 16);
        if (kind2 == kEob) high = pair_high(kPairEob, 0, len2, 0);
      }
    }
    t->pair[x] = static_cast<std::uint32_t>(e) | (static_cast<std::uint64_t>(high) << 32);
  }
  t->has_pair = true;
}

long scan_blocks(j_decompress_ptr c) {
  return static_cast<long>(c->MCUs_per_row) * static_cast<long>(c->MCU_rows_in_scan) * c->blocks_in_MCU;
}

/// Whether the scan has blocks enough to repay its pair tables (about 2.5 us each to build, ~10 ns
/// saved per block). With them built for every image, a 64 px colour JPEG (96 blocks) decoded 18 %
/// slower and a 128 px one (384 blocks) 7 %; a 256 px one (1,536 blocks) 4-9 % faster.
bool pair_table_pays(j_decompress_ptr c) {
  return scan_blocks(c) >= 1024;
}

/// The same for a skip table (about 10 us to build: 4,096 windows of up to three look-ups). Built
/// for every image, grey decodes of 64 px colour JPEGs took 35-39 us against 25 without it, 128 px
/// 62-67 against 53-55; at 256 px (1,152 blocks) the two were even.
bool skip_table_pays(j_decompress_ptr c) {
  return scan_blocks(c) >= 2048;
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

// A symbol whose magnitude bits did not fit the look-up (kind kSymbol: code consumed here) or whose
// code is longer than kBits (kLong): run << 4 | size, magnitude bits still unread.
[[gnu::always_inline]] inline int slow_symbol(j_decompress_ptr c, Reader& r, const Table& t, std::int32_t e) {
  if (((e >> 10) & 3) == kSymbol) {
    skip(r, e & 63);
    return (((e >> 6) & 15) << 4) | ((e >> 12) & 15);
  }
  return decode_long(c, r, t);
}

// A DC difference (F.2.2.1), with at least 32 bits in the reader.
[[gnu::always_inline]] inline int dc_diff(j_decompress_ptr c, Reader& r, const Table& dct) {
  const std::int32_t e = dct.fast[r.buf >> (64 - kBits)];
  if (((e >> 10) & 3) == kFull) {
    skip(r, e & 63);
    return e >> 16;
  }
  const int size = slow_symbol(c, r, dct, e) & 15;
  return extend(take(r, size), size);
}

// A block's AC symbols, stored in `block` when given. kSkip (nothing stored): whole runs of up
// to three symbols per look-up of the skip table while they stay inside the block; one symbol at
// a time otherwise.
template <bool kSkip>
[[gnu::always_inline]] inline void ac_symbols(j_decompress_ptr c, Reader& r, const std::uint8_t* end,
                                              const Table& act, JCOEF* block) {
  for (int k = 1; k < 64;) {
    if (r.n < 32) refill(r, end);
    if constexpr (kSkip) {
      // The window's symbols belong to this block while their last coefficient is at 63 at the
      // most; an end of block is one only while the block is not full (a block whose position
      // 63 is coded has none: the bits after it are the next block's).
      const std::uint32_t e = act.skip[r.buf >> (64 - kSkipBits)];
      const int reach = k + static_cast<int>((e >> 4) & 63) + static_cast<int>((e >> 10) & 1);
      if (e != 0 && reach <= 64) {
        skip(r, static_cast<int>(e & 15));
        if ((e & (1u << 10)) != 0) break;
        k = reach;
        continue;
      }
    }
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
      const int sym = slow_symbol(c, r, act, a);
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

// A block's AC symbols into `block`, up to two per look-up of the pair table: what ac_symbols<false>
// does, symbol by symbol in the same order (the same checks, the same stores), with one more
// store where the window holds no second symbol: a zero at position k, which no symbol has
// written yet (libjpeg hands over zeroed blocks; the ZRL store relies on that as well).
[[gnu::always_inline]] inline void ac_symbols_paired(j_decompress_ptr c, Reader& r, const std::uint8_t* end,
                                                     const Table& act, JCOEF* block) {
  for (int k = 1; k < 64;) {
    if (r.n < 32) refill(r, end);
    const std::uint64_t a = act.pair[r.buf >> (64 - kBits)];
    const auto e = static_cast<std::int32_t>(a);
    const std::int32_t kind = (e >> 10) & 3;
    if (kind == kFull) {
      skip(r, e & 63);
      k += (e >> 6) & 15;
      if (k > 63) give_up(c);  // a run past the block: damaged data
      block[kNatural[k]] = static_cast<JCOEF>(e >> 16);
      if (++k == 64) break;  // a full block has no end of block: the window's rest is the next block's
      const auto high = static_cast<std::uint32_t>(a >> 32);
      skip(r, static_cast<int>((high >> 8) & 63));
      if ((high & kPairEob) != 0) break;
      k += static_cast<int>((high >> 4) & 15);
      if (k > 63) give_up(c);
      block[kNatural[k]] = static_cast<JCOEF>(static_cast<std::int32_t>(high) >> 16);
      k += static_cast<int>(high & kPairFull);
      continue;
    }
    if (kind == kEob) {
      skip(r, e & 63);
      break;
    }
    const int sym = slow_symbol(c, r, act, e);
    const int run = sym >> 4, size = sym & 15;
    if (size == 0 && run != 15) break;  // libjpeg reads any size-0 symbol but ZRL as end of block
    k += run;
    const int value = extend(take(r, size), size);
    if (k > 63) give_up(c);
    block[kNatural[k]] = static_cast<JCOEF>(value);
    ++k;
  }
}

// One block: DC difference, then the AC coefficients (stored when `block` is given).
[[gnu::always_inline]] inline void decode_block(j_decompress_ptr c, State* s, Reader& r, int blkn,
                                                JCOEF* block) {
  const std::uint8_t* end = s->end;
  if (r.n < 32) refill(r, end);
  const int diff = dc_diff(c, r, *s->blk_dc[blkn]);
  if (s->dc_needed[blkn]) {
    const int ci = s->blk_comp[blkn];
    const int v = static_cast<int>(static_cast<unsigned>(s->last_dc[ci]) + static_cast<unsigned>(diff));
    s->last_dc[ci] = v;
    if (block != nullptr) block[0] = static_cast<JCOEF>(v);
  }
  if (!s->ac_needed[blkn]) block = nullptr;
  const Table& act = *s->blk_ac[blkn];
  if (block == nullptr && act.has_skip) {
    ac_symbols<true>(c, r, end, act, nullptr);
  } else if (block != nullptr && act.has_pair) {
    ac_symbols_paired(c, r, end, act, block);
  } else {
    ac_symbols<false>(c, r, end, act, block);
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

// At a restart boundary: the segment must end in the expected RSTn; the reader starts after it
// with the DC predictions and the EOB run reset (as libjpeg's process_restart does).
Reader restart(j_decompress_ptr c, State* s, const Reader r) {
  const std::uint8_t* m = segment_end(c, r, s->end);
  const std::uint8_t* next = nullptr;
  if (m >= s->end || marker_code(m, s->end, &next) != 0xD0 + c->marker->next_restart_num) give_up(c);
  c->marker->next_restart_num = (c->marker->next_restart_num + 1) & 7;
  for (int& v : s->last_dc) v = 0;
  s->eobrun = 0;
  s->restarts_to_go = s->restart_interval;
  Reader fresh;
  fresh.p = next;
  return fresh;
}

// After the scan's last MCU: the source is left at the marker that follows the segment, where
// libjpeg's marker reader goes on.
[[gnu::noinline]] void end_scan(j_decompress_ptr c, State* s) {
  const std::uint8_t* m = segment_end(c, s->in, s->end);
  const std::uint8_t* next = nullptr;
  if (m < s->end && marker_code(m, s->end, &next) < 0) give_up(c);  // FF..FF 00: data to libjpeg
  c->src->next_input_byte = m;
  c->src->bytes_in_buffer = static_cast<std::size_t>(s->end - m);
}

// After an MCU: no bits may have come from past the segment's end. Inlined, and the reader is
// stored field by field: a by-value call copied it through the stack with wide loads over narrow
// stores (a store-forwarding stall per MCU, 12 % of a progressive AC scan's decode_mcu).
[[gnu::always_inline]] inline void end_mcu(j_decompress_ptr c, State* s, const Reader& r) {
  if (r.n < r.pad) give_up(c);  // read past the segment's end
  s->in = r;
  if (--s->mcus_left == 0) end_scan(c, s);
}

// Before an MCU: the reader where the last one left it, or past the restart marker due here.
[[gnu::always_inline]] inline Reader begin_mcu(j_decompress_ptr c, State* s) {
  if (s->restart_interval == 0) return s->in;
  const Reader r = s->restarts_to_go == 0 ? restart(c, s, s->in) : s->in;
  --s->restarts_to_go;
  return r;
}

boolean decode_mcu(j_decompress_ptr c, JBLOCKROW* mcu) {
  auto* s = static_cast<State*>(c->client_data);
  Reader r = begin_mcu(c, s);
  const int blocks = c->blocks_in_MCU;
  for (int b = 0; b < blocks; ++b) decode_block(c, s, r, b, mcu != nullptr ? mcu[b][0] : nullptr);
  end_mcu(c, s, r);
  return TRUE;
}

// ---- progressive scans (ITU T.81 G.1.2; libjpeg-turbo's jdphuff.c is the reference) ------------

enum ScanKind : int { kDcFirst, kDcRefine, kAcFirst, kAcRefine };

/// One symbol of an AC table: zero run, magnitude size and (size > 0) the coefficient's value.
struct Symbol {
  int run, size, value;
};

[[gnu::always_inline]] inline Symbol ac_symbol(j_decompress_ptr c, Reader& r, const Table& t) {
  const std::int32_t a = t.fast[r.buf >> (64 - kBits)];
  const std::int32_t kind = (a >> 10) & 3;
  if (kind == kFull) {
    skip(r, a & 63);
    return {(a >> 6) & 15, (a >> 12) & 15, a >> 16};
  }
  if (kind == kEob) {
    skip(r, a & 63);
    return {(a >> 6) & 15, 0, 0};
  }
  const int sym = slow_symbol(c, r, t, a);
  const int size = sym & 15;
  return {sym >> 4, size, size != 0 ? extend(take(r, size), size) : 0};
}

/// The EOB run an EOBr symbol starts: 2^run plus `run` appended bits (run 0..14).
[[gnu::always_inline]] inline unsigned eob_run(Reader& r, int run) {
  return (1u << run) + take(r, run);
}

inline JCOEF shifted(int v, int al) {
  return static_cast<JCOEF>(static_cast<unsigned>(v) << al);
}

// DC, first scan: the difference as in a baseline block, added to the component's prediction.
[[gnu::always_inline]] inline void dc_first(j_decompress_ptr c, State* s, Reader& r, JBLOCKROW* mcu) {
  for (int b = 0; b < c->blocks_in_MCU; ++b) {
    if (r.n < 32) refill(r, s->end);
    const int diff = dc_diff(c, r, *s->blk_dc[b]);
    const int ci = s->blk_comp[b];
    const long long v = static_cast<long long>(s->last_dc[ci]) + diff;
    if (v > INT_MAX || v < INT_MIN) give_up(c);  // libjpeg stops with JERR_BAD_DCT_COEF
    s->last_dc[ci] = static_cast<int>(v);
    mcu[b][0][0] = shifted(static_cast<int>(v), s->al);
  }
}

// DC, refinement: one bit per block, the next bit of the value.
[[gnu::always_inline]] inline void dc_refine(j_decompress_ptr c, State* s, Reader& r, JBLOCKROW* mcu) {
  const int p1 = 1 << s->al;
  for (int b = 0; b < c->blocks_in_MCU; ++b) {
    if (r.n < 32) refill(r, s->end);
    if (take(r, 1) != 0) mcu[b][0][0] = static_cast<JCOEF>(mcu[b][0][0] | p1);
  }
}

// AC, first scan of the band Ss..Se (one block per MCU): runs, values and EOB runs.
[[gnu::always_inline]] inline void ac_first(j_decompress_ptr c, State* s, Reader& r, JCOEF* block,
                                            std::uint64_t* mask) {
  if (s->eobrun > 0) {
    --s->eobrun;
    return;
  }
  const Table& t = *s->scan_ac;
  const int se = s->se, al = s->al;
  std::uint64_t set = 0;
  for (int k = s->ss; k <= se;) {
    if (r.n < 32) refill(r, s->end);
    const Symbol y = ac_symbol(c, r, t);
    if (y.size == 0) {
      if (y.run == 15) {  // ZRL: past 16 zeros (libjpeg ends the band quietly when that runs off it)
        k += 16;
        continue;
      }
      s->eobrun = eob_run(r, y.run) - 1;  // this block is the run's first
      break;
    }
    k += y.run;
    if (k > se) give_up(c);  // a coefficient past the band: damaged data
    const JCOEF v = shifted(y.value, al);
    block[kNatural[k]] = v;
    set |= static_cast<std::uint64_t>(v != 0) << k;
    ++k;
  }
  if (mask != nullptr) *mask |= set;
}

/// Bits [lo, hi) of a 64-bit mask (0 <= lo <= 64, lo <= hi <= 64).
inline std::uint64_t bit_range(int lo, int hi) {
  const std::uint64_t below_hi = hi >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << hi) - 1;
  return lo >= 64 ? 0 : below_hi & (~std::uint64_t{0} << lo);
}

/// One correction bit for each coefficient of `todo` (zig-zag positions, ascending): where it is
/// 1 and the coefficient does not have bit Al yet, the magnitude grows by 2^Al (jdphuff.c's rule).
/// Up to 32 bits per refill, without a branch on the data.
[[gnu::always_inline]] inline void correct_all(Reader& r, const std::uint8_t* end, JCOEF* block,
                                               std::uint64_t todo, int p1) {
  while (todo != 0) {
    if (r.n < 32) refill(r, end);
    std::uint64_t buf = r.buf;
    int used = 0;
    do {
      JCOEF* coef = block + kNatural[__builtin_ctzll(todo)];
      todo &= todo - 1;
      const int v = *coef;
      const int bit = static_cast<int>(buf >> 63) & static_cast<int>((v & p1) == 0);
      buf <<= 1;
      ++used;
      const int sign = v >> 31;  // 0 or -1: the growth is p1 or -p1
      *coef = static_cast<JCOEF>(v + (-bit & ((p1 ^ sign) - sign)));
    } while (todo != 0 && used < 32);
    r.buf = buf;
    r.n -= used;
  }
}

// AC, refinement of the band: new coefficients are +-1 at bit Al; every coefficient already
// nonzero that a zero run passes (or an EOB run covers) gets one correction bit. The nonzero
// coefficients are found from a mask (bit k: zig-zag position k) rather than by testing each
// position in turn, whose branches a photo's coefficients make unpredictable.
[[gnu::always_inline]] inline void ac_refine(j_decompress_ptr c, State* s, Reader& r, JCOEF* block,
                                             std::uint64_t* mask) {
  const int ss = s->ss, se = s->se;
  const int p1 = 1 << s->al;
  std::uint64_t nz = 0;
  if (mask != nullptr) {
    nz = *mask & bit_range(ss, se + 1);
  } else {
    for (int k = ss; k <= se; ++k) nz |= static_cast<std::uint64_t>(block[kNatural[k]] != 0) << k;
  }
  std::uint64_t set = 0;
  int k = ss;
  if (s->eobrun == 0) {
    const Table& t = *s->scan_ac;
    for (; k <= se; ++k) {
      if (r.n < 32) refill(r, s->end);
      const Symbol y = ac_symbol(c, r, t);
      int value = 0;
      if (y.size != 0) {
        if (y.size != 1) give_up(c);  // libjpeg warns (JWRN_HUFF_BAD_CODE) and reads it as 1
        value = y.value > 0 ? p1 : -p1;
      } else if (y.run != 15) {
        s->eobrun = eob_run(r, y.run);
        break;
      }
      // Pass `run` zero coefficients (correcting the nonzero ones among them) and stop on the
      // next zero; past the band's end, stop there.
      std::uint64_t zeros = ~nz & bit_range(k, se + 1);
#ifdef __BMI2__
      const std::uint64_t nth = _pdep_u64(std::uint64_t{1} << y.run, zeros);  // the run-th zero, 0-based
      const int stop = nth != 0 ? __builtin_ctzll(nth) : se + 1;
#else
      for (int i = 0; i < y.run && zeros != 0; ++i) zeros &= zeros - 1;
      const int stop = zeros != 0 ? __builtin_ctzll(zeros) : se + 1;
#endif
      correct_all(r, s->end, block, nz & bit_range(k, stop), p1);
      k = stop;
      if (value != 0) {
        if (k > se) give_up(c);  // the new coefficient would land past the band
        block[kNatural[k]] = static_cast<JCOEF>(value);
        set |= std::uint64_t{1} << k;
      }
    }
  }
  if (s->eobrun > 0) {
    if (k <= se) correct_all(r, s->end, block, nz & bit_range(k, se + 1), p1);
    --s->eobrun;
  }
  if (mask != nullptr) *mask |= set;
}

boolean decode_mcu_progressive(j_decompress_ptr c, JBLOCKROW* mcu) {
  auto* s = static_cast<State*>(c->client_data);
  Reader r = begin_mcu(c, s);
  std::uint64_t* mask = s->scan_masks != nullptr ? s->scan_masks + (s->scan_mcus - s->mcus_left) : nullptr;
  switch (s->scan_kind) {
    case kDcFirst: dc_first(c, s, r, mcu); break;
    case kDcRefine: dc_refine(c, s, r, mcu); break;
    case kAcFirst: ac_first(c, s, r, mcu[0][0], mask); break;
    default: ac_refine(c, s, r, mcu[0][0], mask); break;
  }
  end_mcu(c, s, r);
  return TRUE;
}

// A table of the State's (allocated once per slot in the image pool), rebuilt from libjpeg's
// current JHUFF_TBL: a DHT between scans may have redefined it.
Table* scan_table(j_decompress_ptr c, Table** slot, const JHUFF_TBL* h, bool is_dc) {
  if (*slot == nullptr) {
    *slot = static_cast<Table*>(
        (*c->mem->alloc_small)(reinterpret_cast<j_common_ptr>(c), JPOOL_IMAGE, sizeof(Table)));
  }
  build_table(*h, is_dc, *slot);
  return *slot;
}

// After libjpeg's start_pass for a scan: takes the scan over when its source and tables are as
// this decoder needs them; otherwise leaves libjpeg's decode_mcu (scans are independent).
void start_scan(j_decompress_ptr c, State* s) {
  s->scan_masks = nullptr;
  int ac_ci = -1;  // the component of an AC scan
  if (c->Ss != 0 && c->comps_in_scan == 1) {
    const int ci = c->cur_comp_info[0]->component_index;
    if (ci >= 0 && ci < MAX_COMPONENTS) ac_ci = ci;
  }
  // An AC scan libjpeg decodes changes coefficients the masks would not know of.
  const auto decline = [&] {
    if (ac_ci >= 0) {
      s->masks[ac_ci] = nullptr;
      s->masks_lost[ac_ci] = true;
    }
  };
  if (c->unread_marker != 0 || c->src == nullptr || c->src->next_input_byte == nullptr ||
      c->src->next_input_byte > s->end ||
      static_cast<std::size_t>(s->end - c->src->next_input_byte) != c->src->bytes_in_buffer ||
      c->blocks_in_MCU > D_MAX_BLOCKS_IN_MCU || c->comps_in_scan > MAX_COMPS_IN_SCAN) {
    return decline();
  }
  const bool dc = c->Ss == 0;
  if (!dc && c->comps_in_scan != 1) return decline();
  for (int ci = 0; ci < c->comps_in_scan; ++ci) {
    const jpeg_component_info* comp = c->cur_comp_info[ci];
    const int t = dc ? comp->dc_tbl_no : comp->ac_tbl_no;
    if (t < 0 || t >= NUM_HUFF_TBLS) return decline();
    const JHUFF_TBL* h = dc ? c->dc_huff_tbl_ptrs[t] : c->ac_huff_tbl_ptrs[t];
    // Refinement of DC needs no table; libjpeg's start_pass has failed already on a missing one.
    if (h == nullptr && !(dc && c->Ah != 0)) return decline();
  }
  s->scan_kind = dc ? (c->Ah == 0 ? kDcFirst : kDcRefine) : (c->Ah == 0 ? kAcFirst : kAcRefine);
  s->ss = c->Ss;
  s->se = c->Se;
  s->al = c->Al;
  s->eobrun = 0;
  bool built[NUM_HUFF_TBLS] = {};  // components of a DC scan may share a table
  for (int ci = 0; ci < c->comps_in_scan; ++ci) {
    const jpeg_component_info* comp = c->cur_comp_info[ci];
    if (s->scan_kind == kDcFirst) {
      if (!built[comp->dc_tbl_no]) {
        scan_table(c, &s->dc[comp->dc_tbl_no], c->dc_huff_tbl_ptrs[comp->dc_tbl_no], true);
        built[comp->dc_tbl_no] = true;
      }
    } else if (!dc) {
      s->scan_ac = scan_table(c, &s->ac[comp->ac_tbl_no], c->ac_huff_tbl_ptrs[comp->ac_tbl_no], false);
    }
  }
  for (int b = 0; b < c->blocks_in_MCU; ++b) {
    const int ci = c->MCU_membership[b];
    s->blk_comp[b] = ci;
    s->blk_dc[b] = s->scan_kind == kDcFirst ? s->dc[c->cur_comp_info[ci]->dc_tbl_no] : nullptr;
  }
  for (int& v : s->last_dc) v = 0;
  s->in = Reader{};
  s->in.p = c->src->next_input_byte;
  s->restart_interval = c->restart_interval;
  s->restarts_to_go = c->restart_interval;
  s->mcus_left = static_cast<long>(c->MCUs_per_row) * static_cast<long>(c->MCU_rows_in_scan);
  s->scan_mcus = s->mcus_left;
  if (ac_ci >= 0) {
    // A non-interleaved scan's MCUs are the component's blocks in raster order.
    const jpeg_component_info* comp = c->cur_comp_info[0];
    const long blocks = static_cast<long>(comp->width_in_blocks) * static_cast<long>(comp->height_in_blocks);
    if (blocks != s->scan_mcus) {
      s->masks[ac_ci] = nullptr;
      s->masks_lost[ac_ci] = true;
    } else if (s->masks[ac_ci] == nullptr && !s->masks_lost[ac_ci]) {  // the component's first AC scan
      const std::size_t bytes = sizeof(std::uint64_t) * static_cast<std::size_t>(blocks);
      s->masks[ac_ci] = static_cast<std::uint64_t*>(
          (*c->mem->alloc_large)(reinterpret_cast<j_common_ptr>(c), JPOOL_IMAGE, bytes));
      std::memset(s->masks[ac_ci], 0, bytes);
    }
    s->scan_masks = s->masks[ac_ci];
  }
  c->entropy->decode_mcu = decode_mcu_progressive;
}

void start_pass_progressive(j_decompress_ptr c) {
  auto* s = static_cast<State*>(c->client_data);
  s->libjpeg_start_pass(c);  // validates the scan, keeps coef_bits, may warn or fail as ever
  start_scan(c, s);
}

}  // namespace

bool install(j_decompress_ptr c, const std::uint8_t* data_end, void (*bail)(j_decompress_ptr)) {
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
    Table* act = s->ac[comp->ac_tbl_no];
    if (!s->ac_needed[b] && !act->has_skip && skip_table_pays(c)) build_skip(act);
    if (s->ac_needed[b] && !act->has_pair && pair_table_pays(c)) build_pair(act);
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

bool install_progressive(j_decompress_ptr c, const std::uint8_t* data_end, void (*bail)(j_decompress_ptr)) {
  if (!c->progressive_mode || c->arith_code || c->entropy == nullptr || c->entropy->start_pass == nullptr ||
      c->global_state != DSTATE_PRELOAD || c->input_scan_number != 1 || c->input_iMCU_row != 0 ||
      c->coef_bits == nullptr || data_end == nullptr) {
    return false;
  }
  auto* s = static_cast<State*>(
      (*c->mem->alloc_small)(reinterpret_cast<j_common_ptr>(c), JPOOL_IMAGE, sizeof(State)));
  new (s) State();
  s->end = data_end;
  s->bail = bail;
  s->libjpeg_start_pass = c->entropy->start_pass;
  c->client_data = s;
  c->entropy->start_pass = start_pass_progressive;
  start_scan(c, s);  // the first scan's start_pass has run already
  return true;
}

}  // namespace mmcore::detail::MMCORE_HUFF_VARIANT
