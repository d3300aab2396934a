/* bench/bench_nf4.c — how fast are the fused NF4 products (QLoRA's frozen
 * base) against the dense GEMMs on the dequantized matrix and against the
 * machine's peaks?
 *
 * Usage: bench_nf4 [-t threads] [-m rows] [-r batches] [-p f32-peak] [-P bf16-peak]
 *   -t pool size (default 2)   -m rows M of x / dy (default 256: T = 256)
 *   -r timed batches per kernel, best kept (default 3; the machine is shared)
 *   -p / -P the f32 / bf16 peaks for the % columns (default 232 / 460 GFLOP/s:
 *      2 Zen 4 cores, build/bench_peak)
 * Shapes: Llama-2-7B's linear layers, W (out, in) = 4096x4096 (q/k/v/o),
 * 11008x4096 (gate/up), 4096x11008 (down); random Gaussian weights quantized
 * to NF4 with double quantization. For each: forward y = x W^T and input
 * gradient dx = dy W (beta 1, accumulating, as the trainer calls it).
 * Columns (GFLOP/s = 2 M out in / seconds, and % of the peak of its mode):
 *   nf4    ct__nf4_matmul_* f32 mode       nf4bf  the same, bf16 mode
 *   sgemm  ct__sgemm on the dequantized f32 W (the f32 ceiling of ctune)
 *   bf16   ct__sgemm_bf16 on it (bf16 packing of W included, per call)
 *   bf16pk ct__sgemm_bf16_packed, W packed once outside the timing (what a
 *          bf16 base costs: 2 bytes per weight resident, vs 0.5 for NF4)
 *   q8bf   ct__qmm_* on W as Q8_0 rows, bf16 mode (--base-dtype q8, 1.06 B/weight)
 *   bf16ip ct__qmm_* on W as BF16 rows read in place, bf16 mode (--base-dtype bf16)
 * Times are the best of -r batches after a warm-up call. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/internal.h"
#include "tensor/gemm.h"
#include "tensor/nf4_matmul.h"
#include "tensor/quant.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float grand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    const float u = ((float)(rng >> 40) + 0.5f) * (1.0f / 16777216.0f);
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    const float v = (float)(rng >> 40) * (1.0f / 16777216.0f);
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

static void *xmalloc(size_t n) {
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p) { fprintf(stderr, "bench_nf4: out of memory (%zu bytes)\n", n); exit(1); }
    return p;
}

enum { K_NF4, K_NF4BF, K_SGEMM, K_BF16, K_BF16PK, K_Q8BF, K_BF16IP, NKERN };
static const char *KNAME[NKERN] = {"nf4", "nf4bf", "sgemm", "bf16", "bf16pk", "q8bf", "bf16ip"};

typedef struct {
    int dyw, M;
    const ct_nf4_mat *W;
    const float *wf; /* dequantized (out, in) */
    const void *wp;  /* op(B) packed for bf16pk */
    const ct_mat *q8, *bf; /* W as Q8_0 / BF16 rows */
    const float *A;
    float *C;
    ct_pool *pool;
} bench_case;

static void call(const bench_case *b, int k) {
    const int out = b->W->rows, in = b->W->cols, N = b->dyw ? in : out, K = b->dyw ? out : in;
    const float beta = b->dyw ? 1.0f : 0.0f;
    switch (k) {
    case K_NF4:
    case K_NF4BF:
        if ((b->dyw ? ct__nf4_matmul_dyw : ct__nf4_matmul_xwt)(b->C, b->A, b->W, b->M, beta, k == K_NF4BF, b->pool)) {
            fprintf(stderr, "bench_nf4: %s\n", ct_errmsg());
            exit(1);
        }
        break;
    case K_Q8BF:
    case K_BF16IP:
        if ((b->dyw ? ct__qmm_dyw : ct__qmm_xwt)(b->C, b->A, k == K_Q8BF ? b->q8 : b->bf, b->M, beta, 1, b->pool)) {
            fprintf(stderr, "bench_nf4: %s\n", ct_errmsg());
            exit(1);
        }
        break;
    case K_SGEMM: ct__sgemm(0, !b->dyw, b->M, N, K, 1.0f, b->A, K, b->wf, in, beta, b->C, N, b->pool); break;
    case K_BF16: ct__sgemm_bf16(0, !b->dyw, b->M, N, K, 1.0f, b->A, K, b->wf, in, beta, b->C, N, b->pool); break;
    default: ct__sgemm_bf16_packed(0, b->M, N, K, 1.0f, b->A, K, b->wp, beta, b->C, N, b->pool); break;
    }
}

static double best_seconds(const bench_case *b, int k, int batches) {
    call(b, k); /* warm-up */
    double best = 1e30;
    for (int r = 0; r < batches; r++) {
        const double t0 = ct__now();
        call(b, k);
        const double t = ct__now() - t0;
        if (t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv) {
    int threads = 2, M = 256, batches = 3;
    double peak = 232.0, peak_bf = 460.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-m") && i + 1 < argc) M = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) batches = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-p") && i + 1 < argc) peak = atof(argv[++i]);
        else if (!strcmp(argv[i], "-P") && i + 1 < argc) peak_bf = atof(argv[++i]);
        else { fprintf(stderr, "usage: bench_nf4 [-t threads] [-m rows] [-r batches] [-p peak] [-P bf16-peak]\n"); return 2; }
    }
    ct_pool *pool = NULL;
    if (ct__pool_create(threads, &pool)) { fprintf(stderr, "bench_nf4: %s\n", ct_errmsg()); return 1; }
    static const int SH[3][2] = {{4096, 4096}, {11008, 4096}, {4096, 11008}};
    printf("bench_nf4: M=%d threads=%d, GFLOP/s (%% of peak %.0f f32 / %.0f bf16), best of %d\n", M, threads, peak,
           peak_bf, batches);
    printf("%-22s", "W (out x in)  op");
    for (int k = 0; k < NKERN; k++) printf(" %14s", KNAME[k]);
    printf("\n");
    for (int s = 0; s < 3; s++) {
        const int out = SH[s][0], in = SH[s][1];
        const int64_t n = (int64_t)out * in, nb = ct__q4_nblocks(n, CT_NF4_BLOCK);
        float *wf = xmalloc(sizeof(float) * (size_t)n), *absmax = xmalloc(sizeof(float) * (size_t)nb);
        float *work = xmalloc(sizeof(float) * (size_t)nb), *nested = xmalloc(sizeof(float) * (size_t)(nb / 256 + 1));
        float map[256];
        uint8_t *packed = xmalloc((size_t)n / 2), *q = xmalloc((size_t)nb);
        for (int64_t i = 0; i < n; i++) wf[i] = 0.02f * grand();
        ct__quantize_4bit_ref(wf, n, CT_NF4_BLOCK, CT_Q4_NF4, packed, absmax);
        ct__dynamic_map_signed(map);
        ct_nf4_mat W = {out, in, packed, NULL, q, nested, map, 0.0f, CT_Q4_NF4};
        ct__q4_double_quant(absmax, nb, 1, work, q, nested, &W.offset);
        ct__nf4_mat_dequant_ref(&W, wf);
        /* the same values as Q8_0 and BF16 rows */
        const size_t rq = (size_t)in / 32 * 34, rbf = 2 * (size_t)in;
        uint8_t *q8d = xmalloc(rq * out), *bfd = xmalloc(rbf * out);
        for (int r = 0; r < out; r++) {
            ct__quantize_row(CT_DT_Q8_0, wf + (size_t)r * in, q8d + rq * r, in);
            for (int c = 0; c < in; c++) {
                uint16_t h = ct__f32_to_bf16(wf[(size_t)r * in + c]);
                memcpy(bfd + rbf * r + 2 * (size_t)c, &h, 2);
            }
        }
        const ct_mat q8m = {.dtype = CT_DT_Q8_0, .rows = out, .cols = in, .data = q8d, .row_bytes = rq};
        const ct_mat bfm = {.dtype = CT_DT_BF16, .rows = out, .cols = in, .data = bfd, .row_bytes = rbf};
        for (int dyw = 0; dyw < 2; dyw++) {
            const int N = dyw ? in : out, K = dyw ? out : in;
            float *A = xmalloc(sizeof(float) * (size_t)M * K), *C = xmalloc(sizeof(float) * (size_t)M * N);
            for (size_t i = 0; i < (size_t)M * K; i++) A[i] = grand();
            memset(C, 0, sizeof(float) * (size_t)M * N);
            void *wp = xmalloc(ct__gemm_bf16_packed_bytes(K, N));
            ct__gemm_bf16_pack_b(!dyw, K, N, wf, in, wp, pool);
            bench_case b = {dyw, M, &W, wf, wp, &q8m, &bfm, A, C, pool};
            char name[40];
            snprintf(name, sizeof name, "%dx%d %s", out, in, dyw ? "dy W" : "x W^T");
            printf("%-22s", name);
            for (int k = 0; k < NKERN; k++) {
                const double gf = 2.0 * M * (double)N * K / best_seconds(&b, k, batches) * 1e-9;
                const double pk = k == K_NF4 || k == K_SGEMM ? peak : peak_bf;
                printf(" %7.1f (%3.0f%%)", gf, 100.0 * gf / pk);
            }
            printf("\n");
            fflush(stdout);
            free(A); free(C); free(wp);
        }
        free(wf); free(absmax); free(work); free(nested); free(packed); free(q); free(q8d); free(bfd);
    }
    ct__pool_free(pool);
    return 0;
}
