"""mmcore on Apache Spark: :func:`process` (images in, :data:`mmcore.jobs.SCHEMA` rows out, through
``mapInArrow``), :func:`dedup` (distributed near-duplicate clusters equal to ``mmcore dedup``'s) and
the ``mmcore_wds`` data source for WebDataset tar shards. Needs ``pip install 'mmcore[spark]'``
(pyspark 4, Java 17) on the driver and on every executor; see ``docs/spark_ray.md``.

>>> from pyspark.sql import SparkSession                               # doctest: +SKIP
>>> import mmcore.spark as ms                                          # doctest: +SKIP
>>> spark = SparkSession.builder.master("local[2]").getOrCreate()      # doctest: +SKIP
>>> rows = ms.process(spark.read.format("binaryFile").load("/data/images"))  # doctest: +SKIP
>>> clusters = ms.dedup(rows, hash="pdq", threshold=31)                # doctest: +SKIP
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

try:
    from pyspark.errors import AnalysisException
    from pyspark.sql import Column, DataFrame, SparkSession, Window
    from pyspark.sql import functions as F  # noqa: N812  (Spark's own idiom)
    from pyspark.sql import types as T  # noqa: N812
    from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
    from pyspark.storagelevel import StorageLevel
except ImportError as e:  # pragma: no cover - depends on the installation
    raise ImportError(f"mmcore.spark needs pyspark 4 and Java 17: pip install 'mmcore[spark]' ({e})") from e

from . import _core
from .hashing import _popcount64
from .jobs.config import DEFAULT_MAX_BYTES, Config
from .jobs.dedup import _BITS, _check_args, _check_min_quality
from .jobs.processor import SOURCE_ERROR, Processor, failure_batch, id_text, path_to_uri, uri_to_path
from .jobs.schema import OK_STATUSES, output_schema
from .jobs.sources import (
    Refused,
    Shard,
    _resolve,
    id_prefix,
    image_files,
    parquet_columns,
    plan,
    require_source,
)
from .search import HammingIndex, cluster

__all__ = ["WDS_FORMAT", "dedup", "process", "read_images", "register_data_source", "spark_schema"]

#: The format name of the WebDataset tar data source (:func:`register_data_source`).
WDS_FORMAT = "mmcore_wds"
_WDS_SCHEMA = "id string, bytes binary, source_uri string, member string, source_error string"

# ------------------------------------------------------------------------------------------------
# Schema


def _spark_type(t: pa.DataType) -> T.DataType:
    if pa.types.is_string(t):
        return T.StringType()
    if pa.types.is_binary(t) or pa.types.is_fixed_size_binary(t):
        return T.BinaryType()  # Spark has no fixed-size binary: sha256 and pdq are 32-byte binary
    ints = {8: T.ByteType(), 16: T.ShortType(), 32: T.IntegerType(), 64: T.LongType()}
    if pa.types.is_signed_integer(t):
        return ints[t.bit_width]
    raise TypeError(f"no Spark type for {t}")  # pragma: no cover - SCHEMA holds none


def spark_schema(hash_size: int = 8) -> T.StructType:
    """The Spark schema of :func:`process`'s output: :data:`mmcore.jobs.SCHEMA` with int64 hashes
    (imagehash's bits as signed), binary sha256 / pdq (32 bytes), orientation as ByteType and
    pdq_quality as ShortType. At a ``hash_size`` over 8 (``Config.hash_size``) phash, dhash and
    ahash are binary too (big-endian, ``ceil(hash_size ** 2 / 8)`` bytes).

    >>> spark_schema()["pdq"].dataType, spark_schema()["orientation"].dataType
    (BinaryType(), ByteType())
    >>> spark_schema(16)["phash"].dataType
    BinaryType()
    """
    schema = output_schema(hash_size)
    return T.StructType([T.StructField(f.name, _spark_type(f.type), f.nullable) for f in schema])


def _out_schema(hash_size: int) -> pa.Schema:
    """The output schema as Spark's Arrow expects it back from mapInArrow (no fixed-size binary)."""
    return pa.schema(
        [
            pa.field(f.name, pa.binary() if pa.types.is_fixed_size_binary(f.type) else f.type, f.nullable)
            for f in output_schema(hash_size)
        ]
    )


# ------------------------------------------------------------------------------------------------
# process

#: One Processor per Python worker and config: built on first use inside the worker, never
#: pickled from the driver (the native Context and thread pools stay where they were made).
_PROCESSORS: dict[str, Processor] = {}


def _processor(config: dict[str, Any]) -> Processor:
    key = json.dumps(config, sort_keys=True)
    proc = _PROCESSORS.get(key)
    if proc is None:
        proc = _PROCESSORS[key] = Processor(Config.from_dict(config))
    return proc


def _process_batch(proc: Processor, batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
    """SCHEMA rows for one input batch; rows the source refused (``source_error`` set) become
    SOURCE_ERROR rows without being processed."""
    names = batch.schema.names
    if "source_error" in names:
        err = batch.column("source_error")
        refused = err.is_valid()
        if refused.true_count:
            r = batch.filter(refused)
            yield failure_batch(
                [str(v) for v in r.column("id").to_pylist()],
                r.column("source_uri").to_pylist(),
                r.column("member").to_pylist(),
                SOURCE_ERROR,
                [str(v) for v in r.column("source_error").to_pylist()],
                "source",
                proc.config,
            )
            batch = batch.filter(pc.invert(refused))
        batch = batch.drop_columns(["source_error"])
    if batch.num_rows:
        yield proc(batch)


def _map_process(
    config: dict[str, Any], root: str, batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """The function ``mapInArrow`` runs: batches of (id, bytes | path, source_uri, member
    [, source_error, __raw, __f]) cut to ``Config.batch_rows()`` rows, given mmcore run's ids,
    URIs and paths (:func:`_normalise`), processed, cast to Spark's types."""
    proc = _processor(config)
    size = proc.config.batch_rows()
    schema = _out_schema(proc.config.hash_size)
    for big in batches:
        for at in range(0, big.num_rows, size):
            for out in _process_batch(proc, _normalise(big.slice(at, size), root)):
                yield pa.RecordBatch.from_arrays(
                    [c.cast(f.type) for c, f in zip(out.columns, schema, strict=True)], schema=schema
                )


def _hadoop_path(uri: str) -> str | None:
    """The local path of a Hadoop ``file:`` URI as ``_metadata.file_path`` and ``inputFiles()``
    give them (percent-encoded); None for another scheme."""
    try:
        return uri_to_path(uri) if uri.startswith("file:") else None
    except ValueError:  # file://host/...
        return None


def _raw_uri(path: str) -> str:
    """``source_uri`` of a binaryFile row: Spark's ``path`` is ``file:`` and the path as it is (not
    percent-encoded), which becomes mmcore run's RFC 8089 URI; other schemes stay as they are."""
    if not path.startswith("file:"):
        return path
    rest = path[len("file:") :]
    if rest.startswith("//"):  # file://host/x or file:///x
        host, _, tail = rest[2:].partition("/")
        if host not in ("", "localhost"):
            return path
        rest = "/" + tail
    return path_to_uri(rest)


def _local(p: str | None, here: str | None) -> str | None:
    """A path column's value as the Processor reads it: ``file:`` URIs as they are (the Processor
    decodes them), a relative path joined to the Parquet file's folder (as mmcore run)."""
    return p if p is not None and p.startswith("file:") else _resolve(p, here)


def _normalise(batch: pa.RecordBatch, root: str) -> pa.RecordBatch:
    """mmcore run's ids, URIs and paths on the executor (Spark's SQL has no percent-decoding):

    - binaryFile (``__raw``): ``source_uri`` is the file's RFC 8089 URI;
    - a file scan (``__f``, Hadoop's encoded URI): ``source_uri`` likewise, a null id becomes
      ``<file path relative to root>#<row>``, relative paths are relative to the file's folder."""
    cols = {name: batch.column(name) for name in batch.schema.names}
    if "__raw" in cols:
        raw = cols.pop("__raw").to_pylist()
        cols["source_uri"] = pa.array([None if r is None else _raw_uri(r) for r in raw], pa.string())
    if "__f" in cols:
        uris = cols.pop("__f").to_pylist()
        files = [None if u is None else _hadoop_path(u) for u in uris]
        cols["source_uri"] = pa.array(
            [u if f is None else path_to_uri(f) for u, f in zip(uris, files, strict=True)], pa.string()
        )
        ids = cols["id"].to_pylist()
        if None in ids:
            rows = cols["member"].to_pylist()
            named = [u if f is None else id_prefix(f, root) for u, f in zip(uris, files, strict=True)]
            cols["id"] = pa.array(
                [
                    id_text(v) if v is not None else (f"{w}#{r}" if w is not None else None)
                    for v, w, r in zip(ids, named, rows, strict=True)
                ],
                pa.string(),
            )
        if "path" in cols:
            ps = cols["path"].to_pylist()
            cols["path"] = pa.array(
                [
                    _local(p, None if f is None else os.path.dirname(f))
                    for p, f in zip(ps, files, strict=True)
                ],
                pa.string(),
            )
    return pa.RecordBatch.from_pydict(cols)


def _arrow_type(t: T.DataType) -> pa.DataType:
    """The Arrow type parquet_columns judges a Spark column by."""
    if isinstance(t, T.BinaryType):
        return pa.binary()
    if isinstance(t, T.StringType):
        return pa.string()
    if isinstance(t, T.StructType):  # a Hugging Face image column: struct<bytes, path>
        return pa.struct([(f.name, _arrow_type(f.dataType)) for f in t.fields])
    return pa.null()


def _inputs(df: DataFrame) -> tuple[DataFrame, str]:
    """``df`` as the Processor's input columns (id, bytes | path, source_uri, member
    [, source_error]) plus what :func:`_normalise` finishes on the executor, and the folder that
    ids of a file scan are relative to (the deepest folder holding every input file)."""
    names = df.columns
    null = F.lit(None).cast("string")
    if {"path", "content", "length", "modificationTime"} <= set(names):  # binaryFile
        path = F.col("path")
        return df.select(
            path.alias("id"),
            F.col("content").alias("bytes"),
            null.alias("source_uri"),
            null.alias("member"),
            path.alias("__raw"),
        ), ""
    if {"id", "bytes", "source_uri", "member", "source_error"} <= set(names):  # mmcore_wds
        return df.select("id", "bytes", "source_uri", "member", "source_error"), ""
    arrow = pa.schema([(f.name, _arrow_type(f.dataType)) for f in df.schema.fields])
    id_col, by, path_col = parquet_columns(arrow)
    if by is None and path_col is None:
        raise ValueError(
            f"the DataFrame needs a binary (image bytes) or a string (path) column; it has {names} "
            "(or read files with spark.read.format('binaryFile') or tar shards with format 'mmcore_wds')"
        )
    cols: list[Column] = []
    # mmcore run's ids and members for a Parquet file: <file path>#<row>, the row number, from the
    # scan's hidden _metadata column. Looked at only where there are input files: a select that
    # fails is logged by Spark as an ERROR with a Java stack trace, even when it is caught.
    fields: set[str] = set()
    files = df.inputFiles()  # listed once: on a large corpus the listing itself takes time
    if files:
        try:
            meta_type = df.select("_metadata").schema[0].dataType
            fields = set(meta_type.fieldNames()) if isinstance(meta_type, T.StructType) else set()
        except AnalysisException:
            fields = set()
    file_scan = {"file_path", "row_index"} <= fields
    if file_scan:
        meta = df.select(
            "*", F.col("_metadata.file_path").alias("__f"), F.col("_metadata.row_index").alias("__r")
        )
    else:  # ids need a column
        if id_col is None:
            what = (
                "a scan of files whose rows Spark does not number (only Parquet scans have a row index)"
                if "file_path" in fields
                else "not a file scan"
            )
            raise ValueError(
                f"the DataFrame has no 'id' or 'key' column and is {what} ({names}): add an id column "
                "(e.g. with monotonically_increasing_id())"
            )
        meta = df
    root = ""
    if file_scan:
        folders = {os.path.dirname(p) for p in map(_hadoop_path, files) if p is not None}
        root = os.path.commonpath(sorted(folders)) if folders else ""
    row = F.col("__r").cast("string") if file_scan else null
    if id_col is None:
        cols.append(null.alias("id"))  # <file path>#<row> on the executor
    elif isinstance(df.schema[id_col].dataType, (T.BinaryType, T.StringType)):
        cols.append(F.col(id_col).alias("id"))  # a binary key: its UTF-8 text, as mmcore run
    else:
        cols.append(F.col(id_col).cast("string").alias("id"))
    if by is not None:
        bytes_col = F.col(by + ".bytes") if isinstance(df.schema[by].dataType, T.StructType) else F.col(by)
        cols.append(bytes_col.alias("bytes"))
    else:
        cols.append(F.col(str(path_col)).alias("path"))
    cols += [null.alias("source_uri"), row.alias("member")]
    if file_scan:
        cols.append(F.col("__f"))
    return meta.select(*cols), root


def process(df: DataFrame, config: Config | dict[str, Any] | None = None) -> DataFrame:
    """Decode and hash the images of ``df`` on the executors: one output row per input row, with
    the columns of :func:`spark_schema` (those of ``mmcore run``). Lazy, like any DataFrame.

    ``df`` is one of:

    - ``spark.read.format("binaryFile").load(...)``: id = Spark's ``path``, source_uri = that path
      as a ``file:///`` URI (other schemes unchanged), member null;
    - a table with a binary column (``bytes``, ``image``, ``jpg``, ... or the first binary one) or a
      string path column (``path``, ``uri``, ...; local paths or ``file://`` URIs readable on every
      executor), chosen as ``mmcore run`` chooses them in Parquet files
      (:func:`mmcore.jobs.sources.parquet_columns`); id = its ``id`` / ``key`` column, else, for a
      file scan, ``<file name>#<row>`` with member = the row number, as ``mmcore run`` writes them;
      relative paths are relative to the Parquet file's folder;
    - ``spark.read.format("mmcore_wds").load(...)`` (:func:`register_data_source`): tar members,
      where the members the source refused become SOURCE_ERROR rows.

    ``config``: a :class:`mmcore.jobs.Config` or its dict (``workers`` 0 becomes
    ``spark.task.cpus``: each task's threads). It travels as a plain dict; each Python worker builds
    one Processor per config on first use. A bad record is a row with its status; it never fails
    the task. A null in a Parquet file's id column falls back to ``<file name>#<row>`` as in
    ``mmcore run``; on a DataFrame that is not a file scan a null id is misuse, and the
    Processor's ValueError fails the task. Raises ValueError for a DataFrame with no image column.
    ``device="gpu"`` hashes JPEGs on each executor's GPU (the same rows; see docs/spark_ray.md for
    GPU resources per task): a worker without a usable GPU fails its task with the reason.
    """
    cfg = config if isinstance(config, Config) else Config.from_dict(config or {})
    if cfg.workers == 0:
        cpus = df.sparkSession.conf.get("spark.task.cpus", "1") or "1"
        cfg = cfg.replace(workers=max(int(cpus), 1))
    inputs, root = _inputs(df)
    fn = functools.partial(_map_process, cfg.to_dict(), root)
    return inputs.mapInArrow(fn, spark_schema(cfg.hash_size))


# ------------------------------------------------------------------------------------------------
# The WebDataset tar data source


class _WdsReader(DataSourceReader):
    """Holds the source path, not its tars: PySpark pickles the reader into the read function
    before it asks for the partitions, and that function goes with every task (100,000 tars would
    be ~10 MB unpickled by each of 100,000 tasks). The tars are listed by ``partitions``, and each
    partition carries its own."""

    def __init__(self, path: str, batch_size: int, max_bytes: int) -> None:
        self.path, self.batch_size, self.max_bytes = path, batch_size, max_bytes

    def partitions(self) -> list[InputPartition]:
        shards, _ = plan(self.path, 1 << 30)
        tars = [(s.source_uri, s.root) for s in shards if s.kind == "tar"]  # (URI, root) per tar
        if not tars:
            raise FileNotFoundError(f"no .tar file found at {self.path!r}")
        return [InputPartition(t) for t in tars]

    def read(self, partition: InputPartition) -> Iterator[tuple[Any, ...]]:
        uri, root = partition.value
        shard = Shard("tar", "tar", str(uri), str(root))
        for b in shard.batches(self.batch_size, max_bytes=self.max_bytes):
            if isinstance(b, Refused):
                yield (b.id, None, b.source_uri, b.member, b.error)
                continue
            cols = [b.column(c).to_pylist() for c in ("id", "bytes", "source_uri", "member")]
            for rid, data, uri, member in zip(*cols, strict=True):
                yield (rid, data, uri, member, None)


class WdsDataSource(DataSource):
    """WebDataset tar shards as rows (id, bytes, source_uri, member, source_error), one partition
    per tar, read by :mod:`mmcore.jobs.sources` exactly as ``mmcore run`` reads them (ids
    ``<tar path relative to the source>/<member>``, sidecars skipped, nothing extracted to disk).
    Members with an absolute path, a ``..`` component or a link type, and an unreadable or
    truncated tar, are rows with null bytes and the reason in ``source_error``; :func:`process`
    turns them into SOURCE_ERROR rows. Option ``path`` (``load(path)``): a tar, a folder (searched
    recursively) or a glob, read on the driver to list the tars, which every executor must see at
    the same path."""

    @classmethod
    def name(cls) -> str:
        return WDS_FORMAT

    def schema(self) -> str:
        return _WDS_SCHEMA

    def reader(self, schema: T.StructType) -> DataSourceReader:
        path = self.options.get("path")
        if not path:
            raise ValueError(f"spark.read.format({WDS_FORMAT!r}).load(PATH): give a tar, a folder or a glob")
        require_source(str(path))  # at once, as before: a clear error for a missing source
        max_bytes = int(self.options.get("maxBytes", str(DEFAULT_MAX_BYTES)))
        return _WdsReader(str(path), int(self.options.get("batchSize", "64")), max_bytes)


def read_images(spark: SparkSession, source: str, *, num_partitions: int | None = None) -> DataFrame:
    """The image files of a folder, a glob or a file, listed on the driver as ``mmcore run`` lists
    them (images told by content, sidecars skipped, links followed once), as a DataFrame of ``id``,
    ``path``, ``source_uri`` and ``member`` for :func:`process`: its rows then equal ``mmcore
    run``'s, ids included (the path relative to the source folder; ``binaryFile`` gives the full
    path), and the executors read each file by its path (the files must be readable on every
    executor: a shared file system), so the image bytes do not pass through the JVM.

    ``num_partitions``: the tasks (default: Spark's default parallelism, one per core of the
    cluster; more, smaller tasks balance images of very different sizes better). Raises
    FileNotFoundError for a source that does not exist and ValueError for one holding tar or
    Parquet files (``mmcore run`` reads their records, this listing would leave them out: read the
    tars with the ``mmcore_wds`` data source and the Parquet files with ``spark.read.parquet``).

    >>> rows = ms.process(ms.read_images(spark, "/data/images"))          # doctest: +SKIP
    """
    if num_partitions is not None and num_partitions < 1:
        raise ValueError(f"num_partitions must be >= 1, got {num_partitions}")
    table, _ = image_files(source)
    df = spark.createDataFrame(table, schema="id string, path string, source_uri string, member string")
    return df.repartition(num_partitions) if num_partitions is not None else df


def register_data_source(spark: SparkSession) -> None:
    """Make ``spark.read.format("mmcore_wds").load(path)`` read WebDataset tars
    (:class:`WdsDataSource`)."""
    spark.dataSource.register(WdsDataSource)


# ------------------------------------------------------------------------------------------------
# dedup


def _count_within(w: int, r: int) -> int:
    """Codes of ``w`` bits within Hamming distance ``r`` of one code."""
    return sum(math.comb(w, k) for k in range(min(r, w) + 1))


def _band_widths(bits: int, m: int) -> list[int]:
    return [bits // m + (1 if k < bits % m else 0) for k in range(m)]


def choose_bands(bits: int, threshold: int, n: int) -> int:
    """The number of bands ``m`` that :func:`dedup` uses for ``n`` codes: the one with the fewest
    estimated rows, ``n * sum(V_k)`` probe rows (``V_k``: codes within ``threshold // m`` of a band
    value) plus ``n**2 / 2 * sum(V_k / 2**w_k)`` candidate pairs for uniformly spread codes, among
    the ``m`` whose bands fit in 63 bits.

    >>> choose_bands(256, 31, 1000), choose_bands(256, 31, 1_000_000), choose_bands(64, 10, 100_000)
    (32, 16, 4)
    >>> choose_bands(256, 31, 0)  # no codes: the cheapest probes (with n = 0 every m cost 0)
    32
    """
    n = max(n, 2)  # 0 or 1 code: no pairs, but each probe task still builds its masks
    best: tuple[float, int] | None = None
    for m in range(math.ceil(bits / 63), bits + 1):
        ws, r = _band_widths(bits, m), threshold // m
        probes = sum(_count_within(w, r) for w in ws)
        cost = n * probes + n * n / 2 * sum(_count_within(w, r) / 2.0**w for w in ws)
        if best is None or cost < best[0]:
            best = (cost, m)
    assert best is not None
    return best[1]


def _masks(w: int, r: int) -> npt.NDArray[np.uint64]:
    """Every ``w``-bit XOR mask of weight <= ``r``."""
    out = [sum(1 << b for b in c) for k in range(min(r, w) + 1) for c in itertools.combinations(range(w), k)]
    return np.array(out, dtype=np.uint64)


def _words(batch: pa.RecordBatch, bits: int) -> npt.NDArray[np.uint64]:
    """The codes of a batch (no nulls) as big-endian 64-bit words: (n, 1) for an int64 column (pHash),
    else (n, ceil(bits / 64)) from binary rows (PDQ; pHash at a hash_size over 8), each code's
    ``bits`` bits first (a row's leading zero bits dropped) and zeros after them: the bands cut
    bits 0..bits-1, and the zeros add nothing to a distance."""
    col = batch.column("code")
    if pa.types.is_integer(col.type):
        v: npt.NDArray[np.int64] = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.int64)
        return v.view(np.uint64).reshape(-1, 1)
    words = (bits + 63) // 64
    shift = 64 * words - bits
    raw = b"".join((int.from_bytes(c, "big") << shift).to_bytes(8 * words, "big") for c in col.to_pylist())
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(-1, words)


def _map_words(bits: int, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for b in batches:
        w = _words(b, bits).view(np.int64)
        cols = {"id": b.column("id"), "q": b.column("q")}
        cols.update({f"w{k}": pa.array(w[:, k]) for k in range(w.shape[1])})
        yield pa.RecordBatch.from_pydict(cols)


#: The most values one code probes in one band (a few bands at a high threshold would expand each
#: code to 10^8 rows: a task that ran minutes, then failed in Arrow).
_MAX_PROBES = 1 << 20

#: Rows per Arrow batch that _map_bands emits, about: a probe batch is codes x band neighbours.
_BAND_ROWS = 1 << 18


def _map_bands(
    spec: tuple[int, list[int], int, str, dict[int, npt.NDArray[np.int64]]], batches: Iterator[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    """(band, key, exact, id, words) rows of each code and band: ``which`` "index" the band value
    (exact), "probe" every value within the band radius of it (exact on the value itself), both
    without the keys in ``hot`` (band -> sorted keys); "hot" the probe rows with those keys only."""
    n_words, widths, r, which, hot = spec
    masks = [_masks(w, r) if which != "index" else np.zeros(1, np.uint64) for w in widths]
    step = max(1, _BAND_ROWS // max(len(mk) for mk in masks))  # rows out per batch stay bounded
    for b in (big.slice(at, step) for big in batches for at in range(0, big.num_rows, step)):
        words = np.stack([b.column(f"w{k}").to_numpy().view(np.uint64) for k in range(n_words)], axis=1)
        bits = np.unpackbits(words.astype(">u8").view(np.uint8).reshape(len(words), -1), axis=1)
        at = 0
        for k, w in enumerate(widths):
            key = np.zeros(len(words), dtype=np.uint64)
            for j in range(at, at + w):
                key = (key << np.uint64(1)) | bits[:, j].astype(np.uint64)
            at += w
            mk = masks[k]
            keys = (key[:, None] ^ mk[None, :]).reshape(-1).view(np.int64)
            rep = np.repeat(np.arange(len(words)), len(mk))
            exact = np.tile(mk == 0, len(words))
            if k in hot or which == "hot":
                inside = np.isin(keys, hot.get(k, np.empty(0, np.int64)))
                pick = np.flatnonzero(inside if which == "hot" else ~inside)
                keys, rep, exact = keys[pick], rep[pick], exact[pick]
            if len(keys) == 0:
                continue
            cols: dict[str, Any] = {
                "band": pa.array(np.full(len(keys), k, dtype=np.int32)),
                "key": pa.array(keys),
                "exact": pa.array(exact),
                "id": b.column("id").take(pa.array(rep)),
            }
            cols.update({f"w{i}": pa.array(words[rep, i].view(np.int64)) for i in range(n_words)})
            yield pa.RecordBatch.from_pydict(cols)


def _hot_keys(
    distinct: DataFrame, n: int, n_words: int, widths: list[int], r: int, schema: str
) -> dict[int, npt.NDArray[np.int64]]:
    """Per band, the keys (sorted) near a band value that many distinct codes share: a
    near-duplicate group of k distinct codes puts most of them on one band value, and the join
    would pair them k^2 / 2 times. A value is hot with more than _HOT_MIN codes and
    _HOT_FACTOR times the mean per value; its keys are those within the band radius of it (their
    groups hold its codes as probes). At most _HOT_VALUES values, the most shared first."""
    limit = max(_HOT_MIN, max(_HOT_FACTOR * n / 2.0**w for w in widths))
    exact = distinct.mapInArrow(functools.partial(_map_bands, (n_words, widths, r, "index", {})), schema)
    counts = exact.groupBy("band", "key").count().filter(F.col("count") > limit)
    top = counts.orderBy(F.col("count").desc()).limit(_HOT_VALUES).collect()
    hot: dict[int, list[npt.NDArray[np.int64]]] = {}
    for row in top:
        band, value = int(row["band"]), np.uint64(np.int64(row["key"]).view(np.uint64))
        near = (value ^ _masks(widths[band], r)).view(np.int64)
        hot.setdefault(band, []).append(near)
    return {band: np.unique(np.concatenate(v)) for band, v in hot.items()}


#: A band value is hot (_hot_keys) with more distinct codes than this, and than _HOT_FACTOR
#: times the mean per value; at most _HOT_VALUES of them.
_HOT_MIN = 64
_HOT_FACTOR = 16
_HOT_VALUES = 10_000


#: A band-key group whose exact x probe pairs pass this is clustered by mmcore.cluster, whose
#: work grows about linearly with a near-duplicate group's size, not with its pairs.
_GROUP_CLUSTER = 1 << 20
#: Pairs compared per numpy step (bounds the step's index and distance arrays).
_PAIR_STEP = 1 << 21


def _band_edges(spec: tuple[int, int, int], batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The edges (i, j) within ``threshold`` among the rows of one partition of :func:`_map_bands`'s
    output, sorted by (band, key): in each (band, key) group, every pair of an exact row (a code
    whose band value is the key) with another row of the group (a code within the band radius of
    it). Two codes within ``threshold`` meet that way in some band (pigeonhole), so every edge the
    clusters need is here; a pair may come more than once. Small groups are compared pair by pair
    in numpy; a large one (a near-duplicate group of thousands of distinct codes, whose pairs the
    old join listed one by one) is clustered whole, and leaves as a spanning forest."""
    n_words, threshold, whole = spec  # whole: _GROUP_CLUSTER as the driver has it
    pending: list[pa.RecordBatch] = []  # the rows of a group that may go on in the next batch
    last: tuple[int, int] = (0, 0)
    for b in batches:
        if b.num_rows == 0:
            continue
        band, key = b.column("band").to_numpy(), b.column("key").to_numpy()
        if pending and (int(band[0]), int(key[0])) != last:
            yield from _group_pairs(pending, n_words, threshold, whole)
            pending = []
        change = _group_starts(band, key)[1:]
        if change.size:
            yield from _group_pairs([*pending, b.slice(0, int(change[-1]))], n_words, threshold, whole)
            pending = [b.slice(int(change[-1]))]
        else:
            pending.append(b)
        last = (int(band[-1]), int(key[-1]))
    if pending:
        yield from _group_pairs(pending, n_words, threshold, whole)


def _group_starts(band: npt.NDArray[np.int32], key: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The rows where a (band, key) group starts, in rows sorted by (band, key); row 0 first."""
    return np.flatnonzero(np.r_[True, (band[1:] != band[:-1]) | (key[1:] != key[:-1])])


def _group_pairs(
    parts: list[pa.RecordBatch], n_words: int, threshold: int, whole: int
) -> Iterator[pa.RecordBatch]:
    """_band_edges for whole (band, key) groups, as a spanning forest of their rows: a dense group
    that spreads over neighbouring keys still meets (exact rows of one key x the rows of the key
    next to it) in pairs that grow with its square, and they are folded into the forest a step at
    a time instead of leaving as edges."""
    t = pa.Table.from_batches(parts).combine_chunks()
    n = t.num_rows
    band, key = t["band"].to_numpy(), t["key"].to_numpy()
    exact = t["exact"].to_numpy()
    words = np.stack([t[f"w{k}"].to_numpy().view(np.uint64) for k in range(n_words)], axis=1)
    starts = _group_starts(band, key)
    sizes = np.diff(np.r_[starts, n])
    forest = (np.empty(0, np.int64), np.empty(0, np.int64))  # (row, the first row of its component)

    def fold(a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]) -> None:
        nonlocal forest
        roots = np.asarray(
            _core.union_find(n, np.concatenate([forest[0], a]), np.concatenate([forest[1], b]))
        )
        joined = np.flatnonzero(roots != np.arange(n))
        forest = (joined, roots[joined])

    big = np.add.reduceat(exact.astype(np.int64), starts) * sizes > whole
    for g in np.flatnonzero(big):
        first = _cluster_firsts(words[starts[g] : starts[g] + sizes[g]], threshold)
        other = np.flatnonzero(first != np.arange(len(first)))
        fold(starts[g] + other, starts[g] + first[other])
    # Each exact row against every row of its group (not itself; a pair of exact rows once), about
    # _PAIR_STEP pairs at a time.
    group = np.repeat(np.arange(len(starts)), sizes)
    rows = np.flatnonzero(exact & ~big[group] & (sizes[group] > 1))
    span = sizes[group[rows]]
    done = np.cumsum(span)
    lo = 0
    while lo < len(rows):
        hi = max(lo + 1, int(np.searchsorted(done, done[lo] - span[lo] + _PAIR_STEP, side="right")))
        sp = span[lo:hi]
        a = np.repeat(rows[lo:hi], sp)
        offset = np.arange(len(a)) - np.repeat(np.cumsum(sp) - sp, sp)
        b = np.repeat(starts[group[rows[lo:hi]]], sp) + offset
        lo = hi
        keep = (b != a) & ~(exact[b] & (b < a))
        a, b = a[keep], b[keep]
        d = np.zeros(len(a), dtype=np.int64)
        for k in range(n_words):
            d += _popcount64(words[a, k] ^ words[b, k])
        near = np.flatnonzero(d <= threshold)
        if near.size:
            fold(a[near], b[near])
    if forest[0].size:
        ids = t["id"].combine_chunks()
        yield pa.RecordBatch.from_pydict(
            {"i": ids.take(pa.array(forest[0])), "j": ids.take(pa.array(forest[1]))}
        )


def _cluster_firsts(words: npt.NDArray[np.uint64], threshold: int) -> npt.NDArray[np.int64]:
    """Per code (big-endian 64-bit words) the first code of its cluster at ``threshold``
    (mmcore.cluster)."""
    index = HammingIndex(64 * words.shape[1])
    index.add(words[:, 0].copy() if words.shape[1] == 1 else words.astype(">u8").view(np.uint8))
    res = cluster(index, threshold)
    return np.asarray(res.representatives()[res.labels], dtype=np.int64)


def _edges_forest(spec: tuple[int, int, int], batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """_band_edges's edges of a partition as their spanning forest (_forest)."""
    return _forest(_band_edges(spec, batches))


#: Edges _forest gathers before folding them into its forest (or the forest's size, if larger).
_FOREST_FOLD = 1 << 20


def _fold(forest: tuple[Any, Any], pending: list[tuple[Any, Any]]) -> tuple[Any, Any]:
    """The spanning forest of ``forest``'s edges and the ``pending`` ones: (node, the smallest node
    of its component) for every node that is not that smallest node."""
    i = np.concatenate([forest[0], *(p[0] for p in pending)])
    j = np.concatenate([forest[1], *(p[1] for p in pending)])
    names, pos = np.unique(np.concatenate([i, j]), return_inverse=True)
    pos = pos.reshape(-1).astype(np.int64)
    roots = np.asarray(_core.union_find(len(names), pos[: len(i)].copy(), pos[len(i) :].copy()))
    keep = np.flatnonzero(roots != np.arange(len(names)))
    return names[keep], names[roots[keep]]


def _forest(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """A spanning forest of a partition's edges (i, j): the same components from at most one
    edge per node, (node, the smallest node of its component). A dense group of k near codes is
    k^2 / 2 edges and leaves here as k - 1. Edges are folded in once at least _FOREST_FOLD of
    them (or as many as the forest holds) have come: memory is the forest and that many edges,
    and each fold's sort is paid for by the edges it takes in."""
    forest: tuple[Any, Any] = (np.empty(0, dtype=object), np.empty(0, dtype=object))
    pending: list[tuple[Any, Any]] = []
    waiting = 0
    for b in batches:
        if b.num_rows == 0:
            continue
        pending.append(
            (
                np.asarray(b.column("i").to_pylist(), dtype=object),
                np.asarray(b.column("j").to_pylist(), dtype=object),
            )
        )
        waiting += b.num_rows
        if waiting >= max(_FOREST_FOLD, len(forest[0])):
            forest, pending, waiting = _fold(forest, pending), [], 0
    if pending:
        forest = _fold(forest, pending)
    if forest[0].size:
        yield pa.RecordBatch.from_pydict(
            {"i": pa.array(forest[0].tolist(), pa.string()), "j": pa.array(forest[1].tolist(), pa.string())}
        )


def _hamming(a: str, b: str, n_words: int) -> Column:
    return sum(
        (F.bit_count(F.col(f"{a}.w{k}").bitwiseXOR(F.col(f"{b}.w{k}"))) for k in range(n_words)),
        F.lit(0),
    ).cast("int")


def _phash_bits(df: DataFrame) -> int:
    """The bits of df's phash column: 64 for a long column (imagehash's default size), hash_size ** 2
    for binary rows of a run at a hash_size over 8 (their width, the same on every row, names it:
    one square per byte count from 9 on). ValueError for another type or width."""
    t = df.schema["phash"].dataType
    if isinstance(t, T.LongType):
        return 64
    if not isinstance(t, T.BinaryType):
        raise ValueError(
            f"the phash column must be long or binary (process()'s output), got {t.simpleString()}"
        )
    lo, hi = df.select(F.min(F.length("phash")), F.max(F.length("phash"))).first() or (None, None)
    if lo is None:  # no hashes at all: any width clusters nothing
        return 64
    size = next((s for s in range(9, 65) if (s * s + 7) // 8 == lo), None)
    if lo != hi or size is None:
        raise ValueError(
            f"the phash column holds {lo}..{hi}-byte values: not the rows of one hash_size "
            "(process() at a hash_size over 8 writes ceil(hash_size**2 / 8) bytes on every row)"
        )
    return size * size


def dedup(
    df: DataFrame,
    hash: str = "pdq",
    threshold: int | None = None,
    *,
    bands: int | None = None,
    min_quality: int | None = None,
) -> DataFrame:
    """Near-duplicate clusters of :func:`process`'s output (or of ``mmcore run``'s Parquet read by
    Spark): the clusters of :func:`mmcore.jobs.dedup.dedup` on the same rows, computed on the
    cluster. Columns id, cluster_id (int64), is_representative, distance_to_representative
    (int32): every eligible row (status OK / OK_WARNING, ``hash`` not null) once.

    ``hash="phash"`` takes the long column of the default size or the binary rows of a run at a
    ``hash_size`` over 8 (its bits from their width; default threshold 10 of every 64 bits, as
    ``mmcore dedup``). Same rules as ``mmcore dedup``: ``threshold`` (default 31 for pdq, 10 for phash) is the
    largest Hamming distance of an edge; clusters are connected components; the representative is
    the member with the highest ``pdq_quality`` (null lowest; pHash: none), ties to the smallest
    id; the distance is to the representative; ``min_quality`` (PDQ only): a row whose
    ``pdq_quality`` is below it (or null) is matched with nothing, a cluster of its own. Only
    ``cluster_id`` differs: dense 0..C-1 in the order of each cluster's smallest id (a DataFrame
    has no row order to number them by).

    How (exact): the code is cut into ``bands`` bands (by default :func:`choose_bands`); two codes
    within ``threshold`` differ in some band by at most ``threshold // bands`` bits (pigeonhole),
    so joining each code's band values with the band values within that radius of the others
    (enumerated) finds every pair; ``bit_count`` of the XOR of the 64-bit words then keeps the
    pairs within ``threshold``. Identical codes (copies of one image) are one node in that join,
    named by their smallest id. Band values that many distinct codes share (a near-duplicate
    group: its k^2 / 2 pairs) are hot (:func:`_hot_keys`): their keys' groups leave the join and
    are compared whole on the executors, each exact row against its group in numpy or the group
    clustered by :func:`mmcore.cluster`, and leave as spanning forests. Each partition of the
    edges between distinct codes leaves as a spanning forest (at most one edge per node: a dense
    group of k near codes is k - 1 edges, not k^2 / 2), the forests are folded into one in a
    single task, collected to the driver and clustered with :func:`mmcore.cluster` (union-find).
    Runs the join now (the eligible codes are cached, MEMORY_AND_DISK, for the result's
    lifetime); the result itself is lazy.

    Raises ValueError for a bad hash / threshold / bands / min_quality (also bands so few that a code would
    probe more than 2**20 values of a band), a DataFrame without id, status and the hash column,
    or an id on two eligible rows (as ``mmcore dedup``).
    """
    _check_args(hash, threshold, None if hash == "pdq" else 1 << 16)  # pHash's range once its bits are known
    min_quality = _check_min_quality(hash, min_quality)
    need = {"id", "status", hash}
    if not need <= set(df.columns):
        raise ValueError(f"dedup needs the columns {sorted(need)} (process()'s output); it has {df.columns}")
    bits = _BITS[hash] if hash == "pdq" else _phash_bits(df)
    threshold = _check_args(hash, threshold, bits)
    if bands is not None and not (isinstance(bands, int) and math.ceil(bits / 63) <= bands <= bits):
        raise ValueError(f"bands must be an int in {math.ceil(bits / 63)}..{bits} for {hash}, got {bands!r}")
    if bands is not None:  # each code expands to this many rows per band
        widths = _band_widths(bits, bands)
        probes = max(_count_within(w, threshold // bands) for w in widths)
        if probes > _MAX_PROBES:
            raise ValueError(
                f"bands={bands} at threshold {threshold}: each code probes {probes:,} values of a "
                f"{max(widths)}-bit band (over {_MAX_PROBES:,}); use more bands, or bands=None "
                "(choose_bands picks them)"
            )
    n_words = (bits + 63) // 64
    q = (
        F.coalesce(F.col("pdq_quality").cast("int"), F.lit(-1))
        if hash == "pdq" and "pdq_quality" in df.columns
        else F.lit(0)
    )
    eligible = df.filter(F.col("status").isin(*OK_STATUSES) & F.col(hash).isNotNull()).select(
        F.col("id").cast("string").alias("id"), q.alias("q"), F.col(hash).alias("code")
    )
    words_schema = "id string, q int, " + ", ".join(f"w{k} long" for k in range(n_words))
    codes = eligible.mapInArrow(functools.partial(_map_words, bits), words_schema)
    codes = codes.persist(StorageLevel.MEMORY_AND_DISK)
    n, distinct = codes.agg(F.count(F.lit(1)), F.count_distinct("id")).first() or (0, 0)
    if n != distinct:
        twice = codes.groupBy("id").count().filter(F.col("count") > 1).select("id").first()
        codes.unpersist()
        example = f", e.g. {twice[0]!r}" if twice is not None else ""
        raise ValueError(f"{n - distinct} ids are on more than one eligible row{example}; ids must be unique")
    # Identical codes are one node, named by the smallest id among them (gid): the copies of one
    # placeholder image would otherwise be joined pair by pair and their edges (half a million for
    # a thousand copies) collected to the driver.
    # A row below min_quality is matched with nothing: its own node (gid = id), out of the join.
    words = [f"w{k}" for k in range(n_words)]
    low = F.lit(False) if min_quality is None else F.col("q") < F.lit(min_quality)
    grouped = codes.withColumn("low", low)
    by_code = F.min("id").over(Window.partitionBy(*words, "low"))
    grouped = grouped.withColumn("gid", F.when(F.col("low"), F.col("id")).otherwise(by_code))
    grouped = grouped.persist(StorageLevel.MEMORY_AND_DISK)
    distinct = grouped.filter((F.col("id") == F.col("gid")) & ~F.col("low")).select("id", *words)
    n_distinct = distinct.count()
    codes.unpersist()
    m = bands if bands is not None else choose_bands(bits, threshold, n_distinct)
    widths, r = _band_widths(bits, m), threshold // m

    band_schema = "band int, key long, exact boolean, " + words_schema.replace(", q int", "")
    hot = _hot_keys(distinct, n_distinct, n_words, widths, r, band_schema)

    def band_rows(which: str) -> DataFrame:
        return distinct.mapInArrow(
            functools.partial(_map_bands, (n_words, widths, r, which, hot)), band_schema
        )

    index, probe = band_rows("index").alias("a"), band_rows("probe").alias("b")
    joined = index.hint("merge").join(  # the probe side is m * V rows per code: never broadcast
        probe,
        (F.col("a.band") == F.col("b.band"))
        & (F.col("a.key") == F.col("b.key"))
        & (F.col("a.id") < F.col("b.id")),
    )
    pairs = (
        joined.select(
            F.col("a.id").alias("i"), F.col("b.id").alias("j"), _hamming("a", "b", n_words).alias("d")
        )
        .filter(F.col("d") <= threshold)
        .select("i", "j")
        .mapInArrow(_forest, "i string, j string")
    )
    if hot:  # the hot keys' groups whole, each exact row against its group (or clustered)
        hot_pairs = (
            band_rows("hot")
            .repartition("band", "key")
            .sortWithinPartitions("band", "key")
            .mapInArrow(
                functools.partial(_edges_forest, (n_words, threshold, _GROUP_CLUSTER)), "i string, j string"
            )
        )
        pairs = pairs.unionAll(hot_pairs)
    edges = (
        pairs.repartition(1)  # the partitions' forests folded into one: a dense group spread over P
        .mapInArrow(_forest, "i string, j string")  # partitions would send P (k - 1) edges
        .collect()
    )
    spark = df.sparkSession
    comp_schema = "gid string, comp string"
    if edges:
        names = sorted({e[0] for e in edges} | {e[1] for e in edges})
        pos = {s: k for k, s in enumerate(names)}
        i = np.array([pos[e[0]] for e in edges], dtype=np.int64)
        j = np.array([pos[e[1]] for e in edges], dtype=np.int64)
        res = cluster((i, j), n=len(names))  # representative "first": the smallest id (sorted)
        first = res.representatives()[res.labels]
        nodes = spark.createDataFrame([(s, names[first[k]]) for k, s in enumerate(names)], comp_schema)
    else:
        nodes = spark.createDataFrame([], comp_schema)
    members = grouped.join(nodes, "gid", "left").withColumn("comp", F.coalesce("comp", "gid"))
    best = Window.partitionBy("comp").orderBy(F.col("q").desc(), F.col("id").asc())
    members = members.withColumn("is_representative", F.row_number().over(best) == 1)
    reps = members.filter("is_representative").select(
        "comp", *[F.col(f"w{k}").alias(f"r{k}") for k in range(n_words)]
    )
    dist = sum(
        (F.bit_count(F.col(f"w{k}").bitwiseXOR(F.col(f"r{k}"))) for k in range(n_words)), F.lit(0)
    ).cast("int")
    comps = members.select("comp").distinct().rdd.map(lambda row: row[0]).sortBy(lambda s: s).zipWithIndex()
    numbers = spark.createDataFrame(comps, "comp string, cluster_id long")
    return (
        members.join(reps, "comp")
        .join(numbers, "comp")
        .select(
            "id",
            "cluster_id",
            "is_representative",
            dist.alias("distance_to_representative"),
        )
        .orderBy("cluster_id", F.col("is_representative").desc(), "distance_to_representative", "id")
    )
