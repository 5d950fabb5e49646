#!/usr/bin/env python3
"""Pillow images in hand (a dataset loader's output, an image an application already opened):
``mmcore.hash_batch`` on the Pillow images next to imagehash + pdqhash on the same images.

Standalone and offline. The images are corpus photos of 0.1-0.6 Mpx (or generated images without
the corpus, said in the header). Both sides compute pHash, dHash, aHash (imagehash's bits) and PDQ
(``pdqhash.compute``'s: mmcore's ``mode="full"``). Rows, images/s at N threads:

  loaded      RGB images already decoded (``Image.convert("RGB")``): the hashing alone
  opened      ``Image.open(BytesIO(jpeg))`` made in the timed loop, not yet loaded: Pillow's
              decode is part of it (mmcore loads the images on its N threads, the script in a
              pool of N threads)

Checked first: mmcore's four hashes equal imagehash's and pdqhash's on every image.

    python bench/bench_pillow.py                  # 1 and 2 threads, best of 3 (~1 min)
    python bench/bench_pillow.py --files 200 --threads 1,2,4
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Callable
from typing import Any

import imagehash
import numpy as np
import pdqhash
from bench_avif import best, photos, pooled
from bench_decode import machine_lines, mmcore_line
from PIL import Image

import mmcore

KINDS = ("phash", "dhash", "ahash", "pdq")


def script(im: Any) -> tuple[str, str, str, str]:
    """What a user's script computes for one Pillow image."""
    bits, _ = pdqhash.compute(np.asarray(im.convert("RGB")))
    return (
        str(imagehash.phash(im)),
        str(imagehash.dhash(im)),
        str(imagehash.average_hash(im)),
        np.packbits(bits).tobytes().hex(),
    )


def ours(ims: list[Any], threads: int) -> list[tuple[str, str, str, str]]:
    r = mmcore.hash_batch(ims, kinds=KINDS, mode="full", threads=threads)
    assert r.ok.all(), r.errors
    return list(zip(r.hex("phash"), r.hex("dhash"), r.hex("ahash"), r.hex("pdq"), strict=True))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=60)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]
    imgs, what = photos(args.files)
    what += f" (median {np.median([im.width * im.height for im in imgs]) / 1e6:.2f} Mpx)"
    jpegs = []
    for im in imgs:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=90)
        jpegs.append(buf.getvalue())

    def opened() -> list[Any]:
        return [Image.open(io.BytesIO(b)) for b in jpegs]

    print("\n".join([*machine_lines(), mmcore_line(), f"Pillow {Image.__version__}", what, ""]))
    assert ours(imgs, 2) == [script(im) for im in imgs], "mmcore differs from imagehash / pdqhash"
    assert ours(opened(), 2) == [script(im) for im in opened()], "opened images: mmcore differs"
    cases: list[tuple[str, Callable[[], list[Any]]]] = [("loaded", lambda: imgs), ("opened", opened)]
    print("| Pillow images | " + " | ".join(f"mmcore / script, {n} thr" for n in threads) + " | ratio |")
    print("|---|" + "---:|" * len(threads) + "---|")
    for name, make in cases:
        cells, ratios = [], []
        for n in threads:
            mine = len(imgs) / best(lambda: ours(make(), n), args.repeat)  # noqa: B023
            theirs = len(imgs) / best(lambda: pooled(script, n)(make()), args.repeat)  # noqa: B023
            cells.append(f"{mine:,.0f} / {theirs:,.0f}")
            ratios.append(f"{mine / theirs:.2f}x")
        print(f"| {name} | " + " | ".join(cells) + " | " + ", ".join(ratios) + " |")
    print("\nchecked: mmcore's pHash / dHash / aHash / PDQ equal imagehash's and pdqhash's on every image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
