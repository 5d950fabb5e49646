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

}  // namespace

}  // namespace mmcore::detail
