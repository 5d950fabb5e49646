// search_check.cu compiled as plain C++ for the emulated run (tests/gpu/fake_search.cpp).
#include "search_check.cu"
