/* src/model/forward.c — inference contexts and the forward pass of both
 * architectures, over a batch of T tokens at once.
 *
 * Llama family (llama, mistral, qwen2, llama2.c), per layer:
 *   x += Wo · attn(rope(Wq·rms(x) + bq), rope(Wk·rms(x) + bk), Wv·rms(x) + bv)
 *   x += Wdown · (silu(Wgate·rms(x)) * Wup·rms(x))
 * GPT-2, per layer (learned positions added to the embedding):
 *   x += Wo · attn(q, k, v) + bo          with q,k,v = split(Wqkv·ln1(x) + b)
 *   x += Wproj · gelu_tanh(Wfc·ln2(x) + bfc) + bproj
 * Every projection is one ct__matmul over the T rows (q/k/v and gate/up: one
 * ct__matmul_n each, x quantized once for them); attention runs per
 * (token, head) over the KV cache, threaded. Only the logits asked for go
 * through the output matmul. The context's memory (cache + scratch for
 * n_batch tokens) is planned and allocated once in ct_ctx_create; longer
 * inputs are processed in chunks of n_batch; forward calls allocate nothing.
 * References: transformers' modeling_llama.py / modeling_gpt2.py, llama2.c run.c.
 * Leaves out: KV cache quantization, batching of independent sequences,
 * RoPE scaling (llama3/yarn), attention/MLP biases beyond qwen2's qkv.
 */
#include <stdlib.h>
#include <string.h>
#include "model/kernels.h"
#include "model/model_internal.h"

enum { DEFAULT_BATCH = 512 };

/* ---- memory plan ------------------------------------------------------------ */

enum { B_KC, B_VC, B_X, B_XB, B_XB2, B_Q, B_HB, B_HB2, B_ATT, B_COS, B_SIN, B_COUNT };

/* Floats per buffer; returns 1 on overflow. */
static int plan_sizes(const ct_ctx *c, int nth, size_t sz[B_COUNT]) {
    const ct_config *g = &c->m->cfg;
    size_t B = (size_t)c->n_batch, N = (size_t)c->n_ctx, C = (size_t)g->dim, H = (size_t)g->hidden_dim;
    size_t qd = (size_t)c->q_dim, kv = (size_t)c->kv_dim, half = (size_t)g->head_dim / 2;
    size_t xbw = qd > C ? qd : C, t;
    int ovf = ct__mul_ovf((size_t)g->n_layers, N, &t) || ct__mul_ovf(t, kv, &sz[B_KC]);
    sz[B_VC] = sz[B_KC];
    sz[B_X] = B * C;
    sz[B_XB] = B * xbw;
    sz[B_XB2] = B * C;
    sz[B_Q] = B * qd;
    sz[B_HB] = B * H;
    sz[B_HB2] = B * H;
    sz[B_ATT] = (size_t)nth * N;
    sz[B_COS] = g->arch == CT_ARCH_LLAMA ? N * half : 0;
    sz[B_SIN] = sz[B_COS];
    return ovf;
}

ct_status ct_ctx_create(ct_model *m, int n_ctx, int n_threads, ct_ctx **out) {
    if (!out) return ct__err(CT_ERR_ARG, "ct_ctx_create: out is NULL");
    *out = NULL;
    if (!m) return ct__err(CT_ERR_ARG, "ct_ctx_create: model is NULL");
    const ct_config *g = &m->cfg;
    if (!m->output.rows)
        return ct__err(CT_ERR_UNSUPPORTED, "%s is a sequence-classification checkpoint (%d labels) without a "
                       "language-model head: use ctune classify, or the base model it was trained from",
                       m->path, g->num_labels);
    if (n_ctx <= 0) n_ctx = g->max_seq_len;
    if (g->arch == CT_ARCH_GPT2 && n_ctx > g->max_seq_len)
        return ct__err(CT_ERR_RANGE, "context of %d tokens exceeds GPT-2's %d learned positions", n_ctx,
                       g->max_seq_len);
    if (n_ctx > g->max_seq_len)
        ct__log(CT_LOG_WARN, "context %d is longer than the %d positions the model was trained on", n_ctx,
                g->max_seq_len);
    ct_ctx *c = ct__calloc(1, sizeof *c);
    if (!c) return ct__err(CT_ERR_NOMEM, "ct_ctx_create: out of memory");
    c->m = m;
    c->n_ctx = n_ctx;
    c->n_batch = n_ctx < DEFAULT_BATCH ? n_ctx : DEFAULT_BATCH;
    c->q_dim = g->n_heads * g->head_dim;
    c->kv_dim = g->n_kv_heads * g->head_dim;
    ct_status s = ct__pool_create(n_threads, &c->pool);
    if (s) { free(c); return s; }
    size_t sz[B_COUNT] = {0}, total = 0;
    int ovf = plan_sizes(c, ct__pool_size(c->pool), sz);
    for (int i = 0; i < B_COUNT && !ovf; i++) {
        size_t padded = (sz[i] + 15) & ~(size_t)15; /* keep every buffer 64-byte aligned */
        ovf |= ct__add_ovf(total, padded, &total);
    }
    if (ovf || total > SIZE_MAX / sizeof(float)) {
        ct_ctx_free(c);
        return ct__err(CT_ERR_RANGE, "context of %d tokens: KV cache size overflows", n_ctx);
    }
    c->mem_bytes = total * sizeof(float);
    c->mem = ct__alloc_big(c->mem_bytes);
    if (!c->mem) {
        ct_ctx_free(c);
        return ct__err(CT_ERR_NOMEM, "context of %d tokens: cannot allocate %.1f MB (KV cache + scratch); "
                       "try a smaller --ctx", n_ctx, (double)total * sizeof(float) / 1e6);
    }
    float **ptr[B_COUNT] = {&c->k_cache, &c->v_cache, &c->x, &c->xb, &c->xb2, &c->q, &c->hb, &c->hb2, &c->att,
                            &c->rope_cos, &c->rope_sin};
    float *p = c->mem;
    for (int i = 0; i < B_COUNT; i++) {
        *ptr[i] = p;
        p += (sz[i] + 15) & ~(size_t)15;
    }
    if (g->arch == CT_ARCH_LLAMA) ct__rope_tables(c->rope_cos, c->rope_sin, n_ctx, g->head_dim, g->rope_theta);
    *out = c;
    return CT_OK;
}

void ct_ctx_free(ct_ctx *c) {
    if (!c) return;
    ct__pool_free(c->pool);
    if (c->mem) ct__free_big(c->mem, c->mem_bytes);
    free(c);
}

void ct_ctx_reset(ct_ctx *c) { if (c) c->pos = 0; }
int ct_ctx_pos(const ct_ctx *c) { return c ? c->pos : 0; }
int ct_ctx_size(const ct_ctx *c) { return c ? c->n_ctx : 0; }

ct_status ct_ctx_truncate(ct_ctx *c, int pos) {
    if (!c) return ct__err(CT_ERR_ARG, "ct_ctx_truncate: context is NULL");
    if (pos < 0 || pos > c->pos)
        return ct__err(CT_ERR_RANGE, "ct_ctx_truncate: position %d outside [0, %d]", pos, c->pos);
    c->pos = pos; /* rows >= pos are simply overwritten later */
    return CT_OK;
}

/* ---- row-parallel elementwise stages ----------------------------------------- */

typedef struct {
    ct_ctx *c;
    const ct__layer *L;
    int l, T, stage;
} rows_ctx;

enum { ST_ATTN_NORM, ST_ROPE, ST_FFN_NORM, ST_SWIGLU, ST_GELU };

static void rows_stage(void *ctx, int r0, int r1) {
    rows_ctx *r = ctx;
    ct_ctx *c = r->c;
    const ct_config *g = &c->m->cfg;
    const ct__layer *L = r->L;
    const int C = g->dim, H = g->hidden_dim, n = r1 - r0;
    float *x = c->x + (size_t)r0 * C, *xb = c->xb + (size_t)r0 * C;
    switch (r->stage) {
    case ST_ATTN_NORM:
    case ST_FFN_NORM: {
        const float *w = r->stage == ST_ATTN_NORM ? L->attn_norm : L->ffn_norm;
        const float *b = r->stage == ST_ATTN_NORM ? L->attn_norm_b : L->ffn_norm_b;
        if (g->arch == CT_ARCH_GPT2) ct__layernorm_forward(xb, x, w, b, n, C, g->norm_eps);
        else ct__rmsnorm_forward(xb, x, w, n, C, g->norm_eps);
        break;
    }
    case ST_ROPE: {
        int pos0 = c->pos + r0;
        float *kc = c->k_cache + ((size_t)r->l * c->n_ctx + (size_t)pos0) * c->kv_dim;
        ct__rope_forward(c->q + (size_t)r0 * c->q_dim, n, c->q_dim, g->n_heads, g->head_dim, pos0, c->rope_cos,
                         c->rope_sin, g->rope_style);
        ct__rope_forward(kc, n, c->kv_dim, g->n_kv_heads, g->head_dim, pos0, c->rope_cos, c->rope_sin,
                         g->rope_style);
        break;
    }
    case ST_SWIGLU:
        ct__swiglu_forward(c->hb + (size_t)r0 * H, c->hb + (size_t)r0 * H, c->hb2 + (size_t)r0 * H, n * H);
        break;
    case ST_GELU:
        ct__gelu_forward(c->hb + (size_t)r0 * H, c->hb + (size_t)r0 * H, n * H);
        break;
    }
}

static void run_rows(ct_ctx *c, const ct__layer *L, int l, int T, int stage) {
    rows_ctx r = {c, L, l, T, stage};
    ct__parallel_rows(c->pool, T, rows_stage, &r);
}

/* ---- one layer ---------------------------------------------------------------- */

static void attention_block(ct_ctx *c, const ct__layer *L, int l, int T) {
    const ct_config *g = &c->m->cfg;
    const int C = g->dim;
    size_t layer_off = (size_t)l * c->n_ctx * c->kv_dim;
    float *kc = c->k_cache + layer_off, *vc = c->v_cache + layer_off;
    run_rows(c, L, l, T, ST_ATTN_NORM);                       /* xb: (T, C) */
    /* q: (T, q_dim); the new k, v rows go straight into the cache */
    {   /* one quantization of xb and one dispatch for the three (ct__matmul_n) */
        float *const ys[3] = {c->q, kc + (size_t)c->pos * c->kv_dim, vc + (size_t)c->pos * c->kv_dim};
        const ct_mat *const Ws[3] = {&L->wq, &L->wk, &L->wv};
        const float *const bs[3] = {L->bq, L->bk, L->bv};
        ct__matmul_n(3, ys, c->xb, Ws, bs, T, c->pool);
    }
    if (g->arch == CT_ARCH_LLAMA) run_rows(c, L, l, T, ST_ROPE);
    ct__attn_args a = {
        .out = c->xb, .q = c->q, .k = kc, .v = vc, .att = c->att, .T = T, .pos0 = c->pos,
        .NH = g->n_heads, .NKV = g->n_kv_heads, .HS = g->head_dim, .n_ctx = c->n_ctx,
        .window = g->sliding_window,
    };
    ct__attention_forward(&a, c->pool);                       /* xb: (T, q_dim) */
    ct__matmul(c->xb2, c->xb, &L->wo, L->bo, T, c->pool);    /* xb2: (T, C) */
    ct__residual_forward(c->x, c->xb2, T * C);
}

static void ffn_block(ct_ctx *c, const ct__layer *L, int l, int T) {
    const ct_config *g = &c->m->cfg;
    run_rows(c, L, l, T, ST_FFN_NORM);                        /* xb: (T, C) */
    const int llama = g->arch == CT_ARCH_LLAMA;
    /* hb: (T, H) = gate (Llama) or c_fc (GPT-2) projection */
    if (llama) { /* and hb2: (T, H) = up, sharing xb's quantization and the dispatch */
        float *const ys[2] = {c->hb, c->hb2};
        const ct_mat *const Ws[2] = {&L->w_gate, &L->w_up};
        ct__matmul_n(2, ys, c->xb, Ws, NULL, T, c->pool);
        run_rows(c, L, l, T, ST_SWIGLU);
    } else {
        ct__matmul(c->hb, c->xb, &L->w_up, L->b_up, T, c->pool);
        run_rows(c, L, l, T, ST_GELU);
    }
    ct__matmul(c->xb2, c->hb, &L->w_down, L->b_down, T, c->pool); /* xb2: (T, C) */
    ct__residual_forward(c->x, c->xb2, T * g->dim);
}

/* ---- the whole model -------------------------------------------------------------- */

void ct__forward_chunk(ct_ctx *c, const int32_t *tokens, int T, float *logits, int all_logits) {
    const ct_model *m = c->m;
    const ct_config *g = &m->cfg;
    const int C = g->dim;
    /* x: (T, C) = embedding rows (+ learned positions for GPT-2) */
    for (int t = 0; t < T; t++) {
        float *xt = c->x + (size_t)t * C;
        ct__mat_row_f32(&m->tok_emb, tokens[t], xt);
        if (g->arch == CT_ARCH_GPT2) {
            ct__mat_row_f32(&m->pos_emb, c->pos + t, c->xb);
            ct__residual_forward(xt, c->xb, C);
        }
    }
    for (int l = 0; l < g->n_layers; l++) {
        attention_block(c, &m->layers[l], l, T);
        ffn_block(c, &m->layers[l], l, T);
    }
    if (logits) {
        /* final norm and head only over the rows whose logits are wanted */
        int r0 = all_logits ? 0 : T - 1, n = T - r0;
        const float *xr = c->x + (size_t)r0 * C;
        if (g->arch == CT_ARCH_GPT2) ct__layernorm_forward(c->xb, xr, m->out_norm, m->out_norm_b, n, C, g->norm_eps);
        else ct__rmsnorm_forward(c->xb, xr, m->out_norm, n, C, g->norm_eps);
        ct__matmul(logits, c->xb, &m->output, NULL, n, c->pool); /* logits: (n, V) */
    }
    c->pos += T;
}

ct_status ct_ctx_forward(ct_ctx *c, const int32_t *tokens, int n, float *logits, int all_logits) {
    if (!c || (!tokens && n > 0) || n < 0) return ct__err(CT_ERR_ARG, "ct_ctx_forward: invalid arguments");
    if (n == 0) return CT_OK;
    if (n > c->n_ctx - c->pos)
        return ct__err(CT_ERR_RANGE, "context full: %d tokens cached + %d new exceed the context of %d", c->pos, n,
                       c->n_ctx);
    const int V = c->m->cfg.vocab_size;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= V)
            return ct__err(CT_ERR_RANGE, "token %d at index %d is outside the vocabulary [0, %d)", tokens[i], i, V);
    for (int i0 = 0; i0 < n; i0 += c->n_batch) {
        int T = n - i0 < c->n_batch ? n - i0 : c->n_batch;
        int last = i0 + T == n;
        float *lg = NULL;
        if (logits && all_logits) lg = logits + (size_t)i0 * V;
        else if (logits && last) lg = logits;
        ct__forward_chunk(c, tokens + i0, T, lg, all_logits);
    }
    return CT_OK;
}
