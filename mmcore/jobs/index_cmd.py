"""``mmcore index build`` / ``mmcore index search``: a :class:`mmcore.QuantizedIndex` from
embeddings in a ``.npy`` file or in Parquet, and top-k search of it.

Vectors come from a ``.npy`` file holding a float (N, D) array, or from a Parquet file or a folder
of Parquet files (``*.parquet`` below it, names starting with ``_`` or ``.`` skipped, in sorted
path order) with a ``list<float>`` or ``fixed_size_list<float>`` column: the only such column,
or the one ``--column`` names. Rows are numbered 0..N-1 in file order. Parquet is read in
batches of 65,536 rows and a ``.npy`` file is memory-mapped, so at most a batch (plus the
training sample of up to 200,000 rows) is in memory as float32 at a time. See
``docs/jobs_dedup_index.md``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .._io import atomic_output
from ..quant import _TRAIN_SAMPLE, Codec, Metric, QuantizedIndex, _check_norms
from ._common import int_at_least, user_errors

__all__ = ["RESULTS_SCHEMA", "VectorFile", "build", "register", "search", "search_batches"]

_BATCH = 65_536  # rows read, checked and added per step
_QUERY_BATCH = 4_096  # queries searched per call (bounds the (Q, k) work arrays)
_NPY_MAGIC = b"\x93NUMPY"

#: Columns of ``mmcore index search --out``: one row per (query, rank), ``rank`` 0 = best.
RESULTS_SCHEMA = pa.schema(
    [
        pa.field("query_row", pa.int64(), nullable=False),
        pa.field("rank", pa.int32(), nullable=False),
        pa.field("id", pa.int64(), nullable=False),
        pa.field("score", pa.float32(), nullable=False),
    ]
)


def _is_vector_type(t: pa.DataType) -> bool:
    lists = pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    return bool(lists and pa.types.is_floating(t.value_type))


class VectorFile:
    """Float vectors stored in a ``.npy`` file or in Parquet (see the module doc), read in batches.

    ``column``: the Parquet vector column (default: the only ``list<float>`` /
    ``fixed_size_list<float>`` column). ``ids_column``: an integer Parquet column holding one id
    per row (default: none, ids are the row numbers). ``name`` is how error messages call the
    input (``EMBEDDINGS``, ``QUERIES``).

    Raises FileNotFoundError for a missing path or a folder without Parquet files, ValueError for
    anything else the input gets wrong: not a ``.npy`` / Parquet file, a ``.npy`` array that is not
    float (N, D), no vector column or several (name one with ``column``), an ids column that is not
    an integer column; while reading, null vectors or ids, rows of another dimension, NaN / Inf,
    float64 values past float32's range (and what ``batches`` is asked to check).

    >>> import numpy as np, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.ones((3, 4), np.float16))
    >>> f = VectorFile(path)
    >>> f.rows, f.read_all().shape
    (3, (3, 4))
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        column: str | None = None,
        ids_column: str | None = None,
        name: str = "EMBEDDINGS",
    ) -> None:
        self.path = os.fspath(path)
        self.name = name
        self.column: str | None = None
        self.ids_column = ids_column
        self.rows = 0
        self.dim: int | None = None  # known once a row has been read (at once for .npy)
        self._npy: npt.NDArray[Any] | None = None
        self._files: list[str] = []
        p = Path(self.path)
        if not p.exists():
            raise FileNotFoundError(f"{name} {self.path}: no such file or folder")
        if not (p.is_file() or p.is_dir()):  # a FIFO would block the first read
            raise ValueError(f"{name} {self.path}: not a regular file or a folder")
        if p.is_file() and _starts_with(p, _NPY_MAGIC):
            if column is not None or ids_column is not None:
                raise ValueError(
                    f"{name} {self.path} is a .npy file: --column and --ids-column apply to Parquet "
                    "(the ids of a .npy file's vectors are their row numbers)"
                )
            self._open_npy()
        else:
            self._open_parquet(p, column)

    def _open_npy(self) -> None:
        try:
            a = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except ValueError as e:
            raise ValueError(f"{self.name} {self.path}: cannot read this .npy file: {e}") from None
        if a.ndim != 2 or not np.issubdtype(a.dtype, np.floating):
            raise ValueError(
                f"{self.name} {self.path} must hold a float (N, D) array (float16 / 32 / 64), "
                f"got {a.dtype} {a.shape}"
            )
        self._npy = a
        self.rows = a.shape[0]
        self.dim = a.shape[1]

    def _open_parquet(self, p: Path, column: str | None) -> None:
        self._files = _input_files(self.path, self.name)
        metas = []
        for f in self._files:
            try:
                metas.append(pq.read_metadata(f))
            except (pa.ArrowInvalid, OSError) as e:
                raise ValueError(f"{self.name} {f}: neither a .npy file nor a Parquet file ({e})") from None
        schema = metas[0].schema.to_arrow_schema()
        vectors = [fld.name for fld in schema if _is_vector_type(fld.type)]
        if column is None:
            if len(vectors) != 1:
                what = f"several vector columns {vectors}" if vectors else "no vector column"
                raise ValueError(
                    f"{self.name} {self.path}: {what} (list<float> or fixed_size_list<float>; "
                    f"columns: {schema.names})" + ("; choose one with --column" if vectors else "")
                )
            column = vectors[0]
        for f, m in zip(self._files, metas, strict=True):
            s = m.schema.to_arrow_schema()
            for c, ok, kind in (
                (column, _is_vector_type, "a list<float> or fixed_size_list<float>"),
                (self.ids_column, pa.types.is_integer, "an integer"),
            ):
                if c is None:
                    continue
                if c not in s.names:
                    raise ValueError(f"{self.name} {f}: no column {c!r} (columns: {s.names})")
                if not ok(s.field(c).type):
                    raise ValueError(
                        f"{self.name} {f}: column {c!r} is {s.field(c).type}, expected {kind} column"
                    )
        self.column = column
        self.rows = sum(m.num_rows for m in metas)

    # -- reading ----------------------------------------------------------------------------------

    def batches(
        self, *, ids: bool = True, nonzero: bool = False, bounded: bool = False
    ) -> Iterator[tuple[int, npt.NDArray[np.float32], npt.NDArray[Any] | None]]:
        """``(first row, vectors float32 (m, D), ids (m,) or None)`` per batch, in row order. Every
        row is checked: not null, of the same dimension as the first, finite (float64 values within
        float32's range), not all zeros when ``nonzero`` (a cosine index cannot take such rows),
        and with ``||x||^2`` within float32's range when ``bounded`` (``ip`` / ``l2`` indexes
        refuse larger vectors). Ids only with ``ids_column`` and ``ids``."""
        start = 0
        for x, id_arr in self._raw_batches(ids and self.ids_column is not None):
            bad = ~np.isfinite(x).all(axis=1)
            if bad.any():
                raise ValueError(
                    f"{self.name} row {start + int(np.argmax(bad))} contains NaN, Inf or a missing value: "
                    "drop or fix such rows"
                )
            if nonzero and not x.any(axis=1).all():
                row = start + int(np.argmin(x.any(axis=1)))
                raise ValueError(f"{self.name} row {row} is all zeros: its cosine is undefined")
            if bounded:
                _check_norms(x, self.name, start)
            yield start, x, id_arr
            start += len(x)

    def _raw_batches(
        self, with_ids: bool
    ) -> Iterator[tuple[npt.NDArray[np.float32], npt.NDArray[Any] | None]]:
        if self._npy is not None:
            for at in range(0, self.rows, _BATCH):
                yield self._float32(self._npy[at : at + _BATCH], at), None
            return
        assert self.column is not None
        start = 0
        columns = [self.column] + ([self.ids_column] if with_ids and self.ids_column else [])
        for f in self._files:
            pf = pq.ParquetFile(f)
            # One reader per row group: one reader over the whole file held on to the memory of
            # every batch it had returned until it closed (pyarrow 26, 1M x 384 floats in 10 row
            # groups: 1.7 GB of Arrow memory at the end of the file; this way at most 380 MB).
            batches = (
                b
                for rg in range(pf.num_row_groups)
                for b in pf.iter_batches(batch_size=_BATCH, row_groups=[rg], columns=columns)
            )
            for batch in batches:
                x = self._vectors(batch.column(self.column), start)
                id_arr = None
                if with_ids and self.ids_column:
                    col = batch.column(self.ids_column)
                    if col.null_count:
                        row = start + int(np.argmax(col.is_null().to_numpy(zero_copy_only=False)))
                        raise ValueError(f"{self.name} row {row}: its id ({self.ids_column}) is null")
                    id_arr = col.to_numpy()
                start += batch.num_rows
                yield x, id_arr

    def _vectors(self, arr: pa.Array, start: int) -> npt.NDArray[np.float32]:
        """A list / fixed_size_list column batch as float32 (m, D), D checked against self.dim."""
        if arr.null_count:
            row = start + int(np.argmax(arr.is_null().to_numpy(zero_copy_only=False)))
            raise ValueError(f"{self.name} row {row}: its vector ({self.column}) is null")
        m = len(arr)
        if pa.types.is_fixed_size_list(arr.type):
            lengths = np.full(m, arr.type.list_size)
        else:
            lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
        if self.dim is None and m:
            self.dim = int(lengths[0])
        wrong = lengths != self.dim
        if wrong.any():
            i = int(np.argmax(wrong))
            raise ValueError(
                f"{self.name} row {start + i} has {int(lengths[i])} values in {self.column}, "
                f"expected {self.dim} (the dimension of row 0)"
            )
        flat = arr.flatten()
        if not pa.types.is_float64(flat.type):
            flat = pc.cast(flat, pa.float32())
        values = flat.to_numpy(zero_copy_only=False)  # nulls: NaN
        return self._float32(values.reshape(m, self.dim or 0), start)

    def _float32(self, raw: npt.NDArray[Any], start: int) -> npt.NDArray[np.float32]:
        """raw (m, D) as float32; ValueError naming the row when its first non-finite float32 row
        was finite before (a float64 value past float32's range; NaN / Inf are named later)."""
        with np.errstate(over="ignore"):
            x = np.ascontiguousarray(raw, dtype=np.float32)
        if raw.dtype.itemsize > 4:
            bad = ~np.isfinite(x).all(axis=1)
            i = int(np.argmax(bad)) if bad.any() else -1
            if i >= 0 and np.isfinite(raw[i]).all():
                v = raw[i][~np.isfinite(x[i])][0]
                raise ValueError(
                    f"{self.name} row {start + i} has a value beyond float32's range ({v:.3g}): "
                    "scale the vectors down"
                )
        return x

    def read_all(self, *, nonzero: bool = False, bounded: bool = False) -> npt.NDArray[np.float32]:
        """Every vector as one float32 (N, D) array (for queries)."""
        parts = [x for _, x, _ in self.batches(ids=False, nonzero=nonzero, bounded=bounded)]
        return np.concatenate(parts) if parts else np.empty((0, self.dim or 0), dtype=np.float32)

    def sample(self, limit: int, *, nonzero: bool = False, bounded: bool = False) -> npt.NDArray[np.float32]:
        """Rows 0, s, 2s, ... with s = ceil(N / limit): at most ``limit`` evenly spaced rows, the
        ones :meth:`mmcore.QuantizedIndex.train` would pick from all N. Reads (and checks) every
        row."""
        step = max(1, -(-self.rows // limit))
        # copies, not views: a view would keep its whole batch alive
        parts = [
            x[(-start) % step :: step].copy()
            for start, x, _ in self.batches(ids=False, nonzero=nonzero, bounded=bounded)
        ]
        return np.concatenate(parts) if parts else np.empty((0, self.dim or 0), dtype=np.float32)


def _input_files(path: str, name: str) -> list[str]:
    """The files read for the input ``path``: itself, or a folder's Parquet files (see the module
    doc), in sorted path order."""
    p = Path(path)
    if not p.is_dir():
        return [path]
    try:
        files = sorted(
            str(f)
            for f in p.rglob("*.parquet")
            if f.is_file() and not any(part[:1] in "_." for part in f.relative_to(p).parts)
        )
    except RecursionError:  # Path.rglob recurses (Python 3.11)
        raise ValueError(f"{name} {path}: folders nested deeper than Python's rglob can follow") from None
    if not files:
        raise FileNotFoundError(f"{name} {path}: a folder without *.parquet files")
    return files


def _not_an_input(out: str | os.PathLike[str], what: str, inputs: list[tuple[str, str]]) -> None:
    """ValueError when the output file ``out`` is one of the ``(name, file)`` inputs (the same path,
    a link to it): writing it would replace the input before, or instead of, reading it."""
    out = os.fspath(out)
    for name, f in inputs:
        if os.path.exists(out) and os.path.exists(f):
            same = os.path.samefile(out, f)
        else:
            same = os.path.realpath(out) == os.path.realpath(f)
        if same:
            raise ValueError(
                f"{what} {out} is the same file as {name} {f}: writing it would replace the input; "
                f"choose another {what} path"
            )


def _starts_with(p: Path, magic: bytes) -> bool:
    with open(p, "rb") as f:
        return f.read(len(magic)) == magic


def _parent_exists(path: str | os.PathLike[str], what: str) -> None:
    """The file ``path`` can be written: its folder exists and it is not itself a folder (checked
    before the work, not after it)."""
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise FileNotFoundError(f"{what} {os.fspath(path)}: the folder {parent} does not exist")
    if Path(path).is_dir():
        raise IsADirectoryError(f"{what} {os.fspath(path)} is a folder: give a file name in it")


def build(
    embeddings: str | os.PathLike[str],
    index_path: str | os.PathLike[str],
    *,
    codec: Codec = "int8",
    metric: Metric = "ip",
    keep_float: bool = False,
    column: str | None = None,
    ids_column: str | None = None,
    threads: int | None = None,
) -> QuantizedIndex:
    """Build a :class:`mmcore.QuantizedIndex` from the vectors of ``embeddings`` (a ``.npy`` file
    or Parquet, see :class:`VectorFile`) and save it to ``index_path``; returns it.

    Two passes over the input: the first checks every row and keeps the training sample (the up to
    200,000 evenly spaced rows that ``QuantizedIndex.train`` would pick from the whole array), the
    second encodes and adds batches of 65,536 rows, so the result equals ``train(x)`` then
    ``add(x, ids)`` on the whole array. ``keep_float=True`` keeps the float32 vectors in the index
    (for ``search --rerank``; held in a temporary mapped file while building, stored in the index
    file). Ids: the ``ids_column`` values, or the row numbers.

    Raises FileNotFoundError / ValueError (see :class:`VectorFile`; also an empty input, a missing
    output folder, an ``index_path`` that is one of the input files (checked before anything is
    written), a bad codec / metric, ``codec="binary"`` with D not a multiple of 64, for ``ip`` /
    ``l2`` a vector with a norm of 1.8e19 or more). Ids may repeat and be negative.

    >>> import numpy as np, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> np.save(os.path.join(d, "e.npy"), np.random.default_rng(0).normal(size=(100, 64)).astype(np.float32))
    >>> index = build(os.path.join(d, "e.npy"), os.path.join(d, "e.mmq"), codec="int4")
    >>> len(index), index.codec
    (100, 'int4')
    """
    src = VectorFile(embeddings, column=column, ids_column=ids_column, name="EMBEDDINGS")
    _parent_exists(index_path, "INDEX")
    _not_an_input(index_path, "INDEX", [("EMBEDDINGS", f) for f in src._files or [src.path]])
    if src.rows == 0:
        raise ValueError(f"EMBEDDINGS {src.path} holds no vectors")
    cos = metric == "cos"
    sample = src.sample(_TRAIN_SAMPLE, nonzero=cos, bounded=not cos)
    index = QuantizedIndex(
        sample.shape[1], codec=codec, metric=metric, keep_float="mmap" if keep_float else False
    )
    index.train(sample)
    del sample
    for _, x, ids in src.batches(nonzero=cos, bounded=not cos):
        index.add(x, ids=ids, threads=threads)
    index.save(index_path)
    return index


def search(
    index_path: str | os.PathLike[str],
    queries: str | os.PathLike[str],
    *,
    k: int = 10,
    rerank: int = 0,
    column: str | None = None,
    threads: int | None = None,
) -> pa.Table:
    """Search the index saved at ``index_path`` with every vector of ``queries`` (``.npy`` or
    Parquet, like ``build``'s input): the results of ``QuantizedIndex.search(q, k, rerank=...)``
    as a table (:data:`RESULTS_SCHEMA`): ``query_row`` (the query's row in ``queries``), ``rank``
    (0 = best), ``id``, ``score`` (see docs/quant.md: approximate similarity or distance without
    rerank, exact with it; binary without rerank: Hamming distance), sorted by query then rank.
    :func:`search_batches` gives the same rows a batch at a time.

    Raises FileNotFoundError for a missing file, ValueError for an invalid index file, queries
    of another dimension than the index's, ``k`` larger than the index, ``rerank`` on an index
    built without its float vectors, and the input errors of :class:`VectorFile`.
    """
    batches = search_batches(index_path, queries, k=k, rerank=rerank, column=column, threads=threads)
    return pa.Table.from_batches(list(batches), schema=RESULTS_SCHEMA)


def search_batches(
    index_path: str | os.PathLike[str],
    queries: str | os.PathLike[str],
    *,
    k: int = 10,
    rerank: int = 0,
    column: str | None = None,
    threads: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """:func:`search`'s rows as RecordBatches, up to 4,096 queries' results each, in query order:
    memory is one batch of queries and its results, however many queries there are (the whole
    table is 24 bytes a result: 2.4 GB for 10M queries at k = 10). The index and the queries are
    opened, and their errors raised, before the first batch is returned."""
    if not Path(index_path).exists():
        raise FileNotFoundError(f"INDEX {os.fspath(index_path)}: no such file")
    if not Path(index_path).is_file():
        raise ValueError(f"INDEX {os.fspath(index_path)}: not a regular file")
    index = QuantizedIndex.load(index_path)
    src = VectorFile(queries, column=column, name="QUERIES")

    def check_dim() -> None:
        if src.dim is not None and src.dim != index.dim:
            raise ValueError(
                f"QUERIES have dimension {src.dim}, the index holds vectors of dimension {index.dim}"
            )

    check_dim()  # known from the header of a .npy; of a Parquet list column, from its first batch
    if rerank and index.keep_float is False:
        raise ValueError(
            f"--rerank needs the float vectors, and INDEX {os.fspath(index_path)} was built without them: "
            "rebuild it with --keep-float, or search without --rerank"
        )
    if k > len(index):
        raise ValueError(f"k={k} is larger than the {len(index)} vectors in the index")

    def batches() -> Iterator[pa.RecordBatch]:
        # The queries a batch at a time (10M x 768 float16 queries read whole were ~61 GB of
        # float32 and copies), and their results too.
        rank = np.arange(k, dtype=np.int32)
        for start, x, _ in src.batches(
            ids=False, nonzero=index.metric == "cos", bounded=index.metric != "cos"
        ):
            check_dim()
            for at in range(0, len(x), _QUERY_BATCH):
                s, i = index.search(x[at : at + _QUERY_BATCH], k, rerank=rerank, threads=threads)
                rows = np.arange(start + at, start + at + len(s), dtype=np.int64)
                cols = [np.repeat(rows, k), np.tile(rank, len(s)), i.reshape(-1), s.reshape(-1)]
                yield pa.RecordBatch.from_arrays(cols, schema=RESULTS_SCHEMA)

    return batches()


# -- command line ---------------------------------------------------------------------------------


def _build_handler(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    index = build(
        args.embeddings,
        args.index,
        codec=args.codec,
        metric=args.metric,
        keep_float=args.keep_float,
        column=args.column,
        ids_column=args.ids_column,
        threads=args.threads,
    )
    size = os.path.getsize(args.index)
    print(
        f"{len(index):,} vectors of dimension {index.dim}, codec {index.codec}, metric {index.metric}"
        f"{', float vectors kept' if args.keep_float else ''}: {size / 1e6:,.1f} MB, "
        f"built in {time.perf_counter() - t0:.1f} s"
    )
    print(args.index)
    return 0


def _search_handler(args: argparse.Namespace) -> int:
    if args.out is not None:
        _parent_exists(args.out, "--out")
        _not_an_input(
            args.out,
            "--out",
            [("INDEX", args.index)] + [("QUERIES", f) for f in _input_files(args.queries, "QUERIES")],
        )
    t0 = time.perf_counter()
    batches = search_batches(
        args.index, args.queries, k=args.k, rerank=args.rerank, column=args.column, threads=args.threads
    )
    shown: list[pa.RecordBatch] = []
    rows = 0

    def kept(it: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        nonlocal rows
        for b in it:
            rows += b.num_rows
            if b.num_rows and b["query_row"][0].as_py() < 5:
                shown.append(b.filter(pc.and_(pc.less(b["query_row"], 5), pc.less(b["rank"], 5))))
            yield b

    if args.out is not None:  # streamed into the file: the results are never all in memory
        with atomic_output(args.out) as f, pq.ParquetWriter(f, RESULTS_SCHEMA) as w:
            for b in kept(batches):
                w.write_batch(b)
    else:
        for _ in kept(batches):
            pass
    seconds = time.perf_counter() - t0
    nq = rows // args.k
    print(f"{'query_row':>9}  {'rank':>4}  {'id':>12}  score")
    for b in shown:
        for qr, rank, i, s in zip(*(b[c].to_pylist() for c in RESULTS_SCHEMA.names), strict=True):
            print(f"{qr:>9}  {rank:>4}  {i:>12}  {s:.6g}")
    more = " (first 5 queries, best 5 each)" if nq > 5 or args.k > 5 else ""
    print(f"{nq:,} queries, k={args.k}, rerank={args.rerank}: {seconds:.2f} s{more}")
    if args.out is not None:
        print(args.out)
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``mmcore index build`` and ``mmcore index search``."""
    p = sub.add_parser(
        "index",
        help="build or search a quantized embedding index",
        description="Build a quantized index (int8, int4 or binary codes) from embeddings, or search "
        "one. See docs/jobs_dedup_index.md and docs/quant.md.",
    )
    isub = p.add_subparsers(dest="index_command", required=True, metavar="{build,search}")
    b = isub.add_parser(
        "build",
        help="build a QuantizedIndex from a .npy file or Parquet list<float> column",
        description="Quantize the float vectors of EMBEDDINGS (a .npy (N, D) file, or a Parquet file or "
        "folder with a list<float> column) into INDEX. Ids are the row numbers, or --ids-column. "
        "Bad rows (null, NaN / Inf, another dimension, all zeros for cos) stop the build with the "
        "row named; INDEX is written atomically and never replaces an input.",
    )
    b.add_argument(
        "embeddings", metavar="EMBEDDINGS", help=".npy float (N, D) file, or Parquet file / folder"
    )
    b.add_argument("index", metavar="INDEX", help="the index file to write")
    b.add_argument("--codec", choices=("int8", "int4", "binary"), default="int8", help="(default int8)")
    b.add_argument("--metric", choices=("ip", "l2", "cos"), default="ip", help="(default ip)")
    b.add_argument("--keep-float", action="store_true", help="keep the float vectors (needed by --rerank)")
    b.add_argument("--column", default=None, help="Parquet vector column (default: the only one)")
    b.add_argument("--ids-column", default=None, help="Parquet integer id column (default: row numbers)")
    b.add_argument("--threads", type=int_at_least(1), default=None, metavar="N", help="(default: all cores)")
    b.set_defaults(func=user_errors("index build", _build_handler))
    s = isub.add_parser(
        "search",
        help="top-k search of an index",
        description="The k best ids of every query of QUERIES (a .npy (Q, D) file, or Parquet) in "
        "INDEX: exact integer scores of the codes, optionally rescored exactly on the stored floats "
        "(--rerank N, needs --keep-float at build). Prints a summary; --out writes every result "
        "(query_row, rank, id, score) to Parquet.",
    )
    s.add_argument("index", metavar="INDEX", help="an index written by `mmcore index build`")
    s.add_argument("queries", metavar="QUERIES", help=".npy float (Q, D) file, or Parquet file / folder")
    s.add_argument("-k", type=int_at_least(1), default=10, help="results per query (default 10)")
    s.add_argument(
        "--rerank",
        type=int_at_least(0),
        default=0,
        metavar="N",
        help="rescore the best N exactly (default 0)",
    )
    s.add_argument("--out", default=None, help="write every result to this Parquet file")
    s.add_argument("--column", default=None, help="Parquet vector column of QUERIES (default: the only one)")
    s.add_argument("--threads", type=int_at_least(1), default=None, metavar="N", help="(default: all cores)")
    s.set_defaults(func=user_errors("index search", _search_handler))
