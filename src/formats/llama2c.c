/* src/formats/llama2c.c — karpathy/llama2.c checkpoints (legacy "version 0"
 * export, as read by run.c).
 *
 * Layout: 7 x int32 header { dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size, seq_len } (vocab_size < 0: the classifier is not shared with
 * the token embedding), then F32 arrays, layer-stacked:
 *   token_embedding (V,C) rms_att (L,C) wq (L,C,C) wk (L,KV,C) wv (L,KV,C)
 *   wo (L,C,C) rms_ffn (L,C) w1 (L,H,C) w2 (L,C,H) w3 (L,H,C) rms_final (C)
 *   freq_cis_real (T,HS/2) freq_cis_imag (T,HS/2)   [unused, skipped]
 *   wcls (V,C)                                       [only when vocab_size < 0]
 * with KV = n_kv_heads * HS, HS = C / n_heads, T = seq_len.
 *
 * Tensors are exposed under GGUF names ("blk.N.attn_q.weight", ...), each a
 * slice of the mapping (no copies), so the GGUF and llama2.c paths share the
 * model builder. Leaves out: the version 1/2 exports (magic "ak42", incl. the
 * Q8_0 "runq" format) and the tokenizer (tokenizer.bin is loaded separately).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "formats/loaders.h"

enum { HDR_INTS = 7 };
#define AK42_MAGIC 0x616b3432u /* "ak42" read as a little-endian u32 */

typedef struct {
    int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
} l2c_header;

/* Element counts of the stacked arrays, overflow-checked. */
typedef struct {
    size_t C, H, L, V, KV, HS;
    size_t n_emb, n_norm, n_q, n_kv, n_ffn, n_freq;
    size_t total;  /* floats after the header, wcls included when unshared */
} l2c_sizes;

static ct_status bad_header(const char *path, const char *field, long long v, const char *why) {
    return ct__err(CT_ERR_FORMAT, "%s: header field %s = %lld: %s; not a llama2.c checkpoint or corrupt",
                   path, field, v, why);
}

static ct_status check_header(const char *path, const l2c_header *h) {
    const struct { const char *name; int32_t v; } f[] = {
        {"dim", h->dim}, {"hidden_dim", h->hidden_dim}, {"n_layers", h->n_layers}, {"n_heads", h->n_heads},
        {"n_kv_heads", h->n_kv_heads}, {"seq_len", h->seq_len},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v <= 0) return bad_header(path, f[i].name, f[i].v, "must be positive");
    if (h->vocab_size == 0 || h->vocab_size == INT32_MIN)
        return bad_header(path, "vocab_size", h->vocab_size, "must be non-zero");
    if (h->dim % h->n_heads)
        return bad_header(path, "n_heads", h->n_heads, "does not divide dim");
    if (h->n_kv_heads > h->n_heads || h->n_heads % h->n_kv_heads)
        return bad_header(path, "n_kv_heads", h->n_kv_heads, "must divide n_heads");
    if ((h->dim / h->n_heads) % 2)
        return bad_header(path, "n_heads", h->n_heads, "head size dim/n_heads must be even for RoPE");
    return CT_OK;
}

/* Fill s from h; 1 on size overflow. */
static int compute_sizes(const l2c_header *h, l2c_sizes *s) {
    int ovf = 0;
    memset(s, 0, sizeof *s);
    s->C = (size_t)h->dim;
    s->H = (size_t)h->hidden_dim;
    s->L = (size_t)h->n_layers;
    s->V = (size_t)(h->vocab_size < 0 ? -(int64_t)h->vocab_size : h->vocab_size);
    s->HS = s->C / (size_t)h->n_heads;
    s->KV = s->HS * (size_t)h->n_kv_heads;
    size_t t;
    ovf |= ct__mul_ovf(s->V, s->C, &s->n_emb);
    ovf |= ct__mul_ovf(s->L, s->C, &s->n_norm);
    ovf |= ct__mul_ovf(s->C, s->C, &t) || ct__mul_ovf(t, s->L, &s->n_q);
    ovf |= ct__mul_ovf(s->KV, s->C, &t) || ct__mul_ovf(t, s->L, &s->n_kv);
    ovf |= ct__mul_ovf(s->H, s->C, &t) || ct__mul_ovf(t, s->L, &s->n_ffn);
    ovf |= ct__mul_ovf((size_t)h->seq_len, s->HS / 2, &s->n_freq);
    /* emb + 2 norms + wq + wo + wk + wv + 3 ffn + final + 2 freq (+ wcls) */
    size_t parts[] = {s->n_emb, s->n_norm, s->n_norm, s->n_q, s->n_q, s->n_kv, s->n_kv,
                      s->n_ffn, s->n_ffn, s->n_ffn, s->C, s->n_freq, s->n_freq,
                      h->vocab_size < 0 ? s->n_emb : 0};
    s->total = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) ovf |= ct__add_ovf(s->total, parts[i], &s->total);
    ovf |= ct__mul_ovf(s->total, sizeof(float), &t);
    return ovf;
}

/* Add a 1-D or 2-D F32 slice named fmt(layer). */
static ct_status add_f32(ct_tstore *ts, int file, const float *p, int layer, const char *fmt, int64_t rows,
                         int64_t cols) {
    char name[64];
    snprintf(name, sizeof name, fmt, layer);
    int64_t shape[2] = {rows, cols};
    int nd = rows ? 2 : 1;
    size_t n = (size_t)(rows ? rows : 1) * (size_t)cols;
    return ct__tstore_add(ts, name, CT_DT_F32, nd, rows ? shape : shape + 1, p, n * sizeof(float), file);
}

static ct_status add_tensors(ct_tstore *ts, int file, const float *w, const l2c_sizes *s, int unshared) {
    const int64_t C = (int64_t)s->C, H = (int64_t)s->H, V = (int64_t)s->V, KV = (int64_t)s->KV;
    const float *emb = w, *rms_att = emb + s->n_emb, *wq = rms_att + s->n_norm, *wk = wq + s->n_q;
    const float *wv = wk + s->n_kv, *wo = wv + s->n_kv, *rms_ffn = wo + s->n_q, *w1 = rms_ffn + s->n_norm;
    const float *w2 = w1 + s->n_ffn, *w3 = w2 + s->n_ffn, *rms_final = w3 + s->n_ffn;
    const float *wcls = rms_final + s->C + 2 * s->n_freq;
    ct_status st = add_f32(ts, file, emb, 0, "token_embd.weight", V, C);
    for (size_t l = 0; l < s->L && !st; l++) {
        int li = (int)l;
        /* llama2.c applies wq/wk to adjacent pairs (x[2i], x[2i+1]) for RoPE:
         * the NORM layout, the same one GGUF llama files use, so no permute. */
        if (!st) st = add_f32(ts, file, rms_att + l * s->C, li, "blk.%d.attn_norm.weight", 0, C);
        if (!st) st = add_f32(ts, file, wq + l * s->C * s->C, li, "blk.%d.attn_q.weight", C, C);
        if (!st) st = add_f32(ts, file, wk + l * s->KV * s->C, li, "blk.%d.attn_k.weight", KV, C);
        if (!st) st = add_f32(ts, file, wv + l * s->KV * s->C, li, "blk.%d.attn_v.weight", KV, C);
        if (!st) st = add_f32(ts, file, wo + l * s->C * s->C, li, "blk.%d.attn_output.weight", C, C);
        if (!st) st = add_f32(ts, file, rms_ffn + l * s->C, li, "blk.%d.ffn_norm.weight", 0, C);
        if (!st) st = add_f32(ts, file, w1 + l * s->H * s->C, li, "blk.%d.ffn_gate.weight", H, C);
        if (!st) st = add_f32(ts, file, w2 + l * s->C * s->H, li, "blk.%d.ffn_down.weight", C, H);
        if (!st) st = add_f32(ts, file, w3 + l * s->H * s->C, li, "blk.%d.ffn_up.weight", H, C);
    }
    if (!st) st = add_f32(ts, file, rms_final, 0, "output_norm.weight", 0, C);
    if (!st && unshared) st = add_f32(ts, file, wcls, 0, "output.weight", V, C);
    return st;
}

static void fill_config(const l2c_header *h, const l2c_sizes *s, ct_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->arch = CT_ARCH_LLAMA;
    snprintf(cfg->model_type, sizeof cfg->model_type, "llama");
    cfg->dim = h->dim;
    cfg->hidden_dim = h->hidden_dim;
    cfg->n_layers = h->n_layers;
    cfg->n_heads = h->n_heads;
    cfg->n_kv_heads = h->n_kv_heads;
    cfg->head_dim = (int)s->HS;
    cfg->vocab_size = (int)s->V;
    cfg->max_seq_len = h->seq_len;
    cfg->norm_eps = 1e-5f;     /* llama2.c's rmsnorm */
    cfg->rope_theta = 10000.0f;
    cfg->rope_style = CT_ROPE_NORM;
    cfg->tie_embeddings = h->vocab_size > 0;
    cfg->qkv_bias = 0;
    cfg->sliding_window = 0;
    cfg->bos_id = 1;           /* SentencePiece llama ids */
    cfg->eos_id = 2;
}

ct_status ct__load_llama2c(const char *path, ct_tstore *ts, ct_config *cfg) {
    ct_mfile mf;
    ct_status st = ct__mfile_open(&mf, path);
    if (st) return st;
    l2c_header h;
    l2c_sizes s = {0};
    if (mf.size < sizeof h) {
        st = ct__err(CT_ERR_FORMAT, "%s: header: file is %zu bytes, a llama2.c header needs %zu", path, mf.size,
                     sizeof h);
        goto fail;
    }
    _Static_assert(sizeof(l2c_header) == HDR_INTS * 4, "header is 7 int32");
    memcpy(&h, mf.data, sizeof h);
    if ((uint32_t)h.dim == AK42_MAGIC) {
        st = ct__err(CT_ERR_UNSUPPORTED, "%s: llama2.c version 1/2 export (magic \"ak42\") is not supported; "
                     "export with --version 0 (legacy) or convert to GGUF", path);
        goto fail;
    }
    if ((st = check_header(path, &h))) goto fail;
    if (compute_sizes(&h, &s)) {
        st = ct__err(CT_ERR_FORMAT, "%s: header: dims %d/%d/%d/%d give a size that overflows", path, h.dim,
                     h.hidden_dim, h.n_layers, h.vocab_size);
        goto fail;
    }
    if ((mf.size - sizeof h) / sizeof(float) < s.total) {
        st = ct__err(CT_ERR_FORMAT, "%s: weights: file is %zu bytes but the header (dim %d, hidden %d, %d layers, "
                     "vocab %d, seq_len %d) needs %zu; the file may be truncated", path, mf.size, h.dim,
                     h.hidden_dim, h.n_layers, h.vocab_size, h.seq_len, sizeof h + s.total * sizeof(float));
        goto fail;
    }
    if ((mf.size - sizeof h) / sizeof(float) > s.total)
        ct__log(CT_LOG_WARN, "%s: %zu trailing bytes after the weights ignored", path,
                mf.size - sizeof h - s.total * sizeof(float));
    size_t n0 = ts->n;
    int file = ct__tstore_add_file(ts, &mf);
    if (file < 0) { st = ct__err(CT_ERR_NOMEM, "%s: out of memory", path); goto fail; }
    /* the store owns the mapping now; tensors point into it */
    const float *w = (const float *)(ts->files[file].data + sizeof h);
    if ((st = add_tensors(ts, file, w, &s, h.vocab_size < 0))) {
        /* out of memory: leave the store as it was (this unmaps the file) */
        while (ts->n > n0) free(ts->t[--ts->n].name);
        ct__mfile_close(&ts->files[--ts->nfiles]);
        return ct__err_prefix(st, "%s", path);
    }
    fill_config(&h, &s, cfg);
    return CT_OK;
fail:
    ct__mfile_close(&mf);
    return st;
}
