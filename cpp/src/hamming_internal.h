// The Hamming scan kernel shared by kNN, radius search and join (hamming.cpp drives it).
//
// Contract: scan(queries, nq, base, nb, bound, hits) compares nq (1..kScanQueries) query codes
// with nb contiguous base codes and writes a hit (qi, j, d) for every pair with distance
// d < bound[qi], ordered by j then qi; it returns the number of hits (at most nq * nb, the
// capacity of `hits`). Every variant writes exactly the hits of the scalar ref (the oracle).
// Reads exactly nq and nb codes, never past them. Reentrant.
#pragma once
#include <cstdint>

#include "mmcore/backend.h"

namespace mmcore::detail {

constexpr int kScanQueries = 4;

struct HammingHit {
  std::uint32_t q;  ///< query index in the call (0..nq-1)
  std::uint32_t j;  ///< base index in the call (0..nb-1)
  std::int32_t d;   ///< distance
};

using HammingScanFn = std::int64_t (*)(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                       std::int64_t nb, const std::int32_t* bound, HammingHit* hits);

/// The scan for 64-bit codes (scan64) and 256-bit codes (scan256) of one variant.
struct HammingKernels {
  HammingScanFn scan64 = nullptr;
  HammingScanFn scan256 = nullptr;
  Backend backend = Backend::kRef;  ///< the variant these are (after any fallback)
  HammingScanFn scan(std::int32_t words) const { return words == 1 ? scan64 : scan256; }
};

std::int64_t hamming_scan64_ref(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                std::int64_t nb, const std::int32_t* bound, HammingHit* hits);
std::int64_t hamming_scan256_ref(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                 std::int64_t nb, const std::int32_t* bound, HammingHit* hits);
#ifdef MMCORE_HAVE_AVX2
std::int64_t hamming_scan64_avx2(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                 std::int64_t nb, const std::int32_t* bound, HammingHit* hits);
std::int64_t hamming_scan256_avx2(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                  std::int64_t nb, const std::int32_t* bound, HammingHit* hits);
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
