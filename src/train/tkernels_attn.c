/* src/train/tkernels_attn.c — causal attention over packed sequences for
 * training: forward (saves the probabilities) and backward (dq, dk, dv).
 * Contract in src/train/tkernels.h.
 *
 * Work units: forward, one (sequence, query head) pair; backward, one
 * (sequence, KV head) pair with all query heads of its group, so the dk/dv
 * rows of a unit belong to it alone. Threads claim units from an atomic
 * counter; a unit's arithmetic does not depend on which thread runs it, so
 * results are bit-identical for every pool size.
 *
 * AVX-512 path: blocks of R = 4 query rows against the keys they can see,
 * as small GEMMs with no horizontal sums: K (and V in the backward) is
 * transposed once per unit into pool scratch, (HS, Lp), so scores are
 * broadcast(q[d]) * K^T[d][j..j+16) FMAs; P V, dS K, dS^T Q and P^T dO are
 * broadcast(p) * row FMAs over HS in chunks of 64. Key columns a block
 * computes but a row cannot see have probability 0, so they add exact zeros.
 * Backward: dP = dO V^T, D_i = sum_j P_ij dP_ij, dS = P (dP - D) / sqrt(HS),
 * dq = dS K, dk += dS^T q, dv += P^T dO.
 * Scalar path (no AVX-512, or pool scratch out of memory): the same maths
 * one (query, key) pair at a time, no scratch.
 * Leaves out: flash-style recomputation (probabilities are stored: the
 * trainer's sequences are short enough), dropout on probabilities, ALiBi. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>
#include "model/kernels.h"
#include "train/tkernels.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#define TK_AVX512 1
#endif

#define CT_UNROLL _Pragma("GCC unroll 8")
enum { R = 4 }; /* query rows per block */

size_t ct__attn_probs_size(const ct__attn_shape *s) {
    size_t tot = 0;
    for (int i = 0; i < s->n_seq; i++) {
        size_t L = (size_t)(s->seq[i + 1] - s->seq[i]);
        tot += L * L;
    }
    return tot * (size_t)s->NH;
}

typedef struct {
    const ct__attn_shape *s;
    float *out, *probs, *dq, *dk, *dv;
    const float *q, *k, *v, *dout, *probs_in;
    ct_pool *pool;
    int maxlen;
    _Atomic int next;
} attn_job;

/* first key a query at position i sees */
static inline int key_lo(int i, int window) { return (window > 0 && i - window + 1 > 0) ? i - window + 1 : 0; }

static size_t probs_off(const ct__attn_shape *s, int seq) {
    size_t off = 0;
    for (int i = 0; i < seq; i++) {
        size_t L = (size_t)(s->seq[i + 1] - s->seq[i]);
        off += L * L;
    }
    return off * (size_t)s->NH;
}

#ifdef TK_AVX512
static inline __mmask16 tmask(int r) { return r >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << r) - 1u); }
#endif

/* p[0..n) = softmax(p[0..n)) in place, n >= 1 */
static void softmax_span(float *p, int n) {
    int j = 0;
    float mx = p[0], sum = 0.0f;
#ifdef TK_AVX512
    __m512 m = _mm512_set1_ps(p[0]);
    for (; j < n; j += 16) m = _mm512_mask_max_ps(m, tmask(n - j), m, _mm512_maskz_loadu_ps(tmask(n - j), p + j));
    mx = _mm512_reduce_max_ps(m);
    __m512 vm = _mm512_set1_ps(mx);
    for (j = 0; j < n; j += 16) {
        __mmask16 k = tmask(n - j);
        _mm512_mask_storeu_ps(p + j, k, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, p + j), vm));
    }
    ct__exp_inplace(p, n);
    __m512 a = _mm512_setzero_ps();
    for (j = 0; j < n; j += 16) a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(tmask(n - j), p + j));
    sum = _mm512_reduce_add_ps(a);
    __m512 inv = _mm512_set1_ps(1.0f / sum);
    for (j = 0; j < n; j += 16) {
        __mmask16 k = tmask(n - j);
        _mm512_mask_storeu_ps(p + j, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + j), inv));
    }
    return;
#endif
    for (j = 1; j < n; j++) mx = p[j] > mx ? p[j] : mx;
    for (j = 0; j < n; j++) p[j] -= mx;
    ct__exp_inplace(p, n);
    for (j = 0; j < n; j++) sum += p[j];
    float inv1 = 1.0f / sum;
    for (j = 0; j < n; j++) p[j] *= inv1;
}

/* ---- scalar path ------------------------------------------------------------ */

static void fwd_unit_scalar(const attn_job *J, int sq, int h) {
    const ct__attn_shape *s = J->s;
    const int HS = s->HS, base = s->seq[sq], L = s->seq[sq + 1] - base, g = h / (s->NH / s->NKV);
    const float scale = 1.0f / sqrtf((float)HS);
    float *P = J->probs + probs_off(s, sq) + (size_t)h * L * L;
    for (int i = 0; i < L; i++) {
        const float *qi = J->q + (size_t)(base + i) * s->q_ld + (size_t)h * HS;
        float *pi = P + (size_t)i * L, *oi = J->out + (size_t)(base + i) * s->out_ld + (size_t)h * HS;
        int lo = key_lo(i, s->window);
        memset(pi, 0, (size_t)L * sizeof *pi);
        for (int j = lo; j <= i; j++)
            pi[j] = ct__dot_f32(qi, J->k + (size_t)(base + j) * s->kv_ld + (size_t)g * HS, HS) * scale;
        softmax_span(pi + lo, i - lo + 1);
        memset(oi, 0, (size_t)HS * sizeof *oi);
        for (int j = lo; j <= i; j++) ct__axpy_f32(oi, pi[j], J->v + (size_t)(base + j) * s->kv_ld + (size_t)g * HS, HS);
    }
}

static void bwd_unit_scalar(const attn_job *J, int sq, int g) {
    const ct__attn_shape *s = J->s;
    const int HS = s->HS, base = s->seq[sq], L = s->seq[sq + 1] - base, grp = s->NH / s->NKV;
    const float scale = 1.0f / sqrtf((float)HS);
    for (int i = 0; i < L; i++) {
        memset(J->dk + (size_t)(base + i) * s->kv_ld + (size_t)g * HS, 0, (size_t)HS * sizeof(float));
        memset(J->dv + (size_t)(base + i) * s->kv_ld + (size_t)g * HS, 0, (size_t)HS * sizeof(float));
    }
    for (int h = g * grp; h < (g + 1) * grp; h++) {
        const float *P = J->probs_in + probs_off(s, sq) + (size_t)h * L * L;
        for (int i = 0; i < L; i++) {
            const float *pi = P + (size_t)i * L, *qi = J->q + (size_t)(base + i) * s->q_ld + (size_t)h * HS;
            const float *doi = J->dout + (size_t)(base + i) * s->out_ld + (size_t)h * HS;
            float *dqi = J->dq + (size_t)(base + i) * s->q_ld + (size_t)h * HS;
            int lo = key_lo(i, s->window);
            float D = 0.0f;
            for (int j = lo; j <= i; j++)
                D += pi[j] * ct__dot_f32(doi, J->v + (size_t)(base + j) * s->kv_ld + (size_t)g * HS, HS);
            memset(dqi, 0, (size_t)HS * sizeof *dqi);
            for (int j = lo; j <= i; j++) {
                size_t kj = (size_t)(base + j) * s->kv_ld + (size_t)g * HS;
                float dp = ct__dot_f32(doi, J->v + kj, HS), ds = pi[j] * (dp - D) * scale;
                ct__axpy_f32(dqi, ds, J->k + kj, HS);
                ct__axpy_f32(J->dk + kj, ds, qi, HS);
                ct__axpy_f32(J->dv + kj, pi[j], doi, HS);
            }
        }
    }
}

#ifdef TK_AVX512
/* ---- AVX-512 tiles ------------------------------------------------------------ */

/* S[r*lds + j] = scale * sum_d Q[r*ldq + d] * KT[d*ldk + j], r < nr (<= R),
 * j in [j0, j1), j0 and j1 multiples of 16, j1 <= ldk. */
static void tile_qkt(float *S, int lds, const float *Q, int ldq, int nr, const float *KT, int ldk, int j0, int j1,
                     int HS, float scale) {
    const float *qr[R];
    for (int r = 0; r < R; r++) qr[r] = Q + (size_t)(r < nr ? r : nr - 1) * ldq;
    const __m512 vs = _mm512_set1_ps(scale);
    int j = j0;
    for (; j + 32 <= j1; j += 32) {
        __m512 a[R][2];
        CT_UNROLL
        for (int r = 0; r < R; r++) a[r][0] = a[r][1] = _mm512_setzero_ps();
        for (int d = 0; d < HS; d++) {
            __m512 k0 = _mm512_loadu_ps(KT + (size_t)d * ldk + j), k1 = _mm512_loadu_ps(KT + (size_t)d * ldk + j + 16);
            CT_UNROLL
            for (int r = 0; r < R; r++) {
                __m512 qb = _mm512_set1_ps(qr[r][d]);
                a[r][0] = _mm512_fmadd_ps(qb, k0, a[r][0]);
                a[r][1] = _mm512_fmadd_ps(qb, k1, a[r][1]);
            }
        }
        for (int r = 0; r < nr; r++) {
            _mm512_storeu_ps(S + (size_t)r * lds + j, _mm512_mul_ps(a[r][0], vs));
            _mm512_storeu_ps(S + (size_t)r * lds + j + 16, _mm512_mul_ps(a[r][1], vs));
        }
    }
    for (; j < j1; j += 16) {
        __m512 a[R];
        CT_UNROLL
        for (int r = 0; r < R; r++) a[r] = _mm512_setzero_ps();
        for (int d = 0; d < HS; d++) {
            __m512 k0 = _mm512_loadu_ps(KT + (size_t)d * ldk + j);
            CT_UNROLL
            for (int r = 0; r < R; r++) a[r] = _mm512_fmadd_ps(_mm512_set1_ps(qr[r][d]), k0, a[r]);
        }
        for (int r = 0; r < nr; r++) _mm512_storeu_ps(S + (size_t)r * lds + j, _mm512_mul_ps(a[r], vs));
    }
}

/* O[r*ldo + d] = sum_{j in [j0, j1)} P[r*ldp + j] * V[j*ldv + d], d in [0, HS),
 * r < nr: one chunk of NV (<= 4) vectors, columns [d0, d0 + 16*NV), lanes
 * past HS masked. */
static inline __attribute__((always_inline)) void pv_chunk(float *O, int ldo, const float *const *pr, int nr,
                                                         const float *V, int ldv, int j0, int j1, int d0, int HS,
                                                         const int NV) {
    __m512 a[R][4];
    __mmask16 m[4];
    CT_UNROLL
    for (int c = 0; c < NV; c++) m[c] = tmask(HS - d0 - 16 * c);
    CT_UNROLL
    for (int r = 0; r < R; r++)
        CT_UNROLL
        for (int c = 0; c < NV; c++) a[r][c] = _mm512_setzero_ps();
    for (int j = j0; j < j1; j++) {
        __m512 vv[4];
        CT_UNROLL
        for (int c = 0; c < NV; c++) vv[c] = _mm512_maskz_loadu_ps(m[c], V + (size_t)j * ldv + d0 + 16 * c);
        CT_UNROLL
        for (int r = 0; r < R; r++) {
            __m512 pb = _mm512_set1_ps(pr[r][j]);
            CT_UNROLL
            for (int c = 0; c < NV; c++) a[r][c] = _mm512_fmadd_ps(pb, vv[c], a[r][c]);
        }
    }
    for (int r = 0; r < nr; r++)
        CT_UNROLL
        for (int c = 0; c < NV; c++) _mm512_mask_storeu_ps(O + (size_t)r * ldo + d0 + 16 * c, m[c], a[r][c]);
}

static void tile_pv(float *O, int ldo, const float *P, int ldp, int nr, const float *V, int ldv, int j0, int j1,
                    int HS) {
    const float *pr[R];
    for (int r = 0; r < R; r++) pr[r] = P + (size_t)(r < nr ? r : nr - 1) * ldp;
    for (int d0 = 0; d0 < HS; d0 += 64) {
        int nv = (HS - d0 + 15) / 16;
        if (nv >= 4) pv_chunk(O, ldo, pr, nr, V, ldv, j0, j1, d0, HS, 4);
        else if (nv == 3) pv_chunk(O, ldo, pr, nr, V, ldv, j0, j1, d0, HS, 3);
        else if (nv == 2) pv_chunk(O, ldo, pr, nr, V, ldv, j0, j1, d0, HS, 2);
        else pv_chunk(O, ldo, pr, nr, V, ldv, j0, j1, d0, HS, 1);
    }
}

/* Dst[j*ldd + d] += sum_{r < nr} P[r*ldp + j] * X[r*ldx + d], j in [j0, j1):
 * the rows of X held in registers (rows past nr are zero), one chunk. */
static inline __attribute__((always_inline)) void ptx_chunk(float *Dst, int ldd, const float *const *pr,
                                                          const float *X, int ldx, int nr, int j0, int j1, int d0,
                                                          int HS, const int NV) {
    __m512 x[R][4];
    __mmask16 m[4];
    CT_UNROLL
    for (int c = 0; c < NV; c++) m[c] = tmask(HS - d0 - 16 * c);
    CT_UNROLL
    for (int r = 0; r < R; r++)
        CT_UNROLL
        for (int c = 0; c < NV; c++)
            x[r][c] = r < nr ? _mm512_maskz_loadu_ps(m[c], X + (size_t)r * ldx + d0 + 16 * c) : _mm512_setzero_ps();
    for (int j = j0; j < j1; j++) {
        float *dj = Dst + (size_t)j * ldd + d0;
        __m512 acc[4];
        CT_UNROLL
        for (int c = 0; c < NV; c++) acc[c] = _mm512_maskz_loadu_ps(m[c], dj + 16 * c);
        CT_UNROLL
        for (int r = 0; r < R; r++) {
            __m512 pb = _mm512_set1_ps(pr[r][j]);
            CT_UNROLL
            for (int c = 0; c < NV; c++) acc[c] = _mm512_fmadd_ps(pb, x[r][c], acc[c]);
        }
        CT_UNROLL
        for (int c = 0; c < NV; c++) _mm512_mask_storeu_ps(dj + 16 * c, m[c], acc[c]);
    }
}

static void tile_ptx(float *Dst, int ldd, const float *P, int ldp, const float *X, int ldx, int nr, int j0, int j1,
                     int HS) {
    const float *pr[R];
    for (int r = 0; r < R; r++) pr[r] = P + (size_t)(r < nr ? r : nr - 1) * ldp;
    for (int d0 = 0; d0 < HS; d0 += 64) {
        int nv = (HS - d0 + 15) / 16;
        if (nv >= 4) ptx_chunk(Dst, ldd, pr, X, ldx, nr, j0, j1, d0, HS, 4);
        else if (nv == 3) ptx_chunk(Dst, ldd, pr, X, ldx, nr, j0, j1, d0, HS, 3);
        else if (nv == 2) ptx_chunk(Dst, ldd, pr, X, ldx, nr, j0, j1, d0, HS, 2);
        else ptx_chunk(Dst, ldd, pr, X, ldx, nr, j0, j1, d0, HS, 1);
    }
}

/* KT (HS, Lp) = transpose of the L rows src[j*ld .. +HS), columns >= L zero */
static void transpose_in(float *KT, int Lp, const float *src, int ld, int L, int HS) {
    for (int d = 0; d < HS; d++) memset(KT + (size_t)d * Lp + L, 0, (size_t)(Lp - L) * sizeof *KT);
    for (int j = 0; j < L; j++)
        for (int d = 0; d < HS; d++) KT[(size_t)d * Lp + j] = src[(size_t)j * ld + d];
}

static inline int lpad(int L) { return (L + 15) & ~15; }

/* scratch floats per task: K^T or V^T (HS, Lp) and an (R, Lp) tile */
static size_t scratch_floats(const ct__attn_shape *s, int maxlen) {
    return (size_t)(s->HS + R) * (size_t)lpad(maxlen);
}

static void fwd_unit_vec(const attn_job *J, int sq, int h, float *scr) {
    const ct__attn_shape *s = J->s;
    const int HS = s->HS, base = s->seq[sq], L = s->seq[sq + 1] - base, g = h / (s->NH / s->NKV), Lp = lpad(L);
    const float scale = 1.0f / sqrtf((float)HS);
    float *KT = scr, *S = scr + (size_t)HS * Lp;
    float *P = J->probs + probs_off(s, sq) + (size_t)h * L * L;
    const float *kb = J->k + (size_t)base * s->kv_ld + (size_t)g * HS, *vb = J->v + (size_t)base * s->kv_ld + (size_t)g * HS;
    transpose_in(KT, Lp, kb, s->kv_ld, L, HS);
    for (int i0 = 0; i0 < L; i0 += R) {
        int nr = L - i0 < R ? L - i0 : R, jhi = i0 + nr, jlo = key_lo(i0, s->window) & ~15;
        const float *qb = J->q + (size_t)(base + i0) * s->q_ld + (size_t)h * HS;
        tile_qkt(S, Lp, qb, s->q_ld, nr, KT, Lp, jlo, lpad(jhi), HS, scale);
        for (int r = 0; r < nr; r++) {
            int i = i0 + r, lo = key_lo(i, s->window);
            float *pi = P + (size_t)i * L;
            memset(pi, 0, (size_t)lo * sizeof *pi);
            memcpy(pi + lo, S + (size_t)r * Lp + lo, (size_t)(i - lo + 1) * sizeof *pi);
            memset(pi + i + 1, 0, (size_t)(L - i - 1) * sizeof *pi);
            softmax_span(pi + lo, i - lo + 1);
        }
        tile_pv(J->out + (size_t)(base + i0) * s->out_ld + (size_t)h * HS, s->out_ld, P + (size_t)i0 * L, L, nr, vb,
                s->kv_ld, jlo, jhi, HS);
    }
}

static void bwd_unit_vec(const attn_job *J, int sq, int g, float *scr) {
    const ct__attn_shape *s = J->s;
    const int HS = s->HS, base = s->seq[sq], L = s->seq[sq + 1] - base, grp = s->NH / s->NKV, Lp = lpad(L);
    const float scale = 1.0f / sqrtf((float)HS);
    float *VT = scr, *T = scr + (size_t)HS * Lp;
    const size_t kvo = (size_t)base * s->kv_ld + (size_t)g * HS;
    float *dkb = J->dk + kvo, *dvb = J->dv + kvo;
    for (int i = 0; i < L; i++) {
        memset(dkb + (size_t)i * s->kv_ld, 0, (size_t)HS * sizeof(float));
        memset(dvb + (size_t)i * s->kv_ld, 0, (size_t)HS * sizeof(float));
    }
    transpose_in(VT, Lp, J->v + kvo, s->kv_ld, L, HS);
    for (int h = g * grp; h < (g + 1) * grp; h++) {
        const float *P = J->probs_in + probs_off(s, sq) + (size_t)h * L * L;
        for (int i0 = 0; i0 < L; i0 += R) {
            int nr = L - i0 < R ? L - i0 : R, jhi = i0 + nr, jlo = key_lo(i0, s->window) & ~15;
            size_t qo = (size_t)(base + i0) * s->q_ld + (size_t)h * HS;
            const float *dob = J->dout + (size_t)(base + i0) * s->out_ld + (size_t)h * HS;
            /* T = dP = dO V^T, then dS = P (dP - D) * scale in place */
            tile_qkt(T, Lp, dob, s->out_ld, nr, VT, Lp, jlo, lpad(jhi), HS, 1.0f);
            for (int r = 0; r < nr; r++) {
                const float *pi = P + (size_t)(i0 + r) * L;
                float *ti = T + (size_t)r * Lp;
                __m512 a = _mm512_setzero_ps();
                for (int j = jlo; j < jhi; j += 16) {
                    __mmask16 k = tmask(jhi - j);
                    a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, pi + j), _mm512_maskz_loadu_ps(k, ti + j), a);
                }
                __m512 D = _mm512_set1_ps(_mm512_reduce_add_ps(a)), vs = _mm512_set1_ps(scale);
                for (int j = jlo; j < jhi; j += 16) {
                    __mmask16 k = tmask(jhi - j);
                    __m512 ds = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, pi + j), _mm512_sub_ps(_mm512_maskz_loadu_ps(k, ti + j), D));
                    _mm512_mask_storeu_ps(ti + j, k, _mm512_mul_ps(ds, vs));
                }
            }
            tile_pv(J->dq + qo, s->q_ld, T, Lp, nr, J->k + kvo, s->kv_ld, jlo, jhi, HS);
            tile_ptx(dkb, s->kv_ld, T, Lp, J->q + qo, s->q_ld, nr, jlo, jhi, HS);
            tile_ptx(dvb, s->kv_ld, P + (size_t)i0 * L, L, dob, s->out_ld, nr, jlo, jhi, HS);
        }
    }
}
#endif /* TK_AVX512 */

/* ---- drivers ------------------------------------------------------------------ */

static void attn_task(void *ctx, int ith, int nth, int bwd) {
    attn_job *J = ctx;
    const ct__attn_shape *s = J->s;
    const int heads = bwd ? s->NKV : s->NH, units = s->n_seq * heads;
    float *scr = NULL;
    (void)scr;
#ifdef TK_AVX512
    scr = ct__pool_scratch(J->pool, ith, scratch_floats(s, J->maxlen) * sizeof(float));
#endif
    (void)nth;
    for (int u; (u = atomic_fetch_add(&J->next, 1)) < units;) {
        int sq = u / heads, h = u % heads;
        if (s->seq[sq + 1] <= s->seq[sq]) continue;
#ifdef TK_AVX512
        if (scr) {
            if (bwd) bwd_unit_vec(J, sq, h, scr);
            else fwd_unit_vec(J, sq, h, scr);
            continue;
        }
#endif
        if (bwd) bwd_unit_scalar(J, sq, h);
        else fwd_unit_scalar(J, sq, h);
    }
}

static void fwd_task(void *ctx, int ith, int nth) { attn_task(ctx, ith, nth, 0); }
static void bwd_task(void *ctx, int ith, int nth) { attn_task(ctx, ith, nth, 1); }

static int max_len(const ct__attn_shape *s) {
    int m = 0;
    for (int i = 0; i < s->n_seq; i++) m = s->seq[i + 1] - s->seq[i] > m ? s->seq[i + 1] - s->seq[i] : m;
    return m;
}

void ct__attention_fwd(float *out, float *probs, const float *q, const float *k, const float *v,
                       const ct__attn_shape *s, ct_pool *pool) {
    attn_job J = {.s = s, .out = out, .probs = probs, .q = q, .k = k, .v = v, .pool = pool, .maxlen = max_len(s)};
    atomic_init(&J.next, 0);
    ct__pool_run(pool, fwd_task, &J);
}

void ct__attention_bwd(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                       const float *k, const float *v, const ct__attn_shape *s, ct_pool *pool) {
    attn_job J = {.s = s, .dq = dq, .dk = dk, .dv = dv, .dout = dout, .probs_in = probs, .q = q, .k = k, .v = v,
                  .pool = pool, .maxlen = max_len(s)};
    atomic_init(&J.next, 0);
    ct__pool_run(pool, bwd_task, &J);
}
