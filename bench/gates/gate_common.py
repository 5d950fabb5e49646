"""What the perf gates share: the image set (ImageNet-size corpus JPEGs, or generated photo-like JPEGs
where the corpus is absent), a best-of timer and the all-OK check."""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

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


def all_ok(r: Any) -> None:
    assert bool(r.ok.all()), r.counts()
