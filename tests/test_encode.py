"""Thumbnail encoding (mmcore.encode_jpeg / encode_webp / encode_batch) against Pillow 13, the oracle.

Pillow decodes every output (format, size, mode) and its own save() at the same quality is the
reference encoder: mmcore makes the same libjpeg / libwebp calls with the same settings, and on the
corpus thumbnails the bytes were measured identical to Pillow 13's (437 of 437 JPEGs as 512-px
thumbnails, JPEG and WebP at quality 90, although Pillow's wheel bundles newer libjpeg-turbo and
libwebp builds than Debian's), so equality is asserted on a sample. PSNR against the source: at
quality 90, >= 30 dB on a smooth synthetic image, and on corpus thumbnails >= 30 dB for all but a
few dense-texture images (which Pillow encodes to the same bytes).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import corpus_files, run_cpp_test
from PIL import Image

import mmcore
from mmcore import Status

ENCODERS = {"jpeg": mmcore.encode_jpeg, "webp": mmcore.encode_webp}
PIL_FORMAT = {"jpeg": "JPEG", "webp": "WEBP"}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def pil_open(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def pil_save(img: np.ndarray, fmt: str, **kw: Any) -> bytes:
    f = io.BytesIO()
    Image.fromarray(img).save(f, PIL_FORMAT[fmt], **kw)
    return f.getvalue()


def gradient(h: int = 192, w: int = 256) -> np.ndarray:
    """A smooth colour image: horizontal, vertical and diagonal ramps with a soft disc."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    disc = 60.0 * np.exp(-((x - w / 2) ** 2 + (y - h / 2) ** 2) / (2 * (h / 5) ** 2))
    rgb = np.stack([255 * x / (w - 1), 255 * y / (h - 1), 127 + 0.5 * (x - y) + disc], axis=-1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def textured(h: int = 160, w: int = 200, seed: int = 3) -> np.ndarray:
    """Gradient plus noise: every quality step changes the output size."""
    noise = np.random.default_rng(seed).normal(0, 12, (h, w, 3))
    return np.clip(gradient(h, w) + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    """256-px thumbnails (the size `mmcore run` writes) of every 12th corpus JPEG."""
    files = corpus_files("jpeg")[::12]
    r = mmcore.thumbnail_batch(files, fit=(256, 256))
    return [im for im in r.images if im is not None]


# --------------------------------------------------------------------------------------------
# round trips through Pillow


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_gradient_round_trip(fmt: str) -> None:
    src = gradient()
    data = ENCODERS[fmt](src, quality=90)
    im = pil_open(data)
    assert (im.format, im.size, im.mode) == (PIL_FORMAT[fmt], (256, 192), "RGB")
    assert psnr(np.asarray(im), src) >= 30.0
    assert data == pil_save(src, fmt, quality=90)


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_photos_round_trip(fmt: str, photos: list[np.ndarray]) -> None:
    assert len(photos) >= 30
    values = []
    for src in photos:
        data = ENCODERS[fmt](src, quality=90)
        im = pil_open(data)
        assert (im.size, im.mode) == ((src.shape[1], src.shape[0]), "RGB")
        assert data == pil_save(src, fmt, quality=90)
        values.append(psnr(np.asarray(im), src))
    # Dense textures (fur, foliage) at thumbnail scale stay under 30 dB with any q90 4:2:0 encoder.
    assert np.mean(np.array(values) >= 30.0) >= 0.9, sorted(values)[:5]
    assert np.median(values) >= 35.0


def test_grey_jpeg_stays_grey() -> None:
    src = gradient()[..., 1].copy()
    data = mmcore.encode_jpeg(src, quality=90)
    im = pil_open(data)
    assert (im.mode, im.size) == ("L", (256, 192))
    assert psnr(np.asarray(im), src) >= 30.0
    assert data == pil_save(src, "jpeg", quality=90)
    # HxWx1 is grey too.
    assert mmcore.encode_jpeg(src[..., None], quality=90) == data


def test_grey_webp_is_neutral_rgb() -> None:
    """WebP has no grey format: grey goes in as R = G = B, with the planes libwebp's own RGB import
    makes (the same bytes), and decodes back to (nearly) equal channels."""
    src = gradient()[..., 0].copy()
    data = mmcore.encode_webp(src, quality=90)
    assert data == mmcore.encode_webp(np.repeat(src[..., None], 3, axis=2), quality=90)
    assert data == pil_save(src, "webp", quality=90)  # Pillow converts L to RGB itself
    rgb = np.asarray(pil_open(data))
    assert rgb.shape == (192, 256, 3)
    # libwebp's fixed-point YUV -> RGB rounds G differently from R and B: at most 1 apart.
    assert np.abs(rgb.astype(np.int16) - rgb[..., :1]).max() <= 1
    assert psnr(rgb[..., 0], src) >= 30.0
    assert np.array_equal(mmcore.decode(data, color="gray"), np.asarray(pil_open(data).convert("L")))


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_size_grows_with_quality(fmt: str) -> None:
    src = textured()
    sizes = [len(ENCODERS[fmt](src, quality=q)) for q in (5, 20, 40, 60, 80, 95, 100)]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes), sizes
    errors = [psnr(np.asarray(pil_open(ENCODERS[fmt](src, quality=q))), src) for q in (20, 60, 95)]
    assert errors == sorted(errors), errors


def test_optimize_changes_only_the_entropy_coding() -> None:
    src = textured()
    plain = mmcore.encode_jpeg(src, quality=85)
    opt = mmcore.encode_jpeg(src, quality=85, optimize=True)
    assert len(opt) < len(plain)
    assert np.array_equal(np.asarray(pil_open(opt)), np.asarray(pil_open(plain)))
    assert opt == pil_save(src, "jpeg", quality=85, optimize=True)


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_default_quality_is_pillow_at_that_quality(fmt: str) -> None:
    src = textured()
    default = {"jpeg": 85, "webp": 80}[fmt]
    assert ENCODERS[fmt](src) == pil_save(src, fmt, quality=default)


def test_non_contiguous_input_is_copied() -> None:
    src = textured(120, 300)
    view = src[10:90, ::3]  # strided rows and columns
    assert not view.flags.c_contiguous
    assert mmcore.encode_jpeg(view) == mmcore.encode_jpeg(view.copy())
    assert mmcore.encode_webp(view) == mmcore.encode_webp(view.copy())


# --------------------------------------------------------------------------------------------
# batch


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_batch_equals_singles(fmt: str) -> None:
    rng = np.random.default_rng(5)
    images: list[np.ndarray | None] = []
    for i in range(12):
        im = textured(20 + 11 * i, 31 + 7 * i, seed=i)
        images.append(im[..., 0].copy() if i % 4 == 1 else im)
    images[5] = None
    images.append(rng.integers(0, 256, (1, 1, 3), dtype=np.uint8))
    r = mmcore.encode_batch(images, format=fmt, quality=70, threads=2)
    assert len(r) == len(images)
    for im, data, status, err in zip(images, r.data, r.status, r.errors, strict=True):
        if im is None:
            assert data is None and status == Status.CORRUPT and err and "None" in err
        else:
            assert status == Status.OK and err is None
            assert data == ENCODERS[fmt](im, quality=70)
    assert r.counts() == {"OK": len(images) - 1, "CORRUPT": 1}
    # Default quality per format, one thread.
    one = mmcore.encode_batch(images[:3], format=fmt, threads=1)
    assert one.data == [ENCODERS[fmt](im) for im in images[:3]]


def test_batch_records_fail_alone() -> None:
    ok = textured(16, 16)
    wide = np.zeros((4, 16384, 3), np.uint8)
    r = mmcore.encode_batch([ok, None, np.zeros((0, 5, 3), np.uint8), wide, ok], format="webp")
    assert [Status(int(s)) for s in r.status] == [
        Status.OK,
        Status.CORRUPT,
        Status.CORRUPT,
        Status.TOO_LARGE,
        Status.OK,
    ]
    assert r.data[0] == r.data[4] == mmcore.encode_webp(ok)
    assert r.data[1] is r.data[2] is r.data[3] is None
    assert "empty image" in (r.errors[2] or "")
    assert "16383" in (r.errors[3] or "")
    assert r.ok.tolist() == [True, False, False, False, True]
    assert mmcore.encode_batch([], format="jpeg").data == []
    # The same wide image is fine for JPEG.
    assert mmcore.encode_batch([wide], format="jpeg").counts() == {"OK": 1}


# --------------------------------------------------------------------------------------------
# misuse and limits


@pytest.mark.parametrize(
    ("img", "match"),
    [
        (np.zeros((8, 8, 3), np.float32), "dtype uint8"),
        (np.zeros((8, 8, 3), bool), "dtype uint8"),
        (np.zeros((8, 8, 4), np.uint8), "4 channels"),
        (np.zeros((8, 8, 2), np.uint8), "HxW"),
        (np.zeros(64, np.uint8), "HxW"),
        (np.zeros((2, 8, 8, 3), np.uint8), "HxW"),
        ([[0, 1], [2, 3]], "numpy uint8 array"),
    ],
)
@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_bad_arrays_raise(fmt: str, img: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ENCODERS[fmt](img)
    with pytest.raises(ValueError, match=r"images\[1\]"):
        mmcore.encode_batch([np.zeros((8, 8, 3), np.uint8), img], format=fmt)


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_empty_image_raises(fmt: str) -> None:
    for shape in [(0, 5, 3), (5, 0), (0, 0)]:
        with pytest.raises(mmcore.EncodeError, match="empty image") as e:
            ENCODERS[fmt](np.zeros(shape, np.uint8))
        assert e.value.status == Status.CORRUPT
        assert isinstance(e.value, ValueError)


@pytest.mark.parametrize("bad", [0, 101, -5, 85.0, True, None])
def test_bad_quality_raises(bad: Any) -> None:
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="quality"):
        mmcore.encode_jpeg(img, quality=bad)
    with pytest.raises(ValueError, match="quality"):
        mmcore.encode_webp(img, quality=bad)
    if bad is not None:
        with pytest.raises(ValueError, match="quality"):
            mmcore.encode_batch([img], format="webp", quality=bad)


def test_bad_batch_options_raise() -> None:
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="format"):
        mmcore.encode_batch([img], format="png")
    with pytest.raises(ValueError, match="optimize"):
        mmcore.encode_batch([img], format="webp", optimize=True)
    with pytest.raises(ValueError, match="threads"):
        mmcore.encode_batch([img], threads=0)


@pytest.mark.parametrize("method", [0, 2, 6])
def test_webp_method_is_pillows(method: int, photos: list[np.ndarray]) -> None:
    """Every WebP method gives Pillow's bytes for the same quality and method, singly and in a batch;
    method 0 is the fast one (checked by size only: faster and larger is the trade-off)."""
    for img in photos[:8]:
        assert mmcore.encode_webp(img, quality=80, method=method) == pil_save(
            img, "webp", quality=80, method=method
        )
    r = mmcore.encode_batch(photos[:8], format="webp", method=method)
    assert r.data == [pil_save(im, "webp", quality=80, method=method) for im in photos[:8]]


def test_bad_webp_method_raises() -> None:
    img = np.zeros((8, 8, 3), np.uint8)
    for bad in (-1, 7, 2.0, True):
        with pytest.raises(ValueError, match="method"):
            mmcore.encode_webp(img, method=bad)
        with pytest.raises(ValueError, match="method"):
            mmcore.encode_batch([img], format="webp", method=bad)
    with pytest.raises(ValueError, match="WebP option"):
        mmcore.encode_batch([img], format="jpeg", method=0)


def test_webp_size_limit() -> None:
    """WebP stores 14 bits a side: 16383 encodes, 16384 is TOO_LARGE with a message that says so."""
    assert pil_open(mmcore.encode_webp(np.zeros((2, 16383), np.uint8))).size == (16383, 2)
    assert pil_open(mmcore.encode_webp(np.zeros((16383, 2, 3), np.uint8))).size == (2, 16383)
    for shape in [(2, 16384, 3), (16384, 2)]:
        with pytest.raises(mmcore.EncodeError, match="at most 16383 pixels a side") as e:
            mmcore.encode_webp(np.zeros(shape, np.uint8))
        assert e.value.status == Status.TOO_LARGE
    # JPEG takes the same image.
    assert pil_open(mmcore.encode_jpeg(np.zeros((2, 16384), np.uint8))).size == (16384, 2)


def test_cpp_sink_strides_and_checks(tmp_path: Path) -> None:
    """tests/cpp/test_encode.cpp: a sink that refuses bytes part-way gives NO_MEMORY at every point,
    strided views, the argument checks' statuses, encode_batch against single calls."""
    assert "PASS" in run_cpp_test(tmp_path, "test_encode")
