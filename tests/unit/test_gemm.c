/* tests/unit/test_gemm.c — ct__sgemm against ct__sgemm_ref (double
 * accumulation): the four ta/tb cases, alpha/beta (beta 0 over a NaN-filled
 * C, beta 1 accumulation, other values), random sizes 1..70 in each
 * dimension plus sizes across the tile and K-block edges and narrow C (N <=
 * 16, computed transposed), row strides wider
 * than the rows, and bit-identical results with a pool of 2 and without a
 * pool (needed for exact checkpoint resume). Also ct__sgemm_bf16 against the
 * reference on bf16-rounded inputs.
 *
 * Named tolerances, relative to S = |alpha| sum_k |a_mk b_kn| + |beta c_mn|
 * of each element (so cancellation does not matter):
 *   TOL_F32   f32 fused multiply-adds in blocks of K: K * eps ~ 1e-5 for
 *             K = 100 would be the worst case; the random-sign errors seen
 *             are far smaller. 1e-5 is used for K up to ~1000 (eps * sqrt(K)
 *             * a few); a missing or doubled product costs ~1/K >= 1e-3.
 *   TOL_BF16  products of bf16-rounded inputs accumulated in f32, compared
 *             with the double product of the same rounded inputs: f32-level,
 *             1e-5 as well; against the unrounded f32 reference the bound is
 *             the rounding 2 * 2^-9 = 4e-3 of each product: TOL_BF16_RAW. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "check.h"
#include "core/internal.h"
#include "tensor/gemm.h"

#define TOL_F32 1e-5
#define TOL_BF16 1e-5
#define TOL_BF16_RAW 4e-3

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t urand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}
static float frand(void) { return (float)(urand() >> 8) * (1.0f / 8388608.0f) - 1.0f; } /* [-1, 1) */

/* op(A) element and scale bound S for one C element (double). */
static double bound(int ta, int tb, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                    float beta, float c0, int m, int n) {
    double s = 0.0;
    for (int k = 0; k < K; k++) {
        float a = ta ? A[(size_t)k * lda + m] : A[(size_t)m * lda + k];
        float b = tb ? B[(size_t)n * ldb + k] : B[(size_t)k * ldb + n];
        s += fabs((double)a * b);
    }
    return fabs(alpha) * s + (beta == 0.0f ? 0.0 : fabs((double)beta * c0)) + 1e-30;
}

static float bf16_round(float x) {
    union { float f; uint32_t u; } v = {x};
    v.u = (v.u + 0x7fffu + ((v.u >> 16) & 1u)) & 0xffff0000u;
    return v.f;
}

typedef enum { F32, BF16 } which;

/* One case; returns the number of failed elements (reports the first). */
static int run_case(which w, int ta, int tb, int M, int N, int K, float alpha, float beta, int pad, ct_pool *pool,
                    double tol) {
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb);
    float *C = malloc(sizeof(float) * nc), *R = malloc(sizeof(float) * nc), *C0 = malloc(sizeof(float) * nc);
    for (size_t i = 0; i < na; i++) A[i] = frand();
    for (size_t i = 0; i < nb; i++) B[i] = frand();
    for (size_t i = 0; i < nc; i++) C0[i] = beta == 0.0f ? NAN : frand();
    memcpy(C, C0, sizeof(float) * nc);
    memcpy(R, C0, sizeof(float) * nc);
    if (w == F32) {
        ct__sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, pool);
    } else {
        ct__sgemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, pool);
        for (size_t i = 0; i < na; i++) A[i] = bf16_round(A[i]); /* the reference sees the rounded inputs */
        for (size_t i = 0; i < nb; i++) B[i] = bf16_round(B[i]);
    }
    ct__sgemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
    int bad = 0;
    for (int m = 0; m < M; m++) {
        for (int n = 0; n < N; n++) {
            size_t i = (size_t)m * ldc + n;
            double S = bound(ta, tb, K, alpha, A, lda, B, ldb, beta, C0[i], m, n);
            double err = fabs((double)C[i] - R[i]);
            if (!(err <= tol * S)) {
                if (!bad)
                    fprintf(stderr, "%s ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g pad=%d: C[%d,%d] = %.9g, ref %.9g (S %.3g)\n",
                            w == F32 ? "f32" : "bf16", ta, tb, M, N, K, alpha, beta, pad, m, n, C[i], R[i], S);
                bad++;
            }
        }
        for (int n = N; n < ldc; n++) /* the padding past N is never written */
            if (memcmp(&C[(size_t)m * ldc + n], &C0[(size_t)m * ldc + n], sizeof(float))) {
                if (!bad) fprintf(stderr, "wrote C[%d,%d] past N=%d\n", m, n, N);
                bad++;
            }
    }
    free(A); free(B); free(C); free(R); free(C0);
    return bad;
}

/* The same product with pool and without: bit-identical C. */
static int same_bits(which w, int ta, int tb, int M, int N, int K, float beta, ct_pool *pool) {
    int lda = ta ? M : K, ldb = tb ? K : N;
    size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
    float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb);
    float *C1 = malloc(sizeof(float) * nc), *C2 = malloc(sizeof(float) * nc);
    for (size_t i = 0; i < na; i++) A[i] = frand();
    for (size_t i = 0; i < nb; i++) B[i] = frand();
    for (size_t i = 0; i < nc; i++) C1[i] = C2[i] = frand();
    void (*f)(int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int,
              ct_pool *) = w == F32 ? ct__sgemm : ct__sgemm_bf16;
    f(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, beta, C1, N, NULL);
    f(ta, tb, M, N, K, 0.5f, A, lda, B, ldb, beta, C2, N, pool);
    int ok = memcmp(C1, C2, sizeof(float) * nc) == 0;
    if (!ok) fprintf(stderr, "%s ta=%d tb=%d %dx%dx%d: pool of 2 and no pool differ\n", w == F32 ? "f32" : "bf16",
                     ta, tb, M, N, K);
    free(A); free(B); free(C1); free(C2);
    return ok;
}

static void suite(which w, ct_pool *pool, double tol) {
    static const float alphas[] = {1.0f, -0.5f, 2.0f};
    static const float betas[] = {0.0f, 1.0f, 0.25f};
    /* random sizes 1..70 in each dimension, every transposition, alpha/beta, strides */
    for (int it = 0; it < 160; it++) {
        int ta = it & 1, tb = (it >> 1) & 1;
        int M = 1 + (int)(urand() % 70), N = 1 + (int)(urand() % 70), K = 1 + (int)(urand() % 70);
        float alpha = alphas[urand() % 3], beta = betas[(it >> 2) % 3];
        int pad = (it % 5 == 0) ? 0 : (int)(urand() % 9);
        CHECK_EQ_INT(run_case(w, ta, tb, M, N, K, alpha, beta, pad, it % 2 ? pool : NULL, tol), 0);
    }
    /* across tile (8, 32), K-block (256) and cache-block edges, threaded */
    static const int sizes[][3] = {{1, 1, 1}, {8, 32, 256}, {9, 33, 257}, {7, 31, 255}, {1, 300, 513},
                                   {300, 1, 513}, {130, 97, 600}, {64, 1600, 40}, {17, 1700, 3}, {1, 1, 1000},
                                   {1000, 8, 40}, {70, 16, 300}, {65, 9, 2}}; /* narrow C: the transposed path */
    for (int i = 0; i < (int)(sizeof sizes / sizeof sizes[0]); i++)
        for (int t = 0; t < 4; t++)
            CHECK_EQ_INT(run_case(w, t & 1, t >> 1, sizes[i][0], sizes[i][1], sizes[i][2], 1.0f, t == 1 ? 0.0f : 1.0f,
                                  t == 2 ? 3 : 0, pool, tol), 0);
    /* determinism: pool of 2 vs no pool, shapes that split M and that split N */
    CHECK(same_bits(w, 0, 1, 200, 96, 700, 0.0f, pool));
    CHECK(same_bits(w, 0, 0, 77, 400, 300, 1.0f, pool));
    CHECK(same_bits(w, 1, 0, 130, 130, 513, 1.0f, pool));
    CHECK(same_bits(w, 1, 1, 33, 2000, 64, 0.0f, pool));
    CHECK(same_bits(w, 1, 0, 700, 8, 300, 1.0f, pool));
}

int main(void) {
    ct_pool *pool = NULL;
    CHECK_OK(ct__pool_create(2, &pool));
    /* reference sanity: a 2x2 product by hand, NT */
    {
        float A[4] = {1, 2, 3, 4}, B[4] = {5, 6, 7, 8}, C[4] = {NAN, NAN, NAN, NAN};
        ct__sgemm_ref(0, 1, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, C, 2);
        CHECK(C[0] == 17 && C[1] == 23 && C[2] == 39 && C[3] == 53);
        float D[4] = {NAN, NAN, NAN, NAN};
        ct__sgemm(0, 1, 2, 2, 2, 1.0f, A, 2, B, 2, 0.0f, D, 2, pool);
        CHECK(D[0] == 17 && D[1] == 23 && D[2] == 39 && D[3] == 53);
        /* alpha = 0: C = beta C, A and B not needed */
        float E[4] = {1, 2, 3, 4};
        ct__sgemm(0, 0, 2, 2, 2, 0.0f, A, 2, B, 2, 2.0f, E, 2, pool);
        CHECK(E[0] == 2 && E[3] == 8);
    }
    suite(F32, pool, TOL_F32);
    suite(BF16, pool, TOL_BF16);
    /* bf16 against the unrounded f32 inputs: within the input rounding */
    {
        int M = 40, N = 50, K = 300;
        float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
        float *C = malloc(sizeof(float) * M * N), *R = malloc(sizeof(float) * M * N);
        for (int i = 0; i < M * K; i++) A[i] = frand();
        for (int i = 0; i < K * N; i++) B[i] = frand();
        ct__sgemm_bf16(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N, pool);
        ct__sgemm_ref(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, R, N);
        int bad = 0;
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) {
                double S = bound(0, 1, K, 1.0f, A, K, B, K, 0.0f, 0.0f, m, n);
                if (!(fabs((double)C[m * N + n] - R[m * N + n]) <= TOL_BF16_RAW * S)) bad++;
            }
        CHECK_EQ_INT(bad, 0);
        free(A); free(B); free(C); free(R);
    }
    ct__pool_free(pool);
    return ct_check_done("test_gemm");
}
