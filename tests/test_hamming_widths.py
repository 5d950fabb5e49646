"""HammingIndex over codes of other lengths than 64 and 256 bits (1 to 65,536): kNN against faiss
IndexBinaryFlat, radius search, join and clusters against numpy brute force (every method),
imagehash's own distances between its hashes at other sizes, the input forms (ints, byte rows,
bytes, uint64 words, quantize_binary's codes), files, pickling and misuse."""

from __future__ import annotations

import functools
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mmcore

faiss = pytest.importorskip("faiss", reason="faiss-cpu (extra 'test') is the kNN oracle")
imagehash = pytest.importorskip("imagehash")
Image = pytest.importorskip("PIL.Image")

METHODS = ("auto", "brute", "mih")
#: Lengths that take the any-width kernel: under a word, unaligned, 2, 3, 5, 8, 12, 16 and 33 words.
WIDTHS = [8, 42, 100, 128, 144, 192, 320, 512, 768, 1024, 2100]


def row_bytes(bits: int) -> int:
    return (bits + 7) // 8


def random_rows(rng: np.random.Generator, n: int, bits: int) -> np.ndarray:
    """n random codes of `bits` bits as big-endian rows (N, ceil(bits / 8)) uint8."""
    rows = rng.integers(0, 256, size=(n, row_bytes(bits)), dtype=np.uint8)
    if bits % 8:
        rows[:, 0] &= (1 << (bits % 8)) - 1
    return rows


def clustered_rows(rng: np.random.Generator, n: int, bits: int, max_flips: int) -> np.ndarray:
    """Codes in tight groups (near-duplicate hashes): centres plus 0..max_flips flipped bits."""
    centres = random_rows(rng, max(1, n // 6), bits)
    rows = centres[rng.integers(0, len(centres), size=n)].copy()
    nb = row_bytes(bits)
    for row in rows:
        for bit in rng.choice(bits, size=int(rng.integers(0, max_flips + 1)), replace=False):
            row[nb - 1 - bit // 8] ^= 1 << (bit % 8)  # bit i of the value, big-endian row
    return rows


def as_input(rows: np.ndarray, bits: int) -> np.ndarray:
    """What the index takes: uint64 values up to 64 bits, the rows above."""
    if bits > 64:
        return rows
    padded = np.zeros((len(rows), 8), dtype=np.uint8)
    padded[:, 8 - rows.shape[1] :] = rows
    return padded.view(">u8")[:, 0].astype(np.uint64)


def dist_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All distances between two sets of rows, numpy brute force."""
    ua, ub = np.unpackbits(a, axis=1), np.unpackbits(b, axis=1)
    out = np.empty((len(a), len(b)), dtype=np.int32)
    for s in range(0, len(a), 64):
        out[s : s + 64] = (ua[s : s + 64, None, :] != ub[None, :, :]).sum(-1)
    return out


def index_of(rows: np.ndarray, bits: int, ids: Any = None) -> mmcore.HammingIndex:
    index = mmcore.HammingIndex(bits)
    index.add(as_input(rows, bits), ids)
    return index


@pytest.mark.parametrize("bits", WIDTHS)
@pytest.mark.parametrize("n", [1, 300, 3000])
def test_knn_equals_faiss(rng: np.random.Generator, bits: int, n: int) -> None:
    base = clustered_rows(rng, n, bits, 6) if n > 1 else random_rows(rng, n, bits)
    queries = np.concatenate([base[: min(n, 20)], random_rows(rng, 5, bits)])
    index = index_of(base, bits)
    ref = faiss.IndexBinaryFlat(8 * row_bytes(bits))  # the rows; the spare top bits are 0 in all
    ref.add(base)
    for k in (1, 10, 64):
        d, ids = index.knn(as_input(queries, bits), k)
        fd, fi = ref.search(queries, k)
        np.testing.assert_array_equal(d, fd, err_msg=f"bits={bits} k={k}")
        np.testing.assert_array_equal(ids, fi, err_msg=f"bits={bits} k={k}")
    assert (d[:, 0][: min(n, 20)] == 0).all()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bits", [42, 144, 192, 768, 1024])
def test_radius_join_and_clusters_equal_brute_force(rng: np.random.Generator, bits: int, method: Any) -> None:
    n = 500
    base = clustered_rows(rng, n, bits, max(2, bits // 16))
    base[7::50] = base[3]  # identical codes
    ids = (rng.permutation(n) * 3 - 100).astype(np.int64)  # unique, not increasing
    index = index_of(base, bits, ids)
    queries = np.concatenate([clustered_rows(rng, 20, bits, 3), base[:10]])
    dq, dd = dist_matrix(queries, base), dist_matrix(base, base)
    radii = [0, max(1, bits // 32), bits // 8] + ([bits // 3, bits, bits + 50] if method != "mih" else [])
    for r in radii:
        lims, d, got = index.radius(as_input(queries, bits), r, method=method)
        for q in range(len(queries)):
            want = sorted((int(dq[q, j]), int(ids[j])) for j in np.flatnonzero(dq[q] <= r))
            have = list(
                zip(d[lims[q] : lims[q + 1]].tolist(), got[lims[q] : lims[q + 1]].tolist(), strict=True)
            )
            assert have == want, (bits, r, method, q)
        a, b, pd = index.join(r, method=method)
        ia, ib = np.nonzero(np.triu(dd <= r, 1))
        lo, hi = np.minimum(ids[ia], ids[ib]), np.maximum(ids[ia], ids[ib])
        want_pairs = sorted(zip(lo.tolist(), hi.tolist(), dd[ia, ib].tolist(), strict=True))
        assert list(zip(a.tolist(), b.tolist(), pd.tolist(), strict=True)) == want_pairs, (bits, r, method)
        # clusters: the components of the pairs within r (by position)
        res = mmcore.cluster(index, r, method=method)
        comp = mmcore.cluster((ia, ib), n=n)
        np.testing.assert_array_equal(res.labels, comp.labels)
    assert index.last_stats is not None


@functools.cache
def photos() -> list[Any]:
    """The demo photos and near copies of them (smaller, darker, re-encoded as JPEG), so that the
    join at a small radius has pairs to find."""
    out = []
    for src in mmcore.demo_images():
        if mmcore.image_info(src)["status"] != mmcore.Status.OK:
            continue
        im = Image.open(src).convert("RGB")
        im.thumbnail((640, 640))
        out.append(im)
        out.append(im.resize((im.width // 2, im.height // 2)))
        out.append(Image.eval(im, lambda v: v * 9 // 10))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=60)
        out.append(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    assert len(out) >= 12
    return out


#: (kind, sizes, bits): imagehash hashes of other sizes.
SIZED = [
    ("phash", {"hash_size": 12}, 144),
    ("phash", {"hash_size": 32}, 1024),
    ("dhash", {"hash_size": 6}, 36),
    ("whash", {"hash_size": 16}, 256),
    ("colorhash", {"binbits": 8}, 112),
]


def oracle_hash(kind: str, im: Any, sizes: dict[str, int]) -> Any:
    return getattr(imagehash, kind)(im, **sizes)


@pytest.mark.parametrize(("kind", "sizes", "bits"), SIZED, ids=[f"{k}-{b}" for k, _, b in SIZED])
def test_distances_are_imagehash_distances(kind: Any, sizes: Any, bits: int) -> None:
    """hash_batch's rows (and the single function's ints) in an index of their length: every pair's
    distance (join at r = bits), each photo's nearest neighbours and the pairs within a small radius
    are imagehash's ``h1 - h2``."""
    ims = photos()
    assert mmcore.hash_bits(kind, **{k: v for k, v in sizes.items() if k != "highfreq_factor"}) == bits
    want = [oracle_hash(kind, im, sizes) for im in ims]
    r = mmcore.hash_batch([np.asarray(im) for im in ims], kinds=(kind,), **sizes)
    assert r.ok.all(), r.errors
    assert r.hex(kind) == [str(h) for h in want]
    index = mmcore.HammingIndex(bits)
    index.add(r[kind])
    n = len(ims)
    a, b, d = index.join(bits)
    assert len(a) == n * (n - 1) // 2
    for i, j, dist in zip(a.tolist(), b.tolist(), d.tolist(), strict=True):
        assert dist == want[i] - want[j], (kind, i, j)
    ints = mmcore.HammingIndex(bits)
    fn = getattr(mmcore, kind)
    ints.add([fn(im, **sizes) for im in ims[:6]])  # ints: the same codes as the rows
    np.testing.assert_array_equal(ints.codes, index.codes[:6])
    dk, ik = index.knn(r[kind][:6], 3)
    for q in range(6):
        ref = sorted((want[q] - want[j], j) for j in range(n))[:3]
        assert list(zip(dk[q].tolist(), ik[q].tolist(), strict=True)) == ref
    small = max(2, bits // 10)
    for method in METHODS:
        pa, pb, pd = index.join(small, method=method)  # type: ignore[arg-type]
        pairs = [
            (i, j, want[i] - want[j]) for i in range(n) for j in range(i + 1, n) if want[i] - want[j] <= small
        ]
        assert list(zip(pa.tolist(), pb.tolist(), pd.tolist(), strict=True)) == pairs, method
    assert len(pairs) >= 1  # the near copies


def test_input_forms_give_the_same_codes(rng: np.random.Generator) -> None:
    for bits in (100, 144, 192, 768):
        rows = random_rows(rng, 40, bits)
        ints = [int.from_bytes(row.tobytes(), "big") for row in rows]
        forms: list[Any] = [rows, ints, [row.tobytes() for row in rows]]
        if bits % 64 == 0:  # whole words: uint64 (N, bits / 64), the same bytes
            forms.append(rows.view(np.uint64))
        answers = []
        for form in forms:
            index = mmcore.HammingIndex(bits)
            index.add(form)
            np.testing.assert_array_equal(index.codes, rows)
            assert index.codes.shape == (40, row_bytes(bits)) and not index.codes.flags.writeable
            answers.append(index.knn(form, 4))
        for d, ids in answers[1:]:
            np.testing.assert_array_equal(d, answers[0][0])
            np.testing.assert_array_equal(ids, answers[0][1])
        one = mmcore.HammingIndex(bits)
        one.add(ints[5])  # a single int, a single row, a single bytes
        one.add(rows[6])
        one.add(rows[7].tobytes())
        np.testing.assert_array_equal(one.codes, rows[5:8])
    small = mmcore.HammingIndex(42)
    small.add([3, 2**41, 0])
    assert small.codes.dtype == np.uint64 and small.codes.tolist() == [3, 2**41, 0]
    assert small.knn([0], 3)[0].tolist() == [[0, 1, 2]]
    _, d, ids = small.radius([2**42 - 1], 42)
    assert d.tolist() == [40, 41, 42] and ids.tolist() == [0, 1, 2]


def test_binary_embeddings_as_quantize_binary_codes(rng: np.random.Generator) -> None:
    """quantize_binary's uint64 (N, D / 64) codes in a D-bit index: score_binary's answer, and the
    radius search and join that score_binary does not have."""
    x = rng.standard_normal((2000, 768)).astype(np.float32)
    x[1000:1100] = x[:100] + 0.05 * rng.standard_normal((100, 768)).astype(np.float32)
    params = mmcore.QuantParams.fit(x, "binary")
    codes = mmcore.quantize_binary(x, params)
    index = mmcore.HammingIndex(768)
    index.add(codes)
    d, ids = index.knn(codes[:50], 10)
    sd, sids = mmcore.score_binary(codes, x[:50], params, k=10)
    np.testing.assert_array_equal(d, sd.astype(np.int32))
    np.testing.assert_array_equal(ids, sids)
    a, b, pd = index.join(100)
    assert {(i, i + 1000) for i in range(100)} <= set(zip(a.tolist(), b.tolist(), strict=True))
    full = dist_matrix(codes.view(np.uint8), codes.view(np.uint8))
    ia, ib = np.nonzero(np.triu(full <= 100, 1))
    np.testing.assert_array_equal(a, ia)
    np.testing.assert_array_equal(b, ib)
    np.testing.assert_array_equal(pd, full[ia, ib])


@pytest.mark.parametrize("bits", [42, 144, 1024])
@pytest.mark.parametrize("mmap", [True, False])
def test_files_and_pickles_round_trip(
    tmp_path: Path, rng: np.random.Generator, bits: int, mmap: bool
) -> None:
    rows = clustered_rows(rng, 200, bits, 4)
    ids = rng.permutation(1000)[:200].astype(np.int64)
    index = index_of(rows, bits, ids)
    path = tmp_path / "w.idx"
    index.save(path)
    words = (bits + 63) // 64
    assert path.stat().st_size == 64 + 200 * 8 * words + 200 * 8  # rows padded to whole words
    again = mmcore.HammingIndex.load(path, mmap=mmap)
    assert again.bits == bits and len(again) == 200 and f"bits={bits}" in repr(again)
    np.testing.assert_array_equal(again.codes, index.codes)
    np.testing.assert_array_equal(again.ids, ids)
    q = as_input(rows[:15], bits)
    for other in (again, pickle.loads(pickle.dumps(again))):
        for got, want in zip(other.knn(q, 5), index.knn(q, 5), strict=True):
            np.testing.assert_array_equal(got, want)
        for got, want in zip(other.join(bits // 8), index.join(bits // 8), strict=True):
            np.testing.assert_array_equal(got, want)
    again.add(as_input(rows[:3], bits), ids=[5000, 5001, 5002])  # a mapped index copied, then grown
    assert len(again) == 203 and again.knn(q[:1], 1)[0].tolist() == [[0]]
    assert index.memory_bytes() == 200 * (8 * words + 8)


def test_misuse_names_the_width(rng: np.random.Generator) -> None:
    i42, i144, i256 = mmcore.HammingIndex(42), mmcore.HammingIndex(144), mmcore.HammingIndex(256)
    bad: list[tuple[Any, str]] = [
        (lambda: mmcore.HammingIndex(0), r"bits must be an int in 1\.\.65536"),
        (lambda: mmcore.HammingIndex(-64), r"bits must be an int in 1\.\.65536"),
        (lambda: mmcore.HammingIndex(65537), r"bits must be an int in 1\.\.65536"),
        (lambda: mmcore.HammingIndex(144.0), "bits must be an int"),  # type: ignore[arg-type]
        (lambda: i42.add([2**42]), "wider than 42 bits"),
        (lambda: i42.add(np.array([1, 2**50], np.uint64)), "wider than 42 bits"),
        (lambda: i42.add([-1]), "wider than 42 bits"),
        (lambda: i42.add(np.zeros((2, 18), np.uint8)), r"bits=144"),
        (lambda: i144.add(np.zeros((2, 32), np.uint8)), r"shape \(N, 18\) .*bits=256"),
        (lambda: i144.add(np.zeros((2, 3), np.uint64)), r"\(N, 18\) uint8 for a 144-bit index"),
        (lambda: i144.add(np.zeros(2, np.uint64)), r"bits=64"),
        (lambda: i144.add([2**144]), r"ints in \[0, 2\*\*144\)"),
        (lambda: i144.add([-1]), r"ints in \[0, 2\*\*144\)"),
        (lambda: i144.add([b"x" * 17]), r"18-byte strings"),
        (lambda: i144.add([1, b"x" * 18]), r"18-byte strings"),  # type: ignore[arg-type]
        (lambda: i144.add("abc"), r"144-bit codes must be"),  # type: ignore[arg-type]
        (lambda: i256.add(np.zeros((2, 3), np.uint64)), r"or uint64 \(N, 4\)"),
        (lambda: mmcore.HammingIndex(100).add(np.full((1, 13), 255, np.uint8)), "wider than 100 bits"),
        (lambda: i144.knn(np.zeros((1, 16), np.uint8), 1), r"shape \(N, 18\)"),
        (lambda: i144.radius([2**150], 3), r"ints in \[0, 2\*\*144\)"),
    ]
    for call, msg in bad:
        with pytest.raises(ValueError, match=msg):
            call()
    assert len(i42) == len(i144) == len(i256) == 0  # failed adds changed nothing
    # A radius past the length finds what the length does.
    i144.add(random_rows(rng, 30, 144))
    assert len(i144.join(144)[0]) == len(i144.join(10**9)[0]) == 30 * 29 // 2
