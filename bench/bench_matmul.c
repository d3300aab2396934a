/* bench/bench_matmul.c — how fast is ct__matmul, per weight dtype and shape,
 * against the memory bandwidth (T = 1) and OpenBLAS sgemm on the same f32
 * shape (the ceiling)?
 *
 * Usage: bench_matmul [-t threads] [-T list] [-s shape-filter] [-d dtype] [-q]
 *   -t  pool size (default: online CPUs)      -T  e.g. "1,128" (default, up to 16 values)
 *   -s  only shapes whose name contains this  -d  only this dtype ("Q4_1")
 *   -q  quick: fewer repetitions
 * Weights are random values in real model shapes (GPT-2 124M, SmolLM2-135M,
 * Llama-2-7B), said so in the output. For T = 1 enough copies of W are cycled
 * that they cannot stay in the last-level cache: GB/s is from DRAM. Times are
 * the best batch average of several batches (the machine may be shared).
 * OpenBLAS runs its own threads; set OPENBLAS_NUM_THREADS to match -t. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/internal.h"
#include "tensor/matmul_kern.h"
#include "tensor/quant.h"

#if defined(CT_HAVE_BLAS)
/* The sgemm ceiling: C (M, N) = A (M, K) @ B (N, K)^T with OpenBLAS (threads as
 * OpenBLAS decides); returns 0, or -1 when built without BLAS. Only this
 * benchmark links OpenBLAS. cblas is declared here rather than by cblas.h,
 * whose install path varies. */
enum { CblasRowMajor_ = 101, CblasNoTrans_ = 111, CblasTrans_ = 112 };
void cblas_sgemm(int order, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);
void cblas_sgemv(int order, int ta, int M, int N, float alpha, const float *A, int lda, const float *x, int incx,
                 float beta, float *y, int incy);
static int ct__sgemm_nt_blas(int M, int N, int K, const float *A, const float *B, float *C) {
    if (M == 1) { /* OpenBLAS's sgemm does not switch to gemv by itself */
        cblas_sgemv(CblasRowMajor_, CblasNoTrans_, N, K, 1.0f, B, K, A, 1, 0.0f, C, 1);
        return 0;
    }
    cblas_sgemm(CblasRowMajor_, CblasNoTrans_, CblasTrans_, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
    return 0;
}
#else
static int ct__sgemm_nt_blas(int M, int N, int K, const float *A, const float *B, float *C) {
    (void)M; (void)N; (void)K; (void)A; (void)B; (void)C;
    return -1;
}
#endif

typedef struct { const char *name; int rows, cols; } shape;
static const shape SHAPES[] = {
    {"gpt2 qkv 2304x768", 2304, 768},   {"gpt2 attn 768x768", 768, 768},
    {"gpt2 mlp 3072x768", 3072, 768},   {"smol attn 576x576", 576, 576},
    {"smol kv 192x576", 192, 576},      {"smol mlp 1536x576", 1536, 576},
    {"smol down 576x1536", 576, 1536},  {"smol head 49152x576", 49152, 576},
    {"s15M attn 288x288", 288, 288},    {"s15M mlp 768x288", 768, 288},
    {"s15M down 288x768", 288, 768},
    {"llama7b attn 4096x4096", 4096, 4096},
    {"llama7b mlp 11008x4096", 11008, 4096},
};
static const ct_dtype DTYPES[] = {CT_DT_F32, CT_DT_F16, CT_DT_BF16, CT_DT_Q8_0, CT_DT_Q4_0, CT_DT_Q4_1};

static int quick;
static const char *dfilter; /* -d: only this dtype */

static void die(const char *m) { fprintf(stderr, "bench_matmul: %s\n", m); exit(1); }
static void *xmalloc(size_t n) { void *p = ct__alloc_big(n); if (!p) die("out of memory"); return p; }

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

/* Best average seconds per call over batches; fn(i) runs call i. */
typedef void (*call_fn)(void *ctx, int i);
static double best_time(call_fn fn, void *ctx, double budget) {
    fn(ctx, 0); /* warm-up: scratch growth, page faults */
    double t0 = ct__now();
    fn(ctx, 1);
    double one = ct__now() - t0, best = one;
    int per = one > 0 ? (int)(0.02 / one) + 1 : 1000, batches = 0;
    double start = ct__now();
    while ((ct__now() - start < budget && batches < 50) || batches < 3) {
        t0 = ct__now();
        for (int i = 0; i < per; i++) fn(ctx, i + 2);
        double t = (ct__now() - t0) / per;
        if (t < best) best = t;
        batches++;
    }
    return best;
}

typedef struct {
    ct_mat *W;     /* copies of the same-shape matrix */
    int ncopy, T, path;
    const float *x;
    float *y;
    ct_pool *pool;
    const float *wf; /* f32 matrix for BLAS */
} run_ctx;

static void run_ct(void *c, int i) {
    run_ctx *r = c;
    int old = ct__matmul_force_path(r->path);
    ct__matmul(r->y, r->x, &r->W[i % r->ncopy], NULL, r->T, r->pool);
    ct__matmul_force_path(old);
}
static void run_blas(void *c, int i) {
    run_ctx *r = c;
    const float *w = r->wf + (size_t)(i % r->ncopy) * r->W[0].rows * r->W[0].cols;
    ct__sgemm_nt_blas(r->T, r->W[0].rows, r->W[0].cols, r->x, w, r->y);
}

/* One table row per (dtype, shape, T). */
static void bench_shape(const shape *s, const int *Ts, int nT, ct_pool *pool) {
    size_t nf = (size_t)s->rows * s->cols;
    float *wf = xmalloc(nf * sizeof(float));
    for (size_t i = 0; i < nf; i++) wf[i] = frand();
    int maxT = 1;
    for (int i = 0; i < nT; i++) maxT = Ts[i] > maxT ? Ts[i] : maxT;
    float *x = xmalloc(sizeof(float) * (size_t)maxT * s->cols), *y = xmalloc(sizeof(float) * (size_t)maxT * s->rows);
    for (size_t i = 0; i < (size_t)maxT * s->cols; i++) x[i] = frand();
    /* BLAS ceiling per T, on one f32 copy (T = 1 with enough copies: DRAM) */
    double blas_t[16] = {0};
    for (int ti = 0; ti < nT && ti < 16; ti++) {
        int ncopy = Ts[ti] == 1 ? (int)((96u << 20) / (nf * 4) + 1) : 1; /* as for ct__matmul below */
        if (ncopy > 64) ncopy = 64;
        float *wc = xmalloc(nf * 4 * ncopy);
        for (int c = 0; c < ncopy; c++) memcpy(wc + nf * c, wf, nf * 4);
        ct_mat W0 = {.dtype = CT_DT_F32, .rows = s->rows, .cols = s->cols, .data = wc, .row_bytes = (size_t)s->cols * 4};
        run_ctx r = {&W0, ncopy, Ts[ti], CT_MM_AUTO, x, y, pool, wc};
        blas_t[ti] = ct__sgemm_nt_blas(1, 1, 1, x, wc, y) == 0 ? best_time(run_blas, &r, quick ? 0.1 : 0.4) : 0;
        ct__free_big(wc, nf * 4 * ncopy);
    }
    for (size_t d = 0; d < sizeof DTYPES / sizeof *DTYPES; d++) {
        ct_dtype dt = DTYPES[d];
        if (dfilter && strcmp(dfilter, ct_dtype_name(dt))) continue;
        size_t rb = (size_t)s->cols / ct_dtype_block(dt) * ct_dtype_block_bytes(dt), wbytes = rb * s->rows;
        int ncopy = (int)((96u << 20) / wbytes + 1);
        if (ncopy > 64) ncopy = 64;
        uint8_t *buf = xmalloc(wbytes * ncopy);
        for (int r = 0; r < s->rows; r++) ct__quantize_row(dt, wf + (size_t)r * s->cols, buf + rb * r, s->cols);
        ct_mat *Ws = malloc(sizeof(ct_mat) * ncopy);
        for (int c = 0; c < ncopy; c++) {
            if (c) memcpy(buf + wbytes * c, buf, wbytes);
            Ws[c] = (ct_mat){.dtype = dt, .rows = s->rows, .cols = s->cols, .data = buf + wbytes * c, .row_bytes = rb};
        }
        for (int ti = 0; ti < nT; ti++) {
            int T = Ts[ti], isq = dt == CT_DT_Q8_0 || dt == CT_DT_Q4_0 || dt == CT_DT_Q4_1;

            /* the row dots and the tiles while both may win; Q types on f32 and on 8-bit x */
            int paths[4] = {-1, -1, -1, -1}, np = 0;
            if (T <= 16) paths[np++] = CT_MM_GEMV_F32;
            paths[np++] = CT_MM_GEMM;
            if (isq && T <= 16) paths[np++] = CT_MM_GEMV_Q8;
            if (ct__mm_q8t_dtype(dt) && T > 1) paths[np++] = CT_MM_GEMM_Q8;
            ct_mat Wq = Ws[0];
            Wq.act_q8 = 1;
            int auto_f = ct__matmul_path(&Ws[0], T), auto_q = ct__matmul_path(&Wq, T);
            for (int pi = 0; pi < np; pi++) {
                run_ctx r = {Ws, T == 1 ? ncopy : 1, T, paths[pi], x, y, pool, NULL};
                double t = best_time(run_ct, &r, quick ? 0.15 : 0.5);
                double gf = 2.0 * T * nf / t * 1e-9, bgf = blas_t[ti] > 0 ? 2.0 * T * nf / blas_t[ti] * 1e-9 : 0;
                int used = paths[pi];
                const char *pn = used == CT_MM_GEMM ? "f32t" : used == CT_MM_GEMM_Q8 ? "q8t"
                                 : used == CT_MM_GEMV_F32 && isq ? "f32x" : isq ? "q8x" : "rows";
                char mark[3] = {used == auto_f ? '*' : ' ', isq && used == auto_q ? '+' : ' ', 0};
                printf("%-24s %-5s %4d %-4s%s %9.3f %8.1f %7.1f %8.1f %6.2f\n", s->name, ct_dtype_name(dt), T, pn, mark,
                       t * 1e3, gf, T == 1 ? wbytes / t * 1e-9 : 0.0, bgf, bgf > 0 ? gf / bgf : 0.0);
                fflush(stdout);
            }
        }
        ct__free_big(buf, wbytes * ncopy);
        free(Ws);
    }
    ct__free_big(wf, nf * 4);
    ct__free_big(x, sizeof(float) * (size_t)maxT * s->cols);
    ct__free_big(y, sizeof(float) * (size_t)maxT * s->rows);
}

static void nop(void *c, int ith, int nth) { (void)c; (void)ith; (void)nth; }
static void run_nop(void *c, int i) { (void)i; ct__pool_run(c, nop, NULL); }

int main(int argc, char **argv) {
    int threads = 0, Ts[16] = {1, 128}, nT = 2;
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) filter = argv[++i];
        else if (!strcmp(argv[i], "-q")) quick = 1;
        else if (!strcmp(argv[i], "-d") && i + 1 < argc) dfilter = argv[++i];
        else if (!strcmp(argv[i], "-T") && i + 1 < argc) {
            nT = 0;
            for (char *p = argv[++i]; *p && nT < 16; p++) {
                Ts[nT++] = (int)strtol(p, &p, 10);
                if (!*p) break;
            }
        } else {
            fprintf(stderr, "usage: bench_matmul [-t threads] [-T 1,128] [-s shape-filter] [-d dtype] [-q]\n");
            return 2;
        }
    }
    ct_pool *pool = NULL;
    if (ct__pool_create(threads, &pool) != CT_OK) die(ct_errmsg());
    const char *ct = getenv("OPENBLAS_CORETYPE"), *bt = getenv("OPENBLAS_NUM_THREADS");
    printf("# ctune matmul benchmark: random weights in real model shapes; kernels %s; %d threads\n",
           ct__matmul_isa(), ct__pool_size(pool));
    printf("# OpenBLAS: %s (OPENBLAS_CORETYPE=%s, OPENBLAS_NUM_THREADS=%s)\n",
           ct__sgemm_nt_blas(1, 1, 1, (float[]){1}, (float[]){1}, (float[]){0}) == 0 ? "linked" : "not linked",
           ct ? ct : "unset", bt ? bt : "unset");
    printf("# pool dispatch: %.2f us per empty ct__pool_run\n", best_time(run_nop, pool, 0.2) * 1e6);
    printf("# GB/s: weight bytes per second (T = 1, from DRAM); blas: sgemm on the f32 shape; ratio = ct/blas\n");
    printf("# paths: rows = row dots (f32 x), f32x = Q rows dequantized in registers, dotted with f32 x,\n"
           "#        q8x = row dots on 8-bit x, f32t = dequantized tiles + f32 micro-kernel,\n"
           "#        q8t = integer tiles on 8-bit x; * = AUTO's pick, + = AUTO's pick with act_q8\n");
    printf("%-24s %-5s %4s %-6s %9s %8s %7s %8s %6s\n", "shape (rows x cols)", "dtype", "T", "path", "ms", "GFLOP/s",
           "GB/s", "blasGF/s", "ratio");
    for (size_t s = 0; s < sizeof SHAPES / sizeof *SHAPES; s++)
        if (!filter || strstr(SHAPES[s].name, filter)) bench_shape(&SHAPES[s], Ts, nT, pool);
    ct__pool_free(pool);
    return 0;
}
