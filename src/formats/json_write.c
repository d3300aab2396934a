/* src/formats/json_write.c — the JSON writer of json_write.h: a growable
 * buffer, RFC 8259 string escaping, round-trip float formatting, commas and
 * optional pretty layout. Whole-number floats print as "8.0" (Python's
 * float repr) so readers keep them floats. Leaves out: sorting keys, writing to files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "formats/json_write.h"

enum { JW_OOM = 1, JW_BADVAL = 2, JW_MISUSE = 3 };

void ct__jw_init(ct_jw *w, int pretty) {
    memset(w, 0, sizeof *w);
    w->pretty = pretty;
}

void ct__jw_free(ct_jw *w) {
    free(w->s);
    int pretty = w->pretty;
    ct__jw_init(w, pretty);
}

static int reserve(ct_jw *w, size_t extra) {
    if (w->err) return 0;
    size_t need;
    if (ct__add_ovf(w->len, extra + 1, &need)) { w->err = JW_OOM; return 0; }
    if (need <= w->cap) return 1;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) { cap = need; break; }
        cap *= 2;
    }
    char *p = ct__realloc(w->s, cap);
    if (!p) { w->err = JW_OOM; return 0; }
    w->s = p;
    w->cap = cap;
    return 1;
}

static void put(ct_jw *w, const char *s, size_t n) {
    if (!reserve(w, n)) return;
    memcpy(w->s + w->len, s, n);
    w->len += n;
    w->s[w->len] = 0;
}
static void putc1(ct_jw *w, char c) { put(w, &c, 1); }

void ct__jw_raw(ct_jw *w, const char *s, size_t n) { put(w, s, n); }

static void newline_indent(ct_jw *w, int level) {
    if (!w->pretty) return;
    putc1(w, '\n');
    for (int i = 0; i < level; i++) put(w, "  ", 2);
}

/* Separator before a value (is_key = 0) or a key (is_key = 1). */
static int before(ct_jw *w, int is_key) {
    if (w->err) return 0;
    if (w->depth == 0) {
        if (is_key || w->len) { w->err = JW_MISUSE; return 0; }   /* one top-level value */
        return 1;
    }
    int d = w->depth - 1;
    if (w->obj[d] && !is_key) {
        if (!w->after_key) { w->err = JW_MISUSE; return 0; }
        w->after_key = 0;
        return 1;
    }
    if (is_key && (!w->obj[d] || w->after_key)) { w->err = JW_MISUSE; return 0; }
    if (w->n[d]) putc1(w, ',');
    newline_indent(w, w->depth);
    w->n[d] = 1;
    return !w->err;
}

static void open_(ct_jw *w, char c, int obj) {
    if (!before(w, 0)) return;
    if (w->depth >= CT_JW_MAX_DEPTH) { w->err = JW_MISUSE; return; }
    putc1(w, c);
    w->n[w->depth] = 0;
    w->obj[w->depth] = (unsigned char)obj;
    w->depth++;
}

static void close_(ct_jw *w, char c, int obj) {
    if (w->err) return;
    if (w->depth == 0 || w->obj[w->depth - 1] != obj || w->after_key) { w->err = JW_MISUSE; return; }
    w->depth--;
    if (w->n[w->depth]) newline_indent(w, w->depth);
    putc1(w, c);
}

void ct__jw_obj_begin(ct_jw *w) { open_(w, '{', 1); }
void ct__jw_obj_end(ct_jw *w) { close_(w, '}', 1); }
void ct__jw_arr_begin(ct_jw *w) { open_(w, '[', 0); }
void ct__jw_arr_end(ct_jw *w) { close_(w, ']', 0); }

static void escaped(ct_jw *w, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    putc1(w, '"');
    size_t run = 0; /* start of the pending run of plain bytes */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        put(w, s + run, i - run);
        run = i + 1;
        char e[6] = {'\\', 0};
        switch (c) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        case '\b': e[1] = 'b'; break;
        case '\f': e[1] = 'f'; break;
        default:
            e[1] = 'u'; e[2] = '0'; e[3] = '0'; e[4] = hex[c >> 4]; e[5] = hex[c & 15];
            put(w, e, 6);
            continue;
        }
        put(w, e, 2);
    }
    put(w, s + run, n - run);
    putc1(w, '"');
}

void ct__jw_key(ct_jw *w, const char *k) { ct__jw_keyn(w, k, strlen(k)); }
void ct__jw_keyn(ct_jw *w, const char *k, size_t n) {
    if (!before(w, 1)) return;
    escaped(w, k, n);
    put(w, w->pretty ? ": " : ":", w->pretty ? 2 : 1);
    w->after_key = 1;
}

void ct__jw_strn(ct_jw *w, const char *s, size_t n) {
    if (before(w, 0)) escaped(w, s, n);
}
void ct__jw_str(ct_jw *w, const char *s) { ct__jw_strn(w, s, strlen(s)); }

void ct__jw_int(ct_jw *w, int64_t v) {
    char b[32];
    int n = snprintf(b, sizeof b, "%lld", (long long)v);
    if (before(w, 0)) put(w, b, (size_t)n);
}

int ct__jw_fmt_f32(char *buf, float v) {
    if (!isfinite(v)) return -1;
    /* whole numbers as Python writes floats ("10000.0", "0.0"): still a float to a JSON reader */
    if (fabsf(v) < 1e15f && v == floorf(v)) return snprintf(buf, 32, "%.1f", (double)v);
    int n = 0;
    for (int p = 1; p <= 9; p++) {
        n = snprintf(buf, 32, "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    return n;
}

static int fmt_f64(char *buf, double v) {
    if (!isfinite(v)) return -1;
    if (fabs(v) < 1e15 && v == floor(v)) return snprintf(buf, 32, "%.1f", v);
    int n = 0;
    for (int p = 1; p <= 17; p++) {
        n = snprintf(buf, 32, "%.*g", p, v);
        if (strtod(buf, NULL) == v) break;
    }
    return n;
}

void ct__jw_f32(ct_jw *w, float v) {
    char b[32];
    int n = ct__jw_fmt_f32(b, v);
    if (n < 0) { if (!w->err) w->err = JW_BADVAL; return; }
    if (before(w, 0)) put(w, b, (size_t)n);
}

void ct__jw_f64(ct_jw *w, double v) {
    char b[32];
    int n = fmt_f64(b, v);
    if (n < 0) { if (!w->err) w->err = JW_BADVAL; return; }
    if (before(w, 0)) put(w, b, (size_t)n);
}

void ct__jw_bool(ct_jw *w, int v) {
    if (before(w, 0)) put(w, v ? "true" : "false", v ? 4 : 5);
}
void ct__jw_null(ct_jw *w) {
    if (before(w, 0)) put(w, "null", 4);
}

ct_status ct__jw_finish(ct_jw *w, const char *what, char **out, size_t *len) {
    int err = w->err;
    if (!err && (w->depth != 0 || w->after_key || w->len == 0)) err = JW_MISUSE;
    if (!err && !w->s) err = JW_OOM;
    if (err) {
        ct__jw_free(w);
        if (out) *out = NULL;
        if (err == JW_OOM) return ct__err(CT_ERR_NOMEM, "%s: out of memory while writing JSON", what);
        if (err == JW_BADVAL) return ct__err(CT_ERR_NUMERIC, "%s: a value is NaN or infinite (not representable in JSON)", what);
        return ct__err(CT_ERR_ARG, "%s: malformed JSON document (unbalanced nesting or a missing key/value)", what);
    }
    if (len) *len = w->len;
    if (out) {
        *out = w->s;
        int pretty = w->pretty;
        ct__jw_init(w, pretty);
    } else {
        ct__jw_free(w);
    }
    return CT_OK;
}
