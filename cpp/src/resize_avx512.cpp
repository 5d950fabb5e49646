// AVX-512 (BW + VNNI) row kernels for resize, bit-identical to resize_ref.cpp.
//
// Exactness: as in resize_avx2.cpp, each 22-bit coefficient k is split as k = hi * 2^15 + lo with
// lo in [0, 2^15) and hi = k >> 15, so that a pixel (u8) times either part is an exact int16 x
// int16 product. vpdpwssd (VNNI, non-saturating) adds two such products to an int32 lane; the
// hi and lo sums are kept apart and combined as (sum_hi << 15) + sum_lo, equal to sum(p * k)
// modulo 2^32: the reference's wrapping int32 sum.
//
// What AVX-512 changes against the AVX2 kernels: one vpdpwssd replaces madd + add, and a zmm
// holds two output pixels (horizontal) or 64 output bytes (vertical). Masked loads and stores
// handle the tails. The 1-channel horizontal pass (grey: the hashes' resizes, grey thumbnails)
// takes 32 taps per block and four output pixels at a time where a window is wider than 16
// taps (the AVX2 kernel otherwise), and 64 taps per block of int8 coefficient parts (vpdpbusd)
// where windows are wide enough for that to pay. Vector constants are built inside functions.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "resize_simd_internal.h"

namespace mmcore::resize_detail {

namespace {

// --- horizontal, 3 or 4 channels --------------------------------------------------------------
//
// Table: Header, int32 byte offset per output pixel, then per pair of output pixels (2g, 2g + 1)
// nb blocks of two zmm (hi parts, lo parts). A block covers 4 taps of both pixels: 128-bit lane 0
// holds pixel 2g's taps (4b, 4b+1) as int16 pairs, once per channel; lane 1 its taps (4b+2, 4b+3);
// lanes 2 and 3 the same for pixel 2g + 1. The source vector is the matching 16 source bytes of
// each pixel (lanes 0-1 and 2-3), shuffled into int16 pairs (p[4b+2j] ch, p[4b+2j+1] ch). When the
// two windows of a pair fit in about as many blocks together (`shared`, chosen per table), both
// pixels read the pair's union window and their taps are placed in it: one load per block.
// The table covers the outputs rounded up to 4 (the extra ones repeat the last pixel, computed
// and never stored), so the main loop has no tail case. Windows that would run past the row end
// move left (leading zero taps), as in the AVX2 table; what is read past a row's last pixel is
// then at most 16 bytes, within kRowOverRead.
struct TableHeader {
  std::int32_t nb;
  std::int32_t shared;   ///< 1: both pixels of a pair read one window (offs[2g] == offs[2g + 1])
  std::int32_t avx2_c1;  ///< 1: a 1-channel table whose windows fit 16 taps: the AVX2 table follows
  std::int32_t c1_u8;    ///< 1: a 1-channel table of int8 coefficient parts (horizontal_c1_u8)
  std::int32_t pad[12];
};

constexpr std::int32_t kTapsPerBlock = 4;

std::int32_t blocks_per_pixel(const Axis& ax) {
  return (widest_window(ax) + kTapsPerBlock - 1) / kTapsPerBlock;
}

/// Blocks when the two pixels of each pair share one window (the union of theirs).
std::int32_t blocks_per_pair(const Axis& ax) {
  std::int32_t widest = 1;
  for (std::int32_t x = 0; x < ax.out_size; x += 2) {
    const std::int32_t y = x + 1 < ax.out_size ? x + 1 : x;
    const std::int32_t lo = ax.start[x] < ax.start[y] ? ax.start[x] : ax.start[y];
    const std::int32_t e0 = ax.start[x] + ax.count[x], e1 = ax.start[y] + ax.count[y];
    const std::int32_t span = (e0 > e1 ? e0 : e1) - lo;
    widest = widest > span ? widest : span;
  }
  return (widest + kTapsPerBlock - 1) / kTapsPerBlock;
}

/// The layout a table uses: a shared window saves one masked load per block and pixel pair (3
/// vector ops instead of 4) but may need more blocks.
struct Layout {
  std::int32_t nb;
  bool shared;
};

Layout layout(const Axis& ax) {
  const std::int32_t own = blocks_per_pixel(ax), pair = blocks_per_pair(ax);
  if (pair * 3 <= own * 4) return {pair, true};
  return {own, false};
}

inline std::int32_t padded_outputs(std::int32_t out) {
  return (out + 3) / 4 * 4;
}

inline std::int64_t offsets_bytes(std::int32_t out) {
  return (static_cast<std::int64_t>(padded_outputs(out)) * 4 + 63) / 64 * 64;
}

struct TableView {
  std::int32_t nb;
  bool shared;
  const std::int32_t* offs;
  const __m512i* blocks;
};

TableView table_view(const void* table, std::int32_t out) {
  const auto* head = static_cast<const TableHeader*>(table);
  const auto* offs = reinterpret_cast<const std::int32_t*>(head + 1);
  return {head->nb, head->shared != 0, offs,
          reinterpret_cast<const __m512i*>(reinterpret_cast<const std::uint8_t*>(offs) + offsets_bytes(out))};
}

// One pair of output pixels (xa, xb = xa + 1) over R source rows: acc_h / acc_l per row. SHARED:
// both read the window at off_a (the table placed their taps in it).
template <int C, int NB, int R, bool SHARED>
inline void pair_dot(const std::uint8_t* const* src, std::int32_t off_a, std::int32_t off_b,
                     const __m512i* kb, std::int32_t nb_rt, __m512i shuf, __m512i* acc_h, __m512i* acc_l) {
  const std::int32_t nb = NB ? NB : nb_rt;
  // The rounding term rides in lanes 0 and 2 (each pixel's first half): the halves are added
  // later, so it counts once per pixel.
  const __m512i round = _mm512_maskz_set1_epi32(0x0F0F, kRoundHalf);
  for (int r = 0; r < R; ++r) acc_h[r] = _mm512_setzero_si512(), acc_l[r] = round;
  for (std::int32_t b = 0; b < nb; ++b) {
    const __m512i kh = _mm512_load_si512(kb + 2 * b), kl = _mm512_load_si512(kb + 2 * b + 1);
    for (int r = 0; r < R; ++r) {
      const std::uint8_t* s = src[r] + 4 * C * b;
      __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + off_a)));
      if (!SHARED) {
        v = _mm512_mask_broadcast_i32x4(v, 0xFF00,
                                        _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + off_b)));
      }
      const __m512i p = _mm512_shuffle_epi8(v, shuf);
      acc_h[r] = _mm512_dpwssd_epi32(acc_h[r], p, kh);
      acc_l[r] = _mm512_dpwssd_epi32(acc_l[r], p, kl);
    }
  }
}

template <int C, int NB, int R, bool SHARED>
void horizontal_c34(const std::uint8_t* const* src, std::uint8_t* const* dst, std::int32_t out,
                    std::int32_t nb_rt, const std::int32_t* offs, const __m512i* blocks) {
  const std::int32_t nb = NB ? NB : nb_rt;
  // Per 128-bit lane: lanes 0 and 2 take source pixels 0, 1 of their 16 bytes, lanes 1 and 3
  // pixels 2, 3; int32 lane ch = (p[even] ch, p[odd] ch) as int16 (-1 gives a zero byte).
  const __m512i shuf = C == 4 ? _mm512_setr_epi32(0x80048000, 0x80058001, 0x80068002, 0x80078003,  //
                                                  0x800C8008, 0x800D8009, 0x800E800A, 0x800F800B,  //
                                                  0x80048000, 0x80058001, 0x80068002, 0x80078003,  //
                                                  0x800C8008, 0x800D8009, 0x800E800A, 0x800F800B)
                              : _mm512_setr_epi32(0x80038000, 0x80048001, 0x80058002, -1,  //
                                                  0x80098006, 0x800A8007, 0x800B8008, -1,  //
                                                  0x80038000, 0x80048001, 0x80058002, -1,  //
                                                  0x80098006, 0x800A8007, 0x800B8008, -1);
  // Drops the zero 4th channel: 4 RGB0 pixels -> 12 RGB bytes (per 128-bit lane).
  const __m128i pack3 = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
  const __m256i pack3x2 = _mm256_broadcastsi128_si256(pack3);
  // After packs / packus, 128-bit lane l holds pixel x+l of row 0 in dword 0 and of row 1 in
  // dword 1: this gathers row 0's four pixels into dwords 0-3 and row 1's into 4-7.
  const __m512i rows_apart = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0);
  const std::int64_t pair_stride = 2 * static_cast<std::int64_t>(nb);  // zmm per pair
  for (std::int32_t x = 0; x < out; x += 4) {
    __m512i h0[R], l0[R], h1[R], l1[R];
    pair_dot<C, NB, R, SHARED>(src, offs[x], offs[x + 1], blocks + pair_stride * (x / 2), nb, shuf, h0, l0);
    pair_dot<C, NB, R, SHARED>(src, offs[x + 2], offs[x + 3], blocks + pair_stride * (x / 2 + 1), nb, shuf,
                               h1, l1);
    const std::int32_t n = out - x < 4 ? out - x : 4;
    const __mmask16 keep = static_cast<__mmask16>((1u << (n * C)) - 1);
    __m512i s[R];
    for (int r = 0; r < R; ++r) {
      const __m512i z0 = _mm512_add_epi32(_mm512_slli_epi32(h0[r], kSplit), l0[r]);
      const __m512i z1 = _mm512_add_epi32(_mm512_slli_epi32(h1[r], kSplit), l1[r]);
      // Lanes (0, 2) and (1, 3) of each pair hold the two halves of each pixel's taps: adding
      // them gives pixels x .. x+3, channel by channel, in order.
      s[r] = _mm512_srai_epi32(
          _mm512_add_epi32(_mm512_shuffle_i32x4(z0, z1, 0x88), _mm512_shuffle_i32x4(z0, z1, 0xDD)),
          kPrecisionBits);
    }
    const std::int64_t at = static_cast<std::int64_t>(x) * C;
    if constexpr (R == 2) {
      // Both rows at once: packs / packus saturate to 0..255 (clip8).
      const __m512i b = _mm512_packus_epi16(_mm512_packs_epi32(s[0], s[1]), _mm512_setzero_si512());
      __m256i px = _mm512_castsi512_si256(_mm512_permutexvar_epi32(rows_apart, b));
      if (C == 3) px = _mm256_shuffle_epi8(px, pack3x2);
      _mm_mask_storeu_epi8(dst[0] + at, keep, _mm256_castsi256_si128(px));
      _mm_mask_storeu_epi8(dst[1] + at, keep, _mm256_extracti128_si256(px, 1));
    } else {
      __m128i px = _mm512_cvtusepi32_epi8(_mm512_max_epi32(s[0], _mm512_setzero_si512()));
      if (C == 3) px = _mm_shuffle_epi8(px, pack3);
      _mm_mask_storeu_epi8(dst[0] + at, keep, px);
    }
  }
}

template <int C, int R, bool SHARED>
void horizontal_c34_nb(const std::uint8_t* const* src, std::uint8_t* const* dst, std::int32_t out,
                       std::int32_t nb, const std::int32_t* offs, const __m512i* blocks) {
  switch (nb) {
    case 1: return horizontal_c34<C, 1, R, SHARED>(src, dst, out, nb, offs, blocks);
    case 2: return horizontal_c34<C, 2, R, SHARED>(src, dst, out, nb, offs, blocks);
    case 3: return horizontal_c34<C, 3, R, SHARED>(src, dst, out, nb, offs, blocks);
    case 4: return horizontal_c34<C, 4, R, SHARED>(src, dst, out, nb, offs, blocks);
    default: return horizontal_c34<C, 0, R, SHARED>(src, dst, out, nb, offs, blocks);
  }
}

template <int C, int R>
void horizontal_c34_dispatch(const std::uint8_t* const* src, std::uint8_t* const* dst, std::int32_t out,
                             const TableView& t) {
  if (t.shared) return horizontal_c34_nb<C, R, true>(src, dst, out, t.nb, t.offs, t.blocks);
  horizontal_c34_nb<C, R, false>(src, dst, out, t.nb, t.offs, t.blocks);
}

// --- horizontal, 1 channel ---------------------------------------------------------------------
//
// Table: Header, int32 byte offset per output pixel (padded to a multiple of 4 outputs; the extra
// ones repeat the last pixel, computed and never stored), then per output pixel nb blocks of two
// zmm: 32 taps' hi parts, then their lo parts, as int16. Windows that would run past the row end
// move left (leading zero taps); a row narrower than nb * 32 is read at most 31 bytes past its
// end, within kRowOverRead.
constexpr std::int32_t kTapsPerBlockC1 = 32;

/// Windows of 16 taps or fewer (bilinear, upscaling, small area and lanczos ratios) keep the AVX2
/// kernel and table: a 32-tap block would be half zeros (measured slower there, 1.2x faster from
/// 17 taps on and 2x at the 94 taps of a 500 -> 32 lanczos3 row).
bool c1_keeps_avx2(const Axis& ax) {
  return widest_window(ax) <= 16;
}

std::int32_t blocks_per_pixel_c1(const Axis& ax) {
  return (widest_window(ax) + kTapsPerBlockC1 - 1) / kTapsPerBlockC1;
}

/// One output pixel's (sum_hi << kSplit) + sum_lo in 16 int32 lanes (to be added up).
template <int NB>
inline __m512i dot_c1(const std::uint8_t* s, const __m512i* k, std::int32_t nb_rt) {
  const std::int32_t nb = NB ? NB : nb_rt;
  __m512i h = _mm512_setzero_si512(), l = _mm512_setzero_si512();
  for (std::int32_t b = 0; b < nb; ++b) {
    const __m512i p =
        _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + kTapsPerBlockC1 * b)));
    h = _mm512_dpwssd_epi32(h, p, _mm512_load_si512(k + 2 * b));
    l = _mm512_dpwssd_epi32(l, p, _mm512_load_si512(k + 2 * b + 1));
  }
  return _mm512_add_epi32(_mm512_slli_epi32(h, kSplit), l);
}

// --- horizontal, 1 channel, int8 coefficient parts ----------------------------------------------
//
// Where every coefficient k of the axis lies in [-2^21, 2^21) (downscales: a lanczos3 tap is at
// most ~1/ratio of 2^22), k = a * 2^14 + b * 2^7 + c with a = k >> 14 an int8 and b, c in
// [0, 128): each part is an int8, so vpdpbusd (u8 pixels x s8 parts, four products per int32
// lane, non-saturating) takes 64 taps per instruction without widening the pixels, and
// (sum_a << 14) + (sum_b << 7) + sum_c is sum(p * k) modulo 2^32, the reference's wrapping sum.
// Per 64 taps: one pixel load and three vpdpbusd, against two loads, two widenings and four
// vpdpwssd for the int16 parts. Table: Header, offsets as above, then per output pixel nb blocks
// of three zmm (the a, b and c parts of 64 taps). A row narrower than nb * 64 is read at most 63
// bytes past its end, within kRowOverRead.
constexpr std::int32_t kTapsPerBlockU8 = 64;
constexpr int kU8SplitB = 7, kU8SplitA = 14;

bool c1_fits_u8_parts(const Axis& ax) {
  for (std::int32_t x = 0; x < ax.out_size; ++x) {
    const std::int32_t* k = ax.coeffs + static_cast<std::int64_t>(x) * ax.ksize;
    for (std::int32_t t = 0; t < ax.count[x]; ++t) {
      if (k[t] < -(1 << 21) || k[t] >= (1 << 21)) return false;
    }
  }
  return true;
}

std::int32_t blocks_per_pixel_u8(const Axis& ax) {
  return (widest_window(ax) + kTapsPerBlockU8 - 1) / kTapsPerBlockU8;
}

/// The int8 parts when they fit and save work: measured (one thread, lanczos3 to 8..64 px from
/// 200..4032 px wide), a 64-tap block costs about 1.5 32-tap int16 blocks (three multiplies against
/// two: they appear bound by one port), so the int8 layout wins where it takes under 2/3 of the
/// blocks: 1.25-1.5x from 1024 px to 8 or 32, 1.13x from 500 to 8 or 9; at 500 -> 32 (94 taps: 2
/// blocks against 3) it lost 12 %.
bool c1_uses_u8(const Axis& ax) {
  return 3 * blocks_per_pixel_u8(ax) < 2 * blocks_per_pixel_c1(ax) && c1_fits_u8_parts(ax);
}

template <int NB>
inline __m512i dot_c1_u8(const std::uint8_t* s, const __m512i* k, std::int32_t nb_rt) {
  const std::int32_t nb = NB ? NB : nb_rt;
  __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512(), c = _mm512_setzero_si512();
  for (std::int32_t i = 0; i < nb; ++i) {
    const __m512i p = _mm512_loadu_si512(s + kTapsPerBlockU8 * i);
    a = _mm512_dpbusd_epi32(a, p, _mm512_load_si512(k + 3 * i));
    b = _mm512_dpbusd_epi32(b, p, _mm512_load_si512(k + 3 * i + 1));
    c = _mm512_dpbusd_epi32(c, p, _mm512_load_si512(k + 3 * i + 2));
  }
  return _mm512_add_epi32(_mm512_add_epi32(_mm512_slli_epi32(a, kU8SplitA), _mm512_slli_epi32(b, kU8SplitB)),
                          c);
}

/// Grey rows, four output pixels at a time: kU8 picks the table layout (int8 or int16 parts).
template <int NB, bool kU8>
void horizontal_c1(const std::uint8_t* src, std::uint8_t* dst, std::int32_t out, std::int32_t nb_rt,
                   const std::int32_t* offs, const __m512i* blocks) {
  const std::int32_t nb = NB ? NB : nb_rt;
  const std::int64_t per = (kU8 ? 3 : 2) * static_cast<std::int64_t>(nb);  // zmm per output pixel
  const auto dot = [&](std::int32_t xi) {
    if constexpr (kU8) return dot_c1_u8<NB>(src + offs[xi], blocks + per * xi, nb);
    return dot_c1<NB>(src + offs[xi], blocks + per * xi, nb);
  };
  for (std::int32_t x = 0; x < out; x += 4) {
    const __m512i a0 = dot(x), a1 = dot(x + 1), a2 = dot(x + 2), a3 = dot(x + 3);
    // Per 128-bit lane: [a0, a1, a2, a3] partial sums; then the four lanes added.
    const __m512i t01 = _mm512_add_epi32(_mm512_unpacklo_epi32(a0, a1), _mm512_unpackhi_epi32(a0, a1));
    const __m512i t23 = _mm512_add_epi32(_mm512_unpacklo_epi32(a2, a3), _mm512_unpackhi_epi32(a2, a3));
    const __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(t01, t23), _mm512_unpackhi_epi64(t01, t23));
    const __m256i v = _mm256_add_epi32(_mm512_castsi512_si256(u), _mm512_extracti64x4_epi64(u, 1));
    store_four_sums(_mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)), dst, x, out);
  }
}

void horizontal_c1_dispatch(const std::uint8_t* src, std::uint8_t* dst, const Axis& ax, const void* table) {
  const auto* head = static_cast<const TableHeader*>(table);
  if (head->avx2_c1 != 0) return horizontal_row_avx2(src, dst, 1, ax, head + 1);
  const std::int32_t out = ax.out_size;
  const auto* offs = reinterpret_cast<const std::int32_t*>(head + 1);
  const auto* blocks =
      reinterpret_cast<const __m512i*>(reinterpret_cast<const std::uint8_t*>(offs) + offsets_bytes(out));
  if (head->c1_u8 != 0) {
    switch (head->nb) {
      case 1: return horizontal_c1<1, true>(src, dst, out, 1, offs, blocks);
      case 2: return horizontal_c1<2, true>(src, dst, out, 2, offs, blocks);
      default: return horizontal_c1<0, true>(src, dst, out, head->nb, offs, blocks);
    }
  }
  switch (head->nb) {
    case 1: return horizontal_c1<1, false>(src, dst, out, 1, offs, blocks);
    case 2: return horizontal_c1<2, false>(src, dst, out, 2, offs, blocks);
    case 3: return horizontal_c1<3, false>(src, dst, out, 3, offs, blocks);
    default: return horizontal_c1<0, false>(src, dst, out, head->nb, offs, blocks);
  }
}

/// zmm per output pixel of a 1-channel table: nb blocks of two (int16 parts) or three (int8 parts).
std::int64_t c1_zmm_per_pixel(const Axis& ax, bool u8) {
  return u8 ? 3 * static_cast<std::int64_t>(blocks_per_pixel_u8(ax))
            : 2 * static_cast<std::int64_t>(blocks_per_pixel_c1(ax));
}

std::size_t horizontal_table_bytes_c1(const Axis& ax, bool u8) {
  return sizeof(TableHeader) + offsets_bytes(ax.out_size) +
         static_cast<std::size_t>(padded_outputs(ax.out_size) * c1_zmm_per_pixel(ax, u8)) * sizeof(__m512i);
}

void horizontal_table_fill_c1(const Axis& ax, void* table, bool u8) {
  const std::int32_t taps = u8 ? kTapsPerBlockU8 : kTapsPerBlockC1;
  const std::int32_t nb = u8 ? blocks_per_pixel_u8(ax) : blocks_per_pixel_c1(ax);
  const std::int32_t span = nb * taps;
  const std::int64_t zmm_per_block = u8 ? 3 : 2;
  auto* head = static_cast<TableHeader*>(table);
  *head = TableHeader{};
  head->nb = nb;
  head->c1_u8 = u8 ? 1 : 0;
  auto* offs = reinterpret_cast<std::int32_t*>(head + 1);
  std::uint8_t* blocks = reinterpret_cast<std::uint8_t*>(offs) + offsets_bytes(ax.out_size);
  for (std::int32_t xp = 0; xp < padded_outputs(ax.out_size); ++xp) {
    const std::int32_t x = xp < ax.out_size ? xp : ax.out_size - 1;
    const std::int32_t n = ax.count[x];
    const std::int32_t first = window_first(ax.start[x], span, ax.in_size);
    const std::int32_t lead = ax.start[x] - first;
    offs[xp] = first;
    const std::int32_t* k = ax.coeffs + static_cast<std::int64_t>(x) * ax.ksize;
    for (std::int32_t t = 0; t < span; ++t) {
      const std::int32_t kv = (t >= lead && t - lead < n) ? k[t - lead] : 0;
      std::uint8_t* block = blocks + (static_cast<std::int64_t>(xp) * nb + t / taps) * zmm_per_block * 64;
      const std::int32_t i = t % taps;
      if (u8) {  // a, b, c parts: 64 int8 each
        block[i] = static_cast<std::uint8_t>(kv >> kU8SplitA);
        block[64 + i] = static_cast<std::uint8_t>((kv >> kU8SplitB) & 127);
        block[128 + i] = static_cast<std::uint8_t>(kv & 127);
      } else {  // hi, lo parts: 32 int16 each
        auto* parts = reinterpret_cast<std::int16_t*>(block);
        parts[i] = coeff_hi(kv);
        parts[32 + i] = coeff_lo(kv);
      }
    }
  }
}

// --- vertical -------------------------------------------------------------------------------------

/// Taps up to which the pair coefficients live on the stack (3 kB); longer filters (downscales
/// past ~40x with lanczos3) run the AVX2 kernel.
constexpr std::int32_t kMaxTaps = 256;

/// 64 output bytes from `i` (only the bytes in `m` are loaded and stored), two taps per step: rows
/// t and t+1 interleaved byte by byte, then widened to int16 pairs (a, b) per int32 lane; the
/// lanes of w_j are the outputs 16 * lane128 + 4j .. 4j + 3, which packs put back in order.
inline void vertical_block64(const std::uint8_t* const* rows, std::int32_t pairs, const std::int32_t* ph,
                             const std::int32_t* pl, std::uint8_t* dst, std::int64_t i, __mmask64 m) {
  const __m512i zero = _mm512_setzero_si512();
  __m512i h[4], l[4];
  for (int j = 0; j < 4; ++j) h[j] = zero, l[j] = _mm512_set1_epi32(kRoundHalf);
  for (std::int32_t p = 0; p < pairs; ++p) {
    const __m512i a = _mm512_maskz_loadu_epi8(m, rows[2 * p] + i);
    const __m512i b = _mm512_maskz_loadu_epi8(m, rows[2 * p + 1] + i);
    const __m512i x0 = _mm512_unpacklo_epi8(a, b), x1 = _mm512_unpackhi_epi8(a, b);
    const __m512i w[4] = {_mm512_unpacklo_epi8(x0, zero), _mm512_unpackhi_epi8(x0, zero),
                          _mm512_unpacklo_epi8(x1, zero), _mm512_unpackhi_epi8(x1, zero)};
    const __m512i kh = _mm512_set1_epi32(ph[p]), kl = _mm512_set1_epi32(pl[p]);
    for (int j = 0; j < 4; ++j) {
      h[j] = _mm512_dpwssd_epi32(h[j], w[j], kh);
      l[j] = _mm512_dpwssd_epi32(l[j], w[j], kl);
    }
  }
  __m512i s[4];
  for (int j = 0; j < 4; ++j)
    s[j] = _mm512_srai_epi32(_mm512_add_epi32(_mm512_slli_epi32(h[j], kSplit), l[j]), kPrecisionBits);
  // packs / packus saturate to int16 then to 0..255: clip8.
  const __m512i bytes = _mm512_packus_epi16(_mm512_packs_epi32(s[0], s[1]), _mm512_packs_epi32(s[2], s[3]));
  _mm512_mask_storeu_epi8(dst + i, m, bytes);
}

}  // namespace

std::size_t horizontal_table_bytes_avx512(const Axis& ax, std::int32_t channels) {
  if (channels == 1) {
    if (!c1_keeps_avx2(ax)) return horizontal_table_bytes_c1(ax, c1_uses_u8(ax));
    return sizeof(TableHeader) + horizontal_table_bytes_avx2(ax, 1);
  }
  const std::int64_t nb = layout(ax).nb;
  return sizeof(TableHeader) + offsets_bytes(ax.out_size) +
         static_cast<std::size_t>(padded_outputs(ax.out_size) / 2) * nb * 2 * sizeof(__m512i);
}

void horizontal_table_fill_avx512(const Axis& ax, std::int32_t channels, void* table) {
  if (channels == 1) {
    if (!c1_keeps_avx2(ax)) return horizontal_table_fill_c1(ax, table, c1_uses_u8(ax));
    // The choice is made here, once per axis, and read back from the header by every row.
    auto* head = static_cast<TableHeader*>(table);
    *head = TableHeader{};
    head->avx2_c1 = 1;
    return horizontal_table_fill_avx2(ax, 1, head + 1);
  }
  const Layout lay = layout(ax);
  const std::int32_t nb = lay.nb;
  const std::int32_t span = nb * kTapsPerBlock;  // taps each pixel (or pair) reads
  const std::int32_t padded = padded_outputs(ax.out_size);
  auto* head = static_cast<TableHeader*>(table);
  *head = TableHeader{};
  head->nb = nb;
  head->shared = lay.shared ? 1 : 0;
  auto* offs = reinterpret_cast<std::int32_t*>(head + 1);
  auto* blocks =
      reinterpret_cast<std::int16_t*>(reinterpret_cast<std::uint8_t*>(offs) + offsets_bytes(ax.out_size));
  const auto real = [&](std::int32_t xp) { return xp < ax.out_size ? xp : ax.out_size - 1; };
  for (std::int32_t xp = 0; xp < padded; ++xp) {
    const std::int32_t x = real(xp);
    const std::int32_t n = ax.count[x];
    // The window read: the pixel's own, or its pair's union; moved left (zero leading taps)
    // rather than read past the row end.
    std::int32_t first = ax.start[x];
    if (lay.shared) {
      const std::int32_t a = real(xp & ~1), b = real(xp | 1);
      first = ax.start[a] < ax.start[b] ? ax.start[a] : ax.start[b];
    }
    first = window_first(first, span, ax.in_size);
    const std::int32_t lead = ax.start[x] - first;
    offs[xp] = first * channels;
    const std::int32_t* k = ax.coeffs + static_cast<std::int64_t>(x) * ax.ksize;
    const auto tap = [&](std::int32_t t) { return (t >= lead && t - lead < n) ? k[t - lead] : 0; };
    // int16 index inside a block's zmm: lane (2 * half + j), channel ch, pair element e.
    const std::int32_t half = xp & 1;
    for (std::int32_t b = 0; b < nb; ++b) {
      std::int16_t* hi = blocks + (static_cast<std::int64_t>(xp / 2) * nb + b) * 64;
      std::int16_t* lo = hi + 32;
      for (int j = 0; j < 2; ++j) {
        for (int e = 0; e < 2; ++e) {
          const std::int32_t kv = tap(b * kTapsPerBlock + 2 * j + e);
          for (int ch = 0; ch < 4; ++ch) {
            const std::int32_t idx = (2 * half + j) * 8 + 2 * ch + e;
            hi[idx] = coeff_hi(kv);
            lo[idx] = coeff_lo(kv);
          }
        }
      }
    }
  }
}

void horizontal_row_avx512(const std::uint8_t* src, std::uint8_t* dst, std::int32_t channels, const Axis& ax,
                           const void* table) {
  if (channels == 1) return horizontal_c1_dispatch(src, dst, ax, table);
  const TableView t = table_view(table, ax.out_size);
  if (channels == 3) return horizontal_c34_dispatch<3, 1>(&src, &dst, ax.out_size, t);
  horizontal_c34_dispatch<4, 1>(&src, &dst, ax.out_size, t);
}

void horizontal_rows2_avx512(const std::uint8_t* src0, const std::uint8_t* src1, std::uint8_t* dst0,
                             std::uint8_t* dst1, std::int32_t channels, const Axis& ax, const void* table) {
  if (channels == 1) {  // its coefficients are plain loads: nothing to share between rows
    horizontal_row_avx512(src0, dst0, 1, ax, table);
    horizontal_row_avx512(src1, dst1, 1, ax, table);
    return;
  }
  const TableView t = table_view(table, ax.out_size);
  const std::uint8_t* src[2] = {src0, src1};
  std::uint8_t* dst[2] = {dst0, dst1};
  if (channels == 3) return horizontal_c34_dispatch<3, 2>(src, dst, ax.out_size, t);
  horizontal_c34_dispatch<4, 2>(src, dst, ax.out_size, t);
}

void vertical_row_avx512(const std::uint8_t* const* rows, std::int32_t taps, const std::int32_t* k,
                         std::uint8_t* dst, std::int64_t bytes) {
  if (taps > kMaxTaps) return vertical_row_avx2(rows, taps, k, dst, bytes);
  // Tap pairs (t, t + 1) as int16 pairs, hi and lo parts; an odd last tap pairs with a zero.
  const std::int32_t pairs = (taps + 1) / 2;
  std::int32_t ph[kMaxTaps / 2], pl[kMaxTaps / 2];
  const std::uint8_t* r[kMaxTaps];
  for (std::int32_t p = 0; p < pairs; ++p) {
    const std::int32_t k0 = k[2 * p], k1 = 2 * p + 1 < taps ? k[2 * p + 1] : 0;
    ph[p] = static_cast<std::int32_t>(
        static_cast<std::uint16_t>(coeff_hi(k0)) |
        (static_cast<std::uint32_t>(static_cast<std::uint16_t>(coeff_hi(k1))) << 16));
    pl[p] = static_cast<std::int32_t>(
        static_cast<std::uint16_t>(coeff_lo(k0)) |
        (static_cast<std::uint32_t>(static_cast<std::uint16_t>(coeff_lo(k1))) << 16));
    r[2 * p] = rows[2 * p];
    r[2 * p + 1] = 2 * p + 1 < taps ? rows[2 * p + 1] : rows[2 * p];
  }
  std::int64_t i = 0;
  for (; i + 64 <= bytes; i += 64) vertical_block64(r, pairs, ph, pl, dst, i, ~__mmask64{0});
  if (i < bytes) vertical_block64(r, pairs, ph, pl, dst, i, (__mmask64{1} << (bytes - i)) - 1);
}

// --- lanczos3 taps (compute_axis, TapMath::kFast) ------------------------------------------------
//
// The scalar lanczos_taps_fast (resize.cpp) eight taps at a time: the same filter argument (bit for
// bit Pillow's), the same folded Taylor sine and triple-angle identity, with fused multiply-adds
// (one rounding per step instead of two, so within the scalar evaluation's bound of Pillow's
// value); the weights are summed in tap order as Pillow sums them; the same guard on every
// quantised tap, whose failure sends the output to Pillow's expressions.
bool lanczos_taps_avx512(int xmin, int n, double center, double ss, double* w, std::int32_t* k) {
  constexpr double kPi2Over3 = M_PI * M_PI / 3;
  const __m512d vcenter = _mm512_set1_pd(center), vss = _mm512_set1_pd(ss), half = _mm512_set1_pd(0.5);
  const __m512d three = _mm512_set1_pd(3.0), pi = _mm512_set1_pd(M_PI), half_pi = _mm512_set1_pd(M_PI / 2);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int x0 = 0; x0 < n; x0 += 8) {
    const __mmask8 m = n - x0 >= 8 ? __mmask8{0xFF} : static_cast<__mmask8>((1u << (n - x0)) - 1);
    const __m512d xs = _mm512_cvtepi32_pd(_mm256_add_epi32(_mm256_set1_epi32(x0 + xmin), lane));
    const __m512d a = _mm512_mul_pd(_mm512_add_pd(_mm512_sub_pd(xs, vcenter), half), vss);
    const __mmask8 in =
        _mm512_cmp_pd_mask(a, _mm512_set1_pd(-3.0), _CMP_GE_OQ) & _mm512_cmp_pd_mask(a, three, _CMP_LT_OQ);
    const __mmask8 zero = _mm512_cmp_pd_mask(a, _mm512_setzero_pd(), _CMP_EQ_OQ);
    // s = sin(pi a / 3) at Pillow's argument fl(fl(a / 3) * pi), folded to |r| <= pi / 2.
    const __m512d z = _mm512_mul_pd(_mm512_div_pd(a, three), pi);
    __m512d r = z;
    r = _mm512_mask_sub_pd(r, _mm512_cmp_pd_mask(z, half_pi, _CMP_GT_OQ), pi, z);
    r = _mm512_mask_sub_pd(r, _mm512_cmp_pd_mask(z, _mm512_sub_pd(_mm512_setzero_pd(), half_pi), _CMP_LT_OQ),
                           _mm512_sub_pd(_mm512_setzero_pd(), pi), z);
    const __m512d r2 = _mm512_mul_pd(r, r);
    __m512d p = _mm512_set1_pd(kSinTaylor[0]);
    for (int j = 1; j < 11; ++j) p = _mm512_fmadd_pd(p, r2, _mm512_set1_pd(kSinTaylor[j]));
    const __m512d sv = _mm512_mul_pd(r, p), s2 = _mm512_mul_pd(sv, sv);
    // sinc(a) sinc(a / 3) = s^2 (3 - 4 s^2) / (pi^2 a^2 / 3); 1 at a = 0, 0 outside (-3, 3).
    const __m512d num = _mm512_mul_pd(s2, _mm512_fnmadd_pd(_mm512_set1_pd(4.0), s2, three));
    const __m512d den = _mm512_mul_pd(_mm512_mul_pd(_mm512_set1_pd(kPi2Over3), a), a);
    __m512d v = _mm512_maskz_div_pd(static_cast<__mmask8>(in & ~zero), num, den);
    v = _mm512_mask_mov_pd(v, static_cast<__mmask8>(in & zero), _mm512_set1_pd(1.0));
    _mm512_mask_storeu_pd(w + x0, m, v);
  }
  double ww = 0.0;
  for (int x = 0; x < n; ++x) ww += w[x];
  if (!(ww >= 0.5)) return false;
  const __m512d scale = _mm512_set1_pd((1 << kPrecisionBits) / ww);
  const __m512d lo = _mm512_set1_pd(kTapGuard), hi = _mm512_set1_pd(1.0 - kTapGuard);
  for (int x0 = 0; x0 < n; x0 += 8) {
    const __mmask8 m = n - x0 >= 8 ? __mmask8{0xFF} : static_cast<__mmask8>((1u << (n - x0)) - 1);
    const __m512d q = _mm512_mul_pd(_mm512_maskz_loadu_pd(m, w + x0), scale);
    // Rounded half away from zero by truncation, as normalize_coeffs_8bpc does.
    const __mmask8 neg = _mm512_cmp_pd_mask(q, _mm512_setzero_pd(), _CMP_LT_OQ);
    const __m512d t = _mm512_mask_sub_pd(_mm512_add_pd(q, half), neg, q, half);
    const __m512d tr = _mm512_roundscale_pd(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m512d frac = _mm512_abs_pd(_mm512_sub_pd(t, tr));
    const __mmask8 near =
        _mm512_mask_cmp_pd_mask(m, frac, lo, _CMP_LT_OQ) | _mm512_mask_cmp_pd_mask(m, frac, hi, _CMP_GT_OQ);
    if (near != 0) return false;
    _mm256_mask_storeu_epi32(k + x0, m, _mm512_cvttpd_epi32(t));
  }
  return true;
}

}  // namespace mmcore::resize_detail
