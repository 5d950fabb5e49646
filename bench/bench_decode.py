#!/usr/bin/env python3
"""Decode + thumbnail throughput: mmcore next to Pillow, OpenCV, simplejpeg, PyTurboJPEG, pyvips, DALI CPU.

Standalone and offline. Images are preloaded into memory as bytes; every tool gets the same bytes.

Scenarios (each tool's own best antialiased path; the table names the filter each one uses):
  T1        thumbnail, short side 256, aspect kept, RGB
  T2-32     exactly 32x32 grey (aspect not kept); reduced-scale JPEG decode allowed
  T2-64     exactly 64x64 grey
  decode    full-size RGB decode, no resize

Rows are "mmcore" (the batch API with ``threads=N``; per-call rows at one thread), competitors, and the
TurboJPEG *limit* rows: PyTurboJPEG's decode alone at the scale mmcore's path decodes at (full size for
decode-only; the 1/2, 1/4 or 1/8 grey decode for T2, chosen per image exactly as mmcore chooses it). The
entropy decoder bounds every JPEG path, so "vs TurboJPEG" says how close a row is to that limit.

Parallelism at N threads: mmcore and DALI use their own thread pools; the other tools run N workers over
interleaved slices of the image list, in a thread pool when their heavy calls release the GIL (OpenCV,
simplejpeg, PyTurboJPEG via ctypes, pyvips via cffi), in a fork process pool otherwise (Pillow: its
header parsing and plugin code is Python that holds the GIL). ``--parallel`` overrides. OpenCV and
libvips are pinned to one internal thread so that "1 thread" means one core.

    python bench/bench_decode.py                       # ~300 ImageNet-size JPEGs, 1 and 2 threads
    python bench/bench_decode.py --quick               # 100 images, 1 pass: a smoke run
    python bench/bench_decode.py --dir DIR --select all --threads 1,2,4 --repeat 5 --out bench/results

Prints the machine, mmcore.build_info(), library versions, the image set, then the table; writes
bench_decode.md and bench_decode.png into --out.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import io
import math
import multiprocessing as mp
import os
import platform
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Pin the internal thread pools of the competitors before they are imported: a "1 thread" row must use
# one core, and N-thread rows get their parallelism from the N workers the bench starts.
os.environ.setdefault("VIPS_CONCURRENCY", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("VIPS_WARNING", "0")

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT.parent / "shared" / "corpus" / "jpeg"
SCENARIOS = ("T1", "T2-32", "T2-64", "decode")
T1_SHORT = 256

# --------------------------------------------------------------------------------------------------
# Image set


def jpeg_size(b: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's SOF marker (as stored, before EXIF orientation); (0, 0) if absent.

    Used by the tools that need the size before decoding and have no header call of their own (OpenCV);
    it walks the marker segments, which costs microseconds.
    """
    n = len(b)
    i = 2
    while i + 4 <= n:
        if b[i] != 0xFF:
            i += 1
            continue
        m = b[i + 1]
        if m == 0xFF:
            i += 1
            continue
        if m in (0xD8, 0x01) or 0xD0 <= m <= 0xD7:
            i += 2
            continue
        seg = (b[i + 2] << 8) | b[i + 3]
        if 0xC0 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC) and i + 9 <= n:
            return (b[i + 7] << 8) | b[i + 8], (b[i + 5] << 8) | b[i + 6]
        i += 2 + seg
    return 0, 0


@dataclass
class ImageSet:
    names: list[str]
    data: list[bytes]
    sizes: list[tuple[int, int]]
    notes: list[str] = field(default_factory=list)


def load_images(folder: Path, select: str, limit: int | None) -> ImageSet:
    """JPEG files of `folder` (by content), filtered by `select`, read into memory."""
    index: dict[str, dict[str, str]] = {}
    idx_path = folder.parent / "index.csv"
    if idx_path.is_file():
        with open(idx_path, newline="") as f:
            index = {r["file"]: r for r in csv.DictReader(f)}
    names, data, sizes = [], [], []
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.endswith((".md", ".csv", ".txt")):
            continue
        b = p.read_bytes()
        if b[:3] != b"\xff\xd8\xff":
            continue
        w, h = jpeg_size(b)
        if w == 0 or h == 0:
            continue
        if select == "imagenet" and not 200 <= min(w, h) <= 600:
            continue
        names.append(p.name)
        data.append(b)
        sizes.append((w, h))
    if limit is not None and len(names) > limit:
        # An even spread over the (sorted) set keeps the mix of sources when the set is cut down.
        keep = np.linspace(0, len(names) - 1, limit).round().astype(int)
        names = [names[i] for i in keep]
        data = [data[i] for i in keep]
        sizes = [sizes[i] for i in keep]
    s = ImageSet(names, data, sizes)
    key = f"{folder.name}/"
    sources = Counter(index.get(key + n, {}).get("source", "?") for n in names) if index else None
    if sources:
        s.notes.append("sources: " + ", ".join(f"{k} {v}" for k, v in sources.most_common()))
        sof = Counter(index.get(key + n, {}).get("jpeg_sof", "?") for n in names)
        sub = Counter(index.get(key + n, {}).get("subsampling", "?") for n in names)
        s.notes.append("coding: " + ", ".join(f"{k} {v}" for k, v in sof.most_common()))
        s.notes.append("subsampling: " + ", ".join(f"{k} {v}" for k, v in sub.most_common()))
    return s


def describe_set(s: ImageSet, folder: Path, select: str) -> list[str]:
    short = [min(w, h) for w, h in s.sizes]
    mp_ = [w * h / 1e6 for w, h in s.sizes]
    total = sum(len(b) for b in s.data)
    common = Counter(f"{w}x{h}" for w, h in s.sizes).most_common(4)
    lines = [
        f"{len(s.data)} JPEGs from {folder} (select={select}), {total / 1e6:.1f} MB in memory, "
        f"{total / max(1, len(s.data)) / 1e3:.0f} kB mean",
        f"sizes: short side {min(short)}..{max(short)} (median {statistics.median(short):.0f}), "
        f"{min(mp_):.2f}..{max(mp_):.2f} Mpx (median {statistics.median(mp_):.2f}); most common "
        + ", ".join(f"{k} ({v})" for k, v in common),
    ]
    return lines + s.notes


# --------------------------------------------------------------------------------------------------
# Geometry shared by the tools


# reducing_gap (--reducing-gap): every tool with a reduced-scale JPEG decode keeps at least GAP times the
# result's size before its final resize, as mmcore's default (2.0, like Pillow's Image.thumbnail) does;
# this keeps the quality class equal across rows. <= 0: full-size decode everywhere.
GAP = 2.0


def cover(v: int) -> int:
    """The decoded size a result dimension `v` asks for under GAP (huge: no reduction)."""
    return math.ceil(v * GAP) if GAP > 0 else 1 << 30


def t1_size(w: int, h: int, short: int = T1_SHORT) -> tuple[int, int]:
    """Output (w, h) for short side `short`, aspect kept (rounded half up, as mmcore does)."""
    if w <= h:
        return short, max(1, math.floor(h * short / w + 0.5))
    return max(1, math.floor(w * short / h + 0.5)), short


def jpeg_scale(w: int, h: int, tw: int, th: int) -> int:
    """The largest power-of-two IDCT scale denominator (<= 8) whose decode still covers (tw, th).

    libjpeg rounds scaled sizes up (ceil(w / d)); this is the rule decode.h states for mmcore.
    """
    for d in (8, 4, 2):
        if math.ceil(w / d) >= tw and math.ceil(h / d) >= th:
            return d
    return 1


def cv_reduced_flag(cv2: Any, d: int, gray: bool) -> int:
    if gray:
        return {
            1: cv2.IMREAD_GRAYSCALE,
            2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
            4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
            8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
        }[d]
    return {
        1: cv2.IMREAD_COLOR,
        2: cv2.IMREAD_REDUCED_COLOR_2,
        4: cv2.IMREAD_REDUCED_COLOR_4,
        8: cv2.IMREAD_REDUCED_COLOR_8,
    }[d]


# --------------------------------------------------------------------------------------------------
# Rows


@dataclass
class Row:
    """One line of the table: a tool's way to do one scenario."""

    scenario: str
    tool: str  # label in the table
    kind: str  # "mmcore", "competitor", "limit" (TurboJPEG decode alone), "competitor+limit"
    how: str  # path / filter, for the table
    per_image: Callable[[bytes], Any] | None = None  # for per-image tools (thread or process pool)
    batch: Callable[[list[bytes], int], Any] | None = None  # for tools with their own pool
    parallel: str = "threads"  # threads | processes | internal
    one_thread_only: bool = False
    check: Callable[[Any, tuple[int, int]], str | None] | None = None
    note: str | None = None  # set when the row cannot run: shown instead of a number
    ips: dict[int, float] = field(default_factory=dict)  # threads -> images/s
    mode: dict[int, str] = field(default_factory=dict)  # threads -> how it was parallelised

    @property
    def key(self) -> str:
        return f"{self.scenario}|{self.tool}"


def shape_check(scenario: str, size_t2: int = 0) -> Callable[[Any, tuple[int, int]], str | None]:
    """A checker of one output's shape against the scenario's contract (run before timing)."""
    if scenario.startswith("T2-"):
        scenario, size_t2 = "T2", int(scenario.split("-")[1])

    def check(out: Any, wh: tuple[int, int]) -> str | None:
        shape = tuple(np.asarray(out).shape)
        w, h = wh
        if scenario == "T1":
            got = sorted(shape[:2])[0]
            ok = abs(got - T1_SHORT) <= 1
            want = f"short side {T1_SHORT}"
        elif scenario.startswith("T2"):
            ok = shape[:2] == (size_t2, size_t2) and (len(shape) == 2 or shape[2] == 1)
            want = f"{size_t2}x{size_t2} grey"
        else:
            ok = sorted(shape[:2]) == sorted((h, w)) and len(shape) == 3 and shape[2] == 3
            want = f"{h}x{w}x3"
        return None if ok else f"output shape {shape}, expected {want}"

    return check


def tool_rows(
    tool: str,
    paths: dict[str, tuple[str, Callable[[bytes], Any]]],
    *,
    kind: str = "competitor",
    parallel: str = "threads",
) -> list[Row]:
    """One per-image tool's rows: scenario -> (path shown in the table, function), shape-checked."""
    return [
        Row(sc, tool, kind, how, fn, parallel=parallel, check=shape_check(sc))
        for sc, (how, fn) in paths.items()
    ]


def mmcore_rows(mmcore: Any, filt: str) -> list[Row]:
    """mmcore's rows: the default path (filter `filt`, reducing_gap GAP), fast=True, reducing_gap=1.0
    (the smallest covering scale, what the competitors' paths use without a gap), area (T1: the filter
    class of INTER_AREA / BOX) and the single-record API in a Python loop (1 thread)."""

    def batch_result(r: Any) -> Any:
        bad = int((~r.ok).sum())
        if bad:
            i = int(np.flatnonzero(~r.ok)[0])
            raise RuntimeError(f"{bad}/{len(r)} records failed, e.g. {r.errors[i]}")
        return r.images

    gap = GAP if GAP > 0 else None
    variants = [  # label, options, scenarios
        ("mmcore", {}, SCENARIOS),
        ("mmcore fast", {"fast": True}, SCENARIOS),
        ("mmcore gap=1", {"reducing_gap": 1.0}, ("T1", "T2-32", "T2-64")),
        ("mmcore area", {"filter": "area"}, ("T1",)),
    ]
    rows: list[Row] = []
    for label, extra, scs in variants:
        if label == "mmcore gap=1" and gap == 1.0:
            continue
        for sc in scs:
            kw: dict[str, Any] = {"filter": filt, "reducing_gap": gap, **extra}
            if sc == "T1":
                kw = {"short_side": T1_SHORT, **kw}
                call = "thumbnail_batch"
            elif sc.startswith("T2"):
                size = int(sc.split("-")[1])
                kw = {"target": (size, size), "color": "gray", **kw}
                call = "decode_batch"
            else:
                kw = {k: v for k, v in kw.items() if k == "fast"}
                call = "decode_batch"
            fn = getattr(mmcore, call)
            how = f"{call}(" + ", ".join(f"{k}={v}" for k, v in kw.items()) + ")"
            rows.append(
                Row(
                    sc,
                    label,
                    "mmcore",
                    how,
                    parallel="internal",
                    check=shape_check(sc),
                    batch=lambda imgs, n, fn=fn, kw=kw: batch_result(fn(imgs, threads=n, **kw)),
                )
            )
    # The single-record API from a Python loop: what a per-image caller pays.
    single: list[tuple[str, str, Callable[[bytes], Any]]] = [
        (
            "T1",
            "thumbnail()",
            lambda b: mmcore.thumbnail(b, short_side=T1_SHORT, filter=filt, reducing_gap=gap),
        ),
        (
            "T2-32",
            "decode(target=32x32, gray)",
            lambda b: mmcore.decode(b, target=(32, 32), color="gray", filter=filt, reducing_gap=gap),
        ),
        (
            "T2-64",
            "decode(target=64x64, gray)",
            lambda b: mmcore.decode(b, target=(64, 64), color="gray", filter=filt, reducing_gap=gap),
        ),
        ("decode", "decode()", lambda b: mmcore.decode(b)),
    ]
    for sc, how, f in single:
        rows.append(
            Row(
                sc,
                "mmcore per-call",
                "mmcore",
                how + " loop",
                per_image=f,
                one_thread_only=True,
                check=shape_check(sc),
            )
        )
    return rows


def pillow_rows() -> list[Row]:
    from PIL import Image

    box = Image.Resampling.BOX

    def t1(b: bytes) -> Any:
        im = Image.open(io.BytesIO(b))
        tw, th = t1_size(*im.size)
        im.draft("RGB", (cover(tw), cover(th)))
        return np.asarray(im.convert("RGB").resize((tw, th), box))

    def t2(s: int) -> Callable[[bytes], Any]:
        def f(b: bytes) -> Any:
            im = Image.open(io.BytesIO(b))
            im.draft("L", (cover(s), cover(s)))
            return np.asarray(im.convert("L").resize((s, s), box))

        return f

    def dec(b: bytes) -> Any:
        return np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))

    bx = "draft('L') + resize(BOX)"
    return tool_rows(
        "Pillow",
        {
            "T1": ("draft + resize(BOX)", t1),
            "T2-32": (bx, t2(32)),
            "T2-64": (bx, t2(64)),
            "decode": ("open().convert('RGB')", dec),
        },
        parallel="processes",
    )


def opencv_rows() -> list[Row]:
    import cv2

    cv2.setNumThreads(1)
    area = cv2.INTER_AREA

    def t1(b: bytes) -> Any:
        w, h = jpeg_size(b)
        tw, th = t1_size(w, h)
        buf = np.frombuffer(b, np.uint8)
        im = cv2.imdecode(buf, cv_reduced_flag(cv2, jpeg_scale(w, h, cover(tw), cover(th)), False))
        return cv2.resize(im, (tw, th), interpolation=area)

    def t2(s: int) -> Callable[[bytes], Any]:
        def f(b: bytes) -> Any:
            w, h = jpeg_size(b)
            im = cv2.imdecode(
                np.frombuffer(b, np.uint8), cv_reduced_flag(cv2, jpeg_scale(w, h, cover(s), cover(s)), True)
            )
            return cv2.resize(im, (s, s), interpolation=area)

        return f

    def dec(b: bytes) -> Any:
        return cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)  # BGR: same work as RGB

    how = "imdecode(IMREAD_REDUCED_*) + resize(INTER_AREA)"
    grey = how.replace("*", "GRAYSCALE_*")
    return tool_rows(
        "OpenCV",
        {
            "T1": (how, t1),
            "T2-32": (grey, t2(32)),
            "T2-64": (grey, t2(64)),
            "decode": ("imdecode(IMREAD_COLOR)", dec),
        },
    )


def simplejpeg_rows() -> list[Row]:
    import cv2
    import simplejpeg

    area = cv2.INTER_AREA

    def t1(b: bytes) -> Any:
        h, w, _, _ = simplejpeg.decode_jpeg_header(b)
        tw, th = t1_size(w, h)
        im = simplejpeg.decode_jpeg(b, colorspace="RGB", min_width=cover(tw), min_height=cover(th))
        return cv2.resize(im, (tw, th), interpolation=area)

    def t2(s: int) -> Callable[[bytes], Any]:
        def f(b: bytes) -> Any:
            im = simplejpeg.decode_jpeg(b, colorspace="GRAY", min_width=cover(s), min_height=cover(s))
            return cv2.resize(im, (s, s), interpolation=area)

        return f

    def dec(b: bytes) -> Any:
        return simplejpeg.decode_jpeg(b, colorspace="RGB")

    how = "decode_jpeg(min_width/min_height) + cv2 INTER_AREA"
    grey = how.replace("decode_jpeg(", "decode_jpeg(GRAY, ")
    return tool_rows(
        "simplejpeg",
        {
            "T1": (how, t1),
            "T2-32": (grey, t2(32)),
            "T2-64": (grey, t2(64)),
            "decode": ("decode_jpeg(RGB)", dec),
        },
    )


def turbojpeg_rows() -> list[Row]:
    import cv2
    import turbojpeg

    tj = turbojpeg.TurboJPEG()
    area = cv2.INTER_AREA
    rgb, gray = turbojpeg.TJPF_RGB, turbojpeg.TJPF_GRAY

    def t1(b: bytes) -> Any:
        w, h, _, _ = tj.decode_header(b)
        tw, th = t1_size(w, h)
        d = jpeg_scale(w, h, cover(tw), cover(th))
        im = tj.decode(b, pixel_format=rgb, scaling_factor=(1, d))
        return cv2.resize(im, (tw, th), interpolation=area)

    def t2(s: int) -> Callable[[bytes], Any]:
        def f(b: bytes) -> Any:
            w, h, _, _ = tj.decode_header(b)
            im = tj.decode(b, pixel_format=gray, scaling_factor=(1, jpeg_scale(w, h, cover(s), cover(s))))
            return cv2.resize(im, (s, s), interpolation=area)

        return f

    def t2_limit(s: int) -> Callable[[bytes], Any]:
        # The decode alone, at the scale mmcore picks for this target: the bound T2 is held to.
        def f(b: bytes) -> Any:
            w, h, _, _ = tj.decode_header(b)
            return tj.decode(b, pixel_format=gray, scaling_factor=(1, jpeg_scale(w, h, cover(s), cover(s))))

        return f

    def dec(b: bytes) -> Any:
        return tj.decode(b, pixel_format=rgb)

    how = "decode(scaling_factor) + cv2 INTER_AREA"
    grey = how.replace("decode(", "decode(GRAY, ")
    limit = "decode(GRAY) at mmcore's scale, no resize"
    return [
        *tool_rows("PyTurboJPEG", {"T1": (how, t1), "T2-32": (grey, t2(32)), "T2-64": (grey, t2(64))}),
        Row("T2-32", "TurboJPEG limit", "limit", limit, t2_limit(32)),
        Row("T2-64", "TurboJPEG limit", "limit", limit, t2_limit(64)),
        *tool_rows("PyTurboJPEG", {"decode": ("decode(RGB), full size", dec)}, kind="competitor+limit"),
        # The same decode with every output held until the pass ends, as a batch API holds them:
        # fresh memory for each image then costs page faults and the kernel's zeroing (measured:
        # 0.87x of the loop that drops each output), so decode_batch is compared with this row.
        Row(
            "decode",
            "PyTurboJPEG kept",
            "limit-kept",
            "decode(RGB), full size, outputs kept for the pass",
            batch=lambda imgs, n: [dec(b) for b in imgs],
            one_thread_only=True,
        ),
    ]


def pyvips_rows() -> list[Row]:
    import pyvips

    pyvips.cache_set_max(0)  # repeated passes over the same bytes must not hit libvips' operation cache
    pyvips.concurrency_set(1)

    def t1(b: bytes) -> Any:
        w, h = jpeg_size(b)  # thumbnail_buffer takes a width and a height box, not a short side
        tw, th = t1_size(w, h)
        im = pyvips.Image.thumbnail_buffer(b, tw, height=th, size="force")
        return np.ndarray((im.height, im.width, im.bands), np.uint8, im.write_to_memory())

    def t2(s: int) -> Callable[[bytes], Any]:
        def f(b: bytes) -> Any:
            im = pyvips.Image.thumbnail_buffer(b, s, height=s, size="force").colourspace("b-w")[0]
            return np.ndarray((im.height, im.width), np.uint8, im.write_to_memory())

        return f

    def dec(b: bytes) -> Any:
        im = pyvips.Image.new_from_buffer(b, "", access="sequential")
        if im.bands == 1:
            im = im.colourspace("srgb")
        return np.ndarray((im.height, im.width, im.bands), np.uint8, im.write_to_memory())

    how = "thumbnail_buffer (shrink-on-load + lanczos3)"
    return [
        Row("T1", "pyvips", "competitor", how, t1, check=shape_check("T1")),
        Row("T2-32", "pyvips", "competitor", how + " + b-w", t2(32), check=shape_check("T2", 32)),
        Row("T2-64", "pyvips", "competitor", how + " + b-w", t2(64), check=shape_check("T2", 64)),
        Row(
            "decode", "pyvips", "competitor", "new_from_buffer(sequential)", dec, check=shape_check("decode")
        ),
    ]


class DaliRunner:
    """A CPU-only DALI pipeline (device_id=None) fed from memory, one per (scenario, threads)."""

    def __init__(self, scenario: str, batch_size: int) -> None:
        self.scenario = scenario
        self.batch_size = batch_size
        self.pipes: dict[int, Any] = {}

    def _build(self, threads: int) -> Any:
        from nvidia.dali import fn, pipeline_def, types

        sc = self.scenario

        @pipeline_def(
            batch_size=self.batch_size,
            num_threads=threads,
            device_id=None,
            exec_dynamic=True,
            prefetch_queue_depth=1,
        )
        def pipe() -> Any:
            enc = fn.external_source(name="enc", device="cpu", dtype=types.UINT8, ndim=1)
            if sc == "T1":
                img = fn.decoders.image(enc, device="cpu", output_type=types.RGB)
                return fn.resize(img, resize_shorter=T1_SHORT, antialias=True)
            if sc.startswith("T2"):
                s = int(sc.split("-")[1])
                img = fn.decoders.image(enc, device="cpu", output_type=types.GRAY)
                return fn.resize(img, resize_x=s, resize_y=s, antialias=True)
            return fn.decoders.image(enc, device="cpu", output_type=types.RGB)

        p = pipe()
        p.build()
        return p

    def __call__(self, imgs: list[bytes], threads: int) -> list[Any]:
        if threads not in self.pipes:
            self.pipes[threads] = self._build(threads)
        p = self.pipes[threads]
        out: list[Any] = []
        arrays = [np.frombuffer(b, np.uint8) for b in imgs]
        for i in range(0, len(arrays), self.batch_size):
            chunk = arrays[i : i + self.batch_size]  # the last one may be short: DALI takes it as is
            p.feed_input("enc", chunk)
            (res,) = p.run()
            out.extend(res[j] for j in range(len(chunk)))
        return out


def dali_rows(batch_size: int) -> list[Row]:
    try:
        import nvidia.dali  # noqa: F401
    except Exception as e:  # report the reason in the table instead of a number
        note = f"DALI not available: {type(e).__name__}: {e}"
        return [Row(sc, "DALI CPU", "competitor", "", note=note) for sc in SCENARIOS]
    rows = []
    for sc in SCENARIOS:
        how = {
            "T1": "decoders.image + resize(resize_shorter, antialias)",
            "decode": "decoders.image(cpu)",
        }.get(sc, "decoders.image(GRAY) + resize(antialias)")
        rows.append(
            Row(
                sc,
                "DALI CPU",
                "competitor",
                how,
                batch=DaliRunner(sc, batch_size),
                parallel="internal",
                check=shape_check(
                    sc if sc != "T2-32" and sc != "T2-64" else "T2", int(sc.split("-")[1]) if "-" in sc else 0
                ),
            )
        )
    return rows


# --------------------------------------------------------------------------------------------------
# Running


# Filled before the process pools fork, so that workers find the per-image functions by key.
TASKS: dict[str, Callable[[bytes], Any]] = {}
IMAGES: list[bytes] = []


def _proc_slice(args: tuple[str, int, int] | tuple[str, int, int, int, int]) -> int:
    """Worker i of n over IMAGES (or over IMAGES[lo:hi] when the args carry lo, hi)."""
    key, i, n = args[:3]
    imgs = IMAGES[args[3] : args[4]] if len(args) == 5 else IMAGES
    fn = TASKS[key]
    count = 0
    for b in imgs[i::n]:
        fn(b)
        count += 1
    return count


def _thread_slice(fn: Callable[[bytes], Any], imgs: list[bytes], barrier: threading.Barrier) -> int:
    barrier.wait()
    for b in imgs:
        fn(b)
    return len(imgs)


def time_pass(
    row: Any,
    imgs: list[bytes],
    threads: int,
    mode: str,
    pools: dict[int, Any],
    proc_task: Callable[[Any], int] | None = None,
    proc_args: list[Any] | None = None,
) -> float:
    """Seconds for one pass over all images. `row` has .batch (imgs, threads) or .per_image (bytes);
    in a fork process pool each worker runs proc_task(proc_args[i]) over its slice (default: this
    script's _proc_slice over row.key)."""
    if row.batch is not None:
        t0 = time.perf_counter()
        row.batch(imgs, threads)
        return time.perf_counter() - t0
    fn = row.per_image
    assert fn is not None
    if threads == 1:
        t0 = time.perf_counter()
        for b in imgs:
            fn(b)
        return time.perf_counter() - t0
    if mode == "processes":
        pool = pools[threads]
        task = proc_task or _proc_slice
        args = proc_args if proc_args is not None else [(row.key, i, threads) for i in range(threads)]
        t0 = time.perf_counter()
        pool.map(task, args)
        return time.perf_counter() - t0
    # Threads: each worker loops over its own interleaved slice (no per-image future overhead); the
    # barrier starts them together.
    with cf.ThreadPoolExecutor(threads) as ex:
        barrier = threading.Barrier(threads + 1)
        futs = [ex.submit(_thread_slice, fn, imgs[i::threads], barrier) for i in range(threads)]
        t0 = time.perf_counter()
        barrier.wait()
        for f in futs:
            f.result()
        return time.perf_counter() - t0


def _round(
    live: list[Any],
    threads: list[int],
    shift: int,
    timed: Callable[[Any, int], float],
    best: dict[tuple[str, int], float],
) -> None:
    """Times every row once (from live[shift], wrapping) at each thread count, keeping the best
    seconds per (row, threads) in `best`; a row whose pass raises gets a note and no figures."""
    for r in live[shift:] + live[:shift]:
        for n in threads:
            if r.note or (r.one_thread_only and n != 1):
                continue
            r.mode[n] = r.parallel if n > 1 else "-"
            try:
                t = timed(r, n)
            except Exception as e:
                r.note = f"{type(e).__name__}: {e}"[:160]
                r.ips.clear()
                continue
            best[(r.key, n)] = min(t, best.get((r.key, n), math.inf))


def run_rounds(
    live: list[Any],
    threads: list[int],
    repeat: int,
    timed: Callable[[Any, int], tuple[float, int]],
) -> None:
    """Every row once per round, the best pass kept: on a shared machine a burst of load then costs
    every row one pass instead of costing one row all of its passes. Each round starts at a
    different row, so no row always follows the same neighbour (in fixed order the first row of
    every round measured slowest; a previous tool's worker threads still spinning is suspected).
    timed(row, n) -> (seconds, images) for one pass; fills row.ips[n] and row.mode[n], and
    row.note when a pass raised."""
    best: dict[tuple[str, int], float] = {}
    images: dict[tuple[str, int], int] = {}

    def seconds(r: Any, n: int) -> float:
        t, images[(r.key, n)] = timed(r, n)
        return t

    t_start = time.perf_counter()
    for k in range(repeat):
        _round(live, threads, (k * len(live)) // max(repeat, 1), seconds, best)
        for r in live:
            for n in threads:
                if not r.note and (r.key, n) in best:
                    r.ips[n] = images[(r.key, n)] / best[(r.key, n)]
        print(f"round {k + 1}/{repeat} done ({time.perf_counter() - t_start:.0f} s)", flush=True)


def run_chunked_rounds(
    live: list[Any],
    threads: list[int],
    repeat: int,
    n_img: int,
    chunk: int,
    timed: Callable[[Any, int, int, int], float],
) -> None:
    """run_rounds over consecutive chunks of the image set: for each chunk, `repeat` rounds that time
    every row on that chunk (rotating the starting row), the best kept; a row's images/s is the
    image count over the sum of its per-chunk bests. Every row then meets the same stretch of
    machine weather within a second or so of the others, where whole-set passes put tens of seconds
    between two rows: on a shared host whose speed drifts by 20-30 % over seconds, whole-set ratios
    moved by as much between runs. timed(row, n, lo, hi) -> seconds for images [lo, hi)."""
    bounds = [(lo, min(lo + chunk, n_img)) for lo in range(0, n_img, chunk)]
    total: dict[tuple[str, int], float] = {}
    t_start = time.perf_counter()
    for ci, (lo, hi) in enumerate(bounds):
        best: dict[tuple[str, int], float] = {}
        for k in range(repeat):
            shift = ((k + ci) * len(live)) // max(repeat, 1) % max(len(live), 1)
            _round(live, threads, shift, lambda r, n, lo=lo, hi=hi: timed(r, n, lo, hi), best)
        for key, t in best.items():
            total[key] = total.get(key, 0.0) + t
        if (ci + 1) % 4 == 0 or ci + 1 == len(bounds):
            print(f"chunk {ci + 1}/{len(bounds)} done ({time.perf_counter() - t_start:.0f} s)", flush=True)
    for r in live:
        for n in threads:
            if not r.note and (r.key, n) in total:
                r.ips[n] = n_img / total[(r.key, n)]


def validate(row: Row, data: list[bytes], sizes: list[tuple[int, int]]) -> str | None:
    """Runs the row on a few images; returns why it cannot be benched, or None."""
    k = min(4, len(data))
    try:
        outs = row.batch(data[:k], 1) if row.batch is not None else [row.per_image(b) for b in data[:k]]  # type: ignore[misc]
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return f"{type(e).__name__}: {msg}"[:160]
    if row.check is not None:
        for out, wh in zip(outs, sizes[:k], strict=True):
            bad = row.check(out, wh)
            if bad:
                return f"wrong result: {bad}"
    return None


def machine_lines() -> list[str]:
    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            fl = next((ln for ln in f if ln.startswith("flags")), "").split()
        flags = " ".join(x for x in ("avx2", "avx512f", "avx512bw", "avx512vnni") if x in fl)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0, 0, 0)
    return [
        f"CPU: {model}, {cores} usable cores ({os.cpu_count()} online), ISA: {flags or '-'}",
        f"OS: {platform.platform()}, Python {platform.python_version()}",
        f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    ]


def mmcore_line(*, codecs: bool = False) -> str:
    """The benches' one line on the mmcore build under test (version, active and compiled variants)."""
    import mmcore

    bi = mmcore.build_info()
    line = f"mmcore {bi.get('version')}: backend {bi.get('backend')} "
    line += f"(compiled {bi.get('cpu_variants_compiled')})"
    return line + f", codecs {bi.get('codecs')}" if codecs else line


def version_lines() -> list[str]:
    out = []

    def add(name: str, get: Callable[[], str]) -> None:
        try:
            out.append(f"{name} {get()}")
        except Exception as e:
            out.append(f"{name}: not available ({type(e).__name__}: {e})"[:200])

    def pil() -> str:
        import PIL
        from PIL import features

        return f"{PIL.__version__} (libjpeg-turbo {features.version('libjpeg_turbo')})"

    def cv() -> str:
        import cv2

        jpeg = [ln.split(":", 1)[1].strip() for ln in cv2.getBuildInformation().splitlines() if "JPEG:" in ln]
        return f"{cv2.__version__} (JPEG: {jpeg[0] if jpeg else '?'})"

    def sj() -> str:
        import simplejpeg

        return str(simplejpeg.__version__)

    def tj() -> str:
        import turbojpeg

        turbojpeg.TurboJPEG()
        lib = "libturbojpeg"
        try:  # the library it loaded: the same one mmcore links (Debian's) unless told otherwise
            with open("/proc/self/maps") as f:
                paths = {ln.split()[-1] for ln in f if "libturbojpeg" in ln}
            lib = ", ".join(sorted(os.path.realpath(p) for p in paths)) or lib
        except OSError:
            pass
        return f"{turbojpeg.__version__} ({lib})"

    def vips() -> str:
        import pyvips

        return f"{pyvips.__version__} (libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)})"

    def dali() -> str:
        import nvidia.dali

        return str(nvidia.dali.__version__)

    add("numpy", lambda: np.__version__)
    add("Pillow", pil)
    add("opencv", cv)
    add("simplejpeg", sj)
    add("PyTurboJPEG", tj)
    add("pyvips", vips)
    add("nvidia-dali", dali)
    return out


def fmt_ips(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def fmt_ratio(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}x"


def build_table(rows: list[Row], threads: list[int]) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, body and target verdict lines."""
    head = [
        "scenario",
        "tool",
        "path",
        "threads",
        "parallel",
        "images/s",
        "vs fastest competitor",
        "vs TurboJPEG",
        "vs 1 thread",
    ]
    body: list[list[str]] = []
    verdicts: list[str] = []
    for sc in SCENARIOS:
        sc_rows = [r for r in rows if r.scenario == sc]
        for n in threads:
            comp = [r.ips[n] for r in sc_rows if r.kind.startswith("competitor") and n in r.ips]
            best = max(comp) if comp else None
            lim = next((r.ips.get(n) for r in sc_rows if r.kind.endswith("limit") and n in r.ips), None)
            for r in sc_rows:
                if r.one_thread_only and n != 1:
                    continue
                v = r.ips.get(n)
                if v is None:
                    if n != threads[0] and r.note:  # say why once, on the first thread count
                        continue
                    mode = r.mode.get(n, r.parallel if n > 1 else "-")
                    body.append([sc, r.tool, r.how, str(n), mode, "n/a: " + (r.note or "?"), "", "", ""])
                    continue
                vs_best = v / best if best else None
                vs_lim = v / lim if lim else None
                vs_one = v / r.ips[1] if n != 1 and 1 in r.ips else None
                body.append(
                    [
                        sc,
                        r.tool,
                        r.how,
                        str(n),
                        r.mode.get(n, r.parallel),
                        fmt_ips(v),
                        fmt_ratio(vs_best),
                        fmt_ratio(vs_lim),
                        fmt_ratio(vs_one),
                    ]
                )
    # The targets, on the default mmcore row.
    mm = {r.scenario: r for r in rows if r.tool == "mmcore"}

    def verdict(name: str, got: float | None, need: float) -> None:
        if got is None:
            verdicts.append(f"{name}: n/a (not measured)")
        else:
            verdicts.append(f"{name}: {got:.2f}x (target >= {need}x) {'PASS' if got >= need else 'FAIL'}")

    def ratio(sc: str, n: int, to: str) -> float | None:
        r = mm.get(sc)
        if r is None or n not in r.ips:
            return None
        others = [x for x in rows if x.scenario == sc and n in x.ips]
        if to == "competitor":
            c = [x.ips[n] for x in others if x.kind.startswith("competitor")]
            return r.ips[n] / max(c) if c else None
        lim = [x.ips[n] for x in others if x.kind.endswith("limit")]
        return r.ips[n] / lim[0] if lim else None

    verdict("T1, 1 thread, mmcore vs fastest competitor", ratio("T1", 1, "competitor"), 1.4)
    for sc in ("T2-32", "T2-64"):
        verdict(f"{sc}, 1 thread, mmcore vs TurboJPEG decode at the same scale", ratio(sc, 1, "limit"), 0.95)

    # Decode-only, like with like: decode_batch holds every output until it returns, a loop drops
    # each one (and reuses its memory for the next image).
    def pair(tool: str, kind: str) -> float | None:
        a = next((r for r in rows if r.scenario == "decode" and r.tool == tool and 1 in r.ips), None)
        b = next((r for r in rows if r.scenario == "decode" and r.kind == kind and 1 in r.ips), None)
        return a.ips[1] / b.ips[1] if a and b else None

    verdict(
        "decode, 1 thread, mmcore decode_batch() vs TurboJPEG with its outputs kept for the pass",
        pair("mmcore", "limit-kept"),
        0.95,
    )
    verdict(
        "decode, 1 thread, mmcore decode() loop vs TurboJPEG decode() loop",
        pair("mmcore per-call", "competitor+limit"),
        0.95,
    )
    if 2 in threads and 1 in threads:
        for sc in SCENARIOS:
            r = mm.get(sc)
            got = r.ips[2] / r.ips[1] if r and 1 in r.ips and 2 in r.ips else None
            verdict(f"{sc}, mmcore 2 threads vs 1", got, 1.8)
    return head, body, verdicts


def print_table(head: list[str], body: list[list[str]]) -> None:
    cut = {2: 48}  # the path column is long: truncate on the console, full in the markdown
    notes: list[str] = []
    body = [list(b) for b in body]
    for b in body:  # a row that could not run: its reason goes under the table
        if b[5].startswith("n/a: "):
            notes.append(f"[{len(notes) + 1}] {b[0]} {b[1]}: {b[5][5:]}")
            b[5] = f"n/a [{len(notes)}]"
    widths = [max(len(head[i]), *(len(b[i]) for b in body)) for i in range(len(head))]
    widths = [min(w, cut.get(i, w)) for i, w in enumerate(widths)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    last = None
    for b in body:
        if last is not None and b[0] != last:
            print()
        last = b[0]
        cells = [c if len(c) <= w else c[: w - 1] + "~" for c, w in zip(b, widths, strict=True)]
        print(
            "  ".join(
                c.rjust(w) if i >= 5 else c.ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
        )
    if notes:
        print()
        print("\n".join(notes))


def write_markdown(
    path: Path, header: list[str], head: list[str], body: list[list[str]], verdicts: list[str]
) -> None:
    lines = ["# bench_decode", "", *[f"- {x}" for x in header], ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join("---:" if i >= 5 else "---" for i in range(len(head))) + "|")
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in b) + " |" for b in body]
    lines += ["", "Targets (issue 2):", "", *[f"- {v}" for v in verdicts], ""]
    path.write_text("\n".join(lines))


def bar_chart(
    path: Path,
    panels: list[tuple[str, list[Any]]],
    threads: list[int],
    title: str,
    *,
    log_x: bool = False,
    panel_size: tuple[float, float] = (5, 5.5),
    unit: str = "images/s",
) -> str | None:
    """One horizontal bar panel per (name, rows) with a bar per thread count (rows: .tool, .ips,
    .kind; mmcore rows outlined). Returns a note when matplotlib is missing, else None."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as e:
        return f"no chart: matplotlib unavailable ({e})"
    w, h_fig = panel_size
    fig, axes = plt.subplots(1, len(panels), figsize=(w * len(panels), h_fig), squeeze=False)
    colors = ["#4c72b0", "#dd8452", "#55a868", "#c44e52"]
    for ax, (name, prows) in zip(axes[0], panels, strict=True):
        prows = [r for r in prows if r.ips]
        y = np.arange(len(prows))
        h = 0.8 / max(1, len(threads))
        for k, n in enumerate(threads):
            ax.barh(
                y + k * h,
                [r.ips.get(n, 0.0) for r in prows],
                h,
                label=f"{n} thread{'s' if n > 1 else ''}",
                color=colors[k % len(colors)],
                edgecolor=["black" if r.kind == "mmcore" else "none" for r in prows],
            )
        ax.set_yticks(y + h * (len(threads) - 1) / 2, [r.tool for r in prows], fontsize=8)
        ax.invert_yaxis()
        if log_x:
            ax.set_xscale("log")
        ax.set_title(name)
        ax.set_xlabel(f"{unit} (log)" if log_x else unit)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].legend(loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def write_chart(path: Path, rows: list[Row], threads: list[int], title: str) -> str | None:
    panels = [(sc, [r for r in rows if r.scenario == sc]) for sc in SCENARIOS]
    return bar_chart(path, panels, threads, title)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="folder of JPEGs (default: %(default)s)")
    ap.add_argument(
        "--select",
        choices=("imagenet", "all"),
        default="imagenet",
        help="imagenet: JPEGs with the short side 200..600 (ImageNet size); all: every JPEG",
    )
    ap.add_argument("--limit", type=int, default=None, help="at most this many images (an even spread)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument(
        "--repeat", type=int, default=3, help="timed passes per row (per chunk); the best is kept (default 3)"
    )
    ap.add_argument(
        "--chunk",
        type=int,
        default=32,
        help="time rows on chunks of this many images, interleaved, and sum each row's per-chunk bests "
        "(default 32); 0: whole-set passes",
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: 100 images, 1 pass")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="subset of " + ",".join(SCENARIOS))
    ap.add_argument(
        "--tools",
        default="mmcore,pillow,opencv,simplejpeg,turbojpeg,pyvips,dali",
        help="subset of tools (default: all)",
    )
    ap.add_argument("--mmcore-filter", default="lanczos3", help="mmcore's resize filter (default lanczos3)")
    ap.add_argument(
        "--reducing-gap",
        type=float,
        default=2.0,
        help="scaled decodes keep this many times the result's size, for every tool (mmcore's default 2.0)",
    )
    ap.add_argument(
        "--parallel",
        choices=("auto", "threads", "processes"),
        default="auto",
        help="how per-image competitors run N workers (auto: threads where the GIL is released)",
    )
    ap.add_argument("--dali-batch", type=int, default=32, help="DALI batch size (default 32)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="output folder")
    args = ap.parse_args(argv)

    global GAP
    GAP = args.reducing_gap
    if args.quick:
        args.limit = args.limit or 100
        args.repeat = 1
    threads = sorted({int(x) for x in args.threads.split(",") if x.strip()})
    scenarios = [s for s in args.scenarios.split(",") if s]
    tools = {t.strip().lower() for t in args.tools.split(",") if t.strip()}
    bad = set(scenarios) - set(SCENARIOS)
    if bad:
        ap.error(f"unknown scenarios {sorted(bad)}; choose from {SCENARIOS}")
    if not args.dir.is_dir():
        ap.error(f"--dir {args.dir} is not a folder")

    imgset = load_images(args.dir, args.select, args.limit)
    if not imgset.data:
        ap.error(f"no JPEGs selected from {args.dir} (select={args.select})")
    global IMAGES
    IMAGES = imgset.data

    header: list[str] = []
    header += machine_lines()
    try:
        import mmcore

        bi = mmcore.build_info()
        header.append(
            f"mmcore {bi.get('version')}: backend {bi.get('backend')} "
            f"(compiled {bi.get('cpu_variants_compiled')}, supported {bi.get('cpu_variants_supported')}), "
            f"codecs {bi.get('codecs')}, "
            f"cuda_compiled {bi.get('cuda_compiled')}"
        )
    except Exception as e:
        mmcore = None
        header.append(f"mmcore: not importable ({type(e).__name__}: {e})")
    header += version_lines()
    header += describe_set(imgset, args.dir, args.select)
    header.append(
        f"reducing_gap {GAP}: every reduced-scale JPEG decode (mmcore, Pillow draft, OpenCV IMREAD_REDUCED, "
        f"simplejpeg, PyTurboJPEG, the TurboJPEG limit) keeps >= {GAP}x the result's size before resizing"
        if GAP > 0
        else "reducing_gap off: every tool decodes at full size"
    )
    if args.chunk > 0:
        header.append(
            f"timing: wall clock, in chunks of {args.chunk} images: per chunk, best of {args.repeat} "
            f"round(s) (each round times every row once on the chunk), summed over the chunks; after a "
            f"check run on 4 images; threads {threads}"
        )
    else:
        header.append(
            f"timing: wall clock, best of {args.repeat} round(s) (each round times every row once over the "
            f"whole set, after a check run on 4 images); threads {threads}"
        )
    for line in header:
        print(line)
    print(flush=True)

    rows: list[Row] = []
    builders: list[tuple[str, Callable[[], list[Row]]]] = [
        ("pillow", pillow_rows),
        ("opencv", opencv_rows),
        ("simplejpeg", simplejpeg_rows),
        ("turbojpeg", turbojpeg_rows),
        ("pyvips", pyvips_rows),
        ("dali", lambda: dali_rows(args.dali_batch)),
    ]
    if "mmcore" in tools:
        if mmcore is None:
            rows += [Row(sc, "mmcore", "mmcore", "", note="mmcore not importable") for sc in SCENARIOS]
        else:
            rows += mmcore_rows(mmcore, args.mmcore_filter)
    for name, build in builders:
        if name not in tools:
            continue
        try:
            rows += build()
        except Exception as e:  # a missing competitor is a note in the table, not a crash
            note = f"{type(e).__name__}: {e}"[:160]
            label = {"turbojpeg": "PyTurboJPEG", "dali": "DALI CPU", "pillow": "Pillow", "opencv": "OpenCV"}
            rows += [Row(sc, label.get(name, name), "competitor", "", note=note) for sc in SCENARIOS]
    rows = [r for r in rows if r.scenario in scenarios]

    for r in rows:
        if r.per_image is not None:
            TASKS[r.key] = r.per_image
        if args.parallel != "auto" and r.parallel != "internal":
            r.parallel = args.parallel

    # Fork the process pools now, before DALI starts threads and before anything is timed.
    pools: dict[int, Any] = {}
    if any(r.parallel == "processes" and not r.one_thread_only for r in rows):
        ctx = mp.get_context("fork")
        for n in threads:
            if n > 1:
                pools[n] = ctx.Pool(n)

    t_start = time.perf_counter()
    n_img = len(imgset.data)
    live = []
    for r in rows:
        if r.note:
            continue
        r.note = validate(r, imgset.data, imgset.sizes)
        if r.note:
            print(f"{r.scenario:7s} {r.tool:18s} skipped: {r.note}", flush=True)
        else:
            live.append(r)
    if args.chunk > 0:

        def timed_chunk(r: Row, n: int, lo: int, hi: int) -> float:
            proc_args = [(r.key, i, n, lo, hi) for i in range(n)]
            return time_pass(r, imgset.data[lo:hi], n, r.parallel, pools, proc_args=proc_args)

        run_chunked_rounds(live, threads, args.repeat, n_img, args.chunk, timed_chunk)
    else:
        run_rounds(
            live, threads, args.repeat, lambda r, n: (time_pass(r, imgset.data, n, r.parallel, pools), n_img)
        )
    for r in live:
        for n in threads:
            if n in r.ips:
                print(f"{r.scenario:7s} {r.tool:18s} {n} thread(s) {r.mode[n]:9s} {r.ips[n]:10,.0f} img/s")
    for p in pools.values():
        p.terminate()
    elapsed = time.perf_counter() - t_start
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    header.append(
        f"bench wall time {elapsed:.0f} s; load average at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )

    head, body, verdicts = build_table(rows, threads)
    print()
    print_table(head, body)
    print()
    for v in verdicts:
        print(v)
    args.out.mkdir(parents=True, exist_ok=True)
    md = args.out / "bench_decode.md"
    png = args.out / "bench_decode.png"
    write_markdown(md, header, head, body, verdicts)
    note = write_chart(png, rows, threads, f"{n_img} images, {header[0]}")
    print(f"\nwrote {md}" + ("" if note else f" and {png}") + (f" ({note})" if note else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
