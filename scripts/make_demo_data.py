"""Regenerates mmcore/data/demo/: small synthetic images (no third-party content).

Run from the repository root: python scripts/make_demo_data.py (needs Pillow and numpy).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parent.parent / "mmcore" / "data" / "demo"


def scene(w: int, h: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.empty((h, w, 3))
    img[..., 0] = 128 + 100 * np.sin(x / (17 + seed)) * np.cos(y / 23)
    img[..., 1] = 255 * x / w
    img[..., 2] = 255 * y / h
    for _ in range(12):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(8, w / 5)
        mask = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        img[mask] = rng.uniform(0, 255, 3)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for p in OUT.iterdir():
        p.unlink()
    a = Image.fromarray(scene(640, 480, 1))
    a.save(OUT / "01_baseline_420.jpg", quality=85)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    Image.fromarray(scene(400, 300, 2)).save(
        OUT / "02_progressive_exif6.jpg", quality=80, progressive=True, exif=exif.tobytes()
    )
    Image.fromarray(scene(320, 240, 3)).convert("L").save(OUT / "03_gray.jpg", quality=90)
    rgba = np.dstack([scene(256, 192, 4), np.tile(np.linspace(0, 255, 256, dtype=np.uint8), (192, 1))])
    Image.fromarray(rgba, "RGBA").save(OUT / "04_alpha.png")
    Image.fromarray(scene(200, 150, 5)).quantize(64).save(OUT / "05_palette.png")
    Image.fromarray(scene(480, 360, 6)).save(OUT / "06_lossy.webp", quality=80)
    Image.fromarray(scene(160, 120, 7)).save(OUT / "07_lossless.webp", lossless=True)
    buf = io.BytesIO()
    a.save(buf, format="JPEG", quality=85)
    (OUT / "08_truncated_header.jpg").write_bytes(buf.getvalue()[:300])
    (OUT / "09_not_an_image.jpg").write_bytes(b"<html><body>404 Not Found</body></html>\n")
    for p in sorted(OUT.iterdir()):
        print(p.name, p.stat().st_size)


if __name__ == "__main__":
    main()
