// Test helpers around libjpeg-turbo's own API: a small JPEG made in memory, and a decompressor
// started on it, to reach the functions libjpeg-turbo installs for decoding (its IDCT, its colour
// converter) and compare mmcore's kernels with them.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <vector>

// clang-format off
#include <jpeglib.h>
#include <jpegint.h>
// clang-format on

namespace mmcore_test {

/// A width x height JPEG (grey when components == 1, else RGB coded as YCbCr) whose samples are
/// sample(x, y, c).
template <class Sample>
std::vector<unsigned char> make_jpeg(int width, int height, int components, Sample sample) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* mem = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &mem, &size);
  c.image_width = static_cast<JDIMENSION>(width);
  c.image_height = static_cast<JDIMENSION>(height);
  c.input_components = components;
  c.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_start_compress(&c, TRUE);
  std::vector<std::uint8_t> line(static_cast<std::size_t>(width) * components);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x)
      for (int k = 0; k < components; ++k)
        line[static_cast<std::size_t>(x) * components + k] = sample(x, y, k);
    JSAMPROW row = line.data();
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  std::vector<unsigned char> out(mem, mem + size);
  std::free(mem);
  jpeg_destroy_compress(&c);
  return out;
}

/// A decompressor past jpeg_start_decompress on `jpg` (which it must outlive), after
/// `configure` set its options.
class StartedDecompress {
 public:
  template <class Configure>
  StartedDecompress(const std::vector<unsigned char>& jpg, Configure configure) {
    d.err = jpeg_std_error(&err);
    jpeg_create_decompress(&d);
    jpeg_mem_src(&d, jpg.data(), jpg.size());
    jpeg_read_header(&d, TRUE);
    configure(&d);
    jpeg_start_decompress(&d);
  }
  ~StartedDecompress() {
    jpeg_abort_decompress(&d);
    jpeg_destroy_decompress(&d);
  }
  StartedDecompress(const StartedDecompress&) = delete;
  StartedDecompress& operator=(const StartedDecompress&) = delete;

  jpeg_decompress_struct d;

 private:
  jpeg_error_mgr err;
};

}  // namespace mmcore_test
