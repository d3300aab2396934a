/* src/tensor/gemm.c — ct__sgemm: the dense f32 products of training
 * (forward NT, input-gradient NN, weight-gradient TN), and its scalar
 * reference ct__sgemm_ref.
 *
 * Goto/BLIS blocking (see Goto & van de Geijn, "Anatomy of high-performance
 * matrix multiplication", and the BLIS papers), in this order:
 *   jc over N by NC  ->  pc over K by KC  ->  pack B (KC, NC) in NR-wide strips
 *   ic over M by MC  ->  pack A (MC, KC) in MR-tall panels
 *   jr over the B strips (one strip, KC x NR, stays in L1)
 *   ir over the A panels: micro-kernel C[MR, NR] (+)= A_panel . B_strip.
 * Packing copes with ta/tb and strides once, so one micro-kernel serves all
 * four transposition cases; rows/columns past M/N are packed as zeros and
 * the store masks them off (AVX-512 masks), so any M, N, K works.
 *
 * Summation order (what makes results independent of the thread count):
 * every element of C is   acc_p = sum_{k in block p} a*b   (fused
 * multiply-adds in increasing k, from 0), then C = alpha*acc_0 + beta*C for
 * the first K block (C not read when beta == 0) and C = alpha*acc_p + C for
 * the others. KC, MR, NR are constants and the zero padding adds exact zeros,
 * so the value of an element depends only on (M, N, K) and its inputs, not on
 * which thread or tile computes it. Threads take contiguous ranges of whole
 * MR-row panels (or NR-column strips) of C; each packs its own operands in
 * its pool scratch (a thread re-packs the shared operand: cheap next to the
 * products).
 *
 * A narrow C (N <= 16, M >= 64: LoRA's rank-8 outputs) is computed as
 * C^T = op(B)^T op(A)^T with a transposed store, so the short side fills the
 * MR rows of a tile instead of padding NR = 32 columns.
 *
 * ct__sgemm_bf16 (bf16 inputs, vdpbf16ps) is in gemm_bf16.c.
 *
 * Left out: an AVX2
 * kernel (without AVX-512 the micro-kernel is plain C that the compiler
 * vectorizes as it can), runtime CPU dispatch (-march=native decides),
 * double/complex types. */
#include <math.h>
#include <string.h>
#include "core/internal.h"
#include "tensor/gemm.h"
#if defined(__AVX512F__) && defined(__AVX512DQ__)
#include <immintrin.h>
#include "tensor/gemm_tile.h"
#define GEMM_AVX512 1
#endif

/* Micro-tile MR x NR (16 zmm accumulators), K block KC, cache blocks MC, NC.
 * A B strip (KC * NR floats = 32 KiB) sits in L1 while the MC / MR A panels
 * (MC * KC floats = 128 KiB, in L2) stream past it. */
enum { MR = 8, NR = 32, KC = 256, MC = 128, NC = 1536 };

/* ---- reference ----------------------------------------------------------- */
static inline float a_at(int ta, const float *A, int lda, int m, int k) {
    return ta ? A[(size_t)k * lda + m] : A[(size_t)m * lda + k];
}
static inline float b_at(int tb, const float *B, int ldb, int k, int n) {
    return tb ? B[(size_t)n * ldb + k] : B[(size_t)k * ldb + n];
}

void ct__sgemm_ref(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                   int ldb, float beta, float *C, int ldc) {
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) s += (double)a_at(ta, A, lda, m, k) * b_at(tb, B, ldb, k, n);
            float *c = &C[(size_t)m * ldc + n];
            *c = beta == 0.0f ? (float)(alpha * s) : (float)(alpha * s + (double)beta * *c);
        }
}

/* ---- packing ------------------------------------------------------------- */
#if defined(GEMM_AVX512)
/* dst[k * ds + r] = src[r * ld + k] for r < 8, k < 16: an 8 x 16 block
 * transposed in registers (dst rows of 8 floats, ds apart). */
static inline void transpose8x16(const float *src, int ld, float *dst, int ds) {
    const size_t l = (size_t)ld;
    __m512 r0 = _mm512_loadu_ps(src), r1 = _mm512_loadu_ps(src + l), r2 = _mm512_loadu_ps(src + 2 * l);
    __m512 r3 = _mm512_loadu_ps(src + 3 * l), r4 = _mm512_loadu_ps(src + 4 * l), r5 = _mm512_loadu_ps(src + 5 * l);
    __m512 r6 = _mm512_loadu_ps(src + 6 * l), r7 = _mm512_loadu_ps(src + 7 * l);
    /* 32-bit then 64-bit interleaves: in each 128-bit lane L, q[j] holds rows
     * 0-3 and h[j] rows 4-7 of column k = 4L + j */
    __m512d t0 = _mm512_castps_pd(_mm512_unpacklo_ps(r0, r1)), t1 = _mm512_castps_pd(_mm512_unpackhi_ps(r0, r1));
    __m512d t2 = _mm512_castps_pd(_mm512_unpacklo_ps(r2, r3)), t3 = _mm512_castps_pd(_mm512_unpackhi_ps(r2, r3));
    __m512d t4 = _mm512_castps_pd(_mm512_unpacklo_ps(r4, r5)), t5 = _mm512_castps_pd(_mm512_unpackhi_ps(r4, r5));
    __m512d t6 = _mm512_castps_pd(_mm512_unpacklo_ps(r6, r7)), t7 = _mm512_castps_pd(_mm512_unpackhi_ps(r6, r7));
    __m512 q[4], h[4];
    q[0] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2)); q[1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
    q[2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3)); q[3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    h[0] = _mm512_castpd_ps(_mm512_unpacklo_pd(t4, t6)); h[1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t4, t6));
    h[2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t5, t7)); h[3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t5, t7));
    for (int j = 0; j < 4; j++) {
        /* lanes (q0 h0 q1 h1) -> columns j, 4+j; (q2 h2 q3 h3) -> 8+j, 12+j */
        __m512 x = _mm512_shuffle_f32x4(q[j], h[j], _MM_SHUFFLE(1, 0, 1, 0));
        __m512 y = _mm512_shuffle_f32x4(q[j], h[j], _MM_SHUFFLE(3, 2, 3, 2));
        x = _mm512_shuffle_f32x4(x, x, _MM_SHUFFLE(3, 1, 2, 0));
        y = _mm512_shuffle_f32x4(y, y, _MM_SHUFFLE(3, 1, 2, 0));
        _mm256_storeu_ps(dst + (size_t)j * ds, _mm512_castps512_ps256(x));
        _mm256_storeu_ps(dst + (size_t)(4 + j) * ds, _mm512_extractf32x8_ps(x, 1));
        _mm256_storeu_ps(dst + (size_t)(8 + j) * ds, _mm512_castps512_ps256(y));
        _mm256_storeu_ps(dst + (size_t)(12 + j) * ds, _mm512_extractf32x8_ps(y, 1));
    }
}
void ct__transpose8x16(const float *src, int ld, float *dst, int ds) { transpose8x16(src, ld, dst, ds); }
#endif

/* Ap (ceil(mc/MR), kc, MR): panel p holds rows i0+p*MR.. of op(A), columns
 * k0..k0+kc, k-major; rows past mc are zero. */
static void pack_a(int ta, const float *A, int lda, int i0, int mc, int k0, int kc, float *Ap) {
    for (int p = 0; p * MR < mc; p++, Ap += (size_t)MR * kc) {
        int mr = mc - p * MR < MR ? mc - p * MR : MR;
        int ib = i0 + p * MR;
        if (ta) { /* A stored (K, M): MR contiguous floats per k */
#if defined(GEMM_AVX512)
            if (mr == MR) {
                const float *src = A + (size_t)k0 * lda + ib;
                for (int k = 0; k < kc; k++, src += lda) _mm256_store_ps(Ap + (size_t)k * MR, _mm256_loadu_ps(src));
                continue;
            }
#endif
            for (int k = 0; k < kc; k++) {
                const float *src = A + (size_t)(k0 + k) * lda + ib;
                float *dst = Ap + (size_t)k * MR;
                int r = 0;
                for (; r < mr; r++) dst[r] = src[r];
                for (; r < MR; r++) dst[r] = 0.0f;
            }
            continue;
        }
#if defined(GEMM_AVX512)
        if (mr == MR) {
            const float *src = A + (size_t)ib * lda + k0;
            int k = 0;
            for (; k + 16 <= kc; k += 16) transpose8x16(src + k, lda, Ap + (size_t)k * MR, MR);
            for (; k < kc; k++)
                for (int r = 0; r < MR; r++) Ap[(size_t)k * MR + r] = src[(size_t)r * lda + k];
            continue;
        }
#endif
        for (int r = 0; r < MR; r++) {
            float *dst = Ap + r;
            if (r >= mr) {
                for (int k = 0; k < kc; k++) dst[(size_t)k * MR] = 0.0f;
                continue;
            }
            const float *src = A + (size_t)(ib + r) * lda + k0;
            for (int k = 0; k < kc; k++) dst[(size_t)k * MR] = src[k];
        }
    }
}

/* Bp (ceil(nc/NR), kc, NR): strip s holds columns j0+s*NR.. of op(B), rows
 * k0..k0+kc, k-major; columns past nc are zero. */
static void pack_b(int tb, const float *B, int ldb, int k0, int kc, int j0, int nc, float *Bp) {
    for (int s = 0; s * NR < nc; s++, Bp += (size_t)NR * kc) {
        int nr = nc - s * NR < NR ? nc - s * NR : NR;
        int jb = j0 + s * NR;
        if (!tb) { /* B stored (K, N): NR contiguous floats per k */
            for (int k = 0; k < kc; k++) {
                const float *src = B + (size_t)(k0 + k) * ldb + jb;
                float *dst = Bp + (size_t)k * NR;
                if (nr == NR) { memcpy(dst, src, sizeof(float) * NR); continue; }
                int c = 0;
                for (; c < nr; c++) dst[c] = src[c];
                for (; c < NR; c++) dst[c] = 0.0f;
            }
            continue;
        }
        /* B stored (N, K): column c of the strip is row jb+c of B */
#if defined(GEMM_AVX512)
        if (nr == NR) {
            const float *src = B + (size_t)jb * ldb + k0;
            int k = 0;
            for (; k + 16 <= kc; k += 16)
                for (int c = 0; c < NR; c += 8) transpose8x16(src + (size_t)c * ldb + k, ldb, Bp + (size_t)k * NR + c, NR);
            for (; k < kc; k++)
                for (int c = 0; c < NR; c++) Bp[(size_t)k * NR + c] = src[(size_t)c * ldb + k];
            continue;
        }
#endif
        for (int c = 0; c < NR; c++) {
            float *dst = Bp + c;
            if (c >= nr) {
                for (int k = 0; k < kc; k++) dst[(size_t)k * NR] = 0.0f;
                continue;
            }
            const float *src = B + (size_t)(jb + c) * ldb + k0;
            for (int k = 0; k < kc; k++) dst[(size_t)k * NR] = src[k];
        }
    }
}

/* ---- micro-kernels --------------------------------------------------------
 * C[mr, nr] (ldc) = alpha * sum_k a[k, :] b[k, :]^T + beta * C, over kc
 * packed k; beta == 0 does not read C. a: (kc, MR), b: (kc, NR). */
#if defined(GEMM_AVX512)
static void kernel(int kc, const float *a, const float *b, float *C, size_t ldc, int mr, int nr, float alpha,
                   float beta) {
    __m512 acc[MR][2];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    _Static_assert((int)MR == (int)CT_TILE_MR && (int)NR == 32, "the shared tile store is 8 x 32");
    ct__tile_prefetch_c(C, ldc, mr);
#pragma GCC unroll 2
    for (int k = 0; k < kc; k++, a += MR, b += NR) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 16
        for (int r = 0; r < MR; r++) {
            __m512 x = _mm512_set1_ps(a[r]);
            acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
        }
    }
    ct__tile_store(acc, C, ldc, mr, nr, alpha, beta);
}
#else
static void kernel(int kc, const float *a, const float *b, float *C, size_t ldc, int mr, int nr, float alpha,
                   float beta) {
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < kc; k++, a += MR, b += NR)
        for (int r = 0; r < MR; r++)
            for (int c = 0; c < NR; c++) acc[r][c] += a[r] * b[c];
    for (int r = 0; r < mr; r++, C += ldc)
        for (int c = 0; c < nr; c++) C[c] = beta == 0.0f ? alpha * acc[r][c] : alpha * acc[r][c] + beta * C[c];
}
#endif

/* The kernel for a transposed C (C[c * ldc + r] for tile element (r, c)):
 * the sums go through a local tile, the update is the same formula. */
static void kernel_ct(int kc, const float *a, const float *b, float *C, size_t ldc, int mr, int nr, float alpha,
                      float beta) {
    _Alignas(64) float t[MR * NR];
    kernel(kc, a, b, t, NR, MR, NR, 1.0f, 0.0f);
    for (int c = 0; c < nr; c++, C += ldc)
        for (int r = 0; r < mr; r++)
            C[r] = beta == 0.0f ? alpha * t[r * NR + c] : fmaf(alpha, t[r * NR + c], beta * C[r]);
}

/* ---- driver -------------------------------------------------------------- */
typedef struct {
    int ta, tb, M, N, K;
    float alpha, beta;
    const float *A, *B;
    int lda, ldb, ldc;
    float *C;
    int split_m; /* threads split M (else N) */
    int units;   /* MR panels (split_m) or NR strips along the split dimension */
    int ct;      /* C is stored transposed: element (m, n) at C[n * ldc + m] */
} gemm_job;

/* Scratch floats for one thread: a packed A block and a packed B panel. */
#define SCRATCH_FLOATS ((size_t)MC * KC + (size_t)NC * KC)
/* Without scratch (out of memory) a thread packs one tile at a time on the
 * stack: slower, same arithmetic. */
#define TILE_FLOATS ((size_t)MR * KC + (size_t)NR * KC)

/* C[m0:m1, n0:n1] with packing buffers Ap (mcap rows) and Bp (ncap columns). */
static void gemm_block(const gemm_job *g, int m0, int m1, int n0, int n1, float *Ap, int mcap, float *Bp, int ncap) {
    for (int jc = n0; jc < n1; jc += ncap) {
        int nc = n1 - jc < ncap ? n1 - jc : ncap;
        for (int pc = 0; pc < g->K; pc += KC) {
            int kc = g->K - pc < KC ? g->K - pc : KC;
            float beta = pc == 0 ? g->beta : 1.0f;
            pack_b(g->tb, g->B, g->ldb, pc, kc, jc, nc, Bp);
            for (int ic = m0; ic < m1; ic += mcap) {
                int mc = m1 - ic < mcap ? m1 - ic : mcap;
                pack_a(g->ta, g->A, g->lda, ic, mc, pc, kc, Ap);
                for (int jr = 0; jr < nc; jr += NR) {
                    const float *bs = Bp + (size_t)jr * kc;
                    int nr = nc - jr < NR ? nc - jr : NR;
                    for (int ir = 0; ir < mc; ir += MR) {
                        int mr = mc - ir < MR ? mc - ir : MR;
                        if (g->ct) {
                            kernel_ct(kc, Ap + (size_t)ir * kc, bs, g->C + (size_t)(jc + jr) * g->ldc + ic + ir,
                                      (size_t)g->ldc, mr, nr, g->alpha, beta);
                            continue;
                        }
                        kernel(kc, Ap + (size_t)ir * kc, bs, g->C + (size_t)(ic + ir) * g->ldc + jc + jr,
                               (size_t)g->ldc, mr, nr, g->alpha, beta);
                    }
                }
            }
        }
    }
}

/* C = beta * C over (M, N) (the alpha == 0 or K == 0 case). */
static void scale_c(int M, int N, float beta, float *C, int ldc) {
    for (int m = 0; m < M; m++) {
        float *c = C + (size_t)m * ldc;
        if (beta == 0.0f) memset(c, 0, sizeof(float) * (size_t)N);
        else if (beta != 1.0f) for (int n = 0; n < N; n++) c[n] *= beta;
    }
}

typedef struct {
    gemm_job job;
    ct_pool *pool;
} gemm_run;

static void gemm_run_task(void *ctx, int ith, int nth) {
    gemm_run *r = ctx;
    const gemm_job *g = &r->job;
    int u0 = (int)((long long)g->units * ith / nth), u1 = (int)((long long)g->units * (ith + 1) / nth);
    if (u0 >= u1) return;
    int m0 = 0, m1 = g->M, n0 = 0, n1 = g->N;
    if (g->split_m) { m0 = u0 * MR; m1 = u1 * MR < g->M ? u1 * MR : g->M; }
    else { n0 = u0 * NR; n1 = u1 * NR < g->N ? u1 * NR : g->N; }
    float *buf = ct__pool_scratch(r->pool, ith, sizeof(float) * SCRATCH_FLOATS);
    if (buf) {
        gemm_block(g, m0, m1, n0, n1, buf, MC, buf + (size_t)MC * KC, NC);
    } else {
        _Alignas(64) float tile[TILE_FLOATS];
        gemm_block(g, m0, m1, n0, n1, tile, MR, tile + (size_t)MR * KC, NR);
    }
}

static void gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc, ct_pool *pool) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) { scale_c(M, N, beta, C, ldc); return; }
    gemm_run r = {{ta, tb, M, N, K, alpha, beta, A, B, lda, ldb, ldc, C, 0, 0, 0}, pool};
    if (N <= NR / 2 && M >= 2 * NR) {
        /* narrow C (LoRA's rank 8): compute C^T = op(B)^T op(A)^T, whose
         * short side fits the MR rows of the tile instead of padding NR */
        gemm_job t = {!tb, !ta, N, M, K, alpha, beta, B, A, ldb, lda, ldc, C, 0, 0, 1};
        r.job = t;
        M = t.M; N = t.N;
    }
    int mt = (M + MR - 1) / MR, nt = (N + NR - 1) / NR;
    /* split the dimension with more tiles (ties: M, whose panels are smaller) */
    r.job.split_m = (long long)mt * MR >= (long long)nt * NR;
    r.job.units = r.job.split_m ? mt : nt;
    int nth = ct__pool_size(pool);
    /* small products: one thread (a dispatch costs more than the work) */
    if (nth == 1 || (double)M * N * K < 2e5) gemm_run_task(&r, 0, 1);
    else ct__pool_run(pool, gemm_run_task, &r);
}

void ct__sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
               float beta, float *C, int ldc, ct_pool *pool) {
    gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, pool);
}
