/* ctune/export.h — writing a loaded model as a Hugging Face directory:
 * 4-bit quantized the way bitsandbytes / transformers save it (ctune
 * quantize), or plain, e.g. after merging an adapter (ctune merge). */
#ifndef CTUNE_EXPORT_H
#define CTUNE_EXPORT_H
#include "ctune/model.h"
#include "ctune/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int fp4;              /* 0: NF4 (default), 1: FP4 (bnb_4bit_quant_type) */
    int no_double_quant;  /* 1: bnb_4bit_use_double_quant false (f32 block scales) */
    int n_threads;        /* <= 0: all cores */
    int verbose;          /* one CT_LOG_INFO line per matrix */
} ct_quantize_opts;

/* Write m as the directory transformers' save_pretrained writes for
 * BitsAndBytesConfig(load_in_4bit=True, ...): every linear layer of the
 * blocks in 4 bits (blocksize 64), embeddings / norms / biases / lm_head in
 * the model's float dtype, config.json with quantization_config, the
 * tokenizer files. Built in out.tmp.<pid> and renamed to out (which must
 * not exist, or be an empty directory); nothing is left on failure. One
 * matrix at a time in f32. CT_ERR_UNSUPPORTED for an already 4-bit model.
 * opts may be NULL (NF4, double quant, all cores). */
ct_status ct_model_save_bnb4(ct_model *m, const char *out, const ct_quantize_opts *opts);

/* Write m's weights as they are used for inference (after
 * ct_model_apply_adapter: merged), dequantized, as a plain Hugging Face
 * directory (config.json, model.safetensors in F32, or BF16 with bf16 != 0,
 * tokenizer files). */
ct_status ct_model_save_hf(ct_model *m, const char *dir, int bf16);

/* The stored type of m's block matrices when they are quantized ("NF4",
 * "FP4", "Q8_0", "Q4_0", "Q4_1"), NULL when they are floats. */
const char *ct_model_quant_type(const ct_model *m);

#ifdef __cplusplus
}
#endif
#endif
