// C++ test of mmcore's Huffman decoder (cpp/src/decode_jpeg_huff_impl.h, compiled as a baseline and
// an avx2 copy: both are run here) against libjpeg-turbo's own.
//
// 1. In isolation: every JPEG given (the corpus folders named on the command line) and a set made
//    here with libjpeg (every chroma subsampling, grey, qualities 20-100, optimised Huffman tables,
//    restart intervals of 1 and 7 MCUs and of one MCU row, noise that needs 10-bit magnitudes;
//    progressive with three scan scripts: libjpeg's, spectral selection alone, and successive
//    approximation in depth, with and without restart intervals) is
//    decoded by libjpeg with its decoder and with mmcore's plugged in, at every scale, grey and RGB:
//    the pixels and the warnings must be equal, and mmcore's decoder must not give up on any of them.
// 2. Through mmcore::decode_into: the same files and thousands of damaged copies (bit flips,
//    truncations, stray markers and 0xFF bytes in the entropy-coded data) decode with
//    DecodeOptions::libjpeg_huffman on and off to the same status, message and (when decoded)
//    pixels: where mmcore's decoder gives up, libjpeg's result is what the caller gets.
//
// Build and run (tests/test_decode_jpeg.py does this when a build tree exists):
//   g++ -O2 -std=c++17 -Icpp/include -Icpp/src tests/cpp/test_jpeg_huff.cpp \
//       build/<tag>/cpp/libmmcore_cpu.a $(pkg-config --libs libjpeg libpng libwebp libwebpdemux zlib) \
//       -lpthread -o /tmp/test_jpeg_huff && /tmp/test_jpeg_huff ../shared/corpus/jpeg ...
#include <dirent.h>

#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "decode_jpeg_huff.h"
#include "mmcore/decode.h"

namespace {

using Bytes = std::vector<std::uint8_t>;

int failures = 0;

void fail(const std::string& what) {
  if (++failures <= 30) std::printf("FAIL %s\n", what.c_str());
}

// ---- 1. libjpeg with and without mmcore's decoder --------------------------------------------

struct Err {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  bool bailed = false;
  int warnings = 0;
};

void on_error(j_common_ptr c) {
  std::longjmp(reinterpret_cast<Err*>(c->err)->jump, 1);
}
void on_message(j_common_ptr c, int level) {
  if (level < 0) ++reinterpret_cast<Err*>(c->err)->warnings;
}
[[noreturn]] void on_bail(j_decompress_ptr c) {
  auto* e = reinterpret_cast<Err*>(c->err);
  e->bailed = true;
  std::longjmp(e->jump, 1);
}

struct Plain {
  int rc = 0;  ///< 0 decoded, 1 libjpeg error, 2 mmcore's decoder gave up, 3 not installed
  int warnings = 0;
  Bytes pixels;
};

// Installs the progressive decoder at libjpeg's first progress call in jpeg_start_decompress.
struct ProgressHook {
  jpeg_progress_mgr pub;  // first member
  mmcore::detail::HuffVariant variant = mmcore::detail::HuffVariant::kAuto;
  const std::uint8_t* data_end = nullptr;
  bool called = false;
  bool installed = false;
};

void on_progress(j_common_ptr c) {
  auto* h = reinterpret_cast<ProgressHook*>(c->progress);
  if (h->called) return;
  h->called = true;
  h->installed = mmcore::detail::jpeg_phuff_install(reinterpret_cast<j_decompress_ptr>(c), h->data_end,
                                                    on_bail, h->variant);
}

// The longjmp target: nothing with a destructor lives in this frame.
bool plain_session(jpeg_decompress_struct* c, Err* e, ProgressHook* hook, const Bytes& data, int denom,
                   bool grey, bool fast, bool mmcore_huffman, Plain* out, bool* installed) {
  if (setjmp(e->jump) != 0) return false;
  jpeg_mem_src(c, data.data(), static_cast<unsigned long>(data.size()));
  jpeg_read_header(c, TRUE);
  // Headers that claim huge images (in the corrupt corpus) would only test the allocator.
  if (static_cast<double>(c->image_width) * c->image_height > 64e6) return false;
  c->mem->max_memory_to_use = 1L << 30;
  if (c->jpeg_color_space == JCS_CMYK || c->jpeg_color_space == JCS_YCCK) {
    c->out_color_space = JCS_CMYK;
  } else {
    c->out_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
  }
  c->scale_num = 1;
  c->scale_denom = static_cast<unsigned>(denom);
  c->dct_method = fast ? JDCT_IFAST : JDCT_ISLOW;
  c->do_fancy_upsampling = fast ? FALSE : TRUE;
  if (mmcore_huffman && c->progressive_mode) {
    hook->pub.progress_monitor = on_progress;
    hook->data_end = data.data() + data.size();
    c->progress = &hook->pub;
  }
  jpeg_start_decompress(c);
  if (mmcore_huffman) {
    *installed = c->progressive_mode ? hook->installed
                                     : mmcore::detail::jpeg_huff_install(c, data.data() + data.size(),
                                                                         on_bail, hook->variant);
  }
  const std::size_t stride = static_cast<std::size_t>(c->output_width) * c->output_components;
  out->pixels.assign(stride * c->output_height, 0);
  while (c->output_scanline < c->output_height) {
    JSAMPROW row = out->pixels.data() + stride * c->output_scanline;
    jpeg_read_scanlines(c, &row, 1);
  }
  jpeg_finish_decompress(c);
  return true;
}

Plain plain_decode(const Bytes& data, int denom, bool grey, bool fast, bool mmcore_huffman,
                   mmcore::detail::HuffVariant variant = mmcore::detail::HuffVariant::kAuto) {
  jpeg_decompress_struct c;
  Err e;
  c.err = jpeg_std_error(&e.pub);
  e.pub.error_exit = on_error;
  e.pub.emit_message = on_message;
  jpeg_create_decompress(&c);
  Plain out;
  bool installed = false;
  ProgressHook hook;
  hook.variant = variant;
  const bool ok = plain_session(&c, &e, &hook, data, denom, grey, fast, mmcore_huffman, &out, &installed);
  jpeg_destroy_decompress(&c);
  out.rc = !ok ? (e.bailed ? 2 : 1) : (mmcore_huffman && !installed ? 3 : 0);
  out.warnings = e.warnings;
  return out;
}

// ---- JPEGs made here ---------------------------------------------------------------------------

struct Made {
  std::string name;
  Bytes data;
  bool damaged = false;  ///< from a folder of damaged files: libjpeg may read it silently wrong
};

// Progressive scan scripts besides libjpeg's jpeg_simple_progression (script 1): 2 spectral
// selection alone (DC interleaved, then AC bands per component, no successive approximation);
// 3 successive approximation in depth (DC per component at Al 2, refined twice interleaved, AC
// first at Al 3 / 2, then refined one bit at a time).
std::vector<jpeg_scan_info> scan_script(int script, int comps) {
  std::vector<jpeg_scan_info> out;
  const auto add = [&out](std::initializer_list<int> cs, int ss, int se, int ah, int al) {
    jpeg_scan_info si{};
    si.comps_in_scan = static_cast<int>(cs.size());
    int i = 0;
    for (int c : cs) si.component_index[i++] = c;
    si.Ss = ss;
    si.Se = se;
    si.Ah = ah;
    si.Al = al;
    out.push_back(si);
  };
  if (script == 2) {
    if (comps == 3) {
      add({0, 1, 2}, 0, 0, 0, 0);
    } else {
      add({0}, 0, 0, 0, 0);
    }
    for (int c = 0; c < comps; ++c) {
      add({c}, 1, 5, 0, 0);
      add({c}, 6, 63, 0, 0);
    }
  } else {
    for (int c = 0; c < comps; ++c) add({c}, 0, 0, 0, 2);
    for (int c = 0; c < comps; ++c) add({c}, 1, 63, 0, c == 0 ? 3 : 2);
    if (comps == 3) {
      add({0, 1, 2}, 0, 0, 2, 1);
      add({0, 1, 2}, 0, 0, 1, 0);
    } else {
      add({0}, 0, 0, 2, 1);
      add({0}, 0, 0, 1, 0);
    }
    for (int c = 0; c < comps; ++c) {
      for (int ah = c == 0 ? 3 : 2; ah > 0; --ah) add({c}, 1, 63, ah, ah - 1);
    }
  }
  return out;
}

Bytes encode(const Bytes& rgb, int w, int h, int comps, int hs, int vs, int quality, bool optimize,
             int restart_mcus, int restart_rows, int progression = 0) {
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = static_cast<JDIMENSION>(w);
  c.image_height = static_cast<JDIMENSION>(h);
  c.input_components = comps;
  c.in_color_space = comps == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  if (comps == 3) {
    c.comp_info[0].h_samp_factor = hs;
    c.comp_info[0].v_samp_factor = vs;
  }
  c.optimize_coding = optimize ? TRUE : FALSE;
  c.restart_interval = static_cast<unsigned>(restart_mcus);
  c.restart_in_rows = restart_rows;
  std::vector<jpeg_scan_info> script;
  if (progression == 1) jpeg_simple_progression(&c);
  if (progression > 1) {
    script = scan_script(progression, comps);
    c.scan_info = script.data();
    c.num_scans = static_cast<int>(script.size());
  }
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(rgb.data() + static_cast<std::size_t>(c.next_scanline) * w * comps);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  Bytes out(buf, buf + size);
  jpeg_destroy_compress(&c);
  std::free(buf);
  return out;
}

std::vector<Made> made_jpegs() {
  std::vector<Made> out;
  std::mt19937 rng(7);
  const int sizes[][2] = {{67, 45}, {300, 203}, {16, 16}, {9, 130}};
  for (const auto& wh : sizes) {
    const int w = wh[0], h = wh[1];
    for (int noise : {0, 40, 255}) {
      Bytes rgb(static_cast<std::size_t>(w) * h * 3);
      for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
          for (int ch = 0; ch < 3; ++ch) {
            const int base = (x * 255 / w + y * 97 / h + ch * 60) & 255;
            const int v = noise == 0 ? base : base + static_cast<int>(rng() % (2 * noise + 1)) - noise;
            rgb[(static_cast<std::size_t>(y) * w + x) * 3 + ch] = static_cast<std::uint8_t>(v < 0     ? 0
                                                                                            : v > 255 ? 255
                                                                                                      : v);
          }
        }
      }
      Bytes grey(static_cast<std::size_t>(w) * h);
      for (std::size_t i = 0; i < grey.size(); ++i) grey[i] = rgb[3 * i + 1];
      const int sampling[][2] = {{1, 1}, {2, 1}, {2, 2}, {1, 2}};
      for (int quality : {20, 90, 100}) {
        for (bool optimize : {false, true}) {
          for (int restart : {0, 1, 7, -1}) {
            const int mcus = restart > 0 ? restart : 0, rows = restart < 0 ? 1 : 0;
            for (const auto& s : sampling) {
              out.push_back({"made " + std::to_string(w) + "x" + std::to_string(h) + " noise " +
                                 std::to_string(noise) + " q" + std::to_string(quality) +
                                 (optimize ? " opt" : "") + " rst" + std::to_string(restart) + " " +
                                 std::to_string(s[0]) + "x" + std::to_string(s[1]),
                             encode(rgb, w, h, 3, s[0], s[1], quality, optimize, mcus, rows)});
            }
            out.push_back({"made grey " + std::to_string(w) + "x" + std::to_string(h) + " noise " +
                               std::to_string(noise) + " q" + std::to_string(quality) + " rst" +
                               std::to_string(restart),
                           encode(grey, w, h, 1, 1, 1, quality, optimize, mcus, rows)});
          }
        }
        // Progressive (libjpeg optimises its tables): three scan scripts, with and without restarts.
        for (int script = 1; script <= 3; ++script) {
          for (int restart : {0, 1, -1}) {
            const int mcus = restart > 0 ? restart : 0, rows = restart < 0 ? 1 : 0;
            const std::string tag = " noise " + std::to_string(noise) + " q" + std::to_string(quality) +
                                    " progressive " + std::to_string(script) + " rst" +
                                    std::to_string(restart);
            for (int si : {0, 2}) {
              const int* s = sampling[si];
              out.push_back({"made " + std::to_string(w) + "x" + std::to_string(h) + tag + " " +
                                 std::to_string(s[0]) + "x" + std::to_string(s[1]),
                             encode(rgb, w, h, 3, s[0], s[1], quality, true, mcus, rows, script)});
            }
            out.push_back({"made grey " + std::to_string(w) + "x" + std::to_string(h) + tag,
                           encode(grey, w, h, 1, 1, 1, quality, true, mcus, rows, script)});
          }
        }
      }
    }
  }
  return out;
}

std::vector<Made> read_folder(const std::string& dir) {
  std::vector<Made> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* ent = readdir(d)) {
    const std::string name = ent->d_name;
    if (name.empty() || name[0] == '.') continue;
    FILE* f = std::fopen((dir + "/" + name).c_str(), "rb");
    if (f == nullptr) continue;
    Bytes b;
    std::uint8_t chunk[1 << 16];
    std::size_t n;
    while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) b.insert(b.end(), chunk, chunk + n);
    std::fclose(f);
    const bool damaged = dir.find("corrupt") != std::string::npos;
    if (b.size() > 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
      out.push_back({dir + "/" + name, b, damaged});
  }
  closedir(d);
  return out;
}

// Where the first scan's entropy-coded data starts (after the SOS segment); 0 when not found.
std::size_t entropy_start(const Bytes& b) {
  std::size_t i = 2;
  while (i + 4 <= b.size()) {
    if (b[i] != 0xFF) return 0;
    const int marker = b[i + 1];
    const std::size_t len = static_cast<std::size_t>(b[i + 2]) << 8 | b[i + 3];
    if (marker == 0xDA) return i + 2 + len < b.size() ? i + 2 + len : 0;
    i += 2 + len;
  }
  return 0;
}

// ---- 2. mmcore::decode_into with and without libjpeg_huffman ---------------------------------

struct Result {
  mmcore::Status status = mmcore::Status::kOk;
  std::string message;
  Bytes pixels;
};

Result mm_decode(const Bytes& data, mmcore::DecodeOptions options) {
  Result r;
  mmcore::ImageInfo info;
  mmcore::ErrorText error;
  r.status = mmcore::decode_info(data.data(), data.size(), options, &info, &error);
  if (!mmcore::status_ok(r.status)) {
    r.message = error.text;
    return r;
  }
  r.pixels.assign(static_cast<std::size_t>(info.out_width) * info.out_height * info.out_channels, 0);
  mmcore::ImageView view{r.pixels.data(), info.out_width, info.out_height, info.out_channels,
                         static_cast<std::int64_t>(info.out_width) * info.out_channels};
  error.clear();
  r.status = mmcore::decode_into(data.data(), data.size(), options, info, view, &error);
  r.message = error.text;
  if (!mmcore::status_ok(r.status)) r.pixels.clear();  // unspecified on failure
  return r;
}

std::vector<mmcore::DecodeOptions> mm_configs() {
  std::vector<mmcore::DecodeOptions> out;
  mmcore::DecodeOptions o;
  o.exif_orientation = false;
  out.push_back(o);  // full-size RGB, Pillow-exact
  mmcore::DecodeOptions g = o;
  g.pixel = mmcore::PixelFormat::kGray;
  g.pillow_gray = true;
  out.push_back(g);  // exact hashes' grey
  mmcore::DecodeOptions f = o;
  f.pixel = mmcore::PixelFormat::kGray;
  f.min_width = f.min_height = 128;
  f.fast = true;
  out.push_back(f);  // fast hashes
  mmcore::DecodeOptions t = o;
  t.min_width = t.min_height = 8;
  out.push_back(t);  // 1/8 RGB
  return out;
}

void compare_mm(const std::string& name, const Bytes& data, const std::vector<mmcore::DecodeOptions>& configs,
                long* decoded) {
  for (std::size_t k = 0; k < configs.size(); ++k) {
    mmcore::DecodeOptions reference = configs[k];
    reference.libjpeg_huffman = true;
    const Result a = mm_decode(data, configs[k]);
    const Result b = mm_decode(data, reference);
    if (a.status != b.status || a.message != b.message || a.pixels != b.pixels) {
      fail(name + " config " + std::to_string(k) + ": mmcore status " +
           std::to_string(static_cast<int>(a.status)) + " '" + a.message + "' vs libjpeg's " +
           std::to_string(static_cast<int>(b.status)) + " '" + b.message + "'" +
           (a.pixels != b.pixels ? " (pixels differ)" : ""));
    }
    if (mmcore::status_ok(a.status)) ++*decoded;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Made> files = made_jpegs();
  const std::size_t n_made = files.size();
  for (int i = 1; i < argc; ++i) {
    std::vector<Made> more = read_folder(argv[i]);
    files.insert(files.end(), more.begin(), more.end());
  }
  std::printf("%zu JPEGs (%zu made here)\n", files.size(), n_made);

  // 1. libjpeg with and without mmcore's decoder.
  // The decoder is compiled twice (baseline x86-64 and avx2 flags): the default copy runs every
  // config, the baseline copy (where the default is the avx2 one) two of them.
  using mmcore::detail::HuffVariant;
  const bool two_copies = mmcore::detail::jpeg_huff_avx2_available();
  const int plain_configs[][4] = {{1, 0, 0, 1}, {1, 1, 0, 0}, {2, 1, 1, 0},
                                  {4, 0, 0, 0}, {8, 1, 1, 1}, {8, 0, 0, 0}};
  long installed = 0, compared = 0, baseline_copy = 0;
  for (const Made& m : files) {
    for (const auto& cfg : plain_configs) {
      const Plain ref = plain_decode(m.data, cfg[0], cfg[1] != 0, cfg[2] != 0, false);
      for (HuffVariant v : {HuffVariant::kAuto, HuffVariant::kBase}) {
        if (v == HuffVariant::kBase && (!two_copies || cfg[3] == 0)) continue;
        if (v == HuffVariant::kBase) ++baseline_copy;
        const Plain ours = plain_decode(m.data, cfg[0], cfg[1] != 0, cfg[2] != 0, true, v);
        ++compared;
        if (ours.rc == 3) continue;  // multi-scan sequential, arithmetic: libjpeg's decoder ran
        ++installed;
        const std::string what = m.name + " 1/" + std::to_string(cfg[0]) + (cfg[1] ? " grey" : " rgb") +
                                 (v == HuffVariant::kBase ? " (baseline copy)" : "");
        // mmcore's decoder gives up on damage that libjpeg reads without a warning (e.g. a zero
        // run past the 64th coefficient, which libjpeg writes to the last one): only on streams
        // from a folder of damaged files.
        const bool clean = ref.rc == 0 && ref.warnings == 0 && !m.damaged;
        if (ours.rc == 2) {
          if (clean) fail(what + ": mmcore's decoder gave up on a clean stream");
          continue;
        }
        if (ours.rc != ref.rc || ours.warnings != ref.warnings ||
            (ref.rc == 0 && ours.pixels != ref.pixels)) {
          fail(what + ": rc " + std::to_string(ours.rc) + " / " + std::to_string(ref.rc) + ", warnings " +
               std::to_string(ours.warnings) + " / " + std::to_string(ref.warnings) +
               (ours.pixels != ref.pixels ? ", pixels differ" : ""));
        }
      }
    }
  }
  std::printf(
      "libjpeg with / without mmcore's decoder: %ld decodes, %ld with it installed (%ld by its baseline "
      "copy)\n",
      compared, installed, baseline_copy);
  if (installed < compared / 2) fail("mmcore's decoder was installed for under half of the decodes");

  // 2. mmcore::decode_into, as is and damaged.
  const std::vector<mmcore::DecodeOptions> configs = mm_configs();
  long decoded = 0, damaged = 0;
  for (const Made& m : files) compare_mm(m.name, m.data, configs, &decoded);
  std::mt19937 rng(11);
  const std::vector<mmcore::DecodeOptions> two = {configs[0], configs[2]};
  for (std::size_t i = 0; i < files.size(); i += 3) {
    const Made& m = files[i];
    const std::size_t start = entropy_start(m.data);
    if (start == 0 || m.data.size() > (1u << 20)) continue;
    const std::size_t span = m.data.size() - start;
    for (int variant = 0; variant < 18; ++variant) {
      Bytes bad = m.data;
      const std::size_t at = start + rng() % span;
      // Where the stream ends: before a final FF D9, else the end.
      const std::size_t tail = (bad.size() >= 2 && bad[bad.size() - 2] == 0xFF && bad.back() == 0xD9)
                                   ? bad.size() - 2
                                   : bad.size();
      auto insert = [&bad](std::size_t pos, std::initializer_list<std::uint8_t> bytes) {
        bad.insert(bad.begin() + static_cast<std::ptrdiff_t>(pos), bytes);
      };
      switch (variant % 9) {
        case 0: bad[at] ^= static_cast<std::uint8_t>(1u << (rng() % 8)); break;
        case 1:
          for (int j = 0; j < 3; ++j) bad[start + rng() % span] = static_cast<std::uint8_t>(rng());
          break;
        case 2: bad.resize(at); break;
        case 3: insert(at, {0xFF, static_cast<std::uint8_t>(0xD0 + rng() % 8)}); break;
        case 4: bad[at] = 0xFF; break;
        case 5: insert(at, {static_cast<std::uint8_t>(rng())}); break;
        case 6: insert(tail, {0xFF, 0xFF, 0x00}); break;  // libjpeg: one stuffed 0xFF data byte
        case 7: insert(at, {0xFF, 0xFF, 0x00}); break;
        default: {  // an 0xFF fill byte before the first restart marker (JPEG allows it), else before EOI
          std::size_t pos = tail;
          for (std::size_t j = start; j + 1 < tail; ++j) {
            if (bad[j] == 0xFF && bad[j + 1] >= 0xD0 && bad[j + 1] <= 0xD7) {
              pos = j;
              break;
            }
          }
          insert(pos, {0xFF});
          break;
        }
      }
      compare_mm(m.name + " damaged #" + std::to_string(variant) + " at " + std::to_string(at), bad, two,
                 &decoded);
      ++damaged;
    }
  }
  std::printf(
      "decode_into with / without libjpeg_huffman: %zu files x %zu configs, %ld damaged copies x 2, %ld "
      "decoded\n",
      files.size(), configs.size(), damaged, decoded);
  std::printf(failures == 0 ? "PASS\n" : "FAILED (%d)\n", failures);
  return failures == 0 ? 0 : 1;
}
