/* src/train/tmodel.h — a model set up for training: its trainable parameters
 * (all weights for full fine-tuning, LoRA's A and B beside a frozen base), the
 * activations a forward pass saves, and the backward pass.
 *
 * One micro-batch is N rows: several sequences packed end to end (rows
 * [seq[s], seq[s+1]) are sequence s, at positions 0..len-1), with a target id
 * per row (-1: no loss on that row). Forward runs every layer over all N rows
 * at once (the matmuls see N rows), attention stays inside each sequence.
 *
 * Parameters live in one f32 buffer (params) with a gradient buffer of the
 * same size (grads), described by a table of named tensors (Hugging Face or
 * PEFT names) so that the optimizer, the checkpoints and the savers treat
 * every parameter alike. Frozen weights stay as the loader mapped them (their
 * stored dtype) and are read through ct_mat.
 */
#ifndef CT_TRAIN_TMODEL_H
#define CT_TRAIN_TMODEL_H
#include <stddef.h>
#include <stdint.h>
#include "ctune/model.h"
#include "formats/st_write.h"
#include "tensor/ops.h"

/* FROZEN: nothing trainable (features for a classifier head, evaluation):
 * the base is read as LoRA reads it, with no adapter.
 * PROMPT: prompt tuning, n_virtual learned input embeddings ("prompt_embeddings"
 * (K, C), PEFT's tensor) in front of every sequence: a batch row whose id is
 * -(j+1) is virtual token j (its embedding is row j, its gradient goes there);
 * positions count the virtual tokens, as PEFT's concatenated inputs_embeds.
 * PREFIX: prefix tuning, n_virtual learned keys and values in front of every
 * sequence in every layer (PEFT's PREFIX_TUNING: "prompt_embeddings"
 * (K, layers * 2 * kv_dim), layer l's keys at columns [2l kv_dim, (2l+1) kv_dim)
 * and its values after them, heads then head dims in Hugging Face's order).
 * The prefix keys are not rotated; the sequence's tokens sit at positions
 * K.., as transformers places them after a cache of K entries. With
 * prefix_hidden > 0 the table is the output of PEFT's prefix_projection MLP
 * (embedding (K, kv_dim) -> Linear(kv_dim, prefix_hidden) -> tanh ->
 * Linear(prefix_hidden, layers * 2 * kv_dim)), whose weights are trained. */
typedef enum { CT_TM_FULL = 0, CT_TM_LORA = 1, CT_TM_FROZEN = 2, CT_TM_PROMPT = 3, CT_TM_PREFIX = 4 } ct__tm_method;

/* How LoRA keeps the frozen linear layers (QLoRA's --base-dtype). ASIS: as
 * loaded (f32 products; bf16 mode pre-packs them); the others convert each
 * frozen linear layer on creation (unless it is already stored so, e.g. a
 * bitsandbytes 4-bit checkpoint) and read it in place through the fused
 * kernels (ct__qmm_*), the source pages of a mapped file dropped after each
 * matrix, so the base never exists in f32 in full:
 *   NF4   4-bit NormalFloat, blocks of 64, double-quantized scales
 *         (bitsandbytes' layout, src/tensor/nf4.h): 0.52 bytes/weight
 *   Q8    Q8_0 (blocks of 32 int8 with an f16 scale): 1.06 bytes/weight; a
 *         matrix whose in is not a multiple of 32 stays BF16
 *   BF16  2 bytes/weight
 *   F32   4 bytes/weight (plain LoRA read through the same kernels: the comparison).
 * With any of them the frozen head is read in place as well. */
typedef enum { CT_TB_ASIS = 0, CT_TB_NF4, CT_TB_Q8, CT_TB_BF16, CT_TB_F32 } ct__tm_base;

/* The linear layers of a block, as LoRA targets. GPT-2: c_attn = Q (one fused
 * q/k/v matrix), attn.c_proj = O, c_fc = UP, mlp.c_proj = DOWN. */
enum {
    CT_LT_Q = 1 << 0, CT_LT_K = 1 << 1, CT_LT_V = 1 << 2, CT_LT_O = 1 << 3,
    CT_LT_GATE = 1 << 4, CT_LT_UP = 1 << 5, CT_LT_DOWN = 1 << 6,
    CT_LT_ALL = 0x7f
};

typedef struct {
    ct__tm_method method;
    int lora_r;               /* rank (LoRA) */
    float lora_alpha;
    float lora_dropout;       /* on the input of A, as PEFT's lora_dropout */
    int rslora;               /* scale alpha/sqrt(r) instead of alpha/r */
    unsigned lora_targets;    /* CT_LT_* bits */
    int max_rows;             /* most rows (tokens) in one micro-batch */
    int max_seq;              /* longest sequence in one micro-batch */
    int checkpointing;        /* save only each block's input; recompute in backward */
    int n_threads;            /* <= 0: all cores */
    ct__tm_base base;         /* LoRA: storage of the frozen linear layers (QLoRA: NF4) */
    int n_virtual;            /* PROMPT, PREFIX: virtual tokens K */
    int prefix_hidden;        /* PREFIX: > 0: the reparameterization MLP's hidden size (PEFT's encoder_hidden_size) */
    int max_seqs;             /* PREFIX: most sequences in one micro-batch (0: max_rows) */
    int cls_labels;           /* > 0: sequence classification with a trainable head `score` (cls_labels, C)
                                 instead of the LM head; a row's target is its label (the last row of each
                                 sequence), PEFT's SEQ_CLS modules_to_save tensor for LoRA */
    int bf16;                 /* matmul operands rounded to bf16, f32 accumulation (ct__sgemm_bf16);
                                 0: exact f32 (the reference tests) */
    uint64_t seed;            /* LoRA A initialisation */
} ct__tm_opts;

typedef struct {
    char name[128];           /* HF name (full) or PEFT name (LoRA) */
    int ndim;
    int64_t shape[2];         /* as the HF/PEFT file stores it */
    int transposed;           /* 1: the file stores the transpose of our (out, in) layout (GPT-2 Conv1D) */
    int rope_rows;            /* q/k rows of a NORM-rope model (rows permuted when read/written as HF) */
    size_t off, n;            /* floats at params + off */
    int decay;                /* weight decay applies (2-D parameters) */
} ct__tparam;

typedef struct ct__tmodel ct__tmodel;

/* The micro-batch: N rows of n_seq sequences. */
typedef struct {
    const int32_t *ids;       /* (N) */
    const int32_t *targets;   /* (N), -1 = no loss */
    const int32_t *seq;       /* (n_seq+1) row offsets */
    int N, n_seq;
} ct__tm_batch;

/* Set up training of m (which must outlive the result). */
ct_status ct__tm_create(ct_model *m, const ct__tm_opts *o, ct__tmodel **out);
void ct__tm_free(ct__tmodel *t);

/* Forward the batch; returns the summed cross-entropy over rows with a
 * target (double). With backward, adds the gradient of scale * that sum to
 * grads (so scale = 1 / targets in the optimizer step gives the mean).
 * logits: NULL or (N, V) to receive every row's logits. */
ct_status ct__tm_run(ct__tmodel *t, const ct__tm_batch *b, float scale, int backward, float *logits,
                     double *loss_sum);
void ct__tm_zero_grad(ct__tmodel *t);
/* Dropout masks of the next ct__tm_run (set per micro-batch, e.g. from the
 * run seed, the step and the micro-batch index, so a resumed run repeats them). */
void ct__tm_set_dropout_seed(ct__tmodel *t, uint64_t seed);

/* The final norm's output (N, C) of the last ct__tm_run (rows of its batch):
 * the features a classifier head reads. */
const float *ct__tm_final_hidden(const ct__tmodel *t);

/* The trainable parameters. */
float *ct__tm_params(ct__tmodel *t, size_t *n);
float *ct__tm_grads(ct__tmodel *t);
const ct__tparam *ct__tm_ptable(const ct__tmodel *t, int *n);
const ct__tparam *ct__tm_find(const ct__tmodel *t, const char *name);
ct_pool *ct__tm_pool(ct__tmodel *t);
const ct__tm_opts *ct__tm_options(const ct__tmodel *t);
ct_model *ct__tm_model(ct__tmodel *t);
/* Bytes of the activation buffers and scratch (for memory reports). */
size_t ct__tm_act_bytes(const ct__tmodel *t);

/* What training with these options needs, computed from the shapes alone
 * (nothing is allocated or converted): the sizes ct__tm_create and the
 * trainer will allocate, and the resident bytes of the frozen weights. */
typedef struct {
    size_t n_trainable;       /* trainable floats (each tensor padded to 16) */
    int n_tensors;            /* trainable tensors */
    size_t trainable_bytes;   /* their f32 values */
    size_t grad_bytes;        /* their gradients */
    size_t optim_bytes;       /* AdamW's two moments (the trainer) */
    size_t act_bytes;         /* activations and scratch (ct__tm_act_bytes) */
    size_t base_bytes;        /* frozen linear layers as read: mapped, converted (NF4/Q8/BF16) or
                                 bf16-packed copies (0 for full fine-tuning: they are trainable) */
    size_t heademb_bytes;     /* frozen head and embedding table (whole), or full fine-tuning's packed head */
    size_t save_bytes;        /* the file-layout copy the savers make while writing */
    size_t file_bytes;        /* the adapter (LoRA) / model.safetensors (full) file */
} ct__tm_mem;
ct_status ct__tm_estimate(ct_model *m, const ct__tm_opts *o, ct__tm_mem *e);

/* Copy a parameter between our layout and the file layout (transpose for
 * GPT-2 Conv1D weights, RoPE row permutation for NORM-rope models).
 * file: numel floats in the file's layout. */
void ct__tm_param_to_file(const ct__tmodel *t, const ct__tparam *p, const float *ours, float *file);
void ct__tm_param_from_file(const ct__tmodel *t, const ct__tparam *p, const float *file, float *ours);

/* Every trainable tensor in the file layout, ready for ct__st_write (F32):
 * the array (n_ptab entries) and *buf (their data) are the caller's, freed
 * with ct__tm_file_tensors_free. NULL when out of memory. */
ct__st_out *ct__tm_file_tensors(const ct__tmodel *t, float **buf);
void ct__tm_file_tensors_free(const ct__tmodel *t, ct__st_out *outs, float *buf);

/* Prefix tuning: the key/value table (K, layers*2*kv_dim) in PEFT's layout,
 * recomputed from the projection MLP when there is one. */
const float *ct__tm_prefix_table(ct__tmodel *t);

/* Prefix tuning without the MLP: set the table to the key/value cache that
 * ids (n >= 1, repeated or cut to K) leave in the base model at positions
 * 0..K-1, so the prefix starts as that text in front of every sequence. */
ct_status ct__tm_prefix_from_ids(ct__tmodel *t, const int32_t *ids, int n);

/* The LoRA scale (alpha/r or alpha/sqrt(r)). */
float ct__tm_lora_scale(const ct__tmodel *t);
/* Names of target bits for PEFT's target_modules ("q_proj", ... / "c_attn", ...). */
const char *ct__tm_target_name(ct_arch arch, unsigned bit);

#endif
