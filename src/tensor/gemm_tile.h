/* src/tensor/gemm_tile.h — the parts the f32 (gemm.c) and bf16 (gemm_bf16.c)
 * AVX-512 micro-kernels share: an 8 x 32 tile of f32 accumulators in 16 zmm,
 * C's rows prefetched before the k loop, and the store
 * C = alpha * acc + beta * C (beta == 0 does not read C), masked to the
 * tile's mr rows and nr columns. Inlined into each kernel, so the
 * accumulators stay in registers. AVX-512 builds only. */
#ifndef CT_TENSOR_GEMM_TILE_H
#define CT_TENSOR_GEMM_TILE_H
#include <stddef.h>
#include <immintrin.h>

enum { CT_TILE_MR = 8 };

static inline __attribute__((always_inline)) void ct__tile_prefetch_c(const float *C, size_t ldc, int mr) {
    /* C's lines (often in L3 or DRAM: the update would wait on them) */
    for (int r = 0; r < mr; r++) {
        _mm_prefetch((const char *)(C + r * ldc), _MM_HINT_T1);
        _mm_prefetch((const char *)(C + r * ldc + 16), _MM_HINT_T1);
    }
}

static inline __attribute__((always_inline)) void ct__tile_store(__m512 acc[CT_TILE_MR][2], float *C, size_t ldc,
                                                                 int mr, int nr, float alpha, float beta) {
    const __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
    const __mmask16 m1 = nr >= 32 ? 0xffff : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
    for (int r = 0; r < CT_TILE_MR; r++, C += ldc) {
        if (r >= mr) break;
        if (beta == 0.0f) {
            _mm512_mask_storeu_ps(C, m0, _mm512_mul_ps(va, acc[r][0]));
            _mm512_mask_storeu_ps(C + 16, m1, _mm512_mul_ps(va, acc[r][1]));
        } else {
            __m512 o0 = _mm512_maskz_loadu_ps(m0, C), o1 = _mm512_maskz_loadu_ps(m1, C + 16);
            _mm512_mask_storeu_ps(C, m0, _mm512_fmadd_ps(va, acc[r][0], _mm512_mul_ps(vb, o0)));
            _mm512_mask_storeu_ps(C + 16, m1, _mm512_fmadd_ps(va, acc[r][1], _mm512_mul_ps(vb, o1)));
        }
    }
}

#endif
