#!/usr/bin/env python3
"""The jobs' Pillow fallback: formats mmcore does not decode (TIFF, BMP, JPEG 2000, HEIC), hashed
by ``Processor(fallback="pillow")`` next to the script a user would write (Pillow + imagehash +
pdqhash) on the same bytes.

Standalone and offline. The files are corpus photos of 0.1-0.6 Mpx (or generated images without
the corpus, said in the header) written by Pillow in each format in memory before the timings.
Both sides decode with Pillow; mmcore then hashes the pixels (pHash, dHash, aHash, PDQ) in C++,
where the script calls imagehash three times and pdqhash once. Rows, images/s at N threads:

  mmcore Processor          ``Processor({"fallback": "pillow", "workers": N})`` on an Arrow batch
                            of the bytes (also SHA-256, size and format: the whole row)
  Pillow + imagehash        per file ``Image.open``, imagehash phash / dhash / average_hash and
                            ``pdqhash.compute`` on its RGB array; N threads in a pool

Checked first: the Processor's pHash, dHash and aHash equal imagehash's on every file.

    python bench/bench_fallback.py                   # 1 and 2 threads, best of 3
    python bench/bench_fallback.py --files 200 --threads 1,2,4
"""

from __future__ import annotations

import argparse
import functools
import io
import sys
from typing import Any

import imagehash
import numpy as np
import pdqhash
import pyarrow as pa
from bench_avif import best, photos, pooled
from bench_decode import machine_lines, mmcore_line
from PIL import Image

from mmcore.jobs.processor import Processor
from mmcore.jobs.schema import i64_to_u64

#: (row name, Pillow format, save options)
FORMATS: list[tuple[str, str, dict[str, Any]]] = [
    ("TIFF (LZW)", "TIFF", {"compression": "tiff_lzw"}),
    ("BMP", "BMP", {}),
    ("JPEG 2000", "JPEG2000", {"quality_mode": "rates", "quality_layers": [20]}),
    ("HEIC", "HEIF", {"quality": 80}),
]


def script_row(blob: bytes) -> tuple[str, str, str, bytes]:
    """What the user's script computes for one file."""
    with Image.open(io.BytesIO(blob)) as im:
        bits, _ = pdqhash.compute(np.asarray(im.convert("RGB")))
        return (
            str(imagehash.phash(im)),
            str(imagehash.dhash(im)),
            str(imagehash.average_hash(im)),
            np.packbits(bits).tobytes(),
        )


def hexes(col: Any) -> list[str]:
    return [f"{int(v):016x}" for v in i64_to_u64(np.asarray(col.to_numpy(zero_copy_only=False)))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=60)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        heif = f", pillow-heif {pillow_heif.__version__}"
        formats = FORMATS
    except ImportError:
        heif = " (no pillow-heif: no HEIC row)"
        formats = [f for f in FORMATS if f[1] != "HEIF"]
    imgs, what = photos(args.files)
    what += f" (median {np.median([im.width * im.height for im in imgs]) / 1e6:.2f} Mpx)"
    print("\n".join([*machine_lines(), mmcore_line(), f"Pillow {Image.__version__}{heif}", what, ""]))
    print("| format | median kB | " + " | ".join(f"mmcore / script, {n} thr" for n in threads) + " | ratio |")
    print("|---|---:|" + "---:|" * len(threads) + "---|")
    for name, fmt, opts in formats:
        blobs = []
        for im in imgs:
            buf = io.BytesIO()
            im.save(buf, fmt, **opts)
            blobs.append(buf.getvalue())
        batch = pa.table({"id": [str(i) for i in range(len(blobs))], "bytes": pa.array(blobs, pa.binary())})
        out = Processor({"fallback": "pillow"})(batch)
        assert set(out.column("status").to_pylist()) == {"OK"}, f"{name}: not every file hashed"
        want = [script_row(b) for b in blobs]
        for k, col in enumerate(("phash", "dhash", "ahash")):
            assert hexes(out.column(col)) == [w[k] for w in want], f"{name}: {col} differs from imagehash"
        cells, ratios = [], []
        for n in threads:
            proc = Processor({"fallback": "pillow", "workers": n})
            ours = len(blobs) / best(functools.partial(proc, batch), args.repeat)
            theirs = len(blobs) / best(functools.partial(pooled(script_row, n), blobs), args.repeat)
            cells.append(f"{ours:,.0f} / {theirs:,.0f}")
            ratios.append(f"{ours / theirs:.2f}x")
        kb = np.median([len(b) for b in blobs]) / 1000
        print(f"| {name} | {kb:.0f} | " + " | ".join(cells) + " | " + ", ".join(ratios) + " |")
    print("\nchecked: the Processor's pHash / dHash / aHash equal imagehash's on every file")
    return 0


if __name__ == "__main__":
    sys.exit(main())
