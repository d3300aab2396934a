/* tests/unit/test_peft.c — PEFT adapter_config.json and HF config.json
 * (src/train/peft.c).
 *
 * 1. ct__peft_config_write -> ct__peft_config_read round trip; the file is
 *    sorted JSON with every key PEFT 0.21.2's LoraConfig writes (the key list
 *    below was printed by LoraConfig(...).save_pretrained), target_modules
 *    sorted, peft_version recorded.
 * 2. Hand-written adapter configs: target_modules as a string, missing
 *    optional keys (PEFT's defaults), PROMPT_TUNING, use_dora, rank_pattern,
 *    r = 0, a regex target, too many targets, malformed JSON, a missing file:
 *    statuses and messages naming the file and key.
 * 3. ct__hf_config_write -> ct__parse_hf_config (the project's reader) round
 *    trip for llama, mistral (sliding window), qwen2 (biases, sliding window)
 *    and gpt2; llama with qkv_bias writes attention_bias true.
 * 4. Only with CTUNE_PEFT_OUT_DIR set (tests/e2e/test_peft_files.sh): writes a
 *    tiny Llama as an HF directory (config.json + model.safetensors) and a
 *    LoRA adapter for it (adapter_config.json + adapter_model.safetensors),
 *    plus configs of the other families and a F32/F16/BF16 file, for
 *    tests/golden/check_peft_files.py to load with transformers and PEFT.
 *    Values follow value(name, i) below, which the script recomputes.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/internal.h"
#include "formats/json.h"
#include "formats/loaders.h"
#include "formats/st_write.h"
#include "train/peft.h"

static char g_dir[256];

static int has(const char *msg, const char *needle) {
    if (strstr(msg, needle)) return 1;
    fprintf(stderr, "message [%s] lacks [%s]\n", msg, needle);
    return 0;
}

static void write_text(const char *dir, const char *name, const char *text) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    fputs(text, f);
    fclose(f);
}

/* ---- 1. round trip --------------------------------------------------------------- */

static const char *k_peft_keys[] = {
    "alora_invocation_tokens", "alpha_pattern", "arrow_config", "auto_mapping", "base_model_name_or_path", "bias",
    "corda_config", "ensure_weight_tying", "eva_config", "exclude_modules", "fan_in_fan_out", "inference_mode",
    "init_lora_weights", "kasa_config", "layer_replication", "layers_pattern", "layers_to_transform",
    "loftq_config", "lora_alpha", "lora_bias", "lora_dropout", "lora_ga_config", "megatron_config",
    "megatron_core", "modules_to_save", "monteclora_config", "peft_type", "peft_version", "qalora_group_size",
    "r", "rank_pattern", "revision", "target_modules", "target_parameters", "task_type",
    "trainable_token_indices", "use_bdlora", "use_dora", "use_qalora", "use_rslora", "velora_config",
};

static void test_roundtrip(void) {
    ct__peft_config c, r;
    memset(&c, 0, sizeof c);
    snprintf(c.peft_type, sizeof c.peft_type, "LORA");
    snprintf(c.task_type, sizeof c.task_type, "CAUSAL_LM");
    snprintf(c.base_model, sizeof c.base_model, "/models/with \"quotes\"/SmolLM2");
    c.r = 16;
    c.lora_alpha = 32;
    c.lora_dropout = 0.05f;
    c.use_rslora = 1;
    c.n_targets = 3;
    snprintf(c.targets[0], 32, "v_proj");
    snprintf(c.targets[1], 32, "q_proj");
    snprintf(c.targets[2], 32, "o_proj");
    snprintf(c.bias, sizeof c.bias, "none");
    CHECK_OK(ct__peft_config_write(g_dir, &c));
    CHECK_OK(ct__peft_config_read(g_dir, &r));
    CHECK(strcmp(r.peft_type, "LORA") == 0 && strcmp(r.task_type, "CAUSAL_LM") == 0);
    CHECK(strcmp(r.base_model, c.base_model) == 0);
    CHECK(r.r == 16 && r.lora_alpha == 32 && r.lora_dropout == 0.05f && r.use_rslora == 1 && r.fan_in_fan_out == 0);
    CHECK(strcmp(r.bias, "none") == 0);
    CHECK_EQ_INT(r.n_targets, 3);
    CHECK(strcmp(r.targets[0], "o_proj") == 0 && strcmp(r.targets[1], "q_proj") == 0 &&
          strcmp(r.targets[2], "v_proj") == 0);

    /* the file itself */
    char path[600], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/adapter_config.json", g_dir);
    CHECK_OK(ct__read_file(path, &text, &len));
    ct_json *j = NULL;
    if (text) CHECK_OK(ct__json_parse(text, len, path, &j));
    if (j) {
        size_t nk = sizeof k_peft_keys / sizeof k_peft_keys[0];
        CHECK_EQ_INT(j->u.obj.n, nk);
        for (size_t i = 0; i < nk && i < j->u.obj.n; i++)
            if (strcmp(j->u.obj.keys[i], k_peft_keys[i]) != 0) {
                fprintf(stderr, "key %zu: %s, PEFT writes %s\n", i, j->u.obj.keys[i], k_peft_keys[i]);
                CHECK(0);
            }
        CHECK(strcmp(ct__json_get_str(j, "peft_version"), "0.21.2") == 0);
        const ct_json *tm = ct__json_get(j, "target_modules");
        CHECK(tm && tm->type == CT_JSON_ARR && tm->u.arr.n == 3);
        int b;
        CHECK(ct__json_get_bool(j, "use_dora", &b) && b == 0);
        ct__json_free(j);
    }
    CHECK(text && strstr(text, "\"lora_dropout\": 0.05,") && strstr(text, "{\n  \"alora_invocation_tokens\": null,"));
    free(text);

    /* writer checks */
    ct__peft_config bad = c;
    bad.r = 0;
    CHECK(ct__peft_config_write(g_dir, &bad) == CT_ERR_RANGE && has(ct_errmsg(), "r = 0"));
    bad = c;
    bad.n_targets = 0;
    CHECK(ct__peft_config_write(g_dir, &bad) == CT_ERR_RANGE && has(ct_errmsg(), "target_modules"));
    bad = c;
    snprintf(bad.peft_type, sizeof bad.peft_type, "PREFIX_TUNING");
    CHECK(ct__peft_config_write(g_dir, &bad) == CT_ERR_UNSUPPORTED && has(ct_errmsg(), "PREFIX_TUNING"));
    /* a failed write left the good file */
    CHECK_OK(ct__peft_config_read(g_dir, &r));
    CHECK(r.r == 16);
}

/* ---- 2. hand-written configs --------------------------------------------------- */

static ct_status read_text(const char *text, ct__peft_config *c) {
    char d[600];
    snprintf(d, sizeof d, "%s/hand", g_dir);
    CHECK_OK(ct__mkdir_p(d));
    write_text(d, "adapter_config.json", text);
    return ct__peft_config_read(d, c);
}

static void expect(const char *text, ct_status want, const char *msg) {
    ct__peft_config c;
    ct_status s = read_text(text, &c);
    if (s != want) fprintf(stderr, "[%.70s]: got %s (%s)\n", text, ct_status_str(s), ct_errmsg());
    CHECK(s == want);
    CHECK(has(ct_errmsg(), "hand/adapter_config.json"));
    CHECK(has(ct_errmsg(), msg));
}

static void test_hand_written(void) {
    ct__peft_config c;
    CHECK_OK(read_text("{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": \"c_attn\", "
                       "\"fan_in_fan_out\": true, \"task_type\": \"CAUSAL_LM\"}", &c));
    CHECK(c.n_targets == 1 && strcmp(c.targets[0], "c_attn") == 0 && c.fan_in_fan_out == 1 && c.r == 4);
    /* only the required keys: PEFT's defaults for the rest */
    CHECK_OK(read_text("{\"peft_type\": \"LORA\", \"target_modules\": [\"q_proj\", \"k_proj\"]}", &c));
    CHECK(c.r == 8 && c.lora_alpha == 8 && c.lora_dropout == 0 && c.use_rslora == 0 && c.fan_in_fan_out == 0);
    CHECK(strcmp(c.bias, "none") == 0 && c.task_type[0] == 0 && c.base_model[0] == 0);
    CHECK(c.n_targets == 2 && strcmp(c.targets[1], "k_proj") == 0);
    /* nulls and PEFT's "off" values are fine */
    CHECK_OK(read_text("{\"peft_type\": \"LORA\", \"r\": 2, \"target_modules\": [\"q_proj\"], \"use_dora\": false, "
                       "\"rank_pattern\": {}, \"alpha_pattern\": {}, \"modules_to_save\": null, \"layers_to_transform\": "
                       "null, \"base_model_name_or_path\": null, \"lora_dropout\": 0.1, \"bias\": \"all\"}", &c));
    CHECK(c.r == 2 && c.lora_dropout == 0.1f && strcmp(c.bias, "all") == 0);

    expect("{\"peft_type\": \"PROMPT_TUNING\", \"num_virtual_tokens\": 20}", CT_ERR_UNSUPPORTED,
           "peft_type 'PROMPT_TUNING' is not supported");
    expect("{\"peft_type\": \"LORA\", \"r\": 4, \"target_modules\": [\"q_proj\"], \"use_dora\": true}",
           CT_ERR_UNSUPPORTED, "use_dora");
    expect("{\"peft_type\": \"LORA\", \"r\": 4, \"target_modules\": [\"q_proj\"], \"rank_pattern\": {\"q_proj\": 8}}",
           CT_ERR_UNSUPPORTED, "rank_pattern");
    expect("{\"peft_type\": \"LORA\", \"r\": 0, \"target_modules\": [\"q_proj\"]}", CT_ERR_RANGE, "r = 0");
    expect("{\"peft_type\": \"LORA\", \"r\": 2.5, \"target_modules\": [\"q_proj\"]}", CT_ERR_RANGE, "r = 2.5");
    expect("{\"peft_type\": \"LORA\", \"r\": \"4\", \"target_modules\": [\"q_proj\"]}", CT_ERR_FORMAT, "r must be");
    expect("{\"peft_type\": \"LORA\", \"r\": 4}", CT_ERR_MISSING, "target_modules");
    expect("{\"peft_type\": \"LORA\", \"target_modules\": \".*(q|v)_proj\"}", CT_ERR_UNSUPPORTED, "regular expression");
    expect("{\"peft_type\": \"LORA\", \"target_modules\": \"all-linear\"}", CT_ERR_UNSUPPORTED, "all-linear");
    expect("{\"peft_type\": \"LORA\", \"target_modules\": [\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\","
           "\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"]}", CT_ERR_RANGE, "more than 16");
    expect("{\"peft_type\": \"LORA\", \"target_modules\": [\"q_proj\", 3]}", CT_ERR_FORMAT, "target_modules[1]");
    expect("{\"peft_type\": \"LORA\", \"target_modules\": [\"q_proj\"], \"lora_dropout\": 1.5}", CT_ERR_RANGE,
           "lora_dropout");
    expect("{\"peft_type\": \"LORA\", \"target_modules\": [\"q_proj\"], \"use_rslora\": 1}", CT_ERR_FORMAT,
           "use_rslora");
    expect("{\"r\": 4, \"target_modules\": [\"q_proj\"]}", CT_ERR_MISSING, "peft_type");
    expect("{\"peft_type\": \"LORA\", \"r\": 4,, \"target_modules\": [\"q_proj\"]}", CT_ERR_FORMAT, ":1:");
    expect("{\"peft_type\": \"LORA\", \"target_modules\": [\"q_proj\"], \"bias\": \"lora_only\"}",
           CT_ERR_UNSUPPORTED, "bias");
    expect("{\"peft_type\": \"LORA\", \"target_modules\": [\"q_proj\"], \"bias\": \"some\"}", CT_ERR_FORMAT,
           "bias 'some'");
    expect("[1, 2]", CT_ERR_FORMAT, "not a JSON object");
    ct_status s = ct__peft_config_read("/nonexistent/adapter", &c);
    CHECK(s == CT_ERR_IO && has(ct_errmsg(), "/nonexistent/adapter/adapter_config.json"));
}

/* ---- 3. config.json ------------------------------------------------------------ */

static ct_config tiny_llama(void) {
    ct_config c;
    memset(&c, 0, sizeof c);
    c.arch = CT_ARCH_LLAMA;
    snprintf(c.model_type, sizeof c.model_type, "llama");
    c.dim = 64;
    c.hidden_dim = 128;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 16;
    c.vocab_size = 256;
    c.max_seq_len = 128;
    c.norm_eps = 1e-5f;
    c.rope_theta = 10000.0f;
    c.rope_style = CT_ROPE_NEOX;
    c.bos_id = 1;
    c.eos_id = 2;
    return c;
}

static ct_config tiny_gpt2(void) {
    ct_config c = tiny_llama();
    c.arch = CT_ARCH_GPT2;
    snprintf(c.model_type, sizeof c.model_type, "gpt2");
    c.hidden_dim = 256;
    c.n_kv_heads = 4;
    c.norm_eps = 1e-5f;
    c.tie_embeddings = 1;
    c.bos_id = c.eos_id = 255;
    return c;
}

static void check_same(const ct_config *a, const ct_config *b) {
    CHECK(a->arch == b->arch && strcmp(a->model_type, b->model_type) == 0);
    CHECK(a->dim == b->dim && a->hidden_dim == b->hidden_dim && a->n_layers == b->n_layers);
    CHECK(a->n_heads == b->n_heads && a->n_kv_heads == b->n_kv_heads && a->head_dim == b->head_dim);
    CHECK(a->vocab_size == b->vocab_size && a->max_seq_len == b->max_seq_len && a->norm_eps == b->norm_eps);
    CHECK(a->tie_embeddings == b->tie_embeddings && a->qkv_bias == b->qkv_bias);
    CHECK(a->sliding_window == b->sliding_window && a->bos_id == b->bos_id && a->eos_id == b->eos_id);
    if (a->arch == CT_ARCH_LLAMA) CHECK(a->rope_theta == b->rope_theta);
}

static void config_roundtrip(const ct_config *c, const char *name) {
    char path[600], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%s.json", g_dir, name);
    CHECK_OK(ct__hf_config_write(path, c));
    CHECK_OK(ct__read_file(path, &text, &len));
    ct_config r;
    if (text) {
        CHECK_OK(ct__parse_hf_config(text, len, path, &r));
        check_same(c, &r);
    }
    free(text);
}

static void test_hf_config(void) {
    ct_config c = tiny_llama();
    config_roundtrip(&c, "llama");
    c.tie_embeddings = 1;
    c.bos_id = c.eos_id = -1;
    c.rope_theta = 500000.0f;
    config_roundtrip(&c, "llama_tied");
    ct_config m = tiny_llama();
    snprintf(m.model_type, sizeof m.model_type, "mistral");
    m.sliding_window = 64;
    config_roundtrip(&m, "mistral");
    m.sliding_window = 0;
    config_roundtrip(&m, "mistral_nowin");
    ct_config q = tiny_llama();
    snprintf(q.model_type, sizeof q.model_type, "qwen2");
    q.qkv_bias = 1;
    q.tie_embeddings = 1;
    q.norm_eps = 1e-6f;
    config_roundtrip(&q, "qwen2");
    q.sliding_window = 32;
    config_roundtrip(&q, "qwen2_win");
    ct_config g = tiny_gpt2();
    config_roundtrip(&g, "gpt2");
    g.tie_embeddings = 0;
    config_roundtrip(&g, "gpt2_untied");

    /* llama with q/k/v biases: attention_bias true (which ctune's reader rejects: it also biases o_proj) */
    ct_config b = tiny_llama();
    b.qkv_bias = 1;
    char path[600], *text = NULL;
    snprintf(path, sizeof path, "%s/llama_bias.json", g_dir);
    CHECK_OK(ct__hf_config_write(path, &b));
    CHECK_OK(ct__read_file(path, &text, NULL));
    CHECK(text && strstr(text, "\"attention_bias\": true"));
    free(text);

    ct_config u = tiny_llama();
    snprintf(u.model_type, sizeof u.model_type, "phi3");
    CHECK(ct__hf_config_write(path, &u) == CT_ERR_UNSUPPORTED && has(ct_errmsg(), "phi3"));
    u = tiny_llama();
    u.n_heads = 0;
    CHECK(ct__hf_config_write(path, &u) == CT_ERR_ARG && has(ct_errmsg(), path));
}

/* ---- 4. files for the Python check -------------------------------------------------
 * value(name, i) = ((i * 31 + h) % 201 - 100) / 128 with h = FNV-1a-32(name) % 1000:
 * exact in F32, F16 and BF16, recomputed by check_peft_files.py. */

static uint32_t fnv1a(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

typedef struct {
    ct__st_out t[64];
    float *buf[64];
    char names[64][128];
    int n;
} tlist;

static void add(tlist *l, const char *name, ct_dtype dt, int ndim, int64_t d0, int64_t d1) {
    if (l->n >= 64) { fprintf(stderr, "tlist full\n"); exit(1); }
    int k = l->n++;
    snprintf(l->names[k], sizeof l->names[k], "%s", name);
    int64_t numel = ndim == 1 ? d0 : d0 * d1;
    float *v = malloc(sizeof(float) * (size_t)numel);
    if (!v) exit(1);
    int64_t h = fnv1a(name) % 1000;
    for (int64_t i = 0; i < numel; i++) v[i] = (float)((i * 31 + h) % 201 - 100) / 128.0f;
    l->buf[k] = v;
    l->t[k] = (ct__st_out){l->names[k], dt, ndim, {d0, d1}, v};
}

static void free_list(tlist *l) {
    for (int i = 0; i < l->n; i++) free(l->buf[i]);
    l->n = 0;
}

static void write_out_files(const char *out) {
    char d[600], p[700], nm[128];
    tlist *l = calloc(1, sizeof *l);
    if (!l) exit(1);
    ct_config c = tiny_llama();
    int C = c.dim, HS = c.head_dim, Q = c.n_heads * HS, KV = c.n_kv_heads * HS, F = c.hidden_dim;

    /* (b) the model */
    snprintf(d, sizeof d, "%s/model", out);
    CHECK_OK(ct__mkdir_p(d));
    snprintf(p, sizeof p, "%s/config.json", d);
    CHECK_OK(ct__hf_config_write(p, &c));
    add(l, "model.embed_tokens.weight", CT_DT_F32, 2, c.vocab_size, C);
    for (int i = 0; i < c.n_layers; i++) {
#define L(fmt, ...) (snprintf(nm, sizeof nm, "model.layers.%d." fmt, i), nm)
        add(l, L("input_layernorm.weight"), CT_DT_F32, 1, C, 0);
        add(l, L("self_attn.q_proj.weight"), CT_DT_F32, 2, Q, C);
        add(l, L("self_attn.k_proj.weight"), CT_DT_F32, 2, KV, C);
        add(l, L("self_attn.v_proj.weight"), CT_DT_F32, 2, KV, C);
        add(l, L("self_attn.o_proj.weight"), CT_DT_F32, 2, C, Q);
        add(l, L("post_attention_layernorm.weight"), CT_DT_F32, 1, C, 0);
        add(l, L("mlp.gate_proj.weight"), CT_DT_F32, 2, F, C);
        add(l, L("mlp.up_proj.weight"), CT_DT_F32, 2, F, C);
        add(l, L("mlp.down_proj.weight"), CT_DT_F32, 2, C, F);
#undef L
    }
    add(l, "model.norm.weight", CT_DT_F32, 1, C, 0);
    add(l, "lm_head.weight", CT_DT_F32, 2, c.vocab_size, C);
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    CHECK_OK(ct__st_write(p, l->t, l->n, "{\"format\":\"pt\"}"));
    free_list(l);

    /* (a) the adapter */
    snprintf(d, sizeof d, "%s/adapter", out);
    CHECK_OK(ct__mkdir_p(d));
    ct__peft_config a;
    memset(&a, 0, sizeof a);
    snprintf(a.peft_type, sizeof a.peft_type, "LORA");
    snprintf(a.task_type, sizeof a.task_type, "CAUSAL_LM");
    snprintf(a.base_model, sizeof a.base_model, "%s/model", out);
    a.r = 4;
    a.lora_alpha = 8;
    a.n_targets = 2;
    snprintf(a.targets[0], 32, "q_proj");
    snprintf(a.targets[1], 32, "v_proj");
    snprintf(a.bias, sizeof a.bias, "none");
    CHECK_OK(ct__peft_config_write(d, &a));
    for (int i = 0; i < c.n_layers; i++) {
        const char *proj[2] = {"q_proj", "v_proj"};
        int outd[2] = {Q, KV};
        for (int k = 0; k < 2; k++) {
            snprintf(nm, sizeof nm, "base_model.model.model.layers.%d.self_attn.%s.lora_A.weight", i, proj[k]);
            add(l, nm, CT_DT_F32, 2, a.r, C);
            snprintf(nm, sizeof nm, "base_model.model.model.layers.%d.self_attn.%s.lora_B.weight", i, proj[k]);
            add(l, nm, CT_DT_F32, 2, outd[k], a.r);
        }
    }
    snprintf(p, sizeof p, "%s/adapter_model.safetensors", d);
    CHECK_OK(ct__st_write(p, l->t, l->n, "{\"format\":\"pt\"}"));
    free_list(l);

    /* configs of the other families (the script builds models from them) */
    const char *fam[4] = {"mistral", "qwen2", "gpt2", "llama_tied"};
    for (int f = 0; f < 4; f++) {
        ct_config x = f == 2 ? tiny_gpt2() : tiny_llama();
        if (f < 2) snprintf(x.model_type, sizeof x.model_type, "%s", fam[f]);
        if (f == 0) x.sliding_window = 64;
        if (f == 1) { x.qkv_bias = 1; x.tie_embeddings = 1; }
        if (f == 3) x.tie_embeddings = 1;
        snprintf(d, sizeof d, "%s/cfg_%s", out, fam[f]);
        CHECK_OK(ct__mkdir_p(d));
        snprintf(p, sizeof p, "%s/config.json", d);
        CHECK_OK(ct__hf_config_write(p, &x));
    }

    /* every stored dtype */
    add(l, "f32", CT_DT_F32, 2, 7, 9);
    add(l, "f16", CT_DT_F16, 2, 9, 7);
    add(l, "bf16", CT_DT_BF16, 1, 1000, 0);
    snprintf(p, sizeof p, "%s/dtypes.safetensors", out);
    CHECK_OK(ct__st_write(p, l->t, l->n, "{\"format\":\"pt\",\"writer\":\"ctune \\\"test\\\"\"}"));
    free_list(l);
    free(l);
    printf("wrote %s\n", out);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/ctune-peft.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 1; }
    test_roundtrip();
    test_hand_written();
    test_hf_config();
    const char *out = getenv("CTUNE_PEFT_OUT_DIR");
    if (out && *out) write_out_files(out);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return ct_check_done("test_peft");
}
