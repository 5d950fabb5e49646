"""What the perf gates share: the image set (ImageNet-size corpus JPEGs, or generated photo-like JPEGs
where the corpus is absent), a best-of timer, the opt-in marker and interleaved timing of the ratio
gates, and the all-OK check."""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CORPUS = Path(os.environ.get("MMCORE_CORPUS", Path(__file__).resolve().parents[3] / "shared" / "corpus"))


def _generated(n: int) -> list[bytes]:
    from PIL import Image

    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        h, w = (375, 500) if i % 2 else (500, 333)
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) * 127 // (w + h))], -1)
        img = np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def imagenet_images(n: int) -> list[bytes]:
    """An even spread of n corpus JPEGs whose short side is 200..600 px (else n generated ones)."""
    d = CORPUS / "jpeg"
    if d.is_dir():
        from PIL import Image

        picked = []
        for p in sorted(d.iterdir()):
            b = p.read_bytes()
            if b[:3] != b"\xff\xd8\xff":
                continue
            w, h = Image.open(io.BytesIO(b)).size
            if 200 <= min(w, h) <= 600:
                picked.append(b)
        if len(picked) >= n:
            step = len(picked) / n
            return [picked[int(i * step)] for i in range(n)]
    return _generated(n)


def best_time(fn: Callable[[], Any], rounds: int) -> float:
    """The fastest of `rounds` wall-clock timings of fn()."""
    best = math.inf
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


# The ratio gates need a quiet machine: they run only when asked for.
ratio_gate = pytest.mark.skipif(
    os.environ.get("MMCORE_PERF_GATES") != "1", reason="set MMCORE_PERF_GATES=1 (quiet machine)"
)


def interleaved_ratio(ours: Callable[[], Any], theirs: Callable[[], Any], rounds: int = 2) -> float:
    """theirs' time over ours: both warmed, then three interleaved best-of-`rounds` timings each (so
    that load on the machine hits both), the fastest of each side."""
    ours(), theirs()  # warm
    t_ours = t_theirs = math.inf
    for _ in range(3):
        t_ours = min(t_ours, best_time(ours, rounds))
        t_theirs = min(t_theirs, best_time(theirs, rounds))
    return t_theirs / t_ours


def all_ok(r: Any) -> None:
    assert bool(r.ok.all()), r.counts()
