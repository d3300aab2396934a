/* src/formats/gguf.h — GGUF v3 reader (mmap, bounds-checked): metadata
 * key/values, tensor infos, aligned data section. */
#ifndef CT_FORMATS_GGUF_H
#define CT_FORMATS_GGUF_H
#include <stddef.h>
#include <stdint.h>
#include "formats/tstore.h"

/* GGUF metadata value types (the on-disk ids). */
typedef enum {
    CT_GGUF_U8 = 0, CT_GGUF_I8 = 1, CT_GGUF_U16 = 2, CT_GGUF_I16 = 3, CT_GGUF_U32 = 4,
    CT_GGUF_I32 = 5, CT_GGUF_F32 = 6, CT_GGUF_BOOL = 7, CT_GGUF_STRING = 8, CT_GGUF_ARRAY = 9,
    CT_GGUF_U64 = 10, CT_GGUF_I64 = 11, CT_GGUF_F64 = 12
} ct_gguf_type;

typedef struct ct_gguf ct_gguf; /* struct ct_gguf */

/* Open and validate path (header, every metadata entry, tensor infos and their
 * data ranges). Tensors are added to *ts when ts is non-NULL (the store takes
 * the mapping); pass NULL to read metadata only (tokenizer-only GGUF files).
 * Metadata strings point into the mapping: with ts, close g before freeing ts.
 * On failure nothing is added to ts and *out is NULL. */
ct_status ct__gguf_open(const char *path, ct_gguf **out, ct_tstore *ts);
/* The same over a caller-owned buffer (fuzzing, tests): name is used in
 * messages; tensors added to ts point into data, which must outlive ts and g. */
ct_status ct__gguf_open_mem(const void *data, size_t size, const char *name, ct_gguf **out, ct_tstore *ts);
void ct__gguf_close(ct_gguf *g);
const char *ct__gguf_path(const ct_gguf *g);

/* Enumerate metadata in file order: key i (not NUL-terminated) and its type.
 * Returns 0 when i >= ct__gguf_n_kv(g). */
size_t ct__gguf_n_kv(const ct_gguf *g);
int ct__gguf_key_at(const ct_gguf *g, size_t i, const char **key, size_t *len, ct_gguf_type *type);

/* Key lookup: returns 1 and the value if present with a compatible type. */
int ct__gguf_has(const ct_gguf *g, const char *key);
int ct__gguf_get_u32(const ct_gguf *g, const char *key, uint32_t *out); /* any int type in range */
int ct__gguf_get_f32(const ct_gguf *g, const char *key, float *out);    /* f32/f64 */
int ct__gguf_get_bool(const ct_gguf *g, const char *key, int *out);
/* String value (not NUL-terminated in the file: pointer+length). */
int ct__gguf_get_str(const ct_gguf *g, const char *key, const char **s, size_t *len);
/* Arrays: element type and count; then element access. */
int ct__gguf_get_arr(const ct_gguf *g, const char *key, ct_gguf_type *elem, size_t *n);
int ct__gguf_arr_str(const ct_gguf *g, const char *key, size_t i, const char **s, size_t *len);
int ct__gguf_arr_f32(const ct_gguf *g, const char *key, size_t i, float *out);
int ct__gguf_arr_i32(const ct_gguf *g, const char *key, size_t i, int32_t *out);

#endif
