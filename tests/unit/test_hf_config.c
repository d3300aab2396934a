/* tests/unit/test_hf_config.c — config.json parsing and Hugging Face directory
 * loading (src/formats/hf_dir.c).
 *
 * Part A (always): hand-written configs — defaults for absent fields (the
 *   values transformers' config classes use), eos lists, errors with their
 *   statuses and messages (unknown model_type, missing and mistyped fields,
 *   rope scaling, attention_bias, activations, head divisibility).
 * Part B (needs the venv): configs written by transformers (save_pretrained,
 *   which drops some defaults, and the full to_json_string(use_diff=False)),
 *   for llama, qwen2, mistral and gpt2 variants; expected fields are printed
 *   by Python from the config objects' own attributes.
 * Part C (needs the venv): tiny random models saved by transformers — a
 *   sharded llama (7 shards + index), qwen2 with tied embeddings and q/k/v
 *   biases, gpt2 — loaded with ct__load_hf_dir: every tensor of the model's
 *   state_dict is present with its shape, first/last value and sum; broken
 *   directories (missing shard, wrong weight_map, pytorch_model.bin only) fail
 *   with the right status and message.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/internal.h"
#include "formats/loaders.h"

static ct_status parse(const char *text, ct_config *cfg) {
    return ct__parse_hf_config(text, strlen(text), "m/config.json", cfg);
}

static void expect_err(const char *text, ct_status want, const char *msg) {
    ct_config cfg;
    ct_status s = parse(text, &cfg);
    if (s != want) fprintf(stderr, "config [%.60s...]: got %s (%s)\n", text, ct_status_str(s), ct_errmsg());
    CHECK(s == want);
    if (!strstr(ct_errmsg(), msg)) {
        fprintf(stderr, "message [%s] lacks [%s]\n", ct_errmsg(), msg);
        CHECK(0);
    }
    CHECK(strncmp(ct_errmsg(), "m/config.json", 13) == 0);
}

#define LLAMA_MIN "\"hidden_size\": 64, \"intermediate_size\": 172, \"num_hidden_layers\": 5, " \
                  "\"num_attention_heads\": 8, \"vocab_size\": 512"

static void test_hand_written(void) {
    ct_config c;
    /* llama with only the required fields: transformers' LlamaConfig defaults */
    CHECK_OK(parse("{\"model_type\": \"llama\", " LLAMA_MIN "}", &c));
    CHECK(c.arch == CT_ARCH_LLAMA && strcmp(c.model_type, "llama") == 0);
    CHECK(c.dim == 64 && c.hidden_dim == 172 && c.n_layers == 5 && c.n_heads == 8 && c.vocab_size == 512);
    CHECK_EQ_INT(c.n_kv_heads, 8);
    CHECK_EQ_INT(c.head_dim, 8);
    CHECK_EQ_INT(c.max_seq_len, 2048);
    CHECK(c.norm_eps == 1e-6f && c.rope_theta == 10000.0f && c.rope_style == CT_ROPE_NEOX);
    CHECK(c.tie_embeddings == 0 && c.qkv_bias == 0 && c.sliding_window == 0);
    CHECK(c.bos_id == -1 && c.eos_id == -1);

    /* 4.x style fields, eos list, explicit head_dim, nulls, rope_scaling null */
    CHECK_OK(parse("{\"model_type\": \"llama\", " LLAMA_MIN ", \"num_key_value_heads\": 2, \"head_dim\": 16,"
                   "\"rope_theta\": 500000.0, \"rope_scaling\": null, \"rms_norm_eps\": 1e-05, \"bos_token_id\": 128000,"
                   "\"eos_token_id\": [128001, 128008, 128009], \"tie_word_embeddings\": true, \"hidden_act\": \"silu\","
                   "\"max_position_embeddings\": 131072, \"attention_bias\": false, \"torch_dtype\": \"bfloat16\"}", &c));
    CHECK(c.n_kv_heads == 2 && c.head_dim == 16 && c.rope_theta == 500000.0f && c.norm_eps == 1e-5f);
    CHECK(c.bos_id == 128000 && c.eos_id == 128001 && c.tie_embeddings == 1 && c.max_seq_len == 131072);
    CHECK_OK(parse("{\"model_type\": \"llama\", " LLAMA_MIN ", \"head_dim\": null, \"num_key_value_heads\": null,"
                   "\"rope_scaling\": {\"rope_type\": \"default\"}, \"eos_token_id\": null}", &c));
    CHECK(c.head_dim == 8 && c.n_kv_heads == 8 && c.eos_id == -1);

    /* class defaults of mistral and qwen2 */
    CHECK_OK(parse("{\"model_type\": \"mistral\", " LLAMA_MIN ", \"sliding_window\": 4096}", &c));
    CHECK(c.arch == CT_ARCH_LLAMA && c.max_seq_len == 131072 && c.sliding_window == 4096 && c.qkv_bias == 0);
    CHECK_OK(parse("{\"model_type\": \"mistral\", " LLAMA_MIN ", \"sliding_window\": null}", &c));
    CHECK_EQ_INT(c.sliding_window, 0);
    CHECK_OK(parse("{\"model_type\": \"qwen2\", " LLAMA_MIN ", \"sliding_window\": 4096}", &c));
    CHECK(c.max_seq_len == 32768 && c.qkv_bias == 1 && c.tie_embeddings == 0);
    CHECK_EQ_INT(c.sliding_window, 0); /* use_sliding_window defaults to false */
    CHECK_OK(parse("{\"model_type\": \"qwen2\", " LLAMA_MIN ", \"sliding_window\": 64, \"use_sliding_window\": true,"
                   "\"max_window_layers\": 0}", &c));
    CHECK_EQ_INT(c.sliding_window, 64);
    CHECK_OK(parse("{\"model_type\": \"qwen2\", " LLAMA_MIN ", \"sliding_window\": 64, \"use_sliding_window\": true,"
                   "\"max_window_layers\": 28}", &c));
    CHECK_EQ_INT(c.sliding_window, 0); /* 28 >= 5 layers: no layer slides */

    /* gpt2 */
    CHECK_OK(parse("{\"model_type\": \"gpt2\", \"n_embd\": 768, \"n_layer\": 12, \"n_head\": 12, \"n_inner\": null,"
                   "\"vocab_size\": 50257, \"bos_token_id\": 50256, \"eos_token_id\": 50256}", &c));
    CHECK(c.arch == CT_ARCH_GPT2 && c.dim == 768 && c.hidden_dim == 3072 && c.n_layers == 12 && c.n_heads == 12);
    CHECK(c.n_kv_heads == 12 && c.head_dim == 64 && c.vocab_size == 50257 && c.max_seq_len == 1024);
    CHECK(c.norm_eps == 1e-5f && c.tie_embeddings == 1 && c.bos_id == 50256 && c.eos_id == 50256);

    /* errors */
    expect_err("{\"model_type\": \"bert\", \"hidden_size\": 8}", CT_ERR_UNSUPPORTED,
               "m/config.json: model_type 'bert' is not supported (supported: llama, mistral, qwen2, gpt2)");
    expect_err("{\"hidden_size\": 8}", CT_ERR_MISSING, "model_type");
    expect_err("{\"model_type\": 3}", CT_ERR_FORMAT, "model_type must be a string");
    expect_err("[1]", CT_ERR_FORMAT, "not a JSON object");
    expect_err("{\"model_type\": \"llama\",\n \"hidden_size\": 32,,}", CT_ERR_FORMAT, "m/config.json:2:20: expected a string key");
    expect_err("{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 172, \"num_attention_heads\": 8,"
               "\"vocab_size\": 512}", CT_ERR_MISSING, "num_hidden_layers");
    expect_err("{\"model_type\": \"llama\", \"hidden_size\": \"64\", \"intermediate_size\": 172}", CT_ERR_FORMAT,
               "hidden_size must be an integer");
    expect_err("{\"model_type\": \"llama\", \"hidden_size\": 64.5}", CT_ERR_FORMAT, "hidden_size");
    expect_err("{\"model_type\": \"llama\", \"hidden_size\": 0}", CT_ERR_RANGE, "hidden_size = 0");
    expect_err("{\"model_type\": \"llama\", " LLAMA_MIN ", \"num_key_value_heads\": 3}", CT_ERR_RANGE,
               "not a multiple of num_key_value_heads");
    expect_err("{\"model_type\": \"llama\", " LLAMA_MIN ", \"num_key_value_heads\": 16}", CT_ERR_RANGE,
               "num_key_value_heads = 16");
    expect_err("{\"model_type\": \"llama\", \"hidden_size\": 60, \"intermediate_size\": 1, \"num_hidden_layers\": 1,"
               "\"num_attention_heads\": 8, \"vocab_size\": 5}", CT_ERR_RANGE, "not a multiple of num_attention_heads");
    expect_err("{\"model_type\": \"llama\", " LLAMA_MIN ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8}}",
               CT_ERR_UNSUPPORTED, "rope_scaling with rope_type 'llama3'");
    expect_err("{\"model_type\": \"llama\", " LLAMA_MIN ", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}}",
               CT_ERR_UNSUPPORTED, "rope_scaling");
    expect_err("{\"model_type\": \"llama\", " LLAMA_MIN ", \"rope_parameters\": {\"rope_type\": \"yarn\"}}",
               CT_ERR_UNSUPPORTED, "rope_parameters with rope_type 'yarn'");
    expect_err("{\"model_type\": \"llama\", " LLAMA_MIN ", \"hidden_act\": \"gelu\"}", CT_ERR_UNSUPPORTED,
               "hidden_act 'gelu'");
    expect_err("{\"model_type\": \"llama\", " LLAMA_MIN ", \"attention_bias\": true}", CT_ERR_UNSUPPORTED,
               "attention_bias");
    expect_err("{\"model_type\": \"llama\", " LLAMA_MIN ", \"mlp_bias\": true}", CT_ERR_UNSUPPORTED, "mlp_bias");
    expect_err("{\"model_type\": \"llama\", " LLAMA_MIN ", \"quantization_config\": {\"quant_method\": \"gptq\"}}",
               CT_ERR_UNSUPPORTED, "quantization_config");
    expect_err("{\"model_type\": \"llama\", " LLAMA_MIN ", \"rms_norm_eps\": -1}", CT_ERR_RANGE, "rms_norm_eps");
    expect_err("{\"model_type\": \"llama\", " LLAMA_MIN ", \"rope_theta\": 1e300}", CT_ERR_RANGE, "rope_theta");
    expect_err("{\"model_type\": \"llama\", " LLAMA_MIN ", \"eos_token_id\": \"</s>\"}", CT_ERR_FORMAT, "eos_token_id");
    expect_err("{\"model_type\": \"llama\", " LLAMA_MIN ", \"tie_word_embeddings\": 1}", CT_ERR_FORMAT,
               "tie_word_embeddings must be true or false");
    expect_err("{\"model_type\": \"qwen2\", " LLAMA_MIN ", \"sliding_window\": 64, \"use_sliding_window\": true,"
               "\"max_window_layers\": 2}", CT_ERR_UNSUPPORTED, "sliding_window on 3 of 5 layers");
    expect_err("{\"model_type\": \"gpt2\", \"n_embd\": 768, \"n_layer\": 12, \"n_head\": 12, \"vocab_size\": 50257,"
               "\"activation_function\": \"relu\"}", CT_ERR_UNSUPPORTED, "activation_function 'relu'");
    expect_err("{\"model_type\": \"gpt2\", \"n_embd\": 768, \"n_layer\": 12, \"vocab_size\": 50257}", CT_ERR_MISSING,
               "'n_head'");
    expect_err("{\"model_type\": \"gpt2\", \"n_embd\": 768, \"n_layer\": 12, \"n_head\": 12, \"vocab_size\": 50257,"
               "\"scale_attn_by_inverse_layer_idx\": true}", CT_ERR_UNSUPPORTED, "scale_attn_by_inverse_layer_idx");
}

/* ---- parts B and C: files written by transformers ------------------------- */

static const char *k_py =
    "import sys, os, json, shutil, torch, transformers as T\n"
    "out = sys.argv[1]\n"
    "E = open(os.path.join(out, 'expect.txt'), 'w')\n"
    "def exp(name, c):\n"
    "    if c.model_type == 'gpt2':\n"
    "        d = c.n_embd; v = [d, c.n_inner or 4 * d, c.n_layer, c.n_head, c.n_head, d // c.n_head, c.vocab_size,\n"
    "             c.n_positions, c.layer_norm_epsilon, 10000.0, c.tie_word_embeddings, 0, 0]\n"
    "    else:\n"
    "        d = c.hidden_size; nh = c.num_attention_heads\n"
    "        rp = getattr(c, 'rope_parameters', None) or {}\n"
    "        th = rp.get('rope_theta', getattr(c, 'rope_theta', None))\n"
    "        lt = getattr(c, 'layer_types', None)\n"
    "        sl = (c.sliding_window if all(x == 'sliding_attention' for x in lt) else 0) if lt else (getattr(c, 'sliding_window', None) or 0)\n"
    "        v = [d, c.intermediate_size, c.num_hidden_layers, nh, c.num_key_value_heads,\n"
    "             getattr(c, 'head_dim', None) or d // nh, c.vocab_size, c.max_position_embeddings, c.rms_norm_eps, th,\n"
    "             c.tie_word_embeddings, 1 if c.model_type == 'qwen2' else 0, sl]\n"
    "    eos = c.eos_token_id[0] if isinstance(c.eos_token_id, list) else c.eos_token_id\n"
    "    v += [-1 if c.bos_token_id is None else c.bos_token_id, -1 if eos is None else eos]\n"
    "    E.write('C %s %s %s\\n' % (name, c.model_type, ' '.join(str(float(x)) for x in v)))\n"
    "def cfg(name, c, bad=None):\n"
    "    c.save_pretrained(os.path.join(out, name))\n"
    "    os.makedirs(os.path.join(out, name + '_full'))\n"
    "    open(os.path.join(out, name + '_full', 'config.json'), 'w').write(c.to_json_string(use_diff=False))\n"
    "    for n in (name, name + '_full'):\n"
    "        if bad: E.write('X %s UNSUPPORTED %s\\n' % (n, bad))\n"
    "        else: exp(n, c)\n"
    "small = dict(hidden_size=64, intermediate_size=160, num_hidden_layers=3, num_attention_heads=8, vocab_size=1000)\n"
    "cfg('llama_default', T.LlamaConfig())\n"
    "cfg('llama_gqa', T.LlamaConfig(num_key_value_heads=2, rope_theta=500000.0, eos_token_id=[2, 7], rms_norm_eps=1e-5, **small))\n"
    "cfg('llama_headdim', T.LlamaConfig(head_dim=16, tie_word_embeddings=True, bos_token_id=None, **small))\n"
    "cfg('llama_linear', T.LlamaConfig(rope_scaling={'rope_type': 'linear', 'factor': 2.0}, **small), 'rope')\n"
    "cfg('llama_bias', T.LlamaConfig(attention_bias=True, **small), 'attention_bias')\n"
    "cfg('qwen2_default', T.Qwen2Config())\n"
    "cfg('qwen2_small', T.Qwen2Config(num_key_value_heads=4, tie_word_embeddings=True, bos_token_id=151643, eos_token_id=151645, **small))\n"
    "cfg('qwen2_slide', T.Qwen2Config(num_key_value_heads=2, use_sliding_window=True, max_window_layers=0, sliding_window=32, **small))\n"
    "cfg('qwen2_mixed', T.Qwen2Config(num_key_value_heads=2, use_sliding_window=True, max_window_layers=1, sliding_window=32, **small), 'sliding_window')\n"
    "cfg('mistral_default', T.MistralConfig())\n"
    "cfg('mistral_noslide', T.MistralConfig(sliding_window=None, num_key_value_heads=4, **small))\n"
    "cfg('gpt2_default', T.GPT2Config())\n"
    "cfg('gpt2_inner', T.GPT2Config(n_embd=64, n_layer=2, n_head=4, n_inner=100, activation_function='gelu_pytorch_tanh', layer_norm_epsilon=1e-6, n_positions=256))\n"
    "torch.manual_seed(0)\n"
    "def model(name, m, **kw):\n"
    "    d = os.path.join(out, name)\n"
    "    m.save_pretrained(d, **kw)\n"
    "    exp(name, m.config)\n"
    "    sd = m.state_dict()\n"
    "    keys = [k for k in sd if not (m.config.tie_word_embeddings and k == 'lm_head.weight')]\n"
    "    E.write('N %s %d\\n' % (name, len(keys)))\n"
    "    for k in keys:\n"
    "        t = sd[k].float().flatten()\n"
    "        E.write('T %s %s %d %s %r %r %r\\n' % (name, k, sd[k].dim(), ' '.join(map(str, sd[k].shape)),\n"
    "                t[0].item(), t[-1].item(), t.double().sum().item()))\n"
    "tiny = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=100, max_position_embeddings=64)\n"
    "model('m_llama', T.LlamaForCausalLM(T.LlamaConfig(**tiny)), max_shard_size='20KB')\n"
    "model('m_qwen2', T.Qwen2ForCausalLM(T.Qwen2Config(tie_word_embeddings=True, **tiny)))\n"
    "model('m_gpt2', T.GPT2LMHeadModel(T.GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=100, n_positions=64, bos_token_id=0, eos_token_id=0)))\n"
    "def broken(name, want, fn):\n"
    "    d = os.path.join(out, name); shutil.copytree(os.path.join(out, 'm_llama'), d); fn(d)\n"
    "    E.write('X %s %s\\n' % (name, want))\n"
    "broken('b_noshard', 'MISSING model-00003-of-00007.safetensors', lambda d: os.remove(os.path.join(d, 'model-00003-of-00007.safetensors')))\n"
    "def edit_index(fn):\n"
    "    def run(d):\n"
    "        p = os.path.join(d, 'model.safetensors.index.json'); j = json.load(open(p)); fn(j['weight_map']); json.dump(j, open(p, 'w'))\n"
    "    return run\n"
    "broken('b_extra', 'MISSING model.layers.9.mlp.up_proj.weight', edit_index(lambda w: w.update({'model.layers.9.mlp.up_proj.weight': 'model-00001-of-00007.safetensors'})))\n"
    "broken('b_unlisted', 'MISSING lm_head.weight', edit_index(lambda w: w.update({'lm_head.weight': 'model-00001-of-00007.safetensors'})))\n"
    "def move(w):\n"
    "    n = {}\n"
    "    for k, f in w.items(): n.setdefault(f, []).append(k)\n"
    "    k = sorted(v for v in n.values() if len(v) > 1)[0][0]\n"
    "    w[k] = [f for f in sorted(n) if f != w[k]][0]\n"
    "broken('b_wrong', 'FORMAT listed', edit_index(move))\n"
    "broken('b_escape', 'FORMAT weight_map', edit_index(lambda w: w.update({'lm_head.weight': '../m_gpt2/model.safetensors'})))\n"
    "def ptbin(d):\n"
    "    for f in os.listdir(d):\n"
    "        if 'safetensors' in f: os.remove(os.path.join(d, f))\n"
    "    open(os.path.join(d, 'pytorch_model.bin'), 'wb').write(b'PK')\n"
    "broken('b_ptbin', 'MISSING pytorch_model.bin', ptbin)\n"
    "broken('b_noconfig', 'MISSING config.json', lambda d: os.remove(os.path.join(d, 'config.json')))\n"
    "E.close()\n";

static ct_status status_from(const char *s) {
    if (!strcmp(s, "UNSUPPORTED")) return CT_ERR_UNSUPPORTED;
    if (!strcmp(s, "MISSING")) return CT_ERR_MISSING;
    if (!strcmp(s, "FORMAT")) return CT_ERR_FORMAT;
    return CT_OK;
}

static void check_config(const char *dir, const char *name, const char *mt, const double *v, const ct_config *c) {
    int bad = 0;
    bad |= strcmp(c->model_type, mt) != 0;
    bad |= c->arch != (strcmp(mt, "gpt2") == 0 ? CT_ARCH_GPT2 : CT_ARCH_LLAMA);
    int iv[] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size,
                c->max_seq_len};
    for (int i = 0; i < 8; i++) bad |= iv[i] != (int)v[i];
    bad |= c->norm_eps != (float)v[8] || c->rope_theta != (float)v[9];
    bad |= c->tie_embeddings != (int)v[10] || c->qkv_bias != (int)v[11] || c->sliding_window != (int)v[12];
    bad |= c->bos_id != (int)v[13] || c->eos_id != (int)v[14];
    if (bad)
        fprintf(stderr, "%s/%s: got dim %d hid %d L %d NH %d KV %d HS %d V %d ctx %d eps %g theta %g tie %d bias %d "
                "sw %d bos %d eos %d\n", dir, name, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                c->head_dim, c->vocab_size, c->max_seq_len, c->norm_eps, c->rope_theta, c->tie_embeddings,
                c->qkv_bias, c->sliding_window, c->bos_id, c->eos_id);
    CHECK(!bad);
}

static double elem(const ct_tref *t, int64_t i) {
    if (t->dtype == CT_DT_F32) return ((const float *)t->data)[i];
    if (t->dtype == CT_DT_BF16) return ct__bf16_to_f32(((const uint16_t *)t->data)[i]);
    if (t->dtype == CT_DT_F16) return ct__f16_to_f32(((const uint16_t *)t->data)[i]);
    return NAN;
}

/* Model dirs stay loaded in stores[] by name while expectations are checked. */
typedef struct { char name[32]; ct_tstore ts; ct_config cfg; int ok; } loaded;

static loaded *get_model(loaded *m, int *nm, const char *dir, const char *name) {
    for (int i = 0; i < *nm; i++) if (!strcmp(m[i].name, name)) return &m[i];
    if (*nm == 8) return NULL;
    loaded *l = &m[(*nm)++];
    snprintf(l->name, sizeof l->name, "%s", name);
    ct__tstore_init(&l->ts);
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    ct_tokenizer *tok = (ct_tokenizer *)1;
    ct_status s = ct__load_hf_dir(path, &l->ts, &l->cfg, &tok);
    CHECK_OK(s);
    CHECK(tok == NULL); /* no tokenizer.json in these directories */
    l->ok = s == CT_OK;
    return l;
}

static void test_python(const char *dir) {
    char path[600], line[4096];
    snprintf(path, sizeof path, "%s/expect.txt", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    loaded models[8];
    int nm = 0, ncfg = 0, nerr = 0, ntens = 0;
    while (fgets(line, sizeof line, f)) {
        char kind, name[128], a[256], b[256];
        if (line[0] == 'C') { /* C name model_type 15 values */
            double v[15];
            int n = sscanf(line, "%c %127s %255s %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf %lf", &kind,
                           name, a, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10],
                           &v[11], &v[12], &v[13], &v[14]);
            CHECK_EQ_INT(n, 18);
            ct_config c;
            if (strncmp(name, "m_", 2) == 0) {
                loaded *l = get_model(models, &nm, dir, name);
                if (l && l->ok) check_config(dir, name, a, v, &l->cfg);
            } else {
                char *text = NULL;
                size_t len;
                snprintf(path, sizeof path, "%s/%s/config.json", dir, name);
                CHECK_OK(ct__read_file(path, &text, &len));
                ct_status s = text ? ct__parse_hf_config(text, len, path, &c) : CT_ERR_IO;
                CHECK_OK(s);
                if (s == CT_OK) check_config(dir, name, a, v, &c);
                free(text);
            }
            ncfg++;
        } else if (line[0] == 'X') { /* X name STATUS substring: config or directory that must fail */
            CHECK(sscanf(line, "%c %127s %255s %255s", &kind, name, a, b) == 4);
            snprintf(path, sizeof path, "%s/%s", dir, name);
            ct_tstore ts;
            ct_config c;
            ct__tstore_init(&ts);
            ct_status s = ct__load_hf_dir(path, &ts, &c, NULL);
            if (s != status_from(a) || !strstr(ct_errmsg(), b) || !strstr(ct_errmsg(), name)) {
                fprintf(stderr, "%s: got %s [%s], want %s naming %s and %s\n", name, ct_status_str(s), ct_errmsg(), a,
                        name, b);
                CHECK(0);
            }
            CHECK_EQ_INT(ts.n, 0); /* rolled back */
            CHECK_EQ_INT(ts.nfiles, 0);
            ct__tstore_free(&ts);
            nerr++;
        } else if (line[0] == 'N') {
            long want;
            CHECK(sscanf(line, "%c %127s %ld", &kind, name, &want) == 3);
            loaded *l = get_model(models, &nm, dir, name);
            if (l && l->ok) CHECK_EQ_INT(l->ts.n, want);
        } else if (line[0] == 'T') { /* T model tensor ndim dims... first last sum */
            char *tok = strtok(line + 2, " \n"), *tname;
            loaded *l = tok ? get_model(models, &nm, dir, tok) : NULL;
            tname = strtok(NULL, " \n");
            int ndim = atoi(strtok(NULL, " \n"));
            int64_t shape[8];
            for (int i = 0; i < ndim && i < 8; i++) shape[i] = atoll(strtok(NULL, " \n"));
            double first = atof(strtok(NULL, " \n")), last = atof(strtok(NULL, " \n")), sum = atof(strtok(NULL, " \n"));
            if (!l || !l->ok) continue;
            const ct_tref *t = ct__tstore_find(&l->ts, tname);
            if (!t) { fprintf(stderr, "%s: tensor %s not loaded\n", l->name, tname); CHECK(0); continue; }
            CHECK_EQ_INT(t->ndim, ndim);
            for (int i = 0; i < ndim && i < CT_MAX_DIMS; i++) CHECK_EQ_INT(t->shape[i], shape[i]);
            int64_t n = ct__tref_numel(t);
            double s = 0;
            for (int64_t i = 0; i < n; i++) s += elem(t, i);
            CHECK(n > 0 && elem(t, 0) == (float)first && elem(t, n - 1) == (float)last);
            CHECK_NEAR(s, sum, 1e-6 * (1 + fabs(sum)) + 1e-9 * n);
            ntens++;
        }
    }
    fclose(f);
    CHECK_EQ_INT(ncfg, 2 * 10 + 3);
    CHECK_EQ_INT(nerr, 2 * 3 + 7);
    printf("test_hf_config: checked %d transformers configs, %d tensors, %d broken inputs\n", ncfg, ntens, nerr);
    CHECK(ntens > 60);
    loaded *ll = get_model(models, &nm, dir, "m_llama");
    if (ll && ll->ok) CHECK_EQ_INT(ll->ts.nfiles, 7); /* each shard mapped once */
    loaded *lq = get_model(models, &nm, dir, "m_qwen2");
    if (lq && lq->ok) CHECK(ct__tstore_find(&lq->ts, "model.layers.1.self_attn.v_proj.bias") != NULL);
    for (int i = 0; i < nm; i++) ct__tstore_free(&models[i].ts);
}

int main(void) {
    test_hand_written();
    const char *cache = getenv("CTUNE_CACHE");
    char py[512], dir[256], cmd[2048];
    if (cache && *cache) snprintf(py, sizeof py, "%s/venv/bin/python", cache);
    else snprintf(py, sizeof py, "%s/.cache/ctune/venv/bin/python", getenv("HOME") ? getenv("HOME") : "");
    if (access(py, X_OK) != 0) {
        printf("test_hf_config: SKIP parts B and C: no Python venv at %s (run scripts/setup.sh)\n", py);
        return ct_check_done("test_hf_config");
    }
    snprintf(dir, sizeof dir, "%s/ctune-hf.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    snprintf(cmd, sizeof cmd, "'%s' - '%s' 2>'%s/py.log' >&2", py, dir, dir);
    FILE *p = popen(cmd, "w");
    CHECK(p != NULL);
    if (p) {
        fputs(k_py, p);
        int rc = pclose(p);
        if (rc) {
            snprintf(cmd, sizeof cmd, "tail -n 20 '%s/py.log' >&2", dir);
            if (system(cmd)) {}
        }
        CHECK_EQ_INT(rc, 0);
        if (rc == 0) test_python(dir);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return ct_check_done("test_hf_config");
}
