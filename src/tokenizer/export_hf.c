/* src/tokenizer/export_hf.c — a loaded tokenizer written back as Hugging Face
 * files (tokenizer.json + tokenizer_config.json + special_tokens_map.json),
 * so that `tokenizers` and `transformers.AutoTokenizer` give ctune's ids.
 *
 * What is written, by source (the tokenizer's tables say which steps it runs;
 * the source file is only reopened where the tables lost information):
 *   tokenizer.json            copied byte for byte (ctune's loader equals
 *                             `tokenizers` on it), plus the config files and
 *                             chat_template.jinja beside it when present.
 *   GGUF "gpt2"               model BPE (merges in rank order, ignore_merges),
 *                             pre_tokenizer Sequence[Split(regex, Isolated)...,
 *                             ByteLevel(use_regex=false)], decoder ByteLevel.
 *                             The regex strings are not kept by the compiled
 *                             PCRE2 code: they are looked up again from the
 *                             file's tokenizer.ggml.pre (pretok.c's table) and
 *                             checked against the compiled code's size.
 *   encoder.json + vocab.bpe  the same with ByteLevel(use_regex=true).
 *   tokenizer.bin, GGUF       model BPE with byte_fallback and merges derived
 *   "llama" (merge by score)  from the scores: every split (a, b) of a
 *                             mergeable token c (normal/user type) whose halves
 *                             can be symbols (a single character in the
 *                             vocabulary, or a mergeable token), ordered by
 *                             score(c) descending. Scoring picks the highest
 *                             score, then the leftmost pair; ranks pick the
 *                             lowest rank, then the leftmost, so the two agree
 *                             when scores are distinct. Among equal scores (the
 *                             Llama-2 vocabulary's "▁▁".."▁x16" at -1e9) the
 *                             longer merged token ranks first, which makes a
 *                             run grow from its left end as leftmost-first does.
 *                             normalizer Sequence[Prepend "▁", Replace " "->"▁"],
 *                             decoder Replace/ByteFallback/Fuse/Strip.
 * Added tokens keep their flags; the post-processor is a TemplateProcessing
 * of ctune's template ids, written only when ct_tokenizer_adds_bos (ctune
 * applies no template otherwise, EOS-only ones included), mirrored by
 * add_bos_token / add_eos_token in the config; tokenizer_class is the generic
 * PreTrainedTokenizerFast so transformers uses tokenizer.json as written.
 * Leaves out (CT_ERR_UNSUPPORTED): regex normalizers and Split steps of
 * non-GGUF sources, rank-merged SentencePiece-style tables not read from a
 * tokenizer.json, invalid UTF-8 in pieces, a score vocabulary whose mergeable
 * tokens contain a character that is not itself a token, added tokens whose
 * text names another id. Slow-tokenizer files (vocab.json, tokenizer.model).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/gguf.h"
#include "formats/json.h"
#include "formats/st_write.h"
#include "tokenizer/export_hf.h"
#include "tokenizer/tok_internal.h"

#define SPM_SPACE "\xE2\x96\x81" /* "▁" */

/* ---- a JSON text writer with a sticky error ------------------------------------------ */

typedef struct { ct__buf b; ct_status st; } jw;

static void w_raw(jw *w, const char *s, size_t n) {
    if (!w->st) w->st = ct__buf_put(&w->b, s, n);
}
static void w_lit(jw *w, const char *s) { w_raw(w, s, strlen(s)); }
static void w_int(jw *w, long long v) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", v);
    w_raw(w, tmp, (size_t)n);
}
static void w_bool(jw *w, int v) { w_lit(w, v ? "true" : "false"); }

static int utf8_valid(const char *s, size_t n) {
    uint32_t cp;
    for (size_t i = 0; i < n;) {
        int k = ct__utf8_get(s + i, n - i, &cp);
        if (!k) return 0;
        i += (size_t)k;
    }
    return 1;
}

/* A JSON string of n bytes of valid UTF-8 (checked by the caller). */
static void w_str(jw *w, const char *s, size_t n) {
    w_raw(w, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        w_raw(w, s + run, i - run);
        run = i + 1;
        char esc[8];
        switch (c) {
        case '"': w_lit(w, "\\\""); break;
        case '\\': w_lit(w, "\\\\"); break;
        case '\n': w_lit(w, "\\n"); break;
        case '\r': w_lit(w, "\\r"); break;
        case '\t': w_lit(w, "\\t"); break;
        default: snprintf(esc, sizeof esc, "\\u%04x", c); w_lit(w, esc); break;
        }
    }
    w_raw(w, s + run, n - run);
    w_raw(w, "\"", 1);
}
static void w_cstr(jw *w, const char *s) { w_str(w, s, strlen(s)); }

/* ---- tokenizer helpers ----------------------------------------------------------------- */

static const char *piece(const ct_tokenizer *t, int32_t id, size_t *n) {
    *n = t->plen[id];
    return t->pool ? t->pool + t->poff[id] : "";
}

static const ct__added *added_of(const ct_tokenizer *t, int32_t id) {
    for (int i = 0; id >= 0 && t->is_added[id] && i < t->n_added; i++)
        if (t->added[i].id == id) return &t->added[i];
    return NULL;
}

/* The text HF names id by: its added content, else its piece. */
static const char *content(const ct_tokenizer *t, int32_t id, size_t *n) {
    const ct__added *a = added_of(t, id);
    if (a) { *n = a->len; return a->text; }
    return piece(t, id, n);
}

static int mergeable(const ct_tokenizer *t, int32_t id) {
    return t->type[id] == CT__TT_NORMAL || t->type[id] == CT__TT_USER;
}

static size_t n_chars(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; c++) i += ct__utf8_len(s + i, n - i);
    return c;
}

/* ---- the source's regexes --------------------------------------------------------------- */

/* 1 when the compiled regex re is pattern pat (same options, same code size
 * and properties: the pattern text itself is not kept by PCRE2). */
static int same_regex(const pcre2_code *re, const char *pat) {
    pcre2_code *c = NULL;
    if (!re || ct__re_compile(pat, strlen(pat), 0, &c, "export")) return 0;
    static const uint32_t what[] = {PCRE2_INFO_SIZE, PCRE2_INFO_CAPTURECOUNT, PCRE2_INFO_MINLENGTH,
                                    PCRE2_INFO_MAXLOOKBEHIND, PCRE2_INFO_ALLOPTIONS, PCRE2_INFO_FIRSTCODETYPE};
    int same = 1;
    for (size_t i = 0; i < sizeof what / sizeof what[0] && same; i++) {
        size_t a = 0, b = 0; /* large enough for every item asked (uint32_t or size_t) */
        pcre2_pattern_info(re, what[i], &a);
        pcre2_pattern_info(c, what[i], &b);
        same = a == b;
    }
    pcre2_code_free(c);
    return same;
}

typedef enum { SRC_OTHER, SRC_HF_JSON, SRC_GGUF } src_kind;

static src_kind sniff(const char *path) {
    ct_mfile f;
    if (!path || ct__is_dir(path) || ct__mfile_open(&f, path)) return SRC_OTHER;
    const uint8_t *d = f.data;
    size_t n = f.size, i = 0;
    src_kind k = SRC_OTHER;
    if (n >= 4 && !memcmp(d, "GGUF", 4)) {
        k = SRC_GGUF;
    } else {
        if (n >= 3 && !memcmp(d, "\xEF\xBB\xBF", 3)) i = 3;
        while (i < n && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r')) i++;
        ct_json *root = NULL;
        if (i < n && d[i] == '{' && !ct__json_parse((const char *)d, n, path, &root)) {
            const ct_json *m = ct__json_get(root, "model");
            if (m && m->type == CT_JSON_OBJ) k = SRC_HF_JSON;
            ct__json_free(root);
        }
    }
    ct__mfile_close(&f);
    return k;
}

/* pats[i] := the pattern text of pre-tokenizer step i (NULL for steps without
 * a regex). Split steps are only recoverable for GGUF sources. */
static ct_status recover_regexes(const ct_tokenizer *t, const char **pats) {
    const char *const *list = NULL;
    ct_gguf *g = NULL;
    int n_split = 0;
    for (int i = 0; i < t->n_pretoks; i++) {
        pats[i] = NULL;
        n_split += t->pretoks[i].type == CT__PT_SPLIT;
    }
    if (n_split) {
        if (sniff(t->source) != SRC_GGUF)
            return ct__err(CT_ERR_UNSUPPORTED, "%s: export to tokenizer.json: the Split regexes of this source cannot "
                           "be recovered (only GGUF and tokenizer.json sources)", t->source);
        ct_status st = ct__gguf_open(t->source, &g, NULL);
        if (st) return ct__err_prefix(st, "export to tokenizer.json: reopening the source for its regexes: ");
        const char *pre = "default";
        size_t pn = 7;
        ct__gguf_get_str(g, "tokenizer.ggml.pre", &pre, &pn);
        list = ct__gguf_pre_regexes(pre, pn);
        if (!list) list = ct__gguf_pre_regexes("default", 7); /* as load_gguf.c falls back */
        ct__gguf_close(g);
    }
    int k = 0;
    for (int i = 0; i < t->n_pretoks; i++) {
        const ct__pretok *p = &t->pretoks[i];
        const char *pat = NULL;
        if (p->type == CT__PT_SPLIT) pat = list[k] ? list[k++] : NULL;
        else if (p->type == CT__PT_BYTELEVEL && p->re) pat = ct__gpt2_pattern;
        if ((p->type == CT__PT_SPLIT || (p->type == CT__PT_BYTELEVEL && p->re)) && (!pat || !same_regex(p->re, pat)))
            return ct__err(CT_ERR_UNSUPPORTED, "%s: export to tokenizer.json: pre-tokenizer step %d: its regex does "
                           "not match the pattern recovered from the source", t->source, i);
        pats[i] = pat;
    }
    if (list && list[k])
        return ct__err(CT_ERR_UNSUPPORTED, "%s: export to tokenizer.json: the source names more regexes than "
                       "the tokenizer runs", t->source);
    return CT_OK;
}

/* ---- merges ------------------------------------------------------------------------------ */

typedef struct { float score; uint32_t clen, alen; int32_t c, a, b; } mrg;

static int cmp_rank(const void *x, const void *y) {
    const mrg *p = x, *q = y; /* rank mode keeps the rank in clen */
    return (p->clen > q->clen) - (p->clen < q->clen);
}

static int cmp_score(const void *x, const void *y) {
    const mrg *p = x, *q = y;
    if (p->score != q->score) return p->score > q->score ? -1 : 1;
    if (p->clen != q->clen) return p->clen > q->clen ? -1 : 1;
    if (p->c != q->c) return p->c < q->c ? -1 : 1;
    return (p->alen < q->alen) - (p->alen > q->alen);
}

static int sym_ok(const ct_tokenizer *t, int32_t id) {
    if (id < 0) return 0;
    size_t n;
    const char *s = piece(t, id, &n);
    return mergeable(t, id) || ct__utf8_len(s, n) == n;
}

/* The merge list in priority order; *out is malloc'd. */
static ct_status collect_merges(const ct_tokenizer *t, mrg **out, size_t *nout) {
    size_t cap = 1024, n = 0;
    mrg *m = ct__malloc(cap * sizeof *m);
    if (!m) return ct__err(CT_ERR_NOMEM, "export: out of memory");
    ct_status st = CT_OK;
#define PUSH(...)                                                                                \
    do {                                                                                         \
        if (n == cap) {                                                                          \
            mrg *q = ct__realloc(m, (cap *= 2) * sizeof *m);                                     \
            if (!q) { st = ct__err(CT_ERR_NOMEM, "export: out of memory"); goto done; }          \
            m = q;                                                                               \
        }                                                                                        \
        m[n++] = (mrg){__VA_ARGS__};                                                             \
    } while (0)
    if (t->merge == CT__MERGE_RANK) {
        for (size_t i = 0; t->merges.key && i <= t->merges.mask; i++) {
            uint64_t k = t->merges.key[i];
            if (k == UINT64_MAX) continue;
            PUSH(.clen = t->merges.rank[i], .a = (int32_t)(k >> 32), .b = (int32_t)(uint32_t)k, .c = t->merges.id[i]);
        }
        qsort(m, n, sizeof *m, cmp_rank);
    } else {
        for (int32_t c = 0; c < t->n_vocab; c++) {
            size_t len;
            const char *s = piece(t, c, &len);
            if (!mergeable(t, c) || ct__utf8_len(s, len) >= len || ct__tok_lookup(t, s, len) != c) continue;
            uint32_t clen = (uint32_t)n_chars(s, len);
            for (size_t k = ct__utf8_len(s, len); k < len; k += ct__utf8_len(s + k, len - k)) {
                size_t cl = ct__utf8_len(s + k, len - k);
                if (ct__tok_lookup(t, s + k, cl) < 0) {
                    st = ct__err(CT_ERR_UNSUPPORTED, "%s: export to tokenizer.json: token %d contains the character "
                                 "'%.*s', which is no token: merging by score can absorb it, BPE cannot",
                                 t->source, c, (int)cl, s + k);
                    goto done;
                }
                int32_t a = ct__tok_lookup(t, s, k), b = ct__tok_lookup(t, s + k, len - k);
                if (sym_ok(t, a) && sym_ok(t, b)) PUSH(.score = t->score[c], .clen = clen, .alen = (uint32_t)k, .c = c, .a = a, .b = b);
            }
            if (ct__tok_lookup(t, s, ct__utf8_len(s, len)) < 0) {
                st = ct__err(CT_ERR_UNSUPPORTED, "%s: export to tokenizer.json: token %d starts with a character that "
                             "is no token", t->source, c);
                goto done;
            }
        }
        qsort(m, n, sizeof *m, cmp_score);
    }
#undef PUSH
done:
    if (st) { free(m); return st; }
    *out = m;
    *nout = n;
    return CT_OK;
}

/* ---- checks ------------------------------------------------------------------------------- */

static ct_status check_tables(const ct_tokenizer *t) {
    for (int32_t id = 0; id < t->n_vocab; id++) {
        size_t n;
        const char *s = piece(t, id, &n);
        if (!utf8_valid(s, n))
            return ct__err(CT_ERR_UNSUPPORTED, "%s: export to tokenizer.json: token %d is not valid UTF-8", t->source, id);
    }
    for (int i = 0; i < t->n_added; i++) {
        const ct__added *a = &t->added[i];
        int32_t other = ct__tok_lookup(t, a->text, a->len);
        if (!utf8_valid(a->text, a->len) || (other >= 0 && other != a->id))
            return ct__err(CT_ERR_UNSUPPORTED, "%s: export to tokenizer.json: added token %d ('%.*s') is not valid "
                           "UTF-8 or its text is token %d", t->source, a->id, (int)(a->len > 40 ? 40 : a->len), a->text,
                           other);
        if (a->normalized && t->n_norms)
            return ct__err(CT_ERR_UNSUPPORTED, "%s: export to tokenizer.json: added token %d is matched after "
                           "normalization, and its original text is not kept", t->source, a->id);
    }
    for (int i = 0; i < t->n_norms; i++)
        if (t->norms[i].type == CT__NM_REPLACE && t->norms[i].re)
            return ct__err(CT_ERR_UNSUPPORTED, "%s: export to tokenizer.json: normalizer %d is a regex Replace whose "
                           "pattern is not kept", t->source, i);
    if (t->merge == CT__MERGE_SCORE && !t->score)
        return ct__err(CT_ERR_UNSUPPORTED, "%s: export to tokenizer.json: merging by score without scores", t->source);
    if (t->n_tmpl_pre > 4 || t->n_tmpl_post > 4) return ct__err(CT_ERR_RANGE, "%s: template too long", t->source);
    return CT_OK;
}

/* ---- tokenizer.json ---------------------------------------------------------------------- */

static void w_added(jw *w, const ct_tokenizer *t) {
    w_lit(w, "\"added_tokens\":[");
    for (int i = 0; i < t->n_added; i++) {
        const ct__added *a = &t->added[i];
        w_lit(w, i ? ",\n{\"id\":" : "\n{\"id\":");
        w_int(w, a->id);
        w_lit(w, ",\"content\":");
        w_str(w, a->text, a->len);
        w_lit(w, ",\"single_word\":"); w_bool(w, a->single_word);
        w_lit(w, ",\"lstrip\":"); w_bool(w, a->lstrip);
        w_lit(w, ",\"rstrip\":"); w_bool(w, a->rstrip);
        w_lit(w, ",\"normalized\":"); w_bool(w, a->normalized);
        w_lit(w, ",\"special\":"); w_bool(w, a->special);
        w_lit(w, "}");
    }
    w_lit(w, "],\n");
}

static void w_normalizer(jw *w, const ct_tokenizer *t) {
    w_lit(w, "\"normalizer\":");
    if (!t->n_norms) { w_lit(w, "null,\n"); return; }
    w_lit(w, "{\"type\":\"Sequence\",\"normalizers\":[");
    for (int i = 0; i < t->n_norms; i++) {
        const ct__norm *nm = &t->norms[i];
        if (i) w_lit(w, ",");
        switch (nm->type) {
        case CT__NM_PREPEND: w_lit(w, "{\"type\":\"Prepend\",\"prepend\":"); w_str(w, nm->a, nm->alen); w_lit(w, "}"); break;
        case CT__NM_REPLACE:
            w_lit(w, "{\"type\":\"Replace\",\"pattern\":{\"String\":");
            w_str(w, nm->a, nm->alen);
            w_lit(w, "},\"content\":");
            w_str(w, nm->b ? nm->b : "", nm->blen);
            w_lit(w, "}");
            break;
        case CT__NM_STRIP:
            w_lit(w, "{\"type\":\"Strip\",\"strip_left\":"); w_bool(w, nm->left);
            w_lit(w, ",\"strip_right\":"); w_bool(w, nm->right); w_lit(w, "}");
            break;
        case CT__NM_NFC: w_lit(w, "{\"type\":\"NFC\"}"); break;
        }
    }
    w_lit(w, "]},\n");
}

static void w_pretok(jw *w, const ct_tokenizer *t, const char *const *pats) {
    static const char *const beh[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    static const char *const scheme[] = {"never", "always", "first"};
    w_lit(w, "\"pre_tokenizer\":");
    if (!t->n_pretoks) { w_lit(w, "null,\n"); return; }
    w_lit(w, "{\"type\":\"Sequence\",\"pretokenizers\":[");
    for (int i = 0; i < t->n_pretoks; i++) {
        const ct__pretok *p = &t->pretoks[i];
        w_lit(w, i ? ",\n" : "\n");
        switch (p->type) {
        case CT__PT_SPLIT:
            w_lit(w, "{\"type\":\"Split\",\"pattern\":{\"Regex\":");
            w_cstr(w, pats[i]);
            w_lit(w, "},\"behavior\":\"");
            w_lit(w, beh[p->beh]);
            w_lit(w, "\",\"invert\":");
            w_bool(w, p->invert);
            w_lit(w, "}");
            break;
        case CT__PT_BYTELEVEL:
            w_lit(w, "{\"type\":\"ByteLevel\",\"add_prefix_space\":");
            w_bool(w, p->add_prefix_space);
            w_lit(w, ",\"trim_offsets\":true,\"use_regex\":");
            w_bool(w, p->re != NULL);
            w_lit(w, "}");
            break;
        case CT__PT_METASPACE:
            w_lit(w, "{\"type\":\"Metaspace\",\"replacement\":");
            w_str(w, p->repl, (size_t)p->repl_len);
            w_lit(w, ",\"prepend_scheme\":\"");
            w_lit(w, scheme[p->prepend]);
            w_lit(w, "\",\"split\":");
            w_bool(w, p->split);
            w_lit(w, "}");
            break;
        }
    }
    w_lit(w, "]},\n");
}

/* Template items, comma-separated: ids[0..n) as SpecialToken, seq ("A"/"B") as Sequence. */
static void w_tmpl_part(jw *w, const ct_tokenizer *t, const int32_t *ids, int n, int type_id, int *first) {
    for (int i = 0; i < n; i++) {
        size_t len;
        const char *s = content(t, ids[i], &len);
        w_lit(w, *first ? "{\"SpecialToken\":{\"id\":" : ",{\"SpecialToken\":{\"id\":");
        *first = 0;
        w_str(w, s, len);
        w_lit(w, ",\"type_id\":");
        w_int(w, type_id);
        w_lit(w, "}}");
    }
}

/* ctune applies its template only where it adds BOS by default
 * (ct_tokenizer_adds_bos): a template of EOS alone is not applied, so not written. */
static int n_post(const ct_tokenizer *t) { return t->n_tmpl_pre ? t->n_tmpl_post : 0; }

static void w_tmpl_seq(jw *w, const ct_tokenizer *t, const char *seq, int type_id, int *first) {
    w_tmpl_part(w, t, t->tmpl_pre, t->n_tmpl_pre, type_id, first);
    w_lit(w, *first ? "{\"Sequence\":{\"id\":\"" : ",{\"Sequence\":{\"id\":\"");
    *first = 0;
    w_lit(w, seq);
    w_lit(w, "\",\"type_id\":");
    w_int(w, type_id);
    w_lit(w, "}}");
    w_tmpl_part(w, t, t->tmpl_post, n_post(t), type_id, first);
}

static void w_post(jw *w, const ct_tokenizer *t) {
    w_lit(w, "\"post_processor\":");
    if (!t->n_tmpl_pre) { w_lit(w, "null,\n"); return; }
    int first = 1;
    w_lit(w, "{\"type\":\"TemplateProcessing\",\"single\":[");
    w_tmpl_seq(w, t, "A", 0, &first);
    w_lit(w, "],\"pair\":[");
    first = 1;
    w_tmpl_seq(w, t, "A", 0, &first);
    w_tmpl_seq(w, t, "B", 1, &first);
    w_lit(w, "],\"special_tokens\":{");
    int32_t seen[8];
    int ns = 0;
    for (int i = 0; i < t->n_tmpl_pre + n_post(t); i++) {
        int32_t id = i < t->n_tmpl_pre ? t->tmpl_pre[i] : t->tmpl_post[i - t->n_tmpl_pre];
        int dup = 0;
        for (int j = 0; j < ns; j++) dup |= seen[j] == id;
        if (dup) continue;
        seen[ns++] = id;
        size_t len;
        const char *s = content(t, id, &len);
        if (ns > 1) w_lit(w, ",");
        w_str(w, s, len);
        w_lit(w, ":{\"id\":");
        w_str(w, s, len);
        w_lit(w, ",\"ids\":[");
        w_int(w, id);
        w_lit(w, "],\"tokens\":[");
        w_str(w, s, len);
        w_lit(w, "]}");
    }
    w_lit(w, "}},\n");
}

static void w_decoder(jw *w, const ct_tokenizer *t) {
    if (t->kind == CT__KIND_BYTELEVEL) {
        w_lit(w, "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true},\n");
        return;
    }
    w_lit(w, "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"" SPM_SPACE
             "\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}");
    if (t->dec_strip_space) {
        w_lit(w, ",{\"type\":\"Strip\",\"content\":\" \",\"start\":");
        w_int(w, t->dec_strip_space);
        w_lit(w, ",\"stop\":0}");
    }
    w_lit(w, "]},\n");
}

/* Number of vocabulary entries left out (empty or shadowed pieces) goes to *skipped. */
static void w_model(jw *w, const ct_tokenizer *t, const mrg *m, size_t nm, int *skipped) {
    w_lit(w, "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":");
    if (t->unk_id >= 0) {
        size_t len;
        const char *s = piece(t, t->unk_id, &len);
        w_str(w, s, len);
    } else {
        w_lit(w, "null");
    }
    w_lit(w, ",\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,\"fuse_unk\":");
    w_bool(w, t->fuse_unk);
    w_lit(w, ",\"byte_fallback\":");
    w_bool(w, t->byte_fallback);
    w_lit(w, ",\"ignore_merges\":");
    w_bool(w, t->ignore_merges);
    w_lit(w, ",\n\"vocab\":{");
    int first = 1;
    *skipped = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        size_t len;
        const char *s = piece(t, id, &len);
        if (!len || ct__tok_lookup(t, s, len) != id) { ++*skipped; continue; }
        w_lit(w, first ? "\n" : ",\n");
        first = 0;
        w_str(w, s, len);
        w_lit(w, ":");
        w_int(w, id);
    }
    w_lit(w, "},\n\"merges\":[");
    for (size_t i = 0; i < nm; i++) {
        size_t la, lb;
        const char *a = piece(t, m[i].a, &la), *b = piece(t, m[i].b, &lb);
        w_lit(w, i ? ",\n[" : "\n[");
        w_str(w, a, la);
        w_lit(w, ",");
        w_str(w, b, lb);
        w_lit(w, "]");
    }
    w_lit(w, "]}}\n");
}

/* ---- tokenizer_config.json, special_tokens_map.json --------------------------------------- */

static void w_special(jw *w, const ct_tokenizer *t, const char *key, int32_t id, int *first) {
    if (id < 0) return;
    size_t len;
    const char *s = content(t, id, &len);
    if (!len) return;
    w_lit(w, *first ? "\n  \"" : ",\n  \"");
    *first = 0;
    w_lit(w, key);
    w_lit(w, "\": ");
    w_str(w, s, len);
}

static ct_status write_config(const ct_tokenizer *t, const char *dir) {
    jw w = {{0}, CT_OK};
    int first = 1;
    w_lit(&w, "{");
    w_special(&w, t, "bos_token", t->bos_id, &first);
    w_special(&w, t, "eos_token", t->eos_id, &first);
    w_special(&w, t, "unk_token", t->unk_id, &first);
    w_lit(&w, first ? "\n}\n" : "\n}\n");
    char *p = ct__path_join(dir, "special_tokens_map.json");
    ct_status st = w.st ? w.st : p ? ct__write_file_atomic(p, w.b.p, w.b.n) : ct__err(CT_ERR_NOMEM, "out of memory");
    free(p);
    if (st) { free(w.b.p); return st; }

    w.b.n = 0;
    int add_bos = t->n_tmpl_pre == 1 && t->tmpl_pre[0] == t->bos_id;
    int add_eos = n_post(t) == 1 && t->tmpl_post[0] == t->eos_id;
    w_lit(&w, "{\n  \"tokenizer_class\": \"PreTrainedTokenizerFast\",\n  \"add_bos_token\": ");
    w_bool(&w, add_bos);
    w_lit(&w, ",\n  \"add_eos_token\": ");
    w_bool(&w, add_eos);
    w_lit(&w, ",\n  \"clean_up_tokenization_spaces\": false,\n  \"model_max_length\": 1000000000000000019884624838656");
    first = 0;
    w_special(&w, t, "bos_token", t->bos_id, &first);
    w_special(&w, t, "eos_token", t->eos_id, &first);
    w_special(&w, t, "unk_token", t->unk_id, &first);
    const char *tmpl = t->chat_template;
    if (tmpl && !utf8_valid(tmpl, strlen(tmpl))) {
        ct__log(CT_LOG_WARN, "%s: chat template is not valid UTF-8; not written to tokenizer_config.json", t->source);
        tmpl = NULL;
    }
    if (tmpl) { w_lit(&w, ",\n  \"chat_template\": "); w_cstr(&w, tmpl); }
    w_lit(&w, "\n}\n");
    p = ct__path_join(dir, "tokenizer_config.json");
    st = w.st ? w.st : p ? ct__write_file_atomic(p, w.b.p, w.b.n) : ct__err(CT_ERR_NOMEM, "out of memory");
    free(p);
    free(w.b.p);
    return st;
}

/* ---- entry points ------------------------------------------------------------------------- */

static ct_status copy_beside(const char *src, const char *name, const char *dir, int required) {
    const char *slash = strrchr(src, '/');
    size_t dn = slash ? (size_t)(slash - src) : 0;
    char *sdir = dn ? ct__strndup(src, dn) : ct__strdup(".");
    char *from = sdir ? (required ? ct__strdup(src) : ct__path_join(sdir, name)) : NULL;
    char *to = ct__path_join(dir, name);
    ct_status st = CT_OK;
    if (!sdir || !from || !to) st = ct__err(CT_ERR_NOMEM, "out of memory");
    else if (required || ct__file_exists(from)) {
        char *text = NULL;
        size_t len = 0;
        st = ct__read_file(from, &text, &len);
        if (!st) st = ct__write_file_atomic(to, text, len);
        free(text);
    } else {
        st = CT_ERR_MISSING; /* absent: not an error, the caller generates it */
    }
    free(sdir); free(from); free(to);
    return st;
}

static ct_status copy_hf(const ct_tokenizer *t, const char *dir) {
    ct_status st = copy_beside(t->source, "tokenizer.json", dir, 1);
    if (st) return st;
    st = copy_beside(t->source, "tokenizer_config.json", dir, 0);
    if (st == CT_ERR_MISSING) st = write_config(t, dir); /* writes special_tokens_map.json too */
    else if (!st && (st = copy_beside(t->source, "special_tokens_map.json", dir, 0)) == CT_ERR_MISSING) st = CT_OK;
    if (!st && (st = copy_beside(t->source, "chat_template.jinja", dir, 0)) == CT_ERR_MISSING) st = CT_OK;
    return st;
}

ct_status ct__tokenizer_write_hf(const ct_tokenizer *t, const char *dir) {
    if (!t || !dir || !*dir) return ct__err(CT_ERR_ARG, "ct__tokenizer_write_hf: tokenizer or directory is NULL");
    ct_status st = ct__mkdir_p(dir);
    if (st) return st;
    if (sniff(t->source) == SRC_HF_JSON) return copy_hf(t, dir);
    if (t->kind == CT__KIND_SPM && t->merge == CT__MERGE_RANK)
        return ct__err(CT_ERR_UNSUPPORTED, "%s: export to tokenizer.json: a rank-merged SentencePiece-style "
                       "tokenizer not read from a tokenizer.json", t->source);
    if ((st = check_tables(t))) return st;
    const char **pats = ct__calloc((size_t)t->n_pretoks + 1, sizeof *pats);
    if (!pats) return ct__err(CT_ERR_NOMEM, "out of memory");
    mrg *m = NULL;
    size_t nm = 0;
    if (!(st = recover_regexes(t, pats))) st = collect_merges(t, &m, &nm);
    jw w = {{0}, CT_OK};
    int skipped = 0;
    if (!st) {
        w_lit(&w, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\n");
        w_added(&w, t);
        w_normalizer(&w, t);
        w_pretok(&w, t, pats);
        w_post(&w, t);
        w_decoder(&w, t);
        w_model(&w, t, m, nm, &skipped);
        st = w.st;
    }
    free(pats);
    free(m);
    char *p = st ? NULL : ct__path_join(dir, "tokenizer.json");
    if (!st) st = p ? ct__write_file_atomic(p, w.b.p, w.b.n) : ct__err(CT_ERR_NOMEM, "out of memory");
    free(p);
    free(w.b.p);
    if (!st && skipped)
        ct__log(CT_LOG_WARN, "%s: tokenizer.json: %d ids with an empty or repeated piece are left out of the "
                "vocabulary (ctune never produces them; HF has no token for them)", t->source, skipped);
    return st ? st : write_config(t, dir);
}
