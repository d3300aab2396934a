/* src/tensor/gemm_bf16.c — ct__sgemm_bf16: the training products with
 * bf16 inputs and f32 accumulation, on AVX-512 BF16 `vdpbf16ps`, and the
 * pre-packed B operand (ct__gemm_bf16_pack_b / ct__sgemm_bf16_packed) for
 * matrices reused across calls (frozen LoRA bases).
 *
 * Packed layout (what vdpbf16ps wants): op(A) and op(B) are rounded to bf16
 * (nearest even, like vcvtne2ps2bf16) and stored as PAIRS of consecutive k:
 *   A panel (kp, MR)    : 32-bit word (kp, r) = (a[r][2kp], a[r][2kp+1])
 *   B strip (kp, NR, 2) : 32-bit word (kp, c) = (b[2kp][c], b[2kp+1][c])
 * (low half = even k), K padded to even with zeros, rows/columns past M/N
 * zero. One vdpbf16ps multiplies a broadcast A word against 16 B words:
 * 16 columns x 2 k = 32 products, summed into 16 f32 accumulators. The
 * micro-kernel holds an MR x NR = 8 x 32 tile (16 zmm accumulators, 2 B
 * loads and 8 broadcasts per 16 vdpbf16ps; the C tile is prefetched when it
 * starts, since C is often in L3 or DRAM by its update). A whole packed op(B) is
 * K-blocked: block k0 (KC wide) of a view W columns wide starts at k0 * W
 * halves, its NR strips follow one another (kcp * NR halves each, kcp =
 * the block's k rounded up to even).
 *
 * Blocking (Goto/BLIS as in gemm.c): jc over N by NC -> pc over K by KC ->
 * ic over M by MC (pack A) -> jr over NR strips -> ir over MR panels.
 * Threads split M (whole MR panels) or N (whole NR strips), whichever has
 * more tiles. When they split M, op(B) is packed once, cooperatively, into
 * a shared window (all of K for as many columns as fit 8 MiB) by one pool
 * run, and read by all threads in the next; when they split N
 * each thread packs its own B block by block. ct__sgemm_bf16_packed reads
 * the caller's pre-packed op(B) instead.
 *
 * Summation order (why results do not depend on the thread count, and why
 * the pre-packed path gives the unpacked one's bits): every element is, per
 * K block p, acc_p = the vdpbf16ps chain over the block's k pairs in
 * increasing order from 0, then C = alpha*acc_0 + beta*C (C not read when
 * beta == 0) and C = alpha*acc_p + C for later blocks; KC is fixed, padding
 * adds exact zeros. A narrow C (N <= 16, M >= 64: LoRA rank) is computed as
 * C^T like in gemm.c; vdpbf16ps is symmetric in its two operands (bf16
 * products are exact in f32), so that gives the same bits as well.
 *
 * Left out: a kernel for CPUs without AVX-512 BF16 (there a scalar loop
 * emulates vdpbf16ps on the same layout: correct, slow, and its last bits
 * may differ from the instruction's), packed A, bf16 outputs. vdpbf16ps
 * treats bf16 denormal inputs as zero and flushes denormal results (DAZ,
 * FTZ); the scalar conversion flushes denormal inputs too, so both packing
 * paths give the same halves. */
#include <math.h>
#include <string.h>
#include "core/internal.h"
#include "tensor/gemm.h"
#if defined(__AVX512F__) && defined(__AVX512DQ__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512BF16__)
#include <immintrin.h>
#include "tensor/gemm_tile.h"
#define BF16_AVX512 1
#endif

/* KC even. A B strip (KC * NR halves = 32 KiB) stays in L1 while the MC/MR
 * A panels of the block (MC * KC halves = 128 KiB, L2) stream past it. */
enum { MR = 8, NR = 32, KC = 512, MC = 128, NC = 1536 };
/* The shared window of packed op(B) when threads split M (8 MiB: all of N
 * for every GPT-2 shape; tests shrink it to cover several windows). */
static size_t window_bytes = (size_t)8 << 20;

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int even_up(int k) { return (k + 1) & ~1; }

/* f32 -> bf16, round to nearest even; NaN stays a (quiet) NaN, denormals
 * become signed zeros (what vdpbf16ps makes of them anyway). */
static inline uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
static inline uint32_t pair_bf16(float lo, float hi) { return (uint32_t)to_bf16(lo) | (uint32_t)to_bf16(hi) << 16; }

static inline float a_at(int ta, const float *A, int lda, int m, int k) {
    return ta ? A[(size_t)k * lda + m] : A[(size_t)m * lda + k];
}
static inline float b_at(int tb, const float *B, int ldb, int k, int n) {
    return tb ? B[(size_t)n * ldb + k] : B[(size_t)k * ldb + n];
}

/* ---- packing --------------------------------------------------------------
 * The vector paths convert with vcvtne2ps2bf16, which gives to_bf16's bits
 * (checked on this CPU: ties to even, overflow to infinity, denormals to
 * signed zero, NaN quieted), so which path packs an element never matters. */
#if defined(BF16_AVX512)
/* 8 rows of 32 floats (row stride ld, from k) as 8 x 16 pair words in t. */
static inline void rows_to_pairs(const float *src, size_t ld, uint32_t *t) {
    for (int r = 0; r < 8; r++) {
        const float *s = src + (size_t)r * ld;
        __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(s + 16), _mm512_loadu_ps(s));
        _mm512_store_si512((void *)(t + 16 * r), (__m512i)v);
    }
}
#endif

/* Ap (ceil(mc/MR), kcp/2, MR) words: rows i0.. of op(A), k in [k0, k0+kc). */
static void pack_a(int ta, const float *A, int lda, int i0, int mc, int k0, int kc, uint32_t *Ap) {
    const int kp = even_up(kc) / 2;
    for (int p = 0; p * MR < mc; p++, Ap += (size_t)MR * kp) {
        const int mr = imin(mc - p * MR, MR), ib = i0 + p * MR;
        int q = 0; /* pairs done by the vector paths */
#if defined(BF16_AVX512)
        if (mr == MR && ta) { /* A stored (K, M): rows k, k+1 give 8 pairs */
            const __m256i idx = _mm256_setr_epi16(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
            for (; 2 * q + 1 < kc; q++) {
                const float *s = A + (size_t)(k0 + 2 * q) * lda + ib;
                __m256bh v = _mm256_cvtne2ps_pbh(_mm256_loadu_ps(s + lda), _mm256_loadu_ps(s));
                _mm256_store_si256((__m256i *)(Ap + (size_t)q * MR), _mm256_permutexvar_epi16(idx, (__m256i)v));
            }
        } else if (mr == MR) { /* A stored (M, K): 32 k of 8 rows, transposed */
            _Alignas(64) uint32_t t[8 * 16];
            for (; 2 * q + 32 <= kc; q += 16) {
                rows_to_pairs(A + (size_t)ib * lda + k0 + 2 * q, (size_t)lda, t);
                ct__transpose8x16((const float *)t, 16, (float *)(Ap + (size_t)q * MR), MR);
            }
        }
#endif
        for (; q < kp; q++) {
            uint32_t *d = Ap + (size_t)q * MR;
            const int k = k0 + 2 * q, has_hi = 2 * q + 1 < kc;
            for (int r = 0; r < MR; r++)
                d[r] = r < mr ? pair_bf16(a_at(ta, A, lda, ib + r, k), has_hi ? a_at(ta, A, lda, ib + r, k + 1) : 0.0f)
                              : 0u;
        }
    }
}

/* Bp (ceil(nc/NR), kcp/2, NR) words: columns j0.. of op(B), k in [k0, k0+kc). */
static void pack_b(int tb, const float *B, int ldb, int k0, int kc, int j0, int nc, uint32_t *Bp) {
    const int kp = even_up(kc) / 2;
    for (int s = 0; s * NR < nc; s++, Bp += (size_t)NR * kp) {
        const int nr = imin(nc - s * NR, NR), jb = j0 + s * NR;
        int q = 0;
#if defined(BF16_AVX512)
        if (nr == NR && !tb) { /* B stored (K, N): rows k, k+1 give 16 pairs per zmm */
            const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                                                 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
            for (; 2 * q + 1 < kc; q++) {
                const float *s0 = B + (size_t)(k0 + 2 * q) * ldb + jb, *s1 = s0 + ldb;
                for (int c = 0; c < NR; c += 16) {
                    __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(s1 + c), _mm512_loadu_ps(s0 + c));
                    _mm512_store_si512((void *)(Bp + (size_t)q * NR + c), _mm512_permutexvar_epi16(idx, (__m512i)v));
                }
            }
        } else if (nr == NR) { /* B stored (N, K): column c is row jb + c */
            /* 8 rows at a time along k (8 read streams, not 32) */
            _Alignas(64) uint32_t t[8 * 16];
            const int qv = kc / 32 * 16;
            for (int c = 0; c < NR; c += 8)
                for (int q2 = 0; q2 < qv; q2 += 16) {
                    rows_to_pairs(B + (size_t)(jb + c) * ldb + k0 + 2 * q2, (size_t)ldb, t);
                    ct__transpose8x16((const float *)t, 16, (float *)(Bp + (size_t)q2 * NR + c), NR);
                }
            q = qv;
        }
#endif
        for (; q < kp; q++) {
            uint32_t *d = Bp + (size_t)q * NR;
            const int k = k0 + 2 * q, has_hi = 2 * q + 1 < kc;
            for (int c = 0; c < NR; c++)
                d[c] = c < nr ? pair_bf16(b_at(tb, B, ldb, k, jb + c), has_hi ? b_at(tb, B, ldb, k + 1, jb + c) : 0.0f)
                              : 0u;
        }
    }
}

/* ---- micro-kernels --------------------------------------------------------
 * C[mr, nr] (ldc) = alpha * sum over kp pairs + beta * C (beta == 0: C not
 * read). a: (kp, MR) words, b: (kp, NR) words, 64-byte aligned. */
#if defined(BF16_AVX512)
static void kernel(int kp, const uint32_t *a, const uint32_t *b, float *C, size_t ldc, int mr, int nr, float alpha,
                   float beta) {
    __m512 acc[MR][2];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    _Static_assert((int)MR == (int)CT_TILE_MR && (int)NR == 32, "the shared tile store is 8 x 32");
    ct__tile_prefetch_c(C, ldc, mr);
#pragma GCC unroll 2
    for (int k = 0; k < kp; k++, a += MR, b += NR) {
        __m512bh b0 = (__m512bh)_mm512_load_si512((const void *)b);
        __m512bh b1 = (__m512bh)_mm512_load_si512((const void *)(b + 16));
#pragma GCC unroll 16
        for (int r = 0; r < MR; r++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x, b1);
        }
    }
    ct__tile_store(acc, C, ldc, mr, nr, alpha, beta);
}
#else
static inline float bf_lo(uint32_t w) { uint32_t u = w << 16; float f; memcpy(&f, &u, 4); return f; }
static inline float bf_hi(uint32_t w) { uint32_t u = w & 0xffff0000u; float f; memcpy(&f, &u, 4); return f; }
/* vdpbf16ps on one lane, as Intel's pseudo-code orders it: odd k, then even */
static void kernel(int kp, const uint32_t *a, const uint32_t *b, float *C, size_t ldc, int mr, int nr, float alpha,
                   float beta) {
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < kp; k++, a += MR, b += NR)
        for (int r = 0; r < MR; r++)
            for (int c = 0; c < NR; c++) {
                acc[r][c] += bf_hi(a[r]) * bf_hi(b[c]);
                acc[r][c] += bf_lo(a[r]) * bf_lo(b[c]);
            }
    for (int r = 0; r < mr; r++, C += ldc)
        for (int c = 0; c < nr; c++) C[c] = beta == 0.0f ? alpha * acc[r][c] : alpha * acc[r][c] + beta * C[c];
}
#endif

/* The kernel for a transposed C (tile element (r, c) at C[c * ldc + r]). */
static void kernel_ct(int kp, const uint32_t *a, const uint32_t *b, float *C, size_t ldc, int mr, int nr,
                      float alpha, float beta) {
    _Alignas(64) float t[MR * NR];
    kernel(kp, a, b, t, NR, MR, NR, 1.0f, 0.0f);
    for (int c = 0; c < nr; c++, C += ldc)
        for (int r = 0; r < mr; r++)
            C[r] = beta == 0.0f ? alpha * t[r * NR + c] : fmaf(alpha, t[r * NR + c], beta * C[r]);
}

/* ---- driver -------------------------------------------------------------- */
typedef struct {
    int ta, tb, M, N, K;
    float alpha, beta;
    const float *A, *B; /* B: the unpacked op(B) source (NULL with a packed one) */
    int lda, ldb, ldc;
    float *C;
    int ct;             /* C stored transposed: element (m, n) at C[n * ldc + m] */
    int split_m, units; /* threads split M (MR panels) or N (NR strips) */
    /* packed op(B) view: columns [pj0, pj0 + pw) of op(B), all of K */
    const uint32_t *pb;
    int pj0, pw; /* pw a multiple of NR */
} job;

/* Strips of K block k0 of the packed view, from column j (j - pj0 a multiple of NR). */
static const uint32_t *view_strips(const job *g, int k0, int kc, int j) {
    return g->pb + ((size_t)k0 * g->pw + (size_t)(j - g->pj0) * even_up(kc)) / 2;
}

/* C[m0:m1, n0:n1] over K block [k0, k0+kc) with the B strips bs (from
 * column n0) and A blocks packed in Ap (mcap rows). */
static void block(const job *g, int m0, int m1, int n0, int n1, int k0, int kc, const uint32_t *bs, uint32_t *Ap,
                  int mcap) {
    const float beta = k0 == 0 ? g->beta : 1.0f;
    const int kp = even_up(kc) / 2;
    for (int ic = m0; ic < m1; ic += mcap) {
        const int mc = imin(m1 - ic, mcap);
        pack_a(g->ta, g->A, g->lda, ic, mc, k0, kc, Ap);
        for (int jr = n0; jr < n1; jr += NR) {
            const uint32_t *b = bs + (size_t)(jr - n0) * kp;
            const int nr = imin(n1 - jr, NR);
            for (int ir = 0; ir < mc; ir += MR) {
                const int mr = imin(mc - ir, MR);
                const uint32_t *a = Ap + (size_t)ir * kp;
                if (g->ct)
                    kernel_ct(kp, a, b, g->C + (size_t)jr * g->ldc + ic + ir, (size_t)g->ldc, mr, nr, g->alpha, beta);
                else kernel(kp, a, b, g->C + (size_t)(ic + ir) * g->ldc + jr, (size_t)g->ldc, mr, nr, g->alpha, beta);
            }
        }
    }
}

/* Scratch words per thread: an A block, and (own packing) a B block. */
#define A_WORDS ((size_t)MC * KC / 2)
#define B_WORDS ((size_t)NC * KC / 2)

/* One thread's C[m0:m1, n0:n1]: from the packed view, or packing its own B
 * blocks (g->pb NULL). Its scratch words start at `skip` (task 0 skips the
 * shared window that precedes them in its slot). Without scratch it packs
 * one tile at a time on the stack (slower, same arithmetic). */
static void work(const job *g, ct_pool *pool, int ith, size_t skip, int m0, int m1, int n0, int n1) {
    const int own = g->pb == NULL;
    uint32_t *buf = ct__pool_scratch(pool, ith, sizeof(uint32_t) * (skip + A_WORDS + (own ? B_WORDS : 0)));
    _Alignas(64) uint32_t tile[(MR + NR) * KC / 2];
    if (buf) buf += skip;
    uint32_t *Ap = buf ? buf : tile, *Bp = buf ? buf + A_WORDS : tile + MR * KC / 2;
    const int mcap = buf ? MC : MR, ncap = buf ? NC : NR;
    for (int jc = n0; jc < n1; jc += ncap) {
        const int nc = imin(n1 - jc, ncap);
        for (int pc = 0; pc < g->K; pc += KC) {
            const int kc = imin(g->K - pc, KC);
            const uint32_t *bs = Bp;
            if (own) pack_b(g->tb, g->B, g->ldb, pc, kc, jc, nc, Bp);
            else bs = view_strips(g, pc, kc, jc);
            block(g, m0, m1, jc, jc + nc, pc, kc, bs, Ap, mcap);
        }
    }
}

typedef struct {
    job g;
    ct_pool *pool;
    uint32_t *win; /* the shared window (slot 0's scratch), or NULL */
    size_t win_words;
    int wstrips;   /* strips in the window */
} run_ctx;

static void compute_task(void *ctx, int ith, int nth) {
    run_ctx *r = ctx;
    const job *g = &r->g;
    const int u0 = (int)((long long)g->units * ith / nth), u1 = (int)((long long)g->units * (ith + 1) / nth);
    if (u0 >= u1) return;
    const size_t skip = ith == 0 ? r->win_words : 0;
    if (g->split_m) work(g, r->pool, ith, skip, u0 * MR, imin(u1 * MR, g->M), g->pj0, imin(g->pj0 + g->pw, g->N));
    else work(g, r->pool, ith, skip, 0, g->M, u0 * NR, imin(u1 * NR, g->N));
}

/* Packs strips [s0, s1) of the view of op(B) columns [j0, j0 + w) (w a
 * multiple of NR, no strip wholly past N), all of K, into dst. */
static void pack_view(int tb, const float *B, int ldb, int K, int N, int j0, int w, uint32_t *dst, int s0, int s1) {
    if (s0 >= s1) return;
    const int ja = j0 + s0 * NR, nc = imin(N, j0 + s1 * NR) - ja;
    for (int pc = 0; pc < K; pc += KC) {
        const int kc = imin(K - pc, KC);
        pack_b(tb, B, ldb, pc, kc, ja, nc, dst + ((size_t)pc * w + (size_t)s0 * NR * even_up(kc)) / 2);
    }
}

static void pack_task(void *ctx, int ith, int nth) {
    run_ctx *r = ctx;
    const job *g = &r->g;
    const int s0 = (int)((long long)r->wstrips * ith / nth), s1 = (int)((long long)r->wstrips * (ith + 1) / nth);
    pack_view(g->tb, g->B, g->ldb, g->K, g->N, g->pj0, g->pw, r->win, s0, s1);
}

static void run(run_ctx *r, ct_task_fn fn) {
    const job *g = &r->g;
    if (ct__pool_size(r->pool) == 1 || (double)g->M * g->N * g->K < 2e5) fn(r, 0, 1);
    else ct__pool_run(r->pool, fn, r);
}

static void set_split(job *g) {
    const int mt = (g->M + MR - 1) / MR, nt = (g->N + NR - 1) / NR;
    g->split_m = (long long)mt * MR >= (long long)nt * NR;
    g->units = g->split_m ? mt : nt;
}

/* The view covering all of N (a caller's pre-packed op(B)), or none. */
static void set_view(job *g, const uint32_t *pb) {
    g->pb = pb;
    g->pj0 = 0;
    g->pw = (g->N + NR - 1) / NR * NR;
}

void ct__sgemm_bf16(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                    int ldb, float beta, float *C, int ldc, ct_pool *pool) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) { ct__sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, pool); return; }
    run_ctx r = {{ta, tb, M, N, K, alpha, beta, A, B, lda, ldb, ldc, C, 0, 0, 0, NULL, 0, 0}, pool, NULL, 0, 0};
    if (N <= NR / 2 && M >= 2 * NR) { /* narrow C: C^T = op(B)^T op(A)^T (see gemm.c) */
        job t = {!tb, !ta, N, M, K, alpha, beta, B, A, ldb, lda, ldc, C, 1, 0, 0, NULL, 0, 0};
        r.g = t;
    }
    job *g = &r.g;
    set_split(g);
    set_view(g, NULL);
    if (!g->split_m || ct__pool_size(pool) == 1 || (double)g->M * g->N * g->K < 2e5) {
        run(&r, compute_task); /* each thread packs the B blocks of its own columns */
        return;
    }
    /* threads split M: op(B) packed once per window of columns, shared.
     * The window is the start of slot 0's scratch (task 0's A block follows
     * it); it is asked for here, while no run is in progress. */
    const size_t col_words = (size_t)even_up(g->K) / 2;    /* one packed column of op(B) */
    int w = (int)(window_bytes / 4 / col_words) / NR * NR; /* whole strips */
    if (w < NR) w = NR;
    if (w > g->pw) w = g->pw;
    r.win_words = col_words * (size_t)w;
    r.win = ct__pool_scratch(pool, 0, sizeof(uint32_t) * (r.win_words + A_WORDS));
    if (!r.win) { r.win_words = 0; run(&r, compute_task); return; }
    for (int j0 = 0; j0 < g->N; j0 += w) {
        g->pb = r.win;
        g->pj0 = j0;
        g->pw = imin(w, (g->N - j0 + NR - 1) / NR * NR);
        r.wstrips = g->pw / NR;
        ct__pool_run(pool, pack_task, &r);
        ct__pool_run(pool, compute_task, &r);
    }
}

/* ---- pre-packed op(B) ----------------------------------------------------- */
size_t ct__gemm_bf16_packed_bytes(int K, int N) {
    if (K <= 0 || N <= 0) return 0;
    return (size_t)even_up(K) * (size_t)((N + NR - 1) / NR * NR) * 2;
}

void ct__gemm_bf16_pack_b(int tb, int K, int N, const float *B, int ldb, void *dst, ct_pool *pool) {
    if (K <= 0 || N <= 0) return;
    run_ctx r = {{0, tb, 1, N, K, 1.0f, 0.0f, NULL, B, 0, ldb, 0, NULL, 0, 0, 0, NULL, 0, 0}, pool, dst, 0, 0};
    set_view(&r.g, dst);
    r.wstrips = r.g.pw / NR;
    if ((double)K * N < 1e5) pack_task(&r, 0, 1);
    else ct__pool_run(pool, pack_task, &r);
}

void ct__sgemm_bf16_packed(int ta, int M, int N, int K, float alpha, const float *A, int lda, const void *Bp,
                           float beta, float *C, int ldc, ct_pool *pool) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) { ct__sgemm(ta, 0, M, N, K, 0.0f, A, lda, NULL, N, beta, C, ldc, pool); return; }
    run_ctx r = {{ta, 0, M, N, K, alpha, beta, A, NULL, lda, 0, ldc, C, 0, 0, 0, NULL, 0, 0}, pool, NULL, 0, 0};
    set_split(&r.g);
    set_view(&r.g, Bp);
    run(&r, compute_task);
}

size_t ct__gemm_bf16_set_window(size_t bytes) {
    size_t old = window_bytes;
    window_bytes = bytes;
    return old;
}
