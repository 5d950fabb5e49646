// C++ test of the quant family (mmcore/quant.h, quant_internal.h): every variant this build has
// and this CPU runs (ref, avx2, avx512) against the scalar ref and a naive oracle.
// - block kernels (int8, int4, binary): bit-exact scores for D sweeping the vector tails, 1..4
//   queries, 1..9 rows and more, extreme values (codes 255 / 15 against queries -128 and 127, the
//   cases that would saturate int16 pair sums), rows ending at an unreadable page;
// - top-k drivers: (score, position) order against a naive sort, ties, k > N padding, N = 0, one
//   to three threads, batches of more than 64 queries; binary also against hamming_knn;
// - the full score matrix (quant_dot_int8_all);
// - the rerank kernel: the ref's float64 sums bit for bit;
// - encoders against a naive loop: half-to-even rounding, clipping, scale 0, NaN/Inf rows refused;
//   the reflected encoders and quant_reflect against the contract's formula (active variant).
// Prints the variants it checked (avx2: with AVX-VNNI where the CPU has it), then PASS or FAIL. Run
// it on a host with AVX-512 VNNI to check that variant.
//
// Build and run (tests/test_quant_cpp.py does this when a build tree exists):
//   g++ -O2 -std=c++17 -Icpp/include -Icpp/src tests/cpp/test_quant.cpp build/<tag>/cpp/libmmcore_cpu.a \
//       $(pkg-config --libs libjpeg libpng libwebp libwebpdemux zlib) -lpthread -o /tmp/test_quant &&
//       /tmp/test_quant
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "mmcore/hamming.h"
#include "mmcore/quant.h"
#include "quant_internal.h"

namespace {

using mmcore::Backend;
using mmcore::detail::QuantCodec;
using mmcore::detail::QuantKernels;

int failures = 0;

void fail(const std::string& what, const char* variant) {
  if (++failures < 30) std::printf("FAIL %s [%s]\n", what.c_str(), variant);
}

// `bytes` of memory whose end touches a PROT_NONE page: a kernel reading past it crashes.
class GuardedBytes {
 public:
  explicit GuardedBytes(std::size_t bytes) {
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    const std::size_t body = (bytes + page - 1) / page * page + page;
    size_ = body + page;
    map_ = static_cast<std::uint8_t*>(
        mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    mprotect(map_ + body, page, PROT_NONE);
    data_ = map_ + body - bytes;
  }
  GuardedBytes(const GuardedBytes&) = delete;
  GuardedBytes& operator=(const GuardedBytes&) = delete;
  ~GuardedBytes() { munmap(map_, size_); }
  std::uint8_t* data() { return data_; }

 private:
  std::uint8_t* map_ = nullptr;
  std::size_t size_ = 0;
  std::uint8_t* data_ = nullptr;
};

int popcount(std::uint64_t x) {
  int c = 0;
  for (; x != 0; x &= x - 1) ++c;
  return c;
}

// Naive scores (larger is better; binary: minus the distance).
std::int32_t naive_int8(const std::uint8_t* c, const std::int8_t* t, int d) {
  std::int64_t s = 0;
  for (int i = 0; i < d; ++i) s += std::int64_t{c[i]} * t[i];
  return static_cast<std::int32_t>(s);
}

std::int32_t naive_int4(const std::uint8_t* c, const std::int8_t* t, int d) {
  std::int64_t s = 0;
  for (int i = 0; i < d; ++i) s += std::int64_t{i % 2 == 0 ? c[i / 2] & 15 : c[i / 2] >> 4} * t[i];
  return static_cast<std::int32_t>(s);
}

std::int32_t naive_binary(const std::uint64_t* c, const std::uint64_t* q, int words) {
  int s = 0;
  for (int w = 0; w < words; ++w) s += popcount(c[w] ^ q[w]);
  return -s;
}

// Codes and queries: random, or extreme (all-max codes, queries of -128 / 127) mixed in.
void fill_codes(std::mt19937_64& rng, std::uint8_t* c, std::size_t n, int mode) {
  for (std::size_t i = 0; i < n; ++i) c[i] = mode == 1 ? 0xff : static_cast<std::uint8_t>(rng());
}

void fill_queries(std::mt19937_64& rng, std::int8_t* t, std::size_t n, int mode) {
  for (std::size_t i = 0; i < n; ++i) {
    t[i] = mode == 1 ? static_cast<std::int8_t>(rng() % 2 ? -128 : 127) : static_cast<std::int8_t>(rng());
  }
  if (mode == 2) std::fill(t, t + n, std::int8_t{-128});
}

enum class Codec { kInt8, kInt4, kBinary };

const char* codec_name(Codec c) {
  return c == Codec::kInt8 ? "int8" : c == Codec::kInt4 ? "int4" : "binary";
}

// d: dimensions (int8, int4) or words (binary). Row bytes and query bytes.
std::int64_t row_bytes(Codec c, int d) {
  return c == Codec::kInt8 ? d : c == Codec::kInt4 ? (d + 1) / 2 : 8 * std::int64_t{d};
}

std::int32_t naive(Codec c, const std::uint8_t* code, const void* q, int d) {
  switch (c) {
    case Codec::kInt8: return naive_int8(code, static_cast<const std::int8_t*>(q), d);
    case Codec::kInt4: return naive_int4(code, static_cast<const std::int8_t*>(q), d);
    case Codec::kBinary: {
      std::vector<std::uint64_t> w(static_cast<std::size_t>(d));
      std::memcpy(w.data(), code, w.size() * 8);
      return naive_binary(w.data(), static_cast<const std::uint64_t*>(q), d);
    }
  }
  return 0;
}

void test_block(const QuantKernels& kern, const char* name, std::mt19937_64& rng) {
  const QuantKernels ref = mmcore::detail::quant_kernels_ref();
  for (Codec codec : {Codec::kInt8, Codec::kInt4, Codec::kBinary}) {
    const QuantCodec& k = codec == Codec::kInt8 ? kern.int8 : codec == Codec::kInt4 ? kern.int4 : kern.binary;
    const QuantCodec& r = codec == Codec::kInt8 ? ref.int8 : codec == Codec::kInt4 ? ref.int4 : ref.binary;
    std::vector<int> dims = {1,  2,  3,  7,   8,   9,   15,  16,  17,  31,  32,   33,
                             63, 64, 65, 127, 128, 129, 255, 256, 257, 768, 1023, 4096};
    if (codec == Codec::kBinary) dims = {1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 17, 24, 25, 33, 64, 65, 100};
    for (int d : dims) {
      for (std::int64_t nb : {1, 2, 3, 4, 5, 7, 9, 33, 64, 70}) {
        for (int nq : {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 32}) {
          if (nq > k.group) continue;
          for (int mode = 0; mode < 3; ++mode) {
            const std::int64_t rb = row_bytes(codec, d);
            GuardedBytes codes(static_cast<std::size_t>(nb * rb));
            fill_codes(rng, codes.data(), static_cast<std::size_t>(nb * rb),
                       codec == Codec::kBinary ? 0 : mode);
            const std::int64_t qb = codec == Codec::kBinary ? 8 * std::int64_t{d} : d;
            std::vector<std::uint8_t> queries(static_cast<std::size_t>(nq * qb));
            if (codec == Codec::kBinary) {
              fill_codes(rng, queries.data(), queries.size(), 0);
            } else {
              fill_queries(rng, reinterpret_cast<std::int8_t*>(queries.data()), queries.size(), mode);
            }
            const std::int64_t stride = mmcore::detail::quant_prepared_stride(
                d,
                codec == Codec::kBinary ? mmcore::detail::kQuantUnitBinary : mmcore::detail::kQuantUnitInt);
            // A group's prepared queries may fill the group's whole room.
            std::vector<std::uint8_t> pk(static_cast<std::size_t>(k.group * stride + 64), 0xcd);
            std::vector<std::uint8_t> pr(pk.size(), 0xcd);
            std::uint8_t* pka = pk.data() + (64 - reinterpret_cast<std::uintptr_t>(pk.data()) % 64) % 64;
            std::uint8_t* pra = pr.data() + (64 - reinterpret_cast<std::uintptr_t>(pr.data()) % 64) % 64;
            k.prepare(queries.data(), nq, d, pka);
            r.prepare(queries.data(), nq, d, pra);
            const std::int64_t ldo = nb + 3;
            std::vector<std::int32_t> got(static_cast<std::size_t>(nq * ldo), -7), want(got.size(), -7);
            k.block(codes.data(), nb, d, pka, nq, got.data(), ldo);
            r.block(codes.data(), nb, d, pra, nq, want.data(), ldo);
            bool ok = got == want;
            for (int g = 0; g < nq && ok; ++g) {
              for (std::int64_t j = 0; j < nb && ok; ++j) {
                ok = want[static_cast<std::size_t>(g * ldo + j)] ==
                     naive(codec, codes.data() + j * rb, queries.data() + g * qb, d);
              }
            }
            if (!ok) {
              fail(std::string(codec_name(codec)) + " block d=" + std::to_string(d) + " nb=" +
                       std::to_string(nb) + " nq=" + std::to_string(nq) + " mode=" + std::to_string(mode),
                   name);
            }
          }
        }
      }
    }
  }
}

struct Pair {
  std::int32_t s;
  std::int64_t j;
};

// Naive top-k (larger score first, ties by smaller position) with the API's padding.
void naive_topk(const std::vector<std::int32_t>& all, std::int64_t n, std::int64_t nq, int k, bool binary,
                std::vector<std::int32_t>* s, std::vector<std::int64_t>* j) {
  s->assign(static_cast<std::size_t>(nq * k),
            binary ? std::numeric_limits<std::int32_t>::max() : std::numeric_limits<std::int32_t>::min());
  j->assign(static_cast<std::size_t>(nq * k), -1);
  for (std::int64_t q = 0; q < nq; ++q) {
    std::vector<Pair> p;
    for (std::int64_t i = 0; i < n; ++i) p.push_back({all[static_cast<std::size_t>(q * n + i)], i});
    std::stable_sort(p.begin(), p.end(), [](const Pair& a, const Pair& b) { return a.s > b.s; });
    for (std::int64_t i = 0; i < std::min<std::int64_t>(k, n); ++i) {
      (*s)[static_cast<std::size_t>(q * k + i)] =
          binary ? -p[static_cast<std::size_t>(i)].s : p[static_cast<std::size_t>(i)].s;
      (*j)[static_cast<std::size_t>(q * k + i)] = p[static_cast<std::size_t>(i)].j;
    }
  }
}

void test_topk(Backend b, const char* name, std::mt19937_64& rng) {
  for (Codec codec : {Codec::kInt8, Codec::kInt4, Codec::kBinary}) {
    for (std::int64_t n : {0, 1, 5, 100, 5000, 20000}) {
      for (int d : {1, 33, 64, 129, 256}) {
        const int dd = codec == Codec::kBinary ? (d + 63) / 64 : d;
        for (std::int64_t nq : {1, 3, 70}) {
          if (n * nq * d > 40'000'000) continue;
          const std::int64_t rb = row_bytes(codec, dd);
          std::vector<std::uint8_t> codes(static_cast<std::size_t>(n * rb + 8));
          fill_codes(rng, codes.data(), codes.size(), 0);
          // Coarse codes: many equal scores, so ties decide.
          if (n > 0 && rng() % 2 == 0) {
            for (std::int64_t i = 0; i < n; ++i) {
              std::memcpy(codes.data() + i * rb, codes.data() + (rng() % 7 % n) * rb,
                          static_cast<std::size_t>(rb));
            }
          }
          const std::int64_t qb = codec == Codec::kBinary ? 8 * std::int64_t{dd} : dd;
          std::vector<std::uint8_t> queries(static_cast<std::size_t>(nq * qb));
          if (codec == Codec::kBinary) {
            fill_codes(rng, queries.data(), queries.size(), 0);
          } else {
            fill_queries(rng, reinterpret_cast<std::int8_t*>(queries.data()), queries.size(), 0);
          }
          std::vector<std::int32_t> all(static_cast<std::size_t>(nq * n));
          for (std::int64_t q = 0; q < nq; ++q)
            for (std::int64_t i = 0; i < n; ++i)
              all[static_cast<std::size_t>(q * n + i)] =
                  naive(codec, codes.data() + i * rb, queries.data() + q * qb, dd);
          for (int k : {1, 10, 257, 6000}) {
            std::vector<std::int32_t> ws;
            std::vector<std::int64_t> wj;
            naive_topk(all, n, nq, k, codec == Codec::kBinary, &ws, &wj);
            for (int threads : {1, 2, 3}) {
              std::vector<std::int32_t> gs(ws.size(), 5);
              std::vector<std::int64_t> gj(wj.size(), 5);
              const auto* q8 = reinterpret_cast<const std::int8_t*>(queries.data());
              if (codec == Codec::kInt8) {
                mmcore::quant_score_int8(codes.data(), n, dd, q8, nq, k, threads, gs.data(), gj.data(), b);
              } else if (codec == Codec::kInt4) {
                mmcore::quant_score_int4(codes.data(), n, dd, q8, nq, k, threads, gs.data(), gj.data(), b);
              } else {
                mmcore::quant_score_binary(reinterpret_cast<const std::uint64_t*>(codes.data()), n, dd,
                                           reinterpret_cast<const std::uint64_t*>(queries.data()), nq, k,
                                           threads, gs.data(), gj.data(), b);
              }
              if (gs != ws || gj != wj) {
                fail(std::string(codec_name(codec)) + " top-k n=" + std::to_string(n) +
                         " d=" + std::to_string(dd) + " nq=" + std::to_string(nq) +
                         " k=" + std::to_string(k) + " threads=" + std::to_string(threads),
                     name);
              }
              if (codec == Codec::kBinary && (dd == 1 || dd == 4) && threads == 2) {
                // The hamming family's kNN gives the same answers (same padding too).
                std::vector<std::int32_t> hs(ws.size());
                std::vector<std::int64_t> hj(wj.size());
                mmcore::hamming_knn(reinterpret_cast<const std::uint64_t*>(codes.data()), nullptr, n,
                                    reinterpret_cast<const std::uint64_t*>(queries.data()), nq, dd, k, 2,
                                    hs.data(), hj.data(), b);
                if (hs != gs || hj != gj) fail("binary top-k differs from hamming_knn", name);
              }
            }
          }
          if (codec == Codec::kInt8) {
            std::vector<std::int32_t> got(all.size(), 3);
            mmcore::quant_dot_int8_all(codes.data(), n, dd,
                                       reinterpret_cast<const std::int8_t*>(queries.data()), nq, 2,
                                       got.data(), b);
            if (got != all) fail("dot_int8_all n=" + std::to_string(n) + " d=" + std::to_string(dd), name);
          }
        }
      }
    }
  }
}

template <class F>
bool throws_invalid(F&& f, const char* needle) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return std::strstr(e.what(), needle) != nullptr;
  }
  return false;
}

void test_encode(std::mt19937_64& rng) {
  for (int d : {1, 7, 64, 65, 128}) {
    const std::int64_t n = 300;
    std::vector<float> x(static_cast<std::size_t>(n * d)), scale(static_cast<std::size_t>(d)),
        offset(scale.size());
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    for (auto& v : x) v = u(rng);
    for (int i = 0; i < d; ++i) {
      scale[static_cast<std::size_t>(i)] = i % 5 == 4 ? 0.0f : 4.0f / 255.0f * (1 + i % 3);
      offset[static_cast<std::size_t>(i)] = -2.0f + 0.1f * (i % 4);
    }
    // Exact half-way points: (x - offset) / scale lands on k + 0.5 and must round to even.
    for (int i = 0; i < d; ++i)
      x[static_cast<std::size_t>(i)] =
          offset[static_cast<std::size_t>(i)] + 2.5f * scale[static_cast<std::size_t>(i)];
    std::vector<std::uint8_t> c8(static_cast<std::size_t>(n * d)),
        c4(static_cast<std::size_t>(n * ((d + 1) / 2)));
    mmcore::quant_encode_int8(x.data(), n, d, scale.data(), offset.data(), 2, c8.data());
    mmcore::quant_encode_int4(x.data(), n, d, scale.data(), offset.data(), 2, c4.data());
    bool ok = true;
    for (std::int64_t r = 0; r < n; ++r) {
      for (int i = 0; i < d; ++i) {
        const float xs = x[static_cast<std::size_t>(r * d + i)], sc = scale[static_cast<std::size_t>(i)];
        const float v = sc == 0.0f ? 0.0f : (xs - offset[static_cast<std::size_t>(i)]) / sc;
        const float w8 = std::rint(std::min(std::max(v, 0.0f), 255.0f)),
                    w4 = std::rint(std::min(std::max(v, 0.0f), 15.0f));
        const int got4 = (c4[static_cast<std::size_t>(r * ((d + 1) / 2) + i / 2)] >> (4 * (i % 2))) & 15;
        ok = ok && c8[static_cast<std::size_t>(r * d + i)] == static_cast<int>(w8) &&
             got4 == static_cast<int>(w4);
      }
      if (d % 2 == 1) ok = ok && (c4[static_cast<std::size_t>(r * ((d + 1) / 2) + d / 2)] >> 4) == 0;
    }
    if (d > 0 && scale[0] != 0.0f) ok = ok && c8[0] == 2;  // 2.5 -> 2 (half to even)
    if (!ok) fail("encode int8/int4 d=" + std::to_string(d), "ref");
    if (d % 64 == 0) {
      std::vector<std::uint64_t> cb(static_cast<std::size_t>(n * d / 64));
      mmcore::quant_encode_binary(x.data(), n, d, offset.data(), 2, cb.data());
      bool okb = true;
      for (std::int64_t r = 0; r < n; ++r)
        for (int i = 0; i < d; ++i) {
          const bool bit = (cb[static_cast<std::size_t>(r * (d / 64) + i / 64)] >> (i % 64)) & 1;
          okb = okb &&
                bit == (x[static_cast<std::size_t>(r * d + i)] - offset[static_cast<std::size_t>(i)] > 0.0f);
        }
      if (!okb) fail("encode binary d=" + std::to_string(d), "ref");
    }
    // A NaN in row 123 and an Inf in row 200: the error names row 123 and nothing is written.
    x[static_cast<std::size_t>(123 * d + d - 1)] = std::nanf("");
    x[static_cast<std::size_t>(200 * d)] = std::numeric_limits<float>::infinity();
    std::fill(c8.begin(), c8.end(), 77);
    if (!throws_invalid(
            [&] { mmcore::quant_encode_int8(x.data(), n, d, scale.data(), offset.data(), 2, c8.data()); },
            "row 123")) {
      fail("NaN row not reported", "ref");
    }
    if (std::any_of(c8.begin(), c8.end(), [](std::uint8_t v) { return v != 77; }))
      fail("encode wrote before refusing", "ref");
    if (!throws_invalid(
            [&] { mmcore::quant_encode_int4(x.data(), n, d, scale.data(), offset.data(), 1, c4.data()); },
            "row 123")) {
      fail("NaN row not reported (int4)", "ref");
    }
  }
  std::vector<float> x(64, 0.5f), bad(64, 1.0f);
  std::vector<std::uint64_t> cb(1);
  std::vector<std::uint8_t> c8(64);
  bad[3] = -1.0f;
  if (!throws_invalid(
          [&] { mmcore::quant_encode_int8(x.data(), 1, 64, bad.data(), bad.data(), 1, c8.data()); },
          "scale[3]")) {
    fail("negative scale not refused", "ref");
  }
  if (!throws_invalid([&] { mmcore::quant_encode_binary(x.data(), 1, 63, bad.data(), 1, cb.data()); },
                      "multiple of 64")) {
    fail("binary d % 64 != 0 not refused", "ref");
  }
  std::int32_t s = 0;
  std::int64_t j = 0;
  if (!throws_invalid([&] { mmcore::quant_score_int8(c8.data(), 1, 64, nullptr, 0, 0, 1, &s, &j); },
                      "k must be")) {
    fail("k = 0 not refused", "ref");
  }
}

// The encoders' levels against level()'s formula one value at a time (nearbyint, ties to even) on
// values chosen to hit every branch of the 16-wide SSE2 path and its scalar tail: exact halves of
// every level, -0.0, values past both ends, scale 0 with x == offset (0 / 0) and x != offset, scales
// so small that the quotient overflows, rows of every length 1..40 and 64..70. Then the reflected
// encoders and quant_reflect against the contract's formula written out (the dot's 8 float64 lanes
// in their tree, c = float32(-2 dot), x + c v rounded per step), and a row the reflection takes past
// float32's range refused by name.
std::uint8_t naive_level(float x, float scale, float offset, float top) {
  if (scale == 0.0f) return 0;
  const volatile float q = (x - offset) / scale;  // volatile: no fusing, no reordering
  return static_cast<std::uint8_t>(std::nearbyint(std::min(std::max(static_cast<float>(q), 0.0f), top)));
}

double naive_dot(const float* x, const float* v, int d) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const int d8 = d / 8 * 8;
  for (int t = 0; t < d8; ++t) lane[t % 8] += static_cast<double>(x[t]) * static_cast<double>(v[t]);
  double tail = 0.0;
  for (int t = d8; t < d; ++t) tail += static_cast<double>(x[t]) * static_cast<double>(v[t]);
  return (((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]))) + tail;
}

void test_levels_and_reflection(std::mt19937_64& rng) {
  std::vector<int> dims;
  for (int d = 1; d <= 40; ++d) dims.push_back(d);
  for (int d = 64; d <= 70; ++d) dims.push_back(d);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (const int d : dims) {
    const std::int64_t n = 97;
    std::vector<float> x(static_cast<std::size_t>(n * d)), scale(static_cast<std::size_t>(d)),
        offset(scale.size()), v(scale.size());
    for (int i = 0; i < d; ++i) {
      const auto k = static_cast<std::size_t>(i);
      switch (i % 6) {
        case 0:
          scale[k] = 1.0f;
          offset[k] = 0.0f;
          break;  // x = level + 0.5 below: exact halves
        case 1:
          scale[k] = 0.0f;
          offset[k] = 0.25f;
          break;
        case 2:
          scale[k] = 1e-38f;
          offset[k] = -1.0f;
          break;  // (x - offset) / scale overflows
        default:
          scale[k] = 0.003f + 0.01f * std::fabs(u(rng));
          offset[k] = 0.5f * u(rng);
          break;
      }
      v[k] = u(rng);
    }
    double norm = 0.0;
    for (const float w : v) norm += static_cast<double>(w) * w;
    for (float& w : v) w = static_cast<float>(w / std::sqrt(norm));
    for (std::int64_t r = 0; r < n; ++r) {
      for (int i = 0; i < d; ++i) {
        float& e = x[static_cast<std::size_t>(r * d + i)];
        const int pick = static_cast<int>((r * 7 + i) % 9);
        if (i % 6 == 0) {
          e = static_cast<float>((r * 3 + i) % 260) - 2.0f + 0.5f;  // every half from -1.5 to 257.5
        } else if (i % 6 == 1) {
          e = pick < 4 ? 0.25f : 0.25f + u(rng);
        } else {
          e = pick == 0 ? -0.0f : pick == 1 ? 1e30f : pick == 2 ? -1e30f : 300.0f * u(rng);
        }
      }
    }
    std::vector<std::uint8_t> c8(static_cast<std::size_t>(n * d)),
        c4(static_cast<std::size_t>(n * ((d + 1) / 2)));
    std::vector<float> xr(x.size());
    for (const bool reflect : {false, true}) {
      if (reflect) {  // moderate values: the reflection keeps them finite
        for (auto& e : x) e = std::max(-1e6f, std::min(1e6f, e));
        mmcore::quant_reflect(x.data(), n, d, v.data(), 2, xr.data());
      }
      mmcore::quant_encode_int8(x.data(), n, d, scale.data(), offset.data(), 2, c8.data(),
                                reflect ? v.data() : nullptr);
      mmcore::quant_encode_int4(x.data(), n, d, scale.data(), offset.data(), 3, c4.data(),
                                reflect ? v.data() : nullptr);
      bool ok = true, reflected_ok = true;
      std::vector<float> row(static_cast<std::size_t>(d));
      for (std::int64_t r = 0; r < n; ++r) {
        const float* xs = x.data() + r * d;
        if (reflect) {
          const auto c = static_cast<float>(-2.0 * naive_dot(xs, v.data(), d));
          for (int i = 0; i < d; ++i) {
            const volatile float p = c * v[static_cast<std::size_t>(i)];
            row[static_cast<std::size_t>(i)] = xs[i] + p;
            reflected_ok = reflected_ok && std::memcmp(&row[static_cast<std::size_t>(i)],
                                                       &xr[static_cast<std::size_t>(r * d + i)], 4) == 0;
          }
        } else {
          std::copy(xs, xs + d, row.begin());
        }
        for (int i = 0; i < d; ++i) {
          const auto k = static_cast<std::size_t>(i);
          const int got4 = (c4[static_cast<std::size_t>(r * ((d + 1) / 2) + i / 2)] >> (4 * (i % 2))) & 15;
          ok = ok &&
               c8[static_cast<std::size_t>(r * d + i)] == naive_level(row[k], scale[k], offset[k], 255.0f) &&
               got4 == naive_level(row[k], scale[k], offset[k], 15.0f);
        }
        if (d % 2 == 1) ok = ok && (c4[static_cast<std::size_t>(r * ((d + 1) / 2) + d / 2)] >> 4) == 0;
      }
      const std::string what = std::string(reflect ? "reflected " : "") + "levels d=" + std::to_string(d);
      if (!ok) fail(what, "active");
      if (!reflected_ok) fail("quant_reflect d=" + std::to_string(d), "active");
    }
  }
  // The dot's order itself: rows whose products are +2^60 and -2^60 in lanes p and q and 1 in lane
  // (or tail dimension) r sum to 1 or 0 depending on which sums meet first, so a variant that adds
  // the lanes in another tree, or puts a dimension in another lane, reflects by another c.
  for (const int dd : {8, 11, 16}) {
    std::vector<float> rows, vv(static_cast<std::size_t>(dd), 0.0f), got;
    for (int i = 0; i < dd; ++i) vv[static_cast<std::size_t>(i)] = i < 8 ? 1073741824.0f : 1.0f;  // 2^30
    for (int p = 0; p < 8; ++p)
      for (int q = 0; q < 8; ++q)
        for (int r = 0; r < dd; ++r) {
          if (q == p || r == p || r == q) continue;
          std::vector<float> row(static_cast<std::size_t>(dd), 0.0f);
          row[static_cast<std::size_t>(p)] = 1073741824.0f;
          row[static_cast<std::size_t>(q)] = -1073741824.0f;
          row[static_cast<std::size_t>(r)] = r < 8 ? 1.0f / 1073741824.0f : 1.0f;
          rows.insert(rows.end(), row.begin(), row.end());
        }
    const std::int64_t nrows = static_cast<std::int64_t>(rows.size()) / dd;
    got.resize(rows.size());
    mmcore::quant_reflect(rows.data(), nrows, dd, vv.data(), 2, got.data());
    int wrong = 0;
    for (std::int64_t r = 0; r < nrows; ++r) {
      const float* xs = rows.data() + r * dd;
      const auto c = static_cast<float>(-2.0 * naive_dot(xs, vv.data(), dd));
      for (int i = 0; i < dd; ++i) {
        const volatile float prod = c * vv[static_cast<std::size_t>(i)];
        const float want = xs[i] + prod;
        wrong += std::memcmp(&want, &got[static_cast<std::size_t>(r * dd + i)], 4) != 0;
      }
    }
    if (wrong) fail("quant_reflect's sum order, d=" + std::to_string(dd), "active");
  }
  // A row whose reflection overflows: refused by name, the others still encoded.
  const int d = 16;
  std::vector<float> x(static_cast<std::size_t>(3 * d), 1.0f), v(static_cast<std::size_t>(d), 0.25f),
      scale(static_cast<std::size_t>(d), 0.01f), offset(static_cast<std::size_t>(d), 0.0f);
  for (int i = 0; i < d; ++i)
    x[static_cast<std::size_t>(d + i)] = 3e38f;  // row 1: 2 (x . v) v is past float32
  std::vector<std::uint8_t> c8(x.size());
  if (!throws_invalid(
          [&] {
            mmcore::quant_encode_int8(x.data(), 3, d, scale.data(), offset.data(), 2, c8.data(), v.data());
          },
          "row 1 of x leaves float32's range")) {
    fail("overflowing reflection not refused", "active");
  }
  // Here c = -2 (x . v) stays finite (1.2e38) and x_0 + c v_0 = 3.72e38 does not.
  std::fill(v.begin(), v.end(), 0.0f);
  v[0] = 0.6f;
  v[1] = -0.8f;
  std::fill(x.begin() + d, x.begin() + 2 * d, 0.0f);
  x[static_cast<std::size_t>(d)] = 3e38f;
  x[static_cast<std::size_t>(d + 1)] = 3e38f;
  if (!throws_invalid(
          [&] {
            mmcore::quant_encode_int4(x.data(), 3, d, scale.data(), offset.data(), 2, c8.data(), v.data());
          },
          "row 1 of x leaves float32's range")) {
    fail("reflected value past float32 (finite c) not refused", "active");
  }
  v[5] = std::numeric_limits<float>::infinity();
  if (!throws_invalid(
          [&] {
            mmcore::quant_encode_int8(x.data(), 3, d, scale.data(), offset.data(), 2, c8.data(), v.data());
          },
          "reflect[5]")) {
    fail("non-finite reflector not refused", "active");
  }
}

// The rerank kernel against the ref, bit for bit (its 8 float64 lanes): D through multiples of 8,
// 1..4 rows, both metrics, values of mixed magnitudes (so that an add in another order, or a
// product fused with its add, changes the rounding); and quant_rerank's whole sum on this backend
// against a plain float64 sum (loose: another order).
void test_rerank(const QuantKernels& kern, Backend b, const char* name, std::mt19937_64& rng) {
  const QuantKernels ref = mmcore::detail::quant_kernels_ref();
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> e(-20, 20);
  constexpr int kRows = mmcore::detail::kQuantRerankRows;
  for (int d8 = 0; d8 <= 72; d8 += 8) {
    std::vector<float> q(static_cast<std::size_t>(d8 + 1)), x(static_cast<std::size_t>(kRows * (d8 + 1)));
    for (float& v : q) v = std::ldexp(u(rng), e(rng));
    for (float& v : x) v = std::ldexp(u(rng), e(rng));
    for (int nr = 1; nr <= kRows; ++nr) {
      const float* rows[kRows];
      for (int r = 0; r < nr; ++r) rows[r] = x.data() + (nr - 1 - r) * d8;
      for (bool l2 : {false, true}) {
        double got[8 * kRows], want[8 * kRows];
        kern.rerank(rows, nr, q.data(), d8, l2, got);
        ref.rerank(rows, nr, q.data(), d8, l2, want);
        if (std::memcmp(got, want, sizeof(double) * 8 * static_cast<std::size_t>(nr)) != 0) {
          fail("rerank d8=" + std::to_string(d8) + " nr=" + std::to_string(nr) + (l2 ? " l2" : " dot"), name);
        }
      }
    }
  }
  const int n = 50, d = 37, nq = 3, m = 9, k = 4;
  std::vector<float> x(static_cast<std::size_t>(n * d)), q(static_cast<std::size_t>(nq * d));
  for (float& v : x) v = u(rng);
  for (float& v : q) v = u(rng);
  std::vector<std::int64_t> cand(static_cast<std::size_t>(nq * m));
  for (std::size_t i = 0; i < cand.size(); ++i) cand[i] = static_cast<std::int64_t>((i * 7) % n);
  for (bool l2 : {false, true}) {
    std::vector<float> s(static_cast<std::size_t>(nq * k));
    std::vector<std::int64_t> p(static_cast<std::size_t>(nq * k));
    mmcore::quant_rerank(x.data(), n, d, q.data(), nq, cand.data(), m, k, l2, 2, s.data(), p.data(), b);
    for (int g = 0; g < nq; ++g) {
      for (int i = 0; i < k; ++i) {
        const float* v = x.data() + p[static_cast<std::size_t>(g * k + i)] * d;
        double plain = 0.0;
        for (int t = 0; t < d; ++t) {
          const double a = v[t], w = q[static_cast<std::size_t>(g * d + t)];
          plain += l2 ? (a - w) * (a - w) : a * w;
        }
        if (std::fabs(plain - s[static_cast<std::size_t>(g * k + i)]) > 1e-5) fail("quant_rerank sum", name);
      }
    }
  }
}

}  // namespace

int main() {
  std::mt19937_64 rng(5);
  test_encode(rng);
  test_levels_and_reflection(rng);
  for (Backend b : {Backend::kRef, Backend::kAvx2, Backend::kAvx512}) {
    const char* name = mmcore::backend_name(b);
    if (!mmcore::backend_compiled(b) || !mmcore::backend_supported(b)) {
      std::printf("%s: not checked (%s)\n", name,
                  mmcore::backend_compiled(b) ? "this CPU lacks it" : "not compiled into this build");
      continue;
    }
    const int before = failures;
    const QuantKernels kern = mmcore::detail::quant_kernels(b);
    if (kern.backend != b) fail("quant_kernels fell back", name);
    test_block(kern, name, rng);
    test_rerank(kern, b, name, rng);
    test_topk(b, name, rng);
    std::printf("%s: checked, %s\n", name, failures == before ? "ok" : "FAILED");
  }
  // This file is compiled without the library's MMCORE_HAVE_* definitions, so these come from the
  // library. The avx512 variant scores batches of 9+ queries with AMX tiles where they run
  // (MMCORE_NO_AMX=1: with its vector kernels), and the avx2 variant scores int8 / int4 with AVX-VNNI
  // where the CPU has it (MMCORE_NO_AVX_VNNI=1: with vpmaddwd / vpmaddubsw); tests/test_quant_cpp.py
  // runs the switched-off kernels too.
  const bool amx = mmcore::backend_supported(Backend::kAvx512) &&
                   mmcore::detail::quant_kernels(Backend::kAvx512).int8.group > mmcore::detail::kQuantGroup;
  std::printf("amx: %s\n", amx ? "used" : "not used");
  std::printf("avx-vnni: %s\n", mmcore::detail::quant_avx_vnni_usable() ? "used" : "not used");
  std::printf("active backend: %s\n", mmcore::backend_name(mmcore::active_backend()));
  std::printf("%s\n", failures == 0 ? "PASS" : "FAIL");
  return failures == 0 ? 0 : 1;
}
