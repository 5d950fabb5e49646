// mmcore's Huffman decoder (decode_jpeg_huff_impl.h) compiled with the avx2 flags (BMI2: shlx,
// pdep); decode_jpeg_huff.cpp picks it when the CPU runs the avx2 or avx512 backend.
#define MMCORE_HUFF_VARIANT huff_avx2
#include "decode_jpeg_huff_impl.h"
