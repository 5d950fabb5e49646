#!/usr/bin/env python3
"""Perceptual-hash throughput and fast-mode agreement: mmcore next to imagehash, pdqhash and OpenCV.

Standalone and offline. Images are preloaded into memory as bytes; every row hashes the same bytes end
to end (decode included), at 1 and 2 threads, in the same run.

Sets (from ../shared/corpus):
  imagenet  the JPEGs of jpeg/ with the short side 200..600 (bench_decode.py's default selection)
  photos    the JPEGs of jpeg/ with >= 6 Mpx, plus the 8-bit baseline JPEGs of odd/ with 6..50 Mpx

Rows:
  imagehash.phash   imagehash.phash(Image.open(BytesIO(b)))                       (Pillow full decode)
  pdqhash           pdqhash.compute(np.asarray(Image.open(BytesIO(b)).convert("RGB")))
  OpenCV pHash      imdecode(IMREAD_REDUCED_GRAYSCALE_d) >= 64 px, resize 32x32 INTER_AREA, cv2.dct,
                    8x8 > median: the pHash users write with OpenCV
  imagehash.phash 16  the same at hash_size=16 (256 bits)
  mmcore ...        hash_batch(list_of_bytes, kinds=..., mode=..., threads=N): pHash exact / fast, PDQ
                    reference / full (= pdqhash.compute) / fast, all 8 kinds exact / fast, pHash at
                    hash_size 16 exact / fast (against imagehash.phash 16); and the
                    single-image calls mmcore.phash / mmcore.pdq in a Python loop (1 thread)
  ceiling ...       the decode alone: mmcore.decode_batch full size RGB (the floor of every exact
                    mode) and PyTurboJPEG's grey decode at the scale fast mode picks (the smallest
                    1/2, 1/4, 1/8 keeping both sides >= 128, for every kind; IFAST IDCT as fast
                    mode uses): the limit for fast modes; and at >= 64 px, the OpenCV pHash's scale

Then "cost of adding each kind" (--cost-limit images of the imagenet set, 1 thread: each kind alone,
all 8 in one call, and all 8 without it) and the agreement of fast with exact mode on every JPEG of
jpeg/ (share of images within a distance, near-duplicate recall / precision at the recommended
thresholds). Before timing, a few images check that the rows compute what they claim (mmcore exact
pHash against imagehash, PDQ full against pdqhash); an all-zero kind is flagged as a stub kernel.

    python bench/bench_hash.py                  # ~4 min on 2 cores
    python bench/bench_hash.py --quick          # ~30 s smoke run: fewer images, 1 round
    python bench/bench_hash.py --threads 1,2,4 --repeat 5 --sections speed

Prints the machine, mmcore.build_info(), library versions, the sets, then the tables; writes
bench_hash.md and bench_hash.png into --out (default bench/results/).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import io
import multiprocessing as mp
import os
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_decode as bd
import numpy as np

from mmcore.hashing import BITS, KINDS

ROOT = bd.ROOT
CORPUS = ROOT.parent / "shared" / "corpus"
SETS = ("imagenet", "photos")
PHASH_SIDE = 64  # 2x pHash's 32x32 grid: the OpenCV pHash's decode scale
PDQ_SIDE = 128  # 2x PDQ's 64x64 grid: the scale mmcore's fast mode decodes at, for every kind
# The targets: (set, mmcore row, competitor row, floor), at every thread count.
TARGETS = (
    ("imagenet", "mmcore phash fast", "imagehash.phash", 2.5),
    ("imagenet", "mmcore phash exact", "imagehash.phash", 1.5),
    ("imagenet", "mmcore pdq fast", "pdqhash", 3.0),
    ("photos", "mmcore phash fast", "imagehash.phash", 3.0),
    ("photos", "mmcore pdq fast", "pdqhash", 10.0),
)
PHASH_T, PDQ_T = 8, 31  # recommended near-duplicate thresholds (bits)

# --------------------------------------------------------------------------------------------------
# Image sets


def _index() -> dict[str, dict[str, str]]:
    p = CORPUS / "index.csv"
    if not p.is_file():
        return {}
    with open(p, newline="") as f:
        return {r["file"]: r for r in csv.DictReader(f)}


def load_photos(min_mp: float, max_mp: float, limit: int | None) -> tuple[bd.ImageSet, list[str]]:
    """JPEGs of jpeg/ with >= min_mp Mpx, plus odd/'s 8-bit baseline JPEGs in [min_mp, max_mp]."""
    index = _index()
    names, data, sizes = [], [], []
    for sub in ("jpeg", "odd"):
        folder = CORPUS / sub
        if not folder.is_dir():
            continue
        s = bd.load_images(folder, "all", None)
        for n, b, (w, h) in zip(s.names, s.data, s.sizes, strict=True):
            mpx = w * h / 1e6
            if mpx < min_mp:
                continue
            if sub == "odd":
                r = index.get(f"odd/{n}", {})
                # odd/ holds arithmetic / progressive / 12-bit oddities and a 280 Mpx stress file:
                # only what a camera writes (8-bit baseline, Pillow decodes it) joins the set.
                if not (
                    r.get("jpeg_sof") == "baseline"
                    and r.get("jpeg_precision") == "8"
                    and r.get("pillow_ok") == "1"
                    and mpx <= max_mp
                ):
                    continue
            names.append(f"{sub}/{n}")
            data.append(b)
            sizes.append((w, h))
    if limit is not None and len(names) > limit:
        keep = np.linspace(0, len(names) - 1, limit).round().astype(int)
        names, data, sizes = [names[i] for i in keep], [data[i] for i in keep], [sizes[i] for i in keep]
    src = Counter(index.get(n, {}).get("source", "?") for n in names)
    sof = Counter(index.get(n, {}).get("jpeg_sof", "?") for n in names)
    notes = [
        "sources: " + ", ".join(f"{k} {v}" for k, v in src.most_common()),
        "coding: " + ", ".join(f"{k} {v}" for k, v in sof.most_common()),
    ]
    n_odd = sum(n.startswith("odd/") for n in names)
    notes.append(
        f"{len(names) - n_odd} from jpeg/ (>= {min_mp} Mpx), "
        f"{n_odd} from odd/ (8-bit baseline, <= {max_mp} Mpx)"
    )
    return bd.ImageSet(names, data, sizes, notes), notes


def describe(label: str, s: bd.ImageSet) -> list[str]:
    if not s.data:
        return [f"{label}: no images"]
    short = [min(w, h) for w, h in s.sizes]
    mpx = [w * h / 1e6 for w, h in s.sizes]
    total = sum(len(b) for b in s.data)
    common = Counter(f"{w}x{h}" for w, h in s.sizes).most_common(3)
    return [
        f"{label}: {len(s.data)} JPEGs, {total / 1e6:.1f} MB in memory, "
        f"{total / len(s.data) / 1e3:.0f} kB mean; "
        f"short side {min(short)}..{max(short)} (median {statistics.median(short):.0f}), "
        f"{min(mpx):.2f}..{max(mpx):.2f} Mpx (median {statistics.median(mpx):.2f}); most common "
        + ", ".join(f"{k} ({v})" for k, v in common),
        *[f"{label} {x}" for x in s.notes],
    ]


# --------------------------------------------------------------------------------------------------
# Hash functions of the competitors


def ih_phash_int(b: bytes) -> int:
    import imagehash
    from PIL import Image

    return int(str(imagehash.phash(Image.open(io.BytesIO(b)))), 16)


def ih_phash16_int(b: bytes) -> int:
    """imagehash.phash at hash_size 16 (256 bits), the other size users store."""
    import imagehash
    from PIL import Image

    return int(str(imagehash.phash(Image.open(io.BytesIO(b)), hash_size=16)), 16)


def pdqhash_bytes(b: bytes) -> bytes:
    import pdqhash
    from PIL import Image

    h, _q = pdqhash.compute(np.asarray(Image.open(io.BytesIO(b)).convert("RGB")))
    # pdqhash's bit vector in order is the reference hex read most significant bit first.
    return np.packbits(np.asarray(h, dtype=np.uint8)).tobytes()


def cv_phash_fn(ignore_orientation: bool = False) -> Callable[[bytes], int]:
    """The OpenCV pHash users write: reduced grey decode >= 64 px, INTER_AREA to 32x32, DCT, median."""
    import cv2

    cv2.setNumThreads(1)
    extra = cv2.IMREAD_IGNORE_ORIENTATION if ignore_orientation else 0
    flags = {d: bd.cv_reduced_flag(cv2, d, True) | extra for d in (1, 2, 4, 8)}
    weights = (1 << np.arange(63, -1, -1, dtype=np.uint64)).astype(np.uint64)

    def f(b: bytes) -> int:
        w, h = bd.jpeg_size(b)
        g = cv2.imdecode(np.frombuffer(b, np.uint8), flags[bd.jpeg_scale(w, h, PHASH_SIDE, PHASH_SIDE)])
        small = cv2.resize(g, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
        low = cv2.dct(small)[:8, :8]
        bits = (low > np.median(low)).ravel()
        return int((weights[bits]).sum())

    return f


# --------------------------------------------------------------------------------------------------
# Rows


@dataclass
class Row:
    """One line of the table: one way to hash (or only decode) one set."""

    set: str
    tool: str
    kind: str  # mmcore | competitor | ceiling | cost (cost-of-kinds rows, not in the main table)
    how: str
    family: str = ""  # phash | pdq: the competitor "vs imagehash / pdqhash" divides by
    ceiling: str | None = None  # tool name of the decode-only row this row is bounded by
    per_image: Callable[[bytes], Any] | None = None
    batch: Callable[[list[bytes], int], Any] | None = None
    parallel: str = "threads"  # threads | processes | internal
    one_thread_only: bool = False
    note: str | None = None
    ips: dict[int, float] = field(default_factory=dict)
    mode: dict[int, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.set}|{self.tool}"


CEIL_FULL = "ceiling: full decode"
CEIL_PHASH = "ceiling: grey decode >= 64 px"  # the OpenCV pHash's scale
CEIL_FAST = "ceiling: grey decode >= 128 px"  # the scale fast mode decodes at, for every kind


def _all_ok(r: Any) -> Any:
    bad = int((~r.ok).sum())
    if bad:
        i = int(np.flatnonzero(~r.ok)[0])
        raise RuntimeError(f"{bad}/{len(r)} records failed, e.g. {r.errors[i]}")
    return r


def mm_batch(mmcore: Any, kinds: Sequence[str], mode: str, **kw: Any) -> Callable[[list[bytes], int], Any]:
    return lambda imgs, n: _all_ok(mmcore.hash_batch(imgs, kinds=list(kinds), mode=mode, threads=n, **kw))


def competitor_rows(s: str) -> list[Row]:
    """imagehash and pdqhash (Pillow decode: fork processes at N > 1) and the OpenCV pHash (threads)."""

    spec = [  # tool, call, family, ceiling, function, parallel, modules it needs
        ("imagehash.phash", "phash(Image.open(BytesIO(b)))", "phash", CEIL_FULL, lambda: ih_phash_int,
         "processes", ("imagehash", "PIL")),
        ("pdqhash", "compute(asarray(Image.open(BytesIO(b)).convert('RGB')))", "pdq", CEIL_FULL,
         lambda: pdqhash_bytes, "processes", ("pdqhash", "PIL")),
        ("OpenCV pHash", "imdecode(REDUCED_GRAYSCALE_d) >= 64 px, INTER_AREA 32x32, dct, median", "phash",
         CEIL_PHASH, cv_phash_fn, "threads", ("cv2",)),
        ("imagehash.phash 16", "phash(Image.open(BytesIO(b)), hash_size=16)", "phash16", CEIL_FULL,
         lambda: ih_phash16_int, "processes", ("imagehash", "PIL")),
    ]  # fmt: skip
    rows = []
    for tool, how, fam, ceil, make, par, mods in spec:
        try:
            for m in mods:
                importlib.import_module(m)
            rows.append(Row(s, tool, "competitor", how, fam, ceil, make(), parallel=par))
        except Exception as e:  # a missing competitor is a note in the table, not a crash
            rows.append(Row(s, tool, "competitor", "", fam, note=f"{type(e).__name__}: {e}"[:160]))
    return rows


def mmcore_rows(mmcore: Any, s: str) -> list[Row]:
    """hash_batch over the whole set (threads=N), and the single-image calls in a loop (1 thread)."""
    spec = [  # tool, kinds, mode, family, ceiling
        ("mmcore phash exact", ["phash"], "exact", "phash", CEIL_FULL),
        ("mmcore phash fast", ["phash"], "fast", "phash", CEIL_FAST),
        ("mmcore pdq reference", ["pdq"], "exact", "pdq", CEIL_FULL),
        ("mmcore pdq full", ["pdq"], "full", "pdq", CEIL_FULL),
        ("mmcore pdq fast", ["pdq"], "fast", "pdq", CEIL_FAST),
        ("mmcore all 8 exact", list(KINDS), "exact", "", CEIL_FULL),
        ("mmcore all 8 fast", list(KINDS), "fast", "", None),  # colorhash makes it an RGB decode
        ("mmcore phash16 exact", ["phash"], "exact", "phash16", CEIL_FULL),
        ("mmcore phash16 fast", ["phash"], "fast", "phash16", CEIL_FAST),
    ]
    rows = []
    for tool, k, m, fam, ceil in spec:
        kw = {"hash_size": 16} if fam == "phash16" else {}
        how = f"hash_batch(kinds={'all 8' if len(k) == len(KINDS) else k[0]}, mode={m}"
        how += ", hash_size=16)" if kw else ")"
        batch = mm_batch(mmcore, k, m, **kw)
        rows.append(Row(s, tool, "mmcore", how, fam, ceil, batch=batch, parallel="internal"))
    single = [
        ("mmcore.phash() fast, per call", "phash", CEIL_FAST, lambda b: mmcore.phash(b, mode="fast")),
        ("mmcore.pdq() fast, per call", "pdq", CEIL_FAST, lambda b: mmcore.pdq(b, mode="fast")),
    ]
    for tool, fam, ceil, fn in single:
        rows.append(Row(s, tool, "mmcore", f"{fam}(b, mode=fast) loop", fam, ceil, fn, one_thread_only=True))
    return rows


def ceiling_rows(mmcore: Any, s: str) -> list[Row]:
    """The decode alone: full size (exact modes) and the grey scaled decode fast mode makes."""
    full = "mmcore.decode_batch(exif_orientation=False): full-size RGB"
    rows = [
        Row(s, CEIL_FULL, "ceiling", full, parallel="internal",
            batch=lambda imgs, n: mmcore.decode_batch(imgs, threads=n, exif_orientation=False))
    ]  # fmt: skip
    try:
        import turbojpeg

        tj = turbojpeg.TurboJPEG()
        grey, fastdct = turbojpeg.TJPF_GRAY, turbojpeg.TJFLAG_FASTDCT

        def scaled(side: int) -> Callable[[bytes], Any]:
            def f(b: bytes) -> Any:
                w, h, _, _ = tj.decode_header(b)
                d = bd.jpeg_scale(w, h, side, side)
                return tj.decode(b, pixel_format=grey, scaling_factor=(1, d), flags=fastdct)

            return f

        how = "PyTurboJPEG decode(GRAY, FASTDCT) at 1/d, both sides >= {}"
        rows += [
            Row(s, CEIL_PHASH, "ceiling", how.format(PHASH_SIDE), per_image=scaled(PHASH_SIDE)),
            Row(s, CEIL_FAST, "ceiling", how.format(PDQ_SIDE), per_image=scaled(PDQ_SIDE)),
        ]
    except Exception as e:
        note = f"PyTurboJPEG: {type(e).__name__}: {e}"[:160]
        rows += [Row(s, CEIL_PHASH, "ceiling", "", note=note), Row(s, CEIL_FAST, "ceiling", "", note=note)]
    return rows


def cost_rows(mmcore: Any) -> list[Row]:
    """The "cost" set (an even spread of imagenet), 1 thread: each kind alone, all 8, and all 8
    without each kind, exact and fast; and the decodes alone."""
    rows = []
    for mode in ("exact", "fast"):
        runs = [(f"{mode} all 8", list(KINDS))]
        for k in KINDS:
            runs += [(f"{mode} {k} alone", [k]), (f"{mode} all but {k}", [x for x in KINDS if x != k])]
        for tool, kinds in runs:
            b = mm_batch(mmcore, kinds, mode)
            rows.append(Row("cost", tool, "cost", "", batch=b, parallel="internal", one_thread_only=True))
    rows += [r for r in ceiling_rows(mmcore, "cost") if r.tool in (CEIL_FULL, CEIL_FAST)]
    for r in rows:
        r.one_thread_only = True
    return rows


# --------------------------------------------------------------------------------------------------
# Running (bench_decode's scheme: rounds over all rows, best pass kept; fork pools for Pillow tools)

TASKS: dict[str, Callable[[bytes], Any]] = {}
IMAGES: dict[str, list[bytes]] = {}


def data_of(r: Row) -> list[bytes]:
    return IMAGES[r.set]


def _proc_slice(args: tuple[str, str, int, int]) -> int:
    key, s, i, n = args
    fn = TASKS[key]
    for b in IMAGES[s][i::n]:
        fn(b)
    return len(IMAGES[s][i::n])


def time_pass(row: Row, imgs: list[bytes], threads: int, pools: dict[int, Any]) -> float:
    """Seconds for one pass over all images (bench_decode's timing, with this script's pool task)."""
    args = [(row.key, row.set, i, threads) for i in range(threads)]
    return bd.time_pass(row, imgs, threads, row.parallel, pools, _proc_slice, args)


def validate(row: Row, imgs: list[bytes]) -> str | None:
    try:
        if row.batch is not None:
            row.batch(imgs[:4], 1)
        else:
            assert row.per_image is not None
            for b in imgs[:4]:
                row.per_image(b)
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return f"{type(e).__name__}: {msg}"[:160]
    return None


def run_rounds(rows: list[Row], threads: list[int], repeat: int, pools: dict[int, Any]) -> None:
    """bench_decode's rounds (every row once per round, rotating start, best pass kept)."""
    live = [r for r in rows if not r.note]
    bd.run_rounds(live, threads, repeat, lambda r, n: (time_pass(r, data_of(r), n, pools), len(data_of(r))))


# --------------------------------------------------------------------------------------------------
# Tables


def fmt_ms(ips: float | None) -> str:
    return "-" if not ips else f"{1000 / ips:.2f}"


def speed_table(rows: list[Row], threads: list[int]) -> tuple[list[str], list[list[str]], list[str]]:
    head = [
        "set",
        "tool",
        "call",
        "threads",
        "parallel",
        "images/s",
        "ms/image",
        "vs imagehash / pdqhash",
        "vs ceiling",
        "vs 1 thread",
    ]
    body: list[list[str]] = []
    for s in SETS:
        srows = [r for r in rows if r.set == s and r.kind != "cost"]
        by_tool = {r.tool: r for r in srows}
        for n in threads:
            for r in srows:
                if r.one_thread_only and n != 1:
                    continue
                v = r.ips.get(n)
                if v is None:
                    if n != threads[0]:
                        continue
                    body.append([s, r.tool, r.how, str(n), "-", "n/a: " + (r.note or "?"), "", "", "", ""])
                    continue
                competitor = {"phash": "imagehash.phash", "pdq": "pdqhash", "phash16": "imagehash.phash 16"}
                comp = by_tool.get(competitor.get(r.family, ""))
                vs_comp = v / comp.ips[n] if comp and comp is not r and n in comp.ips else None
                ceil = by_tool.get(r.ceiling or "")
                vs_ceil = v / ceil.ips[n] if ceil and n in ceil.ips else None
                vs_one = v / r.ips[1] if n != 1 and 1 in r.ips else None
                body.append(
                    [
                        s,
                        r.tool,
                        r.how,
                        str(n),
                        r.mode.get(n, "-"),
                        bd.fmt_ips(v),
                        fmt_ms(v),
                        bd.fmt_ratio(vs_comp),
                        bd.fmt_ratio(vs_ceil),
                        bd.fmt_ratio(vs_one),
                    ]
                )
    verdicts = []
    get = {(r.set, r.tool): r for r in rows}
    for n in threads:
        for s, ours, theirs, need in TARGETS:
            a, b = get.get((s, ours)), get.get((s, theirs))
            label = f"{s}, {n} thread{'s' if n > 1 else ''}: {ours.removeprefix('mmcore ')} / {theirs}"
            if a is None or b is None or n not in a.ips or n not in b.ips:
                verdicts.append(f"{label}: n/a (not measured)")
                continue
            got = a.ips[n] / b.ips[n]
            verdicts.append(f"{label} = {got:.2f}x (target >= {need}x) {'PASS' if got >= need else 'FAIL'}")
    ceil_lines = []
    for n in threads:
        for s in SETS:
            for ours in (
                "mmcore phash fast",
                "mmcore pdq fast",
                "mmcore phash exact",
                "mmcore pdq reference",
            ):
                a = get.get((s, ours))
                c = get.get((s, a.ceiling or "")) if a else None
                if a and c and n in a.ips and n in c.ips:
                    ceil_lines.append(
                        f"{s}, {n} thread{'s' if n > 1 else ''}: {ours.removeprefix('mmcore ')} "
                        f"{a.ips[n]:,.0f}/s = {a.ips[n] / c.ips[n]:.2f}x of its decode ceiling "
                        f"({c.tool.removeprefix('ceiling: ')}, {c.ips[n]:,.0f}/s)"
                    )
    over = []
    for s in SETS:
        for single, batch in (
            ("mmcore.phash() fast, per call", "mmcore phash fast"),
            ("mmcore.pdq() fast, per call", "mmcore pdq fast"),
        ):
            a, b = get.get((s, single)), get.get((s, batch))
            if a and b and 1 in a.ips and 1 in b.ips:
                d = (1 / a.ips[1] - 1 / b.ips[1]) * 1e6
                over.append(
                    f"{s}, 1 thread: {single.split(' ')[0]} in a loop {1000 / a.ips[1]:.3f} ms/image vs "
                    f"hash_batch {1000 / b.ips[1]:.3f} ms/image: {d:+.0f} us per call"
                )
    return head, body, [*verdicts, "", *ceil_lines, "", *over]


def cost_table(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    """ms/image, 1 thread: each kind alone; what it adds to the 7 others."""
    get = {r.tool: r for r in rows if r.set == "cost"}

    def ms(r: Row | None) -> float | None:
        return 1000 / r.ips[1] if r is not None and 1 in r.ips else None

    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    head = [
        "kind",
        "exact: alone",
        "exact: added to the other 7",
        "fast: alone",
        "fast: added to the other 7",
    ]
    body = []
    sums: dict[str, float] = {"exact": 0.0, "fast": 0.0}
    alls = {m: ms(get.get(f"{m} all 8")) for m in ("exact", "fast")}
    for k in KINDS:
        cells = [k]
        for m in ("exact", "fast"):
            alone = ms(get.get(f"{m} {k} alone"))
            rest = ms(get.get(f"{m} all but {k}"))
            sums[m] += alone or 0.0
            added = alls[m] - rest if alls[m] is not None and rest is not None else None
            cells += [f(alone), f(added)]
        body.append(cells)
    body.append(["sum of the 8 alone", f(sums["exact"]), "", f(sums["fast"]), ""])
    body.append(["all 8 in one hash_batch", f(alls["exact"]), "", f(alls["fast"]), ""])
    dec = {"exact": ms(get.get(CEIL_FULL)), "fast": ms(get.get(CEIL_FAST))}
    body.append(
        [
            "decode alone",
            f(dec["exact"]) + " (full RGB)",
            "",
            f(dec["fast"]) + " (grey >= 128 px)",
            "",
        ]
    )
    return head, body


def md_table(head: list[str], body: list[list[str]], right_from: int) -> list[str]:
    out = ["| " + " | ".join(head) + " |"]
    out.append("|" + "|".join("---:" if i >= right_from else "---" for i in range(len(head))) + "|")
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in b) + " |" for b in body]
    return out


def print_plain(head: list[str], body: list[list[str]], right_from: int) -> None:
    widths = [max(len(head[i]), *(len(b[i]) for b in body)) for i in range(len(head))]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for b in body:
        print(
            "  ".join(
                c.rjust(w) if i >= right_from else c.ljust(w)
                for i, (c, w) in enumerate(zip(b, widths, strict=True))
            )
        )


# --------------------------------------------------------------------------------------------------
# Agreement of fast with exact mode


# Near-duplicates found by looking at the corpus's closest pairs (the groups below are the only ones).
EXTRA_GROUPS = {
    "sharp low-contrast": (
        "sharp__test_fixtures_2569067123_aca715a2ee_o.jpg",
        "sharp__test_fixtures_low-contrast.jpg",
    ),
    "canon hdr": ("exifsamples__jpg_hdr_canon_hdr_NO.jpg", "exifsamples__jpg_hdr_canon_hdr_YES.jpg"),
}


def dup_groups(names: list[str]) -> dict[str, list[int]]:
    """tomsaleeba__generated_X-1000px / -100px and tomsaleeba__originals_X are the same photo at
    several sizes; EXTRA_GROUPS are a contrast-reduced copy and an HDR-on / HDR-off pair of a shot."""
    groups: dict[str, list[int]] = {}
    pat = re.compile(r"^tomsaleeba__(?:generated|originals)_(.+?)(?:-\d+px)?\.jpe?g$", re.IGNORECASE)
    where = {n: i for i, n in enumerate(names)}
    for i, n in enumerate(names):
        m = pat.match(n)
        if m:
            groups.setdefault(m.group(1), []).append(i)
    for g, members in EXTRA_GROUPS.items():
        groups[g] = [where[n] for n in members if n in where]
    return {k: v for k, v in groups.items() if len(v) >= 2}


@dataclass
class Agreement:
    intro: list[str]
    table: tuple[list[str], list[list[str]]]
    nd_intro: str
    nd_table: tuple[list[str], list[list[str]]]
    details: list[str]  # the worst missed pairs and the closest false matches
    warnings: list[str]


def agreement(mmcore: Any, threads: int) -> Agreement:
    """Fast vs exact on every JPEG of jpeg/, and near-duplicate recall / precision."""
    s = bd.load_images(CORPUS / "jpeg", "all", None)
    lines: list[str] = []
    warn: list[str] = []
    t0 = time.perf_counter()
    ex = mmcore.hash_batch(s.data, kinds=KINDS, mode="exact", threads=threads)
    fa = mmcore.hash_batch(s.data, kinds=KINDS, mode="fast", exif_orientation=False, threads=threads)
    ok = ex.ok & fa.ok
    idx = np.flatnonzero(ok)
    names = [s.names[i] for i in idx]
    cv = cv_phash_fn(ignore_orientation=True)
    cv_bits = np.array([cv(s.data[i]) for i in idx], dtype=np.uint64)
    lines.append(
        f"{len(idx)}/{len(s.data)} JPEGs of {CORPUS / 'jpeg'} hashed in both modes "
        f"(exif_orientation=False, so both modes see the same pixels; {time.perf_counter() - t0:.0f} s)"
    )
    for k in KINDS:
        col_e, col_f = ex[k][idx], fa[k][idx]
        if not np.any(col_e) and not np.any(col_f):
            warn.append(f"{k}: every hash is zero in both modes: its kernel is a placeholder in this build")
    head = ["kind", "bits", "compared", "thresholds", "share within", "mean d", "max d"]
    body = []
    for k in KINDS:
        d = np.asarray(mmcore.hamming(ex[k][idx], fa[k][idx]))
        ts = (0, 8, 16, 31) if k == "pdq" else (0, 2, 4)
        shares = " / ".join(f"{100 * float(np.mean(d <= t)):.1f}%" for t in ts)
        body.append(
            [
                k,
                str(BITS[k]),
                "fast vs exact",
                " / ".join("0" if t == 0 else f"<={t}" for t in ts),
                shares,
                f"{d.mean():.2f}",
                str(int(d.max())),
            ]
        )
    d = np.asarray(mmcore.hamming(cv_bits, ex["phash"][idx]))
    body.append(
        [
            "OpenCV pHash",
            "64",
            "vs exact phash (= imagehash)",
            "0 / <=2 / <=4",
            " / ".join(f"{100 * float(np.mean(d <= t)):.1f}%" for t in (0, 2, 4)),
            f"{d.mean():.2f}",
            str(int(d.max())),
        ]
    )
    agree = (head, body)

    # Near-duplicate recall / precision: positives are the pairs inside a group, negatives all others.
    groups = dup_groups(names)
    gid = np.full(len(names), -1)
    for g, members in enumerate(groups.values()):
        gid[members] = g
    same = (gid[:, None] == gid[None, :]) & (gid[:, None] >= 0)
    iu = np.triu_indices(len(names), 1)
    pos = same[iu]
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    cases = [
        ("pHash", "exact", ex["phash"][idx], PHASH_T),
        ("pHash", "fast", fa["phash"][idx], PHASH_T),
        ("PDQ", "reference", ex["pdq"][idx], PDQ_T),
        ("PDQ", "fast", fa["pdq"][idx], PDQ_T),
        ("OpenCV pHash", "-", cv_bits, PHASH_T),
    ]
    nd_head = ["hash", "mode", "match if d <=", "TP", "FN", "FP", "recall", "precision"]
    nd_body = []
    details = []
    for label, mode, col, t in cases:
        c = np.asarray(col)
        dm = np.asarray(mmcore.hamming(c[:, None], c[None, :]))[iu]
        hit = dm <= t
        tp, fn, fp = int((hit & pos).sum()), int((~hit & pos).sum()), int((hit & ~pos).sum())
        rec = tp / n_pos if n_pos else float("nan")
        prec = tp / (tp + fp) if tp + fp else float("nan")
        nd_body.append(
            [label, mode, str(t), str(tp), str(fn), str(fp), f"{100 * rec:.1f}%", f"{100 * prec:.1f}%"]
        )
        worst_fn = sorted((int(dm[j]), iu[0][j], iu[1][j]) for j in np.flatnonzero(~hit & pos))[-3:]
        top_fp = sorted((int(dm[j]), iu[0][j], iu[1][j]) for j in np.flatnonzero(hit & ~pos))[:3]
        for what, lst in (("missed", worst_fn), ("false match", top_fp)):
            for dist, a, b in lst:
                details.append(f"{label} {mode}: {what} d={dist}: {names[a]} ~ {names[b]}")
    nd_intro = (
        f"near-duplicates: {len(groups)} groups ({', '.join(f'{k} {len(v)}' for k, v in groups.items())}): "
        "the tomsaleeba photos at several sizes (generated_X-1000px, -100px, originals_X) and two pairs "
        "found by inspecting the closest pairs (a contrast-reduced copy, an HDR on / off shot); "
        f"{n_pos} positive pairs, {n_neg} negative pairs (every other pair of the corpus)"
    )
    return Agreement(lines, agree, nd_intro, (nd_head, nd_body), details, warn)


# --------------------------------------------------------------------------------------------------
# Checks and header


def version_lines() -> list[str]:
    out = []

    def add(name: str, get: Callable[[], str]) -> None:
        try:
            out.append(f"{name} {get()}")
        except Exception as e:
            out.append(f"{name}: not available ({type(e).__name__}: {e})"[:200])

    def meta(dist: str) -> str:
        import importlib.metadata as md

        return md.version(dist)

    def pil() -> str:
        import PIL
        from PIL import features

        return f"{PIL.__version__} (libjpeg-turbo {features.version('libjpeg_turbo')})"

    def cv() -> str:
        import cv2

        jpeg = [ln.split(":", 1)[1].strip() for ln in cv2.getBuildInformation().splitlines() if "JPEG:" in ln]
        return f"{cv2.__version__} (JPEG: {jpeg[0] if jpeg else '?'})"

    def tj() -> str:
        import turbojpeg

        turbojpeg.TurboJPEG()
        lib = "libturbojpeg"
        try:
            with open("/proc/self/maps") as f:
                paths = {ln.split()[-1] for ln in f if "libturbojpeg" in ln}
            lib = ", ".join(sorted(os.path.realpath(p) for p in paths)) or lib
        except OSError:
            pass
        return f"{turbojpeg.__version__} ({lib})"

    add("numpy", lambda: np.__version__)
    add("Pillow", pil)
    add("imagehash", lambda: meta("ImageHash"))
    add("scipy", lambda: meta("scipy"))
    add("pdqhash", lambda: meta("pdqhash"))
    add("opencv", cv)
    add("PyTurboJPEG", tj)
    return out


def checks(mmcore: Any, sets: dict[str, bd.ImageSet], quick: bool) -> list[str]:
    """Do the rows compute the same thing? mmcore exact pHash vs imagehash, PDQ full vs pdqhash."""
    out = []
    for s, imgs in sets.items():
        k = min(len(imgs.data), 2 if quick else 4 if s == "photos" else 16)
        data = imgs.data[:k]
        try:
            ih = [ih_phash_int(b) for b in data]
            mm = [int(v) for v in mmcore.hash_batch(data, kinds=["phash"], threads=1)["phash"]]
            eq = sum(a == b for a, b in zip(ih, mm, strict=True))
            ih16 = [ih_phash16_int(b) for b in data]
            r16 = mmcore.hash_batch(data, kinds=["phash"], hash_size=16, threads=1)
            eq16 = sum(a == int.from_bytes(bytes(b), "big") for a, b in zip(ih16, r16["phash"], strict=True))
            out.append(f"check {s}: mmcore exact pHash at hash_size 16 == imagehash's on {eq16}/{k}")
            cvh = [cv_phash_fn()(b) for b in data]
            dcv = [mmcore.hamming(a, b) for a, b in zip(ih, cvh, strict=True)]
            out.append(
                f"check {s}: mmcore exact pHash == imagehash.phash on {eq}/{k}; OpenCV pHash vs imagehash: "
                f"median distance {statistics.median(dcv):.0f} bits"
            )
        except Exception as e:
            out.append(f"check {s}: pHash check failed: {type(e).__name__}: {e}"[:200])
        try:
            pq = [pdqhash_bytes(b) for b in data]
            r = mmcore.hash_batch(data, kinds=["pdq"], mode="full", threads=1)
            d = [mmcore.hamming(a, bytes(b)) for a, b in zip(pq, r["pdq"], strict=True)]
            zero = not np.any(r["pdq"])
            out.append(
                f"check {s}: mmcore PDQ full vs pdqhash.compute: {sum(x == 0 for x in d)}/{k} equal, "
                f"max distance {max(d)}"
                + (" -- mmcore's PDQ hashes are all zero: placeholder kernel" if zero else "")
            )
        except Exception as e:
            out.append(f"check {s}: PDQ check failed: {type(e).__name__}: {e}"[:200])
    return out


def write_chart(path: Path, rows: list[Row], threads: list[int], title: str) -> str | None:
    panels = [(s, [r for r in rows if r.set == s]) for s in SETS]
    return bd.bar_chart(path, panels, threads, title, log_x=True, panel_size=(7, 6))


# --------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--repeat", type=int, default=3, help="timed rounds; the best pass is kept (default 3)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 60 + 4 images, 1 round")
    ap.add_argument("--limit", type=int, default=None, help="at most this many imagenet images (even spread)")
    ap.add_argument("--photo-limit", type=int, default=None, help="at most this many photos")
    ap.add_argument("--photo-mp", type=float, default=6.0, help="photos: at least this many Mpx (default 6)")
    ap.add_argument("--photo-max-mp", type=float, default=50.0, help="odd/ photos: at most this many Mpx")
    ap.add_argument(
        "--cost-limit", type=int, default=170, help="images (of the imagenet set) for the cost per kind"
    )
    ap.add_argument(
        "--sections", default="speed,kinds,agreement", help="subset of speed,kinds,agreement (default all)"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="output folder")
    args = ap.parse_args(argv)
    if args.quick:
        args.limit = args.limit or 60
        args.photo_limit = args.photo_limit or 4
        args.repeat = 1
    threads = sorted({int(x) for x in args.threads.split(",") if x.strip()})
    sections = {x.strip() for x in args.sections.split(",") if x.strip()}
    if not (CORPUS / "jpeg").is_dir():
        ap.error(f"no corpus at {CORPUS / 'jpeg'}")

    sets = {"imagenet": bd.load_images(CORPUS / "jpeg", "imagenet", args.limit)}
    sets["photos"], _ = load_photos(args.photo_mp, args.photo_max_mp, args.photo_limit)
    for s, v in sets.items():
        IMAGES[s] = v.data
    n_cost = min(args.cost_limit, len(IMAGES["imagenet"]))
    IMAGES["cost"] = [
        IMAGES["imagenet"][i] for i in np.linspace(0, len(IMAGES["imagenet"]) - 1, n_cost).astype(int)
    ]

    import mmcore

    header = [*bd.machine_lines(), bd.mmcore_line(codecs=True), *version_lines()]
    header += describe("imagenet", sets["imagenet"]) + describe("photos", sets["photos"])
    header.append(
        "timing: wall clock, end to end from JPEG bytes in memory, "
        f"best of {args.repeat} round(s) (each round times every row once); threads {threads}; "
        "mmcore: hash_batch(threads=N) over the whole set; "
        "Pillow-based rows: N fork processes; OpenCV / PyTurboJPEG: N threads"
    )
    for line in header:
        print(line)
    print(flush=True)

    rows: list[Row] = []
    if "speed" in sections:
        for s in SETS:
            rows += competitor_rows(s) + mmcore_rows(mmcore, s) + ceiling_rows(mmcore, s)
    if "kinds" in sections:
        rows += cost_rows(mmcore)
    for r in rows:
        if r.per_image is not None:
            TASKS[r.key] = r.per_image

    # Fork the process pools before mmcore or anything else has started a thread, after one call of
    # each pooled function: imagehash imports scipy.fftpack inside phash() and Pillow loads its
    # plugins on the first open, which every worker would otherwise pay in its first timed pass.
    pools: dict[int, Any] = {}
    if any(r.parallel == "processes" for r in rows):
        for r in rows:
            if r.parallel == "processes" and r.per_image is not None and not r.note:
                with contextlib.suppress(Exception):  # validate() below says why
                    r.per_image(data_of(r)[0])
        ctx = mp.get_context("fork")
        pools = {n: ctx.Pool(n) for n in threads if n > 1}

    t_start = time.perf_counter()
    warnings: list[str] = []
    check_lines = checks(mmcore, sets, args.quick) if "speed" in sections else []
    for line in check_lines:
        print(line)
        if "placeholder" in line or "failed" in line:
            warnings.append(line)
    for r in rows:
        if not r.note:
            r.note = validate(r, data_of(r))
            if r.note:
                print(f"{r.set:8s} {r.tool:34s} skipped: {r.note}", flush=True)
    if rows:
        run_rounds(rows, threads, args.repeat, pools)
    for p in pools.values():
        p.terminate()

    md = ["# bench_hash", "", *[f"- {x}" for x in header]]
    if check_lines:
        md += [*[f"- {x}" for x in check_lines]]
    md.append("")
    if "speed" in sections:
        head, body, verdicts = speed_table(rows, threads)
        print()
        bd.print_table(head, body)
        print()
        print("\n".join(verdicts))
        md += ["## Throughput", "", *md_table(head, body, 5), "", "Targets (issue) and ceilings:", ""]
        md += [f"- {v}" if v else "" for v in verdicts] + [""]
    if "kinds" in sections:
        head, body = cost_table(rows)
        title = (
            f"Cost of each kind ({len(IMAGES['cost'])} of the imagenet set, 1 thread, ms/image; "
            "'added' = all 8 minus all 8 without it: what the kind costs when the decode is shared; "
            "differences of noisy timings, can be slightly negative)"
        )
        print("\n" + title)
        print_plain(head, body, 1)
        md += ["## " + title.split(" (")[0], "", title, "", *md_table(head, body, 1), ""]
    if "agreement" in sections:
        a = agreement(mmcore, max(threads))
        warnings += a.warnings
        print("\nAgreement of fast with exact mode")
        print("\n".join(a.intro))
        print_plain(*a.table, 1)
        print(f"\nNear-duplicate recall / precision (pHash d <= {PHASH_T}, PDQ d <= {PDQ_T})\n{a.nd_intro}")
        print_plain(*a.nd_table, 2)
        print("\n".join(a.details))
        md += ["## Agreement of fast with exact mode", "", *[f"- {x}" for x in a.intro], ""]
        md += [*md_table(*a.table, 1), ""]
        md += [f"### Near-duplicate recall / precision (pHash d <= {PHASH_T}, PDQ d <= {PDQ_T})", ""]
        md += [a.nd_intro, "", *md_table(*a.nd_table, 2), "", *[f"- {x}" for x in a.details], ""]
    elapsed = time.perf_counter() - t_start
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    tail = f"bench wall time {elapsed:.0f} s; load average at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    print("\n" + tail)
    md += ["", f"- {tail}"]
    if warnings:
        print("\nWARNINGS (numbers that involve these are not meaningful):")
        print("\n".join(f"  {w}" for w in warnings))
        md += [
            "",
            "**Warnings** (numbers that involve these are not meaningful):",
            "",
            *[f"- {w}" for w in warnings],
        ]
    args.out.mkdir(parents=True, exist_ok=True)
    md_path, png = args.out / "bench_hash.md", args.out / "bench_hash.png"
    md_path.write_text("\n".join(md) + "\n")
    note = None
    if "speed" in sections:
        note = write_chart(png, rows, threads, header[0])
    print(
        f"\nwrote {md_path}"
        + ("" if note or "speed" not in sections else f" and {png}")
        + (f" ({note})" if note else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
