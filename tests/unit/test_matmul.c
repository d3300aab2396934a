/* tests/unit/test_matmul.c — ct__matmul (every path, dtype, pool size, bias
 * on/off) against ct__matmul_ref and against a double-precision product of
 * the matrix decoded by quant.c's ct__dequant_row; and each fast kernel of
 * matmul_kern.h against its scalar twin.
 *
 * Named tolerances, relative to A_i = sum_j |w_ij x_j| + |bias_i| of the
 * output element (so they do not depend on cancellation):
 *   TOL_F32  float accumulation in any order: 1e-5 (n*eps is 4.6e-5 for
 *            n = 768, a wrong or missing element costs ~1/n = 1e-3);
 *   Q8 path  x is rounded to 8 bits per 32-block, so the bound is
 *            sum_b (amax_b/254) sum_{j in b} |w_ij| (the exact worst case of
 *            the rounding), times 1.01, plus TOL_F32 * A_i.
 *   TOL_QF   the fused Q row dots on f32 x (ct__dot_rows_qf) against the
 *            double-precision dot of the decoded row: 1e-6, f32-level (the
 *            worst seen is 5e-7, Q4_1's m * sum(x) on one block; an 8-bit
 *            rounding of x costs ~4e-3, a wrong element ~1/n).
 * Kernel twins: integer block dots exactly, floats within TOL_F32.
 * Path selection: with W->act_q8 = 0 (the default) AUTO never takes an
 * 8-bit-x path, so AUTO is held to TOL_F32; with act_q8 = 1 it may. */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "check.h"
#include "core/internal.h"
#include "tensor/matmul_kern.h"
#include "tensor/quant.h"

#define TOL_F32 1e-5
#define TOL_QF 1e-6
#define Q8_SLACK 1.01

static uint64_t rng = 88172645463325252ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

static const ct_dtype DTYPES[] = {CT_DT_F32, CT_DT_F16, CT_DT_BF16, CT_DT_Q8_0, CT_DT_Q4_0, CT_DT_Q4_1};
static int is_q(ct_dtype t) { return t == CT_DT_Q8_0 || t == CT_DT_Q4_0 || t == CT_DT_Q4_1; }
static int is_q4(ct_dtype t) { return t == CT_DT_Q4_0 || t == CT_DT_Q4_1; }

/* A random (rows, cols) matrix stored as dt; *wf gets its decoded f32 values. */
static ct_mat make_mat(ct_dtype dt, int rows, int cols, float **wf) {
    ct_mat W = {dt, rows, cols, NULL, (size_t)cols / ct_dtype_block(dt) * ct_dtype_block_bytes(dt), 0, NULL};
    uint8_t *data = malloc(W.row_bytes * rows); /* no slack: ASan sees overreads */
    float *row = malloc(sizeof(float) * cols);
    *wf = malloc(sizeof(float) * (size_t)rows * cols);
    for (int r = 0; r < rows; r++) {
        float scale = (r % 5 == 0) ? 10.0f : (r % 7 == 0 ? 0.01f : 1.0f); /* uneven rows */
        for (int j = 0; j < cols; j++) row[j] = scale * frand();
        if (r % 11 == 3) for (int j = 0; j < cols; j += 32) row[j] = 0.0f; /* zeros in blocks */
        if (ct__quantize_row(dt, row, data + W.row_bytes * r, cols) != 0) { fprintf(stderr, "quantize failed\n"); exit(1); }
        ct__dequant_row(dt, data + W.row_bytes * r, *wf + (size_t)r * cols, cols);
    }
    free(row);
    W.data = data;
    return W;
}

/* Activations with an outlier per row (as real hidden states have). */
static float *make_x(int T, int cols) {
    float *x = malloc(sizeof(float) * (size_t)T * cols);
    for (size_t i = 0; i < (size_t)T * cols; i++) x[i] = frand();
    for (int t = 0; t < T; t++) x[(size_t)t * cols + (t * 7) % cols] = 20.0f;
    if (T > 1) memset(x + cols, 0, sizeof(float) * cols); /* an all-zero row */
    return x;
}

typedef struct {
    double *exact; /* (T, rows) double product of the decoded matrix */
    double *abs;   /* (T, rows) A_i */
    double *q8;    /* (T, rows) worst-case error from 8-bit x */
} expect;

static expect make_expect(const float *wf, const float *x, const float *bias, int T, int rows, int cols) {
    expect e = {malloc(sizeof(double) * T * rows), malloc(sizeof(double) * T * rows), malloc(sizeof(double) * T * rows)};
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * cols;
        for (int r = 0; r < rows; r++) {
            const float *w = wf + (size_t)r * cols;
            double s = bias ? bias[r] : 0.0, a = bias ? fabs(bias[r]) : 0.0, q = 0.0;
            for (int j = 0; j < cols; j++) { s += (double)w[j] * xt[j]; a += fabs((double)w[j] * xt[j]); }
            for (int b = 0; b + 32 <= cols; b += 32) {
                double amax = 0.0, wsum = 0.0;
                for (int j = b; j < b + 32; j++) { amax = fmax(amax, fabs(xt[j])); wsum += fabs(w[j]); }
                q += amax / 254.0 * wsum;
            }
            e.exact[t * rows + r] = s; e.abs[t * rows + r] = a; e.q8[t * rows + r] = q;
        }
    }
    return e;
}
static void free_expect(expect *e) { free(e->exact); free(e->abs); free(e->q8); }

/* Largest error / allowed ratio over y (must be <= 1). */
static double worst(const float *y, const expect *e, int n, int q8) {
    double w = 0.0;
    for (int i = 0; i < n; i++) {
        double allow = TOL_F32 * e->abs[i] + (q8 ? Q8_SLACK * e->q8[i] : 0.0) + 1e-30;
        double err = isfinite(y[i]) ? fabs(y[i] - e->exact[i]) / allow : INFINITY;
        if (err > w) w = err;
    }
    return w;
}

static int n_cases;

/* One (dtype, rows, cols, T): every path x pool size x bias, and the ref. */
static void check_case(ct_dtype dt, int rows, int cols, int T, ct_pool **pools) {
    float *wf, *x = make_x(T, cols), *bias = malloc(sizeof(float) * rows);
    ct_mat W = make_mat(dt, rows, cols, &wf);
    for (int r = 0; r < rows; r++) bias[r] = frand();
    float *y = malloc(sizeof(float) * (size_t)T * rows);
    for (int b = 0; b < 2; b++) {
        const float *bs = b ? bias : NULL;
        expect e = make_expect(wf, x, bs, T, rows, cols);
        ct__matmul_ref(y, x, &W, bs, T);
        double wr = worst(y, &e, T * rows, 0);
        if (!(wr <= 1.0)) fprintf(stderr, "  ref %s %dx%d T=%d bias=%d: %.3g\n", ct_dtype_name(dt), rows, cols, T, b, wr);
        CHECK(wr <= 1.0);
        /* every forced path, AUTO on f32 x (act_q8 = 0) and AUTO with act_q8 = 1 */
        static const int paths[] = {CT_MM_AUTO, CT_MM_GEMV_Q8, CT_MM_GEMV_F32, CT_MM_GEMM, CT_MM_GEMM_Q8, CT_MM_AUTO};
        for (int pi = 0; pi < 6; pi++) {
            int path = paths[pi];
            if (path == CT_MM_GEMV_Q8 || path == CT_MM_GEMV_F32) if (T > 40) continue; /* slow and covered */
            W.act_q8 = pi == 5;
            int old = ct__matmul_force_path(path);
            path = ct__matmul_path(&W, T);
            /* paths on 8-bit x: the Q types' row dots and the Q4 tiles */
            int q8 = (is_q(dt) && path == CT_MM_GEMV_Q8) || path == CT_MM_GEMM_Q8;
            CHECK(pi != 0 || !q8); /* AUTO without act_q8: x stays f32 */
            for (int p = 0; p < 3; p++) {
                for (size_t i = 0; i < (size_t)T * rows; i++) y[i] = NAN;
                ct__matmul(y, x, &W, bs, T, pools[p]);
                double w = worst(y, &e, T * rows, q8);
                if (!(w <= 1.0))
                    fprintf(stderr, "  %s %dx%d T=%d bias=%d path=%d pool=%d: error %.3g of allowed\n",
                            ct_dtype_name(dt), rows, cols, T, b, paths[pi], ct__pool_size(pools[p]), w);
                CHECK(w <= 1.0);
                n_cases++;
            }
            ct__matmul_force_path(old);
        }
        W.act_q8 = 0;
        free_expect(&e);
    }
    /* ct__mat_row_f32 decodes like quant.c */
    float *row = malloc(sizeof(float) * cols);
    double md = 0.0;
    for (int r = 0; r < rows; r++) {
        ct__mat_row_f32(&W, r, row);
        for (int j = 0; j < cols; j++) md = fmax(md, fabs(row[j] - wf[(size_t)r * cols + j]) / (fabs(wf[(size_t)r * cols + j]) + 1e-3));
    }
    CHECK(md <= 1e-6);
    free(row); free(y); free(bias); free(x); free(wf); free((void *)W.data);
}

/* The fast kernels against their scalar twins on one matrix. */
static void check_kernels(ct_dtype dt, int rows, int cols) {
    float *wf, *x = make_x(1, cols);
    ct_mat W = make_mat(dt, rows, cols, &wf);
    float *a = malloc(sizeof(float) * (rows + cols)), *b = malloc(sizeof(float) * (rows + cols));
    if (is_q(dt)) {
        size_t xb = ct__xq8_bytes(cols / 32);
        void *q1 = malloc(xb), *q2 = malloc(xb);
        memset(q1, 0x5a, xb); /* every byte must be written */
        memset(q2, 0xa5, xb);
        ct__quantize_x_q8(x, dt, q1, cols);
        ct__quantize_x_q8_ref(x, dt, q2, cols);
        CHECK(memcmp(q1, q2, xb) == 0);
        ct__dot_rows_q(&W, 0, rows, q1, a);
        ct__dot_rows_q_ref(&W, 0, rows, q1, b);
        double wq = 0.0;
        for (int r = 0; r < rows; r++) {
            double s = 0.0; /* sum of |terms| of this row's dot, as decoded */
            for (int j = 0; j < cols; j++) s += fabs(wf[(size_t)r * cols + j] * x[j]);
            wq = fmax(wq, fabs(a[r] - b[r]) / (TOL_F32 * s + 1e-30));
        }
        CHECK(wq <= 1.0);
        free(q1); free(q2);
    }
    if (is_q(dt)) { /* the tile kernels (one row, two rows): 1..11 x rows, every pair range */
        enum { TT = 11 };
        float *x3 = make_x(TT, cols), o1[TT], o2[TT];
        size_t xb = ct__xq4t_bytes(cols / 32);
        uint8_t *q1 = malloc(xb * TT), *q2 = malloc(xb * TT);
        memset(q1, 0x5a, xb * TT);
        memset(q2, 0xa5, xb * TT);
        for (int t = 0; t < TT; t++) {
            ct__quantize_x_q4t(x3 + (size_t)t * cols, dt, q1 + xb * t, cols);
            ct__quantize_x_q4t_ref(x3 + (size_t)t * cols, dt, q2 + xb * t, cols);
        }
        CHECK(memcmp(q1, q2, xb * TT) == 0);
        int npair = (cols / 32 + 1) / 2, ok = 1;
        for (int r = 0; r < rows; r++)
            for (int p0 = 0; p0 < npair; p0 += 3) {
                int np = npair - p0 < 3 ? npair - p0 : 3;
                for (int tt = 1; tt <= TT; tt += 3) {
                    ct__dot_q4_tile(&W, r, p0, np, q1 + 128 * p0, xb, tt, o1);
                    ct__dot_q4_tile_ref(&W, r, p0, np, q1 + 128 * p0, xb, tt, o2);
                    for (int t = 0; t < tt; t++) {
                        double s = 0.0; /* sum of |terms| over the pair range */
                        for (int j = 64 * p0; j < 64 * (p0 + np) && j < cols; j++)
                            s += fabs(wf[(size_t)r * cols + j] * x3[(size_t)t * cols + j]);
                        ok &= fabs(o1[t] - o2[t]) <= TOL_F32 * s + 1e-6;
                    }
                }
                if (r + 1 < rows) /* two rows at once, up to 8 rows of x */
                    for (int tt = 1; tt <= 8; tt++) {
                        float o3[16], o4[8];
                        for (int i = 0; i < 16; i++) o3[i] = NAN;
                        ct__dot_q4_tile2(&W, r, p0, np, q1 + 128 * p0, xb, tt, o3);
                        for (int i = 0; i < 2; i++) {
                            ct__dot_q4_tile_ref(&W, r + i, p0, np, q1 + 128 * p0, xb, tt, o4);
                            for (int t = 0; t < tt; t++) {
                                double s = 0.0;
                                for (int j = 64 * p0; j < 64 * (p0 + np) && j < cols; j++)
                                    s += fabs(wf[(size_t)(r + i) * cols + j] * x3[(size_t)t * cols + j]);
                                ok &= fabs(o3[8 * i + t] - o4[t]) <= TOL_F32 * s + 1e-6;
                            }
                        }
                    }
            }
        CHECK(ok);
        free(q1); free(q2); free(x3);
    }
    if (is_q(dt)) { /* 8 interleaved rows: quantizer and repack byte-exact, tiles vs ref, 1..11 x rows, group tails */
        enum { TT = 11 };
        const int nb = cols / 32;
        float *x3 = make_x(TT, cols), o1[8 * TT], o2[8 * TT];
        size_t xb = (size_t)nb * CT_XR8_BLK, wb = (size_t)nb * CT_W8_BLK;
        uint8_t *q1 = malloc(xb * TT), *q2 = malloc(xb * TT), *w1 = malloc(wb), *w2 = malloc(wb);
        memset(q1, 0x5a, xb * TT);
        memset(q2, 0xa5, xb * TT);
        for (int t = 0; t < TT; t++) {
            ct__quantize_x_r8(x3 + (size_t)t * cols, dt, q1 + xb * t, cols);
            ct__quantize_x_r8_ref(x3 + (size_t)t * cols, dt, q2 + xb * t, cols);
        }
        CHECK(memcmp(q1, q2, xb * TT) == 0);
        int ok = 1;
        for (int r = 0; r < rows; r += 8) {
            int nr = rows - r < 8 ? rows - r : 8;
            memset(w1, 0x5a, wb);
            memset(w2, 0xa5, wb);
            ct__repack_w8(&W, r, nr, w1);
            ct__repack_w8_ref(&W, r, nr, w2);
            ok &= memcmp(w1, w2, wb) == 0;
            for (int tt = 1; tt <= TT; tt++) {
                for (int i = 0; i < 8 * TT; i++) o1[i] = o2[i] = NAN;
                ct__dot_r8_tile(w1, nb, dt, q1, xb, tt, o1, 8);
                ct__dot_r8_tile_ref(w2, nb, dt, q1, xb, tt, o2, 8);
                for (int t = 0; t < tt; t++)
                    for (int i = 0; i < 8; i++) {
                        double s = 0.0; /* sum of |terms| of the dot (0 for the zero rows past the end) */
                        for (int j = 0; i < nr && j < cols; j++) s += fabs(wf[(size_t)(r + i) * cols + j] * x3[(size_t)t * cols + j]);
                        ok &= fabs(o1[8 * t + i] - o2[8 * t + i]) <= TOL_F32 * s + 1e-6;
                        if (i >= nr) ok &= o1[8 * t + i] == 0.0f;
                    }
            }
        }
        if (!ok) fprintf(stderr, "  r8 tiles %s %dx%d: fast != ref\n", ct_dtype_name(dt), rows, cols);
        CHECK(ok);
        free(q1); free(q2); free(w1); free(w2); free(x3);
    }
    ct__dot_rows_f(&W, 0, rows, x, a);
    ct__dot_rows_f_ref(&W, 0, rows, x, b);
    double w = 0.0;
    for (int r = 0; r < rows; r++) {
        double s = 0.0;
        for (int j = 0; j < cols; j++) s += fabs(wf[(size_t)r * cols + j] * x[j]);
        w = fmax(w, fabs(a[r] - b[r]) / (TOL_F32 * s + 1e-30));
    }
    CHECK(w <= 1.0);
    /* dequant_range at a block offset */
    int k0 = cols >= 64 ? 32 : 0, n = cols - k0;
    for (int r = 0; r < rows; r += 3) {
        ct__dequant_range(&W, r, k0, n, a);
        ct__dequant_range_ref(&W, r, k0, n, b);
        int same = 1;
        for (int j = 0; j < n; j++) same &= fabsf(a[j] - b[j]) <= 1e-6f * (fabsf(b[j]) + 1e-3f);
        CHECK(same);
    }
    free(a); free(b); free(x); free(wf); free((void *)W.data);
}

/* ct__dot_rows_qf (and ct__x_block_sums) against the double-precision dot of
 * the decoded rows and against its _ref twin: every row offset r0 in 0..4
 * and count nr (so row groups start and end anywhere), nt = 1..7 rows of x
 * (each with an outlier; one all zero). */
static void check_dot_qf(ct_dtype dt, int rows, int cols) {
    enum { NT = 7 };
    float *wf, *x = make_x(NT, cols);
    ct_mat W = make_mat(dt, rows, cols, &wf);
    int nb = cols / 32;
    float *xs = malloc(sizeof(float) * nb * NT), *xs2 = malloc(sizeof(float) * nb * NT);
    float *a = malloc(sizeof(float) * rows * NT), *b = malloc(sizeof(float) * rows * NT);
    double ws = 0.0;
    for (int t = 0; t < NT; t++) {
        ct__x_block_sums(x + (size_t)t * cols, cols, xs + (size_t)t * nb);
        ct__x_block_sums_ref(x + (size_t)t * cols, cols, xs2 + (size_t)t * nb);
    }
    for (int k = 0; k < nb * NT; k++) {
        double s = 0.0, sa = 0.0;
        for (int j = 0; j < 32; j++) { s += x[32 * k + j]; sa += fabs(x[32 * k + j]); }
        ws = fmax(ws, fmax(fabs(xs[k] - s), fabs(xs2[k] - s)) / (1e-6 * sa + 1e-30));
    }
    CHECK(ws <= 1.0);
    double wr = 0.0, wt = 0.0;
    for (int nt = 1; nt <= NT; nt++)
        for (int r0 = 0; r0 < 5 && r0 < rows; r0++) {
            int nr = rows - r0 - (r0 % 3); /* ends short of the last rows too */
            if (nr < 1) nr = 1;
            for (int i = 0; i < nr * nt; i++) a[i] = b[i] = NAN;
            ct__dot_rows_qf(&W, r0, nr, nt, x, xs, a);
            ct__dot_rows_qf_ref(&W, r0, nr, nt, x, xs, b);
            for (int t = 0; t < nt; t++)
                for (int i = 0; i < nr; i++) {
                    const float *w = wf + (size_t)(r0 + i) * cols, *xt = x + (size_t)t * cols;
                    double s = 0.0, sa = 0.0;
                    for (int j = 0; j < cols; j++) { s += (double)w[j] * xt[j]; sa += fabs((double)w[j] * xt[j]); }
                    float va = a[t * nr + i], vb = b[t * nr + i];
                    double ea = isfinite(va) ? fabs(va - s) / (TOL_QF * sa + 1e-30) : INFINITY;
                    double eb = isfinite(va) && isfinite(vb) ? fabs(va - vb) / (TOL_F32 * sa + 1e-30) : INFINITY;
                    wr = fmax(wr, ea);
                    wt = fmax(wt, eb);
                }
        }
    if (!(wr <= 1.0 && wt <= 1.0))
        fprintf(stderr, "  dot_rows_qf %s %dx%d: error %.3g of TOL_QF, %.3g of TOL_F32 vs ref\n", ct_dtype_name(dt),
                rows, cols, wr, wt);
    CHECK(wr <= 1.0);
    CHECK(wt <= 1.0);
    free(a); free(b); free(xs); free(xs2); free(x); free(wf); free((void *)W.data);
}

/* ct__matmul_path with and without act_q8, every dtype and T = 1..64. */
static void check_path_choice(void) {
    for (size_t d = 0; d < sizeof DTYPES / sizeof *DTYPES; d++) {
        ct_dtype dt = DTYPES[d];
        ct_mat W = {dt, 64, 64, NULL, 0, 0, NULL};
        int ok = 1;
        for (int T = 1; T <= 64; T++) {
            W.act_q8 = 0;
            int p = ct__matmul_path(&W, T);
            ok &= p == CT_MM_GEMV_F32 || p == CT_MM_GEMM; /* x stays f32 */
            ok &= (p == CT_MM_GEMV_F32) == (T <= (is_q(dt) ? CT_MM_QF_GEMV_MAX_T : CT_MM_GEMV_MAX_T));
            W.act_q8 = 1;
            int q = ct__matmul_path(&W, T);
            if (!is_q(dt)) ok &= q == p; /* act_q8 means nothing for float weights */
            else if (T <= CT_MM_Q8_GEMV_MAX_T) ok &= q == CT_MM_GEMV_Q8;
            else if (ct__mm_q8t_dtype(dt) && T >= CT_MM_Q4_TILE_MIN_T && T <= CT_MM_Q4_TILE_MAX_T) ok &= q == CT_MM_GEMM_Q8;
            else ok &= q == p; /* otherwise the f32-x choice */
        }
        /* forced paths ignore act_q8 and fall back per dtype */
        W.act_q8 = 0;
        int old = ct__matmul_force_path(CT_MM_GEMV_Q8);
        ok &= ct__matmul_path(&W, 1) == (is_q(dt) ? CT_MM_GEMV_Q8 : CT_MM_GEMV_F32);
        ct__matmul_force_path(CT_MM_GEMM_Q8);
        ok &= ct__matmul_path(&W, 9) == (ct__mm_q8t_dtype(dt) ? CT_MM_GEMM_Q8 : CT_MM_GEMM);
        ok &= ct__mm_q8t_dtype(dt) == (is_q4(dt) || (CT_MM_Q8T_VNNI && dt == CT_DT_Q8_0));
        ct__matmul_force_path(old);
        if (!ok) fprintf(stderr, "  path choice wrong for %s\n", ct_dtype_name(dt));
        CHECK(ok);
    }
}

/* ct__matmul_n: the same bytes as one ct__matmul per matrix (shared x
 * preparation and one dispatch), and the fallback for mixed dtypes. */
static void check_matmul_n(ct_pool *pool) {
    static const ct_dtype dts[] = {CT_DT_F32, CT_DT_Q8_0, CT_DT_Q4_0, CT_DT_Q4_1};
    static const int Ts[] = {1, 3, 5, 9, 33};
    static const int rows[3] = {13, 40, 8};
    enum { COLS = 32 * 9 };
    int bad = 0;
    for (size_t d = 0; d < sizeof dts / sizeof *dts; d++)
        for (size_t k = 0; k < sizeof Ts / sizeof *Ts; k++)
            for (int aq = 0; aq < 2; aq++)
                for (int mixed = 0; mixed < 2; mixed++) {
                    int T = Ts[k];
                    float *wf[3], *x = make_x(T, COLS), *ya[3], *yb[3], *bias[3];
                    ct_mat W[3];
                    const ct_mat *Wp[3];
                    for (int i = 0; i < 3; i++) {
                        W[i] = make_mat(mixed && i == 1 ? CT_DT_F16 : dts[d], rows[i], COLS, &wf[i]);
                        W[i].act_q8 = (uint8_t)aq;
                        Wp[i] = &W[i];
                        ya[i] = malloc(sizeof(float) * (size_t)T * rows[i]);
                        yb[i] = malloc(sizeof(float) * (size_t)T * rows[i]);
                        bias[i] = NULL;
                        if (i == 2) {
                            bias[i] = malloc(sizeof(float) * rows[i]);
                            for (int r = 0; r < rows[i]; r++) bias[i][r] = frand();
                        }
                        for (size_t j = 0; j < (size_t)T * rows[i]; j++) ya[i][j] = yb[i][j] = NAN;
                    }
                    const float *bs[3] = {bias[0], bias[1], bias[2]};
                    ct__matmul_n(3, ya, x, Wp, bs, T, pool);
                    for (int i = 0; i < 3; i++) ct__matmul(yb[i], x, &W[i], bias[i], T, pool);
                    int ok = 1;
                    for (int i = 0; i < 3; i++) ok &= memcmp(ya[i], yb[i], sizeof(float) * (size_t)T * rows[i]) == 0;
                    if (!ok) fprintf(stderr, "  matmul_n %s T=%d act_q8=%d mixed=%d differs\n", ct_dtype_name(dts[d]), T, aq, mixed);
                    bad |= !ok;
                    for (int i = 0; i < 3; i++) { free(ya[i]); free(yb[i]); free(bias[i]); free(wf[i]); free((void *)W[i].data); }
                    free(x);
                }
    CHECK(!bad);
}

/* pack + micro-kernel against the naive loops, all mr/nc/accumulate/bias. */
static void check_gemm_tile(void) {
    enum { KC = 37, LD = 41 };
    float src[CT_MM_NR * LD], P1[KC * CT_MM_NR], A[CT_MM_MR * LD], bias[CT_MM_NR];
    float C1[CT_MM_MR * 20], C2[CT_MM_MR * 20];
    for (int i = 0; i < CT_MM_NR * LD; i++) src[i] = frand();
    for (int i = 0; i < CT_MM_MR * LD; i++) A[i] = frand();
    for (int i = 0; i < CT_MM_NR; i++) bias[i] = frand();
    for (int nr = 1; nr <= CT_MM_NR; nr += 5) {
        ct__pack_panel(src, LD, nr, KC, P1);
        int ok = 1;
        for (int k = 0; k < KC; k++)
            for (int j = 0; j < CT_MM_NR; j++) ok &= P1[k * CT_MM_NR + j] == (j < nr ? src[j * LD + k] : 0.0f);
        CHECK(ok);
        for (int mr = 1; mr <= CT_MM_MR; mr++)
            for (int acc = 0; acc < 2; acc++) {
                for (int i = 0; i < CT_MM_MR * 20; i++) C1[i] = C2[i] = (float)i;
                ct__gemm_tile(mr, nr, KC, A, LD, P1, C1, 20, acc ? NULL : bias, acc);
                ct__gemm_tile_ref(mr, nr, KC, A, LD, P1, C2, 20, acc ? NULL : bias, acc);
                double w = 0.0;
                for (int i = 0; i < CT_MM_MR * 20; i++) w = fmax(w, fabs(C1[i] - C2[i]));
                CHECK(w <= 1e-4); /* |terms| <= 1, 37 of them, values up to 120 */
            }
    }
}

/* The float row dots alone (AVX-512 where built, the AVX2 ones, and the
 * scalar twin) against the double-precision dot of the decoded rows: column
 * counts around the 16/32/64-column steps, rows from every offset. */
static void check_dot_f(ct_dtype dt, int rows, int cols) {
    float *wf, *x = make_x(1, cols), a[16], b[16], c[16];
    ct_mat W = make_mat(dt, rows, cols, &wf);
    int ok = 1;
    for (int r0 = 0; r0 < rows; r0++) {
        int nr = rows - r0 < 16 ? rows - r0 : 16;
        ct__dot_rows_f(&W, r0, nr, x, a);
        ct__dot_rows_f_avx2(&W, r0, nr, x, b);
        ct__dot_rows_f_ref(&W, r0, nr, x, c);
        for (int i = 0; i < nr; i++) {
            double e = 0.0, s = 0.0;
            for (int j = 0; j < cols; j++) {
                double t = (double)wf[(size_t)(r0 + i) * cols + j] * x[j];
                e += t; s += fabs(t);
            }
            double tol = TOL_QF * s + 1e-30;
            ok &= fabs(a[i] - e) <= tol && fabs(b[i] - e) <= tol && fabs(c[i] - e) <= tol;
        }
    }
    CHECK(ok);
    free(x); free(wf); free((void *)W.data);
}

int main(void) {
    printf("matmul kernels: %s\n", ct__matmul_isa());
    ct_pool *pools[3] = {NULL, NULL, NULL};
    CHECK_OK(ct__pool_create(1, &pools[1]));
    CHECK_OK(ct__pool_create(2, &pools[2]));

    /* The checker must be able to fail: one wrong element is caught. */
    {
        float *wf, *x = make_x(2, 64), y[2 * 9];
        ct_mat W = make_mat(CT_DT_F32, 9, 64, &wf);
        expect e = make_expect(wf, x, NULL, 2, 9, 64);
        ct__matmul(y, x, &W, NULL, 2, pools[2]);
        CHECK(worst(y, &e, 18, 0) <= 1.0);
        y[4] += (float)(1e-3 * e.abs[4]);
        CHECK(worst(y, &e, 18, 0) > 1.0);
        free_expect(&e); free(x); free(wf); free((void *)W.data);
    }

    check_gemm_tile();
    check_path_choice();
    /* the fused Q row dots: block counts around the 16-block step (1, 3, 15,
     * 16, 17, 31, 33, 48, 49), rows around the 4-row step */
    static const int qf_nb[] = {1, 3, 15, 16, 17, 31, 33, 48, 49};
    static const int qf_rows[] = {1, 3, 4, 7, 13};
    for (size_t d = 3; d < sizeof DTYPES / sizeof *DTYPES; d++)
        for (size_t k = 0; k < sizeof qf_nb / sizeof *qf_nb; k++)
            for (size_t r = 0; r < sizeof qf_rows / sizeof *qf_rows; r++)
                check_dot_qf(DTYPES[d], qf_rows[r], 32 * qf_nb[k]);
    static const int fd_cols[] = {1, 7, 15, 16, 17, 31, 33, 47, 63, 64, 65, 127, 129, 288, 577, 4097, 8195}; /* the last two: the long-row kernels */
    for (size_t d = 0; d < 3; d++)
        for (size_t k = 0; k < sizeof fd_cols / sizeof *fd_cols; k++) check_dot_f(DTYPES[d], 13, fd_cols[k]);
    for (size_t d = 0; d < 3; d++) /* T = 1..10 through ct__matmul, rows and cols off every step */
        for (int T = 1; T <= 10; T++) check_case(DTYPES[d], 13, 577, T, pools);
    static const int shapes[][2] = {{1, 32}, {5, 64}, {17, 288}, {100, 768}, {133, 288}, {37, 96}};
    static const int Ts[] = {1, 2, 7, 33, 128};
    for (size_t d = 0; d < sizeof DTYPES / sizeof *DTYPES; d++) {
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            check_kernels(DTYPES[d], shapes[s][0], shapes[s][1]);
            for (size_t t = 0; t < sizeof Ts / sizeof *Ts; t++) {
                if (Ts[t] == 128 && shapes[s][0] * shapes[s][1] > 40000) continue; /* keep it quick */
                check_case(DTYPES[d], shapes[s][0], shapes[s][1], Ts[t], pools);
            }
        }
        if (!is_q(DTYPES[d])) { /* float types allow any cols */
            check_kernels(DTYPES[d], 13, 7);
            check_case(DTYPES[d], 13, 7, 1, pools);
            check_case(DTYPES[d], 37, 172, 33, pools);
        }
    }
    /* T = 1..70 for the Q types (every path, AUTO with and without act_q8),
     * 17 blocks and 13 rows: group tails everywhere; 25 blocks (two K steps
     * of the integer tiles, the last one odd) */
    for (size_t d = 3; d < sizeof DTYPES / sizeof *DTYPES; d++) {
        for (int T = 1; T <= 70; T++) check_case(DTYPES[d], 13, 32 * 17, T, pools);
        for (int T = 4; T <= 20; T += 8) check_case(DTYPES[d], 7, 32 * 25, T, pools);
    }
    /* a big-K case: several KC blocks, accumulate across them */
    check_case(CT_DT_Q4_0, 40, 1024, 9, pools);
    check_case(CT_DT_F16, 21, 800, 13, pools);
    /* many rows: several row chunks per thread in the f32 tiles */
    check_case(CT_DT_Q8_0, 1000, 64, 40, pools);

    check_matmul_n(pools[2]);
    /* steady state allocates nothing: the pool's scratch is reused */
    {
        float *wf, *x = make_x(64, 256), *y = malloc(sizeof(float) * 64 * 200);
        ct_mat W = make_mat(CT_DT_Q4_1, 200, 256, &wf);
        CHECK(ct__matmul_scratch(&W, 64) > 0);
        ct__matmul(y, x, &W, NULL, 64, pools[2]);
        void *s0 = ct__pool_scratch(pools[2], 0, 1), *s1 = ct__pool_scratch(pools[2], 1, 1);
        ct__matmul(y, x, &W, NULL, 64, pools[2]);
        ct__matmul(y, x, &W, NULL, 1, pools[2]);
        CHECK(ct__pool_scratch(pools[2], 0, 1) == s0);
        CHECK(ct__pool_scratch(pools[2], 1, 1) == s1);
        free(y); free(x); free(wf); free((void *)W.data);
    }
    printf("%d matmul runs compared\n", n_cases);
    ct__pool_free(pools[1]);
    ct__pool_free(pools[2]);
    return ct_check_done("test_matmul");
}
