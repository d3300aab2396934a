/* src/tensor/quant.h — GGML block-quantized layouts (Q8_0, Q4_0, Q4_1) and
 * their scalar reference conversions.
 *
 * Blocks hold CT_QK = 32 consecutive elements of a row. Within a Q4 block,
 * element j (0..15) is the low nibble of qs[j] and element j+16 its high nibble.
 *
 * The _ref functions are the bit-exact definitions that the vectorized
 * kernels in src/tensor/ are tested against. Their rounding matches gguf-py
 * (gguf.quants) and ggml's quantize_row_*_ref (the two agree): products and
 * sums are rounded separately, never fused into one FMA.
 */
#ifndef CT_TENSOR_QUANT_H
#define CT_TENSOR_QUANT_H
#include <stddef.h>
#include <stdint.h>
#include "ctune/dtype.h"

#define CT_QK 32

/* x = d * q */
typedef struct {
    uint16_t d;         /* f16 scale */
    int8_t q[CT_QK];
} ct_block_q8_0;

/* x = d * (nibble - 8) */
typedef struct {
    uint16_t d;         /* f16 scale */
    uint8_t qs[CT_QK / 2];
} ct_block_q4_0;

/* x = d * nibble + m */
typedef struct {
    uint16_t d;         /* f16 scale */
    uint16_t m;         /* f16 minimum */
    uint8_t qs[CT_QK / 2];
} ct_block_q4_1;

_Static_assert(sizeof(ct_block_q8_0) == 34, "Q8_0 block must be 34 bytes");
_Static_assert(sizeof(ct_block_q4_0) == 18, "Q4_0 block must be 18 bytes");
_Static_assert(sizeof(ct_block_q4_1) == 20, "Q4_1 block must be 20 bytes");

/* Convert n elements of type dt at src to F32 in dst (n,). Handles F32, F16,
 * BF16, Q8_0, Q4_0, Q4_1 (n a multiple of CT_QK for the Q types; src then
 * holds n/32 blocks) and the integer/F64 types (converted by value).
 * src needs no alignment (mapped GGUF data is only 32-byte aligned per tensor,
 * and Q blocks are 18/20/34 bytes). Caller guarantees the sizes. */
void ct__dequant_row(ct_dtype dt, const void *src, float *dst, int64_t n);

/* Quantize n floats (n % 32 == 0) into n/32 blocks at dst, with ggml's
 * reference rounding:
 *   Q8_0: d = amax/127, q = roundf(x/d) (half away from zero);
 *   Q4_0: d = v/-8 with v the element of largest |x| (first one on ties),
 *         q = min(15, trunc(x/d + 8.5));
 *   Q4_1: d = (max-min)/15, m = min, q = min(15, trunc((x-min)/d + 0.5)).
 * "x/d" is x * (1/d) in float, as the references compute it. */
void ct__quantize_row_q8_0_ref(const float *x, ct_block_q8_0 *dst, int64_t n);
void ct__quantize_row_q4_0_ref(const float *x, ct_block_q4_0 *dst, int64_t n);
void ct__quantize_row_q4_1_ref(const float *x, ct_block_q4_1 *dst, int64_t n);

/* Quantize by dtype (Q8_0/Q4_0/Q4_1, or F32/F16/BF16 as plain conversion)
 * into dst of ct__dtype_nbytes(dt, n) bytes. Returns 0, or -1 for a type it
 * cannot produce or n not a multiple of the block. */
int ct__quantize_row(ct_dtype dt, const float *x, void *dst, int64_t n);

#endif
