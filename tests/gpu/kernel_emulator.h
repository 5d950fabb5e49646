// cuda/hash.cu's host loop and kernel, run on the CPU: the same Planner and the same
// __host__ __device__ phases (hash_gpu_internal.h), every thread of a phase before the next
// phase, as the block barrier orders them. Used by tests/cpp/test_hash_gpu_emu.cpp and by
// tests/gpu/fake_device.cpp (gpu_check.cpp's logic checked end to end without a GPU).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "hash_gpu_internal.h"
#include "hash_internal.h"
#include "hash_pdq_gpu_internal.h"

namespace mmcore_test {

/// Order of execution: `interleave` runs every block's phase k before any block's phase k + 1
/// (exposes scratch shared between blocks); `reverse` runs each phase's threads backwards
/// (exposes a thread reading what another writes in the same phase). Shared memory and scratch
/// start as garbage. Returns false if the planner misbehaves (no progress, plan count).
inline bool emulate_hash_batch(const std::uint8_t* pixels, std::int64_t pixel_bytes,
                               const mmcore::GpuImage* desc, std::int32_t n, std::uint32_t kinds,
                               std::int64_t scratch_cap, bool interleave, bool reverse, std::uint64_t* out,
                               mmcore::Status* statuses) {
  namespace g = mmcore::gpu_detail;
  g::Planner planner;
  const mmcore::detail::DctTwiddles twiddles = mmcore::detail::kDctTwiddles;
  for (std::int32_t first = 0; first < n;) {
    const std::int32_t end = planner.plan_chunk(desc, first, n, pixel_bytes, kinds, scratch_cap, statuses);
    if (end <= first || static_cast<std::int32_t>(planner.plans.size()) != end - first) return false;
    std::vector<std::uint8_t> scratch(static_cast<std::size_t>(planner.scratch_bytes) + 1, 0xEE);
    const std::int32_t blocks = end - first;
    std::vector<g::BlockShared> shared(blocks);
    std::memset(static_cast<void*>(shared.data()), 0xCD, sizeof(g::BlockShared) * shared.size());
    std::vector<g::BlockArgs> args(blocks);
    for (std::int32_t k = 0; k < blocks; ++k) {
      args[k] = g::BlockArgs{
          pixels,   planner.plans.data() + k, planner.arena.data(), scratch.data(), out, n, first + k, kinds,
          &twiddles};
    }
    const auto run_block_phase = [&](std::int32_t k, int phase) {
      for (int i = 0; i < g::kThreads; ++i) {
        const int tid = reverse ? g::kThreads - 1 - i : i;
        if (!args[k].plan->valid) {
          if (phase == 0) g::store_invalid(args[k], tid);
        } else {
          g::run_phase(phase, args[k], shared[k], tid, g::kThreads);
        }
      }
    };
    if (interleave) {
      for (int phase = 0; phase < g::kPhases; ++phase)
        for (std::int32_t k = 0; k < blocks; ++k) run_block_phase(k, phase);
    } else {
      for (std::int32_t k = 0; k < blocks; ++k)
        for (int phase = 0; phase < g::kPhases; ++phase) run_block_phase(k, phase);
    }
    first = end;
  }
  return true;
}

/// The same for cuda/hash.cu's PDQ kernel: hashes (32 bytes per image) and quality are host
/// memory here. PdqPlanner::blocks(n, resident, scratch_cap) blocks, a scratch slot each, starting as
/// garbage; the images taken in turn as from the kernel's counter, a round of one image per block at a time;
/// interleave: a round's blocks run phase by phase together (a slot shared by two blocks would show), else
/// block by block. `layout`: the blur's buffer layout (layout 2's passes run sub-step by sub-step;
/// layout 3 has no scratch slots, and a PdqStream per block for its dynamic shared memory).
inline bool emulate_pdq_batch(const std::uint8_t* pixels, std::int64_t pixel_bytes,
                              const mmcore::GpuImage* desc, std::int32_t n, std::int64_t resident,
                              std::int64_t scratch_cap, bool interleave, bool reverse, std::uint8_t* hashes,
                              std::int32_t* quality, mmcore::Status* statuses,
                              std::int32_t layout = mmcore::gpu_detail::kPdqLayoutReads) {
  namespace g = mmcore::gpu_detail;
  g::PdqPlanner planner;
  std::vector<float> dct(g::kPdqDct * g::kPdqGrid);
  mmcore::detail::pdq_dct_matrix(dct.data());
  const bool stream = layout == g::kPdqLayoutStream;
  planner.plan(desc, n, pixel_bytes, statuses, !stream);
  if (static_cast<std::int32_t>(planner.plans.size()) != n) return false;
  const std::int32_t blocks = planner.blocks(n, resident, scratch_cap);
  // Layout 3's dynamic shared memory, a block's worth each, starting as garbage too.
  std::vector<g::PdqStream> streams(stream ? static_cast<std::size_t>(blocks) : 0);
  if (stream) std::memset(static_cast<void*>(streams.data()), 0xCD, sizeof(g::PdqStream) * streams.size());
  std::vector<std::uint8_t> scratch(static_cast<std::size_t>(planner.slot_bytes) * blocks + 16, 0xEE);
  std::vector<g::PdqShared> shared(static_cast<std::size_t>(blocks));
  std::memset(static_cast<void*>(shared.data()), 0xCD, sizeof(g::PdqShared) * shared.size());
  const int phases = g::pdq_phases_from_env();
  for (std::int32_t first = 0; first < n; first += blocks) {
    const std::int32_t in_round = std::min(blocks, n - first);
    std::vector<g::PdqArgs> args(static_cast<std::size_t>(in_round));
    for (std::int32_t k = 0; k < in_round; ++k) {
      const std::int32_t i = first + k;
      args[k] = g::PdqArgs{pixels,     planner.plans.data() + i,
                           dct.data(), scratch.data() + k * planner.slot_bytes,
                           hashes,     quality,
                           i,          layout};
      if (stream) args[k].stream = &streams[static_cast<std::size_t>(k)];
    }
    const auto run_block_phase = [&](std::int32_t k, int phase) {
      if (args[k].plan->mode == g::kPdqZero) {
        if (phase == 0)
          for (int t = 0; t < g::kThreads; ++t) g::pdq_store_zero(args[k], reverse ? g::kThreads - 1 - t : t);
        return;
      }
      // Each sub-step ends with a block barrier: every thread's part of it before the next.
      const int steps = g::pdq_phase_steps(phase, args[k]);
      for (int step = 0; step < steps; ++step)
        for (int t = 0; t < g::kThreads; ++t)
          g::pdq_run_phase(phase, step, args[k], shared[k], reverse ? g::kThreads - 1 - t : t, g::kThreads);
    };
    if (interleave) {
      for (int phase = 0; phase < phases; ++phase)
        for (std::int32_t k = 0; k < in_round; ++k) run_block_phase(k, phase);
    } else {
      for (std::int32_t k = 0; k < in_round; ++k)
        for (int phase = 0; phase < phases; ++phase) run_block_phase(k, phase);
    }
  }
  return true;
}

}  // namespace mmcore_test
