/* cli/cmd_quantize.c — `ctune quantize MODEL -o DIR`: write MODEL as a
 * Hugging Face bitsandbytes 4-bit checkpoint (what transformers saves for
 * BitsAndBytesConfig(load_in_4bit=True)), loadable by ctune and transformers.
 * The work is ct_model_save_bnb4 (src/formats/bnb4_write.c). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "ctune/export.h"

static const char *USAGE =
    "usage: ctune quantize MODEL -o DIR [--type nf4|fp4] [--no-double-quant] [-t THREADS]\n"
    "  -o DIR              output directory (must not exist)\n"
    "  --type nf4|fp4      4-bit type (bnb_4bit_quant_type; default nf4)\n"
    "  --no-double-quant   keep the block scales in f32 (bnb_4bit_use_double_quant false)\n"
    "  -t N                threads (default: all cores)\n"
    "  --tokenizer F       tokenizer for a llama2.c .bin model\n"
    "  -v                  one line per quantized matrix\n"
    "Every linear layer of the blocks is quantized (blocksize 64); embeddings, norms,\n"
    "biases and lm_head keep the model's float dtype, as transformers does.\n";

int cmd_quantize(int argc, char **argv) {
    const char *path = NULL, *out = NULL, *tokpath = NULL;
    ct_quantize_opts o = {0};
    long threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "-o") && more) out = argv[++i];
        else if (!strcmp(a, "--type") && more) {
            const char *t = argv[++i];
            if (!strcmp(t, "nf4")) o.fp4 = 0;
            else if (!strcmp(t, "fp4")) o.fp4 = 1;
            else { fprintf(stderr, "ctune quantize: --type must be nf4 or fp4, not '%s'\n", t); return 2; }
        } else if (!strcmp(a, "--no-double-quant")) o.no_double_quant = 1;
        else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && more) {
            if (!cli_parse_int(a, argv[++i], 1, 256, &threads)) return 2;
        } else if (!strcmp(a, "--tokenizer") && more) tokpath = argv[++i];
        else if (!strcmp(a, "-v")) o.verbose = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(USAGE, stdout); return 0; }
        else if (a[0] == '-') { fprintf(stderr, "ctune quantize: unknown option '%s'\n%s", a, USAGE); return 2; }
        else if (!path) path = a;
        else { fprintf(stderr, "ctune quantize: unexpected argument '%s'\n", a); return 2; }
    }
    if (!path || !out) { fputs(USAGE, stderr); return 2; }
    o.n_threads = (int)threads;
    /* a file-size limit then fails the write (EFBIG) instead of killing us
     * with the temporary directory left behind */
    signal(SIGXFSZ, SIG_IGN);
    if (o.verbose) ct_set_log(NULL, NULL, CT_LOG_INFO);
    ct_model *m = NULL;
    ct_status s = cli_load_model(path, tokpath, 0, &m);
    if (s) return cli_fail(path, s);
    s = ct_model_save_bnb4(m, out, &o);
    ct_model_free(m);
    if (s) return cli_fail(out, s);
    printf("wrote %s: %s 4-bit (bitsandbytes, blocksize 64%s)\n", out, o.fp4 ? "FP4" : "NF4",
           o.no_double_quant ? "" : ", double quant");
    return 0;
}
