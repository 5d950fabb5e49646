"""DALI pipelines built from mmcore's operators: decode, hash and thumbnail inside NVIDIA DALI,
without ever dying on a bad image.

``build(source, ...)`` returns an :class:`ImagePipeline`; iterating it yields one Arrow
RecordBatch (or a dict of numpy arrays) per DALI batch, a row per image with its status::

    import mmcore.pipeline as mp
    for batch in mp.build("photos/", hashes=("phash", "pdq")):
        ...

Sources: a directory (recursive), a file, a glob or a list of paths (DALI's file reader);
WebDataset ``.tar`` shards (DALI's webdataset reader); ``.parquet`` files with a bytes or path
column, an Arrow Table / RecordBatch, or an iterable of RecordBatches (an external source fed from
Python). A directory or glob that holds several kinds is read kind by kind: files, then tars, then
Parquet.

The operators live in ``libmmcore_dali.so`` (``fn.mmcore_decode``, ``fn.mmcore_hash``), built
with mmcore when DALI is importable at build time and tied to that exact DALI version:
:func:`load_plugin` checks it and loads the plugin once per process. Load it (or call
:func:`build`) before importing DALI's dynamic mode, whose operator list is fixed at import.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import sys
import threading
import warnings
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from . import _core
from .status import READ_ERROR, SOURCE_ERROR, Status

PLUGIN_NAME = "libmmcore_dali.so"
PLUGIN_META = "dali_plugin.json"
#: The DALI wheel the plugin is built and tested with (the ``dali`` extra pins it).
DALI_PACKAGE = "nvidia-dali-cuda130"

HASH_KINDS = ("ahash", "dhash", "dhash_vertical", "phash", "phash_simple", "whash", "colorhash", "pdq")
#: Extensions DALI's webdataset reader takes as a sample's image (members with others are skipped).
_WDS_BOTH_CASES = ("jpg", "jpeg", "png", "webp", "gif", "avif")  # also taken in capitals
WDS_EXTENSIONS = (*_WDS_BOTH_CASES, "jpe", "jfif", *(e.upper() for e in _WDS_BOTH_CASES))
#: (status name, message) for a row that never reached the decoder
Override = tuple[str, str] | None
_FORMATS = (None, *_core.image_format_names()[1:])  # by the plugin's format code

# DALI registers operators process-wide, and a second load of the plugin from another path aborts
# the process ("OpSchema already defined"): the loaded path is process state by nature.
_lock = threading.Lock()
_loaded: str | None = None


def plugin_path() -> Path:
    """Where the plugin is (whether or not this build has one)."""
    return Path(__file__).resolve().parent / PLUGIN_NAME


def built_against() -> str | None:
    """The DALI version the installed plugin was built against, or None when there is no plugin."""
    meta = plugin_path().parent / PLUGIN_META
    if not meta.is_file() or not plugin_path().is_file():
        return None
    return str(json.loads(meta.read_text())["dali_version"])


def _installed_dali_version() -> str:
    try:
        import nvidia.dali as dali
    except ImportError as e:
        raise ImportError(
            f"mmcore.pipeline needs NVIDIA DALI: pip install 'mmcore[dali]' ({DALI_PACKAGE}) ({e})"
        ) from e
    return str(dali.__version__)


def load_plugin() -> str:
    """Load ``libmmcore_dali.so`` into DALI (once per process) and return its path.

    Raises ImportError, saying what to do, when DALI is missing, when this mmcore was built
    without the plugin, or when the installed DALI is not the version the plugin was built
    against (a plugin only runs with the DALI it was compiled for).
    """
    global _loaded
    want = built_against()
    if want is None:
        raise ImportError(
            f"this mmcore was built without its DALI plugin ({plugin_path()} is missing): install "
            f"{DALI_PACKAGE} first, then build mmcore without build isolation so that the build sees it "
            f"(pip install --no-build-isolation '.[dali]'; scripts/setup.sh test does this)"
        )
    have = _installed_dali_version()
    if have != want:
        raise ImportError(
            f"mmcore's DALI plugin was built against DALI {want} but DALI {have} is installed: "
            f"pip install {DALI_PACKAGE}=={want}, or rebuild mmcore with DALI {have} present"
        )
    with _lock:
        if _loaded is None:
            if "nvidia.dali.experimental.dynamic" in sys.modules:
                warnings.warn(
                    "DALI's dynamic mode was imported before mmcore's plugin: its operator list "
                    "will not show mmcore_decode / mmcore_hash (the pipeline API does)",
                    RuntimeWarning,
                    stacklevel=2,
                )
            from nvidia.dali import plugin_manager

            plugin_manager.load_library(str(plugin_path()))
            _loaded = str(plugin_path())
        return _loaded


# ---- sources ----


@dataclass
class _Part:
    """One DALI pipeline's worth of input: WebDataset tars, or an Arrow stream (files, Parquet,
    batches) fed from Python."""

    kind: Literal["tar", "arrow"]
    tars: list[str] = field(default_factory=list)  # absolute paths
    root: str = ""  # the source folder: tar ids start with the tar's path relative to it
    batches: Iterable[Any] | None = None  # arrow: RecordBatches of id + bytes or path


def _file_batches(paths: list[str], ids: list[str], size: int = 256) -> Iterator[Any]:
    """The files as RecordBatches of (id, path): read inside the feed, so that a file that
    vanished or cannot be read is a READ_ERROR row (DALI's file reader stops the pipeline on an
    empty or unreadable file)."""
    import pyarrow as pa

    from .jobs.processor import path_to_uri, text

    for i in range(0, len(paths), size):
        # file:// URIs and text() ids, as mmcore run: a name that is not UTF-8 survives both.
        yield pa.record_batch(
            {
                "id": [text(n) for n in ids[i : i + size]],
                "path": [path_to_uri(p) for p in paths[i : i + size]],
            }
        )


def _parts(source: Any) -> Iterable[_Part]:
    import pyarrow as pa

    if isinstance(source, (pa.Table, pa.RecordBatch)):
        batches = source.to_batches() if isinstance(source, pa.Table) else [source]
        return [_Part("arrow", batches=batches)]
    if isinstance(source, (str, os.PathLike)):
        from .jobs.processor import text
        from .jobs.sources import _expand, file_is_image

        tars, parquets, rest, root = _expand(os.fspath(source))
        parts: list[_Part] = []
        files, ids = [], []
        for p in rest:
            rel = os.path.relpath(p, root)
            if file_is_image(p, rel):  # unreadable: a READ_ERROR row unless its name marks a sidecar
                files.append(p)
                ids.append(text(rel))
        if files:
            parts.append(_Part("arrow", batches=_file_batches(files, ids)))
        last = [_Part("arrow", batches=_job_batches("parquet", parquets, root))] if parquets else []
        return itertools.chain(parts, _tar_parts(tars, root), last)
    if isinstance(source, Sequence) and all(isinstance(s, (str, os.PathLike)) for s in source):
        paths = [os.path.abspath(os.fspath(s)) for s in source]
        # A path that does not exist is a READ_ERROR row when it is fed, as a file that vanishes
        # from a folder is: one bad path never stops the batch.
        not_files = [p for p in paths if os.path.isdir(p)]
        if not_files:
            raise ValueError(
                f"{len(not_files)} source path(s) are not files, e.g. {not_files[0]!r} (pass a folder "
                "as the source itself, not inside a list)"
            )
        return [_Part("arrow", batches=_file_batches(paths, [os.fspath(s) for s in source]))] if paths else []
    if isinstance(source, Iterable) and not isinstance(source, (bytes, bytearray, memoryview, str, Mapping)):
        # A list is checked now (and its Tables cut into batches once); an iterator as it runs.
        batches = list(_checked_batches(source)) if isinstance(source, Sequence) else _checked_batches(source)
        return [_Part("arrow", batches=batches)]
    raise TypeError(_SOURCE_KINDS + f", not {type(source).__name__}")


#: Tars per DALI part: the first parts small (the pipeline starts after checking 4 tars, not
#: every one), then doubling up to the last value (a DALI pipeline is built per part).
_TARS_PER_PART = (4, 8, 16, 32, 64)
#: Threads that check tars (_tar_is_clean) ahead of the pipeline.
_TAR_CHECK_THREADS = 2


def _tar_parts(tars: list[str], root: str) -> Iterator[_Part]:
    """The tars as parts, in source order: consecutive tars DALI reads as mmcore run does form
    DALI parts, the others go through mmcore run's reader. Each tar is checked (every member
    header read: ~56 ms for 2,000 members, 93 minutes for 100,000 such tars) on a few threads
    as the pipeline runs, at most two parts' worth ahead (checks are Python: more would take the
    GIL from the pipeline), instead of all of them before its first batch."""
    if not tars:
        return
    ex = ThreadPoolExecutor(max_workers=min(_TAR_CHECK_THREADS, len(tars)))
    ahead: collections.deque[Any] = collections.deque()
    try:
        group: list[str] = []
        kind = False
        made = 0
        for i, t in enumerate(tars):
            cap = _TARS_PER_PART[min(made, len(_TARS_PER_PART) - 1)]
            while len(ahead) < 2 * cap and i + len(ahead) < len(tars):
                ahead.append(ex.submit(_tar_is_clean, tars[i + len(ahead)]))
            clean = ahead.popleft().result()
            if group and (clean != kind or len(group) >= cap):
                yield _tar_part(kind, group, root)
                group, made = [], made + 1
            group.append(t)
            kind = clean
        if group:
            yield _tar_part(kind, group, root)
    finally:  # a pipeline closed early does not wait for the checks of the tars it will not read
        ex.shutdown(wait=False, cancel_futures=True)


def _tar_part(clean: bool, tars: list[str], root: str) -> _Part:
    return (
        _Part("tar", tars=tars, root=root)
        if clean
        else _Part("arrow", batches=_job_batches("tar", tars, root))
    )


_SOURCE_KINDS = (
    "source must be a directory, file, glob or list of paths, a pyarrow Table / RecordBatch or an "
    "iterable of RecordBatches"
)


def _checked_batches(source: Iterable[Any]) -> Iterator[Any]:
    """The caller's iterable, item by item, each one a RecordBatch (or Table, or a Refused record)."""
    import pyarrow as pa

    from .jobs.sources import Refused

    for item in source:
        if isinstance(item, pa.Table):
            yield from item.to_batches()
        elif isinstance(item, (pa.RecordBatch, Refused)):
            yield item
        else:
            hint = " (a list of paths must hold only paths)" if isinstance(item, (str, os.PathLike)) else ""
            raise TypeError(_SOURCE_KINDS + f"; the iterable gave a {type(item).__name__}{hint}")


def _tar_is_clean(path: str) -> bool:
    """True when DALI's webdataset reader gives the same rows, with the same ids, as ``mmcore run``:

    - the tar reads to its end-of-archive blocks, and no member is one that mmcore run refuses (an
      absolute path, a ``..`` component, a link, a repeated name: DALI would strip, skip or
      repeat those silently);
    - every member mmcore run reads as an image is one that DALI takes as its own sample: an ASCII
      name with no PAX header (DALI reads the ustar name only), a base name that is ``key.ext``
      with one dot, not leading (DALI splits at the first dot), ``ext`` one of
      :data:`WDS_EXTENSIONS` (matched by case), and a key no other image member has (DALI keeps
      one component per key);
    - at least one such member (DALI refuses a tar with no sample);
    - its own path is UTF-8 (DALI's reader takes paths as UTF-8 text).

    Other tars go through mmcore run's own tar reader, which gives those rows, or SOURCE_ERROR rows."""
    import posixpath
    import tarfile

    from .jobs.sources import _bad_member, _member_is_image, ends_cleanly, tar_members

    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False

    names: set[str] = set()
    keys: set[str] = set()
    try:
        with tarfile.open(path, "r:") as tf:
            for m in tar_members(tf):  # plain headers read natively, the rest by tarfile
                if _bad_member(m) is not None or m.name in names or "path" in m.pax_headers:
                    return False
                names.add(m.name)
                if not m.isfile() or not _member_is_image(tf, m):
                    continue  # DALI skips these too: a sidecar's extension is none of WDS_EXTENSIONS
                base = posixpath.basename(m.name)
                key, _, ext = m.name.rpartition(".")
                if not m.name.isascii() or base.startswith(".") or base.count(".") != 1:
                    return False
                if ext not in WDS_EXTENSIONS or key in keys:
                    return False
                keys.add(key)
            end = tf.offset
        return bool(keys) and ends_cleanly(path, end)
    except (tarfile.TarError, OSError, EOFError, ValueError):  # ValueError: a size of 2^80, say
        return False


def _job_batches(kind: Literal["tar", "parquet"], paths: list[str], root: str) -> Iterator[Any]:
    """mmcore run's reading of tars and Parquet files (its ids, its rules): RecordBatches of id
    and bytes or path, and Refused records (SOURCE_ERROR rows)."""
    from .jobs.config import DEFAULT_MAX_BYTES
    from .jobs.processor import path_to_uri
    from .jobs.sources import Shard

    for p in paths:
        # mmcore run's default limit too: a member over it is a row of its own, never read
        shard = Shard(os.path.basename(p), kind, path_to_uri(p), root)
        yield from shard.batches(256, max_bytes=DEFAULT_MAX_BYTES)


def _arrow_records(
    batch: Any, fallback_prefix: str
) -> tuple[list[str], list[bytes | memoryview | None], list[Override]]:
    """(ids, bytes or None, override or None) of an input RecordBatch with an id column and a
    bytes or path / ``file://`` URI column (the columns mmcore.Processor takes; a row with null
    bytes is read from its ``path`` where the batch, or its Hugging Face image struct, has one);
    a row with neither gets a READ_ERROR override."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from .jobs.processor import id_text, read_paths, struct_paths
    from .jobs.sources import parquet_columns

    id_col, bytes_col, path_col = parquet_columns(batch.schema)
    if bytes_col is None and path_col is None:
        raise ValueError(
            f"input batch has no bytes column and no path column (columns: {batch.schema.names}); "
            "name one bytes/image/content/data or path/uri/file/filename"
        )
    n = batch.num_rows
    raw_ids = batch.column(id_col).to_pylist() if id_col else [None] * n
    ids = [id_text(v) if v is not None else f"{fallback_prefix}#{i}" for i, v in enumerate(raw_ids)]
    datas: list[bytes | memoryview | None] = [None] * n  # files read come as memoryviews
    paths: list[str | None] = [None] * n
    if path_col is not None:
        paths = batch.column(path_col).to_pylist()
    elif "path" in batch.schema.names and pa.types.is_string(batch.schema.field("path").type):
        paths = batch.column("path").to_pylist()  # mmcore's own source batches: bytes, else path
    if bytes_col is not None:
        col = batch.column(bytes_col)
        if pa.types.is_struct(col.type):  # a Hugging Face image struct: its bytes, else its path
            paths = struct_paths(col) or paths
            col = pc.struct_field(col, "bytes")
        datas = col.to_pylist()
    missing = "the record has neither bytes nor a path"  # as mmcore run's Processor says
    errors: list[Override] = [
        None if d is not None or p is not None else (READ_ERROR, missing)
        for d, p in zip(datas, paths, strict=True)
    ]
    given = [i for i in range(n) if datas[i] is None and paths[i] is not None]
    for i, (data, err) in zip(given, read_paths([str(paths[i]) for i in given]), strict=True):
        datas[i], errors[i] = data, None if err is None else (READ_ERROR, err)
    return ids, datas, errors


# ---- the pipeline ----

Output = Literal["arrow", "numpy"]


class ImagePipeline:
    """Iterates a source through a DALI pipeline of mmcore operators; see :func:`build`.

    Each item is a batch of rows (``batch_size`` at most): an Arrow RecordBatch of
    :attr:`schema` (``output="arrow"``) or a dict of numpy arrays and lists (``output="numpy"``:
    hashes as uint64, pdq as (N, 32) uint8, status as uint8 Status values). Every input image
    gets exactly one row, in source order; a bad one gets its status and message.
    """

    def __init__(
        self,
        parts: Iterable[_Part],
        *,
        hashes: tuple[str, ...],
        mode: str,
        thumbnail: int,
        thumbnail_format: str,
        thumbnail_quality: int | None,
        thumbnail_webp_method: int,
        batch_size: int,
        num_threads: int,
        max_pixels: int,
        output: Output,
        device: str = "cpu",
        fallback: str | None = None,
        sizes: tuple[int, int, int] = (8, 4, 3),
    ) -> None:
        self._parts = parts
        self.sizes = sizes  # imagehash's hash_size, highfreq_factor, binbits
        self.device = device
        self.fallback = fallback
        self.hashes = hashes
        self.mode = mode
        self.thumbnail = thumbnail
        self.thumbnail_format = thumbnail_format
        self.thumbnail_quality = thumbnail_quality
        self.thumbnail_webp_method = thumbnail_webp_method
        self.batch_size = batch_size
        self.num_threads = num_threads
        self.max_pixels = max_pixels
        self.output = output
        self._used = False

    @property
    def schema(self) -> Any:
        """The Arrow schema of the batches (hashes as imagehash's int64, like ``mmcore run``; a
        kind over 64 bits at other sizes as ``binary(ceil(bits / 8))``, big-endian)."""
        import pyarrow as pa

        fields = [
            pa.field("id", pa.string(), nullable=False),
            pa.field("format", pa.string()),
            pa.field("width", pa.int32()),
            pa.field("height", pa.int32()),
            pa.field("orientation", pa.int8()),
        ]
        for k in self.hashes:
            if k == "pdq":
                fields += [pa.field("pdq", pa.binary(32)), pa.field("pdq_quality", pa.int32())]
            elif self._bits(k) > 64:
                fields.append(pa.field(k, pa.binary((self._bits(k) + 7) // 8)))
            else:
                fields.append(pa.field(k, pa.int64()))
        if self.thumbnail:
            fields.append(pa.field("thumbnail", pa.binary()))
        fields += [pa.field("status", pa.string(), nullable=False), pa.field("error", pa.string())]
        return pa.schema(fields)

    def _bits(self, kind: str) -> int:
        """The kind's width at this pipeline's sizes."""
        from .hashing import hash_bits

        return hash_bits(kind, hash_size=self.sizes[0], binbits=self.sizes[2])

    def __iter__(self) -> Iterator[Any]:
        if self._used:
            raise RuntimeError(
                "an ImagePipeline runs once: call mmcore.pipeline.build again for another pass"
            )
        self._used = True
        for part in self._parts:
            yield from self._run_part(part)

    def to_table(self) -> Any:
        """Every batch in one Arrow Table (``output="arrow"`` only)."""
        import pyarrow as pa

        if self.output != "arrow":
            raise ValueError('to_table() needs output="arrow"')
        return pa.Table.from_batches(list(self), schema=self.schema)

    # -- one DALI pipeline per part --

    def _graph(self, encoded: Any) -> dict[str, Any]:
        from nvidia.dali import fn as dali_fn

        fn: Any = dali_fn  # the plugin's operators exist only at run time
        # One decode: full size, not turned (what the exact hashes read); the thumbnail comes from
        # it where it is the thumbnail's input, else from a second, reduced decode inside the op.
        decoded = fn.mmcore_decode(
            encoded,
            exif_orientation=False,
            pillow_i16=True,
            max_pixels=self.max_pixels,
            thumbnail=self.thumbnail,
        )
        img, status, msg, meta = decoded[:4]
        outs = {"status": status, "msg": msg, "meta": meta}
        if self.device == "gpu":  # the hashes on the GPU (the same bits); outputs copied back in _drain
            hashed = fn.mmcore_hash(img.gpu(), kinds=list(self.hashes), mode=self.mode, device="gpu")
        else:
            hs, hf, bb = self.sizes
            hashed = fn.mmcore_hash(
                img, kinds=list(self.hashes), mode=self.mode, hash_size=hs, highfreq_factor=hf, binbits=bb
            )
        names = list(self.hashes) + (["pdq_quality"] if "pdq" in self.hashes else []) + ["hstatus", "hmsg"]
        outs.update(zip(names, hashed, strict=True))
        if self.thumbnail:
            outs.update(timg=decoded[4], tstatus=decoded[5], tmsg=decoded[6])
        if self.fallback:  # the bytes, for the records mmcore_decode names UNSUPPORTED
            outs["encoded"] = encoded
        return outs

    def _pipeline(self, reader: Any, *, source_info: bool) -> tuple[Any, list[str]]:
        from nvidia.dali import Pipeline, fn

        pipe = Pipeline(
            batch_size=self.batch_size,
            num_threads=self.num_threads,
            device_id=0 if self.device == "gpu" else None,  # None: DALI's CPU-only mode, no GPU needed
            prefetch_queue_depth=2,
        )
        with pipe:
            encoded = reader()
            outs = self._graph(encoded)
            if source_info:
                outs["source_info"] = fn.get_property(encoded, key="source_info")
            names = list(outs)
            pipe.set_outputs(*outs.values())
        pipe.build()
        return pipe, names

    def _run_part(self, part: _Part) -> Iterator[Any]:
        load_plugin()
        from nvidia.dali import fn, types

        if part.kind == "tar":
            tars = part.tars
            pipe, names = self._pipeline(
                lambda: fn.readers.webdataset(
                    paths=tars,
                    ext=[";".join(WDS_EXTENSIONS)],
                    missing_component_behavior="skip",
                    name="reader",
                    pad_last_batch=True,
                ),
                source_info=True,
            )
            total = int(pipe.reader_meta("reader")["epoch_size"])
            yield from self._drain(pipe, names, total, tars, None, part.root)
        else:
            pending: collections.deque[tuple[list[str], list[Override]]] = collections.deque()
            assert part.batches is not None
            feed = _ArrowFeed(part.batches, self.batch_size, pending)
            pipe, names = self._pipeline(
                lambda: fn.external_source(source=feed, batch=True, dtype=types.UINT8, ndim=1, no_copy=False),
                source_info=False,
            )
            yield from self._drain(pipe, names, None, None, pending)

    def _drain(
        self,
        pipe: Any,
        names: list[str],
        total: int | None,
        tars: list[str] | None,
        pending: collections.deque[tuple[list[str], list[Override]]] | None,
        root: str = "",
    ) -> Iterator[Any]:
        done = 0
        tar_set = frozenset(tars or ())
        try:
            while total is None or done < total:
                try:
                    outs = pipe.run()
                except StopIteration:
                    break
                raw = {
                    k: (o.as_cpu() if hasattr(o, "as_cpu") else o) for k, o in zip(names, outs, strict=True)
                }
                n = len(raw["status"])
                if total is not None:
                    n = min(n, total - done)  # the reader pads the last batch with repeats
                if pending is not None:
                    ids, overrides = pending.popleft()
                else:
                    info = [
                        bytes(np.asarray(raw["source_info"][i])).decode("utf-8", "replace") for i in range(n)
                    ]
                    assert tars is not None
                    ids, overrides = [_wds_id(s, tar_set, root) for s in info], [None] * n
                done += n
                yield self._batch(raw, n, ids, overrides)
        finally:
            del pipe

    def _batch(self, raw: dict[str, Any], n: int, ids: list[str], overrides: list[Override]) -> Any:
        """One output batch. ``overrides[i]`` (status name, message) replaces what the decoder said
        about an empty placeholder sample (unreadable file, null cell, refused tar member)."""

        def dense(name: str) -> npt.NDArray[Any]:  # a uniform-shape output as one array
            return np.asarray(raw[name].as_array())[:n]

        def text(name: str) -> list[str]:
            return [bytes(np.asarray(raw[name][i])).decode("utf-8", "replace") for i in range(n)]

        status = dense("status").astype(np.uint8)
        errors: list[str | None] = [m or None for m in text("msg")]
        hstatus = dense("hstatus")
        hmsg = text("hmsg")
        meta = dense("meta").reshape(n, 4)
        ok = np.isin(status, (Status.OK, Status.OK_WARNING))
        for i in range(n):
            if overrides[i] is not None:
                ok[i] = False
            elif ok[i] and hstatus[i] not in (Status.OK, Status.OK_WARNING):
                status[i], errors[i], ok[i] = hstatus[i], hmsg[i], False
        out: dict[str, Any] = {
            "id": ids,
            "format": [_FORMATS[f] if 0 < f < len(_FORMATS) else None for f in meta[:, 3].tolist()],
            "width": meta[:, 0].astype(np.int32),
            "height": meta[:, 1].astype(np.int32),
            "orientation": meta[:, 2].astype(np.int8),
        }
        for k in self.hashes:
            if k == "pdq":
                out["pdq"] = dense("pdq").astype(np.uint8).reshape(n, 32)
                out["pdq_quality"] = dense("pdq_quality").astype(np.int32)
            elif self._bits(k) > 64:
                out[k] = dense(k).astype(np.uint8).reshape(n, (self._bits(k) + 7) // 8)
            else:
                out[k] = dense(k).astype(np.uint64)
        thumbs: dict[int, Any] = {}
        if self.fallback:
            thumbs = self._fallback(raw, out, status, errors, ok, overrides)
        if self.thumbnail:
            out["thumbnail"] = self._thumbnails(raw, n, ok, status, errors, thumbs)
        out["status"], out["error"], out["ok"] = status, errors, ok
        names = [Status(int(status[i])).name for i in range(n)]
        for i, o in enumerate(overrides):
            if o is not None:
                names[i], errors[i] = o
        out["status_name"] = names
        return self._emit(out, n)

    def _fallback(
        self,
        raw: dict[str, Any],
        out: dict[str, Any],
        status: npt.NDArray[np.uint8],
        errors: list[str | None],
        ok: npt.NDArray[np.bool_],
        overrides: list[Override],
    ) -> dict[int, tuple[int, str | None, Any]]:
        """``fallback="pillow"``: the records mmcore_decode named UNSUPPORTED decoded by Pillow and
        hashed as ``hash_batch(..., fallback="pillow")`` does (mmcore run's rows); ``out``,
        ``status``, ``errors`` and ``ok`` updated in place. Returns their thumbnails by row."""
        from .hashing import HashResult, _fallback
        from .image import BatchResult, _thumbnail_codes

        js = [i for i in range(len(status)) if status[i] == Status.UNSUPPORTED and overrides[i] is None]
        if not js:
            return {}
        m = len(js)
        cols = {k: out[k][js] for k in (*self.hashes, "pdq_quality") if k in out}
        thumbs = None
        if self.thumbnail:
            thumbs = BatchResult(images=[None] * m, status=np.zeros(m, np.uint8), errors=[None] * m)
        hr = HashResult(cols, status[js], [errors[i] for i in js], self.hashes, thumbs)
        codes = None
        if self.thumbnail:
            codes = _thumbnail_codes(short_side=self.thumbnail, upscale=False, max_pixels=self.max_pixels)
        decoded = _fallback(
            [np.asarray(raw["encoded"][i]) for i in js],
            hr,
            mode=self.mode,
            dihedral=False,
            exif_orientation=True,
            max_pixels=self.max_pixels,
            threads=self.num_threads,
            budget=None,
            thumb=codes,
            sizes=self.sizes,
        )
        for k, col in hr.columns.items():
            out[k][js] = col
        for t, i in enumerate(js):
            status[i], errors[i] = hr.status[t], hr.errors[t]
            ok[i] = status[i] in (Status.OK, Status.OK_WARNING)
        for t, d in decoded:  # the header facts Pillow read (sizes as displayed, as the decoder's)
            i = js[t]
            if d.format is not None:
                out["format"][i] = d.format
            if d.width > 0:
                turned = d.orientation >= 5
                out["width"][i], out["height"][i] = (d.height, d.width) if turned else (d.width, d.height)
                out["orientation"][i] = d.orientation
        if thumbs is None:
            return {}
        return {i: (int(thumbs.status[t]), thumbs.errors[t], thumbs.images[t]) for t, i in enumerate(js)}

    def _emit(self, out: dict[str, Any], n: int) -> Any:
        if self.output == "arrow":
            return self._arrow(out, n)
        del out["ok"]
        return out

    def _thumbnails(
        self,
        raw: dict[str, Any],
        n: int,
        ok: npt.NDArray[np.bool_],
        status: npt.NDArray[np.uint8],
        errors: list[str | None],
        made: Mapping[int, tuple[int, str | None, Any]],
    ) -> list[bytes | None]:
        """The thumbnails, encoded: mmcore_decode's, or ``made[i]`` (status, message, image) for a
        record the fallback decoded."""
        from .image import encode_batch

        images: list[npt.NDArray[np.uint8] | None] = []
        for i in range(n):
            if i in made:
                ts, msg, img = made[i]
            else:
                ts, msg = int(np.asarray(raw["tstatus"][i])), None
                img = np.array(raw["timg"][i]) if ok[i] else None
            if ok[i] and ts not in (Status.OK, Status.OK_WARNING):
                msg = msg or bytes(np.asarray(raw["tmsg"][i])).decode("utf-8", "replace")
                status[i], errors[i], ok[i] = ts, f"thumbnail: {msg}", False
            images.append(img if ok[i] else None)
        fmt: Literal["jpeg", "webp"] = "webp" if self.thumbnail_format == "webp" else "jpeg"
        method = self.thumbnail_webp_method if fmt == "webp" else None
        enc = encode_batch(
            images, format=fmt, quality=self.thumbnail_quality, threads=self.num_threads, method=method
        )
        data: list[bytes | None] = list(enc.data)
        for i in range(n):
            if ok[i] and data[i] is None:
                status[i], errors[i], ok[i] = enc.status[i], f"thumbnail: {enc.errors[i]}", False
        return data

    def _arrow(self, out: dict[str, Any], n: int) -> Any:
        import pyarrow as pa

        ok = out["ok"]
        mask = ~ok
        no_header = np.asarray(out["width"]) == 0  # the decoder's info is zeros then (the format aside)
        cols: dict[str, Any] = {
            "id": pa.array(out["id"], pa.string()),
            "format": pa.array(out["format"], pa.string()),
            # null where the header could not be read
            "width": pa.array(out["width"], pa.int32(), mask=no_header),
            "height": pa.array(out["height"], pa.int32(), mask=no_header),
            "orientation": pa.array(out["orientation"], pa.int8(), mask=no_header),
        }
        for k in self.hashes:
            if k == "pdq":
                blobs = [out["pdq"][i].tobytes() for i in range(n)]
                cols["pdq"] = pa.array(blobs, pa.binary(32), mask=mask)
                cols["pdq_quality"] = pa.array(out["pdq_quality"], pa.int32(), mask=mask)
            elif self._bits(k) > 64:
                width = (self._bits(k) + 7) // 8
                cols[k] = pa.array([out[k][i].tobytes() for i in range(n)], pa.binary(width), mask=mask)
            else:
                cols[k] = pa.array(out[k].view(np.int64), pa.int64(), mask=mask)
        if self.thumbnail:
            cols["thumbnail"] = pa.array(out["thumbnail"], pa.binary())
        cols["status"] = pa.array(out["status_name"], pa.string())
        cols["error"] = pa.array(out["error"], pa.string())
        return pa.RecordBatch.from_pydict(cols, schema=self.schema)


class _ArrowFeed:
    """DALI external source over Arrow batches: yields lists of uint8 arrays (batch_size at
    most) and queues each batch's ids and read errors for the consumer, in order."""

    def __init__(
        self,
        batches: Iterable[Any],
        batch_size: int,
        pending: collections.deque[tuple[list[str], list[Override]]],
    ) -> None:
        self._batches = batches
        self._size = batch_size
        self._pending = pending

    def __iter__(self) -> Iterator[list[npt.NDArray[np.uint8]]]:
        from .jobs.sources import Refused

        empty = np.zeros(0, np.uint8)
        for k, batch in enumerate(self._batches):
            if isinstance(batch, Refused):  # mmcore run's refused tar member or unreadable tar
                self._pending.append(([batch.id], [(SOURCE_ERROR, batch.error)]))
                yield [empty]
                continue
            meta = batch.schema.metadata or {}
            prefix = meta.get(b"mmcore.source", f"batch{k}".encode()).decode()
            ids, blobs, errors = _arrow_records(batch, prefix)
            for s in range(0, len(ids), self._size):
                part = slice(s, s + self._size)
                arrays = [np.frombuffer(b, np.uint8) if b is not None else empty for b in blobs[part]]
                self._pending.append((ids[part], errors[part]))
                yield arrays


def _wds_id(source_info: str, tars: Collection[str], root: str = "") -> str:
    """``<tar path relative to root>/<member>`` (mmcore run's tar ids) from DALI's
    ``<tar path>:<offset>:<member>``. ``tars``: a set (a list is searched one by one). The tar is
    the prefix before some ``:`` (a path may hold ``:`` too): a lookup per ``:``, not per tar."""
    from .jobs.sources import id_prefix

    at = source_info.find(":")
    while at >= 0:
        t = source_info[:at]
        if t in tars:
            rest = source_info[at + 1 :].split(":", 1)
            if len(rest) == 2 and rest[0].isdigit():
                return f"{id_prefix(t, root)}/{rest[1]}"
        at = source_info.find(":", at + 1)
    return source_info


def build(
    source: Any,
    *,
    device: Literal["cpu", "gpu"] = "cpu",
    hashes: Sequence[str] = ("phash", "pdq"),
    mode: Literal["exact", "full"] = "exact",
    thumbnail: int | None = None,
    thumbnail_format: Literal["jpeg", "webp"] = "jpeg",
    thumbnail_quality: int | None = None,
    thumbnail_webp_method: int = 4,
    batch_size: int = 64,
    num_threads: int | None = None,
    max_pixels: int | None = None,
    output: Output = "arrow",
    fallback: Literal["pillow"] | None = None,
    hash_size: int = 8,
    highfreq_factor: int = 4,
    binbits: int = 3,
) -> ImagePipeline:
    """A DALI pipeline (mmcore_decode -> mmcore_hash, and a thumbnail branch) over ``source``.

    - ``hashes``: kinds of SPEC-hashes.md (ahash, dhash, dhash_vertical, phash, phash_simple,
      whash, colorhash, pdq); the bits equal :func:`mmcore.hash_batch` with the same ``mode``
      ("exact": imagehash / PDQ reference; "full": PDQ on the full-size image).
    - ``thumbnail=N``: also a JPEG (or WebP) of the EXIF-oriented image, short side N (never
      enlarged), made from the hash decode where it is the thumbnail's input, else from a second,
      reduced-size decode; ``thumbnail_webp_method`` is libwebp's method for WebP (0 fastest .. 6).
    - ``device="cpu"`` runs DALI's CPU-only mode (``device_id=None``): no GPU needed.
      ``device="gpu"`` (device 0) decodes with ``mmcore_decode`` on the CPU (DALI's own mixed
      decoder would bring back the dead pipeline on a corrupt JPEG) and hashes with the GPU
      ``mmcore_hash`` (exact mode; ahash, dhash, dhash_vertical, phash, phash_simple, pdq): the
      same rows. It needs a plugin built with the CUDA kernels and a CUDA device.
    - ``fallback="pillow"``: the records of formats mmcore does not decode (``UNSUPPORTED``:
      TIFF, BMP, ICO, PNM, JPEG 2000, PSD, QOI; HEIC with pillow-heif) are decoded by Pillow
      outside DALI and hashed by mmcore, as ``hash_batch(..., fallback="pillow")`` and ``mmcore run
      --fallback pillow`` do (the same rows); needs Pillow (``pip install 'mmcore[fallback]'``).
      The pipeline then also hands each record's bytes back to Python.
    - ``hash_size``, ``highfreq_factor``, ``binbits``: imagehash's sizes, as
      :func:`mmcore.hash_batch` takes them (CPU only); a kind of over 64 bits is then a
      ``binary(ceil(bits / 8))`` column (numpy: ``(N, ceil(bits / 8))`` uint8), big-endian rows.
    - Rows carry id, format, width / height (full size, as displayed after the EXIF
      orientation), orientation, the hashes (null where the record failed), status (a
      :class:`mmcore.Status` name, or READ_ERROR for an unreadable path) and error.
    """
    if device not in ("cpu", "gpu"):
        raise ValueError(f"device must be 'cpu' or 'gpu', not {device!r}")
    kinds = (hashes,) if isinstance(hashes, str) else tuple(hashes)  # one kind, as hash_batch takes it
    unknown = [k for k in kinds if k not in HASH_KINDS]
    if not kinds or unknown:
        raise ValueError(f"hashes must name one or more of {', '.join(HASH_KINDS)} (got {list(kinds)})")
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"hashes names a kind twice: {list(kinds)}")
    if mode not in ("exact", "full"):
        raise ValueError(f"mode must be 'exact' or 'full', not {mode!r}")
    if output not in ("arrow", "numpy"):
        raise ValueError(f"output must be 'arrow' or 'numpy', not {output!r}")
    if fallback not in (None, "pillow"):
        raise ValueError(f"fallback must be None or 'pillow', not {fallback!r}")
    if fallback is not None:
        from . import _pillow

        _pillow.load()  # ImportError naming the extra, before the pipeline is built
    from .hashing import hash_batch

    sizes = (hash_size, highfreq_factor, binbits)
    if sizes != (8, 4, 3):
        if device == "gpu":
            raise ValueError(
                "device='gpu' hashes at imagehash's default sizes; other sizes need device='cpu'"
            )
        sized: Any = [k for k in kinds if k != "pdq"]
        if sized:  # the library's size checks, for the kinds the sizes apply to
            hash_batch([], kinds=sized, hash_size=hash_size, highfreq_factor=highfreq_factor, binbits=binbits)
    if device == "gpu":
        _check_gpu(kinds, mode)
    if thumbnail_format not in ("jpeg", "webp"):
        raise ValueError(f"thumbnail_format must be 'jpeg' or 'webp', not {thumbnail_format!r}")
    from .jobs.config import _int_range

    _int_range("batch_size", batch_size, 1, 1 << 20)
    _int_range("thumbnail", thumbnail or 0, 0, 65535)
    _int_range("thumbnail_quality", 85 if thumbnail_quality is None else thumbnail_quality, 1, 100)
    _int_range("thumbnail_webp_method", thumbnail_webp_method, 0, 6)
    if max_pixels is not None:  # 0 would turn the operator's limit off: None is the default
        _int_range("max_pixels", max_pixels, 1, 1 << 62)
    threads = num_threads if num_threads is not None else (os.cpu_count() or 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"num_threads must be an integer >= 1, not {num_threads!r}")
    # DALI starts every thread asked for (5,000 asked: 5,000 OS threads); more than 4 per core
    # only adds switching.
    threads = min(threads, 4 * (os.cpu_count() or 1))
    from .image import DEFAULT_MAX_PIXELS

    load_plugin()
    return ImagePipeline(
        _parts(source),
        hashes=kinds,
        mode=mode,
        thumbnail=thumbnail or 0,
        thumbnail_format=thumbnail_format,
        thumbnail_quality=thumbnail_quality,
        thumbnail_webp_method=thumbnail_webp_method,
        batch_size=batch_size,
        num_threads=threads,
        max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels),
        output=output,
        device=device,
        fallback=fallback,
        sizes=(int(hash_size), int(highfreq_factor), int(binbits)),
    )


def _check_gpu(kinds: tuple[str, ...], mode: str) -> None:
    """device="gpu": the kinds and mode the GPU operator computes, a plugin that has it, a device."""
    from . import build_info
    from .gpu import GPU_KINDS
    from .status import DeviceError, Status

    cpu_only = [k for k in kinds if k not in GPU_KINDS]
    if cpu_only or mode != "exact":
        raise ValueError(
            f"device='gpu' hashes {', '.join(GPU_KINDS)} in exact mode; got {list(kinds)} in {mode!r} mode "
            "(use device='cpu' for the others)"
        )
    load_plugin()
    from nvidia.dali import backend

    if "MmcoreHash" not in backend.RegisteredGPUOps():  # type: ignore[attr-defined]
        raise DeviceError(
            Status.DEVICE, "this mmcore was built without CUDA: its DALI plugin has no GPU operators"
        )
    info = build_info()
    if not info.get("cuda_available"):
        raise DeviceError(
            Status.DEVICE, f"device='gpu': no usable CUDA device: {info.get('cuda_note') or 'none'}"
        )
