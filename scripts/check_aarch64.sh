#!/usr/bin/env bash
# mmcore on aarch64 (Graviton, Grace), checked from an x86-64 Debian 12 machine, as root:
#   bash scripts/check_aarch64.sh build            # cross-compile _core for aarch64 (no emulation)
#   bash scripts/check_aarch64.sh test [PYTEST..]  # and run the tests there under qemu-user
# An aarch64 build has the scalar kernels only (backend "ref"; cmake/mmcore_isa.cmake). `build`
# makes a Debian 12 arm64 root (debootstrap's first stage, packages unpacked, nothing run in it),
# cross-compiles against it and checks the module is aarch64 and holds no x86 variant. `test` runs
# pytest inside that root under qemu-user (binfmt_misc) with the test extras' aarch64 wheels from
# PyPI and pdqhash built there: ~10x slower than native, so the default selection is the kernels'
# oracle tests (imagehash, pdqhash, Pillow, faiss, the PDQ reference set; the corpus at
# ../shared/corpus is mounted when present; ~25 min on 2 cores); then every corpus file's hashes
# there against this machine's build (scripts/platform_hashes.py). Needs Debian's mirror and PyPI;
# the root is kept in $MMCORE_ARM64_ROOT (default /tmp/mmcore-arm64) for the next run.
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
if [ ! -f "$ROOT/.mmcore-root" ]; then
  echo "check_aarch64: making the arm64 root in $ROOT"
  rm -rf "$ROOT"
  debootstrap --foreign --arch=arm64 --variant=minbase \
    --include=python3-dev,python3-venv,libjpeg62-turbo-dev,libpng-dev,libwebp-dev,zlib1g-dev,libstdc++-12-dev,g++,pkg-config \
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
rm -rf "$BUILD"  # a fresh configure each time (the root may have built another checkout); ccache keeps it short
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$ROOT/toolchain.cmake" \
  -DSKBUILD_PROJECT_VERSION="$version" -DMMCORE_CUDA=OFF -DMMCORE_DALI=OFF \
  -DPython_EXECUTABLE="$(command -v python3)" -DPython_INCLUDE_DIR="$ROOT/usr/include/python3.11" \
  -DPython_SOABI=cpython-311-aarch64-linux-gnu -Dpybind11_DIR="$pybind11_dir" >"$BUILD.log" 2>&1 || {
  tail -20 "$BUILD.log" >&2
  exit 1
}
cmake --build "$BUILD" -j "$(nproc)" >>"$BUILD.log" 2>&1 || {
  grep -E 'error|FAILED' "$BUILD.log" | head -40 >&2
  exit 1
}
so=$(ls "$BUILD"/_core*.so)
aarch64-linux-gnu-readelf -h "$so" | grep -q 'Machine: *AArch64' || { echo "check_aarch64: $so is not an aarch64 module" >&2; exit 1; }
if aarch64-linux-gnu-nm -C "$so" | grep -qiE 'avx2::|avx512::|avxvnni::|amx::'; then
  echo "check_aarch64: $so holds x86 variants" >&2
  exit 1
fi
echo "check_aarch64: built $so ($(du -k "$so" | cut -f1) kB)"
[ "$mode" = build ] && exit 0

# Run the tests there: qemu-user through binfmt_misc.
[ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  grep -v '^#' /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register
fi
wheels="$ROOT/wheels"
if [ ! -f "$ROOT/venv/.mmcore-venv" ]; then
  echo "check_aarch64: the test venv in the arm64 root"
  mkdir -p "$wheels/src"
  plat=(--only-binary=:all: --python-version 3.11 --implementation cp --platform manylinux2014_aarch64
    --platform manylinux_2_17_aarch64 --platform manylinux_2_27_aarch64 --platform manylinux_2_28_aarch64)
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

# The tree as pip would install it: sources, the module, and the static library tests/cpp links.
rm -rf "$ROOT/src"
mkdir -p "$ROOT/src/build/aarch64/cpp" "$ROOT/shared/corpus" "$ROOT/proc" "$ROOT/dev"
git ls-files -z | tar --null -cf - -T - | tar -xf - -C "$ROOT/src"
cp "$so" "$ROOT/src/mmcore/_core.cpython-311-aarch64-linux-gnu.so"
cp "$BUILD/cpp/libmmcore_cpu.a" "$ROOT/src/build/aarch64/cpp/"
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
    --deselect tests/test_image.py::test_out_of_memory_is_a_record_status \
    --deselect "tests/test_hash.py::test_exact_equals_imagehash_on_corpus[phash]"
fi
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/venv/bin:/usr/bin:/bin HOME=/root PYTHONPATH=/src "$@"; }
rc=0
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
