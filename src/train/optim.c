/* src/train/optim.c — AdamW, schedules, clipping (see optim.h).
 * The update follows torch.optim.AdamW (single-tensor/foreach math):
 *   p *= 1 - lr*wd
 *   m = b1*m + (1-b1)*g ; v = b2*v + (1-b2)*g^2
 *   p -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)
 * in float32 per element (bias corrections in double, as torch computes
 * them from Python floats). Leaves out: AMSGrad, fused multi-step kernels. */
#include <math.h>
#include "train/optim.h"

float ct__lr_at(const ct__adamw_opts *o, int s) {
    double f;
    if (s < o->warmup) {
        f = (double)s / (o->warmup > 1 ? o->warmup : 1);
    } else if (o->sched == CT_SCHED_CONSTANT) {
        f = 1.0;
    } else {
        int span = o->total - o->warmup;
        double prog = (double)(s - o->warmup) / (span > 1 ? span : 1);
        if (o->sched == CT_SCHED_LINEAR) f = (double)(o->total - s) / (span > 1 ? span : 1);
        else f = 0.5 * (1.0 + cos(M_PI * prog));
        if (f < 0) f = 0;
    }
    return (float)(o->lr * f);
}

double ct__grad_norm(const float *g, size_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)g[i] * g[i];
        s1 += (double)g[i + 1] * g[i + 1];
        s2 += (double)g[i + 2] * g[i + 2];
        s3 += (double)g[i + 3] * g[i + 3];
    }
    for (; i < n; i++) s0 += (double)g[i] * g[i];
    return sqrt(s0 + s1 + s2 + s3);
}

float ct__clip_scale(double norm, float clip) {
    if (clip <= 0) return 1.0f;
    double c = clip / (norm + 1e-6);
    return c >= 1.0 ? 1.0f : (float)c;
}

void ct__grad_clip(float *g, size_t n, double norm, float clip) {
    float cf = ct__clip_scale(norm, clip);
    if (cf == 1.0f) return;
    for (size_t i = 0; i < n; i++) g[i] *= cf;
}

void ct__adamw_update(float *p, const float *g, float *m, float *v, const ct__tparam *tab, int ntab,
                      const ct__adamw_opts *o, float lr, long t, float gscale) {
    const float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    double bc1 = 1.0 - pow((double)b1, (double)t), bc2 = 1.0 - pow((double)b2, (double)t);
    const float step = (float)(lr / bc1), bc2s = (float)sqrt(bc2);
    for (int k = 0; k < ntab; k++) {
        const ct__tparam *q = &tab[k];
        float *pp = p + q->off, *mm = m + q->off, *vv = v + q->off;
        const float *gg = g + q->off;
        const float decay = q->decay ? 1.0f - lr * o->weight_decay : 1.0f;
        for (size_t i = 0; i < q->n; i++) {
            float gi = gscale == 1.0f ? gg[i] : gg[i] * gscale;
            float mi = b1 * mm[i] + (1.0f - b1) * gi;
            float vi = b2 * vv[i] + (1.0f - b2) * gi * gi;
            mm[i] = mi;
            vv[i] = vi;
            float pi = pp[i] * decay;
            pp[i] = pi - step * mi / (sqrtf(vi) / bc2s + eps);
        }
    }
}
