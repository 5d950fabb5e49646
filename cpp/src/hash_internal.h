// Internal contract between the perceptual-hash drivers and their float64 transforms.
//
// dct2_32 is the one DCT that pHash and pHash-simple run (imagehash 4.3.2 calls
// scipy.fftpack.dct with its defaults: type II, norm=None). Its bits decide ties: on flat,
// symmetric and synthetic images many coefficients are equal in exact arithmetic, and a
// transform that rounds differently from scipy flips `coef > median` bits. So it reproduces
// scipy 1.17's pocketfft operation for operation (see hash_dct.cpp), not merely to 1e-13.
// Reentrant: no shared mutable state.
#pragma once

#include <cstddef>

namespace mmcore::detail {

/// scipy.fftpack.dct(x) (type II, unnormalised, y[k] = 2 sum x[n] cos(pi k (2n+1) / 64)) of 32
/// float64 samples x[0], x[stride], ..., bit-identical to scipy 1.17's pocketfft. out: 32 values
/// (contiguous; it may alias x, which is read in full first).
void dct2_32(const double* x, std::ptrdiff_t stride, double* out);

}  // namespace mmcore::detail
