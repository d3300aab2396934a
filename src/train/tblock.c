/* src/train/tblock.c — the training forward and backward passes of both
 * architectures over a packed micro-batch (see tmodel.h).
 *
 * Llama family, per block (x = res[l], y = res[l+1]):
 *   h1 = rms(x); q,k,v = lin(h1); rope(q,k); att = attn(q,k,v)
 *   mid = x + o(att); h2 = rms(mid); a = silu(gate(h2)) * up(h2); y = mid + down(a)
 * GPT-2: LayerNorms, one fused c_attn, tanh-GELU MLP, biases everywhere.
 * Every linear layer is lin_fwd/lin_bwd: the base product (trainable f32 or
 * frozen stored dtype) plus LoRA's scale * B (A dropout(x)).
 * The head runs in chunks of head_rows rows: logits, fused softmax
 * cross-entropy, and (backward) its input and weight gradients at once, so
 * the (N, V) logits never exist in full.
 * With checkpointing only res[] survives the forward pass; the backward pass
 * recomputes each block's activations (same dropout masks: counter-based)
 * just before it needs them.
 * Leaves out: fused q/k/v or gate/up products for speed, a BF16 path.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "model/kernels.h"
#include "tensor/gemm.h"
#include "train/tmodel_internal.h"

/* The trainer's matmuls: exact f32, or bf16 operands with f32 accumulation. */
static void gemm(const ct__tmodel *t, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc) {
    if (t->o.bf16) ct__sgemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, t->pool);
    else ct__sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, t->pool);
}

/* splitmix64 finalizer: dropout stream per (micro-batch, block, layer) */
static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t drop_seed(const ct__tmodel *t, int l, int i) {
    return mix64(t->drop_seed ^ mix64(((uint64_t)l << 8) | (uint64_t)i));
}

/* The f32 weight of a linear layer for its input gradient: trainable copy,
 * the mapped F32 base, or the base dequantized into t->wdeq. ld: row stride. */
static const float *lin_weight(ct__tmodel *t, const ct__tlin *L, int *ld) {
    if (L->w) { *ld = L->in; return L->w; }
    return ct__mat_f32(&L->base, t->wdeq, ld);
}

static void add_bias(float *y, const float *b, int N, int out) {
    for (int i = 0; i < N; i++) {
        float *yi = y + (size_t)i * out;
        for (int j = 0; j < out; j++) yi[j] += b[j];
    }
}

/* y (N, out) = lin(x (N, in)); xa (N, r) saved for backward. */
static void lin_fwd(ct__tmodel *t, const ct__tlin *L, float *y, const float *x, float *xa, int N, uint64_t seed) {
    if (L->fused) {
        ct__qmm_xwt(y, x, &L->base, N, 0.0f, t->o.bf16, t->pool);
        if (L->b) add_bias(y, L->b, N, L->out);
    } else if (L->pk_fwd) {
        ct__sgemm_bf16_packed(0, N, L->out, L->in, 1.0f, x, L->in, L->pk_fwd, 0.0f, y, L->out, t->pool);
        if (L->b) add_bias(y, L->b, N, L->out);
    } else if (L->w) {
        gemm(t, 0, 1, N, L->out, L->in, 1.0f, x, L->in, L->w, L->in, 0.0f, y, L->out);
        if (L->b) add_bias(y, L->b, N, L->out);
    } else if (L->base.dtype == CT_DT_F32) {
        gemm(t, 0, 1, N, L->out, L->in, 1.0f, x, L->in, L->base.data, (int)(L->base.row_bytes / sizeof(float)),
                  0.0f, y, L->out);
        if (L->b) add_bias(y, L->b, N, L->out);
    } else {
        ct__matmul(y, x, &L->base, L->b, N, t->pool);
    }
    if (!L->r) return;
    const float *xd = x;
    float p = t->o.lora_dropout;
    if (t->training && p > 0) {
        ct__dropout_fwd(t->t_in, x, (size_t)N * L->in, p, seed, t->pool);
        xd = t->t_in;
    }
    gemm(t, 0, 1, N, L->r, L->in, 1.0f, xd, L->in, L->A, L->in, 0.0f, xa, L->r);
    gemm(t, 0, 1, N, L->out, L->r, t->scale, xa, L->r, L->B, L->r, 1.0f, y, L->out);
}

/* dx (N, in) (= when !acc, += when acc) from dy (N, out); parameter gradients added. */
static void lin_bwd(ct__tmodel *t, const ct__tlin *L, float *dx, int acc, const float *dy, const float *x,
                    const float *xa, int N, uint64_t seed) {
    if (L->fused) {
        ct__qmm_dyw(dx, dy, &L->base, N, acc ? 1.0f : 0.0f, t->o.bf16, t->pool);
    } else if (L->pk_bwd) {
        ct__sgemm_bf16_packed(0, N, L->in, L->out, 1.0f, dy, L->out, L->pk_bwd, acc ? 1.0f : 0.0f, dx, L->in,
                              t->pool);
    } else {
        int ld;
        const float *W = lin_weight(t, L, &ld);
        gemm(t, 0, 0, N, L->in, L->out, 1.0f, dy, L->out, W, ld, acc ? 1.0f : 0.0f, dx, L->in);
    }
    if (L->gw) gemm(t, 1, 0, L->out, L->in, N, 1.0f, dy, L->out, x, L->in, 1.0f, L->gw, L->in);
    if (L->gb) ct__bias_bwd(L->gb, dy, N, L->out, t->pool);
    if (!L->r) return;
    float p = t->o.lora_dropout;
    int drop = t->training && p > 0;
    gemm(t, 1, 0, L->out, L->r, N, t->scale, dy, L->out, xa, L->r, 1.0f, L->gB, L->r);
    gemm(t, 0, 0, N, L->r, L->out, t->scale, dy, L->out, L->B, L->r, 0.0f, t->t_r, L->r);
    const float *xd = x;
    if (drop) {
        ct__dropout_fwd(t->t_in, x, (size_t)N * L->in, p, seed, t->pool);
        xd = t->t_in;
    }
    gemm(t, 1, 0, L->r, L->in, N, 1.0f, t->t_r, L->r, xd, L->in, 1.0f, L->gA, L->in);
    if (drop) {
        gemm(t, 0, 0, N, L->in, L->r, 1.0f, t->t_r, L->r, L->A, L->in, 0.0f, t->t_in, L->in);
        ct__dropout_bwd(dx, t->t_in, (size_t)N * L->in, p, seed, t->pool);
    } else {
        gemm(t, 0, 0, N, L->in, L->r, 1.0f, t->t_r, L->r, L->A, L->in, 1.0f, dx, L->in);
    }
}

static ct__attn_shape attn_shape(const ct__tmodel *t, const ct__tm_batch *b) {
    const ct_config *g = t->cfg;
    int gpt2 = g->arch == CT_ARCH_GPT2;
    ct__attn_shape s = {.N = b->N, .n_seq = b->n_seq, .seq = b->seq, .NH = g->n_heads, .NKV = g->n_kv_heads,
                        .HS = g->head_dim, .window = gpt2 ? 0 : g->sliding_window,
                        .q_ld = t->qkv_out, .kv_ld = gpt2 ? t->qkv_out : t->kvd, .out_ld = t->qd};
    return s;
}

/* ---- prefix tuning ------------------------------------------------------------ */

/* Attention over [K prefix rows; sequence] for every sequence: the extended
 * rows, sequence s at [eseq[s], eseq[s+1]) with its prefix first. A token at
 * extended row K + i sees the K prefix keys and tokens 0..i, as transformers'
 * attention over a cache of K entries; the prefix rows' own queries are zero
 * and their outputs are dropped (their output gradient is zero, so they add
 * nothing to any gradient). */
static ct__attn_shape prefix_shape(ct__tmodel *t, const ct__tm_batch *b) {
    const ct_config *g = t->cfg;
    const int K = t->o.n_virtual;
    for (int q = 0; q <= b->n_seq; q++) t->eseq[q] = b->seq[q] + q * K;
    ct__attn_shape s = {.N = b->N + b->n_seq * K, .n_seq = b->n_seq, .seq = t->eseq, .NH = g->n_heads,
                        .NKV = g->n_kv_heads, .HS = g->head_dim,
                        .window = g->arch == CT_ARCH_GPT2 ? 0 : g->sliding_window, .q_ld = t->qd, .kv_ld = t->kvd,
                        .out_ld = t->qd};
    return s;
}

/* t->eq, ek, ev for layer l from the batch's q, k, v (row strides as->q_ld, kv_ld) and the table */
static void prefix_gather(ct__tmodel *t, int l, const ct__tm_batch *b, const float *q, const float *k,
                          const float *v, const ct__attn_shape *as) {
    const int K = t->o.n_virtual, qd = t->qd, kvd = t->kvd;
    const size_t T = 2 * (size_t)t->cfg->n_layers * kvd, fs = sizeof(float);
    for (int s = 0; s < b->n_seq; s++) {
        const int e0 = t->eseq[s];
        for (int p = 0; p < K; p++) {
            const float *kt = t->prefix + (size_t)p * T + (size_t)(2 * l) * kvd, *vt = kt + kvd;
            float *ek = t->ek + (size_t)(e0 + p) * kvd;
            memset(t->eq + (size_t)(e0 + p) * qd, 0, qd * fs);
            for (int c = 0; c < kvd; c++) ek[c] = kt[t->pfx_kmap[c]];
            memcpy(t->ev + (size_t)(e0 + p) * kvd, vt, kvd * fs);
        }
        for (int i = b->seq[s]; i < b->seq[s + 1]; i++) {
            const size_t e = (size_t)(e0 + K + i - b->seq[s]);
            memcpy(t->eq + e * qd, q + (size_t)i * as->q_ld, qd * fs);
            memcpy(t->ek + e * kvd, k + (size_t)i * as->kv_ld, kvd * fs);
            memcpy(t->ev + e * kvd, v + (size_t)i * as->kv_ld, kvd * fs);
        }
    }
}

/* Row of the extended layout holding batch row i of sequence s. */
static inline size_t ext_row(const ct__tmodel *t, const ct__tm_batch *b, int s, int i) {
    return (size_t)(t->eseq[s] + t->o.n_virtual + i - b->seq[s]);
}

static void attn_fwd(ct__tmodel *t, int l, const ct__tm_batch *b, float *att, float *probs, const float *q,
                     const float *k, const float *v, const ct__attn_shape *as) {
    if (!t->prefix) {
        ct__attention_fwd(att, probs, q, k, v, as, t->pool);
        return;
    }
    ct__attn_shape es = prefix_shape(t, b);
    prefix_gather(t, l, b, q, k, v, as);
    ct__attention_fwd(t->eo, probs, t->eq, t->ek, t->ev, &es, t->pool);
    for (int s = 0; s < b->n_seq; s++)
        for (int i = b->seq[s]; i < b->seq[s + 1]; i++)
            memcpy(att + (size_t)i * t->qd, t->eo + ext_row(t, b, s, i) * t->qd, (size_t)t->qd * sizeof(float));
}

/* dq, dk, dv (row strides as->q_ld, kv_ld) from datt; the prefix rows' key and
 * value gradients added to t->gprefix (sequences in order) */
static void attn_bwd(ct__tmodel *t, int l, const ct__tm_batch *b, float *dq, float *dk, float *dv,
                     const float *datt, const float *probs, const float *q, const float *k, const float *v,
                     const ct__attn_shape *as) {
    if (!t->prefix) {
        ct__attention_bwd(dq, dk, dv, datt, probs, q, k, v, as, t->pool);
        return;
    }
    const int K = t->o.n_virtual, qd = t->qd, kvd = t->kvd;
    const size_t T = 2 * (size_t)t->cfg->n_layers * kvd, fs = sizeof(float);
    ct__attn_shape es = prefix_shape(t, b);
    /* gathered again (the forward's copy belongs to the last layer run): a copy of
       Ne x (qd + 2 kvd) floats against the attention's Ne x len x qd products, and
       one set of extended buffers instead of one per layer */
    prefix_gather(t, l, b, q, k, v, as);
    for (int s = 0; s < b->n_seq; s++) {
        memset(t->edo + (size_t)t->eseq[s] * qd, 0, (size_t)K * qd * fs);
        for (int i = b->seq[s]; i < b->seq[s + 1]; i++)
            memcpy(t->edo + ext_row(t, b, s, i) * qd, datt + (size_t)i * qd, qd * fs);
    }
    ct__attention_bwd(t->edq, t->edk, t->edv, t->edo, probs, t->eq, t->ek, t->ev, &es, t->pool);
    for (int s = 0; s < b->n_seq; s++) {
        for (int p = 0; p < K; p++) {
            const size_t e = (size_t)(t->eseq[s] + p);
            float *gk = t->gprefix + (size_t)p * T + (size_t)(2 * l) * kvd, *gv = gk + kvd;
            const float *ek = t->edk + e * kvd, *ev = t->edv + e * kvd;
            for (int c = 0; c < kvd; c++) gk[t->pfx_kmap[c]] += ek[c];
            for (int c = 0; c < kvd; c++) gv[c] += ev[c];
        }
        for (int i = b->seq[s]; i < b->seq[s + 1]; i++) {
            const size_t e = ext_row(t, b, s, i);
            memcpy(dq + (size_t)i * as->q_ld, t->edq + e * qd, qd * fs);
            memcpy(dk + (size_t)i * as->kv_ld, t->edk + e * kvd, kvd * fs);
            memcpy(dv + (size_t)i * as->kv_ld, t->edv + e * kvd, kvd * fs);
        }
    }
}

/* PEFT's prefix_projection: table (K, T) = tanh(emb W1^T + b1) W2^T + b2 */
static void prefix_table_fwd(ct__tmodel *t) {
    if (!t->pfx_emb) return;
    const int K = t->o.n_virtual, kvd = t->kvd, E = t->o.prefix_hidden, T = 2 * t->cfg->n_layers * kvd;
    gemm(t, 0, 1, K, E, kvd, 1.0f, t->pfx_emb, kvd, t->pfx_w1, kvd, 0.0f, t->pfx_h, E);
    for (int p = 0; p < K; p++)
        for (int j = 0; j < E; j++) t->pfx_h[(size_t)p * E + j] = tanhf(t->pfx_h[(size_t)p * E + j] + t->pfx_b1[j]);
    gemm(t, 0, 1, K, T, E, 1.0f, t->pfx_h, E, t->pfx_w2, E, 0.0f, t->prefix, T);
    add_bias(t->prefix, t->pfx_b2, K, T);
}

/* The MLP's parameter gradients from the table's gradient t->gprefix. */
static void prefix_table_bwd(ct__tmodel *t) {
    if (!t->pfx_emb) return;
    const int K = t->o.n_virtual, kvd = t->kvd, E = t->o.prefix_hidden, T = 2 * t->cfg->n_layers * kvd;
    gemm(t, 1, 0, T, E, K, 1.0f, t->gprefix, T, t->pfx_h, E, 1.0f, t->gpfx_w2, E);
    ct__bias_bwd(t->gpfx_b2, t->gprefix, K, T, t->pool);
    gemm(t, 0, 0, K, E, T, 1.0f, t->gprefix, T, t->pfx_w2, E, 0.0f, t->pfx_dh, E);
    for (size_t j = 0; j < (size_t)K * E; j++) t->pfx_dh[j] *= 1.0f - t->pfx_h[j] * t->pfx_h[j];
    gemm(t, 1, 0, E, kvd, K, 1.0f, t->pfx_dh, E, t->pfx_emb, kvd, 1.0f, t->gpfx_w1, kvd);
    ct__bias_bwd(t->gpfx_b1, t->pfx_dh, K, E, t->pool);
    gemm(t, 0, 0, K, kvd, E, 1.0f, t->pfx_dh, E, t->pfx_w1, kvd, 1.0f, t->gpfx_emb, kvd);
}

/* ---- one block --------------------------------------------------------------- */

static void block_fwd(ct__tmodel *t, int l, const ct__tm_batch *b) {
    const ct_config *g = t->cfg;
    const ct__tblock *k = &t->blk[l];
    ct__tacts *A = &t->acts[l];
    const int N = b->N, C = g->dim, H = g->hidden_dim;
    const float *x = t->res + (size_t)l * N * C;
    float *y = t->res + (size_t)(l + 1) * N * C;
    ct__attn_shape as = attn_shape(t, b);
    if (g->arch == CT_ARCH_GPT2) {
        ct__layernorm_fwd(A->h1, A->mu1, A->rs1, x, k->n1w.w, k->n1b.w, N, C, g->norm_eps, t->pool);
        lin_fwd(t, &k->lin[LIN_Q], A->q, A->h1, A->xa[LIN_Q], N, drop_seed(t, l, LIN_Q));
        attn_fwd(t, l, b, A->att, A->probs, A->q, A->q + C, A->q + 2 * C, &as);
        lin_fwd(t, &k->lin[LIN_O], A->mid, A->att, A->xa[LIN_O], N, drop_seed(t, l, LIN_O));
        ct__residual_forward(A->mid, x, N * C);
        ct__layernorm_fwd(A->h2, A->mu2, A->rs2, A->mid, k->n2w.w, k->n2b.w, N, C, g->norm_eps, t->pool);
        lin_fwd(t, &k->lin[LIN_UP], A->g, A->h2, A->xa[LIN_UP], N, drop_seed(t, l, LIN_UP));
        ct__gelu_fwd(A->a, A->g, (size_t)N * H, t->pool);
    } else {
        ct__rmsnorm_fwd(A->h1, A->rs1, x, k->n1w.w, N, C, g->norm_eps, t->pool);
        lin_fwd(t, &k->lin[LIN_Q], A->q, A->h1, A->xa[LIN_Q], N, drop_seed(t, l, LIN_Q));
        lin_fwd(t, &k->lin[LIN_K], A->k, A->h1, A->xa[LIN_K], N, drop_seed(t, l, LIN_K));
        lin_fwd(t, &k->lin[LIN_V], A->v, A->h1, A->xa[LIN_V], N, drop_seed(t, l, LIN_V));
        ct__rope_apply(A->q, N, t->qd, g->n_heads, g->head_dim, t->pos, t->rope_cos, t->rope_sin, g->rope_style, 0);
        ct__rope_apply(A->k, N, t->kvd, g->n_kv_heads, g->head_dim, t->pos, t->rope_cos, t->rope_sin,
                       g->rope_style, 0);
        attn_fwd(t, l, b, A->att, A->probs, A->q, A->k, A->v, &as);
        lin_fwd(t, &k->lin[LIN_O], A->mid, A->att, A->xa[LIN_O], N, drop_seed(t, l, LIN_O));
        ct__residual_forward(A->mid, x, N * C);
        ct__rmsnorm_fwd(A->h2, A->rs2, A->mid, k->n2w.w, N, C, g->norm_eps, t->pool);
        lin_fwd(t, &k->lin[LIN_GATE], A->g, A->h2, A->xa[LIN_GATE], N, drop_seed(t, l, LIN_GATE));
        lin_fwd(t, &k->lin[LIN_UP], A->u, A->h2, A->xa[LIN_UP], N, drop_seed(t, l, LIN_UP));
        ct__swiglu_fwd(A->a, A->g, A->u, (size_t)N * H, t->pool);
    }
    lin_fwd(t, &k->lin[LIN_DOWN], y, A->a, A->xa[LIN_DOWN], N, drop_seed(t, l, LIN_DOWN));
    ct__residual_forward(y, A->mid, N * C);
}

/* t->dres: gradient of res[l+1] in, of res[l] out. */
static void block_bwd(ct__tmodel *t, int l, const ct__tm_batch *b) {
    const ct_config *g = t->cfg;
    const ct__tblock *k = &t->blk[l];
    const ct__tacts *A = &t->acts[l];
    const int N = b->N, C = g->dim, H = g->hidden_dim;
    const float *x = t->res + (size_t)l * N * C;
    float *dres = t->dres;
    ct__attn_shape as = attn_shape(t, b);
    lin_bwd(t, &k->lin[LIN_DOWN], t->dA, 0, dres, A->a, A->xa[LIN_DOWN], N, drop_seed(t, l, LIN_DOWN));
    if (g->arch == CT_ARCH_GPT2) {
        ct__gelu_bwd(t->dA, t->dA, A->g, (size_t)N * H, t->pool);
        lin_bwd(t, &k->lin[LIN_UP], t->dh, 0, t->dA, A->h2, A->xa[LIN_UP], N, drop_seed(t, l, LIN_UP));
        ct__layernorm_bwd(dres, k->n2w.g, k->n2b.g, t->dh, A->mid, k->n2w.w, A->mu2, A->rs2, N, C, t->pool);
        lin_bwd(t, &k->lin[LIN_O], t->datt, 0, dres, A->att, A->xa[LIN_O], N, drop_seed(t, l, LIN_O));
        attn_bwd(t, l, b, t->dq, t->dq + C, t->dq + 2 * C, t->datt, A->probs, A->q, A->q + C, A->q + 2 * C, &as);
        lin_bwd(t, &k->lin[LIN_Q], t->dh, 0, t->dq, A->h1, A->xa[LIN_Q], N, drop_seed(t, l, LIN_Q));
        ct__layernorm_bwd(dres, k->n1w.g, k->n1b.g, t->dh, x, k->n1w.w, A->mu1, A->rs1, N, C, t->pool);
        return;
    }
    ct__swiglu_bwd(t->dG, t->dU, t->dA, A->g, A->u, (size_t)N * H, t->pool);
    lin_bwd(t, &k->lin[LIN_GATE], t->dh, 0, t->dG, A->h2, A->xa[LIN_GATE], N, drop_seed(t, l, LIN_GATE));
    lin_bwd(t, &k->lin[LIN_UP], t->dh, 1, t->dU, A->h2, A->xa[LIN_UP], N, drop_seed(t, l, LIN_UP));
    ct__rmsnorm_bwd(dres, k->n2w.g, t->dh, A->mid, k->n2w.w, A->rs2, N, C, t->pool);
    lin_bwd(t, &k->lin[LIN_O], t->datt, 0, dres, A->att, A->xa[LIN_O], N, drop_seed(t, l, LIN_O));
    attn_bwd(t, l, b, t->dq, t->dk, t->dv, t->datt, A->probs, A->q, A->k, A->v, &as);
    ct__rope_apply(t->dq, N, t->qd, g->n_heads, g->head_dim, t->pos, t->rope_cos, t->rope_sin, g->rope_style, 1);
    ct__rope_apply(t->dk, N, t->kvd, g->n_kv_heads, g->head_dim, t->pos, t->rope_cos, t->rope_sin, g->rope_style,
                   1);
    lin_bwd(t, &k->lin[LIN_Q], t->dh, 0, t->dq, A->h1, A->xa[LIN_Q], N, drop_seed(t, l, LIN_Q));
    lin_bwd(t, &k->lin[LIN_K], t->dh, 1, t->dk, A->h1, A->xa[LIN_K], N, drop_seed(t, l, LIN_K));
    lin_bwd(t, &k->lin[LIN_V], t->dh, 1, t->dv, A->h1, A->xa[LIN_V], N, drop_seed(t, l, LIN_V));
    ct__rmsnorm_bwd(dres, k->n1w.g, t->dh, x, k->n1w.w, A->rs1, N, C, t->pool);
}

/* ---- embeddings, head ------------------------------------------------------------ */

static void embed_fwd(ct__tmodel *t, const ct__tm_batch *b) {
    const ct_config *g = t->cfg;
    const int N = b->N, C = g->dim;
    if (t->wte) {
        ct__embed_fwd(t->res, b->ids, t->pos, t->wte, t->wpe, N, C);
        return;
    }
    float *row = t->dh; /* free during the forward pass */
    for (int i = 0; i < N; i++) {
        float *o = t->res + (size_t)i * C;
        if (b->ids[i] < 0) memcpy(o, t->prompt + (size_t)(-b->ids[i] - 1) * C, sizeof(float) * (size_t)C);
        else ct__mat_row_f32(&t->m->tok_emb, b->ids[i], o);
        if (g->arch == CT_ARCH_GPT2) {
            ct__mat_row_f32(&t->m->pos_emb, t->pos[i], row);
            ct__residual_forward(o, row, C);
        }
    }
}

/* Head weight (V, C) as f32 with row stride *ld (NULL: use ct__matmul on the ct_mat). */
static const float *head_weight(ct__tmodel *t, int *ld, int need_f32) {
    const ct_mat *W = &t->m->output;
    *ld = t->cfg->dim;
    if (t->whead) return t->whead;
    if (W->dtype != CT_DT_F32 && !need_f32) return NULL;
    return ct__mat_f32(W, t->wdeq, ld);
}

/* Final norm output t->hf → loss; backward: t->dh = d hf, head weight gradient.
 * Only rows with a target go through the head (prompt tokens of instruction
 * data cost nothing there): they are gathered in chunks of head_rows, and
 * their input gradients scattered back (rows without a target get 0). With
 * logits_out every row is computed, in place. */
/* Classification: rows with a target (the last of each sequence) through the
 * score head (K, C); logits_out (rows with a target, K) in row order. */
static double cls_fwd_bwd(ct__tmodel *t, const ct__tm_batch *b, float scale, int backward, float *logits_out) {
    const int N = b->N, C = t->cfg->dim, K = t->o.cls_labels, CH = t->head_rows;
    int nt = 0;
    for (int i = 0; i < N; i++)
        if (b->targets[i] >= 0) t->hrows[nt++] = i;
    if (backward) memset(t->dh, 0, (size_t)N * C * sizeof(float));
    double loss = 0;
    for (int r0 = 0; r0 < nt; r0 += CH) {
        int n = nt - r0 < CH ? nt - r0 : CH;
        for (int j = 0; j < n; j++) {
            memcpy(t->hg + (size_t)j * C, t->hf + (size_t)t->hrows[r0 + j] * C, (size_t)C * sizeof(float));
            t->tg[j] = b->targets[t->hrows[r0 + j]];
        }
        gemm(t, 0, 1, n, K, C, 1.0f, t->hg, C, t->score, C, 0.0f, t->logits, K);
        if (logits_out) memcpy(logits_out + (size_t)r0 * K, t->logits, (size_t)n * K * sizeof(float));
        loss += ct__xent_fwd_bwd(t->logits, t->tg, n, K, scale, t->pool);
        if (!backward) continue;
        gemm(t, 0, 0, n, C, K, 1.0f, t->logits, K, t->score, C, 0.0f, t->dhg, C);
        for (int j = 0; j < n; j++)
            memcpy(t->dh + (size_t)t->hrows[r0 + j] * C, t->dhg + (size_t)j * C, (size_t)C * sizeof(float));
        gemm(t, 1, 0, K, C, n, 1.0f, t->logits, K, t->hg, C, 1.0f, t->gscore, C);
    }
    return loss;
}

static double head_fwd_bwd(ct__tmodel *t, const ct__tm_batch *b, float scale, int backward, float *logits_out) {
    if (t->score) return cls_fwd_bwd(t, b, scale, backward, logits_out);
    const ct_config *g = t->cfg;
    const int N = b->N, C = g->dim, V = g->vocab_size, CH = t->head_rows;
    int ld = 0;
    const float *W = t->pk_head_fwd || t->head_fused ? NULL : head_weight(t, &ld, backward);
    if (t->head_repack) {
        ct__gemm_bf16_pack_b(1, C, V, t->whead, C, t->pk_head_fwd, t->pool);
        if (backward) ct__gemm_bf16_pack_b(0, V, C, t->whead, C, t->pk_head_bwd, t->pool);
    }
    int nt = 0;
    for (int i = 0; i < N; i++)
        if (logits_out || b->targets[i] >= 0) t->hrows[nt++] = i;
    if (backward) memset(t->dh, 0, (size_t)N * C * sizeof(float));
    double loss = 0;
    for (int r0 = 0; r0 < nt; r0 += CH) {
        int n = nt - r0 < CH ? nt - r0 : CH;
        for (int j = 0; j < n; j++) {
            int row = t->hrows[r0 + j];
            memcpy(t->hg + (size_t)j * C, t->hf + (size_t)row * C, (size_t)C * sizeof(float));
            t->tg[j] = b->targets[row];
        }
        const float *h = t->hg;
        if (t->head_fused) ct__qmm_xwt(t->logits, h, &t->m->output, n, 0.0f, t->o.bf16, t->pool);
        else if (t->pk_head_fwd)
            ct__sgemm_bf16_packed(0, n, V, C, 1.0f, h, C, t->pk_head_fwd, 0.0f, t->logits, V, t->pool);
        else if (W) gemm(t, 0, 1, n, V, C, 1.0f, h, C, W, ld, 0.0f, t->logits, V);
        else ct__matmul(t->logits, h, &t->m->output, NULL, n, t->pool);
        if (logits_out) memcpy(logits_out + (size_t)r0 * V, t->logits, (size_t)n * V * sizeof(float));
        loss += ct__xent_fwd_bwd(t->logits, t->tg, n, V, scale, t->pool);
        if (!backward) continue;
        if (t->head_fused) ct__qmm_dyw(t->dhg, t->logits, &t->m->output, n, 0.0f, t->o.bf16, t->pool);
        else if (t->pk_head_bwd)
            ct__sgemm_bf16_packed(0, n, C, V, 1.0f, t->logits, V, t->pk_head_bwd, 0.0f, t->dhg, C, t->pool);
        else gemm(t, 0, 0, n, C, V, 1.0f, t->logits, V, W, ld, 0.0f, t->dhg, C);
        for (int j = 0; j < n; j++)
            memcpy(t->dh + (size_t)t->hrows[r0 + j] * C, t->dhg + (size_t)j * C, (size_t)C * sizeof(float));
        if (t->gwhead) gemm(t, 1, 0, V, C, n, 1.0f, t->logits, V, h, C, 1.0f, t->gwhead, C);
    }
    return loss;
}

/* ---- the pass ---------------------------------------------------------------------- */

static ct_status check_batch(const ct__tmodel *t, const ct__tm_batch *b) {
    const ct_config *g = t->cfg;
    if (t->o.method == CT_TM_PREFIX && b->n_seq > t->o.max_seqs)
        return ct__err(CT_ERR_ARG, "training: %d sequences in a micro-batch (prefix tuning set up for %d)", b->n_seq,
                       t->o.max_seqs);
    if (b->N <= 0 || b->N > t->o.max_rows || b->n_seq <= 0 || b->seq[0] != 0 || b->seq[b->n_seq] != b->N)
        return ct__err(CT_ERR_ARG, "training: bad micro-batch (%d rows, %d sequences; at most %d rows)", b->N,
                       b->n_seq, t->o.max_rows);
    for (int s = 0; s < b->n_seq; s++) {
        int len = b->seq[s + 1] - b->seq[s];
        if (len <= 0 || len > t->o.max_seq)
            return ct__err(CT_ERR_ARG, "training: sequence %d has %d tokens (1..%d allowed)", s, len, t->o.max_seq);
    }
    const int nv = t->prompt ? t->o.n_virtual : 0;
    for (int i = 0; i < b->N; i++) {
        if (b->ids[i] < -nv || b->ids[i] >= g->vocab_size)
            return ct__err(CT_ERR_RANGE, "training: token id %d at row %d is outside the vocabulary (%d)", b->ids[i],
                           i, g->vocab_size);
        if (b->targets[i] >= (t->score ? t->o.cls_labels : g->vocab_size))
            return ct__err(CT_ERR_RANGE, "training: target id %d at row %d is outside the vocabulary (%d)",
                           b->targets[i], i, g->vocab_size);
    }
    return CT_OK;
}

ct_status ct__tm_forward_backward(ct__tmodel *t, const ct__tm_batch *b, float scale, int backward, float *logits,
                                  double *loss_sum) {
    ct_status s = check_batch(t, b);
    if (s) return s;
    const ct_config *g = t->cfg;
    const int N = b->N, C = g->dim, L = g->n_layers;
    const int p0 = t->o.method == CT_TM_PREFIX ? t->o.n_virtual : 0; /* prefix tuning: tokens after K cache rows */
    for (int q = 0; q < b->n_seq; q++)
        for (int i = b->seq[q]; i < b->seq[q + 1]; i++) t->pos[i] = p0 + i - b->seq[q];
    t->training = backward;
    prefix_table_fwd(t);
    embed_fwd(t, b);
    for (int l = 0; l < L; l++) block_fwd(t, l, b);
    const float *xl = t->res + (size_t)L * N * C;
    if (g->arch == CT_ARCH_GPT2)
        ct__layernorm_fwd(t->hf, t->muf, t->rsf, xl, t->nfw.w, t->nfb.w, N, C, g->norm_eps, t->pool);
    else
        ct__rmsnorm_fwd(t->hf, t->rsf, xl, t->nfw.w, N, C, g->norm_eps, t->pool);
    double loss = head_fwd_bwd(t, b, scale, backward, logits);
    if (loss_sum) *loss_sum = loss;
    if (!backward) return CT_OK;
    memset(t->dres, 0, (size_t)N * C * sizeof(float));
    if (g->arch == CT_ARCH_GPT2)
        ct__layernorm_bwd(t->dres, t->nfw.g, t->nfb.g, t->dh, xl, t->nfw.w, t->muf, t->rsf, N, C, t->pool);
    else
        ct__rmsnorm_bwd(t->dres, t->nfw.g, t->dh, xl, t->nfw.w, t->rsf, N, C, t->pool);
    if (t->pfx_emb) memset(t->gprefix, 0, (size_t)t->o.n_virtual * 2 * L * t->kvd * sizeof(float));
    for (int l = L - 1; l >= 0; l--) {
        if (t->o.checkpointing) block_fwd(t, l, b);
        block_bwd(t, l, b);
    }
    prefix_table_bwd(t);
    if (t->gwte) ct__embed_bwd(t->gwte, t->gwpe, t->dres, b->ids, t->pos, N, C, t->pool);
    if (t->gprompt) /* virtual tokens: their rows' input gradient, in row order */
        for (int i = 0; i < N; i++)
            if (b->ids[i] < 0) {
                float *gp = t->gprompt + (size_t)(-b->ids[i] - 1) * C;
                const float *d = t->dres + (size_t)i * C;
                for (int c = 0; c < C; c++) gp[c] += d[c];
            }
    return CT_OK;
}

ct_status ct__tm_prefix_from_ids(ct__tmodel *t, const int32_t *ids, int n) {
    if (t->o.method != CT_TM_PREFIX || t->pfx_emb || n <= 0)
        return ct__err(CT_ERR_ARG, "prefix from tokens: needs plain prefix tuning and at least one token");
    const ct_config *g = t->cfg;
    const int K = t->o.n_virtual, kvd = t->kvd, L = g->n_layers, gpt2 = g->arch == CT_ARCH_GPT2;
    const size_t T = 2 * (size_t)L * kvd;
    ct__tm_opts fo = {.method = CT_TM_FROZEN, .max_rows = K, .max_seq = K, .n_threads = t->o.n_threads};
    if (gpt2 && K > g->max_seq_len)
        return ct__err(CT_ERR_RANGE, "prefix from tokens: %d virtual tokens exceed GPT-2's %d positions", K,
                       g->max_seq_len);
    ct__tmodel *f = NULL;
    ct_status s = ct__tm_create(t->m, &fo, &f);
    if (s) return s;
    int32_t *row = ct__malloc(2 * sizeof(int32_t) * (size_t)K);
    if (!row) { ct__tm_free(f); return ct__err(CT_ERR_NOMEM, "out of memory"); }
    for (int j = 0; j < K; j++) {
        row[j] = ids[j % n];
        row[K + j] = -1;
    }
    int32_t seq[2] = {0, K};
    ct__tm_batch b = {.ids = row, .targets = row + K, .seq = seq, .N = K, .n_seq = 1};
    double loss;
    s = ct__tm_run(f, &b, 1.0f, 0, NULL, &loss);
    for (int l = 0; l < L && !s; l++) { /* the cache those tokens leave: rotated keys, values */
        const ct__tacts *A = &f->acts[l];
        const float *k = gpt2 ? A->q + g->dim : A->k, *v = gpt2 ? A->q + 2 * g->dim : A->v;
        const int ld = gpt2 ? f->qkv_out : kvd;
        for (int p = 0; p < K; p++) {
            float *kt = t->prefix + (size_t)p * T + (size_t)(2 * l) * kvd, *vt = kt + kvd;
            for (int c = 0; c < kvd; c++) kt[t->pfx_kmap[c]] = k[(size_t)p * ld + c];
            memcpy(vt, v + (size_t)p * ld, (size_t)kvd * sizeof(float));
        }
    }
    free(row);
    ct__tm_free(f);
    return s;
}

const float *ct__tm_prefix_table(ct__tmodel *t) {
    prefix_table_fwd(t);
    return t->prefix;
}

void ct__tm_set_dropout_seed(ct__tmodel *t, uint64_t seed) { t->drop_seed = seed; }
