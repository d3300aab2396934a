/* src/tokenizer/load_gguf.c — a tokenizer from GGUF metadata (tokenizer.ggml.*),
 * as llama.cpp's llama_vocab::load reads it:
 *   model "gpt2":  byte-level BPE; tokens + merges ("left right", rank = index);
 *                  tokenizer.ggml.pre names the pre-tokenizer regexes (pretok.c;
 *                  unknown names fall back to llama.cpp's "default" list);
 *                  Llama-3-style names take a whole word that is a token
 *                  (ignore_merges) and add BOS.
 *   model "llama": SentencePiece-style; tokens + scores + token types; merges
 *                  by score; "▁" dummy prefix (tokenizer.ggml.add_space_prefix,
 *                  default on) and spaces as "▁"; <0xNN> byte fallback.
 * Control, user-defined and unknown tokens are matched in the text as added
 * tokens (control/unknown as special). BOS/EOS/UNK ids, add_bos_token,
 * add_eos_token and tokenizer.chat_template are read when present.
 * Leaves out: "bert" (WordPiece), "t5" (Unigram), "rwkv", "plamo2",
 * remove_extra_whitespaces, precompiled charsmaps.
 */
#include <stdlib.h>
#include <string.h>

#include "formats/gguf.h"
#include "formats/loaders.h"
#include "tokenizer/tok_internal.h"

static int name_in(const char *s, size_t n, const char *list) {
    char key[72];
    if (!n || n > 64) return 0;
    key[0] = '|';
    memcpy(key + 1, s, n);
    key[n + 1] = '|';
    key[n + 2] = 0;
    return strstr(list, key) != NULL;
}

static ct_status read_tokens(ct_tokenizer *t, const ct_gguf *g, const char *path, int with_scores) {
    ct_gguf_type et;
    size_t n, ns = 0, nt = 0;
    if (!ct__gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &n) || et != CT_GGUF_STRING)
        return ct__err(CT_ERR_MISSING, "%s: tokenizer.ggml.tokens: missing or not an array of strings", path);
    if (n == 0 || n > (1 << 24)) return ct__err(CT_ERR_RANGE, "%s: tokenizer.ggml.tokens: %zu tokens", path, n);
    int has_scores = with_scores && ct__gguf_get_arr(g, "tokenizer.ggml.scores", &et, &ns) && et == CT_GGUF_F32;
    int has_types = ct__gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &nt) && et == CT_GGUF_I32;
    if ((has_scores && ns != n) || (has_types && nt != n))
        return ct__err(CT_ERR_FORMAT, "%s: tokenizer.ggml.scores/token_type: %zu/%zu entries for %zu tokens", path,
                       has_scores ? ns : n, has_types ? nt : n, n);
    ct_status st = ct__tok_alloc(t, (int)n, with_scores);
    for (size_t i = 0; i < n && !st; i++) {
        const char *s;
        size_t len;
        if (!ct__gguf_arr_str(g, "tokenizer.ggml.tokens", i, &s, &len))
            return ct__err(CT_ERR_FORMAT, "%s: tokenizer.ggml.tokens[%zu]: unreadable", path, i);
        st = ct__tok_set_piece(t, (int32_t)i, s, len);
        int32_t ty;
        if (!st && has_types && ct__gguf_arr_i32(g, "tokenizer.ggml.token_type", i, &ty) && ty >= 1 && ty <= 6)
            t->type[i] = (uint8_t)ty;
        float sc;
        if (!st && has_scores && ct__gguf_arr_f32(g, "tokenizer.ggml.scores", i, &sc)) t->score[i] = sc;
    }
    return st ? st : ct__tok_build_vocab(t);
}

static ct_status read_merges(ct_tokenizer *t, const ct_gguf *g, const char *path) {
    ct_gguf_type et;
    size_t n;
    if (!ct__gguf_get_arr(g, "tokenizer.ggml.merges", &et, &n) || et != CT_GGUF_STRING)
        return ct__err(CT_ERR_MISSING, "%s: tokenizer.ggml.merges: missing (a \"gpt2\" tokenizer needs its merges)", path);
    for (size_t i = 0; i < n; i++) {
        const char *s, *sp;
        size_t len;
        if (!ct__gguf_arr_str(g, "tokenizer.ggml.merges", i, &s, &len) || len < 3 || !(sp = memchr(s + 1, ' ', len - 1)))
            return ct__err(CT_ERR_FORMAT, "%s: tokenizer.ggml.merges[%zu]: expected \"left right\"", path, i);
        size_t ln = (size_t)(sp - s);
        ct_status st = ct__tok_add_merge(t, s, ln, sp + 1, len - ln - 1, (uint32_t)i, path);
        if (st) return st;
    }
    return CT_OK;
}

static ct_status add_split(ct_tokenizer *t, const char *re, ct__pt_type type, const char *path) {
    ct__pretok p = {0};
    p.type = type;
    p.beh = CT__SPLIT_ISOLATED;
    ct_status st = re ? ct__re_compile(re, strlen(re), 0, &p.re, path) : CT_OK;
    if (st) return st;
    ct__pretok *q = ct__realloc(t->pretoks, ((size_t)t->n_pretoks + 1) * sizeof *q);
    if (!q) { ct__pretok_free(&p); return ct__err(CT_ERR_NOMEM, "out of memory"); }
    t->pretoks = q;
    t->pretoks[t->n_pretoks++] = p;
    return CT_OK;
}

static ct_status add_norm(ct_tokenizer *t, ct__nm_type type, const char *a, const char *b) {
    ct__norm nm = {0};
    nm.type = type;
    nm.a = ct__strdup(a);
    nm.alen = strlen(a);
    if (b) { nm.b = ct__strdup(b); nm.blen = strlen(b); }
    ct__norm *q = (nm.a && (!b || nm.b)) ? ct__realloc(t->norms, ((size_t)t->n_norms + 1) * sizeof *q) : NULL;
    if (!q) { ct__norm_free(&nm); return ct__err(CT_ERR_NOMEM, "out of memory"); }
    t->norms = q;
    t->norms[t->n_norms++] = nm;
    return CT_OK;
}

/* tokenizer.ggml.<key>_token_id, if present and in range. */
static int32_t special_id(const ct_tokenizer *t, const ct_gguf *g, const char *key, int32_t dflt) {
    uint32_t u;
    if (!ct__gguf_get_u32(g, key, &u)) return dflt;
    return u < (uint32_t)t->n_vocab ? (int32_t)u : -1;
}

static ct_status setup_gpt2(ct_tokenizer *t, const ct_gguf *g, const char *path, int *add_bos) {
    const char *pre = "default";
    size_t pn = 7;
    ct__gguf_get_str(g, "tokenizer.ggml.pre", &pre, &pn);
    const char *const *res = ct__gguf_pre_regexes(pre, pn);
    if (!res) {
        ct__log(CT_LOG_WARN, "%s: tokenizer.ggml.pre '%.*s' is unknown; using llama.cpp's default pre-tokenizer", path,
                (int)(pn > 40 ? 40 : pn), pre);
        res = ct__gguf_pre_regexes("default", 7);
    }
    const char *llama3 = "|llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2|tekken|";
    t->ignore_merges = name_in(pre, pn, llama3);
    *add_bos = t->ignore_merges || name_in(pre, pn, "|chameleon|");
    t->kind = CT__KIND_BYTELEVEL;
    t->merge = CT__MERGE_RANK;
    ct_status st = read_merges(t, g, path);
    for (int i = 0; res[i] && !st; i++) st = add_split(t, res[i], CT__PT_SPLIT, path);
    return st ? st : add_split(t, NULL, CT__PT_BYTELEVEL, path); /* bytes -> unicode, no further split */
}

static ct_status setup_llama(ct_tokenizer *t, const ct_gguf *g, int *add_bos) {
    int prefix = 1;
    ct__gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &prefix);
    t->kind = CT__KIND_SPM;
    t->merge = CT__MERGE_SCORE;
    t->byte_fallback = 1;
    t->dec_strip_space = prefix;
    *add_bos = 1;
    ct_status st = prefix ? add_norm(t, CT__NM_PREPEND, "\xE2\x96\x81", NULL) : CT_OK;
    return st ? st : add_norm(t, CT__NM_REPLACE, " ", "\xE2\x96\x81");
}

ct_status ct__tokenizer_from_gguf(const struct ct_gguf *g, ct_tokenizer **out) {
    if (!out) return ct__err(CT_ERR_ARG, "ct__tokenizer_from_gguf: out is NULL");
    *out = NULL;
    const char *path = ct__gguf_path(g), *model;
    size_t mn;
    if (!ct__gguf_get_str(g, "tokenizer.ggml.model", &model, &mn))
        return ct__err(CT_ERR_MISSING, "%s: tokenizer.ggml.model: missing (the file carries no tokenizer)", path);
    int is_gpt2 = mn == 4 && !memcmp(model, "gpt2", 4), is_llama = mn == 5 && !memcmp(model, "llama", 5);
    if (!is_gpt2 && !is_llama)
        return ct__err(CT_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model '%.*s' is not supported (supported: gpt2, llama)", path,
                       (int)(mn > 40 ? 40 : mn), model);
    ct_tokenizer *t = ct__tok_new(path);
    if (!t) return ct__err(CT_ERR_NOMEM, "out of memory");
    int add_bos = 0, add_eos = 0;
    ct_status st = read_tokens(t, g, path, is_llama);
    if (!st) st = is_gpt2 ? setup_gpt2(t, g, path, &add_bos) : setup_llama(t, g, &add_bos);
    for (int32_t id = 0; id < t->n_vocab && !st; id++) {
        int ty = t->type[id];
        if ((ty == CT__TT_CONTROL || ty == CT__TT_USER || ty == CT__TT_UNKNOWN) && t->plen[id])
            st = ct__tok_add_added(t, t->pool ? t->pool + t->poff[id] : "", t->plen[id], id, ty != CT__TT_USER, 0, 0, 0, 0);
    }
    if (st) { ct_tokenizer_free(t); return st; }
    t->bos_id = special_id(t, g, "tokenizer.ggml.bos_token_id", is_llama && t->n_vocab > 1 ? 1 : -1);
    t->eos_id = special_id(t, g, "tokenizer.ggml.eos_token_id", is_llama && t->n_vocab > 2 ? 2 : -1);
    t->unk_id = special_id(t, g, "tokenizer.ggml.unknown_token_id", is_llama ? 0 : -1);
    ct__gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos);
    ct__gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &add_eos);
    if (add_bos && t->bos_id >= 0) t->tmpl_pre[t->n_tmpl_pre++] = t->bos_id;
    if (add_eos && t->eos_id >= 0) t->tmpl_post[t->n_tmpl_post++] = t->eos_id;
    const char *ct;
    size_t cn;
    if (ct__gguf_get_str(g, "tokenizer.chat_template", &ct, &cn) && !(t->chat_template = ct__strndup(ct, cn)))
        st = ct__err(CT_ERR_NOMEM, "out of memory");
    if (!st) st = ct__tok_finish(t);
    if (st) { ct_tokenizer_free(t); return st; }
    *out = t;
    return CT_OK;
}
