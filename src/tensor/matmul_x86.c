/* src/tensor/matmul_x86.c — AVX2 + FMA + F16C (and some AVX-512) matmul kernels (see
 * matmul_kern.h for each contract; matmul_ref.c holds the scalar twins).
 *
 * - Row dots (decode, T small): W streamed once in its stored dtype and
 *   widened in registers. F16 via vcvtph2ps, BF16 by a 16-bit shift; the
 *   Q types against x quantized to 8 bits (llama.cpp's idea): vpmaddubsw on
 *   unsigned codes (Q4: nibbles 0..15; Q8_0: |w| with x's sign moved over by
 *   vpsignb) times signed x codes, then one float FMA per block. The Q4
 *   offsets (-8, +m) come out of x's precomputed block sums (ct__xq8.s).
 * - Row dots on f32 x for the Q types (the exact default): each block
 *   dequantized in registers, AVX-512 (F/BW/VL) or AVX2 (see "Q rows on f32
 *   x" below).
 * - Prompt processing (T > 3): a 6x16 register-blocked FMA micro-kernel over a
 *   K block of a packed W panel (16 rows transposed to k-major), BLIS style.
 *
 * Left out: AVX-512 versions of the other kernels (the 8-bit-x dots, the
 * tiles: written for a Zen 3 without AVX-512), ARM NEON. Without
 * AVX2/FMA/F16C at compile time every function forwards to its scalar twin. */
#include <string.h>
#include "core/internal.h"
#include "tensor/matmul_kern.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>


static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline float f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* ---- quantize x -------------------------------------------------------- */
/* Decoding streams each thread's rows once from memory: a software prefetch
 * CT_DOT_PF bytes ahead of the row being read keeps more lines in flight
 * than the hardware prefetcher does (2 threads read ~27 GB/s without it,
 * ~31 with it in a plain streaming test here). Used by the 8-bit-x Q4_0/Q4_1 row
 * dots (stories110M Q4_0 --q8-act decode +8%); for Q8_0 rows, the F32 and the
 * f32-x quantized row dots it measured neutral or slightly worse, so they go
 * without. */
#ifndef CT_DOT_PF
#define CT_DOT_PF 8192
#endif
static inline void prefetch_row(const uint8_t *w, size_t rb) {
    for (size_t o = 0; o < rb; o += 64) _mm_prefetch((const char *)(w + CT_DOT_PF + o), _MM_HINT_T0);
}

float ct__quant_block_q8(const float *v, int8_t *q, int *sum) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8);
    __m256 v2 = _mm256_loadu_ps(v + 16), v3 = _mm256_loadu_ps(v + 24);
    __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                             _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float d = _mm_cvtss_f32(h) / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    __m256 s = _mm256_set1_ps(id);
    __m256i q0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, s)), q1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, s));
    __m256i q2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, s)), q3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, s));
    __m256i sm = _mm256_add_epi32(_mm256_add_epi32(q0, q1), _mm256_add_epi32(q2, q3));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sm), _mm256_extracti128_si256(sm, 1));
    s4 = _mm_hadd_epi32(s4, s4);
    s4 = _mm_hadd_epi32(s4, s4);
    /* packs interleave the 128-bit lanes; the permute puts them back */
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)q, p);
    *sum = _mm_cvtsi128_si32(s4);
    return d;
}

void ct__quantize_x_q8(const float *x, ct_dtype wt, void *out, int n) {
    const int nb = n / 32, plain = wt == CT_DT_Q8_0;
    float *D = ct__xq8_d(out, nb), *S = ct__xq8_s(out, nb);
    int8_t *Q = ct__xq8_q(out, nb);
    for (int b = 0; b < nb; b++) {
        int8_t q[32];
        int sum;
        float d = ct__quant_block_q8(x + 32 * (size_t)b, q, &sum);
        if (plain) {
            memcpy(Q + 32 * (size_t)b, q, 32);
        } else {
            memcpy(Q + ct__xq8_qpos(wt, b, 0), q, 16);
            memcpy(Q + ct__xq8_qpos(wt, b, 16), q + 16, 16);
        }
        int k = ct__xq8_dpos(wt, nb, b);
        D[k] = d;
        S[k] = d * (float)sum;
    }
    if (!plain && nb % 2) { /* the unpaired last block's empty partner slots */
        int8_t *q = Q + ct__xq8_qpos(wt, nb, 0);
        memset(q, 0, 16);
        memset(q + 32, 0, 16);
    }
    if (plain && nb % 2) memset(Q + 32 * (size_t)nb, 0, 32);
}

/* ---- float row dots ---------------------------------------------------- */
static inline __m256 ld_f32(const uint8_t *p) { return _mm256_loadu_ps((const float *)p); }
static inline __m256 ld_f16(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline __m256 ld_bf16(const uint8_t *p) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

/* One row at a time, 2 accumulators, scalar column tail. Decode is
 * bandwidth-bound, and one row after the other is one linear stream for the
 * hardware prefetcher: 4 rows side by side sharing the x loads (the first
 * version) streamed 14-16 GB/s per core on 576-768-column rows, one row at a
 * time 25-30 (docs/kernels.md, "Float row dots"). */
#define DEF_DOT_F(NAME, LD, ESZ, SCALAR)                                                  \
static void NAME(const ct_mat *W, int r0, int nr, const float *x, float *out) {          \
    const int n = W->cols, n16 = n & ~15;                                                 \
    for (int i = 0; i < nr; i++) {                                                        \
        const uint8_t *w0 = (const uint8_t *)W->data + (size_t)(r0 + i) * W->row_bytes;  \
        __m256 a0 = _mm256_setzero_ps(), b0 = a0;                                         \
        for (int j = 0; j < n16; j += 16) {                                              \
            size_t o = (size_t)j * ESZ;                                                   \
            a0 = _mm256_fmadd_ps(LD(w0 + o), _mm256_loadu_ps(x + j), a0);                 \
            b0 = _mm256_fmadd_ps(LD(w0 + o + 8 * ESZ), _mm256_loadu_ps(x + j + 8), b0);   \
        }                                                                                 \
        float s0 = hsum8(_mm256_add_ps(a0, b0));                                          \
        for (int j = n16; j < n; j++) s0 += SCALAR(w0 + (size_t)j * ESZ) * x[j];          \
        out[i] = s0;                                                                      \
    }                                                                                     \
}

/* 4 rows at a time sharing the x loads, 2 accumulators each (8 FMA chains),
 * scalar column tail: for long rows (CT_DOT_F_LONG), where on 2 threads the
 * 8 concurrent streams read DRAM faster than 2 linear ones (4096x4096 F32:
 * 48-50 GB/s against 38-39). */
#define DEF_DOT_F4(NAME, ONE, LD, ESZ, SCALAR)                                                \
static void NAME(const ct_mat *W, int r0, int nr, const float *x, float *out) {          \
    const int n = W->cols, n16 = n & ~15;                                                 \
    int i = 0;                                                                            \
    for (; i + 4 <= nr; i += 4) {                                                         \
        const uint8_t *w0 = (const uint8_t *)W->data + (size_t)(r0 + i) * W->row_bytes;  \
        const uint8_t *w1 = w0 + W->row_bytes, *w2 = w1 + W->row_bytes, *w3 = w2 + W->row_bytes; \
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0; \
        for (int j = 0; j < n16; j += 16) {                                              \
            __m256 xa = _mm256_loadu_ps(x + j), xb = _mm256_loadu_ps(x + j + 8);         \
            size_t o = (size_t)j * ESZ, o8 = o + 8 * ESZ;                                 \
            a0 = _mm256_fmadd_ps(LD(w0 + o), xa, a0); b0 = _mm256_fmadd_ps(LD(w0 + o8), xb, b0); \
            a1 = _mm256_fmadd_ps(LD(w1 + o), xa, a1); b1 = _mm256_fmadd_ps(LD(w1 + o8), xb, b1); \
            a2 = _mm256_fmadd_ps(LD(w2 + o), xa, a2); b2 = _mm256_fmadd_ps(LD(w2 + o8), xb, b2); \
            a3 = _mm256_fmadd_ps(LD(w3 + o), xa, a3); b3 = _mm256_fmadd_ps(LD(w3 + o8), xb, b3); \
        }                                                                                 \
        float s0 = hsum8(_mm256_add_ps(a0, b0)), s1 = hsum8(_mm256_add_ps(a1, b1));       \
        float s2 = hsum8(_mm256_add_ps(a2, b2)), s3 = hsum8(_mm256_add_ps(a3, b3));       \
        for (int j = n16; j < n; j++) {                                                   \
            size_t o = (size_t)j * ESZ;                                                   \
            s0 += SCALAR(w0 + o) * x[j]; s1 += SCALAR(w1 + o) * x[j];                     \
            s2 += SCALAR(w2 + o) * x[j]; s3 += SCALAR(w3 + o) * x[j];                     \
        }                                                                                 \
        out[i] = s0; out[i + 1] = s1; out[i + 2] = s2; out[i + 3] = s3;                   \
    }                                                                                     \
    if (i < nr) ONE(W, r0 + i, nr - i, x, out + i); /* the last rows: one at a time */ \
}

static inline float sc_f32(const uint8_t *p) { float f; memcpy(&f, p, 4); return f; }
static inline float sc_f16(const uint8_t *p) { return f16(p); }
static inline float sc_bf16(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return ct__bf16_to_f32(h); }
DEF_DOT_F(dot_f32, ld_f32, 4, sc_f32)
DEF_DOT_F(dot_f16, ld_f16, 2, sc_f16)
DEF_DOT_F(dot_bf16, ld_bf16, 2, sc_bf16)
DEF_DOT_F4(dot4_f32, dot_f32, ld_f32, 4, sc_f32)
DEF_DOT_F4(dot4_f16, dot_f16, ld_f16, 2, sc_f16)
DEF_DOT_F4(dot4_bf16, dot_bf16, ld_bf16, 2, sc_bf16)
#define CT_DOT_F_LONG 16384 /* row bytes from which the 4-row kernels run */

/* ---- Q rows on f32 x: dequantized in registers ------------------------- */
/* W rows . f32 x rows without an L1 copy of W: each 32-block is widened in
 * registers and meets NT rows of x at once, R rows of W per pass so the x
 * loads are shared. The weight values are the reference dequantization's;
 * only the order of summation differs (and Q4_1's +m, applied as m times the
 * block sums xs of x, once per 16 blocks).
 * AVX-512: Q4 nibbles -> floats by vpermps from a 16-entry table of the
 * block's values (d*(n-8), or d*n for Q4_1), built with one multiply per
 * block: a block costs vpmovzxbd, vpsrld, that multiply, 2 vpermps, then 2
 * FMA per row of x. Q8_0: vpmovsxbd + vcvtdq2ps; for one row of x
 * d * (q_lo . x_lo + q_hi . x_hi), for more the values d*q first. The f16
 * scales of 16 blocks are picked out of the rows' bytes by word/dword
 * permutes (a gather costs more), then broadcast from memory per block.
 * AVX2: nibbles by and/shift + vcvtdq2ps; for one row of x
 * d * (n . x) + c * xs (c = -8d or m), for more the values d*n + c first;
 * scales one block at a time. */
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define CT_MM_AVX512 1
#define DOTF_PF_BYTES 3072 /* see dotf_rows */
static inline __m512i ld64(const uint8_t *p) { return _mm512_loadu_si512((const void *)p); }

/* d of the 16 Q8_0 blocks at w (544 bytes; the loads read the first 512):
 * d_b is word 17b, 4 blocks per pair of zmm. */
static inline void scales16_q8_0(const uint8_t *w, float *d) {
    static const int16_t ix[32] = {0, 17, 34, 51, 4, 21, 38, 55, 8, 25, 42, 59, 12, 29, 46, 63};
    const __m512i idx = _mm512_loadu_si512((const void *)ix);
    __m512i r = _mm512_permutex2var_epi16(ld64(w), idx, ld64(w + 64));
    r = _mm512_mask_blend_epi16(0x00F0, r, _mm512_permutex2var_epi16(ld64(w + 128), idx, ld64(w + 192)));
    r = _mm512_mask_blend_epi16(0x0F00, r, _mm512_permutex2var_epi16(ld64(w + 256), idx, ld64(w + 320)));
    r = _mm512_mask_blend_epi16(0xF000, r, _mm512_permutex2var_epi16(ld64(w + 384), idx, ld64(w + 448)));
    _mm512_storeu_ps(d, _mm512_cvtph_ps(_mm512_castsi512_si256(r)));
}
/* Q4_0 (288 bytes): d_b is word 9b: blocks 0-7, 8-14, 15. */
static inline void scales16_q4_0(const uint8_t *w, float *d) {
    static const int16_t ix[32] = {0, 9, 18, 27, 36, 45, 54, 63, 8, 17, 26, 35, 44, 53, 62, 7};
    const __m512i idx = _mm512_loadu_si512((const void *)ix);
    __m512i r = _mm512_permutex2var_epi16(ld64(w), idx, ld64(w + 64));
    r = _mm512_mask_blend_epi16(0x7F00, r, _mm512_permutex2var_epi16(ld64(w + 128), idx, ld64(w + 192)));
    __m512i tail = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(w + 256)));
    r = _mm512_mask_blend_epi16(0x8000, r, _mm512_permutexvar_epi16(idx, tail));
    _mm512_storeu_ps(d, _mm512_cvtph_ps(_mm512_castsi512_si256(r)));
}
/* Q4_1 (320 bytes): (d, m) is dword 5b: blocks 0-6, 7-12, 13-15. m is
 * returned as a vector (lane = block), for m . xs. */
static inline __m512 scales16_q4_1(const uint8_t *w, float *d) {
    static const int32_t ix[16] = {0, 5, 10, 15, 20, 25, 30, 3, 8, 13, 18, 23, 28, 1, 6, 11};
    const __m512i idx = _mm512_loadu_si512((const void *)ix);
    __m512i r = _mm512_permutex2var_epi32(ld64(w), idx, ld64(w + 64));
    r = _mm512_mask_blend_epi32(0x1F80, r, _mm512_permutex2var_epi32(ld64(w + 128), idx, ld64(w + 192)));
    r = _mm512_mask_blend_epi32(0xE000, r, _mm512_permutexvar_epi32(idx, ld64(w + 256)));
    _mm512_storeu_ps(d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(r)));
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
}

/* R rows (rb bytes apart) of Q8_0 at w . NT rows of x (ldx floats apart),
 * nb blocks: out[t * ldo + r]. */
static inline __attribute__((always_inline)) void dotf_q8_0(const uint8_t *w, size_t rb, const float *x, size_t ldx,
                                                            int nb, const int R, const int NT, float *out, int ldo) {
    __m512 acc[4][4];
    float ds[4][16];
    const size_t pf = R * rb >= DOTF_PF_BYTES ? R * rb : 0; /* see dotf_rows */
    for (int r = 0; r < R; r++)
        for (int t = 0; t < NT; t++) acc[r][t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b += 16) {
        const int n = nb - b < 16 ? nb - b : 16;
        for (int r = 0; r < R; r++) {
            const uint8_t *wb = w + r * rb + 34 * (size_t)b;
            if (n == 16) scales16_q8_0(wb, ds[r]);
            else for (int i = 0; i < n; i++) ds[r][i] = f16(wb + 34 * i);
        }
        for (int i = 0; i < n; i++) {
            const float *xb = x + 32 * (size_t)(b + i);
            /* one row of x: loaded once for the R rows; more: as memory
             * operands (in registers they were spilled, 1.6x slower) */
            const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16);
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                const uint8_t *q = w + r * rb + 34 * (size_t)(b + i) + 2;
                if (pf) _mm_prefetch((const char *)q + pf, _MM_HINT_T0); /* the next rows, same columns */
                __m512 ql = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)q)));
                __m512 qh = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + 16))));
                const __m512 d = _mm512_set1_ps(ds[r][i]);
                if (NT == 1) {
                    __m512 p = _mm512_fmadd_ps(qh, x1, _mm512_mul_ps(ql, x0));
                    acc[r][0] = _mm512_fmadd_ps(p, d, acc[r][0]);
                } else {
                    ql = _mm512_mul_ps(ql, d);
                    qh = _mm512_mul_ps(qh, d);
#pragma GCC unroll 4
                    for (int t = 0; t < NT; t++) {
                        acc[r][t] = _mm512_fmadd_ps(ql, _mm512_loadu_ps(xb + t * ldx), acc[r][t]);
                        acc[r][t] = _mm512_fmadd_ps(qh, _mm512_loadu_ps(xb + t * ldx + 16), acc[r][t]);
                    }
                }
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < NT; t++) out[t * ldo + r] = _mm512_reduce_add_ps(acc[r][t]);
}

/* R rows of Q4_0 (q41 = 0, 18-byte blocks) or Q4_1 (20) at w . NT rows of x;
 * xs: their block sums (nb apart), for Q4_1's m. */
static inline __attribute__((always_inline)) void dotf_q4(const uint8_t *w, size_t rb, const float *x, size_t ldx,
                                                          const float *xs, int nb, const int R, const int NT,
                                                          const int q41, float *out, int ldo) {
    const int BB = q41 ? 20 : 18, qo = q41 ? 4 : 2;
    const __m512 iota = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 nv = q41 ? iota : _mm512_sub_ps(iota, _mm512_set1_ps(8.0f)); /* n, or n - 8 */
    __m512 acc[4][4];
    float ds[4][16];
    const size_t pf = R * rb >= DOTF_PF_BYTES ? R * rb : 0; /* see dotf_rows */
    for (int r = 0; r < R; r++)
        for (int t = 0; t < NT; t++) acc[r][t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b += 16) {
        const int n = nb - b < 16 ? nb - b : 16;
        for (int r = 0; r < R; r++) {
            const uint8_t *wb = w + r * rb + BB * (size_t)b;
            if (n == 16 && q41) { /* m . xs with lane = block */
                __m512 m = scales16_q4_1(wb, ds[r]);
                for (int t = 0; t < NT; t++)
                    acc[r][t] = _mm512_fmadd_ps(m, _mm512_loadu_ps(xs + (size_t)t * nb + b), acc[r][t]);
            } else if (n == 16) {
                scales16_q4_0(wb, ds[r]);
            } else { /* the last < 16 blocks: scalar scales (a vector built in memory would stall) */
                for (int i = 0; i < n; i++) ds[r][i] = f16(wb + BB * i);
                for (int t = 0; t < NT && q41; t++) {
                    float s = 0.0f;
                    for (int i = 0; i < n; i++) s += f16(wb + BB * i + 2) * xs[(size_t)t * nb + b + i];
                    acc[r][t] = _mm512_add_ps(acc[r][t], _mm512_zextps128_ps512(_mm_set_ss(s)));
                }
            }
        }
        for (int i = 0; i < n; i++) {
            const float *xb = x + 32 * (size_t)(b + i);
            const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16); /* as for Q8_0 */
#pragma GCC unroll 4
            for (int r = 0; r < R; r++) {
                const uint8_t *q = w + r * rb + BB * (size_t)(b + i) + qo;
                if (pf) _mm_prefetch((const char *)q + pf, _MM_HINT_T0); /* the next rows, same columns */
                __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)q)); /* vpermps reads bits 0-3 */
                __m512 tb = _mm512_mul_ps(nv, _mm512_set1_ps(ds[r][i]));
                __m512 wl = _mm512_permutexvar_ps(v, tb), wh = _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), tb);
                if (NT == 1) {
                    acc[r][0] = _mm512_fmadd_ps(wl, x0, acc[r][0]);
                    acc[r][0] = _mm512_fmadd_ps(wh, x1, acc[r][0]);
                    continue;
                }
#pragma GCC unroll 4
                for (int t = 0; t < NT; t++) {
                    acc[r][t] = _mm512_fmadd_ps(wl, _mm512_loadu_ps(xb + t * ldx), acc[r][t]);
                    acc[r][t] = _mm512_fmadd_ps(wh, _mm512_loadu_ps(xb + t * ldx + 16), acc[r][t]);
                }
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < NT; t++) out[t * ldo + r] = _mm512_reduce_add_ps(acc[r][t]);
}
#define DOTF_ROWS 4 /* rows of W per pass (one x row; 2 for more) */

void ct__x_block_sums(const float *x, int n, float *xs) {
    for (int b = 0; b < n / 32; b++)
        xs[b] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_loadu_ps(x + 32 * (size_t)b), _mm512_loadu_ps(x + 32 * (size_t)b + 16)));
}

#else /* AVX2 */

/* R rows (rb bytes apart) of Q8_0 at w . NT rows of x: out[t * ldo + r]. */
static inline __attribute__((always_inline)) void dotf_q8_0(const uint8_t *w, size_t rb, const float *x, size_t ldx,
                                                            int nb, const int R, const int NT, float *out, int ldo) {
    __m256 acc[2][4];
    const size_t pf = R * rb; /* see dotf_rows */
    for (int r = 0; r < R; r++)
        for (int t = 0; t < NT; t++) acc[r][t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const float *xb = x + 32 * (size_t)b;
#pragma GCC unroll 2
        for (int r = 0; r < R; r++) {
            const uint8_t *blk = w + r * rb + 34 * (size_t)b, *q = blk + 2;
            if (pf) _mm_prefetch((const char *)q + pf, _MM_HINT_T0);
            const __m256 d = _mm256_set1_ps(f16(blk));
            __m256 qv[4];
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++)
                qv[k] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(q + 8 * k))));
            if (NT == 1) {
                __m256 p = _mm256_fmadd_ps(qv[1], _mm256_loadu_ps(xb + 8), _mm256_mul_ps(qv[0], _mm256_loadu_ps(xb)));
                __m256 p2 = _mm256_fmadd_ps(qv[3], _mm256_loadu_ps(xb + 24), _mm256_mul_ps(qv[2], _mm256_loadu_ps(xb + 16)));
                acc[r][0] = _mm256_fmadd_ps(_mm256_add_ps(p, p2), d, acc[r][0]);
                continue;
            }
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) qv[k] = _mm256_mul_ps(qv[k], d);
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++) acc[r][t] = _mm256_fmadd_ps(qv[k], _mm256_loadu_ps(xb + t * ldx + 8 * k), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < NT; t++) out[t * ldo + r] = hsum8(acc[r][t]);
}

/* R rows of Q4_0 (q41 = 0) or Q4_1 at w . NT rows of x. One row of x:
 * d * (n . x) + c * xs[b] per block, c = -8d or m. More: the values
 * w = d*n + c' first (c' = -8d, exact: d*(n-8) in one rounding as the
 * reference; Q4_1: c' = 0 and m * xs[b] as for one row). */
static inline __attribute__((always_inline)) void dotf_q4(const uint8_t *w, size_t rb, const float *x, size_t ldx,
                                                          const float *xs, int nb, const int R, const int NT,
                                                          const int q41, float *out, int ldo) {
    const int BB = q41 ? 20 : 18, qo = q41 ? 4 : 2;
    const __m256i m15 = _mm256_set1_epi32(15);
    const size_t pf = R * rb; /* see dotf_rows */
    __m256 acc[2][4];
    float cacc[2][4] = {{0}}; /* the c * xs terms */
    for (int r = 0; r < R; r++)
        for (int t = 0; t < NT; t++) acc[r][t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const float *xb = x + 32 * (size_t)b;
#pragma GCC unroll 2
        for (int r = 0; r < R; r++) {
            const uint8_t *blk = w + r * rb + BB * (size_t)b, *q = blk + qo;
            if (pf) _mm_prefetch((const char *)q + pf, _MM_HINT_T0);
            const float d = f16(blk), c = q41 ? f16(blk + 2) : -8.0f * d;
            __m256i v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)q));       /* bytes 0-7 */
            __m256i v1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(q + 8))); /* bytes 8-15 */
            __m256 wv[4] = {_mm256_cvtepi32_ps(_mm256_and_si256(v0, m15)), _mm256_cvtepi32_ps(_mm256_and_si256(v1, m15)),
                            _mm256_cvtepi32_ps(_mm256_srli_epi32(v0, 4)), _mm256_cvtepi32_ps(_mm256_srli_epi32(v1, 4))};
            const __m256 dv = _mm256_set1_ps(d);
            if (NT == 1) {
                __m256 p = _mm256_fmadd_ps(wv[1], _mm256_loadu_ps(xb + 8), _mm256_mul_ps(wv[0], _mm256_loadu_ps(xb)));
                __m256 p2 = _mm256_fmadd_ps(wv[3], _mm256_loadu_ps(xb + 24), _mm256_mul_ps(wv[2], _mm256_loadu_ps(xb + 16)));
                acc[r][0] = _mm256_fmadd_ps(_mm256_add_ps(p, p2), dv, acc[r][0]);
                cacc[r][0] += c * xs[b];
                continue;
            }
            const __m256 cv = _mm256_set1_ps(q41 ? 0.0f : c);
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++) wv[k] = _mm256_fmadd_ps(wv[k], dv, cv);
#pragma GCC unroll 4
            for (int t = 0; t < NT; t++) {
                if (q41) cacc[r][t] += c * xs[(size_t)t * nb + b];
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++) acc[r][t] = _mm256_fmadd_ps(wv[k], _mm256_loadu_ps(xb + t * ldx + 8 * k), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < NT; t++) out[t * ldo + r] = hsum8(acc[r][t]) + cacc[r][t];
}
#define DOTF_ROWS 2

void ct__x_block_sums(const float *x, int n, float *xs) {
    for (int b = 0; b < n / 32; b++) {
        const float *v = x + 32 * (size_t)b;
        xs[b] = hsum8(_mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(v), _mm256_loadu_ps(v + 8)),
                                    _mm256_add_ps(_mm256_loadu_ps(v + 16), _mm256_loadu_ps(v + 24))));
    }
}
#endif

/* One kernel call: R rows at w against NT rows of x. */
static inline __attribute__((always_inline)) void dotf_call(ct_dtype dt, const uint8_t *w, size_t rb, const float *x,
                                                            int cols, const float *xs, const int R, const int NT,
                                                            float *out, int ldo) {
    const int nb = cols / 32;
    if (dt == CT_DT_Q8_0) dotf_q8_0(w, rb, x, (size_t)cols, nb, R, NT, out, ldo);
    else dotf_q4(w, rb, x, (size_t)cols, xs, nb, R, NT, dt == CT_DT_Q4_1, out, ldo);
}

/* Rows [r0, r0+nr) against NT rows of x: R at a time, then one. R rows read
 * side by side can defeat the hardware prefetcher (576x1536 Q4 ran at half
 * speed), so the kernels prefetch the next R rows at the columns they read:
 * with AVX-512 only once the R rows span DOTF_PF_BYTES (shorter ones ran
 * faster without), with AVX2 always (measured on Zen 4, docs/kernels.md). */
static inline __attribute__((always_inline)) void dotf_rows(const ct_mat *W, int r0, int nr, const float *x,
                                                            const float *xs, const int NT, float *out, int ldo) {
    const int R = NT == 1 ? DOTF_ROWS : 2;
    const size_t rb = W->row_bytes;
    const uint8_t *w = (const uint8_t *)W->data + (size_t)r0 * rb;
    int i = 0;
    for (; i + R <= nr; i += R, w += R * rb) dotf_call(W->dtype, w, rb, x, W->cols, xs, R, NT, out + i, ldo);
    for (; i < nr; i++, w += rb) dotf_call(W->dtype, w, rb, x, W->cols, xs, 1, NT, out + i, ldo);
}

void ct__dot_rows_qf(const ct_mat *W, int r0, int nr, int nt, const float *x, const float *xs, float *out) {
    if (W->dtype != CT_DT_Q8_0 && W->dtype != CT_DT_Q4_0 && W->dtype != CT_DT_Q4_1) {
        ct__dot_rows_qf_ref(W, r0, nr, nt, x, xs, out);
        return;
    }
    const int cols = W->cols, nb = cols / 32;
    for (int t = 0; t < nt;) { /* 4 rows of x at a time, then the 1-3 left */
        int k = nt - t >= 4 ? 4 : nt - t;
        const float *xt = x + (size_t)t * cols, *st = xs + (size_t)t * nb;
        float *o = out + (size_t)t * nr;
        switch (k) {
        case 4: dotf_rows(W, r0, nr, xt, st, 4, o, nr); break;
        case 3: dotf_rows(W, r0, nr, xt, st, 3, o, nr); break;
        case 2: dotf_rows(W, r0, nr, xt, st, 2, o, nr); break;
        default: dotf_rows(W, r0, nr, xt, st, 1, o, nr); break;
        }
        t += k;
    }
}

#if defined(CT_MM_AVX512)
/* ---- float row dots, AVX-512 ------------------------------------------- */
/* F32: one row at a time (one linear stream, see DEF_DOT_F), 4 zmm
 * accumulators, 64 columns per step, 16-column steps, then a masked tail.
 * Against the AVX2 kernel: same speed on short rows, ~20% more on 4096-column
 * rows. F16/BF16 keep the AVX2 kernels (the zmm version was no faster).
 * Tried and dropped: 4 rows per pass sharing the x loads, with or without a
 * prefetch of the next 4 rows or of the same row 512-2048 bytes ahead: all
 * slower (the prefetch also in the one-row kernel). */
#define DEF_DOT_F512(NAME, LD, LDM, ESZ)                                                   \
static void NAME(const ct_mat *W, int r0, int nr, const float *x, float *out) {          \
    const int n = W->cols, n64 = n & ~63, n16 = n & ~15;                                  \
    const __mmask16 mt = (__mmask16)((1u << (n - n16)) - 1u);                             \
    for (int i = 0; i < nr; i++) {                                                        \
        const uint8_t *w0 = (const uint8_t *)W->data + (size_t)(r0 + i) * W->row_bytes;  \
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                       \
        int j = 0;                                                                        \
        for (; j < n64; j += 64) {                                                        \
            const size_t o = (size_t)j * ESZ;                                             \
            a0 = _mm512_fmadd_ps(LD(w0 + o), _mm512_loadu_ps(x + j), a0);                 \
            a1 = _mm512_fmadd_ps(LD(w0 + o + 16 * ESZ), _mm512_loadu_ps(x + j + 16), a1); \
            a2 = _mm512_fmadd_ps(LD(w0 + o + 32 * ESZ), _mm512_loadu_ps(x + j + 32), a2); \
            a3 = _mm512_fmadd_ps(LD(w0 + o + 48 * ESZ), _mm512_loadu_ps(x + j + 48), a3); \
        }                                                                                 \
        for (; j < n16; j += 16) a0 = _mm512_fmadd_ps(LD(w0 + (size_t)j * ESZ), _mm512_loadu_ps(x + j), a0); \
        if (mt) a1 = _mm512_fmadd_ps(LDM(w0 + (size_t)n16 * ESZ, mt), _mm512_maskz_loadu_ps(mt, x + n16), a1); \
        out[i] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3))); \
    }                                                                                     \
}
static inline __m512 lz_f32(const uint8_t *p) { return _mm512_loadu_ps((const float *)p); }
static inline __m512 lzm_f32(const uint8_t *p, __mmask16 k) { return _mm512_maskz_loadu_ps(k, p); }
DEF_DOT_F512(dot_f32_512, lz_f32, lzm_f32, 4)
#define DOT_F32 dot_f32_512
#else
#define DOT_F32 dot_f32
#endif

/* The AVX2 versions, also for tests of the AVX-512 build (ct__dot_rows_f_avx2). */
void ct__dot_rows_f_avx2(const ct_mat *W, int r0, int nr, const float *x, float *out) {
    switch (W->dtype) {
    case CT_DT_F32: dot_f32(W, r0, nr, x, out); break;
    case CT_DT_F16: dot_f16(W, r0, nr, x, out); break;
    case CT_DT_BF16: dot_bf16(W, r0, nr, x, out); break;
    default: ct__dot_rows_f_ref(W, r0, nr, x, out); break;
    }
}

void ct__dot_rows_f(const ct_mat *W, int r0, int nr, const float *x, float *out) {
    if (W->row_bytes >= CT_DOT_F_LONG) {
        switch (W->dtype) {
        case CT_DT_F32: dot4_f32(W, r0, nr, x, out); return;
        case CT_DT_F16: dot4_f16(W, r0, nr, x, out); return;
        case CT_DT_BF16: dot4_bf16(W, r0, nr, x, out); return;
        default: break;
        }
    }
    switch (W->dtype) {
    case CT_DT_F32: DOT_F32(W, r0, nr, x, out); break;
    case CT_DT_F16: dot_f16(W, r0, nr, x, out); break;
    case CT_DT_BF16: dot_bf16(W, r0, nr, x, out); break;
    default: ct__dot_rows_f_ref(W, r0, nr, x, out); break;
    }
}

#if defined(CT_MM_AVX512)
const char *ct__matmul_isa(void) { return "avx512+avx2+fma+f16c"; }
#else
const char *ct__matmul_isa(void) { return "avx2+fma+f16c"; }
#endif

/* ---- quantized row dots ------------------------------------------------ */
static inline uint16_t u16at(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return h; }
static inline uint64_t u32at(const uint8_t *p) { uint32_t h; memcpy(&h, p, 4); return h; }
/* 4 f16 at p + k*st (k = 0..3) in one 64-bit word. */
static inline uint64_t f16x4(const uint8_t *p, size_t st) {
    return (uint64_t)u16at(p) | (uint64_t)u16at(p + st) << 16 | (uint64_t)u16at(p + 2 * st) << 32 |
           (uint64_t)u16at(p + 3 * st) << 48;
}
/* Sum of u8 a[j] * s8 b[j] as 8 float lanes (no overflow for |a| <= 128). */
static inline __m256 dot_u8s8(__m256i a, __m256i b) {
    __m256i p = _mm256_maddubs_epi16(a, b);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}
static inline __m256i ldq(const int8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
/* int32 lanes of sum u8 a[j] * s8 b[j] (+ the same for c, d): vpdpbusd with
 * AVX-512 VNNI, else vpmaddubsw + vpmaddwd (the 16-bit pair sums cannot
 * saturate: a <= 15 for Q4 nibbles, |w| <= 128 times |x| <= 127 for Q8_0). */
static inline __m256i dot2_u8s8_i32(__m256i a, __m256i b, __m256i c, __m256i d) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), a, b), c, d);
#else
    return _mm256_madd_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(a, b), _mm256_maddubs_epi16(c, d)), _mm256_set1_epi16(1));
#endif
}
static inline __m256i dot1_u8s8_i32(__m256i a, __m256i b) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, b);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1));
#endif
}

/* Q8_0: 8 blocks per step. Per block |w| (u8) times x with w's sign, summed
 * to 8 int32 lanes; a vphaddd tree turns 8 such vectors into the 8 block sums,
 * scaled by d_w * d_x (8 lanes) with one FMA. Then the leftover blocks. */
static float dot_q8_0(const uint8_t *w, const void *xq, int nb) {
    const float *D = ct__xq8_d(xq, nb);
    const int8_t *Q = ct__xq8_q(xq, nb);
    __m256 acc = _mm256_setzero_ps(), acc1 = acc;
    int b = 0;
    for (; b + 8 <= nb; b += 8, w += 8 * 34) {
        __m256i v[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            __m256i wv = _mm256_loadu_si256((const __m256i *)(w + 34 * i + 2)), xv = ldq(Q + 32 * (size_t)(b + i));
            v[i] = dot1_u8s8_i32(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
        }
        __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
        __m256i c = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
        __m256i sum = _mm256_add_epi32(_mm256_permute2x128_si256(a, c, 0x20), _mm256_permute2x128_si256(a, c, 0x31));
        __m256 dw = _mm256_cvtph_ps(_mm_set_epi64x((long long)f16x4(w + 4 * 34, 34), (long long)f16x4(w, 34)));
        acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(dw, _mm256_loadu_ps(D + b)), acc);
    }
    for (; b < nb; b++, w += 34) {
        __m256i wv = _mm256_loadu_si256((const __m256i *)(w + 2)), xv = ldq(Q + 32 * (size_t)b);
        __m256 p = dot_u8s8(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
        acc1 = _mm256_fmadd_ps(p, _mm256_set1_ps(f16(w) * D[b]), acc1);
    }
    return hsum8(_mm256_add_ps(acc, acc1));
}

/* Q4_0 (BB = 18) and Q4_1 (BB = 20): 8 blocks per step, two blocks' nibbles
 * in each ymm (x is stored to match, see ct__xq8), vphaddd tree to the block
 * sums in the order 0,2,4,6,1,3,5,7, one FMA with d_w * d_x. The constant
 * part (-8 d_w, or m_w) times s_x goes to a second accumulator. */
static inline __attribute__((always_inline)) float dot_q4(const uint8_t *w, const void *xq, int nb, const int BB) {
    const int q41 = BB == 20, qoff = q41 ? 4 : 2;
    const float *D = ct__xq8_d(xq, nb), *S = ct__xq8_s(xq, nb);
    const int8_t *Q = ct__xq8_q(xq, nb);
    const __m256i m15 = _mm256_set1_epi8(15);
    __m256 acc = _mm256_setzero_ps(), cacc = acc, acc1 = acc;
    float c1 = 0.0f;
    int b = 0;
    for (; b + 8 <= nb; b += 8, w += 8 * BB) {
        __m256i v[4];
#pragma GCC unroll 4
        for (int p = 0; p < 4; p++) {
            const uint8_t *w0 = w + 2 * p * BB + qoff;
            const int8_t *xp = Q + 32 * (size_t)(b + 2 * p);
            __m256i raw = _mm256_loadu2_m128i((const __m128i *)(w0 + BB), (const __m128i *)w0);
            __m256i lo = _mm256_and_si256(raw, m15), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m15);
            v[p] = dot2_u8s8_i32(lo, ldq(xp), hi, ldq(xp + 32));
        }
        __m256 f = _mm256_cvtepi32_ps(_mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3])));
        __m256 dw, cw;
        if (!q41) {
            dw = _mm256_cvtph_ps(_mm_set_epi64x((long long)f16x4(w + BB, 2 * BB), (long long)f16x4(w, 2 * BB)));
            cw = dw; /* times -8 at the end */
        } else { /* (d, m) pairs of even blocks E and odd blocks O, then unzipped */
            __m256 E = _mm256_cvtph_ps(_mm_set_epi64x((long long)(u32at(w + 4 * BB) | u32at(w + 6 * BB) << 32),
                                                      (long long)(u32at(w) | u32at(w + 2 * BB) << 32)));
            __m256 O = _mm256_cvtph_ps(_mm_set_epi64x((long long)(u32at(w + 5 * BB) | u32at(w + 7 * BB) << 32),
                                                      (long long)(u32at(w + BB) | u32at(w + 3 * BB) << 32)));
            dw = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(E, O, 0x88)), 0xD8));
            cw = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(E, O, 0xDD)), 0xD8));
        }
        acc = _mm256_fmadd_ps(f, _mm256_mul_ps(dw, _mm256_loadu_ps(D + b)), acc);
        cacc = _mm256_fmadd_ps(cw, _mm256_loadu_ps(S + b), cacc);
    }
    for (; b + 2 <= nb; b += 2, w += 2 * BB) { /* leftover pairs: d/s in natural order */
        const int8_t *xp = Q + 32 * (size_t)b;
        __m256i raw = _mm256_loadu2_m128i((const __m128i *)(w + BB + qoff), (const __m128i *)(w + qoff));
        __m256i lo = _mm256_and_si256(raw, m15), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m15);
        __m256 p = _mm256_cvtepi32_ps(dot2_u8s8_i32(lo, ldq(xp), hi, ldq(xp + 32)));
        float d0 = f16(w), d1 = f16(w + BB);
        __m256 sc = _mm256_set_m128(_mm_set1_ps(d1 * D[b + 1]), _mm_set1_ps(d0 * D[b]));
        acc1 = _mm256_fmadd_ps(p, sc, acc1);
        c1 += (q41 ? f16(w + 2) : -8.0f * d0) * S[b] + (q41 ? f16(w + BB + 2) : -8.0f * d1) * S[b + 1];
    }
    for (; b < nb; b++, w += BB) { /* a last odd block */
        const int8_t *xp = Q + ct__xq8_qpos(CT_DT_Q4_0, b, 0);
        __m128i raw = _mm_loadu_si128((const __m128i *)(w + qoff)), m = _mm_set1_epi8(15);
        __m256i nib = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), m), _mm_and_si128(raw, m));
        __m256 p = dot_u8s8(nib, _mm256_loadu2_m128i((const __m128i *)(xp + 32), (const __m128i *)xp));
        float d = f16(w);
        acc1 = _mm256_fmadd_ps(p, _mm256_set1_ps(d * D[b]), acc1);
        c1 += (q41 ? f16(w + 2) : -8.0f * d) * S[b];
    }
    float c = hsum8(cacc);
    return hsum8(_mm256_add_ps(acc, acc1)) + (q41 ? c : -8.0f * c) + c1;
}
static float dot_q4_0(const uint8_t *w, const void *xq, int nb) { return dot_q4(w, xq, nb, 18); }
static float dot_q4_1(const uint8_t *w, const void *xq, int nb) { return dot_q4(w, xq, nb, 20); }

void ct__dot_rows_q(const ct_mat *W, int r0, int nr, const void *xq, float *out) {
    int nb = W->cols / 32;
    const uint8_t *w = (const uint8_t *)W->data + (size_t)r0 * W->row_bytes;
    const int pf = W->dtype == CT_DT_Q4_0 || W->dtype == CT_DT_Q4_1;
    for (int i = 0; i < nr; i++, w += W->row_bytes) {
        if (pf) prefetch_row(w, W->row_bytes);
        switch (W->dtype) {
        case CT_DT_Q8_0: out[i] = dot_q8_0(w, xq, nb); break;
        case CT_DT_Q4_0: out[i] = dot_q4_0(w, xq, nb); break;
        case CT_DT_Q4_1: out[i] = dot_q4_1(w, xq, nb); break;
        default: ct__dot_rows_q_ref(W, r0 + i, 1, xq, out + i); break;
        }
    }
}

/* ---- dequantize -------------------------------------------------------- */
/* 16 signed bytes times d -> out[0..15]. */
static inline void store16_i8(__m128i v, __m256 d, float *out) {
    _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)), d));
    _mm256_storeu_ps(out + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(v, 8))), d));
}
/* 16 unsigned bytes times d plus m (two roundings, as the reference). */
static inline void store16_u8m(__m128i v, __m256 d, __m256 m, float *out) {
    __m256 a = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v));
    __m256 b = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(v, 8)));
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_mul_ps(a, d), m));
    _mm256_storeu_ps(out + 8, _mm256_add_ps(_mm256_mul_ps(b, d), m));
}

void ct__dequant_range(const ct_mat *W, int r, int k0, int n, float *out) {
    const uint8_t *row = (const uint8_t *)W->data + (size_t)r * W->row_bytes;
    const __m128i m15 = _mm_set1_epi8(15), e8 = _mm_set1_epi8(8);
    int j = 0;
    switch (W->dtype) {
    case CT_DT_F32: memcpy(out, row + 4 * (size_t)k0, 4 * (size_t)n); return;
    case CT_DT_F16:
        row += 2 * (size_t)k0;
        for (; j + 8 <= n; j += 8) _mm256_storeu_ps(out + j, ld_f16(row + 2 * (size_t)j));
        for (; j < n; j++) out[j] = f16(row + 2 * (size_t)j);
        return;
    case CT_DT_BF16:
        row += 2 * (size_t)k0;
        for (; j + 8 <= n; j += 8) _mm256_storeu_ps(out + j, ld_bf16(row + 2 * (size_t)j));
        for (; j < n; j++) out[j] = sc_bf16(row + 2 * (size_t)j);
        return;
    case CT_DT_Q8_0:
        for (const uint8_t *b = row + (size_t)(k0 / 32) * 34; j < n; j += 32, b += 34) {
            __m256 d = _mm256_set1_ps(f16(b));
            store16_i8(_mm_loadu_si128((const __m128i *)(b + 2)), d, out + j);
            store16_i8(_mm_loadu_si128((const __m128i *)(b + 18)), d, out + j + 16);
        }
        return;
    case CT_DT_Q4_0:
        for (const uint8_t *b = row + (size_t)(k0 / 32) * 18; j < n; j += 32, b += 18) {
            __m256 d = _mm256_set1_ps(f16(b));
            __m128i v = _mm_loadu_si128((const __m128i *)(b + 2));
            store16_i8(_mm_sub_epi8(_mm_and_si128(v, m15), e8), d, out + j);
            store16_i8(_mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), m15), e8), d, out + j + 16);
        }
        return;
    case CT_DT_Q4_1:
        for (const uint8_t *b = row + (size_t)(k0 / 32) * 20; j < n; j += 32, b += 20) {
            __m256 d = _mm256_set1_ps(f16(b)), m = _mm256_set1_ps(f16(b + 2));
            __m128i v = _mm_loadu_si128((const __m128i *)(b + 4));
            store16_u8m(_mm_and_si128(v, m15), d, m, out + j);
            store16_u8m(_mm_and_si128(_mm_srli_epi16(v, 4), m15), d, m, out + j + 16);
        }
        return;
    default: ct__dequant_range_ref(W, r, k0, n, out); return;
    }
}

/* ---- GEMM: pack + micro-kernel ----------------------------------------- */
/* 8x8 transpose of r[0..7] in place (rows -> columns). */
static inline void tr8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20); r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20); r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31); r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31); r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

void ct__pack_panel(const float *src, int ld, int nr, int kc, float *dst) {
    int k = 0;
    for (; k + 8 <= kc; k += 8)
        for (int h = 0; h < 2; h++) { /* columns 8h .. 8h+7 of the panel */
            __m256 r[8];
            for (int i = 0; i < 8; i++)
                r[i] = 8 * h + i < nr ? _mm256_loadu_ps(src + (size_t)(8 * h + i) * ld + k) : _mm256_setzero_ps();
            tr8(r);
            for (int i = 0; i < 8; i++) _mm256_storeu_ps(dst + (size_t)(k + i) * CT_MM_NR + 8 * h, r[i]);
        }
    for (; k < kc; k++)
        for (int j = 0; j < CT_MM_NR; j++) dst[(size_t)k * CT_MM_NR + j] = j < nr ? src[(size_t)j * ld + k] : 0.0f;
}

/* Rows beyond mr read a valid row again (results dropped): one kernel shape. */
void ct__gemm_tile(int mr, int nc, int kc, const float *A, int lda, const float *P,
                   float *C, int ldc, const float *bias, int accumulate) {
    const float *a0 = A, *a1 = A + (mr > 1 ? 1 : 0) * (size_t)lda, *a2 = A + (mr > 2 ? 2 : 0) * (size_t)lda;
    const float *a3 = A + (mr > 3 ? 3 : 0) * (size_t)lda, *a4 = A + (mr > 4 ? 4 : 0) * (size_t)lda;
    const float *a5 = A + (mr > 5 ? 5 : 0) * (size_t)lda;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int k = 0; k < kc; k++, P += CT_MM_NR) {
        __m256 b0 = _mm256_loadu_ps(P), b1 = _mm256_loadu_ps(P + 8), a;
        a = _mm256_broadcast_ss(a0 + k); c00 = _mm256_fmadd_ps(a, b0, c00); c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(a1 + k); c10 = _mm256_fmadd_ps(a, b0, c10); c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(a2 + k); c20 = _mm256_fmadd_ps(a, b0, c20); c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(a3 + k); c30 = _mm256_fmadd_ps(a, b0, c30); c31 = _mm256_fmadd_ps(a, b1, c31);
        a = _mm256_broadcast_ss(a4 + k); c40 = _mm256_fmadd_ps(a, b0, c40); c41 = _mm256_fmadd_ps(a, b1, c41);
        a = _mm256_broadcast_ss(a5 + k); c50 = _mm256_fmadd_ps(a, b0, c50); c51 = _mm256_fmadd_ps(a, b1, c51);
    }
    __m256 acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    __m256 bv0 = _mm256_setzero_ps(), bv1 = bv0;
    float tmp[CT_MM_NR];
    if (!accumulate && bias) {
        memset(tmp, 0, sizeof tmp);
        memcpy(tmp, bias, sizeof(float) * (size_t)nc);
        bv0 = _mm256_loadu_ps(tmp);
        bv1 = _mm256_loadu_ps(tmp + 8);
    }
    for (int i = 0; i < mr; i++) {
        float *c = C + (size_t)i * ldc;
        if (nc == CT_MM_NR) {
            _mm256_storeu_ps(c, _mm256_add_ps(acc[i][0], accumulate ? _mm256_loadu_ps(c) : bv0));
            _mm256_storeu_ps(c + 8, _mm256_add_ps(acc[i][1], accumulate ? _mm256_loadu_ps(c + 8) : bv1));
        } else { /* partial panel: through a buffer */
            _mm256_storeu_ps(tmp, acc[i][0]);
            _mm256_storeu_ps(tmp + 8, acc[i][1]);
            for (int j = 0; j < nc; j++) c[j] = accumulate ? c[j] + tmp[j] : tmp[j] + (bias ? bias[j] : 0.0f);
        }
    }
}

#else /* no AVX2/FMA/F16C: the scalar twins */

const char *ct__matmul_isa(void) { return "scalar"; }
float ct__quant_block_q8(const float *v, int8_t *q, int *sum) { return ct__quant_block_q8_ref(v, q, sum); }
void ct__quantize_x_q8(const float *x, ct_dtype wt, void *out, int n) { ct__quantize_x_q8_ref(x, wt, out, n); }
void ct__dot_rows_f(const ct_mat *W, int r0, int nr, const float *x, float *out) { ct__dot_rows_f_ref(W, r0, nr, x, out); }
void ct__dot_rows_f_avx2(const ct_mat *W, int r0, int nr, const float *x, float *out) { ct__dot_rows_f_ref(W, r0, nr, x, out); }
void ct__dot_rows_q(const ct_mat *W, int r0, int nr, const void *xq, float *out) { ct__dot_rows_q_ref(W, r0, nr, xq, out); }
void ct__dot_rows_qf(const ct_mat *W, int r0, int nr, int nt, const float *x, const float *xs, float *out) {
    ct__dot_rows_qf_ref(W, r0, nr, nt, x, xs, out);
}
void ct__x_block_sums(const float *x, int n, float *out) { ct__x_block_sums_ref(x, n, out); }
void ct__dequant_range(const ct_mat *W, int r, int k0, int n, float *out) { ct__dequant_range_ref(W, r, k0, n, out); }
void ct__pack_panel(const float *src, int ld, int nr, int kc, float *dst) {
    for (int k = 0; k < kc; k++)
        for (int j = 0; j < CT_MM_NR; j++) dst[(size_t)k * CT_MM_NR + j] = j < nr ? src[(size_t)j * ld + k] : 0.0f;
}
void ct__gemm_tile(int mr, int nc, int kc, const float *A, int lda, const float *P,
                   float *C, int ldc, const float *bias, int accumulate) {
    ct__gemm_tile_ref(mr, nc, kc, A, lda, P, C, ldc, bias, accumulate);
}
#endif
