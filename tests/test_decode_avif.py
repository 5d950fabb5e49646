"""AVIF (first image), decoded with libavif.

Oracle: Pillow 13's AVIF plugin (its wheel bundles libavif 1.x): ``Image.open(f)``, EXIF
orientation applied by ``ImageOps.exif_transpose``, then ``convert("RGB" | "L" | "RGBA")``. Files:
written here by Pillow (8-bit; its EXIF orientation becomes irot / imir), and the small files in
tests/data/avif written by avifenc (tests/data/avif/make.sh: 10 / 12 bit, limited range, 4:0:0,
premultiplied alpha, a grid, an image sequence, irot / imir without EXIF). The imagehash and
pdqhash oracles hash Pillow's pixels of the same files.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_byte_flips_give_statuses, corpus_files
from PIL import Image, ImageOps, features

import mmcore
from mmcore import Status

DATA = Path(__file__).parent / "data" / "avif"
HAVE_LIBAVIF = mmcore.build_info()["codecs"]["avif"].startswith("libavif")
HAVE_PILLOW_AVIF = bool(features.check("avif"))
needs_libavif = pytest.mark.skipif(not HAVE_LIBAVIF, reason="mmcore built without libavif (MMCORE_AVIF=OFF)")
needs_pillow = pytest.mark.skipif(not HAVE_PILLOW_AVIF, reason="this Pillow has no AVIF support")
MODES = {"rgb": ({}, "RGB"), "gray": ({"color": "gray"}, "L"), "rgba": ({"alpha": "keep"}, "RGBA")}
# 10- and 12-bit files: Pillow's libavif 1.x and Debian 12's 0.11 convert them to 8-bit RGB
# differently (up to 3 levels apart on these files; every 8-bit file is equal).
HIGH_DEPTH = {"depth10_420.avif": 3, "depth12_444.avif": 3}


def _pillow(data: bytes, mode: str) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(ImageOps.exif_transpose(im).convert(mode))


def _smooth(rng: np.random.Generator, h: int, w: int, channels: int) -> np.ndarray:
    """A photo-like image: coarse noise upsampled, plus a little fine noise (hashes have structure)."""
    coarse = rng.integers(0, 256, (max(h // 8, 1) + 1, max(w // 8, 1) + 1, channels)).astype(np.float64)
    ys = np.linspace(0, coarse.shape[0] - 1, h)
    xs = np.linspace(0, coarse.shape[1] - 1, w)
    img = coarse[np.round(ys).astype(int)][:, np.round(xs).astype(int)]
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _avif(img: np.ndarray, **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img[..., 0] if img.shape[2] == 1 else img).save(buf, "AVIF", **kw)
    return buf.getvalue()


def _assert_like_pillow(data: bytes, tolerance: int = 0) -> None:
    for color, (kw, mode) in MODES.items():
        got = mmcore.decode(data, **kw)
        want = _pillow(data, mode)
        assert got.shape == want.shape, (color, got.shape, want.shape)
        diff = int(np.abs(got.astype(int) - want).max()) if got.size else 0
        assert diff <= tolerance, (color, diff)


@needs_libavif
@needs_pillow
@pytest.mark.parametrize("subsampling", ["4:2:0", "4:2:2", "4:4:4"])
@pytest.mark.parametrize("size", [(1, 1), (7, 5), (64, 48), (333, 250)])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_pillow_written_avifs_equal_pillow(subsampling: str, size: tuple[int, int], channels: int) -> None:
    rng = np.random.default_rng(size[0] * 7 + channels)
    w, h = size
    data = _avif(_smooth(rng, h, w, channels), quality=70, subsampling=subsampling)
    assert mmcore.image_info(data)["format"] == "avif"
    _assert_like_pillow(data)


@needs_libavif
@needs_pillow
@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_equals_exif_transpose(orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(_smooth(np.random.default_rng(orientation), 24, 40, 3)).save(
        buf, "AVIF", quality=80, exif=exif.tobytes()
    )
    data = buf.getvalue()
    _assert_like_pillow(data)
    info = mmcore.image_info(data)
    assert info["orientation"] == orientation
    assert (info["width"], info["height"]) == (40, 24)
    assert (info["display_width"], info["display_height"]) == ((24, 40) if orientation >= 5 else (40, 24))
    assert mmcore.decode(data, exif_orientation=False).shape == (24, 40, 3)


@needs_libavif
@needs_pillow
@pytest.mark.parametrize("path", sorted(DATA.glob("*.avif")), ids=lambda p: p.name)
def test_avifenc_files_equal_pillow(path: Path) -> None:
    data = path.read_bytes()
    info = mmcore.image_info(data)
    assert info["status"] == Status.OK and info["format"] == "avif"
    _assert_like_pillow(data, HIGH_DEPTH.get(path.name, 0))
    with Image.open(path) as im:
        assert info["animated"] == (getattr(im, "n_frames", 1) > 1)
        assert info["has_alpha"] == (im.mode == "RGBA")


@needs_libavif
def test_avifenc_files_facts() -> None:
    """What the files were made with, read back (no Pillow needed)."""
    info = {p.name: mmcore.image_info(p.read_bytes()) for p in DATA.glob("*.avif")}
    assert info["sequence_2.avif"]["animated"] and info["sequence_2.avif"]["has_alpha"]
    assert info["irot1_imir1.avif"]["orientation"] == 7  # a quarter turn anti-clockwise, then left-right
    assert info["imir0_alpha.avif"]["orientation"] == 4  # top and bottom exchanged
    assert (info["odd_33x17_420.avif"]["width"], info["odd_33x17_420.avif"]["height"]) == (33, 17)
    assert (info["grid_2x2.avif"]["width"], info["grid_2x2.avif"]["height"]) == (128, 128)
    for name in ("gray400.avif", "depth10_400.avif"):  # 4:0:0: every channel equal
        rgb = mmcore.decode((DATA / name).read_bytes())
        assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all()
    for name in HIGH_DEPTH:
        assert mmcore.decode((DATA / name).read_bytes()).shape == (48, 64, 3)


@needs_libavif
@needs_pillow
def test_hashes_equal_imagehash_and_pdqhash() -> None:
    imagehash = pytest.importorskip("imagehash")
    pdqhash = pytest.importorskip("pdqhash")
    rng = np.random.default_rng(5)
    files = [
        _avif(_smooth(rng, h, w, 3), quality=q) for h, w, q in ((96, 128, 60), (250, 333, 80), (37, 300, 50))
    ]
    files += [p.read_bytes() for p in sorted(DATA.glob("*.avif")) if p.name not in HIGH_DEPTH]
    kinds = ("ahash", "dhash", "phash", "whash", "pdq")
    r = mmcore.hash_batch(files, kinds=kinds, mode="exact")
    assert r.ok.all(), r.errors
    for i, data in enumerate(files):
        with (
            Image.open(io.BytesIO(data)) as im,
            warnings.catch_warnings(),
        ):  # exact mode: no turn, as imagehash
            warnings.simplefilter("ignore")
            assert r.hex("ahash")[i] == str(imagehash.average_hash(im))
            assert r.hex("dhash")[i] == str(imagehash.dhash(im))
            assert r.hex("phash")[i] == str(imagehash.phash(im))
            assert r.hex("whash")[i] == str(imagehash.whash(im))
            bits, quality = pdqhash.compute(np.ascontiguousarray(np.asarray(im.convert("RGB"))))
        full = mmcore.hash_batch([data], kinds=["pdq"], mode="full")
        assert full.hex("pdq")[0] == np.packbits(np.asarray(bits, np.uint8)).tobytes().hex()
        assert int(full["pdq_quality"][0]) == int(quality)


@needs_libavif
def test_batches_thumbnails_and_out() -> None:
    files = [p.read_bytes() for p in sorted(DATA.glob("*.avif"))]
    singles = [mmcore.decode(d) for d in files]
    r = mmcore.decode_batch([*files, b"junk"], threads=2)
    assert r.status.tolist() == [Status.OK] * len(files) + [Status.CORRUPT]
    for got, want in zip(r.images, singles, strict=False):
        assert np.array_equal(got, want)
    t = mmcore.thumbnail_batch(files, short_side=16, threads=2)
    for got, img in zip(t.images, singles, strict=True):
        h, w = img.shape[:2]
        size = (16, max(1, round(h * 16 / w))) if w <= h else (max(1, round(w * 16 / h)), 16)
        assert got.shape[:2] == size[::-1]
        assert np.array_equal(got, mmcore.resize(img, size))
    out = np.full((len(files), 20, 30, 3), 7, np.uint8)
    r = mmcore.thumbnail_batch(files, crop=(30, 20), out=out)
    assert r.ok.all() and all(np.shares_memory(i, out) for i in r.images)
    # The hash decode's pixels give the thumbnail too (one decode): the same as a second decode.
    h = mmcore.hash_batch(files, kinds=("phash", "pdq"), thumbnail={"short_side": 16})
    assert h.thumbnails is not None
    for got, want in zip(h.thumbnails.images, t.images, strict=True):
        assert np.array_equal(got, want)


@needs_libavif
def test_every_truncation_and_damage_is_a_status() -> None:
    data = (DATA / "alpha_444.avif").read_bytes()
    prefixes = [data[:n] for n in range(0, len(data), 7)]
    r = mmcore.decode_batch(prefixes, threads=2)
    for n, (s, e) in zip(range(0, len(data), 7), zip(r.status, r.errors, strict=True), strict=True):
        assert s in (Status.CORRUPT, Status.UNSUPPORTED), (n, s)
        assert e, n
    assert "avif" in r.errors[-1]
    for name in ("sequence_2.avif", "grid_2x2.avif", "depth10_420.avif"):
        assert_byte_flips_give_statuses((DATA / name).read_bytes(), 12, rounds=150)


def _wide_pixels(w: int, h: int) -> np.ndarray:
    """The pixels of tests/data/avif/wide/ (make.sh's wide())."""
    x, y = np.meshgrid(np.arange(w), np.arange(h))
    return np.stack([(x // 160) % 256, (y * 40 + x // 400) % 256, (x // 1000 * 7) % 256], -1).astype(np.uint8)


@needs_libavif
def test_a_side_past_32768_decodes() -> None:
    """libavif's default per-side limit (32768; Pillow refuses the file) is lifted: max_pixels rules."""
    data = (DATA / "wide" / "wide_40000x6_lossless.avif").read_bytes()
    info = mmcore.image_info(data)
    assert info["status"] == Status.OK and (info["width"], info["height"]) == (40000, 6)
    np.testing.assert_array_equal(mmcore.decode(data), _wide_pixels(40000, 6))  # lossless: the source
    r = mmcore.decode_batch([data], max_pixels=40000 * 6 - 1)
    assert r.status[0] == Status.TOO_LARGE and "over the limit of 239999" in r.errors[0]


def _with_extent(data: bytes, w: int, h: int) -> bytes:
    """data with its (one) ispe property saying w x h."""
    at = data.index(b"ispe") + 8  # past the type, then version and flags
    assert data.count(b"ispe") == 1
    return data[:at] + w.to_bytes(4, "big") + h.to_bytes(4, "big") + data[at + 8 :]


@needs_libavif
def test_past_libavifs_pixel_limit_is_too_large() -> None:
    """Past 16384 x 16384 pixels libavif refuses to parse: TOO_LARGE (not CORRUPT), whatever max_pixels."""
    data = (DATA / "gray400.avif").read_bytes()
    for w, h in ((20000, 20000), (16384, 16385), (65535, 65535)):
        for max_pixels in (None, 2**40):
            kw = {} if max_pixels is None else {"max_pixels": max_pixels}
            r = mmcore.decode_batch([_with_extent(data, w, h)], **kw)
            assert r.status[0] == Status.TOO_LARGE, (w, h, r.errors[0])
            limit = "libavif's limit of 268435456 (16384 x 16384)"
            assert r.errors[0] == f"avif: image is {w}x{h} = {w * h} pixels, over {limit}"
    # Within libavif's limit, past the default max_pixels: the usual message.
    r = mmcore.decode_batch([_with_extent(data, 15000, 15000)])
    assert r.status[0] == Status.TOO_LARGE and "raise max_pixels" in r.errors[0]
    # A damaged file whose extent is small stays CORRUPT.
    damaged = _with_extent(data, 64, 48)
    damaged = damaged[: damaged.index(b"ipco") - 4] + b"\xff" * 8 + damaged[damaged.index(b"ipco") + 4 :]
    r = mmcore.decode_batch([damaged])
    assert r.status[0] == Status.CORRUPT and r.errors[0].startswith("avif: cannot read the container")


@needs_libavif
def test_a_coded_frame_larger_than_the_extent_is_held_to_max_pixels() -> None:
    """libavif scales a frame to the container's extent; the frame itself is held to max_pixels."""
    data = _with_extent((DATA / "gray400.avif").read_bytes(), 32, 24)  # its frame is 64 x 48
    r = mmcore.decode_batch([data, data], max_pixels=1000)  # the extent passes, the 3072-pixel frame not
    assert list(r.status) == [Status.CORRUPT] * 2 and r.errors[0].startswith("avif: cannot decode the image")
    r = mmcore.decode_batch([data], max_pixels=3072)
    assert r.status[0] == Status.OK and r.images[0].shape == (24, 32, 3)


def test_brands() -> None:
    """AVIF by its ftyp brands, whatever the build; HEIF's brands are a named UNSUPPORTED."""
    heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(64)
    r = mmcore.decode_batch([heic])
    assert r.status[0] == Status.UNSUPPORTED and "HEIF images are not supported" in r.errors[0]
    generic = b"\0\0\0\x18ftypmif1\0\0\0\0mif1avif" + bytes(64)  # AVIF as a compatible brand
    assert mmcore.image_info(generic)["format"] == "avif"
    assert mmcore.image_info(b"\0\0\0\x14ftypmif1\0\0\0\0mif1" + bytes(64))["format"] == "unknown"
    info = mmcore.image_info(b"\0\0\0\x18ftypavif")  # 12 bytes of a truncated AVIF
    assert info["format"] == "avif" and info["status"] != Status.OK and info["error"]


@pytest.mark.skipif(HAVE_LIBAVIF, reason="this build has libavif")
def test_without_libavif_avif_is_unsupported() -> None:
    r = mmcore.decode_batch([(DATA / "gray400.avif").read_bytes()])
    assert r.status[0] == Status.UNSUPPORTED and "built without libavif" in r.errors[0]


@needs_libavif
@needs_pillow
@pytest.mark.corpus
def test_corpus_photos_as_avif_equal_pillow_and_imagehash() -> None:
    imagehash = pytest.importorskip("imagehash")
    files = corpus_files("jpeg")[::12]
    datas = []
    for i, f in enumerate(files):
        with Image.open(f) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            im.thumbnail((480, 480))
            buf = io.BytesIO()
            im.save(buf, "AVIF", quality=(40, 60, 85)[i % 3], subsampling=("4:2:0", "4:4:4")[i % 2])
            datas.append(buf.getvalue())
    r = mmcore.hash_batch(datas, kinds=("phash", "dhash"), mode="exact", threads=2)
    assert r.ok.all(), r.errors
    for i, data in enumerate(datas):
        assert np.array_equal(mmcore.decode(data), _pillow(data, "RGB")), files[i].name
        with Image.open(io.BytesIO(data)) as im:
            assert r.hex("phash")[i] == str(imagehash.phash(im)), files[i].name
            assert r.hex("dhash")[i] == str(imagehash.dhash(im)), files[i].name
