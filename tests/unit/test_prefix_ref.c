/* tests/unit/test_prefix_ref.c — prefix tuning against PEFT
 * (tests/golden/gen_prefix_refs.py, run by tests/e2e/test_prefix_ref.sh with
 * CTUNE_PREFIX_REF_DIR and CTUNE_PREFIX_OUT_DIR set):
 *  - PEFT's PREFIX_TUNING adapters load (config, prompt_embeddings); on two
 *    texts packed in one micro-batch ctune's loss and table gradient equal
 *    PEFT's (Llama with grouped KV heads, GPT-2);
 *  - with the projection MLP (PEFT's prefix_projection), set to PEFT's
 *    weights: the table equals the one PEFT saved, and the loss and the five
 *    MLP gradients equal PEFT's;
 *  - the other direction: ctune saves changed adapters and its logits, and
 *    the script's --check has PEFT load them. One of them is on the real
 *    stories260K (llama2.c file, interleaved RoPE: our key columns are
 *    permuted against the file's), exported by ctune as an HF directory;
 *    ctune on that export with the same adapter gives the same logits.
 * Tolerances (f32, 2 layers): TOL_LOSS 1e-6 relative; TOL_GRAD 1e-5 of each
 * gradient's largest magnitude; TOL_TABLE 1e-6 of the table's; TOL_LOGIT
 * 1e-5 of the logits' largest magnitude. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "formats/loaders.h"
#include "train/prompt_io.h"
#include "train/save_full.h"
#include "train/tmodel.h"

#define TOL_LOSS 1e-6
#define TOL_GRAD 1e-5
#define TOL_TABLE 1e-6
#define TOL_LOGIT 1e-5

static int write_raw(const char *dir, const char *name, const char *ext, const void *p, size_t bytes) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(p, 1, bytes, f) == bytes;
    return fclose(f) == 0 && ok;
}

/* the two reference texts packed in one micro-batch */
typedef struct {
    int32_t ids[64], tgt[64], seq[3];
    int N, cnt, n0, longest;
} texts;

static void pack(const ct_tref *ti, const ct_tref *tl, texts *x) {
    const int64_t *ids = ti->data, *lens = tl->data;
    int r = 0, off = 0;
    x->cnt = 0;
    x->seq[0] = 0;
    for (int s = 0; s < 2; s++) {
        const int n = (int)lens[s];
        for (int i = 0; i < n; i++, r++) {
            x->ids[r] = (int32_t)ids[off + i];
            x->tgt[r] = i + 1 < n ? (int32_t)ids[off + i + 1] : -1;
            x->cnt += i + 1 < n;
        }
        off += n;
        x->seq[s + 1] = r;
    }
    x->N = r;
    x->n0 = (int)lens[0];
    x->longest = lens[0] > lens[1] ? (int)lens[0] : (int)lens[1];
}

/* PEFT's plain table: load, compare loss and gradient, then save a changed copy. */
static void run_plain(const char *dir, const char *out, const char *name) {
    char path[1024], ad[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ct_model *m = NULL;
    CHECK_OK(ct_model_load(path, NULL, &m));
    if (!m) return;
    const ct_config *g = ct_model_config(m);
    snprintf(ad, sizeof ad, "%s/%s.prefix", dir, name);
    ct__tm_opts o = {.n_threads = 2, .seed = 1};
    CHECK_OK(ct__prompt_opts_from_dir(ad, g, &o));
    CHECK_EQ_INT(o.method, CT_TM_PREFIX);
    CHECK_EQ_INT(o.n_virtual, 4);
    if (!strcmp(name, "gpt2")) { /* the Llama model's adapter on GPT-2: named, not read */
        char other[1024];
        snprintf(other, sizeof other, "%s/llama.prefix", dir);
        ct__tm_opts bad = {0};
        CHECK(ct__prompt_opts_from_dir(other, g, &bad) == CT_ERR_FORMAT && strstr(ct_errmsg(), "token_dim 16"));
    }
    snprintf(path, sizeof path, "%s/%s.prefix.safetensors", dir, name);
    ct_tstore ts;
    ct__tstore_init(&ts);
    CHECK_OK(ct__safetensors_load(path, &ts));
    const ct_tref *ti = ct__tstore_find(&ts, "ids"), *tl = ct__tstore_find(&ts, "lens"),
                  *tloss = ct__tstore_find(&ts, "loss"), *tg = ct__tstore_find(&ts, "grad.prompt_embeddings");
    CHECK(ti && tl && tloss && tg);
    ct__tmodel *t = NULL;
    if (!(ti && tl && tloss && tg)) goto done;
    texts x;
    pack(ti, tl, &x);
    o.max_rows = x.N;
    o.max_seq = x.longest;
    o.max_seqs = 2;
    CHECK_OK(ct__tm_create(m, &o, &t));
    if (!t) goto done;
    CHECK_OK(ct__prompt_load(t, ad));
    ct__tm_batch b = {.ids = x.ids, .targets = x.tgt, .seq = x.seq, .N = x.N, .n_seq = 2};
    double sum;
    ct__tm_zero_grad(t);
    CHECK_OK(ct__tm_run(t, &b, 1.0f / (float)x.cnt, 1, NULL, &sum));
    const double loss = sum / x.cnt, want = ((const float *)tloss->data)[0];
    const ct__tparam *p = ct__tm_find(t, "prompt_embeddings");
    CHECK(p && (int64_t)p->n == tg->shape[0] * tg->shape[1]);
    if (!p) goto done;
    const double gd = ct_test_max_rel(ct__tm_grads(t) + p->off, tg->data, p->n);
    printf("%s prefix tuning vs PEFT: loss %.7f vs %.7f (rel %.2e), prompt_embeddings [%lld, %lld] grad rel %.2e\n",
           name, loss, want, fabs(loss - want) / fabs(want), (long long)p->shape[0], (long long)p->shape[1], gd);
    CHECK(fabs(loss - want) <= TOL_LOSS * fabs(want));
    CHECK(gd <= TOL_GRAD);
    /* a third sequence is more than this set-up holds: a clear error, not a write past the buffers */
    int32_t seq3[4] = {0, 3, 7, x.N};
    ct__tm_batch b3 = b;
    b3.seq = seq3;
    b3.n_seq = 3;
    CHECK(ct__tm_run(t, &b3, 1.0f, 0, NULL, &sum) == CT_ERR_ARG && strstr(ct_errmsg(), "sequences"));
    if (out) { /* a changed adapter, saved, for PEFT to load; logits of text 0 */
        size_t np;
        float *pp = ct__tm_params(t, &np);
        for (size_t i = 0; i < np; i++) pp[i] += 0.05f * (float)((int)(i % 7) - 3);
        char od[1024];
        snprintf(od, sizeof od, "%s/%s.prefix", out, name);
        CHECK_OK(ct__prompt_save(t, od, name, NULL, NULL, NULL));
        const int V = g->vocab_size;
        float *lg = malloc(sizeof(float) * (size_t)x.N * V);
        CHECK_OK(ct__tm_run(t, &b, 1.0f, 0, lg, &sum));
        CHECK(write_raw(out, name, "logits.f32", lg, sizeof(float) * (size_t)x.n0 * V));
        CHECK(write_raw(out, name, "ids.i32", x.ids, sizeof(int32_t) * (size_t)x.n0));
        free(lg);
        /* a wrong shape is named */
        ct__tm_opts o3 = o;
        o3.n_virtual = 5;
        ct__tmodel *t3 = NULL;
        CHECK_OK(ct__tm_create(m, &o3, &t3));
        if (t3) {
            CHECK(ct__prompt_load(t3, od) == CT_ERR_FORMAT && strstr(ct_errmsg(), "needs [5,"));
            ct__tm_free(t3);
        }
    }
done:
    ct__tm_free(t);
    ct__tstore_free(&ts);
    ct_model_free(m);
}

/* The projection MLP at PEFT's weights: table, loss, gradients. */
static void run_proj(const char *dir, const char *name) {
    char path[1024], ad[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ct_model *m = NULL;
    CHECK_OK(ct_model_load(path, NULL, &m));
    if (!m) return;
    snprintf(path, sizeof path, "%s/%s.proj.prefix.safetensors", dir, name);
    ct_tstore ts, tab;
    ct__tstore_init(&ts);
    ct__tstore_init(&tab);
    CHECK_OK(ct__safetensors_load(path, &ts));
    snprintf(ad, sizeof ad, "%s/%s.proj.prefix/adapter_model.safetensors", dir, name);
    CHECK_OK(ct__safetensors_load(ad, &tab));
    const ct_tref *ti = ct__tstore_find(&ts, "ids"), *tl = ct__tstore_find(&ts, "lens"),
                  *tloss = ct__tstore_find(&ts, "loss"), *want_tab = ct__tstore_find(&tab, "prompt_embeddings");
    CHECK(ti && tl && tloss && want_tab);
    ct__tmodel *t = NULL;
    if (!(ti && tl && tloss && want_tab)) goto done;
    texts x;
    pack(ti, tl, &x);
    ct__tm_opts o = {.method = CT_TM_PREFIX, .n_virtual = 3, .prefix_hidden = 16, .max_rows = x.N,
                     .max_seq = x.longest, .max_seqs = 2, .n_threads = 2, .seed = 1};
    CHECK_OK(ct__tm_create(m, &o, &t));
    if (!t) goto done;
    int np;
    const ct__tparam *tabp = ct__tm_ptable(t, &np);
    float *params = ct__tm_params(t, NULL);
    CHECK_EQ_INT(np, 5);
    for (int i = 0; i < np; i++) { /* PEFT's weights (same names, same layouts) */
        char key[200];
        snprintf(key, sizeof key, "w.%s", tabp[i].name);
        const ct_tref *r = ct__tstore_find(&ts, key);
        CHECK(r && r->dtype == CT_DT_F32);
        if (!r) goto done;
        size_t n = (size_t)r->shape[0] * (size_t)(r->ndim > 1 ? r->shape[1] : 1);
        CHECK(n == tabp[i].n);
        if (n != tabp[i].n) goto done;
        memcpy(params + tabp[i].off, r->data, n * sizeof(float));
    }
    const size_t T = (size_t)want_tab->shape[1];
    const double td = ct_test_max_rel(ct__tm_prefix_table(t), want_tab->data, 3 * T);
    ct__tm_batch b = {.ids = x.ids, .targets = x.tgt, .seq = x.seq, .N = x.N, .n_seq = 2};
    double sum;
    ct__tm_zero_grad(t);
    CHECK_OK(ct__tm_run(t, &b, 1.0f / (float)x.cnt, 1, NULL, &sum));
    const double loss = sum / x.cnt, want = ((const float *)tloss->data)[0];
    printf("%s prefix projection vs PEFT: table rel %.2e, loss %.7f vs %.7f (rel %.2e)\n", name, td, loss, want,
           fabs(loss - want) / fabs(want));
    CHECK(td <= TOL_TABLE);
    CHECK(fabs(loss - want) <= TOL_LOSS * fabs(want));
    for (int i = 0; i < np; i++) {
        char key[200];
        snprintf(key, sizeof key, "grad.%s", tabp[i].name);
        const ct_tref *r = ct__tstore_find(&ts, key);
        CHECK(r != NULL);
        if (!r) continue;
        const double gd = ct_test_max_rel(ct__tm_grads(t) + tabp[i].off, r->data, tabp[i].n);
        printf("  %-36s grad rel %.2e\n", tabp[i].name, gd);
        CHECK(gd <= TOL_GRAD);
    }
done:
    ct__tm_free(t);
    ct__tstore_free(&ts);
    ct__tstore_free(&tab);
    ct_model_free(m);
}

/* logits (n, V) of ids under m with the prefix adapter ad */
static float *prefix_logits(ct_model *m, const char *ad, const int32_t *ids, int n) {
    ct__tm_opts o = {.n_threads = 2, .seed = 1};
    CHECK_OK(ct__prompt_opts_from_dir(ad, ct_model_config(m), &o));
    o.max_rows = o.max_seq = n;
    o.max_seqs = 1;
    ct__tmodel *t = NULL;
    CHECK_OK(ct__tm_create(m, &o, &t));
    if (!t) return NULL;
    CHECK_OK(ct__prompt_load(t, ad));
    int32_t tg[64], seq[2] = {0, n};
    for (int i = 0; i < n; i++) tg[i] = -1;
    float *lg = malloc(sizeof(float) * (size_t)n * ct_model_config(m)->vocab_size);
    ct__tm_batch b = {.ids = ids, .targets = tg, .seq = seq, .N = n, .n_seq = 1};
    double sum;
    CHECK_OK(ct__tm_run(t, &b, 1.0f, 0, lg, &sum));
    ct__tm_free(t);
    return lg;
}

/* The real stories260K (interleaved RoPE): adapter and HF export for PEFT. */
static void run_stories(const char *shared, const char *out) {
    char bin[1024], tokp[1024], hf[1024], ad[1024];
    snprintf(bin, sizeof bin, "%s/models/stories260K/stories260K.bin", shared);
    snprintf(tokp, sizeof tokp, "%s/models/stories260K/tok512.bin", shared);
    snprintf(hf, sizeof hf, "%s/stories.hf", out);
    snprintf(ad, sizeof ad, "%s/stories.prefix", out);
    ct_load_opts lo = {.tokenizer_path = tokp};
    ct_model *m = NULL, *m2 = NULL;
    CHECK_OK(ct_model_load(bin, &lo, &m));
    if (!m) return;
    CHECK(ct_model_config(m)->rope_style == CT_ROPE_NORM);
    ct__tm_opts fo = {.method = CT_TM_FULL, .max_rows = 4, .max_seq = 4, .n_threads = 2};
    ct__tmodel *t = NULL;
    CHECK_OK(ct__tm_create(m, &fo, &t));
    if (t) CHECK_OK(ct__save_full(t, hf)); /* unchanged weights, HF layout */
    ct__tm_free(t);
    t = NULL;
    enum { N = 12 };
    int32_t ids[N], tg[N], seq[2] = {0, N};
    uint64_t s = 7;
    for (int i = 0; i < N; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        ids[i] = 1 + (int32_t)((s >> 33) % 500);
        tg[i] = -1;
    }
    ct__tm_opts o = {.method = CT_TM_PREFIX, .n_virtual = 5, .max_rows = N, .max_seq = N, .max_seqs = 1,
                     .n_threads = 2, .seed = 5};
    CHECK_OK(ct__tm_create(m, &o, &t));
    if (!t) goto done;
    size_t np;
    float *p = ct__tm_params(t, &np);
    for (size_t i = 0; i < np; i++) p[i] *= 0.5f; /* N(0, 1/4): keys the size of the model's */
    CHECK_OK(ct__prompt_save(t, ad, "stories260K", NULL, NULL, NULL));
    const int V = ct_model_config(m)->vocab_size;
    float *lg = malloc(sizeof(float) * N * (size_t)V);
    ct__tm_batch b = {.ids = ids, .targets = tg, .seq = seq, .N = N, .n_seq = 1};
    double sum;
    CHECK_OK(ct__tm_run(t, &b, 1.0f, 0, lg, &sum));
    CHECK(write_raw(out, "stories", "logits.f32", lg, sizeof(float) * N * (size_t)V));
    CHECK(write_raw(out, "stories", "ids.i32", ids, sizeof ids));
    CHECK_OK(ct_model_load(hf, NULL, &m2));
    if (m2) {
        CHECK(ct_model_config(m2)->rope_style != CT_ROPE_NORM);
        float *lg2 = prefix_logits(m2, ad, ids, N);
        if (lg2) {
            double d = ct_test_max_rel(lg2, lg, (size_t)N * V);
            printf("stories260K prefix: llama2.c file vs its HF export, same adapter: logits rel %.2e\n", d);
            CHECK(d <= TOL_LOGIT);
        }
        free(lg2);
    }
    free(lg);
    /* a prefix set to the cache of ids[0..5) in front of ids[5..12) is the text ids[0..12) */
    ct__tm_free(t);
    t = NULL;
    o.max_rows = o.max_seq = N - 5;
    CHECK_OK(ct__tm_create(m, &o, &t));
    ct__tm_opts zo = {.method = CT_TM_FROZEN, .max_rows = N, .max_seq = N, .n_threads = 2};
    ct__tmodel *z = NULL;
    CHECK_OK(ct__tm_create(m, &zo, &z));
    if (t && z) {
        CHECK_OK(ct__tm_prefix_from_ids(t, ids, 5));
        float *a = malloc(sizeof(float) * N * (size_t)V), *c = malloc(sizeof(float) * N * (size_t)V);
        int32_t sq2[2] = {0, N - 5};
        ct__tm_batch bz = {.ids = ids, .targets = tg, .seq = seq, .N = N, .n_seq = 1};
        ct__tm_batch bp = {.ids = ids + 5, .targets = tg, .seq = sq2, .N = N - 5, .n_seq = 1};
        CHECK_OK(ct__tm_run(z, &bz, 1.0f, 0, a, &sum));
        CHECK_OK(ct__tm_run(t, &bp, 1.0f, 0, c, &sum));
        double d = ct_test_max_rel(c, a + 5 * (size_t)V, (size_t)(N - 5) * V);
        printf("stories260K prefix = cache of 5 tokens: logits vs the 12-token text: rel %.2e\n", d);
        CHECK(d <= TOL_LOGIT);
        free(a);
        free(c);
    }
    ct__tm_free(z);
done:
    ct__tm_free(t);
    ct_model_free(m2);
    ct_model_free(m);
}

int main(void) {
    const char *dir = getenv("CTUNE_PREFIX_REF_DIR");
    if (!dir || !*dir) {
        printf("CTUNE_PREFIX_REF_DIR unset: run tests/e2e/test_prefix_ref.sh\n");
        return 77;
    }
    const char *out = getenv("CTUNE_PREFIX_OUT_DIR"), *shared = getenv("CTUNE_SHARED");
    run_plain(dir, out, "llama");
    run_plain(dir, out, "gpt2");
    run_proj(dir, "llama");
    run_proj(dir, "gpt2");
    if (out) run_stories(shared ? shared : "../shared", out);
    return ct_check_done("test_prefix_ref");
}
