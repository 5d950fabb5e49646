#!/usr/bin/env bash
# The GPU host's one prepared run: checks and benches what mmcore has on the GPU, in about a
# minute, from binaries that bench/gpu_check_prepare.sh built on a dev machine (the host needs
# only its NVIDIA driver: no compiler, codec libraries or Python packages).
#
#   bash bench/gpu_check.sh OUTDIR        # from the repository root, with .gpucheck/carry present
#
# Writes flat files into OUTDIR (at most 8, what the device tool brings back): machine.txt
# (nvidia-smi, CPU flags incl. AVX-512), gpu_check.log (GPU hashes vs the CPU oracle, bench; its
# markdown report is the same text), python.log (mmcore.gpu built for the host's python3, its gpu
# tests and bench/bench_gpu.py), kernels.log (int8 top-k, Hamming kNN and resize vs the CPU, bench), nvjpeg.log (GPU JPEG
# decode vs the CPU decoder, hashes from it, decode bench), sanitizer.log
# (compute-sanitizer memcheck, racecheck and synccheck on a small set, when the host has it),
# extra.log (the executables of .gpucheck/carry/bin/extra/, e.g. other families' variant tests),
# summary.txt (each step's exit, then a digest: the logs' target, verdict and variant lines). Expected: about six minutes (the search bench generates and copies 8 GB; the
# Python module compiles its bindings; bench_quant.py runs when faiss-cpu was carried); run it with
# timeout_s 600.
# Exit status: the first non-zero of the checks (mmcore_gpu_check: 1 mismatch, 2 usage,
# 3 no CUDA device, 4 CUDA error; 124 a timeout).
set -uo pipefail
OUTDIR=${1:?usage: bash bench/gpu_check.sh OUTDIR}
cd "$(dirname "$0")/.."
CARRY=.gpucheck/carry
mkdir -p "$OUTDIR"
if [[ ! -x "$CARRY/bin/mmcore_gpu_check" ]]; then
  echo "missing $CARRY/bin/mmcore_gpu_check: run bench/gpu_check_prepare.sh on a dev machine and carry $CARRY" |
    tee "$OUTDIR/summary.txt"
  exit 2
fi
export LD_LIBRARY_PATH="$PWD/$CARRY/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

{
  echo "date: $(date -u +%FT%TZ)"
  echo "kernel: $(uname -srm)"
  echo "os: $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
  echo "cpu: $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2-) x $(nproc)"
  echo "cpu simd flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512[a-z_0-9]*|popcnt|bmi2|fma)$' | tr '\n' ' ')"
  if grep -m1 '^flags' /proc/cpuinfo | grep -qw avx512_vpopcntdq; then echo "AVX-512 VPOPCNTDQ: yes"; else echo "AVX-512 VPOPCNTDQ: no"; fi
  echo "cpu flags: $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2-)"
  echo
  nvidia-smi 2>&1
  nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,clocks.mem,power.limit,driver_version --format=csv 2>&1
  echo
  echo "ldd mmcore_gpu_check (LD_LIBRARY_PATH=$CARRY/lib):"
  ldd "$CARRY/bin/mmcore_gpu_check" 2>&1
} >"$OUTDIR/machine.txt" 2>&1
grep -E '^(cpu|AVX-512)' "$OUTDIR/machine.txt"

rc=0
run() {  # name seconds command...: tees into OUTDIR/<name>.log, records the first failure
  local name=$1 secs=$2
  shift 2
  echo "== $name: $*" | tee -a "$OUTDIR/$name.log"
  local t0=$SECONDS
  timeout "$secs" "$@" 2>&1 | tee -a "$OUTDIR/$name.log"
  local r=${PIPESTATUS[0]}
  # The seconds each step took: what the next run's device time is planned from.
  echo "== $name: exit $r ($((SECONDS - t0)) s of $secs)" | tee -a "$OUTDIR/$name.log" "$OUTDIR/summary.txt"
  if [[ $r -ne 0 && $rc -eq 0 ]]; then rc=$r; fi
}

run gpu_check 150 "$CARRY/bin/mmcore_gpu_check" --images "$CARRY/images" --report /tmp/mmcore_gpu_check.md \
  --bench-count 4000 --repeat 10

# int8 top-k, Hamming kNN and resize against the CPU, then the 10M-row and resize benches (its
# report is its stdout).
if [[ -x "$CARRY/bin/mmcore_kernel_check" ]]; then
  run kernels 200 "$CARRY/bin/mmcore_kernel_check" --report /tmp/mmcore_kernel_check.md --rows 10000000 --repeat 5
  # The same checks and int8 bench on the dp4a tile kernel instead of the tensor-core one (what a
  # device before sm_80 runs), for the comparison; no join or resize bench.
  run kernels 120 env MMCORE_GPU_NO_MMA=1 "$CARRY/bin/mmcore_kernel_check" --report /tmp/mmcore_kernel_check_dp4a.md \
    --rows 10000000 --repeat 3 --join-rows 0 --resize-count 0
  # The pipelined tensor-core variants (MMCORE_GPU_MMA_PIPELINE=1 / 2: next chunks' loads issued
  # before the current ones' multiplies), checked and timed against the default above.
  for v in 1 2; do
    run kernels 120 env MMCORE_GPU_MMA_PIPELINE=$v "$CARRY/bin/mmcore_kernel_check" \
      --report /tmp/mmcore_kernel_check_pipe$v.md --rows 10000000 --repeat 3 --join-rows 0 --resize-count 0
  done
fi

# nvJPEG decode (hardware engine + default backend) against the CPU decoder, on the images and on
# damaged JPEGs, then hashes from its pixels and a decode bench (its report goes to nvjpeg.log).
if [[ -x "$CARRY/bin/mmcore_nvjpeg_check" ]]; then
  run nvjpeg 120 "$CARRY/bin/mmcore_nvjpeg_check" --images "$CARRY/images" --images "$CARRY/images_corrupt" \
    --bench-count 2000 --repeat 5
fi

# mmcore.gpu from Python: the module built here for this host's python3 (needs g++, numpy, cupy,
# pytest), tests/test_gpu.py against the CPU, bench/bench_gpu.py (with DALI's rows when DALI was
# carried), and bench/bench_quant.py on this host's CPU when faiss-cpu was carried.
if [[ -f "$CARRY/static/libmmcore_cuda.a" ]]; then
  # DALI, when the three calls before this one carried bench/gpu_dali_prepare.sh's parts (the machine
  # kept them): unpacked for bench_gpu.py's DALI rows (issue 6's decode + resize bar).
  if [[ -d .gpudali || -d /tmp/mmcore_dali_parts ]]; then
    dali_out=$(bash bench/gpu_dali.sh unpack /tmp/mmcore_dali 2>&1)
    if [[ $? -eq 0 && -d "$dali_out" ]]; then
      export MMCORE_DALI_SITE="$dali_out"
      echo "DALI unpacked into $dali_out for bench_gpu.py" | tee -a "$OUTDIR/summary.txt"
    else
      echo "DALI not used: $dali_out" | tee -a "$OUTDIR/summary.txt"
    fi
  fi
  run python 420 bash bench/gpu_python.sh python3
fi

# Out-of-bounds accesses, shared-memory races and barrier misuse, on a small set (the tools slow
# kernels down by orders of magnitude). Reports of these runs are not kept, only their logs.
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda-*/bin/compute-sanitizer \
  /opt/nvidia/*/compute-sanitizer 2>/dev/null | head -1)
if [[ -n "$SAN" ]]; then
  for tool in memcheck racecheck synccheck; do
    run sanitizer 30 "$SAN" --tool "$tool" --error-exitcode 9 --print-limit 20 \
      "$CARRY/bin/mmcore_gpu_check" --report /tmp/mmcore_sanitizer.md --no-huge --random 4 --max-images 24 \
      --bench-count 0
    if [[ -x "$CARRY/bin/mmcore_kernel_check" ]]; then
      run sanitizer 60 "$SAN" --tool "$tool" --error-exitcode 9 --print-limit 20 \
        "$CARRY/bin/mmcore_kernel_check" --report /tmp/mmcore_sanitizer_kernels.md --rows 0 --resize-count 0 --join-rows 0 --shrink 100
      # the filtered Hamming kNN (its plan needs 262,144 rows or more; the run above has 10,000)
      run sanitizer 60 "$SAN" --tool "$tool" --error-exitcode 9 --print-limit 20 \
        "$CARRY/bin/mmcore_kernel_check" --report /tmp/mmcore_sanitizer_knn.md --knn-only
    fi
  done
else
  echo "compute-sanitizer not found: skipped" | tee -a "$OUTDIR/sanitizer.log" "$OUTDIR/summary.txt"
fi
for exe in "$CARRY"/bin/extra/*; do
  [[ -f "$exe" && -x "$exe" ]] || continue
  run extra 90 "$exe"
done
# The lines a reader needs first, gathered at the end of summary.txt (the device brings back at most
# 8 files): issue 6's target lines, the checks' verdicts, the variants the run decides between.
{
  echo
  echo "## digest (lines from the logs)"
  for f in gpu_check kernels python nvjpeg; do
    [[ -f "$OUTDIR/$f.log" ]] || continue
    echo "### $f.log"
    grep -E 'issue 6 target|\*\*correctness|mismatch|equal to|same answers|DIFFERENT|^\| PDQ|^\| (pdq|aHash|pHash|all 5)|^\| top-10|^\| distances only|^\| tensor cores|^\| CUDA cores|DALI|MIH|mih|^\| GPU pdq|per phase|^\| [0-8] \| ' "$OUTDIR/$f.log" |
      head -150
  done
} >>"$OUTDIR/summary.txt" 2>/dev/null
echo "overall exit: $rc" | tee -a "$OUTDIR/summary.txt"
exit "$rc"
