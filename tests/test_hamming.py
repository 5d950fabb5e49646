"""Hamming search against real oracles: faiss IndexBinaryFlat for kNN, numpy brute force for radius
search and join (every method), independent connected components for clustering; index files
round trip, and every truncated or damaged file gives IndexFormatError."""

from __future__ import annotations

import os
import signal
import struct
import threading
import zlib
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import check_lock_order, corpus_dir

import mmcore
from mmcore.search import FORMAT_VERSION, MAGIC

faiss = pytest.importorskip("faiss", reason="faiss-cpu (extra 'test') is the kNN oracle")

METHODS = ("auto", "brute", "mih")


# --------------------------------------------------------------------------------------------------
# Oracles and data


def as_bytes(codes: np.ndarray) -> np.ndarray:
    """(N, bits/8) uint8 for faiss (Hamming distance does not depend on the packing)."""
    c = np.ascontiguousarray(codes)
    width = c.itemsize * (c.shape[1] if c.ndim == 2 else 1)
    return c.view(np.uint8).reshape(c.shape[0], width)


def words(codes: np.ndarray) -> np.ndarray:
    return as_bytes(codes).view(np.uint64)


def dist_matrix(q: np.ndarray, base: np.ndarray) -> np.ndarray:
    """All Hamming distances, numpy brute force, in blocks."""
    qw, bw = words(q), words(base)
    out = np.empty((qw.shape[0], bw.shape[0]), dtype=np.int32)
    for s in range(0, qw.shape[0], 256):
        x = qw[s : s + 256, None, :] ^ bw[None, :, :]
        out[s : s + 256] = np.bitwise_count(x).sum(-1, dtype=np.int32)
    return out


def faiss_knn(base: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    b = as_bytes(base)
    idx = faiss.IndexBinaryFlat(b.shape[1] * 8)
    if len(b):
        idx.add(b)
    return idx.search(as_bytes(q), k)


def brute_radius(base: np.ndarray, ids: np.ndarray, q: np.ndarray, r: int) -> list[list[tuple[int, int]]]:
    """Per query, the sorted (distance, id) pairs within r."""
    d = dist_matrix(q, base)
    return [sorted((int(d[x, j]), int(ids[j])) for j in np.flatnonzero(d[x] <= r)) for x in range(len(q))]


def brute_join(base: np.ndarray, r: int) -> set[tuple[int, int, int]]:
    d = dist_matrix(base, base)
    a, b = np.nonzero(np.triu(d <= r, 1))
    return set(zip(a.tolist(), b.tolist(), d[a, b].tolist(), strict=True))


def csr_lists(lims: np.ndarray, d: np.ndarray, ids: np.ndarray) -> list[list[tuple[int, int]]]:
    return [
        list(zip(d[lims[x] : lims[x + 1]].tolist(), ids[lims[x] : lims[x + 1]].tolist(), strict=True))
        for x in range(len(lims) - 1)
    ]


def random_codes(rng: np.random.Generator, n: int, bits: int) -> np.ndarray:
    if bits == 64:
        return rng.integers(0, 2**64, size=n, dtype=np.uint64)
    return rng.integers(0, 256, size=(n, 32), dtype=np.uint8)


def flip_bits(rng: np.random.Generator, codes: np.ndarray, max_flips: int) -> np.ndarray:
    """A copy of codes with 0..max_flips distinct random bits flipped per code."""
    b = np.unpackbits(as_bytes(codes), axis=1)
    for row in b:
        k = int(rng.integers(0, max_flips + 1))
        row[rng.choice(row.size, size=k, replace=False)] ^= 1
    out = np.packbits(b, axis=1)
    return out.view(np.uint64)[:, 0].copy() if codes.ndim == 1 else out


def clustered_codes(rng: np.random.Generator, n: int, bits: int, centres: int, max_flips: int) -> np.ndarray:
    """Codes in tight clusters (like hashes of near-duplicate photos): centres plus bit flips."""
    c = random_codes(rng, centres, bits)
    pick = rng.integers(0, centres, size=n)
    return flip_bits(rng, c[pick], max_flips)


def make_index(codes: np.ndarray, ids: Any = None) -> mmcore.HammingIndex:
    index = mmcore.HammingIndex(bits=64 if codes.ndim == 1 else 256)
    index.add(codes, ids)
    return index


@cache
def corpus_hashes() -> dict[str, Any]:
    folder = corpus_dir("jpeg")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    r = mmcore.hash_batch([str(p) for p in files], kinds=("phash", "pdq"), mode="fast")
    ok = r.ok
    return {
        "names": [p.name for p, good in zip(files, ok, strict=True) if good],
        "phash": r["phash"][ok].copy(),
        "pdq": r["pdq"][ok].copy(),
    }


def corpus_codes(kind: str) -> np.ndarray:
    h = corpus_hashes()[kind]
    assert len(h) > 100
    return h


# --------------------------------------------------------------------------------------------------
# kNN


@pytest.mark.parametrize("bits", [64, 256])
@pytest.mark.parametrize("n", [1, 7, 64, 65, 1000])
def test_knn_equals_faiss_on_random_codes(rng: np.random.Generator, bits: int, n: int) -> None:
    base = random_codes(rng, n, bits)
    q = np.concatenate([random_codes(rng, 20, bits), base[: min(n, 5)]])
    index = make_index(base)
    for k in (1, 10, n, n + 3):
        d, ids = index.knn(q, k)
        fd, fi = faiss_knn(base, q, k)
        assert d.dtype == np.int32 and ids.dtype == np.int64 and d.shape == (len(q), k)
        np.testing.assert_array_equal(ids, fi, err_msg=f"n={n} k={k}")
        np.testing.assert_array_equal(d, fd)


@pytest.mark.parametrize("bits", [64, 256])
def test_knn_ties_ordered_by_id(rng: np.random.Generator, bits: int) -> None:
    # Few distinct codes, many copies: nearly every result is a tie.
    base = random_codes(rng, 4, bits)[rng.integers(0, 4, size=300)]
    q = random_codes(rng, 10, bits)
    d, ids = make_index(base).knn(q, 50)
    fd, fi = faiss_knn(base, q, 50)
    np.testing.assert_array_equal(ids, fi)
    np.testing.assert_array_equal(d, fd)
    for row_d, row_i in zip(d, ids, strict=True):
        assert list(zip(row_d, row_i, strict=True)) == sorted(zip(row_d, row_i, strict=True))


def test_knn_empty_index_is_padding_like_faiss(rng: np.random.Generator) -> None:
    q = random_codes(rng, 3, 64)
    d, ids = mmcore.HammingIndex().knn(q, 4)
    fd, fi = faiss_knn(np.zeros(0, np.uint64), q, 4)
    np.testing.assert_array_equal(ids, fi)
    np.testing.assert_array_equal(d, fd)


@pytest.mark.corpus
@pytest.mark.parametrize("kind", ["phash", "pdq"])
def test_knn_equals_faiss_on_corpus_hashes(kind: str) -> None:
    rng = np.random.default_rng(5)
    real = corpus_codes(kind)
    flips = 6 if kind == "phash" else 24
    base = np.concatenate([real, flip_bits(rng, real, flips), flip_bits(rng, real, 2 * flips)])
    q = np.concatenate([real[::3], flip_bits(rng, real[1::3], flips)])
    index = make_index(base)
    for k in (1, 10, 100):
        d, ids = index.knn(q, k)
        fd, fi = faiss_knn(base, q, k)
        np.testing.assert_array_equal(ids, fi, err_msg=f"{kind} k={k}")
        np.testing.assert_array_equal(d, fd)


def test_knn_custom_ids_and_input_forms(rng: np.random.Generator) -> None:
    base = random_codes(rng, 200, 64)
    ids = rng.permutation(10_000)[:200].astype(np.int64) - 5000  # negative ids are fine
    index = make_index(base, ids)
    d, got = index.knn(base[:30], 5)
    fd, _ = faiss_knn(base, base[:30], 5)
    # faiss breaks ties by position, mmcore by id: compare (distance, id) sets row by row.
    for x in range(30):
        ref = sorted(zip(dist_matrix(base[x : x + 1], base)[0].tolist(), ids.tolist(), strict=True))[:5]
        assert list(zip(d[x].tolist(), got[x].tolist(), strict=True)) == ref
        np.testing.assert_array_equal(d[x], fd[x])
    as_ints = make_index(base)
    i1 = as_ints.knn([int(v) for v in base[:5]], 3)[1]
    i2 = as_ints.knn(base[:5], 3)[1]
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(as_ints.knn(int(base[7]), 1)[1], [[7]])
    pdq = random_codes(rng, 20, 256)
    p = mmcore.HammingIndex(bits=256)
    p.add([bytes(row) for row in pdq])
    np.testing.assert_array_equal(p.codes, pdq)
    np.testing.assert_array_equal(p.knn(bytes(pdq[3]), 1)[1], [[3]])


def test_add_in_pieces_continues_positions(rng: np.random.Generator) -> None:
    base = random_codes(rng, 3000, 64)
    index = mmcore.HammingIndex()
    for s in range(0, 3000, 700):
        index.add(base[s : s + 700])
    assert len(index) == 3000
    np.testing.assert_array_equal(index.codes, base)
    np.testing.assert_array_equal(index.ids, np.arange(3000))
    np.testing.assert_array_equal(index.knn(base[::100], 4)[1], faiss_knn(base, base[::100], 4)[1])
    # Mixing: default ids continue the positions after custom ones were given.
    mixed = mmcore.HammingIndex()
    mixed.add(base[:2])
    mixed.add(base[2:4], ids=[100, 101])
    mixed.add(base[4:6])
    np.testing.assert_array_equal(mixed.ids, [0, 1, 100, 101, 4, 5])
    assert mixed.memory_bytes() == 6 * 16 and index.memory_bytes() == 3000 * 8


# --------------------------------------------------------------------------------------------------
# Radius search and join


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("bits", "radii", "flips"), [(64, (0, 1, 4, 8, 12), 6), (256, (0, 8, 31, 48), 24)])
def test_radius_equals_brute_force(
    rng: np.random.Generator, method: str, bits: int, radii: tuple[int, ...], flips: int
) -> None:
    base = clustered_codes(rng, 3000, bits, 300, flips)
    q = np.concatenate([flip_bits(rng, base[:80], flips), random_codes(rng, 20, bits)])
    ids = np.arange(3000, dtype=np.int64)
    index = make_index(base)
    for r in radii:
        lims, d, got = index.radius(q, r, method=method)  # type: ignore[arg-type]
        assert lims.dtype == np.int64 and d.dtype == np.int32 and got.dtype == np.int64
        assert lims.shape == (len(q) + 1,) and lims[0] == 0 and lims[-1] == len(d) == len(got)
        assert csr_lists(lims, d, got) == brute_radius(base, ids, q, r), f"r={r}"
        stats = index.last_stats
        assert stats is not None and stats["method"] in ("brute", "mih")
        if method != "auto":
            assert stats["method"] == method
        assert stats["candidates"] >= len(d)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("bits", "radii", "flips"), [(64, (0, 2, 4, 8, 10), 6), (256, (0, 16, 31), 24)])
def test_join_equals_brute_force(
    rng: np.random.Generator, method: str, bits: int, radii: tuple[int, ...], flips: int
) -> None:
    base = clustered_codes(rng, 2500, bits, 400, flips)
    base[100:110] = base[5]  # exact duplicates
    index = make_index(base)
    for r in radii:
        i, j, d = index.join(r, method=method)  # type: ignore[arg-type]
        assert i.dtype == np.int64 and j.dtype == np.int64 and d.dtype == np.int32
        assert np.all(i < j)
        order = np.lexsort((j, i))
        np.testing.assert_array_equal(order, np.arange(len(i)), err_msg="not sorted by (i, j)")
        got = set(zip(i.tolist(), j.tolist(), d.tolist(), strict=True))
        assert len(got) == len(i), "a pair was reported twice"
        assert got == brute_join(base, r), f"r={r}"
        if method != "auto":
            assert index.last_stats is not None and index.last_stats["method"] == method


@pytest.mark.corpus
@pytest.mark.parametrize(("kind", "radii", "flips"), [("phash", (4, 8, 12), 6), ("pdq", (31, 50), 24)])
def test_radius_and_join_on_corpus_hashes(kind: str, radii: tuple[int, ...], flips: int) -> None:
    rng = np.random.default_rng(9)
    real = corpus_codes(kind)
    base = np.concatenate([real, flip_bits(rng, real, flips), flip_bits(rng, real, flips // 2)])
    ids = np.arange(len(base), dtype=np.int64)
    index = make_index(base)
    for r in radii:
        want_pairs = brute_join(base, r)
        want_radius = brute_radius(base, ids, real, r)
        for method in METHODS:
            i, j, d = index.join(r, method=method)  # type: ignore[arg-type]
            assert set(zip(i.tolist(), j.tolist(), d.tolist(), strict=True)) == want_pairs
            assert len(i) == len(want_pairs)
            lims, rd, ri = index.radius(real, r, method=method)  # type: ignore[arg-type]
            assert csr_lists(lims, rd, ri) == want_radius, f"{kind} r={r} {method}"


def test_join_and_radius_with_custom_ids(rng: np.random.Generator) -> None:
    base = clustered_codes(rng, 500, 64, 40, 4)
    ids = (1000 - np.arange(500) * 2).astype(np.int64)  # decreasing: i < j flips the positions
    index = make_index(base, ids)
    i, j, d = index.join(4)
    want = {(min(ids[a], ids[b]), max(ids[a], ids[b]), dd) for a, b, dd in brute_join(base, 4)}
    assert set(zip(i.tolist(), j.tolist(), d.tolist(), strict=True)) == want and len(i) == len(want)
    assert np.all(i < j) and np.all(np.diff(i) >= 0)
    lims, rd, ri = index.radius(base[:20], 4)
    assert csr_lists(lims, rd, ri) == brute_radius(base, ids, base[:20], 4)
    dup = make_index(base[:3], [1, 1, 2])
    with pytest.raises(ValueError, match="unique ids"):
        dup.join(64)


def test_empty_and_degenerate_searches(rng: np.random.Generator) -> None:
    empty = mmcore.HammingIndex()
    lims, d, ids = empty.radius(random_codes(rng, 3, 64), 5)
    assert lims.tolist() == [0, 0, 0, 0] and len(d) == len(ids) == 0
    i, j, d = empty.join(3)
    assert len(i) == len(j) == len(d) == 0
    one = make_index(random_codes(rng, 1, 256))
    assert len(one.join(256)[0]) == 0
    base = random_codes(rng, 50, 64)
    lims, d, ids = make_index(base).radius(base[:2], 64)  # every code is within 64 bits
    assert lims.tolist() == [0, 50, 100]
    lims, d, ids = make_index(base).radius(np.zeros(0, np.uint64), 3)
    assert lims.tolist() == [0]


# --------------------------------------------------------------------------------------------------
# Files


@pytest.mark.parametrize("bits", [64, 256])
@pytest.mark.parametrize("with_ids", [False, True])
@pytest.mark.parametrize("mmap", [True, False])
def test_save_load_round_trip(
    tmp_path: Path, rng: np.random.Generator, bits: int, with_ids: bool, mmap: bool
) -> None:
    base = random_codes(rng, 300, bits)
    ids = rng.integers(-(2**62), 2**62, size=300) if with_ids else None
    index = make_index(base, ids)
    path = tmp_path / "a.idx"
    index.save(path)
    assert path.stat().st_size == 64 + 300 * bits // 8 + (300 * 8 if with_ids else 0)
    again = mmcore.HammingIndex.load(path, mmap=mmap)
    assert again.bits == bits and len(again) == 300
    np.testing.assert_array_equal(again.codes, index.codes)
    np.testing.assert_array_equal(again.ids, index.ids)
    assert isinstance(again._words, np.memmap) == mmap  # mapped, not copied
    for a, b in zip(again.knn(base[:9], 7), index.knn(base[:9], 7), strict=True):
        np.testing.assert_array_equal(a, b)
    assert again.codes.flags.writeable is False
    again.add(base[:2])  # appending copies a mapped index into memory
    assert len(again) == 302 and len(mmcore.HammingIndex.load(path)) == 300
    np.testing.assert_array_equal(again.codes[300:], base[:2])


def test_save_load_empty_and_overwrite(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "e.idx"
    mmcore.HammingIndex(bits=256).save(path)
    e = mmcore.HammingIndex.load(path)
    assert len(e) == 0 and e.bits == 256
    make_index(random_codes(rng, 4, 64)).save(path)
    assert len(mmcore.HammingIndex.load(str(path), mmap=False)) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["e.idx"]  # no temporary left behind


def small_file(tmp_path: Path, rng: np.random.Generator) -> bytes:
    """The bytes of a 5-code 256-bit index with ids (264 bytes)."""
    path = tmp_path / "s.idx"
    make_index(random_codes(rng, 5, 256), ids=[5, 4, 3, 2, 1]).save(path)
    return path.read_bytes()


@pytest.mark.parametrize("mmap", [True, False])
def test_every_truncation_is_a_clear_error(tmp_path: Path, rng: np.random.Generator, mmap: bool) -> None:
    data = small_file(tmp_path, rng)
    bad = tmp_path / "t.idx"
    for n in range(len(data)):
        bad.write_bytes(data[:n])
        with pytest.raises(mmcore.IndexFormatError, match=r"truncated|not a mmcore"):
            mmcore.HammingIndex.load(bad, mmap=mmap)
    bad.write_bytes(data + b"\0")
    with pytest.raises(mmcore.IndexFormatError, match="unexpected bytes"):
        mmcore.HammingIndex.load(bad)


def test_byte_flips_are_detected(tmp_path: Path, rng: np.random.Generator) -> None:
    data = small_file(tmp_path, rng)
    bad = tmp_path / "f.idx"
    for pos in range(len(data)):
        b = bytearray(data)
        b[pos] ^= 1 << int(rng.integers(0, 8))
        bad.write_bytes(bytes(b))
        with pytest.raises(mmcore.IndexFormatError):
            mmcore.HammingIndex.load(bad, mmap=bool(pos % 2))
        if pos >= 64:  # verify=False trusts the payload: a flipped code loads, nothing crashes
            assert len(mmcore.HammingIndex.load(bad, verify=False)) == 5


def test_garbage_wrong_magic_and_version(tmp_path: Path, rng: np.random.Generator) -> None:
    data = small_file(tmp_path, rng)
    bad = tmp_path / "g.idx"
    for _ in range(20):
        bad.write_bytes(rng.integers(0, 256, size=int(rng.integers(0, 400)), dtype=np.uint8).tobytes())
        with pytest.raises(mmcore.IndexFormatError):
            mmcore.HammingIndex.load(bad)
    bad.write_bytes(b"PK\x03\x04" + data[4:])
    with pytest.raises(mmcore.IndexFormatError, match="not a mmcore Hamming index"):
        mmcore.HammingIndex.load(bad)
    # A well-formed header from a newer format version.
    head = bytearray(data[:64])
    head[8:12] = struct.pack("<I", FORMAT_VERSION + 1)
    head[60:64] = struct.pack("<I", zlib.crc32(bytes(head[:60])))
    bad.write_bytes(bytes(head) + data[64:])
    with pytest.raises(mmcore.IndexFormatError, match="version 2"):
        mmcore.HammingIndex.load(bad)
    assert data[:8] == MAGIC
    assert issubclass(mmcore.IndexFormatError, ValueError)
    with pytest.raises(FileNotFoundError):
        mmcore.HammingIndex.load(tmp_path / "missing.idx")
    with pytest.raises(IsADirectoryError):
        mmcore.HammingIndex.load(tmp_path)


# --------------------------------------------------------------------------------------------------
# Clustering


def components(n: int, edges: list[tuple[int, int]]) -> list[set[int]]:
    """Connected components by breadth-first search (the oracle for union-find)."""
    adj: dict[int, list[int]] = {x: [] for x in range(n)}
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    seen: set[int] = set()
    out = []
    for s in range(n):
        if s in seen:
            continue
        comp, todo = {s}, [s]
        while todo:
            for y in adj[todo.pop()]:
                if y not in comp:
                    comp.add(y)
                    todo.append(y)
        seen |= comp
        out.append(comp)
    return out  # in order of first appearance


def check_labels(res: mmcore.ClusterResult, n: int, edges: list[tuple[int, int]]) -> None:
    comps = components(n, edges)
    want = np.empty(n, dtype=np.int64)
    for c, comp in enumerate(comps):
        want[list(comp)] = c
    np.testing.assert_array_equal(res.labels, want)
    assert res.n_clusters == len(comps)
    assert np.bincount(res.labels[res.is_representative], minlength=len(comps)).tolist() == [1] * len(comps)


def test_cluster_known_graphs() -> None:
    graphs = {
        "chain": (6, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]),
        "star": (5, [(3, 0), (3, 1), (3, 2), (3, 4)]),
        "two": (7, [(5, 6), (1, 3), (6, 0)]),
        "loops and repeats": (4, [(2, 2), (1, 2), (2, 1), (1, 2)]),
        "no edges": (3, []),
    }
    for name, (n, edges) in graphs.items():
        a = np.array([e[0] for e in edges], dtype=np.int64)
        b = np.array([e[1] for e in edges], dtype=np.int64)
        res = mmcore.cluster((a, b), n=n)
        check_labels(res, n, edges)
        first = [min(c) for c in components(n, edges)]
        assert np.flatnonzero(res.is_representative).tolist() == sorted(first), name
        np.testing.assert_array_equal(res.representatives(), first)
    res = mmcore.cluster(np.array([[0, 2], [2, 4]]))  # (P, 2) array, n from the largest position
    assert res.labels.tolist() == [0, 1, 0, 2, 0]
    empty = mmcore.cluster((np.zeros(0, np.int64), np.zeros(0, np.int64)))
    assert empty.labels.size == 0 and empty.n_clusters == 0


def test_cluster_pairs_forms_and_r() -> None:
    """Pairs are a tuple of columns or a (P, 2|3) array; a list (of 2 or 3 pairs, it would read as
    columns) is refused. r filters pairs, never items: n counts every position named."""
    want = [0, 1, 2, 3, 4, 0, 1]
    assert mmcore.cluster(np.array([(0, 5), (1, 6)])).labels.tolist() == want
    assert mmcore.cluster(([0, 1], [5, 6])).labels.tolist() == want
    for pairs in ([(0, 5), (1, 6)], [(0, 5, 1), (1, 6, 1), (2, 7, 1)], [[0, 1], [5, 6]]):
        with pytest.raises(ValueError, match=r"np\.array"):
            mmcore.cluster(pairs)
    t = (np.array([0, 3]), np.array([1, 4]), np.array([2, 9]))
    assert mmcore.cluster(t, r=4).labels.tolist() == [0, 0, 1, 2, 3]
    assert mmcore.cluster(t, r=9).labels.tolist() == [0, 0, 1, 2, 2]


def test_cluster_representatives() -> None:
    pairs = ([0, 1, 3, 4], [1, 2, 4, 5])  # {0,1,2} {3,4,5} {6}
    sizes = [100, 300, 300, 7, 9, 8, 1]
    res = mmcore.cluster(pairs, n=7, representative="largest", sizes=sizes)
    assert np.flatnonzero(res.is_representative).tolist() == [1, 4, 6]  # 1 beats 2 by position
    quality = np.array([0.5, 0.1, 0.9, 0.3, 0.3, 0.3, 0.0])
    res = mmcore.cluster(pairs, n=7, representative="quality", quality=quality)
    assert np.flatnonzero(res.is_representative).tolist() == [2, 3, 6]
    res = mmcore.cluster((*pairs, [1, 9, 2, 9]), r=2, n=7)  # r keeps the (0,1) and (3,4) pairs
    assert res.labels.tolist() == [0, 0, 1, 2, 2, 3, 4]


def test_cluster_of_index_equals_components_of_join(rng: np.random.Generator) -> None:
    base = clustered_codes(rng, 1500, 64, 200, 5)
    index = make_index(base)
    for r in (0, 3, 6, 10):
        res = mmcore.cluster(index, r, representative="first")
        edges = [(a, b) for a, b, _ in brute_join(base, r)]
        check_labels(res, len(base), edges)
        i, j, _ = index.join(r)
        np.testing.assert_array_equal(mmcore.cluster((i, j), n=len(base)).labels, res.labels)


def test_cluster_of_index_with_copies_keeps_no_pairs(rng: np.random.Generator) -> None:
    """Many copies of a few codes (placeholder images) and a dense group of distinct near codes:
    cluster(index) unites the join's pairs as it finds them and groups identical codes first; its
    labels equal union-find of index.join's pairs for every method, width and thread count, and
    last_stats counts only the distinct codes' pairs."""
    for bits, r in ((64, 6), (256, 31)):
        base = clustered_codes(rng, 3000, bits, 300, 4)
        copies = rng.integers(0, 3000, size=1200)
        base[rng.permutation(3000)[:1200]] = base[copies]  # copies scattered among the originals
        base[rng.permutation(3000)[:400]] = base[7]  # one code 400 more times
        index = make_index(base)
        i, j, _ = index.join(r)
        want = mmcore.cluster((i, j), n=len(base))
        for method in ("brute", "mih", "auto"):
            for threads in (1, 2):
                res = mmcore.cluster(index, r, method=method, threads=threads)
                np.testing.assert_array_equal(res.labels, want.labels, err_msg=f"{bits} {method} {threads}")
                np.testing.assert_array_equal(res.is_representative, want.is_representative)
        distinct = len(np.unique(base, axis=0))
        assert distinct < 2000
        if index.last_stats["method"] == "brute":
            assert index.last_stats["candidates"] == distinct * (distinct - 1) // 2
    empty = mmcore.cluster(mmcore.HammingIndex(64), 3)
    assert empty.labels.size == 0 and empty.n_clusters == 0
    same = make_index(np.full(5000, 12345, dtype=np.uint64))
    assert mmcore.cluster(same, 0).labels.tolist() == [0] * 5000


def random_walk(rng: np.random.Generator, start: np.ndarray, steps: int, flips: int) -> np.ndarray:
    """steps codes, each the one before with ``flips`` random bits flipped: near neighbours along
    the walk, far apart at its ends."""
    b = np.unpackbits(as_bytes(start[None]), axis=1)[0]
    out = np.empty((steps, b.size), np.uint8)
    for k in range(steps):
        b = b.copy()
        b[rng.choice(b.size, size=flips, replace=False)] ^= 1
        out[k] = b
    packed = np.packbits(out, axis=1)
    return packed.view(np.uint64)[:, 0].copy() if start.ndim == 0 else packed


def near_copies(rng: np.random.Generator, centre: np.ndarray, n: int, max_flips: int) -> np.ndarray:
    """n codes within max_flips bits of centre (a 64-bit scalar or 32 bytes)."""
    codes = np.full(n, centre) if centre.ndim == 0 else np.repeat(centre[None], n, axis=0)
    return flip_bits(rng, codes, max_flips)


def as_code(bits: np.ndarray) -> np.ndarray:
    """A code from its 64 or 256 unpacked bits (the inverse of np.unpackbits(as_bytes(...)))."""
    packed = np.packbits(bits)
    return packed.view(np.uint64)[0] if bits.size == 64 else packed


@pytest.mark.parametrize("bits", [64, 256])
def test_cluster_of_dense_groups_equals_components_of_join(rng: np.random.Generator, bits: int) -> None:
    """Near-duplicate groups of thousands of distinct codes sharing substrings (one viral image,
    recompressed): cluster(index) compares each bucket's rows with the members outside the
    component that dominates it, and with that component only until one is near. Its labels
    equal union-find of index.join's pairs (every pair compared) for: two dense groups beside a
    far group that shares most substrings of one of them; the same joined by a chain of bridge
    codes; a random walk (near along the walk, far at its ends). Fewer pairs are compared than
    by the join."""
    r, flips = (10, 3) if bits == 64 else (31, 8)
    noise = random_codes(rng, 10_000, bits)
    a, b = random_codes(rng, 2, bits)
    a_bits, b_bits = (np.unpackbits(as_bytes(c[None]), axis=1)[0] for c in (a, b))
    far = a_bits.copy()
    far[: 3 * r] ^= 1  # a's far twin: 3r bits apart, all in the first substrings
    step = r - 2 * flips
    diff = np.flatnonzero(a_bits != b_bits)
    bridge = []
    for t in range(step, len(diff), step):  # from a to b, step bits at a time
        p = a_bits.copy()
        p[diff[:t]] = b_bits[diff[:t]]
        bridge.append(as_code(p))
    groups = [noise, near_copies(rng, a, 5000, flips), near_copies(rng, b, 3000, flips)]
    groups.append(near_copies(rng, as_code(far), 1000, flips))
    cases = {
        "groups": np.concatenate(groups),
        "bridged": np.concatenate([*groups, np.array(bridge)]),
        "walk": np.concatenate([noise, random_walk(rng, a, 3000, max(1, r // 4))]),
    }
    for name, codes in cases.items():
        codes = codes[rng.permutation(len(codes))]
        index = make_index(codes)
        i, j, _ = index.join(r, method="mih")
        plain = index.last_stats["candidates"]
        want = mmcore.cluster((i, j), n=len(codes))
        for threads in (1, 2):
            res = mmcore.cluster(index, r, method="mih", threads=threads)
            np.testing.assert_array_equal(res.labels, want.labels, err_msg=f"{bits} {name} {threads}")
        sizes = np.sort(np.bincount(want.labels))[::-1]
        if name == "groups":
            assert sizes[0] == 5000 and sizes[1] == 3000 and sizes[2] == 1000
            assert index.last_stats["candidates"] < 0.8 * plain
        elif name == "bridged":
            assert sizes[0] == 5000 + 3000 + len(bridge) and sizes[1] == 1000


def test_auto_method_sees_codes_with_fixed_bits(rng: np.random.Generator) -> None:
    """42-bit codes (colorhash's width) in a 64-bit index: 22 bits never vary, so a substring cut
    there puts every code in one bucket. auto samples pairs of codes and never plans more
    distance computations than brute force would make (it planned ~1.6x: 17-55x the time)."""
    n, nq = 100_000, 300
    base = rng.integers(0, 2**42, size=n, dtype=np.uint64)
    queries = rng.integers(0, 2**42, size=nq, dtype=np.uint64)
    index = make_index(base)
    got = index.radius(queries, 4)
    assert index.last_stats["candidates"] <= n * nq
    want = index.radius(queries, 4, method="brute")
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    small = make_index(base[:20_000])
    mmcore.cluster(small, 4)
    assert small.last_stats["candidates"] <= 20_000 * 19_999 // 2


@pytest.mark.corpus
def test_cluster_corpus_near_duplicates() -> None:
    """tomsaleeba's photos at 100 px, 1000 px and full size: one cluster per photo, every other
    corpus file outside those clusters. Radii: in these groups pHash differs by <= 2 bits and PDQ
    (fast mode) by <= 32 (the 100 px copies), while the nearest other file is >= 18 (pHash) and
    >= 100 (PDQ) bits away."""
    h = corpus_hashes()
    names = h["names"]
    groups: dict[str, list[int]] = {}
    for x, n in enumerate(names):
        if n.startswith(("tomsaleeba__generated_", "tomsaleeba__originals_")):
            stem = n.split("_", 3)[-1].rsplit(".", 1)[0]
            for suffix in ("-1000px", "-100px"):
                stem = stem.removesuffix(suffix)
            groups.setdefault(stem, []).append(x)
    groups = {k: v for k, v in groups.items() if len(v) > 1}
    assert len(groups) >= 6
    for kind, r in (("pdq", 48), ("phash", 10)):
        index = make_index(h[kind])
        res = mmcore.cluster(index, r, representative="largest", sizes=np.arange(len(names)))
        for stem, members in groups.items():
            labels = {int(res.labels[x]) for x in members}
            assert len(labels) == 1, f"{kind}: {stem} split across clusters"
            inside = set(np.flatnonzero(res.labels == labels.pop()).tolist())
            assert inside == set(members), f"{kind}: {stem} cluster also holds {inside - set(members)}"
            reps = [x for x in members if res.is_representative[x]]
            assert reps == [max(members)], f"{kind}: {stem} representative {reps}"


# --------------------------------------------------------------------------------------------------
# Misuse


def test_misuse_errors(rng: np.random.Generator) -> None:
    idx64, idx256 = mmcore.HammingIndex(64), mmcore.HammingIndex(256)
    idx64.add(random_codes(rng, 10, 64))
    idx256.add(random_codes(rng, 10, 256))
    bad: list[tuple[Any, str]] = [
        (lambda: mmcore.HammingIndex(bits=0), r"bits must be an int in 1\.\.65536"),
        (lambda: mmcore.HammingIndex(bits=65537), r"bits must be an int in 1\.\.65536"),
        (lambda: mmcore.HammingIndex(bits=True), "bits must be an int"),
        (lambda: mmcore.HammingIndex(np.arange(3, dtype=np.uint64)), r"ndarray \(the codes go to add\(\)\)"),
        (lambda: mmcore.HammingIndex(bits="64"), "got '64'"),
        (lambda: mmcore.HammingIndex(threads=0), "threads"),
        (lambda: idx64.add(np.arange(3, dtype=np.int32)), "uint64"),
        (lambda: idx64.add(np.zeros(3, np.float64)), "uint64"),
        (lambda: idx64.add(random_codes(rng, 2, 256)), "bits=256"),
        (lambda: idx64.add(np.zeros((3, 2), np.uint64)), "1-D"),
        (lambda: idx64.add([1, -(2**63) - 1]), r"\[-2\*\*63, 2\*\*64\)"),
        (lambda: idx64.add([2**64]), r"\[-2\*\*63, 2\*\*64\)"),
        (lambda: idx64.add([1.5]), "list of ints"),
        (lambda: idx64.add(np.zeros(3, np.uint64), ids=[1, 2]), "one id per code"),
        (lambda: idx64.add(np.zeros(2, np.uint64), ids=[1.0, 2.0]), "integers"),
        (lambda: idx256.add(random_codes(rng, 2, 64)), "bits=64"),
        (lambda: idx256.add(np.zeros((2, 31), np.uint8)), r"\(N, 32\)"),
        (lambda: idx256.add([b"short"]), "32-byte"),
        (lambda: idx64.knn(random_codes(rng, 1, 64), 0), "k must be"),
        (lambda: idx64.knn(random_codes(rng, 1, 64), -3), "k must be"),
        (lambda: idx64.knn(random_codes(rng, 1, 64), 2.0), "k must be"),
        (lambda: idx64.knn(random_codes(rng, 1, 256), 1), "bits=256"),
        (lambda: idx256.knn(random_codes(rng, 1, 64), 1), "bits=64"),
        (lambda: idx64.radius(random_codes(rng, 1, 64), -1), "r must be in 0"),
        (lambda: idx64.radius(random_codes(rng, 1, 64), 1.5), "r must be an int"),
        (lambda: idx64.radius(random_codes(rng, 1, 64), 2, method="fast"), "method"),
        (lambda: idx64.join(-2), "r must be in 0"),
        (lambda: idx64.join(2, threads=-1), "threads"),
        (lambda: mmcore.cluster(idx64), "r .* required"),
        (lambda: mmcore.cluster(idx64, 2, n=3), "holds 10"),
        (lambda: mmcore.cluster(([0], [5]), n=3), "n=3"),
        (lambda: mmcore.cluster(([0], [-1]), n=3), ">= 0"),
        (lambda: mmcore.cluster(([0, 1], [2])), "differ"),
        (lambda: mmcore.cluster(([0.0], [1.0])), "integer"),
        (lambda: mmcore.cluster(([0], [1]), r=2), "give \\(i, j, d\\)"),
        (lambda: mmcore.cluster(([0], [1]), representative="best"), "representative must"),  # type: ignore[arg-type]
        (lambda: mmcore.cluster(([0], [1]), representative="largest"), "needs sizes"),
        (lambda: mmcore.cluster(([0], [1]), representative="largest", sizes=[1]), r"shape \(2,\)"),
        (lambda: mmcore.cluster(([0], [1]), representative="quality", quality=[1.0, np.nan]), "NaN"),
        (lambda: mmcore.cluster(([0], [1]), sizes=[1, 2]), "only with"),
        (lambda: mmcore.cluster("pairs"), "pairs"),
        (lambda: mmcore.cluster(([0], [1]), method="bogus"), "method"),  # type: ignore[arg-type]
        (lambda: mmcore.cluster(([0], [1]), threads=-1), "threads"),
        (lambda: mmcore.cluster((np.array([2**63], np.uint64), np.array([0], np.uint64))), "positions"),
        (lambda: mmcore.hamming([-(2**70)], [2**70]), "must fit in int64"),
    ]
    for call, msg in bad:
        with pytest.raises(ValueError, match=msg):
            call()
    assert len(idx64) == 10 and len(idx256) == 10  # failed adds changed nothing


def test_repr_and_views(rng: np.random.Generator) -> None:
    index = make_index(random_codes(rng, 3, 256), ids=[7, 8, 9])
    assert "bits=256" in repr(index) and "n=3" in repr(index)
    assert index.codes.shape == (3, 32) and index.codes.dtype == np.uint8
    with pytest.raises(ValueError):
        index.codes[0, 0] = 1
    assert index.memory_bytes() == 3 * 40


def test_int64_codes_are_their_bits_as_in_hamming(rng: np.random.Generator) -> None:
    """mmcore run's Parquet holds 64-bit hashes as int64 (imagehash's bits, signed): an int64
    array, or negative ints, go into the index and its queries as their two's complement, as
    mmcore.hamming reads them (the index used to refuse them)."""
    codes = random_codes(rng, 200, 64)
    signed = codes.view(np.int64)
    assert (signed < 0).any()
    ref, idx = mmcore.HammingIndex(), mmcore.HammingIndex()
    ref.add(codes)
    idx.add(signed)
    assert np.array_equal(idx.codes, codes)
    d_ref, i_ref = ref.knn(codes[:7], k=5)
    d, i = idx.knn(signed[:7], k=5)
    assert np.array_equal(d, d_ref) and np.array_equal(i, i_ref)
    assert (d[:, 0] == 0).all()
    idx.add([int(v) for v in signed[:3]])  # negative Python ints too
    assert np.array_equal(idx.codes[200:], codes[:3])
    lims, dr, _ = idx.radius([int(signed[0])], 0)
    assert lims.tolist() == [0, 2] and dr.tolist() == [0, 0]  # the code and its copy
    assert d[0, 0] == mmcore.hamming(int(signed[0]), int(codes[0]))


def test_hamming_numpy_scalars_are_64_bit_hashes() -> None:
    """A numpy integer scalar of any width is a 64-bit hash, as a Python int is (np.uint8 was
    taken for a 1-byte row and raised IndexError against an int)."""
    assert mmcore.hamming(np.uint8(255), 0) == 8
    assert mmcore.hamming(np.uint8(255), np.uint8(0)) == 8
    assert mmcore.hamming(np.int8(-1), 0) == 64 == mmcore.hamming(-1, 0)
    assert mmcore.hamming(np.uint16(3), np.uint64(0)) == 2


def test_knn_k_far_past_the_index_is_padded_without_a_k_wide_kernel() -> None:
    index = mmcore.HammingIndex()
    index.add(np.arange(3, dtype=np.uint64))
    d, ids = index.knn([1, 2], k=5_000_000)
    assert d.shape == ids.shape == (2, 5_000_000)
    assert (ids[:, 3:] == -1).all() and (d[:, 3:] == 2**31 - 1).all()
    small_d, small_ids = index.knn([1, 2], k=3)
    assert np.array_equal(d[:, :3], small_d) and np.array_equal(ids[:, :3], small_ids)


def test_a_256_bit_index_names_codes_that_are_not_codes() -> None:
    for bad in (5.0, None, "abc", [5, b"x" * 32]):
        with pytest.raises(ValueError, match="256-bit codes must be"):
            mmcore.HammingIndex(256).add(bad)


def test_two_threads_saving_one_path_do_not_collide(tmp_path: Path) -> None:
    """The temporary file was named by process only: one thread's rename took the other's."""
    import concurrent.futures as cf

    index = mmcore.HammingIndex()
    index.add(np.arange(50_000, dtype=np.uint64))
    path = tmp_path / "i.mmh"
    with cf.ThreadPoolExecutor(4) as ex:
        for _ in range(5):
            list(ex.map(lambda _: index.save(path), range(4)))  # re-raises any error
    assert len(mmcore.HammingIndex.load(path)) == 50_000
    assert [p.name for p in tmp_path.iterdir()] == ["i.mmh"]


# --------------------------------------------------------------------------------------------------
# Threads, pickle and copy


def as_index_codes(words64: np.ndarray, bits: int) -> np.ndarray:
    """(N, W) uint64 words as a HammingIndex takes them: uint64 (N,) or uint8 (N, 32)."""
    if bits == 64:
        return words64[:, 0].copy()
    return np.ascontiguousarray(words64).view(np.uint8).reshape(-1, 32)


@pytest.mark.parametrize("bits", [64, 256])
def test_searches_during_add_see_whole_calls(tmp_path: Path, bits: int) -> None:
    """A thread adds pairs of identical far-away codes while this one searches. The searches read
    the row count, the codes and the ids at different moments: cluster(index, r) labelled codes it
    had not joined (the second of a pair alone, in every call), save wrote a header for more codes
    than it wrote (20-50 % of the files would not load), knn / radius raised ValueError now and
    then (ids of another length than the codes). Every answer must now be the index's before or
    after whole adds: knn / radius do not move (every added code is >= 16 bits from every query),
    cluster keeps each pair together, a saved file and a pickle hold the index's first len(file)
    codes and ids."""
    import pickle
    import threading
    import time

    rng = np.random.default_rng(60 + bits)
    n, w = 20_000, bits // 64
    words = rng.integers(0, 2**64, size=(n, w), dtype=np.uint64)
    words[n - 10 :] = words[:10]
    words[n - 10 :, 0] ^= np.uint64(0b101)  # each query's nearest neighbour, 2 bits away
    # The queries clear the top 16 bits and the added codes set them: >= 16 bits apart. (Only
    # the queries: codes that all agree on 16 bits make multi-index hashing's join quadratic.)
    words[:10, 0] &= np.uint64(2**48 - 1)
    words[n - 10 :, 0] &= np.uint64(2**48 - 1)
    index = mmcore.HammingIndex(bits, threads=1)
    index.add(as_index_codes(words, bits), ids=np.arange(n) * 3 + 7)
    queries = as_index_codes(words[:10], bits)
    want_knn, want_radius = index.knn(queries, k=2), index.radius(queries, r=8)
    want_labels = mmcore.cluster(index, r=4).labels
    assert want_knn[1][:, 1].tolist() == (np.arange(n - 10, n) * 3 + 7).tolist()

    stop, adds, errors = threading.Event(), [0], []

    def grow() -> None:
        try:
            while not stop.is_set():
                far = rng.integers(0, 2**64, size=(1, w), dtype=np.uint64)
                far[:, 0] |= np.uint64(0xFFFF << 48)
                pair = as_index_codes(np.repeat(far, 2, axis=0), bits)
                index.add(pair, ids=[-2 - 2 * adds[0], -3 - 2 * adds[0]])
                adds[0] += 1
                time.sleep(0.0002)  # lets searches in between; without it the index grew 15k codes/s
        except BaseException as e:
            errors.append(e)

    worker = threading.Thread(target=grow)
    worker.start()
    try:
        for i in range(300):
            d, ids = index.knn(queries, k=2, threads=1)
            assert np.array_equal(d, want_knn[0]) and np.array_equal(ids, want_knn[1])
            got = index.radius(queries, r=8, threads=1)
            assert all(np.array_equal(a, b) for a, b in zip(got, want_radius, strict=True))
            if i % 10 == 0:
                labels = mmcore.cluster(index, r=4, threads=1).labels
                added = labels[n:]
                assert np.array_equal(labels[:n], want_labels) and len(added) % 2 == 0
                assert np.array_equal(added[0::2], added[1::2]), "a pair split: a code labelled, not joined"
                before = len(index)
                index.save(tmp_path / "a.idx")
                pickled = pickle.dumps(index)
                after = len(index)
                for again in (mmcore.HammingIndex.load(tmp_path / "a.idx"), pickle.loads(pickled)):
                    m = len(again)
                    assert before <= m <= after and (m - n) % 2 == 0
                    assert np.array_equal(again.codes, index.codes[:m])
                    assert np.array_equal(again.ids, index.ids[:m])
    finally:
        stop.set()
        worker.join()
    assert not errors and adds[0] > 10


def test_join_after_an_add_of_a_repeated_id_still_refuses() -> None:
    """join cached "the ids are unique" after computing it; an add of a repeated id that ran while
    join computed it reset the cache before join stored its stale True, and every later join
    answered (pairing the repeated id) instead of raising: 20 of 40 tries. Now add waits."""
    import contextlib
    import threading
    import time

    rng = np.random.default_rng(61)
    codes = rng.integers(0, 2**64, size=200_000, dtype=np.uint64)
    for _ in range(12):
        index = mmcore.HammingIndex(threads=1)
        index.add(codes, ids=np.arange(len(codes)))
        start = threading.Barrier(2)

        def add_repeated_id(index: mmcore.HammingIndex, start: threading.Barrier, delay: float) -> None:
            start.wait()
            time.sleep(delay)
            index.add(codes[:1] ^ np.uint64(1), ids=[5])  # code 0's neighbour, under id 5 again

        adder = threading.Thread(target=add_repeated_id, args=(index, start, rng.uniform(0, 0.01)))
        adder.start()
        start.wait()
        with contextlib.suppress(ValueError):  # the add came first
            index.join(r=2)
        adder.join()
        with pytest.raises(ValueError, match="join needs unique ids"):
            index.join(r=2)


def test_searches_share_the_lock_and_add_waits_for_them() -> None:
    """Searches run while another holds the lock shared; add waits for the searches under way
    and a search that comes while it waits queues behind it."""
    index = mmcore.HammingIndex()
    index.add(np.arange(100, dtype=np.uint64))

    def beside() -> None:
        assert index.knn([5], k=1)[1].tolist() == [[5]]

    got = check_lock_order(
        index,
        beside,
        lambda: index.add(np.arange(100, 200, dtype=np.uint64)),
        lambda: int(index.knn([150], k=1)[1][0, 0]),
    )
    assert len(index) == 200 and got == [150]


@pytest.mark.parametrize("bits", [64, 256])
@pytest.mark.parametrize("loaded", [False, True])
def test_pickle_and_copies_give_an_independent_index(tmp_path: Path, bits: int, loaded: bool) -> None:
    """Pickling, copy.copy and copy.deepcopy give an index that answers the same, with its own
    lock and writable buffers. copy.copy shared the buffer: an add to the copy and then one to the
    original wrote the same spare row, and the copy's last code became the original's. A pickle
    carried the spare capacity (1,024 rows for 11 codes)."""
    import copy
    import pickle

    rng = np.random.default_rng(62)
    base, ids = random_codes(rng, 11, bits), np.arange(11) + 100
    extra, other = random_codes(rng, 1, bits), random_codes(rng, 1, bits)

    def original() -> mmcore.HammingIndex:
        index = make_index(base, ids)
        if loaded:  # codes and ids mapped read-only from the file
            index.save(tmp_path / "a.idx")
            index = mmcore.HammingIndex.load(tmp_path / "a.idx")
            assert isinstance(index._buf, np.memmap)
        return index

    want = original().knn(base[:3], k=4)
    assert len(pickle.dumps(original())) < 11 * (bits // 8 + 8) + 1000
    for copier in (lambda i: pickle.loads(pickle.dumps(i)), copy.copy, copy.deepcopy):
        index = original()
        again = copier(index)
        assert again._lock is not index._lock and again.bits == bits and len(again) == 11
        assert np.array_equal(again.codes, index.codes) and np.array_equal(again.ids, index.ids)
        got = again.knn(base[:3], k=4)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        again.add(extra, ids=[7])
        index.add(other, ids=[8])
        assert again.ids[-1] == 7 and np.array_equal(again.codes[-1:], extra)
        assert index.ids[-1] == 8 and np.array_equal(index.codes[-1:], other)
        assert again.join(r=bits)[0].size == 66  # 12 codes, every pair
    empty = pickle.loads(pickle.dumps(mmcore.HammingIndex(bits)))
    empty.add(base)
    assert empty.knn(base[4:5], k=1)[1].tolist() == [[4]]


def test_increasing_ids_answer_as_the_kernel_with_the_ids_does(tmp_path: Path) -> None:
    """Ids that increase with the position are searched as positions and mapped (the kernel checked
    the whole id array on every call); the answers equal the kernel's with the ids, through adds
    that keep and break the order, save / load and pickling."""
    import pickle

    from mmcore import _core
    from mmcore.search import _as_words

    rng = np.random.default_rng(5)
    codes = rng.integers(0, 2**64, size=3000, dtype=np.uint64)
    queries = codes[:40] ^ np.uint64(0b1011)
    qw = _as_words(queries, 64, "q")
    index = mmcore.HammingIndex()

    def check(ix: mmcore.HammingIndex, sorted_: bool) -> None:
        assert ix._ids_sorted is sorted_
        words, ids = ix._words, ix.ids
        d, i = ix.knn(queries, k=25)
        want_d, want_i = _core.hamming_knn(words, np.ascontiguousarray(ids), qw, 25, 0)
        assert np.array_equal(d, want_d) and np.array_equal(i, want_i)
        got = ix.radius(queries, 30)
        want = _core.hamming_radius(words, np.ascontiguousarray(ids), qw, 30, 0, "auto")[:3]
        assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))

    index.add(codes[:1000])  # positions
    index.add(codes[1000:2000], ids=np.arange(1000, 2000) * 7)  # custom, still increasing
    check(index, True)
    index.add(codes[2000:2500], ids=np.arange(14_000, 14_500))
    check(index, True)
    index.save(tmp_path / "i.mmh")
    check(mmcore.HammingIndex.load(tmp_path / "i.mmh"), True)
    index.add(codes[2500:])  # default ids are the positions, below 14,499: searched with the ids
    check(index, False)
    check(pickle.loads(pickle.dumps(index)), False)
    index.save(tmp_path / "j.mmh")
    check(mmcore.HammingIndex.load(tmp_path / "j.mmh"), False)
    assert index.knn([int(codes[0])], k=len(index) + 3)[1][0, -3:].tolist() == [-1, -1, -1]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
@pytest.mark.parametrize("held", ["shared", "exclusive"])
def test_a_forked_child_inherits_no_hold_on_the_lock(held: str) -> None:
    """A child forked while another thread searches starts with the lock free (it inherited the
    search's hold and hung on its first add); one forked during a mutation raises, since its copy
    is half changed."""
    index = mmcore.HammingIndex()
    index.add(np.arange(100, dtype=np.uint64))
    lock = index._lock
    taken, done = threading.Event(), threading.Event()

    def holder() -> None:  # stands in for a search (or an add) under way in another thread
        (lock.acquire_shared if held == "shared" else lock.acquire_exclusive)()
        taken.set()
        done.wait()
        (lock.release_shared if held == "shared" else lock.release_exclusive)()

    t = threading.Thread(target=holder)
    t.start()
    taken.wait()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what an add and a search do, never hang the test
        signal.alarm(20)
        try:
            index.add(np.arange(100, 110, dtype=np.uint64))
            msg = f"ok {len(index)} {int(index.knn([105], k=1)[1][0, 0])}"
        except RuntimeError as e:
            msg = f"raised {e}"
        os.write(w, msg.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        got = f.read().decode()
    os.waitpid(pid, 0)
    done.set()
    t.join()
    if held == "shared":
        assert got == "ok 110 105"
    else:
        assert got.startswith("raised this index was being changed by another thread when the process forked")
    index.add(np.arange(100, 110, dtype=np.uint64))  # the parent's lock is as it was
    assert len(index) == 110
