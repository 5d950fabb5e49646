"""Fake ``mmcore run`` output folders, written as the jobs contract says (manifest, Parquet parts
with schema.SCHEMA and its file metadata, completion records, a dedup clusters file), for tests
of the readers of an output such as ``mmcore report``."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

import mmcore
from mmcore.jobs import Config
from mmcore.jobs.schema import DONE_DIR, MANIFEST, SCHEMA, done_path, shard_path

STAGE_SECONDS = {"read": 0.5, "decode_hash": 1.0, "thumbnail": 0.25, "write": 0.25}


def encoded(color: tuple[int, int, int], size: tuple[int, int] = (48, 32), fmt: str = "JPEG") -> bytes:
    """A flat image of ``color`` and ``size`` (w, h) encoded by Pillow (JPEG or WEBP)."""
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt, quality=90)
    return buf.getvalue()


def row(
    id: str,
    status: str = "OK",
    *,
    width: int | None = 640,
    height: int | None = 480,
    byte_size: int | None = 50_000,
    error: str | None = None,
    error_stage: str | None = None,
    thumbnail: bytes | None = None,
) -> dict[str, Any]:
    """One output record; the columns not named here are null."""
    failed = status not in ("OK", "OK_WARNING")
    return {
        "id": id,
        "source_uri": f"file:///data/{id}",
        "byte_size": byte_size,
        "format": None if failed else "jpeg",
        "width": None if failed else width,
        "height": None if failed else height,
        "orientation": None if failed else 1,
        "thumbnail": thumbnail,
        "status": status,
        "error": error,
        "error_stage": error_stage,
    }


def write_output(
    out: Path,
    shards: Mapping[str, Sequence[dict[str, Any]]],
    *,
    done: Sequence[str] | None = None,
    listed: Sequence[str] = (),
    source: str = "/data/corpus",
    config: Config | None = None,
    wall_seconds: Mapping[str, float] | None = None,
    stage_seconds: Mapping[str, Mapping[str, float]] | None = None,
    row_group_size: int | None = None,
) -> dict[str, Any]:
    """Writes the output folder ``out`` and returns its manifest.

    ``shards``: rows of each part file (see :func:`row`). ``done``: the shards that get a
    completion record (default all; the others are leftovers of an interrupted run). ``listed``:
    more shard names in the manifest that have no part file yet. Completion records count the
    rows and statuses of their part; wall and stage seconds default to 2.0 and STAGE_SECONDS.
    """
    cfg = config or Config(thumbnail=64)
    chash = cfg.config_hash()
    out.mkdir(parents=True, exist_ok=True)
    (out / DONE_DIR).mkdir(exist_ok=True)
    names = [*shards, *listed]
    manifest = {
        "format": "mmcore-job",
        "version": 1,
        "mmcore_version": mmcore.__version__,
        "config": cfg.to_dict(),
        "config_hash": chash,
        "source": source,
        "shards": [
            {"name": n, "kind": "files", "source_uri": f"file://{source}", "records": len(shards.get(n, ()))}
            for n in names
        ],
    }
    (out / MANIFEST).write_text(json.dumps(manifest))
    meta = {b"mmcore_version": mmcore.__version__.encode(), b"mmcore_config_hash": chash.encode()}
    for name, rows in shards.items():
        table = pa.Table.from_pylist(list(rows), schema=SCHEMA).replace_schema_metadata(meta)
        pq.write_table(table, shard_path(out, name), row_group_size=row_group_size)
    for name in shards if done is None else done:
        rows = shards[name]
        record = {
            "shard": name,
            "rows": len(rows),
            "counts": dict(Counter(r["status"] for r in rows)),
            "stage_seconds": dict((stage_seconds or {}).get(name, STAGE_SECONDS)),
            "wall_seconds": (wall_seconds or {}).get(name, 2.0),
            "config_hash": chash,
            "mmcore_version": mmcore.__version__,
            "finished_at": "2026-01-02T03:04:05+00:00",
        }
        done_path(out, name).write_text(json.dumps(record))
    return manifest


def write_clusters(
    out: Path, groups: Sequence[Sequence[tuple[str, int]]], singletons: Sequence[str] = (), name: str = "pdq"
) -> Path:
    """Writes ``OUT/dedup/clusters-<name>.parquet``: each group's first id is its representative
    (distance 0), the others carry the given distance; each singleton is a cluster of its own."""
    ids, cluster, rep, dist = [], [], [], []
    for c, members in enumerate([*groups, *([(s, 0)] for s in singletons)]):
        for k, (i, d) in enumerate(members):
            ids.append(i)
            cluster.append(c)
            rep.append(k == 0)
            dist.append(0 if k == 0 else d)
    table = pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "cluster_id": pa.array(cluster, pa.int64()),
            "is_representative": pa.array(rep, pa.bool_()),
            "distance_to_representative": pa.array(dist, pa.int32()),
        }
    )
    path = out / "dedup" / f"clusters-{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path
