/* src/train/peft.h — the configuration files the ecosystem reads next to
 * weights: PEFT's adapter_config.json (LoRA, prompt tuning, prefix tuning)
 * and Hugging Face's config.json for a fully fine-tuned model.
 * Tensors are written with ct__st_write (src/formats/st_write.h); names are
 * the caller's (src/train/). docs/adapters.md describes the files.
 *
 * Rotary layout: Hugging Face's llama/mistral/qwen2 code rotates halves
 * (rotate_half, CT_ROPE_NEOX). A ct_config from a llama2.c file or a GGUF
 * llama uses CT_ROPE_NORM (adjacent pairs); whoever saves such a model (or a
 * LoRA on q_proj/k_proj) in HF form must permute the rows of q and k (and of
 * lora_B for q/k) per head from pair order to half order first, as
 * transformers' convert_llama_weights_to_hf does. These functions write
 * configs only and do not look at rope_style. */
#ifndef CT_TRAIN_PEFT_H
#define CT_TRAIN_PEFT_H
#include "ctune/model.h"
#include "ctune/status.h"

enum { CT_PEFT_MAX_TARGETS = 16 };
/* the peft_version the configs we write carry (the PEFT they were checked with) */
#define CT_PEFT_FORMAT_VERSION "0.21.2"

typedef struct {
    char peft_type[24];         /* "LORA" (also "PROMPT_TUNING", "PREFIX_TUNING" later) */
    char task_type[24];         /* "CAUSAL_LM" or "SEQ_CLS" */
    char base_model[512];       /* base_model_name_or_path: the path the user gave */
    int r;
    float lora_alpha;
    float lora_dropout;
    int use_rslora;
    int fan_in_fan_out;         /* 1 for GPT-2 (Conv1D weights) */
    int n_targets;
    char targets[CT_PEFT_MAX_TARGETS][32]; /* target_modules: "q_proj", "c_attn", ... */
    char bias[8];               /* "none" */
    int modules_to_save_score;  /* SEQ_CLS: modules_to_save ["classifier", "score"] (PEFT's default for it) */
    char base_quant[8];         /* QLoRA: the frozen base the adapter was trained on, "nf4", "q8",
                                   "bf16" or "f32" (converted on load as ct__tm_opts.base says), ""
                                   for plain LoRA; key "ctune_base_quantization" (PEFT ignores
                                   unknown keys with a warning) */
} ct__peft_config;

/* Write dir/adapter_config.json (atomic) with every key PEFT's LoraConfig
 * writes, in its spelling (target_modules as a JSON list, sorted), so that
 * peft.PeftModel.from_pretrained reads it. dir must exist. */
ct_status ct__peft_config_write(const char *dir, const ct__peft_config *c);
/* Read dir/adapter_config.json. Accepts what PEFT writes (target_modules as
 * a list or a single string; missing optional keys take PEFT's defaults:
 * lora_dropout 0, use_rslora false, fan_in_fan_out false, bias "none").
 * Errors name the file and key: unknown peft_type, r <= 0, rank-pattern /
 * alpha-pattern / DoRA options ctune does not support (a clear
 * CT_ERR_UNSUPPORTED naming the option), too many targets.
 * Details: r and lora_alpha default to PEFT's 8; task_type may be absent
 * ("" then); target_modules is required (PEFT's per-architecture default is
 * not resolved); a target_modules string is taken as one module name (PEFT
 * treats it as a regular expression over full names: regex-like strings and
 * "all-linear" are CT_ERR_UNSUPPORTED); bias "lora_only" is
 * CT_ERR_UNSUPPORTED (it does not fit bias[8]); also rejected when set:
 * lora_bias, use_qalora, use_bdlora, layers_to_transform, layer_replication,
 * modules_to_save, exclude_modules, target_parameters,
 * trainable_token_indices, alora_invocation_tokens, megatron_config.
 * On failure *c is zeroed. */
ct_status ct__peft_config_read(const char *dir, ct__peft_config *c);

/* Write a Hugging Face config.json for cfg (atomic): the keys transformers'
 * LlamaConfig / MistralConfig / Qwen2Config / GPT2Config need for cfg's
 * model_type, architectures [...ForCausalLM], torch_dtype "float32",
 * bos/eos ids when known.
 * Mapping: dim -> hidden_size / n_embd, hidden_dim -> intermediate_size /
 * n_inner, n_layers -> num_hidden_layers / n_layer, n_heads ->
 * num_attention_heads / n_head, n_kv_heads -> num_key_value_heads, head_dim,
 * vocab_size, max_seq_len -> max_position_embeddings / n_positions, norm_eps
 * -> rms_norm_eps / layer_norm_epsilon, rope_theta -> rope_parameters
 * (5.x) and rope_theta (4.x), tie_embeddings -> tie_word_embeddings,
 * sliding_window (mistral; qwen2 via use_sliding_window on every layer).
 * GPT-2 is GPT2LMHeadModel with activation_function "gelu_new". qwen2 has
 * q/k/v biases implicitly; a llama with qkv_bias gets attention_bias true,
 * which in transformers also biases o_proj (write a zero o_proj.bias). Also
 * "dtype" for transformers 5. model_type must be one of the four. */
ct_status ct__hf_config_write(const char *path, const ct_config *cfg);
/* The same for *ForSequenceClassification (architectures, id2label, label2id, pad_token_id). */
ct_status ct__hf_config_write_cls(const char *path, const ct_config *cfg, const char *const *labels, int n);

#endif
