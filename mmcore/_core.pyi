# Type stubs for the private native module (use the mmcore package API instead).
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

DEFAULT_MAX_PIXELS: int

_Result = tuple[int, str, npt.NDArray[np.uint8] | None]
_Batch = tuple[list[npt.NDArray[np.uint8] | None], npt.NDArray[np.uint8], list[str | None]]

def decode(src: Any, pixel: int, exif: bool, max_pixels: int, fast: bool) -> _Result: ...
def decode_batch(
    srcs: Sequence[Any],
    pixel: int,
    exif: bool,
    max_pixels: int,
    fast: bool,
    threads: int,
    out: npt.NDArray[np.uint8] | None = None,
) -> _Batch: ...
def thumbnail(
    src: Any,
    pixel: int,
    exif: bool,
    max_pixels: int,
    fast: bool,
    short_side: int,
    fit_w: int,
    fit_h: int,
    crop_w: int,
    crop_h: int,
    exact_w: int,
    exact_h: int,
    filter: int,
    upscale: bool,
    reducing_gap: float,
) -> _Result: ...
def thumbnail_batch(
    srcs: Sequence[Any],
    pixel: int,
    exif: bool,
    max_pixels: int,
    fast: bool,
    short_side: int,
    fit_w: int,
    fit_h: int,
    crop_w: int,
    crop_h: int,
    exact_w: int,
    exact_h: int,
    filter: int,
    upscale: bool,
    reducing_gap: float,
    threads: int,
    out: npt.NDArray[np.uint8] | None = None,
) -> _Batch: ...

# full_width / full_height > 0: the centre width x height window of the resize to that size.
def resize(
    img: npt.NDArray[np.uint8],
    width: int,
    height: int,
    filter: int,
    backend: int = -1,
    full_width: int = 0,
    full_height: int = 0,
) -> npt.NDArray[np.uint8]: ...
def image_info(src: Any, exif: bool = True) -> dict[str, Any]: ...
def image_info_batch(
    srcs: Sequence[Any], exif: bool = True
) -> tuple[
    npt.NDArray[np.uint8],
    npt.NDArray[np.uint8],
    npt.NDArray[np.int32],
    npt.NDArray[np.int32],
    npt.NDArray[np.int32],
]: ...
def image_format_names() -> list[str]: ...
def dct2(x: npt.ArrayLike) -> npt.NDArray[np.float64]: ...
def arrow_pixels(schema: object, array: object, width: int, height: int) -> npt.NDArray[np.uint8]: ...
def read_files(paths: Sequence[str], max_bytes: int, threads: int) -> list[memoryview | None]: ...
def tar_scan(fd: int, offset: int, max: int) -> tuple[int, list[tuple[str, bytes, int, int, int, bytes]]]: ...
def build_info() -> dict[str, Any]: ...

# Encode (contract: cpp/include/mmcore/encode.h). img: None or a C-contiguous uint8 HxW / HxWx1 /
# HxWx3 array (ValueError otherwise); format 1 (jpeg) or 3 (webp); quality 1..100; threads <= 0: all.
def encode(
    img: npt.NDArray[np.uint8] | None, format: int, quality: int, optimize: bool, method: int = 4
) -> tuple[int, str, bytes | None]: ...
def encode_batch(
    images: Sequence[npt.NDArray[np.uint8] | None],
    format: int,
    quality: int,
    optimize: bool,
    threads: int,
    method: int = 4,
) -> tuple[list[bytes | None], npt.NDArray[np.uint8], list[str | None]]: ...

class ThreadBudget:
    def __init__(self, tokens: int) -> None: ...
    @property
    def tokens(self) -> int: ...

def hash_batch(
    srcs: Sequence[Any],
    kinds: int,
    mode: int,
    dihedral: bool,
    exif: bool,
    max_pixels: int,
    threads: int,
    thumb: tuple[Any, ...] | None = None,
    budget: ThreadBudget | None = None,
    hash_size: int = 8,
    highfreq_factor: int = 4,
    binbits: int = 3,
) -> tuple[Any, ...]: ...

# Hamming search (contract: cpp/include/mmcore/hamming.h). Codes are C-contiguous uint64 (N, W),
# W = 1..1024 words (1: 64-bit hashes, 4: PDQ); ids None (positions) or int64 (N,); threads <= 0: all.
def hamming_knn(
    base: npt.NDArray[np.uint64],
    ids: npt.NDArray[np.int64] | None,
    queries: npt.NDArray[np.uint64],
    k: int,
    threads: int,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]: ...
def hamming_radius(
    base: npt.NDArray[np.uint64],
    ids: npt.NDArray[np.int64] | None,
    queries: npt.NDArray[np.uint64],
    r: int,
    threads: int,
    method: str = "auto",
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32], npt.NDArray[np.int64], dict[str, Any]]: ...
def hamming_join(
    base: npt.NDArray[np.uint64], r: int, threads: int, method: str = "auto"
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32], dict[str, Any]]: ...
def hamming_components(
    base: npt.NDArray[np.uint64], r: int, threads: int, method: str = "auto"
) -> tuple[npt.NDArray[np.int64], dict[str, Any]]: ...
def union_find(n: int, a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]: ...

# Quantized codes (contract: cpp/include/mmcore/quant.h). Arrays are C-contiguous with exactly
# these dtypes (ValueError otherwise); threads <= 0: all cores. Scores are exact integers:
# int8/int4 top-k by (largest dot, smallest position), padded with (INT32_MIN, -1) when k > N;
# binary by (smallest Hamming distance, smallest position), padded with (INT32_MAX, -1).
def quant_encode_int8(
    x: npt.NDArray[np.float32],
    scale: npt.NDArray[np.float32],
    offset: npt.NDArray[np.float32],
    threads: int,
    reflect: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.uint8]: ...
def quant_encode_int4(
    x: npt.NDArray[np.float32],
    scale: npt.NDArray[np.float32],
    offset: npt.NDArray[np.float32],
    threads: int,
    reflect: npt.NDArray[np.float32] | None = None,
) -> npt.NDArray[np.uint8]: ...
def quant_reflect(
    x: npt.NDArray[np.float32], v: npt.NDArray[np.float32], threads: int
) -> npt.NDArray[np.float32]: ...
def quant_encode_binary(
    x: npt.NDArray[np.float32], mean: npt.NDArray[np.float32], threads: int
) -> npt.NDArray[np.uint64]: ...
def quant_score_int8(
    codes: npt.NDArray[np.uint8], queries: npt.NDArray[np.int8], k: int, threads: int
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]: ...
def quant_score_int4(
    codes: npt.NDArray[np.uint8], queries: npt.NDArray[np.int8], k: int, threads: int
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]: ...
def quant_score_binary(
    codes: npt.NDArray[np.uint64], queries: npt.NDArray[np.uint64], k: int, threads: int
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]: ...
def quant_score_l2(
    codes: npt.NDArray[np.uint8],
    queries: npt.NDArray[np.int8],
    qscale: npt.NDArray[np.float64],
    bias: npt.NDArray[np.float32],
    k: int,
    threads: int,
    four_bit: bool,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]: ...
def quant_dot_int8_all(
    codes: npt.NDArray[np.uint8], queries: npt.NDArray[np.int8], threads: int
) -> npt.NDArray[np.int32]: ...
def quant_rerank(
    x: npt.NDArray[np.float32],
    queries: npt.NDArray[np.float32],
    cand: npt.NDArray[np.int64],
    k: int,
    l2: bool,
    threads: int,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]: ...
def thumbnail_geometry(
    width: int,
    height: int,
    short_side: int,
    fit_width: int,
    fit_height: int,
    crop_width: int,
    crop_height: int,
    exact_width: int,
    exact_height: int,
    upscale: bool,
) -> tuple[int, int, int, int]: ...

# Present only in builds with CUDA (cpp/bindings/gpu.cpp); mmcore.gpu checks with hasattr.
def gpu_decode_plan(
    srcs: list[bytes], max_pixels: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8], list[str], int]: ...

class GpuContext:
    def __init__(self, device: int) -> None: ...
    @property
    def device(self) -> int: ...
    def hash(
        self, pixels: int, pixel_bytes: int, descs: npt.NDArray[np.int64], kinds: int, out: int
    ) -> npt.NDArray[np.uint8]: ...
    def pdq(
        self, pixels: int, pixel_bytes: int, descs: npt.NDArray[np.int64], hashes: int, quality: int
    ) -> npt.NDArray[np.uint8]: ...
    def resize(
        self,
        pixels: int,
        pixel_bytes: int,
        src: npt.NDArray[np.int64],
        out: int,
        out_bytes: int,
        dst: npt.NDArray[np.int64],
        filter: int,
    ) -> npt.NDArray[np.uint8]: ...
    def int8_topk(
        self, codes: int, n: int, d: int, queries: int, nq: int, k: int, scores: int, idx: int
    ) -> None: ...
    def hamming_knn(
        self, codes: int, n: int, words: int, queries: int, nq: int, k: int, dist: int, idx: int
    ) -> None: ...
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
    ) -> int: ...
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
    ) -> int: ...
    def decode(
        self,
        srcs: list[bytes],
        descs: npt.NDArray[np.int64],
        statuses: npt.NDArray[np.uint8],
        messages: list[str],
        pixels: int,
        pixel_bytes: int,
        cpu_share: float = -1.0,
        threads: int = 0,
    ) -> tuple[npt.NDArray[np.uint8], list[str], dict[str, Any]]: ...
