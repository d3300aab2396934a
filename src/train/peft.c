/* src/train/peft.c — PEFT's adapter_config.json (LoRA) and Hugging Face's
 * config.json, written with src/formats/json_write.c and atomically with
 * ct__write_file_atomic.
 *
 * adapter_config.json: the keys LoraConfig.save_pretrained writes in PEFT
 * 0.21.2, sorted, 2-space indent (PEFT's own layout), with PEFT's defaults
 * for everything ctune does not use; peft_version records the PEFT release
 * the file layout follows (CT_PEFT_FORMAT_VERSION). inference_mode is true,
 * as PeftModel.save_pretrained writes it. Older PEFT releases drop keys
 * they do not know with a warning.
 * Reading accepts PEFT's files and hand-written ones (see peft.h); options
 * that change what the adapter computes and that ctune does not implement
 * are rejected by name instead of ignored.
 * config.json: see ct__hf_config_write below.
 * Leaves out: prompt/prefix tuning configs (peft_type is checked, only LORA is
 * read or written), AdaLoRA/IA3/LoHa/..., target_modules regular expressions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "formats/json.h"
#include "formats/json_write.h"
#include "formats/st_write.h"
#include "train/peft.h"


/* ---- adapter_config.json: writing ----------------------------------------- */

static int cmp_str(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

static void kv_null(ct_jw *w, const char *k) { ct__jw_key(w, k); ct__jw_null(w); }
static void kv_bool(ct_jw *w, const char *k, int v) { ct__jw_key(w, k); ct__jw_bool(w, v); }
static void kv_str(ct_jw *w, const char *k, const char *v) { ct__jw_key(w, k); ct__jw_str(w, v); }
static void kv_int(ct_jw *w, const char *k, int64_t v) { ct__jw_key(w, k); ct__jw_int(w, v); }
static void kv_f32(ct_jw *w, const char *k, float v) { ct__jw_key(w, k); ct__jw_f32(w, v); }
static void kv_empty_obj(ct_jw *w, const char *k) { ct__jw_key(w, k); ct__jw_obj_begin(w); ct__jw_obj_end(w); }


ct_status ct__peft_config_write(const char *dir, const ct__peft_config *c) {
    char *path = ct__path_join(dir, "adapter_config.json");
    if (!path) return ct__err(CT_ERR_NOMEM, "%s: out of memory", dir);
    ct_status s = CT_OK;
    const char *peft_type = c->peft_type[0] ? c->peft_type : "LORA";
    const char *task_type = c->task_type[0] ? c->task_type : "CAUSAL_LM";
    const char *bias = c->bias[0] ? c->bias : "none";
    char targets[CT_PEFT_MAX_TARGETS][32];
    if (strcmp(peft_type, "LORA") != 0) {
        s = ct__err(CT_ERR_UNSUPPORTED, "%s: peft_type '%.24s' cannot be written (LORA only)", path, peft_type);
    } else if (c->r <= 0) {
        s = ct__err(CT_ERR_RANGE, "%s: r = %d must be positive", path, c->r);
    } else if (!isfinite(c->lora_alpha) || !isfinite(c->lora_dropout) || c->lora_dropout < 0 || c->lora_dropout >= 1) {
        s = ct__err(CT_ERR_RANGE, "%s: lora_alpha must be finite and lora_dropout in [0, 1)", path);
    } else if (c->n_targets < 1 || c->n_targets > CT_PEFT_MAX_TARGETS) {
        s = ct__err(CT_ERR_RANGE, "%s: %d target_modules (1..%d allowed)", path, c->n_targets, CT_PEFT_MAX_TARGETS);
    }
    for (int i = 0; s == CT_OK && i < c->n_targets; i++) {
        if (!memchr(c->targets[i], 0, sizeof c->targets[i]) || !c->targets[i][0])
            s = ct__err(CT_ERR_ARG, "%s: target_modules[%d] is empty or not terminated", path, i);
        else
            memcpy(targets[i], c->targets[i], sizeof targets[i]);
    }
    if (s != CT_OK) { free(path); return s; }
    qsort(targets, (size_t)c->n_targets, sizeof targets[0], cmp_str);

    ct_jw w;
    ct__jw_init(&w, 1);
    ct__jw_obj_begin(&w);
    /* keys in sorted order, as PEFT's json.dumps(sort_keys=True) writes them */
    kv_null(&w, "alora_invocation_tokens");
    kv_empty_obj(&w, "alpha_pattern");
    kv_null(&w, "arrow_config");
    kv_null(&w, "auto_mapping");
    if (c->base_model[0]) kv_str(&w, "base_model_name_or_path", c->base_model);
    else kv_null(&w, "base_model_name_or_path");
    kv_str(&w, "bias", bias);
    kv_null(&w, "corda_config");
    if (c->base_quant[0]) { /* ours: the base a QLoRA adapter was trained on (reloads on the same base) */
        ct__jw_key(&w, "ctune_base_quantization");
        ct__jw_obj_begin(&w);
        if (!strcmp(c->base_quant, "nf4")) {
            kv_int(&w, "blocksize", 64);
            kv_bool(&w, "double_quant", 1);
            kv_str(&w, "format", "bitsandbytes");
            kv_int(&w, "nested_blocksize", 256);
        } else if (!strcmp(c->base_quant, "q8")) {
            kv_int(&w, "blocksize", 32);
            kv_str(&w, "format", "ggml Q8_0 (BF16 where in % 32 != 0)");
        }
        kv_str(&w, "type", c->base_quant);
        ct__jw_obj_end(&w);
    }
    kv_bool(&w, "ensure_weight_tying", 0);
    kv_null(&w, "eva_config");
    kv_null(&w, "exclude_modules");
    kv_bool(&w, "fan_in_fan_out", c->fan_in_fan_out);
    kv_bool(&w, "inference_mode", 1);
    kv_bool(&w, "init_lora_weights", 1);
    kv_null(&w, "kasa_config");
    kv_null(&w, "layer_replication");
    kv_null(&w, "layers_pattern");
    kv_null(&w, "layers_to_transform");
    kv_empty_obj(&w, "loftq_config");
    kv_f32(&w, "lora_alpha", c->lora_alpha);
    kv_bool(&w, "lora_bias", 0);
    kv_f32(&w, "lora_dropout", c->lora_dropout);
    kv_null(&w, "lora_ga_config");
    kv_null(&w, "megatron_config");
    kv_str(&w, "megatron_core", "megatron.core");
    if (c->modules_to_save_score) {
        ct__jw_key(&w, "modules_to_save");
        ct__jw_arr_begin(&w);
        ct__jw_str(&w, "classifier");
        ct__jw_str(&w, "score");
        ct__jw_arr_end(&w);
    } else {
        kv_null(&w, "modules_to_save");
    }
    kv_null(&w, "monteclora_config");
    kv_str(&w, "peft_type", peft_type);
    kv_str(&w, "peft_version", CT_PEFT_FORMAT_VERSION);
    kv_int(&w, "qalora_group_size", 16);
    kv_int(&w, "r", c->r);
    kv_empty_obj(&w, "rank_pattern");
    kv_null(&w, "revision");
    ct__jw_key(&w, "target_modules");
    ct__jw_arr_begin(&w);
    for (int i = 0; i < c->n_targets; i++) ct__jw_str(&w, targets[i]);
    ct__jw_arr_end(&w);
    kv_null(&w, "target_parameters");
    kv_str(&w, "task_type", task_type);
    kv_null(&w, "trainable_token_indices");
    kv_null(&w, "use_bdlora");
    kv_bool(&w, "use_dora", 0);
    kv_bool(&w, "use_qalora", 0);
    kv_bool(&w, "use_rslora", c->use_rslora);
    kv_null(&w, "velora_config");
    ct__jw_obj_end(&w);
    s = ct__jw_write_file(path, &w);
    free(path);
    return s;
}

/* ---- adapter_config.json: reading ------------------------------------------ */

/* A value that means "not used": absent, null, false, 0, "", {} or []. */
static int is_unset(const ct_json *v) {
    if (!v) return 1;
    switch (v->type) {
    case CT_JSON_NULL: return 1;
    case CT_JSON_BOOL: return !v->u.b;
    case CT_JSON_NUM: return v->u.num == 0;
    case CT_JSON_STR: return v->u.str.len == 0;
    case CT_JSON_ARR: return v->u.arr.n == 0;
    case CT_JSON_OBJ: return v->u.obj.n == 0;
    }
    return 0;
}

/* Options that change what the adapter computes or which weights it has. */
static const struct { const char *key, *what; } k_unsupported[] = {
    {"use_dora", "DoRA (weight-decomposed LoRA)"},
    {"rank_pattern", "per-module ranks"},
    {"alpha_pattern", "per-module alphas"},
    {"lora_bias", "LoRA biases on lora_B"},
    {"use_qalora", "QA-LoRA"},
    {"use_bdlora", "BD-LoRA"},
    {"layers_to_transform", "adapting a subset of layers"},
    {"layer_replication", "layer replication"},
    {"modules_to_save", "fully trained extra modules"},
    {"exclude_modules", "excluded modules"},
    {"target_parameters", "LoRA on nn.Parameter targets"},
    {"trainable_token_indices", "trainable token embeddings"},
    {"alora_invocation_tokens", "activated LoRA"},
    {"megatron_config", "Megatron parallel layers"},
};

static ct_status read_bool(const char *path, const ct_json *j, const char *key, int def, int *out) {
    const ct_json *v = ct__json_get(j, key);
    *out = def;
    if (!v || v->type == CT_JSON_NULL) return CT_OK;
    if (v->type != CT_JSON_BOOL) return ct__err(CT_ERR_FORMAT, "%s: %s must be true or false", path, key);
    *out = v->u.b;
    return CT_OK;
}

static ct_status read_num(const char *path, const ct_json *j, const char *key, double def, double *out) {
    const ct_json *v = ct__json_get(j, key);
    *out = def;
    if (!v || v->type == CT_JSON_NULL) return CT_OK;
    if (v->type != CT_JSON_NUM) return ct__err(CT_ERR_FORMAT, "%s: %s must be a number", path, key);
    *out = v->u.num;
    return CT_OK;
}

/* Copy a string value into dst[cap]; absent/null leaves def. */
static ct_status read_str(const char *path, const ct_json *j, const char *key, const char *def, char *dst, size_t cap) {
    const ct_json *v = ct__json_get(j, key);
    snprintf(dst, cap, "%s", def);
    if (!v || v->type == CT_JSON_NULL) return CT_OK;
    if (v->type != CT_JSON_STR) return ct__err(CT_ERR_FORMAT, "%s: %s must be a string", path, key);
    if (v->u.str.len >= cap || memchr(v->u.str.s, 0, v->u.str.len))
        return ct__err(CT_ERR_RANGE, "%s: %s is longer than %zu bytes or holds a NUL", path, key, cap - 1);
    memcpy(dst, v->u.str.s, v->u.str.len + 1);
    return CT_OK;
}

static ct_status add_target(const char *path, ct__peft_config *c, const ct_json *v, size_t i) {
    if (v->type != CT_JSON_STR || v->u.str.len == 0)
        return ct__err(CT_ERR_FORMAT, "%s: target_modules[%zu] must be a non-empty string", path, i);
    if (c->n_targets >= CT_PEFT_MAX_TARGETS)
        return ct__err(CT_ERR_RANGE, "%s: target_modules has more than %d entries", path, CT_PEFT_MAX_TARGETS);
    if (v->u.str.len >= sizeof c->targets[0] || memchr(v->u.str.s, 0, v->u.str.len))
        return ct__err(CT_ERR_RANGE, "%s: target_modules entry '%.40s' is longer than %zu bytes", path, v->u.str.s,
                       sizeof c->targets[0] - 1);
    memcpy(c->targets[c->n_targets++], v->u.str.s, v->u.str.len + 1);
    return CT_OK;
}

static ct_status read_targets(const char *path, const ct_json *j, ct__peft_config *c) {
    const ct_json *v = ct__json_get(j, "target_modules");
    c->n_targets = 0;
    if (!v || v->type == CT_JSON_NULL)
        return ct__err(CT_ERR_MISSING, "%s: target_modules is missing (PEFT's per-architecture default is not "
                       "resolved by ctune: list the modules, e.g. [\"q_proj\", \"v_proj\"])", path);
    if (v->type == CT_JSON_STR) {
        /* PEFT matches a string as a regular expression over full module names;
         * ctune takes a plain module name and rejects anything regex-like. */
        if (strcmp(v->u.str.s, "all-linear") == 0)
            return ct__err(CT_ERR_UNSUPPORTED, "%s: target_modules \"all-linear\" is not supported: list the modules",
                           path);
        if (strpbrk(v->u.str.s, "*+?()[]{}|^$\\"))
            return ct__err(CT_ERR_UNSUPPORTED, "%s: target_modules '%.60s' is a regular expression; ctune supports "
                           "module names (a list like [\"q_proj\", \"v_proj\"])", path, v->u.str.s);
        return add_target(path, c, v, 0);
    }
    if (v->type != CT_JSON_ARR)
        return ct__err(CT_ERR_FORMAT, "%s: target_modules must be a list of strings or a string", path);
    if (v->u.arr.n == 0) return ct__err(CT_ERR_FORMAT, "%s: target_modules is empty", path);
    ct_status s;
    for (size_t i = 0; i < v->u.arr.n; i++)
        if ((s = add_target(path, c, &v->u.arr.items[i], i)) != CT_OK) return s;
    return CT_OK;
}

static ct_status parse_config(const char *path, const ct_json *j, ct__peft_config *c) {
    ct_status s;
    if (j->type != CT_JSON_OBJ) return ct__err(CT_ERR_FORMAT, "%s: not a JSON object", path);
    const ct_json *pt = ct__json_get(j, "peft_type");
    if (!pt) return ct__err(CT_ERR_MISSING, "%s: peft_type is missing", path);
    if (pt->type != CT_JSON_STR) return ct__err(CT_ERR_FORMAT, "%s: peft_type must be a string", path);
    if (strcmp(pt->u.str.s, "LORA") != 0)
        return ct__err(CT_ERR_UNSUPPORTED, "%s: peft_type '%.40s' is not supported here (this reader takes LORA "
                       "adapters)", path, pt->u.str.s);
    snprintf(c->peft_type, sizeof c->peft_type, "LORA");

    if ((s = read_str(path, j, "task_type", "", c->task_type, sizeof c->task_type)) != CT_OK) return s;
    if (c->task_type[0] && strcmp(c->task_type, "CAUSAL_LM") != 0 && strcmp(c->task_type, "SEQ_CLS") != 0)
        return ct__err(CT_ERR_UNSUPPORTED, "%s: task_type '%s' is not supported (CAUSAL_LM or SEQ_CLS)", path,
                       c->task_type);
    if ((s = read_str(path, j, "base_model_name_or_path", "", c->base_model, sizeof c->base_model)) != CT_OK)
        return s;

    double r, alpha, dropout;
    if ((s = read_num(path, j, "r", 8, &r)) != CT_OK) return s;
    if (!(r >= 1 && r <= 65536 && r == floor(r)))
        return ct__err(CT_ERR_RANGE, "%s: r = %g must be a positive integer", path, r);
    c->r = (int)r;
    if ((s = read_num(path, j, "lora_alpha", 8, &alpha)) != CT_OK) return s;
    if (!isfinite(alpha) || fabs(alpha) > 1e30) return ct__err(CT_ERR_RANGE, "%s: lora_alpha = %g", path, alpha);
    c->lora_alpha = (float)alpha;
    if ((s = read_num(path, j, "lora_dropout", 0, &dropout)) != CT_OK) return s;
    if (!(dropout >= 0 && dropout < 1))
        return ct__err(CT_ERR_RANGE, "%s: lora_dropout = %g must be in [0, 1)", path, dropout);
    c->lora_dropout = (float)dropout;
    if ((s = read_bool(path, j, "use_rslora", 0, &c->use_rslora)) != CT_OK) return s;
    if ((s = read_bool(path, j, "fan_in_fan_out", 0, &c->fan_in_fan_out)) != CT_OK) return s;
    const ct_json *bq = ct__json_get(j, "ctune_base_quantization");
    if (!is_unset(bq)) {
        const char *ty = bq->type == CT_JSON_OBJ ? ct__json_get_str(bq, "type") : NULL;
        if (!ty || (strcmp(ty, "nf4") && strcmp(ty, "q8") && strcmp(ty, "bf16") && strcmp(ty, "f32")))
            return ct__err(CT_ERR_FORMAT, "%s: ctune_base_quantization.type must be \"nf4\", \"q8\", \"bf16\" or "
                           "\"f32\"", path);
        snprintf(c->base_quant, sizeof c->base_quant, "%s", ty);
    }
    const char *bias = ct__json_get_str(j, "bias");
    if (bias && strcmp(bias, "lora_only") == 0) /* also longer than c->bias holds */
        return ct__err(CT_ERR_UNSUPPORTED, "%s: bias \"lora_only\" is not supported (\"none\" or \"all\")", path);
    if ((s = read_str(path, j, "bias", "none", c->bias, sizeof c->bias)) != CT_OK) return s;
    if (strcmp(c->bias, "none") != 0 && strcmp(c->bias, "all") != 0)
        return ct__err(CT_ERR_FORMAT, "%s: bias '%s' is not none, all or lora_only", path, c->bias);

    /* SEQ_CLS: PEFT saves the classifier head as a module to save; "score" (and PEFT's
       default "classifier", absent in Llama/GPT-2) is ctune's head */
    const ct_json *mts = ct__json_get(j, "modules_to_save");
    int mts_ok = !is_unset(mts) && mts->type == CT_JSON_ARR && !strcmp(c->task_type, "SEQ_CLS");
    for (size_t i = 0; mts_ok && i < mts->u.arr.n; i++) {
        const ct_json *e = &mts->u.arr.items[i];
        mts_ok = e->type == CT_JSON_STR && (!strcmp(e->u.str.s, "score") || !strcmp(e->u.str.s, "classifier"));
    }
    c->modules_to_save_score = mts_ok;
    for (size_t i = 0; i < sizeof k_unsupported / sizeof k_unsupported[0]; i++)
        if (!(mts_ok && !strcmp(k_unsupported[i].key, "modules_to_save")) && !is_unset(ct__json_get(j, k_unsupported[i].key)))
            return ct__err(CT_ERR_UNSUPPORTED, "%s: %s is set (%s): ctune does not support it", path,
                           k_unsupported[i].key, k_unsupported[i].what);
    /* init_lora_weights only says how PEFT initializes a new adapter; loftq_config etc. likewise. */
    return read_targets(path, j, c);
}

ct_status ct__peft_config_read(const char *dir, ct__peft_config *c) {
    memset(c, 0, sizeof *c);
    char *path = ct__path_join(dir, "adapter_config.json");
    if (!path) return ct__err(CT_ERR_NOMEM, "%s: out of memory", dir);
    char *text = NULL;
    size_t len = 0;
    ct_json *j = NULL;
    ct_status s = ct__read_file(path, &text, &len);
    if (s == CT_OK) s = ct__json_parse(text, len, path, &j);
    if (s == CT_OK) s = parse_config(path, j, c);
    if (s != CT_OK) memset(c, 0, sizeof *c);
    ct__json_free(j);
    free(text);
    free(path);
    return s;
}

/* ---- config.json -------------------------------------------------------------
 * llama / mistral / qwen2 (LlamaConfig, MistralConfig, Qwen2Config) and gpt2
 * (GPT2Config), with the keys transformers 5.x writes; rope theta both as
 * rope_parameters (5.x) and rope_theta (4.x), dtype as "dtype" (5.x) and
 * "torch_dtype" (4.x). qwen2 always has q/k/v biases (nothing to write); a
 * llama with qkv_bias is written with attention_bias true, which in
 * transformers also gives o_proj a bias: the caller then writes a zero
 * o_proj.bias (and ctune's own reader rejects attention_bias). */

static void kv_token(ct_jw *w, const char *k, int id) {
    ct__jw_key(w, k);
    if (id >= 0) ct__jw_int(w, id);
    else ct__jw_null(w);
}

/* A sequence classifier's labels: id2label / label2id (and the pad id its pooling needs). */
typedef struct {
    const char *const *labels;
    int n;
} cls_labels;

static void write_id2label(ct_jw *w, const cls_labels *cl) {
    if (!cl) return;
    char k[24];
    ct__jw_key(w, "id2label");
    ct__jw_obj_begin(w);
    for (int i = 0; i < cl->n; i++) {
        snprintf(k, sizeof k, "%d", i);
        kv_str(w, k, cl->labels[i]);
    }
    ct__jw_obj_end(w);
}

static void write_label2id(ct_jw *w, const cls_labels *cl) {
    if (!cl) return;
    ct__jw_key(w, "label2id");
    ct__jw_obj_begin(w);
    for (int i = 0; i < cl->n; i++) kv_int(w, cl->labels[i], i);
    ct__jw_obj_end(w);
}

/* transformers pools at the last token that is not pad_token_id: the EOS id (no text here ends
   with it), or 0 */
static void write_pad(ct_jw *w, const ct_config *cfg, const cls_labels *cl) {
    if (cl) kv_int(w, "pad_token_id", cfg->eos_id >= 0 ? cfg->eos_id : 0);
}

static void write_arch(ct_jw *w, const char *base, const cls_labels *cl) {
    char a[64];
    snprintf(a, sizeof a, "%s%s", base, cl ? "ForSequenceClassification" : "");
    ct__jw_key(w, "architectures");
    ct__jw_arr_begin(w);
    ct__jw_str(w, a);
    ct__jw_arr_end(w);
}

static void write_llama_family(ct_jw *w, const ct_config *cfg, const char *mt, const cls_labels *cl) {
    int is_llama = strcmp(mt, "llama") == 0, is_mistral = strcmp(mt, "mistral") == 0;
    int is_qwen2 = strcmp(mt, "qwen2") == 0;
    const char *arch = is_llama ? "Llama" : is_mistral ? "Mistral" : "Qwen2";
    char lm[32];
    snprintf(lm, sizeof lm, "%sForCausalLM", arch);
    write_arch(w, cl ? arch : lm, cl);
    if (is_llama) kv_bool(w, "attention_bias", cfg->qkv_bias);
    kv_f32(w, "attention_dropout", 0.0f);
    kv_token(w, "bos_token_id", cfg->bos_id);
    kv_str(w, "dtype", "float32");
    kv_token(w, "eos_token_id", cfg->eos_id);
    kv_int(w, "head_dim", cfg->head_dim);
    kv_str(w, "hidden_act", "silu");
    kv_int(w, "hidden_size", cfg->dim);
    write_id2label(w, cl);
    kv_f32(w, "initializer_range", 0.02f);
    kv_int(w, "intermediate_size", cfg->hidden_dim);
    write_label2id(w, cl);
    if (is_qwen2) {
        ct__jw_key(w, "layer_types");
        ct__jw_arr_begin(w);
        for (int i = 0; i < cfg->n_layers; i++) ct__jw_str(w, cfg->sliding_window > 0 ? "sliding_attention" : "full_attention");
        ct__jw_arr_end(w);
    }
    kv_int(w, "max_position_embeddings", cfg->max_seq_len);
    if (is_qwen2) kv_int(w, "max_window_layers", cfg->sliding_window > 0 ? 0 : cfg->n_layers);
    if (is_llama) kv_bool(w, "mlp_bias", 0);
    kv_str(w, "model_type", mt);
    kv_int(w, "num_attention_heads", cfg->n_heads);
    kv_int(w, "num_hidden_layers", cfg->n_layers);
    kv_int(w, "num_key_value_heads", cfg->n_kv_heads);
    write_pad(w, cfg, cl);
    if (is_llama) kv_int(w, "pretraining_tp", 1);
    kv_f32(w, "rms_norm_eps", cfg->norm_eps);
    ct__jw_key(w, "rope_parameters");
    ct__jw_obj_begin(w);
    kv_f32(w, "rope_theta", cfg->rope_theta);
    kv_str(w, "rope_type", "default");
    ct__jw_obj_end(w);
    kv_f32(w, "rope_theta", cfg->rope_theta);
    if (is_mistral || is_qwen2) {
        ct__jw_key(w, "sliding_window");
        if (cfg->sliding_window > 0) ct__jw_int(w, cfg->sliding_window);
        else ct__jw_null(w);
    }
    kv_bool(w, "tie_word_embeddings", cfg->tie_embeddings);
    kv_str(w, "torch_dtype", "float32");
    kv_bool(w, "use_cache", 1);
    if (is_qwen2) kv_bool(w, "use_sliding_window", cfg->sliding_window > 0);
    kv_int(w, "vocab_size", cfg->vocab_size);
}

static void write_gpt2(ct_jw *w, const ct_config *cfg, const cls_labels *cl) {
    kv_str(w, "activation_function", "gelu_new");
    write_arch(w, cl ? "GPT2" : "GPT2LMHeadModel", cl);
    kv_f32(w, "attn_pdrop", 0.1f);
    kv_token(w, "bos_token_id", cfg->bos_id);
    kv_str(w, "dtype", "float32");
    kv_f32(w, "embd_pdrop", 0.1f);
    kv_token(w, "eos_token_id", cfg->eos_id);
    write_id2label(w, cl);
    kv_f32(w, "initializer_range", 0.02f);
    write_label2id(w, cl);
    kv_f32(w, "layer_norm_epsilon", cfg->norm_eps);
    kv_str(w, "model_type", "gpt2");
    kv_int(w, "n_embd", cfg->dim);
    kv_int(w, "n_head", cfg->n_heads);
    kv_int(w, "n_inner", cfg->hidden_dim);
    kv_int(w, "n_layer", cfg->n_layers);
    kv_int(w, "n_positions", cfg->max_seq_len);
    write_pad(w, cfg, cl);
    kv_bool(w, "reorder_and_upcast_attn", 0);
    kv_f32(w, "resid_pdrop", 0.1f);
    kv_bool(w, "scale_attn_by_inverse_layer_idx", 0);
    kv_bool(w, "scale_attn_weights", 1);
    kv_bool(w, "tie_word_embeddings", cfg->tie_embeddings);
    kv_str(w, "torch_dtype", "float32");
    kv_bool(w, "use_cache", 1);
    kv_int(w, "vocab_size", cfg->vocab_size);
}

static ct_status config_write(const char *path, const ct_config *cfg, const cls_labels *cl);

ct_status ct__hf_config_write(const char *path, const ct_config *cfg) { return config_write(path, cfg, NULL); }

ct_status ct__hf_config_write_cls(const char *path, const ct_config *cfg, const char *const *labels, int n) {
    if (!labels || n < 1) return ct__err(CT_ERR_ARG, "%s: a classifier needs its labels", path);
    cls_labels cl = {labels, n};
    return config_write(path, cfg, &cl);
}

static ct_status config_write(const char *path, const ct_config *cfg, const cls_labels *cl) {
    const char *mt = cfg->model_type[0] ? cfg->model_type : (cfg->arch == CT_ARCH_GPT2 ? "gpt2" : "llama");
    int gpt2 = strcmp(mt, "gpt2") == 0;
    if (!gpt2 && strcmp(mt, "llama") != 0 && strcmp(mt, "mistral") != 0 && strcmp(mt, "qwen2") != 0)
        return ct__err(CT_ERR_UNSUPPORTED, "%s: model_type '%.32s' cannot be written (llama, mistral, qwen2, gpt2)",
                       path, mt);
    if ((gpt2 && cfg->arch != CT_ARCH_GPT2) || (!gpt2 && cfg->arch != CT_ARCH_LLAMA))
        return ct__err(CT_ERR_ARG, "%s: model_type '%s' does not match the architecture", path, mt);
    if (cfg->dim <= 0 || cfg->hidden_dim <= 0 || cfg->n_layers <= 0 || cfg->n_heads <= 0 || cfg->vocab_size <= 0 ||
        cfg->max_seq_len <= 0 || (!gpt2 && (cfg->n_kv_heads <= 0 || cfg->head_dim <= 0)))
        return ct__err(CT_ERR_ARG, "%s: the config has a non-positive size (dim %d, hidden_dim %d, layers %d, heads "
                       "%d, kv heads %d, head_dim %d, vocab %d, context %d)", path, cfg->dim, cfg->hidden_dim,
                       cfg->n_layers, cfg->n_heads, cfg->n_kv_heads, cfg->head_dim, cfg->vocab_size, cfg->max_seq_len);
    if (gpt2 && cfg->dim % cfg->n_heads != 0)
        return ct__err(CT_ERR_ARG, "%s: gpt2: n_embd %d is not a multiple of n_head %d", path, cfg->dim, cfg->n_heads);
    ct_jw w;
    ct__jw_init(&w, 1);
    ct__jw_obj_begin(&w);
    if (gpt2) write_gpt2(&w, cfg, cl);
    else write_llama_family(&w, cfg, mt, cl);
    ct__jw_obj_end(&w);
    return ct__jw_write_file(path, &w);
}
