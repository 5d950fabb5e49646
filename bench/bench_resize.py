#!/usr/bin/env python3
"""Resize benchmark: mmcore (scalar ref, AVX2, AVX-512) next to Pillow, OpenCV and pyvips, one thread.

Standalone and offline. Sources are a real photo from the corpus (resized by Pillow to each
case's source size) or, without a corpus, a generated image; the pixel content does not change
the work. mmcore and Pillow compute the same pixels (bit-exact); OpenCV is there as the speed
reference users know: INTER_AREA when shrinking (its only antialiased filter), the matching
interpolation when enlarging -- not the same pixels. pyvips (one thread, cache off) runs
libvips' resize with the matching kernel (its own approximation: shrink then reduce).

    python bench/bench_resize.py [--budget 0.5] [--corpus ../shared/corpus]

Prints machine, versions and a table (milliseconds per image, best of repeated runs within the
time budget, and the median); writes the table to bench/results/resize.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

import mmcore
from mmcore import _core
from mmcore.image import FILTERS

try:
    import cv2
except ImportError:  # OpenCV is optional: its column is left empty
    cv2 = None

os.environ.setdefault("VIPS_CONCURRENCY", "1")
try:
    import pyvips

    pyvips.cache_set_max(0)  # a cached result would time nothing
except (ImportError, OSError):  # pyvips (with its libvips) is optional too
    pyvips = None

# libvips' resize kernels for mmcore's filters (it has no box kernel in resize)
VIPS_KERNEL = {"bilinear": "linear", "bicubic": "cubic", "lanczos3": "lanczos3"}

ROOT = Path(__file__).resolve().parent.parent
PIL_FILTER = {
    "area": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos3": Image.Resampling.LANCZOS,
}

# (source w, h) -> (destination w, h), filter
CASES = [
    ((500, 375), (341, 256), "lanczos3"),  # ImageNet-size photo -> short side 256
    ((500, 375), (341, 256), "bilinear"),
    ((4032, 3024), (341, 256), "lanczos3"),  # phone photo -> short side 256
    ((4032, 3024), (341, 256), "area"),
    ((256, 256), (32, 32), "lanczos3"),
    ((500, 375), (32, 32), "lanczos3"),  # exact pHash: Pillow's L of the full image -> 32x32
    ((256, 256), (64, 64), "area"),
    ((341, 256), (682, 512), "bicubic"),  # upscaling x2
    ((341, 256), (682, 512), "lanczos3"),
]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timeit(fn: Callable[[], object], budget: float) -> tuple[float, float]:
    """(best, median) milliseconds per call over as many calls as fit in `budget` seconds."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < budget or len(times) < 5:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times) * 1e3, statistics.median(times) * 1e3


def source_photo(corpus: Path) -> np.ndarray:
    jpegs = sorted((corpus / "jpeg").glob("*.jp*g")) if (corpus / "jpeg").is_dir() else []
    for path in jpegs:
        with Image.open(path) as im:
            if min(im.size) >= 256:
                return np.asarray(im.convert("RGB"))
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:600, 0:800]
    base = np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.int16)
    return np.clip(base + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)


def vips_version() -> str:
    assert pyvips is not None
    return ".".join(str(pyvips.version(i)) for i in range(3))


def cv2_flag(name: str, shrink: bool) -> int:
    assert cv2 is not None
    if shrink:
        return int(cv2.INTER_AREA)
    return int(
        {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}.get(
            name, cv2.INTER_LANCZOS4
        )
    )


def fmt(t: tuple[float, float] | None) -> str:
    return "-" if t is None else f"{t[0]:.3f} ({t[1]:.3f})"


def bench_case(
    img: np.ndarray, size: tuple[int, int], name: str, budget: float, has_avx2: bool, has_avx512: bool
) -> list[str]:
    """Cells: ref, avx2, avx512, Pillow, OpenCV, pyvips, then Pillow, OpenCV and pyvips over the
    fastest mmcore variant."""
    dw, dh = size
    pil = Image.fromarray(img)
    code = FILTERS[name]
    ref = timeit(lambda: _core.resize(img, dw, dh, code, 0), budget)
    avx2 = timeit(lambda: _core.resize(img, dw, dh, code, 1), budget) if has_avx2 else None
    avx512 = timeit(lambda: _core.resize(img, dw, dh, code, 2), budget) if has_avx512 else None
    pillow = timeit(lambda: pil.resize(size, PIL_FILTER[name]), budget)
    ocv = None
    if cv2 is not None:
        flag = cv2_flag(name, dw < img.shape[1])
        ocv = timeit(lambda: cv2.resize(img, size, interpolation=flag), budget)
    vips = None
    if pyvips is not None and name in VIPS_KERNEL:
        h, w = img.shape[:2]
        bands = 1 if img.ndim == 2 else img.shape[2]
        kernel = VIPS_KERNEL[name]

        def run_vips() -> bytes:
            vi = pyvips.Image.new_from_memory(img.data, w, h, bands, "uchar")
            out = vi.resize(dw / w, vscale=dh / h, kernel=kernel)
            return bytes(out.write_to_memory())

        vips = timeit(run_vips, budget)
    best = min((t for t in (ref, avx2, avx512) if t is not None), key=lambda t: t[0])

    def ratio(t: tuple[float, float] | None) -> str:
        return "-" if t is None else f"{t[0] / best[0]:.2f}x"

    cells = [fmt(ref), fmt(avx2), fmt(avx512), fmt(pillow), fmt(ocv), fmt(vips)]
    return [*cells, ratio(pillow), ratio(ocv), ratio(vips)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=float, default=0.5, help="seconds of timing per cell")
    default_corpus = Path(os.environ.get("MMCORE_CORPUS", ROOT.parent / "shared" / "corpus"))
    ap.add_argument("--corpus", type=Path, default=default_corpus)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "resize.md")
    args = ap.parse_args()

    if cv2 is not None:
        cv2.setNumThreads(1)
    info = mmcore.build_info()
    has_avx2 = "avx2" in info["cpu_variants_supported"]
    has_avx512 = "avx512" in info["cpu_variants_supported"]
    vips = "absent" if pyvips is None else f"{pyvips.__version__} / libvips {vips_version()}"
    header = [
        f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}",
        f"python {platform.python_version()}, numpy {np.__version__}, mmcore {mmcore.__version__} "
        f"(active backend {info['backend']}, compiled {info['cpu_variants_compiled']}), "
        f"Pillow {Image.__version__}, OpenCV {cv2.__version__ if cv2 is not None else 'absent'} (1 thread), "
        f"pyvips {vips} (1 thread)",
        "times: ms per image, best of repeated calls (median in brackets); one thread",
    ]
    for line in header:
        print(line)

    photo = source_photo(args.corpus)
    rows = []
    cols = ["case", "mode", "filter", "mmcore ref", "mmcore avx2", "mmcore avx512"]
    cols += ["Pillow", "OpenCV", "pyvips"]
    cols += ["Pillow/mmcore", "OpenCV/mmcore", "pyvips/mmcore"]
    print(" | ".join(cols))
    for (sw, sh), (dw, dh), name in CASES:
        rgb = np.asarray(Image.fromarray(photo).resize((sw, sh), Image.Resampling.BILINEAR))
        for mode in ("RGB", "L"):
            img = rgb if mode == "RGB" else np.asarray(Image.fromarray(rgb).convert("L"))
            cells = bench_case(img, (dw, dh), name, args.budget, has_avx2, has_avx512)
            row = [f"{sw}x{sh} -> {dw}x{dh}", mode, name, *cells]
            rows.append(row)
            print(" | ".join(row), flush=True)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# Resize benchmark", ""] + [f"- {h}" for h in header] + ["", "| " + " | ".join(cols) + " |"]
    lines.append("|" + "---|" * len(cols))
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
