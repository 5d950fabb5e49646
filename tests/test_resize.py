"""mmcore.resize: bit-exact with Pillow 13's Image.resize; AVX2 and AVX-512 bit-identical to the scalar ref.

The oracle is Pillow itself (same filter, modes L and RGB). 4-channel images are compared per
channel against Pillow mode L, because Pillow premultiplies RGBA and mmcore does not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import corpus_files, run_cpp_test
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import mmcore
from mmcore import _core
from mmcore.image import FILTERS

PIL_FILTER = {
    "nearest": Image.Resampling.NEAREST,
    "area": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos3": Image.Resampling.LANCZOS,
}
FILTER_NAMES = list(PIL_FILTER)
TAILS = [1, 7, 8, 9, 31, 32, 33, 63, 64, 65]
# The SIMD variants this CPU runs, as _core.resize backend codes (avx512 has its own kernels).
_RUNS = mmcore.build_info()["cpu_variants_supported"]
SIMD = [code for name, code in (("avx2", 1), ("avx512", 2)) if name in _RUNS]


def pillow_resize(img: np.ndarray, size: tuple[int, int], name: str) -> np.ndarray:
    """Pillow's answer; 4 channels are resized one by one as mode L (Pillow premultiplies RGBA)."""
    if img.ndim == 3 and img.shape[2] == 4:
        planes = [pillow_resize(np.ascontiguousarray(img[:, :, c]), size, name) for c in range(4)]
        return np.stack(planes, axis=-1)
    return np.asarray(Image.fromarray(img).resize(size, PIL_FILTER[name]))


def mm_resize(img: np.ndarray, size: tuple[int, int], name: str) -> np.ndarray:
    return mmcore.resize(img, size, filter=name)  # type: ignore[arg-type]


def random_image(rng: np.random.Generator, w: int, h: int, c: int) -> np.ndarray:
    shape = (h, w) if c == 1 else (h, w, c)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def smooth_image(w: int, h: int, c: int) -> np.ndarray:
    """Gradients with sharp edges: exercises clipping (lanczos/bicubic overshoot) and flat areas."""
    y, x = np.mgrid[0:h, 0:w]
    planes = [
        (x * 255 // max(w - 1, 1)),
        np.where((x // 3 + y // 5) % 2 == 0, 255, 0),
        (y * 7 + x * 3) % 256,
        np.full((h, w), 200),
    ][:c]
    img = np.stack(planes, axis=-1).astype(np.uint8)
    return img[:, :, 0] if c == 1 else img


def assert_same(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if not np.array_equal(got, want):
        d = np.abs(got.astype(np.int16) - want.astype(np.int16))
        raise AssertionError(f"{what}: {np.count_nonzero(d)} values differ, max |diff| {d.max()}")


# --- Pillow equality on generated images ------------------------------------------------------

SIZE_PAIRS = [
    # (src w, src h) -> (dst w, dst h): tails down and up, non-uniform, one axis kept
    ((65, 33), (1, 1)),
    ((65, 33), (7, 8)),
    ((65, 33), (9, 31)),
    ((65, 33), (32, 33)),
    ((65, 33), (33, 65)),
    ((65, 33), (64, 7)),
    ((65, 33), (65, 9)),
    ((8, 9), (63, 64)),
    ((7, 64), (33, 7)),  # width up, height down more than twice: Pillow 13 runs vertical first
    ((100, 9), (31, 8)),
    ((31, 32), (32, 31)),
    ((1, 1), (9, 7)),
    ((1, 40), (3, 5)),
    ((257, 190), (64, 64)),
    # exact binary scales (x2, x4, /2, /3, /8, 1.5): taps repeat and are reused, edges differ
    ((33, 21), (66, 84)),
    ((64, 48), (32, 96)),
    ((256, 40), (32, 5)),
    ((96, 30), (32, 20)),
]


@pytest.mark.parametrize("name", FILTER_NAMES)
@pytest.mark.parametrize("channels", [1, 3])
def test_matches_pillow_generated(name: str, channels: int, rng: np.random.Generator) -> None:
    for (sw, sh), (dw, dh) in SIZE_PAIRS:
        for img in (random_image(rng, sw, sh, channels), smooth_image(sw, sh, channels)):
            want = pillow_resize(img, (dw, dh), name)
            got = mm_resize(img, (dw, dh), name)
            assert_same(got, want, f"{name} c{channels} {sw}x{sh}->{dw}x{dh}")


@pytest.mark.parametrize("name", FILTER_NAMES)
def test_matches_pillow_tail_sweep(name: str, rng: np.random.Generator) -> None:
    """Every tail size as destination width and height, from a fixed odd source."""
    img = random_image(rng, 67, 45, 3)
    for n in TAILS:
        for size in ((n, 45), (67, n), (n, n), (n * 3, n + 2)):
            assert_same(mm_resize(img, size, name), pillow_resize(img, size, name), f"{name} {size}")


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(FILTER_NAMES),
    channels=st.sampled_from([1, 3, 4]),
    sw=st.integers(1, 90),
    sh=st.integers(1, 90),
    dw=st.integers(1, 120),
    dh=st.integers(1, 120),
    seed=st.integers(0, 2**32 - 1),
)
def test_matches_pillow_any_size(
    name: str, channels: int, sw: int, sh: int, dw: int, dh: int, seed: int
) -> None:
    img = random_image(np.random.default_rng(seed), sw, sh, channels)
    want = pillow_resize(img, (dw, dh), name)
    assert_same(mm_resize(img, (dw, dh), name), want, f"{name} c{channels} {sw}x{sh}->{dw}x{dh}")


@pytest.mark.parametrize("name", FILTER_NAMES)
def test_four_channels_are_independent(name: str, rng: np.random.Generator) -> None:
    img = random_image(rng, 53, 29, 4)
    img[:, :, 3] = 0  # a transparent alpha must not darken colour (no premultiply)
    for size in ((17, 71), (64, 9), (1, 1)):
        assert_same(mm_resize(img, size, name), pillow_resize(img, size, name), f"{name} {size}")


def test_large_downscale_matches_pillow(rng: np.random.Generator) -> None:
    """Wide windows (about 70 taps per output) in both passes."""
    img = random_image(rng, 1300, 900, 3)
    for name in ("area", "lanczos3"):
        assert_same(mm_resize(img, (110, 76), name), pillow_resize(img, (110, 76), name), name)


def test_extreme_ratios_match_pillow(rng: np.random.Generator) -> None:
    """Windows of over a thousand taps (heap-allocated tap tables) and thousand-fold enlarging."""
    tall = random_image(rng, 1500, 1200, 1)
    wide = random_image(rng, 3, 2, 3)
    for name in FILTER_NAMES:
        assert_same(mm_resize(tall, (3, 1), name), pillow_resize(tall, (3, 1), name), f"{name} shrink")
        assert_same(mm_resize(wide, (1000, 5), name), pillow_resize(wide, (1000, 5), name), f"{name} enlarge")


def test_same_size_is_a_copy(rng: np.random.Generator) -> None:
    img = random_image(rng, 13, 11, 3)
    out = mmcore.resize(img, (13, 11))
    assert_same(out, img, "same size")
    assert not np.shares_memory(out, img)


# --- Pillow equality on real photos ------------------------------------------------------------


def _photos(n: int) -> list[Path]:
    files = [p for p in corpus_files("jpeg") if p.suffix.lower() in (".jpg", ".jpeg")]
    return files[:: max(len(files) // n, 1)][:n]


@pytest.mark.parametrize("index", range(4))
def test_matches_pillow_on_photos(index: int) -> None:
    photos = _photos(4)  # skips with a reason when the corpus is absent
    if index >= len(photos):
        pytest.skip("fewer corpus photos than cases")
    path = photos[index]
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    crop = rgb[:600, :800]  # bounded cost; still a real photo
    gray = np.asarray(Image.fromarray(crop).convert("L"))
    h, w = crop.shape[:2]
    short = 256 / min(w, h)
    sizes = [(max(round(w * short), 1), max(round(h * short), 1)), (32, 32), (64, 64), (w * 3 // 2, h + 7)]
    for name in FILTER_NAMES:
        for img in (crop, gray):
            for size in sizes:
                want = pillow_resize(img, size, name)
                assert_same(mm_resize(img, size, name), want, f"{path.name} {name} {size}")


# --- ref vs SIMD bit identity ------------------------------------------------------------------


@pytest.mark.skipif(not SIMD, reason="this CPU (or build) has no SIMD variant")
@pytest.mark.parametrize("name", FILTER_NAMES)
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_simd_identical_to_ref(name: str, channels: int, rng: np.random.Generator) -> None:
    """Every SIMD variant (avx2, avx512) gives the scalar ref's bytes: odd sizes, both axes, one axis."""
    code = FILTERS[name]
    for sw in (1, 7, 33, 65, 130):
        for dw in TAILS:
            sh, dh = (sw * 3) % 41 + 1, (dw * 5) % 37 + 1
            img = random_image(rng, sw, sh, channels)
            for w, h in ((dw, dh), (dw, sh), (sw, dh)):
                if (w, h) == (sw, sh):
                    continue
                ref = _core.resize(img, w, h, code, 0)
                for b in SIMD:
                    got = _core.resize(img, w, h, code, b)
                    assert_same(got, ref, f"backend {b} {name} c{channels} {sw}x{sh}->{w}x{h}")


@pytest.mark.skipif(not SIMD, reason="this CPU (or build) has no SIMD variant")
def test_simd_identical_to_ref_wide_rows(rng: np.random.Generator) -> None:
    """Rows long enough for the vector main loops, odd widths for their tails, big windows (137 taps
    at 22.5x; a 70x downscale has more taps than the avx512 vertical kernel keeps on its stack)."""
    shapes = (
        ((517, 203), (97, 41)),
        ((301, 77), (1003, 150)),
        ((2001, 31), (57, 30)),
        ((500, 375), (341, 256)),
        ((900, 900), (40, 40)),
        ((1400, 1400), (20, 20)),
    )
    for channels in (1, 3, 4):
        for (sw, sh), (dw, dh) in shapes:
            img = random_image(rng, sw, sh, channels)
            for name in FILTER_NAMES:
                code = FILTERS[name]
                ref = _core.resize(img, dw, dh, code, 0)
                for b in SIMD:
                    assert_same(_core.resize(img, dw, dh, code, b), ref, f"backend {b} {name} c{channels}")


def test_strided_views(rng: np.random.Generator) -> None:
    """Non-contiguous inputs (crops, steps, a channel subset) give the contiguous copy's answer."""
    base = random_image(rng, 131, 97, 4)
    for view in (base[3:90, 5:121, :3], base[::2, ::3, :], base[:, 1:, 0], base[1:, :, 1:]):
        want = mmcore.resize(np.ascontiguousarray(view), (45, 33), filter="bicubic")
        assert_same(mmcore.resize(view, (45, 33), filter="bicubic"), want, f"view {view.shape}")


def test_cpp_strided_views_and_guard_pages(tmp_path: Path) -> None:
    """tests/cpp/test_resize.cpp: strided views, sources ending at an unreadable page, ref vs SIMD."""
    run_cpp_test(tmp_path, "test_resize")


def test_gpu_resize_kernel_emulated_matches_resize(tmp_path: Path) -> None:
    """tests/cpp/test_resize_gpu_emu.cpp: cuda/resize.cu's per-byte code and launches, run on the CPU,
    equal mmcore::resize byte for byte for every filter, channel count and shape class."""
    assert "PASS" in run_cpp_test(tmp_path, "test_resize_gpu_emu")


# --- misuse ------------------------------------------------------------------------------------


def test_bad_arguments() -> None:
    img = np.zeros((10, 12, 3), np.uint8)
    with pytest.raises(TypeError, match="uint8"):
        mmcore.resize(img.astype(np.float32), (4, 4))
    with pytest.raises(ValueError, match="channels"):
        mmcore.resize(np.zeros((10, 12, 2), np.uint8), (4, 4))
    with pytest.raises(ValueError):
        mmcore.resize(img, (0, 4))
    with pytest.raises(ValueError):
        mmcore.resize(img, (4, -1))
    with pytest.raises(ValueError):
        mmcore.resize(np.zeros((0, 12, 3), np.uint8), (4, 4))
    with pytest.raises(ValueError):
        mmcore.resize(np.zeros((2, 2, 2, 3), np.uint8), (4, 4))
    with pytest.raises(ValueError, match="filter"):
        mmcore.resize(img, (4, 4), filter="cubic")  # type: ignore[arg-type]


def test_resize_keeps_a_single_channel_axis() -> None:
    g = np.random.default_rng(4).integers(0, 256, (30, 40), dtype=np.uint8)
    flat = mmcore.resize(g, (17, 11))
    kept = mmcore.resize(g[:, :, None], (17, 11))
    assert flat.shape == (11, 17) and kept.shape == (11, 17, 1)
    np.testing.assert_array_equal(kept[:, :, 0], flat)
