/* cli/cmd_info.c — `ctune info MODEL`: what a checkpoint is. */
#include <stdio.h>
#include <string.h>
#include "cli.h"

int cmd_info(int argc, char **argv) {
    const char *path = NULL, *tokpath = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tokpath = argv[++i];
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: ctune info MODEL [--tokenizer FILE]\n");
            return 0;
        } else if (argv[i][0] == '-') { fprintf(stderr, "ctune info: unknown option '%s'\n", argv[i]); return 2; }
        else if (!path) path = argv[i];
        else { fprintf(stderr, "ctune info: unexpected argument '%s'\n", argv[i]); return 2; }
    }
    if (!path) { fprintf(stderr, "usage: ctune info MODEL [--tokenizer FILE]\n"); return 2; }
    ct_model *m = NULL;
    ct_status s = cli_load_model(path, tokpath, 0, &m);
    if (s != CT_OK) return cli_fail(path, s);
    const ct_config *c = ct_model_config(m);
    int64_t np = ct_model_n_params(m);
    printf("model:        %s\n", path);
    printf("source:       %s\n", ct_model_source(m));
    printf("architecture: %s (%s)\n", c->arch == CT_ARCH_GPT2 ? "gpt2" : "llama", c->model_type);
    printf("parameters:   %lld (%.2fM)\n", (long long)np, (double)np / 1e6);
    printf("layers:       %d\n", c->n_layers);
    printf("hidden:       %d (ffn %d)\n", c->dim, c->hidden_dim);
    printf("heads:        %d (kv %d, head dim %d)\n", c->n_heads, c->n_kv_heads, c->head_dim);
    printf("vocab:        %d\n", c->vocab_size);
    printf("context:      %d\n", c->max_seq_len);
    if (c->arch == CT_ARCH_LLAMA) {
        printf("rope:         theta %g, %s\n", c->rope_theta, c->rope_style == CT_ROPE_NEOX ? "neox (rotate_half)" : "norm (adjacent pairs)");
        printf("norm eps:     %g\n", c->norm_eps);
        printf("qkv bias:     %s\n", c->qkv_bias ? "yes" : "no");
    }
    printf("tied embed:   %s\n", c->tie_embeddings ? "yes" : "no");
    printf("dtypes:       %s\n", ct_model_dtype_summary(m));
    printf("weights/token: %.1f MB\n", (double)ct_model_weight_bytes(m) / 1e6);
    ct_tokenizer *t = ct_model_tokenizer(m);
    if (t)
        printf("tokenizer:    %s, %d tokens, bos %d, eos %d%s\n", ct_tokenizer_kind(t), ct_tokenizer_vocab_size(t),
               ct_tokenizer_bos(t), ct_tokenizer_eos(t), ct_tokenizer_chat_template(t) ? ", chat template" : "");
    else
        printf("tokenizer:    none\n");
    ct_model_free(m);
    return 0;
}
