/* bench/bench_gemm.c — how fast are ct__sgemm and ct__sgemm_bf16 on the
 * shapes training runs, against OpenBLAS cblas_sgemm and the FMA peaks?
 *
 * Usage: bench_gemm [-t threads] [-s shape-filter] [-q] [-p peak] [-P bf16-peak] [-n]
 *   -t  pool size (default 2)   -s  only shapes whose name contains this
 *   -q  quick: fewer repetitions   -p  the f32 peak for "%peak" (default 234:
 *       2 Zen 4 cores, one zmm FMA per cycle each, measured)   -P  the bf16
 *       peak for "%pk" (default 468: one zmm vdpbf16ps per cycle per core,
 *       measured 234 per core)   -n  no OpenBLAS column (faster)
 *   -c  time by process CPU time / threads instead of wall time: on a
 *       shared, loaded machine this counts only the time our threads ran
 *       (idle spinning of pool workers included; OpenBLAS's threads too)
 * Columns: f32 = ct__sgemm, blas = cblas_sgemm, bf16 = ct__sgemm_bf16 (f32
 * in and out, packing included), bf/f32 = its speed over f32's, bf16pk =
 * ct__sgemm_bf16_packed with op(B) packed once outside the timing (what a
 * frozen LoRA base costs per call).
 * Shapes: GPT-2 124M at B=4, T=256 (1024 rows): forward NT, input-gradient
 * NN, weight-gradient TN, the LM head in 128-row chunks, LoRA r=8, and
 * square ones. Times are the best batch average of several batches (the
 * machine may be shared). OpenBLAS (only when built with CT_HAVE_BLAS) runs
 * its own threads: OPENBLAS_NUM_THREADS is set to -t unless already set, and
 * OPENBLAS_CORETYPE=Haswell in the environment halves it on AVX-512 CPUs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/internal.h"
#include "tensor/gemm.h"

#if defined(CT_HAVE_BLAS)
enum { CblasRowMajor_ = 101, CblasNoTrans_ = 111, CblasTrans_ = 112 };
/* declared here rather than by cblas.h, whose install path varies */
void cblas_sgemm(int order, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);
void openblas_set_num_threads(int n);
#define HAVE_BLAS 1
#else
#define HAVE_BLAS 0
#endif

typedef struct { const char *name; int ta, tb, M, N, K; float beta; } shape;
static const shape SHAPES[] = {
    {"fwd qkv", 0, 1, 1024, 2304, 768, 0},      {"fwd attn-proj", 0, 1, 1024, 768, 768, 0},
    {"fwd mlp-up", 0, 1, 1024, 3072, 768, 0},   {"fwd mlp-down", 0, 1, 1024, 768, 3072, 0},
    {"fwd lm-head/128", 0, 1, 128, 50257, 768, 0},
    {"dx qkv", 0, 0, 1024, 768, 2304, 1},       {"dx mlp-down", 0, 0, 1024, 768, 3072, 1},
    {"dx mlp-up", 0, 0, 1024, 3072, 768, 1},    {"dx lm-head/128", 0, 0, 128, 768, 50257, 1},
    {"dW qkv", 1, 0, 2304, 768, 1024, 1},       {"dW mlp-up", 1, 0, 3072, 768, 1024, 1},
    {"dW mlp-down", 1, 0, 768, 3072, 1024, 1},  {"dW lm-head/128", 1, 0, 50257, 768, 128, 1},
    {"lora fwd A", 0, 1, 1024, 8, 768, 0},      {"lora fwd B", 0, 1, 1024, 768, 8, 0},
    {"lora dA", 1, 0, 8, 768, 1024, 1},         {"lora dB", 1, 0, 768, 8, 1024, 1},
    {"square 512 NN", 0, 0, 512, 512, 512, 0},  {"square 2048 NN", 0, 0, 2048, 2048, 2048, 0},
    {"square 1000 NT", 0, 1, 1000, 1000, 1000, 0},
};

typedef void (*gemm_fn)(int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int,
                        ct_pool *);

static int quick, cpu_clock;

/* Seconds: wall clock, or (-c) process CPU time divided by the threads. */
static int n_threads = 2;
static double clock_s(void) {
    if (!cpu_clock) return ct__now();
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ((double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec) / n_threads;
}

/* Best-of-batches seconds per call. which: 0 ctune f32, 1 ctune bf16, 2 BLAS,
 * 3 ctune bf16 with op(B) pre-packed in Bp. */
static double time_one(int which, const shape *s, const float *A, const float *B, const void *Bp, float *C,
                       ct_pool *pool) {
    int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    double flops = 2.0 * s->M * s->N * s->K;
    int reps = (int)(2e9 / flops) + 1; /* ~10 ms per batch at 200 GFLOP/s */
    if (reps > 200) reps = 200;
    int batches = quick ? 2 : 5;
    double best = 1e30;
    for (int b = -1; b < batches; b++) { /* b = -1: warm-up */
        double t0 = clock_s();
        for (int r = 0; r < reps; r++) {
            if (which == 3) {
                ct__sgemm_bf16_packed(s->ta, s->M, s->N, s->K, 1.0f, A, lda, Bp, s->beta, C, s->N, pool);
            } else if (which == 2) {
#if HAVE_BLAS
                cblas_sgemm(CblasRowMajor_, s->ta ? CblasTrans_ : CblasNoTrans_, s->tb ? CblasTrans_ : CblasNoTrans_,
                            s->M, s->N, s->K, 1.0f, A, lda, B, ldb, s->beta, C, s->N);
#endif
            } else {
                gemm_fn f = which == 0 ? ct__sgemm : ct__sgemm_bf16;
                f(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, s->beta, C, s->N, pool);
            }
        }
        double t = (clock_s() - t0) / reps;
        if (b >= 0 && t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv) {
    int threads = 2;
    double peak = 234.0, peak_bf = 468.0;
    int no_blas = 0;
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) filter = argv[++i];
        else if (!strcmp(argv[i], "-p") && i + 1 < argc) peak = atof(argv[++i]);
        else if (!strcmp(argv[i], "-P") && i + 1 < argc) peak_bf = atof(argv[++i]);
        else if (!strcmp(argv[i], "-q")) quick = 1;
        else if (!strcmp(argv[i], "-n")) no_blas = 1;
        else if (!strcmp(argv[i], "-c")) cpu_clock = 1;
        else {
            fprintf(stderr, "usage: %s [-t threads] [-s filter] [-p peak] [-P bf16-peak] [-q] [-n] [-c]\n", argv[0]);
            return 2;
        }
    }
    n_threads = threads;
    ct_pool *pool = NULL;
    if (ct__pool_create(threads, &pool) != CT_OK) { fprintf(stderr, "pool: %s\n", ct_errmsg()); return 1; }
#if HAVE_BLAS
    const char *ct = getenv("OPENBLAS_CORETYPE"), *bt = getenv("OPENBLAS_NUM_THREADS");
    if (!bt) openblas_set_num_threads(threads);
    printf("# OpenBLAS cblas_sgemm (OPENBLAS_CORETYPE=%s, OPENBLAS_NUM_THREADS=%s)\n", ct ? ct : "(unset)",
           bt ? bt : "(-t)");
#else
    printf("# built without BLAS: no OpenBLAS column\n");
#endif
    printf("# ctune threads %d, peaks f32 %.0f, bf16 %.0f GFLOP/s; GFLOP/s = 2MNK / %s time, best of %d batches\n",
           threads, peak, peak_bf, cpu_clock ? "CPU" : "wall", quick ? 2 : 5);
    printf("%-18s %2s %6s %6s %6s %7s %5s %7s %6s %7s %5s %6s %7s %5s\n", "shape", "op", "M", "N", "K", "f32", "%peak",
           "blas", "f32/bl", "bf16", "%pk", "bf/f32", "bf16pk", "%pk");
    for (size_t i = 0; i < sizeof SHAPES / sizeof SHAPES[0]; i++) {
        const shape *s = &SHAPES[i];
        if (filter && !strstr(s->name, filter)) continue;
        size_t na = (size_t)s->M * s->K, nb = (size_t)s->K * s->N, nc = (size_t)s->M * s->N;
        float *A = ct__alloc_big(sizeof(float) * na), *B = ct__alloc_big(sizeof(float) * nb);
        float *C = ct__alloc_big(sizeof(float) * nc);
        if (!A || !B || !C) { fprintf(stderr, "out of memory\n"); return 1; }
        for (size_t j = 0; j < na; j++) A[j] = (float)((j * 2654435761u) % 1000) * 1e-3f - 0.5f;
        for (size_t j = 0; j < nb; j++) B[j] = (float)((j * 40503u) % 1000) * 1e-3f - 0.5f;
        memset(C, 0, sizeof(float) * nc);
        double gf = 2e-9 * s->M * s->N * s->K;
        size_t pbytes = ct__gemm_bf16_packed_bytes(s->K, s->N);
        void *Bp = ct__alloc_big(pbytes);
        if (!Bp) { fprintf(stderr, "out of memory\n"); return 1; }
        ct__gemm_bf16_pack_b(s->tb, s->K, s->N, B, s->tb ? s->K : s->N, Bp, pool);
        double tf = time_one(0, s, A, B, Bp, C, pool), tb = time_one(1, s, A, B, Bp, C, pool);
        double tp = time_one(3, s, A, B, Bp, C, pool);
        char op[3] = {s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', 0};
        printf("%-18s %2s %6d %6d %6d %7.1f %4.0f%%", s->name, op, s->M, s->N, s->K, gf / tf, 100.0 * gf / tf / peak);
        if (HAVE_BLAS && !no_blas) {
            double tl = time_one(2, s, A, B, Bp, C, pool);
            printf(" %7.1f %6.2f", gf / tl, tl / tf);
        } else {
            printf(" %7s %6s", "-", "-");
        }
        printf(" %7.1f %4.0f%% %6.2f %7.1f %4.0f%%\n", gf / tb, 100.0 * gf / tb / peak_bf, tf / tb, gf / tp,
               100.0 * gf / tp / peak_bf);
        ct__free_big(Bp, pbytes);
        fflush(stdout);
        ct__free_big(A, sizeof(float) * na);
        ct__free_big(B, sizeof(float) * nb);
        ct__free_big(C, sizeof(float) * nc);
    }
    ct__pool_free(pool);
    return 0;
}
