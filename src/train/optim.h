/* src/train/optim.h — AdamW with decoupled weight decay, learning-rate
 * schedules with warmup, and gradient clipping by global norm; the
 * semantics of torch.optim.AdamW, transformers' get_*_schedule_with_warmup
 * and torch.nn.utils.clip_grad_norm_, so a run can be checked step by step
 * against PyTorch. */
#ifndef CT_TRAIN_OPTIM_H
#define CT_TRAIN_OPTIM_H
#include <stddef.h>
#include "train/tmodel.h"

typedef enum { CT_SCHED_CONSTANT = 0, CT_SCHED_LINEAR, CT_SCHED_COSINE } ct__sched;

typedef struct {
    float lr;            /* peak learning rate */
    float beta1, beta2, eps;
    float weight_decay;  /* applied to parameters with decay set (2-D ones) */
    ct__sched sched;
    int warmup;          /* steps of linear warmup from 0 */
    int total;           /* optimizer steps in the run (linear/cosine decay to 0 at total) */
    float clip;          /* max global gradient norm; <= 0: no clipping */
} ct__adamw_opts;

/* Learning rate of optimizer step s (0-based), as transformers' schedulers:
 * warmup s/warmup, then constant, linear (total-s)/(total-warmup) or cosine
 * 0.5*(1+cos(pi*(s-warmup)/(total-warmup))), never below 0. */
float ct__lr_at(const ct__adamw_opts *o, int s);

/* Global L2 norm of n gradients (double accumulation, fixed order). */
double ct__grad_norm(const float *g, size_t n);
/* The factor clip_grad_norm_ multiplies the gradients by: clip/(norm+1e-6)
 * when that is below 1, else 1 (also for clip <= 0). */
float ct__clip_scale(double norm, float clip);
/* Scale g by ct__clip_scale (a separate pass; ct__adamw_update can fuse it). */
void ct__grad_clip(float *g, size_t n, double norm, float clip);

/* One AdamW update of every parameter in the table (t = 1-based step count
 * for bias correction) with the gradient g * gscale (the clipping factor,
 * fused: one pass over g instead of two; the same float product as clipping
 * first): p -= lr*wd*p (decay params), then Adam with m, v. */
void ct__adamw_update(float *p, const float *g, float *m, float *v, const ct__tparam *tab, int ntab,
                      const ct__adamw_opts *o, float lr, long t, float gscale);

#endif
