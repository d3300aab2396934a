/* tests/unit/test_nf4_matmul.c — the fused NF4 products ct__nf4_matmul_xwt
 * (y = x W^T) and ct__nf4_matmul_dyw (dx = dy W) against their scalar
 * references (W dequantized whole, double accumulation), in f32 and bf16
 * mode, on random Gaussian weights quantized by ct's NF4 quantizer with and
 * without double quantization (and one FP4 matrix). Shapes: M = 1..70,
 * in/out multiples of 64 across the K blocks (256 f32, 512 bf16) and the
 * NC = 1536 column block, out not a multiple of the 32-wide strip, and in
 * not a multiple of 64 (rows starting mid-block or mid-byte: the scalar
 * packing path). beta 0 over a NaN-filled output, beta 1 (accumulation) and
 * 0.5. Thread determinism: a pool of 2 gives the bits of no pool, with the
 * threads splitting N and splitting M. Also a cross-check against ct__sgemm /
 * ct__sgemm_bf16 on the dequantized W (same chains by construction; checked
 * by tolerance, the identical-element count is printed), and CT_ERR_ARG for
 * a matrix without scales.
 *
 * Named tolerances, relative to S = sum_k |a_k w_k| + |beta c| per element:
 *   TOL_F32       f32 FMA chains of up to 512 terms vs double: eps*sqrt(K)*a
 *                 few ~ 1e-6; 1e-5 leaves room, a lost or doubled term is
 *                 ~1/K >= 1e-3.
 *   TOL_BF16      bf16 mode vs the reference on the same bf16-rounded x and W
 *                 (products exact in f32, sums f32): f32 level, 1e-5.
 *   TOL_BF16_RAW  bf16 mode vs the unrounded f32 reference: a bf16 rounding
 *                 is off by up to 2^-8 relative (7 stored bits), a product
 *                 of two by 2 * 2^-8, so 8e-3 of S (reached at K = 1; large
 *                 K averages the errors down). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "core/internal.h"
#include "tensor/gemm.h"
#include "tensor/nf4_matmul.h"

#define TOL_F32 1e-5
#define TOL_BF16 1e-5
#define TOL_BF16_RAW 8e-3

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t urand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}
static float frand(void) { return (float)(urand() >> 8) * (1.0f / 8388608.0f) - 1.0f; } /* [-1, 1) */
static float grand(void) { /* Box-Muller */
    float u = ((float)(urand() >> 8) + 0.5f) * (1.0f / 16777216.0f), v = (float)(urand() >> 8) * (1.0f / 16777216.0f);
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

/* A quantized matrix and the arrays it points into. */
typedef struct {
    ct_nf4_mat W;
    uint8_t *packed, *q;
    float *absmax, *nested, *map;
    float *wf; /* (rows, cols) dequantized by the reference, for bounds */
} qmat;

static void qmat_make(qmat *m, int rows, int cols, int nested, ct_q4_type t) {
    const int64_t n = (int64_t)rows * cols, nb = ct__q4_nblocks(n, CT_NF4_BLOCK);
    float *x = malloc(sizeof(float) * (size_t)n), *work = malloc(sizeof(float) * (size_t)nb);
    memset(m, 0, sizeof *m);
    m->packed = malloc((size_t)(n + 1) / 2);
    m->absmax = malloc(sizeof(float) * (size_t)nb);
    m->q = malloc((size_t)nb);
    m->nested = malloc(sizeof(float) * (size_t)(nb / CT_NF4_NESTED_BLOCK + 1));
    m->map = malloc(sizeof(float) * 256);
    m->wf = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = 0.02f * grand() * (1.0f + (float)((i / 64) % 7)); /* varied scales */
    ct__quantize_4bit_ref(x, n, CT_NF4_BLOCK, t, m->packed, m->absmax);
    m->W.rows = rows;
    m->W.cols = cols;
    m->W.packed = m->packed;
    m->W.type = t;
    if (nested) {
        ct__dynamic_map_signed(m->map);
        ct__q4_double_quant(m->absmax, nb, 1, work, m->q, m->nested, &m->W.offset);
        m->W.qabsmax = m->q;
        m->W.nested_absmax = m->nested;
        m->W.nested_map = m->map;
    } else {
        m->W.absmax = m->absmax;
    }
    ct__nf4_mat_dequant_ref(&m->W, m->wf);
    free(x);
    free(work);
}

static void qmat_free(qmat *m) {
    free(m->packed); free(m->q); free(m->absmax); free(m->nested); free(m->map); free(m->wf);
}

static float *frand_buf(size_t n) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

typedef ct_status (*fused_fn)(float *, const float *, const ct_nf4_mat *, int, float, int, ct_pool *);
typedef ct_status (*ref_fn)(float *, const float *, const ct_nf4_mat *, int, float, int);

/* Worst |got - want| / S over C (M, N); S from the dequantized W. */
static double worst_rel(int dyw, const qmat *m, int M, const float *A, float beta, const float *c0, const float *got,
                        const float *want) {
    const int N = dyw ? m->W.cols : m->W.rows, K = dyw ? m->W.rows : m->W.cols;
    double worst = 0.0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = beta == 0.0f ? 0.0 : fabs((double)beta * c0[(size_t)i * N + j]);
            for (int k = 0; k < K; k++) {
                const float w = dyw ? m->wf[(size_t)k * N + j] : m->wf[(size_t)j * K + k];
                s += fabs((double)A[(size_t)i * K + k] * w);
            }
            const double g = got[(size_t)i * N + j], e = fabs(g - want[(size_t)i * N + j]) / (s + 1e-30);
            if (!(e <= worst)) worst = isnan(g) ? INFINITY : e;
        }
    return worst;
}

/* One product in both modes vs the references; pool may be NULL. */
static void check_case(int dyw, const qmat *m, int M, float beta, ct_pool *pool) {
    const int N = dyw ? m->W.cols : m->W.rows, K = dyw ? m->W.rows : m->W.cols;
    const size_t nc = (size_t)M * N;
    float *A = frand_buf((size_t)M * K), *c0 = frand_buf(nc), *got = malloc(sizeof(float) * (nc + 1));
    float *want = malloc(sizeof(float) * (nc + 1)), *raw = malloc(sizeof(float) * (nc + 1));
    fused_fn f = dyw ? ct__nf4_matmul_dyw : ct__nf4_matmul_xwt;
    ref_fn r = dyw ? ct__nf4_matmul_dyw_ref : ct__nf4_matmul_xwt_ref;
    for (int bf = 0; bf < 2; bf++) {
        for (size_t i = 0; i < nc; i++) got[i] = beta == 0.0f ? NAN : c0[i];
        memcpy(want, c0, sizeof(float) * nc);
        memcpy(raw, c0, sizeof(float) * nc);
        CHECK_OK(f(got, A, &m->W, M, beta, bf, pool));
        CHECK_OK(r(want, A, &m->W, M, beta, bf));
        const double e = worst_rel(dyw, m, M, A, beta, c0, got, want);
        const double tol = bf ? TOL_BF16 : TOL_F32;
        if (!(e <= tol))
            fprintf(stderr, "%s %s M=%d W=%dx%d nested=%d beta=%g: rel err %.3g\n", dyw ? "dyw" : "xwt",
                    bf ? "bf16" : "f32", M, m->W.rows, m->W.cols, m->W.absmax == NULL, (double)beta, e);
        CHECK(e <= tol);
        if (bf) {
            CHECK_OK(r(raw, A, &m->W, M, beta, 0));
            const double er = worst_rel(dyw, m, M, A, beta, c0, got, raw);
            if (!(er <= TOL_BF16_RAW))
                fprintf(stderr, "%s bf16 vs f32 M=%d W=%dx%d beta=%g: rel err %.3g\n", dyw ? "dyw" : "xwt", M,
                        m->W.rows, m->W.cols, (double)beta, er);
            CHECK(er <= TOL_BF16_RAW);
        }
    }
    free(A); free(c0); free(got); free(want); free(raw);
}

static void test_shapes(void) {
    static const int Ms[] = {1, 2, 3, 7, 8, 9, 16, 17, 31, 33, 47, 64, 70};
    /* {out, in, nested}: in multiple of 64 (vector paths), across KC = 256 /
     * 512 and out across strips; then in not a multiple of 64 */
    static const int shapes[][3] = {
        {64, 64, 1},   {32, 128, 0},  {1, 64, 1},    {5, 192, 1},   {31, 320, 0},  {33, 576, 1},
        {100, 256, 1}, {600, 64, 1},  {70, 512, 0},  {130, 1088, 1}, {1600, 64, 1}, {9, 1664, 0},
        {3, 100, 1},   {17, 37, 0},   {8, 7, 1},     {40, 33, 1},   {513, 3, 0},
    };
    const int ns = (int)(sizeof(shapes) / sizeof(shapes[0]));
    for (int s = 0; s < ns; s++) {
        qmat m;
        qmat_make(&m, shapes[s][0], shapes[s][1], shapes[s][2], CT_Q4_NF4);
        for (int dyw = 0; dyw < 2; dyw++) {
            const int M = Ms[(s * 5 + dyw * 3) % (int)(sizeof(Ms) / sizeof(Ms[0]))];
            const float beta = (s + dyw) % 3 == 0 ? 0.0f : (s + dyw) % 3 == 1 ? 1.0f : 0.5f;
            check_case(dyw, &m, M, beta, NULL);
        }
        qmat_free(&m);
    }
    /* every M on one mid-size matrix, beta 0 and 1 */
    qmat m;
    qmat_make(&m, 96, 640, 1, CT_Q4_NF4);
    for (int M = 1; M <= 70; M += (M < 10 ? 1 : 7))
        for (int dyw = 0; dyw < 2; dyw++) check_case(dyw, &m, M, (float)(M & 1), NULL);
    qmat_free(&m);
    /* FP4 takes the same paths with the other table */
    qmat_make(&m, 48, 192, 1, CT_Q4_FP4);
    check_case(0, &m, 13, 0.0f, NULL);
    check_case(1, &m, 13, 1.0f, NULL);
    qmat_free(&m);
}

/* Pool of 2 == no pool, bit for bit, in both modes and both directions,
 * with threads splitting N (wide W) and M (out = 32: one strip). */
static void test_threads(ct_pool *pool) {
    static const int shapes[][3] = {{70, 320, 576}, {70, 32, 576}, {64, 1600, 128}, {33, 130, 1088}};
    for (int s = 0; s < 4; s++) {
        qmat m;
        qmat_make(&m, shapes[s][1], shapes[s][2], s & 1, CT_Q4_NF4);
        const int M = shapes[s][0];
        for (int dyw = 0; dyw < 2; dyw++) {
            const int N = dyw ? m.W.cols : m.W.rows, K = dyw ? m.W.rows : m.W.cols;
            const size_t nc = (size_t)M * N;
            float *A = frand_buf((size_t)M * K), *c0 = frand_buf(nc);
            float *a = malloc(sizeof(float) * nc), *b = malloc(sizeof(float) * nc);
            for (int bf = 0; bf < 2; bf++)
                for (int beta = 0; beta < 2; beta++) {
                    memcpy(a, c0, sizeof(float) * nc);
                    memcpy(b, c0, sizeof(float) * nc);
                    fused_fn f = dyw ? ct__nf4_matmul_dyw : ct__nf4_matmul_xwt;
                    CHECK_OK(f(a, A, &m.W, M, (float)beta, bf, NULL));
                    CHECK_OK(f(b, A, &m.W, M, (float)beta, bf, pool));
                    CHECK(memcmp(a, b, sizeof(float) * nc) == 0);
                }
            if (s == 0) check_case(dyw, &m, M, 1.0f, pool); /* and right under threads */
            free(A); free(c0); free(a); free(b);
        }
        qmat_free(&m);
    }
}

/* The fused products against ct__sgemm / ct__sgemm_bf16 on the dequantized W. */
static void test_vs_sgemm(ct_pool *pool) {
    qmat m;
    qmat_make(&m, 200, 704, 1, CT_Q4_NF4);
    const int M = 37;
    for (int dyw = 0; dyw < 2; dyw++)
        for (int bf = 0; bf < 2; bf++) {
            const int N = dyw ? m.W.cols : m.W.rows, K = dyw ? m.W.rows : m.W.cols;
            const size_t nc = (size_t)M * N;
            float *A = frand_buf((size_t)M * K), *a = malloc(sizeof(float) * nc), *b = malloc(sizeof(float) * nc);
            CHECK_OK((dyw ? ct__nf4_matmul_dyw : ct__nf4_matmul_xwt)(a, A, &m.W, M, 0.0f, bf, pool));
            (bf ? ct__sgemm_bf16 : ct__sgemm)(0, !dyw, M, N, K, 1.0f, A, K, m.wf, m.W.cols, 0.0f, b, N, pool);
            size_t same = 0;
            for (size_t i = 0; i < nc; i++) same += a[i] == b[i];
            printf("vs %s (%s): %zu of %zu elements identical\n", bf ? "ct__sgemm_bf16" : "ct__sgemm",
                   dyw ? "dy W" : "x W^T", same, nc);
            CHECK(worst_rel(dyw, &m, M, A, 0.0f, NULL, a, b) <= (bf ? TOL_BF16 : TOL_F32));
            free(A); free(a); free(b);
        }
    qmat_free(&m);
}

static void test_errors(void) {
    qmat m;
    qmat_make(&m, 8, 64, 0, CT_Q4_NF4);
    float x[64] = {0}, y[8];
    ct_nf4_mat bad = m.W;
    bad.absmax = NULL; /* and no double-quant arrays */
    CHECK_EQ_INT(ct__nf4_matmul_xwt(y, x, &bad, 1, 0.0f, 0, NULL), CT_ERR_ARG);
    CHECK_EQ_INT(ct__nf4_matmul_dyw_ref(x, y, &bad, 1, 0.0f, 0), CT_ERR_ARG);
    CHECK_EQ_INT(ct__nf4_matmul_xwt(y, x, &m.W, -1, 0.0f, 0, NULL), CT_ERR_ARG);
    CHECK_EQ_INT(ct__nf4_matmul_xwt(y, x, &m.W, 0, 0.0f, 0, NULL), CT_OK);
    qmat_free(&m);
}

int main(void) {
    ct_pool *pool = NULL;
    CHECK_OK(ct__pool_create(2, &pool));
    test_shapes();
    test_threads(pool);
    test_vs_sgemm(pool);
    test_errors();
    ct__pool_free(pool);
    return ct_check_done("test_nf4_matmul");
}
