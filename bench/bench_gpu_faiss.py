#!/usr/bin/env python3
"""faiss-gpu next to mmcore.gpu on the same GPU and the same data: issue 6's comparisons.

Standalone; bench/gpu_faiss.sh runs it on a GPU host with the faiss-gpu-cu12 wheel that
bench/gpu_faiss_prepare.sh carries (cuBLAS stand-ins: neither index below uses a GEMM's result).

  Hamming kNN   10M random 256-bit codes (PDQ-sized), k = 10, 1 / 64 / 1024 queries:
                faiss GpuIndexBinaryFlat vs Context.hamming_knn; the distances must be equal.
  int8 / SQ8    2M unit-norm 768-d float vectors (bench_quant.py's CLIP-like generator), k = 10,
                1 / 16 / 64 queries, inner product: faiss IVF with one list and 8-bit scalar
                quantisation (faiss-gpu's flat SQ8: GPU indexes have no IndexScalarQuantizer; the
                one list means every code is scanned) vs Context.score_int8 on mmcore's int8
                codes; recall@10 of each against exact float search.

Times are medians of --repeat calls after a warm-up, each call from host queries to host results
(faiss' search takes and returns host arrays; mmcore's results are copied back with .get()), the
codes already on the device for both. Prints a markdown report with the ratios and issue 6's lines.

    python bench/bench_gpu_faiss.py [--binary-rows N] [--sq-rows N] [--repeat R]

Exit status: 0; 3 when mmcore's GPU path or faiss' GPU is not there (the reason is printed).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from bench_gpu import timed
from bench_quant import GENERATED, K, clip_like, recall_at


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--binary-rows", type=int, default=10_000_000)
    ap.add_argument("--sq-rows", type=int, default=2_000_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    import mmcore
    import mmcore.gpu as mg

    reason = mg.unavailable_reason()
    if reason is not None:
        print(f"no mmcore GPU path here: {reason}")
        return 3
    try:
        import faiss
    except ImportError as e:
        print(f"no faiss here: {e}")
        return 3
    if faiss.get_num_gpus() < 1:
        print("faiss sees no GPU")
        return 3
    cp = mg._cupy()
    ctx = mg.Context()

    def free_device_cache() -> None:  # cupy keeps freed blocks for reuse; faiss allocates its own
        pool = getattr(cp, "get_default_memory_pool", None)
        if pool is not None:
            pool().free_all_blocks()

    res = faiss.StandardGpuResources()
    rng = np.random.default_rng(0)
    dev = cp.cuda.runtime.getDeviceProperties(0)
    print("# faiss-gpu next to mmcore.gpu\n")
    print(
        f"- device: {dev['name'].decode()}; faiss {faiss.__version__}; "
        f"mmcore {mmcore.build_info()['version']}"
    )
    print(f"- median of {args.repeat} calls after a warm-up, host queries in, host results out\n")
    lines: list[str] = []

    # ---- Hamming kNN -------------------------------------------------------------------------
    nb = args.binary_rows
    codes = rng.integers(0, 256, size=(nb, 32), dtype=np.uint8)
    queries = rng.integers(0, 256, size=(1024, 32), dtype=np.uint8)
    bidx = faiss.GpuIndexBinaryFlat(res, 256)
    bidx.add(codes)
    dcodes = cp.asarray(codes)
    print(f"## Hamming kNN, {nb:,} 256-bit codes, k = 10\n")
    print("| queries | faiss GpuIndexBinaryFlat ms | mmcore ms | mmcore / faiss speed | distances equal |")
    print("|---:|---:|---:|---:|---|")
    worst = float("inf")
    for nq in (1, 64, 1024):
        xq = np.ascontiguousarray(queries[:nq])
        dq = cp.asarray(xq)
        d_f, _ = bidx.search(xq, K)
        d_m, _ = ctx.hamming_knn(dcodes, dq, K)
        equal = bool(np.array_equal(np.sort(d_f, axis=1), np.sort(d_m.get().astype(d_f.dtype), axis=1)))
        t_f = timed(args.repeat, lambda xq=xq: bidx.search(xq, K))
        t_m = timed(args.repeat, lambda dq=dq: [a.get() for a in ctx.hamming_knn(dcodes, dq, K)])
        worst = min(worst, t_f / t_m)
        print(
            f"| {nq} | {t_f * 1e3:.3f} | {t_m * 1e3:.3f} | {t_f / t_m:.2f}x | "
            f"{'yes' if equal else '**no**'} |"
        )
    lines.append(
        f"issue 6 target, Hamming kNN {nb:,} 256-bit >= faiss-gpu GpuIndexBinaryFlat: worst {worst:.2f}x: "
        f"**{'PASS' if worst >= 1 else 'FAIL'}**"
    )
    bidx.reset()
    dcodes = None
    free_device_cache()

    # ---- int8 / SQ8 --------------------------------------------------------------------------
    n, d = args.sq_rows, args.dim
    x = clip_like(n, d, GENERATED, seed=2)  # bench_quant's generator and seeds
    q = clip_like(64, d, GENERATED, seed=1)
    truth = []  # exact top-K by float inner product, on the host (16 queries at a time)
    for i in range(0, 64, 16):
        s = x @ q[i : i + 16].T
        top = np.argpartition(-s, K, axis=0)[:K]
        order = np.argsort(-np.take_along_axis(s, top, axis=0), axis=0)
        truth.append(np.take_along_axis(top, order, axis=0).T)
    truth_ids = np.concatenate(truth)
    quantizer = faiss.IndexFlatIP(d)
    cpu = faiss.IndexIVFScalarQuantizer(
        quantizer, d, 1, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    cpu.by_residual = False
    cpu.train(x[:200_000])
    sq = faiss.index_cpu_to_gpu(res, 0, cpu)
    sq.add(x)
    params = mmcore.QuantParams.fit(x[:200_000], "int8")
    mcodes = cp.asarray(mmcore.quantize_int8(x, params))
    del x
    print(f"\n## int8 / SQ8, {n:,} x {d} (CLIP-like, unit norm), inner product, k = 10\n")
    print(
        "| queries | faiss IVF1,SQ8 ms | faiss q/s | mmcore ms | mmcore q/s | mmcore / faiss "
        "| recall@10 faiss / mmcore |"
    )
    print("|---:|---:|---:|---:|---:|---:|---|")
    r64 = 0.0
    for nq in (1, 16, 64):
        xq = np.ascontiguousarray(q[:nq])
        _, i_f = sq.search(xq, K)
        _, i_m = ctx.score_int8(mcodes, xq, params, K)
        rf, rm = recall_at(i_f, truth_ids[:nq]), recall_at(i_m.get(), truth_ids[:nq])
        t_f = timed(args.repeat, lambda xq=xq: sq.search(xq, K))
        t_m = timed(args.repeat, lambda xq=xq: [a.get() for a in ctx.score_int8(mcodes, xq, params, K)])
        if nq == 64:
            r64 = t_f / t_m
        print(
            f"| {nq} | {t_f * 1e3:.3f} | {nq / t_f:,.0f} | {t_m * 1e3:.3f} | {nq / t_m:,.0f} | "
            f"{t_f / t_m:.1f}x | {rf:.3f} / {rm:.3f} |"
        )
    lines.append(
        f"issue 6 target, int8 64 queries >= 10x faiss-gpu flat SQ8 ({n:,} rows): {r64:.1f}x: "
        f"**{'PASS' if r64 >= 10 else 'FAIL'}**"
    )
    print()
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
