/* src/formats/tstore.c — the tensor store of src/formats/tstore.h: a growable
 * array of named tensor references plus the mapped files and buffers they
 * point into, all released together by ct__tstore_free.
 *
 * Ownership: ct__tstore_add_file and ct__tstore_own take ownership only when
 * they succeed (index >= 0); on -1 the caller still owns and must release.
 * After ct__tstore_add_file succeeds the caller must not close its ct_mfile
 * copy (the store's copy shares the mapping).
 * Leaves out: name lookup faster than a linear scan (stores hold a few hundred
 * tensors; the model builder looks each up once), removal of single tensors.
 */
#include "formats/tstore.h"

#include <stdlib.h>
#include <string.h>

void ct__tstore_init(ct_tstore *s) { memset(s, 0, sizeof *s); }

void ct__tstore_free(ct_tstore *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) free(s->t[i].name);
    free(s->t);
    for (size_t i = 0; i < s->nfiles; i++) ct__mfile_close(&s->files[i]);
    free(s->files);
    for (size_t i = 0; i < s->nowned; i++) free(s->owned[i]);
    free(s->owned);
    memset(s, 0, sizeof *s);
}

ct_status ct__tstore_add(ct_tstore *s, const char *name, ct_dtype dt, int ndim, const int64_t *shape,
                         const void *data, size_t nbytes, int file) {
    if (!name) return ct__err(CT_ERR_ARG, "tensor store: NULL tensor name");
    if (ndim < 0 || ndim > CT_MAX_DIMS)
        return ct__err(CT_ERR_UNSUPPORTED, "tensor '%s': %d dimensions (at most %d are supported)", name, ndim,
                       CT_MAX_DIMS);
    if ((int)dt < 0 || dt >= CT_DT_COUNT) return ct__err(CT_ERR_ARG, "tensor '%s': invalid dtype %d", name, (int)dt);
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64, bytes;
        if (ct__mul_ovf(ncap, sizeof(ct_tref), &bytes)) return ct__err(CT_ERR_NOMEM, "tensor store: too many tensors");
        ct_tref *nt = realloc(s->t, bytes);
        if (!nt) return ct__err(CT_ERR_NOMEM, "tensor store: out of memory adding '%s'", name);
        s->t = nt;
        s->cap = ncap;
    }
    ct_tref *t = &s->t[s->n];
    memset(t, 0, sizeof *t);
    t->name = ct__strdup(name);
    if (!t->name) return ct__err(CT_ERR_NOMEM, "tensor store: out of memory adding '%s'", name);
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = data;
    t->nbytes = nbytes;
    t->file = file;
    s->n++;
    return CT_OK;
}

int ct__tstore_add_file(ct_tstore *s, ct_mfile *f) {
    size_t bytes;
    if (ct__mul_ovf(s->nfiles + 1, sizeof(ct_mfile), &bytes)) return -1;
    ct_mfile *nf = realloc(s->files, bytes);
    if (!nf) return -1;
    s->files = nf;
    s->files[s->nfiles] = *f;
    return (int)s->nfiles++;
}

int ct__tstore_own(ct_tstore *s, void *buf) {
    size_t bytes;
    if (ct__mul_ovf(s->nowned + 1, sizeof(void *), &bytes)) return -1;
    void **no = realloc(s->owned, bytes);
    if (!no) return -1;
    s->owned = no;
    s->owned[s->nowned] = buf;
    return (int)s->nowned++;
}

const ct_tref *ct__tstore_find(const ct_tstore *s, const char *name) {
    if (!s || !name) return NULL;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->t[i].name, name) == 0) return &s->t[i];
    return NULL;
}

int64_t ct__tref_numel(const ct_tref *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0 || __builtin_mul_overflow(n, t->shape[i], &n)) return 0;
    }
    return n;
}

size_t ct__dtype_nbytes(ct_dtype dt, int64_t numel) {
    if (numel < 0 || (int)dt < 0 || dt >= CT_DT_COUNT) return 0;
    int64_t block = ct_dtype_block(dt);
    if (block <= 0 || numel % block != 0) return 0;
    size_t out;
    if (ct__mul_ovf((size_t)(numel / block), ct_dtype_block_bytes(dt), &out)) return 0;
    return out;
}
