/* src/train/merge_save.c — ct_model_save_hf and ct_model_quant_type
 * (include/ctune/export.h): a loaded model, merged adapter included, as a
 * plain Hugging Face directory (`ctune merge`).
 *
 * The weights the model infers with (ct_model_apply_adapter's merged f32
 * copies, or the stored matrices dequantized by ct__mat_row_f32: NF4, Q8_0,
 * Q4_*) are copied as f32 parameters of a FULL-method ct__tmodel and written
 * by ct__save_full (HF names and layouts, tokenizer files); bf16 rewrites
 * model.safetensors in BF16 (round to nearest even) and the config's dtype.
 * Memory: the whole model in f32 once. Leaves out: re-quantizing the result
 * (on purpose: a merged LoRA update is far smaller than a 4-bit step, so
 * rounding the merged weights to 4 bits again loses most of it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ctune/export.h"
#include "formats/st_write.h"
#include "model/model_internal.h"
#include "train/save_full.h"
#include "train/tmodel_internal.h"

const char *ct_model_quant_type(const ct_model *m) {
    if (!m || !m->layers || m->cfg.n_layers <= 0) return NULL;
    const ct_mat *W = &m->layers[0].wo; /* adapters never touch every block matrix; o is in both archs */
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const ct__layer *L = &m->layers[l];
        const ct_mat *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++)
            if (mats[i]->rows && mats[i]->dtype != CT_DT_F32 && mats[i]->dtype != CT_DT_F16 &&
                mats[i]->dtype != CT_DT_BF16) { W = mats[i]; goto found; }
    }
    return NULL;
found:
    if (W->dtype == CT_DT_NF4) return W->q4 && W->q4->type == CT_Q4_FP4 ? "FP4" : "NF4";
    return ct_dtype_name(W->dtype);
}

/* "dtype": "float32" -> "bfloat16" (and torch_dtype) in dir/config.json. */
static ct_status config_dtype_bf16(const char *dir) {
    char path[4200], *text;
    size_t len;
    if (snprintf(path, sizeof path, "%s/config.json", dir) >= (int)sizeof path) return CT_ERR_ARG;
    ct_status s = ct__read_file(path, &text, &len);
    if (s) return s;
    char *out = malloc(len + 64);
    if (!out) { free(text); return ct__err(CT_ERR_NOMEM, "%s: out of memory", path); }
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        static const char *const keys[] = {"\"dtype\": \"float32\"", "\"torch_dtype\": \"float32\""};
        int hit = 0;
        for (int k = 0; k < 2 && !hit; k++) {
            size_t kl = strlen(keys[k]);
            if (len - i >= kl && memcmp(text + i, keys[k], kl) == 0) {
                n += (size_t)sprintf(out + n, "%.*s\"bfloat16\"", (int)(kl - 9), keys[k]);
                i += kl;
                hit = 1;
            }
        }
        if (!hit) out[n++] = text[i++];
    }
    s = ct__write_file_atomic(path, out, n);
    free(out);
    free(text);
    return s;
}

ct_status ct_model_save_hf(ct_model *m, const char *dir, int bf16) {
    if (!m || !dir) return ct__err(CT_ERR_ARG, "ct_model_save_hf: model or directory NULL");
    ct__tm_opts o = {.method = CT_TM_FULL, .max_rows = 1, .max_seq = 1, .n_threads = 1};
    ct__tmodel *t = NULL;
    ct_status s = ct__tm_create(m, &o, &t);
    if (s) return s;
    s = ct__save_full(t, dir);
    if (!s && bf16) {
        float *buf;
        ct__st_out *outs = ct__tm_file_tensors(t, &buf);
        if (!outs) s = ct__err(CT_ERR_NOMEM, "%s: out of memory saving the model", dir);
        else {
            char path[4200];
            for (int i = 0; i < t->n_ptab; i++) outs[i].dtype = CT_DT_BF16;
            snprintf(path, sizeof path, "%s/model.safetensors", dir);
            s = ct__st_write(path, outs, t->n_ptab, "{\"format\":\"pt\"}");
            ct__tm_file_tensors_free(t, outs, buf);
        }
        if (!s) s = config_dtype_bf16(dir);
    }
    ct__tm_free(t);
    return s;
}
