"""``mmcore report OUT``: one self-contained HTML page, and a markdown twin, about a run's output.

``OUT/report/index.html`` holds everything inline (CSS, SVG charts, thumbnails as ``data:`` URIs;
no script, no network: its Content-Security-Policy forbids both). ``OUT/report/report.md`` states
the same facts as tables and refers to the charts and thumbnails as files written beside it
(``charts/*.svg``, ``thumbs/*``). What the page shows: docs/report.md.

Every string that comes from the data (ids, error messages, source names, config values) is
untrusted and escaped. Each section reads only the columns it needs, a batch at a time; the
thumbnail column is read only in the row groups that hold a gallery id, so a report on millions of
rows stays in memory of the order of one batch plus the dedup table's four small columns.
"""

from __future__ import annotations

import argparse
import base64
import html
import itertools
import json
import math
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import __version__
from . import _svg
from ._common import int_at_least
from .schema import ERROR_STAGES, completed_shards, done_path, output_fingerprint, read_manifest, shard_path

REPORT_DIR = "report"
DEDUP_DIR = "dedup"
#: Members shown per near-duplicate group in the gallery.
GALLERY_MEMBERS = 8
#: Rows of the most-frequent-errors table.
TOP_ERRORS = 20
#: Up to this many shards the throughput chart has one bar per shard, beyond it a histogram.
SHARD_BARS = 40
STAGES = ("read", "decode_hash", "thumbnail", "write")
STATUS_ORDER = (
    "OK",
    "OK_WARNING",
    "CORRUPT",
    "UNSUPPORTED",
    "TOO_LARGE",
    "NO_MEMORY",
    "DEVICE",
    "SOURCE_ERROR",
    "READ_ERROR",
)
_BATCH_ROWS = 65536
_ROW_COLUMNS = ["id", "status", "error", "error_stage", "width", "height", "byte_size", "format"]
#: The format table's name for records with no format: not read, or no known signature.
NO_FORMAT = "(none)"
_CLUSTER_COLUMNS = ["id", "cluster_id", "is_representative", "distance_to_representative"]
_THUMB_NAME = re.compile(r"c\d+-g\d+-\d+\.(jpg|webp)")
_CHART_NAME = re.compile(r"[a-z0-9-]+\.svg")


def _edges_125(lo_exp: int, hi_exp: int) -> list[float]:
    """0, then 1-2-5 steps from 10**lo_exp to 10**hi_exp, then inf: log-scaled bins whose
    edges read well."""
    steps = [m * 10.0**e for e in range(lo_exp, hi_exp) for m in (1, 2, 5)]
    return [0.0, *steps, 10.0**hi_exp, math.inf]


#: Megapixel bins: under 100 pixels, then 1-2-5 steps up to 1000 MP.
MP_EDGES = _edges_125(-4, 3)
#: Byte-size bins: under 10 bytes, then 1-2-5 steps up to 10 GB.
BYTE_EDGES = _edges_125(1, 10)


@dataclass
class ShardStats:
    """One completed shard's completion record."""

    name: str
    rows: int
    wall_seconds: float
    stage_seconds: dict[str, float]
    config_hash: str
    mmcore_version: str

    @property
    def rate(self) -> float | None:
        """Images per second (rows / wall_seconds), None when no time was recorded."""
        return self.rows / self.wall_seconds if self.wall_seconds > 0 else None


@dataclass
class ErrorRow:
    message: str
    count: int
    status: str
    stage: str
    example_id: str


@dataclass
class Member:
    id: str
    representative: bool
    distance: int | None
    thumbnail: bytes | None = None

    @property
    def mime(self) -> str | None:
        """The thumbnail's media type from its magic bytes; None when absent or not JPEG/WebP."""
        t = self.thumbnail
        if t is None:
            return None
        if t[:3] == b"\xff\xd8\xff":
            return "image/jpeg"
        if t[:4] == b"RIFF" and t[8:12] == b"WEBP":
            return "image/webp"
        return None


@dataclass
class Group:
    cluster: str
    size: int
    members: list[Member]


@dataclass
class Clustering:
    """One ``OUT/dedup/clusters-*.parquet`` file."""

    name: str
    ids: int
    clusters: int
    groups: int  # clusters of two or more
    grouped_ids: int
    largest: int
    size_bins: list[tuple[str, int]]
    gallery: list[Group]
    #: True when the run's output changed after this clustering was made (rows added or rewritten);
    #: None for clusterings written before mmcore dedup recorded the output's fingerprint.
    stale: bool | None = None


@dataclass
class Facts:
    """Everything the report says; the HTML and markdown renderers only format it."""

    out: str
    manifest: dict[str, Any]
    shards_total: int
    expected_records: int | None
    shards: list[ShardStats]
    records: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    format_counts: dict[str, int] = field(default_factory=dict)
    stage_errors: dict[str, int] = field(default_factory=dict)
    errors: list[ErrorRow] = field(default_factory=list)
    distinct_errors: int = 0
    megapixels: list[tuple[str, int]] = field(default_factory=list)
    byte_sizes: list[tuple[str, int]] = field(default_factory=list)
    clusterings: list[Clustering] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    generated: str = ""

    @property
    def stage_seconds(self) -> dict[str, float]:
        """Seconds per stage summed over the shards (the contract's stages first)."""
        total: dict[str, float] = {}
        for s in self.shards:
            for k, v in s.stage_seconds.items():
                total[k] = total.get(k, 0.0) + v
        return {k: total[k] for k in _ordered(total, STAGES)}

    @property
    def wall_seconds(self) -> float:
        return sum(s.wall_seconds for s in self.shards)


def _ordered(keys: Iterable[str], first: Sequence[str]) -> list[str]:
    """``keys`` with those in ``first`` first (in that order), the rest sorted."""
    ks = set(keys)
    return [k for k in first if k in ks] + sorted(ks - set(first))


# ---------------------------------------------------------------------------------- gathering


def _load_json(path: Path) -> dict[str, Any]:
    try:
        d = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); rerun the job or remove the file") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path} holds a JSON {type(d).__name__}, expected an object")
    return d


def _manifest(out: Path) -> dict[str, Any]:
    if not out.is_dir():
        raise FileNotFoundError(f"{out} is not a folder (give the OUT folder of `mmcore run`)")
    return read_manifest(out)  # FileNotFoundError / ValueError naming the manifest


def _shard_stats(out: Path, name: str) -> ShardStats:
    d = _load_json(done_path(out, name))
    try:
        return ShardStats(
            name=str(d.get("shard", name)),
            rows=int(d["rows"]),
            wall_seconds=float(d["wall_seconds"]),
            stage_seconds={str(k): float(v) for k, v in dict(d.get("stage_seconds") or {}).items()},
            config_hash=str(d.get("config_hash", "")),
            mmcore_version=str(d.get("mmcore_version", "")),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{done_path(out, name)}: not a completion record ({e!r})") from None


def _bin_counts(values: Any, edges: Sequence[float]) -> Any:
    """Counts of ``values`` (numpy, all > 0) in the half-open bins ``[edges[i], edges[i+1])``."""
    idx = np.searchsorted(np.asarray(edges), values, side="right") - 1
    return np.bincount(idx, minlength=len(edges) - 1)[: len(edges) - 1]


def _size_label(lo: float, hi: float, unit: str) -> str:
    def g(x: float) -> str:
        return _bytes(x) if unit == "B" else f"{x:g} {unit}".strip()

    if lo == 0:
        return f"< {g(hi)}"
    if math.isinf(hi):
        return f"\u2265 {g(lo)}"
    left = _bytes(lo) if unit == "B" else f"{lo:g}"
    return f"{left}-{g(hi)}"


def _bytes(x: float) -> str:
    for unit, k in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if x >= k:
            return f"{x / k:g} {unit}"
    return f"{x:g} B"


def _trimmed(counts: Any, edges: Sequence[float], unit: str) -> list[tuple[str, int]]:
    """(label, count) for the bins from the first non-empty one to the last."""
    nz = np.flatnonzero(counts)
    if nz.size == 0:
        return []
    return [(_size_label(edges[i], edges[i + 1], unit), int(counts[i])) for i in range(nz[0], nz[-1] + 1)]


def _parquet(path: Path, columns: Sequence[str], writer: str) -> Any:
    """``path`` opened as a ParquetFile that has ``columns``; ValueError naming the file else."""
    try:
        pf = pq.ParquetFile(path)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable Parquet file ({e}); rerun `{writer}`") from None
    missing = [c for c in columns if c not in pf.schema_arrow.names]
    if missing:
        raise ValueError(f"{path} has no column {', '.join(missing)}: not written by `{writer}`")
    return pf


def _positive(col: Any) -> Any:
    return pc.fill_null(col, 0).to_numpy(zero_copy_only=False).astype(np.float64)


def _scan_rows(out: Path, shards: Sequence[str], facts: Facts) -> None:
    """Statuses, error stages and messages, and size histograms over the completed shards, one
    record batch at a time."""
    status: Counter[str] = Counter()
    formats: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    errors: dict[str, ErrorRow] = {}
    mp = np.zeros(len(MP_EDGES) - 1, np.int64)
    nbytes = np.zeros(len(BYTE_EDGES) - 1, np.int64)
    for s in shards:
        pf = _parquet(shard_path(out, s), _ROW_COLUMNS, "mmcore run")
        for batch in pf.iter_batches(batch_size=_BATCH_ROWS, columns=_ROW_COLUMNS):
            t = pa.Table.from_batches([batch])
            facts.records += t.num_rows
            _count_into(status, t["status"])
            _count_into(formats, t["format"])
            if t["format"].null_count:
                formats[NO_FORMAT] += t["format"].null_count
            _count_into(stages, t["error_stage"])
            failed = t.filter(pc.is_valid(t["error"]))
            if failed.num_rows:
                failed = failed.set_column(
                    failed.schema.get_field_index("error"), "error", _message_kind(failed["error"])
                )
                agg = failed.group_by("error", use_threads=False).aggregate(
                    [("id", "count"), ("id", "first"), ("status", "first"), ("error_stage", "first")]
                )
                for r in agg.to_pylist():
                    row = errors.get(r["error"])
                    if row is None:
                        st, stage = r["status_first"] or "", r["error_stage_first"] or ""
                        errors[r["error"]] = ErrorRow(r["error"], r["id_count"], st, stage, r["id_first"])
                    else:
                        row.count += r["id_count"]
            pixels = _positive(t["width"]) * _positive(t["height"]) / 1e6
            mp += _bin_counts(pixels[pixels > 0], MP_EDGES)
            size = _positive(t["byte_size"])
            nbytes += _bin_counts(size[size > 0], BYTE_EDGES)
    facts.status_counts = {k: status[k] for k in _ordered(status, STATUS_ORDER)}
    facts.format_counts = dict(sorted(formats.items(), key=lambda kv: (kv[0] == NO_FORMAT, -kv[1], kv[0])))
    facts.stage_errors = {k: stages[k] for k in _ordered(stages, ERROR_STAGES)}
    facts.distinct_errors = len(errors)
    facts.errors = sorted(errors.values(), key=lambda e: (-e.count, e.message))[:TOP_ERRORS]
    facts.megapixels = _trimmed(mp, MP_EDGES, "MP")
    facts.byte_sizes = _trimmed(nbytes, BYTE_EDGES, "B")


# The messages that name their record: mmcore's read errors, "cannot read PATH: why" and "NAME is
# N bytes, over the limit of M (max_bytes)".
_MESSAGE_KINDS = (
    (r"^cannot read .+: ", "cannot read <path>: "),
    (r"^.+ is [0-9,]+ bytes, over the limit of ", "<record> is <n> bytes, over the limit of "),
)


def _message_kind(col: Any) -> Any:
    """Messages with their record's path as ``<path>`` (and its size as ``<n>``): read errors name
    the file, so a lost mount would give every failed record a message of its own (and the
    report one table entry per record, all held in memory); this way they are one kind, counted."""
    for pattern, replacement in _MESSAGE_KINDS:
        col = pc.replace_substring_regex(col, pattern=pattern, replacement=replacement)
    return col


def _count_into(counter: Counter[str], col: Any) -> None:
    for r in pc.value_counts(col).to_pylist():
        if r["values"] is not None:
            counter[str(r["values"])] += r["counts"]


def _cluster_bins(sizes: Any) -> list[tuple[str, int]]:
    """Cluster-size histogram: 1, 2, 3, 4, then powers-of-two ranges (5-8, 9-16, ...)."""
    if sizes.size == 0:
        return []
    edges = [1, 2, 3, 4, 5]
    while edges[-1] <= sizes.max():
        edges.append((edges[-1] - 1) * 2 + 1)
    counts = _bin_counts(sizes, edges)
    labels = [str(lo) if hi - lo == 1 else f"{lo}-{hi - 1}" for lo, hi in itertools.pairwise(edges)]
    return [(lab, int(c)) for lab, c in zip(labels, counts, strict=True)]


def _gallery_rows(t: pa.Table, clusters: Any) -> pa.Table:
    """The first GALLERY_MEMBERS rows of each of ``clusters``: the representative, then by
    distance (null as 0) and id. Chosen in Arrow: a placeholder image's cluster can have millions
    of members, of which the page shows a few."""
    sel = t.filter(pc.is_in(t["cluster_id"], value_set=clusters))
    keys = pa.table(
        {
            "c": sel["cluster_id"],
            "r": pc.fill_null(sel["is_representative"], False),
            "d": pc.fill_null(sel["distance_to_representative"], 0),
            "i": sel["id"],
        }
    )
    order = pc.sort_indices(
        keys, [("c", "ascending"), ("r", "descending"), ("d", "ascending"), ("i", "ascending")]
    )
    sel = sel.take(order)
    cid = sel["cluster_id"].to_numpy()
    if cid.size == 0:
        return sel
    start = np.flatnonzero(np.r_[True, cid[1:] != cid[:-1]])
    rank = np.arange(cid.size) - np.repeat(start, np.diff(np.r_[start, cid.size]))
    return sel.filter(pa.array(rank < GALLERY_MEMBERS))


def _cluster_sizes(f: Any) -> tuple[pa.Array, Any]:
    """(cluster ids, their member counts as numpy) of a clusters file, from its cluster_id column
    alone (null: no cluster, not counted)."""
    col = f.read(columns=["cluster_id"])["cluster_id"]
    col = (pc.drop_null(col) if col.null_count else col).combine_chunks()
    if pa.types.is_integer(col.type) and len(col):
        cid = col.to_numpy()
        lo, hi = int(cid.min()), int(cid.max())
        if hi - lo < 4 * cid.size:  # dense (mmcore dedup numbers its clusters 0..C-1)
            counts = np.bincount(cid - lo if lo else cid)
            del cid, col
            keys = np.flatnonzero(counts)
            typ = f.schema_arrow.field("cluster_id").type
            return pa.array(keys + lo if lo else keys).cast(typ), counts[keys]
        keys, counts = np.unique(cid, return_counts=True)
        return pa.array(keys, col.type), counts
    sizes = pa.table({"c": col}).group_by("c").aggregate([("c", "count")])
    return sizes["c"].combine_chunks(), sizes["c_count"].to_numpy()


def _gallery_members(f: Any, clusters: pa.Array) -> pa.Table:
    """The rows of ``clusters`` (a few ids), a row group at a time, skipping those whose
    cluster_id statistics rule them out."""
    pos = f.schema_arrow.get_field_index("cluster_id")
    wanted = clusters.to_pylist()
    parts = []
    for g in range(f.num_row_groups):
        st = f.metadata.row_group(g).column(pos).statistics
        if st is not None and st.has_min_max and not any(st.min <= c <= st.max for c in wanted):
            continue
        t = f.read_row_group(g, columns=_CLUSTER_COLUMNS)
        parts.append(t.filter(pc.is_in(t["cluster_id"], value_set=clusters)))
    return pa.concat_tables(parts) if parts else f.schema_arrow.empty_table().select(_CLUSTER_COLUMNS)


def _clustering(path: Path, groups: int, fingerprint: str) -> Clustering:
    f = _parquet(path, _CLUSTER_COLUMNS, "mmcore dedup")
    try:
        meta = json.loads((f.schema_arrow.metadata or {}).get(b"mmcore_dedup", b"{}"))
    except ValueError:
        meta = {}
    made_from = meta.get("output_fingerprint") if isinstance(meta, dict) else None
    # The cluster_id column for the sizes, then only the gallery's clusters' rows: the whole
    # table (ids as strings) took 2.4 GB for 20M rows.
    keys, size_arr = _cluster_sizes(f)
    multi = np.flatnonzero(size_arr >= 2)
    # The largest groups first, ties to the smaller cluster id.
    ranked = pa.table({"c": keys.take(pa.array(multi, pa.int64())), "n": size_arr[multi]})
    ranked = ranked.sort_by([("n", "descending"), ("c", "ascending")]).slice(0, groups)
    top_ids = ranked["c"].combine_chunks()
    by_cluster: dict[Any, list[Member]] = {}
    for r in _gallery_rows(_gallery_members(f, top_ids), top_ids).to_pylist():
        d = r["distance_to_representative"]
        m = Member(str(r["id"]), bool(r["is_representative"]), None if d is None else int(d))
        by_cluster.setdefault(r["cluster_id"], []).append(m)
    gallery = [
        Group(str(cid), int(n), by_cluster[cid])
        for cid, n in zip(top_ids.to_pylist(), ranked["n"].to_pylist(), strict=True)
    ]
    name = path.stem.removeprefix("clusters-")
    return Clustering(
        name=name,
        ids=int(size_arr.sum()),
        clusters=len(keys),
        groups=int(multi.size),
        grouped_ids=int(size_arr[multi].sum()),
        largest=int(size_arr.max()) if size_arr.size else 0,
        size_bins=_cluster_bins(size_arr),
        gallery=gallery,
        stale=None if made_from is None else made_from != fingerprint,
    )


def _may_hold(stats: Any, wanted: list[str]) -> bool:
    """False when the row group's id statistics prove that none of ``wanted`` is in it."""
    if stats is None or not stats.has_min_max:
        return True
    lo, hi = stats.min, stats.max
    return any(lo <= w <= hi for w in wanted)


def _thumbnails(out: Path, shards: Sequence[str], ids: set[str]) -> dict[str, bytes]:
    """Thumbnail bytes of ``ids``: reads the id column and, only in the row groups that hold one
    of ``ids``, the thumbnail column."""
    found: dict[str, bytes] = {}
    for s in shards:
        wanted = sorted(ids - found.keys())
        if not wanted:
            break
        pf = _parquet(shard_path(out, s), ["id", "thumbnail"], "mmcore run")
        id_pos = pf.schema_arrow.get_field_index("id")
        value_set = pa.array(wanted, pa.string())
        for g in range(pf.num_row_groups):
            if not _may_hold(pf.metadata.row_group(g).column(id_pos).statistics, wanted):
                continue
            mask = pc.is_in(pf.read_row_group(g, columns=["id"])["id"], value_set=value_set)
            if not pc.any(mask).as_py():
                continue
            t = pf.read_row_group(g, columns=["id", "thumbnail"]).filter(mask)
            for i, th in zip(t["id"].to_pylist(), t["thumbnail"].to_pylist(), strict=True):
                if th is not None:
                    found.setdefault(i, th)
    return found


def gather(out: str | os.PathLike[str], *, gallery_groups: int = 12) -> Facts:
    """Reads what the report says about ``OUT`` (see :func:`report`); raises like it."""
    root = Path(out)
    manifest = _manifest(root)
    shards = completed_shards(root)
    listed = [s.get("records") for s in manifest["shards"] if isinstance(s, dict)]
    expected = [n for n in listed if isinstance(n, int)]
    facts = Facts(
        out=os.fspath(out),
        manifest=manifest,
        shards_total=len(manifest["shards"]),
        expected_records=sum(expected) if expected and len(expected) == len(listed) else None,
        shards=[_shard_stats(root, s) for s in shards],
        generated=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    _scan_rows(root, shards, facts)
    recorded = sum(s.rows for s in facts.shards)
    if recorded != facts.records:
        facts.notes.append(
            f"the completion records count {recorded:,} rows but the completed parts hold {facts.records:,}"
        )
    unsupported = facts.status_counts.get("UNSUPPORTED", 0)
    if unsupported and (manifest.get("config") or {}).get("fallback", "none") == "none":
        facts.notes.append(
            f"{unsupported:,} records are UNSUPPORTED (their error names the format mmcore does not "
            "decode); those in formats Pillow reads (TIFF, BMP, HEIC, ...) get hashed by "
            "mmcore run SOURCE OUT --mode retry-failed --fallback pillow"
        )
    job_hash = manifest.get("config_hash")
    other = sorted(s.name for s in facts.shards if s.config_hash and s.config_hash != job_hash)
    if other:
        facts.notes.append(
            f"{len(other)} shard(s) were written with another config hash than the manifest's: "
            + ", ".join(other[:10])
            + (" ..." if len(other) > 10 else "")
        )
    dedup = root / DEDUP_DIR
    paths = sorted(dedup.glob("clusters-*.parquet")) if dedup.is_dir() else []
    fingerprint = output_fingerprint(root) if paths else ""
    facts.clusterings = [_clustering(p, gallery_groups, fingerprint) for p in paths]
    gallery_ids = {m.id for c in facts.clusterings for g in c.gallery for m in g.members}
    if gallery_ids:
        thumbs = _thumbnails(root, shards, gallery_ids)
        for c in facts.clusterings:
            for g in c.gallery:
                for m in g.members:
                    m.thumbnail = thumbs.get(m.id)
    return facts


# ---------------------------------------------------------------------------------- rendering

_CSS = """
body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:1rem 1.5rem 3rem}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}
th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;vertical-align:top}
th{background:#eef}td.n{text-align:right;font-variant-numeric:tabular-nums}
code,.id{font-family:ui-monospace,monospace;font-size:.9em;word-break:break-all}
.note{background:#fff4d6;border:1px solid #e6c35c;padding:.4rem .8rem}
.muted{color:#666}
.group{border:1px solid #ddd;background:#fff;margin:.8rem 0;padding:.5rem}
.members{display:flex;flex-wrap:wrap;gap:.6rem}
figure.chart{margin:.5rem 0 1rem}figure.chart svg{max-width:100%;height:auto}
.members figure{margin:0;width:140px}
.members img{max-width:140px;max-height:140px;display:block;background:#eee}
figcaption{font-size:.75rem}
.rep{outline:3px solid #4a78c2}
"""

_NUM = ' class="n"'
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _md(x: object) -> str:
    """A data string for markdown text or a table cell: HTML-escaped (renderers pass raw HTML
    through), the markdown punctuation that could make a link, emphasis or a table cell
    backslash-escaped, on one line."""
    s = re.sub(r"([\\`*\[\]|~])", r"\\\1", html.escape(" ".join(str(x).split()), quote=False))

    def underscores(m: re.Match[str]) -> str:
        # a run of _ between two letters or digits cannot open or close emphasis: kept readable
        a, b = m.string[m.start() - 1 : m.start()], m.string[m.end() : m.end() + 1]
        return m.group() if a.isalnum() and b.isalnum() else "\\_" * len(m.group())

    return re.sub(r"_+", underscores, s)


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "-"


def _rate(r: float | None) -> str:
    return "n/a" if r is None else f"{r:,.1f}"


def _secs(v: float) -> str:
    return f"{v:,.2f}"


class _Page:
    """The HTML page and the markdown twin, built side by side from the same calls."""

    def __init__(self) -> None:
        self.html: list[str] = []
        self.md: list[str] = []
        self.charts: dict[str, str] = {}
        self.files: dict[str, bytes] = {}

    def heading(self, level: int, text: str, anchor: str = "") -> None:
        idattr = f' id="{anchor}"' if anchor else ""
        self.html.append(f"<h{level}{idattr}>{_e(text)}</h{level}>")
        self.md.append(f"\n{'#' * level} {_md(text)}\n")

    def para(self, text: str, cls: str = "") -> None:
        c = f' class="{cls}"' if cls else ""
        self.html.append(f"<p{c}>{_e(text)}</p>")
        self.md.append(("> " if cls == "note" else "") + _md(text) + "\n")

    def table(
        self, header: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[int] = ()
    ) -> None:
        """A table; the columns in ``numeric`` are right-aligned."""
        h = "".join(f"<th>{_e(c)}</th>" for c in header)
        body = []
        for r in rows:
            cells = "".join(f"<td{_NUM if i in numeric else ''}>{_e(v)}</td>" for i, v in enumerate(r))
            body.append(f"<tr>{cells}</tr>")
        self.html.append(f"<table><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>")
        align = [("---:" if i in numeric else "---") for i in range(len(header))]
        lines = ["| " + " | ".join(_md(c) for c in header) + " |", "| " + " | ".join(align) + " |"]
        lines += ["| " + " | ".join(_md(v) for v in r) + " |" for r in rows]
        self.md.append("\n".join(lines) + "\n")

    def chart(self, name: str, svg: str, caption: str) -> None:
        """An inline SVG in the page; in the markdown a link to ``charts/<name>.svg``."""
        self.charts[f"{name}.svg"] = svg
        self.html.append(f'<figure class="chart">{svg}<figcaption>{_e(caption)}</figcaption></figure>')
        self.md.append(f"![{_md(caption)}](charts/{name}.svg)\n")


def _summary(p: _Page, f: Facts) -> None:
    m = f.manifest
    p.heading(2, "Job", "job")
    done = len(f.shards)
    expected = f" of {f.expected_records:,} listed in the manifest" if f.expected_records is not None else ""
    rows: list[tuple[str, object]] = [
        ("source", m.get("source", "")),
        ("output", f.out),
        ("mmcore version", m.get("mmcore_version", "")),
        ("config hash", m.get("config_hash", "")),
        ("shards complete", f"{done} / {f.shards_total}"),
        ("records", f"{f.records:,}{expected}"),
        ("report", f"mmcore {__version__}, {f.generated}"),
    ]
    p.table(("", ""), rows)
    if done == 0:
        p.para(f"0 of {f.shards_total} shards completed: no records to report yet.", "note")
    for n in f.notes:
        p.para(f"Note: {n}.", "note")
    if f.status_counts:
        p.heading(3, "Records by status")
        rows2 = [(k, f"{v:,}", _pct(v, f.records)) for k, v in f.status_counts.items()]
        p.table(("status", "records", "share"), rows2, numeric=(1, 2))
    if f.format_counts:
        p.heading(3, "Records by format")
        rows3 = [(k, f"{v:,}", _pct(v, f.records)) for k, v in f.format_counts.items()]
        p.table(("format", "records", "share"), rows3, numeric=(1, 2))
    cfg = m.get("config")
    if isinstance(cfg, dict) and cfg:
        p.heading(3, "Config")
        p.table(
            ("option", "value"), [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in cfg.items()]
        )


def _throughput(p: _Page, f: Facts) -> None:
    p.heading(2, "Throughput", "throughput")
    if not f.shards:
        p.para("No completed shards: no timings yet.", "muted")
        return
    rows = sum(s.rows for s in f.shards)
    wall = f.wall_seconds
    p.para(
        f"{rows:,} rows in {_secs(wall)} s of shard wall time summed over {len(f.shards)} shard(s): "
        f"{_rate(rows / wall if wall > 0 else None)} images/s per shard worker."
    )
    p.heading(3, "Images/s per shard")
    if len(f.shards) <= SHARD_BARS:
        bars = [(s.name, s.rate or 0.0) for s in f.shards]
        svg = _svg.hbar(bars, label="images/s per shard", fmt=lambda v: f"{v:,.1f}")
        p.chart("throughput", svg, "images/s")
        p.table(
            ("shard", "rows", "wall s", "images/s"),
            [(s.name, f"{s.rows:,}", _secs(s.wall_seconds), _rate(s.rate)) for s in f.shards],
            numeric=(1, 2, 3),
        )
    else:
        rates = np.array([s.rate for s in f.shards if s.rate is not None])
        bins = _rate_bins(rates)
        p.chart("throughput", _svg.histogram(bins, label="shards by images/s"), "shards by images/s")
        p.table(("images/s", "shards"), bins, numeric=(1,))
        if rates.size:
            q = np.percentile(rates, [0, 50, 100])
            p.para(f"images/s per shard: min {q[0]:,.1f}, median {q[1]:,.1f}, max {q[2]:,.1f}.")
    stages = f.stage_seconds
    if stages:
        p.heading(3, "Time per stage (summed over shards)")
        p.chart(
            "stage-time",
            _svg.hbar(list(stages.items()), label="seconds per stage", fmt=lambda v: f"{v:,.2f} s"),
            "seconds per stage",
        )
        total = sum(stages.values())
        p.table(
            ("stage", "seconds", "share"),
            [(k, _secs(v), f"{100 * v / total:.1f}%" if total > 0 else "-") for k, v in stages.items()],
            numeric=(1, 2),
        )


def _rate_bins(rates: Any) -> list[tuple[str, int]]:
    if rates.size == 0:
        return []
    lo, hi = float(rates.min()), float(rates.max())
    if hi <= lo:
        return [(f"{lo:,.1f}", int(rates.size))]
    edges = np.linspace(lo, hi, 11)
    counts = np.histogram(rates, bins=edges)[0]
    return [(f"{a:,.0f}-{b:,.0f}", int(c)) for a, b, c in zip(edges, edges[1:], counts, strict=False)]


def _errors(p: _Page, f: Facts) -> None:
    p.heading(2, "Errors", "errors")
    if not f.shards:
        p.para("No completed shards.", "muted")
        return
    failed = {k: v for k, v in f.status_counts.items() if k != "OK"}
    if not failed and not f.stage_errors:
        p.para("Every record has status OK.")
        return
    if failed:
        p.heading(3, "Records by status other than OK")
        svg = _svg.hbar(list(failed.items()), label="records by status")
        p.chart("errors-status", svg, "records by status")
    if f.stage_errors:
        p.heading(3, "Records by error stage")
        svg = _svg.hbar(list(f.stage_errors.items()), label="records by error stage")
        p.chart("errors-stage", svg, "records by stage")
        p.table(("stage", "records"), [(k, f"{v:,}") for k, v in f.stage_errors.items()], numeric=(1,))
    if f.errors:
        shown = min(TOP_ERRORS, f.distinct_errors)
        p.heading(3, f"Most frequent error messages ({shown} of {f.distinct_errors:,} distinct)")
        p.table(
            ("records", "message", "status", "stage", "example id"),
            [(f"{e.count:,}", e.message, e.status, e.stage, e.example_id) for e in f.errors],
            numeric=(0,),
        )


def _sizes(p: _Page, f: Facts) -> None:
    p.heading(2, "Image sizes", "sizes")
    if not f.megapixels and not f.byte_sizes:
        p.para("No sizes recorded." if f.shards else "No completed shards.", "muted")
        return
    for name, title, bins in (
        ("megapixels", "Width x height (megapixels, log-scaled bins)", f.megapixels),
        ("byte-size", "File size (bytes, log-scaled bins)", f.byte_sizes),
    ):
        if bins:
            p.heading(3, title)
            p.chart(name, _svg.histogram(bins, label=title), title)
            p.table(("bin", "images"), [(lab, f"{c:,}") for lab, c in bins], numeric=(1,))


def _dedup(p: _Page, f: Facts) -> None:
    p.heading(2, "Near-duplicates", "dedup")
    if not f.clusterings:
        p.para("No dedup output (OUT/dedup/clusters-*.parquet): run `mmcore dedup OUT` first.", "muted")
        return
    for k, c in enumerate(f.clusterings, 1):
        p.heading(3, f"clusters-{c.name}")
        if c.stale:
            p.para(
                "Out of date: the run's output changed after these clusters were made "
                f"(rows added or rewritten); run `mmcore dedup` again to refresh clusters-{c.name}.",
                "muted",
            )
        p.table(
            ("", ""),
            [
                ("ids", f"{c.ids:,}"),
                ("clusters", f"{c.clusters:,}"),
                ("groups of 2 or more", f"{c.groups:,}"),
                ("ids in such groups", f"{c.grouped_ids:,}"),
                ("largest cluster", f"{c.largest:,}"),
            ],
        )
        if c.size_bins:
            p.chart(
                f"clusters-{k}",
                _svg.histogram(c.size_bins, label="clusters by size", log=True),
                "clusters by size (ids per cluster)",
            )
            p.table(("cluster size", "clusters"), [(lab, f"{n:,}") for lab, n in c.size_bins], numeric=(1,))
        if c.gallery:
            p.heading(4, f"The {len(c.gallery)} largest groups (at most {GALLERY_MEMBERS} members each)")
        for gi, g in enumerate(c.gallery, 1):
            _group(p, g, f"c{k}-g{gi:02d}")


def _group(p: _Page, g: Group, stem: str) -> None:
    title = f"cluster {g.cluster}: {g.size} ids"
    figs, md_rows = [], []
    for mi, m in enumerate(g.members, 1):
        dist = "-" if m.distance is None else f"distance {m.distance}"
        if m.representative:
            dist = "representative"
        cls = ' class="rep"' if m.representative else ""
        mime = m.mime
        if mime is not None and m.thumbnail is not None:
            uri = f"data:{mime};base64,{base64.b64encode(m.thumbnail).decode('ascii')}"
            img = f'<img{cls} src="{uri}" alt="{_e(m.id)}">'
            fname = f"{stem}-{mi}.{'jpg' if mime == 'image/jpeg' else 'webp'}"
            self_file = f"![thumbnail](thumbs/{fname})"
            p.files[f"thumbs/{fname}"] = m.thumbnail
        else:
            img, self_file = "", "(no thumbnail)"
        figs.append(
            f'<figure>{img}<figcaption><span class="id">{_e(m.id)}</span><br>{_e(dist)}</figcaption></figure>'
        )
        md_rows.append(f"| {self_file} | {_md(m.id)} | {_md(dist)} |")
    p.html.append(f'<div class="group"><h5>{_e(title)}</h5><div class="members">{"".join(figs)}</div></div>')
    more = f" (first {len(g.members)} shown)" if g.size > len(g.members) else ""
    head = f"\n##### {_md(title)}{more}\n\n| thumbnail | id | |\n| --- | --- | --- |\n"
    p.md.append(head + "\n".join(md_rows) + "\n")


def render(f: Facts) -> tuple[str, str, dict[str, str], dict[str, bytes]]:
    """(HTML page, markdown, {charts/<name>: svg}, {thumbs/<name>: bytes}) of ``f``."""
    p = _Page()
    src = str(f.manifest.get("source", ""))
    p.html.append(f'<h1>mmcore report</h1><p class="muted">{_e(src)}</p>')
    p.md.append(f"# mmcore report\n\n{_md(src)}\n")
    _summary(p, f)
    _throughput(p, f)
    _errors(p, f)
    _sizes(p, f)
    _dedup(p, f)
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>mmcore report: {_e(src)}</title><style>{_CSS}</style></head>\n<body><main>\n"
        + "\n".join(p.html)
        + "\n</main></body></html>\n"
    )
    return page, "\n".join(p.md), p.charts, p.files


def _write(path: Path, data: bytes) -> None:
    """Writes ``path`` through a temporary file and a rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:  # not mkstemp: the file gets the umask's mode, not 0600
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _clear(folder: Path, pattern: re.Pattern[str]) -> None:
    """Removes the files a previous report wrote in ``folder`` (only names it would write)."""
    if folder.is_dir():
        for q in folder.iterdir():
            if q.is_file() and pattern.fullmatch(q.name):
                q.unlink()


def report(
    out: str | os.PathLike[str], *, dest: str | os.PathLike[str] | None = None, gallery_groups: int = 12
) -> Path:
    """Writes the report on the run output ``out`` and returns the path of its ``index.html``.

    Writes ``index.html`` (self-contained) and ``report.md`` (with ``charts/*.svg`` and
    ``thumbs/*`` beside it) into ``dest`` (default ``OUT/report``). ``gallery_groups``: how many
    of the largest near-duplicate groups the gallery shows (0: none). Raises FileNotFoundError
    when ``out`` is not a folder or holds no job manifest, ValueError when the manifest, a
    completion record or a part is not what ``mmcore run`` writes.

    >>> import mmcore.jobs.report as r
    >>> r.report("/nonexistent")
    Traceback (most recent call last):
    ...
    FileNotFoundError: /nonexistent is not a folder (give the OUT folder of `mmcore run`)
    """
    if isinstance(gallery_groups, bool) or not isinstance(gallery_groups, int) or gallery_groups < 0:
        raise ValueError(f"gallery_groups must be an integer >= 0, got {gallery_groups!r}")
    facts = gather(out, gallery_groups=gallery_groups)
    page, md, charts, files = render(facts)
    target = Path(out) / REPORT_DIR if dest is None else Path(dest)
    _clear(target / "charts", _CHART_NAME)
    _clear(target / "thumbs", _THUMB_NAME)
    for name, svg in charts.items():
        _write(target / "charts" / name, svg.encode())
    for name, data in files.items():
        _write(target / name, data)
    _write(target / "report.md", md.encode())
    index = target / "index.html"
    _write(index, page.encode())
    return index


def _cmd_report(args: argparse.Namespace) -> int:
    try:
        path = report(args.out, dest=args.dest, gallery_groups=args.groups)
    except (OSError, ValueError) as e:
        print(f"mmcore report: error: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``mmcore report OUT [--dest DIR] [--groups N]``."""
    p = sub.add_parser(
        "report",
        help="write an HTML page (and markdown) about a run's output: statuses, errors, throughput, sizes",
        description="Writes OUT/report/index.html (self-contained) and OUT/report/report.md, "
        "then prints the path of index.html.",
    )
    p.add_argument("out", metavar="OUT", help="the output folder of `mmcore run`")
    p.add_argument("--dest", metavar="DIR", default=None, help="write the report here (default OUT/report)")
    p.add_argument(
        "--groups",
        metavar="N",
        type=int_at_least(0),
        default=12,
        help="near-duplicate groups shown (default 12)",
    )
    p.set_defaults(func=_cmd_report)
