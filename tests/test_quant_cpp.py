"""The quant kernels' C++ test (tests/cpp/test_quant.cpp): every compiled variant this CPU runs
against the scalar ref and a naive oracle; and the _core bindings against numpy."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cpp_test, run_with_backend

from mmcore import _core


def test_cpp_quant_variants_match_ref(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every variant against the ref; where AMX tiles run, again with the AVX-512 vector kernels for
    every batch (MMCORE_NO_AMX=1); where AVX-VNNI runs, again with the plain AVX2 int8 / int4
    kernels (MMCORE_NO_AVX_VNNI=1)."""
    monkeypatch.delenv("MMCORE_NO_AMX", raising=False)
    monkeypatch.delenv("MMCORE_NO_AVX_VNNI", raising=False)
    out = run_cpp_test(tmp_path, "test_quant")
    assert "ref: checked, ok" in out
    assert "PASS" in out
    for switch, line in (("MMCORE_NO_AMX", "amx"), ("MMCORE_NO_AVX_VNNI", "avx-vnni")):
        if f"{line}: used" not in out:
            continue
        env = dict(os.environ, **{switch: "1"})
        run = subprocess.run(
            [str(tmp_path / "test_quant")], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path
        )
        assert run.returncode == 0 and "PASS" in run.stdout, run.stdout[-3000:]
        assert f"{line}: not used" in run.stdout


def test_gpu_search_kernels_emulated_match_cpu(tmp_path: Path) -> None:
    """tests/cpp/test_search_gpu_emu.cpp: the GPU int8 top-k and Hamming kNN kernels' code and
    schedule (cuda/topk.cu, quant.cu, hamming.cu), run phase by phase on the CPU, give
    quant_score_int8's and hamming_knn's answers bit for bit (positions and ties included)."""
    out = run_cpp_test(tmp_path, "test_search_gpu_emu")
    assert "PASS" in out


def _topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Largest scores first, ties by smaller position, padded with (INT32_MIN, -1)."""
    q = scores.shape[0]
    s = np.full((q, k), np.iinfo(np.int32).min, np.int32)
    i = np.full((q, k), -1, np.int64)
    order = np.argsort(-scores.astype(np.int64), axis=1, kind="stable")[:, :k]
    s[:, : order.shape[1]] = np.take_along_axis(scores, order, axis=1)
    i[:, : order.shape[1]] = order
    return s, i


@pytest.mark.parametrize("d", [1, 31, 64, 100])
def test_score_int8_int4_match_numpy(d: int) -> None:
    rng = np.random.default_rng(d)
    codes = rng.integers(0, 256, (500, d), dtype=np.uint8)
    codes[::7] = codes[0]  # ties
    queries = rng.integers(-128, 128, (9, d), dtype=np.int8)
    want = queries.astype(np.int64) @ codes.astype(np.int64).T
    assert np.array_equal(_core.quant_dot_int8_all(codes, queries, 2), want)
    for k in (1, 10, 600):
        s, i = _core.quant_score_int8(codes, queries, k, 2)
        ws, wi = _topk(want.astype(np.int32), k)
        assert np.array_equal(s, ws) and np.array_equal(i, wi)
    levels = codes & 15
    packed = np.zeros((500, (d + 1) // 2), np.uint8)
    packed |= levels[:, 0::2]
    packed[:, : d // 2] |= levels[:, 1::2] << 4
    want4 = queries.astype(np.int64) @ levels.astype(np.int64).T
    s, i = _core.quant_score_int4(packed, queries, 7, 0)
    ws, wi = _topk(want4.astype(np.int32), 7)
    assert np.array_equal(s, ws) and np.array_equal(i, wi)


@pytest.mark.parametrize("k", [1, 7, 300, 5000, 20_000])
def test_topk_over_splits_with_ties_matches_numpy(k: int) -> None:
    """Many rows (several row splits per query batch) with heavy ties: the selection top-k and the
    merge across splits keep the k largest, ties by smaller position."""
    rng = np.random.default_rng(k)
    n = 20_000
    codes = rng.integers(0, 256, (n, 8), dtype=np.uint8)
    codes[rng.random(n) < 0.5] = codes[3]  # half the rows tie exactly
    queries = rng.integers(-128, 128, (5, 8), dtype=np.int8)
    want = (queries.astype(np.int64) @ codes.astype(np.int64).T).astype(np.int32)
    for threads in (1, 2):
        s, i = _core.quant_score_int8(codes, queries, k, threads)
        ws, wi = _topk(want, k)
        assert np.array_equal(s, ws) and np.array_equal(i, wi)
    words = rng.integers(0, 2**63, (n, 2), dtype=np.uint64)
    words[rng.random(n) < 0.5] = words[5]
    qw = rng.integers(0, 2**63, (5, 2), dtype=np.uint64)
    x = (qw[:, None, :] ^ words[None, :, :]).view(np.uint8)
    dist = np.unpackbits(x, axis=-1).reshape(5, n, -1).sum(-1).astype(np.int32)
    d, i = _core.quant_score_binary(words, qw, k, 2)
    ws, wi = _topk(-dist, k)
    assert np.array_equal(-d, ws) and np.array_equal(i, wi)


def test_encode_matches_numpy() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 130)).astype(np.float32)
    lo, hi = np.quantile(x, 0.01, axis=0), np.quantile(x, 0.99, axis=0)
    offset = lo.astype(np.float32)
    scale = ((hi - lo) / 255).astype(np.float32)
    want = np.clip(np.rint((x - offset) / scale), 0, 255).astype(np.uint8)
    assert np.array_equal(_core.quant_encode_int8(x, scale, offset, 2), want)
    scale4 = ((hi - lo) / 15).astype(np.float32)
    lv = np.clip(np.rint((x - offset) / scale4), 0, 15).astype(np.uint8)
    got4 = _core.quant_encode_int4(x, scale4, offset, 2)
    assert np.array_equal(got4 & 15, lv[:, 0::2]) and np.array_equal(got4 >> 4, lv[:, 1::2])
    xb = x[:, :128].copy()
    mean = xb.mean(axis=0).astype(np.float32)
    bits = np.packbits((xb - mean) > 0, axis=1, bitorder="little").view(np.uint64)
    assert np.array_equal(_core.quant_encode_binary(xb, mean, 1), bits)
    d = _core.hamming_knn(bits[:, :1].copy(), None, bits[:3, :1].copy(), 5, 1)
    s, i = _core.quant_score_binary(bits[:, :1].copy(), bits[:3, :1].copy(), 5, 1)
    assert np.array_equal(s, d[0]) and np.array_equal(i, d[1])


def test_reflection_matches_its_formula_in_numpy() -> None:
    """quant_reflect: the dot as 8 float64 lanes (dimension t in lane t % 8, each summed in order:
    cumsum), added in the fixed tree, the tail after; c = float32(-2 dot); x + c * v in float32.
    The encoders with ``reflect`` give the codes of that reflection."""
    rng = np.random.default_rng(7)
    for d in (1, 8, 13, 130):
        x = (rng.normal(size=(300, d)) * rng.uniform(0.1, 50, size=(300, 1))).astype(np.float32)
        v = rng.normal(size=d)
        v = (v / np.linalg.norm(v)).astype(np.float32)
        d8 = d // 8 * 8
        prod = x[:, :d8].astype(np.float64) * v[:d8].astype(np.float64)
        lanes = np.cumsum(prod.reshape(len(x), -1, 8), axis=1)[:, -1] if d8 else np.zeros((len(x), 8))
        tail = np.cumsum(x[:, d8:].astype(np.float64) * v[d8:], axis=1)[:, -1] if d > d8 else 0.0
        a = [lanes[:, i] for i in range(8)]
        dot = (((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))) + tail
        c = (-2.0 * dot).astype(np.float32)
        want = x + c[:, None] * v[None, :]
        got = _core.quant_reflect(x, v, 2)
        assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), want.view(np.uint32)), d
        scale, offset = np.full(d, 0.05, np.float32), np.full(d, -6.0, np.float32)
        for encode in (_core.quant_encode_int8, _core.quant_encode_int4):
            assert np.array_equal(encode(x, scale, offset, 2, v), encode(want, scale, offset, 2))
    with pytest.raises(ValueError, match=r"reflect\[1\] must be finite"):
        _core.quant_reflect(np.ones((2, 3), np.float32), np.array([0, np.inf, 0], np.float32), 1)
    with pytest.raises(ValueError, match="reflect has 2 columns"):
        _core.quant_encode_int8(np.ones((2, 3), np.float32), scale[:3], offset[:3], 1, np.ones(2, np.float32))
    huge = np.full((3, 4), 3e38, np.float32)
    huge[0] = 1.0
    with pytest.raises(ValueError, match="row 1 of x leaves float32's range"):
        _core.quant_encode_int8(huge, scale[:4], offset[:4], 1, np.full(4, 0.5, np.float32))


def test_bad_input_is_a_value_error() -> None:
    x = np.zeros((4, 8), np.float32)
    p = np.ones(8, np.float32)
    x[2, 5] = np.nan
    with pytest.raises(ValueError, match="row 2"):
        _core.quant_encode_int8(x, p, p, 1)
    with pytest.raises(ValueError, match="dtype float32"):
        _core.quant_encode_int8(x.astype(np.float64), p, p, 1)
    with pytest.raises(ValueError, match="multiple of 64"):
        _core.quant_encode_binary(np.zeros((2, 65), np.float32), np.zeros(65, np.float32), 1)
    codes = np.zeros((5, 8), np.uint8)
    with pytest.raises(ValueError, match="columns"):
        _core.quant_score_int8(codes, np.zeros((1, 9), np.int8), 1, 1)
    with pytest.raises(ValueError, match="dtype int8"):
        _core.quant_score_int8(codes, np.zeros((1, 8), np.uint8), 1, 1)
    with pytest.raises(ValueError, match="k must be"):
        _core.quant_score_int8(codes, np.zeros((1, 8), np.int8), 0, 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.quant_score_int8(np.zeros((5, 16), np.uint8)[:, ::2], np.zeros((1, 8), np.int8), 1, 1)
    s, i = _core.quant_score_binary(np.zeros((0, 2), np.uint64), np.zeros((1, 2), np.uint64), 3, 1)
    assert s.tolist() == [[np.iinfo(np.int32).max] * 3] and i.tolist() == [[-1] * 3]


def test_forced_backends_give_identical_scores(tmp_path: Path) -> None:
    """MMCORE_FORCE_BACKEND=ref, avx2 (with AVX-VNNI where the CPU has it) and the default variant
    give the same integers through _core, and the same reflections and reflected codes."""
    script = (
        "import numpy as np, hashlib\n"
        "from mmcore import _core\n"
        "rng = np.random.default_rng(1)\n"
        "c = rng.integers(0, 256, (3000, 77), dtype=np.uint8)\n"
        "q = rng.integers(-128, 128, (9, 77), dtype=np.int8)\n"
        "b = rng.integers(0, 2**63, (3000, 3), dtype=np.uint64)\n"
        "out = [_core.quant_dot_int8_all(c, q, 2), *_core.quant_score_int8(c, q, 20, 2),\n"
        "       *_core.quant_score_int4(c[:, :39].copy(), q, 20, 2),\n"
        "       *_core.quant_score_binary(b, b[:5].copy(), 20, 2)]\n"
        "x = rng.normal(size=(3000, 77)).astype(np.float32)\n"
        "v = rng.normal(size=77); v = (v / np.linalg.norm(v)).astype(np.float32)\n"
        "s, o = np.full(77, 0.01, np.float32), np.full(77, -1.2, np.float32)\n"
        "out += [_core.quant_reflect(x, v, 2), _core.quant_encode_int8(x, s, o, 2, v),\n"
        "        _core.quant_encode_int4(x, s, o, 2, v)]\n"
        "print(hashlib.sha256(b''.join(a.tobytes() for a in out)).hexdigest())\n"
        "print(_core.build_info()['backend'])\n"
    )
    outs = {backend: run_with_backend(script, backend, tmp_path).split() for backend in ("ref", "avx2", "")}
    assert outs["ref"][0] == outs[""][0] == outs["avx2"][0]
    assert outs["ref"][1] == "ref"
