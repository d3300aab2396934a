/* src/formats/gguf_model.c — a model from a GGUF file: tensors into the
 * store (GGUF names), hyper-parameters from llama.cpp's metadata keys, the
 * tokenizer from tokenizer.ggml.* (built by src/tokenizer/).
 *
 * Keys read, with {a} = general.architecture:
 *   {a}.embedding_length, .block_count, .feed_forward_length,
 *   .attention.head_count, .attention.head_count_kv, .attention.key_length,
 *   .attention.layer_norm_rms_epsilon (llama, qwen2) / .layer_norm_epsilon (gpt2),
 *   .rope.freq_base, .rope.dimension_count, .context_length,
 *   .attention.sliding_window; tokenizer.ggml.bos_token_id / eos_token_id.
 * RoPE layout: llama.cpp's HF converter permutes q/k rows for "llama" so that
 * adjacent pairs rotate (CT_ROPE_NORM); "qwen2" is stored unpermuted (NEOX).
 *
 * Leaves out: other architectures (phi, gemma, falcon, ...: CT_ERR_UNSUPPORTED),
 * partial rotary (rope.dimension_count < head size), RoPE scaling keys,
 * mixture-of-experts, and GGUF LoRA adapters (general.type = "adapter").
 */
#include <stdio.h>
#include <string.h>
#include "formats/gguf.h"
#include "formats/loaders.h"

typedef struct {
    const char *name;     /* general.architecture */
    ct_arch arch;
    ct_rope_style rope;
    const char *eps_key;  /* suffix of the norm epsilon key */
    float eps_default;
} arch_info;

static const arch_info k_archs[] = {
    {"llama", CT_ARCH_LLAMA, CT_ROPE_NORM, "attention.layer_norm_rms_epsilon", 1e-5f},
    {"mistral", CT_ARCH_LLAMA, CT_ROPE_NORM, "attention.layer_norm_rms_epsilon", 1e-5f},
    {"qwen2", CT_ARCH_LLAMA, CT_ROPE_NEOX, "attention.layer_norm_rms_epsilon", 1e-6f},
    {"gpt2", CT_ARCH_GPT2, CT_ROPE_NORM, "attention.layer_norm_epsilon", 1e-5f},
};

/* "{arch}.{suffix}" lookups. */
static int arch_has(const ct_gguf *g, const char *arch, const char *suffix) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return ct__gguf_has(g, key);
}
static int arch_u32(const ct_gguf *g, const char *arch, const char *suffix, uint32_t *out) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return ct__gguf_get_u32(g, key, out);
}
static int arch_f32(const ct_gguf *g, const char *arch, const char *suffix, float *out) {
    char key[160];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return ct__gguf_get_f32(g, key, out);
}

/* Required positive int key, as int. */
static ct_status need_int(const ct_gguf *g, const char *arch, const char *suffix, int *out) {
    uint32_t v;
    if (!arch_u32(g, arch, suffix, &v))
        return ct__err(CT_ERR_MISSING, "%s: key '%s.%s' is missing or not an unsigned integer", ct__gguf_path(g),
                       arch, suffix);
    if (v == 0 || v > (1u << 24))
        return ct__err(CT_ERR_RANGE, "%s: key '%s.%s' = %u is out of range (1..2^24)", ct__gguf_path(g), arch,
                       suffix, v);
    *out = (int)v;
    return CT_OK;
}

static const arch_info *find_arch(const ct_gguf *g, ct_status *st) {
    const char *a;
    size_t alen;
    if (!ct__gguf_get_str(g, "general.architecture", &a, &alen)) {
        *st = ct__err(CT_ERR_MISSING, "%s: key 'general.architecture' is missing; not a model GGUF "
                      "(a vocabulary-only file?)", ct__gguf_path(g));
        return NULL;
    }
    for (size_t i = 0; i < sizeof k_archs / sizeof k_archs[0]; i++)
        if (strlen(k_archs[i].name) == alen && memcmp(k_archs[i].name, a, alen) == 0) return &k_archs[i];
    char buf[64];
    size_t n = alen < sizeof buf - 1 ? alen : sizeof buf - 1;
    for (size_t i = 0; i < n; i++) buf[i] = (a[i] >= 0x20 && a[i] < 0x7f) ? a[i] : '?';
    buf[n] = 0;
    *st = ct__err(CT_ERR_UNSUPPORTED, "%s: key 'general.architecture': '%s' is not supported "
                  "(supported: llama, mistral, qwen2, gpt2)", ct__gguf_path(g), buf);
    return NULL;
}

/* Hyper-parameters; tensors are already in ts (for vocab size and tying). */
static ct_status read_config(const ct_gguf *g, const arch_info *ai, const ct_tstore *ts, ct_config *cfg) {
    const char *a = ai->name, *path = ct__gguf_path(g);
    ct_status st;
    memset(cfg, 0, sizeof *cfg);
    cfg->arch = ai->arch;
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", a);
    cfg->rope_style = ai->rope;
    if ((st = need_int(g, a, "embedding_length", &cfg->dim)) || (st = need_int(g, a, "block_count", &cfg->n_layers)) ||
        (st = need_int(g, a, "feed_forward_length", &cfg->hidden_dim)) ||
        (st = need_int(g, a, "attention.head_count", &cfg->n_heads)))
        return st;
    cfg->n_kv_heads = cfg->n_heads;
    if (arch_has(g, a, "attention.head_count_kv"))
        if ((st = need_int(g, a, "attention.head_count_kv", &cfg->n_kv_heads))) return st;
    if (cfg->n_heads % cfg->n_kv_heads)
        return ct__err(CT_ERR_FORMAT, "%s: key '%s.attention.head_count_kv' = %d does not divide head_count %d",
                       path, a, cfg->n_kv_heads, cfg->n_heads);
    cfg->head_dim = cfg->dim / cfg->n_heads;
    if (arch_has(g, a, "attention.key_length")) {
        if ((st = need_int(g, a, "attention.key_length", &cfg->head_dim))) return st;
    } else if (cfg->dim % cfg->n_heads) {
        return ct__err(CT_ERR_FORMAT, "%s: key '%s.attention.head_count' = %d does not divide embedding_length %d",
                       path, a, cfg->n_heads, cfg->dim);
    }
    uint32_t rdim;
    if (ai->arch == CT_ARCH_LLAMA && arch_u32(g, a, "rope.dimension_count", &rdim) && (int)rdim != cfg->head_dim)
        return ct__err(CT_ERR_UNSUPPORTED, "%s: key '%s.rope.dimension_count' = %u: partial rotary (head size %d) "
                       "is not supported", path, a, rdim, cfg->head_dim);
    if (ai->arch == CT_ARCH_LLAMA && cfg->head_dim % 2)
        return ct__err(CT_ERR_FORMAT, "%s: head size %d is odd; RoPE needs an even size", path, cfg->head_dim);
    cfg->norm_eps = ai->eps_default;
    (void)arch_f32(g, a, ai->eps_key, &cfg->norm_eps);
    if (!(cfg->norm_eps >= 0.0f && cfg->norm_eps < 1.0f))
        return ct__err(CT_ERR_RANGE, "%s: key '%s.%s' = %g is out of range [0, 1)", path, a, ai->eps_key,
                       (double)cfg->norm_eps);
    cfg->rope_theta = 10000.0f;
    (void)arch_f32(g, a, "rope.freq_base", &cfg->rope_theta);
    if (!(cfg->rope_theta > 0.0f && cfg->rope_theta < 1e30f))
        return ct__err(CT_ERR_RANGE, "%s: key '%s.rope.freq_base' = %g must be positive", path, a,
                       (double)cfg->rope_theta);
    uint32_t u;
    cfg->max_seq_len = 2048;
    if (arch_u32(g, a, "context_length", &u) && u > 0) cfg->max_seq_len = u > (1u << 24) ? 1 << 24 : (int)u;
    if (arch_u32(g, a, "attention.sliding_window", &u)) cfg->sliding_window = u > (1u << 24) ? 0 : (int)u;
    cfg->bos_id = ct__gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u) && u < INT32_MAX ? (int)u : -1;
    cfg->eos_id = ct__gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u) && u < INT32_MAX ? (int)u : -1;

    /* Vocabulary: rows of the token embedding (V, C), else the token list. */
    const ct_tref *emb = ct__tstore_find(ts, "token_embd.weight");
    ct_gguf_type et;
    size_t ntok;
    if (emb && emb->ndim == 2 && emb->shape[0] > 0 && emb->shape[0] < INT32_MAX) {
        if (emb->shape[1] != cfg->dim)
            return ct__err(CT_ERR_SHAPE, "%s: tensor 'token_embd.weight': shape (%lld, %lld) does not match "
                           "embedding_length %d", path, (long long)emb->shape[0], (long long)emb->shape[1],
                           cfg->dim);
        cfg->vocab_size = (int)emb->shape[0];
    } else if (ct__gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &ntok) && ntok > 0 && ntok < INT32_MAX) {
        cfg->vocab_size = (int)ntok;
    } else {
        return ct__err(CT_ERR_MISSING, "%s: tensor 'token_embd.weight' is missing or not 2-D and there is no "
                       "tokenizer.ggml.tokens to size the vocabulary", path);
    }
    cfg->tie_embeddings = ct__tstore_find(ts, "output.weight") == NULL;
    cfg->qkv_bias = ct__tstore_find(ts, "blk.0.attn_q.bias") != NULL ||
                    ct__tstore_find(ts, "blk.0.attn_qkv.bias") != NULL;
    return CT_OK;
}

ct_status ct__load_gguf_model(const char *path, ct_tstore *ts, ct_config *cfg, ct_tokenizer **tok) {
    if (tok) *tok = NULL;
    ct_gguf *g = NULL;
    size_t n0 = ts->n; /* the store may already hold other files' tensors */
    ct_status st = ct__gguf_open(path, &g, ts);
    if (st) return st;
    const char *gt;
    size_t gtl;
    if (ct__gguf_get_str(g, "general.type", &gt, &gtl) && gtl == 7 && memcmp(gt, "adapter", 7) == 0) {
        st = ct__err(CT_ERR_UNSUPPORTED, "%s: key 'general.type' = 'adapter': this is a LoRA adapter, not a "
                     "model; load the base model and attach the adapter", path);
        goto done;
    }
    if (ts->n == n0) {
        st = ct__err(CT_ERR_MISSING, "%s: no tensors: a vocabulary-only GGUF (load it as a tokenizer)", path);
        goto done;
    }
    const arch_info *ai = find_arch(g, &st);
    if (!ai) goto done;
    if ((st = read_config(g, ai, ts, cfg))) goto done;
    if (tok && ct__gguf_has(g, "tokenizer.ggml.model")) {
        st = ct__tokenizer_from_gguf(g, tok);
        if (st) *tok = NULL;
    }
done:
    ct__gguf_close(g);
    return st;
}
