/* src/formats/tstore.h — a set of named tensors pointing into mapped files.
 * Every loader (safetensors, GGUF, llama2.c) produces one; the model builder
 * takes weights from it by name. Shapes are in PyTorch order (outermost first):
 * a Linear weight is (out, in). GGUF's ne[] (innermost first) is reversed. */
#ifndef CT_FORMATS_TSTORE_H
#define CT_FORMATS_TSTORE_H
#include <stddef.h>
#include <stdint.h>
#include "core/internal.h"
#include "ctune/dtype.h"

#define CT_MAX_DIMS 4

typedef struct {
    char *name;
    ct_dtype dtype;
    int ndim;
    int64_t shape[CT_MAX_DIMS];
    const void *data; /* into a mapped file (or an owned buffer) */
    size_t nbytes;
    int file;         /* index into files[] (for messages), -1 if owned */
} ct_tref;

typedef struct {
    ct_tref *t;
    size_t n, cap;
    ct_mfile *files;  /* mapped files kept alive by the store */
    size_t nfiles;
    void **owned;     /* buffers to free with the store */
    size_t nowned;
} ct_tstore;

void ct__tstore_init(ct_tstore *s);
void ct__tstore_free(ct_tstore *s);
/* Append a tensor (name copied). */
ct_status ct__tstore_add(ct_tstore *s, const char *name, ct_dtype dt, int ndim, const int64_t *shape,
                         const void *data, size_t nbytes, int file);
/* Take ownership of a mapped file / malloc'd buffer; returns its index or -1 on OOM. */
int ct__tstore_add_file(ct_tstore *s, ct_mfile *f);
int ct__tstore_own(ct_tstore *s, void *buf);
const ct_tref *ct__tstore_find(const ct_tstore *s, const char *name);
/* Number of elements (product of shape); 0 on overflow. */
int64_t ct__tref_numel(const ct_tref *t);
/* Bytes needed for numel elements of dt (blocked types: numel % block must be 0); 0 if invalid. */
size_t ct__dtype_nbytes(ct_dtype dt, int64_t numel);

#endif
