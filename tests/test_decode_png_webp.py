"""PNG (libpng) and WebP (libwebp) decoding against Pillow 13, the oracle.

The rule: mmcore.decode(..., exif_orientation=False) equals Image.open(f).convert("RGB")
(color="gray": convert("L"); alpha="keep": convert("RGBA")) exactly, on images the tests make
with Pillow (or with the small PNG writer below, for what Pillow cannot write: 2/4-bit grey,
16-bit colour, Adam7) and on the corpus. Deliberate deviations, each tested by its own rule:

- 16-bit grey (Pillow mode "I;16"): Pillow's convert() clips samples above 255 to 255 (a nearly
  white image); mmcore keeps the high byte (sample >> 8), which is what Pillow itself does for
  16-bit RGB, RGBA and grey+alpha. Bound against Pillow: up to 255 (it is a different rule).
- tRNS with alpha="keep" on 2/4-bit and 16-bit grey and on 16-bit RGB: Pillow compares the tRNS
  value with the unpacked 8-bit samples (no scaling, no 16-bit compare), so its mask is wrong;
  mmcore follows the PNG spec (libpng): alpha 0 exactly where the stored sample equals tRNS.
- WebP whose header says "no alpha" with alpha="keep": alpha 255 (Pillow reads it as RGBX).
  Lossy WebP: Debian's libwebp 1.2.4 against the wheel's newer libwebp measured 0 differences
  on the 171 corpus files (VP8 reconstruction and fancy upsampling are unchanged), so equality
  is asserted, not a bound.
- PNG damage that Pillow refuses but that leaves the pixels intact (a bad CRC on IDAT or on an
  ancillary chunk, a malformed fixed-length ancillary chunk, a compressed text / ICC chunk that
  inflates past Pillow's 1 MiB MAX_TEXT_CHUNK) gives OK_WARNING with a message.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import corpus_files
from PIL import Image, ImageOps

import mmcore
from mmcore import Status

# Pillow's own notes on files it decodes anyway (tRNS bytes on "P", invalid APNG fallback).
pytestmark = [
    pytest.mark.filterwarnings("ignore:Palette images with Transparency:UserWarning"),
    pytest.mark.filterwarnings("ignore:Invalid APNG:UserWarning"),
]

MODES = {"RGB": ("rgb", "drop"), "L": ("gray", "drop"), "RGBA": ("rgb", "keep")}


# --------------------------------------------------------------------------------------------
# helpers


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _pack_rows(samples: np.ndarray, bit_depth: int) -> list[bytes]:
    """Rows of an (h, w, c) sample array as PNG scanline bytes (no filter byte)."""
    rows = []
    h = samples.shape[0]
    for y in range(h):
        r = samples[y].reshape(-1)
        if bit_depth == 16:
            rows.append(r.astype(">u2").tobytes())
        elif bit_depth == 8:
            rows.append(r.astype(np.uint8).tobytes())
        else:
            per = 8 // bit_depth
            pad = (-len(r)) % per
            v = np.concatenate([r.astype(np.uint8), np.zeros(pad, np.uint8)]).reshape(-1, per)
            shifts = np.arange(per - 1, -1, -1, dtype=np.uint8) * bit_depth
            rows.append((v << shifts).sum(axis=1).astype(np.uint8).tobytes())
    return rows


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def make_png(
    samples: np.ndarray,
    bit_depth: int,
    color_type: int,
    *,
    palette: bytes | None = None,
    trns: bytes | None = None,
    interlace: bool = False,
    before_idat: bytes = b"",
) -> bytes:
    """A minimal PNG writer (filter 0) for what Pillow cannot write: Pillow stays the oracle."""
    if samples.ndim == 2:
        samples = samples[..., None]
    h, w, _ = samples.shape
    raw = b""
    if interlace:
        for x0, y0, dx, dy in ADAM7:
            sub = samples[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += b"".join(b"\0" + r for r in _pack_rows(sub, bit_depth))
    else:
        raw = b"".join(b"\0" + r for r in _pack_rows(samples, bit_depth))
    out = b"\x89PNG\r\n\x1a\n" + _chunk(
        b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, int(interlace))
    )
    if palette is not None:
        out += _chunk(b"PLTE", palette)
    if trns is not None:
        out += _chunk(b"tRNS", trns)
    out += before_idat + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")
    return out


def pillow_save(im: Image.Image, fmt: str, **kw: Any) -> bytes:
    f = io.BytesIO()
    im.save(f, fmt, **kw)
    return f.getvalue()


def decode(data: bytes, mode: str = "RGB", **kw: Any) -> np.ndarray:
    color, alpha = MODES[mode]
    return mmcore.decode(data, exif_orientation=False, color=color, alpha=alpha, **kw)


def pillow(data: bytes, mode: str = "RGB") -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert(mode))


def png_header(data: bytes) -> tuple[int, int]:
    """(bit depth, colour type) from IHDR."""
    return data[24], data[25]


def high_byte_rule(data: bytes, mode: str) -> np.ndarray:
    """Expected pixels for a 16-bit grey ("I;16") PNG: sample >> 8; alpha from tRNS on 16 bits."""
    im = Image.open(io.BytesIO(data))
    raw = np.asarray(im).astype(np.uint16)
    g = (raw >> 8).astype(np.uint8)
    if mode == "L":
        return g
    rgb = np.repeat(g[..., None], 3, axis=-1)
    if mode == "RGB":
        return rgb
    a = np.full(g.shape, 255, np.uint8)
    t = im.info.get("transparency")
    if isinstance(t, int):
        a[raw == t] = 0
    return np.dstack([rgb, a])


def expected(data: bytes, mode: str) -> np.ndarray:
    """Pillow's answer, with the documented deviations applied (see the module docstring)."""
    im = Image.open(io.BytesIO(data))
    if data.startswith(b"\x89PNG"):
        bit_depth, color_type = png_header(data)
        if im.mode == "I;16":
            return high_byte_rule(data, mode)
        t = im.info.get("transparency")
        if mode == "RGBA" and t is not None and color_type in (0, 2) and bit_depth in (2, 4, 16):
            ref = np.asarray(im.convert("RGB"))
            rgba = np.dstack([ref, np.full(ref.shape[:2], 255, np.uint8)])
            if color_type == 0:  # L;2 / L;4: Pillow unpacks scaled samples, tRNS is unscaled
                raw = np.asarray(im) // (255 // (2**bit_depth - 1))
                rgba[raw == t, 3] = 0
            else:  # 16-bit RGB: compare the full samples
                rgba[np.all(png_samples16(data) == np.array(t), axis=-1), 3] = 0
            return rgba
    ref = np.asarray(im.convert(mode))
    if mode == "RGBA" and data[:4] == b"RIFF" and im.mode == "RGB":  # header says no alpha
        ref = ref.copy()
        ref[..., 3] = 255
    return ref


def png_samples16(data: bytes) -> np.ndarray:
    """The (h, w, 3) 16-bit samples of a non-interlaced 16-bit RGB PNG, by a tiny unfilter
    (Pillow cannot give them: it keeps the high byte)."""
    w, h = struct.unpack(">II", data[16:24])
    if data[28] != 0:
        raise ValueError("png_samples16 reads non-interlaced files only")
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + n]
        pos += 12 + n
    raw = zlib.decompress(idat)
    bpp, stride = 6, w * 6
    out = np.zeros((h, stride), np.int32)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        cur = np.zeros(stride, np.int32)
        for x in range(stride):
            a = cur[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 0:
                p = 0
            elif f == 1:
                p = a
            elif f == 2:
                p = b
            elif f == 3:
                p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (line[x] + p) & 0xFF
        out[y], prev = cur, cur
    b = out.astype(np.uint16).reshape(h, w, 3, 2)
    return (b[..., 0] << 8) | b[..., 1]


# --------------------------------------------------------------------------------------------
# generated PNG: every colour type and bit depth


@pytest.fixture
def photo(rng: np.random.Generator) -> np.ndarray:
    """A 37x23 RGBA image with smooth parts and noise (odd sizes exercise row tails)."""
    y, x = np.mgrid[0:23, 0:37]
    base = np.stack([x * 7, y * 11, (x + y) * 5, 255 - x * 3], axis=-1) % 256
    noise = rng.integers(0, 40, base.shape)
    return ((base + noise) % 256).astype(np.uint8)


@pytest.mark.parametrize("pil_mode", ["1", "L", "LA", "RGB", "RGBA", "P", "I;16"])
@pytest.mark.parametrize("mode", list(MODES))
def test_png_pillow_written_modes(photo: np.ndarray, pil_mode: str, mode: str) -> None:
    src = Image.fromarray(photo, "RGBA")
    if pil_mode == "I;16":
        im = Image.fromarray(photo[..., 0].astype(np.uint16) * 257 + photo[..., 1] % 7)
        assert im.mode == "I;16"
    elif pil_mode == "P":
        im = src.convert("RGB").quantize(200)
    else:
        im = src.convert(pil_mode)
    data = pillow_save(im, "PNG")
    out = decode(data, mode)
    assert np.array_equal(out, expected(data, mode))
    info = mmcore.image_info(data)
    assert (info["format"], info["width"], info["height"]) == ("png", 37, 23)
    assert info["has_alpha"] == (pil_mode in ("LA", "RGBA"))
    assert not info["animated"]


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_png_palette_bit_depths_and_trns(photo: np.ndarray, bits: int) -> None:
    n = 2**bits
    im = Image.fromarray(photo[..., :3]).quantize(n)
    alpha = bytes(range(0, 256, max(1, 256 // n)))[: max(1, n // 2)]  # shorter than the palette
    data = pillow_save(im, "PNG", bits=bits, transparency=alpha)
    assert png_header(data) == (bits, 3)
    assert mmcore.image_info(data)["has_alpha"]
    for mode in MODES:
        assert np.array_equal(decode(data, mode), pillow(data, mode)), mode


def test_png_palette_index_beyond_plte_is_black() -> None:
    idx = np.array([[0, 1, 2, 5, 255]], np.uint8)
    data = make_png(idx, 8, 3, palette=bytes([10, 20, 30, 40, 50, 60]), trns=bytes([7]))
    for mode in MODES:
        assert np.array_equal(decode(data, mode), pillow(data, mode)), mode
    assert decode(data, "RGB")[0, 2:].tolist() == [[0, 0, 0]] * 3
    assert decode(data, "RGBA")[0, :, 3].tolist() == [7, 255, 255, 255, 255]


@pytest.mark.parametrize("bit_depth", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("interlace", [False, True])
def test_png_grey_bit_depths(rng: np.random.Generator, bit_depth: int, interlace: bool) -> None:
    g = rng.integers(0, 2**bit_depth, (19, 13)).astype(np.uint16)
    data = make_png(g, bit_depth, 0, interlace=interlace)
    for mode in MODES:
        assert np.array_equal(decode(data, mode), expected(data, mode)), mode
    if bit_depth < 16:  # scaled like Pillow: x255, x85, x17, x1
        assert np.array_equal(decode(data, "L"), (g * (255 // (2**bit_depth - 1))).astype(np.uint8))
    else:
        assert np.array_equal(decode(data, "L"), (g >> 8).astype(np.uint8))


def test_png_16bit_grey_high_byte_rule_vs_pillow_clip() -> None:
    g = np.array([[0, 255, 256, 0x80FF, 65535]], np.uint16)
    data = make_png(g, 16, 0)
    assert decode(data, "L").tolist() == [[0, 0, 1, 0x80, 255]]
    # Pillow clips (the deviation this test names): [0, 255, 255, 255, 255].
    assert pillow(data, "L").tolist() == [[0, 255, 255, 255, 255]]


@pytest.mark.parametrize("color_type,channels", [(2, 3), (6, 4), (4, 2)])
@pytest.mark.parametrize("interlace", [False, True])
def test_png_16bit_colour_keeps_high_byte(
    rng: np.random.Generator, color_type: int, channels: int, interlace: bool
) -> None:
    s = rng.integers(0, 65536, (11, 17, channels)).astype(np.uint16)
    data = make_png(s, 16, color_type, interlace=interlace)
    for mode in MODES:
        assert np.array_equal(decode(data, mode), pillow(data, mode)), mode
    hi = (s >> 8).astype(np.uint8)
    if color_type == 2:
        assert np.array_equal(decode(data, "RGB"), hi)


@pytest.mark.parametrize("color_type,channels", [(0, 1), (2, 3), (3, 1), (4, 2), (6, 4)])
def test_png_interlaced_matches_pillow(rng: np.random.Generator, color_type: int, channels: int) -> None:
    # Sizes below 8 leave some Adam7 passes empty.
    for h, w in [(1, 1), (3, 5), (9, 17), (33, 31)]:
        s = rng.integers(0, 256, (h, w, channels)).astype(np.uint8)
        pal = bytes(rng.integers(0, 256, 768).astype(np.uint8)) if color_type == 3 else None
        data = make_png(s, 8, color_type, palette=pal, interlace=True)
        flat = make_png(s, 8, color_type, palette=pal)
        for mode in MODES:
            got = decode(data, mode)
            assert np.array_equal(got, pillow(data, mode)), (h, w, mode)
            assert np.array_equal(got, decode(flat, mode)), (h, w, mode)


def test_png_trns_grey_and_rgb_8bit() -> None:
    g = np.array([[0, 1, 2, 3, 200]], np.uint8)
    data = make_png(g, 8, 0, trns=struct.pack(">H", 1))
    assert mmcore.image_info(data)["has_alpha"]
    assert np.array_equal(decode(data, "RGBA"), pillow(data, "RGBA"))
    assert decode(data, "RGBA")[0, :, 3].tolist() == [255, 0, 255, 255, 255]
    assert np.array_equal(decode(data, "RGB"), pillow(data, "RGB"))
    rgb = np.array([[[1, 2, 3], [4, 5, 6], [1, 2, 3]]], np.uint8)
    data = make_png(rgb, 8, 2, trns=struct.pack(">HHH", 1, 2, 3))
    assert np.array_equal(decode(data, "RGBA"), pillow(data, "RGBA"))
    assert decode(data, "RGBA")[0, :, 3].tolist() == [0, 255, 0]


def test_png_trns_spec_rule_where_pillow_differs() -> None:
    # 2-bit grey, tRNS 1: the spec makes sample 1 (shown as 85) transparent; Pillow misses it.
    data = make_png(np.array([[0, 1, 2, 3]], np.uint8), 2, 0, trns=struct.pack(">H", 1))
    assert decode(data, "RGBA")[0, :, 3].tolist() == [255, 0, 255, 255]
    assert pillow(data, "RGBA")[0, :, 3].tolist() == [255, 255, 255, 255]
    # 16-bit RGB: the full 16-bit triple is compared (high bytes alone would also match px 1).
    s = np.array([[[0x100, 0x200, 0x300], [0x1FF, 0x2FF, 0x3FF]]], np.uint16)
    data = make_png(s, 16, 2, trns=struct.pack(">HHH", 0x100, 0x200, 0x300))
    assert decode(data, "RGBA")[0, :, 3].tolist() == [0, 255]
    assert decode(data, "RGBA")[0, :, :3].tolist() == [[1, 2, 3], [1, 2, 3]]
    assert np.array_equal(decode(data, "RGBA"), expected(data, "RGBA"))


def test_png_gray_from_colour_is_pillow_luma(photo: np.ndarray) -> None:
    for im in (
        Image.fromarray(photo),
        Image.fromarray(photo[..., :3]),
        Image.fromarray(photo[..., :3]).quantize(64),
    ):
        data = pillow_save(im, "PNG")
        assert np.array_equal(decode(data, "L"), pillow(data, "L")), im.mode


def test_png_alpha_keep_and_drop(photo: np.ndarray) -> None:
    photo = photo.copy()
    photo[0, :5, 3] = 0  # fully transparent pixels keep their colour (no premultiply)
    data = pillow_save(Image.fromarray(photo), "PNG")
    assert np.array_equal(decode(data, "RGBA"), photo)
    assert np.array_equal(decode(data, "RGB"), photo[..., :3])


def test_png_gamma_and_iccp_ignored(photo: np.ndarray) -> None:
    rgb = Image.fromarray(photo[..., :3])
    plain = pillow_save(rgb, "PNG")
    gama = _chunk(b"gAMA", struct.pack(">I", 100000)) + _chunk(b"sBIT", b"\x03\x03\x03")
    s = photo[..., :3]
    data = make_png(s, 8, 2, before_idat=gama)
    assert np.array_equal(decode(data), decode(plain))
    icc = pillow_save(rgb, "PNG", icc_profile=b"not really a profile" * 10)
    assert mmcore.decode_batch([icc]).status[0] == Status.OK
    assert np.array_equal(decode(icc), s)


def test_apng_first_frame() -> None:
    frames = [Image.new("RGBA", (9, 7), c) for c in ((255, 0, 0, 255), (0, 255, 0, 128), (0, 0, 255, 0))]
    for default_image in (False, True):
        data = pillow_save(
            frames[0], "PNG", save_all=True, append_images=frames[1:], default_image=default_image
        )
        info = mmcore.image_info(data)
        assert info["animated"] and info["has_alpha"]
        for mode in MODES:
            assert np.array_equal(decode(data, mode), pillow(data, mode)), mode
        assert decode(data, "RGBA")[0, 0].tolist() == [255, 0, 0, 255]


def test_png_exif_orientation() -> None:
    a = np.arange(5 * 3 * 3, dtype=np.uint8).reshape(5, 3, 3) * 5
    exif = Image.Exif()
    exif[0x0112] = 6
    data = pillow_save(Image.fromarray(a), "PNG", exif=exif.tobytes())
    assert mmcore.image_info(data)["orientation"] == 6
    want = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    assert np.array_equal(mmcore.decode(data), want)
    assert np.array_equal(mmcore.decode(data, exif_orientation=False), a)


# --------------------------------------------------------------------------------------------
# generated WebP


@pytest.mark.parametrize(
    "kind,kw",
    [
        ("lossy", {"quality": 80}),
        ("lossless", {"lossless": True}),
        ("lossy_alpha", {"quality": 70}),
        ("lossless_alpha", {"lossless": True, "exact": True}),
    ],
)
def test_webp_still(photo: np.ndarray, kind: str, kw: dict[str, Any]) -> None:
    im = Image.fromarray(photo if "alpha" in kind else photo[..., :3])
    data = pillow_save(im, "WEBP", **kw)
    info = mmcore.image_info(data)
    assert (info["format"], info["width"], info["height"]) == ("webp", 37, 23)
    assert info["has_alpha"] == ("alpha" in kind) and not info["animated"]
    for mode in MODES:
        assert np.array_equal(decode(data, mode), expected(data, mode)), mode
    if kind == "lossless_alpha":
        assert np.array_equal(decode(data, "RGBA"), photo)
    if "alpha" not in kind:
        assert (decode(data, "RGBA")[..., 3] == 255).all()


@pytest.mark.parametrize("lossless", [True, False])
def test_webp_animated_first_frame(rng: np.random.Generator, lossless: bool) -> None:
    frames = [Image.fromarray(rng.integers(0, 256, (21, 30, 4)).astype(np.uint8)) for _ in range(3)]
    frames[0].putalpha(200)
    data = pillow_save(
        frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=lossless, duration=50
    )
    info = mmcore.image_info(data)
    assert info["animated"] and info["has_alpha"]
    for mode in MODES:
        assert np.array_equal(decode(data, mode), pillow(data, mode)), mode
    if lossless:
        assert np.array_equal(decode(data, "RGBA"), np.asarray(frames[0]))


@pytest.mark.parametrize("lossless", [True, False])
def test_webp_animation_whose_first_frame_is_a_small_rectangle(
    rng: np.random.Generator, lossless: bool
) -> None:
    """A first frame smaller than the canvas, at an offset (the shape of a tiny file with a huge
    canvas): equal to Pillow's (WebPAnimDecoder's) frame 0 in every mode, transparent black
    around it."""
    import struct

    frame = Image.fromarray(rng.integers(0, 256, (8, 16, 4)).astype(np.uint8))
    still = pillow_save(frame, "WEBP", lossless=lossless, quality=90)
    payload = still[12:]  # the still image's chunks (VP8X + ALPH + VP8, or VP8L): the frame's data
    if payload[:4] == b"VP8X":
        payload = payload[8 + 10 :]
    cw, ch, fx, fy = 64, 48, 10, 6

    def chunk(tag: bytes, body: bytes) -> bytes:
        return tag + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)

    def u24(v: int) -> bytes:
        return v.to_bytes(3, "little")

    anmf = u24(fx // 2) + u24(fy // 2) + u24(16 - 1) + u24(8 - 1) + u24(100) + b"\x00" + payload
    body = b"WEBP" + chunk(b"VP8X", bytes([0x12, 0, 0, 0]) + u24(cw - 1) + u24(ch - 1))
    body += chunk(b"ANIM", bytes(4) + b"\x00\x00") + chunk(b"ANMF", anmf)
    data = b"RIFF" + struct.pack("<I", len(body)) + body
    for mode in MODES:
        got, want = decode(data, mode), pillow(data, mode)
        assert got.shape[:2] == (ch, cw) and np.array_equal(got, want), mode
    rgba = decode(data, "RGBA")
    assert (rgba[:fy] == 0).all() and (rgba[fy + 8 :] == 0).all() and (rgba[:, :fx] == 0).all()
    assert (rgba[fy : fy + 8, fx : fx + 16, 3] > 0).any()


def test_webp_exif_orientation(photo: np.ndarray) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    data = pillow_save(Image.fromarray(photo[..., :3]), "WEBP", lossless=True, exif=exif.tobytes())
    assert mmcore.image_info(data)["orientation"] == 8
    want = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    assert np.array_equal(mmcore.decode(data), want)
    assert mmcore.decode(data).shape == (37, 23, 3)


def test_codec_versions() -> None:
    codecs = mmcore.build_info()["codecs"]
    assert codecs["png"].startswith("libpng 1.")
    assert codecs["webp"].startswith("libwebp ")


# --------------------------------------------------------------------------------------------
# bad data


def _status(data: bytes) -> tuple[Status, str]:
    r = mmcore.decode_batch([data], threads=1)
    return Status(int(r.status[0])), r.errors[0] or ""


def _flip(data: bytes, pos: int) -> bytes:
    b = bytearray(data)
    b[pos] ^= 0xFF
    return bytes(b)


def test_png_damage(photo: np.ndarray) -> None:
    data = pillow_save(Image.fromarray(photo), "PNG")
    idat = data.index(b"IDAT")
    cases = {
        "truncated header": (data[:20], Status.CORRUPT, "truncated"),
        "truncated data": (data[: idat + 30], Status.CORRUPT, "truncated"),
        "no IEND": (data[:-12], Status.OK, ""),
        "IHDR CRC": (_flip(data, 30), Status.CORRUPT, "IHDR: CRC error"),
        "zlib garbage": (data[: idat + 6] + bytes(40) + data[idat + 46 :], Status.CORRUPT, "IDAT"),
        "bad colour type": (_flip(data, 25), Status.CORRUPT, "IHDR"),
    }
    for name, (blob, want, text) in cases.items():
        st, msg = _status(blob)
        assert st == want, (name, st, msg)
        assert text in msg, (name, msg)
        if want != Status.OK:
            with pytest.raises(mmcore.DecodeError) as e:
                mmcore.decode(blob)
            assert e.value.status == want


def test_png_idat_crc_warns_with_pillow_pixels(photo: np.ndarray) -> None:
    data = pillow_save(Image.fromarray(photo), "PNG")
    end = data.index(b"IEND") - 4  # the IDAT CRC is the 4 bytes before IEND's length
    bad = _flip(data, end - 1)
    st, msg = _status(bad)
    assert st == Status.OK_WARNING and "CRC" in msg
    assert np.array_equal(decode(bad, "RGBA"), pillow(bad, "RGBA"))


def test_png_malformed_ancillary_chunks_warn(photo: np.ndarray) -> None:
    s = photo[..., :3]
    bomb = _chunk(b"zTXt", b"comment\0\0" + zlib.compress(bytes(4 << 20), 9))
    for extra, text in [
        (_chunk(b"pHYs", bytes(8)), "pHYs chunk has length 8"),
        (_chunk(b"tEXt", b"a\0b")[:-1] + b"\0", "CRC"),  # bad CRC on an ancillary chunk
        (bomb, "decompression bomb"),
        # each under Pillow's 1 MiB per chunk, together over its 64 MiB MAX_TEXT_MEMORY
        (_chunk(b"zTXt", b"c\0\0" + zlib.compress(bytes(1_000_000), 9)) * 70, "with the chunks before it"),
    ]:
        data = make_png(s, 8, 2, before_idat=extra)
        st, msg = _status(data)
        assert st == Status.OK_WARNING and text in msg, (st, msg)
        assert np.array_equal(decode(data), s)
    ok = make_png(s, 8, 2, before_idat=_chunk(b"zTXt", b"comment\0\0" + zlib.compress(bytes(1000))))
    assert _status(ok) == (Status.OK, "")


def test_png_huge_header_is_too_large_before_allocation() -> None:
    ihdr = struct.pack(">IIBBBBB", 65536, 65536, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(bytes(1000)))
    st, msg = _status(data)
    assert st == Status.TOO_LARGE and "65536" in msg


def test_apng_zero_frames_is_corrupt(photo: np.ndarray) -> None:
    data = make_png(photo[..., :3], 8, 2, before_idat=_chunk(b"acTL", struct.pack(">II", 0, 0)))
    st, msg = _status(data)
    assert st == Status.CORRUPT and "acTL" in msg


def test_webp_damage(photo: np.ndarray) -> None:
    for kw in ({"lossless": True}, {"quality": 60}):
        data = pillow_save(Image.fromarray(photo), "WEBP", **kw)
        for n in (12, 20, 30, len(data) // 2, len(data) - 3):
            st, msg = _status(data[:n])
            assert st in (Status.CORRUPT, Status.UNSUPPORTED), (kw, n, st, msg)
            assert msg.startswith("webp:"), msg
        junk = data[:30] + bytes(len(data) - 30)
        st, msg = _status(junk)
        assert st != Status.OK or np.array_equal(decode(junk), pillow(junk))
    anim = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    data = pillow_save(anim[0], "WEBP", save_all=True, append_images=anim[1:], lossless=True)
    st, msg = _status(data[: len(data) - 10])
    assert st == Status.CORRUPT and msg.startswith("webp:")


# --------------------------------------------------------------------------------------------
# corpus


def _kind(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _pillow_decodes(data: bytes) -> bool:
    try:
        Image.open(io.BytesIO(data)).load()
    except Exception:
        return False
    return True


def _corpus(sub: str) -> list[tuple[Path, bytes]]:
    out = []
    for p in corpus_files(sub):
        data = p.read_bytes()
        if _kind(data) is not None:
            out.append((p, data))
    return out


@pytest.mark.corpus
@pytest.mark.parametrize("sub", ["png", "webp", "odd"])
def test_corpus_matches_pillow(sub: str) -> None:
    files = [(p, d) for p, d in _corpus(sub) if _pillow_decodes(d)]
    if not files:
        pytest.skip(f"no Pillow-decodable PNG/WebP in corpus {sub}/")
    counts: Counter[str] = Counter()
    mismatches = []
    for mode in MODES:
        color, alpha = MODES[mode]
        r = mmcore.decode_batch([d for _, d in files], exif_orientation=False, color=color, alpha=alpha)
        for (p, data), img, st, err in zip(files, r.images, r.status, r.errors, strict=True):
            ok = img is not None and np.array_equal(img, expected(data, mode))
            counts[f"{mode} {'equal' if ok else 'differ'}"] += 1
            if not ok:
                mismatches.append((p.name, mode, int(st), err))
            if mode == "RGB" and st == Status.OK_WARNING:
                assert p.name == "pngsuite__png_xcsn0g01.png", (p.name, err)  # IDAT CRC (PngSuite)
    assert not mismatches, (dict(counts), mismatches[:10])


@pytest.mark.corpus
def test_corpus_corrupt_png_webp_fail_cleanly() -> None:
    files = _corpus("corrupt")
    if not files:
        pytest.skip("no PNG/WebP files in corpus corrupt/")
    data = [d for _, d in files]
    r = mmcore.decode_batch(data)
    for (p, _), st, err in zip(files, r.status, r.errors, strict=True):
        assert st != Status.OK, p.name
        assert err, p.name
        if st == Status.OK_WARNING:  # pixels came out, but the damage is reported
            assert "png: decoded, but" in err, (p.name, err)
    # the single-record API agrees
    for (_p, d), st in zip(files[:40], r.status[:40], strict=True):
        if st >= Status.CORRUPT:
            with pytest.raises(mmcore.DecodeError):
                mmcore.decode(d)


@pytest.mark.corpus
def test_corpus_huge_png_header() -> None:
    for p, d in _corpus("png"):
        if p.name == "sharp__test_fixtures_65536-uint32-limit.png":
            st, msg = _status(d)
            assert st == Status.TOO_LARGE, msg
            return
    pytest.skip("sharp__test_fixtures_65536-uint32-limit.png not in the corpus")


def test_png_exif_after_the_image_data_is_applied_as_pillow_does() -> None:
    """An eXIf chunk may follow IDAT; Pillow reads it on load and turns the image."""
    import struct
    import zlib

    from PIL import ImageOps

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    w, h = 30, 50
    rgb = np.random.default_rng(9).integers(0, 256, (h, w, 3), dtype=np.uint8)
    raw = b"".join(b"\0" + rgb[y].tobytes() for y in range(h))
    # little-endian TIFF header, one IFD entry: Orientation (0x0112), SHORT, 1, value 6
    exif = b"II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x06\0\0\0\0\0\0\0"
    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"eXIf", exif)
        + chunk(b"IEND", b"")
    )
    want = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    assert want.shape == (w, h, 3)  # Pillow turned it
    np.testing.assert_array_equal(mmcore.decode(data), want)
    assert mmcore.image_info(data)["orientation"] == 6


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "PNG", "PNG_ZIP"])
def test_xmp_orientation_counts_when_exif_has_none_as_in_pillow(fmt: str) -> None:
    """Pillow's getexif() falls back to XMP tiff:Orientation (exif_transpose then turns the
    image); an EXIF Orientation entry, when there is one, wins. PNG_ZIP: a compressed iTXt,
    which Pillow inflates."""
    from PIL import ImageOps, PngImagePlugin

    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6"/>'
        b"</rdf:RDF></x:xmpmeta>"
    )
    im = Image.fromarray(np.random.default_rng(10).integers(0, 256, (30, 50, 3), dtype=np.uint8))
    for exif_orientation in (None, 1):
        kw: dict[str, object] = {}
        if fmt.startswith("PNG"):
            info = PngImagePlugin.PngInfo()
            info.add_itxt("XML:com.adobe.xmp", xmp.decode(), zip=fmt == "PNG_ZIP")
            kw["pnginfo"] = info
        else:
            kw["xmp"] = xmp
            kw.update(quality=95) if fmt == "JPEG" else kw.update(lossless=True)
        if exif_orientation is not None:
            exif = Image.Exif()
            exif[0x0112] = exif_orientation
            kw["exif"] = exif.tobytes()
        buf = io.BytesIO()
        im.save(buf, fmt.removesuffix("_ZIP"), **kw)
        data = buf.getvalue()
        if fmt == "PNG_ZIP":
            assert b"tiff:Orientation" not in data  # the packet is deflated
        want = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
        assert want.shape == ((50, 30, 3) if exif_orientation is None else (30, 50, 3))
        np.testing.assert_array_equal(mmcore.decode(data), want)
        assert mmcore.image_info(data)["orientation"] == (6 if exif_orientation is None else 1)


def test_xmp_packets_are_picked_as_pillow_picks_them() -> None:
    """Several XMP packets, or XMP in tEXt / zTXt: the orientation Pillow's getexif() gives once
    the image is loaded, as exif_transpose reads it (a PNG's last text chunk with the keyword, an
    iTXt only when UTF-8, else the last iTXt's bytes; a JPEG's last XMP segment), for every mix
    below."""

    def ck(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    def x(o: int) -> bytes:
        return b'<x:xmpmeta><rdf:Description tiff:Orientation="%d"/></x:xmpmeta>' % o

    key = b"XML:com.adobe.xmp\0"

    def itxt(o: int, zipped: bool = False, extra: bytes = b"") -> bytes:
        body = zlib.compress(x(o) + extra) if zipped else x(o) + extra
        return ck(b"iTXt", key + (b"\1\0" if zipped else b"\0\0") + b"\0\0" + body)

    text = {
        "tEXt": lambda o: ck(b"tEXt", key + x(o)),
        "zTXt": lambda o: ck(b"zTXt", key + b"\0" + zlib.compress(x(o))),
        "zTXt-damaged": lambda o: ck(b"zTXt", key + b"\0" + b"\x78\x9c\xff\xff" + x(o)),
        "iTXt": lambda o: itxt(o),
        "iTXt-zip": lambda o: itxt(o, True),
        "iTXt-latin1": lambda o: itxt(o, extra=b"\xe9"),  # not UTF-8: only info["xmp"]
    }
    w, h = 5, 3
    raw = b"".join(b"\0" + bytes(3 * w) for _ in range(h))

    def png(before: bytes, after: bytes = b"") -> bytes:
        return (
            b"\x89PNG\r\n\x1a\n"
            + ck(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + before
            + ck(b"IDAT", zlib.compress(raw))
            + after
            + ck(b"IEND", b"")
        )

    names = list(text)
    cases = [png(text[a](6)) for a in names]
    cases += [png(text[a](6) + text[b](3)) for a in names for b in names]
    cases += [png(text[a](6), text[b](8)) for a in names for b in names]
    for data in cases:
        pil = Image.open(io.BytesIO(data))
        pil.load()
        want = pil.getexif().get(274, 1)
        got = mmcore.image_info(data)["orientation"]
        assert got == want, (data, got, want)
    jpeg = io.BytesIO()
    Image.fromarray(np.zeros((3, 5, 3), np.uint8)).save(jpeg, "JPEG")
    j = jpeg.getvalue()
    app1 = [
        b"\xff\xe1" + struct.pack(">H", 2 + 29 + len(x(o))) + b"http://ns.adobe.com/xap/1.0/\0" + x(o)
        for o in (6, 3)
    ]
    data = j[:2] + app1[0] + app1[1] + j[2:]
    assert Image.open(io.BytesIO(data)).getexif().get(274) == 3
    assert mmcore.image_info(data)["orientation"] == 3


def test_image_info_of_a_truncated_png_keeps_its_size() -> None:
    """A PNG refused at info time for data too short for its header still reports the header's
    width and height (image_info, and job rows, lost them)."""
    a = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    info = mmcore.image_info(buf.getvalue()[:200])
    assert info["status"] == mmcore.Status.CORRUPT and "truncated" in info["error"]
    assert (info["width"], info["height"]) == (400, 300)
