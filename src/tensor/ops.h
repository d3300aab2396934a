/* src/tensor/ops.h — thread pool and the compute kernels the forward pass uses.
 *
 * Matrices are read in their stored dtype (F32, F16, BF16, Q8_0, Q4_0, Q4_1):
 * decoding is bound by memory bandwidth, so weights are never widened to F32
 * in memory; each kernel dequantizes a block at a time in registers.
 * Every vectorized kernel (AVX-512 / AVX2) has a scalar `_ref` twin that the
 * tests compare it with. */
#ifndef CT_TENSOR_OPS_H
#define CT_TENSOR_OPS_H
#include <stddef.h>
#include <stdint.h>
#include "ctune/dtype.h"
#include "ctune/status.h"

/* ---- thread pool ------------------------------------------------------- */
typedef struct ct_pool ct_pool;
/* n_threads <= 0: number of online CPUs. Workers spin briefly then sleep. */
ct_status ct__pool_create(int n_threads, ct_pool **out);
void ct__pool_free(ct_pool *p);
int ct__pool_size(const ct_pool *p);
/* Run fn(ctx, ith, nth) once for each ith in [0, nth), nth = pool size, on
 * the pool's threads and the caller (which thread runs which ith is not
 * fixed: an idle thread takes the next one); returns when all are done.
 * p may be NULL (runs fn(ctx, 0, 1)). Not reentrant: never from a task. */
typedef void (*ct_task_fn)(void *ctx, int ith, int nth);
void ct__pool_run(ct_pool *p, ct_task_fn fn, void *ctx);
/* Scratch owned by the pool for task index ith (call it only from the task
 * ith, or while no run is in progress): at least `bytes`, 64-byte aligned,
 * grown (old contents dropped) only when a larger size is asked. p == NULL
 * gives a buffer private to the calling thread. NULL when out of memory. */
void *ct__pool_scratch(ct_pool *p, int ith, size_t bytes);

/* ---- weight matrix ----------------------------------------------------- */
struct ct_nf4_mat; /* src/tensor/nf4_matmul.h */
typedef struct {
    ct_dtype dtype;   /* F32, F16, BF16, Q8_0, Q4_0, Q4_1 */
    int rows;         /* out features */
    int cols;         /* in features (multiple of 32 for Q types) */
    const void *data; /* row-major, rows * row_bytes */
    size_t row_bytes;
    uint8_t act_q8;   /* Q8_0/Q4_0/Q4_1: ct__matmul may quantize x to 8 bits
                         (llama.cpp's way: faster, not exact); 0 (what a
                         zeroed ct_mat has): x stays f32, results match an
                         f32 product of the dequantized matrix */
    const struct ct_nf4_mat *q4; /* CT_DT_NF4: codes, scales and type (data = q4->packed,
                                    row_bytes 0: a row may start mid-byte); else NULL */
} ct_mat;

/* Dequantize row r of W into out (cols,). */
void ct__mat_row_f32(const ct_mat *W, int r, float *out);

/* y (T, rows) = x (T, cols) @ W^T (+ bias (rows,) if non-NULL).
 * Threads split the output columns; for small T each W row is dequantized in
 * registers and dotted with x in f32, for larger T W is dequantized a tile at
 * a time and reused across the T rows. With W->act_q8 set, Q types may run on
 * x quantized to 8 bits instead. Allocates nothing (uses ct__matmul_scratch). */
void ct__matmul(float *y, const float *x, const ct_mat *W, const float *bias, int T, ct_pool *pool);
/* The same for n <= 4 matrices that share x (q/k/v, gate/up): y_i = x @ W_i^T
 * (+ biases[i] if biases and it are non-NULL). When all W_i have the same
 * dtype, cols and act_q8, x is prepared (quantized) once and all run in one
 * dispatch of the pool; otherwise one ct__matmul each. Same results as n
 * ct__matmul calls. */
void ct__matmul_n(int n, float *const *ys, const float *x, const ct_mat *const *Ws, const float *const *biases, int T,
                  ct_pool *pool);
/* Scalar reference of the same (single-threaded). */
void ct__matmul_ref(float *y, const float *x, const ct_mat *W, const float *bias, int T);
/* Per-thread scratch floats ct__matmul needs for a given W and pool; the pool
 * owns its scratch, so callers only need this for planning. */
size_t ct__matmul_scratch(const ct_mat *W, int T);

#endif
