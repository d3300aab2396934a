/* tests/unit/test_json.c — conformance of the JSON reader (src/formats/json.c):
 * RFC 8259 valid and invalid documents, string escapes and UTF-8, number
 * grammar and values (checked against values written independently as C
 * literals), nesting depth, error line:col, typed getters, duplicate keys, and
 * parse speed on a generated 10 MB tokenizer.json-like document.
 * Leaves out: comparison against another JSON library (the fuzzer covers
 * robustness; the loaders' tests cover real files written by Python). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/internal.h"
#include "formats/json.h"

static ct_json *parse_ok(const char *text, size_t len) {
    ct_json *j = NULL;
    ct_status s = ct__json_parse(text, len, "t.json", &j);
    if (s != CT_OK) fprintf(stderr, "unexpected failure on [%.*s]: %s\n", (int)(len > 60 ? 60 : len), text, ct_errmsg());
    CHECK(s == CT_OK && j != NULL);
    return j;
}

static ct_json *ok(const char *text) { return parse_ok(text, strlen(text)); }

/* Expect a format error; if where is non-NULL, the message must contain it. */
static void bad_n(const char *text, size_t len, const char *where) {
    ct_json *j = (ct_json *)1;
    ct_status s = ct__json_parse(text, len, "t.json", &j);
    if (s == CT_OK) fprintf(stderr, "accepted invalid JSON [%.*s]\n", (int)(len > 60 ? 60 : len), text);
    CHECK(s == CT_ERR_FORMAT);
    CHECK(j == NULL);
    CHECK(strncmp(ct_errmsg(), "t.json:", 7) == 0);
    if (where && !strstr(ct_errmsg(), where)) {
        fprintf(stderr, "message [%s] lacks [%s]\n", ct_errmsg(), where);
        CHECK(0);
    }
    if (s == CT_OK) ct__json_free(j);
}
static void bad(const char *text, const char *where) { bad_n(text, strlen(text), where); }

static void test_scalars(void) {
    ct_json *j;
    j = ok("null"); CHECK(j && j->type == CT_JSON_NULL); ct__json_free(j);
    j = ok(" true "); CHECK(j && j->type == CT_JSON_BOOL && j->u.b == 1); ct__json_free(j);
    j = ok("\r\n\tfalse"); CHECK(j && j->type == CT_JSON_BOOL && j->u.b == 0); ct__json_free(j);
    j = ok("\xEF\xBB\xBF{}"); CHECK(j && j->type == CT_JSON_OBJ && j->u.obj.n == 0); ct__json_free(j);
    j = ok("[]"); CHECK(j && j->type == CT_JSON_ARR && j->u.arr.n == 0); ct__json_free(j);

    struct { const char *t; double v; } nums[] = {
        {"0", 0.0}, {"-0", -0.0}, {"7", 7.0}, {"-12", -12.0}, {"1.5", 1.5}, {"-0.25", -0.25},
        {"1e3", 1000.0}, {"1E+3", 1000.0}, {"25e-2", 0.25}, {"1.0000001", 1.0000001},
        {"123456789012345", 123456789012345.0},
        {"9007199254740993", 9007199254740992.0},               /* 2^53+1 rounds to even */
        {"123456789012345678901234567890", 1.2345678901234568e29},
        {"1e-5", 1e-5}, {"1e308", 1e308}, {"1e-400", 0.0}, {"0.1", 0.1},
        {"2.2250738585072014e-308", 2.2250738585072014e-308},
        {"-9223372036854775808", -9223372036854775808.0},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        j = ok(nums[i].t);
        CHECK(j && j->type == CT_JSON_NUM);
        if (j && j->u.num != nums[i].v) {
            fprintf(stderr, "number %s parsed as %.17g, want %.17g\n", nums[i].t, j->u.num, nums[i].v);
            CHECK(0);
        }
        ct__json_free(j);
    }
    j = ok("-0");
    CHECK(j && j->u.num == 0.0 && 1.0 / j->u.num < 0); /* the sign of zero is kept */
    ct__json_free(j);
}

static void test_strings(void) {
    struct { const char *t; const char *want; size_t n; } s[] = {
        {"\"\"", "", 0},
        {"\"abc\"", "abc", 3},
        {"\"a\\\"b\\\\c\\/d\"", "a\"b\\c/d", 7},
        {"\"\\b\\f\\n\\r\\t\"", "\b\f\n\r\t", 5},
        {"\"\\u0041\\u00e9\\u00E9\"", "A\xC3\xA9\xC3\xA9", 5},
        {"\"\\u20AC\"", "\xE2\x82\xAC", 3},                     /* euro sign */
        {"\"\\ud83d\\ude00\"", "\xF0\x9F\x98\x80", 4},          /* U+1F600 via a pair */
        {"\"\\uDBFF\\uDFFF\"", "\xF4\x8F\xBF\xBF", 4},          /* U+10FFFF */
        {"\"x\\u0000y\"", "x\0y", 3},                           /* embedded NUL kept */
        {"\"\xC4\xA0hello\"", "\xC4\xA0hello", 7},               /* GPT-2 byte-level space */
        {"\"\xE2\x96\x81the\"", "\xE2\x96\x81the", 6},           /* SentencePiece space */
        {"\"\xF0\x9F\x98\x80\"", "\xF0\x9F\x98\x80", 4},         /* raw 4-byte UTF-8 */
        {"\"\xEF\xBF\xBF\"", "\xEF\xBF\xBF", 3},                 /* U+FFFF is a valid scalar */
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        ct_json *j = ok(s[i].t);
        CHECK(j && j->type == CT_JSON_STR);
        if (!j) continue;
        CHECK_EQ_INT(j->u.str.len, s[i].n);
        CHECK(j->u.str.len == s[i].n && memcmp(j->u.str.s, s[i].want, s[i].n) == 0);
        CHECK(j->u.str.s[j->u.str.len] == 0);
        ct__json_free(j);
    }
}

static void test_structure(void) {
    const char *doc = "{\"model_type\": \"llama\", \"hidden_size\": 4096, \"rms_norm_eps\": 1e-05,\n"
                      " \"tie\": false, \"eos\": [2, 32000], \"sub\": {\"a\": [[], {}, null]}, \"x\": 2.5}";
    ct_json *j = ok(doc);
    if (!j) return;
    CHECK(j->type == CT_JSON_OBJ);
    CHECK_EQ_INT(j->u.obj.n, 7);
    CHECK(strcmp(j->u.obj.keys[0], "model_type") == 0 && j->u.obj.klens[0] == 10);
    CHECK(strcmp(j->u.obj.keys[6], "x") == 0);
    CHECK(strcmp(ct__json_get_str(j, "model_type"), "llama") == 0);
    CHECK(ct__json_get_str(j, "hidden_size") == NULL); /* wrong type */
    CHECK(ct__json_get_str(j, "nope") == NULL);
    int64_t iv = 0;
    CHECK(ct__json_get_int(j, "hidden_size", &iv) && iv == 4096);
    CHECK(!ct__json_get_int(j, "x", &iv));              /* 2.5 is not integral */
    CHECK(!ct__json_get_int(j, "model_type", &iv));
    double d = 0;
    CHECK(ct__json_get_num(j, "rms_norm_eps", &d) && d == 1e-05);
    int b = 1;
    CHECK(ct__json_get_bool(j, "tie", &b) && b == 0);
    CHECK(!ct__json_get_bool(j, "hidden_size", &b));
    const ct_json *eos = ct__json_get(j, "eos");
    CHECK(eos && eos->type == CT_JSON_ARR && eos->u.arr.n == 2 && eos->u.arr.items[1].u.num == 32000.0);
    const ct_json *a = ct__json_get(ct__json_get(j, "sub"), "a");
    CHECK(a && a->type == CT_JSON_ARR && a->u.arr.n == 3);
    if (a && a->u.arr.n == 3) {
        CHECK(a->u.arr.items[0].type == CT_JSON_ARR && a->u.arr.items[0].u.arr.n == 0);
        CHECK(a->u.arr.items[1].type == CT_JSON_OBJ && a->u.arr.items[1].u.obj.n == 0);
        CHECK(a->u.arr.items[2].type == CT_JSON_NULL);
    }
    CHECK(ct__json_get(eos, "x") == NULL); /* not an object */
    CHECK(!ct__json_has_dup_keys(j));
    ct__json_free(j);

    /* integral limits of get_int */
    j = ok("{\"big\": 9223372036854775808, \"neg\": -9223372036854775808, \"e\": 1e3}");
    if (j) {
        CHECK(!ct__json_get_int(j, "big", &iv)); /* 2^63 does not fit */
        CHECK(ct__json_get_int(j, "neg", &iv) && iv == INT64_MIN);
        CHECK(ct__json_get_int(j, "e", &iv) && iv == 1000);
        ct__json_free(j);
    }

    /* duplicate keys: kept, first wins, detected (small and large objects) */
    j = ok("{\"a\": 1, \"b\": 2, \"a\": 3}");
    if (j) {
        CHECK(ct__json_has_dup_keys(j));
        CHECK(ct__json_get_int(j, "a", &iv) && iv == 1);
        ct__json_free(j);
    }
    char big[4096];
    size_t n = 0;
    n += (size_t)snprintf(big + n, sizeof big - n, "{");
    for (int i = 0; i < 100; i++) n += (size_t)snprintf(big + n, sizeof big - n, "%s\"k%d\":%d", i ? "," : "", i, i);
    snprintf(big + n, sizeof big - n, "}");
    j = ok(big);
    CHECK(j && !ct__json_has_dup_keys(j));
    ct__json_free(j);
    snprintf(big + n, sizeof big - n, ",\"k57\":0}");
    j = ok(big);
    CHECK(j && ct__json_has_dup_keys(j));
    ct__json_free(j);
    /* keys differing only after an embedded NUL are distinct */
    j = ok("{\"a\\u0000x\": 1, \"a\\u0000y\": 2, \"a\": 3}");
    CHECK(j && !ct__json_has_dup_keys(j));
    if (j) CHECK(j->u.obj.klens[0] == 3);
    ct__json_free(j);
}

static void test_depth(void) {
    char buf[2 * CT_JSON_MAX_DEPTH + 8];
    for (int d = CT_JSON_MAX_DEPTH; d <= CT_JSON_MAX_DEPTH + 1; d++) {
        int n = 0;
        for (int i = 0; i < d; i++) buf[n++] = '[';
        for (int i = 0; i < d; i++) buf[n++] = ']';
        ct_json *j = NULL;
        ct_status s = ct__json_parse(buf, (size_t)n, "deep.json", &j);
        if (d == CT_JSON_MAX_DEPTH) {
            CHECK_OK(s);
            const ct_json *p = j;
            int depth = 0;
            while (p && p->type == CT_JSON_ARR) { depth++; p = p->u.arr.n ? &p->u.arr.items[0] : NULL; }
            CHECK_EQ_INT(depth, CT_JSON_MAX_DEPTH);
            ct__json_free(j);
        } else {
            CHECK(s == CT_ERR_FORMAT && j == NULL);
            CHECK(strstr(ct_errmsg(), "deep.json:1:129:") != NULL);
            CHECK(strstr(ct_errmsg(), "nesting") != NULL);
        }
    }
    /* a huge depth must fail cleanly, not overflow the stack */
    size_t big = 1000000;
    char *p = malloc(big);
    if (p) {
        memset(p, '[', big);
        bad_n(p, big, "nesting");
        free(p);
    }
    bad("{\"a\":{\"a\":{\"a\":{\"a\":[{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
        "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "nesting");
}

static void test_invalid(void) {
    /* each with the (line:col) where the error must be reported */
    bad("", "t.json:1:1: empty input");
    bad("   \n ", "t.json:2:2:");
    bad("[1,]", "t.json:1:4:");
    bad("{\"a\":1,}", "t.json:1:8: expected a string key");
    bad("[1 2]", "t.json:1:4: expected ',' or ']'");
    bad("{\"a\" 1}", "t.json:1:6: expected ':'");
    bad("{\n  \"a\": 1,\n  \"b\" 2\n}", "t.json:3:7: expected ':'");
    bad("[\"\xC3\xA9\", x]", "t.json:1:7:"); /* columns count characters */
    bad("01", "leading zero");
    bad("-01", "leading zero");
    bad("1.", "after '.'");
    bad(".5", "t.json:1:1:");
    bad("+1", "t.json:1:1:");
    bad("-", "expected a digit");
    bad("- 1", "expected a digit");
    bad("1e", "exponent");
    bad("1e+", "exponent");
    bad("0x10", "t.json:1:2: unexpected data");
    bad("NaN", NULL);
    bad("Infinity", NULL);
    bad("-Infinity", NULL);
    bad("1e999", "out of range");
    bad("-1e400", "out of range");
    bad("tru", "invalid literal");
    bad("nul", "invalid literal");
    bad("True", NULL);
    bad("\"abc", "unterminated");
    bad("\"abc\\", "unterminated");
    bad("\"abc\\\"", "unterminated");
    bad("'a'", NULL);
    bad("\"\\x\"", "invalid escape");
    bad("\"\\a\"", "invalid escape");
    bad("\"\\U0041\"", "invalid escape");
    bad("\"\\u12G4\"", "4 hex digits");
    bad("\"\\u12\"", "4 hex digits");
    bad("\"\\ud800\"", "surrogate");
    bad("\"\\udc00\"", "lone low surrogate");
    bad("\"\\ud800\\u0041\"", "surrogate");
    bad("\"\\ude00\\ud83d\"", "surrogate");
    bad("\"\\ud800\\ud800\"", "surrogate");
    bad("\"a\tb\"", "t.json:1:3: control character U+0009");
    bad("\"a\nb\"", "control character U+000A");
    bad_n("\"a\0b\"", 5, "control character U+0000");
    bad("\"\x01\"", "control character");
    bad("\"\xff\"", "invalid UTF-8");
    bad("\"\x80\"", "invalid UTF-8");
    bad("\"\xC0\xAF\"", "invalid UTF-8");         /* overlong '/' */
    bad("\"\xE0\x80\xAF\"", "invalid UTF-8");     /* overlong */
    bad("\"\xED\xA0\x80\"", "invalid UTF-8");     /* encoded surrogate */
    bad("\"\xF4\x90\x80\x80\"", "invalid UTF-8"); /* above U+10FFFF */
    bad("\"\xC3\"", "invalid UTF-8");             /* truncated sequence */
    bad("\xC3\xA9", "unexpected character");
    bad("[1] x", "t.json:1:5: unexpected data");
    bad("{} {}", "unexpected data");
    bad("{\"a\"}", "expected ':'");
    bad("{1:2}", "expected a string key");
    bad("[", "t.json:1:2: unexpected end of input");
    bad("[1", "unexpected end of input, expected ',' or ']'");
    bad("{\"a\":1", "expected ',' or '}'");
    bad("{\"a\":", "expected a value");
    bad("]", "t.json:1:1:");
    bad("[1,,2]", "t.json:1:4:");
    bad("[1]\x0b", "unexpected data"); /* vertical tab is not JSON whitespace */
    bad("\xEF\xBB", NULL);
    bad("{\"a\":1}\xEF\xBB\xBF", "unexpected data"); /* a BOM only at the start */
    bad_n("[1]\0", 4, "unexpected data");
}

/* A tokenizer.json-shaped document of about `target` bytes. */
static char *make_big(size_t target, size_t *len, int *nvocab, int *nmerges) {
    size_t cap = target + 4096, n = 0;
    char *b = malloc(cap);
    if (!b) return NULL;
    n += (size_t)snprintf(b + n, cap - n, "{\"version\": \"1.0\", \"model\": {\"type\": \"BPE\", \"vocab\": {");
    int v = 0;
    while (n < target * 6 / 10) {
        n += (size_t)snprintf(b + n, cap - n, "%s\"\xC4\xA0tok\\u00e9n%d\\n\": %d", v ? ", " : "", v, v);
        v++;
    }
    n += (size_t)snprintf(b + n, cap - n, "}, \"merges\": [");
    int m = 0;
    while (n < target) {
        n += (size_t)snprintf(b + n, cap - n, "%s[\"\xC4\xA0t%d\", \"o\\\"k\"]", m ? ", " : "", m);
        m++;
    }
    n += (size_t)snprintf(b + n, cap - n, "]}}\n");
    *len = n;
    *nvocab = v;
    *nmerges = m;
    return b;
}

static void test_speed(void) {
    size_t len;
    int nv, nm;
    char *doc = make_big(10u << 20, &len, &nv, &nm);
    CHECK(doc != NULL);
    if (!doc) return;
    ct_json *j = NULL;
    double t0 = ct__now();
    ct_status s = ct__json_parse(doc, len, "big.json", &j);
    double dt = ct__now() - t0;
    CHECK_OK(s);
    printf("test_json: parsed %.1f MB (%d vocab, %d merges) in %.1f ms (%.0f MB/s)\n", len / 1e6, nv, nm, dt * 1e3,
           len / 1e6 / dt);
    CHECK(dt < 2.0); /* loose: the machine is shared; typical is ~40 ms */
    const ct_json *vocab = ct__json_get(ct__json_get(j, "model"), "vocab");
    const ct_json *merges = ct__json_get(ct__json_get(j, "model"), "merges");
    CHECK(vocab && vocab->type == CT_JSON_OBJ && vocab->u.obj.n == (size_t)nv);
    CHECK(merges && merges->type == CT_JSON_ARR && merges->u.arr.n == (size_t)nm);
    if (vocab && vocab->u.obj.n > 1234) {
        char want[64];
        int wl = snprintf(want, sizeof want, "\xC4\xA0tok\xC3\xA9n%d\n", 1234);
        CHECK(vocab->u.obj.klens[1234] == (size_t)wl && memcmp(vocab->u.obj.keys[1234], want, (size_t)wl) == 0);
        CHECK(vocab->u.obj.vals[1234].u.num == 1234.0);
        CHECK(!ct__json_has_dup_keys(vocab));
    }
    if (merges && merges->u.arr.n > 7) {
        const ct_json *m7 = &merges->u.arr.items[7];
        CHECK(m7->type == CT_JSON_ARR && m7->u.arr.n == 2 && strcmp(m7->u.arr.items[0].u.str.s, "\xC4\xA0t7") == 0 &&
              strcmp(m7->u.arr.items[1].u.str.s, "o\"k") == 0);
    }
    ct__json_free(j);
    free(doc);
}

/* GPT-2's real encoder.json from ../shared (values from OpenAI's release). */
static void test_real_file(void) {
    const char *sh = getenv("CTUNE_SHARED");
    char path[512];
    snprintf(path, sizeof path, "%s/models/tokenizers/gpt2-encoder.json", sh && *sh ? sh : "../shared");
    char *text = NULL;
    size_t len = 0;
    if (!ct__file_exists(path)) {
        printf("test_json: note: %s not found, real-file check skipped\n", path);
        return;
    }
    CHECK_OK(ct__read_file(path, &text, &len));
    ct_json *j = NULL;
    CHECK_OK(ct__json_parse(text, len, path, &j));
    if (j) {
        int64_t id = -1;
        CHECK(j->type == CT_JSON_OBJ && j->u.obj.n == 50257);
        CHECK(ct__json_get_int(j, "\xC4\xA0the", &id) && id == 262);
        CHECK(ct__json_get_int(j, "<|endoftext|>", &id) && id == 50256);
        CHECK(ct__json_get_int(j, "!", &id) && id == 0);
        CHECK(!ct__json_has_dup_keys(j));
        ct__json_free(j);
    }
    free(text);
}

int main(void) {
    test_scalars();
    test_strings();
    test_structure();
    test_depth();
    test_invalid();
    test_speed();
    test_real_file();
    ct__json_free(NULL);
    return ct_check_done("test_json");
}
