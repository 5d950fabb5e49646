"""imagehash's size parameters: ``hash_size`` (aHash, dHash, dHash-vertical, pHash, pHash-simple,
wHash), ``highfreq_factor`` (pHash, pHash-simple) and ``binbits`` (colorhash), bit for bit against
imagehash itself on real photos and on images built to tie; pHash's DCT at every supported length
against scipy's; columns, hex, Hamming distances and the errors for sizes out of range."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

imagehash = pytest.importorskip("imagehash")
Image = pytest.importorskip("PIL.Image")

from conftest import CORPUS, run_cpp_test  # noqa: E402
from test_hash import ORACLES as ORACLE  # noqa: E402

import mmcore  # noqa: E402
from mmcore import _core  # noqa: E402


@functools.cache
def images() -> list[Any]:
    """Real photos (the demo photos; some corpus JPEGs and PNGs where the corpus is), random
    images of odd sizes down to 5x7, and flat, striped and stepped images whose coefficients tie."""
    out = []
    for src in mmcore.demo_images():
        if mmcore.image_info(src)["status"] == mmcore.Status.OK:
            out.append(Image.open(src).convert("RGB"))
    for sub, n in (("jpeg", 8), ("png", 4)):
        d = CORPUS / sub
        if d.is_dir():
            for p in sorted(d.iterdir())[: n * 10 : 10]:
                with Image.open(p) as im:
                    im = im.convert("RGB")
                    im.thumbnail((900, 900))
                    out.append(im)
    rng = np.random.default_rng(11)
    out += [
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        for h, w in [(7, 5), (40, 33), (300, 200)]
    ]
    out.append(Image.new("RGB", (50, 60), (10, 20, 30)))
    out.append(Image.fromarray((np.arange(64 * 48) % 7 * 30).astype(np.uint8).reshape(48, 64)).convert("RGB"))
    out.append(
        Image.fromarray(np.repeat(np.arange(0, 256, 32, dtype=np.uint8), 12)[None, :].repeat(40, 0)).convert(
            "RGB"
        )
    )
    return out


def arrays() -> list[np.ndarray]:
    return [np.asarray(im) for im in images()]


def check(kind: str, **sizes: int) -> None:
    """hash_batch on the arrays, the single function on a Pillow image and on encoded PNG bytes:
    imagehash's str() on every image."""
    ims = images()
    r = mmcore.hash_batch(arrays(), kinds=(kind,), **sizes)
    assert r.ok.all(), r.errors
    want = [str(ORACLE[kind](im, **sizes)) for im in ims]
    assert r.hex(kind) == want, (kind, sizes)
    bits = mmcore.hash_bits(kind, **{k: v for k, v in sizes.items() if k != "highfreq_factor"})
    assert len(want[0]) == (bits + 3) // 4
    fn = getattr(mmcore, kind)
    for im, w in zip(ims[:3], want[:3], strict=True):
        assert fn(im, **sizes) == int(w, 16)
        assert mmcore.hash_to_hex(fn(im, **sizes), bits) == w


@pytest.mark.parametrize("kind", ["ahash", "dhash", "dhash_vertical"])
@pytest.mark.parametrize("hash_size", [2, 3, 5, 7, 9, 12, 16, 32, 64])
def test_gradient_and_average_hashes_at_every_size(kind: str, hash_size: int) -> None:
    check(kind, hash_size=hash_size)


#: (hash_size, highfreq_factor): 4-, 2-, 3- and 5-smooth DCT lengths from 6 to 256.
PHASH_SIZES = [
    (16, 4), (32, 4), (4, 4), (2, 4), (8, 2), (8, 8), (16, 2), (64, 4),
    (12, 4), (10, 4), (5, 4), (15, 4), (3, 3), (12, 5),
]  # fmt: skip


@pytest.mark.parametrize("kind", ["phash", "phash_simple"])
@pytest.mark.parametrize(("hash_size", "highfreq_factor"), PHASH_SIZES)
def test_phash_at_every_size(kind: str, hash_size: int, highfreq_factor: int) -> None:
    check(kind, hash_size=hash_size, highfreq_factor=highfreq_factor)


@pytest.mark.parametrize(("hash_size", "highfreq_factor"), [(16, 1), (9, 1)])
def test_phash_with_highfreq_factor_1(hash_size: int, highfreq_factor: int) -> None:
    """The DCT of the hash_size square itself (phash_simple refuses it: see below)."""
    check("phash", hash_size=hash_size, highfreq_factor=highfreq_factor)


@pytest.mark.parametrize("hash_size", [2, 4, 16, 32, 64])
def test_whash_at_every_size(hash_size: int) -> None:
    """Including sizes over the image's natural scale (image_scale = hash_size, no decomposition
    left for the LL)."""
    check("whash", hash_size=hash_size)


@pytest.mark.parametrize("binbits", [1, 2, 4, 5, 8, 16])
def test_colorhash_at_every_binbits(binbits: int) -> None:
    check("colorhash", binbits=binbits)


def test_dct_equals_scipy_at_every_supported_length() -> None:
    """pHash's transform (scipy.fftpack.dct) at every length with no prime factor over 5 up to
    1024, to the last bit, on integer vectors with exact ties, constants, ramps and floats; other
    lengths refused."""
    fftpack = pytest.importorskip("scipy.fftpack")
    rng = np.random.default_rng(5)
    lengths = [n for n in range(1, 1025) if _smooth(n)]
    assert len(lengths) > 80 and {32, 48, 64, 40, 1024} <= set(lengths)
    for n in lengths:
        cases = [rng.integers(0, 256, n).astype(float) for _ in range(8)]
        cases += [
            np.full(n, 7.0),
            np.arange(n, dtype=float),
            rng.integers(0, 3, n).astype(float),
            rng.normal(0, 1e3, n),
        ]
        for x in cases:
            got, want = _core.dct2(x), fftpack.dct(x)
            assert np.array_equal(got.view(np.uint64), want.view(np.uint64)), n
    for n in (7, 14, 11, 1029, 0):
        with pytest.raises(ValueError, match="no prime factor over 5"):
            _core.dct2(np.zeros(n))


def _smooth(n: int) -> bool:
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


def test_encoded_sources_and_other_modes() -> None:
    """Encoded files give imagehash's bits on their Image.open (exact mode); fast and full modes,
    thumbnails and dihedral PDQ work beside a sized kind (every record a status, the sized
    columns' shapes), and a kind at its default sizes keeps its bits in a call with sized ones."""
    srcs = list(mmcore.demo_images())
    r = mmcore.hash_batch(srcs, kinds=("phash", "whash", "colorhash", "dhash"), hash_size=16, binbits=4)
    for i, s in enumerate(srcs):
        if r.ok[i]:
            with Image.open(s) as im:
                assert r.hex("phash")[i] == str(imagehash.phash(im, hash_size=16))
                assert r.hex("whash")[i] == str(imagehash.whash(im, hash_size=16))
                assert r.hex("colorhash")[i] == str(imagehash.colorhash(im, binbits=4))
    assert r["phash"].shape == (len(srcs), 32) and r["phash"].dtype == np.uint8
    assert r["colorhash"].dtype == np.uint64  # 56 bits fit
    plain = mmcore.hash_batch(srcs, kinds=("pdq", "colorhash"), hash_size=16)  # colorhash at binbits 3
    assert np.array_equal(plain["colorhash"], mmcore.hash_batch(srcs, kinds=("colorhash",))["colorhash"])
    for mode in ("fast", "full"):
        m = mmcore.hash_batch(
            srcs, kinds=("phash", "pdq"), hash_size=16, mode=mode, dihedral=True, thumbnail=32
        )
        assert m.status.tolist() == r.status.tolist()
        assert m["phash"].shape == (len(srcs), 32) and m.thumbnails is not None
        assert m["pdq_dihedral"].shape == (len(srcs), 8, 32)
    assert not r["phash"][~r.ok].any(), "failed records hold zeros"


def test_fast_mode_is_close_to_exact_at_16() -> None:
    """Fast mode at hash_size 16 (a 64x64 DCT, decoded at >= 128 px) stays near exact mode."""
    photos = [s for s in mmcore.demo_images() if mmcore.image_info(s)["status"] == mmcore.Status.OK]
    ex = mmcore.hash_batch(photos, kinds=("phash",), hash_size=16, exif_orientation=False)
    fa = mmcore.hash_batch(photos, kinds=("phash",), hash_size=16, mode="fast", exif_orientation=False)
    d = mmcore.hamming(ex["phash"], fa["phash"])
    assert (d <= 40).all(), d.tolist()  # of 256 bits


def test_default_sizes_unchanged() -> None:
    """hash_size=8, highfreq_factor=4, binbits=3 are the defaults: uint64 columns, the same bits."""
    a = arrays()
    kinds = ("ahash", "dhash", "dhash_vertical", "phash", "phash_simple", "whash", "colorhash")
    r0 = mmcore.hash_batch(a, kinds=kinds)
    r1 = mmcore.hash_batch(a, kinds=kinds, hash_size=8, highfreq_factor=4, binbits=3)
    for k in kinds:
        assert r1[k].dtype == np.uint64 and np.array_equal(r0[k], r1[k])
    assert r0.bits == {} and mmcore.hash_bits("phash") == 64 and mmcore.hash_bits("pdq") == 256


def test_small_sized_hashes_are_uint64_and_wide_ones_bytes() -> None:
    """Up to 64 bits a uint64 column (hash_size 2..8, binbits <= 4); beyond, big-endian rows."""
    a = arrays()[:4]
    r = mmcore.hash_batch(a, kinds=("dhash", "colorhash"), hash_size=5, binbits=2)
    assert r["dhash"].dtype == np.uint64 and r["colorhash"].dtype == np.uint64
    assert r.bits == {"dhash": 25, "colorhash": 28}
    assert [int(v) for v in r["dhash"]] == [mmcore.dhash(x, hash_size=5) for x in a]
    w = mmcore.hash_batch(a, kinds=("dhash", "colorhash"), hash_size=9, binbits=5)
    assert w["dhash"].shape == (4, 11) and w["colorhash"].shape == (4, 9)
    assert [int.from_bytes(bytes(v), "big") for v in w["dhash"]] == [mmcore.dhash(x, hash_size=9) for x in a]


def test_hamming_on_wide_hashes() -> None:
    """A 256-bit pHash as an int, as bytes rows and as imagehash's ImageHash difference."""
    ims = images()[:2]
    h = [mmcore.phash(im, hash_size=16) for im in ims]
    want = imagehash.phash(ims[0], hash_size=16) - imagehash.phash(ims[1], hash_size=16)
    assert mmcore.hamming(h[0], h[1]) == want
    r = mmcore.hash_batch([np.asarray(im) for im in ims], kinds=("phash",), hash_size=16)
    assert int(mmcore.hamming(r["phash"][0], r["phash"][1])) == want
    with pytest.raises(ValueError, match="int64"):
        mmcore.hamming(-(1 << 70), 0)
    # lists of wide ints, broadcasting as arrays do
    more = images()[:5]
    ints = [mmcore.phash(im, hash_size=16) for im in more]
    oracle = [imagehash.phash(im, hash_size=16) for im in more]
    got = mmcore.hamming(ints, ints[0])
    assert got.dtype == np.int64 and got.tolist() == [o - oracle[0] for o in oracle]
    rows = np.stack([np.frombuffer(i.to_bytes(32, "big"), np.uint8) for i in ints])  # the same hashes
    np.testing.assert_array_equal(mmcore.hamming(ints, ints[::-1]), mmcore.hamming(rows, rows[::-1]))
    with pytest.raises(ValueError, match="ints with ints"):
        mmcore.hamming(ints, r["phash"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: mmcore.phash(s, hash_size=1), "hash_size must be 2..64"),
        (lambda s: mmcore.ahash(s, hash_size=65), "hash_size must be 2..64"),
        (lambda s: mmcore.phash(s, hash_size=7), "no prime factor over 5"),
        (lambda s: mmcore.phash(s, highfreq_factor=0), "no prime factor over 5"),
        (lambda s: mmcore.phash(s, hash_size=64, highfreq_factor=32), "up to 1024"),
        (lambda s: mmcore.phash_simple(s, highfreq_factor=1), "highfreq_factor >= 2"),
        (lambda s: mmcore.whash(s, hash_size=12), "power of 2"),
        (lambda s: mmcore.colorhash(s, binbits=0), "binbits must be 1..16"),
        (lambda s: mmcore.colorhash(s, binbits=17), "binbits must be 1..16"),
        (lambda s: mmcore.hash_batch([s], kinds=("dhash",), hash_size=100), "hash_size must be 2..64"),
    ],
)
def test_sizes_out_of_range_are_refused(call: Any, message: str) -> None:
    """Refused before any decode, with the range; the sizes of kinds not asked for are not checked."""
    src = mmcore.demo_images()[0]
    with pytest.raises(ValueError, match=message):
        call(src)
    assert mmcore.hash_batch([src], kinds=("pdq",), hash_size=1).ok.all()
    with pytest.raises(TypeError, match="hash_size must be an int"):
        mmcore.phash(src, hash_size=16.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="binbits must be an int"):
        mmcore.hash_batch([src], binbits=True)  # type: ignore[arg-type]


def test_sizes_stay_on_the_cpu() -> None:
    with pytest.raises(ValueError, match="use device='cpu'"):
        mmcore.hash_batch([mmcore.demo_images()[0]], kinds=("phash",), hash_size=16, device="cuda")


def test_fallback_hashes_at_the_size_asked(tmp_path: Path) -> None:
    """fallback="pillow" hashes the records Pillow decodes at the same sizes (a TIFF's pHash at 16
    is imagehash's on its Image.open)."""
    im = images()[0]
    p = tmp_path / "a.tif"
    im.save(p, "TIFF")
    r = mmcore.hash_batch([str(p)], kinds=("phash", "colorhash"), hash_size=16, binbits=5, fallback="pillow")
    assert r.ok.all(), r.errors
    with Image.open(p) as t:
        assert r.hex("phash")[0] == str(imagehash.phash(t, hash_size=16))
        assert r.hex("colorhash")[0] == str(imagehash.colorhash(t, binbits=5))


def test_cpp_api(tmp_path: Path) -> None:
    """tests/cpp/test_hash_sizes.cpp: the C++ API's size checks (hash_bytes refuses before any
    decode), HashRecord::wide's widths, default kinds untouched beside sized ones, DctPlan(32)
    bit-identical to the specialised dct2_32."""
    assert "PASS" in run_cpp_test(tmp_path, "test_hash_sizes")
