"""JPEG decode: pixels against Pillow 13 (the oracle), options, scaled IDCT, status policy.

Oracles: ``Image.open(f).convert("RGB")`` for full-size RGB; ``im.draft(mode, size)`` for the
luma plane and for libjpeg's scaled IDCT (Pillow's draft keeps JDCT_ISLOW and fancy upsampling,
the settings mmcore uses); ``ImageOps.exif_transpose`` for EXIF orientation.

Deliberate differences from Pillow 13, each asserted below with its rule:
- lossless JPEG (SOF3) is decoded by mmcore's own decoder (Debian's libjpeg-turbo 2.1.5 has
  none); what Pillow decodes (8-bit) is equal, the rest (12/16-bit) is UNSUPPORTED: see
  test_decode_jpeg_lossless.py.
- a JPEG with no EOI marker but all its data: OK_WARNING (Pillow refuses it).
- damaged entropy-coded data inside restart intervals: OK_WARNING, pixels as Pillow's.
"""

from __future__ import annotations

import io
import math
import platform
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, corpus_files, corpus_index, run_cpp_test, run_with_backend
from PIL import Image, ImageOps

import mmcore
from mmcore import DecodeError, Status

# ---------------------------------------------------------------------------------------------
# helpers


def _photo(w: int, h: int, seed: int = 0) -> Image.Image:
    """A smooth, asymmetric test picture with some texture (JPEG-friendly, orientation-visible)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / max(w - 1, 1)
    g = 255 * y / max(h - 1, 1)
    b = 128 + 100 * np.sin(x / 7.0) * np.cos(y / 11.0)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 12, (h, w, 3))
    img[: h // 4, : w // 3] = (250, 20, 20)  # a marker in the top-left corner
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def _jpeg(im: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    kw.setdefault("quality", 90)
    im.save(buf, "JPEG", **kw)
    return buf.getvalue()


def _pil_rgb(data: bytes | Path) -> np.ndarray:
    src = io.BytesIO(data) if isinstance(data, bytes) else data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(src) as im:
            return np.asarray(im.convert("RGB"))


def _pil_draft(data: bytes | Path, mode: str, denom: int) -> np.ndarray:
    """Pillow's libjpeg decode at scale 1/denom (ISLOW, fancy upsampling), in `mode`."""
    src = io.BytesIO(data) if isinstance(data, bytes) else data
    with Image.open(src) as im:
        w, h = im.size
        im.draft(mode, (w // denom, h // denom) if denom > 1 else None)
        assert im.size == (-(-w // denom), -(-h // denom))
        return np.asarray(im if im.mode == mode else im.convert(mode))


def _expected_denom(w: int, h: int, tw: int, th: int) -> int:
    """The covering rule: the largest d in 8, 4, 2 with ceil(w/d) >= tw and ceil(h/d) >= th."""
    for d in (8, 4, 2):
        if -(-w // d) >= tw and -(-h // d) >= th:
            return d
    return 1


def _is_jpeg(p: Path) -> bool:
    with open(p, "rb") as f:
        return f.read(3) == b"\xff\xd8\xff"


def _chunks(items: Sequence[Path], n: int) -> Iterator[Sequence[Path]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _segments(data: bytes, header_only: bool = False) -> list[tuple[int, int]]:
    """(offset, marker) of every marker outside entropy-coded data, in file order.

    ``header_only`` stops at the first SOS (its offset included).
    """
    out, i = [], 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        m = data[i + 1]
        if m in (0x00, 0xFF) or 0xD0 <= m <= 0xD7:
            i += 1 if m == 0xFF else 2
            continue
        out.append((i, m))
        if m == 0xD9 or (header_only and m == 0xDA):
            break
        length = (data[i + 2] << 8) | data[i + 3]
        i += 2 + length
        if m == 0xDA:  # skip the entropy-coded data up to the next real marker
            while i + 1 < len(data) and not (
                data[i] == 0xFF and data[i + 1] not in (0x00, 0xFF) and not 0xD0 <= data[i + 1] <= 0xD7
            ):
                i += 1
    return out


def _sof_offset(data: bytes) -> int:
    return next(off for off, m in _segments(data, header_only=True) if m in (0xC0, 0xC1, 0xC2, 0xC3))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _one(data: bytes, **kw: object) -> tuple[Status, str | None, np.ndarray | None]:
    r = mmcore.decode_batch([data], **kw)  # type: ignore[arg-type]
    return Status(int(r.status[0])), r.errors[0], r.images[0]


# ---------------------------------------------------------------------------------------------
# generated images against Pillow


@pytest.mark.parametrize("subsampling", [0, 1, 2], ids=["444", "422", "420"])
@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
@pytest.mark.parametrize("size", [(1, 1), (7, 9), (17, 33), (64, 48), (101, 57)])
def test_generated_rgb_equals_pillow(subsampling: int, progressive: bool, size: tuple[int, int]) -> None:
    data = _jpeg(_photo(*size), subsampling=subsampling, progressive=progressive)
    status, err, img = _one(data, exif_orientation=False)
    assert status == Status.OK, err
    assert img is not None
    np.testing.assert_array_equal(img, _pil_rgb(data))


def test_generated_restart_markers_and_grey_equal_pillow() -> None:
    im = _photo(96, 80, seed=3)
    for data in (
        _jpeg(im, restart_marker_rows=1),
        _jpeg(im, restart_marker_blocks=5, progressive=True),
        _jpeg(im.convert("L")),
        _jpeg(im.convert("L"), progressive=True),
    ):
        img = mmcore.decode(data, exif_orientation=False)
        assert img.shape == (80, 96, 3)
        np.testing.assert_array_equal(img, _pil_rgb(data))


def test_generated_cmyk_equals_pillow_cmyk2rgb() -> None:
    """Pillow writes CMYK inverted with an Adobe marker; reading applies CMYK;I + cmyk2rgb."""
    rgb = _photo(64, 40, seed=5)
    cmyk = rgb.convert("CMYK")
    arr = np.asarray(cmyk).copy()
    arr[..., 3] = np.linspace(0, 255, arr.shape[1], dtype=np.uint8)[None, :]  # use the K channel
    data = _jpeg(Image.fromarray(arr, "CMYK"))
    ref = _pil_rgb(data)
    np.testing.assert_array_equal(mmcore.decode(data, exif_orientation=False), ref)
    gray = mmcore.decode(data, color="gray", exif_orientation=False)
    np.testing.assert_array_equal(gray, np.asarray(Image.fromarray(ref).convert("L")))
    rgba = mmcore.decode(data, alpha="keep", exif_orientation=False)
    np.testing.assert_array_equal(rgba[..., :3], ref)
    assert (rgba[..., 3] == 255).all()


def test_gray_output_is_coded_luma() -> None:
    """color="gray" reads the Y plane as coded (Pillow's draft("L")), not a conversion of RGB."""
    for data in (_jpeg(_photo(67, 45, seed=1)), _jpeg(_photo(67, 45, seed=1), progressive=True)):
        gray = mmcore.decode(data, color="gray", exif_orientation=False)
        assert gray.shape == (45, 67) and gray.dtype == np.uint8
        np.testing.assert_array_equal(gray, _pil_draft(data, "L", 1))
    grey_jpeg = _jpeg(_photo(50, 30).convert("L"))
    np.testing.assert_array_equal(
        mmcore.decode(grey_jpeg, color="gray"), np.asarray(Image.open(io.BytesIO(grey_jpeg)))
    )


def test_gray_output_of_rgb_coded_jpeg_uses_pillow_luma() -> None:
    """An RGB-coded stream (Adobe transform 0) has no luma plane: Pillow's convert("L") is used."""
    data = _jpeg(_photo(40, 24, seed=2), keep_rgb=True)
    ref = _pil_rgb(data)
    np.testing.assert_array_equal(mmcore.decode(data), ref)
    np.testing.assert_array_equal(
        mmcore.decode(data, color="gray"), np.asarray(Image.fromarray(ref).convert("L"))
    )


def test_rgba_output() -> None:
    for im in (_photo(33, 21), _photo(33, 21).convert("L")):
        data = _jpeg(im)
        rgba = mmcore.decode(data, alpha="keep", exif_orientation=False)
        assert rgba.shape == (21, 33, 4)
        np.testing.assert_array_equal(rgba[..., :3], _pil_rgb(data))
        assert (rgba[..., 3] == 255).all()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_generated_exif_orientation_matches_exif_transpose(orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _jpeg(_photo(37, 23, seed=orientation), exif=exif)
    with Image.open(io.BytesIO(data)) as im:
        ref = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    img = mmcore.decode(data)
    assert img.shape == ref.shape
    np.testing.assert_array_equal(img, ref)
    np.testing.assert_array_equal(mmcore.decode(data, exif_orientation=False), _pil_rgb(data))
    gray = mmcore.decode(data, color="gray")
    assert gray.shape == ref.shape[:2]
    assert mmcore.image_info(data)["orientation"] == orientation


def _exif_transform(img: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation 1-8 applied with numpy alone: the stored rows -> the displayed image."""
    t = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: a[::-1].swapaxes(0, 1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: a[:, ::-1].swapaxes(0, 1),
    }[orientation]
    return np.ascontiguousarray(t(img))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_fast_and_scaled_orientation_equal_a_numpy_transform(orientation: int) -> None:
    """fast=True and scaled decodes have no Pillow equal, so their orientation is checked against
    numpy's turn of the same decode made with exif_orientation=False (its transform table checked
    against Pillow's exif_transpose first): sizes across the 128 px tile, RGB and grey, 1/1 and
    1/4 scale, and the thumbnail (oriented before it is resized)."""
    for w, h in [(37, 23), (300, 131), (129, 260)]:
        exif = Image.Exif()
        exif[0x0112] = orientation
        data = _jpeg(_photo(w, h, seed=w + orientation), exif=exif)
        with Image.open(io.BytesIO(data)) as im:
            pil = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
        np.testing.assert_array_equal(_exif_transform(_pil_rgb(data), orientation), pil)
        swap = orientation >= 5
        for fast in (False, True):
            for color in ("rgb", "gray"):
                plain = mmcore.decode(data, fast=fast, color=color, exif_orientation=False)
                turned = mmcore.decode(data, fast=fast, color=color)
                np.testing.assert_array_equal(turned, _exif_transform(plain, orientation))
                sw, sh = -(-w // 4), -(-h // 4)
                tgt = (sh, sw) if swap else (sw, sh)
                kw = {"fast": fast, "color": color, "reducing_gap": 1.0}
                plain = mmcore.decode(data, target=(sw, sh), exif_orientation=False, **kw)  # type: ignore[arg-type]
                turned = mmcore.decode(data, target=tgt, **kw)  # type: ignore[arg-type]
                np.testing.assert_array_equal(turned, _exif_transform(plain, orientation))
            # thumbnail: orient, then resize; the reference resizes numpy's turn of the plain decode
            short = 20
            ref_src = _exif_transform(mmcore.decode(data, fast=fast, exif_orientation=False), orientation)
            rh, rw = ref_src.shape[:2]
            size = (
                (short, max(1, round(rh * short / rw)))
                if rw <= rh
                else (max(1, round(rw * short / rh)), short)
            )
            thumb = mmcore.thumbnail(data, short_side=short, fast=fast, reducing_gap=None)
            np.testing.assert_array_equal(thumb, mmcore.resize(ref_src, size))


def test_batch_exif_orientations_equal_single_decodes() -> None:
    """decode_batch / thumbnail_batch / hash_batch(mode="fast") over JPEGs of every orientation and
    of growing and shrinking sizes, on one worker (its scratch for the copy before orientation
    taken from the worker's Workspace, record after record): each output equals the single-record
    call's, in input order."""
    datas = []
    for i, (w, h) in enumerate([(37, 23), (300, 200), (40, 90), (513, 129), (64, 64), (201, 333)] * 3):
        exif = Image.Exif()
        exif[0x0112] = 1 + i % 8
        datas.append(_jpeg(_photo(w, h, seed=i), exif=exif))
    for threads in (1, 2):
        r = mmcore.decode_batch(datas, threads=threads)
        assert list(r.status) == [mmcore.Status.OK] * len(datas)
        for data, img in zip(datas, r.images, strict=True):
            np.testing.assert_array_equal(img, mmcore.decode(data))
        t = mmcore.thumbnail_batch(datas, short_side=48, threads=threads)
        for data, img in zip(datas, t.images, strict=True):
            np.testing.assert_array_equal(img, mmcore.thumbnail(data, short_side=48))
        h = mmcore.hash_batch(datas, kinds=("phash", "pdq"), mode="fast", threads=threads)
        for i, data in enumerate(datas):
            one = mmcore.hash_batch([data], kinds=("phash", "pdq"), mode="fast", threads=1)
            assert h["phash"][i] == one["phash"][0]
            np.testing.assert_array_equal(h["pdq"][i], one["pdq"][0])


# ---------------------------------------------------------------------------------------------
# scaled IDCT: the covering rule and the pixels at each scale


W, H = 1001, 667  # not multiples of 8: ceil() matters


@pytest.fixture(scope="module")
def big_jpegs() -> dict[str, bytes]:
    im = _photo(W, H, seed=9)
    return {"baseline": _jpeg(im), "progressive": _jpeg(im, progressive=True, subsampling=1)}


@pytest.mark.parametrize("kind", ["baseline", "progressive"])
@pytest.mark.parametrize("denom", [1, 2, 4, 8])
def test_scaled_decode_equals_pillow_draft(big_jpegs: dict[str, bytes], kind: str, denom: int) -> None:
    """A target equal to ceil(W/d) x ceil(H/d) decodes at exactly 1/d, no resize."""
    data = big_jpegs[kind]
    target = (-(-W // denom), -(-H // denom))
    assert _expected_denom(W, H, *target) == denom
    img = mmcore.decode(data, target=target, exif_orientation=False, reducing_gap=1.0)
    assert img.shape == (target[1], target[0], 3)
    np.testing.assert_array_equal(img, _pil_draft(data, "RGB", denom))
    gray = mmcore.decode(data, target=target, color="gray", exif_orientation=False, reducing_gap=1.0)
    np.testing.assert_array_equal(gray, _pil_draft(data, "L", denom))


@pytest.mark.parametrize(
    "target",
    [(126, 84), (127, 84), (126, 85), (200, 100), (251, 167), (252, 10), (500, 334), (501, 334), (1001, 667)],
)
def test_scaled_decode_covering_rule(big_jpegs: dict[str, bytes], target: tuple[int, int]) -> None:
    """decode(target=...) = resize(decode at the largest 1/d that still covers the target).

    reducing_gap=1.0 asks for exactly the decoder's rule; the default gap g covers g x target.
    """
    data = big_jpegs["baseline"]
    d = _expected_denom(W, H, *target)
    ref = mmcore.resize(_pil_draft(data, "RGB", d), target)
    img = mmcore.decode(data, target=target, exif_orientation=False, reducing_gap=1.0)
    np.testing.assert_array_equal(img, ref)
    d2 = _expected_denom(W, H, math.ceil(target[0] * 2.0), math.ceil(target[1] * 2.0))
    ref2 = mmcore.resize(_pil_draft(data, "RGB", d2), target)
    np.testing.assert_array_equal(mmcore.decode(data, target=target, exif_orientation=False), ref2)


@pytest.mark.parametrize("short_side", [32, 83, 84, 85, 167, 300])
def test_thumbnail_uses_covering_scale(big_jpegs: dict[str, bytes], short_side: int) -> None:
    data = big_jpegs["progressive"]
    rh = short_side
    rw = max(1, round(W * short_side / H))
    d = _expected_denom(W, H, rw, rh)
    ref = mmcore.resize(_pil_draft(data, "RGB", d), (rw, rh))
    np.testing.assert_array_equal(mmcore.thumbnail(data, short_side=short_side, reducing_gap=1.0), ref)


def test_scaled_decode_with_rotation_swaps_the_constraint() -> None:
    """Orientation 6: the target is in displayed (rotated) coordinates."""
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _jpeg(_photo(W, H, seed=4), exif=exif)
    target = (-(-H // 4), -(-W // 4))  # displayed is H wide, W tall
    img = mmcore.decode(data, target=target, reducing_gap=1.0)
    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (W // 4, H // 4))
        ref = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    np.testing.assert_array_equal(img, ref)


def test_fast_decode_is_close_to_pillow(big_jpegs: dict[str, bytes]) -> None:
    for data in big_jpegs.values():
        ref = _pil_rgb(data)
        fast = mmcore.decode(data, fast=True, exif_orientation=False)
        assert fast.shape == ref.shape
        assert _psnr(fast, ref) >= 30.0
        kw = {"target": (126, 84), "exif_orientation": False, "reducing_gap": 1.0}
        small = mmcore.decode(data, fast=True, **kw)  # type: ignore[arg-type]
        assert _psnr(small, mmcore.decode(data, **kw)) >= 30.0  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# status policy


def test_pixel_limit_from_crafted_header_before_allocation() -> None:
    data = bytearray(_jpeg(_photo(16, 16)))
    sof = _sof_offset(bytes(data))
    data[sof + 5 : sof + 9] = b"\xff\xff\xff\xff"  # height, width = 65535
    status, err, img = _one(bytes(data))
    assert status == Status.TOO_LARGE and img is None
    assert err is not None and "65535x65535" in err
    with pytest.raises(DecodeError) as e:
        mmcore.decode(bytes(data))
    assert e.value.status == Status.TOO_LARGE
    info = mmcore.image_info(bytes(data))
    assert (info["width"], info["height"]) == (65535, 65535)


def test_max_pixels_boundary() -> None:
    data = _jpeg(_photo(16, 16))
    assert mmcore.decode(data, max_pixels=256).shape == (16, 16, 3)
    with pytest.raises(DecodeError) as e:
        mmcore.decode(data, max_pixels=255)
    assert e.value.status == Status.TOO_LARGE


@pytest.mark.parametrize("progressive", [False, True])
def test_missing_eoi_is_ok_warning(progressive: bool) -> None:
    data = _jpeg(_photo(120, 90, seed=6), progressive=progressive)
    assert data.endswith(b"\xff\xd9")
    status, err, img = _one(data[:-2])
    assert status == Status.OK_WARNING
    assert err is not None and "end-of-image" in err
    assert img is not None
    np.testing.assert_array_equal(img, _pil_rgb(data))
    assert mmcore.decode(data[:-2]).shape == (90, 120, 3)  # the single-record API returns it


@pytest.mark.parametrize("progressive", [False, True])
@pytest.mark.parametrize("fraction", [0.2, 0.6, 0.95])
def test_truncated_is_corrupt_and_says_where(progressive: bool, fraction: float) -> None:
    data = _jpeg(_photo(160, 120, seed=7), progressive=progressive)
    cut = data[: int(len(data) * fraction)]
    status, err, img = _one(cut)
    assert status == Status.CORRUPT and img is None
    assert err is not None and "truncated" in err and f"byte {len(cut)}" in err
    with pytest.raises(DecodeError) as e:
        mmcore.decode(cut)
    assert e.value.status == Status.CORRUPT and e.value.message


def test_progressive_cut_at_a_scan_boundary_is_corrupt() -> None:
    """No entropy segment is cut short, but the last scans are missing: the image is incomplete."""
    data = _jpeg(_photo(160, 120, seed=8), progressive=True)
    last_sos = [off for off, m in _segments(data) if m == 0xDA][-1]
    status, err, _ = _one(data[:last_sos])
    assert status == Status.CORRUPT
    assert err is not None and "scans" in err


def test_damaged_entropy_data_without_restart_markers_is_corrupt() -> None:
    data = bytearray(_jpeg(_photo(256, 192, seed=10)))
    sos = next(off for off, m in _segments(bytes(data)) if m == 0xDA)
    mid = (sos + len(data)) // 2
    data[mid : mid + 2048] = bytes(2048)
    status, err, img = _one(bytes(data))
    assert status == Status.CORRUPT and img is None
    assert err is not None and "corrupt JPEG data" in err


def test_damaged_data_inside_restart_intervals_is_ok_warning() -> None:
    """With restart markers libjpeg resynchronises: the damage is local, like Pillow's output."""
    data = bytearray(_jpeg(_photo(256, 192, seed=11), restart_marker_rows=1))
    rst = [m.start() for m in re.finditer(rb"\xff[\xd0-\xd7]", bytes(data))]
    assert len(rst) > 4
    a, b = rst[len(rst) // 2], rst[len(rst) // 2 + 1]  # one restart interval in the middle
    data[a + 2 : b - 2] = bytes(b - 4 - a)
    status, err, img = _one(bytes(data))
    assert status == Status.OK_WARNING, err
    assert err
    assert img is not None
    np.testing.assert_array_equal(img, _pil_rgb(bytes(data)))


def test_extraneous_bytes_before_marker_is_ok_warning() -> None:
    data = _jpeg(_photo(40, 30))
    dqt = next(off for off, m in _segments(data) if m == 0xDB)
    junk = data[:dqt] + b"\x00\x01\x02" + data[dqt:]
    status, err, img = _one(junk)
    assert status == Status.OK_WARNING
    assert err is not None and "extraneous bytes" in err
    assert img is not None
    np.testing.assert_array_equal(img, _pil_rgb(data))


def test_12_bit_is_unsupported_and_a_relabelled_sof3_is_corrupt() -> None:
    # A DCT stream whose frame header says 12-bit; one whose frame header says lossless (its scan
    # header is no lossless one).
    data = _jpeg(_photo(16, 16), subsampling=0)
    sof = _sof_offset(data)
    cases = {12: (Status.UNSUPPORTED, "precision 12"), 0xC3: (Status.CORRUPT, "lossless")}
    for value, (expected, words) in cases.items():
        changed = bytearray(data)
        changed[sof + (4 if value == 12 else 1)] = value
        status, err, _ = _one(bytes(changed))
        assert status == expected and err is not None and words in err, (value, err)
        with pytest.raises(DecodeError) as e:
            mmcore.decode(bytes(changed))
        assert e.value.status == expected


def _many_scans_jpeg(n: int) -> bytes:
    """An 8x8 grey progressive JPEG whose (valid, Al=0) DC scan is repeated n times."""

    def seg(marker: int, body: bytes) -> bytes:
        return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body

    dqt = seg(0xDB, b"\x00" + bytes([1] * 64))
    sof2 = seg(0xC2, bytes([8, 0, 8, 0, 8, 1, 1, 0x11, 0]))
    dht = seg(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00")  # DC table 0: one 1-bit code, diff 0
    sos = seg(0xDA, bytes([1, 1, 0x00, 0, 0, 0x00]))  # Ss=0 Se=0 Ah=0 Al=0
    scan = sos + b"\x7f"  # code "0" (DC diff 0), padded with ones
    return b"\xff\xd8" + dqt + sof2 + dht + scan * n + b"\xff\xd9"


def test_too_many_scans_is_corrupt() -> None:
    """A progressive stream past the scan limit (1000) is refused; under it, it decodes."""
    ok = mmcore.decode(_many_scans_jpeg(50))
    np.testing.assert_array_equal(ok, np.full((8, 8, 3), 128, np.uint8))
    np.testing.assert_array_equal(ok, _pil_rgb(_many_scans_jpeg(50)))
    status, err, _ = _one(_many_scans_jpeg(1200))
    assert status == Status.CORRUPT
    assert err is not None and "scans" in err


def test_bogus_progression_is_corrupt() -> None:
    """A progressive DC scan repeated with the wrong successive-approximation bits."""
    data = _jpeg(_photo(8, 8).convert("L"), progressive=True)
    sos = [off for off, m in _segments(data) if m == 0xDA]
    bogus = data[: sos[1]] + data[sos[0] : sos[1]] + data[sos[1] :]
    status, err, _ = _one(bogus)
    assert status == Status.CORRUPT
    assert err is not None and "progression" in err


def test_not_a_jpeg_and_garbage_after_soi() -> None:
    for bad in (b"", b"\xff", b"\xff\xd8\xff", b"\xff\xd8\xff\xe0" + bytes(100), b"\xff\xd8\xff\xd9"):
        status, err, img = _one(bad)
        assert not status.ok and img is None
        assert err


# ---------------------------------------------------------------------------------------------
# sources and API


def test_sources_path_bytes_memoryview_numpy(tmp_path: Path) -> None:
    data = _jpeg(_photo(30, 20))
    p = tmp_path / "a.bin"  # content decides the format, not the name
    p.write_bytes(data)
    ref = _pil_rgb(data)
    sources: list[object] = [
        str(p),
        p,
        data,
        bytearray(data),
        memoryview(data),
        np.frombuffer(data, np.uint8),
        np.frombuffer(b"xx" + data, np.uint8)[2:],  # an offset view
    ]
    for src in sources:
        np.testing.assert_array_equal(mmcore.decode(src, exif_orientation=False), ref)  # type: ignore[arg-type]
    r = mmcore.decode_batch(sources, exif_orientation=False)  # type: ignore[arg-type]
    assert r.counts() == {"OK": len(sources)}
    for img in r.images:
        np.testing.assert_array_equal(img, ref)


def test_decode_error_carries_status() -> None:
    with pytest.raises(DecodeError) as e:
        mmcore.decode(b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + bytes(20))
    assert e.value.status in (Status.CORRUPT, Status.UNSUPPORTED)
    assert e.value.message
    assert isinstance(e.value, ValueError)


def test_library_version() -> None:
    v = mmcore.build_info()["codecs"]["jpeg"]
    assert re.fullmatch(r"libjpeg-turbo \d+\.\d+\.\d+", v), v


# ---------------------------------------------------------------------------------------------
# corpus (../shared/corpus): every photo and every odd JPEG Pillow decodes


@pytest.mark.corpus
@pytest.mark.slow
def test_corpus_jpeg_equals_pillow() -> None:
    files = corpus_files("jpeg")
    assert len(files) > 100
    for chunk in _chunks(files, 16):
        r = mmcore.decode_batch([str(p) for p in chunk], exif_orientation=False)
        for p, img, st, err in zip(chunk, r.images, r.status, r.errors, strict=True):
            assert st == Status.OK, (p.name, err)
            assert img is not None
            np.testing.assert_array_equal(img, _pil_rgb(p), err_msg=p.name)


def _lossless(p: Path) -> bool:
    return any(m == 0xC3 for _, m in _segments(p.read_bytes(), header_only=True))


@pytest.mark.corpus
@pytest.mark.slow
def test_corpus_odd_jpegs_pillow_decodes_are_equal() -> None:
    files = [p for p in corpus_files("odd") if _is_jpeg(p)]
    compared = cmyk = lossless = 0
    for chunk in _chunks(files, 16):
        r = mmcore.decode_batch([str(p) for p in chunk], exif_orientation=False)
        for p, img, st, err in zip(chunk, r.images, r.status, r.errors, strict=True):
            try:
                ref = _pil_rgb(p)
            except Exception:
                # Pillow refuses it (12/16-bit, bombs, ...): a clean status with a message.
                assert st == Status.OK or err, p.name
                continue
            assert Status(int(st)).ok, (p.name, err)
            assert img is not None
            np.testing.assert_array_equal(img, ref, err_msg=p.name)
            compared += 1
            lossless += _lossless(p)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(p) as im:
                    cmyk += im.mode == "CMYK"
    assert compared > 100
    assert cmyk >= 1, "no CMYK/YCCK JPEG in odd/"
    assert lossless >= 2, "the 8-bit lossless JPEGs of odd/ were not compared"


@pytest.mark.corpus
def test_corpus_odd_cmyk_gray_and_rgba() -> None:
    files = [p for p in corpus_files("odd") if _is_jpeg(p)]
    seen = 0
    for p in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(p) as im:
                    if im.mode != "CMYK":
                        continue
        except Exception:
            continue  # Pillow cannot open it (lossless, 12-bit): covered elsewhere
        ref = _pil_rgb(p)
        np.testing.assert_array_equal(
            mmcore.decode(p, color="gray", exif_orientation=False),
            np.asarray(Image.fromarray(ref).convert("L")),
            err_msg=p.name,
        )
        np.testing.assert_array_equal(mmcore.decode(p, alpha="keep", exif_orientation=False)[..., :3], ref)
        seen += 1
    if seen == 0:
        pytest.skip("no CMYK JPEG in the corpus")


@pytest.mark.corpus
@pytest.mark.slow
def test_corpus_exif_orientations_match_exif_transpose() -> None:
    rows = [
        r
        for r in corpus_index()
        if r["category"] in ("odd", "jpeg") and r["fmt"] == "JPEG" and r["exif_orientation"] in "2345678"
    ]
    rows = [r for r in rows if r["exif_orientation"]]
    root = corpus_files("odd")[0].parent.parent
    orientations = set()
    for chunk in _chunks([root / r["file"] for r in rows], 16):
        res = mmcore.decode_batch([str(p) for p in chunk])
        for p, img in zip(chunk, res.images, strict=True):
            with Image.open(p) as im:
                ref = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
            assert img is not None, p.name
            np.testing.assert_array_equal(img, ref, err_msg=p.name)
            orientations.add(mmcore.image_info(p)["orientation"])
    assert orientations >= set(range(2, 9))


@pytest.mark.corpus
def test_corpus_arithmetic_and_unsupported() -> None:
    odd = corpus_files("odd")
    by_name = {p.name: p for p in odd}
    ari = [p for n, p in by_name.items() if "arith" in n or n.endswith("testimgari.jpg")]
    if not ari:
        pytest.skip("no arithmetic-coded JPEG in the corpus")
    for p in ari:
        assert mmcore.decode_batch([str(p)]).status[0] <= Status.OK_WARNING, p.name
    for p in odd:
        if _is_jpeg(p) and _lossless(p):
            r = mmcore.decode_batch([str(p)])
            precision = p.read_bytes()[_sof_offset(p.read_bytes()) + 4]
            if precision == 8:
                assert r.status[0] == Status.OK, (p.name, r.errors[0])
            else:
                assert r.status[0] == Status.UNSUPPORTED, p.name
                assert f"{precision}-bit" in (r.errors[0] or ""), (p.name, r.errors[0])


def test_cpp_huffman_decoder_matches_libjpeg(tmp_path: Path) -> None:
    """tests/cpp/test_jpeg_huff.cpp: mmcore's Huffman decoder (cpp/src/decode_jpeg_huff_impl.h, both
    compiled copies) gives libjpeg-turbo's coefficients, hence its pixels and warnings, at every
    scale, grey and RGB, on
    JPEGs made there (every subsampling, grey, qualities 20-100, optimised tables, restart
    intervals, 10-bit magnitudes; progressive with three scan scripts) and on the corpus's JPEGs
    when present; and decode_into gives the
    same status, message and pixels with and without it on those files and on damaged copies."""
    folders = [str(CORPUS / sub) for sub in ("jpeg", "odd", "corrupt", "pdq_ref") if (CORPUS / sub).is_dir()]
    out = run_cpp_test(tmp_path, "test_jpeg_huff", *folders)
    assert "PASS" in out, out[-3000:]
    assert "with it installed" in out


def test_cpp_orient_pixels_match_a_pixel_walk(tmp_path: Path) -> None:
    """tests/cpp/test_orient.cpp: EXIF orientation (the axis-swapping ones by tiles staged in a
    buffer, with 4-byte pixel moves for 3 channels) equals a pixel-by-pixel walk of Pillow's
    exif_transpose for orientations 0-9, 1-5 channels and sizes across the tile, touching no
    padding byte."""
    out = run_cpp_test(tmp_path, "test_orient")
    assert "PASS" in out, out[-3000:]


def test_cpp_idct_matches_libjpeg(tmp_path: Path) -> None:
    """tests/cpp/test_idct.cpp: the islow IDCT's scalar ref gives the bytes of the IDCT libjpeg-turbo
    installs (its SIMD variant) on 240,000 blocks (realistic, full-range coefficients and
    multipliers, row-0-only shortcut blocks, single coefficients at extreme values), and every pair
    kernel this CPU runs gives the ref's bytes, writing nothing outside its two 8x8 blocks."""
    if platform.machine() not in ("x86_64", "AMD64"):
        # Seen on aarch64: its Neon IDCT differs from the ref on 117,708 of the blocks, as the C
        # IDCT does on x86-64 too (JSIMD_FORCENONE=1: 205,373); the corpus decodes equal there.
        pytest.skip(
            "the ref reproduces libjpeg-turbo's x86-64 SIMD islow IDCT (the one the avx512 pair kernel"
            " must equal); its Neon and C IDCTs round some blocks differently, and off x86-64 decode"
            " runs libjpeg-turbo's own IDCT, not the ref"
        )
    out = run_cpp_test(tmp_path, "test_idct")
    assert "PASS" in out, out[-3000:]


def test_cpp_ycc_rgb_matches_libjpeg(tmp_path: Path) -> None:
    """tests/cpp/test_color.cpp: the YCbCr -> RGB scalar ref gives the bytes of the conversion
    libjpeg-turbo installs on all 2^24 YCbCr values, and every vector variant this CPU runs gives
    the ref's, at every width 0-100 with the planes ending at an unreadable page."""
    out = run_cpp_test(tmp_path, "test_color")
    assert "PASS" in out, out[-3000:]


_DIGEST_SCRIPT = """
import hashlib
from pathlib import Path
import mmcore
h = hashlib.sha256()
paths = sorted(p for folder in FOLDERS for p in Path(folder).iterdir() if p.is_file())
datas = [d for d in (p.read_bytes() for p in paths) if d[:2] == bytes([0xFF, 0xD8])]
for color in ("rgb", "gray"):
    r = mmcore.decode_batch(datas, color=color, exif_orientation=False)
    for st, err, img in zip(r.status, r.errors, r.images):
        h.update(f"{int(st)}|{err}|".encode())
        if img is not None:
            h.update(img.tobytes())
print(len(datas), h.hexdigest())
"""


def test_backends_decode_jpeg_identically(tmp_path: Path) -> None:
    """Every backend this CPU runs decodes JPEGs alike: the ref backend (libjpeg-turbo's IDCT and
    YCbCr -> RGB, the baseline Huffman decoder), avx2 (mmcore's YCbCr -> RGB rows and AVX2 Huffman
    decoder) and avx512 (mmcore's pair IDCT too) give the same statuses, messages and pixels, RGB
    and grey, on generated JPEGs of every subsampling, grey, CMYK, restart intervals and
    progressive, and on the corpus's JPEGs."""
    supported = mmcore.build_info()["cpu_variants_supported"]
    if "avx2" not in supported:
        pytest.skip("this CPU has no AVX2: only the ref backend's JPEG decode runs here")
    gen = tmp_path / "generated"
    gen.mkdir()
    for i, size in enumerate([(1, 1), (7, 9), (17, 33), (101, 57), (250, 3)]):
        im = _photo(*size, seed=i)
        for sub in (0, 1, 2):
            for prog in (False, True):
                (gen / f"{i}_{sub}_{prog}.jpg").write_bytes(_jpeg(im, subsampling=sub, progressive=prog))
        (gen / f"{i}_grey.jpg").write_bytes(_jpeg(im.convert("L")))
        (gen / f"{i}_cmyk.jpg").write_bytes(_jpeg(im.convert("CMYK")))
        (gen / f"{i}_rst.jpg").write_bytes(_jpeg(im, restart_marker_blocks=3))
    corpus = [str(CORPUS / sub) for sub in ("jpeg", "odd", "corrupt") if (CORPUS / sub).is_dir()]
    folders = [str(gen), *corpus]
    script = f"FOLDERS = {folders!r}\n" + _DIGEST_SCRIPT
    backends = ["ref", "avx2", *(["avx512"] if "avx512" in supported else [])]
    outs = {b: run_with_backend(script, b, tmp_path) for b in backends}
    assert len(set(outs.values())) == 1, outs
    assert int(outs["ref"].split()[0]) >= 5 * 9, outs
