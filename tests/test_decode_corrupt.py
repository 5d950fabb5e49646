"""Bad input: every damaged file fails cleanly (a non-OK status and a message), fast, in bounded memory.

The corpus folder corrupt/ holds fuzzer seeds and crashers, truncated and damaged files,
decompression-bomb headers and junk, in every format. The one documented exception to "not
OK_WARNING" is a JPEG whose only defect is a missing EOI marker (all image data present): it
decodes with OK_WARNING and a message saying so (the issue's rule; Pillow and OpenCV reject it).
Generated damage (truncation at many points, bit flips, broken headers) runs without the corpus.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import corpus_files
from PIL import Image

import mmcore
from mmcore import DecodeError, Status

MISSING_EOI = "end-of-image marker"


def _is_jpeg(data: bytes) -> bool:
    return data[:3] == b"\xff\xd8\xff"


def _check_failed(name: str, data: bytes, status: int, err: str | None, img: object) -> None:
    """The policy for one damaged record."""
    st = Status(int(status))
    assert st != Status.OK, f"{name}: decoded as OK"
    assert err, f"{name}: {st.name} without a message"
    if st == Status.OK_WARNING:
        assert img is not None, name
        if _is_jpeg(data):  # JPEG: only a missing EOI may still decode
            assert MISSING_EOI in err, f"{name}: OK_WARNING for damage other than a missing EOI: {err}"
    else:
        assert img is None, name


@pytest.fixture(scope="module")
def corrupt() -> list[Path]:
    files = corpus_files("corrupt")
    assert len(files) > 100
    return files


# ---------------------------------------------------------------------------------------------
# corpus corrupt/


@pytest.mark.corpus
def test_corpus_corrupt_batch(corrupt: list[Path]) -> None:
    datas = [p.read_bytes() for p in corrupt]
    counts: dict[str, int] = {}
    for kw in ({}, {"exif_orientation": False, "color": "gray"}, {"target": 64}):
        r = mmcore.decode_batch(datas, **kw)  # type: ignore[arg-type]
        assert len(r) == len(corrupt)
        for p, d, st, err, img in zip(corrupt, datas, r.status, r.errors, r.images, strict=True):
            _check_failed(p.name, d, st, err, img)
        if not kw:
            counts = r.counts()
    r = mmcore.thumbnail_batch([str(p) for p in corrupt], crop=(32, 32))
    for p, d, st, err, img in zip(corrupt, datas, r.status, r.errors, r.images, strict=True):
        _check_failed(p.name, d, st, err, img)
    print("corrupt/ decode_batch status counts:", counts)


@pytest.mark.corpus
def test_corpus_corrupt_single_record(corrupt: list[Path]) -> None:
    """mmcore.decode raises DecodeError with a non-OK status (or returns an OK_WARNING image)."""
    batch = mmcore.decode_batch([str(p) for p in corrupt])
    times: list[tuple[float, str]] = []
    for p, st in zip(corrupt, batch.status, strict=True):
        data = p.read_bytes()
        t0 = time.perf_counter()
        try:
            img = mmcore.decode(p)
        except DecodeError as e:
            assert e.status == Status(int(st)), p.name
            assert e.status not in (Status.OK, Status.OK_WARNING) and e.message, p.name
        else:
            assert st == Status.OK_WARNING, p.name
            assert img.ndim == 3
        times.append((time.perf_counter() - t0, p.name))
        for src in (data, memoryview(data)):
            try:
                mmcore.decode(src, target=(48, 48))
            except DecodeError as e:
                assert e.status != Status.OK and e.message
    times.sort(reverse=True)
    print("slowest corrupt/ files (single-record decode):")
    for t, name in times[:5]:
        print(f"  {t * 1e3:8.2f} ms  {name}")


def _child(code: str, *args: str, stdin: str | None = None, timeout: int = 300) -> str:
    """Runs ``code`` in a fresh interpreter (one BLAS thread); returns its last stdout line."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=tempfile.gettempdir(),
        timeout=timeout,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


_CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from pathlib import Path
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import mmcore
    files = sorted(p for p in Path(sys.argv[1]).iterdir() if p.is_file() and p.name != "README.md")
    r = mmcore.decode_batch([str(p) for p in files], threads=2)
    single, slowest = [], 0.0
    for p in files:
        t0 = time.perf_counter()
        try:
            mmcore.decode(p)
            single.append(1)
        except mmcore.DecodeError as e:
            single.append(int(e.status))
        slowest = max(slowest, time.perf_counter() - t0)
    print(json.dumps({"batch": [int(s) for s in r.status], "single": single, "slowest": slowest}))
    """
)


@pytest.mark.corpus
@pytest.mark.slow
def test_corpus_corrupt_memory_bounded(corrupt: list[Path]) -> None:
    """Both APIs over corrupt/ in a child limited to 2 GiB of address space: no crash, same statuses."""
    limit = 2 << 30
    res = json.loads(_child(_CHILD, str(corrupt[0].parent), str(limit), timeout=600))
    assert len(res["batch"]) == len(corrupt)
    for p, b, s in zip(corrupt, res["batch"], res["single"], strict=True):
        assert b != Status.OK, p.name
        assert s == (Status.OK_WARNING if b == Status.OK_WARNING else b), p.name
    print(f"slowest single-record decode under RLIMIT_AS={limit >> 30} GiB: {res['slowest'] * 1e3:.1f} ms")


# ---------------------------------------------------------------------------------------------
# generated damage (no corpus needed)


def _jpeg(progressive: bool, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:96, 0:128]
    img = np.stack([x * 2, y * 2, (x + y)], axis=-1) + rng.integers(0, 40, (96, 128, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
        buf, "JPEG", quality=85, progressive=progressive
    )
    return buf.getvalue()


def _first_marker(data: bytes, marker: int) -> int:
    i = 2
    while i + 4 <= len(data):
        assert data[i] == 0xFF
        if data[i + 1] == marker:
            return i
        i += 2 + ((data[i + 2] << 8) | data[i + 3])
    raise AssertionError(f"marker {marker:#x} not found")


@pytest.mark.parametrize("progressive", [False, True])
def test_generated_truncations_are_corrupt(progressive: bool) -> None:
    data = _jpeg(progressive)
    sos = _first_marker(data, 0xDA)
    cuts = sorted({*range(1, sos + 14, 7), *range(sos + 14, len(data) - 2, max(1, (len(data) - sos) // 40))})
    srcs = [data[:c] for c in cuts]
    r = mmcore.decode_batch(srcs)
    for c, st, err, img in zip(cuts, r.status, r.errors, r.images, strict=True):
        assert Status(int(st)) in (Status.CORRUPT, Status.UNSUPPORTED), (c, err)
        assert err and img is None, c
    # All data present, only the EOI marker missing: the documented OK_WARNING.
    r = mmcore.decode_batch([data[:-2], data[:-1]])
    for st, err in zip(r.status, r.errors, strict=True):
        assert st == Status.OK_WARNING and err is not None and MISSING_EOI in err


def test_generated_broken_headers() -> None:
    data = _jpeg(False)
    sof = _first_marker(data, 0xC0)
    dqt = _first_marker(data, 0xDB)
    dht = _first_marker(data, 0xC4)
    sos = _first_marker(data, 0xDA)

    def patched(off: int, new: bytes) -> bytes:
        return data[:off] + new + data[off + len(new) :]

    dqt_len = (data[dqt + 2] << 8) | data[dqt + 3]
    junk = bytes(np.random.default_rng(1).integers(0, 256, 4096, np.uint8))
    cases = {
        "zero_dims": (patched(sof + 5, bytes(4)), Status.CORRUPT),
        "bomb_65500": (patched(sof + 5, b"\xff\xdc\xff\xdc"), Status.TOO_LARGE),
        "no_dqt": (data[:dqt] + data[dqt + 2 + dqt_len :], Status.CORRUPT),
        "bad_dht_counts": (patched(dht + 5, b"\xff" * 16), Status.CORRUPT),
        "bad_sof_length": (patched(sof + 2, b"\x00\x02"), Status.CORRUPT),
        "bad_components": (patched(sof + 9, b"\x00"), Status.CORRUPT),
        "header_only": (data[: sos + 14], Status.CORRUPT),
        "soi_eoi": (b"\xff\xd8\xff\xd9", Status.CORRUPT),
        "soi_junk": (b"\xff\xd8\xff\xe0" + junk, None),
        "leading_zeros": (bytes(512) + data, Status.CORRUPT),
        "empty": (b"", Status.CORRUPT),
        "html": (b"<html><body>404 Not Found</body></html>", Status.CORRUPT),
    }
    r = mmcore.decode_batch([c[0] for c in cases.values()])
    for (name, (_, want)), st, err, img in zip(cases.items(), r.status, r.errors, r.images, strict=True):
        got = Status(int(st))
        assert got not in (Status.OK, Status.OK_WARNING), name
        if want is not None:
            assert got == want, (name, err)
        assert err and img is None, name


@pytest.mark.parametrize("progressive", [False, True])
def test_generated_bit_flips_never_crash(progressive: bool) -> None:
    """Random damage after the header: any status, but a complete, well-formed answer."""
    data = _jpeg(progressive, seed=3)
    sos = _first_marker(data, 0xDA)
    rng = np.random.default_rng(42)
    srcs = []
    for _ in range(200):
        b = bytearray(data)
        for pos in rng.integers(2, len(b), int(rng.integers(1, 9))):
            b[int(pos)] = int(rng.integers(0, 256))
        srcs.append(bytes(b))
    r = mmcore.decode_batch(srcs, threads=2)
    for st, err, img in zip(r.status, r.errors, r.images, strict=True):
        s = Status(int(st))
        if s.ok:
            assert img is not None and img.ndim == 3 and img.shape[2] == 3  # flips may hit the SOF size
            if s == Status.OK_WARNING:
                assert err
        else:
            assert img is None and err
    # Zeroed entropy-coded data in a stream without restart markers is reported: CORRUPT for a
    # baseline stream (the DC predictor drifts out of range); in a progressive stream the zeros
    # may only end a refinement scan early ("extraneous bytes before marker"): OK_WARNING.
    damaged = bytearray(data)
    mid = (sos + len(data)) // 2
    damaged[mid : mid + 512] = bytes(512)
    st = Status(int(mmcore.decode_batch([bytes(damaged)]).status[0]))
    assert st == Status.CORRUPT if not progressive else st != Status.OK


# ---------------------------------------------------------------------------------------------
# tiny files with huge headers: refused before anything sized by the header is allocated


def _png(w: int, h: int, depth: int, ctype: int, idat: bytes, interlace: int = 0) -> bytes:
    import struct
    import zlib

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _tiny_bombs() -> dict[str, bytes]:
    import zlib

    z = zlib.compress(bytes(10))
    gif = (  # 13000 x 13000 screen and frame, one byte of LZW data
        b"GIF89a" + (13000).to_bytes(2, "little") * 2 + b"\x00\x00\x00"
        b"\x2c\x00\x00\x00\x00" + (13000).to_bytes(2, "little") * 2 + b"\x00\x08\x01\x00\x00\x3b"
    )
    return {
        # One row of 178,956,970 16-bit RGBA pixels: libpng's row buffers alone are 1.4 GB each.
        "png_wide_rgba16": _png(178_956_970, 1, 16, 6, z),
        "png_wide_rgba16_adam7": _png(178_956_970, 1, 16, 6, z, interlace=1),
        "png_13000_rgb8": _png(13000, 13000, 8, 2, z),
        "gif_13000": gif,
    }


_BOMB_CHILD = textwrap.dedent(
    """
    import json, sys
    import mmcore
    srcs = [bytes.fromhex(h) for h in json.loads(sys.stdin.read())]
    out = []
    for s in srcs:
        r = mmcore.decode_batch([s], threads=1)
        out.append([int(r.status[0]), r.errors[0]])
        r = mmcore.hash_batch([s], kinds=("phash", "pdq"), threads=1)
        out.append([int(r.status[0]), r.errors[0]])
    # VmHWM: this process's own peak (ru_maxrss would count the forked parent's pages too).
    with open("/proc/self/status") as f:
        peak_kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    print(json.dumps({"out": out, "peak_mib": peak_kib / 1024}))
    """
)


def test_tiny_files_with_huge_headers_stay_small() -> None:
    """A PNG or GIF of a few dozen bytes whose header is under max_pixels but whose data cannot
    fill it is CORRUPT before any buffer sized by the header exists (these peaked at 0.35-2.8 GB)."""
    bombs = _tiny_bombs()
    res = json.loads(_child(_BOMB_CHILD, stdin=json.dumps([b.hex() for b in bombs.values()])))
    for i, name in enumerate(bombs):
        for st, err in res["out"][2 * i : 2 * i + 2]:
            assert st == Status.CORRUPT, (name, err)
            assert "truncated" in err and "at most" in err, (name, err)
    assert res["peak_mib"] < 300, res["peak_mib"]  # the interpreter, numpy and mmcore: ~60 MiB


def test_animated_webp_with_a_huge_canvas_costs_its_output_only() -> None:
    """A valid animated WebP of ~100 bytes: a 16x8 first frame on a 13000x13000 canvas. The
    output (507 MB of RGB) is what it costs; WebPAnimDecoder's two RGBA canvases peaked at 1.8 GB."""
    import struct

    frame = io.BytesIO()
    Image.new("RGB", (16, 8), (200, 10, 10)).save(frame, "WEBP", lossless=True)
    payload = frame.getvalue()[12:]  # the VP8L chunk

    def u24(v: int) -> bytes:
        return v.to_bytes(3, "little")

    def chunk(tag: bytes, body: bytes) -> bytes:
        return tag + struct.pack("<I", len(body)) + body + b"\0" * (len(body) & 1)

    body = b"WEBP" + chunk(b"VP8X", bytes([0x02, 0, 0, 0]) + u24(12999) + u24(12999))
    body += chunk(b"ANIM", bytes(6)) + chunk(
        b"ANMF", u24(0) + u24(0) + u24(15) + u24(7) + u24(100) + b"\0" + payload
    )
    data = b"RIFF" + struct.pack("<I", len(body)) + body
    child = textwrap.dedent(
        """
        import sys, mmcore
        img = mmcore.decode(bytes.fromhex(sys.stdin.read()))
        assert img.shape == (13000, 13000, 3) and img[:8, :16].tolist() == [[[200, 10, 10]] * 16] * 8
        assert not img[8:].any() and not img[:, 16:].any()
        with open("/proc/self/status") as f:
            print(next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024)
        """
    )
    assert float(_child(child, stdin=data.hex())) < 13000 * 13000 * 3 / 2**20 + 250  # the output + ~60 MiB


def test_png_at_deflates_maximum_ratio_still_decodes() -> None:
    """The truncation bound is deflate's own limit (1032:1): a valid PNG compressed at 1030:1
    (zlib's run-length strategy over zero rows) decodes, equal to Pillow."""
    import zlib

    w, h = 4000, 4000
    raw = bytes((1 + 3 * w) * h)
    co = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    idat = co.compress(raw) + co.flush()
    assert len(raw) / len(idat) > 1025
    data = _png(w, h, 8, 2, idat)
    img = mmcore.decode(data)
    ref = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert img.shape == (h, w, 3) and np.array_equal(img, ref)
    # One byte less of IDAT data than that: still framed, so libpng (not the bound) finds the end.
    r = mmcore.decode_batch([_png(w, h, 8, 2, idat[:-1])])
    assert r.status[0] == Status.CORRUPT and r.errors[0]


def test_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    """Opening a FIFO for reading waits for a writer: every path reader refuses it at once ("not
    a regular file") instead of hanging the call (a batch's other records keep their results)."""
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(good)
    code = f"""
import mmcore, numpy as np
from mmcore.jobs.processor import Processor
import pyarrow as pa
f, g = {str(fifo)!r}, {str(good)!r}
info = mmcore.image_info(f)
assert info["status"] == mmcore.Status.CORRUPT and "not a regular file" in info["error"]
for call in (mmcore.decode, mmcore.phash):
    try:
        call(f)
        raise SystemExit("no error from " + call.__name__)
    except mmcore.DecodeError as e:
        assert "not a regular file" in str(e), e
r = mmcore.decode_batch([f, g])
assert r.status[0] != mmcore.Status.OK and "not a regular file" in r.errors[0]
assert r.images[1].shape == (8, 8, 3)
h = mmcore.hash_batch([f, g], kinds=("phash",))
assert h.status[1] == mmcore.Status.OK and "not a regular file" in h.errors[0]
for load in (mmcore.HammingIndex.load, mmcore.QuantizedIndex.load):
    try:
        load(f)
        raise SystemExit("no error from " + load.__qualname__)
    except OSError as e:
        assert "not a regular file" in str(e), e
got = Processor({{"hashes": ["phash"]}})(pa.table({{"id": ["p"], "path": [f]}}))
assert got.column("status").to_pylist() == ["READ_ERROR"], got.column("error").to_pylist()
print("done")
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert out.returncode == 0 and "done" in out.stdout, out.stderr[-2000:]


def test_other_image_formats_are_unsupported_not_corrupt() -> None:
    """A valid BMP, TIFF, PPM or ICO is UNSUPPORTED, named (convert it), where an unrecognised
    signature stays CORRUPT."""
    for fmt, name in (("BMP", "BMP"), ("TIFF", "TIFF"), ("PPM", "PNM"), ("ICO", "ICO")):
        buf = io.BytesIO()
        Image.new("RGB", (37, 29), (1, 2, 3)).save(buf, fmt)
        r = mmcore.decode_batch([buf.getvalue()])
        assert r.status[0] == Status.UNSUPPORTED and r.errors[0].startswith(name), (fmt, r.errors[0])
        with pytest.raises(DecodeError) as e:
            mmcore.decode(buf.getvalue())
        assert e.value.status == Status.UNSUPPORTED
    r = mmcore.decode_batch([b"BM not really a bitmap at all, no header"])
    assert r.status[0] == Status.CORRUPT and "unrecognised signature" in r.errors[0]
