/* src/model/weights.c — from a loader's tensor store to the model's weights.
 *
 * Maps both naming conventions onto ct__layer:
 *   Hugging Face  model.layers.N.self_attn.q_proj.weight, transformer.h.N.attn.c_attn.weight, ...
 *   GGUF          blk.N.attn_q.weight, blk.N.attn_qkv.weight, ... (also llama2.c files)
 * and checks every tensor's shape against the config, naming the file, the
 * tensor, the shape found and the shape the config implies. Matrices stay in
 * their stored dtype and memory (F32/F16/BF16/Q8_0/Q4_0/Q4_1), flagged with
 * the model's activation precision (act_q8, from ct_load_opts); norm weights
 * and biases become owned F32 copies. GPT-2's HF Conv1D weights are stored
 * (in, out) and are transposed once into owned (out, in) copies in their own
 * dtype; GPT-2's fused c_attn/attn_qkv is split into q/k/v row views.
 * bitsandbytes 4-bit weights (a U8 tensor with a quant state beside it,
 * src/formats/bnb4.h) become CT_DT_NF4 matrices; they are stored (out, in)
 * already, GPT-2's Conv1D included (transformers transposes before quantizing).
 *
 * Leaves out: per-layer fused qkv for Llama-family files (phi-style), LoRA
 * tensors (src/peft/), and weights other than those the forward uses
 * (rotary caches, attention mask buffers: ignored).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "formats/bnb4.h"
#include "model/model_internal.h"
#include "tensor/nf4_matmul.h"
#include "tensor/quant.h"

typedef struct {
    ct_model *m;
    int gguf;         /* GGUF names (GGUF and llama2.c files) */
    const char *pfx;  /* HF prefix: "model.", "transformer." or "" */
    char name[256];   /* last name built */
} wb;

/* Build the tensor name for layer `layer` (ignored by fmts without %d). */
static const char *nm(wb *b, const char *hf, const char *gguf, int layer) {
    if (b->gguf) snprintf(b->name, sizeof b->name, gguf, layer);
    else {
        int n = snprintf(b->name, sizeof b->name, "%s", b->pfx);
        snprintf(b->name + n, sizeof b->name - (size_t)n, hf, layer);
    }
    return b->name;
}

static const char *tfile(const wb *b, const ct_tref *t) {
    return t->file >= 0 && (size_t)t->file < b->m->ts.nfiles ? b->m->ts.files[t->file].path : b->m->path;
}

static void shape_str(const ct_tref *t, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < t->ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, ")");
}

static ct_status missing(wb *b, const char *name) {
    const ct_config *c = &b->m->cfg;
    return ct__err(CT_ERR_MISSING, "%s: tensor '%s' not found (%s model with %d layers per %s)", b->m->path, name,
                   c->model_type, c->n_layers, b->m->cfg_src);
}

static ct_status bad_shape(wb *b, const ct_tref *t, int64_t r, int64_t c) {
    char got[96];
    shape_str(t, got, sizeof got);
    if (r) return ct__err(CT_ERR_SHAPE, "%s: tensor '%s' has shape %s but %s implies (%lld, %lld)", tfile(b, t),
                          t->name, got, b->m->cfg_src, (long long)r, (long long)c);
    return ct__err(CT_ERR_SHAPE, "%s: tensor '%s' has shape %s but %s implies (%lld)", tfile(b, t), t->name, got,
                   b->m->cfg_src, (long long)c);
}

static int matrix_dtype(ct_dtype d) {
    return d == CT_DT_F32 || d == CT_DT_F16 || d == CT_DT_BF16 || d == CT_DT_Q8_0 || d == CT_DT_Q4_0 ||
           d == CT_DT_Q4_1;
}

/* Transpose a 2-byte or 4-byte (in, out) tensor into an owned (out, in)
 * buffer, in 32 x 32 tiles so both sides stay in cache.
 * src: (R, Cc) -> dst: (Cc, R) */
static void *transpose_copy(const void *src, int64_t R, int64_t Cc, size_t es) {
    void *dst = ct__malloc((size_t)(R * Cc) * es);
    if (!dst) return NULL;
    enum { TB = 32 };
    for (int64_t i0 = 0; i0 < R; i0 += TB)
        for (int64_t j0 = 0; j0 < Cc; j0 += TB) {
            int64_t i1 = i0 + TB < R ? i0 + TB : R, j1 = j0 + TB < Cc ? j0 + TB : Cc;
            for (int64_t i = i0; i < i1; i++)
                for (int64_t j = j0; j < j1; j++) {
                    /* constant-size memcpy: one move, no alignment assumption on mapped data */
                    uint8_t *d = (uint8_t *)dst + (size_t)(j * R + i) * es;
                    const uint8_t *s = (const uint8_t *)src + (size_t)(i * Cc + j) * es;
                    if (es == 4) memcpy(d, s, 4);
                    else memcpy(d, s, 2);
                }
        }
    return dst;
}

/* Matrix `name` of shape (rows, cols); conv1d: stored (cols, rows) and
 * transposed into an owned copy. optional: *out zeroed and CT_OK if absent. */
static ct_status get_mat(wb *b, const char *name, int64_t rows, int64_t cols, int conv1d, int optional,
                         ct_mat *out) {
    memset(out, 0, sizeof *out);
    const ct_tref *t = ct__tstore_find(&b->m->ts, name);
    if (!t) return optional ? CT_OK : missing(b, name);
    if (!b->gguf && ct__bnb4_is_quantized(&b->m->ts, name)) {
        ct_status s = ct__bnb4_mat(&b->m->ts, name, out);
        if (s) return s;
        if (out->rows != rows || out->cols != cols)
            return ct__err(CT_ERR_SHAPE, "%s: 4-bit tensor '%s' has shape (%d, %d) in its quant state but %s implies "
                           "(%lld, %lld)", tfile(b, t), name, out->rows, out->cols, b->m->cfg_src, (long long)rows,
                           (long long)cols);
        b->m->n_params += rows * cols;
        return CT_OK;
    }
    int64_t er = conv1d ? cols : rows, ec = conv1d ? rows : cols;
    if (t->ndim != 2 || t->shape[0] != er || t->shape[1] != ec) return bad_shape(b, t, er, ec);
    if (!matrix_dtype(t->dtype))
        return ct__err(CT_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; matrices must be F32, F16, BF16, "
                       "Q8_0, Q4_0 or Q4_1", tfile(b, t), t->name, ct_dtype_name(t->dtype));
    size_t rb = ct__dtype_nbytes(t->dtype, cols);
    if (!rb || rb * (size_t)rows != t->nbytes)
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': %zu bytes do not hold (%lld, %lld) %s values", tfile(b, t),
                       t->name, t->nbytes, (long long)rows, (long long)cols, ct_dtype_name(t->dtype));
    const void *data = t->data;
    if (conv1d) {
        if (ct_dtype_block(t->dtype) != 1)
            return ct__err(CT_ERR_UNSUPPORTED, "%s: tensor '%s': a Conv1D weight in %s cannot be transposed",
                           tfile(b, t), t->name, ct_dtype_name(t->dtype));
        void *tr = transpose_copy(t->data, er, ec, ct_dtype_block_bytes(t->dtype));
        if (!tr || ct__tstore_own(&b->m->ts, tr) < 0) { free(tr); return ct__err(CT_ERR_NOMEM, "%s: out of memory", name); }
        data = tr;
    }
    out->dtype = t->dtype;
    out->rows = (int)rows;
    out->cols = (int)cols;
    out->data = data;
    out->row_bytes = rb;
    out->act_q8 = (uint8_t)(b->m->q8_act != 0); /* row views and the tied head copy it */
    b->m->n_params += rows * cols;
    return CT_OK;
}

/* Vector `name` of n elements as an owned F32 copy; optional as above. */
static ct_status get_vec(wb *b, const char *name, int64_t n, int optional, const float **out) {
    *out = NULL;
    const ct_tref *t = ct__tstore_find(&b->m->ts, name);
    if (!t) return optional ? CT_OK : missing(b, name);
    if (t->ndim != 1 || t->shape[0] != n) return bad_shape(b, t, 0, n);
    if (ct__dtype_nbytes(t->dtype, n) != t->nbytes || t->dtype == CT_DT_I64 || t->dtype == CT_DT_F64)
        return ct__err(CT_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s is not supported for a vector",
                       tfile(b, t), t->name, ct_dtype_name(t->dtype));
    float *v = ct__malloc((size_t)n * sizeof(float));
    if (!v || ct__tstore_own(&b->m->ts, v) < 0) { free(v); return ct__err(CT_ERR_NOMEM, "%s: out of memory", name); }
    ct__dequant_row(t->dtype, t->data, v, n);
    *out = v;
    b->m->n_params += n;
    return CT_OK;
}

/* Row view [r0, r0+n) of W. NF4: q4 stays the whole matrix, data points at
 * the byte of element r0 * cols (the convention of src/tensor/matmul_ref.c;
 * r0 * cols must be even, see map_gpt2_layer). */
ct_mat ct__mat_rows(const ct_mat *W, int r0, int n) {
    ct_mat v = *W;
    v.rows = n;
    if (W->dtype == CT_DT_NF4) v.data = (const uint8_t *)W->data + (size_t)r0 * (size_t)W->cols / 2;
    else v.data = (const uint8_t *)W->data + (size_t)r0 * W->row_bytes;
    return v;
}

static int64_t mat_bytes(const ct_mat *W) {
    if (W->dtype != CT_DT_NF4) return (int64_t)W->rows * (int64_t)W->row_bytes;
    const int64_t n = (int64_t)W->rows * W->cols, nb = ct__q4_nblocks(n, CT_NF4_BLOCK);
    return (n + 1) / 2 + (W->q4->absmax ? 4 * nb : nb); /* codes + scales */
}

/* ---- Llama family (llama, mistral, qwen2; llama2.c) ------------------------ */

static ct_status map_llama_layer(wb *b, int l, ct__layer *L) {
    const ct_config *c = &b->m->cfg;
    const int64_t C = c->dim, H = c->hidden_dim, QD = (int64_t)c->n_heads * c->head_dim,
                  KVD = (int64_t)c->n_kv_heads * c->head_dim;
    ct_status s;
#define TRY(x) do { if ((s = (x)) != CT_OK) return s; } while (0)
    TRY(get_vec(b, nm(b, "layers.%d.input_layernorm.weight", "blk.%d.attn_norm.weight", l), C, 0, &L->attn_norm));
    TRY(get_mat(b, nm(b, "layers.%d.self_attn.q_proj.weight", "blk.%d.attn_q.weight", l), QD, C, 0, 0, &L->wq));
    TRY(get_mat(b, nm(b, "layers.%d.self_attn.k_proj.weight", "blk.%d.attn_k.weight", l), KVD, C, 0, 0, &L->wk));
    TRY(get_mat(b, nm(b, "layers.%d.self_attn.v_proj.weight", "blk.%d.attn_v.weight", l), KVD, C, 0, 0, &L->wv));
    TRY(get_mat(b, nm(b, "layers.%d.self_attn.o_proj.weight", "blk.%d.attn_output.weight", l), C, QD, 0, 0, &L->wo));
    int qb = c->qkv_bias;
    TRY(get_vec(b, nm(b, "layers.%d.self_attn.q_proj.bias", "blk.%d.attn_q.bias", l), QD, !qb, &L->bq));
    TRY(get_vec(b, nm(b, "layers.%d.self_attn.k_proj.bias", "blk.%d.attn_k.bias", l), KVD, !qb, &L->bk));
    TRY(get_vec(b, nm(b, "layers.%d.self_attn.v_proj.bias", "blk.%d.attn_v.bias", l), KVD, !qb, &L->bv));
    TRY(get_vec(b, nm(b, "layers.%d.self_attn.o_proj.bias", "blk.%d.attn_output.bias", l), C, 1, &L->bo));
    TRY(get_vec(b, nm(b, "layers.%d.post_attention_layernorm.weight", "blk.%d.ffn_norm.weight", l), C, 0,
                &L->ffn_norm));
    TRY(get_mat(b, nm(b, "layers.%d.mlp.gate_proj.weight", "blk.%d.ffn_gate.weight", l), H, C, 0, 0, &L->w_gate));
    TRY(get_mat(b, nm(b, "layers.%d.mlp.up_proj.weight", "blk.%d.ffn_up.weight", l), H, C, 0, 0, &L->w_up));
    TRY(get_mat(b, nm(b, "layers.%d.mlp.down_proj.weight", "blk.%d.ffn_down.weight", l), C, H, 0, 0, &L->w_down));
    return CT_OK;
}

static ct_status map_llama(wb *b) {
    ct_model *m = b->m;
    ct_config *c = &m->cfg;
    ct_status s;
    if (!b->gguf) b->pfx = ct__tstore_find(&m->ts, "model.embed_tokens.weight") ? "model." : "";
    TRY(get_mat(b, nm(b, "embed_tokens.weight", "token_embd.weight", 0), c->vocab_size, c->dim, 0, 0, &m->tok_emb));
    for (int l = 0; l < c->n_layers; l++) TRY(map_llama_layer(b, l, &m->layers[l]));
    TRY(get_vec(b, nm(b, "norm.weight", "output_norm.weight", 0), c->dim, 0, &m->out_norm));
    if (b->gguf) {
        /* GGUF: no output.weight means the embedding is shared */
        TRY(get_mat(b, "output.weight", c->vocab_size, c->dim, 0, 1, &m->output));
        if (!m->output.rows) c->tie_embeddings = 1;
    } else if (!c->tie_embeddings) { /* a classification checkpoint has none */
        TRY(get_mat(b, "lm_head.weight", c->vocab_size, c->dim, 0, c->num_labels > 0, &m->output));
    }
    if (c->tie_embeddings) m->output = m->tok_emb;
    if (c->num_labels > 0) TRY(get_mat(b, "score.weight", c->num_labels, c->dim, 0, 0, &m->score));
    return CT_OK;
}

/* ---- GPT-2 ------------------------------------------------------------------- */

static ct_status map_gpt2_layer(wb *b, int l, ct__layer *L) {
    const ct_config *c = &b->m->cfg;
    const int C = c->dim, H = c->hidden_dim, cv = !b->gguf; /* HF Conv1D: (in, out) */
    ct_status s;
    ct_mat qkv;
    const float *bqkv;
    TRY(get_vec(b, nm(b, "h.%d.ln_1.weight", "blk.%d.attn_norm.weight", l), C, 0, &L->attn_norm));
    TRY(get_vec(b, nm(b, "h.%d.ln_1.bias", "blk.%d.attn_norm.bias", l), C, 0, &L->attn_norm_b));
    TRY(get_mat(b, nm(b, "h.%d.attn.c_attn.weight", "blk.%d.attn_qkv.weight", l), 3 * C, C, cv, 0, &qkv));
    if (qkv.dtype == CT_DT_NF4 && C % 2)
        return ct__err(CT_ERR_UNSUPPORTED, "%s: 4-bit '%s' with n_embd %d odd: its k/v rows start mid-byte",
                       b->m->path, b->name, C);
    TRY(get_vec(b, nm(b, "h.%d.attn.c_attn.bias", "blk.%d.attn_qkv.bias", l), 3 * C, 0, &bqkv));
    /* the fused (3C, C) rows are q, then k, then v */
    L->wq = ct__mat_rows(&qkv, 0, C);
    L->wk = ct__mat_rows(&qkv, C, C);
    L->wv = ct__mat_rows(&qkv, 2 * C, C);
    L->bq = bqkv;
    L->bk = bqkv + C;
    L->bv = bqkv + 2 * C;
    TRY(get_mat(b, nm(b, "h.%d.attn.c_proj.weight", "blk.%d.attn_output.weight", l), C, C, cv, 0, &L->wo));
    TRY(get_vec(b, nm(b, "h.%d.attn.c_proj.bias", "blk.%d.attn_output.bias", l), C, 0, &L->bo));
    TRY(get_vec(b, nm(b, "h.%d.ln_2.weight", "blk.%d.ffn_norm.weight", l), C, 0, &L->ffn_norm));
    TRY(get_vec(b, nm(b, "h.%d.ln_2.bias", "blk.%d.ffn_norm.bias", l), C, 0, &L->ffn_norm_b));
    TRY(get_mat(b, nm(b, "h.%d.mlp.c_fc.weight", "blk.%d.ffn_up.weight", l), H, C, cv, 0, &L->w_up));
    TRY(get_vec(b, nm(b, "h.%d.mlp.c_fc.bias", "blk.%d.ffn_up.bias", l), H, 0, &L->b_up));
    TRY(get_mat(b, nm(b, "h.%d.mlp.c_proj.weight", "blk.%d.ffn_down.weight", l), C, H, cv, 0, &L->w_down));
    TRY(get_vec(b, nm(b, "h.%d.mlp.c_proj.bias", "blk.%d.ffn_down.bias", l), C, 0, &L->b_down));
    return CT_OK;
}

static ct_status map_gpt2(wb *b) {
    ct_model *m = b->m;
    ct_config *c = &m->cfg;
    ct_status s;
    if (c->n_kv_heads != c->n_heads || c->head_dim * c->n_heads != c->dim)
        return ct__err(CT_ERR_FORMAT, "%s: GPT-2 needs n_kv_heads = n_heads and head_dim * n_heads = dim "
                       "(%s gives %d, %d, %d, %d)", m->path, m->cfg_src, c->n_kv_heads, c->n_heads, c->head_dim,
                       c->dim);
    if (!b->gguf) b->pfx = ct__tstore_find(&m->ts, "transformer.wte.weight") ? "transformer." : "";
    TRY(get_mat(b, nm(b, "wte.weight", "token_embd.weight", 0), c->vocab_size, c->dim, 0, 0, &m->tok_emb));
    TRY(get_mat(b, nm(b, "wpe.weight", "position_embd.weight", 0), c->max_seq_len, c->dim, 0, 0, &m->pos_emb));
    for (int l = 0; l < c->n_layers; l++) TRY(map_gpt2_layer(b, l, &m->layers[l]));
    TRY(get_vec(b, nm(b, "ln_f.weight", "output_norm.weight", 0), c->dim, 0, &m->out_norm));
    TRY(get_vec(b, nm(b, "ln_f.bias", "output_norm.bias", 0), c->dim, 0, &m->out_norm_b));
    /* GPT-2's head is tied to wte; GGUF conversions store a copy as output.weight */
    TRY(get_mat(b, b->gguf ? "output.weight" : "lm_head.weight", c->vocab_size, c->dim, 0, 1, &m->output));
    if (!m->output.rows || (!b->gguf && c->tie_embeddings)) {
        if (m->output.rows) m->n_params -= (int64_t)c->vocab_size * c->dim;
        m->output = m->tok_emb;
        c->tie_embeddings = 1;
    }
    if (c->num_labels > 0) TRY(get_mat(b, "score.weight", c->num_labels, c->dim, 0, 0, &m->score));
    return CT_OK;
}
#undef TRY

/* ---- entry ---------------------------------------------------------------------- */

static ct_status check_config(const ct_model *m) {
    const ct_config *c = &m->cfg;
    const struct { const char *f; int v; } pos[] = {
        {"dim", c->dim}, {"hidden_dim", c->hidden_dim}, {"n_layers", c->n_layers}, {"n_heads", c->n_heads},
        {"n_kv_heads", c->n_kv_heads}, {"head_dim", c->head_dim}, {"vocab_size", c->vocab_size},
        {"max_seq_len", c->max_seq_len},
    };
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v <= 0)
            return ct__err(CT_ERR_FORMAT, "%s: %s = %d in %s must be positive", m->path, pos[i].f, pos[i].v,
                           m->cfg_src);
    if (c->n_heads % c->n_kv_heads)
        return ct__err(CT_ERR_FORMAT, "%s: n_kv_heads = %d does not divide n_heads = %d (%s)", m->path,
                       c->n_kv_heads, c->n_heads, m->cfg_src);
    if (c->arch == CT_ARCH_LLAMA && c->head_dim % 2)
        return ct__err(CT_ERR_FORMAT, "%s: head_dim = %d must be even for rotary embeddings (%s)", m->path,
                       c->head_dim, m->cfg_src);
    if ((int64_t)c->n_heads * c->head_dim > (1 << 24) || c->dim > (1 << 24) || c->hidden_dim > (1 << 26))
        return ct__err(CT_ERR_FORMAT, "%s: dimensions too large (%s)", m->path, m->cfg_src);
    return CT_OK;
}

ct_status ct__model_map_weights(ct_model *m) {
    ct_status s = check_config(m);
    if (s) return s;
    m->layers = ct__calloc((size_t)m->cfg.n_layers, sizeof *m->layers);
    if (!m->layers) return ct__err(CT_ERR_NOMEM, "%s: out of memory", m->path);
    wb b = {.m = m, .gguf = m->naming == CT_NAMES_GGUF, .pfx = ""};
    m->n_params = 0;
    s = m->cfg.arch == CT_ARCH_GPT2 ? map_gpt2(&b) : map_llama(&b);
    if (s) return s;
    int64_t wbytes = mat_bytes(&m->output);
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const ct__layer *L = &m->layers[l];
        wbytes += mat_bytes(&L->wq) + mat_bytes(&L->wk) + mat_bytes(&L->wv) + mat_bytes(&L->wo) +
                  mat_bytes(&L->w_gate) + mat_bytes(&L->w_up) + mat_bytes(&L->w_down);
    }
    m->weight_bytes = wbytes;
    return CT_OK;
}
