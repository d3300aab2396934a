/* src/core/internal.h — helpers shared by every file of libctune (ct__ prefix).
 * Error reporting, checked allocation and size arithmetic, memory-mapped files,
 * timing. Not part of the public API. */
#ifndef CT_CORE_INTERNAL_H
#define CT_CORE_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include "ctune/status.h"

#if defined(__GNUC__)
#define CT__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CT__PRINTF(a, b)
#endif

/* Record a detailed message for ct_errmsg() and return s. Usage:
 *   return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': ...", path, name); */
ct_status ct__err(ct_status s, const char *fmt, ...) CT__PRINTF(2, 3);
/* Prepend context to the current message: "ctx: <old message>". Returns s. */
ct_status ct__err_prefix(ct_status s, const char *fmt, ...) CT__PRINTF(2, 3);
void ct__log(int level, const char *fmt, ...) CT__PRINTF(2, 3);

/* Allocation: NULL on failure (callers return CT_ERR_NOMEM). */
void *ct__malloc(size_t n);
void *ct__calloc(size_t n, size_t size);
void *ct__realloc(void *p, size_t n);
char *ct__strdup(const char *s);
char *ct__strndup(const char *s, size_t n);
/* Large buffer, 64-byte aligned, advised for transparent huge pages; free with ct__free_big. */
void *ct__alloc_big(size_t n);
void ct__free_big(void *p, size_t n);

/* Overflow-checked size arithmetic: return 1 on overflow. */
static inline int ct__mul_ovf(size_t a, size_t b, size_t *out) { return __builtin_mul_overflow(a, b, out); }
static inline int ct__add_ovf(size_t a, size_t b, size_t *out) { return __builtin_add_overflow(a, b, out); }

/* A read-only memory-mapped file. */
typedef struct {
    const uint8_t *data; /* NULL for an empty file */
    size_t size;
    char *path;          /* owned copy, for messages */
} ct_mfile;
/* Map path read-only. Errors name the path (and errno text). */
ct_status ct__mfile_open(ct_mfile *f, const char *path);
void ct__mfile_close(ct_mfile *f);
/* Give back the resident pages of a mapping whose contents were copied
 * elsewhere (RSS); reading it again later is still correct. */
void ct__mfile_drop_pages(const ct_mfile *f);
/* The same for the pages holding [p, p + n) when that lies in f's mapping
 * (a matrix converted to another type); returns 1 if it did, 0 if p is not
 * in f (owned memory is never touched). */
int ct__mfile_drop_range(const ct_mfile *f, const void *p, size_t n);
/* Read a whole (small) file into a NUL-terminated malloc'd buffer. */
ct_status ct__read_file(const char *path, char **out, size_t *len);
int ct__file_exists(const char *path);
int ct__is_dir(const char *path);
/* Remove a directory tree or a file (0 when gone). */
int ct__rmtree(const char *path);
/* Join dir and name with '/'; malloc'd, NULL on OOM. */
char *ct__path_join(const char *dir, const char *name);

/* Monotonic seconds. */
double ct__now(void);

/* fp16/bf16 <-> fp32 (scalar, exact round-to-nearest-even). */
float ct__f16_to_f32(uint16_t h);
uint16_t ct__f32_to_f16(float f);
static inline float ct__bf16_to_f32(uint16_t b) {
    union { uint32_t u; float f; } v; v.u = (uint32_t)b << 16; return v.f;
}
uint16_t ct__f32_to_bf16(float f);

#endif
