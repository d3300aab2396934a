/* src/model/model.c — ct_model: loading (format dispatch) and the read-only
 * accessors of include/ctune/model.h.
 *
 * ct_model_load picks the loader from the path: a directory is a Hugging Face
 * checkpoint, a file starting with "GGUF" (or named *.gguf) is GGUF, anything
 * else a llama2.c .bin, which needs its tokenizer.bin passed separately.
 * The loaders (src/formats/) fill a tensor store and a config; weights.c maps
 * the tensors onto the layers with shape checks.
 * Leaves out: the context and forward pass (forward.c), saving models.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "formats/bnb4.h"
#include "model/model_internal.h"

static int has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

/* 1 if the file starts with the GGUF magic. */
static int is_gguf_file(const char *path) {
    char magic[4] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(magic, 1, 4, f);
    fclose(f);
    return n == 4 && memcmp(magic, "GGUF", 4) == 0;
}

/* "F32: 57, Q4_1: 210" over the store's tensors. A bitsandbytes 4-bit
 * weight counts once, as NF4 or FP4 (its codes and side tensors not at all). */
static char *dtype_summary(const ct_tstore *ts) {
    size_t count[CT_DT_COUNT] = {0}, fp4 = 0;
    for (size_t i = 0; i < ts->n; i++) {
        int part = ct__bnb4_part(ts->t[i].name);
        if (part == 2) count[CT_DT_NF4]++;
        else if (part == 3) fp4++;
        else if (part == 0 && !(ts->t[i].dtype == CT_DT_U8 && ct__bnb4_is_quantized(ts, ts->t[i].name)) &&
                 (int)ts->t[i].dtype >= 0 && ts->t[i].dtype < CT_DT_COUNT)
            count[ts->t[i].dtype]++;
    }
    char buf[512];
    size_t n = 0;
    buf[0] = 0;
    for (int d = 0; d < CT_DT_COUNT; d++)
        if (count[d] && n < sizeof buf)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s: %zu", n ? ", " : "", ct_dtype_name((ct_dtype)d),
                                  count[d]);
    if (fp4 && n < sizeof buf) n += (size_t)snprintf(buf + n, sizeof buf - n, "%sFP4: %zu", n ? ", " : "", fp4);
    if ((count[CT_DT_NF4] || fp4) && n < sizeof buf) snprintf(buf + n, sizeof buf - n, " (bitsandbytes 4-bit)");
    return ct__strdup(buf);
}

static ct_status load_tokenizer_file(ct_model *m, const char *path) {
    ct_tokenizer *t = NULL;
    ct_status s = ct_tokenizer_load(path, &t);
    if (s) return ct__err_prefix(s, "tokenizer");
    ct_tokenizer_free(m->tok);
    m->tok = t;
    return CT_OK;
}

ct_status ct_model_load(const char *path, const ct_load_opts *opts, ct_model **out) {
    if (!out) return ct__err(CT_ERR_ARG, "ct_model_load: out is NULL");
    *out = NULL;
    if (!path || !*path) return ct__err(CT_ERR_ARG, "ct_model_load: empty model path");
    const char *tokpath = opts ? opts->tokenizer_path : NULL;
    ct_model *m = ct__calloc(1, sizeof *m);
    if (!m) return ct__err(CT_ERR_NOMEM, "%s: out of memory", path);
    ct__tstore_init(&m->ts);
    m->q8_act = opts && opts->q8_activations;
    ct_status s = CT_OK;
    char src[1024];
    m->path = ct__strdup(path);
    if (!m->path) { s = ct__err(CT_ERR_NOMEM, "%s: out of memory", path); goto fail; }

    if (ct__is_dir(path)) {
        m->naming = CT_NAMES_HF;
        m->cfg_src = "config.json";
        if ((s = ct__load_hf_dir(path, &m->ts, &m->cfg, &m->tok))) goto fail;
        snprintf(src, sizeof src, "Hugging Face directory %s (%zu safetensors file%s)", path, m->ts.nfiles,
                 m->ts.nfiles == 1 ? "" : "s");
    } else if (is_gguf_file(path) || has_suffix(path, ".gguf")) {
        m->naming = CT_NAMES_GGUF;
        m->cfg_src = "the GGUF metadata";
        if ((s = ct__load_gguf_model(path, &m->ts, &m->cfg, &m->tok))) goto fail;
        snprintf(src, sizeof src, "GGUF %s", path);
    } else {
        m->naming = CT_NAMES_GGUF; /* llama2.c tensors get GGUF names */
        m->cfg_src = "the llama2.c header";
        if ((s = ct__load_llama2c(path, &m->ts, &m->cfg))) goto fail;
        if (!tokpath) {
            s = ct__err(CT_ERR_ARG, "%s: a llama2.c checkpoint carries no tokenizer; pass its tokenizer.bin "
                        "with --tokenizer FILE (e.g. tok512.bin beside stories260K.bin)", path);
            goto fail;
        }
        snprintf(src, sizeof src, "llama2.c checkpoint %s", path);
    }
    if (tokpath && (s = load_tokenizer_file(m, tokpath))) goto fail;
    if ((s = ct__model_map_weights(m))) goto fail;
    if (m->tok && ct_tokenizer_vocab_size(m->tok) > m->cfg.vocab_size)
        ct__log(CT_LOG_WARN, "%s: the tokenizer has %d tokens but the model only %d; ids beyond are rejected",
                path, ct_tokenizer_vocab_size(m->tok), m->cfg.vocab_size);
    if (m->tok) {
        int e = ct_tokenizer_eos(m->tok), b = ct_tokenizer_bos(m->tok);
        if (e >= 0) m->cfg.eos_id = e;
        if (b >= 0) m->cfg.bos_id = b;
    }
    m->source = ct__strdup(src);
    m->dtype_summary = dtype_summary(&m->ts);
    if (!m->source || !m->dtype_summary) { s = ct__err(CT_ERR_NOMEM, "%s: out of memory", path); goto fail; }
    ct__log(CT_LOG_INFO, "loaded %s: %s, %d layers, dim %d, %lld parameters", path, m->cfg.model_type,
            m->cfg.n_layers, m->cfg.dim, (long long)m->n_params);
    *out = m;
    return CT_OK;
fail:
    ct_model_free(m);
    return s;
}

void ct_model_free(ct_model *m) {
    if (!m) return;
    ct_tokenizer_free(m->tok);
    ct__tstore_free(&m->ts);
    free(m->layers);
    free(m->path);
    free(m->source);
    free(m->dtype_summary);
    free(m);
}

const ct_config *ct_model_config(const ct_model *m) { return m ? &m->cfg : NULL; }
ct_tokenizer *ct_model_tokenizer(ct_model *m) { return m ? m->tok : NULL; }
int64_t ct_model_n_params(const ct_model *m) { return m ? m->n_params : 0; }
const char *ct_model_source(const ct_model *m) { return m && m->source ? m->source : ""; }
const char *ct_model_dtype_summary(const ct_model *m) { return m && m->dtype_summary ? m->dtype_summary : ""; }
int64_t ct_model_weight_bytes(const ct_model *m) { return m ? m->weight_bytes : 0; }
