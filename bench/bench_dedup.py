#!/usr/bin/env python3
"""``mmcore dedup`` on a generated run output: time and peak memory of the whole command.

Standalone and offline. Writes a fake ``mmcore run`` output folder (tests/jobs_fixtures.py: every
column of the schema, parts of --shard-rows rows with their completion records) holding N uniform
random 256-bit PDQ codes (and, with --copies F, F * N of them replaced by near copies of others,
1..16 bits flipped; with --exact F, F * N rows holding one code; with --group F, F * N distinct
codes within 8 bits of one: a viral image, recompressed), random pdq_quality, then runs
``mmcore.jobs.dedup.dedup(OUT)`` (PDQ, threshold 31) in a fresh process: wall time, its read /
cluster split, and the process's peak RSS next to its peak RSS after the imports (Linux:
/proc/self/status VmHWM).

    python bench/bench_dedup.py                     # 1M random codes, 1000 shards (~1.5 min on 2 cores)
    python bench/bench_dedup.py --copies 0.1        # 10 % near copies
    python bench/bench_dedup.py --exact 0.05        # 5 % of the rows one code (a placeholder image)
    python bench/bench_dedup.py --group 0.05        # 5 % of the rows near copies of one image
    python bench/bench_dedup.py --n 100000          # smaller

Prints the machine, mmcore.build_info(), versions and a table; writes bench_dedup.md into --out
(default bench/results/). Measured numbers: docs/jobs_dedup_index.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import bench_decode as bd
import numpy as np
import pyarrow as pa
from bench_hash import md_table, print_plain
from jobs_fixtures import run_table, write_run_output

HERE = Path(__file__).resolve().parent

# Peak RSS from /proc/self/status VmHWM: getrusage's ru_maxrss survives exec, so a child would
# report the bench's own peak (the generated table) instead of its own.
CHILD = """
import json, sys, time
import mmcore.jobs.dedup as d
def kb(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])
base = kb("VmHWM:")
t = time.perf_counter()
table = d.dedup(sys.argv[1], hash="pdq", threshold=int(sys.argv[2]), threads=int(sys.argv[3]) or None)
wall = time.perf_counter() - t
meta = json.loads(table.schema.metadata[b"mmcore_dedup"])
print(json.dumps({"wall": wall, "base_kb": base, "peak_kb": kb("VmHWM:"), "meta": meta}))
"""


def make_codes(n: int, copies: float, exact: float, group: float, rng: np.random.Generator) -> np.ndarray:
    codes = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    e = int(exact * n)
    if e:  # one placeholder image's code on e rows
        codes[rng.choice(n, size=e, replace=False)] = codes[0]
    g = int(group * n)
    if g:  # one image's near copies on g rows: 1..8 bits flipped, all within 16 bits of each other
        bits = np.repeat(np.unpackbits(codes[1])[None], g, axis=0)
        for row, k in enumerate(rng.integers(1, 9, size=g)):
            bits[row, rng.choice(256, size=int(k), replace=False)] ^= 1
        codes[rng.choice(n, size=g, replace=False)] = np.packbits(bits, axis=1)
    m = int(copies * n)
    if m:
        dst = rng.choice(n, size=m, replace=False)
        src = rng.integers(0, n, size=m)
        bits = np.unpackbits(codes[src], axis=1)
        for row, k in enumerate(rng.integers(1, 17, size=m)):
            bits[row, rng.choice(256, size=int(k), replace=False)] ^= 1
        codes[dst] = np.packbits(bits, axis=1)
    return codes


def run_once(out: Path, threshold: int, threads: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(out), str(threshold), str(threads)],
        capture_output=True,
        text=True,
        check=True,
        # `python -c` puts its folder first on sys.path: from the repo root that is the source
        # mmcore/ (no _core), not the installed package.
        cwd=tempfile.gettempdir(),
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="images (default 1M)")
    ap.add_argument("--copies", type=float, default=0.0, help="share of near copies (default 0: all random)")
    ap.add_argument(
        "--group", type=float, default=0.0, help="share of rows near copies of one code (default 0)"
    )
    ap.add_argument(
        "--exact", type=float, default=0.0, help="share of rows holding one code (a placeholder; default 0)"
    )
    ap.add_argument(
        "--shard-rows", type=int, default=1000, help="rows per part (default 1000, run's default)"
    )
    ap.add_argument("--threshold", type=int, default=31)
    ap.add_argument("--threads", type=int, default=0, help="0 = all cores")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()

    import mmcore

    lines = [*bd.machine_lines(), bd.mmcore_line(), f"numpy {np.__version__}, pyarrow {pa.__version__}"]
    for ln in lines:
        print(ln)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="bench-dedup-") as tmp:
        out = Path(tmp) / "out"
        t0 = time.perf_counter()
        codes = make_codes(args.n, args.copies, args.exact, args.group, rng)
        ids = [f"img-{k:09d}" for k in rng.permutation(args.n)]
        quality = rng.integers(0, 101, size=args.n)
        write_run_output(out, run_table(ids, pdq=codes, pdq_quality=quality), shard_rows=args.shard_rows)
        del codes, ids, quality
        size = sum(f.stat().st_size for f in out.glob("part-*.parquet"))
        data = (
            f"data: {args.n:,} PDQ codes ({args.copies:.0%} near copies, {args.exact:.0%} one code, "
            f"{args.group:.0%} near copies of one), "
            f"{len(list(out.glob('part-*')))} "
            f"shards, {size / 1e6:.0f} MB of Parquet, written in {time.perf_counter() - t0:.1f} s; "
            f"threshold {args.threshold}, threads {args.threads or os.cpu_count()}"
        )
        print(data)
        runs = [run_once(out, args.threshold, args.threads) for _ in range(args.rounds)]
    best = min(runs, key=lambda r: r["wall"])
    s, sec = best["meta"]["summary"], best["meta"]["seconds"]
    head = [
        "images",
        "clusters",
        "of 2+",
        "duplicates",
        "largest",
        "wall s (best)",
        "read s",
        "cluster s",
        "write s",
    ]
    head += ["peak RSS after imports MB", "peak RSS MB"]
    write_s = best["wall"] - sec["read"] - sec["cluster"]
    body = [
        [
            f"{s['images']:,}",
            f"{s['clusters']:,}",
            f"{s['clusters_with_duplicates']:,}",
            f"{s['duplicates']:,}",
            f"{s['largest_cluster']:,}",
            f"{best['wall']:.2f}",
            f"{sec['read']:.2f}",
            f"{sec['cluster']:.2f}",
            f"{write_s:.2f}",
            f"{best['base_kb'] / 1024:.0f}",
            f"{best['peak_kb'] / 1024:.0f}",
        ]
    ]
    print_plain(head, body, 0)
    load = os.getloadavg()
    rounds = f"all rounds (wall s): {[round(r['wall'], 2) for r in runs]}; load average at end {load[0]:.2f}"
    print(rounds)
    args.out.mkdir(parents=True, exist_ok=True)
    report = [f"# bench_dedup (mmcore {mmcore.__version__})", "", *(f"- {x}" for x in [*lines, data]), ""]
    report += [*md_table(head, body, 0), "", rounds]
    (args.out / "bench_dedup.md").write_text("\n".join(report) + "\n")
    print(f"wrote {args.out / 'bench_dedup.md'}")


if __name__ == "__main__":
    main()
