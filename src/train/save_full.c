/* src/train/save_full.c — see save_full.h. Each file is written atomically;
 * model.safetensors goes last, so a directory with it is complete.
 * For GGUF / llama2.c sources the vocabulary is written as tokenizer.json
 * (src/tokenizer/export_hf.c, exact ids or nothing).
 * Leaves out: sharding of large models. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "formats/st_write.h"
#include "train/peft.h"
#include "train/save_full.h"
#include "train/tmodel_internal.h"
#include "tokenizer/export_hf.h"

static ct_status copy_file(const char *src, const char *dst) {
    char *text;
    size_t len;
    ct_status s = ct__read_file(src, &text, &len);
    if (s) return s;
    s = ct__write_file_atomic(dst, text, len);
    free(text);
    return s;
}

static ct_status save(ct__tmodel *t, const char *dir, const char *const *labels) {
    if (t->o.method != CT_TM_FULL) return ct__err(CT_ERR_ARG, "ct__save_full: not a fully trained model");
    if ((t->o.cls_labels > 0) != (labels != NULL))
        return ct__err(CT_ERR_ARG, "ct__save_full: a classifier is saved with its labels (ct__save_full_cls)");
    ct_status s = ct__mkdir_p(dir);
    if (s) return s;
    char path[1200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    s = labels ? ct__hf_config_write_cls(path, t->cfg, labels, t->o.cls_labels) : ct__hf_config_write(path, t->cfg);
    if (s) return s;
    /* tokenizer files of a Hugging Face source directory */
    if (ct__is_dir(t->m->path)) {
        static const char *const files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                            "generation_config.json", "vocab.json", "merges.txt",
                                            "tokenizer.model"};
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            char src[1200];
            snprintf(src, sizeof src, "%s/%s", t->m->path, files[i]);
            if (!ct__file_exists(src)) continue;
            snprintf(path, sizeof path, "%s/%s", dir, files[i]);
            if ((s = copy_file(src, path))) return s;
        }
    } else if (t->m->tok) {
        /* GGUF / llama2.c source: its vocabulary as tokenizer.json, exactly
         * (or nothing, with a warning, where it cannot be expressed) */
        s = ct__tokenizer_write_hf(t->m->tok, dir);
        if (s == CT_ERR_UNSUPPORTED) {
            ct__log(CT_LOG_WARN, "%s: no tokenizer.json written: %s", dir, ct_errmsg());
            s = CT_OK;
        }
        if (s) return s;
    }
    float *buf;
    ct__st_out *outs = ct__tm_file_tensors(t, &buf);
    if (!outs) return ct__err(CT_ERR_NOMEM, "%s: out of memory saving the model", dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    s = ct__st_write(path, outs, t->n_ptab, "{\"format\":\"pt\"}");
    ct__tm_file_tensors_free(t, outs, buf);
    return s;
}

ct_status ct__save_full(ct__tmodel *t, const char *dir) { return save(t, dir, NULL); }

ct_status ct__save_full_cls(ct__tmodel *t, const char *dir, const char *const *labels) {
    return labels ? save(t, dir, labels) : ct__err(CT_ERR_ARG, "ct__save_full_cls: no labels");
}
