"""mmcore's hashes of every corpus file, to compare two machines (x86-64 and aarch64, say).

    python scripts/platform_hashes.py dump OUT.json [--corpus DIR]   # on each machine
    python scripts/platform_hashes.py compare A.json B.json          # exit 1 on a difference

The dump holds, per file of the corpus's jpeg/ png/ webp/ odd/ corrupt/ folders (index.csv), the
status and the exact-mode imagehash kinds and PDQ (full mode) with its quality. `compare` reports
every file whose row differs. Only a file that decodes with a warning (damaged data, decoded
anyway) may differ: how libjpeg-turbo recovers from a bad Huffman code is its own, and differs
between its x86-64 and aarch64 builds (Pillow's decode differs the same way); such files are
listed, not counted as failures. scripts/check_aarch64.sh runs this on both sides.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

FOLDERS = ("jpeg", "png", "webp", "odd", "corrupt")


def dump(out: Path, corpus: Path) -> int:
    import mmcore
    from mmcore.hashing import KINDS

    kinds = [k for k in KINDS if k != "pdq"]  # the exact-mode kinds; PDQ in full mode below
    with open(corpus / "index.csv", newline="") as f:
        names = [r["file"] for r in csv.DictReader(f) if r["category"] in FOLDERS]
    paths = [str(corpus / n) for n in names]
    exact = mmcore.hash_batch(paths, kinds=kinds, mode="exact")
    pdq = mmcore.hash_batch(paths, kinds=["pdq"], mode="full")
    cols = {k: exact.hex(k) for k in kinds}
    pdq_hex = pdq.hex("pdq")
    rows = {}
    for i, name in enumerate(names):
        rows[name] = {
            "status": mmcore.Status(int(exact.status[i])).name,
            **{k: cols[k][i] for k in kinds},
            "pdq": pdq_hex[i],
            "pdq_quality": int(pdq["pdq_quality"][i]),
            "pdq_status": mmcore.Status(int(pdq.status[i])).name,
        }
    info = mmcore.build_info()
    doc = {"machine": os.uname().machine, "backend": info["backend"], "rows": rows}
    out.write_text(json.dumps(doc, indent=0, sort_keys=True))
    print(f"platform_hashes: {len(rows)} files on {doc['machine']} (backend {doc['backend']}) -> {out}")
    return 0


def compare(a_path: Path, b_path: Path) -> int:
    a, b = json.loads(a_path.read_text()), json.loads(b_path.read_text())
    ra, rb = a["rows"], b["rows"]
    if set(ra) != set(rb):
        print(f"platform_hashes: the file lists differ ({len(set(ra) ^ set(rb))} files)")
        return 1
    damaged, bad = [], []
    for name in sorted(ra):
        if ra[name] == rb[name]:
            continue
        fields = sorted(k for k in ra[name] if ra[name][k] != rb[name][k])
        warned = ra[name]["status"] == rb[name]["status"] == "OK_WARNING"
        (damaged if warned else bad).append((name, fields))
    sides = f"{a['machine']} ({a['backend']}) vs {b['machine']} ({b['backend']})"
    same = len(ra) - len(damaged) - len(bad)
    counts = f"{same} equal, {len(damaged)} damaged files differ, {len(bad)} differ"
    print(f"platform_hashes: {len(ra)} files, {sides}: {counts}")
    for name, fields in damaged:
        print(f"  damaged data, decoded differently: {name}: {', '.join(fields)}")
    for name, fields in bad:
        print(f"  DIFFERS: {name}: {', '.join(fields)}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("out", type=Path)
    d.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpus")
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = ap.parse_args(argv)
    if args.cmd == "dump":
        return dump(args.out, args.corpus)
    return compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
