// PDQ's box filters (the Jarosz passes of hash_pdq.cpp) and their vector variants.
//
// Contract: a box of `window` samples along each row (or column), as the reference's box1D
// computes it: a running float sum per line that accumulates, grows (add the entering sample,
// write sum / count), runs full (add the entering, subtract the leaving, write sum / count) and
// shrinks (subtract the leaving, write sum / count), the phases' lengths from pdq_box_phases. Every
// variant performs the same float operations in the same order on each line, so the outputs are
// the same bits (a division by a power of two may be a multiply by its exact inverse: the same
// correctly rounded value). hash_pdq.cpp's loops are the reference; tests/cpp/test_pdq_box.cpp
// compares each variant's output with a one-line-at-a-time box bit for bit, tests/test_hash.py
// compares hashes under MMCORE_FORCE_BACKEND=ref and the vector variants, tests/cpp/test_pdq.cpp
// against the PDQ reference's and pdqhash's outputs.
#pragma once
#include <cstdint>

#include "mmcore/backend.h"

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

/// The vector box kernels of a backend; each null where it has none (the ref, or a CPU without
/// the instructions), and the caller then runs hash_pdq.cpp's loops.
struct PdqBoxKernels {
  /// The box along the first rows / 8 * 8 rows; returns the rows done (the caller boxes the rest).
  /// t: 8 * cols floats, 32-byte aligned.
  std::int32_t (*rows)(const float* in, float* out, std::int32_t rows, std::int32_t cols,
                       const PdqBoxPhases& ph, float* t) = nullptr;
  /// The same, storing only the output columns pick[0..64) (out: rows x 64).
  std::int32_t (*rows_picked)(const float* in, float* out, std::int32_t rows, std::int32_t cols,
                              const PdqBoxPhases& ph, const std::int32_t* pick, float* t) = nullptr;
  /// The box along every column; sums: cols floats.
  void (*cols)(const float* in, float* out, std::int32_t rows, std::int32_t cols, const PdqBoxPhases& ph,
               float* sums) = nullptr;
};

/// The kernels `backend` runs (the avx2 ones for avx2 and avx512).
PdqBoxKernels pdq_box_kernels(Backend backend);

#ifdef MMCORE_HAVE_AVX2
/// The box along the first rows / 8 * 8 rows of a rows x cols image (in -> out), 8 rows at a time
/// with each row's sum in a vector lane: a strip is transposed into t (8 * cols floats, 32-byte
/// aligned), boxed column by column, and transposed back eight columns at a time. Returns the rows
/// it did (the caller boxes the rest).
std::int32_t pdq_box_rows_avx2(const float* in, float* out, std::int32_t rows, std::int32_t cols,
                               const PdqBoxPhases& ph, float* t);

/// The box along every column of a rows x cols image (in -> out), eight columns a vector, the
/// running sums in sums (cols floats): the reference's box_cols (hash_pdq.cpp), same ops per column.
void pdq_box_cols_avx2(const float* in, float* out, std::int32_t rows, std::int32_t cols,
                       const PdqBoxPhases& ph, float* sums);

/// The same boxes, storing only the output columns pick[0..64) (non-decreasing; a column picked
/// twice is stored twice, as out's columns p and p + 1): out is rows x 64. Returns the rows done.
std::int32_t pdq_box_rows_picked_avx2(const float* in, float* out, std::int32_t rows, std::int32_t cols,
                                      const PdqBoxPhases& ph, const std::int32_t* pick, float* t);
#endif

}  // namespace mmcore::detail
