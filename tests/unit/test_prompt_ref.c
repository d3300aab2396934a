/* tests/unit/test_prompt_ref.c — prompt tuning against PEFT
 * (tests/golden/gen_prompt_refs.py, run by tests/e2e/test_prompt_ref.sh with
 * CTUNE_PROMPT_REF_DIR and CTUNE_PROMPT_OUT_DIR set): PEFT's own
 * PROMPT_TUNING adapter loads (config and prompt_embeddings), and on two texts
 * packed in one micro-batch (4 virtual rows before each) ctune's loss and
 * prompt_embeddings gradient equal PEFT's; then ctune saves a changed adapter
 * and its logits for the script's --check, which has PEFT load it.
 * Tolerances (f32, 2 layers): TOL_LOSS 1e-6 relative; TOL_GRAD 1e-5 of the
 * gradient's largest magnitude. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "formats/loaders.h"
#include "train/prompt_io.h"
#include "train/tmodel.h"

#define TOL_LOSS 1e-6
#define TOL_GRAD 1e-5

static void run(const char *dir, const char *out, const char *name) {
    char path[1024], ad[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ct_model *m = NULL;
    CHECK_OK(ct_model_load(path, NULL, &m));
    if (!m) return;
    const ct_config *g = ct_model_config(m);
    snprintf(ad, sizeof ad, "%s/%s.prompt", dir, name);
    ct__tm_opts o = {.n_threads = 2, .seed = 1};
    CHECK_OK(ct__prompt_opts_from_dir(ad, g, &o));
    CHECK_EQ_INT(o.method, CT_TM_PROMPT);
    CHECK_EQ_INT(o.n_virtual, 4);
    snprintf(path, sizeof path, "%s/%s.prompt.safetensors", dir, name);
    ct_tstore ts;
    ct__tstore_init(&ts);
    CHECK_OK(ct__safetensors_load(path, &ts));
    const ct_tref *ti = ct__tstore_find(&ts, "ids"), *tl = ct__tstore_find(&ts, "lens"),
                  *tloss = ct__tstore_find(&ts, "loss"), *tg = ct__tstore_find(&ts, "grad");
    CHECK(ti && tl && tloss && tg);
    if (!(ti && tl && tloss && tg)) goto done;
    const int K = o.n_virtual, C = g->dim, V = g->vocab_size;
    const int64_t *ids64 = ti->data, *lens = tl->data;
    const int n0 = (int)lens[0], n1 = (int)lens[1], N = 2 * K + n0 + n1;
    int32_t ids[64], tgt[64], seq[3] = {0, K + n0, N};
    int r = 0, off = 0, cnt = 0;
    for (int s = 0; s < 2; s++) {
        const int n = (int)lens[s];
        for (int j = 0; j < K; j++, r++) { ids[r] = -(j + 1); tgt[r] = -1; }
        for (int i = 0; i < n; i++, r++) {
            ids[r] = (int32_t)ids64[off + i];
            tgt[r] = i + 1 < n ? (int32_t)ids64[off + i + 1] : -1;
            cnt += i + 1 < n;
        }
        off += n;
    }
    o.max_rows = N;
    o.max_seq = K + (n0 > n1 ? n0 : n1);
    ct__tmodel *t = NULL;
    CHECK_OK(ct__tm_create(m, &o, &t));
    if (!t) goto done;
    CHECK_OK(ct__prompt_load(t, ad));
    ct__tm_batch b = {.ids = ids, .targets = tgt, .seq = seq, .N = N, .n_seq = 2};
    double sum;
    ct__tm_zero_grad(t);
    CHECK_OK(ct__tm_run(t, &b, 1.0f / (float)cnt, 1, NULL, &sum));
    const double loss = sum / cnt, want = ((const float *)tloss->data)[0];
    const float *gr = ct__tm_grads(t), *gw = tg->data;
    double md = 0, mg = 0;
    for (int i = 0; i < K * C; i++) {
        if (fabs(gr[i] - gw[i]) > md) md = fabs(gr[i] - gw[i]);
        if (fabs(gw[i]) > mg) mg = fabs(gw[i]);
    }
    printf("%s prompt tuning vs PEFT: loss %.7f vs %.7f (rel %.2e), prompt_embeddings grad rel %.2e\n", name, loss, want,
           fabs(loss - want) / fabs(want), md / mg);
    CHECK(fabs(loss - want) <= TOL_LOSS * fabs(want));
    CHECK(md <= TOL_GRAD * mg);
    if (out) { /* the other direction: a changed adapter, saved, for PEFT to load */
        size_t np;
        float *p = ct__tm_params(t, &np);
        for (size_t i = 0; i < np; i++) p[i] += 0.05f * (float)((int)(i % 7) - 3);
        char od[1024];
        snprintf(od, sizeof od, "%s/%s.prompt", out, name);
        CHECK_OK(ct__prompt_save(t, od, name, "RANDOM", NULL, NULL));
        float *lg = malloc(sizeof(float) * (size_t)N * V);
        CHECK_OK(ct__tm_run(t, &b, 1.0f, 0, lg, &sum));
        snprintf(od, sizeof od, "%s/%s.logits.f32", out, name);
        FILE *f = fopen(od, "wb");
        CHECK(f != NULL);
        if (f) { /* text 0's rows, after its virtual tokens */
            CHECK(fwrite(lg + (size_t)K * V, sizeof(float), (size_t)n0 * V, f) == (size_t)n0 * V);
            fclose(f);
        }
        free(lg);
        /* a wrong shape is named */
        ct__tm_opts o3 = o;
        o3.n_virtual = 5;
        ct__tmodel *t3 = NULL;
        CHECK_OK(ct__tm_create(m, &o3, &t3));
        if (t3) {
            snprintf(od, sizeof od, "%s/%s.prompt", out, name);
            CHECK(ct__prompt_load(t3, od) == CT_ERR_FORMAT && strstr(ct_errmsg(), "needs [5,"));
            ct__tm_free(t3);
        }
    }
    ct__tm_free(t);
done:
    ct__tstore_free(&ts);
    ct_model_free(m);
}

int main(void) {
    const char *dir = getenv("CTUNE_PROMPT_REF_DIR");
    if (!dir || !*dir) {
        printf("CTUNE_PROMPT_REF_DIR unset: run tests/e2e/test_prompt_ref.sh\n");
        return 77;
    }
    const char *out = getenv("CTUNE_PROMPT_OUT_DIR");
    run(dir, out, "llama");
    run(dir, out, "gpt2");
    return ct_check_done("test_prompt_ref");
}
