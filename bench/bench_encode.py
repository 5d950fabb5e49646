#!/usr/bin/env python3
"""Thumbnail encode benchmark: mmcore.encode_jpeg / encode_webp next to Pillow's save, same run.

Standalone and offline. Sources are 256-px thumbnails (fit in 256x256, mmcore.thumbnail_batch) of
the corpus JPEGs, or generated images without a corpus. Both sides encode the same arrays at the
same quality (JPEG 85, WebP 80: mmcore's defaults) with the same library settings; the script
checks and prints how many outputs are byte-identical. Timed: the encode calls alone, one image per
call in a loop (mmcore single call; Pillow Image.save into a BytesIO from a prepared Image), and
mmcore.encode_batch on 1 and 2 threads; best of --repeat interleaved passes.

    python bench/bench_encode.py [--limit 200] [--repeat 7] [--corpus ../shared/corpus]

Prints machine, versions and a table (images/s); writes it to bench/results/encode.md.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from pathlib import Path

import bench_decode as bd
import numpy as np
import PIL
from PIL import Image, features

import mmcore

ROOT = Path(__file__).resolve().parent.parent
QUALITY = {"jpeg": 85, "webp": 80}
PIL_FORMAT = {"jpeg": "JPEG", "webp": "WEBP"}


def thumbnails(corpus: Path, limit: int) -> tuple[list[np.ndarray], str]:
    files = sorted(p for p in (corpus / "jpeg").glob("*") if p.is_file() and p.name != "README.md")
    if files:
        r = mmcore.thumbnail_batch([str(p) for p in files[:limit]], fit=(256, 256))
        return [im for im in r.images if im is not None], f"{corpus / 'jpeg'} (first {limit})"
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:192, 0:256]
    base = np.stack([x, y, (x + y) // 2], axis=-1).astype(np.float64)
    out = [np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8) for _ in range(limit)]
    return out, "generated 256x192 gradients + noise (no corpus)"


def best_rates(runs: dict[str, Callable[[], object]], n: int, repeat: int) -> dict[str, float]:
    """Images/s of each run's best pass; passes interleave (round robin) so that load from elsewhere
    on a shared machine falls on every row alike."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeat):
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return {name: n / s for name, s in best.items()}


def pil_save(im: Image.Image, fmt: str) -> bytes:
    f = io.BytesIO()
    im.save(f, PIL_FORMAT[fmt], quality=QUALITY[fmt])
    return f.getvalue()


def format_rows(fmt: str, images: list[np.ndarray], pil_images: list[Image.Image], repeat: int) -> list[str]:
    """Table rows for one format: each encoder's images/s, mean output size, bytes equal to Pillow's."""
    enc = mmcore.encode_jpeg if fmt == "jpeg" else mmcore.encode_webp
    q = QUALITY[fmt]
    n = len(images)
    ours = [enc(im, quality=q) for im in images]
    same = sum(a == pil_save(im, fmt) for a, im in zip(ours, pil_images, strict=True))
    runs: dict[str, Callable[[], object]] = {
        "mmcore single call, 1 thread": lambda: [enc(im, quality=q) for im in images],
        "Pillow Image.save, 1 thread": lambda: [pil_save(im, fmt) for im in pil_images],
    }
    for t in (1, 2):
        runs[f"mmcore encode_batch, threads={t}"] = lambda t=t: mmcore.encode_batch(
            images, format=fmt, quality=q, threads=t
        )
    rates = best_rates(runs, n, repeat)
    kib = np.mean([len(b) for b in ours]) / 1024
    return [f"| {fmt} q{q} | {name} | {rate:,.0f} | {kib:.1f} | {same}/{n} |" for name, rate in rates.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()

    images, source = thumbnails(args.corpus, args.limit)
    pil_images = [Image.fromarray(im) for im in images]
    header = [
        *bd.machine_lines(),
        bd.mmcore_line(codecs=True),
        f"Pillow {PIL.__version__} (libjpeg-turbo {features.version('libjpeg_turbo')}, "
        f"libwebp {features.version('webp')}); numpy {np.__version__}",
        f"images: {len(images)} thumbnails, mean {np.mean([im.shape[0] * im.shape[1] for im in images]):.0f} "
        f"pixels, from {source}",
    ]
    rows = []
    for fmt in ("jpeg", "webp"):
        rows += format_rows(fmt, images, pil_images, args.repeat)
    table = [
        "| format | encoder | images/s | mean KiB | bytes equal to Pillow's |",
        "|---|---|---:|---:|---:|",
        *rows,
    ]
    text = "\n".join(header) + "\n\n" + "\n".join(table) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "encode.md").write_text(text)


if __name__ == "__main__":
    main()
