/* cli/cmd_tokenize.c — `ctune tokenize`: text lines on stdin -> one line of
 * space-separated token ids per input line (or, with --decode, lines of ids ->
 * text). A line is the bytes up to '\n' ('\n' not included, '\r' kept); with -z
 * records end with NUL instead, so texts may contain newlines.
 * The source is a tokenizer alone (tokenizer.json, .gguf, encoder.json with
 * vocab.bpe beside it, llama2.c tokenizer.bin) or a model (HF directory with
 * config.json, or a llama2.c checkpoint with --tokenizer).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: ctune tokenize MODEL|TOKENIZER [options] < text\n"
            "  Prints one line of token ids per input line.\n"
            "  TOKENIZER: tokenizer.json, a .gguf, encoder.json (vocab.bpe beside it), tokenizer.bin\n"
            "  MODEL: a Hugging Face directory, or a llama2.c .bin with --tokenizer\n"
            "options:\n"
            "  --no-bos          do not add BOS (default: add it when the tokenizer does)\n"
            "  --no-special      do not match special tokens (\"<s>\", \"<|endoftext|>\") in the text\n"
            "  --decode          read lines of ids, print the decoded text\n"
            "  -z, --null-data   records end with NUL instead of newline (text input of encode,\n"
            "                    text output of --decode), for texts that contain newlines\n"
            "  --tokenizer FILE  tokenizer for a llama2.c checkpoint\n");
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int has_file(const char *dir, const char *name) {
    char buf[4096];
    struct stat st;
    if ((size_t)snprintf(buf, sizeof buf, "%s/%s", dir, name) >= sizeof buf) return 0;
    return stat(buf, &st) == 0;
}

/* A tokenizer from path: loaded alone where possible, else from the model. */
static ct_status load(const char *path, const char *tokpath, ct_tokenizer **tok, ct_model **model) {
    *tok = NULL;
    *model = NULL;
    if (tokpath || (is_dir(path) && has_file(path, "config.json"))) {
        ct_status s = cli_load_model(path, tokpath, 0, model);
        if (s) return s;
        *tok = ct_model_tokenizer(*model);
        return CT_OK;
    }
    return ct_tokenizer_load(path, tok);
}

static int write_ids(const int32_t *ids, size_t n) {
    char buf[16];
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(buf, sizeof buf, i ? " %d" : "%d", (int)ids[i]);
        if (fwrite(buf, 1, (size_t)k, stdout) != (size_t)k) return 0;
    }
    return putchar('\n') != EOF;
}

static int encode_lines(const ct_tokenizer *tok, unsigned flags, int sep) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while ((len = getdelim(&line, &cap, sep, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == sep) len--;
        int32_t *ids;
        size_t n;
        ct_status s = ct_tokenizer_encode(tok, line, (size_t)len, flags, &ids, &n);
        if (s) { rc = cli_fail("tokenize", s); break; }
        int ok = write_ids(ids, n);
        free(ids);
        if (!ok) { fprintf(stderr, "ctune: tokenize: write error: %s\n", strerror(errno)); rc = 1; break; }
    }
    free(line);
    return rc;
}

static int decode_lines(const ct_tokenizer *tok, int sep) {
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    int32_t *ids = NULL;
    size_t idcap = 0;
    int rc = 0;
    while (!rc && (len = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        size_t n = 0;
        for (char *p = line, *end;; p = end) {
            while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
            if (!*p) break;
            errno = 0;
            long v = strtol(p, &end, 10);
            if (end == p || errno || v < 0 || v > INT32_MAX) {
                fprintf(stderr, "ctune: tokenize --decode: line %zu: expected token ids, got '%.20s'\n", lineno, p);
                rc = 1;
                break;
            }
            if (n == idcap) {
                idcap = idcap ? idcap * 2 : 256;
                int32_t *q = realloc(ids, idcap * sizeof *q);
                if (!q) { fprintf(stderr, "ctune: out of memory\n"); rc = 1; break; }
                ids = q;
            }
            ids[n++] = (int32_t)v;
        }
        if (rc) break;
        char *text;
        size_t tl;
        ct_status s = ct_tokenizer_decode(tok, ids, n, &text, &tl);
        if (s) { rc = cli_fail("tokenize --decode", s); break; }
        fwrite(text, 1, tl, stdout);
        putchar(sep);
        free(text);
    }
    free(ids);
    free(line);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    const char *path = NULL, *tokpath = NULL;
    int no_bos = 0, decode = 0, no_special = 0, sep = '\n';
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        if (!strcmp(a, "--no-bos")) no_bos = 1;
        else if (!strcmp(a, "--decode")) decode = 1;
        else if (!strcmp(a, "--no-special")) no_special = 1;
        else if (!strcmp(a, "-z") || !strcmp(a, "--null-data")) sep = 0;
        else if (!strcmp(a, "--tokenizer") && i + 1 < argc) tokpath = argv[++i];
        else if (a[0] == '-' && a[1]) { fprintf(stderr, "ctune tokenize: unknown option '%s'\n", a); usage(stderr); return 2; }
        else if (!path) path = a;
        else { fprintf(stderr, "ctune tokenize: unexpected argument '%s'\n", a); usage(stderr); return 2; }
    }
    if (!path) { usage(stderr); return 2; }
    ct_tokenizer *tok;
    ct_model *model;
    ct_status s = load(path, tokpath, &tok, &model);
    if (s) {
        size_t n = strlen(path);
        if (!tokpath && n > 4 && !strcmp(path + n - 4, ".bin"))
            fprintf(stderr, "ctune: hint: for a llama2.c checkpoint pass its tokenizer with --tokenizer FILE\n");
        return cli_fail("tokenize", s);
    }
    int rc;
    if (!tok) {
        fprintf(stderr, "ctune: %s: the model carries no tokenizer; pass --tokenizer FILE\n", path);
        rc = 1;
    } else {
        static char obuf[1 << 16];
        setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
        unsigned flags = (!no_bos && ct_tokenizer_adds_bos(tok) ? CT_TOK_ADD_BOS : 0) | (no_special ? CT_TOK_NO_SPECIAL : 0);
        rc = decode ? decode_lines(tok, sep) : encode_lines(tok, flags, sep);
        if (fflush(stdout) != 0) rc = 1;
    }
    if (model) ct_model_free(model);
    else ct_tokenizer_free(tok);
    return rc;
}
