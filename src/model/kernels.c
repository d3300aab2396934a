/* src/model/kernels.c — norms, rotary embeddings, attention over the KV cache,
 * activations: every forward-pass kernel except the matmuls (src/tensor/).
 *
 * Implements: RMSNorm, LayerNorm, RoPE (NORM and NEOX layouts), causal GQA
 * attention with an optional sliding window, SwiGLU, tanh-GELU, residual add,
 * and a row-parallel helper. The dot/axpy inner loops of attention use AVX2+FMA
 * when compiled for it (scalar otherwise); the rest is plain C (O(T*C) work,
 * small next to the matmuls).
 * Leaves out: backward kernels (training lives elsewhere), fused/flash
 * attention tiling (scores for one query row fit in L1/L2 at our context sizes),
 * ALiBi and RoPE scaling variants.
 */
#include <math.h>
#include <string.h>
#include "model/kernels.h"
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define CT_KERNELS_AVX2 1
#endif

/* ---- vector helpers ------------------------------------------------------ */

#ifdef CT_KERNELS_AVX2
static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
#endif

float ct__dot_f32(const float *a, const float *b, int n) {
    int i = 0;
    float s = 0.0f;
#ifdef CT_KERNELS_AVX2
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s = hsum256(_mm256_add_ps(s0, s1));
#endif
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

void ct__axpy_f32(float *y, float a, const float *x, int n) {
    int i = 0;
#ifdef CT_KERNELS_AVX2
    __m256 va = _mm256_set1_ps(a);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
#endif
    for (; i < n; i++) y[i] += a * x[i];
}

/* ---- norms ----------------------------------------------------------------- */

void ct__rmsnorm_forward(float *out, const float *x, const float *w, int T, int C, float eps) {
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * C;
        float *ot = out + (size_t)t * C;
        float ss = ct__dot_f32(xt, xt, C) / (float)C;
        float r = 1.0f / sqrtf(ss + eps);
        for (int i = 0; i < C; i++) ot[i] = w[i] * (xt[i] * r);
    }
}

void ct__layernorm_forward(float *out, const float *x, const float *w, const float *b, int T, int C, float eps) {
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * C;
        float *ot = out + (size_t)t * C;
        double m = 0.0, v = 0.0;
        for (int i = 0; i < C; i++) m += xt[i];
        m /= C;
        for (int i = 0; i < C; i++) { double d = xt[i] - m; v += d * d; }
        v /= C;
        float mean = (float)m, r = (float)(1.0 / sqrt(v + eps));
        for (int i = 0; i < C; i++) ot[i] = (xt[i] - mean) * r * w[i] + b[i];
    }
}

/* ---- rotary embeddings ---------------------------------------------------- */

void ct__rope_tables(float *cos_t, float *sin_t, int n_pos, int HS, float theta) {
    int half = HS / 2;
    for (int i = 0; i < half; i++) {
        /* float32 inv_freq and angle, as transformers' default rope init and
         * llama2.c compute them; cos/sin of that float angle */
        float inv = 1.0f / powf(theta, (float)(2 * i) / (float)HS);
        for (int p = 0; p < n_pos; p++) {
            float ang = (float)p * inv;
            cos_t[(size_t)p * half + i] = (float)cos((double)ang);
            sin_t[(size_t)p * half + i] = (float)sin((double)ang);
        }
    }
}

void ct__rope_forward(float *x, int T, int ld, int NHx, int HS, int pos0, const float *cos_t,
                      const float *sin_t, ct_rope_style style) {
    int half = HS / 2;
    for (int t = 0; t < T; t++) {
        const float *c = cos_t + (size_t)(pos0 + t) * half, *s = sin_t + (size_t)(pos0 + t) * half;
        for (int h = 0; h < NHx; h++) {
            float *v = x + (size_t)t * ld + (size_t)h * HS;
            if (style == CT_ROPE_NEOX) {
                for (int i = 0; i < half; i++) {
                    float a = v[i], b = v[i + half];
                    v[i] = a * c[i] - b * s[i];
                    v[i + half] = b * c[i] + a * s[i];
                }
            } else {
                for (int i = 0; i < half; i++) {
                    float a = v[2 * i], b = v[2 * i + 1];
                    v[2 * i] = a * c[i] - b * s[i];
                    v[2 * i + 1] = b * c[i] + a * s[i];
                }
            }
        }
    }
}

/* ---- attention ------------------------------------------------------------- */

static void attention_task(void *ctx, int ith, int nth) {
    const ct__attn_args *a = ctx;
    const int HS = a->HS, qd = a->NH * HS, kvd = a->NKV * HS, grp = a->NH / a->NKV;
    const float scale = 1.0f / sqrtf((float)HS);
    float *att = a->att + (size_t)ith * a->n_ctx;
    for (int u = ith; u < a->T * a->NH; u += nth) {
        int t = u / a->NH, h = u % a->NH;
        int p = a->pos0 + t;
        int j0 = (a->window > 0 && p - a->window + 1 > 0) ? p - a->window + 1 : 0;
        const float *qh = a->q + (size_t)t * qd + (size_t)h * HS;
        const float *kh = a->k + (size_t)(h / grp) * HS;
        const float *vh = a->v + (size_t)(h / grp) * HS;
        /* scores and a numerically stable softmax over [j0, p] */
        float mx = -INFINITY;
        for (int j = j0; j <= p; j++) {
            float s = ct__dot_f32(qh, kh + (size_t)j * kvd, HS) * scale;
            att[j] = s;
            if (s > mx) mx = s;
        }
        float sum = 0.0f;
        for (int j = j0; j <= p; j++) {
            float e = expf(att[j] - mx);
            att[j] = e;
            sum += e;
        }
        float inv = 1.0f / sum;
        float *o = a->out + (size_t)t * qd + (size_t)h * HS;
        memset(o, 0, (size_t)HS * sizeof(float));
        for (int j = j0; j <= p; j++) ct__axpy_f32(o, att[j] * inv, vh + (size_t)j * kvd, HS);
    }
}

void ct__attention_forward(const ct__attn_args *a, ct_pool *pool) {
    ct__pool_run(pool, attention_task, (void *)a);
}

/* ---- activations ------------------------------------------------------------ */

void ct__swiglu_forward(float *out, const float *gate, const float *up, int N) {
    for (int i = 0; i < N; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

void ct__gelu_forward(float *out, const float *x, int N) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    for (int i = 0; i < N; i++) {
        float v = x[i];
        out[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

void ct__residual_forward(float *x, const float *y, int N) {
    for (int i = 0; i < N; i++) x[i] += y[i];
}

/* ---- row-parallel helper ------------------------------------------------- */

typedef struct {
    ct__rows_fn fn;
    void *ctx;
    int n;
} rows_job;

static void rows_task(void *ctx, int ith, int nth) {
    const rows_job *j = ctx;
    int per = (j->n + nth - 1) / nth;
    int r0 = ith * per, r1 = r0 + per < j->n ? r0 + per : j->n;
    if (r0 < r1) j->fn(j->ctx, r0, r1);
}

void ct__parallel_rows(ct_pool *pool, int n, ct__rows_fn fn, void *ctx) {
    if (n <= 1 || !pool) { if (n > 0) fn(ctx, 0, n); return; }
    rows_job j = {fn, ctx, n};
    ct__pool_run(pool, rows_task, &j);
}
