/* tests/unit/test_gemm.c — ct__sgemm against ct__sgemm_ref (double
 * accumulation): the four ta/tb cases, alpha/beta (beta 0 over a NaN-filled
 * C, beta 1 accumulation, other values), random sizes 1..70 in each
 * dimension plus sizes across the tile and K-block edges and narrow C (N <=
 * 16, computed transposed), row strides wider
 * than the rows, and bit-identical results with a pool of 2 and without a
 * pool (needed for exact checkpoint resume). Also ct__sgemm_bf16 (vdpbf16ps
 * on packed bf16 pairs) by the same suite against the reference on
 * bf16-rounded inputs (K odd pads a zero pair), its rounding (nearest even,
 * ties, through every packing path), its shared packed-B window split in
 * several windows, and the pre-packed B (ct__gemm_bf16_pack_b +
 * ct__sgemm_bf16_packed) giving the bits of the unpacked call, with and
 * without a pool, narrow C included.
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

/* C = op(A) op(B) with op(B) = I (or op(A) = I) through full 8 x 32 tiles
 * and partial ones: every packing path must round like bf16_round (ties to
 * even, both directions, signs, large and small exponents) and make a
 * denormal zero. */
static void check_rounding(void) {
    /* x = 1 + f * 2^-8 in [1, 2): f odd is a tie between two bf16 values */
    static const float base[] = {1.0f, -1.0f, 3.0e5f, -7.5e-20f, 0.15625f};
    enum { R = 9, Kd = 33 }; /* M = 9 rows (one full panel + 1), K = 33 (odd) */
    float A[R * Kd], At[Kd * R], I[Kd * Kd], C[R * Kd], want[R * Kd];
    for (int i = 0; i < R * Kd; i++) {
        float b = base[i % 5];
        A[i] = b * (1.0f + (float)(i % 16) * (1.0f / 256.0f) + (float)(i % 3) * (1.0f / 65536.0f));
        want[i] = bf16_round(A[i]);
    }
    A[5] = -1e-40f; /* denormals count as zero (what vdpbf16ps does with them) */
    want[5] = 0.0f;
    for (int m = 0; m < R; m++)
        for (int k = 0; k < Kd; k++) At[k * R + m] = A[m * Kd + k];
    for (int i = 0; i < Kd * Kd; i++) I[i] = i % (Kd + 1) == 0 ? 1.0f : 0.0f;
    for (int ta = 0; ta < 2; ta++) { /* A rounded by pack_a */
        ct__sgemm_bf16(ta, 0, R, Kd, Kd, 1.0f, ta ? At : A, ta ? R : Kd, I, Kd, 0.0f, C, Kd, NULL);
        CHECK(memcmp(C, want, sizeof C) == 0);
    }
    /* B rounded by pack_b: C^T = op(B)^T, op(B) = A^T, C (Kd, R) */
    float Ct[Kd * R], wantt[Kd * R];
    for (int m = 0; m < R; m++)
        for (int k = 0; k < Kd; k++) wantt[k * R + m] = want[m * Kd + k];
    for (int tb = 0; tb < 2; tb++) {
        ct__sgemm_bf16(0, tb, Kd, R, Kd, 1.0f, I, Kd, tb ? A : At, tb ? Kd : R, 0.0f, Ct, R, NULL);
        CHECK(memcmp(Ct, wantt, sizeof Ct) == 0);
    }
    /* full 8 x 32 tiles (vector paths) with 64 k: 32-column rows of A */
    enum { Mv = 8, Kv = 64 };
    float Av[Mv * Kv], Atv[Kv * Mv], Iv[Kv * Kv], Cv[Mv * Kv], wv[Mv * Kv];
    for (int i = 0; i < Mv * Kv; i++) {
        Av[i] = base[i % 5] * (1.0f + (float)(i % 16) * (1.0f / 256.0f));
        wv[i] = bf16_round(Av[i]);
    }
    Av[3] = 1e-40f;
    wv[3] = 0.0f;
    for (int m = 0; m < Mv; m++)
        for (int k = 0; k < Kv; k++) Atv[k * Mv + m] = Av[m * Kv + k];
    for (int i = 0; i < Kv * Kv; i++) Iv[i] = i % (Kv + 1) == 0 ? 1.0f : 0.0f;
    for (int ta = 0; ta < 2; ta++) {
        ct__sgemm_bf16(ta, 0, Mv, Kv, Kv, 1.0f, ta ? Atv : Av, ta ? Mv : Kv, Iv, Kv, 0.0f, Cv, Kv, NULL);
        CHECK(memcmp(Cv, wv, sizeof Cv) == 0);
    }
    /* B side, full strips: C (64, 64) = I op(B), op(B) = X */
    static float X[Kv * Kv], Xt[Kv * Kv], Cx[Kv * Kv], wx[Kv * Kv];
    for (int i = 0; i < Kv * Kv; i++) {
        X[i] = base[i % 5] * (1.0f + (float)(i % 16) * (1.0f / 256.0f));
        wx[i] = bf16_round(X[i]);
    }
    for (int k = 0; k < Kv; k++)
        for (int n = 0; n < Kv; n++) Xt[n * Kv + k] = X[k * Kv + n];
    for (int tb = 0; tb < 2; tb++) {
        ct__sgemm_bf16(0, tb, Kv, Kv, Kv, 1.0f, Iv, Kv, tb ? Xt : X, Kv, 0.0f, Cx, Kv, NULL);
        CHECK(memcmp(Cx, wx, sizeof Cx) == 0);
    }
}

/* The pre-packed op(B) gives ct__sgemm_bf16's bits (pool of 2 or none, for
 * both the packing and the product). Returns 1 when all agree. */
static int packed_same(int ta, int tb, int M, int N, int K, float alpha, float beta, int pad, ct_pool *pool) {
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb), *C0 = malloc(sizeof(float) * nc);
    float *C1 = malloc(sizeof(float) * nc), *C2 = malloc(sizeof(float) * nc), *C3 = malloc(sizeof(float) * nc);
    size_t bytes = ct__gemm_bf16_packed_bytes(K, N);
    void *P1 = ct__alloc_big(bytes), *P2 = ct__alloc_big(bytes);
    for (size_t i = 0; i < na; i++) A[i] = frand();
    for (size_t i = 0; i < nb; i++) B[i] = frand();
    for (size_t i = 0; i < nc; i++) C0[i] = beta == 0.0f ? NAN : frand();
    memcpy(C1, C0, sizeof(float) * nc); memcpy(C2, C0, sizeof(float) * nc); memcpy(C3, C0, sizeof(float) * nc);
    ct__sgemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C1, ldc, pool);
    ct__gemm_bf16_pack_b(tb, K, N, B, ldb, P1, NULL);
    ct__gemm_bf16_pack_b(tb, K, N, B, ldb, P2, pool);
    int ok = memcmp(P1, P2, bytes) == 0;
    ct__sgemm_bf16_packed(ta, M, N, K, alpha, A, lda, P1, beta, C2, ldc, pool);
    ct__sgemm_bf16_packed(ta, M, N, K, alpha, A, lda, P2, beta, C3, ldc, NULL);
    ok &= memcmp(C1, C2, sizeof(float) * nc) == 0 && memcmp(C1, C3, sizeof(float) * nc) == 0;
    if (!ok)
        fprintf(stderr, "packed bf16 ta=%d tb=%d %dx%dx%d pad=%d: differs from ct__sgemm_bf16\n", ta, tb, M, N, K, pad);
    free(A); free(B); free(C0); free(C1); free(C2); free(C3);
    ct__free_big(P1, bytes); ct__free_big(P2, bytes);
    return ok;
}

static void bf16_extra(ct_pool *pool) {
    check_rounding();
    /* K odd: the zero pad of the last pair (sizes across KC = 512 too) */
    static const int odd[][3] = {{5, 7, 1}, {9, 33, 3}, {40, 70, 511}, {17, 65, 513}, {130, 40, 1025}};
    for (int i = 0; i < (int)(sizeof odd / sizeof odd[0]); i++)
        for (int t = 0; t < 4; t++)
            CHECK_EQ_INT(run_case(BF16, t & 1, t >> 1, odd[i][0], odd[i][1], odd[i][2], 1.0f, t & 1 ? 0.0f : 0.5f,
                                  t, pool, TOL_BF16), 0);
    /* the shared window in several pieces (64 KiB: 32 columns of K = 1000) */
    size_t old = ct__gemm_bf16_set_window((size_t)64 << 10);
    for (int t = 0; t < 4; t++)
        CHECK_EQ_INT(run_case(BF16, t & 1, t >> 1, 300, 150, 1000, 1.0f, t == 1 ? 0.0f : 1.0f, t, pool, TOL_BF16), 0);
    CHECK(same_bits(BF16, 0, 1, 300, 150, 1000, 1.0f, pool));
    CHECK(packed_same(0, 0, 300, 150, 1000, 1.0f, 1.0f, 1, pool));
    ct__gemm_bf16_set_window(old);
    /* pre-packed B: random sizes and the shapes above, narrow C included */
    for (int it = 0; it < 24; it++) {
        int M = 1 + (int)(urand() % 70), N = 1 + (int)(urand() % 70), K = 1 + (int)(urand() % 70);
        CHECK(packed_same(it & 1, (it >> 1) & 1, M, N, K, it % 3 ? 1.0f : -0.5f, (it >> 2) % 2 ? 1.0f : 0.0f,
                          (int)(urand() % 4), pool));
    }
    static const int shp[][3] = {{200, 96, 700}, {77, 400, 300}, {65, 9, 600}, {1000, 8, 40}, {8, 768, 1024},
                                 {64, 1600, 40}, {300, 1, 513}};
    for (int i = 0; i < (int)(sizeof shp / sizeof shp[0]); i++)
        for (int t = 0; t < 4; t++)
            CHECK(packed_same(t & 1, t >> 1, shp[i][0], shp[i][1], shp[i][2], 1.0f, t == 2 ? 0.0f : 1.0f, t == 3,
                              pool));
    /* alpha = 0 and K = 0: C = beta C */
    {
        float A[4] = {1, 2, 3, 4}, E[4] = {1, 2, 3, 4}, P[64];
        ct__sgemm_bf16_packed(0, 2, 2, 0, 1.0f, A, 2, P, 2.0f, E, 2, pool);
        CHECK(E[0] == 2 && E[3] == 8);
        CHECK(ct__gemm_bf16_packed_bytes(3, 5) == 4 * 32 * 2 && ct__gemm_bf16_packed_bytes(0, 5) == 0);
    }
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
    bf16_extra(pool);
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
