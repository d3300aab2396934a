/* tests/unit/test_model_stories.c — stories260K at the API level.
 *
 * Always (when ../shared has the files): the llama2.c .bin and the GGUF
 * conversion of the same weights must give the same logits (max |Δ| ≤
 * SAME_TOL; the tensors are bit-identical, so 0 is expected), batched and
 * through the cache; the model must report the right config; greedy sampling
 * at temperature 0 is the argmax; a seeded sampler is deterministic.
 * With $CTUNE_STORIES_REF_DIR (written by tests/golden/ref_stories.py, an
 * independent NumPy forward): the greedy continuation's token ids must equal
 * NumPy's exactly (from both files), and ct_eval_perplexity on the same token
 * ids must match NumPy's perplexity within PPL_RTOL with the same counts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "ctune/ctune.h"

#define SAME_TOL 1e-6  /* .bin vs .gguf logits */
#define PPL_RTOL 1e-4  /* relative, vs NumPy (float32 forwards on both sides) */
enum { MAX_GEN = 1024 };

typedef struct { int32_t ids[MAX_GEN]; int n; } collected;

static int collect(int32_t id, const char *piece, size_t len, void *ud) {
    (void)piece; (void)len;
    collected *c = ud;
    if (c->n < MAX_GEN) c->ids[c->n++] = id;
    return 0;
}

static int read_ids_line(FILE *f, int32_t *ids, int cap) {
    char line[65536];
    if (!fgets(line, sizeof line, f)) return -1;
    int n = 0;
    for (char *p = strtok(line, " \n"); p && n < cap; p = strtok(NULL, " \n")) ids[n++] = atoi(p);
    return n;
}

static void check_bin_vs_gguf(ct_model *mb, ct_model *mg) {
    const ct_config *a = ct_model_config(mb), *b = ct_model_config(mg);
    CHECK_EQ_INT(a->dim, 64);
    CHECK_EQ_INT(a->n_layers, 5);
    CHECK_EQ_INT(a->n_kv_heads, 4);
    CHECK_EQ_INT(a->vocab_size, 512);
    CHECK_EQ_INT(a->dim, b->dim);
    CHECK_EQ_INT(a->hidden_dim, b->hidden_dim);
    CHECK_EQ_INT(a->n_heads, b->n_heads);
    CHECK_EQ_INT(a->n_kv_heads, b->n_kv_heads);
    CHECK_EQ_INT(a->rope_style, b->rope_style);
    /* 264,128 floats in the .bin minus the unused RoPE tables (2 x 512 x 4) */
    CHECK_EQ_INT(ct_model_n_params(mb), 260032);
    enum { T = 48, V = 512 };
    int32_t ids[T];
    for (int i = 0; i < T; i++) ids[i] = (int32_t)((i * 37 + 1) % V);
    static float lb[T * V], lg[T * V], step[V];
    ct_ctx *cb = NULL, *cg = NULL;
    CHECK_OK(ct_ctx_create(mb, 128, 2, &cb));
    CHECK_OK(ct_ctx_create(mg, 128, 2, &cg));
    if (!cb || !cg) { ct_ctx_free(cb); ct_ctx_free(cg); return; }
    CHECK_OK(ct_ctx_forward(cb, ids, T, lb, 1));
    CHECK_OK(ct_ctx_forward(cg, ids, T, lg, 1));
    double e = 0, e_step = 0;
    for (int i = 0; i < T * V; i++) e = fmax(e, fabs((double)lb[i] - lg[i]));
    ct_ctx_reset(cg);
    for (int t = 0; t < T; t++) {
        CHECK_OK(ct_ctx_forward(cg, ids + t, 1, step, 0));
        for (int i = 0; i < V; i++) e_step = fmax(e_step, fabs((double)step[i] - lb[(size_t)t * V + i]));
    }
    printf("stories260K .bin vs .gguf: max|dlogit| %.3g (batched), %.3g (gguf token by token vs bin batched)\n", e,
           e_step);
    CHECK_NEAR(e, 0, SAME_TOL);
    CHECK_NEAR(e_step, 0, 2e-5);

    /* greedy = argmax with the lowest id on ties; a seeded sampler repeats itself */
    ct_sampler *s = NULL, *s1 = NULL, *s2 = NULL;
    ct_sampler_opts g = {0.0f, 0, 1.0f, 0}, r = {0.8f, 40, 0.9f, 1234};
    CHECK_OK(ct_sampler_create(&g, V, &s));
    CHECK_OK(ct_sampler_create(&r, V, &s1));
    CHECK_OK(ct_sampler_create(&r, V, &s2));
    float flat[V];
    for (int i = 0; i < V; i++) flat[i] = i == 7 || i == 9 ? 3.0f : 0.0f;
    CHECK_EQ_INT(ct_sampler_sample(s, flat), 7);
    int same = 1;
    for (int t = 0; t < 20; t++) {
        float x1[V], x2[V];
        memcpy(x1, lb + (size_t)t * V, sizeof x1);
        memcpy(x2, lb + (size_t)t * V, sizeof x2);
        same &= ct_sampler_sample(s1, x1) == ct_sampler_sample(s2, x2);
    }
    CHECK(same);
    ct_sampler_free(s); ct_sampler_free(s1); ct_sampler_free(s2);
    ct_ctx_free(cb);
    ct_ctx_free(cg);
}

typedef struct { int n, stop_after; } counter;
static int count_cb(int32_t id, const char *piece, size_t len, void *ud) {
    (void)id; (void)piece; (void)len;
    counter *c = ud;
    return ++c->n >= c->stop_after;
}

/* max_new_tokens, callback stop, stop ids, a full context. */
static void check_generate_controls(ct_model *m) {
    int32_t prompt[5] = {1, 403, 407, 261, 378}; /* BOS "Once upon a time" */
    ct_ctx *c = NULL;
    CHECK_OK(ct_ctx_create(m, 64, 1, &c));
    if (!c) return;
    collected all = {.n = 0};
    ct_gen_opts o = {.max_new_tokens = 6, .stop_at_eos = 1};
    ct_gen_stats st;
    CHECK_OK(ct_generate(c, prompt, 5, &o, collect, &all, &st));
    CHECK_EQ_INT(all.n, 6);
    CHECK_EQ_INT(st.n_prompt, 5);
    CHECK_EQ_INT(ct_ctx_pos(c), 5 + 5); /* the last token is not fed back */

    ct_ctx_reset(c);
    counter cn = {0, 3};
    CHECK_OK(ct_generate(c, prompt, 5, &o, count_cb, &cn, &st));
    CHECK_EQ_INT(cn.n, 3);

    ct_ctx_reset(c);
    collected got = {.n = 0};
    int32_t stop = all.ids[3];
    ct_gen_opts os = o;
    os.stop_ids = &stop;
    os.n_stop_ids = 1;
    CHECK_OK(ct_generate(c, prompt, 5, &os, collect, &got, &st));
    int first = 0;
    while (first < 6 && all.ids[first] != stop) first++;
    CHECK_EQ_INT(got.n, first); /* the stop token itself is not passed on */
    ct_ctx_free(c);

    /* a context of 8 holds the 5 prompt tokens and 3 fed-back tokens */
    CHECK_OK(ct_ctx_create(m, 8, 1, &c));
    if (!c) return;
    collected full = {.n = 0};
    o.max_new_tokens = 100;
    CHECK_OK(ct_generate(c, prompt, 5, &o, collect, &full, &st));
    CHECK_EQ_INT(full.n, 4);
    CHECK_EQ_INT(ct_ctx_pos(c), 8);
    for (int i = 0; i < full.n; i++) CHECK_EQ_INT(full.ids[i], all.ids[i]);
    ct_ctx_reset(c);
    int32_t long_prompt[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    CHECK(ct_generate(c, long_prompt, 9, &o, collect, &full, &st) == CT_ERR_RANGE);
    ct_ctx_free(c);
}

static void check_reference(const char *ref, ct_model *m, const char *label) {
    char path[4096];
    snprintf(path, sizeof path, "%s/gen_ids.txt", ref);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    static int32_t prompt[MAX_GEN], want[MAX_GEN];
    int np = read_ids_line(f, prompt, MAX_GEN), nw = read_ids_line(f, want, MAX_GEN);
    fclose(f);
    CHECK(np > 0 && nw > 0);
    if (np <= 0 || nw <= 0) return;
    ct_ctx *c = NULL;
    CHECK_OK(ct_ctx_create(m, 0, 2, &c));
    if (!c) return;
    collected got = {.n = 0};
    ct_gen_opts o = {.max_new_tokens = nw, .stop_at_eos = 1};
    ct_gen_stats st;
    CHECK_OK(ct_generate(c, prompt, np, &o, collect, &got, &st));
    CHECK_EQ_INT(got.n, nw);
    CHECK_EQ_INT(st.n_generated, got.n);
    int first_diff = -1;
    for (int i = 0; i < got.n && i < nw; i++)
        if (got.ids[i] != want[i]) { first_diff = i; break; }
    printf("%s: greedy %d tokens vs NumPy: %s (first difference at %d)\n", label, got.n,
           first_diff < 0 ? "identical" : "DIFFERENT", first_diff);
    CHECK_EQ_INT(first_diff, -1);

    snprintf(path, sizeof path, "%s/ppl.txt", ref);
    f = fopen(path, "r");
    double ppl = 0, nll = 0;
    long long ntok = 0, nscored = 0;
    int ctx = 0, stride = 0;
    CHECK(f && fscanf(f, "%lf %lld %lld %lf %d %d", &ppl, &ntok, &nscored, &nll, &ctx, &stride) == 6);
    if (f) fclose(f);
    snprintf(path, sizeof path, "%s/data_ids.i32", ref);
    f = fopen(path, "rb");
    int32_t *ids = ntok > 0 ? malloc((size_t)ntok * sizeof *ids) : NULL;
    CHECK(f && ids && fread(ids, sizeof *ids, (size_t)ntok, f) == (size_t)ntok);
    if (f) fclose(f);
    if (ids && ctx > 0) {
        ct_ctx_free(c);
        c = NULL;
        CHECK_OK(ct_ctx_create(m, ctx, 0, &c));
        ct_eval_result r;
        ct_eval_opts eo = {ctx, stride};
        if (c) CHECK_OK(ct_eval_perplexity(c, ids, (size_t)ntok, &eo, &r));
        if (c) {
            printf("%s: perplexity %.6f vs NumPy %.6f (rel %.2g), scored %lld of %lld, %.0f tokens/s\n", label,
                   r.perplexity, ppl, fabs(r.perplexity / ppl - 1), (long long)r.n_scored, (long long)r.n_tokens,
                   r.n_processed / (r.seconds > 0 ? r.seconds : 1));
            CHECK_NEAR(r.perplexity / ppl, 1.0, PPL_RTOL);
            CHECK_EQ_INT(r.n_scored, nscored);
            CHECK_EQ_INT(r.n_tokens, ntok);
        }
    }
    free(ids);
    ct_ctx_free(c);
}

int main(void) {
    const char *sh = getenv("CTUNE_SHARED");
    char bin[4096], gguf[4096], tok[4096];
    snprintf(bin, sizeof bin, "%s/models/stories260K/stories260K.bin", sh ? sh : "../shared");
    snprintf(gguf, sizeof gguf, "%s/models/stories260K/stories260K.gguf", sh ? sh : "../shared");
    snprintf(tok, sizeof tok, "%s/models/stories260K/tok512.bin", sh ? sh : "../shared");
    FILE *f = fopen(bin, "rb");
    if (!f) { printf("SKIP: %s not found (set CTUNE_SHARED)\n", bin); return 77; }
    fclose(f);
    ct_model *mb = NULL, *mg = NULL;
    ct_load_opts lo = {.tokenizer_path = tok};
    CHECK_OK(ct_model_load(bin, &lo, &mb));
    CHECK_OK(ct_model_load(gguf, NULL, &mg));
    /* a .bin without its tokenizer is refused with a hint */
    ct_model *none = NULL;
    CHECK(ct_model_load(bin, NULL, &none) == CT_ERR_ARG && none == NULL && strstr(ct_errmsg(), "--tokenizer"));
    if (mb && mg) check_bin_vs_gguf(mb, mg);
    if (mb) check_generate_controls(mb);
    const char *ref = getenv("CTUNE_STORIES_REF_DIR");
    if (ref && *ref) {
        if (mb) check_reference(ref, mb, "stories260K.bin");
        if (mg) check_reference(ref, mg, "stories260K.gguf");
    } else {
        printf("note: CTUNE_STORIES_REF_DIR unset; NumPy comparisons run in tests/e2e/test_stories260k.sh\n");
    }
    ct_model_free(mb);
    ct_model_free(mg);
    return ct_check_done("test_model_stories");
}
