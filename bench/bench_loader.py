#!/usr/bin/env python3
"""Fixed-size training batches: JPEG bytes to one (B, S, S, 3) uint8 array per batch, as a data loader
hands them to a model.

Standalone and offline. Each image is resized so that it covers S x S (aspect kept, Lanczos), centre
cropped to S x S, with its EXIF orientation applied; ``--batch`` images make one array. Rows:

  mmcore out=      ``thumbnail_batch(crop=(S, S), out=buf)``: decoded straight into one array that is
                   reused for every batch (no per-image buffers, no ``np.stack``)
  mmcore + stack   ``thumbnail_batch(crop=(S, S))`` and ``np.stack`` of its images
  Pillow           ``draft`` (reduced JPEG decode), ``exif_transpose``, ``ImageOps.fit`` (LANCZOS,
                   reducing_gap 2.0 as mmcore's default), ``np.stack``; with N > 1, N worker processes
                   started once, each building whole batches (a PyTorch DataLoader's persistent
                   ``num_workers=N``), the arrays sent back through a pipe

mmcore's rows use ``threads=N`` in one process. Every row's batches are checked for shape before timing.

    python bench/bench_loader.py                        # corpus jpeg/, S = 224, B = 64, 1 and 2 threads
    python bench/bench_loader.py --dir DIR --size 256 --batch 128 --threads 1,2,4 --repeat 5

Prints the machine, the mmcore build and the table (best of --repeat passes, images/s).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable, Iterator
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from bench_decode import machine_lines, mmcore_line

import mmcore

Loader = Callable[[list[list[bytes]], int], Iterator[np.ndarray]]


def checked(r: mmcore.BatchResult) -> mmcore.BatchResult:
    """A batch whose every record decoded (the rows time whole batches only)."""
    if not r.ok.all():
        raise RuntimeError(f"a record failed: {next(e for e in r.errors if e)}")
    return r


def mmcore_out(size: int) -> Loader:
    def run(batches: list[list[bytes]], threads: int) -> Iterator[np.ndarray]:
        buf = np.empty((len(batches[0]), size, size, 3), np.uint8)
        for b in batches:
            checked(mmcore.thumbnail_batch(b, crop=(size, size), threads=threads, out=buf))
            yield buf

    return run


def mmcore_stack(size: int) -> Loader:
    def run(batches: list[list[bytes]], threads: int) -> Iterator[np.ndarray]:
        for b in batches:
            r = checked(mmcore.thumbnail_batch(b, crop=(size, size), threads=threads))
            yield np.stack(r.images)  # type: ignore[arg-type]

    return run


def pillow_batch(args: tuple[list[bytes], int]) -> np.ndarray:
    from PIL import Image, ImageOps

    blobs, size = args
    out = []
    for data in blobs:
        im = Image.open(io.BytesIO(data))
        im.draft("RGB", (size * 2, size * 2))  # a reduced decode that keeps >= 2x the target (gap 2.0)
        im = ImageOps.exif_transpose(im).convert("RGB")
        out.append(np.asarray(ImageOps.fit(im, (size, size), Image.Resampling.LANCZOS)))
    return np.stack(out)


def pillow(size: int, pools: dict[int, Any]) -> Loader:
    """Pillow in-process (1 thread) or in N worker processes started once (``pools``), as a
    DataLoader's persistent workers."""

    def run(batches: list[list[bytes]], threads: int) -> Iterator[np.ndarray]:
        if threads == 1:
            for b in batches:
                yield pillow_batch((b, size))
            return
        if threads not in pools:
            pools[threads] = get_context("fork").Pool(threads)
        yield from pools[threads].imap(pillow_batch, [(b, size) for b in batches])

    return run


def timed(
    loader: Loader, batches: list[list[bytes]], threads: int, repeat: int, shape: tuple[int, ...]
) -> float:
    for arr in loader(batches[:1], threads):  # warm-up and shape check
        if arr.shape != shape or arr.dtype != np.uint8:
            raise RuntimeError(f"batch of shape {arr.shape} {arr.dtype}, expected {shape} uint8")
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        total = 0
        for arr in loader(batches, threads):
            total += int(arr[:, 0, 0, 0].sum())  # touch each batch as a consumer would
        best = min(best, time.perf_counter() - t)
    return sum(len(b) for b in batches) / best


def main() -> int:
    here = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", type=Path, default=here.parent / "shared" / "corpus" / "jpeg")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    blobs = [f.read_bytes() for f in sorted(a.dir.glob("*")) if f.is_file() and f.name != "README.md"]
    usable = mmcore.thumbnail_batch(blobs, crop=(a.size, a.size)).ok
    blobs = [b for b, ok in zip(blobs, usable, strict=True) if ok]
    batches = [blobs[i : i + a.batch] for i in range(0, len(blobs) - a.batch + 1, a.batch)]
    if not batches:
        print(f"fewer than {a.batch} decodable images in {a.dir}", file=sys.stderr)
        return 1
    threads = [int(t) for t in a.threads.split(",")]
    pools: dict[int, Any] = {}
    rows: list[tuple[str, Loader]] = [
        ("mmcore out=", mmcore_out(a.size)),
        ("mmcore + stack", mmcore_stack(a.size)),
        ("Pillow", pillow(a.size, pools)),
    ]
    print("\n".join(machine_lines()))
    print(mmcore_line())
    n = sum(len(b) for b in batches)
    print(f"{n} images from {a.dir} in {len(batches)} batches of {a.batch}, crop {a.size}x{a.size} RGB")
    shape = (a.batch, a.size, a.size, 3)
    try:
        ips = {(name, t): timed(fn, batches, t, a.repeat, shape) for t in threads for name, fn in rows}
    finally:
        for pool in pools.values():
            pool.terminate()
    head = " | ".join(f"{t} thr img/s | vs Pillow" for t in threads)
    print(f"\n| loader | {head} |\n|---|" + "---:|---:|" * len(threads))
    for name, _ in rows:
        cells = " | ".join(f"{ips[name, t]:.0f} | {ips[name, t] / ips['Pillow', t]:.2f}x" for t in threads)
        print(f"| {name} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
