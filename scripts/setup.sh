#!/usr/bin/env bash
# Installs everything mmcore needs on Debian 12 (as root) and builds it into ./.venv.
#   bash scripts/setup.sh            # runtime: codecs, compiler, venv, mmcore (+ pyarrow for jobs)
#   bash scripts/setup.sh test       # + test and lint tools (Pillow, imagehash, ruff, mypy, ...), pyspark + Java 17,
#                                    #   ray, and DALI with mmcore's DALI plugin
#   bash scripts/setup.sh bench      # + competitors for bench/ (OpenCV, pyvips, simplejpeg, DALI, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"

apt_packages=(g++ make pkg-config git ccache clang-format
  libjpeg62-turbo-dev libpng-dev libwebp-dev libavif-dev python3-dev python3-venv)
# The Spark tests (pyspark 4) need a Java 17 runtime.
if [ "$extras" = test ]; then apt_packages+=(openjdk-17-jre-headless); fi
# bench/: PyTurboJPEG (the raw-decode ceilings) loads libturbojpeg.so.0 from the system.
if [ "$extras" = bench ]; then apt_packages+=(libturbojpeg0); fi
missing=()
for p in "${apt_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
spec=".[jobs]"
case "$extras" in
  test) spec=".[jobs,test,lint,spark,ray,dali]" ;;
  bench) spec=".[jobs,test,bench,dali]" ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [test|bench]" >&2; exit 2 ;;
esac
echo "setup: building mmcore into .venv ($spec)"
if [[ "$spec" == *dali* ]]; then
  # The DALI plugin is compiled against the DALI the build imports: install the pinned DALI and
  # the build backend first, then build without isolation so that CMake sees them. Without isolation
  # every sdist among the extras builds in .venv too: pdqhash 0.2.8 (PyPI has no wheel of it) needs
  # Cython, setuptools, wheel and numpy there (a pip wheel cache from an earlier install hides this).
  # DALI's operator headers include CUDA's: the nvidia-cuda-runtime / -crt / -cccl wheels bring them
  # where there is no CUDA toolkit (the plugin's CPU operators link no CUDA library).
  .venv/bin/python -m pip install -q "scikit-build-core>=0.10" "pybind11>=2.13" "nvidia-dali-cuda130==2.4.0" \
    "nvidia-cuda-runtime>=13,<14" "nvidia-cuda-crt>=13,<14" "nvidia-cuda-cccl>=13,<14" cython setuptools wheel "numpy>=2"
  .venv/bin/python -m pip install -q --no-build-isolation "$spec"
else
  .venv/bin/python -m pip install -q "$spec"
fi
(cd / && "$OLDPWD/.venv/bin/python" -c "import mmcore; i = mmcore.build_info(); print('setup: mmcore', i['version'], 'backend', i['backend'], 'cuda_compiled', i['cuda_compiled'], 'dali_plugin', i['dali_plugin'])")
