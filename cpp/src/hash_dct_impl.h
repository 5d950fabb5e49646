// The body of pHash's 32-point DCT (see hash_dct.cpp for what it reproduces and why), written
// once for the CPU (hash_dct.cpp) and the GPU (cuda/hash.cu).
//
// Every product is rounded before it is added. On the CPU hash_dct.cpp switches contraction off
// around this code; on the GPU nvcc would fuse a*b+c into an FMA by default, so the device
// build spells each operation as its correctly rounded intrinsic (__dmul_rn, __dadd_rn,
// __dsub_rn), which nvcc never contracts. Both then perform the same IEEE float64 operations in
// the same order, hence the same bits. The twiddles travel as a value (DctTwiddles) because a
// namespace-scope table is not addressable from device code.
#pragma once

#include <cstddef>

#include "hd_internal.h"

namespace mmcore::detail {

/// pocketfft's twiddles for N = 32 (hash_dct.cpp says how they were generated).
struct DctTwiddles {
  /// e^{2 pi i m / 32} for m = 1..7 as pocketfft's rfftp(32) tables hold them (index 0 unused).
  double root_re[8];
  double root_im[8];
  /// Re e^{2 pi i (k + 1) / 128} for k = 0..30: the DCT's post-rotation (T_dcst23's twiddle).
  /// Entries 16..30 are pocketfft's two-factor products, hence not correctly rounded.
  double quarter_wave[31];
  /// sqrt(2) as pocketfft rounds its long double literal (equal to the nearest double).
  double sqrt2;
};

constexpr DctTwiddles kDctTwiddles = {
    {1.0, 0x1.f6297cff75cbp-1, 0x1.d906bcf328d46p-1, 0x1.a9b66290ea1a3p-1, 0x1.6a09e667f3bccp-1,
     0x1.1c73b39ae68c8p-1, 0x1.87de2a6aea963p-2, 0x1.8f8b83c69a60ap-3},
    {0.0, 0x1.8f8b83c69a60ap-3, 0x1.87de2a6aea963p-2, 0x1.1c73b39ae68c8p-1, 0x1.6a09e667f3bcdp-1,
     0x1.a9b66290ea1a3p-1, 0x1.d906bcf328d46p-1, 0x1.f6297cff75cbp-1},
    {0x1.ff621e3796d7ep-1, 0x1.fd88da3d12526p-1, 0x1.fa7557f08a517p-1, 0x1.f6297cff75cbp-1,
     0x1.f0a7efb9230d7p-1, 0x1.e9f4156c62ddap-1, 0x1.e212104f686e5p-1, 0x1.d906bcf328d46p-1,
     0x1.ced7af43cc773p-1, 0x1.c38b2f180bdb1p-1, 0x1.b728345196e3ep-1, 0x1.a9b66290ea1a3p-1,
     0x1.9b3e047f38741p-1, 0x1.8bc806b151741p-1, 0x1.7b5df226aafafp-1, 0x1.6a09e667f3bccp-1,
     0x1.57d69348cec9fp-1, 0x1.44cf325091dd6p-1, 0x1.30ff7fce17034p-1, 0x1.1c73b39ae68c8p-1,
     0x1.073879922ffedp-1, 0x1.e2b5d3806f639p-2, 0x1.b5d1009e15cbfp-2, 0x1.87de2a6aea961p-2,
     0x1.58f9a75ab1fdbp-2, 0x1.294062ed59f04p-2, 0x1.f19f97b215f1cp-3, 0x1.8f8b83c69a60ap-3,
     0x1.2c8106e8e6136p-3, 0x1.917a6bc29b424p-4, 0x1.91f65f10dd81p-5},
    0x1.6a09e667f3bcdp+0,
};

// Correctly rounded float64 operations that no compiler may fuse (see the file comment).
MMCORE_HD inline double dct_add(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
MMCORE_HD inline double dct_sub(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}
MMCORE_HD inline double dct_mul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

/// Radix-2 backward pass, 16 points per half (pocketfft radb2, ido = 16, l1 = 1).
MMCORE_HD inline void dct_backward_radix2(const double* in, double* out, const DctTwiddles& tw) {
  out[0] = dct_add(in[0], in[31]);
  out[16] = dct_sub(in[0], in[31]);
  out[15] = dct_mul(2.0, in[15]);
  out[31] = dct_mul(-2.0, in[16]);
  for (int i = 2; i < 16; i += 2) {
    const int ic = 16 - i;
    out[i - 1] = dct_add(in[i - 1], in[16 + ic - 1]);
    const double tr = dct_sub(in[i - 1], in[16 + ic - 1]);
    const double ti = dct_add(in[i], in[16 + ic]);
    out[i] = dct_sub(in[i], in[16 + ic]);
    // multiply (tr, ti) by e^{2 pi i (i/2) / 32}, writing real at i-1 and imaginary at i
    const double wr = tw.root_re[i / 2], wi = tw.root_im[i / 2];
    out[16 + i] = dct_add(dct_mul(wr, ti), dct_mul(wi, tr));
    out[16 + i - 1] = dct_sub(dct_mul(wr, tr), dct_mul(wi, ti));
  }
}

/// Radix-4 backward pass on two blocks of 16 (pocketfft radb4, ido = 4, l1 = 2).
MMCORE_HD inline void dct_backward_radix4_wide(const double* in_all, double* out_all, const DctTwiddles& tw) {
  for (int k = 0; k < 2; ++k) {
    const double* in = in_all + 16 * k;  // in[i + 4 j]: element i of the block's sub-sequence j
    double* out = out_all + 4 * k;       // out[i + 8 j]
    {
      const double tr2 = dct_add(in[0], in[15]), tr1 = dct_sub(in[0], in[15]);
      const double tr3 = dct_mul(2.0, in[7]), tr4 = dct_mul(2.0, in[8]);
      out[0] = dct_add(tr2, tr3);
      out[16] = dct_sub(tr2, tr3);
      out[24] = dct_add(tr1, tr4);
      out[8] = dct_sub(tr1, tr4);
    }
    {
      // the middle (Nyquist-like) element of each sub-sequence
      const double ti1 = dct_add(in[12], in[4]), ti2 = dct_sub(in[12], in[4]);
      const double tr2 = dct_add(in[3], in[11]), tr1 = dct_sub(in[3], in[11]);
      out[3] = dct_add(tr2, tr2);
      out[11] = dct_mul(tw.sqrt2, dct_sub(tr1, ti1));
      out[19] = dct_add(ti2, ti2);
      out[27] = dct_mul(-tw.sqrt2, dct_add(tr1, ti1));
    }
    {
      // the one complex element (i = 2), rotated by e^{2 pi i 2 j / 32} for j = 1, 2, 3
      const double tr2 = dct_add(in[1], in[13]), tr1 = dct_sub(in[1], in[13]);
      const double ti1 = dct_add(in[2], in[14]), ti2 = dct_sub(in[2], in[14]);
      const double tr4 = dct_add(in[10], in[6]), ti3 = dct_sub(in[10], in[6]);
      const double tr3 = dct_add(in[9], in[5]), ti4 = dct_sub(in[9], in[5]);
      out[1] = dct_add(tr2, tr3);
      const double cr3 = dct_sub(tr2, tr3);
      out[2] = dct_add(ti2, ti3);
      const double ci3 = dct_sub(ti2, ti3);
      const double cr4 = dct_add(tr1, tr4), cr2 = dct_sub(tr1, tr4);
      const double ci2 = dct_add(ti1, ti4), ci4 = dct_sub(ti1, ti4);
      const double cr[3] = {cr2, cr3, cr4};
      const double ci[3] = {ci2, ci3, ci4};
      for (int j = 1; j <= 3; ++j) {
        const double wr = tw.root_re[2 * j], wi = tw.root_im[2 * j];
        out[2 + 8 * j] = dct_add(dct_mul(wr, ci[j - 1]), dct_mul(wi, cr[j - 1]));
        out[1 + 8 * j] = dct_sub(dct_mul(wr, cr[j - 1]), dct_mul(wi, ci[j - 1]));
      }
    }
  }
}

/// Radix-4 backward pass on eight blocks of 4, no twiddles (pocketfft radb4, ido = 1, l1 = 8).
MMCORE_HD inline void dct_backward_radix4_narrow(const double* in, double* out) {
  for (int k = 0; k < 8; ++k) {
    const double* b = in + 4 * k;
    const double tr2 = dct_add(b[0], b[3]), tr1 = dct_sub(b[0], b[3]);
    const double tr3 = dct_mul(2.0, b[1]), tr4 = dct_mul(2.0, b[2]);
    out[k] = dct_add(tr2, tr3);
    out[k + 16] = dct_sub(tr2, tr3);
    out[k + 24] = dct_add(tr1, tr4);
    out[k + 8] = dct_sub(tr1, tr4);
  }
}

/// dct2_32's contract (hash_internal.h), with the twiddles passed in.
MMCORE_HD inline void dct2_32_impl(const double* x, std::ptrdiff_t stride, double* out,
                                   const DctTwiddles& tw) {
  constexpr int kN = 32;
  double a[kN];
  double b[kN];
  for (int n = 0; n < kN; ++n) a[n] = x[n * stride];

  // Pre-processing (T_dcst23, type 2): double both ends, then turn each odd/even pair into
  // (sum, difference); this maps the DCT onto a halfcomplex spectrum.
  a[0] = dct_mul(a[0], 2.0);
  a[kN - 1] = dct_mul(a[kN - 1], 2.0);
  for (int k = 1; k < kN - 1; k += 2) {
    const double even = a[k + 1], odd = a[k];
    a[k + 1] = dct_sub(even, odd);
    a[k] = dct_add(even, odd);
  }

  // Real backward FFT (rfftp, factors 2, 4, 4 applied in that order, scale 1).
  dct_backward_radix2(a, b, tw);
  dct_backward_radix4_wide(b, a, tw);
  dct_backward_radix4_narrow(a, b);

  // Post-rotation: outputs k and 32 - k mix through the quarter-wave twiddles.
  const double* q = tw.quarter_wave;
  out[0] = b[0];
  for (int k = 1, kc = kN - 1; k < kN / 2; ++k, --kc) {
    const double t1 = dct_add(dct_mul(q[k - 1], b[kc]), dct_mul(q[kc - 1], b[k]));
    const double t2 = dct_sub(dct_mul(q[k - 1], b[k]), dct_mul(q[kc - 1], b[kc]));
    out[k] = dct_mul(0.5, dct_add(t1, t2));
    out[kc] = dct_mul(0.5, dct_sub(t1, t2));
  }
  out[kN / 2] = dct_mul(b[kN / 2], q[kN / 2 - 1]);
}

}  // namespace mmcore::detail
