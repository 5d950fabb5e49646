"""Perceptual hashes against their oracles: imagehash 4.3.2 on Pillow 13.0.0, pdqhash 0.2.8 and the
PDQ reference's regression set (../shared/corpus/pdq_ref)."""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import imagehash
import numpy as np
import pytest
from conftest import corpus_dir, corpus_index, run_cpp_test, run_with_backend
from PIL import Image

import mmcore

KINDS = ("ahash", "dhash", "dhash_vertical", "phash", "phash_simple", "whash", "colorhash")
ORACLES: dict[str, Callable[[Image.Image], Any]] = {
    "ahash": imagehash.average_hash,
    "dhash": imagehash.dhash,
    "dhash_vertical": imagehash.dhash_vertical,
    "phash": imagehash.phash,
    "phash_simple": imagehash.phash_simple,
    "whash": imagehash.whash,
    "colorhash": imagehash.colorhash,
}
BITS = {k: 64 for k in KINDS} | {"colorhash": 42}
# The imagehash oracle on a 20000x14000 grey image resizes it to 8192x8192 float64 wavelets:
# minutes and gigabytes for one file. Larger files are checked by the slow test below.
ORACLE_MAX_PIXELS = 50_000_000


def oracle_hex(img: Image.Image) -> dict[str, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {k: str(fn(img)) for k, fn in ORACLES.items()}


@cache
def pillow_files() -> tuple[Path, ...]:
    """Every corpus file (jpeg/, png/, webp/, odd/, pdq_ref/) that Pillow 13 decodes."""
    root = corpus_dir()
    files = [
        root / r["file"]
        for r in corpus_index()
        if r["category"] in ("jpeg", "png", "webp", "odd") and r["pillow_ok"] in ("1", "True")
    ]
    with open(root / "pdq_ref" / "manifest.csv", newline="") as f:
        files += [root / "pdq_ref" / r["filename"] for r in csv.DictReader(f)]
    return tuple(files)


@cache
def corpus_oracle() -> dict[Path, dict[str, str]]:
    out = {}
    for f in pillow_files():
        try:
            im = Image.open(f)
        except Image.DecompressionBombError:
            continue  # over Pillow's own limit: test_huge_image_exact_hashes
        with im:
            if im.width * im.height > ORACLE_MAX_PIXELS:
                continue
            out[f] = oracle_hex(im)
    return out


@cache
def corpus_mmcore() -> dict[Path, tuple[int, str | None, dict[str, str]]]:
    files = list(corpus_oracle())
    r = mmcore.hash_batch([str(f) for f in files], kinds=KINDS, mode="exact")
    cols = {k: r.hex(k) for k in KINDS}
    return {
        f: (int(r.status[i]), r.errors[i], {k: cols[k][i] or "" for k in KINDS}) for i, f in enumerate(files)
    }


@pytest.mark.corpus
@pytest.mark.parametrize("kind", KINDS)
def test_exact_equals_imagehash_on_corpus(kind: str) -> None:
    oracle = corpus_oracle()
    ours = corpus_mmcore()
    compared, mismatches, refused = 0, [], []
    for f, ref in oracle.items():
        status, error, got = ours[f]
        if status > mmcore.Status.OK_WARNING:
            refused.append((f.name, mmcore.Status(status).name, error))
            continue
        compared += 1
        if got[kind] != ref[kind]:
            mismatches.append((str(f.relative_to(corpus_dir())), ref[kind], got[kind]))
    assert not mismatches, f"{len(mismatches)}/{compared} differ from imagehash: {mismatches[:10]}"
    assert compared >= 1000
    # Every file Pillow decodes, mmcore decodes (lossless JPEG and GIF included).
    assert not refused, refused


@pytest.mark.corpus
def test_exact_equals_golden_csv() -> None:
    """The corpus's own golden values (imagehash 4.3.2, Pillow 13.0.0) for the PDQ images."""
    root = corpus_dir("pdq_ref")
    with open(root / "imagehash_golden_pillow13.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    cols = {"average_hash": "ahash"} | {k: k for k in KINDS if k != "ahash"}
    r = mmcore.hash_batch([str(root / row["file"]) for row in rows], kinds=KINDS)
    assert r.ok.all()
    for col, kind in cols.items():
        assert r.hex(kind) == [row[col] for row in rows], kind


def _random_images(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Noise, and blocky images with large flat areas (where near-ties live), 1/3/4 channels."""
    out = []
    for i in range(n):
        h, w = int(rng.integers(1, 300)), int(rng.integers(1, 300))
        extra = ((), (3,), (4,))[i % 3]
        if i % 2 == 0:
            block = int(rng.integers(2, 40))
            base = rng.integers(0, 256, size=(h // block + 1, w // block + 1, *extra), dtype=np.uint8)
            img = np.repeat(np.repeat(base, block, axis=0), block, axis=1)[:h, :w]
        else:
            img = rng.integers(0, 256, size=(h, w, *extra), dtype=np.uint8)
        out.append(np.ascontiguousarray(img))
    return out


def test_exact_equals_imagehash_on_arrays(rng: np.random.Generator) -> None:
    """Arrays are hashed as Pillow's L / RGB image of the same pixels (RGBA: alpha ignored)."""
    imgs = _random_images(rng, 120)
    r = mmcore.hash_batch(imgs, kinds=KINDS)
    assert r.ok.all(), r.errors
    for i, img in enumerate(imgs):
        pil = Image.fromarray(img[..., :3] if img.ndim == 3 else img)
        ref = oracle_hex(pil)
        for k in KINDS:
            assert r.hex(k)[i] == ref[k], (k, img.shape)


def _grey_rows_cases() -> dict[str, bytes]:
    """JPEGs whose RGB decode takes each route by which the grey kinds get their "L" rows: made
    during the decode (baseline 4:2:0 and 4:4:4, progressive, grey, a restart interval damaged so
    that the decode is redone with libjpeg's Huffman decoder), made after it (CMYK), and a PNG."""
    rng = np.random.default_rng(5)
    base = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    photo = Image.fromarray(np.repeat(np.repeat(base, 10, axis=0), 10, axis=1)).resize((301, 203))

    def save(im: Image.Image, fmt: str = "JPEG", **kw: Any) -> bytes:
        b = io.BytesIO()
        im.save(b, fmt, **kw)
        return b.getvalue()

    cases = {
        "baseline": save(photo, quality=90),
        "444": save(photo, quality=95, subsampling=0),
        "progressive": save(photo, quality=85, progressive=True),
        "grey": save(photo.convert("L"), quality=90),
        "cmyk": save(photo.convert("CMYK"), quality=90),
        "png": save(photo, "PNG"),
    }
    damaged = bytearray(save(photo, quality=90, restart_marker_rows=1))
    rst = [i for i in range(len(damaged) - 1) if damaged[i] == 0xFF and 0xD0 <= damaged[i + 1] <= 0xD7]
    a, b = rst[len(rst) // 2], rst[len(rst) // 2 + 1]
    damaged[a + 2 : b - 2] = bytes(b - 4 - a)
    cases["restart_damaged"] = bytes(damaged)
    return cases


def test_grey_kinds_from_an_rgb_decode_equal_imagehash_of_its_pixels() -> None:
    """With PDQ (or a thumbnail) in the same call the decode is RGB, and the grey kinds take Pillow's
    "L" of it, made row by row as the JPEG decode finishes rows: their bits equal imagehash of
    those RGB pixels (Pillow makes the "L"), and a call asking for the grey kinds alone."""
    grey_kinds = ("ahash", "dhash", "phash", "whash")
    for name, data in _grey_rows_cases().items():
        rgb = mmcore.decode(data, exif_orientation=False)
        ref = oracle_hex(Image.fromarray(rgb))
        for kinds in ((*grey_kinds, "pdq"), grey_kinds):
            r = mmcore.hash_batch([data], kinds=kinds)
            assert r.ok.all(), (name, r.errors)
            for k in grey_kinds:
                assert r.hex(k)[0] == ref[k], (name, kinds, k)
        t = mmcore.hash_batch([data], kinds=grey_kinds, thumbnail=64)
        for k in grey_kinds:
            assert t.hex(k)[0] == ref[k], (name, "thumbnail", k)


def test_pdq_squash_during_the_decode_equals_the_array_path() -> None:
    """Over 512 px, exact PDQ squashes to 512x512 (nearest); from a JPEG the squash rows are taken
    as the decode finishes their source rows. Hash and quality equal those of the decoded array
    (squashed after the decode), on sizes over 512 in width, height or both, and on a damaged
    restart interval (the decode redone from row 0)."""
    rng = np.random.default_rng(8)
    for w, h in [(513, 300), (1030, 700), (300, 1500), (2000, 13)]:
        base = rng.integers(0, 256, size=(h // 10 + 1, w // 10 + 1, 3), dtype=np.uint8)
        im = Image.fromarray(np.repeat(np.repeat(base, 10, axis=0), 10, axis=1)[:h, :w])
        datas = []
        for kw in (
            {"quality": 90},
            {"quality": 85, "progressive": True},
            {"quality": 90, "restart_marker_rows": 1},
        ):
            b = io.BytesIO()
            im.save(b, "JPEG", **kw)
            datas.append(b.getvalue())
        damaged = bytearray(datas[-1])
        rst = [i for i in range(len(damaged) - 1) if damaged[i] == 0xFF and 0xD0 <= damaged[i + 1] <= 0xD7]
        if len(rst) > 2:
            a, b2 = rst[len(rst) // 2], rst[len(rst) // 2 + 1]
            damaged[a + 2 : b2 - 2] = bytes(b2 - 4 - a)
            datas.append(bytes(damaged))
        for data in datas:
            for kinds in (("pdq",), ("phash", "pdq")):
                r = mmcore.hash_batch([data], kinds=kinds)
                assert r.ok.all(), r.errors
                ref = mmcore.hash_batch([mmcore.decode(data, exif_orientation=False)], kinds=kinds)
                assert r.hex("pdq")[0] == ref.hex("pdq")[0], (w, h, kinds)
                assert r["pdq_quality"][0] == ref["pdq_quality"][0], (w, h, kinds)


def test_bytes_path_and_array_agree(tmp_path: Path, rng: np.random.Generator) -> None:
    img = rng.integers(0, 256, size=(97, 130, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    path = tmp_path / "x.png"
    path.write_bytes(buf.getvalue())
    for kind in KINDS:
        fn = getattr(mmcore, kind)
        assert fn(img) == fn(buf.getvalue()) == fn(path) == fn(str(path)), kind
    assert mmcore.pdq(img) == mmcore.pdq(buf.getvalue()) == mmcore.pdq(path)


def test_single_functions_match_batch() -> None:
    files = mmcore.demo_images()[:7]  # 08 and 09 are the corrupt demo files
    for mode in ("exact", "fast"):
        r = mmcore.hash_batch(files, kinds=(*KINDS, "pdq"), mode=mode)
        for i, f in enumerate(files):
            for k in KINDS:
                assert getattr(mmcore, k)(f, mode=mode) == int(r[k][i]), (k, mode)
            pdq_mode = "reference" if mode == "exact" else mode
            h, q = mmcore.pdq(f, mode=pdq_mode)
            assert h == bytes(r["pdq"][i]) and q == int(r["pdq_quality"][i])


def test_cpp_dct_matches_scipy(tmp_path: Path) -> None:
    """tests/cpp/test_dct.cpp: pHash's DCT replays scipy.fftpack.dct's outputs bit for bit."""
    run_cpp_test(tmp_path, "test_dct")


def test_cpp_luma_variants_match_ref(tmp_path: Path) -> None:
    """tests/cpp/test_luma.cpp: the AVX2 Pillow-L rows equal the scalar ref on all 2^24 colours."""
    assert "PASS" in run_cpp_test(tmp_path, "test_luma")


def test_cpp_pdq_luma_variants_match_ref(tmp_path: Path) -> None:
    """tests/cpp/test_pdq_luma.cpp: PDQ's float luma rows (the reference's float32 and pdqhash's
    float64 formula) from every vector variant equal the scalar ref on all 2^24 colours, with 3
    and 4 channels, at every width 0-100 ending at an unreadable page."""
    assert "PASS" in run_cpp_test(tmp_path, "test_pdq_luma")


def test_cpp_workspace_contract(tmp_path: Path) -> None:
    """tests/cpp/test_workspace.cpp: a batch worker's scratch slots reuse what fits, never alias,
    and keep across records only the buffers of the retain size and more."""
    out = run_cpp_test(tmp_path, "test_workspace")
    assert "PASS" in out and "0 failures" in out


def test_cpp_pdq_box_kernels_match_a_line_walk(tmp_path: Path) -> None:
    """tests/cpp/test_pdq_box.cpp: PDQ's vector box kernels (rows, picked rows, columns) give
    every output bit for bit as a one-line-at-a-time box, for windows 1-17 and sizes that are and
    are not multiples of 8."""
    out = run_cpp_test(tmp_path, "test_pdq_box")
    assert "PASS" in out and " 0 failures" in out


def test_cpp_gpu_hash_kernel_emulated(tmp_path: Path) -> None:
    """tests/cpp/test_hash_gpu_emu.cpp: cuda/hash.cu's kernel code, run phase by phase on the CPU,
    gives hash_image's exact bits (any thread order, interleaved blocks, chunked scratch)."""
    assert "PASS" in run_cpp_test(tmp_path, "test_hash_gpu_emu")


def test_cpp_whash_colorhash_properties(tmp_path: Path) -> None:
    """tests/cpp/test_whash_colorhash.cpp without oracle files: its built-in property checks."""
    run_cpp_test(tmp_path, "test_whash_colorhash")


@pytest.mark.corpus
def test_cpp_pdq(tmp_path: Path) -> None:
    """tests/cpp/test_pdq.cpp: manifests through the C++ API, strided views and edge cases."""
    out = run_cpp_test(tmp_path, "test_pdq", str(corpus_dir()))
    assert "PASS" in out


# ---- PDQ ----


def _manifest(name: str) -> list[dict[str, str]]:
    with open(corpus_dir("pdq_ref") / name, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.corpus
def test_pdq_reference_mode_equals_manifest() -> None:
    rows = _manifest("manifest.csv")
    root = corpus_dir("pdq_ref")
    r = mmcore.hash_batch([str(root / row["filename"]) for row in rows], kinds=["pdq"], mode="reference")
    assert r.ok.all(), r.errors
    assert len(rows) == 49
    assert r.hex("pdq") == [row["expected_hash_hex"] for row in rows]
    assert r["pdq_quality"].tolist() == [int(row["quality"]) for row in rows]


@pytest.mark.corpus
def test_pdq_dihedral_equals_manifest() -> None:
    rows = _manifest("manifest_dihedral.csv")
    root = corpus_dir("pdq_ref")
    r = mmcore.hash_batch([str(root / row["filename"]) for row in rows], kinds=["pdq"], dihedral=True)
    names = ["orig", "rot90", "rot180", "rot270", "flipx", "flipy", "flipp", "flipm"]
    got = [[bytes(v).hex() for v in rec] for rec in r["pdq_dihedral"]]
    want = [[row[n] for n in names] for row in rows]
    assert sum(g == w for gs, ws in zip(got, want, strict=True) for g, w in zip(gs, ws, strict=True)) == 392
    # the single-image API returns the same 8
    hashes, q = mmcore.pdq(str(root / rows[0]["filename"]), dihedral=True)
    assert [h.hex() for h in hashes] == want[0] and q == int(rows[0]["quality"])


@pytest.mark.corpus
def test_pdq_full_mode_equals_pdqhash_manifest() -> None:
    rows = _manifest("manifest_fullres_pil.csv")
    root = corpus_dir("pdq_ref")
    r = mmcore.hash_batch([str(root / row["filename"]) for row in rows], kinds=["pdq"], mode="full")
    assert r.hex("pdq") == [row["hash_hex"] for row in rows]
    assert r["pdq_quality"].tolist() == [int(row["quality"]) for row in rows]


def _pdqhash_hex(rgb: np.ndarray) -> tuple[str, int]:
    pdqhash = pytest.importorskip("pdqhash")
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    # pdqhash returns the 256 bits as the reference's bit k = 255 - index (MSB of the hex first)
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex(), int(quality)


@pytest.mark.corpus
def test_pdq_full_mode_equals_pdqhash_on_corpus() -> None:
    pytest.importorskip("pdqhash")
    files = [f for f in pillow_files() if f in corpus_oracle()]
    r = mmcore.hash_batch([str(f) for f in files], kinds=["pdq"], mode="full")
    mismatches = []
    for i, f in enumerate(files):
        if not r.ok[i]:
            continue
        with Image.open(f) as im:
            want = _pdqhash_hex(np.asarray(im.convert("RGB")))
        got = (r.hex("pdq")[i], int(r["pdq_quality"][i]))
        if got != want:
            mismatches.append((f.name, want, got))
    assert not mismatches, f"{len(mismatches)} differ from pdqhash.compute: {mismatches[:5]}"


def test_pdq_small_and_flat_images() -> None:
    for shape in [(4, 100, 3), (100, 4), (1, 1, 3)]:
        h, q = mmcore.pdq(np.full(shape, 128, np.uint8))
        assert h == bytes(32) and q == 0
    flat = np.full((64, 64, 3), 200, np.uint8)
    h, q = mmcore.pdq(flat)  # a flat image is hashed (quality 0 says: do not trust it)
    assert q == 0
    noisy = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert mmcore.pdq(noisy)[1] > 50


# ---- robustness and API ----


@pytest.mark.corpus
def test_corrupt_files_give_statuses() -> None:
    files = sorted(str(p) for p in corpus_dir("corrupt").iterdir())
    r = mmcore.hash_batch(files, kinds=(*KINDS, "pdq"), threads=2)
    assert len(r) == len(files)
    bad = ~r.ok
    assert bad.sum() >= 0.9 * len(files)
    assert all(e for e, b in zip(r.errors, bad, strict=True) if b)
    assert (r["phash"][bad] == 0).all() and (r["pdq"][bad] == 0).all()


def test_bad_input_single_calls_raise_decode_error() -> None:
    with pytest.raises(mmcore.DecodeError) as e:
        mmcore.phash(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert e.value.status == mmcore.Status.CORRUPT
    with pytest.raises(mmcore.DecodeError):
        mmcore.pdq(b"")
    with pytest.raises(FileNotFoundError):
        mmcore.phash("/no/such/file.jpg")


def test_single_calls_take_the_pixel_limit() -> None:
    img = np.zeros((40, 50, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    with pytest.raises(mmcore.DecodeError) as e:
        mmcore.phash(buf.getvalue(), max_pixels=1000)
    assert e.value.status == mmcore.Status.TOO_LARGE
    with pytest.raises(mmcore.DecodeError):
        mmcore.pdq(buf.getvalue(), max_pixels=1000)
    assert mmcore.phash(buf.getvalue(), max_pixels=2000) == mmcore.phash(img)


def test_misuse_raises() -> None:
    with pytest.raises(TypeError, match="uint8"):
        mmcore.phash(np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match="channels"):
        mmcore.phash(np.zeros((8, 8, 2), np.uint8))
    with pytest.raises(ValueError, match="unknown hash kind"):
        mmcore.hash_batch([b""], kinds=["sha1"])
    with pytest.raises(ValueError, match="mode"):
        mmcore.phash(b"", mode="reference")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode"):
        mmcore.pdq(b"", mode="exact")  # type: ignore[arg-type]


def test_batch_never_raises_for_bad_records(rng: np.random.Generator) -> None:
    good = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    r = mmcore.hash_batch([b"junk", good, "/no/such/file", b""], kinds=("phash", "pdq"))
    assert r.status.tolist()[1] == mmcore.Status.OK
    assert [s > mmcore.Status.OK_WARNING for s in r.status.tolist()] == [True, False, True, True]
    assert r.errors[2] and "no/such/file" in r.errors[2]
    assert r["phash"][1] == mmcore.phash(good)


def test_hash_to_hex_and_pdq_hex() -> None:
    assert mmcore.hash_to_hex(1, 64) == "0000000000000001"
    assert mmcore.hash_to_hex(2**41, 42) == "20000000000"
    with pytest.raises(ValueError):
        mmcore.hash_to_hex(2**64, 64)
    # mmcore run's int64 columns: negative 64-bit hashes are their two's complement, as in hamming
    assert mmcore.hash_to_hex(-1, 64) == "f" * 16 == mmcore.hash_to_hex(np.int64(-1), 64)
    assert mmcore.hash_to_hex(np.uint64(2**64 - 5), 64) == mmcore.hash_to_hex(-5, 64)
    for bad in ((-(2**63) - 1, 64), (-1, 42)):
        with pytest.raises(ValueError):
            mmcore.hash_to_hex(*bad)
    with pytest.raises(TypeError):
        mmcore.hash_to_hex(5, 42.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        mmcore.pdq_hex(b"123")


def test_hamming() -> None:
    assert mmcore.hamming(0, 2**64 - 1) == 64
    assert mmcore.hamming(b"\x00\xff", b"\xff\xff") == 8
    a = np.array([0, 1, 2**64 - 1], dtype=np.uint64)
    assert mmcore.hamming(a, np.uint64(0)).tolist() == [0, 1, 64]
    assert mmcore.hamming(a[:, None], a[None, :]).shape == (3, 3)
    p = np.zeros((2, 32), np.uint8)
    p[1, 5] = 0b1011
    assert mmcore.hamming(p, p[1]).tolist() == [3, 0]
    assert mmcore.hamming(a.astype(np.int64), a).tolist() == [0, 0, 0]
    with pytest.raises(ValueError):
        mmcore.hamming(b"\x00", b"\x00\x00")
    # A negative int is its int64 two's complement (mmcore run's int64 hash columns), as in arrays.
    assert mmcore.hamming(-1, 0) == 64 == mmcore.hamming(np.int64(-1), np.uint64(0))
    with pytest.raises(ValueError):
        mmcore.hamming(-(2**63) - 1, 0)
    # Scalars in, an int out: numpy scalars (a column's items) and mixed int / bytes.
    col = np.array([0b1011, 0b0001], dtype=np.uint64)
    for d in (mmcore.hamming(col[0], col[1]), mmcore.hamming(5, b"\x00" * 8), mmcore.hamming(np.int64(3), 0)):
        assert type(d) is int and d == 2


@pytest.mark.parametrize("bitwise_count", [True, False])
def test_hamming_of_arrays_with_and_without_numpys_popcount(
    monkeypatch: pytest.MonkeyPatch, bitwise_count: bool
) -> None:
    """Array distances count 8 bytes at a time with numpy's popcount, and without it (numpy < 2.0,
    which the package allows) by bytes: both equal Python's int.bit_count, for PDQ rows, 64-bit
    hashes, broadcasting, and widths that are not a multiple of 8 bytes."""
    import mmcore.hashing as h

    if not bitwise_count:
        monkeypatch.setattr(h, "_BITWISE_COUNT", None)
    rng = np.random.default_rng(4)
    pdq = rng.integers(0, 256, size=(50, 32), dtype=np.uint8)
    want = [
        [(int.from_bytes(a.tobytes(), "big") ^ int.from_bytes(b.tobytes(), "big")).bit_count() for b in pdq]
        for a in pdq
    ]
    assert mmcore.hamming(pdq[:, None], pdq[None, :]).tolist() == want
    u = rng.integers(0, 2**64, size=40, dtype=np.uint64)
    assert mmcore.hamming(u, u[::-1]).tolist() == [
        (int(a) ^ int(b)).bit_count() for a, b in zip(u, u[::-1], strict=True)
    ]
    odd = rng.integers(0, 256, size=(6, 5), dtype=np.uint8)
    assert mmcore.hamming(odd, odd[0]).tolist() == [
        (int.from_bytes(r.tobytes(), "big") ^ int.from_bytes(odd[0].tobytes(), "big")).bit_count()
        for r in odd
    ]
    assert h._popcount64(u).tolist() == [int(x).bit_count() for x in u]


def test_batch_calls_refuse_one_source_and_keep_going_on_odd_arrays() -> None:
    """A path string given as srcs is a TypeError (not one failed record per character); an array
    no kernel takes (grey + alpha, a side over 2^31 - 1) is a record status, the batch goes on."""
    path = mmcore.demo_images()[0]
    calls = (mmcore.hash_batch, mmcore.decode_batch, lambda s: mmcore.thumbnail_batch(s, short_side=32))
    for call in calls:
        for one in (path, Path(path), Path(path).read_bytes()):
            with pytest.raises(TypeError, match="sequence of sources"):
                call(one)
    la = np.zeros((8, 8, 2), np.uint8)
    wide = np.zeros((1, 2**31), np.uint8)  # 2 GiB of untouched (lazily mapped) zeros
    r = mmcore.hash_batch([path, la, wide], kinds=("dhash",))
    st = mmcore.Status
    assert [st(int(s)) for s in r.status] == [st.OK, st.UNSUPPORTED, st.TOO_LARGE]
    assert "2 channels" in r.errors[1] and "2^31" in r.errors[2]
    with pytest.raises(mmcore.DecodeError, match="channels"):
        mmcore.dhash(la)
    # max_pixels takes numpy ints, and refuses what no int64 holds with its own name.
    assert mmcore.hash_batch([path], kinds=("dhash",), max_pixels=np.int64(10**9)).status[0] == st.OK
    with pytest.raises(ValueError, match="max_pixels"):
        mmcore.hash_batch([path], max_pixels=2**70)


def test_hex_of_dihedral_pdq_and_non_hash_columns() -> None:
    img = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    r = mmcore.hash_batch([img, None], kinds=["pdq"], dihedral=True)
    hexes = r.hex("pdq_dihedral")
    assert hexes[1] is None and len(hexes[0]) == 8
    assert hexes[0] == [mmcore.pdq_hex(h) for h in mmcore.pdq(img, mode="full", dihedral=True)[0]]
    with pytest.raises(ValueError, match="no hex form"):
        r.hex("pdq_quality")


def test_batch_reused_scratch_gives_single_record_bits() -> None:
    """A batch worker reuses its decode buffer and hashing scratch from record to record (one
    workspace per thread): a small image after a large one hashes on the large one's leftovers.
    Every kind, in every mode, with 1 and 2 threads, equals the record hashed alone."""
    rng = np.random.default_rng(12)

    def encoded(img: np.ndarray, fmt: str, orientation: int = 1) -> bytes:
        buf = io.BytesIO()
        pil = Image.fromarray(img)
        exif = pil.getexif()
        exif[0x0112] = orientation
        pil.save(buf, format=fmt, exif=exif)
        return buf.getvalue()

    def photo(h: int, w: int, c: int) -> np.ndarray:
        base = rng.integers(0, 256, (h // 8 + 2, w // 8 + 2, 3), dtype=np.uint8)
        img = np.asarray(Image.fromarray(base).resize((w, h), Image.BILINEAR))
        if c == 1:
            return np.ascontiguousarray(img[:, :, 0])
        if c == 4:
            return np.ascontiguousarray(np.dstack([img, img[:, :, :1]]))
        return img

    # Large, small, large again (over and under PDQ's 512 px squash; a JPEG whose decode buffer
    # and an array whose full-size PDQ scratch are over Workspace::kRetainBytes, so that they are
    # kept for the records after them), 1, 3 and 4 channels, arrays and encoded bytes (one
    # EXIF-rotated: the thumbnail's oriented copy), a corrupt record.
    srcs: list[Any] = [
        encoded(photo(2900, 4100, 3), "JPEG"),
        photo(900, 700, 3),
        photo(2100, 2200, 3),
        photo(40, 30, 3),
        encoded(photo(800, 1100, 3), "JPEG", orientation=6),
        encoded(photo(96, 80, 3), "JPEG", orientation=3),
        photo(70, 500, 1),
        encoded(photo(64, 64, 3), "PNG"),
        b"\xff\xd8\xff junk",
        photo(600, 610, 4),
        encoded(photo(33, 47, 3), "JPEG"),
        photo(128, 96, 3),
    ]
    kinds = ("ahash", "dhash", "dhash_vertical", "phash", "phash_simple", "whash", "colorhash", "pdq")
    for mode in ("exact", "full", "fast"):
        alone = [mmcore.hash_batch([s], kinds=kinds, mode=mode, dihedral=True, threads=1) for s in srcs]
        for threads in (1, 2):
            r = mmcore.hash_batch(srcs, kinds=kinds, mode=mode, dihedral=True, threads=threads)
            for i, a in enumerate(alone):
                assert r.status[i] == a.status[0], (mode, threads, i)
                for k in (*kinds[:-1], "pdq_dihedral", "pdq_quality"):
                    assert np.array_equal(r[k][i], a[k][0]), (mode, threads, i, k)
    # Thumbnails, alone and with the hashes' decode, from reused scratch.
    encoded_srcs = [s for s in srcs if isinstance(s, bytes)]
    for threads in (1, 2):
        t = mmcore.thumbnail_batch(encoded_srcs, short_side=48, threads=threads)
        h = mmcore.hash_batch(encoded_srcs, kinds=["pdq"], thumbnail=48, threads=threads)
        assert h.thumbnails is not None
        for i, src in enumerate(encoded_srcs):
            want = mmcore.thumbnail_batch([src], short_side=48, threads=1).images[0]
            for got in (t.images[i], h.thumbnails.images[i]):
                assert (got is None) == (want is None)
                if want is not None:
                    np.testing.assert_array_equal(got, want)


def test_forced_backends_give_identical_hashes(tmp_path: Path) -> None:
    """The scalar ref and every SIMD variant give identical bits (MMCORE_FORCE_BACKEND)."""
    script = (
        "import mmcore, numpy as np, sys\n"
        "rng = np.random.default_rng(7)\n"
        "imgs = [rng.integers(0, 256, (int(rng.integers(5, 200)), int(rng.integers(5, 200)), 3),"
        " dtype=np.uint8) for _ in range(40)] + mmcore.demo_images()\n"
        "kinds = ('ahash','dhash','dhash_vertical','phash','phash_simple','whash','colorhash','pdq')\n"
        "for mode in ('exact', 'fast'):\n"
        "    r = mmcore.hash_batch(imgs, kinds=kinds, mode=mode, dihedral=True)\n"
        "    for k in kinds[:-1]: print(k, *r[k].tolist())\n"
        "    print(r['pdq_dihedral'].tobytes().hex(), r['pdq_quality'].tolist())\n"
        "print(mmcore.build_info()['backend'])\n"
    )
    outs = {
        backend: run_with_backend(script, backend, tmp_path).rsplit("\n", 2) for backend in ("ref", "avx2")
    }
    assert outs["ref"][0] == outs["avx2"][0]
    assert outs["ref"][1] == "ref"


def test_pdq_box_filters_identical_across_backends(tmp_path: Path) -> None:
    """PDQ's box filters (the avx2 / avx512 row box boxes 8 rows at a time in vector lanes, the ref
    one row at a time) give the same bits at sizes whose windows are 1 to 16 samples, powers of two
    and not, with rows and columns that are and are not multiples of 8, in both PDQ modes."""
    script = (
        "import mmcore, numpy as np\n"
        "rng = np.random.default_rng(11)\n"
        "sizes = [(5, 7), (8, 8), (9, 17), (33, 64), (257, 300), (385, 513), (480, 640), (700, 1000),"
        " (1031, 2049), (640, 1920)]\n"
        "imgs = []\n"
        "for h, w in sizes:\n"
        "    base = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)\n"
        "    imgs.append(mmcore.resize(base, (w, h), filter='bilinear'))\n"
        "for mode in ('reference', 'full'):\n"
        "    for img in imgs:\n"
        "        h, q = mmcore.pdq(img, mode=mode, dihedral=True)\n"
        "        print(mode, *[mmcore.pdq_hex(x) for x in h], q)\n"
        "print(mmcore.build_info()['backend'])\n"
    )
    outs = {b: run_with_backend(script, b, tmp_path).rsplit("\n", 2) for b in ("ref", "avx2", "")}
    assert outs["ref"][0] == outs["avx2"][0] == outs[""][0]
    assert outs["ref"][1] == "ref"


# ---- fast modes: agreement with exact mode stays at or above what docs/hashes.md reports ----


@pytest.mark.corpus
def test_fast_mode_agreement_with_exact() -> None:
    files = [str(f) for f in corpus_dir("jpeg").iterdir() if f.suffix.lower() in (".jpg", ".jpeg")]
    kinds = ("ahash", "dhash", "phash", "whash", "pdq")
    ex = mmcore.hash_batch(files, kinds=kinds, mode="exact")
    fa = mmcore.hash_batch(files, kinds=kinds, mode="fast", exif_orientation=False)
    ok = ex.ok & fa.ok
    assert ok.sum() >= 400
    # share of images within (0, 2, 4) bits; PDQ within (8, 16, 31) of 256.
    floors = FAST_FLOORS
    for k in kinds:
        d = mmcore.hamming(ex[k][ok], fa[k][ok])
        limits = (8, 16, 31) if k == "pdq" else (0, 2, 4)
        shares = [float((d <= t).mean()) for t in limits]
        for share, floor, t in zip(shares, floors[k], limits, strict=True):
            assert share >= floor, f"{k}: share within {t} bits {share:.3f} < {floor}"


FAST_FLOORS: dict[str, tuple[float, float, float]] = {
    # measured on the 437 corpus JPEGs (docs/hashes.md), minus a margin for other libjpeg builds
    "ahash": (0.78, 0.97, 0.99),
    "dhash": (0.65, 0.96, 0.99),
    "phash": (0.78, 0.97, 0.99),
    "whash": (0.84, 0.97, 0.99),
    "pdq": (0.17, 0.54, 0.97),  # within 8 / 16 / 31 bits (PDQ's match threshold is 31)
}


@pytest.mark.corpus
@pytest.mark.slow
def test_huge_image_exact_hashes() -> None:
    """The one corpus file over ORACLE_MAX_PIXELS (20000x14000 grey): ahash/dhash/phash vs imagehash."""
    big = [corpus_dir("odd") / "sharp__test_fixtures_giant-image.jpg"]
    if not big[0].is_file():
        pytest.skip("the 20000x14000 corpus image is absent")
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        _check_huge(big)
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _check_huge(big: list[Path]) -> None:
    for f in big:
        r = mmcore.hash_batch([str(f)], kinds=("ahash", "dhash", "phash"), max_pixels=400_000_000)
        with Image.open(f) as im:
            im.load()
            want = [str(imagehash.average_hash(im)), str(imagehash.dhash(im)), str(imagehash.phash(im))]
        assert r.ok[0], r.errors
        assert [r.hex(k)[0] for k in ("ahash", "dhash", "phash")] == want


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("kinds", "mode", "thumb"),
    [
        (("phash", "pdq"), "exact", {"short_side": 256, "upscale": False}),
        (("colorhash",), "exact", {"crop": (64, 48)}),
        (("pdq",), "full", {"fit": (100, 100), "exif_orientation": False, "filter": "bicubic"}),
        (("dhash",), "exact", {"short_side": 96}),  # grey decode: nothing to reuse
        (("phash", "pdq"), "fast", {"short_side": 128, "color": "gray"}),
    ],
)
def test_hash_batch_thumbnails_equal_thumbnail_batch(kinds: tuple[str, ...], mode: str, thumb: dict) -> None:
    """Thumbnails made from the hash decode (or by a second decode where they cannot be) are
    exactly thumbnail_batch's, status and message included, on every kind of corpus file; the
    hashes do not change."""
    files: list[Path] = []
    for sub in ("jpeg", "png", "webp", "odd", "corrupt"):
        files += [p for p in sorted(corpus_dir(sub).iterdir()) if p.is_file() and p.name != "README.md"]
    srcs = [str(f) for f in files]
    got = mmcore.hash_batch(srcs, kinds=kinds, mode=mode, thumbnail=thumb)  # type: ignore[arg-type]
    plain = mmcore.hash_batch(srcs, kinds=kinds, mode=mode)  # type: ignore[arg-type]
    want = mmcore.thumbnail_batch(srcs, **thumb)
    assert got.thumbnails is not None
    assert np.array_equal(got.status, plain.status) and got.errors == plain.errors
    for k in kinds:
        assert np.array_equal(got[k], plain[k]), k
    assert np.array_equal(got.thumbnails.status, want.status)
    assert got.thumbnails.errors == want.errors
    for f, a, b in zip(files, got.thumbnails.images, want.images, strict=True):
        assert (a is None) == (b is None), f
        if a is not None:
            assert a.shape == b.shape and np.array_equal(a, b), f


def test_hash_api_arguments() -> None:
    data = Path(mmcore.demo_images()[0]).read_bytes()
    r = mmcore.hash_batch([data], kinds="dhash", thumbnail=32)  # an int is the short side
    assert r.thumbnails is not None and min(r.thumbnails.images[0].shape[:2]) == 32
    assert mmcore.hash_batch([data], kinds="dhash", thumbnail={"short_side": 32, "threads": 1}).ok[0]
    with pytest.raises(ValueError, match=r"unknown options \['size'\]"):
        mmcore.hash_batch([data], thumbnail={"size": 32})
    with pytest.raises(ValueError, match="kinds"):
        mmcore.hash_batch([data], kinds=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pdq_hex"):
        mmcore.hash_to_hex(bytes(32), 256)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="32 bytes"):
        mmcore.pdq_hex(32)  # type: ignore[arg-type]
    assert mmcore.hamming(2**64, 0) == 1  # ints of any width (imagehash's hash_size=16: 256 bits)
    with pytest.raises(ValueError, match="int64"):
        mmcore.hamming(-(2**64), 0)
    with pytest.raises(TypeError, match="src must be"):
        mmcore.phash(123)  # type: ignore[arg-type]


def test_a_shared_budget_changes_no_result_and_is_checked() -> None:
    """ThreadBudget: concurrent calls sharing one (even a single token, with 3 threads each) give
    each call's own result; tokens < 1, a budget that is not one, and a budget on device 'cuda'
    are refused."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(5)
    srcs: list[Any] = [
        rng.integers(0, 256, (40 + i % 7 * 30, 50 + i % 5 * 20, 3), np.uint8) for i in range(60)
    ]
    srcs += [b"not an image", None]
    kinds = ("phash", "dhash", "pdq")
    want = mmcore.hash_batch(srcs, kinds=kinds, threads=3)
    for tokens in (1, 2):
        budget = mmcore.ThreadBudget(tokens)
        assert budget.tokens == tokens
        with ThreadPoolExecutor(2) as ex:
            calls = [
                ex.submit(mmcore.hash_batch, p, kinds=kinds, threads=3, budget=budget)
                for p in (srcs[:31], srcs[31:])
            ]
            got = [c.result() for c in calls]
        for k in (*kinds, "pdq_quality"):
            np.testing.assert_array_equal(np.concatenate([got[0][k], got[1][k]]), want[k])
        assert list(got[0].status) + list(got[1].status) == list(want.status)
        assert got[0].errors + got[1].errors == want.errors
    with pytest.raises(ValueError, match="at least 1 token"):
        mmcore.ThreadBudget(0)
    with pytest.raises(TypeError, match="ThreadBudget"):
        mmcore.hash_batch(srcs[:2], kinds="dhash", budget=2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="device 'cpu'"):
        mmcore.hash_batch(srcs[:2], kinds="dhash", device="cuda", budget=mmcore.ThreadBudget(1))


def test_ctrl_c_ends_a_long_batch_soon(tmp_path: Path) -> None:
    """SIGINT during a batch call raises KeyboardInterrupt once the records in flight are done (the
    calling thread looks for signals every 50 ms and the workers then take no new record), not
    after the whole batch: here the batch would take over a minute, and the bound is a loose 15 s
    (8.9 s for a 3,000-image batch before any of this, which ran to its end)."""
    import subprocess
    import sys

    # The child installs Python's SIGINT handler itself: a test run started in the background by a
    # non-interactive shell inherits SIGINT ignored, and Python then installs none (the batch ran
    # to its end under `bash .ci/run &`).
    code = """
import io, os, signal, threading, time
signal.signal(signal.SIGINT, signal.default_int_handler)
import numpy as np, mmcore
from PIL import Image
buf = io.BytesIO()
Image.fromarray(np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(buf, "JPEG")
srcs = [buf.getvalue()] * 40000
for name, call in (
    ("hash_batch", lambda: mmcore.hash_batch(srcs, kinds=("phash", "pdq", "whash"), threads=2)),
    ("hash_batch, budget", lambda: mmcore.hash_batch(srcs, kinds="dhash", budget=mmcore.ThreadBudget(1))),
    ("decode_batch", lambda: mmcore.decode_batch(srcs * 3, threads=2)),
    ("thumbnail_batch", lambda: mmcore.thumbnail_batch(srcs * 2, short_side=200, threads=2)),
):
    sent = []
    def kill():
        time.sleep(0.5)
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=kill, daemon=True).start()
    try:
        call()
        raise SystemExit(name + " ran to its end")
    except KeyboardInterrupt:
        late = time.monotonic() - sent[0]
        assert late < 15, (name, late)
print("done")
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert out.returncode == 0 and "done" in out.stdout, (out.stdout, out.stderr[-2000:])


def test_array_misuse_and_numpy_bits_are_named() -> None:
    with pytest.raises(TypeError, match=r"a 2x8x8x3 array .*a batch of images"):
        mmcore.phash(np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(TypeError, match="got a 0-D"):
        mmcore.phash(np.array(5, np.uint8))
    with pytest.raises(TypeError, match="dihedral must be True or False"):
        mmcore.pdq(mmcore.demo_images()[0], dihedral=1)  # type: ignore[arg-type]
    assert mmcore.hash_to_hex(5, np.int64(64)) == mmcore.hash_to_hex(5, 64) == "0000000000000005"
