/* src/tokenizer/bpe.c — the BPE model: one pre-token (a "word") to ids.
 *
 * Symbols form a doubly linked list over an array; candidate merges of
 * neighbouring symbols sit in a binary min-heap, so a word of n symbols costs
 * O(n log n) however many merges apply. Two priority rules:
 *   rank  (tokenizer.json, GPT-2 vocab.bpe, GGUF "gpt2"): merges[(left id,
 *         right id)] -> (rank, merged id); lowest rank first, then leftmost.
 *         Stale entries are recognised exactly as `tokenizers` (word.rs
 *         merge_all) does: the pair now at that position must still map to
 *         the entry's merged id.
 *   score (llama2.c tokenizer.bin, GGUF "llama"): any two neighbours whose
 *         concatenated text is a normal token may merge; highest token score
 *         first, then leftmost (SentencePiece BPE, llama.cpp llm_tokenizer_spm,
 *         llama2.c encode). Symbols that are no token at the end fall back to
 *         <0xNN> byte tokens, else <unk>.
 * Initial symbols: one per byte for byte-level vocabularies (GPT-2's byte
 * alphabet), else one per UTF-8 character; a character missing from the
 * vocabulary becomes its <0xNN> tokens (byte_fallback) or <unk> (fused when
 * fuse_unk), as in `tokenizers`' BPE::merge_word.
 * Leaves out: BPE dropout, continuing_subword_prefix / end_of_word_suffix
 * (rejected by the loaders), a word cache.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"

typedef struct { int32_t id, prev, next; uint32_t start, len; } sym; /* len 0 = merged away */
typedef struct { uint64_t key; uint32_t left, right; int32_t id; uint32_t size; } cand;

struct ct__bpe_scratch {
    sym *s; size_t scap;
    cand *q; size_t qn, qcap;
    ct__buf tmp;
};

void ct__bpe_scratch_free(ct__bpe_scratch *s) {
    if (!s) return;
    free(s->s);
    free(s->q);
    free(s->tmp.p);
    free(s);
}

/* ---- heap ---------------------------------------------------------------------- */

static ct_status heap_push(ct__bpe_scratch *s, cand c) {
    if (s->qn == s->qcap) {
        size_t cap = s->qcap ? s->qcap * 2 : 64;
        cand *q = ct__realloc(s->q, cap * sizeof *q);
        if (!q) return ct__err(CT_ERR_NOMEM, "tokenizer: out of memory (merge queue)");
        s->q = q;
        s->qcap = cap;
    }
    size_t i = s->qn++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (s->q[p].key <= c.key) break;
        s->q[i] = s->q[p];
        i = p;
    }
    s->q[i] = c;
    return CT_OK;
}

static cand heap_pop(ct__bpe_scratch *s) {
    cand top = s->q[0], last = s->q[--s->qn];
    size_t i = 0, n = s->qn;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l >= n) break;
        m = (l + 1 < n && s->q[l + 1].key < s->q[l].key) ? l + 1 : l;
        if (last.key <= s->q[m].key) break;
        s->q[i] = s->q[m];
        i = m;
    }
    if (n) s->q[i] = last;
    return top;
}

/* Map a float so that unsigned comparison orders like the float. */
static uint32_t float_order(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* ---- candidates ------------------------------------------------------------------ */

static ct_status push_rank(const ct_tokenizer *t, ct__bpe_scratch *s, int32_t left) {
    if (left < 0 || s->s[left].next < 0) return CT_OK;
    uint32_t rank;
    int32_t id;
    if (!ct__pairmap_get(&t->merges, s->s[left].id, s->s[s->s[left].next].id, &rank, &id)) return CT_OK;
    cand c = {(uint64_t)rank << 32 | (uint32_t)left, (uint32_t)left, 0, id, 0};
    return heap_push(s, c);
}

static ct_status push_score(const ct_tokenizer *t, ct__bpe_scratch *s, const char *w, int32_t left) {
    if (left < 0 || s->s[left].next < 0) return CT_OK;
    const sym *a = &s->s[left], *b = &s->s[a->next];
    uint32_t size = a->len + b->len;
    int32_t id = ct__tok_lookup(t, w + a->start, size);
    if (id < 0 || (t->type[id] != CT__TT_NORMAL && t->type[id] != CT__TT_USER)) return CT_OK;
    cand c = {(uint64_t)~float_order(t->score[id]) << 32 | (uint32_t)left, (uint32_t)left, (uint32_t)a->next, id, size};
    return heap_push(s, c);
}

/* ---- initial symbols ---------------------------------------------------------------- */

static ct_status add_sym(ct__bpe_scratch *s, size_t *ns, int32_t id, size_t start, size_t len) {
    if (*ns == s->scap) {
        size_t cap = s->scap ? s->scap * 2 : 64;
        sym *q = ct__realloc(s->s, cap * sizeof *q);
        if (!q) return ct__err(CT_ERR_NOMEM, "tokenizer: out of memory (symbols)");
        s->s = q;
        s->scap = cap;
    }
    sym *y = &s->s[*ns];
    y->id = id;
    y->prev = (int32_t)*ns - 1;
    y->next = -1;
    y->start = (uint32_t)start;
    y->len = (uint32_t)len;
    if (*ns) s->s[*ns - 1].next = (int32_t)*ns;
    (*ns)++;
    return CT_OK;
}

/* Symbols as `tokenizers` BPE::merge_word builds them. Unknown characters:
 * byte fallback, else <unk> (consecutive ones fused when fuse_unk), else dropped. */
static ct_status initial_symbols(const ct_tokenizer *t, ct__bpe_scratch *s, const char *w, size_t n, size_t *ns) {
    ct_status st = CT_OK;
    size_t unk_start = 0, unk_len = 0; /* pending <unk> span */
    int bytewise = t->kind == CT__KIND_BYTELEVEL;
    for (size_t i = 0; i < n && !st;) {
        size_t k = bytewise ? 1 : ct__utf8_len(w + i, n - i);
        int32_t id = bytewise ? t->byte_id[(uint8_t)w[i]] : ct__tok_lookup(t, w + i, k);
        if (t->merge == CT__MERGE_SCORE) { /* resolved after merging */
            st = add_sym(s, ns, id, i, k);
            i += k;
            continue;
        }
        if (id >= 0) {
            if (unk_len) { st = add_sym(s, ns, t->unk_id, unk_start, unk_len); unk_len = 0; }
            if (!st) st = add_sym(s, ns, id, i, k);
        } else {
            int all = t->byte_fallback;
            for (size_t j = 0; all && j < k; j++) all = t->byte_id[(uint8_t)w[i + j]] >= 0;
            if (all) {
                /* `tokenizers` keeps a pending <unk> across byte-fallback characters */
                for (size_t j = 0; j < k && !st; j++) st = add_sym(s, ns, t->byte_id[(uint8_t)w[i + j]], i + j, 1);
            } else if (t->unk_id >= 0) {
                if (unk_len && t->fuse_unk) {
                    unk_len += k;
                } else {
                    if (unk_len) st = add_sym(s, ns, t->unk_id, unk_start, unk_len);
                    unk_start = i;
                    unk_len = k;
                }
            }
        }
        i += k;
    }
    if (!st && unk_len) st = add_sym(s, ns, t->unk_id, unk_start, unk_len);
    return st;
}

/* ---- merging ------------------------------------------------------------------------ */

static ct_status merge_rank(const ct_tokenizer *t, ct__bpe_scratch *s, size_t lo, size_t hi) {
    ct_status st = CT_OK;
    for (size_t i = lo; i + 1 < hi && !st; i++) st = push_rank(t, s, (int32_t)i);
    while (!st && s->qn) {
        cand c = heap_pop(s);
        sym *a = &s->s[c.left];
        if (!a->len || a->next < 0) continue;
        sym *b = &s->s[a->next];
        uint32_t rank;
        int32_t id;
        if (!ct__pairmap_get(&t->merges, a->id, b->id, &rank, &id) || id != c.id) continue; /* stale */
        a->id = c.id;
        a->len += b->len;
        b->len = 0;
        a->next = b->next;
        if (b->next >= 0) s->s[b->next].prev = (int32_t)c.left;
        st = push_rank(t, s, a->prev);
        if (!st) st = push_rank(t, s, (int32_t)c.left);
    }
    return st;
}

static ct_status merge_score(const ct_tokenizer *t, ct__bpe_scratch *s, const char *w, size_t lo, size_t hi) {
    ct_status st = CT_OK;
    for (size_t i = lo; i + 1 < hi && !st; i++) st = push_score(t, s, w, (int32_t)i);
    while (!st && s->qn) {
        cand c = heap_pop(s);
        sym *a = &s->s[c.left], *b = &s->s[c.right];
        if (!a->len || !b->len || a->len + b->len != c.size) continue; /* stale */
        a->id = c.id;
        a->len += b->len;
        b->len = 0;
        a->next = b->next;
        if (b->next >= 0) s->s[b->next].prev = (int32_t)c.left;
        st = push_score(t, s, w, a->prev);
        if (!st) st = push_score(t, s, w, (int32_t)c.left);
    }
    return st;
}

/* 1 if symbol y can never merge with a neighbour. */
static int inert(const ct_tokenizer *t, const char *w, const sym *y) {
    if (t->merge == CT__MERGE_RANK) return !t->in_merge || y->id < 0 || !t->in_merge[y->id];
    uint32_t cp;
    if (!t->cp_in_token || ct__utf8_get(w + y->start, y->len, &cp) != (int)y->len) return 0;
    return !(t->cp_in_token[cp >> 3] & (1u << (cp & 7)));
}

/* ---- one word ------------------------------------------------------------------------- */

ct_status ct__bpe_word(const ct_tokenizer *t, const char *w, size_t n, ct__bpe_scratch **sp, ct__ids *out) {
    if (!n) return CT_OK;
    if (n > UINT32_MAX / 2) return ct__err(CT_ERR_RANGE, "tokenizer: a pre-token of %zu bytes is too long", n);
    if (!*sp && !(*sp = ct__calloc(1, sizeof **sp))) return ct__err(CT_ERR_NOMEM, "tokenizer: out of memory");
    ct__bpe_scratch *s = *sp;
    ct_status st;
    if (t->ignore_merges) { /* a word that is a token is taken whole (Llama-3) */
        int32_t id;
        if (t->kind == CT__KIND_BYTELEVEL) {
            s->tmp.n = 0;
            for (size_t i = 0; i < n; i++) {
                char u[4];
                int k = ct__utf8_put(ct__bl_char((uint8_t)w[i]), u);
                if ((st = ct__buf_put(&s->tmp, u, (size_t)k))) return st;
            }
            id = ct__tok_lookup(t, s->tmp.p, s->tmp.n);
        } else {
            id = ct__tok_lookup(t, w, n);
        }
        if (id >= 0) return ct__ids_push(out, id);
    }
    size_t ns = 0;
    s->qn = 0;
    if ((st = initial_symbols(t, s, w, n, &ns))) return st;
    if (!ns) return CT_OK;
    /* A symbol that can take part in no merge never changes, so the word splits
     * there into independent runs: smaller heaps, same result. */
    for (size_t lo = 0, i = 0; i < ns && !st; i++) {
        if (i + 1 < ns && !inert(t, w, &s->s[i])) continue;
        size_t hi = i + 1;
        s->s[lo].prev = -1;
        s->s[hi - 1].next = -1;
        s->qn = 0;
        if (hi - lo > 1) st = t->merge == CT__MERGE_SCORE ? merge_score(t, s, w, lo, hi) : merge_rank(t, s, lo, hi);
        lo = hi;
    }
    for (size_t i = 0; i < ns && !st; i++) {
        const sym *y = &s->s[i];
        if (!y->len) continue;
        if (y->id >= 0) {
            st = ct__ids_push(out, y->id);
            continue;
        }
        for (uint32_t j = 0; j < y->len && !st;) { /* score mode, not a token: bytes or <unk> per char */
            const char *c = w + y->start + j;
            size_t k = ct__utf8_len(c, y->len - j);
            int all = 1;
            for (size_t i2 = 0; i2 < k; i2++) all = all && t->byte_id[(uint8_t)c[i2]] >= 0;
            for (size_t i2 = 0; all && i2 < k && !st; i2++) st = ct__ids_push(out, t->byte_id[(uint8_t)c[i2]]);
            if (!all && t->unk_id >= 0) st = ct__ids_push(out, t->unk_id);
            j += (uint32_t)k;
        }
    }
    return st;
}
