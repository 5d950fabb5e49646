"""mmcore run: Processor, sources, resumable Parquet shards, modes, crash safety, bad input."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
Image = pytest.importorskip("PIL.Image")

from conftest import corpus_dir  # noqa: E402

import mmcore  # noqa: E402
import mmcore.gpu  # noqa: E402
import mmcore.jobs.dedup as dedup_mod  # noqa: E402
import mmcore.jobs.runner as runner_mod  # noqa: E402
from mmcore.jobs import Config, read_output  # noqa: E402
from mmcore.jobs.processor import Processor  # noqa: E402
from mmcore.jobs.runner import JobError, run  # noqa: E402
from mmcore.jobs.schema import SCHEMA, completed_shards, i64_to_u64  # noqa: E402

KINDS = ("phash", "dhash", "ahash", "pdq")


def jpeg_bytes(seed: int, size: tuple[int, int] = (96, 72)) -> bytes:
    g = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], -1)
    img = np.clip(base + g.integers(-40, 40, (h, w, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def make_tree(root: Path, n: int = 12, size: tuple[int, int] = (96, 72)) -> dict[str, bytes]:
    """n JPEGs in nested folders, a corrupt .jpg, a truncated PNG, and non-images to skip."""
    files: dict[str, bytes] = {}
    for i in range(n):
        rel = f"{'ab'[i % 2]}/sub{i % 3}/img{i:03d}.jpg"
        files[rel] = jpeg_bytes(i, size)
    files["bad/corrupt.jpg"] = b"\xff\xd8\xff\xe0 this is not a jpeg"
    png = io.BytesIO()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(png, "PNG")
    files["bad/truncated.png"] = png.getvalue()[:40]
    files["noext_jpeg"] = jpeg_bytes(99)
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "notes.txt").write_text("not an image")
    (root / "a" / "meta.json").write_text("{}")
    return files


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> bytes:
    """A tar of these (name, bytes) members, in order, at path; returns its bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def rows_by_id(out: Path) -> dict[str, dict]:
    t = read_output(out)
    rows = t.to_pylist()
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "a record appears twice"
    return {r["id"]: r for r in rows}


def check_against_hash_batch(rows: dict[str, dict], blobs: dict[str, bytes]) -> None:
    ids = sorted(blobs)
    want = mmcore.hash_batch([blobs[i] for i in ids], kinds=KINDS, mode="exact")
    for j, i in enumerate(ids):
        r = rows[i]
        st = mmcore.Status(int(want.status[j]))
        assert r["status"] == st.name, (i, r["status"], r["error"])
        if st.ok:
            for k in ("phash", "dhash", "ahash"):
                assert int(i64_to_u64(np.array([r[k]], np.int64))[0]) == int(want[k][j]), (i, k)
            assert r["pdq"] == want["pdq"][j].tobytes()
            assert r["pdq_quality"] == int(want["pdq_quality"][j])
        else:
            assert r["error"] and r["error_stage"] == "decode" and r["phash"] is None and r["pdq"] is None


# -- Processor ----------------------------------------------------------------------------------


def test_processor_bytes_and_paths_give_the_same_rows(tmp_path: Path) -> None:
    blobs = {f"x{i}": jpeg_bytes(i, (64 + i, 48)) for i in range(5)}
    blobs["broken"] = b"\x89PNG\r\n\x1a\n" + b"\0" * 30
    for k, v in blobs.items():
        (tmp_path / k).write_bytes(v)
    ids = list(blobs)
    proc = Processor(Config())
    a = proc(pa.RecordBatch.from_pydict({"id": ids, "bytes": [blobs[i] for i in ids]}))
    b = proc(pa.RecordBatch.from_pydict({"id": ids, "path": [str(tmp_path / i) for i in ids]}))
    assert a.schema.equals(SCHEMA, check_metadata=False) and b.schema.equals(SCHEMA, check_metadata=False)
    skip = {"source_uri"}
    assert [{k: v for k, v in r.items() if k not in skip} for r in a.to_pylist()] == [
        {k: v for k, v in r.items() if k not in skip} for r in b.to_pylist()
    ]
    rows = {r["id"]: r for r in a.to_pylist()}
    check_against_hash_batch(rows, blobs)
    r0 = rows["x0"]
    assert (r0["width"], r0["height"], r0["format"], r0["orientation"]) == (64, 48, "jpeg", 1)
    assert r0["byte_size"] == len(blobs["x0"]) and len(r0["content_sha256"]) == 32
    assert b.column("source_uri").to_pylist()[0] == "file://" + str(tmp_path / "x0")
    assert a.schema.metadata[b"mmcore_config_hash"] == Config().config_hash().encode()


def test_processor_bad_records_are_rows_never_exceptions(tmp_path: Path) -> None:
    proc = Processor()
    batch = pa.RecordBatch.from_pydict(
        {
            "id": ["missing", "none", "junk", "http", "cut"],
            "path": [str(tmp_path / "nope.jpg"), None, None, "http://example.com/a.jpg", None],
            "bytes": [None, None, b"junk", None, b"\xff\xd8\xff\xdb\x00"],
        }
    )
    rows = proc(batch).to_pylist()
    assert [r["status"] for r in rows] == ["READ_ERROR", "READ_ERROR", "CORRUPT", "READ_ERROR", "CORRUPT"]
    # The format is the content's signature, also when the record fails; null when none matched.
    assert [r["format"] for r in rows] == [None, None, None, None, "jpeg"]
    assert rows[4]["width"] is None and rows[4]["phash"] is None
    assert "nope.jpg" in rows[0]["error"] and rows[0]["error_stage"] == "read"
    assert "neither bytes nor a path" in rows[1]["error"]
    assert rows[2]["error_stage"] == "decode" and rows[2]["byte_size"] == 4
    assert "file://" in rows[3]["error"]
    with pytest.raises(ValueError, match="'id'"):
        proc(pa.RecordBatch.from_pydict({"bytes": [b"x"]}))
    with pytest.raises(ValueError, match="null at row 1"):
        proc(pa.RecordBatch.from_pydict({"id": ["a", None], "bytes": [b"x", b"y"]}))
    with pytest.raises(ValueError, match="'bytes' or a 'path'"):
        proc(pa.RecordBatch.from_pydict({"id": ["a"]}))


def test_processor_reads_binary_ids_image_structs_and_applies_max_bytes() -> None:
    """What Parquet, Spark and Ray hand the Processor: a binary key is its UTF-8 text (bytes that
    are not UTF-8 as \\xNN), a Hugging Face image struct gives its bytes, and bytes already in
    memory over max_bytes are a READ_ERROR row, as a file over it is."""
    good = Path(mmcore.demo_images()[0]).read_bytes()
    struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    batch = pa.RecordBatch.from_pydict(
        {
            "id": pa.array([b"k1", b"caf\xe9"], pa.binary()),
            "bytes": pa.array([{"bytes": good, "path": "a.jpg"}, {"bytes": b"junk", "path": None}], struct),
        }
    )
    rows = Processor(Config(hashes=("phash",)))(batch).to_pylist()
    assert [(r["id"], r["status"]) for r in rows] == [("k1", "OK"), ("caf\\xe9", "CORRUPT")]
    small = Processor(Config(hashes=("phash",), max_bytes=len(good) - 1))
    rows = small(pa.RecordBatch.from_pydict({"id": ["big", "tiny"], "bytes": [good, b"junk"]})).to_pylist()
    assert rows[0]["status"] == "READ_ERROR" and "max_bytes" in rows[0]["error"]
    assert rows[0]["error_stage"] == "read" and rows[1]["status"] == "CORRUPT"


def test_exif_orientation_swaps_width_and_height() -> None:
    img = Image.fromarray(np.zeros((40, 100, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    r = Processor()(pa.RecordBatch.from_pydict({"id": ["o"], "bytes": [buf.getvalue()]})).to_pylist()[0]
    assert (r["orientation"], r["width"], r["height"]) == (6, 40, 100)
    r = Processor(Config(exif_orientation=False))(
        pa.RecordBatch.from_pydict({"id": ["o"], "bytes": [buf.getvalue()]})
    ).to_pylist()[0]
    assert (r["width"], r["height"]) == (100, 40)


def test_config_from_toml_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('hashes = ["pdq"]\nshard_size = 7\nthumbnail = 128\n')
    c = Config.from_toml(p)
    assert c.hashes == ("pdq",) and c.shard_size == 7 and c.thumbnail == 128
    assert c.config_hash() != Config().config_hash()
    assert c.replace(shard_size=9).config_hash() == c.config_hash()  # job options do not change the output
    p.write_text("shard_sise = 7\n")
    with pytest.raises(ValueError, match="unknown config keys"):
        Config.from_toml(p)
    p.write_text("shard_size = \n")
    with pytest.raises(ValueError, match="not valid TOML"):
        Config.from_toml(p)
    with pytest.raises(ValueError, match="hashes"):
        Config(hashes=("md5",))
    with pytest.raises(ValueError, match="shard_size"):
        Config(shard_size=-1)
    with pytest.raises(ValueError, match="thumbnail_webp_method"):
        Config(thumbnail_webp_method=7)
    # the WebP method enters the config hash only where it changes the bytes (older outputs keep theirs)
    webp = Config(thumbnail=64, thumbnail_format="webp")
    assert Config(thumbnail_webp_method=0).config_hash() == Config().config_hash()
    assert webp.replace(thumbnail_webp_method=0).config_hash() != webp.config_hash()


def test_config_from_toml_on_python_3_10_uses_tomli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """requires-python is >= 3.10, whose standard library has no tomllib: the jobs import without
    it (``mmcore run`` and ``demo`` failed to import there), and a TOML config is read by tomli,
    or refused with what to install. (The jobs' import on a real 3.10 is `make lint`'s vermin.)"""
    import tomllib

    p = tmp_path / "c.toml"
    p.write_text('hashes = ["pdq"]\n')
    monkeypatch.setattr(sys, "version_info", (3, 10, 13, "final", 0))
    monkeypatch.setitem(sys.modules, "tomli", tomllib)  # tomllib is tomli
    assert Config.from_toml(p).hashes == ("pdq",)
    monkeypatch.setitem(sys.modules, "tomli", None)  # not installed
    with pytest.raises(ImportError, match="needs tomli"):
        Config.from_toml(p)


def test_webp_thumbnail_method(tmp_path: Path) -> None:
    """thumbnail_webp_method reaches the encoder: the rows' thumbnails are encode_webp's bytes."""
    imgs = mmcore.demo_images()
    batch = pa.record_batch({"id": [str(i) for i in range(len(imgs))], "path": imgs})
    for method in (0, 4):
        cfg = Config(thumbnail=48, thumbnail_format="webp", thumbnail_webp_method=method, workers=1)
        rows = mmcore.Processor(cfg)(batch).to_pylist()
        for path, row in zip(imgs, rows, strict=True):
            if row["status"] in ("OK", "OK_WARNING"):
                want = mmcore.thumbnail(path, short_side=48, upscale=False)
                assert row["thumbnail"] == mmcore.encode_webp(
                    want, quality=cfg.thumbnail_quality, method=method
                )


# -- run: directory source, modes -----------------------------------------------------------------


def test_shards_past_five_digits_keep_run_order(tmp_path: Path) -> None:
    """part-99999 comes before part-100000 (a run of 100M files at the default shard size gets
    there): completed_shards and read_output give the rows in run order."""
    from jobs_fixtures import run_table, write_run_output

    ids = [f"img-{k}" for k in range(9)]
    names = write_run_output(tmp_path / "out", run_table(ids), shard_rows=3, first_shard=99_999)
    assert names == ["part-99999", "part-100000", "part-100001"]
    assert completed_shards(tmp_path / "out") == names
    assert read_output(tmp_path / "out", columns=["id"])["id"].to_pylist() == ids


def test_run_directory_every_record_once_and_resumes(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    blobs = make_tree(src)
    s = run(str(src), out, Config(shard_size=4), progress=None)
    assert s.shards_total == 4 and s.shards_written == 4 and s.skipped_files == 2
    assert s.records == len(blobs) and s.counts["OK"] == len(blobs) - 2
    rows = rows_by_id(out)
    assert set(rows) == set(blobs)
    check_against_hash_batch(rows, blobs)
    assert completed_shards(out) == [f"part-{i:05d}" for i in range(4)]
    meta = pq.read_metadata(out / "part-00000.parquet").metadata
    assert meta[b"mmcore_version"] == mmcore.__version__.encode()
    rec = json.loads((out / "_done" / "part-00000.json").read_text())
    assert (
        rec["rows"] == 4
        and sum(rec["counts"].values()) == 4
        and set(rec["stage_seconds"]) >= {"read", "write"}
    )
    # incremental: nothing to do; a new file goes to a new shard, old shards keep their files
    s2 = run(str(src), out, Config(shard_size=4), progress=None)
    assert s2.shards_written == 0 and s2.shards_skipped == 4
    (src / "a" / "late.jpg").write_bytes(jpeg_bytes(50))
    s3 = run(str(src), out, Config(shard_size=4), progress=None)
    assert s3.shards_written == 1 and s3.records == 1
    assert set(rows_by_id(out)) == set(blobs) | {"a/late.jpg"}
    # other processing options into the same folder: refused, unless overwrite
    with pytest.raises(JobError, match="other processing options"):
        run(str(src), out, Config(hashes=("pdq",)), progress=None)
    s4 = run(str(src), out, Config(hashes=("pdq",), mode="overwrite"), progress=None)
    assert s4.shards_written == s4.shards_total and s4.records == len(blobs) + 1
    assert all(r["phash"] is None for r in rows_by_id(out).values())


def test_run_finds_avif_by_content_and_hashes_it(tmp_path: Path) -> None:
    """AVIF files (any name, HEIF beside them): rows with format "avif" and hash_batch's hashes; a
    HEIC is a row that says it is unsupported, not a skipped file."""
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    blobs = {
        f"{p.stem}.bin": p.read_bytes()
        for p in sorted((Path(__file__).parent / "data" / "avif").glob("*.avif"))
    }
    blobs["photo.heic"] = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(100)
    for name, data in blobs.items():
        (src / name).write_bytes(data)
    s = run(str(src), out, Config(), progress=None)
    assert s.records == len(blobs) and s.skipped_files == 0
    rows = rows_by_id(out)
    check_against_hash_batch(rows, blobs)
    avif = mmcore.build_info()["codecs"]["avif"].startswith("libavif")
    for name, r in rows.items():
        assert r["format"] == (None if name == "photo.heic" else "avif"), name
        assert r["status"] == ("UNSUPPORTED" if name == "photo.heic" or not avif else "OK"), (
            name,
            r["error"],
        )
    assert rows["irot1_imir1.bin"]["orientation"] == 7 and rows["irot1_imir1.bin"]["width"] == 48


@pytest.mark.parametrize("merge_rows", [4096, 1])
def test_retry_failed_reprocesses_only_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, merge_rows: int
) -> None:
    """The retried rows replace the old ones in place (the old part merged a batch at a time)."""
    monkeypatch.setattr(runner_mod, "_MERGE_ROWS", merge_rows)
    src, out = tmp_path / "src", tmp_path / "out"
    blobs = make_tree(src, n=6)
    run(str(src), out, Config(shard_size=3), progress=None)
    before = rows_by_id(out)
    order = read_output(out, columns=["id"])["id"].to_pylist()
    assert before["bad/corrupt.jpg"]["status"] == "CORRUPT"
    (src / "bad" / "corrupt.jpg").write_bytes(jpeg_bytes(7))  # fixed at the source
    s = run(str(src), out, Config(shard_size=3, mode="retry-failed"), progress=None)
    assert s.records == 2  # the two broken files, nothing else
    after = rows_by_id(out)
    assert after["bad/corrupt.jpg"]["status"] == "OK" and after["bad/truncated.png"]["status"] != "OK"
    for k in blobs:
        if not k.startswith("bad/"):
            assert after[k] == before[k]
    assert read_output(out, columns=["id"])["id"].to_pylist() == order


# -- other sources --------------------------------------------------------------------------------


def test_webdataset_tar_refuses_escaping_members(tmp_path: Path) -> None:
    tar_path = tmp_path / "shard-000.tar"
    good = {f"{i:06d}.jpg": jpeg_bytes(i) for i in range(3)}
    with tarfile.open(tar_path, "w") as tf:

        def add(name: str, data: bytes, kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
            ti = tarfile.TarInfo(name)
            ti.size, ti.type, ti.linkname = (len(data) if kind == tarfile.REGTYPE else 0), kind, link
            tf.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        for k, v in good.items():
            add(k, v)
            add(k.replace(".jpg", ".json"), b'{"caption": "x"}')
        add("../evil.jpg", jpeg_bytes(9))
        add("/etc/x.jpg", jpeg_bytes(10))
        add("link.jpg", b"", tarfile.SYMTYPE, "/etc/passwd")
        add("pipe.jpg", b"", tarfile.FIFOTYPE)
        add("null.jpg", b"", tarfile.CHRTYPE)
        add("folder.jpg", b"", tarfile.DIRTYPE)  # a folder: no record, as in any tar
    out = tmp_path / "out"
    before = sorted(os.listdir(tmp_path))
    s = run(str(tar_path), out, progress=None)
    assert s.shards_total == 1
    rows = rows_by_id(out)
    refused = {"../evil.jpg", "/etc/x.jpg", "link.jpg", "pipe.jpg", "null.jpg"}
    assert {r["member"] for r in rows.values()} == set(good) | refused
    assert "a FIFO, not a file" in rows["shard-000.tar/pipe.jpg"]["error"]
    assert "a device, not a file" in rows["shard-000.tar/null.jpg"]["error"]
    for m in refused:
        r = rows[f"shard-000.tar/{m}"]
        assert r["status"] == "SOURCE_ERROR" and r["error_stage"] == "source" and "refused" in r["error"]
        assert r["content_sha256"] is None
    check_against_hash_batch(rows, {f"shard-000.tar/{k}": v for k, v in good.items()})
    assert sorted(os.listdir(tmp_path)) == sorted([*before, "out"])  # nothing beside the tar and OUT
    assert not (tmp_path.parent / "evil.jpg").exists() and not Path("/etc/x.jpg").exists()


def test_refused_members_in_a_row_share_a_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused records one after the other become one failure batch (up to batch_rows), not one
    each: 300 escaping members, a good one, 2 more (the good one's batch comes at the tar's end):
    failure batches of 256 and 46, every row kept."""
    import mmcore.jobs.runner as runner

    sizes: list[int] = []
    real = runner.failure_batch

    def counting(ids: Any, *a: Any) -> Any:
        sizes.append(len(ids))
        return real(ids, *a)

    monkeypatch.setattr(runner, "failure_batch", counting)
    names = [f"../e{i}.jpg" for i in range(300)] + ["ok.jpg", "/abs1.jpg", "/abs2.jpg"]
    write_tar(tmp_path / "t.tar", [(n, jpeg_bytes(1)) for n in names])
    run(str(tmp_path / "t.tar"), tmp_path / "out", Config(batch_size=256), progress=None)
    rows = rows_by_id(tmp_path / "out")
    assert len(rows) == 303 and rows["t.tar/ok.jpg"]["status"] == "OK"
    assert sum(r["status"] == "SOURCE_ERROR" for r in rows.values()) == 302
    assert sizes == [256, 46]


def test_truncated_tar_keeps_what_it_read(tmp_path: Path) -> None:
    tar_path = tmp_path / "t.tar"
    with tarfile.open(tar_path, "w") as tf:
        for i in range(3):
            data = jpeg_bytes(i)
            ti = tarfile.TarInfo(f"{i}.jpg")
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    raw = tar_path.read_bytes()
    for cut, complete in ((10240, 2), (12000, 2), (2000, 0)):  # at a header, inside data (twice)
        tar_path.write_bytes(raw[:cut])
        out = tmp_path / f"out{cut}"
        s = run(str(tar_path), out, progress=None)
        rows = rows_by_id(out)
        assert s.shards_written == 1
        assert sum(r["status"] == "OK" for r in rows.values()) == complete
        bad = [r for r in rows.values() if r["status"] == "SOURCE_ERROR"]
        assert len(bad) == 1 and "cannot read tar t.tar" in bad[0]["error"]


def test_tar_members_read_in_place_sparse_and_large_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tar members' bytes go from the file into the batch's Arrow buffer at their offsets; a
    sparse member (GNU tar --sparse) is read through tarfile's extractfile in the same batch;
    a batch past the binary column's 2 GiB goes as large_binary: the rows equal hash_batch's."""
    import shutil
    import subprocess

    import mmcore.jobs.sources as sources_mod

    if shutil.which("tar") is None:
        pytest.skip("needs GNU tar (--sparse)")
    src = tmp_path / "src"
    src.mkdir()
    blobs = {f"{i}.jpg": jpeg_bytes(i) for i in range(5)}
    for name, data in blobs.items():
        (src / name).write_bytes(data)
    with open(src / "2.jpg", "r+b") as f:  # a hole after the JPEG's end: a sparse member
        f.seek(1 << 20)
        f.write(b"x")
    blobs["2.jpg"] = (src / "2.jpg").read_bytes()
    tar_path = tmp_path / "t.tar"
    subprocess.run(["tar", "--sparse", "-cf", str(tar_path), "-C", str(src), *blobs], check=True)
    with tarfile.open(tar_path) as tf:
        if not tf.getmember("2.jpg").issparse():
            pytest.skip("the file system keeps no holes: tar wrote no sparse member")
    want = mmcore.hash_batch(list(blobs.values()), kinds=("phash", "pdq"))
    for large in (False, True):
        if large:
            monkeypatch.setattr(sources_mod, "_LARGE_BATCH", 1)
        batches = list(sources_mod.plan(str(tar_path), 10)[0][0].batches(3))
        assert [b.num_rows for b in batches] == [3, 2]
        assert {b.schema.field("bytes").type for b in batches} == {
            pa.large_binary() if large else pa.binary()
        }
        got = [bytes(v) for b in batches for v in b.column("bytes").to_pylist()]
        assert got == list(blobs.values())
        out = tmp_path / f"out{large}"
        run(str(tar_path), out, Config(hashes=("phash", "pdq")), progress=None)
        rows = rows_by_id(out)
        assert [rows[f"t.tar/{n}"]["phash"] for n in blobs] == want["phash"].view(np.int64).tolist()
        assert [rows[f"t.tar/{n}"]["pdq"] for n in blobs] == [bytes(v) for v in want["pdq"]]


def _random_tar(rng: Any, fmt: int) -> bytes:
    """A tar in ``fmt`` of random members (files, folders, links, a FIFO; short, long, non-ASCII,
    escaping names; integer and float mtimes; sometimes a global pax header), sometimes cut short
    or with bytes overwritten."""
    buf = io.BytesIO()
    kw: dict[str, Any] = {}
    if fmt == tarfile.PAX_FORMAT and rng.random() < 0.2:
        kw["pax_headers"] = {"comment": "global"}
    with tarfile.open(fileobj=buf, mode="w", format=fmt, **kw) as tf:
        for i in range(rng.randint(0, 6)):
            kind = rng.choice(["reg", "reg", "reg", "dir", "sym", "lnk", "fifo"])
            name = rng.choice(
                [
                    f"f{i}.jpg",
                    f"sub/d{i}/f{i}.jpg",
                    "a" * rng.randint(90, 300),
                    f"caf\u00e9{i}",
                    f"../u{i}",
                    f"x{i}/",
                ]
            )
            ti = tarfile.TarInfo(name)
            ti.mtime = rng.choice([0, 1700000000, 1700000000.5])
            data = b""
            if kind == "reg":
                data = rng.randbytes(rng.choice([0, 1, 511, 512, 513, 3000]))
                ti.size = len(data)
            else:
                ti.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "lnk": tarfile.LNKTYPE}.get(
                    kind, tarfile.FIFOTYPE
                )
                ti.linkname = "f0.jpg" if kind in ("sym", "lnk") else ""
            with contextlib.suppress(ValueError):  # a name the format cannot hold
                tf.addfile(ti, io.BytesIO(data) if data else None)
    raw = buf.getvalue()
    r = rng.random()
    if r < 0.25 and raw:
        raw = raw[: rng.randint(0, len(raw))]
    elif r < 0.45 and raw:
        b = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        raw = bytes(b)
    return raw


def test_file_uris_equal_path_to_uri_of_the_joined_path() -> None:
    """file_uris concatenates plain names to the root's URI; for every name (plain or not: '.',
    '..', empty components, spaces, '%', '#', non-ASCII, surrogate escapes) and root it gives
    what path_to_uri gives for the normalised joined path."""
    import random

    from mmcore.jobs.processor import path_to_uri
    from mmcore.jobs.sources import file_uris

    names = ["a.jpg", "d/x.jpg", ".hidden", "..foo", "foo..", "a/.b/c", "a/./b", "a/../b", "./a", "../a"]
    names += [".", "..", "a//b", "a/", "/abs", "sp ace.jpg", "p%20.jpg", "h#.jpg", "q?", "caf\u00e9.jpg"]
    names += ["bad\udcff.jpg", "a/..", "a/.", "x~y-z_1.JPG", "...", "a/...", "", "a.b/..c/d..e"]
    rng = random.Random(0)
    names += ["".join(rng.choice("ab./_-~% #\u00e9") for _ in range(rng.randint(1, 8))) for _ in range(2000)]
    for root in ["/", "/tmp/x", "/tmp/x/", "src", "//net", "/tmp/a b", "/tmp/c%d"]:
        want = [path_to_uri(os.path.normpath(os.path.join(root, r))) for r in names]
        assert file_uris(root, names) == want


def _tar_listing(path: Path, fast: bool) -> list[Any]:
    """What iterating the tar at ``path`` gives: with tarfile, or (``fast``) with tar_members."""
    from mmcore.jobs.sources import tar_members

    out: list[Any] = []
    try:
        with tarfile.open(path, "r:") as tf:
            for m in tar_members(tf) if fast else iter(tf):
                out.append((m.name, m.type, m.size, m.offset_data, m.isfile(), m.issym(), m.issparse()))
            out.append(("end", tf.offset))
    except Exception as e:  # the same error, whatever it is
        out.append(("error", type(e).__name__, str(e)))
    return out


def test_tar_members_equal_tarfiles_iteration(tmp_path: Path) -> None:
    """tar_members reads plain headers itself and leaves the rest to tarfile: on random tars of
    every format, cut short or damaged, it gives what iterating tarfile gives (names, types,
    sizes, data offsets, the end offset, the error)."""
    import random

    listing = _tar_listing
    rng = random.Random(0)
    path = tmp_path / "t.tar"
    fast_members = 0
    formats = [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]
    for _ in range(400):
        path.write_bytes(_random_tar(rng, rng.choice(formats)))
        want = listing(path, False)
        assert listing(path, True) == want
        fast_members += sum(1 for x in want if x[0] not in ("end", "error"))
    assert fast_members > 500
    # Number fields of every odd kind (spaces, signs, base-256 huge or negative sizes, garbage)
    # under a checksum made right again, so that the headers get past it.
    fields = [(100, 108), (108, 116), (116, 124), (124, 136), (136, 148), (329, 337), (337, 345)]
    odd = [
        b"0000644\x00",
        b"  644 \x00",
        b"+644\x00",
        b"-7\x00",
        b"6_4\x00",
        b"\x1c7\x00",
        b"9\x00",
        b"x\x00",
    ]
    for _ in range(400):
        raw = bytearray(_random_tar(rng, rng.choice(formats)))
        heads: list[int] = []
        with contextlib.suppress(Exception), tarfile.open(fileobj=io.BytesIO(bytes(raw))) as tf:
            heads = [m.offset for m in tf]
        if not heads:
            continue
        h = rng.choice(heads)
        a, b = rng.choice(fields)
        if h + 512 > len(raw):
            continue
        if (a, b) == (124, 136) and rng.random() < 0.4:
            value = rng.choice([b"\x80", b"\xff"]) + rng.randbytes(11)  # base-256
        else:
            value = rng.choice(odd)[: b - a].ljust(b - a, b"\x00")
        raw[h + a : h + b] = value
        raw[h + 148 : h + 156] = b"%06o\x00 " % (256 + sum(raw[h : h + 148]) + sum(raw[h + 156 : h + 512]))
        path.write_bytes(bytes(raw))
        assert listing(path, True) == listing(path, False)


def test_native_tar_headers_equal_tarfile_on_damaged_headers(tmp_path: Path) -> None:
    """_core.tar_scan reads runs of plain headers (with pax time records) without the GIL: on tars
    whose later headers and pax records have bytes overwritten (the checksum mostly made right
    again, so that the damage gets past it), cut short or not, the listing is tarfile's, and the
    native reader did read most members."""
    import random

    from mmcore import _core
    from mmcore.jobs import sources

    native = [0]
    real_scan = _core.tar_scan

    def counting_scan(fd: int, offset: int, max: int) -> Any:
        out = real_scan(fd, offset, max)
        native[0] += len(out[1])
        return out

    listing = _tar_listing
    rng = random.Random(1)
    path = tmp_path / "t.tar"
    listed = 0
    formats = [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]
    spots = [0, 99, 100, 108, 124, 125, 135, 136, 147, 156, 329, 344, 345]
    values = [0, 9, 32, 0x1C, 0x80, 0xFF] + [ord(c) for c in "079/.=x\n"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sources._core, "tar_scan", counting_scan)
        for _ in range(1500):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w", format=rng.choice(formats)) as tf:
                for k in range(rng.randint(2, 5)):
                    ti = tarfile.TarInfo(rng.choice([f"f{k}.jpg", f"d/x{k}/", f"p{k}/" * 20 + "n.jpg"]))
                    ti.mtime = rng.choice([5, 1700000000.25])  # a float: a pax header in PAX_FORMAT
                    data = b"" if ti.name.endswith("/") else rng.randbytes(rng.choice([0, 5, 16, 17, 600]))
                    ti.size = len(data)
                    ti.type = tarfile.DIRTYPE if ti.name.endswith("/") else tarfile.REGTYPE
                    with contextlib.suppress(ValueError):  # a name the format cannot hold
                        tf.addfile(ti, io.BytesIO(data))
            raw = bytearray(buf.getvalue())
            h = rng.randrange(512, len(raw) - 1024, 512)  # a block after the first member's header
            for _ in range(rng.randint(1, 3)):
                r = rng.random()
                at = rng.randrange(512) if r < 0.3 else rng.choice(spots) if r < 0.6 else rng.randrange(40)
                raw[h + at] = rng.choice([*values, rng.randrange(256)])
            if rng.random() < 0.8:
                chksum = 256 + sum(raw[h : h + 148]) + sum(raw[h + 156 : h + 512])
                raw[h + 148 : h + 156] = b"%06o\x00 " % chksum
            if rng.random() < 0.1:
                raw = raw[: rng.randint(0, len(raw))]
            path.write_bytes(bytes(raw))
            want = listing(path, False)
            assert listing(path, True) == want
            listed += sum(1 for x in want if x[0] not in ("end", "error"))
    assert native[0] > listed // 3
    # a read that fails ends the run: the caller's reader says why
    assert _core.tar_scan(-1, 512, 4) == (512, [])
    with pytest.raises(ValueError, match="max"):
        _core.tar_scan(0, 512, 0)


def test_a_tar_member_of_an_absurd_size_is_a_row_not_a_crash(tmp_path: Path) -> None:
    """A header whose size is 2^80 (base-256) made tarfile's next read raise ValueError, which
    stopped the whole job; now the member is refused and the tar gets its SOURCE_ERROR row."""
    good = jpeg_bytes(1)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name in ("a.jpg", "b.jpg", "c.jpg"):
            ti = tarfile.TarInfo(name)
            ti.size = len(good)
            tf.addfile(ti, io.BytesIO(good))
    raw = bytearray(buf.getvalue())
    h = 512 + -(-len(good) // 512) * 512  # b.jpg's header
    raw[h + 124 : h + 136] = b"\x80" + (2**80).to_bytes(11, "big")
    raw[h + 148 : h + 156] = b"%06o\x00 " % (256 + sum(raw[h : h + 148]) + sum(raw[h + 156 : h + 512]))
    (tmp_path / "t.tar").write_bytes(bytes(raw))
    run(str(tmp_path / "t.tar"), tmp_path / "out", progress=None)
    rows = rows_by_id(tmp_path / "out")
    assert rows["t.tar/a.jpg"]["status"] == "OK"
    assert (
        rows["t.tar/b.jpg"]["status"] == "SOURCE_ERROR" and "over the limit" in rows["t.tar/b.jpg"]["error"]
    )
    assert rows["t.tar/"]["status"] == "SOURCE_ERROR" and "cannot read tar t.tar" in rows["t.tar/"]["error"]


def test_parquet_sources_bytes_and_paths(tmp_path: Path) -> None:
    blobs = {f"k{i}": jpeg_bytes(i) for i in range(4)}
    (tmp_path / "imgs").mkdir()
    for k, v in blobs.items():
        (tmp_path / "imgs" / f"{k}.jpg").write_bytes(v)
    keys: list[str | None] = list(blobs)
    keys[3] = None  # named by its row instead
    pq.write_table(pa.table({"key": keys, "jpg": list(blobs.values())}), tmp_path / "b.parquet")
    pq.write_table(pa.table({"path": [f"imgs/{k}.jpg" for k in blobs]}), tmp_path / "p.parquet")
    run(str(tmp_path / "b.parquet"), tmp_path / "o1", progress=None)
    rows = rows_by_id(tmp_path / "o1")
    check_against_hash_batch(rows, {("b.parquet#3" if k == "k3" else k): v for k, v in blobs.items()})
    assert rows["k2"]["member"] == "2"
    run(str(tmp_path / "p.parquet"), tmp_path / "o2", progress=None)
    rows2 = rows_by_id(tmp_path / "o2")
    check_against_hash_batch(rows2, {f"p.parquet#{i}": v for i, v in enumerate(blobs.values())})


# -- bad jobs -------------------------------------------------------------------------------------


def test_unwritable_output_and_missing_source(tmp_path: Path) -> None:
    from mmcore.cli import main

    src = tmp_path / "src"
    make_tree(src, n=2)
    (tmp_path / "file").write_text("x")
    with pytest.raises(JobError, match="cannot write to the output folder"):
        run(str(src), tmp_path / "file" / "out", progress=None)
    assert main(["run", str(src), str(tmp_path / "file" / "out"), "--quiet"]) == 1
    assert main(["run", str(tmp_path / "nothing*"), str(tmp_path / "o"), "--quiet"]) == 1


def test_disk_full_marks_no_shard_complete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    blobs = make_tree(src, n=8)
    real = pq.ParquetWriter.write_table
    calls = {"n": 0}

    def full(self, table, *a, **k):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(28, "No space left on device")
        return real(self, table, *a, **k)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    with pytest.raises(JobError, match="No space left"):
        run(str(src), out, Config(shard_size=4), progress=None)
    assert completed_shards(out) == ["part-00000"]
    assert not any(p.name.startswith(".part-") for p in out.iterdir())  # no temp file left behind
    monkeypatch.setattr(pq.ParquetWriter, "write_table", real)
    run(str(src), out, Config(shard_size=4), progress=None)
    assert set(rows_by_id(out)) == set(blobs)


def test_row_groups_gather_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A shard's batches go into row groups of up to _ROW_GROUP_ROWS rows (or bytes), not one row
    group per batch; the rows are those of the batches, in order."""
    src = tmp_path / "src"
    make_tree(src, n=7)  # 10 images
    run(str(src), tmp_path / "one", Config(batch_size=2, shard_size=10), progress=None)
    assert pq.ParquetFile(tmp_path / "one" / "part-00000.parquet").num_row_groups == 1
    monkeypatch.setattr(runner_mod, "_ROW_GROUP_ROWS", 5)
    run(str(src), tmp_path / "five", Config(batch_size=2, shard_size=10), progress=None)
    f = pq.ParquetFile(tmp_path / "five" / "part-00000.parquet")
    assert [f.metadata.row_group(g).num_rows for g in range(f.num_row_groups)] == [6, 4]
    assert f.read().equals(pq.read_table(tmp_path / "one" / "part-00000.parquet"))
    monkeypatch.setattr(runner_mod, "_ROW_GROUP_BYTES", 1)
    run(str(src), tmp_path / "bytes", Config(batch_size=2, shard_size=10), progress=None)
    assert pq.ParquetFile(tmp_path / "bytes" / "part-00000.parquet").num_row_groups == 5


def test_read_ahead_keeps_order_raises_in_place_and_stops_when_closed() -> None:
    """The source is read in a thread of its own, a batch or two ahead: items come in order; the
    thread's exception comes where its item would have; it runs at most depth items ahead; a
    consumer that stops early (an error downstream) stops and joins the thread."""
    import threading

    from mmcore.jobs.runner import read_ahead

    assert list(read_ahead(iter(range(100)), 2)) == list(range(100))

    def failing() -> Iterator[int]:
        yield from range(5)
        raise OSError(5, "Input/output error")

    got: list[int] = []
    with pytest.raises(OSError, match="Input/output error"):
        for x in read_ahead(failing(), 2):
            got.append(x)
    assert got == [0, 1, 2, 3, 4]

    made: list[int] = []

    def endless() -> Iterator[int]:
        k = 0
        while True:
            made.append(k)
            yield k
            k += 1

    it = read_ahead(endless(), 2)
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    time.sleep(0.3)
    assert len(made) <= 3 + 2 + 1  # taken, queued, and one waiting to be queued
    it.close()
    assert not [t for t in threading.enumerate() if t.name == "mmcore-read-ahead"]


def test_a_source_that_fails_while_read_ahead_stops_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An I/O error in the reading thread stops the job as before (JobError, exit 1), after the
    shards before it completed, with no temporary file left and no reading thread behind."""
    import threading

    from mmcore.jobs import sources

    src, out = tmp_path / "src", tmp_path / "out"
    make_tree(src, n=8)
    real = sources.Shard.batches

    def batches(self: Any, *a: Any, **k: Any) -> Any:
        if self.name == "part-00001":
            raise OSError(5, "Input/output error", "/mnt/gone")
        return real(self, *a, **k)

    monkeypatch.setattr(sources.Shard, "batches", batches)
    with pytest.raises(JobError, match="Input/output error"):
        run(str(src), out, Config(shard_size=4), progress=None)
    assert completed_shards(out) == ["part-00000"]
    assert not any(p.name.startswith(".part-") for p in out.iterdir())
    assert not [t for t in threading.enumerate() if t.name == "mmcore-read-ahead"]


def test_kill_9_at_random_points_loses_and_doubles_nothing(tmp_path: Path) -> None:
    src = tmp_path / "src"
    blobs = make_tree(src, n=120, size=(480, 360))
    cmd = [
        sys.executable,
        "-m",
        "mmcore",
        "run",
        str(src),
        "",
        "--shard-size",
        "3",
        "--workers",
        "1",
        "--quiet",
    ]
    kills = 0
    for seed in range(3):
        out = tmp_path / f"out{seed}"
        cmd[5] = str(out)
        g = np.random.default_rng(seed)
        # Kill points follow the job's own progress, not the clock (a fixed window misses on a fast
        # or a loaded machine): wait until a random number of further shards is complete, then a
        # random few milliseconds more, so the kill lands anywhere inside the next shard's work.
        for _ in range(20):
            target = len(completed_shards(out)) + int(g.integers(2, 12))
            jitter = float(g.uniform(0.0, 0.06))
            p = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while p.poll() is None and len(completed_shards(out)) < target:
                time.sleep(0.002)
            time.sleep(jitter)
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                kills += 1
            p.wait()
            if p.returncode == 0:
                break
        else:
            pytest.fail("the job never completed")
        done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "0 written" in done.stdout  # the last run found everything complete
        rows = rows_by_id(out)
        assert set(rows) == set(blobs)
        for name in completed_shards(out):
            rec = json.loads((out / "_done" / f"{name}.json").read_text())
            assert pq.read_metadata(out / f"{name}.parquet").num_rows == rec["rows"]
    assert kills >= 6, "the kills never landed while the job ran"


# -- the corpus -----------------------------------------------------------------------------------


def test_corpus_mix_completes_with_a_row_per_file(tmp_path: Path) -> None:
    src = tmp_path / "mix"
    picked: dict[str, bytes] = {}
    for sub, take in (("jpeg", 25), ("png", 40), ("webp", 25), ("odd", 40), ("corrupt", 10_000)):
        d = corpus_dir(sub)
        files = sorted(p for p in d.iterdir() if p.is_file() and p.name != "README.md")
        (src / sub).mkdir(parents=True)
        for p in files[:: max(1, len(files) // take)][:take]:
            if p.stat().st_size > 30_000_000:
                continue
            (src / sub / p.name).symlink_to(p)
            picked[f"{sub}/{p.name}"] = p.read_bytes()
    s = run(str(src), tmp_path / "out", Config(shard_size=200), progress=None)
    rows = rows_by_id(tmp_path / "out")
    assert set(rows) == set(picked) and s.records == len(rows)
    corrupt = [k for k in picked if k.startswith("corrupt/")]
    missing = [k for k in corrupt if k not in rows]
    assert not missing, f"corrupt files without a row: {missing[:5]}"
    for k in corrupt:
        assert rows[k]["status"] in ("OK", "OK_WARNING") or rows[k]["error"], k
    good = {k: v for k, v in picked.items() if k in rows and not k.startswith("corrupt/")}
    check_against_hash_batch({k: rows[k] for k in good}, good)


def test_cli_run_prints_progress_and_summary(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """(capfd: the command writes its progress line to the file descriptor behind stderr, which it
    keeps while the codec libraries' stderr goes to a log.)"""
    from mmcore.cli import main

    capsys = capfd
    src = tmp_path / "src"
    blobs = make_tree(src, n=5)
    cfg = tmp_path / "job.toml"
    cfg.write_text('hashes = ["phash", "pdq"]\nshard_size = 2\n')
    assert main(["run", str(src), str(tmp_path / "out"), "--config", str(cfg), "--workers", "1"]) == 0
    cap = capsys.readouterr()
    assert f"{len(blobs)}/{len(blobs)} (100%)" in cap.err and "images/s" in cap.err and "errors 2" in cap.err
    assert "shards: 4 (4 written, 0 already complete)" in cap.out
    assert f"OK {len(blobs) - 2}" in cap.out and "CORRUPT" in cap.out and "time per stage" in cap.out
    rows = rows_by_id(tmp_path / "out")
    assert all(r["dhash"] is None for r in rows.values())  # only the configured hashes
    if not mmcore.gpu.available():  # no device here: the job cannot complete, and says why
        assert main(["run", str(src), str(tmp_path / "out2"), "--device", "gpu", "--quiet"]) == 1
        assert f"--device gpu: {mmcore.gpu.unavailable_reason()}" in capsys.readouterr().err
    assert main(["run", str(src), str(tmp_path / "out2"), "--device", "gpu", "--hash-mode", "fast"]) == 1
    assert "exact mode" in capsys.readouterr().err
    args = ["--thumbnail", "32", "--thumbnail-format", "webp", "--thumbnail-webp-method", "0", "--quiet"]
    assert main(["run", str(src), str(tmp_path / "out3"), *args]) == 0
    manifest = json.loads((tmp_path / "out3" / "_mmcore_job.json").read_text())
    assert manifest["config"]["thumbnail_webp_method"] == 0
    assert main(["run", str(src), str(tmp_path / "out4"), "--thumbnail-webp-method", "9", "--quiet"]) == 1
    assert "thumbnail_webp_method" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
def test_thumbnails_are_encoded_images_of_the_configured_size(tmp_path: Path, fmt: str) -> None:
    src = tmp_path / "src"
    make_tree(src, n=4, size=(300, 200))
    run(str(src), tmp_path / "out", Config(thumbnail=64, thumbnail_format=fmt), progress=None)
    rows = rows_by_id(tmp_path / "out")
    for r in rows.values():
        if r["status"] != "OK":
            assert r["thumbnail"] is None
            continue
        im = Image.open(io.BytesIO(r["thumbnail"]))
        assert im.format == fmt.upper() and min(im.size) == 64 and im.size[0] > im.size[1]


# -- job folders and sources: edge cases found in review ------------------------------------------


def test_output_folder_must_be_empty_or_a_job_folder(tmp_path: Path) -> None:
    from mmcore.cli import main

    src, ds = tmp_path / "src", tmp_path / "ds"
    make_tree(src, n=2)
    # A folder that is not mmcore's, with names mmcore uses: never written into, never cleared.
    (ds / "report").mkdir(parents=True)
    (ds / "report" / "q3.txt").write_text("numbers")
    pq.write_table(pa.table({"id": ["a"]}), ds / "part-00000-3f2a.snappy.parquet")
    for mode in ("incremental", "overwrite"):
        with pytest.raises(JobError, match=r"not empty .* not an mmcore job folder"):
            run(str(src), ds, Config(mode=mode), progress=None)
    assert sorted(p.name for p in ds.iterdir()) == ["part-00000-3f2a.snappy.parquet", "report"]
    assert (ds / "report" / "q3.txt").read_text() == "numbers"
    # the source as its own output, and a manifest that is not one
    with pytest.raises(JobError, match="is the source folder"):
        run(str(src), src, progress=None)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "_mmcore_job.json").write_text("[]")
    with pytest.raises(JobError, match="not an mmcore job manifest"):
        run(str(src), bad, progress=None)
    assert main(["dedup", str(bad)]) == 1
    # a missing source creates nothing; a job needs at least one hash
    assert main(["run", str(tmp_path / "missing"), str(tmp_path / "o"), "--quiet"]) == 1
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="one or more"):
        Config(hashes=())


def test_output_inside_the_source_is_not_read_back(tmp_path: Path) -> None:
    src = tmp_path / "src"
    blobs = make_tree(src, n=4)
    for _ in range(3):
        s = run(str(src), src / "out", Config(thumbnail=16), progress=None)
    assert s.shards_total == 1 and s.shards_written == 0
    assert set(rows_by_id(src / "out")) == set(blobs)


def test_glob_whose_matches_widen_keeps_one_id_per_file(tmp_path: Path) -> None:
    (tmp_path / "t" / "a").mkdir(parents=True)
    (tmp_path / "t" / "b").mkdir()
    (tmp_path / "t" / "a" / "x.jpg").write_bytes(jpeg_bytes(1))
    (tmp_path / "t" / "a" / "y.jpg").write_bytes(jpeg_bytes(2))
    pattern, out = str(tmp_path / "t" / "*" / "*.jpg"), tmp_path / "out"
    run(pattern, out, progress=None)
    (tmp_path / "t" / "b" / "x.jpg").write_bytes(jpeg_bytes(3))  # the common folder is now t/
    s = run(pattern, out, progress=None)
    assert s.records == 1
    rows = rows_by_id(out)
    assert set(rows) == {"x.jpg", "y.jpg", "../b/x.jpg"}  # ids stay relative to the first run's root
    assert rows["../b/x.jpg"]["byte_size"] == len(jpeg_bytes(3))


def test_uri_to_path_shortcut_equals_urlparse() -> None:
    """uri_to_path skips urlparse for a plain ASCII file:/// URI (nothing to decode); every other
    URI is decoded as before: the two agree on URIs of every tricky kind."""
    from urllib.parse import unquote_to_bytes, urlparse

    from mmcore.jobs.processor import path_to_uri, uri_to_path

    def parsed(uri: str) -> str:
        return os.fsdecode(unquote_to_bytes(urlparse(uri).path))

    uris = [
        "file:///data/a.jpg",
        "file:///data/a b.jpg",
        "file:///data/a;b.jpg",
        "file:///data/a%41.jpg",
        "file:///data/a?x=1",
        "file:///data/a#frag",
        "file:///data/a\tb.jpg",
        "file:///data/caf\u00e9.jpg",
        "file:///",
        "file://localhost/data/a.jpg",
        path_to_uri("/data/set#1/100%41 ?/caf\udce9.jpg"),
    ]
    for uri in uris:
        assert uri_to_path(uri) == parsed(uri), uri
    assert uri_to_path("/plain/path.jpg") == "/plain/path.jpg"
    with pytest.raises(ValueError, match="only local paths"):
        uri_to_path("s3://bucket/a.jpg")


def test_names_that_are_not_utf8_and_uri_characters(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.jpg").write_bytes(jpeg_bytes(1))
    (Path(os.fsdecode(os.fsencode(str(src)) + b"/caf\xe9.jpg"))).write_bytes(jpeg_bytes(2))
    weird = src / "set#1" / "100%41 ?"
    weird.mkdir(parents=True)
    write_tar(weird / "a.tar", [("caf\udce9.jpg", jpeg_bytes(3)), ("z.jpg", jpeg_bytes(4))])
    out = tmp_path / "out"
    run(str(src), out, progress=None)
    rows = rows_by_id(out)
    tar_id = "set#1/100%41 ?/a.tar"
    assert set(rows) == {"ok.jpg", "caf\\xe9.jpg", f"{tar_id}/caf\\xe9.jpg", f"{tar_id}/z.jpg"}
    assert all(r["status"] == "OK" for r in rows.values()), [r["error"] for r in rows.values()]
    assert rows["caf\\xe9.jpg"]["byte_size"] == len(jpeg_bytes(2))
    uri = rows[f"{tar_id}/z.jpg"]["source_uri"]
    assert uri.endswith("/set%231/100%2541%20%3F/a.tar")
    from mmcore.jobs.processor import uri_to_path

    assert uri_to_path(uri) == str(weird / "a.tar")


def test_tar_ids_include_the_folder_and_repeated_members_are_refused(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for split in ("train", "val"):
        (src / split).mkdir(parents=True)
        members = [("s0.jpg", jpeg_bytes(1 if split == "train" else 2)), ("s0.jpg", jpeg_bytes(3))]
        write_tar(src / split / "000000.tar", [*members, ("s0.json", b"{}"), ("s0.json", b"{}")])
    out = tmp_path / "out"
    run(str(src), out, progress=None)
    rows = rows_by_id(out)
    assert set(rows) == {f"{s}/000000.tar/s0.jpg{d}" for s in ("train", "val") for d in ("", "#2")}
    assert rows["val/000000.tar/s0.jpg"]["status"] == "OK"
    dup = rows["val/000000.tar/s0.jpg#2"]
    assert dup["status"] == "SOURCE_ERROR" and "appears 2 times" in dup["error"]
    s = run(str(src), out, Config(mode="retry-failed"), progress=None)
    assert rows_by_id(out) == rows and s.counts == {"SOURCE_ERROR": 2}


def test_retry_failed_rereads_a_repaired_tar_and_damaged_parquet_keeps_its_rows(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()

    whole = write_tar(src / "s.tar", [(f"{i}.jpg", jpeg_bytes(i)) for i in range(4)])
    (src / "s.tar").write_bytes(whole[:12000])  # cut inside the third member
    out = tmp_path / "out"
    run(str(src), out, progress=None)
    assert sorted(rows_by_id(out)) == ["s.tar/", "s.tar/0.jpg", "s.tar/1.jpg"]
    (src / "s.tar").write_bytes(whole)  # repaired
    run(str(src), out, Config(mode="retry-failed"), progress=None)
    rows = rows_by_id(out)
    assert sorted(rows) == [f"s.tar/{i}.jpg" for i in range(4)]
    assert all(r["status"] == "OK" for r in rows.values())
    # A Parquet file whose second row group is damaged: the first one's rows, then one error row.
    pq.write_table(
        pa.table({"key": [f"k{i}" for i in range(4)], "jpg": [jpeg_bytes(i) for i in range(4)]}),
        tmp_path / "p.parquet",
        row_group_size=2,
        use_dictionary=False,
    )
    raw = bytearray((tmp_path / "p.parquet").read_bytes())
    at = pq.ParquetFile(tmp_path / "p.parquet").metadata.row_group(1).column(1).data_page_offset
    raw[at : at + 16] = b"\xff" * 16  # the page header
    (tmp_path / "p.parquet").write_bytes(bytes(raw))
    s = run(str(tmp_path / "p.parquet"), tmp_path / "o2", progress=None)
    rows = rows_by_id(tmp_path / "o2")
    assert s.shards_written == 1 and {"k0", "k1", "p.parquet#"} <= set(rows)
    assert rows["k0"]["status"] == "OK"
    assert "cannot read parquet p.parquet after row" in rows["p.parquet#"]["error"]


def test_parquet_image_struct_binary_keys_and_no_caption_as_path(tmp_path: Path) -> None:
    image = pa.array(
        [{"bytes": jpeg_bytes(i), "path": f"{i}.jpg"} for i in range(2)],
        pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
    )
    pq.write_table(
        pa.table({"key": pa.array([b"k0", b"k1"]), "image": image, "caption": ["a red car", "a cat"]}),
        tmp_path / "hf.parquet",
    )
    run(str(tmp_path / "hf.parquet"), tmp_path / "o1", progress=None)
    check_against_hash_batch(rows_by_id(tmp_path / "o1"), {f"k{i}": jpeg_bytes(i) for i in range(2)})
    pq.write_table(pa.table({"caption": ["a red car"]}), tmp_path / "c.parquet")
    run(str(tmp_path / "c.parquet"), tmp_path / "o2", progress=None)
    (row,) = rows_by_id(tmp_path / "o2").values()
    assert row["status"] == "SOURCE_ERROR" and "no bytes (binary) or path column" in row["error"]


def test_a_file_unreadable_while_planning_gets_a_row(tmp_path: Path) -> None:
    src = tmp_path / "src"
    blobs = make_tree(src, n=2)
    (src / "zz.jpg").symlink_to("/proc/self/mem")  # reads fail with EIO
    s = run(str(src), tmp_path / "out", progress=None)
    rows = rows_by_id(tmp_path / "out")
    assert set(rows) == set(blobs) | {"zz.jpg"} and s.records == len(blobs) + 1
    assert rows["zz.jpg"]["status"] == "READ_ERROR" and "zz.jpg" in rows["zz.jpg"]["error"]


def test_planning_opens_only_files_whose_names_are_sidecars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmcore.jobs import sources

    src = tmp_path / "src"
    blobs = make_tree(src, n=3)
    (src / "caption.txt").write_bytes(b"a cat")  # a sidecar: skipped
    (src / "photo.txt").write_bytes(jpeg_bytes(9))  # a JPEG under a sidecar's name: a record
    (src / "notes.bin").write_bytes(b"not an image")  # any other name: a record, its read says what
    opened: list[str] = []
    real_open = sources.open_regular

    def counting(path: str) -> Any:
        opened.append(os.path.basename(path))
        return real_open(path)

    monkeypatch.setattr(sources, "open_regular", counting)
    shards, skipped = sources.plan(str(src), 100)
    assert sorted(opened) == ["caption.txt", "meta.json", "notes.txt", "photo.txt"] and skipped == 3
    assert sorted(f for s in shards for f in s.files) == sorted([*blobs, "photo.txt", "notes.bin"])


def test_batches_grow_with_the_decode_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """batch_size 0: 256 records a batch, or 64 per decode thread where that is more (each batch
    waits for its slowest image); a batch_size given is kept. The rows are the same either way."""
    src = tmp_path / "src"
    src.mkdir()
    blob = jpeg_bytes(3, (24, 16))
    for i in range(700):
        (src / f"{i:04d}.jpg").write_bytes(blob)
    sizes: list[int] = []
    read = Processor.read

    def spy(self: Processor, batch: Any) -> Any:
        sizes.append(batch.num_rows)
        return read(self, batch)

    monkeypatch.setattr(Processor, "read", spy)
    assert Config().batch_size == 0 and Config(workers=5).batch_rows() == 320
    for cfg, want in ((Config(workers=5), [320, 320, 60]), (Config(workers=2), [256, 256, 188])):
        sizes.clear()
        run(str(src), tmp_path / f"out{cfg.workers}", cfg.replace(hashes=("dhash",)), progress=None)
        assert sizes == want, (cfg.workers, sizes)
    sizes.clear()
    run(str(src), tmp_path / "out8", Config(workers=5, batch_size=8, shard_size=20), progress=None)
    assert set(sizes) == {8, 4}
    assert len(rows_by_id(tmp_path / "out5")) == len(rows_by_id(tmp_path / "out2")) == 700
    # Shards too: 1000 files, or 256 per thread where that is more (a batch never spans two shards).
    for i in range(700, 1100):
        (src / f"{i:04d}.jpg").write_bytes(blob)
    sizes.clear()
    cfg = Config(workers=17, hashes=("dhash",))
    assert (cfg.shard_files(), cfg.batch_rows()) == (4352, 1088)
    run(str(src), tmp_path / "out17", cfg, progress=None)
    assert sizes == [1088, 12] and len(list((tmp_path / "out17").glob("part-*.parquet"))) == 1
    sizes.clear()
    run(str(src), tmp_path / "out3", Config(workers=3, hashes=("dhash",)), progress=None)
    assert sizes == [256] * 3 + [232, 100] and len(list((tmp_path / "out3").glob("part-*.parquet"))) == 2


def test_hash_ahead_keeps_order_raises_in_place_and_stops_when_closed() -> None:
    """mmcore run hashes two batches at once: the results come in input order (Refused records
    and shard markers passing through in place) whatever order the hashing ends in; a hash_read's
    exception comes where its batch would have; closing early cancels the batches not started."""
    import threading

    from mmcore.jobs.processor import ReadBatch
    from mmcore.jobs.runner import hash_ahead
    from mmcore.jobs.sources import Refused

    started: list[int] = []
    gate = threading.Event()

    def batch(i: int) -> ReadBatch:
        return ReadBatch([str(i)], [None], [None], [None], ["unread"], [None])

    def slow(b: ReadBatch) -> int:
        r = int(b.ids[0])
        started.append(r)
        if r == 0:
            assert gate.wait(5)  # the first batch ends after the second
        if r == 1:
            gate.set()
        if r == 5:
            raise ValueError("batch 5")
        return r * 10

    def items() -> Iterator[Any]:
        for i in range(8):
            if i in (2, 6):
                yield Refused(f"r{i}", "u", None, "no")
            elif i == 3:
                yield "marker"
            else:
                yield batch(i)

    out: list[Any] = []
    with pytest.raises(ValueError, match="batch 5"):
        for x in hash_ahead(items(), slow, 2):
            out.append(x.id if isinstance(x, Refused) else x)
    assert out == [0, 10, "r2", "marker", 40]
    for depth in (1, 3):
        started.clear()
        gate.set()
        it = hash_ahead(iter([batch(i) for i in range(5)]), slow, depth)
        assert next(it) == 0
        it.close()  # a downstream error: nothing more is started
        assert len(started) <= depth + 1


def test_a_failed_thumbnail_fails_its_row_at_stage_thumbnail(monkeypatch: pytest.MonkeyPatch) -> None:
    """A thumbnail the encoder refuses marks its row failed (the encoder's status and message,
    stage thumbnail, no thumbnail) and leaves its hashes; the other rows are untouched, a read
    error keeps its own row."""
    import pyarrow as pa

    from mmcore.image import EncodeResult

    real = mmcore.encode_batch

    def encode_batch(images: Any, **kw: Any) -> EncodeResult:
        r = real(images, **kw)
        r.data[1] = None
        r.status[1] = mmcore.Status.NO_MEMORY
        r.errors[1] = "out of memory (simulated)"
        return r

    monkeypatch.setattr(mmcore, "encode_batch", encode_batch)
    blobs = [jpeg_bytes(k) for k in range(3)]
    batch = pa.record_batch(
        {"id": ["a", "b", "c", "d"], "bytes": pa.array([blobs[0], blobs[1], None, blobs[2]], pa.binary())}
    )
    rows = Processor(Config(thumbnail=16, workers=2))(batch).to_pylist()
    assert [r["status"] for r in rows] == ["OK", "NO_MEMORY", "READ_ERROR", "OK"]
    assert [r["error_stage"] for r in rows] == [None, "thumbnail", "read", None]
    assert rows[1]["error"] == "out of memory (simulated)" and rows[1]["thumbnail"] is None
    assert rows[0]["thumbnail"] and rows[3]["thumbnail"] and rows[2]["thumbnail"] is None
    want = mmcore.hash_batch(blobs, kinds=("phash", "pdq"))
    assert [r["phash"] for r in rows if r["phash"] is not None] == want["phash"].view(np.int64).tolist()
    assert [r["pdq"] for r in rows if r["pdq"] is not None] == [bytes(v) for v in want["pdq"]]
    assert rows[2]["byte_size"] is None and rows[2]["content_sha256"] is None and rows[2]["format"] is None


def test_hash_ahead_gives_what_came_before_a_source_error() -> None:
    """An error of the items (the source, read ahead) comes after every batch before it, hashed:
    the shards before a failing one still complete."""
    from mmcore.jobs.processor import ReadBatch
    from mmcore.jobs.runner import hash_ahead

    def items() -> Iterator[Any]:
        for i in range(3):
            yield ReadBatch([str(i)], [None], [None], [None], ["unread"], [None])
        raise OSError(5, "Input/output error")

    out: list[Any] = []
    with pytest.raises(OSError, match="Input/output"):
        for x in hash_ahead(items(), lambda b: int(b.ids[0]), 2):
            out.append(x)
    assert out == [0, 1, 2]


def test_a_shard_end_is_no_barrier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next shard's first batch is hashed while the last batch of the one before is: the
    first call below waits until a second one has started, which with one batch per shard (and a
    barrier at each shard's end) never happened. The shards are written as before, in order, and
    their completion records' stage seconds add up to the run's."""
    import threading

    src, out = tmp_path / "src", tmp_path / "out"
    blobs = make_tree(src, n=7)  # 10 images: 5 shards of 2
    real = Processor.hash_read
    calls: list[str] = []
    second = threading.Event()
    overlapped: list[bool] = []

    def hash_read(self: Processor, r: Any) -> Any:
        calls.append(r.ids[0])
        if len(calls) == 1:
            overlapped.append(second.wait(10))
        else:
            second.set()
        return real(self, r)

    monkeypatch.setattr(Processor, "hash_read", hash_read)
    s = run(str(src), out, Config(shard_size=2, batch_size=2, workers=2), progress=None)
    assert overlapped == [True] and s.shards_written == 5 == len(calls)
    assert completed_shards(out) == [f"part-{i:05d}" for i in range(5)]
    rows = rows_by_id(out)
    assert set(rows) == set(blobs)
    check_against_hash_batch(rows, blobs)
    recs = [json.loads(p.read_text()) for p in sorted((out / "_done").glob("part-*.json"))]
    assert [r["rows"] for r in recs] == [2, 2, 2, 2, 2]
    for stage, total in s.stage_seconds.items():
        assert sum(r["stage_seconds"][stage] for r in recs) == pytest.approx(total, abs=0.01 * len(recs))
    assert sum(r["wall_seconds"] for r in recs) <= s.wall_seconds


def test_max_bytes_bounds_what_one_record_reads(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    small, big = jpeg_bytes(1), jpeg_bytes(2, (400, 300))
    (src / "small.jpg").write_bytes(small)
    (src / "big.jpg").write_bytes(big)
    write_tar(src / "t.tar", [("s.jpg", small), ("b.jpg", big), ("b.json", b"{" + b" " * len(big) + b"}")])
    limit = (len(small) + len(big)) // 2
    cfg = Config(max_bytes=limit)
    assert cfg.config_hash() != Config().config_hash() == Config(max_bytes=256 << 20).config_hash()
    run(str(src), tmp_path / "out", cfg, progress=None)
    rows = rows_by_id(tmp_path / "out")
    assert set(rows) == {"small.jpg", "big.jpg", "t.tar/s.jpg", "t.tar/b.jpg"}  # the big sidecar skipped
    assert rows["small.jpg"]["status"] == rows["t.tar/s.jpg"]["status"] == "OK"
    assert (
        rows["big.jpg"]["status"] == "READ_ERROR"
        and f"over the limit of {limit:,}" in rows["big.jpg"]["error"]
    )
    assert rows["t.tar/b.jpg"]["status"] == "SOURCE_ERROR" and "max_bytes" in rows["t.tar/b.jpg"]["error"]


def test_file_reads_are_whole_at_the_limit_and_when_the_size_lies(tmp_path: Path) -> None:
    """A file is read into a buffer of its size, not of the limit: one exactly at the limit is
    whole, one byte more is refused, and a regular file whose size says 0 (procfs) is read to the
    end all the same."""
    from mmcore.jobs.processor import _read

    data = bytes(range(256)) * 40
    (tmp_path / "f").write_bytes(data)
    assert _read(str(tmp_path / "f"), len(data)) == (data, None)
    assert _read(str(tmp_path / "f")) == (data, None)
    got, err = _read(str(tmp_path / "f"), len(data) - 1)
    assert got is None and err is not None and "over the limit" in err
    proc = Path("/proc/self/mounts")
    if proc.exists() and proc.stat().st_size == 0:
        got, err = _read(str(proc), 1 << 20)
        assert err is None and got is not None and len(got) > 0 and got.endswith(b"\n")
        got, err = _read(str(proc), 1)  # grown past a limit while being read
        assert got is None and err is not None and "over the limit" in err


def test_native_file_reads_equal_the_python_reader(tmp_path: Path) -> None:
    """read_paths reads regular files natively (_core.read_files, as memoryviews) and leaves the
    rest to _read: the same bytes and the same messages as _read gives for every kind of entry
    (files of 0 bytes to several MB, at and over the limit, a name not in UTF-8, a URI, a
    missing file, a folder, a FIFO, a link to nothing, a file without read permission)."""
    from mmcore import _core
    from mmcore.jobs.processor import _read, path_to_uri, read_paths

    files = {"empty": b"", "one": b"x", "small": jpeg_bytes(3), "big": os.urandom(3 << 20)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    odd = os.fsdecode(b"caf\xe9.jpg")  # not UTF-8: a surrogate escape, as os.listdir gives it
    (tmp_path / odd).write_bytes(b"odd")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "secret").write_bytes(b"s")
    (tmp_path / "secret").chmod(0)
    paths = [str(tmp_path / n) for n in files] + [
        str(tmp_path / odd),
        path_to_uri(tmp_path / "small"),
        str(tmp_path / "missing"),
        str(tmp_path),
        str(tmp_path / "fifo"),
        str(tmp_path / "dangling"),
        str(tmp_path / "secret"),
        "s3://bucket/key.jpg",
    ]
    for limit in (None, 1 << 20, 1):
        got = read_paths(paths, limit)
        want = [_read(p, limit) for p in paths]
        assert [(None if d is None else bytes(d), e) for d, e in got] == want
    fast = _core.read_files([str(tmp_path / n) for n in files], -1, 4)
    assert [bytes(d) for d in fast] == list(files.values())  # type: ignore[arg-type]
    assert all(isinstance(d, memoryview) for d in fast)
    assert _core.read_files([str(tmp_path / "big")], len(files["big"]) - 1, 1) == [None]


def test_a_bytes_column_of_text_is_refused_clearly() -> None:
    """A string 'bytes' column (paths or base64 put in the wrong column) is a batch of the wrong
    shape: a ValueError that says so (it was hashlib's "Strings must be encoded before hashing")."""
    proc = Processor(Config(hashes=("dhash",)))
    with pytest.raises(ValueError, match=r"'bytes' column must be binary.*got string"):
        proc(pa.RecordBatch.from_pydict({"id": ["a"], "bytes": ["/etc/hostname"]}))
    big = pa.array([jpeg_bytes(1)], pa.large_binary())
    ok = proc(pa.RecordBatch.from_pydict({"id": ["a"], "bytes": big}))
    assert ok.column("status").to_pylist() == ["OK"]


def test_binary_columns_are_read_as_views_equal_to_their_values() -> None:
    """Processor reads a binary column through views of its Arrow buffers: the same values as
    to_pylist for binary and large_binary, chunked, sliced (an offset into the buffers), with
    nulls and empty values; any other type as to_pylist gives it."""
    from mmcore.jobs.processor import _binary_values

    vals = [b"abc", None, b"", jpeg_bytes(0), b"\xff" * 3, None, b"z"]
    for t in (pa.binary(), pa.large_binary()):
        arr = pa.array(vals, t)
        cases = [arr, arr.slice(2, 4), arr.slice(7), pa.chunked_array([arr.slice(0, 3), arr.slice(3)], t)]
        cases += [pa.array([b"", b""], t), pa.array([None], t), pa.chunked_array([], t)]
        for c in cases:
            got = _binary_values(c)
            assert [None if v is None else bytes(v) for v in got] == c.to_pylist()
            assert all(v is None or isinstance(v, memoryview) for v in got)
    assert _binary_values(pa.array(["a", None])) == ["a", None]


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_sha256_digests_on_threads_equal_hashlib(threads: int) -> None:
    from mmcore.jobs.processor import _sha256_digests

    rng = np.random.default_rng(threads)
    data: list[bytes | None] = [
        None if i % 7 == 3 else rng.integers(0, 256, int(rng.integers(0, 90_000)), np.uint8).tobytes()
        for i in range(101)
    ]  # ~4 MB: threads are used from 1 MiB a thread
    want = [None if d is None else hashlib.sha256(d).digest() for d in data]
    assert _sha256_digests(data, threads) == want
    assert _sha256_digests(data[:5], threads) == want[:5] and _sha256_digests([], threads) == []


def test_report_says_when_dedup_clusters_are_out_of_date(tmp_path: Path) -> None:
    from mmcore.jobs.dedup import dedup
    from mmcore.jobs.report import report

    src, out = tmp_path / "src", tmp_path / "out"
    make_tree(src, n=3)
    run(str(src), out, progress=None)
    dedup(out, hash="pdq", threshold=31)
    first = report(out).read_text()
    (src / "late.jpg").write_bytes(jpeg_bytes(3))  # a new record: the clusters no longer cover it
    run(str(src), out, progress=None)
    stale = report(out).read_text()
    dedup(out, hash="pdq", threshold=31)
    fresh = report(out).read_text()
    assert ["Out of date" in t for t in (first, stale, fresh)] == [False, True, False]


# -- job-level reliability (a review with kill -9, concurrent runs and odd folders) --------------


def test_a_second_run_on_the_same_out_is_refused_and_touches_nothing(tmp_path: Path) -> None:
    import fcntl

    src, out = tmp_path / "src", tmp_path / "out"
    make_tree(src, n=3)
    run(str(src), out, progress=None)
    before = sorted(p.name for p in out.rglob("*"))
    held = os.open(out, os.O_RDONLY | os.O_DIRECTORY)  # as a run in progress holds it
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(JobError, match="another mmcore run"):
            run(str(src), out, Config(thumbnail=32), progress=None)
    finally:
        os.close(held)
    assert sorted(p.name for p in out.rglob("*")) == before
    assert run(str(src), out, progress=None).shards_skipped >= 1  # released: the next run resumes


def test_a_first_run_killed_while_writing_its_manifest_can_be_rerun(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    blobs = make_tree(src, n=3)
    out.mkdir()
    (out / "._mmcore_job.json.tmp-12345").write_bytes(b'{"format": "mmc')  # cut short by the kill
    run(str(src), out, progress=None)
    assert set(rows_by_id(out)) == set(blobs)
    assert not list(out.glob(".*.tmp-*"))


def test_a_parquet_id_column_that_repeats_an_id_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    """Repeated ids used to be written, and `mmcore dedup` then refused the whole output."""
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    good = jpeg_bytes(3)
    pq.write_table(pa.table({"id": [0, 1], "bytes": [good, good]}), src / "a.parquet")
    pq.write_table(pa.table({"id": [2, 1], "bytes": [good, good]}), src / "b.parquet")
    with pytest.raises(JobError, match=r"the id '1' is on row 1 of a.parquet and on row 1 of b.parquet"):
        run(str(src), out, progress=None)
    assert not list(out.glob("part-*"))
    # the way out the message names: ids by row
    run(str(src), out, Config(id_column="none"), progress=None)
    assert sorted(rows_by_id(out)) == ["a.parquet#0", "a.parquet#1", "b.parquet#0", "b.parquet#1"]
    assert dedup_mod.dedup(out).num_rows == 4
    # or a column of unique ids; a file without it gets a SOURCE_ERROR row
    pq.write_table(pa.table({"uid": ["x", "y"], "bytes": [good, good]}), src / "a.parquet")
    out2 = tmp_path / "out2"
    run(str(src), out2, Config(id_column="uid"), progress=None)
    rows = rows_by_id(out2)
    assert {k: v["status"] for k, v in rows.items()} == {"x": "OK", "y": "OK", "b.parquet#": "SOURCE_ERROR"}
    assert "no column 'uid'" in rows["b.parquet#"]["error"]


def test_repeated_ids_are_counted_in_arrow_and_named_in_python(tmp_path: Path) -> None:
    """repeated_id counts string / integer ids in Arrow (100M ids in a Python set took ~19 GB);
    a repeat, or an id column of another type, goes to the pass that names both places."""
    from mmcore.jobs.sources import plan, repeated_id

    src = tmp_path / "src"
    src.mkdir()
    good = jpeg_bytes(3)
    (src / "x.jpg").write_bytes(good)
    pq.write_table(pa.table({"id": ["a", None, "b"], "bytes": [good] * 3}), src / "a.parquet")
    pq.write_table(pa.table({"id": [7, None], "bytes": [good] * 2}), src / "b.parquet")
    assert repeated_id(plan(str(src), 10)[0]) is None  # nulls are not ids
    pq.write_table(pa.table({"id": ["c", "x.jpg"], "bytes": [good] * 2}), src / "c.parquet")
    msg = repeated_id(plan(str(src), 10)[0])
    assert msg is not None and "the id 'x.jpg' is on the file x.jpg and on row 1 of c.parquet" in msg
    (src / "c.parquet").unlink()
    pq.write_table(pa.table({"id": [1.5, 2.5], "bytes": [good] * 2}), src / "d.parquet")
    assert repeated_id(plan(str(src), 10)[0]) is None  # float ids: the Python pass
    pq.write_table(pa.table({"id": [2.5], "bytes": [good]}), src / "e.parquet")
    msg = repeated_id(plan(str(src), 10)[0])
    assert msg is not None and "the id '2.5' is on row 1 of d.parquet and on row 0 of e.parquet" in msg


def test_retry_failed_keeps_every_row_when_ids_repeat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outputs written before repeated ids were refused can hold them: retry-failed matches the
    k-th row of an id with the k-th record read again."""
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    good = jpeg_bytes(3)
    pq.write_table(pa.table({"id": ["a", "a", "b"], "bytes": [good, b"junk", good]}), src / "t.parquet")
    monkeypatch.setattr(runner_mod, "repeated_id", lambda *a: None)  # as an older version wrote it
    run(str(src), out, progress=None)
    want = [(r["id"], r["member"], r["status"]) for r in read_output(out).to_pylist()]
    assert want == [("a", "0", "OK"), ("a", "1", "CORRUPT"), ("b", "2", "OK")]
    run(str(src), out, Config(mode="retry-failed"), progress=None)
    assert [(r["id"], r["member"], r["status"]) for r in read_output(out).to_pylist()] == want


def test_links_and_folders_that_cannot_be_listed_are_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder the walk cannot list, a link to nothing and a loop of file links get READ_ERROR
    rows (they used to vanish, the job exiting 0); a linked folder is walked, once, even when links loop."""
    src, out = tmp_path / "src", tmp_path / "out"
    blobs = make_tree(src, n=2)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "far.jpg").write_bytes(jpeg_bytes(5))
    (src / "linked").symlink_to(tmp_path / "elsewhere")
    (src / "loop").symlink_to(src)
    (src / "dangling.jpg").symlink_to(tmp_path / "nothing.jpg")
    (src / "ring1.jpg").symlink_to(src / "ring2.jpg")  # a loop of file links (ELOOP)
    (src / "ring2.jpg").symlink_to(src / "ring1.jpg")
    (src / "locked").mkdir()
    (src / "locked" / "x.jpg").write_bytes(jpeg_bytes(6))
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:
        if os.fspath(path).endswith(os.sep + "locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    run(str(src), out, progress=None)
    monkeypatch.undo()
    rows = rows_by_id(out)
    assert set(rows) == set(blobs) | {"linked/far.jpg", "dangling.jpg", "ring1.jpg", "ring2.jpg", "locked"}
    for ring in ("ring1.jpg", "ring2.jpg"):
        assert rows[ring]["status"] == "READ_ERROR" and "symbolic links" in rows[ring]["error"], rows[ring]
    assert rows["linked/far.jpg"]["status"] == "OK"
    assert rows["dangling.jpg"]["status"] == "READ_ERROR" and "No such file" in rows["dangling.jpg"]["error"]
    # listable again by the time it is read: a folder, not a file (where it still cannot be
    # listed, the error says so)
    assert rows["locked"]["status"] == "READ_ERROR" and "a folder, not a file" in rows["locked"]["error"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs (POSIX)")
def test_fifos_and_sockets_are_rows_and_never_waited_on(tmp_path: Path) -> None:
    """A FIFO (even one named like a tar or Parquet shard) and a socket in the source are READ_ERROR
    rows saying what they are: they used to vanish from the walk, and opening a FIFO to look at its
    first bytes would wait for a writer forever. Run as a process with a time limit, so that a wait
    fails the test instead of hanging the suite."""
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "good.jpg").write_bytes(jpeg_bytes(1))
    for name in ("pipe.jpg", "pipe.tar", "pipe.parquet"):
        os.mkfifo(src / name)
    want = {"good.jpg", "pipe.jpg", "pipe.tar", "pipe.parquet"}
    import socket

    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(src / "sock.jpg"))
        want.add("sock.jpg")
    except OSError:  # a path too long for AF_UNIX: the FIFOs still make the case
        pass
    try:
        cmd = [sys.executable, "-m", "mmcore", "run", str(src), str(out), "--quiet"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    finally:
        sock.close()
    assert done.returncode == 0, done.stderr
    rows = rows_by_id(out)
    assert set(rows) == want
    assert rows["good.jpg"]["status"] == "OK"
    for name in want - {"good.jpg"}:
        assert rows[name]["status"] == "READ_ERROR", name
        assert "not a regular file" in rows[name]["error"], rows[name]["error"]
        assert rows[name]["error_stage"] == "read"


def test_a_folder_tree_deeper_than_the_recursion_limit(tmp_path: Path) -> None:
    """1,100 nested folders: os.walk's recursion (Python 3.11) stopped the job with a
    RecursionError there; the walk now keeps its own stack (and each folder's real path, so the
    walk stays fast at that depth)."""
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "top.jpg").write_bytes(jpeg_bytes(1))
    chain = [src]
    for _ in range(1100):  # one level at a time: Path.mkdir(parents=True) recurses too
        chain.append(chain[-1] / "d")
        chain[-1].mkdir()
    try:
        (chain[-1] / "bottom.jpg").write_bytes(jpeg_bytes(2))
        (chain[-2] / "side.jpg").write_bytes(jpeg_bytes(3))
        run(str(src), out, progress=None)
        rows = rows_by_id(out)
        bottom = "/".join(["d"] * 1100) + "/bottom.jpg"
        side = "/".join(["d"] * 1099) + "/side.jpg"
        assert set(rows) == {"top.jpg", bottom, side}
        assert all(r["status"] == "OK" for r in rows.values())
        # A glob over the same tree recurses in Python's glob: a clear error, not a traceback.
        with pytest.raises(ValueError, match="give the folder itself as the source"):
            run(str(src / "**" / "*.jpg"), tmp_path / "out2", progress=None)
    finally:
        # Removed here, deepest first: pytest's own clean-up (shutil.rmtree) recurses too, and
        # would fail on this tree in a later session.
        for folder in reversed(chain[1:]):
            for f in folder.iterdir():
                f.unlink()
            folder.rmdir()


def test_ctrl_c_is_one_line_and_the_job_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mmcore.cli import main
    from mmcore.jobs import runner

    src, out = tmp_path / "src", tmp_path / "out"
    blobs = make_tree(src, n=4)

    def interrupted(*a: Any, **k: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run", interrupted)
    assert main(["run", str(src), str(out), "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "rerun" in err and "Traceback" not in err
    monkeypatch.undo()
    assert main(["run", str(src), str(out), "--quiet", "--thumbnail", "32"]) == 0
    # A rerun without processing options keeps those OUT was written with (the README's resume).
    assert main(["run", str(src), str(out), "--quiet"]) == 0
    assert set(rows_by_id(out)) == set(blobs) and all(
        r["thumbnail"] for r in rows_by_id(out).values() if r["status"] == "OK"
    )


def test_a_folder_written_by_spark_gives_rows_for_its_images_only(tmp_path: Path) -> None:
    """Spark's _SUCCESS marker and .crc checksums are skipped like sidecars (they were CORRUPT rows)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "part-00000.jpg").write_bytes(jpeg_bytes(1))
    (src / ".part-00000.jpg.crc").write_bytes(b"crc\x00\x01")
    (src / "_SUCCESS").write_bytes(b"")
    (src / "_committed_123").write_bytes(b"{}")
    s = run(str(src), tmp_path / "out", progress=None)
    assert set(rows_by_id(tmp_path / "out")) == {"part-00000.jpg"} and s.records == 1


def test_incremental_rereads_shards_whose_inputs_changed(tmp_path: Path) -> None:
    """What a completed shard read is checked (size and modification time, kept in its completion
    record): a rewritten file gets its new row, a deleted one a READ_ERROR row, a tar rewritten
    with more members gets their rows; only those records are read again, other shards skipped."""
    import hashlib

    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    for i in range(6):
        (src / f"img{i}.jpg").write_bytes(jpeg_bytes(i))
    write_tar(src / "t.tar", [("a.jpg", jpeg_bytes(10))])
    run(str(src), out, Config(shard_size=2), progress=None)
    (src / "img0.jpg").write_bytes(jpeg_bytes(20, (64, 64)))
    (src / "img2.jpg").unlink()
    write_tar(src / "t.tar", [("a.jpg", jpeg_bytes(10)), ("b.jpg", jpeg_bytes(11))])
    s = run(str(src), out, Config(shard_size=2), progress=None)
    assert s.shards_changed == 3 and s.shards_skipped == 1  # img0-1, img2-3 and the tar; img4-5 kept
    assert s.records == 1 + 1 + 2  # img0, img2 and the tar's two members
    assert any("inputs changed" in line for line in s.lines())
    rows = rows_by_id(out)
    assert rows["img0.jpg"]["content_sha256"] == hashlib.sha256((src / "img0.jpg").read_bytes()).digest()
    assert rows["img0.jpg"]["width"] == 64
    assert rows["img2.jpg"]["status"] == "READ_ERROR" and "No such file" in rows["img2.jpg"]["error"]
    assert rows["t.tar/b.jpg"]["status"] == "OK" and len(rows) == 6 + 2
    assert run(str(src), out, Config(shard_size=2), progress=None).shards_changed == 0


def test_out_reached_through_a_link_is_not_read_as_source(tmp_path: Path) -> None:
    """OUT inside the source by a link (or the source given by a link, OUT by its real path) is
    still left out of the walk: a rerun does not read its own Parquet parts as input."""
    src = tmp_path / "src"
    blobs = make_tree(src, n=2)
    (tmp_path / "srclink").symlink_to(src)
    out = tmp_path / "srclink" / "out"  # really src/out
    for _ in range(2):
        run(str(src), out, progress=None)
        assert set(rows_by_id(out)) == set(blobs)
    src2 = tmp_path / "src2"
    blobs2 = make_tree(src2, n=2)
    (tmp_path / "src2link").symlink_to(src2)
    for _ in range(2):
        run(str(tmp_path / "src2link"), src2 / "out", progress=None)
        assert set(rows_by_id(src2 / "out")) == set(blobs2)
    with pytest.raises(JobError, match="source folder"):
        run(str(tmp_path / "src2link"), src2, progress=None)


def test_a_source_that_cannot_be_listed_fails_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The source folder itself unlistable: exit 1 (JobError), not an empty job that exits 0; and a
    file that cannot be looked at on a rerun is not taken for a deleted one (its row stays)."""
    src, out = tmp_path / "src", tmp_path / "out"
    blobs = make_tree(src, n=2)
    run(str(src), out, progress=None)
    real_scandir, real_stat = os.scandir, os.stat

    def scandir(path: Any = ".") -> Any:
        if os.path.realpath(os.fspath(path)) == os.path.realpath(src):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(JobError, match="Permission denied"):
        run(str(src), tmp_path / "fresh", progress=None)
    monkeypatch.undo()

    def stat(path: Any, *a: Any, **k: Any) -> Any:
        if os.fspath(path).endswith("img000.jpg"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_stat(path, *a, **k)

    monkeypatch.setattr(os, "stat", stat)
    s = run(str(src), out, progress=None)
    monkeypatch.undo()
    assert s.shards_changed == 0
    rows = rows_by_id(out)
    assert set(rows) == set(blobs) and rows["a/sub0/img000.jpg"]["status"] == "OK"


def test_parquet_path_column_sees_changed_images(tmp_path: Path) -> None:
    """A Parquet source with a path column: an image it names that changes is read again on the
    next run (the completion record keeps a digest of the named files' sizes and times), and
    Hadoop's file:/x paths read as file:///x does, with a file:/// source_uri."""
    import hashlib

    src = tmp_path / "src"
    (src / "imgs").mkdir(parents=True)
    (src / "imgs" / "a b.jpg").write_bytes(jpeg_bytes(1))
    (src / "imgs" / "c.jpg").write_bytes(jpeg_bytes(2))
    far = tmp_path / "far.jpg"
    far.write_bytes(jpeg_bytes(3))
    pq.write_table(pa.table({"path": ["imgs/a b.jpg", "imgs/c.jpg", "file:" + str(far)]}), src / "t.parquet")
    out = tmp_path / "out"
    run(str(src / "t.parquet"), out, progress=None)
    rows = read_output(out).to_pylist()
    assert [r["status"] for r in rows] == ["OK"] * 3
    # Without a source_uri (Ray, a Spark DataFrame that is not a file scan) the path gives it.
    got = Processor(Config(hashes=("phash",)))(pa.table({"id": ["h"], "path": ["file:" + str(far)]}))
    assert got.column("source_uri").to_pylist() == ["file://" + str(far)]
    assert got.column("status").to_pylist() == ["OK"]
    assert run(str(src / "t.parquet"), out, progress=None).shards_changed == 0
    (src / "imgs" / "c.jpg").write_bytes(jpeg_bytes(7, (40, 30)))
    s = run(str(src / "t.parquet"), out, progress=None)
    assert s.shards_changed == 1
    rows = read_output(out).to_pylist()
    assert len(rows) == 3 and rows[1]["width"] == 40
    assert rows[1]["content_sha256"] == hashlib.sha256((src / "imgs" / "c.jpg").read_bytes()).digest()


# -- hostile sources, outputs and options (an audit's findings) -------------------------------------


def test_config_hashes_must_be_a_list_and_their_order_does_not_matter() -> None:
    for bad in (5, True, "phash", None):
        with pytest.raises(ValueError, match="hashes must be a list of names"):
            Config(hashes=bad)  # type: ignore[arg-type]
    assert Config(hashes=("pdq", "phash")).hashes == ("phash", "pdq")
    assert Config(hashes=["pdq", "phash"]).config_hash() == Config(hashes=("phash", "pdq")).config_hash()
    with pytest.raises(ValueError, match="id_column"):
        Config(id_column="")


def test_cli_run_flag_errors_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mmcore.cli import main

    make_tree(tmp_path / "src", n=1)
    for flag in (["--workers", "-1"], ["--shard-size", "0"], ["--thumbnail", "-5"]):
        with pytest.raises(SystemExit) as e:
            main(["run", str(tmp_path / "src"), str(tmp_path / "o"), *flag])
        assert e.value.code == 2
    capsys.readouterr()
    assert main(["run", str(tmp_path / "src"), str(tmp_path / "o"), "--hashes", ""]) == 1
    assert "hashes must be one or more" in capsys.readouterr().err
    printf = tmp_path / "c.toml"
    printf.write_text("hashes = 5\n")
    assert main(["run", str(tmp_path / "src"), str(tmp_path / "o"), "--config", str(printf)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hashes must be a list of names" in err


def test_a_source_that_is_a_dangling_link_or_a_loop_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "dangling").symlink_to(tmp_path / "nothing")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for name in ("dangling", "loop"):
        with pytest.raises(FileNotFoundError, match="link to nothing"):
            run(str(tmp_path / name), tmp_path / f"out-{name}", progress=None)


def test_a_source_inside_the_output_folder_is_refused(tmp_path: Path) -> None:
    """Its files would be left out of the walk as OUT's own: records silently lost."""
    out = tmp_path / "out"
    make_tree(tmp_path / "src", n=2)
    run(str(tmp_path / "src"), out, progress=None)
    (out / "imgs" / "sub").mkdir(parents=True)
    (out / "imgs" / "top.jpg").write_bytes(jpeg_bytes(1))
    (out / "imgs" / "sub" / "deep.jpg").write_bytes(jpeg_bytes(2))
    for source in (out / "imgs", out / "imgs" / "top.jpg", f"{out}/imgs/**/*.jpg"):
        with pytest.raises(JobError, match="lies inside the output folder"):
            run(str(source), out, Config(mode="overwrite"), progress=None)
    assert len(read_output(out)) > 0  # refused before anything was cleared


def test_overwrite_alone_keeps_the_processing_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mmcore.cli import main

    make_tree(tmp_path / "src", n=2)
    out = str(tmp_path / "out")
    assert main(["run", str(tmp_path / "src"), out, "--thumbnail", "32", "--quiet"]) == 0
    assert main(["run", str(tmp_path / "src"), out, "--mode", "overwrite", "--quiet"]) == 0
    capsys.readouterr()
    assert json.loads((tmp_path / "out" / "_mmcore_job.json").read_text())["config"]["thumbnail"] == 32


def test_hugging_face_image_structs_read_their_path_and_large_binary(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    good = jpeg_bytes(4)
    (src / "file.jpg").write_bytes(good)  # a path-only row names it (relative to the Parquet file)
    hf = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    rows = [
        {"bytes": good, "path": "a.jpg"},
        {"bytes": None, "path": "file.jpg"},
        {"bytes": None, "path": None},
    ]
    pq.write_table(pa.table({"id": ["b", "p", "n"], "image": pa.array(rows, hf)}), src / "hf.parquet")
    large = pa.struct([("bytes", pa.large_binary()), ("path", pa.string())])
    pq.write_table(
        pa.table({"id": ["l"], "image": pa.array([{"bytes": good, "path": None}], large)}), src / "l.parquet"
    )
    out = tmp_path / "out"
    run(str(src / "*.parquet"), out, progress=None)
    rows_ = rows_by_id(out)
    assert {k: v["status"] for k, v in rows_.items()} == {"b": "OK", "p": "OK", "n": "READ_ERROR", "l": "OK"}
    want = mmcore.hash_batch([good], kinds=("pdq",))["pdq"][0].tobytes()
    assert rows_["p"]["pdq"] == want and rows_["l"]["pdq"] == want
    assert "neither bytes nor a path" in rows_["n"]["error"]


def test_tar_sidecars_are_counted_in_the_summary(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with tarfile.open(src / "s.tar", "w") as tf:
        for name, data in (("0.jpg", jpeg_bytes(1)), ("0.json", b"{}"), ("0.txt", b"cap"), ("1.cls", b"3")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    s = run(str(src), tmp_path / "out", progress=None)
    assert s.records == 1 and s.skipped_files == 3
    assert any("skipped 3 files or tar members" in line for line in s.lines())


def test_a_damaged_part_or_record_is_rewritten_by_the_next_run(tmp_path: Path) -> None:
    """The rerun the report advises used to skip the shard as complete."""
    make_tree(tmp_path / "src", n=4)
    out = tmp_path / "out"
    run(str(tmp_path / "src"), out, Config(shard_size=2), progress=None)
    want = rows_by_id(out)
    part = out / "part-00000.parquet"
    part.write_bytes(part.read_bytes()[:100])  # cut short after its record was written
    (out / "_done" / "part-00001.json").write_bytes(b"garbage")
    assert "part-00000" not in completed_shards(out) and "part-00001" not in completed_shards(out)
    s = run(str(tmp_path / "src"), out, progress=None)
    assert s.shards_written == 2
    got = rows_by_id(out)
    assert got.keys() == want.keys() and all(got[k]["pdq"] == want[k]["pdq"] for k in want)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"shards": [{}]}, "shard 0 is not a shard entry"),
        ({"config": [1, 2]}, "'config' is not a job config"),
        ({"config": {"hashes": 7}}, "'config' is not a job config"),
    ],
)
def test_a_foreign_manifest_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: dict[str, Any], message: str
) -> None:
    from mmcore.cli import main

    make_tree(tmp_path / "src", n=1)
    out = tmp_path / "out"
    run(str(tmp_path / "src"), out, progress=None)
    m = json.loads((out / "_mmcore_job.json").read_text())
    (out / "_mmcore_job.json").write_text(json.dumps({**m, **edit}))
    for argv in (["run", str(tmp_path / "src"), str(out)], ["dedup", str(out)], ["report", str(out)]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def test_a_parquet_path_naming_a_folder_says_so(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "folder").mkdir(parents=True)
    pq.write_table(pa.table({"path": ["folder"]}), src / "p.parquet")
    run(str(src / "p.parquet"), tmp_path / "out", progress=None)
    (row,) = read_output(tmp_path / "out").to_pylist()
    assert row["status"] == "READ_ERROR" and row["error"].endswith("a folder, not a file")


def test_an_image_over_the_size_limits_keeps_its_header_size(tmp_path: Path) -> None:
    """TOO_LARGE from the header (libjpeg's 65,500 pixels a side): the header was read, so width /
    height say how large (they were null; the DALI pipeline gave them, and its docs said "as in
    mmcore run")."""
    small = jpeg_bytes(1, (16, 16))
    at = small.index(b"\xff\xc0") + 5  # SOF0: precision, then height and width
    huge = small[:at] + (65535).to_bytes(2, "big") + (65534).to_bytes(2, "big") + small[at + 4 :]
    src = tmp_path / "src"
    src.mkdir()
    (src / "huge.jpg").write_bytes(huge)
    run(str(src), tmp_path / "out", progress=None)
    (row,) = read_output(tmp_path / "out").to_pylist()
    assert row["status"] == "TOO_LARGE" and (row["width"], row["height"], row["format"]) == (
        65534,
        65535,
        "jpeg",
    )
    assert row["phash"] is None and "65500" in row["error"]


def test_an_output_written_with_hashes_in_another_order_resumes(tmp_path: Path) -> None:
    """Before hashes were put in one order, `--hashes pdq,phash` hashed the config in that order:
    a rerun of such an output (same options) must resume it, keeping its config hash."""
    import hashlib

    make_tree(tmp_path / "src", n=4)
    out = tmp_path / "out"
    run(str(tmp_path / "src"), out, Config(hashes=("phash", "pdq"), shard_size=2), progress=None)
    mpath = out / "_mmcore_job.json"
    m = json.loads(mpath.read_text())
    legacy = {**Config(hashes=("phash", "pdq")).processor_dict(), "hashes": ["pdq", "phash"]}
    m["config"]["hashes"] = ["pdq", "phash"]
    m["config_hash"] = hashlib.sha256(
        json.dumps(legacy, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    m["shards"] = m["shards"][:1]  # the rest to be planned again by the rerun
    mpath.write_text(json.dumps(m))
    for p in (out / "_done").glob("*.json"):
        if p.stem != "part-00000":
            p.unlink()
    rec = json.loads((out / "_done" / "part-00000.json").read_text())
    (out / "_done" / "part-00000.json").write_text(json.dumps({**rec, "config_hash": m["config_hash"]}))
    s = run(str(tmp_path / "src"), out, Config(hashes=("pdq", "phash"), shard_size=2), progress=None)
    assert s.shards_written >= 1
    records = [json.loads(p.read_text()) for p in sorted((out / "_done").glob("*.json"))]
    assert {r["config_hash"] for r in records} == {m["config_hash"]}
    assert json.loads(mpath.read_text())["config_hash"] == m["config_hash"]
    with pytest.raises(JobError, match="other processing options"):
        run(str(tmp_path / "src"), out, Config(hashes=("pdq",)), progress=None)
