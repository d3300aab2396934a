/* cli/cmd_eval.c — `ctune eval MODEL --data FILE.txt`: perplexity of a text
 * file with sliding windows (docs/eval.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const char *USAGE =
    "usage: ctune eval MODEL --data FILE.txt [--ctx N] [--stride S] [-t THREADS] [--tokenizer F]\n"
    "  --adapter DIR  apply a LoRA adapter (PEFT directory) first\n"
    "  --ctx N      window length in tokens (default: the model's context, at most 1024)\n"
    "  --stride S   window step (default: ctx/2); each token is scored once, with\n"
    "               at least ctx-stride tokens of context after the first window\n"
    "  --q8-act     quantize activations to 8 bits for Q8_0/Q4_0/Q4_1 weights (faster,\n"
    "               not exact)\n";

static ct_status read_text(const char *path, char **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "ctune eval: cannot open '%s'\n", path); return CT_ERR_IO; }
    size_t cap = 1 << 20, n = 0;
    char *b = malloc(cap);
    size_t r;
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) { char *nb = realloc(b, cap *= 2); if (!nb) { free(b); b = NULL; } else b = nb; }
    }
    fclose(f);
    if (!b) return CT_ERR_NOMEM;
    *buf = b;
    *len = n;
    return CT_OK;
}

int cmd_eval(int argc, char **argv) {
    const char *path = NULL, *data = NULL, *tokpath = NULL, *adapter = NULL;
    long ctx = 0, stride = 0, threads = 0;
    int q8act = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--data") && more) data = argv[++i];
        else if (!strcmp(a, "--tokenizer") && more) tokpath = argv[++i];
        else if (!strcmp(a, "--adapter") && more) adapter = argv[++i];
        else if (!strcmp(a, "--ctx") && more) { if (!cli_parse_int(a, argv[++i], 2, 1 << 20, &ctx)) return 2; }
        else if (!strcmp(a, "--stride") && more) { if (!cli_parse_int(a, argv[++i], 1, 1 << 20, &stride)) return 2; }
        else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && more) { if (!cli_parse_int(a, argv[++i], 1, 256, &threads)) return 2; }
        else if (!strcmp(a, "--q8-act")) q8act = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(USAGE, stdout); return 0; }
        else if (a[0] == '-') { fprintf(stderr, "ctune eval: unknown option '%s'\n%s", a, USAGE); return 2; }
        else if (!path) path = a;
        else { fprintf(stderr, "ctune eval: unexpected argument '%s'\n", a); return 2; }
    }
    if (!path || !data) { fputs(USAGE, stderr); return 2; }

    ct_model *m = NULL;
    ct_status s = cli_load_model_adapter(path, tokpath, q8act, adapter, &m);
    if (s != CT_OK) return cli_fail(path, s);
    ct_tokenizer *tok = ct_model_tokenizer(m);
    if (!tok) { fprintf(stderr, "ctune eval: %s has no tokenizer; pass --tokenizer FILE\n", path); ct_model_free(m); return 1; }
    const ct_config *cfg = ct_model_config(m);
    if (ctx <= 0) ctx = cfg->max_seq_len < 1024 ? cfg->max_seq_len : 1024;
    if (stride <= 0) stride = ctx / 2 > 0 ? ctx / 2 : 1;
    if (stride > ctx) { fprintf(stderr, "ctune eval: --stride %ld exceeds --ctx %ld\n", stride, ctx); ct_model_free(m); return 2; }

    char *text = NULL;
    size_t len = 0;
    if (read_text(data, &text, &len) != CT_OK) { ct_model_free(m); return 1; }
    int32_t *ids = NULL;
    size_t n = 0;
    unsigned flags = ct_tokenizer_adds_bos(tok) ? CT_TOK_ADD_BOS : 0;
    s = ct_tokenizer_encode(tok, text, len, flags, &ids, &n);
    free(text);
    if (s != CT_OK) { ct_model_free(m); return cli_fail(data, s); }

    ct_ctx *c = NULL;
    s = ct_ctx_create(m, (int)ctx, (int)threads, &c);
    if (s != CT_OK) { free(ids); ct_model_free(m); return cli_fail("creating context", s); }
    ct_eval_opts eo = {(int)ctx, (int)stride};
    ct_eval_result r;
    s = ct_eval_perplexity(c, ids, n, &eo, &r);
    if (s != CT_OK) { ct_ctx_free(c); free(ids); ct_model_free(m); return cli_fail("eval", s); }
    printf("perplexity: %.4f\n", r.perplexity);
    fprintf(stderr, "tokens: %lld, scored: %lld, nll/token: %.5f, ctx %ld stride %ld, %.1f tokens/s (%.2f s)\n",
            (long long)r.n_tokens, (long long)r.n_scored, r.nll_sum / (double)(r.n_scored ? r.n_scored : 1), ctx,
            stride, r.seconds > 0 ? (double)r.n_processed / r.seconds : 0.0, r.seconds);
    ct_ctx_free(c);
    free(ids);
    ct_model_free(m);
    return 0;
}
