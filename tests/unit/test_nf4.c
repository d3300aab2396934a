/* tests/unit/test_nf4.c — src/tensor/nf4.c: NF4/FP4 quantization, double
 * quantization and dequantization against bitsandbytes.
 *
 * Always (plain CTest): hand-built cases (nibble order, midpoint ties,
 * all-zero blocks, the short last block), a few known dynamic-map entries,
 * Python repr of floats and the quant-state JSON, round-trip error bounds on
 * Gaussian weights, the AVX-512 row dequantizer against its _ref twin bit for
 * bit, and the RMS dequantization error of NF4 vs FP4 vs int4 (printed; NF4
 * must be the lowest, the QLoRA paper's ordering).
 * With CTUNE_NF4_REF_DIR set (tests/e2e/test_nf4.sh runs
 * tests/golden/gen_nf4_refs.py there): for every case, the packed codes,
 * absmax, nested codes/absmax/offset, both maps, the JSON blob and the
 * dequantized values must equal bitsandbytes' bit for bit.
 */
#include <stdint.h>
#include <string.h>
#include "check.h"
#include "core/internal.h"
#include "formats/loaders.h"
#include "formats/tstore.h"
#include "tensor/nf4.h"

static uint32_t fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* ---- deterministic Gaussian ------------------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}
static float grand(void) { return (float)(sqrt(-2.0 * log(urand())) * cos(6.283185307179586 * urand())); }

/* ---- hand-built cases ------------------------------------------------------- */

static void test_hand(void) {
    float x[64] = {0};
    uint8_t p[32];
    float am;
    x[0] = 1.0f;
    x[1] = -1.0f;
    ct__quantize_4bit_ref(x, 64, 64, CT_Q4_NF4, p, &am);
    CHECK_EQ_INT(p[0], 0xF0); /* element 0 in the high nibble */
    CHECK_EQ_INT(p[1], 0x77); /* zeros -> code 7 (0.0) */
    CHECK_EQ_INT(fbits(am), fbits(1.0f));

    /* ties: x exactly on a midpoint goes to the lower code */
    for (int j = 0; j < 15; j++) {
        const float mid = (ct__nf4_map[j] + ct__nf4_map[j + 1]) / 2.0f;
        float y[64] = {0};
        y[0] = 1.0f;
        y[2] = mid;
        y[3] = nextafterf(mid, 2.0f);
        ct__quantize_4bit_ref(y, 64, 64, CT_Q4_NF4, p, &am);
        CHECK_EQ_INT(p[1] >> 4, j);
        CHECK_EQ_INT(p[1] & 15, j + 1);
    }

    /* an all-zero block stores absmax 0 and dequantizes to 0 */
    float z[128] = {0}, d[128];
    uint8_t pz[64];
    float amz[2];
    z[64] = 0.5f;
    ct__quantize_4bit_ref(z, 128, 64, CT_Q4_NF4, pz, amz);
    CHECK_EQ_INT(fbits(amz[0]), 0);
    CHECK_EQ_INT(pz[0], 0x77);
    ct__dequantize_4bit_ref(pz, amz, 128, 64, CT_Q4_NF4, d);
    CHECK_EQ_INT(fbits(d[0]), 0);
    CHECK_EQ_INT(fbits(d[64]), fbits(0.5f));

    /* a short all-zero last block stores the clamped 1e-38; odd n pads code 7 */
    float t[67] = {0};
    uint8_t pt[34];
    float amt[2];
    t[0] = 2.0f;
    ct__quantize_4bit_ref(t, 67, 64, CT_Q4_NF4, pt, amt);
    CHECK_EQ_INT(fbits(amt[1]), fbits(1e-38f));
    CHECK_EQ_INT(pt[33], 0x77);

    /* FP4: 1.0 is code 3, a tiny positive value code 8 (bitsandbytes' order) */
    float f[64] = {0};
    f[0] = 1.0f;
    f[1] = 0.001f;
    ct__quantize_4bit_ref(f, 64, 64, CT_Q4_FP4, p, &am);
    CHECK_EQ_INT(p[0], 0x38);
}

static void test_dynamic_map(void) {
    float m[256];
    ct__dynamic_map_signed(m);
    for (int i = 1; i < 256; i++) CHECK(m[i - 1] <= m[i]);
    /* values printed by bitsandbytes 0.50.2's create_dynamic_map() */
    CHECK_EQ_INT(fbits(m[0]), fbits(-0.992968738079071f));
    CHECK_EQ_INT(fbits(m[1]), fbits(-0.9789062738418579f));
    CHECK_EQ_INT(fbits(m[2]), fbits(-0.96484375f));
    CHECK_EQ_INT(fbits(m[253]), fbits(0.9789062738418579f));
    CHECK_EQ_INT(fbits(m[255]), fbits(1.0f));
}

static void test_json(void) {
    char b[256];
    const struct { double d; const char *s; } r[] = {
        {0.5, "0.5"}, {1e-5, "1e-05"}, {100.0, "100.0"}, {1.5e16, "1.5e+16"}, {0.0001, "0.0001"},
        {(double)2.845562696456909f, "2.845562696456909"}, {-0.1, "-0.1"}, {0.0, "0.0"}, {123456.75, "123456.75"},
    };
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        ct__py_float_repr(b, sizeof(b), r[i].d);
        if (strcmp(b, r[i].s)) fprintf(stderr, "repr(%.17g): '%s' vs '%s'\n", r[i].d, b, r[i].s);
        CHECK(strcmp(b, r[i].s) == 0);
    }
    const int64_t shape[2] = {8, 96};
    CHECK(ct__bnb4_state_json(b, sizeof(b), CT_Q4_NF4, 64, "float32", shape, 2, 1, 2.845562696456909f) > 0);
    CHECK(strcmp(b, "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"float32\", \"shape\": [8, 96], "
                    "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": 2.845562696456909}") == 0);
    CHECK(ct__bnb4_state_json(b, 10, CT_Q4_NF4, 64, "float32", shape, 2, 1, 1.0f) == -1);
}

/* ---- Gaussian: round trip, double quant, row dequantizer, error ordering ---- */

static double rms(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sqrt(s / (double)n);
}

static void test_gauss(void) {
    enum { R = 256, C = 512, N = R * C, NB = N / 64 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float)), *y2 = malloc(N * sizeof(float));
    uint8_t *p = malloc(N / 2), *q8 = malloc(NB);
    float am[NB], am2[NB], work[NB], nested[NB / 256 + 1], off, map[256];
    for (int i = 0; i < N; i++) x[i] = 0.02f * grand();

    ct__quantize_4bit_ref(x, N, 64, CT_Q4_NF4, p, am);
    ct__dequantize_4bit_ref(p, am, N, 64, CT_Q4_NF4, y);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += fabsf(y[i] - x[i]) > 0.1520f * am[i / 64]; /* half the widest gap (-1 .. -0.696) */
    CHECK_EQ_INT(bad, 0);
    const double e_nf4 = rms(x, y, N);

    /* double quantization: absmax within half a dynamic-map gap (<= 0.0071 of the range) */
    ct__q4_double_quant(am, NB, 1, work, q8, nested, &off);
    ct__dynamic_map_signed(map);
    ct__q4_double_dequant(q8, NB, nested, map, off, am2);
    bad = 0;
    double worst = 0;
    for (int b = 0; b < NB; b++) {
        const double r = fabs((double)am2[b] - am[b]) / nested[b / 256];
        worst = r > worst ? r : worst;
        bad += r > 0.0071;
    }
    printf("double quant: worst absmax error = %.5f x nested_absmax\n", worst);
    CHECK_EQ_INT(bad, 0);
    ct__dequantize_4bit_ref(p, am2, N, 64, CT_Q4_NF4, y2);
    const double e_nf4_dq = rms(x, y2, N);

    /* AVX-512 row dequantizer == _ref, bit for bit (whole rows, partial spans) */
    float *r1 = malloc(C * sizeof(float)), *r2 = malloc(C * sizeof(float));
    const int spans[] = {C, 64, 2, 96, 130, 448};
    bad = 0;
    for (int row = 0; row < R; row += 37)
        for (size_t s = 0; s < sizeof(spans) / sizeof(spans[0]); s++) {
            const int n = spans[s];
            ct__nf4_dequant_row(p + (size_t)row * C / 2, am2 + row * C / 64, r1, n);
            ct__nf4_dequant_row_ref(p + (size_t)row * C / 2, am2 + row * C / 64, r2, n);
            bad += memcmp(r1, r2, (size_t)n * sizeof(float)) != 0;
            bad += memcmp(r1, y2 + (size_t)row * C, (size_t)n * sizeof(float)) != 0;
        }
    CHECK_EQ_INT(bad, 0);

    ct__quantize_4bit_ref(x, N, 64, CT_Q4_FP4, p, am);
    ct__dequantize_4bit_ref(p, am, N, 64, CT_Q4_FP4, y);
    const double e_fp4 = rms(x, y, N);
    ct__quantize_int4_ref(x, N, 64, p, am);
    ct__dequantize_int4_ref(p, am, N, 64, y);
    const double e_int4 = rms(x, y, N);
    printf("dequantization RMS error, N(0, 0.02^2) weights (%dx%d), blocksize 64:\n"
           "  nf4 %.4e (%.4f sigma)  nf4+double-quant %.4e  fp4 %.4e (%.4f sigma)  int4 %.4e (%.4f sigma)\n",
           R, C, e_nf4, e_nf4 / 0.02, e_nf4_dq, e_fp4, e_fp4 / 0.02, e_int4, e_int4 / 0.02);
    CHECK(e_nf4 < e_fp4);
    CHECK(e_nf4 < e_int4);
    CHECK(e_nf4_dq < 1.01 * e_nf4);
    free(x); free(y); free(y2); free(p); free(q8); free(r1); free(r2);
}

/* ---- against bitsandbytes ---------------------------------------------------- */

static const ct_tref *need(const ct_tstore *ts, const char *name, const char *c) {
    const ct_tref *t = ct__tstore_find(ts, name);
    if (!t) fprintf(stderr, "%s: tensor '%s' missing\n", c, name);
    CHECK(t != NULL);
    return t;
}

/* count differing bytes; print the first */
static int64_t diff_bytes(const char *c, const char *what, const void *a, const void *b, size_t n, size_t elem) {
    int64_t bad = 0;
    for (size_t i = 0; i < n; i += elem)
        if (memcmp((const char *)a + i, (const char *)b + i, elem)) {
            if (!bad) fprintf(stderr, "%s: %s differs first at element %zu\n", c, what, i / elem);
            bad++;
        }
    if (bad) fprintf(stderr, "%s: %s: %lld of %zu elements differ\n", c, what, (long long)bad, n / elem);
    return bad;
}

static void test_case(const char *dir, const char *c, int64_t R, int64_t C, int threads) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.safetensors", dir, c);
    ct_tstore ts;
    ct__tstore_init(&ts);
    CHECK_OK(ct__safetensors_load(path, &ts));
    const ct_tref *tx = need(&ts, "x", c), *tw = need(&ts, "weight", c), *tqa = need(&ts, "weight.absmax", c),
                  *tqm = need(&ts, "weight.quant_map", c), *tna = need(&ts, "weight.nested_absmax", c),
                  *tnm = need(&ts, "weight.nested_quant_map", c),
                  *tj = need(&ts, "weight.quant_state.bitsandbytes__nf4", c), *tpa = need(&ts, "plain.absmax", c),
                  *tdq = need(&ts, "dequant", c), *tdp = need(&ts, "dequant_plain", c),
                  *tfw = need(&ts, "fp4.weight", c), *tfa = need(&ts, "fp4.absmax", c),
                  *tfd = need(&ts, "fp4.dequant", c);
    if (!tx || !tw || !tqa || !tqm || !tna || !tnm || !tj || !tpa || !tdq || !tdp || !tfw || !tfa || !tfd) {
        ct__tstore_free(&ts);
        return;
    }
    const int64_t n = R * C, nb = ct__q4_nblocks(n, 64), nn = ct__q4_nblocks(nb, 256);
    /* layout: shapes and dtypes as Hugging Face stores them */
    CHECK(tw->dtype == CT_DT_U8 && tw->ndim == 2 && tw->shape[0] == (n + 1) / 2 && tw->shape[1] == 1);
    CHECK(tqa->dtype == CT_DT_U8 && tqa->ndim == 1 && tqa->shape[0] == nb);
    CHECK(tqm->dtype == CT_DT_F32 && tqm->shape[0] == 16);
    CHECK(tna->dtype == CT_DT_F32 && tna->shape[0] == nn);
    CHECK(tnm->dtype == CT_DT_F32 && tnm->shape[0] == 256);
    CHECK(tj->dtype == CT_DT_U8);

    const float *x = tx->data;
    uint8_t *p = malloc((size_t)(n + 1) / 2), *q8 = malloc((size_t)nb);
    float *am = malloc((size_t)nb * 4), *work = malloc((size_t)nb * 4), *nested = malloc((size_t)nn * 4);
    float *am2 = malloc((size_t)nb * 4), *y = malloc((size_t)n * 4), map[256], off;
    int64_t bad = 0;

    ct__quantize_4bit_ref(x, n, 64, CT_Q4_NF4, p, am);
    bad += diff_bytes(c, "nf4 packed codes", p, tw->data, (size_t)(n + 1) / 2, 1);
    bad += diff_bytes(c, "absmax (plain)", am, tpa->data, (size_t)nb * 4, 4);
    bad += diff_bytes(c, "quant_map", ct__nf4_map, tqm->data, 64, 4);
    ct__q4_double_quant(am, nb, threads, work, q8, nested, &off);
    bad += diff_bytes(c, "absmax codes (double quant)", q8, tqa->data, (size_t)nb, 1);
    bad += diff_bytes(c, "nested_absmax", nested, tna->data, (size_t)nn * 4, 4);
    ct__dynamic_map_signed(map);
    bad += diff_bytes(c, "nested_quant_map", map, tnm->data, 1024, 4);
    char js[512];
    const int64_t shape[2] = {R, C};
    const int jl = ct__bnb4_state_json(js, sizeof(js), CT_Q4_NF4, 64, "float32", shape, 2, 1, off);
    CHECK(jl > 0 && (size_t)jl == tj->nbytes);
    if (jl > 0 && (size_t)jl == tj->nbytes) bad += diff_bytes(c, "quant_state JSON", js, tj->data, (size_t)jl, 1);
    else fprintf(stderr, "%s: JSON ours: %s\n   theirs: %.*s\n", c, js, (int)tj->nbytes, (const char *)tj->data);

    /* dequantization from the stored (bitsandbytes') state */
    ct__q4_double_dequant(tqa->data, nb, tna->data, tnm->data, off, am2);
    ct__dequantize_4bit_ref(tw->data, am2, n, 64, CT_Q4_NF4, y);
    bad += diff_bytes(c, "dequant (double quant)", y, tdq->data, (size_t)n * 4, 4);
    if (C % 64 == 0)
        for (int64_t r = 0; r < R; r++) ct__nf4_dequant_row((const uint8_t *)tw->data + r * C / 2, am2 + r * C / 64, y + r * C, C);
    bad += diff_bytes(c, "dequant (AVX-512 rows)", y, tdq->data, (size_t)n * 4, 4);
    ct__dequantize_4bit_ref(tw->data, tpa->data, n, 64, CT_Q4_NF4, y);
    bad += diff_bytes(c, "dequant (plain)", y, tdp->data, (size_t)n * 4, 4);

    ct__quantize_4bit_ref(x, n, 64, CT_Q4_FP4, p, am);
    bad += diff_bytes(c, "fp4 packed codes", p, tfw->data, (size_t)(n + 1) / 2, 1);
    bad += diff_bytes(c, "fp4 absmax", am, tfa->data, (size_t)nb * 4, 4);
    ct__dequantize_4bit_ref(tfw->data, tfa->data, n, 64, CT_Q4_FP4, y);
    /* by value: bitsandbytes' C kernel writes -0.0 for FP4 code 8 in some shapes */
    int64_t bad_fp4 = 0;
    for (int64_t i = 0; i < n; i++) bad_fp4 += y[i] != ((const float *)tfd->data)[i];
    if (bad_fp4) fprintf(stderr, "%s: fp4 dequant: %lld values differ\n", c, (long long)bad_fp4);
    bad += bad_fp4;
    CHECK_EQ_INT(bad, 0);
    printf("%s (%lldx%lld, %lld blocks): %s\n", c, (long long)R, (long long)C, (long long)nb,
           bad ? "DIFFERS" : "bit-identical to bitsandbytes");
    free(p); free(q8); free(am); free(work); free(nested); free(am2); free(y);
    ct__tstore_free(&ts);
}

/* Double quantization alone, on the 262144 block scales of a 7B-size layer. */
static void test_scales(const char *dir, const char *c, int64_t R, int64_t C, int threads) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.safetensors", dir, c);
    ct_tstore ts;
    ct__tstore_init(&ts);
    CHECK_OK(ct__safetensors_load(path, &ts));
    const ct_tref *tpa = need(&ts, "plain.absmax", c), *tqa = need(&ts, "weight.absmax", c),
                  *tna = need(&ts, "weight.nested_absmax", c), *toff = need(&ts, "offset", c);
    const int64_t nb = ct__q4_nblocks(R * C, 64), nn = ct__q4_nblocks(nb, 256);
    if (!tpa || !tqa || !tna || !toff || tpa->shape[0] != nb || tqa->shape[0] != nb || tna->shape[0] != nn) {
        CHECK(0);
        ct__tstore_free(&ts);
        return;
    }
    uint8_t *q8 = malloc((size_t)nb);
    float *work = malloc((size_t)nb * 4), *nested = malloc((size_t)nn * 4), off;
    ct__q4_double_quant(tpa->data, nb, threads, work, q8, nested, &off);
    int64_t bad = diff_bytes(c, "absmax codes (double quant)", q8, tqa->data, (size_t)nb, 1);
    bad += diff_bytes(c, "nested_absmax", nested, tna->data, (size_t)nn * 4, 4);
    bad += diff_bytes(c, "offset", &off, toff->data, 4, 4);
    CHECK_EQ_INT(bad, 0);
    printf("%s (%lld block scales, torch threads %d): %s\n", c, (long long)nb, threads,
           bad ? "DIFFERS" : "double quantization bit-identical to bitsandbytes");
    free(q8); free(work); free(nested);
    ct__tstore_free(&ts);
}

/* The 8-bit blockwise quantizer on values next to its decision points. */
static void test_blockwise8(const char *dir, const char *c, int64_t n) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.safetensors", dir, c);
    ct_tstore ts;
    ct__tstore_init(&ts);
    CHECK_OK(ct__safetensors_load(path, &ts));
    const ct_tref *tx = need(&ts, "x", c), *tq = need(&ts, "q", c), *ta = need(&ts, "absmax", c),
                  *tc = need(&ts, "code", c);
    if (!tx || !tq || !ta || !tc || tx->shape[0] != n || tc->shape[0] != 256) {
        CHECK(0);
        ct__tstore_free(&ts);
        return;
    }
    const int64_t nb = ct__q4_nblocks(n, 256);
    uint8_t *q = malloc((size_t)n);
    float *am = malloc((size_t)nb * 4);
    ct__quantize_blockwise8_ref(tx->data, n, 256, tc->data, q, am);
    int64_t bad = diff_bytes(c, "8-bit codes", q, tq->data, (size_t)n, 1);
    bad += diff_bytes(c, "absmax", am, ta->data, (size_t)nb * 4, 4);
    CHECK_EQ_INT(bad, 0);
    printf("%s (%lld values next to the decision points): %s\n", c, (long long)n,
           bad ? "DIFFERS" : "bit-identical to bitsandbytes");
    free(q); free(am);
    ct__tstore_free(&ts);
}

static void test_refs(const char *dir) {
    char path[1024], name[128], line[256];
    snprintf(path, sizeof(path), "%s/manifest.txt", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    int threads = 1, ncases = 0;
    while (fgets(line, sizeof(line), f)) {
        long long R, C;
        if (sscanf(line, "torch_threads %d", &threads) == 1) continue;
        if (strncmp(line, "bitsandbytes ", 13) == 0) { printf("reference: %s", line); continue; }
        if (sscanf(line, "scales %127s %lld %lld", name, &R, &C) == 3) { test_scales(dir, name, R, C, threads); continue; }
        if (sscanf(line, "blockwise8 %127s %lld", name, &R) == 2) { test_blockwise8(dir, name, R); continue; }
        if (sscanf(line, "%127s %lld %lld", name, &R, &C) == 3) { test_case(dir, name, R, C, threads); ncases++; }
    }
    fclose(f);
    CHECK(ncases > 0);
}

int main(void) {
    test_hand();
    test_dynamic_map();
    test_json();
    test_gauss();
    const char *dir = getenv("CTUNE_NF4_REF_DIR");
    if (dir && *dir) test_refs(dir);
    else printf("CTUNE_NF4_REF_DIR unset: bitsandbytes comparison skipped (tests/e2e/test_nf4.sh runs it)\n");
    return ct_check_done("test_nf4");
}
