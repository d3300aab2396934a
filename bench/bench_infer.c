/* bench/bench_infer.c — inference speed of one model through the public API:
 * prompt processing (P tokens in one batched forward) and decoding (N tokens,
 * one forward each), the two numbers llama-bench reports as pp<P> and tg<N>.
 *
 *   bench_infer MODEL [-p 128] [-n 64] [-t 2] [-r 5] [--q8-act] [--tokenizer FILE] [--json]
 *
 * Method (chosen to match llama-bench so the numbers compare):
 *   - token ids are synthetic (a fixed pseudo-random sequence over the vocab):
 *     speed does not depend on which ids are fed;
 *   - pp: cache cleared, P tokens in one ct_ctx_forward, logits of the last
 *     token only; tok/s = P / seconds;
 *   - tg: cache cleared, N single-token forwards at positions 0..N-1, each
 *     producing the (1, V) logits; tok/s = N / seconds;
 *   - one untimed warm-up of each (page faults of the mmapped weights, thread
 *     start-up), then r timed repetitions; the best is reported, the mean too;
 *   - activations stay f32 (the exact default) unless --q8-act loads the model
 *     with ct_load_opts.q8_activations = 1 (8-bit x for the Q matrices, as
 *     llama.cpp does).
 * Memory bandwidth: ct_model_weight_bytes() is what one decoded token reads;
 * times tg tok/s gives the weight traffic in GB/s, shown against 70 GB/s (an
 * estimate of this machine's DRAM bandwidth; KV-cache and activation traffic
 * are left out, they are small at these lengths).
 *
 * Uses only include/ctune/. Leaves out: sampling (argmax would add < 1%),
 * tokenization, batched decoding of several sequences.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctune/ctune.h"

#define PEAK_GBS 70.0

typedef struct {
    const char *model;
    const char *tokenizer;
    int P, N, threads, reps, json, q8_act;
} args;

static void die(const char *what, ct_status st) {
    fprintf(stderr, "bench_infer: %s: %s (%s)\n", what, ct_status_str(st), ct_errmsg());
    exit(1);
}

static void usage(void) {
    fprintf(stderr,
            "usage: bench_infer MODEL [-p P] [-n N] [-t THREADS] [-r REPS] [--q8-act] [--tokenizer FILE] [--json]\n"
            "  MODEL      .gguf, Hugging Face directory, or llama2.c .bin (needs --tokenizer)\n"
            "  -p P       prompt tokens processed as one batch (default 128; 0 skips)\n"
            "  -n N       tokens decoded one at a time (default 64; 0 skips)\n"
            "  -t T       worker threads (default 2)\n"
            "  -r R       timed repetitions, best reported (default 5)\n"
            "  --q8-act   quantize activations to 8 bits for Q8_0/Q4_0/Q4_1 matrices (default: f32)\n"
            "  --json     one JSON object on stdout instead of the text report\n");
    exit(2);
}

static int parse_int(const char *s, const char *flag) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 1000000) {
        fprintf(stderr, "bench_infer: %s wants a non-negative integer, got '%s'\n", flag, s);
        exit(2);
    }
    return (int)v;
}

static args parse_args(int argc, char **argv) {
    args a = {NULL, NULL, 128, 64, 2, 5, 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(s, "-p") && more) a.P = parse_int(argv[++i], s);
        else if (!strcmp(s, "-n") && more) a.N = parse_int(argv[++i], s);
        else if (!strcmp(s, "-t") && more) a.threads = parse_int(argv[++i], s);
        else if (!strcmp(s, "-r") && more) a.reps = parse_int(argv[++i], s);
        else if (!strcmp(s, "--tokenizer") && more) a.tokenizer = argv[++i];
        else if (!strcmp(s, "--json")) a.json = 1;
        else if (!strcmp(s, "--q8-act")) a.q8_act = 1;
        else if (!strcmp(s, "-h") || !strcmp(s, "--help")) usage();
        else if (s[0] == '-' || a.model) usage();
        else a.model = s;
    }
    if (!a.model || a.threads < 1 || a.reps < 1 || (a.P == 0 && a.N == 0)) usage();
    return a;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Fixed pseudo-random ids in [0, V) (64-bit LCG, high bits). */
static void fill_tokens(int32_t *t, int n, int V) {
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        t[i] = (int32_t)((x >> 33) % (uint64_t)V);
    }
}

typedef struct { double best, mean; } timing; /* seconds */

/* One prompt pass: P tokens from an empty cache. */
static double run_pp(ct_ctx *c, const int32_t *toks, int P, float *logits) {
    ct_ctx_reset(c);
    double t0 = now_s();
    ct_status st = ct_ctx_forward(c, toks, P, logits, 0);
    double t = now_s() - t0;
    if (st != CT_OK) die("prompt forward", st);
    return t;
}

/* One decode pass: N single-token forwards from an empty cache. */
static double run_tg(ct_ctx *c, const int32_t *toks, int N, float *logits) {
    ct_ctx_reset(c);
    double t0 = now_s();
    for (int i = 0; i < N; i++) {
        ct_status st = ct_ctx_forward(c, &toks[i], 1, logits, 0);
        if (st != CT_OK) die("decode forward", st);
    }
    return now_s() - t0;
}

static timing repeat(double (*fn)(ct_ctx *, const int32_t *, int, float *), ct_ctx *c,
                     const int32_t *toks, int n, float *logits, int reps) {
    timing r = {INFINITY, 0.0};
    fn(c, toks, n, logits); /* warm-up, untimed */
    for (int i = 0; i < reps; i++) {
        double t = fn(c, toks, n, logits);
        if (t < r.best) r.best = t;
        r.mean += t / reps;
    }
    return r;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s && s[1] ? s + 1 : p;
}

/* JSON string body: escape quotes, backslashes and control bytes. */
static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch < 0x20) printf("\\u%04x", ch);
        else putchar(ch);
    }
    putchar('"');
}

int main(int argc, char **argv) {
    args a = parse_args(argc, argv);
    ct_set_log(NULL, NULL, CT_LOG_WARN);

    ct_load_opts lo = {.tokenizer_path = a.tokenizer, .q8_activations = a.q8_act};
    ct_model *m = NULL;
    double t0 = now_s();
    ct_status st = ct_model_load(a.model, &lo, &m);
    if (st != CT_OK) die(a.model, st);
    double load_s = now_s() - t0;

    const ct_config *cfg = ct_model_config(m);
    int V = cfg->vocab_size;
    int n_ctx = a.P > a.N ? a.P : a.N;
    if (cfg->max_seq_len > 0 && n_ctx > cfg->max_seq_len) {
        fprintf(stderr, "bench_infer: -p/-n of %d exceed the model's context of %d tokens\n", n_ctx,
                cfg->max_seq_len);
        return 2;
    }
    ct_ctx *c = NULL;
    if ((st = ct_ctx_create(m, n_ctx, a.threads, &c)) != CT_OK) die("ct_ctx_create", st);

    int ntok = n_ctx > 0 ? n_ctx : 1;
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)ntok);
    float *logits = malloc(sizeof(float) * (size_t)V);
    if (!toks || !logits) { fprintf(stderr, "bench_infer: out of memory\n"); return 1; }
    fill_tokens(toks, ntok, V);

    timing pp = {0, 0}, tg = {0, 0};
    if (a.P > 0) pp = repeat(run_pp, c, toks, a.P, logits, a.reps);
    if (a.N > 0) tg = repeat(run_tg, c, toks, a.N, logits, a.reps);

    double pp_tps = a.P > 0 ? a.P / pp.best : 0.0, pp_mean = a.P > 0 ? a.P / pp.mean : 0.0;
    double tg_tps = a.N > 0 ? a.N / tg.best : 0.0, tg_mean = a.N > 0 ? a.N / tg.mean : 0.0;
    int64_t wbytes = ct_model_weight_bytes(m);
    double gbs = (double)wbytes * tg_tps / 1e9;
    const char *dts = ct_model_dtype_summary(m);

    if (a.json) {
        printf("{\"model\": ");
        json_str(base_name(a.model));
        printf(", \"dtypes\": ");
        json_str(dts ? dts : "");
        printf(", \"n_params\": %lld, \"weight_bytes_per_token\": %lld, \"threads\": %d, \"reps\": %d,"
               " \"activations\": \"%s\", \"load_s\": %.4f, \"n_prompt\": %d, \"pp_tok_s\": %.3f,"
               " \"pp_tok_s_mean\": %.3f, \"n_gen\": %d, \"tg_tok_s\": %.3f, \"tg_tok_s_mean\": %.3f,"
               " \"tg_gb_s\": %.3f}\n",
               (long long)ct_model_n_params(m), (long long)wbytes, a.threads, a.reps, a.q8_act ? "q8" : "f32",
               load_s, a.P, pp_tps, pp_mean, a.N, tg_tps, tg_mean, gbs);
    } else {
        printf("model          %s\n", a.model);
        printf("dtypes         %s\n", dts ? dts : "?");
        printf("params         %.2f M   (dim %d, %d layers, %d heads, %d kv heads, vocab %d)\n",
               ct_model_n_params(m) / 1e6, cfg->dim, cfg->n_layers, cfg->n_heads, cfg->n_kv_heads, V);
        printf("weights/token  %.2f MB\n", wbytes / 1e6);
        printf("threads        %d, best of %d (after one warm-up), load %.3f s\n", a.threads, a.reps, load_s);
        printf("activations    %s\n", a.q8_act ? "8-bit for Q matrices (--q8-act)" : "f32");
        if (a.P > 0) printf("pp%-4d         %10.2f tok/s  (mean %.2f)\n", a.P, pp_tps, pp_mean);
        if (a.N > 0)
            printf("tg%-4d         %10.2f tok/s  (mean %.2f)  -> %.2f GB/s of weights = %.0f%% of %.0f GB/s\n",
                   a.N, tg_tps, tg_mean, gbs, 100.0 * gbs / PEAK_GBS, PEAK_GBS);
    }

    free(logits);
    free(toks);
    ct_ctx_free(c);
    ct_model_free(m);
    return 0;
}
