/* src/formats/bnb4.h — Hugging Face checkpoints quantized to 4 bits by
 * bitsandbytes (transformers' BitsAndBytesConfig(load_in_4bit=True)):
 * reading them into CT_DT_NF4 matrices, and writing them (`ctune quantize`).
 *
 * A quantized Linear "X" is stored as these tensors (docs/qlora.md):
 *   X.weight                              U8  [(out*in + 1) / 2, 1]  codes, 2 per byte
 *   X.weight.absmax                       F32 [nb] (no double quant) or U8 [nb] (codes)
 *   X.weight.quant_map                    F32 [16]   the NF4 / FP4 table
 *   X.weight.nested_absmax                F32 [ceil(nb / 256)]   double quant only
 *   X.weight.nested_quant_map             F32 [256]              double quant only
 *   X.weight.quant_state.bitsandbytes__nf4 (or __fp4) U8 [len]: JSON
 *       {"quant_type", "blocksize", "dtype", "shape": [out, in],
 *        "nested_blocksize", "nested_dtype", "nested_offset"}
 * with nb = ceil(out*in / 64). Everything else (embeddings, norms, lm_head,
 * biases) is a plain tensor. config.json carries a "quantization_config"
 * object (quant_method "bitsandbytes", load_in_4bit, bnb_4bit_quant_type,
 * bnb_4bit_use_double_quant, ...).
 * Leaves out: 8-bit (LLM.int8) checkpoints, blocksizes other than 64,
 * quant_storage other than uint8, the CPU-repacked layout bitsandbytes uses
 * in memory after an inference call (it is never saved). */
#ifndef CT_FORMATS_BNB4_H
#define CT_FORMATS_BNB4_H
#include "ctune/model.h"
#include "formats/json.h"
#include "formats/tstore.h"
#include "tensor/nf4.h"
#include "tensor/ops.h"

/* config.json's quantization_config (root: the parsed config object). CT_OK
 * when absent/null or a bitsandbytes 4-bit config (*q4 = 1, *type and *dq
 * filled; all may be NULL); CT_ERR_UNSUPPORTED naming the field for 8-bit,
 * another quant_method, a quant storage other than uint8; CT_ERR_FORMAT for
 * wrong types. path: for messages. */
ct_status ct__bnb4_check_config(const ct_json *root, const char *path, int *q4, ct_q4_type *type, int *dq);

/* 1 if the store holds `wname`.quant_state.bitsandbytes__nf4 or __fp4, i.e.
 * wname ("....q_proj.weight") is a bitsandbytes 4-bit weight. */
int ct__bnb4_is_quantized(const ct_tstore *ts, const char *wname);

/* What a tensor name is in a 4-bit checkpoint: 0 an ordinary tensor (or the
 * U8 codes, which carry the weight's own name), 1 one of the side tensors
 * (absmax, quant_map, nested_*), 2 the NF4 quant state, 3 the FP4 one. */
int ct__bnb4_part(const char *name);

/* The CT_DT_NF4 matrix (rows, cols from the quant state's shape) of the
 * 4-bit weight wname, pointing into the store's mapped data (zero-copy); the
 * ct_nf4_mat it refers to is owned by ts (freed with it). Checks every
 * piece: presence, dtypes, byte sizes against the shape, blocksize 64 (else
 * CT_ERR_UNSUPPORTED), quant_map equal to bitsandbytes' NF4/FP4 table,
 * nested map of 256 finite floats, the JSON blob; messages name the file and
 * the tensor. */
ct_status ct__bnb4_mat(ct_tstore *ts, const char *wname, ct_mat *out);

/* ---- writing (bnb4_write.c) ------------------------------------------------- */
typedef struct {
    ct_q4_type type;      /* CT_Q4_NF4 (default) or CT_Q4_FP4 */
    int no_double_quant;  /* 1: f32 absmax (bnb_4bit_use_double_quant false) */
    int n_threads;        /* <= 0: all cores */
    int verbose;          /* progress on stderr-like log (CT_LOG_INFO) */
} ct__bnb4_write_opts;

/* `ctune quantize`: write m (any loadable, unquantized model) as the
 * Hugging Face directory transformers' save_pretrained writes for a
 * BitsAndBytesConfig(load_in_4bit=True) model: config.json with its
 * quantization_config, model.safetensors (every linear layer of the blocks
 * in 4 bits, embeddings / norms / biases / lm_head in the model's float
 * dtype) and the tokenizer files. One matrix is quantized at a time and the
 * source's pages are dropped after it, so memory stays near one f32 matrix.
 * The directory is built as out.tmp.<pid> and renamed to out at the end:
 * a failure (a full disk) removes it and leaves no out. out must not exist
 * (or be an empty directory). */
ct_status ct__bnb4_write_model(ct_model *m, const char *out, const ct__bnb4_write_opts *o);

#endif
