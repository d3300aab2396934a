/* src/train/prompt_io.h — prompt- and prefix-tuning adapters in PEFT's
 * layout: adapter_config.json (peft_type PROMPT_TUNING / PREFIX_TUNING, the
 * keys PromptTuningConfig / PrefixTuningConfig write) and
 * adapter_model.safetensors ("prompt_embeddings" (K, C) / (K, layers*2*kv_dim),
 * F32). docs/adapters.md. */
#ifndef CT_TRAIN_PROMPT_IO_H
#define CT_TRAIN_PROMPT_IO_H
#include "train/tmodel.h"

/* init: "RANDOM", "SAMPLE_VOCAB" or "TEXT" (with init_text); tokenizer: the
 * tokenizer's path for tokenizer_name_or_path (NULL: null). */
ct_status ct__prompt_save(ct__tmodel *t, const char *dir, const char *base_model, const char *init,
                          const char *init_text, const char *tokenizer);
/* Fill o (method PROMPT or PREFIX, n_virtual) from dir/adapter_config.json;
 * the token_dim and num_layers (prefix: num_attention_heads) must be this model's. */
ct_status ct__prompt_opts_from_dir(const char *dir, const ct_config *g, ct__tm_opts *o);
/* Read prompt_embeddings (F32/F16/BF16) into t's parameters (a prefix-tuning
 * t without the projection MLP). */
ct_status ct__prompt_load(ct__tmodel *t, const char *dir);
/* K token ids drawn from the vocabulary (V) by a seeded LCG: the start
 * --prompt-init vocab samples (the same seed gives the same ids). */
void ct__vocab_sample(uint64_t seed, int V, int K, int32_t *ids);
/* Start prompt tuning's virtual tokens (PROMPT) as the embeddings of ids, or
 * prefix tuning's table (PREFIX, no MLP) as the cache they leave
 * (ct__tm_prefix_from_ids); ids (n >= 1) repeated or cut to K. */
ct_status ct__soft_init_from_ids(ct__tmodel *t, const int32_t *ids, int n);
/* 1 when dir/adapter_config.json says PROMPT_TUNING or PREFIX_TUNING. */
int ct__is_prompt_adapter(const char *dir);
#endif
