"""The ``mmcore`` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import __version__, build_info, demo_images
from .hashing import hash_batch
from .image import decode_batch, thumbnail_batch
from .status import Status


def _demo(args: argparse.Namespace) -> int:
    paths = demo_images()
    data = []
    for p in paths:
        with open(p, "rb") as f:
            data.append(f.read())
    info = build_info()
    print(f"mmcore {__version__}  backend={info['backend']}  cuda_compiled={info['cuda_compiled']}")
    t0 = time.perf_counter()
    decoded = decode_batch(data, threads=args.threads)
    t1 = time.perf_counter()
    thumbs = thumbnail_batch(data, short_side=args.short_side, threads=args.threads)
    t2 = time.perf_counter()
    hashes = hash_batch(data, kinds=("phash", "pdq"), mode="exact", threads=args.threads)
    t3 = time.perf_counter()
    out = args.out or tempfile.mkdtemp(prefix="mmcore-demo-")
    os.makedirs(out, exist_ok=True)
    phash_hex, pdq_hex = hashes.hex("phash"), hashes.hex("pdq")
    header = ("file", "status", "decoded", "thumbnail", "pHash", "PDQ (first 16 hex) quality", "message")
    rows = []
    for i, p in enumerate(paths):
        st = Status(int(decoded.status[i]))
        full = decoded.images[i]
        th = thumbs.images[i]
        if th is not None:
            np.save(os.path.join(out, os.path.basename(p) + ".thumb.npy"), th)
        size = f"{full.shape[1]}x{full.shape[0]}" if full is not None else "-"
        tsize = f"{th.shape[1]}x{th.shape[0]}" if th is not None else "-"
        pdq_i = pdq_hex[i]
        pdq = f"{pdq_i[:16]} {int(hashes['pdq_quality'][i]):3d}" if pdq_i else "-"
        msg = decoded.errors[i] or ""
        rows.append((os.path.basename(p), st.name, size, tsize, phash_hex[i] or "-", pdq, msg))
    widths = [max(len(r[k]) for r in [*rows, header]) for k in range(len(header) - 1)]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1][:60])
    n = len(paths)
    print(f"\n{n} images: {decoded.counts()}")
    print(
        f"decode: {n / (t1 - t0):.0f} images/s, thumbnail(short side {args.short_side}): "
        f"{n / (t2 - t1):.0f} images/s, pHash + PDQ (exact): {n / (t3 - t2):.0f} images/s; "
        f"thumbnails written to {out}"
    )
    return 0


def _info(args: argparse.Namespace) -> int:
    print(json.dumps(build_info(), indent=2, sort_keys=True))
    return 0


def _register_jobs(sub: Any) -> None:
    """The corpus-job commands; without pyarrow they say how to get it."""
    try:
        from .jobs import dedup, index_cmd, report, runner
    except ImportError as e:
        missing = str(e)

        def need(args: argparse.Namespace) -> int:
            print(
                f"mmcore {args.command}: needs pyarrow ({missing}): pip install 'mmcore[jobs]'",
                file=sys.stderr,
            )
            return 1

        for name in ("run", "dedup", "index", "report"):
            p = sub.add_parser(name, help="(needs pyarrow)")
            p.add_argument("rest", nargs=argparse.REMAINDER)
            p.set_defaults(func=need)
        return
    runner.register(sub)
    dedup.register(sub)
    index_cmd.register(sub)
    report.register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mmcore`` command."""
    parser = argparse.ArgumentParser(prog="mmcore", description=__doc__)
    parser.add_argument("--version", action="version", version=f"mmcore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="decode, thumbnail and hash the demo images shipped with mmcore")
    demo.add_argument("--short-side", type=int, default=64, help="thumbnail short side (default 64)")
    demo.add_argument("--threads", type=int, default=None, help="worker threads (default: all cores)")
    demo.add_argument("--out", default=None, help="folder for the thumbnails (default: a new temp folder)")
    demo.set_defaults(func=_demo)
    info = sub.add_parser("info", help="print build_info() as JSON")
    info.set_defaults(func=_info)
    _register_jobs(sub)
    args = parser.parse_args(argv)
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
