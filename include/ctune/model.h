/* ctune/model.h — loading pretrained checkpoints and running the forward pass.
 *
 * A model is loaded from one of:
 *   - a Hugging Face directory (config.json + model.safetensors, or shards with
 *     model.safetensors.index.json; tokenizer.json beside it when present),
 *   - a GGUF v3 file (weights, hyper-parameters and tokenizer from metadata),
 *   - a llama2.c checkpoint (.bin) with its tokenizer.bin given separately.
 * Weights stay memory-mapped in their stored dtype where the compute kernels
 * read that dtype directly (F32, F16, BF16, Q8_0, Q4_0, Q4_1).
 *
 * A ct_ctx is one inference session: a KV cache of n_ctx positions and all
 * scratch memory, allocated once at creation; forward calls allocate nothing.
 */
#ifndef CTUNE_MODEL_H
#define CTUNE_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include "ctune/dtype.h"
#include "ctune/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_tokenizer ct_tokenizer;

typedef enum { CT_ARCH_LLAMA = 0, CT_ARCH_GPT2 = 1 } ct_arch;
/* Rotary embedding layout: NORM rotates adjacent pairs (x[2i], x[2i+1]) as Meta's
 * original code, llama2.c and GGUF llama do; NEOX rotates (x[i], x[i+HS/2]) as
 * Hugging Face's rotate_half and GGUF qwen2 do. */
typedef enum { CT_ROPE_NORM = 0, CT_ROPE_NEOX = 1 } ct_rope_style;

typedef struct {
    ct_arch arch;
    char model_type[32];  /* "llama", "mistral", "qwen2", "gpt2" */
    int dim;              /* C: hidden size */
    int hidden_dim;       /* FFN inner size */
    int n_layers;         /* L */
    int n_heads;          /* NH */
    int n_kv_heads;       /* KV heads (grouped-query attention) */
    int head_dim;         /* HS */
    int vocab_size;       /* V */
    int max_seq_len;      /* trained context length */
    float norm_eps;       /* RMSNorm / LayerNorm epsilon */
    float rope_theta;
    ct_rope_style rope_style;
    int tie_embeddings;   /* output projection shares token embedding */
    int qkv_bias;         /* q/k/v projections carry biases (qwen2) */
    int sliding_window;   /* 0 = none */
    int bos_id, eos_id;   /* -1 when unknown */
    int num_labels;       /* > 0: a *ForSequenceClassification checkpoint: a classifier head `score`
                             (num_labels, C) and no language-model head of its own (tied: the
                             embeddings serve; untied: none, generation refuses it) */
} ct_config;

typedef struct {
    const char *tokenizer_path; /* override / required for llama2.c .bin */
    int verbose;
    int q8_activations;  /* 1: quantize activations to 8 bits for Q8_0/Q4_0/Q4_1 matrices (llama.cpp's
                            way: faster, not exact); 0 (default): f32 activations, results match an f32
                            reference */
} ct_load_opts;

typedef struct ct_model ct_model;

/* Load a model from a HF directory, .gguf, or llama2.c .bin. opts may be NULL
 * (as a zeroed ct_load_opts: f32 activations).
 * On failure *out is NULL and ct_errmsg() names the file and tensor/field. */
ct_status ct_model_load(const char *path, const ct_load_opts *opts, ct_model **out);
void ct_model_free(ct_model *m);

const ct_config *ct_model_config(const ct_model *m);
/* The model's tokenizer (owned by the model), or NULL if none was found. */
ct_tokenizer *ct_model_tokenizer(ct_model *m);
/* Total parameter count (tied weights counted once). */
int64_t ct_model_n_params(const ct_model *m);
/* Human-readable summary of where the model came from and its tensor dtypes
 * ("F32: 57, Q4_1: 210"), for `ctune info`. Owned by the model. */
const char *ct_model_source(const ct_model *m);
const char *ct_model_dtype_summary(const ct_model *m);
/* Bytes of weights read per decoded token (sum over matrices used). */
int64_t ct_model_weight_bytes(const ct_model *m);

typedef struct ct_ctx ct_ctx;

/* Create an inference context with a KV cache of n_ctx positions (<= 0 means
 * the model's max_seq_len) and n_threads worker threads (<= 0: all cores). */
ct_status ct_ctx_create(ct_model *m, int n_ctx, int n_threads, ct_ctx **out);
void ct_ctx_free(ct_ctx *c);
/* Process n tokens at positions pos..pos+n-1 (pos = tokens already in cache).
 * logits: (n, V) when all_logits, else (1, V) for the last token only; may be NULL.
 * Fails with CT_ERR_RANGE when the cache would overflow. */
ct_status ct_ctx_forward(ct_ctx *c, const int32_t *tokens, int n, float *logits, int all_logits);
/* Forget the cache (pos = 0). */
void ct_ctx_reset(ct_ctx *c);
int ct_ctx_pos(const ct_ctx *c);
int ct_ctx_size(const ct_ctx *c);
/* Drop cached positions >= pos (keep the first pos). */
ct_status ct_ctx_truncate(ct_ctx *c, int pos);

#ifdef __cplusplus
}
#endif
#endif
