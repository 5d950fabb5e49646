"""``mmcore dedup``: clusters of a fake run output against a numpy brute-force union-find oracle."""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from jobs_fixtures import OK_STATUSES, run_cli, run_table, write_run_output

import mmcore.jobs._common as common
import mmcore.jobs.dedup
from mmcore.jobs.config import Config
from mmcore.jobs.dedup import CLUSTERS_SCHEMA, clusters_path, dedup, register, summary

POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


def flip(code: np.ndarray, nbits: int, rng: np.random.Generator) -> np.ndarray:
    """A copy of a (32,) uint8 code with nbits distinct bits flipped."""
    bits = np.unpackbits(code.copy())
    where = rng.choice(bits.size, size=nbits, replace=False)
    bits[where] ^= 1
    return np.packbits(bits)


def pdq_dataset(rng: np.random.Generator) -> dict[str, Any]:
    """Random PDQ codes with near-duplicate groups (copies 1..12 bits away), a chain (A~B~C with
    A, C 50 bits apart), pairs at exactly 31 and 32 bits, exact copies, failed rows, OK rows
    without a hash, and a failed row holding a copy of a group's code (the status alone must drop
    it)."""
    codes: list[np.ndarray] = []
    for _ in range(60):
        base = rng.integers(0, 256, size=32, dtype=np.uint8)
        codes.append(base)
        for _ in range(int(rng.integers(0, 4))):
            codes.append(flip(base, int(rng.integers(1, 13)), rng))
    a = rng.integers(0, 256, size=32, dtype=np.uint8)
    b = flip(a, 25, rng)
    bits_a, bits_b = np.unpackbits(a), np.unpackbits(b)
    same = np.flatnonzero(bits_a == bits_b)
    bits_c = bits_b.copy()
    bits_c[rng.choice(same, size=25, replace=False)] ^= 1  # C: 25 from B, 50 from A
    chain = [len(codes), len(codes) + 1, len(codes) + 2]
    codes += [a, b, np.packbits(bits_c)]
    for d in (31, 32):
        x = rng.integers(0, 256, size=32, dtype=np.uint8)
        codes += [x, flip(x, d, rng)]
    # Exact copies (identical codes, grouped before the join): 30 of one lone code (a placeholder
    # image), copies of group members, and a copy of the chain's B (it joins the chain).
    lone = rng.integers(0, 256, size=32, dtype=np.uint8)
    codes += [lone] * 30
    codes += [codes[int(k)].copy() for k in rng.choice(chain[0], size=10, replace=False)]
    codes.append(codes[chain[1]].copy())
    n_good = len(codes)
    n = n_good + 12
    pdq = np.zeros((n, 32), dtype=np.uint8)
    pdq[:n_good] = np.stack(codes)
    status = ["OK"] * n
    valid = np.ones(n, dtype=bool)
    for k in range(n_good, n_good + 6):
        status[k] = ("CORRUPT", "UNSUPPORTED", "TOO_LARGE")[k % 3]
    for k in range(n_good + 6, n):
        pdq[k] = rng.integers(0, 256, size=32, dtype=np.uint8)
        valid[k] = False  # OK but no pdq
    for k in rng.choice(n_good, size=15, replace=False):
        status[k] = "OK_WARNING"
    quality = rng.choice(np.array([40, 80, 100]), size=n)  # many ties: the id breaks them
    for k, q in zip(chain, (100, 40, 40), strict=True):  # A represents the chain; C is 50 bits away
        status[k], quality[k] = "OK", q
    rest = rng.permutation(np.setdiff1d(np.arange(n), chain))
    perm = np.concatenate([chain, rest])  # the chain in the first shard (completed), the rest shuffled
    ids = [f"img-{int(rng.integers(0, 10**6)):06d}-{k}" for k in range(n)]
    return {
        "ids": [ids[p] for p in perm],
        "pdq": pdq[perm],
        "status": [status[p] for p in perm],
        "valid": valid[perm],
        "quality": quality[perm],
    }


def oracle(
    ids: list[str],
    codes: np.ndarray,
    threshold: int,
    quality: np.ndarray | None,
    matched: np.ndarray | None = None,
) -> dict[str, Any]:
    """Brute-force answer for eligible rows in output order: clusters by union-find over every
    pair within the threshold (of rows both ``matched``, default all), numbered by first
    appearance, the representative (highest quality, then smallest id; or smallest id), distances
    to it."""
    n = len(ids)
    if codes.ndim == 1:
        codes = codes.view(np.uint8).reshape(n, 8)
    d = POP8[codes[:, None, :] ^ codes[None, :, :]].sum(axis=2)
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    edges = np.triu(d <= threshold, k=1)
    if matched is not None:
        edges &= matched[:, None] & matched[None, :]
    for i, j in zip(*np.nonzero(edges), strict=True):
        parent[find(int(i))] = find(int(j))
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    rep, dist, cluster_of, number = {}, {}, {}, {}
    for i in range(n):  # clusters numbered by first appearance in the output's row order
        number.setdefault(find(i), len(number))
    for members in groups.values():
        r = min(members, key=lambda m: (-(quality[m] if quality is not None else 0), ids[m]))
        key = frozenset(ids[m] for m in members)
        for m in members:
            rep[ids[m]] = ids[r]
            dist[ids[m]] = int(d[m, r])
            cluster_of[ids[m]] = key
    numbers = {ids[i]: number[find(i)] for i in range(n)}
    return {"rep": rep, "dist": dist, "number": numbers, "clusters": set(cluster_of.values())}


def check_against_oracle(table: pa.Table, want: dict[str, Any]) -> None:
    rows = table.to_pylist()
    got_ids = [r["id"] for r in rows]
    assert len(got_ids) == len(set(got_ids)) == len(want["rep"])  # every eligible image exactly once
    assert set(got_ids) == set(want["rep"])
    members: dict[int, set[str]] = {}
    for r in rows:
        members.setdefault(r["cluster_id"], set()).add(r["id"])
    assert {frozenset(m) for m in members.values()} == want["clusters"]
    assert all(r["cluster_id"] == want["number"][r["id"]] for r in rows)
    reps = {r["cluster_id"]: r["id"] for r in rows if r["is_representative"]}
    assert len(reps) == len(members)
    for r in rows:
        assert reps[r["cluster_id"]] == want["rep"][r["id"]]
        assert r["distance_to_representative"] == want["dist"][r["id"]]
    # sorted by cluster, representative first, then distance, then id
    keys = [
        (r["cluster_id"], not r["is_representative"], r["distance_to_representative"], r["id"]) for r in rows
    ]
    assert keys == sorted(keys)


def eligible(data: dict[str, Any], completed: np.ndarray) -> np.ndarray:
    return np.isin(np.array(data["status"]), OK_STATUSES) & data["valid"] & completed


@pytest.fixture
def pdq_out(tmp_path: Path) -> tuple[Path, dict[str, Any], np.ndarray]:
    data = pdq_dataset(np.random.default_rng(7))
    n = len(data["ids"])
    table = run_table(
        data["ids"],
        status=data["status"],
        pdq=data["pdq"],
        pdq_quality=data["quality"],
        hash_valid=data["valid"],
    )
    out = tmp_path / "out"
    write_run_output(out, table, shard_rows=40, incomplete=[1])
    completed = np.ones(n, dtype=bool)
    completed[40:80] = False  # shard 1 has no completion record
    return out, data, completed


@pytest.mark.parametrize("threshold", [None, 0, 12, 50])
def test_pdq_clusters_equal_brute_force(
    pdq_out: tuple[Path, dict[str, Any], np.ndarray], threshold: int | None
) -> None:
    out, data, completed = pdq_out
    keep = np.flatnonzero(eligible(data, completed))
    ids = [data["ids"][k] for k in keep]
    want = oracle(ids, data["pdq"][keep], 31 if threshold is None else threshold, data["quality"][keep])
    table = dedup(out, threshold=threshold, threads=2)
    assert table.schema.equals(CLUSTERS_SCHEMA)
    check_against_oracle(table, want)
    t = 31 if threshold is None else threshold
    on_disk = pq.read_table(clusters_path(out, "pdq", t))
    assert on_disk.equals(table)
    s = summary(on_disk)
    sizes = [len(c) for c in want["clusters"]]
    n_rows = sum(1 for k in range(len(completed)) if completed[k])
    assert s == {
        "images": len(ids),
        "clusters": len(sizes),
        "duplicates": len(ids) - len(sizes),
        "largest_cluster": max(sizes),
        "clusters_with_duplicates": sum(1 for x in sizes if x > 1),
        "skipped": n_rows - len(ids),
        "below_min_quality": 0,
        "hash": "pdq",
        "threshold": t,
        "min_quality": None,
    }


@pytest.mark.parametrize("hash", ["pdq", "phash"])
def test_distances_a_few_rows_at_a_time_equal_the_oracle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hash: str
) -> None:
    """The distances to the representatives are computed a step of rows at a time (the gathered
    codes of every row at once were ~110 bytes a row); with steps of 7 rows they are the oracle's."""
    rng = np.random.default_rng(8)
    n = 300
    if hash == "pdq":
        centres = rng.integers(0, 256, size=(30, 32), dtype=np.uint8)
        bits = np.unpackbits(centres[rng.integers(0, 30, n)], axis=1)
        bits[rng.random(bits.shape) < 0.03] ^= 1
        codes: Any = np.packbits(bits, axis=1)
        table_in = run_table([f"q{k:04d}" for k in range(n)], pdq=codes, pdq_quality=rng.integers(0, 101, n))
    else:
        codes = rng.integers(0, 2**63, size=30, dtype=np.uint64)[rng.integers(0, 30, n)]
        codes ^= np.uint64(1) << rng.integers(0, 64, n).astype(np.uint64)
        table_in = run_table([f"q{k:04d}" for k in range(n)], phash=codes)
    write_run_output(tmp_path, table_in, shard_rows=64)
    monkeypatch.setattr(mmcore.jobs.dedup, "_DIST_ROWS", 7)
    table = dedup(tmp_path, hash=hash)
    quality = table_in["pdq_quality"].to_numpy() if hash == "pdq" else None
    check_against_oracle(
        table, oracle(table_in["id"].to_pylist(), codes, 31 if hash == "pdq" else 10, quality)
    )
    assert sum(table["distance_to_representative"].to_pylist()) > 0


@pytest.mark.parametrize("min_quality", [0, 50, 80, 100])
def test_min_quality_leaves_low_quality_rows_unmatched(
    pdq_out: tuple[Path, dict[str, Any], np.ndarray], min_quality: int
) -> None:
    """Rows below min_quality are clusters of their own (even exact copies of a matched row);
    the others are clustered as without the option; the file name and summary say so."""
    out, data, completed = pdq_out
    keep = np.flatnonzero(eligible(data, completed))
    ids = [data["ids"][k] for k in keep]
    quality = data["quality"][keep]
    matched = quality >= min_quality
    want = oracle(ids, data["pdq"][keep], 31, quality, matched)
    table = dedup(out, min_quality=min_quality, threads=2)
    check_against_oracle(table, want)
    path = clusters_path(out, "pdq", 31, min_quality)
    assert path.name == f"clusters-pdq-31-q{min_quality}.parquet" and pq.read_table(path).equals(table)
    s = summary(table)
    assert s["min_quality"] == min_quality and s["below_min_quality"] == int((~matched).sum())
    low = {ids[k] for k in np.flatnonzero(~matched)}
    sizes = {
        c: n for c, n in zip(*np.unique(table["cluster_id"].to_numpy(), return_counts=True), strict=True)
    }
    assert all(sizes[r["cluster_id"]] == 1 for r in table.to_pylist() if r["id"] in low)
    if min_quality == 80:  # the dataset's qualities are 40, 80, 100: some rows out, some groups kept
        assert 0 < len(low) < len(ids) and s["clusters_with_duplicates"] > 0


def test_pdq_dataset_has_what_the_test_needs(pdq_out: tuple[Path, dict[str, Any], np.ndarray]) -> None:
    out, data, completed = pdq_out
    keep = np.flatnonzero(eligible(data, completed))
    ids = [data["ids"][k] for k in keep]
    want = oracle(ids, data["pdq"][keep], 31, data["quality"][keep])
    assert max(want["dist"].values()) > 31  # the chain: a member farther than the threshold
    assert sum(1 for c in want["clusters"] if len(c) > 1) >= 20
    assert (~completed).sum() and (~data["valid"]).sum() and "CORRUPT" in data["status"]
    table = dedup(out)
    assert not set(table["id"].to_pylist()) & {data["ids"][k] for k in np.flatnonzero(~completed)}


def test_phash_clusters_equal_brute_force(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    base = rng.integers(0, 2**63, size=80, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, 80).astype(
        np.uint64
    )
    codes = [int(c) for c in base]
    for c in base[:40]:
        for _ in range(int(rng.integers(1, 4))):
            flips = rng.choice(64, size=int(rng.integers(1, 14)), replace=False)
            codes.append(int(c) ^ sum(1 << int(f) for f in flips))
    phash = np.array(codes, dtype=np.uint64)
    n = len(phash)
    ids = [f"p{k:04d}" for k in rng.permutation(n)]
    status = ["OK" if k % 17 else "CORRUPT" for k in range(n)]
    out = tmp_path / "out"
    write_run_output(out, run_table(ids, status=status, phash=phash), shard_rows=64)
    keep = [k for k in range(n) if status[k] == "OK"]
    want = oracle([ids[k] for k in keep], phash[keep], 10, None)
    table = dedup(out, hash="phash")
    check_against_oracle(table, want)
    assert clusters_path(out, "phash", 10).is_file()
    assert summary(table)["skipped"] == n - len(keep)


def test_no_completed_shard_gives_an_empty_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_run_output(out, run_table(["a", "b"], pdq=np.zeros((2, 32), np.uint8)), incomplete=[0])
    table = dedup(out)
    assert table.num_rows == 0 and summary(table)["images"] == 0
    assert pq.read_table(clusters_path(out, "pdq", 31)).num_rows == 0


def test_repeated_id_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_run_output(out, run_table(["a", "b", "a"], pdq=np.zeros((3, 32), np.uint8)), shard_rows=2)
    with pytest.raises(ValueError, match="id 'a' is on more than one eligible row"):
        dedup(out)


def test_run_without_the_hash_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_run_output(out, run_table(["a"]), config=Config(hashes=("phash",)))
    with pytest.raises(ValueError, match=r"run without pdq \(hashes: \['phash'\]\): use --hash phash"):
        dedup(out)


def test_bad_arguments(pdq_out: tuple[Path, dict[str, Any], np.ndarray]) -> None:
    out = pdq_out[0]
    with pytest.raises(ValueError, match=r"threshold must be an int in 0\.\.64 for phash"):
        dedup(out, hash="phash", threshold=65)
    with pytest.raises(ValueError, match="hash must be 'pdq' or 'phash'"):
        dedup(out, hash="dhash")
    with pytest.raises(ValueError, match="hash must be 'pdq' or 'phash'"):
        dedup(out, hash=["pdq"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="threads must be a positive int"):
        dedup(out, threads=0)
    with pytest.raises(ValueError, match="min_quality applies to PDQ"):
        dedup(out, hash="phash", min_quality=50)
    for bad in (-1, 101, 50.0, True, "50"):
        with pytest.raises(ValueError, match=r"min_quality must be an int in 0\.\.100"):
            dedup(out, min_quality=bad)  # type: ignore[arg-type]


def test_write_is_atomic(
    pdq_out: tuple[Path, dict[str, Any], np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = pdq_out[0]
    first = dedup(out)
    path = clusters_path(out, "pdq", 31)
    dedup(out)  # a rerun replaces the file, leaves nothing else
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert pq.read_table(path).equals(first)
    before = path.read_bytes()

    def broken_write(table: pa.Table, where: Any) -> None:
        where.write(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(common.pq, "write_table", broken_write)
    with pytest.raises(OSError, match="No space left"):
        dedup(out)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def cli(argv: list[str]) -> int:
    return run_cli(register, argv)


def test_cli_prints_summary_and_path(
    pdq_out: tuple[Path, dict[str, Any], np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    out = pdq_out[0]
    assert cli(["dedup", str(out), "--threshold", "12", "--threads", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    s = summary(pq.read_table(clusters_path(out, "pdq", 12)))
    assert lines[0].startswith(f"pdq threshold 12: {s['images']:,} images in {s['clusters']:,} clusters")
    assert f"{s['duplicates']:,} duplicates" in lines[0] and f"{s['skipped']:,} rows skipped" in lines[0]
    assert lines[1] == str(clusters_path(out, "pdq", 12))
    assert cli(["dedup", str(out), "--hash", "phash"]) == 0  # no pHash values in this run: nothing to do
    assert capsys.readouterr().out.startswith("phash threshold 10: 0 images in 0 clusters")
    assert cli(["dedup", str(out), "--min-quality", "80"]) == 0
    lines = capsys.readouterr().out.splitlines()
    s = summary(pq.read_table(clusters_path(out, "pdq", 31, 80)))
    assert lines[0].endswith(f"; {s['below_min_quality']:,} below quality 80, not matched")
    assert lines[1] == str(clusters_path(out, "pdq", 31, 80)) and s["below_min_quality"] > 0


@pytest.mark.parametrize(
    ("make", "argv", "message"),
    [
        (None, [], "no such folder"),
        ("empty", [], "is not an mmcore run output (no _mmcore_job.json)"),
        ("run", ["--threshold", "300"], "threshold must be an int in 0..256"),
        ("phash-only", [], "run without pdq"),
        ("run", ["--min-quality", "101"], "min_quality must be an int in 0..100"),
        ("run", ["--hash", "phash", "--min-quality", "50"], "min_quality applies to PDQ"),
    ],
)
def test_cli_errors_exit_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: str | None, argv: list[str], message: str
) -> None:
    out = tmp_path / "out"
    if make == "empty":
        out.mkdir()
    elif make == "run":
        write_run_output(out, run_table(["a"], pdq=np.zeros((1, 32), np.uint8)))
    elif make == "phash-only":
        write_run_output(out, run_table(["a"]), config=Config(hashes=("phash",)))
    assert cli(["dedup", str(out), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mmcore dedup: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (out / "dedup").exists()


def test_cli_rejects_bad_thread_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli(["dedup", str(tmp_path), "--threads", "0"])
    assert e.value.code == 2 and "expected an integer >= 1, got '0'" in capsys.readouterr().err


def test_metadata_names_the_run(pdq_out: tuple[Path, dict[str, Any], np.ndarray]) -> None:
    out = pdq_out[0]
    meta = json.loads(dedup(out).schema.metadata[b"mmcore_dedup"])
    assert meta["run_config_hash"] == Config().config_hash() and set(meta["seconds"]) == {"read", "cluster"}


@pytest.mark.parametrize("module", [mmcore.jobs.dedup, common], ids=lambda m: m.__name__)
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0
