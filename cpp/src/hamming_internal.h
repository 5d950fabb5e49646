// The Hamming scan kernel shared by kNN, radius search and join (hamming.cpp drives it).
//
// Contract: scan(queries, nq, base, nb, bound, hits) compares nq (1..kScanQueries) query codes
// with nb contiguous base codes and writes a hit (qi, j, d) for every pair with distance
// d < bound[qi], ordered by j then qi; it returns the number of hits (at most nq * nb, the
// capacity of `hits`). Every variant writes exactly the hits of the scalar ref (the oracle).
// Reads exactly nq and nb codes, never past them. Reentrant. Codes of 1 and 4 words (64-bit
// hashes, PDQ) have kernels of their own; every other width (1..kHammingMaxWords, mmcore/hamming.h) one
// kernel that takes the width at run time.
#pragma once
#include <cstdint>

#include "mmcore/backend.h"
#include "mmcore/hamming.h"

namespace mmcore::detail {

constexpr int kScanQueries = 4;

struct HammingHit {
  std::uint32_t q;  ///< query index in the call (0..nq-1)
  std::uint32_t j;  ///< base index in the call (0..nb-1)
  std::int32_t d;   ///< distance
};

using HammingScanFn = std::int64_t (*)(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                       std::int64_t nb, const std::int32_t* bound, HammingHit* hits);
/// The scan for codes of any width: as HammingScanFn, `words` words per code.
using HammingScanWideFn = std::int64_t (*)(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                           std::int64_t nb, std::int32_t words, const std::int32_t* bound,
                                           HammingHit* hits);

/// A scan bound to one code width: what the drivers call.
struct HammingScan {
  HammingScanFn fixed = nullptr;     ///< the kernel of this width, when it has one
  HammingScanWideFn wide = nullptr;  ///< otherwise the any-width kernel
  std::int32_t words = 0;
  std::int64_t operator()(const std::uint64_t* queries, int nq, const std::uint64_t* base, std::int64_t nb,
                          const std::int32_t* bound, HammingHit* hits) const {
    return fixed != nullptr ? fixed(queries, nq, base, nb, bound, hits)
                            : wide(queries, nq, base, nb, words, bound, hits);
  }
};

/// The scans of one variant: 64-bit codes (scan64), 256-bit codes (scan256), any width (scan_wide).
struct HammingKernels {
  HammingScanFn scan64 = nullptr;
  HammingScanFn scan256 = nullptr;
  HammingScanWideFn scan_wide = nullptr;
  Backend backend = Backend::kRef;  ///< the variant these are (after any fallback)
  HammingScan scan(std::int32_t words) const {
    return {words == 1 ? scan64 : words == 4 ? scan256 : nullptr, scan_wide, words};
  }
};

std::int64_t hamming_scan64_ref(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                std::int64_t nb, const std::int32_t* bound, HammingHit* hits);
std::int64_t hamming_scan256_ref(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                 std::int64_t nb, const std::int32_t* bound, HammingHit* hits);
std::int64_t hamming_scan_wide_ref(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                   std::int64_t nb, std::int32_t words, const std::int32_t* bound,
                                   HammingHit* hits);
#ifdef MMCORE_HAVE_AVX2
std::int64_t hamming_scan64_avx2(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                 std::int64_t nb, const std::int32_t* bound, HammingHit* hits);
std::int64_t hamming_scan256_avx2(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                  std::int64_t nb, const std::int32_t* bound, HammingHit* hits);
std::int64_t hamming_scan_wide_avx2(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                    std::int64_t nb, std::int32_t words, const std::int32_t* bound,
                                    HammingHit* hits);
#endif
#ifdef MMCORE_HAVE_AVX512
std::int64_t hamming_scan64_avx512(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                   std::int64_t nb, const std::int32_t* bound, HammingHit* hits);
std::int64_t hamming_scan256_avx512(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                    std::int64_t nb, const std::int32_t* bound, HammingHit* hits);
#endif

/// The kernels of `backend`, falling back to the best variant below it that the build and the
/// CPU have.
HammingKernels hamming_kernels(Backend backend);

// Scalar distances and hit emission for the SIMD variants (their tails and hit re-derivation).
// Internal linkage: each variant's file compiles its own copy with its own ISA flags, so the
// linker never merges a POPCNT copy into a file built without it.
namespace {

inline std::int32_t scalar_dist64(std::uint64_t a, std::uint64_t b) {
  return __builtin_popcountll(a ^ b);
}

inline std::int32_t scalar_dist256(const std::uint64_t* a, const std::uint64_t* b) {
  return __builtin_popcountll(a[0] ^ b[0]) + __builtin_popcountll(a[1] ^ b[1]) +
         __builtin_popcountll(a[2] ^ b[2]) + __builtin_popcountll(a[3] ^ b[3]);
}

// Codes [j0, j1) against every query, hits appended at n in (j, q) order; returns the new n.
template <int W, int NQ>
inline std::int64_t scalar_emit(const std::uint64_t* queries, const std::uint64_t* base, std::int64_t j0,
                                std::int64_t j1, const std::int32_t* bound, HammingHit* hits,
                                std::int64_t n) {
  for (std::int64_t j = j0; j < j1; ++j) {
    for (int q = 0; q < NQ; ++q) {
      const std::int32_t d =
          W == 1 ? scalar_dist64(queries[q], base[j]) : scalar_dist256(queries + q * W, base + j * W);
      if (d < bound[q]) hits[n++] = {static_cast<std::uint32_t>(q), static_cast<std::uint32_t>(j), d};
    }
  }
  return n;
}

// Codes of `words` words (any width) against NQ queries with scalar POPCNT: a pair's distance is
// summed four words at a time and given up once it reaches the query's bound, so at a radius
// well under half the bits most pairs cost their first few words. W > 0: the width known at
// compile time (W == words), so the word loops unroll; W == 0: read from `words`.
template <int NQ, int W>
inline std::int64_t scan_wide_popcnt(const std::uint64_t* queries, const std::uint64_t* base, std::int64_t nb,
                                     std::int32_t words, const std::int32_t* bound, HammingHit* hits) {
  if constexpr (W > 0) words = W;
  const std::int32_t blocks = words & ~3;
  std::int64_t n = 0;
  for (std::int64_t j = 0; j < nb; ++j) {
    const std::uint64_t* x = base + j * words;
    for (int i = 0; i < NQ; ++i) {
      const std::uint64_t* q = queries + i * words;
      const std::int32_t b = bound[i];
      std::int32_t d = 0, w = 0;
      for (; w < blocks && d < b; w += 4) d += scalar_dist256(x + w, q + w);
      if (d >= b) continue;
      for (; w < words; ++w) d += scalar_dist64(x[w], q[w]);
      if (d < b) hits[n++] = {static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(j), d};
    }
  }
  return n;
}

template <int W>
inline std::int64_t scan_wide_nq(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                 std::int64_t nb, std::int32_t words, const std::int32_t* bound,
                                 HammingHit* hits) {
  switch (nq) {
    case 1: return scan_wide_popcnt<1, W>(queries, base, nb, words, bound, hits);
    case 2: return scan_wide_popcnt<2, W>(queries, base, nb, words, bound, hits);
    case 3: return scan_wide_popcnt<3, W>(queries, base, nb, words, bound, hits);
    default: return scan_wide_popcnt<4, W>(queries, base, nb, words, bound, hits);
  }
}

// The any-width scan of a variant, unrolled for the common widths: 128 and 192 bits, 512, 768
// and 1024 (binary embedding codes; pHash at hash_size 32).
inline std::int64_t scan_wide_by_nq(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                    std::int64_t nb, std::int32_t words, const std::int32_t* bound,
                                    HammingHit* hits) {
  switch (words) {
    case 2: return scan_wide_nq<2>(queries, nq, base, nb, words, bound, hits);
    case 3: return scan_wide_nq<3>(queries, nq, base, nb, words, bound, hits);
    case 8: return scan_wide_nq<8>(queries, nq, base, nb, words, bound, hits);
    case 12: return scan_wide_nq<12>(queries, nq, base, nb, words, bound, hits);
    case 16: return scan_wide_nq<16>(queries, nq, base, nb, words, bound, hits);
    default: return scan_wide_nq<0>(queries, nq, base, nb, words, bound, hits);
  }
}

}  // namespace

}  // namespace mmcore::detail
