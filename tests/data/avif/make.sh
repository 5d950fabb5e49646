#!/usr/bin/env bash
# Regenerates the AVIF test files here with Debian 12's avifenc (apt-get install libavif-bin;
# libavif 0.11.1, aom encoder) from two synthetic PNGs: a colour gradient with a few hard edges
# (RGB and RGBA) whose quadrants make every turn and mirror visible, and a 40000 x 6 one (wide/). The tests compare mmcore's
# pixels with Pillow's decode of the same files, so the encoder's exact output does not matter;
# Pillow cannot write these variants itself (depth 10 / 12, limited range, 4:0:0, premultiplied
# alpha, grids, image sequences, irot / imir without EXIF).
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp" <<'PY'
import sys, zlib, struct
def quadrants(w, h, alpha, shift):
    def pixel(x, y):
        q = (x >= w // 2) + 2 * (y >= h // 2)
        r, g, b = (255 * (q in (0, 3)), 255 * (q in (1, 3)), 255 * (q == 2))
        px = [(r + 3 * x + shift) % 256, (g + 5 * y) % 256, (b + x * y) % 256]
        return px + [(40 + 4 * x + 2 * y) % 256] if alpha else px
    return pixel
def wide(x, y):  # test_decode_avif.py's _wide_pixels
    return [(x // 160) % 256, (y * 40 + x // 400) % 256, (x // 1000 * 7) % 256]
def png(path, w, h, alpha, shift=0, pixel=None):
    pixel = pixel or quadrants(w, h, alpha, shift)
    rows = [bytes([0]) + b"".join(bytes(pixel(x, y)) for x in range(w)) for y in range(h)]
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 6 if alpha else 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b"")
    open(path, "wb").write(data)
d = sys.argv[1]
png(f"{d}/rgb.png", 64, 48, False)
png(f"{d}/rgba.png", 64, 48, True)
png(f"{d}/odd.png", 33, 17, False)
png(f"{d}/grid.png", 128, 128, False)
png(f"{d}/f2.png", 64, 48, True, shift=128)
png(f"{d}/wide.png", 40000, 6, False, pixel=wide)
PY
enc() { avifenc -s 8 --min 10 --max 30 "$@" >/dev/null; }
enc -d 10 -y 420 "$tmp/rgb.png" depth10_420.avif
enc -d 12 -y 444 "$tmp/rgb.png" depth12_444.avif
enc -d 10 -y 400 "$tmp/rgb.png" depth10_400.avif
enc -y 400 "$tmp/rgb.png" gray400.avif
enc -r limited -y 422 "$tmp/rgb.png" limited_422.avif
enc -y 420 "$tmp/odd.png" odd_33x17_420.avif
enc -y 444 "$tmp/rgba.png" alpha_444.avif
enc -d 10 -y 420 "$tmp/rgba.png" alpha_depth10_420.avif
enc -p -y 444 "$tmp/rgba.png" alpha_premultiplied.avif
enc --irot 1 --imir 1 "$tmp/rgb.png" irot1_imir1.avif
enc --imir 0 "$tmp/rgba.png" imir0_alpha.avif
enc -g 2x2 -y 444 "$tmp/grid.png" grid_2x2.avif
enc "$tmp/rgba.png" "$tmp/f2.png" sequence_2.avif
# Past libavif's default 32768-pixel side (Pillow cannot open it), lossless: the pixels are wide()'s.
mkdir -p wide
avifenc -s 6 --lossless "$tmp/wide.png" wide/wide_40000x6_lossless.avif >/dev/null
ls -l ./*.avif wide/*.avif
