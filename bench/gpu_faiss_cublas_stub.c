/* A stand-in for cuBLAS 12 (libcublas.so.12) for the faiss-gpu benches: bench/gpu_faiss_prepare.sh
   builds it and says why it suffices. Only the 8 entry points libfaiss imports exist: handles and
   settings succeed, and the GEMMs write zeros into C (finite distances, so that the one-list
   coarse search of the SQ8 index still picks list 0). Not for anything else. */
#include <stddef.h>
#include <stdlib.h>

typedef struct {
  void* stream;
} stub_handle;

/* From the CUDA 12 runtime carried beside this library. */
int cudaMemset2DAsync(void* p, size_t pitch, int value, size_t width, size_t height, void* stream);

/* Bytes per element: CUDA_R_16F (2) and CUDA_R_16BF (14) are 2, the rest faiss uses 4. */
static size_t elem(int type) {
  return type == 2 || type == 14 ? 2 : 4;
}

/* C is column-major, m rows (contiguous) by n columns, ldc elements apart. */
static int zero(stub_handle* h, void* c, int type, int m, int n, int ldc) {
  if (m <= 0 || n <= 0) return 0;
  return cudaMemset2DAsync(c, (size_t)ldc * elem(type), 0, (size_t)m * elem(type), (size_t)n, h->stream) ? 14 : 0;
}

int cublasCreate_v2(stub_handle** h) {
  *h = calloc(1, sizeof(stub_handle));
  return *h != NULL ? 0 : 3;
}

int cublasDestroy_v2(stub_handle* h) {
  free(h);
  return 0;
}

int cublasSetStream_v2(stub_handle* h, void* s) {
  h->stream = s;
  return 0;
}

int cublasSetMathMode(stub_handle* h, int m) {
  (void)h;
  (void)m;
  return 0;
}

int cublasGetMathMode(stub_handle* h, int* m) {
  (void)h;
  *m = 0;
  return 0;
}

int cublasSgemmEx(stub_handle* h, int ta, int tb, int m, int n, int k, const float* alpha, const void* a, int at,
                  int lda, const void* b, int bt, int ldb, const float* beta, void* c, int ct, int ldc) {
  (void)ta, (void)tb, (void)k, (void)alpha, (void)a, (void)at, (void)lda, (void)b, (void)bt, (void)ldb, (void)beta;
  return zero(h, c, ct, m, n, ldc);
}

int cublasGemmEx(stub_handle* h, int ta, int tb, int m, int n, int k, const void* alpha, const void* a, int at,
                 int lda, const void* b, int bt, int ldb, const void* beta, void* c, int ct, int ldc, int compute,
                 int algo) {
  (void)ta, (void)tb, (void)k, (void)alpha, (void)a, (void)at, (void)lda, (void)b, (void)bt, (void)ldb, (void)beta;
  (void)compute, (void)algo;
  return zero(h, c, ct, m, n, ldc);
}

int cublasGemmStridedBatchedEx(stub_handle* h, int ta, int tb, int m, int n, int k, const void* alpha,
                               const void* a, int at, int lda, long long sa, const void* b, int bt, int ldb,
                               long long sb, const void* beta, void* c, int ct, int ldc, long long sc, int batches,
                               int compute, int algo) {
  (void)ta, (void)tb, (void)k, (void)alpha, (void)a, (void)at, (void)lda, (void)sa, (void)b, (void)bt, (void)ldb;
  (void)sb, (void)beta, (void)compute, (void)algo;
  for (int i = 0; i < batches; ++i) {
    const int r = zero(h, (char*)c + (size_t)i * (size_t)sc * elem(ct), ct, m, n, ldc);
    if (r != 0) return r;
  }
  return 0;
}
