/* src/train/tmodel.c — setting a loaded model up for training: the table of
 * trainable parameters (Hugging Face names for full fine-tuning, PEFT names
 * for LoRA) in one f32 buffer, LoRA's initialisation, the activation memory
 * plan, and conversions between our layouts and the files'.
 *
 * Full fine-tuning copies every weight to f32 (dequantizing stored types).
 * LoRA leaves the base exactly as loaded (memory-mapped, stored dtype) and
 * adds A (r, in) ~ U(-1/sqrt(in), 1/sqrt(in)) (PEFT's kaiming_uniform_ with
 * a = sqrt(5)) and B (out, r) = 0 for every targeted linear layer.
 * The forward/backward pass is in tblock.c.
 * Leaves out: LoRA on embeddings or the head, bias training with LoRA
 * (PEFT's bias="none" only), DoRA.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/rng.h"
#include "model/kernels.h"
#include "tensor/gemm.h"
#include "tensor/nf4.h"
#include "tensor/quant.h"
#include "train/tmodel_internal.h"

enum { HEAD_ROWS = 128 };

/* ---- names --------------------------------------------------------------------- */

static const char *const k_llama_lin[LIN_COUNT] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                                   "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                                   "mlp.down_proj"};
static const char *const k_gpt2_lin[LIN_COUNT] = {"attn.c_attn", NULL, NULL, "attn.c_proj", NULL, "mlp.c_fc",
                                                  "mlp.c_proj"};

const char *ct__tm_target_name(ct_arch arch, unsigned bit) {
    static const char *const llama[LIN_COUNT] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                 "gate_proj", "up_proj", "down_proj"};
    static const char *const gpt2[LIN_COUNT] = {"c_attn", NULL, NULL, "c_proj", NULL, "c_fc", "c_proj"};
    for (int i = 0; i < LIN_COUNT; i++)
        if (bit == (1u << i)) return arch == CT_ARCH_GPT2 ? gpt2[i] : llama[i];
    return NULL;
}

static const char *lin_name(ct_arch arch, int i) { return arch == CT_ARCH_GPT2 ? k_gpt2_lin[i] : k_llama_lin[i]; }
static const char *block_prefix(ct_arch arch) { return arch == CT_ARCH_GPT2 ? "transformer.h" : "model.layers"; }

/* ---- the parameter table ----------------------------------------------------------- */

typedef struct {
    ct__tmodel *t;
    int count_only;
    size_t n;     /* floats so far */
    int np;       /* entries so far */
    int cap;
} ptab_b;

/* Add a parameter; returns its offset (floats), or (size_t)-1 on OOM. */
static size_t add_param(ptab_b *b, const char *name, int ndim, int64_t d0, int64_t d1, int transposed,
                        int rope_rows) {
    size_t numel = (size_t)d0 * (size_t)(ndim == 2 ? d1 : 1);
    size_t off = b->n;
    if (!b->count_only) {
        ct__tparam *p = &b->t->ptab[b->np];
        memset(p, 0, sizeof *p);
        snprintf(p->name, sizeof p->name, "%s", name);
        p->ndim = ndim;
        p->shape[0] = transposed ? d1 : d0;
        p->shape[1] = ndim == 2 ? (transposed ? d0 : d1) : 0;
        p->transposed = transposed;
        p->rope_rows = rope_rows;
        p->off = off;
        p->n = numel;
        p->decay = ndim >= 2;
    }
    b->np++;
    b->n += (numel + 15) & ~(size_t)15; /* 64-byte aligned parameters */
    return off;
}

#define PARAM(ptr, gptr, ...)                                                                   \
    do {                                                                                        \
        size_t off_ = add_param(b, __VA_ARGS__);                                                \
        if (!b->count_only) { (ptr) = t->params + off_; (gptr) = t->grads + off_; }             \
    } while (0)

/* Walk the model's trainable parameters in file order (count_only: sizes only). */
static void walk_params(ptab_b *b) {
    ct__tmodel *t = b->t;
    const ct_config *g = t->cfg;
    const int C = g->dim, V = g->vocab_size, gpt2 = g->arch == CT_ARCH_GPT2;
    const int norm_rope = g->arch == CT_ARCH_LLAMA && g->rope_style == CT_ROPE_NORM;
    char nm[160];
    const char *bp = block_prefix(g->arch);
    if (t->o.method == CT_TM_FULL) {
        float *dummy = NULL;
        PARAM(t->wte, t->gwte, gpt2 ? "transformer.wte.weight" : "model.embed_tokens.weight", 2, V, C, 0, 0);
        if (gpt2) PARAM(t->wpe, t->gwpe, "transformer.wpe.weight", 2, g->max_seq_len, C, 0, 0);
        for (int l = 0; l < g->n_layers; l++) {
            ct__tblock *k = &t->blk[l];
            float *w = NULL, *gw = NULL;
            snprintf(nm, sizeof nm, gpt2 ? "%s.%d.ln_1.weight" : "%s.%d.input_layernorm.weight", bp, l);
            PARAM(w, gw, nm, 1, C, 0, 0, 0);
            if (!b->count_only) { k->n1w.w = w; k->n1w.g = gw; }
            if (gpt2) {
                snprintf(nm, sizeof nm, "%s.%d.ln_1.bias", bp, l);
                PARAM(w, gw, nm, 1, C, 0, 0, 0);
                if (!b->count_only) { k->n1b.w = w; k->n1b.g = gw; }
            }
            for (int i = 0; i < LIN_COUNT; i++) {
                ct__tlin *L = &k->lin[i];
                if (!lin_name(g->arch, i)) continue;
                if (gpt2 && i == LIN_UP) { /* ln_2 sits before the MLP in file order */
                    snprintf(nm, sizeof nm, "%s.%d.ln_2.weight", bp, l);
                    PARAM(w, gw, nm, 1, C, 0, 0, 0);
                    if (!b->count_only) { k->n2w.w = w; k->n2w.g = gw; }
                    snprintf(nm, sizeof nm, "%s.%d.ln_2.bias", bp, l);
                    PARAM(w, gw, nm, 1, C, 0, 0, 0);
                    if (!b->count_only) { k->n2b.w = w; k->n2b.g = gw; }
                }
                if (!gpt2 && i == LIN_GATE) {
                    snprintf(nm, sizeof nm, "%s.%d.post_attention_layernorm.weight", bp, l);
                    PARAM(w, gw, nm, 1, C, 0, 0, 0);
                    if (!b->count_only) { k->n2w.w = w; k->n2w.g = gw; }
                }
                int rr = norm_rope && (i == LIN_Q || i == LIN_K);
                snprintf(nm, sizeof nm, "%s.%d.%s.weight", bp, l, lin_name(g->arch, i));
                PARAM(L->w, L->gw, nm, 2, L->out, L->in, gpt2, rr);
                int has_b = gpt2 || (g->qkv_bias && i <= LIN_V);
                if (has_b) {
                    snprintf(nm, sizeof nm, "%s.%d.%s.bias", bp, l, lin_name(g->arch, i));
                    PARAM(w, gw, nm, 1, L->out, 0, 0, rr);
                    if (!b->count_only) { L->b = w; L->gb = gw; }
                }
            }
        }
        PARAM(dummy, t->nfw.g, gpt2 ? "transformer.ln_f.weight" : "model.norm.weight", 1, C, 0, 0, 0);
        t->nfw.w = dummy;
        if (gpt2) {
            PARAM(dummy, t->nfb.g, "transformer.ln_f.bias", 1, C, 0, 0, 0);
            t->nfb.w = dummy;
        }
        if (t->o.cls_labels > 0) { /* *ForSequenceClassification: score instead of the LM head */
            PARAM(t->score, t->gscore, "score.weight", 2, t->o.cls_labels, C, 0, 0);
        } else if (g->tie_embeddings) {
            t->whead = t->wte;
            t->gwhead = t->gwte;
        } else {
            PARAM(t->whead, t->gwhead, "lm_head.weight", 2, V, C, 0, 0);
        }
        return;
    }
    if (t->o.method == CT_TM_PROMPT) { /* PEFT's PROMPT_TUNING file name */
        PARAM(t->prompt, t->gprompt, "prompt_embeddings", 2, t->o.n_virtual, C, 0, 0);
        return;
    }
    if (t->o.method == CT_TM_PREFIX) { /* PEFT's PREFIX_TUNING tensor, or its PrefixEncoder's MLP */
        const int K = t->o.n_virtual, T = 2 * g->n_layers * t->kvd, E = t->o.prefix_hidden;
        if (E <= 0) {
            PARAM(t->prefix, t->gprefix, "prompt_embeddings", 2, K, T, 0, 0);
            return;
        }
        PARAM(t->pfx_emb, t->gpfx_emb, "prompt_encoder.embedding.weight", 2, K, t->kvd, 0, 0);
        PARAM(t->pfx_w1, t->gpfx_w1, "prompt_encoder.transform.0.weight", 2, E, t->kvd, 0, 0);
        PARAM(t->pfx_b1, t->gpfx_b1, "prompt_encoder.transform.0.bias", 1, E, 0, 0, 0);
        PARAM(t->pfx_w2, t->gpfx_w2, "prompt_encoder.transform.2.weight", 2, T, E, 0, 0);
        PARAM(t->pfx_b2, t->gpfx_b2, "prompt_encoder.transform.2.bias", 1, T, 0, 0, 0);
        return;
    }
    /* LoRA: A and B of each targeted layer, PEFT's names (then the classifier head) */
    if (t->o.cls_labels > 0 && t->o.method != CT_TM_LORA)
        PARAM(t->score, t->gscore, "score.weight", 2, t->o.cls_labels, C, 0, 0);
    for (int l = 0; l < g->n_layers; l++)
        for (int i = 0; i < LIN_COUNT; i++) {
            ct__tlin *L = &t->blk[l].lin[i];
            if (!L->r) continue;
            int rr = norm_rope && (i == LIN_Q || i == LIN_K);
            snprintf(nm, sizeof nm, "base_model.model.%s.%d.%s.lora_A.weight", bp, l, lin_name(g->arch, i));
            PARAM(L->A, L->gA, nm, 2, L->r, L->in, 0, 0);
            snprintf(nm, sizeof nm, "base_model.model.%s.%d.%s.lora_B.weight", bp, l, lin_name(g->arch, i));
            PARAM(L->B, L->gB, nm, 2, L->out, L->r, 0, rr);
        }
    if (t->o.cls_labels > 0 && t->o.method == CT_TM_LORA) /* PEFT SEQ_CLS: modules_to_save "score" */
        PARAM(t->score, t->gscore, "base_model.model.score.weight", 2, t->o.cls_labels, C, 0, 0);
}
#undef PARAM

/* ---- conversions ------------------------------------------------------------------- */

/* Row of the file (HF, NEOX layout) held by our row r of a NORM-rope q/k matrix. */
static int64_t rope_file_row(int64_t r, int HS) {
    int64_t h = r / HS, j = r % HS;
    return h * HS + (j % 2 ? HS / 2 + j / 2 : j / 2);
}

void ct__tm_param_to_file(const ct__tmodel *t, const ct__tparam *p, const float *ours, float *file) {
    int64_t rows = p->transposed ? p->shape[1] : p->shape[0];
    int64_t cols = p->ndim == 2 ? (p->transposed ? p->shape[0] : p->shape[1]) : 1;
    for (int64_t r = 0; r < rows; r++) {
        int64_t fr = p->rope_rows ? rope_file_row(r, t->cfg->head_dim) : r;
        for (int64_t c = 0; c < cols; c++) {
            float v = ours[r * cols + c];
            if (p->transposed) file[c * rows + fr] = v;
            else file[fr * cols + c] = v;
        }
    }
}

ct__st_out *ct__tm_file_tensors(const ct__tmodel *t, float **buf) {
    ct__st_out *outs = ct__calloc((size_t)(t->n_ptab ? t->n_ptab : 1), sizeof *outs);
    *buf = ct__alloc_big((t->n_params ? t->n_params : 1) * sizeof(float));
    if (!outs || !*buf) {
        free(outs);
        if (*buf) ct__free_big(*buf, (t->n_params ? t->n_params : 1) * sizeof(float));
        *buf = NULL;
        return NULL;
    }
    for (int i = 0; i < t->n_ptab; i++) {
        const ct__tparam *p = &t->ptab[i];
        ct__tm_param_to_file(t, p, t->params + p->off, *buf + p->off);
        outs[i] = (ct__st_out){.name = p->name, .dtype = CT_DT_F32, .ndim = p->ndim,
                               .shape = {p->shape[0], p->shape[1]}, .src = *buf + p->off};
    }
    return outs;
}

void ct__tm_file_tensors_free(const ct__tmodel *t, ct__st_out *outs, float *buf) {
    free(outs);
    if (buf) ct__free_big(buf, (t->n_params ? t->n_params : 1) * sizeof(float));
}

void ct__tm_param_from_file(const ct__tmodel *t, const ct__tparam *p, const float *file, float *ours) {
    int64_t rows = p->transposed ? p->shape[1] : p->shape[0];
    int64_t cols = p->ndim == 2 ? (p->transposed ? p->shape[0] : p->shape[1]) : 1;
    for (int64_t r = 0; r < rows; r++) {
        int64_t fr = p->rope_rows ? rope_file_row(r, t->cfg->head_dim) : r;
        for (int64_t c = 0; c < cols; c++)
            ours[r * cols + c] = p->transposed ? file[c * rows + fr] : file[fr * cols + c];
    }
}

/* ---- set-up ------------------------------------------------------------------------- */

static void copy_mat(float *dst, const ct_mat *W) {
    for (int r = 0; r < W->rows; r++) ct__mat_row_f32(W, r, dst + (size_t)r * W->cols);
}

static void copy_vec(float *dst, const float *src, int n) {
    if (src) memcpy(dst, src, (size_t)n * sizeof *dst);
}

/* The fused (3C, C) c_attn view of a GPT-2 block's q/k/v rows. */
static ct_mat gpt2_qkv(const ct__layer *L) {
    ct_mat m = L->wq;
    m.rows = L->wq.rows + L->wk.rows + L->wv.rows;
    return m;
}

/* Fill the block's layer shapes, frozen bases and frozen vectors. */
static void setup_blocks(ct__tmodel *t) {
    const ct_config *g = t->cfg;
    const int C = g->dim, H = g->hidden_dim, gpt2 = g->arch == CT_ARCH_GPT2;
    for (int l = 0; l < g->n_layers; l++) {
        const ct__layer *S = &t->m->layers[l];
        ct__tblock *k = &t->blk[l];
        k->n1w.w = S->attn_norm;
        k->n1b.w = S->attn_norm_b;
        k->n2w.w = S->ffn_norm;
        k->n2b.w = S->ffn_norm_b;
        const ct_mat *mats[LIN_COUNT] = {&S->wq, &S->wk, &S->wv, &S->wo, &S->w_gate, &S->w_up, &S->w_down};
        const float *bias[LIN_COUNT] = {S->bq, S->bk, S->bv, S->bo, NULL, S->b_up, S->b_down};
        for (int i = 0; i < LIN_COUNT; i++) {
            ct__tlin *L = &k->lin[i];
            if (!lin_name(g->arch, i)) continue;
            L->base = (gpt2 && i == LIN_Q) ? gpt2_qkv(S) : *mats[i];
            L->in = L->base.cols;
            L->out = L->base.rows;
            L->b = bias[i]; /* GPT-2's fused bias: bq, bk, bv are consecutive */
            if (t->o.method == CT_TM_LORA && (t->o.lora_targets & (1u << i))) L->r = t->o.lora_r;
        }
        (void)C;
        (void)H;
    }
}

/* x[0..n) ~ U(-bound, bound) */
static void uniform_fill(ct__rng *rng, float *x, size_t n, double bound) {
    for (size_t j = 0; j < n; j++) {
        double u = (double)(ct__rng_next(rng) >> 11) * 0x1.0p-53; /* [0, 1) */
        x[j] = (float)((2.0 * u - 1.0) * bound);
    }
}

/* After walk_params: copy the base weights into the trainable buffers (full),
 * or initialise A and B (LoRA). */
static void init_values(ct__tmodel *t) {
    const ct_config *g = t->cfg;
    const ct_model *m = t->m;
    if (t->o.method == CT_TM_FULL) {
        copy_mat(t->wte, &m->tok_emb);
        if (t->wpe) copy_mat(t->wpe, &m->pos_emb);
        for (int l = 0; l < g->n_layers; l++) {
            const ct__layer *S = &m->layers[l];
            ct__tblock *k = &t->blk[l];
            copy_vec((float *)k->n1w.w, S->attn_norm, g->dim);
            if (k->n1b.g) copy_vec((float *)k->n1b.w, S->attn_norm_b, g->dim);
            copy_vec((float *)k->n2w.w, S->ffn_norm, g->dim);
            if (k->n2b.g) copy_vec((float *)k->n2b.w, S->ffn_norm_b, g->dim);
            const float *bias[LIN_COUNT] = {S->bq, S->bk, S->bv, S->bo, NULL, S->b_up, S->b_down};
            for (int i = 0; i < LIN_COUNT; i++) {
                ct__tlin *L = &k->lin[i];
                if (!L->out) continue;
                copy_mat(L->w, &L->base);
                if (L->gb) copy_vec((float *)L->b, bias[i], L->out);
                memset(&L->base, 0, sizeof L->base); /* trainable now: the copy is the weight */
            }
        }
        copy_vec((float *)t->nfw.w, m->out_norm, g->dim);
        if (t->nfb.g) copy_vec((float *)t->nfb.w, m->out_norm_b, g->dim);
        if (t->whead && !g->tie_embeddings) copy_mat(t->whead, &m->output);
        if (t->score) { /* the checkpoint's own head, or N(0, 0.02) (transformers' initializer_range) */
            if (m->score.rows == t->o.cls_labels) copy_mat(t->score, &m->score);
            else {
                ct__rng rng;
                ct__rng_seed(&rng, t->o.seed);
                for (size_t j = 0; j < (size_t)t->o.cls_labels * g->dim; j++)
                    t->score[j] = (float)(0.02 * ct__rng_normal(&rng));
            }
        }
        return;
    }
    t->nfw.w = m->out_norm;
    t->nfb.w = m->out_norm_b;
    ct__rng rng;
    ct__rng_seed(&rng, t->o.seed);
    if (t->score) /* N(0, 0.02): transformers' initializer_range for score */
        for (size_t j = 0; j < (size_t)t->o.cls_labels * g->dim; j++) t->score[j] = (float)(0.02 * ct__rng_normal(&rng));
    if (t->prompt) /* N(0, 1), torch.nn.Embedding's init (PEFT's RANDOM); the trainer may overwrite it */
        for (size_t j = 0; j < (size_t)t->o.n_virtual * g->dim; j++) t->prompt[j] = (float)ct__rng_normal(&rng);
    if (t->o.method == CT_TM_PREFIX) { /* torch's defaults: Embedding N(0, 1), Linear U(+-1/sqrt(in)) */
        const size_t K = (size_t)t->o.n_virtual, T = 2 * (size_t)g->n_layers * t->kvd, E = (size_t)t->o.prefix_hidden;
        float *emb = E ? t->pfx_emb : t->prefix;
        for (size_t j = 0; j < K * (E ? (size_t)t->kvd : T); j++) emb[j] = (float)ct__rng_normal(&rng);
        if (E) {
            uniform_fill(&rng, t->pfx_w1, E * t->kvd, 1.0 / sqrt((double)t->kvd));
            uniform_fill(&rng, t->pfx_b1, E, 1.0 / sqrt((double)t->kvd));
            uniform_fill(&rng, t->pfx_w2, T * E, 1.0 / sqrt((double)E));
            uniform_fill(&rng, t->pfx_b2, T, 1.0 / sqrt((double)E));
        }
    }
    for (int l = 0; l < g->n_layers; l++)
        for (int i = 0; i < LIN_COUNT; i++) {
            ct__tlin *L = &t->blk[l].lin[i];
            if (!L->r) continue;
            uniform_fill(&rng, L->A, (size_t)L->r * L->in, 1.0f / sqrtf((float)L->in));
            memset(L->B, 0, (size_t)L->out * L->r * sizeof(float));
        }
}

/* ---- activation memory ---------------------------------------------------------- */

enum { MAXBUF = 64 + 20 * 256 }; /* buffers: ~16 per block, up to 256 blocks */
typedef struct {
    float **ptr[MAXBUF];
    size_t n[MAXBUF];
    int k;
} plan;

static void want(plan *p, float **ptr, size_t n) {
    if (p->k >= MAXBUF) return; /* caught by alloc_acts */
    p->ptr[p->k] = ptr;
    p->n[p->k] = n;
    p->k++;
}

static size_t attn_probs_bound(const ct__tmodel *t) {
    /* sum of len^2 over sequences <= max_seq * N (prefix tuning: over the extended rows) */
    if (t->o.method == CT_TM_PREFIX)
        return (size_t)t->cfg->n_heads * (size_t)(t->o.max_seq + t->o.n_virtual) * (size_t)t->e_rows;
    return (size_t)t->cfg->n_heads * (size_t)t->o.max_seq * (size_t)t->o.max_rows;
}

/* Positions a sequence can reach: prefix tuning's tokens start at K. */
static int max_pos(const ct__tmodel *t) {
    return t->o.max_seq + (t->o.method == CT_TM_PREFIX ? t->o.n_virtual : 0);
}

/* Prefix tuning's extended rows (t->o.max_seqs resolved). */
static void prefix_dims(ct__tmodel *t) {
    if (t->o.method != CT_TM_PREFIX) return;
    if (t->o.max_seqs <= 0 || t->o.max_seqs > t->o.max_rows) t->o.max_seqs = t->o.max_rows;
    t->e_rows = t->o.max_rows + t->o.max_seqs * t->o.n_virtual;
}

static void plan_acts(ct__tmodel *t, ct__tacts *A, plan *p) {
    const ct_config *g = t->cfg;
    size_t N = (size_t)t->o.max_rows, C = (size_t)g->dim, H = (size_t)g->hidden_dim;
    int gpt2 = g->arch == CT_ARCH_GPT2;
    want(p, &A->h1, N * C);
    if (gpt2) want(p, &A->mu1, N);
    want(p, &A->rs1, N);
    want(p, &A->q, N * (size_t)t->qkv_out);
    if (!gpt2) {
        want(p, &A->k, N * (size_t)t->kvd);
        want(p, &A->v, N * (size_t)t->kvd);
    }
    want(p, &A->probs, attn_probs_bound(t));
    want(p, &A->att, N * (size_t)t->qd);
    want(p, &A->mid, N * C);
    want(p, &A->h2, N * C);
    if (gpt2) want(p, &A->mu2, N);
    want(p, &A->rs2, N);
    want(p, &A->g, N * H);
    if (!gpt2) want(p, &A->u, N * H);
    want(p, &A->a, N * H);
}

/* Every activation and scratch buffer of t into p (t->acts allocated here);
 * *total: their floats, each padded to 16. */
static ct_status act_plan(ct__tmodel *t, plan *p, size_t *total_out, float **xa_all) {
    const ct_config *g = t->cfg;
    size_t N = (size_t)t->o.max_rows, C = (size_t)g->dim, H = (size_t)g->hidden_dim, V = (size_t)g->vocab_size;
    int L = g->n_layers, n_acts = t->o.checkpointing ? 1 : L;
    if (L > 256) return ct__err(CT_ERR_UNSUPPORTED, "training: %d layers (at most 256 supported)", L);
    t->acts = ct__calloc((size_t)L, sizeof *t->acts);
    if (!t->acts) return ct__err(CT_ERR_NOMEM, "training: out of memory");
    want(p, &t->res, (size_t)(L + 1) * N * C);
    for (int l = 0; l < n_acts; l++) plan_acts(t, &t->acts[l], p);
    want(p, &t->hf, N * C);
    want(p, &t->muf, N);
    want(p, &t->rsf, N);
    want(p, &t->dres, N * C);
    want(p, &t->dh, N * C);
    want(p, &t->dq, N * (size_t)t->qkv_out);
    if (g->arch != CT_ARCH_GPT2) {
        want(p, &t->dk, N * (size_t)t->kvd);
        want(p, &t->dv, N * (size_t)t->kvd);
    }
    want(p, &t->datt, N * (size_t)t->qd);
    want(p, &t->dA, N * H);
    want(p, &t->dG, N * H);
    want(p, &t->dU, N * H);
    size_t max_in = H > C ? H : C;
    if ((size_t)t->qd > max_in) max_in = (size_t)t->qd;
    if (t->o.method == CT_TM_LORA) {
        want(p, &t->t_r, N * (size_t)t->o.lora_r);
        want(p, &t->t_in, N * max_in);
    }
    t->head_rows = (int)(N < HEAD_ROWS ? N : HEAD_ROWS);
    want(p, &t->logits, (size_t)t->head_rows * V);
    want(p, &t->hg, (size_t)t->head_rows * C);
    want(p, &t->dhg, (size_t)t->head_rows * C);
    want(p, (float **)&t->tg, (size_t)t->head_rows);
    want(p, (float **)&t->hrows, N);
    if (t->wdeq_n) want(p, &t->wdeq, t->wdeq_n);
    want(p, &t->rope_cos, g->arch == CT_ARCH_LLAMA ? (size_t)max_pos(t) * (size_t)(g->head_dim / 2) : 0);
    want(p, &t->rope_sin, g->arch == CT_ARCH_LLAMA ? (size_t)max_pos(t) * (size_t)(g->head_dim / 2) : 0);
    want(p, (float **)&t->pos, N);
    if (t->o.method == CT_TM_PREFIX) {
        const size_t K = (size_t)t->o.n_virtual, T = 2 * (size_t)L * t->kvd, E = (size_t)t->o.prefix_hidden,
                     Ne = (size_t)t->e_rows;
        if (E) {
            want(p, &t->prefix, K * T);
            want(p, &t->gprefix, K * T);
            want(p, &t->pfx_h, K * E);
            want(p, &t->pfx_dh, K * E);
        }
        want(p, (float **)&t->pfx_kmap, (size_t)t->kvd);
        want(p, (float **)&t->eseq, (size_t)t->o.max_seqs + 1);
        want(p, &t->eq, Ne * (size_t)t->qd);
        want(p, &t->ek, Ne * (size_t)t->kvd);
        want(p, &t->ev, Ne * (size_t)t->kvd);
        want(p, &t->eo, Ne * (size_t)t->qd);
        want(p, &t->edq, Ne * (size_t)t->qd);
        want(p, &t->edk, Ne * (size_t)t->kvd);
        want(p, &t->edv, Ne * (size_t)t->kvd);
        want(p, &t->edo, Ne * (size_t)t->qd);
    }
    /* LoRA x A^T buffers, per block (or shared with checkpointing) */
    size_t nxa = 0;
    for (int l = 0; l < n_acts; l++)
        for (int i = 0; i < LIN_COUNT; i++)
            if (t->blk[l].lin[i].r) nxa++;
    if (nxa) want(p, xa_all, nxa * N * (size_t)t->o.lora_r);
    if (p->k >= MAXBUF) { return ct__err(CT_ERR_UNSUPPORTED, "training: too many activation buffers"); }
    size_t total = 0;
    for (int i = 0; i < p->k; i++) {
        size_t padded = (p->n[i] + 15) & ~(size_t)15, nt;
        if (ct__add_ovf(total, padded, &nt)) { return ct__err(CT_ERR_RANGE, "training: activation size overflows"); }
        total = nt;
    }
    if (total > SIZE_MAX / sizeof(float)) { return ct__err(CT_ERR_RANGE, "training: activation size overflows"); }
    *total_out = total;
    return CT_OK;
}

static ct_status alloc_acts(ct__tmodel *t) {
    const ct_config *g = t->cfg;
    size_t N = (size_t)t->o.max_rows;
    int L = g->n_layers, n_acts = t->o.checkpointing ? 1 : L;
    plan *p = ct__calloc(1, sizeof *p);
    if (!p) return ct__err(CT_ERR_NOMEM, "training: out of memory");
    size_t total = 0;
    float *xa_all = NULL;
    ct_status st = act_plan(t, p, &total, &xa_all);
    if (st) { free(p); return st; }
    t->mem_bytes = total * sizeof(float);
    t->mem = ct__alloc_big(t->mem_bytes);
    if (!t->mem) {
        free(p);
        return ct__err(CT_ERR_NOMEM, "training: cannot allocate %.1f MiB of activations (%d rows per micro-batch); "
                       "use a smaller --micro-batch or --max-len, or gradient checkpointing",
                       t->mem_bytes / 1048576.0, t->o.max_rows);
    }
    float *q = t->mem;
    for (int i = 0; i < p->k; i++) {
        *p->ptr[i] = p->n[i] ? q : NULL;
        q += (p->n[i] + 15) & ~(size_t)15;
    }
    free(p);
    size_t xi = 0;
    for (int l = 0; l < n_acts; l++)
        for (int i = 0; i < LIN_COUNT; i++)
            if (t->blk[l].lin[i].r) t->acts[l].xa[i] = xa_all + (xi++) * N * (size_t)t->o.lora_r;
    for (int l = n_acts; l < L; l++) t->acts[l] = t->acts[0];
    if (g->arch == CT_ARCH_LLAMA) ct__rope_tables(t->rope_cos, t->rope_sin, max_pos(t), g->head_dim, g->rope_theta);
    if (t->pfx_kmap) { /* our key column c holds the file's column kmap[c] (NORM rope: rows permuted) */
        const int HS = g->head_dim, norm = g->arch == CT_ARCH_LLAMA && g->rope_style == CT_ROPE_NORM;
        for (int c = 0; c < t->kvd; c++) t->pfx_kmap[c] = norm ? (int32_t)rope_file_row(c, HS) : c;
    }
    return CT_OK;
}

/* Largest frozen matrix that is not F32 (dequantized for its input gradient). */
static size_t frozen_deq_floats(const ct__tmodel *t) {
    size_t mx = 0;
    const ct_config *g = t->cfg;
    if (t->o.method == CT_TM_FULL) return 0;
    for (int l = 0; l < g->n_layers; l++)
        for (int i = 0; i < LIN_COUNT; i++) {
            const ct__tlin *L = &t->blk[l].lin[i];
            if (L->out && !L->fused && L->base.dtype != CT_DT_F32) {
                size_t n = (size_t)L->out * L->in;
                if (n > mx) mx = n;
            }
        }
    if (t->m->output.rows && t->m->output.dtype != CT_DT_F32 && !t->head_fused) {
        size_t n = (size_t)g->vocab_size * g->dim;
        if (n > mx) mx = n;
    }
    return mx;
}

/* ---- bf16 LoRA: frozen matrices rounded and packed once ------------------------- */

static void drop_source(ct__tmodel *t, const ct_mat *W);

static void *pack_one(ct__tmodel *t, int tb, int K, int N, const float *B, int ldb) {
    size_t bytes = ct__gemm_bf16_packed_bytes(K, N);
    void *dst = ct__alloc_big(bytes);
    if (!dst) return NULL;
    ct__gemm_bf16_pack_b(tb, K, N, B, ldb, dst, t->pool);
    t->packed[t->n_packed] = dst;
    t->packed_bytes[t->n_packed++] = bytes;
    return dst;
}

const float *ct__mat_f32(const ct_mat *W, float *tmp, int *ld) {
    if (W->dtype == CT_DT_F32) { *ld = (int)(W->row_bytes / sizeof(float)); return W->data; }
    for (int r = 0; r < W->rows; r++) ct__mat_row_f32(W, r, tmp + (size_t)r * W->cols);
    *ld = W->cols;
    return tmp;
}

static ct_status prepack_frozen(ct__tmodel *t) {
    const ct_config *g = t->cfg;
    int cap = 2 * LIN_COUNT * g->n_layers + 2;
    t->packed = ct__calloc((size_t)cap, sizeof *t->packed);
    t->packed_bytes = ct__calloc((size_t)cap, sizeof *t->packed_bytes);
    size_t mx = (size_t)g->vocab_size * g->dim;
    for (int l = 0; l < g->n_layers; l++)
        for (int i = 0; i < LIN_COUNT; i++) {
            size_t n = (size_t)t->blk[l].lin[i].out * t->blk[l].lin[i].in;
            if (n > mx) mx = n;
        }
    float *tmp = ct__alloc_big(mx * sizeof(float));
    ct_status s = (!t->packed || !t->packed_bytes || !tmp) ? CT_ERR_NOMEM : CT_OK;
    for (int l = 0; l < g->n_layers && !s; l++)
        for (int i = 0; i < LIN_COUNT && !s; i++) {
            ct__tlin *L = &t->blk[l].lin[i];
            if (!L->out || L->w || L->fused) continue;
            int ld;
            const float *W = ct__mat_f32(&L->base, tmp, &ld);
            L->pk_fwd = pack_one(t, 1, L->in, L->out, W, ld);
            L->pk_bwd = pack_one(t, 0, L->out, L->in, W, ld);
            if (!L->pk_fwd || !L->pk_bwd) s = CT_ERR_NOMEM;
            else drop_source(t, &L->base); /* the packed copies are what the products read */
        }
    if (!s && !t->whead && !t->head_fused && t->m->output.rows) {
        int ld;
        const float *W = ct__mat_f32(&t->m->output, tmp, &ld);
        t->pk_head_fwd = pack_one(t, 1, g->dim, g->vocab_size, W, ld);
        t->pk_head_bwd = pack_one(t, 0, g->vocab_size, g->dim, W, ld);
        if (!t->pk_head_fwd || !t->pk_head_bwd) s = CT_ERR_NOMEM;
        else drop_source(t, &t->m->output); /* a tied embedding faults back in only the rows it reads */
    }
    if (tmp) ct__free_big(tmp, mx * sizeof(float));
    return s ? ct__err(s, "training: out of memory packing the frozen weights in bf16") : CT_OK;
}

/* ---- QLoRA: the frozen linear layers converted (NF4, Q8_0, BF16) ---------------- */

static void *conv_alloc(ct__tmodel *t, size_t bytes) {
    void *p = ct__malloc(bytes ? bytes : 1);
    if (p) t->conv_mem[t->n_conv_mem++] = p;
    return p;
}

/* Give back the mapped pages of a matrix that was converted (no-op for owned memory). */
static void drop_source(ct__tmodel *t, const ct_mat *W) {
    size_t n = W->dtype == CT_DT_NF4 ? 0 : (size_t)W->rows * W->row_bytes;
    for (size_t i = 0; i < t->m->ts.nfiles && n; i++)
        if (ct__mfile_drop_range(&t->m->ts.files[i], W->data, n)) return;
}

/* The conversions split rows (decoding, Q8_0/BF16 encoding) or 64-blocks (NF4
 * codes) across the pool's threads: every row and block is the same code
 * whatever the split, so the result does not depend on the thread count. */
typedef struct {
    const ct_mat *src;
    ct_dtype dt;       /* target of the row pass: F32 (decode into f32), Q8_0, BF16 */
    uint8_t *dst;      /* (rows, rb) */
    size_t rb;
    float *f32;        /* NF4: the decoded matrix (rows * cols) */
    uint8_t *packed;   /* NF4 codes */
    float *absmax;     /* NF4 block scales */
    int64_t n, nb;
    float *rowtmp;     /* (nth, cols) */
} conv_job;

static void conv_rows_task(void *ctx, int ith, int nth) {
    const conv_job *j = ctx;
    const int rows = j->src->rows, cols = j->src->cols;
    const int r0 = (int)((int64_t)rows * ith / nth), r1 = (int)((int64_t)rows * (ith + 1) / nth);
    float *tmp = j->rowtmp + (size_t)ith * cols;
    for (int r = r0; r < r1; r++) {
        if (j->f32) { ct__mat_row_f32(j->src, r, j->f32 + (size_t)r * cols); continue; }
        ct__mat_row_f32(j->src, r, tmp);
        uint8_t *row = j->dst + (size_t)r * j->rb;
        if (j->dt == CT_DT_Q8_0) ct__quantize_row(j->dt, tmp, row, cols);
        else if (j->dt == CT_DT_F32) memcpy(row, tmp, (size_t)cols * sizeof(float));
        else
            for (int c = 0; c < cols; c++) {
                uint16_t h = ct__f32_to_bf16(tmp[c]);
                memcpy(row + 2 * (size_t)c, &h, 2);
            }
    }
}

static void conv_nf4_task(void *ctx, int ith, int nth) {
    const conv_job *j = ctx;
    const int64_t b0 = j->nb * ith / nth, b1 = j->nb * (ith + 1) / nth;
    if (b0 >= b1) return;
    const int64_t e0 = b0 * CT_NF4_BLOCK, e1 = b1 * CT_NF4_BLOCK < j->n ? b1 * CT_NF4_BLOCK : j->n;
    ct__quantize_4bit(j->f32 + e0, e1 - e0, CT_NF4_BLOCK, CT_Q4_NF4, j->packed + e0 / 2, j->absmax + b0);
}

/* W as NF4 with double quantization (blocks of 64, scales in blocks of 256),
 * as bitsandbytes quantizes a Linear on load; tmp (rows*cols) f32 scratch,
 * absmax (2 * (nb + 1)) scratch. */
static ct_status to_nf4(ct__tmodel *t, ct__tlin *L, ct_nf4_mat *W, float *tmp, float *absmax) {
    int64_t n = (int64_t)L->out * L->in, nb = ct__q4_nblocks(n, CT_NF4_BLOCK);
    uint8_t *packed = conv_alloc(t, (size_t)(n + 1) / 2), *q = conv_alloc(t, (size_t)nb);
    float *nested = conv_alloc(t, (size_t)ct__q4_nblocks(nb, CT_NF4_NESTED_BLOCK) * sizeof(float));
    if (!packed || !q || !nested) return CT_ERR_NOMEM;
    conv_job j = {.src = &L->base, .f32 = tmp, .packed = packed, .absmax = absmax, .n = n, .nb = nb};
    ct__pool_run(t->pool, conv_rows_task, &j);
    ct__pool_run(t->pool, conv_nf4_task, &j);
    ct__q4_double_quant(absmax, nb, 1, absmax + nb, q, nested, &W->offset);
    W->rows = L->out;
    W->cols = L->in;
    W->packed = packed;
    W->qabsmax = q;
    W->nested_absmax = nested;
    W->nested_map = t->nf4_nested_map;
    W->type = CT_Q4_NF4;
    L->base = ct__nf4_as_mat(W);
    return CT_OK;
}

/* W as Q8_0, BF16 or F32 rows; tmp (nth * cols) f32 scratch. */
static ct_status to_rows(ct__tmodel *t, ct__tlin *L, ct_dtype dt, float *tmp) {
    const size_t rb = ct__dtype_nbytes(dt, L->in);
    uint8_t *d = conv_alloc(t, rb * (size_t)L->out);
    if (!d) return CT_ERR_NOMEM;
    conv_job j = {.src = &L->base, .dt = dt, .dst = d, .rb = rb, .rowtmp = tmp};
    ct__pool_run(t->pool, conv_rows_task, &j);
    L->base = (ct_mat){.dtype = dt, .rows = L->out, .cols = L->in, .data = d, .row_bytes = rb};
    return CT_OK;
}

static size_t mat_bytes(const ct_mat *W) {
    if (W->dtype != CT_DT_NF4) return (size_t)W->rows * W->row_bytes;
    const int64_t n = (int64_t)W->rows * W->cols, nb = ct__q4_nblocks(n, CT_NF4_BLOCK);
    return (size_t)(n + 1) / 2 + (W->q4->absmax ? 4 * (size_t)nb : (size_t)nb + 4 * (size_t)ct__q4_nblocks(nb, 256));
}

static int fusable(ct_dtype d) {
    return d == CT_DT_F32 || d == CT_DT_F16 || d == CT_DT_BF16 || d == CT_DT_Q8_0 || d == CT_DT_NF4;
}

/* Convert every frozen linear layer to o.base (kept in place when it is
 * already stored so) and mark it for the fused kernels; the frozen head is
 * read in place when the kernels can read its type. */
static ct_status convert_base(ct__tmodel *t) {
    const ct_config *g = t->cfg;
    static const ct_dtype dts[] = {CT_DT_F32, CT_DT_NF4, CT_DT_Q8_0, CT_DT_BF16, CT_DT_F32};
    static const char *const names[] = {"as stored", "nf4", "q8", "bf16", "f32"};
    const ct_dtype want = dts[t->o.base];
    const char *name = names[t->o.base];
    int nl = g->n_layers * LIN_COUNT;
    t->nf4_mats = ct__calloc((size_t)nl, sizeof *t->nf4_mats);
    t->conv_mem = ct__calloc((size_t)nl * 3 + 1, sizeof *t->conv_mem);
    size_t mx = 0;
    for (int l = 0; l < g->n_layers; l++)
        for (int i = 0; i < LIN_COUNT; i++) {
            size_t n = (size_t)t->blk[l].lin[i].out * t->blk[l].lin[i].in;
            if (n > mx) mx = n;
        }
    const size_t tmp_n = want == CT_DT_NF4 ? (mx ? mx : 1)
                                           : (size_t)(g->dim > g->hidden_dim ? g->dim : g->hidden_dim) *
                                                 (size_t)ct__pool_size(t->pool) * 4;
    float *tmp = ct__alloc_big(tmp_n * sizeof(float));
    float *absmax = want == CT_DT_NF4 ? ct__malloc((mx / CT_NF4_BLOCK + 2) * sizeof(float) * 2) : NULL;
    if (!t->nf4_mats || !t->conv_mem || !tmp || (want == CT_DT_NF4 && !absmax)) {
        if (tmp) ct__free_big(tmp, tmp_n * sizeof(float));
        free(absmax);
        return ct__err(CT_ERR_NOMEM, "--base-dtype %s: out of memory converting the base", name);
    }
    ct__dynamic_map_signed(t->nf4_nested_map);
    ct_status s = CT_OK;
    for (int l = 0; l < g->n_layers && !s; l++)
        for (int i = 0; i < LIN_COUNT && !s; i++) {
            ct__tlin *L = &t->blk[l].lin[i];
            if (!L->out || L->w) continue;
            const ct_mat src = L->base;
            /* Q8_0 blocks need in % 32 == 0: other matrices (stories260K's down_proj, in 172) stay BF16 */
            const ct_dtype dt = want == CT_DT_Q8_0 && L->in % 32 ? CT_DT_BF16 : want;
            if (src.dtype != dt) {
                if (dt == CT_DT_NF4) s = to_nf4(t, L, &t->nf4_mats[l * LIN_COUNT + i], tmp, absmax);
                else s = to_rows(t, L, dt, tmp);
                if (s == CT_ERR_NOMEM) s = ct__err(s, "--base-dtype %s: out of memory converting layer %d", name, l);
                if (s) break;
                drop_source(t, &src);
            }
            L->fused = 1;
            t->base_bytes += mat_bytes(&L->base);
        }
    ct__free_big(tmp, tmp_n * sizeof(float));
    free(absmax);
    t->head_fused = !s && !t->whead && fusable(t->m->output.dtype) &&
                    (t->m->output.dtype != CT_DT_Q8_0 || t->m->output.cols % 32 == 0);
    return s;
}

ct_status ct__tm_create(ct_model *m, const ct__tm_opts *o, ct__tmodel **out) {
    if (!out) return ct__err(CT_ERR_ARG, "ct__tm_create: out is NULL");
    *out = NULL;
    if (!m || !o) return ct__err(CT_ERR_ARG, "ct__tm_create: model or options NULL");
    const ct_config *g = &m->cfg;
    if (o->max_rows <= 0 || o->max_seq <= 0 || o->max_seq > o->max_rows)
        return ct__err(CT_ERR_ARG, "training: need 0 < max_seq (%d) <= max_rows (%d)", o->max_seq, o->max_rows);
    if (o->max_seq > g->max_seq_len && g->arch == CT_ARCH_GPT2)
        return ct__err(CT_ERR_RANGE, "training: sequences of %d tokens exceed GPT-2's %d positions; use --max-len %d",
                       o->max_seq, g->max_seq_len, g->max_seq_len);
    if (o->method == CT_TM_LORA) {
        if (o->lora_r <= 0) return ct__err(CT_ERR_ARG, "LoRA: rank r must be positive (got %d)", o->lora_r);
        if (!(o->lora_dropout >= 0 && o->lora_dropout < 1))
            return ct__err(CT_ERR_ARG, "LoRA: dropout must be in [0, 1) (got %g)", o->lora_dropout);
        unsigned valid = g->arch == CT_ARCH_GPT2 ? (CT_LT_Q | CT_LT_O | CT_LT_UP | CT_LT_DOWN) : CT_LT_ALL;
        if (!(o->lora_targets & valid) || (o->lora_targets & ~valid))
            return ct__err(CT_ERR_ARG, "LoRA: target modules do not fit a %s model", g->model_type);
    }
    if (o->method == CT_TM_PROMPT && (o->n_virtual <= 0 || o->n_virtual >= o->max_seq))
        return ct__err(CT_ERR_ARG, "prompt tuning: %d virtual tokens (1..%d for sequences of %d rows)", o->n_virtual,
                       o->max_seq - 1, o->max_seq);
    if (!m->output.rows && o->method != CT_TM_FROZEN && o->cls_labels <= 0)
        return ct__err(CT_ERR_UNSUPPORTED, "%s: a sequence-classification checkpoint has no language-model head to "
                       "train (train with --task classify, or start from the base model)", m->path);
    if (o->method == CT_TM_PREFIX) {
        if (o->n_virtual <= 0 || o->n_virtual > 4096 || o->prefix_hidden < 0 || o->prefix_hidden > 65536)
            return ct__err(CT_ERR_ARG, "prefix tuning: %d virtual tokens (1..4096), projection %d (0..65536)",
                           o->n_virtual, o->prefix_hidden);
        if (o->cls_labels > 0)
            return ct__err(CT_ERR_UNSUPPORTED, "prefix tuning classifies by label words (--words), not with a head");
        if (g->arch == CT_ARCH_GPT2 && o->max_seq + o->n_virtual > g->max_seq_len)
            return ct__err(CT_ERR_RANGE, "prefix tuning: %d prefix + %d tokens exceed GPT-2's %d positions; use "
                           "--max-len %d", o->n_virtual, o->max_seq, g->max_seq_len, g->max_seq_len - o->n_virtual);
        if (g->arch != CT_ARCH_GPT2 && g->sliding_window > 0 && o->max_seq + o->n_virtual > g->sliding_window)
            return ct__err(CT_ERR_UNSUPPORTED, "prefix tuning: %d prefix + %d tokens exceed the sliding window (%d)",
                           o->n_virtual, o->max_seq, g->sliding_window);
    }
    ct__tmodel *t = ct__calloc(1, sizeof *t);
    if (!t) return ct__err(CT_ERR_NOMEM, "training: out of memory");
    t->m = m;
    t->cfg = g;
    t->o = *o;
    t->qd = g->n_heads * g->head_dim;
    t->kvd = g->n_kv_heads * g->head_dim;
    t->qkv_out = g->arch == CT_ARCH_GPT2 ? 3 * g->dim : t->qd;
    prefix_dims(t);
    t->scale = o->method == CT_TM_LORA
                   ? (o->rslora ? o->lora_alpha / sqrtf((float)o->lora_r) : o->lora_alpha / (float)o->lora_r)
                   : 0.0f;
    ct_status s = ct__pool_create(o->n_threads, &t->pool);
    t->blk = s ? NULL : ct__calloc((size_t)g->n_layers, sizeof *t->blk);
    if (s || !t->blk) {
        ct__tm_free(t);
        return s ? s : ct__err(CT_ERR_NOMEM, "training: out of memory");
    }
    setup_blocks(t);
    ptab_b b = {.t = t, .count_only = 1};
    walk_params(&b);
    t->n_params = b.n;
    t->n_ptab = b.np;
    t->ptab = ct__calloc((size_t)(b.np ? b.np : 1), sizeof *t->ptab);
    t->params = ct__alloc_big((t->n_params ? t->n_params : 16) * sizeof(float));
    t->grads = ct__alloc_big((t->n_params ? t->n_params : 16) * sizeof(float));
    if (!t->ptab || !t->params || !t->grads) {
        double mib = 2.0 * t->n_params * sizeof(float) / 1048576.0;
        ct__tm_free(t);
        return ct__err(CT_ERR_NOMEM, "training: cannot allocate %.1f MiB for parameters and gradients", mib);
    }
    memset(t->params, 0, t->n_params * sizeof(float));
    memset(t->grads, 0, t->n_params * sizeof(float));
    b = (ptab_b){.t = t, .count_only = 0};
    walk_params(&b);
    init_values(t);
    /* full fine-tuning copied every weight: the mapped file pages it read
     * need not stay in this process's RSS (the copies are the model now) */
    if (o->method == CT_TM_FULL)
        for (size_t i = 0; i < m->ts.nfiles; i++) ct__mfile_drop_pages(&m->ts.files[i]);
    if (o->base != CT_TB_ASIS) {
        if (o->method == CT_TM_FULL) {
            ct__tm_free(t);
            return ct__err(CT_ERR_ARG, "a converted (quantized) base is for LoRA (QLoRA) only");
        }
        if ((s = convert_base(t))) {
            ct__tm_free(t);
            return s;
        }
    }
    if (o->bf16 && o->method != CT_TM_FULL && (s = prepack_frozen(t))) {
        ct__tm_free(t);
        return s;
    }
    if (o->bf16 && o->method == CT_TM_FULL && o->cls_labels <= 0) {
        /* the trainable head is read by 2 products per 128-row chunk: pack it once per run */
        size_t bytes = ct__gemm_bf16_packed_bytes(g->dim, g->vocab_size);
        t->packed = ct__calloc(2, sizeof *t->packed);
        t->packed_bytes = ct__calloc(2, sizeof *t->packed_bytes);
        void *a = t->packed ? ct__alloc_big(bytes) : NULL, *c = a ? ct__alloc_big(bytes) : NULL;
        if (!c) {
            if (a) ct__free_big(a, bytes);
            ct__tm_free(t);
            return ct__err(CT_ERR_NOMEM, "training: out of memory for the packed head");
        }
        t->packed[0] = a;
        t->packed[1] = c;
        t->packed_bytes[0] = t->packed_bytes[1] = bytes;
        t->n_packed = 2;
        t->pk_head_fwd = t->packed[0];
        t->pk_head_bwd = t->packed[1];
        t->head_repack = 1;
    }
    t->wdeq_n = o->bf16 && o->method != CT_TM_FULL ? 0 : frozen_deq_floats(t);
    s = alloc_acts(t);
    if (s) {
        ct__tm_free(t);
        return s;
    }
    *out = t;
    return CT_OK;
}

void ct__tm_free(ct__tmodel *t) {
    if (!t) return;
    ct__pool_free(t->pool);
    if (t->params) ct__free_big(t->params, (t->n_params ? t->n_params : 16) * sizeof(float));
    if (t->grads) ct__free_big(t->grads, (t->n_params ? t->n_params : 16) * sizeof(float));
    if (t->mem) ct__free_big(t->mem, t->mem_bytes);
    for (int i = 0; i < t->n_packed; i++) ct__free_big(t->packed[i], t->packed_bytes[i]);
    free(t->packed);
    free(t->packed_bytes);
    for (int i = 0; i < t->n_conv_mem; i++) free(t->conv_mem[i]);
    free(t->conv_mem);
    free(t->nf4_mats);
    free(t->ptab);
    free(t->blk);
    free(t->acts);
    free(t);
}

/* ---- memory estimate (ctune plan, the trainer's check before it allocates) ---------- */

/* Bytes a frozen linear layer occupies once converted to o.base (or as it is
 * stored when already so, or read as loaded with ASIS). */
static size_t base_layer_bytes(const ct__tmodel *t, const ct__tlin *L) {
    const ct_mat *W = &L->base;
    const int64_t n = (int64_t)L->out * L->in, nb = ct__q4_nblocks(n, CT_NF4_BLOCK);
    const size_t stored = W->dtype == CT_DT_NF4 ? mat_bytes(W) : (size_t)W->rows * W->row_bytes;
    switch (t->o.base) {
    case CT_TB_NF4:
        return W->dtype == CT_DT_NF4 ? stored
                                     : (size_t)(n + 1) / 2 + (size_t)nb + 4 * (size_t)ct__q4_nblocks(nb, 256);
    case CT_TB_Q8:
        if (L->in % 32) return W->dtype == CT_DT_BF16 ? stored : 2 * (size_t)n;
        return W->dtype == CT_DT_Q8_0 ? stored : (size_t)n / 32 * 34;
    case CT_TB_BF16: return W->dtype == CT_DT_BF16 ? stored : 2 * (size_t)n;
    case CT_TB_F32: return W->dtype == CT_DT_F32 ? stored : 4 * (size_t)n;
    default:
        if (t->o.bf16) return ct__gemm_bf16_packed_bytes(L->in, L->out) + ct__gemm_bf16_packed_bytes(L->out, L->in);
        return stored;
    }
}

ct_status ct__tm_estimate(ct_model *m, const ct__tm_opts *o, ct__tm_mem *e) {
    if (!m || !o || !e) return ct__err(CT_ERR_ARG, "ct__tm_estimate: NULL argument");
    memset(e, 0, sizeof *e);
    const ct_config *g = &m->cfg;
    if (o->max_rows <= 0 || o->max_seq <= 0 || o->max_seq > o->max_rows)
        return ct__err(CT_ERR_ARG, "training: need 0 < max_seq (%d) <= max_rows (%d)", o->max_seq, o->max_rows);
    ct__tmodel *t = ct__calloc(1, sizeof *t);
    if (!t) return ct__err(CT_ERR_NOMEM, "training: out of memory");
    t->m = m;
    t->cfg = g;
    t->o = *o;
    t->qd = g->n_heads * g->head_dim;
    t->kvd = g->n_kv_heads * g->head_dim;
    t->qkv_out = g->arch == CT_ARCH_GPT2 ? 3 * g->dim : t->qd;
    prefix_dims(t);
    t->blk = ct__calloc((size_t)g->n_layers, sizeof *t->blk);
    plan *p = ct__calloc(1, sizeof *p);
    if (!t->blk || !p) {
        free(p);
        ct__tm_free(t);
        return ct__err(CT_ERR_NOMEM, "training: out of memory");
    }
    setup_blocks(t);
    ptab_b b = {.t = t, .count_only = 1};
    walk_params(&b);
    e->n_trainable = b.n;
    e->n_tensors = b.np;
    e->trainable_bytes = e->grad_bytes = b.n * sizeof(float);
    e->optim_bytes = 2 * b.n * sizeof(float);
    const size_t C = (size_t)g->dim, V = (size_t)g->vocab_size;
    const ct_mat *H = &m->output;
    const size_t head_stored = (size_t)H->rows * H->row_bytes, emb_stored = (size_t)m->tok_emb.rows * m->tok_emb.row_bytes;
    if (o->method == CT_TM_FULL) {
        /* every weight is a trainable copy; the mapped pages are dropped */
        if (o->bf16 && o->cls_labels <= 0) e->heademb_bytes = 2 * ct__gemm_bf16_packed_bytes((int)C, (int)V);
    } else {
        for (int l = 0; l < g->n_layers; l++)
            for (int i = 0; i < LIN_COUNT; i++) {
                ct__tlin *L = &t->blk[l].lin[i];
                if (!L->out) continue;
                e->base_bytes += base_layer_bytes(t, L);
                L->fused = o->base != CT_TB_ASIS;
            }
        t->head_fused = o->base != CT_TB_ASIS && fusable(H->dtype) && (H->dtype != CT_DT_Q8_0 || H->cols % 32 == 0);
        if (!t->head_fused && o->bf16 && o->base == CT_TB_ASIS)
            e->heademb_bytes = 2 * ct__gemm_bf16_packed_bytes((int)C, (int)V);
        else e->heademb_bytes = head_stored;
        /* the embedding table: its own pages when untied (counted whole: an upper bound,
           training touches the rows of the ids it sees) */
        if (m->tok_emb.data != H->data) e->heademb_bytes += emb_stored;
    }
    t->wdeq_n = o->bf16 && o->method != CT_TM_FULL ? 0 : frozen_deq_floats(t);
    size_t total = 0;
    float *xa_all = NULL;
    ct_status st = act_plan(t, p, &total, &xa_all);
    e->act_bytes = total * sizeof(float);
    /* the savers' file-layout copy (ct__tm_file_tensors) and the file */
    size_t numel = 0;
    for (int l = 0; l < g->n_layers; l++)
        for (int i = 0; i < LIN_COUNT; i++) {
            const ct__tlin *L = &t->blk[l].lin[i];
            if (L->r) numel += (size_t)L->r * (L->in + L->out);
        }
    if (o->method == CT_TM_FULL) numel = (size_t)ct_model_n_params(m);
    if (o->method == CT_TM_PROMPT) numel = (size_t)o->n_virtual * C;
    if (o->method == CT_TM_PREFIX) numel = (size_t)o->n_virtual * 2 * (size_t)g->n_layers * (size_t)t->kvd;
    if (o->cls_labels > 0 && o->method != CT_TM_FULL) numel += (size_t)o->cls_labels * C;
    e->save_bytes = numel * sizeof(float);
    e->file_bytes = 8 + 96 * (size_t)b.np + numel * sizeof(float); /* header: ~96 bytes of JSON a tensor */
    free(p);
    ct__tm_free(t);
    return st;
}

/* ---- accessors ------------------------------------------------------------------ */

ct_status ct__tm_run(ct__tmodel *t, const ct__tm_batch *b, float scale, int backward, float *logits,
                     double *loss_sum) {
    return ct__tm_forward_backward(t, b, scale, backward, logits, loss_sum);
}

void ct__tm_zero_grad(ct__tmodel *t) { memset(t->grads, 0, t->n_params * sizeof(float)); }
float *ct__tm_params(ct__tmodel *t, size_t *n) {
    if (n) *n = t->n_params;
    return t->params;
}
float *ct__tm_grads(ct__tmodel *t) { return t->grads; }
const ct__tparam *ct__tm_ptable(const ct__tmodel *t, int *n) {
    *n = t->n_ptab;
    return t->ptab;
}
const ct__tparam *ct__tm_find(const ct__tmodel *t, const char *name) {
    for (int i = 0; i < t->n_ptab; i++)
        if (strcmp(t->ptab[i].name, name) == 0) return &t->ptab[i];
    return NULL;
}
ct_pool *ct__tm_pool(ct__tmodel *t) { return t->pool; }
const ct__tm_opts *ct__tm_options(const ct__tmodel *t) { return &t->o; }
ct_model *ct__tm_model(ct__tmodel *t) { return t->m; }
size_t ct__tm_act_bytes(const ct__tmodel *t) { return t->mem_bytes; }
const float *ct__tm_final_hidden(const ct__tmodel *t) { return t->hf; }
float ct__tm_lora_scale(const ct__tmodel *t) { return t->scale; }
