/* src/tensor/nf4.h — 4-bit NormalFloat (NF4) / FP4 block quantization,
 * bit-compatible with bitsandbytes (0.50.x, its CPU path), with double
 * quantization of the block scales; plus a plain symmetric int4 quantizer
 * kept only for error comparisons.
 *
 * Layout (what bitsandbytes' quantize_4bit produces and Hugging Face
 * serializes for a 4-bit Linear, see docs/qlora.md):
 *   - the weight (out, in) is flattened row-major into n = out*in elements and
 *     cut into blocks of `blocksize` (64 for QLoRA) consecutive elements; the
 *     last block may be short;
 *   - absmax[b] = max |x| over block b (f32; the short last block stores
 *     max(absmax, 1e-38f));
 *   - code[i] = nearest quant_map entry to x[i] / absmax (clamped to [-1, 1]),
 *     decided by bitsandbytes' midpoints (m_j = (c_j + c_j+1) / 2 in f32 over
 *     the sorted table; x == m_j goes to the lower entry);
 *   - packed[(n+1)/2]: element 2k in the HIGH nibble of byte k, element 2k+1
 *     in the low nibble (an odd n pads the last low nibble with the code of
 *     0.0: 7 for NF4, 0 for FP4).
 * Double quantization (compress_statistics=True): offset = torch's f32 mean
 * of absmax; absmax - offset is quantized to 8-bit codes with the signed
 * dynamic map in blocks of 256 (nested_absmax per block); dequantization is
 *   absmax[b] = (dynamic_map[q[b]] * nested_absmax[b/256]) + offset
 * (two f32 roundings), and x = quant_map[code] * absmax.
 *
 * Everything here is scalar reference code except ct__nf4_dequant_row (the
 * AVX-512 row dequantizer, bit-identical to ct__nf4_dequant_row_ref).
 * Leaves out: the fused dequant+matmul kernels, reading/writing checkpoints
 * (only the quant-state JSON blob is produced here), f16/bf16 inputs (callers
 * convert to f32 first, exactly as bitsandbytes does with A.float()).
 */
#ifndef CT_TENSOR_NF4_H
#define CT_TENSOR_NF4_H
#include <stddef.h>
#include <stdint.h>

#define CT_NF4_BLOCK 64          /* bitsandbytes' default blocksize for QLoRA */
#define CT_NF4_NESTED_BLOCK 256  /* blocksize of the double quantization */

typedef enum { CT_Q4_NF4 = 0, CT_Q4_FP4 = 1 } ct_q4_type;

/* bitsandbytes' 16-entry tables (get_4bit_type), index = stored code.
 * NF4 is sorted ascending; FP4 is in bit-pattern order (sign bit = 8). */
extern const float ct__nf4_map[16];
extern const float ct__fp4_map[16];

/* create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
 * 256 ascending f32 values in [-0.99297, 1], rebuilt exactly the way
 * bitsandbytes builds it (torch.linspace in f32 with its fused steps,
 * midpoints, decimal exponents). */
void ct__dynamic_map_signed(float map[256]);

/* torch.sum / torch.mean of a contiguous f32 vector on the CPU, bit for bit
 * (ATen's cascade sum with 8-wide vectors, 4-way ILP, 4 levels; above 32768
 * elements torch splits the sum across its threads, so the result depends on
 * torch_threads = torch.get_num_threads() of the run being matched; 1 = serial). */
float ct__torch_sum_f32(const float *x, int64_t n, int torch_threads);
float ct__torch_mean_f32(const float *x, int64_t n, int torch_threads);

/* Number of blocks for n elements. */
static inline int64_t ct__q4_nblocks(int64_t n, int64_t blocksize) { return (n + blocksize - 1) / blocksize; }

/* bitsandbytes quantize_4bit (CPU/default backend), blocksize > 0:
 * x (n,) -> packed ((n+1)/2,), absmax (ceil(n/blocksize),). */
void ct__quantize_4bit_ref(const float *x, int64_t n, int64_t blocksize, ct_q4_type t,
                           uint8_t *packed, float *absmax);

/* The same, bit-identical, with AVX-512 for blocksize 64 (the _ref elsewhere
 * and for the short last block). */
void ct__quantize_4bit(const float *x, int64_t n, int64_t blocksize, ct_q4_type t, uint8_t *packed,
                       float *absmax);

/* bitsandbytes quantize_blockwise with an explicit 256-entry ascending code
 * (its C CPU kernel, 0.50.2): per block absmax = max |x|, v = x / absmax,
 * g = rint((v + 1) * 32767.5) / 32767.5 - 1 in double, q = the nearest code
 * to g (the lower one on an exact tie).
 * x (n,) -> q (n,), absmax (ceil(n/blocksize),). */
void ct__quantize_blockwise8_ref(const float *x, int64_t n, int64_t blocksize, const float code[256],
                                 uint8_t *q, float *absmax);

/* Double quantization of nb block scales (compress_statistics=True):
 * work (nb,) scratch; qabsmax (nb,), nested_absmax (ceil(nb/256),), *offset. */
void ct__q4_double_quant(const float *absmax, int64_t nb, int torch_threads, float *work,
                         uint8_t *qabsmax, float *nested_absmax, float *offset);

/* Inverse: absmax (nb,) = map[q] * nested_absmax[b/256] + offset. */
void ct__q4_double_dequant(const uint8_t *qabsmax, int64_t nb, const float *nested_absmax,
                           const float map[256], float offset, float *absmax);

/* Dequantize n elements: y[i] = table[code_i] * absmax[i / blocksize]. */
void ct__dequantize_4bit_ref(const uint8_t *packed, const float *absmax, int64_t n, int64_t blocksize,
                             ct_q4_type t, float *y);

/* One row of an NF4 matrix with blocksize 64 whose first element starts a
 * block (in % 64 == 0 for whole rows, or any block-aligned span):
 * packed (n/2,) bytes of the row, absmax (ceil(n/64),), n even -> y (n,).
 * The AVX-512 version (scalar fallback without it) equals the _ref bit for bit. */
void ct__nf4_dequant_row_ref(const uint8_t *packed, const float *absmax, float *y, int64_t n);
void ct__nf4_dequant_row(const uint8_t *packed, const float *absmax, float *y, int64_t n);

/* Dot products of one such NF4 row (block-aligned start, n % 64 == 0 for
 * the vector path) with T <= 4 rows of x (stride ldx floats):
 * out[t] = sum_j nf4[code_j] * absmax[j / 64] * x[t][j], f32 sums (AVX-512
 * with a scalar fallback; the AVX-512 path scales each block's sum, so
 * neither is bit-identical to dequantize-then-dot). */
void ct__nf4_dot_row(const uint8_t *packed, const float *absmax, int64_t n, const float *x, size_t ldx, int T,
                     float *out);

/* Plain symmetric int4 with absmax per block (for comparisons only):
 * q = clamp(round(x / absmax * 7), -7, 7) stored +8 as a nibble, same packing;
 * dequant x = (q - 8) / 7 * absmax. */
void ct__quantize_int4_ref(const float *x, int64_t n, int64_t blocksize, uint8_t *packed, float *absmax);
void ct__dequantize_int4_ref(const uint8_t *packed, const float *absmax, int64_t n, int64_t blocksize, float *y);

/* The JSON blob Hugging Face stores as weight.quant_state.bitsandbytes__<type>
 * (a uint8 tensor), byte for byte as bitsandbytes' json.dumps writes it:
 * {"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [o, i],
 *  "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": <repr>}
 * (the nested_* keys only when nested). dtype is the original weight dtype
 * name ("float32", "bfloat16", "float16"). Returns the length written
 * (without the NUL), or -1 if cap is too small. */
int ct__bnb4_state_json(char *buf, size_t cap, ct_q4_type t, int64_t blocksize, const char *dtype,
                        const int64_t *shape, int ndim, int nested, float offset);

/* Python's repr() of the double value of f (shortest round-trip digits,
 * "0.5", "1e-05", "2.0"). Returns the length, -1 if cap is too small. */
int ct__py_float_repr(char *buf, size_t cap, double d);
#endif
