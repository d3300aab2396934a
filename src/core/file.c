/* src/core/file.c — memory-mapped and whole-file reads with clear errors. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/internal.h"

ct_status ct__mfile_open(ct_mfile *f, const char *path) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ct__err(CT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ct__err(CT_ERR_IO, "%s: not a regular file", path);
    }
    f->path = ct__strdup(path);
    if (!f->path) { close(fd); return ct__err(CT_ERR_NOMEM, "%s: out of memory", path); }
    f->size = (size_t)st.st_size;
    if (f->size > 0) {
        void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            free(f->path);
            f->path = NULL;
            return ct__err(CT_ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
        }
        f->data = p;
    }
    close(fd);
    return CT_OK;
}

void ct__mfile_close(ct_mfile *f) {
    if (!f) return;
    if (f->data) munmap((void *)f->data, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

ct_status ct__read_file(const char *path, char **out, size_t *len) {
    *out = NULL;
    if (len) *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return ct__err(CT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) { fclose(fp); return ct__err(CT_ERR_NOMEM, "%s: out of memory", path); }
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); fclose(fp); return ct__err(CT_ERR_NOMEM, "%s: out of memory", path); }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, fp);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) { free(buf); return ct__err(CT_ERR_IO, "%s: read error", path); }
    buf[n] = 0;
    *out = buf;
    if (len) *len = n;
    return CT_OK;
}

int ct__file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}
int ct__is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
char *ct__path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

/* Remove a directory tree (files and subdirectories; symlinks are unlinked,
 * not followed). Best effort: returns 0 when everything is gone. */
#include <ftw.h>
static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}
int ct__rmtree(const char *path) {
    if (!ct__is_dir(path)) return remove(path);
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Drop a read-only mapping's resident pages from this process (they stay in
 * the page cache; a later read faults them back in unchanged). */
void ct__mfile_drop_pages(const ct_mfile *f) {
    if (f && f->data && f->size) madvise((void *)f->data, f->size, MADV_DONTNEED);
}

int ct__mfile_drop_range(const ct_mfile *f, const void *p, size_t n) {
    if (!f || !f->data || !f->size || !p || !n) return 0;
    const uintptr_t b = (uintptr_t)f->data, e = b + f->size, s = (uintptr_t)p;
    if (s < b || s >= e) return 0;
    const uintptr_t pg = 4096, lo = s & ~(pg - 1), hi = s + n > e ? e : s + n;
    madvise((void *)lo, hi - lo, MADV_DONTNEED); /* whole pages: neighbours just fault back in */
    return 1;
}
