/* src/train/cls_data.c — classification data sets: rows of text + label from
 * JSONL (or a JSON array), TSV or CSV, encoded to token ids, with a sorted
 * label set (include/ctune/classify.h, docs/classify.md).
 *
 * Memory: all examples' ids back to back in one buffer, with per-example
 * offset, line, label index and truncated flag beside it. While a training
 * file loads, labels get indices in order of first appearance (a small
 * open-addressing hash); at the end they are sorted and the indices remapped.
 *
 * Left out: streaming files larger than memory (a file is read whole),
 * multi-label rows, label weights, and texts split over several columns
 * (premise/hypothesis pairs: one text column is read).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/rng.h"
#include "ctune/classify.h"
#include "formats/json.h"
#include "tokenizer/tok_internal.h"

enum { BAD_KEEP = 5, LIST_MAX = 16 };
static const char *const TEXT_KEYS[3] = {"text", "sentence", "content"};

struct ct_cls_dataset {
    ct_cls_format fmt;
    int header;                                   /* TSV/CSV: a header row was read */
    int labeled;                                  /* 0: an unlabeled file, every label -1 */
    int32_t *ids; size_t ntok, captok;            /* all examples back to back */
    size_t *off; int *line; int *label; uint8_t *trunc; size_t n, cap; /* example i: ids[off[i], off[i+1]) */
    char **labels; int n_labels;                  /* (n_labels) the label set, owned */
    size_t *count;                                /* (n_labels) examples per label */
    size_t n_truncated, n_bad, n_unseen;
    char *bad_msgs;                               /* first BAD_KEEP messages, '\n'-separated */
    int max_tokens;
};

/* ---- the dataset ------------------------------------------------------------------- */

static ct_cls_dataset *ds_new(void) {
    ct_cls_dataset *ds = ct__calloc(1, sizeof *ds);
    if (!ds) return NULL;
    ds->labeled = 1;
    ds->off = ct__calloc(1, sizeof *ds->off);
    if (!ds->off) { free(ds); return NULL; }
    return ds;
}

void ct_cls_dataset_free(ct_cls_dataset *ds) {
    if (!ds) return;
    free(ds->ids);
    free(ds->off);
    free(ds->line);
    free(ds->label);
    free(ds->trunc);
    for (int i = 0; i < ds->n_labels; i++) free(ds->labels[i]);
    free(ds->labels);
    free(ds->count);
    free(ds->bad_msgs);
    free(ds);
}

static ct_status ds_push(ct_cls_dataset *ds, const int32_t *ids, size_t n, int line, int label, int trunc) {
    if (ds->ntok + n > ds->captok) {
        size_t cap = ds->captok ? ds->captok : 4096;
        while (cap < ds->ntok + n) cap *= 2;
        int32_t *p = ct__realloc(ds->ids, cap * sizeof *p);
        if (!p) return ct__err(CT_ERR_NOMEM, "classify data: out of memory (%zu tokens)", cap);
        ds->ids = p;
        ds->captok = cap;
    }
    if (ds->n + 1 >= ds->cap) {
        size_t cap = ds->cap ? 2 * ds->cap : 256;
        size_t *po = ct__realloc(ds->off, (cap + 1) * sizeof *po);
        if (po) ds->off = po;
        int *pl = po ? ct__realloc(ds->line, cap * sizeof *pl) : NULL;
        if (pl) ds->line = pl;
        int *pb = pl ? ct__realloc(ds->label, cap * sizeof *pb) : NULL;
        if (pb) ds->label = pb;
        uint8_t *pt = pb ? ct__realloc(ds->trunc, cap) : NULL;
        if (!pt) return ct__err(CT_ERR_NOMEM, "classify data: out of memory (%zu examples)", cap);
        ds->trunc = pt;
        ds->cap = cap;
    }
    if (n) memcpy(ds->ids + ds->ntok, ids, n * sizeof *ids);
    ds->ntok += n;
    ds->line[ds->n] = line;
    ds->label[ds->n] = label;
    ds->trunc[ds->n] = (uint8_t)trunc;
    ds->off[++ds->n] = ds->ntok;
    if ((int)n > ds->max_tokens) ds->max_tokens = (int)n;
    ds->n_truncated += (size_t)trunc;
    return CT_OK;
}

/* ---- label table: string -> index in order of insertion ---------------------------------- */

typedef struct {
    char **s; int n, cap;  /* (n) owned strings */
    int *slot; size_t mask; /* open addressing: index + 1, 0 = empty */
} labtab;

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static int lt_find(const labtab *t, const char *s, size_t n) {
    if (!t->slot) return -1;
    for (size_t i = fnv1a(s, n) & t->mask;; i = (i + 1) & t->mask) {
        int k = t->slot[i] - 1;
        if (k < 0) return -1;
        if (strlen(t->s[k]) == n && !memcmp(t->s[k], s, n)) return k;
    }
}

static ct_status lt_rehash(labtab *t, size_t size) {
    int *slot = ct__calloc(size, sizeof *slot);
    if (!slot) return ct__err(CT_ERR_NOMEM, "classify data: out of memory (labels)");
    free(t->slot);
    t->slot = slot;
    t->mask = size - 1;
    for (int k = 0; k < t->n; k++) {
        size_t i = fnv1a(t->s[k], strlen(t->s[k])) & t->mask;
        while (t->slot[i]) i = (i + 1) & t->mask;
        t->slot[i] = k + 1;
    }
    return CT_OK;
}

/* Add s (not present) and return its index via *k. */
static ct_status lt_add(labtab *t, const char *s, size_t n, int *k) {
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        char **p = ct__realloc(t->s, (size_t)cap * sizeof *p);
        if (!p) return ct__err(CT_ERR_NOMEM, "classify data: out of memory (labels)");
        t->s = p;
        t->cap = cap;
    }
    char *c = ct__strndup(s, n);
    if (!c) return ct__err(CT_ERR_NOMEM, "classify data: out of memory (labels)");
    t->s[t->n++] = c;
    ct_status st = CT_OK;
    if (!t->slot || (size_t)t->n * 2 > t->mask + 1) st = lt_rehash(t, t->slot ? 2 * (t->mask + 1) : 64);
    else {
        size_t i = fnv1a(s, n) & t->mask;
        while (t->slot[i]) i = (i + 1) & t->mask;
        t->slot[i] = t->n;
    }
    *k = t->n - 1;
    return st;
}

static void lt_free(labtab *t) {
    for (int i = 0; i < t->n; i++) free(t->s[i]);
    free(t->s);
    free(t->slot);
}

/* "a, b, c" (the first LIST_MAX, then "... (N in all)") into buf. */
static void join_names(char *const *s, int n, char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < n && k + 1 < cap; i++) {
        int w = i < LIST_MAX ? snprintf(buf + k, cap - k, "%s%s", i ? ", " : "", s[i])
                             : snprintf(buf + k, cap - k, ", ... (%d in all)", n);
        if (w < 0) break;
        k += (size_t)w;
        if (i >= LIST_MAX) break;
    }
}

/* ---- rows -------------------------------------------------------------------------- */

typedef struct {
    const ct_tokenizer *tok;
    const ct_cls_opts *o;
    const char *path;
    const char *label_key;
    int fixed;             /* label set given: unseen labels are errors */
    int labeled;           /* -1 until the first row */
    labtab lt;
    ct_cls_dataset *ds;
    char where[4200];      /* "file:line" of the row at hand */
    int first_unseen_line; char first_unseen[64];
    int fatal;             /* the last row error is not skippable with skip_bad_rows (an unseen label) */
} loader;

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \t\r\n", s[i]) || !s[i]) return 0;
    return 1;
}

/* One row: text[0..tn), label[0..ln) (has_label 0: none). */
static ct_status add_row(loader *L, const char *text, size_t tn, const char *lab, size_t ln, int has_label, int line) {
    const char *w = L->where;
    if (!has_label && !L->o->allow_unlabeled)
        return ct__err(CT_ERR_FORMAT, "%s: row has no '%s'", w, L->label_key);
    if (L->labeled >= 0 && has_label != L->labeled)
        return ct__err(CT_ERR_FORMAT, "%s: row %s a '%s', but the rows before %s", w, has_label ? "has" : "has no",
                       L->label_key, has_label ? "have none" : "have one");
    int label = -1;
    if (has_label) {
        while (ln && (*lab == ' ' || *lab == '\t')) { lab++; ln--; }
        while (ln && strchr(" \t\r\n", lab[ln - 1])) ln--;
        if (!ln) return ct__err(CT_ERR_FORMAT, "%s: empty label", w);
        if (memchr(lab, 0, ln)) return ct__err(CT_ERR_FORMAT, "%s: the label contains a NUL character", w);
        label = lt_find(&L->lt, lab, ln);
        if (label < 0 && L->fixed) {
            if (L->o->skip_unseen_labels) {
                if (!L->ds->n_unseen++) {
                    L->first_unseen_line = line;
                    snprintf(L->first_unseen, sizeof L->first_unseen, "%.*s", (int)(ln < 60 ? ln : 60), lab);
                }
                return CT_OK;
            }
            char known[1024];
            join_names(L->lt.s, L->lt.n, known, sizeof known);
            L->fatal = 1; /* not a malformed row: skip_unseen_labels decides */
            return ct__err(CT_ERR_FORMAT, "%s: label '%.*s' is not in the label set (%s)", w,
                           (int)(ln < 200 ? ln : 200), lab, known);
        }
    }
    if (is_blank(text, tn)) return ct__err(CT_ERR_FORMAT, "%s: empty text", w);
    int32_t *ids = NULL;
    size_t n = 0;
    ct_status st = ct_tokenizer_encode(L->tok, text, tn, ct_tokenizer_adds_bos(L->tok) ? CT_TOK_ADD_BOS : 0, &ids, &n);
    if (st) return ct__err_prefix(st, "%s", w);
    int trunc = 0;
    if (L->o->max_len > 0 && n > (size_t)L->o->max_len) { n = (size_t)L->o->max_len; trunc = 1; }
    if (!n) st = ct__err(CT_ERR_FORMAT, "%s: the text encodes to no tokens", w);
    /* a new label joins the set only with a row that is kept */
    if (!st && has_label && label < 0) st = lt_add(&L->lt, lab, ln, &label);
    if (!st) st = ds_push(L->ds, ids, n, line, label, trunc);
    if (!st) L->labeled = has_label; /* set by the first row kept */
    free(ids);
    return st;
}

/* A bad row: fatal, or skipped and remembered. */
static ct_status bad_row(loader *L, ct_status st) {
    if (st != CT_ERR_FORMAT || !L->o->skip_bad_rows || L->fatal) return st;
    ct_cls_dataset *ds = L->ds;
    if (ds->n_bad++ < BAD_KEEP) {
        const char *msg = ct_errmsg();
        size_t old = ds->bad_msgs ? strlen(ds->bad_msgs) : 0, n = strlen(msg);
        char *p = ct__realloc(ds->bad_msgs, old + n + 2);
        if (!p) return ct__err(CT_ERR_NOMEM, "classify data: out of memory");
        if (old) p[old++] = '\n';
        memcpy(p + old, msg, n + 1);
        ds->bad_msgs = p;
    }
    return CT_OK;
}

/* ---- JSONL / JSON array --------------------------------------------------------------- */

static ct_status json_row(loader *L, const ct_json *row, int line) {
    const char *w = L->where;
    if (row->type != CT_JSON_OBJ) return ct__err(CT_ERR_FORMAT, "%s: row is not a JSON object", w);
    const char *tkey = L->o->text_key;
    const ct_json *t = NULL;
    if (tkey) t = ct__json_get(row, tkey);
    else
        for (int i = 0; i < 3 && !t; i++) t = ct__json_get(row, tkey = TEXT_KEYS[i]);
    if (!t) {
        if (L->o->text_key) return ct__err(CT_ERR_FORMAT, "%s: row has no '%s'", w, L->o->text_key);
        return ct__err(CT_ERR_FORMAT, "%s: row has no text: none of 'text', 'sentence', 'content' "
                       "(name the key with text_key)", w);
    }
    if (t->type != CT_JSON_STR) return ct__err(CT_ERR_FORMAT, "%s: '%s' is not a string", w, tkey);
    const ct_json *l = ct__json_get(row, L->label_key);
    char num[32];
    const char *lab = NULL;
    size_t ln = 0;
    if (l && l->type == CT_JSON_STR) { lab = l->u.str.s; ln = l->u.str.len; }
    else if (l && l->type == CT_JSON_NUM) {
        double v = l->u.num;
        if (!(v == floor(v) && fabs(v) < 9007199254740992.0))
            return ct__err(CT_ERR_FORMAT, "%s: '%s' %g is not an integer", w, L->label_key, v);
        ln = (size_t)snprintf(num, sizeof num, "%lld", (long long)v);
        lab = num;
    } else if (l && l->type != CT_JSON_NULL)
        return ct__err(CT_ERR_FORMAT, "%s: '%s' is neither a string nor an integer", w, L->label_key);
    return add_row(L, t->u.str.s, t->u.str.len, lab, ln, lab != NULL, line);
}

/* Parse one line; a JSON error reads "data.jsonl:17: bad JSON at column 5: ...". */
static ct_status parse_line(const char *s, size_t n, const char *where, ct_json **row) {
    ct_status st = ct__json_parse(s, n, where, row);
    if (st != CT_ERR_FORMAT) return st;
    const char *msg = ct_errmsg();
    size_t wn = strlen(where);
    if (strncmp(msg, where, wn) || strncmp(msg + wn, ":1:", 3)) return st;
    char rest[512];
    snprintf(rest, sizeof rest, "%s", msg + wn + 3);
    char *colon = strchr(rest, ':');
    if (!colon) return st;
    *colon = 0;
    return ct__err(CT_ERR_FORMAT, "%s: bad JSON at column %s:%s", where, rest, colon + 1);
}

static ct_status load_jsonl(loader *L, const char *text, size_t len) {
    int line = 0;
    ct_status st = CT_OK;
    for (size_t pos = 0; pos < len && !st;) {
        const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + 1;
        line++;
        if (is_blank(s, n)) continue;
        snprintf(L->where, sizeof L->where, "%s:%d", L->path, line);
        ct_json *row = NULL;
        ct_status rs = parse_line(s, n, L->where, &row);
        if (!rs) rs = json_row(L, row, line);
        ct__json_free(row);
        if (rs) st = bad_row(L, rs);
    }
    return st;
}

static ct_status load_array(loader *L, const char *text, size_t len) {
    ct_json *root = NULL;
    ct_status st = ct__json_parse(text, len, L->path, &root);
    if (st) return st;
    if (root->type != CT_JSON_ARR) {
        ct__json_free(root);
        return ct__err(CT_ERR_FORMAT, "%s: a JSON data file must hold one array of rows", L->path);
    }
    for (size_t i = 0; i < root->u.arr.n && !st; i++) {
        snprintf(L->where, sizeof L->where, "%s: element %zu", L->path, i + 1);
        ct_status rs = json_row(L, &root->u.arr.items[i], (int)(i + 1));
        if (rs) st = bad_row(L, rs);
    }
    ct__json_free(root);
    return st;
}

/* ---- TSV / CSV ------------------------------------------------------------------------ */

typedef struct { size_t off, len; } fld; /* a field: bytes [off, off + len) of rec.buf */

typedef struct {
    const char *s; size_t len, pos;
    int line;              /* line of s[pos] */
    char delim; int quotes;
    ct__buf buf;           /* the record's fields, unescaped */
    fld *f; size_t nf, fcap;
    int start;             /* line the record starts on */
} reader;

static ct_status put_field(reader *r, size_t off) {
    if (r->nf == r->fcap) {
        size_t cap = r->fcap ? 2 * r->fcap : 8;
        fld *p = ct__realloc(r->f, cap * sizeof *p);
        if (!p) return ct__err(CT_ERR_NOMEM, "classify data: out of memory");
        r->f = p;
        r->fcap = cap;
    }
    r->f[r->nf].off = off;
    r->f[r->nf++].len = r->buf.n - off;
    return CT_OK;
}

/* The next record into r->f / r->buf; *got = 0 at the end of the file. Lines
 * that hold only spaces/tabs are skipped. Quoted fields (RFC 4180): '""' is a
 * quote, newlines are kept; a quote inside an unquoted field is literal. */
static ct_status read_record(reader *r, const char *path, int *got) {
    const char *s = r->s;
    for (;;) { /* blank lines */
        size_t e = r->pos;
        while (e < r->len && (s[e] == ' ' || s[e] == '\t' || s[e] == '\r')) e++;
        if (e < r->len && s[e] != '\n') break;
        if (e >= r->len) { r->pos = r->len; *got = 0; return CT_OK; }
        r->pos = e + 1;
        r->line++;
    }
    *got = 1;
    r->start = r->line;
    r->buf.n = 0;
    r->nf = 0;
    ct_status st = CT_OK;
    for (;;) {
        size_t off = r->buf.n;
        if (r->quotes && r->pos < r->len && s[r->pos] == '"') {
            int open = r->line;
            r->pos++;
            for (;;) {
                if (r->pos >= r->len)
                    return ct__err(CT_ERR_FORMAT, "%s:%d: unterminated quoted field (opened on line %d)", path,
                                   r->start, open);
                size_t q = r->pos;
                while (q < r->len && s[q] != '"') r->line += s[q++] == '\n';
                if ((st = ct__buf_put(&r->buf, s + r->pos, q - r->pos))) return st;
                r->pos = q;
                if (q >= r->len) continue;
                if (q + 1 < r->len && s[q + 1] == '"') {
                    if ((st = ct__buf_put(&r->buf, "\"", 1))) return st;
                    r->pos = q + 2;
                } else { r->pos = q + 1; break; }
            }
            size_t p = r->pos;
            if (p < r->len && s[p] != r->delim && s[p] != '\n' && !(s[p] == '\r' && (p + 1 == r->len || s[p + 1] == '\n')))
                return ct__err(CT_ERR_FORMAT, "%s:%d: text after the closing quote of field %zu (a quote inside a "
                               "quoted field is written \"\")", path, r->line, r->nf + 1);
            if (p < r->len && s[p] == '\r') r->pos++;
        } else {
            size_t e = r->pos;
            while (e < r->len && s[e] != r->delim && s[e] != '\n') e++;
            size_t end = e;
            if ((e >= r->len || s[e] == '\n') && end > r->pos && s[end - 1] == '\r') end--;
            if ((st = ct__buf_put(&r->buf, s + r->pos, end - r->pos))) return st;
            r->pos = e;
        }
        if ((st = put_field(r, off))) return st;
        if (r->pos < r->len && s[r->pos] == r->delim) { r->pos++; continue; }
        if (r->pos < r->len) { r->pos++; r->line++; } /* the '\n' */
        return CT_OK;
    }
}

static int field_is(const reader *r, size_t i, const char *name) {
    const char *p = r->buf.p + r->f[i].off;
    size_t n = r->f[i].len;
    while (n && (*p == ' ' || *p == '\t')) { p++; n--; }
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
    return strlen(name) == n && !memcmp(p, name, n);
}

static int find_field(const reader *r, const char *name) {
    for (size_t i = 0; i < r->nf; i++)
        if (field_is(r, i, name)) return (int)i;
    return -1;
}

/* "a, b" of the header's fields, for messages. */
static void header_names(const reader *r, char *buf, size_t cap) {
    size_t k = 0;
    buf[0] = 0;
    for (size_t i = 0; i < r->nf && i < LIST_MAX && k + 1 < cap; i++) {
        int w = snprintf(buf + k, cap - k, "%s'%.*s'", i ? ", " : "", (int)(r->f[i].len < 40 ? r->f[i].len : 40),
                         r->buf.p + r->f[i].off);
        if (w < 0) break;
        k += (size_t)w;
    }
}

static ct_status load_delimited(loader *L, const char *text, size_t len) {
    const ct_cls_opts *o = L->o;
    reader r = {text, len, 0, 1, L->ds->fmt == CT_CLS_CSV ? ',' : '\t', 0, {0}, NULL, 0, 0, 0};
    r.quotes = o->quoting == CT_CLS_QUOTES || (o->quoting == CT_CLS_QUOTES_AUTO && r.delim == ',');
    if (!(r.buf.p = ct__malloc(r.buf.cap = 256))) return ct__err(CT_ERR_NOMEM, "classify data: out of memory");
    const char *dname = r.delim == ',' ? "," : "<TAB>";
    int got = 0;
    ct_status st = read_record(&r, L->path, &got);
    if (!st && !got) st = ct__err(CT_ERR_FORMAT, "%s: empty file", L->path);
    int lc = -1, tc = -1, header = 0, hline = r.start;
    size_t ncols = r.nf;
    if (!st) {
        lc = find_field(&r, L->label_key);
        if (o->text_key) tc = find_field(&r, o->text_key);
        else
            for (int i = 0; i < 3 && tc < 0; i++) tc = find_field(&r, TEXT_KEYS[i]);
        header = o->header == CT_CLS_HEADER ? 1 : o->header == CT_CLS_NO_HEADER ? 0 : lc >= 0 || tc >= 0;
        char names[1024];
        header_names(&r, names, sizeof names);
        if (header) {
            if (tc < 0 && lc >= 0 && !o->text_key && ncols == 2) tc = 1 - lc;
            if (lc < 0 && !o->allow_unlabeled)
                st = ct__err(CT_ERR_FORMAT, "%s:%d: the header (%s) has no label column '%s' (name it with label_key)",
                             L->path, hline, names, L->label_key);
            else if (tc < 0 && o->text_key)
                st = ct__err(CT_ERR_FORMAT, "%s:%d: the header (%s) has no text column '%s'", L->path, hline, names,
                             o->text_key);
            else if (tc < 0)
                st = ct__err(CT_ERR_FORMAT, "%s:%d: the header (%s) has no text column: none of 'text', 'sentence', "
                             "'content' (name it with text_key)", L->path, hline, names);
            else if (tc == lc)
                st = ct__err(CT_ERR_FORMAT, "%s:%d: the label and the text are the same column '%s'", L->path, hline,
                             L->label_key);
        } else {
            lc = 0;
            tc = 1;
            ncols = 2;
            if (r.nf != 2)
                st = ct__err(CT_ERR_FORMAT, "%s:%d: no header (no '%s' column among %s) and %zu fields: a file "
                             "without a header holds label%stext", L->path, hline, L->label_key, names, r.nf, dname);
        }
    }
    L->ds->header = header;
    if (!st && header) st = read_record(&r, L->path, &got);
    while (!st && got) {
        snprintf(L->where, sizeof L->where, "%s:%d", L->path, r.start);
        ct_status rs;
        if (r.nf != ncols) {
            if (header)
                rs = ct__err(CT_ERR_FORMAT, "%s: %zu fields, the header (line %d) has %zu", L->where, r.nf, hline, ncols);
            else
                rs = ct__err(CT_ERR_FORMAT, "%s: %zu fields, a file without a header holds label%stext (2)", L->where,
                             r.nf, dname);
        } else {
            const fld *t = &r.f[tc];
            const fld *l = lc >= 0 ? &r.f[lc] : NULL;
            rs = add_row(L, r.buf.p + t->off, t->len, l ? r.buf.p + l->off : NULL, l ? l->len : 0, l != NULL, r.start);
        }
        if (rs) st = bad_row(L, rs);
        if (!st) st = read_record(&r, L->path, &got);
    }
    free(r.buf.p);
    free(r.f);
    return st;
}

/* ---- loading -------------------------------------------------------------------------- */

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

/* Format from the extension, else from the first non-blank byte / first line. */
static ct_status detect(const char *path, const char *text, size_t len, ct_cls_format *f) {
    if (ends_with(path, ".jsonl") || ends_with(path, ".json") || ends_with(path, ".ndjson")) { *f = CT_CLS_JSONL; return CT_OK; }
    if (ends_with(path, ".tsv") || ends_with(path, ".tab")) { *f = CT_CLS_TSV; return CT_OK; }
    if (ends_with(path, ".csv")) { *f = CT_CLS_CSV; return CT_OK; }
    size_t i = 0;
    while (i < len && strchr(" \t\r\n", text[i]) && text[i]) i++;
    if (i < len && (text[i] == '{' || text[i] == '[')) { *f = CT_CLS_JSONL; return CT_OK; }
    const char *nl = memchr(text + i, '\n', len - i);
    size_t n = nl ? (size_t)(nl - text - i) : len - i;
    if (memchr(text + i, '\t', n)) *f = CT_CLS_TSV;
    else if (memchr(text + i, ',', n)) *f = CT_CLS_CSV;
    else if (i == len) return ct__err(CT_ERR_FORMAT, "%s: empty file", path);
    else
        return ct__err(CT_ERR_FORMAT, "%s: cannot tell the format: the first line has no tab or comma and does not "
                       "start with '{' (set the format: jsonl, tsv or csv)", path);
    return CT_OK;
}

/* 1 when s is a canonical decimal integer of at most 18 digits ("0", "-12", not "007", "+1"). */
static int canon_int(const char *s, long long *v) {
    const char *p = s + (*s == '-');
    size_t n = strlen(p);
    if (!n || n > 18 || (p[0] == '0' && (n > 1 || p != s))) return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9') return 0;
    *v = strtoll(s, NULL, 10);
    return 1;
}

typedef struct { const char *s; long long v; int old; } sortkey;
static int cmp_num(const void *a, const void *b) {
    long long x = ((const sortkey *)a)->v, y = ((const sortkey *)b)->v;
    return (x > y) - (x < y);
}
static int cmp_str(const void *a, const void *b) { return strcmp(((const sortkey *)a)->s, ((const sortkey *)b)->s); }

/* Move the label table into ds: sorted (training) or as given (fixed), with counts. */
static ct_status finish_labels(loader *L) {
    ct_cls_dataset *ds = L->ds;
    int K = L->lt.n;
    ds->count = ct__calloc(K ? (size_t)K : 1, sizeof *ds->count);
    sortkey *k = ct__malloc((K ? (size_t)K : 1) * sizeof *k);
    int *remap = ct__malloc((K ? (size_t)K : 1) * sizeof *remap);
    ds->labels = ct__malloc((K ? (size_t)K : 1) * sizeof *ds->labels);
    if (!ds->count || !k || !remap || !ds->labels) {
        free(k);
        free(remap);
        return ct__err(CT_ERR_NOMEM, "classify data: out of memory");
    }
    int numeric = 1;
    for (int i = 0; i < K; i++) {
        k[i].s = L->lt.s[i];
        k[i].old = i;
        numeric &= canon_int(k[i].s, &k[i].v);
    }
    if (!L->fixed) qsort(k, (size_t)K, sizeof *k, numeric ? cmp_num : cmp_str);
    for (int i = 0; i < K; i++) {
        remap[k[i].old] = i;
        ds->labels[i] = L->lt.s[k[i].old];
    }
    ds->n_labels = K;
    L->lt.n = 0; /* the strings now belong to ds */
    for (size_t i = 0; i < ds->n; i++)
        if (ds->label[i] >= 0) ds->count[ds->label[i] = remap[ds->label[i]]]++;
    free(k);
    free(remap);
    return CT_OK;
}

static ct_status load(const char *path, const ct_tokenizer *tok, const ct_cls_opts *opts, const char *const *labels,
                      int n_labels, ct_cls_dataset **out) {
    if (!out) return ct__err(CT_ERR_ARG, "ct_cls_dataset_load: out is NULL");
    *out = NULL;
    if (!path || !tok) return ct__err(CT_ERR_ARG, "ct_cls_dataset_load: %s is NULL", path ? "tok" : "path");
    ct_cls_opts o0 = {0};
    const ct_cls_opts *o = opts ? opts : &o0;
    if (o->max_len < 0) return ct__err(CT_ERR_ARG, "%s: max_len %d is negative", path, o->max_len);
    if (o->format < CT_CLS_AUTO || o->format > CT_CLS_CSV) return ct__err(CT_ERR_ARG, "%s: unknown format %d", path, (int)o->format);
    loader L = {tok, o, path, o->label_key ? o->label_key : "label", labels != NULL, -1, {0}, ds_new(), "", 0, "", 0};
    if (!L.ds) return ct__err(CT_ERR_NOMEM, "classify data: out of memory");
    ct_status st = CT_OK;
    for (int i = 0; labels && i < n_labels && !st; i++) {
        int k = -1;
        if (!labels[i] || !*labels[i]) st = ct__err(CT_ERR_ARG, "%s: label %d of the label set is empty", path, i);
        else if (lt_find(&L.lt, labels[i], strlen(labels[i])) >= 0)
            st = ct__err(CT_ERR_ARG, "%s: label '%s' appears twice in the label set", path, labels[i]);
        else st = lt_add(&L.lt, labels[i], strlen(labels[i]), &k);
    }
    if (!st && labels && n_labels < 1) st = ct__err(CT_ERR_ARG, "%s: the label set is empty", path);
    char *text = NULL;
    size_t len = 0;
    if (!st) st = ct__read_file(path, &text, &len);
    if (!st) {
        const char *t = text;
        if (len >= 3 && !memcmp(t, "\xEF\xBB\xBF", 3)) { t += 3; len -= 3; } /* UTF-8 byte order mark */
        ct_cls_format f = o->format;
        if (f == CT_CLS_AUTO) st = detect(path, t, len, &f);
        L.ds->fmt = f;
        if (!st && f == CT_CLS_JSONL) {
            size_t i = 0;
            while (i < len && strchr(" \t\r\n", t[i]) && t[i]) i++;
            st = i < len && t[i] == '[' ? load_array(&L, t, len) : load_jsonl(&L, t, len);
        } else if (!st) st = load_delimited(&L, t, len);
    }
    free(text);
    if (!st && L.ds->n == 0)
        st = ct__err(CT_ERR_FORMAT, "%s: no examples (%zu rows skipped as bad, %zu with labels not in the label set)",
                     path, L.ds->n_bad, L.ds->n_unseen);
    if (!st) {
        L.ds->labeled = L.labeled != 0;
        st = finish_labels(&L);
    }
    lt_free(&L.lt);
    if (st) { ct_cls_dataset_free(L.ds); return st; }
    ct_cls_dataset *ds = L.ds;
    if (ds->n_bad) ct__log(CT_LOG_WARN, "%s: %zu bad rows skipped; the first:\n%s", path, ds->n_bad, ds->bad_msgs);
    if (ds->n_unseen)
        ct__log(CT_LOG_WARN, "%s: %zu rows skipped: label not in the label set (the first: line %d, '%s')", path,
                ds->n_unseen, L.first_unseen_line, L.first_unseen);
    if (ds->labeled) {
        int empty = 0;
        for (int i = 0; i < ds->n_labels; i++) empty += !ds->count[i];
        if (empty) {
            char names[1024];
            size_t k = 0;
            names[0] = 0;
            for (int i = 0; i < ds->n_labels && k + 64 < sizeof names; i++)
                if (!ds->count[i]) k += (size_t)snprintf(names + k, sizeof names - k, "%s'%.40s'", k ? ", " : "", ds->labels[i]);
            ct__log(CT_LOG_WARN, "%s: %d of %d classes have no example: %s", path, empty, ds->n_labels, names);
        }
    }
    if (ds->n_truncated)
        ct__log(CT_LOG_INFO, "%s: %zu of %zu texts truncated to %d tokens", path, ds->n_truncated, ds->n, o->max_len);
    *out = ds;
    return CT_OK;
}

ct_status ct_cls_dataset_load(const char *path, const ct_tokenizer *tok, const ct_cls_opts *opts, ct_cls_dataset **out) {
    return load(path, tok, opts, NULL, 0, out);
}

ct_status ct_cls_dataset_load_labels(const char *path, const ct_tokenizer *tok, const ct_cls_opts *opts,
                                     const char *const *labels, int n_labels, ct_cls_dataset **out) {
    if (!labels) {
        if (out) *out = NULL;
        return ct__err(CT_ERR_ARG, "ct_cls_dataset_load_labels: labels is NULL");
    }
    return load(path, tok, opts, labels, n_labels, out);
}

/* ---- access ----------------------------------------------------------------------------- */

size_t ct_cls_dataset_size(const ct_cls_dataset *ds) { return ds ? ds->n : 0; }
int ct_cls_dataset_has_labels(const ct_cls_dataset *ds) { return ds ? ds->labeled : 0; }
int ct_cls_dataset_num_labels(const ct_cls_dataset *ds) { return ds ? ds->n_labels : 0; }
ct_cls_format ct_cls_dataset_format(const ct_cls_dataset *ds) { return ds ? ds->fmt : CT_CLS_AUTO; }
int ct_cls_dataset_has_header(const ct_cls_dataset *ds) { return ds ? ds->header : 0; }

ct_cls_example ct_cls_dataset_get(const ct_cls_dataset *ds, size_t i) {
    ct_cls_example e = {NULL, 0, -1, 0, 0};
    if (!ds || i >= ds->n) return e;
    e.ids = ds->ids + ds->off[i];
    e.n = (int)(ds->off[i + 1] - ds->off[i]);
    e.label = ds->label[i];
    e.line = ds->line[i];
    e.truncated = ds->trunc[i];
    return e;
}

const char *ct_cls_dataset_label(const ct_cls_dataset *ds, int i) {
    return ds && i >= 0 && i < ds->n_labels ? ds->labels[i] : NULL;
}

const char *const *ct_cls_dataset_labels(const ct_cls_dataset *ds) {
    return ds ? (const char *const *)ds->labels : NULL;
}

int ct_cls_dataset_label_index(const ct_cls_dataset *ds, const char *label) {
    for (int i = 0; ds && label && i < ds->n_labels; i++)
        if (!strcmp(ds->labels[i], label)) return i;
    return -1;
}

size_t ct_cls_dataset_class_count(const ct_cls_dataset *ds, int i) {
    return ds && i >= 0 && i < ds->n_labels ? ds->count[i] : 0;
}

const char *ct_cls_format_name(ct_cls_format f) {
    switch (f) {
    case CT_CLS_AUTO: return "auto";
    case CT_CLS_JSONL: return "jsonl";
    case CT_CLS_TSV: return "tsv";
    case CT_CLS_CSV: return "csv";
    }
    return "?";
}

void ct_cls_dataset_stats(const ct_cls_dataset *ds, ct_cls_stats *st) {
    memset(st, 0, sizeof *st);
    if (!ds) return;
    st->n_examples = ds->n;
    st->n_tokens = ds->ntok;
    st->n_truncated = ds->n_truncated;
    st->n_bad_rows = ds->n_bad;
    st->n_unseen = ds->n_unseen;
    st->max_tokens = ds->max_tokens;
    st->n_labels = ds->n_labels;
    for (int i = 0; ds->labeled && i < ds->n_labels; i++) st->n_empty_classes += !ds->count[i];
}

size_t ct_cls_dataset_bad_rows(const ct_cls_dataset *ds, const char **msgs) {
    if (msgs) *msgs = ds && ds->bad_msgs ? ds->bad_msgs : "";
    return ds ? ds->n_bad : 0;
}

/* snprintf that never runs past cap (k stays <= cap). */
static size_t cat(char *buf, size_t cap, size_t k, const char *fmt, ...) CT__PRINTF(4, 5);
static size_t cat(char *buf, size_t cap, size_t k, const char *fmt, ...) {
    if (k >= cap) return k;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + k, cap - k, fmt, ap);
    va_end(ap);
    if (w < 0) return k;
    return k + (size_t)w >= cap ? cap : k + (size_t)w;
}

void ct_cls_dataset_summary(const ct_cls_dataset *ds, char *buf, size_t cap) {
    if (!cap) return;
    buf[0] = 0;
    if (!ds) return;
    const char *kind = ds->fmt != CT_CLS_JSONL ? (ds->header ? ", header" : ds->fmt == CT_CLS_TSV ?
                       ", no header: label<TAB>text" : ", no header: label,text") : "";
    size_t k = cat(buf, cap, 0, "%zu examples (%s%s), ", ds->n, ct_cls_format_name(ds->fmt), kind);
    if (!ds->labeled) k = cat(buf, cap, k, "unlabeled");
    else {
        k = cat(buf, cap, k, "%d labels (", ds->n_labels);
        for (int i = 0; i < ds->n_labels && i < 8; i++)
            k = cat(buf, cap, k, "%s%.40s %zu", i ? ", " : "", ds->labels[i], ds->count[i]);
        k = cat(buf, cap, k, "%s)", ds->n_labels > 8 ? ", ..." : "");
    }
    k = cat(buf, cap, k, ", %zu tokens, longest %d", ds->ntok, ds->max_tokens);
    if (ds->n_truncated) k = cat(buf, cap, k, ", %zu truncated", ds->n_truncated);
    if (ds->n_bad) k = cat(buf, cap, k, ", %zu bad rows skipped", ds->n_bad);
    if (ds->n_unseen) cat(buf, cap, k, ", %zu with unseen labels skipped", ds->n_unseen);
}

/* ---- stratified split ------------------------------------------------------------------- */

static ct_cls_dataset *subset(const ct_cls_dataset *ds, const uint8_t *pick, uint8_t want, ct_status *st) {
    ct_cls_dataset *d = ds_new();
    if (!d) { *st = ct__err(CT_ERR_NOMEM, "classify data: out of memory"); return NULL; }
    d->fmt = ds->fmt;
    d->header = ds->header;
    d->labeled = ds->labeled;
    d->labels = ct__calloc(ds->n_labels ? (size_t)ds->n_labels : 1, sizeof *d->labels);
    d->count = ct__calloc(ds->n_labels ? (size_t)ds->n_labels : 1, sizeof *d->count);
    if (!d->labels || !d->count) *st = ct__err(CT_ERR_NOMEM, "classify data: out of memory");
    for (int i = 0; i < ds->n_labels && !*st; i++, d->n_labels++)
        if (!(d->labels[i] = ct__strdup(ds->labels[i]))) *st = ct__err(CT_ERR_NOMEM, "classify data: out of memory");
    for (size_t i = 0; i < ds->n && !*st; i++)
        if (pick[i] == want) {
            ct_cls_example e = ct_cls_dataset_get(ds, i);
            *st = ds_push(d, e.ids, (size_t)e.n, e.line, e.label, e.truncated);
            if (e.label >= 0) d->count[e.label]++;
        }
    if (*st) { ct_cls_dataset_free(d); return NULL; }
    return d;
}

ct_status ct_cls_dataset_split(const ct_cls_dataset *ds, double fraction, uint64_t seed, ct_cls_dataset **train,
                               ct_cls_dataset **val) {
    if (!train || !val) return ct__err(CT_ERR_ARG, "ct_cls_dataset_split: NULL output");
    *train = *val = NULL;
    if (!ds) return ct__err(CT_ERR_ARG, "ct_cls_dataset_split: ds is NULL");
    if (!ds->labeled) return ct__err(CT_ERR_ARG, "ct_cls_dataset_split: a stratified split needs labels");
    if (!(fraction >= 0 && fraction < 1))
        return ct__err(CT_ERR_RANGE, "validation split %g is outside [0, 1)", fraction);
    size_t n = ds->n, K = (size_t)ds->n_labels;
    size_t *idx = ct__malloc((n ? n : 1) * sizeof *idx), *start = ct__calloc(K + 1, sizeof *start);
    uint8_t *pick = ct__calloc(n ? n : 1, 1);
    ct_status st = CT_OK;
    if (!idx || !start || !pick) st = ct__err(CT_ERR_NOMEM, "classify data: out of memory");
    else {
        /* idx: the examples grouped by class (counting sort), file order within a class */
        for (size_t c = 0; c < K; c++) start[c + 1] = start[c] + ds->count[c];
        size_t *fill = ct__malloc((K ? K : 1) * sizeof *fill);
        if (!fill) st = ct__err(CT_ERR_NOMEM, "classify data: out of memory");
        else {
            memcpy(fill, start, K * sizeof *fill);
            for (size_t i = 0; i < n; i++) idx[fill[ds->label[i]]++] = i;
            free(fill);
            ct__rng r;
            ct__rng_seed(&r, seed);
            size_t total = 0, big = 0;
            for (size_t c = 0; c < K; c++) {
                size_t nc = ds->count[c], k = (size_t)llround(fraction * (double)nc);
                if (k >= nc) k = nc ? nc - 1 : 0;
                ct__rng_shuffle(&r, idx + start[c], nc);
                for (size_t j = 0; j < k; j++) pick[idx[start[c] + j]] = 1;
                total += k;
                if (nc > ds->count[big]) big = c;
            }
            if (fraction > 0 && total == 0) {
                if (ds->count[big] < 2)
                    st = ct__err(CT_ERR_RANGE, "validation split %g of %zu examples: no class has two examples to "
                                 "give one to validation", fraction, n);
                else pick[idx[start[big]]] = 1;
            }
        }
        if (!st) *train = subset(ds, pick, 0, &st);
        if (!st) *val = subset(ds, pick, 1, &st);
        if (st) { ct_cls_dataset_free(*train); *train = NULL; }
    }
    free(idx);
    free(start);
    free(pick);
    return st;
}
