#!/usr/bin/env bash
# Prepares DALI for a GPU host (issue 6's "decode + resize >= DALI's mixed decoder" row), here, on a
# dev machine where `bash scripts/setup.sh test` installed the dali extra into .venv. The GPU host has
# no DALI and no network, and a device run carries at most 64 MiB, while DALI with the libraries it
# loads is ~540 MB (~167 MB compressed). So this packs it into three parts, each carried by its own
# device call while the machine stays warm (gpu_dali.sh stage N copies part N to /tmp there, which
# stays until the machine is given back):
#   .gpudali/part1/dali.tar.xz.00, part2/...01, part3/...02   the archive, split at 56 MiB
#   .gpudali/part*/MANIFEST                                    parts, sizes, sha256 of the whole
# The archive is a site directory for CPython 3.12 (the host's) and 3.11 (checked here):
#   nvidia/dali (its libraries stripped of symbol tables, without headers and other Pythons'
#   bindings), nvimgcodec, nvjpeg (nvidia/cu13), nvjpeg2k, nvtiff, libnvcomp, their dist-info,
#   and DALI's pure-Python and small native requirements the host lacks (astunparse, gast, optree,
#   nvtx, makefun, libcst) as cp312 wheels unpacked; and mmcore's DALI plugin as built here
#   (mmcore_dali_plugin/: libmmcore_dali.so and its dali_plugin.json; gpu_python.sh runs the DALI
#   GPU pipeline test with it).
# Checked here before packing: the staged site, alone on PYTHONPATH, runs a CPU pipeline (decode +
# resize 256) on a JPEG.
#
#   bash scripts/setup.sh test && bash bench/gpu_check_prepare.sh && bash bench/gpu_dali_prepare.sh
# then, on the GPU host, back to back (the machine must stay warm between them: ~30 s):
#   run(command='bash bench/gpu_dali.sh stage 1', carry=[".gpudali/part1"])
#   run(command='bash bench/gpu_dali.sh stage 2', carry=[".gpudali/part2"])
#   run(command='bash bench/gpu_dali.sh stage 3', carry=[".gpudali/part3"])
#   run(command='bash bench/gpu_check.sh "$OUT"', carry=[".gpucheck/carry"])
# gpu_check.sh finds the three parts, unpacks them and bench_gpu.py adds DALI's row beside mmcore's.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[[ "$PY" == */* && "$PY" != /* ]] && PY="$PWD/$PY"
SITE=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
[[ -d "$SITE/nvidia/dali" ]] || { echo "no DALI in $SITE: run bash scripts/setup.sh test first" >&2; exit 2; }
OUTD=.gpudali
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
STAGE="$TMP/site"
mkdir -p "$STAGE/nvidia"
cp "$SITE/nvidia/__init__.py" "$STAGE/nvidia/"  # pkgutil.extend_path: the host's nvidia.* stay importable
for d in dali nvimgcodec cu13 nvjpeg2k nvtiff libnvcomp; do
  [[ -d "$SITE/nvidia/$d" ]] && cp -r "$SITE/nvidia/$d" "$STAGE/nvidia/"
done
# mmcore's DALI plugin as built here (against this DALI), for its GPU test on the host.
mkdir -p "$STAGE/mmcore_dali_plugin"
cp "$SITE/mmcore/libmmcore_dali.so" "$SITE/mmcore/dali_plugin.json" "$STAGE/mmcore_dali_plugin/"
cp -r "$SITE"/nvidia_dali_cuda130-*.dist-info "$SITE"/nvidia_nvimgcodec_cu13-*.dist-info "$STAGE/"
for info in "$SITE"/nvidia_nvjpeg-*.dist-info "$SITE"/nvidia_nvjpeg2k_cu13-*.dist-info \
  "$SITE"/nvidia_nvtiff_cu13-*.dist-info "$SITE"/nvidia_libnvcomp_cu13-*.dist-info; do
  [[ -d "$info" ]] && cp -r "$info" "$STAGE/"
done
# Not needed to run pipelines: headers, nvCOMP's tools, caches, bindings for Pythons other than 3.11 / 3.12,
# and what the CUDA header wheels (setup.sh installs them to build the plugin) put beside nvJPEG in
# nvidia/cu13 (the CUDA runtime, static and shared: the host has its own; their CMake files).
rm -rf "$STAGE"/nvidia/*/include "$STAGE/nvidia/libnvcomp/bin" "$STAGE/nvidia/cu13/cccl"
rm -f "$STAGE"/nvidia/cu13/lib/libcudart* "$STAGE"/nvidia/cu13/lib/libcudadevrt.a
find "$STAGE" -name __pycache__ -type d -prune -exec rm -rf {} +
find "$STAGE/nvidia/dali" "$STAGE/nvidia/nvimgcodec" -maxdepth 1 -name '*.cpython-*.so' \
  ! -name '*cpython-311-*' ! -name '*cpython-312-*' -delete
find "$STAGE" -type f -name '*.so*' -exec strip --strip-unneeded {} + 2>/dev/null || true

# DALI's requirements missing on the host (its package list: /work/.library/device/KINDS.md), the
# versions installed here, as CPython 3.12 wheels.
reqs=()
for p in astunparse gast optree nvtx makefun libcst; do
  v=$("$PY" -c "import importlib.metadata as m; print(m.version('$p'))")
  reqs+=("$p==$v")
done
PLAT=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
  --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64)
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLAT[@]}" -d "$TMP/wheels" "${reqs[@]}"
mkdir -p "$TMP/site312"
for w in "$TMP"/wheels/*.whl; do (cd "$TMP/site312" && unzip -q -o "$w"); done

# The staged DALI alone on the path (the 3.11 requirements from .venv), CPU only: decode + resize.
JPEG=$(find "${MMCORE_CORPUS:-../shared/corpus}/jpeg" mmcore/data -name '*.jpg' -print -quit 2>/dev/null || true)
[[ -n "$JPEG" ]] || { echo "no JPEG to check the staged DALI with" >&2; exit 2; }
JPEG=$(realpath "$JPEG")
(cd "$TMP" && PYTHONPATH="$STAGE" "$PY" -c "
import sys
import numpy as np
import nvidia.dali as dali
from nvidia.dali import fn, pipeline_def, types
assert dali.__file__.startswith(sys.argv[2]), dali.__file__
data = np.frombuffer(open(sys.argv[1], 'rb').read(), np.uint8)

@pipeline_def(batch_size=2, num_threads=1, device_id=None)
def pipe():
    j = fn.external_source(source=lambda: [data, data], batch=True, dtype=types.UINT8)
    return fn.resize(fn.decoders.image(j, device='cpu'), resize_shorter=256)

p = pipe()
p.build()
(out,) = p.run()
print('staged DALI', dali.__version__, 'decoded + resized on the CPU:', out.at(0).shape)
" "$JPEG" "$STAGE")
cp -r "$TMP"/site312/. "$STAGE/"

rm -rf "$OUTD" && mkdir -p "$OUTD"
(cd "$STAGE" && tar -cf - .) | xz -T2 -6 >"$TMP/dali.tar.xz"
(cd "$TMP" && split -b 56M -d -a 2 dali.tar.xz dali.tar.xz.)
parts=("$TMP"/dali.tar.xz.??)
[[ ${#parts[@]} -eq 3 ]] || { echo "expected 3 parts, got ${#parts[@]}: change the split or the calls" >&2; exit 2; }
sum=$(sha256sum "$TMP/dali.tar.xz" | cut -d' ' -f1)
for i in 1 2 3; do
  mkdir -p "$OUTD/part$i"
  mv "${parts[$((i - 1))]}" "$OUTD/part$i/"
  {
    echo "parts 3"
    echo "sha256 $sum"
    echo "bytes $(stat -c %s "$TMP/dali.tar.xz")"
    echo "dali $("$PY" -c "import importlib.metadata as m; print(m.version('nvidia-dali-cuda130'))")"
  } >"$OUTD/part$i/MANIFEST"
done
du -sh "$OUTD"/part*
echo
echo "device calls, back to back (the third part's call, then gpu_check.sh's, while the machine is warm):"
for i in 1 2 3; do echo "  run(command='bash bench/gpu_dali.sh stage $i', carry=[\".gpudali/part$i\"])"; done
echo "  run(command='bash bench/gpu_check.sh \"\$OUT\"', carry=[\".gpucheck/carry\"])"
