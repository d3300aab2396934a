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
/* The same product with the inputs rounded to bf16 (round to nearest even,
 * like vcvtne2ps2bf16) as they are packed, products exact and sums in f32
 * (AVX-512 BF16 vdpbf16ps, ~2x the f32 FMA rate; src/tensor/gemm_bf16.c).
 * Same contract, threading and determinism as ct__sgemm (bit-identical for
 * any pool size); accuracy is that of bf16 inputs (relative 2^-8 per
 * product), not of f32. bf16 denormals count as zero. */
void ct__sgemm_bf16(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                    int ldb, float beta, float *C, int ldc, ct_pool *pool);

/* Pre-packed B for ct__sgemm_bf16: a matrix used as op(B) by many calls
 * (a frozen LoRA base: forward x W^T is op(B) = W^T, tb=1; input gradient
 * dy W is op(B) = W, tb=0, a second packing) is rounded and packed once.
 *   bytes = ct__gemm_bf16_packed_bytes(K, N): K rounded up to even times N
 *           rounded up to 32, times 2 (0 for K or N <= 0);
 *   ct__gemm_bf16_pack_b packs op(B), (K, N), from B (tb, ldb as in
 *           ct__sgemm) into dst (caller-owned, `bytes` long, 64-byte
 *           aligned), threads of pool splitting the columns. The layout is
 *           internal to gemm_bf16.c: pass dst only to
 *           ct__sgemm_bf16_packed with the same K and N. Re-pack after B
 *           changes (full fine-tuning: once per optimizer step);
 *   ct__sgemm_bf16_packed is ct__sgemm_bf16 with op(B) taken from Bp:
 *           bit-identical to ct__sgemm_bf16(ta, tb, ...) on the B that was
 *           packed, for any pool. Nothing allocates but pool scratch. */
size_t ct__gemm_bf16_packed_bytes(int K, int N);
void ct__gemm_bf16_pack_b(int tb, int K, int N, const float *B, int ldb, void *dst, ct_pool *pool);
void ct__sgemm_bf16_packed(int ta, int M, int N, int K, float alpha, const float *A, int lda, const void *Bp,
                           float beta, float *C, int ldc, ct_pool *pool);

/* Scalar reference (triple loop, double accumulation), single-threaded. */
void ct__sgemm_ref(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                   int ldb, float beta, float *C, int ldc);
/* Test hook: the size of the shared packed-B window ct__sgemm_bf16 uses
 * when threads split M (default 8 MiB); returns the old one. Results do not
 * depend on it. Not thread-safe: set it while no product runs. */
size_t ct__gemm_bf16_set_window(size_t bytes);

/* For gemm.c and gemm_bf16.c (AVX-512 builds only): dst[k * ds + r] =
 * src[r * ld + k] for r < 8, k < 16 (an 8 x 16 block of 32-bit words). */
void ct__transpose8x16(const float *src, int ld, float *dst, int ds);

#endif
