/* src/train/merge.c — ct_model_apply_adapter: LoRA merged into the weights a
 * loaded model uses for inference, W' = W + scale * B A, computed in f32
 * from the dequantized base (never in the stored quantized type, so nothing
 * is lost to re-quantization); the merged matrices are owned F32 copies
 * that replace the model's views, the mapped files stay untouched.
 * A QLoRA adapter (adapter_config.json's ctune_base_quantization) was
 * trained on a converted base: the base is converted the same way first
 * (deterministic, so the same NF4/Q8_0/BF16 values as in training, or used
 * in place when the model is stored so), then every linear layer becomes its
 * dequantized f32 value, plus B A where the adapter has one.
 * Leaves out: un-merging, several adapters at once. */
#include <stdlib.h>
#include <string.h>
#include "ctune/train.h"
#include "tensor/gemm.h"
#include "train/lora_io.h"
#include "train/prompt_io.h"
#include "train/tmodel_internal.h"

ct_status ct_model_apply_adapter(ct_model *m, const char *dir) {
    if (!m || !dir) return ct__err(CT_ERR_ARG, "ct_model_apply_adapter: model or directory NULL");
    if (ct__is_prompt_adapter(dir))
        return ct__err(CT_ERR_UNSUPPORTED, "%s is a prompt- or prefix-tuning adapter: its virtual tokens are not weights to merge; "
                       "ctune train (validation) and ctune classify use it, generate/eval --adapter take LoRA adapters",
                       dir);
    ct__tm_opts o = {.max_rows = 1, .max_seq = 1, .n_threads = 1};
    ct_status s = ct__lora_opts_from_dir(dir, m->cfg.arch, &o);
    if (s) return s;
    ct__tmodel *t = NULL;
    if ((s = ct__tm_create(m, &o, &t))) return s;
    if ((s = ct__lora_load(t, dir))) {
        ct__tm_free(t);
        return s;
    }
    for (int l = 0; l < m->cfg.n_layers && !s; l++) {
        ct__layer *S = &m->layers[l];
        ct_mat *dst[LIN_COUNT] = {&S->wq, &S->wk, &S->wv, &S->wo, &S->w_gate, &S->w_up, &S->w_down};
        for (int i = 0; i < LIN_COUNT; i++) {
            const ct__tlin *L = &t->blk[l].lin[i];
            if (!L->r && !L->fused) continue;
            float *w = ct__malloc((size_t)L->out * L->in * sizeof(float));
            if (!w || ct__tstore_own(&m->ts, w) < 0) {
                free(w);
                s = ct__err(CT_ERR_NOMEM, "%s: out of memory merging the adapter", dir);
                break;
            }
            for (int r = 0; r < L->out; r++) ct__mat_row_f32(&L->base, r, w + (size_t)r * L->in);
            /* w += scale * B (out, r) A (r, in) */
            if (L->r) ct__sgemm(0, 0, L->out, L->in, L->r, t->scale, L->B, L->r, L->A, L->in, 1.0f, w, L->in, t->pool);
            ct_mat merged = {.dtype = CT_DT_F32, .rows = L->out, .cols = L->in, .data = w,
                             .row_bytes = (size_t)L->in * sizeof(float), .act_q8 = (uint8_t)(m->q8_act != 0)};
            if (m->cfg.arch == CT_ARCH_GPT2 && i == LIN_Q) {
                int C = m->cfg.dim;
                S->wq = ct__mat_rows(&merged, 0, C);
                S->wk = ct__mat_rows(&merged, C, C);
                S->wv = ct__mat_rows(&merged, 2 * C, C);
            } else {
                *dst[i] = merged;
            }
        }
    }
    ct__tm_free(t);
    return s;
}
