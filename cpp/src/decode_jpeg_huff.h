// mmcore's Huffman decoder for libjpeg-turbo (decode_jpeg_huff.cpp).
#pragma once

// clang-format off
#include <cstddef>
#include <cstdint>
#include <cstdio>  // jpeglib.h needs size_t and FILE first
#include <jpeglib.h>  // guarded (jpegint.h is not: only the .cpp files include it)
// clang-format on

namespace mmcore::detail {

/// Replaces libjpeg's entropy decoder on a decompressor that jpeg_start_decompress has just set
/// up, when the stream is one scan of baseline Huffman-coded data holding every component, read
/// from a memory buffer ending at `data_end`. Returns false (and changes nothing) otherwise.
/// On data it does not decode exactly as libjpeg would (damaged or unusual streams) the decoder
/// calls `bail`, which must not return (it longjmps out of libjpeg); the caller then decodes the
/// stream again without it. Its state lives in the decompressor's image pool (client_data).
bool jpeg_huff_install(j_decompress_ptr c, const std::uint8_t* data_end, void (*bail)(j_decompress_ptr));

/// The same decoder for a progressive (multi-scan, Huffman) stream, whose scans libjpeg reads in
/// jpeg_start_decompress: call it from the progress monitor the first time libjpeg calls that in
/// jpeg_start_decompress (the entropy decoder exists and the first scan's start_pass has run; no
/// MCU is decoded yet). It wraps libjpeg's start_pass so that every later scan is taken over too.
/// Returns false (changing nothing) when the stream or the moment does not fit. Same `bail` contract.
bool jpeg_phuff_install(j_decompress_ptr c, const std::uint8_t* data_end, void (*bail)(j_decompress_ptr));

}  // namespace mmcore::detail
