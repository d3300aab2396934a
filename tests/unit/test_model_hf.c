/* tests/unit/test_model_hf.c — forward pass against Hugging Face transformers.
 *
 * Reads $CTUNE_HF_REF_DIR/manifest.txt written by tests/golden/gen_hf_tiny.py
 * (one model per line: name tolerance T V ids...), loads each checkpoint
 * directory with ct_model_load and checks, against the reference logits of
 * every position:
 *   - one batched forward with all_logits,
 *   - the same tokens one at a time through the KV cache,
 *   - two uneven chunks (7 + rest), and a truncate-then-refill of the cache,
 * each within the manifest's tolerance (max |Δlogit|); for float weights the
 * cached paths must also agree with the batched one within CACHE_TOL. Skips (77) when
 * CTUNE_HF_REF_DIR is unset: tests/e2e/test_hf_logits.sh drives it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "ctune/ctune.h"

#define CACHE_TOL 2e-5 /* batched vs token-by-token: same math, different summation order */
#define QUANT_TOL 1e-3 /* manifest tolerances above this are quantized models, whose decode
                          kernels round activations: cached vs batched then gets the same tol */
enum { MAX_T = 256 };

static float *read_f32(const char *path, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    float *p = malloc(n * sizeof(float));
    if (p && fread(p, sizeof(float), n, f) != n) { free(p); p = NULL; }
    fclose(f);
    return p;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as the max */
    }
    return m;
}

static void check_model(const char *dir, const char *name, double tol, int T, int V, const int32_t *ids) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.logits.f32", dir, name);
    float *ref = read_f32(path, (size_t)T * V);
    CHECK(ref != NULL);
    if (!ref) { fprintf(stderr, "cannot read %s\n", path); return; }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ct_model *m = NULL;
    ct_ctx *c = NULL;
    CHECK_OK(ct_model_load(path, NULL, &m));
    if (m) CHECK_OK(ct_ctx_create(m, 64, 2, &c));
    if (!c) { free(ref); ct_model_free(m); return; }
    CHECK_EQ_INT(ct_model_config(m)->vocab_size, V);
    float *batch = calloc((size_t)T * V, sizeof(float));
    float *step = calloc((size_t)T * V, sizeof(float));
    float *split = calloc((size_t)T * V, sizeof(float));
    float *last = calloc((size_t)V, sizeof(float));

    /* 1. all positions in one batch */
    CHECK_OK(ct_ctx_forward(c, ids, T, batch, 1));
    CHECK_EQ_INT(ct_ctx_pos(c), T);
    double e_batch = max_abs_diff(batch, ref, (size_t)T * V);

    /* 2. one token at a time through the cache */
    ct_ctx_reset(c);
    for (int t = 0; t < T; t++) CHECK_OK(ct_ctx_forward(c, ids + t, 1, step + (size_t)t * V, 0));
    double e_step = max_abs_diff(step, ref, (size_t)T * V);
    double e_step_batch = max_abs_diff(step, batch, (size_t)T * V);

    /* 3. uneven chunks */
    ct_ctx_reset(c);
    CHECK_OK(ct_ctx_forward(c, ids, 7, split, 1));
    CHECK_OK(ct_ctx_forward(c, ids + 7, T - 7, split + (size_t)7 * V, 1));
    double e_split = max_abs_diff(split, ref, (size_t)T * V);

    /* 4. truncate the cache to 10 and refill; last-token logits only */
    CHECK_OK(ct_ctx_truncate(c, 10));
    CHECK_EQ_INT(ct_ctx_pos(c), 10);
    CHECK_OK(ct_ctx_forward(c, ids + 10, T - 10, last, 0));
    double e_trunc = max_abs_diff(last, ref + (size_t)(T - 1) * V, (size_t)V);

    /* overflow is refused, not written past the cache */
    CHECK(ct_ctx_forward(c, ids, 64, NULL, 0) == CT_ERR_RANGE);
    int32_t bad = V;
    ct_ctx_reset(c);
    CHECK(ct_ctx_forward(c, &bad, 1, NULL, 0) == CT_ERR_RANGE);

    printf("%-14s max|dlogit| batch %.3g  cached %.3g  chunks %.3g  truncate %.3g  (tol %g; cached vs batch %.3g)\n",
           name, e_batch, e_step, e_split, e_trunc, tol, e_step_batch);
    CHECK_NEAR(e_batch, 0, tol);
    CHECK_NEAR(e_step, 0, tol);
    CHECK_NEAR(e_split, 0, tol);
    CHECK_NEAR(e_trunc, 0, tol);
    CHECK_NEAR(e_step_batch, 0, tol > QUANT_TOL ? tol : CACHE_TOL);
    free(batch); free(step); free(split); free(last); free(ref);
    ct_ctx_free(c);
    ct_model_free(m);
}

int main(void) {
    const char *dir = getenv("CTUNE_HF_REF_DIR");
    if (!dir || !*dir) {
        printf("SKIP: CTUNE_HF_REF_DIR is not set (tests/e2e/test_hf_logits.sh sets it)\n");
        return 77;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) { fprintf(stderr, "cannot open %s\n", path); return ct_check_done("test_model_hf"); }
    char name[256];
    double tol;
    int T, V, n_models = 0;
    while (fscanf(f, "%255s %lf %d %d", name, &tol, &T, &V) == 4) {
        CHECK(T > 10 && T <= MAX_T && V > 0);
        if (!(T > 10 && T <= MAX_T && V > 0)) break;
        int32_t ids[MAX_T];
        for (int i = 0; i < T; i++) CHECK_EQ_INT(fscanf(f, "%d", &ids[i]), 1);
        check_model(dir, name, tol, T, V, ids);
        n_models++;
    }
    fclose(f);
    CHECK(n_models >= 1);
    return ct_check_done("test_model_hf");
}
