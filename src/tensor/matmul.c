/* src/tensor/matmul.c — y (T, rows) = x (T, cols) @ W^T (+ bias): the driver.
 *
 * Picks a path by T and dtype, splits the output columns (W rows) over the
 * pool's threads, and hands the inner loops to the kernels of matmul_x86.c:
 * - T <= CT_MM_GEMV_MAX_T (decode): row dots. Each thread streams its W rows
 *   once in the stored dtype; F32/F16/BF16 against x in f32, Q8_0/Q4_0/Q4_1
 *   against x quantized once per call to 8 bits (ct__xq8_* layout).
 * - larger T (prompt processing): per thread, NC W rows x KC columns are
 *   dequantized and packed into 16-row panels in the thread's pool scratch,
 *   then every 6-row strip of x runs the 6x16 FMA micro-kernel over them.
 * Scratch comes from ct__pool_scratch, sized before the threads start, so a
 * call allocates only the first time a bigger matrix is seen. If that growth
 * fails, the call falls back to the slow single-threaded reference.
 *
 * Left out: threading along T or K (rows are enough for every model shape we
 * run), OpenBLAS inside ct__matmul (measured slower on the dequantized tiles,
 * see docs/kernels.md; ct__sgemm_nt_blas exists for the benchmark's ceiling). */
#include <string.h>
#include "core/internal.h"
#include "tensor/matmul_kern.h"

#if defined(CT_HAVE_BLAS)
/* Declared here rather than by cblas.h, whose install path varies. */
enum { CblasRowMajor_ = 101, CblasNoTrans_ = 111, CblasTrans_ = 112 };
void cblas_sgemm(int order, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);
void cblas_sgemv(int order, int ta, int M, int N, float alpha, const float *A, int lda, const float *x, int incx,
                 float beta, float *y, int incy);
int ct__sgemm_nt_blas(int M, int N, int K, const float *A, const float *B, float *C) {
    if (M == 1) { /* OpenBLAS's sgemm does not switch to gemv by itself */
        cblas_sgemv(CblasRowMajor_, CblasNoTrans_, N, K, 1.0f, B, K, A, 1, 0.0f, C, 1);
        return 0;
    }
    cblas_sgemm(CblasRowMajor_, CblasNoTrans_, CblasTrans_, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
    return 0;
}
#else
int ct__sgemm_nt_blas(int M, int N, int K, const float *A, const float *B, float *C) {
    (void)M; (void)N; (void)K; (void)A; (void)B; (void)C;
    return -1;
}
#endif

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
    const uint8_t *xq;     /* T rows of xq_row bytes: x quantized (GEMV_Q8, Q types) */
    size_t xq_row;
    ct_pool *pool;
    size_t work_bytes;     /* per-thread scratch, already grown */
} job;

/* ---- decode: row dots -------------------------------------------------- */
#define GEMV_ROWS 8 /* rows per step: their dots for every t, bias, store */

static void gemv_task(void *ctx, int ith, int nth) {
    const job *jb = ctx;
    const ct_mat *W = jb->W;
    int r0, r1, rows = W->rows, cols = W->cols;
    split_rows(rows, 4, ith, nth, &r0, &r1);
    float *deq = NULL; /* GEMV_F32 on Q types: GEMV_ROWS dequantized rows */
    ct_mat Wf = {CT_DT_F32, GEMV_ROWS, cols, NULL, (size_t)cols * sizeof(float)};
    if (jb->path == CT_MM_GEMV_F32 && is_q(W->dtype)) {
        deq = ct__pool_scratch(jb->pool, ith, jb->work_bytes);
        Wf.data = deq;
    }
    float out[GEMV_ROWS];
    for (int r = r0; r < r1; r += GEMV_ROWS) {
        int n = r1 - r < GEMV_ROWS ? r1 - r : GEMV_ROWS;
        if (deq)
            for (int i = 0; i < n; i++) ct__dequant_range(W, r + i, 0, cols, deq + (size_t)i * cols);
        for (int t = 0; t < jb->T; t++) {
            if (deq) ct__dot_rows_f(&Wf, 0, n, jb->x + (size_t)t * cols, out);
            else if (is_q(W->dtype)) ct__dot_rows_q(W, r, n, jb->xq + (size_t)t * jb->xq_row, out);
            else ct__dot_rows_f(W, r, n, jb->x + (size_t)t * cols, out);
            float *yt = jb->y + (size_t)t * rows + r;
            for (int i = 0; i < n; i++) yt[i] = out[i] + (jb->bias ? jb->bias[r + i] : 0.0f);
        }
    }
}

/* ---- prompt: packed panels + micro-kernel ------------------------------ */
static void gemm_task(void *ctx, int ith, int nth) {
    const job *jb = ctx;
    const ct_mat *W = jb->W;
    int r0, r1, rows = W->rows, cols = W->cols, T = jb->T;
    split_rows(rows, CT_MM_NR, ith, nth, &r0, &r1);
    float *pack = ct__pool_scratch(jb->pool, ith, jb->work_bytes); /* (NC/NR, KC, NR) */
    float *deq = pack + (size_t)CT_MM_KC * CT_MM_NC;                /* (NR, KC) */
    const int direct = W->dtype == CT_DT_F32;                       /* pack straight from W */
    for (int n0 = r0; n0 < r1; n0 += CT_MM_NC) {
        int ncols = r1 - n0 < CT_MM_NC ? r1 - n0 : CT_MM_NC;
        int npan = (ncols + CT_MM_NR - 1) / CT_MM_NR;
        for (int k0 = 0; k0 < cols; k0 += CT_MM_KC) {
            int kc = cols - k0 < CT_MM_KC ? cols - k0 : CT_MM_KC;
            for (int p = 0; p < npan; p++) {
                int pr = n0 + p * CT_MM_NR, nr = ncols - p * CT_MM_NR < CT_MM_NR ? ncols - p * CT_MM_NR : CT_MM_NR;
                float *dst = pack + (size_t)p * kc * CT_MM_NR;
                if (direct) {
                    ct__pack_panel((const float *)W->data + (size_t)pr * cols + k0, cols, nr, kc, dst);
                } else {
                    for (int i = 0; i < nr; i++) ct__dequant_range(W, pr + i, k0, kc, deq + (size_t)i * kc);
                    ct__pack_panel(deq, kc, nr, kc, dst);
                }
            }
            for (int t0 = 0; t0 < T; t0 += CT_MM_MR) {
                int mr = T - t0 < CT_MM_MR ? T - t0 : CT_MM_MR;
                for (int p = 0; p < npan; p++) {
                    int pc = n0 + p * CT_MM_NR, nc = ncols - p * CT_MM_NR < CT_MM_NR ? ncols - p * CT_MM_NR : CT_MM_NR;
                    ct__gemm_tile(mr, nc, kc, jb->x + (size_t)t0 * cols + k0, cols, pack + (size_t)p * kc * CT_MM_NR,
                                  jb->y + (size_t)t0 * rows + pc, rows, jb->bias ? jb->bias + pc : NULL, k0 > 0);
                }
            }
        }
    }
}

/* ---- entry points ------------------------------------------------------ */
static int pick_path(const ct_mat *W, int T) {
    if (g_force_path != CT_MM_AUTO) return g_force_path;
    if (T > CT_MM_GEMV_MAX_T) return CT_MM_GEMM;
    return CT_MM_GEMV_Q8;
}

/* Scratch bytes per thread for a path (slot 0 also holds the quantized x). */
static size_t work_bytes(const ct_mat *W, int path) {
    if (path == CT_MM_GEMM) return sizeof(float) * ((size_t)CT_MM_KC * CT_MM_NC + (size_t)CT_MM_NR * CT_MM_KC);
    if (path == CT_MM_GEMV_F32 && is_q(W->dtype)) return sizeof(float) * (size_t)GEMV_ROWS * W->cols;
    return 0;
}
static size_t xq_bytes(const ct_mat *W, int T, int path) {
    return path == CT_MM_GEMV_Q8 && is_q(W->dtype) ? ct__xq8_bytes(W->cols / 32) * (size_t)T : 0;
}

size_t ct__matmul_scratch(const ct_mat *W, int T) {
    int path = pick_path(W, T);
    size_t b = work_bytes(W, path) + xq_bytes(W, T, path);
    return (b + sizeof(float) - 1) / sizeof(float);
}

void ct__matmul(float *y, const float *x, const ct_mat *W, const float *bias, int T, ct_pool *pool) {
    if (T <= 0 || W->rows <= 0) return;
    int path = pick_path(W, T), nth = ct__pool_size(pool);
    job jb = {y, x, W, bias, T, path, NULL, 0, pool, work_bytes(W, path)};
    size_t xqb = xq_bytes(W, T, path);
    /* Grow every thread's scratch now, while no task runs. Slot 0 holds the
     * quantized x after its own work area. */
    for (int i = 0; i < nth; i++) {
        size_t need = jb.work_bytes + (i == 0 ? xqb : 0);
        if (need && !ct__pool_scratch(pool, i, need)) {
            ct__log(CT_LOG_WARN, "matmul: no memory for %zu bytes of scratch; using the slow reference", need);
            ct__matmul_ref(y, x, W, bias, T);
            return;
        }
    }
    if (xqb) {
        uint8_t *xq = (uint8_t *)ct__pool_scratch(pool, 0, jb.work_bytes + xqb) + jb.work_bytes;
        jb.xq_row = ct__xq8_bytes(W->cols / 32);
        for (int t = 0; t < T; t++) ct__quantize_x_q8(x + (size_t)t * W->cols, W->dtype, xq + (size_t)t * jb.xq_row, W->cols);
        jb.xq = xq;
    }
    ct__pool_run(pool, path == CT_MM_GEMM ? gemm_task : gemv_task, &jb);
}
