/* src/tokenizer/nfc.c — Unicode NFC (canonical decomposition, canonical
 * ordering, canonical composition; UAX #15), the normalizer of Qwen2-style
 * tokenizer.json files. Tables: nfc_table.h, generated from Python's
 * unicodedata by scripts/gen_nfc_table.py; Hangul syllables are computed.
 * Fast path: text without a byte >= 0xCC has no code point >= U+0300, and
 * everything below U+0300 is already NFC, so it is copied unchanged.
 * Invalid UTF-8 bytes are kept as they are and block composition across them.
 * Leaves out: NFD/NFKC/NFKD, streaming (a segment is normalized whole).
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/nfc_table.h"
#include "tokenizer/tok_internal.h"

#define INVALID_BIT 0x80000000u /* a raw invalid byte carried through */
enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7, LCOUNT = 19, VCOUNT = 21, TCOUNT = 28,
       NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

static const uint32_t *find_decomp(uint32_t cp) {
    size_t lo = 0, hi = CT__NFC_NDECOMP;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uint32_t c = ct__nfc_decomp[mid][0] & 0x7FFFFFFFu;
        if (c == cp) return ct__nfc_decomp[mid];
        if (c < cp) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static int ccc(uint32_t cp) {
    size_t lo = 0, hi = CT__NFC_NCCC;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < ct__nfc_ccc[mid][0]) hi = mid;
        else if (cp > ct__nfc_ccc[mid][1]) lo = mid + 1;
        else return (int)ct__nfc_ccc[mid][2];
    }
    return 0;
}

/* Primary composite of (a, b), or 0. */
static uint32_t compose(uint32_t a, uint32_t b) {
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE && b < TBASE + TCOUNT)
        return a + (b - TBASE);
    size_t lo = 0, hi = CT__NFC_NCOMP;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uint32_t *e = ct__nfc_decomp[ct__nfc_comp[mid]];
        if (e[1] == a && e[2] == b) return e[0] & 0x7FFFFFFFu;
        if (e[1] < a || (e[1] == a && e[2] < b)) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

typedef struct { uint32_t *v; size_t n, cap; } cps;

static int cps_push(cps *c, uint32_t cp) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        uint32_t *q = ct__realloc(c->v, cap * sizeof *q);
        if (!q) return 0;
        c->v = q;
        c->cap = cap;
    }
    c->v[c->n++] = cp;
    return 1;
}

static int decompose(cps *c, uint32_t cp, int depth) {
    if (cp >= SBASE && cp < SBASE + SCOUNT) {
        uint32_t s = cp - SBASE, t = s % TCOUNT;
        if (!cps_push(c, LBASE + s / NCOUNT) || !cps_push(c, VBASE + (s % NCOUNT) / TCOUNT)) return 0;
        return t ? cps_push(c, TBASE + t) : 1;
    }
    const uint32_t *e = depth < 8 ? find_decomp(cp) : NULL;
    if (!e) return cps_push(c, cp);
    if (!decompose(c, e[1], depth + 1)) return 0;
    return e[2] ? decompose(c, e[2], depth + 1) : 1;
}

static int cls(uint32_t cp) { return (cp & INVALID_BIT) ? 0 : ccc(cp); }

ct_status ct__nfc(const char *s, size_t n, ct__buf *out) {
    out->n = 0;
    size_t i = 0;
    while (i < n && (uint8_t)s[i] < 0xCC) i++;
    if (i == n) return ct__buf_put(out, s, n);
    cps c = {0};
    int ok = 1;
    for (i = 0; i < n && ok;) { /* 1. full canonical decomposition */
        uint32_t cp;
        int k = ct__utf8_get(s + i, n - i, &cp);
        ok = k ? decompose(&c, cp, 0) : cps_push(&c, INVALID_BIT | (uint8_t)s[i]);
        i += k ? (size_t)k : 1;
    }
    if (!ok) { free(c.v); return ct__err(CT_ERR_NOMEM, "tokenizer: out of memory (NFC)"); }
    for (size_t a = 1; a < c.n; a++) { /* 2. canonical ordering: stable insertion sort by class */
        uint32_t x = c.v[a];
        int k = cls(x);
        if (!k) continue;
        size_t b = a;
        while (b > 0 && cls(c.v[b - 1]) > k) { c.v[b] = c.v[b - 1]; b--; }
        c.v[b] = x;
    }
    size_t w = 0; /* 3. canonical composition (UAX #15 sample algorithm) */
    if (c.n) {
        size_t starter = 0;
        int last = cls(c.v[0]) ? 256 : 0;
        w = 1;
        for (size_t r = 1; r < c.n; r++) {
            uint32_t ch = c.v[r], comp = 0;
            int k = cls(ch);
            if (!(ch & INVALID_BIT) && !(c.v[starter] & INVALID_BIT) && (last < k || last == 0))
                comp = compose(c.v[starter], ch);
            if (comp && (last < k || last == 0)) {
                c.v[starter] = comp;
                continue;
            }
            if (!k) starter = w;
            last = k;
            c.v[w++] = ch;
        }
    }
    ct_status st = CT_OK;
    for (size_t k = 0; k < w && !st; k++) {
        char u[4];
        if (c.v[k] & INVALID_BIT) { u[0] = (char)(c.v[k] & 0xFF); st = ct__buf_put(out, u, 1); }
        else st = ct__buf_put(out, u, (size_t)ct__utf8_put(c.v[k], u));
    }
    free(c.v);
    return st;
}
