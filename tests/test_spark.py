"""mmcore.spark on a local[2] Spark session: process() gives the rows of ``mmcore run`` (binaryFile,
Parquet bytes and path columns, the mmcore_wds tar source) and dedup() the clusters of
``mmcore dedup`` (generated near-duplicate groups, and the corpus)."""

from __future__ import annotations

import io
import os
import shutil
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import test_dedup
from conftest import corpus_files, outside_source_tree
from jobs_fixtures import run_table, write_run_output

import mmcore
from mmcore.jobs.config import Config
from mmcore.jobs.dedup import dedup as dedup_one
from mmcore.jobs.runner import run
from mmcore.jobs.schema import completed_shards, read_output, shard_path
from mmcore.jobs.sources import looks_like_image

pytestmark = pytest.mark.spark

pyspark = pytest.importorskip("pyspark", reason="needs pyspark (pip install 'mmcore[spark]')")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("needs Java 17 for Spark", allow_module_level=True)

import mmcore.spark as ms  # noqa: E402

pdq_out = test_dedup.pdq_out  # the fixture: near-duplicate groups written as a run output

CONFIG = Config(workers=1)  # one thread per task: local[2] runs two tasks


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers import this interpreter's mmcore
    with outside_source_tree(tmp_path_factory.mktemp("spark-cwd")):
        session = (
            SparkSession.builder.master("local[2]")
            .appName("mmcore-tests")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.default.parallelism", "4")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        ms.register_data_source(session)
        yield session
        session.stop()


def rows(table: pa.Table) -> list[dict[str, Any]]:
    """Rows sorted by id, fixed-size binaries as plain bytes (Spark has no fixed-size binary)."""
    out = table.to_pylist()
    for r in out:
        for k, v in r.items():
            if isinstance(v, bytes):
                r[k] = bytes(v)
    return sorted(out, key=lambda r: r["id"])


def spark_rows(df: Any) -> list[dict[str, Any]]:
    return rows(df.toArrow())


def single_machine(source: str, out: Path, config: Config | None = None) -> list[dict[str, Any]]:
    run(source, out, config or CONFIG, progress=None)
    return rows(read_output(out))


# ------------------------------------------------------------------------------------------------
# process


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory: pytest.TempPathFactory, spark: Any) -> dict[str, Any]:
    """corpus jpeg/ plus 20 corrupt/ files copied into one folder, run by both."""
    root = tmp_path_factory.mktemp("corpus")
    jpegs = corpus_files("jpeg")
    corrupt = [p for p in corpus_files("corrupt") if looks_like_image(p.read_bytes()[:16], p.name)][:20]
    for sub, files in (("jpeg", jpegs), ("corrupt", corrupt)):
        (root / sub).mkdir()
        for p in files:
            shutil.copyfile(p, root / sub / p.name)
    out = root.parent / "corpus-out"
    expected = single_machine(str(root), out)
    df = ms.process(spark.read.format("binaryFile").load(str(root), recursiveFileLookup=True), CONFIG)
    df = df.cache()
    got = spark_rows(df)
    return {"root": root, "out": out, "expected": expected, "got": got, "df": df}


def test_binary_files_give_the_rows_of_mmcore_run(corpus_run: dict[str, Any]) -> None:
    root = str(corpus_run["root"])
    got = corpus_run["got"]
    for r in got:  # Spark's ids are its paths (file:/..., not encoded): the run's are relative
        r["id"] = os.path.relpath(r["id"].removeprefix("file:"), root)
    expected = corpus_run["expected"]
    assert len(got) == len(expected) > 400
    assert {r["status"] for r in got} > {"OK", "CORRUPT"}
    for g, e in zip(got, expected, strict=True):
        assert g == e


def test_read_images_gives_the_rows_of_mmcore_run_ids_included(
    corpus_run: dict[str, Any], spark: Any
) -> None:
    """read_images lists the folder as mmcore run does and the executors read the files by path:
    every column equals mmcore run's, ids and URIs too."""
    df = ms.read_images(spark, str(corpus_run["root"]), num_partitions=3)
    assert df.rdd.getNumPartitions() == 3
    got = spark_rows(ms.process(df, CONFIG))
    assert got == corpus_run["expected"]


def test_read_images_folder_rules(tmp_path: Path, spark: Any) -> None:
    """mmcore run's listing rules (sidecars skipped, ids relative to the folder); a folder holding
    a tar is refused (its records would be left out); an empty one gives no rows."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for k, p in enumerate(mmcore.demo_images()):
        (src / ("sub" if k % 2 else "") / Path(p).name).write_bytes(Path(p).read_bytes())
    (src / "sub" / "meta.json").write_text("{}")
    got = spark_rows(ms.process(ms.read_images(spark, str(src)), CONFIG))
    assert got == single_machine(str(src), tmp_path / "out")
    with pytest.raises(ValueError, match="num_partitions"):
        ms.read_images(spark, str(src), num_partitions=0)
    (src / "x.tar").write_bytes(b"")
    with pytest.raises(ValueError, match=r"x\.tar"):
        ms.read_images(spark, str(src))
    (tmp_path / "empty").mkdir()
    assert ms.process(ms.read_images(spark, str(tmp_path / "empty")), CONFIG).count() == 0
    with pytest.raises(FileNotFoundError):
        ms.read_images(spark, str(tmp_path / "missing"))


def test_schema_is_spark_friendly(corpus_run: dict[str, Any]) -> None:
    from pyspark.sql import types as T  # noqa: N812

    schema = corpus_run["df"].schema
    assert schema == ms.spark_schema()
    kinds = {f.name: type(f.dataType) for f in schema.fields}
    assert kinds["phash"] is T.LongType and kinds["pdq"] is T.BinaryType
    assert kinds["orientation"] is T.ByteType and kinds["pdq_quality"] is T.ShortType


def test_hash_size_16_rows_equal_the_single_machine_run(tmp_path: Path, spark: Any) -> None:
    """phash / dhash / ahash at hash_size 16: binary columns (32 big-endian bytes), the rows of
    `mmcore run --hash-size 16`."""
    from pyspark.sql import types as T  # noqa: N812

    src = tmp_path / "src"
    src.mkdir()
    for p in mmcore.demo_images():
        shutil.copyfile(p, src / Path(p).name)
    cfg = Config(workers=1, hash_size=16)
    df = ms.process(ms.read_images(spark, str(src)), cfg)
    assert df.schema == ms.spark_schema(16) and isinstance(df.schema["phash"].dataType, T.BinaryType)
    got = spark_rows(df)
    assert got == single_machine(str(src), tmp_path / "out", cfg)
    assert any(r["phash"] is not None and len(r["phash"]) == 32 for r in got)


@pytest.mark.parametrize("hash_size", [9, 16])
def test_dedup_of_sized_phash_equals_mmcore_dedup(tmp_path: Path, spark: Any, hash_size: int) -> None:
    """The binary pHash rows of a run at hash_size 9 (81 bits: 11 bytes, 7 leading zero bits) and 16:
    spark.dedup's clusters are mmcore dedup's (default threshold and a tighter one)."""
    from PIL import Image

    src = tmp_path / "src"
    src.mkdir()
    for k, p in enumerate(mmcore.demo_images()):
        if mmcore.image_info(p)["status"] != mmcore.Status.OK:
            continue
        shutil.copyfile(p, src / f"{k}{Path(p).suffix}")
        with Image.open(p) as im:  # near copies: clusters to find
            im = im.convert("RGB")
            im.resize((im.width // 2, im.height // 2)).save(src / f"{k}-half.jpg", quality=70)
            im.save(src / f"{k}-q40.jpg", quality=40)
    out = tmp_path / "out"
    run(str(src), out, Config(workers=1, hash_size=hash_size, hashes=("phash",), shard_size=7), progress=None)
    df = spark.read.parquet(*[str(shard_path(out, s)) for s in completed_shards(out)])
    for threshold in (None, hash_size * hash_size // 20):
        expected = clusters(dedup_one(out, hash="phash", threshold=threshold))
        got = clusters(ms.dedup(df, hash="phash", threshold=threshold).toArrow())
        assert got == expected, threshold
        assert any(len(c) >= 2 for c in got["sets"])
    with pytest.raises(ValueError, match=rf"0\.\.{hash_size * hash_size} for phash"):
        ms.dedup(df, hash="phash", threshold=hash_size * hash_size + 1)


def test_band_words_put_a_codes_bits_first() -> None:
    """_words drops a row's leading zero bits (81 bits in 11 bytes): the bands cut bits 0..80 of the
    words, which are the code's bits, then zeros; int64 pHash and PDQ rows as they are."""
    rng = np.random.default_rng(3)
    vals = [int(v) for v in rng.integers(0, 2**62, 5)]
    codes = [(v << 19 | 0x5A5A5) % 2**81 for v in vals]
    batch = pa.RecordBatch.from_pydict(
        {"code": pa.array([c.to_bytes(11, "big") for c in codes], pa.binary(11))}
    )
    w = ms._words(batch, 81)
    assert w.shape == (5, 2)
    bits = np.unpackbits(w.astype(">u8").view(np.uint8).reshape(5, -1), axis=1)
    for row, c in zip(bits, codes, strict=True):
        assert int("".join(map(str, row[:81])), 2) == c and not row[81:].any()
    pdq = rng.integers(0, 256, (3, 32), dtype=np.uint8)
    b2 = pa.RecordBatch.from_pydict({"code": pa.array([r.tobytes() for r in pdq], pa.binary(32))})
    np.testing.assert_array_equal(ms._words(b2, 256).astype(">u8").view(np.uint8).reshape(3, 32), pdq)
    b3 = pa.RecordBatch.from_pydict({"code": pa.array([-1, 5], pa.int64())})
    assert ms._words(b3, 64).tolist() == [[2**64 - 1], [5]]


def test_parquet_bytes_and_path_columns(tmp_path: Path, spark: Any) -> None:
    files = [Path(p) for p in mmcore.demo_images()]  # every format, a truncated and a non-image
    blobs = [p.read_bytes() for p in files]
    src = tmp_path / "src"
    src.mkdir()
    pq.write_table(pa.table({"image": pa.array(blobs, pa.binary())}), src / "bytes.parquet")
    (src / "img").mkdir()
    for p in files:
        shutil.copyfile(p, src / "img" / p.name)
    rel = [f"img/{p.name}" for p in files] + ["img/missing.jpg"]
    pq.write_table(pa.table({"key": [f"k{i}" for i in range(len(rel))], "path": rel}), src / "paths.parquet")
    for name in ("bytes.parquet", "paths.parquet"):
        expected = single_machine(str(src / name), tmp_path / f"out-{name}")
        got = spark_rows(ms.process(spark.read.parquet(str(src / name)), CONFIG))
        assert got == expected
    assert {r["status"] for r in got} >= {"OK", "READ_ERROR"}


def test_pillow_fallback_equals_mmcore_run(tmp_path: Path, spark: Any) -> None:
    """fallback = "pillow" on the executors (each worker's Processor loads Pillow): the rows of
    BMP / TIFF / PPM copies of the demo photos equal mmcore run's, hashed."""
    from PIL import Image

    blobs = []
    for p in mmcore.demo_images()[:5]:
        for fmt in ("PNG", "BMP", "TIFF", "PPM"):
            buf = io.BytesIO()
            Image.open(p).convert("RGB").save(buf, fmt)
            blobs.append(buf.getvalue())
    src = tmp_path / "fallback.parquet"
    pq.write_table(pa.table({"image": pa.array(blobs, pa.binary())}), src)
    config = Config(workers=1, fallback="pillow")
    expected = single_machine(str(src), tmp_path / "out", config)
    got = spark_rows(ms.process(spark.read.parquet(str(src)), config))
    assert got == expected
    assert {r["status"] for r in got} == {"OK"}
    assert {r["format"] for r in got} == {"png", "bmp", "tiff", "ppm"}


def test_odd_names_partitions_structs_and_max_bytes_equal_mmcore_run(tmp_path: Path, spark: Any) -> None:
    """The rows equal mmcore run's where Spark's own strings differ from them: binaryFile paths with
    ' ', '#' and '%' (Spark's path is not percent-encoded), a path column of percent-encoded
    file:// URIs and paths relative to a Parquet file in a folder with a space (Hadoop's file
    path is encoded), Hive-partitioned files without ids (one file name in two folders), a
    Hugging Face image struct, and max_bytes on bytes already in memory."""
    from mmcore.jobs.processor import path_to_uri

    data = [Path(p).read_bytes() for p in mmcore.demo_images()[:2]]
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    (imgs / "a b#c%41.jpg").write_bytes(data[0])
    (imgs / "plain.jpg").write_bytes(data[1])
    got = spark_rows(ms.process(spark.read.format("binaryFile").load(str(imgs)), CONFIG))
    want = single_machine(str(imgs), tmp_path / "out-imgs")
    assert [r["source_uri"] for r in got] == [r["source_uri"] for r in want]
    assert path_to_uri(imgs / "a b#c%41.jpg") in [r["source_uri"] for r in got]

    pqdir = tmp_path / "pq dir"
    pqdir.mkdir()
    (pqdir / "x y.jpg").write_bytes(data[1])
    paths = [path_to_uri(imgs / "a b#c%41.jpg"), "x y.jpg", str(imgs / "plain.jpg")]
    pq.write_table(pa.table({"path": paths}), pqdir / "paths.parquet")
    parted = tmp_path / "parted"
    for day in ("x", "y"):
        (parted / f"day={day}").mkdir(parents=True)
        pq.write_table(pa.table({"bytes": [data[0]]}), parted / f"day={day}" / "part-0.parquet")
    hf = tmp_path / "hf"
    hf.mkdir()
    struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    images = pa.array([{"bytes": data[0], "path": "a.jpg"}, {"bytes": b"junk", "path": "b.jpg"}], struct)
    pq.write_table(pa.table({"id": ["good", "bad"], "image": images}), hf / "hf.parquet")
    for src in (pqdir / "paths.parquet", parted, hf / "hf.parquet"):
        got = spark_rows(ms.process(spark.read.parquet(str(src)).drop("day"), CONFIG))
        want = single_machine(str(src), tmp_path / f"out-{src.name}")
        assert got == want, src
        assert all(r["status"] in ("OK", "CORRUPT") for r in got), src
    assert [r["id"] for r in got] == ["bad", "good"]

    small = Config(workers=1, max_bytes=1000)
    got = spark_rows(ms.process(spark.read.format("binaryFile").load(str(imgs / "plain.jpg")), small))
    want = single_machine(str(imgs / "plain.jpg"), tmp_path / "out-small", small)
    assert got[0]["status"] == "READ_ERROR" and "max_bytes" in got[0]["error"]
    assert got[0]["error"] == want[0]["error"]  # the file named, as mmcore run names it


def _tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def test_tar_data_source_refuses_escaping_members(tmp_path: Path, spark: Any) -> None:
    jpegs = [Path(p).read_bytes() for p in mmcore.demo_images()[:4]]
    shards = tmp_path / "shards"
    shards.mkdir()
    _tar(
        shards / "a.tar",
        [("0001.jpg", jpegs[0]), ("0001.json", b"{}"), ("../evil.jpg", jpegs[1]), ("/abs.jpg", jpegs[2])],
    )
    _tar(shards / "b.tar", [("0002.jpg", jpegs[3]), ("0003.jpg", b"not an image")])
    (shards / "c.tar").write_bytes((shards / "b.tar").read_bytes()[:700])  # truncated
    src = spark.read.format("mmcore_wds").load(str(shards))
    assert src.rdd.getNumPartitions() == 3
    got = spark_rows(ms.process(src, CONFIG))
    assert got == single_machine(str(shards), tmp_path / "out")
    status = {r["id"]: r["status"] for r in got}
    assert status["a.tar/../evil.jpg"] == status["a.tar//abs.jpg"] == status["c.tar/"] == "SOURCE_ERROR"
    assert status["a.tar/0001.jpg"] == "OK" and "a.tar/0001.json" not in status
    # maxBytes, as mmcore run's max_bytes: a larger member is not read
    small = spark.read.format("mmcore_wds").option("maxBytes", "100").load(str(shards / "b.tar"))
    rows = {r["id"]: r for r in spark_rows(ms.process(small, CONFIG))}
    assert (
        rows["b.tar/0002.jpg"]["status"] == "SOURCE_ERROR" and "max_bytes" in rows["b.tar/0002.jpg"]["error"]
    )
    assert rows["b.tar/0003.jpg"]["status"] == "CORRUPT"


# ------------------------------------------------------------------------------------------------
# dedup


def clusters(table: pa.Table) -> dict[str, Any]:
    """What must agree: the clusters as sets of ids, each id's representative and distance."""
    t = table.to_pydict()
    members: dict[int, set[str]] = {}
    reps: dict[int, str] = {}
    for i, c, r in zip(t["id"], t["cluster_id"], t["is_representative"], strict=True):
        members.setdefault(c, set()).add(i)
        if r:
            assert c not in reps
            reps[c] = i
    assert sorted(members) == list(range(len(members)))  # dense cluster ids
    rep_of = {i: reps[c] for c, ids in members.items() for i in ids}
    dist = dict(zip(t["id"], t["distance_to_representative"], strict=True))
    return {"sets": {frozenset(s) for s in members.values()}, "rep": rep_of, "dist": dist}


@pytest.mark.parametrize(
    ("hash", "bands", "min_quality"), [("pdq", 16, None), ("phash", None, None), ("pdq", None, 80)]
)
def test_dedup_equals_mmcore_dedup(
    pdq_out: tuple[Path, dict[str, Any], np.ndarray],
    spark: Any,
    hash: str,
    bands: int | None,
    min_quality: int | None,
) -> None:
    """test_dedup's near-duplicate groups (shard 1 not completed); pHash codes are the first 8
    bytes of the PDQ codes (the groups stay near at 10 bits); min_quality 80 leaves the rows of
    quality 40 unmatched."""
    out, data, _ = pdq_out
    threshold = 31 if hash == "pdq" else 10
    if hash == "phash":
        ph = data["pdq"][:, :8].copy().view(np.uint64).reshape(-1)
        table = run_table(data["ids"], phash=ph, status=data["status"], hash_valid=data["valid"])
        write_run_output(out, table, shard_rows=40, incomplete=[1])
    expected = clusters(dedup_one(out, hash=hash, threshold=threshold, min_quality=min_quality))
    df = spark.read.parquet(*[str(shard_path(out, s)) for s in completed_shards(out)])
    got_table = ms.dedup(df, hash=hash, threshold=threshold, bands=bands, min_quality=min_quality).toArrow()
    assert got_table.schema.names == ["id", "cluster_id", "is_representative", "distance_to_representative"]
    got = clusters(got_table)
    assert got == expected
    if hash == "pdq":
        assert any(len(s) >= 3 for s in got["sets"])


def test_dedup_of_a_dense_group_equals_mmcore_dedup(
    tmp_path: Path, spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A near-duplicate group of 700 distinct PDQ codes (and a far group sharing most of its band
    values) among 1,300 random ones: its band values are hot, so their groups are compared whole
    (the join would list its ~245,000 pairs), and the clusters equal mmcore dedup's, with the
    groups clustered whole and pair by pair."""
    rng = np.random.default_rng(12)
    dense = near_group(rng, 700, 8)
    far = dense[0].copy()
    far[:12] ^= 0xFF
    codes = np.concatenate(
        [rng.integers(0, 256, size=(1300, 32), dtype=np.uint8), dense, near_group(rng, 150, 8, far)]
    )
    codes = codes[rng.permutation(len(codes))]
    ids = [f"img-{k:05d}" for k in range(len(codes))]
    quality = rng.integers(50, 101, size=len(codes))
    write_run_output(tmp_path, run_table(ids, pdq=codes, pdq_quality=quality), shard_rows=500)
    expected = clusters(dedup_one(tmp_path, hash="pdq", threshold=31))
    seen: list[dict[int, Any]] = []
    hot_keys = ms._hot_keys
    monkeypatch.setattr(ms, "_hot_keys", lambda *a: seen.append(hot_keys(*a)) or seen[-1])
    df = spark.read.parquet(*[str(shard_path(tmp_path, s)) for s in completed_shards(tmp_path)])
    for limit in (ms._GROUP_CLUSTER, 1_000):  # the driver's value travels to the workers
        monkeypatch.setattr(ms, "_GROUP_CLUSTER", limit)
        got = clusters(ms.dedup(df, hash="pdq", threshold=31).toArrow())
        assert got == expected
    assert seen and all(seen), "the dense group's band values were not hot"
    assert max(len(s) for s in got["sets"]) >= 700


def test_corpus_dedup_equals_mmcore_dedup(corpus_run: dict[str, Any]) -> None:
    expected = clusters(dedup_one(corpus_run["out"], hash="pdq", threshold=31))
    got = clusters(ms.dedup(corpus_run["df"], hash="pdq", threshold=31).toArrow())
    root = str(corpus_run["root"])

    def rel(i: str) -> str:
        return os.path.relpath(unquote(i.removeprefix("file:")), root)

    assert {frozenset(rel(i) for i in s) for s in got["sets"]} == expected["sets"]
    assert {rel(i): rel(r) for i, r in got["rep"].items()} == expected["rep"]
    assert {rel(i): d for i, d in got["dist"].items()} == expected["dist"]


def test_choose_bands_and_bad_arguments(spark: Any) -> None:
    assert ms.choose_bands(256, 31, 1000) == 32 and ms.choose_bands(64, 10, 100_000) == 4
    df = spark.createDataFrame([("a", "OK", 1)], "id string, status string, phash long")
    with pytest.raises(ValueError, match="threshold"):
        ms.dedup(df, hash="phash", threshold=65)
    with pytest.raises(ValueError, match="columns"):
        ms.dedup(df, hash="pdq")
    twice = spark.createDataFrame([("a", "OK", 1), ("a", "OK_WARNING", 2)], df.schema)
    with pytest.raises(ValueError, match="unique"):
        ms.dedup(twice, hash="phash")
    with pytest.raises(ValueError, match="bands"):
        ms.dedup(df, hash="phash", bands=0)
    with pytest.raises(ValueError, match="min_quality applies to PDQ"):
        ms.dedup(df, hash="phash", min_quality=50)
    # two 32-bit bands at radius 10: ~10^8 probes a code (a task ran minutes, then failed in Arrow)
    with pytest.raises(ValueError, match=r"bands=2 at threshold 20: each code probes 107,594,213 values"):
        ms.dedup(df, hash="phash", threshold=20, bands=2)
    with pytest.raises(ValueError, match="binary"):
        ms.process(spark.range(3))
    with pytest.raises(ValueError, match="exact mode"):
        ms.process(spark.range(3), {"device": "gpu", "hash_mode": "fast"})
    cfg = Config(workers=1).to_dict()
    assert ms._processor(cfg) is ms._processor(dict(cfg))  # one Processor per worker and config


def test_a_file_scan_without_row_numbers_needs_an_id_column(tmp_path: Path, spark: Any) -> None:
    """A CSV manifest of paths was called "not a file scan"; only Parquet scans number rows."""
    img = tmp_path / "a.jpg"
    img.write_bytes(Path(mmcore.demo_images()[0]).read_bytes())
    (tmp_path / "m.csv").write_text(f"path\n{img}\n")
    csv = spark.read.option("header", True).csv(str(tmp_path / "m.csv"))
    with pytest.raises(ValueError, match="a scan of files whose rows Spark does not number"):
        ms.process(csv)
    rows = spark_rows(ms.process(csv.withColumn("id", csv["path"])))
    assert [(r["id"], r["status"]) for r in rows] == [(str(img), "OK")]


def test_docstring_examples() -> None:
    import doctest

    result = doctest.testmod(ms, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_band_rows_are_cut_into_bounded_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    words = rng.integers(-(2**63), 2**63 - 1, size=(50, 4), dtype=np.int64)
    cols = {"id": [f"i{k}" for k in range(50)], **{f"w{k}": words[:, k] for k in range(4)}}
    batch = pa.RecordBatch.from_pydict(cols)
    spec = (4, [16] * 16, 1, "probe", {})
    whole = pa.Table.from_batches(list(ms._map_bands(spec, iter([batch]))))
    monkeypatch.setattr(ms, "_BAND_ROWS", 100)
    cut = list(ms._map_bands(spec, iter([batch])))
    assert max(b.num_rows for b in cut) <= 100 and whole.num_rows == 50 * 16 * 17
    assert sorted(pa.Table.from_batches(cut).to_pylist(), key=str) == sorted(whole.to_pylist(), key=str)
    assert sum(whole["exact"].to_pylist()) == 50 * 16  # one exact row per code and band


def near_group(rng: np.random.Generator, n: int, flips: int, centre: np.ndarray | None = None) -> np.ndarray:
    """n PDQ codes (N, 32) within ``flips`` bits of one centre."""
    c = rng.integers(0, 256, size=32, dtype=np.uint8) if centre is None else centre
    bits = np.repeat(np.unpackbits(c)[None], n, axis=0)
    for row in bits:
        row[rng.choice(256, size=int(rng.integers(0, flips + 1)), replace=False)] ^= 1
    return np.packbits(bits, axis=1)


def test_band_groups_give_the_components_of_every_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    """_band_edges on the (band, key)-sorted probe rows, cut into small batches (groups split
    across them): its forest has the components of every pair within the threshold, for random
    codes, a dense group, a far group sharing most of the dense group's band values, and PDQ
    (16 bands, radius 1) and pHash (4 bands, radius 2) plans; with large groups compared pair by
    pair and clustered whole."""
    rng = np.random.default_rng(11)
    dense = near_group(rng, 300, 8)
    far = dense[0].copy()
    far[:12] ^= 0xFF  # 96 bits away from the dense group, its last 20 bytes the same
    codes = np.concatenate(
        [rng.integers(0, 256, size=(400, 32), dtype=np.uint8), dense, near_group(rng, 80, 8, far)]
    )
    codes = codes[rng.permutation(len(codes))]
    ids = [f"c{k:04d}" for k in range(len(codes))]
    whole: list[int] = []  # the sizes of the groups clustered whole
    firsts = ms._cluster_firsts
    monkeypatch.setattr(ms, "_cluster_firsts", lambda w, t: whole.append(len(w)) or firsts(w, t))
    monkeypatch.setattr(ms, "_PAIR_STEP", 5_000)
    for hash, threshold, m in (("pdq", 31, 16), ("phash", 10, 4)):
        words = np.frombuffer(codes.tobytes(), dtype=">u8").astype(np.uint64).reshape(len(codes), 4)
        if hash == "phash":
            words = words[:, :1]
        n_words = words.shape[1]
        index = mmcore.HammingIndex(64 * n_words)
        index.add(words[:, 0].copy() if n_words == 1 else words.astype(">u8").view(np.uint8))
        want = mmcore.cluster(index, threshold, method="brute").labels
        batch = pa.RecordBatch.from_pydict(
            {"id": ids, **{f"w{k}": words[:, k].view(np.int64) for k in range(n_words)}}
        )
        widths = ms._band_widths(64 * n_words, m)
        rows = pa.Table.from_batches(
            list(ms._map_bands((n_words, widths, threshold // m, "probe", {}), iter([batch])))
        )
        rows = rows.sort_by([("band", "ascending"), ("key", "ascending")])
        for limit in (ms._GROUP_CLUSTER, 2_000):  # 2,000: the dense group's keys are clustered whole
            out = pa.Table.from_batches(
                list(ms._edges_forest((n_words, threshold, limit), iter(rows.to_batches(max_chunksize=97))))
            )
            pos = {x: k for k, x in enumerate(ids)}
            i = np.array([pos[x] for x in out["i"].to_pylist()], dtype=np.int64)
            j = np.array([pos[x] for x in out["j"].to_pylist()], dtype=np.int64)
            got = mmcore.cluster((i, j), n=len(ids)).labels
            np.testing.assert_array_equal(got, want, err_msg=f"{hash} {limit}")
            assert bool(whole) == (limit == 2_000) and all(n >= 45 for n in whole)
            whole.clear()
        assert np.bincount(want).max() >= 300


def test_edges_leave_a_partition_as_a_spanning_forest(monkeypatch: pytest.MonkeyPatch) -> None:
    """_forest: the same components from at most one edge per node (a dense group of 60 nodes:
    1,770 edges in, 59 out), folded over batches, repeated and reversed edges included."""
    dense = [(f"a{x:02d}", f"a{y:02d}") for x in range(60) for y in range(x + 1, 60)]
    edges = [*dense, ("b1", "b2"), ("b3", "b2"), ("b2", "b1"), ("c", "d"), ("a59", "e")]
    rng = np.random.default_rng(5)
    edges = [edges[k] for k in rng.permutation(len(edges))]
    batches = [
        pa.RecordBatch.from_pydict(
            {"i": [e[0] for e in edges[k : k + 97]], "j": [e[1] for e in edges[k : k + 97]]}
        )
        for k in range(0, len(edges), 97)
    ]
    empty = pa.RecordBatch.from_pydict({"i": pa.array([], pa.string()), "j": pa.array([], pa.string())})
    out = pa.Table.from_batches(list(ms._forest(iter([empty, *batches])))).to_pylist()
    monkeypatch.setattr(ms, "_FOREST_FOLD", 50)  # folds along the way: the same forest
    assert pa.Table.from_batches(list(ms._forest(iter([empty, *batches])))).to_pylist() == out
    assert len(out) == 59 + 1 + 2 + 1  # nodes minus components
    root = {r["i"]: r["j"] for r in out}
    assert len(root) == len(out)  # one edge per node, to its component's smallest node
    assert all(root[f"a{x:02d}"] == "a00" for x in range(1, 60)) and root["e"] == "a00"
    assert root["b2"] == root["b3"] == "b1" and root["d"] == "c"
    assert list(ms._forest(iter([empty]))) == []


def test_the_tar_reader_pickles_without_its_tar_list(tmp_path: Path) -> None:
    """PySpark pickles the reader into the read function that goes with every task before it asks
    for the partitions: the reader holds the path, and each partition its own tar (it held the
    list of every tar: ~10 MB for each of 100,000 tasks)."""
    import pickle

    for k in range(300):
        _tar(tmp_path / f"shard-{k:04d}.tar", [(f"{k}.jpg", b"x")])
    source = ms.WdsDataSource({"path": str(tmp_path)})
    reader = source.reader(ms.T.StructType())
    assert len(pickle.dumps(reader)) < 1_000
    parts = reader.partitions()
    assert len(parts) == 300 and parts[7].value == (
        mmcore.jobs.processor.path_to_uri(str(tmp_path / "shard-0007.tar")),
        str(tmp_path),
    )
    with pytest.raises(FileNotFoundError, match="is not a directory, a file or a glob"):
        ms.WdsDataSource({"path": str(tmp_path / "nothing-*.tar")}).reader(ms.T.StructType())
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no \.tar file found"):
        ms.WdsDataSource({"path": str(tmp_path / "empty")}).reader(ms.T.StructType()).partitions()
