/* bench/bench_attn.c — speed of the training attention kernels
 * (ct__attention_fwd / ct__attention_bwd, src/train/tkernels_attn.c) on
 * GPT-2 124M's per-layer shape by default.
 *
 *   bench_attn [-b 4] [-T 256] [-H 12] [-K kv-heads] [-s 64] [-w window]
 *              [-t threads] [-r reps] [--dump FILE | --cmp FILE]
 *
 * B packed sequences of T rows each (N = B*T), q/k/v with GPT-2's fused row
 * stride (3*NH*HS), random inputs from a fixed seed. Prints best-of-reps ms
 * per call and GFLOP/s, counting the products the kernel must do on the
 * visible (causal) pairs only: forward 4*HS per pair (q.k and p*v), backward
 * 8*HS (dP, dq, dk, dv). --dump writes out, dq, dk, dv to FILE; --cmp reads
 * them back and prints the largest absolute and relative differences (to see
 * how far a change moves the results). Leaves out: the probabilities' memory
 * footprint and anything outside the two calls.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/internal.h"
#include "train/tkernels.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

int main(int argc, char **argv) {
    int B = 4, T = 256, NH = 12, NKV = 0, HS = 64, window = 0, threads = 1, reps = 10;
    const char *dump = NULL, *cmp = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 < argc && !strcmp(a, "-b")) B = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "-T")) T = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "-H")) NH = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "-K")) NKV = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "-s")) HS = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "-w")) window = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "-t")) threads = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "-r")) reps = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "--dump")) dump = argv[++i];
        else if (i + 1 < argc && !strcmp(a, "--cmp")) cmp = argv[++i];
        else {
            fprintf(stderr, "usage: %s [-b B] [-T T] [-H NH] [-K NKV] [-s HS] [-w window] [-t threads] [-r reps] "
                            "[--dump FILE | --cmp FILE]\n", argv[0]);
            return 2;
        }
    }
    if (NKV <= 0) NKV = NH;
    if (B < 1 || T < 1 || NH < 1 || HS < 1 || NH % NKV || threads < 1 || reps < 1) {
        fprintf(stderr, "bench_attn: bad shape\n");
        return 2;
    }
    const int N = B * T, ld = NH * HS + 2 * NKV * HS;
    int32_t *seq = malloc(sizeof(int32_t) * (size_t)(B + 1));
    for (int i = 0; i <= B; i++) seq[i] = i * T;
    ct__attn_shape s = {N, B, seq, NH, NKV, HS, window, ld, ld, NH * HS};
    size_t nqkv = (size_t)N * ld, no = (size_t)N * NH * HS, np = ct__attn_probs_size(&s);
    float *qkv = malloc(nqkv * 4), *d_qkv = calloc(nqkv, 4), *out = malloc(no * 4), *dout = malloc(no * 4);
    float *probs = malloc(np * 4);
    if (!seq || !qkv || !d_qkv || !out || !dout || !probs) { fprintf(stderr, "bench_attn: out of memory\n"); return 1; }
    for (size_t i = 0; i < nqkv; i++) qkv[i] = frand();
    for (size_t i = 0; i < no; i++) dout[i] = frand() * 0.1f;
    const float *q = qkv, *k = qkv + NH * HS, *v = qkv + NH * HS + NKV * HS;
    float *dq = d_qkv, *dk = d_qkv + NH * HS, *dv = d_qkv + NH * HS + NKV * HS;
    ct_pool *pool = NULL;
    if (ct__pool_create(threads, &pool) != CT_OK) { fprintf(stderr, "pool: %s\n", ct_errmsg()); return 1; }

    double pairs = 0;
    for (int i = 0; i < T; i++) pairs += window > 0 && i + 1 > window ? window : i + 1;
    pairs *= (double)B * NH;
    double ff = 4.0 * HS * pairs, fb = 8.0 * HS * pairs, bf = 1e30, bb = 1e30;
    for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
        double t0 = ct__now();
        ct__attention_fwd(out, probs, q, k, v, &s, pool);
        double t1 = ct__now();
        ct__attention_bwd(dq, dk, dv, dout, probs, q, k, v, &s, pool);
        double t2 = ct__now();
        if (r >= 0) {
            bf = t1 - t0 < bf ? t1 - t0 : bf;
            bb = t2 - t1 < bb ? t2 - t1 : bb;
        }
    }
    printf("attention B=%d T=%d NH=%d NKV=%d HS=%d window=%d threads=%d: fwd %.2f ms (%.1f GFLOP/s)  bwd %.2f ms "
           "(%.1f GFLOP/s)\n", B, T, NH, NKV, HS, window, threads, bf * 1e3, ff / bf * 1e-9, bb * 1e3,
           fb / bb * 1e-9);

    if (dump) {
        FILE *f = fopen(dump, "wb");
        if (!f || fwrite(out, 4, no, f) != no || fwrite(d_qkv, 4, nqkv, f) != nqkv || fclose(f)) {
            fprintf(stderr, "bench_attn: cannot write %s\n", dump);
            return 1;
        }
    } else if (cmp) {
        FILE *f = fopen(cmp, "rb");
        float *ro = malloc(no * 4), *rg = malloc(nqkv * 4);
        if (!f || !ro || !rg || fread(ro, 4, no, f) != no || fread(rg, 4, nqkv, f) != nqkv) {
            fprintf(stderr, "bench_attn: cannot read %s\n", cmp);
            return 1;
        }
        fclose(f);
        double ma = 0, mr = 0, ga = 0, gr = 0;
        for (size_t i = 0; i < no; i++) {
            double d = fabs((double)out[i] - ro[i]);
            ma = d > ma ? d : ma;
            mr = d / (fabs(ro[i]) + 1e-6) > mr ? d / (fabs(ro[i]) + 1e-6) : mr;
        }
        for (size_t i = 0; i < nqkv; i++) {
            double d = fabs((double)d_qkv[i] - rg[i]);
            ga = d > ga ? d : ga;
            gr = d / (fabs(rg[i]) + 1e-6) > gr ? d / (fabs(rg[i]) + 1e-6) : gr;
        }
        printf("vs %s: out max abs %.3g (rel %.3g), grads max abs %.3g (rel %.3g)\n", cmp, ma, mr, ga, gr);
        free(ro);
        free(rg);
    }
    ct__pool_free(pool);
    free(seq);
    free(qkv);
    free(d_qkv);
    free(out);
    free(dout);
    free(probs);
    return 0;
}
