/* src/tensor/nf4_matmul.c — fused NF4/FP4 dequantize + matmul for a frozen
 * 4-bit base: ct__nf4_matmul_xwt (y = x W^T, the forward pass) and
 * ct__nf4_matmul_dyw (dx = dy W, the input gradient), with their scalar
 * references (contracts in nf4_matmul.h).
 *
 * Design: each product is a Goto/BLIS GEMM (as src/tensor/gemm.c) whose
 * B-packing step reads W's 4-bit codes instead of floats:
 *   jc over N by NC -> pc over K by KC -> pack op(B) (KC, NC) FROM NF4
 *   ic over M by MC -> pack A (MC, KC) -> jr over NR strips -> ir over MR
 *   panels: 8 x 32 micro-kernel, 16 zmm accumulators.
 * The packed B block (at most KC x NC values, 1.5 MiB, pool scratch) is the
 * only dequantized copy of W at any time.
 *   forward, op(B) = W^T: a strip is 32 rows of W; 8 rows at a time are
 *     dequantized along k (one 64-block = 32 bytes -> 64 values) into an
 *     8 x KC buffer and transposed 8 x 16 into the strip;
 *   input gradient, op(B) = W: a strip row is 32 consecutive weights of one
 *     W row = 16 bytes with one scale, dequantized straight into place.
 * Dequantization: nibble -> vpermps from the 16-entry table in a register,
 * times the block's absmax (double quantization decoded per block on the
 * fly, map[q] * nested + offset with two f32 roundings, as bitsandbytes and
 * ct__q4_double_dequant do), so the values are bit-identical to
 * ct__dequantize_4bit_ref's. bf16 mode rounds those f32 values to bf16
 * (vcvtne2ps2bf16) into k-pairs, the layout vdpbf16ps reads; in the forward
 * direction a pair (k even, k odd) is exactly one byte (high, low nibble).
 *
 * Summation order (determinism): every output element is, per K block p
 * (KC = 256 f32 / 512 bf16), an FMA (vdpbf16ps) chain over k from 0 in
 * increasing order, then C = acc_0 + beta*C (one rounding, C not read when
 * beta == 0), C = acc_p + C for later blocks; padding adds exact zeros.
 * Threads take whole NR strips (or MR panels) of C, so the thread count does
 * not change any bit. With beta 0 or 1 this is also the chain ct__sgemm /
 * ct__sgemm_bf16 compute on the dequantized W (same KC), which the tests
 * use as a check.
 *
 * Vector paths need a 32-aligned start in the flattened W (in % 64 == 0
 * for whole rows: every Llama/GPT-2 shape); anything else (rows starting
 * mid-block, partial strips) goes element by element, same values.
 * AVX2 (+FMA) without AVX-512: 4 x 16 register tiles over the same packed
 * panels and an AVX2 NF4 dequantizer (f32 mode); bf16 pairs are formed by the
 * plain-C packing and multiplied as f32 halves. The bits equal the plain-C
 * kernels' (per-element FMA chains in the same order).
 * Leaves out: AVX2 packing for the non-NF4 types and the bf16 pairs,
 * splitting M across threads with a shared packed B (when M
 * is split each thread dequantizes its own copy of the B blocks), packing A
 * once per call instead of once per NC block. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/internal.h"
#include "formats/tstore.h"
#include "tensor/gemm.h"
#include "tensor/nf4_matmul.h"

/* the double-quant scale is two f32 roundings, like torch's elementwise ops */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#if defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512BF16__)
#include <immintrin.h>
#define NF4MM_AVX512 1
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define NF4MM_AVX2 1
#endif

/* KW = 32-bit words per packed k row of a K block: KC = KW floats (f32) or
 * 2 * KW bf16 (pairs). Same KC, MR, NR as gemm.c / gemm_bf16.c. */
enum { MR = 8, NR = 32, MC = 128, NC = 1536, KW = 256 };
#define A_WORDS ((size_t)MC * KW)
#define B_WORDS ((size_t)NC * KW)
#define T_WORDS ((size_t)8 * KW)

static inline int imin(int a, int b) { return a < b ? a : b; }

/* ---- the product job ------------------------------------------------------ */
typedef struct {
    const ct_mat *M;    /* the frozen matrix (out, in) */
    const ct_nf4_mat *W;/* M->q4 for NF4, else NULL */
    const float *tab;   /* NF4/FP4: 16-entry code table */
    int dyw, bf16;      /* op(B) = W (input gradient) or W^T (forward); compute mode */
    int M_, N, K;       /* C (M_, N) = A (M_, K) op(B) (K, N) + beta C */
    const float *A;     /* (M_, K) contiguous */
    float *C;           /* (M_, N) contiguous */
    float beta;
    int split_m, units; /* threads split M (MR panels) or N (NR strips) */
    ct_pool *pool;
} job;

/* ---- scalar element access ------------------------------------------------ */
static inline float block_scale(const ct_nf4_mat *W, int64_t b) {
    if (W->absmax) return W->absmax[b];
    const float v = W->nested_map[W->qabsmax[b]] * W->nested_absmax[b / CT_NF4_NESTED_BLOCK];
    return v + W->offset;
}
/* element i of the flattened NF4 W */
static inline float q4_at(const ct_nf4_mat *W, const float *tab, int64_t i) {
    const uint8_t by = W->packed[i >> 1];
    return tab[(i & 1) ? (by & 15) : (by >> 4)] * block_scale(W, i / CT_NF4_BLOCK);
}
static inline const uint8_t *row_ptr(const job *g, int row) {
    return (const uint8_t *)g->M->data + (size_t)row * g->M->row_bytes;
}
/* W[row][col] as f32, exactly as ct__mat_row_f32 / the dequantizers give it */
static inline float w_at(const job *g, int row, int col) {
    const uint8_t *p;
    uint16_t h;
    switch (g->M->dtype) {
    case CT_DT_NF4: return q4_at(g->W, g->tab, (int64_t)row * g->M->cols + col);
    case CT_DT_F32: return ((const float *)row_ptr(g, row))[col];
    case CT_DT_F16: memcpy(&h, row_ptr(g, row) + 2 * (size_t)col, 2); return ct__f16_to_f32(h);
    case CT_DT_BF16: memcpy(&h, row_ptr(g, row) + 2 * (size_t)col, 2); return ct__bf16_to_f32(h);
    default: /* Q8_0: blocks of 34 bytes, f16 d then int8 q[32] */
        p = row_ptr(g, row) + (size_t)(col / 32) * 34;
        memcpy(&h, p, 2);
        return (float)((const int8_t *)(p + 2))[col % 32] * ct__f16_to_f32(h);
    }
}
/* bf16 round to nearest even (denormals to signed zero, as the packing does) */
static inline uint32_t bf16_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0) return (u >> 16) & 0x8000u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}
static inline uint32_t pair_bits(float lo, float hi) { return bf16_bits(lo) | bf16_bits(hi) << 16; }
static inline float bf16_round(float f) {
    uint32_t u = bf16_bits(f) << 16;
    float r;
    memcpy(&r, &u, 4);
    return r;
}
/* The vector paths read 32 elements from (row, col): NF4 needs the flattened
 * index 32-aligned (one 64-block half), the others col % 32 == 0 (a Q8_0 block). */
static inline int vec_ok(const job *g, int row, int col) {
    if (g->M->dtype == CT_DT_NF4) return ((int64_t)row * g->M->cols + col) % 32 == 0;
    return col % 32 == 0;
}

/* ---- vector dequantization ------------------------------------------------ */
#if defined(NF4MM_AVX512)
static const int32_t ILV_LO[16] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
static const int32_t ILV_HI[16] = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
static const uint16_t PAIR_IDX[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                      8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};

/* 16 bytes -> the 16 even (*ev, high nibbles) and 16 odd (*od) elements. */
static inline void deq_split(const uint8_t *p, __m512 tab, __m512 d, __m512 *ev, __m512 *od) {
    const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p));
    *ev = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), tab), d); /* vpermps reads bits 0-3 */
    *od = _mm512_mul_ps(_mm512_permutexvar_ps(v, tab), d);
}
/* 16 bytes -> 32 elements in order (*y0 = 0..15, *y1 = 16..31). */
static inline void deq32(const uint8_t *p, __m512 tab, __m512 d, __m512 *y0, __m512 *y1) {
    __m512 e, o;
    deq_split(p, tab, d, &e, &o);
    *y0 = _mm512_permutex2var_ps(e, _mm512_loadu_si512(ILV_LO), o);
    *y1 = _mm512_permutex2var_ps(e, _mm512_loadu_si512(ILV_HI), o);
}
/* 16 bf16 pair words: word q = (bf16(lo[q]) | bf16(hi[q]) << 16). */
static inline __m512i pairs16(__m512 lo, __m512 hi) {
    const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo); /* halves 0-15 lo, 16-31 hi */
    return _mm512_permutexvar_epi16(_mm512_loadu_si512(PAIR_IDX), v);
}
/* W[row][col .. col+32) as f32 (vec_ok holds): *y0 = 0..15, *y1 = 16..31. */
static inline void vec32(const job *g, __m512 tab, int row, int col, __m512 *y0, __m512 *y1) {
    const uint8_t *p;
    switch (g->M->dtype) {
    case CT_DT_NF4: {
        const int64_t i = (int64_t)row * g->M->cols + col;
        deq32(g->W->packed + i / 2, tab, _mm512_set1_ps(block_scale(g->W, i / CT_NF4_BLOCK)), y0, y1);
        return;
    }
    case CT_DT_F32:
        p = row_ptr(g, row) + 4 * (size_t)col;
        *y0 = _mm512_loadu_ps(p);
        *y1 = _mm512_loadu_ps(p + 64);
        return;
    case CT_DT_F16:
        p = row_ptr(g, row) + 2 * (size_t)col;
        *y0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
        *y1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 32)));
        return;
    case CT_DT_BF16:
        p = row_ptr(g, row) + 2 * (size_t)col;
        *y0 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
        *y1 = _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p + 32))), 16));
        return;
    default: { /* Q8_0 */
        uint16_t h;
        p = row_ptr(g, row) + (size_t)(col / 32) * 34;
        memcpy(&h, p, 2);
        const __m512 d = _mm512_set1_ps(ct__f16_to_f32(h));
        *y0 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 2)))), d);
        *y1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 18)))), d);
        return;
    }
    }
}
#endif

#if defined(NF4MM_AVX2)
/* 8 bytes of 4-bit codes -> the 16 elements in order, times d (AVX2: the
 * 16-entry table as two 8-entry vpermps and a blend on bit 3). */
static inline __m256 lut16(__m256i idx, __m256 tlo, __m256 thi) {
    const __m256 lo = _mm256_permutevar8x32_ps(tlo, idx), hi = _mm256_permutevar8x32_ps(thi, idx);
    const __m256 m = _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7)));
    return _mm256_blendv_ps(lo, hi, m);
}
static inline void deq16_avx2(const uint8_t *p, __m256 tlo, __m256 thi, __m256 d, __m256 *y0, __m256 *y1) {
    const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
    const __m256 ev = _mm256_mul_ps(lut16(_mm256_srli_epi32(v, 4), tlo, thi), d); /* elements 2q */
    const __m256 od = _mm256_mul_ps(lut16(_mm256_and_si256(v, _mm256_set1_epi32(15)), tlo, thi), d);
    const __m256 a = _mm256_unpacklo_ps(ev, od), b = _mm256_unpackhi_ps(ev, od); /* per 128-bit lane */
    *y0 = _mm256_permute2f128_ps(a, b, 0x20);
    *y1 = _mm256_permute2f128_ps(a, b, 0x31);
}
/* 32 NF4 elements from flattened index i (i % 32 == 0: one scale) -> dst[0..32) */
static inline void deq32_nf4_avx2(const job *g, int64_t i, float *dst) {
    const __m256 tlo = _mm256_loadu_ps(g->tab), thi = _mm256_loadu_ps(g->tab + 8);
    const __m256 d = _mm256_set1_ps(block_scale(g->W, i / CT_NF4_BLOCK));
    __m256 y0, y1, y2, y3;
    deq16_avx2(g->W->packed + i / 2, tlo, thi, d, &y0, &y1);
    deq16_avx2(g->W->packed + i / 2 + 8, tlo, thi, d, &y2, &y3);
    _mm256_storeu_ps(dst, y0);
    _mm256_storeu_ps(dst + 8, y1);
    _mm256_storeu_ps(dst + 16, y2);
    _mm256_storeu_ps(dst + 24, y3);
}
#endif

/* W row `row`, columns k0..k0+n (f32) -> dst (n,). */
static void deq_span_f32(const job *g, int row, int k0, int n, float *dst) {
    int k = 0;
#if defined(NF4MM_AVX2)
    if (g->M->dtype == CT_DT_NF4 && vec_ok(g, row, k0))
        for (; k + 32 <= n; k += 32) deq32_nf4_avx2(g, (int64_t)row * g->M->cols + k0 + k, dst + k);
#endif
#if defined(NF4MM_AVX512)
    if (vec_ok(g, row, k0)) {
        const __m512 tab = _mm512_loadu_ps(g->tab);
        for (; k + 32 <= n; k += 32) {
            __m512 y0, y1;
            vec32(g, tab, row, k0 + k, &y0, &y1);
            _mm512_storeu_ps(dst + k, y0);
            _mm512_storeu_ps(dst + k + 16, y1);
        }
    }
#endif
    for (; k < n; k++) dst[k] = w_at(g, row, k0 + k);
}

/* The same as bf16 pair words: dst[q] = pair(k0 + 2q, k0 + 2q + 1), a
 * missing odd element (n odd) zero. */
static void deq_span_pairs(const job *g, int row, int k0, int n, uint32_t *dst) {
    int k = 0;
#if defined(NF4MM_AVX512)
    if (vec_ok(g, row, k0)) {
        const __m512 tab = _mm512_loadu_ps(g->tab);
        for (; k + 32 <= n; k += 32) {
            __m512 e, o;
            if (g->M->dtype == CT_DT_NF4) { /* byte q of a 16-byte run = the pair (2q, 2q + 1) */
                const int64_t i = (int64_t)row * g->M->cols + k0 + k;
                deq_split(g->W->packed + i / 2, tab, _mm512_set1_ps(block_scale(g->W, i / CT_NF4_BLOCK)), &e, &o);
                _mm512_storeu_si512((void *)(dst + k / 2), pairs16(e, o));
            } else { /* 32 consecutive values -> 32 consecutive bf16 halves = 16 pairs */
                vec32(g, tab, row, k0 + k, &e, &o);
                _mm512_storeu_si512((void *)(dst + k / 2), (__m512i)_mm512_cvtne2ps_pbh(o, e));
            }
        }
    }
#endif
    for (; k < n; k += 2)
        dst[k / 2] = pair_bits(w_at(g, row, k0 + k), k + 1 < n ? w_at(g, row, k0 + k + 1) : 0.0f);
}

/* t (8 rows, ld words) -> strip columns c0..c0+8: dst[q * NR + c0 + r] = t[r * ld + q], q < nq. */
static void rows_to_strip(const uint32_t *t, int ld, int nq, uint32_t *dst) {
    int q = 0;
#if defined(NF4MM_AVX512)
    for (; q + 16 <= nq; q += 16) ct__transpose8x16((const float *)(t + q), ld, (float *)(dst + (size_t)q * NR), NR);
#endif
    for (; q < nq; q++)
        for (int r = 0; r < 8; r++) dst[(size_t)q * NR + r] = t[(size_t)r * ld + q];
}

/* Forward: op(B) = W^T, strips of columns j0.. (rows of W), k in [k0, k0+kc).
 * Bp (ceil(nc/NR), kw, NR) words; T scratch (8, KW) words. */
static void pack_b_wt(const job *g, int k0, int kc, int j0, int nc, uint32_t *Bp, uint32_t *T) {
    const int kw = g->bf16 ? (kc + 1) / 2 : kc;
    for (int s = 0; s * NR < nc; s++, Bp += (size_t)NR * kw) {
        const int nr = imin(nc - s * NR, NR);
        for (int c0 = 0; c0 < NR; c0 += 8) {
            for (int r = 0; r < 8; r++) {
                uint32_t *t = T + (size_t)r * KW;
                if (c0 + r >= nr) memset(t, 0, sizeof(uint32_t) * (size_t)kw);
                else if (g->bf16) deq_span_pairs(g, j0 + s * NR + c0 + r, k0, kc, t);
                else deq_span_f32(g, j0 + s * NR + c0 + r, k0, kc, (float *)t);
            }
            rows_to_strip(T, KW, kw, Bp + c0);
        }
    }
}

/* Input gradient: op(B) = W, strips of columns j0.. of W, rows k0..k0+kc. */
static void pack_b_w(const job *g, int k0, int kc, int j0, int nc, uint32_t *Bp) {
    const int kw = g->bf16 ? (kc + 1) / 2 : kc;
#if defined(NF4MM_AVX512)
    const __m512 tab = _mm512_loadu_ps(g->tab);
#endif
    for (int s = 0; s * NR < nc; s++, Bp += (size_t)NR * kw) {
        const int nr = imin(nc - s * NR, NR), jb = j0 + s * NR;
        for (int q = 0; q < kw; q++) {
            uint32_t *d = Bp + (size_t)q * NR;
            const int r0 = k0 + (g->bf16 ? 2 * q : q), has1 = g->bf16 && 2 * q + 1 < kc;
#if defined(NF4MM_AVX512)
            if (nr == NR && vec_ok(g, r0, jb) && (!has1 || vec_ok(g, r0 + 1, jb))) {
                __m512 a0, a1, b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
                vec32(g, tab, r0, jb, &a0, &a1);
                if (!g->bf16) {
                    _mm512_store_ps((float *)d, a0);
                    _mm512_store_ps((float *)d + 16, a1);
                    continue;
                }
                if (has1) vec32(g, tab, r0 + 1, jb, &b0, &b1);
                _mm512_store_si512((void *)d, pairs16(a0, b0));
                _mm512_store_si512((void *)(d + 16), pairs16(a1, b1));
                continue;
            }
#endif
#if defined(NF4MM_AVX2)
            if (!g->bf16 && nr == NR && g->M->dtype == CT_DT_NF4 && vec_ok(g, r0, jb)) {
                deq32_nf4_avx2(g, (int64_t)r0 * g->M->cols + jb, (float *)d);
                continue;
            }
#endif
            for (int c = 0; c < NR; c++) {
                if (c >= nr) { d[c] = 0; continue; }
                const float v0 = w_at(g, r0, jb + c);
                if (!g->bf16) { memcpy(&d[c], &v0, 4); continue; }
                d[c] = pair_bits(v0, has1 ? w_at(g, r0 + 1, jb + c) : 0.0f);
            }
        }
    }
}

/* A rows i0..i0+mc, k in [k0, k0+kc) -> Ap (ceil(mc/MR), kw, MR) words
 * (f32 values, or bf16 pairs of consecutive k); rows past mc zero. */
static void pack_a(const job *g, int i0, int mc, int k0, int kc, uint32_t *Ap) {
    const int kw = g->bf16 ? (kc + 1) / 2 : kc, K = g->K;
    for (int p = 0; p * MR < mc; p++, Ap += (size_t)MR * kw) {
        const int mr = imin(mc - p * MR, MR);
        const float *src = g->A + (size_t)(i0 + p * MR) * K + k0;
        int q = 0;
#if defined(NF4MM_AVX512)
        if (mr == MR && !g->bf16) {
            for (; q + 16 <= kw; q += 16) ct__transpose8x16(src + q, K, (float *)(Ap + (size_t)q * MR), MR);
        } else if (mr == MR) {
            _Alignas(64) uint32_t t[8 * 16];
            for (; 2 * q + 32 <= kc; q += 16) {
                for (int r = 0; r < 8; r++) {
                    const float *s = src + (size_t)r * K + 2 * q;
                    _mm512_store_si512((void *)(t + 16 * r),
                                       (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + 16), _mm512_loadu_ps(s)));
                }
                ct__transpose8x16((const float *)t, 16, (float *)(Ap + (size_t)q * MR), MR);
            }
        }
#endif
        for (; q < kw; q++) {
            uint32_t *d = Ap + (size_t)q * MR;
            for (int r = 0; r < MR; r++) {
                if (r >= mr) { d[r] = 0; continue; }
                const float *s = src + (size_t)r * K;
                if (!g->bf16) { memcpy(&d[r], &s[q], 4); continue; }
                d[r] = pair_bits(s[2 * q], 2 * q + 1 < kc ? s[2 * q + 1] : 0.0f);
            }
        }
    }
}

/* ---- micro-kernels --------------------------------------------------------
 * C[mr, nr] (ldc) = sum over kw packed words of a (kw, MR) x b (kw, NR)
 * + beta * C (beta == 0: C not read); f32 FMAs or vdpbf16ps on pairs. */
#if defined(NF4MM_AVX512)
static inline void store_tile(__m512 acc[MR][2], float *C, size_t ldc, int mr, int nr, float beta) {
    const __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    const __mmask16 m1 = nr >= 32 ? 0xffff : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++, C += ldc) {
        if (r >= mr) break;
        if (beta == 0.0f) {
            _mm512_mask_storeu_ps(C, m0, acc[r][0]);
            _mm512_mask_storeu_ps(C + 16, m1, acc[r][1]);
        } else {
            _mm512_mask_storeu_ps(C, m0, _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, C), acc[r][0]));
            _mm512_mask_storeu_ps(C + 16, m1, _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, C + 16), acc[r][1]));
        }
    }
}

static void kernel_f32(int kw, const uint32_t *a, const uint32_t *b, float *C, size_t ldc, int mr, int nr,
                       float beta) {
    __m512 acc[MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    const float *af = (const float *)a, *bf = (const float *)b;
#pragma GCC unroll 2
    for (int k = 0; k < kw; k++, af += MR, bf += NR) {
        const __m512 b0 = _mm512_load_ps(bf), b1 = _mm512_load_ps(bf + 16);
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            const __m512 x = _mm512_set1_ps(af[r]);
            acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
        }
    }
    store_tile(acc, C, ldc, mr, nr, beta);
}

static void kernel_bf16(int kw, const uint32_t *a, const uint32_t *b, float *C, size_t ldc, int mr, int nr,
                        float beta) {
    __m512 acc[MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (int k = 0; k < kw; k++, a += MR, b += NR) {
        const __m512bh b0 = (__m512bh)_mm512_load_si512((const void *)b);
        const __m512bh b1 = (__m512bh)_mm512_load_si512((const void *)(b + 16));
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            const __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x, b1);
        }
    }
    store_tile(acc, C, ldc, mr, nr, beta);
}
#elif defined(NF4MM_AVX2)
/* 4 rows x 16 columns at a time (8 accumulators): the same per-element chain
 * as the plain-C kernel (one FMA per k, or per bf16 half: products of bf16
 * values are exact in f32, so FMA = multiply then add), so the bits match it. */
static inline void store4x16(__m256 acc[4][2], float *C, size_t ldc, int rows, int cols, float beta) {
    for (int r = 0; r < rows; r++, C += ldc) {
        _Alignas(32) float t[16];
        _mm256_store_ps(t, acc[r][0]);
        _mm256_store_ps(t + 8, acc[r][1]);
        for (int c = 0; c < cols; c++) C[c] = beta == 0.0f ? t[c] : fmaf(beta, C[c], t[c]);
    }
}

static void kernel_avx2(int bf16, int kw, const uint32_t *a, const uint32_t *b, float *C, size_t ldc, int mr, int nr,
                        float beta) {
    const __m256i hi_mask = _mm256_set1_epi32((int)0xffff0000u);
    for (int h = 0; h * 16 < nr; h++)
        for (int rg = 0; rg * 4 < mr; rg++) {
            __m256 acc[4][2];
            for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
            const uint32_t *ak = a + rg * 4, *bk = b + h * 16;
            for (int k = 0; k < kw; k++, ak += MR, bk += NR) {
                const __m256i w0 = _mm256_load_si256((const __m256i *)bk), w1 = _mm256_load_si256((const __m256i *)(bk + 8));
                if (!bf16) {
                    const __m256 b0 = _mm256_castsi256_ps(w0), b1 = _mm256_castsi256_ps(w1);
                    for (int r = 0; r < 4; r++) {
                        float x;
                        memcpy(&x, &ak[r], 4);
                        const __m256 xv = _mm256_set1_ps(x);
                        acc[r][0] = _mm256_fmadd_ps(xv, b0, acc[r][0]);
                        acc[r][1] = _mm256_fmadd_ps(xv, b1, acc[r][1]);
                    }
                    continue;
                }
                const __m256 bh0 = _mm256_castsi256_ps(_mm256_and_si256(w0, hi_mask));
                const __m256 bh1 = _mm256_castsi256_ps(_mm256_and_si256(w1, hi_mask));
                const __m256 bl0 = _mm256_castsi256_ps(_mm256_slli_epi32(w0, 16));
                const __m256 bl1 = _mm256_castsi256_ps(_mm256_slli_epi32(w1, 16));
                for (int r = 0; r < 4; r++) { /* one vdpbf16ps lane: odd k (high half) first, then even */
                    const __m256i av = _mm256_set1_epi32((int)ak[r]);
                    const __m256 xh = _mm256_castsi256_ps(_mm256_and_si256(av, hi_mask));
                    const __m256 xl = _mm256_castsi256_ps(_mm256_slli_epi32(av, 16));
                    acc[r][0] = _mm256_fmadd_ps(xl, bl0, _mm256_fmadd_ps(xh, bh0, acc[r][0]));
                    acc[r][1] = _mm256_fmadd_ps(xl, bl1, _mm256_fmadd_ps(xh, bh1, acc[r][1]));
                }
            }
            const int rows = imin(mr - rg * 4, 4), cols = imin(nr - h * 16, 16);
            store4x16(acc, C + (size_t)(rg * 4) * ldc + h * 16, ldc, rows, cols, beta);
        }
}
static void kernel_f32(int kw, const uint32_t *a, const uint32_t *b, float *C, size_t ldc, int mr, int nr,
                       float beta) { kernel_avx2(0, kw, a, b, C, ldc, mr, nr, beta); }
static void kernel_bf16(int kw, const uint32_t *a, const uint32_t *b, float *C, size_t ldc, int mr, int nr,
                        float beta) { kernel_avx2(1, kw, a, b, C, ldc, mr, nr, beta); }
#else
static inline float f_of(uint32_t w) { float f; memcpy(&f, &w, 4); return f; }
static void kernel_any(int bf16, int kw, const uint32_t *a, const uint32_t *b, float *C, size_t ldc, int mr, int nr,
                       float beta) {
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < kw; k++, a += MR, b += NR)
        for (int r = 0; r < MR; r++)
            for (int c = 0; c < NR; c++) {
                if (!bf16) { acc[r][c] = fmaf(f_of(a[r]), f_of(b[c]), acc[r][c]); continue; }
                /* one vdpbf16ps lane: odd k first, then even (Intel's pseudo-code) */
                acc[r][c] += f_of(a[r] & 0xffff0000u) * f_of(b[c] & 0xffff0000u);
                acc[r][c] += f_of(a[r] << 16) * f_of(b[c] << 16);
            }
    for (int r = 0; r < mr; r++, C += ldc)
        for (int c = 0; c < nr; c++) C[c] = beta == 0.0f ? acc[r][c] : fmaf(beta, C[c], acc[r][c]);
}
static void kernel_f32(int kw, const uint32_t *a, const uint32_t *b, float *C, size_t ldc, int mr, int nr,
                       float beta) { kernel_any(0, kw, a, b, C, ldc, mr, nr, beta); }
static void kernel_bf16(int kw, const uint32_t *a, const uint32_t *b, float *C, size_t ldc, int mr, int nr,
                        float beta) { kernel_any(1, kw, a, b, C, ldc, mr, nr, beta); }
#endif

/* ---- driver --------------------------------------------------------------- */

/* One thread's C[m0:m1, n0:n1]. Without pool scratch (out of memory) it
 * packs one tile at a time on the stack: slower, same arithmetic. */
static void work(const job *g, int ith, int m0, int m1, int n0, int n1) {
    uint32_t *buf = ct__pool_scratch(g->pool, ith, sizeof(uint32_t) * (A_WORDS + B_WORDS + T_WORDS));
    _Alignas(64) uint32_t tile[(MR + NR + 8) * KW];
    uint32_t *Ap = buf ? buf : tile, *Bp = buf ? buf + A_WORDS : tile + MR * KW;
    uint32_t *T = buf ? buf + A_WORDS + B_WORDS : tile + (MR + NR) * KW;
    const int mcap = buf ? MC : MR, ncap = buf ? NC : NR, kcap = g->bf16 ? 2 * KW : KW;
    void (*kern)(int, const uint32_t *, const uint32_t *, float *, size_t, int, int, float) =
        g->bf16 ? kernel_bf16 : kernel_f32;
    for (int jc = n0; jc < n1; jc += ncap) {
        const int nc = imin(n1 - jc, ncap);
        for (int pc = 0; pc < g->K; pc += kcap) {
            const int kc = imin(g->K - pc, kcap), kw = g->bf16 ? (kc + 1) / 2 : kc;
            const float beta = pc == 0 ? g->beta : 1.0f;
            if (g->dyw) pack_b_w(g, pc, kc, jc, nc, Bp);
            else pack_b_wt(g, pc, kc, jc, nc, Bp, T);
            for (int ic = m0; ic < m1; ic += mcap) {
                const int mc = imin(m1 - ic, mcap);
                pack_a(g, ic, mc, pc, kc, Ap);
                for (int jr = 0; jr < nc; jr += NR)
                    for (int ir = 0; ir < mc; ir += MR)
                        kern(kw, Ap + (size_t)ir * kw, Bp + (size_t)jr * kw, g->C + (size_t)(ic + ir) * g->N + jc + jr,
                             (size_t)g->N, imin(mc - ir, MR), imin(nc - jr, NR), beta);
            }
        }
    }
}

static void task(void *ctx, int ith, int nth) {
    const job *g = ctx;
    const int u0 = (int)((long long)g->units * ith / nth), u1 = (int)((long long)g->units * (ith + 1) / nth);
    if (u0 >= u1) return;
    if (g->split_m) work(g, ith, u0 * MR, imin(u1 * MR, g->M_), 0, g->N);
    else work(g, ith, 0, g->M_, u0 * NR, imin(u1 * NR, g->N));
}

static ct_status check_mat(const ct_mat *W, int M, const void *in, const void *out, const char *fn) {
    if (!W || W->rows <= 0 || W->cols <= 0 || !W->data)
        return ct__err(CT_ERR_ARG, "%s: matrix missing or with a non-positive shape", fn);
    switch (W->dtype) {
    case CT_DT_NF4: {
        const ct_nf4_mat *q = W->q4;
        if (!q || !q->packed || q->rows != W->rows || q->cols != W->cols)
            return ct__err(CT_ERR_ARG, "%s: NF4 matrix %dx%d without its 4-bit arrays", fn, W->rows, W->cols);
        if (!q->absmax && (!q->qabsmax || !q->nested_absmax || !q->nested_map))
            return ct__err(CT_ERR_ARG, "%s: NF4 matrix %dx%d has neither absmax nor the double-quant arrays", fn,
                           W->rows, W->cols);
        if (q->type != CT_Q4_NF4 && q->type != CT_Q4_FP4) return ct__err(CT_ERR_ARG, "%s: unknown 4-bit type", fn);
        break;
    }
    case CT_DT_Q8_0:
        if (W->cols % 32) return ct__err(CT_ERR_ARG, "%s: Q8_0 matrix with %d columns", fn, W->cols);
        /* fallthrough */
    case CT_DT_F32:
    case CT_DT_F16:
    case CT_DT_BF16:
        if (W->row_bytes < ct__dtype_nbytes(W->dtype, W->cols))
            return ct__err(CT_ERR_ARG, "%s: row stride %zu is short for %d %s values", fn, W->row_bytes, W->cols,
                           ct_dtype_name(W->dtype));
        break;
    default:
        return ct__err(CT_ERR_UNSUPPORTED, "%s: no fused kernel for %s matrices", fn, ct_dtype_name(W->dtype));
    }
    if (M < 0 || (M > 0 && (!in || !out))) return ct__err(CT_ERR_ARG, "%s: M = %d or a NULL operand", fn, M);
    return CT_OK;
}

static ct_status run(int dyw, float *C, const float *A, const ct_mat *W, int M, float beta, int bf16,
                     ct_pool *pool, const char *fn) {
    ct_status st = check_mat(W, M, A, C, fn);
    if (st != CT_OK || M == 0) return st;
    const ct_nf4_mat *q = W->dtype == CT_DT_NF4 ? W->q4 : NULL;
    job g = {W, q, q && q->type == CT_Q4_FP4 ? ct__fp4_map : ct__nf4_map, dyw, bf16 != 0, M,
             dyw ? W->cols : W->rows, dyw ? W->rows : W->cols, A, C, beta, 0, 0, pool};
    const int mt = (M + MR - 1) / MR, nt = (g.N + NR - 1) / NR, nth = ct__pool_size(pool);
    /* split N unless it is much narrower: a thread splitting M dequantizes all of W */
    g.split_m = nt < nth || (long long)mt * MR > 4LL * nt * NR;
    g.units = g.split_m ? mt : nt;
    if (nth == 1 || (double)M * g.N * g.K < 2e5) task(&g, 0, 1);
    else ct__pool_run(pool, task, &g);
    return CT_OK;
}

ct_status ct__qmm_xwt(float *y, const float *x, const ct_mat *W, int M, float beta, int bf16, ct_pool *pool) {
    return run(0, y, x, W, M, beta, bf16, pool, "ct__qmm_xwt");
}

ct_status ct__qmm_dyw(float *dx, const float *dy, const ct_mat *W, int M, float beta, int bf16, ct_pool *pool) {
    return run(1, dx, dy, W, M, beta, bf16, pool, "ct__qmm_dyw");
}

ct_mat ct__nf4_as_mat(const ct_nf4_mat *W) {
    ct_mat m = {.dtype = CT_DT_NF4, .rows = W ? W->rows : 0, .cols = W ? W->cols : 0,
                .data = W ? W->packed : NULL, .q4 = W};
    return m;
}

ct_status ct__nf4_matmul_xwt(float *y, const float *x, const ct_nf4_mat *W, int M, float beta, int bf16,
                             ct_pool *pool) {
    if (!W) return ct__err(CT_ERR_ARG, "ct__nf4_matmul_xwt: NF4 matrix missing");
    const ct_mat m = ct__nf4_as_mat(W);
    return run(0, y, x, &m, M, beta, bf16, pool, "ct__nf4_matmul_xwt");
}

ct_status ct__nf4_matmul_dyw(float *dx, const float *dy, const ct_nf4_mat *W, int M, float beta, int bf16,
                             ct_pool *pool) {
    if (!W) return ct__err(CT_ERR_ARG, "ct__nf4_matmul_dyw: NF4 matrix missing");
    const ct_mat m = ct__nf4_as_mat(W);
    return run(1, dx, dy, &m, M, beta, bf16, pool, "ct__nf4_matmul_dyw");
}

/* ---- references ----------------------------------------------------------- */

void ct__nf4_mat_dequant_ref(const ct_nf4_mat *W, float *out) {
    const int64_t n = (int64_t)W->rows * W->cols, nb = ct__q4_nblocks(n, CT_NF4_BLOCK);
    for (int64_t b = 0; b < nb; b++) {
        float am;
        if (W->absmax) am = W->absmax[b];
        else ct__q4_double_dequant(W->qabsmax + b, 1, W->nested_absmax + b / CT_NF4_NESTED_BLOCK, W->nested_map,
                                   W->offset, &am);
        const int64_t s = b * CT_NF4_BLOCK, len = n - s < CT_NF4_BLOCK ? n - s : CT_NF4_BLOCK;
        ct__dequantize_4bit_ref(W->packed + s / 2, &am, len, CT_NF4_BLOCK, W->type, out + s);
    }
}

/* C (M, N) = A (M, K) op(B) + beta C in double; op(B)[k][n] = Wf[n*K + k]
 * (xwt) or Wf[k*N + n] (dyw), Wf the matrix dequantized by the reference code
 * (ct__nf4_mat_dequant_ref for NF4, ct__mat_row_f32 otherwise). */
static ct_status ref(int dyw, float *C, const float *A, const ct_mat *W, int M, float beta, int bf16,
                     const char *fn) {
    ct_status st = check_mat(W, M, A, C, fn);
    if (st != CT_OK || M == 0) return st;
    const int N = dyw ? W->cols : W->rows, K = dyw ? W->rows : W->cols;
    const size_t n = (size_t)W->rows * W->cols;
    float *Wf = malloc(sizeof(float) * n);
    double *acc = malloc(sizeof(double) * (size_t)N);
    if (!Wf || !acc) {
        free(Wf);
        free(acc);
        return ct__err(CT_ERR_NOMEM, "%s: %dx%d reference weight", fn, W->rows, W->cols);
    }
    if (W->dtype == CT_DT_NF4) ct__nf4_mat_dequant_ref(W->q4, Wf);
    else
        for (int r = 0; r < W->rows; r++) ct__mat_row_f32(W, r, Wf + (size_t)r * W->cols);
    if (bf16)
        for (size_t i = 0; i < n; i++) Wf[i] = bf16_round(Wf[i]);
    for (int m = 0; m < M; m++) {
        const float *a = A + (size_t)m * K;
        float *c = C + (size_t)m * N;
        for (int j = 0; j < N; j++) acc[j] = 0.0;
        for (int k = 0; k < K; k++) {
            const double av = bf16 ? bf16_round(a[k]) : a[k];
            if (dyw) {
                const float *w = Wf + (size_t)k * N;
                for (int j = 0; j < N; j++) acc[j] += av * w[j];
            } else {
                for (int j = 0; j < N; j++) acc[j] += av * Wf[(size_t)j * K + k];
            }
        }
        for (int j = 0; j < N; j++) c[j] = beta == 0.0f ? (float)acc[j] : (float)(acc[j] + (double)beta * c[j]);
    }
    free(Wf);
    free(acc);
    return CT_OK;
}

ct_status ct__qmm_xwt_ref(float *y, const float *x, const ct_mat *W, int M, float beta, int bf16) {
    return ref(0, y, x, W, M, beta, bf16, "ct__qmm_xwt_ref");
}

ct_status ct__qmm_dyw_ref(float *dx, const float *dy, const ct_mat *W, int M, float beta, int bf16) {
    return ref(1, dx, dy, W, M, beta, bf16, "ct__qmm_dyw_ref");
}

ct_status ct__nf4_matmul_xwt_ref(float *y, const float *x, const ct_nf4_mat *W, int M, float beta, int bf16) {
    if (!W) return ct__err(CT_ERR_ARG, "ct__nf4_matmul_xwt_ref: NF4 matrix missing");
    const ct_mat m = ct__nf4_as_mat(W);
    return ref(0, y, x, &m, M, beta, bf16, "ct__nf4_matmul_xwt_ref");
}

ct_status ct__nf4_matmul_dyw_ref(float *dx, const float *dy, const ct_nf4_mat *W, int M, float beta, int bf16) {
    if (!W) return ct__err(CT_ERR_ARG, "ct__nf4_matmul_dyw_ref: NF4 matrix missing");
    const ct_mat m = ct__nf4_as_mat(W);
    return ref(1, dx, dy, &m, M, beta, bf16, "ct__nf4_matmul_dyw_ref");
}
