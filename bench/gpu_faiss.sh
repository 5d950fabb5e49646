#!/usr/bin/env bash
# Issue 6's faiss-gpu comparisons on a GPU host, from what bench/gpu_faiss_prepare.sh carried
# (.gpufaiss/carry: faiss-gpu-cu12, the CUDA 12 runtime, cuBLAS stand-ins, mmcore's kernels):
# builds mmcore's module for the host's python3 (bench/gpu_python.sh, build only), installs the
# faiss wheel into /tmp, and runs bench/bench_gpu_faiss.py, its report into OUTDIR/faiss.log.
#
#   bash bench/gpu_faiss.sh OUTDIR       # from the repository root; about 2 minutes
set -uo pipefail
OUTDIR=${1:?usage: bash bench/gpu_faiss.sh OUTDIR}
cd "$(dirname "$0")/.."
CARRY=.gpufaiss/carry
mkdir -p "$OUTDIR"
[[ -d "$CARRY/wheels" ]] || { echo "missing $CARRY: run bench/gpu_faiss_prepare.sh on a dev machine" | tee "$OUTDIR/faiss.log"; exit 2; }
{
  echo "date: $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  MMCORE_GPU_CARRY="$CARRY" MMCORE_PY_BUILD_ONLY=1 bash bench/gpu_python.sh python3 || exit 2
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/faiss_site "$CARRY"/wheels/faiss_gpu_cu12-*.whl || exit 2
  export LD_LIBRARY_PATH="$PWD/$CARRY/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  (cd /tmp && PYTHONPATH=/tmp/mmcore_py:/tmp/faiss_site PYTHONUNBUFFERED=1 timeout 240 \
    python3 "$OLDPWD/bench/bench_gpu_faiss.py")
  echo "exit $?"
} 2>&1 | tee "$OUTDIR/faiss.log"
exit "${PIPESTATUS[0]}"
