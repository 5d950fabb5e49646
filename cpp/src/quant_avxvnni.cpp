// AVX-VNNI quant kernels for the avx2 variant (contract: quant_internal.h): int8 and int4 scored with
// the VEX-encoded vpdpbusd on 256-bit vectors, which CPUs without AVX-512 have where they have
// AVX-VNNI (Intel cores since Alder Lake and the Sierra Forest E-core Xeons). vpdpbusd
// multiplies unsigned code bytes by signed query bytes and adds groups of four into int32 lanes
// without saturation: 32 exact products and their accumulation per instruction, where the plain
// AVX2 kernels need vpmovzxbw + vpmaddwd + vpaddd per 16 (int8) or vpmaddubsw + vpaddw and a
// periodic widening per 32 (int4). Binary codes and the rerank are the avx2 variant's.
//
// A tile scores R code rows against S <= 4 queries (kTileRows), the query bytes taken straight from
// memory by vpdpbusd. Rows are read exactly: a row's last bytes past a multiple of 32 are summed in
// scalar code. Zen 5 also has AVX-512 VNNI and runs the avx512 variant instead.
#include <immintrin.h>

#include "quant_avx2_internal.h"
#include "quant_internal.h"

namespace mmcore::detail {
namespace {

inline __m256i load(const std::uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// acc += the four-byte dot products of u8 (unsigned) and the 32 signed bytes at s8 (32-byte
// aligned), in one vpdpbusd with s8 as its memory operand. Inline assembly because GCC 12
// allocates the intrinsic's accumulator (its destination and first source) to a register other
// than the loop-carried one, and copies every accumulator twice per step around it: 16 moves per
// 8 vpdpbusd in a 2 x 4 tile, whichever way the accumulators are declared.
inline void dpbusd(__m256i& acc, __m256i u8, const std::uint8_t* s8) {
  __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(u8), "m"(*reinterpret_cast<const __m256i*>(s8)));
}

// Rows per tile for S queries: 4 for one query (4 rows' sums reduced together; streaming from
// memory, 4 in-order rows read faster than 2), else 2, so that the 2 S accumulators, the rows'
// codes (int4: their nibbles) fit the 16 registers. 200k x 768 int8, 64 queries, one thread, on a
// Sapphire Rapids core: 2 x 4 tiles 95 G products/s, 3 x 4 88-92, 4 x 2 73-87, 4 x 4 (spilled) 73-75;
// int4 86-90 G/s (plain AVX2: int8 38-43, int4 69-71).
template <int S>
constexpr int kTileRows = S == 1 ? 4 : 2;

// ---- int8 ----

// Query g as int8, zero-padded to a multiple of 32 dimensions.
void prepare_int8(const void* queries, int nq, std::int32_t d, std::uint8_t* prepared) {
  quant_prepare_int8_bytes(queries, nq, d, prepared, 32);
}

// The accumulators of row r, query s are named variables a<r><s>: as operands of the asm in an
// array (acc[R][S]), GCC 12 kept them on the stack. Those a tile does not use are never touched and
// cost nothing. The query bytes are vpdpbusd's memory operand, so the queries
// need no registers.
#define MMCORE_VNNI_ACCUMULATORS                                                  \
  const __m256i z = _mm256_setzero_si256();                                       \
  __m256i a00 = z, a01 = z, a02 = z, a03 = z, a10 = z, a11 = z, a12 = z, a13 = z; \
  __m256i a20 = z, a21 = z, a22 = z, a23 = z, a30 = z, a31 = z, a32 = z, a33 = z; \
  const std::uint8_t* q0 = q[0];                                                  \
  const std::uint8_t* q1 = q[S > 1 ? 1 : 0];                                      \
  const std::uint8_t* q2 = q[S > 2 ? 2 : 0];                                      \
  const std::uint8_t* q3 = q[S > 3 ? 3 : 0];

// a<r><s> += x . (query s's 32 bytes at off), for each query s < S.
#define MMCORE_VNNI_DP1(r, s, x, off) \
  if constexpr (S > s) dpbusd(a##r##s, x, q##s + (off));
#define MMCORE_VNNI_DP(r, x, off)                                                             \
  if constexpr (R > r) {                                                                      \
    MMCORE_VNNI_DP1(r, 0, x, off)                                                             \
    MMCORE_VNNI_DP1(r, 1, x, off) MMCORE_VNNI_DP1(r, 2, x, off) MMCORE_VNNI_DP1(r, 3, x, off) \
  }

// The sums of query s's R rows to out[s * ldo + r], each finished by `tail(r, s)` (the row's bytes
// past the last whole 32). Only the accumulators the tile uses are read (an array of all 16
// cost 16 stores per tile).
#define MMCORE_VNNI_STORE1(s, tail)                                            \
  if constexpr (S > s) {                                                       \
    const __m256i rows_of_s[4] = {a0##s, a1##s, a2##s, a3##s};                 \
    alignas(16) std::int32_t v[4];                                             \
    _mm_store_si128(reinterpret_cast<__m128i*>(v), quant_hsum4<R>(rows_of_s)); \
    for (int r = 0; r < R; ++r) out[s * ldo + r] = v[r] + tail(r, s);          \
  }
#define MMCORE_VNNI_STORE(tail) \
  MMCORE_VNNI_STORE1(0, tail)   \
  MMCORE_VNNI_STORE1(1, tail) MMCORE_VNNI_STORE1(2, tail) MMCORE_VNNI_STORE1(3, tail)

// R <= 4 rows of d bytes at codes against S <= 4 queries: out[s * ldo + r].
template <int R, int S>
inline void dot8_tile(const std::uint8_t* codes, std::int32_t d, const std::uint8_t* const* q,
                      std::int32_t* out, std::int64_t ldo) {
  const std::int32_t d32 = d / 32 * 32;
  MMCORE_VNNI_ACCUMULATORS
  const char* next = reinterpret_cast<const char*>(codes + R * d);
  for (std::int32_t i = 0; i < d32; i += 32) {
    // The next tile's rows, 32 R bytes per step, as in the avx2 kernel (a prefetch never faults).
    _mm_prefetch(next + R * i, _MM_HINT_T0);
    if (R > 2) _mm_prefetch(next + R * i + 64, _MM_HINT_T0);
    MMCORE_VNNI_DP(0, load(codes + i), i)
    MMCORE_VNNI_DP(1, load(codes + d + i), i)
    MMCORE_VNNI_DP(2, load(codes + 2 * d + i), i)
    MMCORE_VNNI_DP(3, load(codes + 3 * d + i), i)
  }
  const auto tail = [&](int r, int s) {
    const std::uint8_t* row = codes + std::int64_t{r} * d;
    const auto* t = reinterpret_cast<const std::int8_t*>(q[s]);
    std::int32_t v = 0;
    for (std::int32_t i = d32; i < d; ++i) v += std::int32_t{row[i]} * t[i];
    return v;
  };
  MMCORE_VNNI_STORE(tail)
}

// ---- int4 ----

// Queries split by parity (quant_prepare_int4_split), each half padded to 32 bytes.
void prepare_int4(const void* queries, int nq, std::int32_t d, std::uint8_t* prepared) {
  quant_prepare_int4_split(queries, nq, d, prepared, 32);
}

// R <= 4 rows of `row` bytes against S <= 4 queries: a row's two nibble vectors are made once per
// 32 bytes and used by every query.
template <int R, int S>
inline void dot4_tile(const std::uint8_t* codes, std::int64_t row, std::int64_t half,
                      const std::uint8_t* const* q, std::int32_t* out, std::int64_t ldo) {
  const std::int64_t r32 = row / 32 * 32;
  const __m256i low = _mm256_set1_epi8(0x0f);
  MMCORE_VNNI_ACCUMULATORS
  const char* next = reinterpret_cast<const char*>(codes + R * row);
  const auto lo = [low](__m256i x) { return _mm256_and_si256(x, low); };
  const auto hi = [low](__m256i x) { return _mm256_and_si256(_mm256_srli_epi16(x, 4), low); };
  for (std::int64_t i = 0; i < r32; i += 32) {
    _mm_prefetch(next + R * i, _MM_HINT_T0);
    if (R > 2) _mm_prefetch(next + R * i + 64, _MM_HINT_T0);
    // Row r's low nibbles against the queries' even dimensions, its high ones against the odd.
#define MMCORE_VNNI_NIBBLES(r)                   \
  if constexpr (R > r) {                         \
    const __m256i x = load(codes + r * row + i); \
    MMCORE_VNNI_DP(r, lo(x), i)                  \
    MMCORE_VNNI_DP(r, hi(x), half + i)           \
  }
    MMCORE_VNNI_NIBBLES(0) MMCORE_VNNI_NIBBLES(1) MMCORE_VNNI_NIBBLES(2) MMCORE_VNNI_NIBBLES(3)
#undef MMCORE_VNNI_NIBBLES
  }
  const auto tail = [&](int r, int s) {
    const std::uint8_t* c = codes + r * row;
    const auto* t = reinterpret_cast<const std::int8_t*>(q[s]);
    std::int32_t v = 0;
    for (std::int64_t i = r32; i < row; ++i)
      v += std::int32_t{c[i] & 15} * t[i] + std::int32_t{c[i] >> 4} * t[half + i];
    return v;
  };
  MMCORE_VNNI_STORE(tail)
}
#undef MMCORE_VNNI_STORE
#undef MMCORE_VNNI_STORE1
#undef MMCORE_VNNI_DP
#undef MMCORE_VNNI_DP1
#undef MMCORE_VNNI_ACCUMULATORS

// Tiles of R rows x S queries over a block of nb rows (the last nb % R rows one at a time). Not
// inlined, so that each (R, S) loop nest is register-allocated on its own.
template <bool kInt4, int R, int S>
[[gnu::noinline]] void rows(const std::uint8_t* codes, std::int64_t nb, std::int32_t d,
                            const std::uint8_t* prepared, std::int32_t* out, std::int64_t ldo) {
  const std::int64_t stride = quant_prepared_stride(d, kQuantUnitInt);
  const std::int64_t row = kInt4 ? (d + 1) / 2 : d, half = kInt4 ? quant_int4_half(d, 32) : 0;
  const std::uint8_t* q[S];
  for (int s = 0; s < S; ++s) q[s] = prepared + s * stride;
  const auto tile = [&](auto rows_here, std::int64_t j) {
    constexpr int kRows = decltype(rows_here)::value;
    if constexpr (kInt4) {
      dot4_tile<kRows, S>(codes + j * row, row, half, q, out + j, ldo);
    } else {
      dot8_tile<kRows, S>(codes + j * row, d, q, out + j, ldo);
    }
  };
  std::int64_t j = 0;
  for (; j + R <= nb; j += R) tile(std::integral_constant<int, R>{}, j);
  for (; j < nb; ++j) tile(std::integral_constant<int, 1>{}, j);
}

template <bool kInt4>
void block(const std::uint8_t* codes, std::int64_t nb, std::int32_t d, const std::uint8_t* prepared, int nq,
           std::int32_t* out, std::int64_t ldo) {
  const std::int64_t stride = quant_prepared_stride(d, kQuantUnitInt);
  quant_for_query_groups(nq, [&](auto s, int g) {
    constexpr int S = decltype(s)::value;
    rows<kInt4, kTileRows<S>, S>(codes, nb, d, prepared + g * stride, out + g * ldo, ldo);
  });
}

}  // namespace

QuantKernels quant_kernels_avx_vnni() {
  QuantKernels k = quant_kernels_avx2();
  k.int8 = {prepare_int8, block<false>};
  k.int4 = {prepare_int4, block<true>};
  return k;
}

}  // namespace mmcore::detail
