/* tests/unit/test_cls_ref.c — the frozen-base classifier against transformers'
 * *ForSequenceClassification (tests/golden/gen_cls_refs.py, run by
 * tests/e2e/test_cls_ref.sh, which sets CTUNE_CLS_REF_DIR): for a tiny Llama
 * (GQA, untied) and GPT-2, the features ctune pools (final norm output at the
 * last token, texts packed in one micro-batch) equal the reference's
 * last_hidden_state; the head's logits, mean cross-entropy and gradient of
 * score.weight equal transformers'; a head saved and loaded back is the same;
 * LoRA + head vs PEFT (SEQ_CLS); full fine-tuning + head vs transformers (loss
 * and every gradient), transformers' classifier directory read by ctune, and
 * ctune's read by transformers (the script's --check).
 *
 * Tolerances (f32 forward of 2 layers vs PyTorch's f32):
 *   TOL_FEAT   features, relative to the largest |feature|: 1e-5
 *   TOL_LOSS   loss, relative: 1e-6;  TOL_GRAD  gradient, rel. to its max: 1e-5 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "formats/loaders.h"
#include "train/cls_head.h"
#include "train/lora_io.h"
#include "train/save_full.h"
#include "model/model_internal.h"
#include "ctune/cls_train.h"

#define TOL_FEAT 1e-5
#define TOL_LOSS 1e-6
#define TOL_GRAD 1e-5

/* The n texts packed in one micro-batch, each labelled at its last row. tgt, seq: the caller's. */
static ct__tm_batch cls_batch(const int32_t *ids, const int64_t *lens, const int *y, int n, int32_t *tgt, int32_t *seq) {
    int o = 0;
    seq[0] = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < (int)lens[i]; j++) tgt[o + j] = -1;
        o += (int)lens[i];
        tgt[o - 1] = y[i];
        seq[i + 1] = o;
    }
    return (ct__tm_batch){.ids = ids, .targets = tgt, .seq = seq, .N = o, .n_seq = n};
}

/* Worst relative difference of t's gradients (file layout) from the reference
 * tensors of the same names; *found: how many had one. */
static double grads_vs(const ct__tmodel *t, const ct_tstore *ref, const char *name, int *found) {
    int ntab;
    const ct__tparam *tab = ct__tm_ptable(t, &ntab);
    double worst = 0;
    *found = 0;
    for (int k = 0; k < ntab; k++) {
        const ct_tref *r = ct__tstore_find(ref, tab[k].name);
        if (!r) { fprintf(stderr, "%s: no reference gradient for %s\n", name, tab[k].name); continue; }
        ++*found;
        float *fl = malloc(sizeof(float) * tab[k].n);
        ct__tm_param_to_file(t, &tab[k], ct__tm_grads((ct__tmodel *)t) + tab[k].off, fl);
        double e = ct_test_max_rel(fl, r->data, tab[k].n);
        if (e > worst) worst = e;
        free(fl);
    }
    return worst;
}

static int write_f32(const char *path, const float *x, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(x, sizeof(float), n, f) == n;
    return fclose(f) == 0 && ok;
}

static void run(const char *dir, const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ct_model *m = NULL;
    CHECK_OK(ct_model_load(path, NULL, &m));
    if (!m) return;
    snprintf(path, sizeof path, "%s/%s.cls.safetensors", dir, name);
    ct_tstore ts;
    ct__tstore_init(&ts);
    CHECK_OK(ct__safetensors_load(path, &ts));
    const ct_tref *ti = ct__tstore_find(&ts, "ids"), *tl = ct__tstore_find(&ts, "lens"),
                  *ty = ct__tstore_find(&ts, "labels"), *tw = ct__tstore_find(&ts, "score"),
                  *tf = ct__tstore_find(&ts, "features"), *tg = ct__tstore_find(&ts, "logits"),
                  *tloss = ct__tstore_find(&ts, "loss"), *tgr = ct__tstore_find(&ts, "grad");
    CHECK(ti && tl && ty && tw && tf && tg && tloss && tgr);
    if (!(ti && tl && ty && tw && tf && tg && tloss && tgr)) goto done;
    const int C = ct_model_config(m)->dim, K = (int)tw->shape[0], n = (int)tl->shape[0];
    const int64_t *ids64 = ti->data, *lens = tl->data, *lab = ty->data;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)ti->shape[0]);
    for (int64_t i = 0; i < ti->shape[0]; i++) ids[i] = (int32_t)ids64[i];
    ct__cls_text ex[8];
    int y[8], off = 0, longest = 0;
    for (int i = 0; i < n; i++) {
        ex[i] = (ct__cls_text){ids + off, (int)lens[i]};
        off += (int)lens[i];
        y[i] = (int)lab[i];
        if (lens[i] > longest) longest = (int)lens[i];
    }
    ct__tm_opts o = {.method = CT_TM_FROZEN, .max_rows = off, .max_seq = longest, .n_threads = 2};
    ct__tmodel *t = NULL;
    CHECK_OK(ct__tm_create(m, &o, &t));
    if (t) {
        float *feat = malloc(sizeof(float) * (size_t)n * C), *lg = malloc(sizeof(float) * (size_t)n * K);
        float *gW = malloc(sizeof(float) * (size_t)K * C), *lg2 = malloc(sizeof(float) * (size_t)n * K);
        CHECK_OK(ct__cls_features(t, ex, (size_t)n, feat));
        double ef = ct_test_max_rel(feat, tf->data, (size_t)n * C);
        double loss = ct__head_loss(feat, y, (size_t)n, C, K, tw->data, gW, lg, NULL);
        double el = fabs(loss - ((const float *)tloss->data)[0]) / fabs(((const float *)tloss->data)[0]);
        double eg = ct_test_max_rel(gW, tgr->data, (size_t)K * C);
        /* logits: F W^T (ct__head_loss overwrote lg with its gradient) */
        int pred[8];
        float probs[8 * 8];
        ct__head_predict(feat, (size_t)n, C, K, tw->data, pred, probs, NULL);
        int agree = 1;
        for (int i = 0; i < n; i++) {
            const float *r = (const float *)tg->data + (size_t)i * K;
            int b = 0;
            for (int k = 1; k < K; k++)
                if (r[k] > r[b]) b = k;
            agree &= b == pred[i];
        }
        printf("%s: features rel %.2e, loss %.7f vs %.7f (rel %.2e), grad rel %.2e, argmax %s\n", name, ef, loss,
               ((const float *)tloss->data)[0], el, eg, agree ? "same" : "DIFFERENT");
        CHECK(ef <= TOL_FEAT);
        CHECK(el <= TOL_LOSS);
        CHECK(eg <= TOL_GRAD);
        CHECK(agree);
        /* save + load round trip */
        const char *dirout = getenv("CTUNE_CLS_OUT_DIR");
        if (dirout) {
            char hd[1024];
            snprintf(hd, sizeof hd, "%s/%s.head", dirout, name);
            const char *labels[3] = {"neg", "neutral", "pos"};
            CHECK_OK(ct__head_save(hd, tw->data, K, C, labels, name));
            float *W2 = NULL;
            char **l2 = NULL;
            int K2 = 0;
            CHECK_OK(ct__head_load(hd, C, &W2, &K2, &l2));
            CHECK(K2 == K && W2 && memcmp(W2, tw->data, sizeof(float) * (size_t)K * C) == 0);
            CHECK(l2 && !strcmp(l2[1], "neutral"));
            ct__head_free(W2, l2, K2);
            CHECK(ct__head_load(hd, C + 1, &W2, &K2, &l2) == CT_ERR_FORMAT && strstr(ct_errmsg(), "another base"));
        }
        free(feat); free(lg); free(gW); free(lg2);
        ct__tm_free(t);
    }
    /* LoRA + head (PEFT SEQ_CLS): PEFT's adapter with its score loads; loss and every
       trainable gradient equal PEFT's; ctune's saved adapter goes to the --check */
    {
        char ad[1024], gp[1024];
        snprintf(ad, sizeof ad, "%s/%s.seqcls", dir, name);
        snprintf(gp, sizeof gp, "%s/%s.seqcls.safetensors", dir, name);
        ct__tm_opts lo = {.max_rows = off, .max_seq = longest, .n_threads = 2};
        ct_tstore tg2;
        ct__tstore_init(&tg2);
        CHECK_OK(ct__lora_opts_from_dir(ad, ct_model_config(m)->arch, &lo));
        CHECK_OK(ct__safetensors_load(gp, &tg2));
        lo.cls_labels = K;
        lo.lora_dropout = 0;
        ct__tmodel *tl = NULL;
        CHECK_OK(ct__tm_create(m, &lo, &tl));
        if (tl) {
            CHECK_OK(ct__lora_load(tl, ad));
            int32_t tgt[64], seq[9];
            ct__tm_batch b = cls_batch(ids, lens, y, n, tgt, seq);
            double sum;
            float lgl[8 * 8];
            ct__tm_zero_grad(tl);
            CHECK_OK(ct__tm_run(tl, &b, 1.0f / (float)n, 1, lgl, &sum));
            const ct_tref *tw2 = ct__tstore_find(&tg2, "loss");
            const double want = tw2 ? ((const float *)tw2->data)[0] : NAN, got = sum / n;
            int ntab, found = 0;
            ct__tm_ptable(tl, &ntab);
            const double worst = grads_vs(tl, &tg2, name, &found);
            printf("%s LoRA + head vs PEFT SEQ_CLS: loss %.7f vs %.7f, %d gradients, worst rel %.2e\n", name, got, want,
                   found, worst);
            CHECK(fabs(got - want) <= TOL_LOSS * fabs(want));
            CHECK(found == ntab && found > 2);
            CHECK(worst <= TOL_GRAD);
            const char *dirout = getenv("CTUNE_CLS_OUT_DIR");
            if (dirout) { /* change the trained tensors, save, and record the logits */
                size_t np;
                float *pp = ct__tm_params(tl, &np);
                for (size_t i = 0; i < np; i++) pp[i] += 0.01f * (float)((int)(i % 5) - 2);
                char od[1024];
                snprintf(od, sizeof od, "%s/%s.seqcls", dirout, name);
                CHECK_OK(ct__lora_save(tl, od, name));
                CHECK_OK(ct__tm_run(tl, &b, 1.0f, 0, lgl, &sum));
                snprintf(od, sizeof od, "%s/%s.seqcls.logits.f32", dirout, name);
                CHECK(write_f32(od, lgl, (size_t)n * K));
            }
            ct__tm_free(tl);
        }
        ct__tstore_free(&tg2);
    }
    /* full fine-tuning + head: loss and every gradient equal transformers'; transformers'
       own classifier directory loads and classifies as it does; ctune's saved one goes
       to the --check */
    {
        char gp[1024], fd[1024];
        snprintf(gp, sizeof gp, "%s/%s.full.safetensors", dir, name);
        snprintf(fd, sizeof fd, "%s/%s.full", dir, name);
        ct_tstore tg3;
        ct__tstore_init(&tg3);
        CHECK_OK(ct__safetensors_load(gp, &tg3));
        ct__tm_opts fo = {.method = CT_TM_FULL, .max_rows = off, .max_seq = longest, .n_threads = 2, .cls_labels = K};
        ct__tmodel *tf3 = NULL;
        CHECK_OK(ct__tm_create(m, &fo, &tf3));
        const ct__tparam *ps = tf3 ? ct__tm_find(tf3, "score.weight") : NULL;
        CHECK(ps != NULL);
        if (tf3 && ps) {
            memcpy(ct__tm_params(tf3, NULL) + ps->off, tw->data, sizeof(float) * (size_t)K * C);
            int32_t tgt[64], seq[9];
            ct__tm_batch b = cls_batch(ids, lens, y, n, tgt, seq);
            double sum;
            float lgl[8 * 8];
            ct__tm_zero_grad(tf3);
            CHECK_OK(ct__tm_run(tf3, &b, 1.0f / (float)n, 1, lgl, &sum));
            const ct_tref *tw3 = ct__tstore_find(&tg3, "loss");
            const double want = tw3 ? ((const float *)tw3->data)[0] : NAN, got = sum / n;
            int ntab, found = 0;
            ct__tm_ptable(tf3, &ntab);
            const double worst = grads_vs(tf3, &tg3, name, &found);
            /* every reference gradient has a parameter here (no lm_head, nothing left out) */
            printf("%s full + head vs transformers: loss %.7f vs %.7f, %d of %zu gradients, worst rel %.2e\n", name,
                   got, want, found, tg3.n - 1, worst);
            CHECK(fabs(got - want) <= TOL_LOSS * fabs(want));
            CHECK(found == ntab && (size_t)found == tg3.n - 1);
            CHECK(worst <= TOL_GRAD);
            /* transformers' classifier directory: ctune loads it and gives its logits */
            ct_model *m3 = NULL;
            CHECK_OK(ct_model_load(fd, NULL, &m3));
            if (m3) {
                char **l3 = NULL;
                int k3 = 0;
                CHECK_EQ_INT(ct_model_config(m3)->num_labels, K);
                CHECK_OK(ct_model_labels(m3, &l3, &k3));
                CHECK(k3 == K && l3 && !strcmp(l3[1], "neutral"));
                ct_classify_labels_free(l3, k3);
                ct__tm_opts zo = {.method = CT_TM_FROZEN, .max_rows = off, .max_seq = longest, .n_threads = 2};
                ct__tmodel *z = NULL;
                CHECK_OK(ct__tm_create(m3, &zo, &z));
                float feat[8 * 64], lz[8 * 8], W3[8 * 64];
                if (z && C <= 64 && K <= 8) {
                    CHECK_OK(ct__cls_features(z, ex, (size_t)n, feat));
                    for (int k = 0; k < K; k++) ct__mat_row_f32(&m3->score, k, W3 + (size_t)k * C);
                    for (int i = 0; i < n; i++)
                        for (int k = 0; k < K; k++) {
                            double a = 0;
                            for (int c = 0; c < C; c++) a += (double)feat[i * C + c] * W3[k * C + c];
                            lz[i * K + k] = (float)a;
                        }
                    double e = ct_test_max_rel(lz, tg->data, (size_t)n * K);
                    printf("%s: transformers' *ForSequenceClassification directory in ctune: logits rel %.2e\n", name, e);
                    CHECK(e <= TOL_FEAT);
                }
                ct__tm_free(z);
                ct_ctx *cx = NULL; /* an untied classifier has no LM head: generation refuses it by name */
                if (!ct_model_config(m3)->tie_embeddings)
                    CHECK(ct_ctx_create(m3, 16, 1, &cx) == CT_ERR_UNSUPPORTED && strstr(ct_errmsg(), "classification"));
                ct_model_free(m3);
            }
            const char *dirout = getenv("CTUNE_CLS_OUT_DIR");
            if (dirout) { /* change every weight, save, and record the logits */
                size_t np;
                float *pp = ct__tm_params(tf3, &np);
                for (size_t i = 0; i < np; i++) pp[i] += 0.01f * (float)((int)(i % 5) - 2);
                char od[1024];
                snprintf(od, sizeof od, "%s/%s.full", dirout, name);
                const char *labels[3] = {"neg", "neutral", "pos"};
                CHECK_OK(ct__save_full_cls(tf3, od, labels));
                CHECK_OK(ct__tm_run(tf3, &b, 1.0f, 0, lgl, &sum));
                snprintf(od, sizeof od, "%s/%s.full.logits.f32", dirout, name);
                CHECK(write_f32(od, lgl, (size_t)n * K));
            }
        }
        ct__tm_free(tf3);
        ct__tstore_free(&tg3);
    }
    free(ids);
done:
    ct__tstore_free(&ts);
    ct_model_free(m);
}

int main(void) {
    const char *dir = getenv("CTUNE_CLS_REF_DIR");
    if (!dir || !*dir) {
        printf("CTUNE_CLS_REF_DIR unset: run tests/e2e/test_cls_ref.sh\n");
        return 77;
    }
    run(dir, "llama");
    run(dir, "gpt2");
    return ct_check_done("test_cls_ref");
}
