// cuda/topk.cu, cuda/quant.cu and cuda/hamming.cu run on the CPU: the same schedule (run_topk),
// the same launch decisions and the same __host__ __device__ per-thread code
// (search_gpu_internal.h), every thread of a phase before the next phase, as the block barrier
// orders them. Shared memory starts as garbage. Used by tests/cpp/test_search_gpu_emu.cpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

#include "hamming_mih_internal.h"
#include "search_gpu_internal.h"

namespace mmcore_test {

namespace g = mmcore::gpu_detail;
namespace md = mmcore::detail;

struct SearchEmu {
  bool reverse = false;  ///< run each phase's threads backwards
  std::int32_t multiprocessors = 4;
  bool tensor_cores = true;       ///< an sm_80+ device: the int8 tensor-core kernel where it applies
  std::int64_t mih_capacity = 0;  ///< the MIH join's first pair buffer (0: cuda/hamming.cu's choice)
  mutable int mih_attempts = 0;   ///< passes the last MIH join made (2: the buffer was grown)
  g::TopkShape shape;             ///< n, nq, k filled by the calls; the rest may be overridden

  // -- kernels ----------------------------------------------------------------------------------
  template <class F>
  void threads(int n, F f) const {
    for (int i = 0; i < n; ++i) f(reverse ? n - 1 - i : i);
  }

  void select_block(const g::SelectArgs& a, std::int64_t seg, std::int64_t q) const {
    std::vector<g::SelectShared> holder(1);
    g::SelectShared& sh = holder[0];
    std::memset(static_cast<void*>(&sh), 0xCD, sizeof sh);
    const int T = g::kSelectThreads;
    threads(T, [&](int t) { g::select_init(sh, t, T); });
    const auto sort = [&]() {
      for (int size = 2; size <= g::kSelectCap; size <<= 1)
        for (int stride = size >> 1; stride > 0; stride >>= 1)
          threads(T, [&](int t) { g::bitonic_step(sh.buf, size, stride, t, T); });
    };
    const std::int64_t rounds = g::select_rounds(a, seg);
    for (std::int64_t r = 0; r < rounds; ++r) {
      threads(T, [&](int t) { g::select_scan(a, sh, seg, q, r, t, T); });
      if (g::select_must_sort(sh)) {
        sort();
        threads(T, [&](int t) { g::select_keep(sh, a.k, t, T); });
      }
    }
    sort();
    threads(T, [&](int t) { g::select_store(a, sh, seg, q, t, T); });
  }

  void int8_scores(const std::uint8_t* codes, std::int64_t rows, std::int32_t d, const std::int8_t* queries,
                   std::int64_t nqg, const std::int32_t* qsum, std::int32_t* scores, std::int64_t ld) const {
    if (rows <= 0 || nqg <= 0) return;
    const int nq_stream = g::int8_stream_nq(d, nqg, g::aligned16(codes) && g::aligned16(queries));
    if (nq_stream > 0) {
      switch (nq_stream) {
        case 1: stream<1>(codes, rows, d, queries, nqg, qsum, scores, ld); break;
        case 2: stream<2>(codes, rows, d, queries, nqg, qsum, scores, ld); break;
        case 4: stream<4>(codes, rows, d, queries, nqg, qsum, scores, ld); break;
        default: stream<8>(codes, rows, d, queries, nqg, qsum, scores, ld); break;
      }
      return;
    }
    if (g::int8_mma_usable(d, nqg, g::aligned16(codes) && g::aligned16(queries), tensor_cores,
                           std::size_t{1} << 30)) {
      mma(codes, rows, d, queries, nqg, scores, ld);
      return;
    }
    const g::TileArgs a{codes, queries,
                        rows,  static_cast<std::int32_t>(nqg),
                        d,     d % 16 == 0 && g::aligned16(codes) && g::aligned16(queries)};
    const std::int64_t bx = (rows + g::kTileRows - 1) / g::kTileRows;
    const std::int64_t by = (nqg + g::kTileQueries - 1) / g::kTileQueries;
    std::vector<g::TileShared> holder(1);
    g::TileShared& sh = holder[0];
    std::vector<std::int32_t> acc(static_cast<std::size_t>(g::kTileThreads) * 16);
    const std::int32_t dw = (d + 3) / 4;
    for (std::int64_t y = 0; y < by; ++y) {
      for (std::int64_t x = 0; x < bx; ++x) {
        std::memset(static_cast<void*>(&sh), 0xCD, sizeof sh);
        std::fill(acc.begin(), acc.end(), 0);
        const std::int64_t row0 = x * g::kTileRows;
        const std::int32_t q0 = static_cast<std::int32_t>(y) * g::kTileQueries;
        for (std::int32_t w0 = 0; w0 < dw; w0 += g::kTileWords) {
          threads(g::kTileThreads, [&](int t) { g::tile_load(a, sh, row0, q0, w0, t, g::kTileThreads); });
          threads(g::kTileThreads, [&](int t) {
            g::tile_compute(sh, t, *reinterpret_cast<std::int32_t (*)[4][4]>(acc.data() + 16 * t));
          });
        }
        threads(g::kTileThreads, [&](int t) {
          g::tile_store(a, qsum, row0, q0, t,
                        *reinterpret_cast<const std::int32_t (*)[4][4]>(acc.data() + 16 * t), scores, ld);
        });
      }
    }
  }

  /// cuda/quant.cu's int8_mma_kernel: each block's query fill, then its tiles of rows (grid-stride
  /// over the tiles, as the persistent grid runs them), warp by warp, lane by lane, with the
  /// instruction emulated from its documented fragment layout.
  void mma(const std::uint8_t* codes, std::int64_t rows, std::int32_t d, const std::int8_t* queries,
           std::int64_t nqg, std::int32_t* scores, std::int64_t ld) const {
    const std::int32_t chunks = d / g::kMmaChunk;
    std::vector<std::uint8_t> holder(g::mma_shared_bytes(d) + 16);
    std::uint8_t* sq = holder.data() + (16 - reinterpret_cast<std::uintptr_t>(holder.data()) % 16) % 16;
    const std::int64_t tiles = (rows + g::kMmaBlockRows - 1) / g::kMmaBlockRows;
    const std::int64_t blocks = std::min<std::int64_t>(tiles, 2LL * multiprocessors);  // a resident wave
    const auto nq = static_cast<std::int32_t>(nqg);
    std::vector<std::int32_t> acc(32 * 64);  // [lane][mt][nt][4]
    for (std::int32_t q0 = 0; q0 < nq; q0 += g::kMmaQueries) {
      std::memset(sq, 0xCD, g::mma_shared_bytes(d));
      threads(g::kMmaThreads, [&](int t) { g::mma_fill_queries(queries, nq, d, q0, sq, t, g::kMmaThreads); });
      for (std::int64_t b = 0; b < blocks; ++b) {
        for (std::int64_t tile = b; tile < tiles; tile += blocks) {
          for (int warp = 0; warp < g::kMmaWarps; ++warp) {
            const std::int64_t row0 = tile * g::kMmaBlockRows + warp * g::kMmaWarpRows;
            std::fill(acc.begin(), acc.end(), 0);
            for (std::int32_t c = 0; c < chunks; ++c) {
              std::uint32_t x[32][4][4];
              for (int lane = 0; lane < 32; ++lane) g::mma_load_codes(codes, rows, d, row0, c, lane, x[lane]);
              for (int mt = 0; mt < 4; ++mt) {
                std::uint32_t w[32][4], v[32][4];
                for (int lane = 0; lane < 32; ++lane)
                  g::mma_load_queries(sq, d, mt, c, lane, w[lane], v[lane]);
                for (int s = 0; s < 2; ++s) {
                  for (int nt = 0; nt < 4; ++nt) {
                    std::uint32_t a[32][4], bf[32][2];
                    std::int32_t dd[32][4];
                    for (int lane = 0; lane < 32; ++lane) {
                      g::mma_fragments(w[lane], v[lane], x[lane][nt], s, a[lane], bf[lane]);
                      for (int i = 0; i < 4; ++i) dd[lane][i] = acc[lane * 64 + mt * 16 + nt * 4 + i];
                    }
                    g::mma_m16n8k32_warp(dd, a, bf);
                    for (int lane = 0; lane < 32; ++lane)
                      for (int i = 0; i < 4; ++i) acc[lane * 64 + mt * 16 + nt * 4 + i] = dd[lane][i];
                  }
                }
              }
            }
            for (int lane = 0; lane < 32; ++lane)
              g::mma_store(*reinterpret_cast<const std::int32_t (*)[4][4][4]>(acc.data() + lane * 64), row0,
                           rows, q0, nq, lane, scores, ld);
          }
        }
      }
    }
  }

  template <int NQ>
  void stream(const std::uint8_t* codes, std::int64_t rows, std::int32_t d, const std::int8_t* queries,
              std::int64_t nq, const std::int32_t* qsum, std::int32_t* scores, std::int64_t ld) const {
    const int group = g::stream_group(d);
    const std::int64_t rpb = g::kStreamThreads / group;
    std::int64_t blocks = (rows + rpb - 1) / rpb;
    if (blocks > 16LL * multiprocessors) blocks = 16LL * multiprocessors;
    const std::int32_t dw = d / 4;
    std::vector<std::uint32_t> qwords(static_cast<std::size_t>(NQ) * dw, 0xCDCDCDCDu);
    const std::uint32_t* qsrc = reinterpret_cast<const std::uint32_t*>(queries);
    for (std::int32_t i = 0; i < NQ * dw; ++i) qwords[i] = i / dw < nq ? qsrc[i] : 0u;
    std::vector<std::int32_t> part(static_cast<std::size_t>(g::kStreamThreads) * NQ);
    for (std::int64_t b = 0; b < blocks; ++b) {
      for (std::int64_t base = b * rpb; base < rows; base += blocks * rpb) {
        threads(g::kStreamThreads, [&](int t) {
          std::int32_t* acc = part.data() + static_cast<std::size_t>(t) * NQ;
          for (int j = 0; j < NQ; ++j) acc[j] = 0;
          const std::int64_t row = base + t / group;
          if (row < rows)
            g::int8_stream_partial<NQ>(codes + row * d, d, qwords.data(), t % group, group, acc);
        });
        for (int t0 = 0; t0 < g::kStreamThreads; t0 += group) {  // the shuffle reduction
          const std::int64_t row = base + t0 / group;
          if (row >= rows) continue;
          for (int j = 0; j < NQ && j < nq; ++j) {
            std::int32_t s = 0;
            for (int l = 0; l < group; ++l) s += part[static_cast<std::size_t>(t0 + l) * NQ + j];
            scores[j * ld + row] = s + 128 * qsum[j];
          }
        }
      }
    }
  }

  void binary_scores(const std::uint64_t* codes, std::int64_t rows, std::int32_t words,
                     const std::uint64_t* queries, std::int64_t nqg, std::int32_t* scores,
                     std::int64_t ld) const {
    const std::int32_t qgroup = g::binary_query_group(words);
    for (std::int64_t q0 = 0; q0 < nqg; q0 += qgroup) {
      const std::int64_t nqb = nqg - q0 < qgroup ? nqg - q0 : qgroup;
      std::vector<std::uint64_t> sq(queries + q0 * words, queries + (q0 + nqb) * words);
      for (std::int64_t row = 0; row < rows; ++row)
        for (std::int64_t j = 0; j < nqb; ++j)
          scores[(q0 + j) * ld + row] = g::binary_score(codes + row * words, sq.data() + j * words, words);
    }
  }

  // -- the schedule ------------------------------------------------------------------------------
  struct Exec {
    const SearchEmu* emu;
    std::function<void(std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int32_t*, std::int64_t)>
        score_cb;
    std::int32_t k;
    bool binary;
    std::int32_t* out_scores;
    std::int64_t* out_idx;
    bool zero_keys(std::uint64_t* keys, std::int64_t count) {
      std::memset(keys, 0, static_cast<std::size_t>(count) * 8);
      return true;
    }
    bool score(std::int64_t q0, std::int64_t nqg, std::int64_t row0, std::int64_t rows, std::int32_t* s,
               std::int64_t ld) {
      score_cb(q0, nqg, row0, rows, s, ld);
      return true;
    }
    bool select(const g::SelectArgs& a, std::int64_t segments, std::int64_t nqg) {
      for (std::int64_t q = 0; q < nqg; ++q)
        for (std::int64_t s = 0; s < segments; ++s)
          emu->select_block(a, emu->reverse ? segments - 1 - s : s, q);
      return true;
    }
    bool finish(const std::uint64_t* keys, std::int64_t stride, std::int64_t q0, std::int64_t nqg) {
      for (std::int64_t q = 0; q < nqg; ++q)
        for (std::int32_t i = 0; i < k; ++i) {
          const std::uint64_t key = keys[q * stride + i];
          out_scores[(q0 + q) * k + i] = g::key_output(key, binary);
          out_idx[(q0 + q) * k + i] = g::key_pos(key);
        }
      return true;
    }
  };
  void topk(std::int64_t n, std::int64_t nq, std::int32_t k, bool binary,
            const decltype(Exec::score_cb)& score, std::int32_t* out_scores, std::int64_t* out_idx) {
    shape.n = n;
    shape.nq = nq;
    shape.k = k;
    if (nq == 0) return;
    const g::TopkPlan p = g::plan_topk(shape);
    std::vector<std::int32_t> scores(static_cast<std::size_t>(p.score_elems), -0x32323233);
    std::vector<std::uint64_t> a(static_cast<std::size_t>(p.key_elems), 0xEEEEEEEEEEEEEEEEULL);
    std::vector<std::uint64_t> b(static_cast<std::size_t>(p.key_elems), 0xEEEEEEEEEEEEEEEEULL);
    Exec ex;
    ex.emu = this;
    ex.score_cb = score;
    ex.k = k;
    ex.binary = binary;
    ex.out_scores = out_scores;
    ex.out_idx = out_idx;
    g::run_topk(ex, shape, p, scores.data(), a.data(), b.data());
  }

  void int8_topk(const std::uint8_t* codes, std::int64_t n, std::int32_t d, const std::int8_t* queries,
                 std::int64_t nq, std::int32_t k, std::int32_t* out_scores, std::int64_t* out_idx) {
    std::vector<std::int32_t> qsum(static_cast<std::size_t>(nq));
    for (std::int64_t q = 0; q < nq; ++q) qsum[q] = g::query_sum(queries + q * d, d);
    topk(
        n, nq, k, false,
        [&](std::int64_t q0, std::int64_t nqg, std::int64_t row0, std::int64_t rows, std::int32_t* s,
            std::int64_t ld) {
          int8_scores(codes + row0 * d, rows, d, queries + q0 * d, nqg, qsum.data() + q0, s, ld);
        },
        out_scores, out_idx);
  }

  /// cuda/hamming.cu's pairs kernel and its driver: the counting pass, the exclusive scan, the
  /// writing pass (lanes in reverse order: each lane's slot comes from the ballot, not from the order
  /// of the writes). offsets gets nrows + 1 entries; first may be null.
  void pairs(const std::uint64_t* rows, std::int64_t nrows, const std::uint64_t* cols, std::int64_t ncols,
             std::int32_t words, std::int32_t r, bool self_join, std::vector<std::int64_t>* offsets,
             std::vector<std::int64_t>* first, std::vector<std::int64_t>* second,
             std::vector<std::int32_t>* dist) const {
    offsets->assign(static_cast<std::size_t>(nrows) + 1, 0);
    std::int32_t d[32];
    const auto warp_step = [&](std::int64_t a, std::int64_t b0) {
      std::uint32_t mask = 0;
      for (int lane = 0; lane < 32; ++lane)
        if (g::pair_match(rows + a * words, cols, words, b0 + lane, ncols, r, &d[lane])) mask |= 1u << lane;
      return mask;
    };
    std::int64_t total = 0;
    for (std::int64_t a = 0; a < nrows; ++a) {  // pass 1 and the scan
      std::int64_t done = 0;
      for (std::int64_t b0 = g::pair_first_column(self_join, a); b0 < ncols; b0 += 32)
        done += g::popcount64(warp_step(a, b0));
      (*offsets)[static_cast<std::size_t>(a)] = total;
      total += done;
    }
    (*offsets)[static_cast<std::size_t>(nrows)] = total;
    if (first != nullptr) first->assign(static_cast<std::size_t>(total), -7);
    second->assign(static_cast<std::size_t>(total), -7);
    dist->assign(static_cast<std::size_t>(total), -7);
    for (std::int64_t a = 0; a < nrows; ++a) {  // pass 2
      std::int64_t done = (*offsets)[static_cast<std::size_t>(a)];
      for (std::int64_t b0 = g::pair_first_column(self_join, a); b0 < ncols; b0 += 32) {
        const std::uint32_t mask = warp_step(a, b0);
        for (int lane = 31; lane >= 0; --lane)
          if (mask >> lane & 1u)
            g::pair_store(done, mask, lane, a, b0 + lane, d[lane], first != nullptr ? first->data() : nullptr,
                          second->data(), dist->data());
        done += g::popcount64(mask);
      }
    }
  }

  /// cuda/hamming.cu's warp_append: the lanes in `hits` get slots *counter, *counter + 1, ... in
  /// lane order (visited here in reverse: the slot comes from the mask, not the order).
  template <class Store>
  static void warp_append(std::uint32_t hits, std::uint64_t* counter, Store store) {
    const std::uint64_t base = *counter;
    *counter += static_cast<std::uint64_t>(g::popcount64(hits));
    for (int lane = 31; lane >= 0; --lane)
      if (hits >> lane & 1u)
        store(lane, base + static_cast<std::uint64_t>(g::popcount64(hits & ((1u << lane) - 1u))));
  }

  /// cuda/hamming.cu's mih_table_build: substring c's keys, a stable sort of the positions by key
  /// (cub's radix sort is stable), the codes gathered in that order, the offsets (from the
  /// per-thread code, the table starting as garbage).
  void mih_table(const std::uint64_t* codes, std::int64_t n, std::int32_t words, const md::MihPlan& plan,
                 int c, std::vector<std::uint32_t>* perm, std::vector<std::uint64_t>* sorted,
                 std::vector<std::uint32_t>* offsets) const {
    const int len = plan.len[c];
    const std::int64_t slots = std::int64_t{1} << len;
    std::vector<std::uint32_t> key(static_cast<std::size_t>(n));
    perm->resize(static_cast<std::size_t>(n));
    threads(static_cast<int>(n), [&](int i) {
      key[i] = md::substring_of(codes + static_cast<std::int64_t>(i) * words, plan.lo[c], len);
      (*perm)[i] = static_cast<std::uint32_t>(i);
    });
    std::stable_sort(perm->begin(), perm->end(),
                     [&](std::uint32_t x, std::uint32_t y) { return key[x] < key[y]; });
    std::vector<std::uint32_t> sorted_keys(static_cast<std::size_t>(n));
    sorted->assign(static_cast<std::size_t>(n * words), 0);
    for (std::int64_t j = 0; j < n; ++j) {
      sorted_keys[j] = key[(*perm)[j]];
      for (std::int32_t w = 0; w < words; ++w) (*sorted)[j * words + w] = codes[(*perm)[j] * words + w];
    }
    offsets->assign(static_cast<std::size_t>(slots) + 1, 0xCDCDCDCDu);
    threads(static_cast<int>(n + 1),
            [&](int j) { md::mih_offsets_step(sorted_keys.data(), n, slots, j, offsets->data()); });
  }

  /// cuda/hamming.cu's sort_join_pairs and mih_split_kernel: the found pairs by (a, b), split.
  static void sort_pairs(const std::vector<std::uint64_t>& keys, const std::vector<std::int32_t>& dists,
                         std::uint64_t found, std::vector<std::int64_t>* first,
                         std::vector<std::int64_t>* second, std::vector<std::int32_t>* dist) {
    std::vector<std::pair<std::uint64_t, std::int32_t>> all;
    for (std::uint64_t i = 0; i < found; ++i) all.emplace_back(keys[i], dists[i]);
    std::sort(all.begin(), all.end());
    first->clear();
    second->clear();
    dist->clear();
    for (const auto& x : all) {
      first->push_back(static_cast<std::int64_t>(x.first >> 32));
      second->push_back(static_cast<std::int64_t>(x.first & 0xffffffffu));
      dist->push_back(x.second);
    }
  }

  /// The append-then-sort searches (join_mih, join_tc, radius_tc): pass(keys, dists, capacity,
  /// found) appends at `found` (kept while within capacity: mih_capacity when set, else `room`); when
  /// more were found the buffer grows to the count and the pass runs again (mih_attempts: the passes
  /// made). Returns the results' count.
  template <class Pass>
  std::uint64_t appended(std::uint64_t room, std::vector<std::uint64_t>* keys,
                         std::vector<std::int32_t>* dists, Pass pass) const {
    std::uint64_t capacity = mih_capacity > 0 ? static_cast<std::uint64_t>(mih_capacity) : room;
    std::uint64_t found = 0;
    for (mih_attempts = 1; mih_attempts <= 2; ++mih_attempts) {
      keys->assign(capacity, 0xDEADBEEFULL);
      dists->assign(capacity, -7);
      found = 0;
      pass(*keys, *dists, capacity, found);
      if (found <= capacity) break;
      capacity = found;
    }
    return found;
  }

  /// A join by appended(): room for max(n, 65536) at first, then the pairs sorted by (a, b).
  template <class Pass>
  void appended_join(std::int64_t n, std::vector<std::int64_t>* first, std::vector<std::int64_t>* second,
                     std::vector<std::int32_t>* dist, Pass pass) const {
    std::vector<std::uint64_t> keys;
    std::vector<std::int32_t> dists;
    const std::uint64_t found = appended(std::max<std::uint64_t>(n, 65536), &keys, &dists, pass);
    sort_pairs(keys, dists, found, first, second, dist);
  }

  /// cuda/hamming.cu's join_mih: per searched substring the table (a stable sort of the keys, the
  /// codes gathered, offsets and item starts from the same per-thread code), then the warps' items
  /// in reverse order, each match appended at an atomic counter's slot (kept when within the
  /// buffer); a buffer too small is grown to the count and the whole join run again; the pairs
  /// sorted by key.
  void join_mih(const std::uint64_t* codes, std::int64_t n, std::int32_t words, std::int32_t r,
                const md::MihPlan& plan, std::vector<std::int64_t>* first, std::vector<std::int64_t>* second,
                std::vector<std::int32_t>* dist) const {
    appended_join(n, first, second, dist,
                  [&](std::vector<std::uint64_t>& keys, std::vector<std::int32_t>& dists,
                      std::uint64_t capacity, std::uint64_t& found) {
                    for (int c = 0; c < plan.m; ++c) {
                      if (plan.radius[c] < 0) continue;
                      const int len = plan.len[c];
                      const std::int64_t slots = std::int64_t{1} << len;
                      const std::vector<std::uint32_t> masks = md::ball_masks(len, plan.radius[c]);
                      std::vector<std::uint32_t> perm, offsets;
                      std::vector<std::uint64_t> sorted;
                      mih_table(codes, n, words, plan, c, &perm, &sorted, &offsets);
                      std::vector<std::uint32_t> chunks(static_cast<std::size_t>(slots) + 1),
                          start(chunks.size());
                      threads(static_cast<int>(slots + 1),
                              [&](int u) { chunks[u] = md::mih_chunks(offsets.data(), slots, u); });
                      std::uint32_t acc = 0;
                      for (std::size_t u = 0; u < chunks.size(); ++u) {
                        start[u] = acc;
                        acc += chunks[u];
                      }
                      const std::uint32_t items = start[static_cast<std::size_t>(slots)];
                      threads(static_cast<int>(items), [&](int item) {
                        const auto i = static_cast<std::uint32_t>(item);
                        const std::int64_t u = md::mih_item_bucket(start.data(), slots, i);
                        for (const std::uint32_t mask : masks) {
                          md::MihSpan sp;
                          if (!md::mih_span(offsets.data(), start.data(), u, i, mask, &sp)) continue;
                          for (std::int64_t p0 = 0; p0 < sp.pairs(); p0 += 32) {
                            std::uint32_t hits = 0;
                            std::int64_t ia[32], ib[32];
                            std::int32_t d[32];
                            for (int lane = 0; lane < 32; ++lane) {
                              const std::int64_t p = p0 + lane;
                              if (p < sp.pairs() && md::mih_span_pair(sp, p, &ia[lane], &ib[lane]) &&
                                  md::mih_pair_match(plan, c, sorted.data() + ia[lane] * words,
                                                     sorted.data() + ib[lane] * words, words, r, &d[lane]))
                                hits |= 1u << lane;
                            }
                            warp_append(hits, &found, [&](int lane, std::uint64_t slot) {
                              if (slot < capacity) {
                                keys[slot] = md::mih_pair_key(perm[ia[lane]], perm[ib[lane]]);
                                dists[slot] = d[lane];
                              }
                            });
                          }
                        }
                      });
                    }
                  });
  }

  /// SearchGpu::hamming_join: the plan (gpu_join_plan, method 0 auto, 1 brute, 2 MIH), then MIH or
  /// the brute-force pairs.
  void hamming_join(const std::uint64_t* codes, std::int64_t n, std::int32_t words, std::int32_t r,
                    std::vector<std::int64_t>* first, std::vector<std::int64_t>* second,
                    std::vector<std::int32_t>* dist, int method = 0) const {
    const std::int32_t rc = r < 64 * words ? r : 64 * words;
    const md::MihPlan plan = md::gpu_join_plan(n, words, rc, method);
    if (plan.m > 0) {
      join_mih(codes, n, words, rc, plan, first, second, dist);
      return;
    }
    if (g::knn_mma_usable(tensor_cores, knn_mma_on, words, n)) {  // as cuda/hamming.cu
      join_tc(codes, n, words, rc, first, second, dist);
      return;
    }
    std::vector<std::int64_t> offsets;
    pairs(codes, n, codes, n, words, r, true, &offsets, first, second, dist);
  }

  /// knn_mma_scan_kernel's work on the CPU: blocks over (x: tiles, striding; y: groups of
  /// kKnnMmaQueries queries), in reverse when asked; per tile (from first_tile(q0) + x) the block's
  /// threads stage the rows, then each warp with queries scores the tile's 8-row n-tiles, the
  /// instruction emulated from its fragment layout; keep(q, row, distance) for every lane's
  /// accumulator within the rows and queries (lanes in reverse when asked).
  template <class FirstTile, class Keep>
  void tc_scan(const std::uint64_t* codes, std::int64_t n, std::int32_t words, const std::uint64_t* queries,
               std::int64_t nq, FirstTile first_tile, Keep keep) const {
    const auto* qw = reinterpret_cast<const std::uint32_t*>(queries);
    const std::int64_t tiles = (n + g::kKnnMmaRows - 1) / g::kKnnMmaRows;
    const std::int64_t grid_x = std::min<std::int64_t>(tiles, 8LL * multiprocessors);
    const std::int64_t grid_y = (nq + g::kKnnMmaQueries - 1) / g::kKnnMmaQueries;
    const int stride = g::knn_mma_stride(words);
    std::vector<std::uint32_t> tile(static_cast<std::size_t>(g::kKnnMmaRows * stride));
    std::vector<std::uint32_t> a(2 * 8 * 32 * 4);  // [m][k-step][lane][4] (words <= 4)
    std::uint32_t b[32][2];
    std::int32_t acc[2][32][4];
    for (std::int64_t bi = 0; bi < grid_x * grid_y; ++bi) {
      const std::int64_t blk = reverse ? grid_x * grid_y - 1 - bi : bi;
      const std::int64_t bx = blk % grid_x, q0 = (blk / grid_x) * g::kKnnMmaQueries;
      for (std::int64_t ti = first_tile(q0) + bx; ti < tiles; ti += grid_x) {
        const std::int64_t row0 = ti * g::kKnnMmaRows;
        std::fill(tile.begin(), tile.end(), 0xCDCDCDCDu);
        threads(32 * g::kKnnMmaWarps, [&](int tid) {
          if (tid >= g::kKnnMmaRows) return;
          std::uint64_t v[4];
          g::knn_mma_load(codes, n, words, row0, tid, v);
          g::knn_mma_store(v, words, tid, tile.data());
        });
        for (int warp = 0; warp < g::kKnnMmaWarps; ++warp) {
          const std::int64_t wq0 = q0 + 32 * warp;
          if (wq0 >= nq) continue;
          const auto frag = [&](int m, int kk) {
            return reinterpret_cast<std::uint32_t (*)[4]>(a.data() + ((m * 8 + kk) * 32) * 4);
          };
          for (int m = 0; m < 2; ++m)
            for (int kk = 0; kk < 2 * words; ++kk)
              for (int lane = 0; lane < 32; ++lane)
                g::knn_mma_a(qw, words, wq0, nq, m, kk, lane, frag(m, kk)[lane]);
          for (int nt = 0; nt < g::kKnnMmaRows / 8; ++nt) {
            std::memset(acc, 0, sizeof acc);
            for (int kk = 0; kk < 2 * words; ++kk) {
              for (int lane = 0; lane < 32; ++lane) g::knn_mma_b(tile.data(), words, nt, kk, lane, b[lane]);
              for (int m = 0; m < 2; ++m) g::mma_m16n8k32_warp(acc[m], frag(m, kk), b);
            }
            for (int li = 0; li < 32; ++li) {
              const int lane = reverse ? 31 - li : li;
              for (int m = 0; m < 2; ++m)
                for (int j = 0; j < 4; ++j) {
                  const std::int64_t q = q0 + g::knn_mma_query(warp, m, j, lane);
                  const int r = g::knn_mma_row(nt, j, lane);
                  if (q >= nq || row0 + r >= n) continue;
                  keep(q, row0 + r,
                       g::knn_mma_distance(g::knn_popcount(queries + q * words, words),
                                           static_cast<std::int32_t>(tile[r * stride + 2 * words]),
                                           acc[m][lane][j]));
                }
            }
          }
        }
      }
    }
  }

  /// cuda/hamming.cu's join_tc: knn_mma_scan_kernel<words, true>, i.e. tc_scan with every row as a
  /// query, from the tile of each block's first row; the pairs b > a within r appended at one
  /// counter (kept while within the buffer: mih_capacity, else max(n, 65536); grown to the count and
  /// run again), then sorted by (a, b).
  void join_tc(const std::uint64_t* codes, std::int64_t n, std::int32_t words, std::int32_t r,
               std::vector<std::int64_t>* first, std::vector<std::int64_t>* second,
               std::vector<std::int32_t>* dist) const {
    appended_join(n, first, second, dist,
                  [&](std::vector<std::uint64_t>& keys, std::vector<std::int32_t>& dists,
                      std::uint64_t capacity, std::uint64_t& found) {
                    tc_scan(
                        codes, n, words, codes, n, [](std::int64_t q0) { return g::tc_join_first_tile(q0); },
                        [&](std::int64_t qa, std::int64_t row, std::int32_t d) {
                          if (!g::tc_join_keeps(qa, row, d, r)) return;
                          const std::uint64_t slot = found++;
                          if (slot < capacity) {
                            keys[slot] = md::mih_pair_key(static_cast<std::uint32_t>(qa),
                                                          static_cast<std::uint32_t>(row));
                            dists[slot] = d;
                          }
                        });
                  });
  }

  /// cuda/hamming.cu's finish_radius: the found keys sorted, lims from the per-thread code, split.
  void radius_finish(std::vector<std::uint64_t>* keys, std::uint64_t found, std::int64_t nq,
                     std::vector<std::int64_t>* lims, std::vector<std::int64_t>* ids,
                     std::vector<std::int32_t>* dist) const {
    keys->resize(found);
    std::sort(keys->begin(), keys->end());
    lims->assign(static_cast<std::size_t>(nq) + 1, -7);
    threads(static_cast<int>(found + 1), [&](int j) {
      md::mih_lims_step(keys->data(), static_cast<std::int64_t>(found), nq, j, lims->data());
    });
    ids->clear();
    dist->clear();
    for (const std::uint64_t k : *keys) {
      ids->push_back(static_cast<std::int64_t>(k & 0xffffffffu));
      dist->push_back(md::mih_radius_key_dist(k));
    }
  }

  /// cuda/hamming.cu's radius_tc: tc_scan of the queries over the whole base, each result within r
  /// appended as a key at one counter (room for mih_capacity, else max(32 nq, 65536); grown to the
  /// count and run again), then finished as radius_mih's.
  void radius_tc(const std::uint64_t* codes, std::int64_t n, std::int32_t words, const std::uint64_t* queries,
                 std::int64_t nq, std::int32_t r, std::vector<std::int64_t>* lims,
                 std::vector<std::int64_t>* ids, std::vector<std::int32_t>* dist) const {
    std::vector<std::uint64_t> keys;
    std::vector<std::int32_t> unused;
    const std::uint64_t found =
        appended(std::max<std::uint64_t>(32 * static_cast<std::uint64_t>(nq), 65536), &keys, &unused,
                 [&](std::vector<std::uint64_t>& k, std::vector<std::int32_t>&, std::uint64_t capacity,
                     std::uint64_t& count) {
                   tc_scan(
                       codes, n, words, queries, nq, [](std::int64_t) { return std::int64_t{0}; },
                       [&](std::int64_t q, std::int64_t row, std::int32_t d) {
                         if (d > r) return;
                         const std::uint64_t slot = count++;
                         if (slot < capacity)
                           k[slot] = md::mih_radius_key(q, d, static_cast<std::uint32_t>(row));
                       });
                 });
    radius_finish(&keys, found, nq, lims, ids, dist);
  }

  /// cuda/hamming.cu's radius_mih: per searched substring the base's table, a warp per query over
  /// its ball's buckets (queries in reverse order, lanes' matches appended at an atomic counter's
  /// slots, the buffer grown and the search run again when too small), the keys sorted, lims from
  /// the per-thread code.
  void radius_mih(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                  const std::uint64_t* queries, std::int64_t nq, std::int32_t r, const md::MihPlan& plan,
                  std::vector<std::int64_t>* lims, std::vector<std::int64_t>* ids,
                  std::vector<std::int32_t>* dist) const {
    std::uint64_t capacity = mih_capacity > 0
                                 ? static_cast<std::uint64_t>(mih_capacity)
                                 : std::max<std::uint64_t>(32 * static_cast<std::uint64_t>(nq), 65536);
    std::uint64_t found = 0;
    std::vector<std::uint64_t> keys;
    for (mih_attempts = 1; mih_attempts <= 2; ++mih_attempts) {
      keys.assign(capacity, 0xDEADBEEFULL);
      found = 0;
      for (int c = 0; c < plan.m; ++c) {
        if (plan.radius[c] < 0) continue;
        const std::vector<std::uint32_t> masks = md::ball_masks(plan.len[c], plan.radius[c]);
        std::vector<std::uint32_t> perm, offsets;
        std::vector<std::uint64_t> sorted;
        mih_table(codes, n, words, plan, c, &perm, &sorted, &offsets);
        threads(static_cast<int>(nq), [&](int qi) {
          const std::uint64_t* query = queries + static_cast<std::int64_t>(qi) * words;
          const std::uint32_t key = md::substring_of(query, plan.lo[c], plan.len[c]);
          for (const std::uint32_t mask : masks) {
            const std::uint32_t v = key ^ mask;
            const std::int64_t b0 = offsets[v], nb = static_cast<std::int64_t>(offsets[v + 1]) - b0;
            for (std::int64_t j0 = 0; j0 < nb; j0 += 32) {
              std::uint32_t hits = 0;
              std::int32_t d[32];
              for (int lane = 0; lane < 32; ++lane)
                if (j0 + lane < nb &&
                    md::mih_pair_match(plan, c, query, sorted.data() + (b0 + j0 + lane) * words, words, r,
                                       &d[lane]))
                  hits |= 1u << lane;
              warp_append(hits, &found, [&](int lane, std::uint64_t slot) {
                if (slot < capacity) keys[slot] = md::mih_radius_key(qi, d[lane], perm[b0 + j0 + lane]);
              });
            }
          }
        });
      }
      if (found <= capacity) break;
      capacity = found;
    }
    radius_finish(&keys, found, nq, lims, ids, dist);
  }

  /// Radius search (SearchGpu::hamming_radius): the plan (gpu_radius_plan), then MIH, or the brute
  /// force: the pairs in id order, then each query's segment sorted stably by distance
  /// (cub::DeviceSegmentedSort::StableSortPairs on the GPU).
  void hamming_radius(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                      const std::uint64_t* queries, std::int64_t nq, std::int32_t r,
                      std::vector<std::int64_t>* lims, std::vector<std::int64_t>* ids,
                      std::vector<std::int32_t>* dist, int method = 0) const {
    const std::int32_t rc = r < 64 * words ? r : 64 * words;
    const md::MihPlan plan = md::gpu_radius_plan(n, nq, words, rc, method);
    if (plan.m > 0) {
      radius_mih(codes, n, words, queries, nq, rc, plan, lims, ids, dist);
      return;
    }
    if (g::tc_radius_usable(tensor_cores, knn_mma_on, words, nq, n)) {  // as cuda/hamming.cu
      radius_tc(codes, n, words, queries, nq, rc, lims, ids, dist);
      return;
    }
    pairs(queries, nq, codes, n, words, r, false, lims, nullptr, ids, dist);
    for (std::int64_t q = 0; q < nq; ++q) {
      const std::size_t lo = static_cast<std::size_t>((*lims)[q]),
                        hi = static_cast<std::size_t>((*lims)[q + 1]);
      std::vector<std::pair<std::int32_t, std::int64_t>> seg;
      for (std::size_t i = lo; i < hi; ++i) seg.emplace_back((*dist)[i], (*ids)[i]);
      std::stable_sort(seg.begin(), seg.end(),
                       [](const auto& x, const auto& y) { return x.first < y.first; });
      for (std::size_t i = lo; i < hi; ++i) {
        (*dist)[i] = seg[i - lo].first;
        (*ids)[i] = seg[i - lo].second;
      }
    }
  }

  /// run_topk over every row (cuda/hamming.cu's plain kNN).
  void hamming_knn_plain(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                         const std::uint64_t* queries, std::int64_t nq, std::int32_t k, std::int32_t* dist,
                         std::int64_t* idx) {
    topk(
        n, nq, k, true,
        [&](std::int64_t q0, std::int64_t nqg, std::int64_t row0, std::int64_t rows, std::int32_t* s,
            std::int64_t ld) {
          binary_scores(codes + row0 * words, rows, words, queries + q0 * words, nqg, s, ld);
        },
        dist, idx);
  }

  /// cuda/hamming.cu's knn_filter_kernel over every row for queries q0.. (bounds from dist's k-th
  /// column): blocks of kBinaryThreads rows and a query group each, warps of 32 rows, a warp's hits
  /// appended at the query's counter (blocks, and the lanes of an append, in reverse when asked).
  void knn_filter(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                  const std::uint64_t* queries, std::int64_t nqg, const std::int32_t* dist, std::int32_t k,
                  std::uint64_t* cand, std::int64_t cap, std::uint64_t* counts) const {
    const std::int32_t qgroup = g::binary_query_group(words);
    const std::int64_t row_blocks = (n + g::kBinaryThreads - 1) / g::kBinaryThreads;
    const std::int64_t q_blocks = (nqg + qgroup - 1) / qgroup;
    for (std::int64_t bi = 0; bi < row_blocks * q_blocks; ++bi) {
      const std::int64_t b = reverse ? row_blocks * q_blocks - 1 - bi : bi;
      const std::int64_t q0 = (b / row_blocks) * qgroup;
      const std::int64_t nqb = nqg - q0 < qgroup ? nqg - q0 : qgroup;
      std::vector<std::uint64_t> sq(queries + q0 * words, queries + (q0 + nqb) * words);
      std::vector<std::int32_t> bounds(static_cast<std::size_t>(nqb));
      threads(static_cast<int>(nqb), [&](int j) { bounds[j] = g::knn_bound(dist, q0 + j, k); });
      for (int warp = 0; warp < g::kBinaryThreads / 32; ++warp) {
        const std::int64_t row0 = (b % row_blocks) * g::kBinaryThreads + 32 * warp;
        for (std::int64_t j = 0; j < nqb; ++j) {
          std::uint32_t hits = 0;
          std::int32_t d[32];
          for (int lane = 0; lane < 32; ++lane) {
            const std::int64_t row = row0 + lane;
            if (row < n &&
                g::knn_candidate(codes + row * words, sq.data() + j * words, words, bounds[j], &d[lane]))
              hits |= 1u << lane;
          }
          warp_append(hits, &counts[q0 + j], [&](int lane, std::uint64_t slot) {
            if (slot < static_cast<std::uint64_t>(cap))
              cand[(q0 + j) * cap + static_cast<std::int64_t>(slot)] =
                  g::make_key(-d[lane], static_cast<std::uint32_t>(row0 + lane));
          });
        }
      }
    }
  }

  /// cuda/hamming.cu's knn_mma_scan_kernel<words, false> (kNN's filter pass): tc_scan from tile 0,
  /// each distance within its query's bound appended at the query's counter (the slots come from
  /// the counter, not the order).
  void knn_filter_mma(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                      const std::uint64_t* queries, std::int64_t nqg, const std::int32_t* dist,
                      std::int32_t k, std::uint64_t* cand, std::int64_t cap, std::uint64_t* counts) const {
    tc_scan(
        codes, n, words, queries, nqg, [](std::int64_t) { return std::int64_t{0}; },
        [&](std::int64_t q, std::int64_t row, std::int32_t d) {
          if (d > g::knn_bound(dist, q, k)) return;
          const std::uint64_t slot = counts[q]++;
          if (slot < static_cast<std::uint64_t>(cap))
            cand[q * cap + static_cast<std::int64_t>(slot)] =
                g::make_key(-d, static_cast<std::uint32_t>(row));
        });
  }

  bool knn_mma_on = true;                   ///< false: as MMCORE_GPU_KNN_MMA=0 (the POPC filter pass)
  bool knn_filter_on = true;                ///< false: as MMCORE_GPU_KNN_FILTER=0 (always the plain kNN)
  g::KnnFilterShape knn_shape;              ///< the filtered plan's limits (n, nq, k filled by the call)
  mutable std::int64_t knn_mma_passes = 0;  ///< filter passes run on the (emulated) tensor cores
  mutable std::int64_t knn_rescored = -1;   ///< last kNN: -1 plain, else the queries rescored after overflow

  /// cuda/hamming.cu's hamming_knn: the filtered schedule (run_knn_filtered) where the plan takes
  /// it, else the plain one.
  void hamming_knn(const std::uint64_t* codes, std::int64_t n, std::int32_t words,
                   const std::uint64_t* queries, std::int64_t nq, std::int32_t k, std::int32_t* dist,
                   std::int64_t* idx) {
    knn_shape.n = n;
    knn_shape.nq = nq;
    knn_shape.k = k;
    const g::KnnFilterPlan plan = g::plan_knn_filter(knn_shape);
    knn_rescored = -1;
    knn_mma_passes = 0;
    if (!knn_filter_on || !plan.filtered) {
      hamming_knn_plain(codes, n, words, queries, nq, k, dist, idx);
      return;
    }
    struct KnnExec : Exec {
      SearchEmu* self = nullptr;
      const std::uint64_t* codes = nullptr;
      const std::uint64_t* queries = nullptr;
      std::int64_t n = 0, nq = 0;
      std::int32_t words = 0;
      g::KnnFilterPlan plan;
      std::vector<std::uint64_t> cand, a, b, counts;
      bool sample_topk(std::int64_t rows) {
        self->hamming_knn_plain(codes, rows, words, queries, nq, k, out_scores, out_idx);
        return true;
      }
      bool buffers(std::uint64_t** c, std::uint64_t** ka, std::uint64_t** kb) {
        cand.assign(static_cast<std::size_t>(plan.query_group * plan.cap), 0xEEEEEEEEEEEEEEEEULL);
        a.assign(static_cast<std::size_t>(plan.key_elems), 0xEEEEEEEEEEEEEEEEULL);
        b.assign(a.size(), 0xEEEEEEEEEEEEEEEEULL);
        counts.assign(static_cast<std::size_t>(plan.query_group), 0xCDCDCDCDCDCDCDCDULL);
        *c = cand.data();
        *ka = a.data();
        *kb = b.data();
        return true;
      }
      bool zero_counts(std::int64_t nqg) {
        std::fill(counts.begin(), counts.begin() + nqg, 0);
        return true;
      }
      bool filter(std::int64_t q0, std::int64_t nqg, std::uint64_t* c, std::int64_t cap) {
        if (g::knn_mma_usable(self->tensor_cores, self->knn_mma_on, words, nqg)) {  // as cuda/hamming.cu
          ++self->knn_mma_passes;
          self->knn_filter_mma(codes, n, words, queries + q0 * words, nqg, out_scores + q0 * k, k, c, cap,
                               counts.data());
        } else {
          self->knn_filter(codes, n, words, queries + q0 * words, nqg, out_scores + q0 * k, k, c, cap,
                           counts.data());
        }
        return true;
      }
      bool overflowed(std::int64_t q0, std::int64_t nqg, std::int64_t cap, std::vector<std::int64_t>* redo) {
        for (std::int64_t j = 0; j < nqg; ++j)
          if (counts[j] > static_cast<std::uint64_t>(cap)) redo->push_back(q0 + j);
        return true;
      }
      bool rescore(const std::vector<std::int64_t>& redo) {  // gathered, scored, scattered back
        const auto nr = static_cast<std::int64_t>(redo.size());
        std::vector<std::uint64_t> gq(static_cast<std::size_t>(nr * words));
        for (std::int64_t i = 0; i < nr; ++i)
          std::memcpy(&gq[i * words], queries + redo[i] * words, 8 * static_cast<std::size_t>(words));
        std::vector<std::int32_t> rd(static_cast<std::size_t>(nr * k));
        std::vector<std::int64_t> ri(rd.size());
        self->hamming_knn_plain(codes, n, words, gq.data(), nr, k, rd.data(), ri.data());
        for (std::int64_t t = 0; t < nr * k; ++t) {
          out_scores[redo[t / k] * k + t % k] = rd[t];
          out_idx[redo[t / k] * k + t % k] = ri[t];
        }
        return true;
      }
    };
    KnnExec ex{{this, {}, k, true, dist, idx}, this, codes, queries, n, nq, words, plan, {}, {}, {}, {}};
    g::TopkShape s = shape;
    s.n = n;
    s.nq = nq;
    s.k = k;
    std::vector<std::int64_t> redo;
    g::run_knn_filtered(ex, s, plan, &redo);
    knn_rescored = static_cast<std::int64_t>(redo.size());
  }
};

}  // namespace mmcore_test
