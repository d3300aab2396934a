/* src/formats/loaders.h — format-level model loaders. Each fills a tensor
 * store with names in its source's convention and a ct_config:
 *   HF directory: Hugging Face names ("model.layers.0.self_attn.q_proj.weight",
 *                 "transformer.h.0.attn.c_attn.weight");
 *   GGUF and llama2.c: GGUF names ("blk.0.attn_q.weight", "token_embd.weight").
 * The model builder (src/model/) maps both conventions onto its weights. */
#ifndef CT_FORMATS_LOADERS_H
#define CT_FORMATS_LOADERS_H
#include "ctune/model.h"
#include "ctune/tokenizer.h"
#include "formats/tstore.h"

typedef enum { CT_NAMES_HF = 0, CT_NAMES_GGUF = 1 } ct_naming;

/* config.json + model.safetensors or sharded index; tokenizer.json if present
 * (*tok NULL otherwise). Unsupported model_type/options: CT_ERR_UNSUPPORTED naming them. */
ct_status ct__load_hf_dir(const char *dir, ct_tstore *ts, ct_config *cfg, ct_tokenizer **tok);
/* Parse a config.json text into cfg (exposed for tests). */
ct_status ct__parse_hf_config(const char *text, size_t len, const char *path, ct_config *cfg);
/* One safetensors file into ts (validates the header fully). */
ct_status ct__safetensors_load(const char *path, ct_tstore *ts);
/* The same on a safetensors image already in memory (data, size); name is used
 * in messages and file is stored in each ct_tref. Tensors point into data
 * (copied only when misaligned for their dtype), so data must outlive them.
 * All or nothing: on failure ts is as it was. Used by the loader and the fuzzer. */
ct_status ct__safetensors_parse(const uint8_t *data, size_t size, const char *name, int file, ct_tstore *ts);
/* GGUF model: llama/mistral/qwen2/gpt2 architectures. */
ct_status ct__load_gguf_model(const char *path, ct_tstore *ts, ct_config *cfg, ct_tokenizer **tok);
/* llama2.c checkpoint (legacy version-0 format: 7 int32 header, negative
 * vocab_size = untied classifier). Tensors get GGUF names. */
ct_status ct__load_llama2c(const char *path, ct_tstore *ts, ct_config *cfg);



/* Implemented in src/tokenizer/: build a tokenizer from GGUF metadata
 * (tokenizer.ggml.model "llama" -> SPM with scores, "gpt2" -> byte-level BPE
 * with tokenizer.ggml.pre choosing the pre-tokenizer regex). */
struct ct_gguf;
ct_status ct__tokenizer_from_gguf(const struct ct_gguf *g, ct_tokenizer **out);
#endif
