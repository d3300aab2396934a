/* ctune/dtype.h — element types of stored tensors.
 *
 * Block-quantized types follow GGML's layouts (block of 32 weights):
 *   Q8_0: { f16 d; int8 q[32]; }            x = d * q
 *   Q4_0: { f16 d; u8 qs[16]; }             x = d * (nibble - 8)
 *   Q4_1: { f16 d; f16 m; u8 qs[16]; }      x = d * nibble + m
 * with element j in the low nibble of qs[j] and element j+16 in its high nibble.
 */
#ifndef CTUNE_DTYPE_H
#define CTUNE_DTYPE_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CT_DT_F32 = 0,
    CT_DT_F16,
    CT_DT_BF16,
    CT_DT_Q8_0,
    CT_DT_Q4_0,
    CT_DT_Q4_1,
    CT_DT_I8,
    CT_DT_U8,
    CT_DT_I16,
    CT_DT_I32,
    CT_DT_I64,
    CT_DT_F64,
    CT_DT_NF4,  /* bitsandbytes 4-bit (NF4/FP4) in blocks of 64 over the flattened matrix;
                   a ct_mat of this type describes its arrays in ct_mat.q4 */
    CT_DT_COUNT
} ct_dtype;

/* "F32", "Q4_1", ... */
const char *ct_dtype_name(ct_dtype t);
/* Elements per block (1 for plain types, 32 for Q*_*). */
int ct_dtype_block(ct_dtype t);
/* Bytes per block. */
size_t ct_dtype_block_bytes(ct_dtype t);

#ifdef __cplusplus
}
#endif
#endif
