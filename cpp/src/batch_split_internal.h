// Finding the records that fail a batch call alone (the GPU JPEG decode's hardware batches: one bad
// bitstream fails the whole batch, and nvJPEG does not say which). Host code, header only, so
// that tests/cpp/test_batch_split.cpp checks it without a GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mmcore::detail {

enum class BatchResult { kDone, kRefused, kFatal };

/// `idx[0..count)` failed as one batch (count >= 1). Halves it and retries each half with
/// try_batch(const int32_t* idx, size_t count) -> BatchResult, recursively, until every record
/// either decoded in a batch that succeeded (counted in *done) or failed alone (appended to
/// *alone, in index order). Returns false as soon as a try is kFatal (then stops). For b bad
/// records among count, about 2 b log2(count) tries.
template <class Try>
bool split_failed_batch(const std::int32_t* idx, std::size_t count, Try&& try_batch, std::int64_t* done,
                        std::vector<std::int32_t>* alone) {
  if (count == 1) {
    alone->push_back(idx[0]);
    return true;
  }
  const std::size_t half = count / 2;
  const std::int32_t* part[2] = {idx, idx + half};
  const std::size_t size[2] = {half, count - half};
  for (int p = 0; p < 2; ++p) {
    const BatchResult r = try_batch(part[p], size[p]);
    if (r == BatchResult::kFatal) return false;
    if (r == BatchResult::kDone) {
      *done += static_cast<std::int64_t>(size[p]);
    } else if (!split_failed_batch(part[p], size[p], try_batch, done, alone)) {
      return false;
    }
  }
  return true;
}

}  // namespace mmcore::detail
