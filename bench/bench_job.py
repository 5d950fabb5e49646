#!/usr/bin/env python3
"""End to end corpus job: ``mmcore run`` next to the script a user would write, same files, same run.

Standalone and offline. Both contestants read the same image files from disk and write one Parquet
table of per-image rows (size, sha256, format, width / height, pHash / dHash / aHash, PDQ and its
quality, a status and error per file) into a fresh temporary folder; the time is the wall clock from
start to the last file written, best of ``--repeat`` rounds (each round runs every contestant once,
in alternating order, so that a burst of load on a shared machine costs each of them one pass).

Contestants (all with the same number of workers N, ``--workers``, default all usable cores):

  mmcore run (in-process)    mmcore.jobs.runner.run(SRC, OUT, Config(workers=N,
                             hashes=(phash, dhash, ahash, pdq))): exact hash mode (imagehash's bits,
                             PDQ C++-reference mode), Parquet shards of 1000 files, zstd, fsync
  mmcore run (CLI)           ``python -m mmcore run SRC OUT --workers N --quiet`` as a subprocess:
                             the same, plus interpreter start-up and imports
  baseline (in-process)      what a user writes: multiprocessing.Pool(N) (fork) over the file list;
                             each task reads the file, sha256, Image.open (no exif_transpose: imagehash
                             hashes the stored pixels, as mmcore's exact mode does; the EXIF
                             orientation only swaps width / height, as in mmcore's output),
                             imagehash.phash / dhash / average_hash, pdqhash.compute on the RGB array;
                             any exception is caught per file as a status string; rows written with
                             pyarrow.parquet in shards of 1000 rows; the pool's start is timed
  baseline (subprocess)      the same script as a fresh ``python`` process: start-up and imports
                             included, the counterpart of the CLI row
  mmcore run thumbnail=256   the in-process run with 256 px JPEG thumbnails (needs mmcore.encode_batch;
                             skipped with a note otherwise). The baseline writes no thumbnails.
  mmcore run, WebDataset     the in-process run over the same files packed (before timing) into
                             tar shards of 1000 members, as Python's tarfile writes them (a PAX
                             header per member for its float mtime): the source most web-scale
                             corpora come as. The baseline still reads the files.

"vs baseline" divides in-process rows by the in-process baseline and the CLI row by the baseline
subprocess. The input files are in the page cache after the check (warm cache: this measures the
compute and the writing, not the disk).

Before timing, a check on 20 files (an even spread): the baseline's phash / dhash / ahash equal the
mmcore job's output rows (``schema.i64_to_u64``), and so do width / height and sha256. The job's
PDQ column is the C++-reference mode (images over 512 px are squashed to 512x512 first), whereas
pdqhash.compute hashes the full-resolution array: so PDQ is checked against
``mmcore.hash_batch(kinds=["pdq"], mode="full")`` (pdqhash's mode), and the distance of the job's
reference-mode PDQ to pdqhash's is reported for information.

Files: ``--source DIR`` (repeatable; default ``../shared/corpus/{jpeg,png,webp}``), recursively, the
names ending in .jpg / .jpeg / .png / .webp / .gif, sorted; ``--limit N`` takes an even spread of N.
Nothing is copied: mmcore gets a temporary folder of symbolic links to the files (one source for
the three corpus folders) and the baseline the same link paths.

    python bench/bench_job.py                       # 890 corpus files, 2 rounds (~3 min on 2 cores)
    python bench/bench_job.py --quick               # ~100 files, 1 round: a smoke run
    python bench/bench_job.py --source DIR --limit 500 --workers 4 --repeat 3

Prints the machine, mmcore.build_info(), library versions, the file set, the check, then the table;
writes bench_job.md and bench_job.png into --out (default bench/results/).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import multiprocessing as mp
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Only what the baseline script itself needs is imported here: its subprocess row runs this file
# with --baseline-script and must pay the imports a user's script pays, not mmcore's.
ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
DEFAULT_DIRS = ("jpeg", "png", "webp")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif")
SHARD_ROWS = 1000
N_CHECK = 20
SPLIT_FILES = 100
BASELINE_COLUMNS = (
    "path",
    "byte_size",
    "content_sha256",
    "format",
    "width",
    "height",
    "orientation",
    "phash",
    "dhash",
    "ahash",
    "pdq",
    "pdq_quality",
    "status",
    "error",
)
THUMB = 256

# --------------------------------------------------------------------------------------------------
# The baseline: the script a user writes with Pillow + imagehash + pdqhash + pyarrow


def _signed64(h: Any) -> int:
    """imagehash's 64 bits as the int64 mmcore's schema stores (two's complement)."""
    v = int(str(h), 16)
    return v - (1 << 64) if v >= 1 << 63 else v


def baseline_row(path: str) -> dict[str, Any]:
    """One file's row; never raises: a failure is a status string and the error message."""
    import imagehash
    import numpy as np
    import pdqhash
    from PIL import Image

    row: dict[str, Any] = dict.fromkeys(BASELINE_COLUMNS)  # every key: pyarrow infers from row 0
    row.update(path=path, status="OK")
    try:
        with open(path, "rb") as f:
            data = f.read()
        row["byte_size"] = len(data)
        row["content_sha256"] = hashlib.sha256(data).digest()
        img = Image.open(io.BytesIO(data))
        row["format"] = (img.format or "").lower() or None
        w, h = img.size
        orientation = int(img.getexif().get(0x0112, 1) or 1)
        row["width"], row["height"] = (h, w) if orientation >= 5 else (w, h)
        row["orientation"] = orientation
        row["phash"] = _signed64(imagehash.phash(img))
        row["dhash"] = _signed64(imagehash.dhash(img))
        row["ahash"] = _signed64(imagehash.average_hash(img))
        bits, quality = pdqhash.compute(np.asarray(img.convert("RGB")))
        row["pdq"] = np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()
        row["pdq_quality"] = int(quality)
    except Exception as e:  # one bad file must not stop the job
        row["status"] = "ERROR"
        row["error"] = f"{type(e).__name__}: {e}"[:500]
    return row


def _quiet_worker() -> None:
    warnings.simplefilter("ignore")  # Pillow's DecompressionBombWarning & co., once per worker


def baseline_job(paths: Sequence[str], out: str, workers: int) -> Counter[str]:
    """The baseline end to end: a process pool over the files, rows written in Parquet shards of
    1000 rows. Returns the count of rows per status."""
    # A script imports its libraries at the top, before the pool forks: the workers inherit them.
    import imagehash  # noqa: F401
    import pdqhash  # noqa: F401
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image  # noqa: F401

    os.makedirs(out, exist_ok=True)
    with mp.get_context("fork").Pool(workers, initializer=_quiet_worker) as pool:
        rows = list(pool.imap(baseline_row, paths, chunksize=4))
    for k in range(0, len(rows), SHARD_ROWS):
        pq.write_table(
            pa.Table.from_pylist(rows[k : k + SHARD_ROWS]), f"{out}/part-{k // SHARD_ROWS:05d}.parquet"
        )
    return Counter(r["status"] for r in rows)


def baseline_script(file_list: str, out: str, workers: int) -> int:
    """``--baseline-script``: the baseline as its own process (the subprocess row)."""
    with open(file_list) as f:
        paths = [ln.rstrip("\n") for ln in f if ln.strip()]
    counts = baseline_job(paths, out, workers)
    print(json.dumps(dict(counts)))
    return 0


# --------------------------------------------------------------------------------------------------
# Files


@dataclass
class FileSet:
    links: Path  # temporary folder of symbolic links, the mmcore source
    tars: Path  # temporary folder of the same files as WebDataset tar shards
    rel: list[str]  # relative paths (mmcore's ids)
    paths: list[str]  # link paths (what the baseline opens)
    byte_sizes: list[int]
    left_out: int  # files under the sources that are not images by name


def pick_files(sources: list[Path], limit: int | None) -> tuple[list[tuple[str, Path]], int]:
    """(relative name, real path) of the image files under ``sources``, sorted, an even spread of
    ``limit`` of them; and how many other files were left out."""
    found: list[tuple[str, Path]] = []
    other = 0
    for src in sources:
        prefix = src.name if len(sources) > 1 else ""
        for d, dirs, names in os.walk(src):
            dirs.sort()
            for n in sorted(names):
                p = Path(d) / n
                if not p.is_file():
                    continue
                if not n.lower().endswith(IMAGE_EXTENSIONS):
                    other += 1
                    continue
                found.append((os.path.join(prefix, os.path.relpath(p, src)), p.resolve()))
    if limit is not None and limit < len(found):
        step = (len(found) - 1) / max(limit - 1, 1)
        found = [found[round(i * step)] for i in range(limit)]
    return found, other


def link_folder(files: list[tuple[str, Path]], left_out: int) -> FileSet:
    """A temporary folder of symbolic links to ``files`` (nothing copied), the read sizes, and the
    files packed into tar shards of SHARD_ROWS members (member names: the relative names)."""
    links = Path(tempfile.mkdtemp(prefix="bench_job_src_"))
    rel, paths, sizes = [], [], []
    for name, real in files:
        p = links / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.symlink_to(real)
        rel.append(name)
        paths.append(str(p))
        with open(p, "rb") as f:  # reads every file once: the page cache is warm for every contestant
            sizes.append(len(f.read()))
    tars = Path(tempfile.mkdtemp(prefix="bench_job_tars_"))
    for k in range(0, len(rel), SHARD_ROWS):
        with tarfile.open(tars / f"shard-{k // SHARD_ROWS:05d}.tar", "w", dereference=True) as tf:
            for name, path in zip(rel[k : k + SHARD_ROWS], paths[k : k + SHARD_ROWS], strict=True):
                tf.add(path, arcname=name)
    return FileSet(links, tars, rel, paths, sizes, left_out)


def describe(fs: FileSet, sources: list[Path]) -> list[str]:
    kinds = Counter(Path(r).suffix.lower().lstrip(".").replace("jpg", "jpeg") for r in fs.rel)
    mb = sum(fs.byte_sizes) / 1e6
    lines = [
        f"files: {len(fs.rel)} from {', '.join(str(s) for s in sources)} ({mb:.1f} MB, "
        f"{1e-3 * sum(fs.byte_sizes) / max(len(fs.rel), 1):.0f} kB mean; "
        + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
        + ")",
        "both contestants read the same files through a temporary folder of symbolic links "
        "(nothing copied); files in the page cache (warm)",
    ]
    if fs.left_out:
        lines.append(f"left out: {fs.left_out} files whose names are not {'/'.join(IMAGE_EXTENSIONS)}")
    return lines


# --------------------------------------------------------------------------------------------------
# Contestants


#: What a contestant's run returns: rows per status, and mmcore's time per stage (None for others).
JobResult = tuple[Counter[str], dict[str, float] | None]


@dataclass
class Contestant:
    name: str
    how: str
    base: str | None  # the baseline row its ratio divides by
    # runs the job into a fresh folder; returns the rows per status and mmcore's time per stage
    fn: Callable[[str], JobResult] | None
    note: str = ""
    seconds: list[float] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    out_bytes: int = 0
    stages: dict[str, float] | None = None  # of the best round


def _mmcore_env() -> dict[str, str]:
    """The subprocess imports the same mmcore as this process."""
    import mmcore

    env = dict(os.environ)
    here = str(Path(mmcore.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _job_counts(out: str) -> Counter[str]:
    from mmcore.jobs.schema import read_output

    return Counter(read_output(out, columns=["status"]).column("status").to_pylist())


def contestants(fs: FileSet, workers: int, file_list: Path) -> list[Contestant]:
    import mmcore
    from mmcore.jobs.config import HASH_KINDS, Config
    from mmcore.jobs.runner import run

    def mm(thumbnail: int, source: Path = fs.links) -> Callable[[str], JobResult]:
        def go(out: str) -> JobResult:
            cfg = Config(workers=workers, hashes=HASH_KINDS, thumbnail=thumbnail)
            s = run(str(source), out, cfg, progress=None)
            return Counter(s.counts), s.stage_seconds

        return go

    def cli(out: str) -> JobResult:
        cmd = [
            sys.executable,
            "-m",
            "mmcore",
            "run",
            str(fs.links),
            out,
            "--workers",
            str(workers),
            "--quiet",
        ]
        p = subprocess.run(cmd, capture_output=True, text=True, env=_mmcore_env(), cwd=tempfile.gettempdir())
        if p.returncode != 0:
            raise RuntimeError(f"exit {p.returncode}: {(p.stderr or p.stdout).strip()[-300:]}")
        return _job_counts(out), None

    def base_inproc(out: str) -> JobResult:
        return baseline_job(fs.paths, out, workers), None

    def base_sub(out: str) -> JobResult:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--baseline-script", str(file_list), out]
        p = subprocess.run([*cmd, "--workers", str(workers)], capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"exit {p.returncode}: {(p.stderr or p.stdout).strip()[-300:]}")
        return Counter(json.loads(p.stdout.strip().splitlines()[-1])), None

    hashes = "(" + ", ".join(HASH_KINDS) + ")"
    rows = [
        Contestant(
            "mmcore run (in-process)",
            f"mmcore.jobs.runner.run(Config(workers={workers}, hashes={hashes}))",
            "baseline (in-process)",
            mm(0),
        ),
        Contestant(
            "mmcore run (CLI)",
            f"python -m mmcore run SRC OUT --workers {workers} --quiet",
            "baseline (subprocess)",
            cli,
        ),
        Contestant(
            "baseline (in-process)",
            f"multiprocessing.Pool({workers}): Pillow + imagehash + pdqhash, pyarrow.parquet",
            None,
            base_inproc,
        ),
        Contestant(
            "baseline (subprocess)",
            "the same script as a fresh python process",
            None,
            base_sub,
        ),
    ]
    thumb = Contestant(
        f"mmcore run thumbnail={THUMB}",
        f"the in-process run with Config(thumbnail={THUMB}) (JPEG q85); the baseline has no thumbnails",
        "baseline (in-process)",
        mm(THUMB),
    )
    if not hasattr(mmcore, "encode_batch"):
        thumb.fn = None
        thumb.note = "skipped: this mmcore has no encode_batch (thumbnail encoding not built)"
    rows.append(thumb)
    n_tars = len(list(fs.tars.glob("*.tar")))
    rows.append(
        Contestant(
            "mmcore run, WebDataset",
            f"the in-process run over the same files as {n_tars} tar shard(s) (PAX headers)",
            "baseline (in-process)",
            mm(0, fs.tars),
        )
    )
    return rows


def _dir_bytes(d: str) -> int:
    return sum(p.stat().st_size for p in Path(d).rglob("*.parquet"))


def run_rounds(rows: list[Contestant], repeat: int) -> None:
    for r in range(repeat):
        order = rows if r % 2 == 0 else rows[::-1]
        for c in order:
            if c.fn is None or c.note:
                continue
            out = tempfile.mkdtemp(prefix="bench_job_out_")
            try:
                t0 = time.perf_counter()
                counts, stages = c.fn(out)
                c.seconds.append(time.perf_counter() - t0)
                c.counts, c.out_bytes = counts, _dir_bytes(out)
                if c.seconds[-1] == min(c.seconds):
                    c.stages = stages
                print(f"round {r + 1}: {c.name:28s} {c.seconds[-1]:7.2f} s  {dict(sorted(counts.items()))}")
            except Exception as e:
                c.note = f"failed: {type(e).__name__}: {e}"[:300]
                print(f"round {r + 1}: {c.name:28s} {c.note}")
            finally:
                shutil.rmtree(out, ignore_errors=True)
            sys.stdout.flush()


# --------------------------------------------------------------------------------------------------
# Check


def check(fs: FileSet, workers: int) -> tuple[list[str], list[str]]:
    """Do both contestants compute the same thing? On an even spread of N_CHECK files: the job's
    rows against the baseline's rows, PDQ against mmcore's full mode. Returns (lines, warnings)."""
    import numpy as np

    import mmcore
    from mmcore.jobs.config import Config
    from mmcore.jobs.runner import run
    from mmcore.jobs.schema import i64_to_u64, read_output

    k = min(N_CHECK, len(fs.rel))
    idx = sorted({round(i * (len(fs.rel) - 1) / max(k - 1, 1)) for i in range(k)})
    sub = link_folder([(fs.rel[i], Path(fs.paths[i]).resolve()) for i in idx], 0)
    out = tempfile.mkdtemp(prefix="bench_job_check_")
    out_tar = tempfile.mkdtemp(prefix="bench_job_check_tar_")
    lines: list[str] = []
    warn: list[str] = []
    try:
        run(str(sub.links), out, Config(workers=workers), progress=None)
        t = read_output(out).to_pylist()
        mm = {r["id"]: r for r in t}
        run(str(sub.tars), out_tar, Config(workers=workers), progress=None)
        from_tar = {r["member"]: r for r in read_output(out_tar).to_pylist()}
        _quiet_worker()
        base = {fs.rel[i]: baseline_row(fs.paths[i]) for i in idx}
    finally:
        for d in (out, out_tar, sub.links, sub.tars):
            shutil.rmtree(d, ignore_errors=True)
    where = ("id", "source_uri", "member")
    same_rows = [
        n for n in mm if n in from_tar and all(mm[n][c] == from_tar[n][c] for c in mm[n] if c not in where)
    ]
    lines.append(
        f"check: the WebDataset run's rows == the directory run's on {len(same_rows)}/{len(mm)} "
        "(every column but id, source_uri and member)"
    )
    if len(same_rows) != len(mm) or len(from_tar) != len(mm):
        warn.append(
            f"check: the WebDataset run differs on {', '.join(n for n in mm if n not in same_rows)}"[:300]
        )
    both = [n for n in base if base[n]["status"] == "OK" and mm[n]["status"] in ("OK", "OK_WARNING")]
    only_mm = [n for n in base if base[n]["status"] != "OK" and mm[n]["status"] in ("OK", "OK_WARNING")]
    only_base = [n for n in base if base[n]["status"] == "OK" and mm[n]["status"] not in ("OK", "OK_WARNING")]
    lines.append(
        f"check on {len(idx)} files (even spread): both OK {len(both)}, only mmcore OK {len(only_mm)}, "
        f"only the baseline OK {len(only_base)}"
    )
    for n in only_mm + only_base:
        b, m = base[n], mm[n]
        warn.append(f"check: {n}: baseline {b['status']} ({b['error']}), mmcore {m['status']} ({m['error']})")

    def u64(v: int) -> int:
        return int(i64_to_u64(np.array([v], dtype=np.int64))[0])

    for kind in ("phash", "dhash", "ahash"):
        eq = [n for n in both if u64(mm[n][kind]) == u64(base[n][kind])]
        lines.append(f"check: job {kind} == imagehash on {len(eq)}/{len(both)}")
        if len(eq) != len(both):
            bad = [n for n in both if n not in eq]
            warn.append(f"check: {kind} differs from imagehash on {len(bad)} file(s): {', '.join(bad[:4])}")
    for what, cols in (
        ("width/height (after EXIF orientation)", ("width", "height")),
        ("sha256", ("content_sha256",)),
    ):
        eq = [n for n in both if all(mm[n][c] == base[n][c] for c in cols)]
        lines.append(f"check: job {what} == baseline on {len(eq)}/{len(both)}")
        if len(eq) != len(both):
            warn.append(f"check: {what} differs on {', '.join(n for n in both if n not in eq)}"[:300])
    data = []
    for n in both:
        with open(fs.links / n, "rb") as f:
            data.append(f.read())
    if data:
        full = mmcore.hash_batch(data, kinds=["pdq"], mode="full", threads=workers)
        d_full = [mmcore.hamming(bytes(full["pdq"][j]), base[n]["pdq"]) for j, n in enumerate(both)]
        d_ref = [mmcore.hamming(mm[n]["pdq"], base[n]["pdq"]) for n in both]
        same = sum(x == 0 for x in d_full)
        lines.append(
            f"check: PDQ of hash_batch(mode='full') == pdqhash.compute on {same}/{len(both)} "
            f"(max distance {max(d_full)}); the job's PDQ is the C++-reference mode (squashes > 512 px to "
            f"512x512 first), pdqhash hashes full resolution: their distance median "
            f"{float(np.median(d_ref)):.0f}, max {max(d_ref)} bits (information, not an error)"
        )
        if max(d_full) > 0:
            warn.append(
                f"check: mmcore PDQ full mode differs from pdqhash.compute (max distance {max(d_full)})"
            )
    return lines, warn


def cost_split(fs: FileSet, limit: int) -> list[str]:
    """Where the time goes, in one process on an even spread of ``limit`` files: the baseline's
    steps, and mmcore's hash_batch with every kind / PDQ alone in reference and full mode."""
    import imagehash
    import numpy as np
    import pdqhash
    from PIL import Image

    import mmcore

    k = min(limit, len(fs.rel))
    idx = sorted({round(i * (len(fs.rel) - 1) / max(k - 1, 1)) for i in range(k)})
    data = []
    for i in idx:
        with open(fs.paths[i], "rb") as f:
            data.append(f.read())
    t = dict.fromkeys(("open", "ih", "pdq"), math.inf)
    mm = dict.fromkeys(("all", "ref", "full"), math.inf)
    _quiet_worker()
    for _ in range(2):  # best of two passes: the machine may be shared
        r = dict.fromkeys(t, 0.0)
        for b in data:
            try:
                t0 = time.perf_counter()
                img = Image.open(io.BytesIO(b))
                img.load()
                t1 = time.perf_counter()
                for fn in (imagehash.phash, imagehash.dhash, imagehash.average_hash):
                    fn(img)
                t2 = time.perf_counter()
                pdqhash.compute(np.asarray(img.convert("RGB")))
                t3 = time.perf_counter()
            except Exception:
                continue  # the failing files count in the table, not here
            r["open"] += t1 - t0
            r["ih"] += t2 - t1
            r["pdq"] += t3 - t2
        t = {k: min(t[k], r[k]) for k in t}
        for name, kinds, mode in (
            ("all", ["phash", "dhash", "ahash", "pdq"], "exact"),
            ("ref", ["pdq"], "exact"),
            ("full", ["pdq"], "full"),
        ):
            t0 = time.perf_counter()
            mmcore.hash_batch(data, kinds=kinds, mode=mode, threads=1)
            mm[name] = min(mm[name], time.perf_counter() - t0)
    base = sum(t.values())
    return [
        f"where the time goes, one process, {len(data)} files (even spread), best of 2, seconds: baseline "
        f"{base:.2f} = Image.open + load {t['open']:.2f}, imagehash phash + dhash + average_hash "
        f"{t['ih']:.2f} (each converts to grey and resizes), RGB + pdqhash.compute {t['pdq']:.2f} "
        f"({100 * t['pdq'] / max(base, 1e-9):.0f}%); mmcore hash_batch(threads=1): the job's 4 kinds "
        f"exact {mm['all']:.2f}, PDQ alone reference mode (the job's) {mm['ref']:.2f}, full mode "
        f"(pdqhash's) {mm['full']:.2f}",
    ]


# --------------------------------------------------------------------------------------------------
# Report


def version_lines() -> list[str]:
    import importlib.metadata as md

    out = [f"Python {platform.python_version()} ({sys.executable})"]
    for dist in ("numpy", "Pillow", "ImageHash", "scipy", "pdqhash", "pyarrow"):
        try:
            v = md.version(dist)
            if dist == "Pillow":
                from PIL import features

                v += f" (libjpeg-turbo {features.version('libjpeg_turbo')})"
            out.append(f"{dist} {v}")
        except Exception as e:
            out.append(f"{dist}: not available ({type(e).__name__})")
    return out


def table(rows: list[Contestant], fs: FileSet, workers: int) -> tuple[list[str], list[list[str]]]:
    head = [
        "contestant",
        "runs",
        "workers",
        "best s",
        "images/s",
        "MB/s",
        "vs baseline",
        "rows OK / failed",
        "output MB",
    ]
    n, mb = len(fs.rel), sum(fs.byte_sizes) / 1e6
    best = {c.name: min(c.seconds) for c in rows if c.seconds}
    body = []
    for c in rows:
        if c.name not in best:
            body.append([c.name, c.how, str(workers), "-", "n/a (below)", "", "", "", ""])
            continue
        s = best[c.name]
        ratio = f"{best[c.base] / s:.2f}x" if c.base in best else ""
        ok = c.counts.get("OK", 0) + c.counts.get("OK_WARNING", 0)
        failed = sum(c.counts.values()) - ok
        body.append(
            [
                c.name,
                c.how,
                str(workers),
                f"{s:.2f}",
                f"{n / s:,.1f}",
                f"{mb / s:.1f}",
                ratio,
                f"{ok} / {failed}",
                f"{c.out_bytes / 1e6:.2f}",
            ]
        )
    return head, body


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--source", type=Path, action="append", help="image folder (repeatable; default the corpus)"
    )
    ap.add_argument("--limit", type=int, default=None, help="at most this many files (even spread)")
    ap.add_argument(
        "--workers", type=int, default=None, help="workers for every contestant (default all cores)"
    )
    ap.add_argument("--repeat", type=int, default=None, help="timed rounds; the best is kept (default 2)")
    ap.add_argument(
        "--quick", action="store_true", help="smoke run: 100 files (or --limit), 1 round (or --repeat)"
    )
    ap.add_argument(
        "--note", default=None, help="a line for the header (e.g. 'machine shared with other jobs')"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="output folder")
    ap.add_argument("--baseline-script", nargs=2, metavar=("FILE_LIST", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = args.workers or usable
    if args.baseline_script:
        return baseline_script(args.baseline_script[0], args.baseline_script[1], workers)
    if args.quick:
        args.limit = args.limit or 100
    args.repeat = args.repeat or (1 if args.quick else 2)
    sources = args.source or [CORPUS / d for d in DEFAULT_DIRS]
    missing = [str(s) for s in sources if not s.is_dir()]
    if missing:
        ap.error(f"no image folder at {', '.join(missing)} (give --source DIR)")
    try:
        import imagehash  # noqa: F401
        import pdqhash  # noqa: F401
        import pyarrow  # noqa: F401
        from PIL import Image  # noqa: F401
    except ImportError as e:
        ap.error(f"the baseline needs Pillow, imagehash, pdqhash and pyarrow ({e}): pip install '.[bench]'")

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_decode as bd
    from bench_hash import md_table, print_plain

    files, other = pick_files(sources, args.limit)
    if not files:
        ap.error(f"no image files under {', '.join(str(s) for s in sources)}")
    fs = link_folder(files, other)
    file_list = fs.links.parent / f"{fs.links.name}.txt"
    file_list.write_text("\n".join(fs.paths) + "\n")
    t_start = time.perf_counter()
    try:
        header = [*bd.machine_lines(), bd.mmcore_line(codecs=True), *version_lines(), *describe(fs, sources)]
        if args.note:
            header.append(f"note: {args.note}")
        header.append(
            f"timing: wall clock per job into a fresh temporary folder, best of {args.repeat} round(s) "
            f"(each round runs every contestant once, alternating the order); {workers} workers each"
        )
        for line in header:
            print(line)
        print(flush=True)
        check_lines, warn = check(fs, workers)
        print("\n".join(check_lines), flush=True)
        rows = contestants(fs, workers, file_list)
        run_rounds(rows, args.repeat)
        split = cost_split(fs, SPLIT_FILES)
    finally:
        shutil.rmtree(fs.links, ignore_errors=True)
        shutil.rmtree(fs.tars, ignore_errors=True)
        file_list.unlink(missing_ok=True)
    head, body = table(rows, fs, workers)
    stage_lines = [
        f"{c.name}, time per stage of its best round (s): "
        + ", ".join(f"{k} {v:.1f}" for k, v in c.stages.items())
        for c in rows
        if c.stages
    ]
    elapsed = time.perf_counter() - t_start
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    tail = f"bench wall time {elapsed:.0f} s; load average at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    notes = [
        "vs baseline: in-process rows / baseline (in-process); the CLI row / baseline (subprocess)",
        *stage_lines,
        *[f"{c.name}: {c.note}" for c in rows if c.note],
        *split,
        tail,
    ]
    print()
    print_plain(head, body, 3)
    print()
    print("\n".join(notes))
    if warn:
        print("\nWARNINGS (the contestants do not compute the same thing on these files):")
        print("\n".join(f"  {w}" for w in warn))
    md = ["# bench_job", "", *[f"- {x}" for x in header], *[f"- {x}" for x in check_lines], ""]
    md += ["## End to end", "", *md_table(head, body, 2), "", *[f"- {x}" for x in notes], ""]
    if warn:
        md += ["**Warnings** (the contestants do not compute the same thing on these files):", ""]
        md += [f"- {w}" for w in warn] + [""]
    args.out.mkdir(parents=True, exist_ok=True)
    md_path, png = args.out / "bench_job.md", args.out / "bench_job.png"
    md_path.write_text("\n".join(md) + "\n")
    chart_rows = [_ChartRow(c.name, {workers: len(fs.rel) / min(c.seconds)}) for c in rows if c.seconds]
    chart_note = bd.bar_chart(
        png, [(f"{len(fs.rel)} files, {workers} workers", chart_rows)], [workers], header[0]
    )
    print(f"\nwrote {md_path}" + (f" ({chart_note})" if chart_note else f" and {png}"))
    return 0


@dataclass
class _ChartRow:
    tool: str
    ips: dict[int, float]

    @property
    def kind(self) -> str:  # bar_chart outlines the mmcore bars
        return "mmcore" if self.tool.startswith("mmcore") else "competitor"


if __name__ == "__main__":
    sys.exit(main())
