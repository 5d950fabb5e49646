"""Ray Data adapter: the :class:`~mmcore.jobs.processor.Processor` over a ``ray.data.Dataset``.

``process(ds, config)`` maps a dataset of images to rows of :data:`mmcore.jobs.SCHEMA` with
``map_batches`` and a pool of actors, each holding one Processor (built in the actor from the
config as a plain dict, never pickled from the driver). Needs Ray (``pip install 'mmcore[ray]'``).

Input datasets:

- :func:`read_images` (a folder or glob of image files, listed as ``mmcore run`` lists them): the
  actors read the files by path, and the rows equal ``mmcore run``'s, ids included. Twice as fast
  as ``read_binary_files`` here, where every image also went through Ray's object store;
- ``ray.data.read_binary_files(paths, include_paths=True)``: columns ``bytes`` and ``path``; the
  id is the path;
- ``ray.data.read_parquet(...)`` with a bytes (binary) or a path (string) column, found by name and
  type as ``mmcore run`` finds them (:func:`mmcore.jobs.sources.parquet_columns`; a Hugging Face
  image struct gives its ``bytes``); the id is the ``id`` or ``key`` column (a binary key as its
  UTF-8 text, as in ``mmcore run``), else the path column. Ray does not say which file and row a
  record came from, so a null id becomes ``sha256:<hex>`` of the record's bytes (else its path)
  where ``mmcore run`` writes ``<file>#<row>``;
- any dataset with ``id`` and ``bytes`` or ``path`` (optionally ``source_uri`` and ``member``).

CPU reservation rule (a pool that holds every CPU starves the read and write tasks, and the job
hangs: seen with 2 actors on 2 CPUs): on each node the actors may reserve ``cpus - 1`` of its
CPUs (``cpus / 2`` on a one-CPU node, none on a node without CPUs, such as a head node started
with ``num_cpus=0``), so every node keeps a CPU for the read and write tasks that run there; the
budget is the sum over the nodes. (A rule over the whole cluster left one CPU for the reads of
every node: on 4 nodes of 16 CPUs, 63 actors and one read task at a time.) By default each actor
reserves ``num_cpus = min(1, the largest node budget)`` and there are as many actors as fit in the
node budgets (at least one; with GPUs, no more than ``gpus // num_gpus``); the decode / hash
threads of each actor's Processor (``config.workers``, when 0) are the cluster's CPUs shared
between the actors, so the cores are busy although the reservation is small. A reservation given
explicitly that breaks the rule is logged as a warning, not refused (an autoscaling cluster may
grow).
"""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .jobs.config import Config
from .jobs.processor import Processor, id_text
from .jobs.sources import image_files, parquet_columns

try:
    import ray
    import ray.data
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("mmcore.ray needs Ray: pip install 'mmcore[ray]' (ray[data]>=2.40)") from e

__all__ = ["input_columns", "process", "read_images", "reservation"]

log = logging.getLogger(__name__)

_PASS = ("source_uri", "member")


def input_columns(schema: pa.Schema) -> list[tuple[str, str]]:
    """How the columns of ``schema`` feed the Processor: ``(dataset column, input column)`` pairs
    for ``id``, ``bytes`` and / or ``path``, and ``source_uri`` / ``member`` when present (a
    column may feed two inputs: a path is also the id when there is no id column).

    Raises ValueError when there is no bytes (binary) or path (string) column, or when there is no
    id: a bytes column needs an ``id`` or ``key`` column, or a ``path`` column beside it (as
    ``read_binary_files(..., include_paths=True)`` gives).

    >>> import pyarrow as pa
    >>> input_columns(pa.schema([("bytes", pa.binary()), ("path", pa.string())]))
    [('path', 'id'), ('bytes', 'bytes'), ('path', 'path')]
    >>> input_columns(pa.schema([("bytes", pa.large_binary()), ("path", pa.large_string())]))
    [('path', 'id'), ('bytes', 'bytes'), ('path', 'path')]
    """
    names = schema.names
    id_col, by, path_col = parquet_columns(schema)
    if by is None and path_col is None:
        raise ValueError(
            f"the dataset needs a bytes (binary) or a path (string) column; it has "
            f"{[f'{n}: {schema.field(n).type}' for n in names]}"
        )
    ptype = schema.field("path").type if "path" in names else None
    if (
        path_col is None
        and ptype is not None
        and (pa.types.is_string(ptype) or pa.types.is_large_string(ptype))
    ):
        path_col = "path"  # read_binary_files(include_paths=True): bytes plus the file's path
    id_col = id_col or path_col
    if id_col is None:
        raise ValueError(
            f"the dataset has image bytes ({by!r}) but no id: add an 'id' or 'key' column, or read "
            f"files with ray.data.read_binary_files(paths, include_paths=True); columns {names}"
        )
    pairs = [(id_col, "id")]
    pairs += [(c, dst) for c, dst in ((by, "bytes"), (path_col, "path")) if c is not None]
    return pairs + [(c, c) for c in _PASS if c in names]


def reservation(
    cpus: float | Sequence[float],
    gpus: float = 0.0,
    *,
    num_gpus: float = 0.0,
    num_cpus: float | None = None,
    concurrency: int | None = None,
) -> tuple[int, float, int]:
    """``(concurrency, num_cpus per actor, Processor threads per actor)`` for a cluster whose nodes
    have ``cpus`` CPUs (one number: a single node) and which has ``gpus`` GPUs, by the rule of the
    module doc: every node keeps a CPU free for the read and write tasks. Values given are kept (a
    warning is logged when they leave no CPU free); the others are chosen.

    >>> reservation(2)
    (1, 1, 2)
    >>> reservation(16)
    (15, 1, 1)
    >>> reservation([0, 16, 16, 16, 16])  # a head node without CPUs and 4 workers
    (60, 1, 1)
    >>> reservation(8, 2, num_gpus=0.5)
    (4, 1, 2)
    """
    nodes = [float(cpus)] if isinstance(cpus, (int, float)) else [float(c) for c in cpus]
    total = sum(c for c in nodes if c > 0)
    if total <= 0:
        raise ValueError(f"the cluster has no CPUs ({cpus}); start Ray with num_cpus >= 1")
    if num_gpus < 0 or (num_gpus > 0 and gpus < num_gpus):
        raise ValueError(f"num_gpus={num_gpus} per actor, but the cluster has {gpus} GPUs")
    budgets = [c - 1 if c >= 2 else c / 2 for c in nodes if c > 0]
    budget = sum(budgets)
    per = num_cpus if num_cpus is not None else min(1, max(budgets))
    if per < 0:
        raise ValueError(f"num_cpus must be >= 0, got {num_cpus}")
    if concurrency is None:
        fit = sum(math.floor(b / per + 1e-9) for b in budgets) if per > 0 else math.floor(total)
        concurrency = max(1, fit)
        if num_gpus > 0:
            concurrency = max(1, min(concurrency, math.floor(gpus / num_gpus)))
    elif concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if concurrency * per > budget + 1e-9:
        log.warning(
            "%d actors x %g CPUs reserve more than the %g of %g CPUs that leave one free on each node "
            "for reading and writing: the job may stall",
            concurrency,
            per,
            budget,
            total,
        )
    threads = max(1, math.floor(total / concurrency))
    return concurrency, per, threads


class _ProcessBatches:
    """The map_batches callable: one Processor per actor, built from a plain dict."""

    def __init__(self, config: dict[str, Any], threads: int) -> None:
        cfg = Config.from_dict(config)
        if cfg.workers == 0:
            cfg = cfg.replace(workers=threads)
        self._processor = Processor(cfg)
        self._columns: dict[pa.Schema, list[tuple[str, str]]] = {}

    def __call__(self, batch: pa.Table) -> pa.Table:
        pairs = self._columns.get(batch.schema)
        if pairs is None:
            pairs = self._columns[batch.schema] = input_columns(batch.schema)
        cols = {dst: batch.column(src) for src, dst in pairs}
        if cols["id"].null_count:
            cols["id"] = _fill_ids(cols["id"], cols.get("bytes"), cols.get("path"))
        out = self._processor(pa.table(cols))
        return pa.Table.from_batches([out])


def read_images(source: str, *, override_num_blocks: int | None = None) -> ray.data.Dataset:
    """The image files of a folder, a glob or a file, as ``mmcore run`` finds them (images told by
    content, sidecars skipped, links followed once), as a dataset of ``id``, ``path``,
    ``source_uri`` and ``member``, with ``mmcore run``'s ids (the path relative to the source
    folder) and order, for :func:`process`: the actors read each file by its path (so the files
    must be readable on every node: a shared file system), and only the paths go through Ray's
    object store.

    ``override_num_blocks``: the dataset's blocks (default: one per 1,000 files, at least four per
    CPU of the cluster, at most one per file), the units the actors take work in.

    Raises FileNotFoundError for a source that does not exist and ValueError for one holding tar
    or Parquet files (``mmcore run`` reads their records, this listing would leave them out: read
    Parquet files with ``ray.data.read_parquet``). Starts Ray (``ray.init()``) when it is not
    running.

    >>> mmcore.ray.process(mmcore.ray.read_images("/data/images")).write_parquet("out/")  # doctest: +SKIP
    """
    if override_num_blocks is not None and override_num_blocks < 1:
        raise ValueError(f"override_num_blocks must be >= 1, got {override_num_blocks}")
    table, _ = image_files(source)
    n = table.num_rows
    if override_num_blocks is None:
        if not ray.is_initialized():
            ray.init()
        cpus = float(ray.cluster_resources().get("CPU", 1.0))  # type: ignore[no-untyped-call]
        override_num_blocks = max(math.ceil(n / 1000), 4 * math.ceil(cpus))
    blocks = max(1, min(override_num_blocks, n))
    step = math.ceil(n / blocks) if n else 1
    parts = [table.slice(at, step) for at in range(0, n, step)] or [table]
    return ray.data.from_arrow(parts)


def _fill_ids(ids: Any, data: Any, paths: Any) -> pa.Array:
    """The id column with each null replaced: Ray does not say which file and row a record came
    from (mmcore run's ``<file>#<row>``), so a null id becomes ``sha256:<hex>`` of the record's
    bytes, else its path (else ``<null id, no data>#<uuid>``), so that the record still gets its row."""
    if data is not None and pa.types.is_struct(data.type):
        data = pc.struct_field(data, "bytes")
    blobs = data.to_pylist() if data is not None else [None] * len(ids)
    where = paths.to_pylist() if paths is not None else [None] * len(ids)
    out: list[str] = []
    for i, v in enumerate(ids.to_pylist()):
        if v is not None:
            v = id_text(v)
        elif (blob := blobs[i]) is not None:
            v = "sha256:" + hashlib.sha256(blob).hexdigest()
        else:
            # Nothing names it: an id of its own (a batch row number repeats across batches).
            v = where[i] if where[i] is not None else f"<null id, no data>#{uuid.uuid4().hex}"
        out.append(v)
    return pa.array(out, pa.string())


def process(
    ds: ray.data.Dataset,
    config: Config | dict[str, Any] | None = None,
    *,
    num_gpus: float = 0.0,
    num_cpus: float | None = None,
    concurrency: int | None = None,
    batch_size: int | None = None,
) -> ray.data.Dataset:
    """The rows of :data:`mmcore.jobs.SCHEMA` for the images of ``ds`` (lazy, one row per input
    row): a ``map_batches`` over a fixed pool of ``concurrency`` actors, each reserving
    ``num_cpus`` CPUs and ``num_gpus`` GPUs (fractions share a GPU) and holding one Processor.
    Unset values follow the reservation rule of the module doc (:func:`reservation`);
    ``batch_size`` defaults to ``config.batch_rows()`` for the actors' threads. A bad record is a
    row with its status and never fails a task. Starts Ray (``ray.init()``) when it is not running.

    Raises ValueError for a value out of range, and for a dataset without usable columns (see
    :func:`input_columns`): here when its schema is known without reading (Parquet, in-memory
    data), else when the first batch reaches an actor (the job then fails with that error).

    >>> import ray, mmcore.ray                                                 # doctest: +SKIP
    >>> ds = ray.data.read_binary_files("/data/images", include_paths=True)  # doctest: +SKIP
    >>> mmcore.ray.process(ds, {"thumbnail": 256}).write_parquet("out/")     # doctest: +SKIP
    """
    if isinstance(config, dict):
        config = Config.from_dict(config)
    config = config if config is not None else Config()
    schema = ds.schema(fetch_if_missing=False)  # never runs the dataset just to check it
    if schema is not None:
        arrow = schema.base_schema
        if not isinstance(arrow, pa.Schema):
            arrow = pa.schema(list(zip(schema.names, schema.types, strict=True)))
        input_columns(arrow)
    if not ray.is_initialized():
        ray.init()
    res: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]  # ray leaves it untyped
    nodes = [float(n["Resources"].get("CPU", 0.0)) for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
    pool, per, threads = reservation(
        nodes or float(res.get("CPU", 0.0)),
        float(res.get("GPU", 0.0)),
        num_gpus=num_gpus,
        num_cpus=num_cpus,
        concurrency=concurrency,
    )
    return ds.map_batches(
        _ProcessBatches,
        fn_constructor_kwargs={"config": config.to_dict(), "threads": threads},
        batch_format="pyarrow",
        batch_size=batch_size or config.batch_rows(threads),
        compute=ray.data.ActorPoolStrategy(size=pool),
        num_cpus=per,
        num_gpus=num_gpus or None,
    )
