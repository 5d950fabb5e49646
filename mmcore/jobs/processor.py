"""The Processor: an Arrow batch of images in, an Arrow batch of :data:`~mmcore.jobs.schema.SCHEMA`
rows out. Engine-free: ``mmcore run``, Spark and Ray all call it."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, unquote_to_bytes, urlparse

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from .. import __version__, _core
from .. import _pillow as fallback
from .._io import open_regular
from ..hashing import HashResult, ThreadBudget, _fallback, hash_batch
from ..image import BatchResult, _thumbnail_codes
from ..status import READ_ERROR, SOURCE_ERROR, Status
from .config import Config
from .schema import SCHEMA, SIZED_COLUMNS, output_schema, u64_to_i64

if TYPE_CHECKING:
    from ..gpu import Context as GpuContext

__all__ = [
    "READ_ERROR",
    "SOURCE_ERROR",
    "Processor",
    "failure_batch",
    "id_text",
    "over_limit",
    "path_to_uri",
    "read_paths",
    "text",
    "uri_to_path",
]

#: A record's bytes: read from a file, or a zero-copy view of an Arrow binary column's buffer.
Blob = bytes | memoryview

#: Threads reading a batch's files: reads wait on the storage, not the CPU (20 ms a file, a
#: network mount: 8 threads read 400 files/s, fewer than 2 cores hash; 32 read 1,600).
_IO_THREADS = 32


def uri_to_path(uri: str) -> str:
    """A local path for a plain path or a ``file:`` URI (``file:///x``, or Hadoop's ``file:/x``;
    percent-decoded to the file system's bytes, so a name that is not UTF-8 round-trips); other
    schemes are a ValueError."""
    if "://" not in uri and not uri.startswith("file:"):
        return uri
    if uri.startswith("file:///"):
        rest = uri[7:]
        # What path_to_uri writes for a plain ASCII name: nothing to decode (urlparse took ~4 us).
        if rest.isascii() and rest.isprintable() and "%" not in rest and "?" not in rest and "#" not in rest:
            return rest
    u = urlparse(uri)
    if u.scheme != "file" or u.netloc not in ("", "localhost"):
        raise ValueError(f"only local paths and file:// URIs can be read, got {uri!r}")
    return os.fsdecode(unquote_to_bytes(u.path))


def path_to_uri(path: str | os.PathLike[str]) -> str:
    """``file://`` and the absolute path, percent-encoded (RFC 8089): ``#``, ``?``, ``%``, spaces
    and bytes that are not UTF-8 survive :func:`uri_to_path`."""
    return "file://" + quote(os.fsencode(os.path.abspath(os.fspath(path))), safe="/")


def _as_uri(p: str) -> str:
    """A path column's value as a source_uri: URIs as they are, except Hadoop's ``file:/x``, which
    becomes ``file:///x``; plain paths as ``file://`` URIs."""
    if p.startswith("file:") and "://" not in p:
        return path_to_uri(uri_to_path(p))
    return p if "://" in p else path_to_uri(p)


def text(name: str) -> str:
    """A file or member name as valid UTF-8 text: bytes that are not UTF-8 (kept by os / tarfile as
    surrogate escapes, which Arrow strings cannot hold) become ``\\xNN``."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")


def id_text(v: Any) -> str:
    """A record id as text: a binary key (a Parquet or Arrow binary id column) is its UTF-8 text,
    bytes that are not UTF-8 as ``\\xNN``; anything else its str()."""
    return text(v.decode("utf-8", "surrogateescape")) if isinstance(v, bytes) else str(v)


def over_limit(what: str, size: int, max_bytes: int) -> str:
    """The message for a file or member not read because of ``max_bytes``."""
    return f"{what} is {size:,} bytes, over the limit of {max_bytes:,} (max_bytes)"


def _record_name(source_uri: str | None, member: str | None) -> str:
    """What a message calls a record held in memory: a whole local file (Spark's binaryFile) by its
    path, as mmcore run's read of that file does; a row or member "the record"."""
    if member is None and source_uri is not None and source_uri.startswith("file:"):
        try:
            return text(uri_to_path(source_uri))
        except ValueError:
            pass
    return "the record"


def struct_paths(arr: pa.Array | pa.ChunkedArray) -> list[str | None] | None:
    """A Hugging Face image column's ``path`` values where a row has no ``bytes`` (the image is
    then the file at that path), None where the struct has no string ``path`` field."""
    t = arr.type
    i = t.get_field_index("path")
    if i < 0 or not (pa.types.is_string(t.field(i).type) or pa.types.is_large_string(t.field(i).type)):
        return None
    has = pc.is_valid(pc.struct_field(arr, "bytes")).to_pylist()
    return [None if h else p for h, p in zip(has, pc.struct_field(arr, "path").to_pylist(), strict=True)]


def _read(path_or_uri: str, max_bytes: int | None = None) -> tuple[bytes | None, str | None]:
    path = ""
    try:
        path = uri_to_path(path_or_uri)
        with open_regular(path) as f:  # a FIFO is refused, not waited on
            st = os.fstat(f.fileno())
            if max_bytes is not None and st.st_size > max_bytes:
                return None, over_limit(text(path), st.st_size, max_bytes)
            # A buffer of the file's size (+1 to see growth): read(max_bytes + 1) would allocate
            # the limit (256 MiB by default) for every file: a page-cached read was 2.7x slower.
            limit = st.st_size + 1 if max_bytes is None else min(st.st_size, max_bytes) + 1
            data = f.read(limit)
            if len(data) == limit:  # it grew since fstat: read on, to EOF or past the limit
                rest = f.read() if max_bytes is None else f.read(max_bytes + 1 - len(data))
                data += rest
            if max_bytes is not None and len(data) > max_bytes:  # it grew while being read
                return None, over_limit(text(path), len(data), max_bytes)
            return data, None
    except (OSError, ValueError) as e:
        if isinstance(e, OSError) and os.path.isdir(
            path
        ):  # a Parquet path, or a folder a walk could not list
            try:
                os.listdir(path)
            except OSError:
                return None, f"cannot read {text(path)}: a folder that could not be listed"
            return None, f"cannot read {text(path)}: a folder, not a file"
        why = e.strerror if isinstance(e, OSError) and e.strerror else e
        return None, f"cannot read {text(path) if path else path_or_uri}: {why}"


def read_paths(paths: Sequence[str], max_bytes: int | None = None) -> list[tuple[Blob | None, str | None]]:
    """(bytes, None) or (None, why) for each local path or ``file://`` URI, read on up to 32
    threads; a file over ``max_bytes`` is not read. The bytes of a regular file come as a
    memoryview read natively (``_core.read_files``: no GIL, ~3 us a small file where a Python
    thread pool took ~70); what that leaves (errors, special files, a file that grew while read)
    goes through :func:`_read`, which says why."""
    if not paths:
        return []
    local: list[str] = []
    for p in paths:
        try:
            local.append(uri_to_path(p))
        except ValueError:
            local.append("")  # not a local path: _read says so
    fast = _core.read_files(local, -1 if max_bytes is None else max_bytes, min(_IO_THREADS, len(paths)))
    out: list[tuple[Blob | None, str | None]] = [(d, None) for d in fast]
    rest = [i for i, d in enumerate(fast) if d is None]
    if len(rest) == 1:
        out[rest[0]] = _read(paths[rest[0]], max_bytes)
    elif rest:
        with ThreadPoolExecutor(min(_IO_THREADS, len(rest))) as ex:
            for i, r in zip(rest, ex.map(lambda k: _read(paths[k], max_bytes), rest), strict=True):
                out[i] = r
    return out


def _binary_values(col: pa.Array | pa.ChunkedArray) -> list[Any]:
    """The values of a binary column as zero-copy views of its Arrow buffers (None for a null),
    for ``hash_batch`` and hashlib, which take any buffer; other types as ``to_pylist`` gives them.
    ``to_pylist`` copied every record's bytes (~5 GB/s, 3% of a 2-thread batch's time)."""
    t = col.type
    if not (pa.types.is_binary(t) or pa.types.is_large_binary(t)):
        return list(col.to_pylist())
    width = np.int64 if pa.types.is_large_binary(t) else np.int32
    out: list[Any] = []
    for chunk in col.chunks if isinstance(col, pa.ChunkedArray) else [col]:
        n = len(chunk)
        if n == 0:
            continue
        _, offsets, values = chunk.buffers()
        offs = np.frombuffer(offsets, width, n + 1, chunk.offset * width().itemsize).tolist()
        view = memoryview(values if values is not None else b"")
        valid = chunk.is_valid().to_pylist() if chunk.null_count else None
        out += [view[offs[i] : offs[i + 1]] if valid is None or valid[i] else None for i in range(n)]
    return out


def _sha256_digests(data: Sequence[Blob | None], threads: int) -> list[bytes | None]:
    """The SHA-256 digest of each record's bytes (None for none), on up to ``threads`` threads:
    hashlib releases the GIL, and one thread hashing ~1 GB/s would bound a many-core host's
    decode and hashing (a 200 kB JPEG hashes in ~0.2 ms; it decodes in ~2 ms on one core)."""
    n = len(data)
    # ~16 records and 1 MiB a thread at least: a thread costs ~50 us, and for small records (a
    # 2.5 kB image hashes in 1.5 us) two threads took twice one's time.
    size = sum(len(d) for d in data if d is not None)
    threads = max(1, min(threads, n // 16, size >> 20))
    if threads == 1:
        return [None if d is None else hashlib.sha256(d).digest() for d in data]
    out: list[bytes | None] = [None] * n

    def part(k: int) -> None:
        for i in range(k, n, threads):  # interleaved: large and small records spread evenly
            d = data[i]
            if d is not None:
                out[i] = hashlib.sha256(d).digest()

    with ThreadPoolExecutor(threads) as ex:
        list(ex.map(part, range(threads)))
    return out


#: Status names by code, and format names by ImageFormat code (None for no signature matched).
_STATUS_NAMES = np.array([Status(c).name for c in range(max(Status) + 1)], dtype=object)
_FORMAT_NAMES = np.array([None if f == "unknown" else f for f in _core.image_format_names()], dtype=object)


def _spread(
    n: int,
    rows: npt.NDArray[np.intp],
    values: Any,
    valid: npt.NDArray[np.bool_],
    type_: pa.DataType | None = None,
) -> pa.Array:
    """A column of ``n`` rows: ``values[j]`` at row ``rows[j]`` where ``valid[j]``, null elsewhere
    (int64 unless ``type_`` says otherwise)."""
    type_ = type_ or pa.int64()
    full = np.zeros(n, type_.to_pandas_dtype())
    full[rows] = values
    mask = np.ones(n, bool)
    mask[rows[valid]] = False
    return pa.array(full, type_, mask=mask)


def _rows(n: int, rows: npt.NDArray[np.intp], values: Any, other: Any = None) -> npt.NDArray[np.object_]:
    """An object array of ``n`` rows: ``values[j]`` at row ``rows[j]``, ``other`` elsewhere."""
    full = np.full(n, other, dtype=object)
    full[rows] = values
    return full


def _fixed_binary(
    n: int, rows: npt.NDArray[np.intp], values: npt.NDArray[np.uint8], valid: npt.NDArray[np.bool_]
) -> pa.Array:
    """A binary(w) column of ``n`` rows from the (m, w) ``values`` (PDQ, sized hashes), as :func:`_spread`."""
    full = np.zeros((n, values.shape[1]), np.uint8)
    full[rows[valid]] = values[valid]
    bits = np.zeros(n, bool)
    bits[rows[valid]] = True
    validity = pa.py_buffer(np.packbits(bits, bitorder="little"))
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(values.shape[1]), n, [validity, pa.py_buffer(full)])


@dataclass
class ReadBatch:
    """A batch :meth:`Processor.read` checked and read: per record its id, source URI, member,
    its bytes or why there are none, and the bytes' SHA-256; ``seconds``: the time spent on this
    batch per stage (``read``, then ``decode_hash`` and ``thumbnail`` once
    :meth:`Processor.hash_read` has hashed it), the batch's share of ``stage_seconds``."""

    ids: list[str]
    source_uri: list[str | None]
    member: list[str | None]
    data: list[Blob | None]
    errors: list[str | None]
    sha256: list[bytes | None]
    seconds: dict[str, float] = field(default_factory=dict)


class Processor:
    """Maps a RecordBatch with ``id`` (string) and either ``bytes`` (binary) or ``path`` (string:
    a local path or ``file://`` URI), optionally ``source_uri`` and ``member`` (strings), to a
    RecordBatch of :data:`SCHEMA` with one row per input row, in order.

    Never raises for bad records: each row gets a status (a :class:`mmcore.Status` name, or
    ``READ_ERROR`` for a path that cannot be read), the error message and the stage that failed.
    Raises ValueError only for a batch of the wrong shape (no ``id`` or a null id, neither
    ``bytes`` nor ``path``, a ``bytes`` column that is not binary). One decode serves every hash,
    and the thumbnail too where that decode holds its input (exact modes' full-size decode of a
    JPEG, PNG, WebP, GIF or AVIF); otherwise the thumbnail is a second, reduced-size decode. Either way
    the pixels are ``thumbnail_batch``'s.
    ``stage_seconds`` accumulates the time spent per stage over every call. Calls (and
    :meth:`read` / :meth:`hash_read`) may run in several threads at once: the batches in flight
    then decode on ``workers`` threads between them (a :class:`mmcore.ThreadBudget`).

    ``device="gpu"`` (exact mode only) gives the same rows: JPEGs are decoded on the CPU by the
    exact decoder and hashed on the GPU (:mod:`mmcore.gpu`, whose kernels are bit-exact with the
    CPU's exact mode), their thumbnails made by ``thumbnail_batch``; other formats go through the
    CPU path. The GPU context is created on the first batch (one per Processor).

    ``fallback="pillow"``: the records mmcore's decoder names UNSUPPORTED are decoded by Pillow
    (``hash_batch(..., fallback="pillow")``) and hashed (and thumbnailed) by mmcore from its pixels; their
    ``format`` is Pillow's name for it (``tiff``, ``bmp``, ``heif``...). Raises ImportError at
    construction when Pillow is missing.
    """

    def __init__(self, config: Config | dict[str, Any] | None = None) -> None:
        if isinstance(config, dict):
            config = Config.from_dict(config)
        self.config = config if config is not None else Config()
        self.stage_seconds: dict[str, float] = {"read": 0.0, "decode_hash": 0.0, "thumbnail": 0.0}
        self._threads = self.config.workers or None
        self._max_pixels = self.config.max_pixels or None
        # Shared by the batches hashed at once (mmcore run hashes the next batch while the last
        # one's slowest images finish): between them they decode on at most `workers` threads.
        self._budget = ThreadBudget(self._threads or os.cpu_count() or 1)
        self._seconds_lock = threading.Lock()
        self._gpu: GpuContext | None = None
        if self.config.device == "gpu" and self.config.hash_mode != "exact":
            raise ValueError(
                "device 'gpu' hashes in exact mode (its kernels are exact); use hash_mode 'exact'"
            )
        if self.config.fallback == "pillow":
            fallback.load()

    def _add_seconds(self, stage: str, seconds: float, batch: dict[str, float] | None = None) -> None:
        """Adds to ``stage_seconds`` and to the batch's own ``seconds`` (:class:`ReadBatch`)."""
        with self._seconds_lock:  # batches may be read and hashed in several threads at once
            self.stage_seconds[stage] += seconds
        if batch is not None:
            batch[stage] = batch.get(stage, 0.0) + seconds

    @property
    def schema(self) -> pa.Schema:
        return output_schema(self.config.hash_size).with_metadata(
            {
                b"mmcore_version": __version__.encode(),
                b"mmcore_config_hash": self.config.config_hash().encode(),
            }
        )

    def __call__(self, batch: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
        return self.hash_read(self.read(batch))

    def read(self, batch: pa.RecordBatch | pa.Table) -> ReadBatch:
        """The first half of a call: the batch checked, its records' bytes read (files on a few
        threads) and their SHA-256 computed (on the Processor's threads). Safe to run in another
        thread than :meth:`hash_read` (``mmcore run`` reads the next batch while this one is
        hashed); raises as a call does."""
        names = batch.schema.names
        if "id" not in names:
            raise ValueError(f"the batch needs an 'id' column; it has {names}")
        if "bytes" not in names and "path" not in names:
            raise ValueError(f"the batch needs a 'bytes' or a 'path' column; it has {names}")
        if "bytes" in names:
            t = batch.schema.field("bytes").type
            if not (pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_struct(t)):
                raise ValueError(
                    f"the 'bytes' column must be binary (or a Hugging Face image struct), got {t}; "
                    "paths go in a 'path' column"
                )
        n = batch.num_rows
        raw_ids = batch.column("id").to_pylist()
        if None in raw_ids:
            raise ValueError(
                f"the 'id' column has a null at row {raw_ids.index(None)}: every record needs an id"
            )
        ids = [id_text(v) for v in raw_ids]
        source_uri = batch.column("source_uri").to_pylist() if "source_uri" in names else [None] * n
        member = batch.column("member").to_pylist() if "member" in names else [None] * n
        t0 = time.perf_counter()
        data, read_err = self._contents(batch, n, source_uri, member)
        for i, p in enumerate(batch.column("path").to_pylist() if "path" in names else [None] * n):
            if source_uri[i] is None and p is not None:
                source_uri[i] = _as_uri(p)
        digests = _sha256_digests(data, self._budget.tokens)
        spent = time.perf_counter() - t0
        self._add_seconds("read", spent)
        return ReadBatch(ids, source_uri, member, data, read_err, digests, {"read": spent})

    def hash_read(self, r: ReadBatch) -> pa.RecordBatch:
        """The second half of a call: the rows of a batch :meth:`read` gave."""
        return self._process(r.ids, r.source_uri, r.member, r.data, r.errors, r.sha256, r.seconds)

    def _contents(
        self,
        batch: pa.RecordBatch | pa.Table,
        n: int,
        source_uri: list[str | None],
        member: list[str | None],
    ) -> tuple[list[Blob | None], list[str | None]]:
        """Each row's bytes (the ``bytes`` value, else the file at ``path``) or why there are none."""
        names = batch.schema.names
        data: list[Blob | None] = [None] * n
        paths: list[str | None] = batch.column("path").to_pylist() if "path" in names else [None] * n
        if "bytes" in names:
            col = batch.column("bytes")
            if pa.types.is_struct(col.type):  # a Hugging Face image column: struct<bytes, path>
                if "path" not in names:  # without bytes, the image is the file at its path
                    paths = struct_paths(col) or paths
                col = pc.struct_field(col, "bytes")
            data = _binary_values(col)
        errs: list[str | None] = [None] * n
        need: list[int] = []
        need_paths: list[str] = []
        limit = self.config.byte_limit
        for i in range(n):
            d = data[i]
            if d is not None and len(d) > limit:  # in memory already, but the rule is the files'
                data[i], errs[i] = None, over_limit(_record_name(source_uri[i], member[i]), len(d), limit)
            elif d is None:
                p = paths[i]
                if p is None:
                    errs[i] = "the record has neither bytes nor a path"
                else:
                    need.append(i)
                    need_paths.append(p)
        for i, (d, e) in zip(need, read_paths(need_paths, limit), strict=True):
            data[i], errs[i] = d, e
        return data, errs

    def _process(
        self,
        ids: list[str],
        source_uri: list[str | None],
        member: list[str | None],
        data: list[Blob | None],
        read_err: list[str | None],
        digests: list[bytes | None],
        spent: dict[str, float],
    ) -> pa.RecordBatch:
        # Column by column with numpy and Arrow, not row by row in Python: this part holds the GIL,
        # and on a host with many cores (or small images) its time per image bounds the throughput.
        cfg = self.config
        n = len(ids)
        has_data = np.fromiter((d is not None for d in data), bool, n)
        good = np.flatnonzero(has_data)
        blobs: list[Blob] = [d for d in data if d is not None]  # the rows of `good`, in order
        # Arrays of the rows that reach the decoder (m of them, index j; row good[j]).
        t0 = time.perf_counter()
        info_status, fmt, width, height, orient = _core.image_info_batch(blobs, cfg.exif_orientation)
        # The header's size also for an image over the pixel limit: it says how large it is.
        known = np.isin(info_status, (Status.OK, Status.OK_WARNING, Status.TOO_LARGE))
        orient = np.where(orient == 0, 1, orient)
        kinds = cfg.hashes
        # Thumbnails come from the hash decode where it already holds their input (full-size RGB):
        # the same pixels as thumbnail_batch, without decoding twice.
        thumb_args = (
            {
                "short_side": cfg.thumbnail,
                "exif_orientation": cfg.exif_orientation,
                "max_pixels": self._max_pixels,
                "upscale": False,
            }
            if cfg.thumbnail > 0
            else None
        )
        if cfg.device == "gpu":
            hr = self._gpu_hash(blobs, kinds, thumb_args)
        else:
            hr = hash_batch(
                blobs,
                kinds=kinds,  # type: ignore[arg-type]  # names checked by Config
                mode=cfg.hash_mode,  # type: ignore[arg-type]
                exif_orientation=cfg.exif_orientation,
                max_pixels=self._max_pixels,
                threads=self._threads,
                thumbnail=thumb_args,
                budget=self._budget,
                hash_size=cfg.hash_size,
            )
        formats = _FORMAT_NAMES[fmt]
        if cfg.fallback == "pillow":
            width, height = np.array(width), np.array(height)
            self._fallback(blobs, hr, formats, width, height, orient, known, thumb_args)
        self._add_seconds("decode_hash", time.perf_counter() - t0, spent)
        turned = (orient >= 5) & cfg.exif_orientation
        ok = np.asarray(hr.ok, bool)
        everyone = np.ones(len(good), bool)
        cols: dict[str, pa.Array] = {
            "id": pa.array(ids, pa.string()),
            "source_uri": pa.array(source_uri, pa.string()),
            "member": pa.array(member, pa.string()),
            "byte_size": _spread(n, good, np.fromiter(map(len, blobs), np.int64, len(blobs)), everyone),
            "content_sha256": pa.array(digests, pa.binary(32)),
            # The format is the signature's, also for a record that then fails (a damaged or
            # lossless JPEG is still a JPEG); null when no signature matched.
            "format": pa.array(_rows(n, good, formats), pa.string()),
            "width": _spread(n, good, np.where(turned, height, width), known, pa.int32()),
            "height": _spread(n, good, np.where(turned, width, height), known, pa.int32()),
            "orientation": _spread(n, good, orient, known, pa.int8()),
        }
        sized = output_schema(cfg.hash_size).field("phash").type  # (self.schema also hashes the config)
        for k in SIZED_COLUMNS:
            if k not in kinds:
                cols[k] = pa.nulls(n, sized)
            elif pa.types.is_fixed_size_binary(sized):  # hash_size over 8: big-endian rows
                cols[k] = _fixed_binary(n, good, np.asarray(hr[k]).reshape(len(good), sized.byte_width), ok)
            else:
                cols[k] = _spread(n, good, u64_to_i64(np.ascontiguousarray(hr[k])), ok)
        if "pdq" in kinds:
            cols["pdq"] = _fixed_binary(n, good, np.asarray(hr["pdq"]).reshape(len(good), 32), ok)
            cols["pdq_quality"] = _spread(n, good, hr["pdq_quality"], ok, pa.int16())
        else:
            cols["pdq"], cols["pdq_quality"] = pa.nulls(n, pa.binary(32)), pa.nulls(n, pa.int16())
        # The text columns stay object arrays until the end: a failed thumbnail changes its row.
        text: dict[str, npt.NDArray[np.object_]] = {
            "status": _rows(n, good, _STATUS_NAMES[hr.status], READ_ERROR),
            "error": _rows(n, good, np.array(hr.errors, dtype=object)),
            "error_stage": _rows(
                n, good, np.array([None, "decode"], dtype=object)[(~ok).astype(np.intp)], "read"
            ),
            "thumbnail": np.full(n, None, dtype=object),
        }
        missing = np.flatnonzero(~has_data)
        for i in missing.tolist():
            text["error"][i] = read_err[i]
        if hr.thumbnails is not None:
            keep = np.flatnonzero(ok).tolist()
            self._thumbnails(text, good[keep].tolist(), hr.thumbnails, keep, spent)
        for k, v in text.items():
            cols[k] = pa.array(v, SCHEMA.field(k).type)
        return pa.RecordBatch.from_arrays([cols[f.name] for f in SCHEMA], schema=self.schema)

    def _gpu_hash(
        self, blobs: list[Blob], kinds: Sequence[str], thumb_args: dict[str, Any] | None
    ) -> HashResult:
        """hash_batch's result (exact mode) with the JPEGs hashed on the GPU (mmcore.gpu)."""
        from .. import gpu

        if self._gpu is None:
            self._gpu = gpu.Context()
        return self._gpu.hash_sources(
            blobs, kinds, max_pixels=self._max_pixels, threads=self._threads, thumbnail=thumb_args
        )

    def _fallback(
        self,
        blobs: list[Blob],
        hr: HashResult,
        formats: npt.NDArray[np.object_],
        width: npt.NDArray[Any],
        height: npt.NDArray[Any],
        orient: npt.NDArray[Any],
        known: npt.NDArray[np.bool_],
        thumb_args: dict[str, Any] | None,
    ) -> None:
        """Pillow's decode of the records mmcore named UNSUPPORTED, hashed and thumbnailed as
        ``hash_batch(..., fallback="pillow")`` does: their entries in ``hr`` and in the header
        columns replaced (in place) by what Pillow made of them, or by why it could not."""
        cfg = self.config
        decoded = _fallback(
            blobs,
            hr,
            mode=cfg.hash_mode,
            dihedral=False,
            exif_orientation=cfg.exif_orientation,
            max_pixels=self._max_pixels,
            threads=self._threads,
            budget=self._budget,
            thumb=None if thumb_args is None else _thumbnail_codes(**thumb_args),
            sizes=(cfg.hash_size, 4, 3),  # hash_size; imagehash's highfreq_factor and binbits
        )
        for j, d in decoded:
            if d.format is not None:
                formats[j] = d.format
            if d.width > 0:
                width[j], height[j], orient[j], known[j] = d.width, d.height, d.orientation, True

    def _thumbnails(
        self,
        col: dict[str, npt.NDArray[np.object_]],
        rows: Sequence[int],
        tb: BatchResult,
        picks: Sequence[int],
        spent: dict[str, float],
    ) -> None:
        """Encode the thumbnails ``tb`` made for the records that hashed (``picks`` index ``tb``,
        ``rows`` the output rows); a failed one marks its row failed at stage thumbnail."""
        from .. import encode_batch

        cfg = self.config
        t0 = time.perf_counter()
        images = [tb.images[j] for j in picks]
        fmt: Literal["jpeg", "webp"] = "webp" if cfg.thumbnail_format == "webp" else "jpeg"
        method = cfg.thumbnail_webp_method if fmt == "webp" else None
        enc = encode_batch(
            images, format=fmt, quality=cfg.thumbnail_quality, threads=self._threads, method=method
        )
        for e, (i, j) in enumerate(zip(rows, picks, strict=True)):
            if enc.data[e] is not None:
                col["thumbnail"][i] = enc.data[e]
                continue
            failed = (
                Status(int(tb.status[j])) if tb.status[j] > Status.OK_WARNING else Status(int(enc.status[e]))
            )
            col["status"][i], col["error_stage"][i] = failed.name, "thumbnail"
            col["error"][i] = tb.errors[j] or enc.errors[e]
        self._add_seconds("thumbnail", time.perf_counter() - t0, spent)


def failure_batch(
    ids: Sequence[str],
    source_uri: Sequence[str | None],
    member: Sequence[str | None],
    status: str,
    errors: Sequence[str],
    stage: str,
    config: Config,
) -> pa.RecordBatch:
    """Rows for records refused before any processing (e.g. a tar member outside the archive)."""
    n = len(ids)
    col: dict[str, list[Any]] = {f.name: [None] * n for f in SCHEMA}
    col.update(
        id=list(ids),
        source_uri=list(source_uri),
        member=list(member),
        status=[status] * n,
        error=list(errors),
        error_stage=[stage] * n,
    )
    return pa.RecordBatch.from_pydict(col, schema=Processor(config).schema)
