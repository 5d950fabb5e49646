"""Fake `mmcore run` output folders for the tests of the commands that read one (dedup, report),
and ``run_cli``: a command's ``register`` tried through a parser of its own.

The folder follows the contract of mmcore.jobs.schema: ``OUT/_mmcore_job.json`` (the manifest),
``OUT/part-NNNNN.parquet`` (schema.SCHEMA, with the file metadata ``mmcore_version`` and
``mmcore_config_hash``) and ``OUT/_done/part-NNNNN.json`` (the completion record) for every
shard that counts as completed.

    table = run_table(ids, pdq=codes, pdq_quality=q, status=status)
    write_run_output(tmp_path / "out", table, shard_rows=50, incomplete=[2])
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

import mmcore
from mmcore.jobs.config import Config
from mmcore.jobs.schema import DONE_DIR, MANIFEST, SCHEMA, done_path, shard_path, u64_to_i64

OK_STATUSES = ("OK", "OK_WARNING")


def _fixed32(codes: npt.NDArray[np.uint8], valid: npt.NDArray[np.bool_]) -> pa.Array:
    """(N, 32) uint8 codes as a binary(32) Arrow array, null where not valid."""
    n = len(valid)
    bits = pa.array(valid, pa.bool_()).buffers()[1]
    data = pa.py_buffer(np.ascontiguousarray(codes, dtype=np.uint8).tobytes())
    return pa.Array.from_buffers(pa.binary(32), n, [bits, data], null_count=int(n - valid.sum()))


def run_table(
    ids: Sequence[str],
    *,
    status: Sequence[str] | None = None,
    pdq: npt.NDArray[np.uint8] | None = None,
    pdq_quality: npt.NDArray[np.integer[Any]] | None = None,
    phash: npt.NDArray[np.uint64] | None = None,
    hash_valid: npt.NDArray[np.bool_] | None = None,
    thumbnail: Sequence[bytes | None] | None = None,
    seed: int = 0,
) -> pa.Table:
    """A table with schema.SCHEMA, one row per id. ``status`` defaults to OK everywhere; rows whose
    status is not OK / OK_WARNING get null hashes, a null format / size and an error, as a real
    run writes them. ``pdq`` (N, 32) uint8, ``pdq_quality`` and ``phash`` uint64 (N,) fill their
    columns (null when not given); ``hash_valid`` (bool (N,)) nulls the hashes of OK rows too
    (a hash that was not computed). The other columns get plausible values."""
    n = len(ids)
    st = np.asarray(["OK"] * n if status is None else list(status), dtype=object)
    ok = np.isin(st, OK_STATUSES)
    valid = ok if hash_valid is None else ok & np.asarray(hash_valid, dtype=bool)
    rng = np.random.default_rng(seed)
    width = rng.integers(16, 4000, size=n).astype(np.int32)
    height = rng.integers(16, 4000, size=n).astype(np.int32)
    sha = np.frombuffer(rng.bytes(32 * n), dtype=np.uint8).reshape(n, 32)
    zeros32 = np.zeros((n, 32), dtype=np.uint8)
    cols: dict[str, Any] = {
        "id": pa.array(list(ids), pa.string()),
        "source_uri": pa.array([f"file:///fake/{i}.jpg" for i in ids], pa.string()),
        "member": pa.nulls(n, pa.string()),
        "byte_size": pa.array(rng.integers(100, 1 << 22, size=n), pa.int64()),
        "content_sha256": _fixed32(sha, np.ones(n, dtype=bool)),
        "format": pa.array(np.where(ok, "jpeg", None).tolist(), pa.string()),
        "width": pa.array(width, pa.int32(), mask=~ok),
        "height": pa.array(height, pa.int32(), mask=~ok),
        "orientation": pa.array(np.ones(n, dtype=np.int8), pa.int8(), mask=~ok),
        "phash": pa.nulls(n, pa.int64())
        if phash is None
        else pa.array(u64_to_i64(np.asarray(phash, dtype=np.uint64)), pa.int64(), mask=~valid),
        "dhash": pa.nulls(n, pa.int64()),
        "ahash": pa.nulls(n, pa.int64()),
        "pdq": _fixed32(zeros32, np.zeros(n, dtype=bool)) if pdq is None else _fixed32(pdq, valid),
        "pdq_quality": pa.nulls(n, pa.int16())
        if pdq_quality is None
        else pa.array(np.asarray(pdq_quality, dtype=np.int16), pa.int16(), mask=~valid),
        "thumbnail": pa.nulls(n, pa.binary()) if thumbnail is None else pa.array(thumbnail, pa.binary()),
        "status": pa.array(st.tolist(), pa.string()),
        "error": pa.array(np.where(ok, None, "fake failure").tolist(), pa.string()),
        "error_stage": pa.array(np.where(ok, None, "decode").tolist(), pa.string()),
    }
    return pa.table(cols, schema=SCHEMA)


def write_run_output(
    out: Path,
    table: pa.Table,
    *,
    shard_rows: int = 100,
    incomplete: Sequence[int] = (),
    config: Config | None = None,
    source: str = "/fake/source",
    first_shard: int = 0,
) -> list[str]:
    """Write ``table`` as the output folder of a run, cut into shards of ``shard_rows`` rows:
    the manifest, the Parquet parts and a completion record for every shard except those whose
    number is in ``incomplete`` (their part is written but does not count); shards are numbered
    from ``first_shard``. Returns the shard names."""
    config = config or Config()
    chash = config.config_hash()
    out.mkdir(parents=True, exist_ok=True)
    (out / DONE_DIR).mkdir(exist_ok=True)
    meta = {b"mmcore_version": mmcore.__version__.encode(), b"mmcore_config_hash": chash.encode()}
    shards = []
    for k, at in enumerate(range(0, max(table.num_rows, 1), shard_rows)):
        name = f"part-{first_shard + k:05d}"
        part = table.slice(at, shard_rows)
        pq.write_table(part.replace_schema_metadata(meta), shard_path(out, name))
        shards.append(
            {"name": name, "kind": "files", "source_uri": f"file://{source}", "records": part.num_rows}
        )
        if k in incomplete:
            continue
        record = {
            "shard": name,
            "rows": part.num_rows,
            "counts": dict(Counter(part["status"].to_pylist())),
            "stage_seconds": {"read": 0.01, "decode_hash": 0.1, "thumbnail": 0.0, "write": 0.01},
            "wall_seconds": 0.12,
            "config_hash": chash,
            "mmcore_version": mmcore.__version__,
            "finished_at": datetime.now(timezone.utc).isoformat(),
        }
        done_path(out, name).write_text(json.dumps(record))
    manifest = {
        "format": "mmcore-job",
        "version": 1,
        "mmcore_version": mmcore.__version__,
        "config": config.to_dict(),
        "config_hash": chash,
        "source": source,
        "shards": shards,
    }
    (out / MANIFEST).write_text(json.dumps(manifest))
    return [str(s["name"]) for s in shards]


def run_cli(register: Callable[[Any], None], argv: list[str]) -> int:
    """Parse argv with a parser holding only the subcommands ``register`` adds (as mmcore.cli
    will), run the chosen handler and return its exit code (argparse errors raise SystemExit 2)."""
    p = argparse.ArgumentParser(prog="mmcore")
    sub = p.add_subparsers(dest="command", required=True)
    register(sub)
    args = p.parse_args(argv)
    rc: int = args.func(args)
    return rc
