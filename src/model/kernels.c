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
/* fully unroll the small loops over accumulator arrays so they live in registers */
#define CT_UNROLL _Pragma("GCC unroll 8")

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

/* exp over n floats in place. AVX2: x = n*ln2 + r, |r| <= ln2/2, e^r by its
 * degree-7 Taylor polynomial (truncation < 1e-8 relative), 2^n via the
 * exponent bits; inputs below -87.3 give 0 (as expf underflows), above 88.3
 * are clamped. Scalar expf otherwise and for the tail. */
/* x[i] = exp(x[i] - shift); returns the sum of the results. */
static float exp_shift_sum(float *x, int n, float shift) {
    int i = 0;
    float sum = 0.0f;
#ifdef CT_KERNELS_AVX2
    const __m256 lo = _mm256_set1_ps(-87.3f), hi = _mm256_set1_ps(88.3f), sh = _mm256_set1_ps(shift);
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
    const __m256 ln2_hi = _mm256_set1_ps(0.693359375f), ln2_lo = _mm256_set1_ps(-2.12194440e-4f);
    const float c[8] = {1.0f, 1.0f, 1.0f / 2, 1.0f / 6, 1.0f / 24, 1.0f / 120, 1.0f / 720, 1.0f / 5040};
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_sub_ps(_mm256_loadu_ps(x + i), sh);
        __m256 under = _mm256_cmp_ps(v, lo, _CMP_LT_OQ);
        v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
        __m256 k = _mm256_round_ps(_mm256_mul_ps(v, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256 r = _mm256_fnmadd_ps(k, ln2_hi, v);
        r = _mm256_fnmadd_ps(k, ln2_lo, r);
        __m256 p = _mm256_set1_ps(c[7]);
        for (int d = 6; d >= 0; d--) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c[d]));
        __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
        p = _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
        _mm256_storeu_ps(x + i, p);
        acc = _mm256_add_ps(acc, p);
    }
    sum = hsum256(acc);
#endif
    for (; i < n; i++) {
        x[i] = expf(x[i] - shift);
        sum += x[i];
    }
    return sum;
}

void ct__exp_inplace(float *x, int n) { (void)exp_shift_sum(x, n, 0.0f); }

/* In-place softmax of x (n,), n >= 1. */
static void softmax_inplace(float *x, int n) {
    int i = 0;
    float mx = x[0];
#ifdef CT_KERNELS_AVX2
    if (n >= 8) {
        __m256 m = _mm256_loadu_ps(x);
        for (i = 8; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
        mx = _mm_cvtss_f32(h);
    }
#endif
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    float inv = 1.0f / exp_shift_sum(x, n, mx);
    for (i = 0; i < n; i++) x[i] *= inv; /* vectorized by gcc: no reduction */
}

#ifdef CT_KERNELS_AVX2
/* The 8 dot products of q (HS,) with rows k, k+ld, ..., k+7*ld; HS % 8 == 0.
 * Eight accumulators, then a transpose-and-add tree into one vector. */
static inline __m256 dot8_rows(const float *q, const float *k, size_t ld, int HS) {
    __m256 a[8];
    CT_UNROLL
    for (int r = 0; r < 8; r++) a[r] = _mm256_setzero_ps();
    for (int d = 0; d < HS; d += 8) {
        __m256 qv = _mm256_loadu_ps(q + d);
        CT_UNROLL
        for (int r = 0; r < 8; r++) a[r] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + r * ld + d), a[r]);
    }
    __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}
#endif

/* s[j] = dot(q, k + j*ld) * scale for j in [0, n). */
static void scores_forward(float *s, const float *q, const float *k, size_t ld, int n, int HS, float scale) {
    int j = 0;
#ifdef CT_KERNELS_AVX2
    if (HS % 8 == 0) {
        __m256 sc = _mm256_set1_ps(scale);
        for (; j + 8 <= n; j += 8) _mm256_storeu_ps(s + j, _mm256_mul_ps(dot8_rows(q, k + j * ld, ld, HS), sc));
    }
#endif
    for (; j < n; j++) s[j] = ct__dot_f32(q, k + j * ld, HS) * scale;
}

/* o (HS,) = sum_j w[j] * v[j*ld .. j*ld+HS), accumulating in registers:
 * 64 columns at a time (8 independent FMA chains), then 32, then 8 with
 * four chains over j, so FMA latency never serializes the loop. */
static void wsum_forward(float *o, const float *w, const float *v, size_t ld, int n, int HS) {
    int d = 0;
#ifdef CT_KERNELS_AVX2
    for (; d + 64 <= HS; d += 64) {
        __m256 a[8];
        CT_UNROLL
        for (int r = 0; r < 8; r++) a[r] = _mm256_setzero_ps();
        for (int j = 0; j < n; j++) {
            const float *vj = v + j * ld + d;
            __m256 wj = _mm256_broadcast_ss(w + j);
            CT_UNROLL
            for (int r = 0; r < 8; r++) a[r] = _mm256_fmadd_ps(wj, _mm256_loadu_ps(vj + 8 * r), a[r]);
        }
        CT_UNROLL
        for (int r = 0; r < 8; r++) _mm256_storeu_ps(o + d + 8 * r, a[r]);
    }
    for (; d + 32 <= HS; d += 32) {
        __m256 a[4];
        CT_UNROLL
        for (int r = 0; r < 4; r++) a[r] = _mm256_setzero_ps();
        for (int j = 0; j < n; j++) {
            const float *vj = v + j * ld + d;
            __m256 wj = _mm256_broadcast_ss(w + j);
            CT_UNROLL
            for (int r = 0; r < 4; r++) a[r] = _mm256_fmadd_ps(wj, _mm256_loadu_ps(vj + 8 * r), a[r]);
        }
        CT_UNROLL
        for (int r = 0; r < 4; r++) _mm256_storeu_ps(o + d + 8 * r, a[r]);
    }
    for (; d + 8 <= HS; d += 8) {
        __m256 a[4];
        CT_UNROLL
        for (int r = 0; r < 4; r++) a[r] = _mm256_setzero_ps();
        int j = 0;
        for (; j + 4 <= n; j += 4)
            CT_UNROLL
            for (int r = 0; r < 4; r++)
                a[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(w + j + r), _mm256_loadu_ps(v + (j + r) * ld + d), a[r]);
        for (; j < n; j++) a[0] = _mm256_fmadd_ps(_mm256_broadcast_ss(w + j), _mm256_loadu_ps(v + j * ld + d), a[0]);
        _mm256_storeu_ps(o + d, _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3])));
    }
#endif
    for (; d < HS; d++) {
        float a = 0.0f;
        for (int j = 0; j < n; j++) a += w[j] * v[j * ld + d];
        o[d] = a;
    }
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
        int n = p - j0 + 1;
        float *sc = att + j0;
        scores_forward(sc, qh, kh + (size_t)j0 * kvd, (size_t)kvd, n, HS, scale);
        softmax_inplace(sc, n);
        wsum_forward(a->out + (size_t)t * qd + (size_t)h * HS, sc, vh + (size_t)j0 * kvd, (size_t)kvd, n, HS);
    }
}

void ct__attention_forward(const ct__attn_args *a, ct_pool *pool) {
    ct__pool_run(pool, attention_task, (void *)a);
}

/* ---- activations ------------------------------------------------------------ */

enum { ACT_BLOCK = 256 }; /* elements per stack block for the vector exp */

void ct__swiglu_forward(float *out, const float *gate, const float *up, int N) {
    float e[ACT_BLOCK];
    for (int i0 = 0; i0 < N; i0 += ACT_BLOCK) {
        int n = N - i0 < ACT_BLOCK ? N - i0 : ACT_BLOCK;
        for (int i = 0; i < n; i++) e[i] = -gate[i0 + i];
        ct__exp_inplace(e, n);
        for (int i = 0; i < n; i++) out[i0 + i] = gate[i0 + i] / (1.0f + e[i]) * up[i0 + i];
    }
}

void ct__gelu_forward(float *out, const float *x, int N) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    float e[ACT_BLOCK];
    for (int i0 = 0; i0 < N; i0 += ACT_BLOCK) {
        int n = N - i0 < ACT_BLOCK ? N - i0 : ACT_BLOCK;
        /* tanh(y) = 1 - 2 / (exp(2y) + 1) */
        for (int i = 0; i < n; i++) {
            float v = x[i0 + i];
            e[i] = 2.0f * k * (v + 0.044715f * v * v * v);
        }
        ct__exp_inplace(e, n);
        for (int i = 0; i < n; i++) {
            float v = x[i0 + i];
            out[i0 + i] = 0.5f * v * (2.0f - 2.0f / (e[i] + 1.0f));
        }
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
