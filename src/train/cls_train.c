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
#include "train/lora_io.h"
#include "train/optim.h"
#include "train/plan.h"
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
    double best_acc = -1, best_loss = INFINITY;
    int bad = 0;
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
            fprintf(stderr, "lora+head epoch %d/%d  train loss %.4f  val loss %.4f  val acc %.4f\n", e, E,
                    res->train_loss, vl, acc);
        if (acc > best_acc || (acc == best_acc && vl < best_loss)) {
            best_acc = acc;
            best_loss = vl;
            memcpy(best, p, sizeof(float) * np);
            res->best_epoch = e;
            res->val_loss = vl;
            res->val_accuracy = acc;
            bad = 0;
        } else if (o->patience > 0 && ++bad >= o->patience) {
            break;
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
    if (!s) s = ct__lora_save(t, o->out_dir, m->path);
    if (!s) s = ct__head_save(o->out_dir, NULL, K, m->cfg.dim, ct_cls_dataset_labels(tr), m->path);
    free(mom); free(vel); free(best); free(perm); free(pred); free(gold);
    ct__tm_free(t);
    return s;
}

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
    if (!o->head_only && (o->method == CT_METHOD_LORA || o->method == CT_METHOD_QLORA)) {
        s = train_lora_head(m, o, tr, va, ms, res);
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
                        .patience = o->patience, .seed = o->seed, .quiet = o->quiet};
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

static ct_status classify_words(ct_model *m, const ct_cls_dataset *d, const ct_classify_opts *o, int *pred,
                                float *scores) {
    ct_tokenizer *tok = ct_model_tokenizer(m);
    if (!tok) return ct__err(CT_ERR_ARG, "%s has no tokenizer", m->path);
    const int K = o->n_labels, bos = ct_tokenizer_adds_bos(tok) ? ct_tokenizer_bos(tok) : -1;
    const int maxlen = o->max_len > 0 ? o->max_len : 512;
    const size_t n = ct_cls_dataset_size(d);
    int32_t *pre = NULL, *suf = NULL, *nl = NULL, word[64];
    size_t npre = 0, nsuf = 0, nnl = 0;
    ibuf shots = {0}, all = {0}, lead = {0};
    ct__cls_text *ex = NULL;
    float *feat = NULL, *sc = NULL;
    ct__tmodel *t = NULL;
    size_t *offs = NULL;
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
        if (!s) word[k] = wt[k][common];
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
                    !ib_add(&shots, lead.ids, lead.n) || !ib_add(&shots, &word[k], 1) || !ib_add(&shots, nl, nnl)) {
                    free(next);
                    s = ct__err(CT_ERR_NOMEM, "out of memory");
                    goto done;
                }
                taken++;
            }
        free(next);
    }
    const size_t fixed = (bos >= 0) + shots.n + npre + nsuf + lead.n;
    if (fixed + 1 >= (size_t)maxlen) {
        s = ct__err(CT_ERR_RANGE, "label words: the demonstrations and template take %zu tokens, more than --max-len "
                    "%d; use fewer shots or a larger --max-len", fixed, maxlen);
        goto done;
    }
    offs = ct__malloc(sizeof(size_t) * (n + 1));
    ex = ct__malloc(sizeof *ex * (n ? n : 1));
    if (!offs || !ex) { s = ct__err(CT_ERR_NOMEM, "out of memory"); goto done; }
    int ms = 1;
    for (size_t i = 0; i < n; i++) {
        const int32_t *ti;
        int tn;
        text_ids(tok, ct_cls_dataset_get(d, i), &ti, &tn);
        if ((size_t)tn > (size_t)maxlen - fixed) tn = (int)((size_t)maxlen - fixed); /* keep the start */
        offs[i] = all.n;
        int32_t b = bos;
        if ((bos >= 0 && !ib_add(&all, &b, 1)) || !ib_add(&all, shots.ids, shots.n) || !ib_add(&all, pre, npre) ||
            !ib_add(&all, ti, (size_t)tn) || !ib_add(&all, suf, nsuf) || !ib_add(&all, lead.ids, lead.n)) {
            s = ct__err(CT_ERR_NOMEM, "out of memory");
            goto done;
        }
        if ((int)(all.n - offs[i]) > ms) ms = (int)(all.n - offs[i]);
    }
    offs[n] = all.n;
    for (size_t i = 0; i < n; i++) ex[i] = (ct__cls_text){all.ids + offs[i], (int)(offs[i + 1] - offs[i])};
    if ((s = frozen_model(m, ms, o->base_dtype, o->bf16, o->n_threads, &t))) goto done;
    feat = ct__malloc(sizeof(float) * (n ? n : 1) * (size_t)m->cfg.dim);
    sc = scores ? scores : ct__malloc(sizeof(float) * (n ? n : 1) * (size_t)K);
    if (!feat || !sc) { s = ct__err(CT_ERR_NOMEM, "out of memory"); goto done; }
    if ((s = ct__cls_features(t, ex, n, feat))) goto done;
    if ((s = ct__verbalizer_scores(t, feat, n, word, K, sc))) goto done;
    for (size_t i = 0; i < n; i++) {
        int best = 0;
        for (int k = 1; k < K; k++)
            if (sc[i * K + k] > sc[i * K + best]) best = k;
        pred[i] = best;
    }
done:
    if (sc != scores) free(sc);
    free(feat); free(ex); free(offs); free(pre); free(suf); free(nl); free(shots.ids); free(all.ids); free(lead.ids);
    ct__tm_free(t);
    return s;
}

ct_status ct_classify(ct_model *m, const ct_cls_dataset *d, const ct_classify_opts *o, int *pred, float *scores,
                      char ***labels_out, int *k_out) {
    if (!m || !d || !o || !pred || !labels_out || !k_out) return ct__err(CT_ERR_ARG, "ct_classify: NULL argument");
    *labels_out = NULL;
    *k_out = 0;
    const size_t n = ct_cls_dataset_size(d);
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
        ct_status s = classify_words(m, d, o, pred, scores);
        if (s) { ct_classify_labels_free(lab, o->n_labels); return s; }
        *labels_out = lab;
        *k_out = o->n_labels;
        return CT_OK;
    }
    float *W = NULL, *feat = NULL;
    char **lab = NULL;
    int K = 0;
    char *ac = ct__path_join(o->head_dir, "adapter_config.json");
    const int lora = ac && ct__file_exists(ac);
    free(ac);
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
