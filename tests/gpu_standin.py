"""A host stand-in for the device, to test mmcore.gpu's Python glue without a GPU.

``FakeCupy`` is the slice of cupy mmcore.gpu uses, over numpy: arrays are host memory that expose
``__cuda_array_interface__`` and ``.data.ptr`` like cupy's. ``FakeGpuContext`` has
``_core.GpuContext``'s methods and argument conventions (integer pointers, int64 descriptors, the
kernels' output layouts) and computes with mmcore's CPU functions through those same pointers. So a
test can check that mmcore.gpu packs descriptors, lays out outputs and unpacks results exactly as
the kernels expect; the kernels themselves are checked by the C++ emulator tests and on GPU hosts.
"""

from __future__ import annotations

import contextlib
import ctypes
import types
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

import mmcore
from mmcore import _core


class FakeArray(np.ndarray):
    """numpy memory dressed as a cupy array."""

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        ai = self.__array_interface__
        return {
            "shape": ai["shape"],
            "strides": ai["strides"],
            "typestr": ai["typestr"],
            "data": ai["data"],
            "version": 3,
        }

    @property
    def data(self) -> Any:  # type: ignore[override]
        return types.SimpleNamespace(ptr=self.__array_interface__["data"][0])

    def get(self) -> np.ndarray:
        return np.array(self)


def _fake(a: np.ndarray) -> FakeArray:
    return np.asarray(a).view(FakeArray)


class DeviceOnlyArray:
    """A device array as cupy and torch present it to numpy: ``__cuda_array_interface__`` and no
    implicit host conversion (``np.asarray`` raises, as cupy's ``__array__`` does)."""

    def __init__(self, a: Any) -> None:
        self._a = _fake(np.ascontiguousarray(a))

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        return self._a.__cuda_array_interface__

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)

    def __len__(self) -> int:
        return len(self._a)

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()`")


class FakeCupy(types.SimpleNamespace):
    """cupy over numpy. Like cupy, it has a current device (``cuda.Device(d)`` sets it for a
    ``with`` block) on which arrays are allocated and whose stream ``get_current_stream`` gives:
    ``log`` records ``(operation, device)`` for every allocation, upload and stream wait."""

    def __init__(self) -> None:
        self.device = 0
        self.log: list[tuple[str, int]] = []

        @contextlib.contextmanager
        def device(d: int = 0) -> Iterator[None]:
            prev, self.device = self.device, int(d)
            try:
                yield
            finally:
                self.device = prev

        def stream() -> Any:
            d = self.device
            return types.SimpleNamespace(synchronize=lambda: self.log.append(("synchronize", d)))

        super().__init__(
            ndarray=FakeArray,
            uint8=np.uint8,
            int8=np.int8,
            int32=np.int32,
            float32=np.float32,
            int64=np.int64,
            uint64=np.uint64,
            cuda=types.SimpleNamespace(
                Device=device,
                get_current_stream=stream,
                runtime=types.SimpleNamespace(
                    getDeviceProperties=lambda d: {"name": b"host stand-in", "multiProcessorCount": 0}
                ),
            ),
            __version__="stand-in",
        )

    def _alloc(self, op: str, a: np.ndarray) -> FakeArray:
        self.log.append((op, self.device))
        return _fake(a)

    def asarray(self, a: Any, dtype: Any = None) -> FakeArray:
        if isinstance(a, FakeArray) and dtype is None:
            return a
        if isinstance(a, DeviceOnlyArray):  # cupy takes __cuda_array_interface__ objects as views
            return a._a if dtype is None else self._alloc("asarray", np.array(a._a, dtype=dtype))
        # Like cupy.asarray (order "K"): a Fortran-ordered or transposed host array keeps its layout.
        return self._alloc("asarray", np.array(a, dtype=dtype, copy=True))

    def asnumpy(self, a: Any) -> np.ndarray:
        return np.array(a._a if isinstance(a, DeviceOnlyArray) else a)

    def ascontiguousarray(self, a: Any) -> FakeArray:
        return self._alloc("ascontiguousarray", np.ascontiguousarray(a))

    def zeros(self, shape: Any, dtype: Any) -> FakeArray:
        return self._alloc("zeros", np.zeros(shape, dtype))

    def empty(self, shape: Any, dtype: Any) -> FakeArray:
        kind = np.dtype(dtype).kind
        return self._alloc("empty", np.full(shape, 0x5A, dtype) if kind in "ui" else np.empty(shape, dtype))

    def from_dlpack(self, a: Any) -> FakeArray:
        return self._alloc("from_dlpack", np.from_dlpack(a))


def _view(ptr: int, nbytes: int, dtype: Any = np.uint8) -> np.ndarray:
    """Writable numpy view of nbytes at address ptr."""
    buf = (ctypes.c_uint8 * max(nbytes, 1)).from_address(ptr)
    return np.frombuffer(buf, dtype=np.uint8, count=nbytes).view(dtype)


def _image(base: int, desc: Any) -> np.ndarray:
    off, stride, w, h, c = (int(v) for v in desc)
    rows = _view(base + off, (h - 1) * stride + w * c)
    img = np.lib.stride_tricks.as_strided(rows, shape=(h, w, c), strides=(stride, c, 1), writeable=True)
    return img[..., 0] if c == 1 else img


_I32 = (-(2**31), 2**31 - 1)


def _int32(fn: str, **args: Any) -> None:
    """pybind11's casts of the binding's int arguments: anything but an int in int32's range is a
    TypeError (the real message lists the supported signatures)."""
    for name, v in args.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not _I32[0] <= v <= _I32[1]:
            raise TypeError(f"{fn}(): incompatible function arguments ({name}: int32, got {v!r})")


def _k_range(fn: str, k: int) -> None:
    """search_args_problem's refusal (check() raises kUnsupported as ValueError)."""
    if not 1 <= k <= 1024:
        raise ValueError(f"SearchGpu::{fn}: k outside 1..1024 (k {k})")


class FakeGpuContext:
    """_core.GpuContext's interface, computed on the CPU through the same pointers, with the
    binding's argument casts and refusals (int32 arguments, k in 1..1024)."""

    decode_calls: ClassVar[list[int]] = []  # sources per decode call, over all instances (tests reset it)

    def __init__(self, device: int) -> None:
        self.device = device
        self.join_calls: list[tuple[int, int, int]] = []  # (n, capacity, method) per hamming_join
        self.radius_calls: list[tuple[int, int, int]] = []  # (nq, capacity, method) per hamming_radius

    def hash(self, pixels: int, nbytes: int, descs: np.ndarray, kinds: int, out: int) -> np.ndarray:
        n = len(descs)
        cols = _view(out, 5 * n * 8, np.uint64).reshape(5, n)
        names = [k for i, k in enumerate(mmcore.hashing.KINDS[:5]) if kinds >> i & 1]
        r = mmcore.hash_batch(
            [np.ascontiguousarray(_image(pixels, d)) for d in descs], kinds=names, mode="exact"
        )
        for k in names:
            cols[mmcore.hashing.KINDS.index(k)] = np.asarray(r[k]).view(np.uint64)
        return np.zeros(n, np.uint8)

    def pdq(self, pixels: int, nbytes: int, descs: np.ndarray, hashes: int, quality: int) -> np.ndarray:
        n = len(descs)
        r = mmcore.hash_batch(
            [np.ascontiguousarray(_image(pixels, d)) for d in descs], kinds=("pdq",), mode="exact"
        )
        _view(hashes, 32 * n).reshape(n, 32)[:] = r["pdq"]
        _view(quality, 4 * n, np.int32)[:] = r["pdq_quality"]
        return np.zeros(n, np.uint8)

    def resize(
        self, pixels: int, nbytes: int, src: np.ndarray, out: int, out_bytes: int, dst: np.ndarray, flt: int
    ) -> np.ndarray:
        name = {v: k for k, v in mmcore.image.FILTERS.items()}[flt]
        for s, d in zip(src, dst, strict=True):
            img = np.ascontiguousarray(_image(pixels, s))
            _image(out, d)[...] = mmcore.resize(img, (int(d[2]), int(d[3])), filter=name)
        return np.zeros(len(src), np.uint8)

    def int8_topk(
        self, codes: int, n: int, d: int, queries: int, nq: int, k: int, scores: int, idx: int
    ) -> None:
        _int32("int8_topk", d=d, k=k)
        _k_range("int8_topk", k)
        c = _view(codes, n * d).reshape(n, d)
        q = _view(queries, nq * d, np.int8).reshape(nq, d)
        s, i = _core.quant_score_int8(np.ascontiguousarray(c), np.ascontiguousarray(q), k, 1)
        _view(scores, nq * k * 4, np.int32)[:] = s.ravel()
        _view(idx, nq * k * 8, np.int64)[:] = i.ravel()

    @staticmethod
    def _words_aligned(*ptrs: int) -> None:
        """search_args_problem's refusal: the kernels load binary codes as 64-bit words."""
        if any(p % 8 for p in ptrs):
            raise RuntimeError("UNSUPPORTED: codes or queries not 8-byte aligned")

    @staticmethod
    def _method(method: int, words: int) -> None:
        """join_method_problem's refusals."""
        if method not in (0, 1, 2):
            raise RuntimeError("UNSUPPORTED: method must be auto, brute or mih")
        if method == 2 and words > 4:
            raise RuntimeError("UNSUPPORTED: multi-index hashing takes codes of at most 256 bits")

    def hamming_knn(
        self, codes: int, n: int, words: int, queries: int, nq: int, k: int, dist: int, idx: int
    ) -> None:
        _int32("hamming_knn", words=words, k=k)
        _k_range("hamming_knn", k)
        self._words_aligned(codes, queries)
        c = np.ascontiguousarray(_view(codes, n * words * 8, np.uint64).reshape(n, words))
        q = np.ascontiguousarray(_view(queries, nq * words * 8, np.uint64).reshape(nq, words))
        s, i = _core.quant_score_binary(c, q, k, 1)
        _view(dist, nq * k * 4, np.int32)[:] = s.ravel()
        _view(idx, nq * k * 8, np.int64)[:] = i.ravel()

    def hamming_join(
        self,
        codes: int,
        n: int,
        words: int,
        r: int,
        first: int,
        second: int,
        dist: int,
        capacity: int,
        method: int = 0,
    ) -> int:
        _int32("hamming_join", words=words, r=r, method=method)
        self._words_aligned(codes)
        self._method(method, words)
        self.join_calls.append((n, capacity, method))
        c = np.ascontiguousarray(_view(codes, n * words * 8, np.uint64).reshape(n, words))
        a, b, d, _ = _core.hamming_join(c, r, 1, ("auto", "brute", "mih")[method])
        if capacity >= len(a) > 0:
            _view(first, 8 * len(a), np.int64)[:] = a
            _view(second, 8 * len(a), np.int64)[:] = b
            _view(dist, 4 * len(a), np.int32)[:] = d
        return len(a)

    def hamming_radius(
        self,
        codes: int,
        n: int,
        words: int,
        queries: int,
        nq: int,
        r: int,
        lims: int,
        ids: int,
        dist: int,
        capacity: int,
        method: int = 0,
    ) -> int:
        _int32("hamming_radius", words=words, r=r, method=method)
        self._words_aligned(codes, queries)
        self._method(method, words)
        self.radius_calls.append((nq, capacity, method))
        c = np.ascontiguousarray(_view(codes, n * words * 8, np.uint64).reshape(n, words))
        q = np.ascontiguousarray(_view(queries, nq * words * 8, np.uint64).reshape(nq, words))
        lim, d, i, _ = _core.hamming_radius(c, None, q, r, 1, ("auto", "brute", "mih")[method])
        _view(lims, 8 * (nq + 1), np.int64)[:] = lim
        if capacity >= len(i) > 0:
            _view(ids, 8 * len(i), np.int64)[:] = i
            _view(dist, 4 * len(i), np.int32)[:] = d
        return len(i)

    def decode(
        self,
        srcs: list[bytes],
        descs: np.ndarray,
        statuses: np.ndarray,
        messages: list[str],
        pixels: int,
        nbytes: int,
        cpu_share: float = -1.0,
        threads: int = 0,
    ) -> tuple[np.ndarray, list[str], dict[str, Any]]:
        _int32("decode", threads=threads)
        FakeGpuContext.decode_calls.append(len(srcs))
        st = np.array(statuses, np.uint8)
        msg = list(messages)
        for i, (blob, d) in enumerate(zip(srcs, descs, strict=True)):
            if st[i] > 1:
                continue
            r = mmcore.decode_batch([blob], exif_orientation=False)
            st[i] = r.status[0]
            if r.images[0] is None:
                msg[i] = r.errors[0] or "failed"
                continue
            _image(pixels, d)[...] = r.images[0]
        return (
            st,
            msg,
            {
                "hardware": 0,
                "fallback": int((st <= 1).sum()),
                "cpu": 0,
                "failed": int((st > 1).sum()),
                "hardware_available": False,
                "cpu_share": 0.0,
                "seconds": {"screen": 0.0, "hardware": 0.0, "cpu": 0.0, "fallback": 0.0},
            },
        )
