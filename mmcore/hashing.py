"""Perceptual hashes: imagehash-exact aHash / dHash / pHash / wHash / colorhash and PDQ.

Every hash has an *exact* mode that gives the same bits as its public reference (imagehash
4.3.2 on Pillow 13.0.0; the PDQ C++ reference) and a *fast* mode (scaled JPEG decode, area
resize, EXIF orientation applied) whose agreement with exact mode is measured in
``docs/hashes.md``. Sources are encoded bytes, a path, or an already decoded uint8 array
(HxW, HxWx3 or HxWx4; then nothing is decoded and exact modes treat it as Pillow's L / RGB
image).

>>> import mmcore
>>> h = mmcore.phash(mmcore.demo_images()[0])
>>> len(mmcore.hash_to_hex(h))
16
>>> r = mmcore.hash_batch(mmcore.demo_images(), kinds=("phash", "pdq"))
>>> r["pdq"].shape[1], sorted(r.counts())
(32, ['CORRUPT', 'OK'])
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Union, overload

import numpy as np
import numpy.typing as npt

from . import _core, _pillow
from .image import (
    BatchResult,
    ThumbnailCodes,
    _batch_sources,
    _check_src,
    _flag,
    _is_int,
    _max_pixels,
    _threads,
    _thumbnail_codes,
)
from .status import DecodeError, Status, StatusColumn

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

#: Tokens shared by batch calls running at the same time: ``ThreadBudget(n)`` lets them work on at
#: most ``n`` images at once between them (``hash_batch(..., budget=)``); ``.tokens`` is ``n``.
ThreadBudget = _core.ThreadBudget

HashSource = Union[bytes, bytearray, memoryview, "npt.NDArray[np.uint8]", str, "os.PathLike[str]", "PILImage"]
"""Encoded image bytes, a path, a decoded uint8 image (HxW, HxWx3, HxWx4), or a Pillow image."""

HashKind = Literal["ahash", "dhash", "dhash_vertical", "phash", "phash_simple", "whash", "colorhash", "pdq"]
Mode = Literal["exact", "fast"]
PdqMode = Literal["reference", "full", "fast"]
BatchMode = Literal["exact", "reference", "full", "fast"]

KINDS: tuple[str, ...] = (
    "ahash",
    "dhash",
    "dhash_vertical",
    "phash",
    "phash_simple",
    "whash",
    "colorhash",
    "pdq",
)
"""Every hash kind, in the order of the native kind codes."""

BITS: dict[str, int] = {k: 64 for k in KINDS[:6]} | {"colorhash": 42, "pdq": 256}
"""How many bits each kind has."""
_MODES: dict[str, int] = {"exact": 0, "reference": 0, "full": 1, "fast": 2}
#: imagehash's hash_size, highfreq_factor and binbits defaults.
_DEFAULT_SIZES = (8, 4, 3)


@dataclass
class HashResult(StatusColumn):
    """Hashes of a batch, one row per input in input order.

    ``result["phash"]`` (or ``result.columns["phash"]``) is a ``uint64`` array for the 64-bit
    kinds and colorhash (42 bits); at other sizes (``hash_size``, ``binbits``) a kind of at most
    64 bits is a ``uint64`` array too, a longer one ``(N, ceil(bits / 8)) uint8`` (each row the
    hash as one big-endian integer, as PDQ's); ``result["pdq"]`` is ``(N, 32) uint8`` (the reference hex as
    bytes), ``result["pdq_dihedral"]`` ``(N, 8, 32) uint8`` when asked for, and
    ``result["pdq_quality"]`` ``uint8``. Rows whose ``status`` is not OK / OK_WARNING hold zeros;
    ``errors[i]`` says why (None when there is nothing to say). ``thumbnails`` is the
    :class:`BatchResult` of the thumbnails when :func:`hash_batch` was asked for them.
    """

    columns: dict[str, npt.NDArray[Any]]
    status: npt.NDArray[np.uint8]
    errors: list[str | None]
    kinds: tuple[str, ...] = field(default=())
    thumbnails: BatchResult | None = None
    bits: dict[str, int] = field(default_factory=dict)
    """Bits per kind where they differ from :data:`BITS` (``hash_size`` / ``binbits`` other than
    imagehash's defaults)."""

    def __len__(self) -> int:
        return len(self.status)

    def __getitem__(self, kind: str) -> npt.NDArray[Any]:
        try:
            return self.columns[kind]
        except KeyError:
            raise KeyError(f"no column {kind!r}; this result has {sorted(self.columns)}") from None

    def hex(self, kind: str) -> list[Any]:
        """The column as hex strings (imagehash's ``str()`` / the PDQ reference's hex); None where
        the record failed. ``pdq_dihedral`` gives a list of 8 hex strings per record."""
        col: Any = self[kind]
        if hasattr(col, "__cuda_array_interface__"):  # hash_batch(device="cuda"): cupy columns
            col = col.get()
        ok = self.ok
        if kind == "pdq":
            return [bytes(row).hex() if good else None for row, good in zip(col, ok, strict=True)]
        if kind == "pdq_dihedral":  # the 8 hashes of a row, each as the reference's hex
            return [
                [bytes(v).hex() for v in row] if good else None for row, good in zip(col, ok, strict=True)
            ]
        if kind not in BITS:
            raise ValueError(f"column {kind!r} holds no hashes: it has no hex form")
        bits = self.bits.get(kind, BITS[kind])
        if col.ndim == 2:  # more than 64 bits: each row one big-endian integer
            return [
                hash_to_hex(int.from_bytes(bytes(v), "big"), bits) if good else None
                for v, good in zip(col, ok, strict=True)
            ]
        return [hash_to_hex(int(v), bits) if good else None for v, good in zip(col, ok, strict=True)]


def _hash_src(src: Any) -> Any:
    if isinstance(src, os.PathLike):
        return os.fsdecode(src)  # a path even when __fspath__ gives bytes
    if isinstance(src, np.ndarray):
        if src.dtype != np.uint8:
            raise TypeError(f"an array source must be uint8 (bytes or HxW[xC] pixels), got {src.dtype}")
        if src.ndim not in (1, 2, 3):
            # It would be read as encoded bytes and fail as "not an image", hiding the mistake.
            shape = "x".join(str(n) for n in src.shape) or "0-D (scalar)"
            raise TypeError(
                f"an array source must be 1-D encoded bytes or HxW[xC] pixels, got a {shape} array"
                + (" (a batch of images? hash_batch takes a list of them)" if src.ndim == 4 else "")
            )
        return np.ascontiguousarray(src)
    return src


def _pil_pixels(im: Any) -> tuple[Status, str | None, npt.NDArray[np.uint8] | None]:
    """A Pillow image's pixels as imagehash sees them (:func:`mmcore._pillow.hash_pixels`), or why
    there are none (an image Pillow cannot load: truncated, damaged; a mode it cannot convert)."""
    try:
        return Status.OK, None, _pillow.hash_pixels(im)
    except MemoryError:
        w, h = im.size
        return Status.NO_MEMORY, f"out of memory loading the {im.mode} {w}x{h} Pillow image", None
    except Exception as e:  # what Pillow's loaders and converters raise varies (OSError, ValueError...)
        return Status.CORRUPT, f"Pillow could not load the image: {_pillow._text(e)}", None


Failures = dict[int, tuple[Status, "str | None"]]


def _sources(srcs: Sequence[Any], threads: int | None) -> tuple[list[Any], Failures]:
    """hash_batch's sources for the native call, and the records that have failed already (a
    Pillow image that could not be loaded: None in its place). Pillow images become their pixels,
    loaded on ``threads`` threads (Pillow's decoders release the GIL; the pixels are Pillow's own
    memory where it lends it, else a copy, which holds the GIL)."""
    items: list[Any] = []
    pil: list[int] = []
    for i, s in enumerate(srcs):
        if _pillow.is_image(s):
            pil.append(i)
            items.append(None)
        else:
            items.append(_hash_src(s))
    failed: Failures = {}
    if not pil:
        return items, failed
    # One load per image object: Pillow images are not safe to load from two threads at once.
    first: dict[int, int] = {}
    for i in pil:
        first.setdefault(id(srcs[i]), i)
    once = list(first.values())
    workers = min(len(once), threads or os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as ex:
        done = dict(zip(once, ex.map(lambda i: _pil_pixels(srcs[i]), once), strict=True))
    for i in pil:
        status, error, px = done[first[id(srcs[i])]]
        items[i] = px
        if px is None:
            failed[i] = (status, error)
    return items, failed


def _fallback(
    items: Sequence[Any],
    hr: HashResult,
    *,
    mode: str,
    dihedral: bool,
    exif_orientation: bool,
    max_pixels: int | None,
    threads: int | None,
    budget: ThreadBudget | None,
    thumb: ThumbnailCodes | None,
    sizes: tuple[int, int, int] = _DEFAULT_SIZES,
) -> list[tuple[int, _pillow.Decoded]]:
    """``hash_batch(..., fallback="pillow")``: the records of encoded ``items`` (bytes or paths)
    that ``hr`` names UNSUPPORTED decoded by Pillow and hashed from its pixels, their entries in
    ``hr`` (columns, status, errors, thumbnails) replaced in place by that or by why Pillow could
    not. Returns what Pillow made of each record it was given (its format, size, orientation)."""
    js = [
        j
        for j in np.flatnonzero(np.asarray(hr.status) == Status.UNSUPPORTED).tolist()
        if not isinstance(items[j], np.ndarray) or items[j].ndim == 1
    ]
    if not js:
        return []
    decoded = _pillow.decode_records(items, js, hr.errors, _max_pixels(max_pixels), threads, None)
    hr.status = np.array(hr.status)
    for j, d in zip(js, decoded, strict=True):
        hr.status[j], hr.errors[j] = d.status, d.error
    # Each with the orientation that applies (1 where exif_orientation is off).
    done = [
        (j, d.pixels, d.orientation if exif_orientation else 1)
        for j, d in zip(js, decoded, strict=True)
        if d.pixels is not None
    ]
    if done:
        # As for mmcore's own formats: exact modes hash the image as stored; fast mode its grey
        # image, turned (fast mode decodes those formats to that grey image), and colorhash its
        # colours, turned.
        fast = mode == "fast"
        rows = np.array([j for j, _, _ in done], np.intp)
        calls = [(hr.kinds, [px for _, px, _ in done])]
        if fast:
            grey = tuple(k for k in hr.kinds if k != "colorhash")
            calls = [(grey, [_pillow.turned(_pillow.grey(px), o) for _, px, o in done])] if grey else []
            if "colorhash" in hr.kinds:
                calls.append((("colorhash",), [_pillow.turned(px, o) for _, px, o in done]))
        status = np.zeros(len(done), np.uint8)
        errors: list[str | None] = [None] * len(done)
        for kinds, images in calls:
            r = hash_batch(
                images,
                kinds=kinds,  # type: ignore[arg-type]  # hr's kinds are checked names
                mode=mode,  # type: ignore[arg-type]
                dihedral=dihedral,
                max_pixels=max_pixels,
                threads=threads,
                budget=budget,
                hash_size=sizes[0],
                highfreq_factor=sizes[1],
                binbits=sizes[2],
            )
            for k, col in r.columns.items():
                hr.columns[k] = np.array(hr.columns[k])
                hr.columns[k][rows] = col
            worse = r.status > status  # the record's worst status over the calls, and its message
            status[worse] = r.status[worse]
            for i in np.flatnonzero(worse).tolist():
                errors[i] = r.errors[i]
        hr.status[rows] = status
        for i, j in enumerate(rows.tolist()):
            hr.errors[j] = errors[i]
    tb = hr.thumbnails
    if tb is None or thumb is None:
        return list(zip(js, decoded, strict=True))
    # The thumbnails of the records Pillow decoded (thumbnail_batch's from the same pixels), and
    # Pillow's status for those it could not.
    tb.status = np.array(tb.status)
    for j, d in zip(js, decoded, strict=True):
        if d.pixels is None:
            tb.status[j], tb.errors[j] = d.status, d.error
        else:
            tb.status[j], tb.errors[j], tb.images[j] = _pillow.thumbnail(d.pixels, d.orientation, thumb)
    return list(zip(js, decoded, strict=True))


def _kinds(kinds: str | Iterable[str]) -> tuple[tuple[str, ...], int]:
    if isinstance(kinds, str):
        kinds = (kinds,)
    if not isinstance(kinds, Iterable):
        raise ValueError(f"kinds must be a kind or an iterable of kinds from {KINDS}, got {kinds!r}")
    names = tuple(dict.fromkeys(kinds))
    if not names:
        raise ValueError(f"kinds must name at least one of {KINDS}")
    mask = 0
    for k in names:
        if k not in KINDS:
            raise ValueError(f"unknown hash kind {k!r}; choose from {KINDS}")
        mask |= 1 << KINDS.index(k)
    return names, mask


def _mode(mode: str, allowed: Sequence[str]) -> int:
    if mode not in allowed:
        raise ValueError(f"mode must be one of {tuple(allowed)}, got {mode!r}")
    return _MODES[mode]


def hash_batch(
    srcs: Sequence[HashSource | None],
    *,
    kinds: HashKind | Iterable[HashKind] = ("phash", "pdq"),
    mode: BatchMode = "exact",
    dihedral: bool = False,
    exif_orientation: bool = True,
    max_pixels: int | None = None,
    threads: int | None = None,
    thumbnail: Mapping[str, Any] | int | None = None,
    device: Literal["cpu", "cuda"] = "cpu",
    budget: ThreadBudget | None = None,
    fallback: Literal["pillow"] | None = None,
    hash_size: int = 8,
    highfreq_factor: int = 4,
    binbits: int = 3,
) -> HashResult:
    """Hash many images; one decode per image serves every kind asked for.

    ``mode``: ``"exact"`` (imagehash-exact, PDQ reference-exact; ``"reference"`` is the same),
    ``"full"`` (imagehash-exact, PDQ on the full-size image like ``pdqhash.compute``) or
    ``"fast"``. ``dihedral`` adds the ``pdq_dihedral`` column (the 8 PDQ variants).
    ``exif_orientation`` applies to fast mode only (exact modes never rotate, like Pillow's
    ``Image.open``). Never raises for bad data: each record gets a status and a message. The GIL
    is released; ``threads`` defaults to all cores.

    ``thumbnail``: :func:`mmcore.thumbnail_batch`'s keyword arguments but ``threads`` (e.g.
    ``{"short_side": 256, "upscale": False}``; an int is the short side) to also make each
    image's thumbnail, returned as ``result.thumbnails`` (a :class:`BatchResult`, exactly what
    ``thumbnail_batch`` gives for the same sources). Where the hash decode can hold the
    thumbnail's input (exact modes, which decode at full size: a JPEG the thumbnail would not
    decode reduced, a WebP, a GIF, an AVIF, and a PNG when PDQ or colorhash is asked for; an RGB
    thumbnail), the thumbnail is made from it, saving the second decode; the hashes are the same
    bits either way.

    ``budget``: a :class:`ThreadBudget` shared by calls that run at the same time (in several
    Python threads): between them they work on at most ``budget.tokens`` images at once, each
    call's threads waiting for a token before each image, and the call that started first goes
    first (a later call's images wait while it has images not yet started). A call ends when its
    slowest image is done; a second call started meanwhile takes the cores the first leaves idle,
    without running more decodes than there are tokens, and without delaying the first. CPU only.

    Pillow images are sources too (what imagehash takes): each is hashed from the array imagehash
    sees in it (``convert("L")`` for the grey modes, ``convert("RGB")`` for the others), loaded
    here on ``threads`` threads; one Pillow cannot load (a truncated file behind ``Image.open``)
    gets a status. Like arrays, they are pixels: no EXIF orientation, no thumbnail.

    ``fallback="pillow"`` (Pillow needed: ``pip install 'mmcore[fallback]'``): the records whose
    format mmcore does not decode (``UNSUPPORTED``: TIFF, BMP, ICO, PNM, JPEG 2000, PSD, QOI; HEIC
    with pillow-heif) are decoded by Pillow and hashed by mmcore from its pixels (exact modes give
    imagehash's bits on the same ``Image.open``), with their thumbnails; one Pillow cannot read
    keeps UNSUPPORTED, one it knows but cannot decode is CORRUPT. See docs/jobs.md "Other formats".

    ``hash_size``, ``highfreq_factor`` and ``binbits`` are imagehash's parameters of the same
    names, with its bits at every size: ``hash_size`` (2..64; a power of 2 for whash) for the
    imagehash kinds, which then have ``hash_size ** 2`` bits; ``highfreq_factor`` for phash and
    phash_simple (``hash_size * highfreq_factor`` up to 1024 with no prime factor over 5: 16 x 4,
    12 x 4, 10 x 4 yes, 7 x 4 no); ``binbits`` (1..16) for colorhash, ``14 * binbits`` bits. A
    kind of more than 64 bits is a ``(N, ceil(bits / 8)) uint8`` column (``result.hex(kind)`` is
    imagehash's ``str()``; ``result.bits`` the widths). CPU only; in fast mode a grid over 64 px
    (pHash at 32 x 4, any kind at 64) makes the call decode JPEGs at twice its size for every
    kind it asks for. See docs/hashes.md, "Other sizes".

    >>> import mmcore
    >>> r = mmcore.hash_batch(mmcore.demo_images(), kinds=["dhash"], mode="fast")
    >>> r["dhash"].dtype, len(r) == len(mmcore.demo_images())
    (dtype('uint64'), True)
    >>> r = mmcore.hash_batch(mmcore.demo_images()[:1], kinds=["phash"], hash_size=16)
    >>> r["phash"].shape, len(r.hex("phash")[0])
    ((1, 32), 64)
    >>> r = mmcore.hash_batch(mmcore.demo_images(), kinds=["pdq"], thumbnail={"short_side": 64})
    >>> r.thumbnails is not None and len(r.thumbnails.images) == len(r)
    True
    """
    names, mask = _kinds(kinds)
    m = _mode(mode, ("exact", "reference", "full", "fast"))
    sizes = _sizes(hash_size, highfreq_factor, binbits)
    srcs = _batch_sources(srcs)
    if fallback not in (None, "pillow"):
        raise ValueError(f"fallback must be None or 'pillow', got {fallback!r}")
    if fallback is not None:
        _pillow.load()  # ImportError with the command that installs Pillow, before any work
    if device == "cuda":
        if budget is not None:
            raise ValueError("budget is for device 'cpu' (it counts CPU decode threads)")
        if sizes != _DEFAULT_SIZES:
            raise ValueError(
                "hash_size, highfreq_factor and binbits other than imagehash's defaults (8, 4, 3) are "
                "computed on the CPU: use device='cpu'"
            )
        thumb_kw = None if thumbnail is None else _thumbnail_kwargs(thumbnail)
        return _hash_batch_gpu(srcs, names, mode, dihedral, max_pixels, threads, thumb_kw, fallback)
    if device != "cpu":
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if budget is not None and not isinstance(budget, ThreadBudget):
        raise TypeError(f"budget must be a mmcore.ThreadBudget, got {type(budget).__name__}")
    thumb = None if thumbnail is None else _thumbnail_codes(**_thumbnail_kwargs(thumbnail))
    srcs = srcs if isinstance(srcs, Sequence) else list(srcs)
    items, failed = _sources(srcs, _threads(threads) or None)
    out = _core.hash_batch(
        items,
        mask,
        m,
        _flag("dihedral", dihedral),
        _flag("exif_orientation", exif_orientation),
        _max_pixels(max_pixels),
        _threads(threads),
        thumb,
        budget,
        *sizes,
    )
    bits, pdq_bytes, quality, status, errors, tb, wide = out
    thumbs = None
    if tb is not None:
        images, tstatus, terrors = tb
        thumbs = BatchResult(images=images, status=tstatus, errors=terrors)
    columns: dict[str, npt.NDArray[Any]] = {}
    widths: dict[str, int] = {}
    for k in names:
        code = KINDS.index(k)
        if k == "pdq":
            columns["pdq"] = np.ascontiguousarray(pdq_bytes[:, 0, :])
            if dihedral:
                columns["pdq_dihedral"] = pdq_bytes
            columns["pdq_quality"] = quality
        elif code in wide:
            widths[k] = hash_bits(k, hash_size=sizes[0], binbits=sizes[2])
            columns[k] = _wide_column(wide[code], widths[k])
        else:
            columns[k] = np.ascontiguousarray(bits[:, code])
    hr = HashResult(columns, status, errors, names, thumbs, widths)
    _pil_failures(hr, failed)
    if fallback is not None:
        _fallback(
            items,
            hr,
            mode=mode,
            dihedral=dihedral,
            exif_orientation=exif_orientation,
            max_pixels=max_pixels,
            threads=threads,
            budget=budget,
            thumb=thumb,
            sizes=sizes,
        )
    return hr


def _sizes(hash_size: Any, highfreq_factor: Any, binbits: Any) -> tuple[int, int, int]:
    """hash_size / highfreq_factor / binbits as ints (their ranges are checked natively, for the
    kinds asked for)."""
    for name, v in (("hash_size", hash_size), ("highfreq_factor", highfreq_factor), ("binbits", binbits)):
        if not _is_int(v):
            raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    return int(hash_size), int(highfreq_factor), int(binbits)


def hash_bits(kind: str, *, hash_size: int = 8, binbits: int = 3) -> int:
    """How many bits a kind's hash has: ``hash_size ** 2`` for the imagehash kinds (64 by
    default), ``14 * binbits`` for colorhash (42), 256 for PDQ; what :func:`hash_to_hex` takes.

    >>> import mmcore
    >>> mmcore.hash_bits("phash"), mmcore.hash_bits("phash", hash_size=16), mmcore.hash_bits("colorhash")
    (64, 256, 42)
    """
    if kind not in KINDS:
        raise ValueError(f"unknown hash kind {kind!r}; choose from {KINDS}")
    if kind == "pdq":
        return 256
    if kind == "colorhash":
        return 14 * int(binbits)
    return int(hash_size) ** 2


def _wide_column(col: npt.NDArray[np.uint8], bits: int) -> npt.NDArray[Any]:
    """A kind at another size: (N, ceil(bits / 8)) big-endian rows, as uint64 when it fits."""
    if bits > 64:
        return col
    padded = np.zeros((col.shape[0], 8), np.uint8)
    padded[:, 8 - col.shape[1] :] = col
    return padded.view(">u8")[:, 0].astype(np.uint64)


def _pil_failures(hr: HashResult, failed: Failures) -> None:
    """The statuses of the Pillow images that could not be loaded (None in the native call)."""
    if not failed:
        return
    hr.status = np.array(hr.status)
    for i, (status, error) in failed.items():
        hr.status[i], hr.errors[i] = status, error
        if hr.thumbnails is not None:
            hr.thumbnails.status = np.array(hr.thumbnails.status)
            hr.thumbnails.status[i], hr.thumbnails.errors[i] = status, error


def _hash_batch_gpu(
    srcs: Sequence[Any],
    names: tuple[str, ...],
    mode: str,
    dihedral: bool,
    max_pixels: int | None,
    threads: int | None,
    thumbnail: Mapping[str, Any] | None,
    fallback: str | None,
) -> HashResult:
    """hash_batch(device="cuda"): the same result with cupy columns."""
    from . import gpu

    if mode not in ("exact", "reference") or dihedral:
        raise ValueError("device 'cuda' hashes in exact mode without dihedral variants (the GPU kernels)")
    ctx = gpu.default_context()
    cp = gpu._cupy()
    # An (N, H, W, C) device batch is hashed as it is (no per-image views); anything else iterable
    # (a list, a generator, a 4-D numpy batch: its images) becomes a list, as on the CPU.
    batch = gpu.is_device_array(srcs)
    if not batch:
        srcs = list(srcs)
    if batch or (srcs and all(gpu.is_device_array(s) for s in srcs)):
        if thumbnail is not None:
            raise ValueError("thumbnails of device arrays: use mmcore.gpu.Context.resize")
        r = ctx.hash(srcs, names)
        cols = dict(r.columns)
        if "pdq_quality" in cols:
            cols["pdq_quality"] = cols["pdq_quality"].astype(cp.uint8)
        return HashResult(cols, r.status, [None] * len(r.status), names, None)
    if any(gpu.is_device_array(s) for s in srcs):
        raise ValueError("device arrays and host sources in one call: hash them in separate calls")
    items, failed = _sources(srcs, _threads(threads) or None)
    hr = ctx.hash_sources(items, names, max_pixels=max_pixels, threads=threads, thumbnail=thumbnail)
    _pil_failures(hr, failed)
    if fallback is not None:  # on the host columns, before they go to the device
        thumb = None if thumbnail is None else _thumbnail_codes(**thumbnail)
        _fallback(
            items,
            hr,
            mode="exact",
            dihedral=False,
            exif_orientation=True,
            max_pixels=max_pixels,
            threads=threads,
            budget=None,
            thumb=thumb,
        )
    return HashResult(
        {k: cp.asarray(v) for k, v in hr.columns.items()}, hr.status, hr.errors, names, hr.thumbnails
    )


_THUMBNAIL_KEYS = tuple(inspect.signature(_thumbnail_codes).parameters)  # thumbnail_batch's, but threads


def _thumbnail_kwargs(thumbnail: Any) -> dict[str, Any]:
    """hash_batch(thumbnail=): thumbnail_batch's keyword arguments (threads is the call's own), or
    an int as the short side."""
    if _is_int(thumbnail):
        return {"short_side": thumbnail}
    if not isinstance(thumbnail, Mapping):
        raise ValueError(
            f"thumbnail must be a dict of thumbnail_batch's options (e.g. {{'short_side': 256}}) or an int "
            f"short side, got {thumbnail!r}"
        )
    unknown = sorted(set(thumbnail) - set(_THUMBNAIL_KEYS) - {"threads"})
    if unknown:
        raise ValueError(f"thumbnail has unknown options {unknown}; it takes {list(_THUMBNAIL_KEYS)}")
    return {k: v for k, v in thumbnail.items() if k != "threads"}


def _one(
    src: HashSource,
    kind: str,
    mode: int,
    dihedral: bool,
    exif: bool,
    max_pixels: int | None,
    sizes: tuple[int, int, int] = _DEFAULT_SIZES,
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint8], int, dict[int, npt.NDArray[np.uint8]]]:
    """One record through the batch kernel: (its 7 bit columns, its PDQ rows, PDQ quality, its
    kinds at other sizes by code); raises DecodeError for bad data."""
    if _pillow.is_image(src):
        status, error, s = _pil_pixels(src)
        if s is None:
            raise DecodeError(status, error or "")
    else:
        _check_src(src)
        s = _hash_src(src)
    if isinstance(s, str) and not os.path.exists(s):
        raise FileNotFoundError(f"no such file: {s!r}")
    _, mask = _kinds((kind,))
    bits, pdq_bytes, quality, status, errors, _, wide = _core.hash_batch(
        [s],
        mask,
        mode,
        dihedral,
        _flag("exif_orientation", exif),
        _max_pixels(max_pixels),
        1,
        None,
        None,
        *sizes,
    )
    if status[0] > Status.OK_WARNING:
        how = 'hash PIL.Image.open(...) of it, or use hash_batch(..., fallback="pillow")'
        raise DecodeError(Status(int(status[0])), _pillow.hint(errors[0] or "", how))
    return bits[0], pdq_bytes[0], int(quality[0]), {code: col[0] for code, col in wide.items()}


def _single(
    kind: str,
    src: HashSource,
    mode: str,
    exif_orientation: bool,
    max_pixels: int | None,
    hash_size: int = 8,
    highfreq_factor: int = 4,
    binbits: int = 3,
) -> int:
    m = _mode(mode, ("exact", "fast"))
    sizes = _sizes(hash_size, highfreq_factor, binbits)
    bits, _, _, wide = _one(src, kind, m, False, exif_orientation, max_pixels, sizes)
    code = KINDS.index(kind)
    return int.from_bytes(wide[code].tobytes(), "big") if code in wide else int(bits[code])


def ahash(
    src: HashSource,
    *,
    mode: Mode = "exact",
    exif_orientation: bool = True,
    max_pixels: int | None = None,
    hash_size: int = 8,
) -> int:
    """imagehash's ``average_hash`` (8x8): a 64-bit int, element [0,0] the most significant bit.
    ``hash_size`` as imagehash's (2..64): ``hash_size ** 2`` bits, imagehash's at every size (as
    for the other kinds; ``hash_to_hex(h, hash_size ** 2)`` is imagehash's ``str()``).

    ``exif_orientation`` applies to fast mode only; ``max_pixels`` (default: Pillow's 178,956,970)
    refuses larger images before decoding. Raises :class:`DecodeError` for bad data (the other
    single-image hash functions take the same options).

    >>> import mmcore
    >>> mmcore.hash_to_hex(mmcore.ahash(mmcore.demo_images()[0])) == mmcore.hash_to_hex(
    ...     mmcore.ahash(mmcore.decode(mmcore.demo_images()[0], exif_orientation=False)))
    True
    """
    return _single("ahash", src, mode, exif_orientation, max_pixels, hash_size)


def dhash(
    src: HashSource,
    *,
    mode: Mode = "exact",
    exif_orientation: bool = True,
    max_pixels: int | None = None,
    hash_size: int = 8,
) -> int:
    """imagehash's ``dhash`` (horizontal gradient of a 9x8 image), 64 bits.

    >>> import mmcore
    >>> 0 <= mmcore.dhash(mmcore.demo_images()[0]) < 2**64
    True
    """
    return _single("dhash", src, mode, exif_orientation, max_pixels, hash_size)


def dhash_vertical(
    src: HashSource,
    *,
    mode: Mode = "exact",
    exif_orientation: bool = True,
    max_pixels: int | None = None,
    hash_size: int = 8,
) -> int:
    """imagehash's ``dhash_vertical`` (vertical gradient of an 8x9 image), 64 bits.

    >>> import mmcore
    >>> 0 <= mmcore.dhash_vertical(mmcore.demo_images()[0]) < 2**64
    True
    """
    return _single("dhash_vertical", src, mode, exif_orientation, max_pixels, hash_size)


def phash(
    src: HashSource,
    *,
    mode: Mode = "exact",
    exif_orientation: bool = True,
    max_pixels: int | None = None,
    hash_size: int = 8,
    highfreq_factor: int = 4,
) -> int:
    """imagehash's ``phash``: the 8x8 low-frequency DCT of a 32x32 grey image against its median.

    ``mode="exact"`` gives imagehash's bits; ``"fast"`` decodes JPEG at a reduced scale and
    applies EXIF orientation (see docs/hashes.md for how often it agrees). ``hash_size`` and
    ``highfreq_factor`` as imagehash's: the DCT of a ``hash_size * highfreq_factor`` square (up to
    1024, no prime factor over 5), ``hash_size ** 2`` bits (``hash_size=16``: a 256-bit int).

    >>> import mmcore
    >>> h = mmcore.phash(mmcore.demo_images()[0])
    >>> mmcore.hamming(h, mmcore.phash(mmcore.demo_images()[0], mode="fast")) <= 64
    True
    """
    return _single("phash", src, mode, exif_orientation, max_pixels, hash_size, highfreq_factor)


def phash_simple(
    src: HashSource,
    *,
    mode: Mode = "exact",
    exif_orientation: bool = True,
    max_pixels: int | None = None,
    hash_size: int = 8,
    highfreq_factor: int = 4,
) -> int:
    """imagehash's ``phash_simple`` (row DCT, coefficients 1..8, against their mean), 64 bits.

    >>> import mmcore
    >>> 0 <= mmcore.phash_simple(mmcore.demo_images()[0]) < 2**64
    True
    """
    return _single("phash_simple", src, mode, exif_orientation, max_pixels, hash_size, highfreq_factor)


def whash(
    src: HashSource,
    *,
    mode: Mode = "exact",
    exif_orientation: bool = True,
    max_pixels: int | None = None,
    hash_size: int = 8,
) -> int:
    """imagehash's ``whash`` (Haar wavelet, the image's natural scale), 64 bits; ``hash_size`` a
    power of 2 as imagehash's (``hash_size ** 2`` bits).

    >>> import mmcore
    >>> 0 <= mmcore.whash(mmcore.demo_images()[0]) < 2**64
    True
    """
    return _single("whash", src, mode, exif_orientation, max_pixels, hash_size)


def colorhash(
    src: HashSource,
    *,
    mode: Mode = "exact",
    exif_orientation: bool = True,
    max_pixels: int | None = None,
    binbits: int = 3,
) -> int:
    """imagehash's ``colorhash`` (binbits 3): 42 bits; ``hash_to_hex(h, 42)`` is imagehash's str.
    ``binbits`` as imagehash's (1..16): ``14 * binbits`` bits.

    >>> import mmcore
    >>> len(mmcore.hash_to_hex(mmcore.colorhash(mmcore.demo_images()[0]), 42))
    11
    """
    return _single("colorhash", src, mode, exif_orientation, max_pixels, binbits=binbits)


@overload
def pdq(
    src: HashSource,
    *,
    mode: PdqMode = ...,
    dihedral: Literal[False] = ...,
    exif_orientation: bool = ...,
    max_pixels: int | None = ...,
) -> tuple[bytes, int]: ...
@overload
def pdq(
    src: HashSource,
    *,
    mode: PdqMode = ...,
    dihedral: Literal[True],
    exif_orientation: bool = ...,
    max_pixels: int | None = ...,
) -> tuple[list[bytes], int]: ...
@overload
def pdq(
    src: HashSource,
    *,
    mode: PdqMode = ...,
    dihedral: bool,
    exif_orientation: bool = ...,
    max_pixels: int | None = ...,
) -> tuple[bytes, int] | tuple[list[bytes], int]: ...
def pdq(
    src: HashSource,
    *,
    mode: PdqMode = "reference",
    dihedral: bool = False,
    exif_orientation: bool = True,
    max_pixels: int | None = None,
) -> tuple[bytes, int] | tuple[list[bytes], int]:
    """Meta's PDQ: ``(hash, quality)`` with a 32-byte hash (``pdq_hex`` gives the reference hex).

    ``mode="reference"`` equals the C++ reference (images over 512 px squashed to 512x512
    first); ``"full"`` equals ``pdqhash.compute`` on the full-size RGB image; ``"fast"`` decodes
    JPEG at a reduced scale. ``dihedral=True`` returns the 8 variants (original, rot90, rot180,
    rot270, flipx, flipy, flip+1, flip-1). Quality under 50 means too flat to trust; images
    under 5 px on a side give an all-zero hash with quality 0. ``max_pixels`` (default: Pillow's
    178,956,970) refuses larger images with ``DecodeError(TOO_LARGE)`` before decoding.

    >>> import mmcore
    >>> h, q = mmcore.pdq(mmcore.demo_images()[0])
    >>> len(mmcore.pdq_hex(h)), 0 <= q <= 100
    (64, True)
    """
    m = _mode(mode, ("reference", "full", "fast"))
    _, rows, quality, _ = _one(src, "pdq", m, _flag("dihedral", dihedral), exif_orientation, max_pixels)
    if dihedral:
        return [bytes(v) for v in rows], quality
    return bytes(rows[0]), quality


def pdq_hex(h: bytes | npt.NDArray[np.uint8]) -> str:
    """The PDQ reference's 64-digit hex of a 32-byte hash.

    >>> import mmcore
    >>> mmcore.pdq_hex(bytes(range(32)))[:8]
    '00010203'
    """
    if not isinstance(h, (bytes, bytearray, memoryview, np.ndarray)):
        raise TypeError(f"h must be a PDQ hash's 32 bytes (bytes or a uint8 array), got {type(h).__name__}")
    b = bytes(h)
    if len(b) != 32:
        raise ValueError(f"a PDQ hash is 32 bytes, got {len(b)}")
    return b.hex()


def hash_to_hex(h: int, bits: int = 64) -> str:
    """imagehash's ``str()`` of a hash held as an int: ``ceil(bits / 4)`` hex digits. A negative
    64-bit hash is read as its two's complement, as :func:`hamming` reads it (``mmcore run``'s
    int64 hash columns hold imagehash's bits reinterpreted as signed).

    >>> import mmcore
    >>> mmcore.hash_to_hex(0xFF, 64), mmcore.hash_to_hex(-1, 64)
    ('00000000000000ff', 'ffffffffffffffff')
    """
    if not isinstance(h, (int, np.integer)) or isinstance(h, bool):
        raise TypeError(f"h must be an int (pdq_hex takes a PDQ hash's bytes), got {type(h).__name__}")
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise TypeError(f"bits must be an int, got {type(bits).__name__}")
    if bits <= 0:
        raise ValueError(f"bits must be positive, got {bits}")
    h, bits = int(h), int(bits)  # numpy ints: 1 << np.int64(64) wraps to 0
    if bits == 64 and -(1 << 63) <= h < 0:
        h += 1 << 64
    if h < 0 or h >= 1 << bits:
        raise ValueError(f"hash {h} does not fit in {bits} bits")
    return f"{h:0{(bits + 3) // 4}x}"


_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
#: numpy's popcount ufunc (numpy >= 2.0); None on older numpy, where bytes are counted instead.
_BITWISE_COUNT: Any = getattr(np, "bitwise_count", None)


def _popcount64(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """The set bits of each uint64 of ``x``."""
    if _BITWISE_COUNT is not None:
        out: npt.NDArray[np.uint8] = _BITWISE_COUNT(x)
        return out
    b = np.ascontiguousarray(x).view(np.uint8).reshape(*x.shape, 8)
    counted: npt.NDArray[np.uint8] = _POPCOUNT8[b].sum(axis=-1, dtype=np.uint8)
    return counted


def _as_u8_rows(x: Any) -> npt.NDArray[np.uint8]:
    """Hash values as rows of bytes: ints / uint64 arrays big-endian, bytes and uint8 arrays as is."""
    if isinstance(x, (bytes, bytearray, memoryview)):
        return np.frombuffer(bytes(x), dtype=np.uint8)
    a = np.asarray(x)
    if a.dtype == np.uint8 and a.ndim:
        return a
    # Scalars of any integer type are 64-bit hashes, as Python ints are (np.uint8(255) too).
    if a.dtype.kind in "iu":  # astype copies C-contiguous and keeps a 0-d shape (a scalar)
        return a.astype(">u8", order="C")[..., None].view(np.uint8)
    if a.dtype == object:
        raise TypeError(f"hamming needs ints, bytes or integer arrays, got {type(x).__name__}")
    raise TypeError(f"hamming needs ints, bytes or integer arrays, got dtype {a.dtype}")


def _wide_ints(x: Any) -> bool:
    """Whether x is an int past the 64-bit range, or a list / object array of ints holding one
    (numpy keeps such ints as objects): hashes at other sizes, as the single functions return them."""
    if isinstance(x, bool):
        return False
    if isinstance(x, int):
        return not -(1 << 63) <= x < 1 << 64
    if isinstance(x, (bytes, bytearray, memoryview)) or (isinstance(x, np.ndarray) and x.dtype != object):
        return False
    a = np.asarray(x)
    if a.dtype != object or not a.size:
        return False
    return all(isinstance(v, int) and not isinstance(v, bool) for v in a.reshape(-1).tolist())


def _unsigned(h: int) -> int:
    """A negative int as its 64-bit two's complement: the int64 hash columns of mmcore run's
    Parquet (imagehash's bits reinterpreted), as the array path reads them. A non-negative int is
    a hash of any width (a 256-bit pHash at hash_size 16)."""
    if h >= 0:
        return h  # any width: imagehash's hash_size=16 pHash is a 256-bit int
    if h < -(1 << 63):
        raise ValueError(f"hamming on {h}: a negative hash must fit in int64 (hashes are unsigned)")
    return h + (1 << 64)


@overload
def hamming(a: int, b: int) -> int: ...
@overload
def hamming(a: bytes, b: bytes) -> int: ...
@overload
def hamming(a: Any, b: Any) -> Any: ...
def hamming(a: Any, b: Any) -> Any:
    """Hamming distance between hashes: ints, bytes, or arrays (vectorised, broadcasting).

    ``uint64`` arrays hold 64-bit hashes; ``uint8`` arrays of shape ``(..., nbytes)`` hold longer
    ones (e.g. PDQ's ``(N, 32)``), compared along the last axis; lists of ints of any width (a
    256-bit ``phash(..., hash_size=16)`` each) are compared as ints are. Negative ints and int64
    values are read as their 64-bit two's complement (``mmcore run``'s int64 hash columns). Scalars
    give an int.

    >>> import mmcore, numpy as np
    >>> mmcore.hamming(0b1011, 0b0001), mmcore.hamming(b"\\x0f", b"\\xff")
    (2, 4)
    >>> mmcore.hamming(np.array([1, 3], dtype=np.uint64), np.uint64(0)).tolist()
    [1, 2]
    """
    if isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool) and not isinstance(b, bool):
        return (_unsigned(a) ^ _unsigned(b)).bit_count()
    if isinstance(a, (bytes, bytearray, memoryview)) and isinstance(b, (bytes, bytearray, memoryview)):
        if len(a) != len(b):
            raise ValueError(f"hashes differ in length: {len(a)} and {len(b)} bytes")
        return int.from_bytes(bytes(a), "big").__xor__(int.from_bytes(bytes(b), "big")).bit_count()
    if _wide_ints(a) or _wide_ints(b):
        # ints past 64 bits (numpy keeps them as objects): hashes of any width, compared as ints are
        for other in (a, b):
            if isinstance(other, (bytes, bytearray, memoryview)) or np.asarray(other).dtype == np.uint8:
                raise ValueError(
                    "hamming compares ints with ints and byte rows with byte rows: give both as ints, or "
                    "both as (N, nbytes) uint8 rows (int.to_bytes(nbytes, 'big'))"
                )
        d = np.vectorize(lambda u, v: hamming(int(u), int(v)), otypes=[np.int64])(a, b)
        return d if d.ndim else int(d)
    x, y = _as_u8_rows(a), _as_u8_rows(b)
    if x.shape[-1:] != y.shape[-1:]:
        raise ValueError(f"hash widths differ: {x.shape[-1]} and {y.shape[-1]} bytes")
    z = np.bitwise_xor(x, y)
    if z.ndim and z.shape[-1] % 8 == 0:  # 8 bytes at a time (PDQ's 32): a quarter of the steps
        d = _popcount64(z.view(np.uint64)).sum(axis=-1, dtype=np.int64)
    else:
        d = _POPCOUNT8[z].sum(axis=-1, dtype=np.int64)
    return d if d.ndim else int(d)
