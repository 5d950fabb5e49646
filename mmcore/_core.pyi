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
    srcs: Sequence[Any], pixel: int, exif: bool, max_pixels: int, fast: bool, threads: int
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
) -> _Batch: ...
def resize(
    img: npt.NDArray[np.uint8], width: int, height: int, filter: int, backend: int = -1
) -> npt.NDArray[np.uint8]: ...
def image_info(src: Any, exif: bool = True) -> dict[str, Any]: ...
def build_info() -> dict[str, Any]: ...
def hash_batch(
    srcs: Sequence[Any],
    kinds: int,
    mode: int,
    dihedral: bool,
    exif: bool,
    max_pixels: int,
    threads: int,
) -> tuple[
    npt.NDArray[np.uint64],
    npt.NDArray[np.uint8],
    npt.NDArray[np.uint8],
    npt.NDArray[np.uint8],
    list[str | None],
]: ...
