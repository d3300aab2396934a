/* cli/cli.h — subcommands of the ctune tool. Each takes the arguments after
 * its name (argv[0] is the subcommand) and returns the process exit code.
 * The CLI only parses arguments and hands off to libctune. */
#ifndef CT_CLI_H
#define CT_CLI_H
#include "ctune/ctune.h"

int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_compare(int argc, char **argv);
/* `ctune train --method head` (cmd_classify.c) */
int cmd_train_head(int argc, char **argv);

/* Print "ctune: <what>: <ct_errmsg()>" to stderr; returns 1. */
int cli_fail(const char *what, ct_status s);
/* Load a model from MODEL (HF dir, .gguf, llama2.c .bin with tokenizer);
 * q8_act: 8-bit activations for quantized matrices (--q8-act). */
ct_status cli_load_model(const char *path, const char *tokenizer, int q8_act, ct_model **out);
/* The same, then a LoRA adapter directory merged in when adapter is not NULL. */
ct_status cli_load_model_adapter(const char *path, const char *tokenizer, int q8_act, const char *adapter,
                                 ct_model **out);
/* Parse option values with range checks; print a message and return 0 on error. */
int cli_parse_int(const char *opt, const char *s, long lo, long hi, long *out);
int cli_parse_float(const char *opt, const char *s, double lo, double hi, double *out);
#endif
