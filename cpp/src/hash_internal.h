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
#include <cstdint>
#include <vector>

#include "hd_internal.h"
#include "mmcore/hash.h"
#include "mmcore/resize.h"
#include "mmcore/views.h"

namespace mmcore::detail {

/// scipy.fftpack.dct(x) (type II, unnormalised, y[k] = 2 sum x[n] cos(pi k (2n+1) / 64)) of 32
/// float64 samples x[0], x[stride], ..., bit-identical to scipy 1.17's pocketfft. out: 32 values
/// (contiguous; it may alias x, which is read in full first).
void dct2_32(const double* x, std::ptrdiff_t stride, double* out);

/// Whether DctPlan takes n: n >= 1 with no prime factor but 2, 3 and 5.
bool dct_length_supported(std::int32_t n);

/// scipy.fftpack.dct(x) of n float64 samples (pHash at other hash sizes: n = hash_size x
/// highfreq_factor; dct_length_supported(n)), bit-identical to scipy's pocketfft as dct2_32 is:
/// its factors and twiddles, built once per n (a plan is read-only afterwards: share it between
/// threads). run(): out must not alias x; scratch holds 2n doubles.
class DctPlan {
 public:
  explicit DctPlan(std::int32_t n);
  /// 0 when the length given is not supported (then run() must not be called).
  std::int32_t size() const { return n_; }
  void run(const double* x, std::ptrdiff_t stride, double* out, double* scratch) const;

 private:
  std::int32_t n_;
  std::vector<std::int32_t> factors_;
  std::vector<std::vector<double>> twiddles_;
  std::vector<double> post_;
};

/// Resizes a one-channel image to w x h into `dst` (w * h bytes, contiguous); a copy when it is
/// that size already. The imagehash kinds' first step, at every hash size.
void shrink_gray(ConstImageView gray, std::int32_t w, std::int32_t h, Filter filter, std::uint8_t* dst);

/// imagehash whash's LL at hash_size (a power of 2; image_scale = max(2**int(log2(min(W, H))),
/// hash_size)): hash_size x hash_size float64 values, row-major, the bits compared with their
/// median. False (nothing written) for bad input or a hash_size that is not a power of 2.
bool whash_ll(ConstImageView gray, Filter filter, std::int32_t hash_size, std::vector<double>* ll);

/// imagehash colorhash's 14 values at binbits 1..16 (false for bad input), and bit i (0 the most
/// significant) of value v's binbits bits, as imagehash forms them.
bool colorhash_values(ConstImageView img, int binbits, int values[14]);
bool colorhash_value_bit(int v, int binbits, int i);

/// The sized hashes (hash_sized.cpp; HashRequest::sized): the kernels writing HashRecord::wide,
/// a grey kind from Pillow's 'L' image, colorhash from RGB or grey.
void hash_sized_gray(HashKind k, ConstImageView gray, const HashRequest& r, Filter filter, HashRecord* out);
void hash_sized_colorhash(ConstImageView img, const HashRequest& r, HashRecord* out);

/// pdq_reference_squash by rows, for a caller that has the source rows in cache as a decode
/// finishes them. xs: 512 source columns (pdq_squash_columns of the source width). Output rows
/// [y_begin, y_end) come from source rows y * height / 512; pdq_squash_rows_below(height, y) is
/// the first output row whose source row is y or later (512 when none), so the rows of source
/// rows [a, b) are [pdq_squash_rows_below(h, a), pdq_squash_rows_below(h, b)).
void pdq_squash_columns(std::int32_t src_width, std::int32_t* xs);
std::int32_t pdq_squash_rows_below(std::int32_t src_height, std::int32_t y);
void pdq_reference_squash_rows(ConstImageView src, ImageView dst, const std::int32_t* xs,
                               std::int32_t y_begin, std::int32_t y_end);

/// PDQ's DCT matrix as hash_pdq.cpp uses it: D[i][j] = float(sqrt(2/64)) cos(pi/128 (i+1)(2j+1))
/// rounded to float, row-major 16 x 64 (1024 floats). The GPU uploads these same values.
void pdq_dct_matrix(float* d);

/// numpy's mean of 64 float64 values in row-major order (pHash-simple's threshold): its
/// pairwise sum keeps 8 running accumulators (r[j] += v[8i + j]) and adds them as
/// ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)). Checked bit for bit against numpy on 20,000 random
/// arrays; a plain sum differs in 70%. Additions only, so no compiler can fuse anything here;
/// shared with cuda/hash.cu.
MMCORE_HD inline double numpy_mean64(const double* v) {
  double r[8];
  for (int j = 0; j < 8; ++j) r[j] = v[j];
  for (int i = 8; i < 64; i += 8)
    for (int j = 0; j < 8; ++j) r[j] += v[i + j];
  const double total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
  return total / 64.0;
}

}  // namespace mmcore::detail
