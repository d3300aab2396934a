/* src/tensor/nf4.c — NF4/FP4 4-bit block quantization and double
 * quantization, bit-compatible with bitsandbytes 0.50.x on the CPU (see
 * src/tensor/nf4.h for the layout and docs/qlora.md for how it was checked).
 *
 * What bitsandbytes runs on a CPU, and so what is reproduced here:
 *   - quantize_4bit: its "default" torch backend (scale by the f32
 *     reciprocal 1/max(absmax, 1e-38), clamp to [-1, 1], torch.bucketize on
 *     the f32 midpoints of the sorted table; the short last block divides
 *     instead and stores the clamped absmax);
 *   - the offset of the double quantization: torch.mean in f32 (ATen's
 *     cascade sum; reproduced in torch_sum below);
 *   - quantize_blockwise (8-bit, the nested absmax): its C CPU kernel
 *     (v = x / absmax snapped to a 65535-step grid, then the nearest code;
 *     established by probing the 0.50.2 library, see docs/qlora.md);
 *   - the dynamic map: create_dynamic_map(signed=True), whose torch.linspace
 *     in f32 rounds start + step*i once (a fused multiply-add).
 * Floating-point contraction is off in this file: every other a*b+c is two
 * roundings, as in torch's elementwise ops.
 * Leaves out: NaN/Inf inputs (bitsandbytes' result for them is not matched),
 * f16/bf16 inputs (convert first), the AVX2 path of the row dequantizer.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tensor/nf4.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>
#define NF4_AVX512 1
#endif

/* ---- tables --------------------------------------------------------------- */

/* bitsandbytes get_4bit_type("nf4"): the f32 roundings of its decimal table. */
const float ct__nf4_map[16] = {
    -0x1.000000p+0f, -0x1.647362p-1f, -0x1.0cd660p-1f, -0x1.946540p-2f,
    -0x1.23449ap-2f, -0x1.7a6a7ep-3f, -0x1.74f0e2p-4f, 0x0.0p+0f,
    0x1.45f5fep-4f,  0x1.4995c6p-3f,  0x1.f809bap-3f,  0x1.5a0674p-2f,
    0x1.c34970p-2f,  0x1.200f56p-1f,  0x1.722766p-1f,  0x1.000000p+0f,
};

/* get_4bit_type("fp4"): {0, 0.0625, 8, 12, 4, 6, 2, 3, -0, ...} / 12 in f32
 * (the "-0" there is an integer, so entry 8 is +0.0). bitsandbytes' C CPU
 * dequantizer writes -0.0 for code 8 in some shapes (rows whose length is
 * not a multiple of the blocksize); the values are equal, the bits are not. */
const float ct__fp4_map[16] = {
    0x0.0p+0f,       0x1.555556p-8f,  0x1.555556p-1f,  0x1.000000p+0f,
    0x1.555556p-2f,  0x1.000000p-1f,  0x1.555556p-3f,  0x1.000000p-2f,
    0x0.0p+0f,       -0x1.555556p-8f, -0x1.555556p-1f, -0x1.000000p+0f,
    -0x1.555556p-2f, -0x1.000000p-1f, -0x1.555556p-3f, -0x1.000000p-2f,
};

/* torch.argsort of the FP4 table as bitsandbytes' bounds use it (ascending;
 * the two zeros 0 and 8 in this order). NF4 is sorted: identity. */
static const uint8_t fp4_order[16] = {11, 10, 13, 12, 15, 14, 9, 0, 8, 1, 6, 7, 4, 5, 2, 3};

typedef struct {
    float bounds[15];  /* f32 midpoints of the sorted table */
    uint8_t code[16];  /* bucket -> stored code */
} q4_bounds;

static void make_bounds(ct_q4_type t, q4_bounds *b) {
    float sorted[16];
    for (int k = 0; k < 16; k++) {
        b->code[k] = (uint8_t)(t == CT_Q4_NF4 ? k : fp4_order[k]);
        sorted[k] = (t == CT_Q4_NF4 ? ct__nf4_map : ct__fp4_map)[b->code[k]];
    }
    for (int k = 0; k < 15; k++) b->bounds[k] = (sorted[k] + sorted[k + 1]) / 2.0f;
}

/* torch.bucketize(v, bounds, right=False): the number of bounds < v. */
static inline uint8_t bucket(const q4_bounds *b, float v) {
    int k = 0;
    while (k < 15 && b->bounds[k] < v) k++;
    return b->code[k];
}

static inline float clamp1(float v) { return v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v); }

/* ---- create_dynamic_map(signed=True) -------------------------------------- */

/* torch.linspace(start, end, steps) in f32 on the CPU: step = (end-start)/(steps-1);
 * the first half is start + step*i, the second end - step*(steps-1-i), each
 * one rounding (ATen's kernel is compiled with FMA contraction). */
static void linspace_f32(float start, float end, int steps, float *out) {
    const float step = (end - start) / (float)(steps - 1);
    const int half = steps / 2;
    for (int i = 0; i < steps; i++)
        out[i] = i < half ? fmaf(step, (float)i, start) : fmaf(-step, (float)(steps - 1 - i), end);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void ct__dynamic_map_signed(float map[256]) {
    /* 10 ** (i - 6) as Python computes it (a double), applied as an f32 scalar */
    static const double pow10[7] = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0};
    float bnd[65];
    int n = 0;
    for (int i = 0; i < 7; i++) {
        const int items = (1 << i) + 1; /* 2**(i + 7 - 7) + 1 */
        linspace_f32(0.1f, 1.0f, items, bnd);
        const float s = (float)pow10[i];
        for (int j = 0; j + 1 < items; j++) {
            const float mean = (bnd[j] + bnd[j + 1]) / 2.0f;
            map[n++] = s * mean;
            map[n++] = -(s * mean);
        }
    }
    map[n++] = 0.0f;
    map[n++] = 1.0f;
    qsort(map, 256, sizeof(float), cmp_float); /* n == 256: 2*127 + 2 */
}

/* ---- torch.sum / torch.mean (f32, CPU) ------------------------------------ */

enum { TS_LANES = 8, TS_ROWS = 4, TS_LEVELS = 4 };

static int64_t ceil_log2(int64_t x) {
    if (x <= 2) return 1;
    int64_t r = 0;
    for (uint64_t v = (uint64_t)(x - 1); v; v >>= 1) r++;
    return r;
}

/* ATen multi_row_sum over `size` groups of TS_ROWS consecutive elements, each
 * element `lanes` floats wide: out[k] (lanes,) sums element g*TS_ROWS + k. */
static void multi_row_sum(const float *x, int64_t size, int lanes, float out[TS_ROWS][TS_LANES]) {
    float acc[TS_LEVELS][TS_ROWS][TS_LANES];
    memset(acc, 0, sizeof(acc));
    int64_t lp = ceil_log2(size) / TS_LEVELS;
    if (lp < 4) lp = 4;
    const int64_t step = (int64_t)1 << lp, mask = step - 1;
    int64_t i = 0;
    for (; i + step <= size;) {
        for (int64_t j = 0; j < step; j++, i++)
            for (int k = 0; k < TS_ROWS; k++)
                for (int l = 0; l < lanes; l++) acc[0][k][l] += x[(i * TS_ROWS + k) * lanes + l];
        for (int j = 1; j < TS_LEVELS; j++) {
            for (int k = 0; k < TS_ROWS; k++)
                for (int l = 0; l < lanes; l++) {
                    acc[j][k][l] += acc[j - 1][k][l];
                    acc[j - 1][k][l] = 0.0f;
                }
            if ((i & (mask << (j * lp))) != 0) break;
        }
    }
    for (; i < size; i++)
        for (int k = 0; k < TS_ROWS; k++)
            for (int l = 0; l < lanes; l++) acc[0][k][l] += x[(i * TS_ROWS + k) * lanes + l];
    for (int j = 1; j < TS_LEVELS; j++)
        for (int k = 0; k < TS_ROWS; k++)
            for (int l = 0; l < lanes; l++) acc[0][k][l] += acc[j][k][l];
    memcpy(out, acc[0], sizeof(acc[0]));
}

/* ATen row_sum over `size` elements of `lanes` floats: out (lanes,). */
static void row_sum(const float *x, int64_t size, int lanes, float *out) {
    float ps[TS_ROWS][TS_LANES];
    const int64_t size_ilp = size / TS_ROWS;
    multi_row_sum(x, size_ilp, lanes, ps);
    for (int64_t i = size_ilp * TS_ROWS; i < size; i++)
        for (int l = 0; l < lanes; l++) ps[0][l] += x[i * lanes + l];
    for (int k = 1; k < TS_ROWS; k++)
        for (int l = 0; l < lanes; l++) ps[0][l] += ps[k][l];
    memcpy(out, ps[0], (size_t)lanes * sizeof(float));
}

/* One serial cascade_sum call over x (n,), accumulated into a zero output. */
static float cascade_sum(const float *x, int64_t n) {
    float v[TS_LANES];
    if (n >= TS_LANES) { /* vectorized_inner_sum */
        const int64_t nv = n / TS_LANES;
        row_sum(x, nv, TS_LANES, v);
        float fin = 0.0f;
        for (int64_t k = nv * TS_LANES; k < n; k++) fin += x[k];
        for (int l = 0; l < TS_LANES; l++) fin += v[l];
        return 0.0f + fin;
    }
    row_sum(x, n, 1, v); /* scalar path */
    return 0.0f + v[0];
}

float ct__torch_sum_f32(const float *x, int64_t n, int torch_threads) {
    enum { GRAIN = 32768, MAXT = 256 };
    if (torch_threads <= 1 || n < GRAIN) return cascade_sum(x, n);
    if (torch_threads > MAXT) torch_threads = MAXT;
    /* TensorIterator's two-pass reduction: at::parallel_for chunks, one partial
     * per thread slot (unused slots stay 0), then the slots are summed. */
    float buf[MAXT] = {0};
    int64_t nt = (n + GRAIN - 1) / GRAIN;
    if (nt > torch_threads) nt = torch_threads;
    const int64_t chunk = (n + nt - 1) / nt;
    for (int64_t t = 0; t < nt; t++) {
        const int64_t b = t * chunk, e = b + chunk < n ? b + chunk : n;
        if (b < e) buf[t] = cascade_sum(x + b, e - b);
    }
    return cascade_sum(buf, torch_threads);
}

float ct__torch_mean_f32(const float *x, int64_t n, int torch_threads) {
    return ct__torch_sum_f32(x, n, torch_threads) / (float)n;
}

/* ---- 4-bit quantization ---------------------------------------------------- */

void ct__quantize_4bit_ref(const float *x, int64_t n, int64_t blocksize, ct_q4_type t,
                           uint8_t *packed, float *absmax) {
    q4_bounds b;
    make_bounds(t, &b);
    const int64_t full = n - n % blocksize;
    uint8_t prev = 0;
    for (int64_t s = 0; s < n; s += blocksize) {
        const int64_t e = s + blocksize < n ? s + blocksize : n;
        float am = 0.0f;
        for (int64_t i = s; i < e; i++) am = fmaxf(am, fabsf(x[i]));
        const int tail = s >= full;
        if (tail) am = fmaxf(am, 1e-38f); /* the short block stores the clamped value */
        absmax[s / blocksize] = am;
        const float r = 1.0f / fmaxf(am, 1e-38f);
        for (int64_t i = s; i < e; i++) {
            const float v = clamp1(tail ? x[i] / am : x[i] * r);
            const uint8_t c = bucket(&b, v);
            if (i & 1) packed[i >> 1] = (uint8_t)(prev << 4 | c);
            else prev = c;
        }
    }
    if (n & 1) packed[n >> 1] = (uint8_t)(prev << 4 | bucket(&b, 0.0f)); /* F.pad with 0.0 */
}

/* The same, 64-element blocks in AVX-512: absmax by a max-reduction of |x|
 * (order does not change a max), v = clamp(x * r) with the scalar r, the
 * bucket as the count of bounds < v (15 compares, the same predicate as
 * bucket()), its code by a 16-entry permute, the pairs packed high nibble
 * first. Other blocksizes, the short last block and an odd n go to _ref. */
void ct__quantize_4bit(const float *x, int64_t n, int64_t blocksize, ct_q4_type t, uint8_t *packed,
                       float *absmax) {
    int64_t s = 0;
#ifdef NF4_AVX512
    if (blocksize == CT_NF4_BLOCK) {
        q4_bounds b;
        make_bounds(t, &b);
        __m512 bd[15];
        for (int k = 0; k < 15; k++) bd[k] = _mm512_set1_ps(b.bounds[k]);
        int32_t codes[16];
        for (int k = 0; k < 16; k++) codes[k] = b.code[k];
        const __m512i cv = _mm512_loadu_si512(codes), one = _mm512_set1_epi32(1);
        const __m512 lo = _mm512_set1_ps(-1.0f), hi = _mm512_set1_ps(1.0f);
        const __m128i m8 = _mm_set1_epi16(0x00FF);
        for (; s + CT_NF4_BLOCK <= n; s += CT_NF4_BLOCK) {
            __m512 v[4], m = _mm512_setzero_ps();
            for (int q = 0; q < 4; q++) {
                v[q] = _mm512_loadu_ps(x + s + 16 * q);
                m = _mm512_max_ps(m, _mm512_abs_ps(v[q]));
            }
            const float am = _mm512_reduce_max_ps(m);
            absmax[s / CT_NF4_BLOCK] = am;
            const __m512 r = _mm512_set1_ps(1.0f / fmaxf(am, 1e-38f));
            for (int q = 0; q < 4; q++) {
                const __m512 y = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v[q], r), lo), hi);
                __m512i c = _mm512_setzero_si512();
                for (int k = 0; k < 15; k++)
                    c = _mm512_mask_add_epi32(c, _mm512_cmp_ps_mask(bd[k], y, _CMP_LT_OQ), c, one);
                /* 16 codes as bytes; 16-bit lane j holds (c[2j], c[2j+1]) */
                const __m128i cb = _mm512_cvtepi32_epi8(_mm512_permutexvar_epi32(c, cv));
                const __m128i pr = _mm_and_si128(_mm_or_si128(_mm_slli_epi16(cb, 4), _mm_srli_epi16(cb, 8)), m8);
                _mm_storel_epi64((__m128i *)(packed + s / 2 + 8 * q), _mm_packus_epi16(pr, pr));
            }
        }
    }
#endif
    if (s < n) ct__quantize_4bit_ref(x + s, n - s, blocksize, t, packed + s / 2, absmax + s / blocksize);
}

void ct__dequantize_4bit_ref(const uint8_t *packed, const float *absmax, int64_t n, int64_t blocksize,
                             ct_q4_type t, float *y) {
    const float *tab = t == CT_Q4_NF4 ? ct__nf4_map : ct__fp4_map;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t by = packed[i >> 1];
        const int c = (i & 1) ? (by & 15) : (by >> 4);
        y[i] = tab[c] * absmax[i / blocksize];
    }
}

/* ---- 8-bit blockwise (the nested absmax) ---------------------------------- */

void ct__quantize_blockwise8_ref(const float *x, int64_t n, int64_t blocksize, const float code[256],
                                 uint8_t *q, float *absmax) {
    for (int64_t s = 0; s < n; s += blocksize) {
        const int64_t e = s + blocksize < n ? s + blocksize : n;
        float am = -FLT_MAX;
        for (int64_t i = s; i < e; i++) am = fmaxf(am, fabsf(x[i]));
        absmax[s / blocksize] = am;
        for (int64_t i = s; i < e; i++) {
            const float v = x[i] / am;
            /* the installed CPU kernel (0.50.2) does not take the nearest code
             * of v itself: it snaps v to a 65535-step grid over [-1, 1] and
             * takes the nearest code of that grid point. The grid index is
             * (int)((v + 1) * 32767.5 + 0.5) in f32 (three f32 roundings, then
             * truncation): found by probing (docs/qlora.md), 0 mismatches on
             * 56064 values crafted next to every decision point plus random
             * ones (tests/golden/gen_nf4_refs.py "blockwise8"), where
             * rint((v + 1) * 32767.5) in double or f32 gave 483-488. */
            const float gs = (v + 1.0f) * 32767.5f, gh = gs + 0.5f;
            const double g = (double)(int32_t)gh / 32767.5 - 1.0;
            int lo = 0, hi = 255; /* largest idx with code[idx] <= g (0 if none) */
            while (lo < hi) {
                const int mid = (lo + hi + 1) / 2;
                if ((double)code[mid] <= g) lo = mid;
                else hi = mid - 1;
            }
            int idx = lo;
            if (idx < 255) {
                const double dl = fabs(g - code[idx]), dr = fabs(g - code[idx + 1]);
                if (dr < dl) idx++;
            }
            q[i] = (uint8_t)idx;
        }
    }
}

void ct__q4_double_quant(const float *absmax, int64_t nb, int torch_threads, float *work,
                         uint8_t *qabsmax, float *nested_absmax, float *offset) {
    float map[256];
    ct__dynamic_map_signed(map);
    const float off = ct__torch_mean_f32(absmax, nb, torch_threads);
    for (int64_t b = 0; b < nb; b++) work[b] = absmax[b] - off;
    ct__quantize_blockwise8_ref(work, nb, CT_NF4_NESTED_BLOCK, map, qabsmax, nested_absmax);
    *offset = off;
}

void ct__q4_double_dequant(const uint8_t *qabsmax, int64_t nb, const float *nested_absmax,
                           const float map[256], float offset, float *absmax) {
    for (int64_t b = 0; b < nb; b++) {
        const float v = map[qabsmax[b]] * nested_absmax[b / CT_NF4_NESTED_BLOCK];
        absmax[b] = v + offset;
    }
}

/* ---- NF4 row dequantization ------------------------------------------------ */

void ct__nf4_dequant_row_ref(const uint8_t *packed, const float *absmax, float *y, int64_t n) {
    ct__dequantize_4bit_ref(packed, absmax, n, CT_NF4_BLOCK, CT_Q4_NF4, y);
}

#ifdef NF4_AVX512
/* 16 bytes (32 elements) -> y[0..32) with scale d: the nibbles are split,
 * interleaved high-first, widened to 32-bit indices and looked up in the
 * 16-float table with one vpermps each. */
static inline void nf4_deq32(const uint8_t *p, __m512 tab, __m512 d, float *y) {
    const __m128i v = _mm_loadu_si128((const __m128i *)p);
    const __m128i m = _mm_set1_epi8(0x0F);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), m), lo = _mm_and_si128(v, m);
    const __m128i a = _mm_unpacklo_epi8(hi, lo), b = _mm_unpackhi_epi8(hi, lo);
    _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_cvtepu8_epi32(a), tab), d));
    _mm512_storeu_ps(y + 16, _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_cvtepu8_epi32(b), tab), d));
}
#endif

void ct__nf4_dequant_row(const uint8_t *packed, const float *absmax, float *y, int64_t n) {
    int64_t i = 0;
#ifdef NF4_AVX512
    const __m512 tab = _mm512_loadu_ps(ct__nf4_map);
    for (; i + CT_NF4_BLOCK <= n; i += CT_NF4_BLOCK) {
        const __m512 d = _mm512_set1_ps(absmax[i / CT_NF4_BLOCK]);
        nf4_deq32(packed + i / 2, tab, d, y + i);
        nf4_deq32(packed + i / 2 + 16, tab, d, y + i + 32);
    }
#endif
    if (i < n) ct__nf4_dequant_row_ref(packed + i / 2, absmax + i / CT_NF4_BLOCK, y + i, n - i);
}

/* Decode row dots: the row's codes are decoded in registers (nibbles
 * through vpermps on the table), each block's sum of table[code] * x is
 * scaled once by its absmax into one accumulator per row of x; the weights
 * are never stored. */
void ct__nf4_dot_row(const uint8_t *packed, const float *absmax, int64_t n, const float *x, size_t ldx, int T,
                     float *out) {
    int64_t i = 0;
    float tail[4] = {0, 0, 0, 0};
#ifdef NF4_AVX512
    const __m512 tab = _mm512_loadu_ps(ct__nf4_map);
    const __m128i m = _mm_set1_epi8(0x0F);
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (; i + CT_NF4_BLOCK <= n; i += CT_NF4_BLOCK) {
        const __m512 d = _mm512_set1_ps(absmax[i / CT_NF4_BLOCK]);
        __m512 w[4];
        for (int h = 0; h < 2; h++) {
            const __m128i v = _mm_loadu_si128((const __m128i *)(packed + i / 2 + 16 * h));
            const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), m), lo = _mm_and_si128(v, m);
            w[2 * h] = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(hi, lo)), tab);
            w[2 * h + 1] = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpackhi_epi8(hi, lo)), tab);
        }
        for (int t = 0; t < T; t++) { /* the block's sum of table[code] * x, then one multiply by its scale */
            const float *xt = x + (size_t)t * ldx + i;
            __m512 p = _mm512_mul_ps(w[0], _mm512_loadu_ps(xt));
            for (int k = 1; k < 4; k++) p = _mm512_fmadd_ps(w[k], _mm512_loadu_ps(xt + 16 * k), p);
            acc[t] = _mm512_fmadd_ps(p, d, acc[t]);
        }
    }
    for (int t = 0; t < T; t++) tail[t] = _mm512_reduce_add_ps(acc[t]);
#endif
    for (; i < n; i++) {
        const uint8_t by = packed[i >> 1];
        const float w = ct__nf4_map[(i & 1) ? (by & 15) : (by >> 4)] * absmax[i / CT_NF4_BLOCK];
        for (int t = 0; t < T; t++) tail[t] += w * x[(size_t)t * ldx + i];
    }
    for (int t = 0; t < T; t++) out[t] = tail[t];
}

/* ---- plain int4 (comparison only) ------------------------------------------ */

void ct__quantize_int4_ref(const float *x, int64_t n, int64_t blocksize, uint8_t *packed, float *absmax) {
    uint8_t prev = 0;
    for (int64_t s = 0; s < n; s += blocksize) {
        const int64_t e = s + blocksize < n ? s + blocksize : n;
        float am = 0.0f;
        for (int64_t i = s; i < e; i++) am = fmaxf(am, fabsf(x[i]));
        absmax[s / blocksize] = am;
        const float r = am > 0.0f ? 7.0f / am : 0.0f;
        for (int64_t i = s; i < e; i++) {
            long q = lrintf(x[i] * r);
            q = q < -7 ? -7 : (q > 7 ? 7 : q);
            const uint8_t c = (uint8_t)(q + 8);
            if (i & 1) packed[i >> 1] = (uint8_t)(prev << 4 | c);
            else prev = c;
        }
    }
    if (n & 1) packed[n >> 1] = (uint8_t)(prev << 4 | 8);
}

void ct__dequantize_int4_ref(const uint8_t *packed, const float *absmax, int64_t n, int64_t blocksize, float *y) {
    for (int64_t i = 0; i < n; i++) {
        const uint8_t by = packed[i >> 1];
        const int c = (i & 1) ? (by & 15) : (by >> 4);
        y[i] = (float)(c - 8) / 7.0f * absmax[i / blocksize];
    }
}

/* ---- the quant-state JSON blob --------------------------------------------- */

int ct__py_float_repr(char *buf, size_t cap, double d) {
    char tmp[40];
    int p = 1;
    for (; p <= 17; p++) { /* shortest digits that read back to d */
        snprintf(tmp, sizeof(tmp), "%.*e", p - 1, d);
        if (strtod(tmp, NULL) == d) break;
    }
    /* tmp: [-]D[.DDD]e[+-]XX -> sign, digits, decimal exponent */
    const char *s = tmp;
    int neg = 0;
    if (*s == '-') { neg = 1; s++; }
    char dig[20];
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s != '.') dig[nd++] = *s;
    const int e10 = atoi(s + 1);
    while (nd > 1 && dig[nd - 1] == '0') nd--;
    char out[48];
    int o = 0;
    if (neg) out[o++] = '-';
    if (d == 0.0) {
        o += snprintf(out + o, sizeof(out) - (size_t)o, "0.0");
    } else if (e10 >= -4 && e10 < 16) { /* repr's fixed notation */
        if (e10 < 0) {
            out[o++] = '0';
            out[o++] = '.';
            for (int k = 0; k < -e10 - 1; k++) out[o++] = '0';
            for (int k = 0; k < nd; k++) out[o++] = dig[k];
        } else {
            for (int k = 0; k <= e10; k++) out[o++] = k < nd ? dig[k] : '0';
            out[o++] = '.';
            if (nd > e10 + 1)
                for (int k = e10 + 1; k < nd; k++) out[o++] = dig[k];
            else out[o++] = '0';
        }
    } else { /* D[.DDD]e[+-]XX, at least two exponent digits */
        out[o++] = dig[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int k = 1; k < nd; k++) out[o++] = dig[k];
        }
        o += snprintf(out + o, sizeof(out) - (size_t)o, "e%c%02d", e10 < 0 ? '-' : '+', abs(e10));
    }
    out[o] = 0;
    if ((size_t)o + 1 > cap) return -1;
    memcpy(buf, out, (size_t)o + 1);
    return o;
}

int ct__bnb4_state_json(char *buf, size_t cap, ct_q4_type t, int64_t blocksize, const char *dtype,
                        const int64_t *shape, int ndim, int nested, float offset) {
    char tmp[1024];
    int o = snprintf(tmp, sizeof(tmp), "{\"quant_type\": \"%s\", \"blocksize\": %lld, \"dtype\": \"%s\", \"shape\": [",
                     t == CT_Q4_NF4 ? "nf4" : "fp4", (long long)blocksize, dtype);
    for (int k = 0; k < ndim && o < (int)sizeof(tmp); k++)
        o += snprintf(tmp + o, sizeof(tmp) - (size_t)o, "%s%lld", k ? ", " : "", (long long)shape[k]);
    if (o < (int)sizeof(tmp)) o += snprintf(tmp + o, sizeof(tmp) - (size_t)o, "]");
    if (nested && o < (int)sizeof(tmp)) {
        char num[48];
        ct__py_float_repr(num, sizeof(num), (double)offset);
        o += snprintf(tmp + o, sizeof(tmp) - (size_t)o,
                      ", \"nested_blocksize\": %d, \"nested_dtype\": \"float32\", \"nested_offset\": %s",
                      CT_NF4_NESTED_BLOCK, num);
    }
    if (o < (int)sizeof(tmp)) o += snprintf(tmp + o, sizeof(tmp) - (size_t)o, "}");
    if (o >= (int)sizeof(tmp) || (size_t)o + 1 > cap) return -1;
    memcpy(buf, tmp, (size_t)o + 1);
    return o;
}
