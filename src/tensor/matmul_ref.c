/* src/tensor/matmul_ref.c — scalar reference twins of the matmul kernels
 * (matmul_kern.h) and ct__matmul_ref (ops.h).
 *
 * These are the definitions: plain loops, one element at a time, written for
 * obviousness, not speed. The x86 kernels in matmul_x86.c must agree with
 * them to float rounding (integer block dots exactly). ct__matmul_ref decodes
 * weights with its own per-element decoder (not quant.c), so the tests can
 * check three independent paths against each other.
 * Left out: threading, blocking, any allocation beyond none. */
#include <math.h>
#include <string.h>
#include "core/internal.h"
#include "tensor/matmul_kern.h"
#include "tensor/nf4_matmul.h"
#include "tensor/quant.h"

/* ---- element decoder --------------------------------------------------- */
static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/* NF4 (bitsandbytes 4-bit, src/tensor/nf4_matmul.h): W->q4 describes the
 * whole stored matrix, W->data points at the byte holding row 0 of this view
 * (q4->packed for the matrix itself, further in for a row view such as
 * GPT-2's q/k/v rows of c_attn), so element (r, j) is element
 * e0 + r * cols + j of q4's flattening, e0 = 2 * (data - q4->packed).
 * Its scale: absmax[b], or map[q[b]] * nested[b / 256] + offset (two f32
 * roundings, ct__q4_double_dequant), b = e / 64. */
static int64_t nf4_e0(const ct_mat *W) { return 2 * (int64_t)((const uint8_t *)W->data - W->q4->packed); }
static float nf4_scale(const ct_nf4_mat *q, int64_t b) {
    float am;
    if (q->absmax) return q->absmax[b];
    ct__q4_double_dequant(q->qabsmax + b, 1, q->nested_absmax + b / CT_NF4_NESTED_BLOCK, q->nested_map, q->offset, &am);
    return am;
}
static float nf4_elem(const ct_mat *W, int r, int j) {
    const ct_nf4_mat *q = W->q4;
    const int64_t e = nf4_e0(W) + (int64_t)r * W->cols + j;
    const uint8_t by = q->packed[e >> 1];
    const int c = (e & 1) ? (by & 15) : (by >> 4);
    return (q->type == CT_Q4_FP4 ? ct__fp4_map : ct__nf4_map)[c] * nf4_scale(q, e / CT_NF4_BLOCK);
}

static void nf4_range_f32(const ct_mat *W, int r, int k0, int n, float *out) {
    const ct_nf4_mat *q = W->q4;
    const int64_t e = nf4_e0(W) + (int64_t)r * W->cols + k0;
    const float *tab = q->type == CT_Q4_FP4 ? ct__fp4_map : ct__nf4_map;
    int i = 0;
    if (q->type == CT_Q4_NF4 && e % CT_NF4_BLOCK == 0) { /* whole blocks, 64 scales at a time */
        enum { NB = 64 };
        float am[NB];
        const int64_t b0 = e / CT_NF4_BLOCK;
        for (int nfull = n / CT_NF4_BLOCK, b = 0; b < nfull; b += NB) {
            const int k = nfull - b < NB ? nfull - b : NB;
            if (q->absmax) memcpy(am, q->absmax + b0 + b, sizeof(float) * (size_t)k);
            else
                for (int j = 0; j < k; j++) am[j] = nf4_scale(q, b0 + b + j);
            ct__nf4_dequant_row(q->packed + (e + (int64_t)b * CT_NF4_BLOCK) / 2, am, out + (size_t)b * CT_NF4_BLOCK,
                                (int64_t)k * CT_NF4_BLOCK); /* AVX-512, same bits as the scalar loop */
        }
        i = n / CT_NF4_BLOCK * CT_NF4_BLOCK;
    }
    while (i < n) {
        const int64_t b = (e + i) / CT_NF4_BLOCK;
        const int end = (b + 1) * CT_NF4_BLOCK - e < n ? (int)((b + 1) * CT_NF4_BLOCK - e) : n;
        const float am = nf4_scale(q, b);
        for (; i < end; i++) {
            const uint8_t by = q->packed[(e + i) >> 1];
            out[i] = tab[((e + i) & 1) ? (by & 15) : (by >> 4)] * am;
        }
    }
}

/* W[r, j] as f32, straight from the stored bytes. */
static float elem(const ct_mat *W, int r, int j) {
    if (W->dtype == CT_DT_NF4) return nf4_elem(W, r, j);
    const uint8_t *row = (const uint8_t *)W->data + (size_t)r * W->row_bytes;
    const uint8_t *b;
    int i = j % 32, q;
    switch (W->dtype) {
    case CT_DT_F32: { float f; memcpy(&f, row + 4 * (size_t)j, 4); return f; }
    case CT_DT_F16: return ct__f16_to_f32(rd16(row + 2 * (size_t)j));
    case CT_DT_BF16: return ct__bf16_to_f32(rd16(row + 2 * (size_t)j));
    case CT_DT_Q8_0:
        b = row + (size_t)(j / 32) * 34;
        return ct__f16_to_f32(rd16(b)) * (float)(int8_t)b[2 + i];
    case CT_DT_Q4_0:
        b = row + (size_t)(j / 32) * 18;
        q = i < 16 ? (b[2 + i] & 15) : (b[2 + i - 16] >> 4);
        return ct__f16_to_f32(rd16(b)) * (float)(q - 8);
    case CT_DT_Q4_1:
        b = row + (size_t)(j / 32) * 20;
        q = i < 16 ? (b[4 + i] & 15) : (b[4 + i - 16] >> 4);
        return ct__f16_to_f32(rd16(b)) * (float)q + ct__f16_to_f32(rd16(b + 2));
    default: return NAN;
    }
}

/* y (T, rows) = x (T, cols) @ W^T + bias: float accumulation in column order
 * (NF4: double, the contract of the fused NF4 kernels' references). */
void ct__matmul_ref(float *y, const float *x, const ct_mat *W, const float *bias, int T) {
    if (W->dtype == CT_DT_NF4) {
        for (int t = 0; t < T; t++)
            for (int r = 0; r < W->rows; r++) {
                double s = 0.0;
                for (int j = 0; j < W->cols; j++) s += (double)nf4_elem(W, r, j) * x[(size_t)t * W->cols + j];
                y[(size_t)t * W->rows + r] = (float)s + (bias ? bias[r] : 0.0f);
            }
        return;
    }
    for (int t = 0; t < T; t++)
        for (int r = 0; r < W->rows; r++) {
            float s = 0.0f;
            for (int j = 0; j < W->cols; j++) s += elem(W, r, j) * x[(size_t)t * W->cols + j];
            y[(size_t)t * W->rows + r] = s + (bias ? bias[r] : 0.0f);
        }
}

/* ---- kernel twins ------------------------------------------------------ */
float ct__quant_block_q8_ref(const float *v, int8_t *q, int *sum) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(v[j]));
    float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    *sum = 0;
    for (int j = 0; j < 32; j++) {
        q[j] = (int8_t)(int)nearbyintf(v[j] * id); /* nearest-even, as cvtps2dq */
        *sum += q[j];
    }
    return d;
}

void ct__quantize_x_q8_ref(const float *x, ct_dtype wt, void *out, int n) {
    int nb = n / 32;
    float *D = ct__xq8_d(out, nb), *S = ct__xq8_s(out, nb);
    int8_t *Q = ct__xq8_q(out, nb);
    memset(Q, 0, 64 * (size_t)((nb + 1) / 2)); /* the gap after an unpaired block */
    for (int b = 0; b < nb; b++) {
        int8_t q[32];
        int sum;
        float d = ct__quant_block_q8_ref(x + 32 * (size_t)b, q, &sum);
        for (int j = 0; j < 32; j++) Q[ct__xq8_qpos(wt, b, j)] = q[j];
        D[ct__xq8_dpos(wt, nb, b)] = d;
        S[ct__xq8_dpos(wt, nb, b)] = d * (float)sum;
    }
}

void ct__dot_rows_f_ref(const ct_mat *W, int r0, int nr, const float *x, float *out) {
    for (int i = 0; i < nr; i++) {
        float s = 0.0f;
        for (int j = 0; j < W->cols; j++) s += elem(W, r0 + i, j) * x[j];
        out[i] = s;
    }
}

void ct__x_block_sums_ref(const float *x, int n, float *xs) {
    for (int b = 0; b < n / 32; b++) {
        float s = 0.0f;
        for (int j = 0; j < 32; j++) s += x[32 * (size_t)b + j];
        xs[b] = s;
    }
}

/* The definition: dequantize, then dot in column order (xs is not needed). */
void ct__dot_rows_qf_ref(const ct_mat *W, int r0, int nr, int nt, const float *x, const float *xs, float *out) {
    (void)xs;
    for (int t = 0; t < nt; t++) ct__dot_rows_f_ref(W, r0, nr, x + (size_t)t * W->cols, out + (size_t)t * nr);
}

/* Per block: an exact integer dot of the stored codes with x's codes, scaled
 * once: Q8_0 dw*dx*sum(w*q); Q4_0 dw*dx*sum((n-8)*q); Q4_1 dw*dx*sum(n*q) + m*s. */
void ct__dot_rows_q_ref(const ct_mat *W, int r0, int nr, const void *xq, float *out) {
    const ct_dtype wt = W->dtype;
    const int nb = W->cols / 32;
    const float *D = ct__xq8_d(xq, nb), *S = ct__xq8_s(xq, nb);
    const int8_t *Q = ct__xq8_q(xq, nb);
    const size_t bb = ct_dtype_block_bytes(wt);
    for (int i = 0; i < nr; i++) {
        const uint8_t *row = (const uint8_t *)W->data + (size_t)(r0 + i) * W->row_bytes;
        float s = 0.0f;
        for (int b = 0; b < nb; b++) {
            const uint8_t *blk = row + (size_t)b * bb, *qs = blk + (wt == CT_DT_Q4_1 ? 4 : 2);
            float dx = D[ct__xq8_dpos(wt, nb, b)], sx = S[ct__xq8_dpos(wt, nb, b)];
            int isum = 0;
            for (int j = 0; j < 32; j++) {
                int w = wt == CT_DT_Q8_0 ? (int8_t)qs[j] : j < 16 ? (qs[j] & 15) : (qs[j - 16] >> 4);
                if (wt == CT_DT_Q4_0) w -= 8;
                isum += w * Q[ct__xq8_qpos(wt, b, j)];
            }
            s += ct__f16_to_f32(rd16(blk)) * dx * (float)isum;
            if (wt == CT_DT_Q4_1) s += ct__f16_to_f32(rd16(blk + 2)) * sx;
        }
        out[i] = s;
    }
}

/* Uses quant.c's ct__dequant_row: the decoder the rest of the library uses. */
void ct__dequant_range_ref(const ct_mat *W, int r, int k0, int n, float *out) {
    if (W->dtype == CT_DT_NF4) { nf4_range_f32(W, r, k0, n, out); return; }
    const uint8_t *row = (const uint8_t *)W->data + (size_t)r * W->row_bytes;
    size_t off;
    switch (W->dtype) {
    case CT_DT_F32: off = 4 * (size_t)k0; break;
    case CT_DT_F16: case CT_DT_BF16: off = 2 * (size_t)k0; break;
    default: off = (size_t)(k0 / 32) * ct_dtype_block_bytes(W->dtype); break;
    }
    ct__dequant_row(W->dtype, row + off, out, n);
}

void ct__gemm_tile_ref(int mr, int nc, int kc, const float *A, int lda, const float *P,
                       float *C, int ldc, const float *bias, int accumulate) {
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nc; j++) {
            float s = 0.0f;
            for (int k = 0; k < kc; k++) s += A[(size_t)i * lda + k] * P[(size_t)k * CT_MM_NR + j];
            float *c = &C[(size_t)i * ldc + j];
            *c = accumulate ? *c + s : s + (bias ? bias[j] : 0.0f);
        }
}
