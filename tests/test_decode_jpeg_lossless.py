"""Lossless JPEG (SOF3), decoded by mmcore's own decoder (libjpeg-turbo 2.1 has none).

Oracles: the round trip itself (a lossless stream must give back the samples it was made from;
the streams are written below by a minimal encoder of ITU-T T.81 annex H, for every predictor,
point transform and restart interval), and Pillow 13 (whose bundled libjpeg-turbo 3 decodes 8-bit
lossless JPEG) on the corpus files.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from conftest import assert_byte_flips_give_statuses, corpus_files
from PIL import Image

import mmcore
from mmcore import Status

# Huffman table: the 17 difference categories 0..16, all with 5-bit codes 0..16.
_BITS = [0] * 4 + [17] + [0] * 11


def _predict(p: int, ra: int, rb: int, rc: int) -> int:
    return [0, ra, rb, rc, ra + rb - rc, ra + ((rb - rc) >> 1), rb + ((ra - rc) >> 1), (ra + rb) >> 1][p]


class _Bits:
    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value: int, n: int) -> None:
        for i in range(n - 1, -1, -1):
            self.acc = self.acc << 1 | (value >> i) & 1
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)
                self.acc = self.n = 0

    def flush(self) -> None:
        while self.n:
            self.put(1, 1)


def encode_lossless(
    img: np.ndarray, *, predictor: int = 1, pt: int = 0, restart_rows: int = 0, rgb_ids: bool = False
) -> bytes:
    """A lossless JPEG of img (HxW grey or HxWx3 RGB, uint8): samples img >> pt."""
    planes = img[..., None] if img.ndim == 2 else img
    h, w, nc = planes.shape
    x = planes.astype(np.int64) >> pt
    ids = [ord("R"), ord("G"), ord("B")] if rgb_ids else list(range(1, nc + 1))
    seg = bytearray(b"\xff\xd8")
    if nc == 3 and not rgb_ids:
        seg += b"\xff\xee" + struct.pack(">H", 14) + b"Adobe" + bytes([0, 100, 0, 0, 0, 0, 0])
    seg += b"\xff\xc4" + struct.pack(">H", 2 + 17 + 17) + bytes([0]) + bytes(_BITS) + bytes(range(17))
    seg += b"\xff\xc3" + struct.pack(">HBHHB", 8 + 3 * nc, 8, h, w, nc)
    for c in range(nc):
        seg += bytes([ids[c], 0x11, 0])
    if restart_rows:
        seg += b"\xff\xdd" + struct.pack(">HH", 4, restart_rows * w)
    seg += b"\xff\xda" + struct.pack(">HB", 6 + 2 * nc, nc)
    for c in range(nc):
        seg += bytes([ids[c], 0])
    seg += bytes([predictor, 0, pt])
    bits = _Bits()
    first = True
    for y in range(h):
        if restart_rows and y and y % restart_rows == 0:
            bits.flush()
            seg += bits.out + bytes([0xFF, 0xD0 + (y // restart_rows - 1) % 8])
            bits.out = bytearray()
            first = True
        for i in range(w):
            for c in range(nc):
                if first:
                    pred = 1 << (8 - pt - 1) if i == 0 else int(x[y, i - 1, c])
                elif i == 0:
                    pred = int(x[y - 1, 0, c])
                else:
                    ra, rb, rc = int(x[y, i - 1, c]), int(x[y - 1, i, c]), int(x[y - 1, i - 1, c])
                    pred = _predict(predictor, ra, rb, rc)
                d = (int(x[y, i, c]) - pred) & 0xFFFF
                d = d - 0x10000 if d > 0x8000 else d
                s = abs(d).bit_length()
                bits.put(s, 5)
                if 0 < s < 16:
                    bits.put(d if d > 0 else d + (1 << s) - 1, s)
        first = False
    bits.flush()
    return bytes(seg + bits.out + b"\xff\xd9")


def _image(h: int, w: int, nc: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (xx * 7 + yy * 3) % 256
    noise = rng.integers(0, 256, size=(h, w, nc)) if seed % 2 else rng.integers(-3, 4, size=(h, w, nc))
    img = np.clip(base[..., None] + noise, 0, 255).astype(np.uint8)
    return img[..., 0] if nc == 1 else img


@pytest.mark.parametrize("predictor", range(1, 8))
@pytest.mark.parametrize("nc", [1, 3])
def test_round_trip_every_predictor(predictor: int, nc: int) -> None:
    for seed, (h, w) in enumerate([(1, 1), (2, 3), (13, 17), (40, 31)]):
        img = _image(h, w, nc, seed)
        data = encode_lossless(img, predictor=predictor)
        np.testing.assert_array_equal(mmcore.decode(data, color="gray" if nc == 1 else "rgb"), img)


@pytest.mark.parametrize("pt", [1, 3, 7])
def test_point_transform_keeps_the_high_bits(pt: int) -> None:
    img = _image(20, 24, 3, 1)
    out = mmcore.decode(encode_lossless(img, predictor=4, pt=pt))
    np.testing.assert_array_equal(out, (img >> pt) << pt)


@pytest.mark.parametrize("restart_rows", [1, 2, 5])
def test_restart_intervals(restart_rows: int) -> None:
    img = _image(23, 19, 3, 3)
    data = encode_lossless(img, predictor=7, restart_rows=restart_rows, rgb_ids=True)
    np.testing.assert_array_equal(mmcore.decode(data), img)


def test_output_colours() -> None:
    rgb = _image(16, 16, 3, 5)
    data = encode_lossless(rgb, predictor=5)
    # kGray of RGB-coded data: libjpeg's weights, which are Pillow's convert("L")
    pillow_l = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(mmcore.decode(data, color="gray"), pillow_l)
    rgba = mmcore.decode(data, alpha="keep")
    assert rgba.shape == (16, 16, 4) and (rgba[..., 3] == 255).all()
    grey = _image(9, 11, 1, 2)
    np.testing.assert_array_equal(mmcore.decode(encode_lossless(grey)), np.repeat(grey[..., None], 3, axis=2))


def test_reduced_size_request_decodes_full_size_then_resizes() -> None:
    img = _image(64, 80, 3, 1)
    data = encode_lossless(img)
    assert mmcore.image_info(data)["width"] == 80
    assert mmcore.decode(data, target=(20, 16)).shape == (16, 20, 3)


def _frame(data: bytes) -> int:
    return data.index(b"\xff\xc3")


def test_unsupported_variants_say_why() -> None:
    data = encode_lossless(_image(8, 8, 3, 0), rgb_ids=True)
    sof = _frame(data)
    twelve = bytearray(data)
    twelve[sof + 4] = 12
    adobe = encode_lossless(_image(8, 8, 3, 0))
    app14 = adobe.index(b"\xff\xee")
    ycc = adobe[:app14] + adobe[app14 + 16 :]  # ids 1,2,3 and no Adobe marker: YCbCr by libjpeg's rule
    sampled = bytearray(data)
    sampled[sof + 11] = 0x21
    cases = {bytes(twelve): "12-bit", ycc: "YCbCr", bytes(sampled): "sampling"}
    for blob, word in cases.items():
        r = mmcore.decode_batch([blob])
        assert r.status[0] == Status.UNSUPPORTED, (word, r.errors[0])
        assert word in (r.errors[0] or ""), r.errors[0]


def test_damaged_streams_never_crash() -> None:
    img = _image(24, 20, 3, 1)
    data = encode_lossless(img, predictor=6, restart_rows=4)
    for n in range(len(data)):
        r = mmcore.decode_batch([data[:n]])
        if n < len(data) - 2:  # only the EOI marker may go: every sample is still there then
            assert r.status[0] == Status.CORRUPT and r.errors[0], (n, r.status[0])
    assert_byte_flips_give_statuses(data, 2)
    truncated = mmcore.decode_batch([data[: len(data) // 2]])
    assert truncated.status[0] == Status.CORRUPT
    assert "truncated" in (truncated.errors[0] or "") or "restart" in (truncated.errors[0] or "")


@pytest.mark.corpus
def test_corpus_lossless_equals_pillow() -> None:
    files = [p for p in corpus_files("odd") if b"\xff\xc3" in p.read_bytes()[:4096]]
    compared = 0
    for p in files:
        try:
            with Image.open(p) as im:
                ref = {"rgb": np.asarray(im.convert("RGB")), "gray": np.asarray(im.convert("L"))}
        except OSError:
            continue  # Pillow decodes 8-bit lossless only; the rest is covered by test_decode_jpeg
        for color, expected in ref.items():
            np.testing.assert_array_equal(mmcore.decode(p, color=color), expected, err_msg=p.name)
        compared += 1
    assert compared >= 2
