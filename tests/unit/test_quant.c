/* tests/unit/test_quant.c — ct__dequant_row and the quantize_row_*_ref
 * functions of src/tensor/quant.c.
 *
 * Always: hand-built blocks with values worked out from the GGML block
 * definitions (include/ctune/dtype.h), rounding edge cases computed by hand,
 * unaligned sources, and round-trip error bounds.
 * With CTUNE_GGUF_PY_DIR set (tests/e2e/test_gguf_py.sh runs
 * tests/golden/gen_gguf.py there): quant.gguf from gguf-py, where for every
 * dtype our dequantization must equal gguf.quants.dequantize bit for bit and
 * our quantization must reproduce gguf.quants.quantize byte for byte.
 */
#include <stdint.h>
#include <string.h>
#include "check.h"
#include "core/internal.h"
#include "formats/gguf.h"
#include "tensor/quant.h"

static uint32_t fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* ---- hand-built blocks ---------------------------------------------------- */

static void test_dequant_blocks(void) {
    float y[CT_QK];
    ct_block_q8_0 b8;
    b8.d = 0x3800; /* f16 0.5 */
    for (int j = 0; j < CT_QK; j++) b8.q[j] = (int8_t)(j - 16);
    ct__dequant_row(CT_DT_Q8_0, &b8, y, CT_QK);
    for (int j = 0; j < CT_QK; j++) CHECK_EQ_INT(fbits(y[j]), fbits((float)(j - 16) * 0.5f));

    ct_block_q4_0 b40;
    b40.d = 0x3400; /* f16 0.25 */
    for (int j = 0; j < 16; j++) b40.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    ct__dequant_row(CT_DT_Q4_0, &b40, y, CT_QK);
    for (int j = 0; j < 16; j++) {
        CHECK_EQ_INT(fbits(y[j]), fbits((float)(j - 8) * 0.25f));      /* low nibble: element j */
        CHECK_EQ_INT(fbits(y[j + 16]), fbits((float)(7 - j) * 0.25f)); /* high nibble: element j+16 */
    }

    ct_block_q4_1 b41;
    b41.d = 0x4000; /* f16 2.0 */
    b41.m = 0xBC00; /* f16 -1.0 */
    for (int j = 0; j < 16; j++) b41.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    ct__dequant_row(CT_DT_Q4_1, &b41, y, CT_QK);
    for (int j = 0; j < 16; j++) {
        CHECK_EQ_INT(fbits(y[j]), fbits(2.0f * (float)j - 1.0f));
        CHECK_EQ_INT(fbits(y[j + 16]), fbits(2.0f * (float)(15 - j) - 1.0f));
    }

    /* F16 / BF16 bit patterns with known values (IEEE 754 binary16, bfloat16). */
    const uint16_t h[] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x3555, 0x8000};
    const float hv[] = {1.0f, -2.0f, 65504.0f, 5.9604644775390625e-8f, 0.333251953125f, -0.0f};
    float out[6];
    ct__dequant_row(CT_DT_F16, h, out, 6);
    for (int i = 0; i < 6; i++) CHECK_EQ_INT(fbits(out[i]), fbits(hv[i]));
    const uint16_t bf[] = {0x3F80, 0x4049, 0xC2F7};
    const float bv[] = {1.0f, 3.140625f, -123.5f};
    ct__dequant_row(CT_DT_BF16, bf, out, 3);
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(fbits(out[i]), fbits(bv[i]));
    const int16_t i16[] = {-32768, 7};
    ct__dequant_row(CT_DT_I16, i16, out, 2);
    CHECK(out[0] == -32768.0f && out[1] == 7.0f);
}

/* Blocks read from an odd address (mapped GGUF data has no alignment beyond
 * the tensor start, and Q blocks are 18/20/34 bytes). */
static void test_unaligned(void) {
    uint8_t buf[1 + 4 * sizeof(ct_block_q4_1)];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 37 + 11);
    const ct_dtype types[] = {CT_DT_Q8_0, CT_DT_Q4_0, CT_DT_Q4_1, CT_DT_F16, CT_DT_BF16};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        uint8_t al[sizeof buf];
        float a[64], b[64];
        memcpy(al, buf + 1, sizeof buf - 1);
        int64_t n = ct_dtype_block(types[t]) == 1 ? 32 : 64;
        ct__dequant_row(types[t], al, a, n);
        ct__dequant_row(types[t], buf + 1, b, n);
        CHECK(memcmp(a, b, (size_t)n * sizeof(float)) == 0);
    }
}

/* ---- quantization edge cases, worked by hand ------------------------------ */

static void test_quantize_by_hand(void) {
    float x[CT_QK];
    /* Q8_0: amax 127 -> d = 1, id = 1, q = roundf(x): halves go away from 0. */
    x[0] = 127.0f;
    for (int j = 1; j < CT_QK; j++) x[j] = (float)j - 15.5f;
    ct_block_q8_0 b8;
    ct__quantize_row_q8_0_ref(x, &b8, CT_QK);
    CHECK_EQ_INT(b8.d, 0x3C00);
    CHECK_EQ_INT(b8.q[0], 127);
    CHECK_EQ_INT(b8.q[1], -15);  /* -14.5 */
    CHECK_EQ_INT(b8.q[15], -1);  /* -0.5 */
    CHECK_EQ_INT(b8.q[16], 1);   /* 0.5 */
    CHECK_EQ_INT(b8.q[31], 16);  /* 15.5 */

    /* Q4_0: the element of largest magnitude is -8 -> d = -8/-8 = 1, q = trunc(x + 8.5). */
    for (int j = 0; j < CT_QK; j++) x[j] = 0.0f;
    x[0] = -8.0f; x[1] = 7.0f; x[2] = 7.4f; x[3] = -7.6f; x[4] = 0.5f; x[5] = -0.5f; x[17] = 8.0f;
    ct_block_q4_0 b40;
    ct__quantize_row_q4_0_ref(x, &b40, CT_QK);
    CHECK_EQ_INT(b40.d, 0x3C00);
    CHECK_EQ_INT(b40.qs[0] & 15, 0);
    CHECK_EQ_INT(b40.qs[1] & 15, 15);
    CHECK_EQ_INT(b40.qs[2] & 15, 15);  /* 15.9 */
    CHECK_EQ_INT(b40.qs[3] & 15, 0);   /* 0.9 */
    CHECK_EQ_INT(b40.qs[4] & 15, 9);
    CHECK_EQ_INT(b40.qs[5] & 15, 8);
    CHECK_EQ_INT(b40.qs[1] >> 4, 15);  /* x[17] = 8 -> 16.5 clamps to 15 */
    CHECK_EQ_INT(b40.qs[0] >> 4, 8);   /* x[16] = 0 */
    /* tie on |x|: the first one wins, so +8 before -8 gives d = -1 */
    x[0] = 8.0f; x[1] = -8.0f;
    ct__quantize_row_q4_0_ref(x, &b40, CT_QK);
    CHECK_EQ_INT(b40.d, 0xBC00);

    /* Q4_1: min -1, max 14 -> d = 1, m = -1, q = trunc(x + 1 + 0.5). */
    for (int j = 0; j < CT_QK; j++) x[j] = 0.0f;
    x[0] = -1.0f; x[1] = 14.0f; x[2] = 2.49f; x[3] = 2.5f;
    ct_block_q4_1 b41;
    ct__quantize_row_q4_1_ref(x, &b41, CT_QK);
    CHECK_EQ_INT(b41.d, 0x3C00);
    CHECK_EQ_INT(b41.m, 0xBC00);
    CHECK_EQ_INT(b41.qs[0] & 15, 0);
    CHECK_EQ_INT(b41.qs[1] & 15, 15);
    CHECK_EQ_INT(b41.qs[2] & 15, 3);  /* 3.99 */
    CHECK_EQ_INT(b41.qs[3] & 15, 4);  /* 4.0 */
    CHECK_EQ_INT(b41.qs[4] & 15, 1);  /* 0 -> 1.5 */

    /* all-zero block: d = 0 and every q decodes to 0 */
    for (int j = 0; j < CT_QK; j++) x[j] = 0.0f;
    ct__quantize_row_q8_0_ref(x, &b8, CT_QK);
    float y[CT_QK];
    ct__dequant_row(CT_DT_Q8_0, &b8, y, CT_QK);
    for (int j = 0; j < CT_QK; j++) CHECK(y[j] == 0.0f);
}

/* Round trip on random data stays within half a quantization step. */
static void test_roundtrip(void) {
    enum { N = 32 * 64 };
    static float x[N], y[N];
    static uint8_t q[N * 2];
    uint64_t s = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        x[i] = ((float)(s >> 40) / (float)(1 << 24) - 0.5f) * (float)(1 + (i / 32) % 7);
    }
    const ct_dtype types[] = {CT_DT_Q8_0, CT_DT_Q4_0, CT_DT_Q4_1, CT_DT_F16, CT_DT_BF16};
    for (size_t t = 0; t < 5; t++) {
        CHECK_EQ_INT(ct__quantize_row(types[t], x, q, N), 0);
        ct__dequant_row(types[t], q, y, N);
        double worst = 0;
        for (int b = 0; b < N / 32; b++) {
            float amax = 0, mn = x[b * 32], mx = x[b * 32];
            for (int j = 0; j < 32; j++) {
                float v = x[b * 32 + j];
                amax = fabsf(v) > amax ? fabsf(v) : amax;
                mn = v < mn ? v : mn;
                mx = v > mx ? v : mx;
            }
            /* half a step, plus |q| * (f16 rounding of d): Q8_0 step amax/127 and
             * 127 * 2^-11 ~ 0.06 step; Q4_0 step amax/8, a full step at the clamped
             * +max end; Q4_1 step (max-min)/15; F16/BF16 relative 2^-11 / 2^-8 */
            double tol = t == 0 ? 0.57 * amax / 127 : t == 1 ? 1.01 * amax / 8 : t == 2 ? 0.51 * (mx - mn) / 15 + 1e-3 * amax
                         : t == 3 ? amax / 2048.0 : amax / 256.0;
            for (int j = 0; j < 32; j++) {
                double e = fabs((double)y[b * 32 + j] - x[b * 32 + j]);
                if (e - tol > worst) worst = e - tol;
            }
        }
        if (worst > 0) fprintf(stderr, "round trip %s: error exceeds the bound by %g\n", ct_dtype_name(types[t]), worst);
        CHECK(worst <= 0);
    }
    CHECK_EQ_INT(ct__quantize_row(CT_DT_Q8_0, x, q, 31), -1);
    CHECK_EQ_INT(ct__quantize_row(CT_DT_I32, x, q, 32), -1);
}

/* ---- against gguf-py ---------------------------------------------------------- */

static void test_gguf_py(const char *dir) {
    char *path = ct__path_join(dir, "quant.gguf");
    ct_tstore ts;
    ct__tstore_init(&ts);
    ct_gguf *g = NULL;
    CHECK_OK(ct__gguf_open(path, &g, &ts));
    const char *names[] = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1"};
    const ct_dtype types[] = {CT_DT_F32, CT_DT_F16, CT_DT_BF16, CT_DT_Q8_0, CT_DT_Q4_0, CT_DT_Q4_1};
    for (int t = 0; g && t < 6; t++) {
        char n[32];
        snprintf(n, sizeof n, "%s.src", names[t]);
        const ct_tref *src = ct__tstore_find(&ts, n);
        snprintf(n, sizeof n, "%s.q", names[t]);
        const ct_tref *q = ct__tstore_find(&ts, n);
        snprintf(n, sizeof n, "%s.deq", names[t]);
        const ct_tref *deq = ct__tstore_find(&ts, n);
        CHECK(src && q && deq);
        if (!src || !q || !deq) continue;
        CHECK_EQ_INT(q->dtype, types[t]);
        CHECK_EQ_INT(q->ndim, 2);
        CHECK_EQ_INT(q->shape[0], 24);
        CHECK_EQ_INT(q->shape[1], 256);
        int64_t numel = ct__tref_numel(q);
        CHECK_EQ_INT(q->nbytes, ct__dtype_nbytes(types[t], numel));
        CHECK_EQ_INT(deq->nbytes, (size_t)numel * 4);
        float *y = malloc((size_t)numel * sizeof *y), *x = malloc((size_t)numel * sizeof *x);
        uint8_t *qq = malloc(q->nbytes);
        memcpy(x, src->data, (size_t)numel * 4);
        ct__dequant_row(q->dtype, q->data, y, numel);
        int64_t bad = 0, first = -1;
        for (int64_t i = 0; i < numel; i++)
            if (memcmp(&y[i], (const float *)deq->data + i, 4) != 0 && bad++ == 0) first = i;
        if (bad) fprintf(stderr, "%s dequant: %lld of %lld differ (first at %lld)\n", names[t], (long long)bad,
                         (long long)numel, (long long)first);
        CHECK_EQ_INT(bad, 0);
        CHECK_EQ_INT(ct__quantize_row(q->dtype, x, qq, numel), 0);
        bad = 0;
        for (size_t i = 0; i < q->nbytes; i++)
            if (qq[i] != ((const uint8_t *)q->data)[i] && bad++ == 0) first = (int64_t)i;
        if (bad) fprintf(stderr, "%s quantize: %lld of %zu bytes differ (first at byte %lld)\n", names[t],
                         (long long)bad, q->nbytes, (long long)first);
        CHECK_EQ_INT(bad, 0);
        free(x); free(y); free(qq);
    }
    ct__gguf_close(g);
    ct__tstore_free(&ts);
    free(path);
}

int main(void) {
    test_dequant_blocks();
    test_unaligned();
    test_quantize_by_hand();
    test_roundtrip();
    const char *dir = getenv("CTUNE_GGUF_PY_DIR");
    if (dir && *dir) test_gguf_py(dir);
    else printf("test_quant: CTUNE_GGUF_PY_DIR not set: gguf-py comparison runs in e2e_test_gguf_py\n");
    return ct_check_done("test_quant");
}
