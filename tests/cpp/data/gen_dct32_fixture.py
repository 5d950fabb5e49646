"""Regenerate dct32_scipy.bin, the oracle for tests/cpp/test_dct.cpp.

    /work/main/.venv/bin/python tests/cpp/data/gen_dct32_fixture.py  # scipy 1.17.x

Every expected value is scipy.fftpack.dct's (type II, norm=None), the call imagehash's pHash
makes. Inputs are the cases where a transform that rounds differently flips hash bits: integer
vectors with ties (constant, ramps, symmetric, steps, few levels, periodic), random doubles
over a wide range, and 32x32 uint8 arrays run through both pHash passes.

Format (all little-endian):
    magic b"MMDCT32\\0", u32 version = 1, u32 n_int, u32 n_float, u32 n_2d
    n_int   x (i16[32] input,   u64 digest of dct(input))
    n_float x (f64[32] input,   u64 digest of dct(input))
    n_2d    x (u8[32*32] input, u64 digest of dct(dct(a, axis=0), axis=1), row-major)
The digest is FNV-1a 64 over each output double's IEEE bits, 8 bytes least significant first:
equal digests mean bit-identical outputs (the file stays under 200 kB this way).
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
import scipy
import scipy.fftpack

N = 32
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3


def digest(values: np.ndarray) -> int:
    """FNV-1a 64 of the doubles' IEEE bits, each least significant byte first."""
    h = FNV_OFFSET
    for byte in np.ascontiguousarray(values, dtype="<f8").tobytes():
        h = ((h ^ byte) * FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def integer_vectors(rng: np.random.Generator, scale: int = 1) -> np.ndarray:
    """Integer-valued vectors in -255..255, most of them with exact ties in their DCT."""
    n = np.arange(N)
    out: list[np.ndarray] = []
    out += list(rng.integers(0, 256, (300 * scale, N)))
    out += [np.full(N, c) for c in [0, 1, 127, 128, 255]]
    out += [np.full(N, c) for c in rng.integers(0, 256, 55 * scale)]
    for _ in range(100 * scale):  # ramps, both directions, clipped to 0..255
        a, b = rng.integers(0, 200), rng.integers(-6, 7)
        out.append(np.clip(a + b * n, 0, 255))
    for _ in range(150 * scale):  # mirror-symmetric
        h = rng.integers(0, 256, N // 2)
        out.append(np.concatenate([h, h[::-1]]))
    for _ in range(100 * scale):  # antisymmetric
        h = rng.integers(-255, 256, N // 2)
        out.append(np.concatenate([h, -h[::-1]]))
    for _ in range(50 * scale):  # symmetric about 127.5
        h = rng.integers(0, 256, N // 2)
        out.append(np.concatenate([h, 255 - h[::-1]]))
    for _ in range(150 * scale):  # two-level steps
        a, b, s = rng.integers(0, 256), rng.integers(0, 256), rng.integers(1, N)
        out.append(np.where(n < s, a, b))
    for _ in range(150 * scale):  # many equal values: 2 or 3 levels
        levels = rng.integers(0, 256, rng.integers(2, 4))
        out.append(levels[rng.integers(0, len(levels), N)])
    for _ in range(80 * scale):  # periodic (stripes / checkerboard rows)
        p = int(rng.choice([2, 4, 8, 16]))
        a, b = rng.integers(0, 256, 2)
        out.append(np.where((n // (p // 2)) % 2 == 0, a, b))
    for _ in range(60 * scale):  # single impulse on a constant background
        v = np.full(N, rng.integers(0, 256))
        v[rng.integers(0, N)] = rng.integers(0, 256)
        out.append(v)
    return np.array(out, dtype=np.int64)


def float_vectors(rng: np.random.Generator, scale: int = 1) -> np.ndarray:
    out: list[np.ndarray] = []
    out += list(rng.standard_normal((60 * scale, N)) * 100)
    out += list(rng.uniform(0, 256, (40 * scale, N)))
    out += list(rng.standard_normal((40 * scale, N)) * 10.0 ** rng.uniform(-8, 8, (40 * scale, 1)))
    for _ in range(20 * scale):
        h = rng.standard_normal(N // 2) * 50
        out.append(np.concatenate([h, h[::-1]]))
    for _ in range(20 * scale):
        h = rng.standard_normal(N // 2) * 50
        out.append(np.concatenate([h, -h[::-1]]))
    for _ in range(scale):  # the rows pHash's second pass sees
        a = rng.integers(0, 256, (N, N)).astype(np.uint8)
        out += list(scipy.fftpack.dct(a, axis=0)[:20])
    return np.array(out, dtype=np.float64)


def arrays_2d(rng: np.random.Generator, scale: int = 1) -> np.ndarray:
    """32x32 uint8 images: random, and structured ones (flat, gradients, checkerboards, stripes)."""
    y, x = np.mgrid[0:N, 0:N]
    out: list[np.ndarray] = []
    out += list(rng.integers(0, 256, (16 * scale, N, N)))
    out += [np.full((N, N), c) for c in rng.integers(0, 256, 4 * scale)]
    for _ in range(2 * scale):
        a, b = rng.integers(0, 128), rng.integers(1, 8)
        out += [a + b * x, a + b * y, (a + b * (x + y) // 2), 255 - b * x]
    for p in [1, 2, 4, 8]:
        for _ in range(scale):
            a, b = rng.integers(0, 256, 2)
            out.append(np.where(((x // p) + (y // p)) % 2 == 0, a, b))
    for p in [1, 2, 4, 8]:
        for _ in range(scale):
            a, b = rng.integers(0, 256, 2)
            out.append(np.where((x // p) % 2 == 0, a, b))
            out.append(np.where((y // p) % 2 == 0, a, b))
    for _ in range(2 * scale):
        a, b = rng.integers(0, 256, 2)
        out.append(np.where(x < N // 2, a, b))
        out.append(np.where(y < rng.integers(1, N), a, b))
    for _ in range(2 * scale):
        h = rng.integers(0, 256, (N, N // 2))
        out.append(np.concatenate([h, h[:, ::-1]], axis=1))
        out.append(np.concatenate([h, h[:, ::-1]], axis=1).T)
    return np.clip(np.array(out), 0, 255).astype(np.uint8)


def phash_dct(a: np.ndarray) -> np.ndarray:
    """imagehash.phash's transform of a uint8 array."""
    return scipy.fftpack.dct(scipy.fftpack.dct(a, axis=0), axis=1)


def main() -> None:
    rng = np.random.default_rng(20240611)
    ints, floats, imgs = integer_vectors(rng), float_vectors(rng), arrays_2d(rng)
    blob = bytearray(b"MMDCT32\0")
    blob += struct.pack("<4I", 1, len(ints), len(floats), len(imgs))
    for v in ints:
        blob += v.astype("<i2").tobytes() + struct.pack("<Q", digest(scipy.fftpack.dct(v.astype(np.float64))))
    for v in floats:
        blob += v.astype("<f8").tobytes() + struct.pack("<Q", digest(scipy.fftpack.dct(v)))
    for a in imgs:
        blob += a.tobytes() + struct.pack("<Q", digest(phash_dct(a)))
    path = Path(__file__).with_name("dct32_scipy.bin")
    path.write_bytes(bytes(blob))
    print(
        f"{path}: {len(ints)} int, {len(floats)} float, {len(imgs)} 2-D, {len(blob)} bytes,"
        f" scipy {scipy.__version__}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
