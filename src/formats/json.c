/* src/formats/json.c — strict RFC 8259 JSON reader producing the DOM of
 * src/formats/json.h.
 *
 * One pass over the text, no recursion: an explicit frame stack bounded by
 * CT_JSON_MAX_DEPTH (the root container is depth 1) and a value stack where the
 * children of every open container accumulate; when a container closes, its
 * children are copied into the arena as one contiguous array. All nodes, key
 * arrays and decoded strings live in a chunked arena, so a tree costs a
 * handful of malloc calls whatever its size and ct__json_free is one walk over
 * the chunk list (the root node sits at the start of the first chunk).
 *
 * Strictness (what is rejected, with "name:line:col: what"; col counts UTF-8
 * characters, both 1-based):
 *   - anything after the top-level value except whitespace (space, \t, \n, \r);
 *   - escapes other than \" \\ \/ \b \f \n \r \t \uXXXX;
 *   - lone or reversed UTF-16 surrogates in \u escapes (no replacement by
 *     U+FFFD: a tokenizer vocabulary with a broken string is a broken file);
 *   - raw control characters U+0000..U+001F inside strings;
 *   - invalid UTF-8 in strings (overlong forms, encoded surrogates, > U+10FFFF);
 *   - numbers outside the RFC grammar (leading zeros, "+1", ".5", "1.", hex,
 *     NaN/Infinity) and finite-looking numbers that overflow a double (1e999);
 *   - nesting deeper than CT_JSON_MAX_DEPTH.
 * Accepted beyond the RFC's minimum: a leading UTF-8 byte-order mark (skipped).
 * Duplicate keys are kept (see ct__json_has_dup_keys).
 * Leaves out: writing JSON, comments, and streaming input.
 */
#define _GNU_SOURCE
#include "formats/json.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

/* ---- arena ---------------------------------------------------------------- */

typedef struct chunk {
    struct chunk *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
} chunk;

#define ARENA_MIN (64u << 10)
#define ARENA_MAX (16u << 20)

typedef struct {
    chunk *head; /* first chunk: holds the root node at data[0]; never moves */
    chunk *cur;  /* chunk being filled */
    size_t next_cap;
} arena;

static chunk *chunk_new(size_t cap) {
    size_t bytes;
    if (ct__add_ovf(sizeof(chunk), cap, &bytes)) return NULL;
    chunk *c = malloc(bytes);
    if (!c) return NULL;
    c->next = NULL;
    c->cap = cap;
    c->used = 0;
    return c;
}

/* n bytes aligned to 8 (16 for the first slot of a chunk); NULL on OOM. */
static void *arena_alloc(arena *a, size_t n) {
    chunk *c = a->cur;
    size_t off = (c->used + 7) & ~(size_t)7;
    if (off <= c->cap && n <= c->cap - off) {
        c->used = off + n;
        return c->data + off;
    }
    size_t cap = a->next_cap;
    if (cap < n) cap = n;
    chunk *nc = chunk_new(cap);
    if (!nc) return NULL;
    if (a->next_cap < ARENA_MAX) a->next_cap *= 2;
    /* keep head first so ct__json_free can find every chunk from the root */
    nc->next = a->head->next;
    a->head->next = nc;
    a->cur = nc;
    nc->used = n;
    return nc->data;
}

static void chunks_free(chunk *c) {
    while (c) {
        chunk *n = c->next;
        free(c);
        c = n;
    }
}

/* ---- parser state --------------------------------------------------------- */

typedef struct {
    ct_json v;
    const char *key; /* in the arena; NULL for array items */
    size_t klen;
} slot;

typedef struct {
    ct_json_type type; /* CT_JSON_ARR or CT_JSON_OBJ */
    size_t base;       /* first child in the value stack */
} frame;

typedef struct {
    const unsigned char *s, *end, *start;
    const char *name;
    arena a;
    slot *stk;
    size_t top, cap;
} parser;

/* Line and column (1-based; columns in UTF-8 characters) of p, for messages. */
static void position(const parser *ps, const unsigned char *p, size_t *line, size_t *col) {
    size_t l = 1, c = 1;
    for (const unsigned char *q = ps->start; q < p && q < ps->end; q++) {
        if (*q == '\n') { l++; c = 1; }
        else if ((*q & 0xC0) != 0x80) c++;
    }
    *line = l;
    *col = c;
}

static ct_status fail_at(const parser *ps, const unsigned char *p, const char *what) {
    size_t line, col;
    position(ps, p, &line, &col);
    return ct__err(CT_ERR_FORMAT, "%s:%zu:%zu: %s", ps->name, line, col, what);
}

static ct_status oom(const parser *ps) {
    return ct__err(CT_ERR_NOMEM, "%s: out of memory while parsing JSON", ps->name);
}

/* Push an empty slot; returns its index or (size_t)-1 on OOM. */
static size_t push(parser *ps) {
    if (ps->top == ps->cap) {
        size_t ncap = ps->cap ? ps->cap * 2 : 256, bytes;
        if (ct__mul_ovf(ncap, sizeof(slot), &bytes)) return (size_t)-1;
        slot *n = realloc(ps->stk, bytes);
        if (!n) return (size_t)-1;
        ps->stk = n;
        ps->cap = ncap;
    }
    slot *sl = &ps->stk[ps->top];
    memset(sl, 0, sizeof *sl);
    return ps->top++;
}

static const unsigned char *skip_ws(const unsigned char *p, const unsigned char *end) {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

/* ---- strings -------------------------------------------------------------- */

static int hex4(const unsigned char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return 0;
        v = v * 16 + d;
    }
    *out = v;
    return 1;
}

static size_t put_utf8(unsigned char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    size_t avail = (size_t)(end - p);
    if (c >= 0xC2 && c <= 0xDF) return (avail >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && p[1] >= 0xA0) return 0; /* encoded surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0; /* overlong */
        if (c == 0xF4 && p[1] >= 0x90) return 0; /* > U+10FFFF */
        return 4;
    }
    return 0;
}

/* Parse the string whose opening quote is at *pp. On success *out and *olen hold a
 * NUL-terminated copy in the arena and *pp points past the closing quote. */
static ct_status parse_string(parser *ps, const unsigned char **pp, char **out, size_t *olen) {
    const unsigned char *q = *pp + 1, *end = ps->end, *body = q;
    /* pass 1: validate and find the closing quote (also the exact output bound) */
    int escaped = 0;
    for (;;) {
        if (q >= end) return fail_at(ps, *pp, "unterminated string");
        unsigned c = *q;
        if (c == '"') break;
        if (c < 0x20) {
            char m[80];
            snprintf(m, sizeof m, "control character U+%04X in string (must be escaped)", c);
            return fail_at(ps, q, m);
        }
        if (c == '\\') {
            escaped = 1;
            if (q + 1 >= end) return fail_at(ps, *pp, "unterminated string");
            q += 2; /* the escape is checked in pass 2; a quote here never ends the string */
        } else if (c < 0x80) {
            q++;
        } else {
            size_t n = utf8_seq(q, end);
            if (!n) return fail_at(ps, q, "invalid UTF-8 in string");
            q += n;
        }
    }
    size_t raw = (size_t)(q - body);
    unsigned char *o = arena_alloc(&ps->a, raw + 1);
    if (!o) return oom(ps);
    *out = (char *)o;
    *pp = q + 1;
    if (!escaped) {
        memcpy(o, body, raw);
        o[raw] = 0;
        *olen = raw;
        return CT_OK;
    }
    /* pass 2: decode escapes (output never longer than the input) */
    size_t n = 0;
    for (const unsigned char *p = body; p < q;) {
        if (*p != '\\') { o[n++] = *p++; continue; }
        unsigned e = p[1], cp;
        switch (e) {
        case '"': case '\\': case '/': o[n++] = (unsigned char)e; p += 2; continue;
        case 'b': o[n++] = '\b'; p += 2; continue;
        case 'f': o[n++] = '\f'; p += 2; continue;
        case 'n': o[n++] = '\n'; p += 2; continue;
        case 'r': o[n++] = '\r'; p += 2; continue;
        case 't': o[n++] = '\t'; p += 2; continue;
        case 'u': break;
        default: return fail_at(ps, p, "invalid escape in string (allowed: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
        }
        if (q - p < 6 || !hex4(p + 2, &cp)) return fail_at(ps, p, "\\u must be followed by 4 hex digits");
        if (cp >= 0xDC00 && cp <= 0xDFFF) return fail_at(ps, p, "lone low surrogate in \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned lo;
            if (q - p < 12 || p[6] != '\\' || p[7] != 'u' || !hex4(p + 8, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                return fail_at(ps, p, "high surrogate in \\u escape not followed by a low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        }
        p += 6;
        n += put_utf8(o + n, cp);
    }
    o[n] = 0;
    *olen = n;
    return CT_OK;
}

/* ---- numbers -------------------------------------------------------------- */

static locale_t g_c_locale;
static pthread_once_t g_locale_once = PTHREAD_ONCE_INIT;
static void make_c_locale(void) { g_c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

static int is_digit(unsigned c) { return c - '0' < 10u; }

/* Parse an RFC 8259 number at *pp into *out; *pp advances past it. */
static ct_status parse_number(parser *ps, const unsigned char **pp, double *out) {
    const unsigned char *p = *pp, *end = ps->end, *s = p;
    int neg = 0, simple = 1;
    if (p < end && *p == '-') { neg = 1; p++; }
    if (p >= end || !is_digit(*p)) return fail_at(ps, s, "invalid number (expected a digit)");
    uint64_t iv = 0;
    int nd = 0;
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p)) return fail_at(ps, s, "invalid number (leading zero)");
    } else {
        while (p < end && is_digit(*p)) {
            if (nd < 18) iv = iv * 10 + (uint64_t)(*p - '0');
            nd++;
            p++;
        }
    }
    if (p < end && *p == '.') {
        simple = 0;
        p++;
        if (p >= end || !is_digit(*p)) return fail_at(ps, s, "invalid number (expected a digit after '.')");
        while (p < end && is_digit(*p)) p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        simple = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || !is_digit(*p)) return fail_at(ps, s, "invalid number (expected a digit in the exponent)");
        while (p < end && is_digit(*p)) p++;
    }
    *pp = p;
    if (simple && nd <= 15) { /* exact in a double */
        *out = neg ? -(double)iv : (double)iv;
        return CT_OK;
    }
    /* general case: strtod in the C locale on a NUL-terminated copy */
    size_t len = (size_t)(p - s);
    char buf[64], *tmp = buf;
    if (len >= sizeof buf && !(tmp = malloc(len + 1))) return oom(ps);
    memcpy(tmp, s, len);
    tmp[len] = 0;
    pthread_once(&g_locale_once, make_c_locale);
    double v = g_c_locale ? strtod_l(tmp, NULL, g_c_locale) : strtod(tmp, NULL);
    if (tmp != buf) free(tmp);
    if (isinf(v)) return fail_at(ps, s, "number out of range for a double");
    *out = v;
    return CT_OK;
}

/* ---- the parse loop ------------------------------------------------------- */

static int lit(const unsigned char *p, const unsigned char *end, const char *w, size_t n) {
    return (size_t)(end - p) >= n && memcmp(p, w, n) == 0;
}

/* Close the innermost frame: move its children from the value stack into
 * the arena and store the container in the parent's slot. */
static ct_status close_frame(parser *ps, const frame *f) {
    size_t n = ps->top - f->base;
    ct_json *dst = &ps->stk[f->base - 1].v;
    ct_json *vals = NULL;
    dst->type = f->type;
    if (n) {
        size_t bytes;
        if (ct__mul_ovf(n, sizeof(ct_json), &bytes) || !(vals = arena_alloc(&ps->a, bytes))) return oom(ps);
        for (size_t i = 0; i < n; i++) vals[i] = ps->stk[f->base + i].v;
    }
    if (f->type == CT_JSON_ARR) {
        dst->u.arr.items = vals;
        dst->u.arr.n = n;
    } else {
        char **keys = NULL;
        size_t *klens = NULL;
        if (n) {
            keys = arena_alloc(&ps->a, n * sizeof(char *)); /* n * sizeof(ct_json) did not overflow */
            klens = arena_alloc(&ps->a, n * sizeof(size_t));
            if (!keys || !klens) return oom(ps);
            for (size_t i = 0; i < n; i++) {
                keys[i] = (char *)ps->stk[f->base + i].key;
                klens[i] = ps->stk[f->base + i].klen;
            }
        }
        dst->u.obj.keys = keys;
        dst->u.obj.klens = klens;
        dst->u.obj.vals = vals;
        dst->u.obj.n = n;
    }
    ps->top = f->base;
    return CT_OK;
}

static ct_status parse_all(parser *ps) {
    frame fr[CT_JSON_MAX_DEPTH];
    int depth = 0;
    const unsigned char *p = ps->s, *end = ps->end;
    size_t cur; /* slot receiving the next value */
    ct_status st;
    if (push(ps) == (size_t)-1) return oom(ps); /* slot 0: the root */
    cur = 0;
    p = skip_ws(p, end);

value:
    if (p >= end) return fail_at(ps, p, depth ? "unexpected end of input, expected a value" : "empty input, expected a JSON value");
    switch (*p) {
    case '{': case '[': {
        if (depth == CT_JSON_MAX_DEPTH) {
            char m[64];
            snprintf(m, sizeof m, "nesting deeper than %d levels", CT_JSON_MAX_DEPTH);
            return fail_at(ps, p, m);
        }
        int obj = *p == '{';
        fr[depth].type = obj ? CT_JSON_OBJ : CT_JSON_ARR;
        fr[depth].base = ps->top;
        depth++;
        p = skip_ws(p + 1, end);
        if (p < end && *p == (obj ? '}' : ']')) { p++; goto close; }
        if (obj) goto key;
        if ((cur = push(ps)) == (size_t)-1) return oom(ps);
        goto value;
    }
    case '"': {
        char *s;
        size_t n;
        if ((st = parse_string(ps, &p, &s, &n)) != CT_OK) return st;
        ps->stk[cur].v.type = CT_JSON_STR;
        ps->stk[cur].v.u.str.s = s;
        ps->stk[cur].v.u.str.len = n;
        goto after;
    }
    case 't': case 'f': case 'n':
        if (lit(p, end, "true", 4)) { ps->stk[cur].v.type = CT_JSON_BOOL; ps->stk[cur].v.u.b = 1; p += 4; }
        else if (lit(p, end, "false", 5)) { ps->stk[cur].v.type = CT_JSON_BOOL; ps->stk[cur].v.u.b = 0; p += 5; }
        else if (lit(p, end, "null", 4)) { ps->stk[cur].v.type = CT_JSON_NULL; p += 4; }
        else return fail_at(ps, p, "invalid literal (expected true, false or null)");
        goto after;
    default:
        if (*p == '-' || is_digit(*p)) {
            double d = 0;
            if ((st = parse_number(ps, &p, &d)) != CT_OK) return st;
            ps->stk[cur].v.type = CT_JSON_NUM;
            ps->stk[cur].v.u.num = d;
            goto after;
        }
        return fail_at(ps, p, "unexpected character, expected a value");
    }

key: {
    if (p >= end || *p != '"') return fail_at(ps, p, p >= end ? "unexpected end of input, expected a string key" : "expected a string key");
    char *k;
    size_t kn;
    if ((st = parse_string(ps, &p, &k, &kn)) != CT_OK) return st;
    p = skip_ws(p, end);
    if (p >= end || *p != ':') return fail_at(ps, p, "expected ':' after object key");
    p = skip_ws(p + 1, end);
    if ((cur = push(ps)) == (size_t)-1) return oom(ps);
    ps->stk[cur].key = k;
    ps->stk[cur].klen = kn;
    goto value;
}

close:
    depth--;
    if ((st = close_frame(ps, &fr[depth])) != CT_OK) return st;
    /* fallthrough */

after:
    p = skip_ws(p, end);
    if (depth == 0) {
        if (p != end) return fail_at(ps, p, "unexpected data after the JSON value");
        return CT_OK;
    }
    if (p >= end) return fail_at(ps, p, fr[depth - 1].type == CT_JSON_OBJ ? "unexpected end of input, expected ',' or '}'"
                                                                     : "unexpected end of input, expected ',' or ']'");
    if (fr[depth - 1].type == CT_JSON_ARR) {
        if (*p == ']') { p++; goto close; }
        if (*p != ',') return fail_at(ps, p, "expected ',' or ']' in array");
        p = skip_ws(p + 1, end);
        if ((cur = push(ps)) == (size_t)-1) return oom(ps);
        goto value;
    }
    if (*p == '}') { p++; goto close; }
    if (*p != ',') return fail_at(ps, p, "expected ',' or '}' in object");
    p = skip_ws(p + 1, end);
    goto key;
}

ct_status ct__json_parse(const char *text, size_t len, const char *name, ct_json **out) {
    *out = NULL;
    if (!name) name = "<json>";
    if (!text && len) return ct__err(CT_ERR_ARG, "%s: NULL text", name);
    parser ps;
    memset(&ps, 0, sizeof ps);
    ps.start = ps.s = (const unsigned char *)(text ? text : "");
    ps.end = ps.s + len;
    ps.name = name;
    /* first chunk: sized from the input so small documents need one malloc */
    size_t cap = len < ARENA_MIN ? ARENA_MIN : (len / 2 < ARENA_MAX ? len / 2 : ARENA_MAX);
    ps.a.head = ps.a.cur = chunk_new(cap);
    if (!ps.a.head) return oom(&ps);
    ps.a.next_cap = cap;
    ct_json *root = arena_alloc(&ps.a, sizeof(ct_json)); /* at head->data[0] */
    if (len >= 3 && memcmp(ps.s, "\xEF\xBB\xBF", 3) == 0) ps.s += 3;
    ct_status st = parse_all(&ps);
    if (st == CT_OK) *root = ps.stk[0].v;
    free(ps.stk);
    if (st != CT_OK) {
        chunks_free(ps.a.head);
        return st;
    }
    *out = root;
    return CT_OK;
}

void ct__json_free(ct_json *j) {
    if (!j) return;
    chunks_free((chunk *)((unsigned char *)j - offsetof(chunk, data)));
}

/* ---- lookups -------------------------------------------------------------- */

const ct_json *ct__json_get(const ct_json *j, const char *key) {
    if (!j || j->type != CT_JSON_OBJ || !key) return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < j->u.obj.n; i++)
        if (j->u.obj.klens[i] == kl && memcmp(j->u.obj.keys[i], key, kl) == 0) return &j->u.obj.vals[i];
    return NULL;
}

int ct__json_get_num(const ct_json *obj, const char *key, double *out) {
    const ct_json *v = ct__json_get(obj, key);
    if (!v || v->type != CT_JSON_NUM) return 0;
    *out = v->u.num;
    return 1;
}

int ct__json_get_int(const ct_json *obj, const char *key, int64_t *out) {
    const ct_json *v = ct__json_get(obj, key);
    if (!v || v->type != CT_JSON_NUM) return 0;
    double d = v->u.num;
    /* integral and inside int64 (2^63 itself is not representable) */
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != floor(d)) return 0;
    *out = (int64_t)d;
    return 1;
}

int ct__json_get_bool(const ct_json *obj, const char *key, int *out) {
    const ct_json *v = ct__json_get(obj, key);
    if (!v || v->type != CT_JSON_BOOL) return 0;
    *out = v->u.b;
    return 1;
}

const char *ct__json_get_str(const ct_json *obj, const char *key) {
    const ct_json *v = ct__json_get(obj, key);
    return v && v->type == CT_JSON_STR ? v->u.str.s : NULL;
}

typedef struct {
    const char *k;
    size_t n;
} keyref;

static int keyref_cmp(const void *a, const void *b) {
    const keyref *x = a, *y = b;
    if (x->n != y->n) return x->n < y->n ? -1 : 1;
    return memcmp(x->k, y->k, x->n);
}

int ct__json_has_dup_keys(const ct_json *j) {
    if (!j || j->type != CT_JSON_OBJ) return 0;
    size_t n = j->u.obj.n;
    if (n < 32) { /* small objects: pairwise */
        for (size_t a = 0; a < n; a++)
            for (size_t b = a + 1; b < n; b++)
                if (j->u.obj.klens[a] == j->u.obj.klens[b] &&
                    memcmp(j->u.obj.keys[a], j->u.obj.keys[b], j->u.obj.klens[a]) == 0)
                    return 1;
        return 0;
    }
    keyref *r = malloc(n * sizeof *r); /* n * sizeof(ct_json) already fit in memory */
    if (!r) { /* no memory for the fast path: fall back to pairwise */
        for (size_t a = 0; a < n; a++)
            for (size_t b = a + 1; b < n; b++)
                if (j->u.obj.klens[a] == j->u.obj.klens[b] &&
                    memcmp(j->u.obj.keys[a], j->u.obj.keys[b], j->u.obj.klens[a]) == 0)
                    return 1;
        return 0;
    }
    for (size_t i = 0; i < n; i++) r[i] = (keyref){j->u.obj.keys[i], j->u.obj.klens[i]};
    qsort(r, n, sizeof *r, keyref_cmp);
    int dup = 0;
    for (size_t i = 1; i < n && !dup; i++) dup = keyref_cmp(&r[i - 1], &r[i]) == 0;
    free(r);
    return dup;
}
