/* tests/unit/test_train_save.c — what the trainer saves is the model it
 * trained, on the real stories260K (llama2.c .bin and GGUF: interleaved RoPE,
 * so saving as Hugging Face permutes q/k rows):
 *   - full fine-tuning: a few AdamW steps, ct__save_full, the directory
 *     loaded back with ct_model_load gives the trained model's logits;
 *   - LoRA: a few steps (B no longer zero), ct__lora_save, the adapter merged
 *     into a freshly loaded base (ct_model_apply_adapter) gives them too;
 *   - the saved adapter read back (ct__lora_load) is bit-identical.
 * Tolerance: TOL_LOGIT of the largest logit (f32, different kernels). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "core/internal.h"
#include "ctune/train.h"
#include "train/lora_io.h"
#include "train/optim.h"
#include "train/save_full.h"
#include "train/tmodel.h"

#define TOL_LOGIT 2e-5

static const char *g_shared;

static char *path(const char *rel) {
    static char b[4][1024];
    static int k;
    char *p = b[k++ & 3];
    snprintf(p, 1024, "%s/%s", g_shared, rel);
    return p;
}

static ct_model *load(const char *p) {
    ct_load_opts lo = {.tokenizer_path = path("models/stories260K/tok512.bin")};
    ct_model *m = NULL;
    CHECK_OK(ct_model_load(p, &lo, &m));
    return m;
}

/* A few AdamW steps on two packed sequences. */
static void train_a_bit(ct__tmodel *t, const ct__tm_batch *b) {
    size_t n;
    float *p = ct__tm_params(t, &n), *g = ct__tm_grads(t);
    float *mo = calloc(n, sizeof(float)), *vo = calloc(n, sizeof(float));
    int ntab;
    const ct__tparam *tab = ct__tm_ptable(t, &ntab);
    ct__adamw_opts ao = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f,
                         .sched = CT_SCHED_CONSTANT, .total = 5, .clip = 1.0f};
    for (int s = 0; s < 5; s++) {
        double loss;
        ct__tm_zero_grad(t);
        CHECK_OK(ct__tm_run(t, b, 1.0f / 20, 1, NULL, &loss));
        ct__grad_clip(g, n, ct__grad_norm(g, n), ao.clip);
        ct__adamw_update(p, g, mo, vo, tab, ntab, &ao, ao.lr, s + 1, 1.0f);
    }
    free(mo);
    free(vo);
}

/* max |a - b| / max |b| over the first sequence's logits, through the KV cache */
static double cmp_logits(ct_model *m, const float *want, const int32_t *ids, int n) {
    int V = ct_model_config(m)->vocab_size;
    float *got = malloc((size_t)n * V * sizeof(float));
    ct_ctx *c = NULL;
    CHECK_OK(ct_ctx_create(m, 64, 1, &c));
    CHECK_OK(ct_ctx_forward(c, ids, n, got, 1));
    double md = 0, mr = 0;
    for (size_t i = 0; i < (size_t)n * V; i++) {
        if (fabs(got[i] - want[i]) > md) md = fabs(got[i] - want[i]);
        if (fabs(want[i]) > mr) mr = fabs(want[i]);
    }
    ct_ctx_free(c);
    free(got);
    return md / mr;
}

static void run(const char *model_rel, const char *tmp) {
    ct_model *m = load(path(model_rel));
    if (!m) return;
    int V = ct_model_config(m)->vocab_size;
    int32_t ids[20], targets[20], seq[3] = {0, 12, 20};
    for (int i = 0; i < 20; i++) ids[i] = (int32_t)((i * 37 + 11) % V);
    for (int i = 0; i < 20; i++) targets[i] = (i == 11 || i == 19) ? -1 : ids[i + 1];
    ct__tm_batch b = {.ids = ids, .targets = targets, .seq = seq, .N = 20, .n_seq = 2};
    float *want = malloc((size_t)20 * V * sizeof(float));
    char dir[512];

    /* full */
    ct__tm_opts o = {.method = CT_TM_FULL, .max_rows = 20, .max_seq = 12, .n_threads = 2};
    ct__tmodel *t = NULL;
    CHECK_OK(ct__tm_create(m, &o, &t));
    if (t) {
        train_a_bit(t, &b);
        CHECK_OK(ct__tm_run(t, &b, 1.0f, 0, want, NULL));
        snprintf(dir, sizeof dir, "%s/full", tmp);
        CHECK_OK(ct__save_full(t, dir));
        ct__tm_free(t);
        ct_model *m2 = load(dir);
        if (m2) {
            double rel = cmp_logits(m2, want, ids, 12);
            printf("%s full fine-tuning saved as HF and reloaded: rel logit diff %.2e\n", model_rel, rel);
            CHECK(rel <= TOL_LOGIT);
            ct_model_free(m2);
        }
    }

    /* LoRA on every linear layer */
    o = (ct__tm_opts){.method = CT_TM_LORA, .lora_r = 4, .lora_alpha = 8, .lora_targets = CT_LT_ALL,
                      .max_rows = 20, .max_seq = 12, .n_threads = 2, .seed = 3};
    CHECK_OK(ct__tm_create(m, &o, &t));
    if (t) {
        train_a_bit(t, &b);
        CHECK_OK(ct__tm_run(t, &b, 1.0f, 0, want, NULL));
        snprintf(dir, sizeof dir, "%s/lora", tmp);
        CHECK_OK(ct__lora_save(t, dir, model_rel));
        /* read back bit for bit */
        ct__tm_opts o2 = o;
        ct__tmodel *t2 = NULL;
        CHECK_OK(ct__lora_opts_from_dir(dir, ct_model_config(m)->arch, &o2));
        CHECK_EQ_INT(o2.lora_r, 4);
        CHECK_EQ_INT(o2.lora_targets, CT_LT_ALL);
        CHECK_OK(ct__tm_create(m, &o2, &t2));
        if (t2) {
            CHECK_OK(ct__lora_load(t2, dir));
            size_t n1, n2;
            float *p1 = ct__tm_params(t, &n1), *p2 = ct__tm_params(t2, &n2);
            CHECK(n1 == n2 && memcmp(p1, p2, n1 * sizeof(float)) == 0);
            ct__tm_free(t2);
        }
        ct__tm_free(t);
        ct_model *m2 = load(path(model_rel));
        if (m2) {
            CHECK_OK(ct_model_apply_adapter(m2, dir));
            double rel = cmp_logits(m2, want, ids, 12);
            printf("%s LoRA saved in PEFT's layout and merged: rel logit diff %.2e\n", model_rel, rel);
            CHECK(rel <= TOL_LOGIT);
            ct_model_free(m2);
        }
    }
    /* QLoRA (NF4 and Q8 bases): the adapter records its base; merged into a freshly
       loaded f32 base it is converted the same way first, so it gives the trained logits */
    for (int bq = CT_TB_NF4; bq <= CT_TB_Q8; bq++) {
        o = (ct__tm_opts){.method = CT_TM_LORA, .base = (ct__tm_base)bq, .lora_r = 4, .lora_alpha = 8,
                          .lora_targets = CT_LT_ALL, .max_rows = 20, .max_seq = 12, .n_threads = 2, .seed = 5};
        CHECK_OK(ct__tm_create(m, &o, &t));
        if (!t) continue;
        train_a_bit(t, &b);
        CHECK_OK(ct__tm_run(t, &b, 1.0f, 0, want, NULL));
        snprintf(dir, sizeof dir, "%s/qlora%d", tmp, bq);
        CHECK_OK(ct__lora_save(t, dir, model_rel));
        ct__tm_free(t);
        ct__tm_opts o2 = {0};
        CHECK_OK(ct__lora_opts_from_dir(dir, ct_model_config(m)->arch, &o2));
        CHECK_EQ_INT(o2.base, bq);
        ct_model *m2 = load(path(model_rel));
        if (m2) {
            CHECK_OK(ct_model_apply_adapter(m2, dir));
            double rel = cmp_logits(m2, want, ids, 12);
            printf("%s QLoRA (%s base) saved and merged on the recorded base: rel logit diff %.2e\n", model_rel,
                   bq == CT_TB_NF4 ? "nf4" : "q8", rel);
            CHECK(rel <= TOL_LOGIT);
            ct_model_free(m2);
        }
    }
    /* an adapter for another rank does not load silently */
    if ((t = NULL, ct__tm_create(m, &(ct__tm_opts){.method = CT_TM_LORA, .lora_r = 8, .lora_alpha = 8,
                                                 .lora_targets = CT_LT_ALL, .max_rows = 20, .max_seq = 12,
                                                 .n_threads = 1}, &t)) == CT_OK) {
        ct_status s = ct__lora_load(t, dir);
        CHECK(s == CT_ERR_FORMAT && strstr(ct_errmsg(), "lora_A.weight' has shape [4,"));
        ct__tm_free(t);
    }
    free(want);
    ct_model_free(m);
}

int main(void) {
    g_shared = getenv("CTUNE_SHARED");
    if (!g_shared) g_shared = "../shared";
    char tmpl[] = "/tmp/ctune-save.XXXXXX";
    char *tmp = mkdtemp(tmpl);
    if (!tmp) return 1;
    char sub[600];
    snprintf(sub, sizeof sub, "%s/bin", tmp);
    run("models/stories260K/stories260K.bin", sub);
    snprintf(sub, sizeof sub, "%s/gguf", tmp);
    run("models/stories260K/stories260K.gguf", sub);
    ct__rmtree(tmp);
    return ct_check_done("test_train_save");
}
