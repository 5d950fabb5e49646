#!/usr/bin/env python3
"""Near-duplicate quality of mmcore's perceptual hashes: recall on known copies, false matches on
distinct photos.

Standalone and offline; needs ../shared/corpus (skips with a message without it).

Duplicates (positive pairs):
  corpus groups    the tomsaleeba photos of jpeg/, each at 100 px, 1000 px and (six of them) full
                   size, plus bench_hash's two other groups (a contrast-reduced copy, an HDR on / off
                   pair); every pair inside a group
  generated copies --limit photos of jpeg/ (an even spread of those with a short side >= 200 px,
                   outside the groups), each transformed with Pillow and encoded to JPEG bytes
                   (quality 95 unless the transform is a re-encode), paired with the original file
Non-duplicates: every pair of distinct photos of jpeg/ (--neg-limit: an even spread of that many,
plus the group members), less the pairs inside a group.

Hashes (mmcore.hash_batch on the bytes, so the decode is real; fast mode with
exif_orientation=False so that both sides of a pair see the same pixels, as exact mode does):
  pHash exact / fast, dHash exact: match if distance <= 10 bits of 64
  PDQ reference / fast: match if distance <= 31 bits of 256
  PDQ reference, dihedral: the minimum over the copy's 8 dihedral hashes against the original's hash

    python bench/eval_near_dup.py               # all of jpeg/: ~2.5 min on 2 idle cores
    python bench/eval_near_dup.py --limit 40    # fewer generated copies

Prints the machine and versions, then the tables; writes eval_near_dup.md and eval_near_dup.png
(distance distributions of duplicates and non-duplicates per hash) into --out.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_decode as bd
import bench_hash as bh
import numpy as np

ROOT = bd.ROOT
CORPUS = Path(os.environ.get("MMCORE_CORPUS", bh.CORPUS))


@dataclass(frozen=True)
class Hash:
    """One column of the tables: a kind, a mode of hash_batch and a match threshold."""

    label: str
    kind: str
    mode: str  # hash_batch mode
    threshold: int
    sweep: tuple[int, ...]
    dihedral: bool = False


SWEEP64 = (0, 2, 4, 6, 8, 10, 12, 14, 16, 20)
SWEEP256 = (8, 16, 24, 31, 40, 48, 56, 64, 72, 80)
# Thresholds: 10 of 64 bits is imagededup's default max_distance_threshold for its hashes and the
# edge of Krawetz's "1..10: a variation" rule for dHash; 31 of 256 is Meta's PDQ match threshold
# (../shared/SPEC-hashes.md).
HASHES = (
    Hash("pHash exact", "phash", "exact", 10, SWEEP64),
    Hash("pHash fast", "phash", "fast", 10, SWEEP64),
    Hash("dHash exact", "dhash", "exact", 10, SWEEP64),
    Hash("PDQ reference", "pdq", "exact", 31, SWEEP256),
    Hash("PDQ fast", "pdq", "fast", 31, SWEEP256),
    Hash("PDQ ref. dihedral", "pdq", "exact", 31, SWEEP256, dihedral=True),
)
KINDS = ("phash", "dhash", "pdq")
MODES = ("exact", "fast")
MIN_SIDE = 200  # generated copies start from photos at least this large (a 128 px resize is a shrink)

# --------------------------------------------------------------------------------------------------
# Transforms: Pillow image in, encoded JPEG bytes out


def _jpeg(img: Any, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _resize(f: float) -> Callable[[Any], bytes]:
    def t(img: Any) -> bytes:
        from PIL import Image

        w, h = img.size
        return _jpeg(img.resize((max(1, round(w * f)), max(1, round(h * f))), Image.Resampling.LANCZOS))

    return t


def _thumb(side: int) -> Callable[[Any], bytes]:
    def t(img: Any) -> bytes:
        w, h = img.size
        return _resize(side / max(w, h))(img)

    return t


def _crop(c: float, corner: bool = False) -> Callable[[Any], bytes]:
    """Removes the share c of the width and of the height: half on each side, or all top-left."""

    def t(img: Any) -> bytes:
        w, h = img.size
        dx, dy = round(w * c), round(h * c)
        x0, y0 = (dx, dy) if corner else (dx // 2, dy // 2)
        return _jpeg(img.crop((x0, y0, x0 + w - dx, y0 + h - dy)))

    return t


def _brightness(f: float) -> Callable[[Any], bytes]:
    def t(img: Any) -> bytes:
        from PIL import ImageEnhance

        return _jpeg(ImageEnhance.Brightness(img).enhance(f))

    return t


def _flip(img: Any) -> bytes:
    from PIL import ImageOps

    return _jpeg(ImageOps.mirror(img))


def _rotate(deg: float) -> Callable[[Any], bytes]:
    def t(img: Any) -> bytes:
        from PIL import Image

        return _jpeg(img.rotate(deg, resample=Image.Resampling.BICUBIC, expand=False))  # black corners

    return t


def _watermark(img: Any) -> bytes:
    """A white caption with a dark outline across the lower right, 1/12 of the image high."""
    from PIL import ImageDraw, ImageFont

    out = img.copy()
    w, h = out.size
    size = max(10, h // 12)
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(out)
    fill, stroke = (255, 0) if out.mode == "L" else ((255, 255, 255), (0, 0, 0))
    text = "(c) sample watermark"
    tw = draw.textlength(text, font=font)
    xy = (max(0, w - tw - size // 2), h - 2 * size)
    draw.text(xy, text, font=font, fill=fill, stroke_width=max(1, size // 12), stroke_fill=stroke)
    return _jpeg(out)


def _resize_reencode(img: Any) -> bytes:
    from PIL import Image

    w, h = img.size
    small = img.resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.LANCZOS)
    return _jpeg(small, 50)


# name, family (rows are grouped by it), transform
TRANSFORMS: tuple[tuple[str, str, Callable[[Any], bytes]], ...] = (
    ("resize 50%", "resize", _resize(0.5)),
    ("resize 25%", "resize", _resize(0.25)),
    ("resize to 128 px", "resize", _thumb(128)),
    ("JPEG q75", "re-encode", lambda img: _jpeg(img, 75)),
    ("JPEG q50", "re-encode", lambda img: _jpeg(img, 50)),
    ("JPEG q20", "re-encode", lambda img: _jpeg(img, 20)),
    ("resize 50% + JPEG q50", "re-encode", _resize_reencode),
    ("crop 2% (centre)", "crop", _crop(0.02)),
    ("crop 5% (centre)", "crop", _crop(0.05)),
    ("crop 10% (centre)", "crop", _crop(0.10)),
    ("crop 5% (corner)", "crop", _crop(0.05, corner=True)),
    ("crop 10% (corner)", "crop", _crop(0.10, corner=True)),
    ("brightness -25%", "brightness", _brightness(0.75)),
    ("brightness -10%", "brightness", _brightness(0.90)),
    ("brightness +10%", "brightness", _brightness(1.10)),
    ("brightness +25%", "brightness", _brightness(1.25)),
    ("rotate 2°", "rotate", _rotate(2)),
    ("rotate 5°", "rotate", _rotate(5)),
    ("watermark text", "overlay", _watermark),
    ("flip horizontal", "flip", _flip),
)
# Pools of generated copies: the edits that keep the geometry, the ones that move it, and all but
# the flip (no 64-bit hash here is mirror-invariant, so the flip only counts in its own row).
POOLS = (  # row label, sweep column, families
    (
        "copies: resize, re-encode, brightness, watermark",
        "mild edits",
        ("resize", "re-encode", "brightness", "overlay"),
    ),
    ("copies: crop, rotate", "crop / rotate", ("crop", "rotate")),
    (
        "copies: all but flip",
        "all copies but flip",
        ("resize", "re-encode", "brightness", "overlay", "crop", "rotate"),
    ),
)

# --------------------------------------------------------------------------------------------------
# Hashing


Codes = dict[str, Any]  # hash label -> codes of a list of records (+ "<label>/8": dihedral variants)


def hash_codes(data: Sequence[bytes], threads: int) -> tuple[Codes, Any]:
    """Every column of HASHES for the records; and a bool mask of the records that hashed OK."""
    import mmcore

    out: Codes = {}
    ok = np.ones(len(data), dtype=bool)
    for mode in MODES:
        r = mmcore.hash_batch(
            list(data),
            kinds=KINDS,
            mode=mode,
            dihedral=any(h.dihedral and h.mode == mode for h in HASHES),
            exif_orientation=False,
            threads=threads,
        )
        ok &= r.ok
        for h in HASHES:
            if h.mode == mode:
                out[h.label] = r[h.kind]
                if h.dihedral:
                    out[h.label + "/8"] = r["pdq_dihedral"]
        if mode == "exact":
            out["pdq_quality"] = r["pdq_quality"]
    return out, ok


def distances(h: Hash, q: Codes, qi: Any, ref: Codes, ri: Any) -> Any:
    """Distance of record q[qi[k]] to ref[ri[k]] for every k (dihedral: min over q's 8 variants)."""
    import mmcore

    if h.dihedral:
        d = mmcore.hamming(q[h.label + "/8"][qi], ref[h.label][ri][:, None, :])
        return np.asarray(d).min(axis=1)
    return np.asarray(mmcore.hamming(q[h.label][qi], ref[h.label][ri]))


def _generate_and_hash(args: tuple[str, bytes]) -> tuple[str, Codes, Any]:
    """One source photo: every transform, encoded, then hashed (1 thread; the pool runs photos in
    parallel). Returns (name, codes, ok mask), a row per TRANSFORMS entry."""
    from PIL import Image

    name, data = args
    img = Image.open(io.BytesIO(data))
    img = img.convert("L" if img.mode == "L" else "RGB")
    copies = [t(img) for _, _, t in TRANSFORMS]
    codes, ok = hash_codes(copies, threads=1)
    return name, codes, ok


# --------------------------------------------------------------------------------------------------
# Evaluation


@dataclass
class Pairs:
    """Distances of one set of pairs, per hash label; src: the source photo of each pair (copies)."""

    what: str
    d: dict[str, Any]
    src: Any = None

    @property
    def n(self) -> int:
        return len(next(iter(self.d.values()))) if self.d else 0


def recall(p: Pairs, h: Hash, t: int | None = None) -> float:
    return float(np.mean(p.d[h.label] <= (h.threshold if t is None else t))) if p.n else float("nan")


def hits(ps: Sequence[Pairs], h: Hash, t: int) -> int:
    return sum(int((p.d[h.label] <= t).sum()) for p in ps)


def pct(v: float) -> str:
    return "-" if v != v else f"{100 * v:.1f}%"


def concat(what: str, ps: Sequence[Pairs]) -> Pairs:
    d = {h.label: np.concatenate([p.d[h.label] for p in ps]) for h in HASHES} if ps else {}
    return Pairs(what, d, np.concatenate([p.src for p in ps]) if ps else None)


def generate(work: list[tuple[str, bytes]], jobs: int) -> list[tuple[str, Codes, Any]]:
    """Copies of every source, hashed, in a fork pool (forked before this process hashes anything,
    so that no mmcore worker thread exists at the fork)."""
    if jobs > 1 and len(work) > 1:
        with mp.get_context("fork").Pool(jobs) as pool:
            return pool.map(_generate_and_hash, work, chunksize=1)
    return [_generate_and_hash(w) for w in work]


@dataclass
class Evaluation:
    corpus: list[Pairs]  # positive pairs inside the corpus groups
    per_t: dict[str, Pairs]  # generated copies, per transform
    pools: list[Pairs]
    neg: Pairs
    neg_pairs: tuple[Any, Any]  # the corpus indices of each non-duplicate pair
    failed: list[str]


def evaluate(
    names: list[str], sizes: list[tuple[int, int]], corpus: Codes, ok: Any, gen: list[Any]
) -> Evaluation:
    groups = bh.dup_groups(names)
    gid = np.full(len(names), -1)
    for g, members in enumerate(groups.values()):
        gid[members] = g
    iu, ju = np.triu_indices(len(names), 1)
    good = ok[iu] & ok[ju]
    same = (gid[iu] == gid[ju]) & (gid[iu] >= 0) & good
    by_size = [i for g, v in groups.items() if g not in bh.EXTRA_GROUPS for i in v]
    size_pairs = same & np.isin(iu, by_size)
    area = np.array([w * h for w, h in sizes])

    def pairs(what: str, m: Any) -> Pairs:
        a, b = iu[m], ju[m]
        # the smaller image of a pair is the query (its dihedral variants), the larger the reference
        q, r = np.where(area[a] < area[b], a, b), np.where(area[a] < area[b], b, a)
        return Pairs(what, {h.label: distances(h, corpus, q, corpus, r) for h in HASHES}, q)

    pos = [pairs("corpus: same photo, other size", size_pairs)]
    pos.append(pairs("corpus: other edit (contrast, HDR)", same & ~size_pairs))
    where = {n: i for i, n in enumerate(names)}
    per_t: dict[str, Pairs] = {}
    failed: list[str] = []
    for ti, (tname, fam, _) in enumerate(TRANSFORMS):
        src: list[int] = []
        chunks: dict[str, list[Any]] = {}
        for name, codes, gok in gen:
            if not (gok[ti] and ok[where[name]]):
                failed.append(f"{name}: {tname}")
                continue
            src.append(where[name])
            for k, v in codes.items():
                chunks.setdefault(k, []).append(v[ti : ti + 1])
        codes_t = {k: np.concatenate(v) for k, v in chunks.items()}
        qi = list(range(len(src)))
        d = {
            h.label: distances(h, codes_t, qi, corpus, src) if src else np.zeros(0, np.int64) for h in HASHES
        }
        per_t[tname] = Pairs(f"{fam}: {tname}", d, np.asarray(src, dtype=np.int64))
    fam_of = {n: fam for n, fam, _ in TRANSFORMS}
    pools = [concat(what, [p for n, p in per_t.items() if fam_of[n] in fams]) for what, _, fams in POOLS]
    neg = pairs("non-duplicates: distinct corpus photos", good & ~same)
    return Evaluation(pos, per_t, pools, neg, (iu[good & ~same], ju[good & ~same]), failed)


Table = tuple[list[str], list[list[str]]]


def recall_table(ev: Evaluation) -> Table:
    """Recall per duplicate set at each hash's threshold; false matches, FP rate, precision below."""
    head = ["duplicates", "pairs", *[f"{h.label} <= {h.threshold}" for h in HASHES]]
    body = [
        [p.what, str(p.n), *[pct(recall(p, h)) for h in HASHES]] for p in [*ev.corpus, *ev.per_t.values()]
    ]
    body += [[f"**{p.what}**", str(p.n), *[pct(recall(p, h)) for h in HASHES]] for p in ev.pools]
    n_neg = ev.neg.n
    fp = [hits([ev.neg], h, h.threshold) for h in HASHES]
    tp = [hits([*ev.corpus, ev.pools[-1]], h, h.threshold) for h in HASHES]
    body.append(["false matches among non-duplicate pairs", str(n_neg), *[str(f) for f in fp]])
    body.append(["false-positive rate", str(n_neg), *[f"{100 * f / max(1, n_neg):.3f}%" for f in fp]])
    n_all = sum(p.n for p in ev.corpus) + ev.pools[-1].n + n_neg
    prec = [pct(t / (t + f)) if t + f else "-" for t, f in zip(tp, fp, strict=True)]
    body.append(["precision (corpus pairs + copies but flip, vs non-duplicates)", str(n_all), *prec])
    return head, body


def median_table(ev: Evaluation) -> Table:
    head = ["duplicates", *[h.label for h in HASHES]]
    body = [
        [p.what, *[f"{np.median(p.d[h.label]):.0f}" if p.n else "-" for h in HASHES]]
        for p in [*ev.corpus, *ev.per_t.values()]
    ]
    for what, f in (("median", np.median), ("minimum", np.min)):
        body.append(
            [f"non-duplicates: {what}", *[f"{f(ev.neg.d[h.label]):.0f}" if ev.neg.n else "-" for h in HASHES]]
        )
    return head, body


def sweep_table(ev: Evaluation) -> Table:
    head = ["hash", "match if d <=", "recall: corpus groups", *[f"recall: {w}" for _, w, _ in POOLS]]
    head += ["false matches", "FP rate", "precision"]
    body = []
    for h in HASHES:
        for t in sorted(set(h.sweep) | {h.threshold}):
            f = hits([ev.neg], h, t)
            tp = hits([*ev.corpus, ev.pools[-1]], h, t)
            n_corpus = sum(p.n for p in ev.corpus)
            rc = hits(ev.corpus, h, t) / n_corpus if n_corpus else float("nan")
            body.append(
                [
                    h.label,
                    f"{t}{' (recommended)' if t == h.threshold else ''}",
                    pct(rc),
                    *[pct(recall(p, h, t)) for p in ev.pools],
                    str(f),
                    f"{100 * f / max(1, ev.neg.n):.3f}%",
                    pct(tp / (tp + f)) if tp + f else "-",
                ]
            )
    return head, body


def notes(ev: Evaluation, names: list[str], corpus: Codes) -> list[str]:
    """The closest non-duplicates, which photos the misses on the mild edits come from, and both
    counts again without the photos PDQ calls too flat to trust (quality < 50)."""
    out = []
    mild = ev.pools[0]
    short = [n.split("__", 1)[-1] for n in names]
    flat = np.asarray(corpus["pdq_quality"]) < 50
    neg_a, neg_b = ev.neg_pairs
    sharp_neg = ~(flat[neg_a] | flat[neg_b])
    sharp_mild = ~flat[mild.src] if mild.n else np.zeros(0, bool)
    for h in HASHES:
        if ev.neg.n:
            d = ev.neg.d[h.label]
            j = int(np.argmin(d))
            out.append(
                f"{h.label}: closest non-duplicates d={int(d[j])} ({names[neg_a[j]]} ~ {names[neg_b[j]]}); "
                f"{int((d <= h.threshold).sum())} pairs within {h.threshold}, "
                f"{int((d[sharp_neg] <= h.threshold).sum())} without a photo of PDQ quality < 50"
            )
        if mild.n:
            miss = mild.d[h.label] > h.threshold
            who = Counter(short[i] for i in mild.src[miss]).most_common(4)
            out.append(
                f"{h.label}: {int(miss.sum())} of {mild.n} copies with mild edits (resize, re-encode, "
                "brightness, watermark) missed"
                + (", from " + ", ".join(f"{n} ({c})" for n, c in who) if who else "")
                + f"; without photos of PDQ quality < 50: {int(miss[sharp_mild].sum())} of "
                f"{int(sharp_mild.sum())}"
            )
    srcs = sorted({int(i) for i in mild.src}) if mild.n else []
    low = [short[i] for i in srcs if flat[i]]
    out.append(
        f"source photos with PDQ quality < 50 (too flat to trust, by PDQ's rule): {len(low)} of {len(srcs)}"
        + (f": {', '.join(low)}" if low else "")
        + f"; corpus photos: {int(flat.sum())} of {len(names)}"
    )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--limit", type=int, default=None, help="source photos for generated copies (default all)"
    )
    ap.add_argument(
        "--neg-limit", type=int, default=None, help="photos of jpeg/ for non-duplicate pairs (default all)"
    )
    ap.add_argument("--jobs", type=int, default=None, help="processes generating copies (default: cores)")
    ap.add_argument("--corpus", type=Path, default=CORPUS, help=f"corpus folder (default {CORPUS})")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="output folder")
    args = ap.parse_args(argv)
    jpeg_dir = args.corpus / "jpeg"
    if not jpeg_dir.is_dir():
        print(f"eval_near_dup: skipped: no corpus at {jpeg_dir} (pass --corpus or set MMCORE_CORPUS)")
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    jobs = args.jobs or cores
    t_start = time.perf_counter()

    # The corpus: the group members always, the other photos an even spread of --neg-limit.
    s = bd.load_images(jpeg_dir, "all", None)
    in_group = {i for v in bh.dup_groups(s.names).values() for i in v}
    others = [i for i in range(len(s.names)) if i not in in_group]
    if args.neg_limit is not None and len(others) > args.neg_limit:
        others = [others[i] for i in np.linspace(0, len(others) - 1, args.neg_limit).round().astype(int)]
    keep = sorted(in_group | set(others))
    names, data, sizes = [s.names[i] for i in keep], [s.data[i] for i in keep], [s.sizes[i] for i in keep]
    grouped = {s.names[i] for i in in_group}
    cand = [i for i in range(len(names)) if min(sizes[i]) >= MIN_SIDE and names[i] not in grouped]
    if args.limit is not None and len(cand) > args.limit:
        cand = [cand[i] for i in np.linspace(0, len(cand) - 1, args.limit).round().astype(int)]

    import matplotlib
    import PIL

    header = [*bd.machine_lines(), bd.mmcore_line(codecs=True)]
    header.append(f"numpy {np.__version__}, Pillow {PIL.__version__}, matplotlib {matplotlib.__version__}")
    header.append(
        f"corpus: {len(names)} JPEGs of {jpeg_dir}, {len(grouped)} of them in near-duplicate groups; "
        f"generated copies of {len(cand)} photos x {len(TRANSFORMS)} transforms"
    )
    for line in header:
        print(line)
    print(flush=True)

    t0 = time.perf_counter()
    gen = generate([(names[i], data[i]) for i in cand], jobs)
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    corpus, ok = hash_codes(data, threads=cores)
    t_hash = time.perf_counter() - t0
    ev = evaluate(names, sizes, corpus, ok, gen)

    intro = [
        "match thresholds: pHash and dHash d <= 10 of 64 bits (imagededup's default, Krawetz's rule for "
        "dHash); every PDQ column d <= 31 of 256 bits (Meta's PDQ threshold)",
        f"positive pairs: {sum(p.n for p in ev.corpus)} inside corpus groups, "
        f"{sum(p.n for p in ev.per_t.values())} generated copies of {len(gen)} photos; "
        f"non-duplicate pairs: {ev.neg.n} (every pair of {int(ok.sum())} corpus photos not in one group)",
        "copies: Pillow from the original's pixels (no EXIF rotation), JPEG quality 95 unless stated; "
        "rotations fill the corners black; the watermark is a caption 1/12 of the height in the lower right",
        "dihedral: min over the query's 8 PDQ dihedral hashes (in a corpus pair the smaller image is it)",
        f"time: copies {t_gen:.0f} s ({jobs} processes), corpus hashing {t_hash:.1f} s",
    ]
    bad = [names[i] for i in np.flatnonzero(~ok)]
    if bad:
        intro.append(f"corpus files that did not hash (left out): {', '.join(bad)}")
    if ev.failed:
        intro.append(f"copies that did not hash (left out): {len(ev.failed)}, e.g. {ev.failed[0]}")
    sections = [
        ("Recall at the recommended threshold", recall_table(ev)),
        ("Median distance", median_table(ev)),
        ("Threshold sweep", sweep_table(ev)),
    ]
    extra = notes(ev, names, corpus)

    print("\n".join(intro))
    for title, (head, body) in sections:
        print(f"\n{title}")
        bh.print_plain(head, [[c.replace("**", "") for c in b] for b in body], 1)
    print("\n" + "\n".join(extra))
    elapsed = time.perf_counter() - t_start
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    tail = f"wall time {elapsed:.0f} s; load average at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    print("\n" + tail)

    md = ["# eval_near_dup", "", *[f"- {x}" for x in header + intro], ""]
    for title, (head, body) in sections:
        md += [f"## {title}", "", *bh.md_table(head, body, 1), ""]
    md += [*[f"- {x}" for x in extra], "", f"- {tail}"]
    args.out.mkdir(parents=True, exist_ok=True)
    md_path, png = args.out / "eval_near_dup.md", args.out / "eval_near_dup.png"
    md_path.write_text("\n".join(md) + "\n")
    plot(png, [*ev.corpus[:1], *ev.pools[:2], ev.per_t["flip horizontal"]], ev.neg, header[0])
    print(f"\nwrote {md_path} and {png}")
    return 0


def plot(path: Path, pos: list[Pairs], neg: Pairs, title: str) -> None:
    """Per hash: the distance histograms (share of the set's pairs, log scale) of the duplicate sets
    and of the non-duplicates, with the threshold. The flip only shows for PDQ."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = ("tab:blue", "tab:green", "tab:orange", "tab:purple")
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.4), sharey=True)
    for ax, h in zip(axes.ravel(), HASHES, strict=True):
        top, step = (64, 2) if h.kind != "pdq" else (160, 4)  # pHash and PDQ distances are even
        edge = h.threshold + 0.5  # a bin edge, so that no bin holds both matches and misses
        bins = np.arange(edge % step - step, top + step, step)
        for p, color in zip(pos, colors, strict=False):
            if p.n and (not p.what.startswith("flip") or h.kind == "pdq"):
                ax.hist(p.d[h.label], bins=bins, weights=np.full(p.n, 1 / p.n), histtype="step", color=color,
                        lw=1.5, label=f"{p.what.split(': ', 1)[-1]} ({p.n})")  # fmt: skip
        if neg.n:
            ax.hist(neg.d[h.label], bins=bins, weights=np.full(neg.n, 1 / neg.n), color="tab:red", alpha=0.35,
                    label=f"non-duplicates ({neg.n})")  # fmt: skip
        ax.axvline(edge, color="k", ls="--", lw=1)
        ax.set_title(f"{h.label} (match if <= {h.threshold})", fontsize=10)
        ax.set_yscale("log")
        ax.set_xlim(-step, top)
        ax.set_xlabel("Hamming distance (bits)", fontsize=8)
        ax.tick_params(labelsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("share of the set's pairs")
    handles, labels = axes[1, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle(f"Near-duplicate distances, mmcore.hash_batch ({title})", fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=70)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
