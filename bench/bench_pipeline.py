#!/usr/bin/env python3
"""mmcore's DALI pipeline next to the library path and a DALI-only pipeline, same files, same run.

Standalone and offline; needs NVIDIA DALI and mmcore built with its DALI plugin
(``mmcore.pipeline.built_against()`` not None). Everything runs on the CPU (DALI's CPU-only mode,
``device_id=None``), every contestant with the same N threads (``--threads``, default all usable
cores) and batch size B (``--batch-size``, default 64) on the same files, which each contestant
reads by path: the selection below reads every file before timing, so all of them come from the
page cache (warm), and none holds the images in memory ahead of the others.

Contestants:

  mmcore pipeline            mmcore.pipeline.build(paths, hashes=(phash, pdq), num_threads=N,
                             batch_size=B) iterated to the end: mmcore_decode -> mmcore_hash (exact
                             mode) inside DALI, one Arrow RecordBatch out per batch; its Python feed
                             reads the files (fn.external_source: mmcore/pipeline.py)
  mmcore pipeline thumb 256  the same with thumbnail=256: a second, reduced-size mmcore_decode of each
                             file (short side 256, never enlarged) and a JPEG encode per image
  mmcore hash_batch          the same work without DALI: mmcore.hash_batch(chunk, kinds=(phash, pdq),
                             threads=N) over the paths in chunks of B
  DALI-only                  what users run today, no hashes: fn.readers.file ->
                             fn.decoders.image(device="cpu", output_type=RGB) ->
                             fn.resize(resize_shorter=256) (linear, antialiased; EXIF orientation on)
  DALI + mmcore_decode       mmcore_decode as a drop-in for those two: fn.readers.file ->
                             fn.mmcore_decode(short_side=256) (mmcore.thumbnail: JPEG's scaled IDCT
                             where the reduced image still covers twice the target, EXIF orientation,
                             lanczos3), its status output counted

"vs DALI-only" divides images/s by the DALI-only row's. The two DALI rows run Pipeline(batch_size=B,
num_threads=N, device_id=None, prefetch_queue_depth=2) (mmcore's settings) for ceil(n / B)
iterations: the reader pads the last batch with repeats of its last file, which they decode too.

Timing: the wall clock of a full pass, best of ``--repeat`` rounds (each round runs every contestant
once, in alternating order, so that a burst of load on a shared machine costs each of them one
pass). A pass starts with a built pipeline and ends when its last batch is out; images/s is n over
it. The construction before it and the teardown after it are timed apart, each in its own column:
"build s" (the fastest round's) is mmcore.pipeline.build() plus the DALI Pipeline + build() that
ImagePipeline makes lazily on its first batch (the bench wraps ``ImagePipeline._pipeline`` to time
that call and moves it from the pass to the build), and Pipeline + build() for the DALI rows;
"teardown s" (the best pass's) runs from the last batch out to the pipeline gone: a DALI reader
with prefetch_queue_depth=2 has run ahead into the next epoch by then, and deleting the pipeline
waits for that work. DALI and its codecs print a line on stderr per refused file and per libpng
warning: the probe's stderr is dropped, and file descriptor 2 is silenced during the check and the
passes.

Files: ``--source DIR`` (repeatable; default ``../shared/corpus/{jpeg,png,webp}``), recursively, the
names ending in .jpg / .jpeg / .png / .webp, sorted; ``--limit N`` takes an even spread of N. DALI's
decoder raises on a file it cannot decode and the pipeline is dead from then on (DALI issue #3913),
so the DALI-only row can only run on files that all decode: the bench keeps the files that
mmcore.decode_batch decodes with status OK, then drops those that the DALI-only graph still refuses
(a probe: the graph fed from memory batch by batch, a failing batch split in halves down to the
file, in a child process: building a DALI pipeline after one raised now and then segfaults, and a
crashed probe is restarted after its last finished batch), and lists both.

Before timing, a check on 20 files (an even spread of those kept): both mmcore pipelines' phash,
pdq, pdq_quality and status equal hash_batch's, row for row (otherwise the bench stops with exit
status 1, before any timing); the thumbnails are JPEGs whose short side is min(256, the image's);
and the DALI + mmcore_decode row's images next to DALI-only's: shapes and PSNR (information: two
filters). The check also warms every code path up (plugin loaded, decoders initialised).

    python bench/bench_pipeline.py                  # 886 corpus files, 2 rounds (~40 s on 2 cores)
    python bench/bench_pipeline.py --quick          # 60 files, 1 round: a smoke run
    python bench/bench_pipeline.py --source DIR --limit 500 --threads 4 --repeat 3

Prints the machine, mmcore.build_info(), the DALI and library versions, the file set, the check, then
the table; writes bench_pipeline.md and bench_pipeline.png (when matplotlib is importable) into --out
(default bench/results/).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
DEFAULT_DIRS = ("jpeg", "png", "webp")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
HASHES = ("phash", "pdq")
THUMB = 256
N_CHECK = 20
QUICK_FILES = 60
BASE = "DALI-only"


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """File descriptor 2 to /dev/null for the block: DALI's decoders (nvImageCodec, OpenCV, libpng)
    write there from C, one line per refused file or warning."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def spread(n: int, k: int) -> list[int]:
    """An even spread of min(k, n) indices into range(n), first and last included."""
    k = min(k, n)
    return sorted({round(i * (n - 1) / max(k - 1, 1)) for i in range(k)})


# --------------------------------------------------------------------------------------------------
# Files


@dataclass
class FileSet:
    paths: list[str]  # the files every contestant reads (absolute)
    byte_sizes: list[int]
    picked: int  # image files picked under the sources (after --limit)
    left_out: int  # files under the sources that are not images by name
    not_ok: list[tuple[str, str, str]]  # (path, status, error) of the files mmcore does not decode OK
    refused: list[str]  # files mmcore decodes OK but the DALI-only graph refuses
    probe_crashes: list[int]  # exit status of each DALI probe process that crashed (restarted)


def pick_files(sources: list[Path], limit: int | None) -> tuple[list[str], int]:
    """The image files under ``sources`` (absolute paths), sorted, an even spread of ``limit`` of
    them; and how many other files were left out."""
    found: list[str] = []
    other = 0
    for src in sources:
        for d, dirs, names in os.walk(src):
            dirs.sort()
            for n in sorted(names):
                p = os.path.abspath(os.path.join(d, n))
                if not os.path.isfile(p):
                    continue
                if n.lower().endswith(IMAGE_EXTENSIONS):
                    found.append(p)
                else:
                    other += 1
    if limit is not None and limit < len(found):
        found = [found[i] for i in spread(len(found), limit)]
    return found, other


def dali_resize(enc: Any) -> Any:
    """The DALI-only graph: decode to RGB on the CPU, resize the short side to THUMB."""
    from nvidia.dali import fn, types

    return fn.resize(fn.decoders.image(enc, device="cpu", output_type=types.RGB), resize_shorter=THUMB)


def memory_pipeline(graph: Callable[[Any], list[Any]], threads: int, batch: int) -> Any:
    """A built CPU pipeline fed from memory (``feed_input("enc", ...)``), outputs ``graph(enc)``."""
    from nvidia.dali import Pipeline, fn, types

    pipe = Pipeline(batch_size=batch, num_threads=threads, device_id=None, prefetch_queue_depth=1)
    with pipe:
        enc = fn.external_source(name="enc", dtype=types.UINT8, ndim=1)
        pipe.set_outputs(*graph(enc))
    pipe.build()
    return pipe


def probe_script(file_list: str, threads: int, batch: int) -> int:
    """``--probe FILE_LIST``: the DALI-only graph fed from memory over the listed files, batch by
    batch, a failing batch split in halves down to the file. Prints ``refused PATH`` for each file it
    raises on and ``done K`` once the K-th batch of the list is through, as it goes."""
    import gc

    with open(file_list) as f:
        paths = [ln.rstrip("\n") for ln in f if ln.strip()]
    pipe = None
    for k in range(0, len(paths), batch):
        todo = [paths[k : k + batch]]
        while todo:
            chunk = todo.pop()
            if pipe is None:
                pipe = memory_pipeline(lambda enc: [dali_resize(enc)], threads, batch)
            pipe.feed_input("enc", [np.fromfile(p, np.uint8) for p in chunk])
            try:
                pipe.run()
                continue
            except Exception:
                pipe = None  # a pipeline that raised is dead: gone before the next one is built
                gc.collect()
            if len(chunk) == 1:
                print(f"refused {chunk[0]}", flush=True)
            else:
                todo += [chunk[len(chunk) // 2 :], chunk[: len(chunk) // 2]]
        print(f"done {k // batch}", flush=True)
    return 0


def dali_refused(paths: list[str], threads: int, batch: int) -> tuple[list[str], list[int]]:
    """The files among ``paths`` on which the DALI-only graph raises, and the exit status of each
    probe process that crashed. The probe runs in a child process (this script, ``--probe``): with
    DALI 2.4, building a pipeline after one raised now and then segfaults, so a crashed child is
    started again after the last batch it reported."""
    import subprocess
    import tempfile

    bad: set[str] = set()
    crashes: list[int] = []
    start = 0
    while start < len(paths):
        with tempfile.NamedTemporaryFile("w", prefix="bench_pipeline_", suffix=".txt", delete=False) as f:
            f.write("\n".join(paths[start:]) + "\n")
        try:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--probe", f.name]
            cmd += ["--threads", str(threads), "--batch-size", str(batch)]
            p = subprocess.run(cmd, capture_output=True, text=True)  # DALI's stderr chatter stays there
        finally:
            os.unlink(f.name)
        done = -1
        for line in p.stdout.splitlines():
            what, _, arg = line.partition(" ")
            if what == "refused":
                bad.add(arg)
            elif what == "done":
                done = int(arg)
        if p.returncode == 0:
            break
        if p.returncode > 0:  # an error, not a signal: running it again would not help
            raise RuntimeError(f"the DALI probe failed (exit {p.returncode}): {p.stderr.strip()[-500:]}")
        crashes.append(p.returncode)
        if len(crashes) > 5:
            raise RuntimeError(f"the DALI probe crashed {len(crashes)} times: {p.stderr.strip()[-500:]}")
        start += (done + 1) * batch
    return [p for p in paths if p in bad], crashes


def select_files(paths: list[str], left_out: int, threads: int, batch: int) -> FileSet:
    """The files every contestant can run on: decoded OK by mmcore, and by DALI's decoder."""
    import mmcore

    ok: list[str] = []
    not_ok: list[tuple[str, str, str]] = []
    for i in range(0, len(paths), batch):
        chunk = paths[i : i + batch]
        r = mmcore.decode_batch(chunk, threads=threads)  # reads every file: the page cache is warm
        for p, s, e in zip(chunk, r.status, r.errors, strict=True):
            if int(s) == mmcore.Status.OK:
                ok.append(p)
            else:
                not_ok.append((p, mmcore.Status(int(s)).name, e or ""))
    refused, crashes = dali_refused(ok, threads, batch)
    gone = set(refused)
    kept = [p for p in ok if p not in gone]
    return FileSet(kept, [os.path.getsize(p) for p in kept], len(paths), left_out, not_ok, refused, crashes)


def describe(fs: FileSet, sources: list[Path]) -> list[str]:
    n = len(fs.paths)
    kinds = Counter(Path(p).suffix.lower().lstrip(".").replace("jpg", "jpeg") for p in fs.paths)
    mb = sum(fs.byte_sizes) / 1e6
    lines = [
        f"files: {fs.picked} picked from {', '.join(str(s) for s in sources)}; {n} kept ({mb:.1f} MB, "
        f"{1e-3 * sum(fs.byte_sizes) / max(n, 1):.0f} kB mean; "
        + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
        + "); every contestant reads them by path from the page cache (warm)",
        f"dropped, not decoded with status OK by mmcore.decode_batch: {len(fs.not_ok)}"
        + "".join(f"; {Path(p).name} {s} ({e[:120]})" for p, s, e in fs.not_ok),
        f"dropped, decoded OK by mmcore but refused by DALI's decoders.image + resize (it raises and the "
        f"pipeline dies): {len(fs.refused)}" + "".join(f"; {Path(p).name}" for p in fs.refused),
    ]
    if fs.probe_crashes:
        lines.append(
            f"the DALI probe process crashed {len(fs.probe_crashes)} time(s) (exit status "
            f"{', '.join(map(str, fs.probe_crashes))}); restarted after its last finished batch"
        )
    if fs.left_out:
        lines.append(f"left out: {fs.left_out} files whose names are not {'/'.join(IMAGE_EXTENSIONS)}")
    return lines


# --------------------------------------------------------------------------------------------------
# Check


def _rows_equal(rows: list[dict[str, Any]], paths: list[str], lib: Any) -> list[str]:
    """Where a pipeline's rows differ from hash_batch's (empty when they agree)."""
    import mmcore

    bad = []
    for i, (row, p) in enumerate(zip(rows, paths, strict=True)):
        name = Path(p).name
        want = mmcore.Status(int(lib.status[i])).name
        if row["id"] != p or row["status"] != want:
            bad.append(f"{name}: id {row['id']!r}, status {row['status']} (hash_batch {want})")
            continue
        if want not in ("OK", "OK_WARNING"):
            continue
        got = (row["phash"] & ((1 << 64) - 1), row["pdq"], row["pdq_quality"])
        exp = (int(lib["phash"][i]), lib["pdq"][i].tobytes(), int(lib["pdq_quality"][i]))
        for what, g, e in zip(("phash", "pdq", "pdq_quality"), got, exp, strict=True):
            if g != e:
                g_s, e_s = (v.hex() if isinstance(v, bytes) else f"{v:#x}" for v in (g, e))
                bad.append(f"{name}: {what} {g_s} != hash_batch {e_s}")
    return bad


def check(paths: list[str], threads: int, batch: int) -> tuple[list[str], list[str], list[str]]:
    """On an even spread of N_CHECK files: the pipelines' hashes against hash_batch's (failures),
    the thumbnails' size (warnings), mmcore_decode's output next to DALI-only's (information).
    Returns (lines, warnings, failures)."""
    from nvidia.dali import fn

    import mmcore
    import mmcore.pipeline as mpl

    sub = [paths[i] for i in spread(len(paths), N_CHECK)]
    lib = mmcore.hash_batch(sub, kinds=HASHES, threads=threads)
    lines: list[str] = []
    warn: list[str] = []
    fail: list[str] = []
    thumbs: list[dict[str, Any]] = []
    for label, thumb in (("mmcore pipeline", None), (f"mmcore pipeline thumbnail={THUMB}", THUMB)):
        ip = mpl.build(sub, hashes=HASHES, thumbnail=thumb, num_threads=threads, batch_size=batch)
        got = ip.to_table().to_pylist()
        if len(got) != len(sub):
            fail.append(f"check: {label} gave {len(got)} rows for {len(sub)} files")
            continue
        bad = _rows_equal(got, sub, lib)
        lines.append(
            f"check: {label} phash / pdq / pdq_quality / status == hash_batch on {len(sub) - len(bad)}"
            f"/{len(sub)} files"
        )
        fail += [f"check: {label}: {b}" for b in bad]
        if thumb:
            thumbs = got
    if thumbs:
        blobs = [r["thumbnail"] for r in thumbs]
        dec = mmcore.decode_batch([b or b"" for b in blobs], threads=threads)
        good = []
        for r, b, img in zip(thumbs, blobs, dec.images, strict=True):
            want = min(THUMB, r["width"], r["height"])
            if b is not None and b[:2] == b"\xff\xd8" and img is not None and min(img.shape[:2]) == want:
                good.append(r)
            else:
                shape = None if img is None else img.shape
                warn.append(f"check: thumbnail of {Path(r['id']).name}: {shape}, short side {want} expected")
        lines.append(
            f"check: thumbnails are JPEGs with short side min({THUMB}, the image's) on "
            f"{len(good)}/{len(thumbs)}"
        )

    def both(enc: Any) -> list[Any]:
        return [dali_resize(enc), fn.mmcore_decode(enc, short_side=THUMB)[0]]

    pipe = memory_pipeline(both, threads, len(sub))
    pipe.feed_input("enc", [np.fromfile(p, np.uint8) for p in sub])
    with quiet_stderr():
        a_out, b_out = pipe.run()
    same, off, psnr = 0, 0, []
    for i in range(len(sub)):
        a, b = np.asarray(a_out[i]), np.asarray(b_out[i])
        if a.shape != b.shape:
            off = max(off, *(abs(x - y) for x, y in zip(a.shape, b.shape, strict=True)))
            continue
        same += 1
        mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
        psnr.append(99.0 if mse == 0 else 10 * math.log10(255**2 / mse))
    del pipe
    lines.append(
        f"check: mmcore_decode(short_side={THUMB}) vs decoders.image + resize(resize_shorter={THUMB}): same "
        f"shape on {same}/{len(sub)}"
        + (f" (the others differ by {off} px at most)" if same < len(sub) else "")
        + (
            f"; PSNR median {float(np.median(psnr)):.1f} dB, min {min(psnr):.1f} dB (lanczos3 vs DALI's "
            f"antialiased linear filter: information, not an error)"
            if psnr
            else ""
        )
    )
    return lines, warn, fail


# --------------------------------------------------------------------------------------------------
# Contestants


@dataclass
class Pass:
    build: float  # seconds constructing the pipeline, not in the pass
    seconds: float  # the pass: from a built pipeline to its last batch out
    teardown: float | None  # last batch out to pipeline gone, not in the pass (None: no pipeline)
    counts: Counter[str]  # rows per status
    lazy_timed: bool = True  # False: an mmcore pipeline's lazy DALI build stayed in the pass


@dataclass
class Contestant:
    name: str
    how: str
    fn: Callable[[], Pass]
    note: str = ""
    runs: list[Pass] = field(default_factory=list)

    def best(self) -> Pass:
        return min(self.runs, key=lambda r: r.seconds)


def mmcore_pipeline(paths: list[str], threads: int, batch: int, thumbnail: int | None) -> Callable[[], Pass]:
    import mmcore.pipeline as mpl

    def go() -> Pass:
        t0 = time.perf_counter()
        ip = mpl.build(paths, hashes=HASHES, thumbnail=thumbnail, num_threads=threads, batch_size=batch)
        built = time.perf_counter() - t0
        # ImagePipeline makes its DALI pipeline (Pipeline + build) on the first batch: timed here and
        # moved from the pass to the build. Without that private method it stays in the pass (a note).
        lazy: list[float] = []
        make = getattr(ip, "_pipeline", None)
        if make is not None:

            def timed(*a: Any, **kw: Any) -> Any:
                t = time.perf_counter()
                made = make(*a, **kw)
                lazy.append(time.perf_counter() - t)
                return made

            ip._pipeline = timed
        counts: Counter[str] = Counter()
        t1 = last = time.perf_counter()
        for b in ip:
            counts.update(b.column("status").to_pylist())
            last = time.perf_counter()
        t2 = time.perf_counter()  # the generator has ended: its DALI pipeline is gone
        return Pass(built + sum(lazy), last - t1 - sum(lazy), t2 - last, counts, make is not None)

    return go


def library(paths: list[str], threads: int, batch: int) -> Callable[[], Pass]:
    import mmcore

    def go() -> Pass:
        codes: Counter[int] = Counter()
        t0 = time.perf_counter()
        for i in range(0, len(paths), batch):
            r = mmcore.hash_batch(paths[i : i + batch], kinds=HASHES, threads=threads)
            codes.update(np.asarray(r.status).tolist())
        t1 = time.perf_counter()
        return Pass(0.0, t1 - t0, None, Counter({mmcore.Status(k).name: v for k, v in codes.items()}))

    return go


def dali_reader(
    paths: list[str], threads: int, batch: int, graph: Callable[[Any], list[Any]]
) -> Callable[[], Pass]:
    """fn.readers.file over ``paths`` -> ``graph``; a second output, when there is one, is a status
    per sample (mmcore_decode's); without it every sample counts as OK (DALI raises otherwise)."""
    import mmcore

    def go() -> Pass:
        from nvidia.dali import Pipeline, fn

        t0 = time.perf_counter()
        pipe = Pipeline(batch_size=batch, num_threads=threads, device_id=None, prefetch_queue_depth=2)
        with pipe:
            enc, _ = fn.readers.file(files=paths, name="reader", pad_last_batch=True)
            pipe.set_outputs(*graph(enc))
        pipe.build()
        t1 = time.perf_counter()
        codes: Counter[int] = Counter()
        left = len(paths)
        with quiet_stderr():
            while left > 0:
                outs = pipe.run()
                k = min(left, batch)  # the rest of the last batch repeats its last file
                if len(outs) > 1:
                    codes.update(np.asarray(outs[1].as_array()).reshape(-1)[:k].tolist())
                else:
                    codes[int(mmcore.Status.OK)] += k
                left -= k
            last = time.perf_counter()
            del outs, pipe
        t2 = time.perf_counter()
        counts = Counter({mmcore.Status(k).name: v for k, v in codes.items()})
        return Pass(t1 - t0, last - t1, t2 - last, counts)

    return go


def contestants(paths: list[str], threads: int, batch: int) -> list[Contestant]:
    from nvidia.dali import fn

    def drop_in(enc: Any) -> list[Any]:
        img, status, _, _ = fn.mmcore_decode(enc, short_side=THUMB)
        return [img, status]

    kinds = "(" + ", ".join(HASHES) + ")"
    common = f"num_threads={threads}, batch_size={batch}"
    return [
        Contestant(
            "mmcore pipeline",
            f"mmcore.pipeline.build(paths, hashes={kinds}, {common}): mmcore_decode -> mmcore_hash",
            mmcore_pipeline(paths, threads, batch, None),
        ),
        Contestant(
            f"mmcore pipeline thumbnail={THUMB}",
            f"the same with thumbnail={THUMB}: + a reduced mmcore_decode and a JPEG encode per image",
            mmcore_pipeline(paths, threads, batch, THUMB),
        ),
        Contestant(
            "mmcore hash_batch (no DALI)",
            f"mmcore.hash_batch(chunk of {batch} paths, kinds={kinds}, threads={threads})",
            library(paths, threads, batch),
        ),
        Contestant(
            BASE,
            f"readers.file -> decoders.image(cpu, RGB) -> resize(resize_shorter={THUMB}); no hashes",
            dali_reader(paths, threads, batch, lambda enc: [dali_resize(enc)]),
        ),
        Contestant(
            "DALI + mmcore_decode",
            f"readers.file -> mmcore_decode(short_side={THUMB}); no hashes",
            dali_reader(paths, threads, batch, drop_in),
        ),
    ]


def run_rounds(rows: list[Contestant], repeat: int) -> None:
    for r in range(repeat):
        order = rows if r % 2 == 0 else rows[::-1]
        for c in order:
            if c.note:
                continue
            try:
                p = c.fn()
            except Exception as e:
                c.note = "failed: " + " ".join(f"{type(e).__name__}: {e}".split())[:300]
                print(f"round {r + 1}: {c.name:32s} {c.note}", flush=True)
                continue
            c.runs.append(p)
            down = "" if p.teardown is None else f" (teardown {p.teardown:.2f} s)"
            print(
                f"round {r + 1}: {c.name:32s} build {p.build:6.3f} s  pass {p.seconds:6.2f} s{down}  "
                f"{dict(sorted(p.counts.items()))}",
                flush=True,
            )


# --------------------------------------------------------------------------------------------------
# Report


def version_lines() -> list[str]:
    import importlib.metadata as md

    import nvidia.dali as dali

    import mmcore
    import mmcore.pipeline as mpl

    bi = mmcore.build_info()
    out = [
        f"Python {platform.python_version()} ({sys.executable})",
        f"DALI {dali.__version__} ({mpl.DALI_PACKAGE}); mmcore's plugin {mpl.plugin_path()} built against "
        f"DALI {mpl.built_against()}; build_info: dali_available {bi.get('dali_available')}, "
        f"hardware_threads {bi.get('hardware_threads')}, cuda_available {bi.get('cuda_available')}",
    ]
    codecs = sorted(
        f"{d.metadata['Name']} {d.version}"
        for d in md.distributions()
        if (d.metadata["Name"] or "").startswith("nvidia-nvimgcodec")
    )
    out += codecs or ["nvidia-nvimgcodec: not installed (DALI's CPU decoders come with it)"]
    for dist in ("numpy", "pyarrow"):
        try:
            out.append(f"{dist} {md.version(dist)}")
        except md.PackageNotFoundError:
            out.append(f"{dist}: not installed")
    return out


def table(rows: list[Contestant], fs: FileSet, threads: int, batch: int) -> tuple[list[str], list[list[str]]]:
    head = [
        "contestant",
        "runs",
        "threads",
        "batch",
        "build s",
        "best pass s",
        "teardown s",
        "images/s",
        "MB/s",
        "vs DALI-only",
        "rows OK / failed",
    ]
    n, mb = len(fs.paths), sum(fs.byte_sizes) / 1e6
    best = {c.name: c.best() for c in rows if c.runs}
    body = []
    for c in rows:
        if c.name not in best:
            body.append([c.name, c.how, str(threads), str(batch), "-", "-", "-", "n/a (below)", "", "", ""])
            continue
        p = best[c.name]
        ratio = f"{best[BASE].seconds / p.seconds:.2f}x" if BASE in best else ""
        ok = p.counts.get("OK", 0) + p.counts.get("OK_WARNING", 0)
        body.append(
            [
                c.name,
                c.how,
                str(threads),
                str(batch),
                f"{min(r.build for r in c.runs):.3f}",
                f"{p.seconds:.2f}",
                "-" if p.teardown is None else f"{p.teardown:.2f}",
                f"{n / p.seconds:,.1f}",
                f"{mb / p.seconds:.1f}",
                ratio,
                f"{ok} / {sum(p.counts.values()) - ok}",
            ]
        )
    return head, body


@dataclass
class _ChartRow:
    tool: str
    ips: dict[int, float]
    kind: str  # bar_chart outlines the "mmcore" bars


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--source", type=Path, action="append", help="image folder (repeatable; default the corpus)"
    )
    ap.add_argument("--limit", type=int, default=None, help="at most this many files (even spread)")
    ap.add_argument(
        "--threads", type=int, default=None, help="threads for every contestant (default all cores)"
    )
    ap.add_argument("--batch-size", type=int, default=64, help="images per batch for every contestant")
    ap.add_argument("--repeat", type=int, default=None, help="timed rounds; the best is kept (default 2)")
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_FILES} files (or --limit), 1 round (or --repeat)",
    )
    ap.add_argument(
        "--note", default=None, help="a line for the header (e.g. 'machine shared with other jobs')"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="output folder")
    ap.add_argument("--probe", metavar="FILE_LIST", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = args.threads or usable
    batch = args.batch_size
    if threads < 1 or batch < 1:
        ap.error(f"--threads and --batch-size must be >= 1 (got {threads}, {batch})")
    if args.probe:
        return probe_script(args.probe, threads, batch)
    if args.quick:
        args.limit = args.limit or QUICK_FILES
    args.repeat = args.repeat or (1 if args.quick else 2)
    sources = args.source or [CORPUS / d for d in DEFAULT_DIRS]
    missing = [str(s) for s in sources if not s.is_dir()]
    if missing:
        ap.error(f"no image folder at {', '.join(missing)} (give --source DIR)")
    try:
        import nvidia.dali  # noqa: F401

        import mmcore.pipeline as mpl

        mpl.load_plugin()
    except ImportError as e:
        ap.error(f"this bench needs NVIDIA DALI and mmcore's DALI plugin: {e}")

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_decode as bd
    from bench_hash import md_table, print_plain

    t_start = time.perf_counter()
    picked, other = pick_files(sources, args.limit)
    if not picked:
        ap.error(f"no image files under {', '.join(str(s) for s in sources)}")
    header = [*bd.machine_lines(), bd.mmcore_line(codecs=True), *version_lines()]
    print("\n".join(header), flush=True)
    fs = select_files(picked, other, threads, batch)
    more = describe(fs, sources) + ([f"note: {args.note}"] if args.note else [])
    more.append(
        f"timing: wall clock of a full pass, best of {args.repeat} round(s) (each round runs every "
        f"contestant once, alternating the order); build and teardown apart (own columns); {threads} "
        f"threads, batch "
        f"{batch} each; CPU only"
    )
    print("\n".join(more))
    header += more
    print(flush=True)
    if not fs.paths:
        print("no file left that both mmcore and DALI decode: nothing to time")
        return 1
    check_lines, warn, fail = check(fs.paths, threads, batch)
    print("\n".join(check_lines), flush=True)
    if fail:
        print("\nCHECK FAILED (the pipeline's hashes are not hash_batch's): nothing timed")
        print("\n".join(f"  {f}" for f in fail))
        return 1
    rows = contestants(fs.paths, threads, batch)
    run_rounds(rows, args.repeat)

    head, body = table(rows, fs, threads, batch)
    n = len(fs.paths)
    padded = -n % batch
    elapsed = time.perf_counter() - t_start
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    notes = [
        f"vs DALI-only: images/s / the {BASE} row's; images/s and MB/s count the {n} files once",
        "build s: the fastest round's construction, not in the pass: mmcore.pipeline.build() plus the "
        "DALI pipeline it makes on its first batch; Pipeline(...) + build() for the DALI rows; none for "
        "hash_batch",
        "teardown s: from the last batch out to the pipeline gone, not in the pass (a DALI reader with "
        "prefetch_queue_depth=2 has run ahead into the next epoch, and deleting the pipeline waits for that)",
        f"the DALI rows also decode the {padded} repeats padding the last batch of {batch} (fn.readers.file"
        f", pad_last_batch=True); hash_batch decodes the {n} files only",
        *[f"{c.name}: {c.note}" for c in rows if c.note],
        *[
            f"{c.name}: ImagePipeline._pipeline not found: the pass includes the DALI build"
            for c in rows
            if any(not r.lazy_timed for r in c.runs)
        ],
        f"bench wall time {elapsed:.0f} s; load average at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    ]
    print()
    print_plain(head, body, 2)
    print()
    print("\n".join(notes))
    if warn:
        print("\nWARNINGS:")
        print("\n".join(f"  {w}" for w in warn))
    md = ["# bench_pipeline", "", *[f"- {x}" for x in header], *[f"- {x}" for x in check_lines], ""]
    md += ["## CPU pipelines", "", *md_table(head, body, 2), "", *[f"- {x}" for x in notes], ""]
    if warn:
        md += ["**Warnings**:", "", *[f"- {w}" for w in warn], ""]
    args.out.mkdir(parents=True, exist_ok=True)
    md_path, png = args.out / "bench_pipeline.md", args.out / "bench_pipeline.png"
    md_path.write_text("\n".join(md) + "\n")
    chart_rows = [
        _ChartRow(c.name, {threads: n / c.best().seconds}, "mmcore" if "mmcore" in c.name else "competitor")
        for c in rows
        if c.runs
    ]
    chart_note = bd.bar_chart(
        png, [(f"{n} files, {threads} threads, batch {batch}", chart_rows)], [threads], header[0]
    )
    print(f"\nwrote {md_path}" + (f" ({chart_note})" if chart_note else f" and {png}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
