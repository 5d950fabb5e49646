// AVX-512 (BW) islow IDCT, two blocks per call, bit-identical to idct_islow_ref.
//
// Layout: each 256-bit half of a register belongs to one block; a half holds two 8-lane int16
// vectors (its two 128-bit lanes). A 1-D pass takes the coefficient vectors paired as
// (0|4), (3|1), (2|6), (7|5) and gives its outputs paired as (0|1), (3|2), (4|5), (7|6): the even
// part's two halves (tmp0 from x0 + x4 and tmp1 from x0 - x4, tmp3 and tmp2 from x2, x6) and the
// odd part's (o0 / o1, o3 / o2) sit in the lanes where they combine, so each vpmaddwd computes
// two different sums of products (constants differ per lane) and each output pair is one add or
// subtract. The transpose between passes is three unpack stages and one two-source qword permute
// per register (12 shuffles for both blocks); it leaves the second index in the order
// 0 3 4 7 1 2 5 6, which the next pass does not care about (its lanes are independent), and which
// one vpshufb undoes on the bytes at the end.
#include <immintrin.h>

#include "idct_internal.h"
#include "idct_kernel_internal.h"

namespace mmcore::detail {
namespace {

using namespace idct;

/// int16 pairs (a, b) in every dword of 128-bit lane 0 and (c, d) in lane 1 of each 256-bit half.
__m512i pairs(std::int32_t a, std::int32_t b, std::int32_t c, std::int32_t d) {
  const auto lo =
      static_cast<std::int32_t>(static_cast<std::uint16_t>(a) | (static_cast<std::uint32_t>(b) << 16));
  const auto hi =
      static_cast<std::int32_t>(static_cast<std::uint16_t>(c) | (static_cast<std::uint32_t>(d) << 16));
  return _mm512_setr_epi32(lo, lo, lo, lo, hi, hi, hi, hi, lo, lo, lo, lo, hi, hi, hi, hi);
}

/// The two 128-bit lanes of each 256-bit half exchanged.
inline __m512i swap_lanes(__m512i v) {
  return _mm512_shuffle_i64x2(v, v, 0xB1);
}

/// Words of lane 1 of each half (for per-lane add / subtract).
constexpr __mmask32 kLane1Words = 0xFF00FF00u;

struct Quad {
  __m512i v01, v32, v45, v76;  // outputs of a pass, paired (0|1) (3|2) (4|5) (7|6)
};

/// One 1-D pass. Inputs paired (0|4), (3|1), (2|6), (7|5); `Shift` is the descale.
template <int Shift>
inline Quad pass(__m512i x04, __m512i x31, __m512i x26, __m512i x75) {
  const __m512i k_even = pairs(kF0541 + kF0765, kF0541, kF0541 - kF1847, kF0541);
  const __m512i k_rot = pairs(kF1175 - kF1961, kF1175, kF1175 - kF0390, kF1175);
  const __m512i k_o01 = pairs(kF0298 - kF0899, -kF0899, kF2053 - kF2562, -kF2562);
  const __m512i k_o32 = pairs(-kF0899, kF1501 - kF0899, -kF2562, kF3072 - kF2562);
  const __m512i round = _mm512_set1_epi32(1 << (Shift - 1));

  // Even part. Lane 0: tmp3 = x2 (F0541 + F0765) + x6 F0541; lane 1: tmp2 = x6 (F0541 - F1847) + x2 F0541.
  const __m512i x62 = swap_lanes(x26);
  const __m512i t32_lo = _mm512_madd_epi16(_mm512_unpacklo_epi16(x26, x62), k_even);
  const __m512i t32_hi = _mm512_madd_epi16(_mm512_unpackhi_epi16(x26, x62), k_even);
  // Lane 0: x0 + x4, lane 1: x0 - x4 (16-bit), then << 13 in 32 bits, plus the descale's rounding
  // (every output holds tmp0 or tmp1 exactly once; int32 sums wrap, so the order is free).
  const __m512i x40 = swap_lanes(x04);
  const __m512i s = _mm512_mask_sub_epi16(_mm512_add_epi16(x04, x40), kLane1Words, x40, x04);
  const __m512i t01_lo = _mm512_add_epi32(
      _mm512_srai_epi32(_mm512_unpacklo_epi16(_mm512_setzero_si512(), s), 16 - kConstBits), round);
  const __m512i t01_hi = _mm512_add_epi32(
      _mm512_srai_epi32(_mm512_unpackhi_epi16(_mm512_setzero_si512(), s), 16 - kConstBits), round);
  const __m512i t1011_lo = _mm512_add_epi32(t01_lo, t32_lo), t1011_hi = _mm512_add_epi32(t01_hi, t32_hi);
  const __m512i t1312_lo = _mm512_sub_epi32(t01_lo, t32_lo), t1312_hi = _mm512_sub_epi32(t01_hi, t32_hi);

  // Odd part. z3 = x7 + x3 (lane 0), z4 = x5 + x1 (lane 1), 16-bit; rotated: r3 (lane 0), r4 (lane 1).
  const __m512i z34 = _mm512_add_epi16(x75, x31);
  const __m512i z43 = swap_lanes(z34);
  const __m512i r34_lo = _mm512_madd_epi16(_mm512_unpacklo_epi16(z34, z43), k_rot);
  const __m512i r34_hi = _mm512_madd_epi16(_mm512_unpackhi_epi16(z34, z43), k_rot);
  // (x7, x1) in lane 0, (x5, x3) in lane 1: o0 | o1 with r3 | r4, o3 | o2 with r4 | r3.
  const __m512i x13 = swap_lanes(x31);
  const __m512i p_lo = _mm512_unpacklo_epi16(x75, x13), p_hi = _mm512_unpackhi_epi16(x75, x13);
  const __m512i o01_lo = _mm512_add_epi32(_mm512_madd_epi16(p_lo, k_o01), r34_lo);
  const __m512i o01_hi = _mm512_add_epi32(_mm512_madd_epi16(p_hi, k_o01), r34_hi);
  const __m512i o32_lo = _mm512_add_epi32(_mm512_madd_epi16(p_lo, k_o32), swap_lanes(r34_lo));
  const __m512i o32_hi = _mm512_add_epi32(_mm512_madd_epi16(p_hi, k_o32), swap_lanes(r34_hi));

  auto out = [](__m512i lo, __m512i hi) {
    return _mm512_packs_epi32(_mm512_srai_epi32(lo, Shift), _mm512_srai_epi32(hi, Shift));
  };
  Quad q;
  q.v01 = out(_mm512_add_epi32(t1011_lo, o32_lo), _mm512_add_epi32(t1011_hi, o32_hi));
  q.v76 = out(_mm512_sub_epi32(t1011_lo, o32_lo), _mm512_sub_epi32(t1011_hi, o32_hi));
  q.v32 = out(_mm512_add_epi32(t1312_lo, o01_lo), _mm512_add_epi32(t1312_hi, o01_hi));
  q.v45 = out(_mm512_sub_epi32(t1312_lo, o01_lo), _mm512_sub_epi32(t1312_hi, o01_hi));
  return q;
}

/// Qword indices for vpermt2q: per 256-bit half, qwords a and b of register 0's half, then
/// qwords a and b of register 1's half (a, b in 0..3).
inline __m512i qword_pick(int a, int b) {
  return _mm512_setr_epi64(a, b + 0, 8 + a, 8 + b, 4 + a, 4 + b, 12 + a, 12 + b);
}

/// Transposes the outputs of a pass (vectors k paired (0|1) (3|2) (4|5) (7|6), lanes j) into
/// vectors j paired (0|4) (3|1) (2|6) (7|5), whose lanes run over k in the order 0 3 4 7 1 2 5 6.
inline void transpose(const Quad& q, __m512i* x04, __m512i* x31, __m512i* x26, __m512i* x75) {
  // Words: lane 0 pairs (k0, k3), lane 1 (k1, k2); (k4, k7) and (k5, k6) from the other two.
  const __m512i a_lo = _mm512_unpacklo_epi16(q.v01, q.v32), a_hi = _mm512_unpackhi_epi16(q.v01, q.v32);
  const __m512i b_lo = _mm512_unpacklo_epi16(q.v45, q.v76), b_hi = _mm512_unpackhi_epi16(q.v45, q.v76);
  // Dwords: j0, j1 (c0); j2, j3 (c1); j4, j5 (c2); j6, j7 (c3): each qword holds one j's four k
  // of that lane (k0 k3 k4 k7 in lane 0, k1 k2 k5 k6 in lane 1).
  const __m512i c0 = _mm512_unpacklo_epi32(a_lo, b_lo), c1 = _mm512_unpackhi_epi32(a_lo, b_lo);
  const __m512i c2 = _mm512_unpacklo_epi32(a_hi, b_hi), c3 = _mm512_unpackhi_epi32(a_hi, b_hi);
  // A vector j: its lane-0 qword then its lane-1 qword.
  const __m512i even = qword_pick(0, 2), odd = qword_pick(1, 3);
  *x04 = _mm512_permutex2var_epi64(c0, even, c2);
  *x31 = _mm512_permutex2var_epi64(c1, odd, c0);
  *x26 = _mm512_permutex2var_epi64(c1, even, c3);
  *x75 = _mm512_permutex2var_epi64(c3, odd, c2);
}

inline __m512i load_pair(const std::int16_t* p0, const std::int16_t* p1, int offset) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p0 + offset));
  const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p1 + offset));
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

inline void store8(std::uint8_t* row, std::uint32_t col, __m128i v, bool high) {
  if (high) {
    _mm_storeh_pd(reinterpret_cast<double*>(row + col), _mm_castsi128_pd(v));
  } else {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(row + col), v);
  }
}

}  // namespace

void idct_islow_pair_avx512(const std::int16_t* coef0, const std::int16_t* mult0, std::uint8_t* const* rows0,
                            std::uint32_t col0, const std::int16_t* coef1, const std::int16_t* mult1,
                            std::uint8_t* const* rows1, std::uint32_t col1) {
  const __m512i c01 = load_pair(coef0, coef1, 0), c23 = load_pair(coef0, coef1, 16);
  const __m512i c45 = load_pair(coef0, coef1, 32), c67 = load_pair(coef0, coef1, 48);
  // A block whose coefficient rows 1-7 are zero takes libjpeg-turbo's shortcut, a wrapping
  // x0 << 2 as the first pass; the pass below saturates instead. They differ only when a
  // dequantised x0 is outside [-8192, 8191], which no encoder writes: such pairs go to the ref.
  const __m512i x01 = _mm512_mullo_epi16(c01, load_pair(mult0, mult1, 0));
  const __m512i rows_2_7 = _mm512_ternarylogic_epi64(c23, c45, c67, 0xFE);  // c23 | c45 | c67
  const __mmask32 nonzero =
      _mm512_test_epi16_mask(rows_2_7, rows_2_7) | (_mm512_test_epi16_mask(c01, c01) & kLane1Words);
  const __mmask32 wide = (_mm512_cmpgt_epi16_mask(x01, _mm512_set1_epi16(8191)) |
                          _mm512_cmplt_epi16_mask(x01, _mm512_set1_epi16(-8192))) &
                         ~kLane1Words;
  if (wide != 0 &&
      (((wide & 0xFFFFu) != 0 && (nonzero & 0xFFFFu) == 0) || ((wide >> 16) != 0 && (nonzero >> 16) == 0))) {
    idct_islow_ref(coef0, mult0, rows0, col0);
    idct_islow_ref(coef1, mult1, rows1, col1);
    return;
  }
  const __m512i x23 = _mm512_mullo_epi16(c23, load_pair(mult0, mult1, 16));
  const __m512i x45 = _mm512_mullo_epi16(c45, load_pair(mult0, mult1, 32));
  const __m512i x67 = _mm512_mullo_epi16(c67, load_pair(mult0, mult1, 48));
  // Coefficient rows paired (0|4) (3|1) (2|6) (7|5).
  const __m512i even = qword_pick(0, 1), odd = qword_pick(2, 3);
  const Quad p1 =
      pass<kShiftPass1>(_mm512_permutex2var_epi64(x01, even, x45), _mm512_permutex2var_epi64(x23, odd, x01),
                        _mm512_permutex2var_epi64(x23, even, x67), _mm512_permutex2var_epi64(x67, odd, x45));
  __m512i y04, y31, y26, y75;
  transpose(p1, &y04, &y31, &y26, &y75);
  const Quad p2 = pass<kShiftPass2>(y04, y31, y26, y75);
  // Vectors now run over output rows (in the lane order j = 0 3 4 7 1 2 5 6 of the first
  // transpose), their lanes over columns in the order 0 3 4 7 1 2 5 6.
  __m512i r04, r31, r26, r75;
  transpose(p2, &r04, &r31, &r26, &r75);
  // Bytes: signed saturation, + 128 (mod 256), columns back in order.
  const __m512i centre = _mm512_set1_epi8(static_cast<char>(-128));
  const __m512i order =
      _mm512_broadcast_i32x4(_mm_setr_epi8(0, 4, 5, 1, 2, 6, 7, 3, 8, 12, 13, 9, 10, 14, 15, 11));
  // Lanes per half: (j0 | j4) and (j3 | j1) -> bytes j0 j3 | j4 j1; (j2 | j6), (j7 | j5) -> j2 j7 | j6 j5.
  const __m512i b_a = _mm512_shuffle_epi8(_mm512_add_epi8(_mm512_packs_epi16(r04, r31), centre), order);
  const __m512i b_b = _mm512_shuffle_epi8(_mm512_add_epi8(_mm512_packs_epi16(r26, r75), centre), order);
  // Row y of lane j: j0 = 0, j1 = 3, j2 = 4, j3 = 7, j4 = 1, j5 = 2, j6 = 5, j7 = 6.
  const __m128i a0 = _mm512_castsi512_si128(b_a), a1 = _mm512_extracti32x4_epi32(b_a, 1);
  const __m128i a2 = _mm512_extracti32x4_epi32(b_a, 2), a3 = _mm512_extracti32x4_epi32(b_a, 3);
  const __m128i b0 = _mm512_castsi512_si128(b_b), b1 = _mm512_extracti32x4_epi32(b_b, 1);
  const __m128i b2 = _mm512_extracti32x4_epi32(b_b, 2), b3 = _mm512_extracti32x4_epi32(b_b, 3);
  store8(rows0[0], col0, a0, false);
  store8(rows0[7], col0, a0, true);
  store8(rows0[1], col0, a1, false);
  store8(rows0[3], col0, a1, true);
  store8(rows0[4], col0, b0, false);
  store8(rows0[6], col0, b0, true);
  store8(rows0[5], col0, b1, false);
  store8(rows0[2], col0, b1, true);
  store8(rows1[0], col1, a2, false);
  store8(rows1[7], col1, a2, true);
  store8(rows1[1], col1, a3, false);
  store8(rows1[3], col1, a3, true);
  store8(rows1[4], col1, b2, false);
  store8(rows1[6], col1, b2, true);
  store8(rows1[5], col1, b3, false);
  store8(rows1[2], col1, b3, true);
}

}  // namespace mmcore::detail
