/* src/tensor/matmul_kern.h — the kernels behind ct__matmul (ops.h), shared by
 * matmul.c (driver: threading, tiling, dispatch), matmul_x86.c (AVX2/FMA/F16C
 * kernels, with a scalar build when those are missing) and matmul_ref.c
 * (scalar `_ref` twins, the definitions the tests hold the fast ones to).
 * Internal to src/tensor and to the matmul tests/benchmark. */
#ifndef CT_TENSOR_MATMUL_KERN_H
#define CT_TENSOR_MATMUL_KERN_H
#include <stddef.h>
#include <stdint.h>
#include "tensor/ops.h"

/* An activation row quantized to 8 bits, one block per 32 elements:
 * x[j] ~= d * q[j], d = amax/127; s = d * sum(q) (used for the constant
 * parts of Q4_0 (-8) and Q4_1 (+m)). 40 bytes. */
typedef struct {
    float d;
    float s;
    int8_t q[32];
} ct__xq8;

/* GEMM micro-kernel tile: MR rows of x by NR output columns. */
#define CT_MM_MR 6
#define CT_MM_NR 16
/* K block: the packed W panel (KC x NR floats) stays in L1. Multiple of 32. */
#define CT_MM_KC 256
/* W rows dequantized and packed per step (multiple of NR): KC x NC floats in L2. */
#define CT_MM_NC 128

/* ---- fast kernels (matmul_x86.c) --------------------------------------- */
/* x (n,) -> n/32 blocks; n % 32 == 0. Rounding as ct__quantize_x_q8_ref. */
void ct__quantize_x_q8(const float *x, ct__xq8 *out, int n);
/* out[i] = W[r0+i, :] . x for i < nr; F32/F16/BF16 weights, x (cols,) f32. */
void ct__dot_rows_f(const ct_mat *W, int r0, int nr, const float *x, float *out);
/* Same for Q8_0/Q4_0/Q4_1 weights against a quantized x (cols/32 blocks). */
void ct__dot_rows_q(const ct_mat *W, int r0, int nr, const ct__xq8 *xq, float *out);
/* out (n,) = W[r, k0 : k0+n] as f32; for Q types k0 and n multiples of 32. */
void ct__dequant_range(const ct_mat *W, int r, int k0, int n, float *out);
/* Pack nr <= NR dequantized rows src (nr, ld) into a panel dst (kc, NR), the
 * missing rows zero: dst[k*NR + j] = src[j*ld + k]. */
void ct__pack_panel(const float *src, int ld, int nr, int kc, float *dst);
/* C (mr, ldc) [+]= A (mr, lda) over kc . P (kc, NR) for mr <= MR, writing only
 * the first nc <= NR columns of C; accumulate = 0 overwrites C (with bias
 * (nc,) added if non-NULL), 1 adds to it. */
void ct__gemm_tile(int mr, int nc, int kc, const float *A, int lda, const float *P,
                   float *C, int ldc, const float *bias, int accumulate);
/* Which ISA the fast kernels were built for ("avx2+fma+f16c" or "scalar"). */
const char *ct__matmul_isa(void);

/* ---- scalar twins (matmul_ref.c) --------------------------------------- */
void ct__quantize_x_q8_ref(const float *x, ct__xq8 *out, int n);
void ct__dot_rows_f_ref(const ct_mat *W, int r0, int nr, const float *x, float *out);
void ct__dot_rows_q_ref(const ct_mat *W, int r0, int nr, const ct__xq8 *xq, float *out);
void ct__dequant_range_ref(const ct_mat *W, int r, int k0, int n, float *out);
void ct__gemm_tile_ref(int mr, int nc, int kc, const float *A, int lda, const float *P,
                       float *C, int ldc, const float *bias, int accumulate);

/* ---- driver knobs (matmul.c), for tests and the benchmark --------------- */
enum {
    CT_MM_AUTO = 0,   /* pick by dtype and T (default) */
    CT_MM_GEMV_Q8,    /* row dots; Q types against 8-bit-quantized x */
    CT_MM_GEMV_F32,   /* row dots; Q types dequantized to f32 in L1 first */
    CT_MM_GEMM        /* dequantize tiles + register-blocked micro-kernel */
};
/* Force a path for every later ct__matmul call (process-wide, not thread-safe;
 * tests and benchmarks only). Returns the previous setting. */
int ct__matmul_force_path(int path);
/* Largest T that still takes the row-dot path in AUTO mode. */
#define CT_MM_GEMV_MAX_T 3

/* C (M, N) = A (M, K) @ B (N, K)^T with OpenBLAS when built with it (threads
 * as OpenBLAS decides). Returns 0, or -1 when there is no BLAS. */
int ct__sgemm_nt_blas(int M, int N, int K, const float *A, const float *B, float *C);

#endif
