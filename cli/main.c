/* cli/main.c — the `ctune` command: dispatch to subcommands. */
#include <stdio.h>
#include <string.h>
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "ctune %s — load, run and fine-tune pretrained language models\n"
            "\n"
            "usage: ctune <command> [options]\n"
            "  info MODEL                      architecture, parameters, dtypes, tokenizer, context\n"
            "  tokenize MODEL|TOKENIZER        text lines on stdin -> one line of token ids each\n"
            "  generate MODEL -p PROMPT        stream a continuation (greedy by default)\n"
            "  eval MODEL --data FILE.txt      perplexity of a text file\n"
            "  train MODEL --data FILE --method full|lora -o DIR\n"
            "                                  fine-tune (AdamW, validation, checkpoints)\n"
            "  quantize MODEL -o DIR           bitsandbytes 4-bit HF checkpoint (NF4/FP4)\n"
            "  merge MODEL --adapter DIR -o OUT  merge a LoRA/QLoRA adapter at full precision\n"
            "  plan MODEL --method full|lora|qlora  predict trainable parameters, file size, peak memory\n"
            "  classify MODEL --data F (--head DIR | --words L=W,..)  predictions, accuracy, macro-F1\n"
            "  compare MODEL --data F --words L=W,.. -o DIR  every classification method, one table\n"
            "\n"
            "MODEL is a Hugging Face directory, a .gguf file, or a llama2.c .bin\n"
            "(with --tokenizer tokenizer.bin). `ctune <command> --help` for options.\n",
            CTUNE_VERSION);
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) { usage(stdout); return 0; }
    if (!strcmp(cmd, "--version")) { printf("ctune %s\n", CTUNE_VERSION); return 0; }
    if (!strcmp(cmd, "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc - 1, argv + 1);
    if (!strcmp(cmd, "generate")) return cmd_generate(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "quantize")) return cmd_quantize(argc - 1, argv + 1);
    if (!strcmp(cmd, "merge")) return cmd_merge(argc - 1, argv + 1);
    if (!strcmp(cmd, "plan")) return cmd_plan(argc - 1, argv + 1);
    if (!strcmp(cmd, "classify")) return cmd_classify(argc - 1, argv + 1);
    if (!strcmp(cmd, "compare")) return cmd_compare(argc - 1, argv + 1);
    fprintf(stderr, "ctune: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
