"""GPU paths: JPEG decode (nvJPEG), resize, hashes and search on device arrays, with no host round trip.

A :class:`Context` holds one device's kernels (``cuda/*.cu``). Inputs are device arrays: cupy arrays,
or anything with ``__cuda_array_interface__`` (e.g. torch tensors) or ``__dlpack__``; numpy arrays are
uploaded. Outputs are cupy arrays on the context's device. Answers are the CPU's, bit for bit: hashes
equal ``hash_batch``'s exact mode on the same pixels, resizes equal :func:`mmcore.resize`, search
equals :func:`mmcore.score_int8` / :class:`mmcore.HammingIndex` (the kernels share their arithmetic
with the CPU code; ``docs/gpu.md`` says how each is checked). JPEG decode is nvJPEG's own IDCT, close
to libjpeg-turbo's but not equal.

Needs a build with CUDA (nvcc found when the package was built), a CUDA device, and cupy
(``pip install "mmcore[gpu]"``); :func:`available` says whether all three are there and
:func:`unavailable_reason` why not.

>>> import mmcore.gpu
>>> isinstance(mmcore.gpu.available(), bool)
True
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _core
from .hashing import KINDS, HashResult, _hash_src, _kinds, hash_batch
from .image import (
    BatchResult,
    _batch_sources,
    _filter,
    _is_int,
    _max_pixels,
    _size_pair,
    _src,
    _threads,
    decode_batch,
    thumbnail_batch,
)
from .search import _METHODS, Method, _method, _nonneg_int
from .status import DeviceError, Status

#: Hash kinds the GPU computes (PDQ in reference mode, the others imagehash-exact).
GPU_KINDS: tuple[str, ...] = ("ahash", "dhash", "dhash_vertical", "phash", "phash_simple", "pdq")
_COLUMNS = 5  # uint64 columns of the 64-bit kinds (HashKind 0..4)
#: The largest k the top-k kernels take (:meth:`Context.int8_topk`, :meth:`Context.hamming_knn`,
#: :meth:`Context.score_int8`): each query's heap lives in one block's shared memory.
MAX_K = 1024
#: Decoded pixels per device buffer in :meth:`Context.hash_sources`: the JPEGs of one call are
#: decoded and hashed in chunks of at most this many bytes (one image larger than it is a chunk).
DECODE_BUDGET = 1 << 30
_JPEG_SIG = b"\xff\xd8\xff"


def _join_method(method: Method) -> int:
    """HammingIndex's method names, checked as it checks them, as HammingMethod's values (their
    order: auto 0, brute 1, mih 2)."""
    return _METHODS.index(_method(method))


def unavailable_reason() -> str | None:
    """Why :class:`Context` cannot be used here (None when it can)."""
    if not hasattr(_core, "GpuContext"):
        return "mmcore was built without CUDA (no nvcc when the package was built)"
    info = _core.build_info()
    if not info.get("cuda_available"):
        return f"no usable CUDA device: {info.get('cuda_note') or 'none found'}"
    try:
        import cupy  # noqa: F401
    except ImportError:
        return 'cupy is not installed: pip install "mmcore[gpu]" (cupy-cuda13x)'
    return None


def available() -> bool:
    """True when this build has CUDA, a device is present and cupy imports."""
    return unavailable_reason() is None


@functools.cache
def _load_nvjpeg() -> None:
    """Makes the nvidia-nvjpeg wheel's libnvjpeg.so.13 findable by the decoder's dlopen (once).

    The wheel puts it under site-packages/nvidia/cu13/lib, which is not on the loader's path:
    loading it by full path (RTLD_GLOBAL) lets dlopen("libnvjpeg.so.13") find it by its soname.
    ``$MMCORE_NVJPEG``, a library already on the loader's path, or a missing wheel leave the
    decoder to its own search (whose error says what to install)."""
    if os.environ.get("MMCORE_NVJPEG"):
        return
    import ctypes
    import importlib.util

    try:
        spec = importlib.util.find_spec("nvidia")
    except (ImportError, ValueError):
        return
    for root in list(spec.submodule_search_locations or []) if spec is not None else []:
        lib = Path(root) / "cu13" / "lib" / "libnvjpeg.so.13"
        if lib.is_file():
            try:
                ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
                return
            except OSError:
                continue


def _cupy() -> Any:
    import cupy

    return cupy


_local = threading.local()


def default_context(device: int = 0) -> Context:
    """The calling thread's :class:`Context` for ``device``, created on first use (what the
    ``device="cuda"`` arguments of :func:`mmcore.resize`, :func:`mmcore.hash_batch` and
    :func:`mmcore.score_int8` use)."""
    contexts: dict[int, Context] | None = getattr(_local, "contexts", None)
    if contexts is None:
        contexts = _local.contexts = {}
    if device not in contexts:
        contexts[device] = Context(device)
    return contexts[device]


def is_device_array(a: Any) -> bool:
    """True for a cupy array or anything else exposing ``__cuda_array_interface__``."""
    return hasattr(a, "__cuda_array_interface__")


def plan_decode(
    srcs: Sequence[bytes], *, max_pixels: int | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8], list[str], int]:
    """Where :meth:`Context.decode` would put each image, computed on the CPU (no device needed).

    Returns ``(descs, status, errors, total_bytes)``: per source one row ``(offset, row stride,
    width, height, channels)`` of its RGB image in the device buffer (stored orientation, rows
    packed, 256-byte aligned offsets), its status after mmcore's header parse (the same statuses
    and messages as :func:`mmcore.decode`; a non-JPEG is UNSUPPORTED: decode it on the CPU), and the
    buffer's size.
    """
    if not hasattr(_core, "gpu_decode_plan"):
        raise DeviceError(Status.DEVICE, "mmcore was built without CUDA")
    return _plan(*_decode_sources(srcs), _max_pixels(max_pixels))


def _decode_sources(srcs: Any) -> tuple[list[bytes], dict[int, tuple[int, str]]]:
    """decode_batch's sources, checked as it checks them, as the bytes the device decoder takes
    (paths read here), and for each source that cannot be read (None, a missing file) the
    status and message decode_batch gives it."""
    blobs: list[bytes] = []
    unread: dict[int, tuple[int, str]] = {}
    for i, s in enumerate(_batch_sources(srcs)):
        s = _src(s)  # an array: 1-D uint8 encoded bytes, else decode_batch's TypeError
        if isinstance(s, (bytes, bytearray, memoryview, np.ndarray)):
            blobs.append(bytes(s))
            continue
        if isinstance(s, str):
            try:
                with open(s, "rb") as f:
                    blobs.append(f.read())
                continue
            except OSError:
                pass
        elif s is not None:
            raise TypeError(
                f"srcs[{i}] must be bytes, a path, a 1-D uint8 array of encoded bytes or None, "
                f"got {type(s).__name__}"
            )
        r = decode_batch([s], threads=1)  # None or an unreadable path: the CPU's status and message
        blobs.append(b"")
        unread[i] = (int(r.status[0]), r.errors[0] or "")
    return blobs, unread


def _plan(
    blobs: list[bytes], unread: dict[int, tuple[int, str]], limit: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8], list[str], int]:
    descs, status, errors, total = _core.gpu_decode_plan(blobs, limit)
    errors = list(errors)
    for i, (st, msg) in unread.items():
        status[i], errors[i] = st, msg
    return descs, status, errors, int(total)


@dataclass
class _Images:
    """Device images as descriptors relative to one base pointer (they may live in several
    allocations: the kernels only add offsets to the base)."""

    base: int
    nbytes: int
    descs: npt.NDArray[np.int64]
    arrays: list[Any]  # keeps the inputs alive during the call


def _interface(a: Any) -> dict[str, Any]:
    cai = getattr(a, "__cuda_array_interface__", None)
    if cai is None:
        raise TypeError(
            f"expected a device array (cupy, or __cuda_array_interface__), got {type(a).__name__}"
        )
    return dict(cai)


def _as_device(a: Any) -> Any:
    """cupy view of a device array (no copy), or a C-contiguous upload of a host array (onto the
    current device: call it under the Context's device)."""
    cp = _cupy()
    if isinstance(a, cp.ndarray):
        return a
    if hasattr(a, "__cuda_array_interface__"):
        return cp.asarray(a)
    if hasattr(a, "__dlpack__") and not isinstance(a, np.ndarray):
        return cp.from_dlpack(a)
    # C order: cupy keeps a Fortran-ordered or transposed host array's layout, which the kernels'
    # descriptors (row-contiguous pixels) cannot describe.
    return cp.asarray(np.ascontiguousarray(a))


def _batch_shape(images: Any) -> tuple[int, ...]:
    """The shape of an (N, H, W, C) batch; ValueError for anything else."""
    shape = (
        tuple(_interface(images)["shape"])
        if hasattr(images, "__cuda_array_interface__")
        else np.shape(images)
    )
    if len(shape) != 4:
        raise ValueError(
            f"images must be a sequence of HxW / HxWxC arrays or an (N, H, W, C) batch, got {shape}"
        )
    return tuple(int(v) for v in shape)


def _image_rows(images: Any) -> list[Any]:
    """A list of images from a sequence of HxW / HxWxC arrays or an (N, H, W, C) batch."""
    if isinstance(images, (list, tuple)):
        return list(images)
    return [images[i] for i in range(_batch_shape(images)[0])]


def _describe(images: Sequence[Any]) -> _Images:
    """Descriptors of device uint8 images whose pixels are row-contiguous (any row stride)."""
    rows: list[tuple[int, int, int, int, int]] = []
    for i, a in enumerate(images):
        cai = _interface(a)
        shape = tuple(cai["shape"])
        if np.dtype(cai["typestr"]) != np.uint8:
            raise ValueError(f"image {i}: must be uint8, got {np.dtype(cai['typestr'])}")
        if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (1, 3, 4)):
            raise ValueError(f"image {i}: must be HxW, HxWx1, HxWx3 or HxWx4, got shape {shape}")
        h, w = int(shape[0]), int(shape[1])
        c = 1 if len(shape) == 2 else int(shape[2])
        if h < 1 or w < 1:
            raise ValueError(f"image {i}: empty ({h}x{w})")
        strides = cai.get("strides")
        if strides is None:  # C-contiguous
            stride = w * c
        else:
            inner = (1,) if len(shape) == 2 else (c, 1)
            if tuple(strides[1:]) != inner or strides[0] < w * c:
                raise ValueError(
                    f"image {i}: pixels of a row must be contiguous (strides {tuple(strides)}); "
                    "copy it first (cupy.ascontiguousarray)"
                )
            stride = int(strides[0])
        rows.append((int(cai["data"][0]), stride, w, h, c))
    if not rows:
        return _Images(0, 0, np.zeros((0, 5), np.int64), list(images))
    base = min(r[0] for r in rows)
    end = max(r[0] + (r[3] - 1) * r[1] + r[2] * r[4] for r in rows)
    descs = np.array([(p - base, s, w, h, c) for p, s, w, h, c in rows], dtype=np.int64)
    return _Images(base, end - base, descs, list(images))


def _describe_batch(batch: Any) -> _Images:
    """Descriptors of an (N, H, W, C) device batch, built from its interface at once (a per-image
    loop costs microseconds per image, more than the hash kernels themselves)."""
    cai = _interface(batch)
    shape = tuple(int(v) for v in cai["shape"])
    n, h, w, c = shape
    if np.dtype(cai["typestr"]) != np.uint8:
        raise ValueError(f"images must be uint8, got {np.dtype(cai['typestr'])}")
    if c not in (1, 3, 4):
        raise ValueError(f"an (N, H, W, C) batch must have C = 1, 3 or 4, got shape {shape}")
    if n and (h < 1 or w < 1):
        raise ValueError(f"images are empty ({h}x{w})")
    strides = cai.get("strides")
    if strides is None:  # C-contiguous
        s_img, s_row = h * w * c, w * c
    else:
        s_img, s_row = int(strides[0]), int(strides[1])
        if tuple(strides[2:]) != (c, 1) or s_row < w * c or s_img < 0:
            raise ValueError(
                f"pixels of a row must be contiguous and images in increasing order (strides "
                f"{tuple(strides)}); copy the batch first (cupy.ascontiguousarray)"
            )
    if n == 0:
        return _Images(0, 0, np.zeros((0, 5), np.int64), [batch])
    descs = np.empty((n, 5), np.int64)
    descs[:, 0] = np.arange(n, dtype=np.int64) * s_img
    descs[:, 1:] = (s_row, w, h, c)
    nbytes = (n - 1) * s_img + (h - 1) * s_row + w * c
    return _Images(int(cai["data"][0]), nbytes, descs, [batch])


def _describe_images(images: Any) -> _Images:
    """_describe of a sequence of images, or _describe_batch of an (N, H, W, C) batch."""
    if isinstance(images, (list, tuple)):
        return _describe([_as_device(a) for a in images])
    _batch_shape(images)  # the shape check, and its message, before any upload
    return _describe_batch(_as_device(images))


def _kinds_mask(kinds: Sequence[str]) -> tuple[int, bool]:
    """hash_batch's kinds check, then the GPU's subset: (mask of the 64-bit kinds, PDQ asked)."""
    names, mask = _kinds(kinds)
    for k in names:
        if k not in GPU_KINDS:
            raise ValueError(f"the GPU computes {GPU_KINDS}, not {k!r} (use mmcore.hash_batch on the CPU)")
    pdq_bit = 1 << KINDS.index("pdq")
    return mask & ~pdq_bit, bool(mask & pdq_bit)


def _sizes(size: Any, n: int) -> list[tuple[int, int]]:
    """(width, height) per image from one pair or one pair per image."""
    one = not isinstance(size, Sequence) or (len(size) == 2 and _is_int(size[0]))
    pairs = [size] if one else list(size)  # not a sequence: _size_pair's message
    out = [_size_pair("size", p) for p in pairs]
    if len(out) != 1 and len(out) != n:
        raise ValueError(f"size must be one (width, height), or one per image ({n}), got {len(out)}")
    return out * n if len(out) == 1 else out


def _words(codes: Any) -> Any:
    """Device codes as uint64 words: uint8 rows of a multiple of 8 bytes are viewed, not copied
    (copied where the view would start off an 8-byte boundary: the kernels load whole words)."""
    c = _as_device(codes)
    if c.dtype == np.uint8 and c.ndim == 2 and c.shape[1] % 8 == 0:
        c = _cupy().ascontiguousarray(c)
        if c.data.ptr % 8:
            c = c.copy()
        return c.view(np.uint64)
    return c


def _is_jpeg(s: Any) -> bool:
    """JPEG bytes (bytes-like, or a 1-D uint8 array of them): decoded for the GPU hashes."""
    if isinstance(s, np.ndarray):
        return s.ndim == 1 and bytes(s[:3]) == _JPEG_SIG
    return isinstance(s, (bytes, bytearray, memoryview)) and bytes(s[:3]) == _JPEG_SIG


def _is_pixels(s: Any) -> bool:
    """Host pixels the hash kernels take (those hash_batch hashes: HxW, HxWx1, HxWx3, HxWx4, not
    empty); any other array goes to hash_batch, which gives it its status and message."""
    if not isinstance(s, np.ndarray) or s.ndim not in (2, 3) or s.shape[0] < 1 or s.shape[1] < 1:
        return False
    return s.ndim == 2 or s.shape[2] in (1, 3, 4)


def _chunks(blobs: list[bytes], max_pixels: int) -> list[list[int]]:
    """Consecutive runs of blobs whose decoded pixels (by the decode plan) fit DECODE_BUDGET bytes,
    at least one image per run; all in one run when there is no plan (no CUDA build)."""
    if not blobs:
        return []
    if not hasattr(_core, "gpu_decode_plan"):
        return [list(range(len(blobs)))]
    descs = _core.gpu_decode_plan(blobs, max_pixels)[0]
    out: list[list[int]] = [[]]
    used = 0
    for i, (stride, h) in enumerate(zip(descs[:, 1].tolist(), descs[:, 3].tolist(), strict=True)):
        size = int(stride) * int(h) + 256  # + the offset's alignment
        if out[-1] and used + size > DECODE_BUDGET:
            out.append([])
            used = 0
        out[-1].append(i)
        used += size
    return out


@dataclass
class GpuHashResult:
    """Hashes of a batch on the device: ``columns[kind]`` (cupy ``uint64`` (N,) for the 64-bit kinds,
    ``uint8`` (N, 32) for ``"pdq"`` and ``int32`` (N,) for ``"pdq_quality"``) and a host ``status``
    per image (OK; UNSUPPORTED for an image the kernels refused)."""

    columns: dict[str, Any]
    status: npt.NDArray[np.uint8]

    def __getitem__(self, kind: str) -> Any:
        return self.columns[kind]


@dataclass
class GpuDecoded:
    """JPEGs decoded on the device: ``images[i]`` a cupy (H, W, 3) uint8 view into ``buffer`` (None
    when ``status[i]`` is not OK), ``errors[i]`` the message, ``counts`` what decoded where:
    ``hardware`` (nvJPEG's hardware engine), ``cpu`` (mmcore's CPU decoder, for the bitstreams the
    engine does not take, at the same time), ``fallback`` (nvJPEG's default backend, on GPUs without
    the engine), ``failed``, ``hardware_available``, and ``seconds`` per phase (``screen``,
    ``hardware``, ``cpu``, ``fallback``), ``cpu_share`` the share of the engine's pixels given to the
    CPU."""

    images: list[Any]
    status: npt.NDArray[np.uint8]
    errors: list[str]
    buffer: Any
    counts: dict[str, Any]


class Context:
    """One CUDA device's mmcore kernels. Not thread-safe: one Context per thread.

    Raises :class:`mmcore.DeviceError` when there is no usable device (the message says why) and
    ImportError when cupy is missing.
    """

    def __init__(self, device: int = 0) -> None:
        reason = unavailable_reason()
        if reason is not None and not reason.startswith("cupy"):
            raise DeviceError(Status.DEVICE, reason)
        if reason is not None:
            raise ImportError(reason)
        cp = _cupy()
        self._cp = cp
        self.device = int(device)
        with cp.cuda.Device(self.device):
            self._ctx = self._call(_core.GpuContext, self.device)

    @staticmethod
    def _call(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except RuntimeError as e:  # "<STATUS>: <reason>" from cpp/bindings/gpu.cpp
            name, _, message = str(e).partition(": ")
            status = Status[name] if name in Status.__members__ else Status.DEVICE
            raise DeviceError(status, message or str(e)) from None

    def _on(self) -> Any:
        """The context's device as cupy's current device: every allocation, upload and stream
        wait of a method happens under it (cupy allocates on the current device)."""
        return self._cp.cuda.Device(self.device)

    def _ready(self) -> None:
        """Waits for work queued on cupy's current stream (the kernels run on their own stream);
        call it under :meth:`_on`, after the method's allocations."""
        self._cp.cuda.get_current_stream().synchronize()

    # -- hashes ------------------------------------------------------------------------------------
    def hash(self, images: Any, kinds: Sequence[str] = ("phash",)) -> GpuHashResult:
        """Hashes of device images (a sequence of uint8 HxW / HxWxC arrays or an (N, H, W, C) batch),
        equal to ``mmcore.hash_batch(arrays, kinds, mode="exact")`` on the same pixels."""
        mask, pdq = _kinds_mask(kinds)
        cp = self._cp
        with self._on():
            ims = _describe_images(images)
            n = len(ims.descs)
            columns: dict[str, Any] = {}
            status = np.zeros(n, np.uint8)
            # Allocated (and zeroed on cupy's stream) before _ready() waits for that stream: a memset
            # queued after it could run after the kernels, on their own stream, and wipe the hashes.
            out = cp.zeros((_COLUMNS, max(n, 1)), dtype=cp.uint64) if mask else None
            hashes = cp.zeros((max(n, 1), 32), dtype=cp.uint8) if pdq else None
            quality = cp.zeros(max(n, 1), dtype=cp.int32) if pdq else None
            self._ready()
            if out is not None:
                if n:
                    status = self._call(self._ctx.hash, ims.base, ims.nbytes, ims.descs, mask, out.data.ptr)
                for k in GPU_KINDS[:_COLUMNS]:
                    if mask >> KINDS.index(k) & 1:
                        columns[k] = out[KINDS.index(k), :n]
            if hashes is not None and quality is not None:
                if n:
                    st = self._call(
                        self._ctx.pdq, ims.base, ims.nbytes, ims.descs, hashes.data.ptr, quality.data.ptr
                    )
                    status = np.maximum(status, st)
                columns["pdq"] = hashes[:n]
                columns["pdq_quality"] = quality[:n]
        return GpuHashResult(columns, status)

    def hash_sources(
        self,
        srcs: Sequence[Any],
        kinds: str | Sequence[str] = ("phash", "pdq"),
        *,
        max_pixels: int | None = None,
        threads: int | None = None,
        thumbnail: Mapping[str, Any] | None = None,
    ) -> HashResult:
        """``hash_batch(srcs, kinds, mode="exact", thumbnail=...)``'s result, bit for bit, with the
        JPEGs (bytes, or 1-D uint8 arrays of them) and host HxW[xC] pixel arrays hashed on the GPU;
        host numpy columns. A JPEG is decoded on the CPU by the exact path's decoder (stored
        orientation: exact modes never rotate), in chunks of at most :data:`DECODE_BUDGET` bytes of
        pixels on the device; other formats, paths and records the kernels cannot take (e.g. HxWx2
        or empty arrays: a per-record status) go through ``hash_batch`` itself; thumbnails through
        ``thumbnail_batch`` (its own, reduced-size decode: the thumbnails, statuses and messages
        hash_batch gives)."""
        names, _ = _kinds(kinds)
        _kinds_mask(names)
        items = [_hash_src(s) for s in _batch_sources(srcs)]  # hash_batch's checks and messages
        mp, nthreads = _max_pixels(max_pixels), _threads(threads) or None
        n = len(items)
        is_jpeg = [_is_jpeg(s) for s in items]
        is_pixels = [_is_pixels(s) for s in items]
        rest = [j for j in range(n) if not (is_jpeg[j] or is_pixels[j])]
        cols: dict[str, npt.NDArray[Any]] = {k: np.zeros(n, np.uint64) for k in names if k != "pdq"}
        if "pdq" in names:
            cols["pdq"], cols["pdq_quality"] = np.zeros((n, 32), np.uint8), np.zeros(n, np.uint8)
        status = np.zeros(n, np.uint8)
        errors: list[str | None] = [None] * n
        thumbs: list[Any] = [None] * n
        t_status = np.zeros(n, np.uint8)
        t_errors: list[str | None] = [None] * n
        if rest:
            hr = hash_batch(
                [items[j] for j in rest],
                kinds=names,  # type: ignore[arg-type]
                mode="exact",
                max_pixels=mp,
                threads=nthreads,
                thumbnail=thumbnail,
            )
            for c in cols:
                cols[c][rest] = hr[c]
            status[rest] = hr.status
            for t, j in enumerate(rest):
                errors[j] = hr.errors[t]
                if hr.thumbnails is not None:
                    thumbs[j], t_status[j] = hr.thumbnails.images[t], hr.thumbnails.status[t]
                    t_errors[j] = hr.thumbnails.errors[t]

        def hash_rows(pixels: dict[int, Any]) -> None:
            rows = sorted(pixels)
            if rows:
                g = self.hash([pixels[j] for j in rows], names)
                for c in cols:
                    cols[c][rows] = g[c].get().astype(cols[c].dtype)

        arrays = [j for j in range(n) if is_pixels[j]]
        hash_rows({j: items[j] for j in arrays})
        jpeg = [j for j in range(n) if is_jpeg[j]]

        def decode_and_hash(idx: list[int], blobs: list[bytes]) -> None:
            """One chunk: its device buffer is freed on return, before the next is allocated."""
            try:
                # The exact decoder on the host threads, each image copied to the device as it is
                # done (page-locked, beside the decoding): no per-image upload afterwards.
                dev = self.decode(blobs, max_pixels=mp, cpu_share=1.0, threads=nthreads)
            except DeviceError:  # no nvJPEG in this build or install: decode, then upload
                dec = decode_batch(
                    blobs, color="rgb", threads=nthreads, exif_orientation=False, max_pixels=mp
                )
                images, st, errs = dec.images, dec.status, dec.errors
            else:
                images, st, errs = dev.images, dev.status, [e or None for e in dev.errors]
            status[idx] = st
            for t, j in enumerate(idx):
                errors[j] = errs[t]
            hash_rows({j: images[t] for t, j in enumerate(idx) if images[t] is not None})

        jpeg_blobs = [bytes(items[j]) for j in jpeg]
        for chunk in _chunks(jpeg_blobs, mp):
            decode_and_hash([jpeg[t] for t in chunk], [jpeg_blobs[t] for t in chunk])
        if thumbnail is not None:
            # As on the CPU: thumbnails come from encoded bytes (thumbnail_batch's own reduced-size
            # decode, whatever the full-size decode gave), never from a decoded array.
            for j in arrays:
                t_status[j] = int(Status.UNSUPPORTED)
                t_errors[j] = "thumbnails are made from encoded bytes or a path, not from a decoded array"
            tb = thumbnail_batch([items[j] for j in jpeg], threads=nthreads, **thumbnail)
            for t, j in enumerate(jpeg):
                thumbs[j], t_status[j], t_errors[j] = tb.images[t], tb.status[t], tb.errors[t]
        thumbnails = BatchResult(thumbs, t_status, t_errors) if thumbnail is not None else None
        return HashResult(cols, status, errors, names, thumbnails)

    # -- resize ------------------------------------------------------------------------------------
    def resize(
        self, images: Any, size: tuple[int, int] | Sequence[tuple[int, int]], *, filter: str = "lanczos3"
    ) -> Any:
        """Every image resized to ``size = (width, height)`` (or ``size[i]`` per image), equal to
        :func:`mmcore.resize`: an (N, height, width[, C]) cupy batch when all outputs have the same
        shape, else a list of cupy arrays."""
        code = _filter(filter)
        cp = self._cp
        with self._on():
            src = _describe([_as_device(a) for a in _image_rows(images)])
            n = len(src.descs)
            sizes = _sizes(size, n)
            shapes = [
                (t[1], t[0]) if len(a.shape) == 2 else (t[1], t[0], int(a.shape[2]))
                for a, t in zip(src.arrays, sizes, strict=True)
            ]
            if n and len(set(shapes)) == 1:
                out = cp.empty((n, *shapes[0]), dtype=cp.uint8)
                outs = [out[i] for i in range(n)]
            else:
                out = None
                outs = [cp.empty(s, dtype=cp.uint8) for s in shapes]
            dst = _describe(outs)
            if n:
                self._ready()
                status = self._call(
                    self._ctx.resize,
                    src.base,
                    src.nbytes,
                    src.descs,
                    dst.base,
                    dst.nbytes,
                    dst.descs,
                    code,
                )
                if np.any(status != 0):
                    bad = int(np.flatnonzero(status)[0])
                    name = Status(int(status[bad])).name
                    raise ValueError(f"image {bad}: the GPU resize refused its descriptor ({name})")
        return out if out is not None else outs

    def thumbnail(
        self,
        images: Any,
        *,
        short_side: int | None = None,
        fit: tuple[int, int] | None = None,
        crop: tuple[int, int] | None = None,
        filter: str = "lanczos3",
        upscale: bool = True,
    ) -> list[Any]:
        """Thumbnails of device images with :func:`mmcore.thumbnail`'s geometry (exactly one of
        ``short_side``, ``fit``, ``crop``; ``crop`` is a centre crop after an aspect-keeping resize):
        cupy arrays, the crops views. The pixels are :func:`mmcore.resize`'s to that geometry, i.e.
        what ``mmcore.thumbnail(jpeg, ..., reducing_gap=None)`` gives from the same (oriented)
        full-size decode; with a reducing gap the CPU thumbnail starts from a reduced JPEG decode."""
        from .image import _geometry

        s, fw, fh, cw, ch, _, _ = _geometry(short_side, fit, crop, None)
        rows = _image_rows(images)
        for i, a in enumerate(rows):
            if not (is_device_array(a) or isinstance(a, np.ndarray)):
                raise TypeError(f"image {i}: expected a uint8 HxW[xC] array, got {type(a).__name__}")
        geo = [
            _core.thumbnail_geometry(int(a.shape[1]), int(a.shape[0]), s, fw, fh, cw, ch, 0, 0, bool(upscale))
            for a in rows
        ]
        resized = self.resize(rows, [(g[0], g[1]) for g in geo], filter=filter) if rows else []
        out = []
        for r, (rw, rh, ow, oh) in zip(resized, geo, strict=True):
            x0, y0 = (rw - ow) // 2, (rh - oh) // 2
            out.append(r[y0 : y0 + oh, x0 : x0 + ow] if (ow, oh) != (rw, rh) else r)
        return out

    # -- decode ------------------------------------------------------------------------------------
    def decode(
        self,
        srcs: Sequence[Any],
        *,
        max_pixels: int | None = None,
        cpu_share: float | None = None,
        threads: int | None = None,
    ) -> GpuDecoded:
        """JPEG bytes decoded into one device buffer (RGB, stored orientation): by nvJPEG's hardware
        engine where the GPU has one, with the bitstreams it does not take (progressive) and a share
        of the others decoded at the same time by mmcore's CPU decoder on every host thread and
        copied in; by nvJPEG's default backend elsewhere. ``cpu_share`` (0..1) is the share of the
        engine's pixels the host threads take (None: one that makes both finish together on an
        H200 host with this many threads; 0: the engine takes all it can); the split is by pixels
        in index order, so the same batch always decodes the same way; 1: every image on the host
        threads, on any GPU: exactly ``decode_batch(srcs, exif_orientation=False)``'s pixels, statuses
        and messages, straight into device memory. ``srcs``, ``max_pixels`` and ``threads`` (None:
        all host threads) are checked as :func:`mmcore.decode_batch` checks them (paths are read
        here; a None source is CORRUPT, "no data"). Bad or non-JPEG sources get their status and
        message; they never stop the batch. The whole batch goes into one buffer:
        :meth:`hash_sources` decodes in chunks."""
        if cpu_share is not None and not 0.0 <= float(cpu_share) <= 1.0:
            raise ValueError(f"cpu_share={cpu_share} must be between 0 and 1 (or None for the default)")
        if not hasattr(_core, "gpu_decode_plan"):
            raise DeviceError(Status.DEVICE, "mmcore was built without CUDA")
        nthreads = _threads(threads)
        blobs, unread = _decode_sources(srcs)
        descs, status, errors, total = _plan(blobs, unread, _max_pixels(max_pixels))
        cp = self._cp
        counts: dict[str, Any] = {
            "hardware": 0,
            "fallback": 0,
            "cpu": 0,
            "failed": 0,
            "hardware_available": False,
            "cpu_share": 0.0,
            "seconds": {"screen": 0.0, "hardware": 0.0, "cpu": 0.0, "fallback": 0.0},
        }
        with self._on():
            buf = cp.empty(max(total, 1), dtype=cp.uint8)
            if blobs:
                _load_nvjpeg()
                self._ready()
                status, errors, counts = self._call(
                    self._ctx.decode,
                    blobs,
                    descs,
                    status,
                    errors,
                    buf.data.ptr,
                    int(buf.nbytes),
                    -1.0 if cpu_share is None else float(cpu_share),
                    nthreads,
                )
            images: list[Any] = []
            for (off, stride, w, h, c), st in zip(descs.tolist(), status.tolist(), strict=True):
                if Status(int(st)).ok:
                    flat = buf[off : off + stride * h]
                    images.append(flat.reshape(h, stride)[:, : w * c].reshape(h, w, c))
                else:
                    images.append(None)
        return GpuDecoded(images, np.asarray(status, np.uint8), list(errors), buf, dict(counts))

    # -- search ------------------------------------------------------------------------------------
    def int8_topk(self, codes: Any, queries: Any, k: int) -> tuple[Any, Any]:
        """The k best rows of uint8 ``codes`` (N, D) for int8 ``queries`` (Q, D) by the exact integer
        dot product: ``(scores int32 (Q, k), positions int64 (Q, k))``, best first, ties by position,
        padded with (INT32_MIN, -1) when k > N. 1 <= k <= :data:`MAX_K` (1024): a larger k is a
        ValueError (the CPU's :func:`mmcore.score_int8` takes any k)."""
        return self._topk(self._ctx.int8_topk, codes, queries, _topk_k(k), "uint8", "int8")

    def score_int8(self, codes: Any, queries: Any, params: Any, k: int) -> tuple[Any, Any]:
        """:func:`mmcore.score_int8` with the codes on the device: float queries (Q, D), host or
        device, are quantised on the host as the CPU does, ranked by the same exact integer scores;
        returns cupy ``(approximate inner products float32 (Q, k), positions int64 (Q, k))``; k is
        checked as the CPU checks it (an int, 1 <= k <= N) and must be <= :data:`MAX_K` (1024)."""
        from .quant import _check_params, _floats, _k_arg

        p = _check_params(params, "int8")
        n = len(codes)  # cupy, numpy and torch arrays all have len()
        kk = _topk_k(_k_arg(k, n))
        cp = self._cp
        with self._on():
            if is_device_array(queries) or (
                hasattr(queries, "__dlpack__") and not isinstance(queries, np.ndarray)
            ):
                queries = cp.asnumpy(_as_device(queries))  # device arrays refuse np.asarray
            t, s, const = p.query(_floats(queries, "queries", p.dim))
            ints, pos = self.int8_topk(codes, t, kk)
            # Two separate operations, as numpy does them (a fused multiply-add would round differently).
            scaled = cp.asarray(s)[:, None] * ints
            return (scaled + cp.asarray(const)[:, None]).astype(cp.float32), pos

    def hamming_knn(self, codes: Any, queries: Any, k: int) -> tuple[Any, Any]:
        """k nearest ``codes`` to ``queries`` by Hamming distance, as :meth:`mmcore.HammingIndex.knn`
        and faiss ``IndexBinaryFlat``: codes (N, W) uint64, or bytes (N, 8 W) uint8 such as PDQ's
        (N, 32) from :meth:`hash`; returns ``(distances int32 (Q, k), positions int64 (Q, k))``, ties by
        position, padded with (INT32_MAX, -1) when k > N. 1 <= k <= :data:`MAX_K` (1024): a larger
        k is a ValueError (:meth:`mmcore.HammingIndex.knn` on the CPU takes any k)."""
        kk = _topk_k(k)
        with self._on():
            return self._topk(self._ctx.hamming_knn, _words(codes), _words(queries), kk, "uint64", "uint64")

    def hamming_radius(
        self, codes: Any, queries: Any, r: int, *, method: Method = "auto"
    ) -> tuple[Any, Any, Any]:
        """Every row of ``codes`` within Hamming distance r (inclusive) of each query (codes and
        queries as for :meth:`hamming_knn`), as :meth:`mmcore.HammingIndex.radius` by position: cupy
        ``(lims int64 (Q + 1,), distances int32, positions int64)``; query q's results are
        ``lims[q]:lims[q + 1]``, by distance then position. A radius past the code length is the
        code length (it changes nothing), as on the CPU.

        ``method``: ``"mih"`` multi-index hashing on the device (codes of at most 256 bits: a table
        of the codes per substring, each query probing the buckets near its own; from 2^23 queries
        or 2^31 codes on, the brute force runs); ``"brute"`` Q * N distances (twice: a counting
        pass and a writing pass); ``"auto"`` (default) the cheaper by a cost model. The answer is
        the same for every method. Output room for 32 results per query is tried first; more mean
        a second run."""
        r = _nonneg_int("r", r)
        code = _join_method(method)
        with self._on():
            c, q = self._pair(_words(codes), _words(queries), "uint64", "uint64")
            n, words, nq = int(c.shape[0]), int(c.shape[1]), int(q.shape[0])
            r = min(r, 64 * words)
            lims = self._cp.zeros(nq + 1, dtype=self._cp.int64)
            args = (c.data.ptr, n, words, q.data.ptr, nq, r, lims.data.ptr)
            ids, dist = self._sized_call(
                self._ctx.hamming_radius, args, code, 32 * nq + 1024, ("int64", "int32")
            )
        return lims, dist, ids

    def hamming_join(self, codes: Any, r: int, *, method: Method = "auto") -> tuple[Any, Any, Any]:
        """Every pair of rows a < b of ``codes`` (as for :meth:`hamming_knn`) within Hamming distance r
        (inclusive), ordered by (a, b): cupy ``(a int64, b int64, distance int32)``, equal to
        :meth:`mmcore.HammingIndex.join` by position (a radius past the code length is the code
        length).

        ``method``: ``"mih"`` multi-index hashing on the device (codes of at most 256 bits: the
        codes are bucketed by substrings, and only codes in nearby buckets are compared);
        ``"brute"`` about n^2 / 2 distances (twice: a counting pass and a writing pass); ``"auto"``
        (default) the cheaper by a cost model. The answer is the same for every method. Output
        room for n + 1024 pairs is tried first; more pairs mean a second run with room for all."""
        r = _nonneg_int("r", r)
        code = _join_method(method)
        with self._on():
            c, _ = self._pair(_words(codes), None, "uint64", "uint64")
            n, words = int(c.shape[0]), int(c.shape[1])
            args = (c.data.ptr, n, words, min(r, 64 * words))
            first, second, dist = self._sized_call(
                self._ctx.hamming_join, args, code, n + 1024, ("int64", "int64", "int32")
            )
        return first, second, dist

    def _sized_call(
        self, fn: Any, args: tuple[Any, ...], method: int, room: int, dtypes: tuple[str, ...]
    ) -> list[Any]:
        """``fn(*args, *outputs, capacity, method) -> count`` with outputs of ``room`` entries, then,
        when the count is larger, once more with room for the count; the outputs cut to the count.
        Call it under :meth:`_on`."""
        cp = self._cp
        outs = [cp.empty(room, dtype=t) for t in dtypes]
        self._ready()
        count = self._call(fn, *args, *(o.data.ptr for o in outs), room, method)
        if count > room:
            outs = [cp.empty(count, dtype=t) for t in dtypes]
            self._ready()
            got = self._call(fn, *args, *(o.data.ptr for o in outs), count, method)
            if got != count:
                raise DeviceError(Status.DEVICE, f"the device counted {count} results, then {got}")
        return [o[:count] for o in outs]

    def _pair(self, codes: Any, queries: Any, code_type: str, query_type: str) -> tuple[Any, Any]:
        """Contiguous device codes (N, W) of code_type and queries (Q, W) of query_type (None: none).
        Call it under :meth:`_on`."""
        cp = self._cp
        c = cp.ascontiguousarray(_as_device(codes))
        if c.dtype != np.dtype(code_type) or c.ndim != 2:
            raise ValueError(f"codes must be {code_type} (N, W), got {c.dtype} {c.shape}")
        if queries is None:
            return c, None
        q = cp.ascontiguousarray(_as_device(queries))
        if q.dtype != np.dtype(query_type) or q.ndim != 2 or q.shape[1] != c.shape[1]:
            raise ValueError(f"queries must be {query_type} (Q, {c.shape[1]}), got {q.dtype} {q.shape}")
        return c, q

    def _topk(
        self, fn: Any, codes: Any, queries: Any, k: int, code_type: str, query_type: str
    ) -> tuple[Any, Any]:
        """Checks codes (N, W) and queries (Q, W), runs the top-k kernel fn into new (Q, k) outputs."""
        cp = self._cp
        with self._on():
            c, q = self._pair(codes, queries, code_type, query_type)
            out = cp.empty((q.shape[0], k), dtype=cp.int32)
            pos = cp.empty((q.shape[0], k), dtype=cp.int64)
            self._ready()
            self._call(
                fn,
                c.data.ptr,
                c.shape[0],
                c.shape[1],
                q.data.ptr,
                q.shape[0],
                k,
                out.data.ptr,
                pos.data.ptr,
            )
        return out, pos


def _topk_k(k: Any) -> int:
    """k of a top-k kernel: an int in 1..MAX_K (HammingIndex.knn's check, then the kernels' limit)."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or not 1 <= k < 2**31:
        raise ValueError(f"k must be an int in [1, 2**31), got {k!r}")
    if k > MAX_K:
        raise ValueError(
            f"k={k} is more than the GPU top-k kernels take (mmcore.gpu.MAX_K = {MAX_K}); "
            "ask for fewer, or search on the CPU (mmcore.score_int8 / mmcore.HammingIndex.knn)"
        )
    return int(k)
