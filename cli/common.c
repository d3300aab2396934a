/* cli/common.c — helpers shared by subcommands: error printing, model loading,
 * numeric option parsing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

int cli_fail(const char *what, ct_status s) {
    const char *msg = ct_errmsg();
    /* the library's messages usually start with the file they are about */
    if (!strncmp(msg, what, strlen(what)) && msg[strlen(what)] != '\0') fprintf(stderr, "ctune: %s\n", msg);
    else fprintf(stderr, "ctune: %s: %s\n", what, msg);
    (void)s;
    return 1;
}

ct_status cli_load_model(const char *path, const char *tokenizer, int q8_act, ct_model **out) {
    ct_load_opts o = {0};
    o.tokenizer_path = tokenizer;
    o.q8_activations = q8_act;
    return ct_model_load(path, &o, out);
}

ct_status cli_load_model_adapter(const char *path, const char *tokenizer, int q8_act, const char *adapter,
                                 ct_model **out) {
    ct_status s = cli_load_model(path, tokenizer, q8_act, out);
    if (s || !adapter) return s;
    s = ct_model_apply_adapter(*out, adapter);
    if (s) {
        ct_model_free(*out);
        *out = NULL;
    }
    return s;
}

int cli_parse_int(const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "ctune: %s expects an integer in [%ld, %ld], got '%s'\n", opt, lo, hi, s);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_float(const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "ctune: %s expects a number in [%g, %g], got '%s'\n", opt, lo, hi, s);
        return 0;
    }
    *out = v;
    return 1;
}
