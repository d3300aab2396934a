/* src/formats/st_write.c — atomic output files: safetensors from f32
 * sources (stored as F32, F16 or BF16), whole small files, mkdir -p.
 *
 * Atomicity: data goes to "<path>.tmp.<pid>" (created exclusively), then
 * fsync, close, rename over path, and a best-effort fsync of the directory.
 * Any failure removes the temporary file; path is untouched (an old file
 * there stays as it was). Errors name path and strerror(errno), with a hint
 * for a full disk or a file-size limit.
 * Safetensors layout (https://github.com/huggingface/safetensors, "Format"):
 * u64 LE header length N, N bytes of JSON — "__metadata__" first, then the
 * tensors sorted by name with data_offsets in that order — padded with
 * spaces so that N % 8 == 0, then the data, little-endian.
 * Data is converted in chunks into one 4 MiB buffer and written with large
 * write(2) calls (a 500 MB checkpoint is ~125 writes).
 * Leaves out: big-endian hosts, integer and quantized dtypes, sharding
 * (model.safetensors.index.json). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/internal.h"
#include "formats/json.h"
#include "formats/json_write.h"
#include "formats/st_write.h"

#define ST_BUF_BYTES (4u << 20)

/* ---- test hook: fail writes with an injected errno ----------------------- */

static long long g_fault_after = -1; /* bytes to let through before failing; -1 = off */
static int g_fault_errno;

void ct__write_inject_fault(long long after_bytes, int err) {
    g_fault_after = after_bytes;
    g_fault_errno = err;
}

/* ---- an atomic output file ----------------------------------------------- */

typedef struct {
    const char *path;
    char *tmp;   /* "<path>.tmp.<pid>" */
    int fd;
} afile;

static const char *hint_for(int e) {
    if (e == ENOSPC) return " (no space left on the device: free some space or choose another -o)";
    if (e == EDQUOT) return " (disk quota exceeded: free some space or choose another -o)";
    if (e == EFBIG) return " (file too large for the file system or the process's file-size limit)";
    if (e == EACCES || e == EPERM || e == EROFS) return " (check that the directory is writable)";
    if (e == ENOENT) return " (does the directory exist?)";
    return "";
}

static ct_status io_err(afile *f, const char *what, int e) {
    ct_status s = ct__err(CT_ERR_IO, "%s: %s: %s%s", f->path, what, strerror(e), hint_for(e));
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tmp) unlink(f->tmp);
    free(f->tmp);
    f->tmp = NULL;
    return s;
}

static ct_status af_open(afile *f, const char *path) {
    f->path = path;
    f->fd = -1;
    f->tmp = NULL;
    if (!path || !*path) return ct__err(CT_ERR_ARG, "output path is empty");
    size_t n = strlen(path) + 32;
    f->tmp = ct__malloc(n);
    if (!f->tmp) return ct__err(CT_ERR_NOMEM, "%s: out of memory", path);
    snprintf(f->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    unlink(f->tmp); /* a leftover of a crashed run with our pid */
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        int e = errno;
        free(f->tmp);
        f->tmp = NULL; /* not ours: nothing to remove */
        return io_err(f, "cannot create the temporary file", e);
    }
    return CT_OK;
}

static ct_status af_write(afile *f, const void *data, size_t len) {
    const char *p = data;
    while (len) {
        size_t chunk = len > (1u << 30) ? (1u << 30) : len;
        if (g_fault_after >= 0) {
            if ((long long)chunk > g_fault_after) chunk = (size_t)g_fault_after;
            if (chunk == 0) { g_fault_after = -1; return io_err(f, "write failed", g_fault_errno); }
            g_fault_after -= (long long)chunk;
        }
        ssize_t w = write(f->fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return io_err(f, "write failed", errno);
        }
        p += w;
        len -= (size_t)w;
    }
    return CT_OK;
}

static void fsync_dir_of(const char *path) {
    char *d = ct__strdup(path);
    if (!d) return;
    char *slash = strrchr(d, '/');
    const char *dir = ".";
    if (slash == d) dir = "/";
    else if (slash) { *slash = 0; dir = d; }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) { (void)fsync(fd); close(fd); }
    free(d);
}

static ct_status af_commit(afile *f) {
    if (fsync(f->fd) != 0) return io_err(f, "fsync failed", errno);
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0) return io_err(f, "close failed", errno);
    if (rename(f->tmp, f->path) != 0) return io_err(f, "cannot rename the temporary file over it", errno);
    free(f->tmp);
    f->tmp = NULL;
    fsync_dir_of(f->path);
    return CT_OK;
}

ct_status ct__write_file_atomic(const char *path, const void *data, size_t len) {
    afile f;
    ct_status s;
    if (len && !data) return ct__err(CT_ERR_ARG, "%s: no data to write", path ? path : "(null)");
    if ((s = af_open(&f, path)) != CT_OK) return s;
    if ((s = af_write(&f, data, len)) != CT_OK) return s;
    return af_commit(&f);
}

ct_status ct__mkdir_p(const char *path) {
    if (!path || !*path) return ct__err(CT_ERR_ARG, "mkdir: empty path");
    char *p = ct__strdup(path);
    if (!p) return ct__err(CT_ERR_NOMEM, "%s: out of memory", path);
    size_t n = strlen(p);
    ct_status s = CT_OK;
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != 0) continue;
        if (p[i - 1] == '/') continue; /* "a//b" or a trailing slash */
        char c = p[i];
        p[i] = 0;
        if (mkdir(p, 0777) != 0) {
            int e = errno;
            if (e != EEXIST) {
                s = ct__err(CT_ERR_IO, "%s: cannot create directory '%s': %s%s", path, p, strerror(e), hint_for(e));
                break;
            }
            if (!ct__is_dir(p)) {
                s = ct__err(CT_ERR_IO, "%s: '%s' exists and is not a directory", path, p);
                break;
            }
        }
        p[i] = c;
    }
    free(p);
    return s;
}

/* ---- safetensors ------------------------------------------------------------ */

static const char *st_dtype(ct_dtype dt) {
    switch (dt) {
    case CT_DT_F32: return "F32";
    case CT_DT_F16: return "F16";
    case CT_DT_BF16: return "BF16";
    default: return NULL;
    }
}
static size_t st_esize(ct_dtype dt) { return dt == CT_DT_F32 ? 4 : 2; }

/* Validate t[i] and compute its byte size. */
static ct_status check_tensor(const char *path, const ct__st_out *t, int i, size_t *nbytes) {
    if (!t->name || !*t->name) return ct__err(CT_ERR_ARG, "%s: tensor %d has no name", path, i);
    if (strcmp(t->name, "__metadata__") == 0)
        return ct__err(CT_ERR_ARG, "%s: '__metadata__' is reserved and cannot name a tensor", path);
    if (!st_dtype(t->dtype))
        return ct__err(CT_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s cannot be written (F32, F16 or BF16 only)", path,
                       t->name, ct_dtype_name(t->dtype));
    if (t->ndim < 1 || t->ndim > 4)
        return ct__err(CT_ERR_ARG, "%s: tensor '%s': ndim %d is not in 1..4", path, t->name, t->ndim);
    size_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0)
            return ct__err(CT_ERR_SHAPE, "%s: tensor '%s': negative dimension %lld", path, t->name,
                           (long long)t->shape[d]);
        if (ct__mul_ovf(numel, (size_t)t->shape[d], &numel))
            return ct__err(CT_ERR_RANGE, "%s: tensor '%s': element count overflows", path, t->name);
    }
    if (ct__mul_ovf(numel, st_esize(t->dtype), nbytes) || *nbytes > (size_t)1 << 53)
        return ct__err(CT_ERR_RANGE, "%s: tensor '%s': byte size overflows", path, t->name);
    if (numel && !t->src) return ct__err(CT_ERR_ARG, "%s: tensor '%s': no source data", path, t->name);
    return CT_OK;
}

typedef struct { const char *name; int i; } byname;
static int cmp_name(const void *a, const void *b) {
    return strcmp(((const byname *)a)->name, ((const byname *)b)->name);
}

/* metadata text -> validated object of strings, re-emitted into w. */
static ct_status put_metadata(ct_jw *w, const char *path, const char *metadata) {
    ct_json *j = NULL;
    ct_status s = ct__json_parse(metadata, strlen(metadata), "__metadata__", &j);
    if (s != CT_OK) return ct__err_prefix(CT_ERR_ARG, "%s", path);
    if (j->type != CT_JSON_OBJ) {
        ct__json_free(j);
        return ct__err(CT_ERR_ARG, "%s: __metadata__ must be a JSON object of strings", path);
    }
    if (ct__json_has_dup_keys(j)) {
        ct__json_free(j);
        return ct__err(CT_ERR_ARG, "%s: __metadata__ has a duplicate key", path);
    }
    for (size_t i = 0; i < j->u.obj.n; i++) {
        if (j->u.obj.vals[i].type != CT_JSON_STR) {
            s = ct__err(CT_ERR_ARG, "%s: __metadata__ value of '%.60s' is not a string", path, j->u.obj.keys[i]);
            ct__json_free(j);
            return s;
        }
    }
    ct__jw_key(w, "__metadata__");
    ct__jw_obj_begin(w);
    for (size_t i = 0; i < j->u.obj.n; i++) {
        ct__jw_keyn(w, j->u.obj.keys[i], j->u.obj.klens[i]);
        ct__jw_strn(w, j->u.obj.vals[i].u.str.s, j->u.obj.vals[i].u.str.len);
    }
    ct__jw_obj_end(w);
    ct__json_free(j);
    return CT_OK;
}

/* The header JSON, space-padded to a multiple of 8. order: tensor indices sorted by name. */
static ct_status build_header(const char *path, const ct__st_out *t, const int *order, const size_t *nbytes, int n,
                              const char *metadata, char **out, size_t *len) {
    ct_jw w;
    ct__jw_init(&w, 0);
    ct__jw_obj_begin(&w);
    ct_status s;
    if (metadata && (s = put_metadata(&w, path, metadata)) != CT_OK) { ct__jw_free(&w); return s; }
    size_t off = 0;
    for (int k = 0; k < n; k++) {
        const ct__st_out *x = &t[order[k]];
        ct__jw_key(&w, x->name);
        ct__jw_obj_begin(&w);
        ct__jw_key(&w, "dtype");
        ct__jw_str(&w, st_dtype(x->dtype));
        ct__jw_key(&w, "shape");
        ct__jw_arr_begin(&w);
        for (int d = 0; d < x->ndim; d++) ct__jw_int(&w, x->shape[d]);
        ct__jw_arr_end(&w);
        ct__jw_key(&w, "data_offsets");
        ct__jw_arr_begin(&w);
        ct__jw_int(&w, (int64_t)off);
        off += nbytes[order[k]];
        ct__jw_int(&w, (int64_t)off);
        ct__jw_arr_end(&w);
        ct__jw_obj_end(&w);
    }
    ct__jw_obj_end(&w);
    if ((s = ct__jw_finish(&w, path, out, len)) != CT_OK) return s;
    size_t padded = (*len + 7) & ~(size_t)7;
    char *p = ct__realloc(*out, padded + 1);
    if (!p) { free(*out); *out = NULL; return ct__err(CT_ERR_NOMEM, "%s: out of memory", path); }
    memset(p + *len, ' ', padded - *len);
    p[padded] = 0;
    *out = p;
    *len = padded;
    return CT_OK;
}

/* Convert and write one tensor's data through buf (ST_BUF_BYTES). */
static ct_status write_tensor(afile *f, const ct__st_out *x, size_t nbytes, uint8_t *buf) {
    size_t es = st_esize(x->dtype), numel = nbytes / es, per = ST_BUF_BYTES / es;
    ct_status s;
    if (x->dtype == CT_DT_F32) /* little-endian host: the source bytes are the file bytes */
        return af_write(f, x->src, nbytes);
    for (size_t i0 = 0; i0 < numel; i0 += per) {
        size_t m = numel - i0 < per ? numel - i0 : per;
        uint16_t *o = (uint16_t *)buf;
        const float *src = x->src + i0;
        if (x->dtype == CT_DT_F16)
            for (size_t i = 0; i < m; i++) o[i] = ct__f32_to_f16(src[i]);
        else
            for (size_t i = 0; i < m; i++) o[i] = ct__f32_to_bf16(src[i]);
        if ((s = af_write(f, buf, m * es)) != CT_OK) return s;
    }
    return CT_OK;
}

ct_status ct__st_write(const char *path, const ct__st_out *t, int n, const char *metadata) {
    if (!path || !*path) return ct__err(CT_ERR_ARG, "safetensors output path is empty");
    if (n < 0 || (n > 0 && !t)) return ct__err(CT_ERR_ARG, "%s: bad tensor list (n = %d)", path, n);
    ct_status s = CT_OK;
    int *order = ct__malloc(sizeof(int) * (size_t)(n ? n : 1));
    byname *sorted = ct__malloc(sizeof(byname) * (size_t)(n ? n : 1));
    size_t *nbytes = ct__malloc(sizeof(size_t) * (size_t)(n ? n : 1));
    uint8_t *buf = NULL;
    char *hdr = NULL;
    size_t hlen = 0;
    if (!order || !nbytes || !sorted) { s = ct__err(CT_ERR_NOMEM, "%s: out of memory", path); goto done; }
    for (int i = 0; i < n; i++) {
        if ((s = check_tensor(path, &t[i], i, &nbytes[i])) != CT_OK) goto done;
        sorted[i].name = t[i].name;
        sorted[i].i = i;
    }
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_name);
    for (int k = 0; k < n; k++) order[k] = sorted[k].i;
    for (int k = 1; k < n; k++)
        if (strcmp(t[order[k - 1]].name, t[order[k]].name) == 0) {
            s = ct__err(CT_ERR_ARG, "%s: tensor name '%s' appears twice", path, t[order[k]].name);
            goto done;
        }
    if ((s = build_header(path, t, order, nbytes, n, metadata, &hdr, &hlen)) != CT_OK) goto done;
    buf = ct__malloc(ST_BUF_BYTES);
    if (!buf) { s = ct__err(CT_ERR_NOMEM, "%s: out of memory", path); goto done; }

    afile f;
    if ((s = af_open(&f, path)) != CT_OK) goto done;
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    if ((s = af_write(&f, le, 8)) != CT_OK || (s = af_write(&f, hdr, hlen)) != CT_OK) goto done;
    for (int k = 0; k < n; k++)
        if ((s = write_tensor(&f, &t[order[k]], nbytes[order[k]], buf)) != CT_OK) goto done; /* af_write cleaned up */
    s = af_commit(&f);
done:
    free(order);
    free(sorted);
    free(nbytes);
    free(buf);
    free(hdr);
    return s;
}

ct_status ct__jw_write_file(const char *path, ct_jw *w) {
    char *text = NULL;
    size_t len = 0;
    ct_status s = ct__jw_finish(w, path, &text, &len);
    if (s != CT_OK) return s;
    text[len] = '\n'; /* finish leaves room for the NUL; reuse it, length + 1 */
    s = ct__write_file_atomic(path, text, len + 1);
    free(text);
    return s;
}
