/* ctune/train.h — fine-tuning a loaded model: full fine-tuning or LoRA, with
 * the training loop (AdamW, schedules, gradient accumulation, validation,
 * early stopping, checkpoints that resume exactly). docs/train.md.
 *
 * Outputs in out_dir:
 *   LoRA: adapter_config.json + adapter_model.safetensors (PEFT's layout)
 *   full: config.json + model.safetensors (+ tokenizer files of a HF source):
 *         a Hugging Face directory transformers loads
 *   best/            the same for the step with the lowest validation loss
 *   checkpoint-N/    resumable state every save_every steps (last one kept)
 *   metrics.jsonl    one line per logged step: step, epoch, train_loss,
 *                    val_loss (evaluations), lr, tokens_per_s
 */
#ifndef CTUNE_TRAIN_H
#define CTUNE_TRAIN_H
#include <stdint.h>
#include "ctune/data.h"
#include "ctune/model.h"
#include "ctune/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* QLORA: LoRA over the frozen linear layers quantized on load to 4-bit NF4
 * with double quantization (bitsandbytes' format, docs/qlora.md); gradient
 * checkpointing is on by default for it (the CLI's --no-grad-checkpoint). */
/* PROMPT: prompt tuning, num_virtual_tokens learned input embeddings before
 * every sequence (PEFT's PROMPT_TUNING), the base frozen. */
/* PREFIX: prefix tuning, num_virtual_tokens learned keys and values in front
 * of every sequence in every layer (PEFT's PREFIX_TUNING), the base frozen;
 * prefix_projection > 0 trains them through PEFT's reparameterization MLP. */
typedef enum {
    CT_METHOD_FULL = 0, CT_METHOD_LORA = 1, CT_METHOD_QLORA = 2, CT_METHOD_PROMPT = 3, CT_METHOD_PREFIX = 4
} ct_method;

/* How prompt tuning's virtual tokens start: N(0, 1) (PEFT's RANDOM), the
 * embeddings of tokens sampled from the vocabulary (SAMPLE_VOCAB), or of a
 * text's tokens, repeated or cut to the count (TEXT). */
typedef enum { CT_PROMPT_INIT_RANDOM = 0, CT_PROMPT_INIT_VOCAB = 1, CT_PROMPT_INIT_TEXT = 2 } ct_prompt_init;

/* QLoRA's frozen base (--base-dtype): NF4 (the default), Q8_0 8-bit, BF16, or
 * F32 (LoRA on a full-precision base, for comparison). */
typedef enum { CT_BASE_DEFAULT = 0, CT_BASE_NF4 = 1, CT_BASE_Q8 = 2, CT_BASE_BF16 = 3, CT_BASE_F32 = 4 } ct_base_dtype;

typedef struct {
    ct_method method;
    ct_base_dtype base_dtype; /* QLoRA only */
    /* prompt tuning */
    int num_virtual_tokens;   /* default 8 (prompt and prefix tuning) */
    int prefix_projection;    /* prefix tuning: > 0: hidden size of the reparameterization MLP (0: off) */
    ct_prompt_init prompt_init;
    const char *prompt_init_text;
    /* LoRA */
    int lora_r;             /* default 8 */
    float lora_alpha;       /* default 16 */
    float lora_dropout;     /* default 0.05 */
    int rslora;
    const char *targets;    /* "q,v" (default), "q,k,v,o,gate,up,down", "all-linear";
                               GPT-2: "c_attn", "c_proj", "c_fc" (or q,k,v→c_attn etc.) */
    /* data */
    const char *data_path;
    const char *val_path;   /* NULL: val_split of the training file */
    double val_split;       /* fraction held out when no val_path (0: no validation) */
    ct_data_opts data;      /* max_len (default 256), train_on_prompt, skip_bad_rows, format */
    int pack;               /* fill micro-batches by tokens instead of examples */
    /* optimisation */
    float lr;               /* default 2e-4 LoRA, 5e-5 full */
    float weight_decay;     /* default 0.0 */
    float beta1, beta2, eps;/* default 0.9, 0.999, 1e-8 */
    const char *schedule;   /* "constant", "linear", "cosine" (default) */
    int warmup;             /* steps */
    float clip;             /* max grad norm (default 1.0; 0 = off) */
    int batch;              /* examples per optimizer step (default 8) */
    int micro_batch;        /* examples per forward/backward (default = batch) */
    int epochs;             /* default 1 */
    int max_steps;          /* > 0: stop after this many steps (overrides epochs) */
    int eval_every;         /* steps between evaluations (0: at each epoch end only) */
    int patience;           /* stop after this many evaluations without improvement (0: off) */
    int save_every;         /* steps between checkpoints (0: none) */
    int log_every;          /* steps between metric lines (default 1) */
    int checkpointing;      /* recompute activations in backward */
    int bf16;               /* matmuls on bf16-rounded operands, f32 accumulation and f32 master
                               weights (faster); 0 (default): exact f32 */
    uint64_t seed;          /* default 42 */
    int n_threads;
    const char *out_dir;
    const char *resume_dir; /* a checkpoint-N directory of an earlier run */
    int progress;           /* 1: progress line on stderr (default: when stderr is a terminal) */
    size_t memory_limit;    /* bytes the run may use (0: MemAvailable of /proc/meminfo + this process's RSS) */
    int no_memory_check;    /* 1: start even when the predicted peak exceeds memory_limit */
    int quiet;
    /* limits (tests): stop after this many steps without finishing (simulated crash) */
    int stop_after;
} ct_train_opts;

/* Defaults for everything above (method as given). */
void ct_train_opts_default(ct_train_opts *o, ct_method method);

typedef struct {
    int steps;              /* optimizer steps done */
    double train_loss;      /* mean loss of the last step */
    double val_loss;        /* last evaluation (NAN without validation) */
    double best_val_loss;
    int best_step;
    int64_t trainable;      /* trainable parameters */
    double seconds;
    double tokens_per_s;
    int stopped_early;
    size_t peak_rss_bytes;  /* this process's peak resident memory at the end (VmHWM; 0 when unknown) */
} ct_train_result;

/* What a run needs, predicted from the model's shapes and the options before
 * anything is allocated (ctune plan; ct_train checks it first). Every
 * sequence is taken as max_seq tokens (ct_train uses the data's longest). */
typedef struct {
    int64_t n_params;        /* every parameter of the model (tied weights once) */
    int64_t n_trainable;     /* trainable parameters */
    size_t file_bytes;       /* the output: adapter_model.safetensors (LoRA) or model.safetensors (full, F32) */
    size_t weights_bytes;    /* frozen weights resident: the base as read, converted (QLoRA) or
                                bf16-packed, the head and the embedding table */
    size_t trainable_bytes;  /* trainable f32 values */
    size_t grad_bytes;       /* their gradients */
    size_t optim_bytes;      /* AdamW's two moments */
    size_t act_bytes;        /* activations and scratch of one micro-batch */
    size_t save_bytes;       /* the file-layout copy while an output or checkpoint is written */
    size_t other_bytes;      /* the program, thread scratch, tokenizer, data (a fixed allowance) */
    size_t peak_bytes;       /* the sum: predicted peak resident memory */
    int max_rows, max_seq;   /* rows of one micro-batch, tokens of the longest sequence */
} ct_train_plan;
ct_status ct_train_plan_memory(ct_model *m, const ct_train_opts *o, int max_seq, ct_train_plan *out);
/* Memory this process may use now: MemAvailable + its own RSS (bytes; 0 when unknown). */
size_t ct_memory_available(void);

/* Train m on o->data_path and write the outputs to o->out_dir. Before it
 * allocates, a predicted peak above o->memory_limit stops it with
 * CT_ERR_NOMEM and a message with the numbers and the changes that would fit. */
ct_status ct_train(ct_model *m, const ct_train_opts *o, ct_train_result *res);

/* Apply a LoRA adapter directory to a loaded model for inference: every
 * targeted weight becomes W + scale * B A (an f32 copy; the mapped base is
 * untouched). */
ct_status ct_model_apply_adapter(ct_model *m, const char *adapter_dir);

#ifdef __cplusplus
}
#endif
#endif
