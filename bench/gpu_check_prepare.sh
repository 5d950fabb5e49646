#!/usr/bin/env bash
# Prepares bench/gpu_check.sh's run on a GPU host, here, on a dev machine (nvcc, CMake, the codec
# dev packages, pkg-config, Python with pybind11). The GPU host is assumed to have none of the
# codec libraries nor this Python, so everything the check needs is built here and carried:
#   .gpucheck/carry/bin/mmcore_gpu_check   (sm_80 + sm_90 SASS and PTX, static CUDA runtime)
#   .gpucheck/carry/lib/                   the shared libraries ldd names beyond glibc
#   .gpucheck/carry/images/                ~50 corpus JPEG/PNG files (a few MB)
#   .gpucheck/carry/bin/mmcore_kernel_check (int8 top-k, Hamming kNN, resize vs the CPU, bench)
#   .gpucheck/carry/bin/mmcore_nvjpeg_check (when nvjpeg.h is found: GPU JPEG decode check + bench)
#   .gpucheck/carry/images_corrupt/        ~20 damaged JPEGs from corrupt/ (nvJPEG must not die on them)
#   .gpucheck/carry/static/                libmmcore_cpu.a, libmmcore_cuda.a, libcudart_static.a and
#   .gpucheck/carry/pybind11/include/      pybind11's headers: bench/gpu_python.sh builds the Python
#                                          module there for the host's own python3 from them
#   .gpucheck/carry/wheels/                faiss-cpu for the host's Python (bench_quant.py on its Xeon),
#                                          when pip can fetch it (set NO_QUANT=1 to leave it out)
#   .gpucheck/carry/bin/extra/             the CPU-variant C++ tests (test_hamming, test_quant, ...),
#                                          built here, run there (see
#                                          bench/gpu_check.sh); more can be copied in by hand
# The build tree is .gpucheck/build (not carried). .gpucheck/ is git-ignored.
#
#   bash bench/gpu_check_prepare.sh [CORPUS_DIR]     # default ../shared/corpus
#
# Then, on the GPU host, from the repository root, carrying .gpucheck/carry:
#   bash bench/gpu_check.sh "$OUT"
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=${1:-../shared/corpus}
PY=${PY:-}
if [[ -z "$PY" ]]; then
  for p in .venv/bin/python /work/main/.venv/bin/python python3; do
    if command -v "$p" >/dev/null && "$p" -m pybind11 --cmakedir >/dev/null 2>&1; then PY=$p; break; fi
  done
fi
[[ -n "$PY" ]] || { echo "need a Python with pybind11 (set PY=...)" >&2; exit 2; }
# An absolute path that keeps a virtual environment's bin/ (its site-packages hold nvjpeg.h).
PY=$(command -v "$PY")
[[ "$PY" == /* ]] || PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"
BUILD=.gpucheck/build
CARRY=.gpucheck/carry

# No AVIF there: libavif's AV1 codecs would add ~18 MB to the carry, and the GPU check decodes none.
cmake -S . -B "$BUILD" -G Ninja -DMMCORE_CUDA=ON -DMMCORE_AVIF=OFF -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_ARCHITECTURES="80;90" -DSKBUILD_PROJECT_VERSION=0.1.0 \
  -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v "$PY")" >/dev/null
cmake --build "$BUILD" -j2 --target mmcore_gpu_check mmcore_gpu_check_emulated mmcore_kernel_check \
  mmcore_kernel_check_emulated
# The nvJPEG check exists when CMake found nvjpeg.h (the nvidia-nvjpeg wheel, a DALI dependency).
NVJPEG_CHECK=0
if cmake --build "$BUILD" -j2 --target mmcore_nvjpeg_check >/dev/null 2>&1; then NVJPEG_CHECK=1; fi

rm -rf "$CARRY/static" "$CARRY/pybind11" "$CARRY/bin/mmcore_gpu_check" "$CARRY/bin/mmcore_kernel_check" "$CARRY/bin/mmcore_nvjpeg_check" "$CARRY/lib" "$CARRY/images" \
  "$CARRY/images_corrupt"
mkdir -p "$CARRY/bin/extra" "$CARRY/lib" "$CARRY/images" "$CARRY/images_corrupt"
cp "$BUILD/cuda/mmcore_gpu_check" "$BUILD/cuda/mmcore_kernel_check" "$CARRY/bin/"
# The kernels as static archives, for the Python module bench/gpu_python.sh links on the host
# (its python3 is not this machine's, so only the two binding files are compiled there).
cmake --build "$BUILD" -j2 --target mmcore_cpu mmcore_cuda >/dev/null
mkdir -p "$CARRY/static" "$CARRY/pybind11"
cp "$BUILD/cpp/libmmcore_cpu.a" "$BUILD/cuda/libmmcore_cuda.a" "$CARRY/static/"
cudart=$(find "$(dirname "$(dirname "$(command -v nvcc)")")" /usr/local/cuda/lib64 -name libcudart_static.a 2>/dev/null | head -1)
[[ -n "$cudart" ]] && cp "$cudart" "$CARRY/static/" || echo "libcudart_static.a not found: gpu_python.sh will fail to link"
cp -r "$("$PY" -m pybind11 --includes | tr ' ' '\n' | grep pybind11 | sed 's/^-I//')" "$CARRY/pybind11/include"
if [[ $NVJPEG_CHECK == 1 ]]; then
  cp "$BUILD/cuda/mmcore_nvjpeg_check" "$CARRY/bin/"
  # nvJPEG is dlopen'ed (ldd does not list it): carry the wheel's library (about 6 MB).
  lib=$("$PY" -c "import importlib.util as u, os; s = u.find_spec('nvidia'); print(next((os.path.join(p, 'cu13', 'lib', 'libnvjpeg.so.13') for p in (s.submodule_search_locations or []) if os.path.isfile(os.path.join(p, 'cu13', 'lib', 'libnvjpeg.so.13'))), ''))" 2>/dev/null || true)
  if [[ -n "$lib" ]]; then cp -L "$lib" "$CARRY/lib/libnvjpeg.so.13"; else echo "libnvjpeg.so.13 not found: the nvJPEG check will say so"; fi
fi
# faiss-cpu (abi3 wheel, ~18 MB) for bench_quant.py on the host's CPU; the host has numpy.
rm -rf "$CARRY/wheels"
if [[ "${NO_QUANT:-0}" != 1 ]]; then
  mkdir -p "$CARRY/wheels"
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    -d "$CARRY/wheels" faiss-cpu==1.15.1 || echo "faiss-cpu wheel not fetched: the host skips bench_quant.py"
fi
# The C++ tests that check every compiled CPU variant against the scalar ref run there too: the GPU
# host's CPU may have AVX-512, which no dev machine of this project has (their "checked" lines say).
for t in test_hamming test_quant test_luma test_resize; do
  [[ -f "tests/cpp/$t.cpp" ]] || continue
  g++ -O2 -std=c++17 -Icpp/include -Icpp/src "tests/cpp/$t.cpp" "$BUILD/cpp/libmmcore_cpu.a" \
    $(pkg-config --libs libjpeg libpng libwebp libwebpdemux zlib) -lpthread -o "$CARRY/bin/extra/$t"
done

# Shared libraries of every carried binary, except the C runtime the host has anyway.
for exe in "$CARRY"/bin/mmcore_gpu_check "$CARRY"/bin/mmcore_kernel_check "$CARRY"/bin/extra/*; do
  [[ -f "$exe" && -x "$exe" ]] || continue
  ldd "$exe" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r soname path; do
    case "$soname" in
      libc.so.*|libm.so.*|libdl.so.*|librt.so.*|libpthread.so.*|ld-linux*|libstdc++.so.*|libgcc_s.so.*) ;;
      libcuda.so.*|libnvidia*) ;;  # the driver's: must come from the host
      *) cp -L "$path" "$CARRY/lib/$soname" ;;
    esac
  done
done

# About 50 real images: every k-th JPEG and PNG under 700 KB (sorted by name), plus the largest
# JPEG under 4 MB (a many-megapixel photo).
pick() {  # dir count max_bytes
  find "$1" -maxdepth 1 -type f -size -"$3"c -printf '%f\n' 2>/dev/null | sort |
    awk -v n="$2" '{a[NR]=$0} END {if (NR == 0) exit; s = NR / n; if (s < 1) s = 1;
                                     for (i = 1; i <= NR && c < n; i += s) {print a[int(i)]; c++}}'
}
if [[ -d "$CORPUS/jpeg" ]]; then
  pick "$CORPUS/jpeg" 36 700000 | while read -r f; do cp "$CORPUS/jpeg/$f" "$CARRY/images/$f"; done
  big=$(find "$CORPUS/jpeg" -maxdepth 1 -type f -size -4000000c -printf '%s %f\n' | sort -n | tail -1 | cut -d' ' -f2-)
  [[ -n "$big" ]] && cp "$CORPUS/jpeg/$big" "$CARRY/images/$big"
fi
if [[ -d "$CORPUS/png" ]]; then
  pick "$CORPUS/png" 14 700000 | while read -r f; do cp "$CORPUS/png/$f" "$CARRY/images/png_$f"; done
fi
# Damaged JPEGs (every 10th of corrupt/'s JPEG-signature files under 200 kB, at most 20): nvJPEG must
# give each a status and leave the others alone. The plan check shows how many reach nvJPEG.
if [[ -d "$CORPUS/corrupt" && $NVJPEG_CHECK == 1 ]]; then
  "$BUILD/cuda/mmcore_nvjpeg_check" --plan-only --images "$CORPUS/corrupt"
  "$PY" - "$CORPUS/corrupt" "$CARRY/images_corrupt" <<'PYEOF'
import os, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
jpegs = []
for n in sorted(os.listdir(src)):
    p = os.path.join(src, n)
    if os.path.isfile(p) and os.path.getsize(p) < 200_000:
        with open(p, "rb") as f:
            if f.read(3) == b"\xff\xd8\xff":
                jpegs.append(n)
for n in jpegs[::10][:20]:
    shutil.copy(os.path.join(src, n), os.path.join(dst, n))
PYEOF
fi

echo
echo "carried libraries:"; ls -1 "$CARRY/lib"
echo "images: $(ls -1 "$CARRY/images" | wc -l) files"
echo "size of $CARRY: $(du -sh "$CARRY" | cut -f1) (the whole working tree must stay under 64 MiB)"
# The host's C and C++ runtimes are used (a static libstdc++ would raise the glibc floor to this
# machine's 2.36 through arc4random): print the newest versions the carried files ask for.
echo "needs at least: $(objdump -T "$CARRY"/bin/mmcore_gpu_check "$CARRY"/lib/* 2>/dev/null |
  grep -o 'GLIBC_[0-9.]*\|GLIBCXX_[0-9.]*' | sort -V | awk -F_ '{v[$1]=$0} END {print v["GLIBC"], v["GLIBCXX"]}')"
if LD_LIBRARY_PATH="$CARRY/lib" ldd "$CARRY/bin/mmcore_gpu_check" | grep -q "not found"; then
  echo "UNRESOLVED libraries:" >&2
  LD_LIBRARY_PATH="$CARRY/lib" ldd "$CARRY/bin/mmcore_gpu_check" | grep "not found" >&2
  exit 1
fi
# gpu_check.cpp's own logic, end to end, with the kernel emulated on the CPU (no GPU needed).
echo
echo "emulated run of the check (CPU, small sets):"
if ! "$BUILD/cuda/mmcore_gpu_check_emulated" --images "$CARRY/images" --report "$BUILD/emulated.md" --random 30 \
  --no-huge --max-images 200 --bench-count 16 --repeat 1 >"$BUILD/emulated.log" 2>&1; then
  tail -30 "$BUILD/emulated.log" >&2
  echo "the emulated check failed: fix before using device time" >&2
  exit 1
fi
grep -E 'correctness|contract' "$BUILD/emulated.log"
if ! "$BUILD/cuda/mmcore_kernel_check_emulated" --shrink 100 --rows 3000 --cpu-rows 1000 --repeat 1 --resize-count 40 --join-rows 3000 \
  --report "$BUILD/kernels_emulated.md" >"$BUILD/kernels_emulated.log" 2>&1; then
  tail -30 "$BUILD/kernels_emulated.log" >&2
  echo "the emulated kernel check failed: fix before using device time" >&2
  exit 1
fi
grep -E 'correctness' "$BUILD/kernels_emulated.log" | sed 's/^/kernels: /'
if ! "$BUILD/cuda/mmcore_kernel_check_emulated" --knn-only --report "$BUILD/knn_emulated.md" \
  >"$BUILD/knn_emulated.log" 2>&1; then
  tail -20 "$BUILD/knn_emulated.log" >&2
  echo "the emulated filtered kNN check failed: fix before using device time" >&2
  exit 1
fi
grep -E 'correctness' "$BUILD/knn_emulated.log" | sed 's/^/kernels, filtered kNN: /'
echo "the Python module built as bench/gpu_python.sh builds it there, with this Python (no GPU: gpu tests skip):"
MMCORE_SKIP_QUANT=1 MMCORE_PY_BUILD="$PWD/$BUILD/pycheck" bash bench/gpu_python.sh "$PY" >"$BUILD/python.log" 2>&1 || true
grep -E "^built|passed|failed|error" "$BUILD/python.log" | sed 's/^/  /'
grep -q "passed" "$BUILD/python.log" || { tail -20 "$BUILD/python.log" >&2; echo "gpu_python.sh failed here" >&2; exit 1; }
echo "the real binary here, with the carried libraries (no GPU here: expect exit 3):"
set +e
LD_LIBRARY_PATH="$CARRY/lib" "$CARRY/bin/mmcore_gpu_check" --report "$BUILD/nodevice.md" --bench-count 0 \
  >"$BUILD/nodevice.log" 2>&1
r=$?
set -e
echo "  $(tail -1 "$BUILD/nodevice.log") -> exit $r"

echo
echo "device command (run from the repository root, carry [\".gpucheck/carry\"], timeout_s 600):"
echo '  bash bench/gpu_check.sh "$OUT"'
