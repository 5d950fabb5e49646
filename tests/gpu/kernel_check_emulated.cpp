// kernel_check.cu compiled as plain C++ for the emulated run (tests/gpu/fake_kernels.cpp).
#include "kernel_check.cu"
