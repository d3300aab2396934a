/* src/train/lora_io.c — LoRA adapters as PEFT directories: save the trained
 * A/B tensors (adapter_model.safetensors, PEFT's names and layouts) with
 * adapter_config.json, read them back (ours or PEFT's), and the training
 * options an adapter directory implies.
 * Leaves out: several adapters in one directory, rank/alpha patterns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "formats/loaders.h"
#include "formats/st_write.h"
#include "train/lora_io.h"
#include "train/peft.h"
#include "train/tmodel_internal.h"

ct_status ct__lora_opts_from_dir(const char *dir, ct_arch arch, ct__tm_opts *o) {
    ct__peft_config c;
    ct_status s = ct__peft_config_read(dir, &c);
    if (s) return s;
    if (strcmp(c.peft_type, "LORA") != 0)
        return ct__err(CT_ERR_UNSUPPORTED, "%s/adapter_config.json: peft_type %s is not a LoRA adapter", dir,
                       c.peft_type);
    o->method = CT_TM_LORA;
    o->lora_r = c.r;
    o->lora_alpha = c.lora_alpha;
    o->lora_dropout = c.lora_dropout;
    o->rslora = c.use_rslora;
    o->base = !strcmp(c.base_quant, "nf4")    ? CT_TB_NF4
              : !strcmp(c.base_quant, "q8")   ? CT_TB_Q8
              : !strcmp(c.base_quant, "bf16") ? CT_TB_BF16
              : !strcmp(c.base_quant, "f32")  ? CT_TB_F32
                                              : CT_TB_ASIS;
    o->lora_targets = 0;
    for (int i = 0; i < c.n_targets; i++) {
        unsigned bits = 0;
        for (int b = 0; b < 7; b++) {
            const char *nm = ct__tm_target_name(arch, 1u << b);
            if (nm && strcmp(nm, c.targets[i]) == 0) bits |= 1u << b;
        }
        if (!bits)
            return ct__err(CT_ERR_UNSUPPORTED, "%s/adapter_config.json: target module '%s' is not a linear layer ctune "
                           "adapts in a %s model", dir, c.targets[i], arch == CT_ARCH_GPT2 ? "GPT-2" : "Llama-family");
        o->lora_targets |= bits;
    }
    if (!o->lora_targets) return ct__err(CT_ERR_FORMAT, "%s/adapter_config.json: no target_modules", dir);
    return CT_OK;
}

ct_status ct__lora_save(ct__tmodel *t, const char *dir, const char *base_model) {
    if (t->o.method != CT_TM_LORA) return ct__err(CT_ERR_ARG, "ct__lora_save: not a LoRA model");
    ct_status s = ct__mkdir_p(dir);
    if (s) return s;
    const ct_config *g = t->cfg;
    ct__peft_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.peft_type, sizeof c.peft_type, "LORA");
    snprintf(c.task_type, sizeof c.task_type, "%s", t->o.cls_labels > 0 ? "SEQ_CLS" : "CAUSAL_LM");
    c.modules_to_save_score = t->o.cls_labels > 0;
    snprintf(c.base_model, sizeof c.base_model, "%s", base_model ? base_model : "");
    snprintf(c.bias, sizeof c.bias, "none");
    c.r = t->o.lora_r;
    c.lora_alpha = t->o.lora_alpha;
    c.lora_dropout = t->o.lora_dropout;
    c.use_rslora = t->o.rslora;
    c.fan_in_fan_out = g->arch == CT_ARCH_GPT2;
    static const char *const bq[] = {"", "nf4", "q8", "bf16", "f32"};
    snprintf(c.base_quant, sizeof c.base_quant, "%s", bq[t->o.base]);
    for (int b = 0; b < 7; b++) {
        const char *nm = ct__tm_target_name(g->arch, 1u << b);
        if (!nm || !(t->o.lora_targets & (1u << b))) continue;
        int dup = 0;
        for (int i = 0; i < c.n_targets; i++) dup |= strcmp(c.targets[i], nm) == 0;
        if (!dup) snprintf(c.targets[c.n_targets++], sizeof c.targets[0], "%s", nm);
    }
    float *buf;
    ct__st_out *outs = ct__tm_file_tensors(t, &buf);
    if (!outs) return ct__err(CT_ERR_NOMEM, "%s: out of memory saving the adapter", dir);
    char *path = ct__path_join(dir, "adapter_model.safetensors");
    s = path ? ct__st_write(path, outs, t->n_ptab, "{\"format\":\"pt\"}")
             : ct__err(CT_ERR_NOMEM, "out of memory");
    free(path);
    ct__tm_file_tensors_free(t, outs, buf);
    if (s) return s;
    return ct__peft_config_write(dir, &c);
}

ct_status ct__lora_load(ct__tmodel *t, const char *dir) {
    if (t->o.method != CT_TM_LORA) return ct__err(CT_ERR_ARG, "ct__lora_load: not a LoRA model");
    char *path = ct__path_join(dir, "adapter_model.safetensors");
    if (!path) return ct__err(CT_ERR_NOMEM, "out of memory");
    ct_tstore ts;
    ct__tstore_init(&ts);
    ct_status s = ct__safetensors_load(path, &ts);
    float *tmp = NULL;
    for (int i = 0; !s && i < t->n_ptab; i++) {
        const ct__tparam *p = &t->ptab[i];
        /* PEFT writes the names without the adapter name; accept ".default." too */
        const ct_tref *r = ct__tstore_find(&ts, p->name);
        if (!r) {
            char alt[160];
            const char *w = strstr(p->name, ".weight");
            snprintf(alt, sizeof alt, "%.*s.default.weight", (int)(w ? w - p->name : 0), p->name);
            r = ct__tstore_find(&ts, alt);
        }
        if (!r) {
            s = ct__err(CT_ERR_FORMAT, "%s: tensor '%s' is missing (the adapter's targets or layer count differ from "
                        "this model's)", path, p->name);
            break;
        }
        if (r->ndim != 2 || r->shape[0] != p->shape[0] || r->shape[1] != p->shape[1]) {
            s = ct__err(CT_ERR_FORMAT, "%s: tensor '%s' has shape [%lld, %lld], this model needs [%lld, %lld] (another "
                        "base model or rank?)", path, p->name, (long long)(r->ndim > 0 ? r->shape[0] : 0),
                        (long long)(r->ndim > 1 ? r->shape[1] : 0), (long long)p->shape[0], (long long)p->shape[1]);
            break;
        }
        float *f = ct__realloc(tmp, p->n * sizeof(float));
        if (!f) { s = ct__err(CT_ERR_NOMEM, "out of memory"); break; }
        tmp = f;
        for (size_t j = 0; j < p->n; j++) {
            const uint8_t *d = r->data;
            switch (r->dtype) {
            case CT_DT_F32: memcpy(&tmp[j], d + 4 * j, 4); break;
            case CT_DT_F16: { uint16_t h; memcpy(&h, d + 2 * j, 2); tmp[j] = ct__f16_to_f32(h); } break;
            case CT_DT_BF16: { uint16_t h; memcpy(&h, d + 2 * j, 2); tmp[j] = ct__bf16_to_f32(h); } break;
            default: s = ct__err(CT_ERR_UNSUPPORTED, "%s: tensor '%s' is %s (F32, F16 or BF16 expected)", path, p->name,
                                 ct_dtype_name(r->dtype));
            }
            if (s) break;
        }
        if (!s) ct__tm_param_from_file(t, p, tmp, t->params + p->off);
    }
    free(tmp);
    ct__tstore_free(&ts);
    free(path);
    return s;
}
