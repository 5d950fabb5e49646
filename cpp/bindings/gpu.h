// The GPU part of the _core module (cpp/bindings/gpu.cpp), registered by _core.cpp's
// PYBIND11_MODULE when the build has CUDA.
#pragma once

#include <pybind11/pybind11.h>

namespace mmcore {

void bind_gpu(pybind11::module_& m);

}  // namespace mmcore
