// The CUDA translation unit's C++-visible surface (compiled only when nvcc is found).
//
// Contract: never aborts on a machine without a driver or device; reports through the return
// value and a caller-owned message buffer.
#pragma once

#include <cstddef>

namespace mmcore {

/// Number of CUDA devices usable by this process; 0 with a reason in msg when there are none.
int cuda_device_count(char* msg, std::size_t msg_cap);

/// CUDA runtime version this build was compiled against, e.g. 13000.
int cuda_runtime_version();

}  // namespace mmcore
