#!/usr/bin/env python3
"""atheris harness over the Python API: mmcore.decode, decode_batch, thumbnail and thumbnail_batch.

It fuzzes the binding layer (buffer handling, argument passing, GIL release, result conversion) on
top of the decoders. The contract it checks: bad data raises mmcore.DecodeError (single-record
calls) or gives a non-OK status with a message (batch calls); anything else (another exception, a
crash, an image of the wrong dtype/shape, disagreement between the single and batch APIs) is a bug.
Where the options give every image one size (thumbnail ``crop``, a decode ``target`` pair) the batch
also decodes into a caller's ``out=`` array filled with junk first: its rows must equal the plain
batch's images, a failed record's row must be zeros, and nothing may be written past the array
(it is a view into a larger buffer whose guard bytes are checked).

Input layout: byte 0 selects the options the same way fuzz_decode.cpp reads them, so the two
harnesses share a seed corpus (tests/fuzz/make_seeds.py); the rest is the encoded image.

    python tests/fuzz/fuzz_decode_py.py -max_total_time=300 -rss_limit_mb=2048 -timeout=2 \
        build/fuzz/corpus_py build/fuzz/seeds
"""

from __future__ import annotations

import sys
from typing import Any

import atheris
import numpy as np

with atheris.instrument_imports(include=["mmcore"]):  # its Python layer; _core is not instrumented
    import mmcore

MAX_PIXELS = 1 << 24  # as in fuzz_decode.cpp: huge legal headers are refused, not decoded
TARGETS = (1, 17, 64, 256)


def _as_source(body: bytes, how: int) -> object:
    """The same bytes through each buffer kind the API accepts."""
    if how == 0:
        return body
    if how == 1:
        return memoryview(bytearray(body))
    return np.frombuffer(body, np.uint8)


def _single(fn: Any, src: Any, kw: dict[str, Any], color: str) -> Any:
    """One single-record call: a checked image, or None after a well-formed DecodeError."""
    try:
        img = fn(src, **kw)
    except mmcore.DecodeError as e:
        assert isinstance(e.status, mmcore.Status) and e.status > mmcore.Status.OK_WARNING
        assert str(e)
        return None
    _check_image(img, color)
    return img


def _check_image(img: object, color: str) -> None:
    assert isinstance(img, np.ndarray), type(img)
    assert img.dtype == np.uint8, img.dtype
    assert img.ndim == (2 if color == "gray" else 3), img.shape
    assert img.shape[0] > 0 and img.shape[1] > 0, img.shape
    assert img.flags.c_contiguous


# Only mmcore's Python layer is instrumented, so these two give libFuzzer a coverage signal for what
# the C++ side did (format reached, status returned): the corpus then keeps inputs of every kind.
@atheris.instrument_func
def _format_seen(fmt: str) -> None:
    if fmt == "jpeg":
        return
    if fmt == "png":
        return
    if fmt == "webp":
        return


@atheris.instrument_func
def _status_seen(status: int) -> None:
    if status == mmcore.Status.OK:
        return
    if status == mmcore.Status.OK_WARNING:
        return
    if status == mmcore.Status.CORRUPT:
        return
    if status == mmcore.Status.UNSUPPORTED:
        return
    if status == mmcore.Status.TOO_LARGE:
        return


@atheris.instrument_func
def _out_seen(ch: int, ok: bool) -> None:
    """Coverage for the out= leg: the corpus keeps inputs that decode into each kind of slot."""
    seen = 2 * ch + ok
    if seen == 3:  # gray, decoded
        return
    if seen == 7:  # rgb
        return
    if seen == 9:  # rgba
        return


def _channels(color: str, alpha: str) -> int:
    return 1 if color == "gray" else 4 if alpha == "keep" else 3


def _check_out(
    fn: Any, srcs: list[Any], kw: dict[str, Any], size: tuple[int, int], ch: int, plain: Any
) -> None:
    """The batch again into a junk-filled ``out=`` slice of a guarded buffer: same pixels, zeroed failures."""
    w, h = size
    guard = 4096
    per = h * w * ch
    buf = np.full(2 * guard + len(srcs) * per, 0xA5, np.uint8)
    out = buf[guard : guard + len(srcs) * per].reshape((len(srcs), h, w) + ((ch,) if ch > 1 else ()))
    r = fn(srcs, threads=2, out=out, **kw)
    assert (buf[:guard] == 0xA5).all() and (buf[-guard:] == 0xA5).all(), "write outside out="
    assert list(r.status) == list(plain.status), (r.status, plain.status)
    _out_seen(ch, plain.images[0] is not None)
    for i, (img, want) in enumerate(zip(r.images, plain.images, strict=True)):
        if want is None:
            assert img is None and not out[i].any(), i
        else:
            assert img is not None and np.shares_memory(img, out) and np.array_equal(img, want), i


def test_one_input(data: bytes) -> None:
    if len(data) < 1:
        return
    sel, body = data[0], data[1:]
    color = "gray" if (sel & 3) == 1 else "rgb"
    alpha = "keep" if (sel & 3) == 2 else "drop"
    exif = bool(sel & 4)
    fast = bool(sel & 0x80)
    t = TARGETS[(sel >> 4) & 3]
    src = _as_source(body, sel % 3)

    if sel & 0x40:  # thumbnail path
        geo: dict[str, object] = [
            {"short_side": t},
            {"fit": (t, t // 2 + 1)},
            {"crop": (t, t)},
            {"short_side": t // 4 + 1},
        ][(sel >> 4) & 3]
        flt = ("nearest", "area", "bilinear", "bicubic", "lanczos3")[sel % 5]
        kw = dict(color=color, exif_orientation=exif, max_pixels=MAX_PIXELS, fast=fast, filter=flt, **geo)
        single = _single(mmcore.thumbnail, src, kw, color)
        r = mmcore.thumbnail_batch([src, body], threads=2, **kw)  # type: ignore[arg-type]
        if "crop" in geo:
            _check_out(mmcore.thumbnail_batch, [src, body], kw, (t, t), _channels(color, "drop"), r)
    else:
        target = t if sel & 8 else None
        kw = dict(
            color=color, alpha=alpha, exif_orientation=exif, max_pixels=MAX_PIXELS, fast=fast, target=target
        )
        single = _single(mmcore.decode, src, kw, color)
        r = mmcore.decode_batch([src, body], threads=2, **kw)  # type: ignore[arg-type]
        if sel & 8 and len(body) % 2:  # a (width, height) target: one batch size, so out= too
            pair = (t, t // 2 + 1)
            kw2 = dict(kw, target=pair)
            plain = mmcore.decode_batch([src, body], threads=2, **kw2)  # type: ignore[arg-type]
            _check_out(mmcore.decode_batch, [src, body], kw2, pair, _channels(color, alpha), plain)

    _status_seen(int(r.status[0]))
    info = mmcore.image_info(body)  # header facts: a status in the dict, never an exception
    assert isinstance(info["status"], mmcore.Status)
    _format_seen(str(info["format"]))
    # The batch never raises; both records are the same bytes, so they agree with each other and
    # with the single-record call.
    assert len(r) == 2 and r.status.dtype == np.uint8
    assert r.status[0] == r.status[1], r.status
    for img, st, err in zip(r.images, r.status, r.errors, strict=True):
        if st <= mmcore.Status.OK_WARNING:
            assert img is not None
            _check_image(img, color)
        else:
            assert img is None and err, (st, err)
    if single is None:
        assert r.images[0] is None
    else:
        assert r.images[0] is not None and np.array_equal(single, r.images[0])


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
