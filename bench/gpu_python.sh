#!/usr/bin/env bash
# The Python side of the GPU check, on the GPU host (bench/gpu_check.sh runs it): builds mmcore's
# _core module for the host's own python3 from what bench/gpu_check_prepare.sh carried (the kernel
# libraries prebuilt as static archives, the codec libraries, pybind11's headers), so that only the
# two binding files compile there (a minute at most); then runs tests/test_gpu.py's gpu-marked tests
# (mmcore.gpu against the CPU, bit for bit), with DALI (MMCORE_DALI_SITE, from bench/gpu_dali.sh)
# tests/test_pipeline.py's gpu-marked test (the plugin's GPU mmcore_hash against the CPU pipeline),
# and bench/bench_gpu.py (DALI's rows with DALI); then, when a faiss-cpu wheel was
# carried (.gpucheck/carry/wheels/), bench/bench_quant.py on the host's CPU (issue 5's figures on an
# AVX-512 VNNI Xeon, which no dev machine has), 1M x 768 generated vectors.
#
#   bash bench/gpu_python.sh [PY]      # from the repository root; PY defaults to python3
#   (MMCORE_GPU_CARRY: another carry with static/, pybind11/ and lib/; MMCORE_PY_BUILD_ONLY=1: build only)
#
# Needs on the host: g++ (nvcc's host compiler), python3 with numpy, cupy and pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
PY=$(command -v "$PY") || { echo "no python: $1"; exit 2; }
[[ "$PY" == /* ]] || PY="$PWD/$PY"
CARRY=${MMCORE_GPU_CARRY:-.gpucheck/carry}
PKG=${MMCORE_PY_BUILD:-/tmp/mmcore_py}
rm -rf "$PKG" && mkdir -p "$PKG"
cp -r mmcore "$PKG/mmcore"
rm -f "$PKG"/mmcore/_core*.so
inc=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
ext=$("$PY" -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
echo "python: $("$PY" -V 2>&1) ($inc, $ext); g++: $(g++ -dumpfullversion 2>&1)"
flags=(-O2 -std=c++17 -fPIC -fvisibility=hidden -DMMCORE_HAVE_CUDA=1 -I"$inc" -I"$CARRY/pybind11/include"
       -Icpp/include -Icpp/src)
t0=$(date +%s)
g++ "${flags[@]}" -c cpp/bindings/_core.cpp -o "$PKG/_core.o" &
p1=$!
g++ "${flags[@]}" -c cpp/bindings/gpu.cpp -o "$PKG/gpu.o" &
p2=$!
ok=1
wait "$p1" || ok=0
wait "$p2" || ok=0
[[ $ok == 1 ]] || { echo "compiling the bindings failed"; exit 2; }
libs=("$CARRY/static/libmmcore_cuda.a" "$CARRY/static/libmmcore_cpu.a" "$CARRY/static/libcudart_static.a")
for so in libjpeg.so.62 libpng16.so.16 libwebp.so.7 libwebpdemux.so.2 libz.so.1; do libs+=("$CARRY/lib/$so"); done
g++ -shared -o "$PKG/mmcore/_core$ext" "$PKG/_core.o" "$PKG/gpu.o" "${libs[@]}" -ldl -lpthread -lrt \
  -Wl,-rpath,"$PWD/$CARRY/lib" || { echo "linking the module failed"; exit 2; }
echo "built $PKG/mmcore/_core$ext in $(( $(date +%s) - t0 )) s"
# MMCORE_PY_BUILD_ONLY=1: stop here (bench/gpu_faiss.sh builds the module this way, then benches).
[[ "${MMCORE_PY_BUILD_ONLY:-0}" == 1 ]] && exit 0
export PYTHONPATH="$PKG" LD_LIBRARY_PATH="$PWD/$CARRY/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# The carried images stand in for the corpus: jpeg/ (and PNGs, which the GPU decode refuses) and corrupt/.
CORP=/tmp/mmcore_corpus
rm -rf "$CORP" && mkdir -p "$CORP"
ln -s "$PWD/$CARRY/images" "$CORP/jpeg"
ln -s "$PWD/$CARRY/images_corrupt" "$CORP/corrupt"
export MMCORE_CORPUS="$CORP"
(cd /tmp && "$PY" -c "import mmcore, mmcore.gpu as g; i = mmcore.build_info(); print('mmcore', i['version'], 'backend', i['backend'], 'cuda', i['cuda_available'], i.get('cuda_note')); print('gpu path:', g.unavailable_reason() or 'available')")
rc=0
(cd tests && "$PY" -m pytest -q -p no:cacheprovider -o addopts="" -m "gpu or not gpu" test_gpu.py) || rc=$?
# MMCORE_DALI_SITE (gpu_check.sh sets it when DALI was carried): DALI's site directory and the
# libraries it and mmcore's plugin load, for the DALI GPU pipeline test and bench_gpu.py's DALI rows.
dpath="" dlib=""
if [[ -n "${MMCORE_DALI_SITE:-}" ]]; then
  dpath=":$MMCORE_DALI_SITE"
  for d in nvidia/dali nvidia/cu13/lib nvidia/nvjpeg2k/lib nvidia/nvtiff/lib nvidia/libnvcomp/lib64 nvidia/nvimgcodec; do
    [[ -d "$MMCORE_DALI_SITE/$d" ]] && dlib="$dlib:$MMCORE_DALI_SITE/$d"
  done
  if cp "$MMCORE_DALI_SITE"/mmcore_dali_plugin/{libmmcore_dali.so,dali_plugin.json} "$PKG/mmcore/"; then
    (cd tests && PYTHONPATH="$PYTHONPATH$dpath" LD_LIBRARY_PATH="$LD_LIBRARY_PATH$dlib" \
      MMCORE_REQUIRE_DALI_PLUGIN=1 "$PY" -m pytest -q -p no:cacheprovider -o addopts="" -m gpu test_pipeline.py) ||
      rc=$?
  fi
fi
if [[ -f bench/bench_gpu.py ]]; then
  (cd /tmp && PYTHONPATH="$PYTHONPATH$dpath" LD_LIBRARY_PATH="$LD_LIBRARY_PATH$dlib" \
    "$PY" "$OLDPWD/bench/bench_gpu.py" --images "$OLDPWD/$CARRY/images") || { r=$?; [[ $rc -eq 0 ]] && rc=$r; }
fi
if [[ "${MMCORE_SKIP_QUANT:-0}" != 1 ]] && compgen -G "$CARRY/wheels/faiss_cpu-*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/mmcore_site "$CARRY"/wheels/faiss_cpu-*.whl &&
    (cd /tmp && PYTHONPATH="$PKG:/tmp/mmcore_site" timeout 200 "$PY" "$OLDPWD/bench/bench_quant.py" \
      --sections generated --repeat 2 --out /tmp/mmcore_bench_quant) || echo "bench_quant: exit $?"
fi
exit $rc
