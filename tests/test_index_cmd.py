"""``mmcore index build / search``: results equal QuantizedIndex called directly; input errors."""

from __future__ import annotations

import doctest
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from jobs_fixtures import run_cli

import mmcore
import mmcore.jobs.index_cmd as index_cmd
from mmcore.jobs.index_cmd import RESULTS_SCHEMA, VectorFile, build, register, search


def cli(argv: list[str]) -> int:
    return run_cli(register, argv)


def vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, dim))
    x = centres[rng.integers(0, 20, size=n)] + 0.3 * rng.normal(size=(n, dim))
    return x.astype(np.float32)


def direct(
    x: np.ndarray,
    q: np.ndarray,
    k: int,
    *,
    ids: Any = None,
    rerank: int = 0,
    train: np.ndarray | None = None,
    **kw: Any,
) -> tuple[np.ndarray, np.ndarray]:
    index = mmcore.QuantizedIndex(x.shape[1], keep_float="memory" if rerank else False, **kw)
    index.train(x if train is None else train)
    index.add(x, ids=ids)
    return index.search(q, k, rerank=rerank)


def as_arrays(table: pa.Table, nq: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    assert table.schema.equals(RESULTS_SCHEMA)
    assert table["query_row"].to_pylist() == np.repeat(np.arange(nq), k).tolist()
    assert table["rank"].to_pylist() == np.tile(np.arange(k), nq).tolist()
    return table["score"].to_numpy().reshape(nq, k), table["id"].to_numpy().reshape(nq, k)


def list_column(x: np.ndarray, kind: str) -> pa.Array:
    flat = pa.array(x.reshape(-1))
    if kind == "fixed":
        return pa.FixedSizeListArray.from_arrays(flat, x.shape[1])
    if kind == "large":
        return pa.LargeListArray.from_arrays(
            pa.array(np.arange(0, x.size + 1, x.shape[1], dtype=np.int64)), flat
        )
    offsets = pa.array(np.arange(0, x.size + 1, x.shape[1], dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, flat)


@pytest.mark.parametrize(
    ("codec", "metric", "rerank"),
    [
        ("int8", "ip", 0),
        ("int8", "l2", 30),
        ("int4", "cos", 0),
        ("int4", "ip", 25),
        ("binary", "ip", 0),
        ("binary", "cos", 40),
    ],
)
def test_npy_round_trip_equals_direct_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], codec: str, metric: str, rerank: int
) -> None:
    x, q = vectors(700, 128), vectors(9, 128, seed=1)
    np.save(tmp_path / "emb.npy", x)
    np.save(tmp_path / "q.npy", q.astype(np.float16).astype(np.float32))
    argv = [
        "index",
        "build",
        str(tmp_path / "emb.npy"),
        str(tmp_path / "e.mmq"),
        "--codec",
        codec,
        "--metric",
        metric,
    ]
    assert cli(argv + (["--keep-float"] if rerank else [])) == 0
    out = capsys.readouterr().out
    assert f"700 vectors of dimension 128, codec {codec}, metric {metric}" in out
    res = tmp_path / "res.parquet"
    argv = ["index", "search", str(tmp_path / "e.mmq"), str(tmp_path / "q.npy"), "-k", "7", "--out", str(res)]
    assert cli([*argv, "--rerank", str(rerank)]) == 0
    printed = capsys.readouterr().out
    assert (
        printed.startswith("query_row  rank") and "9 queries, k=7" in printed and printed.endswith(f"{res}\n")
    )
    scores, ids = as_arrays(pq.read_table(res), 9, 7)
    want_s, want_i = direct(x, np.load(tmp_path / "q.npy"), 7, rerank=rerank, codec=codec, metric=metric)
    np.testing.assert_array_equal(ids, want_i)
    np.testing.assert_array_equal(scores, want_s)


def test_batches_and_training_sample_equal_whole_array_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With batches of 37 rows and a 100-row training sample, the index equals train(x[::10]) +
    add(x), and no add call sees more than a batch."""
    monkeypatch.setattr(index_cmd, "_BATCH", 37)
    monkeypatch.setattr(index_cmd, "_TRAIN_SAMPLE", 100)
    seen: list[int] = []
    real_add = mmcore.QuantizedIndex.add

    def spy(self: mmcore.QuantizedIndex, x: Any, ids: Any = None, **kw: Any) -> None:
        seen.append(len(x))
        real_add(self, x, ids=ids, **kw)

    monkeypatch.setattr(mmcore.QuantizedIndex, "add", spy)
    x, q = vectors(1000, 64), vectors(5, 64, seed=2)
    np.save(tmp_path / "emb.npy", x)
    index = build(tmp_path / "emb.npy", tmp_path / "e.mmq", codec="int4", keep_float=True)
    assert max(seen) == 37 and sum(seen) == 1000
    monkeypatch.setattr(mmcore.QuantizedIndex, "add", real_add)
    want_s, want_i = direct(x, q, 10, rerank=50, train=x[::10], codec="int4")
    s, i = index.search(q, 10, rerank=50)
    np.testing.assert_array_equal(i, want_i)
    np.testing.assert_array_equal(s, want_s)
    again = mmcore.QuantizedIndex.load(tmp_path / "e.mmq")
    np.testing.assert_array_equal(again.codes, index.codes)


def test_search_reads_queries_a_batch_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Queries are read and searched in batches (not read whole): the same table as the whole
    array searched at once, from .npy and Parquet, across reader and search batch edges."""
    x, q = vectors(300, 64), vectors(11, 64, seed=2)
    np.save(tmp_path / "emb.npy", x)
    np.save(tmp_path / "q.npy", q)
    pq.write_table(pa.table({"v": list_column(q, "list")}), tmp_path / "q.parquet", row_group_size=2)
    build(tmp_path / "emb.npy", tmp_path / "e.mmq", keep_float=True)
    want_s, want_i = direct(x, q, 4, rerank=8)
    monkeypatch.setattr(index_cmd, "_BATCH", 4)
    monkeypatch.setattr(index_cmd, "_QUERY_BATCH", 3)
    for name in ("q.npy", "q.parquet"):
        scores, got = as_arrays(search(tmp_path / "e.mmq", tmp_path / name, k=4, rerank=8), 11, 4)
        np.testing.assert_array_equal(got, want_i)
        np.testing.assert_array_equal(scores, want_s)


@pytest.mark.parametrize("kind", ["list", "large", "fixed"])
def test_parquet_folder_with_ids_equals_direct_search(tmp_path: Path, kind: str) -> None:
    x, q = vectors(500, 96), vectors(6, 96, seed=3)
    ids = np.random.default_rng(4).permutation(10_000)[:500].astype(np.int64) + 7
    folder = tmp_path / "emb"
    folder.mkdir()
    for name, lo, hi in (("b.parquet", 200, 500), ("a.parquet", 0, 200)):  # read in path order: a, b
        t = pa.table(
            {"id": ids[lo:hi], "caption": [f"c{k}" for k in range(lo, hi)], "v": list_column(x[lo:hi], kind)}
        )
        pq.write_table(t, folder / name, row_group_size=64)
    pq.write_table(pa.table({"v": list_column(x[:3], kind)}), folder / "_ignored.parquet")
    (folder / "_SUCCESS").write_text("")
    pq.write_table(pa.table({"v": list_column(q, kind), "n": np.arange(6)}), tmp_path / "q.parquet")
    assert (
        cli(["index", "build", str(folder), str(tmp_path / "e.mmq"), "--ids-column", "id", "--metric", "l2"])
        == 0
    )
    table = search(tmp_path / "e.mmq", tmp_path / "q.parquet", k=5)
    scores, got = as_arrays(table, 6, 5)
    want_s, want_i = direct(x, q, 5, ids=ids, metric="l2")
    np.testing.assert_array_equal(got, want_i)
    np.testing.assert_array_equal(scores, want_s)
    assert set(got.ravel()) <= set(ids.tolist())


def test_float16_list_and_column_choice(tmp_path: Path) -> None:
    x = vectors(300, 64)
    half = pa.array(x.reshape(-1).astype(np.float16), pa.float16())
    t = pa.table(
        {
            "a": pa.FixedSizeListArray.from_arrays(half, 64),
            "b": list_column(x[:, :32].copy(), "list"),
        }
    )
    pq.write_table(t, tmp_path / "e.parquet")
    with pytest.raises(ValueError, match=r"several vector columns \['a', 'b'\].*choose one with --column"):
        VectorFile(tmp_path / "e.parquet")
    f = VectorFile(tmp_path / "e.parquet", column="b")
    np.testing.assert_array_equal(f.read_all(), x[:, :32])
    np.testing.assert_array_equal(
        VectorFile(tmp_path / "e.parquet", column="a").read_all(), x.astype(np.float16)
    )


def write(tmp_path: Path, table: pa.Table, name: str = "e.parquet") -> Path:
    pq.write_table(table, tmp_path / name, row_group_size=50)
    return tmp_path / name


def test_input_errors(tmp_path: Path) -> None:
    x = vectors(120, 64)
    with pytest.raises(FileNotFoundError, match=r"EMBEDDINGS .*nope\.npy: no such file or folder"):
        VectorFile(tmp_path / "nope.npy")
    (tmp_path / "text.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"text\.txt: neither a \.npy file nor a Parquet file"):
        VectorFile(tmp_path / "text.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"a folder without \*\.parquet files"):
        VectorFile(tmp_path / "empty")
    np.save(tmp_path / "ints.npy", np.arange(10).reshape(5, 2))
    with pytest.raises(ValueError, match=r"must hold a float \(N, D\) array .* got int64 \(5, 2\)"):
        VectorFile(tmp_path / "ints.npy")
    np.save(tmp_path / "obj.npy", np.array([[1.0], None], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"obj\.npy: cannot read this \.npy file"):
        VectorFile(tmp_path / "obj.npy")
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(ValueError, match="--column and --ids-column apply to Parquet"):
        VectorFile(tmp_path / "x.npy", ids_column="id")
    p = write(tmp_path, pa.table({"id": np.arange(3), "name": ["a", "b", "c"]}))
    with pytest.raises(
        ValueError,
        match=r"no vector column \(list<float> or fixed_size_list<float>; columns: \['id', 'name'\]\)",
    ):
        VectorFile(p)
    p = write(tmp_path, pa.table({"v": list_column(x, "list"), "name": [str(k) for k in range(120)]}))
    with pytest.raises(ValueError, match="column 'name' is string, expected an integer column"):
        VectorFile(p, ids_column="name")
    with pytest.raises(ValueError, match=r"no column 'idx' \(columns: \['v', 'name'\]\)"):
        VectorFile(p, ids_column="idx")


@pytest.mark.parametrize("where", ["npy", "parquet"])
def test_nan_row_is_named(tmp_path: Path, where: str) -> None:
    x = vectors(200, 64)
    x[137, 5] = np.nan
    if where == "npy":
        np.save(tmp_path / "e.npy", x)
        path = tmp_path / "e.npy"
    else:
        path = write(tmp_path, pa.table({"v": list_column(x, "fixed")}))
    with pytest.raises(ValueError, match="EMBEDDINGS row 137 contains NaN, Inf or a missing value"):
        build(path, tmp_path / "e.mmq")
    assert not (tmp_path / "e.mmq").exists()


def test_bad_parquet_rows_are_named(tmp_path: Path) -> None:
    x = vectors(100, 8)
    rows: list[Any] = [list(map(float, r)) for r in x]
    rows[61] = None
    p = write(tmp_path, pa.table({"v": pa.array(rows, pa.list_(pa.float32()))}))
    with pytest.raises(ValueError, match=r"EMBEDDINGS row 61: its vector \(v\) is null"):
        build(p, tmp_path / "e.mmq")
    rows[61] = rows[0][:7]
    p = write(tmp_path, pa.table({"v": pa.array(rows, pa.list_(pa.float32()))}))
    with pytest.raises(ValueError, match="EMBEDDINGS row 61 has 7 values in v, expected 8"):
        build(p, tmp_path / "e.mmq")
    rows[61] = [*rows[0][:7], None]
    p = write(tmp_path, pa.table({"v": pa.array(rows, pa.list_(pa.float32()))}))
    with pytest.raises(ValueError, match="EMBEDDINGS row 61 contains NaN, Inf or a missing value"):
        build(p, tmp_path / "e.mmq")
    ids = pa.array([None if k == 88 else k for k in range(100)], pa.int64())
    p = write(tmp_path, pa.table({"v": list_column(x, "list"), "id": ids}))
    with pytest.raises(ValueError, match=r"EMBEDDINGS row 88: its id \(id\) is null"):
        build(p, tmp_path / "e.mmq", ids_column="id")
    z = x.copy()
    z[70] = 0
    p = write(tmp_path, pa.table({"v": list_column(z, "list")}))
    with pytest.raises(ValueError, match="EMBEDDINGS row 70 is all zeros: its cosine is undefined"):
        build(p, tmp_path / "e.mmq", metric="cos")
    build(p, tmp_path / "e.mmq", metric="ip")  # fine for ip
    with pytest.raises(ValueError, match="holds no vectors"):
        build(write(tmp_path, pa.table({"v": list_column(x[:0], "list")})), tmp_path / "e.mmq")


def test_search_errors(tmp_path: Path) -> None:
    x = vectors(50, 64)
    np.save(tmp_path / "e.npy", x)
    build(tmp_path / "e.npy", tmp_path / "e.mmq")
    np.save(tmp_path / "q32.npy", vectors(3, 32))
    with pytest.raises(
        ValueError, match="QUERIES have dimension 32, the index holds vectors of dimension 64"
    ):
        search(tmp_path / "e.mmq", tmp_path / "q32.npy")
    pq.write_table(pa.table({"v": list_column(vectors(3, 32), "list")}), tmp_path / "q32.parquet")
    with pytest.raises(ValueError, match="QUERIES have dimension 32"):
        search(tmp_path / "e.mmq", tmp_path / "q32.parquet")
    with pytest.raises(ValueError, match=r"--rerank needs the float vectors.*rebuild it with --keep-float"):
        search(tmp_path / "e.mmq", tmp_path / "e.npy", rerank=10)
    with pytest.raises(ValueError, match="k=51 is larger than the 50 vectors"):
        search(tmp_path / "e.mmq", tmp_path / "e.npy", k=51)
    with pytest.raises(FileNotFoundError, match=r"INDEX .*none\.mmq: no such file"):
        search(tmp_path / "none.mmq", tmp_path / "e.npy")
    with pytest.raises(mmcore.IndexFormatError, match="not a mmcore quantized index"):
        search(tmp_path / "e.npy", tmp_path / "e.npy")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["build", "{t}/nope.npy", "{t}/e.mmq"],
            "mmcore index build: error: EMBEDDINGS {t}/nope.npy: no such file",
        ),
        (["build", "{t}/e.npy", "{t}/no/e.mmq"], "mmcore index build: error: INDEX {t}/no/e.mmq: the folder"),
        (
            ["build", "{t}/e.npy", "{t}/b.mmq", "--codec", "binary"],
            "codec='binary' needs dim a multiple of 64",
        ),
        (
            ["search", "{t}/nope.mmq", "{t}/e.npy"],
            "mmcore index search: error: INDEX {t}/nope.mmq: no such file",
        ),
        (
            ["search", "{t}/e.mmq", "{t}/e.npy", "--out", "{t}/no/r.parquet"],
            "--out {t}/no/r.parquet: the folder",
        ),
        (["search", "{t}/e.mmq", "{t}/e.npy", "--out", "{t}"], "--out {t} is a folder"),
        (["search", "{t}/e.mmq", "{t}/e.npy", "-k", "999"], "k=999 is larger than the 20 vectors"),
        # a FIFO is refused at once (it used to block the first read forever), a folder as INDEX
        # is not "no such file"
        (["build", "{t}/fifo", "{t}/f.mmq"], "EMBEDDINGS {t}/fifo: not a regular file or a folder"),
        (["search", "{t}/e.mmq", "{t}/fifo"], "QUERIES {t}/fifo: not a regular file or a folder"),
        (["search", "{t}/fifo", "{t}/e.npy"], "INDEX {t}/fifo: not a regular file"),
        (["search", "{t}", "{t}/e.npy"], "INDEX {t}: not a regular file"),
        # float64 past float32's range: the row is named, with no numpy warning before it
        (["build", "{t}/big.npy", "{t}/g.mmq"], "EMBEDDINGS row 0 has a value beyond float32's range"),
    ],
)
def test_cli_errors_exit_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    np.save(tmp_path / "e.npy", vectors(20, 48))
    np.save(tmp_path / "big.npy", np.full((4, 48), 1e300))
    os.mkfifo(tmp_path / "fifo")
    build(tmp_path / "e.npy", tmp_path / "e.mmq")
    t = str(tmp_path)
    assert cli(["index", *(a.format(t=t) for a in argv)]) == 1
    err = capsys.readouterr().err
    assert message.format(t=t) in err and err.startswith("mmcore index ")
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("ids", [[5, 5, 5, 9] * 25, list(range(-100, 0))])
def test_repeated_and_negative_ids_build_and_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ids: list[int]
) -> None:
    """Ids need not be unique or positive: the index saved by build loads for search."""
    x, q = vectors(100, 32), vectors(4, 32, seed=5)
    p = write(tmp_path, pa.table({"id": pa.array(ids, pa.int64()), "v": list_column(x, "fixed")}))
    np.save(tmp_path / "q.npy", q)
    assert cli(["index", "build", str(p), str(tmp_path / "e.mmq"), "--ids-column", "id", "--keep-float"]) == 0
    out = tmp_path / "r.parquet"
    argv = ["index", "search", str(tmp_path / "e.mmq"), str(tmp_path / "q.npy"), "-k", "6", "--rerank", "30"]
    assert cli([*argv, "--out", str(out)]) == 0
    assert capsys.readouterr().err == ""
    scores, got = as_arrays(pq.read_table(out), 4, 6)
    want_s, want_i = direct(x, q, 6, ids=ids, rerank=30)
    np.testing.assert_array_equal(got, want_i)
    np.testing.assert_array_equal(scores, want_s)


def test_outputs_that_are_inputs_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An output that is the same file as an input (the same path, a link to it, a file of an input
    folder) would replace it: exit 1 with one line, and nothing is written."""
    np.save(tmp_path / "e.npy", vectors(20, 48))
    np.save(tmp_path / "q.npy", vectors(3, 48, seed=1))
    build(tmp_path / "e.npy", tmp_path / "e.mmq")
    folder = tmp_path / "emb"
    folder.mkdir()
    write(folder, pa.table({"v": list_column(vectors(20, 48), "list")}), "part-0.parquet")
    os.symlink(tmp_path / "e.npy", tmp_path / "link.npy")
    os.link(tmp_path / "e.mmq", tmp_path / "hard.mmq")
    t = str(tmp_path)
    before = {f: f.read_bytes() for f in tmp_path.rglob("*") if f.is_file()}
    mtimes = {f: f.stat().st_mtime_ns for f in before}
    part = "{t}/emb/part-0.parquet"
    for argv, message in (
        (["build", "{t}/e.npy", "{t}/e.npy"], "INDEX {t}/e.npy is the same file as EMBEDDINGS {t}/e.npy"),
        (["build", "{t}/e.npy", "{t}/link.npy"], "INDEX {t}/link.npy is the same file as EMBEDDINGS"),
        (["build", "{t}/link.npy", "{t}/./e.npy"], "INDEX {t}/./e.npy is the same file as EMBEDDINGS"),
        (["build", "{t}/emb", part], f"INDEX {part} is the same file as EMBEDDINGS {part}"),
        (
            ["search", "{t}/e.mmq", "{t}/q.npy", "--out", "{t}/e.mmq"],
            "--out {t}/e.mmq is the same file as INDEX",
        ),
        (["search", "{t}/e.mmq", "{t}/q.npy", "--out", "{t}/hard.mmq"], "--out {t}/hard.mmq is the same"),
        (
            ["search", "{t}/e.mmq", "{t}/q.npy", "--out", "{t}/q.npy"],
            "--out {t}/q.npy is the same file as QUERIES",
        ),
        (
            ["search", "{t}/e.mmq", "{t}/emb", "--out", part],
            f"--out {part} is the same file as QUERIES {part}",
        ),
    ):
        assert cli(["index", *(a.format(t=t) for a in argv)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"mmcore index {argv[0]}: error: ") and err.count("\n") == 1
        assert message.format(t=t) in err
        assert {f: f.read_bytes() for f in tmp_path.rglob("*") if f.is_file()} == before
        assert {f: f.stat().st_mtime_ns for f in before} == mtimes
    assert cli(["index", "search", f"{t}/e.mmq", f"{t}/q.npy", "--out", f"{t}/emb/r.parquet"]) == 0


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_vectors_whose_squared_norm_passes_float32_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, metric: str
) -> None:
    """||x|| >= 1.8e19: ip scores used to come back as inf, in a wrong order, even with --rerank.
    The file's row is named (not a row of the training sample or of a batch)."""
    monkeypatch.setattr(index_cmd, "_BATCH", 16)
    x = vectors(60, 32)
    huge = x.copy()
    huge[41] *= np.float32(3e37) / np.abs(huge[41]).max()
    np.save(tmp_path / "huge.npy", huge)
    with pytest.raises(ValueError, match=r"^EMBEDDINGS row 41 has \|\|x\|\|\^2 beyond float32's range"):
        build(tmp_path / "huge.npy", tmp_path / "e.mmq", metric=metric)  # type: ignore[arg-type]
    assert not (tmp_path / "e.mmq").exists()
    np.save(tmp_path / "e.npy", x)
    build(tmp_path / "e.npy", tmp_path / "e.mmq", metric=metric, keep_float=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^QUERIES row 41 has \|\|x\|\|\^2 beyond float32's range"):
        search(tmp_path / "e.mmq", tmp_path / "huge.npy", rerank=20)
    build(tmp_path / "huge.npy", tmp_path / "c.mmq", metric="cos", keep_float=True)  # normalised first
    table = search(tmp_path / "c.mmq", tmp_path / "huge.npy", k=1, rerank=20)
    assert table["id"].to_pylist() == list(range(60))


@pytest.mark.parametrize("where", ["npy", "parquet"])
def test_float64_beyond_float32_range_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """It used to be called "NaN, Inf or a missing value"; an earlier NaN row still comes first."""
    monkeypatch.setattr(index_cmd, "_BATCH", 16)
    x = vectors(50, 8).astype(np.float64)
    x[37, 3] = 1e39
    path = tmp_path / f"e.{where}"
    for nan_row, message in (
        (None, r"^EMBEDDINGS row 37 has a value beyond float32's range \(1e\+39\): scale the vectors down"),
        (20, r"^EMBEDDINGS row 20 contains NaN, Inf or a missing value"),
    ):
        if nan_row is not None:
            x[nan_row, 0] = np.nan
        if where == "npy":
            np.save(path, x)
        else:
            pq.write_table(pa.table({"v": list_column(x, "list")}), path)  # list<double>
        with pytest.raises(ValueError, match=message):
            build(path, tmp_path / "e.mmq")
        assert not (tmp_path / "e.mmq").exists()


def test_cli_argument_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["index"],
        ["index", "search", "a", "b", "-k", "0"],
        ["index", "build", "a", "b", "--codec", "pq"],
    ):
        with pytest.raises(SystemExit) as e:
            cli(argv)
        assert e.value.code == 2
    assert "invalid choice: 'pq'" in capsys.readouterr().err


def test_docstring_examples() -> None:
    result = doctest.testmod(index_cmd)
    assert result.attempted > 0 and result.failed == 0


def test_search_streams_its_results_a_batch_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """search_batches gives search()'s rows in query blocks; the command writes them to --out as
    they come (one row group per block, never the whole table) and prints the first 5 queries'
    best 5 as before, from a first block that holds fewer than 5 queries too."""
    x, q = vectors(300, 32), vectors(23, 32, seed=4)
    np.save(tmp_path / "emb.npy", x)
    np.save(tmp_path / "q.npy", q)
    assert cli(["index", "build", str(tmp_path / "emb.npy"), str(tmp_path / "e.mmq")]) == 0
    whole = search(tmp_path / "e.mmq", tmp_path / "q.npy", k=6)
    capsys.readouterr()
    monkeypatch.setattr(index_cmd, "_QUERY_BATCH", 3)
    parts = list(index_cmd.search_batches(tmp_path / "e.mmq", tmp_path / "q.npy", k=6))
    assert [b.num_rows for b in parts] == [18] * 7 + [12]
    assert pa.Table.from_batches(parts).equals(whole)
    res = tmp_path / "r.parquet"
    assert (
        cli(
            [
                "index",
                "search",
                str(tmp_path / "e.mmq"),
                str(tmp_path / "q.npy"),
                "-k",
                "6",
                "--out",
                str(res),
            ]
        )
        == 0
    )
    assert pq.read_table(res).equals(whole) and pq.ParquetFile(res).num_row_groups == 8
    printed = capsys.readouterr().out.splitlines()
    shown = [tuple(line.split()[:3]) for line in printed[1:-2]]
    want = whole.filter(pc.and_(pc.less(whole["query_row"], 5), pc.less(whole["rank"], 5)))
    assert shown == [
        tuple(str(v) for v in r)
        for r in zip(*(want[c].to_pylist() for c in ["query_row", "rank", "id"]), strict=True)
    ]
    assert printed[-2].startswith("23 queries, k=6")
    with pytest.raises(ValueError, match="k=301 is larger"):  # raised at the call, not at the first batch
        index_cmd.search_batches(tmp_path / "e.mmq", tmp_path / "q.npy", k=301)
