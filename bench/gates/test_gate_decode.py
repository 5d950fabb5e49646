"""pytest-benchmark perf gates for decode + thumbnail (not part of the test suite: run them on purpose).

    pip install ".[bench]"  # pytest-benchmark comes with ".[test]"
    pytest bench/gates --benchmark-autosave                     # record a baseline on this machine
    pytest bench/gates --benchmark-compare --benchmark-compare-fail=median:10%   # gate a change on it
    MMCORE_PERF_GATES=1 pytest bench/gates -k ratio             # also hold the issue's ratio targets

The absolute benchmarks gate regressions against a saved run of the same machine. The ratio gates
(opt-in, they need a quiet machine) time mmcore and the TurboJPEG decode in the same process,
interleaved, and hold mmcore to the targets bench/bench_decode.py reports: T2 and decode-only within
0.95x of TurboJPEG decode at the same scale, single thread. Images: ImageNet-size JPEGs of
../shared/corpus/jpeg, or generated photos-like JPEGs where the corpus is absent.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

mmcore = pytest.importorskip("mmcore")
from gate_common import all_ok, imagenet_images, interleaved_ratio, ratio_gate  # noqa: E402

N_IMAGES = 64


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    return imagenet_images(N_IMAGES)


_ok = all_ok


def test_t1_thumbnail(benchmark: Any, images: list[bytes]) -> None:
    benchmark(lambda: _ok(mmcore.thumbnail_batch(images, short_side=256, threads=1)))


@pytest.mark.parametrize("size", [32, 64])
def test_t2_gray(benchmark: Any, images: list[bytes], size: int) -> None:
    benchmark(lambda: _ok(mmcore.decode_batch(images, target=(size, size), color="gray", threads=1)))


def test_decode_full(benchmark: Any, images: list[bytes]) -> None:
    benchmark(lambda: _ok(mmcore.decode_batch(images, threads=1)))


def test_decode_full_2_threads(benchmark: Any, images: list[bytes]) -> None:
    benchmark(lambda: _ok(mmcore.decode_batch(images, threads=2)))


# --- ratio gates (opt-in) -------------------------------------------------------------------------


def _scale(w: int, h: int, tw: int, th: int) -> int:
    for d in (8, 4, 2):
        if math.ceil(w / d) >= tw and math.ceil(h / d) >= th:
            return d
    return 1


@ratio_gate
@pytest.mark.parametrize("target", [None, 32, 64])
def test_ratio_vs_turbojpeg(images: list[bytes], target: int | None) -> None:
    turbojpeg = pytest.importorskip("turbojpeg")
    tj = turbojpeg.TurboJPEG()
    if target is None:
        ours = lambda: _ok(mmcore.decode_batch(images, threads=1))  # noqa: E731
        theirs = lambda: [tj.decode(b, pixel_format=turbojpeg.TJPF_RGB) for b in images]  # noqa: E731
    else:
        # mmcore's default reducing_gap (2.0): the scaled decode keeps >= 2x the target's size.
        scales = [_scale(*tj.decode_header(b)[:2], 2 * target, 2 * target) for b in images]
        ours = lambda: _ok(mmcore.decode_batch(images, target=(target, target), color="gray", threads=1))  # noqa: E731
        theirs = lambda: [  # noqa: E731
            tj.decode(b, pixel_format=turbojpeg.TJPF_GRAY, scaling_factor=(1, d))
            for b, d in zip(images, scales, strict=True)
        ]
    ratio = interleaved_ratio(ours, theirs, 3)
    assert ratio >= 0.95, f"mmcore at {ratio:.2f}x of TurboJPEG decode (target >= 0.95x), target={target}"
