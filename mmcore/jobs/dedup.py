"""``mmcore dedup``: near-duplicate clusters of a run's output, from its PDQ or pHash column.

The eligible images are the rows of the completed shards (:func:`mmcore.jobs.schema.read_output`)
whose status is OK or OK_WARNING and whose hash is not null. Their codes go into a
:class:`mmcore.HammingIndex`; its exact self-join at the threshold gives the near-duplicate
pairs and :func:`mmcore.cluster` their connected components (a chain A~B~C is one cluster even
when A and C are farther apart than the threshold). The result is written to
``OUT/dedup/clusters-<hash>-<threshold>.parquet``. See ``docs/jobs_dedup_index.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from .. import __version__
from ..hashing import hamming
from ..search import HammingIndex, cluster
from ._common import int_at_least, user_errors, write_parquet_atomic
from .schema import OK_STATUSES, i64_to_u64, output_fingerprint, read_manifest, read_output

__all__ = ["CLUSTERS_SCHEMA", "DEFAULT_THRESHOLDS", "clusters_path", "dedup", "register", "summary"]

#: Default match thresholds (distance <= threshold is a near-duplicate), from
#: docs/near_dup_quality.md (tomsaleeba corpus photos, 7,520 generated copies, 95,243 pairs of
#: different photos): PDQ <= 31 is the PDQ reference's recommended match distance; it found 98.3 %
#: of the resized / re-encoded / brightened / watermarked copies with no false match, the closest
#: different photos sitting at 86 bits. pHash <= 10 (imagededup's default) found 99.5 % of those
#: copies with no false match, but the closest different photos were at 12 bits: a thin margin.
DEFAULT_THRESHOLDS = {"pdq": 31, "phash": 10}
_BITS = {"pdq": 256, "phash": 64}
_META_KEY = b"mmcore_dedup"

#: Columns of the clusters file: one row per eligible image.
CLUSTERS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("cluster_id", pa.int64(), nullable=False),
        pa.field("is_representative", pa.bool_(), nullable=False),
        pa.field("distance_to_representative", pa.int32(), nullable=False),
    ]
)


def clusters_path(
    out: str | os.PathLike[str], hash: str, threshold: int, min_quality: int | None = None
) -> Path:
    """Where :func:`dedup` writes: ``OUT/dedup/clusters-<hash>-<threshold>.parquet``, or
    ``clusters-pdq-<threshold>-q<min_quality>.parquet`` with a ``min_quality``."""
    suffix = "" if min_quality is None else f"-q{min_quality}"
    return Path(out) / "dedup" / f"clusters-{hash}-{threshold}{suffix}.parquet"


def _check_min_quality(hash: str, min_quality: int | None) -> int | None:
    if min_quality is None:
        return None
    if hash != "pdq":
        raise ValueError(f"min_quality applies to PDQ (its pdq_quality column); got hash={hash!r}")
    if (
        isinstance(min_quality, bool)
        or not isinstance(min_quality, (int, np.integer))
        or not 0 <= min_quality <= 100
    ):
        raise ValueError(f"min_quality must be an int in 0..100 (PDQ quality), got {min_quality!r}")
    return int(min_quality)


def _check_args(hash: str, threshold: int | None, bits: int | None = None) -> int:
    """The threshold to use for ``hash`` (its default where None). ``bits``: the hash's width in
    the run (pHash at another hash_size); None: 256 for PDQ, 64 for pHash."""
    if not isinstance(hash, str) or hash not in _BITS:
        raise ValueError(f"hash must be 'pdq' or 'phash', got {hash!r}")
    bits = bits or _BITS[hash]
    if threshold is None:
        # pHash at another hash_size: the same share of its bits (10 of 64), rounded.
        default = DEFAULT_THRESHOLDS[hash]
        return default if bits == _BITS[hash] else round(default * bits / 64)
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, np.integer))
        or not 0 <= threshold <= bits
    ):
        raise ValueError(f"threshold must be an int in 0..{bits} for {hash} ({bits} bits), got {threshold!r}")
    return int(threshold)


def _eligible(out: str | os.PathLike[str], hash: str) -> tuple[pa.Table, int, Any, int]:
    """(rows with an OK / OK_WARNING status and a non-null hash, in output order; count of the
    other rows; the run's config hash: not the manifest, which lists every file of a folder source
    and would be held through the join; the hash's bits in this run). Raises for a folder that is
    not a run's output, a run without this hash, an id on two eligible rows."""
    if not Path(out).is_dir():
        raise FileNotFoundError(f"{os.fspath(out)}: no such folder (give the OUT folder of `mmcore run`)")
    manifest = read_manifest(out)
    config = manifest.get("config") or {}
    config_hash = manifest.get("config_hash")
    del manifest
    hash_size = int(config.get("hash_size", 8)) if isinstance(config, dict) else 8
    bits = _BITS[hash] if hash == "pdq" else hash_size * hash_size
    hashes = config.get("hashes")
    if hashes is not None and hash not in hashes:
        raise ValueError(
            f"{os.fspath(out)} was run without {hash} (hashes: {list(hashes)}): "
            f"use --hash {'phash' if hash == 'pdq' else 'pdq'} or rerun with {hash} among the hashes"
        )
    columns = ["id", "status", hash] + (["pdq_quality"] if hash == "pdq" else [])
    table = read_output(out, columns=columns)
    ok = pc.and_(pc.is_in(table["status"], value_set=pa.array(OK_STATUSES)), pc.is_valid(table[hash]))
    kept = table.filter(ok)
    if pc.count_distinct(kept["id"]).as_py() != kept.num_rows:
        counts = pc.value_counts(kept["id"])
        twice = counts.filter(pc.greater(counts.field("counts"), 1))[0]["values"].as_py()
        raise ValueError(
            f"{os.fspath(out)}: id {twice!r} is on more than one eligible row; "
            "ids must be unique within a run's output"
        )
    return kept, table.num_rows - kept.num_rows, config_hash, bits


def _codes(column: pa.ChunkedArray) -> npt.NDArray[Any]:
    """The hash column (no nulls) as HammingIndex codes: uint64 (N,) from an int64 column (pHash
    up to hash_size 8), uint8 (N, width) rows from a fixed-size binary one (PDQ; pHash over 8)."""
    arr = column.combine_chunks()
    if pa.types.is_integer(arr.type):
        out: npt.NDArray[Any] = i64_to_u64(arr.to_numpy(zero_copy_only=False))
        return out
    width, n = arr.type.byte_width, len(arr)
    if n == 0:
        return np.empty((0, width), dtype=np.uint8)
    data = np.frombuffer(arr.buffers()[1], dtype=np.uint8, count=width * n, offset=width * arr.offset)
    return data.reshape(n, width)


#: Rows whose distance to their representative is computed per step (bounds the gathered codes).
_DIST_ROWS = 1 << 18


def _distances(
    codes: npt.NDArray[Any], rep_pos: npt.NDArray[np.int64], labels: npt.NDArray[np.int64]
) -> npt.NDArray[np.int32]:
    """Each row's Hamming distance to its cluster's representative (``rep_pos[label]``), a step
    of rows at a time: the representatives' codes gathered for every row at once, and the XOR,
    took ~110 bytes a row at the peak (7 GB for 10^8 rows)."""
    out = np.empty(len(codes), dtype=np.int32)
    for s in range(0, len(codes), _DIST_ROWS):
        e = min(len(codes), s + _DIST_ROWS)
        out[s:e] = hamming(codes[s:e], codes[rep_pos[labels[s:e]]])
    return out


def _representatives(
    labels: npt.NDArray[np.int64],
    first: npt.NDArray[np.bool_],
    ids: pa.ChunkedArray,
    quality: npt.NDArray[Any] | None,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """(one representative per cluster: the highest quality, then the smallest id; the rank of
    each member's id within the members of clusters of 2 or more, 0 elsewhere). Only those
    members' ids are compared: sorting every id (a million strings) would cost more than the join.
    ``first`` (the first member of each cluster) is already right for singletons."""
    n = len(labels)
    id_rank = np.zeros(n, dtype=np.int64)
    multi = np.flatnonzero(np.bincount(labels, minlength=1)[labels] > 1) if n else np.empty(0, np.int64)
    if multi.size == 0:
        return first, id_rank
    # Ranked in Arrow (UTF-8 byte order is str order): with np.unique over Python strings this
    # function took 33.7 s for 8M members of multi-image clusters, now 8.7 s.
    names = ids.take(pa.array(multi))
    id_rank[multi] = pc.rank(names, sort_keys="ascending", tiebreaker="dense").to_numpy() - 1
    score = np.zeros(multi.size, dtype=np.int64) if quality is None else quality[multi].astype(np.int64)
    order = multi[np.lexsort((id_rank[multi], -score, labels[multi]))]  # by cluster, best first
    head = np.ones(order.size, dtype=bool)
    head[1:] = labels[order][1:] != labels[order][:-1]
    rep = first.copy()
    rep[multi] = False
    rep[order[head]] = True
    return rep, id_rank


def dedup(
    out: str | os.PathLike[str],
    *,
    hash: str = "pdq",
    threshold: int | None = None,
    threads: int | None = None,
    min_quality: int | None = None,
) -> pa.Table:
    """Cluster the near-duplicates among the images of the run output ``out``, write the clusters
    to ``OUT/dedup/clusters-<hash>-<threshold>.parquet`` (atomically: temporary file, fsync,
    rename) and return them.

    ``hash``: ``"pdq"`` (256 bits) or ``"phash"`` (64 bits; ``hash_size ** 2`` for a run at
    another ``hash_size``, whose default threshold is then the same share of the bits, 10 of 64,
    rounded: 40 at hash_size 16). ``threshold``: images whose codes
    are within this Hamming distance (inclusive) are near-duplicates; by default
    :data:`DEFAULT_THRESHOLDS`: 31 for PDQ (the PDQ reference's recommended match distance: in
    docs/near_dup_quality.md 98.3 % of mildly edited copies found, 0 false matches in 95,243
    pairs of different photos, the closest at 86 bits) and 10 for pHash (99.5 % of those copies,
    0 false matches, but the closest different photos at 12 bits: verify pHash clusters at scale).
    ``threads``: for the join (None: every core). ``min_quality`` (PDQ only, 0..100): rows whose
    ``pdq_quality`` is below it (or null) are not matched: each is a cluster of its own. PDQ
    gives flat, featureless images (blank pages, solid colours, faint gradients) a low quality,
    and their codes, which carry little of the image, match each other; the PDQ authors advise
    not trusting hashes below quality 50. None (the default) matches every row. The file name
    then ends in ``-q<min_quality>``.

    Every eligible image (status OK / OK_WARNING, hash not null) is on exactly one row; a singleton
    is a cluster of size 1. Columns (:data:`CLUSTERS_SCHEMA`):

    - ``id``: the image's id.
    - ``cluster_id``: int64, dense 0..C-1 in order of first appearance in the output (shards in
      order, rows in order): cluster 0 holds the first eligible row, the next row not in it opens
      cluster 1, ... (:func:`mmcore.cluster`'s labels).
    - ``is_representative``: one per cluster: for PDQ the member with the highest
      ``pdq_quality`` (null counts as lowest), ties to the smallest id (string order); for pHash
      the smallest id.
    - ``distance_to_representative``: int32, the Hamming distance between the image's code and
      its representative's (0 for the representative; can exceed the threshold along a chain).

    Rows are sorted by cluster, the representative first, then by distance and id. The table's
    schema metadata (also in the file) holds ``b"mmcore_dedup"``: JSON with ``hash``,
    ``threshold``, ``summary`` (see :func:`summary`), ``run_config_hash`` and ``seconds``.

    Raises FileNotFoundError for a missing folder or one that is not a run's output, ValueError
    for a bad hash / threshold, a run computed without this hash, or an id on two eligible rows;
    OSError when ``OUT/dedup`` cannot be written.

    >>> import mmcore.jobs.dedup as d
    >>> d.DEFAULT_THRESHOLDS["pdq"], d.clusters_path("out", "phash", 10).as_posix()
    (31, 'out/dedup/clusters-phash-10.parquet')
    """
    # The types now; pHash's range once its bits in this run are known.
    _check_args(hash, threshold, None if hash == "pdq" else 1 << 16)
    min_quality = _check_min_quality(hash, min_quality)
    t0 = time.perf_counter()
    rows, skipped, config_hash, bits = _eligible(out, hash)
    threshold = _check_args(hash, threshold, bits)
    codes = _codes(rows[hash])
    t1 = time.perf_counter()
    quality = pc.fill_null(rows["pdq_quality"], -1).to_numpy(zero_copy_only=False) if hash == "pdq" else None
    # Rows below min_quality (if any) are left out of the index: None = every row matched.
    matched = None if min_quality is None or quality is None else np.flatnonzero(quality >= min_quality)
    index = HammingIndex(bits, threads=threads)
    index.add(codes if matched is None else codes[matched])
    res = cluster(index, r=threshold, threads=threads)  # labels in order of first appearance
    labels, first = res.labels, res.is_representative
    if matched is not None:
        # Each row's cluster by its first row (a row left out of the matching is its own);
        # numbered by those, the clusters are in order of first appearance among all rows.
        roots = np.arange(len(codes), dtype=np.int64)
        roots[matched] = matched[res.representatives()[res.labels]]
        labels = np.unique(roots, return_inverse=True)[1].reshape(-1).astype(np.int64)
        first = roots == np.arange(len(codes))
    n = len(labels)
    n_clusters = int(labels.max()) + 1 if n else 0
    rep, id_rank = _representatives(labels, first, rows["id"], quality)
    rep_pos = np.empty(n_clusters, dtype=np.int64)
    rep_pos[labels[rep]] = np.flatnonzero(rep)
    dist = _distances(codes, rep_pos, labels)
    order = np.lexsort((id_rank, dist, ~rep, labels))
    t2 = time.perf_counter()
    sizes = np.bincount(labels) if n else np.empty(0, np.int64)
    stats = {
        "images": n,
        "clusters": n_clusters,
        "duplicates": n - n_clusters,
        "largest_cluster": int(sizes.max()) if n else 0,
        "clusters_with_duplicates": int((sizes > 1).sum()),
        "skipped": skipped,
        "below_min_quality": 0 if matched is None else n - len(matched),
    }
    meta = {
        "hash": hash,
        "threshold": threshold,
        "min_quality": min_quality,
        "summary": stats,
        "run_config_hash": config_hash,
        "output_fingerprint": output_fingerprint(out),
        "seconds": {"read": round(t1 - t0, 3), "cluster": round(t2 - t1, 3)},
    }
    table = pa.table(
        [rows["id"].take(order), labels[order], rep[order], dist[order]], schema=CLUSTERS_SCHEMA
    ).replace_schema_metadata({b"mmcore_version": __version__.encode(), _META_KEY: json.dumps(meta).encode()})
    path = clusters_path(out, hash, threshold, min_quality)
    path.parent.mkdir(exist_ok=True)
    write_parquet_atomic(table, path)
    return table


def summary(clusters: pa.Table) -> dict[str, Any]:
    """The summary :func:`dedup` stored with its table (or its file, read with pyarrow):
    ``images`` (eligible), ``clusters`` (singletons included), ``duplicates`` (images that are
    not their cluster's representative), ``largest_cluster`` (members), ``clusters_with_duplicates``
    (clusters of 2 or more), ``skipped`` (rows of completed shards that were not eligible: failed,
    or without this hash), ``below_min_quality`` (eligible rows left out of the matching by
    ``min_quality``; 0 without one), plus ``hash``, ``threshold`` and ``min_quality``. Raises
    ValueError for a table that :func:`dedup` did not write."""
    raw = (clusters.schema.metadata or {}).get(_META_KEY)
    if raw is None:
        raise ValueError("this table has no mmcore_dedup metadata: it was not written by mmcore dedup")
    meta = json.loads(raw)
    out: dict[str, Any] = dict(
        meta["summary"], hash=meta["hash"], threshold=meta["threshold"], min_quality=meta.get("min_quality")
    )
    out.setdefault("below_min_quality", 0)  # files written before min_quality
    return out


def _handler(args: argparse.Namespace) -> int:
    table = dedup(
        args.out, hash=args.hash, threshold=args.threshold, threads=args.threads, min_quality=args.min_quality
    )
    s = summary(table)
    low = (
        f"; {s['below_min_quality']:,} below quality {s['min_quality']}, not matched"
        if s["min_quality"] is not None
        else ""
    )
    print(
        f"{s['hash']} threshold {s['threshold']}: {s['images']:,} images in {s['clusters']:,} clusters, "
        f"{s['duplicates']:,} duplicates ({s['clusters_with_duplicates']:,} clusters of 2 or more, "
        f"the largest {s['largest_cluster']:,}); {s['skipped']:,} rows skipped (failed, or no {s['hash']})"
        + low
    )
    print(clusters_path(args.out, s["hash"], s["threshold"], s["min_quality"]))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``mmcore dedup OUT [--hash pdq|phash] [--threshold N] [--threads N]``."""
    p = sub.add_parser(
        "dedup",
        help="near-duplicate clusters of a run's output (OUT/dedup/clusters-<hash>-<threshold>.parquet)",
        description="Near-duplicate clusters of the images of a `mmcore run` output: the rows with an "
        "OK / OK_WARNING status and a hash are joined by Hamming distance (<= the threshold), and "
        "chains of matches are clusters, one representative each (for PDQ the best quality). "
        "Writes OUT/dedup/clusters-<hash>-<threshold>.parquet (id, cluster_id, is_representative, "
        "distance_to_representative) and prints a summary. See docs/jobs_dedup_index.md.",
    )
    p.add_argument("out", metavar="OUT", help="the output folder of `mmcore run`")
    p.add_argument("--hash", choices=tuple(_BITS), default="pdq", help="hash column to compare (default pdq)")
    p.add_argument(
        "--threshold",
        type=int,
        default=None,
        metavar="N",
        help="largest Hamming distance of a near-duplicate (default: pdq 31, phash 10; phash at "
        "another hash_size: 10 of every 64 bits)",
    )
    p.add_argument(
        "--min-quality",
        type=int,
        default=None,
        metavar="Q",
        help="PDQ only: rows with pdq_quality below Q (0..100) are not matched, each its own cluster "
        "(flat images' codes match each other; the PDQ authors advise 50). Default: match every row",
    )
    p.add_argument(
        "--threads", type=int_at_least(1), default=None, metavar="N", help="threads (default: all cores)"
    )
    p.set_defaults(func=user_errors("dedup", _handler))
