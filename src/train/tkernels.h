/* src/train/tkernels.h — forward/backward pairs of every non-matmul layer the
 * trainer runs, llm.c style: `<op>_fwd` saves what `<op>_bwd` needs.
 * Matmuls are in src/tensor/gemm.h.
 *
 * A micro-batch is N rows (tokens) of several sequences packed end to end:
 * sequence s holds rows [seq[s], seq[s+1]) and its tokens sit at positions
 * 0..len-1 (pos[i] gives row i's position). Attention never crosses a
 * sequence boundary, so there is no padding.
 *
 * Conventions:
 *   - Parameter gradients (dw, db, ...) are ACCUMULATED (+=) so micro-batches
 *     add up; they may be NULL when the parameter is frozen (skipped).
 *   - Input gradients: "dx +=" or "dx =" as each function says.
 *   - Shapes are in the comments, row-major, rows first.
 *   - pool may be NULL (single thread). Nothing allocates except through
 *     ct__pool_scratch (grown once, reused).
 *   - Results do not depend on the pool size or timing (bit for bit): row
 *     work splits by rows, sums over rows (dw, db, dwte, dwpe) split by
 *     columns with rows added in order 0..N-1, attention by whole
 *     (sequence, head) units. One exception: attention falls back to its
 *     scalar path (other rounding) in a task whose pool scratch cannot be had.
 * Implementation: tkernels.c, tkernels_attn.c.
 */
#ifndef CT_TRAIN_TKERNELS_H
#define CT_TRAIN_TKERNELS_H
#include <stdint.h>
#include "ctune/model.h"
#include "tensor/ops.h"

/* ---- norms ---------------------------------------------------------------- */

/* out = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps) per row (saved).
 * out: (N,C)  rstd: (N)  x: (N,C)  w: (C) */
void ct__rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps,
                     ct_pool *pool);
/* dx += d/dx, dw += d/dw.  dx: (N,C)  dw: (C) or NULL  dout, x: (N,C)  rstd: (N) */
void ct__rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                     int N, int C, ct_pool *pool);

/* out = (x - mean) * rstd * w + b (biased variance), mean/rstd saved.
 * out: (N,C)  mean, rstd: (N)  x: (N,C)  w, b: (C) */
void ct__layernorm_fwd(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int N,
                       int C, float eps, ct_pool *pool);
/* dx += ; dw, db += (either may be NULL).  dx: (N,C)  dout, x: (N,C) */
void ct__layernorm_bwd(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                       const float *mean, const float *rstd, int N, int C, ct_pool *pool);

/* ---- rotary embeddings -------------------------------------------------- */

/* Rotate in place each of the NHx heads of every row by its position's angle
 * (inverse = 0), or by minus it (inverse = 1: the backward pass, since the
 * rotation is orthogonal: dx = R^T dy). Tables from ct__rope_tables
 * (src/model/kernels.h), NORM/NEOX as there.
 * x: (N, ld) with heads at columns [h*HS, (h+1)*HS)  pos: (N)  cos_t, sin_t: (n_pos, HS/2) */
void ct__rope_apply(float *x, int N, int ld, int NHx, int HS, const int32_t *pos, const float *cos_t,
                    const float *sin_t, ct_rope_style style, int inverse);

/* ---- causal attention over packed sequences ------------------------------ */

typedef struct {
    int N, n_seq;
    const int32_t *seq;       /* (n_seq+1) row offsets, seq[0] = 0, seq[n_seq] = N */
    int NH, NKV, HS;          /* query heads, KV heads (NH % NKV == 0), head size */
    int window;               /* sliding window (a query at p sees keys p-window+1..p); 0 = none */
    int q_ld, kv_ld, out_ld;  /* row strides of q, k/v, out (>= NH*HS, NKV*HS, NH*HS) */
} ct__attn_shape;

/* Floats of saved probabilities: NH * sum over sequences of len^2. */
size_t ct__attn_probs_size(const ct__attn_shape *s);
/* out = softmax(q k^T / sqrt(HS) + causal mask) v per sequence and head;
 * query head h reads KV head h / (NH/NKV). Saves the probabilities:
 * sequence s, head h at probs + NH*(sum_{s'<s} len'^2) + h*len^2, (len, len)
 * row-major, zeros above the diagonal / outside the window.
 * out: (N, out_ld)  probs: (ct__attn_probs_size)  q: (N, q_ld)  k, v: (N, kv_ld) */
void ct__attention_fwd(float *out, float *probs, const float *q, const float *k, const float *v,
                       const ct__attn_shape *s, ct_pool *pool);
/* dq, dk, dv = (overwritten) gradients of the attention inputs given dout.
 * Only the head columns are written (q columns >= NH*HS, k/v columns >=
 * NKV*HS are left as they are). Threads take (sequence, KV head) units.
 * dq: (N, q_ld)  dk, dv: (N, kv_ld)  dout: (N, out_ld) */
void ct__attention_bwd(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                       const float *k, const float *v, const ct__attn_shape *s, ct_pool *pool);

/* ---- activations ---------------------------------------------------------- */

/* out = silu(g) * u.  out, g, u: (n) */
void ct__swiglu_fwd(float *out, const float *g, const float *u, size_t n, ct_pool *pool);
/* dg, du = (overwritten; may alias g, u).  dout, g, u: (n) */
void ct__swiglu_bwd(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n,
                    ct_pool *pool);
/* GPT-2's tanh GELU ("gelu_new").  out, x: (n), may alias */
void ct__gelu_fwd(float *out, const float *x, size_t n, ct_pool *pool);
/* dx = dout * gelu'(x) (overwritten; dx may alias dout).  dx, dout, x: (n) */
void ct__gelu_bwd(float *dx, const float *dout, const float *x, size_t n, ct_pool *pool);

/* Inverted dropout with a counter-based mask, so the backward pass regenerates
 * it instead of storing it: element i (0 <= i < n) is kept iff
 * hash(seed, i) >= p * 2^32, kept elements scaled by 1/(1-p).
 * p == 0: out = x (copy; out may alias x). out, x: (n)
 * hash(seed, i) = upper 32 bits of splitmix64's mixer applied to
 * seed ^ (i * 0x9E3779B97F4A7C15); p >= 1 drops everything. */
void ct__dropout_fwd(float *out, const float *x, size_t n, float p, uint64_t seed, ct_pool *pool);
/* dx += mask * dout / (1-p), the same mask.  dx, dout: (n) */
void ct__dropout_bwd(float *dx, const float *dout, size_t n, float p, uint64_t seed, ct_pool *pool);

/* ---- embeddings, biases --------------------------------------------------- */

/* out[i] = wte[ids[i]] (+ wpe[pos[i]] when wpe is not NULL).
 * out: (N,C)  ids, pos: (N)  wte: (V,C)  wpe: (n_pos,C) or NULL */
void ct__embed_fwd(float *out, const int32_t *ids, const int32_t *pos, const float *wte, const float *wpe, int N,
                   int C);
/* dwte[ids[i]] += dout[i]; dwpe[pos[i]] += dout[i] (either may be NULL).
 * Deterministic (rows summed in order), no races. */
void ct__embed_bwd(float *dwte, float *dwpe, const float *dout, const int32_t *ids, const int32_t *pos, int N,
                   int C, ct_pool *pool);
/* db += sum over rows of dy.  db: (C)  dy: (N, C) */
void ct__bias_bwd(float *db, const float *dy, int N, int C, ct_pool *pool);

/* ---- loss ----------------------------------------------------------------- */

/* Softmax cross-entropy over n rows of logits (n, V), in place: returns the
 * sum over rows with target >= 0 of -log softmax(logits)[target] (double
 * accumulation), and overwrites logits with dlogits = (softmax - onehot) *
 * scale for those rows, 0 for rows with target < 0 (masked). Targets must be
 * < V. The sum is of per-row double losses in row order (pool-size
 * independent); uses pool scratch index 0 for them (n doubles).
 * logits: (n, V)  targets: (n) */
double ct__xent_fwd_bwd(float *logits, const int32_t *targets, int n, int V, float scale, ct_pool *pool);

#endif
