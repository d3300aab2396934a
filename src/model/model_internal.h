/* src/model/model_internal.h — the model's weights and an inference context's
 * state, shared by the files of src/model/ and src/infer/.
 *
 * A ct_model is a config, the tensor store its loader filled (memory-mapped
 * files stay open for the model's life), and per-layer views into it: matrices
 * as ct_mat in their stored dtype, small vectors (norm weights, biases) as
 * owned F32 copies. Both architectures use one layer struct; fields an
 * architecture lacks are NULL (vectors) or rows == 0 (matrices).
 *
 * A ct_ctx is a KV cache plus all scratch for a batch of up to n_batch tokens,
 * carved from one allocation (llm.c style: sizes table, then pointers). */
#ifndef CT_MODEL_INTERNAL_H
#define CT_MODEL_INTERNAL_H
#include "ctune/model.h"
#include "ctune/tokenizer.h"
#include "formats/loaders.h"
#include "tensor/ops.h"

typedef struct {
    const float *attn_norm, *attn_norm_b; /* (C,) ; bias: GPT-2 LayerNorm only */
    ct_mat wq;                            /* (NH*HS, C) */
    ct_mat wk, wv;                        /* (KV*HS, C) */
    ct_mat wo;                            /* (C, NH*HS) */
    const float *bq, *bk, *bv, *bo;       /* (NH*HS,) (KV*HS,) (KV*HS,) (C,) or NULL */
    const float *ffn_norm, *ffn_norm_b;   /* (C,) */
    ct_mat w_gate;                        /* (H, C) Llama only (SwiGLU) */
    ct_mat w_up;                          /* (H, C) Llama up_proj / GPT-2 c_fc */
    ct_mat w_down;                        /* (C, H) */
    const float *b_up, *b_down;           /* (H,) (C,) GPT-2 only */
} ct__layer;

struct ct_model {
    ct_config cfg;
    ct_tstore ts;              /* owns the mappings and every owned copy */
    ct_tokenizer *tok;         /* may be NULL */
    ct_naming naming;          /* which name convention the store uses */
    const char *cfg_src;       /* where the config came from, for messages:
                                  "config.json", "the GGUF metadata", ... */
    char *path;                /* as given to ct_model_load */
    char *source;              /* for ct_model_source() */
    char *dtype_summary;       /* for ct_model_dtype_summary() */
    ct_mat tok_emb;            /* (V, C) */
    ct_mat pos_emb;            /* (max_seq_len, C) GPT-2 only */
    ct_mat output;             /* (V, C); equals tok_emb when tied; rows 0: none (an untied
                                  sequence-classification checkpoint) */
    ct_mat score;              /* (num_labels, C) of a sequence-classification checkpoint, or rows 0 */
    const float *out_norm, *out_norm_b; /* (C,) */
    ct__layer *layers;         /* (L,) */
    int64_t n_params;
    int64_t weight_bytes;      /* matrix bytes read per decoded token */
    int q8_act;                /* ct_load_opts.q8_activations: every ct_mat's act_q8 */
};

struct ct_ctx {
    ct_model *m;
    ct_pool *pool;
    int n_ctx;        /* KV cache positions */
    int n_batch;      /* max tokens per internal forward chunk */
    int pos;          /* tokens in the cache */
    int q_dim, kv_dim;/* NH*HS, KV*HS */
    /* all below point into mem */
    float *k_cache;   /* (L, n_ctx, kv_dim) */
    float *v_cache;   /* (L, n_ctx, kv_dim) */
    float *x;         /* (B, C) residual stream */
    float *xb;        /* (B, max(C, q_dim)) normed input / attention output */
    float *xb2;       /* (B, C) projection output */
    float *q;         /* (B, q_dim) */
    float *hb;        /* (B, H) */
    float *hb2;       /* (B, H) */
    float *att;       /* (n_threads, n_ctx) attention scores per thread */
    float *rope_cos;  /* (n_ctx, HS/2) */
    float *rope_sin;  /* (n_ctx, HS/2) */
    void *mem;
    size_t mem_bytes;
};

/* weights.c: map the store's tensors onto m's weights with shape checks
 * against m->cfg (names per m->naming). Fills n_params and weight_bytes. */
ct_status ct__model_map_weights(ct_model *m);

/* Rows [r0, r0+n) of W as a view (same dtype and row stride). */
ct_mat ct__mat_rows(const ct_mat *W, int r0, int n);

/* forward.c: run T <= c->n_batch tokens at positions c->pos.. (ids already
 * range-checked); writes logits (T, V) when all_logits, else (1, V) for the
 * last token, none when logits is NULL. Advances c->pos. */
void ct__forward_chunk(ct_ctx *c, const int32_t *tokens, int T, float *logits, int all_logits);

#endif
