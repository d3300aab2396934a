/* src/formats/safetensors.c — reader for Hugging Face safetensors files:
 * u64 little-endian header length N, N bytes of JSON, then the data buffer.
 *
 * Validated before anything is added to the store (so a failure leaves the
 * store as it was): file long enough for the length field; N <= 100 MB (the
 * reference library's limit) and within the file; the header is strict JSON
 * (src/formats/json.c), an object, without duplicate keys; "__metadata__", if
 * present, maps strings to strings (its contents are ignored); every tensor has
 * a known dtype string, a shape of at most CT_MAX_DIMS non-negative integers
 * whose byte size (checked for overflow) equals end - begin, and data_offsets
 * [begin, end) inside the data buffer; sorted by begin, the tensors tile the
 * buffer exactly (no gap, no overlap, nothing left over), as the reference
 * library requires. Tensor names must not contain NUL bytes.
 *
 * Statuses: CT_ERR_FORMAT for corrupt files; CT_ERR_UNSUPPORTED for dtypes the
 * format defines but ctune does not compute with (BOOL, U16/U32/U64, the F8,
 * F6, F4 and complex types) and for more than CT_MAX_DIMS dimensions.
 * Tensors point into the mapping; one whose address is not a multiple of its
 * element size (only possible when a writer did not pad the header to 8
 * bytes) is copied into a buffer owned by the store.
 * Leaves out: writing safetensors (the trainer's checkpoint code does that),
 * big-endian hosts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "formats/json.h"
#include "formats/loaders.h"
#include "formats/tstore.h"

#define ST_MAX_HEADER 100000000ull  /* bytes; the reference reader's limit */
#define ST_MAX_INT 9007199254740992.0 /* 2^53: larger JSON integers are not exact */

typedef struct {
    const char *name;
    ct_dtype dt;
    int ndim;
    int64_t shape[CT_MAX_DIMS];
    uint64_t begin, end;
} st_entry;

static const struct { const char *s; ct_dtype dt; } k_dtypes[] = {
    {"F32", CT_DT_F32}, {"F16", CT_DT_F16}, {"BF16", CT_DT_BF16}, {"I8", CT_DT_I8},   {"U8", CT_DT_U8},
    {"I16", CT_DT_I16}, {"I32", CT_DT_I32}, {"I64", CT_DT_I64},   {"F64", CT_DT_F64},
};
/* Defined by the format (safetensors' Dtype enum) but not computed with here. */
static const char *const k_unsupported[] = {"BOOL",    "U16",     "U32",     "U64",     "F8_E4M3", "F8_E5M2",
                                            "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4",      "C64",     "C128"};

/* "[2, 3]" into buf. */
static const char *fmt_shape(char *buf, size_t cap, const int64_t *shape, int ndim) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

/* A JSON number that is an exact non-negative integer (<= 2^53). */
static int json_uint(const ct_json *v, uint64_t *out) {
    if (!v || v->type != CT_JSON_NUM) return 0;
    double d = v->u.num;
    if (!(d >= 0 && d <= ST_MAX_INT) || d != (double)(uint64_t)d) return 0;
    *out = (uint64_t)d;
    return 1;
}

static ct_status check_metadata(const char *path, const ct_json *m) {
    if (m->type != CT_JSON_OBJ)
        return ct__err(CT_ERR_FORMAT, "%s: __metadata__ is not an object (must map strings to strings)", path);
    for (size_t i = 0; i < m->u.obj.n; i++)
        if (m->u.obj.vals[i].type != CT_JSON_STR)
            return ct__err(CT_ERR_FORMAT, "%s: __metadata__ '%s' is not a string (must map strings to strings)", path,
                           m->u.obj.keys[i]);
    return CT_OK;
}

/* Validate one header entry (everything but its place in the tiling). */
static ct_status parse_entry(const char *path, const char *name, const ct_json *v, uint64_t buflen, st_entry *e) {
    char sb[128];
    e->name = name;
    if (v->type != CT_JSON_OBJ)
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': header entry is not an object", path, name);
    const char *dts = ct__json_get_str(v, "dtype");
    if (!dts) return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': missing or non-string \"dtype\"", path, name);
    int found = 0;
    for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0] && !found; i++)
        if (strcmp(dts, k_dtypes[i].s) == 0) { e->dt = k_dtypes[i].dt; found = 1; }
    if (!found) {
        for (size_t i = 0; i < sizeof k_unsupported / sizeof k_unsupported[0]; i++)
            if (strcmp(dts, k_unsupported[i]) == 0)
                return ct__err(CT_ERR_UNSUPPORTED,
                               "%s: tensor '%s': dtype %s is not supported (supported: F32, F16, BF16, F64, I8, U8, "
                               "I16, I32, I64); convert the checkpoint to float32/float16/bfloat16",
                               path, name, dts);
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%.32s'", path, name, dts);
    }
    const ct_json *sh = ct__json_get(v, "shape");
    if (!sh || sh->type != CT_JSON_ARR)
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': missing or non-array \"shape\"", path, name);
    if (sh->u.arr.n > CT_MAX_DIMS)
        return ct__err(CT_ERR_UNSUPPORTED, "%s: tensor '%s': %zu dimensions (at most %d are supported)", path, name,
                       sh->u.arr.n, CT_MAX_DIMS);
    e->ndim = (int)sh->u.arr.n;
    uint64_t numel = 1, bytes;
    int ovf = 0;
    for (int i = 0; i < e->ndim; i++) {
        uint64_t d;
        if (!json_uint(&sh->u.arr.items[i], &d))
            return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer", path, name, i);
        e->shape[i] = (int64_t)d;
        ovf |= __builtin_mul_overflow(numel, d, &numel);
    }
    ovf |= __builtin_mul_overflow(numel, (uint64_t)ct_dtype_block_bytes(e->dt), &bytes);
    if (ovf || numel > INT64_MAX)
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': shape %s of %s overflows 64-bit sizes", path, name,
                       fmt_shape(sb, sizeof sb, e->shape, e->ndim), dts);
    const ct_json *off = ct__json_get(v, "data_offsets");
    if (!off || off->type != CT_JSON_ARR || off->u.arr.n != 2 || !json_uint(&off->u.arr.items[0], &e->begin) ||
        !json_uint(&off->u.arr.items[1], &e->end))
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" must be [begin, end] (non-negative integers)",
                       path, name);
    if (e->end < e->begin)
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu) end before they begin", path, name,
                       (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end > buflen)
        return ct__err(CT_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets [%llu, %llu) exceed the data buffer (%llu bytes); the file may be "
                       "truncated",
                       path, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                       (unsigned long long)buflen);
    if (e->end - e->begin != bytes)
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': shape %s of %s needs %llu bytes but data_offsets [%llu, %llu) hold %llu",
                       path, name, fmt_shape(sb, sizeof sb, e->shape, e->ndim), dts, (unsigned long long)bytes,
                       (unsigned long long)e->begin, (unsigned long long)e->end,
                       (unsigned long long)(e->end - e->begin));
    return CT_OK;
}

static int by_offset(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name); /* deterministic messages */
}

/* Sorted entries must cover [0, buflen) exactly. */
static ct_status check_tiling(const char *path, const st_entry *e, size_t n, uint64_t buflen) {
    uint64_t pos = 0;
    const char *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        if (e[i].begin > pos) {
            if (!prev)
                return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': data_offsets begin at %llu, leaving a gap at the start "
                               "of the data buffer (offsets must tile it exactly)",
                               path, e[i].name, (unsigned long long)e[i].begin);
            return ct__err(CT_ERR_FORMAT,
                           "%s: tensor '%s': data_offsets [%llu, %llu) leave a gap of %llu bytes after tensor '%s' "
                           "(offsets must tile the data buffer exactly)",
                           path, e[i].name, (unsigned long long)e[i].begin, (unsigned long long)e[i].end,
                           (unsigned long long)(e[i].begin - pos), prev);
        }
        if (e[i].begin < pos)
            return ct__err(CT_ERR_FORMAT,
                           "%s: tensor '%s': data_offsets [%llu, %llu) overlap tensor '%s' (which ends at %llu)", path,
                           e[i].name, (unsigned long long)e[i].begin, (unsigned long long)e[i].end, prev,
                           (unsigned long long)pos);
        pos = e[i].end;
        prev = e[i].name;
    }
    if (pos != buflen) {
        if (!prev)
            return ct__err(CT_ERR_FORMAT, "%s: no tensors but a %llu-byte data buffer", path,
                           (unsigned long long)buflen);
        return ct__err(CT_ERR_FORMAT, "%s: %llu bytes after the last tensor ('%s') belong to no tensor", path,
                       (unsigned long long)(buflen - pos), prev);
    }
    return CT_OK;
}

/* Add validated entries to ts; all or nothing. */
static ct_status add_all(const char *path, const st_entry *e, size_t n, const uint8_t *buf, int file, ct_tstore *ts) {
    size_t n0 = ts->n, own0 = ts->nowned;
    ct_status st = CT_OK;
    for (size_t i = 0; i < n && st == CT_OK; i++) {
        const uint8_t *p = buf + e[i].begin;
        size_t nbytes = (size_t)(e[i].end - e[i].begin);
        size_t align = ct_dtype_block_bytes(e[i].dt);
        if (nbytes && align > 1 && (uintptr_t)p % align != 0) {
            void *copy = malloc(nbytes); /* malloc alignment covers every plain dtype */
            if (!copy || ct__tstore_own(ts, copy) < 0) {
                free(copy);
                st = ct__err(CT_ERR_NOMEM, "%s: tensor '%s': out of memory", path, e[i].name);
                break;
            }
            memcpy(copy, p, nbytes);
            p = copy;
        }
        st = ct__tstore_add(ts, e[i].name, e[i].dt, e[i].ndim, e[i].shape, p, nbytes, file);
    }
    if (st != CT_OK) {
        for (size_t i = n0; i < ts->n; i++) free(ts->t[i].name);
        ts->n = n0;
        for (size_t i = own0; i < ts->nowned; i++) free(ts->owned[i]);
        ts->nowned = own0;
    }
    return st;
}

static int by_key(const void *a, const void *b) {
    const st_entry *x = a, *y = b; /* begin holds the key length here */
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return memcmp(x->name, y->name, (size_t)x->begin);
}

/* A key that occurs twice in object h (NULL if none, or out of memory). */
static const char *find_dup(const ct_json *h) {
    size_t n = h->u.obj.n;
    st_entry *k = calloc(n ? n : 1, sizeof *k);
    const char *dup = NULL;
    if (!k) return NULL;
    for (size_t i = 0; i < n; i++) {
        k[i].name = h->u.obj.keys[i];
        k[i].begin = h->u.obj.klens[i];
    }
    qsort(k, n, sizeof *k, by_key);
    for (size_t i = 1; i < n && !dup; i++)
        if (by_key(&k[i - 1], &k[i]) == 0) dup = k[i].name;
    free(k);
    return dup;
}

static ct_status parse_header(const char *path, const ct_json *h, uint64_t buflen, const uint8_t *buf, int file,
                              ct_tstore *ts) {
    if (h->type != CT_JSON_OBJ) return ct__err(CT_ERR_FORMAT, "%s: the JSON header is not an object", path);
    size_t n = h->u.obj.n;
    if (ct__json_has_dup_keys(h)) {
        const char *dup = find_dup(h);
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", path, dup ? dup : "?");
    }
    st_entry *e = calloc(n ? n : 1, sizeof *e);
    if (!e) return ct__err(CT_ERR_NOMEM, "%s: out of memory (%zu header entries)", path, n);
    size_t ne = 0;
    ct_status st = CT_OK;
    for (size_t i = 0; i < n && st == CT_OK; i++) {
        const char *k = h->u.obj.keys[i];
        if (strlen(k) != h->u.obj.klens[i])
            st = ct__err(CT_ERR_FORMAT, "%s: tensor name '%s...' contains a NUL byte", path, k);
        else if (strcmp(k, "__metadata__") == 0)
            st = check_metadata(path, &h->u.obj.vals[i]);
        else
            st = parse_entry(path, k, &h->u.obj.vals[i], buflen, &e[ne++]);
    }
    if (st == CT_OK) {
        qsort(e, ne, sizeof *e, by_offset);
        st = check_tiling(path, e, ne, buflen);
    }
    if (st == CT_OK) st = add_all(path, e, ne, buf, file, ts);
    free(e);
    return st;
}

ct_status ct__safetensors_parse(const uint8_t *data, size_t size, const char *name, int file, ct_tstore *ts) {
    if (!name) name = "<safetensors>";
    if (size < 8)
        return ct__err(CT_ERR_FORMAT, "%s: file is %zu bytes, too short for a safetensors header (8-byte length + JSON)",
                       name, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | data[i];
    if (hlen > ST_MAX_HEADER)
        return ct__err(CT_ERR_FORMAT, "%s: header length %llu exceeds the 100 MB limit; not a safetensors file?", name,
                       (unsigned long long)hlen);
    if (hlen > size - 8)
        return ct__err(CT_ERR_FORMAT, "%s: header length %llu exceeds the file (%zu bytes); the file may be truncated",
                       name, (unsigned long long)hlen, size);
    if (hlen < 2) return ct__err(CT_ERR_FORMAT, "%s: header length %llu is too short for a JSON object", name,
                                 (unsigned long long)hlen);
    char jname[512];
    snprintf(jname, sizeof jname, "%s (JSON header)", name);
    ct_json *h = NULL;
    ct_status st = ct__json_parse((const char *)data + 8, (size_t)hlen, jname, &h);
    if (st != CT_OK) return st;
    st = parse_header(name, h, (uint64_t)(size - 8 - hlen), data + 8 + hlen, file, ts);
    ct__json_free(h);
    return st;
}

ct_status ct__safetensors_load(const char *path, ct_tstore *ts) {
    ct_mfile f;
    ct_status st = ct__mfile_open(&f, path);
    if (st != CT_OK) return st;
    int idx = ct__tstore_add_file(ts, &f);
    if (idx < 0) {
        ct__mfile_close(&f);
        return ct__err(CT_ERR_NOMEM, "%s: out of memory", path);
    }
    st = ct__safetensors_parse(f.data, f.size, path, idx, ts);
    if (st != CT_OK) { /* the file is the store's last one: take it back */
        ts->nfiles--;
        ct__mfile_close(&ts->files[idx]);
    }
    return st;
}
