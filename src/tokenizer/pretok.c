/* src/tokenizer/pretok.c — normalizers and pre-tokenizers, with the semantics
 * of Hugging Face `tokenizers`:
 *   normalizers: Prepend (non-empty text only), Replace (string or regex),
 *     Strip, NFC (nfc.c);
 *   pre-tokenizers: Split (regex or string; behaviours removed, isolated,
 *     merged_with_previous, merged_with_next, contiguous; invert), ByteLevel
 *     (add_prefix_space, use_regex = GPT-2's pattern), Metaspace (replacement,
 *     prepend_scheme always/first/never, split). Digits, Whitespace,
 *     WhitespaceSplit and Punctuation are expressed as Split by the loader.
 * Regexes run with PCRE2 (UTF | UCP, JIT when available); invalid UTF-8 in the
 * text never matches a character class but is carried along in the gaps. The
 * match loop mirrors the Oniguruma iterator `tokenizers` uses (an empty match
 * right after the previous match is skipped by advancing one character).
 * Also the regex lists behind GGUF's tokenizer.ggml.pre names (llama.cpp's
 * llama-vocab.cpp; where it rewrote a pattern for its own engine, the original
 * tokenizer.json pattern is used, which PCRE2 runs as is).
 * Leaves out: Lowercase, NFD/NFKC/NFKD, precompiled charsmaps, BERT pre-tokenizer.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

const char ct__gpt2_pattern[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

typedef struct { size_t a, b; int m; } seg; /* [a, b), m: matched / removed */

struct ct__pt_scratch {
    ct__pieces p[2];
    ct__buf nb[2];
    seg *sg; size_t nsg, capsg;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *js;
};

void ct__pt_scratch_free(ct__pt_scratch *s) {
    if (!s) return;
    for (int i = 0; i < 2; i++) { free(s->p[i].text.p); free(s->p[i].sp); free(s->nb[i].p); }
    free(s->sg);
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mctx);
    pcre2_jit_stack_free(s->js);
    free(s);
}

static ct_status scratch(ct__pt_scratch **sp) {
    if (*sp) return CT_OK;
    ct__pt_scratch *s = ct__calloc(1, sizeof *s);
    if (!s || !(s->md = pcre2_match_data_create(1, NULL))) {
        free(s);
        return ct__err(CT_ERR_NOMEM, "tokenizer: out of memory");
    }
    *sp = s;
    return CT_OK;
}

int ct__is_space(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* ---- regex ---------------------------------------------------------------------- */

ct_status ct__re_compile(const char *pat, size_t len, int literal, pcre2_code **out, const char *what) {
    int err;
    PCRE2_SIZE off;
    uint32_t opt = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, opt, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return ct__err(CT_ERR_FORMAT, "%s: regex /%.*s/ at offset %zu: %s", what, (int)(len > 200 ? 200 : len), pat,
                       (size_t)off, (const char *)msg);
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* the interpreter runs it otherwise */
    *out = re;
    return CT_OK;
}

static ct_status seg_push(ct__pt_scratch *s, size_t a, size_t b, int m) {
    if (s->nsg == s->capsg) {
        size_t cap = s->capsg ? s->capsg * 2 : 64;
        seg *q = ct__realloc(s->sg, cap * sizeof *q);
        if (!q) return ct__err(CT_ERR_NOMEM, "tokenizer: out of memory");
        s->sg = q;
        s->capsg = cap;
    }
    s->sg[s->nsg++] = (seg){a, b, m};
    return CT_OK;
}

/* One match at or after `from`; 0 none, 1 found, or an error status (< 0). */
static int re_next(ct__pt_scratch *s, const pcre2_code *re, const char *t, size_t n, size_t from, size_t *ms, size_t *me) {
    int rc = pcre2_match(re, (PCRE2_SPTR)t, n, from, 0, s->md, s->mctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !s->js) { /* deep backtracking: retry with a larger stack */
        if (!(s->mctx = pcre2_match_context_create(NULL)) || !(s->js = pcre2_jit_stack_create(32 << 10, 16 << 20, NULL)))
            return ct__err(CT_ERR_NOMEM, "tokenizer: out of memory for the regex stack");
        pcre2_jit_stack_assign(s->mctx, NULL, s->js);
        rc = pcre2_match(re, (PCRE2_SPTR)t, n, from, 0, s->md, s->mctx);
    }
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) {
        PCRE2_UCHAR msg[120];
        pcre2_get_error_message(rc, msg, sizeof msg);
        return ct__err(CT_ERR_RANGE, "tokenizer: pre-tokenizer regex failed on a %zu-byte text: %s", n, (const char *)msg);
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
    *ms = ov[0];
    *me = ov[1];
    return 1;
}

/* s->sg := the text cut into gaps (m=0) and matches (m=1), covering [0, n)
 * (`tokenizers` Pattern::find_matches for a regex). */
static ct_status find_matches(ct__pt_scratch *s, const pcre2_code *re, const char *t, size_t n) {
    s->nsg = 0;
    if (!n) return seg_push(s, 0, 0, 0);
    size_t prev = 0, from = 0, last_end = (size_t)-1;
    ct_status st = CT_OK;
    while (from <= n && !st) {
        size_t ms = 0, me = 0;
        int rc = re_next(s, re, t, n, from, &ms, &me);
        if (rc < 0) return (ct_status)rc;
        if (!rc) break;
        if (ms == me && me == last_end) { /* empty match where the last one ended */
            from += from < n ? ct__utf8_len(t + from, n - from) : 1;
            continue;
        }
        if (prev != ms) st = seg_push(s, prev, ms, 0);
        if (!st) st = seg_push(s, ms, me, 1);
        prev = from = last_end = me;
    }
    if (!st && prev != n) st = seg_push(s, prev, n, 0);
    return st;
}

/* The same for a single literal string (Metaspace split). */
static ct_status find_literal(ct__pt_scratch *s, const char *lit, size_t ln, const char *t, size_t n) {
    s->nsg = 0;
    if (!n) return seg_push(s, 0, 0, 0);
    size_t prev = 0;
    ct_status st = CT_OK;
    for (size_t i = 0; i + ln <= n && !st;) {
        if (!memcmp(t + i, lit, ln)) {
            if (prev != i) st = seg_push(s, prev, i, 0);
            if (!st) st = seg_push(s, i, i + ln, 1);
            prev = i += ln;
        } else {
            i++;
        }
    }
    if (!st && prev != n) st = seg_push(s, prev, n, 0);
    return st;
}

/* Rewrite s->sg by behaviour: afterwards m=1 marks a removed range. */
static void apply_behaviour(ct__pt_scratch *s, ct__split_beh beh, int invert) {
    if (invert)
        for (size_t i = 0; i < s->nsg; i++) s->sg[i].m = !s->sg[i].m;
    size_t k = 0;
    int prevm = 0;
    switch (beh) {
    case CT__SPLIT_REMOVED: return;
    case CT__SPLIT_ISOLATED:
        for (size_t i = 0; i < s->nsg; i++) s->sg[i].m = 0;
        return;
    case CT__SPLIT_CONTIGUOUS:
    case CT__SPLIT_MERGED_PREV:
        for (size_t i = 0; i < s->nsg; i++) {
            seg g = s->sg[i];
            int join = beh == CT__SPLIT_CONTIGUOUS ? g.m == prevm : (g.m && !prevm);
            if (join && k) s->sg[k - 1].b = g.b;
            else s->sg[k++] = (seg){g.a, g.b, 0};
            prevm = g.m;
        }
        s->nsg = k;
        return;
    case CT__SPLIT_MERGED_NEXT: /* fold from the right, then restore order */
        for (size_t i = s->nsg; i-- > 0;) {
            seg g = s->sg[i];
            if (g.m && !prevm && k) s->sg[s->nsg - k].a = g.a;
            else { k++; s->sg[s->nsg - k] = (seg){g.a, g.b, 0}; }
            prevm = g.m;
        }
        memmove(s->sg, s->sg + (s->nsg - k), k * sizeof *s->sg);
        s->nsg = k;
        return;
    }
}

/* ---- pieces ----------------------------------------------------------------------- */

static ct_status piece_add(ct__pieces *p, const char *pre, size_t pn, const char *s, size_t n, int first) {
    if (!pn && !n) return CT_OK; /* empty pieces are dropped, as `tokenizers` does */
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 32;
        ct__span *q = ct__realloc(p->sp, cap * sizeof *q);
        if (!q) return ct__err(CT_ERR_NOMEM, "tokenizer: out of memory");
        p->sp = q;
        p->cap = cap;
    }
    ct__span *sp = &p->sp[p->n++];
    sp->off = p->text.n;
    sp->len = pn + n;
    sp->first = first;
    ct_status st = ct__buf_put(&p->text, pre, pn);
    return st ? st : ct__buf_put(&p->text, s, n);
}

/* Emit the kept ranges of s->sg over text t as pieces. */
static ct_status emit(ct__pt_scratch *s, const char *t, int first, ct__pieces *out) {
    ct_status st = CT_OK;
    for (size_t i = 0; i < s->nsg && !st; i++)
        if (!s->sg[i].m) st = piece_add(out, NULL, 0, t + s->sg[i].a, s->sg[i].b - s->sg[i].a, first && s->sg[i].a == 0);
    return st;
}

static int starts_with(const char *s, size_t n, const char *p, size_t pn) { return n >= pn && !memcmp(s, p, pn); }

static ct_status step(const ct__pretok *pt, ct__pt_scratch *s, const char *t, size_t n, int first, ct__pieces *out) {
    ct_status st;
    switch (pt->type) {
    case CT__PT_SPLIT:
        if ((st = find_matches(s, pt->re, t, n))) return st;
        apply_behaviour(s, pt->beh, pt->invert);
        return emit(s, t, first, out);
    case CT__PT_BYTELEVEL: {
        ct__buf *b = &s->nb[0];
        b->n = 0;
        if (pt->add_prefix_space && !starts_with(t, n, " ", 1) && (st = ct__buf_put(b, " ", 1))) return st;
        if ((st = ct__buf_put(b, t, n))) return st;
        if (!pt->re) return piece_add(out, NULL, 0, b->p, b->n, first);
        if ((st = find_matches(s, pt->re, b->p, b->n))) return st;
        apply_behaviour(s, CT__SPLIT_ISOLATED, 0);
        return emit(s, b->p, first, out);
    }
    case CT__PT_METASPACE: {
        ct__buf *b = &s->nb[0];
        b->n = 0;
        for (size_t i = 0; i < n; i++) {
            st = t[i] == ' ' ? ct__buf_put(b, pt->repl, (size_t)pt->repl_len) : ct__buf_put(b, t + i, 1);
            if (st) return st;
        }
        int pre = !starts_with(b->p, b->n, pt->repl, (size_t)pt->repl_len) &&
                  (pt->prepend == CT__PREPEND_ALWAYS || (pt->prepend == CT__PREPEND_FIRST && first));
        if (pre) { /* prepend in place */
            if ((st = ct__buf_put(b, pt->repl, (size_t)pt->repl_len))) return st;
            memmove(b->p + pt->repl_len, b->p, b->n - (size_t)pt->repl_len);
            memcpy(b->p, pt->repl, (size_t)pt->repl_len);
        }
        if (!pt->split) return piece_add(out, NULL, 0, b->p, b->n, first);
        if ((st = find_literal(s, pt->repl, (size_t)pt->repl_len, b->p, b->n))) return st;
        apply_behaviour(s, CT__SPLIT_MERGED_NEXT, 0);
        return emit(s, b->p, first, out);
    }
    }
    return ct__err(CT_ERR_UNSUPPORTED, "tokenizer: unknown pre-tokenizer step %d", (int)pt->type);
}

ct_status ct__pretokenize(const ct_tokenizer *t, const char *s, size_t n, int first, ct__pt_scratch **sc,
                          const ct__pieces **res) {
    ct_status st = scratch(sc);
    if (st) return st;
    ct__pieces *in = &(*sc)->p[0], *out = &(*sc)->p[1];
    in->n = in->text.n = 0;
    if ((st = piece_add(in, NULL, 0, s, n, first))) return st;
    for (int k = 0; k < t->n_pretoks; k++) {
        out->n = out->text.n = 0;
        for (size_t i = 0; i < in->n && !st; i++)
            st = step(&t->pretoks[k], *sc, in->text.p + in->sp[i].off, in->sp[i].len, in->sp[i].first, out);
        if (st) return st;
        ct__pieces *tmp = in;
        in = out;
        out = tmp;
    }
    *res = in;
    return CT_OK;
}

/* ---- normalizers -------------------------------------------------------------------- */

static ct_status norm_one(const ct__norm *nm, ct__pt_scratch *s, const char *t, size_t n, ct__buf *o) {
    ct_status st = CT_OK;
    o->n = 0;
    switch (nm->type) {
    case CT__NM_PREPEND:
        if (n && (st = ct__buf_put(o, nm->a, nm->alen))) return st;
        return ct__buf_put(o, t, n);
    case CT__NM_REPLACE:
        if (nm->re) {
            if ((st = find_matches(s, nm->re, t, n))) return st;
        } else if (nm->alen) {
            if ((st = find_literal(s, nm->a, nm->alen, t, n))) return st;
        } else {
            return ct__buf_put(o, t, n);
        }
        for (size_t i = 0; i < s->nsg && !st; i++)
            st = s->sg[i].m ? ct__buf_put(o, nm->b, nm->blen) : ct__buf_put(o, t + s->sg[i].a, s->sg[i].b - s->sg[i].a);
        return st;
    case CT__NM_STRIP: {
        size_t a = 0, b = n;
        uint32_t cp;
        int k;
        while (nm->left && a < b && (k = ct__utf8_get(t + a, b - a, &cp)) && ct__is_space(cp)) a += (size_t)k;
        while (nm->right && b > a) {
            size_t j = b - 1;
            while (j > a && ((uint8_t)t[j] & 0xC0) == 0x80) j--;
            if (!(k = ct__utf8_get(t + j, b - j, &cp)) || (size_t)k != b - j || !ct__is_space(cp)) break;
            b = j;
        }
        return ct__buf_put(o, t + a, b - a);
    }
    case CT__NM_NFC:
        return ct__nfc(t, n, o);
    }
    return ct__err(CT_ERR_UNSUPPORTED, "tokenizer: unknown normalizer %d", (int)nm->type);
}

ct_status ct__normalize(const ct_tokenizer *t, const char *s, size_t n, ct__buf *out, ct__pt_scratch **sc) {
    ct_status st = scratch(sc);
    if (st) return st;
    out->n = 0;
    if (!t->n_norms) return ct__buf_put(out, s, n);
    const char *cur = s;
    size_t cn = n;
    for (int k = 0; k < t->n_norms; k++) {
        ct__buf *o = k == t->n_norms - 1 ? out : &(*sc)->nb[k & 1]; /* never the step's input */
        if ((st = norm_one(&t->norms[k], *sc, cur, cn, o))) return st;
        cur = o->p;
        cn = o->n;
    }
    return CT_OK;
}

void ct__pretok_free(ct__pretok *p) {
    if (p) pcre2_code_free(p->re);
}

void ct__norm_free(ct__norm *n) {
    if (!n) return;
    free(n->a);
    free(n->b);
    pcre2_code_free(n->re);
}

/* ---- GGUF tokenizer.ggml.pre ----------------------------------------------------------- */

#define GPT2_RE "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define LLAMA3_RE                                                                                                     \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|" \
    "\\s+(?!\\S)|\\s+"
#define QWEN2_RE                                                                                                    \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|" \
    "\\s+(?!\\S)|\\s+"

static const char *const re_gpt2[] = {GPT2_RE, NULL};
static const char *const re_llama3[] = {LLAMA3_RE, NULL};
static const char *const re_qwen2[] = {QWEN2_RE, NULL};
static const char *const re_starcoder[] = {"\\p{N}", GPT2_RE, NULL};
static const char *const re_default[] = {"[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2_RE, "\\p{N}+", "[0-9][0-9][0-9]", NULL};
static const char *const re_falcon[] = {"[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2_RE, "[0-9][0-9][0-9]", NULL};
static const char *const re_deepseek_coder[] = {"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+",
                                                "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+", "\\p{N}", NULL};
static const char *const re_deepseek_v3[] = {
    "\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| "
    "?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_bloom[] = {" ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{0964}\\x{06D4}\\x{060C})]+", NULL};
static const char *const re_viking[] = {" ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{0964}\\x{06D4}\\x{060C})]+",
                                        "\\p{N}", NULL};
static const char *const re_gpt4o[] = {
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_tekken[] = {
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?"
    "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_seed_coder[] = {
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+",
    NULL};

static const struct { const char *names; const char *const *re; } pre_table[] = {
    {"|gpt-2|phi-2|jina-es|jina-de|gigachat|jina-v2-es|jina-v2-de|a.x-4.0|mellum|jina-v1-en|jina-v2-code|roberta-bpe|"
     "mpt|olmo|jais|trillion|granite-docling|exaone4|",
     re_gpt2},
    {"|llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2|dbrx|smaug-bpe|chatglm-bpe|glm4|", re_llama3},
    {"|qwen2|deepseek-r1-qwen|kormo|megrez|stablelm2|hunyuan|grok-2|", re_qwen2},
    {"|starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b|", re_starcoder},
    {"|falcon|", re_falcon},
    {"|deepseek-coder|", re_deepseek_coder},
    {"|deepseek-v3|hunyuan-dense|", re_deepseek_v3},
    {"|bloom|poro-chat|gpt3-finnish|", re_bloom},
    {"|viking|", re_viking},
    {"|gpt-4o|llama4|minimax-m2|", re_gpt4o},
    {"|tekken|", re_tekken},
    {"|seed-coder|", re_seed_coder},
    {"|default|", re_default},
};

const char *const *ct__gguf_pre_regexes(const char *name, size_t len) {
    if (!len || len > 64 || memchr(name, '|', len)) return NULL;
    char key[68];
    key[0] = '|';
    memcpy(key + 1, name, len);
    key[len + 1] = '|';
    key[len + 2] = 0;
    for (size_t i = 0; i < sizeof pre_table / sizeof pre_table[0]; i++)
        if (strstr(pre_table[i].names, key)) return pre_table[i].re;
    return NULL;
}
