"""mmcore.gpu: the Python side of the GPU kernels.

Without a device (CI, the dev machines) these tests check what runs on the CPU: why the GPU is
unavailable and the clear error a Context gives, the nvJPEG decode plan (mmcore's own header parse)
against the CPU decoder on the corpus, and how device arrays become kernel descriptors. The tests
marked ``gpu`` run where a device, a CUDA build and cupy are present, and compare every GPU result
with the CPU's bit for bit (nvJPEG pixels: by PSNR, they are its own IDCT).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import corpus_files, run_cpp_test

import mmcore
import mmcore.gpu as mg

needs_gpu = pytest.mark.skipif(not mg.available(), reason=f"no GPU path here: {mg.unavailable_reason()}")
needs_cuda_build = pytest.mark.skipif(
    not hasattr(mmcore._core, "gpu_decode_plan"), reason="mmcore was built without CUDA"
)


def _nvjpeg_wheel() -> str | None:
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("nvidia")
    for root in list(spec.submodule_search_locations or []) if spec is not None else []:
        lib = Path(root) / "cu13" / "lib" / "libnvjpeg.so.13"
        if lib.is_file():
            return str(lib)
    return None


@pytest.mark.parametrize("env", [None, "/elsewhere/libnvjpeg.so.13"])
def test_nvjpeg_wheel_library_found_by_soname(env: str | None, tmp_path: Any) -> None:
    """The nvidia-nvjpeg wheel keeps libnvjpeg.so.13 off the loader's path: Context.decode loads it
    first, so that the decoder's dlopen("libnvjpeg.so.13") finds it (no driver needed to load it).
    $MMCORE_NVJPEG, when set, is left to the decoder."""
    import os
    import subprocess
    import sys

    wheel = _nvjpeg_wheel()
    if wheel is None:
        pytest.skip("the nvidia-nvjpeg wheel is not installed here (it comes with DALI / mmcore[gpu])")
    script = (
        "import ctypes, mmcore.gpu as mg\n"
        "mg._load_nvjpeg()\n"
        "maps = [l.split()[-1] for l in open('/proc/self/maps') if 'libnvjpeg' in l]\n"
        "print(maps[0] if maps else 'none')\n"
    )
    environ = {k: v for k, v in os.environ.items() if k not in ("MMCORE_NVJPEG", "LD_LIBRARY_PATH")}
    if env is not None:
        environ["MMCORE_NVJPEG"] = env
    out = subprocess.run(
        [sys.executable, "-c", script], env=environ, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    got = out.stdout.strip()
    if env is None:
        assert os.path.realpath(got) == os.path.realpath(wheel)
    else:
        assert got == "none"


def test_unavailable_gives_reason_and_context_refuses() -> None:
    reason = mg.unavailable_reason()
    if reason is None:
        pytest.skip("a GPU is available here")
    assert not mg.available()
    assert reason
    expected: type[Exception] = ImportError if reason.startswith("cupy") else mmcore.DeviceError
    with pytest.raises(expected) as e:
        mg.Context()
    if isinstance(e.value, mmcore.DeviceError):
        assert e.value.status == mmcore.Status.DEVICE
        assert e.value.message == reason


@needs_cuda_build
def test_decode_plan_matches_cpu_geometry_and_statuses() -> None:
    files = corpus_files("jpeg")[:60] + corpus_files("corrupt")[:80] + corpus_files("png")[:5]
    blobs = [f.read_bytes() for f in files]
    descs, status, errors, total = mg.plan_decode(blobs)
    assert descs.shape == (len(files), 5) and status.shape == (len(files),) and len(errors) == len(files)
    end = 0
    checked = 0
    for f, blob, (off, stride, w, h, c), st, err in zip(
        files, blobs, descs.tolist(), status, errors, strict=True
    ):
        s = mmcore.Status(int(st))
        if blob[:3] != b"\xff\xd8\xff":
            assert s == mmcore.Status.UNSUPPORTED and "JPEG" in err, f.name
            continue
        if not s.ok:
            assert err, f.name
            # A header the plan refuses is refused by the CPU decoder too.
            with pytest.raises(mmcore.DecodeError):
                mmcore.decode(blob, exif_orientation=False)
            continue
        assert off % 256 == 0 and off >= end and stride == w * c and c == 3, f.name
        end = off + stride * h
        try:
            img = mmcore.decode(blob, exif_orientation=False)
        except mmcore.DecodeError:
            continue  # damaged after the header: nvJPEG decides (bench/gpu_check.sh checks it)
        assert img.shape[:2] == (h, w), f.name
        checked += 1
    assert total >= end
    assert checked >= 50


class _FakeDeviceArray:
    """Just the __cuda_array_interface__ of a device array (no device needed to describe it)."""

    def __init__(
        self, ptr: int, shape: tuple[int, ...], strides: tuple[int, ...] | None, typestr: str = "|u1"
    ):
        self.__cuda_array_interface__ = {
            "shape": shape,
            "strides": strides,
            "typestr": typestr,
            "data": (ptr, False),
            "version": 3,
        }
        self.shape = shape


def test_describe_device_images() -> None:
    images: list[Any] = [
        _FakeDeviceArray(10_000, (4, 5, 3), None),  # contiguous RGB
        _FakeDeviceArray(4_096, (2, 3), (64, 1)),  # grey rows 64 bytes apart (a crop of a wider image)
        _FakeDeviceArray(50_000, (3, 2, 4), (16, 4, 1)),  # RGBA, padded rows
    ]
    d = mg._describe(images)
    assert d.base == 4_096
    assert d.descs.tolist() == [[5_904, 15, 5, 4, 3], [0, 64, 3, 2, 1], [45_904, 16, 2, 3, 4]]
    assert d.nbytes == 50_000 + 2 * 16 + 8 - 4_096


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (_FakeDeviceArray(0, (4, 5, 3), None, "<u2"), "uint8"),
        (_FakeDeviceArray(0, (4, 5, 5), None), "HxWx3"),
        (_FakeDeviceArray(0, (4, 5, 3), (15, 1, 5)), "contiguous"),
        (_FakeDeviceArray(0, (4, 5, 3), (-15, 3, 1)), "contiguous"),
        (_FakeDeviceArray(0, (0, 5), None), "empty"),
    ],
)
def test_describe_refuses_unusable_arrays(array: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mg._describe([array])


def test_describe_batch_builds_every_descriptor_at_once() -> None:
    d = mg._describe_batch(_FakeDeviceArray(8_192, (3, 4, 5, 3), None))  # contiguous RGB batch
    assert d.base == 8_192
    assert d.descs.tolist() == [[0, 15, 5, 4, 3], [60, 15, 5, 4, 3], [120, 15, 5, 4, 3]]
    assert d.nbytes == 3 * 60
    # A crop of a wider batch: rows 64 bytes apart, images 1000 bytes apart, grey.
    d = mg._describe_batch(_FakeDeviceArray(4_096, (2, 3, 7, 1), (1_000, 64, 1, 1)))
    assert d.descs.tolist() == [[0, 64, 7, 3, 1], [1_000, 64, 7, 3, 1]]
    assert d.nbytes == 1_000 + 2 * 64 + 7
    empty = mg._describe_batch(_FakeDeviceArray(0, (0, 4, 5, 3), None))
    assert empty.descs.shape == (0, 5) and empty.nbytes == 0


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (_FakeDeviceArray(0, (2, 4, 5, 3), None, "<u2"), "uint8"),
        (_FakeDeviceArray(0, (2, 4, 5, 2), None), "C = 1, 3 or 4"),
        (_FakeDeviceArray(0, (2, 4, 5, 3), (60, 15, 1, 5)), "contiguous"),
        (_FakeDeviceArray(0, (2, 4, 5, 3), (60, 10, 3, 1)), "contiguous"),
        (_FakeDeviceArray(0, (2, 4, 5, 3), (-60, 15, 3, 1)), "increasing order"),
        (_FakeDeviceArray(0, (2, 0, 5, 3), None), "empty"),
    ],
)
def test_describe_batch_refuses_unusable_batches(array: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mg._describe_batch(array)


def test_describe_images_checks_the_batch_shape() -> None:
    with pytest.raises(ValueError, match=r"\(N, H, W, C\) batch"):
        mg._describe_images(_FakeDeviceArray(0, (4, 5, 3), None))


def test_cpp_gpu_decode_finds_the_images_that_fail_a_hardware_batch(tmp_path: Path) -> None:
    """The GPU decode's halving search for the bitstreams that fail a hardware batch alone
    (cpp/src/batch_split_internal.h), against a fake batch call: no GPU needed."""
    assert "PASS" in run_cpp_test(tmp_path, "test_batch_split")


def test_describe_refuses_host_objects() -> None:
    with pytest.raises(TypeError, match="device array"):
        mg._describe([object()])


def test_gpu_kinds_refuse_cpu_only_kinds() -> None:
    assert mg._kinds_mask(("phash", "pdq")) == (1 << mmcore.hashing.KINDS.index("phash"), True)
    with pytest.raises(ValueError, match="not 'whash'"):
        mg._kinds_mask(("phash", "whash"))
    with pytest.raises(ValueError, match="at least one"):
        mg._kinds_mask(())


# --- on a GPU ----------------------------------------------------------------------------------


@pytest.mark.gpu
@needs_gpu
def test_gpu_hashes_equal_cpu_exact_mode() -> None:
    arrays = [mmcore.decode(f.read_bytes()) for f in corpus_files("jpeg")[:40]]
    arrays += [np.ascontiguousarray(a[..., 0]) for a in arrays[:10]]  # grey
    kinds = ("ahash", "dhash", "dhash_vertical", "phash", "phash_simple", "pdq")
    want = mmcore.hash_batch(arrays, kinds=kinds, mode="exact")
    got = mg.Context().hash(arrays, kinds)
    assert (got.status == 0).all()
    for k in kinds[:5]:
        np.testing.assert_array_equal(
            got[k].get().view(np.int64), np.asarray(want[k]).view(np.int64), err_msg=k
        )
    np.testing.assert_array_equal(got["pdq"].get(), want["pdq"])
    np.testing.assert_array_equal(got["pdq_quality"].get(), want["pdq_quality"])


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("filter", sorted(mmcore.image.FILTERS))
def test_gpu_resize_equals_cpu(filter: str) -> None:
    arrays = [mmcore.decode(f.read_bytes()) for f in corpus_files("jpeg")[:12]]
    got = mg.Context().resize(arrays, (97, 61), filter=filter)
    for a, g in zip(arrays, got, strict=True):
        np.testing.assert_array_equal(g.get(), mmcore.resize(a, (97, 61), filter=filter))


@pytest.mark.gpu
@needs_gpu
def test_gpu_search_equals_cpu() -> None:
    import cupy as cp

    rng = np.random.default_rng(7)
    x = rng.standard_normal((5000, 96)).astype(np.float32)
    params = mmcore.QuantParams.fit(x, "int8")
    codes = mmcore.quantize_int8(x, params)
    queries = x[:9] + 0.01
    want_s, want_p = mmcore.score_int8(codes, queries, params, k=20)
    got_s, got_p = mg.Context().score_int8(cp.asarray(codes), queries, params, 20)
    np.testing.assert_array_equal(got_p.get(), want_p)
    np.testing.assert_array_equal(got_s.get(), want_s)
    pdq = rng.integers(0, 256, size=(20000, 32), dtype=np.uint8)
    pdq[1::7] = pdq[0]  # ties: equal codes, decided by position
    index = mmcore.HammingIndex(bits=256)
    index.add(pdq)
    want_d, want_i = index.knn(pdq[:5], k=50)
    got_d, got_i = mg.Context().hamming_knn(cp.asarray(pdq), cp.asarray(pdq[:5]), 50)
    np.testing.assert_array_equal(got_d.get(), want_d)
    np.testing.assert_array_equal(got_i.get(), want_i)
    words = rng.integers(0, 2**63, size=(30000,), dtype=np.uint64)
    index64 = mmcore.HammingIndex(bits=64)
    index64.add(words)
    want_d, want_i = index64.knn(words[:7], k=1024)
    got_d, got_i = mg.Context().hamming_knn(cp.asarray(words[:, None]), cp.asarray(words[:7, None]), 1024)
    np.testing.assert_array_equal(got_d.get(), want_d)
    np.testing.assert_array_equal(got_i.get(), want_i)
    want_a, want_b, want_dd = index.join(r=31)
    for method in ("auto", "brute", "mih"):
        got = mg.Context().hamming_join(cp.asarray(pdq), 31, method=method)
        for g, w in zip(got, (want_a, want_b, want_dd), strict=True):
            np.testing.assert_array_equal(g.get(), w)
    want_r = index.radius(pdq[:40], r=31)
    for method in ("brute", "mih"):
        got = mg.Context().hamming_radius(cp.asarray(pdq), cp.asarray(pdq[:40]), 31, method=method)
        for g, w in zip(got, want_r, strict=True):
            np.testing.assert_array_equal(g.get(), w)
    want64 = index64.join(r=12)
    for method in ("brute", "mih"):
        got = mg.Context().hamming_join(cp.asarray(words[:, None]), 12, method=method)
        for g, w in zip(got, want64, strict=True):
            np.testing.assert_array_equal(g.get(), w)


@pytest.mark.gpu
@needs_gpu
def test_gpu_decode_statuses_and_pixels() -> None:
    files = corpus_files("jpeg")[:30] + corpus_files("corrupt")[:30]
    blobs = [f.read_bytes() for f in files]
    res = mg.Context().decode(blobs)
    assert len(res.images) == len(files)
    for blob, img, st, err in zip(blobs, res.images, res.status, res.errors, strict=True):
        if not mmcore.Status(int(st)).ok:
            assert img is None and err
            continue
        try:
            cpu = mmcore.decode(blob, exif_orientation=False)
        except mmcore.DecodeError:
            continue
        g = img.get().astype(np.float64)
        mse = float(np.mean((g - cpu.astype(np.float64)) ** 2))
        assert mse == 0 or 10 * np.log10(255**2 / mse) >= 30


def test_resize_sizes_one_or_per_image() -> None:
    assert mg._sizes((5, 7), 3) == [(5, 7)] * 3
    assert mg._sizes([(5, 7), (1, 2)], 2) == [(5, 7), (1, 2)]
    for bad in ((0, 7), [(5, 7), (1, 2)], [(5, 7, 1)]):
        with pytest.raises(ValueError, match="width, height"):
            mg._sizes(bad, 3)


# --- the Python glue, with a host stand-in for the device (tests/gpu_standin.py) ------------------


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Any:
    """mmcore.gpu over FakeCupy and FakeGpuContext: numpy memory behind device-style pointers."""
    import threading

    import gpu_standin

    fake = gpu_standin.FakeCupy()
    monkeypatch.setattr(mg, "_local", threading.local())  # no Context cached by another test
    monkeypatch.setattr(mg, "_cupy", lambda: fake)
    monkeypatch.setattr(mg, "unavailable_reason", lambda: None)
    monkeypatch.setattr(mmcore._core, "GpuContext", gpu_standin.FakeGpuContext, raising=False)
    return fake


def _photos(n: int) -> list[np.ndarray]:
    return [mmcore.decode(f.read_bytes()) for f in corpus_files("jpeg")[:n]]


def test_glue_hash_lists_batches_and_strided_crops(standin: Any) -> None:
    ctx = mg.Context()
    photos = _photos(6)
    grey = np.ascontiguousarray(photos[0][..., 1])
    crop = standin.asarray(photos[1])[5:90, 7:120]  # rows 3 * width apart: a strided view, no copy
    images = [*photos, grey, crop]
    kinds = ("ahash", "phash", "dhash_vertical", "pdq")
    got = ctx.hash(images, kinds)
    want = mmcore.hash_batch([np.ascontiguousarray(np.asarray(a)) for a in images], kinds=kinds, mode="exact")
    for k in ("ahash", "phash", "dhash_vertical"):
        np.testing.assert_array_equal(
            got[k].get().view(np.int64), np.asarray(want[k]).view(np.int64), err_msg=k
        )
    np.testing.assert_array_equal(got["pdq"].get(), want["pdq"])
    np.testing.assert_array_equal(got["pdq_quality"].get(), want["pdq_quality"])
    assert set(got.columns) == {"ahash", "phash", "dhash_vertical", "pdq", "pdq_quality"}
    batch = np.stack([mmcore.resize(p, (64, 48)) for p in photos])
    got_b = ctx.hash(standin.asarray(batch), ("dhash",))
    want_b = mmcore.hash_batch(list(batch), kinds=("dhash",), mode="exact")
    np.testing.assert_array_equal(
        got_b["dhash"].get().view(np.int64), np.asarray(want_b["dhash"]).view(np.int64)
    )
    # A strided crop of the batch (rows and images apart, no copy) hashes as its copies do.
    crop_b = standin.asarray(batch)[1:, 3:40, 5:60]
    got_c = ctx.hash(crop_b, ("phash", "pdq"))
    want_c = mmcore.hash_batch(
        [np.ascontiguousarray(a) for a in batch[1:, 3:40, 5:60]], kinds=("phash", "pdq"), mode="exact"
    )
    np.testing.assert_array_equal(
        got_c["phash"].get().view(np.int64), np.asarray(want_c["phash"]).view(np.int64)
    )
    np.testing.assert_array_equal(got_c["pdq"].get(), want_c["pdq"])


def test_glue_resize_one_size_and_per_image(standin: Any) -> None:
    ctx = mg.Context()
    photos = _photos(4)
    out = ctx.resize(photos, (40, 30), filter="bicubic")
    assert out.shape == (4, 30, 40, 3)
    for p, o in zip(photos, out, strict=True):
        np.testing.assert_array_equal(o.get(), mmcore.resize(p, (40, 30), filter="bicubic"))
    sizes = [(17, 9), (30, 30), (5, 41), (64, 2)]
    outs = ctx.resize(photos, sizes)
    for p, o, s in zip(photos, outs, sizes, strict=True):
        np.testing.assert_array_equal(o.get(), mmcore.resize(p, s))


def test_glue_search_equals_cpu(standin: Any) -> None:
    ctx = mg.Context()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((700, 40)).astype(np.float32)
    params = mmcore.QuantParams.fit(x, "int8")
    codes = mmcore.quantize_int8(x, params)
    want_s, want_p = mmcore.score_int8(codes, x[:6], params, k=15)
    got_s, got_p = ctx.score_int8(standin.asarray(codes), x[:6], params, 15)
    np.testing.assert_array_equal(got_p.get(), want_p)
    np.testing.assert_array_equal(got_s.get(), want_s)
    pdq = rng.integers(0, 256, size=(900, 32), dtype=np.uint8)
    pdq[3::5] = pdq[0]
    index = mmcore.HammingIndex(bits=256)
    index.add(pdq)
    want_d, want_i = index.knn(pdq[:4], k=30)
    got_d, got_i = ctx.hamming_knn(standin.asarray(pdq), pdq[:4], 30)
    np.testing.assert_array_equal(got_d.get(), want_d)
    np.testing.assert_array_equal(got_i.get(), want_i)
    want_lims, want_rd, want_ri = index.radius(pdq[:6], r=70)
    got_lims, got_rd, got_ri = ctx.hamming_radius(standin.asarray(pdq), pdq[:6], 70)
    assert len(want_ri) > 100
    np.testing.assert_array_equal(got_lims.get(), want_lims)
    np.testing.assert_array_equal(got_rd.get(), want_rd)
    np.testing.assert_array_equal(got_ri.get(), want_ri)
    want_a, want_b, want_d = index.join(r=40)
    got_a, got_b, got_d = ctx.hamming_join(standin.asarray(pdq), 40)
    assert len(want_a) > 100
    np.testing.assert_array_equal(got_a.get(), want_a)
    np.testing.assert_array_equal(got_b.get(), want_b)
    np.testing.assert_array_equal(got_d.get(), want_d)
    # uint8 codes starting off an 8-byte boundary are copied, not refused (the kernels load words)
    raw = standin.asarray(np.zeros(900 * 32 + 8, np.uint8))
    shifted = raw[3 : 3 + 900 * 32].reshape(900, 32)
    shifted[:] = pdq
    assert shifted.data.ptr % 8 != 0
    knn_d, knn_i = index.knn(pdq[:4], k=30)
    got_d, got_i = ctx.hamming_knn(shifted, shifted[:4], 30)
    np.testing.assert_array_equal(got_d.get(), knn_d)
    np.testing.assert_array_equal(got_i.get(), knn_i)
    got_a, got_b, got_d = ctx.hamming_join(shifted, 40)
    np.testing.assert_array_equal(got_a.get(), want_a)
    np.testing.assert_array_equal(got_d.get(), want_d)
    with pytest.raises(ValueError, match="queries must be int8"):
        ctx.int8_topk(codes, x[:2], 3)
    with pytest.raises(ValueError, match="r must be"):
        ctx.hamming_join(pdq, -1)


def test_glue_join_methods_and_output_room(standin: Any) -> None:
    """Context.hamming_join / hamming_radius pass the method through and size their outputs: room
    for n + 1024 pairs (32 results per query + 1024) first, one more call with room for the count
    when there are more."""
    ctx = mg.Context()
    rng = np.random.default_rng(5)
    pdq = rng.integers(0, 256, size=(600, 32), dtype=np.uint8)
    pdq[1::2] = pdq[0]  # 300 copies: 44,850 pairs at distance 0 among them
    index = mmcore.HammingIndex(bits=256)
    index.add(pdq)
    want = index.join(r=20)
    assert len(want[0]) > 600 + 1024
    for method, code in (("auto", 0), ("brute", 1), ("mih", 2)):
        got = ctx.hamming_join(standin.asarray(pdq), 20, method=method)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g.get(), w)
        calls = ctx._ctx.join_calls[-2:]
        assert calls == [(600, 600 + 1024, code), (600, len(want[0]), code)]
    # radius: room for 32 results per query + 1024 first (here 4 x 300 results need a second call)
    queries = np.repeat(pdq[:1], 4, axis=0)
    want_r = index.radius(queries, r=20)
    assert len(want_r[2]) > 32 * 4 + 1024
    for method, code in (("auto", 0), ("brute", 1), ("mih", 2)):
        got_r = ctx.hamming_radius(standin.asarray(pdq), queries, 20, method=method)
        for g, w in zip(got_r, want_r, strict=True):
            np.testing.assert_array_equal(g.get(), w)
        assert ctx._ctx.radius_calls[-2:] == [(4, 32 * 4 + 1024, code), (4, len(want_r[2]), code)]
    with pytest.raises(ValueError, match="method must be one of"):
        ctx.hamming_radius(pdq, queries, 3, method="fast")
    few = ctx.hamming_join(standin.asarray(pdq[::2]), 20, method="mih")  # one copy each: no pairs
    assert ctx._ctx.join_calls[-1] == (300, 300 + 1024, 2)
    np.testing.assert_array_equal(few[0].get(), index.join(r=20)[0][:0])
    with pytest.raises(ValueError, match="method must be one of"):
        ctx.hamming_join(pdq, 3, method="fast")


@needs_cuda_build  # the stand-in replaces the device, not the CUDA build's decode plan
def test_glue_decode_views_and_statuses(standin: Any) -> None:
    ctx = mg.Context()
    files = corpus_files("jpeg")[:5] + corpus_files("corrupt")[:6]
    blobs = [f.read_bytes() for f in files] + [b"not an image"]
    res = ctx.decode(blobs)
    assert len(res.images) == len(blobs) == len(res.errors) == len(res.status)
    for blob, img, st, err in zip(blobs, res.images, res.status, res.errors, strict=True):
        if mmcore.Status(int(st)).ok:
            np.testing.assert_array_equal(img.get(), mmcore.decode(blob, exif_orientation=False))
        else:
            assert img is None and err
    assert res.status[-1] == mmcore.Status.UNSUPPORTED
    for share in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            ctx.decode(blobs, cpu_share=share)
    assert ctx.decode(blobs, cpu_share=0.5).status.tolist() == res.status.tolist()


def test_glue_processor_gpu_rows_equal_cpu_rows(standin: Any) -> None:
    """Processor(device="gpu") (JPEGs decoded on the CPU, hashed through mmcore.gpu; the rest on the
    CPU) gives the same rows as device="cpu": hashes, statuses, errors, sizes, thumbnails."""
    pa = pytest.importorskip("pyarrow")
    from mmcore.jobs import Config
    from mmcore.jobs.processor import Processor

    files = corpus_files("jpeg")[:12] + corpus_files("png")[:3] + corpus_files("webp")[:2]
    files += corpus_files("corrupt")[:25] + corpus_files("odd")[:8]
    files += sorted((Path(__file__).parent / "data" / "avif").glob("*.avif"))[:4]  # the corpus has none
    batch = pa.table({"id": [f.name for f in files], "bytes": [f.read_bytes() for f in files]})
    for thumb in (0, 64):
        kw = {"hashes": ("phash", "dhash", "ahash", "pdq"), "thumbnail": thumb}
        cpu = Processor(Config(device="cpu", **kw))(batch).to_pylist()
        gpu = Processor(Config(device="gpu", **kw))(batch).to_pylist()
        assert gpu == cpu
    with pytest.raises(ValueError, match="exact mode"):
        Processor(Config(device="gpu", hash_mode="fast"))


def test_glue_mmcore_run_device_gpu_equals_cpu(standin: Any, tmp_path: Any) -> None:
    """`mmcore run --device gpu` over a folder mixing formats and corrupt files writes the same
    rows as `--device cpu`."""
    pytest.importorskip("pyarrow")
    import shutil

    from mmcore.jobs import Config, read_output
    from mmcore.jobs.runner import run

    src = tmp_path / "src"
    src.mkdir()
    for f in corpus_files("jpeg")[:8] + corpus_files("png")[:2] + corpus_files("corrupt")[:6]:
        shutil.copy(f, src / f.name)
    kw = {"thumbnail": 48, "shard_size": 5, "workers": 1}
    run(str(src), tmp_path / "cpu", Config(**kw), progress=None)
    run(str(src), tmp_path / "gpu", Config(device="gpu", **kw), progress=None)
    cpu = read_output(tmp_path / "cpu").sort_by("id").to_pylist()
    gpu = read_output(tmp_path / "gpu").sort_by("id").to_pylist()
    assert len(cpu) == 16 and gpu == cpu


@needs_cuda_build  # the stand-in replaces the device, not the CUDA build's decode plan
def test_bench_gpu_runs_over_the_standin(
    standin: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench/bench_gpu.py's whole flow (the GPU host runs it for real), over the stand-in."""
    pytest.importorskip("pyarrow")
    import sys
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "bench"))
    import bench_gpu

    folder = corpus_files("jpeg")[0].parent
    monkeypatch.setattr(
        sys, "argv", ["bench_gpu.py", "--images", str(folder), "--count", "12", "--repeat", "1"]
    )
    assert bench_gpu.main() == 0
    out = capsys.readouterr().out
    assert "Processor rows equal (cpu vs gpu): True" in out
    assert "| GPU decode + resize 256 + pHash |" in out
    assert "PDQ blur layout 1 equal to layout 0 on the batch: True" in out
    assert "(blur layout 1)" in out


def test_device_argument_of_the_top_level_functions(standin: Any) -> None:
    """resize / hash_batch / score_int8 with device="cuda" (or device arrays) take the GPU path and
    give the CPU's answers; device="cpu" and host arrays stay on the CPU."""
    photos = _photos(3)
    dev = standin.asarray(photos[0])
    got = mmcore.resize(dev, (50, 40), filter="bilinear")  # a device array: the GPU path
    assert isinstance(got, standin.ndarray)
    np.testing.assert_array_equal(got.get(), mmcore.resize(photos[0], (50, 40), filter="bilinear"))
    assert not isinstance(mmcore.resize(photos[0], (50, 40)), standin.ndarray)
    got = mmcore.resize(photos[1], (31, 17), device="cuda")
    np.testing.assert_array_equal(got.get(), mmcore.resize(photos[1], (31, 17)))
    with pytest.raises(ValueError, match="device"):
        mmcore.resize(photos[1], (31, 17), device="tpu")  # type: ignore[arg-type]

    files = corpus_files("jpeg")[:5] + corpus_files("png")[:2] + corpus_files("corrupt")[:4]
    srcs: list[Any] = [f.read_bytes() for f in files] + [str(files[0]), photos[2]]
    kinds = ("phash", "ahash", "pdq")
    want = mmcore.hash_batch(srcs, kinds=kinds, thumbnail={"short_side": 32})
    got_h = mmcore.hash_batch(srcs, kinds=kinds, thumbnail={"short_side": 32}, device="cuda")
    for k in (*kinds, "pdq_quality"):
        assert isinstance(got_h[k], standin.ndarray)
        np.testing.assert_array_equal(got_h[k].get(), want[k], err_msg=k)
    np.testing.assert_array_equal(got_h.status, want.status)
    assert got_h.errors == want.errors
    assert got_h.hex("pdq") == want.hex("pdq") and got_h.hex("phash") == want.hex("phash")
    assert got_h.thumbnails is not None and want.thumbnails is not None
    for a, b in zip(got_h.thumbnails.images, want.thumbnails.images, strict=True):
        assert (a is None and b is None) or np.array_equal(a, b)
    np.testing.assert_array_equal(got_h.thumbnails.status, want.thumbnails.status)
    assert got_h.thumbnails.errors == want.thumbnails.errors
    on_device = mmcore.hash_batch([standin.asarray(p) for p in photos], kinds=kinds, device="cuda")
    want_arrays = mmcore.hash_batch(photos, kinds=kinds)
    for k in (*kinds, "pdq_quality"):
        np.testing.assert_array_equal(on_device[k].get(), want_arrays[k], err_msg=k)
    with pytest.raises(ValueError, match="exact mode"):
        mmcore.hash_batch(srcs, kinds=kinds, mode="fast", device="cuda")

    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 24)).astype(np.float32)
    params = mmcore.QuantParams.fit(x, "int8")
    codes = mmcore.quantize_int8(x, params)
    want_s, want_p = mmcore.score_int8(codes, x[:3], params, k=7)
    for got_s, got_p in (
        mmcore.score_int8(standin.asarray(codes), x[:3], params, k=7),
        mmcore.score_int8(codes, x[:3], params, k=7, device="cuda"),
    ):
        np.testing.assert_array_equal(got_s.get(), want_s)
        np.testing.assert_array_equal(got_p.get(), want_p)


@pytest.mark.parametrize(
    "geometry",
    [{"short_side": 64}, {"fit": (90, 40)}, {"crop": (50, 50)}, {"short_side": 4000, "upscale": False}],
    ids=["short_side", "fit", "crop", "no-upscale"],
)
def test_glue_thumbnail_equals_cpu_thumbnail_of_the_full_decode(
    standin: Any, geometry: dict[str, Any]
) -> None:
    """Context.thumbnail of decoded (oriented) images = mmcore.thumbnail(bytes, reducing_gap=None),
    which decodes at full size: the same geometry, resize and centre crop."""
    files = corpus_files("jpeg")[:6] + [f for f in corpus_files("odd") if "exiforient" in f.name][:3]
    blobs = [f.read_bytes() for f in files]
    got = mg.Context().thumbnail([mmcore.decode(b) for b in blobs], **geometry)
    for b, g in zip(blobs, got, strict=True):
        want = mmcore.thumbnail(b, reducing_gap=None, **geometry)
        np.testing.assert_array_equal(g.get(), want)


def test_bench_gpu_faiss_runs_over_the_standin(
    standin: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench/bench_gpu_faiss.py's whole flow (the GPU host runs it with faiss-gpu), over the stand-in
    and faiss-cpu's indexes in place of the GPU ones: the answers must agree there too."""
    faiss = pytest.importorskip("faiss")
    import sys
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "bench"))
    import bench_gpu_faiss

    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1, raising=False)
    monkeypatch.setattr(faiss, "StandardGpuResources", lambda: None, raising=False)
    monkeypatch.setattr(
        faiss, "GpuIndexBinaryFlat", lambda res, bits: faiss.IndexBinaryFlat(bits), raising=False
    )
    monkeypatch.setattr(faiss, "index_cpu_to_gpu", lambda res, device, index: index, raising=False)
    monkeypatch.setattr(
        sys,
        "argv",
        ["bench_gpu_faiss.py", "--binary-rows", "3000", "--sq-rows", "4000", "--dim", "64", "--repeat", "1"],
    )
    assert bench_gpu_faiss.main() == 0
    out = capsys.readouterr().out
    assert "| 1024 |" in out and "**no**" not in out  # Hamming distances equal at every batch
    assert "issue 6 target, Hamming kNN" in out and "issue 6 target, int8 64 queries" in out


# --- audit fixes (each test failed before its fix) -----------------------------------------------


def _assert_same_hashes(cpu: Any, gpu: Any) -> None:
    """hash_batch(device="cuda")'s result equals the CPU's: columns, statuses, messages, thumbnails."""
    assert set(gpu.columns) == set(cpu.columns)
    for k in cpu.columns:
        g = gpu[k].get() if hasattr(gpu[k], "get") else gpu[k]
        np.testing.assert_array_equal(np.asarray(g), np.asarray(cpu[k]), err_msg=k)
    np.testing.assert_array_equal(gpu.status, cpu.status)
    assert list(gpu.errors) == list(cpu.errors)
    assert (gpu.thumbnails is None) == (cpu.thumbnails is None)
    if cpu.thumbnails is not None:
        np.testing.assert_array_equal(gpu.thumbnails.status, cpu.thumbnails.status)
        assert list(gpu.thumbnails.errors) == list(cpu.thumbnails.errors)
        for g, c in zip(gpu.thumbnails.images, cpu.thumbnails.images, strict=True):
            assert (g is None) == (c is None)
            if c is not None:
                np.testing.assert_array_equal(g, c)


def test_glue_thumbnails_are_thumbnail_batchs_own_result(standin: Any) -> None:
    """A JPEG whose full-size decode fails (over max_pixels, damaged) still gets thumbnail_batch's
    own result (its reduced-size decode), as on the CPU: not the hash decode's status copied."""
    big = max(corpus_files("jpeg"), key=lambda p: p.stat().st_size).read_bytes()
    srcs = [
        big,
        *[f.read_bytes() for f in corpus_files("corrupt")[:20]],
        corpus_files("jpeg")[0].read_bytes(),
    ]
    for kw in ({"max_pixels": 1_000_000}, {}):
        args: dict[str, Any] = {"kinds": ("phash",), "thumbnail": {"short_side": 32}, **kw}
        cpu = mmcore.hash_batch(srcs, **args)
        _assert_same_hashes(cpu, mmcore.hash_batch(srcs, device="cuda", **args))
    assert cpu.thumbnails is not None


@needs_cuda_build  # the stand-in replaces the device, not the CUDA build's decode plan
def test_glue_context_works_under_its_own_device(standin: Any) -> None:
    """Context(device=1): every allocation, upload and stream wait of every method happens with
    device 1 current (cupy allocates on the current device), none on device 0."""
    ctx = mg.Context(device=1)
    img = _photos(1)[0]
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (50, 32), dtype=np.uint8)
    x = rng.standard_normal((40, 8)).astype(np.float32)
    p = mmcore.QuantParams.fit(x, "int8")
    blob = corpus_files("jpeg")[0].read_bytes()
    calls = [
        lambda: ctx.hash([img], ("phash", "pdq")),
        lambda: ctx.resize([img], (16, 12)),
        lambda: ctx.thumbnail([img], short_side=16),
        lambda: ctx.decode([blob]),
        lambda: ctx.hash_sources([blob, img], ("dhash",)),
        lambda: ctx.hamming_knn(codes, codes[:3], 4),
        lambda: ctx.hamming_radius(codes, codes[:3], 100),
        lambda: ctx.hamming_join(codes, 100),
        lambda: ctx.int8_topk(mmcore.quantize_int8(x, p).view(np.uint8), np.zeros((2, 8), np.int8), 3),
        lambda: ctx.score_int8(mmcore.quantize_int8(x, p), x[:2], p, 3),
    ]
    for i, call in enumerate(calls):
        standin.log.clear()
        call()
        assert standin.log, i
        assert {d for _, d in standin.log} == {1}, (i, standin.log)


@needs_cuda_build  # the stand-in replaces the device, not the CUDA build's decode plan
@pytest.mark.parametrize("bad", [0, -1, 2**70, 2.5, True])
def test_glue_max_pixels_and_threads_checked_as_on_the_cpu(standin: Any, bad: Any) -> None:
    """max_pixels / threads on the GPU decode path: the CPU functions' ValueError, never "no
    limit" (0, -1) nor pybind11's TypeError (2**70)."""
    blobs = [f.read_bytes() for f in corpus_files("jpeg")[:2]]
    ctx = mg.Context()
    for kw in ({"max_pixels": bad}, {"threads": bad}):
        try:
            mmcore.hash_batch(blobs, kinds=("phash",), **kw)
            cpu_error = None
        except ValueError as e:
            cpu_error = str(e)
        assert cpu_error is not None or kw == {"threads": 2**70}  # a thread count past 2**16: all cores
        calls = [lambda kw=kw: mmcore.hash_batch(blobs, kinds=("phash",), device="cuda", **kw)]
        calls.append(lambda kw=kw: ctx.decode(blobs, **kw))
        if "max_pixels" in kw:
            calls.append(lambda kw=kw: mg.plan_decode(blobs, **kw))
        for call in calls:
            if cpu_error is None:
                call()
                continue
            with pytest.raises(ValueError) as e:
                call()
            assert str(e.value) == cpu_error


def test_glue_k_over_the_kernel_limit_and_large_r(standin: Any) -> None:
    """k > MAX_K is a ValueError naming the limit (the kernels refuse it); a k the CPU refuses is
    refused with the CPU's message; r >= 2**31 is clamped to the code length, as on the CPU."""
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    x = rng.standard_normal((2000, 8)).astype(np.float32)
    p = mmcore.QuantParams.fit(x, "int8")
    c8 = mmcore.quantize_int8(x, p)
    ctx = mg.Context()
    for call in (
        lambda: ctx.hamming_knn(codes, codes[:2], mg.MAX_K + 1),
        lambda: ctx.score_int8(c8, x[:2], p, mg.MAX_K + 1),
        lambda: mmcore.score_int8(c8, x[:2], p, mg.MAX_K + 1, device="cuda"),
        lambda: ctx.int8_topk(c8.view(np.uint8), np.zeros((2, 8), np.int8), mg.MAX_K + 1),
    ):
        with pytest.raises(ValueError, match="MAX_K = 1024"):
            call()
    got = ctx.score_int8(c8, x[:2], p, mg.MAX_K)
    want = mmcore.score_int8(c8, x[:2], p, mg.MAX_K)
    np.testing.assert_array_equal(got[1].get(), want[1])
    for k in (2.7, "3", True, 0):
        with pytest.raises(ValueError) as cpu:
            mmcore.score_int8(c8, x[:2], p, k)  # type: ignore[arg-type]
        with pytest.raises(ValueError) as gpu:
            ctx.score_int8(c8, x[:2], p, k)
        assert str(gpu.value) == str(cpu.value)
        with pytest.raises(ValueError, match="k must be an int"):
            ctx.hamming_knn(codes, codes[:2], k)  # type: ignore[arg-type]
    idx = mmcore.HammingIndex(bits=256)
    idx.add(codes[:300])
    lims, _, ids = ctx.hamming_radius(codes[:300], codes[:2], 2**31)
    want_r = idx.radius(codes[:2], r=2**31)
    np.testing.assert_array_equal(lims.get(), want_r[0])
    np.testing.assert_array_equal(ids.get(), want_r[2])
    a, _, _ = ctx.hamming_join(codes[:100], 2**40)
    assert len(a) == 100 * 99 // 2


def test_glue_array_sources_as_on_the_cpu(standin: Any) -> None:
    """hash_batch(device="cuda") with arrays: a 1-D uint8 array of JPEG bytes is decoded, an
    HxWx2 or empty array gets the CPU's per-record status; a batch (numpy or device, N x H x W x C)
    and a generator are taken as the CPU takes them."""
    jpeg = corpus_files("jpeg")[0].read_bytes()
    photo = _photos(1)[0]
    srcs = [
        np.frombuffer(jpeg, np.uint8),
        np.zeros((8, 8, 2), np.uint8),
        np.zeros((0, 0, 3), np.uint8),
        photo,
        photo[..., :1],
        jpeg,
        None,
    ]
    kinds = ("phash", "dhash", "pdq")
    _assert_same_hashes(
        mmcore.hash_batch(srcs, kinds=kinds, thumbnail=16),
        mmcore.hash_batch(srcs, kinds=kinds, thumbnail=16, device="cuda"),
    )
    batch = np.stack([mmcore.resize(p, (40, 30)) for p in _photos(3)])
    cpu = mmcore.hash_batch(batch, kinds=kinds)
    _assert_same_hashes(cpu, mmcore.hash_batch(batch, kinds=kinds, device="cuda"))
    _assert_same_hashes(cpu, mmcore.hash_batch(standin.asarray(batch), kinds=kinds, device="cuda"))
    _assert_same_hashes(cpu, mmcore.hash_batch((b for b in batch), kinds=kinds, device="cuda"))


def test_glue_fortran_ordered_host_images(standin: Any) -> None:
    """Fortran-ordered or transposed host images (cupy keeps their layout on upload) are taken as
    the CPU takes them."""
    photo = _photos(1)[0]
    f_img = np.asfortranarray(photo)
    np.testing.assert_array_equal(
        mmcore.resize(f_img, (20, 10), device="cuda").get(), mmcore.resize(f_img, (20, 10))
    )
    grey_t = np.ascontiguousarray(photo[..., 0]).T
    _assert_same_hashes(
        mmcore.hash_batch([grey_t, f_img], kinds=("phash",)),
        mmcore.hash_batch([grey_t, f_img], kinds=("phash",), device="cuda"),
    )


def test_glue_device_float_queries(standin: Any) -> None:
    """Float queries already on the device (which refuse np.asarray, as cupy's and torch's do)."""
    import gpu_standin

    rng = np.random.default_rng(2)
    x = rng.standard_normal((100, 16)).astype(np.float32)
    p = mmcore.QuantParams.fit(x, "int8")
    c = mmcore.quantize_int8(x, p)
    want = mmcore.score_int8(c, x[:2], p, 3)
    dev_c, dev_q = gpu_standin.DeviceOnlyArray(c), gpu_standin.DeviceOnlyArray(x[:2])
    with pytest.raises(TypeError):
        np.asarray(dev_q)
    for got in (mg.Context().score_int8(dev_c, dev_q, p, 3), mmcore.score_int8(dev_c, dev_q, p, 3)):
        np.testing.assert_array_equal(got[0].get(), want[0])
        np.testing.assert_array_equal(got[1].get(), want[1])


@needs_cuda_build  # the stand-in replaces the device, not the CUDA build's decode plan
def test_glue_decode_checks_srcs_as_decode_batch(standin: Any, tmp_path: Path) -> None:
    """Context.decode / plan_decode: one bytes object is refused as decode_batch refuses it; None,
    paths (present or not) get decode_batch's statuses and messages."""
    jpeg = corpus_files("jpeg")[0]
    ctx = mg.Context()
    for call in (ctx.decode, mg.plan_decode, mmcore.decode_batch):
        with pytest.raises(TypeError, match="not one bytes: wrap it in a list"):
            call(jpeg.read_bytes())  # type: ignore[operator]
    srcs = [None, str(jpeg), jpeg, str(tmp_path / "missing.jpg"), jpeg.read_bytes()]
    cpu = mmcore.decode_batch(srcs, exif_orientation=False)
    got = ctx.decode(srcs, cpu_share=1.0)
    np.testing.assert_array_equal(got.status, cpu.status)
    assert [e or None for e in got.errors] == list(cpu.errors)
    for g, c in zip(got.images, cpu.images, strict=True):
        assert (g is None) == (c is None)
        if c is not None:
            np.testing.assert_array_equal(g.get(), c)
    _, status, errors, _ = mg.plan_decode(srcs)
    assert (status[0], errors[0]) == (cpu.status[0], cpu.errors[0])
    with pytest.raises(TypeError, match="srcs\\[0\\]"):
        ctx.decode([3])  # type: ignore[list-item]


@needs_cuda_build  # the stand-in replaces the device, not the CUDA build's decode plan
def test_glue_hash_decodes_in_chunks(standin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """hash_batch(device="cuda") decodes its JPEGs in chunks of at most DECODE_BUDGET bytes of
    pixels (one device buffer each, never one for the whole call); the result is the same."""
    import gpu_standin

    blobs = [f.read_bytes() for f in corpus_files("jpeg")[:12]] + [corpus_files("corrupt")[0].read_bytes()]
    kinds = ("phash", "pdq")
    cpu = mmcore.hash_batch(blobs, kinds=kinds, thumbnail=16)
    descs = mg.plan_decode(blobs)[0]
    sizes_px = descs[:, 1] * descs[:, 3]
    budget = max(int(sizes_px.max()), int(sizes_px.sum()) // 5)
    monkeypatch.setattr(mg, "DECODE_BUDGET", budget)
    monkeypatch.setattr(gpu_standin.FakeGpuContext, "decode_calls", [])
    sizes: list[int] = []
    real_empty = standin.empty
    monkeypatch.setattr(
        standin,
        "empty",
        lambda shape, dtype: (sizes.append(int(np.prod(shape))), real_empty(shape, dtype))[1],
    )
    _assert_same_hashes(cpu, mmcore.hash_batch(blobs, kinds=kinds, thumbnail=16, device="cuda"))
    calls = gpu_standin.FakeGpuContext.decode_calls
    assert len(calls) >= 3 and sum(calls) == len(blobs)
    assert max(sizes) <= budget + 256 * len(blobs)


def test_glue_minor_argument_checks(standin: Any) -> None:
    """resize's size message, thumbnail of a None, kinds as one string and with duplicates."""
    photo = _photos(1)[0]
    with pytest.raises(ValueError) as cpu:
        mmcore.resize(photo, 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError) as gpu:
        mmcore.resize(photo, 10, device="cuda")  # type: ignore[arg-type]
    assert str(gpu.value) == str(cpu.value)
    with pytest.raises(TypeError, match="image 0"):
        mg.Context().thumbnail([None], short_side=8)
    blobs = [f.read_bytes() for f in corpus_files("jpeg")[:2]]
    ctx = mg.Context()
    for kinds in ("phash", ("phash", "phash", "dhash")):
        got = ctx.hash_sources(blobs, kinds)
        want = mmcore.hash_batch(blobs, kinds=kinds, mode="exact")  # type: ignore[arg-type]
        _assert_same_hashes(want, got)


def test_glue_pillow_sources_and_fallback_on_the_gpu_path(standin: Any) -> None:
    """hash_batch(device="cuda") takes Pillow images (hashed as their arrays) and fallback="pillow"
    (the Pillow-decoded records hashed on the host, before the columns go to the device): the CPU's
    result, thumbnails included."""
    from PIL import Image

    photos = _photos(3)
    buf = io.BytesIO()
    Image.fromarray(photos[0]).save(buf, "TIFF", compression="tiff_lzw")
    tif = buf.getvalue()
    jpeg = corpus_files("jpeg")[0].read_bytes()
    srcs: list[Any] = [
        Image.fromarray(photos[1]),
        tif,
        jpeg,
        Image.fromarray(photos[2]).convert("P"),
        b"II*\0",
    ]
    args: dict[str, Any] = {"kinds": ("phash", "dhash", "pdq"), "thumbnail": {"short_side": 32}}
    cpu = mmcore.hash_batch(srcs, fallback="pillow", **args)
    assert cpu.status.tolist()[:4] == [mmcore.Status.OK] * 4
    _assert_same_hashes(cpu, mmcore.hash_batch(srcs, fallback="pillow", device="cuda", **args))
