/* src/tensor/matmul_kern.h — the kernels behind ct__matmul (ops.h), shared by
 * matmul.c (driver: threading, tiling, dispatch), matmul_x86.c (AVX-512 and
 * AVX2/FMA/F16C kernels, with a scalar build when those are missing) and matmul_ref.c
 * (scalar `_ref` twins, the definitions the tests hold the fast ones to).
 * Internal to src/tensor and to the matmul tests/benchmark. */
#ifndef CT_TENSOR_MATMUL_KERN_H
#define CT_TENSOR_MATMUL_KERN_H
#include <stddef.h>
#include <stdint.h>
#include "tensor/ops.h"

/* An activation row x (n,) quantized to 8 bits, one block per 32 elements:
 * x[j] ~= d_b * q[j] with d_b = amax_b/127, and s_b = d_b * sum(q in b) (for
 * the constant parts of Q4_0 (-8) and Q4_1 (+m)). Stored as one chunk per
 * row, ct__xq8_bytes(nb) long: d (nb floats), s (nb floats), q codes.
 * The codes and scales are laid out for the weight type's kernel:
 * - CT_DT_Q8_0 ("plain"): block b's codes at q[32b ..], d/s at index b.
 * - Q4_0/Q4_1 ("pairs"): blocks 2p, 2p+1 share 64 bytes: [lo(2p) lo(2p+1)
 *   hi(2p) hi(2p+1)] with lo = codes 0..15, hi = 16..31, which is what one
 *   ymm of both blocks' nibbles meets. In each full group of 8 blocks d/s
 *   are in the order 0,2,4,6,1,3,5,7 (the order vphaddd leaves the block
 *   sums in); blocks after the last full group are in natural order. */
static inline size_t ct__xq8_bytes(int nb) { return 8 * (size_t)nb + 64 * (size_t)((nb + 1) / 2); }
/* Parts of a row (const is the caller's to keep). */
static inline float *ct__xq8_d(const void *row, int nb) { (void)nb; return (float *)row; }
static inline float *ct__xq8_s(const void *row, int nb) { return (float *)row + nb; }
static inline int8_t *ct__xq8_q(const void *row, int nb) { return (int8_t *)((float *)row + 2 * (size_t)nb); }
/* Index of block b's d/s, and of its code j, in the layout for dtype wt. */
static inline int ct__xq8_dpos(ct_dtype wt, int nb, int b) {
    if (wt == CT_DT_Q8_0 || b >= nb / 8 * 8) return b;
    return b / 8 * 8 + (b % 8) / 2 + 4 * (b % 2);
}
static inline size_t ct__xq8_qpos(ct_dtype wt, int b, int j) {
    if (wt == CT_DT_Q8_0) return 32 * (size_t)b + j;
    return 64 * (size_t)(b / 2) + 16 * (b % 2) + (j < 16 ? j : j + 16);
}

/* GEMM micro-kernel tile: MR rows of A by NR columns of a packed panel
 * (ct__matmul: MR rows of W by NR rows of x). */
#define CT_MM_MR 6
#define CT_MM_NR 16
/* K block: a packed x panel is KC x NR floats (32 KB). Multiple of 32. */
#ifndef CT_MM_KC
#define CT_MM_KC 512
#endif

/* ---- fast kernels (matmul_x86.c) --------------------------------------- */
/* One block of 32 floats to 8-bit codes q[32] (nearest-even of v/d), returns
 * d = amax/127 and the code sum in *sum. The one rounding rule for x. */
float ct__quant_block_q8(const float *v, int8_t *q, int *sum);
/* x (n,) -> one quantized row (out: ct__xq8_bytes(n/32) bytes, 4-aligned) in
 * the layout for weights of type wt; n % 32 == 0. Same bytes as the _ref. */
void ct__quantize_x_q8(const float *x, ct_dtype wt, void *out, int n);
/* out[i] = W[r0+i, :] . x for i < nr; F32/F16/BF16 weights, x (cols,) f32. */
void ct__dot_rows_f(const ct_mat *W, int r0, int nr, const float *x, float *out);
/* The AVX2 float row dots (the scalar ones without AVX2), for tests of the AVX-512 build. */
void ct__dot_rows_f_avx2(const ct_mat *W, int r0, int nr, const float *x, float *out);
/* xs (n/32,) = sums of x (n,) over each 32-block; n % 32 == 0. */
void ct__x_block_sums(const float *x, int n, float *xs);
/* out[t*nr + i] = W[r0+i, :] . x_t for i < nr, t < nt; Q8_0/Q4_0/Q4_1
 * weights dequantized in registers (once for all nt rows of x), x (nt, cols)
 * f32: the f32 dot of the dequantized row up to the order of summation.
 * xs (nt, cols/32): x's block sums (ct__x_block_sums), for Q4_1's +m. */
void ct__dot_rows_qf(const ct_mat *W, int r0, int nr, int nt, const float *x, const float *xs, float *out);
/* Same for Q8_0/Q4_0/Q4_1 weights against x quantized for W->dtype. */
void ct__dot_rows_q(const ct_mat *W, int r0, int nr, const void *xq, float *out);
/* out (n,) = W[r, k0 : k0+n] as f32; for Q types k0 and n multiples of 32. */
void ct__dequant_range(const ct_mat *W, int r, int k0, int n, float *out);
/* Pack nr <= NR dequantized rows src (nr, ld) into a panel dst (kc, NR), the
 * missing rows zero: dst[k*NR + j] = src[j*ld + k]. */
void ct__pack_panel(const float *src, int ld, int nr, int kc, float *dst);
/* C (mr, ldc) [+]= A (mr, lda) over kc . P (kc, NR) for mr <= MR, writing only
 * the first nc <= NR columns of C; accumulate = 0 overwrites C (with bias
 * (nc,) added if non-NULL), 1 adds to it. A is read in place (its MR rows
 * stay in L1 across the panels; packing it measured 15% slower). */
void ct__gemm_tile(int mr, int nc, int kc, const float *A, int lda, const float *P,
                   float *C, int ldc, const float *bias, int accumulate);
/* Which ISA the fast kernels were built for ("avx512+avx2+fma+f16c",
 * "avx2+fma+f16c" or "scalar"). */
const char *ct__matmul_isa(void);

/* ---- scalar twins (matmul_ref.c) --------------------------------------- */
float ct__quant_block_q8_ref(const float *v, int8_t *q, int *sum);
void ct__quantize_x_q8_ref(const float *x, ct_dtype wt, void *out, int n);
void ct__dot_rows_f_ref(const ct_mat *W, int r0, int nr, const float *x, float *out);
void ct__x_block_sums_ref(const float *x, int n, float *xs);
void ct__dot_rows_qf_ref(const ct_mat *W, int r0, int nr, int nt, const float *x, const float *xs, float *out);
void ct__dot_rows_q_ref(const ct_mat *W, int r0, int nr, const void *xq, float *out);
void ct__dequant_range_ref(const ct_mat *W, int r, int k0, int n, float *out);
void ct__gemm_tile_ref(int mr, int nc, int kc, const float *A, int lda, const float *P,
                       float *C, int ldc, const float *bias, int accumulate);

/* ---- Q4 tile kernel (matmul_q4.c) -------------------------------------- */
/* x rows quantized for it: 128 bytes per pair of 32-blocks (layout in
 * matmul_q4.c), ct__xq4t_bytes(nb) per row, 4-byte aligned. */
static inline size_t ct__xq4t_bytes(int nb) { return 128 * (size_t)((nb + 1) / 2); }
void ct__quantize_x_q4t(const float *x, ct_dtype wt, void *out, int n);
void ct__quantize_x_q4t_ref(const float *x, ct_dtype wt, void *out, int n);
/* out[t] (t < tt) = W[r, 64*p0 : 64*(p0+np)] . x_t for Q4_0/Q4_1 W and x
 * quantized for W->dtype: row t's pairs p0 .. p0+np-1 at xq + t * xstride. */
void ct__dot_q4_tile(const ct_mat *W, int r, int p0, int np, const void *xq, size_t xstride, int tt, float *out);
void ct__dot_q4_tile_ref(const ct_mat *W, int r, int p0, int np, const void *xq, size_t xstride, int tt,
                         float *out);
/* The same for rows r and r+1 at once, tt <= 8: row r's to out[t], row
 * r+1's to out[8 + t] (VNNI: W blocks x 8 rows of x in registers). */
void ct__dot_q4_tile2(const ct_mat *W, int r, int p0, int np, const void *xq, size_t xstride, int tt, float *out);

/* ---- 8 interleaved W rows (matmul_q4.c; CT_MM_GEMM_Q8 for larger T with
 * VNNI) ---------------------------------------------------------------------
 * x rows quantized per 32-block: CT_XR8_BLK bytes per block (codes in
 * natural order, d, and c: Q4_0 -8 x code sum, Q8_0 -128 x code sum, Q4_1
 * d x code sum). W rows r .. r+nr-1 (nr <= 8; missing rows zero) repacked:
 * CT_W8_BLK bytes per block (8 vectors of u8 codes, vector k lane i = codes
 * 4k..4k+3 of row i; Q8_0 stored as q + 128; then d[8], m[8] floats). */
#define CT_XR8_BLK 40
#define CT_W8_BLK 320
void ct__quantize_x_r8(const float *x, ct_dtype wt, void *out, int n);
void ct__quantize_x_r8_ref(const float *x, ct_dtype wt, void *out, int n);
void ct__repack_w8(const ct_mat *W, int r, int nr, void *out);
void ct__repack_w8_ref(const ct_mat *W, int r, int nr, void *out);
/* out[ldo*t + i] (i < 8, all 8 written) = repacked row i . x row t over nb
 * blocks, t < tt; x row t at xq + t * xstride; wt = W's dtype. */
void ct__dot_r8_tile(const void *wp, int nb, ct_dtype wt, const void *xq, size_t xstride, int tt, float *out,
                     size_t ldo);
void ct__dot_r8_tile_ref(const void *wp, int nb, ct_dtype wt, const void *xq, size_t xstride, int tt, float *out,
                         size_t ldo);

/* ---- driver knobs (matmul.c), for tests and the benchmark --------------- */
enum {
    CT_MM_AUTO = 0,   /* pick by dtype, W->act_q8 and T (default) */
    CT_MM_GEMV_Q8,    /* row dots; Q types against 8-bit-quantized x (others: GEMV_F32) */
    CT_MM_GEMV_F32,   /* row dots against f32 x; Q types dequantized in registers */
    CT_MM_GEMM,       /* dequantize tiles + register-blocked micro-kernel */
    CT_MM_GEMM_Q8     /* Q4_0/Q4_1: integer tiles against 8-bit x (others: GEMM) */
};
/* Force a path for every later ct__matmul call (process-wide, not thread-safe;
 * tests and benchmarks only; a forced path ignores W->act_q8). Returns the
 * previous setting. */
int ct__matmul_force_path(int path);
/* The path AUTO takes (or the forced one, as it applies to W's dtype). */
int ct__matmul_path(const ct_mat *W, int T);
/* AUTO on f32 x (F32/F16/BF16, and Q types without act_q8): row dots up to
 * CT_MM_GEMV_MAX_T (Q types: CT_MM_QF_GEMV_MAX_T), f32 tiles beyond.
 * AUTO, Q types with act_q8: 8-bit row dots up to CT_MM_Q8_GEMV_MAX_T, Q4
 * integer tiles for CT_MM_Q4_TILE_MIN_T..CT_MM_Q4_TILE_MAX_T, else as on f32
 * x (where the f32 kernels are as fast, they are taken: exact for free).
 * Measured crossovers (AMD Zen 4, 2 threads, SmolLM2 shapes): docs/kernels.md. */
#define CT_MM_GEMV_MAX_T 8
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define CT_MM_QF_GEMV_MAX_T 10
#else
#define CT_MM_QF_GEMV_MAX_T 8 /* the AVX2 kernels: more work per row of x */
#endif
#define CT_MM_Q8_GEMV_MAX_T 1
#define CT_MM_Q4_TILE_MIN_T 4
#if defined(__AVX512VNNI__) && defined(__AVX512VL__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
/* vpdpbusd tiles (matmul_q4.c): faster than the f32 tiles for every T >= 4,
 * and they take Q8_0 too */
#define CT_MM_Q8T_VNNI 1
#define CT_MM_Q4_TILE_MAX_T (1 << 30)
/* from this T on, CT_MM_GEMM_Q8 runs the 8-interleaved-rows kernel */
#ifndef CT_MM_R8_MIN_T
#define CT_MM_R8_MIN_T 8
#endif
#else
#define CT_MM_Q8T_VNNI 0
#define CT_MM_Q4_TILE_MAX_T 31
#define CT_MM_R8_MIN_T (1 << 30) /* never */
#endif
/* dtypes the integer tiles (CT_MM_GEMM_Q8) take: Q4_0/Q4_1, and Q8_0 with VNNI */
static inline int ct__mm_q8t_dtype(ct_dtype t) {
    return t == CT_DT_Q4_0 || t == CT_DT_Q4_1 || (CT_MM_Q8T_VNNI && t == CT_DT_Q8_0);
}


#endif
