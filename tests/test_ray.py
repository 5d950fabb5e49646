"""mmcore.ray on a local Ray instance (2 CPUs, started and stopped here): the rows equal those of
the single-machine ``mmcore run`` on the same files, for binary-file and Parquet sources, and a
job on 2 CPUs completes (the actor pool must leave a CPU to the read and write tasks)."""

from __future__ import annotations

import doctest
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="needs Ray: pip install 'mmcore[ray]'")
mray = pytest.importorskip("mmcore.ray", reason="needs Ray: pip install 'mmcore[ray]'")

import pyarrow as pa  # noqa: E402  (a dependency of ray[data])
import pyarrow.parquet as pq  # noqa: E402
from conftest import corpus_files, outside_source_tree  # noqa: E402

import mmcore  # noqa: E402
from mmcore.jobs.config import Config  # noqa: E402
from mmcore.jobs.runner import run  # noqa: E402
from mmcore.jobs.schema import SCHEMA, read_output  # noqa: E402

pytestmark = pytest.mark.ray

# Thumbnails on, so the second decode and the encoder are compared too.
CONFIG = Config(thumbnail=32)
CONTENT = [f.name for f in SCHEMA if f.name not in ("id", "source_uri", "member")]


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with outside_source_tree(tmp_path_factory.mktemp("ray-cwd")):
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=256 << 20,
            logging_level=logging.WARNING,
        )
        ray.data.DataContext.get_current().enable_progress_bars = False
        yield
        ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """jpeg/ and the first 20 files of corrupt/, linked into one folder."""
    src = tmp_path_factory.mktemp("corpus")
    for sub, files in (("jpeg", corpus_files("jpeg")), ("corrupt", corpus_files("corrupt")[:20])):
        (src / sub).mkdir()
        for f in files:
            (src / sub / f.name).symlink_to(f)
    return src


@pytest.fixture(scope="module")
def single_machine(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    out = tmp_path_factory.mktemp("run")
    run(str(corpus), out, CONFIG, progress=None)
    return read_output(out)


def _uri(u: str) -> str:
    """source_uri without formatting differences (scheme, doubled or trailing slashes)."""
    return os.path.normpath(u.removeprefix("file://"))


def _rows(table: pa.Table, key: str) -> dict[str, dict[str, Any]]:
    rows = table.to_pylist()
    keyed = {_uri(r[key]) if key == "source_uri" else r[key]: r for r in rows}
    assert len(keyed) == len(rows), f"{key} is not unique"
    return {k: {c: r[c] for c in CONTENT} for k, r in keyed.items()}


def _collect(ds: Any) -> pa.Table:
    refs = ds.to_arrow_refs()
    return pa.concat_tables(ray.get(refs)).cast(SCHEMA)


def test_binary_files_rows_equal_mmcore_run(local_ray: None, corpus: Path, single_machine: pa.Table) -> None:
    paths = sorted(str(p) for p in corpus.rglob("*") if p.is_symlink())
    ds = ray.data.read_binary_files(paths, include_paths=True)
    got = _collect(mray.process(ds, CONFIG, batch_size=64))
    assert got.schema.names == SCHEMA.names
    assert sorted(got["id"].to_pylist()) == paths  # the id is the path
    want = _rows(single_machine, "source_uri")
    assert _rows(got, "source_uri") == want
    statuses = {r["status"] for r in want.values()}
    assert "OK" in statuses and statuses - {"OK", "OK_WARNING"}, "the corpus should mix good and bad"


def test_read_images_rows_equal_mmcore_run_ids_included(
    local_ray: None, corpus: Path, single_machine: pa.Table
) -> None:
    """read_images lists a folder as mmcore run does and the actors read the files by path: every
    column equals mmcore run's, the ids and URIs too."""
    got = _collect(mray.process(mray.read_images(str(corpus)), CONFIG, batch_size=64)).sort_by("id")
    want = single_machine.sort_by("id")
    assert got.num_rows == want.num_rows
    for name in SCHEMA.names:
        assert got[name].to_pylist() == want[name].to_pylist(), name


def test_hash_size_16_rows_equal_mmcore_run(local_ray: None, tmp_path: Path) -> None:
    """phash / dhash / ahash at hash_size 16: 32-byte big-endian rows, those of `mmcore run`."""
    src = tmp_path / "src"
    src.mkdir()
    for p in mmcore.demo_images():
        (src / Path(p).name).symlink_to(p)
    cfg = Config(hash_size=16)
    out = tmp_path / "out"
    run(str(src), out, cfg, progress=None)
    want = read_output(out).sort_by("id")
    refs = mray.process(mray.read_images(str(src)), cfg, batch_size=8).to_arrow_refs()
    got = pa.concat_tables(ray.get(refs)).cast(want.schema).sort_by("id")
    assert got.schema.field("phash").type == pa.binary(32)
    for name in want.schema.names:
        assert got[name].to_pylist() == want[name].to_pylist(), name
    assert any(v is not None for v in got["phash"].to_pylist())


def test_read_images_folder_rules(local_ray: None, tmp_path: Path) -> None:
    """The listing follows mmcore run's rules (images by content, sidecars skipped, ids relative to
    the folder); a folder with tar or Parquet files is refused (their records would be left out);
    an empty folder is an empty dataset; a missing one FileNotFoundError."""
    import mmcore

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    demo = mmcore.demo_images()
    for k, p in enumerate(demo):
        (src / ("sub" if k % 2 else "") / Path(p).name).write_bytes(Path(p).read_bytes())
    (src / "sub" / "meta.json").write_text("{}")
    ds = mray.read_images(str(src), override_num_blocks=3)
    got = _collect(mray.process(ds, CONFIG)).sort_by("id")
    run(str(src), tmp_path / "out", CONFIG, progress=None)
    want = read_output(tmp_path / "out").sort_by("id")
    assert got["id"].to_pylist() == want["id"].to_pylist()
    assert len(got) == len(demo) and "sub/meta.json" not in got["id"].to_pylist()
    assert got["status"].to_pylist() == want["status"].to_pylist()
    assert got["phash"].to_pylist() == want["phash"].to_pylist()
    with pytest.raises(ValueError, match="override_num_blocks"):
        mray.read_images(str(src), override_num_blocks=0)
    (src / "x.tar").write_bytes(b"")
    with pytest.raises(ValueError, match=r"x\.tar"):
        mray.read_images(str(src))
    (tmp_path / "empty").mkdir()
    assert mray.read_images(str(tmp_path / "empty")).count() == 0
    with pytest.raises(FileNotFoundError):
        mray.read_images(str(tmp_path / "missing"))


def test_parquet_bytes_source_equals_mmcore_run(
    local_ray: None, corpus: Path, tmp_path: Path, single_machine: pa.Table
) -> None:
    files = sorted((corpus / "jpeg").iterdir())[::8] + sorted((corpus / "corrupt").iterdir())[:5]
    table = pa.table(  # plus a row without bytes: a READ_ERROR row, not a failed task
        {
            "key": [*(f"{p.parent.name}/{p.name}" for p in files), "empty"],
            "image": pa.array([*(p.read_bytes() for p in files), None], pa.binary()),
        }
    )
    pq.write_table(table, tmp_path / "images.parquet", row_group_size=16)
    got = _collect(mray.process(ray.data.read_parquet(str(tmp_path / "images.parquet")), CONFIG))
    out = tmp_path / "out"
    run(str(tmp_path / "images.parquet"), out, CONFIG, progress=None)
    assert _rows(got, "id") == _rows(read_output(out), "id")
    rows = _rows(got, "id")
    assert set(rows) == set(table["key"].to_pylist())
    assert rows["empty"]["status"] == "READ_ERROR" and rows["empty"]["error_stage"] == "read"


def test_struct_images_binary_keys_and_null_ids(local_ray: None, tmp_path: Path) -> None:
    """A Hugging Face image struct gives its bytes and a binary key its text, as mmcore run reads
    them; a null id is a row named by its bytes' sha256 (Ray does not say which file and row the
    record came from), never a failed job."""
    import hashlib

    import mmcore

    data = [Path(p).read_bytes() for p in mmcore.demo_images()[:2]]
    struct = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    images = pa.array([{"bytes": data[0], "path": "a.jpg"}, {"bytes": b"junk", "path": "b.jpg"}], struct)
    pq.write_table(
        pa.table({"key": pa.array([b"k1", b"k2"], pa.binary()), "image": images}), tmp_path / "hf.parquet"
    )
    got = _collect(mray.process(ray.data.read_parquet(str(tmp_path / "hf.parquet")), CONFIG))
    run(str(tmp_path / "hf.parquet"), tmp_path / "out", CONFIG, progress=None)
    assert _rows(got, "id") == _rows(read_output(tmp_path / "out"), "id")
    assert sorted(got["id"].to_pylist()) == ["k1", "k2"]
    table = pa.table({"id": ["x", None], "bytes": pa.array(data, pa.binary())})
    got = _collect(mray.process(ray.data.from_arrow(table), CONFIG)).to_pylist()
    assert sorted(r["id"] for r in got) == sorted(["x", "sha256:" + hashlib.sha256(data[1]).hexdigest()])
    assert all(r["status"] == "OK" for r in got)


def test_parquet_path_column_reads_the_files(local_ray: None, corpus: Path) -> None:
    files = [*sorted(str(p) for p in (corpus / "jpeg").iterdir())[:6], str(corpus / "missing.jpg")]
    got = _collect(mray.process(ray.data.from_arrow(pa.table({"uri": files})), CONFIG)).to_pylist()
    by_id = {r["id"]: r for r in got}
    assert set(by_id) == set(files)
    assert all(by_id[f]["status"] == "OK" for f in files[:-1])
    assert by_id[files[-1]]["status"] == "READ_ERROR" and by_id[files[-1]]["error_stage"] == "read"


def test_two_cpus_read_process_write_completes(local_ray: None, corpus: Path, tmp_path: Path) -> None:
    """The hang seen before: an actor pool holding both CPUs starved the read and write tasks."""
    assert ray.cluster_resources()["CPU"] == 2
    paths = sorted(str(p) for p in (corpus / "jpeg").iterdir())[:80]
    ds = ray.data.read_binary_files(paths, include_paths=True, override_num_blocks=8)
    done: list[int] = []

    def job() -> None:
        mray.process(ds, {"hashes": ["dhash"]}, batch_size=8).write_parquet(str(tmp_path / "w"))
        done.append(pq.read_table(tmp_path / "w").num_rows)

    t = threading.Thread(target=job, daemon=True)
    t.start()
    t.join(timeout=120)
    assert not t.is_alive(), "the Ray job did not finish in 120 s on 2 CPUs (reservation deadlock?)"
    assert done == [len(paths)]


def test_reservation_leaves_a_cpu_free(caplog: pytest.LogCaptureFixture) -> None:
    for cpus in (1, 2, 3, 4, 16, 64):
        pool, per, threads = mray.reservation(cpus)
        assert pool * per <= max(cpus - 1, cpus / 2), cpus
        assert pool >= 1 and threads * pool <= cpus
    assert mray.reservation(2) == (1, 1, 2)
    assert mray.reservation(1) == (1, 0.5, 1)
    assert mray.reservation(16, 4, num_gpus=0.25) == (15, 1, 1)  # 16 GPU slots, 15 CPUs
    assert mray.reservation(16, 1, num_gpus=0.25) == (4, 1, 4)  # 4 actors share the GPU
    assert mray.reservation(8, num_cpus=2) == (3, 2, 2)
    with caplog.at_level(logging.WARNING, logger="mmcore.ray"):
        assert mray.reservation(2, concurrency=2)[0] == 2
    assert "may stall" in caplog.text
    with pytest.raises(ValueError, match="num_gpus"):
        mray.reservation(4, 0, num_gpus=0.5)
    with pytest.raises(ValueError, match="concurrency"):
        mray.reservation(4, concurrency=0)
    with pytest.raises(ValueError, match="no CPUs"):
        mray.reservation(0)


def test_reservation_leaves_a_cpu_free_on_every_node(caplog: pytest.LogCaptureFixture) -> None:
    """Per node, not per cluster: one free CPU for a whole cluster is one read task at a time."""
    assert mray.reservation([2]) == mray.reservation(2) == (1, 1, 2)
    assert mray.reservation([16] * 4) == (60, 1, 1)  # was 63 actors and one CPU left for reading
    assert mray.reservation([0, 16, 16]) == (30, 1, 1)  # a head node without CPUs hosts nothing
    assert mray.reservation([1, 1, 1, 1]) == (4, 0.5, 1)  # half of each one-CPU node
    assert mray.reservation([4, 2]) == (4, 1, 1)
    assert mray.reservation([3, 3], num_cpus=2) == (2, 2, 3)  # one actor a node, 3 threads each
    assert mray.reservation([8, 8], 2, num_gpus=1) == (2, 1, 8)  # the GPUs bound the pool
    with caplog.at_level(logging.WARNING, logger="mmcore.ray"):
        assert mray.reservation([2, 2], concurrency=3)[0] == 3
    assert "leave one free on each node" in caplog.text
    with pytest.raises(ValueError, match="no CPUs"):
        mray.reservation([0, 0])


def test_dataset_without_image_columns_is_refused(local_ray: None) -> None:
    with pytest.raises(ValueError, match=r"bytes \(binary\) or a path"):
        mray.process(ray.data.from_arrow(pa.table({"id": ["a"], "n": [1]})))
    with pytest.raises(ValueError, match="no id"):
        mray.process(ray.data.from_arrow(pa.table({"image": pa.array([b"x"], pa.binary())})))


def test_docstring_examples() -> None:
    result = doctest.testmod(mray)
    assert result.attempted > 0 and result.failed == 0


def test_records_without_id_data_or_path_get_ids_of_their_own() -> None:
    """Such ids were "<null id, no data, batch row N>": the same in every batch."""
    from mmcore.ray import _fill_ids

    ids = pa.array([None, None], pa.string())
    first = _fill_ids(ids, pa.array([None, None], pa.binary()), None).to_pylist()
    second = _fill_ids(ids, pa.array([None, None], pa.binary()), None).to_pylist()
    assert len(set(first + second)) == 4 and all(v.startswith("<null id, no data>#") for v in first)
    assert _fill_ids(ids, pa.array([b"x", None]), pa.array([None, "p.jpg"])).to_pylist() == [
        "sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881",
        "p.jpg",
    ]
