/* src/train/lora_io.h — LoRA adapters in PEFT's directory layout
 * (adapter_config.json + adapter_model.safetensors). docs/adapters.md. */
#ifndef CT_TRAIN_LORA_IO_H
#define CT_TRAIN_LORA_IO_H
#include "train/tmodel.h"

/* Fill o's LoRA fields (method, r, alpha, dropout, rslora, targets) from
 * dir/adapter_config.json. */
ct_status ct__lora_opts_from_dir(const char *dir, ct_arch arch, ct__tm_opts *o);
/* Write dir/adapter_model.safetensors (F32, PEFT's names, B rows in HF order)
 * and dir/adapter_config.json; dir is created if needed. Atomic per file. */
ct_status ct__lora_save(ct__tmodel *t, const char *dir, const char *base_model);
/* Read A and B of every target of t from dir/adapter_model.safetensors
 * (F32/F16/BF16); a missing tensor or another shape is an error naming it. */
ct_status ct__lora_load(ct__tmodel *t, const char *dir);

#endif
