/* src/train/save_full.h — a fully fine-tuned model as a Hugging Face
 * directory: config.json, model.safetensors (HF names and layouts: GPT-2
 * Conv1D weights transposed back, NORM-rope q/k rows permuted to HF's
 * rotate_half order), and the tokenizer files of a HF source directory. */
#ifndef CT_TRAIN_SAVE_FULL_H
#define CT_TRAIN_SAVE_FULL_H
#include "train/tmodel.h"

ct_status ct__save_full(ct__tmodel *t, const char *dir);
/* A fully fine-tuned classifier (cls_labels > 0): transformers'
 * *ForSequenceClassification directory (score.weight, no lm_head; labels as
 * id2label / label2id). */
ct_status ct__save_full_cls(ct__tmodel *t, const char *dir, const char *const *labels);

#endif
