/* tests/unit/test_qmm.c — the frozen-matrix products ct__qmm_xwt (y = x W^T)
 * and ct__qmm_dyw (dx = dy W) on the dense stored types the trainer reads in
 * place (F32 with a padded row stride, F16, BF16, Q8_0; NF4 has its own test,
 * test_nf4_matmul), against the scalar references (W dequantized by
 * ct__mat_row_f32, double accumulation), in f32 and bf16 mode, beta 0 over a
 * NaN-filled output, 1 and 0.5; shapes with in/out across the K blocks
 * (256 f32 / 512 bf16) and strips, and in % 32 != 0 for the non-Q8 types
 * (the scalar packing path). A pool of 2 gives the bits of no pool. Also
 * the exact-chain cross-check against ct__sgemm / ct__sgemm_bf16 on the
 * dequantized W (beta 0: same KC, same order, so every element is
 * identical), and the errors (Q4_0: no fused kernel; a short row stride).
 *
 * Named tolerances, relative to S = sum_k |a_k w_k| + |beta c| per element:
 *   TOL_F32   f32 FMA chains of up to 512 terms vs double: ~1e-6; 1e-5.
 *   TOL_BF16  bf16 mode vs the reference on the same bf16-rounded operands
 *             (products exact in f32, sums f32): 1e-5. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "core/internal.h"
#include "tensor/gemm.h"
#include "tensor/nf4_matmul.h"
#include "tensor/quant.h"

#define TOL_F32 1e-5
#define TOL_BF16 1e-5

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t urand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}
static float frand(void) { return (float)(urand() >> 8) * (1.0f / 8388608.0f) - 1.0f; } /* [-1, 1) */

typedef struct {
    ct_mat W;
    void *data;
    float *wf; /* (rows, cols) dequantized */
} dmat;

/* rows x cols in dtype dt; F32 rows padded by 3 floats to test the stride */
static void dmat_make(dmat *m, ct_dtype dt, int rows, int cols) {
    float *x = malloc(sizeof(float) * (size_t)cols);
    size_t rb = dt == CT_DT_F32 ? 4 * (size_t)(cols + 3) : dt == CT_DT_Q8_0 ? (size_t)cols / 32 * 34 : 2 * (size_t)cols;
    m->data = calloc((size_t)rows, rb);
    m->wf = malloc(sizeof(float) * (size_t)rows * cols);
    for (int r = 0; r < rows; r++) {
        uint8_t *row = (uint8_t *)m->data + (size_t)r * rb;
        for (int c = 0; c < cols; c++) x[c] = 0.05f * frand() * (1.0f + (float)(c % 5));
        if (dt == CT_DT_F32) memcpy(row, x, 4 * (size_t)cols);
        else if (dt == CT_DT_Q8_0) CHECK(ct__quantize_row(dt, x, row, cols) == 0);
        else
            for (int c = 0; c < cols; c++) {
                uint16_t h = dt == CT_DT_F16 ? ct__f32_to_f16(x[c]) : ct__f32_to_bf16(x[c]);
                memcpy(row + 2 * (size_t)c, &h, 2);
            }
    }
    m->W = (ct_mat){.dtype = dt, .rows = rows, .cols = cols, .data = m->data, .row_bytes = rb};
    for (int r = 0; r < rows; r++) ct__mat_row_f32(&m->W, r, m->wf + (size_t)r * cols);
    free(x);
}

static float *frand_buf(size_t n) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

static double worst_rel(int dyw, const dmat *m, int M, const float *A, float beta, const float *c0, const float *got,
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

static void check_case(int dyw, const dmat *m, int M, float beta, ct_pool *pool) {
    const int N = dyw ? m->W.cols : m->W.rows, K = dyw ? m->W.rows : m->W.cols;
    const size_t nc = (size_t)M * N;
    float *A = frand_buf((size_t)M * K), *c0 = frand_buf(nc), *got = malloc(sizeof(float) * nc);
    float *want = malloc(sizeof(float) * nc), *solo = malloc(sizeof(float) * nc);
    for (int bf = 0; bf < 2; bf++) {
        for (size_t i = 0; i < nc; i++) got[i] = solo[i] = beta == 0.0f ? NAN : c0[i];
        memcpy(want, c0, sizeof(float) * nc);
        CHECK_OK((dyw ? ct__qmm_dyw : ct__qmm_xwt)(got, A, &m->W, M, beta, bf, pool));
        CHECK_OK((dyw ? ct__qmm_dyw : ct__qmm_xwt)(solo, A, &m->W, M, beta, bf, NULL));
        CHECK(memcmp(got, solo, sizeof(float) * nc) == 0);
        CHECK_OK((dyw ? ct__qmm_dyw_ref : ct__qmm_xwt_ref)(want, A, &m->W, M, beta, bf));
        const double e = worst_rel(dyw, m, M, A, beta, c0, got, want);
        if (!(e <= (bf ? TOL_BF16 : TOL_F32)))
            fprintf(stderr, "%s %s %s M=%d W=%dx%d beta=%g: rel err %.3g\n", ct_dtype_name(m->W.dtype),
                    dyw ? "dyw" : "xwt", bf ? "bf16" : "f32", M, m->W.rows, m->W.cols, (double)beta, e);
        CHECK(e <= (bf ? TOL_BF16 : TOL_F32));
        if (beta == 0.0f) { /* the same chains as the GEMMs on the dequantized W */
            (bf ? ct__sgemm_bf16 : ct__sgemm)(0, !dyw, M, N, K, 1.0f, A, K, m->wf, m->W.cols, 0.0f, want, N, pool);
            CHECK(memcmp(got, want, sizeof(float) * nc) == 0);
        }
    }
    free(A); free(c0); free(got); free(want); free(solo);
}

int main(void) {
    ct_pool *pool = NULL;
    CHECK_OK(ct__pool_create(2, &pool));
    static const ct_dtype types[] = {CT_DT_F32, CT_DT_F16, CT_DT_BF16, CT_DT_Q8_0};
    static const int shapes[][2] = {{64, 64}, {33, 576}, {200, 704}, {70, 1088}, {1600, 96}, {5, 32}};
    static const int odd[][2] = {{17, 37}, {40, 33}, {3, 100}};
    for (int t = 0; t < 4; t++) {
        for (int s = 0; s < 6; s++) {
            dmat m;
            dmat_make(&m, types[t], shapes[s][0], shapes[s][1]);
            for (int dyw = 0; dyw < 2; dyw++) {
                check_case(dyw, &m, 1 + (s * 7 + dyw * 11) % 40, (float)((s + dyw) % 3) * 0.5f, pool);
                check_case(dyw, &m, 37, 0.0f, pool);
            }
            free(m.data); free(m.wf);
        }
        if (types[t] == CT_DT_Q8_0) continue; /* Q8_0 rows are whole 32-blocks */
        for (int s = 0; s < 3; s++) {
            dmat m;
            dmat_make(&m, types[t], odd[s][0], odd[s][1]);
            for (int dyw = 0; dyw < 2; dyw++) check_case(dyw, &m, 9, dyw ? 1.0f : 0.0f, pool);
            free(m.data); free(m.wf);
        }
    }
    /* errors */
    dmat m;
    dmat_make(&m, CT_DT_F32, 8, 64);
    float x[64] = {0}, y[8];
    ct_mat bad = m.W;
    bad.row_bytes = 100;
    CHECK_EQ_INT(ct__qmm_xwt(y, x, &bad, 1, 0.0f, 0, NULL), CT_ERR_ARG);
    bad = m.W;
    bad.dtype = CT_DT_Q4_0;
    bad.row_bytes = 36;
    CHECK_EQ_INT(ct__qmm_dyw(x, y, &bad, 1, 0.0f, 0, NULL), CT_ERR_UNSUPPORTED);
    bad = m.W;
    bad.dtype = CT_DT_NF4; /* no q4 */
    CHECK_EQ_INT(ct__qmm_xwt(y, x, &bad, 1, 0.0f, 0, NULL), CT_ERR_ARG);
    CHECK_EQ_INT(ct__qmm_xwt(y, x, &m.W, 0, 0.0f, 0, NULL), CT_OK);
    free(m.data); free(m.wf);
    ct__pool_free(pool);
    return ct_check_done("test_qmm");
}
