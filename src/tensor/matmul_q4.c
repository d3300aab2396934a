/* src/tensor/matmul_q4.c — integer tile kernel for Q4_0/Q4_1 weights when
 * T > 1 (prompt processing), with its scalar twin.
 *
 * The f32 GEMM path pays a dequantization per weight and runs at the FMA
 * peak (16 MAC/cycle with AVX2). With x quantized to 8 bits once per call
 * (as the decode path and llama.cpp do), one vpmaddubsw does 32 u8 x s8
 * MACs: a pair of Q4 blocks is unpacked to nibbles once and then meets up to
 * 8 rows of x, 8 vector ops per 64 MACs per row of x, so this kernel beats
 * the f32 path by ~1.5x (docs/kernels.md). Per (pair of blocks, x row):
 *   v = madd(maddubs(lo, xlo) + maddubs(hi, xhi), 1)     8 int32 lanes
 *   Q4_0: v += c (= -8 * the lane's code sum, so v = sum (n - 8) q exactly)
 *   acc += float(v) * (d_w x4 | d_w' x4) * (d_x x4 | d_x' x4)
 *   Q4_1: acc += (m x4 | m' x4) * c (= s_b / 4 per lane, s_b = d_x sum q)
 * Accuracy: that of 8-bit x, the same bound as the decode path (see
 * tests/unit/test_matmul.c).
 * With AVX-512 VNNI + VL (Zen 4) the tiles use vpdpbusd instead (2 ops per
 * pair and row of x instead of 4), two W rows at a time (ct__dot_q4_tile2:
 * the x loads shared), and take Q8_0 too: x codes stored as q + 128 (u8),
 * W bytes the signed operand, each lane started from -128 * (its W bytes'
 * sum), once per pair for all rows of x. ct__matmul then uses them for every
 * T >= 4 (docs/kernels.md). Without VNNI, Q8_0 goes to the scalar twin (AUTO
 * never picks it there: a vpsignb per x row, no faster than the f32 path). */
#include <math.h>
#include <string.h>
#include "core/internal.h"
#include "tensor/matmul_kern.h"

/* Layout of one x row, per pair of blocks (2p, 2p+1), 128 bytes:
 *   int8  q[64]   lo(2p) lo(2p+1) hi(2p) hi(2p+1): codes 0..15 / 16..31
 *   float dx[8]   d_2p x4, d_2p+1 x4
 *   c[8]          Q4_0: int32 -8 * (codes 4j..4j+3 and 16+4j..16+4j+3 of the
 *                 lane's block, j = lane % 4); Q4_1: float s_b / 4
 * An odd last block gets a zero partner (codes, scales and c all 0). */
typedef struct {
    int8_t q[64];
    float dx[8];
    union { int32_t i[8]; float f[8]; } c;
} pair_x;
_Static_assert(sizeof(pair_x) == 128, "pair_x must be 128 bytes");

/* q(x) for the rows of x; fast and _ref differ only in the block quantizer. */
static void quantize_q4t(const float *x, ct_dtype wt, void *out, int n, float (*qb)(const float *, int8_t *, int *)) {
    const int nb = n / 32;
    pair_x *px = out;
    if (nb % 2) memset(&px[nb / 2], 0, sizeof(pair_x)); /* the zero partner */
    for (int b = 0; b < nb; b++) {
        pair_x *p = &px[b / 2];
        int8_t q[32];
        int sum, h = b % 2;
        float d = qb(x + 32 * (size_t)b, q, &sum);
        if (wt == CT_DT_Q8_0)
            for (int j = 0; j < 32; j++) q[j] = (int8_t)((uint8_t)q[j] ^ 0x80); /* q + 128, as u8 */
        memcpy(p->q + 16 * h, q, 16);
        memcpy(p->q + 32 + 16 * h, q + 16, 16);
        for (int j = 0; j < 4; j++) {
            p->dx[4 * h + j] = d;
            if (wt == CT_DT_Q8_0) {
                p->c.i[4 * h + j] = 0;
            } else if (wt == CT_DT_Q4_0) {
                int s = 0;
                for (int e = 0; e < 4; e++) s += q[4 * j + e] + q[16 + 4 * j + e];
                p->c.i[4 * h + j] = -8 * s;
            } else {
                p->c.f[4 * h + j] = d * (float)sum * 0.25f;
            }
        }
    }
}
void ct__quantize_x_q4t(const float *x, ct_dtype wt, void *out, int n) { quantize_q4t(x, wt, out, n, ct__quant_block_q8); }
void ct__quantize_x_q4t_ref(const float *x, ct_dtype wt, void *out, int n) {
    quantize_q4t(x, wt, out, n, ct__quant_block_q8_ref);
}

static inline uint16_t rd16(const uint8_t *p) { uint16_t h; memcpy(&h, p, 2); return h; }

/* out[t] = sum over pairs [p0, p0+np) of W row r's blocks . x row t's, for
 * t < tt; x row t's pair p0 at xq + t * xstride bytes. Blocks past the row's end (an odd
 * last one's partner) are skipped. Exact integer block dots, then as the
 * AVX2 kernel: one float product per block. */
void ct__dot_q4_tile_ref(const ct_mat *W, int r, int p0, int np, const void *xq, size_t xstride, int tt, float *out) {
    const int q41 = W->dtype == CT_DT_Q4_1, q80 = W->dtype == CT_DT_Q8_0, nb = W->cols / 32;
    const int bb = q80 ? 34 : q41 ? 20 : 18;
    const uint8_t *row = (const uint8_t *)W->data + (size_t)r * W->row_bytes;
    for (int t = 0; t < tt; t++) {
        const pair_x *px = (const pair_x *)((const uint8_t *)xq + (size_t)t * xstride) - p0;
        float s = 0.0f;
        for (int b = 2 * p0; b < 2 * (p0 + np) && b < nb; b++) {
            const uint8_t *blk = row + (size_t)b * bb, *qs = blk + (q41 ? 4 : 2);
            const pair_x *p = &px[b / 2];
            int h = b % 2, isum = 0;
            if (q80) { /* x codes stored as q + 128 (u8) */
                const int8_t *wq = (const int8_t *)(blk + 2);
                for (int j = 0; j < 16; j++)
                    isum += wq[j] * ((uint8_t)p->q[16 * h + j] - 128) + wq[16 + j] * ((uint8_t)p->q[32 + 16 * h + j] - 128);
                s += ct__f16_to_f32(rd16(blk)) * p->dx[4 * h] * (float)isum;
                continue;
            }
            for (int j = 0; j < 16; j++) {
                int lo = qs[j] & 15, hi = qs[j] >> 4;
                if (!q41) { lo -= 8; hi -= 8; }
                isum += lo * p->q[16 * h + j] + hi * p->q[32 + 16 * h + j];
            }
            s += ct__f16_to_f32(rd16(blk)) * p->dx[4 * h] * (float)isum;
            if (q41) s += ct__f16_to_f32(rd16(blk + 2)) * (4.0f * p->c.f[4 * h]);
        }
        out[t] = s;
    }
}

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

/* 4 copies of the f16 at a and 4 of the one at b, as 8 floats. */
static inline __m256 f16_4x2(const uint8_t *a, const uint8_t *b) {
    const uint64_t rep = 0x0001000100010001ull;
    return _mm256_cvtph_ps(_mm_set_epi64x((long long)(rd16(b) * rep), (long long)(rd16(a) * rep)));
}

/* Sums of the 8 vectors' lanes, in one vector (a[i] -> lane i). */
static inline __m256 hsum8x8(const __m256 a[8]) {
    __m256 h0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    __m256 h1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(h0, h1, 0x20), _mm256_permute2f128_ps(h0, h1, 0x31));
}

/* TT x rows against one W row; TT constant so the accumulators stay in
 * registers. A zero partner for an odd last block: its bytes are not read. */
static inline __attribute__((always_inline)) void tile(const uint8_t *w, int bb, int q41, int np, int odd_last,
                                                       const uint8_t *xq, size_t xs, const int TT, float *out) {
    const __m256i m15 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
    const int qoff = q41 ? 4 : 2;
    __m256 acc[8];
    for (int t = 0; t < 8; t++) acc[t] = _mm256_setzero_ps();
    for (int p = 0; p < np; p++, w += 2 * bb, xq += sizeof(pair_x)) {
        int single = odd_last && p == np - 1;
        __m128i r0 = _mm_loadu_si128((const __m128i *)(w + qoff));
        __m128i r1 = single ? _mm_setzero_si128() : _mm_loadu_si128((const __m128i *)(w + bb + qoff));
        __m256i raw = _mm256_set_m128i(r1, r0);
        __m256i lo = _mm256_and_si256(raw, m15), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m15);
        __m256 dw = f16_4x2(w, single ? w : w + bb), mw = dw;
        if (q41) mw = f16_4x2(w + 2, single ? w + 2 : w + bb + 2);
#pragma GCC unroll 8
        for (int t = 0; t < TT; t++) {
            const pair_x *px = (const pair_x *)(xq + (size_t)t * xs);
            __m256i s = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)px->q)),
                                         _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(px->q + 32))));
            __m256i v = _mm256_madd_epi16(s, ones);
            if (!q41) v = _mm256_add_epi32(v, _mm256_loadu_si256((const __m256i *)px->c.i));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_mul_ps(dw, _mm256_loadu_ps(px->dx)), acc[t]);
            if (q41) acc[t] = _mm256_fmadd_ps(mw, _mm256_loadu_ps(px->c.f), acc[t]);
        }
    }
    float tmp[8];
    _mm256_storeu_ps(tmp, hsum8x8(acc));
    for (int t = 0; t < TT; t++) out[t] = tmp[t];
}

#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define CT_Q4T_VNNI 1
/* The same tile with vpdpbusd (u8 x s8 summed into int32 lanes, no
 * saturation): 2 instructions per pair of blocks and row of x instead of 4.
 * Q8_0 (KIND 2): the W bytes are the signed side and x the unsigned one (its
 * codes are stored as q + 128), so each lane starts from -128 * (its 4 w
 * bytes' sum), computed once per pair and shared by the rows of x. Q4_0
 * (KIND 0) starts from x's c (-8 * its code sums), Q4_1 (KIND 1) from 0. */
static inline __attribute__((always_inline)) void tile_vnni(const uint8_t *w, size_t rb, int np, int odd_last,
                                                            const uint8_t *xq, size_t xs, const int KIND, const int R,
                                                            const int TT, float *out) {
    const int bb = KIND == 2 ? 34 : KIND == 1 ? 20 : 18, qoff = KIND == 1 ? 4 : 2;
    const __m256i m15 = _mm256_set1_epi8(15), k80 = _mm256_set1_epi8((char)0x80);
    __m256 acc[2][8];
    for (int i = 0; i < R; i++)
        for (int t = 0; t < 8; t++) acc[i][t] = _mm256_setzero_ps();
    for (int p = 0; p < np; p++, w += 2 * bb, xq += sizeof(pair_x)) {
        int single = odd_last && p == np - 1;
        __m256i lo[2], hi[2], init[2];
        __m256 dw[2], mw[2];
#pragma GCC unroll 2
        for (int i = 0; i < R; i++) {
            const uint8_t *wi = w + i * rb;
            init[i] = _mm256_setzero_si256();
            if (KIND == 2) { /* lo = codes 0..15 of both blocks, hi = 16..31 */
                __m128i a0 = _mm_loadu_si128((const __m128i *)(wi + 2)), b0 = _mm_loadu_si128((const __m128i *)(wi + 18));
                __m128i a1 = single ? _mm_setzero_si128() : _mm_loadu_si128((const __m128i *)(wi + bb + 2));
                __m128i b1 = single ? _mm_setzero_si128() : _mm_loadu_si128((const __m128i *)(wi + bb + 18));
                lo[i] = _mm256_set_m128i(a1, a0);
                hi[i] = _mm256_set_m128i(b1, b0);
                init[i] = _mm256_sub_epi32(init[i], _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(init[i], k80, lo[i]), k80, hi[i]));
            } else {
                __m128i r0 = _mm_loadu_si128((const __m128i *)(wi + qoff));
                __m128i r1 = single ? _mm_setzero_si128() : _mm_loadu_si128((const __m128i *)(wi + bb + qoff));
                __m256i raw = _mm256_set_m128i(r1, r0);
                lo[i] = _mm256_and_si256(raw, m15);
                hi[i] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m15);
            }
            dw[i] = f16_4x2(wi, single ? wi : wi + bb);
            mw[i] = dw[i];
            if (KIND == 1) mw[i] = f16_4x2(wi + 2, single ? wi + 2 : wi + bb + 2);
        }
#pragma GCC unroll 8
        for (int t = 0; t < TT; t++) {
            const pair_x *px = (const pair_x *)(xq + (size_t)t * xs);
            __m256i xl = _mm256_loadu_si256((const __m256i *)px->q), xh = _mm256_loadu_si256((const __m256i *)(px->q + 32));
            __m256 dx = _mm256_loadu_ps(px->dx);
            __m256i c = KIND == 0 ? _mm256_loadu_si256((const __m256i *)px->c.i) : _mm256_setzero_si256();
            __m256 cf = KIND == 1 ? _mm256_loadu_ps(px->c.f) : _mm256_setzero_ps();
            if (R > 1) __asm__("" : "+v"(xl), "+v"(xh), "+v"(dx)); /* one load each for the R rows */
#pragma GCC unroll 2
            for (int i = 0; i < R; i++) {
                __m256i v;
                if (KIND == 2) v = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(init[i], xl, lo[i]), xh, hi[i]);
                else v = _mm256_dpbusd_epi32(_mm256_dpbusd_epi32(KIND == 0 ? c : init[i], lo[i], xl), hi[i], xh);
                acc[i][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_mul_ps(dw[i], dx), acc[i][t]);
                if (KIND == 1) acc[i][t] = _mm256_fmadd_ps(mw[i], cf, acc[i][t]);
            }
        }
    }
    for (int i = 0; i < R; i++) {
        float tmp[8];
        _mm256_storeu_ps(tmp, hsum8x8(acc[i]));
        for (int t = 0; t < TT; t++) out[8 * i + t] = tmp[t];
    }
}
#define TILE_V(K, N) tile_vnni(w, 0, np, odd_last, xt, xstride, K, 1, N, out + t0)
#endif

void ct__dot_q4_tile(const ct_mat *W, int r, int p0, int np, const void *xq, size_t xstride, int tt, float *out) {
    const int q41 = W->dtype == CT_DT_Q4_1, q80 = W->dtype == CT_DT_Q8_0, nb = W->cols / 32;
    const int bb = q80 ? 34 : q41 ? 20 : 18;
#if !defined(CT_Q4T_VNNI)
    if (q80) { ct__dot_q4_tile_ref(W, r, p0, np, xq, xstride, tt, out); return; } /* AUTO never takes it here */
#endif
    const uint8_t *w = (const uint8_t *)W->data + (size_t)r * W->row_bytes + (size_t)2 * p0 * bb;
    const uint8_t *x = xq;
    const int odd_last = (nb % 2) && p0 + np == (nb + 1) / 2;
    for (int t0 = 0; t0 < tt;) { /* 8, then 4, 2, 1 */
        int n = tt - t0 >= 8 ? 8 : tt - t0 >= 4 ? 4 : tt - t0 >= 2 ? 2 : 1;
        const uint8_t *xt = x + (size_t)t0 * xstride;
#if defined(CT_Q4T_VNNI)
        const int K = q80 ? 2 : q41;
        if (K == 2) { if (n == 8) TILE_V(2, 8); else if (n == 4) TILE_V(2, 4); else if (n == 2) TILE_V(2, 2); else TILE_V(2, 1); }
        else if (K == 1) { if (n == 8) TILE_V(1, 8); else if (n == 4) TILE_V(1, 4); else if (n == 2) TILE_V(1, 2); else TILE_V(1, 1); }
        else { if (n == 8) TILE_V(0, 8); else if (n == 4) TILE_V(0, 4); else if (n == 2) TILE_V(0, 2); else TILE_V(0, 1); }
        t0 += n;
        continue;
#endif
        if (q41) {
            if (n == 8) tile(w, 20, 1, np, odd_last, xt, xstride, 8, out + t0);
            else if (n == 4) tile(w, 20, 1, np, odd_last, xt, xstride, 4, out + t0);
            else if (n == 2) tile(w, 20, 1, np, odd_last, xt, xstride, 2, out + t0);
            else tile(w, 20, 1, np, odd_last, xt, xstride, 1, out + t0);
        } else {
            if (n == 8) tile(w, 18, 0, np, odd_last, xt, xstride, 8, out + t0);
            else if (n == 4) tile(w, 18, 0, np, odd_last, xt, xstride, 4, out + t0);
            else if (n == 2) tile(w, 18, 0, np, odd_last, xt, xstride, 2, out + t0);
            else tile(w, 18, 0, np, odd_last, xt, xstride, 1, out + t0);
        }
        t0 += n;
    }
    (void)bb;
}

#if defined(CT_Q4T_VNNI)
#define TILE_V2(K, N) tile_vnni(w, W->row_bytes, np, odd_last, xt, xstride, K, 2, N, tmp)
void ct__dot_q4_tile2(const ct_mat *W, int r, int p0, int np, const void *xq, size_t xstride, int tt, float *out) {
    const int q41 = W->dtype == CT_DT_Q4_1, q80 = W->dtype == CT_DT_Q8_0, nb = W->cols / 32;
    const int bb = q80 ? 34 : q41 ? 20 : 18, K = q80 ? 2 : q41;
    const uint8_t *w = (const uint8_t *)W->data + (size_t)r * W->row_bytes + (size_t)2 * p0 * bb;
    const int odd_last = (nb % 2) && p0 + np == (nb + 1) / 2;
    for (int t0 = 0; t0 < tt;) { /* 8, then 4, 2, 1 */
        int n = tt - t0 >= 8 ? 8 : tt - t0 >= 4 ? 4 : tt - t0 >= 2 ? 2 : 1;
        const uint8_t *xt = (const uint8_t *)xq + (size_t)t0 * xstride;
        float tmp[16];
        if (K == 2) { if (n == 8) TILE_V2(2, 8); else if (n == 4) TILE_V2(2, 4); else if (n == 2) TILE_V2(2, 2); else TILE_V2(2, 1); }
        else if (K == 1) { if (n == 8) TILE_V2(1, 8); else if (n == 4) TILE_V2(1, 4); else if (n == 2) TILE_V2(1, 2); else TILE_V2(1, 1); }
        else { if (n == 8) TILE_V2(0, 8); else if (n == 4) TILE_V2(0, 4); else if (n == 2) TILE_V2(0, 2); else TILE_V2(0, 1); }
        for (int t = 0; t < n; t++) { out[t0 + t] = tmp[t]; out[8 + t0 + t] = tmp[8 + t]; }
        t0 += n;
    }
}
#else
void ct__dot_q4_tile2(const ct_mat *W, int r, int p0, int np, const void *xq, size_t xstride, int tt, float *out) {
    ct__dot_q4_tile(W, r, p0, np, xq, xstride, tt, out);
    ct__dot_q4_tile(W, r + 1, p0, np, xq, xstride, tt, out + 8);
}
#endif

#else
void ct__dot_q4_tile2(const ct_mat *W, int r, int p0, int np, const void *xq, size_t xstride, int tt, float *out) {
    ct__dot_q4_tile_ref(W, r, p0, np, xq, xstride, tt, out);
    ct__dot_q4_tile_ref(W, r + 1, p0, np, xq, xstride, tt, out + 8);
}
void ct__dot_q4_tile(const ct_mat *W, int r, int p0, int np, const void *xq, size_t xstride, int tt, float *out) {
    ct__dot_q4_tile_ref(W, r, p0, np, xq, xstride, tt, out);
}
#endif

/* ---- 8 W rows interleaved (r8): prompt processing on 8-bit x ---------- */
/* A group of 8 W rows is repacked per 32-block into 8 vectors of u8 codes,
 * vector k lane i = codes 4k..4k+3 of row i (Q4: nibbles; Q8_0: q + 128),
 * then the 8 rows' d and m as floats: 320 bytes per block (ct__w8_bytes).
 * One vpdpbusd then does 4 MACs for each of 8 rows against a broadcast of 4
 * x codes, and each lane ends as one output column: per block and row of x,
 * 8 vpdpbusd + cvt + mul + FMA for 8 W rows (the pair tiles above: 20 ops
 * for the same work, then a horizontal reduction). x per block: q[32] in
 * natural order, d, c (Q4_0: -8 * code sum, Q8_0: -128 * code sum, the
 * lane's start; Q4_1: d * code sum, times m). */
typedef struct {
    int8_t q[32];
    float d;
    union { int32_t i; float f; } c;
} blk_x;
_Static_assert(sizeof(blk_x) == CT_XR8_BLK, "blk_x must be CT_XR8_BLK bytes");

static void quantize_r8(const float *x, ct_dtype wt, void *out, int n, float (*qb)(const float *, int8_t *, int *)) {
    blk_x *bx = out;
    for (int b = 0; b < n / 32; b++) {
        int sum;
        bx[b].d = qb(x + 32 * (size_t)b, bx[b].q, &sum);
        if (wt == CT_DT_Q4_1) bx[b].c.f = bx[b].d * (float)sum;
        else bx[b].c.i = (wt == CT_DT_Q8_0 ? -128 : -8) * sum;
    }
}
void ct__quantize_x_r8(const float *x, ct_dtype wt, void *out, int n) { quantize_r8(x, wt, out, n, ct__quant_block_q8); }
void ct__quantize_x_r8_ref(const float *x, ct_dtype wt, void *out, int n) {
    quantize_r8(x, wt, out, n, ct__quant_block_q8_ref);
}

void ct__repack_w8_ref(const ct_mat *W, int r, int nr, void *out) {
    const int q41 = W->dtype == CT_DT_Q4_1, q80 = W->dtype == CT_DT_Q8_0, nb = W->cols / 32;
    const int bb = q80 ? 34 : q41 ? 20 : 18, qoff = q41 ? 4 : 2;
    uint8_t *o = out;
    memset(o, 0, (size_t)nb * CT_W8_BLK);
    for (int b = 0; b < nb; b++, o += CT_W8_BLK) {
        float *d = (float *)(o + 256), *m = d + 8;
        for (int i = 0; i < nr; i++) {
            const uint8_t *blk = (const uint8_t *)W->data + (size_t)(r + i) * W->row_bytes + (size_t)b * bb;
            for (int j = 0; j < 32; j++) {
                uint8_t c = q80 ? (uint8_t)(blk[2 + j] ^ 0x80) : j < 16 ? blk[qoff + j] & 15 : blk[qoff + j - 16] >> 4;
                o[32 * (j / 4) + 4 * i + j % 4] = c;
            }
            d[i] = ct__f16_to_f32(rd16(blk));
            m[i] = q41 ? ct__f16_to_f32(rd16(blk + 2)) : 0.0f;
        }
    }
}

/* out[ldo*t + i] = row i of the group . x row t (t < tt, x row t at xq + t * xstride,
 * nb blocks each). Exact integer block dots, one float product per block. */
void ct__dot_r8_tile_ref(const void *wp, int nb, ct_dtype wt, const void *xq, size_t xstride, int tt, float *out,
                         size_t ldo) {
    for (int t = 0; t < tt; t++) {
        const blk_x *bx = (const blk_x *)((const uint8_t *)xq + (size_t)t * xstride);
        for (int i = 0; i < 8; i++) {
            float s = 0.0f;
            for (int b = 0; b < nb; b++) {
                const uint8_t *o = (const uint8_t *)wp + (size_t)b * CT_W8_BLK;
                const float *d = (const float *)(o + 256);
                int32_t v = wt == CT_DT_Q4_1 ? 0 : bx[b].c.i;
                for (int j = 0; j < 32; j++) v += o[32 * (j / 4) + 4 * i + j % 4] * bx[b].q[j];
                s += (float)v * (d[i] * bx[b].d);
                if (wt == CT_DT_Q4_1) s += d[8 + i] * bx[b].c.f;
            }
            out[ldo * t + i] = s;
        }
    }
}

#if defined(CT_Q4T_VNNI)
/* dword k of the 16 bytes at p[i] + off, rows i = 0..7: out[k] lane i. */
static inline void transpose8x4(const uint8_t *const p[8], size_t off, __m256i out[4]) {
    __m256i y[4];
    for (int i = 0; i < 4; i++)
        y[i] = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)(p[i + 4] + off)),
                                _mm_loadu_si128((const __m128i *)(p[i] + off)));
    __m256i t0 = _mm256_unpacklo_epi32(y[0], y[1]), t1 = _mm256_unpackhi_epi32(y[0], y[1]);
    __m256i t2 = _mm256_unpacklo_epi32(y[2], y[3]), t3 = _mm256_unpackhi_epi32(y[2], y[3]);
    out[0] = _mm256_unpacklo_epi64(t0, t2);
    out[1] = _mm256_unpackhi_epi64(t0, t2);
    out[2] = _mm256_unpacklo_epi64(t1, t3);
    out[3] = _mm256_unpackhi_epi64(t1, t3);
}
static inline __m256 f16x8(const uint8_t *const p[8], size_t off) {
    return _mm256_cvtph_ps(_mm_setr_epi16((short)rd16(p[0] + off), (short)rd16(p[1] + off), (short)rd16(p[2] + off),
                                          (short)rd16(p[3] + off), (short)rd16(p[4] + off), (short)rd16(p[5] + off),
                                          (short)rd16(p[6] + off), (short)rd16(p[7] + off)));
}

void ct__repack_w8(const ct_mat *W, int r, int nr, void *out) {
    const int q41 = W->dtype == CT_DT_Q4_1, q80 = W->dtype == CT_DT_Q8_0, nb = W->cols / 32;
    if (nr < 8) { ct__repack_w8_ref(W, r, nr, out); return; }
    const int bb = q80 ? 34 : q41 ? 20 : 18, qoff = q41 ? 4 : 2;
    const __m256i m15 = _mm256_set1_epi8(15), k80 = _mm256_set1_epi8((char)0x80);
    const uint8_t *rw[8];
    for (int i = 0; i < 8; i++) rw[i] = (const uint8_t *)W->data + (size_t)(r + i) * W->row_bytes;
    uint8_t *o = out;
    for (int b = 0; b < nb; b++, o += CT_W8_BLK) {
        const size_t off = (size_t)b * bb;
        __m256i dw[4];
        transpose8x4(rw, off + qoff, dw); /* Q4: bytes 0..15 (codes k and 16 + k); Q8_0: codes 0..15 */
        if (q80) {
            __m256i dh[4];
            transpose8x4(rw, off + 18, dh); /* codes 16..31 */
            for (int k = 0; k < 4; k++) {
                _mm256_storeu_si256((__m256i *)(o + 32 * k), _mm256_xor_si256(dw[k], k80));
                _mm256_storeu_si256((__m256i *)(o + 32 * (k + 4)), _mm256_xor_si256(dh[k], k80));
            }
        } else {
            for (int k = 0; k < 4; k++) {
                _mm256_storeu_si256((__m256i *)(o + 32 * k), _mm256_and_si256(dw[k], m15));
                _mm256_storeu_si256((__m256i *)(o + 32 * (k + 4)), _mm256_and_si256(_mm256_srli_epi16(dw[k], 4), m15));
            }
        }
        _mm256_storeu_ps((float *)(o + 256), f16x8(rw, off));
        _mm256_storeu_ps((float *)(o + 288), q41 ? f16x8(rw, off + 2) : _mm256_setzero_ps());
    }
}

static inline int32_t rd32(const void *p) { int32_t v; memcpy(&v, p, 4); return v; }
static inline float rdf(const void *p) { float v; memcpy(&v, p, 4); return v; }

static inline __attribute__((always_inline)) void r8_tile(const uint8_t *wp, int nb, const uint8_t *xq, size_t xs,
                                                          const int Q41, const int TT, float *out, size_t ldo) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    for (int b = 0; b < nb; b++, wp += CT_W8_BLK, xq += CT_XR8_BLK) {
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(wp + 0)), w1 = _mm256_loadu_si256((const __m256i *)(wp + 32));
        const __m256i w2 = _mm256_loadu_si256((const __m256i *)(wp + 64)), w3 = _mm256_loadu_si256((const __m256i *)(wp + 96));
        const __m256i w4 = _mm256_loadu_si256((const __m256i *)(wp + 128)), w5 = _mm256_loadu_si256((const __m256i *)(wp + 160));
        const __m256i w6 = _mm256_loadu_si256((const __m256i *)(wp + 192)), w7 = _mm256_loadu_si256((const __m256i *)(wp + 224));
        const __m256 dw = _mm256_loadu_ps((const float *)(wp + 256));
        const __m256 mw = Q41 ? _mm256_loadu_ps((const float *)(wp + 288)) : _mm256_setzero_ps();
#define R8_ROW(T_, A_)                                                                                                  \
        if (TT > T_) {                                                                                                  \
            const uint8_t *xb = xq + (size_t)(T_) * xs;                                                                 \
            __m256i v0 = Q41 ? _mm256_setzero_si256() : _mm256_set1_epi32(rd32(xb + 36));                               \
            __m256i v1 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), w1, _mm256_set1_epi32(rd32(xb + 4)));              \
            v0 = _mm256_dpbusd_epi32(v0, w0, _mm256_set1_epi32(rd32(xb + 0)));                                          \
            v0 = _mm256_dpbusd_epi32(v0, w2, _mm256_set1_epi32(rd32(xb + 8)));                                          \
            v1 = _mm256_dpbusd_epi32(v1, w3, _mm256_set1_epi32(rd32(xb + 12)));                                         \
            v0 = _mm256_dpbusd_epi32(v0, w4, _mm256_set1_epi32(rd32(xb + 16)));                                         \
            v1 = _mm256_dpbusd_epi32(v1, w5, _mm256_set1_epi32(rd32(xb + 20)));                                         \
            v0 = _mm256_dpbusd_epi32(v0, w6, _mm256_set1_epi32(rd32(xb + 24)));                                         \
            v1 = _mm256_dpbusd_epi32(v1, w7, _mm256_set1_epi32(rd32(xb + 28)));                                         \
            A_ = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(v0, v1)),                                          \
                                 _mm256_mul_ps(dw, _mm256_set1_ps(rdf(xb + 32))), A_);                                  \
            if (Q41) A_ = _mm256_fmadd_ps(mw, _mm256_set1_ps(rdf(xb + 36)), A_);                                        \
        }
        R8_ROW(0, a0) R8_ROW(1, a1) R8_ROW(2, a2) R8_ROW(3, a3) R8_ROW(4, a4) R8_ROW(5, a5) R8_ROW(6, a6) R8_ROW(7, a7)
#undef R8_ROW
    }
    __m256 acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
    for (int t = 0; t < TT; t++) _mm256_storeu_ps(out + ldo * t, acc[t]);
}

void ct__dot_r8_tile(const void *wp, int nb, ct_dtype wt, const void *xq, size_t xstride, int tt, float *out,
                     size_t ldo) {
    const int q41 = wt == CT_DT_Q4_1;
    for (int t0 = 0; t0 < tt;) {
        int n = tt - t0 >= 8 ? 8 : tt - t0 >= 4 ? 4 : tt - t0 >= 2 ? 2 : 1;
        const uint8_t *x = (const uint8_t *)xq + (size_t)t0 * xstride;
        float *o = out + ldo * t0;
        if (q41) { if (n == 8) r8_tile(wp, nb, x, xstride, 1, 8, o, ldo); else if (n == 4) r8_tile(wp, nb, x, xstride, 1, 4, o, ldo);
                   else if (n == 2) r8_tile(wp, nb, x, xstride, 1, 2, o, ldo); else r8_tile(wp, nb, x, xstride, 1, 1, o, ldo); }
        else { if (n == 8) r8_tile(wp, nb, x, xstride, 0, 8, o, ldo); else if (n == 4) r8_tile(wp, nb, x, xstride, 0, 4, o, ldo);
               else if (n == 2) r8_tile(wp, nb, x, xstride, 0, 2, o, ldo); else r8_tile(wp, nb, x, xstride, 0, 1, o, ldo); }
        t0 += n;
    }
}
#else
void ct__repack_w8(const ct_mat *W, int r, int nr, void *out) { ct__repack_w8_ref(W, r, nr, out); }
void ct__dot_r8_tile(const void *wp, int nb, ct_dtype wt, const void *xq, size_t xstride, int tt, float *out,
                     size_t ldo) {
    ct__dot_r8_tile_ref(wp, nb, wt, xq, xstride, tt, out, ldo);
}
#endif
