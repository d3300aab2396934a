/* src/formats/hf_dir.c — Hugging Face model directories: config.json into a
 * ct_config, weights from model.safetensors or a sharded checkpoint
 * (model.safetensors.index.json), tokenizer.json when present.
 *
 * config.json, as transformers writes it (4.x and 5.x):
 *   llama, mistral, qwen2 -> CT_ARCH_LLAMA with HF's rotary layout (NEOX).
 *     Required: hidden_size, intermediate_size, num_hidden_layers,
 *     num_attention_heads, vocab_size. Defaults are transformers' class
 *     defaults: num_key_value_heads = heads, head_dim = hidden/heads (null
 *     counts as absent), max_position_embeddings 2048 / 131072 / 32768,
 *     rms_norm_eps 1e-6, rope theta 10000 (from rope_parameters.rope_theta in
 *     5.x, rope_theta in 4.x), tie_word_embeddings false. qwen2 has q/k/v
 *     biases. Sliding window: mistral's sliding_window (null = none) applies to
 *     every layer; qwen2's only with use_sliding_window and then to layers
 *     >= max_window_layers (or as listed in layer_types): all-or-none is
 *     supported, a mix of full and sliding layers is not.
 *     Unsupported (CT_ERR_UNSUPPORTED naming the field): hidden_act other than
 *     silu/swish; rope scaling other than "default" (rope_scaling or
 *     rope_parameters.rope_type: linear, dynamic, yarn, llama3, ...); llama's
 *     attention_bias (it also puts a bias on o_proj) and mlp_bias;
 *     a quantization_config other than bitsandbytes 4-bit (bnb4.c checks
 *     it; the 4-bit tensors are read by the model builder through bnb4.h).
 *   gpt2 -> CT_ARCH_GPT2: n_embd, n_layer, n_head, vocab_size required; n_inner
 *     (null -> 4*n_embd), n_positions (1024), layer_norm_epsilon (1e-5);
 *     activation_function gelu_new or gelu_pytorch_tanh; tied embeddings
 *     unless tie_word_embeddings is explicitly false; scale_attn_weights false,
 *     scale_attn_by_inverse_layer_idx and add_cross_attention are unsupported.
 *   bos/eos_token_id: null or absent -> -1; a list -> its first element.
 * Weights: every shard named in weight_map is loaded once; each name in
 * weight_map must be found in the shard it names; a tensor in two shards is an
 * error. Shard names must be plain relative paths (no "..", not absolute).
 * On failure the store is rolled back to its state on entry.
 * Leaves out: tensor shape checks against the config (the model builder does
 * them), pytorch_model.bin (pickle) checkpoints, generation_config.json.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "formats/bnb4.h"
#include "formats/json.h"
#include "formats/loaders.h"

/* ---- config.json ---------------------------------------------------------- */

typedef struct {
    const char *path;
    const ct_json *j;
} cfgsrc;

/* 1 and *out when key holds an integer; 0 when absent or null; negative
 * status (already reported) when present with another type. */
static int get_int_field(const cfgsrc *c, const char *key, int64_t *out, ct_status *err) {
    const ct_json *v = ct__json_get(c->j, key);
    if (!v || v->type == CT_JSON_NULL) return 0;
    if (!ct__json_get_int(c->j, key, out)) {
        *err = ct__err(CT_ERR_FORMAT, "%s: %s must be an integer", c->path, key);
        return -1;
    }
    return 1;
}

/* An int field in [lo, hi]; def when absent (def < 0: required). */
static ct_status int_field(const cfgsrc *c, const char *key, int64_t def, int64_t lo, int64_t hi, int *out) {
    int64_t v;
    ct_status st = CT_OK;
    int r = get_int_field(c, key, &v, &st);
    if (r < 0) return st;
    if (r == 0) {
        if (def < 0) return ct__err(CT_ERR_MISSING, "%s: required field '%s' is missing", c->path, key);
        v = def;
    }
    if (v < lo || v > hi)
        return ct__err(CT_ERR_RANGE, "%s: %s = %lld is out of range [%lld, %lld]", c->path, key, (long long)v,
                       (long long)lo, (long long)hi);
    *out = (int)v;
    return CT_OK;
}

static ct_status float_field(const cfgsrc *c, const char *key, double def, float *out) {
    const ct_json *v = ct__json_get(c->j, key);
    double d = def;
    if (v && v->type != CT_JSON_NULL) {
        if (v->type != CT_JSON_NUM) return ct__err(CT_ERR_FORMAT, "%s: %s must be a number", c->path, key);
        d = v->u.num;
    }
    if (!(d > 0 && d <= FLT_MAX)) /* checked before the cast: out-of-range double->float is UB */
        return ct__err(CT_ERR_RANGE, "%s: %s = %g must be a positive finite number", c->path, key, d);
    *out = (float)d;
    return CT_OK;
}

static ct_status bool_field(const cfgsrc *c, const char *key, int def, int *out) {
    const ct_json *v = ct__json_get(c->j, key);
    *out = def;
    if (!v || v->type == CT_JSON_NULL) return CT_OK;
    if (v->type != CT_JSON_BOOL) return ct__err(CT_ERR_FORMAT, "%s: %s must be true or false", c->path, key);
    *out = v->u.b;
    return CT_OK;
}

/* bos/eos: integer, null, or a list of integers (first one used). */
static ct_status token_id(const cfgsrc *c, const char *key, int *out) {
    const ct_json *v = ct__json_get(c->j, key);
    *out = -1;
    if (v && v->type == CT_JSON_ARR) v = v->u.arr.n ? &v->u.arr.items[0] : NULL;
    if (!v || v->type == CT_JSON_NULL) return CT_OK;
    double d = v->type == CT_JSON_NUM ? v->u.num : -1;
    if (!(d >= 0 && d < 2147483648.0) || d != floor(d))
        return ct__err(CT_ERR_FORMAT, "%s: %s must be a non-negative integer, a list of them, or null", c->path, key);
    *out = (int)d;
    return CT_OK;
}

/* "default" rope only; *theta from rope_parameters (5.x) or rope_theta (4.x). */
static ct_status rope_fields(const cfgsrc *c, float *theta) {
    const ct_json *rs = ct__json_get(c->j, "rope_scaling");
    const ct_json *rp = ct__json_get(c->j, "rope_parameters");
    const ct_json *sc[2] = {rs, rp};
    const char *names[2] = {"rope_scaling", "rope_parameters"};
    for (int i = 0; i < 2; i++) {
        if (!sc[i] || sc[i]->type == CT_JSON_NULL) continue;
        if (sc[i]->type != CT_JSON_OBJ) return ct__err(CT_ERR_FORMAT, "%s: %s must be an object or null", c->path, names[i]);
        const char *t = ct__json_get_str(sc[i], "rope_type");
        if (!t) t = ct__json_get_str(sc[i], "type");
        if (!t || strcmp(t, "default") != 0)
            return ct__err(CT_ERR_UNSUPPORTED, "%s: %s with rope_type '%.40s' is not supported (only default rotary "
                           "embeddings)", c->path, names[i], t ? t : "(none)");
    }
    cfgsrc sub = {c->path, rp};
    if (rp && rp->type == CT_JSON_OBJ && ct__json_get(rp, "rope_theta")) return float_field(&sub, "rope_theta", 0, theta);
    return float_field(c, "rope_theta", 10000.0, theta);
}

/* Reject any present, non-null, non-false value of key as unsupported. */
static ct_status reject_if_set(const cfgsrc *c, const char *key, const char *why) {
    const ct_json *v = ct__json_get(c->j, key);
    if (!v || v->type == CT_JSON_NULL || (v->type == CT_JSON_BOOL && !v->u.b)) return CT_OK;
    return ct__err(CT_ERR_UNSUPPORTED, "%s: %s is not supported (%s)", c->path, key, why);
}

/* Number of layers in layer_types that use sliding attention; -1 if absent. */
static ct_status count_sliding(const cfgsrc *c, int n_layers, int *n_sliding) {
    const ct_json *lt = ct__json_get(c->j, "layer_types");
    *n_sliding = -1;
    if (!lt || lt->type == CT_JSON_NULL) return CT_OK;
    if (lt->type != CT_JSON_ARR || lt->u.arr.n != (size_t)n_layers)
        return ct__err(CT_ERR_FORMAT, "%s: layer_types must list one entry per layer (%d)", c->path, n_layers);
    *n_sliding = 0;
    for (size_t i = 0; i < lt->u.arr.n; i++) {
        const ct_json *e = &lt->u.arr.items[i];
        if (e->type == CT_JSON_STR && strcmp(e->u.str.s, "sliding_attention") == 0) (*n_sliding)++;
        else if (e->type != CT_JSON_STR || strcmp(e->u.str.s, "full_attention") != 0)
            return ct__err(CT_ERR_UNSUPPORTED, "%s: layer_types[%zu] is not full_attention or sliding_attention",
                           c->path, i);
    }
    return CT_OK;
}

static ct_status sliding_fields(const cfgsrc *c, ct_config *cfg) {
    int win = 0, use = 1, from = 0, n_sl;
    ct_status st;
    if ((st = int_field(c, "sliding_window", 0, 0, INT32_MAX, &win)) != CT_OK) return st;
    if (strcmp(cfg->model_type, "qwen2") == 0) {
        if ((st = bool_field(c, "use_sliding_window", 0, &use)) != CT_OK) return st;
        if ((st = int_field(c, "max_window_layers", 0, 0, INT32_MAX, &from)) != CT_OK) return st;
    }
    if ((st = count_sliding(c, cfg->n_layers, &n_sl)) != CT_OK) return st;
    if (n_sl < 0) n_sl = (use && win > 0) ? (from < cfg->n_layers ? cfg->n_layers - from : 0) : 0;
    if (n_sl > 0 && win == 0)
        return ct__err(CT_ERR_FORMAT, "%s: layers use sliding attention but sliding_window is not set", c->path);
    if (n_sl > 0 && n_sl < cfg->n_layers)
        return ct__err(CT_ERR_UNSUPPORTED, "%s: sliding_window on %d of %d layers (max_window_layers / layer_types) is "
                       "not supported: all layers or none", c->path, n_sl, cfg->n_layers);
    cfg->sliding_window = n_sl ? win : 0;
    return CT_OK;
}

static ct_status llama_config(const cfgsrc *c, ct_config *cfg) {
    ct_status st;
    const char *mt = cfg->model_type;
    int64_t max_pos = strcmp(mt, "mistral") == 0 ? 131072 : strcmp(mt, "qwen2") == 0 ? 32768 : 2048;
    cfg->arch = CT_ARCH_LLAMA;
    cfg->rope_style = CT_ROPE_NEOX;
    if ((st = int_field(c, "hidden_size", -1, 1, 1 << 20, &cfg->dim)) != CT_OK ||
        (st = int_field(c, "intermediate_size", -1, 1, 1 << 22, &cfg->hidden_dim)) != CT_OK ||
        (st = int_field(c, "num_hidden_layers", -1, 1, 1 << 12, &cfg->n_layers)) != CT_OK ||
        (st = int_field(c, "num_attention_heads", -1, 1, 1 << 12, &cfg->n_heads)) != CT_OK ||
        (st = int_field(c, "num_key_value_heads", cfg->n_heads, 1, cfg->n_heads, &cfg->n_kv_heads)) != CT_OK ||
        (st = int_field(c, "vocab_size", -1, 1, 1 << 24, &cfg->vocab_size)) != CT_OK ||
        (st = int_field(c, "max_position_embeddings", max_pos, 1, 1 << 26, &cfg->max_seq_len)) != CT_OK ||
        (st = float_field(c, "rms_norm_eps", 1e-6, &cfg->norm_eps)) != CT_OK ||
        (st = rope_fields(c, &cfg->rope_theta)) != CT_OK ||
        (st = bool_field(c, "tie_word_embeddings", 0, &cfg->tie_embeddings)) != CT_OK)
        return st;
    if (cfg->n_heads % cfg->n_kv_heads != 0)
        return ct__err(CT_ERR_RANGE, "%s: num_attention_heads (%d) is not a multiple of num_key_value_heads (%d)",
                       c->path, cfg->n_heads, cfg->n_kv_heads);
    int64_t hd;
    int r = get_int_field(c, "head_dim", &hd, &st);
    if (r < 0) return st;
    if (r == 0) {
        if (cfg->dim % cfg->n_heads != 0)
            return ct__err(CT_ERR_RANGE, "%s: hidden_size (%d) is not a multiple of num_attention_heads (%d) and "
                           "head_dim is not given", c->path, cfg->dim, cfg->n_heads);
        hd = cfg->dim / cfg->n_heads;
    }
    if (hd < 2 || hd > 4096 || hd % 2 != 0)
        return ct__err(CT_ERR_RANGE, "%s: head_dim = %lld must be even and in [2, 4096]", c->path, (long long)hd);
    cfg->head_dim = (int)hd;
    const char *act = ct__json_get_str(c->j, "hidden_act");
    if (ct__json_get(c->j, "hidden_act") && (!act || (strcmp(act, "silu") != 0 && strcmp(act, "swish") != 0)))
        return ct__err(CT_ERR_UNSUPPORTED, "%s: hidden_act '%.40s' is not supported (only silu)", c->path,
                       act ? act : "(not a string)");
    if (strcmp(mt, "qwen2") == 0) cfg->qkv_bias = 1;
    if ((st = reject_if_set(c, "attention_bias", "it puts biases on q/k/v and o_proj")) != CT_OK ||
        (st = reject_if_set(c, "mlp_bias", "biases on the MLP projections")) != CT_OK)
        return st;
    return sliding_fields(c, cfg);
}

static ct_status gpt2_config(const cfgsrc *c, ct_config *cfg) {
    ct_status st;
    int inner = 0;
    cfg->arch = CT_ARCH_GPT2;
    cfg->rope_style = CT_ROPE_NORM; /* unused: learned positions */
    cfg->rope_theta = 10000.0f;
    if ((st = int_field(c, "n_embd", -1, 1, 1 << 20, &cfg->dim)) != CT_OK ||
        (st = int_field(c, "n_layer", -1, 1, 1 << 12, &cfg->n_layers)) != CT_OK ||
        (st = int_field(c, "n_head", -1, 1, 1 << 12, &cfg->n_heads)) != CT_OK ||
        (st = int_field(c, "n_inner", 0, 0, 1 << 22, &inner)) != CT_OK ||
        (st = int_field(c, "vocab_size", -1, 1, 1 << 24, &cfg->vocab_size)) != CT_OK ||
        (st = int_field(c, "n_positions", 1024, 1, 1 << 26, &cfg->max_seq_len)) != CT_OK ||
        (st = float_field(c, "layer_norm_epsilon", 1e-5, &cfg->norm_eps)) != CT_OK ||
        (st = bool_field(c, "tie_word_embeddings", 1, &cfg->tie_embeddings)) != CT_OK)
        return st;
    if (cfg->dim % cfg->n_heads != 0)
        return ct__err(CT_ERR_RANGE, "%s: n_embd (%d) is not a multiple of n_head (%d)", c->path, cfg->dim,
                       cfg->n_heads);
    cfg->hidden_dim = inner ? inner : 4 * cfg->dim;
    cfg->n_kv_heads = cfg->n_heads;
    cfg->head_dim = cfg->dim / cfg->n_heads;
    const char *act = ct__json_get_str(c->j, "activation_function");
    if (ct__json_get(c->j, "activation_function") &&
        (!act || (strcmp(act, "gelu_new") != 0 && strcmp(act, "gelu_pytorch_tanh") != 0)))
        return ct__err(CT_ERR_UNSUPPORTED, "%s: activation_function '%.40s' is not supported (gelu_new, "
                       "gelu_pytorch_tanh)", c->path, act ? act : "(not a string)");
    int scale = 1;
    if ((st = bool_field(c, "scale_attn_weights", 1, &scale)) != CT_OK) return st;
    if (!scale) return ct__err(CT_ERR_UNSUPPORTED, "%s: scale_attn_weights false is not supported", c->path);
    if ((st = reject_if_set(c, "scale_attn_by_inverse_layer_idx", "per-layer attention scaling")) != CT_OK ||
        (st = reject_if_set(c, "add_cross_attention", "encoder-decoder cross-attention")) != CT_OK)
        return st;
    return CT_OK;
}

ct_status ct__parse_hf_config(const char *text, size_t len, const char *path, ct_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->bos_id = cfg->eos_id = -1;
    ct_json *j = NULL;
    ct_status st = ct__json_parse(text, len, path, &j);
    if (st != CT_OK) return st;
    cfgsrc c = {path, j};
    const char *mt = ct__json_get_str(j, "model_type");
    if (j->type != CT_JSON_OBJ) st = ct__err(CT_ERR_FORMAT, "%s: not a JSON object", path);
    else if (!mt && ct__json_get(j, "model_type")) st = ct__err(CT_ERR_FORMAT, "%s: model_type must be a string", path);
    else if (!mt) st = ct__err(CT_ERR_MISSING, "%s: required field 'model_type' is missing", path);
    else if (strcmp(mt, "llama") && strcmp(mt, "mistral") && strcmp(mt, "qwen2") && strcmp(mt, "gpt2"))
        st = ct__err(CT_ERR_UNSUPPORTED, "%s: model_type '%.40s' is not supported (supported: llama, mistral, qwen2, "
                     "gpt2)", path, mt);
    if (st == CT_OK) {
        snprintf(cfg->model_type, sizeof cfg->model_type, "%s", mt);
        st = strcmp(mt, "gpt2") == 0 ? gpt2_config(&c, cfg) : llama_config(&c, cfg);
    }
    if (st == CT_OK) st = ct__bnb4_check_config(j, path, NULL, NULL, NULL);
    if (st == CT_OK) { /* transformers' *ForSequenceClassification: the head is `score` */
        const ct_json *ar = ct__json_get(j, "architectures");
        const char *a0 = ar && ar->type == CT_JSON_ARR && ar->u.arr.n > 0 && ar->u.arr.items[0].type == CT_JSON_STR
                             ? ar->u.arr.items[0].u.str.s
                             : NULL;
        const char *suf = "ForSequenceClassification";
        if (a0 && strlen(a0) > strlen(suf) && !strcmp(a0 + strlen(a0) - strlen(suf), suf)) {
            const ct_json *il = ct__json_get(j, "id2label");
            int def = il && il->type == CT_JSON_OBJ ? (int)il->u.obj.n : 2;
            st = int_field(&c, "num_labels", def, 1, 1 << 16, &cfg->num_labels);
        }
    }
    if (st == CT_OK) st = token_id(&c, "bos_token_id", &cfg->bos_id);
    if (st == CT_OK) st = token_id(&c, "eos_token_id", &cfg->eos_id);
    ct__json_free(j);
    return st;
}

/* ---- weights -------------------------------------------------------------- */

static void rollback(ct_tstore *ts, size_t n0, size_t f0, size_t o0) {
    for (size_t i = n0; i < ts->n; i++) free(ts->t[i].name);
    ts->n = n0;
    for (size_t i = f0; i < ts->nfiles; i++) ct__mfile_close(&ts->files[i]);
    ts->nfiles = f0;
    for (size_t i = o0; i < ts->nowned; i++) free(ts->owned[i]);
    ts->nowned = o0;
}

static int by_name(const void *a, const void *b) {
    return strcmp((*(const ct_tref *const *)a)->name, (*(const ct_tref *const *)b)->name);
}

/* No tensor name may appear twice among ts->t[n0..n). */
static ct_status check_unique(const ct_tstore *ts, size_t n0, const char *dir) {
    size_t n = ts->n - n0;
    if (n < 2) return CT_OK;
    const ct_tref **v = malloc(n * sizeof *v);
    if (!v) return ct__err(CT_ERR_NOMEM, "%s: out of memory", dir);
    for (size_t i = 0; i < n; i++) v[i] = &ts->t[n0 + i];
    qsort(v, n, sizeof *v, by_name);
    ct_status st = CT_OK;
    for (size_t i = 1; i < n && st == CT_OK; i++)
        if (strcmp(v[i - 1]->name, v[i]->name) == 0)
            st = ct__err(CT_ERR_FORMAT, "%s: tensor '%s' is stored in two shards (%s and %s)", dir, v[i]->name,
                         ts->files[v[i - 1]->file].path, ts->files[v[i]->file].path);
    free(v);
    return st;
}

static int safe_shard_name(const char *s) {
    if (!*s || s[0] == '/') return 0;
    for (const char *p = s; *p;) { /* no ".." path component */
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.') return 0;
        p += n;
        if (*p) p++;
    }
    return 1;
}

/* Load every shard named in index (once), then check weight_map against them. */
static ct_status load_sharded(const char *dir, const char *index_path, ct_tstore *ts) {
    char *text = NULL;
    size_t len = 0;
    ct_json *j = NULL;
    ct_status st = ct__read_file(index_path, &text, &len);
    if (st == CT_OK) st = ct__json_parse(text, len, index_path, &j);
    free(text);
    if (st != CT_OK) return st;
    const ct_json *wm = ct__json_get(j, "weight_map");
    size_t n0 = ts->n, f0 = ts->nfiles, o0 = ts->nowned;
    if (!wm || wm->type != CT_JSON_OBJ || wm->u.obj.n == 0)
        st = ct__err(CT_ERR_FORMAT, "%s: weight_map is missing, empty or not an object", index_path);
    /* pass 1: load shards in order of first mention */
    for (size_t i = 0; st == CT_OK && i < wm->u.obj.n; i++) {
        const ct_json *v = &wm->u.obj.vals[i];
        if (v->type != CT_JSON_STR || !safe_shard_name(v->u.str.s) || strlen(v->u.str.s) != v->u.str.len) {
            st = ct__err(CT_ERR_FORMAT, "%s: weight_map['%s'] must be a file name inside the directory", index_path,
                         wm->u.obj.keys[i]);
            break;
        }
        int seen = 0;
        for (size_t k = 0; k < i && !seen; k++) seen = strcmp(wm->u.obj.vals[k].u.str.s, v->u.str.s) == 0;
        if (seen) continue;
        char *p = ct__path_join(dir, v->u.str.s);
        if (!p) st = ct__err(CT_ERR_NOMEM, "%s: out of memory", dir);
        else if (!ct__file_exists(p))
            st = ct__err(CT_ERR_MISSING, "%s: shard '%s' (holding '%s') does not exist", index_path, v->u.str.s,
                         wm->u.obj.keys[i]);
        else st = ct__safetensors_load(p, ts);
        free(p);
    }
    if (st == CT_OK) st = check_unique(ts, n0, dir);
    /* pass 2: each listed tensor is in the shard the index names */
    for (size_t i = 0; st == CT_OK && i < wm->u.obj.n; i++) {
        const char *name = wm->u.obj.keys[i], *shard = wm->u.obj.vals[i].u.str.s;
        const ct_tref *t = NULL;
        for (size_t k = n0; k < ts->n && !t; k++)
            if (strcmp(ts->t[k].name, name) == 0) t = &ts->t[k];
        if (!t) {
            st = ct__err(CT_ERR_MISSING, "%s: tensor '%s' listed in weight_map is not in shard '%s'", index_path, name,
                         shard);
            break;
        }
        char *want = ct__path_join(dir, shard);
        if (!want) st = ct__err(CT_ERR_NOMEM, "%s: out of memory", dir);
        else if (t->file < 0 || strcmp(ts->files[t->file].path, want) != 0)
            st = ct__err(CT_ERR_FORMAT, "%s: tensor '%s' is listed in shard '%s' but stored in '%s'", index_path, name,
                         shard, t->file < 0 ? "?" : ts->files[t->file].path);
        free(want);
    }
    if (st != CT_OK) rollback(ts, n0, f0, o0);
    ct__json_free(j);
    return st;
}

/* Message for a directory without safetensors weights. */
static ct_status no_weights(const char *dir) {
    static const char *const other[] = {"pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5",
                                        "flax_model.msgpack", "adapter_model.safetensors"};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        char *p = ct__path_join(dir, other[i]);
        int has = p && ct__file_exists(p);
        free(p);
        if (!has) continue;
        if (i == 4)
            return ct__err(CT_ERR_MISSING, "%s: no model.safetensors, only %s: this is a PEFT adapter; load its base "
                           "model", dir, other[i]);
        return ct__err(CT_ERR_MISSING, "%s: no model.safetensors or model.safetensors.index.json, only %s; convert "
                       "it to safetensors (transformers: model.save_pretrained(dir, safe_serialization=True))",
                       dir, other[i]);
    }
    return ct__err(CT_ERR_MISSING, "%s: no model.safetensors or model.safetensors.index.json (weights must be in "
                   "safetensors format)", dir);
}

ct_status ct__load_hf_dir(const char *dir, ct_tstore *ts, ct_config *cfg, ct_tokenizer **tok) {
    if (tok) *tok = NULL;
    if (!ct__is_dir(dir)) return ct__err(CT_ERR_IO, "%s: not a directory", dir);
    size_t n0 = ts->n, f0 = ts->nfiles, o0 = ts->nowned;
    char *cpath = ct__path_join(dir, "config.json"), *wpath = ct__path_join(dir, "model.safetensors"),
         *ipath = ct__path_join(dir, "model.safetensors.index.json"), *tpath = ct__path_join(dir, "tokenizer.json");
    char *text = NULL;
    size_t len = 0;
    ct_status st = CT_OK;
    if (!cpath || !wpath || !ipath || !tpath) st = ct__err(CT_ERR_NOMEM, "%s: out of memory", dir);
    else if (!ct__file_exists(cpath))
        st = ct__err(CT_ERR_MISSING, "%s: no config.json (a Hugging Face model directory holds config.json and "
                     "model.safetensors)", dir);
    if (st == CT_OK) st = ct__read_file(cpath, &text, &len);
    if (st == CT_OK) st = ct__parse_hf_config(text, len, cpath, cfg);
    free(text);
    if (st == CT_OK) {
        if (ct__file_exists(wpath)) st = ct__safetensors_load(wpath, ts);
        else if (ct__file_exists(ipath)) st = load_sharded(dir, ipath, ts);
        else st = no_weights(dir);
    }
    if (st == CT_OK && tok && ct__file_exists(tpath)) st = ct_tokenizer_load(tpath, tok);
    if (st != CT_OK) rollback(ts, n0, f0, o0);
    free(cpath);
    free(wpath);
    free(ipath);
    free(tpath);
    return st;
}
