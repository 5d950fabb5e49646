"""GIF (first frame), decoded by mmcore's own decoder.

Oracle: Pillow 13's ``Image.open(f).convert("RGB" | "L" | "RGBA")``, on GIFs Pillow writes
(real LZW with code-size growth and full tables, animations) and on GIFs written below by a minimal
encoder that reaches what Pillow's writer never does: frames smaller than or poking out of the
logical screen, transparency, local palettes, palettes shorter than the indices, no palette.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence

import numpy as np
import pytest
from conftest import assert_byte_flips_give_statuses, corpus_files
from PIL import Image

import mmcore
from mmcore import Status


def _lzw(indices: bytes, m: int) -> bytes:
    """LZW that never grows the code size: a clear code every 2**m // 2 literals."""
    clear, end, width = 1 << m, (1 << m) + 1, m + 1
    codes, run = [clear], 0
    for v in indices:
        if run == max((1 << m) // 2, 1):
            codes.append(clear)
            run = 0
        codes.append(v)
        run += 1
    codes.append(end)
    out, acc, n = bytearray(), 0, 0
    for c in codes:
        acc |= c << n
        n += width
        while n >= 8:
            out.append(acc & 255)
            acc >>= 8
            n -= 8
    if n:
        out.append(acc & 255)
    return bytes(out)


def _sub_blocks(b: bytes) -> bytes:
    return b"".join(bytes([len(b[i : i + 255])]) + b[i : i + 255] for i in range(0, len(b), 255)) + b"\0"


def _palette(p: np.ndarray) -> tuple[int, bytes]:
    bits = max(len(p).bit_length() - 2, 0)
    raw = p.astype(np.uint8).tobytes()
    return bits, raw + bytes(3 * (2 << bits) - len(raw))


def encode_gif(
    idx: np.ndarray,
    *,
    palette: np.ndarray | None,
    screen: tuple[int, int] | None = None,
    position: tuple[int, int] = (0, 0),
    local: np.ndarray | None = None,
    transparency: int | None = None,
    interlace: bool = False,
    min_code: int = 8,
) -> bytes:
    h, w = idx.shape
    sw, sh = screen or (w, h)
    out = bytearray(b"GIF89a" + struct.pack("<HH", sw, sh))
    if palette is not None:
        bits, raw = _palette(palette)
        out += bytes([0x80 | bits, 0, 0]) + raw
    else:
        out += bytes([0, 0, 0])
    if transparency is not None:
        out += b"\x21\xf9\x04\x01\x00\x00" + bytes([transparency]) + b"\x00"
    out += b"\x2c" + struct.pack("<HHHH", *position, w, h)
    flags = 0x40 if interlace else 0
    if local is not None:
        bits, raw = _palette(local)
        out += bytes([0x80 | flags | bits]) + raw
    else:
        out += bytes([flags])
    rows: Sequence[int] = range(h)
    if interlace:
        rows = [*range(0, h, 8), *range(4, h, 8), *range(2, h, 4), *range(1, h, 2)]
    out += bytes([min_code]) + _sub_blocks(_lzw(b"".join(idx[r].tobytes() for r in rows), min_code))
    return bytes(out + b"\x3b")


def _assert_like_pillow(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as im:
        ref = {c: np.asarray(im.convert(m)) for c, m in (("rgb", "RGB"), ("gray", "L"))}
        rgba = np.asarray(im.convert("RGBA"))
    for color, expected in ref.items():
        np.testing.assert_array_equal(mmcore.decode(data, color=color), expected)  # type: ignore[arg-type]
    np.testing.assert_array_equal(mmcore.decode(data, alpha="keep"), rgba)


RNG = np.random.default_rng(7)
PAL = RNG.integers(0, 256, (16, 3)).astype(np.uint8)
IDX = RNG.integers(0, 16, (11, 13)).astype(np.uint8)

CASES: dict[str, dict[str, object]] = {
    "plain": {},
    "interlaced": {"interlace": True},
    "inside_a_larger_screen": {"screen": (20, 17), "position": (3, 4)},
    "transparent_fill_outside": {"screen": (20, 17), "position": (3, 4), "transparency": 5},
    "poking_out_of_the_screen": {"screen": (6, 6), "position": (2, 3)},
    "short_palette": {"palette": PAL[:4]},
    "local_palette": {"local": PAL[::-1].copy()},
    "transparency": {"transparency": 2},
    "no_palette": {"palette": None},
}


@pytest.mark.parametrize("case", CASES)
def test_crafted_gifs_equal_pillow(case: str) -> None:
    kw: dict[str, object] = {"palette": PAL, "min_code": 4, **CASES[case]}
    _assert_like_pillow(encode_gif(IDX, **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize("noise", [0, 40])
def test_pillow_written_gifs_equal_pillow(noise: int) -> None:
    y, x = np.mgrid[0:120, 0:160]
    photo = np.stack([x % 256, y * 2 % 256, (x * y) % 256], -1)
    photo = np.clip(photo + np.random.default_rng(noise).integers(-noise, noise + 1, photo.shape), 0, 255)
    buf = io.BytesIO()
    Image.fromarray(photo.astype(np.uint8)).save(buf, "GIF")
    _assert_like_pillow(buf.getvalue())
    info = mmcore.image_info(buf.getvalue())
    assert info["format"] == "gif" and not info["animated"]


def test_animation_first_frame() -> None:
    frames = [Image.fromarray(RNG.integers(0, 256, (30, 40, 3), dtype=np.uint8)) for _ in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=40)
    _assert_like_pillow(buf.getvalue())
    assert mmcore.image_info(buf.getvalue())["animated"]


def test_hashes_of_a_gif_equal_imagehash() -> None:
    imagehash = pytest.importorskip("imagehash")
    buf = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(buf, "GIF")
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        assert mmcore.phash(buf.getvalue()) == int(str(imagehash.phash(im)), 16)
        assert mmcore.dhash(buf.getvalue()) == int(str(imagehash.dhash(im)), 16)


def test_damaged_gifs_never_crash() -> None:
    buf = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(buf, "GIF")
    data = buf.getvalue()
    # Everything up to the last pixel's code is needed; the end code, the terminator and the
    # trailer are not (Pillow decodes such a file too).
    needed = next(n for n in range(len(data)) if mmcore.decode_batch([data[:n]]).status[0] == Status.OK)
    assert needed > len(data) - 8
    for n in range(needed):
        r = mmcore.decode_batch([data[:n]])
        assert r.status[0] == Status.CORRUPT and r.errors[0], n
    assert_byte_flips_give_statuses(data, 6)
    r = mmcore.decode_batch([data[: len(data) // 2]])
    assert "truncated GIF" in (r.errors[0] or "")


def test_undefined_lzw_code_is_corrupt() -> None:
    data = bytearray(encode_gif(IDX, palette=PAL, min_code=4))
    # header 13, palette 16 x 3, image descriptor 10, min code size 1, sub-block length 1
    start = 13 + 3 * 16 + 10 + 2
    assert data[start - 12] == 0x2C
    data[start] = 0x1F  # clear code's successor slot: code 31 is not yet defined at width 5
    r = mmcore.decode_batch([bytes(data)])
    assert r.status[0] == Status.CORRUPT and "LZW" in (r.errors[0] or ""), r.errors[0]


@pytest.mark.corpus
def test_corpus_gif_equals_pillow() -> None:
    folders = ("odd", "jpeg", "png", "webp")
    gifs = [p for d in folders for p in corpus_files(d) if p.read_bytes()[:3] == b"GIF"]
    if not gifs:
        pytest.skip("no GIF in the corpus")
    for p in gifs:
        _assert_like_pillow(p.read_bytes())
