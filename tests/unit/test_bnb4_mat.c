/* tests/unit/test_bnb4_mat.c — NF4/FP4 (bitsandbytes 4-bit) as a ct_mat:
 * ct__mat_row_f32, ct__matmul, ct__matmul_n and ct__matmul_ref on CT_DT_NF4
 * matrices and row views of them, against ct__nf4_mat_dequant_ref.
 *
 * - rows: bit-identical (memcmp) to the whole-matrix reference dequantizer,
 *   for cols % 64 == 0 and != 0 (rows starting mid-block and mid-byte), NF4
 *   and FP4, with and without double quantization, whole matrices and row
 *   views (GPT-2's q/k/v of c_attn);
 * - products: within TOL_F32 = 1e-5 of A_i = sum_j |w_ij x_j| + |b_i| from a
 *   double-precision product of the reference-dequantized matrix (f32 sums
 *   in any order; a wrong element costs ~1/cols), T = 1, 2, 4 (decode row
 *   dots), 5, 40 (fused kernel), pool none
 *   and 2 threads, with bias; views on and off the 64-block boundary (the
 *   fused kernel and the tile fallback);
 * - ct__quantize_4bit (AVX-512) bit-identical to ct__quantize_4bit_ref
 *   (codes and absmax, memcmp) on random data and edge data: values exactly
 *   on every midpoint of the table (ties go to the lower code), one ulp
 *   either side, +-0, all-zero blocks, denormals, +-absmax, huge values,
 *   n odd / not a multiple of 64, NF4 and FP4, blocksize 64 and 32. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "core/internal.h"
#include "tensor/nf4.h"
#include "tensor/nf4_matmul.h"
#include "tensor/ops.h"

#define TOL_F32 1e-5

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

typedef struct {
    ct_nf4_mat q;
    uint8_t *packed, *qabsmax;
    float *absmax, *nested, map[256];
    float *deq; /* (rows * cols,) reference dequantization */
} q4m;

static void make_q4(q4m *m, int rows, int cols, ct_q4_type t, int dq) {
    const int64_t n = (int64_t)rows * cols, nb = ct__q4_nblocks(n, 64);
    float *w = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) w[i] = 0.05f * frand() * (i % 97 == 0 ? 20.0f : 1.0f);
    memset(m, 0, sizeof *m);
    m->packed = malloc((size_t)(n + 1) / 2);
    m->absmax = malloc(sizeof(float) * nb);
    ct__quantize_4bit_ref(w, n, 64, t, m->packed, m->absmax);
    m->q = (ct_nf4_mat){.rows = rows, .cols = cols, .packed = m->packed, .absmax = m->absmax, .type = t};
    if (dq) {
        float *work = malloc(sizeof(float) * nb);
        m->qabsmax = malloc((size_t)nb);
        m->nested = malloc(sizeof(float) * (size_t)ct__q4_nblocks(nb, 256));
        ct__dynamic_map_signed(m->map);
        ct__q4_double_quant(m->absmax, nb, 1, work, m->qabsmax, m->nested, &m->q.offset);
        free(work);
        m->q.absmax = NULL;
        m->q.qabsmax = m->qabsmax;
        m->q.nested_absmax = m->nested;
        m->q.nested_map = m->map;
    }
    m->deq = malloc(sizeof(float) * n);
    ct__nf4_mat_dequant_ref(&m->q, m->deq);
    free(w);
}
static void free_q4(q4m *m) { free(m->packed); free(m->qabsmax); free(m->absmax); free(m->nested); free(m->deq); }

static ct_mat as_mat(const q4m *m) {
    ct_mat W = {.dtype = CT_DT_NF4, .rows = m->q.rows, .cols = m->q.cols, .data = m->q.packed, .q4 = &m->q};
    return W;
}
/* Rows [r0, r0 + nr) as a view: data at the byte of element r0 * cols. */
static ct_mat view(const q4m *m, int r0, int nr) {
    ct_mat W = as_mat(m);
    W.rows = nr;
    W.data = m->q.packed + (size_t)r0 * m->q.cols / 2;
    return W;
}

/* worst |y - ref| / A over the (T, rows) outputs of W's rows r0.. */
static double worst(const float *y, const float *deq, int r0, int rows, int cols, const float *x, const float *b, int T) {
    double w = 0.0;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < rows; r++) {
            double s = 0.0, a = 0.0;
            for (int j = 0; j < cols; j++) {
                double p = (double)deq[(size_t)(r0 + r) * cols + j] * x[(size_t)t * cols + j];
                s += p;
                a += fabs(p);
            }
            if (b) { s += b[r]; a += fabs(b[r]); }
            double e = fabs(y[(size_t)t * rows + r] - s) / (a > 0 ? a : 1.0);
            if (!(e <= w)) w = e; /* NaN counts as worst */
        }
    return w;
}

static void check_one(int rows, int cols, ct_q4_type t, int dq, ct_pool *pool) {
    q4m m;
    make_q4(&m, rows, cols, t, dq);
    ct_mat W = as_mat(&m);
    float *row = malloc(sizeof(float) * cols);
    int same = 1;
    for (int r = 0; r < rows; r++) {
        ct__mat_row_f32(&W, r, row);
        same &= memcmp(row, m.deq + (size_t)r * cols, sizeof(float) * cols) == 0;
    }
    CHECK(same);
    /* a view of the middle third (GPT-2 k rows) reads the same values */
    const int r0 = rows / 3, nr = rows / 3 > 0 ? rows / 3 : 1;
    if ((int64_t)r0 * cols % 2 == 0) {
        ct_mat V = view(&m, r0, nr);
        same = 1;
        for (int r = 0; r < nr; r++) {
            ct__mat_row_f32(&V, r, row);
            same &= memcmp(row, m.deq + (size_t)(r0 + r) * cols, sizeof(float) * cols) == 0;
        }
        CHECK(same);
    }
    static const int Ts[] = {1, 2, 4, 5, 40}; /* row dots (<= 4), fused kernel */
    for (size_t k = 0; k < sizeof Ts / sizeof *Ts; k++) {
        int T = Ts[k];
        float *x = malloc(sizeof(float) * T * cols), *y = malloc(sizeof(float) * T * rows),
              *b = malloc(sizeof(float) * rows);
        for (int i = 0; i < T * cols; i++) x[i] = frand();
        for (int i = 0; i < rows; i++) b[i] = 0.1f * frand();
        ct__matmul(y, x, &W, b, T, pool);
        double e = worst(y, m.deq, 0, rows, cols, x, b, T);
        if (e > TOL_F32) fprintf(stderr, "matmul %dx%d %s dq %d T %d: %g\n", rows, cols, t ? "fp4" : "nf4", dq, T, e);
        CHECK(e <= TOL_F32);
        ct__matmul_ref(y, x, &W, b, T);
        CHECK(worst(y, m.deq, 0, rows, cols, x, b, T) <= TOL_F32);
        /* matmul_n with an NF4 view next to the whole matrix */
        if ((int64_t)r0 * cols % 2 == 0) {
            ct_mat V = view(&m, r0, nr);
            float *y2 = malloc(sizeof(float) * T * nr);
            float *ys[2] = {y, y2};
            const ct_mat *Ws[2] = {&W, &V};
            const float *bs[2] = {NULL, b};
            ct__matmul_n(2, ys, x, Ws, bs, T, pool);
            CHECK(worst(y, m.deq, 0, rows, cols, x, NULL, T) <= TOL_F32);
            e = worst(y2, m.deq, r0, nr, cols, x, b, T);
            if (e > TOL_F32) fprintf(stderr, "view %d+%d of %dx%d: %g\n", r0, nr, rows, cols, e);
            CHECK(e <= TOL_F32);
            CHECK(ct__matmul_scratch(&V, T) > 0);
            free(y2);
        }
        free(x); free(y); free(b);
    }
    free(row);
    free_q4(&m);
}

static int same_quant(const float *x, int64_t n, int64_t bs, ct_q4_type t) {
    const int64_t nb = ct__q4_nblocks(n, bs);
    uint8_t *p1 = calloc((size_t)(n + 1) / 2 + 1, 1), *p2 = calloc((size_t)(n + 1) / 2 + 1, 1);
    float *a1 = malloc(sizeof(float) * nb), *a2 = malloc(sizeof(float) * nb);
    ct__quantize_4bit_ref(x, n, bs, t, p1, a1);
    ct__quantize_4bit(x, n, bs, t, p2, a2);
    int ok = memcmp(p1, p2, (size_t)(n + 1) / 2) == 0 && memcmp(a1, a2, sizeof(float) * nb) == 0;
    if (!ok) fprintf(stderr, "ct__quantize_4bit differs from _ref: n %lld blocksize %lld %s\n", (long long)n,
                     (long long)bs, t ? "fp4" : "nf4");
    free(p1); free(p2); free(a1); free(a2);
    return ok;
}

static void check_quantizer(void) {
    for (int t = 0; t < 2; t++) {
        const float *tab = t ? ct__fp4_map : ct__nf4_map;
        float sorted[16], tmp;
        memcpy(sorted, tab, sizeof sorted);
        for (int i = 0; i < 16; i++) /* insertion sort */
            for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) { tmp = sorted[j]; sorted[j] = sorted[j - 1]; sorted[j - 1] = tmp; }
        /* edge data: per 64-block, absmax a (the first element), then the
         * midpoints times a, one ulp either side, zeros and denormals */
        const int64_t n = 64 * 40;
        float *x = malloc(sizeof(float) * (n + 7));
        static const float scales[] = {1.0f, 0.5f, 0.25f, 3.0f, 1e-3f, 1e30f, 1e-40f, 0.0f};
        for (int64_t b = 0; b < n / 64; b++) {
            const float a = scales[b % 8];
            float *y = x + 64 * b;
            y[0] = (b & 1) ? -a : a;
            for (int k = 0; k < 15; k++) {
                float m = (sorted[k] + sorted[k + 1]) / 2.0f * a;
                y[1 + 4 * k] = m;
                y[2 + 4 * k] = nextafterf(m, 1e38f);
                y[3 + 4 * k] = nextafterf(m, -1e38f);
                y[4 + 4 * k] = -m;
            }
            y[61] = 0.0f;
            y[62] = -0.0f;
            y[63] = b % 3 ? 1e-45f : a;
        }
        for (int64_t k = 0; k < 7; k++) x[n + k] = 0.3f * (float)k;
        for (int64_t len = n - 64; len <= n + 7; len += 1) CHECK(same_quant(x, len, 64, (ct_q4_type)t));
        CHECK(same_quant(x, n, 32, (ct_q4_type)t));
        /* random, with outliers */
        for (int64_t i = 0; i < n; i++) x[i] = frand() * (i % 53 == 0 ? 100.0f : 0.02f);
        CHECK(same_quant(x, n, 64, (ct_q4_type)t));
        CHECK(same_quant(x, 1, 64, (ct_q4_type)t));
        CHECK(same_quant(x, 65, 64, (ct_q4_type)t));
        free(x);
    }
}

int main(void) {
    check_quantizer();
    ct_pool *pool = NULL;
    CHECK_OK(ct__pool_create(2, &pool));
    static const int shapes[][2] = {{8, 64}, {33, 128}, {12, 100}, {7, 37}, {96, 64}, {768, 64}, {9, 3}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int t = 0; t < 2; t++)
            for (int dq = 0; dq < 2; dq++) {
                check_one(shapes[s][0], shapes[s][1], (ct_q4_type)t, dq, NULL);
                check_one(shapes[s][0], shapes[s][1], (ct_q4_type)t, dq, pool);
            }
    /* the checker fails on one wrong code */
    {
        q4m m;
        make_q4(&m, 4, 64, CT_Q4_NF4, 0);
        ct_mat W = as_mat(&m);
        float x[64], y[4];
        for (int i = 0; i < 64; i++) x[i] = 1.0f;
        m.packed[70] ^= 0x30;
        ct__matmul(y, x, &W, NULL, 1, NULL);
        CHECK(worst(y, m.deq, 0, 4, 64, x, NULL, 1) > TOL_F32);
        free_q4(&m);
    }
    ct__pool_free(pool);
    return ct_check_done("test_bnb4_mat");
}
