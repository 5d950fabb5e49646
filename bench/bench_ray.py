#!/usr/bin/env python3
"""mmcore on Ray (``mmcore.ray.process``) next to ``mmcore run`` on one machine: same files, same run.

Standalone and offline. A local Ray instance with ``--cpus`` CPUs (default 2) is started here. Both
contestants read the same image files (a temporary folder of symbolic links, as bench_job.py) and
write Parquet rows of mmcore.jobs.SCHEMA (default Config: every hash, no thumbnails) into a fresh
temporary folder; the time is the wall clock from start to the last file written, best of
``--repeat`` rounds (alternating order).

  mmcore run           mmcore.jobs.runner.run(SRC, OUT, Config(workers=CPUS)) in-process
  Ray (N CPUs)         ray.data.read_binary_files(paths, include_paths=True) -> mmcore.ray.process
                       (the default reservation: CPUS-1 actors of 1 CPU, threads = CPUS / actors)
                       -> write_parquet; the Ray start (ray.init) is timed once, apart
  Ray, read_images     mmcore.ray.read_images(SRC) -> mmcore.ray.process -> write_parquet: the
                       actors read the files by path (only paths go through the object store)

Before timing, a check: the Ray rows equal mmcore run's (by source file, every content column; for
read_images every column, ids included).

    python bench/bench_ray.py                 # corpus jpeg/ + png/ + webp/, 2 rounds
    python bench/bench_ray.py --quick         # 100 files, 1 round
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_job import CORPUS, DEFAULT_DIRS, ROOT, describe, link_folder, pick_files


def _ray_job(paths: list[str], out: str) -> None:
    import ray

    import mmcore.ray as mray

    ds = ray.data.read_binary_files(paths, include_paths=True)
    mray.process(ds).write_parquet(out)


def _ray_images_job(folder: str, out: str) -> None:
    import mmcore.ray as mray

    mray.process(mray.read_images(folder)).write_parquet(out)


def _rows(table: Any) -> dict[str, dict[str, Any]]:
    """Content columns keyed by the source file (ids differ: relative for run, paths for Ray)."""
    skip = ("id", "source_uri", "member")
    rows = table.to_pylist()
    return {
        os.path.normpath(r["source_uri"].removeprefix("file://")): {
            k: v for k, v in r.items() if k not in skip
        }
        for r in rows
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", type=Path, action="append", help="image folder (default the corpus)")
    ap.add_argument("--limit", type=int, default=None, help="at most this many files (even spread)")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance and mmcore's workers")
    ap.add_argument("--repeat", type=int, default=None, help="timed rounds; the best is kept (default 2)")
    ap.add_argument("--quick", action="store_true", help="100 files (or --limit), 1 round")
    ap.add_argument("--note", default=None, help="a line for the header")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="output folder")
    args = ap.parse_args(argv)
    try:
        import pyarrow.parquet as pq
        import ray
    except ImportError as e:
        ap.error(f"needs Ray and pyarrow ({e}): pip install '.[ray]'")
    import bench_decode as bd
    from bench_hash import md_table, print_plain

    import mmcore.ray  # noqa: F401  (fails here, not in a worker, when mmcore.ray cannot load)
    from mmcore.jobs.config import Config
    from mmcore.jobs.runner import run
    from mmcore.jobs.schema import read_output

    if args.quick:
        args.limit = args.limit or 100
    repeat = args.repeat or (1 if args.quick else 2)
    sources = args.source or [CORPUS / d for d in DEFAULT_DIRS]
    files, other = pick_files(sources, args.limit)
    if not files:
        ap.error(f"no image files under {', '.join(str(s) for s in sources)}")
    fs = link_folder(files, other)
    config = Config(workers=args.cpus)
    header = [*bd.machine_lines(), bd.mmcore_line(), f"ray {ray.__version__}", *describe(fs, sources)]
    if args.note:
        header.append(f"note: {args.note}")
    t0 = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    t_init = time.perf_counter() - t0
    tmp = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    try:
        run(str(fs.links), tmp / "check_run", config, progress=None)
        _ray_job(fs.paths, str(tmp / "check_ray"))
        _ray_images_job(str(fs.links), str(tmp / "check_images"))
        single = read_output(tmp / "check_run")
        same = _rows(single) == _rows(pq.read_table(tmp / "check_ray"))
        images = pq.read_table(tmp / "check_images").sort_by("id").cast(single.schema)
        same_images = images.equals(single.sort_by("id").replace_schema_metadata(None).cast(single.schema))
        header.append(
            f"check: Ray rows equal mmcore run's: {same}; read_images rows, ids included: {same_images}"
        )
        same = same and same_images
        contestants = {
            "mmcore run (in-process)": lambda out: run(str(fs.links), out, config, progress=None),
            f"Ray, {args.cpus} CPUs (read_binary_files, mmcore.ray.process)": lambda out: _ray_job(
                fs.paths, out
            ),
            f"Ray, {args.cpus} CPUs (mmcore.ray.read_images, process)": lambda out: _ray_images_job(
                str(fs.links), out
            ),
        }
        best = dict.fromkeys(contestants, float("inf"))
        for r in range(repeat):
            for name in list(contestants)[:: 1 if r % 2 == 0 else -1]:
                out = tmp / f"r{r}"
                t = time.perf_counter()
                contestants[name](str(out))
                best[name] = min(best[name], time.perf_counter() - t)
                shutil.rmtree(out)
        header.append(f"timing: wall clock per job, best of {repeat} round(s); ray.init {t_init:.1f} s apart")
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(fs.links, ignore_errors=True)
    n = len(fs.paths)
    base = best["mmcore run (in-process)"]
    head = ["contestant", "s", "images/s", "vs mmcore run"]
    body = [[k, f"{v:.2f}", f"{n / v:,.0f}", f"{base / v:.2f}x"] for k, v in best.items()]
    for line in header:
        print(line)
    print()
    print_plain(head, body, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    md = [f"- {h}" for h in header] + [""] + md_table(head, body, 1)
    (args.out / "bench_ray.md").write_text("\n".join(md) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
