#!/usr/bin/env python3
"""Hamming near-duplicate search: mmcore next to faiss-cpu (IndexBinaryFlat, IndexBinaryMultiHash).

Standalone and offline. Codes are generated from the real hashes of ../shared/corpus/jpeg (mmcore
fast-mode pHash and PDQ): every code is a byte-wise mosaic of corpus hashes (each byte taken from
a random corpus hash, which keeps the real per-byte statistics: the pairwise distance distribution
of mosaics matches the corpus's, printed in the header) with 0..2 random bit flips, and 30% of the
codes are near copies of another code (0..6 flipped bits for pHash, 0..32 for PDQ), like resized or
re-encoded photos. Without the corpus, uniform random codes stand in (said in the header).

Scenarios (the issue's):
  knn       k=10 over 1M 64-bit codes, 1000 queries (near copies of indexed codes): mmcore
            HammingIndex.knn vs faiss IndexBinaryFlat.search, same thread count, answers compared
  join      self-join of 1M 64-bit codes at r=4 and r=8 (all pairs within r, inclusive): mmcore
            HammingIndex.join vs faiss brute force (IndexBinaryFlat.range_search of every code
            with radius r+1, as faiss's radius is exclusive) and faiss IndexBinaryMultiHash
            (range_search of every code; nhash / b / nflip chosen by a small sweep, exact
            settings only). faiss rows are timed on a subset of the queries and scaled linearly
            to all N (--faiss-queries, --mh-queries; the table says so); their pairs are checked
            against mmcore's on that subset
  scaling   mmcore join at 100k / 1M (and 10M with --big) codes, r=4 and r=8: seconds, pairs,
            candidates (codes whose distance was computed), method and substrings
  pdq       256-bit PDQ codes, 1M, r=31: join time and candidates, and faiss brute force
            range_search on a subset scaled to all codes; an extrapolation of when a CPU stops
            being enough
  memory    bytes per code held by the index and the multi-index-hashing tables' peak bytes
  widths    codes of other lengths (the any-width kernel): 144-bit (pHash at hash_size 12) and
            1024-bit (hash_size 32) codes made as above from random codes, and 512-bit binary codes
            of the corpus's 47,632 real CLIP embeddings (quantize_binary; sign of x - mean): kNN
            k=10 vs faiss IndexBinaryFlat.search, radius search vs IndexBinaryFlat.range_search
            (r + 1), answers compared

    python bench/bench_hamming.py                   # ~5 min on 2 cores
    python bench/bench_hamming.py --quick           # smoke run: 100k codes, 1 round
    python bench/bench_hamming.py --big             # adds 10M codes to the scaling table

Prints the machine, mmcore.build_info(), versions, the data, then the tables; writes
bench_hamming.md and bench_hamming.png into --out (default bench/results/).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_decode as bd
import numpy as np
from bench_hash import md_table, print_plain

ROOT = bd.ROOT
CORPUS = ROOT.parent / "shared" / "corpus"
DUP_SHARE = 0.3
DUP_FLIPS = {64: 6, 256: 32}
PHOTO_FLIPS = 2
# The targets: (scenario, competitor, floor).
TARGETS = (
    ("knn k=10", "faiss IndexBinaryFlat", 1.2),
    ("join r=4", "faiss brute range_search", 10.0),
    ("join r=8", "faiss brute range_search", 10.0),
    ("join r=4", "faiss IndexBinaryMultiHash", 1.0),
    ("join r=8", "faiss IndexBinaryMultiHash", 1.0),
)

# --------------------------------------------------------------------------------------------------
# Codes


def corpus_hashes() -> dict[str, np.ndarray] | None:
    """Unique mmcore fast-mode pHash (uint64 (R, 1)) and PDQ (uint64 (R, 4)) of the corpus JPEGs."""
    folder = CORPUS / "jpeg"
    if not folder.is_dir():
        return None
    import mmcore

    files = sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    r = mmcore.hash_batch(files, kinds=("phash", "pdq"), mode="fast")
    ph = np.unique(r["phash"][r.ok]).reshape(-1, 1)
    pdq = np.unique(np.ascontiguousarray(r["pdq"][r.ok]).view(np.uint64), axis=0)
    return {"phash": ph, "pdq": pdq}


def flip(rng: np.random.Generator, codes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """codes (n, W) uint64 with counts[i] distinct random bits of row i flipped."""
    n, w = codes.shape
    out = codes.copy()
    for s in range(0, n, 65536):
        c = counts[s : s + 65536]
        keys = rng.random((len(c), 64 * w), dtype=np.float32)
        rank = keys.argsort(axis=1).argsort(axis=1)
        mask = np.packbits(rank < c[:, None], axis=1)
        out[s : s + 65536] ^= np.ascontiguousarray(mask).view(np.uint64)
    return out


def near_dup_codes(real: np.ndarray | None, n: int, bits: int, seed: int) -> np.ndarray:
    """n codes (uint64 (n, W)) clustered like real hashes (see the module docstring)."""
    rng = np.random.default_rng(seed)
    w = bits // 64
    n_photo = n - int(n * DUP_SHARE)
    if real is None:
        photos = rng.integers(0, 2**64, size=(n_photo, w), dtype=np.uint64)
    else:
        b = np.ascontiguousarray(real).view(np.uint8)
        nb = 8 * w
        photos = np.empty((n_photo, nb), dtype=np.uint8)
        for s in range(0, n_photo, 1 << 20):
            m = min(1 << 20, n_photo - s)
            photos[s : s + m] = b[rng.integers(0, len(b), size=(m, nb)), np.arange(nb)]
        photos = photos.view(np.uint64)
        photos = flip(rng, photos, rng.integers(0, PHOTO_FLIPS + 1, size=n_photo))
    src = rng.integers(0, n_photo, size=n - n_photo)
    copies = flip(rng, photos[src], rng.integers(0, DUP_FLIPS[bits] + 1, size=n - n_photo))
    out = np.concatenate([photos, copies])
    return np.ascontiguousarray(out[rng.permutation(n)])


def as_bytes(words: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(words).view(np.uint8).reshape(len(words), -1)


def distance_summary(words: np.ndarray, k: int = 2000) -> str:
    """Mean and 0.1% / 1% quantiles of the distances between k of the codes."""
    x = words[np.linspace(0, len(words) - 1, min(k, len(words))).astype(int)]
    d = np.bitwise_count(x[:, None, :] ^ x[None, :, :]).sum(-1)[np.triu_indices(len(x), 1)]
    return f"mean {d.mean():.1f}, 0.1% {np.percentile(d, 0.1):.0f}, 1% {np.percentile(d, 1):.0f}"


def index_of(words: np.ndarray) -> Any:
    import mmcore

    bits = 64 * words.shape[1]
    index = mmcore.HammingIndex(bits=bits)
    index.add(words[:, 0] if bits == 64 else as_bytes(words))
    return index


# --------------------------------------------------------------------------------------------------
# Rows


@dataclass
class Row:
    """One line of a speed table. fn(threads) runs once and returns seconds for the whole job
    (a faiss row timed on a subset of the queries scales its time to all of them)."""

    scenario: str
    tool: str
    kind: str  # mmcore | competitor
    how: str
    fn: Callable[[int], float]
    items: int  # queries (knn) or codes (join): the rate's unit
    scaled: str = ""  # how a subset timing was scaled, "" when not
    parallel: str = "internal"
    one_thread_only: bool = False
    note: str | None = None
    ips: dict[int, float] = field(default_factory=dict)
    mode: dict[int, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.scenario}|{self.tool}"


def faiss_threads(n: int) -> None:
    import faiss

    faiss.omp_set_num_threads(n)


def knn_rows(words: np.ndarray, queries: np.ndarray, k: int) -> tuple[list[Row], list[str]]:
    import faiss

    sc = f"knn k={k}"
    index = index_of(words)
    flat = faiss.IndexBinaryFlat(64 * words.shape[1])
    flat.add(as_bytes(words))
    q_mm = queries[:, 0] if words.shape[1] == 1 else as_bytes(queries)
    q_f = as_bytes(queries)

    def ours(n: int) -> float:
        t0 = time.perf_counter()
        index.knn(q_mm, k, threads=n)
        return time.perf_counter() - t0

    def theirs(n: int) -> float:
        faiss_threads(n)
        t0 = time.perf_counter()
        flat.search(q_f, k)
        return time.perf_counter() - t0

    d, i = index.knn(q_mm, k)
    fd, fi = flat.search(q_f, k)
    same = bool(np.array_equal(i, fi) and np.array_equal(d, fd))
    check = f"check {sc}: mmcore ids and distances {'equal' if same else 'DIFFER FROM'} faiss's"
    nq = len(queries)
    rows = [
        Row(sc, "mmcore HammingIndex.knn", "mmcore", f"knn(q, {k}, threads=N)", ours, nq),
        Row(sc, "faiss IndexBinaryFlat", "competitor", f"search(q, {k}), omp threads N", theirs, nq),
    ]
    return rows, [check]


def multihash_sweep(words: np.ndarray, r: int, nq: int) -> tuple[tuple[int, int, int], list[str]]:
    """The fastest exact (nhash, b, nflip) for IndexBinaryMultiHash at radius r, timed on nq queries
    at 1 thread. Exact: the nhash substrings of b bits each cover nhash * b <= 64 bits, and
    nflip = floor(r / nhash) (a pair within r has a substring within floor(r / nhash)). A setting
    whose first 20 queries project more than 5x the best so far is not timed further."""
    import faiss

    faiss_threads(1)
    best: tuple[float, tuple[int, int, int]] | None = None
    lines = []
    q = as_bytes(words[:nq])
    for nhash, b in ((2, 32), (3, 21), (4, 16), (8, 8)):
        nflip = r // nhash
        mh = faiss.IndexBinaryMultiHash(64, nhash, b)
        t0 = time.perf_counter()
        mh.add(as_bytes(words))
        t_add = time.perf_counter() - t0
        mh.nflip = nflip
        done = 0
        t = 0.0
        for chunk in (q[:20], q[20:]):
            t0 = time.perf_counter()
            mh.range_search(chunk, r + 1)
            t += time.perf_counter() - t0
            done += len(chunk)
            total = t_add + t * len(words) / done
            if best is not None and total > 5 * best[0]:
                break
        lines.append(
            f"IndexBinaryMultiHash nhash={nhash} b={b} nflip={nflip}: add {t_add:.2f} s, "
            f"{t / done * 1e6:.1f} us/query ({done} queries) -> {total:.1f} s for the self-join (1 thread)"
        )
        if best is None or total < best[0]:
            best = (total, (nhash, b, nflip))
        del mh
    assert best is not None
    return best[1], lines


def join_rows(
    words: np.ndarray, r: int, faiss_q: int, mh_q: int, mh: tuple[int, int, int]
) -> tuple[list[Row], list[str]]:
    import faiss

    sc = f"join r={r}"
    n = len(words)
    index = index_of(words)
    raw = as_bytes(words)
    flat = faiss.IndexBinaryFlat(64 * words.shape[1])
    flat.add(raw)
    nhash, b, nflip = mh
    stats: dict[str, Any] = {}

    def ours(t: int) -> float:
        t0 = time.perf_counter()
        index.join(r, threads=t)
        el = time.perf_counter() - t0
        stats.update(index.last_stats or {})
        return el

    def brute(t: int) -> float:
        faiss_threads(t)
        t0 = time.perf_counter()
        flat.range_search(raw[:faiss_q], r + 1)
        return (time.perf_counter() - t0) * n / faiss_q

    def multihash(t: int) -> float:
        faiss_threads(t)
        t0 = time.perf_counter()
        m = faiss.IndexBinaryMultiHash(64 * words.shape[1], nhash, b)
        m.add(raw)
        m.nflip = nflip
        t_add = time.perf_counter() - t0
        t0 = time.perf_counter()
        m.range_search(raw[:mh_q], r + 1)
        return t_add + (time.perf_counter() - t0) * n / mh_q

    # Same pairs? faiss's neighbours of the first faiss_q codes (minus themselves) against the
    # pairs of mmcore's join that touch those codes.
    i, j, _ = index.join(r)
    lims, _, labels = flat.range_search(raw[:faiss_q], r + 1)
    theirs = {
        (min(q, int(x)), max(q, int(x)))
        for q in range(faiss_q)
        for x in labels[lims[q] : lims[q + 1]]
        if int(x) != q
    }
    touch = (i < faiss_q) | (j < faiss_q)
    ours_set = set(zip(i[touch].tolist(), j[touch].tolist(), strict=True))
    checks = [
        f"check {sc}: mmcore join {len(i):,} pairs ({len(i) / n:.2f} per code); on the first {faiss_q:,} "
        f"codes faiss range_search finds {len(theirs):,} pairs, "
        + ("the same set" if theirs == ours_set else f"DIFFERENT ({len(theirs ^ ours_set)} differ)")
    ]
    rows = [
        Row(sc, "mmcore HammingIndex.join", "mmcore", f"join({r}, threads=N) (method auto)", ours, n),
        Row(
            sc,
            "faiss brute range_search",
            "competitor",
            f"IndexBinaryFlat.range_search(codes, {r + 1})",
            brute,
            n,
            scaled=f"timed on {faiss_q:,} of {n:,} queries, scaled x{n / faiss_q:.0f}",
        ),
        Row(
            sc,
            "faiss IndexBinaryMultiHash",
            "competitor",
            f"MultiHash(nhash={nhash}, b={b}) add + nflip={nflip} range_search(codes, {r + 1})",
            multihash,
            n,
            scaled="" if mh_q >= n else f"add timed in full; search on {mh_q:,} of {n:,} queries, scaled",
        ),
    ]
    return rows, checks


def clip_binary_codes() -> np.ndarray | None:
    """The corpus's real CLIP embeddings as 512-bit binary codes (uint64 (N, 8)), or None."""
    path = CORPUS / "vectors" / "muge_clip_vitb16_512d_f16.npy"
    if not path.is_file():
        return None
    import mmcore

    x = np.load(path).astype(np.float32)
    return mmcore.quantize_binary(x, mmcore.QuantParams.fit(x, "binary"))


def width_rows(n: int, nq: int) -> tuple[list[Row], list[str], list[str]]:
    """kNN and radius rows for codes of other lengths than 64 and 256 bits (see the docstring)."""
    import faiss

    rows: list[Row] = []
    checks: list[str] = []
    header: list[str] = []
    rng = np.random.default_rng(5)
    sets: list[tuple[str, np.ndarray, int]] = []
    for bits, flips in ((144, 9), (1024, 64)):
        w = (bits + 63) // 64
        photos = rng.integers(0, 2**64, size=(n - int(n * DUP_SHARE), w), dtype=np.uint64)
        if bits % 64:  # the spare bits of the last word stay 0
            photos[:, -1] &= np.uint64((1 << (bits % 64)) - 1)
        src = rng.integers(0, len(photos), size=n - len(photos))
        copies = photos[src].copy()
        for row, f in enumerate(rng.integers(0, flips + 1, size=len(copies))):
            for bit in rng.choice(bits, size=int(f), replace=False):
                copies[row, bit // 64] ^= np.uint64(1 << int(bit % 64))
        codes = np.concatenate([photos, copies])[rng.permutation(n)]
        sets.append((f"{bits}-bit (random, {DUP_SHARE:.0%} near copies)", codes, bits))
        header.append(f"{n:,} {bits}-bit codes: random, {DUP_SHARE:.0%} near copies (0..{flips} flips)")
    clip = clip_binary_codes()
    if clip is None:
        header.append(f"no corpus at {CORPUS}: no 512-bit CLIP rows")
    else:
        sets.insert(1, ("512-bit (binary CLIP, corpus)", clip, 512))
        header.append(
            f"{len(clip):,} 512-bit codes: the corpus's CLIP embeddings, quantize_binary; pairwise "
            f"distances: {distance_summary(clip)}"
        )
    import mmcore

    for label, codes, bits in sets:
        raw = as_bytes(codes)  # the index's rows: whole words, the spare bits 0
        index = mmcore.HammingIndex(64 * codes.shape[1])
        index.add(codes)
        flat = faiss.IndexBinaryFlat(raw.shape[1] * 8)
        flat.add(raw)
        q = codes[rng.integers(0, len(codes), size=min(nq, len(codes)))]
        qr = as_bytes(q)
        r = bits // 8

        def ours_knn(t: int, index: Any = index, q: np.ndarray = q) -> float:
            t0 = time.perf_counter()
            index.knn(q, 10, threads=t)
            return time.perf_counter() - t0

        def flat_knn(t: int, flat: Any = flat, qr: np.ndarray = qr) -> float:
            faiss_threads(t)
            t0 = time.perf_counter()
            flat.search(qr, 10)
            return time.perf_counter() - t0

        def ours_radius(t: int, index: Any = index, q: np.ndarray = q, r: int = r) -> float:
            t0 = time.perf_counter()
            index.radius(q, r, threads=t)
            return time.perf_counter() - t0

        def flat_radius(t: int, flat: Any = flat, qr: np.ndarray = qr, r: int = r) -> float:
            faiss_threads(t)
            t0 = time.perf_counter()
            flat.range_search(qr, r + 1)
            return time.perf_counter() - t0

        d, i = index.knn(q, 10)
        fd, fi = flat.search(qr, 10)
        lims, rd, ri = index.radius(q, r)
        flims, frd, fri = flat.range_search(qr, r + 1)
        same_r = np.array_equal(lims, flims) and all(
            sorted(zip(rd[lims[x] : lims[x + 1]].tolist(), ri[lims[x] : lims[x + 1]].tolist(), strict=True))
            == sorted(
                zip(frd[flims[x] : flims[x + 1]].tolist(), fri[flims[x] : flims[x + 1]].tolist(), strict=True)
            )
            for x in range(len(q))
        )
        same_k = np.array_equal(d, fd) and np.array_equal(i, fi)
        checks.append(
            f"check {label}: knn {'equal' if same_k else 'DIFFER FROM'} faiss's; radius {r}: "
            f"{int(lims[-1]):,} hits, {'the same' if same_r else 'DIFFER FROM'} faiss's"
        )
        kn, rn = f"knn k=10, {label}", f"radius r={r}, {label}"
        rows += [
            Row(kn, "mmcore HammingIndex.knn", "mmcore", "knn(q, 10, threads=N)", ours_knn, len(q)),
            Row(kn, "faiss IndexBinaryFlat", "competitor", "search(q, 10), omp threads N", flat_knn, len(q)),
            Row(
                rn, "mmcore HammingIndex.radius", "mmcore", f"radius(q, {r}, threads=N)", ours_radius, len(q)
            ),
            Row(
                rn,
                "faiss IndexBinaryFlat",
                "competitor",
                f"range_search(q, {r + 1}), omp threads N",
                flat_radius,
                len(q),
            ),
        ]
    return rows, checks, header


def run(rows: list[Row], threads: list[int], repeat: int) -> None:
    live = [r for r in rows if not r.note]
    bd.run_rounds(live, threads, repeat, lambda r, n: (r.fn(n), r.items))


# --------------------------------------------------------------------------------------------------
# Tables


def fmt_s(v: float) -> str:
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def speed_table(rows: list[Row], threads: list[int]) -> tuple[list[str], list[list[str]], list[str]]:
    head = ["scenario", "tool", "call", "threads", "seconds", "items/s", "mmcore is ... x faster", "note"]
    body: list[list[str]] = []
    scenarios = list(dict.fromkeys(r.scenario for r in rows))
    for sc in scenarios:
        srows = [r for r in rows if r.scenario == sc]
        mm = next((r for r in srows if r.kind == "mmcore"), None)
        for n in threads:
            for r in srows:
                v = r.ips.get(n)
                if v is None:
                    if n == threads[0]:
                        body.append([sc, r.tool, r.how, str(n), "n/a", "", "", r.note or "?"])
                    continue
                ratio = mm.ips[n] / v if mm and r is not mm and n in mm.ips else None
                body.append(
                    [
                        sc,
                        r.tool,
                        r.how,
                        str(n),
                        fmt_s(r.items / v),
                        f"{v:,.0f}",
                        "" if ratio is None else f"{ratio:.2f}x",
                        r.scaled,
                    ]
                )
    verdicts = []
    for sc, tool, floor in TARGETS:
        mm = next((r for r in rows if r.scenario == sc and r.kind == "mmcore"), None)
        comp = next((r for r in rows if r.scenario == sc and r.tool == tool), None)
        for n in threads:
            if mm is None or comp is None or n not in mm.ips or n not in comp.ips:
                verdicts.append(f"{sc}, {n} thread(s), mmcore vs {tool}: n/a (not measured)")
                continue
            got = mm.ips[n] / comp.ips[n]
            verdicts.append(
                f"{sc}, {n} thread(s), mmcore vs {tool}: {got:.2f}x (target >= {floor}x) "
                + ("PASS" if got >= floor else "FAIL")
            )
    return head, body, verdicts


@dataclass
class JoinRun:
    label: str
    n: int
    r: int
    seconds: float
    pairs: int
    stats: dict[str, Any]


def timed_join(words: np.ndarray, r: int, threads: int, repeat: int, label: str) -> JoinRun:
    index = index_of(words)
    best = math.inf
    pairs = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        i, _, _ = index.join(r, threads=threads)
        best = min(best, time.perf_counter() - t0)
        pairs = len(i)
        del i
    return JoinRun(label, len(words), r, best, pairs, dict(index.last_stats or {}))


def join_table(runs: list[JoinRun]) -> tuple[list[str], list[list[str]]]:
    head = [
        "codes",
        "bits",
        "r",
        "seconds",
        "codes/s",
        "pairs",
        "method",
        "m",
        "sub-radius",
        "candidates",
        "candidates per code",
        "MIH tables (MB)",
    ]
    body = []
    for x in runs:
        s = x.stats
        tb = s.get("table_bytes")
        body.append(
            [
                f"{x.n:,}",
                x.label,
                str(x.r),
                fmt_s(x.seconds),
                f"{x.n / x.seconds:,.0f}",
                f"{x.pairs:,}",
                str(s.get("method", "?")),
                str(s.get("m", "?")),
                str(s.get("sub_radius", "?")),
                f"{s.get('candidates', 0):,}",
                f"{s.get('candidates', 0) / x.n:,.1f}",
                "?" if tb is None else f"{tb / 1e6:.1f}",
            ]
        )
    return head, body


def version_lines() -> list[str]:
    out = [f"numpy {np.__version__}"]
    try:
        import faiss

        out.append(f"faiss {faiss.__version__} (omp max threads {faiss.omp_get_max_threads()})")
    except Exception as e:
        out.append(f"faiss: not available ({type(e).__name__}: {e})")
    return out


def write_chart(path: Path, rows: list[Row], threads: list[int], title: str) -> str | None:
    scenarios = list(dict.fromkeys(r.scenario for r in rows))
    panels = [(sc, [r for r in rows if r.scenario == sc]) for sc in scenarios]
    unit = "queries/s (kNN), codes/s (join)"
    return bd.bar_chart(path, panels, threads, title, log_x=True, panel_size=(5, 3.5), unit=unit)


# --------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--repeat", type=int, default=3, help="timed rounds; the best is kept (default 3)")
    ap.add_argument("--n", type=int, default=1_000_000, help="codes for knn / join / pdq (default 1M)")
    ap.add_argument("--queries", type=int, default=1000, help="kNN queries (default 1000)")
    ap.add_argument("--faiss-queries", type=int, default=1000, help="queries faiss brute force is timed on")
    ap.add_argument("--mh-queries", type=int, default=10_000, help="queries faiss MultiHash is timed on")
    ap.add_argument("--big", action="store_true", help="add 10M codes to the scaling table")
    ap.add_argument("--quick", action="store_true", help="smoke run: 100k codes, 1 round")
    ap.add_argument(
        "--sections",
        default="knn,join,scaling,pdq,memory,widths",
        help="subset of knn,join,scaling,pdq,memory,widths",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="output folder")
    args = ap.parse_args(argv)
    if args.quick:
        args.n = min(args.n, 100_000)
        args.repeat = 1
        args.mh_queries = min(args.mh_queries, 5_000)
    threads = sorted({int(x) for x in args.threads.split(",") if x.strip()})
    sections = {x.strip() for x in args.sections.split(",") if x.strip()}
    t_start = time.perf_counter()

    header = [*bd.machine_lines(), bd.mmcore_line(), *version_lines()]
    real = corpus_hashes()
    if real is None:
        header.append(f"no corpus at {CORPUS}: uniform random codes stand in for the corpus mosaics")
    else:
        header.append(
            f"codes: mosaics of {len(real['phash'])} corpus pHashes / {len(real['pdq'])} PDQs "
            f"+ 0..{PHOTO_FLIPS} flips, {DUP_SHARE:.0%} near copies (0..{DUP_FLIPS[64]} / "
            f"0..{DUP_FLIPS[256]} flips)"
        )
        header.append(f"corpus pHash pairwise distances: {distance_summary(real['phash'])}")
    n = args.n
    real_ph = None if real is None else real["phash"]
    ph = near_dup_codes(real_ph, n, 64, seed=1)
    header.append(f"generated {n:,} pHash-like codes, pairwise distances: {distance_summary(ph)}")
    header.append(
        f"timing: wall clock, best of {args.repeat} round(s); threads {threads}; "
        "mmcore threads=N, faiss omp_set_num_threads(N)"
    )
    for line in header:
        print(line)
    print(flush=True)

    md = ["# bench_hamming", "", *[f"- {x}" for x in header], ""]
    rows: list[Row] = []
    checks: list[str] = []
    if "knn" in sections:
        rng = np.random.default_rng(2)
        q = flip(rng, ph[rng.integers(0, n, size=args.queries)], rng.integers(0, 9, size=args.queries))
        kr, kc = knn_rows(ph, q, 10)
        rows += kr
        checks += kc
    if "join" in sections:
        sweep_lines: list[str] = []
        for r in (4, 8):
            mh, lines = multihash_sweep(ph, r, min(1000, n))
            sweep_lines += [f"r={r}: {x}" for x in lines]
            jr, jc = join_rows(ph, r, min(args.faiss_queries, n), min(args.mh_queries, n), mh)
            rows += jr
            checks += jc
        print("\n".join(sweep_lines))
        md += ["## IndexBinaryMultiHash settings tried (the fastest is used)", ""]
        md += [f"- {x}" for x in sweep_lines] + [""]
    if "widths" in sections:
        wr, wc, wh = width_rows(min(n, 200_000), args.queries)
        rows += wr
        checks += wc
        for line in wh:
            print(line)
        md += ["## Other code lengths", "", *[f"- {x}" for x in wh], ""]
    for c in checks:
        print(c)
    if rows:
        run(rows, threads, args.repeat)
        head, body, verdicts = speed_table(rows, threads)
        print()
        print_plain(head, body, 4)
        print("\n" + "\n".join(verdicts))
        md += ["## Speed", "", *[f"- {c}" for c in checks], "", *md_table(head, body, 4), ""]
        md += ["Targets (issue 4):", "", *[f"- {v}" for v in verdicts], ""]

    runs: list[JoinRun] = []
    top = max(threads)
    if "scaling" in sections:
        sizes = [x for x in (100_000, 1_000_000) if x <= n] + ([10_000_000] if args.big else [])
        for size in sizes:
            # Each size is generated whole (a prefix of a bigger set would hold fewer near copies).
            words = ph if size == n else near_dup_codes(real_ph, size, 64, seed=1)
            for r in (4, 8):
                rep = 1 if size >= 10_000_000 else args.repeat
                runs.append(timed_join(words, r, top, rep, "64"))
                x = runs[-1]
                print(
                    f"scaling: {size:,} codes r={r}: {x.seconds:.2f} s, {x.pairs:,} pairs, {x.stats}",
                    flush=True,
                )
            del words
    if "pdq" in sections:
        real_pdq = None if real is None else real["pdq"]
        pdq = near_dup_codes(real_pdq, n, 256, seed=3)
        line = f"generated {n:,} PDQ-like codes, pairwise distances: {distance_summary(pdq)}"
        print(line)
        for size in sorted({min(100_000, n), n}):
            words = pdq if size == n else near_dup_codes(real_pdq, size, 256, seed=3)
            runs.append(timed_join(words, 31, top, 1, "256"))
            x = runs[-1]
            print(f"pdq: {size:,} codes r=31: {x.seconds:.2f} s, {x.pairs:,} pairs, {x.stats}", flush=True)
        pdq_lines = pdq_notes(pdq, [x for x in runs if x.label == "256"], top, min(args.faiss_queries, n))
        print("\n".join(pdq_lines))
        md += ["## PDQ (256-bit) at r = 31", "", f"- {line}", *[f"- {x}" for x in pdq_lines], ""]
    if runs:
        head, body = join_table(runs)
        title = f"mmcore join, {top} thread(s), method auto"
        print("\n" + title)
        print_plain(head, body, 3)
        md += [f"## Scaling ({title})", "", *md_table(head, body, 3), ""]
    if "memory" in sections:
        mem = memory_lines(ph, runs)
        print("\n" + "\n".join(mem))
        md += ["## Memory", "", *[f"- {x}" for x in mem], ""]

    elapsed = time.perf_counter() - t_start
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    tail = f"bench wall time {elapsed:.0f} s; load average at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    print("\n" + tail)
    md += [f"- {tail}"]
    bad = [c for c in checks if "DIFFER" in c]
    if bad:
        md += ["", "**Warnings** (mmcore's answers differ from faiss's: timings not comparable):", ""]
        md += [f"- {c}" for c in bad]
        print("\nWARNINGS:\n" + "\n".join(bad))
    args.out.mkdir(parents=True, exist_ok=True)
    md_path, png = args.out / "bench_hamming.md", args.out / "bench_hamming.png"
    md_path.write_text("\n".join(md) + "\n")
    note = write_chart(png, rows, threads, header[0]) if rows else "no speed rows"
    print(f"\nwrote {md_path}" + (f" ({note})" if note else f" and {png}"))
    return 0


def pdq_notes(pdq: np.ndarray, runs: list[JoinRun], threads: int, faiss_q: int) -> list[str]:
    """faiss brute force on a subset of the PDQ codes, and where the CPU stops being enough."""
    import faiss

    out = []
    n = len(pdq)
    flat = faiss.IndexBinaryFlat(256)
    flat.add(as_bytes(pdq))
    faiss_threads(threads)
    t0 = time.perf_counter()
    flat.range_search(as_bytes(pdq[:faiss_q]), 32)
    t_f = (time.perf_counter() - t0) * n / faiss_q
    big = max(runs, key=lambda x: x.n)
    st = big.stats
    cand = int(st.get("candidates", 0))
    out.append(
        f"{n:,} codes: mmcore join {big.seconds:.1f} s ({st.get('method')}, m={st.get('m')}, "
        f"{cand:,} candidates = {cand / n:,.0f} per code); faiss brute range_search {t_f:.0f} s "
        f"(timed on {faiss_q:,} queries, scaled): mmcore {t_f / big.seconds:.1f}x faster"
    )
    if len(runs) >= 2:
        a, b = sorted(runs, key=lambda x: x.n)[:2]
        e = math.log(b.seconds / a.seconds) / math.log(b.n / a.n)
        for target in (10**7, 10**8, 10**9):
            t = b.seconds * (target / b.n) ** e
            out.append(
                f"extrapolated (time ~ n^{e:.2f} from {a.n:,} -> {b.n:,}): {target:,} codes "
                f"~ {t / 3600:,.1f} h on {threads} thread(s)"
            )
        out.append(
            "where a join of 256-bit codes at r=31 needs more than an hour on this CPU, the GPU "
            "(brute force at memory bandwidth) has to take over"
        )
    return out


def memory_lines(ph: np.ndarray, runs: list[JoinRun]) -> list[str]:
    import mmcore

    n = len(ph)
    a = index_of(ph)
    b = mmcore.HammingIndex(bits=64)
    b.add(ph[:, 0], ids=np.arange(n, dtype=np.int64) * 3)
    c = mmcore.HammingIndex(bits=256)
    c.add(np.zeros((1000, 32), np.uint8))
    out = [
        f"bytes per code held: 64-bit {a.memory_bytes() / n:.1f}, 64-bit with custom ids "
        f"{b.memory_bytes() / n:.1f}, 256-bit {c.memory_bytes() / len(c):.1f} (the codes themselves, "
        "nothing else is kept between calls)"
    ]
    for x in runs:
        tb = x.stats.get("table_bytes")
        raw = x.n * int(x.label) // 8
        if tb is not None and x.stats.get("method") == "mih":
            out.append(
                f"MIH tables while joining {x.n:,} {x.label}-bit codes at r={x.r}: peak {tb / 1e6:.1f} MB "
                f"= {tb / raw:.2f}x the raw codes ({raw / 1e6:.1f} MB)"
            )
    return out


if __name__ == "__main__":
    sys.exit(main())
