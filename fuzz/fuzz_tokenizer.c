/* fuzz/fuzz_tokenizer.c — libFuzzer target for src/tokenizer/: the loaders on
 * hostile files, and encode/decode on hostile text.
 *
 * The first input byte picks the mode (mod 4):
 *   0: tokenizer.json text, then NUL, then a text to encode with it;
 *   1: llama2.c tokenizer.bin image (length: next 2 bytes, little-endian), then text;
 *   2: GGUF image (same framing) through ct__tokenizer_from_gguf, then text;
 *   3: text only, through two built-in tokenizers (byte-level BPE without
 *      prefix space; SentencePiece-style with byte fallback), where
 *      decode(encode(x)) == x must hold byte for byte (SPM: unless x contains
 *      "▁", which SentencePiece cannot tell from a space).
 * Every id produced must lie in [0, vocab size); a failed load must leave
 * *out NULL and set a message. Seeds: fuzz/seeds/tokenizer/.
 * Leaves out: comparing ids with a reference (tests/e2e/test_tokenizer.sh).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "formats/gguf.h"
#include "formats/json.h"
#include "formats/loaders.h"
#include "tokenizer/tok_internal.h"

static ct_tokenizer *builtin_bl, *builtin_spm;

/* Encode and decode s; abort on out-of-range ids. Returns decoded text (malloc'd) or NULL. */
static char *exercise(const ct_tokenizer *t, const char *s, size_t n, unsigned flags, size_t *dn) {
    int32_t *ids = NULL;
    size_t k = 0;
    if (ct_tokenizer_encode(t, s, n, flags, &ids, &k)) return NULL;
    int V = ct_tokenizer_vocab_size(t);
    for (size_t i = 0; i < k; i++)
        if (ids[i] < 0 || ids[i] >= V) abort();
    char buf[64];
    for (size_t i = 0; i < k && i < 64; i++)
        if (ct_tokenizer_piece(t, i ? ids[i - 1] : -1, ids[i], buf, sizeof buf) < 0) abort();
    char *text = NULL;
    if (ct_tokenizer_decode(t, ids, k, &text, dn)) text = NULL;
    else if (text[*dn] != 0) abort();
    free(ids);
    return text;
}

static void json_tokenizer(ct__buf *b, int spm) {
    char tmp[64];
    const char *head = spm
        ? "{\"added_tokens\":[{\"id\":1,\"content\":\"<s>\",\"special\":true,\"normalized\":false}],"
          "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\xE2\x96\x81\"},"
          "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xE2\x96\x81\"}]},"
          "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]},"
          "\"model\":{\"type\":\"BPE\",\"byte_fallback\":true,\"unk_token\":\"<unk>\",\"vocab\":{\"<unk>\":0,\"<s>\":1,"
        : "{\"added_tokens\":[{\"id\":261,\"content\":\"<|x|>\",\"special\":true,\"normalized\":false,\"rstrip\":true}],"
          "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true},"
          "\"model\":{\"type\":\"BPE\",\"vocab\":{";
    ct__buf_put(b, head, strlen(head));
    for (int i = 0; i < 256; i++) {
        int n;
        if (spm) {
            n = snprintf(tmp, sizeof tmp, "\"<0x%02X>\":%d,", i, 2 + i);
        } else {
            char u[4];
            int k = ct__utf8_put(ct__bl_char((uint8_t)i), u);
            n = snprintf(tmp, sizeof tmp, "\"%s%.*s\":%d,", (i == '"' || i == '\\') ? "\\" : "", k, u, i);
        }
        ct__buf_put(b, tmp, (size_t)n);
    }
    const char *tail = spm
        ? "\"\xE2\x96\x81\":258,\"a\":259,\"\xE2\x96\x81" "a\":260,\"aa\":261},\"merges\":[\"\xE2\x96\x81 a\",\"a a\"]}}"
        : "\"\xC4\xA0t\":256,\"he\":257,\"\xC4\xA0the\":258,\"aa\":259,\"aaa\":260,\"<|x|>\":261},"
          "\"merges\":[\"\xC4\xA0 t\",\"h e\",\"\xC4\xA0t he\",\"a a\",\"aa a\"]}}";
    ct__buf_put(b, tail, strlen(tail) + 1);
}

static ct_tokenizer *build(int spm) {
    ct__buf b = {0};
    json_tokenizer(&b, spm);
    ct_json *root = NULL;
    ct_tokenizer *t = NULL;
    if (ct__json_parse(b.p, b.n - 1, "builtin", &root) || ct__tok_load_hf_json("/nonexistent/tokenizer.json", root, &t)) {
        fprintf(stderr, "fuzz_tokenizer: built-in tokenizer: %s\n", ct_errmsg());
        abort();
    }
    ct__json_free(root);
    free(b.p);
    return t;
}

static void check_failed_load(ct_status s, ct_tokenizer *t) {
    if (s && (t || !ct_errmsg()[0])) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!builtin_bl) {
        ct_set_log(NULL, NULL, CT_LOG_ERROR + 1); /* quiet */
        builtin_bl = build(0);
        builtin_spm = build(1);
    }
    if (size < 1) return 0;
    int mode = data[0] & 3;
    const char *p = (const char *)data + 1;
    size_t n = size - 1, dn;
    ct_tokenizer *t = NULL;
    if (mode == 0) {
        const char *nul = memchr(p, 0, n);
        size_t jn = nul ? (size_t)(nul - p) : n;
        ct_json *root = NULL;
        if (!ct__json_parse(p, jn, "fuzz.json", &root)) {
            ct_status s = ct__tok_load_hf_json("/nonexistent/tokenizer.json", root, &t);
            check_failed_load(s, t);
            ct__json_free(root);
        }
        p += nul ? jn + 1 : jn;
        n -= nul ? jn + 1 : jn;
    } else if (mode == 1 || mode == 2) {
        if (n < 2) return 0;
        size_t len = (size_t)((uint8_t)p[0] | (uint8_t)p[1] << 8);
        if (len > n - 2) len = n - 2;
        if (mode == 1) {
            check_failed_load(ct__tok_load_llama2c("fuzz.bin", (const uint8_t *)p + 2, len, &t), t);
        } else {
            ct_gguf *g = NULL;
            if (!ct__gguf_open_mem(p + 2, len, "fuzz.gguf", &g, NULL)) {
                check_failed_load(ct__tokenizer_from_gguf(g, &t), t);
                ct__gguf_close(g);
            }
        }
        p += 2 + len;
        n -= 2 + len;
    }
    if (t) {
        free(exercise(t, p, n, CT_TOK_ADD_BOS, &dn));
        free(exercise(t, p, n, CT_TOK_NO_SPECIAL, &dn));
        ct_tokenizer_free(t);
        return 0;
    }
    if (mode != 3) return 0;
    char *back = exercise(builtin_bl, p, n, CT_TOK_NO_SPECIAL, &dn);
    if (back && (dn != n || memcmp(back, p, n))) abort();
    free(back);
    free(exercise(builtin_bl, p, n, CT_TOK_ADD_BOS, &dn));
    back = exercise(builtin_spm, p, n, CT_TOK_NO_SPECIAL, &dn);
    if (back && !memmem(p, n, "\xE2\x96\x81", 3) && (dn != n || memcmp(back, p, n))) abort();
    free(back);
    return 0;
}
