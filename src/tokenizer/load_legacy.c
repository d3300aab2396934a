/* src/tokenizer/load_legacy.c — the two pre-`tokenizers` vocabulary formats:
 *
 * GPT-2 encoder.json + vocab.bpe (OpenAI's release; the same pair is HF's
 * vocab.json + merges.txt): a JSON object piece -> id in the byte-level
 * alphabet, and a text file of merges "left right", one per line, after a
 * "#version" line. Pre-tokenizer: ByteLevel with GPT-2's regex, no prefix
 * space; "<|endoftext|>" is a special token and both BOS and EOS; no BOS is
 * added by default (as GPT2TokenizerFast).
 *
 * llama2.c tokenizer.bin: int32 max_token_length, then per token f32 score,
 * int32 length, bytes. The export wrote "▁" as ' ' and the control tokens as
 * "\n<s>\n", "\n</s>\n"; both are undone here so the vocabulary reads as the
 * SentencePiece model it came from. Merges by score, <0xNN> byte fallback,
 * BOS (id 1) added by default. vocab_size = number of entries in the file.
 * Leaves out: writing either format.
 */
#include <stdlib.h>
#include <string.h>

#include "formats/json.h"
#include "tokenizer/tok_internal.h"

/* ---- GPT-2 ------------------------------------------------------------------------ */

/* The merges file beside `path`: encoder.json -> vocab.bpe, vocab.json -> merges.txt. */
static char *merges_path(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dn = (size_t)(base - path);
    static const char *const pairs[][2] = {{"encoder.json", "vocab.bpe"}, {"vocab.json", "merges.txt"}};
    for (int k = 0; k < 2; k++) {
        const char *hit = strstr(base, pairs[k][0]);
        if (!hit) continue;
        size_t pre = (size_t)(hit - path), rest = strlen(hit + strlen(pairs[k][0]));
        char *p = ct__malloc(pre + strlen(pairs[k][1]) + rest + 1);
        if (!p) return NULL;
        memcpy(p, path, pre);
        strcpy(p + pre, pairs[k][1]);
        strcat(p, hit + strlen(pairs[k][0]));
        if (ct__file_exists(p)) return p;
        free(p);
    }
    for (int k = 0; k < 2; k++) {
        char *p = ct__malloc(dn + 12);
        if (!p) return NULL;
        memcpy(p, path, dn);
        strcpy(p + dn, pairs[k][1]);
        if (ct__file_exists(p)) return p;
        free(p);
    }
    return NULL;
}

static ct_status read_bpe_merges(ct_tokenizer *t, const char *mpath) {
    char *text;
    size_t len;
    ct_status st = ct__read_file(mpath, &text, &len);
    if (st) return st;
    uint32_t rank = 0;
    size_t line = 0;
    for (size_t i = 0; i < len && !st; line++) {
        const char *s = text + i, *e = memchr(s, '\n', len - i);
        size_t n = e ? (size_t)(e - s) : len - i;
        i += n + 1;
        if (n && s[n - 1] == '\r') n--;
        if (!n || (line == 0 && n >= 8 && !memcmp(s, "#version", 8))) continue;
        const char *sp = n > 1 ? memchr(s + 1, ' ', n - 1) : NULL;
        if (!sp) {
            st = ct__err(CT_ERR_FORMAT, "%s:%zu: expected \"left right\"", mpath, line + 1);
            break;
        }
        size_t ln = (size_t)(sp - s);
        st = ct__tok_add_merge(t, s, ln, sp + 1, n - ln - 1, rank++, mpath);
    }
    free(text);
    return st;
}

ct_status ct__tok_load_gpt2(const char *path, const ct_json *root, ct_tokenizer **out) {
    *out = NULL;
    if (!root || root->type != CT_JSON_OBJ || !root->u.obj.n)
        return ct__err(CT_ERR_FORMAT, "%s: expected a tokenizer.json (with \"model\") or a GPT-2 encoder.json object", path);
    int64_t maxid = -1, id;
    for (size_t i = 0; i < root->u.obj.n; i++) {
        const ct_json *v = &root->u.obj.vals[i];
        id = v->type == CT_JSON_NUM && v->u.num == (double)(int64_t)v->u.num ? (int64_t)v->u.num : -1;
        if (id < 0 || id >= (1 << 24))
            return ct__err(CT_ERR_FORMAT, "%s: '%.*s': expected an integer token id in [0, 16777216)", path,
                           (int)(root->u.obj.klens[i] > 60 ? 60 : root->u.obj.klens[i]), root->u.obj.keys[i]);
        if (root->u.obj.vals[i].u.num > (double)maxid) maxid = (int64_t)root->u.obj.vals[i].u.num;
    }
    char *mpath = merges_path(path);
    if (!mpath)
        return ct__err(CT_ERR_MISSING, "%s: no merges file beside it (vocab.bpe for encoder.json, merges.txt for vocab.json)", path);
    ct_tokenizer *t = ct__tok_new(path);
    ct_status st = t ? ct__tok_alloc(t, (int)maxid + 1, 0) : ct__err(CT_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < (t ? root->u.obj.n : 0) && !st; i++)
        st = ct__tok_set_piece(t, (int32_t)root->u.obj.vals[i].u.num, root->u.obj.keys[i], root->u.obj.klens[i]);
    if (!st) st = ct__tok_build_vocab(t);
    if (!st) {
        t->kind = CT__KIND_BYTELEVEL;
        t->merge = CT__MERGE_RANK;
        st = read_bpe_merges(t, mpath);
    }
    if (!st) {
        ct__pretok p = {0};
        p.type = CT__PT_BYTELEVEL;
        st = ct__re_compile(ct__gpt2_pattern, strlen(ct__gpt2_pattern), 0, &p.re, path);
        if (!st && !(t->pretoks = ct__malloc(sizeof *t->pretoks))) st = ct__err(CT_ERR_NOMEM, "out of memory");
        if (!st) t->pretoks[t->n_pretoks++] = p;
        else ct__pretok_free(&p);
    }
    int32_t eot = st ? -1 : ct__tok_lookup(t, "<|endoftext|>", 13);
    if (eot >= 0) {
        st = ct__tok_add_added(t, "<|endoftext|>", 13, eot, 1, 0, 0, 0, 0);
        t->bos_id = t->eos_id = eot;
    }
    if (!st) st = ct__tok_finish(t);
    free(mpath);
    if (st) { ct_tokenizer_free(t); return st; }
    *out = t;
    return CT_OK;
}

/* ---- llama2.c tokenizer.bin -------------------------------------------------------- */

static int32_t rd_i32(const uint8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }

ct_status ct__tok_load_llama2c(const char *path, const uint8_t *d, size_t size, ct_tokenizer **out) {
    *out = NULL;
    if (size < 4) return ct__err(CT_ERR_FORMAT, "%s: %zu bytes: too short for a llama2.c tokenizer.bin", path, size);
    int32_t maxlen = rd_i32(d);
    if (maxlen <= 0 || maxlen > (1 << 16))
        return ct__err(CT_ERR_FORMAT, "%s: max_token_length %d outside [1, 65536]; not a tokenizer.bin, tokenizer.json, "
                       "encoder.json or GGUF file", path, maxlen);
    size_t n = 0, off = 4;
    while (off < size) { /* count entries and validate the layout first */
        int32_t len = off + 8 <= size ? rd_i32(d + off + 4) : -1;
        if (len < 0 || len > maxlen || (size_t)len > size - off - 8)
            return ct__err(CT_ERR_FORMAT, "%s: token %zu at byte %zu: length %d outside [0, %d] or past the end of the file",
                           path, n, off, len, maxlen);
        off += 8 + (size_t)len;
        if (++n > (1 << 24)) return ct__err(CT_ERR_RANGE, "%s: more than 16M tokens", path);
    }
    if (!n) return ct__err(CT_ERR_FORMAT, "%s: no tokens after the header", path);
    ct_tokenizer *t = ct__tok_new(path);
    ct_status st = t ? ct__tok_alloc(t, (int)n, 1) : ct__err(CT_ERR_NOMEM, "out of memory");
    ct__buf b = {0};
    off = 4;
    for (size_t i = 0; i < n && !st; i++) {
        memcpy(&t->score[i], d + off, 4);
        size_t len = (size_t)rd_i32(d + off + 4);
        const char *s = (const char *)d + off + 8;
        off += 8 + len;
        b.n = 0;
        if (len > 2 && s[0] == '\n' && s[len - 1] == '\n') { /* "\n<s>\n": a control token */
            st = ct__buf_put(&b, s + 1, len - 2);
            t->type[i] = CT__TT_CONTROL;
        } else {
            for (size_t k = 0; k < len && !st; k++)
                st = s[k] == ' ' ? ct__buf_put(&b, "\xE2\x96\x81", 3) : ct__buf_put(&b, s + k, 1);
            if (len == 5 && !memcmp(s, "<unk>", 5)) t->type[i] = CT__TT_UNKNOWN;
        }
        if (!st) st = ct__tok_set_piece(t, (int32_t)i, b.p ? b.p : "", b.n);
    }
    free(b.p);
    if (!st) st = ct__tok_build_vocab(t);
    for (int32_t id = 0; id < (int32_t)n && !st; id++)
        if ((t->type[id] == CT__TT_CONTROL || t->type[id] == CT__TT_UNKNOWN) && t->plen[id])
            st = ct__tok_add_added(t, t->pool ? t->pool + t->poff[id] : "", t->plen[id], id, 1, 0, 0, 0, 0);
    if (!st) {
        t->kind = CT__KIND_SPM;
        t->merge = CT__MERGE_SCORE;
        t->byte_fallback = 1;
        t->dec_strip_space = 1;
        t->unk_id = t->type[0] == CT__TT_UNKNOWN ? 0 : -1;
        t->bos_id = n > 1 ? 1 : -1; /* llama2.c's fixed ids */
        t->eos_id = n > 2 ? 2 : -1;
        if (t->bos_id >= 0) t->tmpl_pre[t->n_tmpl_pre++] = t->bos_id;
        t->norms = ct__calloc(2, sizeof *t->norms);
        if (!t->norms) st = ct__err(CT_ERR_NOMEM, "out of memory");
    }
    if (!st) {
        t->n_norms = 2;
        t->norms[0] = (ct__norm){.type = CT__NM_PREPEND, .a = ct__strdup("\xE2\x96\x81"), .alen = 3};
        t->norms[1] = (ct__norm){.type = CT__NM_REPLACE, .a = ct__strdup(" "), .alen = 1,
                                 .b = ct__strdup("\xE2\x96\x81"), .blen = 3};
        if (!t->norms[0].a || !t->norms[1].a || !t->norms[1].b) st = ct__err(CT_ERR_NOMEM, "out of memory");
    }
    if (!st) st = ct__tok_finish(t);
    if (st) { ct_tokenizer_free(t); return st; }
    *out = t;
    return CT_OK;
}
