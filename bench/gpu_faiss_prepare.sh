#!/usr/bin/env bash
# Prepares bench/gpu_faiss.sh's run on a GPU host (issue 6's faiss-gpu comparisons), here, on a dev
# machine with network access to the package index. The GPU host has no faiss-gpu and no network,
# and a device run carries at most 64 MiB, so this carries (into .gpufaiss/carry, git-ignored):
#   wheels/faiss_gpu_cu12-*.whl     faiss-gpu for CPython 3.12 (48 MB: its libfaiss and OpenBLAS)
#   lib/libcudart.so.12             the CUDA 12 runtime it links (from nvidia-cuda-runtime-cu12)
#   lib/libcublas.so.12, lib/libcublasLt.so.12
#                                   stand-ins for cuBLAS (the real one is ~600 MB): the 8 entry points
#                                   libfaiss imports (bench/gpu_faiss_cublas_stub.c), versioned as
#                                   the real library versions them. Handles and settings succeed; the
#                                   GEMMs write zeros into C. The benched indexes never need a GEMM:
#                                   GpuIndexBinaryFlat has its own kernels, and the SQ8 index is an
#                                   IVF with ONE list, whose coarse search can only pick list 0.
#                                   bench_gpu_faiss.py checks every answer against mmcore's / exact.
#   static/, pybind11/, lib/*       mmcore's kernels and codec libraries (from gpu_check_prepare.sh's
#                                   carry, run that first) for bench/gpu_python.sh to build the module
#
#   bash bench/gpu_check_prepare.sh && bash bench/gpu_faiss_prepare.sh
# then, on the GPU host: run(command='bash bench/gpu_faiss.sh "$OUT"', carry=[".gpufaiss/carry"])
# (not together with .gpucheck/carry: the two are over the 64 MiB a run carries).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=.gpucheck/carry
OUTC=.gpufaiss/carry
PY=${PY:-$(command -v .venv/bin/python || command -v python3)}
[[ -f "$SRC/static/libmmcore_cuda.a" ]] || { echo "run bench/gpu_check_prepare.sh first" >&2; exit 2; }
rm -rf "$OUTC" && mkdir -p "$OUTC/wheels" "$OUTC/lib" .gpufaiss/tmp
PLAT=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 "${PLAT[@]}" -d .gpufaiss/tmp \
  "faiss-gpu-cu12==1.14.1.post1" "nvidia-cuda-runtime-cu12==12.9.79"
cp .gpufaiss/tmp/faiss_gpu_cu12-*.whl "$OUTC/wheels/"
(cd .gpufaiss/tmp && rm -rf rt && mkdir rt && cd rt && unzip -q ../nvidia_cuda_runtime_cu12-*.whl)
cp "$(find .gpufaiss/tmp/rt -name 'libcudart.so.12' | head -1)" "$OUTC/lib/"

# The cuBLAS entry points libfaiss imports (checked against this list: a new one is an error).
(cd .gpufaiss/tmp && rm -rf fw && mkdir fw && cd fw && unzip -q ../../../"$OUTC"/wheels/faiss_gpu_cu12-*.whl)
want=$(readelf --dyn-syms -W .gpufaiss/tmp/fw/faiss_gpu_cu12.libs/libfaiss-*.so | awk '$7 == "UND" {print $8}' |
  grep -i '^cublas' | sed 's/@.*//' | sort -u | tr '\n' ' ')
known="cublasCreate_v2 cublasDestroy_v2 cublasGemmEx cublasGemmStridedBatchedEx cublasGetMathMode cublasSetMathMode cublasSetStream_v2 cublasSgemmEx "
[[ "$want" == "$known" ]] || { echo "libfaiss imports other cuBLAS functions: $want" >&2; exit 2; }
printf 'libcublas.so.12 { global: cublas*; local: *; };\n' >.gpufaiss/tmp/cublas.map
gcc -shared -fPIC -O1 -o "$OUTC/lib/libcublas.so.12" -Wl,-soname,libcublas.so.12 \
  -Wl,--version-script=.gpufaiss/tmp/cublas.map bench/gpu_faiss_cublas_stub.c "$OUTC/lib/libcudart.so.12" \
  -Wl,-rpath,'$ORIGIN'
printf 'void stub_cublaslt_unused(void) {}\n' >.gpufaiss/tmp/cublaslt_stub.c
gcc -shared -fPIC -O1 -o "$OUTC/lib/libcublasLt.so.12" -Wl,-soname,libcublasLt.so.12 .gpufaiss/tmp/cublaslt_stub.c

# mmcore's pieces for gpu_python.sh (the codec libraries without nvJPEG: not used here).
cp -r "$SRC/static" "$SRC/pybind11" "$OUTC/"
for so in libjpeg.so.62 libpng16.so.16 libwebp.so.7 libwebpdemux.so.2 libz.so.1; do cp "$SRC/lib/$so" "$OUTC/lib/"; done
rm -rf .gpufaiss/tmp

# Here: libfaiss loads against the stand-ins (the loader resolves every versioned cuBLAS and
# CUDA runtime symbol; RTLD_NOW). The Python extension is CPython 3.12's, loaded on the host.
chk=$(mktemp -d)
(cd "$chk" && unzip -q "$OLDPWD/$OUTC"/wheels/faiss_gpu_cu12-*.whl 'faiss_gpu_cu12.libs/*')
LD_LIBRARY_PATH="$PWD/$OUTC/lib:$chk/faiss_gpu_cu12.libs" "$PY" -c "
import ctypes, glob, sys
lib = glob.glob(sys.argv[1] + '/faiss_gpu_cu12.libs/libfaiss-*.so')[0]
ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL | 2)  # RTLD_NOW
print('libfaiss loads against the stand-ins')" "$chk"
rm -rf "$chk"
echo "size of $OUTC: $(du -sh "$OUTC" | cut -f1) (with the working tree, under 64 MiB)"
echo "device command: bash bench/gpu_faiss.sh \"\$OUT\"   (carry [\".gpufaiss/carry\"], timeout_s 300)"
