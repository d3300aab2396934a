/* src/train/tmodel_internal.h — the layout of a ct__tmodel, shared by
 * tmodel.c (set-up, parameters, memory) and tblock.c (forward/backward). */
#ifndef CT_TRAIN_TMODEL_INTERNAL_H
#define CT_TRAIN_TMODEL_INTERNAL_H
#include "model/model_internal.h"
#include "train/tkernels.h"
#include "train/tmodel.h"
#include "tensor/nf4_matmul.h"

/* A vector parameter: value and gradient (NULL when frozen). */
typedef struct {
    const float *w;
    float *g;
} ct__tvec;

/* The linear layers of a block, in CT_LT_* bit order. */
enum { LIN_Q, LIN_K, LIN_V, LIN_O, LIN_GATE, LIN_UP, LIN_DOWN, LIN_COUNT };

/* y (N, out) = x (N, in) W^T + b + scale * (dropout(x) A^T) B^T */
typedef struct {
    int in, out, r;           /* r = 0: no LoRA; out = 0: the layer does not exist */
    ct_mat base;              /* frozen weight, stored dtype (rows = 0 when w is trainable) */
    float *w, *gw;            /* (out, in) trainable weight (full fine-tuning) */
    const float *b;           /* (out) or NULL */
    float *gb;                /* (out) or NULL (frozen / no bias) */
    float *A, *gA;            /* (r, in) */
    float *B, *gB;            /* (out, r) */
    int fused;                /* base read in place by ct__qmm_* (o.base != ASIS): base is then the
                                 converted matrix (owned by the model's conv store) or the loader's */
    void *pk_fwd, *pk_bwd;    /* bf16 LoRA: the frozen base pre-packed once for x W^T (K=in, N=out)
                                 and dy W (K=out, N=in) (ct__gemm_bf16_pack_b), or NULL */
} ct__tlin;

typedef struct {
    ct__tvec n1w, n1b, n2w, n2b;    /* norms (b: GPT-2 LayerNorm only) */
    ct__tlin lin[LIN_COUNT];        /* GPT-2: Q = fused c_attn (out 3C), K/V/GATE unused */
} ct__tblock;

/* What a block's forward saves for its backward. */
typedef struct {
    float *h1, *mu1, *rs1;     /* (N,C) (N) (N): first norm */
    float *q, *k, *v;          /* (N,qd) (N,kvd) (N,kvd) after RoPE; GPT-2: q = fused (N,3C), k = v = NULL */
    float *probs;              /* attention probabilities */
    float *att;                /* (N,qd) attention output */
    float *mid;                /* (N,C) residual after attention */
    float *h2, *mu2, *rs2;     /* second norm */
    float *g, *u, *a;          /* (N,H): gate, up, silu(gate)*up; GPT-2: g = c_fc output, a = gelu(g) */
    float *xa[LIN_COUNT];      /* (N,r) LoRA x A^T (NULL where no LoRA) */
} ct__tacts;

struct ct__tmodel {
    ct_model *m;
    const ct_config *cfg;
    ct__tm_opts o;
    ct_pool *pool;
    float scale;               /* LoRA scale */
    int qd, kvd;               /* NH*HS, NKV*HS */
    int qkv_out;               /* out of LIN_Q: qd (Llama) or 3C (GPT-2) */

    /* parameters */
    float *params, *grads;     /* (n_params) each */
    size_t n_params;
    ct__tparam *ptab;
    int n_ptab;

    /* embeddings and head: trainable f32 (w, g) or frozen ct_mat */
    float *wte, *gwte;         /* (V,C) */
    float *wpe, *gwpe;         /* (P,C) GPT-2 */
    float *whead, *gwhead;     /* (V,C): == wte when tied; NULL when frozen */
    float *prompt, *gprompt;   /* (K,C) prompt tuning's virtual token embeddings, or NULL */
    float *score, *gscore;     /* (cls_labels, C) classification head, or NULL */
    /* prefix tuning: attention runs over [K prefix rows; sequence] for each
       sequence, the prefix rows' queries zero and their outputs dropped */
    float *prefix, *gprefix;   /* (K, L*2*kvd) key/value table (HF layout) and its gradient: the parameter,
                                  or (projection) buffers the MLP fills / reads */
    float *pfx_emb, *gpfx_emb; /* projection: (K, kvd) */
    float *pfx_w1, *gpfx_w1, *pfx_b1, *gpfx_b1; /* (E, kvd) (E) */
    float *pfx_w2, *gpfx_w2, *pfx_b2, *gpfx_b2; /* (L*2*kvd, E) (L*2*kvd) */
    float *pfx_h, *pfx_dh;     /* (K, E) tanh output and its gradient */
    int32_t *pfx_kmap;         /* (kvd) file column of our key column (RoPE NORM rows permuted) */
    int32_t *eseq;             /* (max_seqs + 1) row offsets of the extended sequences */
    float *eq, *ek, *ev, *eo;  /* (Ne, qd) (Ne, kvd) (Ne, kvd) (Ne, qd), Ne = e_rows */
    float *edq, *edk, *edv, *edo;
    int e_rows;
    void *pk_head_fwd, *pk_head_bwd; /* bf16: the head packed (K=C,N=V / K=V,N=C): once (frozen, LoRA)
                                        or at each run (trainable, head_repack) */
    int head_repack;
    int head_fused;            /* the frozen head read in place by ct__qmm_* */
    ct_nf4_mat *nf4_mats;      /* base NF4: (L * LIN_COUNT) matrices; their arrays and every other
                                  converted matrix in conv_mem */
    void **conv_mem;
    int n_conv_mem;
    float nf4_nested_map[256]; /* bitsandbytes' dynamic map (weight.nested_quant_map) */
    size_t base_bytes;         /* bytes of the frozen linear layers as the fused kernels read them */
    void **packed;             /* every pre-packed buffer (owned), with its size */
    size_t *packed_bytes;
    int n_packed;
    ct__tvec nfw, nfb;         /* final norm */
    ct__tblock *blk;           /* (L) */

    /* activations: res (L+1, N, C); acts[l] (all alias acts[0] with checkpointing) */
    float *res;
    ct__tacts *acts;
    float *hf, *muf, *rsf;     /* final norm (N,C) (N) (N) */
    /* backward scratch */
    float *dres, *dh;          /* (N,C) */
    float *dq, *dk, *dv, *datt;/* (N,qkv_out) (N,kvd) (N,kvd) (N,qd) */
    float *dA, *dG, *dU;       /* (N,H) */
    float *t_r;                /* (N,r) */
    float *t_in;               /* (N, max in) dropout input / LoRA dx */
    float *logits;             /* (CH, V) head chunk */
    float *hg, *dhg;           /* (CH, C) gathered head inputs / their gradients */
    int32_t *tg, *hrows;       /* (CH) their targets, (N) rows that go through the head */
    float *wdeq;               /* dequantized frozen matrix (max out*in) or NULL */
    size_t wdeq_n;
    float *rope_cos, *rope_sin;/* (max_seq, HS/2) */
    int32_t *pos;              /* (N) */
    void *mem;
    size_t mem_bytes;
    int head_rows;             /* CH */
    uint64_t drop_seed;        /* dropout stream of the current micro-batch */
    int training;              /* dropout on (set by ct__tm_run's backward flag) */
};

/* tmodel.c: W (out, in) as f32 — the mapped data for F32 (*ld its row
 * stride), else dequantized into tmp (out*in floats, *ld = in). */
const float *ct__mat_f32(const ct_mat *W, float *tmp, int *ld);

/* tblock.c */
ct_status ct__tm_forward_backward(ct__tmodel *t, const ct__tm_batch *b, float scale, int backward, float *logits,
                                  double *loss_sum);

#endif
