"""The output of ``mmcore run``: its Arrow schema and its folder layout.

Layout of an output folder ``OUT``::

    OUT/_mmcore_job.json        the job manifest: source, shards and their inputs, config, config hash
    OUT/part-00000.parquet      one Parquet file per input shard (schema below)
    OUT/_done/part-00000.json   the shard's completion record, written (and fsynced) last
    OUT/dedup/...               written by ``mmcore dedup``
    OUT/report/...              written by ``mmcore report``

A shard's Parquet file counts only once its completion record exists: a file without one is the
leftover of an interrupted run and is rewritten by the next one. Readers use :func:`read_output`.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "_mmcore_job.json"
DONE_DIR = "_done"

#: ``status`` values of records that decoded (OK_WARNING: with recoverable errors).
OK_STATUSES = ("OK", "OK_WARNING")

#: Values of the ``error_stage`` column: where a record failed.
ERROR_STAGES = ("source", "read", "decode", "hash", "thumbnail")

#: The output columns, in order. Hashes are imagehash's 64-bit integers reinterpreted as signed
#: (two's complement) so that Spark and every Parquet reader take them; pdq is the 32 bytes of the
#: reference hex. Nullable everywhere a failed record has nothing to say.
SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source_uri", pa.string()),
        pa.field("member", pa.string()),
        pa.field("byte_size", pa.int64()),
        pa.field("content_sha256", pa.binary(32)),
        pa.field("format", pa.string()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("orientation", pa.int8()),
        pa.field("phash", pa.int64()),
        pa.field("dhash", pa.int64()),
        pa.field("ahash", pa.int64()),
        pa.field("pdq", pa.binary(32)),
        pa.field("pdq_quality", pa.int16()),
        pa.field("thumbnail", pa.binary()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("error", pa.string()),
        pa.field("error_stage", pa.string()),
    ]
)


#: The columns of imagehash's kinds, whose width follows ``hash_size``.
SIZED_COLUMNS = ("phash", "dhash", "ahash")


def output_schema(hash_size: int = 8) -> pa.Schema:
    """:data:`SCHEMA` for a run at imagehash ``hash_size`` (``Config.hash_size``): phash, dhash and
    ahash have ``hash_size ** 2`` bits; up to 64 (hash_size 2..8) they stay int64 columns, longer
    ones are ``binary(ceil(bits / 8))``: each value the hash as one big-endian integer (imagehash's
    bit order, as ``hash_batch(..., hash_size=...)`` gives its rows).

    >>> output_schema(16).field("phash").type, output_schema(5).field("phash").type
    (FixedSizeBinaryType(fixed_size_binary[32]), DataType(int64))
    """
    if hash_size <= 8:
        return SCHEMA
    t = pa.binary((hash_size * hash_size + 7) // 8)
    return pa.schema([f.with_type(t) if f.name in SIZED_COLUMNS else f for f in SCHEMA])


def shard_path(out: str | os.PathLike[str], shard: str) -> Path:
    return Path(out) / f"{shard}.parquet"


def done_path(out: str | os.PathLike[str], shard: str) -> Path:
    return Path(out) / DONE_DIR / f"{shard}.json"


def completed_shards(out: str | os.PathLike[str]) -> list[str]:
    """Names of the shards that are complete, sorted: a completion record that reads as one, and
    a part of the size it records (records from before sizes were kept: a part that exists). A
    part cut short or replaced since, or a damaged record, leaves its shard to be redone by the
    next run."""
    d = Path(out) / DONE_DIR
    if not d.is_dir():
        return []
    return sorted((p.stem for p in d.glob("*.json") if _complete(out, p)), key=shard_order)


def shard_order(name: str) -> tuple[int, str]:
    """Sort key of shard names in run order: ``part-99999`` before ``part-100000`` (names past five
    digits grow longer, so by their number, not as strings).

    >>> sorted(["part-100000", "part-99999", "part-00002"], key=shard_order)
    ['part-00002', 'part-99999', 'part-100000']
    """
    return len(name), name


def _complete(out: str | os.PathLike[str], record: Path) -> bool:
    try:
        rec = json.loads(record.read_bytes())
        size = shard_path(out, record.stem).stat().st_size
    except (OSError, ValueError):
        return False
    if not isinstance(rec, dict) or not isinstance(rec.get("rows"), int):
        return False
    want = rec.get("part_bytes")
    return want is None or want == size


def output_fingerprint(out: str | os.PathLike[str]) -> str:
    """sha256 (hex) of the completed shards' completion records (names and contents): it changes
    whenever a run adds or rewrites a shard, so what was computed from the output can say whether
    the output has changed since (``mmcore dedup`` stores it; ``mmcore report`` compares)."""
    h = hashlib.sha256()
    for name in completed_shards(out):
        h.update(name.encode() + b"\0" + done_path(out, name).read_bytes() + b"\0")
    return h.hexdigest()


def read_manifest(out: str | os.PathLike[str]) -> dict[str, Any]:
    """The job manifest of ``out``: FileNotFoundError when there is none, ValueError when the file
    is not one (not JSON, no ``format: mmcore-job``, a ``shards`` list whose entries are not
    shards, a ``config`` that is not an object of options)."""
    p = Path(out) / MANIFEST
    if not p.is_file():
        raise FileNotFoundError(f"{os.fspath(out)} is not an mmcore run output (no {MANIFEST})")
    try:
        m: Any = json.loads(p.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{p} is not valid JSON ({e}): not an mmcore job manifest") from None
    if not isinstance(m, dict) or m.get("format") != "mmcore-job" or not isinstance(m.get("shards"), list):
        got = m.get("format") if isinstance(m, dict) else type(m).__name__
        raise ValueError(f"{p} is not an mmcore job manifest (format={got!r})")
    for i, sh in enumerate(m["shards"]):
        if not (
            isinstance(sh, dict)
            and all(isinstance(sh.get(k), str) for k in ("name", "kind", "source_uri"))
            and sh["kind"] in ("files", "tar", "parquet")
            and isinstance(sh.get("files", []), list)
            and isinstance(sh.get("root", ""), str)
        ):
            raise ValueError(f"{p}: shard {i} is not a shard entry (name, kind, source_uri): {str(sh)[:80]}")
    config = m.get("config", {})
    hashes = config.get("hashes", []) if isinstance(config, dict) else None
    if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
        raise ValueError(f"{p}: 'config' is not a job config (an object whose hashes are a list of names)")
    manifest: dict[str, Any] = m
    return manifest


def read_output(out: str | os.PathLike[str], columns: list[str] | None = None) -> pa.Table:
    """Every row of the completed shards of ``OUT`` (in shard order), as one Arrow table."""
    read_manifest(out)  # a clear error for a folder that is not a run's output
    shards = completed_shards(out)

    def read(shard: str) -> pa.Table:
        # ParquetFile.read skips read_table's dataset layer: ~2x faster on many small parts; the
        # threads overlap the file opens and the decompression (pyarrow releases the GIL).
        path = shard_path(out, shard)
        try:
            with pq.ParquetFile(path) as f:
                return f.read(columns=columns)
        except pa.ArrowException as e:  # damaged after its record was written
            raise ValueError(
                f"{path}: cannot read this completed part ({e}); remove {done_path(out, shard)} and "
                "rerun `mmcore run` to rewrite it"
            ) from None

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(shards)))) as pool:
        tables = list(pool.map(read, shards))
    if not tables:
        hash_size = int((read_manifest(out).get("config") or {}).get("hash_size", 8))
        full = output_schema(hash_size)
        schema = full if columns is None else pa.schema([full.field(c) for c in columns])
        return schema.empty_table()
    return pa.concat_tables(tables)


def u64_to_i64(v: Any) -> Any:
    """uint64 hash values (numpy array) as the int64 the schema stores (same bits)."""
    return v.view("int64")


def i64_to_u64(v: Any) -> Any:
    """The schema's int64 hash values (numpy array) back as imagehash's uint64 (same bits)."""
    return v.view("uint64")
