/* src/tensor/nf4_matmul.h — fused dequantize + matmul with a frozen NF4
 * (or FP4) base W (out, in) in bitsandbytes' layout (src/tensor/nf4.h,
 * docs/qlora.md "Fused kernels"): the two products QLoRA needs,
 *   forward         y  (M, out) = x  (M, out->in) W^T  (+ beta * y)
 *   input gradient  dx (M, in)  = dy (M, out)     W    (+ beta * dx)
 * with no weight gradient (the base is frozen). W is dequantized a packed
 * panel at a time (at most KC x NC weights per thread, in pool scratch) and
 * fed to a register-blocked 8 x 32 micro-kernel; it never exists in f32 in
 * full. Compute: f32 FMA, or (bf16 != 0) inputs rounded to bf16 after
 * dequantization and vdpbf16ps with f32 sums (the accuracy of
 * ct__sgemm_bf16 on the dequantized W).
 *
 * Threads of pool split the output into whole tiles; every element is the
 * same chain of operations whatever the split, so results are bit-identical
 * for any pool size (NULL included). Nothing allocates but pool scratch.
 * Leaves out: a weight gradient, row strides (x, y, dy, dx are contiguous),
 * blocksizes other than 64 (AVX2 without AVX-512: 4 x 16 tiles, src/tensor/nf4_matmul.c). */
#ifndef CT_TENSOR_NF4_MATMUL_H
#define CT_TENSOR_NF4_MATMUL_H
#include <stdint.h>
#include "ctune/status.h"
#include "tensor/nf4.h"
#include "tensor/ops.h"

/* A 4-bit matrix as bitsandbytes / Hugging Face store it (blocksize 64 over
 * the row-major flattening, so a row may start mid-block unless in % 64 == 0;
 * any shape works, in % 64 == 0 takes the vector paths). Not owned. */
typedef struct ct_nf4_mat {
    int rows, cols;              /* out, in */
    const uint8_t *packed;       /* ((rows*cols + 1) / 2,) element 2k in the high nibble */
    const float *absmax;         /* (nb,) f32 block scales; NULL with double quantization: */
    const uint8_t *qabsmax;      /*   (nb,) 8-bit codes (weight.absmax) */
    const float *nested_absmax;  /*   (ceil(nb / 256),) */
    const float *nested_map;     /*   (256,) weight.nested_quant_map (ct__dynamic_map_signed) */
    float offset;                /*   nested_offset: absmax = map[q] * nested + offset */
    ct_q4_type type;             /* CT_Q4_NF4 (0, what a zeroed struct has) or CT_Q4_FP4 */
} ct_nf4_mat;

/* y (M, W->rows) = x (M, W->cols) W^T + beta * y (beta == 0: y not read).
 * bf16: 0 f32 products, 1 bf16 inputs (see above). CT_ERR_ARG for a
 * malformed W (missing arrays, non-positive shape) or M < 0. */
ct_status ct__nf4_matmul_xwt(float *y, const float *x, const ct_nf4_mat *W, int M, float beta, int bf16,
                             ct_pool *pool);
/* dx (M, W->cols) = dy (M, W->rows) W + beta * dx (beta 1: accumulate). */
ct_status ct__nf4_matmul_dyw(float *dx, const float *dy, const ct_nf4_mat *W, int M, float beta, int bf16,
                             ct_pool *pool);

/* Scalar references: W dequantized whole by the reference dequantizers
 * (ct__q4_double_dequant, ct__dequantize_4bit_ref), a triple loop in double;
 * bf16 != 0 rounds x and W to bf16 first (nearest even, denormals to zero)
 * the way the kernels do. Allocate W (CT_ERR_NOMEM), single-threaded. */
ct_status ct__nf4_matmul_xwt_ref(float *y, const float *x, const ct_nf4_mat *W, int M, float beta, int bf16);
ct_status ct__nf4_matmul_dyw_ref(float *dx, const float *dy, const ct_nf4_mat *W, int M, float beta, int bf16);

/* The same two products for any frozen matrix the trainer keeps in a
 * compact type, read in place (the B-packing step decodes it):
 * W->dtype F32, F16, BF16, Q8_0 (row-major rows of row_bytes) or NF4
 * (W->q4). Same blocking, chains and thread determinism as above; the
 * decoded values are those of ct__mat_row_f32 (NF4: ct__nf4_mat_dequant_ref).
 * CT_ERR_UNSUPPORTED for Q4_0/Q4_1 and integer types. */
ct_status ct__qmm_xwt(float *y, const float *x, const ct_mat *W, int M, float beta, int bf16, ct_pool *pool);
ct_status ct__qmm_dyw(float *dx, const float *dy, const ct_mat *W, int M, float beta, int bf16, ct_pool *pool);
ct_status ct__qmm_xwt_ref(float *y, const float *x, const ct_mat *W, int M, float beta, int bf16);
ct_status ct__qmm_dyw_ref(float *dx, const float *dy, const ct_mat *W, int M, float beta, int bf16);
/* A ct_mat view (dtype CT_DT_NF4, q4 = W) of a 4-bit matrix. */
ct_mat ct__nf4_as_mat(const ct_nf4_mat *W);

/* W dequantized into out (rows * cols,) f32 with the reference code (for
 * tests, benches and merging; allocates nothing). */
void ct__nf4_mat_dequant_ref(const ct_nf4_mat *W, float *out);

#endif
