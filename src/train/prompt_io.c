/* src/train/prompt_io.c — prompt- and prefix-tuning adapters as PEFT writes
 * them (prompt_io.h): the config keys of PromptTuningConfig /
 * PrefixTuningConfig.save_pretrained (PEFT 0.21, sorted as its
 * json.dumps(sort_keys=True)) and the one tensor, "prompt_embeddings".
 * Prefix tuning trained with the projection MLP saves the table the MLP
 * makes, as PEFT does (prefix_projection stays true in the config; PEFT
 * loads such an adapter for inference as a plain table, and so does ctune).
 * Leaves out: several adapters in one directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/internal.h"
#include "formats/json.h"
#include "formats/json_write.h"
#include "formats/loaders.h"
#include "formats/st_write.h"
#include "train/peft.h"
#include "train/prompt_io.h"
#include "train/tmodel_internal.h"

static void kv_null(ct_jw *w, const char *k) { ct__jw_key(w, k); ct__jw_null(w); }
static void kv_int(ct_jw *w, const char *k, int64_t v) { ct__jw_key(w, k); ct__jw_int(w, v); }
static void kv_str(ct_jw *w, const char *k, const char *v) {
    ct__jw_key(w, k);
    if (v) ct__jw_str(w, v);
    else ct__jw_null(w);
}

ct_status ct__prompt_save(ct__tmodel *t, const char *dir, const char *base_model, const char *init,
                          const char *init_text, const char *tokenizer) {
    const int prefix = t->o.method == CT_TM_PREFIX;
    if (!prefix && (t->o.method != CT_TM_PROMPT || !t->prompt))
        return ct__err(CT_ERR_ARG, "ct__prompt_save: not prompt or prefix tuning");
    ct_status s = ct__mkdir_p(dir);
    if (s) return s;
    const ct_config *g = t->cfg;
    char *st = ct__path_join(dir, "adapter_model.safetensors"), *cj = ct__path_join(dir, "adapter_config.json");
    if (!st || !cj) {
        free(st); free(cj);
        return ct__err(CT_ERR_NOMEM, "out of memory");
    }
    ct__st_out o = {.name = "prompt_embeddings", .dtype = CT_DT_F32, .ndim = 2,
                    .shape = {t->o.n_virtual, g->dim}, .src = t->prompt};
    if (prefix) {
        o.shape[1] = 2 * (int64_t)g->n_layers * t->kvd;
        o.src = ct__tm_prefix_table(t);
    }
    s = ct__st_write(st, &o, 1, "{\"format\":\"pt\"}");
    if (!s) { /* one key set a kind (sorted, as PEFT writes them); each kind's own keys in place */
        ct_jw w;
        ct__jw_init(&w, 1);
        ct__jw_obj_begin(&w);
        kv_null(&w, "auto_mapping");
        kv_str(&w, "base_model_name_or_path", base_model);
        if (prefix) kv_int(&w, "encoder_hidden_size", t->o.prefix_hidden > 0 ? t->o.prefix_hidden : t->kvd);
        ct__jw_key(&w, "inference_mode");
        ct__jw_bool(&w, 1);
        if (prefix) kv_null(&w, "init_weights");
        kv_null(&w, "modules_to_save");
        kv_int(&w, "num_attention_heads", prefix ? g->n_kv_heads : g->n_heads);
        kv_int(&w, "num_layers", g->n_layers);
        kv_int(&w, "num_transformer_submodules", 1);
        kv_int(&w, "num_virtual_tokens", t->o.n_virtual);
        kv_str(&w, "peft_type", prefix ? "PREFIX_TUNING" : "PROMPT_TUNING");
        kv_str(&w, "peft_version", CT_PEFT_FORMAT_VERSION);
        if (prefix) {
            ct__jw_key(&w, "prefix_projection");
            ct__jw_bool(&w, t->o.prefix_hidden > 0);
        } else {
            kv_str(&w, "prompt_tuning_init", init ? init : "RANDOM");
            kv_str(&w, "prompt_tuning_init_text", init_text);
        }
        kv_null(&w, "revision");
        kv_str(&w, "task_type", "CAUSAL_LM");
        kv_int(&w, "token_dim", prefix ? t->kvd : g->dim);
        if (!prefix) {
            kv_null(&w, "tokenizer_kwargs");
            kv_str(&w, "tokenizer_name_or_path", tokenizer);
        }
        ct__jw_obj_end(&w);
        s = ct__jw_write_file(cj, &w);
    }
    free(st); free(cj);
    return s;
}

void ct__vocab_sample(uint64_t seed, int V, int K, int32_t *ids) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (int j = 0; j < K; j++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        ids[j] = (int32_t)((x >> 33) % (uint64_t)V);
    }
}

ct_status ct__soft_init_from_ids(ct__tmodel *t, const int32_t *ids, int n) {
    if (n <= 0) return ct__err(CT_ERR_ARG, "soft prompt init: no tokens");
    if (t->o.method == CT_TM_PREFIX) return ct__tm_prefix_from_ids(t, ids, n);
    if (t->o.method != CT_TM_PROMPT || !t->prompt) return ct__err(CT_ERR_ARG, "soft prompt init: not prompt tuning");
    for (int j = 0; j < t->o.n_virtual; j++)
        ct__mat_row_f32(&t->m->tok_emb, ids[j % n], t->prompt + (size_t)j * t->cfg->dim);
    return CT_OK;
}

static ct_status read_config(const char *dir, ct_json **j, char **path) {
    *j = NULL;
    *path = ct__path_join(dir, "adapter_config.json");
    if (!*path) return ct__err(CT_ERR_NOMEM, "out of memory");
    char *text = NULL;
    size_t len = 0;
    ct_status s = ct__read_file(*path, &text, &len);
    if (!s) s = ct__json_parse(text, len, *path, j);
    free(text);
    return s;
}

int ct__is_prompt_adapter(const char *dir) {
    ct_json *j;
    char *path;
    int yes = 0;
    if (read_config(dir, &j, &path) == CT_OK) {
        const char *pt = ct__json_get_str(j, "peft_type");
        yes = pt && (!strcmp(pt, "PROMPT_TUNING") || !strcmp(pt, "PREFIX_TUNING"));
    }
    ct__json_free(j);
    free(path);
    return yes;
}

ct_status ct__prompt_opts_from_dir(const char *dir, const ct_config *g, ct__tm_opts *o) {
    ct_json *j;
    char *path;
    ct_status s = read_config(dir, &j, &path);
    int64_t k = 0, dim = 0, layers = 0, heads = 0;
    const char *pt = s ? NULL : ct__json_get_str(j, "peft_type");
    const int prefix = pt && !strcmp(pt, "PREFIX_TUNING"), kvd = g->n_kv_heads * g->head_dim;
    if (!s && (!pt || (strcmp(pt, "PROMPT_TUNING") && !prefix)))
        s = ct__err(CT_ERR_UNSUPPORTED, "%s: peft_type %s is not PROMPT_TUNING or PREFIX_TUNING", path,
                    pt ? pt : "(missing)");
    if (!s && (!ct__json_get_int(j, "num_virtual_tokens", &k) || k <= 0 || k > (prefix ? 4096 : 1 << 16)))
        s = ct__err(CT_ERR_FORMAT, "%s: num_virtual_tokens must be a positive integer%s", path,
                    prefix ? " (at most 4096)" : "");
    if (!s && ct__json_get_int(j, "token_dim", &dim) && dim != (prefix ? kvd : g->dim))
        s = ct__err(CT_ERR_FORMAT, "%s: token_dim %lld, this model's %s is %d (another base model?)", path,
                    (long long)dim, prefix ? "key/value width" : "hidden size", prefix ? kvd : g->dim);
    if (!s && prefix && ct__json_get_int(j, "num_attention_heads", &heads) && heads != g->n_kv_heads)
        s = ct__err(CT_ERR_FORMAT, "%s: num_attention_heads %lld, this model has %d key/value heads (another base "
                    "model?)", path, (long long)heads, g->n_kv_heads);
    if (!s && ct__json_get_int(j, "num_layers", &layers) && layers != g->n_layers)
        s = ct__err(CT_ERR_FORMAT, "%s: num_layers %lld, this model has %d (another base model?)", path,
                    (long long)layers, g->n_layers);
    if (!s) {
        o->method = prefix ? CT_TM_PREFIX : CT_TM_PROMPT;
        o->n_virtual = (int)k;
        o->prefix_hidden = 0; /* a saved prefix is the table itself */
    }
    ct__json_free(j);
    free(path);
    return s;
}

ct_status ct__prompt_load(ct__tmodel *t, const char *dir) {
    const int prefix = t->o.method == CT_TM_PREFIX;
    if (!(t->o.method == CT_TM_PROMPT || (prefix && !t->pfx_emb)))
        return ct__err(CT_ERR_ARG, "ct__prompt_load: not prompt tuning or a plain prefix table");
    char *path = ct__path_join(dir, "adapter_model.safetensors");
    if (!path) return ct__err(CT_ERR_NOMEM, "out of memory");
    ct_tstore ts;
    ct__tstore_init(&ts);
    ct_status s = ct__safetensors_load(path, &ts);
    const ct_tref *r = s ? NULL : ct__tstore_find(&ts, "prompt_embeddings");
    const int K = t->o.n_virtual, C = prefix ? 2 * t->cfg->n_layers * t->kvd : t->cfg->dim;
    float *dst = prefix ? t->prefix : t->prompt;
    if (!s && !r) s = ct__err(CT_ERR_FORMAT, "%s: no tensor 'prompt_embeddings'", path);
    if (!s && (r->ndim != 2 || r->shape[0] != K || r->shape[1] != C))
        s = ct__err(CT_ERR_FORMAT, "%s: prompt_embeddings is [%lld, %lld], this model needs [%d, %d]", path,
                    (long long)r->shape[0], (long long)(r->ndim > 1 ? r->shape[1] : 0), K, C);
    for (size_t i = 0; !s && i < (size_t)K * C; i++) {
        const uint8_t *d = r->data;
        uint16_t h;
        switch (r->dtype) {
        case CT_DT_F32: memcpy(&dst[i], d + 4 * i, 4); break;
        case CT_DT_F16: memcpy(&h, d + 2 * i, 2); dst[i] = ct__f16_to_f32(h); break;
        case CT_DT_BF16: memcpy(&h, d + 2 * i, 2); dst[i] = ct__bf16_to_f32(h); break;
        default:
            s = ct__err(CT_ERR_UNSUPPORTED, "%s: prompt_embeddings is %s (F32, F16 or BF16 expected)", path,
                        ct_dtype_name(r->dtype));
        }
    }
    ct__tstore_free(&ts);
    free(path);
    return s;
}
