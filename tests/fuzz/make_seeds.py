#!/usr/bin/env python3
"""Seed corpus for fuzz_decode: small corpus files, each prefixed with an option byte; and, with
--tar-out, tars for fuzz_tar.

    python3 tests/fuzz/make_seeds.py ../shared/corpus build/fuzz/seeds [--max-bytes 49152] [--per-dir 60]
    python3 tests/fuzz/make_seeds.py - build/fuzz/seeds --tar-out build/fuzz/seeds_tar

Takes the smallest files of jpeg/, png/, webp/, odd/ and corrupt/ (up to --per-dir each, under
--max-bytes), and writes each one with two option bytes: 0x00 (plain RGB decode) and one derived
from the file's name, so that gray/RGBA/EXIF/scaled/thumbnail/fast combinations are all seeded;
then the AVIF files of tests/data/avif (the corpus has none) with three option bytes each.
The libFuzzer harness (fuzz_decode.cpp) reads byte 0 as options; the atheris harness takes the same
folder (it draws its options from the same leading byte).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import tarfile
from pathlib import Path

KINDS = ("jpeg", "png", "webp", "odd", "corrupt")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--max-bytes", type=int, default=48 * 1024)
    ap.add_argument("--per-dir", type=int, default=60)
    ap.add_argument("--tar-out", type=Path, help="write fuzz_tar's seeds (tars) here instead")
    args = ap.parse_args()
    if args.tar_out is not None:
        return tar_seeds(args.tar_out)
    args.out.mkdir(parents=True, exist_ok=True)
    n = 0
    for kind in KINDS:
        d = args.corpus / kind
        if not d.is_dir():
            continue
        files = [p for p in d.iterdir() if p.is_file() and p.suffix not in (".md", ".csv")]
        files = sorted(
            (p for p in files if p.stat().st_size <= args.max_bytes), key=lambda p: (p.stat().st_size, p.name)
        )
        # An even spread over the size-sorted list: tiny crashers and larger real images both.
        step = max(1, len(files) // args.per_dir)
        for p in files[::step][: args.per_dir]:
            body = p.read_bytes()
            h = hashlib.sha1(p.name.encode()).digest()
            for sel in {0, h[0]}:
                (args.out / f"{kind}_{sel:02x}_{p.name[:80]}").write_bytes(bytes([sel]) + body)
                n += 1
    # AVIF: the corpus has none; the test files of tests/data/avif (every sel seeds one option set).
    for p in sorted((Path(__file__).resolve().parent.parent / "data" / "avif").glob("*.avif")):
        h = hashlib.sha1(p.name.encode()).digest()
        for sel in {0, h[0], h[1] | 0x40}:
            (args.out / f"avif_{sel:02x}_{p.name}").write_bytes(bytes([sel]) + p.read_bytes())
            n += 1
    print(f"make_seeds: wrote {n} seeds to {args.out}")
    return 0


def tar_seeds(out: Path) -> int:
    """Small tars of each header format: plain files and folders (ustar, GNU, v7-style folder
    names), pax time records (a float mtime), long names, a link and a FIFO, so that the seeds
    reach both the runs tar_scan reads and the headers it stops at."""
    out.mkdir(parents=True, exist_ok=True)
    n = 0
    formats = ((tarfile.USTAR_FORMAT, "ustar"), (tarfile.GNU_FORMAT, "gnu"), (tarfile.PAX_FORMAT, "pax"))
    for fmt, label in formats:
        for variant in range(3):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
                for i in range(4):
                    name = ["a.jpg", "dir/b.json", "p" * 120 + "/c.png", "d/"][(i + variant) % 4]
                    ti = tarfile.TarInfo(name)
                    ti.mtime = 1700000000.5 if variant == 1 else 1700000000
                    data = b"" if name.endswith("/") else bytes(range(256))[: 17 * (i + 1)]
                    ti.type = tarfile.DIRTYPE if name.endswith("/") else tarfile.REGTYPE
                    ti.size = len(data)
                    try:
                        tf.addfile(ti, io.BytesIO(data))
                    except ValueError:  # a name the format cannot hold
                        continue
                if variant == 2:
                    for kind in (tarfile.SYMTYPE, tarfile.FIFOTYPE):
                        ti = tarfile.TarInfo(f"x{kind!r}")
                        ti.type, ti.linkname = kind, "a.jpg"
                        tf.addfile(ti)
            (out / f"{label}_{variant}.tar").write_bytes(buf.getvalue())
            n += 1
    print(f"make_seeds: wrote {n} tar seeds to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
