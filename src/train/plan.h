/* src/train/plan.h — the trainer's side of src/train/plan.c: its options as
 * ct__tm_opts, and the memory check before it allocates. */
#ifndef CT_TRAIN_PLAN_H
#define CT_TRAIN_PLAN_H
#include <stddef.h>
#include "ctune/train.h"
#include "train/tmodel.h"

/* o as the training model's options for sequences of up to max_seq tokens. */
ct_status ct__train_tm_opts(const ct_train_opts *o, const ct_config *g, int max_seq, ct__tm_opts *to);
/* "q,v" / "all-linear" / GPT-2 module names -> CT_LT_* bits (trainer.c). */
ct_status ct__parse_targets(const char *s, ct_arch arch, unsigned *out);
/* CT_OK when the predicted peak fits o->memory_limit (or what is available);
 * else CT_ERR_NOMEM with the numbers and which single changes would fit. */
ct_status ct__train_check_memory(ct_model *m, const ct_train_opts *o, int max_seq);
/* VmHWM of this process (bytes; 0 when unknown). */
size_t ct__peak_rss(void);
/* "1.25 GiB" / "12.0 MiB" / "3.5 KiB"; returns snprintf's value. */
int ct__fmt_bytes(char *buf, size_t cap, size_t b);
#endif
