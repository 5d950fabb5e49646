// C++ test of the islow IDCT (idct_internal.h).
//
// 1. The scalar ref against the IDCT libjpeg-turbo itself installs for an 8x8 islow decode (its
//    SIMD variant on x86-64), on realistic blocks, on full-range random coefficients and
//    multipliers (16-bit wraps and saturations), on blocks with only coefficient row 0 (the
//    shortcut), and on single coefficients at every position at extreme values.
// 2. Every pair variant this CPU runs against the ref on the same blocks, each block in both
//    positions of the pair, writing into shared rows at different columns with guard bytes around
//    each 8x8 (nothing outside it may change).
//
// Build and run (tests/test_decode_jpeg.py does this when a build tree exists):
//   g++ -O2 -std=c++17 -Icpp/include -Icpp/src tests/cpp/test_idct.cpp build/<tag>/cpp/libmmcore_cpu.a \
//       $(pkg-config --libs libjpeg libpng libwebp libwebpdemux zlib) -lpthread -o /tmp/test_idct &&
//       /tmp/test_idct
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "idct_internal.h"
#include "libjpeg_fixture.h"

namespace {

int failures = 0;

struct alignas(64) Block {
  std::int16_t coef[64];
  std::int16_t mult[64];
};

enum Kind { kRealistic, kFullRange, kRow0Only, kSingle, kKinds };
const char* const kKindNames[] = {"realistic", "full-range", "row-0-only", "single-coefficient"};

Block make_block(Kind kind, std::mt19937& rng, int index) {
  Block b{};
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  switch (kind) {
    case kRealistic: {  // typical quantisers, DC within the 8-bit range, sparse small ACs
      const int q = uni(1, 64);
      for (int i = 0; i < 64; ++i) b.mult[i] = static_cast<std::int16_t>(std::min(255, q + (i * q) / 16));
      b.coef[0] = static_cast<std::int16_t>(uni(-1024, 1023) / b.mult[0]);
      const int n = uni(0, 20);
      for (int k = 0; k < n; ++k) b.coef[uni(1, 63)] = static_cast<std::int16_t>(uni(-60, 60));
      break;
    }
    case kFullRange:
      for (int i = 0; i < 64; ++i) {
        b.coef[i] = static_cast<std::int16_t>(uni(-32768, 32767));
        b.mult[i] = static_cast<std::int16_t>(uni(-32768, 32767));
      }
      break;
    case kRow0Only: {  // rows 1-7 zero: libjpeg-turbo's shortcut, with small and wrapping DCs
      const int range = (index & 1) ? 32767 : 2000;
      for (int i = 0; i < 64; ++i) b.mult[i] = static_cast<std::int16_t>(uni(1, (index & 2) ? 32767 : 16));
      for (int i = 0; i < 8; ++i) b.coef[i] = static_cast<std::int16_t>(uni(-range, range));
      break;
    }
    default: {  // one coefficient at each position, at extreme and ordinary values
      static const int values[] = {-32768, -16384, -1024, -1, 1, 255, 1023, 16383, 32767};
      const int pos = index % 64;
      const int v = values[(index / 64) % 9];
      for (int i = 0; i < 64; ++i) b.mult[i] = static_cast<std::int16_t>((index / 576) % 2 ? 1 : uni(1, 255));
      b.coef[pos] = static_cast<std::int16_t>(v);
      break;
    }
  }
  return b;
}

/// Output rows: 8 rows of `width` bytes, filled with a guard value.
struct Rows {
  explicit Rows(int width) : bytes(8 * static_cast<std::size_t>(width), 0x5A), w(width) {
    for (int r = 0; r < 8; ++r) ptr[r] = bytes.data() + static_cast<std::size_t>(r) * width;
  }
  std::vector<std::uint8_t> bytes;
  int w;
  std::uint8_t* ptr[8];
};

/// An 8x8 block written at `col` of `rows`, and whether the rest still holds the guard.
bool block_at(const Rows& rows, std::uint32_t col, std::uint8_t out[64]) {
  bool guard_ok = true;
  for (int r = 0; r < 8; ++r) {
    for (int x = 0; x < rows.w; ++x) {
      const std::uint8_t v = rows.ptr[r][x];
      if (x >= static_cast<int>(col) && x < static_cast<int>(col) + 8) {
        out[r * 8 + x - col] = v;
      } else if (v != 0x5A) {
        guard_ok = false;
      }
    }
  }
  return guard_ok;
}

}  // namespace

int main() {
  using namespace mmcore::detail;
  std::mt19937 rng(11);
  constexpr int kPerKind = 60000;
  std::vector<Block> blocks;
  std::vector<Kind> kinds;
  for (int k = 0; k < kKinds; ++k) {
    for (int i = 0; i < kPerKind; ++i) {
      blocks.push_back(make_block(static_cast<Kind>(k), rng, i));
      kinds.push_back(static_cast<Kind>(k));
    }
  }
  std::vector<std::uint8_t> want(blocks.size() * 64);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    Rows rows(8);
    idct_islow_ref(blocks[i].coef, blocks[i].mult, rows.ptr, 0);
    block_at(rows, 0, &want[i * 64]);
  }

  // 1. The ref against libjpeg-turbo's own IDCT.
  const std::vector<unsigned char> jpg = mmcore_test::make_jpeg(
      16, 16, 1, [](int x, int y, int) { return static_cast<std::uint8_t>(x * 16 + y); });
  mmcore_test::StartedDecompress started(jpg, [](j_decompress_ptr c) { c->dct_method = JDCT_ISLOW; });
  jpeg_decompress_struct& d = started.d;
  jpeg_component_info* comp = &d.comp_info[0];
  const inverse_DCT_method_ptr idct = d.idct->inverse_DCT[0];
  // libjpeg-turbo built with SIMD keeps the islow multipliers as int16 (ISLOW_MULT_TYPE = short).
  auto* table = static_cast<std::int16_t*>(comp->dct_table);
  bool int16_table = comp->DCT_scaled_size == 8;
  for (int i = 0; i < 64 && int16_table; ++i)
    int16_table = table[i] == static_cast<std::int16_t>(comp->quant_table->quantval[i]);
  long compared = 0;
  if (!int16_table) {
    std::printf("SKIP libjpeg comparison: this libjpeg keeps an int32 multiplier table (no SIMD)\n");
  } else {
    int bad[kKinds] = {};
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      std::memcpy(table, blocks[i].mult, sizeof blocks[i].mult);
      alignas(64) JCOEF coef[64];
      std::memcpy(coef, blocks[i].coef, sizeof coef);
      Rows rows(8);
      idct(&d, comp, coef, rows.ptr, 0);
      std::uint8_t got[64];
      block_at(rows, 0, got);
      if (std::memcmp(got, &want[i * 64], 64) != 0 && bad[kinds[i]]++ < 3) {
        std::printf("FAIL ref differs from libjpeg-turbo's IDCT on a %s block (#%zu)\n", kKindNames[kinds[i]],
                    i);
        ++failures;
      }
      ++compared;
    }
    for (int k = 0; k < kKinds; ++k) failures += bad[k] > 3 ? bad[k] - 3 : 0;
  }

  // 2. Pair variants against the ref.
  long pair_checks = 0;
  for (mmcore::Backend b : {mmcore::Backend::kAvx2, mmcore::Backend::kAvx512}) {
    const IdctPairFn fn = idct_islow_pair_fn(b);
    if (fn == nullptr) continue;
    int bad = 0;
    std::uniform_int_distribution<std::size_t> pick(0, blocks.size() - 1);
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      const std::size_t j = (i % 3 == 0) ? i : pick(rng);  // also a block paired with itself
      // Shared rows: block i at column 8, block j at column 24 (or in rows of its own).
      Rows shared(40), other(16);
      const bool same_rows = (i % 2) == 0;
      Rows& rj = same_rows ? shared : other;
      const std::uint32_t col_j = same_rows ? 24 : 4;
      const bool swap = (i % 4) >= 2;
      if (swap) {
        fn(blocks[j].coef, blocks[j].mult, rj.ptr, col_j, blocks[i].coef, blocks[i].mult, shared.ptr, 8);
      } else {
        fn(blocks[i].coef, blocks[i].mult, shared.ptr, 8, blocks[j].coef, blocks[j].mult, rj.ptr, col_j);
      }
      std::uint8_t gi[64], gj[64];
      bool guards = true;
      if (same_rows) {
        Rows copy(40);
        copy.bytes = shared.bytes;
        for (int r = 0; r < 8; ++r) std::memset(copy.ptr[r] + 24, 0x5A, 8);
        guards = block_at(copy, 8, gi);
        for (int r = 0; r < 8; ++r) std::memset(shared.ptr[r] + 8, 0x5A, 8);
        guards = block_at(shared, 24, gj) && guards;
      } else {
        guards = block_at(shared, 8, gi) && block_at(other, col_j, gj);
      }
      const bool ok =
          guards && std::memcmp(gi, &want[i * 64], 64) == 0 && std::memcmp(gj, &want[j * 64], 64) == 0;
      if (!ok && bad++ < 5) {
        std::printf("FAIL %s pair (%s #%zu, %s #%zu)%s differs from ref%s\n", mmcore::backend_name(b),
                    kKindNames[kinds[i]], i, kKindNames[kinds[j]], j, swap ? " swapped" : "",
                    guards ? "" : " or wrote outside its block");
      }
      ++pair_checks;
    }
    failures += bad;
    std::printf("%s: %ld pairs checked\n", mmcore::backend_name(b), pair_checks);
  }
  if (failures == 0) {
    std::printf("PASS idct: %zu blocks, %ld against libjpeg-turbo, %ld pairs\n", blocks.size(), compared,
                pair_checks);
    return 0;
  }
  std::printf("FAILED %d\n", failures);
  return 1;
}
