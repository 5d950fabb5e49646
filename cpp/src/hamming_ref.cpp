// Scalar Hamming scan (the oracle of hamming_internal.h) and the variant choice.
#include "hamming_internal.h"

namespace mmcore::detail {
namespace {

std::int64_t scan_ref(const std::uint64_t* queries, int nq, const std::uint64_t* base, std::int64_t nb,
                      std::int32_t words, const std::int32_t* bound, HammingHit* hits) {
  std::int64_t n = 0;
  for (std::int64_t j = 0; j < nb; ++j) {
    const std::uint64_t* b = base + j * words;
    for (int q = 0; q < nq; ++q) {
      const std::uint64_t* a = queries + q * words;
      std::int32_t d = 0;
      for (std::int32_t w = 0; w < words; ++w) d += __builtin_popcountll(a[w] ^ b[w]);
      if (d < bound[q]) hits[n++] = {static_cast<std::uint32_t>(q), static_cast<std::uint32_t>(j), d};
    }
  }
  return n;
}

}  // namespace

std::int64_t hamming_scan64_ref(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                std::int64_t nb, const std::int32_t* bound, HammingHit* hits) {
  return scan_ref(queries, nq, base, nb, 1, bound, hits);
}

std::int64_t hamming_scan256_ref(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                 std::int64_t nb, const std::int32_t* bound, HammingHit* hits) {
  return scan_ref(queries, nq, base, nb, 4, bound, hits);
}

std::int64_t hamming_scan_wide_ref(const std::uint64_t* queries, int nq, const std::uint64_t* base,
                                   std::int64_t nb, std::int32_t words, const std::int32_t* bound,
                                   HammingHit* hits) {
  return scan_ref(queries, nq, base, nb, words, bound, hits);
}

HammingKernels hamming_kernels(Backend backend) {
  HammingKernels k;
  k.scan64 = hamming_scan64_ref;
  k.scan256 = hamming_scan256_ref;
  k.scan_wide = hamming_scan_wide_ref;
  k.backend = Backend::kRef;
#ifdef MMCORE_HAVE_AVX2
  if ((backend == Backend::kAvx2 || backend == Backend::kAvx512) && backend_supported(Backend::kAvx2)) {
    k.scan64 = hamming_scan64_avx2;
    k.scan256 = hamming_scan256_avx2;
    k.scan_wide = hamming_scan_wide_avx2;
    k.backend = Backend::kAvx2;
  }
#endif
#ifdef MMCORE_HAVE_AVX512
  if (backend == Backend::kAvx512 && backend_supported(Backend::kAvx512)) {
    k.scan64 = hamming_scan64_avx512;
    k.scan256 = hamming_scan256_avx512;
    // Other widths keep the AVX2 scan (its vpshufb counts beat scalar POPCNT from 8 words on): a
    // VPOPCNTDQ one is not written, no AVX-512 host being at hand to measure it on.
    k.backend = Backend::kAvx512;
  }
#endif
  (void)backend;
  return k;
}

}  // namespace mmcore::detail
