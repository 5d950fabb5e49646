// AMX-INT8 quant kernels for batches of queries (contract: quant_internal.h, quant_amx_*). The
// AVX-512 variant calls them for int8 and int4 codes when more than 8 queries share a block and the
// rows are whole 64-byte chunks (int8: d % 64 == 0; int4: (d + 1) / 2 % 64 == 0).
//
// TDPBUSD multiplies a tile of 16 code rows x 64 unsigned bytes by a tile of 64 signed query bytes
// x 16 queries (in the "VNNI" layout: row k / 4 holds bytes k..k+3 of each query, 4 bytes per query)
// and adds the 16 x 16 int32 sums: exact, like vpdpbusd, 16 x 16 x 64 products per instruction. A
// pass scores 32 rows against 32 queries in four accumulator tiles (two row tiles, two query tiles,
// each loaded once per 64 dimensions and used twice), or against 16 in two. int4 rows are first unpacked to
// bytes: the low nibbles of a 64-byte chunk, then its high nibbles; the query is permuted the same way (even
// dimensions of the chunk, then odd ones), so the sums are those of the original order.
//
// Tiles need the kernel's permission (arch_prctl ARCH_REQ_XCOMP_PERM for XTILEDATA, asked once per
// process). Each block call loads the tile configuration on its thread and releases the tiles at
// the end, so no thread keeps tile state between calls.
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "quant_internal.h"

namespace mmcore::detail {
namespace {

constexpr long kArchReqXcompPerm = 0x1023;
constexpr long kXfeatureXtiledata = 18;
constexpr int kRowsPerPass = 32;
constexpr int kTileQueries = 16;

struct alignas(64) TileConfig {
  std::uint8_t palette = 1;
  std::uint8_t start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t colsb[16] = {};
  std::uint8_t rows[16] = {};
};

bool probe_amx() {
  if (quant_switched_off("MMCORE_NO_AMX")) return false;
  // The CPU and the OS (the backend's cpuid table), then this process's permission.
  if (!cpu_has_amx_int8()) return false;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

// Tiles 0-3: the accumulators (rows 0-15 x queries 0-15, rows 0-15 x 16-31, rows 16-31 x 0-15, rows
// 16-31 x 16-31); 4, 5: the two row tiles; 6, 7: the two query tiles.
TileConfig tile_config() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  return cfg;
}

// The query bytes of kernel dimension k: the permutation int4 needs (see the top), else k itself.
inline std::int32_t source_dim(std::int64_t k, bool four_bit) {
  if (!four_bit) return static_cast<std::int32_t>(k);
  const std::int64_t chunk = k / 128, i = k % 128;
  return static_cast<std::int32_t>(2 * (chunk * 64 + i % 64) + i / 64);
}

// The bytes a pass reads per row: d (int8) or the unpacked int4 row.
inline std::int64_t kernel_dims(std::int32_t d, bool four_bit) {
  return four_bit ? 2 * ((std::int64_t{d} + 1) / 2) : d;
}

// Unpacks rows of `row` int4 code bytes (row % 64 == 0) to 2 * row bytes each, per 64-byte chunk
// its low nibbles then its high nibbles.
void unpack_int4(const std::uint8_t* codes, std::int64_t nr, std::int64_t row, std::uint8_t* out) {
  const __m512i low = _mm512_set1_epi8(0x0f);
  for (std::int64_t r = 0; r < nr; ++r) {
    const std::uint8_t* c = codes + r * row;
    std::uint8_t* o = out + r * 2 * row;
    for (std::int64_t i = 0; i < row; i += 64) {
      const __m512i x = _mm512_loadu_si512(c + i);
      _mm512_storeu_si512(o + 2 * i, _mm512_and_si512(x, low));
      _mm512_storeu_si512(o + 2 * i + 64, _mm512_and_si512(_mm512_srli_epi16(x, 4), low));
    }
  }
}

// o[k] = column k of the 16 x 16 int32 block at in (rows `stride` ints apart, 64-byte aligned).
inline void transpose16(const std::int32_t* in, std::int64_t stride, __m512i* o) {
  __m512i r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_load_si512(in + i * stride);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 4; ++i) {
    o[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    o[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
    o[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
    o[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xdd);
  }
}

// 32 rows of kd bytes (stride `stride`) against the 32-query prepared tiles; sums to c[32][32]
// (row, query).
template <bool kTwo>
void pass(const std::uint8_t* rows, std::int64_t stride, std::int64_t kd, const std::uint8_t* prepared,
          std::int32_t (*c)[2 * kTileQueries], const std::uint8_t* next) {
  const std::int64_t chunks = kd / 64, bq = chunks * 1024;  // bytes of one query tile's whole B
  _tile_zero(0);
  if constexpr (kTwo) _tile_zero(1);
  _tile_zero(2);
  if constexpr (kTwo) _tile_zero(3);
  for (std::int64_t kc = 0; kc < chunks; ++kc) {
    // The next pass's rows, a 64-byte column of them per chunk: tile loads are strided and the
    // hardware does not run ahead of them (200k x 768 codes, 64 queries, one thread: 45 -> 32 ms).
    if (next != nullptr) {
      for (int r = 0; r < kRowsPerPass; ++r)
        _mm_prefetch(reinterpret_cast<const char*>(next + r * stride + kc * 64), _MM_HINT_T0);
    }
    _tile_loadd(4, rows + kc * 64, stride);
    _tile_loadd(5, rows + 16 * stride + kc * 64, stride);
    _tile_loadd(6, prepared + kc * 1024, 64);
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(2, 5, 6);
    if constexpr (kTwo) {
      _tile_loadd(7, prepared + bq + kc * 1024, 64);
      _tile_dpbusd(1, 4, 7);
      _tile_dpbusd(3, 5, 7);
    }
  }
  _tile_stored(0, &c[0][0], 2 * kTileQueries * 4);
  _tile_stored(2, &c[16][0], 2 * kTileQueries * 4);
  if constexpr (kTwo) {
    _tile_stored(1, &c[0][kTileQueries], 2 * kTileQueries * 4);
    _tile_stored(3, &c[16][kTileQueries], 2 * kTileQueries * 4);
  }
}

}  // namespace

bool quant_amx_usable() {
  static const bool usable = probe_amx();  // a property of the CPU, the OS and the process
  return usable;
}

bool quant_amx_fits(std::int32_t d, bool four_bit) {
  const std::int64_t row = four_bit ? (std::int64_t{d} + 1) / 2 : d;
  return d > 0 && row % 64 == 0;
}

void quant_amx_prepare(const void* queries, int nq, std::int32_t d, bool four_bit, std::uint8_t* prepared) {
  // Two query tiles' B, each chunks x 16 rows x 64 bytes: byte (kc, k4, n, kk) is dimension
  // kc * 64 + 4 * k4 + kk of query n (16 * tile + n), zero past nq.
  const std::int64_t kd = kernel_dims(d, four_bit), chunks = kd / 64;
  const auto* t = static_cast<const std::int8_t*>(queries);
  std::memset(prepared, 0, static_cast<std::size_t>(2 * chunks * 1024));
  for (int g = 0; g < nq; ++g) {
    std::uint8_t* b = prepared + (g / kTileQueries) * chunks * 1024;
    const int n = g % kTileQueries;
    for (std::int64_t k = 0; k < kd; ++k) {
      const std::int32_t src = source_dim(k, four_bit);
      const std::int64_t kc = k / 64, k4 = (k % 64) / 4, kk = k % 4;
      b[kc * 1024 + k4 * 64 + n * 4 + kk] =
          static_cast<std::uint8_t>(src < d ? t[std::int64_t{g} * d + src] : std::int8_t{0});
    }
  }
}

void quant_amx_block(const std::uint8_t* codes, std::int64_t nb, std::int32_t d, bool four_bit,
                     const std::uint8_t* prepared, int nq, std::int32_t* out, std::int64_t ldo) {
  const std::int64_t row = four_bit ? (std::int64_t{d} + 1) / 2 : d, kd = kernel_dims(d, four_bit);
  // Rows a pass reads from: the codes themselves (int8, whole passes) or a zero-padded copy (int4
  // rows unpacked; the last pass's rows when fewer than 32 remain).
  // Allocated before the tiles are configured: nothing between _tile_loadconfig and _tile_release
  // may throw (the tile state would stay on this thread).
  std::vector<std::uint8_t> scratch;
  if (four_bit || nb % kRowsPerPass != 0) scratch.resize(static_cast<std::size_t>(kRowsPerPass * kd));
  alignas(64) std::int32_t c[kRowsPerPass][2 * kTileQueries];
  const TileConfig cfg = tile_config();
  _tile_loadconfig(&cfg);
  for (std::int64_t j = 0; j < nb; j += kRowsPerPass) {
    const std::int64_t nr = std::min<std::int64_t>(kRowsPerPass, nb - j);
    const std::uint8_t* rows = codes + j * row;
    std::int64_t stride = row;
    if (four_bit || nr < kRowsPerPass) {
      if (nr < kRowsPerPass) std::memset(scratch.data(), 0, scratch.size());
      if (four_bit) {
        unpack_int4(rows, nr, row, scratch.data());
      } else {
        std::memcpy(scratch.data(), rows, static_cast<std::size_t>(nr * row));
      }
      rows = scratch.data();
      stride = kd;
    }
    // Prefetch the next whole pass read in place (int8); int4 rows are unpacked from the codes.
    const std::uint8_t* next =
        !four_bit && j + 2 * kRowsPerPass <= nb ? codes + (j + kRowsPerPass) * row : nullptr;
    if (nq > kTileQueries) {
      pass<true>(rows, stride, kd, prepared, c, next);
    } else {
      pass<false>(rows, stride, kd, prepared, c, next);
    }
    // c is (row, query); out is (query, row): 16 x 16 blocks transposed in registers, each query's
    // 16 rows one (masked) store (a scalar copy of the 512 sums was a quarter of the block's time).
    for (int h = 0; 16 * h < nr; ++h) {
      const std::int64_t left = nr - 16 * h;
      const __mmask16 rows_kept = left >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << left) - 1);
      for (int qt = 0; qt * kTileQueries < nq; ++qt) {
        __m512i col[16];
        transpose16(&c[16 * h][kTileQueries * qt], 2 * kTileQueries, col);
        const int queries = std::min(kTileQueries, nq - kTileQueries * qt);
        for (int k = 0; k < queries; ++k)
          _mm512_mask_storeu_epi32(out + (kTileQueries * qt + k) * ldo + j + 16 * h, rows_kept, col[k]);
      }
    }
  }
  _tile_release();
}

}  // namespace mmcore::detail
