/* src/train/cls_train.c — ct_head_train and ct_classify (ctune/cls_train.h):
 * the data sets (ctune/classify.h) through the frozen-base features and the
 * head of src/train/cls_head.c, or label words scored by the model's own
 * head after a prompt built around each text.
 *
 * Prompts for label words are assembled from token ids: BOS (when the
 * tokenizer adds one), then for each demonstration prefix + its text + suffix
 * + its label word + "\n\n", then prefix + the text + suffix; prefix, suffix
 * and words are encoded alone, so the ids at the seams can differ from
 * encoding the whole string at once (SentencePiece's leading space).
 * Label words: the tokens all words share at their start (SentencePiece's
 * lone leading-space piece, say) join the prompt, and the first token where
 * they differ is scored (its logit: the head row dotted with the feature).
 * Leaves out: calibration of the label-word scores, scoring whole multi-token
 * words (their later tokens). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/internal.h"
#include "ctune/cls_train.h"
#include "train/cls_head.h"
#include "formats/json.h"
#include "formats/json_write.h"
#include "formats/st_write.h"
#include "train/lora_io.h"
#include "train/prompt_io.h"
#include "train/optim.h"
#include "train/plan.h"
#include "train/save_full.h"
#include "train/tmodel_internal.h"

void ct_head_train_opts_default(ct_head_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->head_only = 1;
    o->lora_r = 8;
    o->lora_alpha = 16;
    o->targets = "q,v";
    o->val_split = 0.1;
    o->data.max_len = 256;
    o->epochs = 30;
    o->batch = 32;
    o->lr = 1e-2f;
    o->weight_decay = 0.01f;
    o->patience = 5;
    o->seed = 42;
}

static ct__tm_base tm_base(ct_base_dtype b) {
    return b == CT_BASE_NF4 ? CT_TB_NF4 : b == CT_BASE_Q8 ? CT_TB_Q8 : b == CT_BASE_BF16 ? CT_TB_BF16
           : b == CT_BASE_F32 ? CT_TB_F32 : CT_TB_ASIS;
}

/* A frozen training model for texts of up to max_seq tokens. */
static ct_status frozen_model(ct_model *m, int max_seq, ct_base_dtype base, int bf16, int threads, ct__tmodel **t) {
    int rows = max_seq * 16;
    if (rows < 2048) rows = 2048;
    if (rows > 8192) rows = max_seq > 8192 ? max_seq : 8192;
    ct__tm_opts o = {.method = CT_TM_FROZEN, .base = tm_base(base), .max_rows = rows, .max_seq = max_seq,
                     .checkpointing = 1 /* forward only: one block's buffers */, .n_threads = threads, .bf16 = bf16};
    return ct__tm_create(m, &o, t);
}

static ct_status dataset_features(ct__tmodel *t, const ct_cls_dataset *d, float **feat, int **labels) {
    const size_t n = ct_cls_dataset_size(d);
    const int C = t->cfg->dim;
    ct__cls_text *ex = ct__malloc(sizeof *ex * (n ? n : 1));
    *feat = ct__malloc(sizeof(float) * (n ? n : 1) * (size_t)C);
    if (labels) *labels = ct__malloc(sizeof(int) * (n ? n : 1));
    if (!ex || !*feat || (labels && !*labels)) {
        free(ex);
        return ct__err(CT_ERR_NOMEM, "classification: out of memory for %zu features", n);
    }
    for (size_t i = 0; i < n; i++) {
        ct_cls_example e = ct_cls_dataset_get(d, i);
        ex[i] = (ct__cls_text){e.ids, e.n};
        if (labels) (*labels)[i] = e.label;
    }
    ct_status s = ct__cls_features(t, ex, n, *feat);
    free(ex);
    return s;
}

static int longest(const ct_cls_dataset *d) {
    ct_cls_stats st;
    ct_cls_dataset_stats(d, &st);
    return st.max_tokens;
}

/* One pass of LoRA + head over examples idx[0..n) of d in micro-batches of
 * B examples: backward (train) or not; the loss sum; pred (n) when not NULL. */
static ct_status lora_pass(ct__tmodel *t, const ct_cls_dataset *d, const size_t *idx, size_t n, int B, int train,
                           const ct__adamw_opts *ao, float *mom, float *vel, long *step, double *loss, int *pred) {
    const int R = t->o.max_rows, K = t->o.cls_labels;
    int32_t *ids = ct__malloc(sizeof(int32_t) * (size_t)R), *tg = ct__malloc(sizeof(int32_t) * (size_t)R);
    int32_t *seq = ct__malloc(sizeof(int32_t) * ((size_t)B + 2));
    float *lg = ct__malloc(sizeof(float) * (size_t)B * K);
    ct_status s = (!ids || !tg || !seq || !lg) ? ct__err(CT_ERR_NOMEM, "out of memory") : CT_OK;
    *loss = 0;
    for (size_t i = 0; i < n && !s;) {
        int N = 0, ns = 0;
        size_t first = i;
        seq[0] = 0;
        while (i < n && ns < B) {
            ct_cls_example e = ct_cls_dataset_get(d, idx ? idx[i] : i);
            if (N + e.n > R) break;
            memcpy(ids + N, e.ids, sizeof(int32_t) * (size_t)e.n);
            for (int j = 0; j < e.n; j++) tg[N + j] = -1;
            tg[N + e.n - 1] = e.label; /* the last token's state decides */
            N += e.n;
            seq[++ns] = N;
            i++;
        }
        ct__tm_batch b = {.ids = ids, .targets = tg, .seq = seq, .N = N, .n_seq = ns};
        double ls;
        if (train) ct__tm_zero_grad(t);
        if ((s = ct__tm_run(t, &b, 1.0f / (float)ns, train, lg, &ls))) break;
        *loss += ls;
        if (pred)
            for (int q = 0; q < ns; q++) {
                int best = 0;
                for (int k = 1; k < K; k++)
                    if (lg[q * K + k] > lg[q * K + best]) best = k;
                pred[first + (size_t)q] = best;
            }
        if (train) {
            size_t np;
            int ntab;
            float *p = ct__tm_params(t, &np);
            const ct__tparam *tab = ct__tm_ptable(t, &ntab);
            ct__adamw_update(p, ct__tm_grads(t), mom, vel, tab, ntab, ao, ao->lr, ++*step, 1.0f);
        }
    }
    free(ids); free(tg); free(seq); free(lg);
    return s;
}

/* LoRA on the base + the head, trained together with the classification loss. */
static ct_status train_lora_head(ct_model *m, const ct_head_train_opts *o, const ct_cls_dataset *tr,
                                 const ct_cls_dataset *va, int max_seq, ct_head_result *res) {
    const int K = ct_cls_dataset_num_labels(tr), B = o->batch > 0 ? o->batch : 8;
    ct_train_opts lo;
    ct_train_opts_default(&lo, o->method);
    lo.lora_r = o->lora_r;
    lo.lora_alpha = o->lora_alpha;
    lo.lora_dropout = 0.0f;
    lo.targets = o->targets;
    lo.base_dtype = o->base_dtype;
    lo.batch = B;
    lo.n_threads = o->n_threads;
    lo.bf16 = o->bf16;
    lo.seed = o->seed;
    lo.checkpointing = o->method == CT_METHOD_QLORA;
    ct__tm_opts to;
    ct_status s = ct__train_tm_opts(&lo, &m->cfg, max_seq, &to);
    if (s) return s;
    to.cls_labels = K;
    ct__tmodel *t = NULL;
    if ((s = ct__tm_create(m, &to, &t))) return s;
    size_t np, ntr = ct_cls_dataset_size(tr), nva = va ? ct_cls_dataset_size(va) : 0;
    float *p = ct__tm_params(t, &np);
    float *mom = ct__calloc(np ? np : 1, sizeof(float)), *vel = ct__calloc(np ? np : 1, sizeof(float));
    float *best = ct__malloc(sizeof(float) * (np ? np : 1));
    size_t *perm = ct__malloc(sizeof(size_t) * (ntr ? ntr : 1));
    int *pred = ct__malloc(sizeof(int) * (nva ? nva : 1)), *gold = ct__malloc(sizeof(int) * (nva ? nva : 1));
    if (!mom || !vel || !best || !perm || !pred || !gold) s = ct__err(CT_ERR_NOMEM, "out of memory");
    int ntab;
    ct__tm_ptable(t, &ntab);
    int64_t trainable = 0;
    const ct__tparam *tab = ct__tm_ptable(t, &ntab);
    for (int i = 0; i < ntab; i++) trainable += (int64_t)tab[i].n;
    res->trainable = trainable;
    const int E = o->epochs > 0 ? o->epochs : 3;
    ct__adamw_opts ao = {.lr = o->lr > 0 ? o->lr : 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                         .weight_decay = o->weight_decay, .sched = CT_SCHED_CONSTANT, .total = 1 << 30, .clip = 0};
    for (size_t i = 0; i < nva && !s; i++) gold[i] = ct_cls_dataset_get(va, i).label;
    for (size_t i = 0; i < ntr; i++) perm[i] = i;
    long step = 0;
    ct__best bt;
    ct__best_init(&bt, o->patience, o->early_stop_loss);
    if (!s) memcpy(best, p, sizeof(float) * np);
    const double t0 = ct__now();
    for (int e = 1; e <= E && !s; e++) {
        ct_data_permutation(ntr, o->seed * 1000003ULL + (uint64_t)e, perm);
        double tl;
        if ((s = lora_pass(t, tr, perm, ntr, B, 1, &ao, mom, vel, &step, &tl, NULL))) break;
        res->train_loss = tl / (double)ntr;
        res->epochs_run = e;
        if (!va) { memcpy(best, p, sizeof(float) * np); res->best_epoch = e; continue; }
        double vl;
        if ((s = lora_pass(t, va, NULL, nva, B, 0, &ao, mom, vel, &step, &vl, pred))) break;
        size_t ok = 0;
        for (size_t i = 0; i < nva; i++) ok += pred[i] == gold[i];
        const double acc = (double)ok / (double)nva;
        vl /= (double)nva;
        if (!o->quiet)
            fprintf(stderr, "%s+head epoch %d/%d  train loss %.4f  val loss %.4f  val acc %.4f\n",
                    o->method == CT_METHOD_FULL ? "full" : "lora", e, E, res->train_loss, vl, acc);
        const int u = ct__best_update(&bt, acc, vl);
        if (u < 0) break;
        if (u) {
            memcpy(best, p, sizeof(float) * np);
            res->best_epoch = e;
            res->val_loss = vl;
            res->val_accuracy = acc;
        }
    }
    res->train_seconds = ct__now() - t0;
    if (!s) {
        memcpy(p, best, sizeof(float) * np);
        if (va) { /* macro-F1 of the kept parameters */
            double vl;
            ct_cls_metrics mt;
            memset(&mt, 0, sizeof mt);
            s = lora_pass(t, va, NULL, nva, B, 0, &ao, mom, vel, &step, &vl, pred);
            if (!s && !(s = ct_cls_metrics_compute(gold, pred, nva, K, &mt))) res->val_macro_f1 = mt.macro_f1;
            ct_cls_metrics_deinit(&mt);
        }
    }
    if (!s && o->method == CT_METHOD_FULL) /* transformers' *ForSequenceClassification directory */
        s = ct__save_full_cls(t, o->out_dir, ct_cls_dataset_labels(tr));
    else if (!s) s = ct__lora_save(t, o->out_dir, m->path);
    if (!s) s = ct__head_save(o->out_dir, NULL, K, m->cfg.dim, ct_cls_dataset_labels(tr), m->path);
    free(mom); free(vel); free(best); free(perm); free(pred); free(gold);
    ct__tm_free(t);
    return s;
}

static ct_status train_prompt_cls(ct_model *m, const ct_head_train_opts *o, const ct_cls_dataset *tr,
                                  const ct_cls_dataset *va, ct_head_result *res);

ct_status ct_head_train(ct_model *m, const ct_head_train_opts *o, ct_head_result *res) {
    ct_head_result dummy;
    if (!res) res = &dummy;
    memset(res, 0, sizeof *res);
    res->val_loss = res->val_accuracy = res->val_macro_f1 = NAN;
    if (!m || !o || !o->data_path || !o->out_dir) return ct__err(CT_ERR_ARG, "ct_head_train: model, data or output missing");
    ct_tokenizer *tok = ct_model_tokenizer(m);
    if (!tok) return ct__err(CT_ERR_ARG, "%s has no tokenizer (needed to read the data)", m->path);
    ct_cls_dataset *all = NULL, *tr = NULL, *va = NULL;
    ct__tmodel *t = NULL;
    float *F = NULL, *Fv = NULL, *W = NULL;
    int *y = NULL, *yv = NULL, *pred = NULL;
    ct_cls_metrics mt;
    memset(&mt, 0, sizeof mt);
    ct_status s = ct_cls_dataset_load(o->data_path, tok, &o->data, &all);
    if (s) goto done;
    if (o->val_path) {
        tr = all;
        all = NULL;
        s = ct_cls_dataset_load_labels(o->val_path, tok, &o->data, ct_cls_dataset_labels(tr),
                                       ct_cls_dataset_num_labels(tr), &va);
    } else if (o->val_split > 0) {
        s = ct_cls_dataset_split(all, o->val_split, o->seed, &tr, &va);
    } else {
        tr = all;
        all = NULL;
    }
    if (s) goto done;
    const int K = ct_cls_dataset_num_labels(tr), C = m->cfg.dim;
    int ms = longest(tr);
    if (va && longest(va) > ms) ms = longest(va);
    if (!o->quiet) {
        char sum[512];
        ct_cls_dataset_summary(tr, sum, sizeof sum);
        fprintf(stderr, "train: %s\n", sum);
        if (va) {
            ct_cls_dataset_summary(va, sum, sizeof sum);
            fprintf(stderr, "val:   %s\n", sum);
        }
    }
    res->n_train = ct_cls_dataset_size(tr);
    res->n_val = va ? ct_cls_dataset_size(va) : 0;
    res->n_labels = K;
    {
        ct_cls_stats st0;
        ct_cls_dataset_stats(tr, &st0);
        res->n_truncated = st0.n_truncated;
        if (va) {
            ct_cls_dataset_stats(va, &st0);
            res->n_truncated += st0.n_truncated;
        }
    }
    if (!o->head_only && (o->method == CT_METHOD_LORA || o->method == CT_METHOD_QLORA || o->method == CT_METHOD_FULL)) {
        s = train_lora_head(m, o, tr, va, ms, res);
        goto done;
    }
    if (!o->head_only && (o->method == CT_METHOD_PROMPT || o->method == CT_METHOD_PREFIX)) {
        s = train_prompt_cls(m, o, tr, va, res);
        goto done;
    }
    if ((s = frozen_model(m, ms, o->base_dtype, o->bf16, o->n_threads, &t))) goto done;
    double t0 = ct__now();
    if ((s = dataset_features(t, tr, &F, &y))) goto done;
    if (va && (s = dataset_features(t, va, &Fv, &yv))) goto done;
    res->feature_seconds = ct__now() - t0;
    res->n_train = ct_cls_dataset_size(tr);
    res->n_val = va ? ct_cls_dataset_size(va) : 0;
    res->n_labels = K;
    res->trainable = (int64_t)K * C;
    if (!o->quiet)
        fprintf(stderr, "features: %zu texts through the frozen base in %.1f s; head: %d x %d = %lld parameters\n",
                res->n_train + res->n_val, res->feature_seconds, K, C, (long long)res->trainable);
    W = ct__malloc(sizeof(float) * (size_t)K * C);
    if (!W) { s = ct__err(CT_ERR_NOMEM, "head: out of memory"); goto done; }
    ct__head_opts ho = {.epochs = o->epochs, .batch = o->batch, .lr = o->lr, .weight_decay = o->weight_decay,
                        .patience = o->patience, .on_loss = o->early_stop_loss, .seed = o->seed, .quiet = o->quiet};
    ct__head_result hr;
    t0 = ct__now();
    if ((s = ct__head_train(F, y, res->n_train, C, K, Fv, yv, res->n_val, &ho, W, &hr, t->pool))) goto done;
    res->train_seconds = ct__now() - t0;
    res->epochs_run = hr.epochs_run;
    res->best_epoch = hr.best_epoch;
    res->train_loss = hr.train_loss;
    res->val_loss = hr.val_loss;
    res->val_accuracy = hr.val_acc;
    if (va) {
        pred = ct__malloc(sizeof(int) * (res->n_val ? res->n_val : 1));
        if (!pred) { s = ct__err(CT_ERR_NOMEM, "out of memory"); goto done; }
        ct__head_predict(Fv, res->n_val, C, K, W, pred, NULL, t->pool);
        if (!(s = ct_cls_metrics_compute(yv, pred, res->n_val, K, &mt))) res->val_macro_f1 = mt.macro_f1;
        if (s) goto done;
    }
    s = ct__head_save(o->out_dir, W, K, C, ct_cls_dataset_labels(tr), m->path);
done:
    res->peak_rss_bytes = ct__peak_rss();
    ct_cls_metrics_deinit(&mt);
    free(F); free(Fv); free(W); free(y); free(yv); free(pred);
    ct__tm_free(t);
    ct_cls_dataset_free(all);
    ct_cls_dataset_free(tr);
    ct_cls_dataset_free(va);
    return s;
}

/* ---- ct_classify ------------------------------------------------------------- */

ct_status ct_head_labels(const char *head_dir, char ***labels, int *k) {
    if (!head_dir || !labels || !k) return ct__err(CT_ERR_ARG, "ct_head_labels: NULL argument");
    return ct__head_read_labels(head_dir, labels, k);
}

static ct_status seqcls_labels(const ct_model *m, char ***out);

int ct_adapter_is_soft_prompt(const char *dir) { return dir && ct__is_prompt_adapter(dir); }

ct_status ct_model_labels(const ct_model *m, char ***labels, int *k) {
    if (!m || !labels || !k) return ct__err(CT_ERR_ARG, "ct_model_labels: NULL argument");
    *labels = NULL;
    *k = 0;
    if (m->cfg.num_labels <= 0)
        return ct__err(CT_ERR_ARG, "%s is not a sequence-classification checkpoint (no score head)", m->path);
    ct_status s = seqcls_labels(m, labels);
    if (!s) *k = m->cfg.num_labels;
    return s;
}

void ct_classify_labels_free(char **labels, int k) {
    if (!labels) return;
    for (int i = 0; i < k; i++) free(labels[i]);
    free(labels);
}

typedef struct {
    int32_t *ids;
    size_t n, cap;
} ibuf;

static int ib_add(ibuf *b, const int32_t *ids, size_t n) {
    if (!n) return 1; /* ids may be NULL then (an empty prefix, no demonstrations) */
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n) c *= 2;
        int32_t *p = realloc(b->ids, sizeof(int32_t) * c);
        if (!p) return 0;
        b->ids = p;
        b->cap = c;
    }
    memcpy(b->ids + b->n, ids, sizeof(int32_t) * n);
    b->n += n;
    return 1;
}

static ct_status enc(const ct_tokenizer *tok, const char *s, int32_t **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    if (!s || !*s) return CT_OK;
    return ct_tokenizer_encode(tok, s, strlen(s), 0, ids, n);
}

/* the text's ids without the BOS the data set put first */
static void text_ids(const ct_tokenizer *tok, ct_cls_example e, const int32_t **ids, int *n) {
    const int bos = ct_tokenizer_bos(tok);
    *ids = e.ids;
    *n = e.n;
    if (*n > 0 && bos >= 0 && (*ids)[0] == bos) { (*ids)++; (*n)--; }
}

/* The label-word prompts of every example of d: nv virtual rows (-1..-nv,
 * prompt tuning) first, then BOS, demonstrations, prefix, text, suffix and the
 * words' common leading tokens; word[k] the scored token of label k. */
typedef struct {
    ibuf all;
    size_t *offs;          /* (n+1) */
    ct__cls_text *ex;      /* (n) */
    size_t n;
    int32_t word[64];
    int max_seq;
} prompts;

static void prompts_free(prompts *P) {
    free(P->all.ids);
    free(P->offs);
    free(P->ex);
    memset(P, 0, sizeof *P);
}

static ct_status build_prompts(const ct_tokenizer *tok, const ct_cls_dataset *d, const ct_classify_opts *o, int nv,
                               prompts *P) {
    memset(P, 0, sizeof *P);
    const int K = o->n_labels, bos = ct_tokenizer_adds_bos(tok) ? ct_tokenizer_bos(tok) : -1;
    const int maxlen = o->max_len > 0 ? o->max_len : 512;
    const size_t n = ct_cls_dataset_size(d);
    int32_t *pre = NULL, *suf = NULL, *nl = NULL;
    size_t npre = 0, nsuf = 0, nnl = 0;
    ibuf shots = {0}, lead = {0};
    ct_status s = CT_OK;
    if (K < 2 || K > 64) return ct__err(CT_ERR_ARG, "label words: %d labels (2..64)", K);
    if ((s = enc(tok, o->prefix, &pre, &npre)) || (s = enc(tok, o->suffix ? o->suffix : "\nLabel:", &suf, &nsuf)) ||
        (s = enc(tok, "\n\n", &nl, &nnl)))
        goto done;
    /* the words' common leading tokens (SentencePiece's lone space piece, say) join the
       prompt; the first token where they differ is the one scored */
    int32_t *wt[64] = {0};
    size_t wn[64] = {0}, common = 0;
    for (int k = 0; k < K && !s; k++) {
        s = enc(tok, o->words[k], &wt[k], &wn[k]);
        if (!s && !wn[k]) s = ct__err(CT_ERR_ARG, "label word '%s' has no tokens", o->words[k]);
    }
    if (!s)
        for (;; common++) {
            int same = 1;
            for (int k = 0; k < K; k++) same &= common < wn[k] && wt[k][common] == wt[0][common];
            if (!same) break;
        }
    for (int k = 0; k < K && !s; k++)
        if (common >= wn[k])
            s = ct__err(CT_ERR_ARG, "label word '%s' is a token prefix of another label word; choose words that "
                        "differ", o->words[k]);
    if (!s && !ib_add(&lead, wt[0], common)) s = ct__err(CT_ERR_NOMEM, "out of memory");
    for (int k = 0; k < K; k++) {
        if (!s) P->word[k] = wt[k][common];
        free(wt[k]);
    }
    if (s) goto done;
    /* demonstrations: the first example of each class in turn */
    if (o->shots && o->n_shots > 0) {
        const size_t ns = ct_cls_dataset_size(o->shots);
        int taken = 0;
        size_t *next = ct__calloc((size_t)K, sizeof *next);
        if (!next) { s = ct__err(CT_ERR_NOMEM, "out of memory"); goto done; }
        for (int round = 0; taken < o->n_shots && round < o->n_shots; round++)
            for (int k = 0; k < K && taken < o->n_shots; k++) {
                while (next[k] < ns && ct_cls_dataset_get(o->shots, next[k]).label != k) next[k]++;
                if (next[k] >= ns) continue;
                const int32_t *ti;
                int tn;
                text_ids(tok, ct_cls_dataset_get(o->shots, next[k]++), &ti, &tn);
                if (!ib_add(&shots, pre, npre) || !ib_add(&shots, ti, (size_t)tn) || !ib_add(&shots, suf, nsuf) ||
                    !ib_add(&shots, lead.ids, lead.n) || !ib_add(&shots, &P->word[k], 1) ||
                    !ib_add(&shots, nl, nnl)) {
                    free(next);
                    s = ct__err(CT_ERR_NOMEM, "out of memory");
                    goto done;
                }
                taken++;
            }
        free(next);
    }
    const size_t fixed = (size_t)nv + (bos >= 0) + shots.n + npre + nsuf + lead.n;
    if (fixed + 1 >= (size_t)maxlen) {
        s = ct__err(CT_ERR_RANGE, "label words: the demonstrations and template take %zu tokens, more than --max-len "
                    "%d; use fewer shots or a larger --max-len", fixed, maxlen);
        goto done;
    }
    P->offs = ct__malloc(sizeof(size_t) * (n + 1));
    P->ex = ct__malloc(sizeof *P->ex * (n ? n : 1));
    if (!P->offs || !P->ex) { s = ct__err(CT_ERR_NOMEM, "out of memory"); goto done; }
    P->max_seq = 1;
    for (size_t i = 0; i < n && !s; i++) {
        const int32_t *ti;
        int tn;
        text_ids(tok, ct_cls_dataset_get(d, i), &ti, &tn);
        if ((size_t)tn > (size_t)maxlen - fixed) tn = (int)((size_t)maxlen - fixed); /* keep the start */
        P->offs[i] = P->all.n;
        for (int j = 0; j < nv && !s; j++) {
            int32_t v = -(j + 1);
            if (!ib_add(&P->all, &v, 1)) s = ct__err(CT_ERR_NOMEM, "out of memory");
        }
        int32_t b = bos;
        if (!s && ((bos >= 0 && !ib_add(&P->all, &b, 1)) || !ib_add(&P->all, shots.ids, shots.n) ||
                   !ib_add(&P->all, pre, npre) || !ib_add(&P->all, ti, (size_t)tn) || !ib_add(&P->all, suf, nsuf) ||
                   !ib_add(&P->all, lead.ids, lead.n)))
            s = ct__err(CT_ERR_NOMEM, "out of memory");
        if ((int)(P->all.n - P->offs[i]) > P->max_seq) P->max_seq = (int)(P->all.n - P->offs[i]);
    }
    if (s) goto done;
    P->offs[n] = P->all.n;
    P->n = n;
    for (size_t i = 0; i < n; i++) P->ex[i] = (ct__cls_text){P->all.ids + P->offs[i], (int)(P->offs[i + 1] - P->offs[i])};
done:
    free(pre); free(suf); free(nl); free(shots.ids); free(lead.ids);
    if (s) prompts_free(P);
    return s;
}

/* scores (n, K) of the prompts under t; pred (n) their argmax */
static ct_status score_prompts(ct__tmodel *t, const prompts *P, int K, int *pred, float *scores) {
    float *feat = ct__malloc(sizeof(float) * (P->n ? P->n : 1) * (size_t)t->cfg->dim);
    float *sc = scores ? scores : ct__malloc(sizeof(float) * (P->n ? P->n : 1) * (size_t)K);
    ct_status s = (!feat || !sc) ? ct__err(CT_ERR_NOMEM, "out of memory") : CT_OK;
    if (!s) s = ct__cls_features(t, P->ex, P->n, feat);
    if (!s) s = ct__verbalizer_scores(t, feat, P->n, P->word, K, sc);
    for (size_t i = 0; !s && i < P->n; i++) {
        int best = 0;
        for (int k = 1; k < K; k++)
            if (sc[i * K + k] > sc[i * K + best]) best = k;
        pred[i] = best;
    }
    if (sc != scores) free(sc);
    free(feat);
    return s;
}

static ct_status classify_words(ct_model *m, const ct_cls_dataset *d, const ct_classify_opts *o, int *pred,
                                float *scores, const char *prompt_dir) {
    ct_tokenizer *tok = ct_model_tokenizer(m);
    if (!tok) return ct__err(CT_ERR_ARG, "%s has no tokenizer", m->path);
    ct__tm_opts po = {0};
    ct_status s = prompt_dir ? ct__prompt_opts_from_dir(prompt_dir, &m->cfg, &po) : CT_OK;
    if (s) return s;
    prompts P;
    if ((s = build_prompts(tok, d, o, po.method == CT_TM_PROMPT ? po.n_virtual : 0, &P))) return s;
    ct__tmodel *t = NULL;
    if (prompt_dir) {
        po.max_seq = P.max_seq;
        po.max_rows = P.max_seq * 16 < 2048 ? 2048 : P.max_seq * 16;
        po.checkpointing = 1;
        po.max_seqs = po.method == CT_TM_PREFIX ? 16 : 0;
        po.n_threads = o->n_threads;
        po.bf16 = o->bf16;
        s = ct__tm_create(m, &po, &t);
        if (!s) s = ct__prompt_load(t, prompt_dir);
    } else {
        s = frozen_model(m, P.max_seq, o->base_dtype, o->bf16, o->n_threads, &t);
    }
    if (!s) s = score_prompts(t, &P, o->n_labels, pred, scores);
    ct__tm_free(t);
    prompts_free(&P);
    return s;
}

/* ---- prompt tuning for classification ----------------------------------------- */

/* Mean cross-entropy of the gold labels over the label words' logits sc (n, K). */
static double words_loss(const float *sc, const int *gold, size_t n, int K) {
    double tot = 0;
    for (size_t i = 0; i < n; i++) {
        const float *r = sc + i * (size_t)K;
        float mx = r[0];
        for (int k = 1; k < K; k++) mx = r[k] > mx ? r[k] : mx;
        double z = 0;
        for (int k = 0; k < K; k++) z += exp((double)r[k] - mx);
        tot += log(z) + mx - r[gold[i]];
    }
    return n ? tot / (double)n : NAN;
}

/* head_config.json of a prompt-tuned classifier: the labels, their words and the template */
static ct_status save_prompt_config(const char *dir, const ct_classify_opts *co, const char *base_model,
                                    const char *method) {
    char *cj = ct__path_join(dir, "head_config.json");
    if (!cj) return ct__err(CT_ERR_NOMEM, "out of memory");
    ct_jw w;
    ct__jw_init(&w, 1);
    ct__jw_obj_begin(&w);
    ct__jw_key(&w, "base_model_name_or_path");
    if (base_model) ct__jw_str(&w, base_model);
    else ct__jw_null(&w);
    ct__jw_key(&w, "labels");
    ct__jw_arr_begin(&w);
    for (int k = 0; k < co->n_labels; k++) ct__jw_str(&w, co->labels[k]);
    ct__jw_arr_end(&w);
    ct__jw_key(&w, "method");
    ct__jw_str(&w, method);
    ct__jw_key(&w, "prefix");
    ct__jw_str(&w, co->prefix ? co->prefix : "");
    ct__jw_key(&w, "suffix");
    ct__jw_str(&w, co->suffix ? co->suffix : "\nLabel:");
    ct__jw_key(&w, "task_type");
    ct__jw_str(&w, "SEQ_CLS");
    ct__jw_key(&w, "words");
    ct__jw_arr_begin(&w);
    for (int k = 0; k < co->n_labels; k++) ct__jw_str(&w, co->words[k]);
    ct__jw_arr_end(&w);
    ct__jw_obj_end(&w);
    ct_status s = ct__jw_write_file(cj, &w);
    free(cj);
    return s;
}

/* One pass over the prompts idx[0..n) (NULL: in order) in micro-batches of B:
 * the loss on the label word at each prompt's last row; training updates the
 * virtual tokens. */
static ct_status prompt_pass(ct__tmodel *t, const prompts *P, const ct_cls_dataset *d, const size_t *idx, size_t n,
                             int B, const ct__adamw_opts *ao, float *mom, float *vel, long *step, double *loss) {
    const int R = t->o.max_rows;
    int32_t *ids = ct__malloc(sizeof(int32_t) * (size_t)R), *tg = ct__malloc(sizeof(int32_t) * (size_t)R);
    int32_t *seq = ct__malloc(sizeof(int32_t) * ((size_t)B + 2));
    ct_status s = (!ids || !tg || !seq) ? ct__err(CT_ERR_NOMEM, "out of memory") : CT_OK;
    *loss = 0;
    for (size_t i = 0; i < n && !s;) {
        int N = 0, ns = 0;
        seq[0] = 0;
        while (i < n && ns < B) {
            const size_t e = idx ? idx[i] : i;
            const ct__cls_text *x = &P->ex[e];
            if (N + x->n > R) break;
            memcpy(ids + N, x->ids, sizeof(int32_t) * (size_t)x->n);
            for (int j = 0; j < x->n; j++) tg[N + j] = -1;
            tg[N + x->n - 1] = P->word[ct_cls_dataset_get(d, e).label];
            N += x->n;
            seq[++ns] = N;
            i++;
        }
        ct__tm_batch b = {.ids = ids, .targets = tg, .seq = seq, .N = N, .n_seq = ns};
        double ls;
        ct__tm_zero_grad(t);
        if ((s = ct__tm_run(t, &b, 1.0f / (float)ns, 1, NULL, &ls))) break;
        *loss += ls;
        size_t np;
        int ntab;
        float *p = ct__tm_params(t, &np);
        const ct__tparam *tab = ct__tm_ptable(t, &ntab);
        ct__adamw_update(p, ct__tm_grads(t), mom, vel, tab, ntab, ao, ao->lr, ++*step, 1.0f);
    }
    free(ids); free(tg); free(seq);
    return s;
}

static ct_status train_prompt_cls(ct_model *m, const ct_head_train_opts *o, const ct_cls_dataset *tr,
                                  const ct_cls_dataset *va, ct_head_result *res) {
    ct_tokenizer *tok = ct_model_tokenizer(m);
    const int K = ct_cls_dataset_num_labels(tr), nv = o->num_virtual_tokens > 0 ? o->num_virtual_tokens : 8;
    const int B = o->batch > 0 ? o->batch : 8, prefix = o->method == CT_METHOD_PREFIX;
    const char *what = prefix ? "prefix" : "prompt";
    if (!o->words || !o->word_labels)
        return ct__err(CT_ERR_ARG, "%s tuning for classification needs label words (--words)", what);
    if (K > 64) return ct__err(CT_ERR_ARG, "%s tuning: %d labels (at most 64)", what, K);
    const char *labs[64], *wds[64];
    for (int k = 0; k < K; k++) { /* the words in the training set's label order */
        labs[k] = ct_cls_dataset_label(tr, k);
        wds[k] = NULL;
        for (int w = 0; w < o->n_words; w++)
            if (!strcmp(o->word_labels[w], labs[k])) wds[k] = o->words[w];
        if (!wds[k]) return ct__err(CT_ERR_ARG, "--words has no word for label '%s'", labs[k]);
    }
    ct_classify_opts co = {.words = wds, .labels = labs, .n_labels = K, .prefix = o->prefix, .suffix = o->suffix,
                           .max_len = o->data.max_len > 0 ? o->data.max_len + 64 : 512};
    prompts Pt, Pv = {0};
    const int rows = prefix ? 0 : nv; /* prefix tuning adds no rows */
    ct_status s = build_prompts(tok, tr, &co, rows, &Pt);
    if (s) return s;
    if (va && (s = build_prompts(tok, va, &co, rows, &Pv))) { prompts_free(&Pt); return s; }
    int ms = Pt.max_seq > Pv.max_seq ? Pt.max_seq : Pv.max_seq;
    ct__tm_opts to = {.method = prefix ? CT_TM_PREFIX : CT_TM_PROMPT, .n_virtual = nv, .max_seq = ms,
                      .max_rows = ms * B, .max_seqs = prefix ? B : 0,
                      .prefix_hidden = prefix ? o->prefix_projection : 0, .checkpointing = 0,
                      .n_threads = o->n_threads, .bf16 = o->bf16, .seed = o->seed};
    ct__tmodel *t = NULL;
    if ((s = ct__tm_create(m, &to, &t))) { prompts_free(&Pt); prompts_free(&Pv); return s; }
    size_t np, ntr = Pt.n, nva = Pv.n;
    float *p = ct__tm_params(t, &np);
    { /* start from sampled vocabulary tokens: their embeddings (PEFT's SAMPLE_VOCAB) or, prefix
         tuning, the key/value cache they leave (the MLP, with a projection, keeps its own init) */
        int32_t vid[4096];
        const int nid = nv < 4096 ? nv : 4096;
        ct__vocab_sample(o->seed, m->cfg.vocab_size, nid, vid);
        if (!(prefix && o->prefix_projection) && (s = ct__soft_init_from_ids(t, vid, nid))) {
            ct__tm_free(t);
            prompts_free(&Pt);
            prompts_free(&Pv);
            return s;
        }
    }
    float *mom = ct__calloc(np, sizeof(float)), *vel = ct__calloc(np, sizeof(float));
    float *best = ct__malloc(sizeof(float) * np);
    size_t *perm = ct__malloc(sizeof(size_t) * (ntr ? ntr : 1));
    int *pred = ct__malloc(sizeof(int) * (nva ? nva : 1)), *gold = ct__malloc(sizeof(int) * (nva ? nva : 1));
    if (!mom || !vel || !best || !perm || !pred || !gold) s = ct__err(CT_ERR_NOMEM, "out of memory");
    {
        int ntab;
        const ct__tparam *tab = ct__tm_ptable(t, &ntab);
        res->trainable = 0;
        for (int i = 0; i < ntab; i++) res->trainable += (int64_t)tab[i].n;
    }
    const int E = o->epochs > 0 ? o->epochs : 3;
    ct__adamw_opts ao = {.lr = o->lr > 0 ? o->lr : 3e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                         .weight_decay = 0, .sched = CT_SCHED_CONSTANT, .total = 1 << 30, .clip = 0};
    for (size_t i = 0; !s && i < nva; i++) gold[i] = ct_cls_dataset_get(va, i).label;
    long step = 0;
    ct__best bt; /* validation loss: the cross-entropy over the label words' logits */
    ct__best_init(&bt, o->patience, o->early_stop_loss);
    float *vsc = ct__malloc(sizeof(float) * (nva ? nva : 1) * (size_t)K);
    if (!vsc) s = ct__err(CT_ERR_NOMEM, "out of memory");
    if (!s) memcpy(best, p, sizeof(float) * np);
    const double t0 = ct__now();
    for (int e = 1; e <= E && !s; e++) {
        ct_data_permutation(ntr, o->seed * 1000003ULL + (uint64_t)e, perm);
        double tl;
        if ((s = prompt_pass(t, &Pt, tr, perm, ntr, B, &ao, mom, vel, &step, &tl))) break;
        res->train_loss = tl / (double)ntr;
        res->epochs_run = e;
        if (!va) { memcpy(best, p, sizeof(float) * np); res->best_epoch = e; continue; }
        if ((s = score_prompts(t, &Pv, K, pred, vsc))) break;
        size_t ok = 0;
        for (size_t i = 0; i < nva; i++) ok += pred[i] == gold[i];
        const double acc = (double)ok / (double)nva, vl = words_loss(vsc, gold, nva, K);
        if (!o->quiet)
            fprintf(stderr, "%s epoch %d/%d  train loss %.4f  val loss %.4f  val acc %.4f\n", what, e, E,
                    res->train_loss, vl, acc);
        const int u = ct__best_update(&bt, acc, vl);
        if (u < 0) break;
        if (u) {
            memcpy(best, p, sizeof(float) * np);
            res->best_epoch = e;
            res->val_accuracy = acc;
            res->val_loss = vl;
        }
    }
    res->train_seconds = ct__now() - t0;
    if (!s) {
        memcpy(p, best, sizeof(float) * np);
        if (va) {
            ct_cls_metrics mt;
            memset(&mt, 0, sizeof mt);
            s = score_prompts(t, &Pv, K, pred, NULL);
            if (!s && !(s = ct_cls_metrics_compute(gold, pred, nva, K, &mt))) res->val_macro_f1 = mt.macro_f1;
            ct_cls_metrics_deinit(&mt);
        }
    }
    if (!s) s = ct__prompt_save(t, o->out_dir, m->path, "SAMPLE_VOCAB", NULL, m->path);
    if (!s) s = save_prompt_config(o->out_dir, &co, m->path, what);
    free(mom); free(vel); free(best); free(perm); free(pred); free(gold); free(vsc);
    ct__tm_free(t);
    prompts_free(&Pt);
    prompts_free(&Pv);
    return s;
}

/* A prompt-tuned classifier's words and template from head_config.json. */
static ct_status read_prompt_config(const char *dir, char ***words, int *kw, char **prefix, char **suffix) {
    char *cj = ct__path_join(dir, "head_config.json"), *text = NULL;
    size_t len = 0;
    ct_json *j = NULL;
    *words = NULL;
    *kw = 0;
    *prefix = *suffix = NULL;
    ct_status s = !cj ? ct__err(CT_ERR_NOMEM, "out of memory") : ct__read_file(cj, &text, &len);
    if (!s) s = ct__json_parse(text, len, cj, &j);
    const ct_json *w = s ? NULL : ct__json_get(j, "words");
    if (!s && (!w || w->type != CT_JSON_ARR || w->u.arr.n < 2 || w->u.arr.n > 64))
        s = ct__err(CT_ERR_FORMAT, "%s: a prompt classifier needs 'words' (one per label)", cj);
    if (!s) {
        *kw = (int)w->u.arr.n;
        *words = ct__calloc((size_t)*kw, sizeof **words);
        for (int k = 0; *words && k < *kw && !s; k++) {
            const ct_json *e = &w->u.arr.items[k];
            if (e->type != CT_JSON_STR || !((*words)[k] = ct__strdup(e->u.str.s)))
                s = ct__err(CT_ERR_FORMAT, "%s: words[%d] is not a string", cj, k);
        }
        if (!*words) s = ct__err(CT_ERR_NOMEM, "out of memory");
        const char *pf = ct__json_get_str(j, "prefix"), *sf = ct__json_get_str(j, "suffix");
        if (!s && pf) *prefix = ct__strdup(pf);
        if (!s && sf) *suffix = ct__strdup(sf);
    }
    ct__json_free(j);
    free(text);
    free(cj);
    return s;
}

/* The labels of a *ForSequenceClassification checkpoint: config.json's
 * id2label ("0": name, ...), else "0", "1", ... */
static ct_status seqcls_labels(const ct_model *m, char ***out) {
    const int K = m->cfg.num_labels;
    char **lab = ct__calloc((size_t)K, sizeof *lab);
    if (!lab) return ct__err(CT_ERR_NOMEM, "out of memory");
    char *cj = ct__is_dir(m->path) ? ct__path_join(m->path, "config.json") : NULL, *text = NULL;
    size_t len = 0;
    ct_json *j = NULL;
    const ct_json *il = NULL;
    if (cj && ct__read_file(cj, &text, &len) == CT_OK && ct__json_parse(text, len, cj, &j) == CT_OK)
        il = ct__json_get(j, "id2label");
    ct_status s = CT_OK;
    for (int k = 0; k < K && !s; k++) {
        char key[24];
        snprintf(key, sizeof key, "%d", k);
        const char *v = il ? ct__json_get_str(il, key) : NULL;
        if (!(lab[k] = ct__strdup(v ? v : key))) s = ct__err(CT_ERR_NOMEM, "out of memory");
    }
    ct__json_free(j);
    free(text);
    free(cj);
    if (s) ct_classify_labels_free(lab, K);
    else *out = lab;
    return s;
}

/* A *ForSequenceClassification checkpoint classifies with its own score head. */
static ct_status classify_seqcls(ct_model *m, const ct_cls_dataset *d, const ct_classify_opts *o, int *pred,
                                 float *scores, char ***labels_out, int *k_out) {
    const int K = m->cfg.num_labels, C = m->cfg.dim, ms = longest(d);
    char **lab = NULL;
    ct_status s = seqcls_labels(m, &lab);
    if (s) return s;
    float *W = ct__malloc(sizeof(float) * (size_t)K * C), *feat = NULL;
    ct__tmodel *t = NULL;
    if (!W) s = ct__err(CT_ERR_NOMEM, "out of memory");
    for (int k = 0; !s && k < K; k++) ct__mat_row_f32(&m->score, k, W + (size_t)k * C);
    if (!s) s = frozen_model(m, ms > 0 ? ms : 1, o->base_dtype, o->bf16, o->n_threads, &t);
    if (!s) s = dataset_features(t, d, &feat, NULL);
    if (!s) ct__head_predict(feat, ct_cls_dataset_size(d), C, K, W, pred, scores, t->pool);
    free(W);
    free(feat);
    ct__tm_free(t);
    if (s) { ct_classify_labels_free(lab, K); return s; }
    *labels_out = lab;
    *k_out = K;
    return CT_OK;
}

ct_status ct_classify(ct_model *m, const ct_cls_dataset *d, const ct_classify_opts *o, int *pred, float *scores,
                      char ***labels_out, int *k_out) {
    if (!m || !d || !o || !pred || !labels_out || !k_out) return ct__err(CT_ERR_ARG, "ct_classify: NULL argument");
    *labels_out = NULL;
    *k_out = 0;
    const size_t n = ct_cls_dataset_size(d);
    if (!o->head_dir && !o->words && m->cfg.num_labels > 0 && m->score.rows)
        return classify_seqcls(m, d, o, pred, scores, labels_out, k_out);
    if (!o->head_dir) {
        if (!o->words || !o->labels || o->n_labels < 2)
            return ct__err(CT_ERR_ARG, "classify: give a head directory or label words for 2+ labels");
        char **lab = ct__calloc((size_t)o->n_labels, sizeof *lab);
        if (!lab) return ct__err(CT_ERR_NOMEM, "out of memory");
        for (int k = 0; k < o->n_labels; k++)
            if (!(lab[k] = ct__strdup(o->labels[k]))) {
                ct_classify_labels_free(lab, o->n_labels);
                return ct__err(CT_ERR_NOMEM, "out of memory");
            }
        ct_status s = classify_words(m, d, o, pred, scores, NULL);
        if (s) { ct_classify_labels_free(lab, o->n_labels); return s; }
        *labels_out = lab;
        *k_out = o->n_labels;
        return CT_OK;
    }
    float *W = NULL, *feat = NULL;
    char **lab = NULL;
    int K = 0;
    char *ac = ct__path_join(o->head_dir, "adapter_config.json");
    const int adapter = ac && ct__file_exists(ac);
    free(ac);
    if (adapter && ct__is_prompt_adapter(o->head_dir) && o->words) { /* a prompt/prefix language-model adapter
                                                                         under the caller's label words */
        if (!o->labels || o->n_labels < 2) return ct__err(CT_ERR_ARG, "classify: label words for 2+ labels");
        char **lw = ct__calloc((size_t)o->n_labels, sizeof *lw);
        ct_status s = lw ? CT_OK : ct__err(CT_ERR_NOMEM, "out of memory");
        for (int k = 0; !s && k < o->n_labels; k++)
            if (!(lw[k] = ct__strdup(o->labels[k]))) s = ct__err(CT_ERR_NOMEM, "out of memory");
        if (!s) s = classify_words(m, d, o, pred, scores, o->head_dir);
        if (s) { ct_classify_labels_free(lw, o->n_labels); return s; }
        *labels_out = lw;
        *k_out = o->n_labels;
        return CT_OK;
    }
    if (adapter && ct__is_prompt_adapter(o->head_dir)) { /* prompt tuning: its label words, template and tokens */
        char **words = NULL, *prefix = NULL, *suffix = NULL;
        int kw = 0;
        ct_status s = ct__head_read_labels(o->head_dir, &lab, &K);
        if (!s) s = read_prompt_config(o->head_dir, &words, &kw, &prefix, &suffix);
        if (!s && kw != K) s = ct__err(CT_ERR_FORMAT, "%s/head_config.json: %d words for %d labels", o->head_dir, kw, K);
        if (!s) {
            ct_classify_opts co = *o;
            co.words = (const char *const *)words;
            co.labels = (const char *const *)lab;
            co.n_labels = K;
            co.prefix = prefix;
            co.suffix = suffix;
            co.shots = NULL;
            s = classify_words(m, d, &co, pred, scores, o->head_dir);
        }
        ct_classify_labels_free(words, kw);
        free(prefix);
        free(suffix);
        if (s) { ct_classify_labels_free(lab, K); return s; }
        *labels_out = lab;
        *k_out = K;
        return CT_OK;
    }
    const int lora = adapter;
    ct_status s = lora ? ct__head_read_labels(o->head_dir, &lab, &K) : ct__head_load(o->head_dir, m->cfg.dim, &W, &K, &lab);
    if (s) return s;
    ct__tmodel *t = NULL;
    int ms = longest(d);
    if (lora) { /* LoRA + head (SEQ_CLS): the adapter, its base and its score */
        ct__tm_opts to = {.max_seq = ms > 0 ? ms : 1, .n_threads = o->n_threads, .bf16 = o->bf16};
        if ((s = ct__lora_opts_from_dir(o->head_dir, m->cfg.arch, &to))) goto done;
        to.cls_labels = K;
        to.lora_dropout = 0;
        to.max_rows = to.max_seq * 16 < 2048 ? 2048 : to.max_seq * 16;
        if (to.max_rows > 8192) to.max_rows = to.max_seq > 8192 ? to.max_seq : 8192;
        if ((s = ct__tm_create(m, &to, &t)) || (s = ct__lora_load(t, o->head_dir))) goto done;
    } else if ((s = frozen_model(m, ms > 0 ? ms : 1, o->base_dtype, o->bf16, o->n_threads, &t))) {
        goto done;
    }
    if ((s = dataset_features(t, d, &feat, NULL))) goto done;
    ct__head_predict(feat, n, m->cfg.dim, K, lora ? t->score : W, pred, scores, t->pool);
done:
    free(W); free(feat);
    ct__tm_free(t);
    if (s) {
        ct_classify_labels_free(lab, K);
        return s;
    }
    *labels_out = lab;
    *k_out = K;
    return CT_OK;
}
