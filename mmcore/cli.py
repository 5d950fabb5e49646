"""The ``mmcore`` command."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from . import __version__, build_info, demo_images
from .hashing import hash_to_hex
from .image import decode, encode_jpeg, resize


def _demo_sources(folder: str) -> list[str]:
    """Copies the demo images into ``folder`` and adds two near-duplicates made from them (a half-size
    re-encode and a JPEG re-encode of a WebP): names of the files written."""
    os.makedirs(folder, exist_ok=True)
    names = []
    for p in demo_images():
        shutil.copyfile(p, os.path.join(folder, os.path.basename(p)))
        names.append(os.path.basename(p))
    by_name = {os.path.basename(p): p for p in demo_images()}
    first = decode(by_name["01_baseline_420.jpg"])
    half = resize(first, (first.shape[1] // 2, first.shape[0] // 2))
    made = {
        "10_baseline_half_size.jpg": encode_jpeg(half, quality=70),
        "11_lossy_as_jpeg.jpg": encode_jpeg(decode(by_name["06_lossy.webp"]), quality=60),
    }
    for name, data in made.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    return sorted([*names, *made])


def _demo_cli(args: argparse.Namespace) -> int:
    """``mmcore demo`` with the errors a user can cause (an unwritable --out) as one line, exit 1."""
    try:
        return _demo(args)
    except Exception as e:
        if not isinstance(e, (OSError, ValueError)) and type(e).__name__ != "JobError":
            raise
        print(f"mmcore demo: error: {e}", file=sys.stderr)
        return 1


def _demo(args: argparse.Namespace) -> int:
    """The whole path on the demo images: run (hashes, thumbnails) -> dedup -> report."""
    try:
        from .jobs import Config, read_output
        from .jobs.dedup import dedup, summary
        from .jobs.report import report
        from .jobs.runner import run
    except ImportError as e:
        print(f"mmcore demo: needs pyarrow ({e}): pip install 'mmcore[jobs]'", file=sys.stderr)
        return 1
    info = build_info()
    print(f"mmcore {__version__}  backend={info['backend']}  cuda_compiled={info['cuda_compiled']}")
    out = args.out or tempfile.mkdtemp(prefix="mmcore-demo-")
    src, job = os.path.join(out, "images"), os.path.join(out, "job")
    _demo_sources(src)
    config = Config(thumbnail=args.short_side, workers=args.threads or 0, mode="overwrite")
    s = run(src, job, config, progress=None)
    table = read_output(job).to_pylist()
    header = ("file", "status", "size", "format", "pHash", "PDQ (first 16 hex) quality", "message")
    rows = []
    for r in sorted(table, key=lambda r: str(r["id"])):
        ok = r["phash"] is not None
        size = f"{r['width']}x{r['height']}" if r["width"] is not None else "-"
        ph = hash_to_hex(int(r["phash"]) & (2**64 - 1)) if ok else "-"
        pdq = f"{r['pdq'].hex()[:16]} {r['pdq_quality']:3d}" if r["pdq"] is not None else "-"
        rows.append((r["id"], r["status"], size, r["format"] or "-", ph, pdq, r["error"] or ""))
    widths = [max(len(r[k]) for r in [*rows, header]) for k in range(len(header) - 1)]
    for line in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(line[:-1], widths, strict=True)) + "  " + line[-1][:60])
    print()
    print("\n".join(s.lines()))
    clusters = dedup(job, hash="pdq")
    d = summary(clusters)
    print(
        f"dedup (PDQ, threshold {d['threshold']}): {d['images']} images in {d['clusters']} clusters, "
        f"{d['duplicates']} near-duplicates"
    )
    groups: dict[int, list[str]] = {}
    for r in clusters.to_pylist():
        groups.setdefault(r["cluster_id"], []).append(f"{r['id']} ({r['distance_to_representative']})")
    for members in groups.values():
        if len(members) > 1:
            print("  group: " + ", ".join(members))
    print(f"report: {report(job)}")
    print(f"everything is in {out}")
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
    parser = argparse.ArgumentParser(
        prog="mmcore",
        description="Decode, hash and deduplicate image corpora into Parquet; build and search "
        "quantized embedding indexes.",
        epilog="Start with `mmcore demo`; `mmcore COMMAND --help` for each command's options.",
    )
    parser.add_argument("--version", action="version", version=f"mmcore {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="run, dedup and report on the demo images shipped with mmcore (plus two made copies)"
    )
    demo.add_argument("--short-side", type=int, default=64, help="thumbnail short side (default 64)")
    demo.add_argument("--threads", type=int, default=None, help="worker threads (default: all cores)")
    demo.add_argument("--out", default=None, help="folder for everything (default: a new temp folder)")
    demo.set_defaults(func=_demo_cli)
    info = sub.add_parser("info", help="print build_info() as JSON")
    info.set_defaults(func=_info)
    _register_jobs(sub)
    args = parser.parse_args(argv)
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    sys.exit(main())
