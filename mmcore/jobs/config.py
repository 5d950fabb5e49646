"""Job and processor options: one dataclass, loadable from TOML, with a stable hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

HASH_KINDS = ("phash", "dhash", "ahash", "pdq")
THUMBNAIL_FORMATS = ("jpeg", "webp")
FALLBACKS = ("none", "pillow")
#: What ``max_bytes = 0`` means: a record's bytes are read whole, so this bounds its memory.
DEFAULT_MAX_BYTES = 256 << 20
MODES = ("incremental", "overwrite", "retry-failed")
DEVICES = ("cpu", "gpu")


@dataclass
class Config:
    """Every option of :class:`mmcore.Processor` and of ``mmcore run``.

    A TOML file given to ``mmcore run --config`` holds these keys at its top level (unknown keys
    are an error); command-line flags override the file. The processor options (``hashes`` to
    ``id_column``) decide the output's content and make up :meth:`config_hash`; the job options
    (``shard_size`` to ``batch_size``) only decide how the work is cut and run.
    """

    #: Hash columns to compute (any of phash, dhash, ahash, pdq); the others are written as nulls.
    hashes: tuple[str, ...] = HASH_KINDS
    #: ``"exact"`` (imagehash / PDQ-reference bits) or ``"fast"`` (measured agreement, faster).
    hash_mode: str = "exact"
    #: imagehash's ``hash_size`` for phash, dhash and ahash (2..64; pHash: no prime factor over 5):
    #: ``hash_size ** 2`` bits. Up to 8 the columns are int64; over 8 ``binary(ceil(bits / 8))``,
    #: each value the hash as one big-endian integer (:func:`mmcore.jobs.schema.output_schema`).
    #: CPU only (``device = "gpu"`` hashes at 8).
    hash_size: int = 8
    #: Thumbnail short side in pixels; 0 writes no thumbnails (the column is null).
    thumbnail: int = 0
    #: Thumbnail encoding: ``"jpeg"`` or ``"webp"``.
    thumbnail_format: str = "jpeg"
    #: Thumbnail encoder quality, 1..100.
    thumbnail_quality: int = 85
    #: WebP thumbnails: libwebp's method, 0 (fastest: a job with 256 px thumbnails ran 1.7x faster
    #: than at 4) .. 6 (smallest); 4 is Pillow's default (the bytes equal Pillow's save at the same
    #: quality and method).
    thumbnail_webp_method: int = 4
    #: Apply the EXIF orientation (width/height are then those of the turned image).
    exif_orientation: bool = True
    #: Images with more pixels are refused (status TOO_LARGE) before any allocation; 0 = library default.
    max_pixels: int = 0
    #: ``"pillow"``: the records mmcore's decoder names UNSUPPORTED (TIFF, BMP, ICO, PNM, JPEG 2000,
    #: Photoshop, QOI; HEIF / HEIC where pillow-heif is installed) are decoded by Pillow and hashed by
    #: mmcore from its pixels (docs/jobs.md, "Other formats"; needs Pillow: ``mmcore[fallback]``).
    #: ``"none"``: they stay UNSUPPORTED rows.
    fallback: str = "none"
    #: Files and tar members larger than this many bytes are not read (a READ_ERROR or SOURCE_ERROR
    #: row says so): what one record can cost in memory. 0 = the default, 256 MiB.
    max_bytes: int = 0
    #: Parquet sources: the column that gives record ids. ``"auto"``: an ``id`` or ``key`` column
    #: where there is one; ``"none"``: every row's id is ``<file>#<row>``; else a column's name.
    #: Ids must not repeat within a job (a run whose id column repeats one is refused up front).
    id_column: str = "auto"
    #: Files per output shard when the source is a directory or a glob; 0 = :meth:`shard_files`'s
    #: choice: 1000, or 256 per decode thread where that is more (a shard ends with its slowest image).
    shard_size: int = 0
    #: Worker threads for decoding and hashing (0 = all cores).
    workers: int = 0
    #: ``"cpu"`` or ``"gpu"``: JPEGs hashed on the GPU (mmcore.gpu; needs the CUDA build, a device
    #: and cupy), the same rows as ``"cpu"``; exact hash mode only.
    device: str = "cpu"
    #: ``"incremental"`` (skip completed shards), ``"overwrite"`` (start again), ``"retry-failed"``
    #: (reprocess only the records whose status is not OK).
    mode: str = "incremental"
    #: Records per processing batch; 0 = :meth:`batch_rows`'s choice: 256, or 64 per decode thread
    #: where that is more (a batch waits for its slowest image, so on many threads a small batch
    #: leaves most of them idle at its end).
    batch_size: int = 0

    def __post_init__(self) -> None:
        given = self.hashes
        if isinstance(given, (str, bytes)) or not isinstance(given, (list, tuple)):
            raise ValueError(
                f'hashes must be a list of names among {HASH_KINDS} (e.g. ["phash", "pdq"]), got {given!r}'
            )
        bad = [h for h in given if h not in HASH_KINDS]
        if bad or not given or len(set(given)) != len(given):
            raise ValueError(
                f"hashes must be one or more distinct names among {HASH_KINDS}, got {list(given)}"
            )
        # In HASH_KINDS order: the columns are the same whatever the order given, so the config
        # hash must be too (a rerun with --hashes pdq,phash matches a run with phash,pdq).
        self.hashes = tuple(h for h in HASH_KINDS if h in given)
        _choice("hash_mode", self.hash_mode, ("exact", "fast"))
        _choice("thumbnail_format", self.thumbnail_format, THUMBNAIL_FORMATS)
        _choice("mode", self.mode, MODES)
        _choice("device", self.device, DEVICES)
        _choice("fallback", self.fallback, FALLBACKS)
        if self.device == "gpu" and self.hash_mode != "exact":
            raise ValueError(
                "device 'gpu' hashes in exact mode (its kernels are exact); use hash_mode 'exact'"
            )
        _int_range("hash_size", self.hash_size, 2, 64)
        self.hash_size = int(self.hash_size)
        if self.hash_size != 8:
            if self.device == "gpu":
                raise ValueError(
                    f"device 'gpu' hashes at hash_size 8 (its kernels' size); hash_size {self.hash_size} "
                    "needs device 'cpu'"
                )
            sized = [h for h in self.hashes if h != "pdq"]
            if sized:  # the library's own check (pHash's DCT lengths)
                from ..hashing import hash_batch

                hash_batch([], kinds=sized, hash_size=self.hash_size)  # type: ignore[arg-type]
        _int_range("thumbnail", self.thumbnail, 0, 65535)
        _int_range("thumbnail_quality", self.thumbnail_quality, 1, 100)
        _int_range("thumbnail_webp_method", self.thumbnail_webp_method, 0, 6)
        _int_range("max_pixels", self.max_pixels, 0, 1 << 62)
        _int_range("max_bytes", self.max_bytes, 0, 1 << 62)
        _int_range("shard_size", self.shard_size, 0, 1 << 30)
        _int_range("workers", self.workers, 0, 4096)
        _int_range("batch_size", self.batch_size, 0, 1 << 20)
        if not isinstance(self.id_column, str) or not self.id_column:
            raise ValueError(f"id_column must be 'auto', 'none' or a column name, got {self.id_column!r}")
        if not isinstance(self.exif_orientation, bool):
            raise ValueError(f"exif_orientation must be true or false, got {self.exif_orientation!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known: {sorted(names)}")
        return cls(**d)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> Config:
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # tomllib is tomli, in the standard library from 3.11 (the jobs extra brings it on 3.10)
            try:
                import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
            except ImportError:
                raise ImportError(
                    "reading a TOML config on Python 3.10 needs tomli: pip install 'mmcore[jobs]'"
                ) from None
        with open(path, "rb") as f:
            try:
                d = tomllib.load(f)
            except tomllib.TOMLDecodeError as e:
                raise ValueError(f"{os.fspath(path)}: not valid TOML: {e}") from None
        return cls.from_dict(d)

    def shard_files(self, threads: int | None = None) -> int:
        """Files per shard of a directory source: ``shard_size``, or when it is 0, 1000 or 256 per
        decode thread (``workers``, else ``threads``, else the cores) where that is more: four
        full batches (:meth:`batch_rows`), since the last batch of a shard is hashed alone.

        >>> Config(workers=2).shard_files(), Config(workers=64).shard_files()
        (1000, 16384)
        >>> Config(shard_size=5).shard_files()
        5
        """
        return self.shard_size or max(1000, 256 * self._decode_threads(threads))

    def batch_rows(self, threads: int | None = None) -> int:
        """Records per batch: ``batch_size``, or when it is 0, 256 or 64 per decode thread
        (``workers``, else ``threads``, else the cores) where that is more. On 16 threads, batches
        of 256 drawn from the corpus's mix (a few 8 MP photos among ImageNet-size files) would keep
        the threads ~60% busy (a simulation with the measured per-image times: each batch waits
        for its slowest image); batches of 1,024 ~100%.

        >>> Config(workers=2).batch_rows(), Config(workers=16).batch_rows(), Config(batch_size=8).batch_rows()
        (256, 1024, 8)
        """
        return self.batch_size or max(256, 64 * self._decode_threads(threads))

    def _decode_threads(self, threads: int | None) -> int:
        """The decode threads the defaults are sized for: ``workers``, else ``threads``, else the cores."""
        return self.workers or threads or os.cpu_count() or 1

    def replace(self, **changes: Any) -> Config:
        """A copy with some options changed (None values are ignored: unset command-line flags)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hashes"] = list(self.hashes)
        return d

    def processor_dict(self) -> dict[str, Any]:
        """The options that decide the output's content (PROCESSING_OPTIONS; the last five only
        where they change it)."""
        d = {k: v for k, v in self.to_dict().items() if k in PROCESSING_OPTIONS[:-5]}
        # Only where it changes the bytes, so that outputs written before the option keep their hash.
        if self.thumbnail_format == "webp" and self.thumbnail > 0 and self.thumbnail_webp_method != 4:
            d["thumbnail_webp_method"] = self.thumbnail_webp_method
        if self.byte_limit != DEFAULT_MAX_BYTES:
            d["max_bytes"] = self.byte_limit
        if self.id_column != "auto":
            d["id_column"] = self.id_column
        if self.fallback != "none":
            d["fallback"] = self.fallback
        if self.hash_size != 8:
            d["hash_size"] = self.hash_size
        return d

    @property
    def byte_limit(self) -> int:
        """``max_bytes``, with 0 read as the default."""
        return self.max_bytes or DEFAULT_MAX_BYTES

    def config_hash(self) -> str:
        """sha256 (hex) of the processor options as canonical JSON: equal hashes, equal outputs."""
        blob = json.dumps(self.processor_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


#: The options that decide a job's output (its config hash; a rerun without options keeps them).
PROCESSING_OPTIONS = (
    "hashes", "hash_mode", "thumbnail", "thumbnail_format", "thumbnail_quality", "exif_orientation",
    "max_pixels", "thumbnail_webp_method", "max_bytes", "id_column", "fallback", "hash_size",
)  # fmt: skip


def _choice(name: str, v: Any, allowed: tuple[str, ...]) -> None:
    if v not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {v!r}")


def _int_range(name: str, v: Any, lo: int, hi: int) -> None:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {v!r}")
