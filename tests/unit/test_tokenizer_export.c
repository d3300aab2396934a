/* tests/unit/test_tokenizer_export.c — ct__tokenizer_write_hf on every source
 * tokenizer that is present: llama2.c tok512.bin and llama2-tokenizer.bin,
 * the GGUF vocabularies (gpt-2, llama-spm, stories260K), GPT-2 encoder.json,
 * and the SmolLM2 GGUF in $CTUNE_CACHE/models.
 *
 * Always (plain CTest, no Python): export into a temporary directory, parse
 * the three JSON files with the project's reader, load the written
 * tokenizer.json back with ctune's own tokenizer.json loader (which equals
 * `tokenizers`, tests/e2e/test_tokenizer.sh) and require the same ids and the
 * same decoded text as the source on the test texts; a tokenizer.json source
 * is copied byte for byte; a source whose tables cannot be expressed is
 * refused with CT_ERR_UNSUPPORTED.
 * With CTUNE_TOKEXPORT_OUT=<dir> (tests/e2e/test_tokenizer_export.sh) it also
 * writes, for tests/golden/check_tokenizer_export.py:
 *   <dir>/texts.jsonl         one JSON string per record
 *   <dir>/<name>/             tokenizer.json, tokenizer_config.json, ...
 *   <dir>/<name>.ids.txt      ctune's ids (default BOS handling), one line per record
 *   <dir>/<name>.rt.txt       1 where ctune's decode(ids) == text, else 0
 *   <dir>/manifest.txt        "<name> <template ids before> <after>" per tokenizer
 * CTUNE_TOKEXPORT_SOURCES="name=path ..." adds sources.
 * Records: the first 300 lines of tinystories-sample.txt and of
 * tinyshakespeare.txt, and the edge strings below.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ctune/tokenizer.h"
#include "formats/json.h"
#include "formats/st_write.h"
#include "tokenizer/export_hf.h"
#include "tokenizer/tok_internal.h"

static const char *const edge[] = {
    "", " ", "  ", "hello", " hello", "hello ", "  two leading", "two trailing  ", "multiple   spaces    inside",
    "                    twenty spaces", "tab\there", "\ttab first", "new\nline", "two\n\nnewlines", "\n", "  \n  ",
    "x\r\ny", "caf\xC3\xA9 na\xC3\xAFve r\xC3\xA9sum\xC3\xA9", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE6\x96\x87",
    "\xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 \xD0\xBC\xD0\xB8\xD1\x80", "emoji \xF0\x9F\x98\x80\xF0\x9F\x8E\x89 \xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",
    "family \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7", "digits 1234567890 and 3.14159, 42",
    "12345", "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n", "<s>hello</s>", "a<unk>b",
    "<|endoftext|>The end<|endoftext|>", "it's don't we'll I'd THEY'RE", "\xC2\xA0non-breaking space",
    "\xE2\x96\x81literal metaspace", "mixed \xE4\xB8\xAD\xE6\x96\x87 and English 123 !!!???...", "a  b   c    d",
    "   ", "end with newline\n", "\xE2\x80\x8Azero width\xE2\x80\x8B", "Hello, World! How are you today?",
};
#define N_EDGE (sizeof edge / sizeof edge[0])
#define N_LINES 300

typedef struct { char **s; size_t *n; size_t count, cap; } texts;

static void add_text(texts *t, const char *s, size_t n) {
    if (t->count == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 256;
        t->s = realloc(t->s, t->cap * sizeof *t->s);
        t->n = realloc(t->n, t->cap * sizeof *t->n);
        if (!t->s || !t->n) { fprintf(stderr, "out of memory\n"); exit(1); }
    }
    t->s[t->count] = malloc(n + 1);
    if (!t->s[t->count]) { fprintf(stderr, "out of memory\n"); exit(1); }
    memcpy(t->s[t->count], s, n);
    t->s[t->count][n] = 0;
    t->n[t->count++] = n;
}

static void add_lines(texts *t, const char *path, int max) {
    FILE *f = fopen(path, "rb");
    if (!f) { printf("  (no %s)\n", path); return; }
    char line[1 << 16];
    for (int i = 0; i < max && fgets(line, sizeof line, f); i++) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n') n--;
        add_text(t, line, n);
    }
    fclose(f);
}

static int write_jsonl(const texts *t, const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    for (size_t i = 0; i < t->count; i++) {
        fputc('"', f);
        for (size_t k = 0; k < t->n[i]; k++) {
            unsigned char c = (unsigned char)t->s[i][k];
            if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
            else if (c < 0x20) fprintf(f, "\\u%04x", c);
            else fputc(c, f);
        }
        fputs("\"\n", f);
    }
    return fclose(f) == 0;
}

static void check_json_file(const char *dir, const char *name) {
    char *p = ct__path_join(dir, name), *text = NULL;
    size_t len = 0;
    ct_json *root = NULL;
    CHECK_OK(ct__read_file(p, &text, &len));
    if (text) CHECK_OK(ct__json_parse(text, len, p, &root));
    CHECK(root && root->type == CT_JSON_OBJ);
    ct__json_free(root);
    free(text);
    free(p);
}

static int same_file(const char *a, const char *b) {
    char *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    int same = !ct__read_file(a, &x, &nx) && !ct__read_file(b, &y, &ny) && nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

/* ids of src and of the reloaded export, and decode, on every text. Returns mismatches. */
static int compare_reload(const char *name, const ct_tokenizer *src, const ct_tokenizer *re, const texts *tx) {
    unsigned flags = ct_tokenizer_adds_bos(src) ? CT_TOK_ADD_BOS : 0;
    int bad = 0;
    CHECK_EQ_INT(ct_tokenizer_adds_bos(re), ct_tokenizer_adds_bos(src));
    for (size_t i = 0; i < tx->count; i++) {
        int32_t *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        char *da = NULL, *db = NULL;
        size_t la = 0, lb = 0;
        CHECK_OK(ct_tokenizer_encode(src, tx->s[i], tx->n[i], flags, &a, &na));
        CHECK_OK(ct_tokenizer_encode(re, tx->s[i], tx->n[i], flags, &b, &nb));
        int same = na == nb && (!na || !memcmp(a, b, na * sizeof *a));
        if (same) {
            CHECK_OK(ct_tokenizer_decode(src, a, na, &da, &la));
            CHECK_OK(ct_tokenizer_decode(re, b, nb, &db, &lb));
            same = da && db && la == lb && !memcmp(da, db, la);
        }
        if (!same && bad++ < 3) fprintf(stderr, "%s: record %zu ('%.60s'): reloaded export differs\n", name, i, tx->s[i]);
        free(a); free(b); free(da); free(db);
    }
    CHECK_EQ_INT(bad, 0);
    return bad;
}

static void write_refs(const char *out, const char *name, const ct_tokenizer *t, const texts *tx, FILE *man) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.ids.txt", out, name);
    FILE *fi = fopen(path, "wb");
    snprintf(path, sizeof path, "%s/%s.rt.txt", out, name);
    FILE *fr = fopen(path, "wb");
    CHECK(fi && fr);
    if (!fi || !fr) return;
    unsigned flags = ct_tokenizer_adds_bos(t) ? CT_TOK_ADD_BOS : 0;
    for (size_t i = 0; i < tx->count; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        char *d = NULL;
        size_t dl = 0;
        CHECK_OK(ct_tokenizer_encode(t, tx->s[i], tx->n[i], flags, &ids, &n));
        for (size_t k = 0; k < n; k++) fprintf(fi, k ? " %d" : "%d", ids[k]);
        fputc('\n', fi);
        CHECK_OK(ct_tokenizer_decode(t, ids, n, &d, &dl));
        fprintf(fr, "%d\n", d && dl == tx->n[i] && !memcmp(d, tx->s[i], dl));
        free(ids);
        free(d);
    }
    fclose(fi);
    fclose(fr);
    int bos = ct_tokenizer_adds_bos(t); /* the template is applied only then */
    fprintf(man, "%s %d %d\n", name, bos ? t->n_tmpl_pre : 0, bos ? t->n_tmpl_post : 0);
}

/* Export src into dir, check the files, reload and compare. */
static void one(const char *name, const char *path, const char *tmp, const char *out, const texts *tx, FILE *man) {
    if (access(path, R_OK)) { printf("  %-16s skipped (no %s)\n", name, path); return; }
    ct_tokenizer *t = NULL;
    CHECK_OK(ct_tokenizer_load(path, &t));
    if (!t) return;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", out ? out : tmp, name);
    double t0 = ct__now();
    ct_status st = ct__tokenizer_write_hf(t, dir);
    double dt = ct__now() - t0;
    CHECK_OK(st);
    if (st) { ct_tokenizer_free(t); return; }
    check_json_file(dir, "tokenizer.json");
    check_json_file(dir, "tokenizer_config.json");
    check_json_file(dir, "special_tokens_map.json");
    ct_tokenizer *re = NULL;
    CHECK_OK(ct_tokenizer_load(dir, &re));
    int bad = re ? compare_reload(name, t, re, tx) : -1;
    printf("  %-16s %-13s V=%-6d bos=%d  export %.2f s, reloaded: %s\n", name, ct_tokenizer_kind(t),
           ct_tokenizer_vocab_size(t), ct_tokenizer_adds_bos(t), dt, bad ? "DIFFERS" : "same ids and text");
    if (re) { /* a tokenizer.json source is copied as is */
        char d2[4096], a[4200], b[4200];
        snprintf(d2, sizeof d2, "%s/%s.copy", tmp, name);
        CHECK_OK(ct__tokenizer_write_hf(re, d2));
        snprintf(a, sizeof a, "%s/tokenizer.json", dir);
        snprintf(b, sizeof b, "%s/tokenizer.json", d2);
        CHECK(same_file(a, b));
        snprintf(a, sizeof a, "%s/tokenizer_config.json", dir);
        snprintf(b, sizeof b, "%s/tokenizer_config.json", d2);
        CHECK(same_file(a, b));
    }
    if (out) write_refs(out, name, t, tx, man);
    ct_tokenizer_free(re);
    ct_tokenizer_free(t);
}

/* Tables loaded from a tokenizer.json that is gone cannot all be written again. */
static void unsupported(const char *tmp) {
    static const char *const js =
        "{\"version\":\"1.0\",\"added_tokens\":[],\"normalizer\":null,"
        "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\d\"},"
        "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,"
        "\"use_regex\":false}]},\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\"},"
        "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]}}";
    char path[4096], dir[4096];
    snprintf(path, sizeof path, "%s/gone.json", tmp);
    snprintf(dir, sizeof dir, "%s/gone.out", tmp);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fputs(js, f);
    fclose(f);
    ct_tokenizer *t = NULL;
    CHECK_OK(ct_tokenizer_load(path, &t));
    unlink(path);
    if (t) CHECK_EQ_INT(ct__tokenizer_write_hf(t, dir), CT_ERR_UNSUPPORTED);
    ct_tokenizer_free(t);
    char *p = ct__path_join(dir, "tokenizer.json");
    CHECK(p && !ct__file_exists(p));
    free(p);
}

int main(void) {
    const char *shared = getenv("CTUNE_SHARED"), *cache = getenv("CTUNE_CACHE"), *out = getenv("CTUNE_TOKEXPORT_OUT");
    if (!shared) shared = "../shared";
    char cdef[4096];
    if (!cache) {
        snprintf(cdef, sizeof cdef, "%s/.cache/ctune", getenv("HOME") ? getenv("HOME") : ".");
        cache = cdef;
    }
    if (out && !*out) out = NULL;
    char tmp[] = "/tmp/ctune-tokexport.XXXXXX";
    if (!mkdtemp(tmp)) { perror("mkdtemp"); return 1; }
    texts tx = {0};
    char p[4096];
    snprintf(p, sizeof p, "%s/data/text/tinystories-sample.txt", shared);
    add_lines(&tx, p, N_LINES);
    snprintf(p, sizeof p, "%s/data/text/tinyshakespeare.txt", shared);
    add_lines(&tx, p, N_LINES);
    for (size_t i = 0; i < N_EDGE; i++) add_text(&tx, edge[i], strlen(edge[i]));
    printf("%zu records\n", tx.count);
    FILE *man = NULL;
    if (out) {
        CHECK_OK(ct__mkdir_p(out));
        snprintf(p, sizeof p, "%s/texts.jsonl", out);
        CHECK(write_jsonl(&tx, p));
        snprintf(p, sizeof p, "%s/manifest.txt", out);
        CHECK((man = fopen(p, "wb")) != NULL);
        if (!man) return 1;
    }
    static const struct { const char *name, *rel; int in_cache; } src[] = {
        {"tok512", "models/stories260K/tok512.bin", 0},
        {"stories260K-gguf", "models/stories260K/stories260K.gguf", 0},
        {"llama2-bin", "models/tokenizers/llama2-tokenizer.bin", 0},
        {"llama-spm-gguf", "models/tokenizers/vocab-llama-spm.gguf", 0},
        {"gpt2-encoder", "models/tokenizers/gpt2-encoder.json", 0},
        {"gpt2-gguf", "models/tokenizers/vocab-gpt-2.gguf", 0},
        {"smollm2-gguf", "models/SmolLM2-135M-Instruct-Q4_1.gguf", 1},
    };
    for (size_t i = 0; i < sizeof src / sizeof src[0]; i++) {
        if (snprintf(p, sizeof p, "%s/%s", src[i].in_cache ? cache : shared, src[i].rel) >= (int)sizeof p) continue;
        one(src[i].name, p, tmp, out, &tx, man);
    }
    /* CTUNE_TOKEXPORT_SOURCES="name=path ...": more sources (the e2e script's GGUF variants) */
    const char *extra = getenv("CTUNE_TOKEXPORT_SOURCES");
    for (const char *e = extra; e && *e;) {
        while (*e == ' ') e++;
        size_t n = strcspn(e, " ");
        const char *eq = memchr(e, '=', n);
        if (eq && n < 2048) {
            char name[2048], path[2048];
            snprintf(name, sizeof name, "%.*s", (int)(eq - e), e);
            snprintf(path, sizeof path, "%.*s", (int)(n - (size_t)(eq - e) - 1), eq + 1);
            one(name, path, tmp, out, &tx, man);
        }
        e += n;
    }
    unsupported(tmp);
    if (man) fclose(man);
    for (size_t i = 0; i < tx.count; i++) free(tx.s[i]);
    free(tx.s);
    free(tx.n);
    if (!getenv("CT_TEST_KEEP")) ct__rmtree(tmp);
    else printf("kept %s\n", tmp);
    return ct_check_done("test_tokenizer_export");
}
