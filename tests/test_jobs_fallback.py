"""Config.fallback = "pillow": the formats mmcore does not decode, decoded by Pillow and hashed by
mmcore. Oracles: imagehash on the same ``Image.open`` (exact mode), pdqhash, and the row of the
same pixels stored as a PNG, which mmcore decodes itself (every column but format, size and
digest must match, thumbnails and fast mode included)."""

from __future__ import annotations

import functools
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
Image = pytest.importorskip("PIL.Image")
ImageOps = pytest.importorskip("PIL.ImageOps")
imagehash = pytest.importorskip("imagehash")

from conftest import CORPUS, run_bench_script  # noqa: E402
from test_pillow import encode, photos  # noqa: E402

import mmcore  # noqa: E402
from mmcore import _pillow as fb  # noqa: E402
from mmcore.jobs import Config, read_output  # noqa: E402
from mmcore.jobs.processor import Processor  # noqa: E402
from mmcore.jobs.runner import JobError, run  # noqa: E402
from mmcore.jobs.schema import i64_to_u64  # noqa: E402

try:
    import pillow_heif
except ImportError:
    pillow_heif = None

#: Columns that depend on the file's bytes, not on its pixels.
_FILE_COLUMNS = {"id", "source_uri", "member", "byte_size", "content_sha256", "format"}


def batch(blobs: list[bytes]) -> Any:
    return pa.table({"id": [f"r{i}" for i in range(len(blobs))], "bytes": pa.array(blobs, pa.binary())})


def rows(config: dict[str, Any], blobs: list[bytes]) -> list[dict[str, Any]]:
    return Processor(config)(batch(blobs)).to_pylist()  # type: ignore[no-any-return]


def pixel_columns(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if k not in _FILE_COLUMNS}


#: Lossless encodings of an RGB image in formats mmcore does not decode (name, Pillow format, options).
LOSSLESS = [
    ("bmp", "BMP", {}),
    ("tiff", "TIFF", {}),
    ("tiff", "TIFF", {"compression": "tiff_lzw"}),
    ("tiff", "TIFF", {"compression": "tiff_adobe_deflate"}),
    ("ppm", "PPM", {}),
    ("qoi", "QOI", {}),
    ("jpeg2000", "JPEG2000", {}),  # Pillow's default is the reversible (lossless) wavelet
]


@pytest.mark.parametrize("hash_mode", ["exact", "fast"])
@pytest.mark.parametrize(
    ("name", "fmt", "opts"), LOSSLESS, ids=[f"{f}-{i}" for i, (_, f, _) in enumerate(LOSSLESS)]
)
def test_lossless_formats_give_the_png_row(name: str, fmt: str, opts: dict[str, Any], hash_mode: str) -> None:
    """The same pixels as a PNG (decoded by mmcore) and in another format (decoded by Pillow): the
    same row but for the file's columns, with thumbnails; and without the fallback UNSUPPORTED."""
    pics = photos()[:3] if fmt == "QOI" else photos()  # Pillow's QOI encoder is Python: ~0.3 s a photo
    pngs = [encode(Image.fromarray(a), "PNG") for a in pics]
    others = [encode(Image.fromarray(a), fmt, **opts) for a in pics]
    cfg = {"fallback": "pillow", "hash_mode": hash_mode, "thumbnail": 64}
    want = rows(cfg, pngs)
    got = rows(cfg, others)
    for w, g, a in zip(want, got, pics, strict=True):
        assert w["status"] == "OK" and g["status"] == "OK", g["error"]
        assert g["format"] == name
        assert pixel_columns(g) == pixel_columns(w)
        assert (g["width"], g["height"]) == (a.shape[1], a.shape[0])
    plain = rows({"hash_mode": hash_mode}, others)
    assert {r["status"] for r in plain} == {"UNSUPPORTED"}
    assert all("not supported" in r["error"] for r in plain)


@functools.cache
def modes() -> list[tuple[str, Any]]:
    """Images of every Pillow mode a fallback format stores, from one photo."""
    a = photos()[0]
    rgb = Image.fromarray(a)
    grey = rgb.convert("L")
    i16 = Image.fromarray((np.asarray(grey).astype(np.uint16) * 3 + 7).astype(np.uint16))
    return [
        ("bmp-rgb", encode(rgb, "BMP")),
        ("bmp-palette", encode(rgb.quantize(64), "BMP")),
        ("bmp-1bit", encode(grey.convert("1"), "BMP")),
        ("bmp-grey", encode(grey, "BMP")),
        ("tiff-rgba", encode(rgb.convert("RGBA"), "TIFF")),
        ("tiff-cmyk", encode(rgb.convert("CMYK"), "TIFF")),
        ("tiff-grey", encode(grey, "TIFF")),
        ("tiff-16bit", encode(i16, "TIFF")),
        ("tiff-jpeg", encode(rgb, "TIFF", compression="jpeg")),
        ("tiff-pages", encode(rgb, "TIFF", save_all=True, append_images=[grey])),
        ("pgm", encode(grey, "PPM")),
        ("pbm", encode(grey.convert("1"), "PPM")),
        ("ico", encode(rgb, "ICO")),
        ("jp2-lossy", encode(rgb, "JPEG2000", quality_mode="rates", quality_layers=[20])),
        ("qoi-rgba", encode(rgb.convert("RGBA"), "QOI")),
    ]


@pytest.mark.parametrize("case", range(15))
def test_hashes_equal_imagehash_and_pdq(case: int) -> None:
    """Exact mode: imagehash's bits on the same Image.open (its own convert("L") of every mode);
    PDQ is mmcore's reference on the 8-bit image Pillow gives (grey for the grey modes)."""
    name, blob = modes()[case]
    (r,) = rows({"fallback": "pillow"}, [blob])
    assert r["status"] == "OK", r["error"]
    im = Image.open(io.BytesIO(blob))
    assert (r["width"], r["height"], r["format"]) == (*im.size, im.format.lower())
    for kind, f in (
        ("phash", imagehash.phash),
        ("dhash", imagehash.dhash),
        ("ahash", imagehash.average_hash),
    ):
        assert int(i64_to_u64(np.array([r[kind]]))[0]) == int(str(f(im)), 16), (name, kind)
    grey = im.mode in ("1", "L", "I;16", "I;16B", "I", "F")
    h, q = mmcore.pdq(np.asarray(im.convert("L" if grey else "RGB")))
    assert (r["pdq"], r["pdq_quality"]) == (h, q)


@pytest.mark.skipif(pillow_heif is None, reason="needs pillow-heif (pip install pillow-heif)")
def test_heic() -> None:
    """HEIC (iPhone photos) through pillow-heif: imagehash's bits on pillow-heif's decode."""
    assert pillow_heif is not None
    pillow_heif.register_heif_opener()
    blobs = [encode(Image.fromarray(a), "HEIF", quality=80) for a in photos()]
    assert all(b[4:12] == b"ftypheic" for b in blobs)
    for r, blob in zip(rows({"fallback": "pillow"}, blobs), blobs, strict=True):
        assert (r["status"], r["format"]) == ("OK", "heif"), r["error"]
        im = Image.open(io.BytesIO(blob))
        assert int(i64_to_u64(np.array([r["phash"]]))[0]) == int(str(imagehash.phash(im)), 16)
        assert r["pdq"] == mmcore.pdq(np.asarray(im.convert("RGB")))[0]
    (plain,) = rows({}, blobs[:1])
    assert plain["status"] == "UNSUPPORTED" and "HEIF" in plain["error"]


def exif_png(a: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(Image.fromarray(a), "PNG", exif=exif)


ORIENTED = [(m, t) for m in ("exact", "fast") for t in (True, False)]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation(orientation: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """An image whose orientation Pillow reports but does not apply (a BMP here, its orientation
    read as ``orientation``) against a PNG of the same pixels with that EXIF orientation, which
    mmcore decodes: the same width, height, orientation, hashes (exact: as stored; fast: turned)
    and thumbnail, with exif_orientation on and off; and turned() is ImageOps.exif_transpose."""
    a = photos()[2]
    png = exif_png(a, orientation)
    bmp = encode(Image.fromarray(a), "BMP")
    assert mmcore.image_info(png)["orientation"] == orientation
    monkeypatch.setattr(fb, "_orientation", lambda im: orientation)
    for mode, turn in ORIENTED:
        cfg = {"fallback": "pillow", "hash_mode": mode, "exif_orientation": turn, "thumbnail": 48}
        want, got = rows(cfg, [png, bmp])
        assert got["orientation"] == orientation
        assert pixel_columns(got) == pixel_columns(want), (mode, turn)
    shown = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(png))).convert("RGB"))
    assert np.array_equal(fb.turned(a, orientation), shown)
    assert np.array_equal(fb.turned(a[:, :, 1], orientation), shown[:, :, 1])


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_tiff_orientation_is_pillows(orientation: int) -> None:
    """Pillow turns a TIFF by its orientation tag as it loads it (imagehash hashes it so): the row
    is the PNG row of the turned pixels, orientation 1, whatever exif_orientation says."""
    a = photos()[2]
    tif = encode(Image.fromarray(a), "TIFF", tiffinfo={0x0112: orientation})
    shown = encode(Image.fromarray(fb.turned(a, orientation)), "PNG")
    for mode, turn in ORIENTED:
        cfg = {"fallback": "pillow", "hash_mode": mode, "exif_orientation": turn, "thumbnail": 48}
        want, got = rows(cfg, [shown, tif])
        assert got["orientation"] == 1
        assert pixel_columns(got) == pixel_columns(want), (mode, turn)
        im = Image.open(io.BytesIO(tif))
        if mode == "exact":
            assert int(i64_to_u64(np.array([got["phash"]]))[0]) == int(str(imagehash.phash(im)), 16)


def damaged() -> list[bytes]:
    """Truncations and byte flips of every fallback format's files."""
    g = np.random.default_rng(7)
    small = Image.fromarray(photos()[0][:48, :64])
    files = [
        encode(small, "BMP"),
        encode(small, "TIFF"),
        encode(small, "TIFF", compression="tiff_lzw"),
        encode(small, "TIFF", compression="jpeg"),
        encode(small, "PPM"),
        encode(small, "QOI"),
        encode(small, "ICO"),
        encode(small, "JPEG2000"),
    ]
    if pillow_heif is not None:
        pillow_heif.register_heif_opener()
        files.append(encode(small, "HEIF"))
    out = []
    for f in files:
        out += [f[:n] for n in sorted({4, 8, 16, 30, 60, len(f) // 3, len(f) // 2, len(f) - 1})]
        for _ in range(12):
            b = bytearray(f)
            for i in g.integers(0, len(b), 4):
                b[i] = int(g.integers(0, 256))
            out.append(bytes(b))
    return out


def test_damaged_files_get_statuses() -> None:
    """Truncated and byte-flipped files of every fallback format: each a row, never an exception;
    a failure says why (Pillow's reason after mmcore's); a decoded one has every hash."""
    blobs = damaged()
    got = rows({"fallback": "pillow", "thumbnail": 32}, blobs)
    statuses = {r["status"] for r in got}
    assert statuses <= {"OK", "OK_WARNING", "CORRUPT", "UNSUPPORTED", "TOO_LARGE"}
    assert {"OK", "UNSUPPORTED"} <= statuses
    for r in got:
        if r["status"] in ("OK", "OK_WARNING"):
            assert None not in (r["phash"], r["pdq"], r["thumbnail"], r["width"])
        else:
            assert r["error"] and r["error_stage"] == "decode", r
            assert r["phash"] is None and r["thumbnail"] is None
    assert any("Pillow" in r["error"] for r in got if r["status"] not in ("OK", "OK_WARNING"))


def test_what_pillow_cannot_read_keeps_mmcores_reason() -> None:
    """JPEG XL (no Pillow plugin) and a 12-bit JPEG (mmcore's own format, refused by both): still
    UNSUPPORTED, mmcore's message first, then Pillow's; a file of no known signature is not
    handed to Pillow at all (TGA has none: junk would pass for one)."""
    jxl = b"\xff\x0a" + bytes(range(200))
    tga = encode(Image.fromarray(photos()[0][:20, :20]), "TGA")
    blobs = [jxl, tga]
    twelve = CORPUS / "corrupt" / "ljt__testimages_monkey12.jpg"
    if twelve.is_file():
        blobs.append(twelve.read_bytes())
    got = rows({"fallback": "pillow"}, blobs)
    assert got[0]["status"] == "UNSUPPORTED"
    assert got[0]["error"].startswith("JPEG XL images are not supported")
    assert got[0]["error"].endswith("; Pillow cannot read it either")
    assert got[1]["status"] == "CORRUPT" and "unrecognised signature" in got[1]["error"]
    assert got[1]["format"] is None
    if len(got) > 2:
        assert got[2]["status"] == "UNSUPPORTED" and got[2]["format"] == "jpeg"
        assert "precision 12" in got[2]["error"] and "Pillow" in got[2]["error"]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pixel_limit() -> None:
    """max_pixels holds for Pillow's decode too, before its pixels are read (the row says the size),
    and Pillow's own limit (2 x its MAX_IMAGE_PIXELS, 178,956,970 pixels, mmcore's default) refuses
    larger images whatever max_pixels says: TOO_LARGE with Pillow's message."""
    tiny = bytearray(encode(Image.fromarray(photos()[0][:8, :8]), "BMP"))

    def bmp(w: int, h: int) -> bytes:
        tiny[18:26] = w.to_bytes(4, "little") + h.to_bytes(4, "little")
        return bytes(tiny)

    small = encode(Image.fromarray(photos()[0][:60, :80]), "BMP")
    big, over = rows({"fallback": "pillow", "max_pixels": 10**8}, [bmp(12000, 10000), small])
    assert big["status"] == "TOO_LARGE" and (big["width"], big["height"]) == (12000, 10000), big
    assert "BMP image is 12000x10000 = 120000000 pixels, over the limit of 100000000" in big["error"]
    assert over["status"] == "OK"
    (over,) = rows({"fallback": "pillow", "max_pixels": 4000}, [small])
    assert over["status"] == "TOO_LARGE" and "80x60 = 4800 pixels, over the limit of 4000" in over["error"]
    (bomb,) = rows({"fallback": "pillow", "max_pixels": 10**12}, [bmp(40000, 40000)])
    assert bomb["status"] == "TOO_LARGE" and "Pillow refuses it" in bomb["error"], bomb
    assert "1600000000 pixels" in bomb["error"]


def test_config() -> None:
    """fallback is a processing option: in the config hash only when on (outputs written before it
    keep theirs); other values are refused; TOML takes it."""
    assert Config().config_hash() == Config(fallback="none").config_hash()
    assert Config(fallback="pillow").config_hash() != Config().config_hash()
    assert "fallback" not in Config().processor_dict()
    with pytest.raises(ValueError, match="fallback must be one of"):
        Config(fallback="opencv")


def test_without_pillow(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No Pillow: the Processor raises ImportError naming the extra, and a job stops before it
    writes anything (JobError); fallback "none" needs no Pillow."""
    import sys

    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(ImportError, match=r"mmcore\[fallback\]"):
        Processor({"fallback": "pillow"})
    Processor({})
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.bmp").write_bytes(b"BM")
    with pytest.raises(JobError, match="needs Pillow"):
        run(str(tmp_path / "src"), tmp_path / "out", Config(fallback="pillow"), progress=None)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_cli_run(tmp_path: Path) -> None:
    """mmcore run --fallback pillow over a folder mixing formats: the BMP / TIFF / QOI rows equal
    the PNG's of the same pixels; a rerun without flags keeps the option (the manifest's)."""
    from mmcore.cli import main

    src = tmp_path / "src"
    src.mkdir()
    a = photos()[2]
    for name, fmt in (("a.png", "PNG"), ("b.bmp", "BMP"), ("c.tif", "TIFF"), ("d.qoi", "QOI")):
        (src / name).write_bytes(encode(Image.fromarray(a), fmt))
    out = tmp_path / "out"
    assert main(["run", str(src), str(out), "--fallback", "pillow", "--quiet", "--thumbnail", "32"]) == 0
    t = {r["id"]: r for r in read_output(out).to_pylist()}
    assert [t[k]["format"] for k in sorted(t)] == ["png", "bmp", "tiff", "qoi"]
    for k in ("b.bmp", "c.tif", "d.qoi"):
        assert pixel_columns(t[k]) == pixel_columns(t["a.png"])
    os.remove(next(out.glob("_done/*.json")))
    assert main(["run", str(src), str(out), "--quiet"]) == 0  # resumed with the manifest's options
    assert {r["status"] for r in read_output(out).to_pylist()} == {"OK"}
    assert pq.read_metadata(next(out.glob("part-*.parquet"))).metadata[b"mmcore_config_hash"] == (
        Config(fallback="pillow", thumbnail=32).config_hash().encode()
    )


def test_bench_fallback_smoke() -> None:
    """bench/bench_fallback.py runs and checks its rows against imagehash (no timing asserted)."""
    pytest.importorskip("pdqhash")
    out = run_bench_script("bench_fallback.py", "--files", "3", "--repeat", "1", "--threads", "1")
    assert "| TIFF (LZW) |" in out and "| BMP |" in out
    assert "checked: the Processor's pHash / dHash / aHash equal imagehash's" in out


def _mixed_folder(root: Path) -> Path:
    """PNGs, the same pixels as BMP / TIFF / QOI, a damaged BMP and junk, over several shards."""
    src = root / "src"
    src.mkdir()
    for i, a in enumerate(photos()[:4]):
        for ext, fmt in (("png", "PNG"), ("bmp", "BMP"), ("tif", "TIFF")):
            (src / f"{i}.{ext}").write_bytes(encode(Image.fromarray(a), fmt))
    (src / "bad.bmp").write_bytes(encode(Image.fromarray(photos()[0]), "BMP")[:300])
    (src / "junk.bin").write_bytes(b"\x00junk" * 40)
    return src


def _table(out: Path) -> list[dict[str, Any]]:
    return sorted(read_output(out).to_pylist(), key=lambda r: r["id"])


def test_retry_failed_adds_the_fallback(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """An output written without the fallback takes it with --mode retry-failed --fallback pillow
    (the other options from its manifest): only the failed records are processed again, and the
    output equals a run with the fallback from the start. Other modes are refused with the way to
    do it; a change of another option still is refused."""
    from mmcore.cli import main

    src = _mixed_folder(tmp_path)
    fresh, out = tmp_path / "fresh", tmp_path / "out"
    flags = ["--quiet", "--shard-size", "4", "--thumbnail", "32"]
    assert main(["run", str(src), str(fresh), *flags, "--fallback", "pillow"]) == 0
    assert main(["run", str(src), str(out), *flags]) == 0
    assert "9 UNSUPPORTED: their error column names" in capfd.readouterr().out  # the way to add it
    before = _table(out)
    assert sum(r["status"] == "UNSUPPORTED" for r in before) == 9  # 4 BMP, 4 TIFF, the damaged BMP
    with pytest.raises(JobError, match="add it with --mode retry-failed"):
        run(str(src), out, Config(fallback="pillow", thumbnail=32), progress=None)
    with pytest.raises(JobError, match="other processing options"):
        run(str(src), out, Config(fallback="pillow", thumbnail=64, mode="retry-failed"), progress=None)
    assert main(["run", str(src), str(out), "--quiet", "--mode", "retry-failed", "--fallback", "pillow"]) == 0
    assert "UNSUPPORTED" not in capfd.readouterr().out  # the damaged BMP is CORRUPT now
    assert _table(out) == _table(fresh)
    m = json.loads((out / "_mmcore_job.json").read_text())
    assert (
        m["config"]["fallback"] == "pillow"
        and m["config_hash"] == Config(fallback="pillow", thumbnail=32).config_hash()
    )
    records = [json.loads(p.read_text()) for p in sorted((out / "_done").glob("*.json"))]
    assert {r["config_hash"] for r in records} == {m["config_hash"]}
    kept = {r["id"]: r for r in before if r["status"] == "OK"}
    assert all(r == kept[r["id"]] for r in _table(out) if r["id"] in kept)  # OK rows untouched


def test_adding_the_fallback_survives_a_kill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A retry-failed run adding the fallback stopped after its first shard: the next run, in any
    mode and without flags, finishes the shards still written without it."""
    import mmcore.jobs.runner as runner_mod

    src = _mixed_folder(tmp_path)
    fresh, out = tmp_path / "fresh", tmp_path / "out"
    run(str(src), fresh, Config(fallback="pillow", shard_size=4), progress=None)
    run(str(src), out, Config(shard_size=4), progress=None)
    real = runner_mod._write_shard
    calls = []

    def dies_second(*a: Any, **k: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(runner_mod, "_write_shard", dies_second)
    with pytest.raises(KeyboardInterrupt):
        run(str(src), out, Config(fallback="pillow", shard_size=4, mode="retry-failed"), progress=None)
    monkeypatch.setattr(runner_mod, "_write_shard", real)
    assert _table(out) != _table(fresh)
    from mmcore.cli import main

    assert main(["run", str(src), str(out), "--quiet"]) == 0  # incremental, the manifest's options
    assert _table(out) == _table(fresh)
    assert main(["run", str(src), str(out), "--quiet"]) == 0  # and then nothing is left to do
    assert _table(out) == _table(fresh)


def test_codec_stderr_goes_to_a_log(tmp_path: Path) -> None:
    """mmcore run as a command: what the codec libraries print about damaged files (here libtiff in
    Pillow's wheel, on LZW TIFFs with a damaged strip) lands in OUT/_mmcore_stderr.log, not between
    the progress lines; the summary counts it; a clean rerun adds nothing; overwrite removes it."""
    import subprocess
    import sys

    src = tmp_path / "src"
    src.mkdir()
    good = encode(Image.fromarray(photos()[0]), "TIFF", compression="tiff_lzw")
    for i in range(3):
        bad = bytearray(good)
        bad[1000 + 500 * i : 1016 + 500 * i] = b"\xff" * 16
        (src / f"bad{i}.tif").write_bytes(bytes(bad))
    (src / "good.tif").write_bytes(good)
    out = tmp_path / "out"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(mmcore.__file__).resolve().parent.parent)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "mmcore", "run", str(src), str(out), "--fallback", "pillow", *args]
        # From tmp_path: `python -m` puts the working directory first on sys.path, and from the
        # repository root (where CI runs pytest) that is the source tree's mmcore, unbuilt.
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)

    p = cli()
    assert p.returncode == 0, p.stderr
    log = out / "_mmcore_stderr.log"
    assert "Using code not yet in table" in log.read_text()
    assert "tempfile.tif" not in p.stderr and "images/s" in p.stderr  # the progress line only
    assert f"3 lines the codec libraries wrote to stderr: in {log}" in p.stdout
    statuses = sorted(r["status"] for r in read_output(out).to_pylist())
    assert statuses == ["CORRUPT", "CORRUPT", "CORRUPT", "OK"]
    size = log.stat().st_size
    p = cli()  # nothing to do: nothing printed, the log as it was
    assert p.returncode == 0 and "codec libraries" not in p.stdout and log.stat().st_size == size
    p = cli("--mode", "overwrite", "--quiet")
    assert p.returncode == 0 and log.stat().st_size == size  # removed, then this run's lines
    # A job that cannot start: its error is on stderr, not in a log.
    p = subprocess.run(
        [sys.executable, "-m", "mmcore", "run", str(src / "missing"), str(tmp_path / "o2")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert p.returncode == 1 and "error" in p.stderr


def test_codec_messages_kept_when_the_run_stops(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """codec_messages: lines written to fd 2 (as a C library writes them) reach OUT's log also when
    the run is interrupted; without a job folder they go back to stderr; the terminal stream
    writes past the capture."""
    from mmcore.jobs.runner import CODEC_LOG, MANIFEST, codec_messages

    (tmp_path / MANIFEST).write_text("{}")
    with pytest.raises(KeyboardInterrupt), codec_messages(tmp_path) as (terminal, said):
        os.write(2, b"dav1d: a damaged frame\n")
        terminal.write("progress\n")
        raise KeyboardInterrupt
    head, line = (tmp_path / CODEC_LOG).read_bytes().split(b"\n", 1)
    assert re.fullmatch(rb"== mmcore run, \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC ==", head), head
    assert line == b"dav1d: a damaged frame\n"
    assert said == [f"1 line the codec libraries wrote to stderr: in {tmp_path / CODEC_LOG}"]
    with codec_messages(tmp_path) as (terminal, said):  # a second run: its own heading; no newline
        os.write(2, b"x" * (3 << 20))  # more than one chunk, without a final newline
    runs = (tmp_path / CODEC_LOG).read_bytes().split(b"== mmcore run, ")
    assert len(runs) == 3 and runs[2].endswith(b"x" * (3 << 20) + b"\n")
    assert said == [f"1 line the codec libraries wrote to stderr: in {tmp_path / CODEC_LOG}"]
    with codec_messages(tmp_path / "none") as (terminal, said):
        os.write(2, b"no folder\n")
    assert said == []
    err = capfd.readouterr().err
    assert "progress\n" in err and "no folder\n" in err and "damaged" not in err


def test_report_counts_formats_and_says_how_to_add_the_fallback(tmp_path: Path) -> None:
    """mmcore report: a table of records by format (Pillow's names after the fallback); an output
    with UNSUPPORTED rows and no fallback gets a note with the command, one with it none."""
    from mmcore.jobs.report import report

    src = _mixed_folder(tmp_path)
    plain, added = tmp_path / "plain", tmp_path / "added"
    run(str(src), plain, Config(), progress=None)
    run(str(src), added, Config(fallback="pillow"), progress=None)
    report(plain)
    md = (plain / "report" / "report.md").read_text()
    assert "### Records by format" in md and "| png | 4 |" in md and "| (none) | 10 |" in md
    assert "9 records are UNSUPPORTED" in md and "--mode retry-failed --fallback pillow" in md
    report(added)
    md = (added / "report" / "report.md").read_text()
    assert "| png | 4 |" in md and "| bmp | 5 |" in md and "| tiff | 4 |" in md and "| (none) | 1 |" in md
    assert "UNSUPPORTED" not in md


def test_pillow_decodes_avif_for_a_build_without_libavif() -> None:
    """A build without libavif names AVIF UNSUPPORTED; the fallback then takes Pillow's AVIF plugin
    (Pillow 13 has one): fallback.decode gives Pillow's pixels and the format."""
    from PIL import features

    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF plugin")
    a = photos()[3]
    blob = encode(Image.fromarray(a), "AVIF", quality=90)
    d = fb.decode(blob, 10**8, "AVIF images are not supported by this build of mmcore")
    assert (d.status, d.format, d.width, d.height) == (mmcore.Status.OK, "avif", a.shape[1], a.shape[0])
    assert d.pixels is not None
    assert np.array_equal(d.pixels, np.asarray(Image.open(io.BytesIO(blob)).convert("RGB")))


@pytest.mark.skipif(pillow_heif is None, reason="needs pillow-heif to write the HEIC file")
def test_heic_without_pillow_heif_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow without pillow-heif's opener: a HEIC stays UNSUPPORTED, and the message names the
    package that would read it."""
    assert pillow_heif is not None
    pillow_heif.register_heif_opener()
    blob = encode(Image.fromarray(photos()[0]), "HEIF")
    (plain,) = rows({}, [blob])  # mmcore's own message
    Image.init()
    monkeypatch.delitem(Image.OPEN, "HEIF")  # (a Processor would register it again: decode alone)
    d = fb.decode(blob, 10**8, plain["error"])
    assert d.status == mmcore.Status.UNSUPPORTED and d.error is not None
    assert d.error.startswith("HEIF images are not supported")
    assert d.error.endswith(
        "Pillow reads HEIF / HEIC with pillow-heif (pip install pillow-heif), not installed here"
    )
