/* src/formats/gguf.c — GGUF reader (v3, and v2 which has the same layout).
 *
 * Layout (little-endian):
 *   "GGUF" u32 version, u64 n_tensors, u64 n_kv,
 *   n_kv x { string key, u32 type, value }        string = u64 len + bytes
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
 *   padding to general.alignment (default 32), then the data section;
 *   each tensor's offset is relative to the data section and aligned.
 * Reference: ggml/docs/gguf.md and gguf-py (the writer our tests use).
 *
 * Everything is validated at open: counts against the file size, every value
 * (nested arrays included, depth-limited), every tensor's type, shape, size
 * and range. Later lookups are then plain reads. Keys are indexed by a hash
 * table; string arrays (tokenizer vocabularies, up to ~150k entries) get an
 * offset table so element access is O(1).
 *
 * Leaves out: v1 (32-bit counts), big-endian files, writing, and the GGML
 * types other than F32/F16/BF16/Q8_0/Q4_0/Q4_1/I8/I16/I32/I64/F64 (K-quants,
 * IQ*: rejected with CT_ERR_UNSUPPORTED naming the tensor and type).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "formats/gguf.h"

#define MAX_NAME 256        /* tensor name bytes (llama.cpp allows 63) */
#define MAX_DEPTH 8         /* nesting of array-of-array values */
#define DEFAULT_ALIGN 32

/* One metadata entry; all offsets are into the file. */
typedef struct {
    const char *key;
    size_t klen;
    uint32_t type;     /* ct_gguf_type */
    size_t voff;       /* scalar value / string (u64 len + bytes) / array header */
    uint32_t elem;     /* arrays: element type */
    uint64_t n;        /* arrays: element count */
    size_t aoff;       /* arrays: first element */
    size_t *soff;      /* string arrays: offset of each element's u64 length */
} gkv;

typedef struct {
    const char *name;
    size_t nlen;
    uint32_t ndim;
    int64_t ne[CT_MAX_DIMS]; /* GGUF order: ne[0] innermost */
    uint32_t gtype;
    ct_dtype dt;
    uint64_t offset;         /* relative to the data section */
    size_t nbytes;
} gtensor;

struct ct_gguf {
    ct_mfile mf;          /* valid when owns_map */
    int owns_map;
    const uint8_t *data;
    size_t size;
    char *path;
    uint32_t version;
    size_t alignment, data_start;
    gkv *kv;
    size_t nkv;
    uint32_t *kidx;       /* hash table of kv indices + 1 (0 = empty) */
    size_t kcap;          /* power of two */
    gtensor *t;
    size_t nt;
};

/* ---- cursor over the mapping -------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n, off;
} cur;

static int cur_u32(cur *c, uint32_t *v) {
    if (c->n - c->off < 4) return -1;
    memcpy(v, c->p + c->off, 4);
    c->off += 4;
    return 0;
}
static int cur_u64(cur *c, uint64_t *v) {
    if (c->n - c->off < 8) return -1;
    memcpy(v, c->p + c->off, 8);
    c->off += 8;
    return 0;
}
static int cur_skip(cur *c, uint64_t k) {
    if (k > c->n - c->off) return -1;
    c->off += (size_t)k;
    return 0;
}
/* A GGUF string: u64 length then bytes. */
static int cur_str(cur *c, const char **s, size_t *len) {
    uint64_t l;
    if (cur_u64(c, &l) || l > c->n - c->off) return -1;
    *s = (const char *)c->p + c->off;
    *len = (size_t)l;
    c->off += (size_t)l;
    return 0;
}

/* ---- names for messages --------------------------------------------------- */

/* Copy up to 80 bytes of a file string for a one-line message. */
static const char *printable(char *buf, size_t cap, const char *s, size_t len) {
    size_t j = 0;
    for (size_t i = 0; i < len && j + 4 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[j++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (j + 4 >= cap && len > j) { buf[j++] = '.'; buf[j++] = '.'; buf[j++] = '.'; }
    buf[j] = 0;
    return buf;
}

static size_t scalar_size(uint32_t type) {
    switch (type) {
    case CT_GGUF_U8: case CT_GGUF_I8: case CT_GGUF_BOOL: return 1;
    case CT_GGUF_U16: case CT_GGUF_I16: return 2;
    case CT_GGUF_U32: case CT_GGUF_I32: case CT_GGUF_F32: return 4;
    case CT_GGUF_U64: case CT_GGUF_I64: case CT_GGUF_F64: return 8;
    default: return 0;
    }
}

static const char *ggml_type_name(uint32_t t) {
    static const char *names[] = {
        [0] = "F32", [1] = "F16", [2] = "Q4_0", [3] = "Q4_1", [6] = "Q5_0", [7] = "Q5_1",
        [8] = "Q8_0", [9] = "Q8_1", [10] = "Q2_K", [11] = "Q3_K", [12] = "Q4_K", [13] = "Q5_K",
        [14] = "Q6_K", [15] = "Q8_K", [16] = "IQ2_XXS", [17] = "IQ2_XS", [18] = "IQ3_XXS",
        [19] = "IQ1_S", [20] = "IQ4_NL", [21] = "IQ3_S", [22] = "IQ2_S", [23] = "IQ4_XS",
        [24] = "I8", [25] = "I16", [26] = "I32", [27] = "I64", [28] = "F64", [29] = "IQ1_M",
        [30] = "BF16", [31] = "Q4_0_4_4", [32] = "Q4_0_4_8", [33] = "Q4_0_8_8", [34] = "TQ1_0",
        [35] = "TQ2_0", [36] = "IQ4_NL_4_4", [37] = "IQ4_NL_4_8", [38] = "IQ4_NL_8_8",
        [39] = "MXFP4",
    };
    return t < sizeof names / sizeof names[0] ? names[t] : NULL;
}

/* GGML type id -> ct_dtype; -1 when ctune has no kernels for it. */
static int ggml_to_dtype(uint32_t t) {
    switch (t) {
    case 0: return CT_DT_F32;
    case 1: return CT_DT_F16;
    case 2: return CT_DT_Q4_0;
    case 3: return CT_DT_Q4_1;
    case 8: return CT_DT_Q8_0;
    case 24: return CT_DT_I8;
    case 25: return CT_DT_I16;
    case 26: return CT_DT_I32;
    case 27: return CT_DT_I64;
    case 28: return CT_DT_F64;
    case 30: return CT_DT_BF16;
    default: return -1;
    }
}

/* ---- hash index over (ptr, len) names ----------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static const gkv *find_kv(const ct_gguf *g, const char *key) {
    if (!g || !key || !g->kcap) return NULL;
    size_t len = strlen(key), mask = g->kcap - 1;
    for (size_t h = hash_bytes(key, len) & mask;; h = (h + 1) & mask) {
        uint32_t v = g->kidx[h];
        if (!v) return NULL;
        const gkv *e = &g->kv[v - 1];
        if (e->klen == len && memcmp(e->key, key, len) == 0) return e;
    }
}

/* Build the key index; returns the index of a duplicate key (>= 0), -1 when
 * all keys are distinct, -2 on OOM. */
static long build_index(ct_gguf *g) {
    size_t cap = 16;
    while (cap < 2 * g->nkv) cap *= 2;
    g->kidx = ct__calloc(cap, sizeof *g->kidx);
    if (!g->kidx) return -2;
    g->kcap = cap;
    for (size_t i = 0; i < g->nkv; i++) {
        const gkv *k = &g->kv[i];
        size_t h = hash_bytes(k->key, k->klen) & (cap - 1);
        for (; g->kidx[h]; h = (h + 1) & (cap - 1)) {
            const gkv *o = &g->kv[g->kidx[h] - 1];
            if (o->klen == k->klen && memcmp(o->key, k->key, k->klen) == 0) return (long)i;
        }
        g->kidx[h] = (uint32_t)(i + 1);
    }
    return -1;
}

/* Duplicate tensor names: same open addressing, temporary table. Returns the
 * index of the first duplicate, -1 if none, -2 on OOM. */
static long find_dup_tensor(const ct_gguf *g) {
    size_t cap = 16;
    while (cap < 2 * g->nt) cap *= 2;
    uint32_t *tab = ct__calloc(cap, sizeof *tab);
    if (!tab) return -2;
    long dup = -1;
    for (size_t i = 0; i < g->nt && dup < 0; i++) {
        const gtensor *t = &g->t[i];
        size_t h = hash_bytes(t->name, t->nlen) & (cap - 1);
        for (; tab[h]; h = (h + 1) & (cap - 1)) {
            const gtensor *o = &g->t[tab[h] - 1];
            if (o->nlen == t->nlen && memcmp(o->name, t->name, t->nlen) == 0) { dup = (long)i; break; }
        }
        if (dup < 0) tab[h] = (uint32_t)(i + 1);
    }
    free(tab);
    return dup;
}

/* ---- metadata values ----------------------------------------------------- */

/* Skip one value of type `type`. 0 ok, -1 truncated, -2 bad type, -3 too deep. */
static int skip_value(cur *c, uint32_t type, int depth) {
    size_t sz = scalar_size(type);
    if (sz) return cur_skip(c, sz);
    if (type == CT_GGUF_STRING) {
        const char *s;
        size_t l;
        return cur_str(c, &s, &l);
    }
    if (type != CT_GGUF_ARRAY) return -2;
    if (depth >= MAX_DEPTH) return -3;
    uint32_t et;
    uint64_t n;
    if (cur_u32(c, &et) || cur_u64(c, &n)) return -1;
    size_t esz = scalar_size(et);
    if (esz) return n > (c->n - c->off) / esz ? -1 : cur_skip(c, n * esz);
    if (et != CT_GGUF_STRING && et != CT_GGUF_ARRAY) return -2;
    /* each string element takes >= 8 bytes, each array >= 12: n is bounded */
    if (n > (c->n - c->off) / 8) return -1;
    for (uint64_t i = 0; i < n; i++) {
        int r = skip_value(c, et, depth + 1);
        if (r) return r;
    }
    return 0;
}

static ct_status value_err(const ct_gguf *g, const gkv *k, int r, const char *what) {
    char kb[96];
    printable(kb, sizeof kb, k->key, k->klen);
    if (r == -2)
        return ct__err(CT_ERR_FORMAT, "%s: key '%s': unknown %s value type; the file is corrupt", g->path, kb, what);
    if (r == -3)
        return ct__err(CT_ERR_FORMAT, "%s: key '%s': arrays nested deeper than %d levels", g->path, kb, MAX_DEPTH);
    return ct__err(CT_ERR_FORMAT, "%s: key '%s': %s value runs past the end of the file (%zu bytes); "
                   "the file may be truncated", g->path, kb, what, g->size);
}

/* Parse the value of k at the cursor (type already read). Top-level arrays
 * record their element layout; string arrays get an offset table. */
static ct_status parse_value(ct_gguf *g, cur *c, gkv *k) {
    k->voff = c->off;
    if (k->type != CT_GGUF_ARRAY) {
        int r = skip_value(c, k->type, 0);
        return r ? value_err(g, k, r, k->type == CT_GGUF_STRING ? "string" : "scalar") : CT_OK;
    }
    if (cur_u32(c, &k->elem) || cur_u64(c, &k->n)) return value_err(g, k, -1, "array");
    k->aoff = c->off;
    if (k->elem != CT_GGUF_STRING) {
        c->off = k->voff;
        int r = skip_value(c, CT_GGUF_ARRAY, 0);
        return r ? value_err(g, k, r, "array") : CT_OK;
    }
    if (k->n > (c->n - c->off) / 8) return value_err(g, k, -1, "string array");
    k->soff = ct__malloc((size_t)(k->n ? k->n : 1) * sizeof *k->soff);
    if (!k->soff) return ct__err(CT_ERR_NOMEM, "%s: out of memory indexing a string array", g->path);
    for (uint64_t i = 0; i < k->n; i++) {
        const char *s;
        size_t l;
        k->soff[i] = c->off;
        if (cur_str(c, &s, &l)) return value_err(g, k, -1, "string array");
    }
    return CT_OK;
}

/* ---- header, metadata, tensor infos ------------------------------------- */

static ct_status parse_kvs(ct_gguf *g, cur *c, uint64_t nkv) {
    /* each entry is at least 8 (key len) + 4 (type) + 1 (value) bytes */
    if (nkv > g->size / 13 || nkv >= UINT32_MAX)
        return ct__err(CT_ERR_FORMAT, "%s: header: metadata count %llu is impossible for a %zu-byte file; "
                       "the file is truncated or corrupt", g->path, (unsigned long long)nkv, g->size);
    g->kv = ct__calloc((size_t)(nkv ? nkv : 1), sizeof *g->kv);
    if (!g->kv) return ct__err(CT_ERR_NOMEM, "%s: out of memory", g->path);
    for (uint64_t i = 0; i < nkv; i++) {
        gkv *k = &g->kv[i];
        if (cur_str(c, &k->key, &k->klen) || cur_u32(c, &k->type))
            return ct__err(CT_ERR_FORMAT, "%s: metadata entry %llu: key runs past the end of the file; "
                           "the file may be truncated", g->path, (unsigned long long)i);
        g->nkv = (size_t)i + 1;
        ct_status s = parse_value(g, c, k);
        if (s) return s;
    }
    long dup = build_index(g);
    if (dup == -2) return ct__err(CT_ERR_NOMEM, "%s: out of memory", g->path);
    if (dup >= 0) {
        char kb[96];
        return ct__err(CT_ERR_FORMAT, "%s: key '%s' appears twice", g->path,
                       printable(kb, sizeof kb, g->kv[dup].key, g->kv[dup].klen));
    }
    return CT_OK;
}

static ct_status read_alignment(ct_gguf *g) {
    g->alignment = DEFAULT_ALIGN;
    const gkv *k = find_kv(g, "general.alignment");
    if (!k) return CT_OK;
    uint32_t a;
    if (!ct__gguf_get_u32(g, "general.alignment", &a) || a == 0 || (a & (a - 1)) || a > (1u << 30))
        return ct__err(CT_ERR_FORMAT, "%s: key 'general.alignment': must be a power-of-two integer "
                       "(at most 2^30)", g->path);
    g->alignment = a;
    return CT_OK;
}

/* Read one tensor info; check its type, shape and byte size (not yet its range). */
static ct_status parse_tensor_info(ct_gguf *g, cur *c, uint64_t i, gtensor *t) {
    char nb[96];
    if (cur_str(c, &t->name, &t->nlen))
        return ct__err(CT_ERR_FORMAT, "%s: tensor info %llu: name runs past the end of the file; "
                       "the file may be truncated", g->path, (unsigned long long)i);
    printable(nb, sizeof nb, t->name, t->nlen);
    if (t->nlen == 0 || t->nlen >= MAX_NAME || memchr(t->name, 0, t->nlen))
        return ct__err(CT_ERR_FORMAT, "%s: tensor info %llu ('%s'): name is empty, longer than %d bytes "
                       "or contains NUL", g->path, (unsigned long long)i, nb, MAX_NAME - 1);
    if (cur_u32(c, &t->ndim))
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': info truncated", g->path, nb);
    if (t->ndim > CT_MAX_DIMS)
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': %u dimensions (at most %d)", g->path, nb, t->ndim,
                       CT_MAX_DIMS);
    int64_t numel = 1;
    int ovf = 0;
    for (uint32_t d = 0; d < t->ndim; d++) {
        uint64_t ne;
        if (cur_u64(c, &ne)) return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': info truncated", g->path, nb);
        if (ne > (uint64_t)INT64_MAX)
            return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': ne[%u] = %llu is negative as int64", g->path, nb, d,
                           (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
        ovf |= __builtin_mul_overflow(numel, t->ne[d], &numel);
    }
    uint64_t off;
    if (cur_u32(c, &t->gtype) || cur_u64(c, &off))
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': info truncated", g->path, nb);
    t->offset = off;
    int dt = ggml_to_dtype(t->gtype);
    const char *tn = ggml_type_name(t->gtype);
    if (dt < 0 && tn)
        return ct__err(CT_ERR_UNSUPPORTED, "%s: tensor '%s': GGML type %s (%u) is not supported (supported: "
                       "F32, F16, BF16, Q8_0, Q4_0, Q4_1); re-quantize it, e.g. llama-quantize --pure ... Q8_0",
                       g->path, nb, tn, t->gtype);
    if (dt < 0)
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': unknown GGML type id %u; the file is corrupt",
                       g->path, nb, t->gtype);
    t->dt = (ct_dtype)dt;
    if (ovf)
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': element count overflows (ne product too large)",
                       g->path, nb);
    int blk = ct_dtype_block(t->dt);
    if ((t->ndim > 0 ? t->ne[0] : 1) % blk != 0)
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': row length ne[0] = %lld is not a multiple of the "
                       "%s block size %d", g->path, nb, (long long)t->ne[0], tn, blk);
    if (__builtin_mul_overflow((uint64_t)numel / (uint64_t)blk, (uint64_t)ct_dtype_block_bytes(t->dt),
                               &t->nbytes))
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': byte size overflows", g->path, nb);
    return CT_OK;
}

/* Data section start, then each tensor's alignment and range. */
static ct_status check_ranges(ct_gguf *g, size_t info_end) {
    size_t a = g->alignment, ds;
    if (ct__add_ovf(info_end, a - 1, &ds))
        return ct__err(CT_ERR_FORMAT, "%s: data section offset overflows", g->path);
    g->data_start = ds & ~(a - 1);
    for (size_t i = 0; i < g->nt; i++) {
        const gtensor *t = &g->t[i];
        char nb[96];
        printable(nb, sizeof nb, t->name, t->nlen);
        if (t->offset % a != 0)
            return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': data offset %llu is not a multiple of the "
                           "alignment %zu", g->path, nb, (unsigned long long)t->offset, a);
        size_t beg, end;
        if ((uint64_t)(size_t)t->offset != t->offset || ct__add_ovf(g->data_start, (size_t)t->offset, &beg) ||
            ct__add_ovf(beg, t->nbytes, &end) || end > g->size)
            return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': data [%llu, +%zu) at file offset %zu lies past the "
                           "end of the file (%zu bytes); the file may be truncated", g->path, nb,
                           (unsigned long long)t->offset, t->nbytes, g->data_start, g->size);
    }
    return CT_OK;
}

static ct_status parse_all(ct_gguf *g) {
    cur c = {g->data, g->size, 0};
    uint32_t magic = 0, ver;
    uint64_t nt, nkv;
    if (g->size < 4 || memcmp(g->data, "GGUF", 4) != 0)
        return ct__err(CT_ERR_FORMAT, "%s: not a GGUF file (bad magic; expected \"GGUF\")", g->path);
    (void)cur_u32(&c, &magic);
    if (cur_u32(&c, &ver))
        return ct__err(CT_ERR_FORMAT, "%s: header truncated (%zu bytes)", g->path, g->size);
    if (ver == 1)
        return ct__err(CT_ERR_UNSUPPORTED, "%s: GGUF version 1 is not supported (only v2 and v3); "
                       "re-convert the model with a current llama.cpp", g->path);
    if (ver >= 0x10000 && (ver & 0xffff) == 0)
        return ct__err(CT_ERR_UNSUPPORTED, "%s: big-endian GGUF is not supported", g->path);
    if (ver != 2 && ver != 3)
        return ct__err(CT_ERR_UNSUPPORTED, "%s: GGUF version %u is not supported (only v2 and v3)", g->path, ver);
    g->version = ver;
    if (cur_u64(&c, &nt) || cur_u64(&c, &nkv))
        return ct__err(CT_ERR_FORMAT, "%s: header truncated (%zu bytes)", g->path, g->size);
    ct_status s = parse_kvs(g, &c, nkv);
    if (s) return s;
    if ((s = read_alignment(g))) return s;
    /* each tensor info is at least 8 + 1 (name) + 4 + 4 + 8 bytes */
    if (nt > g->size / 25 || nt >= UINT32_MAX)
        return ct__err(CT_ERR_FORMAT, "%s: header: tensor count %llu is impossible for a %zu-byte file; "
                       "the file is truncated or corrupt", g->path, (unsigned long long)nt, g->size);
    g->t = ct__calloc((size_t)(nt ? nt : 1), sizeof *g->t);
    if (!g->t) return ct__err(CT_ERR_NOMEM, "%s: out of memory", g->path);
    for (uint64_t i = 0; i < nt; i++) {
        if ((s = parse_tensor_info(g, &c, i, &g->t[i]))) return s;
        g->nt = (size_t)i + 1;
    }
    long dup = find_dup_tensor(g);
    if (dup == -2) return ct__err(CT_ERR_NOMEM, "%s: out of memory", g->path);
    if (dup >= 0) {
        char nb[96];
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s' appears twice", g->path,
                       printable(nb, sizeof nb, g->t[dup].name, g->t[dup].nlen));
    }
    return check_ranges(g, c.off);
}

/* ---- tensors into the store --------------------------------------------- */

static ct_status add_tensors(ct_gguf *g, ct_tstore *ts, int file) {
    for (size_t i = 0; i < g->nt; i++) {
        const gtensor *t = &g->t[i];
        char name[MAX_NAME];
        memcpy(name, t->name, t->nlen);
        name[t->nlen] = 0;
        int64_t shape[CT_MAX_DIMS];
        for (uint32_t d = 0; d < t->ndim; d++) shape[d] = t->ne[t->ndim - 1 - d]; /* PyTorch order */
        ct_status s = ct__tstore_add(ts, name, t->dt, (int)t->ndim, shape,
                                     g->data + g->data_start + t->offset, t->nbytes, file);
        if (s) return ct__err_prefix(s, "%s: tensor '%s'", g->path, name);
    }
    return CT_OK;
}

/* Undo a partial add_tensors (out of memory): drop tensors and files beyond
 * the counts the store had before, so a failed open leaves ts unchanged. */
static void rollback(ct_tstore *ts, size_t n0, size_t f0) {
    while (ts->n > n0) free(ts->t[--ts->n].name);
    while (ts->nfiles > f0) ct__mfile_close(&ts->files[--ts->nfiles]);
}

/* ---- open / close ---------------------------------------------------------- */

static ct_status open_common(ct_gguf *g, ct_gguf **out, ct_tstore *ts, int file) {
    size_t n0 = ts ? ts->n : 0;
    ct_status s = parse_all(g);
    if (!s && ts && (s = add_tensors(g, ts, file))) rollback(ts, n0, ts->nfiles);
    if (s) { ct__gguf_close(g); return s; }
    *out = g;
    return CT_OK;
}

ct_status ct__gguf_open_mem(const void *data, size_t size, const char *name, ct_gguf **out, ct_tstore *ts) {
    *out = NULL;
    ct_gguf *g = ct__calloc(1, sizeof *g);
    if (!g) return ct__err(CT_ERR_NOMEM, "%s: out of memory", name);
    g->data = data;
    g->size = data ? size : 0;
    g->path = ct__strdup(name ? name : "(memory)");
    if (!g->path) { free(g); return ct__err(CT_ERR_NOMEM, "%s: out of memory", name); }
    return open_common(g, out, ts, -1);
}

ct_status ct__gguf_open(const char *path, ct_gguf **out, ct_tstore *ts) {
    *out = NULL;
    ct_gguf *g = ct__calloc(1, sizeof *g);
    if (!g) return ct__err(CT_ERR_NOMEM, "%s: out of memory", path);
    ct_status s = ct__mfile_open(&g->mf, path);
    if (s) { free(g); return s; }
    g->owns_map = 1;
    g->data = g->mf.data;
    g->size = g->mf.data ? g->mf.size : 0;
    g->path = ct__strdup(path);
    if (!g->path) { ct__gguf_close(g); return ct__err(CT_ERR_NOMEM, "%s: out of memory", path); }
    s = parse_all(g);
    if (s) { ct__gguf_close(g); return s; }
    if (ts) {
        /* The store keeps the mapping alive for the tensors (and for g). */
        size_t n0 = ts->n, f0 = ts->nfiles;
        int file = ct__tstore_add_file(ts, &g->mf);
        if (file < 0) { ct__gguf_close(g); return ct__err(CT_ERR_NOMEM, "%s: out of memory", path); }
        g->owns_map = 0;
        memset(&g->mf, 0, sizeof g->mf);
        if ((s = add_tensors(g, ts, file))) {
            rollback(ts, n0, f0); /* unmaps the file */
            ct__gguf_close(g);
            return s;
        }
    }
    *out = g;
    return CT_OK;
}

void ct__gguf_close(ct_gguf *g) {
    if (!g) return;
    for (size_t i = 0; i < g->nkv; i++) free(g->kv[i].soff);
    free(g->kv);
    free(g->kidx);
    free(g->t);
    free(g->path);
    if (g->owns_map) ct__mfile_close(&g->mf);
    free(g);
}

const char *ct__gguf_path(const ct_gguf *g) { return g ? g->path : ""; }

/* ---- typed lookups --------------------------------------------------------- */

/* Integer value of type `type` at p; 0 when not an integer type or a u64
 * beyond INT64_MAX. */
static int read_int(const uint8_t *p, uint32_t type, int64_t *out) {
    uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; uint64_t u64; int64_t i64;
    switch (type) {
    case CT_GGUF_U8: case CT_GGUF_BOOL: memcpy(&u8, p, 1); *out = u8; return 1;
    case CT_GGUF_I8: memcpy(&i8, p, 1); *out = i8; return 1;
    case CT_GGUF_U16: memcpy(&u16, p, 2); *out = u16; return 1;
    case CT_GGUF_I16: memcpy(&i16, p, 2); *out = i16; return 1;
    case CT_GGUF_U32: memcpy(&u32, p, 4); *out = u32; return 1;
    case CT_GGUF_I32: memcpy(&i32, p, 4); *out = i32; return 1;
    case CT_GGUF_U64: memcpy(&u64, p, 8); if (u64 > (uint64_t)INT64_MAX) return 0; *out = (int64_t)u64; return 1;
    case CT_GGUF_I64: memcpy(&i64, p, 8); *out = i64; return 1;
    default: return 0;
    }
}

static int read_float(const uint8_t *p, uint32_t type, float *out) {
    if (type == CT_GGUF_F32) { memcpy(out, p, 4); return 1; }
    if (type == CT_GGUF_F64) { double d; memcpy(&d, p, 8); *out = (float)d; return 1; }
    return 0;
}

size_t ct__gguf_n_kv(const ct_gguf *g) { return g ? g->nkv : 0; }

int ct__gguf_key_at(const ct_gguf *g, size_t i, const char **key, size_t *len, ct_gguf_type *type) {
    if (!g || i >= g->nkv) return 0;
    *key = g->kv[i].key;
    *len = g->kv[i].klen;
    *type = (ct_gguf_type)g->kv[i].type;
    return 1;
}

int ct__gguf_has(const ct_gguf *g, const char *key) { return find_kv(g, key) != NULL; }

int ct__gguf_get_u32(const ct_gguf *g, const char *key, uint32_t *out) {
    const gkv *k = find_kv(g, key);
    int64_t v;
    if (!k || k->type == CT_GGUF_BOOL || !read_int(g->data + k->voff, k->type, &v)) return 0;
    if (v < 0 || v > (int64_t)UINT32_MAX) return 0;
    *out = (uint32_t)v;
    return 1;
}

int ct__gguf_get_f32(const ct_gguf *g, const char *key, float *out) {
    const gkv *k = find_kv(g, key);
    return k && read_float(g->data + k->voff, k->type, out);
}

int ct__gguf_get_bool(const ct_gguf *g, const char *key, int *out) {
    const gkv *k = find_kv(g, key);
    int64_t v;
    if (!k || !read_int(g->data + k->voff, k->type, &v)) return 0;
    *out = v != 0;
    return 1;
}

int ct__gguf_get_str(const ct_gguf *g, const char *key, const char **s, size_t *len) {
    const gkv *k = find_kv(g, key);
    if (!k || k->type != CT_GGUF_STRING) return 0;
    uint64_t l;
    memcpy(&l, g->data + k->voff, 8);
    *s = (const char *)g->data + k->voff + 8;
    *len = (size_t)l;
    return 1;
}

int ct__gguf_get_arr(const ct_gguf *g, const char *key, ct_gguf_type *elem, size_t *n) {
    const gkv *k = find_kv(g, key);
    if (!k || k->type != CT_GGUF_ARRAY) return 0;
    *elem = (ct_gguf_type)k->elem;
    *n = (size_t)k->n;
    return 1;
}

int ct__gguf_arr_str(const ct_gguf *g, const char *key, size_t i, const char **s, size_t *len) {
    const gkv *k = find_kv(g, key);
    if (!k || k->type != CT_GGUF_ARRAY || k->elem != CT_GGUF_STRING || i >= k->n) return 0;
    uint64_t l;
    memcpy(&l, g->data + k->soff[i], 8);
    *s = (const char *)g->data + k->soff[i] + 8;
    *len = (size_t)l;
    return 1;
}

int ct__gguf_arr_f32(const ct_gguf *g, const char *key, size_t i, float *out) {
    const gkv *k = find_kv(g, key);
    if (!k || k->type != CT_GGUF_ARRAY || i >= k->n) return 0;
    size_t sz = scalar_size(k->elem);
    return sz && read_float(g->data + k->aoff + i * sz, k->elem, out);
}

int ct__gguf_arr_i32(const ct_gguf *g, const char *key, size_t i, int32_t *out) {
    const gkv *k = find_kv(g, key);
    int64_t v;
    if (!k || k->type != CT_GGUF_ARRAY || i >= k->n) return 0;
    size_t sz = scalar_size(k->elem);
    if (!sz || !read_int(g->data + k->aoff + i * sz, k->elem, &v)) return 0;
    if (v < INT32_MIN || v > INT32_MAX) return 0;
    *out = (int32_t)v;
    return 1;
}
