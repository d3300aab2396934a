/* tests/unit/test_tokenizer.c — small tokenizer cases that need no Python:
 * tiny tokenizer.json files written here exercise the pipeline pieces one by
 * one (Split behaviours, Digits, Punctuation, Metaspace schemes, ByteLevel
 * prefix space, added tokens with lstrip/rstrip/single_word, NO_SPECIAL,
 * TemplateProcessing BOS+EOS, byte fallback, NFC, Strip). The expected ids
 * were produced by Hugging Face `tokenizers` 0.23.3 from the very same files
 * (write them with CT_TEST_KEEP=1 to re-check: the directory is printed).
 * With ../shared present, a few ids of the real vocabularies (from
 * GPT2TokenizerFast / SentencePiece) and error handling on corrupt files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ctune/tokenizer.h"
#include "tokenizer/tok_internal.h"

/* Reference ids (tokenizers 0.23.3, Tokenizer.from_file(...).encode(text, add_special_tokens=...)). */
#define REF_A1 "261 258 32 99 97 116 32 45 259 258 32 104 97 116 32 32 50 32 48 32 50 32 52"
#define REF_A2 "261 32 120 261 32 121 260 262 32 98"
#define REF_A3 "32 120 60 124 98 111 115 124 62 121 260 262 32 98"
#define REF_A4 "263 32 119 111 119 122 101 114 32 263 32 46 260 119 111 119 32 263"
#define REF_A5 "32 259 32 45 259 32 45 32 45 259 32 32 45"
#define REF_B1 "1 264 264 2"
#define REF_B2 "1 259 262 259 265 259 102 198 172 2"
#define REF_B3 "264 1 264 259 2 259 265"
#define REF_C1 "264 259 47 265 259 36 36 264 261 259 259 49 49 49 262"
#define REF_C2 "259 198 164 259 228 187 136 207 132"
#define REF_D1 "263 261 47 260 261"
#define REF_D2 "1 263 261"

static char dir[64];

/* ---- building the test tokenizers ---------------------------------------------- */

static void put(FILE *f, const char *s) { fputs(s, f); }

/* JSON string of UTF-8 bytes s (escaping " and \). */
static void put_str(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') fputc('\\', f);
        fputc(s[i], f);
    }
    fputc('"', f);
}

static const char *added_fmt = "{\"id\":%d,\"content\":\"%s\",\"single_word\":%s,\"lstrip\":%s,\"rstrip\":%s,"
                               "\"normalized\":false,\"special\":%s}";

static char *write_json(const char *name, void (*body)(FILE *)) {
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(1); }
    body(f);
    fclose(f);
    return path;
}

/* A: byte-level BPE, ids 0..255 = the bytes, five merges, three added tokens. */
static void body_a(FILE *f) {
    put(f, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[");
    fprintf(f, added_fmt, 261, "<|bos|>", "false", "false", "false", "true");
    put(f, ",");
    fprintf(f, added_fmt, 262, "<mask>", "false", "true", "true", "false");
    put(f, ",");
    fprintf(f, added_fmt, 263, "wow", "true", "false", "false", "false");
    put(f, "],\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":["
           "{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},\"behavior\":\"MergedWithNext\",\"invert\":false},"
           "{\"type\":\"Digits\",\"individual_digits\":true},"
           "{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true}]},"
           "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<|bos|>\","
           "\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},"
           "{\"Sequence\":{\"id\":\"B\",\"type_id\":1}}],\"special_tokens\":{\"<|bos|>\":{\"id\":\"<|bos|>\",\"ids\":[261],"
           "\"tokens\":[\"<|bos|>\"]}}},"
           "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true},"
           "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,\"continuing_subword_prefix\":null,"
           "\"end_of_word_suffix\":null,\"fuse_unk\":false,\"byte_fallback\":false,\"ignore_merges\":false,\"vocab\":{");
    for (int b = 0; b < 256; b++) {
        char u[4];
        int k = ct__utf8_put(ct__bl_char((uint8_t)b), u);
        put_str(f, u, (size_t)k);
        fprintf(f, ":%d,", b);
    }
    put(f, "\"\xC4\xA0t\":256,\"he\":257,\"\xC4\xA0the\":258,\"in\":259,\"\xC4\xA0" "a\":260},\"merges\":["
           "\"\xC4\xA0 t\",\"h e\",\"\xC4\xA0t he\",\"i n\",\"\xC4\xA0 a\"]}}");
}

/* The SentencePiece-style vocabulary shared by B, C, D. */
static void spm_model(FILE *f) {
    put(f, "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\",\"continuing_subword_prefix\":null,"
           "\"end_of_word_suffix\":null,\"fuse_unk\":true,\"byte_fallback\":true,\"ignore_merges\":false,\"vocab\":{"
           "\"<unk>\":0,\"<s>\":1,\"</s>\":2,");
    for (int b = 0; b < 256; b++) fprintf(f, "\"<0x%02X>\":%d,", b, 3 + b);
    put(f, "\"\xE2\x96\x81\":259,\"a\":260,\"b\":261,\"\xE2\x96\x81" "a\":262,\"ab\":263,\"\xE2\x96\x81" "ab\":264,"
           "\"\xE2\x96\x81" "b\":265},\"merges\":[\"\xE2\x96\x81 a\",\"a b\",\"\xE2\x96\x81" "a b\",\"\xE2\x96\x81 b\"]}}");
}

static void spm_added(FILE *f) {
    put(f, "\"added_tokens\":[");
    fprintf(f, added_fmt, 0, "<unk>", "false", "false", "false", "true");
    put(f, ",");
    fprintf(f, added_fmt, 1, "<s>", "false", "false", "false", "true");
    put(f, ",");
    fprintf(f, added_fmt, 2, "</s>", "false", "false", "false", "true");
    put(f, "],");
}

static const char *spm_post =
    "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"
    "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"</s>\",\"type_id\":0}}],\"pair\":["
    "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"Sequence\":{\"id\":\"B\",\"type_id\":1}}],\"special_tokens\":{"
    "\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]},\"</s>\":{\"id\":\"</s>\",\"ids\":[2],\"tokens\":[\"</s>\"]}}},"
    "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\xE2\x96\x81\"},"
    "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,"
    "\"stop\":0}]},";

/* B: Llama-2 layout (Prepend + Replace normalizer, <s> $A </s>). */
static void body_b(FILE *f) {
    put(f, "{\"version\":\"1.0\",");
    spm_added(f);
    put(f, "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\xE2\x96\x81\"},"
           "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xE2\x96\x81\"}]},\"pre_tokenizer\":null,");
    put(f, spm_post);
    spm_model(f);
}

/* C: NFC + Strip; Punctuation (contiguous), a regex Split merged with the
 * previous piece, Metaspace (always, split). */
static void body_c(FILE *f) {
    put(f, "{\"version\":\"1.0\",");
    spm_added(f);
    put(f, "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"},{\"type\":\"Strip\","
           "\"strip_left\":true,\"strip_right\":true}]},\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":["
           "{\"type\":\"Punctuation\",\"behavior\":\"Contiguous\"},"
           "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"b+\"},\"behavior\":\"MergedWithPrevious\",\"invert\":false},"
           "{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\",\"prepend_scheme\":\"always\",\"split\":true}]},");
    put(f, spm_post);
    spm_model(f);
}

/* D: Whitespace (inverted regex, removed), Metaspace (first, no split). */
static void body_d(FILE *f) {
    put(f, "{\"version\":\"1.0\",");
    spm_added(f);
    put(f, "\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Whitespace\"},"
           "{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\",\"prepend_scheme\":\"first\",\"split\":false}]},");
    put(f, spm_post);
    spm_model(f);
}

/* ---- checks ------------------------------------------------------------------------ */

/* Encode text with the tokenizer's default BOS behaviour, compare with the
 * reference ids "a b c". */
static void expect(const ct_tokenizer *t, const char *text, unsigned flags, const char *ref) {
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_OK(ct_tokenizer_encode(t, text, strlen(text), flags, &ids, &n));
    char got[2048] = "";
    size_t o = 0;
    for (size_t i = 0; i < n && o < sizeof got - 16; i++) o += (size_t)snprintf(got + o, sizeof got - o, i ? " %d" : "%d", ids[i]);
    ct_test_checks++;
    if (strcmp(got, ref)) {
        ct_test_fails++;
        fprintf(stderr, "encode(\"%s\"): got [%s], reference [%s]\n", text, got, ref);
    }
    free(ids);
}

static void expect_roundtrip(const ct_tokenizer *t, const char *text, const char *want) {
    int32_t *ids = NULL;
    size_t n = 0;
    char *back = NULL;
    size_t bn = 0;
    CHECK_OK(ct_tokenizer_encode(t, text, strlen(text), CT_TOK_ADD_BOS, &ids, &n));
    CHECK_OK(ct_tokenizer_decode(t, ids, n, &back, &bn));
    ct_test_checks++;
    if (!back || bn != strlen(want) || memcmp(back, want, bn)) {
        ct_test_fails++;
        fprintf(stderr, "decode(encode(\"%s\")) = \"%s\", want \"%s\"\n", text, back ? back : "(null)", want);
    }
    /* streaming pieces give the same bytes */
    char acc[512] = "", buf[64];
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int k = ct_tokenizer_piece(t, i ? ids[i - 1] : -1, ids[i], buf, sizeof buf);
        CHECK(k >= 0);
        if (k > 0 && o + (size_t)k < sizeof acc) { memcpy(acc + o, buf, (size_t)k); o += (size_t)k; }
    }
    CHECK(o == bn && !memcmp(acc, back ? back : "", o));
    free(ids);
    free(back);
}

static ct_tokenizer *load(const char *path) {
    ct_tokenizer *t = NULL;
    CHECK_OK(ct_tokenizer_load(path, &t));
    if (!t) { fprintf(stderr, "cannot load %s: %s\n", path, ct_errmsg()); exit(ct_check_done("test_tokenizer")); }
    return t;
}

static void test_a(void) {
    ct_tokenizer *t = load(write_json("a.json", body_a));
    CHECK_EQ_INT(ct_tokenizer_vocab_size(t), 264);
    CHECK_EQ_INT(ct_tokenizer_adds_bos(t), 1);
    CHECK_EQ_INT(ct_tokenizer_bos(t), 261);
    CHECK(!strcmp(ct_tokenizer_kind(t), "bpe-bytelevel"));
    CHECK_EQ_INT(ct_tokenizer_token_id(t, "<mask>"), 262);
    CHECK_EQ_INT(ct_tokenizer_token_id(t, "\xC4\xA0the"), 258);
    CHECK_EQ_INT(ct_tokenizer_token_id(t, "nope"), -1);
    expect(t, "the cat-in the hat 2024", CT_TOK_ADD_BOS, REF_A1);
    expect(t, "x<|bos|>y a  <mask>  b", CT_TOK_ADD_BOS, REF_A2);
    expect(t, "x<|bos|>y a  <mask>  b", CT_TOK_NO_SPECIAL, REF_A3);
    expect(t, "wow wowzer wow. awow wow", 0, REF_A4);
    expect(t, "in-in--in -", 0, REF_A5);
    expect(t, "", CT_TOK_ADD_BOS, "261");
    expect_roundtrip(t, "the cat-in the hat", " the cat -in the hat"); /* as `tokenizers` decodes it: add_prefix_space */
    ct_tokenizer_free(t);
}

static void test_spm(void) {
    ct_tokenizer *b = load(write_json("b.json", body_b));
    CHECK(!strcmp(ct_tokenizer_kind(b), "spm"));
    CHECK_EQ_INT(ct_tokenizer_bos(b), 1);
    CHECK_EQ_INT(ct_tokenizer_eos(b), 2);
    expect(b, "ab ab", CT_TOK_ADD_BOS, REF_B1);
    expect(b, " a  b c\xC3\xA9", CT_TOK_ADD_BOS, REF_B2);
    expect(b, "ab<s>ab </s> b", 0, REF_B3);
    expect(b, "", CT_TOK_ADD_BOS, "1 2");
    expect_roundtrip(b, " a  b c\xC3\xA9\tx", " a  b c\xC3\xA9\tx");
    expect_roundtrip(b, "ab", "ab");
    ct_tokenizer_free(b);

    ct_tokenizer *c = load(write_json("c.json", body_c));
    expect(c, "  ab, b!! abb ...a  ", 0, REF_C1);
    expect(c, "a\xCC\x81 b\xCC\x81\xCC\xA3", 0, REF_C2); /* NFC composes á; ḅ + U+0301 reordered */
    ct_tokenizer_free(c);

    ct_tokenizer *d = load(write_json("d.json", body_d));
    expect(d, " ab b, a  b", 0, REF_D1);
    expect(d, "<s> ab b", 0, REF_D2);
    ct_tokenizer_free(d);
}

/* Real vocabularies (ids from GPT2TokenizerFast and SentencePiece). */
static void test_shared(void) {
    const char *sh = getenv("CTUNE_SHARED");
    char p[512];
    ct_tokenizer *t;
    if (!sh) sh = "../shared";
    snprintf(p, sizeof p, "%s/models/tokenizers/gpt2-encoder.json", sh);
    if (access(p, R_OK)) { printf("test_tokenizer: %s missing, real-vocabulary cases skipped\n", p); return; }
    t = load(p);
    expect(t, "Hello world! It's 2024.", 0, "15496 995 0 632 338 48609 13");
    expect(t, "  spaces   here", 0, "220 9029 220 220 994");
    expect(t, "<|endoftext|>x", 0, "50256 87");
    CHECK_EQ_INT(ct_tokenizer_adds_bos(t), 0);
    ct_tokenizer_free(t);
    snprintf(p, sizeof p, "%s/models/tokenizers/llama2-tokenizer.bin", sh);
    t = load(p);
    expect(t, "Hello world! It's 2024.", CT_TOK_ADD_BOS, "1 15043 3186 29991 739 29915 29879 29871 29906 29900 29906 29946 29889");
    expect(t, "  =", CT_TOK_ADD_BOS, "1 259 353");
    expect_roundtrip(t, " Hello\n\xF0\x9F\x98\x80", " Hello\n\xF0\x9F\x98\x80");
    ct_tokenizer_free(t);
}

/* Corrupt input: an error with a message, never a crash. */
static void test_errors(void) {
    static const char *bad[] = {
        "{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}", /* "ab" missing */
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":-1}}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":99999999999}}}",
        ("{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},"
         "\"behavior\":\"Isolated\"}}"),
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"normalizer\":{\"type\":\"Lowercase\"}}",
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}},\"added_tokens\":[{\"id\":5}]}",
        "{\"model\":",
        "\x10\x00\x00\x00\x00\x00\x80\x3f\x40\x00\x00\x00xy", /* tokenizer.bin with a length past the end */
        "GGUF\x03\x00\x00\x00",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/bad%zu", dir, i);
        FILE *f = fopen(p, "wb");
        size_t n = i == 8 ? 14 : strlen(bad[i]);
        fwrite(bad[i], 1, n, f);
        fclose(f);
        ct_tokenizer *t = (ct_tokenizer *)1;
        ct_status s = ct_tokenizer_load(p, &t);
        CHECK(s != CT_OK);
        CHECK(t == NULL);
        CHECK(strlen(ct_errmsg()) > 10);
    }
    ct_tokenizer_free(NULL);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/ct-tok-XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    test_a();
    test_spm();
    test_shared();
    test_errors();
    if (getenv("CT_TEST_KEEP")) printf("test_tokenizer: files kept in %s\n", dir);
    else {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd)) {}
    }
    return ct_check_done("test_tokenizer");
}
