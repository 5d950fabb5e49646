// Shared by mmcore's DALI operators: per-sample status and message outputs, and the argument
// parsing that turns DALI arguments into mmcore options.
//
// Contract: operators never throw for bad data. A record that fails gets its mmcore::Status and
// a message; only misuse of the operator (wrong input type, unknown argument value) raises the
// DALI error that stops pipeline construction.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "dali/pipeline/data/tensor_list.h"
#include "dali/pipeline/operator/operator.h"
#include "mmcore/status.h"
#include "mmcore/workspace.h"

namespace mmcore_dali {

/// One record's outcome; message empty when there is nothing to say.
struct Outcome {
  mmcore::Status status = mmcore::Status::kOk;
  mmcore::ErrorText error;
};

/// Writes a uint8 scalar status per sample and a 1-D uint8 (UTF-8) message per sample.
inline void write_outcomes(const std::vector<Outcome>& outcomes, dali::TensorList<dali::CPUBackend>& status,
                           dali::TensorList<dali::CPUBackend>& error) {
  const int n = static_cast<int>(outcomes.size());
  dali::TensorListShape<> status_shape = dali::uniform_list_shape(n, dali::TensorShape<>{});
  status.Resize(status_shape, DALI_UINT8);
  dali::TensorListShape<> error_shape(n, 1);
  for (int i = 0; i < n; ++i) {
    error_shape.set_tensor_shape(
        i, dali::TensorShape<>{static_cast<int64_t>(std::strlen(outcomes[i].error.text))});
  }
  error.Resize(error_shape, DALI_UINT8);
  for (int i = 0; i < n; ++i) {
    *status.mutable_tensor<uint8_t>(i) = static_cast<uint8_t>(outcomes[i].status);
    const std::size_t len = std::strlen(outcomes[i].error.text);
    if (len > 0) std::memcpy(error.mutable_tensor<uint8_t>(i), outcomes[i].error.text, len);
  }
}

/// The input sample's bytes as one flat buffer (any shape, uint8).
inline void sample_bytes(const dali::TensorList<dali::CPUBackend>& in, int i, const uint8_t** data,
                         std::size_t* size) {
  *data = in.tensor<uint8_t>(i);
  *size = static_cast<std::size_t>(dali::volume(in.tensor_shape(i)));
}

/// An operator's scratch, one mmcore::Workspace per pool thread, kept across iterations so that a
/// thread's large buffers serve its next samples (mmcore/workspace.h). Call size() in RunImpl
/// before adding work; at(thread) is null for an index outside the pool.
class PoolScratch {
 public:
  void size(int threads) {
    if (threads > 0 && per_thread_.size() < static_cast<std::size_t>(threads)) per_thread_.resize(threads);
  }
  mmcore::Workspace* at(int thread) {
    return thread >= 0 && static_cast<std::size_t>(thread) < per_thread_.size() ? &per_thread_[thread]
                                                                                : nullptr;
  }

 private:
  std::vector<mmcore::Workspace> per_thread_;
};

}  // namespace mmcore_dali
