// AVX2 row kernels for resize, bit-identical to resize_ref.cpp.
//
// Exactness: a tap is pixel (u8) * coefficient (22-bit signed int). Each coefficient k is split
// as k = hi * 2^15 + lo with lo in [0, 2^15) and hi = k >> 15 (an int16 for any |k| < 2^30;
// normalised taps are about 2^22), so that _mm256_madd_epi16 forms exact 32-bit products. The sums sum(p*hi)
// and sum(p*lo) are accumulated separately and combined as (sum_hi << 15) + sum_lo: equal to sum(p*k) modulo
// 2^32, which is the reference's (wrapping) int32 sum. Vector constants are built inside functions.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "resize_simd_internal.h"

namespace mmcore::resize_detail {

namespace {

// Horizontal table: every output pixel of the row gets the same number of blocks `nb` (from the
// widest window), so the tap loop has a fixed trip count (fully unrolled for small nb). A
// pixel's window is moved left where it would run past the row end (leading zero taps); what
// is still read past a row's last pixel (the rest of a 16-byte load, or a row narrower than nb
// blocks) is at most 16 bytes, within kRowOverRead. Layout: Header, int32 byte offset per pixel (padded to 32
// bytes), then per pixel nb blocks of two vectors (hi, lo):
// - channels 3/4: a block covers 4 taps: 16 bytes, int16 hi0..hi3 then lo0..lo3.
// - channel 1: a block covers 16 taps as int16; where every coefficient of the axis fits an int16
//   (shrinking by more than ~128, windows of ~800 taps: a hash's 8 or 9 outputs from a photo's
//   row), the block holds the 16 coefficients themselves (`whole`) and the kernel does one
//   vpmaddwd per 16 taps, not two.
struct TableHeader {
  std::int32_t nb;
  std::int32_t whole;  ///< channel 1: blocks hold whole int16 coefficients (no hi / lo split)
  std::int32_t pad[6];
};

inline std::int32_t taps_per_block(std::int32_t channels) {
  return channels == 1 ? 16 : 4;
}

std::int32_t blocks_per_pixel(const Axis& ax, std::int32_t channels) {
  const std::int32_t per = taps_per_block(channels);
  return (widest_window(ax) + per - 1) / per;
}

inline std::int64_t offsets_bytes(std::int32_t out) {
  return (static_cast<std::int64_t>(out) * 4 + 31) / 32 * 32;
}

// --- horizontal, 1 channel: 4 output pixels at a time, 16 taps per block ------------------------

template <int NB, bool Whole>
inline __m256i dot_c1(const std::uint8_t* s, const __m256i* k, std::int32_t nb_rt) {
  const std::int32_t nb = NB ? NB : nb_rt;
  if constexpr (Whole) {  // p * k summed in pairs by one vpmaddwd: exact, k fits an int16
    __m256i acc = _mm256_setzero_si256();
    for (std::int32_t b = 0; b < nb; ++b) {
      const __m256i p = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 16 * b)));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_load_si256(k + 2 * b)));
    }
    return acc;
  }
  __m256i h = _mm256_setzero_si256(), l = _mm256_setzero_si256();
  for (std::int32_t b = 0; b < nb; ++b) {
    const __m256i p = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 16 * b)));
    h = _mm256_add_epi32(h, _mm256_madd_epi16(p, _mm256_load_si256(k + 2 * b)));
    l = _mm256_add_epi32(l, _mm256_madd_epi16(p, _mm256_load_si256(k + 2 * b + 1)));
  }
  return _mm256_add_epi32(_mm256_slli_epi32(h, kSplit), l);
}

template <int NB, bool Whole>
void horizontal_c1(const std::uint8_t* src, std::uint8_t* dst, std::int32_t out, std::int32_t nb_rt,
                   const std::int32_t* offs, const __m256i* blocks) {
  const std::int32_t nb = NB ? NB : nb_rt;
  for (std::int32_t x = 0; x < out; x += 4) {
    // A group past the row end repeats its last pixel (computed, not stored).
    std::int32_t xi[4];
    for (int i = 0; i < 4; ++i) xi[i] = x + i < out ? x + i : out - 1;
    const __m256i a0 = dot_c1<NB, Whole>(src + offs[xi[0]], blocks + 2 * nb * xi[0], nb);
    const __m256i a1 = dot_c1<NB, Whole>(src + offs[xi[1]], blocks + 2 * nb * xi[1], nb);
    const __m256i a2 = dot_c1<NB, Whole>(src + offs[xi[2]], blocks + 2 * nb * xi[2], nb);
    const __m256i a3 = dot_c1<NB, Whole>(src + offs[xi[3]], blocks + 2 * nb * xi[3], nb);
    // hadd twice leaves, per lane, the four pixels' partial sums; adding the lanes completes them.
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    store_four_sums(_mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)), dst, x, out);
  }
}

// --- horizontal, 3 or 4 channels: 2 output pixels at a time, 4 taps x all channels per block ---

// R source rows share each block's coefficients (loaded and expanded once for all rows).
template <int C, int NB, int R>
inline void dot_c34(const std::uint8_t* const* src, std::int32_t off, const __m128i* k, std::int32_t nb_rt,
                    __m256i shuf, __m256i khi, __m256i klo, __m256i* res) {
  const std::int32_t nb = NB ? NB : nb_rt;
  // The rounding term rides in lane 0 only: the caller adds the two lanes, so it counts once.
  const __m256i round_lane0 = _mm256_setr_epi32(kRoundHalf, kRoundHalf, kRoundHalf, kRoundHalf, 0, 0, 0, 0);
  __m256i h[R], l[R];
  for (int r = 0; r < R; ++r) h[r] = _mm256_setzero_si256(), l[r] = round_lane0;
  for (std::int32_t b = 0; b < nb; ++b) {
    const __m256i kk = _mm256_broadcastsi128_si256(_mm_load_si128(k + b));
    const __m256i kh = _mm256_shuffle_epi8(kk, khi), kl = _mm256_shuffle_epi8(kk, klo);
    for (int r = 0; r < R; ++r) {
      const auto* s = reinterpret_cast<const __m128i*>(src[r] + off + 4 * C * b);
      const __m256i p = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128(s)), shuf);
      h[r] = _mm256_add_epi32(h[r], _mm256_madd_epi16(p, kh));
      l[r] = _mm256_add_epi32(l[r], _mm256_madd_epi16(p, kl));
    }
  }
  for (int r = 0; r < R; ++r) res[r] = _mm256_add_epi32(_mm256_slli_epi32(h[r], kSplit), l[r]);
}

// Output pixels x0 and x1 of R rows: s[r] = int32 (x0 ch0..3 | x1 ch0..3), shifted (the
// accumulators carry the rounding term).
template <int C, int NB, int R>
inline void pair_c34(const std::uint8_t* const* src, const std::int32_t* offs, const __m128i* kb,
                     std::int32_t nb_rt, std::int32_t x0, std::int32_t x1, __m256i shuf, __m256i khi,
                     __m256i klo, __m256i* s) {
  const std::int32_t nb = NB ? NB : nb_rt;
  __m256i a[R], b[R];
  dot_c34<C, NB, R>(src, offs[x0], kb + nb * x0, nb, shuf, khi, klo, a);
  dot_c34<C, NB, R>(src, offs[x1], kb + nb * x1, nb, shuf, khi, klo, b);
  for (int r = 0; r < R; ++r) {
    // Lane 0 <- pixel x0 (taps 0,1 + taps 2,3), lane 1 <- pixel x1: (a.lo | b.hi) + (a.hi | b.lo).
    const __m256i t =
        _mm256_add_epi32(_mm256_blend_epi32(a[r], b[r], 0xF0), _mm256_permute2x128_si256(a[r], b[r], 0x21));
    s[r] = _mm256_srai_epi32(t, kPrecisionBits);
  }
}

// Four output pixels per iteration, stored with fixed-size writes (12 or 16 bytes): an earlier
// two-pixel version stored through a variable-length memcpy, which compiled to a byte loop and
// a store-forwarding stall, and cost more than the taps. The last group of a row (fewer than 4
// pixels left) repeats the row's last pixel and writes only the real ones.
template <int C, int NB, int R>
void horizontal_c34(const std::uint8_t* const* src, std::uint8_t* const* dst, std::int32_t out,
                    std::int32_t nb_rt, const std::int32_t* offs, const void* blocks) {
  const std::int32_t nb = NB ? NB : nb_rt;
  // Byte shuffle of 4 source pixels (broadcast to both lanes) into int16 pairs
  // (p[2j] ch, p[2j+1] ch) for ch = 0..3; lane j holds pixels 2j, 2j+1. -1 gives a zero byte.
  const __m256i shuf = C == 4 ? _mm256_setr_epi8(0, -1, 4, -1, 1, -1, 5, -1, 2, -1, 6, -1, 3, -1, 7, -1,  //
                                                 8, -1, 12, -1, 9, -1, 13, -1, 10, -1, 14, -1, 11, -1, 15, -1)
                              : _mm256_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1,  //
                                                 6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1);
  // A block's 16 bytes are int16 (hi0..hi3, lo0..lo3); these expand them in-register to lane 0 =
  // (k0,k1) x4, lane 1 = (k2,k3) x4, which keeps the table 4x smaller (it stays in L1/L2).
  // (A table stored pre-expanded, 64 bytes a block, measured slower on 500->341.)
  const __m256i khi = _mm256_setr_epi8(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3,  //
                                       4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7);
  const __m256i klo = _mm256_setr_epi8(8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11,  //
                                       12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15);
  // Drops the zero 4th channel: bytes of 4 RGB0 pixels -> 12 RGB bytes (the rest zero).
  const __m128i pack3 = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
  const auto* kb = static_cast<const __m128i*>(blocks);
  for (std::int32_t x = 0; x < out; x += 4) {
    std::int32_t xi[4];
    for (int i = 0; i < 4; ++i) xi[i] = x + i < out ? x + i : out - 1;
    __m256i s02[R], s13[R];
    pair_c34<C, NB, R>(src, offs, kb, nb, xi[0], xi[2], shuf, khi, klo, s02);
    pair_c34<C, NB, R>(src, offs, kb, nb, xi[1], xi[3], shuf, khi, klo, s13);
    for (int r = 0; r < R; ++r) {
      // packs: int16 lane 0 = (x, x+1), lane 1 = (x+2, x+3); packus: bytes, one qword per lane;
      // the permute joins qwords 0 and 2 into pixels x..x+3 in order (values are 0..255 after).
      const __m256i w = _mm256_packus_epi16(_mm256_packs_epi32(s02[r], s13[r]), _mm256_setzero_si256());
      __m128i px = _mm256_castsi256_si128(_mm256_permute4x64_epi64(w, 0x08));
      if (C == 3) px = _mm_shuffle_epi8(px, pack3);
      std::uint8_t* d = dst[r] + static_cast<std::int64_t>(x) * C;
      if (x + 4 <= out) {
        if (C == 4) {
          _mm_storeu_si128(reinterpret_cast<__m128i*>(d), px);
        } else {
          _mm_storel_epi64(reinterpret_cast<__m128i*>(d), px);
          const std::uint32_t last = static_cast<std::uint32_t>(_mm_extract_epi32(px, 2));
          std::memcpy(d + 8, &last, 4);
        }
      } else {
        alignas(16) std::uint8_t tmp[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(tmp), px);
        std::memcpy(d, tmp, static_cast<std::size_t>(out - x) * C);
      }
    }
  }
}

template <int C, int R>
void horizontal_c34_dispatch(const std::uint8_t* const* src, std::uint8_t* const* dst, std::int32_t out,
                             std::int32_t nb, const std::int32_t* offs, const void* blocks) {
  switch (nb) {
    case 1: return horizontal_c34<C, 1, R>(src, dst, out, nb, offs, blocks);
    case 2: return horizontal_c34<C, 2, R>(src, dst, out, nb, offs, blocks);
    case 3: return horizontal_c34<C, 3, R>(src, dst, out, nb, offs, blocks);
    case 4: return horizontal_c34<C, 4, R>(src, dst, out, nb, offs, blocks);
    default: return horizontal_c34<C, 0, R>(src, dst, out, nb, offs, blocks);
  }
}

struct TableView {
  std::int32_t nb;
  bool whole;
  const std::int32_t* offs;
  const void* blocks;
};

TableView table_view(const void* table, std::int32_t out) {
  const auto* head = static_cast<const TableHeader*>(table);
  const auto* offs = reinterpret_cast<const std::int32_t*>(head + 1);
  return {head->nb, head->whole != 0, offs, reinterpret_cast<const std::uint8_t*>(offs) + offsets_bytes(out)};
}

// --- vertical ------------------------------------------------------------------------------------

/// 32 output bytes at offset i, one tap at a time: bytes widened to int32 and multiplied by the
/// whole coefficient (_mm256_mullo_epi32: the low 32 bits, ref's modular sum). Measured on this AMD EPYC
/// (Zen 3 class) 10-15% faster than the madd hi/lo split the horizontal pass uses, and simpler;
/// on Intel cores vpmulld is two uops, where the split may win again.
inline void vertical_block32(const std::uint8_t* const* rows, std::int32_t taps, const std::int32_t* k,
                             std::uint8_t* dst, std::int64_t i) {
  __m256i a0 = _mm256_set1_epi32(kRoundHalf), a1 = a0, a2 = a0, a3 = a0;
  for (std::int32_t t = 0; t < taps; ++t) {
    const std::uint8_t* r = rows[t] + i;
    const __m256i kk = _mm256_set1_epi32(k[t]);
    const auto widen = [](const std::uint8_t* p) {
      return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    };
    a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(widen(r), kk));
    a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(widen(r + 8), kk));
    a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(widen(r + 16), kk));
    a3 = _mm256_add_epi32(a3, _mm256_mullo_epi32(widen(r + 24), kk));
  }
  // a0 holds bytes [0..3 | 4..7], a1 [8..11 | 12..15], ...: the lane-wise packs give
  // [0-3 8-11 16-19 24-27 | 4-7 12-15 20-23 28-31] as dwords, which one permute puts in order.
  const __m256i w01 =
      _mm256_packs_epi32(_mm256_srai_epi32(a0, kPrecisionBits), _mm256_srai_epi32(a1, kPrecisionBits));
  const __m256i w23 =
      _mm256_packs_epi32(_mm256_srai_epi32(a2, kPrecisionBits), _mm256_srai_epi32(a3, kPrecisionBits));
  const __m256i bytes =
      _mm256_permutevar8x32_epi32(_mm256_packus_epi16(w01, w23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), bytes);
}

/// 8 output bytes at offset i (rows narrower than 32 bytes: dHash's 9 and aHash's 8 outputs), the
/// same arithmetic as vertical_block32 on one accumulator.
inline void vertical_block8(const std::uint8_t* const* rows, std::int32_t taps, const std::int32_t* k,
                            std::uint8_t* dst, std::int64_t i) {
  __m256i a = _mm256_set1_epi32(kRoundHalf);
  for (std::int32_t t = 0; t < taps; ++t) {
    const __m256i px = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(rows[t] + i)));
    a = _mm256_add_epi32(a, _mm256_mullo_epi32(px, _mm256_set1_epi32(k[t])));
  }
  const __m256i w = _mm256_packs_epi32(_mm256_srai_epi32(a, kPrecisionBits), _mm256_setzero_si256());
  // w: words [0-3 x | 4-7 x]; bytes 0-3 in the low lane's first dword, 4-7 in the high lane's.
  const __m128i b = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + i), _mm_unpacklo_epi32(b, _mm_srli_si128(b, 8)));
}

}  // namespace

std::size_t horizontal_table_bytes_avx2(const Axis& ax, std::int32_t channels) {
  const std::int64_t nb = blocks_per_pixel(ax, channels);
  const std::int64_t block_bytes = channels == 1 ? 64 : 16;
  return sizeof(TableHeader) + offsets_bytes(ax.out_size) +
         static_cast<std::size_t>(ax.out_size) * nb * block_bytes;
}

void horizontal_table_fill_avx2(const Axis& ax, std::int32_t channels, void* table) {
  const std::int32_t nb = blocks_per_pixel(ax, channels);
  const std::int32_t per = taps_per_block(channels);
  const std::int32_t span = nb * per;  // taps each pixel reads
  auto* head = static_cast<TableHeader*>(table);
  *head = TableHeader{};
  head->nb = nb;
  bool whole = channels == 1;
  for (std::int64_t i = 0; whole && i < static_cast<std::int64_t>(ax.out_size) * ax.ksize; ++i)
    whole = ax.coeffs[i] >= INT16_MIN && ax.coeffs[i] <= INT16_MAX;
  head->whole = whole;
  auto* offs = reinterpret_cast<std::int32_t*>(head + 1);
  auto* out =
      reinterpret_cast<std::int16_t*>(reinterpret_cast<std::uint8_t*>(offs) + offsets_bytes(ax.out_size));
  for (std::int32_t x = 0; x < ax.out_size; ++x) {
    const std::int32_t n = ax.count[x];
    std::int32_t first = ax.start[x];
    // Move the window left (zero leading taps) rather than read past the row end.
    first = window_first(first, span, ax.in_size);
    const std::int32_t lead = ax.start[x] - first;
    offs[x] = first * channels;
    const std::int32_t* k = ax.coeffs + static_cast<std::int64_t>(x) * ax.ksize;
    const auto tap = [&](std::int32_t t) { return (t >= lead && t - lead < n) ? k[t - lead] : 0; };
    for (std::int32_t b = 0; b < nb; ++b) {
      if (channels == 1) {
        for (int j = 0; j < 16; ++j) {
          const std::int32_t c = tap(b * 16 + j);
          out[j] = whole ? static_cast<std::int16_t>(c) : coeff_hi(c);
          out[16 + j] = whole ? 0 : coeff_lo(c);
        }
        out += 32;
      } else {
        for (int j = 0; j < 4; ++j) {
          out[j] = coeff_hi(tap(b * 4 + j));
          out[4 + j] = coeff_lo(tap(b * 4 + j));
        }
        out += 8;
      }
    }
  }
}

void horizontal_row_avx2(const std::uint8_t* src, std::uint8_t* dst, std::int32_t channels, const Axis& ax,
                         const void* table) {
  const TableView t = table_view(table, ax.out_size);
  const std::int32_t out = ax.out_size;
  switch (channels) {
    case 1: {
      const auto* blocks = static_cast<const __m256i*>(t.blocks);
      if (t.whole) return horizontal_c1<0, true>(src, dst, out, t.nb, t.offs, blocks);
      if (t.nb == 1) return horizontal_c1<1, false>(src, dst, out, t.nb, t.offs, blocks);
      if (t.nb == 2) return horizontal_c1<2, false>(src, dst, out, t.nb, t.offs, blocks);
      return horizontal_c1<0, false>(src, dst, out, t.nb, t.offs, blocks);
    }
    case 3: return horizontal_c34_dispatch<3, 1>(&src, &dst, out, t.nb, t.offs, t.blocks);
    default: return horizontal_c34_dispatch<4, 1>(&src, &dst, out, t.nb, t.offs, t.blocks);
  }
}

void horizontal_rows2_avx2(const std::uint8_t* src0, const std::uint8_t* src1, std::uint8_t* dst0,
                           std::uint8_t* dst1, std::int32_t channels, const Axis& ax, const void* table) {
  if (channels == 1) {  // its coefficients are plain loads: nothing to share
    horizontal_row_avx2(src0, dst0, channels, ax, table);
    horizontal_row_avx2(src1, dst1, channels, ax, table);
    return;
  }
  const TableView t = table_view(table, ax.out_size);
  const std::uint8_t* src[2] = {src0, src1};
  std::uint8_t* dst[2] = {dst0, dst1};
  if (channels == 3) return horizontal_c34_dispatch<3, 2>(src, dst, ax.out_size, t.nb, t.offs, t.blocks);
  horizontal_c34_dispatch<4, 2>(src, dst, ax.out_size, t.nb, t.offs, t.blocks);
}

void vertical_row_avx2(const std::uint8_t* const* rows, std::int32_t taps, const std::int32_t* k,
                       std::uint8_t* dst, std::int64_t bytes) {
  if (bytes < 8) {
    vertical_row_ref(rows, taps, k, dst, bytes);
    return;
  }
  std::int64_t i = 0;
  if (bytes < 32) {
    for (; i + 8 <= bytes; i += 8) vertical_block8(rows, taps, k, dst, i);
    if (i < bytes) vertical_block8(rows, taps, k, dst, bytes - 8);
    return;
  }
  for (; i + 32 <= bytes; i += 32) vertical_block32(rows, taps, k, dst, i);
  // Tail: recompute the last 32 bytes (outputs depend only on inputs, so overlap is harmless).
  if (i < bytes) vertical_block32(rows, taps, k, dst, bytes - 32);
}

// --- lanczos3 taps (compute_axis, TapMath::kFast) ------------------------------------------------
//
// lanczos_taps_avx512 (resize_avx512.cpp) four taps at a time: the scalar lanczos_taps_fast's filter
// argument (bit for bit Pillow's), folded Taylor sine and triple-angle identity, with fused
// multiply-adds (within the scalar evaluation's bound of Pillow's value); the weights summed in tap
// order as Pillow sums them; the same guard on every quantised tap, whose failure sends the output
// to Pillow's expressions. The last vector's lanes past n are neither read nor written.
bool lanczos_taps_avx2(int xmin, int n, double center, double ss, double* w, std::int32_t* k) {
  constexpr double kPi2Over3 = M_PI * M_PI / 3;
  const __m256d vcenter = _mm256_set1_pd(center), vss = _mm256_set1_pd(ss), half = _mm256_set1_pd(0.5);
  const __m256d three = _mm256_set1_pd(3.0), pi = _mm256_set1_pd(M_PI), half_pi = _mm256_set1_pd(M_PI / 2);
  const __m256d zero = _mm256_setzero_pd();
  const __m128i lane = _mm_setr_epi32(0, 1, 2, 3);
  // Lanes below `left` of a 4-lane vector: the weights' 64-bit mask.
  const auto mask64 = [](int left) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(left), _mm256_setr_epi64x(0, 1, 2, 3));
  };
  for (int x0 = 0; x0 < n; x0 += 4) {
    const __m256d xs = _mm256_cvtepi32_pd(_mm_add_epi32(_mm_set1_epi32(x0 + xmin), lane));
    const __m256d a = _mm256_mul_pd(_mm256_add_pd(_mm256_sub_pd(xs, vcenter), half), vss);
    const __m256d in = _mm256_and_pd(_mm256_cmp_pd(a, _mm256_set1_pd(-3.0), _CMP_GE_OQ),
                                     _mm256_cmp_pd(a, three, _CMP_LT_OQ));
    const __m256d at0 = _mm256_cmp_pd(a, zero, _CMP_EQ_OQ);
    // s = sin(pi a / 3) at Pillow's argument fl(fl(a / 3) * pi), folded to |r| <= pi / 2.
    const __m256d z = _mm256_mul_pd(_mm256_div_pd(a, three), pi);
    __m256d r = _mm256_blendv_pd(z, _mm256_sub_pd(pi, z), _mm256_cmp_pd(z, half_pi, _CMP_GT_OQ));
    r = _mm256_blendv_pd(r, _mm256_sub_pd(_mm256_sub_pd(zero, pi), z),
                         _mm256_cmp_pd(z, _mm256_sub_pd(zero, half_pi), _CMP_LT_OQ));
    const __m256d r2 = _mm256_mul_pd(r, r);
    __m256d p = _mm256_set1_pd(kSinTaylor[0]);
    for (int j = 1; j < 11; ++j) p = _mm256_fmadd_pd(p, r2, _mm256_set1_pd(kSinTaylor[j]));
    const __m256d sv = _mm256_mul_pd(r, p), s2 = _mm256_mul_pd(sv, sv);
    // sinc(a) sinc(a / 3) = s^2 (3 - 4 s^2) / (pi^2 a^2 / 3); 1 at a = 0, 0 outside (-3, 3).
    const __m256d num = _mm256_mul_pd(s2, _mm256_fnmadd_pd(_mm256_set1_pd(4.0), s2, three));
    const __m256d den = _mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(kPi2Over3), a), a);
    __m256d v = _mm256_and_pd(_mm256_div_pd(num, den), _mm256_andnot_pd(at0, in));  // 0/0 at a = 0: masked
    v = _mm256_blendv_pd(v, _mm256_set1_pd(1.0), _mm256_and_pd(in, at0));
    if (n - x0 >= 4) {
      _mm256_storeu_pd(w + x0, v);
    } else {
      _mm256_maskstore_pd(w + x0, mask64(n - x0), v);
    }
  }
  double ww = 0.0;
  for (int x = 0; x < n; ++x) ww += w[x];
  if (!(ww >= 0.5)) return false;
  const __m256d scale = _mm256_set1_pd((1 << kPrecisionBits) / ww);
  const __m256d lo = _mm256_set1_pd(kTapGuard), hi = _mm256_set1_pd(1.0 - kTapGuard);
  const __m256d sign = _mm256_set1_pd(-0.0);
  for (int x0 = 0; x0 < n; x0 += 4) {
    const bool full = n - x0 >= 4;
    const __m256i m = full ? _mm256_set1_epi64x(-1) : mask64(n - x0);
    const __m256d q = _mm256_mul_pd(full ? _mm256_loadu_pd(w + x0) : _mm256_maskload_pd(w + x0, m), scale);
    // Rounded half away from zero by truncation, as normalize_coeffs_8bpc does.
    const __m256d t =
        _mm256_blendv_pd(_mm256_add_pd(q, half), _mm256_sub_pd(q, half), _mm256_cmp_pd(q, zero, _CMP_LT_OQ));
    const __m256d tr = _mm256_round_pd(t, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256d frac = _mm256_andnot_pd(sign, _mm256_sub_pd(t, tr));
    const __m256d near =
        _mm256_or_pd(_mm256_cmp_pd(frac, lo, _CMP_LT_OQ), _mm256_cmp_pd(frac, hi, _CMP_GT_OQ));
    if (_mm256_movemask_pd(_mm256_and_pd(near, _mm256_castsi256_pd(m))) != 0) return false;
    const __m128i ki = _mm256_cvttpd_epi32(t);
    if (full) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(k + x0), ki);
    } else {
      _mm_maskstore_epi32(k + x0, _mm_cmpgt_epi32(_mm_set1_epi32(n - x0), lane), ki);
    }
  }
  return true;
}

}  // namespace mmcore::resize_detail
