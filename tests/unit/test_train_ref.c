/* tests/unit/test_train_ref.c — the trainer against PyTorch + transformers +
 * PEFT (tests/golden/gen_train_refs.py writes the references; run from
 * tests/e2e/test_train_ref.sh with CTUNE_TRAIN_REF_DIR set).
 *
 * For tiny random-weight Llama (untied, tied), Qwen2 (q/k/v biases) and GPT-2
 * checkpoints, on one packed micro-batch of 3 sequences with masked targets:
 *   - full fine-tuning: step-0 loss and the gradient of every parameter;
 *   - LoRA (all linear layers, r=4, alpha=8, PEFT's own adapter files with
 *     random A and B) and rsLoRA: loss, every A/B gradient, adapted logits;
 *   - ten AdamW steps with cosine schedule, warmup and clipping (Llama and
 *     GPT-2, full and LoRA): losses, learning rates, gradient norms, final
 *     weights.
 * Tolerances (named below) are relative to the largest reference magnitude
 * of each tensor: float32 on both sides, different summation orders. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "ctune/model.h"
#include "formats/json.h"
#include "formats/loaders.h"
#include "train/lora_io.h"
#include "train/optim.h"
#include "train/save_full.h"
#include "train/tmodel.h"

#define TOL_LOSS 2e-5      /* relative, step-0 loss */
#define TOL_GRAD 2e-4      /* max |g - g_ref| / max |g_ref| per tensor */
#define TOL_LOGIT 1e-4     /* max |l - l_ref| / max |l_ref| */
#define TOL_TRAJ_LOSS 5e-4 /* relative, each of the ten losses */
#define TOL_TRAJ_W 2e-3    /* max |w - w_ref| / max |w_ref| after ten steps */
#define TOL_LOSS_BF16 5e-3 /* --precision bf16: operands rounded to 8 bits of mantissa */
#define TOL_GRAD_BF16 5e-2

static const char *g_dir;

static char *pathf(const char *fmt, const char *name) {
    static char buf[4][1024];
    static int k;
    char *b = buf[k++ & 3];
    char rel[512];
    snprintf(rel, sizeof rel, fmt, name);
    snprintf(b, 1024, "%s/%s", g_dir, rel);
    return b;
}

/* ---- the batch ------------------------------------------------------------------- */
typedef struct {
    int32_t ids[256], targets[256], seq[16];
    int N, n_seq, n_targets;
} batch;

static int load_batch(batch *b) {
    char *text;
    size_t len;
    ct_json *j;
    if (ct__read_file(pathf("%s", "batch.json"), &text, &len) || ct__json_parse(text, len, "batch.json", &j)) {
        fprintf(stderr, "batch.json: %s\n", ct_errmsg());
        return 0;
    }
    free(text);
    const ct_json *seqs = ct__json_get(j, "seqs");
    memset(b, 0, sizeof *b);
    for (size_t s = 0; seqs && s < seqs->u.arr.n; s++) {
        const ct_json *ids = ct__json_get(&seqs->u.arr.items[s], "ids");
        const ct_json *tg = ct__json_get(&seqs->u.arr.items[s], "targets");
        for (size_t i = 0; i < ids->u.arr.n; i++) {
            b->ids[b->N] = (int32_t)ids->u.arr.items[i].u.num;
            b->targets[b->N] = (int32_t)tg->u.arr.items[i].u.num;
            b->n_targets += b->targets[b->N] >= 0;
            b->N++;
        }
        b->seq[++b->n_seq] = b->N;
    }
    ct__json_free(j);
    return b->N > 0;
}

static ct__tm_batch tm_batch(const batch *b) {
    return (ct__tm_batch){.ids = b->ids, .targets = b->targets, .seq = b->seq, .N = b->N, .n_seq = b->n_seq};
}

static ct_json *g_refs;

static double ref_num(const char *model, const char *k1, const char *k2) {
    const ct_json *v = ct__json_get(ct__json_get(ct__json_get(g_refs, model), k1), k2);
    return v && v->type == CT_JSON_NUM ? v->u.num : NAN;
}
static const ct_json *ref_arr(const char *model, const char *k1, const char *k2) {
    return ct__json_get(ct__json_get(ct__json_get(g_refs, model), k1), k2);
}

/* ---- comparisons -------------------------------------------------------------------- */

static float ref_at(const ct_tref *r, size_t i) {
    float f;
    memcpy(&f, (const uint8_t *)r->data + 4 * i, 4);
    return f;
}

/* Compare ours (our layout, per parameter) with the tensors of a safetensors file. */
static void cmp_tensors(ct__tmodel *t, const float *ours, const char *file, double tol, const char *what) {
    ct_tstore ts;
    ct__tstore_init(&ts);
    CHECK_OK(ct__safetensors_load(file, &ts));
    int n;
    const ct__tparam *tab = ct__tm_ptable(t, &n);
    CHECK_EQ_INT(n, (int)ts.n); /* every trainable tensor has a reference and vice versa */
    float *buf = NULL;
    double worst = 0;
    const char *worst_name = "";
    for (int i = 0; i < n; i++) {
        const ct__tparam *p = &tab[i];
        const ct_tref *r = ct__tstore_find(&ts, p->name);
        if (!r) {
            fprintf(stderr, "%s: %s: no reference tensor '%s'\n", what, file, p->name);
            CHECK(r != NULL);
            continue;
        }
        CHECK_EQ_INT(r->dtype, CT_DT_F32);
        CHECK_EQ_INT(ct__tref_numel(r), (int64_t)p->n);
        CHECK_EQ_INT(r->shape[0], p->shape[0]);
        buf = realloc(buf, p->n * sizeof(float));
        ct__tm_param_to_file(t, p, ours + p->off, buf);
        double md = 0, mr = 0;
        for (size_t j = 0; j < p->n; j++) {
            double d = fabs((double)buf[j] - ref_at(r, j)), a = fabs(ref_at(r, j));
            if (d > md) md = d;
            if (a > mr) mr = a;
        }
        double rel = md / (mr > 1e-6 ? mr : 1e-6);
        if (rel > tol) fprintf(stderr, "%s: %s: max diff %.3g, max |ref| %.3g (rel %.3g > %.1g)\n", what, p->name,
                               md, mr, rel, tol);
        CHECK(rel <= tol);
        if (rel > worst) { worst = rel; worst_name = p->name; }
    }
    printf("  %-28s %3d tensors, worst rel diff %.2e (%s)\n", what, n, worst, worst_name);
    free(buf);
    ct__tstore_free(&ts);
}

static ct__tm_opts base_opts(const batch *b) {
    return (ct__tm_opts){.method = CT_TM_FULL, .max_rows = b->N, .max_seq = 12, .n_threads = 2, .seed = 1};
}

static ct__tmodel *make(ct_model *m, ct__tm_opts o, const char *adapter) {
    ct__tmodel *t = NULL;
    if (adapter) CHECK_OK(ct__lora_opts_from_dir(adapter, ct_model_config(m)->arch, &o));
    CHECK_OK(ct__tm_create(m, &o, &t));
    if (t && adapter) CHECK_OK(ct__lora_load(t, adapter));
    return t;
}

/* Loss and gradients of one step vs the reference. */
static void check_step(ct_model *m, const char *name, const batch *b, const char *kind, const char *adapter,
                       const char *grads_file, int checkpointing) {
    ct__tm_opts o = base_opts(b);
    o.checkpointing = checkpointing & 1;
    o.bf16 = (checkpointing & 2) != 0; /* bit 1: the bf16 path (pre-packed frozen weights for LoRA) */
    double tol_loss = o.bf16 ? TOL_LOSS_BF16 : TOL_LOSS, tol_grad = o.bf16 ? TOL_GRAD_BF16 : TOL_GRAD;
    ct__tmodel *t = make(m, o, adapter);
    if (!t) return;
    ct__tm_batch tb = tm_batch(b);
    double loss = 0;
    CHECK_OK(ct__tm_run(t, &tb, 1.0f / b->n_targets, 1, NULL, &loss));
    loss /= b->n_targets;
    double ref = ref_num(name, kind, "loss");
    printf("%s %s%s%s: loss %.7f ref %.7f\n", name, kind, o.checkpointing ? " (checkpointing)" : "",
           o.bf16 ? " (bf16)" : "", loss, ref);
    CHECK(fabs(loss - ref) <= tol_loss * fabs(ref));
    char what[64];
    snprintf(what, sizeof what, "%s %s%s grads", name, kind, o.bf16 ? " bf16" : "");
    cmp_tensors(t, ct__tm_grads(t), grads_file, tol_grad, what);
    ct__tm_free(t);
}

static void check_lora_logits(ct_model *m, const char *name, const batch *b) {
    ct__tmodel *t = make(m, base_opts(b), pathf("%s.lora", name));
    if (!t) return;
    int V = ct_model_config(m)->vocab_size;
    float *lg = malloc((size_t)b->N * V * sizeof(float));
    ct__tm_batch tb = tm_batch(b);
    CHECK_OK(ct__tm_run(t, &tb, 1.0f, 0, lg, NULL));
    ct_mfile f;
    CHECK_OK(ct__mfile_open(&f, pathf("%s.lora.logits.f32", name)));
    CHECK_EQ_INT(f.size, (size_t)b->N * V * 4);
    if (f.size == (size_t)b->N * V * 4) {
        double md = 0, mr = 0;
        for (size_t i = 0; i < (size_t)b->N * V; i++) {
            float r;
            memcpy(&r, f.data + 4 * i, 4);
            if (fabs(lg[i] - r) > md) md = fabs(lg[i] - r);
            if (fabs(r) > mr) mr = fabs(r);
        }
        printf("  %-28s max diff %.2e of max |logit| %.2f\n", "lora logits (eval)", md, mr);
        CHECK(md <= TOL_LOGIT * mr);
    }
    ct__mfile_close(&f);
    free(lg);
    ct__tm_free(t);
}

/* The training forward pass (full fine-tuning, packed sequences) gives the
 * inference forward pass's logits (one sequence at a time through the KV cache). */
static void check_vs_inference(ct_model *m, const char *name, const batch *b) {
    ct__tmodel *t = make(m, base_opts(b), NULL);
    if (!t) return;
    int V = ct_model_config(m)->vocab_size;
    float *lg = malloc((size_t)b->N * V * sizeof(float)), *li = malloc((size_t)b->N * V * sizeof(float));
    ct__tm_batch tb = tm_batch(b);
    CHECK_OK(ct__tm_run(t, &tb, 1.0f, 0, lg, NULL));
    ct_ctx *c = NULL;
    CHECK_OK(ct_ctx_create(m, 64, 1, &c));
    double md = 0, mr = 0;
    for (int s = 0; c && s < b->n_seq; s++) {
        ct_ctx_reset(c);
        int n = b->seq[s + 1] - b->seq[s];
        CHECK_OK(ct_ctx_forward(c, b->ids + b->seq[s], n, li + (size_t)b->seq[s] * V, 1));
    }
    for (size_t i = 0; i < (size_t)b->N * V; i++) {
        if (fabs(lg[i] - li[i]) > md) md = fabs(lg[i] - li[i]);
        if (fabs(li[i]) > mr) mr = fabs(li[i]);
    }
    printf("%s: training forward vs inference forward: max diff %.2e of max |logit| %.2f\n", name, md, mr);
    CHECK(md <= TOL_LOGIT * mr);
    ct_ctx_free(c);
    free(lg);
    free(li);
    ct__tm_free(t);
}

/* Ten AdamW steps as gen_train_refs.py takes them. */
static void check_traj(ct_model *m, const char *name, const batch *b, int lora) {
    const char *kind = lora ? "traj_lora" : "traj_full";
    ct__tmodel *t = make(m, base_opts(b), lora ? pathf("%s.lora", name) : NULL);
    if (!t) return;
    size_t n;
    float *p = ct__tm_params(t, &n), *g = ct__tm_grads(t);
    float *mo = calloc(n, sizeof(float)), *vo = calloc(n, sizeof(float));
    int ntab;
    const ct__tparam *tab = ct__tm_ptable(t, &ntab);
    ct__adamw_opts ao = {.lr = lora ? 1e-2f : 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                         .weight_decay = 0.01f, .sched = CT_SCHED_COSINE, .warmup = 2, .total = 10, .clip = 1.0f};
    const ct_json *rl = ref_arr(name, kind, "loss"), *rlr = ref_arr(name, kind, "lr"),
                  *rgn = ref_arr(name, kind, "grad_norm");
    CHECK(rl && rlr && rgn && rl->u.arr.n == 10);
    ct__tm_batch tb = tm_batch(b);
    double worst = 0;
    for (int s = 0; s < 10 && rl && rlr && rgn; s++) {
        double loss;
        ct__tm_zero_grad(t);
        CHECK_OK(ct__tm_run(t, &tb, 1.0f / b->n_targets, 1, NULL, &loss));
        loss /= b->n_targets;
        double norm = ct__grad_norm(g, n);
        float lr = ct__lr_at(&ao, s);
        if (lora) { /* LoRA: clipping as a separate pass; full: fused into the update */
            ct__grad_clip(g, n, norm, ao.clip);
            ct__adamw_update(p, g, mo, vo, tab, ntab, &ao, lr, s + 1, 1.0f);
        } else {
            ct__adamw_update(p, g, mo, vo, tab, ntab, &ao, lr, s + 1, ct__clip_scale(norm, ao.clip));
        }
        double rel = fabs(loss - rl->u.arr.items[s].u.num) / fabs(rl->u.arr.items[s].u.num);
        if (rel > worst) worst = rel;
        CHECK(rel <= TOL_TRAJ_LOSS);
        CHECK(fabs(lr - rlr->u.arr.items[s].u.num) <= 1e-6 * ao.lr);
        CHECK(fabs(norm - rgn->u.arr.items[s].u.num) <= 1e-3 * rgn->u.arr.items[s].u.num);
    }
    double fl;
    CHECK_OK(ct__tm_run(t, &tb, 1.0f, 0, NULL, &fl));
    fl /= b->n_targets;
    double rf = ref_num(name, kind, "final_loss");
    printf("%s %s: 10 steps, worst loss rel diff %.2e, final loss %.6f ref %.6f\n", name, kind, worst, fl, rf);
    CHECK(fabs(fl - rf) <= TOL_TRAJ_LOSS * fabs(rf));
    /* the trained result as the ecosystem's files, with the logits they must
     * give (tests/golden/check_ctune_outputs.py loads them in PEFT/transformers) */
    const char *out = getenv("CTUNE_TRAIN_OUT_DIR");
    if (out) {
        char dir[1024], lp[1100];
        snprintf(dir, sizeof dir, "%s/%s.ctune_%s", out, name, lora ? "lora" : "full");
        CHECK_OK(lora ? ct__lora_save(t, dir, pathf("%s", name)) : ct__save_full(t, dir));
        int V = ct_model_config(m)->vocab_size;
        float *lg = malloc((size_t)b->N * V * sizeof(float));
        CHECK_OK(ct__tm_run(t, &tb, 1.0f, 0, lg, NULL));
        snprintf(lp, sizeof lp, "%s.logits.f32", dir);
        FILE *f = fopen(lp, "wb");
        CHECK(f && fwrite(lg, sizeof(float), (size_t)b->N * V, f) == (size_t)b->N * V);
        if (f) fclose(f);
        free(lg);
    }
    char what[64];
    snprintf(what, sizeof what, "%s %s weights", name, kind);
    cmp_tensors(t, p, pathf(lora ? "%s.traj_lora.final.safetensors" : "%s.traj_full.final.safetensors", name),
                TOL_TRAJ_W, what);
    free(mo);
    free(vo);
    ct__tm_free(t);
}

int main(void) {
    g_dir = getenv("CTUNE_TRAIN_REF_DIR");
    if (!g_dir) {
        printf("SKIP: CTUNE_TRAIN_REF_DIR not set (run tests/e2e/test_train_ref.sh)\n");
        return 77;
    }
    batch b;
    if (!load_batch(&b)) return 1;
    char *text;
    size_t len;
    if (ct__read_file(pathf("%s", "refs.json"), &text, &len) || ct__json_parse(text, len, "refs.json", &g_refs)) {
        fprintf(stderr, "refs.json: %s\n", ct_errmsg());
        return 1;
    }
    free(text);
    const char *models[] = {"llama", "llama_tied", "qwen2", "gpt2"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        const char *nm = models[i];
        ct_model *m = NULL;
        CHECK_OK(ct_model_load(pathf("%s", nm), NULL, &m));
        if (!m) continue;
        check_vs_inference(m, nm, &b);
        check_step(m, nm, &b, "full", NULL, pathf("%s.full.grads.safetensors", nm), 0);
        check_step(m, nm, &b, "lora", pathf("%s.lora", nm), pathf("%s.lora.grads.safetensors", nm), 0);
        check_lora_logits(m, nm, &b);
        if (strcmp(nm, "llama") == 0) {
            check_step(m, nm, &b, "rslora", pathf("%s.rslora", nm), pathf("%s.rslora.grads.safetensors", nm), 0);
            check_step(m, nm, &b, "full", NULL, pathf("%s.full.grads.safetensors", nm), 1);
        }
        if (strcmp(nm, "llama") == 0 || strcmp(nm, "gpt2") == 0) {
            check_step(m, nm, &b, "full", NULL, pathf("%s.full.grads.safetensors", nm), 2);
            check_step(m, nm, &b, "lora", pathf("%s.lora", nm), pathf("%s.lora.grads.safetensors", nm), 2);
            check_traj(m, nm, &b, 0);
            check_traj(m, nm, &b, 1);
        }
        ct_model_free(m);
    }
    ct__json_free(g_refs);
    return ct_check_done("test_train_ref");
}
