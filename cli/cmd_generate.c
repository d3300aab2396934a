/* cli/cmd_generate.c — `ctune generate MODEL -p PROMPT`: stream a continuation.
 * Greedy unless --temp > 0. --chat wraps the prompt (and --system) in the
 * model's chat format with ct_chat_render (include/ctune/chat.h: ChatML,
 * Llama-2/Mistral [INST], Llama-3, Zephyr) and stops at its end-of-turn token. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const char *USAGE =
    "usage: ctune generate MODEL -p PROMPT [options]\n"
    "  -n N            tokens to generate (default 256)\n"
    "  --temp T        temperature; 0 = greedy (default 0)\n"
    "  --top-k K       keep the K most likely tokens (default 0 = off)\n"
    "  --top-p P       nucleus sampling (default 1 = off)\n"
    "  --seed S        sampling seed (default 42)\n"
    "  --chat          format PROMPT as a user turn with the model's chat template\n"
    "  --system TEXT   system message for --chat\n"
    "  --echo          print the prompt before the continuation\n"
    "  --prompt-ids F  write the prompt's token ids (chat template applied) to file F\n"
    "  --ctx N         context size (default: the model's)\n"
    "  -t N            threads (default: all cores)\n"
    "  --tokenizer F   tokenizer for a llama2.c .bin model\n"
    "  --adapter DIR   apply a LoRA adapter (PEFT directory) first\n"
    "  --q8-act        quantize activations to 8 bits for Q8_0/Q4_0/Q4_1 weights (llama.cpp's\n"
    "                  way: faster decoding, results differ from an f32 reference)\n";

static int on_token(int32_t id, const char *piece, size_t len, void *ud) {
    (void)id; (void)ud;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    return 0;
}

int cmd_generate(int argc, char **argv) {
    const char *path = NULL, *prompt = NULL, *tokpath = NULL, *system = NULL, *ids_out = NULL, *adapter = NULL;
    long n = 256, topk = 0, seed = 42, threads = 0, nctx = 0;
    double temp = 0, topp = 1;
    int chat = 0, echo = 0, q8act = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && more) prompt = argv[++i];
        else if (!strcmp(a, "-n") && more) { if (!cli_parse_int(a, argv[++i], 0, 1 << 24, &n)) return 2; }
        else if (!strcmp(a, "--temp") && more) { if (!cli_parse_float(a, argv[++i], 0, 100, &temp)) return 2; }
        else if (!strcmp(a, "--top-k") && more) { if (!cli_parse_int(a, argv[++i], 0, 1 << 30, &topk)) return 2; }
        else if (!strcmp(a, "--top-p") && more) { if (!cli_parse_float(a, argv[++i], 0, 1, &topp)) return 2; }
        else if (!strcmp(a, "--seed") && more) { if (!cli_parse_int(a, argv[++i], 0, 0x7fffffffL, &seed)) return 2; }
        else if (!strcmp(a, "--ctx") && more) { if (!cli_parse_int(a, argv[++i], 1, 1 << 24, &nctx)) return 2; }
        else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && more) { if (!cli_parse_int(a, argv[++i], 1, 256, &threads)) return 2; }
        else if (!strcmp(a, "--tokenizer") && more) tokpath = argv[++i];
        else if (!strcmp(a, "--adapter") && more) adapter = argv[++i];
        else if (!strcmp(a, "--system") && more) system = argv[++i];
        else if (!strcmp(a, "--prompt-ids") && more) ids_out = argv[++i];
        else if (!strcmp(a, "--chat")) chat = 1;
        else if (!strcmp(a, "--echo")) echo = 1;
        else if (!strcmp(a, "--q8-act")) q8act = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(USAGE, stdout); return 0; }
        else if (a[0] == '-') { fprintf(stderr, "ctune generate: unknown option '%s'\n%s", a, USAGE); return 2; }
        else if (!path) path = a;
        else { fprintf(stderr, "ctune generate: unexpected argument '%s'\n", a); return 2; }
    }
    if (!path || !prompt) { fputs(USAGE, stderr); return 2; }

    ct_model *m = NULL;
    ct_status s = cli_load_model_adapter(path, tokpath, q8act, adapter, &m);
    if (s != CT_OK) return cli_fail(path, s);
    int rc = 1;
    ct_ctx *c = NULL;
    int32_t *ids = NULL;
    char *text = NULL;
    ct_tokenizer *tok = ct_model_tokenizer(m);
    if (!tok) { fprintf(stderr, "ctune generate: %s has no tokenizer; pass --tokenizer FILE\n", path); goto done; }

    int add_bos = ct_tokenizer_adds_bos(tok);
    const char *ptext = prompt;
    if (chat) {
        ct_chat_msg msgs[2];
        size_t nm = 0;
        if (system) msgs[nm++] = (ct_chat_msg){"system", system};
        msgs[nm++] = (ct_chat_msg){"user", prompt};
        s = ct_chat_render(tok, msgs, nm, 1, &text, &add_bos);
        if (s != CT_OK) { cli_fail("--chat", s); goto done; }
        ptext = text;
    }
    size_t np = 0;
    s = ct_tokenizer_encode(tok, ptext, strlen(ptext), add_bos ? CT_TOK_ADD_BOS : 0, &ids, &np);
    if (s != CT_OK) { cli_fail("encoding the prompt", s); goto done; }
    if (np == 0) { fprintf(stderr, "ctune generate: the prompt encodes to no tokens\n"); goto done; }
    if (ids_out) {
        FILE *f = fopen(ids_out, "w");
        if (!f) { fprintf(stderr, "ctune generate: --prompt-ids: cannot write %s: %s\n", ids_out, strerror(errno)); goto done; }
        for (size_t i = 0; i < np; i++) fprintf(f, i ? " %d" : "%d", (int)ids[i]);
        fputc('\n', f);
        if (fclose(f) != 0) { fprintf(stderr, "ctune generate: --prompt-ids: writing %s failed\n", ids_out); goto done; }
    }

    s = ct_ctx_create(m, (int)nctx, (int)threads, &c);
    if (s != CT_OK) { cli_fail("creating context", s); goto done; }
    if ((long)np >= ct_ctx_size(c)) { fprintf(stderr, "ctune generate: prompt (%zu tokens) does not fit the context (%d)\n", np, ct_ctx_size(c)); goto done; }

    int32_t stop[2];
    int nstop = 0;
    /* the chat format's end of turn; <|im_end|> also without --chat, as before */
    int eot = chat ? ct_chat_end_token(tok) : ct_tokenizer_token_id(tok, "<|im_end|>");
    if (eot >= 0) stop[nstop++] = eot;
    ct_gen_opts go = {0};
    go.max_new_tokens = (int)n;
    go.sampling.temperature = (float)temp;
    go.sampling.top_k = (int)topk;
    go.sampling.top_p = (float)topp;
    go.sampling.seed = (uint64_t)seed;
    go.stop_at_eos = 1;
    go.stop_ids = stop;
    go.n_stop_ids = nstop;
    if (echo) { fputs(prompt, stdout); fflush(stdout); }
    ct_gen_stats st = {0};
    s = ct_generate(c, ids, (int)np, &go, on_token, NULL, &st);
    printf("\n");
    fflush(stdout); /* the text's last line before the statistics on stderr */
    if (s != CT_OK) { cli_fail("generate", s); goto done; }
    fprintf(stderr, "prompt: %d tokens, %.1f tokens/s; generated: %d tokens, %.1f tokens/s\n", st.n_prompt,
            st.prompt_seconds > 0 ? st.n_prompt / st.prompt_seconds : 0.0, st.n_generated,
            st.gen_seconds > 0 ? st.n_generated / st.gen_seconds : 0.0);
    rc = 0;
done:
    free(text);
    free(ids);
    ct_ctx_free(c);
    ct_model_free(m);
    return rc;
}
