/* bench/bench_train.c — training speed of one configuration: how many tokens
 * per second does one optimizer step process, how much memory does it take,
 * and what fraction of the machine's FLOP peak does that reach?
 *
 *   bench_train MODEL [--method full|lora|qlora] [--base nf4|q8|bf16|f32] [-b 4] [-T 256]
 *                     [--bf16] [-t 2] [-w 2] [-r 5] [--lora-r 8] [--targets qv|all]
 *                     [--checkpointing] [--save] [--peak GF] [--json]
 *
 * One process = one configuration (peak RSS is per process; bench/run_train.sh
 * starts one per row). Method:
 *   - the training model is built as `ctune train` builds it (ct__tm_create,
 *     max_rows = B*T, max_seq = T); LoRA: r = 8, alpha 16, dropout 0, on q and
 *     v (Llama: CT_LT_Q | CT_LT_V; GPT-2: c_attn, its fused q/k/v matrix, the
 *     module PEFT users target);
 *   - the batch: B sequences of T pseudo-random ids, every row a target (the
 *     next id of the same random stream), packed as trainer.c packs them;
 *   - one step is trainer.c's train_step without the data loader: zero grad,
 *     forward+backward of the micro-batch (scale 1/targets), global grad norm,
 *     clip to 1.0, AdamW update (lr 1e-4, betas 0.9/0.999, eps 1e-8, wd 0.01);
 *   - W untimed warm-up steps (page faults of the mapped weights, thread
 *     start-up, AdamW state first touch), then R timed steps; tok/s =
 *     B*T*R / (time of the R steps), and the best single step beside it.
 * FLOPs (the usual model-FLOP count, PaLM appendix B): full fine-tuning
 * 6*N per token (forward 2N, input gradient 2N, weight gradient 2N), LoRA
 * 4*N per token (no weight gradient for the frozen base), N = every
 * parameter, embeddings included (ct_model_n_params, tied weights once);
 * attention's own products (QK^T and PV, forward and backward) are counted
 * apart as 12*L*T*C per token (the non-causal count; a causal kernel does
 * about half). %peak uses 6N/4N only,  against 232 GFLOP/s for f32 and 460 for
 * bf16 (2 Zen 4 cores: docs/kernels.md "Training GEMM"; --peak overrides).
 * Peak RSS: VmHWM of /proc/self/status (ru_maxrss when absent); it includes the
 * pages of the memory-mapped F32 base that were touched. Beside it, the peak
 * ct_train_plan_memory (ctune plan) predicts for the same options; --save
 * makes the savers' file-layout copy of the trainable tensors at the end (as
 * `ctune train` does when it writes its output), which the prediction counts.
 * qlora: LoRA over the frozen base converted on load (--base, default nf4;
 * f32 = plain LoRA through the same in-place kernels), the set-up time
 * (conversion included) printed apart.
 *
 * Uses the internal training API (src/train/tmodel.h, optim.h). Leaves out: the
 * data loader and tokenization (trainer.c's are outside the step), gradient
 * accumulation over several micro-batches, checkpoint writing, evaluation.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "ctune/ctune.h"
#include "core/internal.h"
#include "train/optim.h"
#include "train/plan.h"
#include "train/tmodel.h"

#define PEAK_F32 232.0 /* FMA on 2 Zen 4 cores, build/bench_peak */
#define PEAK_BF16 460.0 /* vdpbf16ps on 2 Zen 4 cores, build/bench_peak (452-469) */

typedef struct {
    const char *model;
    int lora, B, T, bf16, threads, warmup, reps, lora_r, ckpt, json, save;
    ct_base_dtype base;     /* qlora */
    const char *targets;
    double peak;
} args;

static void die(const char *what, ct_status st) {
    fprintf(stderr, "bench_train: %s: %s (%s)\n", what, ct_status_str(st), ct_errmsg());
    exit(1);
}

static void usage(void) {
    fprintf(stderr,
            "usage: bench_train MODEL [--method full|lora|qlora] [--base nf4|q8|bf16|f32] [-b B] [-T T]\n"
            "                   [--bf16] [-t THREADS] [-w WARMUP] [-r REPS] [--lora-r R] [--targets qv|all]\n"
            "                   [--checkpointing] [--save] [--peak GF] [--json]\n"
            "  --method M       full (every weight trained), lora (r 8 on q,v; GPT-2 c_attn) or qlora\n"
            "                   (LoRA over the base converted to --base, default nf4); default full\n"
            "  --targets T      qv (default) or all (every linear layer)\n"
            "  --save           make the savers' copy of the trainable tensors at the end\n"
            "  -b B, -T T       B sequences of T tokens per step (default 4 x 256)\n"
            "  --bf16           matmul operands in bf16, f32 accumulation (ct__tm_opts.bf16)\n"
            "  -t T             threads (default 2)\n"
            "  -w W, -r R       W untimed warm-up steps (default 2), R timed steps (default 5)\n"
            "  --peak GF        the GFLOP/s the %%peak column divides by (default 232 f32, 460 bf16)\n"
            "  --json           one JSON object on stdout instead of the text report\n");
    exit(2);
}

static int parse_int(const char *s, const char *flag, int lo) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > 1000000) {
        fprintf(stderr, "bench_train: %s wants an integer >= %d, got '%s'\n", flag, lo, s);
        exit(2);
    }
    return (int)v;
}

static args parse_args(int argc, char **argv) {
    args a = {.B = 4, .T = 256, .threads = 2, .warmup = 2, .reps = 5, .lora_r = 8};
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(s, "--method") && more) {
            const char *m = argv[++i];
            if (!strcmp(m, "lora")) a.lora = 1;
            else if (!strcmp(m, "qlora")) a.lora = 2;
            else if (!strcmp(m, "full")) a.lora = 0;
            else usage();
        } else if (!strcmp(s, "--base") && more) {
            const char *b = argv[++i];
            a.base = !strcmp(b, "nf4") ? CT_BASE_NF4 : !strcmp(b, "q8") ? CT_BASE_Q8
                     : !strcmp(b, "bf16") ? CT_BASE_BF16 : !strcmp(b, "f32") ? CT_BASE_F32 : CT_BASE_DEFAULT;
            if (a.base == CT_BASE_DEFAULT) usage();
        } else if (!strcmp(s, "--targets") && more) {
            const char *t = argv[++i];
            if (strcmp(t, "qv") && strcmp(t, "all")) usage();
            a.targets = !strcmp(t, "all") ? "all-linear" : NULL;
        } else if (!strcmp(s, "-b") && more) a.B = parse_int(argv[++i], s, 1);
        else if (!strcmp(s, "-T") && more) a.T = parse_int(argv[++i], s, 1);
        else if (!strcmp(s, "-t") && more) a.threads = parse_int(argv[++i], s, 1);
        else if (!strcmp(s, "-w") && more) a.warmup = parse_int(argv[++i], s, 0);
        else if (!strcmp(s, "-r") && more) a.reps = parse_int(argv[++i], s, 1);
        else if (!strcmp(s, "--lora-r") && more) a.lora_r = parse_int(argv[++i], s, 1);
        else if (!strcmp(s, "--peak") && more) a.peak = atof(argv[++i]);
        else if (!strcmp(s, "--bf16")) a.bf16 = 1;
        else if (!strcmp(s, "--checkpointing")) a.ckpt = 1;
        else if (!strcmp(s, "--json")) a.json = 1;
        else if (!strcmp(s, "--save")) a.save = 1;
        else if (!strcmp(s, "-h") || !strcmp(s, "--help")) usage();
        else if (s[0] == '-' || a.model) usage();
        else a.model = s;
    }
    if (!a.model) usage();
    if (a.peak <= 0) a.peak = a.bf16 ? PEAK_BF16 : PEAK_F32;
    return a;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Peak resident set in MiB: VmHWM, else ru_maxrss (KiB on Linux). */
static double peak_rss_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        long kb = -1;
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "VmHWM:", 6)) kb = strtol(line + 6, NULL, 10);
        fclose(f);
        if (kb >= 0) return (double)kb / 1024.0;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* B sequences of T+1 pseudo-random ids (64-bit LCG, high bits); row i of
 * sequence s has target id i+1 of that sequence, so every row is a target. */
static void fill_batch(int32_t *ids, int32_t *tg, int32_t *seq, int B, int T, int V) {
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int s = 0; s < B; s++) {
        seq[s] = s * T;
        for (int i = 0; i <= T; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            int32_t id = (int32_t)((x >> 33) % (uint64_t)V);
            if (i > 0) tg[s * T + i - 1] = id;
            if (i < T) ids[s * T + i] = id;
        }
    }
    seq[B] = B * T;
}

typedef struct {
    ct__tmodel *t;
    ct__tm_batch b;
    float *mom, *vel;     /* AdamW moments (n) */
    ct__adamw_opts ao;
    size_t n;
    long step;
} state;

/* One optimizer step, the work of trainer.c's train_step. */
static double one_step(state *st, double *loss) {
    ct__tm_zero_grad(st->t);
    ct__tm_set_dropout_seed(st->t, 1234u ^ ((uint64_t)st->step << 20));
    double sum;
    ct_status s = ct__tm_run(st->t, &st->b, 1.0f / (float)st->b.N, 1, NULL, &sum);
    if (s) die("ct__tm_run", s);
    *loss = sum / st->b.N;
    size_t n;
    float *p = ct__tm_params(st->t, &n), *g = ct__tm_grads(st->t);
    double gn = ct__grad_norm(g, n);
    if (!isfinite(gn) || !isfinite(*loss)) {
        fprintf(stderr, "bench_train: step %ld: loss %g, grad norm %g\n", st->step, *loss, gn);
        exit(1);
    }
    int ntab;
    const ct__tparam *tab = ct__tm_ptable(st->t, &ntab);
    ct__adamw_update(p, g, st->mom, st->vel, tab, ntab, &st->ao, st->ao.lr, ++st->step, ct__clip_scale(gn, st->ao.clip));
    return gn;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s && s[1] ? s + 1 : p;
}

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

    double t0 = now_s();
    ct_model *m = NULL;
    ct_status s = ct_model_load(a.model, NULL, &m);
    if (s) die(a.model, s);
    const ct_config *cfg = ct_model_config(m);
    if (cfg->max_seq_len > 0 && a.T > cfg->max_seq_len) {
        fprintf(stderr, "bench_train: -T %d exceeds the model's context of %d tokens\n", a.T, cfg->max_seq_len);
        return 2;
    }
    double rss_loaded = peak_rss_mib();

    /* the options as `ctune train` would take them, so ctune plan predicts this very run */
    ct_train_opts o;
    ct_train_opts_default(&o, a.lora == 2 ? CT_METHOD_QLORA : a.lora ? CT_METHOD_LORA : CT_METHOD_FULL);
    o.lora_r = a.lora_r;
    o.lora_dropout = 0.0f;
    o.targets = a.targets ? a.targets : cfg->arch == CT_ARCH_GPT2 ? "c_attn" : "q,v";
    o.base_dtype = a.base;
    o.batch = a.B;
    o.checkpointing = a.ckpt;
    o.n_threads = a.threads;
    o.bf16 = a.bf16;
    ct__tm_opts to;
    if ((s = ct__train_tm_opts(&o, cfg, a.T, &to))) die("options", s);
    ct_train_plan plan;
    if ((s = ct_train_plan_memory(m, &o, a.T, &plan))) die("ct_train_plan_memory", s);
    state st = {0};
    double tc = now_s();
    if ((s = ct__tm_create(m, &to, &st.t))) die("ct__tm_create", s);
    double create_s = now_s() - tc;
    ct__tm_params(st.t, &st.n);
    size_t nb = (st.n ? st.n : 1) * sizeof(float);
    st.mom = ct__alloc_big(nb);
    st.vel = ct__alloc_big(nb);
    int N = a.B * a.T;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)N), *tg = malloc(sizeof(int32_t) * (size_t)N);
    int32_t *seq = malloc(sizeof(int32_t) * (size_t)(a.B + 1));
    if (!st.mom || !st.vel || !ids || !tg || !seq) {
        fprintf(stderr, "bench_train: out of memory\n");
        return 1;
    }
    memset(st.mom, 0, nb);
    memset(st.vel, 0, nb);
    fill_batch(ids, tg, seq, a.B, a.T, cfg->vocab_size);
    st.b = (ct__tm_batch){.ids = ids, .targets = tg, .seq = seq, .N = N, .n_seq = a.B};
    st.ao = (ct__adamw_opts){.lr = 1e-4f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f,
                             .sched = CT_SCHED_CONSTANT, .total = a.warmup + a.reps, .clip = 1.0f};
    int ntab;
    const ct__tparam *tab = ct__tm_ptable(st.t, &ntab);
    int64_t trainable = 0;
    for (int i = 0; i < ntab; i++) trainable += (int64_t)tab[i].n;
    double setup_s = now_s() - t0;

    double loss0 = 0, loss = 0;
    for (int i = 0; i < a.warmup; i++) one_step(&st, i == 0 ? &loss0 : &loss);
    double best = INFINITY, tsum = 0;
    for (int i = 0; i < a.reps; i++) {
        double ts = now_s();
        one_step(&st, &loss);
        double dt = now_s() - ts;
        if (a.warmup == 0 && i == 0) loss0 = loss;
        tsum += dt;
        if (dt < best) best = dt;
    }

    if (a.save) { /* the copy ct__lora_save / ct__save_full make */
        float *buf = NULL;
        ct__st_out *outs = ct__tm_file_tensors(st.t, &buf);
        if (!outs) die("ct__tm_file_tensors", CT_ERR_NOMEM);
        ct__tm_file_tensors_free(st.t, outs, buf);
    }
    int64_t np = ct_model_n_params(m);
    double tok_step = (double)N;
    double tps = tok_step * a.reps / tsum, tps_best = tok_step / best;
    double fpt = (a.lora ? 4.0 : 6.0) * (double)np;                     /* model FLOPs per token */
    double attn_fpt = 12.0 * cfg->n_layers * (double)a.T * cfg->dim;   /* attention products */
    double gf = fpt * tps / 1e9, gf_attn = attn_fpt * tps / 1e9;
    double rss = peak_rss_mib();
    const char *method = a.lora == 2 ? "qlora" : a.lora ? "lora" : "full";
    static const char *const bases[] = {"nf4", "nf4", "q8", "bf16", "f32"};
    const char *bname = a.lora == 2 ? bases[a.base] : "as stored";
    double pred = (double)plan.peak_bytes / 1048576.0;

    if (a.json) {
        printf("{\"side\": \"ctune\", \"model\": ");
        json_str(base_name(a.model));
        printf(", \"arch\": \"%s\", \"method\": \"%s\", \"precision\": \"%s\", \"B\": %d, \"T\": %d,"
               " \"threads\": %d, \"warmup\": %d, \"reps\": %d, \"checkpointing\": %d,"
               " \"n_params\": %lld, \"trainable\": %lld, \"tok_s\": %.3f, \"tok_s_best\": %.3f,"
               " \"ms_step\": %.3f, \"ms_step_best\": %.3f, \"gflop_s\": %.3f, \"attn_gflop_s\": %.3f,"
               " \"peak_gflop_s\": %.1f, \"pct_peak\": %.2f, \"peak_rss_mib\": %.1f,"
               " \"rss_after_load_mib\": %.1f, \"act_mib\": %.1f, \"setup_s\": %.3f,"
               " \"loss_first\": %.5f, \"loss_last\": %.5f, \"base\": \"%s\", \"targets\": \"%s\","
               " \"create_s\": %.3f, \"saved\": %d, \"predicted_peak_mib\": %.1f}\n",
               cfg->arch == CT_ARCH_GPT2 ? "gpt2" : "llama", method, a.bf16 ? "bf16" : "f32", a.B, a.T,
               a.threads, a.warmup, a.reps, a.ckpt, (long long)np, (long long)trainable, tps, tps_best,
               1e3 * tsum / a.reps, 1e3 * best, gf, gf_attn, a.peak, 100.0 * gf / a.peak, rss, rss_loaded,
               ct__tm_act_bytes(st.t) / 1048576.0, setup_s, loss0, loss, bname, o.targets, create_s, a.save, pred);
    } else {
        printf("model        %s (%s, %.2f M parameters)\n", a.model, cfg->arch == CT_ARCH_GPT2 ? "gpt2" : "llama",
               np / 1e6);
        printf("config       %s", method);
        if (a.lora) printf(" r %d on %s, base %s", a.lora_r, o.targets, bname);
        printf(", B %d x T %d, %s, %d threads%s\n", a.B, a.T, a.bf16 ? "bf16 matmuls" : "f32", a.threads,
               a.ckpt ? ", checkpointing" : "");
        printf("set-up       %.1f s (training model %.1f s: conversion of the base included)\n", setup_s, create_s);
        printf("trainable    %lld parameters\n", (long long)trainable);
        printf("steps        %d warm-up + %d timed; loss %.4f -> %.4f\n", a.warmup, a.reps, loss0, loss);
        printf("speed        %.1f tok/s (best step %.1f), %.1f ms/step (best %.1f)\n", tps, tps_best,
               1e3 * tsum / a.reps, 1e3 * best);
        printf("FLOP rate    %.1f GFLOP/s (%dN/token) = %.1f%% of %.0f; attention +%.1f GFLOP/s\n", gf,
               a.lora ? 4 : 6, 100.0 * gf / a.peak, a.peak, gf_attn);
        printf("memory       peak RSS %.1f MiB (%.1f after load), activations %.1f MiB\n", rss, rss_loaded,
               ct__tm_act_bytes(st.t) / 1048576.0);
        printf("plan         predicted peak %.1f MiB (measured / predicted = %.3f%s)\n", pred, rss / pred,
               a.save ? "" : "; the prediction counts the save copy, run with --save to include it");
    }

    ct__free_big(st.mom, nb);
    ct__free_big(st.vel, nb);
    free(ids);
    free(tg);
    free(seq);
    ct__tm_free(st.t);
    ct_model_free(m);
    return 0;
}
