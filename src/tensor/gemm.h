/* src/tensor/gemm.h — dense matrix products for training (forward, input
 * gradient and weight gradient of every linear layer).
 *
 * Row-major BLAS-style sgemm:  C = alpha * op(A) * op(B) + beta * C
 *   op(A) is (M, K): A stored (M, K) with row stride lda, or, with ta, stored
 *                    (K, M) and read transposed;
 *   op(B) is (K, N): B stored (K, N) with ldb, or, with tb, stored (N, K).
 * beta == 0 ignores C's old contents (NaN there does not leak).
 * The trainer's three uses of a Linear y = x W^T (W: (out, in)):
 *   forward   y  = x  W^T   ta=0 tb=1  M=rows N=out K=in
 *   input     dx += dy W    ta=0 tb=0  M=rows N=in  K=out  beta=1
 *   weight    dW += dy^T x  ta=1 tb=0  M=out  N=in  K=rows beta=1
 * Threads of pool split C into blocks (deterministic: each element of C is
 * computed by one thread in a fixed order, so results do not depend on the
 * thread count or timing). Nothing allocates (pool scratch). */
#ifndef CT_TENSOR_GEMM_H
#define CT_TENSOR_GEMM_H
#include "tensor/ops.h"

void ct__sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc, ct_pool *pool);
/* The same product with the inputs rounded to bf16 (round to nearest even)
 * as they are packed, products and sums in f32. Same threading and
 * determinism as ct__sgemm; accuracy is that of bf16 inputs (relative 2^-8
 * per product), not of f32. For now it runs the f32 micro-kernel on the
 * rounded values (same speed as ct__sgemm); a vdpbf16ps kernel (AVX-512
 * BF16, twice the FMA rate) would keep these semantics. */
void ct__sgemm_bf16(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                    int ldb, float beta, float *C, int ldc, ct_pool *pool);
/* Scalar reference (triple loop, double accumulation), single-threaded. */
void ct__sgemm_ref(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                   int ldb, float beta, float *C, int ldc);

#endif
