/* src/tokenizer/tokenizer.c — the public tokenizer API (ctune/tokenizer.h):
 * loading by content sniffing, the encode pipeline, decoding.
 *
 * Encode follows `tokenizers` TokenizerImpl::encode for one sequence:
 *   1. added tokens matched on the raw text (non-normalized ones), leftmost
 *      then longest, with single_word / lstrip / rstrip as AddedVocabulary
 *      applies them; special ones are skipped under CT_TOK_NO_SPECIAL;
 *   2. each remaining segment is normalized, then "normalized" added tokens
 *      are matched in it, the rest pre-tokenized and fed to the BPE model;
 *   3. the post-processor's template ids (BOS ...) when CT_TOK_ADD_BOS.
 * Decode concatenates per-id decoded bytes (precomputed in vocab.c), skips
 * BOS/EOS and drops the SentencePiece dummy-prefix space at the start.
 * Invalid UTF-8 is accepted: such bytes are tokenized by byte fallback /
 * byte-level mapping and come back unchanged from decode.
 * Leaves out: pair sequences, truncation/padding, offsets.
 */
#include <stdlib.h>
#include <string.h>

#include "formats/gguf.h"
#include "formats/json.h"
#include "formats/loaders.h"
#include "tokenizer/tok_internal.h"

/* ---- lifetime and accessors ----------------------------------------------------- */

void ct_tokenizer_free(ct_tokenizer *t) {
    if (!t) return;
    free(t->pool); free(t->poff); free(t->plen);
    free(t->dpool); free(t->doff); free(t->dlen);
    free(t->score); free(t->type); free(t->is_added);
    free(t->vocab.slot);
    free(t->merges.key); free(t->merges.rank); free(t->merges.id);
    free(t->in_merge); free(t->cp_in_token);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].text);
    free(t->added);
    pcre2_code_free(t->word_re);
    for (int i = 0; i < t->n_norms; i++) ct__norm_free(&t->norms[i]);
    free(t->norms);
    for (int i = 0; i < t->n_pretoks; i++) ct__pretok_free(&t->pretoks[i]);
    free(t->pretoks);
    free(t->chat_template);
    free(t->source);
    free(t);
}

int ct_tokenizer_vocab_size(const ct_tokenizer *t) { return t ? t->n_vocab : 0; }
int ct_tokenizer_bos(const ct_tokenizer *t) { return t ? t->bos_id : -1; }
int ct_tokenizer_eos(const ct_tokenizer *t) { return t ? t->eos_id : -1; }
int ct_tokenizer_adds_bos(const ct_tokenizer *t) { return t && t->n_tmpl_pre > 0; }
const char *ct_tokenizer_kind(const ct_tokenizer *t) {
    return !t ? "none" : t->kind == CT__KIND_SPM ? "spm" : "bpe-bytelevel";
}
const char *ct_tokenizer_chat_template(const ct_tokenizer *t) { return t ? t->chat_template : NULL; }

int ct_tokenizer_token_id(const ct_tokenizer *t, const char *piece) {
    if (!t || !piece) return -1;
    size_t n = strlen(piece);
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && !memcmp(t->added[i].text, piece, n)) return t->added[i].id;
    return ct__tok_lookup(t, piece, n);
}

/* ---- loading -------------------------------------------------------------------- */

ct_status ct_tokenizer_load(const char *path, ct_tokenizer **out) {
    if (!out) return ct__err(CT_ERR_ARG, "ct_tokenizer_load: out is NULL");
    *out = NULL;
    if (!path || !*path) return ct__err(CT_ERR_ARG, "ct_tokenizer_load: empty path");
    if (ct__is_dir(path)) { /* a Hugging Face directory: its tokenizer.json */
        char *p = ct__path_join(path, "tokenizer.json");
        if (!p) return ct__err(CT_ERR_NOMEM, "out of memory");
        ct_status st = ct__file_exists(p) ? ct_tokenizer_load(p, out)
                                          : ct__err(CT_ERR_MISSING, "%s: directory has no tokenizer.json", path);
        free(p);
        return st;
    }
    ct_mfile f;
    ct_status st = ct__mfile_open(&f, path);
    if (st) return st;
    const uint8_t *d = f.data;
    size_t n = f.size, i = 0;
    if (n >= 4 && !memcmp(d, "GGUF", 4)) {
        ct__mfile_close(&f);
        ct_gguf *g = NULL;
        if ((st = ct__gguf_open(path, &g, NULL))) return st;
        st = ct__tokenizer_from_gguf(g, out);
        ct__gguf_close(g);
        return st;
    }
    if (n >= 3 && !memcmp(d, "\xEF\xBB\xBF", 3)) i = 3;
    while (i < n && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r')) i++;
    if (i < n && d[i] == '{') {
        ct_json *root = NULL;
        st = ct__json_parse((const char *)d, n, path, &root);
        ct__mfile_close(&f);
        if (st) return st;
        const ct_json *m = ct__json_get(root, "model"); /* "model" is also a GPT-2 piece: check its type */
        if (m && m->type == CT_JSON_OBJ) st = ct__tok_load_hf_json(path, root, out);
        else st = ct__tok_load_gpt2(path, root, out);
        ct__json_free(root);
        return st;
    }
    st = ct__tok_load_llama2c(path, d, n, out);
    ct__mfile_close(&f);
    return st;
}

/* ---- encoding ------------------------------------------------------------------- */

typedef struct {
    const ct_tokenizer *t;
    unsigned flags;
    ct__pt_scratch *pt;
    ct__bpe_scratch *bpe;
    ct__buf norm;
    ct__ids *out;
} enc;

/* 1 if the character ending at s[n) (end=1) or starting at s (end=0) is a word char (\w). */
static int word_char(const ct_tokenizer *t, const char *s, size_t n, int end) {
    if (!n || !t->word_re) return 0;
    size_t a = 0;
    if (end) {
        a = n - 1;
        while (a > 0 && ((uint8_t)s[a] & 0xC0) == 0x80 && n - a < 4) a--;
    }
    size_t k = ct__utf8_len(s + a, n - a);
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) return 0;
    int rc = pcre2_match(t->word_re, (PCRE2_SPTR)(s + a), k, 0, PCRE2_ANCHORED, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

static size_t space_run(const char *s, size_t n, int backward) {
    size_t k = 0;
    uint32_t cp;
    if (!backward) {
        int m;
        while (k < n && (m = ct__utf8_get(s + k, n - k, &cp)) && ct__is_space(cp)) k += (size_t)m;
        return k;
    }
    while (k < n) {
        size_t j = n - k - 1;
        while (j > 0 && ((uint8_t)s[j] & 0xC0) == 0x80 && n - k - j < 4) j--;
        int m = ct__utf8_get(s + j, n - k - j, &cp);
        if (!m || (size_t)m != n - k - j || !ct__is_space(cp)) break;
        k = n - j;
    }
    return k;
}

/* Leftmost, then longest, added token of the given class at or after pos. */
static const ct__added *next_added(const ct_tokenizer *t, int normalized, const char *s, size_t n, size_t pos, size_t *at) {
    uint8_t bit = normalized ? 2 : 1;
    for (size_t p = pos; p < n; p++) {
        if (!(t->added_first[(uint8_t)s[p]] & bit)) continue;
        const ct__added *best = NULL;
        for (int i = 0; i < t->n_added; i++) {
            const ct__added *a = &t->added[i];
            if (a->normalized != (normalized != 0) || a->len > n - p || (best && a->len <= best->len)) continue;
            if (!memcmp(s + p, a->text, a->len)) best = a;
        }
        if (best) { *at = p; return best; }
    }
    return NULL;
}

static ct_status model_segment(enc *e, const char *s, size_t n, int first) {
    const ct__pieces *pc;
    ct_status st = ct__pretokenize(e->t, s, n, first, &e->pt, &pc);
    for (size_t i = 0; i < (st ? 0 : pc->n) && !st; i++)
        st = ct__bpe_word(e->t, pc->text.p + pc->sp[i].off, pc->sp[i].len, &e->bpe, e->out);
    return st;
}

static ct_status raw_segment(enc *e, const char *s, size_t n, int first);

/* Split s by one class of added tokens; gaps go to the next stage. */
static ct_status split_added(enc *e, int normalized, const char *s, size_t n, int first) {
    const ct_tokenizer *t = e->t;
    size_t pos = 0, start_off = 0, at;
    ct_status st = CT_OK;
    const ct__added *a;
    while (!st && pos < n && (a = next_added(t, normalized, s, n, pos, &at))) {
        size_t start = at, stop = at + a->len;
        pos = stop;
        if (a->special && (e->flags & CT_TOK_NO_SPECIAL)) continue;
        if (a->single_word && ((start > 0 && word_char(t, s, start, 1)) || (stop < n && word_char(t, s + stop, n - stop, 0))))
            continue;
        if (a->lstrip) {
            size_t ns = start - space_run(s, start, 1);
            start = ns > start_off ? ns : start_off;
        }
        if (a->rstrip) stop += space_run(s + stop, n - stop, 0);
        if (start_off < start)
            st = normalized ? model_segment(e, s + start_off, start - start_off, first && start_off == 0)
                            : raw_segment(e, s + start_off, start - start_off, start_off == 0);
        if (!st) st = ct__ids_push(e->out, a->id);
        start_off = stop;
    }
    if (!st && start_off < n)
        st = normalized ? model_segment(e, s + start_off, n - start_off, first && start_off == 0)
                        : raw_segment(e, s + start_off, n - start_off, start_off == 0);
    return st;
}

/* A segment free of raw-matched added tokens: normalize, then the normalized ones. */
static ct_status raw_segment(enc *e, const char *s, size_t n, int first) {
    const ct_tokenizer *t = e->t;
    if (!t->n_norms) return split_added(e, 1, s, n, first);
    ct_status st = ct__normalize(t, s, n, &e->norm, &e->pt);
    if (st) return st;
    /* split_added(normalized) never re-enters raw_segment, so e->norm stays intact */
    return split_added(e, 1, e->norm.p, e->norm.n, first);
}

ct_status ct_tokenizer_encode(const ct_tokenizer *t, const char *text, size_t len, unsigned flags, int32_t **ids,
                              size_t *n) {
    if (!ids || !n) return ct__err(CT_ERR_ARG, "ct_tokenizer_encode: ids/n is NULL");
    *ids = NULL;
    *n = 0;
    if (!t || (!text && len)) return ct__err(CT_ERR_ARG, "ct_tokenizer_encode: tokenizer or text is NULL");
    ct__ids out = {0};
    enc e = {t, flags, NULL, NULL, {0}, &out};
    ct_status st = CT_OK;
    int tmpl = (flags & CT_TOK_ADD_BOS) && (t->n_tmpl_pre || t->n_tmpl_post);
    if (flags & CT_TOK_ADD_BOS) {
        if (tmpl)
            for (int i = 0; i < t->n_tmpl_pre && !st; i++) st = ct__ids_push(&out, t->tmpl_pre[i]);
        else if (t->bos_id >= 0)
            st = ct__ids_push(&out, t->bos_id);
    }
    if (!st && len) st = split_added(&e, 0, text, len, 1);
    for (int i = 0; tmpl && i < t->n_tmpl_post && !st; i++) st = ct__ids_push(&out, t->tmpl_post[i]);
    ct__pt_scratch_free(e.pt);
    ct__bpe_scratch_free(e.bpe);
    free(e.norm.p);
    if (st) { free(out.v); return st; }
    if (!out.v && !(out.v = ct__malloc(sizeof(int32_t)))) return ct__err(CT_ERR_NOMEM, "out of memory");
    *ids = out.v;
    *n = out.n;
    return CT_OK;
}

/* ---- decoding ------------------------------------------------------------------- */

ct_status ct_tokenizer_decode(const ct_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len) {
    if (!text || !len) return ct__err(CT_ERR_ARG, "ct_tokenizer_decode: text/len is NULL");
    *text = NULL;
    *len = 0;
    if (!t || (!ids && n)) return ct__err(CT_ERR_ARG, "ct_tokenizer_decode: tokenizer or ids is NULL");
    ct__buf b = {0};
    ct_status st = CT_OK;
    for (size_t i = 0; i < n && !st; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_vocab) {
            st = ct__err(CT_ERR_RANGE, "%s: decode: token id %d at position %zu outside [0, %d)", t->source, id, i,
                         t->n_vocab);
            break;
        }
        if (id == t->bos_id || id == t->eos_id) continue;
        st = ct__buf_put(&b, t->dpool + t->doff[id], t->dlen[id]);
    }
    if (!st) st = ct__buf_put(&b, "", 1);
    if (st) { free(b.p); return st; }
    size_t skip = 0;
    while ((int)skip < t->dec_strip_space && skip + 1 < b.n && b.p[skip] == ' ') skip++;
    if (skip) memmove(b.p, b.p + skip, b.n - skip);
    *text = b.p;
    *len = b.n - 1 - skip;
    return CT_OK;
}

int ct_tokenizer_piece(const ct_tokenizer *t, int32_t prev, int32_t id, char *buf, size_t cap) {
    if (!t || id < 0 || id >= t->n_vocab || (!buf && cap)) return CT_ERR_ARG;
    if (id == t->bos_id || id == t->eos_id) return 0;
    const char *s = t->dpool + t->doff[id];
    size_t n = t->dlen[id];
    if (t->dec_strip_space && (prev < 0 || prev == t->bos_id) && n && s[0] == ' ') { s++; n--; }
    if (n > cap) n = cap; /* truncated; pieces are short in practice */
    memcpy(buf, s, n);
    return (int)n;
}
