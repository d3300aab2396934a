/* src/train/cls_head.c — the frozen-base classifier (cls_head.h): features
 * at the last token, a linear head trained with AdamW on them, its files,
 * and verbalizer scores.
 *
 * Features: texts are packed end to end into micro-batches of the training
 * model (attention stays inside each text), run forward without targets (no
 * head cost), and the final norm's output at each text's last row is kept.
 * The base is frozen, so this is done once per data set; the head then
 * trains in milliseconds per epoch.
 * Head: logits (b, K) = F W^T; loss = mean cross-entropy (the fused
 * ct__xent_fwd_bwd); gW = dlogits^T F; AdamW (ct__adamw_update, decay on W).
 * Leaves out: a bias (transformers' score has none), class weights, pooling
 * other than the last token (mean pooling, a CLS token). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/internal.h"
#include "core/rng.h"
#include "formats/json.h"
#include "formats/json_write.h"
#include "formats/loaders.h"
#include "formats/st_write.h"
#include "tensor/gemm.h"
#include "train/cls_head.h"
#include "train/optim.h"
#include "train/tkernels.h"
#include "train/tmodel_internal.h"

void ct__best_init(ct__best *b, int patience, int on_loss) {
    *b = (ct__best){.acc = -1, .loss = INFINITY, .patience = patience, .on_loss = on_loss};
}

int ct__best_update(ct__best *b, double acc, double loss) {
    const int better = b->on_loss ? loss < b->loss || (loss == b->loss && acc > b->acc)
                                  : acc > b->acc || (acc == b->acc && loss < b->loss);
    if (better) {
        b->acc = acc;
        b->loss = loss;
        b->bad = 0;
        return 1;
    }
    return b->patience > 0 && ++b->bad >= b->patience ? -1 : 0;
}

ct_status ct__cls_features(ct__tmodel *t, const ct__cls_text *ex, size_t n_ex, float *feat) {
    const int C = t->cfg->dim, R = t->o.max_rows, S = t->o.max_seq;
    const int MS = t->o.max_seqs > 0 ? t->o.max_seqs : R; /* prefix tuning's bound */
    int32_t *ids = ct__malloc(sizeof(int32_t) * (size_t)R), *tg = ct__malloc(sizeof(int32_t) * (size_t)R);
    int32_t *seq = ct__malloc(sizeof(int32_t) * ((size_t)R + 1));
    if (!ids || !tg || !seq) {
        free(ids); free(tg); free(seq);
        return ct__err(CT_ERR_NOMEM, "features: out of memory");
    }
    for (int i = 0; i < R; i++) tg[i] = -1;
    ct_status s = CT_OK;
    for (size_t i = 0; i < n_ex && !s;) {
        int N = 0, ns = 0;
        size_t first = i;
        seq[0] = 0;
        while (i < n_ex && N + ex[i].n <= R && ns < MS) {
            if (ex[i].n <= 0 || ex[i].n > S) {
                s = ct__err(CT_ERR_ARG, "features: text %zu has %d tokens (1..%d allowed)", i, ex[i].n, S);
                break;
            }
            memcpy(ids + N, ex[i].ids, sizeof(int32_t) * (size_t)ex[i].n);
            N += ex[i].n;
            seq[++ns] = N;
            i++;
        }
        if (s) break;
        if (ns == 0) { s = ct__err(CT_ERR_ARG, "features: text %zu longer than a micro-batch", i); break; }
        ct__tm_batch b = {.ids = ids, .targets = tg, .seq = seq, .N = N, .n_seq = ns};
        double loss;
        if ((s = ct__tm_run(t, &b, 1.0f, 0, NULL, &loss))) break;
        const float *hf = ct__tm_final_hidden(t);
        for (int q = 0; q < ns; q++)
            memcpy(feat + (first + (size_t)q) * C, hf + (size_t)(seq[q + 1] - 1) * C, sizeof(float) * (size_t)C);
    }
    free(ids); free(tg); free(seq);
    return s;
}

double ct__head_loss(const float *F, const int *y, size_t n, int C, int K, const float *W, float *gW, float *logits,
                     ct_pool *pool) {
    if (!n) return 0.0;
    ct__sgemm(0, 1, (int)n, K, C, 1.0f, F, C, W, C, 0.0f, logits, K, pool);
    int32_t *tg = ct__malloc(sizeof(int32_t) * n);
    if (!tg) return NAN;
    for (size_t i = 0; i < n; i++) tg[i] = y[i];
    double sum = ct__xent_fwd_bwd(logits, tg, (int)n, K, 1.0f / (float)n, pool); /* logits <- dlogits */
    free(tg);
    if (gW) ct__sgemm(1, 0, K, C, (int)n, 1.0f, logits, K, F, C, 0.0f, gW, C, pool);
    return sum / (double)n;
}

void ct__head_predict(const float *F, size_t n, int C, int K, const float *W, int *pred, float *probs,
                      ct_pool *pool) {
    float *lg = ct__malloc(sizeof(float) * (n ? n : 1) * (size_t)K);
    if (!lg) {
        for (size_t i = 0; i < n; i++) pred[i] = -1;
        return;
    }
    if (n) ct__sgemm(0, 1, (int)n, K, C, 1.0f, F, C, W, C, 0.0f, lg, K, pool);
    for (size_t i = 0; i < n; i++) {
        const float *l = lg + i * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (l[k] > l[best]) best = k;
        pred[i] = best;
        if (probs) {
            double z = 0;
            for (int k = 0; k < K; k++) z += exp((double)l[k] - l[best]);
            for (int k = 0; k < K; k++) probs[i * K + k] = (float)(exp((double)l[k] - l[best]) / z);
        }
    }
    free(lg);
}

/* accuracy and mean loss of W on (F, y) */
static void evaluate(const float *F, const int *y, size_t n, int C, int K, const float *W, float *logits, int *pred,
                     double *loss, double *acc, ct_pool *pool) {
    *loss = ct__head_loss(F, y, n, C, K, W, NULL, logits, pool);
    ct__head_predict(F, n, C, K, W, pred, NULL, pool);
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) ok += pred[i] == y[i];
    *acc = n ? (double)ok / (double)n : NAN;
}

ct_status ct__head_train(const float *F, const int *y, size_t n, int C, int K, const float *Fv, const int *yv,
                         size_t nv, const ct__head_opts *o, float *W, ct__head_result *res, ct_pool *pool) {
    if (!n || K < 2 || C <= 0) return ct__err(CT_ERR_ARG, "head: need examples, 2+ classes and features");
    const int B = o->batch > 0 ? o->batch : 32, E = o->epochs > 0 ? o->epochs : 30;
    const size_t nw = (size_t)K * C, big = n > nv ? n : nv;
    float *gW = ct__calloc(nw, sizeof(float)), *m = ct__calloc(nw, sizeof(float)), *v = ct__calloc(nw, sizeof(float));
    float *best = ct__malloc(sizeof(float) * nw), *Fb = ct__malloc(sizeof(float) * (size_t)B * C);
    float *lg = ct__malloc(sizeof(float) * big * (size_t)K);
    int *yb = ct__malloc(sizeof(int) * (size_t)B), *pred = ct__malloc(sizeof(int) * big);
    size_t *perm = ct__malloc(sizeof(size_t) * n);
    ct_status s = CT_OK;
    if (!gW || !m || !v || !best || !Fb || !lg || !yb || !pred || !perm) {
        s = ct__err(CT_ERR_NOMEM, "head: out of memory");
        goto done;
    }
    ct__rng rng;
    ct__rng_seed(&rng, o->seed ? o->seed : 42);
    for (size_t i = 0; i < nw; i++) W[i] = (float)(0.02 * ct__rng_normal(&rng));
    ct__tparam tab = {.ndim = 2, .shape = {K, C}, .off = 0, .n = nw, .decay = 1};
    snprintf(tab.name, sizeof tab.name, "score.weight");
    const int steps_per_epoch = (int)((n + (size_t)B - 1) / (size_t)B);
    ct__adamw_opts ao = {.lr = o->lr > 0 ? o->lr : 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                         .weight_decay = o->weight_decay >= 0 ? o->weight_decay : 0.01f, .sched = CT_SCHED_CONSTANT,
                         .total = E * steps_per_epoch, .clip = 0.0f};
    ct__best bt;
    ct__best_init(&bt, o->patience, o->on_loss);
    long step = 0;
    res->best_epoch = 0;
    res->val_loss = res->val_acc = NAN;
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (int e = 1; e <= E; e++) {
        ct__rng_shuffle(&rng, perm, n);
        double tot = 0;
        for (size_t b0 = 0; b0 < n; b0 += (size_t)B) {
            const size_t nb = n - b0 < (size_t)B ? n - b0 : (size_t)B;
            for (size_t q = 0; q < nb; q++) {
                memcpy(Fb + q * C, F + perm[b0 + q] * C, sizeof(float) * (size_t)C);
                yb[q] = y[perm[b0 + q]];
            }
            tot += ct__head_loss(Fb, yb, nb, C, K, W, gW, lg, pool) * (double)nb;
            ct__adamw_update(W, gW, m, v, &tab, 1, &ao, ao.lr, ++step, 1.0f);
        }
        res->train_loss = tot / (double)n;
        res->epochs_run = e;
        if (!nv) {
            memcpy(best, W, sizeof(float) * nw);
            res->best_epoch = e;
            continue;
        }
        double vl, va;
        evaluate(Fv, yv, nv, C, K, W, lg, pred, &vl, &va, pool);
        if (!o->quiet)
            fprintf(stderr, "head epoch %d/%d  train loss %.4f  val loss %.4f  val acc %.4f\n", e, E, res->train_loss, vl,
                    va);
        const int u = ct__best_update(&bt, va, vl);
        if (u < 0) break;
        if (u) {
            memcpy(best, W, sizeof(float) * nw);
            res->best_epoch = e;
            res->val_loss = vl;
            res->val_acc = va;
        }
    }
    memcpy(W, best, sizeof(float) * nw);
done:
    free(gW); free(m); free(v); free(best); free(Fb); free(lg); free(yb); free(pred); free(perm);
    return s;
}

/* ---- files --------------------------------------------------------------- */

ct_status ct__head_save(const char *dir, const float *W, int K, int C, const char *const *labels,
                        const char *base_model) {
    ct_status s = ct__mkdir_p(dir);
    if (s) return s;
    char *st = ct__path_join(dir, "head.safetensors"), *cj = ct__path_join(dir, "head_config.json");
    if (!st || !cj) {
        free(st); free(cj);
        return ct__err(CT_ERR_NOMEM, "out of memory");
    }
    ct__st_out t = {.name = "score.weight", .dtype = CT_DT_F32, .ndim = 2, .shape = {K, C}, .src = W};
    s = W ? ct__st_write(st, &t, 1, "{\"format\":\"pt\"}") : CT_OK; /* W NULL: a LoRA adapter holds it */
    if (!s) {
        ct_jw w;
        ct__jw_init(&w, 1);
        ct__jw_obj_begin(&w);
        ct__jw_key(&w, "base_model_name_or_path");
        if (base_model) ct__jw_str(&w, base_model);
        else ct__jw_null(&w);
        ct__jw_key(&w, "hidden_size");
        ct__jw_int(&w, C);
        ct__jw_key(&w, "labels");
        ct__jw_arr_begin(&w);
        for (int k = 0; k < K; k++) ct__jw_str(&w, labels[k]);
        ct__jw_arr_end(&w);
        ct__jw_key(&w, "method");
        ct__jw_str(&w, W ? "head" : "lora");
        ct__jw_key(&w, "num_labels");
        ct__jw_int(&w, K);
        ct__jw_key(&w, "pooling");
        ct__jw_str(&w, "last_token");
        ct__jw_key(&w, "task_type");
        ct__jw_str(&w, "SEQ_CLS");
        ct__jw_obj_end(&w);
        s = ct__jw_write_file(cj, &w);
    }
    free(st); free(cj);
    return s;
}

void ct__head_free(float *W, char **labels, int K) {
    free(W);
    if (labels)
        for (int k = 0; k < K; k++) free(labels[k]);
    free(labels);
}

ct_status ct__head_read_labels(const char *dir, char ***labels_out, int *Kout) {
    *labels_out = NULL;
    *Kout = 0;
    char *cj = ct__path_join(dir, "head_config.json"), *text = NULL;
    size_t len = 0;
    ct_json *j = NULL;
    ct_status s = !cj ? ct__err(CT_ERR_NOMEM, "out of memory") : ct__read_file(cj, &text, &len);
    if (!s) s = ct__json_parse(text, len, cj, &j);
    const ct_json *lab = s ? NULL : ct__json_get(j, "labels");
    int K = 0;
    if (!s && (!lab || lab->type != CT_JSON_ARR || lab->u.arr.n < 2 || lab->u.arr.n > 1 << 16))
        s = ct__err(CT_ERR_FORMAT, "%s: 'labels' must be a list of at least 2 label strings", cj);
    char **labels = NULL;
    if (!s) {
        K = (int)lab->u.arr.n;
        labels = ct__calloc((size_t)K, sizeof *labels);
        if (!labels) s = ct__err(CT_ERR_NOMEM, "out of memory");
        for (int k = 0; !s && k < K; k++) {
            const ct_json *e = &lab->u.arr.items[k];
            if (e->type != CT_JSON_STR) s = ct__err(CT_ERR_FORMAT, "%s: labels[%d] is not a string", cj, k);
            else if (!(labels[k] = ct__strdup(e->u.str.s))) s = ct__err(CT_ERR_NOMEM, "out of memory");
        }
    }
    ct__json_free(j);
    free(text);
    free(cj);
    if (s) {
        ct__head_free(NULL, labels, K);
        return s;
    }
    *labels_out = labels;
    *Kout = K;
    return CT_OK;
}

ct_status ct__head_load(const char *dir, int C, float **Wout, int *Kout, char ***labels_out) {
    *Wout = NULL;
    char **labels = NULL;
    int K = 0;
    ct_status s = ct__head_read_labels(dir, &labels, &K);
    if (s) return s;
    if (C <= 0) { /* labels only */
        *labels_out = labels;
        *Kout = K;
        return CT_OK;
    }
    char *st = ct__path_join(dir, "head.safetensors");
    ct_tstore ts;
    ct__tstore_init(&ts);
    if (!st) s = ct__err(CT_ERR_NOMEM, "out of memory");
    if (!s) s = ct__safetensors_load(st, &ts);
    const ct_tref *r = s ? NULL : ct__tstore_find(&ts, "score.weight");
    if (!s && !r) s = ct__err(CT_ERR_FORMAT, "%s: no tensor 'score.weight'", st);
    if (!s && (r->dtype != CT_DT_F32 || r->ndim != 2 || r->shape[0] != K || r->shape[1] != C))
        s = ct__err(CT_ERR_FORMAT, "%s: score.weight is %s [%lld, %lld]; this model and label set need F32 [%d, %d] "
                    "(a head for another base model?)", st, ct_dtype_name(r->dtype), (long long)r->shape[0],
                    (long long)(r->ndim > 1 ? r->shape[1] : 0), K, C);
    float *W = s ? NULL : ct__malloc(sizeof(float) * (size_t)K * C);
    if (!s && !W) s = ct__err(CT_ERR_NOMEM, "out of memory");
    if (!s) memcpy(W, r->data, sizeof(float) * (size_t)K * C);
    ct__tstore_free(&ts);
    free(st);
    if (s) {
        ct__head_free(W, labels, K);
        return s;
    }
    *Wout = W;
    *Kout = K;
    *labels_out = labels;
    return CT_OK;
}

/* ---- verbalizers ---------------------------------------------------------- */

ct_status ct__verbalizer_scores(ct__tmodel *t, const float *feat, size_t n_ex, const int32_t *word_ids, int K,
                                float *scores) {
    const int C = t->cfg->dim, V = t->cfg->vocab_size;
    float *rows = ct__malloc(sizeof(float) * (size_t)K * C);
    if (!rows) return ct__err(CT_ERR_NOMEM, "verbalizer: out of memory");
    for (int k = 0; k < K; k++) {
        if (word_ids[k] < 0 || word_ids[k] >= V) {
            free(rows);
            return ct__err(CT_ERR_RANGE, "verbalizer: token id %d outside the vocabulary", word_ids[k]);
        }
        ct__mat_row_f32(&t->m->output, word_ids[k], rows + (size_t)k * C);
    }
    if (n_ex) ct__sgemm(0, 1, (int)n_ex, K, C, 1.0f, feat, C, rows, C, 0.0f, scores, K, t->pool);
    free(rows);
    return CT_OK;
}
