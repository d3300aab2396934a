/* src/tensor/matmul.c — y (T, rows) = x (T, cols) @ W^T (+ bias): the driver.
 *
 * Picks a path by T and dtype, splits the output columns (W rows) over the
 * pool's threads, and hands the inner loops to the kernels of matmul_x86.c:
 * - small T (decode; ct__matmul_path has the thresholds): row dots. Each
 *   thread streams its W rows once in the stored dtype, dequantized in
 *   registers and dotted with x in f32; with W->act_q8, Q8_0/Q4_0/Q4_1 run
 *   against x quantized once per call to 8 bits instead (faster, not exact).
 * - W->act_q8, Q4_0/Q4_1 and 4 <= T < 32 (with AVX-512 VNNI: every T >= 4,
 *   and Q8_0 too): integer tiles (matmul_q4.c), x quantized to 8 bits in
 *   K-blocked order by the threads, then 8 rows of x per 1-2 W rows.
 * - larger T (prompt processing): each thread takes 6-row groups of W,
 *   dequantizes them (512 columns at a time) into an L1 buffer and runs the
 *   6x16 FMA micro-kernel against x^T panels (16 rows of x, packed once per K
 *   block), accumulating C^T for up to 384 rows in its scratch, then y.
 * Scratch comes from ct__pool_scratch, sized before the threads start, so a
 * call allocates only the first time a bigger matrix is seen. If that growth
 * fails, the call falls back to the slow single-threaded reference.
 * - NF4 (bitsandbytes 4-bit, W->q4): for T <= 4 row dots on rows
 *   dequantized 8 at a time; beyond, the fused dequant+GEMM of
 *   src/tensor/nf4_matmul.c (f32 products), bias added after. A row view
 *   whose first element is not on a 64-block boundary (or, with double
 *   quantization, not on a 256-block group of scales) cannot be handed to it
 *   as a ct_nf4_mat; such views run the tile path above, rows dequantized
 *   by ct__dequant_range.
 *
 * Left out: threading along T or K (rows are enough for every model shape we
 * run), OpenBLAS inside ct__matmul (on this machine its sgemm only matches the
 * f32 tiles, see docs/kernels.md; bench/bench_matmul.c links it as the
 * ceiling, the library does not: its idle threads spin and steal a core). */
#include <string.h>
#include "core/internal.h"
#include "tensor/matmul_kern.h"
#include "tensor/nf4_matmul.h"


static int g_force_path = CT_MM_AUTO;
int ct__matmul_force_path(int path) {
    int old = g_force_path;
    g_force_path = path;
    return old;
}

static int is_q(ct_dtype t) { return t == CT_DT_Q8_0 || t == CT_DT_Q4_0 || t == CT_DT_Q4_1; }

void ct__mat_row_f32(const ct_mat *W, int r, float *out) { ct__dequant_range(W, r, 0, W->cols, out); }

/* ---- work split -------------------------------------------------------- */
/* Rows [*r0, *r1) of thread ith: whole units of `unit` rows, balanced. */
static void split_rows(int rows, int unit, int ith, int nth, int *r0, int *r1) {
    int units = (rows + unit - 1) / unit;
    int u0 = (int)((long long)units * ith / nth), u1 = (int)((long long)units * (ith + 1) / nth);
    *r0 = u0 * unit < rows ? u0 * unit : rows;
    *r1 = u1 * unit < rows ? u1 * unit : rows;
}

typedef struct {
    float *y;              /* (T, rows) */
    const float *x;        /* (T, cols) */
    const ct_mat *W;
    const float *bias;     /* (rows,) or NULL */
    int T, path;
    const uint8_t *xq;     /* x quantized, GEMV_Q8 on Q types (T rows of xq_row bytes)
                              and GEMM_Q8 (K-blocked, see quant_q4t_task) */
    size_t xq_row;
    const float *xs;       /* GEMV_F32 on Q types: x's block sums (T, cols/32) */
    ct_pool *pool;
    size_t work_bytes;     /* per-thread scratch, already grown */
} job;

/* ---- decode: row dots -------------------------------------------------- */
#define GEMV_ROWS 8 /* rows per step: their dots for every t, bias, store */
#define GEMV_XT 4   /* rows of x per ct__dot_rows_qf call (its widest kernel) */

/* GEMV_F32: ct__dot_rows_f on x, or for Q types ct__dot_rows_qf on GEMV_XT
 * rows of x at a time (each W block dequantized once for them); GEMV_Q8 on a
 * Q type: ct__dot_rows_q on the quantized x (jb->xq). The GEMV_ROWS rows stay
 * in L1 across the T rows of x. */
static void gemv_task(void *ctx, int ith, int nth) {
    const job *jb = ctx;
    const ct_mat *W = jb->W;
    int r0, r1, rows = W->rows, cols = W->cols;
    split_rows(rows, 4, ith, nth, &r0, &r1);
    float out[GEMV_XT * GEMV_ROWS]; /* (nt, n) */
    for (int r = r0; r < r1; r += GEMV_ROWS) {
        int n = r1 - r < GEMV_ROWS ? r1 - r : GEMV_ROWS;
        for (int t0 = 0; t0 < jb->T; t0 += GEMV_XT) {
            int nt = jb->T - t0 < GEMV_XT ? jb->T - t0 : GEMV_XT;
            const float *xt = jb->x + (size_t)t0 * cols;
            if (jb->xs) {
                ct__dot_rows_qf(W, r, n, nt, xt, jb->xs + (size_t)t0 * (cols / 32), out);
            } else {
                for (int t = 0; t < nt; t++) {
                    if (jb->xq) ct__dot_rows_q(W, r, n, jb->xq + (size_t)(t0 + t) * jb->xq_row, out + t * n);
                    else ct__dot_rows_f(W, r, n, xt + (size_t)t * cols, out + t * n);
                }
            }
            for (int t = 0; t < nt; t++) {
                float *yt = jb->y + (size_t)(t0 + t) * rows + r;
                for (int i = 0; i < n; i++) yt[i] = out[t * n + i] + (jb->bias ? jb->bias[r + i] : 0.0f);
            }
        }
    }
}

/* ---- prompt: W tiles against packed x panels -------------------------- */
/* Tiles are computed transposed, C^T (W rows, T): the micro-kernel's "A" side
 * is MR rows of W, dequantized row-major into an L1 buffer (or read in place
 * for F32), its "B" panels are x^T, NR t's at a time, packed once per K block.
 * So W is never transposed; each thread accumulates its C^T (rows, tp) over
 * the K blocks and writes it into y (T, rows) once at the end. */
static int pad_t(int T) { return (T + CT_MM_NR - 1) / CT_MM_NR * CT_MM_NR; }

#define GEMM_RCH 384 /* W rows per chunk (multiple of MR): bounds C^T to RCH x tp */

static void gemm_task(void *ctx, int ith, int nth) {
    const job *jb = ctx;
    const ct_mat *W = jb->W;
    const int rows = W->rows, cols = W->cols, T = jb->T, tp = pad_t(T), npan = tp / CT_MM_NR;
    int r0, r1;
    split_rows(rows, CT_MM_MR, ith, nth, &r0, &r1);
    float *xt = ct__pool_scratch(jb->pool, ith, jb->work_bytes); /* (npan, KC, NR) */
    float *wb = xt + (size_t)tp * CT_MM_KC;                     /* (MR, KC) */
    float *ct = wb + (size_t)CT_MM_MR * CT_MM_KC;               /* (RCH, tp) */
    for (int c0 = r0; c0 < r1; c0 += GEMM_RCH) {
        const int c1 = r1 - c0 < GEMM_RCH ? r1 : c0 + GEMM_RCH;
        for (int k0 = 0; k0 < cols; k0 += CT_MM_KC) {
            const int kc = cols - k0 < CT_MM_KC ? cols - k0 : CT_MM_KC;
            for (int p = 0; p < npan; p++) { /* x^T panels, once per chunk and K block */
                int nt = T - p * CT_MM_NR < CT_MM_NR ? T - p * CT_MM_NR : CT_MM_NR;
                ct__pack_panel(jb->x + (size_t)p * CT_MM_NR * cols + k0, cols, nt, kc, xt + (size_t)p * kc * CT_MM_NR);
            }
            for (int g = c0; g < c1; g += CT_MM_MR) {
                int mr = c1 - g < CT_MM_MR ? c1 - g : CT_MM_MR, lda = kc;
                const float *A = wb;
                if (W->dtype == CT_DT_F32) {
                    A = (const float *)((const uint8_t *)W->data + (size_t)g * W->row_bytes) + k0;
                    lda = (int)(W->row_bytes / sizeof(float));
                } else {
                    for (int i = 0; i < mr; i++) ct__dequant_range(W, g + i, k0, kc, wb + (size_t)i * kc);
                }
                for (int p = 0; p < npan; p++) {
                    int nt = T - p * CT_MM_NR < CT_MM_NR ? T - p * CT_MM_NR : CT_MM_NR;
                    ct__gemm_tile(mr, nt, kc, A, lda, xt + (size_t)p * kc * CT_MM_NR,
                                  ct + (size_t)(g - c0) * tp + p * CT_MM_NR, tp, NULL, k0 > 0);
                }
            }
        }
        for (int t = 0; t < T; t++) {
            float *yt = jb->y + (size_t)t * rows;
            for (int r = c0; r < c1; r++) yt[r] = ct[(size_t)(r - c0) * tp + t] + (jb->bias ? jb->bias[r] : 0.0f);
        }
    }
}

/* ---- prompt, Q4 weights: integer tiles ------------------------------- */
/* Pairs of blocks per K step: the whole row up to 24 pairs (1536 columns),
 * else equal steps of at most 24. Each step costs a tile's reduction and a
 * pass over y; steps of 8 pairs ran 10-20% slower (576 columns: 8 + 1;
 * 1536 and 4096 columns), 32 and 48 slightly slower than 24 (x's 8 rows
 * then spill out of L1). */
static int q4_kp(int cols) {
    int npair = (cols / 32 + 1) / 2;
    if (npair <= 24) return npair > 0 ? npair : 1;
    int nk = (npair + 23) / 24;
    return (npair + nk - 1) / nk;
}
/* W rows per chunk: ~16 KB of W (rows x kp pairs) stay in L1 next to the
 * 8 rows of x; even, at least 8. */
static int q4_rc(const ct_mat *W, int kp) {
    int bb = W->dtype == CT_DT_Q8_0 ? 34 : W->dtype == CT_DT_Q4_1 ? 20 : 18;
    int rc = 16384 / (2 * bb * kp) / 2 * 2;
    return rc < 8 ? 8 : rc;
}

/* x quantized into K-blocked order, so that the 8 rows of a tile are one
 * contiguous 8 KB (rows at the full-row stride alias in L1 and thrash):
 * pair p of row t lives at (p / KP) * blk + t * KP*128 + (p % KP) * 128 with
 * blk = T * KP*128. A row is quantized into the thread's scratch first. */
static void quant_q4t_task(void *ctx, int ith, int nth) {
    const job *jb = ctx;
    int cols = jb->W->cols, npair = (cols / 32 + 1) / 2, t0 = (int)((long long)jb->T * ith / nth);
    int t1 = (int)((long long)jb->T * (ith + 1) / nth);
    const int KP = q4_kp(cols);
    const size_t kb = (size_t)KP * 128, blk = (size_t)jb->T * kb;
    uint8_t *row = ct__pool_scratch(jb->pool, ith, jb->work_bytes); /* (npair, 128) */
    for (int t = t0; t < t1; t++) {
        ct__quantize_x_q4t(jb->x + (size_t)t * cols, jb->W->dtype, row, cols);
        for (int p0 = 0; p0 < npair; p0 += KP) {
            int np = npair - p0 < KP ? npair - p0 : KP;
            memcpy((uint8_t *)jb->xq + (size_t)(p0 / KP) * blk + (size_t)t * kb, row + (size_t)p0 * 128, (size_t)np * 128);
        }
    }
}

static void gemm_q4_task(void *ctx, int ith, int nth) {
    const job *jb = ctx;
    const ct_mat *W = jb->W;
    const int rows = W->rows, T = jb->T, npair = (W->cols / 32 + 1) / 2;
    const int KP = q4_kp(W->cols);
    const size_t kb = (size_t)KP * 128, blk = (size_t)T * kb;
    int r0, r1;
    split_rows(rows, 4, ith, nth, &r0, &r1);
    const int rcn = q4_rc(W, KP);
    float out[16];
    for (int p0 = 0; p0 < npair; p0 += KP) {
        int np = npair - p0 < KP ? npair - p0 : KP;
        const uint8_t *xb = jb->xq + (size_t)(p0 / KP) * blk;
        for (int rc = r0; rc < r1; rc += rcn) {
            int re = r1 - rc < rcn ? r1 : rc + rcn;
            for (int t0 = 0; t0 < T; t0 += 8) {
                int tt = T - t0 < 8 ? T - t0 : 8;
                for (int r = rc; r < re;) {
                    int nr = re - r >= 2 ? 2 : 1; /* two rows at once */
                    if (nr == 2) ct__dot_q4_tile2(W, r, p0, np, xb + (size_t)t0 * kb, kb, tt, out);
                    else ct__dot_q4_tile(W, r, p0, np, xb + (size_t)t0 * kb, kb, tt, out);
                    for (int i = 0; i < nr; i++, r++) {
                        float *y = jb->y + (size_t)t0 * rows + r;
                        if (p0 == 0) {
                            float b = jb->bias ? jb->bias[r] : 0.0f;
                            for (int t = 0; t < tt; t++) y[(size_t)t * rows] = out[8 * i + t] + b;
                        } else {
                            for (int t = 0; t < tt; t++) y[(size_t)t * rows] += out[8 * i + t];
                        }
                    }
                }
            }
        }
    }
}

/* ---- prompt, VNNI: 8 interleaved W rows (CT_MM_R8_MIN_T <= T) -------- */
/* x quantized per row (ct__quantize_x_r8) by the threads; each thread takes
 * groups of 8 W rows, repacks a chunk of ~16 KB of them into its scratch,
 * then runs 8 rows of x at a time against every group of the chunk (the x
 * tile stays in L1 across the groups). Whole rows per step: no K split. */
static int use_r8(const ct_mat *W, int T) { return T >= CT_MM_R8_MIN_T && W->cols % 32 == 0; }
static int r8_groups(const ct_mat *W) {
    int g = 16384 / ((W->cols / 32) * CT_W8_BLK);
    return g < 1 ? 1 : g;
}
static void quant_r8_task(void *ctx, int ith, int nth) {
    const job *jb = ctx;
    int cols = jb->W->cols, t0 = (int)((long long)jb->T * ith / nth), t1 = (int)((long long)jb->T * (ith + 1) / nth);
    for (int t = t0; t < t1; t++)
        ct__quantize_x_r8(jb->x + (size_t)t * cols, jb->W->dtype, (uint8_t *)jb->xq + (size_t)t * jb->xq_row, cols);
}
static void gemm_r8_task(void *ctx, int ith, int nth) {
    const job *jb = ctx;
    const ct_mat *W = jb->W;
    const int rows = W->rows, T = jb->T, nb = W->cols / 32, G = r8_groups(W);
    const size_t gb = (size_t)nb * CT_W8_BLK;
    int r0, r1;
    split_rows(rows, 8, ith, nth, &r0, &r1);
    uint8_t *wp = ct__pool_scratch(jb->pool, ith, jb->work_bytes);
    float out[64];
    for (int rc = r0; rc < r1; rc += 8 * G) {
        int ng = (r1 - rc + 7) / 8 < G ? (r1 - rc + 7) / 8 : G;
        for (int g = 0; g < ng; g++) {
            int r = rc + 8 * g, nr = r1 - r < 8 ? r1 - r : 8;
            ct__repack_w8(W, r, nr, wp + g * gb);
        }
        /* the next chunk's W into L2 while this one computes: the repack
         * otherwise waits on DRAM (11% of a SmolLM2 prompt) */
        if (rc + 8 * G < r1) {
            int n1 = r1 - (rc + 8 * G) < 8 * G ? r1 - (rc + 8 * G) : 8 * G;
            const char *p = (const char *)W->data + (size_t)(rc + 8 * G) * W->row_bytes;
            for (size_t o = 0; o < (size_t)n1 * W->row_bytes; o += 64) __builtin_prefetch(p + o, 0, 2);
        }
        for (int t0 = 0; t0 < T; t0 += 8) {
            int tt = T - t0 < 8 ? T - t0 : 8;
            for (int g = 0; g < ng; g++) {
                int r = rc + 8 * g, nr = r1 - r < 8 ? r1 - r : 8;
                const uint8_t *xt = jb->xq + (size_t)t0 * jb->xq_row;
                float *y = jb->y + (size_t)t0 * rows + r;
                if (nr == 8) { /* straight into y */
                    ct__dot_r8_tile(wp + g * gb, nb, W->dtype, xt, jb->xq_row, tt, y, (size_t)rows);
                    if (jb->bias)
                        for (int t = 0; t < tt; t++)
                            for (int i = 0; i < 8; i++) y[(size_t)t * rows + i] += jb->bias[r + i];
                    continue;
                }
                ct__dot_r8_tile(wp + g * gb, nb, W->dtype, xt, jb->xq_row, tt, out, 8);
                for (int t = 0; t < tt; t++)
                    for (int i = 0; i < nr; i++) y[(size_t)t * rows + i] = out[8 * t + i] + (jb->bias ? jb->bias[r + i] : 0.0f);
            }
        }
    }
}

/* ---- entry points ------------------------------------------------------ */
/* Measured crossovers (docs/kernels.md): row dots win while T is small
 * (W read once, no packing; the Q row dots dequantize each block once for 4
 * rows of x); with act_q8, the 8-bit row dots only win at T = 1 and the Q4
 * integer tiles from T = 4 to 31. */
int ct__matmul_path(const ct_mat *W, int T) {
    if (W->dtype == CT_DT_NF4) return CT_MM_GEMM; /* when the fused kernel cannot take it (nf4_sub) */
    int q = is_q(W->dtype), q4 = ct__mm_q8t_dtype(W->dtype), p = g_force_path;
    if (p == CT_MM_AUTO) {
        if (q && W->act_q8 && T <= CT_MM_Q8_GEMV_MAX_T) p = CT_MM_GEMV_Q8;
        else if (q4 && W->act_q8 && T >= CT_MM_Q4_TILE_MIN_T && T <= CT_MM_Q4_TILE_MAX_T) p = CT_MM_GEMM_Q8;
        else p = T <= (q ? CT_MM_QF_GEMV_MAX_T : CT_MM_GEMV_MAX_T) ? CT_MM_GEMV_F32 : CT_MM_GEMM;
    }
    if (p == CT_MM_GEMM_Q8 && !q4) p = CT_MM_GEMM;
    if (p == CT_MM_GEMV_Q8 && !q) p = CT_MM_GEMV_F32; /* float weights: x stays f32 */
    return p;
}
/* Scratch bytes per thread for a path (slot 0 also holds the quantized x). */
static size_t work_bytes(const ct_mat *W, int path, int T, int nth) {
    if (path == CT_MM_GEMM) {
        size_t tp = (size_t)pad_t(T);
        return sizeof(float) * (tp * CT_MM_KC + (size_t)CT_MM_MR * CT_MM_KC + (size_t)GEMM_RCH * tp);
    }
    if (path == CT_MM_GEMM_Q8 && use_r8(W, T)) return (size_t)r8_groups(W) * (W->cols / 32) * CT_W8_BLK;
    if (path == CT_MM_GEMM_Q8) return ct__xq4t_bytes(W->cols / 32);
    return 0;
}
/* Bytes per row of x of what is computed from x before the tasks: x
 * quantized (the 8-bit paths), or its block sums (GEMV_F32 on Q types). */
static size_t xq_row_bytes(const ct_mat *W, int path, int T) {
    if (path == CT_MM_GEMM_Q8 && use_r8(W, T)) return (size_t)(W->cols / 32) * CT_XR8_BLK;
    /* GEMM_Q8: whole K blocks of q4_kp pairs, the last one padded */
    if (path == CT_MM_GEMM_Q8) {
        size_t kp = (size_t)q4_kp(W->cols);
        return ((size_t)(W->cols / 32 + 1) / 2 + kp - 1) / kp * kp * 128;
    }
    if (path == CT_MM_GEMV_F32) return is_q(W->dtype) ? sizeof(float) * (size_t)(W->cols / 32) : 0;
    return path == CT_MM_GEMV_Q8 ? ct__xq8_bytes(W->cols / 32) : 0; /* GEMV_Q8: Q types only */
}
static size_t xq_bytes(const ct_mat *W, int T, int path) { return xq_row_bytes(W, path, T) * (size_t)T; }

/* ---- NF4 ------------------------------------------------------------------ */
/* Per-thread scratch of the fused NF4 kernels (nf4_matmul.c: packed A and B
 * blocks and a tile, (MC + NC + 8) * KW 32-bit words, MC 128, NC 1536, KW 256). */
#define NF4_SCRATCH_FLOATS ((size_t)(128 + 1536 + 8) * 256)

/* The ct_nf4_mat of W's rows (a view of W->q4 shifted to the view's first
 * element). 0 when the view does not start on a block (or nested group)
 * boundary. */
static int nf4_sub(const ct_mat *W, ct_nf4_mat *sub) {
    const ct_nf4_mat *q = W->q4;
    const int64_t e0 = 2 * (int64_t)((const uint8_t *)W->data - q->packed);
    *sub = *q;
    sub->rows = W->rows;
    if (e0 == 0) return 1;
    const int64_t b0 = e0 / CT_NF4_BLOCK;
    if (e0 % CT_NF4_BLOCK || (!q->absmax && b0 % CT_NF4_NESTED_BLOCK)) return 0;
    sub->packed = q->packed + e0 / 2;
    if (q->absmax) sub->absmax = q->absmax + b0;
    else {
        sub->qabsmax = q->qabsmax + b0;
        sub->nested_absmax = q->nested_absmax + b0 / CT_NF4_NESTED_BLOCK;
    }
    return 1;
}

/* Decode (T <= NF4_GEMV_MAX_T): row dots. The fused kernel computes whole
 * 8-row tiles of x and dequantizes KC x NC panels, ~6x slower than a bf16
 * matrix at T = 1 (Llama-7B shapes). Here the 4-bit matrix is read once per
 * call: NF4 rows on the 64-block grid are decoded in registers and dotted
 * with the T rows of x (ct__nf4_dot_row, the row's scales decoded first);
 * other rows (FP4, cols % 64 != 0, unaligned views) are dequantized
 * NF4_GEMV_ROWS at a time into the thread's scratch (ct__mat_row_f32's
 * values) for the f32 row dots. Within f32 tolerance of the fused kernel,
 * not bit-identical to it. */
#define NF4_GEMV_MAX_T 4
#define NF4_GEMV_ROWS 8

static void nf4_gemv_task(void *ctx, int ith, int nth) {
    const job *jb = ctx;
    const ct_mat *W = jb->W;
    const int rows = W->rows, cols = W->cols;
    int r0, r1;
    split_rows(rows, NF4_GEMV_ROWS, ith, nth, &r0, &r1);
    float *wb = ct__pool_scratch(jb->pool, ith, jb->work_bytes); /* (NF4_GEMV_ROWS, cols) */
    ct_mat F = {.dtype = CT_DT_F32, .cols = cols, .data = wb, .row_bytes = sizeof(float) * (size_t)cols};
    float out[NF4_GEMV_ROWS];
    const ct_nf4_mat *q = W->q4;
    const int64_t e0 = 2 * (int64_t)((const uint8_t *)W->data - q->packed);
    if (q->type == CT_Q4_NF4 && cols % CT_NF4_BLOCK == 0 && e0 % CT_NF4_BLOCK == 0) {
        /* in registers: the row's scales into wb, then ct__nf4_dot_row */
        const int nbr = cols / CT_NF4_BLOCK;
        for (int r = r0; r < r1; r++) {
            const int64_t b0 = (e0 + (int64_t)r * cols) / CT_NF4_BLOCK;
            if (q->absmax) memcpy(wb, q->absmax + b0, sizeof(float) * (size_t)nbr);
            else
                for (int b = 0; b < nbr; b++)
                    ct__q4_double_dequant(q->qabsmax + b0 + b, 1, q->nested_absmax + (b0 + b) / CT_NF4_NESTED_BLOCK,
                                          q->nested_map, q->offset, wb + b);
            ct__nf4_dot_row(q->packed + (e0 + (int64_t)r * cols) / 2, wb, cols, jb->x, (size_t)cols, jb->T, out);
            for (int t = 0; t < jb->T; t++)
                jb->y[(size_t)t * rows + r] = out[t] + (jb->bias ? jb->bias[r] : 0.0f);
        }
        return;
    }
    for (int r = r0; r < r1; r += NF4_GEMV_ROWS) {
        const int n = r1 - r < NF4_GEMV_ROWS ? r1 - r : NF4_GEMV_ROWS;
        for (int i = 0; i < n; i++) ct__dequant_range(W, r + i, 0, cols, wb + (size_t)i * cols);
        F.rows = n;
        for (int t = 0; t < jb->T; t++) {
            ct__dot_rows_f(&F, 0, n, jb->x + (size_t)t * cols, out);
            float *yt = jb->y + (size_t)t * rows + r;
            for (int i = 0; i < n; i++) yt[i] = out[i] + (jb->bias ? jb->bias[r + i] : 0.0f);
        }
    }
}

/* 1 when done by the fused kernel or the row dots; 0: the caller runs the generic path. */
static int nf4_matmul(float *y, const float *x, const ct_mat *W, const float *bias, int T, ct_pool *pool) {
    if (T <= NF4_GEMV_MAX_T) {
        const size_t wbytes = sizeof(float) * NF4_GEMV_ROWS * (size_t)W->cols;
        int ok = 1;
        for (int i = 0; i < ct__pool_size(pool) && ok; i++) ok = ct__pool_scratch(pool, i, wbytes) != NULL;
        if (ok) {
            job jb = {y, x, W, bias, T, CT_MM_GEMV_F32, NULL, 0, NULL, pool, wbytes};
            ct__pool_run(pool, nf4_gemv_task, &jb);
            return 1;
        }
    }
    ct_nf4_mat sub;
    if (!nf4_sub(W, &sub)) return 0;
    ct_status s = ct__nf4_matmul_xwt(y, x, &sub, T, 0.0f, 0, pool);
    if (s != CT_OK) {
        ct__log(CT_LOG_WARN, "matmul: %s; using the slow reference", ct_errmsg());
        ct__matmul_ref(y, x, W, bias, T);
        return 1;
    }
    if (bias)
        for (int t = 0; t < T; t++)
            for (int r = 0; r < W->rows; r++) y[(size_t)t * W->rows + r] += bias[r];
    return 1;
}

size_t ct__matmul_scratch(const ct_mat *W, int T) {
    ct_nf4_mat sub;
    if (W->dtype == CT_DT_NF4 && T <= NF4_GEMV_MAX_T) return (size_t)NF4_GEMV_ROWS * (size_t)W->cols;
    if (W->dtype == CT_DT_NF4 && nf4_sub(W, &sub)) return NF4_SCRATCH_FLOATS;
    int path = ct__matmul_path(W, T);
    size_t b = work_bytes(W, path, T, 1) + xq_bytes(W, T, path);
    return (b + sizeof(float) - 1) / sizeof(float);
}

typedef struct {
    const job *jobs;
    int n;
    ct_task_fn fn;
} multi_job;
static void multi_task(void *ctx, int ith, int nth) {
    const multi_job *m = ctx;
    for (int i = 0; i < m->n; i++) m->fn((void *)&m->jobs[i], ith, nth);
}

/* Matrices that can share x's preparation (quantization, block sums) and
 * one dispatch: same dtype, cols, act_q8, hence the same path and layout. */
static int same_kind(const ct_mat *a, const ct_mat *b) {
    return a->dtype == b->dtype && a->cols == b->cols && a->act_q8 == b->act_q8;
}

enum { NMAX = 4 };

/* n <= NMAX matrices of the same kind through the paths above. */
static void matmul_same(int n, float *const *ys, const float *x, const ct_mat *const *Ws, const float *const *biases,
                        int T, ct_pool *pool) {
    const ct_mat *W = Ws[0];
    int path = ct__matmul_path(W, T), nth = ct__pool_size(pool);
    job jbs[NMAX];
    for (int i = 0; i < n; i++)
        jbs[i] = (job){ys[i], x, Ws[i], biases ? biases[i] : NULL, T, path, NULL, 0, NULL, pool, work_bytes(W, path, T, nth)};
    job jb = jbs[0];
    size_t xqb = xq_bytes(W, T, path);
    /* Grow every thread's scratch now, while no task runs. Slot 0 holds the
     * quantized x after its own work area. */
    for (int i = 0; i < nth; i++) {
        size_t need = jb.work_bytes + (i == 0 ? xqb : 0);
        if (need && !ct__pool_scratch(pool, i, need)) {
            ct__log(CT_LOG_WARN, "matmul: no memory for %zu bytes of scratch; using the slow reference", need);
            for (int k = 0; k < n; k++) ct__matmul_ref(ys[k], x, Ws[k], jbs[k].bias, T);
            return;
        }
    }
    if (xqb) {
        uint8_t *xq = (uint8_t *)ct__pool_scratch(pool, 0, jb.work_bytes + xqb) + jb.work_bytes;
        jb.xq_row = xq_row_bytes(W, path, T);
        if (path == CT_MM_GEMV_F32) { /* block sums, (T, cols/32) */
            float *xs = (float *)xq;
            for (int t = 0; t < T; t++) ct__x_block_sums(x + (size_t)t * W->cols, W->cols, xs + (size_t)t * (W->cols / 32));
            jb.xs = xs;
        } else if (path == CT_MM_GEMM_Q8) {
            jb.xq = xq;
            ct__pool_run(pool, use_r8(W, T) ? quant_r8_task : quant_q4t_task, &jb); /* x rows split over the threads */
        } else {
            jb.xq = xq;
            for (int t = 0; t < T; t++)
                ct__quantize_x_q8(x + (size_t)t * W->cols, W->dtype, xq + (size_t)t * jb.xq_row, W->cols);
        }
        for (int i = 0; i < n; i++) { jbs[i].xq = jb.xq; jbs[i].xq_row = jb.xq_row; jbs[i].xs = jb.xs; }
    }
    ct_task_fn fn = path == CT_MM_GEMM ? gemm_task : path != CT_MM_GEMM_Q8 ? gemv_task : use_r8(W, T) ? gemm_r8_task : gemm_q4_task;
    if (n == 1) {
        ct__pool_run(pool, fn, &jbs[0]);
    } else {
        multi_job m = {jbs, n, fn};
        ct__pool_run(pool, multi_task, &m); /* one dispatch: each thread does its share of every matrix */
    }
}

void ct__matmul(float *y, const float *x, const ct_mat *W, const float *bias, int T, ct_pool *pool) {
    if (T <= 0 || W->rows <= 0) return;
    if (W->dtype == CT_DT_NF4 && nf4_matmul(y, x, W, bias, T, pool)) return;
    float *const ys[1] = {y};
    const ct_mat *const Ws[1] = {W};
    const float *const bs[1] = {bias};
    matmul_same(1, ys, x, Ws, bs, T, pool);
}

void ct__matmul_n(int n, float *const *ys, const float *x, const ct_mat *const *Ws, const float *const *biases, int T,
                  ct_pool *pool) {
    if (T <= 0 || n <= 0) return;
    int ok = n <= NMAX;
    for (int i = 0; i < n && ok; i++) ok = same_kind(Ws[0], Ws[i]) && Ws[i]->dtype != CT_DT_NF4 && Ws[i]->rows > 0;
    if (!ok) { /* NF4 goes one matrix at a time through its fused kernel */
        for (int i = 0; i < n; i++) ct__matmul(ys[i], x, Ws[i], biases ? biases[i] : NULL, T, pool);
        return;
    }
    matmul_same(n, ys, x, Ws, biases, T, pool);
}
