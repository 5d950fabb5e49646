"""Near-duplicate search over perceptual hashes: exact Hamming kNN, radius search, all-pairs join
and clustering for 64-bit codes (pHash, dHash, ...) and 256-bit codes (PDQ).

Every answer is exact: kNN equals faiss ``IndexBinaryFlat`` (sorted by distance, ties by id),
radius and join return the same sets as brute force whatever ``method`` is used (multi-index
hashing only skips codes that cannot be within the radius). Radii are inclusive: ``r=8`` finds
distances 0..8. See ``docs/hamming.md`` for the file format and the speed table.

>>> import numpy as np, mmcore
>>> index = mmcore.HammingIndex(bits=64)
>>> index.add(np.array([0b0000, 0b0001, 0b0111, 0xFF00], dtype=np.uint64))
>>> d, ids = index.knn(np.array([0], dtype=np.uint64), k=2)
>>> d.tolist(), ids.tolist()
([[0, 1]], [[0, 1]])
>>> i, j, dist = index.join(r=2)
>>> list(zip(i.tolist(), j.tolist(), dist.tolist()))
[(0, 1, 1), (1, 2, 2)]
>>> mmcore.cluster(index, r=2).labels.tolist()
[0, 0, 0, 1]
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

import numpy as np
import numpy.typing as npt

from . import _core
from ._io import atomic_output, open_regular
from ._lock import _exclusive, _shared, _SharedLock
from .image import _threads

__all__ = ["ClusterResult", "HammingIndex", "IndexFormatError", "cluster"]

Method = Literal["auto", "brute", "mih"]
Representative = Literal["first", "largest", "quality"]
Codes = Union["npt.NDArray[Any]", Sequence[int], Sequence[bytes], int, bytes]
"""Codes of up to 64 bits (pHash, dHash, ...): a uint64 array (N,) or a list of Python ints (an int64
array or a negative int is read as its two's complement: ``mmcore run``'s hash columns as they are).
Longer codes, B bits: a (N, ceil(B / 8)) uint8 array (PDQ in the reference's byte order, as
``hash_batch(...)["pdq"]`` returns it; a sized hash's big-endian rows, as ``hash_batch(...,
hash_size=16)["phash"]``), a list of ceil(B / 8)-byte strings, a list of ints in [0, 2**B) (the
single hash functions' results at other sizes) or, when B is a multiple of 64, a (N, B / 64) uint64
array (:func:`mmcore.quantize_binary`'s codes). Codes and queries must use the same layout."""

_METHODS = ("auto", "brute", "mih")
_MAX_BITS = 65536  # kHammingMaxWords 64-bit words

# File layout, all little-endian: a 64-byte header, the codes (n rows of ceil(bits / 64) uint64 words,
# the spare bits of a row 0, at byte 64; n * bits / 8 bytes for 64 and 256 bits), then
# the ids (n int64) when flag bit 0 is set. The payload CRC-32 covers codes then ids; the header
# CRC-32 covers the 60 bytes before it.
MAGIC = b"MMHAMIDX"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sIIQIIQQI8xI")  # magic ver bits n flags hsize codes_off ids_off crc pad hcrc
_FLAG_IDS = 1
_KNOWN_FLAGS = _FLAG_IDS
assert _HEADER.size == 64


class IndexFormatError(ValueError):
    """A file given to :meth:`HammingIndex.load` is not a valid index: wrong magic, unsupported
    version, truncated, trailing bytes, inconsistent header or checksum mismatch. A subclass of
    ``ValueError``; the message names the file and what was wrong.

    >>> import mmcore, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x.idx")
    >>> _ = open(path, "wb").write(b"not an index")
    >>> try:
    ...     mmcore.HammingIndex.load(path)
    ... except mmcore.IndexFormatError as e:
    ...     print("not a mmcore Hamming index" in str(e))
    True
    """


def _nonneg_int(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{name} must be an int, got {type(v).__name__} {v!r}")
    if not 0 <= v < 1 << 62:
        raise ValueError(f"{name} must be in 0..2**62, got {v}")
    return int(v)


def _method(method: str) -> str:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    return method


def _words_of(bits: int) -> int:
    """64-bit words per code of ``bits`` bits."""
    return (bits + 63) // 64


def _row_bytes(bits: int) -> int:
    """Bytes per code as given and returned over 64 bits: ceil(bits / 8)."""
    return (bits + 7) // 8


def _as_words(codes: Any, bits: int, name: str) -> npt.NDArray[np.uint64]:
    """codes as a C-contiguous native uint64 (N, W) array (a view where possible)."""
    if bits <= 64:
        return _as_word(codes, bits, name)
    nb, w = _row_bytes(bits), _words_of(bits)
    form = f"{bits}-bit codes must be a (N, {nb}) uint8 array, {nb}-byte strings or ints in [0, 2**{bits})"
    if isinstance(codes, (bytes, bytearray, memoryview)) or (
        isinstance(codes, (int, np.integer)) and not isinstance(codes, bool)
    ):
        codes = [codes]
    if not isinstance(codes, np.ndarray):
        if not isinstance(codes, Iterable) or isinstance(codes, str):
            raise ValueError(f"{name}: {form}, got {codes!r}")
        items = list(codes)
        if all(isinstance(c, (bytes, bytearray, memoryview)) and len(c) == nb for c in items):
            raw = b"".join(bytes(c) for c in items)
        elif all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in items):
            if any(not 0 <= int(c) < 1 << bits for c in items):
                raise ValueError(f"{name}: {form}: an int is out of range")
            # big-endian, as hash_batch writes a sized hash's row (imagehash's bit order)
            raw = b"".join(int(c).to_bytes(nb, "big") for c in items)
        else:
            raise ValueError(f"{name}: {form}")
        codes = np.frombuffer(raw, dtype=np.uint8).reshape(-1, nb)
    if codes.dtype == np.uint64 and bits == 64 * w and codes.ndim == 2 and codes.shape[1] == w:
        return np.ascontiguousarray(codes)  # whole words (quantize_binary's codes)
    if codes.dtype != np.uint8:
        hint = ""
        if codes.dtype == np.uint64 and codes.ndim == 1:
            hint = " (uint64 (N,) codes are 64-bit: use HammingIndex(bits=64))"
        elif codes.dtype == np.uint64 and bits == 64 * w:
            hint = f" (or uint64 (N, {w}))"
        raise ValueError(f"{name} must be (N, {nb}) uint8 for a {bits}-bit index, got {codes.dtype}{hint}")
    if codes.ndim == 1 and codes.shape[0] == nb:
        codes = codes.reshape(1, nb)
    if codes.ndim != 2 or codes.shape[1] != nb:
        hint = f" (use HammingIndex(bits={8 * codes.shape[1]}))" if codes.ndim == 2 else ""
        raise ValueError(f"{name} must have shape (N, {nb}) for a {bits}-bit index, got {codes.shape}{hint}")
    if bits % 8 and codes.size and (codes[:, 0] >> (bits % 8)).any():
        raise ValueError(
            f"{name}: a code is wider than {bits} bits (a row's first byte holds its top {bits % 8} bits, "
            "big-endian, as hash_batch writes them)"
        )
    if nb == 8 * w:
        # Hamming distance does not depend on how the bytes are packed into words.
        return np.ascontiguousarray(codes).view(np.uint64)
    out = np.zeros((codes.shape[0], 8 * w), dtype=np.uint8)  # rows padded with zero bytes
    out[:, :nb] = codes
    return out.view(np.uint64)


def _as_word(codes: Any, bits: int, name: str) -> npt.NDArray[np.uint64]:
    """codes of at most 64 bits as a C-contiguous native uint64 (N, 1) array."""
    if isinstance(codes, (int, np.integer)) and not isinstance(codes, bool):
        codes = [int(codes)]
    if not isinstance(codes, np.ndarray):
        if not isinstance(codes, Iterable) or isinstance(codes, (str, bytes)):
            raise ValueError(
                f"{name}: {bits}-bit codes must be a uint64 array or a list of ints, got {codes!r}"
            )
        items = list(codes)
        if not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in items):
            raise ValueError(f"{name}: {bits}-bit codes must be a uint64 array or a list of ints")
        if any(not -(2**63) <= int(c) < 2**64 for c in items):
            raise ValueError(f"{name}: {bits}-bit codes must be ints in [-2**63, 2**64)")
        # a negative int is its 64-bit two's complement, as in mmcore.hamming
        codes = np.array([int(c) % 2**64 for c in items], dtype=np.uint64)
    if codes.dtype == np.int64:  # mmcore run's hash columns: the same 64 bits, signed
        codes = codes.view(np.uint64)
    if codes.dtype != np.uint64:
        hint = ""
        if codes.dtype == np.uint8 and codes.ndim == 2 and codes.shape[1] > 8:
            hint = f" (a (N, {codes.shape[1]}) uint8 array is {8 * codes.shape[1]}-bit codes: use "
            hint += f"HammingIndex(bits={8 * codes.shape[1]}))"
        raise ValueError(
            f"{name} must be uint64 (or int64, read as its bits) for a {bits}-bit index, "
            f"got {codes.dtype}{hint}"
        )
    if codes.ndim == 2 and codes.shape[1] == 1:
        codes = codes[:, 0]
    if codes.ndim != 1:
        raise ValueError(f"{name} must be 1-D (N,) for a {bits}-bit index, got shape {codes.shape}")
    if bits < 64 and codes.size and (codes >> np.uint64(bits)).any():
        raise ValueError(
            f"{name}: a code is wider than {bits} bits (largest {int(codes.max()).bit_length()})"
        )
    return np.ascontiguousarray(codes, dtype=np.uint64).reshape(-1, 1)


def _raw(a: npt.NDArray[Any]) -> memoryview:
    """The bytes of a C-contiguous array, without a copy."""
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8).data


def _increasing(ids: npt.NDArray[np.int64]) -> bool:
    """Whether ids strictly increase (as the kernels' ids_increasing)."""
    return bool(ids.size < 2 or (ids[1:] > ids[:-1]).all())


def _ids_array(ids: Any, n: int) -> npt.NDArray[np.int64]:
    a = np.asarray(ids)
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"ids must be 1-D with one id per code ({n}), got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"ids must be integers (int64), got {a.dtype}")
    if a.dtype == np.uint64 and a.size and int(a.max()) > np.iinfo(np.int64).max:
        raise ValueError("ids must fit in int64")
    return np.ascontiguousarray(a, dtype=np.int64)


def _read_header(
    path: str, header: struct.Struct, magic: bytes, version: int, what: str
) -> tuple[int, tuple[Any, ...]]:
    """(file size, header fields) of an index file whose header starts with ``magic`` then a
    uint32 format version and ends with the CRC-32 of the bytes before it (a uint32). Raises
    IndexFormatError for another magic, a file shorter than the header, another version or a
    header checksum mismatch."""
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(header.size)
    if head[: len(magic)] != magic[: len(head)]:
        raise IndexFormatError(f"{path}: not a mmcore {what} (magic {head[:8]!r}, expected {magic!r})")
    if len(head) < header.size:
        raise IndexFormatError(f"{path}: truncated: {size} bytes, shorter than the {header.size}-byte header")
    fields = header.unpack(head)
    if fields[1] != version:
        raise IndexFormatError(
            f"{path}: format version {fields[1]} is not supported (this mmcore reads version {version}): "
            "a newer mmcore wrote it, or the header is corrupt"
        )
    if zlib.crc32(head[:-4]) != fields[-1]:
        raise IndexFormatError(f"{path}: header checksum mismatch: the header is corrupt")
    return size, fields


def _check_size(path: str, size: int, expect: int, items: str) -> None:
    """IndexFormatError unless the file is exactly ``expect`` bytes (the header's account)."""
    if size < expect:
        raise IndexFormatError(f"{path}: truncated: {size} bytes, the header says {items} need {expect}")
    if size > expect:
        raise IndexFormatError(
            f"{path}: {size - expect} unexpected bytes after the {expect} the header describes"
        )


def _grown_capacity(buf: npt.NDArray[Any], need: int) -> int:
    """The row count to regrow buf to so that it holds need rows and can be written (doubling; a
    read-only, memory-mapped buffer is copied at its size plus an eighth, so that the adds after
    the first do not copy it all again), or 0 when buf already does."""
    cap = buf.shape[0]
    if need <= cap and buf.flags.writeable:
        return 0
    return max(need, 2 * cap if buf.flags.writeable else need + need // 8, 1024)


_ALIGN = 64


def _aligned_empty(shape: int | tuple[int, ...], dtype: Any) -> npt.NDArray[Any]:
    """``np.empty`` whose data starts on a 64-byte (cache line) boundary. numpy's own start 16
    bytes into a line, so every 64-byte load of a row straddles two lines: a single-query int8 scan
    of 1M x 768 codes read 2-15 % slower from such a buffer on a Xeon (6 of 6 interleaved rounds)."""
    dt = np.dtype(dtype)
    dims = (shape,) if isinstance(shape, int) else tuple(shape)
    nbytes = int(np.prod(dims, dtype=np.int64)) * dt.itemsize
    raw = np.empty(nbytes + _ALIGN, dtype=np.uint8)
    at = -raw.ctypes.data % _ALIGN
    out: npt.NDArray[Any] = raw[at : at + nbytes].view(dt).reshape(dims)
    return out


def _regrown(buf: npt.NDArray[Any], n: int, cap: int) -> npt.NDArray[Any]:
    """A fresh (cache-line aligned) buffer of cap rows holding buf's first n rows."""
    out = _aligned_empty((cap, *buf.shape[1:]), buf.dtype)
    out[:n] = buf[:n]
    return out


def _write_sealed(path: str, head: bytes, chunks: Sequence[bytes | memoryview]) -> None:
    """Write head (its last 4 bytes replaced by the CRC-32 of the rest) then chunks, atomically:
    a temporary file fsynced and renamed over path (:func:`mmcore._io.atomic_output`)."""
    head = head[:-4] + struct.pack("<I", zlib.crc32(head[:-4]))
    with atomic_output(path) as f:
        f.write(head)
        for c in chunks:
            f.write(c)


class HammingIndex:
    """Exact Hamming search over binary codes of ``bits`` bits: 64 (pHash, dHash, aHash, ...),
    256 (PDQ) or any length from 1 to 65,536 (imagehash hashes at other sizes, such as
    ``phash(..., hash_size=16)``'s 256 bits; binary embedding codes). 64- and 256-bit codes have
    kernels of their own; other lengths share one (scalar POPCNT, a pair given up once its distance
    reaches the radius).

    Codes live in one contiguous uint64 array (8 bytes per 64-bit code, 32 per PDQ code; a length
    that is not a multiple of 64 is padded with zero bits to whole words) plus an
    int64 id per code when custom ids were given; search structures (multi-index hashing tables)
    are built per call, so ``add`` is a copy and nothing else. ``threads=None`` uses every core;
    every call releases the GIL.

    ``add(codes, ids=None)``: ids default to the positions (continuing after the codes already
    there). Ids need not be unique for ``knn`` / ``radius``; ``join`` requires unique ids.

    Threads: one index may be used from many threads. Searches (``knn``, ``radius``, ``join``,
    ``cluster(index, r)``) run side by side; ``add`` waits for the searches under way and holds
    off new ones until it is done, so a search sees the index as it was before or after a whole
    ``add``, never part way (``save``, pickling and the ``codes`` / ``ids`` properties count as
    searches). ``last_stats`` is the last finished call's, whichever thread made it. Pickling and
    ``copy.copy`` / ``copy.deepcopy`` give an independent index (a loaded one's mapped codes
    travel as data).

    >>> import numpy as np, mmcore
    >>> index = mmcore.HammingIndex(bits=256)
    >>> codes = np.zeros((3, 32), np.uint8); codes[1, 0] = 0b11; codes[2] = 255
    >>> index.add(codes, ids=[10, 20, 30])
    >>> lims, d, ids = index.radius(codes[:1], r=2)
    >>> lims.tolist(), d.tolist(), ids.tolist()
    ([0, 2], [0, 2], [10, 20])
    >>> len(index), index.memory_bytes()
    (3, 120)
    """

    def __init__(self, bits: int = 64, *, threads: int | None = None) -> None:
        if not isinstance(bits, (int, np.integer)) or isinstance(bits, bool) or not 1 <= bits <= _MAX_BITS:
            codes = hasattr(bits, "__len__") and not isinstance(bits, str)  # an array or list
            got = f"{type(bits).__name__} (the codes go to add())" if codes else repr(bits)
            raise ValueError(
                f"bits must be an int in 1..{_MAX_BITS}: the code length (64 for pHash, dHash, ...; "
                f"256 for PDQ), got {got}"
            )
        self._bits = int(bits)
        self._w = _words_of(self._bits)
        self._threads = _threads(threads)
        self._buf: npt.NDArray[np.uint64] = np.empty((0, self._w), dtype=np.uint64)
        self._ids_buf: npt.NDArray[np.int64] | None = None  # None: ids are the positions
        self._n = 0
        self._ids_unique: bool | None = None  # cached for join; reset by add
        # The ids strictly increase with the position (or there are none): knn / radius then run
        # on positions and map them to ids (the kernels' order, distance then id, is the same),
        # sparing the kernel its O(n) check of the ids on every call (75 -> 26 us, 1 query, 100k).
        self._ids_sorted = True
        self.last_stats: dict[str, Any] | None = None
        """The statistics of the last ``radius`` / ``join`` call: ``method`` ("brute" or "mih"),
        ``m`` (substrings, 0 for brute force), ``sub_radius``, ``candidates`` (codes whose full
        distance was computed)."""
        self._lock = _SharedLock()

    # -- pickle and copy --------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """The index as data: no lock, the buffers cut to len(self) (a mapped file's rows travel as
        data, the spare capacity not at all), no cached uniqueness of the ids (read apart from the
        snapshot, an add could have made it stale)."""
        state = {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_ids_unique")}
        words, ids, state["_n"] = self._snapshot()
        state["_buf"] = np.asarray(words)
        state["_ids_buf"] = None if ids is None else np.asarray(ids)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Fresh writable, aligned buffers and a new lock: a copy never shares rows with the index
        it came from (``copy.copy`` shared the buffer, and an ``add`` to one overwrote the other's
        spare rows, which the other's next ``add`` then took as its own)."""
        self.__dict__.update(state)
        self._lock = _SharedLock()
        self._ids_unique = None
        self._ids_sorted = _increasing(self._ids_buf[: self._n]) if self._ids_buf is not None else True
        cap = max(self._n, 1)
        self._buf = _regrown(self._buf, self._n, cap)
        if self._ids_buf is not None:
            self._ids_buf = _regrown(self._ids_buf, self._n, cap)

    # -- contents ---------------------------------------------------------------------------------

    @_shared
    def _snapshot(self) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64] | None, int]:
        """The codes, the ids (None: the positions) and their count, taken together. The views stay
        valid once the lock is released: rows below len(self) never change (add writes past them,
        or into a new buffer), so save and pickling read them without holding off add."""
        return self._words, self._ids, self._n

    @property
    def bits(self) -> int:
        """The code length (64 for pHash and the other 64-bit hashes, 256 for PDQ, ...)."""
        return self._bits

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        ids = "custom ids" if self._ids_buf is not None else "ids = positions"
        return f"HammingIndex(bits={self._bits}, n={self._n}, {ids})"

    @property
    def _words(self) -> npt.NDArray[np.uint64]:
        return self._buf[: self._n]

    @property
    def _ids(self) -> npt.NDArray[np.int64] | None:
        return None if self._ids_buf is None else self._ids_buf[: self._n]

    @property
    @_shared
    def codes(self) -> npt.NDArray[Any]:
        """A read-only view of the codes: uint64 (N,) for codes of up to 64 bits, else uint8 (N,
        ceil(bits / 8)) (uint8 (N, 32) for 256 bits)."""
        w = self._words
        v: npt.NDArray[Any] = (
            w[:, 0]
            if self._bits <= 64
            else w.view(np.uint8).reshape(-1, 8 * self._w)[:, : _row_bytes(self._bits)]
        )
        v = v.view()
        v.flags.writeable = False
        return v

    @property
    @_shared
    def ids(self) -> npt.NDArray[np.int64]:
        """The id of every code, int64 (N,) (a new array of positions when no ids were given)."""
        ids = self._ids
        if ids is None:
            return np.arange(self._n, dtype=np.int64)
        v: npt.NDArray[np.int64] = ids.view()
        v.flags.writeable = False
        return v

    @_shared
    def memory_bytes(self) -> int:
        """Bytes of the codes and ids held (the spare capacity that makes repeated ``add`` cheap is
        not counted; for a loaded memory-mapped index these bytes are pages of the file)."""
        return self._n * (self._w * 8 + (8 if self._ids_buf is not None else 0))

    def add(self, codes: Codes, ids: Sequence[int] | npt.NDArray[np.integer[Any]] | None = None) -> None:
        """Append codes (see :data:`Codes`), with int64 ``ids`` or, by default, their positions.

        Appending to a memory-mapped index copies its codes into memory first.
        """
        new = _as_words(codes, self._bits, "codes")
        self._append(new, None if ids is None else _ids_array(ids, new.shape[0]))

    @_exclusive
    def _append(self, new: npt.NDArray[np.uint64], new_ids: npt.NDArray[np.int64] | None) -> None:
        """add's work, alone under the lock (searches read the buffers and the row count)."""
        m = new.shape[0]
        if new_ids is not None and self._ids_buf is None:
            self._ids_buf = np.arange(self._buf.shape[0], dtype=np.int64)
        need = self._n + m
        cap = _grown_capacity(self._buf, need)
        if cap:
            self._buf = _regrown(self._buf, self._n, cap)
            if self._ids_buf is not None:
                self._ids_buf = _regrown(self._ids_buf, self._n, cap)
        self._buf[self._n : need] = new
        if self._ids_buf is not None:
            self._ids_buf[self._n : need] = (
                np.arange(self._n, need, dtype=np.int64) if new_ids is None else new_ids
            )
            self._ids_sorted = self._ids_sorted and _increasing(self._ids_buf[max(self._n - 1, 0) : need])
        self._n = need
        self._ids_unique = None

    # -- search -----------------------------------------------------------------------------------

    def knn(
        self, queries: Codes, k: int, *, threads: int | None = None
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
        """The k nearest codes of every query: ``(distances int32 (Q, k), ids int64 (Q, k))``,
        each row sorted by distance then id (faiss ``IndexBinaryFlat``'s answer). Where the index
        has fewer than k codes the row is padded like faiss: id -1, distance 2**31 - 1.

        >>> import numpy as np, mmcore
        >>> index = mmcore.HammingIndex()
        >>> index.add([0b1, 0b11, 0b0])
        >>> index.knn([0], k=4)[1].tolist()
        [[2, 0, 1, -1]]
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < 2**31:
            raise ValueError(f"k must be an int in [1, 2**31), got {k!r}")
        q = _as_words(queries, self._bits, "queries")
        t = self._threads if threads is None else _threads(threads)
        lock = self._lock  # held all along (not by @_shared: its *args / **kwargs cost 0.3 us more)
        lock.acquire_shared()
        try:
            # The kernel works on at most len(self) columns; the padding past them is numpy's (a
            # k far past the index once made the kernel allocate and fill Q x k heaps).
            kk = max(1, min(int(k), self._n))
            given, to_ids = self._kernel_ids()
            d, ids = _core.hamming_knn(self._words, given, q, kk, t)
        finally:
            lock.release_shared()
        if to_ids is not None:  # positions -> ids; the padding stays -1
            ids = np.where(ids >= 0, to_ids.take(np.maximum(ids, 0)), -1)
        if kk < k:
            pad = ((0, 0), (0, int(k) - kk))
            d = np.pad(d, pad, constant_values=np.iinfo(np.int32).max)
            ids = np.pad(ids, pad, constant_values=-1)
        return d, ids

    def radius(
        self, queries: Codes, r: int, *, method: Method = "auto", threads: int | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.int64]]:
        """Every code within distance ``r`` (inclusive) of each query, in faiss ``range_search``'s
        CSR layout: ``(lims int64 (Q+1,), distances int32 (L,), ids int64 (L,))``; query q's
        results are ``[lims[q], lims[q+1])``, sorted by distance then id. (faiss's own radius is
        exclusive: its ``range_search(x, r + 1)`` gives this set.)

        ``method``: ``"mih"`` (multi-index hashing), ``"brute"`` or ``"auto"`` (a cost model picks);
        all give the same answer. ``last_stats`` says what ran.
        """
        r = min(_nonneg_int("r", r), self._bits)  # a radius past the code length changes nothing
        q = _as_words(queries, self._bits, "queries")
        t = self._threads if threads is None else _threads(threads)
        m = _method(method)
        lock = self._lock  # as in knn
        lock.acquire_shared()
        try:
            given, to_ids = self._kernel_ids()
            lims, d, ids, stats = _core.hamming_radius(self._words, given, q, r, t, m)
        finally:
            lock.release_shared()
        if to_ids is not None:
            ids = to_ids.take(ids)
        self.last_stats = dict(stats)
        return lims, d, ids

    def _kernel_ids(self) -> tuple[npt.NDArray[np.int64] | None, npt.NDArray[np.int64] | None]:
        """(the ids to give a kernel, the ids to map its positions to): (None, None) without ids,
        (None, ids) when they increase with the position, else (ids, None)."""
        ids = self._ids
        if ids is None:
            return None, None
        return (None, ids) if self._ids_sorted else (ids, None)

    def _join_at(
        self, r: int, method: str, threads: int | None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """The pairs within r as positions (the caller holds the lock)."""
        r = min(_nonneg_int("r", r), self._bits)
        t = self._threads if threads is None else _threads(threads)
        a, b, d, stats = _core.hamming_join(self._words, r, t, _method(method))
        self.last_stats = dict(stats)
        return a, b, d

    @_shared
    def _components(self, r: int, method: str, threads: int | None) -> npt.NDArray[np.int64]:
        """Per position the smallest position of its component in the graph of the pairs within
        r (the join's pairs are united as they are found, never kept; identical codes are one
        node), for the codes the index holds now."""
        r = min(_nonneg_int("r", r), self._bits)
        t = self._threads if threads is None else _threads(threads)
        roots, stats = _core.hamming_components(self._words, r, t, _method(method))
        self.last_stats = dict(stats)
        return np.asarray(roots, dtype=np.int64)

    @_shared
    def join(
        self, r: int, *, method: Method = "auto", threads: int | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """Every pair of codes within distance ``r`` (inclusive): ``(i, j, d)`` as ids with
        ``i < j``, each unordered pair once, sorted by ``(i, j)``. Exact for every ``method``.

        The output grows with the number of near pairs: a radius near half the bits pairs up
        (almost) everything.
        """
        a, b, d = self._join_at(r, method, threads)
        ids = self._ids
        if ids is None:
            return a, b, d
        if self._ids_unique is None:
            self._ids_unique = bool(np.unique(ids).size == ids.size)
        if not self._ids_unique:
            raise ValueError("join needs unique ids; this index has repeated ids (knn / radius do not)")
        i, j = ids[a], ids[b]
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        order = np.lexsort((hi, lo))
        return lo[order], hi[order], d[order]

    # -- files ------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index to ``path`` (atomically: a temporary file renamed over it).

        Layout (little-endian): a 64-byte header (magic ``MMHAMIDX``, format version, bits, n,
        flags, header size, codes offset, ids offset, CRC-32 of the payload, CRC-32 of the
        header), the codes, then the int64 ids if custom ids were given.
        """
        path = os.fspath(path)
        words, ids, n = self._snapshot()  # the checksum and the write (fsync) run without the lock
        codes = words.astype("<u8", copy=False)
        ids_le = None if ids is None else ids.astype("<i8", copy=False)
        codes_off = _HEADER.size
        ids_off = codes_off + codes.nbytes if ids_le is not None else 0
        crc = zlib.crc32(_raw(codes))
        if ids_le is not None:
            crc = zlib.crc32(_raw(ids_le), crc)
        flags = _FLAG_IDS if ids_le is not None else 0
        fields = (MAGIC, FORMAT_VERSION, self._bits, n, flags, _HEADER.size, codes_off, ids_off, crc)
        chunks = [_raw(codes)] + ([] if ids_le is None else [_raw(ids_le)])
        _write_sealed(path, _HEADER.pack(*fields, 0), chunks)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        mmap: bool = True,
        *,
        verify: bool = True,
        threads: int | None = None,
    ) -> HammingIndex:
        """Open an index written by :meth:`save`.

        ``mmap=True`` maps the codes (and ids) read-only from the file without copying them
        (``np.memmap``); ``mmap=False`` reads them into memory. ``verify=True`` checks the CRC-32
        of the payload, which reads the whole file once (about 1 s per GB when it is in the page
        cache; a cold disk reads at its own speed); ``verify=False`` opens in O(1) and trusts the
        payload (the header is always checked). Raises :class:`IndexFormatError` (a
        ``ValueError``) for a file that is not a valid index, ``OSError`` when it cannot be read.

        >>> import numpy as np, mmcore, tempfile, os
        >>> index = mmcore.HammingIndex()
        >>> index.add(np.arange(5, dtype=np.uint64))
        >>> path = os.path.join(tempfile.mkdtemp(), "codes.idx")
        >>> index.save(path)
        >>> again = mmcore.HammingIndex.load(path)
        >>> len(again), again.knn([4], k=1)[1].tolist()
        (5, [[4]])
        """
        path = os.fspath(path)
        size, fields = _read_header(path, _HEADER, MAGIC, FORMAT_VERSION, "Hamming index")
        _magic, _version, bits, n, flags, hsize, codes_off, ids_off, crc, _hcrc = fields

        def bad(msg: str) -> IndexFormatError:
            return IndexFormatError(f"{path}: {msg}")

        if not 1 <= bits <= _MAX_BITS:
            raise bad(f"bits is {bits}, expected 1..{_MAX_BITS}")
        if flags & ~_KNOWN_FLAGS:
            raise bad(f"unknown flags {flags:#x}")
        w = _words_of(bits)
        has_ids = bool(flags & _FLAG_IDS)
        codes_bytes = n * w * 8
        want_ids_off = codes_off + codes_bytes if has_ids else 0
        if hsize != _HEADER.size or codes_off != _HEADER.size or ids_off != want_ids_off:
            raise bad(
                f"inconsistent header (header size {hsize}, codes at {codes_off}, ids at {ids_off}; "
                f"expected {_HEADER.size}, {_HEADER.size}, {want_ids_off})"
            )
        _check_size(path, size, codes_off + codes_bytes + (n * 8 if has_ids else 0), f"{n} codes")

        def part(offset: int, dtype: str, shape: tuple[int, ...]) -> npt.NDArray[Any]:
            if n == 0:
                return np.empty(shape, dtype=dtype)
            if mmap:
                return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
            count = int(np.prod(shape))
            return np.fromfile(path, dtype=dtype, count=count, offset=offset).reshape(shape)

        codes = part(codes_off, "<u8", (n, w))
        ids = part(ids_off, "<i8", (n,)) if has_ids else None
        if verify:
            got = zlib.crc32(_raw(codes))
            if ids is not None:
                got = zlib.crc32(_raw(ids), got)
            if got != crc:
                raise bad(f"payload checksum mismatch (CRC-32 {got:#010x}, header says {crc:#010x})")
        index = cls(bits, threads=threads)
        # A big-endian host gets a native copy; little-endian hosts keep the mapping itself.
        index._buf = codes if codes.dtype.isnative else codes.astype(np.uint64)
        if ids is not None:
            index._ids_buf = ids if ids.dtype.isnative else ids.astype(np.int64)
            index._ids_sorted = _increasing(index._ids_buf)
        index._n = int(n)
        return index


# ------------------------------------------------------------------------------------------------
# Clustering


@dataclass
class ClusterResult:
    """Connected components of a near-duplicate graph.

    ``labels``: int64 (N,), the cluster of every item, dense 0..C-1 numbered in order of first
    appearance (item 0 is in cluster 0; the next item not in cluster 0 starts cluster 1, ...);
    a singleton is its own cluster. ``is_representative``: bool (N,), exactly one True per
    cluster.
    """

    labels: npt.NDArray[np.int64]
    is_representative: npt.NDArray[np.bool_]

    @property
    def n_clusters(self) -> int:
        """How many clusters (singletons included)."""
        return int(self.labels.max()) + 1 if self.labels.size else 0

    def representatives(self) -> npt.NDArray[np.int64]:
        """Position of each cluster's representative, indexed by cluster label."""
        pos = np.flatnonzero(self.is_representative)
        out = np.empty(pos.size, dtype=np.int64)
        out[self.labels[pos]] = pos
        return out


def _pairs(pairs: Any) -> tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any] | None]:
    """(i, j, d or None) of a (P, 2) / (P, 3) array or a tuple of 2 or 3 columns. Any other
    container is refused: a list of 2 or 3 pairs would read as columns, silently."""
    d = None
    if isinstance(pairs, np.ndarray):
        if pairs.ndim != 2 or pairs.shape[1] not in (2, 3):
            raise ValueError(f"pairs as an array must have shape (P, 2) or (P, 3), got {pairs.shape}")
        cols: list[Any] = [pairs[:, c] for c in range(pairs.shape[1])]
    elif isinstance(pairs, tuple):
        cols = list(pairs)
        if len(cols) not in (2, 3):
            raise ValueError(f"pairs must be a tuple (i, j) or (i, j, d) of arrays, got {len(cols)} items")
    else:
        raise ValueError(
            "cluster needs a HammingIndex, a tuple (i, j[, d]) of arrays (as index.join returns) or a "
            f"(P, 2|3) array (np.array(list_of_pairs)), got {type(pairs).__name__}"
        )
    i, j = (np.asarray(c) for c in cols[:2])
    if len(cols) == 3:
        d = np.asarray(cols[2])
    for name, a in (("i", i), ("j", j)):
        if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
            raise ValueError(f"pairs {name} must be a 1-D integer array, got {a.dtype} {a.shape}")
    if i.shape != j.shape or (d is not None and d.shape != i.shape):
        raise ValueError(f"pair arrays differ in length: {[len(c) for c in (i, j, d) if c is not None]}")
    return i, j, d


def _score(name: str, v: Any, n: int) -> npt.NDArray[np.int64]:
    """Dense ranks of v (equal values, equal ranks), for a per-cluster argmax."""
    if v is None:
        raise ValueError(f"representative={'largest' if name == 'sizes' else 'quality'!r} needs {name}=")
    a = np.asarray(v)
    if a.shape != (n,):
        raise ValueError(f"{name} must have one value per item, shape ({n},), got {a.shape}")
    if a.size and not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"{name} must be numeric, got {a.dtype}")
    if np.issubdtype(a.dtype, np.floating) and np.isnan(a).any():
        raise ValueError(f"{name} contains NaN")
    return np.unique(a, return_inverse=True)[1].reshape(-1).astype(np.int64)


def cluster(
    pairs_or_index: HammingIndex | Any,
    r: int | None = None,
    *,
    n: int | None = None,
    representative: Representative = "first",
    sizes: Any = None,
    quality: Any = None,
    method: Method = "auto",
    threads: int | None = None,
) -> ClusterResult:
    """Group items into near-duplicate clusters: the connected components (union-find) of the
    graph whose edges are the pairs within ``r``.

    ``pairs_or_index``: a :class:`HammingIndex` (then ``r`` is required, the index is joined at
    ``r`` and items are its positions; the join's pairs are united as they are found, never kept,
    and identical codes are one node, so memory stays O(n) however many pairs there are: 10,000
    copies of one placeholder image are 50 million pairs), or pairs of *positions* 0..n-1 as a
    tuple of ``(i, j)`` / ``(i, j, d)`` arrays or a (P, 2) / (P, 3) array (e.g. ``index.join(r)``
    of an index whose ids are positions; a list of pairs: ``np.array(pairs)``); ``r`` then keeps
    the pairs with ``d <= r``. ``n`` (items) defaults to ``len(index)`` or the largest position any pair names
    + 1 (before the ``r`` filter).

    ``representative`` picks one item per cluster: ``"first"`` the smallest position,
    ``"largest"`` the largest ``sizes`` value (e.g. pixels), ``"quality"`` the largest
    ``quality`` value (e.g. PDQ quality); ties go to the smallest position.

    >>> import numpy as np, mmcore
    >>> res = mmcore.cluster(([0, 3], [2, 4]), n=6, representative="largest",
    ...                      sizes=[10, 50, 30, 5, 5, 1])
    >>> res.labels.tolist(), res.is_representative.tolist()
    ([0, 1, 0, 2, 2, 3], [False, True, True, True, False, True])
    """
    if representative not in ("first", "largest", "quality"):
        raise ValueError(f"representative must be 'first', 'largest' or 'quality', got {representative!r}")
    if sizes is not None and representative != "largest":
        raise ValueError("sizes= is used only with representative='largest'")
    if quality is not None and representative != "quality":
        raise ValueError("quality= is used only with representative='quality'")
    if isinstance(pairs_or_index, HammingIndex):
        if r is None:
            raise ValueError("cluster(index, r): r (the join radius) is required with an index")
        roots = pairs_or_index._components(r, _method(method), threads)
        size = roots.size
        if n is not None and n != size:
            raise ValueError(f"n={n} but the index holds {size} codes")
    else:
        _method(method)  # unused with pairs, but checked as with an index
        if threads is not None:
            _threads(threads)
        a, b, d = _pairs(pairs_or_index)
        # n counts every position the pairs name, also those whose pairs r filters out.
        top = int(max(a.max(), b.max())) + 1 if a.size else 0
        if top - 1 >= 1 << 62:
            raise ValueError(f"pairs name position {top - 1}: positions must be in 0..2**62")
        size = top if n is None else _nonneg_int("n", n)
        if size < top:
            raise ValueError(f"pairs name position {top - 1} but n={size}")
        if a.size and min(int(a.min()), int(b.min())) < 0:
            raise ValueError("pair positions must be >= 0")
        if r is not None:
            r = _nonneg_int("r", r)
            if d is None:
                raise ValueError("r filters pairs by distance: give (i, j, d), or leave r=None")
            keep = d <= r
            a, b = a[keep], b[keep]
        a, b = np.ascontiguousarray(a, dtype=np.int64), np.ascontiguousarray(b, dtype=np.int64)
        roots = np.asarray(_core.union_find(size, a, b), dtype=np.int64)
    # roots[x] is the smallest position of x's component: numbering components by their root
    # numbers them in order of first appearance.
    _, labels = np.unique(roots, return_inverse=True)
    labels = labels.reshape(-1).astype(np.int64)
    pos = np.arange(size, dtype=np.int64)
    if representative == "first":
        rep = roots == pos
    else:
        by_size = representative == "largest"
        score = _score("sizes", sizes, size) if by_size else _score("quality", quality, size)
        order = np.lexsort((pos, -score, labels))  # by cluster, best score first, then position
        first = np.ones(size, dtype=bool)
        first[1:] = labels[order][1:] != labels[order][:-1]
        rep = np.zeros(size, dtype=bool)
        rep[order[first]] = True
    return ClusterResult(labels=labels, is_representative=rep)
