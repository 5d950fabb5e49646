// MMCORE_HD marks the arithmetic that the CPU kernels and the CUDA kernels (cuda/*.cu) share:
// one definition compiled by both compilers, so CPU tests exercise the GPU's arithmetic. Outside
// nvcc it expands to nothing and these headers are plain C++.
#pragma once

#if defined(__CUDACC__)
#define MMCORE_HD __host__ __device__
#else
#define MMCORE_HD
#endif
