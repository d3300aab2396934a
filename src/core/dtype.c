/* src/core/dtype.c — names and block geometry of the element types in
 * include/ctune/dtype.h. Quantized types use GGML's 32-element blocks; the
 * packed block structs themselves live in src/tensor/quant.h. Leaves out any
 * conversion (see src/core/internal.h for f16/bf16, src/tensor/quant.c for
 * block dequantization). */
#include "ctune/dtype.h"

/* One row per dtype: name, elements per block, bytes per block. Indexed by
 * ct_dtype, so the order must follow the enum (checked below). */
typedef struct {
    const char *name;
    int block;
    size_t bytes;
} dtype_info;

static const dtype_info k_info[CT_DT_COUNT] = {
    [CT_DT_F32] = {"F32", 1, 4},
    [CT_DT_F16] = {"F16", 1, 2},
    [CT_DT_BF16] = {"BF16", 1, 2},
    [CT_DT_Q8_0] = {"Q8_0", 32, 2 + 32},     /* f16 d; int8 q[32] */
    [CT_DT_Q4_0] = {"Q4_0", 32, 2 + 16},     /* f16 d; u8 qs[16] */
    [CT_DT_Q4_1] = {"Q4_1", 32, 2 + 2 + 16}, /* f16 d, m; u8 qs[16] */
    [CT_DT_I8] = {"I8", 1, 1},
    [CT_DT_U8] = {"U8", 1, 1},
    [CT_DT_I16] = {"I16", 1, 2},
    [CT_DT_I32] = {"I32", 1, 4},
    [CT_DT_I64] = {"I64", 1, 8},
    [CT_DT_F64] = {"F64", 1, 8},
    [CT_DT_NF4] = {"NF4", 64, 32},           /* codes only: scales live beside them (ct_nf4_mat) */
};

_Static_assert(CT_DT_COUNT == 13, "update k_info when adding a dtype");

static int valid(ct_dtype t) { return (int)t >= 0 && t < CT_DT_COUNT; }

const char *ct_dtype_name(ct_dtype t) { return valid(t) ? k_info[t].name : "?"; }

/* An invalid type has block 1 (safe to divide by) and 0 bytes, so any size
 * computed from it is 0, which callers treat as invalid. */
int ct_dtype_block(ct_dtype t) { return valid(t) ? k_info[t].block : 1; }

size_t ct_dtype_block_bytes(ct_dtype t) { return valid(t) ? k_info[t].bytes : 0; }
