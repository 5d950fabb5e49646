"""Pillow beside mmcore's decoders, in two roles.

- **Pillow images as hash sources** (:func:`is_image`, :func:`hash_pixels`): ``mmcore.phash(im)`` and
  ``hash_batch([im, ...])`` take what imagehash takes, hashing the array imagehash's functions see
  in it (``convert("L")`` for the grey modes, ``convert("RGB")`` for the others).
- **A second decoder** (``fallback="pillow"`` of ``hash_batch``, ``decode_batch``,
  ``thumbnail_batch`` and ``pipeline.build``; ``Config.fallback = "pillow"``): the records mmcore's
  own decoder names ``UNSUPPORTED`` (TIFF, BMP, ICO, PNM, JPEG 2000, Photoshop, QOI; HEIF / HEIC
  where pillow-heif is installed; AVIF in a build without libavif) are decoded by Pillow
  (:func:`decode`), then hashed, turned and resized by mmcore as its own formats are, so that a
  corpus's odd formats get hashes and thumbnails instead of a status.

The pixels are Pillow's, the hashes mmcore's of them: in exact mode imagehash's bits on the same
``Image.open`` and PDQ's reference on the 8-bit image. Only records mmcore named UNSUPPORTED go to
Pillow (it recognised a format's signature), and Pillow tries only the formats of
:data:`PILLOW_FORMATS`: never a format it would take junk for (TGA and the like have no
signature), nor one that runs another program (EPS, PDF). Pillow is imported only when used.
"""

from __future__ import annotations

import io
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _core
from .status import Status

#: Pillow's format ids that :func:`decode` lets ``Image.open`` try, in this order: those mmcore
#: names UNSUPPORTED, then mmcore's own formats for the variants it refuses (Pillow may read some).
#: "HEIF" is there once pillow-heif registered it (:func:`load`).
PILLOW_FORMATS = (
    "TIFF", "BMP", "ICO", "PPM", "JPEG2000", "PSD", "QOI", "HEIF",
    "AVIF", "JPEG", "PNG", "WEBP", "GIF",
)  # fmt: skip

#: Formats mmcore decodes itself (Pillow's ids; an MPO opens as one): a record of one of them that
#: Pillow cannot decode either keeps mmcore's status, which names what mmcore refused (12-bit
#: samples, a JPEG process).
_OWN = {"JPEG", "MPO", "PNG", "WEBP", "GIF", "AVIF"}
#: Pillow modes whose grey image imagehash hashes (``convert("L")``) without a colour conversion.
_GREY = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


def is_image(obj: Any) -> bool:
    """Whether ``obj`` is a Pillow image (Pillow is not imported: none exists unless it was)."""
    module = sys.modules.get("PIL.Image")
    return module is not None and isinstance(obj, module.Image)


def pixels(im: Any) -> npt.NDArray[np.uint8]:
    """The uint8 array imagehash's functions see in the Pillow image ``im``: HxW from
    ``convert("L")`` for the grey modes (1, L, LA, I, I;16, F...), HxWx3 from ``convert("RGB")``
    for the others (RGB, RGBA, P, CMYK...), C-contiguous. Loads a lazily opened image; raises what
    Pillow raises for one it cannot load or convert.

    The pixels as they are: an EXIF orientation is not applied (nor by imagehash; Pillow's
    ``ImageOps.exif_transpose`` turns an image first). The colour spaces YCbCr, HSV and LAB (rare:
    Pillow opens JPEGs as RGB) are hashed from their RGB conversion, where imagehash takes a YCbCr
    image's Y plane for its grey image and an HSV image's own planes for colorhash (those can differ
    by rounding) and cannot hash a LAB image.
    """
    grey = im.mode in _GREY
    want = "L" if grey else "RGB"
    a = np.asarray(im if im.mode == want else im.convert(want))  # convert() would copy an RGB image
    if a.dtype != np.uint8 or a.ndim != (2 if grey else 3):
        raise ValueError(f"Pillow converted the {im.mode} image to {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


#: Modes whose four stored bytes per pixel are R, G, B and one more (padding or alpha): hashed as
#: they are, the fourth byte ignored, as ``convert("RGB")`` drops it.
_RGB4 = {"RGB", "RGBA", "RGBX"}


def hash_pixels(im: Any) -> npt.NDArray[np.uint8]:
    """:func:`pixels` for hashing, without the copy where Pillow lends its memory: an RGB (RGBA,
    RGBX) image as a read-only HxWx4 view of Pillow's four bytes per pixel (every hash ignores the
    fourth channel: the bits are those of ``pixels(im)``), an L image as an HxW view, through the
    Arrow export of Pillow 11.2+. The copy it saves (``np.asarray``) holds the GIL and cost ~0.6 ms
    for 0.24 Mpx, as much as hashing the image. Other modes are converted first (``convert``);
    images whose rows Pillow stores in more than one block (over its 16 MiB block size) and older
    Pillows take :func:`pixels`. The view keeps Pillow's memory alive, not the image object."""
    grey = im.mode in _GREY
    src = im if im.mode == "L" or (not grey and im.mode in _RGB4) else im.convert("L" if grey else "RGB")
    export = getattr(src, "__arrow_c_array__", None)
    if export is not None:
        try:
            schema, array = export()  # loads a lazily opened image first (and raises what load raises)
        except ValueError:  # "Image rows are not contiguous in memory": stored in several blocks
            pass
        else:
            return _core.arrow_pixels(schema, array, src.width, src.height)
    return pixels(src)


#: The formats mmcore names UNSUPPORTED (by signature) that Pillow reads (HEIF with pillow-heif;
#: AVIF where this build has no libavif).
_READS = ("TIFF", "BMP", "PNM", "ICO", "HEIF", "JPEG 2000", "Photoshop", "QOI", "AVIF")


def hint(error: str, how: str) -> str:
    """A single call's message for a format Pillow reads, with ``how`` to go through Pillow."""
    if error.startswith(_READS) and "images are not supported" in error:
        heif = " (HEIF: with pillow-heif)" if error.startswith("HEIF") else ""
        return f"{error}; Pillow reads it{heif}: {how}"
    return error


def load() -> None:
    """Imports Pillow (ImportError with the command to install it when it is missing) and, where
    pillow-heif is installed, registers its HEIF opener with Pillow (what pillow-heif is for)."""
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        raise ImportError(
            "fallback 'pillow' needs Pillow: pip install 'mmcore[fallback]' (or pip install Pillow)"
        ) from None
    try:
        import pillow_heif
    except ImportError:
        return
    pillow_heif.register_heif_opener()


@dataclass
class Decoded:
    """What :func:`decode` made of one record: ``pixels`` (uint8, HxW grey, HxWx3 RGB or, when
    asked for, HxWx4 RGBA; as stored: not turned) and the image's header facts, or ``status`` /
    ``error`` saying why there are none."""

    status: Status
    error: str | None
    format: str | None = None
    width: int = 0
    height: int = 0
    orientation: int = 1
    pixels: npt.NDArray[np.uint8] | None = None


#: The Pillow mode of each of mmcore's pixel codes (``image._pixel``: rgb, gray, rgb + alpha).
MODES = {0: "RGB", 1: "L", 2: "RGBA"}


def decode(data: Any, max_pixels: int, refused: str | None, mode: str | None = None) -> Decoded:
    """Pillow's decode of ``data`` (bytes or a buffer), the first frame; never raises for bad data.
    ``refused`` is mmcore's message for the record (UNSUPPORTED), kept in the error when Pillow
    cannot decode it either. Images over ``max_pixels`` are refused before their pixels are read.
    ``mode``: the pixels as ``convert(mode)`` gives them; None: as :func:`pixels` (the hashes')."""
    from PIL import Image, UnidentifiedImageError

    why = refused or "mmcore does not decode it"
    Image.init()  # the plugins registered (Image.open would); an id Pillow lacks is a KeyError there
    formats = [f for f in PILLOW_FORMATS if f in Image.OPEN]
    try:
        im = Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError as e:
        return Decoded(Status.TOO_LARGE, f"{why}; Pillow refuses it: {e}")
    except UnidentifiedImageError:
        if "HEIF" not in formats and why.startswith("HEIF"):
            how = "Pillow reads HEIF / HEIC with pillow-heif (pip install pillow-heif), not installed here"
            return Decoded(Status.UNSUPPORTED, f"{why}; {how}")
        return Decoded(Status.UNSUPPORTED, f"{why}; Pillow cannot read it either")
    except MemoryError:
        return Decoded(Status.NO_MEMORY, f"{why}; out of memory in Pillow")
    except Exception as e:  # Pillow's plugins raise many kinds (OSError, SyntaxError, struct.error...)
        return Decoded(Status.UNSUPPORTED, f"{why}; Pillow cannot read it either ({_text(e)})")
    fmt = str(im.format or "")
    with im:
        w, h = im.size
        if w * h > max_pixels:
            return Decoded(
                Status.TOO_LARGE,
                f"{fmt} image is {w}x{h} = {w * h} pixels, over the limit of {max_pixels} "
                "(raise max_pixels to allow it)",
                fmt.lower(),
                w,
                h,
            )
        try:
            px = pixels(im) if mode is None else np.ascontiguousarray(_as_mode(im, mode))
            # Read after the decode: Pillow applies a TIFF's orientation as it loads it (and drops
            # the tag), so imagehash hashes it turned; other formats keep theirs for mmcore to apply.
            orientation = _orientation(im)
            w, h = im.size
        except MemoryError:
            return Decoded(Status.NO_MEMORY, f"{why}; out of memory in Pillow")
        except Exception as e:
            # Pillow knew the format but not these bytes: damaged, unless it is one of mmcore's own
            # formats, whose UNSUPPORTED message names what mmcore refused.
            if fmt in _OWN:
                return Decoded(Status.UNSUPPORTED, f"{why}; Pillow cannot decode it either ({_text(e)})")
            return Decoded(Status.CORRUPT, f"{fmt} image that Pillow cannot decode: {_text(e)}", fmt.lower())
    if px.size == 0:
        return Decoded(Status.CORRUPT, f"{fmt} image that Pillow decoded to an empty {px.shape} array")
    return Decoded(Status.OK, None, fmt.lower(), w, h, orientation, px)


def decode_records(
    items: Any,
    js: list[int],
    errors: list[str | None],
    max_pixels: int,
    threads: int | None,
    mode: str | None,
) -> list[Decoded]:
    """:func:`decode` of the encoded sources ``items[j]`` (bytes, buffers or paths) for each ``j``
    of ``js``, on up to ``threads`` threads (None or 0: all cores; Pillow's decoders release the
    GIL); ``errors[j]`` is mmcore's message for the record."""
    if not js:
        return []
    with ThreadPoolExecutor(min(len(js), threads or os.cpu_count() or 1)) as ex:
        return list(ex.map(lambda j: decode(encoded(items[j]), max_pixels, errors[j], mode), js))


def _as_mode(im: Any, mode: str) -> npt.NDArray[np.uint8]:
    a = np.asarray(im if im.mode == mode else im.convert(mode))
    if a.dtype != np.uint8 or a.ndim != (2 if mode == "L" else 3):
        raise ValueError(f"Pillow converted the {im.mode} image to {a.dtype} {a.shape}")
    return a


def encoded(item: Any) -> Any:
    """An encoded source's bytes for :func:`decode`: a path's file read (a batch call's native
    pass read it before); bytes and buffers as they are."""
    if isinstance(item, str):
        try:
            with open(item, "rb") as f:
                return f.read()
        except OSError:
            return b""  # gone since: Pillow names it unidentified, as mmcore did
    return item


def _orientation(im: Any) -> int:
    """The EXIF orientation Pillow reads (1..8; 1 when absent, unreadable or out of range)."""
    try:
        o = im.getexif().get(0x0112, 1)
    except Exception:  # a damaged EXIF block must not cost the image
        return 1
    return o if isinstance(o, int) and 1 <= o <= 8 else 1


def _text(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def turned(px: npt.NDArray[np.uint8], orientation: int) -> npt.NDArray[np.uint8]:
    """``px`` as EXIF ``orientation`` says to show them (what ``ImageOps.exif_transpose``
    does), C-contiguous.

    >>> a = np.arange(6, dtype=np.uint8).reshape(2, 3)
    >>> turned(a, 6).tolist()  # 90 degrees clockwise
    [[3, 0], [4, 1], [5, 2]]
    """
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops[orientation](px))


def grey(px: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """HxW from :class:`Decoded` pixels: Pillow's ``convert("L")`` of an RGB image, which is what
    fast mode hashes (it decodes mmcore's own formats straight to that grey image, so an RGB array
    would give other PDQ bits)."""
    from PIL import Image

    return px if px.ndim == 2 else np.asarray(Image.fromarray(px).convert("L"))


def rgb(px: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """HxWx3 from :class:`Decoded` pixels (a grey image's value in every channel, as Pillow's
    ``convert("RGB")`` of ``L``; an RGBA image's colours)."""
    if px.ndim == 2:
        return np.repeat(px[:, :, None], 3, axis=2)
    return px if px.shape[2] == 3 else np.ascontiguousarray(px[:, :, :3])


def rgba(px: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """HxWx4 from :class:`Decoded` pixels (opaque where they have no alpha, as Pillow's
    ``convert("RGBA")``)."""
    if px.ndim == 3 and px.shape[2] == 4:
        return px
    out = np.full((*px.shape[:2], 4), 255, np.uint8)
    out[:, :, :3] = rgb(px)
    return out


def thumbnail(
    px: npt.NDArray[np.uint8], orientation: int, codes: tuple[Any, ...], geometry: bool = True
) -> tuple[Status, str | None, npt.NDArray[np.uint8] | None]:
    """``(status, error, image)``: what ``thumbnail_batch`` (or ``decode_batch`` with a target)
    makes with the option codes ``codes`` (``mmcore.image.ThumbnailCodes``) of an image whose
    full-size decode is ``px`` (as :func:`decode` gives it; ``orientation`` applied when the
    options say so): the same colour, geometry, pixel limit, filter and centre crop, from these
    pixels. ``geometry=False``: ``decode_batch`` without a target (turned and coloured only)."""
    pixel, exif, max_pixels, _, side, fit_w, fit_h, crop_w, crop_h, exact_w, exact_h, filt, upscale, _ = codes
    a = turned(px, orientation if exif else 1)
    a = (rgb, grey, rgba)[pixel](a)
    h, w = a.shape[:2]
    if w * h > max_pixels:
        return Status.TOO_LARGE, f"image is {w}x{h} = {w * h} pixels, over the limit of {max_pixels}", None
    if not geometry:
        return Status.OK, None, a
    sizes = (side, fit_w, fit_h, crop_w, crop_h, exact_w, exact_h, upscale)
    rw, rh, ow, oh = _core.thumbnail_geometry(w, h, *sizes)
    largest = max(ow * oh, rw, rh)
    if largest > max_pixels:
        return (
            Status.TOO_LARGE,
            f"thumbnail of the {w}x{h} image would be {rw}x{rh} = {largest} pixels, "
            f"over the limit of {max_pixels}",
            None,
        )
    if (rw, rh) != (ow, oh):  # a centre crop of the resize, the window alone computed
        return Status.OK, None, _core.resize(a, ow, oh, filt, -1, rw, rh)
    return Status.OK, None, a if (rw, rh) == (w, h) else _core.resize(a, rw, rh, filt)


def images(
    items: Any,
    status: npt.NDArray[np.uint8],
    errors: list[str | None],
    out: list[Any],
    codes: tuple[Any, ...],
    geometry: bool,
    threads: int,
    dest: npt.NDArray[np.uint8] | None,
) -> None:
    """``fallback="pillow"`` of ``decode_batch`` / ``thumbnail_batch``: the records of encoded
    ``items`` that ``status`` names UNSUPPORTED decoded by Pillow (in the mode of the pixel code)
    and shaped as :func:`thumbnail` says; ``status``, ``errors`` and the images ``out`` (and
    ``dest``, the caller's output array, where given) updated in place."""
    js = np.flatnonzero(status == Status.UNSUPPORTED).tolist()
    done = decode_records(items, js, errors, codes[2], threads, MODES[codes[0]])
    for j, d in zip(js, done, strict=True):
        if d.pixels is None:
            status[j], errors[j] = d.status, d.error
            continue
        st, err, img = thumbnail(d.pixels, d.orientation, codes, geometry)
        if img is not None and dest is not None:
            dest[j][...] = img.reshape(dest[j].shape)
            img = dest[j]
        status[j], errors[j], out[j] = st, err, img
