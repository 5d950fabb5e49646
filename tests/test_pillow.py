"""Pillow beside mmcore's decoders: Pillow images as hash sources (what imagehash takes) and
``fallback="pillow"`` of hash_batch, decode_batch and thumbnail_batch for the formats mmcore does
not decode. Oracles: imagehash
and pdqhash on the same Pillow image, and mmcore's own result for the same pixels stored as a PNG
(hashes in every mode, thumbnails with every geometry)."""

from __future__ import annotations

import functools
import io
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")
imagehash = pytest.importorskip("imagehash")

from conftest import CORPUS, run_bench_script  # noqa: E402
from test_hash import KINDS, ORACLES  # noqa: E402

import mmcore  # noqa: E402
from mmcore import _core  # noqa: E402
from mmcore import _pillow as fb  # noqa: E402
from mmcore.image import FILTERS  # noqa: E402

#: Pillow modes whose imagehash result mmcore gives (the colour spaces: test_colour_spaces_are_hashed_as_rgb).
MODES = ("1", "L", "LA", "P", "PA", "I", "I;16", "I;16B", "F", "RGB", "RGBA", "RGBa", "RGBX", "CMYK")


@functools.cache
def photos() -> list[np.ndarray]:
    """Real photos: the package's decodable demo photos and, where the corpus is, some of its
    JPEGs (one over 512 px, so PDQ's reference squash is exercised)."""
    out = []
    for src in mmcore.demo_images():
        if mmcore.image_info(src)["status"] == mmcore.Status.OK:
            out.append(np.asarray(Image.open(src).convert("RGB")))
    jpeg = CORPUS / "jpeg"
    if jpeg.is_dir():
        for p in sorted(jpeg.iterdir())[:40:10]:
            im = Image.open(p).convert("RGB")
            im.thumbnail((700, 700))
            out.append(np.asarray(im))
    return out


def encode(img: Any, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def as_mode(a: np.ndarray, mode: str) -> Any:
    rgb = Image.fromarray(a)
    return rgb.convert("P").convert("PA") if mode == "PA" else rgb.convert(mode)


def imagehash_int(kind: str, im: Any) -> int:
    return int(str(ORACLES[kind](im)), 16)


def pdqhash_hex(rgb: np.ndarray) -> tuple[str, int]:
    pdqhash = pytest.importorskip("pdqhash")
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex(), int(quality)


# -- Pillow images as sources ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_pillow_images_give_imagehash_bits(mode: str) -> None:
    """Every kind of a Pillow image of each mode equals imagehash's on that image, through
    hash_batch and the single functions; PDQ's full mode equals pdqhash.compute on its RGB
    conversion, the reference mode mmcore's reference of the same array."""
    ims = [as_mode(a, mode) for a in photos()]
    r = mmcore.hash_batch(ims, kinds=(*KINDS, "pdq"))
    full = mmcore.hash_batch(ims, kinds=("pdq",), mode="full")
    assert r.ok.all() and full.ok.all(), r.errors
    for i, im in enumerate(ims):
        for kind in KINDS:
            want = imagehash_int(kind, im)
            assert int(r[kind][i]) == want, (mode, i, kind)
            assert getattr(mmcore, kind)(im) == want
        rgb = np.asarray(im.convert("RGB"))
        assert (full.hex("pdq")[i], int(full["pdq_quality"][i])) == pdqhash_hex(rgb), (mode, i)
        h, q = mmcore.pdq(im)
        assert (bytes(r["pdq"][i]), int(r["pdq_quality"][i])) == (h, q)
        grey = im.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "F")
        assert (h, q) == mmcore.pdq(np.asarray(im.convert("L" if grey else "RGB")))


def _files() -> list[Path]:
    files = [Path(p) for p in mmcore.demo_images()]
    for sub in ("jpeg", "png", "webp", "gif", "odd"):
        d = CORPUS / sub
        if d.is_dir():
            files += sorted(p for p in d.iterdir() if p.is_file())[:12]
    return files


def test_opened_files_hash_as_their_paths() -> None:
    """``Image.open(path)`` (loaded lazily, here on the call's threads) hashes as ``path`` does in
    exact mode (which never turns an image), for every file both Pillow and mmcore read."""
    files = _files()
    by_path = mmcore.hash_batch([str(f) for f in files], kinds=("phash", "dhash", "pdq"), threads=2)
    opened, kept = [], []
    for i, f in enumerate(files):
        try:
            im = Image.open(f)
            im.load()
        except Exception:
            continue
        if by_path.ok[i] and im.mode not in ("YCbCr",):
            opened.append(Image.open(f))  # not loaded yet: hash_batch loads it
            kept.append(i)
    assert len(kept) >= 5
    r = mmcore.hash_batch(opened, kinds=("phash", "dhash", "pdq"), threads=2)
    assert r.ok.all(), r.errors
    for k in ("phash", "dhash", "pdq_quality"):
        assert r[k].tolist() == by_path[k][kept].tolist(), k
    assert np.array_equal(r["pdq"], by_path["pdq"][kept])


def test_an_image_pillow_cannot_load_gets_a_status() -> None:
    """A truncated JPEG that ``Image.open`` accepted (it reads the header only): CORRUPT with
    Pillow's reason in a batch, the other records hashed; DecodeError from a single call."""
    a = photos()[0]
    blob = encode(Image.fromarray(a), "JPEG", quality=90)
    cut = Image.open(io.BytesIO(blob[: len(blob) // 2]))
    good = Image.fromarray(a)
    r = mmcore.hash_batch([good, cut, blob], kinds=("phash",), thumbnail=32)
    assert r.status.tolist() == [mmcore.Status.OK, mmcore.Status.CORRUPT, mmcore.Status.OK]
    assert "Pillow could not load the image" in r.errors[1] and "truncated" in r.errors[1]
    assert int(r["phash"][0]) == imagehash_int("phash", good)
    assert r.thumbnails is not None and r.thumbnails.status[1] == mmcore.Status.CORRUPT
    with pytest.raises(mmcore.DecodeError, match="truncated") as e:
        mmcore.phash(Image.open(io.BytesIO(blob[: len(blob) // 2])))
    assert e.value.status == mmcore.Status.CORRUPT


def test_pillow_images_mixed_with_other_sources() -> None:
    """Pillow images among bytes, arrays and None keep their places; one image object given twice
    is loaded once and hashed twice; like arrays, they get no thumbnail (a status saying so)."""
    a, b = photos()[0], photos()[1]
    im = Image.open(io.BytesIO(encode(Image.fromarray(b), "PNG")))
    srcs = [im, encode(Image.fromarray(a), "PNG"), None, im, a]
    r = mmcore.hash_batch(srcs, kinds=("phash", "colorhash"), thumbnail=32)
    assert r.status.tolist()[:2] == [mmcore.Status.OK] * 2 and r.ok[3:].all()
    assert r.status[2] != mmcore.Status.OK
    want_b, want_a = imagehash_int("phash", Image.fromarray(b)), imagehash_int("phash", Image.fromarray(a))
    assert r["phash"].tolist() == [want_b, want_a, 0, want_b, want_a]
    assert r.thumbnails is not None
    assert r.thumbnails.status[0] == mmcore.Status.UNSUPPORTED and r.thumbnails.status[1] == mmcore.Status.OK
    assert "not from a decoded array" in (r.thumbnails.errors[0] or "")


@pytest.mark.parametrize("mode", ["YCbCr", "HSV", "LAB"])
def test_colour_spaces_are_hashed_as_rgb(mode: str) -> None:
    """A YCbCr, HSV or LAB image is hashed from its RGB conversion (documented: imagehash takes a
    YCbCr image's Y plane, an HSV image's own planes for colorhash, and fails on LAB)."""
    for a in photos()[:3]:
        im = Image.fromarray(a).convert(mode)
        rgb = np.asarray(im.convert("RGB"))
        r = mmcore.hash_batch([im, rgb], kinds=(*KINDS, "pdq"))
        for k in r.columns:
            assert np.array_equal(r[k][0], r[k][1]), (mode, k)


@pytest.mark.parametrize("mode", ["exact", "full", "fast"])
def test_a_fourth_channel_is_ignored_by_every_hash(mode: str) -> None:
    """An HxWx4 array hashes as its first three channels, whatever the fourth holds, for every kind
    and mode, dihedral PDQ too (what hashing a Pillow image's RGBX memory as it is relies on)."""
    rng = np.random.default_rng(4)
    rgb = [
        *photos()[:4],
        *(rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(1, 1), (3, 2), (600, 900)]),
    ]
    rgba = [np.dstack([a, rng.integers(0, 256, a.shape[:2], dtype=np.uint8)]) for a in rgb]
    kinds = (*KINDS, "pdq")
    r3 = mmcore.hash_batch(rgb, kinds=kinds, mode=mode, dihedral=True)
    r4 = mmcore.hash_batch(rgba, kinds=kinds, mode=mode, dihedral=True)
    assert r3.ok.all() and r4.ok.all()
    assert sorted(r3.columns) == sorted(r4.columns)
    for k in r3.columns:
        assert np.array_equal(r3[k], r4[k]), k


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "RGBX", "L", "P", "CMYK", "1"])
def test_pillow_pixels_are_lent_not_copied(mode: str) -> None:
    """Pillow's own memory is hashed where it lends it (Arrow export): RGB / RGBA / RGBX as a
    read-only HxWx4 view, L as HxW, other modes a view of their conversion, which outlives the
    converted image; the same pixels as pixels() (imagehash's array) and the same hashes."""
    import gc

    a = photos()[0]
    im = as_mode(a, mode)
    v = fb.hash_pixels(im)
    want = fb.pixels(im)
    assert not v.flags.writeable and not v.flags.owndata
    assert v.shape[:2] == want.shape[:2] and v.ndim == (2 if want.ndim == 2 else 3)
    assert np.array_equal(v[..., :3] if v.ndim == 3 else v, want)
    del im
    gc.collect()
    litter = [Image.new("RGBA", (a.shape[1], a.shape[0]), (7, 7, 7, 7)) for _ in range(20)]
    assert np.array_equal(v[..., :3] if v.ndim == 3 else v, want), "the view outlived Pillow's memory"
    del litter
    r = mmcore.hash_batch([v, want], kinds=(*KINDS, "pdq"))
    for k in r.columns:
        assert np.array_equal(r[k][0], r[k][1]), k


def test_pillow_pixels_copied_where_not_lent(monkeypatch: pytest.MonkeyPatch) -> None:
    """An image stored in more than one of Pillow's blocks (over 16 MiB), and any image with a
    Pillow without the Arrow export, is copied (pixels()) and hashes the same."""
    rng = np.random.default_rng(5)
    big = Image.fromarray(rng.integers(0, 256, (1500, 3000, 3), dtype=np.uint8))  # 18 MB as RGBX
    v = fb.hash_pixels(big)
    assert v.shape == (1500, 3000, 3)  # pixels(): the copy (a lent view is HxWx4)
    small = as_mode(photos()[0], "RGB")
    lent = mmcore.hash_batch([big, small], kinds=("phash", "pdq"))
    monkeypatch.delattr(Image.Image, "__arrow_c_array__")
    assert fb.hash_pixels(small).shape == (*photos()[0].shape[:2], 3)
    copied = mmcore.hash_batch([big, small], kinds=("phash", "pdq"))
    assert lent.ok.all() and copied.ok.all()
    for k in lent.columns:
        assert np.array_equal(lent[k], copied[k]), k
    assert int(lent["phash"][0]) == imagehash_int("phash", big)


def test_arrow_pixels_refuses_other_layouts() -> None:
    """_core.arrow_pixels takes only a Pillow-shaped export: plain uint8 values or lists of four,
    width x height of them, no nulls, no offset; anything else is a ValueError (hash_pixels never
    hands it one), never a view of the wrong memory."""
    pa = pytest.importorskip("pyarrow")

    def export(arr: Any) -> tuple[Any, Any]:
        return arr.__arrow_c_array__()  # type: ignore[no-any-return]

    ok = pa.array(np.arange(6, dtype=np.uint8))
    assert _core.arrow_pixels(*export(ok), 3, 2).tolist() == [[0, 1, 2], [3, 4, 5]]
    four = pa.FixedSizeListArray.from_arrays(pa.array(np.arange(24, dtype=np.uint8)), 4)
    assert _core.arrow_pixels(*export(four), 3, 2).shape == (2, 3, 4)
    bad = [
        (pa.array(np.arange(6, dtype=np.int32)), 3, 2),
        (pa.FixedSizeListArray.from_arrays(pa.array(np.arange(18, dtype=np.uint8)), 3), 3, 2),
        (ok, 2, 2),
        (ok, 7, 1),
        (pa.array([1, None, 3, 4, 5, 6], pa.uint8()), 3, 2),
        (pa.array(np.arange(8, dtype=np.uint8)).slice(2), 3, 2),
        (pa.FixedSizeListArray.from_arrays(pa.array(np.arange(28, dtype=np.uint8)), 4).slice(1), 3, 2),
    ]
    for arr, w, h in bad:
        with pytest.raises(ValueError, match="arrow_pixels"):
            _core.arrow_pixels(*export(arr), w, h)
    with pytest.raises(ValueError, match="at least 1x1"):
        _core.arrow_pixels(*export(ok), 0, 6)
    schema, array = export(ok)
    with pytest.raises(ValueError):  # capsules swapped: PyCapsule_GetPointer's own error
        _core.arrow_pixels(array, schema, 3, 2)


def test_decode_calls_say_where_a_pillow_image_goes() -> None:
    """decode / thumbnail calls take encoded images: a Pillow image is a TypeError naming
    mmcore.resize (and that the hash functions take it)."""
    im = Image.new("RGB", (10, 10))
    calls = (
        lambda: mmcore.decode(im),
        lambda: mmcore.thumbnail(im, short_side=4),
        lambda: mmcore.decode_batch([im]),
        lambda: mmcore.thumbnail_batch([b"", im], short_side=4),
        lambda: mmcore.image_info(im),
    )
    for call in calls:
        with pytest.raises(TypeError, match=r"Pillow image is decoded pixels.*mmcore\.resize"):
            call()


def test_is_image_does_not_import_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PIL.Image imported nothing is a Pillow image (and it is not imported to find out)."""
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    assert not fb.is_image(Image.new("RGB", (2, 2)))
    monkeypatch.undo()
    assert fb.is_image(Image.new("RGB", (2, 2))) and not fb.is_image(np.zeros((2, 2), np.uint8))


# -- fallback="pillow" ----------------------------------------------------------------------------

#: Lossless encodings in formats mmcore does not decode (Pillow format, options).
LOSSLESS = [
    ("BMP", {}),
    ("TIFF", {"compression": "tiff_lzw"}),
    ("PPM", {}),
    ("JPEG2000", {}),  # Pillow's default is the reversible (lossless) wavelet
]


@pytest.mark.parametrize("mode", ["exact", "full", "fast"])
@pytest.mark.parametrize(("fmt", "opts"), LOSSLESS, ids=[f for f, _ in LOSSLESS])
def test_fallback_gives_the_png_result(fmt: str, opts: dict[str, Any], mode: str, tmp_path: Path) -> None:
    """The same pixels as a PNG (decoded by mmcore) and in another format, as bytes and as paths
    (decoded by Pillow): the same hashes, dihedral PDQ variants and thumbnails; without the
    fallback the other format is UNSUPPORTED."""
    pics = photos()
    pngs = [encode(Image.fromarray(a), "PNG") for a in pics]
    others = [encode(Image.fromarray(a), fmt, **opts) for a in pics]
    paths = []
    for i, blob in enumerate(others):
        p = tmp_path / f"{i}.{fmt.lower()}"
        p.write_bytes(blob)
        paths.append(p)
    kw: dict[str, Any] = {"kinds": (*KINDS, "pdq"), "mode": mode, "dihedral": True, "thumbnail": 48}
    want = mmcore.hash_batch(pngs, **kw)
    assert want.ok.all(), want.errors
    for srcs in (others, paths):
        got = mmcore.hash_batch(srcs, fallback="pillow", **kw)
        assert got.ok.all(), got.errors
        for k in want.columns:
            assert np.array_equal(got[k], want[k]), (fmt, mode, k)
        assert got.thumbnails is not None and want.thumbnails is not None
        assert got.thumbnails.ok.all()
        for g, w in zip(got.thumbnails.images, want.thumbnails.images, strict=True):
            assert np.array_equal(g, w)
    plain = mmcore.hash_batch(others, kinds=("phash",))
    assert set(plain.status.tolist()) == {mmcore.Status.UNSUPPORTED}


THUMBNAILS = [
    {"short_side": 40},
    {"short_side": 40, "filter": "area", "color": "gray"},
    {"fit": (50, 30)},
    {"crop": (36, 36)},
    {"crop": (60, 20), "filter": "bicubic"},
    {"short_side": 5000, "upscale": False},
    {"fit": (900, 900)},  # upscaled
]


@pytest.mark.parametrize("options", THUMBNAILS, ids=[str(o) for o in THUMBNAILS])
@pytest.mark.parametrize("orientation", [1, 6, 7])
def test_fallback_thumbnails_equal_thumbnail_batch(
    options: dict[str, Any], orientation: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A BMP Pillow reads with an EXIF orientation against a PNG of the same pixels and
    orientation: the thumbnails thumbnail_batch makes of the PNG, for each geometry, colour and
    filter, with exif_orientation on and off."""
    pics = photos()[:3]
    exif = Image.Exif()
    exif[0x0112] = orientation
    pngs = [encode(Image.fromarray(a), "PNG", exif=exif) for a in pics]
    bmps = [encode(Image.fromarray(a), "BMP") for a in pics]
    monkeypatch.setattr(fb, "_orientation", lambda im: orientation)
    for turn in (True, False):
        opts = {**options, "exif_orientation": turn}
        want = mmcore.thumbnail_batch(pngs, **opts)
        got = mmcore.hash_batch(bmps, kinds=("dhash",), fallback="pillow", thumbnail=opts).thumbnails
        assert got is not None and got.ok.all() and want.ok.all(), (got.errors, want.errors)
        for g, w in zip(got.images, want.images, strict=True):
            assert g.shape == w.shape and np.array_equal(g, w), (options, orientation, turn)


def test_fallback_thumbnail_pixel_limit() -> None:
    """A thumbnail over its pixel limit is TOO_LARGE, as thumbnail_batch says of the PNG; the
    hashes are still made (their own limit)."""
    a = photos()[0]
    png, bmp = encode(Image.fromarray(a), "PNG"), encode(Image.fromarray(a), "BMP")
    for opts in ({"short_side": 64, "max_pixels": 1000}, {"crop": (400, 10), "max_pixels": 3000}):
        want = mmcore.thumbnail_batch([png], **opts)
        r = mmcore.hash_batch([bmp], kinds=("phash",), fallback="pillow", thumbnail=opts)
        assert r.ok.all() and r.thumbnails is not None
        assert r.thumbnails.status.tolist() == want.status.tolist() == [mmcore.Status.TOO_LARGE]
        assert "over the limit" in (r.thumbnails.errors[0] or "")


def test_fallback_statuses() -> None:
    """What Pillow cannot read keeps UNSUPPORTED (mmcore's reason and Pillow's); a damaged file
    of a format Pillow knows is CORRUPT; over max_pixels TOO_LARGE before its pixels are read;
    arrays, good files and None records are untouched."""
    a = photos()[0]
    tif = encode(Image.fromarray(a), "TIFF", compression="tiff_lzw")
    damaged = tif[: len(tif) // 2]
    junk_tiff = b"II*\x00" + bytes(60)
    jxl = b"\xff\x0a" + bytes(40)
    png = encode(Image.fromarray(a), "PNG")
    srcs: list[Any] = [tif, damaged, junk_tiff, jxl, png, a, None]
    r = mmcore.hash_batch(srcs, kinds=("phash",), fallback="pillow")
    plain = mmcore.hash_batch(srcs, kinds=("phash",))
    s = mmcore.Status
    assert r.status[0] == s.OK and plain.status[0] == s.UNSUPPORTED
    assert r.status[1] in (s.CORRUPT, s.UNSUPPORTED) and "Pillow" in (r.errors[1] or "")
    assert r.status[2] == s.UNSUPPORTED and "Pillow cannot read it either" in (r.errors[2] or "")
    assert r.status[3] == s.UNSUPPORTED and r.errors[3].startswith(plain.errors[3] or "")
    assert r.status[4:].tolist() == plain.status[4:].tolist() and r.errors[4:] == plain.errors[4:]
    assert r["phash"][4:].tolist() == plain["phash"][4:].tolist()
    big = mmcore.hash_batch([tif], kinds=("phash",), fallback="pillow", max_pixels=1000)
    assert big.status[0] == s.TOO_LARGE and "over the limit of 1000" in (big.errors[0] or "")
    broken = encode(Image.fromarray(a), "BMP")[:100]
    r = mmcore.hash_batch([broken], kinds=("phash",), fallback="pillow")
    assert r.status[0] == s.CORRUPT and "BMP image that Pillow cannot decode" in (r.errors[0] or "")


def test_single_calls_say_how_to_hash_other_formats() -> None:
    """A single call on a TIFF says that Pillow reads it and how to hash it from Pillow (the
    Pillow image it names gives imagehash's bits); a JPEG XL's message has no such hint."""
    a = photos()[0]
    tif = encode(Image.fromarray(a), "TIFF")
    with pytest.raises(mmcore.DecodeError, match=r"TIFF images are not supported.*Pillow reads it") as e:
        mmcore.phash(tif)
    assert e.value.status == mmcore.Status.UNSUPPORTED and "fallback" in str(e.value)
    assert mmcore.phash(Image.open(io.BytesIO(tif))) == imagehash_int("phash", Image.fromarray(a))
    with pytest.raises(mmcore.DecodeError, match="JPEG XL") as e:
        mmcore.pdq(b"\xff\x0a" + bytes(40))
    assert "Pillow" not in str(e.value)
    for call in (mmcore.decode, lambda b: mmcore.thumbnail(b, short_side=8)):
        with pytest.raises(mmcore.DecodeError, match=r"TIFF images are not supported.*fallback=") as e:
            call(tif)
        assert e.value.status == mmcore.Status.UNSUPPORTED


def test_fallback_argument_and_missing_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="fallback must be None or 'pillow'"):
        mmcore.hash_batch([b""], fallback="magick")  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(ImportError, match=r"mmcore\[fallback\]"):
        mmcore.hash_batch([b""], fallback="pillow")
    assert mmcore.hash_batch([b""]).status[0] != mmcore.Status.OK  # no Pillow needed without it


# -- decode_batch / thumbnail_batch --------------------------------------------------------------

DECODES = [
    {},
    {"color": "gray"},
    {"alpha": "keep"},
    {"exif_orientation": False},
    {"target": 100},
    {"target": (64, 48)},
    {"target": (64, 48), "color": "gray", "filter": "area"},
    {"target": (30, 30), "alpha": "keep", "filter": "bicubic"},
]


@pytest.mark.parametrize("options", DECODES, ids=[str(o) for o in DECODES])
@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_decode_batch_fallback_gives_the_png_pixels(
    options: dict[str, Any], mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same pixels (RGB, grey, RGBA with a varying alpha) with an EXIF orientation as a PNG
    (decoded by mmcore) and as a TIFF (decoded by Pillow, its orientation tag read the same way):
    decode_batch gives the same arrays for every colour, alpha, orientation and target option."""
    pics = photos()[:3]
    ims = []
    for a in pics:
        alpha = (np.add.outer(np.arange(a.shape[0]), np.arange(a.shape[1])) % 256).astype(np.uint8)
        im = Image.fromarray(a)
        ims.append(Image.fromarray(np.dstack([a, alpha]), "RGBA") if mode == "RGBA" else im.convert(mode))
    exif = Image.Exif()
    exif[0x0112] = 6
    pngs = [encode(im, "PNG", exif=exif) for im in ims]
    tifs = [encode(im, "TIFF", compression="tiff_lzw") for im in ims]
    want = mmcore.decode_batch(pngs, **options)
    monkeypatch.setattr(fb, "_orientation", lambda im: 6)
    got = mmcore.decode_batch(tifs, fallback="pillow", **options)
    assert want.ok.all() and got.ok.all(), got.errors
    for g, w in zip(got.images, want.images, strict=True):
        assert g.shape == w.shape and np.array_equal(g, w), (mode, options)
    plain = mmcore.decode_batch(tifs, **options)
    assert set(plain.status.tolist()) == {mmcore.Status.UNSUPPORTED}


@pytest.mark.parametrize("options", THUMBNAILS, ids=[str(o) for o in THUMBNAILS])
def test_thumbnail_batch_fallback_gives_the_png_thumbnails(options: dict[str, Any]) -> None:
    pics = photos()[:3]
    pngs = [encode(Image.fromarray(a), "PNG") for a in pics]
    others = [
        encode(Image.fromarray(a), fmt) for a, fmt in zip(pics, ("BMP", "PPM", "JPEG2000"), strict=True)
    ]
    want = mmcore.thumbnail_batch(pngs, **options)
    got = mmcore.thumbnail_batch(others, fallback="pillow", **options)
    assert want.ok.all() and got.ok.all(), got.errors
    for g, w in zip(got.images, want.images, strict=True):
        assert g.shape == w.shape and np.array_equal(g, w), options


def test_batch_fallback_statuses_and_out_arrays() -> None:
    """Into a caller's array: a Pillow-decoded record is written there (images[i] is out[i]), a
    failed one left at zeros with Pillow's and mmcore's reasons; mmcore's own records and the
    pixel limits as without the fallback."""
    a = photos()[0]
    tif = encode(Image.fromarray(a), "TIFF")
    png = encode(Image.fromarray(a), "PNG")
    junk = b"II*\x00" + bytes(60)
    cut = encode(Image.fromarray(a), "BMP")[:200]
    srcs = [tif, junk, png, cut, None]
    for call, kw in (
        (mmcore.decode_batch, {"target": (40, 30)}),
        (mmcore.thumbnail_batch, {"crop": (40, 30)}),
    ):
        out = np.full((5, 30, 40, 3), 9, np.uint8)
        r = call(srcs, fallback="pillow", out=out, **kw)  # type: ignore[operator]
        plain = call(srcs, **kw)  # type: ignore[operator]
        s = mmcore.Status
        assert r.status.tolist()[:4] == [s.OK, s.UNSUPPORTED, s.OK, s.CORRUPT]
        assert r.status[4] == plain.status[4] and r.errors[2:5:2] == plain.errors[2:5:2]
        assert np.shares_memory(r.images[0], out) and np.array_equal(out[0], out[2])
        assert not out[1].any() and not out[3].any()
        assert "Pillow cannot read it either" in (r.errors[1] or "")
        assert "BMP image that Pillow cannot decode" in (r.errors[3] or "")
    big = mmcore.decode_batch([tif], fallback="pillow", max_pixels=1000)
    assert big.status[0] == mmcore.Status.TOO_LARGE and "over the limit of 1000" in (big.errors[0] or "")
    with pytest.raises(ValueError, match="fallback must be None or 'pillow'"):
        mmcore.thumbnail_batch([tif], short_side=8, fallback="magick")  # type: ignore[arg-type]


# -- the crop of a resize (the fallback thumbnails' centre crop) ------------------------------------


@pytest.mark.parametrize("filt", sorted(FILTERS))
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_resize_crop_equals_resize_then_crop(filt: str, channels: int) -> None:
    rng = np.random.default_rng(channels)
    code = FILTERS[filt]
    for _ in range(6):
        h, w = (int(v) for v in rng.integers(3, 300, 2))
        a = rng.integers(0, 256, (h, w, channels) if channels > 1 else (h, w), dtype=np.uint8)
        rw, rh = (int(v) for v in rng.integers(2, 400, 2))
        ow, oh = int(rng.integers(1, rw + 1)), int(rng.integers(1, rh + 1))
        x0, y0 = (rw - ow) // 2, (rh - oh) // 2
        whole = _core.resize(a, rw, rh, code)
        assert np.array_equal(_core.resize(a, ow, oh, code, -1, rw, rh), whole[y0 : y0 + oh, x0 : x0 + ow])
    with pytest.raises(ValueError, match="crop window must fit"):
        _core.resize(a, 10, 10, code, -1, 5, 20)


def test_bench_pillow_smoke() -> None:
    """bench/bench_pillow.py runs and checks its hashes against imagehash and pdqhash (no timing
    asserted)."""
    pytest.importorskip("pdqhash")
    out = run_bench_script("bench_pillow.py", "--files", "3", "--repeat", "1", "--threads", "1")
    assert "| loaded |" in out and "| opened |" in out
    assert "checked: mmcore's pHash / dHash / aHash / PDQ equal" in out
