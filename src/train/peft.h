/* src/train/peft.h — the configuration files the ecosystem reads next to
 * weights: PEFT's adapter_config.json (LoRA, prompt tuning, prefix tuning)
 * and Hugging Face's config.json for a fully fine-tuned model.
 * Tensors are written with ct__st_write (src/formats/st_write.h); names are
 * the caller's (src/train/). */
#ifndef CT_TRAIN_PEFT_H
#define CT_TRAIN_PEFT_H
#include "ctune/model.h"
#include "ctune/status.h"

enum { CT_PEFT_MAX_TARGETS = 16 };

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
 * CT_ERR_UNSUPPORTED naming the option), too many targets. */
ct_status ct__peft_config_read(const char *dir, ct__peft_config *c);

/* Write a Hugging Face config.json for cfg (atomic): the keys transformers'
 * LlamaConfig / MistralConfig / Qwen2Config / GPT2Config need for cfg's
 * model_type, architectures [...ForCausalLM], torch_dtype "float32",
 * bos/eos ids when known. */
ct_status ct__hf_config_write(const char *path, const ct_config *cfg);

#endif
