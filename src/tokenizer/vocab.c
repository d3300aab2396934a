/* src/tokenizer/vocab.c — the tables behind a tokenizer: piece storage, the
 * piece -> id hash map, the merge-pair hash map, added tokens, GPT-2's
 * bytes-to-unicode alphabet, UTF-8 helpers, and the per-id decoded bytes that
 * make decoding a lookup.
 *
 * Both maps are open addressing with linear probing over power-of-two tables
 * kept at most half full; keys of the string map are the pieces themselves
 * (the table stores id + 1), so a 150k vocabulary costs 1 MB of slots.
 * Leaves out: removing entries (tables are built once, then read-only).
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

/* ---- growable buffers -------------------------------------------------------- */

ct_status ct__buf_put(ct__buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n) {
            if (cap > SIZE_MAX / 2) return ct__err(CT_ERR_NOMEM, "tokenizer: buffer too large");
            cap *= 2;
        }
        char *q = ct__realloc(b->p, cap);
        if (!q) return ct__err(CT_ERR_NOMEM, "tokenizer: out of memory (%zu bytes)", cap);
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
    return CT_OK;
}

ct_status ct__ids_push(ct__ids *v, int32_t id) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *q = ct__realloc(v->v, cap * sizeof *q);
        if (!q) return ct__err(CT_ERR_NOMEM, "tokenizer: out of memory (%zu ids)", cap);
        v->v = q;
        v->cap = cap;
    }
    v->v[v->n++] = id;
    return CT_OK;
}

/* ---- UTF-8 -------------------------------------------------------------------- */

int ct__utf8_get(const char *s, size_t n, uint32_t *cp) {
    const uint8_t *u = (const uint8_t *)s;
    if (n == 0) return 0;
    if (u[0] < 0x80) { *cp = u[0]; return 1; }
    int len = u[0] >= 0xF0 ? 4 : u[0] >= 0xE0 ? 3 : u[0] >= 0xC2 ? 2 : 0;
    if (!len || u[0] > 0xF4 || (size_t)len > n) return 0;
    uint32_t c = u[0] & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (u[i] & 0x3F);
    }
    if ((len == 3 && (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)))
        return 0;
    *cp = c;
    return len;
}

size_t ct__utf8_len(const char *s, size_t n) {
    uint32_t cp;
    int k = ct__utf8_get(s, n, &cp);
    return k ? (size_t)k : 1;
}

int ct__utf8_put(uint32_t cp, char *o) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- GPT-2 bytes_to_unicode ---------------------------------------------------- *
 * Printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves;
 * the other 68 bytes map, in increasing order, to U+0100.. U+0143. */
static int bl_printable(unsigned b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

uint32_t ct__bl_char(uint8_t b) {
    if (bl_printable(b)) return b;
    uint32_t k = 0;
    for (unsigned i = 0; i < b; i++) k += !bl_printable(i);
    return 256 + k;
}

int ct__bl_byte(uint32_t cp) {
    if (cp < 256) return bl_printable(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    uint32_t k = cp - 256;
    for (unsigned i = 0; i < 256; i++)
        if (!bl_printable(i) && k-- == 0) return (int)i;
    return -1;
}

/* ---- hashing ------------------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

/* ---- pieces -------------------------------------------------------------------- */

ct_tokenizer *ct__tok_new(const char *source) {
    ct_tokenizer *t = ct__calloc(1, sizeof *t);
    if (!t) return NULL;
    t->unk_id = t->bos_id = t->eos_id = -1;
    for (int i = 0; i < 256; i++) t->byte_id[i] = -1;
    t->source = ct__strdup(source ? source : "tokenizer");
    if (!t->source) { free(t); return NULL; }
    return t;
}

ct_status ct__tok_alloc(ct_tokenizer *t, int n_vocab, int with_scores) {
    if (n_vocab <= 0 || n_vocab > (1 << 24))
        return ct__err(CT_ERR_RANGE, "%s: vocabulary size %d outside [1, 16777216]", t->source, n_vocab);
    size_t V = (size_t)n_vocab;
    t->n_vocab = n_vocab;
    t->poff = ct__calloc(V, sizeof *t->poff);
    t->plen = ct__calloc(V, sizeof *t->plen);
    t->type = ct__malloc(V);
    t->is_added = ct__calloc(V, 1);
    if (with_scores) t->score = ct__calloc(V, sizeof *t->score);
    if (!t->poff || !t->plen || !t->type || !t->is_added || (with_scores && !t->score))
        return ct__err(CT_ERR_NOMEM, "%s: out of memory for %d tokens", t->source, n_vocab);
    memset(t->type, CT__TT_NORMAL, V);
    return CT_OK;
}

ct_status ct__tok_set_piece(ct_tokenizer *t, int32_t id, const char *s, size_t n) {
    if (id < 0 || id >= t->n_vocab) return ct__err(CT_ERR_RANGE, "%s: token id %d outside [0, %d)", t->source, id, t->n_vocab);
    if (n > UINT32_MAX / 2 || t->pool_n + n > UINT32_MAX)
        return ct__err(CT_ERR_RANGE, "%s: token %d: pieces exceed 4 GiB", t->source, id);
    ct__buf b = {t->pool, t->pool_n, t->pool_cap};
    ct_status st = ct__buf_put(&b, s, n);
    t->pool = b.p; t->pool_n = b.n; t->pool_cap = b.cap;
    if (st) return st;
    t->poff[id] = (uint32_t)(t->pool_n - n);
    t->plen[id] = (uint32_t)n;
    return CT_OK;
}

static const char *piece(const ct_tokenizer *t, int32_t id, size_t *n) {
    *n = t->plen[id];
    return t->pool ? t->pool + t->poff[id] : ""; /* no pool yet: every piece is empty */
}

ct_status ct__tok_build_vocab(ct_tokenizer *t) {
    size_t cap = pow2_at_least((size_t)t->n_vocab * 2 + 2);
    free(t->vocab.slot);
    t->vocab.slot = ct__calloc(cap, sizeof *t->vocab.slot);
    if (!t->vocab.slot) return ct__err(CT_ERR_NOMEM, "%s: out of memory for the vocabulary map", t->source);
    t->vocab.mask = cap - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        size_t n;
        const char *s = piece(t, id, &n);
        if (!n) continue;
        size_t h = hash_bytes(s, n) & t->vocab.mask;
        for (;; h = (h + 1) & t->vocab.mask) {
            uint32_t v = t->vocab.slot[h];
            if (!v) { t->vocab.slot[h] = (uint32_t)id + 1; break; }
            size_t m;
            const char *o = piece(t, (int32_t)v - 1, &m);
            if (m == n && !memcmp(o, s, n)) { t->vocab.slot[h] = (uint32_t)id + 1; break; }
        }
    }
    return CT_OK;
}

int32_t ct__tok_lookup(const ct_tokenizer *t, const char *s, size_t n) {
    if (!t->vocab.slot || !n) return -1;
    size_t h = hash_bytes(s, n) & t->vocab.mask;
    for (;; h = (h + 1) & t->vocab.mask) {
        uint32_t v = t->vocab.slot[h];
        if (!v) return -1;
        size_t m;
        const char *o = piece(t, (int32_t)v - 1, &m);
        if (m == n && !memcmp(o, s, n)) return (int32_t)v - 1;
    }
}

/* ---- merges -------------------------------------------------------------------- */

static ct_status pairmap_grow(ct__pairmap *m) {
    size_t cap = m->key ? (m->mask + 1) * 2 : 1024;
    uint64_t *key = ct__malloc(cap * sizeof *key);
    uint32_t *rank = ct__malloc(cap * sizeof *rank);
    int32_t *id = ct__malloc(cap * sizeof *id);
    if (!key || !rank || !id) {
        free(key); free(rank); free(id);
        return ct__err(CT_ERR_NOMEM, "tokenizer: out of memory for merges");
    }
    memset(key, 0xFF, cap * sizeof *key);
    if (m->key) {
        for (size_t i = 0; i <= m->mask; i++) {
            if (m->key[i] == UINT64_MAX) continue;
            size_t h = hash_u64(m->key[i]) & (cap - 1);
            while (key[h] != UINT64_MAX) h = (h + 1) & (cap - 1);
            key[h] = m->key[i]; rank[h] = m->rank[i]; id[h] = m->id[i];
        }
    }
    free(m->key); free(m->rank); free(m->id);
    m->key = key; m->rank = rank; m->id = id; m->mask = cap - 1;
    return CT_OK;
}

ct_status ct__tok_add_merge(ct_tokenizer *t, const char *l, size_t ln, const char *r, size_t rn,
                            uint32_t rank, const char *src) {
    int32_t a = ct__tok_lookup(t, l, ln), b = ct__tok_lookup(t, r, rn);
    if (a < 0 || b < 0)
        return ct__err(CT_ERR_FORMAT, "%s: merge %u ('%.*s' '%.*s'): %s piece is not in the vocabulary",
                       src, rank, (int)(ln > 40 ? 40 : ln), l, (int)(rn > 40 ? 40 : rn), r, a < 0 ? "left" : "right");
    char stackbuf[256], *cat = ln + rn <= sizeof stackbuf ? stackbuf : ct__malloc(ln + rn);
    if (!cat) return ct__err(CT_ERR_NOMEM, "%s: out of memory", src);
    memcpy(cat, l, ln);
    memcpy(cat + ln, r, rn);
    int32_t c = ct__tok_lookup(t, cat, ln + rn);
    if (cat != stackbuf) free(cat);
    if (c < 0)
        return ct__err(CT_ERR_FORMAT, "%s: merge %u ('%.*s' '%.*s'): the merged piece is not in the vocabulary",
                       src, rank, (int)(ln > 40 ? 40 : ln), l, (int)(rn > 40 ? 40 : rn), r);
    if (!t->in_merge && !(t->in_merge = ct__calloc((size_t)t->n_vocab, 1))) return ct__err(CT_ERR_NOMEM, "%s: out of memory", src);
    t->in_merge[a] = t->in_merge[b] = 1;
    ct__pairmap *m = &t->merges;
    if (!m->key || (m->n + 1) * 2 > m->mask + 1) {
        ct_status st = pairmap_grow(m);
        if (st) return st;
    }
    uint64_t k = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t h = hash_u64(k) & m->mask;
    while (m->key[h] != UINT64_MAX && m->key[h] != k) h = (h + 1) & m->mask;
    if (m->key[h] == UINT64_MAX) m->n++;
    m->key[h] = k; /* a repeated pair keeps its last rank, as `tokenizers` does */
    m->rank[h] = rank;
    m->id[h] = c;
    return CT_OK;
}

int ct__pairmap_get(const ct__pairmap *m, int32_t a, int32_t b, uint32_t *rank, int32_t *id) {
    if (!m->key) return 0;
    uint64_t k = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t h = hash_u64(k) & m->mask;; h = (h + 1) & m->mask) {
        if (m->key[h] == UINT64_MAX) return 0;
        if (m->key[h] == k) { *rank = m->rank[h]; *id = m->id[h]; return 1; }
    }
}

/* ---- added tokens ---------------------------------------------------------------- */

ct_status ct__tok_add_added(ct_tokenizer *t, const char *s, size_t n, int32_t id, int special,
                            int normalized, int lstrip, int rstrip, int single_word) {
    if (id < 0 || id >= t->n_vocab)
        return ct__err(CT_ERR_RANGE, "%s: added token %d outside the vocabulary [0, %d)", t->source, id, t->n_vocab);
    if (!n) return ct__err(CT_ERR_FORMAT, "%s: added token %d has empty content", t->source, id);
    ct__added *a = ct__realloc(t->added, ((size_t)t->n_added + 1) * sizeof *a);
    if (!a) return ct__err(CT_ERR_NOMEM, "%s: out of memory", t->source);
    t->added = a;
    a += t->n_added;
    memset(a, 0, sizeof *a);
    if (!(a->text = ct__strndup(s, n))) return ct__err(CT_ERR_NOMEM, "%s: out of memory", t->source);
    a->len = n;
    a->id = id;
    a->special = (uint8_t)!!special;
    a->normalized = (uint8_t)!!normalized;
    a->lstrip = (uint8_t)!!lstrip;
    a->rstrip = (uint8_t)!!rstrip;
    a->single_word = (uint8_t)!!single_word;
    t->n_added++;
    t->is_added[id] = 1;
    if (t->type[id] == CT__TT_NORMAL) t->type[id] = special ? CT__TT_CONTROL : CT__TT_USER;
    t->added_first[(uint8_t)s[0]] |= normalized ? 2 : 1;
    return CT_OK;
}

/* ---- finishing: byte tables and decoded bytes --------------------------------------- */

/* "<0xNN>" -> NN, or -1. */
static int parse_byte_piece(const char *s, size_t n) {
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    const char *h = strchr(hex, s[3]), *l = strchr(hex, s[4]);
    if (!h || !l || !s[3] || !s[4]) return -1;
    return (int)((h - hex) * 16 + (l - hex));
}

/* Decoded bytes of one id into b. */
static ct_status decode_one(const ct_tokenizer *t, int32_t id, ct__buf *b) {
    size_t n;
    const char *s = piece(t, id, &n);
    if (t->is_added[id]) {
        for (int i = 0; i < t->n_added; i++)
            if (t->added[i].id == id) return ct__buf_put(b, t->added[i].text, t->added[i].len);
    }
    if (t->kind == CT__KIND_BYTELEVEL) {
        size_t start = b->n;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            int k = ct__utf8_get(s + i, n - i, &cp), byte = k ? ct__bl_byte(cp) : -1;
            if (byte < 0) { b->n = start; return ct__buf_put(b, s, n); } /* not byte-level text: raw */
            char c = (char)byte;
            ct_status st = ct__buf_put(b, &c, 1);
            if (st) return st;
            i += (size_t)k;
        }
        return CT_OK;
    }
    int byte = parse_byte_piece(s, n);
    if (byte >= 0 && (t->type[id] == CT__TT_BYTE || t->byte_fallback)) {
        char c = (char)byte;
        return ct__buf_put(b, &c, 1);
    }
    for (size_t i = 0; i < n;) { /* "▁" (E2 96 81) -> ' ' */
        if (i + 3 <= n && !memcmp(s + i, "\xE2\x96\x81", 3)) {
            ct_status st = ct__buf_put(b, " ", 1);
            if (st) return st;
            i += 3;
        } else {
            size_t j = i + 1;
            while (j < n && !(j + 3 <= n && !memcmp(s + j, "\xE2\x96\x81", 3))) j++;
            ct_status st = ct__buf_put(b, s + i, j - i);
            if (st) return st;
            i = j;
        }
    }
    return CT_OK;
}

ct_status ct__tok_finish(ct_tokenizer *t) {
    ct_status st;
    if (!t->vocab.slot && (st = ct__tok_build_vocab(t))) return st;
    for (int b = 0; b < 256; b++) {
        char s[8];
        int n;
        if (t->kind == CT__KIND_BYTELEVEL) {
            n = ct__utf8_put(ct__bl_char((uint8_t)b), s);
        } else {
            static const char hex[] = "0123456789ABCDEF";
            memcpy(s, "<0x", 3); s[3] = hex[b >> 4]; s[4] = hex[b & 15]; s[5] = '>';
            n = 6;
        }
        t->byte_id[b] = ct__tok_lookup(t, s, (size_t)n);
        if (t->kind == CT__KIND_SPM && t->byte_id[b] >= 0 && t->type[t->byte_id[b]] == CT__TT_NORMAL)
            t->type[t->byte_id[b]] = CT__TT_BYTE;
    }
    size_t V = (size_t)t->n_vocab;
    if (t->merge == CT__MERGE_SCORE) { /* code points that can take part in a merge */
        if (!(t->cp_in_token = ct__calloc(0x110000 / 8, 1))) return ct__err(CT_ERR_NOMEM, "%s: out of memory", t->source);
        for (size_t id = 0; id < V; id++) {
            size_t n;
            const char *s = piece(t, (int32_t)id, &n);
            if ((t->type[id] != CT__TT_NORMAL && t->type[id] != CT__TT_USER) || ct__utf8_len(s, n) >= n) continue;
            for (size_t i = 0; i < n;) {
                uint32_t cp;
                int k = ct__utf8_get(s + i, n - i, &cp);
                if (k) t->cp_in_token[cp >> 3] |= (uint8_t)(1u << (cp & 7));
                i += k ? (size_t)k : 1;
            }
        }
    }
    t->doff = ct__malloc(V * sizeof *t->doff);
    t->dlen = ct__malloc(V * sizeof *t->dlen);
    if (!t->doff || !t->dlen) return ct__err(CT_ERR_NOMEM, "%s: out of memory", t->source);
    ct__buf b = {0};
    for (size_t id = 0; id < V; id++) {
        size_t start = b.n;
        if ((st = decode_one(t, (int32_t)id, &b))) { free(b.p); return st; }
        if (b.n > UINT32_MAX) { free(b.p); return ct__err(CT_ERR_RANGE, "%s: decoded pieces exceed 4 GiB", t->source); }
        t->doff[id] = (uint32_t)start;
        t->dlen[id] = (uint32_t)(b.n - start);
    }
    t->dpool = b.p ? b.p : ct__malloc(1);
    if (!t->dpool) return ct__err(CT_ERR_NOMEM, "%s: out of memory", t->source);
    return CT_OK;
}
