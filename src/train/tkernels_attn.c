/* src/train/tkernels_attn.c — causal attention over packed sequences for
 * training: forward (saves the probabilities) and backward (dq, dk, dv).
 * Contract in src/train/tkernels.h.
 *
 * Work units: forward, one (sequence, query head) pair; backward, one
 * (sequence, KV head) pair with all query heads of its group, so the dk/dv
 * rows of a unit belong to it alone. Threads claim units from an atomic
 * counter, longest sequences first; a unit's arithmetic does not depend on which thread runs it, so
 * results are bit-identical for every pool size.
 *
 * AVX-512 path: blocks of R = 8 query rows against the keys they can see
 * (key columns past the block's last row are skipped), as small
 * register-blocked GEMMs with no horizontal sums: K (forward) or V (backward)
 * is transposed once per unit into pool scratch, (HS, Lp), so scores are
 * broadcast(q[d]) * K^T[d][j..j+32) FMAs (8x2 vectors of accumulators); P V,
 * dS K, dS^T Q and P^T dO are broadcast(p) * row FMAs over HS in chunks of 32.
 * The rows those products stream (V; K, and the dK, dV accumulators in the
 * backward) are first copied into contiguous (L, HS) scratch: read in place,
 * their row stride (GPT-2: 3*768 floats) maps every row to the same few L1
 * sets. Key columns a block computes but a row cannot see have probability
 * 0, so they add exact zeros. Softmax: max, exp (an AVX-512 exp, the same
 * polynomial as ct__exp_inplace), sum, then each probability row written once.
 * Backward: dP = dO V^T, D_i = sum_j P_ij dP_ij, dS = P (dP - D) / sqrt(HS),
 * dq = dS K, dk += dS^T q, dv += P^T dO (rows added in query order).
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
enum { R = 8 }; /* query rows per block */

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
    const int *order; /* sequences longest first (NULL: in order) */
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
 * j in [j, j + 16*NJ): one register block of R rows by NJ (<= 2) vectors. */
static inline __attribute__((always_inline)) void qkt_block(float *S, int lds, const float *qc, int nr,
                                                          const float *KT, int ldk, int j, int HS, __m512 vs,
                                                          const int NJ) {
    __m512 a0[R], a1[R]; /* two arrays, not a[R][2]: gcc 12 then keeps the K vectors in registers */
    CT_UNROLL
    for (int r = 0; r < R; r++) a0[r] = a1[r] = _mm512_setzero_ps();
    for (int d = 0; d < HS; d++) {
        const float *kd = KT + (size_t)d * ldk + j;
        __m512 k0 = _mm512_loadu_ps(kd), k1 = NJ > 1 ? _mm512_loadu_ps(kd + 16) : k0;
        CT_UNROLL
        for (int r = 0; r < R; r++) {
            __m512 qb = _mm512_set1_ps(qc[r * HS + d]);
            a0[r] = _mm512_fmadd_ps(qb, k0, a0[r]);
            if (NJ > 1) a1[r] = _mm512_fmadd_ps(qb, k1, a1[r]);
        }
    }
    CT_UNROLL /* constant indices keep the accumulators in registers */
    for (int r = 0; r < R; r++)
        if (r < nr) {
            _mm512_storeu_ps(S + (size_t)r * lds + j, _mm512_mul_ps(a0[r], vs));
            if (NJ > 1) _mm512_storeu_ps(S + (size_t)r * lds + j + 16, _mm512_mul_ps(a1[r], vs));
        }
}

/* the same for j in [j0, j1), j0 and j1 multiples of 16, j1 <= ldk; qc: (R, HS) scratch */
static void tile_qkt(float *S, int lds, const float *Q, int ldq, int nr, const float *KT, int ldk, int j0, int j1,
                     int HS, float scale, float *qc) {
    /* qc (R, HS): the nr rows of Q, contiguous (rows past nr repeat the last):
     * fewer live pointers, so gcc keeps the K vectors in registers */
    for (int r = 0; r < R; r++) memcpy(qc + r * HS, Q + (size_t)(r < nr ? r : nr - 1) * ldq, (size_t)HS * sizeof *qc);
    const __m512 vs = _mm512_set1_ps(scale);
    int j = j0;
    for (; j + 32 <= j1; j += 32) qkt_block(S, lds, qc, nr, KT, ldk, j, HS, vs, 2);
    if (j < j1) qkt_block(S, lds, qc, nr, KT, ldk, j, HS, vs, 1);
}

/* O[r*ldo + d] = sum_{j in [j0, j1)} P[r*ldp + j] * V[j*ldv + d], r < nr:
 * one chunk of NV (<= 2) vectors, columns [d0, d0 + 16*NV), lanes past HS
 * masked. */
static inline __attribute__((always_inline)) void pv_chunk(float *O, int ldo, const float *const *pr, int nr,
                                                         const float *V, int ldv, int j0, int j1, int d0, int HS,
                                                         const int NV) {
    __m512 a[R][2];
    __mmask16 m[2];
    CT_UNROLL
    for (int c = 0; c < NV; c++) m[c] = tmask(HS - d0 - 16 * c);
    CT_UNROLL
    for (int r = 0; r < R; r++)
        CT_UNROLL
        for (int c = 0; c < NV; c++) a[r][c] = _mm512_setzero_ps();
    for (int j = j0; j < j1; j++) {
        __m512 vv[2];
        CT_UNROLL
        for (int c = 0; c < NV; c++) vv[c] = _mm512_maskz_loadu_ps(m[c], V + (size_t)j * ldv + d0 + 16 * c);
        CT_UNROLL
        for (int r = 0; r < R; r++) {
            __m512 pb = _mm512_set1_ps(pr[r][j]);
            CT_UNROLL
            for (int c = 0; c < NV; c++) a[r][c] = _mm512_fmadd_ps(pb, vv[c], a[r][c]);
        }
    }
    CT_UNROLL /* constant indices keep a[][] in registers */
    for (int r = 0; r < R; r++)
        if (r < nr)
            CT_UNROLL
            for (int c = 0; c < NV; c++) _mm512_mask_storeu_ps(O + (size_t)r * ldo + d0 + 16 * c, m[c], a[r][c]);
}

static void tile_pv(float *O, int ldo, const float *P, int ldp, int nr, const float *V, int ldv, int j0, int j1,
                    int HS) {
    const float *pr[R];
    for (int r = 0; r < R; r++) pr[r] = P + (size_t)(r < nr ? r : nr - 1) * ldp;
    for (int d0 = 0; d0 < HS; d0 += 32) {
        if (HS - d0 > 16) pv_chunk(O, ldo, pr, nr, V, ldv, j0, j1, d0, HS, 2);
        else pv_chunk(O, ldo, pr, nr, V, ldv, j0, j1, d0, HS, 1);
    }
}

/* Dst[j*ldd + d] += sum_{r < nr} P[r*ldp + j] * X[r*ldx + d], j in [j0, j1):
 * the rows of X held in registers (rows past nr are zero), one chunk of NV
 * (<= 2) vectors. Rows are added to Dst in order r = 0, 1, ... */
static inline __attribute__((always_inline)) void ptx_chunk(float *Dst, int ldd, const float *const *pr,
                                                          const float *X, int ldx, int nr, int j0, int j1, int d0,
                                                          int HS, const int NV) {
    __m512 x[R][2];
    __mmask16 m[2];
    CT_UNROLL
    for (int c = 0; c < NV; c++) m[c] = tmask(HS - d0 - 16 * c);
    CT_UNROLL
    for (int r = 0; r < R; r++)
        CT_UNROLL
        for (int c = 0; c < NV; c++)
            x[r][c] = r < nr ? _mm512_maskz_loadu_ps(m[c], X + (size_t)r * ldx + d0 + 16 * c) : _mm512_setzero_ps();
    for (int j = j0; j < j1; j++) {
        float *dj = Dst + (size_t)j * ldd + d0;
        __m512 acc[2];
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
    for (int d0 = 0; d0 < HS; d0 += 32) {
        if (HS - d0 > 16) ptx_chunk(Dst, ldd, pr, X, ldx, nr, j0, j1, d0, HS, 2);
        else ptx_chunk(Dst, ldd, pr, X, ldx, nr, j0, j1, d0, HS, 1);
    }
}

/* Columns [d, d+16) of rows j..j+15 of src, transposed into KT[(d+c)*Lp + j + r]:
 * an in-register 16x16 transpose (4x4 blocks within 128-bit lanes, then lanes). */
static inline void transpose16(float *KT, int Lp, const float *src, int ld) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + (size_t)i * ld);
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) { /* r[4i+c]: lane l holds column 4l+c of rows 4i..4i+3 */
        r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        __m512 v0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88), v1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD);
        __m512 w0 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88), w1 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);
        _mm512_storeu_ps(KT + (size_t)(c + 0) * Lp, _mm512_shuffle_f32x4(v0, w0, 0x88));
        _mm512_storeu_ps(KT + (size_t)(c + 4) * Lp, _mm512_shuffle_f32x4(v1, w1, 0x88));
        _mm512_storeu_ps(KT + (size_t)(c + 8) * Lp, _mm512_shuffle_f32x4(v0, w0, 0xDD));
        _mm512_storeu_ps(KT + (size_t)(c + 12) * Lp, _mm512_shuffle_f32x4(v1, w1, 0xDD));
    }
}

/* KT (HS, Lp) = transpose of the L rows src[j*ld .. +HS), columns >= L zero */
static void transpose_in(float *KT, int Lp, const float *src, int ld, int L, int HS) {
    for (int d = 0; d < HS; d++) memset(KT + (size_t)d * Lp + L, 0, (size_t)(Lp - L) * sizeof *KT);
    int j = 0;
    if (HS % 16 == 0)
        for (; j + 16 <= L; j += 16)
            for (int d = 0; d < HS; d += 16) transpose16(KT + (size_t)d * Lp + j, Lp, src + (size_t)j * ld + d, ld);
    for (; j < L; j++)
        for (int d = 0; d < HS; d++) KT[(size_t)d * Lp + j] = src[(size_t)j * ld + d];
}

/* Dst (L, HS) contiguous = the L rows src[j*ld .. +HS) */
static void copy_rows(float *Dst, const float *src, int ld, int L, int HS) {
    for (int j = 0; j < L; j++) memcpy(Dst + (size_t)j * HS, src + (size_t)j * ld, (size_t)HS * sizeof *Dst);
}

static inline int lpad(int L) { return (L + 15) & ~15; }

/* scratch floats per task: K^T or V^T (HS, Lp), an (R, Lp) tile, three
 * contiguous (Lp, HS) row blocks (forward: V; backward: K, dK, dV) and an
 * (R, HS) block of query rows */
static size_t scratch_floats(const ct__attn_shape *s, int maxlen) {
    return (size_t)(s->HS + R) * (size_t)lpad(maxlen) + (3 * (size_t)lpad(maxlen) + R) * (size_t)s->HS;
}

/* e^x for x <= 0 (16 lanes): 2^k e^r, k = round(x log2 e), r = x - k ln 2
 * (two-part ln 2), e^r by its degree-7 Taylor polynomial; x < -87.3 gives 0. */
static inline __m512 exp_neg16(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-87.3f);
    __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    x = _mm512_max_ps(x, lo);
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps((__mmask16)~under, p, k);
}

/* pi[0..L) = the probability row of query i from its scores si (visible keys
 * [lo, i]): softmax there, zeros elsewhere. si is overwritten (exp values);
 * pi is written once. */
static void softmax_row(float *pi, float *si, int lo, int i, int L) {
    const int n = i - lo + 1;
    float *x = si + lo;
    __m512 m = _mm512_set1_ps(x[0]);
    for (int j = 0; j < n; j += 16) m = _mm512_mask_max_ps(m, tmask(n - j), m, _mm512_maskz_loadu_ps(tmask(n - j), x + j));
    __m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(m)), a = _mm512_setzero_ps();
    for (int j = 0; j < n; j += 16) {
        __mmask16 k = tmask(n - j);
        __m512 e = _mm512_maskz_mov_ps(k, exp_neg16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + j), vm)));
        _mm512_mask_storeu_ps(x + j, k, e);
        a = _mm512_add_ps(a, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(a));
    memset(pi, 0, (size_t)lo * sizeof *pi);
    for (int j = 0; j < n; j += 16) {
        __mmask16 k = tmask(n - j);
        _mm512_mask_storeu_ps(pi + lo + j, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + j), inv));
    }
    memset(pi + i + 1, 0, (size_t)(L - i - 1) * sizeof *pi);
}

static void fwd_unit_vec(const attn_job *J, int sq, int h, float *scr) {
    const ct__attn_shape *s = J->s;
    const int HS = s->HS, base = s->seq[sq], L = s->seq[sq + 1] - base, g = h / (s->NH / s->NKV), Lp = lpad(L);
    const float scale = 1.0f / sqrtf((float)HS);
    float *KT = scr, *S = KT + (size_t)HS * Lp, *Vc = S + (size_t)R * Lp, *qc = Vc + (size_t)Lp * HS;
    float *P = J->probs + probs_off(s, sq) + (size_t)h * L * L;
    const float *kb = J->k + (size_t)base * s->kv_ld + (size_t)g * HS, *vb = J->v + (size_t)base * s->kv_ld + (size_t)g * HS;
    transpose_in(KT, Lp, kb, s->kv_ld, L, HS);
    copy_rows(Vc, vb, s->kv_ld, L, HS);
    for (int i0 = 0; i0 < L; i0 += R) {
        int nr = L - i0 < R ? L - i0 : R, jhi = i0 + nr, jlo = key_lo(i0, s->window) & ~15;
        const float *qb = J->q + (size_t)(base + i0) * s->q_ld + (size_t)h * HS;
        tile_qkt(S, Lp, qb, s->q_ld, nr, KT, Lp, jlo, lpad(jhi), HS, scale, qc);
        for (int r = 0; r < nr; r++) {
            int i = i0 + r, lo = key_lo(i, s->window);
            softmax_row(P + (size_t)i * L, S + (size_t)r * Lp, lo, i, L);
        }
        tile_pv(J->out + (size_t)(base + i0) * s->out_ld + (size_t)h * HS, s->out_ld, P + (size_t)i0 * L, L, nr, Vc,
                HS, jlo, jhi, HS);
    }
}

static void bwd_unit_vec(const attn_job *J, int sq, int g, float *scr) {
    const ct__attn_shape *s = J->s;
    const int HS = s->HS, base = s->seq[sq], L = s->seq[sq + 1] - base, grp = s->NH / s->NKV, Lp = lpad(L);
    const float scale = 1.0f / sqrtf((float)HS);
    float *VT = scr, *T = VT + (size_t)HS * Lp, *Kc = T + (size_t)R * Lp, *dKc = Kc + (size_t)Lp * HS,
          *dVc = dKc + (size_t)Lp * HS, *qc = dVc + (size_t)Lp * HS;
    const size_t kvo = (size_t)base * s->kv_ld + (size_t)g * HS;
    memset(dKc, 0, (size_t)L * HS * sizeof *dKc);
    memset(dVc, 0, (size_t)L * HS * sizeof *dVc);
    transpose_in(VT, Lp, J->v + kvo, s->kv_ld, L, HS);
    copy_rows(Kc, J->k + kvo, s->kv_ld, L, HS);
    for (int h = g * grp; h < (g + 1) * grp; h++) {
        const float *P = J->probs_in + probs_off(s, sq) + (size_t)h * L * L;
        for (int i0 = 0; i0 < L; i0 += R) {
            int nr = L - i0 < R ? L - i0 : R, jhi = i0 + nr, jlo = key_lo(i0, s->window) & ~15;
            size_t qo = (size_t)(base + i0) * s->q_ld + (size_t)h * HS;
            const float *dob = J->dout + (size_t)(base + i0) * s->out_ld + (size_t)h * HS;
            /* T = dP = dO V^T, then dS = P (dP - D) * scale in place */
            tile_qkt(T, Lp, dob, s->out_ld, nr, VT, Lp, jlo, lpad(jhi), HS, 1.0f, qc);
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
            tile_pv(J->dq + qo, s->q_ld, T, Lp, nr, Kc, HS, jlo, jhi, HS);
            tile_ptx(dKc, HS, T, Lp, J->q + qo, s->q_ld, nr, jlo, jhi, HS);
            tile_ptx(dVc, HS, P + (size_t)i0 * L, L, dob, s->out_ld, nr, jlo, jhi, HS);
        }
    }
    for (int i = 0; i < L; i++) {
        memcpy(J->dk + kvo + (size_t)i * s->kv_ld, dKc + (size_t)i * HS, (size_t)HS * sizeof(float));
        memcpy(J->dv + kvo + (size_t)i * s->kv_ld, dVc + (size_t)i * HS, (size_t)HS * sizeof(float));
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
        int sq = J->order ? J->order[u / heads] : u / heads, h = u % heads;
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

/* Longest sequences first, so the last units claimed are the short ones and
 * threads finish together (a unit costs ~len^2). Up to MAX_ORDER sequences;
 * more: in order. order: (n_seq) */
enum { MAX_ORDER = 512 };
static const int *seq_order(const ct__attn_shape *s, int *order) {
    if (s->n_seq > MAX_ORDER) return NULL;
    for (int i = 0; i < s->n_seq; i++) { /* stable insertion sort by length, descending */
        int L = s->seq[i + 1] - s->seq[i], j = i;
        for (; j > 0 && s->seq[order[j - 1] + 1] - s->seq[order[j - 1]] < L; j--) order[j] = order[j - 1];
        order[j] = i;
    }
    return order;
}

void ct__attention_fwd(float *out, float *probs, const float *q, const float *k, const float *v,
                       const ct__attn_shape *s, ct_pool *pool) {
    int order[MAX_ORDER];
    attn_job J = {.s = s, .out = out, .probs = probs, .q = q, .k = k, .v = v, .pool = pool, .maxlen = max_len(s),
                  .order = seq_order(s, order)};
    atomic_init(&J.next, 0);
    ct__pool_run(pool, fwd_task, &J);
}

void ct__attention_bwd(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                       const float *k, const float *v, const ct__attn_shape *s, ct_pool *pool) {
    int order[MAX_ORDER];
    attn_job J = {.s = s, .dq = dq, .dk = dk, .dv = dv, .dout = dout, .probs_in = probs, .q = q, .k = k, .v = v,
                  .pool = pool, .maxlen = max_len(s), .order = seq_order(s, order)};
    atomic_init(&J.next, 0);
    ct__pool_run(pool, bwd_task, &J);
}
