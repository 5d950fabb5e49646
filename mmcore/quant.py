"""Quantized embedding search: int8, 4-bit and binary codes scored with exact integer arithmetic,
top-k per query, and an optional exact float rerank.

Codes are integers and so are their scores: ``c . t`` with uint8 (or 4-bit) codes ``c`` and an int8
query ``t``, summed in int32 by the C++ kernels, equal a numpy oracle bit for bit. Floats enter
only where a query becomes ``t`` (per-query scale, rounded) and where integer scores become
approximate similarities (``s * dot + const``). ``rerank=n`` rescores the best ``n`` candidates
exactly with the float vectors kept next to the codes. See ``docs/quant.md``.

Before quantization every vector is reflected (a Householder reflection, an orthogonal map that
keeps inner products and distances) so that the data's mean direction lies along the diagonal.
Embeddings such as CLIP's have a large mean (norm ~0.7 on unit vectors), which otherwise piles
most of each query's weight onto a few dimensions and leaves the others a handful of int8 levels:
on the 47k MUGE CLIP set int8 recall@10 without rerank went from 0.970 to 0.990.

>>> import numpy as np, mmcore
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(1000, 64)).astype(np.float32)
>>> index = mmcore.QuantizedIndex(64, codec="int8", keep_float="memory")
>>> index.train(x)
>>> index.add(x)
>>> scores, ids = index.search(x[:3], k=2, rerank=20)
>>> ids[:, 0].tolist()
[0, 1, 2]
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from typing import IO, Any, Literal

import numpy as np
import numpy.typing as npt

from . import _core
from ._lock import _exclusive, _shared, _SharedLock
from .image import _threads
from .search import (
    IndexFormatError,
    _aligned_empty,
    _check_size,
    _grown_capacity,
    _ids_array,
    _raw,
    _read_header,
    _regrown,
    _write_sealed,
)

__all__ = [
    "QuantParams",
    "QuantizedIndex",
    "quantize_binary",
    "quantize_int4",
    "quantize_int8",
    "score_binary",
    "score_int4",
    "score_int8",
]

Codec = Literal["int8", "int4", "binary"]
Metric = Literal["ip", "l2", "cos"]
KeepFloat = Literal[False, "memory", "mmap"]

_CODECS: tuple[str, ...] = ("int8", "int4", "binary")
_METRICS: tuple[str, ...] = ("ip", "l2", "cos")
_LEVELS = {"int8": 255, "int4": 15}
_QMAX = 127  # query int8 range is -127..127 (symmetric, so -t never overflows)
# int4 range from these quantiles: 15 levels over min..max waste most of them on a few outliers
# (recall@10 without rerank on the MUGE set: 0.887 with min/max, 0.919 with 0.3% / 99.7%).
_INT4_QUANTILE = 0.003
_QUANTILE_SAMPLE = 50_000  # rows int4's quantiles look at (0.3 % of them is 150 rows)
_TRAIN_SAMPLE = 200_000  # rows train() looks at; per-dimension ranges settle long before that
_BATCH = 65_536  # rows converted / encoded per step in add()
_QUERY_BLOCK = 4_096  # queries scored per step in search(): bounds its temporaries
_MAX_DIM = 65_536  # code dimensions the C++ kernels take


def _floats(x: Any, name: str, dim: int | None, first_row: int = 0) -> npt.NDArray[np.float32]:
    """x as a C-contiguous float32 (N, D) array, finite, with D == dim when given (errors name
    rows counted from first_row)."""
    return _floats_sq(x, name, dim, first_row)[0]


def _floats_sq(
    x: Any, name: str, dim: int | None, first_row: int = 0
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """_floats, and each row's sum of squares in float32 (Inf past float32's range) for
    _check_norms."""
    a = np.asarray(x)
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, D) array, got shape {a.shape}")
    if a.dtype not in (np.float32, np.float16, np.float64):
        raise ValueError(f"{name} must be float32 or float16, got {a.dtype}")
    if dim is not None and a.shape[1] != dim:
        raise ValueError(f"{name} has dimension {a.shape[1]}, this index/params expect {dim}")
    with np.errstate(over="ignore"):  # float64 past float32's range: Inf, named below
        f = np.ascontiguousarray(a, dtype=np.float32)
    # A row's sum of squares is finite when its values are (and its norm below 1.8e19): one
    # reduction, half the time of isfinite's whole-array mask; only the other rows are looked at.
    with np.errstate(over="ignore", invalid="ignore"):
        sq = np.einsum("ij,ij->i", f, f)
    suspect = np.flatnonzero(~np.isfinite(sq))
    bad = suspect[~np.isfinite(f[suspect]).all(axis=1)]
    if bad.size:
        i = int(bad[0])
        if np.isfinite(a[i]).all():
            v = a[i][~np.isfinite(f[i])][0]
            raise ValueError(
                f"{name} row {first_row + i} has a value beyond float32's range ({v:.3g}): "
                "scale the vectors down"
            )
        raise ValueError(f"{name} row {first_row + i} contains NaN or Inf ({bad.size} such rows)")
    return f, sq


def _check_norms(
    x: npt.NDArray[np.float32], name: str, first_row: int = 0, sq: npt.NDArray[np.float32] | None = None
) -> None:
    """ValueError naming the first row whose ||x||^2 passes float32's range (||x|| >= 1.8e19).
    Below it, |q . x| <= ||q|| ||x|| of two such vectors cannot overflow a float32 score. ``sq``:
    the rows' float32 sums of squares where the caller has them (_floats_sq)."""
    limit = np.finfo(np.float32).max
    # In float32 first (no copy): its rounding is far below a factor 2, so only the rows past half
    # the limit (or overflowing) are summed again in float64.
    if sq is None:
        with np.errstate(over="ignore"):
            sq = np.einsum("ij,ij->i", x, x)
    near = np.flatnonzero(~(sq < limit / 2))
    if near.size:
        x64 = x[near].astype(np.float64)
        over = ~(np.einsum("ij,ij->i", x64, x64) < limit)
        if over.any():
            raise ValueError(_norm_error(name, first_row + int(near[np.argmax(over)])))


def _norm_error(name: str, row: int) -> str:
    return (
        f"{name} row {row} has ||x||^2 beyond float32's range (||x|| must stay below 1.8e19, "
        "so that inner products stay finite): scale the vectors down"
    )


def _int_arg(name: str, v: Any, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    return int(v)


def _train_sample(x: Any) -> Any:
    """At most _TRAIN_SAMPLE evenly spaced rows of x, taken before any conversion or copy."""
    raw = np.asarray(x)
    if raw.ndim == 2 and raw.shape[0] > _TRAIN_SAMPLE:
        raw = raw[:: -(-raw.shape[0] // _TRAIN_SAMPLE)]
    return raw


def _reflector(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32] | None:
    """The unit vector v of the Householder reflection I - 2 v v^T that maps the mean direction of
    x onto the diagonal (1, ..., 1) / sqrt(D); None when there is nothing to move."""
    m = x.mean(axis=0, dtype=np.float64)
    norm = float(np.linalg.norm(m))
    if norm == 0.0:
        return None
    v = m / norm - 1.0 / np.sqrt(x.shape[1])
    nv = float(np.linalg.norm(v))
    if nv < 1e-6:
        return None
    out: npt.NDArray[np.float32] = (v / nv).astype(np.float32)
    return out


def _reflect(x: npt.NDArray[np.float32], v: npt.NDArray[np.float32] | None) -> npt.NDArray[np.float32]:
    """x reflected, x - 2 (x . v) v, in float32 (``_core.quant_reflect``: the dot summed in float64
    in a fixed order, so that a vector gets the same codes on every machine; the encoders reflect
    the same way). A row of huge finite values (||x|| beyond about 1e38) can come out with Inf or
    NaN: callers whose rows were not checked against the 1.8e19 norm limit name such a row with
    _check_reflected."""
    if v is None:
        return x
    return _core.quant_reflect(np.ascontiguousarray(x), v, 0)


def _check_reflected(xr: npt.NDArray[np.floating[Any]], name: str, first_row: int) -> None:
    """ValueError naming the first of the reflected rows xr (of finite rows) that left float32's
    range."""
    bad = ~np.isfinite(xr).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{name} row {first_row + int(np.argmax(bad))} is beyond float32's range after the params' "
            "reflection (QuantParams.reflect; ||x|| must stay well below 3.4e38): scale the vectors down"
        ) from None


def _vec(d: dict[str, Any], key: str, dim: int | None) -> npt.NDArray[np.float32] | None:
    v = d.get(key)
    if v is None:
        return None
    a = np.ascontiguousarray(np.asarray(v, dtype=np.float32).reshape(-1))
    if dim is not None and a.shape[0] != dim:
        raise ValueError(f"params {key} has {a.shape[0]} values, expected {dim}")
    if not np.isfinite(a).all():
        raise ValueError(f"params {key} contains NaN or Inf")
    return a


@dataclass(frozen=True, eq=False)
class QuantParams:
    """How floats become codes, for one codec: int8 / int4 keep a per-dimension affine map
    ``x_d ~= scale_d * c_d + offset_d`` (c in 0..255 or 0..15); binary keeps the per-dimension
    ``mean`` (bit d is ``x_d > mean_d``). ``reflect`` (optional, int8 / int4) is the unit vector of
    the Householder reflection applied to vectors and queries before that (see the module doc).

    ``to_dict`` / ``from_dict`` give plain lists, for storing next to codes kept elsewhere (a
    Parquet column's metadata, JSON).

    >>> import numpy as np, mmcore
    >>> x = np.random.default_rng(0).normal(size=(100, 8)).astype(np.float32)
    >>> p = mmcore.QuantParams.fit(x, "int8")
    >>> p.codec, p.dim
    ('int8', 8)
    >>> q = mmcore.QuantParams.from_dict(p.to_dict())
    >>> np.array_equal(q.scale, p.scale) and np.array_equal(q.reflect, p.reflect)
    True
    """

    codec: str
    scale: npt.NDArray[np.float32] | None = None
    offset: npt.NDArray[np.float32] | None = None
    mean: npt.NDArray[np.float32] | None = None
    reflect: npt.NDArray[np.float32] | None = None

    def __post_init__(self) -> None:
        for key in ("scale", "offset", "mean", "reflect"):
            v = getattr(self, key)
            if v is not None:
                a = np.ascontiguousarray(np.asarray(v, dtype=np.float32).reshape(-1))
                if not np.isfinite(a).all():
                    raise ValueError(f"params {key} contains NaN or Inf")
                object.__setattr__(self, key, a)
        if self.codec not in _CODECS:
            raise ValueError(f"codec must be one of {_CODECS}, got {self.codec!r}")
        if self.codec == "binary":
            if self.mean is None or self.scale is not None or self.offset is not None:
                raise ValueError("binary params need mean (and no scale / offset)")
            if self.mean.shape[0] % 64:
                raise ValueError(f"binary codes need a dimension multiple of 64, got {self.mean.shape[0]}")
        else:
            if self.scale is None or self.offset is None or self.mean is not None:
                raise ValueError(f"{self.codec} params need scale and offset (and no mean)")
            if self.scale.shape != self.offset.shape:
                raise ValueError(f"scale {self.scale.shape} and offset {self.offset.shape} differ in shape")
            if (self.scale < 0).any():
                raise ValueError("scale must be >= 0")
        if self.reflect is not None and self.reflect.shape[0] != self.dim:
            raise ValueError(f"reflect has {self.reflect.shape[0]} values, expected {self.dim}")
        if (
            self.reflect is not None
            and abs(float(np.linalg.norm(self.reflect.astype(np.float64))) - 1) > 1e-3
        ):
            raise ValueError("reflect must be a unit vector (a Householder reflection's)")

    @property
    def dim(self) -> int:
        """The dimension of the vectors these params encode."""
        v = self.mean if self.codec == "binary" else self.scale
        assert v is not None
        return int(v.shape[0])

    @classmethod
    def fit(cls, x: Any, codec: Codec = "int8", *, reflect: bool = True) -> QuantParams:
        """Params for ``codec`` from sample vectors ``x`` (N, D): int8 spans each dimension's
        min..max, int4 its 0.3%..99.7% quantiles (values outside clip to the end codes), binary
        centres on the mean. At most 200,000 rows are used (an even sample; 50,000 for the int4
        quantiles)."""
        if codec not in _CODECS:
            raise ValueError(f"codec must be one of {_CODECS}, got {codec!r}")
        a = _floats(_train_sample(x), "x", None)
        if a.shape[0] == 0:
            raise ValueError("fit needs at least one vector")
        return _fit(a, codec, _reflector(a) if reflect and codec != "binary" else None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (lists of floats); :meth:`from_dict` reads it back exactly."""
        out: dict[str, Any] = {"codec": self.codec}
        for key in ("scale", "offset", "mean", "reflect"):
            v = getattr(self, key)
            if v is not None:
                out[key] = v.tolist()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantParams:
        """The params :meth:`to_dict` wrote."""
        if not isinstance(d, dict) or "codec" not in d:
            raise ValueError("params dict needs a 'codec' key")
        scale = _vec(d, "scale", None)
        return cls(
            codec=str(d["codec"]),
            scale=scale,
            offset=_vec(d, "offset", None),
            mean=_vec(d, "mean", None),
            reflect=_vec(d, "reflect", None),
        )

    # -- the two halves of a score ----------------------------------------------------------------

    def encode(
        self, x: npt.NDArray[np.float32], threads: int, name: str = "x", first_row: int = 0
    ) -> npt.NDArray[Any]:
        """Codes of finite float32 rows (already checked); a row that the reflection takes past
        float32's range raises, named ``name`` row ``first_row + i``."""
        if self.codec == "binary":
            assert self.mean is not None
            return _core.quant_encode_binary(x, self.mean, threads)
        assert self.scale is not None and self.offset is not None
        encode = _core.quant_encode_int4 if self.codec == "int4" else _core.quant_encode_int8
        try:
            return encode(x, self.scale, self.offset, threads, self.reflect)  # reflected row by row
        except ValueError:  # x was finite: a row the reflection took out of float32's range
            _check_reflected(_reflect(x, self.reflect), name, first_row)
            raise

    def query(
        self, q: npt.NDArray[np.float32], name: str | None = "queries"
    ) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(t int8 (Q, D), s (Q,), const (Q,)) with ``x . q ~= s * (c . t) + const`` for int8/int4,
        of finite rows q; a row that the reflection takes past float32's range raises, named
        ``name`` (None: the caller checked ||q|| < 1.8e19, so no row can; a search skips the test)."""
        assert self.scale is not None and self.offset is not None
        qr = _reflect(q, self.reflect).astype(np.float64)
        if name is not None:
            _check_reflected(qr, name, 0)
        w = qr * self.scale
        s = np.abs(w).max(axis=1) / _QMAX
        s[s == 0] = 1.0
        t = np.clip(np.rint(w / s[:, None]), -_QMAX, _QMAX).astype(np.int8)
        return t, s, np.einsum("ij,j->i", qr, self.offset.astype(np.float64))


def _fit(a: npt.NDArray[np.float32], codec: str, v: npt.NDArray[np.float32] | None) -> QuantParams:
    if codec == "binary":
        return QuantParams("binary", mean=a.mean(axis=0, dtype=np.float64).astype(np.float32))
    # A row that the reflection takes past float32's range shows as a non-finite range, named below.
    with np.errstate(over="ignore", invalid="ignore"):
        if codec == "int4" and a.shape[0] > 1:
            ar = _reflect(a[:: -(-a.shape[0] // _QUANTILE_SAMPLE)], v)
            lo, hi = np.quantile(ar, [_INT4_QUANTILE, 1 - _INT4_QUANTILE], axis=0)
        else:
            # Slice by slice: a reflected copy of every row is fresh memory, slow to fault in.
            lo = np.full(a.shape[1], np.inf, dtype=np.float32)
            hi = np.full(a.shape[1], -np.inf, dtype=np.float32)
            for i in range(0, a.shape[0], 16384):
                part = _reflect(a[i : i + 16384], v)
                np.minimum(lo, part.min(axis=0), out=lo)
                np.maximum(hi, part.max(axis=0), out=hi)
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            for i in range(0, a.shape[0], 16384):
                _check_reflected(_reflect(a[i : i + 16384], v), "x", i)
    scale = ((hi.astype(np.float64) - lo) / _LEVELS[codec]).astype(np.float32)
    return QuantParams(codec, scale=scale, offset=lo.astype(np.float32), reflect=v)


# ------------------------------------------------------------------------------------------------
# Functions on codes the caller keeps


def _check_params(params: Any, codec: str) -> QuantParams:
    if not isinstance(params, QuantParams):
        raise ValueError(
            f"params must be a QuantParams (QuantParams.fit(x, {codec!r})), got {type(params).__name__}"
        )
    if params.codec != codec:
        raise ValueError(f"these params are for {params.codec}, not {codec}")
    return params


def _quantize(x: Any, params: Any, codec: str, threads: int | None) -> npt.NDArray[Any]:
    p = _check_params(params, codec)
    return p.encode(_floats(x, "x", p.dim), _threads(threads))


def _codes_arg(codes: Any, dtype: type, width: int, name: str = "codes") -> npt.NDArray[Any]:
    a = np.asarray(codes)
    if a.dtype != dtype or a.ndim != 2 or a.shape[1] != width:
        raise ValueError(f"{name} must be {np.dtype(dtype).name} (N, {width}), got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


def _k_arg(k: Any, n: int) -> int:
    kk = _int_arg("k", k, 1)
    if kk > n:
        raise ValueError(f"k={kk} is larger than the {n} vectors searched")
    return kk


def _score_scalar(
    codes: Any, queries: Any, params: Any, k: int, codec: str, threads: int | None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    p = _check_params(params, codec)
    width = p.dim if codec == "int8" else (p.dim + 1) // 2
    c = _codes_arg(codes, np.uint8, width)
    kk = _k_arg(k, c.shape[0])
    t, s, const = p.query(_floats(queries, "queries", p.dim))
    score = _core.quant_score_int8 if codec == "int8" else _core.quant_score_int4
    ints, pos = score(c, t, kk, _threads(threads))
    return (s[:, None] * ints + const[:, None]).astype(np.float32), pos


def quantize_int8(x: Any, params: QuantParams, *, threads: int | None = None) -> npt.NDArray[np.uint8]:
    """uint8 codes (N, D) of float vectors x (N, D) with int8 ``params``
    (:meth:`QuantParams.fit`).

    >>> import numpy as np, mmcore
    >>> x = np.random.default_rng(1).normal(size=(500, 16)).astype(np.float32)
    >>> x /= np.linalg.norm(x, axis=1, keepdims=True)
    >>> p = mmcore.QuantParams.fit(x, "int8")
    >>> codes = mmcore.quantize_int8(x, p)
    >>> codes.dtype, codes.shape
    (dtype('uint8'), (500, 16))
    >>> scores, pos = mmcore.score_int8(codes, x[:2], p, k=1)
    >>> pos.tolist()
    [[0], [1]]
    """
    return _quantize(x, params, "int8", threads)


def score_int8(
    codes: Any,
    queries: Any,
    params: QuantParams,
    k: int,
    *,
    threads: int | None = None,
    device: Literal["cpu", "cuda"] | None = None,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """The k best rows of int8 ``codes`` (N, D) for each float query (Q, D) by inner product:
    ``(approximate inner products float32 (Q, k), row positions int64 (Q, k))``, best first,
    ties by position. The ranking is by the exact integer score; k must be <= N.

    ``device="cuda"`` (or device-resident codes, e.g. a cupy array, with ``device`` left None)
    scores on the GPU (:mod:`mmcore.gpu`; the same answer) and returns cupy arrays."""
    from .image import _on_gpu

    if _on_gpu(device, codes):
        from .gpu import default_context

        return default_context().score_int8(codes, queries, params, k)
    return _score_scalar(codes, queries, params, k, "int8", threads)


def quantize_int4(x: Any, params: QuantParams, *, threads: int | None = None) -> npt.NDArray[np.uint8]:
    """4-bit codes (N, ceil(D / 2)) uint8 of x (N, D): dimension 2i in the low nibble of byte i,
    2i + 1 in the high one.

    >>> import numpy as np, mmcore
    >>> x = np.random.default_rng(1).normal(size=(500, 16)).astype(np.float32)
    >>> p = mmcore.QuantParams.fit(x, "int4")
    >>> mmcore.quantize_int4(x, p).shape
    (500, 8)
    """
    return _quantize(x, params, "int4", threads)


def score_int4(
    codes: Any, queries: Any, params: QuantParams, k: int, *, threads: int | None = None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """As :func:`score_int8` for 4-bit codes (N, ceil(D / 2))."""
    return _score_scalar(codes, queries, params, k, "int4", threads)


def quantize_binary(x: Any, params: QuantParams, *, threads: int | None = None) -> npt.NDArray[np.uint64]:
    """Sign codes (N, D / 64) uint64 of x (N, D): bit d (bit d % 64 of word d // 64) is
    ``x_d > mean_d``. D must be a multiple of 64.

    >>> import numpy as np, mmcore
    >>> x = np.random.default_rng(1).normal(size=(500, 128)).astype(np.float32)
    >>> p = mmcore.QuantParams.fit(x, "binary")
    >>> codes = mmcore.quantize_binary(x, p)
    >>> codes.shape, mmcore.score_binary(codes, x[:1], p, k=1)[1].tolist()
    ((500, 2), [[0]])
    """
    return _quantize(x, params, "binary", threads)


def score_binary(
    codes: Any, queries: Any, params: QuantParams, k: int, *, threads: int | None = None
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
    """The k rows of sign ``codes`` (N, D / 64) nearest each float query (Q, D) in Hamming
    distance: ``(distances int32 (Q, k), positions int64 (Q, k))``, smallest first, ties by
    position."""
    p = _check_params(params, "binary")
    c = _codes_arg(codes, np.uint64, p.dim // 64)
    kk = _k_arg(k, c.shape[0])
    qb = p.encode(_floats(queries, "queries", p.dim), _threads(threads))
    return _core.quant_score_binary(c, qb, kk, _threads(threads))


# ------------------------------------------------------------------------------------------------
# The index

# File layout, all little-endian: a 128-byte header; at byte 128 the params (float32 vectors of
# pdim values: scale, offset, then reflect when flagged; binary: mean); then, each starting at a
# multiple of 64 (zero padding between), the codes (n x code_bytes), the int64 ids when flagged,
# the float32 vectors (n x dim) when flagged. The payload CRC-32 covers every byte after the
# header; the header CRC-32 covers the bytes before it.
MAGIC = b"MMQNTIDX"
FORMAT_VERSION = 1
# ... payload CRC, the norms section's offset (0 without one: older files have zeros there), pad,
# header CRC.
_HEADER = struct.Struct("<8s7I6QIQ28xI")
assert _HEADER.size == 128
# _FLAG_NORMS: l2 int8 / int4 with each row's ||x||^2 as float32 (files without it hold the older
# layout, ||x||^2 quantized as a last code column, which load() still reads and searches).
_FLAG_IDS, _FLAG_FLOATS, _FLAG_REFLECT, _FLAG_NORMS = 1, 2, 4, 8
_KNOWN_FLAGS = _FLAG_IDS | _FLAG_FLOATS | _FLAG_REFLECT | _FLAG_NORMS


def _align(v: int) -> int:
    return -(-v // 64) * 64


def _layout(codec: int, pdim: int, code_bytes: int, dim: int, n: int, flags: int) -> tuple[int, ...]:
    """(params_off, codes_off, ids_off, floats_off, norms_off, end); absent sections have offset 0."""
    params_off = _HEADER.size
    vectors = 1 if codec == 2 else 2 + bool(flags & _FLAG_REFLECT)
    codes_off = _align(params_off + 4 * pdim * vectors)
    end = codes_off + n * code_bytes
    ids_off = floats_off = 0
    if flags & _FLAG_IDS:
        ids_off = _align(end)
        end = ids_off + 8 * n
    if flags & _FLAG_FLOATS:
        floats_off = _align(end)
        end = floats_off + 4 * n * dim
    norms_off = 0
    if flags & _FLAG_NORMS:
        norms_off = _align(end)
        end = norms_off + 4 * n
    return params_off, codes_off, ids_off, floats_off, norms_off, end


def _sq_norms(x: npt.NDArray[np.float32], first_row: int) -> npt.NDArray[np.float32]:
    """||x||^2 of each row, summed in float64, as float32 (ValueError where that overflows)."""
    x64 = x.astype(np.float64)
    sq = np.einsum("ij,ij->i", x64, x64)
    if sq.size and not sq.max() < np.finfo(np.float32).max:
        raise ValueError(_norm_error("x", first_row + int(np.argmax(sq >= np.finfo(np.float32).max))))
    out: npt.NDArray[np.float32] = sq.astype(np.float32)
    return out


class QuantizedIndex:
    """Quantized vectors searched by exact integer scores, with an optional exact float rerank.

    ``codec``: ``"int8"`` (D bytes per vector), ``"int4"`` (ceil(D / 2) bytes) or ``"binary"``
    (D / 8 bytes, D a multiple of 64). ``metric``: ``"ip"`` (inner product, larger first),
    ``"cos"`` (vectors and queries normalised, then inner product) or ``"l2"`` (squared
    distance, smallest first; int8 / int4 keep each vector's ``||x||^2`` as a float32 beside its
    code, and the scan ranks by ``2 q.x - ||x||^2`` from the integer score of 2q and that
    norm). ``keep_float``: keep the float32 vectors for ``rerank`` in memory (``"memory"``), in a
    temporary file mapped into memory (``"mmap"``), or not at all (``False``, the default;
    ``rerank`` then raises).

    Scores from ``search``: with ``rerank`` exact similarities (``ip``, ``cos``) or squared
    distances (``l2``) from the kept floats; without it, int8 / int4 give approximations from the
    integer score and binary gives Hamming distances (as float32, smallest first).

    ``add`` appends; ids default to a running count (0, 1, ... in order of addition, never
    reused after ``remove``; after ids you give, it continues above the largest of them). Ids you
    give are any int64 values: they may repeat or be negative (``remove`` drops every row of an id).

    Threads: one index may be used from many threads. Searches run side by side (their scans
    release the GIL); ``add``, ``remove`` and ``train`` each wait for the searches under way and
    hold off new ones until they finish, so a search sees the index as it was before or after a
    whole call, never part way (``save``, pickling and the ``codes`` / ``ids`` properties count
    as searches). Pickling and ``copy.deepcopy`` carry the vectors as data and give an
    independent index with the same ``keep_float`` (an ``"mmap"`` copy gets its own temporary
    file).

    >>> import numpy as np, mmcore, tempfile, os
    >>> x = np.random.default_rng(2).normal(size=(300, 64)).astype(np.float32)
    >>> index = mmcore.QuantizedIndex(64, codec="int4", metric="l2", keep_float="memory")
    >>> index.train(x)
    >>> index.add(x, ids=np.arange(300) + 1000)
    >>> index.remove([1000, 1001])
    2
    >>> d, ids = index.search(x[2:5], k=1, rerank=50)
    >>> ids.tolist(), d[0].round(3).tolist()
    ([[1002], [1003], [1004]], [0.0])
    >>> path = os.path.join(tempfile.mkdtemp(), "vectors.mmq")
    >>> index.save(path)
    >>> again = mmcore.QuantizedIndex.load(path)
    >>> len(again), again.search(x[5:6], k=1, rerank=50)[1].tolist()
    (298, [[1005]])
    """

    def __init__(
        self,
        dim: int,
        *,
        codec: Codec = "int8",
        metric: Metric = "ip",
        keep_float: KeepFloat = False,
    ) -> None:
        self._dim = _int_arg("dim", dim, 1)
        if codec not in _CODECS:
            raise ValueError(f"codec must be one of {_CODECS}, got {codec!r}")
        if metric not in _METRICS:
            raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")
        if keep_float not in (False, "memory", "mmap"):
            raise ValueError(f"keep_float must be False, 'memory' or 'mmap', got {keep_float!r}")
        if codec == "binary" and self._dim % 64:
            raise ValueError(f"codec='binary' needs dim a multiple of 64, got {self._dim}")
        self._codec: str = codec
        self._metric: str = metric
        self._keep: KeepFloat = keep_float
        # l2 int8 / int4 keep ||x||^2 per row in float32 (_norms_buf). Indexes loaded from files
        # without it carry ||x||^2 as a last code dimension instead (_pdim = dim + 1, _augment).
        self._pdim = self._dim
        self._l2norms = metric == "l2" and codec != "binary"
        if self._pdim > _MAX_DIM:
            raise ValueError(f"dim must be at most {_MAX_DIM}, got {self._dim}")
        self._params: QuantParams | None = None
        self._n = 0
        self._next_id = 0
        self._codes: npt.NDArray[Any] = np.empty((0, self.code_width), dtype=self._code_dtype)
        self._ids_buf: npt.NDArray[np.int64] | None = None  # None: ids are positions
        self._float_buf: npt.NDArray[np.float32] | None = None
        self._float_file: IO[bytes] | None = None
        self._norms_buf: npt.NDArray[np.float32] | None = np.empty(0, np.float32) if self._l2norms else None
        self._lock = _SharedLock()

    # -- pickle and copy --------------------------------------------------------------------------

    @_shared
    def __getstate__(self) -> dict[str, Any]:
        """The index as data: no lock, no temporary file, every buffer cut to len(self) (a mapped
        file's rows travel as data). The views stay a snapshot once the lock is released: rows below
        len(self) never change (add writes past them; remove and growing swap in new buffers)."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_float_file")}
        for key in ("_codes", "_ids_buf", "_norms_buf", "_float_buf"):
            if state[key] is not None:
                state[key] = np.asarray(state[key][: self._n])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Fresh writable, aligned buffers, a new lock, and for ``keep_float="mmap"`` a new
        temporary file holding the floats (the mode comes back as it was)."""
        self.__dict__.update(state)
        self._lock = _SharedLock()
        self._float_file = None
        cap = max(self._n, 1)
        for key in ("_codes", "_ids_buf", "_norms_buf"):
            if getattr(self, key) is not None:
                setattr(self, key, _regrown(getattr(self, key), self._n, cap))
        floats = self._float_buf
        if floats is not None:
            self._float_buf = fresh = self._new_floats(cap)
            for i in range(0, self._n, _BATCH):  # in slices: an "mmap" copy never all on the heap
                fresh[i : i + _BATCH] = floats[i : i + _BATCH]

    # -- properties -------------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def codec(self) -> str:
        return self._codec

    @property
    def metric(self) -> str:
        return self._metric

    @property
    def keep_float(self) -> KeepFloat:
        return self._keep

    @property
    def params(self) -> QuantParams | None:
        """The trained :class:`QuantParams` (None before ``train``); D dimensions for every
        metric (an ``l2`` index keeps each row's ``||x||^2`` as a float beside the codes; files
        written before that, with a quantized D + 1-th dimension, load as they were)."""
        return self._params

    @property
    def is_trained(self) -> bool:
        return self._params is not None

    @property
    def code_width(self) -> int:
        """Columns of the code array: bytes (int8 / int4) or uint64 words (binary)."""
        if self._codec == "binary":
            return self._dim // 64
        return self._pdim if self._codec == "int8" else (self._pdim + 1) // 2

    @property
    def _code_dtype(self) -> type:
        return np.uint64 if self._codec == "binary" else np.uint8

    @property
    @_shared
    def codes(self) -> npt.NDArray[Any]:
        """A read-only view of the codes (N, code_width)."""
        v: npt.NDArray[Any] = self._codes[: self._n].view()
        v.flags.writeable = False
        return v

    @property
    @_shared
    def ids(self) -> npt.NDArray[np.int64]:
        """The id of every vector, int64 (N,)."""
        return self._ids_now()

    def _ids_now(self) -> npt.NDArray[np.int64]:
        """``ids`` without the lock, for the methods that hold it."""
        if self._ids_buf is None:
            return np.arange(self._n, dtype=np.int64)
        v: npt.NDArray[np.int64] = self._ids_buf[: self._n].view()
        v.flags.writeable = False
        return v

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return (
            f"QuantizedIndex(dim={self._dim}, codec={self._codec!r}, metric={self._metric!r}, "
            f"keep_float={self._keep!r}, n={self._n}, trained={self.is_trained})"
        )

    @_shared
    def memory_bytes(self) -> int:
        """Bytes held: codes, ids (when custom), float vectors when ``keep_float="memory"`` (a
        ``"mmap"`` index's floats are pages of a file the OS may drop, not counted). Spare
        capacity kept for cheap repeated ``add`` is not counted."""
        item = 8 if self._codec == "binary" else 1
        total = self._n * self.code_width * item
        if self._ids_buf is not None:
            total += 8 * self._n
        if self._norms_buf is not None:
            total += 4 * self._n
        if self._keep == "memory":
            total += 4 * self._n * self._dim
        return total

    # -- building ---------------------------------------------------------------------------------

    def _prepare(
        self, x: Any, name: str, first_row: int = 0, check_norms: bool = True
    ) -> npt.NDArray[np.float32]:
        """x checked and converted (``check_norms=False``: the caller checks ||x||^2 itself)."""
        a, sq = _floats_sq(x, name, self._dim, first_row)
        if self._metric != "cos":
            if check_norms:
                _check_norms(a, name, first_row, sq)
        else:
            # float64: a finite float32 row's norm can overflow (1e19 per value) or underflow in float32
            norms = np.linalg.norm(a.astype(np.float64), axis=1)
            if (norms == 0).any():
                raise ValueError(
                    f"{name} row {int(np.argmax(norms == 0))} is all zeros: its cosine is undefined"
                )
            a = np.ascontiguousarray(a / norms[:, None], dtype=np.float32)
        return a

    def _augment(self, a: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Vectors as the codes see them: l2 appends ||x||^2, so that c . [2q, -1] ranks by
        distance (||q - x||^2 = ||q||^2 - (2 q.x - ||x||^2))."""
        if self._pdim == self._dim:
            return a
        return np.ascontiguousarray(np.hstack([a, np.einsum("ij,ij->i", a, a)[:, None]]), dtype=np.float32)

    @_exclusive
    def train(self, x: Any) -> None:
        """Fit the codec's params on sample vectors x (N, D) (float32 / float16); at most
        200,000 evenly spaced rows are used (taken before any conversion, and only they are checked
        for NaN / Inf). Must come before ``add``."""
        if self._n:
            raise ValueError(
                f"train before add: this index already holds {self._n} vectors encoded with its params"
            )
        a = self._prepare(_train_sample(x), "x")
        if a.shape[0] == 0:
            raise ValueError("train needs at least one vector")
        v = None
        if self._codec != "binary":
            v = _reflector(a)
            if v is not None and self._pdim != self._dim:  # the ||x||^2 column is not reflected
                v = np.append(v, np.float32(0.0))
        self._params = _fit(self._augment(a), self._codec, v)

    def _need_params(self) -> QuantParams:
        if self._params is None:
            raise ValueError("this index is not trained: call train(x) with sample vectors first")
        return self._params

    @_exclusive
    def add(self, x: Any, ids: Any = None, *, threads: int | None = None) -> None:
        """Append vectors x (N, D) (float32 / float16; NaN / Inf, values past float32's range and,
        for ``ip`` / ``l2``, a norm of 1.8e19 or more raise before anything is added), with int64
        ``ids`` (repeats and negative ids allowed) or, by default, the next ids of the running count."""
        p = self._need_params()
        a = np.asarray(x)
        if a.ndim == 1:
            a = a.reshape(1, -1)
        if a.ndim != 2:  # (named by its own shape: the slice below would show (0, ...))
            raise ValueError(f"x must be a 2-D (N, D) array, got shape {a.shape}")
        _floats(a[:0], "x", self._dim)  # dtype and dimension errors, before any work
        m = a.shape[0]
        new_ids = None if ids is None else _ids_array(ids, m)
        t = _threads(threads)
        self._reserve(self._n + m)
        # Rows are written past len(self) and counted only at the end: a bad row leaves the
        # index as it was.
        for at in range(0, m, _BATCH):
            # l2's stored norms are summed (and checked) below: no second pass over the rows here.
            part = self._prepare(a[at : at + _BATCH], "x", at, check_norms=self._norms_buf is None)
            r = part.shape[0]
            self._codes[self._n + at : self._n + at + r] = p.encode(self._augment(part), t, "x", at)
            if self._norms_buf is not None:
                self._norms_buf[self._n + at : self._n + at + r] = _sq_norms(part, at)
            if self._float_buf is not None:
                self._float_buf[self._n + at : self._n + at + r] = part
        if new_ids is not None and self._ids_buf is None:
            self._ids_buf = np.empty(self._codes.shape[0], dtype=np.int64)
            self._ids_buf[: self._n] = np.arange(self._n, dtype=np.int64)
        if new_ids is None and self._next_id + m - 1 > np.iinfo(np.int64).max:
            raise ValueError("the default ids would pass the int64 range: give ids")
        if self._ids_buf is not None:
            self._ids_buf[self._n : self._n + m] = (
                np.arange(self._next_id, self._next_id + m, dtype=np.int64) if new_ids is None else new_ids
            )
        self._n += m
        if new_ids is None:
            self._next_id += m
        elif m:  # default ids continue above every id given, so they never repeat one
            self._next_id = max(self._next_id, int(new_ids.max()) + 1)

    def _reserve(self, need: int) -> None:
        """Room for need rows in writable buffers (copies a loaded, read-only index)."""
        cap = _grown_capacity(self._codes, need)
        if not cap:
            return
        self._codes = _regrown(self._codes, self._n, cap)
        if self._ids_buf is not None:
            self._ids_buf = _regrown(self._ids_buf, self._n, cap)
        if self._norms_buf is not None:
            self._norms_buf = _regrown(self._norms_buf, self._n, cap)
        if self._keep:
            old = self._float_buf
            fresh = self._new_floats(cap)
            if old is not None:
                fresh[: self._n] = old[: self._n]
            self._float_buf = fresh

    def _new_floats(self, cap: int) -> npt.NDArray[np.float32]:
        arr, f = self._fresh_floats(cap)
        if f is not None:
            old = self._float_file
            self._float_file = f
            if old is not None:
                # the old mapping stays valid until its array is dropped; the file goes with it
                old.close()
        return arr

    def _fresh_floats(self, cap: int) -> tuple[npt.NDArray[np.float32], IO[bytes] | None]:
        """A float buffer of cap rows and, for "mmap", the temporary file behind it."""
        if self._keep == "memory":
            return _aligned_empty((cap, self._dim), np.float32), None
        # "mmap": an anonymous temporary file, grown by remapping (it is deleted when closed).
        f = tempfile.TemporaryFile(prefix="mmcore-floats-")  # noqa: SIM115 (lives as long as the index)
        try:
            f.truncate(4 * cap * self._dim)
            return np.memmap(f, dtype=np.float32, mode="r+", shape=(cap, self._dim)), f
        except BaseException:
            f.close()
            raise

    @_exclusive
    def remove(self, ids: Any) -> int:
        """Drop every vector whose id is in ``ids``; returns how many were removed. The others
        keep their ids. Each call rewrites the index into new buffers (O(n) time, and the kept
        rows' size on top of the index while it runs): remove many ids in one call, not one by
        one."""
        raw = np.asarray(ids).reshape(-1)
        drop = _ids_array(raw, raw.shape[0])  # integers that fit int64, not 10.7 or 2**64 - 1
        if self._n == 0 or drop.size == 0:
            return 0
        keep = ~np.isin(self._ids_now(), drop)
        gone = int(self._n - keep.sum())
        if gone == 0:
            return 0
        # The kept rows go to new buffers first; the index changes only once they all exist (an
        # error part way leaves it as it was). Floats are copied in slices, so an "mmap" index
        # never holds its kept floats on the heap.
        at = np.flatnonzero(keep)
        m = len(at)
        cap = max(m, 1)
        # Each buffer is gathered in slices: a whole fancy-indexed copy first would be a second
        # temporary of the index's size.
        codes = _aligned_empty((cap, self.code_width), self._code_dtype)
        ids_buf = _aligned_empty(cap, np.int64)
        norms = None if self._norms_buf is None else _aligned_empty(cap, np.float32)
        floats = file = None
        if self._float_buf is not None:
            floats, file = self._fresh_floats(cap)
        ids_now = self._ids_now()
        for i in range(0, m, _BATCH):
            rows = at[i : i + _BATCH]
            codes[i : i + _BATCH] = self._codes[rows]
            ids_buf[i : i + _BATCH] = ids_now[rows]
            if norms is not None and self._norms_buf is not None:
                norms[i : i + _BATCH] = self._norms_buf[rows]
            if floats is not None and self._float_buf is not None:
                floats[i : i + _BATCH] = self._float_buf[rows]
        self._codes, self._ids_buf, self._norms_buf, self._n = codes, ids_buf, norms, m
        if floats is not None:
            old, self._float_buf, self._float_file = self._float_file, floats, file
            if old is not None:
                old.close()  # the old mapping went with its array
        return gone

    # -- search -----------------------------------------------------------------------------------

    def search(
        self, q: Any, k: int, *, rerank: int = 0, threads: int | None = None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The k best vectors for every query q (Q, D): ``(scores float32 (Q, k), ids int64
        (Q, k))``, best first (largest similarity for ``ip`` / ``cos``, smallest distance for
        ``l2`` and for binary codes without rerank), ties by position.

        ``rerank=n`` (needs ``keep_float``): the best max(n, k) by code score are rescored exactly
        with the float vectors and the best k of those returned. k must be <= len(index)."""
        lock = self._lock  # held all along (not by @_shared: its *args / **kwargs cost a microsecond)
        lock.acquire_shared()
        try:
            return self._search(q, k, rerank, threads)
        finally:
            lock.release_shared()

    def _search(
        self, q: Any, k: int, rerank: int, threads: int | None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """search's work, under the lock."""
        p = self._need_params()
        if self._n == 0:
            raise ValueError("the index is empty: add vectors before searching")
        k = _k_arg(k, self._n)
        rerank = _int_arg("rerank", rerank, 0)
        if rerank and self._float_buf is None:
            raise ValueError(
                "rerank needs the float vectors: create the index with keep_float='memory' or 'mmap'"
            )
        # ||q|| < 1.8e19 (ip / l2, checked here) or 1 (cos): no reflection of q or 2q overflows, so
        # p.query(..., None) skips that test.
        qf = self._prepare(q, "queries")
        t = _threads(threads)
        m = min(max(rerank, k), self._n) if rerank else k
        if len(qf) <= _QUERY_BLOCK:
            return self._search_block(qf, k, m, rerank, t, p)
        # Blocks of queries: the temporaries (float64 query copies, the (Q, m) candidate scores,
        # the kernels' candidate buffers) take 8-15x the queries' own size, for the block only.
        scores_out = np.empty((len(qf), k), dtype=np.float32)
        ids_out = np.empty((len(qf), k), dtype=np.int64)
        for at in range(0, len(qf), _QUERY_BLOCK):
            end = min(at + _QUERY_BLOCK, len(qf))
            scores_out[at:end], ids_out[at:end] = self._search_block(qf[at:end], k, m, rerank, t, p)
        return scores_out, ids_out

    def _search_block(
        self, qf: npt.NDArray[np.float32], k: int, m: int, rerank: int, t: int, p: QuantParams
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """search of checked queries qf: m candidates by code score, reranked to k when asked."""
        codes = self._codes[: self._n]
        if self._codec == "binary":
            dist, pos = _core.quant_score_binary(codes, p.encode(qf, t), m, t)
            scores = dist.astype(np.float32)
        elif self._norms_buf is not None:
            # l2: rank by 2 q.x - ||x||^2, the integer score of 2q (its own int8 scale) less each
            # row's float ||x||^2; distance = ||q||^2 - (that + the query's offset term).
            qi, s, const = p.query(np.ascontiguousarray(2 * qf, dtype=np.float32), None)
            keys, pos = _core.quant_score_l2(
                codes, qi, s, self._norms_buf[: self._n], m, t, self._codec == "int4"
            )
            qq = np.einsum("ij,ij->i", qf.astype(np.float64), qf.astype(np.float64))
            scores = (qq[:, None] - (keys + const[:, None])).astype(np.float32)
        else:
            qa = qf if self._pdim == self._dim else np.hstack([2 * qf, -np.ones((len(qf), 1), np.float32)])
            qi, s, const = p.query(np.ascontiguousarray(qa, dtype=np.float32), None)
            score = _core.quant_score_int8 if self._codec == "int8" else _core.quant_score_int4
            ints, pos = score(codes, qi, m, t)
            approx = s[:, None] * ints + const[:, None]
            if self._metric == "l2":
                approx = np.einsum("ij,ij->i", qf, qf)[:, None].astype(np.float64) - approx
            scores = approx.astype(np.float32)
        if rerank:
            scores, pos = self._rerank(qf, pos, k, t)
        ids = pos if self._ids_buf is None else self._ids_buf[pos]
        return scores, np.ascontiguousarray(ids, dtype=np.int64)

    def _rerank(
        self, qf: npt.NDArray[np.float32], pos: npt.NDArray[np.int64], k: int, threads: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        floats = self._float_buf
        assert floats is not None
        # C++: each candidate's row is read once (prefetched a few ahead), scored in float64 and
        # rounded to float32; ties by position; queries split across threads.
        scores, out_p = _core.quant_rerank(
            floats[: self._n], qf, np.ascontiguousarray(pos), k, self._metric == "l2", threads
        )
        return scores, out_p

    # -- files ------------------------------------------------------------------------------------

    @_shared
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to ``path`` (atomically: a temporary file renamed over it). Layout in
        ``docs/quant.md``: a 128-byte little-endian header (magic ``MMQNTIDX``, version, codec,
        metric, dims, n, flags, section offsets, CRC-32 of the payload and of the header), the
        params, the codes, the ids (when custom), the float vectors (when kept)."""
        p = self._need_params()
        path = os.fspath(path)
        flags = (_FLAG_IDS if self._ids_buf is not None else 0) | (_FLAG_FLOATS if self._keep else 0)
        if p.reflect is not None:
            flags |= _FLAG_REFLECT
        if self._norms_buf is not None:
            flags |= _FLAG_NORMS
        item = 8 if self._codec == "binary" else 1
        codec_no, metric_no = _CODECS.index(self._codec), _METRICS.index(self._metric)
        code_bytes = self.code_width * item
        params_off, codes_off, ids_off, floats_off, norms_off, end = _layout(
            codec_no, self._pdim, code_bytes, self._dim, self._n, flags
        )
        vectors = (
            [p.mean]
            if self._codec == "binary"
            else [p.scale, p.offset] + ([p.reflect] if p.reflect is not None else [])
        )
        sections: list[tuple[int, memoryview]] = [
            (params_off, _raw(np.concatenate([np.asarray(v, dtype="<f4") for v in vectors])))
        ]
        sections.append(
            (codes_off, _raw(self._codes[: self._n].astype("<u8" if item == 8 else "u1", copy=False)))
        )
        if self._ids_buf is not None:
            sections.append((ids_off, _raw(self._ids_buf[: self._n].astype("<i8", copy=False))))
        if self._float_buf is not None:
            sections.append((floats_off, _raw(self._float_buf[: self._n].astype("<f4", copy=False))))
        if self._norms_buf is not None:
            sections.append((norms_off, _raw(self._norms_buf[: self._n].astype("<f4", copy=False))))
        crc = 0
        at = _HEADER.size
        chunks: list[memoryview | bytes] = []
        for off, data in sections:
            chunks += [bytes(off - at), data]
            at = off + data.nbytes
        for c in chunks:
            crc = zlib.crc32(c, crc)
        assert at == end
        fields = (MAGIC, FORMAT_VERSION, codec_no, metric_no, self._dim, self._pdim, code_bytes, flags)
        _write_sealed(
            path,
            _HEADER.pack(
                *fields, self._n, self._next_id, codes_off, ids_off, floats_off, end, crc, norms_off, 0
            ),
            chunks,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], mmap: bool = True, *, verify: bool = True) -> QuantizedIndex:
        """Open an index written by :meth:`save`. ``mmap=True`` maps the codes, ids and float
        vectors read-only from the file (``np.memmap``, no copy; the floats come back as
        ``keep_float="mmap"``); ``mmap=False`` reads them into memory. ``verify`` checks the
        payload CRC-32 (one read of the file); the header is always checked. Raises
        :class:`IndexFormatError` (a ``ValueError``) for a file that is not a valid index:
        wrong magic, unsupported version, truncated, trailing bytes, inconsistent header,
        checksum mismatch."""
        path = os.fspath(path)
        size, fields = _read_header(path, _HEADER, MAGIC, FORMAT_VERSION, "quantized index")
        codec_no, metric_no, dim, pdim, code_bytes, flags = fields[2:8]
        n, next_id, codes_off, ids_off, floats_off, end, crc, norms_off = fields[8:16]

        def bad(msg: str) -> IndexFormatError:
            return IndexFormatError(f"{path}: {msg}")

        if codec_no >= len(_CODECS) or metric_no >= len(_METRICS) or flags & ~_KNOWN_FLAGS:
            raise bad(f"unknown codec {codec_no}, metric {metric_no} or flags {flags:#x}")
        codec, metric = _CODECS[codec_no], _METRICS[metric_no]
        try:
            index = cls(dim, codec=codec, metric=metric, keep_float=False)
        except ValueError as e:
            raise bad(f"inconsistent header: {e}") from None
        if index._l2norms and not flags & _FLAG_NORMS:  # the older l2 layout: ||x||^2 as a code column
            index._l2norms, index._norms_buf, index._pdim = False, None, dim + 1
        elif flags & _FLAG_NORMS and not index._l2norms:
            raise bad(f"norms flag on a {metric} {codec} index")
        item = 8 if codec == "binary" else 1
        want = _layout(codec_no, index._pdim, index.code_width * item, dim, n, flags)
        if (pdim, code_bytes, codes_off, ids_off, floats_off, norms_off, end) != (
            index._pdim, index.code_width * item, *want[1:]
        ):  # fmt: skip
            raise bad(
                f"inconsistent header (dims {dim}/{pdim}, {code_bytes} bytes per code, offsets, end {end})"
            )
        # Given ids may repeat or be negative, so with them the next id is only bounded by int64
        # (one past the largest id at most); without them the ids are 0..n-1 and it is at least n.
        if next_id > 2**63:
            raise bad(f"inconsistent header: next id {next_id} is past the int64 range of ids")
        if not flags & _FLAG_IDS and next_id < n:
            raise bad(f"inconsistent header: next id {next_id} for {n} vectors numbered 0..{n - 1}")
        _check_size(path, size, end, f"{n} vectors")
        if verify:
            payload = np.memmap(
                path, dtype=np.uint8, mode="r", offset=_HEADER.size, shape=(end - _HEADER.size,)
            )
            got = zlib.crc32(payload.data)
            del payload
            if got != crc:
                raise bad(f"payload checksum mismatch (CRC-32 {got:#010x}, header says {crc:#010x})")

        def part(offset: int, dtype: str, shape: tuple[int, ...]) -> npt.NDArray[Any]:
            if int(np.prod(shape)) == 0:
                return np.empty(shape, dtype=np.dtype(dtype).newbyteorder("="))
            if mmap:
                a: npt.NDArray[Any] = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
            else:  # read into a cache-line aligned buffer (np.fromfile's start mid-line)
                a = _aligned_empty(shape, dtype)
                with open(path, "rb") as f:
                    f.seek(offset)
                    got = f.readinto(a.reshape(-1).view(np.uint8).data)
                if got != a.nbytes:
                    raise bad(f"short read at offset {offset}: {got} of {a.nbytes} bytes")
            # A big-endian host gets a native copy; little-endian hosts keep the mapping itself.
            return a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))

        nvec = 1 if codec == "binary" else 2 + bool(flags & _FLAG_REFLECT)
        vecs = np.array(part(want[0], "<f4", (nvec, pdim)))
        try:
            if codec == "binary":
                params = QuantParams("binary", mean=vecs[0])
            else:
                params = QuantParams(
                    codec, scale=vecs[0], offset=vecs[1], reflect=vecs[2] if nvec == 3 else None
                )
        except ValueError as e:
            raise bad(f"invalid params: {e}") from None
        index._params = params
        index._codes = part(codes_off, "<u8" if item == 8 else "u1", (n, index.code_width))
        if flags & _FLAG_IDS:
            index._ids_buf = part(ids_off, "<i8", (n,))
        if flags & _FLAG_FLOATS:
            index._float_buf = part(floats_off, "<f4", (n, dim))
            index._keep = "mmap" if mmap else "memory"
        if flags & _FLAG_NORMS:
            norms = part(norms_off, "<f4", (n,))
            if not np.isfinite(norms).all():
                raise bad("a stored ||x||^2 is not finite")
            index._norms_buf = norms
        index._n = int(n)
        index._next_id = int(next_id)
        return index
