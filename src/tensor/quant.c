/* src/tensor/quant.c — scalar reference conversions between F32 and the
 * stored dtypes: dequantization of F16/BF16/Q8_0/Q4_0/Q4_1 (and integer
 * types) to F32, and ggml-reference quantization to Q8_0/Q4_0/Q4_1.
 *
 * These are the definitions the SIMD kernels are checked against, so they are
 * written for exactness, not speed: every block field is read with memcpy
 * (mapped data carries no alignment guarantee), and floating-point
 * contraction is disabled so a*b+c is two roundings, as in numpy/gguf-py.
 * Leaves out K-quants and the other GGML types (the loaders reject them).
 */
#include <math.h>
#include <string.h>
#include "core/internal.h"
#include "tensor/quant.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* ---- unaligned little-endian loads -------------------------------------- */

static inline uint16_t ld_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static inline float ld_f16(const uint8_t *p) { return ct__f16_to_f32(ld_u16(p)); }

/* ---- dequantization ----------------------------------------------------- */

/* Q8_0 block (34 bytes): f16 d, int8 q[32]. */
static void dequant_q8_0(const uint8_t *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, b += sizeof(ct_block_q8_0), y += CT_QK) {
        const float d = ld_f16(b);
        const int8_t *q = (const int8_t *)(b + 2);
        for (int j = 0; j < CT_QK; j++) y[j] = (float)q[j] * d;
    }
}

/* Q4_0 block (18 bytes): f16 d, u8 qs[16]; low nibbles are elements 0..15. */
static void dequant_q4_0(const uint8_t *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, b += sizeof(ct_block_q4_0), y += CT_QK) {
        const float d = ld_f16(b);
        const uint8_t *qs = b + 2;
        for (int j = 0; j < CT_QK / 2; j++) {
            y[j] = d * (float)((int)(qs[j] & 0x0F) - 8);
            y[j + CT_QK / 2] = d * (float)((int)(qs[j] >> 4) - 8);
        }
    }
}

/* Q4_1 block (20 bytes): f16 d, f16 m, u8 qs[16]. */
static void dequant_q4_1(const uint8_t *b, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, b += sizeof(ct_block_q4_1), y += CT_QK) {
        const float d = ld_f16(b), m = ld_f16(b + 2);
        const uint8_t *qs = b + 4;
        for (int j = 0; j < CT_QK / 2; j++) {
            float lo = d * (float)(qs[j] & 0x0F);
            float hi = d * (float)(qs[j] >> 4);
            y[j] = lo + m;
            y[j + CT_QK / 2] = hi + m;
        }
    }
}

void ct__dequant_row(ct_dtype dt, const void *src, float *dst, int64_t n) {
    const uint8_t *p = (const uint8_t *)src;
    switch (dt) {
    case CT_DT_F32: memcpy(dst, p, (size_t)n * sizeof(float)); break;
    case CT_DT_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = ld_f16(p + 2 * i);
        break;
    case CT_DT_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = ct__bf16_to_f32(ld_u16(p + 2 * i));
        break;
    case CT_DT_Q8_0: dequant_q8_0(p, dst, n / CT_QK); break;
    case CT_DT_Q4_0: dequant_q4_0(p, dst, n / CT_QK); break;
    case CT_DT_Q4_1: dequant_q4_1(p, dst, n / CT_QK); break;
    case CT_DT_I8:
        for (int64_t i = 0; i < n; i++) dst[i] = (float)(int8_t)p[i];
        break;
    case CT_DT_U8:
        for (int64_t i = 0; i < n; i++) dst[i] = (float)p[i];
        break;
    case CT_DT_I16:
        for (int64_t i = 0; i < n; i++) dst[i] = (float)(int16_t)ld_u16(p + 2 * i);
        break;
    case CT_DT_I32:
        for (int64_t i = 0; i < n; i++) { int32_t v; memcpy(&v, p + 4 * i, 4); dst[i] = (float)v; }
        break;
    case CT_DT_I64:
        for (int64_t i = 0; i < n; i++) { int64_t v; memcpy(&v, p + 8 * i, 8); dst[i] = (float)v; }
        break;
    case CT_DT_F64:
        for (int64_t i = 0; i < n; i++) { double v; memcpy(&v, p + 8 * i, 8); dst[i] = (float)v; }
        break;
    default:
        for (int64_t i = 0; i < n; i++) dst[i] = NAN;
        break;
    }
}

/* ---- quantization (ggml reference rounding) ----------------------------- */

/* min(15, trunc(v)) for v >= 0, as ggml's MIN(15, (int8_t)v); NaN gives 0
 * (ggml leaves it undefined). */
static inline uint8_t nib(float v) {
    if (!(v >= 0.0f)) return 0;
    return v >= 15.0f ? 15 : (uint8_t)v;
}

/* roundf clamped to int8 (NaN gives 0). */
static inline int8_t round_i8(float v) {
    if (!(v > -128.0f)) return v != v ? 0 : -128;
    if (v > 127.0f) return 127;
    return (int8_t)roundf(v);
}

void ct__quantize_row_q8_0_ref(const float *x, ct_block_q8_0 *dst, int64_t n) {
    for (int64_t i = 0; i < n / CT_QK; i++, x += CT_QK) {
        float amax = 0.0f;
        for (int j = 0; j < CT_QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        ct_block_q8_0 b;
        b.d = ct__f32_to_f16(d);
        for (int j = 0; j < CT_QK; j++) b.q[j] = round_i8(x[j] * id);
        memcpy(&dst[i], &b, sizeof b);
    }
}

void ct__quantize_row_q4_0_ref(const float *x, ct_block_q4_0 *dst, int64_t n) {
    for (int64_t i = 0; i < n / CT_QK; i++, x += CT_QK) {
        float amax = 0.0f, vmax = 0.0f; /* largest |x| and its signed value */
        for (int j = 0; j < CT_QK; j++) {
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); vmax = x[j]; }
        }
        const float d = vmax / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        ct_block_q4_0 b;
        b.d = ct__f32_to_f16(d);
        for (int j = 0; j < CT_QK / 2; j++) {
            float x0 = x[j] * id, x1 = x[j + CT_QK / 2] * id;
            b.qs[j] = (uint8_t)(nib(x0 + 8.5f) | (nib(x1 + 8.5f) << 4));
        }
        memcpy(&dst[i], &b, sizeof b);
    }
}

void ct__quantize_row_q4_1_ref(const float *x, ct_block_q4_1 *dst, int64_t n) {
    for (int64_t i = 0; i < n / CT_QK; i++, x += CT_QK) {
        float mn = x[0], mx = x[0];
        for (int j = 1; j < CT_QK; j++) {
            if (x[j] < mn) mn = x[j];
            if (x[j] > mx) mx = x[j];
        }
        const float d = (mx - mn) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        ct_block_q4_1 b;
        b.d = ct__f32_to_f16(d);
        b.m = ct__f32_to_f16(mn);
        for (int j = 0; j < CT_QK / 2; j++) {
            float x0 = (x[j] - mn) * id, x1 = (x[j + CT_QK / 2] - mn) * id;
            b.qs[j] = (uint8_t)(nib(x0 + 0.5f) | (nib(x1 + 0.5f) << 4));
        }
        memcpy(&dst[i], &b, sizeof b);
    }
}

int ct__quantize_row(ct_dtype dt, const float *x, void *dst, int64_t n) {
    uint8_t *p = (uint8_t *)dst;
    if (n < 0 || n % ct_dtype_block(dt) != 0) return -1;
    switch (dt) {
    case CT_DT_F32: memcpy(p, x, (size_t)n * sizeof(float)); return 0;
    case CT_DT_F16:
        for (int64_t i = 0; i < n; i++) { uint16_t h = ct__f32_to_f16(x[i]); memcpy(p + 2 * i, &h, 2); }
        return 0;
    case CT_DT_BF16:
        for (int64_t i = 0; i < n; i++) { uint16_t h = ct__f32_to_bf16(x[i]); memcpy(p + 2 * i, &h, 2); }
        return 0;
    case CT_DT_Q8_0: ct__quantize_row_q8_0_ref(x, (ct_block_q8_0 *)dst, n); return 0;
    case CT_DT_Q4_0: ct__quantize_row_q4_0_ref(x, (ct_block_q4_0 *)dst, n); return 0;
    case CT_DT_Q4_1: ct__quantize_row_q4_1_ref(x, (ct_block_q4_1 *)dst, n); return 0;
    default: return -1;
    }
}
