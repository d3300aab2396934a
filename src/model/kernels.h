/* src/model/kernels.h — the non-matmul kernels of the forward pass, llm.c
 * style: `<op>_forward`, each argument's shape in a comment. Matmuls live in
 * src/tensor/ops.h (ct__matmul). All buffers are caller-owned; nothing here
 * allocates. */
#ifndef CT_MODEL_KERNELS_H
#define CT_MODEL_KERNELS_H
#include "ctune/model.h"
#include "tensor/ops.h"

/* Dot product and y += a*x over n floats (AVX2/FMA when compiled for it). */
float ct__dot_f32(const float *a, const float *b, int n);
void ct__axpy_f32(float *y, float a, const float *x, int n);
/* x[i] = exp(x[i]) (vectorized; relative error ~2e-7, 0 below -87.3). */
void ct__exp_inplace(float *x, int n);

/* out = x / sqrt(mean(x^2) + eps) * w, per row.
 * https://github.com/huggingface/transformers LlamaRMSNorm
 * out: (T,C)  x: (T,C)  w: (C,) */
void ct__rmsnorm_forward(float *out, const float *x, const float *w, int T, int C, float eps);

/* out = (x - mean) / sqrt(var + eps) * w + b, per row (biased variance).
 * https://pytorch.org/docs/stable/generated/torch.nn.LayerNorm.html
 * out: (T,C)  x: (T,C)  w, b: (C,) */
void ct__layernorm_forward(float *out, const float *x, const float *w, const float *b, int T, int C, float eps);

/* cos/sin tables: angle(p, i) = p * theta^(-2i/HS), computed in float as
 * Hugging Face (inv_freq float32) and llama2.c do.
 * cos, sin: (n_pos, HS/2) */
void ct__rope_tables(float *cos_t, float *sin_t, int n_pos, int HS, float theta);

/* Rotate each head of x in place for positions pos0..pos0+T-1.
 * NORM: pairs (x[2i], x[2i+1]); NEOX: pairs (x[i], x[i+HS/2]) (rotate_half).
 * x: (T, NHx*HS) with row stride ld  cos, sin: (n_pos, HS/2) */
void ct__rope_forward(float *x, int T, int ld, int NHx, int HS, int pos0, const float *cos_t,
                      const float *sin_t, ct_rope_style style);

/* Causal multi-head attention over a KV cache (grouped-query: query head h
 * reads KV head h / (NH/NKV)); query t sits at position pos0+t and attends to
 * cache rows [max(0, pos0+t-window+1), pos0+t] (window 0 = unlimited).
 * Threads take (t, h) pairs round-robin. */
typedef struct {
    float *out;               /* (T, NH*HS) */
    const float *q;           /* (T, NH*HS), RoPE applied */
    const float *k, *v;       /* (n_ctx, NKV*HS): this layer's cache, rows < pos0+T valid */
    float *att;               /* (n_threads, n_ctx) scratch */
    int T, pos0, NH, NKV, HS, n_ctx, window;
} ct__attn_args;
void ct__attention_forward(const ct__attn_args *a, ct_pool *pool);

/* out = silu(gate) * up.  https://arxiv.org/abs/2002.05202
 * out, gate, up: (N,) ; out may alias gate */
void ct__swiglu_forward(float *out, const float *gate, const float *up, int N);

/* GPT-2's tanh approximation ("gelu_new"), in place allowed.
 * out, x: (N,) */
void ct__gelu_forward(float *out, const float *x, int N);

/* x += y.  x, y: (N,) */
void ct__residual_forward(float *x, const float *y, int N);

/* Run fn over row ranges of n rows split across the pool (for elementwise
 * work large enough to matter during prefill). fn(ctx, r0, r1). */
typedef void (*ct__rows_fn)(void *ctx, int r0, int r1);
void ct__parallel_rows(ct_pool *pool, int n, ct__rows_fn fn, void *ctx);

#endif
