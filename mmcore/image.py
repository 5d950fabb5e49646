"""Decode, resize and thumbnail (bytes or paths in, uint8 numpy arrays out) and encode (arrays in,
JPEG / WebP bytes out)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

import numpy as np
import numpy.typing as npt

from . import _core, _pillow
from .status import DecodeError, EncodeError, Status, StatusColumn

Source = Union[bytes, bytearray, memoryview, "npt.NDArray[np.uint8]", str, "os.PathLike[str]"]
"""An encoded image: its bytes (any contiguous buffer; a numpy array must be 1-D uint8) or a
filesystem path."""

Image = npt.NDArray[np.uint8]
Color = Literal["rgb", "gray"]
Alpha = Literal["drop", "keep"]
FilterName = Literal["nearest", "area", "bilinear", "bicubic", "lanczos3"]
EncodeFormat = Literal["jpeg", "webp"]

FILTERS: dict[str, int] = {"nearest": 0, "area": 1, "bilinear": 2, "bicubic": 3, "lanczos3": 4}
DEFAULT_MAX_PIXELS: int = int(_core.DEFAULT_MAX_PIXELS)
ENCODE_FORMATS: dict[str, int] = {"jpeg": 1, "webp": 3}  # mmcore::ImageFormat codes
DEFAULT_QUALITY: dict[str, int] = {"jpeg": 85, "webp": 80}


@dataclass
class BatchResult(StatusColumn):
    """The outcome of a batch call, one entry per input, in input order.

    ``images[i]`` is None exactly where ``status[i]`` is not OK / OK_WARNING; ``errors[i]``
    says what was wrong (or what was warned about), None when there is nothing to say.
    """

    images: list[Image | None]
    status: npt.NDArray[np.uint8]
    errors: list[str | None]

    def __len__(self) -> int:
        return len(self.images)


Device = Literal["cpu", "cuda"]


def _on_gpu(device: str | None, obj: Any) -> bool:
    """device "cuda", or None with a device array (``__cuda_array_interface__``): the GPU path."""
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    return device == "cuda" or (device is None and hasattr(obj, "__cuda_array_interface__"))


def _pixel(color: str, alpha: str) -> int:
    if color not in ("rgb", "gray"):
        raise ValueError(f"color must be 'rgb' or 'gray', got {color!r}")
    if alpha not in ("drop", "keep"):
        raise ValueError(f"alpha must be 'drop' or 'keep', got {alpha!r}")
    if alpha == "keep":
        if color == "gray":
            raise ValueError("alpha='keep' needs color='rgb' (gray+alpha output is not supported)")
        return 2
    return 0 if color == "rgb" else 1


def _is_int(v: Any) -> bool:
    """An int or a numpy integer, not a bool (nor a float that happens to be whole)."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _flag(name: str, v: Any) -> bool:
    """A boolean option: True / False (numpy's too). A string such as "False" is truthy, so
    ``bool()`` of it would silently mean the opposite."""
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {v!r}")
    return bool(v)


def _max_pixels(max_pixels: int | None) -> int:
    if max_pixels is None:
        return DEFAULT_MAX_PIXELS
    if not _is_int(max_pixels) or not 0 < max_pixels < 1 << 63:
        raise ValueError(f"max_pixels must be an int in 1..2**63-1, or None, got {max_pixels!r}")
    return int(max_pixels)


def _batch_sources(srcs: Any, name: str = "srcs") -> Any:
    """``srcs`` of a batch call: a sequence of sources, never one source (a path string, bytes or
    one array would be iterated item by item: characters, bytes or pixel rows, each a record).
    A 4-D array is a stack of images, a batch."""
    one = isinstance(srcs, (str, bytes, bytearray, memoryview, os.PathLike))
    if one or (isinstance(srcs, np.ndarray) and srcs.ndim < 4):
        what = f"{srcs.ndim}-D array" if isinstance(srcs, np.ndarray) else type(srcs).__name__
        raise TypeError(f"{name} must be a sequence of sources (a list), not one {what}: wrap it in a list")
    if not isinstance(srcs, Iterable):
        raise TypeError(f"{name} must be a sequence of sources (a list), got {type(srcs).__name__}")
    return srcs


def _filter(name: str) -> int:
    try:
        return FILTERS[name]
    except KeyError:
        raise ValueError(f"filter must be one of {sorted(FILTERS)}, got {name!r}") from None


def _pil_refused(src: Any) -> None:
    """Decode and thumbnail calls take encoded images; a Pillow image is told where it goes."""
    if _pillow.is_image(src):
        raise TypeError(
            "a Pillow image is decoded pixels, not an encoded image: mmcore.resize(np.asarray(image), "
            "...) resizes them (the hash functions take Pillow images as they are)"
        )


def _src(src: Any) -> Any:
    _pil_refused(src)
    if isinstance(src, os.PathLike):
        return os.fsdecode(src)  # a path even when __fspath__ gives bytes
    if isinstance(src, str):
        return src
    if isinstance(src, np.ndarray):
        if src.dtype != np.uint8:
            raise TypeError(f"an array source must hold uint8 encoded bytes, got dtype {src.dtype}")
        if src.ndim != 1:
            # The hash functions take HxW[xC] arrays as decoded pixels; here that would be read as
            # file bytes and fail as "not an image", which hides the mistake.
            shape = "x".join(str(n) for n in src.shape) or "0-D (scalar)"
            raise TypeError(
                f"an array source must be a 1-D uint8 buffer of encoded bytes, got a {shape} array"
                " (decoded pixels? mmcore.resize takes those)"
            )
        return np.ascontiguousarray(src)
    return src


def _check_src(src: Any) -> None:
    """A single-record call's source: misuse (None, a number...) is a TypeError naming ``src``.
    Anything with the buffer protocol (bytes, numpy, mmap, array.array...) or a path is a source."""
    if isinstance(src, (str, os.PathLike)):
        return
    _pil_refused(src)
    try:
        view = memoryview(src)
    except TypeError:
        raise TypeError(
            f"src must be bytes, a uint8 buffer or array, or a path, got {type(src).__name__}"
        ) from None
    if not view.c_contiguous and not isinstance(src, np.ndarray):  # arrays are made contiguous
        raise TypeError("src must be a contiguous buffer (a strided view such as m[::2]: pass bytes(m))")


def _single_src(src: Any) -> Any:
    _check_src(src)
    s = _src(src)
    if isinstance(s, str) and not os.path.exists(s):
        raise FileNotFoundError(f"no such file: {s!r}")
    return s


def _check(result: tuple[int, str, Image | None]) -> Image:
    status, message, image = result
    if image is None:
        how = 'decode_batch / thumbnail_batch(..., fallback="pillow") decode it through Pillow'
        raise DecodeError(Status(status), _pillow.hint(message, how))
    return image


_MAX_SIDE = (1 << 31) - 1  # sizes are C int32


def _side(name: str, v: Any) -> int:
    if not _is_int(v) or not 0 < v <= _MAX_SIDE:
        raise ValueError(f"{name} must be an int in 1..2**31-1, got {v!r}")
    return int(v)


def _size_pair(name: str, v: Any) -> tuple[int, int]:
    try:
        w, h = v
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (width, height) pair of ints in 1..2**31-1, got {v!r}") from None
    if not (_is_int(w) and _is_int(h) and 0 < w <= _MAX_SIDE and 0 < h <= _MAX_SIDE):
        raise ValueError(f"{name} must be a (width, height) pair of ints in 1..2**31-1, got {v!r}")
    return int(w), int(h)


def _target(target: Any) -> tuple[int, int, int, int, int, int, int]:
    """decode(target=): a short side (int) or a (width, height) pair, named as the caller's."""
    if _is_int(target):
        return (_side("target", target), 0, 0, 0, 0, 0, 0)
    w, h = _size_pair("target", target)
    return (0, 0, 0, 0, 0, w, h)


def _geometry(
    short_side: int | None,
    fit: tuple[int, int] | None,
    crop: tuple[int, int] | None,
    exact: tuple[int, int] | None,
) -> tuple[int, int, int, int, int, int, int]:
    given = [x is not None for x in (short_side, fit, crop, exact)]
    if sum(given) != 1:
        raise ValueError("give exactly one of short_side, fit or crop")
    s = 0 if short_side is None else _side("short_side", short_side)
    fw, fh = _size_pair("fit", fit) if fit is not None else (0, 0)
    cw, ch = _size_pair("crop", crop) if crop is not None else (0, 0)
    ew, eh = _size_pair("target", exact) if exact is not None else (0, 0)
    return s, fw, fh, cw, ch, ew, eh


def decode(
    src: Source,
    *,
    color: Color = "rgb",
    exif_orientation: bool = True,
    max_pixels: int | None = None,
    target: int | tuple[int, int] | None = None,
    alpha: Alpha = "drop",
    filter: FilterName = "lanczos3",
    fast: bool = False,
    reducing_gap: float | None = 2.0,
) -> Image:
    """Decode one JPEG, PNG, WebP, GIF or AVIF (first frame) image (format from content) to a uint8 array.

    Returns HxWx3 (``color="rgb"``), HxW (``"gray"``) or HxWx4 (``alpha="keep"``), with EXIF
    orientation applied unless ``exif_orientation=False``. ``target`` asks for a resized
    result: an int is the short side (aspect kept), a pair is the exact ``(width, height)``;
    JPEG then decodes at the smallest 1/2, 1/4 or 1/8 scale that still covers it.
    ``fast=True`` lets JPEG use libjpeg-turbo's faster, slightly less exact IDCT and chroma
    upsampling. ``reducing_gap`` (as in Pillow's ``Image.thumbnail``): the reduced JPEG decode
    keeps at least this many times the target's resolution before the final resize (None: always
    decode at full size; 1.0: fastest, the smallest scale that covers the target).
    Bad data raises :class:`DecodeError` (its ``.status`` says which kind).

    >>> import mmcore, numpy as np
    >>> img = mmcore.decode(mmcore.demo_images()[0])
    >>> img.dtype, img.ndim
    (dtype('uint8'), 3)
    """
    pixel = _pixel(color, alpha)
    mp = _max_pixels(max_pixels)
    s = _single_src(src)
    if target is None:
        return _check(
            _core.decode(s, pixel, _flag("exif_orientation", exif_orientation), mp, _flag("fast", fast))
        )
    geo = _target(target)
    gap = _gap(reducing_gap)
    res = _core.thumbnail(
        s,
        pixel,
        _flag("exif_orientation", exif_orientation),
        mp,
        _flag("fast", fast),
        *geo,
        _filter(filter),
        True,
        gap,
    )
    return _check(res)


def decode_batch(
    srcs: Sequence[Source | None],
    *,
    threads: int | None = None,
    color: Color = "rgb",
    exif_orientation: bool = True,
    max_pixels: int | None = None,
    target: int | tuple[int, int] | None = None,
    alpha: Alpha = "drop",
    filter: FilterName = "lanczos3",
    fast: bool = False,
    reducing_gap: float | None = 2.0,
    out: npt.NDArray[np.uint8] | None = None,
    fallback: Literal["pillow"] | None = None,
) -> BatchResult:
    """Decode many images in parallel (GIL released); never raises for bad data.

    Options are those of :func:`decode`. ``threads`` defaults to all cores. A record that
    fails gets ``images[i] = None``, a non-OK ``status[i]`` and a message in ``errors[i]``; a
    ``None`` source is such a record (CORRUPT, "no data"), here and in the other batch calls.

    ``out``: with ``target=(width, height)`` every image has one size, and the batch can decode
    straight into a uint8 array of shape ``(len(srcs), height, width, channels)`` (``(len(srcs),
    height, width)`` or ``(..., 1)`` for gray), C-contiguous and writable, e.g. one reused for
    every batch of a data loader (``torch.from_numpy(out)`` shares it): no per-image buffers and
    no ``np.stack``. Then ``images[i]`` is ``out[i]``, and a failed record's ``out[i]`` is zeros.

    ``fallback="pillow"`` (Pillow needed: ``pip install 'mmcore[fallback]'``): the records of
    formats mmcore does not decode (``UNSUPPORTED``: TIFF, BMP, ICO, PNM, JPEG 2000, PSD, QOI;
    HEIC with pillow-heif) are decoded by Pillow (its ``convert("RGB")``, ``"L"`` or ``"RGBA"``
    of the first frame), then turned and resized as the options say, as mmcore's own are.

    >>> import mmcore
    >>> r = mmcore.decode_batch(mmcore.demo_images())
    >>> len(r) == len(mmcore.demo_images())
    True
    """
    pixel = _pixel(color, alpha)
    mp = _max_pixels(max_pixels)
    t = _threads(threads)
    _check_fallback(fallback)
    items = [_src(s) for s in _batch_sources(srcs)]
    exif, quick = _flag("exif_orientation", exif_orientation), _flag("fast", fast)
    geo = (0, 0, 0, 0, 0, 0, 0) if target is None else _target(target)
    codes: ThumbnailCodes = (pixel, exif, mp, quick, *geo, _filter(filter), True, _gap(reducing_gap))
    if target is None:
        dest = _out(out, len(items), None, pixel, "give target=(width, height)")
        res = _core.decode_batch(items, pixel, exif, mp, quick, t, dest)
    else:
        fixed = None if geo[5] == 0 else (geo[5], geo[6])
        dest = _out(out, len(items), fixed, pixel, "give target as a (width, height) pair, not a short side")
        res = _core.thumbnail_batch(items, *codes, t, dest)
    return _result(res, items, fallback, codes, target is not None, t, dest)


def _check_fallback(fallback: Any) -> None:
    if fallback not in (None, "pillow"):
        raise ValueError(f"fallback must be None or 'pillow', got {fallback!r}")
    if fallback is not None:
        _pillow.load()  # ImportError with the command that installs Pillow, before any work


def _result(
    res: tuple[Any, ...],
    items: list[Any],
    fallback: str | None,
    codes: ThumbnailCodes,
    geometry: bool,
    threads: int,
    dest: npt.NDArray[np.uint8] | None,
) -> BatchResult:
    """A decode / thumbnail batch's result, with the records Pillow decodes where ``fallback``."""
    images, status, errors = res[0], res[1], res[2]
    if fallback is not None:
        images, status, errors = list(images), np.array(status), list(errors)
        _pillow.images(items, status, errors, images, codes, geometry, threads, dest)
    return BatchResult(images=images, status=status, errors=errors)


def _out(
    out: Any, n: int, size: tuple[int, int] | None, pixel: int, how: str
) -> npt.NDArray[np.uint8] | None:
    """A batch call's ``out`` array, checked against the shape its records decode to (``size``:
    (width, height), None when the options do not fix one; ``how`` says which option would)."""
    if out is None:
        return None
    if size is None:
        raise ValueError(f"out= needs every image to come out the same size: {how}")
    if not isinstance(out, np.ndarray):
        raise TypeError(
            "out must be a numpy array (a CPU torch tensor's .numpy() shares its memory), "
            f"got {type(out).__name__}"
        )
    w, h = size
    c = (3, 1, 4)[pixel]
    shapes = [(n, h, w, c)] if c != 1 else [(n, h, w), (n, h, w, 1)]
    if out.dtype != np.uint8:
        raise TypeError(f"out must be a uint8 array, got dtype {out.dtype}")
    if out.shape not in shapes:
        raise ValueError(
            f"out must have shape {' or '.join(map(str, shapes))} (len(srcs), height, width"
            f"{', channels' if c != 1 else ''}), got {out.shape}"
        )
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writable C-contiguous array (np.empty(shape, np.uint8) is one)")
    return out


def _gap(reducing_gap: float | None) -> float:
    if reducing_gap is None:
        return 0.0
    if not isinstance(reducing_gap, (int, float, np.integer, np.floating)) or isinstance(reducing_gap, bool):
        raise ValueError(f"reducing_gap must be a number >= 1.0 or None, got {reducing_gap!r}")
    g = float(reducing_gap)
    if not g >= 1.0:
        raise ValueError(f"reducing_gap must be >= 1.0 or None (full-size decode), got {reducing_gap!r}")
    return g


def _threads(threads: int | None) -> int:
    if threads is None:
        return 0
    # numpy integers count too; a count past what a C int holds is "all cores" anyway.
    if not _is_int(threads) or threads <= 0:
        raise ValueError(f"threads must be a positive int or None (all cores), got {threads!r}")
    return int(min(threads, 1 << 16))


def resize(
    img: npt.ArrayLike,
    size: tuple[int, int],
    *,
    filter: FilterName = "lanczos3",
    device: Device | None = None,
) -> Image:
    """Resize a uint8 HxW, HxWx3 or HxWx4 image to ``size = (width, height)``.

    Separable, antialiased when shrinking, fixed-point; bit-exact with Pillow's
    ``Image.resize`` with the same filter (``area`` is Pillow's BOX) for L and RGB images.
    Channels are independent (RGBA is not premultiplied). The result keeps the input's shape: HxW in,
    HxW out; HxWx1 in, HxWx1 out.

    ``device="cuda"`` (or a device array such as a cupy array, with ``device`` left None) resizes on
    the GPU (:mod:`mmcore.gpu`, the same bytes) and returns a cupy array.

    >>> import mmcore, numpy as np
    >>> mmcore.resize(np.zeros((480, 640, 3), np.uint8), (64, 48)).shape
    (48, 64, 3)
    """
    if _on_gpu(device, img):
        from .gpu import default_context

        return default_context().resize([img], size, filter=filter)[0]  # type: ignore[no-any-return]
    a = np.asarray(img)
    if a.dtype != np.uint8:
        raise TypeError(f"img must be uint8, got dtype {a.dtype}")
    w, h = _size_pair("size", size)
    return _core.resize(np.ascontiguousarray(a), w, h, _filter(filter))


def thumbnail(
    src: Source,
    *,
    short_side: int | None = None,
    fit: tuple[int, int] | None = None,
    crop: tuple[int, int] | None = None,
    filter: FilterName = "lanczos3",
    color: Color = "rgb",
    exif_orientation: bool = True,
    max_pixels: int | None = None,
    upscale: bool = True,
    fast: bool = False,
    reducing_gap: float | None = 2.0,
) -> Image:
    """Decode (at a reduced JPEG scale where that still covers the result), orient and resize.

    Exactly one geometry: ``short_side`` (aspect kept, the short side becomes this),
    ``fit=(w, h)`` (aspect kept, fits inside the box) or ``crop=(w, h)`` (aspect kept,
    covers the box, then centre crop to exactly (w, h)). ``upscale=False`` never enlarges
    (short_side and fit only). ``reducing_gap``: see :func:`decode` (2.0 keeps thumbnails within
    ~34 dB PSNR of Pillow's full-size LANCZOS at 64 px and >= 42 dB from 128 px up).
    Bad data raises :class:`DecodeError`.

    >>> import mmcore
    >>> mmcore.thumbnail(mmcore.demo_images()[0], crop=(64, 64)).shape
    (64, 64, 3)
    """
    pixel = _pixel(color, "drop")
    geo = _geometry(short_side, fit, crop, None)
    return _check(
        _core.thumbnail(
            _single_src(src),
            pixel,
            _flag("exif_orientation", exif_orientation),
            _max_pixels(max_pixels),
            _flag("fast", fast),
            *geo,
            _filter(filter),
            _flag("upscale", upscale),
            _gap(reducing_gap),
        )
    )


def thumbnail_batch(
    srcs: Sequence[Source | None],
    *,
    short_side: int | None = None,
    fit: tuple[int, int] | None = None,
    crop: tuple[int, int] | None = None,
    filter: FilterName = "lanczos3",
    color: Color = "rgb",
    exif_orientation: bool = True,
    max_pixels: int | None = None,
    upscale: bool = True,
    fast: bool = False,
    reducing_gap: float | None = 2.0,
    threads: int | None = None,
    out: npt.NDArray[np.uint8] | None = None,
    fallback: Literal["pillow"] | None = None,
) -> BatchResult:
    """:func:`thumbnail` over many images in parallel; never raises for bad data.

    ``out``: with ``crop=(w, h)``, a uint8 array of shape ``(len(srcs), h, w, 3)`` (gray:
    ``(len(srcs), h, w)`` or ``(..., 1)``) to write the thumbnails into, as in
    :func:`decode_batch`: ``images[i]`` is ``out[i]``, zeros for a failed record.
    ``fallback="pillow"``: formats mmcore does not decode through Pillow, as in
    :func:`decode_batch` (the same thumbnails as the same pixels stored as PNG give).

    >>> import mmcore
    >>> r = mmcore.thumbnail_batch(mmcore.demo_images(), short_side=32)
    >>> all(im is None or min(im.shape[:2]) == 32 for im in r.images)
    True
    """
    codes = _thumbnail_codes(
        short_side=short_side,
        fit=fit,
        crop=crop,
        filter=filter,
        color=color,
        exif_orientation=exif_orientation,
        max_pixels=max_pixels,
        upscale=upscale,
        fast=fast,
        reducing_gap=reducing_gap,
    )
    _check_fallback(fallback)
    items = [_src(s) for s in _batch_sources(srcs)]
    fixed = None if crop is None else (codes[7], codes[8])
    dest = _out(out, len(items), fixed, codes[0], "give crop=(width, height)")
    t = _threads(threads)
    return _result(_core.thumbnail_batch(items, *codes, t, dest), items, fallback, codes, True, t, dest)


def _thumbnail_codes(
    *,
    short_side: int | None = None,
    fit: tuple[int, int] | None = None,
    crop: tuple[int, int] | None = None,
    filter: FilterName = "lanczos3",
    color: Color = "rgb",
    exif_orientation: bool = True,
    max_pixels: int | None = None,
    upscale: bool = True,
    fast: bool = False,
    reducing_gap: float | None = 2.0,
) -> ThumbnailCodes:
    """thumbnail_batch's keyword arguments (checked) as the native option codes."""
    sw, fw, fh, cw, ch, ew, eh = _geometry(short_side, fit, crop, None)
    return (
        _pixel(color, "drop"),
        _flag("exif_orientation", exif_orientation),
        _max_pixels(max_pixels),
        _flag("fast", fast),
        sw,
        fw,
        fh,
        cw,
        ch,
        ew,
        eh,
        _filter(filter),
        _flag("upscale", upscale),
        _gap(reducing_gap),
    )


#: pixel, exif, max_pixels, fast, short_side, fit w/h, crop w/h, exact w/h, filter, upscale, gap
ThumbnailCodes = tuple[int, bool, int, bool, int, int, int, int, int, int, int, int, bool, float]


def image_info(src: Source, *, exif_orientation: bool = True) -> dict[str, Any]:
    """Header facts without decoding pixels: format, width, height (as stored), orientation (the
    EXIF tag, 1 when absent), has_alpha, animated, and display_width / display_height: the size
    :func:`decode` gives with the same ``exif_orientation`` (orientations 5-8 swap the sides).

    >>> import mmcore
    >>> mmcore.image_info(mmcore.demo_images()[0])["format"]
    'jpeg'
    """
    info: dict[str, Any] = _core.image_info(_single_src(src), _flag("exif_orientation", exif_orientation))
    info["status"] = Status(info["status"])
    w, h, o = info["width"], info["height"], info["orientation"]
    turned = _flag("exif_orientation", exif_orientation) and 5 <= o <= 8
    info["display_width"], info["display_height"] = (h, w) if turned else (w, h)
    return info


@dataclass
class EncodeResult(StatusColumn):
    """The outcome of :func:`encode_batch`, one entry per input image, in input order.

    ``data[i]`` (the encoded bytes) is None exactly where ``status[i]`` is not OK; ``errors[i]``
    says what was wrong, None when there is nothing to say.
    """

    data: list[bytes | None]
    status: npt.NDArray[np.uint8]
    errors: list[str | None]

    def __len__(self) -> int:
        return len(self.data)


def _encode_array(img: Any, name: str) -> Image:
    """img as a C-contiguous uint8 HxW / HxWx3 array (copied when not contiguous); ValueError names it."""
    if not isinstance(img, np.ndarray):
        raise ValueError(f"{name} must be a numpy uint8 array (HxW or HxWx3), got {type(img).__name__}")
    if img.dtype != np.uint8:
        raise ValueError(
            f"{name} must have dtype uint8, got {img.dtype}: scale and convert first, e.g. "
            "np.clip(x * 255, 0, 255).astype(np.uint8)"
        )
    if img.ndim == 3 and img.shape[2] == 4:
        raise ValueError(f"{name} has 4 channels (RGBA): JPEG / WebP thumbnails take RGB, pass img[..., :3]")
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] in (1, 3))):
        raise ValueError(f"{name} must be HxW (grey) or HxWx3 (RGB), got shape {img.shape}")
    return np.ascontiguousarray(img)


def _quality(quality: int) -> int:
    if not _is_int(quality) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an int in 1..100, got {quality!r}")
    return int(quality)


def _method(method: int) -> int:
    if not _is_int(method) or not 0 <= method <= 6:
        raise ValueError(f"method must be an int in 0..6 (libwebp: 0 fastest, 6 smallest), got {method!r}")
    return int(method)


def _encode_one(img: Any, fmt: str, quality: int, optimize: bool, method: int = 4) -> bytes:
    a = _encode_array(img, "img")
    status, message, data = _core.encode(
        a, ENCODE_FORMATS[fmt], _quality(quality), _flag("optimize", optimize), _method(method)
    )
    if data is None:
        raise EncodeError(Status(status), message)
    return data


def encode_jpeg(img: Image, *, quality: int = 85, optimize: bool = False) -> bytes:
    """Encode a uint8 HxWx3 (RGB) or HxW (grey) image as baseline JPEG bytes (libjpeg-turbo).

    ``quality`` 1..100 is libjpeg's (and Pillow's) scale; colour is 4:2:0, grey stays one
    channel. ``optimize=True`` builds optimised Huffman tables (a few % smaller, slower).
    Raises ValueError for an array of another dtype or shape (a non-contiguous one is copied)
    and :class:`EncodeError` (a ValueError) when the image cannot be encoded: empty, or over
    65500 pixels a side (TOO_LARGE). The GIL is released while encoding.

    >>> import mmcore, numpy as np
    >>> data = mmcore.encode_jpeg(np.full((32, 48, 3), 200, np.uint8), quality=90)
    >>> data[:2], mmcore.decode(data).shape
    (b'\\xff\\xd8', (32, 48, 3))
    """
    return _encode_one(img, "jpeg", quality, optimize)


def encode_webp(img: Image, *, quality: int = 80, method: int = 4) -> bytes:
    """Encode a uint8 HxWx3 (RGB) or HxW (grey) image as lossy WebP bytes (libwebp).

    ``quality`` 1..100 is libwebp's (and Pillow's) scale; ``method`` 0..6 its speed / size
    trade-off (Pillow's ``method``, default 4 as Pillow: the bytes equal Pillow's save with the
    same quality and method; 0 encodes thumbnails about 3x faster, a little larger). WebP has no
    grey format: a grey image is stored as R = G = B and decodes as RGB. Raises ValueError for an
    array of another dtype or shape and :class:`EncodeError` when the image cannot be encoded:
    empty, or over 16383 pixels a side (TOO_LARGE: WebP's format limit; resize first or use JPEG).

    >>> import mmcore, numpy as np
    >>> data = mmcore.encode_webp(np.full((32, 48, 3), 200, np.uint8))
    >>> data[:4], data[8:12], mmcore.decode(data).shape
    (b'RIFF', b'WEBP', (32, 48, 3))
    """
    return _encode_one(img, "webp", quality, False, method)


def encode_batch(
    images: Sequence[Image | None],
    *,
    format: EncodeFormat = "jpeg",
    quality: int | None = None,
    optimize: bool = False,
    threads: int | None = None,
    method: int | None = None,
) -> EncodeResult:
    """Encode many images on ``threads`` threads (default all cores, GIL released); never raises for bad data.

    ``format`` is "jpeg" or "webp"; ``quality`` defaults to 85 (JPEG) / 80 (WebP); ``optimize``
    is JPEG's (see :func:`encode_jpeg`), ``method`` WebP's (0..6, default 4: see
    :func:`encode_webp`). A None entry (e.g. a record whose decode failed), an
    empty image or one over the format's size limit gets ``data[i] = None``, a non-OK
    ``status[i]`` (CORRUPT, CORRUPT, TOO_LARGE) and a message in ``errors[i]``. An entry of
    another dtype or shape is misuse: ValueError naming ``images[i]``.

    >>> import mmcore, numpy as np
    >>> r = mmcore.encode_batch([np.zeros((16, 16, 3), np.uint8), None], format="webp")
    >>> r.counts(), r.data[1] is None
    ({'OK': 1, 'CORRUPT': 1}, True)
    """
    if format not in ENCODE_FORMATS:
        raise ValueError(f"format must be one of {sorted(ENCODE_FORMATS)}, got {format!r}")
    if optimize and format != "jpeg":
        raise ValueError("optimize=True is a JPEG option: use it with format='jpeg'")
    if method is not None and format != "webp":
        raise ValueError("method is a WebP option: use it with format='webp'")
    q = DEFAULT_QUALITY[format] if quality is None else _quality(quality)
    m = 4 if method is None else _method(method)
    images = _batch_sources(images, "images")
    items = [None if im is None else _encode_array(im, f"images[{i}]") for i, im in enumerate(images)]
    res = _core.encode_batch(
        items, ENCODE_FORMATS[format], q, _flag("optimize", optimize), _threads(threads), m
    )
    return EncodeResult(data=res[0], status=res[1], errors=res[2])
