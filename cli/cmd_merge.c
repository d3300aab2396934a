/* cli/cmd_merge.c — `ctune merge MODEL --adapter DIR -o OUT`: a LoRA/QLoRA
 * adapter merged into its base at full precision, written as a plain
 * Hugging Face directory (f32 or bf16). A quantized base (bitsandbytes
 * NF4/FP4, GGUF Q8_0/Q4_*) is dequantized first and the result is not
 * re-quantized: the adapter's updates are much smaller than a 4-bit step and
 * would mostly round away. ct_model_apply_adapter + ct_model_save_hf. */
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "ctune/export.h"

static const char *USAGE =
    "usage: ctune merge MODEL --adapter DIR -o OUT [--dtype f32|bf16]\n"
    "  --adapter DIR     PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors)\n"
    "  -o OUT            output Hugging Face directory\n"
    "  --dtype f32|bf16  stored dtype of the merged weights (default f32)\n"
    "  --tokenizer F     tokenizer for a llama2.c .bin model\n";

int cmd_merge(int argc, char **argv) {
    const char *path = NULL, *adapter = NULL, *out = NULL, *tokpath = NULL;
    int bf16 = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--adapter") && more) adapter = argv[++i];
        else if (!strcmp(a, "-o") && more) out = argv[++i];
        else if (!strcmp(a, "--dtype") && more) {
            const char *d = argv[++i];
            if (!strcmp(d, "f32") || !strcmp(d, "float32")) bf16 = 0;
            else if (!strcmp(d, "bf16") || !strcmp(d, "bfloat16")) bf16 = 1;
            else { fprintf(stderr, "ctune merge: --dtype must be f32 or bf16, not '%s'\n", d); return 2; }
        } else if (!strcmp(a, "--tokenizer") && more) tokpath = argv[++i];
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(USAGE, stdout); return 0; }
        else if (a[0] == '-') { fprintf(stderr, "ctune merge: unknown option '%s'\n%s", a, USAGE); return 2; }
        else if (!path) path = a;
        else { fprintf(stderr, "ctune merge: unexpected argument '%s'\n", a); return 2; }
    }
    if (!path || !adapter || !out) { fputs(USAGE, stderr); return 2; }
    ct_model *m = NULL;
    ct_status s = cli_load_model(path, tokpath, 0, &m);
    if (s) return cli_fail(path, s);
    const char *q = ct_model_quant_type(m); /* before merging: merged matrices are f32 */
    s = ct_model_apply_adapter(m, adapter);
    if (s) { ct_model_free(m); return cli_fail(adapter, s); }
    s = ct_model_save_hf(m, out, bf16);
    ct_model_free(m);
    if (s) return cli_fail(out, s);
    if (q)
        printf("note: the base is quantized (%s): the adapter was merged into the dequantized base in f32 and "
               "%s is NOT re-quantized (re-quantizing a merged model rounds away most of the adapter's small "
               "updates; quantize the merged model only if you accept that, and evaluate it)\n", q, out);
    printf("wrote %s: %s merged into %s, %s weights\n", out, adapter, path, bf16 ? "bf16" : "f32");
    return 0;
}
