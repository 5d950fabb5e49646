// mmcore's Huffman decoder for libjpeg-turbo (decode_jpeg_huff_impl.h, dispatched in decode_jpeg_huff.cpp).
#pragma once

// clang-format off
#include <cstddef>
#include <cstdint>
#include <cstdio>  // jpeglib.h needs size_t and FILE first
#include <jpeglib.h>  // guarded (jpegint.h is not: only the .cpp files include it)
// clang-format on

namespace mmcore::detail {

/// Which compiled copy of the decoder runs: kAuto, the avx2 copy when the active backend is avx2
/// or avx512 (else the baseline one); kBase and kAvx2 force one (tests; kAvx2 falls back to kBase
/// where it is not compiled or the CPU lacks it).
enum class HuffVariant { kAuto, kBase, kAvx2 };

/// Whether the avx2 copy is compiled and this CPU can run it.
bool jpeg_huff_avx2_available();

/// Replaces libjpeg's entropy decoder on a decompressor that jpeg_start_decompress has just set
/// up, when the stream is one scan of baseline Huffman-coded data holding every component, read
/// from a memory buffer ending at `data_end`. Returns false (and changes nothing) otherwise.
/// On data it does not decode exactly as libjpeg would (damaged or unusual streams) the decoder
/// calls `bail`, which must not return (it longjmps out of libjpeg); the caller then decodes the
/// stream again without it. Its state lives in the decompressor's image pool (client_data).
bool jpeg_huff_install(j_decompress_ptr c, const std::uint8_t* data_end, void (*bail)(j_decompress_ptr),
                       HuffVariant v = HuffVariant::kAuto);

/// The same decoder for a progressive (multi-scan, Huffman) stream, whose scans libjpeg reads in
/// jpeg_start_decompress: call it from the progress monitor the first time libjpeg calls that in
/// jpeg_start_decompress (the entropy decoder exists and the first scan's start_pass has run; no
/// MCU is decoded yet). It wraps libjpeg's start_pass so that every later scan is taken over too.
/// Returns false (changing nothing) when the stream or the moment does not fit. Same `bail` contract.
bool jpeg_phuff_install(j_decompress_ptr c, const std::uint8_t* data_end, void (*bail)(j_decompress_ptr),
                        HuffVariant v = HuffVariant::kAuto);

}  // namespace mmcore::detail
