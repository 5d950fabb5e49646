#!/usr/bin/env bash
# mmcore on aarch64 (Graviton, Grace), checked from an x86-64 Debian 12 machine, as root:
#   bash scripts/check_aarch64.sh build            # cross-compile _core for aarch64 (no emulation)
#   bash scripts/check_aarch64.sh test [PYTEST..]  # and run the tests there under qemu-user
# An aarch64 build has the scalar kernels only (backend "ref"; cmake/mmcore_isa.cmake). `build`
# makes a Debian 12 arm64 root (debootstrap's first stage, packages unpacked, nothing run in it),
# cross-compiles against it (libavif included) and checks the module is aarch64, links libavif
# and holds no x86 variant. With nvcc here it also cross-compiles what pip builds on a GH200 /
# GB200 host: the module with the CUDA unit (sm_90) and the DALI plugin against DALI's aarch64
# wheel, and checks them. `test` runs pytest
# inside that root under qemu-user (binfmt_misc) with the test extras' aarch64 wheels from PyPI,
# pdqhash built there and DALI (its CPU-only mode): ~10x slower than native, so the default
# selection is the kernels' oracle tests (imagehash, pdqhash, Pillow, faiss, the PDQ reference
# set) and the DALI pipeline tests, with the corpus at ../shared/corpus mounted when present (~50
# min on 2 cores); then every corpus file's hashes there against this machine's build
# (scripts/platform_hashes.py). Needs Debian's mirror and PyPI; the root is kept in
# $MMCORE_ARM64_ROOT (default /tmp/mmcore-arm64) for the next run. MMCORE_ARM64_CUDA=0 and
# MMCORE_ARM64_DALI=0 leave those parts out.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-build}"
shift || true
case "$mode" in build | test) ;; *) echo "usage: scripts/check_aarch64.sh build|test [pytest args]" >&2; exit 2 ;; esac
SRC="$PWD"
ROOT="${MMCORE_ARM64_ROOT:-/tmp/mmcore-arm64}"
BUILD="$ROOT/build"  # outside the tree: tests/cpp links build/*/cpp/libmmcore_cpu.a
PY=python3
[ -x .venv/bin/python ] && PY="$SRC/.venv/bin/python"
# pip download's options for the root's wheels (CPython 3.11, the manylinux tags Debian 12 takes).
plat=(--only-binary=:all: --python-version 3.11 --implementation cp --platform manylinux2014_aarch64
  --platform manylinux_2_17_aarch64 --platform manylinux_2_27_aarch64 --platform manylinux_2_28_aarch64)
# The checks below grep without -q: under pipefail an early exit would fail the pipe with SIGPIPE.
fail() { echo "check_aarch64: $1" >&2; exit 1; }

need=(debootstrap g++-aarch64-linux-gnu ninja-build)
[ "$mode" = test ] && need+=(qemu-user-static)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "check_aarch64: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The arm64 root: Debian 12's packages for the build (and, for `test`, Python, g++ for the tests
# that compile tests/cpp, and venv), unpacked.
if [ ! -f "$ROOT/.mmcore-root" ] || [ ! -f "$ROOT/usr/include/avif/avif.h" ]; then  # (roots before AVIF lack it)
  echo "check_aarch64: making the arm64 root in $ROOT"
  rm -rf "$ROOT"
  debootstrap --foreign --arch=arm64 --variant=minbase \
    --include=python3-dev,python3-venv,libjpeg62-turbo-dev,libpng-dev,libwebp-dev,libavif-dev,zlib1g-dev,libstdc++-12-dev,g++,pkg-config \
    bookworm "$ROOT" http://deb.debian.org/debian >"$ROOT.log" 2>&1 || {
    tail -5 "$ROOT.log" >&2
    exit 1
  }
  for deb in "$ROOT"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
  touch "$ROOT/.mmcore-root"
fi

# The cross build of the extension (what pip would build there; CUDA and DALI off).
cat >"$ROOT/toolchain.cmake" <<EOF
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_SYSROOT $ROOT)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
EOF
export PKG_CONFIG_SYSROOT_DIR="$ROOT"
export PKG_CONFIG_LIBDIR="$ROOT/usr/lib/aarch64-linux-gnu/pkgconfig:$ROOT/usr/share/pkgconfig"
version=$("$PY" -c "import tomllib; print(tomllib.load(open('pyproject.toml', 'rb'))['project']['version'])")
pybind11_dir=$("$PY" -m pybind11 --cmakedir)
# cross_build DIR TOOLCHAIN [-DNAME=VALUE..]: configure and build the extension in DIR, log in DIR.log.
cross_build() {
  local dir=$1 toolchain=$2
  shift 2
  rm -rf "$dir"  # a fresh configure each time (the root may have built another checkout); ccache keeps it short
  cmake -S . -B "$dir" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DSKBUILD_PROJECT_VERSION="$version" "$@" \
    -DPython_EXECUTABLE="$(command -v python3)" -DPython_INCLUDE_DIR="$ROOT/usr/include/python3.11" \
    -DPython_SOABI=cpython-311-aarch64-linux-gnu -Dpybind11_DIR="$pybind11_dir" >"$dir.log" 2>&1 || {
    tail -20 "$dir.log" >&2
    exit 1
  }
  cmake --build "$dir" -j "$(nproc)" >>"$dir.log" 2>&1 || {
    grep -E 'error|FAILED' "$dir.log" | head -40 >&2
    exit 1
  }
}
cross_build "$BUILD" "$ROOT/toolchain.cmake" -DMMCORE_CUDA=OFF -DMMCORE_DALI=OFF -DMMCORE_AVIF=ON
so=$(ls "$BUILD"/_core*.so)
aarch64-linux-gnu-readelf -h "$so" | grep 'Machine: *AArch64' >/dev/null || fail "$so is not an aarch64 module"
aarch64-linux-gnu-readelf -d "$so" | grep 'NEEDED.*libavif' >/dev/null || fail "$so does not link libavif"
if aarch64-linux-gnu-nm -C "$so" | grep -iE 'avx2::|avx512::|avxvnni::|amx::' >/dev/null; then
  fail "$so holds x86 variants"
fi
echo "check_aarch64: built $so ($(du -k "$so" | cut -f1) kB)"

# The CUDA unit too, when nvcc is here: what pip builds on a GH200 / GB200 host (Grace CPUs). This
# machine's nvcc cross-compiles with aarch64-linux-gnu-g++ as its host compiler against a toolkit
# folder in the root that links to its own bin/ and nvvm/ and holds an sbsa-linux target made from
# the aarch64 wheels of the runtime, crt, cccl and nvJPEG of nvcc's version. nvcc itself ships
# fatbinary_section.h, the same file for both targets (the aarch64 nvcc wheel's equals this
# toolkit's), so it is copied rather than downloaded with 32 MB of aarch64 compilers. sm_90 only
# (GH200's; the package's default adds sm_80), to keep the check short.
cuda_so=""
cuda_ver=""
if command -v nvcc >/dev/null 2>&1 && [ "${MMCORE_ARM64_CUDA:-1}" != 0 ]; then
  cuda_ver=$(nvcc --version | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p')
fi
if [ "${cuda_ver%%.*}" = 13 ]; then
  echo >"$ROOT.probe.cu"
  cuda_bin=$(nvcc --dryrun -c "$ROOT.probe.cu" -o "$ROOT.probe.o" 2>&1 | sed -n 's/^#\$ _HERE_=//p')
  rm -f "$ROOT.probe.cu"
  if [ ! -x "$cuda_bin/nvcc" ]; then
    echo "check_aarch64: cannot find nvcc's folder (nvcc --dryrun gave '$cuda_bin')" >&2
    exit 1
  fi
  CUDA_ROOT="$ROOT/cuda-$cuda_ver"
  if [ ! -f "$CUDA_ROOT/.mmcore-cuda" ]; then
    echo "check_aarch64: an sbsa-linux CUDA $cuda_ver target in $CUDA_ROOT"
    rm -rf "$CUDA_ROOT"
    sbsa="$CUDA_ROOT/targets/sbsa-linux"
    mkdir -p "$CUDA_ROOT/bin" "$sbsa" "$CUDA_ROOT/wheels"
    for f in "$cuda_bin"/*; do ln -s "$f" "$CUDA_ROOT/bin/"; done
    ln -s "$cuda_bin/../nvvm" "$CUDA_ROOT/nvvm"
    "$PY" -m pip download -q --no-deps "${plat[@]}" -d "$CUDA_ROOT/wheels" \
      "nvidia-cuda-runtime==$cuda_ver.*" "nvidia-cuda-crt==$cuda_ver.*" \
      "nvidia-cuda-cccl==$cuda_ver.*" "nvidia-nvjpeg==$cuda_ver.*"
    for w in "$CUDA_ROOT"/wheels/*.whl; do "$PY" -m zipfile -e "$w" "$CUDA_ROOT/wheels/x"; done
    cu="$CUDA_ROOT/wheels/x/nvidia/cu${cuda_ver%%.*}"
    mv "$cu/include" "$cu/lib" "$sbsa/"
    cp "$cuda_bin/../targets/x86_64-linux/include/fatbinary_section.h" "$sbsa/include/"
    ln -s "libcudart.so.${cuda_ver%%.*}" "$sbsa/lib/libcudart.so"  # what find_package(CUDAToolkit) looks for
    rm -rf "$CUDA_ROOT/wheels"
    touch "$CUDA_ROOT/.mmcore-cuda"
  fi
  # nvcc does not get CMAKE_SYSROOT: without --sysroot for its host compiler the root's /usr/include
  # is not one of CUDA's implicit folders, comes as -isystem before libstdc++'s and breaks <cmath>.
  {
    cat "$ROOT/toolchain.cmake"
    echo "set(CMAKE_CUDA_COMPILER $CUDA_ROOT/bin/nvcc)"
    echo "set(CMAKE_CUDA_HOST_COMPILER aarch64-linux-gnu-g++)"
    echo "set(CMAKE_CUDA_FLAGS_INIT \"-Xcompiler=--sysroot=$ROOT\")"
  } >"$ROOT/toolchain-cuda.cmake"
  # And the DALI plugin, against the aarch64 wheel of the DALI the `dali` extra pins (its headers and
  # the three libraries the link needs; MMCORE_ARM64_DALI=0 leaves it out: a 190 MB download).
  dali_flags=(-DMMCORE_DALI=OFF)
  if [ "${MMCORE_ARM64_DALI:-1}" != 0 ]; then
    dali_req=$("$PY" -c "import tomllib; print(next(r for r in tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['dali'] if r.startswith('nvidia-dali')))")
    DALI_ROOT="$ROOT/dali-${dali_req#*==}"
    if [ ! -f "$DALI_ROOT/.mmcore-dali" ]; then
      echo "check_aarch64: $dali_req for aarch64 in $DALI_ROOT"
      rm -rf "$DALI_ROOT"
      # Into the folder `test` installs DALI from, so that the wheel is fetched once.
      "$PY" -m pip download -q --no-deps "${plat[@]}" -d "$ROOT/wheels-dali" "$dali_req"
      "$PY" - "$DALI_ROOT" "$ROOT/wheels-dali" "${dali_req#*==}" <<'PYEOF'
import glob, sys, zipfile
root, wheels, version = sys.argv[1:]
keep = ("nvidia/dali/__init__.py", "nvidia/dali/libdali.so", "nvidia/dali/libdali_core.so", "nvidia/dali/libdali_kernels.so")
with zipfile.ZipFile(glob.glob(f"{wheels}/nvidia_dali_*-{version}-*.whl")[0]) as z:
    z.extractall(root, [n for n in z.namelist() if n in keep or n.startswith("nvidia/dali/include/")])
PYEOF
      touch "$DALI_ROOT/.mmcore-dali"
    fi
    dali_flags=(-DMMCORE_DALI=ON -DMMCORE_DALI_DIR="$DALI_ROOT/nvidia/dali")
  fi
  cross_build "$BUILD-cuda" "$ROOT/toolchain-cuda.cmake" -DMMCORE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 "${dali_flags[@]}"
  cuda_so=$(ls "$BUILD-cuda"/_core*.so)
  aarch64-linux-gnu-readelf -h "$cuda_so" | grep 'Machine: *AArch64' >/dev/null || fail "$cuda_so is not an aarch64 module"
  aarch64-linux-gnu-readelf -S -W "$cuda_so" | grep '\.nv_fatbin' >/dev/null || fail "$cuda_so holds no device code"
  aarch64-linux-gnu-nm -C "$cuda_so" | grep 'mmcore::HashGpu::init' >/dev/null || fail "$cuda_so has no HashGpu"
  # The static runtime, nvJPEG by dlopen: the module must load on a host with no driver.
  if aarch64-linux-gnu-readelf -d "$cuda_so" | grep -E 'NEEDED.*lib(cuda|cudart|nvjpeg)' >/dev/null; then
    fail "$cuda_so needs CUDA libraries at load time"
  fi
  echo "check_aarch64: built $cuda_so with CUDA $cuda_ver for sm_90 ($(du -k "$cuda_so" | cut -f1) kB)"
  if [ -n "${DALI_ROOT:-}" ]; then
    plugin="$BUILD-cuda/dali/libmmcore_dali.so"
    aarch64-linux-gnu-readelf -h "$plugin" | grep 'Machine: *AArch64' >/dev/null || fail "$plugin is not an aarch64 module"
    aarch64-linux-gnu-nm -C "$plugin" | grep 'mmcore::HashGpu::init' >/dev/null || fail "$plugin has no GPU operator"
    echo "check_aarch64: built $plugin against ${dali_req} ($(du -k "$plugin" | cut -f1) kB)"
  fi
elif [ -n "$cuda_ver" ]; then
  echo "check_aarch64: nvcc is CUDA $cuda_ver, not 13 (whose aarch64 wheels this takes): the CUDA unit was not cross-built"
else
  echo "check_aarch64: no nvcc here (or MMCORE_ARM64_CUDA=0): the CUDA unit was not cross-built"
fi
[ "$mode" = build ] && exit 0

# Run the tests there: qemu-user through binfmt_misc.
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register
fi
in_root() {
  chroot "$ROOT" /usr/bin/env -i PATH=/venv/bin:/usr/bin:/bin HOME=/root PYTHONPATH=/src \
    MMCORE_REQUIRE_DALI_PLUGIN="${MMCORE_REQUIRE_DALI_PLUGIN:-}" "$@"
}
wheels="$ROOT/wheels"
if [ ! -f "$ROOT/venv/.mmcore-venv" ]; then
  echo "check_aarch64: the test venv in the arm64 root"
  mkdir -p "$wheels/src"
  "$PY" -m pip download -q "${plat[@]}" -d "$wheels" "numpy>=1.24" "pytest>=8" "pytest-benchmark>=4" \
    "hypothesis>=6" Pillow==13.0.0 imagehash==4.3.2 faiss-cpu==1.15.1 "pyarrow>=14" matplotlib
  "$PY" -m pip download -q "${plat[@]}" -d "$wheels" cython setuptools wheel
  # pdqhash 0.2.8 has no wheel on PyPI: its sdist builds in the root (g++ under qemu), with
  # contraction off so that it is the program it is on x86-64: with GCC's default it fuses its float
  # math there and gives other bits on 121 corpus files; without, it equals its x86-64 build on all
  # but one damaged JPEG (which Pillow decodes differently there too). setuptools compiles C++ with
  # CXXFLAGS (in place of its own flags; CFLAGS would not reach it).
  "$PY" -m pip download -q --no-build-isolation --no-binary :all: --no-deps -d "$wheels/src" pdqhash==0.2.8
  chroot "$ROOT" /usr/bin/python3 -m venv /venv
  chroot "$ROOT" /bin/sh -c '/venv/bin/pip install -q --no-index /wheels/*.whl'
  chroot "$ROOT" /usr/bin/env CXXFLAGS="-O2 -ffp-contract=off" /venv/bin/pip install -q --no-cache-dir --no-index \
    --no-build-isolation /wheels/src/pdqhash-0.2.8.tar.gz
  touch "$ROOT/venv/.mmcore-venv"
fi
# DALI (CPU-only mode runs under qemu) when the plugin was built: its aarch64 wheel and dependencies.
if [ -n "${DALI_ROOT:-}" ] && [ ! -f "$ROOT/venv/.mmcore-dali" ]; then
  echo "check_aarch64: $dali_req in the test venv"
  "$PY" -m pip download -q "${plat[@]}" -d "$ROOT/wheels-dali" "$dali_req"
  in_root /venv/bin/pip install -q --no-index --find-links /wheels --find-links /wheels-dali "$dali_req"
  touch "$ROOT/venv/.mmcore-dali"
fi

# The tree as pip would install it: sources, the module, and the static library tests/cpp links.
rm -rf "$ROOT/src"
mkdir -p "$ROOT/src/build/aarch64/cpp" "$ROOT/shared/corpus" "$ROOT/proc" "$ROOT/dev"
git ls-files -z | tar --null -cf - -T - | tar -xf - -C "$ROOT/src"
# The module with the CUDA unit when it was built (a GH200 host's build; no driver here, so its GPU
# side answers "no usable CUDA device"), else the CPU-only one.
cp "${cuda_so:-$so}" "$ROOT/src/mmcore/_core.cpython-311-aarch64-linux-gnu.so"
cp "$BUILD/cpp/libmmcore_cpu.a" "$ROOT/src/build/aarch64/cpp/"
if [ -n "${DALI_ROOT:-}" ]; then
  cp "$BUILD-cuda/dali/libmmcore_dali.so" "$BUILD-cuda/dali/dali_plugin.json" "$ROOT/src/mmcore/"
fi
mounted=()
cleanup() { for m in "${mounted[@]}"; do umount -l "$m" || true; done; }
trap cleanup EXIT
mount -t proc proc "$ROOT/proc" && mounted+=("$ROOT/proc")
mount --bind /dev "$ROOT/dev" && mounted+=("$ROOT/dev")
if [ -d ../shared/corpus ]; then mount --bind -o ro ../shared/corpus "$ROOT/shared/corpus" && mounted+=("$ROOT/shared/corpus"); fi
# Left out of the default selection: qemu-user does not pass RLIMIT_AS on to the host (it would cap
# qemu's own mappings), so the address-space-cap test would make its 12 GB thumbnail for real; and
# the corpus pHash test, whose oracle is not the same program on aarch64: imagehash's pHash
# (scipy's aarch64 DCT) gives other bits there on 2 PngSuite palette files, where mmcore gives
# imagehash's x86-64 bits. mmcore's own bits are compared with the x86-64 build's below.
if (($# == 0)); then
  set -- tests/test_build.py tests/test_hash.py tests/test_resize.py tests/test_hamming.py tests/test_hamming_cpp.py \
    tests/test_quant.py tests/test_quant_cpp.py tests/test_decode_jpeg.py tests/test_decode_png_webp.py tests/test_image.py \
    tests/test_decode_avif.py \
    ${DALI_ROOT:+tests/test_pipeline.py} \
    --deselect tests/test_image.py::test_out_of_memory_is_a_record_status \
    --deselect "tests/test_hash.py::test_exact_equals_imagehash_on_corpus[phash]"
fi
rc=0
MMCORE_REQUIRE_DALI_PLUGIN=${DALI_ROOT:+1}  # the pipeline tests fail, not skip, without it
in_root /bin/sh -c 'cd /src && exec /venv/bin/python -m pytest -q -p no:cacheprovider "$@"' sh "$@" || rc=$?

# Every corpus file's hashes on aarch64 against this machine's installed build (scripts/setup.sh).
if [ -d ../shared/corpus ] && [ -x .venv/bin/python ]; then
  (cd /tmp && "$SRC/.venv/bin/python" "$SRC/scripts/platform_hashes.py" dump "$ROOT/hashes-host.json" --corpus "$SRC/../shared/corpus")
  in_root /venv/bin/python /src/scripts/platform_hashes.py dump /hashes-aarch64.json --corpus /shared/corpus
  "$PY" scripts/platform_hashes.py compare "$ROOT/hashes-host.json" "$ROOT/hashes-aarch64.json" || rc=1
else
  echo "check_aarch64: no corpus or no .venv here: the hashes were not compared with this machine's"
fi
exit "$rc"
