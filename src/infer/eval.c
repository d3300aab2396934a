/* src/infer/eval.c — perplexity with sliding windows (docs/eval.md).
 *
 * Window w covers tokens [w*stride, min(w*stride + ctx, n)). Within a window,
 * the logits at row i predict token i+1. Each window scores the targets that
 * no earlier window scored (from the previous window's end on, and never the
 * window's first token, which has no context in it); token 0 is never a
 * target. This is the scheme of Hugging Face's "Perplexity of fixed-length
 * models" guide (labels of already-scored tokens set to -100). Each window
 * runs from an empty cache: its context prefix goes through the model without
 * logits, its scored part in chunks whose logits fit a bounded buffer.
 * -log p is computed in double from a max-shifted log-sum-exp.
 * Leaves out: batching several windows at once, bits-per-byte.
 */
#include <math.h>
#include <stdlib.h>
#include "core/internal.h"
#include "ctune/generate.h"
#include "model/model_internal.h"

enum { LOGIT_BUDGET = 8 << 20 }; /* floats of logits held at once (32 MB) */

/* -log softmax(row)[target] */
static double nll_row(const float *row, int V, int32_t target) {
    float mx = row[0];
    for (int i = 1; i < V; i++)
        if (row[i] > mx) mx = row[i];
    double s = 0.0;
    for (int i = 0; i < V; i++) s += exp((double)row[i] - mx);
    return -((double)row[target] - mx - log(s));
}

/* Score targets [t0, end) of the window starting at `start`. */
static ct_status eval_window(ct_ctx *c, const int32_t *tok, int start, int t0, int end, float *logits, int R,
                             ct_eval_result *res) {
    const int V = c->m->cfg.vocab_size;
    ct_ctx_reset(c);
    /* context before the first scored prediction: rows start .. t0-2 */
    int npre = t0 - 1 - start;
    ct_status s = ct_ctx_forward(c, tok + start, npre, NULL, 0);
    if (s) return s;
    /* rows t0-1 .. end-2 predict targets t0 .. end-1 */
    for (int r0 = t0 - 1; r0 < end - 1; r0 += R) {
        int n = end - 1 - r0 < R ? end - 1 - r0 : R;
        if ((s = ct_ctx_forward(c, tok + r0, n, logits, 1))) return s;
        for (int i = 0; i < n; i++) {
            double l = nll_row(logits + (size_t)i * V, V, tok[r0 + i + 1]);
            if (!isfinite(l))
                return ct__err(CT_ERR_NUMERIC, "eval: -log p of token %d is %g (logits overflow?)", r0 + i + 1, l);
            res->nll_sum += l;
        }
        res->n_scored += n;
    }
    res->n_processed += end - 1 - start;
    return CT_OK;
}

ct_status ct_eval_perplexity(ct_ctx *c, const int32_t *tokens, size_t n, const ct_eval_opts *o,
                             ct_eval_result *res) {
    if (!c || !res || (!tokens && n)) return ct__err(CT_ERR_ARG, "ct_eval_perplexity: invalid arguments");
    *res = (ct_eval_result){0};
    res->n_tokens = (int64_t)n;
    if (n < 2) return ct__err(CT_ERR_ARG, "eval: need at least 2 tokens, got %zu", n);
    if (n > (size_t)INT32_MAX) return ct__err(CT_ERR_RANGE, "eval: %zu tokens is too many", n);
    int ctx = o && o->ctx > 0 ? o->ctx : ct_ctx_size(c);
    int stride = o && o->stride > 0 ? o->stride : ctx / 2;
    if (stride < 1) stride = 1;
    if (ctx < 2 || ctx > ct_ctx_size(c))
        return ct__err(CT_ERR_ARG, "eval: window of %d tokens must be in [2, %d] (the context's size)", ctx,
                       ct_ctx_size(c));
    if (stride > ctx) return ct__err(CT_ERR_ARG, "eval: stride %d exceeds the window (%d)", stride, ctx);
    const int V = c->m->cfg.vocab_size;
    int R = LOGIT_BUDGET / V;
    if (R > c->n_batch) R = c->n_batch;
    if (R < 1) R = 1;
    float *logits = ct__malloc((size_t)R * (size_t)V * sizeof(float));
    if (!logits) return ct__err(CT_ERR_NOMEM, "eval: out of memory for %d x %d logits", R, V);
    double t = ct__now();
    ct_status s = CT_OK;
    int N = (int)n, scored_end = 1;
    for (int start = 0;; start += stride) {
        int end = start + ctx < N ? start + ctx : N;
        int t0 = start + 1 > scored_end ? start + 1 : scored_end;
        if (t0 < end) {
            if ((s = eval_window(c, tokens, start, t0, end, logits, R, res))) break;
            scored_end = end;
        }
        if (end == N) break;
    }
    free(logits);
    ct_ctx_reset(c);
    res->seconds = ct__now() - t;
    if (s) return s;
    res->perplexity = res->n_scored ? exp(res->nll_sum / (double)res->n_scored) : NAN;
    return CT_OK;
}
