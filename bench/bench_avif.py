#!/usr/bin/env python3
"""AVIF: decode to full-size RGB, and exact pHash, mmcore next to Pillow (+ imagehash) on the same bytes.

Standalone and offline. The files are the corpus's ImageNet-size JPEGs (0.1-0.6 Mpx) encoded to
AVIF by Pillow (quality 60, 4:2:0, encoder speed 8) in memory before the timings; without the corpus,
generated images stand in (said in the header). Both tools decode with libavif and dav1d, so the
difference is what is around the codec: threads, the GIL, copies. Rows, images/s:

  mmcore decode_batch       ``decode_batch(blobs, threads=N)`` (one dav1d thread per image)
  mmcore hash_batch phash   ``hash_batch(blobs, kinds=("phash",), threads=N)`` (imagehash-exact)
  Pillow decode             ``Image.open(...).convert("RGB")``: with N = 1 its AVIF plugin held to
                            one decoder thread; with N > 1 a thread pool of N, one decoder thread each
  Pillow decode (default)   the same, one call at a time, with Pillow's default decoder threads
                            (its plugin gives libavif every CPU)
  imagehash.phash           ``imagehash.phash(Image.open(...))``, threads as for Pillow decode

Every row is checked first: mmcore's pixels and pHashes equal Pillow's / imagehash's on every file.

    python bench/bench_avif.py                  # 1 and 2 threads, best of 3
    python bench/bench_avif.py --threads 1,2,4 --repeat 5 --files 200
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from bench_decode import machine_lines, mmcore_line
from PIL import AvifImagePlugin, Image, features

import mmcore

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "jpeg"


def photos(n: int) -> tuple[list[Image.Image], str]:
    """Up to n corpus photos of 0.1-0.6 Mpx as RGB images (or generated images), and what they are."""
    imgs: list[Image.Image] = []
    if CORPUS.is_dir():
        for p in sorted(CORPUS.iterdir()):
            with Image.open(p) as im:
                if 100_000 <= im.width * im.height <= 600_000:
                    imgs.append(im.convert("RGB"))
            if len(imgs) == n:
                break
        return imgs, f"{len(imgs)} corpus JPEGs of 0.1-0.6 Mpx"
    rng = np.random.default_rng(0)
    for _ in range(n):
        small = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        imgs.append(Image.fromarray(small).resize((500, 375), Image.Resampling.BICUBIC))
    return imgs, f"{n} generated 500x375 images (no corpus at {CORPUS})"


def sources(n: int) -> tuple[list[bytes], str]:
    """AVIF bytes of :func:`photos`, and what they are."""
    imgs, what = photos(n)
    blobs = []
    for im in imgs:
        buf = io.BytesIO()
        im.save(buf, "AVIF", quality=60, subsampling="4:2:0", speed=8)
        blobs.append(buf.getvalue())
    px = np.median([im.width * im.height for im in imgs])
    kb = np.median([len(b) for b in blobs]) / 1000
    return blobs, f"{what}, re-encoded as AVIF (median {px / 1e6:.2f} Mpx, {kb:.1f} kB)"


def pillow_rgb(blob: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(blob)) as im:
        return np.asarray(im.convert("RGB"))


def imagehash_phash(blob: bytes) -> str:
    import imagehash

    with Image.open(io.BytesIO(blob)) as im:
        return str(imagehash.phash(im))


def pooled(fn: Callable[[bytes], object], threads: int) -> Callable[[list[bytes]], None]:
    def run(blobs: list[bytes]) -> None:
        if threads == 1:
            for b in blobs:
                fn(b)
            return
        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(fn, blobs))

    return run


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def check(blobs: list[bytes]) -> None:
    r = mmcore.decode_batch(blobs, threads=2)
    for i, b in enumerate(blobs):
        assert r.ok[i] and np.array_equal(r.images[i], pillow_rgb(b)), f"file {i}: pixels differ from Pillow"
    h = mmcore.hash_batch(blobs, kinds=("phash",), threads=2)
    want = [imagehash_phash(b) for b in blobs]
    assert h.hex("phash") == want, "pHash differs from imagehash"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=120)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    if not features.check("avif") or not mmcore.build_info()["codecs"]["avif"].startswith("libavif"):
        print("bench_avif: needs Pillow with AVIF and mmcore built with libavif", file=sys.stderr)
        return 2
    threads = [int(t) for t in args.threads.split(",")]
    blobs, what = sources(args.files)
    print("\n".join([*machine_lines(), mmcore_line(codecs=True), f"Pillow {Image.__version__}", what]))
    check(blobs)
    print("checked: mmcore's pixels equal Pillow's and its pHashes imagehash's on every file\n")
    default_threads = AvifImagePlugin.DEFAULT_MAX_THREADS
    rows: list[tuple[str, dict[int, float]]] = []

    def row(name: str, make: Callable[[int], Callable[[], object]], only: int | None = None) -> None:
        got = {}
        for n in threads:
            if only is None or n == only:
                got[n] = len(blobs) / best(make(n), args.repeat)
        rows.append((name, got))

    row("mmcore decode_batch", lambda n: lambda: mmcore.decode_batch(blobs, threads=n))
    row(
        "mmcore hash_batch phash (exact)",
        lambda n: lambda: mmcore.hash_batch(blobs, kinds=("phash",), threads=n),
    )
    AvifImagePlugin.DEFAULT_MAX_THREADS = 1
    row("Pillow decode", lambda n: lambda: pooled(pillow_rgb, n)(blobs))
    row("imagehash.phash (Pillow decode)", lambda n: lambda: pooled(imagehash_phash, n)(blobs))
    AvifImagePlugin.DEFAULT_MAX_THREADS = default_threads
    row(
        "Pillow decode (default decoder threads)",
        lambda n: lambda: pooled(pillow_rgb, 1)(blobs),
        only=max(threads),
    )

    print("| tool | " + " | ".join(f"{n} thread{'s' * (n > 1)}" for n in threads) + " |")
    print("|---|" + "---:|" * len(threads))
    for name, got in rows:
        print(f"| {name} | " + " | ".join(f"{got[n]:,.0f}" if n in got else "-" for n in threads) + " |")
    dec, ph, pil, ih = (dict(r[1]) for r in rows[:4])
    print()
    for n in threads:
        print(f"{n} thread(s): decode {dec[n] / pil[n]:.2f}x Pillow, pHash {ph[n] / ih[n]:.2f}x imagehash")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
