/* bench/bench_peak.c — what this machine can do, measured: the ceilings the
 * other benchmarks compare with.
 *   - f32 FMA: independent zmm (or ymm) vfmadd231ps chains, GFLOP/s
 *     (2 FLOPs per lane);
 *   - bf16 dot: independent zmm vdpbf16ps chains, GFLOP/s (64 FLOPs per
 *     instruction: 32 products and 32 additions) — when AVX512_BF16 is there;
 *   - memory: a streaming read of 512 MiB, without and with a software
 *     prefetch 8 KiB ahead, GB/s.
 * One line per measurement, for 1 and for N threads (-t N, default 2).
 * usage: bench_peak [-t THREADS] [-s SECONDS_PER_TEST] */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

enum { CHAINS = 12 };
static long g_iters = 100000000;
static volatile float g_sink;

static void *fma_loop(void *arg) {
    (void)arg;
#if defined(__AVX512F__)
    __m512 a[CHAINS], x = _mm512_set1_ps(1.0000001f), y = _mm512_set1_ps(1e-9f);
    for (int j = 0; j < CHAINS; j++) a[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < g_iters; i++)
#pragma GCC unroll 12
        for (int j = 0; j < CHAINS; j++) a[j] = _mm512_fmadd_ps(a[j], x, y);
    float s = 0;
    for (int j = 0; j < CHAINS; j++) s += _mm512_reduce_add_ps(a[j]);
    g_sink += s;
#elif defined(__AVX2__) && defined(__FMA__)
    __m256 a[CHAINS], x = _mm256_set1_ps(1.0000001f), y = _mm256_set1_ps(1e-9f);
    for (int j = 0; j < CHAINS; j++) a[j] = _mm256_set1_ps((float)j);
    for (long i = 0; i < g_iters; i++)
#pragma GCC unroll 12
        for (int j = 0; j < CHAINS; j++) a[j] = _mm256_fmadd_ps(a[j], x, y);
    float t[8];
    _mm256_storeu_ps(t, a[0]);
    g_sink += t[0];
#endif
    return NULL;
}

#if defined(__AVX512BF16__)
static void *bf16_loop(void *arg) {
    (void)arg;
    __m512 a[CHAINS];
    __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f803f80), y = (__m512bh)_mm512_set1_epi32(0x3a003a00);
    for (int j = 0; j < CHAINS; j++) a[j] = _mm512_setzero_ps();
    for (long i = 0; i < g_iters; i++)
#pragma GCC unroll 12
        for (int j = 0; j < CHAINS; j++) a[j] = _mm512_dpbf16_ps(a[j], x, y);
    float s = 0;
    for (int j = 0; j < CHAINS; j++) s += _mm512_reduce_add_ps(a[j]);
    g_sink += s;
    return NULL;
}
#endif

static size_t g_bytes = (size_t)512 << 20;
static char *g_buf;
static int g_nth, g_prefetch;

static void *read_loop(void *arg) {
    size_t id = (size_t)arg, n = g_bytes / (size_t)g_nth, o = id * n;
    __m256i s = _mm256_setzero_si256();
    for (int rep = 0; rep < 4; rep++)
        for (size_t i = o; i + 128 <= o + n; i += 128) {
            if (g_prefetch) {
                _mm_prefetch(g_buf + i + 8192, _MM_HINT_T0);
                _mm_prefetch(g_buf + i + 8192 + 64, _MM_HINT_T0);
            }
            s = _mm256_add_epi64(s, _mm256_load_si256((const __m256i *)(g_buf + i)));
            s = _mm256_add_epi64(s, _mm256_load_si256((const __m256i *)(g_buf + i + 32)));
            s = _mm256_add_epi64(s, _mm256_load_si256((const __m256i *)(g_buf + i + 64)));
            s = _mm256_add_epi64(s, _mm256_load_si256((const __m256i *)(g_buf + i + 96)));
        }
    long long t[4];
    _mm256_storeu_si256((__m256i *)t, s);
    g_sink += (float)t[0];
    return NULL;
}

static double run(void *(*fn)(void *), int nth) {
    pthread_t th[64];
    double t = now();
    for (int i = 0; i < nth; i++) pthread_create(&th[i], NULL, fn, (void *)(size_t)i);
    for (int i = 0; i < nth; i++) pthread_join(th[i], NULL);
    return now() - t;
}

int main(int argc, char **argv) {
    int nth = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) nth = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) g_iters = (long)(atof(argv[++i]) * 3.5e8);
        else { fprintf(stderr, "usage: bench_peak [-t THREADS] [-s SECONDS]\n"); return 2; }
    }
    if (nth < 1 || nth > 64) nth = 2;
#if defined(__AVX512F__)
    const double fma_flops = 32.0; /* 16 lanes x 2 */
    const char *fma_name = "f32 FMA (zmm vfmadd)";
#else
    const double fma_flops = 16.0;
    const char *fma_name = "f32 FMA (ymm vfmadd)";
#endif
    printf("| measurement | threads | result |\n|---|---|---|\n");
    int ths[2] = {1, nth};
    for (int k = 0; k < (nth > 1 ? 2 : 1); k++) {
        double t = run(fma_loop, ths[k]);
        printf("| %s | %d | %.1f GFLOP/s |\n", fma_name, ths[k], ths[k] * g_iters * CHAINS * fma_flops / t / 1e9);
    }
#if defined(__AVX512BF16__)
    for (int k = 0; k < (nth > 1 ? 2 : 1); k++) {
        double t = run(bf16_loop, ths[k]);
        printf("| bf16 dot (zmm vdpbf16ps, 64 FLOP) | %d | %.1f GFLOP/s |\n", ths[k],
               ths[k] * g_iters * CHAINS * 64.0 / t / 1e9);
    }
#else
    printf("| bf16 dot (vdpbf16ps) | - | not available (no AVX512_BF16) |\n");
#endif
    g_buf = aligned_alloc(64, g_bytes);
    if (!g_buf) return 1;
    memset(g_buf, 1, g_bytes);
    for (g_prefetch = 0; g_prefetch <= 1; g_prefetch++)
        for (int k = 0; k < (nth > 1 ? 2 : 1); k++) {
            g_nth = ths[k];
            double t = run(read_loop, ths[k]);
            printf("| memory read%s | %d | %.1f GB/s |\n", g_prefetch ? " (prefetch 8 KiB ahead)" : "", ths[k],
                   4.0 * (double)(g_bytes / (size_t)ths[k] * (size_t)ths[k]) / t / 1e9);
        }
    free(g_buf);
    return 0;
}
