"""mmcore's DALI plugin and pipelines, on DALI's CPU-only mode: the operators give the library's
pixels and hashes bit for bit, a corrupt file never stops a batch, every source kind works, and the
plugin refuses a DALI it was not built for."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import corpus_dir, corpus_files

import mmcore

pytestmark = pytest.mark.dali

pytest.importorskip("nvidia.dali", reason="needs NVIDIA DALI (pip install 'mmcore[dali]')")
import mmcore.pipeline as mp  # noqa: E402

if mp.built_against() is None:
    if os.environ.get("MMCORE_REQUIRE_DALI_PLUGIN") == "1":
        raise RuntimeError(
            "DALI is installed but this mmcore has no DALI plugin (scripts/setup.sh test builds it)"
        )
    pytest.skip(
        "this mmcore was built without its DALI plugin (build with DALI present and no build isolation)",
        allow_module_level=True,
    )

from nvidia.dali import fn, pipeline_def, types  # noqa: E402

FORMAT_CODES = tuple(mmcore._core.image_format_names())  # the plugin's format output: an index here
ALL_KINDS = ("ahash", "dhash", "dhash_vertical", "phash", "phash_simple", "whash", "colorhash", "pdq")


def _hash_corpus() -> list[Path]:
    files: list[Path] = []
    for sub in ("jpeg", "png", "webp", "odd", "pdq_ref"):
        files += [p for p in corpus_files(sub) if not p.name.endswith((".csv", ".md", ".txt"))]
    return files


def _as_u64(col: pa.ChunkedArray) -> np.ndarray:
    return np.array(col.fill_null(0).to_pylist(), np.int64).view(np.uint64)


def _check_against_hash_batch(table: pa.Table, files: list[Path], kinds: tuple[str, ...], mode: str) -> None:
    ref = mmcore.hash_batch([str(f) for f in files], kinds=kinds, mode=mode)
    assert table.num_rows == len(files)
    status = table["status"].to_pylist()
    want = [mmcore.Status(int(s)).name for s in ref.status]
    bad = [(str(f), s, w) for f, s, w in zip(files, status, want, strict=True) if s != w]
    assert not bad, bad[:5]
    ok = np.isin(ref.status, (mmcore.Status.OK, mmcore.Status.OK_WARNING))
    for k in kinds:
        if k == "pdq":
            got = table["pdq"].to_pylist()
            mism = [
                str(f) for f, g, r, o in zip(files, got, ref["pdq"], ok, strict=True) if o and g != bytes(r)
            ]
            assert not mism, ("pdq", mism[:5])
            q = np.array(table["pdq_quality"].fill_null(0).to_pylist())
            assert np.array_equal(q[ok], ref["pdq_quality"][ok].astype(np.int64))
        else:
            got = _as_u64(table[k])
            mism = [str(f) for f, i in zip(files, np.nonzero(ok & (got != ref[k]))[0], strict=False)]
            assert not np.any(ok & (got != ref[k])), (k, mism[:5])
    # failed records: the hash columns are null and the message names the problem
    errors = table["error"].to_pylist()
    for i in np.nonzero(~ok)[0]:
        assert errors[i], files[i]
        assert table[kinds[0]][int(i)].as_py() is None


# ---- pipelines ----


@pytest.mark.corpus
def test_pipeline_hashes_equal_hash_batch_on_corpus() -> None:
    files = _hash_corpus()
    table = mp.build([str(f) for f in files], hashes=ALL_KINDS, batch_size=48, num_threads=2).to_table()
    assert table["id"].to_pylist() == [str(f) for f in files]
    _check_against_hash_batch(table, files, ALL_KINDS, "exact")


@pytest.mark.corpus
def test_pipeline_full_mode_pdq_equals_hash_batch() -> None:
    files = corpus_files("pdq_ref")[:40] + corpus_files("jpeg")[:20]
    files = [f for f in files if not f.name.endswith((".csv", ".md", ".txt"))]
    table = mp.build([str(f) for f in files], hashes=("pdq", "phash"), mode="full").to_table()
    _check_against_hash_batch(table, files, ("pdq", "phash"), "full")


@pytest.mark.corpus
def test_corrupt_files_mixed_in_never_stop_a_batch() -> None:
    """jpeg/ and corrupt/ interleaved, small batches: every batch completes, each corrupt file
    has decode_batch's status and message, the good files' hashes are right."""
    good = corpus_files("jpeg")
    bad = corpus_files("corrupt")
    mixed: list[Path] = []
    for i in range(max(len(good), len(bad))):
        mixed += good[i : i + 1] + bad[i : i + 1]
    batches = list(mp.build([str(f) for f in mixed], hashes=("phash", "pdq"), batch_size=16, num_threads=2))
    assert sum(b.num_rows for b in batches) == len(mixed)
    assert all(b.num_rows == 16 for b in batches[:-1])
    table = pa.Table.from_batches(batches)
    _check_against_hash_batch(table, mixed, ("phash", "pdq"), "exact")
    dec = mmcore.decode_batch([str(f) for f in mixed], exif_orientation=False)
    errors = table["error"].to_pylist()
    n_bad = 0
    for i, f in enumerate(mixed):
        if f.parent.name == "corrupt" and dec.status[i] not in (mmcore.Status.OK, mmcore.Status.OK_WARNING):
            n_bad += 1
            assert errors[i] == dec.errors[i], f
    assert n_bad > 0.9 * len(bad)


@pytest.mark.corpus
@pytest.mark.slow
def test_whole_corpus_folder() -> None:
    """The corpus folder as it is (photos, odd and damaged files, giant images, CSVs, .npy vectors,
    READMEs): one row per image file, sidecars skipped, every status hash_batch's."""
    root = corpus_dir()
    table = mp.build(root, hashes=("phash",), batch_size=64).to_table()
    ids = table["id"].to_pylist()
    assert len(ids) == len(set(ids)) and not any(i.endswith((".csv", ".md", ".npy")) for i in ids)
    ref = mmcore.hash_batch([str(root / i) for i in ids], kinds=("phash",))
    want = [mmcore.Status(int(x)).name for x in ref.status]
    assert table["status"].to_pylist() == want
    assert table.num_rows > 1500


def test_pipeline_rows_describe_each_image(tmp_path: Path) -> None:
    """id, format, width / height as displayed, orientation; statuses for junk and empty files."""
    imgs = mmcore.demo_images()
    rotated = tmp_path / "rot.jpg"
    rotated.write_bytes(_with_orientation(mmcore.encode_jpeg(np.zeros((20, 40, 3), np.uint8)), 6))
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "junk.bin").write_bytes(b"not an image at all" * 10)
    (tmp_path / "notes.txt").write_text("a sidecar: skipped")
    for p in imgs:
        (tmp_path / Path(p).name).write_bytes(Path(p).read_bytes())
    table = mp.build(tmp_path, hashes=("dhash",)).to_table()
    rows = {r["id"]: r for r in table.to_pylist()}
    assert "notes.txt" not in rows
    assert rows["rot.jpg"]["width"] == 20 and rows["rot.jpg"]["height"] == 40
    assert rows["rot.jpg"]["orientation"] == 6 and rows["rot.jpg"]["format"] == "jpeg"
    assert rows["empty.png"]["status"] == "CORRUPT" and rows["empty.png"]["dhash"] is None
    assert rows["junk.bin"]["status"] in ("CORRUPT", "UNSUPPORTED") and rows["junk.bin"]["error"]
    for p in imgs:
        name = Path(p).name
        info = mmcore.hash_batch([p], kinds=("dhash",))
        assert rows[name]["status"] == mmcore.Status(int(info.status[0])).name
        if info.status[0] == mmcore.Status.OK:
            assert np.int64(rows[name]["dhash"]).view(np.uint64) == info["dhash"][0]


def test_avif_files_through_the_pipeline_equal_hash_batch(tmp_path: Path) -> None:
    """AVIF through the plugin's decoder (the library's), as a folder and as a WebDataset tar."""
    avif = sorted((Path(__file__).parent / "data" / "avif").glob("*.avif"))
    if not mmcore.build_info()["codecs"]["avif"].startswith("libavif"):
        pytest.skip("mmcore built without libavif")
    table = mp.build([str(f) for f in avif], hashes=ALL_KINDS, batch_size=5, num_threads=2).to_table()
    _check_against_hash_batch(table, avif, ALL_KINDS, "exact")
    assert set(table["format"].to_pylist()) == {"avif"}
    shard = tmp_path / "avif.tar"
    with tarfile.open(shard, "w") as tf:
        for i, f in enumerate(avif):
            tf.add(f, arcname=f"{i:04d}.avif")
    rows = mp.build(shard, hashes=("phash",)).to_table()
    assert rows["status"].to_pylist() == ["OK"] * len(avif)
    assert (
        _as_u64(rows["phash"]).tolist()
        == mmcore.hash_batch([str(f) for f in avif], kinds=("phash",))["phash"].tolist()
    )


def _with_orientation(jpeg: bytes, orientation: int) -> bytes:
    """A JPEG with an EXIF APP1 segment carrying ``orientation``."""
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + b"\x00\x01" + b"\x01\x12\x00\x03\x00\x00\x00\x01"
    tiff += orientation.to_bytes(2, "big") + b"\x00\x00" + b"\x00\x00\x00\x00"
    app1 = b"Exif\x00\x00" + tiff
    seg = b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1
    return jpeg[:2] + seg + jpeg[2:]


@pytest.mark.corpus
def test_webdataset_tar_source(tmp_path: Path) -> None:
    good = corpus_files("jpeg")[:12] + corpus_files("png")[:3]
    bad = corpus_files("corrupt")[:5]
    tar_path = tmp_path / "shard-000.tar"
    members = []
    with tarfile.open(tar_path, "w") as tf:
        for i, f in enumerate(good + bad):
            ext = "png" if f.suffix.lower() == ".png" else "jpg"
            name = f"sample{i:04d}.{ext}"
            tf.add(f, arcname=name)
            meta = tarfile.TarInfo(f"sample{i:04d}.json")
            blob = b'{"caption": "x"}'
            meta.size = len(blob)
            tf.addfile(meta, io.BytesIO(blob))
            members.append(name)
    table = mp.build(tar_path, hashes=("phash", "pdq"), batch_size=8).to_table()
    assert table["id"].to_pylist() == [f"shard-000.tar/{m}" for m in members]
    _check_against_hash_batch(table, good + bad, ("phash", "pdq"), "exact")


def test_bad_tars_are_rows_not_crashes(tmp_path: Path) -> None:
    """A truncated tar is one SOURCE_ERROR row; members with absolute or '..' names are SOURCE_ERROR
    rows as in mmcore run (nothing is ever extracted); the good tar next to them is processed in
    full."""
    imgs = [Path(p) for p in mmcore.demo_images()]
    src = tmp_path / "src"
    src.mkdir()
    with tarfile.open(src / "a-good.tar", "w") as tf:
        for i, p in enumerate(imgs):
            tf.add(p, arcname=f"k{i}.jpg")
    with tarfile.open(tmp_path / "whole.tar", "w") as tf:
        tf.add(imgs[0], arcname="x0.jpg")
        tf.add(imgs[1], arcname="x1.jpg")
    blob = (tmp_path / "whole.tar").read_bytes()
    (src / "b-truncated.tar").write_bytes(blob[: len(blob) // 2])
    with tarfile.open(src / "c-evil.tar", "w") as tf:
        for name in ("../../escape.jpg", "/abs/olute.jpg"):
            info = tarfile.TarInfo(name)
            data = imgs[0].read_bytes()
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    # a member whose size field says 2^80 (base-256): tarfile raises ValueError, which stopped build()
    with tarfile.open(tmp_path / "gnu.tar", "w", format=tarfile.GNU_FORMAT) as tf:
        tf.add(imgs[0], arcname="x0.jpg")
        tf.add(imgs[1], arcname="x1.jpg")
    raw = bytearray((tmp_path / "gnu.tar").read_bytes())
    h = 512 + -(-imgs[0].stat().st_size // 512) * 512  # x1.jpg's header
    raw[h + 124 : h + 136] = b"\x80" + (2**80).to_bytes(11, "big")
    raw[h + 148 : h + 156] = b"%06o\x00 " % (256 + sum(raw[h : h + 148]) + sum(raw[h + 156 : h + 512]))
    (src / "d-absurd.tar").write_bytes(bytes(raw))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    table = mp.build(src, hashes=("phash",), batch_size=4).to_table()
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written anywhere
    rows = {r["id"]: r for r in table.to_pylist()}
    assert rows["b-truncated.tar/"]["status"] == "SOURCE_ERROR"
    assert "truncated" in rows["b-truncated.tar/"]["error"] or "tar" in rows["b-truncated.tar/"]["error"]
    ref = mmcore.hash_batch([str(p) for p in imgs], kinds=("phash",))
    for i in range(len(imgs)):
        assert rows[f"a-good.tar/k{i}.jpg"]["status"] == mmcore.Status(int(ref.status[i])).name
    assert rows["d-absurd.tar/x0.jpg"]["status"] == "OK"
    absurd = rows["d-absurd.tar/x1.jpg"]
    assert absurd["status"] == "SOURCE_ERROR" and "over the limit" in absurd["error"]
    assert rows["d-absurd.tar/"]["status"] == "SOURCE_ERROR"
    assert table.num_rows == len(imgs) + 1 + 2 + 3
    evil = [r for r in rows.values() if r["id"].startswith("c-evil.tar/")]
    assert len(evil) == 2 and all(r["status"] == "SOURCE_ERROR" and "refused" in r["error"] for r in evil)
    assert all(r["phash"] is None for r in evil)


def test_tars_dali_would_misread_give_mmcore_runs_rows(tmp_path: Path) -> None:
    """DALI's webdataset reader splits a name at its base name's first dot, matches extensions by
    case, keeps one image per key, reads only the ustar name (not a PAX one) and refuses a tar with
    no sample. Tars where any of that would lose or rename a row go through mmcore run's reader:
    the rows (ids, statuses) equal mmcore run's, and a sidecar-only tar next to them stops nothing."""
    from mmcore.jobs.config import Config
    from mmcore.jobs.runner import run
    from mmcore.jobs.schema import read_output

    imgs = [Path(p).read_bytes() for p in mmcore.demo_images()]
    src = tmp_path / "src"
    src.mkdir()
    shapes = {
        "dots.tar": ["img.0001.jpg", "d.jpg"],
        "samekey.tar": ["a.jpg", "a.png"],
        "case.tar": ["b.Jpg"],
        "hidden.tar": [".c.jpg"],
        "pax.tar": ["photos/" + "x" * 120 + ".jpg", "café.jpg", "é.jpg", "ü.jpg"],
        "repeat.tar": ["r.jpg", "s.jpg", "r.jpg"],
        "clean.tar": ["./k0.jpg", "dir.v1/k1.jpg", "k2.jpg"],
    }
    for tar, names in shapes.items():
        with tarfile.open(src / tar, "w", format=tarfile.PAX_FORMAT) as tf:
            for i, name in enumerate(names):
                info = tarfile.TarInfo(name)
                info.size = len(imgs[i % len(imgs)])
                tf.addfile(info, io.BytesIO(imgs[i % len(imgs)]))
    with tarfile.open(src / "meta-only.tar", "w") as tf:
        info = tarfile.TarInfo("0001.json")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"{}"))
    assert [t for t in sorted(shapes) if mp._tar_is_clean(str(src / t))] == ["clean.tar"]
    run(str(src), tmp_path / "out", Config(workers=1, hashes=("phash",)), progress=None)
    want = {r["id"]: (r["status"], r["phash"]) for r in read_output(tmp_path / "out").to_pylist()}
    got = {
        r["id"]: (r["status"], r["phash"]) for r in mp.build(src, hashes=("phash",)).to_table().to_pylist()
    }
    assert got == want
    assert len(got) == sum(len(n) for n in shapes.values())
    assert want["repeat.tar/r.jpg#2"][0] == "SOURCE_ERROR"


def test_tars_are_checked_as_the_pipeline_runs_in_growing_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """build() checks no tar (each check reads every member header: 93 minutes for 100,000 tars of
    2,000 members); the checks run on threads ahead of the pipeline, whose parts grow 4, 8, ...
    tars; a tar DALI would misread still goes through mmcore run's reader in place; the rows are
    mmcore run's, in order."""
    from mmcore.jobs.config import Config
    from mmcore.jobs.runner import run
    from mmcore.jobs.schema import read_output

    imgs = [Path(p).read_bytes() for p in mmcore.demo_images()[:3]]
    src = tmp_path / "src"
    src.mkdir()
    for t in range(15):
        with tarfile.open(src / f"shard-{t:03d}.tar", "w") as tf:
            names = [f"k{t:03d}a.jpg", f"k{t:03d}a.jpg" if t == 9 else f"k{t:03d}b.jpg"]  # 9: repeated
            for name, data in zip(names, imgs, strict=False):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    checked: list[str] = []
    real = mp._tar_is_clean
    monkeypatch.setattr(mp, "_tar_is_clean", lambda p: checked.append(Path(p).name) or real(p))
    pipe = mp.build(src, hashes=("phash",))
    assert checked == []
    parts = list(mp._parts(src))
    assert [(p.kind, len(p.tars) if p.kind == "tar" else None) for p in parts] == [
        ("tar", 4),
        ("tar", 5),  # cut at the misread tar
        ("arrow", None),
        ("tar", 5),
    ]
    run(str(src), tmp_path / "out", Config(workers=1, hashes=("phash",)), progress=None)
    want = [(r["id"], r["status"], r["phash"]) for r in read_output(tmp_path / "out").to_pylist()]
    got = [(r["id"], r["status"], r["phash"]) for r in pipe.to_table().to_pylist()]
    assert got == want and len(got) == 30


def test_file_names_that_are_not_utf8(tmp_path: Path) -> None:
    """A file whose name is not UTF-8 is a row with mmcore run's id, from a folder or a list."""
    src = tmp_path / "src"
    src.mkdir()
    data = Path(mmcore.demo_images()[0]).read_bytes()
    raw = os.fsdecode(b"caf\xe9.jpg")
    (src / raw).write_bytes(data)
    (src / "ok.jpg").write_bytes(data)
    rows = {r["id"]: r["status"] for r in mp.build(src, hashes=("phash",)).to_table().to_pylist()}
    assert rows == {"caf\\xe9.jpg": "OK", "ok.jpg": "OK"}
    listed = mp.build([str(src / raw)], hashes=("phash",)).to_table().to_pylist()
    assert [r["status"] for r in listed] == ["OK"] and listed[0]["id"].endswith("caf\\xe9.jpg")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")
def test_a_fifo_in_the_folder_is_a_row_and_never_waited_on(tmp_path: Path) -> None:
    """A FIFO among the images is a READ_ERROR row (looking at its first bytes used to wait for a
    writer forever); a fresh process with a time limit, so that a wait fails instead of hanging."""
    import json
    import subprocess
    import sys

    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.jpg").write_bytes(Path(mmcore.demo_images()[0]).read_bytes())
    os.mkfifo(src / "pipe.jpg")
    script = (
        "import json, sys, mmcore.pipeline as mp\n"
        "rows = mp.build(sys.argv[1], hashes=('phash',)).to_table().to_pylist()\n"
        "print(json.dumps({r['id']: [r['status'], r['error']] for r in rows}))\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", script, str(src)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    rows = json.loads(p.stdout.strip().splitlines()[-1])
    assert set(rows) == {"ok.jpg", "pipe.jpg"}
    assert rows["ok.jpg"][0] == "OK"
    assert rows["pipe.jpg"][0] == "READ_ERROR" and "not a regular file" in rows["pipe.jpg"][1]


@pytest.mark.corpus
def test_parquet_and_arrow_sources(tmp_path: Path) -> None:
    files = corpus_files("jpeg")[:10] + corpus_files("corrupt")[:4] + corpus_files("webp")[:4]
    blobs: list[bytes | None] = [f.read_bytes() for f in files]
    blobs[3] = None  # a null bytes cell: a READ_ERROR row, not a failed batch
    ids = [f"img{i}" for i in range(len(files))]
    pq.write_table(pa.table({"key": ids, "image": pa.array(blobs, pa.binary())}), tmp_path / "in.parquet")
    table = mp.build(tmp_path / "in.parquet", hashes=("phash",), batch_size=5).to_table()
    assert table["id"].to_pylist() == ids
    rows = table.to_pylist()
    # the text mmcore run gives the same cell
    assert rows[3]["status"] == "READ_ERROR" and rows[3]["error"] == "the record has neither bytes nor a path"
    keep = [i for i in range(len(files)) if i != 3]
    _check_against_hash_batch(table.take(keep), [files[i] for i in keep], ("phash",), "exact")

    # a path column, and batches handed over directly (an iterable of RecordBatches)
    paths = [str(f) for f in files] + [str(tmp_path / "missing.jpg")]
    batch = pa.record_batch({"id": [f"p{i}" for i in range(len(paths))], "path": paths})
    got = pa.Table.from_batches(list(mp.build(iter([batch.slice(0, 7), batch.slice(7)]), hashes=("phash",))))
    assert got["id"].to_pylist() == [f"p{i}" for i in range(len(paths))]
    assert got["status"][len(files)].as_py() == "READ_ERROR"
    _check_against_hash_batch(got.slice(0, len(files)), files, ("phash",), "exact")


@pytest.mark.corpus
def test_rows_equal_mmcore_run(tmp_path: Path) -> None:
    """On one folder of loose files (corrupt ones among them), a WebDataset tar and a Parquet file,
    the pipeline's rows equal ``mmcore run``'s: ids, statuses, sizes, orientation, format, hashes."""
    from mmcore.jobs.config import Config
    from mmcore.jobs.runner import run
    from mmcore.jobs.schema import read_output

    src = tmp_path / "src"
    (src / "loose").mkdir(parents=True)
    files = corpus_files("jpeg")[:15] + corpus_files("corrupt")[:8] + corpus_files("png")[:4]
    files += [p for p in corpus_files("odd") if "exiforient" in p.name][:4]
    for i, f in enumerate(files):
        (src / "loose" / f"{i:03d}_{f.name}").write_bytes(f.read_bytes())
    # over libjpeg's 65,500 a side (TOO_LARGE from the header): both give the header's size
    small = (src / "loose" / f"000_{files[0].name}").read_bytes()
    at = small.index(b"\xff\xc0") + 5
    (src / "loose" / "huge.jpg").write_bytes(small[:at] + b"\xff\xff\xff\xfe" + small[at + 4 :])
    with tarfile.open(src / "shard.tar", "w") as tf:
        for i, f in enumerate(corpus_files("webp")[:6] + corpus_files("corrupt")[8:11]):
            tf.add(f, arcname=f"m{i}.{'webp' if f.suffix == '.webp' else 'jpg'}")
    blobs = [f.read_bytes() for f in corpus_files("jpeg")[15:22]]
    pq.write_table(
        pa.table({"id": [f"row{i}" for i in range(len(blobs))], "bytes": blobs}), src / "t.parquet"
    )

    run(
        str(src),
        tmp_path / "out",
        Config(workers=2, hashes=("phash", "dhash", "ahash", "pdq")),
        progress=None,
    )
    want = {r["id"]: r for r in read_output(tmp_path / "out").to_pylist()}
    got = {
        r["id"]: r for r in mp.build(src, hashes=("phash", "dhash", "ahash", "pdq")).to_table().to_pylist()
    }
    assert sorted(got) == sorted(want)
    for rid, g in got.items():
        w = want[rid]
        for col in ("status", "format", "width", "height", "orientation", "phash", "dhash", "ahash", "pdq"):
            assert g[col] == w[col], (rid, col, g[col], w[col])
        assert (g["pdq_quality"] or 0) == (w["pdq_quality"] or 0), rid


def test_thumbnails_and_numpy_output(tmp_path: Path) -> None:
    imgs = mmcore.demo_images()
    table = mp.build(imgs, hashes=("phash",), thumbnail=48).to_table()
    for path, row in zip(imgs, table.to_pylist(), strict=True):
        if row["status"] not in ("OK", "OK_WARNING"):
            assert row["thumbnail"] is None
            continue
        want = mmcore.thumbnail(path, short_side=48, upscale=False)
        assert row["thumbnail"] == mmcore.encode_jpeg(want)  # the library's thumbnail, JPEG-encoded
    batches = list(mp.build(imgs, hashes=("phash", "pdq"), output="numpy", batch_size=4))
    assert batches[0]["phash"].dtype == np.uint64 and batches[0]["pdq"].shape[1:] == (32,)
    ref = mmcore.hash_batch(imgs, kinds=("phash", "pdq"))
    ph = np.concatenate([b["phash"] for b in batches])
    st = np.concatenate([b["status"] for b in batches])
    assert np.array_equal(st, ref.status)
    ok = np.isin(ref.status, (0, 1))
    assert np.array_equal(ph[ok], ref["phash"][ok])


def test_gpu_operator_is_in_the_plugin_and_gpu_builds_check_their_device() -> None:
    """The plugin carries the GPU mmcore_hash (when the package has the CUDA kernels) and still
    loads without a driver; device="gpu" refuses CPU-only kinds and modes, and says why it cannot
    run where there is no device."""
    from nvidia.dali import backend

    imgs = mmcore.demo_images()
    with pytest.raises(ValueError, match="exact mode"):
        mp.build(imgs, device="gpu", hashes=("phash", "whash"))
    with pytest.raises(ValueError, match="exact mode"):
        mp.build(imgs, device="gpu", hashes=("pdq",), mode="full")
    if not mmcore.build_info()["cuda_compiled"]:
        with pytest.raises(mmcore.DeviceError, match="without CUDA"):
            mp.build(imgs, device="gpu")
        return
    mp.load_plugin()  # the builds above refuse before loading it: alone, this test had it unloaded
    assert "MmcoreHash" in backend.RegisteredGPUOps()
    if not mmcore.build_info()["cuda_available"]:
        with pytest.raises(mmcore.DeviceError, match="no usable CUDA device"):
            mp.build(imgs, device="gpu")


@pytest.mark.gpu
@pytest.mark.skipif(not mmcore.build_info()["cuda_available"], reason="needs a CUDA device")
def test_gpu_pipeline_rows_equal_cpu_rows() -> None:
    files = corpus_files("jpeg")[:40] + corpus_files("corrupt")[:20]
    kinds = ("phash", "dhash", "ahash", "pdq")
    cpu = mp.build([str(f) for f in files], hashes=kinds, batch_size=16).to_table().to_pylist()
    gpu = mp.build([str(f) for f in files], hashes=kinds, batch_size=16, device="gpu").to_table().to_pylist()
    assert gpu == cpu


def test_build_rejects_bad_arguments() -> None:
    imgs = mmcore.demo_images()
    with pytest.raises(ValueError, match="hashes"):
        mp.build(imgs, hashes=("nohash",))
    with pytest.raises(ValueError, match="twice"):
        mp.build(imgs, hashes=("phash", "phash"))
    with pytest.raises(ValueError, match="mode"):
        mp.build(imgs, mode="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_size"):
        mp.build(imgs, batch_size=0)
    with pytest.raises(TypeError, match="source"):
        mp.build(42)
    # a path of a list that does not exist is a row, as a file gone from a folder is
    rows = mp.build([imgs[0], "/nonexistent/x.jpg"], hashes="phash").to_table().to_pylist()
    assert [r["status"] for r in rows] == ["OK", "READ_ERROR"] and "No such file" in rows[1]["error"]
    with pytest.raises(TypeError, match="a list of paths must hold only paths"):
        mp.build([imgs[0], None])
    with pytest.raises(ValueError, match="num_threads"):
        mp.build(imgs, num_threads=True)
    assert mp.build(imgs, num_threads=5000).num_threads == 4 * (
        os.cpu_count() or 1
    )  # DALI would start them all
    with pytest.raises(ValueError, match="not files"):
        mp.build([os.path.dirname(imgs[0])])
    for source in (b"\xff\xd8\xff", [b"\xff\xd8\xff"], {"id": ["a"]}, "/nonexistent-dir/"):
        with pytest.raises((TypeError, FileNotFoundError, ValueError)):
            mp.build(source)
    with pytest.raises(TypeError, match="gave a bytes"):
        mp.build([Path(imgs[0]).read_bytes()])
    for name, value in (
        ("thumbnail", 1 << 31),
        ("thumbnail_quality", 0),
        ("thumbnail_webp_method", 7),
        ("max_pixels", 1 << 63),
        ("max_pixels", 0),  # the operator reads 0 as no limit: None is the default
        ("batch_size", 1 << 31),
    ):
        with pytest.raises(ValueError, match=name):
            mp.build(imgs, **{name: value})
    with pytest.raises(ValueError, match="no bytes column"):
        list(mp.build(pa.table({"id": ["a"], "n": [1]})))
    p = mp.build(imgs)
    list(p)
    with pytest.raises(RuntimeError, match="runs once"):
        list(p)


# ---- operators ----


def _run(pipe_fn: Any, n: int) -> list[list[np.ndarray]]:
    mp.load_plugin()  # fn.mmcore_* exist once the plugin is loaded (build() loads it too)
    pipe = pipe_fn()
    pipe.build()
    outs = pipe.run()
    return [[np.array(o[i]) for i in range(n)] for o in outs]


@pytest.mark.corpus
def test_decode_operator_equals_library() -> None:
    """fn.mmcore_decode's pixels, statuses and header facts equal mmcore.decode / thumbnail."""
    files = corpus_files("jpeg")[:12] + corpus_files("png")[:6] + corpus_files("webp")[:6]
    files += corpus_files("corrupt")[:6] + [p for p in corpus_files("odd") if "exiforient" in p.name][:6]
    blobs = [np.frombuffer(f.read_bytes(), np.uint8) for f in files]
    n = len(blobs)

    @pipeline_def(batch_size=n, num_threads=2, device_id=None)
    def pipe() -> Any:
        enc = fn.external_source(source=lambda: blobs, batch=True, dtype=types.UINT8, ndim=1)
        rgb, st, msg, meta = fn.mmcore_decode(enc)
        gray, gst, _, _ = fn.mmcore_decode(enc, color="gray", exif_orientation=False)
        th, tst, _, _ = fn.mmcore_decode(enc, short_side=64, filter="bicubic")
        crop, _, _, _ = fn.mmcore_decode(enc, crop=[40, 30])
        return rgb, st, msg, meta, gray, gst, th, tst, crop

    rgb, st, msg, meta, gray, _gst, th, _tst, crop = _run(pipe, n)
    ref = mmcore.decode_batch([bytes(b) for b in blobs])
    for i, f in enumerate(files):
        assert int(st[i]) == ref.status[i], f
        text = bytes(msg[i]).decode()
        assert text == (ref.errors[i] or ""), f
        info = mmcore.image_info(bytes(blobs[i]))
        if ref.images[i] is None:
            assert rgb[i].size == 0 or not rgb[i].any()
            # The format is the signature's even when the record fails, as in mmcore run.
            assert int(meta[i][3]) == FORMAT_CODES.index(info["format"]), f
            continue
        assert np.array_equal(rgb[i], ref.images[i]), f
        o = info["orientation"]
        w, h = (info["height"], info["width"]) if 5 <= o <= 8 else (info["width"], info["height"])
        assert list(meta[i]) == [
            w,
            h,
            o,
            FORMAT_CODES.index(info["format"]),
        ]
        g = mmcore.decode(bytes(blobs[i]), color="gray", exif_orientation=False)
        assert np.array_equal(gray[i][..., 0], g), f
        t = mmcore.thumbnail(bytes(blobs[i]), short_side=64, filter="bicubic")
        assert np.array_equal(th[i], t), f
        c = mmcore.thumbnail(bytes(blobs[i]), crop=(40, 30))
        assert np.array_equal(crop[i], c), f


@pytest.mark.corpus
@pytest.mark.parametrize("exif", [False, True])
def test_decode_operator_thumbnail_outputs_equal_thumbnail_batch(exif: bool) -> None:
    """fn.mmcore_decode(thumbnail=N)'s extra outputs are mmcore.thumbnail_batch's images, statuses
    and messages, whether made from the decoded image (JPEG, WebP, GIF at full scale) or decoded
    again (PNG, reduced JPEG scales, turned images when the main decode turns them)."""
    files = corpus_files("jpeg")[::6] + corpus_files("png")[::8] + corpus_files("webp")[::5]
    files += corpus_files("corrupt")[::40] + [p for p in corpus_files("odd") if "exiforient" in p.name]
    files += [p for p in corpus_files("odd") if p.suffix.lower() == ".gif"][:4]
    blobs = [np.frombuffer(f.read_bytes(), np.uint8) for f in files]
    n = len(blobs)

    @pipeline_def(batch_size=n, num_threads=2, device_id=None)
    def pipe() -> Any:
        enc = fn.external_source(source=lambda: blobs, batch=True, dtype=types.UINT8, ndim=1)
        return tuple(fn.mmcore_decode(enc, exif_orientation=exif, thumbnail=160, filter="bicubic"))

    outs = _run(pipe, n)
    assert len(outs) == 7
    img, st, _, _, th, tst, tmsg = outs
    want = mmcore.thumbnail_batch([bytes(b) for b in blobs], short_side=160, upscale=False, filter="bicubic")
    full = mmcore.decode_batch([bytes(b) for b in blobs], exif_orientation=exif)
    for i, f in enumerate(files):
        assert int(st[i]) == full.status[i], f
        assert int(tst[i]) == want.status[i], f
        assert bytes(tmsg[i]).decode() == (want.errors[i] or ""), f
        if want.images[i] is not None:
            assert np.array_equal(th[i], want.images[i]), f
        if full.images[i] is not None:
            assert np.array_equal(img[i], full.images[i]), f


def test_decode_operator_max_pixels_and_arguments() -> None:
    data = np.frombuffer(mmcore.encode_jpeg(np.full((50, 60, 3), 90, np.uint8)), np.uint8)

    @pipeline_def(batch_size=1, num_threads=1, device_id=None)
    def pipe() -> Any:
        enc = fn.external_source(source=lambda: [data], batch=True, dtype=types.UINT8, ndim=1)
        img, st, msg, meta = fn.mmcore_decode(enc, max_pixels=1000)
        return img, st, msg, meta

    img, st, msg, meta = _run(pipe, 1)
    assert int(st[0]) == mmcore.Status.TOO_LARGE and img[0].size == 0
    assert "limit" in bytes(msg[0]).decode() or "pixels" in bytes(msg[0]).decode()
    assert list(meta[0]) == [60, 50, 1, 1]  # over the limit, the header's facts (as mmcore run)

    @pipeline_def(batch_size=1, num_threads=1, device_id=None)
    def bad() -> Any:
        enc = fn.external_source(source=lambda: [data], batch=True, dtype=types.UINT8, ndim=1)
        return fn.mmcore_decode(enc, color="cmyk")[0]

    with pytest.raises(Exception, match="color"):
        p = bad()
        p.build()
        p.run()


def test_hash_operator_equals_library(rng: np.random.Generator) -> None:
    """fn.mmcore_hash on arrays (grey, RGB, RGBA, odd sizes, an empty one) equals mmcore.hash_batch."""
    images = [
        rng.integers(0, 256, (h, w, c), dtype=np.uint8)
        for h, w, c in [(33, 47, 3), (64, 64, 1), (600, 300, 3), (9, 700, 4), (5, 5, 3)]
    ]
    images.append(np.zeros((0, 0, 3), np.uint8))
    n = len(images)

    @pipeline_def(batch_size=n, num_threads=2, device_id=None)
    def pipe() -> Any:
        img = fn.external_source(source=lambda: images, batch=True, dtype=types.UINT8, ndim=3, layout="HWC")
        return tuple(fn.mmcore_hash(img, kinds=list(ALL_KINDS)))

    outs = _run(pipe, n)
    named = dict(zip([*ALL_KINDS, "pdq_quality", "status", "msg"], outs, strict=True))
    ref = mmcore.hash_batch([im if im.shape[2] != 1 else im[..., 0] for im in images[:-1]], kinds=ALL_KINDS)
    for i in range(n - 1):
        assert int(named["status"][i]) == ref.status[i]
        for k in ALL_KINDS:
            if k == "pdq":
                assert bytes(named["pdq"][i]) == bytes(ref["pdq"][i])
                assert int(named["pdq_quality"][i]) == ref["pdq_quality"][i]
            else:
                assert int(named[k][i]) == int(ref[k][i]), (k, images[i].shape)
    assert int(named["status"][n - 1]) == mmcore.Status.CORRUPT
    assert "empty" in bytes(named["msg"][n - 1]).decode()
    assert int(named["phash"][n - 1]) == 0


#: imagehash's other sizes through the pipeline: (kinds, sizes).
SIZED = [
    (("phash", "dhash", "ahash", "whash", "pdq"), {"hash_size": 16}),
    (("phash", "phash_simple", "dhash_vertical"), {"hash_size": 12, "highfreq_factor": 5}),
    (("colorhash", "ahash"), {"binbits": 8, "hash_size": 5}),
]


@pytest.mark.parametrize(("kinds", "sizes"), SIZED)
def test_sized_hashes_equal_hash_batch(kinds: tuple[str, ...], sizes: dict[str, int]) -> None:
    """hash_size / highfreq_factor / binbits: kinds over 64 bits are binary(ceil(bits / 8)) columns
    (numpy: uint8 rows), the rest int64, each hash_batch's at the same sizes; corrupt files mixed in
    are rows with their status and null hashes."""
    files = [Path(p) for p in mmcore.demo_images()]
    files += corpus_files("jpeg")[:12] + corpus_files("corrupt")[:6]
    paths = [str(f) for f in files]
    table = mp.build(paths, hashes=kinds, batch_size=8, num_threads=2, **sizes).to_table()  # type: ignore[arg-type]
    ref = mmcore.hash_batch(paths, kinds=kinds, **sizes)  # type: ignore[arg-type]
    assert table["status"].to_pylist() == [mmcore.Status(int(x)).name for x in ref.status]
    ok = np.isin(ref.status, (mmcore.Status.OK, mmcore.Status.OK_WARNING))
    assert ok.sum() >= 6
    for k in kinds:
        got = table[k].to_pylist()
        bits = ref.bits.get(k, 64)
        if k == "pdq":
            want: list[Any] = [bytes(r) if o else None for r, o in zip(ref[k], ok, strict=True)]
        elif bits > 64:
            assert table.schema.field(k).type == pa.binary((bits + 7) // 8), k
            want = [bytes(r) if o else None for r, o in zip(ref[k], ok, strict=True)]
        else:
            assert table.schema.field(k).type == pa.int64(), k
            want = [int(v) if o else None for v, o in zip(ref[k].view(np.int64), ok, strict=True)]
        assert got == want, k
    batch = next(iter(mp.build(paths[:4], hashes=kinds, output="numpy", **sizes)))  # type: ignore[arg-type]
    for k in kinds:
        if ref.bits.get(k, 64) > 64 and k != "pdq":
            assert batch[k].dtype == np.uint8 and batch[k].shape == (4, (ref.bits[k] + 7) // 8)
            np.testing.assert_array_equal(batch[k][ok[:4]], ref[k][:4][ok[:4]])


def test_sized_hashes_misuse() -> None:
    src = mmcore.demo_images()[:1]
    with pytest.raises(ValueError, match="phash needs hash_size x highfreq_factor"):
        mp.build(src, hashes=("phash",), hash_size=7)
    with pytest.raises(ValueError, match=r"hash_size must be 2\.\.64"):
        mp.build(src, hashes=("dhash",), hash_size=65)
    with pytest.raises(ValueError, match=r"binbits must be 1\.\.16"):
        mp.build(src, hashes=("colorhash",), binbits=0)
    with pytest.raises(ValueError, match="default sizes"):
        mp.build(src, hashes=("phash",), hash_size=16, device="gpu")
    mp.build(src, hashes=("pdq",), hash_size=7)  # the sizes do not apply to PDQ

    @pipeline_def(batch_size=1, num_threads=1, device_id=None)
    def pipe() -> Any:
        img = fn.external_source(source=lambda: [np.zeros((8, 8, 3), np.uint8)], batch=True, layout="HWC")
        return tuple(fn.mmcore_hash(img, kinds=["phash"], hash_size=7))

    with pytest.raises(RuntimeError, match="mmcore_hash: phash needs hash_size"):
        p = pipe()
        p.build()
        p.run()


# ---- the plugin ----


def test_dynamic_mode_sees_the_operators(tmp_path: Path) -> None:
    """Loaded before DALI's dynamic mode is imported, the operators are there too (a fresh process:
    the plugin and the dynamic module are process state)."""
    import subprocess
    import sys

    script = """
import numpy as np, mmcore, mmcore.pipeline as mp
mp.load_plugin()
import nvidia.dali.experimental.dynamic as ndd
files = mmcore.demo_images()
blobs = [np.frombuffer(open(f, "rb").read(), np.uint8) for f in files] + [np.zeros(7, np.uint8)]
img, st, msg, info = ndd.mmcore_decode(ndd.batch(blobs), exif_orientation=False, device="cpu")
ph, pst, pmsg = ndd.mmcore_hash(img, kinds=["phash"], device="cpu")
ref = mmcore.hash_batch(files, kinds=["phash"])
got = [int(np.asarray(x)) for x in ph]
status = [int(np.asarray(x)) for x in st]
assert status[-1] == int(mmcore.Status.CORRUPT), status
for i in range(len(files)):
    assert status[i] == ref.status[i], (i, status[i])
    if ref.ok[i]:
        assert got[i] == int(ref["phash"][i]), i
print("ok", len(got))
"""
    p = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert p.returncode == 0 and "ok" in p.stdout, p.stdout[-2000:] + p.stderr[-3000:]


def test_plugin_version_check(monkeypatch: pytest.MonkeyPatch) -> None:
    path = mp.load_plugin()
    assert path.endswith("libmmcore_dali.so") and mp.load_plugin() == path  # once per process
    import nvidia.dali

    assert mp.built_against() == nvidia.dali.__version__
    monkeypatch.setattr(nvidia.dali, "__version__", "1.0.0")
    with pytest.raises(ImportError, match=r"built against DALI .* but DALI 1\.0\.0 is installed"):
        mp.load_plugin()
    with pytest.raises(ImportError, match="built against"):
        mp.build(mmcore.demo_images())
    monkeypatch.undo()
    monkeypatch.setattr(mp, "built_against", lambda: None)
    with pytest.raises(ImportError, match="without its DALI plugin"):
        mp.load_plugin()


def test_build_info_names_the_plugin() -> None:
    info = mmcore.build_info()
    assert info["dali_available"] is True
    assert info["dali_plugin"] == mp.built_against()


def test_arrow_struct_images_binary_keys_and_tar_order(tmp_path: Path) -> None:
    """A Hugging Face image struct column in a Table, binary keys (their text, as mmcore run
    gives), a tar whose own name is not UTF-8 (mmcore run's reader, not a failed run), and tars
    in source order whichever reader takes them; a repeated member's id never equals a real one."""
    from mmcore.jobs.config import Config
    from mmcore.jobs.runner import run
    from mmcore.jobs.schema import read_output

    imgs = [Path(p).read_bytes() for p in mmcore.demo_images()]
    # without bytes, the struct's path is read (as mmcore run reads it): a missing file is a
    # READ_ERROR row, an existing one is hashed
    struct = pa.array(
        [
            {"bytes": imgs[0], "path": "a.jpg"},
            {"bytes": None, "path": "b.jpg"},
            {"bytes": None, "path": str(mmcore.demo_images()[1])},
        ],
        pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
    )
    table = pa.table({"key": [b"k1", b"k\xff", b"k2"], "image": struct})
    rows = mp.build(table, hashes=("phash",)).to_table()
    assert rows["id"].to_pylist() == ["k1", "k\\xff", "k2"]
    assert rows["status"].to_pylist() == ["OK", "READ_ERROR", "OK"]
    want = mmcore.hash_batch(imgs[:2], kinds=("phash",))["phash"].view(np.int64)
    assert [rows["phash"][0].as_py(), rows["phash"][2].as_py()] == list(want)

    src = tmp_path / "src"
    src.mkdir()

    def tar(name: bytes, members: list[str]) -> None:
        with tarfile.open(os.path.join(os.fsencode(src), name), "w") as tf:
            for i, m in enumerate(members):
                info = tarfile.TarInfo(m)
                info.size = len(imgs[i % len(imgs)])
                tf.addfile(info, io.BytesIO(imgs[i % len(imgs)]))

    tar(b"a_repeat.tar", ["dup.jpg", "dup.jpg", "dup.jpg#2"])  # mmcore run's reader
    tar(b"b_clean.tar", ["k0.jpg", "k1.jpg"])  # DALI's reader
    tar(b"c_\xffname.tar", ["x.jpg"])  # not UTF-8: mmcore run's reader
    tar(b"d_clean.tar", ["k2.jpg"])
    run(str(src), tmp_path / "out", Config(workers=1, hashes=("phash",)), progress=None)
    want = [(r["id"], r["status"], r["phash"]) for r in read_output(tmp_path / "out").to_pylist()]
    got = [
        (r["id"], r["status"], r["phash"]) for r in mp.build(src, hashes=("phash",)).to_table().to_pylist()
    ]
    assert got == want
    ids = [i for i, _, _ in got]
    assert len(ids) == len(set(ids)) == 7
    assert set(ids[:3]) == {"a_repeat.tar/dup.jpg", "a_repeat.tar/dup.jpg#2", "a_repeat.tar/dup.jpg#2#2"}
    assert [i.split("/")[0] for i in ids[3:]] == ["b_clean.tar"] * 2 + ["c_\\xffname.tar", "d_clean.tar"]


def test_hash_operator_refuses_a_layout_it_would_misread() -> None:
    """A CHW tensor (layout given) is an error at once, not an image hashed wrong with status OK."""
    chw = [np.zeros((3, 100, 4), np.uint8)]

    @pipeline_def(batch_size=1, num_threads=1, device_id=None)
    def pipe() -> Any:
        img = fn.external_source(source=lambda: chw, batch=True, dtype=types.UINT8, ndim=3, layout="CHW")
        return tuple(fn.mmcore_hash(img, kinds=["phash"]))

    with pytest.raises(Exception, match="layout CHW"):
        _run(pipe, 1)


def test_tiny_files_with_huge_headers_do_not_size_the_batch(tmp_path: Path) -> None:
    """16 files of 1 KB whose JPEG headers claim 12000x12000 (under the pixel limit): the batch's
    outputs are no longer sized from the headers first (6.9 GB), so under a 6 GB address-space
    limit the pipeline gives 16 CORRUPT rows instead of dying; a real image as flat (and as
    compressed) takes the same path and keeps its pixels."""
    import subprocess
    import sys

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    d = bytearray(buf.getvalue())
    sof = d.find(b"\xff\xc0")
    d[sof + 5 : sof + 9] = (12000).to_bytes(2, "big") * 2
    bomb = tmp_path / "bomb"
    bomb.mkdir()
    for k in range(16):
        (bomb / f"b{k:02d}.jpg").write_bytes(bytes(d[:1075]))
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (3000, 2000), (90, 120, 150)).save(flat / "flat.jpg", quality=90)
    assert (flat / "flat.jpg").stat().st_size * 64 < 3000 * 2000 * 3  # it takes the vetting path
    code = f"""
import resource
resource.setrlimit(resource.RLIMIT_AS, (6 << 30, resource.RLIM_INFINITY))
import mmcore.pipeline as mp
rows = mp.build({str(bomb)!r}, hashes=("phash",)).to_table().to_pylist()
assert len(rows) == 16 and {{r["status"] for r in rows}} == {{"CORRUPT"}}, rows[:2]
assert rows[0]["width"] == 12000 and "truncated" in rows[0]["error"]
print("done")
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert out.returncode == 0 and "done" in out.stdout, out.stderr[-2000:]

    @pipeline_def(batch_size=1, num_threads=1, device_id=None)
    def pipe() -> Any:
        data, _ = fn.readers.file(files=[str(flat / "flat.jpg")])
        return tuple(fn.mmcore_decode(data))

    outs = _run(pipe, 1)
    np.testing.assert_array_equal(outs[0][0], mmcore.decode(flat / "flat.jpg"))
    assert int(outs[1][0]) == mmcore.Status.OK


def test_wds_ids_from_source_info_by_lookup() -> None:
    """DALI's ``<tar>:<offset>:<member>`` to mmcore run's ``<tar relative to root>/<member>``, with
    ``:`` in the tar path and in the member name, by a set lookup (a scan of the tar list per
    sample cost 9.6 ms with 100k tars)."""
    tars = frozenset({"/d/a.tar", "/d/x:y.tar", "/d/x"})
    assert mp._wds_id("/d/a.tar:1536:0001.jpg", tars, "/d") == "a.tar/0001.jpg"
    assert mp._wds_id("/d/x:y.tar:512:m:1.jpg", tars, "/d") == "x:y.tar/m:1.jpg"
    assert mp._wds_id("/d/x:0:k.png", tars, "/d") == "x/k.png"
    assert mp._wds_id("/e/b.tar:0:k.png", tars, "/d") == "/e/b.tar:0:k.png"  # not a known tar: as given


def test_fallback_rows_equal_mmcore_run(tmp_path: Path) -> None:
    """``fallback="pillow"``: TIFF, BMP, PPM and JPEG 2000 files (loose, in a WebDataset tar and
    in a Parquet file) among JPEGs, a junk TIFF and a damaged BMP give mmcore run --fallback
    pillow's rows, thumbnails included; without it they are UNSUPPORTED rows."""
    from PIL import Image

    from mmcore.jobs.config import Config
    from mmcore.jobs.runner import run
    from mmcore.jobs.schema import read_output

    pics = [
        np.asarray(Image.open(p).convert("RGB"))
        for p in mmcore.demo_images()
        if mmcore.image_info(p)["status"] == mmcore.Status.OK
    ][:4]

    def enc(a: np.ndarray, fmt: str, **kw: Any) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, fmt, **kw)
        return buf.getvalue()

    src = tmp_path / "src"
    (src / "loose").mkdir(parents=True)
    files = {
        "a.tif": enc(pics[0], "TIFF", compression="tiff_lzw"),
        "b.bmp": enc(pics[1], "BMP"),
        "c.ppm": enc(pics[2], "PPM"),
        "d.jp2": enc(pics[3], "JPEG2000"),
        "e.jpg": enc(pics[0], "JPEG", quality=90),
        "junk.tif": b"II*\x00" + bytes(60),
        "cut.bmp": enc(pics[1], "BMP")[:300],
        "turned.tif": enc(pics[2], "TIFF", tiffinfo={0x0112: 6}),
    }
    for name, blob in files.items():
        (src / "loose" / name).write_bytes(blob)
    with tarfile.open(src / "shard.tar", "w") as tf:
        for i, blob in enumerate([files["b.bmp"], files["e.jpg"], files["a.tif"]]):
            info = tarfile.TarInfo(f"m{i}.{('bmp', 'jpg', 'tif')[i]}")
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
    blobs = [files["c.ppm"], files["d.jp2"], files["junk.tif"]]
    pq.write_table(pa.table({"id": [f"row{i}" for i in range(3)], "bytes": blobs}), src / "t.parquet")

    kinds = ("phash", "dhash", "ahash", "pdq")
    cfg = Config(workers=2, hashes=kinds, fallback="pillow", thumbnail=48)
    run(str(src), tmp_path / "out", cfg, progress=None)
    want = {r["id"]: r for r in read_output(tmp_path / "out").to_pylist()}
    table = mp.build(src, hashes=kinds, thumbnail=48, fallback="pillow", batch_size=4).to_table()
    got = {r["id"]: r for r in table.to_pylist()}
    assert sorted(got) == sorted(want) and len(got) == 14
    assert {r["status"] for r in got.values()} == {"OK", "CORRUPT", "UNSUPPORTED"}
    assert got["loose/turned.tif"]["orientation"] == 1 and got["loose/a.tif"]["format"] == "tiff"
    for rid, g in got.items():
        w = want[rid]
        for col in ("status", "error", "format", "width", "height", "orientation", *kinds, "thumbnail"):
            assert g[col] == w[col], (rid, col, g[col], w[col])
        assert (g["pdq_quality"] or 0) == (w["pdq_quality"] or 0), rid
    plain = {r["id"]: r["status"] for r in mp.build(src, hashes=("phash",)).to_table().to_pylist()}
    assert plain["loose/a.tif"] == plain["row1"] == "UNSUPPORTED"
    with pytest.raises(ValueError, match="fallback must be None or 'pillow'"):
        mp.build(src, fallback="magick")  # type: ignore[arg-type]
