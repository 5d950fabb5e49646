#!/usr/bin/env python3
"""How busy a batch call keeps its workers when a few images take far longer than the rest.

Standalone and offline. The corpus jpeg/ + png/ + webp/ files are hashed one at a time (the 4
kinds of ``mmcore run``, exact mode, 1 thread) to find each one's cost; then a "tail set" is made
of 10 groups of 63 ordinary images (the 200th slowest on) and 1 of the 10 slowest (30-300 ms
where an ordinary one takes ~2 ms). ``hash_batch`` runs on it, and on the whole corpus, with 1
and with N threads; efficiency = 1-thread time / (N x N-thread time), 1.00 when no worker waits.

Then ``mmcore run`` on the tail set (written to a temporary folder) with N workers and batches of
16 images a thread (what 1,024-image batches are on 64 threads), hashing one batch at a time
against two at once (the runner's ``_HASH_AHEAD``; the default is 2), best of ``--repeat``; and
with the tail set in one shard against ten shards of 64 files (each with its slow image): what a
shard's end costs (the runner reads and hashes the next shard while one ends: the two should be
close).

    python bench/bench_tail.py              # N = 2
    python bench/bench_tail.py --threads 8 --repeat 5

Prints the machine, the slow images' costs and a table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench_decode import machine_lines

import mmcore

KINDS = ("phash", "dhash", "ahash", "pdq")


def best(srcs: list[bytes], threads: int, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        mmcore.hash_batch(srcs, kinds=KINDS, threads=threads)
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    here = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, default=here.parent / "shared" / "corpus")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    files = sorted(f for d in ("jpeg", "png", "webp") for f in (a.corpus / d).glob("*") if f.is_file())
    if not files:
        print(f"no corpus at {a.corpus}", file=sys.stderr)
        return 1
    blobs = [f.read_bytes() for f in files]
    cost = []
    for b in blobs:
        t = time.perf_counter()
        mmcore.hash_batch([b], kinds=KINDS, threads=1)
        cost.append(time.perf_counter() - t)
    order = sorted(range(len(blobs)), key=lambda i: -cost[i])
    slow, ordinary = [blobs[i] for i in order[:10]], [blobs[i] for i in order[200:]]
    tail: list[bytes] = []
    for k in range(10):
        tail += [*ordinary[k * 63 : (k + 1) * 63], slow[k]]
    print("\n".join(machine_lines()))
    print(f"mmcore {mmcore.__version__}, backend {mmcore.build_info()['backend']}")
    print(f"slowest 10 (ms, 1 thread): {[round(cost[i] * 1e3) for i in order[:10]]}")
    print(f"median (ms): {sorted(cost)[len(cost) // 2] * 1e3:.2f}")
    print(f"\n| set | images | 1 thread s | {a.threads} threads s | efficiency |\n|---|---:|---:|---:|---:|")
    for name, srcs in ((f"tail set ({len(tail)})", tail), ("corpus", blobs)):
        one, many = best(srcs, 1, a.repeat), best(srcs, a.threads, a.repeat)
        print(f"| {name} | {len(srcs)} | {one:.3f} | {many:.3f} | {one / (a.threads * many):.2f} |")

    import mmcore.jobs.runner as runner
    from mmcore.jobs.config import Config

    cfg = Config(workers=a.threads, batch_size=16 * a.threads)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for i, b in enumerate(tail):
            (src / f"{i:04d}.img").write_bytes(b)
        times: dict[int, float] = {}
        for r in range(a.repeat):
            for depth in (1, 2) if r % 2 == 0 else (2, 1):
                runner._HASH_AHEAD = depth
                t = time.perf_counter()
                runner.run(str(src), Path(tmp) / f"out{r}{depth}", cfg, progress=None)
                times[depth] = min(times.get(depth, float("inf")), time.perf_counter() - t)
        runner._HASH_AHEAD = 2
        shard_times: dict[int, float] = {}
        for r in range(a.repeat):
            for files in (len(tail), 64) if r % 2 == 0 else (64, len(tail)):
                t = time.perf_counter()
                sharded = cfg.replace(shard_size=files)
                runner.run(str(src), Path(tmp) / f"shards{r}-{files}", sharded, progress=None)
                shard_times[files] = min(shard_times.get(files, float("inf")), time.perf_counter() - t)
    print(f"\n| mmcore run, tail set, {a.threads} workers, batches of {cfg.batch_size} | s | images/s |")
    print("|---|---:|---:|")
    for depth in (1, 2):
        label = "1 batch" if depth == 1 else f"{depth} batches"
        print(f"| {label} at once | {times[depth]:.3f} | {len(tail) / times[depth]:.0f} |")
    for files, t in sorted(shard_times.items(), reverse=True):
        label = "1 shard" if files == len(tail) else f"{len(tail) // files} shards of {files} files"
        print(f"| 2 batches at once, {label} | {t:.3f} | {len(tail) / t:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
