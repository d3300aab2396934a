/* src/tokenizer/load_hf.c — Hugging Face tokenizer.json (the `tokenizers`
 * serialization) with model type BPE, plus tokenizer_config.json /
 * chat_template.jinja beside it for BOS/EOS names and the chat template.
 *
 * Read: model.{vocab, merges (as "a b" strings or [a, b] pairs), unk_token,
 * byte_fallback, fuse_unk, ignore_merges}; added_tokens; normalizer
 * (Sequence, Prepend, Replace, Strip, NFC); pre_tokenizer (Sequence, Split,
 * ByteLevel, Metaspace, Digits, Whitespace, WhitespaceSplit, Punctuation,
 * CharDelimiterSplit); post_processor (TemplateProcessing, Roberta/Bert
 * processing, Sequence, ByteLevel) for the ids put around a sequence; decoder
 * (ByteLevel, Metaspace, Sequence of Replace/ByteFallback/Fuse/Strip) for the
 * dummy-prefix strip. The vocabulary is byte-level when a ByteLevel
 * pre-tokenizer is present, SentencePiece-style otherwise.
 * Leaves out (CT_ERR_UNSUPPORTED, naming the field): WordPiece/Unigram/
 * WordLevel models, Lowercase/NFKC/NFD/Precompiled normalizers, BERT
 * pre-tokenizers, continuing_subword_prefix / end_of_word_suffix.
 */
#include <stdlib.h>
#include <string.h>

#include "formats/json.h"
#include "tokenizer/tok_internal.h"

#define MAX_ID (1 << 24)

static int jstr(const ct_json *j, const char **s, size_t *n) {
    if (!j || j->type != CT_JSON_STR) return 0;
    *s = j->u.str.s;
    *n = j->u.str.len;
    return 1;
}

static int jint(const ct_json *j, int64_t *v) {
    if (!j || j->type != CT_JSON_NUM || j->u.num != (double)(int64_t)j->u.num) return 0;
    *v = (int64_t)j->u.num;
    return 1;
}

static int jbool(const ct_json *obj, const char *key, int dflt) {
    int b;
    return ct__json_get_bool(obj, key, &b) ? b : dflt;
}

static int type_is(const ct_json *j, const char *name) {
    const char *ty = ct__json_get_str(j, "type");
    return ty && !strcmp(ty, name);
}

/* ---- normalizers ------------------------------------------------------------------ */

static ct_status add_norm(ct_tokenizer *t, ct__norm nm) {
    ct__norm *q = ct__realloc(t->norms, ((size_t)t->n_norms + 1) * sizeof *q);
    if (!q) { ct__norm_free(&nm); return ct__err(CT_ERR_NOMEM, "out of memory"); }
    t->norms = q;
    t->norms[t->n_norms++] = nm;
    return CT_OK;
}

/* {"String": s} or {"Regex": r}: literal text (*re NULL) or a compiled regex. */
static ct_status pattern(const ct_json *p, const char *what, const char *path, char **lit, size_t *ln, pcre2_code **re) {
    const char *s;
    size_t n;
    *re = NULL;
    if (lit) *lit = NULL;
    if (jstr(ct__json_get(p, "String"), &s, &n)) {
        if (lit) {
            if (!(*lit = ct__strndup(s, n))) return ct__err(CT_ERR_NOMEM, "out of memory");
            *ln = n;
            return CT_OK;
        }
        return ct__re_compile(s, n, 1, re, path);
    }
    if (jstr(ct__json_get(p, "Regex"), &s, &n)) return ct__re_compile(s, n, 0, re, path);
    return ct__err(CT_ERR_FORMAT, "%s: %s.pattern: expected {\"String\": ...} or {\"Regex\": ...}", path, what);
}

static ct_status parse_norm(ct_tokenizer *t, const ct_json *j, const char *path, int depth) {
    if (!j || j->type == CT_JSON_NULL) return CT_OK;
    const char *ty = ct__json_get_str(j, "type");
    if (!ty) return ct__err(CT_ERR_FORMAT, "%s: normalizer: missing \"type\"", path);
    ct_status st;
    if (!strcmp(ty, "Sequence") && depth < 4) {
        const ct_json *a = ct__json_get(j, "normalizers");
        if (!a || a->type != CT_JSON_ARR) return ct__err(CT_ERR_FORMAT, "%s: normalizer.normalizers: expected an array", path);
        for (size_t i = 0; i < a->u.arr.n; i++)
            if ((st = parse_norm(t, &a->u.arr.items[i], path, depth + 1))) return st;
        return CT_OK;
    }
    ct__norm nm = {0};
    const char *s;
    size_t n;
    if (!strcmp(ty, "Prepend")) {
        if (!jstr(ct__json_get(j, "prepend"), &s, &n)) return ct__err(CT_ERR_FORMAT, "%s: normalizer Prepend: missing \"prepend\"", path);
        nm.type = CT__NM_PREPEND;
        if (!(nm.a = ct__strndup(s, n))) return ct__err(CT_ERR_NOMEM, "out of memory");
        nm.alen = n;
    } else if (!strcmp(ty, "Replace")) {
        nm.type = CT__NM_REPLACE;
        if (!jstr(ct__json_get(j, "content"), &s, &n)) return ct__err(CT_ERR_FORMAT, "%s: normalizer Replace: missing \"content\"", path);
        if (!(nm.b = ct__strndup(s, n))) return ct__err(CT_ERR_NOMEM, "out of memory");
        nm.blen = n;
        if ((st = pattern(ct__json_get(j, "pattern"), "normalizer Replace", path, &nm.a, &nm.alen, &nm.re))) {
            ct__norm_free(&nm);
            return st;
        }
    } else if (!strcmp(ty, "Strip")) {
        nm.type = CT__NM_STRIP;
        nm.left = jbool(j, "strip_left", 1);
        nm.right = jbool(j, "strip_right", 1);
    } else if (!strcmp(ty, "NFC")) {
        nm.type = CT__NM_NFC;
    } else {
        return ct__err(CT_ERR_UNSUPPORTED, "%s: normalizer '%s' is not supported (supported: Sequence, Prepend, Replace, Strip, NFC)",
                       path, ty);
    }
    return add_norm(t, nm);
}

/* ---- pre-tokenizers ------------------------------------------------------------------ */

static ct_status add_pretok(ct_tokenizer *t, ct__pretok p) {
    ct__pretok *q = ct__realloc(t->pretoks, ((size_t)t->n_pretoks + 1) * sizeof *q);
    if (!q) { ct__pretok_free(&p); return ct__err(CT_ERR_NOMEM, "out of memory"); }
    t->pretoks = q;
    t->pretoks[t->n_pretoks++] = p;
    return CT_OK;
}

static ct_status split_step(ct_tokenizer *t, const char *re, size_t n, int literal, ct__split_beh beh, int invert, const char *path) {
    ct__pretok p = {0};
    p.type = CT__PT_SPLIT;
    p.beh = beh;
    p.invert = invert;
    ct_status st = ct__re_compile(re, n, literal, &p.re, path);
    return st ? st : add_pretok(t, p);
}

static int behaviour(const char *s, ct__split_beh *b) {
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    for (int i = 0; i < 5; i++)
        if (s && !strcmp(s, names[i])) { *b = (ct__split_beh)i; return 1; }
    return 0;
}

static int prepend_scheme(const ct_json *j) {
    const char *ps = ct__json_get_str(j, "prepend_scheme");
    if (ps) return !strcmp(ps, "first") ? CT__PREPEND_FIRST : !strcmp(ps, "never") ? CT__PREPEND_NEVER : CT__PREPEND_ALWAYS;
    return jbool(j, "add_prefix_space", 1) ? CT__PREPEND_ALWAYS : CT__PREPEND_NEVER;
}

static ct_status parse_pretok(ct_tokenizer *t, const ct_json *j, const char *path, int depth, int *bytelevel) {
    if (!j || j->type == CT_JSON_NULL) return CT_OK;
    const char *ty = ct__json_get_str(j, "type");
    if (!ty) return ct__err(CT_ERR_FORMAT, "%s: pre_tokenizer: missing \"type\"", path);
    if (*bytelevel) return ct__err(CT_ERR_UNSUPPORTED, "%s: pre_tokenizer: '%s' after ByteLevel is not supported", path, ty);
    ct_status st;
    const char *s;
    size_t n;
    if (!strcmp(ty, "Sequence") && depth < 4) {
        const ct_json *a = ct__json_get(j, "pretokenizers");
        if (!a || a->type != CT_JSON_ARR) return ct__err(CT_ERR_FORMAT, "%s: pre_tokenizer.pretokenizers: expected an array", path);
        for (size_t i = 0; i < a->u.arr.n; i++)
            if ((st = parse_pretok(t, &a->u.arr.items[i], path, depth + 1, bytelevel))) return st;
        return CT_OK;
    }
    if (!strcmp(ty, "Split")) {
        ct__pretok p = {0};
        p.type = CT__PT_SPLIT;
        p.invert = jbool(j, "invert", 0);
        if (!behaviour(ct__json_get_str(j, "behavior"), &p.beh))
            return ct__err(CT_ERR_FORMAT, "%s: pre_tokenizer Split: unknown \"behavior\"", path);
        if ((st = pattern(ct__json_get(j, "pattern"), "pre_tokenizer Split", path, NULL, NULL, &p.re))) return st;
        return add_pretok(t, p);
    }
    if (!strcmp(ty, "ByteLevel")) {
        ct__pretok p = {0};
        p.type = CT__PT_BYTELEVEL;
        p.add_prefix_space = jbool(j, "add_prefix_space", 1);
        if (jbool(j, "use_regex", 1) && (st = ct__re_compile(ct__gpt2_pattern, strlen(ct__gpt2_pattern), 0, &p.re, path)))
            return st;
        *bytelevel = 1;
        return add_pretok(t, p);
    }
    if (!strcmp(ty, "Metaspace")) {
        ct__pretok p = {0};
        p.type = CT__PT_METASPACE;
        if (!jstr(ct__json_get(j, "replacement"), &s, &n)) { s = "\xE2\x96\x81"; n = 3; }
        if (!n || n > 4) return ct__err(CT_ERR_FORMAT, "%s: pre_tokenizer Metaspace: replacement must be one character", path);
        memcpy(p.repl, s, n);
        p.repl_len = (int)n;
        p.prepend = prepend_scheme(j);
        p.split = jbool(j, "split", 1);
        return add_pretok(t, p);
    }
    if (!strcmp(ty, "Digits")) {
        const char *re = jbool(j, "individual_digits", 0) ? "\\p{N}" : "\\p{N}+";
        return split_step(t, re, strlen(re), 0, CT__SPLIT_ISOLATED, 0, path);
    }
    if (!strcmp(ty, "Whitespace")) {
        const char *re = "\\w+|[^\\w\\s]+";
        return split_step(t, re, strlen(re), 0, CT__SPLIT_REMOVED, 1, path);
    }
    if (!strcmp(ty, "WhitespaceSplit")) return split_step(t, "\\s+", 3, 0, CT__SPLIT_REMOVED, 0, path);
    if (!strcmp(ty, "Punctuation")) {
        ct__split_beh b = CT__SPLIT_ISOLATED;
        const char *bs = ct__json_get_str(j, "behavior");
        if (bs && !behaviour(bs, &b)) return ct__err(CT_ERR_FORMAT, "%s: pre_tokenizer Punctuation: unknown \"behavior\"", path);
        const char *re = "[\\p{P}!-/:-@\\[-`{-~]";
        return split_step(t, re, strlen(re), 0, b, 0, path);
    }
    if (!strcmp(ty, "CharDelimiterSplit") && jstr(ct__json_get(j, "delimiter"), &s, &n))
        return split_step(t, s, n, 1, CT__SPLIT_REMOVED, 0, path);
    return ct__err(CT_ERR_UNSUPPORTED,
                   "%s: pre_tokenizer '%s' is not supported (supported: Sequence, Split, ByteLevel, Metaspace, Digits, "
                   "Whitespace, WhitespaceSplit, Punctuation, CharDelimiterSplit)", path, ty);
}

/* ---- post-processor and decoder --------------------------------------------------------- */

static void tmpl_add(ct_tokenizer *t, int post, int64_t id) {
    if (id < 0 || id >= t->n_vocab) return;
    if (post && t->n_tmpl_post < 4) t->tmpl_post[t->n_tmpl_post++] = (int32_t)id;
    if (!post && t->n_tmpl_pre < 4) t->tmpl_pre[t->n_tmpl_pre++] = (int32_t)id;
}

static void parse_post(ct_tokenizer *t, const ct_json *j, int depth) {
    if (!j || j->type != CT_JSON_OBJ || depth > 4) return;
    if (type_is(j, "Sequence")) {
        const ct_json *a = ct__json_get(j, "processors");
        for (size_t i = 0; a && a->type == CT_JSON_ARR && i < a->u.arr.n; i++) parse_post(t, &a->u.arr.items[i], depth + 1);
    } else if (type_is(j, "TemplateProcessing")) {
        const ct_json *single = ct__json_get(j, "single"), *sp = ct__json_get(j, "special_tokens");
        int post = 0;
        for (size_t i = 0; single && single->type == CT_JSON_ARR && i < single->u.arr.n; i++) {
            const ct_json *it = &single->u.arr.items[i];
            if (ct__json_get(it, "Sequence")) { post = 1; continue; }
            const char *name = ct__json_get_str(ct__json_get(it, "SpecialToken"), "id");
            const ct_json *ids = name ? ct__json_get(ct__json_get(sp, name), "ids") : NULL;
            for (size_t k = 0; ids && ids->type == CT_JSON_ARR && k < ids->u.arr.n; k++) {
                int64_t id;
                if (jint(&ids->u.arr.items[k], &id)) tmpl_add(t, post, id);
            }
        }
    } else if (type_is(j, "RobertaProcessing") || type_is(j, "BertProcessing")) {
        const ct_json *cls = ct__json_get(j, "cls"), *sep = ct__json_get(j, "sep");
        int64_t id;
        if (cls && cls->type == CT_JSON_ARR && cls->u.arr.n == 2 && jint(&cls->u.arr.items[1], &id)) tmpl_add(t, 0, id);
        if (sep && sep->type == CT_JSON_ARR && sep->u.arr.n == 2 && jint(&sep->u.arr.items[1], &id)) tmpl_add(t, 1, id);
    }
}

static void parse_decoder(ct_tokenizer *t, const ct_json *j, int depth) {
    if (!j || j->type != CT_JSON_OBJ || depth > 4) return;
    if (type_is(j, "Sequence")) {
        const ct_json *a = ct__json_get(j, "decoders");
        for (size_t i = 0; a && a->type == CT_JSON_ARR && i < a->u.arr.n; i++) parse_decoder(t, &a->u.arr.items[i], depth + 1);
    } else if (type_is(j, "Strip")) {
        const char *c = ct__json_get_str(j, "content");
        int64_t k;
        if (c && !strcmp(c, " ") && ct__json_get_int(j, "start", &k) && k > 0 && k < 64) t->dec_strip_space = (int)k;
    } else if (type_is(j, "Metaspace")) {
        t->dec_strip_space = prepend_scheme(j) != CT__PREPEND_NEVER;
    }
}

/* ---- tokenizer_config.json ---------------------------------------------------------------- */

/* "bos_token": "<s>" or {"content": "<s>", ...} */
static int32_t config_token(const ct_tokenizer *t, const ct_json *cfg, const char *key) {
    const ct_json *v = ct__json_get(cfg, key);
    const char *s = v && v->type == CT_JSON_STR ? v->u.str.s : ct__json_get_str(v, "content");
    return s ? ct_tokenizer_token_id(t, s) : -1;
}

static ct_status set_template(ct_tokenizer *t, const char *s, size_t n) {
    free(t->chat_template);
    t->chat_template = ct__strndup(s, n);
    return t->chat_template ? CT_OK : ct__err(CT_ERR_NOMEM, "out of memory");
}

/* EOS when no config names it: the first special added token with a usual name. */
static int32_t guess_eos(const ct_tokenizer *t) {
    static const char *const names[] = {"</s>", "<|endoftext|>", "<|end_of_text|>", "<|eot_id|>", "<|im_end|>", "<eos>", NULL};
    for (int k = 0; names[k]; k++) {
        int32_t id = ct_tokenizer_token_id(t, names[k]);
        if (id >= 0) return id;
    }
    return -1;
}

static ct_status read_config(ct_tokenizer *t, const char *path) {
    const char *slash = strrchr(path, '/');
    size_t dn = slash ? (size_t)(slash - path) : 1;
    char *dir = ct__strndup(slash ? path : ".", dn);
    char *cpath = dir ? ct__path_join(dir, "tokenizer_config.json") : NULL;
    char *jpath = dir ? ct__path_join(dir, "chat_template.jinja") : NULL;
    ct_status st = (!cpath || !jpath) ? ct__err(CT_ERR_NOMEM, "out of memory") : CT_OK;
    char *text = NULL;
    size_t len = 0;
    ct_json *cfg = NULL;
    int have = !st && ct__file_exists(cpath);
    if (have && ((st = ct__read_file(cpath, &text, &len)) || (st = ct__json_parse(text, len, cpath, &cfg)))) {
        ct__log(CT_LOG_WARN, "%s: ignored: %s", cpath, ct_errmsg()); /* the tokenizer itself is fine */
        st = CT_OK;
        have = 0;
    }
    if (!have && !st) { /* no config: BOS/EOS by the usual names */
        if (t->bos_id < 0) t->bos_id = ct_tokenizer_token_id(t, "<|endoftext|>");
        if (t->eos_id < 0) t->eos_id = guess_eos(t);
    }
    if (cfg) {
        int32_t b = config_token(t, cfg, "bos_token"), e = config_token(t, cfg, "eos_token");
        if (b >= 0) t->bos_id = b;
        if (e >= 0) t->eos_id = e;
        const ct_json *ct = ct__json_get(cfg, "chat_template");
        if (ct && ct->type == CT_JSON_STR) {
            st = set_template(t, ct->u.str.s, ct->u.str.len);
        } else if (ct && ct->type == CT_JSON_ARR) { /* [{"name": ..., "template": ...}]: "default" or the first */
            const ct_json *pick = NULL;
            for (size_t i = 0; i < ct->u.arr.n; i++) {
                const char *nm = ct__json_get_str(&ct->u.arr.items[i], "name");
                if (!pick || (nm && !strcmp(nm, "default"))) pick = &ct->u.arr.items[i];
            }
            const ct_json *tp = ct__json_get(pick, "template");
            if (tp && tp->type == CT_JSON_STR) st = set_template(t, tp->u.str.s, tp->u.str.len);
        }
    }
    if (!st && !t->chat_template && ct__file_exists(jpath)) {
        free(text);
        text = NULL;
        if (!(st = ct__read_file(jpath, &text, &len))) st = set_template(t, text, len);
    }
    ct__json_free(cfg);
    free(text);
    free(dir); free(cpath); free(jpath);
    return st;
}

/* ---- the model ------------------------------------------------------------------------------ */

static ct_status read_vocab(ct_tokenizer *t, const ct_json *vocab, const ct_json *added, const char *path) {
    int64_t maxid = -1, id;
    for (size_t i = 0; i < vocab->u.obj.n; i++) {
        if (!jint(&vocab->u.obj.vals[i], &id) || id < 0 || id >= MAX_ID)
            return ct__err(CT_ERR_FORMAT, "%s: model.vocab['%.*s']: id must be an integer in [0, %d)", path,
                           (int)(vocab->u.obj.klens[i] > 60 ? 60 : vocab->u.obj.klens[i]), vocab->u.obj.keys[i], MAX_ID);
        if (id > maxid) maxid = id;
    }
    for (size_t i = 0; added && i < added->u.arr.n; i++) {
        if (!jint(ct__json_get(&added->u.arr.items[i], "id"), &id) || id < 0 || id >= MAX_ID)
            return ct__err(CT_ERR_FORMAT, "%s: added_tokens[%zu].id: must be an integer in [0, %d)", path, i, MAX_ID);
        if (id > maxid) maxid = id;
    }
    if (maxid < 0) return ct__err(CT_ERR_FORMAT, "%s: model.vocab is empty", path);
    ct_status st = ct__tok_alloc(t, (int)maxid + 1, 0);
    for (size_t i = 0; i < vocab->u.obj.n && !st; i++) {
        jint(&vocab->u.obj.vals[i], &id);
        st = ct__tok_set_piece(t, (int32_t)id, vocab->u.obj.keys[i], vocab->u.obj.klens[i]);
    }
    for (size_t i = 0; added && i < added->u.arr.n && !st; i++) { /* ids beyond the model's vocabulary */
        const char *s;
        size_t n;
        jint(ct__json_get(&added->u.arr.items[i], "id"), &id);
        if (!t->plen[id] && jstr(ct__json_get(&added->u.arr.items[i], "content"), &s, &n))
            st = ct__tok_set_piece(t, (int32_t)id, s, n);
    }
    return st ? st : ct__tok_build_vocab(t);
}

static ct_status read_merges(ct_tokenizer *t, const ct_json *merges, const char *path) {
    if (!merges || merges->type == CT_JSON_NULL) return CT_OK;
    if (merges->type != CT_JSON_ARR) return ct__err(CT_ERR_FORMAT, "%s: model.merges: expected an array", path);
    for (size_t i = 0; i < merges->u.arr.n; i++) {
        const ct_json *m = &merges->u.arr.items[i];
        const char *l, *r;
        size_t ln, rn;
        if (m->type == CT_JSON_STR) {
            const char *sp = m->u.str.len > 1 ? memchr(m->u.str.s + 1, ' ', m->u.str.len - 1) : NULL;
            if (!sp) return ct__err(CT_ERR_FORMAT, "%s: model.merges[%zu]: expected \"left right\"", path, i);
            l = m->u.str.s;
            ln = (size_t)(sp - l);
            r = sp + 1;
            rn = m->u.str.len - ln - 1;
        } else if (!(m->type == CT_JSON_ARR && m->u.arr.n == 2 && jstr(&m->u.arr.items[0], &l, &ln) &&
                     jstr(&m->u.arr.items[1], &r, &rn))) {
            return ct__err(CT_ERR_FORMAT, "%s: model.merges[%zu]: expected \"left right\" or [left, right]", path, i);
        }
        ct_status st = ct__tok_add_merge(t, l, ln, r, rn, (uint32_t)i, path);
        if (st) return st;
    }
    return CT_OK;
}

static ct_status read_added(ct_tokenizer *t, const ct_json *added, const char *path) {
    ct_status st = CT_OK;
    ct__buf nb = {0};
    ct__pt_scratch *sc = NULL;
    for (size_t i = 0; added && i < added->u.arr.n && !st; i++) {
        const ct_json *a = &added->u.arr.items[i];
        const char *s;
        size_t n;
        int64_t id = -1;
        if (!jstr(ct__json_get(a, "content"), &s, &n) || !n) {
            st = ct__err(CT_ERR_FORMAT, "%s: added_tokens[%zu].content: expected a non-empty string", path, i);
            break;
        }
        jint(ct__json_get(a, "id"), &id);
        int special = jbool(a, "special", 0), normalized = jbool(a, "normalized", !special);
        if (normalized && t->n_norms) { /* matched against normalized text, so normalize it too */
            if ((st = ct__normalize(t, s, n, &nb, &sc))) break;
            s = nb.p;
            n = nb.n;
        }
        int sw = jbool(a, "single_word", 0);
        st = ct__tok_add_added(t, s, n, (int32_t)id, special, normalized, jbool(a, "lstrip", 0), jbool(a, "rstrip", 0), sw);
        if (!st && sw && !t->word_re) st = ct__re_compile("\\w", 2, 0, &t->word_re, path);
    }
    free(nb.p);
    ct__pt_scratch_free(sc);
    return st;
}

static ct_status read_model(ct_tokenizer *t, const ct_json *model, const ct_json *added, const char *path) {
    const char *ty = ct__json_get_str(model, "type");
    if (ty && strcmp(ty, "BPE"))
        return ct__err(CT_ERR_UNSUPPORTED, "%s: model.type '%s' is not supported; ctune reads BPE tokenizers", path, ty);
    const ct_json *vocab = ct__json_get(model, "vocab");
    if (!vocab || vocab->type != CT_JSON_OBJ) return ct__err(CT_ERR_FORMAT, "%s: model.vocab: expected an object", path);
    if (added && added->type != CT_JSON_ARR) return ct__err(CT_ERR_FORMAT, "%s: added_tokens: expected an array", path);
    const char *s;
    size_t n;
    if ((jstr(ct__json_get(model, "continuing_subword_prefix"), &s, &n) && n) ||
        (jstr(ct__json_get(model, "end_of_word_suffix"), &s, &n) && n))
        return ct__err(CT_ERR_UNSUPPORTED, "%s: model: continuing_subword_prefix/end_of_word_suffix are not supported", path);
    double dropout;
    if (ct__json_get_num(model, "dropout", &dropout) && dropout > 0)
        ct__log(CT_LOG_WARN, "%s: model.dropout %g ignored (encoding is deterministic)", path, dropout);
    ct_status st = read_vocab(t, vocab, added, path);
    if (!st) st = read_merges(t, ct__json_get(model, "merges"), path);
    if (st) return st;
    t->byte_fallback = jbool(model, "byte_fallback", 0);
    t->fuse_unk = jbool(model, "fuse_unk", 0);
    t->ignore_merges = jbool(model, "ignore_merges", 0);
    if (jstr(ct__json_get(model, "unk_token"), &s, &n)) {
        t->unk_id = ct__tok_lookup(t, s, n);
        if (t->unk_id < 0)
            return ct__err(CT_ERR_FORMAT, "%s: model.unk_token '%.*s' is not in the vocabulary", path, (int)(n > 40 ? 40 : n), s);
    }
    return CT_OK;
}

ct_status ct__tok_load_hf_json(const char *path, const ct_json *root, ct_tokenizer **out) {
    *out = NULL;
    ct_tokenizer *t = ct__tok_new(path);
    if (!t) return ct__err(CT_ERR_NOMEM, "out of memory");
    const ct_json *model = ct__json_get(root, "model"), *added = ct__json_get(root, "added_tokens");
    if (added && added->type == CT_JSON_NULL) added = NULL;
    int bytelevel = 0;
    ct_status st = model && model->type == CT_JSON_OBJ ? CT_OK : ct__err(CT_ERR_FORMAT, "%s: \"model\": expected an object", path);
    if (!st) st = read_model(t, model, added, path);
    if (!st) st = parse_norm(t, ct__json_get(root, "normalizer"), path, 0);
    if (!st) st = parse_pretok(t, ct__json_get(root, "pre_tokenizer"), path, 0, &bytelevel);
    if (!st) {
        t->kind = bytelevel ? CT__KIND_BYTELEVEL : CT__KIND_SPM;
        t->merge = CT__MERGE_RANK;
        st = read_added(t, added, path);
    }
    if (!st) {
        parse_post(t, ct__json_get(root, "post_processor"), 0);
        parse_decoder(t, ct__json_get(root, "decoder"), 0);
        if (t->n_tmpl_pre) t->bos_id = t->tmpl_pre[0];
        st = read_config(t, path);
    }
    if (!st) st = ct__tok_finish(t);
    if (st) { ct_tokenizer_free(t); return st; }
    *out = t;
    return CT_OK;
}
