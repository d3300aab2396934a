/* src/train/tkernels.c — training forward/backward pairs of the non-matmul
 * layers (contracts in src/train/tkernels.h): RMSNorm, LayerNorm, RoPE
 * apply/inverse, SwiGLU, tanh-GELU, counter-based dropout, embeddings, bias
 * gradient and the fused softmax cross-entropy. Attention is in
 * tkernels_attn.c.
 *
 * Matching inference: the forward passes compute what src/model/kernels.c
 * computes (RMSNorm, RoPE, SwiGLU and GELU bit for bit: the same expressions,
 * or the same functions called on 256-aligned chunks; LayerNorm with the same
 * double-precision mean/variance, only summed in a vectorized order).
 *
 * Determinism: every result is independent of the pool size. Row work is
 * split by rows; parameter gradients summed over rows (dw/db of the norms,
 * bias, embeddings) are split by COLUMNS, each column summed over the rows in
 * order 0..N-1, so no two threads write the same float and the order never
 * depends on the thread count. The cross-entropy keeps one double loss per
 * row (pool scratch) and sums them in row order.
 *
 * Vector code: AVX-512 intrinsics (gcc -O2 does not vectorize these loops)
 * with masked tails, scalar C otherwise. Leaves out: AVX2-only intrinsics
 * (the scalar path is what a non-AVX-512 build runs), fused norm+matmul. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "train/tkernels.h"
#include "model/kernels.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#define TK_AVX512 1
#endif

#ifdef TK_AVX512
/* lanes [0, r) of a 16-float vector, r clamped to 16 */
static inline __mmask16 tmask(size_t r) { return r >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << r) - 1u); }
#endif

/* [*a, *b): part ith of nth of [0, n) with boundaries on multiples of align. */
static void split(size_t n, int ith, int nth, size_t align, size_t *a, size_t *b) {
    size_t blocks = (n + align - 1) / align;
    size_t b0 = blocks * (size_t)ith / (size_t)nth, b1 = blocks * (size_t)(ith + 1) / (size_t)nth;
    *a = b0 * align < n ? b0 * align : n;
    *b = b1 * align < n ? b1 * align : n;
}

/* ---- small vector primitives ----------------------------------------------- */

/* sum a[i]*b[i]*c[i] (float, 16-lane partial sums) */
static float dot3(const float *a, const float *b, const float *c, int n) {
    int i = 0;
    float s = 0.0f;
#ifdef TK_AVX512
    __m512 acc = _mm512_setzero_ps();
    for (; i < n; i += 16) {
        __mmask16 m = tmask((size_t)(n - i));
        __m512 ab = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        acc = _mm512_fmadd_ps(ab, _mm512_maskz_loadu_ps(m, c + i), acc);
    }
    s = _mm512_reduce_add_ps(acc);
#endif
    for (; i < n; i++) s += a[i] * b[i] * c[i];
    return s;
}

/* y[i] += x[i] */
static void vadd(float *y, const float *x, size_t n) {
    size_t i = 0;
#ifdef TK_AVX512
    for (; i < n; i += 16) {
        __mmask16 m = tmask(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i), _mm512_maskz_loadu_ps(m, x + i)));
    }
#endif
    for (; i < n; i++) y[i] += x[i];
}

/* ---- RMSNorm ----------------------------------------------------------------- */

typedef struct {
    float *out, *rstd, *mean_out, *dx, *dw, *db;
    const float *x, *w, *b, *dout, *mean, *rstd_in;
    int N, C;
    float eps;
} norm_job;

static void rms_fwd_rows(void *ctx, int r0, int r1) {
    const norm_job *j = ctx;
    const int C = j->C;
    for (int t = r0; t < r1; t++) {
        const float *xt = j->x + (size_t)t * C;
        float *ot = j->out + (size_t)t * C;
        /* the expressions of ct__rmsnorm_forward, so the outputs are equal */
        float ss = ct__dot_f32(xt, xt, C) / (float)C;
        float r = 1.0f / sqrtf(ss + j->eps);
        j->rstd[t] = r;
        int i = 0;
#ifdef TK_AVX512
        __m512 vr = _mm512_set1_ps(r);
        for (; i < C; i += 16) {
            __mmask16 m = tmask((size_t)(C - i));
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, j->w + i), _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xt + i), vr));
            _mm512_mask_storeu_ps(ot + i, m, v);
        }
#endif
        for (; i < C; i++) ot[i] = j->w[i] * (xt[i] * r);
    }
}

void ct__rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps,
                     ct_pool *pool) {
    norm_job j = {.out = out, .rstd = rstd, .x = x, .w = w, .N = N, .C = C, .eps = eps};
    ct__parallel_rows(pool, N, rms_fwd_rows, &j);
}

/* dx += r * (w*dout - x * r^2 * sum(w*dout*x) / C) */
static void rms_bwd_rows(void *ctx, int r0, int r1) {
    const norm_job *j = ctx;
    const int C = j->C;
    for (int t = r0; t < r1; t++) {
        const float *xt = j->x + (size_t)t * C, *dt = j->dout + (size_t)t * C;
        float *gx = j->dx + (size_t)t * C;
        float r = j->rstd_in[t];
        float k = r * r * r * dot3(j->w, dt, xt, C) / (float)C;
        int i = 0;
#ifdef TK_AVX512
        __m512 vr = _mm512_set1_ps(r), vk = _mm512_set1_ps(k);
        for (; i < C; i += 16) {
            __mmask16 m = tmask((size_t)(C - i));
            __m512 wd = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, j->w + i), _mm512_maskz_loadu_ps(m, dt + i));
            __m512 g = _mm512_fnmadd_ps(vk, _mm512_maskz_loadu_ps(m, xt + i), _mm512_mul_ps(vr, wd));
            _mm512_mask_storeu_ps(gx + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, gx + i), g));
        }
#endif
        for (; i < C; i++) gx[i] += r * (j->w[i] * dt[i]) - k * xt[i];
    }
}

/* dw[c] += dout[t][c] * x[t][c] * rstd[t] (RMSNorm), or with (x - mean)
 * (LayerNorm, mean != NULL); db[c] += dout[t][c]; t in order, columns split. */
static void norm_dw_task(void *ctx, int ith, int nth) {
    const norm_job *j = ctx;
    size_t c0, c1;
    split((size_t)j->C, ith, nth, 16, &c0, &c1);
    for (int t = 0; t < j->N; t++) {
        const float *xt = j->x + (size_t)t * j->C, *dt = j->dout + (size_t)t * j->C;
        float r = j->rstd_in[t], mu = j->mean ? j->mean[t] : 0.0f;
        size_t c = c0;
#ifdef TK_AVX512
        __m512 vr = _mm512_set1_ps(r), vm = _mm512_set1_ps(mu);
        for (; c < c1; c += 16) {
            __mmask16 m = tmask(c1 - c);
            __m512 d = _mm512_maskz_loadu_ps(m, dt + c);
            if (j->dw) {
                __m512 nrm = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, xt + c), vm), vr);
                _mm512_mask_storeu_ps(j->dw + c, m, _mm512_fmadd_ps(d, nrm, _mm512_maskz_loadu_ps(m, j->dw + c)));
            }
            if (j->db) _mm512_mask_storeu_ps(j->db + c, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, j->db + c), d));
        }
#endif
        for (; c < c1; c++) {
            if (j->dw) j->dw[c] += dt[c] * ((xt[c] - mu) * r);
            if (j->db) j->db[c] += dt[c];
        }
    }
}

void ct__rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                     int N, int C, ct_pool *pool) {
    norm_job j = {.dx = dx, .dw = dw, .x = x, .w = w, .dout = dout, .rstd_in = rstd, .N = N, .C = C};
    ct__parallel_rows(pool, N, rms_bwd_rows, &j);
    if (dw) ct__pool_run(pool, norm_dw_task, &j);
}

/* ---- LayerNorm ------------------------------------------------------------- */

/* sum of x (mode 0) or of (x - m)^2 (mode 1), in double */
static double dsum(const float *x, int n, double m, int mode) {
    int i = 0;
    double s = 0.0;
#ifdef TK_AVX512
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd(), vm = _mm512_set1_pd(m);
    for (; i + 16 <= n; i += 16) {
        __m512d u = _mm512_cvtps_pd(_mm256_loadu_ps(x + i)), v = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8));
        if (mode) {
            u = _mm512_sub_pd(u, vm);
            v = _mm512_sub_pd(v, vm);
            a0 = _mm512_fmadd_pd(u, u, a0);
            a1 = _mm512_fmadd_pd(v, v, a1);
        } else {
            a0 = _mm512_add_pd(a0, u);
            a1 = _mm512_add_pd(a1, v);
        }
    }
    s = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
#endif
    for (; i < n; i++) {
        double d = mode ? x[i] - m : x[i];
        s += mode ? d * d : d;
    }
    return s;
}

static void ln_fwd_rows(void *ctx, int r0, int r1) {
    const norm_job *j = ctx;
    const int C = j->C;
    for (int t = r0; t < r1; t++) {
        const float *xt = j->x + (size_t)t * C;
        float *ot = j->out + (size_t)t * C;
        double m = dsum(xt, C, 0.0, 0) / C;
        double v = dsum(xt, C, m, 1) / C;
        float mean = (float)m, r = (float)(1.0 / sqrt(v + j->eps));
        j->mean_out[t] = mean;
        j->rstd[t] = r;
        int i = 0;
#ifdef TK_AVX512
        __m512 vm = _mm512_set1_ps(mean), vr = _mm512_set1_ps(r);
        for (; i < C; i += 16) {
            __mmask16 k = tmask((size_t)(C - i));
            __m512 nrm = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xt + i), vm), vr);
            _mm512_mask_storeu_ps(ot + i, k, _mm512_fmadd_ps(nrm, _mm512_maskz_loadu_ps(k, j->w + i), _mm512_maskz_loadu_ps(k, j->b + i)));
        }
#endif
        for (; i < C; i++) ot[i] = (xt[i] - mean) * r * j->w[i] + j->b[i];
    }
}

void ct__layernorm_fwd(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int N,
                       int C, float eps, ct_pool *pool) {
    norm_job j = {.out = out, .rstd = rstd, .mean_out = mean, .x = x, .w = w, .b = b, .N = N, .C = C, .eps = eps};
    ct__parallel_rows(pool, N, ln_fwd_rows, &j);
}

/* dx += r * (dn - mean(dn) - n * mean(dn * n)), n = (x - mu) * r, dn = w * dout */
static void ln_bwd_rows(void *ctx, int r0, int r1) {
    const norm_job *j = ctx;
    const int C = j->C;
    for (int t = r0; t < r1; t++) {
        const float *xt = j->x + (size_t)t * C, *dt = j->dout + (size_t)t * C;
        float *gx = j->dx + (size_t)t * C;
        float mu = j->mean[t], r = j->rstd_in[t];
        float sd = 0.0f, sdn = 0.0f;
        int i = 0;
#ifdef TK_AVX512
        __m512 vm = _mm512_set1_ps(mu), vr = _mm512_set1_ps(r), a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        for (; i < C; i += 16) {
            __mmask16 k = tmask((size_t)(C - i));
            __m512 dn = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, j->w + i), _mm512_maskz_loadu_ps(k, dt + i));
            __m512 nrm = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xt + i), vm), vr);
            a0 = _mm512_add_ps(a0, dn);
            a1 = _mm512_fmadd_ps(dn, nrm, a1);
        }
        sd = _mm512_reduce_add_ps(a0);
        sdn = _mm512_reduce_add_ps(a1);
#endif
        for (; i < C; i++) {
            float dn = j->w[i] * dt[i];
            sd += dn;
            sdn += dn * ((xt[i] - mu) * r);
        }
        float md = sd / (float)C, mdn = sdn / (float)C;
        i = 0;
#ifdef TK_AVX512
        __m512 vmd = _mm512_set1_ps(md), vmdn = _mm512_set1_ps(mdn);
        for (; i < C; i += 16) {
            __mmask16 k = tmask((size_t)(C - i));
            __m512 dn = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, j->w + i), _mm512_maskz_loadu_ps(k, dt + i));
            __m512 nrm = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, xt + i), vm), vr);
            __m512 g = _mm512_fnmadd_ps(nrm, vmdn, _mm512_sub_ps(dn, vmd));
            _mm512_mask_storeu_ps(gx + i, k, _mm512_fmadd_ps(vr, g, _mm512_maskz_loadu_ps(k, gx + i)));
        }
#endif
        for (; i < C; i++) {
            float dn = j->w[i] * dt[i], nrm = (xt[i] - mu) * r;
            gx[i] += r * (dn - md - nrm * mdn);
        }
    }
}

void ct__layernorm_bwd(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                       const float *mean, const float *rstd, int N, int C, ct_pool *pool) {
    norm_job j = {.dx = dx, .dw = dw, .db = db, .x = x, .w = w, .dout = dout, .mean = mean, .rstd_in = rstd,
                  .N = N, .C = C};
    ct__parallel_rows(pool, N, ln_bwd_rows, &j);
    if (dw || db) ct__pool_run(pool, norm_dw_task, &j);
}

/* ---- RoPE ---------------------------------------------------------------- */

/* Forward: the loops of ct__rope_forward (same expressions, so the same
 * floats); inverse: the transposed rotation (a, b) -> (a c + b s, b c - a s). */
void ct__rope_apply(float *x, int N, int ld, int NHx, int HS, const int32_t *pos, const float *cos_t,
                    const float *sin_t, ct_rope_style style, int inverse) {
    int half = HS / 2;
    for (int t = 0; t < N; t++) {
        const float *c = cos_t + (size_t)pos[t] * half, *s = sin_t + (size_t)pos[t] * half;
        for (int h = 0; h < NHx; h++) {
            float *v = x + (size_t)t * ld + (size_t)h * HS;
            int stride = style == CT_ROPE_NEOX ? 1 : 2, off = style == CT_ROPE_NEOX ? half : 1;
            if (!inverse && style == CT_ROPE_NEOX) {
                for (int i = 0; i < half; i++) {
                    float a = v[i], b = v[i + half];
                    v[i] = a * c[i] - b * s[i];
                    v[i + half] = b * c[i] + a * s[i];
                }
            } else if (!inverse) {
                for (int i = 0; i < half; i++) {
                    float a = v[2 * i], b = v[2 * i + 1];
                    v[2 * i] = a * c[i] - b * s[i];
                    v[2 * i + 1] = b * c[i] + a * s[i];
                }
            } else {
                for (int i = 0; i < half; i++) {
                    float *pa = v + (size_t)i * stride, *pb = pa + off;
                    float a = *pa, b = *pb;
                    *pa = a * c[i] + b * s[i];
                    *pb = b * c[i] - a * s[i];
                }
            }
        }
    }
}

/* ---- activations ------------------------------------------------------------- */

enum { ACT_BLOCK = 256,          /* the block of ct__swiglu_forward / ct__gelu_forward */
       ACT_CHUNK = 1 << 20 };    /* elements per call into them (a multiple of ACT_BLOCK) */

typedef struct {
    float *out, *o2;
    const float *a, *b, *c;
    size_t n;
    float p;
    uint64_t seed;
} ew_job;

static void swiglu_fwd_task(void *ctx, int ith, int nth) {
    const ew_job *j = ctx;
    size_t a, b;
    split(j->n, ith, nth, ACT_BLOCK, &a, &b);
    /* chunks start on multiples of ACT_BLOCK, as in one call over all n: equal bits */
#ifdef TK_AVX512
    /* ct__swiglu_forward's arithmetic, vectorized: out = g / (1 + exp(-g)) * u */
    float e[ACT_BLOCK];
    const __m512 one = _mm512_set1_ps(1.0f);
    for (size_t i0 = a; i0 < b; i0 += ACT_BLOCK) {
        int n = (int)(b - i0 < ACT_BLOCK ? b - i0 : ACT_BLOCK);
        const float *g = j->a + i0, *u = j->b + i0;
        float *o = j->out + i0;
        for (int i = 0; i < n; i += 16) {
            __mmask16 m = tmask((size_t)(n - i));
            _mm512_mask_storeu_ps(e + i, m, _mm512_sub_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(m, g + i)));
        }
        ct__exp_inplace(e, n);
        for (int i = 0; i < n; i += 16) {
            __mmask16 m = tmask((size_t)(n - i));
            __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(m, g + i), _mm512_add_ps(one, _mm512_maskz_loadu_ps(m, e + i)));
            _mm512_mask_storeu_ps(o + i, m, _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, u + i)));
        }
    }
#else
    for (size_t i = a; i < b; i += ACT_CHUNK)
        ct__swiglu_forward(j->out + i, j->a + i, j->b + i, (int)(b - i < ACT_CHUNK ? b - i : ACT_CHUNK));
#endif
}

void ct__swiglu_fwd(float *out, const float *g, const float *u, size_t n, ct_pool *pool) {
    ew_job j = {.out = out, .a = g, .b = u, .n = n};
    ct__pool_run(pool, swiglu_fwd_task, &j);
}

/* s = sigmoid(g): dg = dout*u*s*(1 + g*(1-s)), du = dout*g*s */
static void swiglu_bwd_task(void *ctx, int ith, int nth) {
    const ew_job *j = ctx;
    size_t a, b;
    split(j->n, ith, nth, ACT_BLOCK, &a, &b);
    float e[ACT_BLOCK];
    for (size_t i0 = a; i0 < b; i0 += ACT_BLOCK) {
        int n = (int)(b - i0 < ACT_BLOCK ? b - i0 : ACT_BLOCK);
        const float *g = j->b + i0, *u = j->c + i0, *d = j->a + i0;
        float *dg = j->out + i0, *du = j->o2 + i0;
        for (int i = 0; i < n; i++) e[i] = -g[i];
        ct__exp_inplace(e, n);
        int i = 0;
#ifdef TK_AVX512
        const __m512 one = _mm512_set1_ps(1.0f);
        for (; i < n; i += 16) {
            __mmask16 m = tmask((size_t)(n - i));
            __m512 vg = _mm512_maskz_loadu_ps(m, g + i), vu = _mm512_maskz_loadu_ps(m, u + i);
            __m512 vd = _mm512_maskz_loadu_ps(m, d + i);
            __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, _mm512_maskz_loadu_ps(m, e + i)));
            __m512 ds = _mm512_mul_ps(vd, s);
            __m512 vdg = _mm512_mul_ps(_mm512_mul_ps(ds, vu), _mm512_fmadd_ps(vg, _mm512_sub_ps(one, s), one));
            _mm512_mask_storeu_ps(dg + i, m, vdg);
            _mm512_mask_storeu_ps(du + i, m, _mm512_mul_ps(ds, vg));
        }
#endif
        for (; i < n; i++) {
            float s = 1.0f / (1.0f + e[i]), gg = g[i], uu = u[i], ds = d[i] * s;
            dg[i] = ds * uu * (1.0f + gg * (1.0f - s));
            du[i] = ds * gg;
        }
    }
}

void ct__swiglu_bwd(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n,
                    ct_pool *pool) {
    ew_job j = {.out = dg, .o2 = du, .a = dout, .b = g, .c = u, .n = n};
    ct__pool_run(pool, swiglu_bwd_task, &j);
}

static void gelu_fwd_task(void *ctx, int ith, int nth) {
    const ew_job *j = ctx;
    size_t a, b;
    split(j->n, ith, nth, ACT_BLOCK, &a, &b);
#if defined(TK_AVX512) && defined(__FMA__)
    /* ct__gelu_forward's arithmetic as gcc compiles it with FMA contraction
     * (y = fma(0.044715 x * x, x, x) * 2k; 0.5 x (2 - 2 / (exp(y) + 1))),
     * vectorized; the test checks the bits against ct__gelu_forward */
    float e[ACT_BLOCK];
    const __m512 one = _mm512_set1_ps(1.0f), two = _mm512_set1_ps(2.0f), half = _mm512_set1_ps(0.5f);
    const __m512 c3 = _mm512_set1_ps(0.044715f), k2 = _mm512_set1_ps(2.0f * 0.7978845608028654f);
    for (size_t i0 = a; i0 < b; i0 += ACT_BLOCK) {
        int n = (int)(b - i0 < ACT_BLOCK ? b - i0 : ACT_BLOCK);
        const float *x = j->a + i0;
        float *o = j->out + i0;
        for (int i = 0; i < n; i += 16) {
            __mmask16 m = tmask((size_t)(n - i));
            __m512 v = _mm512_maskz_loadu_ps(m, x + i);
            __m512 y = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_mul_ps(c3, v), v), v, v);
            _mm512_mask_storeu_ps(e + i, m, _mm512_mul_ps(y, k2));
        }
        ct__exp_inplace(e, n);
        for (int i = 0; i < n; i += 16) {
            __mmask16 m = tmask((size_t)(n - i));
            __m512 v = _mm512_maskz_loadu_ps(m, x + i);
            __m512 t = _mm512_sub_ps(two, _mm512_div_ps(two, _mm512_add_ps(_mm512_maskz_loadu_ps(m, e + i), one)));
            _mm512_mask_storeu_ps(o + i, m, _mm512_mul_ps(_mm512_mul_ps(half, v), t));
        }
    }
#else
    for (size_t i = a; i < b; i += ACT_CHUNK)
        ct__gelu_forward(j->out + i, j->a + i, (int)(b - i < ACT_CHUNK ? b - i : ACT_CHUNK));
#endif
}

void ct__gelu_fwd(float *out, const float *x, size_t n, ct_pool *pool) {
    ew_job j = {.out = out, .a = x, .n = n};
    ct__pool_run(pool, gelu_fwd_task, &j);
}

/* gelu(x) = 0.5 x (1 + t), t = tanh(y), y = k (x + 0.044715 x^3):
 * gelu' = 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3*0.044715 x^2);
 * tanh via exp as in the forward: t = 1 - 2 / (exp(2y) + 1). */
static void gelu_bwd_task(void *ctx, int ith, int nth) {
    const ew_job *j = ctx;
    const float k = 0.7978845608028654f, c3 = 0.044715f;
    size_t a, b;
    split(j->n, ith, nth, ACT_BLOCK, &a, &b);
    float e[ACT_BLOCK];
    for (size_t i0 = a; i0 < b; i0 += ACT_BLOCK) {
        int n = (int)(b - i0 < ACT_BLOCK ? b - i0 : ACT_BLOCK);
        const float *x = j->b + i0, *d = j->a + i0;
        float *dx = j->out + i0;
        int i = 0;
#ifdef TK_AVX512
        for (; i < n; i += 16) {
            __mmask16 m = tmask((size_t)(n - i));
            __m512 v = _mm512_maskz_loadu_ps(m, x + i);
            __m512 y = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(c3), v), v), v, v);
            _mm512_mask_storeu_ps(e + i, m, _mm512_mul_ps(y, _mm512_set1_ps(2.0f * k)));
        }
#endif
        for (; i < n; i++) e[i] = 2.0f * k * (x[i] + c3 * x[i] * x[i] * x[i]);
        ct__exp_inplace(e, n);
        i = 0;
#ifdef TK_AVX512
        const __m512 one = _mm512_set1_ps(1.0f), two = _mm512_set1_ps(2.0f), half = _mm512_set1_ps(0.5f);
        const __m512 vk = _mm512_set1_ps(k), v3 = _mm512_set1_ps(3.0f * c3);
        for (; i < n; i += 16) {
            __mmask16 m = tmask((size_t)(n - i));
            __m512 vx = _mm512_maskz_loadu_ps(m, x + i), vd = _mm512_maskz_loadu_ps(m, d + i);
            __m512 t = _mm512_sub_ps(one, _mm512_div_ps(two, _mm512_add_ps(_mm512_maskz_loadu_ps(m, e + i), one)));
            __m512 inner = _mm512_mul_ps(vk, _mm512_fmadd_ps(_mm512_mul_ps(v3, vx), vx, one));
            __m512 sech2 = _mm512_fnmadd_ps(t, t, one);
            __m512 gp = _mm512_mul_ps(half, _mm512_fmadd_ps(_mm512_mul_ps(vx, sech2), inner, _mm512_add_ps(one, t)));
            _mm512_mask_storeu_ps(dx + i, m, _mm512_mul_ps(vd, gp));
        }
#endif
        for (; i < n; i++) {
            float xv = x[i], t = 1.0f - 2.0f / (e[i] + 1.0f);
            float gp = 0.5f * ((1.0f + t) + xv * (1.0f - t * t) * (k * (1.0f + 3.0f * c3 * xv * xv)));
            dx[i] = d[i] * gp;
        }
    }
}

void ct__gelu_bwd(float *dx, const float *dout, const float *x, size_t n, ct_pool *pool) {
    ew_job j = {.out = dx, .a = dout, .b = x, .n = n};
    ct__pool_run(pool, gelu_bwd_task, &j);
}

/* ---- dropout ------------------------------------------------------------- */

/* hash(seed, i) = upper 32 bits of splitmix64's output function applied to
 * the state seed ^ (i * 0x9E3779B97F4A7C15) (Steele, Lea, Flood, "Fast
 * splittable pseudorandom number generators", OOPSLA 2014; constants from
 * Vigna's splitmix64.c). Element i is kept iff hash >= thr = p * 2^32. */
#define TK_GOLDEN 0x9E3779B97F4A7C15ull
static inline uint64_t mix64(uint64_t z) {
    z += TK_GOLDEN;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline int keep(uint64_t seed, uint64_t i, uint64_t thr) { return (mix64(seed ^ (i * TK_GOLDEN)) >> 32) >= thr; }

#if defined(TK_AVX512) && defined(__AVX512DQ__)
/* keep mask of elements i0..i0+15 (the scalar keep() in 8-lane 64-bit math) */
static inline __mmask16 keep16(uint64_t seed, uint64_t i0, uint64_t thr) {
    const __m512i g = _mm512_set1_epi64((long long)TK_GOLDEN), sd = _mm512_set1_epi64((long long)seed);
    const __m512i m1 = _mm512_set1_epi64((long long)0xBF58476D1CE4E5B9ull);
    const __m512i m2 = _mm512_set1_epi64((long long)0x94D049BB133111EBull), vt = _mm512_set1_epi64((long long)thr);
    __mmask8 k[2];
    for (int h = 0; h < 2; h++) {
        __m512i i = _mm512_add_epi64(_mm512_set1_epi64((long long)(i0 + 8 * h)),
                                     _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0));
        __m512i z = _mm512_add_epi64(_mm512_xor_si512(sd, _mm512_mullo_epi64(i, g)), g);
        z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), m1);
        z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), m2);
        z = _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
        k[h] = _mm512_cmpge_epu64_mask(_mm512_srli_epi64(z, 32), vt);
    }
    return (__mmask16)(k[0] | ((unsigned)k[1] << 8));
}
#define TK_DROP_VEC 1
#endif

/* thr = p * 2^32 (as 64 bits: p >= 1 keeps nothing); scale = 1/(1-p) or 0 */
static void drop_params(float p, uint64_t *thr, float *scale) {
    double t = (double)p * 4294967296.0;
    *thr = t >= 4294967296.0 ? (uint64_t)1 << 32 : (uint64_t)t;
    *scale = p >= 1.0f ? 0.0f : 1.0f / (1.0f - p);
}

/* mode 0: out = keep ? x * scale : 0 ; mode 1: out += keep ? x * scale : 0 */
static void dropout_task(void *ctx, int ith, int nth) {
    const ew_job *j = ctx;
    size_t a, b;
    split(j->n, ith, nth, 16, &a, &b);
    uint64_t thr;
    float sc;
    drop_params(j->p, &thr, &sc);
    const int acc = j->o2 != NULL; /* backward */
    size_t i = a;
#ifdef TK_DROP_VEC
    __m512 vs = _mm512_set1_ps(sc);
    for (; i + 16 <= b; i += 16) {
        __mmask16 m = keep16(j->seed, i, thr);
        __m512 v = _mm512_maskz_mul_ps(m, _mm512_loadu_ps(j->a + i), vs);
        if (acc) v = _mm512_add_ps(_mm512_loadu_ps(j->out + i), v);
        _mm512_storeu_ps(j->out + i, v);
    }
#endif
    for (; i < b; i++) {
        float v = keep(j->seed, i, thr) ? j->a[i] * sc : 0.0f;
        j->out[i] = acc ? j->out[i] + v : v;
    }
}

void ct__dropout_fwd(float *out, const float *x, size_t n, float p, uint64_t seed, ct_pool *pool) {
    if (p <= 0.0f) {
        if (out != x) memmove(out, x, n * sizeof *out);
        return;
    }
    ew_job j = {.out = out, .a = x, .n = n, .p = p, .seed = seed};
    ct__pool_run(pool, dropout_task, &j);
}

void ct__dropout_bwd(float *dx, const float *dout, size_t n, float p, uint64_t seed, ct_pool *pool) {
    ew_job j = {.out = dx, .o2 = dx, .a = dout, .n = n, .p = p, .seed = seed};
    if (p <= 0.0f) {
        vadd(dx, dout, n);
        return;
    }
    ct__pool_run(pool, dropout_task, &j);
}

/* ---- embeddings, bias ---------------------------------------------------- */

void ct__embed_fwd(float *out, const int32_t *ids, const int32_t *pos, const float *wte, const float *wpe, int N,
                   int C) {
    for (int i = 0; i < N; i++) {
        float *o = out + (size_t)i * C;
        memcpy(o, wte + (size_t)ids[i] * C, (size_t)C * sizeof *o);
        if (wpe) vadd(o, wpe + (size_t)pos[i] * C, (size_t)C);
    }
}

typedef struct {
    float *dwte, *dwpe;
    const float *dout;
    const int32_t *ids, *pos;
    int N, C;
} embed_job;

/* columns split across tasks; every task walks all rows in order */
static void embed_bwd_task(void *ctx, int ith, int nth) {
    const embed_job *j = ctx;
    size_t c0, c1;
    split((size_t)j->C, ith, nth, 16, &c0, &c1);
    if (c0 >= c1) return;
    for (int i = 0; i < j->N; i++) {
        const float *d = j->dout + (size_t)i * j->C + c0;
        if (j->dwte) vadd(j->dwte + (size_t)j->ids[i] * j->C + c0, d, c1 - c0);
        if (j->dwpe) vadd(j->dwpe + (size_t)j->pos[i] * j->C + c0, d, c1 - c0);
    }
}

void ct__embed_bwd(float *dwte, float *dwpe, const float *dout, const int32_t *ids, const int32_t *pos, int N,
                   int C, ct_pool *pool) {
    if (!dwte && !dwpe) return;
    embed_job j = {dwte, dwpe, dout, ids, pos, N, C};
    ct__pool_run(pool, embed_bwd_task, &j);
}

static void bias_bwd_task(void *ctx, int ith, int nth) {
    const embed_job *j = ctx;
    size_t c0, c1;
    split((size_t)j->C, ith, nth, 16, &c0, &c1);
    if (c0 >= c1) return;
    for (int i = 0; i < j->N; i++) vadd(j->dwte + c0, j->dout + (size_t)i * j->C + c0, c1 - c0);
}

void ct__bias_bwd(float *db, const float *dy, int N, int C, ct_pool *pool) {
    if (!db) return;
    embed_job j = {.dwte = db, .dout = dy, .N = N, .C = C};
    ct__pool_run(pool, bias_bwd_task, &j);
}

/* ---- softmax cross-entropy ------------------------------------------------ */

typedef struct {
    float *logits;
    const int32_t *targets;
    double *loss; /* (n) per-row losses */
    int n, V;
    float scale;
} xent_job;

static float vmax(const float *x, int n) {
    int i = 0;
    float m = x[0];
#ifdef TK_AVX512
    if (n >= 16) {
        __m512 a = _mm512_loadu_ps(x);
        for (i = 16; i + 16 <= n; i += 16) a = _mm512_max_ps(a, _mm512_loadu_ps(x + i));
        m = _mm512_reduce_max_ps(a);
    }
#endif
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* x[i] = x[i] - m (mode 0) or x[i] * m (mode 1); returns nothing */
static void vshift(float *x, int n, float m, int mode) {
    int i = 0;
#ifdef TK_AVX512
    __m512 vm = _mm512_set1_ps(m);
    for (; i < n; i += 16) {
        __mmask16 k = tmask((size_t)(n - i));
        __m512 v = _mm512_maskz_loadu_ps(k, x + i);
        _mm512_mask_storeu_ps(x + i, k, mode ? _mm512_mul_ps(v, vm) : _mm512_sub_ps(v, vm));
    }
#endif
    for (; i < n; i++) x[i] = mode ? x[i] * m : x[i] - m;
}

static float vsum(const float *x, int n) {
    int i = 0;
    float s = 0.0f;
#ifdef TK_AVX512
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (; i + 32 <= n; i += 32) {
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(x + i));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(x + i + 16));
    }
    for (; i < n; i += 16) a0 = _mm512_add_ps(a0, _mm512_maskz_loadu_ps(tmask((size_t)(n - i)), x + i));
    s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
#endif
    for (; i < n; i++) s += x[i];
    return s;
}

static void xent_rows(void *ctx, int r0, int r1) {
    const xent_job *j = ctx;
    const int V = j->V;
    for (int r = r0; r < r1; r++) {
        float *x = j->logits + (size_t)r * V;
        int t = j->targets[r];
        if (t < 0) {
            memset(x, 0, (size_t)V * sizeof *x);
            j->loss[r] = 0.0;
            continue;
        }
        /* z = x - max, p = exp(z) / sum exp(z), loss = log(sum) - z[t] */
        vshift(x, V, vmax(x, V), 0);
        float zt = x[t];
        ct__exp_inplace(x, V);
        float sum = vsum(x, V);
        j->loss[r] = log((double)sum) - (double)zt;
        vshift(x, V, j->scale / sum, 1);
        x[t] -= j->scale;
    }
}

double ct__xent_fwd_bwd(float *logits, const int32_t *targets, int n, int V, float scale, ct_pool *pool) {
    if (n <= 0) return 0.0;
    /* task 0's scratch is free: no task below asks for scratch */
    double *loss = ct__pool_scratch(pool, 0, (size_t)n * sizeof *loss);
    double one = 0.0;
    xent_job j = {logits, targets, loss, n, V, scale};
    if (!loss) { /* out of memory: one row at a time, single thread */
        double tot = 0.0;
        j.loss = &one;
        for (int r = 0; r < n; r++) {
            xent_rows(&j, r, r + 1);
            tot += one;
        }
        return tot;
    }
    ct__parallel_rows(pool, n, xent_rows, &j);
    double tot = 0.0;
    for (int r = 0; r < n; r++) tot += loss[r];
    return tot;
}
