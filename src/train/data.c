/* src/train/data.c — data sets for training: rows of a JSONL / JSON-array
 * file, or a plain text file, turned into token ids and a loss mask
 * (include/ctune/data.h, docs/data.md).
 *
 * An example is built from segments, each encoded on its own and marked
 * trained or not: prompt | completion + EOS, or for chat the rendered text cut
 * at the assistant spans that ct_chat_render_spans reports. Encoding the parts
 * separately (rather than the joined text, then guessing which tokens belong
 * to the completion) keeps the boundary exact: no token straddles prompt and
 * completion, so the mask is never off by a token. The price is that a
 * tokenizer can split differently at the seam than it would in the joined
 * text; the common case, a space at the seam, is handled so that the ids are
 * those of the joined text (see seam() below).
 *
 * Left out here: packing several short examples into one sequence, and
 * streaming files larger than memory (a file is read whole).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/rng.h"
#include "ctune/chat.h"
#include "ctune/data.h"
#include "formats/json.h"
#include "tokenizer/tok_internal.h"

enum { BAD_KEEP = 5 }; /* messages of skipped rows kept for the warning */

struct ct_dataset {
    ct_data_format fmt;
    int32_t *ids; uint8_t *mask; size_t ntok, captok; /* all examples back to back */
    size_t *off; int *line; size_t n, cap;            /* example i: [off[i], off[i+1]); off has n+1 */
    size_t n_truncated, n_dropped, n_bad;
    char *bad_msgs;                                    /* first BAD_KEEP messages, '\n'-separated */
    int max_tokens;
};

/* ---- the dataset under construction ---------------------------------------------- */

static ct_dataset *ds_new(ct_data_format fmt) {
    ct_dataset *ds = ct__calloc(1, sizeof *ds);
    if (!ds) return NULL;
    ds->fmt = fmt;
    ds->off = ct__calloc(1, sizeof *ds->off);
    if (!ds->off) { free(ds); return NULL; }
    return ds;
}

void ct_dataset_free(ct_dataset *ds) {
    if (!ds) return;
    free(ds->ids);
    free(ds->mask);
    free(ds->off);
    free(ds->line);
    free(ds->bad_msgs);
    free(ds);
}

/* Append one example of n tokens. */
static ct_status ds_push(ct_dataset *ds, const int32_t *ids, const uint8_t *mask, size_t n, int line) {
    if (ds->ntok + n > ds->captok) {
        size_t cap = ds->captok ? ds->captok : 4096;
        while (cap < ds->ntok + n) cap *= 2;
        int32_t *pi = ct__realloc(ds->ids, cap * sizeof *pi);
        if (pi) ds->ids = pi;
        uint8_t *pm = pi ? ct__realloc(ds->mask, cap) : NULL;
        if (!pm) return ct__err(CT_ERR_NOMEM, "data: out of memory (%zu tokens)", cap);
        ds->mask = pm;
        ds->captok = cap;
    }
    if (ds->n + 1 >= ds->cap) {
        size_t cap = ds->cap ? 2 * ds->cap : 256;
        size_t *po = ct__realloc(ds->off, (cap + 1) * sizeof *po);
        if (po) ds->off = po;
        int *pl = po ? ct__realloc(ds->line, cap * sizeof *pl) : NULL;
        if (!pl) return ct__err(CT_ERR_NOMEM, "data: out of memory (%zu examples)", cap);
        ds->line = pl;
        ds->cap = cap;
    }
    memcpy(ds->ids + ds->ntok, ids, n * sizeof *ids);
    memcpy(ds->mask + ds->ntok, mask, n);
    ds->ntok += n;
    ds->line[ds->n] = line;
    ds->off[++ds->n] = ds->ntok;
    if ((int)n > ds->max_tokens) ds->max_tokens = (int)n;
    return CT_OK;
}

/* ---- building one example from segments ------------------------------------------- */

typedef struct {
    const ct_tokenizer *tok;
    const ct_data_opts *o;
    const char *path;
    int spm;                /* every encode call starts with a space: SentencePiece's dummy prefix
                               "▁", or byte-level BPE with add_prefix_space */
    ct__ids ids;            /* the example being built */
    ct__buf mask;           /* (ids.n) 0/1 */
    ct_dataset *ds;
} builder;

static ct_status put_ids(builder *b, const int32_t *ids, size_t n, int train) {
    ct_status st = CT_OK;
    for (size_t i = 0; i < n && !st; i++) {
        uint8_t m = (uint8_t)((train || b->o->train_on_prompt) && b->ids.n > 0);
        if (!(st = ct__ids_push(&b->ids, ids[i]))) st = ct__buf_put(&b->mask, &m, 1);
    }
    return st;
}

static ct_status put_text(builder *b, const char *s, size_t n, int train) {
    if (!n) return CT_OK;
    int32_t *ids = NULL;
    size_t k = 0;
    ct_status st = ct_tokenizer_encode(b->tok, s, n, 0, &ids, &k);
    if (!st) st = put_ids(b, ids, k, train);
    free(ids);
    return st;
}

static void begin(builder *b, int add_bos) {
    b->ids.n = 0;
    b->mask.n = 0;
    int bos = ct_tokenizer_bos(b->tok);
    if (add_bos && bos >= 0) {
        int32_t id = bos;
        put_ids(b, &id, 1, 0); /* can only fail on OOM, seen again at the next push */
    }
}

/* Truncate to max_len (keeping the start), drop it when no target is left, store it. */
static ct_status finish(builder *b, int line) {
    size_t n = b->ids.n;
    int trunc = 0;
    if (b->o->max_len > 0 && n > (size_t)b->o->max_len) { n = (size_t)b->o->max_len; trunc = 1; }
    size_t targets = 0;
    for (size_t i = 0; i < n; i++) targets += (uint8_t)b->mask.p[i];
    b->ds->n_truncated += trunc;
    if (!targets) { b->ds->n_dropped++; return CT_OK; }
    return ds_push(b->ds, b->ids.v, (const uint8_t *)b->mask.p, n, line);
}

/* Segments text[cut[k], cut[k+1]) for k < nseg, trained when train[k].
 * seam(): at each boundary with a space beside it, the ids are made those of
 * the joined text. Byte-level BPE glues a space to the word after it ("Ġword"),
 * so a space ending segment k moves to the start of segment k+1. A tokenizer
 * that starts every call with a space (SentencePiece's dummy prefix "▁",
 * ByteLevel add_prefix_space) has that space play the part of one space at
 * the start of segment k+1, so that space is dropped (from the end of segment
 * k or the start of segment k+1). */
static ct_status put_segments(builder *b, const char *text, const size_t *cut, const uint8_t *train, int nseg) {
    size_t *lo = ct__malloc(2 * (size_t)nseg * sizeof *lo), *hi = lo + nseg; /* segment k: text[lo[k], hi[k]) */
    if (!lo) return ct__err(CT_ERR_NOMEM, "data: out of memory");
    for (int k = 0; k < nseg; k++) { lo[k] = cut[k]; hi[k] = cut[k + 1]; }
    for (int k = 1; k < nseg; k++) {
        if (hi[k - 1] <= lo[k - 1] || hi[k] <= lo[k]) continue; /* an empty side: nothing to mend */
        if (text[hi[k - 1] - 1] == ' ') {
            hi[k - 1]--;
            if (!b->spm) lo[k]--; /* byte-level: the space goes with the next word; SPM: dropped */
        } else if (b->spm && text[lo[k]] == ' ') {
            lo[k]++;
        }
    }
    ct_status st = CT_OK;
    for (int k = 0; k < nseg && !st; k++)
        if (hi[k] > lo[k]) st = put_text(b, text + lo[k], hi[k] - lo[k], train[k]);
    free(lo);
    return st;
}

/* ---- rows ----------------------------------------------------------------------- */

const char *ct_data_format_name(ct_data_format f) {
    switch (f) {
    case CT_DATA_AUTO: return "auto";
    case CT_DATA_TEXT: return "text";
    case CT_DATA_PROMPT_COMPLETION: return "prompt-completion";
    case CT_DATA_ALPACA: return "alpaca";
    case CT_DATA_CHAT: return "chat";
    case CT_DATA_PLAIN: return "plain";
    }
    return "?";
}

static const char *row_name(ct_data_format f) {
    switch (f) {
    case CT_DATA_TEXT: return "text";
    case CT_DATA_PROMPT_COMPLETION: return "prompt-completion";
    case CT_DATA_ALPACA: return "Alpaca";
    case CT_DATA_CHAT: return "chat";
    default: return "?";
    }
}

/* The kind of row an object looks like, by its keys; CT_DATA_AUTO when none. */
static ct_data_format row_kind(const ct_json *row) {
    if (!row || row->type != CT_JSON_OBJ) return CT_DATA_AUTO;
    if (ct__json_get(row, "messages")) return CT_DATA_CHAT;
    if (ct__json_get(row, "instruction")) return CT_DATA_ALPACA;
    if (ct__json_get(row, "prompt") || ct__json_get(row, "completion")) return CT_DATA_PROMPT_COMPLETION;
    if (ct__json_get(row, "text")) return CT_DATA_TEXT;
    return CT_DATA_AUTO;
}

/* A required string member; NULL after recording an error naming the row. */
static const ct_json *need_str(const ct_json *row, const char *key, int nonempty, ct_data_format f,
                               const char *where) {
    const ct_json *v = ct__json_get(row, key);
    if (!v || v->type != CT_JSON_STR) {
        ct__err(CT_ERR_FORMAT, "%s: %s row has no '%s' string", where, row_name(f), key);
        return NULL;
    }
    if (nonempty && v->u.str.len == 0) {
        ct__err(CT_ERR_FORMAT, "%s: %s row has an empty '%s'", where, row_name(f), key);
        return NULL;
    }
    return v;
}

static ct_status prompt_completion(builder *b, const char *p, size_t pn, const char *c, size_t cn, int line) {
    /* one buffer so that the seam rule sees both sides */
    size_t n = pn + cn;
    char *text = ct__malloc(n + 1);
    if (!text) return ct__err(CT_ERR_NOMEM, "data: out of memory");
    memcpy(text, p, pn);
    memcpy(text + pn, c, cn);
    size_t cut[3] = {0, pn, n};
    static const uint8_t train[2] = {0, 1};
    begin(b, ct_tokenizer_adds_bos(b->tok));
    ct_status st = put_segments(b, text, cut, train, 2);
    free(text);
    int eos = ct_tokenizer_eos(b->tok);
    if (!st && eos >= 0) { int32_t id = eos; st = put_ids(b, &id, 1, 1); }
    return st ? st : finish(b, line);
}

static const char *ALPACA_INPUT =
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n### Instruction:\n%s\n\n### Input:\n%s\n\n"
    "### Response:\n";
static const char *ALPACA_NO_INPUT =
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n%s\n\n### Response:\n";

static ct_status alpaca_row(builder *b, const ct_json *row, const char *where, int line) {
    const ct_json *ins = need_str(row, "instruction", 1, CT_DATA_ALPACA, where);
    const ct_json *out = ins ? need_str(row, "output", 1, CT_DATA_ALPACA, where) : NULL;
    if (!out) return CT_ERR_FORMAT;
    const ct_json *in = ct__json_get(row, "input");
    if (in && in->type != CT_JSON_STR && in->type != CT_JSON_NULL)
        return ct__err(CT_ERR_FORMAT, "%s: Alpaca row: 'input' is not a string", where);
    int has_in = in && in->type == CT_JSON_STR && in->u.str.len > 0;
    size_t cap = strlen(ALPACA_INPUT) + ins->u.str.len + (has_in ? in->u.str.len : 0) + 1;
    char *p = ct__malloc(cap);
    if (!p) return ct__err(CT_ERR_NOMEM, "data: out of memory");
    /* %s stops at an embedded NUL; such text is rejected rather than cut */
    if (strlen(ins->u.str.s) != ins->u.str.len || (has_in && strlen(in->u.str.s) != in->u.str.len)) {
        free(p);
        return ct__err(CT_ERR_FORMAT, "%s: Alpaca row: text contains a NUL character", where);
    }
    int pn = has_in ? snprintf(p, cap, ALPACA_INPUT, ins->u.str.s, in->u.str.s)
                    : snprintf(p, cap, ALPACA_NO_INPUT, ins->u.str.s);
    ct_status st = prompt_completion(b, p, (size_t)pn, out->u.str.s, out->u.str.len, line);
    free(p);
    return st;
}

static ct_status chat_row(builder *b, const ct_json *row, const char *where, int line) {
    const ct_json *ms = ct__json_get(row, "messages");
    if (!ms || ms->type != CT_JSON_ARR) return ct__err(CT_ERR_FORMAT, "%s: chat row: 'messages' is not an array", where);
    size_t n = ms->u.arr.n, nasst = 0;
    ct_chat_msg *m = ct__calloc(n ? n : 1, sizeof *m);
    if (!m) return ct__err(CT_ERR_NOMEM, "data: out of memory");
    ct_status st = CT_OK;
    for (size_t i = 0; i < n && !st; i++) {
        const ct_json *e = &ms->u.arr.items[i];
        const char *role = ct__json_get_str(e, "role"), *content = ct__json_get_str(e, "content");
        if (e->type != CT_JSON_OBJ) st = ct__err(CT_ERR_FORMAT, "%s: chat row: message %zu is not an object", where, i);
        else if (!role) st = ct__err(CT_ERR_FORMAT, "%s: chat row: message %zu has no 'role' string", where, i);
        else if (!content) st = ct__err(CT_ERR_FORMAT, "%s: chat row: message %zu has no 'content' string", where, i);
        else if (!strcmp(role, "assistant") && !*content)
            st = ct__err(CT_ERR_FORMAT, "%s: chat row: message %zu (assistant) has empty content", where, i);
        m[i].role = role;
        m[i].content = content;
        nasst += role && !strcmp(role, "assistant");
    }
    if (!st && !nasst) st = ct__err(CT_ERR_FORMAT, "%s: chat row has no assistant message", where);
    char *text = NULL;
    ct_chat_span *sp = NULL;
    size_t nsp = 0, *cut = NULL;
    uint8_t *train = NULL;
    int add_bos = 0;
    if (!st && (st = ct_chat_render_spans(b->tok, m, n, 0, &text, &add_bos, &sp, &nsp)))
        st = ct__err_prefix(st == CT_ERR_ARG ? CT_ERR_FORMAT : st, "%s", where);
    if (!st) {
        /* segments: [0, s0.start) prompt, [s0.start, s0.turn_end) trained, ..., tail */
        int nseg = (int)(2 * nsp + 1);
        cut = ct__malloc((size_t)(nseg + 1) * sizeof *cut);
        train = ct__malloc((size_t)nseg);
        if (!cut || !train) st = ct__err(CT_ERR_NOMEM, "data: out of memory");
        else {
            cut[0] = 0;
            for (size_t i = 0; i < nsp; i++) {
                cut[2 * i + 1] = sp[i].start;
                cut[2 * i + 2] = sp[i].turn_end;
                train[2 * i] = 0;
                train[2 * i + 1] = 1;
            }
            train[nseg - 1] = 0;
            cut[nseg] = strlen(text);
            begin(b, add_bos);
            st = put_segments(b, text, cut, train, nseg);
            if (!st) st = finish(b, line);
        }
    }
    free(cut);
    free(train);
    free(sp);
    free(text);
    free(m);
    return st;
}

/* One parsed row of a file whose rows are of kind f. */
static ct_status do_row(builder *b, const ct_json *row, ct_data_format f, const char *where, int line, int first_line) {
    if (row->type != CT_JSON_OBJ) return ct__err(CT_ERR_FORMAT, "%s: row is not a JSON object", where);
    ct_data_format k = row_kind(row);
    if (k != CT_DATA_AUTO && k != f)
        return ct__err(CT_ERR_FORMAT, "%s: a %s row, but the file's rows are %s (from line %d)", where, row_name(k),
                       row_name(f), first_line);
    switch (f) {
    case CT_DATA_TEXT: {
        const ct_json *t = need_str(row, "text", 1, f, where);
        if (!t) return CT_ERR_FORMAT;
        begin(b, ct_tokenizer_adds_bos(b->tok));
        ct_status st = put_text(b, t->u.str.s, t->u.str.len, 1);
        int eos = ct_tokenizer_eos(b->tok);
        if (!st && eos >= 0) { int32_t id = eos; st = put_ids(b, &id, 1, 1); }
        return st ? st : finish(b, line);
    }
    case CT_DATA_PROMPT_COMPLETION: {
        const ct_json *p = need_str(row, "prompt", 0, f, where);
        const ct_json *c = p ? need_str(row, "completion", 1, f, where) : NULL;
        if (!c) return CT_ERR_FORMAT;
        return prompt_completion(b, p->u.str.s, p->u.str.len, c->u.str.s, c->u.str.len, line);
    }
    case CT_DATA_ALPACA: return alpaca_row(b, row, where, line);
    case CT_DATA_CHAT: return chat_row(b, row, where, line);
    default: return ct__err(CT_ERR_ARG, "data: format %s has no rows", ct_data_format_name(f));
    }
}

/* A bad row: fatal, or skipped and remembered. */
static ct_status bad_row(builder *b, ct_status st) {
    if (st != CT_ERR_FORMAT || !b->o->skip_bad_rows) return st; /* only malformed rows are skippable */
    ct_dataset *ds = b->ds;
    if (ds->n_bad++ < BAD_KEEP) {
        const char *msg = ct_errmsg();
        size_t old = ds->bad_msgs ? strlen(ds->bad_msgs) : 0, n = strlen(msg);
        char *p = ct__realloc(ds->bad_msgs, old + n + 2);
        if (!p) return ct__err(CT_ERR_NOMEM, "data: out of memory");
        if (old) p[old++] = '\n';
        memcpy(p + old, msg, n + 1);
        ds->bad_msgs = p;
    }
    return CT_OK;
}

/* Parse one JSONL line; a JSON error reads "data.jsonl:17: bad JSON at column 5: ...". */
static ct_status parse_line(const char *s, size_t n, const char *where, ct_json **row) {
    ct_status st = ct__json_parse(s, n, where, row);
    if (st != CT_ERR_FORMAT) return st;
    const char *msg = ct_errmsg();
    size_t wn = strlen(where);
    if (strncmp(msg, where, wn) || strncmp(msg + wn, ":1:", 3)) return st;
    char rest[512];
    snprintf(rest, sizeof rest, "%s", msg + wn + 3); /* "5: expected ','" */
    char *colon = strchr(rest, ':');
    if (!colon) return st;
    *colon = 0;
    return ct__err(CT_ERR_FORMAT, "%s: bad JSON at column %s:%s", where, rest, colon + 1);
}

static ct_status load_jsonl(builder *b, const char *text, size_t len, ct_data_format f) {
    char where[4200];
    int line = 0, first_line = 0;
    ct_status st = CT_OK;
    for (size_t pos = 0; pos < len && !st;) {
        const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + 1;
        line++;
        size_t k = n;
        while (k && (s[k - 1] == '\r' || s[k - 1] == ' ' || s[k - 1] == '\t')) k--;
        size_t i = 0;
        while (i < k && (s[i] == ' ' || s[i] == '\t')) i++;
        if (i == k) continue; /* blank line */
        snprintf(where, sizeof where, "%s:%d", b->path, line);
        ct_json *row = NULL;
        ct_status rs = parse_line(s, k, where, &row);
        if (!rs && f == CT_DATA_AUTO) {
            f = row_kind(row);
            if (f == CT_DATA_AUTO)
                rs = ct__err(CT_ERR_FORMAT, "%s: the first row has none of the known keys: \"text\"; \"prompt\" + "
                             "\"completion\"; \"instruction\" + \"input\" + \"output\"; \"messages\"", where);
            else b->ds->fmt = f;
            if (rs) { ct__json_free(row); return rs; } /* cannot go on without a format */
        }
        if (!first_line && !rs) first_line = line;
        if (!rs) rs = do_row(b, row, f, where, line, first_line);
        ct__json_free(row);
        if (rs) st = bad_row(b, rs);
    }
    return st;
}

static ct_status load_array(builder *b, const char *text, size_t len, ct_data_format f) {
    ct_json *root = NULL;
    ct_status st = ct__json_parse(text, len, b->path, &root);
    if (st) return st;
    if (root->type != CT_JSON_ARR) {
        ct__json_free(root);
        return ct__err(CT_ERR_FORMAT, "%s: a .json data file must hold one array of rows", b->path);
    }
    char where[4200];
    for (size_t i = 0; i < root->u.arr.n && !st; i++) {
        const ct_json *row = &root->u.arr.items[i];
        snprintf(where, sizeof where, "%s: element %zu", b->path, i + 1);
        if (f == CT_DATA_AUTO) {
            f = row_kind(row);
            if (f == CT_DATA_AUTO) {
                st = ct__err(CT_ERR_FORMAT, "%s: the first row has none of the known keys: \"text\"; \"prompt\" + "
                             "\"completion\"; \"instruction\" + \"input\" + \"output\"; \"messages\"", where);
                break;
            }
            b->ds->fmt = f;
        }
        ct_status rs = do_row(b, row, f, where, (int)(i + 1), 1);
        if (rs) st = bad_row(b, rs);
    }
    ct__json_free(root);
    return st;
}

/* Plain text: BOS (if the tokenizer adds it) + the whole file, cut into windows
 * of L = max_len tokens overlapping by one, so that every token but the first
 * is a target exactly once: window w = tokens [w(L-1), w(L-1) + L). */
static ct_status load_plain(builder *b, const char *text, size_t len) {
    int L = b->o->max_len;
    if (L < 2) return ct__err(CT_ERR_ARG, "%s: plain text needs max_len >= 2 (the window length)", b->path);
    begin(b, ct_tokenizer_adds_bos(b->tok));
    ct_status st = put_text(b, text, len, 1);
    if (st) return st;
    size_t n = b->ids.n;
    uint8_t *m = ct__malloc((size_t)L);
    if (!m) return ct__err(CT_ERR_NOMEM, "data: out of memory");
    memset(m, 1, (size_t)L);
    m[0] = 0;
    int w = 0;
    for (size_t s = 0; s + 1 < n && !st; s += (size_t)L - 1) {
        size_t k = n - s < (size_t)L ? n - s : (size_t)L;
        st = ds_push(b->ds, b->ids.v + s, m, k, ++w);
    }
    free(m);
    return st;
}

static int adds_prefix_space(const ct_tokenizer *t) {
    if (t->kind == CT__KIND_SPM) return t->dec_strip_space > 0;
    for (int i = 0; i < t->n_pretoks; i++)
        if (t->pretoks[i].type == CT__PT_BYTELEVEL && t->pretoks[i].add_prefix_space) return 1;
    return 0;
}

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

ct_status ct_dataset_load(const char *path, const ct_tokenizer *tok, const ct_data_opts *opts, ct_dataset **out) {
    if (!out) return ct__err(CT_ERR_ARG, "ct_dataset_load: out is NULL");
    *out = NULL;
    if (!path || !tok) return ct__err(CT_ERR_ARG, "ct_dataset_load: %s is NULL", path ? "tok" : "path");
    ct_data_opts o0 = {0};
    const ct_data_opts *o = opts ? opts : &o0;
    if (o->max_len < 0) return ct__err(CT_ERR_ARG, "%s: max_len %d is negative", path, o->max_len);
    ct_data_format f = o->format;
    if (f == CT_DATA_AUTO && ends_with(path, ".txt")) f = CT_DATA_PLAIN;
    if (f == CT_DATA_CHAT && !ct_chat_format_name(tok))
        return ct__err_prefix(CT_ERR_UNSUPPORTED, "%s: chat rows need a chat template", path);

    char *text = NULL;
    size_t len = 0;
    ct_status st = ct__read_file(path, &text, &len);
    if (st) return st;
    builder b = {tok, o, path, adds_prefix_space(tok), {0}, {0}, ds_new(f)};
    if (!b.ds) { free(text); return ct__err(CT_ERR_NOMEM, "data: out of memory"); }
    if (f == CT_DATA_PLAIN) st = load_plain(&b, text, len);
    else {
        size_t i = 0;
        while (i < len && strchr(" \t\r\n", text[i])) i++;
        st = i < len && text[i] == '[' ? load_array(&b, text, len, f) : load_jsonl(&b, text, len, f);
    }
    free(text);
    free(b.ids.v);
    free(b.mask.p);
    if (!st && b.ds->n == 0)
        st = ct__err(CT_ERR_FORMAT, "%s: no examples (%zu rows skipped as bad, %zu left without targets after "
                     "truncation to max_len %d)", path, b.ds->n_bad, b.ds->n_dropped, o->max_len);
    if (st) { ct_dataset_free(b.ds); return st; }
    if (b.ds->n_dropped)
        ct__log(CT_LOG_WARN, "%s: %zu examples dropped: no completion token left within max_len %d", path,
                b.ds->n_dropped, o->max_len);
    if (b.ds->n_bad)
        ct__log(CT_LOG_WARN, "%s: %zu bad rows skipped; the first:\n%s", path, b.ds->n_bad, b.ds->bad_msgs);
    *out = b.ds;
    return CT_OK;
}

/* ---- access ---------------------------------------------------------------------- */

size_t ct_dataset_size(const ct_dataset *ds) { return ds ? ds->n : 0; }
ct_data_format ct_dataset_format(const ct_dataset *ds) { return ds ? ds->fmt : CT_DATA_AUTO; }

ct_example ct_dataset_get(const ct_dataset *ds, size_t i) {
    ct_example e = {NULL, NULL, 0, 0};
    if (!ds || i >= ds->n) return e;
    e.ids = ds->ids + ds->off[i];
    e.mask = ds->mask + ds->off[i];
    e.n = (int)(ds->off[i + 1] - ds->off[i]);
    e.line = ds->line[i];
    return e;
}

size_t ct_dataset_bad_rows(const ct_dataset *ds, const char **msgs) {
    if (msgs) *msgs = ds && ds->bad_msgs ? ds->bad_msgs : "";
    return ds ? ds->n_bad : 0;
}

void ct_dataset_stats(const ct_dataset *ds, ct_data_stats *st) {
    memset(st, 0, sizeof *st);
    if (!ds) return;
    st->n_examples = ds->n;
    st->n_tokens = ds->ntok;
    for (size_t i = 0; i < ds->ntok; i++) st->n_targets += ds->mask[i];
    st->n_truncated = ds->n_truncated;
    st->n_dropped = ds->n_dropped;
    st->n_bad_rows = ds->n_bad;
    st->max_tokens = ds->max_tokens;
}

void ct_dataset_summary(const ct_dataset *ds, char *buf, size_t cap) {
    ct_data_stats s;
    ct_dataset_stats(ds, &s);
    int k = snprintf(buf, cap, "%zu examples (%s), %zu tokens, %zu targets, longest %d", s.n_examples,
                     ct_data_format_name(ct_dataset_format(ds)), s.n_tokens, s.n_targets, s.max_tokens);
    if (k < 0 || (size_t)k >= cap) return;
    if (s.n_truncated) k += snprintf(buf + k, cap - (size_t)k, ", %zu truncated", s.n_truncated);
    if (k >= 0 && (size_t)k < cap && s.n_dropped) k += snprintf(buf + k, cap - (size_t)k, ", %zu dropped", s.n_dropped);
    if (k >= 0 && (size_t)k < cap && s.n_bad_rows) snprintf(buf + k, cap - (size_t)k, ", %zu bad rows skipped", s.n_bad_rows);
}

/* ---- shuffling and splitting -------------------------------------------------------- */

void ct_data_permutation(size_t n, uint64_t seed, size_t *perm) {
    ct__rng r;
    ct__rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) perm[i] = i;
    ct__rng_shuffle(&r, perm, n);
}

static ct_dataset *subset(const ct_dataset *ds, const uint8_t *pick, uint8_t want, ct_status *st) {
    ct_dataset *d = ds_new(ds->fmt);
    if (!d) { *st = ct__err(CT_ERR_NOMEM, "data: out of memory"); return NULL; }
    for (size_t i = 0; i < ds->n && !*st; i++)
        if (pick[i] == want) {
            ct_example e = ct_dataset_get(ds, i);
            *st = ds_push(d, e.ids, e.mask, (size_t)e.n, e.line);
        }
    if (*st) { ct_dataset_free(d); return NULL; }
    return d;
}

ct_status ct_dataset_split(const ct_dataset *ds, double fraction, uint64_t seed, ct_dataset **train,
                           ct_dataset **val) {
    if (!train || !val) return ct__err(CT_ERR_ARG, "ct_dataset_split: NULL output");
    *train = *val = NULL;
    if (!ds) return ct__err(CT_ERR_ARG, "ct_dataset_split: ds is NULL");
    if (!(fraction >= 0 && fraction < 1))
        return ct__err(CT_ERR_RANGE, "validation split %g is outside [0, 1)", fraction);
    size_t n = ds->n, k = (size_t)llround(fraction * (double)n);
    if (fraction > 0 && k == 0) k = 1;
    if (k >= n)
        return ct__err(CT_ERR_RANGE, "validation split %g of %zu examples leaves none to train on", fraction, n);
    size_t *perm = ct__malloc((n ? n : 1) * sizeof *perm);
    uint8_t *pick = ct__calloc(n ? n : 1, 1);
    ct_status st = CT_OK;
    if (!perm || !pick) st = ct__err(CT_ERR_NOMEM, "data: out of memory");
    else {
        ct_data_permutation(n, seed, perm);
        for (size_t i = 0; i < k; i++) pick[perm[i]] = 1;
        *train = subset(ds, pick, 0, &st);
        if (!st) *val = subset(ds, pick, 1, &st);
        if (st) { ct_dataset_free(*train); *train = NULL; }
    }
    free(perm);
    free(pick);
    return st;
}
