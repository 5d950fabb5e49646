// PDQ's row box filter (a Jarosz pass of hash_pdq.cpp) and its vector variant.
//
// Contract: a box of `window` samples along each row, as the reference's box1D computes it: a
// running float sum per row that accumulates, grows (add the entering sample, write sum / count),
// runs full (add the entering, subtract the leaving, write sum / count) and shrinks (subtract the
// leaving, write sum / count), the phases' lengths from pdq_box_phases. Every variant performs the
// same float operations in the same order on each row, so the outputs are the same bits (a division
// by a power of two may be a multiply by its exact inverse: the same correctly rounded value).
// hash_pdq.cpp's row loop is the reference; tests/test_hash.py compares hashes under
// MMCORE_FORCE_BACKEND=ref and the vector variants, tests/cpp/test_pdq.cpp against the PDQ
// reference's and pdqhash's outputs.
#pragma once
#include <cstdint>

namespace mmcore::detail {

/// The four phases of a centred box of `window` samples over a line of `length`, as counts.
struct PdqBoxPhases {
  int accumulate;  ///< samples summed before the first write
  int grow;        ///< writes while the window grows
  int full;        ///< writes with the full window (add right, subtract left)
  int shrink;      ///< writes while the window shrinks
};

inline PdqBoxPhases pdq_box_phases(int length, int window) {
  const int half = (window + 2) / 2;
  return {half - 1, window - half + 1, length - window, half - 1};
}

/// Whether a division by `count` may be a multiply by 1 / count with the same bits: a power of two
/// (its inverse is exact, and both are the correctly rounded value of the same real number).
inline bool pdq_box_divides_by_inverse(int count) {
  return count > 0 && (count & (count - 1)) == 0;
}

#ifdef MMCORE_HAVE_AVX2
/// The box along the first rows / 8 * 8 rows of a rows x cols image (in -> out), 8 rows at a time
/// with each row's sum in a vector lane: a strip is transposed into t (8 * cols floats, 32-byte
/// aligned), boxed column by column, and transposed back eight columns at a time. Returns the rows
/// it did (the caller boxes the rest).
std::int32_t pdq_box_rows_avx2(const float* in, float* out, std::int32_t rows, std::int32_t cols,
                               const PdqBoxPhases& ph, float* t);

/// The same boxes, storing only the output columns pick[0..64) (non-decreasing; a column picked
/// twice is stored twice, as out's columns p and p + 1): out is rows x 64. Returns the rows done.
std::int32_t pdq_box_rows_picked_avx2(const float* in, float* out, std::int32_t rows, std::int32_t cols,
                                      const PdqBoxPhases& ph, const std::int32_t* pick, float* t);
#endif

}  // namespace mmcore::detail
