/* cli/cmd_train.c — `ctune train MODEL --data FILE --method full|lora|qlora -o DIR`
 * (docs/train.md) and `ctune plan MODEL --method ...` (docs/plan.md): one
 * option parser into ct_train_opts; train calls ct_train, plan prints
 * ct_train_plan_memory's prediction. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static const char *USAGE =
    "usage: ctune train MODEL --data FILE --method full|lora|qlora|prompt|prefix|head -o OUTDIR [options]\n"
    "  head: a classifier head on the frozen base (`ctune train --method head --help`)\n"
    "  qlora: LoRA over the linear layers quantized to 4-bit NF4 on load (double-quantized\n"
    "         scales, bitsandbytes' format); gradient checkpointing on unless --no-grad-checkpoint\n"
    "  --base-dtype nf4|q8|bf16|f32  qlora's frozen base: 4-bit NF4 (default, 0.52 bytes/weight),\n"
    "                       8-bit Q8_0 (1.06), bf16 (2) or f32 (4); a model already stored so is used in place\n"
    "  prompt: prompt tuning, --num-virtual-tokens K (8) learned input embeddings before every\n"
    "         sequence, the base frozen (PEFT's PROMPT_TUNING adapter); lr default 3e-2\n"
    "  --prompt-init random|vocab|text  N(0,1) (PEFT's), sampled vocabulary tokens, or --prompt-init-text T:\n"
    "                       prompt: their embeddings; prefix: the key/value cache they leave (a good start)\n"
    "  prefix: prefix tuning, --num-virtual-tokens K (8) learned keys and values in front of every\n"
    "         sequence in every layer (PEFT's PREFIX_TUNING adapter); lr default 1e-2\n"
    "  --prefix-projection H  train the prefix through PEFT's MLP (hidden H); saved as the table it makes\n"
    "data:\n"
    "  --data FILE          .jsonl/.json ({\"text\"}, {\"prompt\",\"completion\"}, Alpaca, {\"messages\"}) or .txt\n"
    "  --val FILE           validation data (else --val-split of --data)\n"
    "  --val-split F        fraction of --data held out for validation (default 0: none)\n"
    "  --max-len N          truncate examples / cut .txt windows to N tokens (default 256)\n"
    "  --train-on-prompt    put the loss on prompt tokens too\n"
    "  --skip-bad-rows      skip (and count) malformed rows instead of failing\n"
    "  --pack               fill micro-batches by tokens (micro-batch x max-len), not example count\n"
    "LoRA:\n"
    "  --r N (8)  --alpha A (16)  --dropout P (0.05)  --rslora\n"
    "  --targets LIST       q,k,v,o,gate,up,down | all-linear (default q,v); GPT-2: c_attn,c_proj,c_fc\n"
    "optimisation:\n"
    "  --lr X (2e-4 LoRA, 5e-5 full)  --weight-decay X (0)  --schedule constant|linear|cosine (cosine)\n"
    "  --warmup N (0)  --clip X (1.0; 0 = off)  --beta1 X  --beta2 X  --eps X\n"
    "  --batch N (8)        examples per optimizer step\n"
    "  --micro-batch N      examples per forward/backward (default = batch; gradients accumulate)\n"
    "  --epochs N (1)  --max-steps N\n"
    "  --grad-checkpoint    recompute activations in the backward pass (less memory;\n"
    "                       --no-grad-checkpoint turns it off for qlora)\n"
    "  --precision f32|bf16 matmul operands in f32 (default, exact) or bf16 with f32 accumulation\n"
    "run:\n"
    "  --eval-every N       validate every N steps (and at each epoch end)\n"
    "  --patience N         stop after N evaluations without improvement\n"
    "  --save-every N       write OUTDIR/checkpoint-STEP every N steps\n"
    "  --resume DIR         continue from a checkpoint directory\n"
    "  --log-every N (1)    metrics.jsonl line every N steps\n"
    "  --seed S (42)  -t THREADS  --tokenizer F  --quiet  --progress/--no-progress\n"
    "  --stop-after N       stop after N steps without writing the final output (to test --resume)\n"
    "memory:\n"
    "  --memory-limit GIB   refuse to start when the predicted peak exceeds this (default: available memory)\n"
    "  --no-memory-check    start even when the prediction says it will not fit\n";

static const char *PLAN_USAGE =
    "usage: ctune plan MODEL --method full|lora|qlora [train options] [--json]\n"
    "  predicts trainable parameters, the adapter/model file size and the peak memory of\n"
    "  `ctune train` with the same options (sequences of --max-len tokens, default 256;\n"
    "  --micro-batch or --batch of them per forward/backward), without training.\n"
    "  --json               one JSON object instead of the table\n";

static void fmt_bytes(char *buf, size_t cap, size_t b) {
    if (b >= ((size_t)1 << 30)) snprintf(buf, cap, "%.2f GiB", (double)b / (double)(1 << 30));
    else if (b >= ((size_t)1 << 20)) snprintf(buf, cap, "%.1f MiB", (double)b / (double)(1 << 20));
    else snprintf(buf, cap, "%.1f KiB", (double)b / 1024.0);
}

static void row(const char *what, size_t b, const char *note) {
    char buf[32];
    fmt_bytes(buf, sizeof buf, b);
    printf("  %-26s %12s   %s\n", what, buf, note);
}

static int print_plan(const char *path, ct_model *m, const ct_train_opts *o, int json) {
    const ct_config *g = ct_model_config(m);
    int max_seq = o->data.max_len > 0 ? o->data.max_len : 256;
    ct_train_plan p;
    ct_status s = ct_train_plan_memory(m, o, max_seq, &p);
    if (s) return cli_fail("plan", s);
    size_t avail = o->memory_limit ? o->memory_limit : ct_memory_available();
    const char *meth = o->method == CT_METHOD_FULL     ? "full"
                       : o->method == CT_METHOD_LORA   ? "lora"
                       : o->method == CT_METHOD_PROMPT ? "prompt"
                       : o->method == CT_METHOD_PREFIX ? "prefix"
                                                       : "qlora";
    const char *base = o->method != CT_METHOD_QLORA        ? "as stored"
                       : o->base_dtype == CT_BASE_Q8       ? "q8"
                       : o->base_dtype == CT_BASE_BF16     ? "bf16"
                       : o->base_dtype == CT_BASE_F32      ? "f32"
                                                           : "nf4";
    if (json) {
        printf("{\"model\": \"%s\", \"method\": \"%s\", \"base\": \"%s\", \"r\": %d, \"targets\": \"%s\", "
               "\"max_rows\": %d, \"max_seq\": %d, \"checkpointing\": %d, \"bf16\": %d, \"n_params\": %lld, "
               "\"n_trainable\": %lld, \"file_bytes\": %zu, \"weights_bytes\": %zu, \"trainable_bytes\": %zu, "
               "\"grad_bytes\": %zu, \"optim_bytes\": %zu, \"act_bytes\": %zu, \"save_bytes\": %zu, "
               "\"other_bytes\": %zu, \"peak_bytes\": %zu, \"available_bytes\": %zu}\n",
               path, meth, base, o->method == CT_METHOD_FULL ? 0 : o->lora_r,
               o->method == CT_METHOD_FULL ? "" : o->targets, p.max_rows, p.max_seq, o->checkpointing, o->bf16,
               (long long)p.n_params, (long long)p.n_trainable, p.file_bytes, p.weights_bytes, p.trainable_bytes,
               p.grad_bytes, p.optim_bytes, p.act_bytes, p.save_bytes, p.other_bytes, p.peak_bytes, avail);
        return 0;
    }
    printf("%s: %s, %d layers, dim %d, %.2f%s parameters\n", path, g->model_type, g->n_layers, g->dim,
           p.n_params >= 1000000000 ? (double)p.n_params / 1e9 : (double)p.n_params / 1e6,
           p.n_params >= 1000000000 ? " B" : " M");
    printf("method %s", meth);
    if (o->method == CT_METHOD_PROMPT || o->method == CT_METHOD_PREFIX) printf(" (%d virtual tokens)", o->num_virtual_tokens);
    else if (o->method != CT_METHOD_FULL) printf(" (r %d on %s, base %s)", o->lora_r, o->targets, base);
    printf(", %d rows per micro-batch (%d-token sequences), checkpointing %s, precision %s\n", p.max_rows, p.max_seq,
           o->checkpointing ? "on" : "off", o->bf16 ? "bf16" : "f32");
    printf("  %-26s %12lld   %.4f%% of the model\n", "trainable parameters", (long long)p.n_trainable,
           100.0 * (double)p.n_trainable / (double)(p.n_params ? p.n_params : 1));
    row(o->method == CT_METHOD_FULL ? "model.safetensors" : "adapter_model.safetensors", p.file_bytes, "F32");
    printf("predicted peak memory (resident):\n");
    row("frozen weights", p.weights_bytes,
        o->method == CT_METHOD_FULL ? "(all weights are trainable copies)" : "base as read + head + embeddings");
    row("trainable values (f32)", p.trainable_bytes, "");
    row("gradients", p.grad_bytes, "");
    row("AdamW moments", p.optim_bytes, "m and v, f32");
    row("activations + scratch", p.act_bytes, o->checkpointing ? "one block's, recomputed in backward" : "every block's");
    row("save copy", p.save_bytes, "while writing the output / a checkpoint");
    row("program, tokenizer, data", p.other_bytes, "fixed allowance");
    row("peak", p.peak_bytes, "");
    if (avail) {
        char b[32];
        fmt_bytes(b, sizeof b, avail);
        printf("memory available: %s -> %s\n", b, p.peak_bytes <= avail ? "fits" : "does NOT fit");
    }
    return 0;
}

static int train_or_plan(int argc, char **argv, int plan) {
    const char *path = NULL, *tokpath = NULL, *method = NULL, *base = NULL;
    int json = 0;
    ct_train_opts o;
    ct_train_opts_default(&o, CT_METHOD_LORA);
    int lr_set = 0, ckpt_set = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        long v;
        double d;
#define INT(name, lo, hi, dst) else if (!strcmp(a, name) && more) { if (!cli_parse_int(a, argv[++i], lo, hi, &v)) return 2; dst = (int)v; }
#define FLT(name, lo, hi, dst) else if (!strcmp(a, name) && more) { if (!cli_parse_float(a, argv[++i], lo, hi, &d)) return 2; dst = (float)d; }
        if (!strcmp(a, "--data") && more) o.data_path = argv[++i];
        else if (!strcmp(a, "--val") && more) o.val_path = argv[++i];
        else if (!strcmp(a, "--method") && more) method = argv[++i];
        else if (!strcmp(a, "--base-dtype") && more) base = argv[++i];
        else if (!strcmp(a, "--prompt-init-text") && more) o.prompt_init_text = argv[++i];
        else if (!strcmp(a, "--prompt-init") && more) {
            const char *p = argv[++i];
            if (!strcmp(p, "random")) o.prompt_init = CT_PROMPT_INIT_RANDOM;
            else if (!strcmp(p, "vocab")) o.prompt_init = CT_PROMPT_INIT_VOCAB;
            else if (!strcmp(p, "text")) o.prompt_init = CT_PROMPT_INIT_TEXT;
            else { fprintf(stderr, "ctune train: --prompt-init %s: use random, vocab or text\n", p); return 2; }
        }
        else if ((!strcmp(a, "-o") || !strcmp(a, "--out")) && more) o.out_dir = argv[++i];
        else if (!strcmp(a, "--targets") && more) o.targets = argv[++i];
        else if (!strcmp(a, "--schedule") && more) o.schedule = argv[++i];
        else if (!strcmp(a, "--resume") && more) o.resume_dir = argv[++i];
        else if (!strcmp(a, "--tokenizer") && more) tokpath = argv[++i];
        else if (!strcmp(a, "--val-split") && more) { if (!cli_parse_float(a, argv[++i], 0, 0.9, &d)) return 2; o.val_split = d; }
        else if (!strcmp(a, "--lr") && more) { if (!cli_parse_float(a, argv[++i], 0, 10, &d)) return 2; o.lr = (float)d; lr_set = 1; }
        INT("--max-len", 2, 1 << 20, o.data.max_len)
        INT("--r", 1, 4096, o.lora_r)
        INT("--num-virtual-tokens", 1, 4096, o.num_virtual_tokens)
        INT("--prefix-projection", 1, 65536, o.prefix_projection)
        FLT("--alpha", 0, 1e6, o.lora_alpha)
        FLT("--dropout", 0, 0.99, o.lora_dropout)
        FLT("--weight-decay", 0, 10, o.weight_decay)
        FLT("--clip", 0, 1e9, o.clip)
        FLT("--beta1", 0, 0.999999, o.beta1)
        FLT("--beta2", 0, 0.999999999, o.beta2)
        FLT("--eps", 0, 1, o.eps)
        INT("--warmup", 0, 1 << 30, o.warmup)
        INT("--batch", 1, 1 << 20, o.batch)
        INT("--micro-batch", 1, 1 << 20, o.micro_batch)
        INT("--epochs", 1, 1 << 20, o.epochs)
        INT("--max-steps", 1, 1 << 30, o.max_steps)
        INT("--eval-every", 0, 1 << 30, o.eval_every)
        INT("--patience", 0, 1 << 30, o.patience)
        INT("--save-every", 0, 1 << 30, o.save_every)
        INT("--log-every", 1, 1 << 30, o.log_every)
        INT("--stop-after", 1, 1 << 30, o.stop_after)
        INT("-t", 1, 256, o.n_threads)
        INT("--threads", 1, 256, o.n_threads)
        else if (!strcmp(a, "--seed") && more) { if (!cli_parse_int(a, argv[++i], 0, 0x7fffffffL, &v)) return 2; o.seed = (uint64_t)v; }
        else if (!strcmp(a, "--rslora")) o.rslora = 1;
        else if (!strcmp(a, "--train-on-prompt")) o.data.train_on_prompt = 1;
        else if (!strcmp(a, "--skip-bad-rows")) o.data.skip_bad_rows = 1;
        else if (!strcmp(a, "--pack")) o.pack = 1;
        else if (!strcmp(a, "--grad-checkpoint")) ckpt_set = 1;
        else if (!strcmp(a, "--no-grad-checkpoint")) ckpt_set = 0;
        else if (!strcmp(a, "--precision") && more) {
            const char *p = argv[++i];
            if (!strcmp(p, "bf16")) o.bf16 = 1;
            else if (!strcmp(p, "f32")) o.bf16 = 0;
            else { fprintf(stderr, "ctune train: --precision %s: use f32 or bf16\n", p); return 2; }
        }
        else if (!strcmp(a, "--memory-limit") && more) {
            if (!cli_parse_float(a, argv[++i], 0.001, 1 << 20, &d)) return 2;
            o.memory_limit = (size_t)(d * (double)(1 << 30));
        }
        else if (!strcmp(a, "--no-memory-check")) o.no_memory_check = 1;
        else if (plan && !strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--quiet")) o.quiet = 1;
        else if (!strcmp(a, "--progress")) o.progress = 1;
        else if (!strcmp(a, "--no-progress")) o.progress = 0;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(plan ? PLAN_USAGE : USAGE, stdout); return 0; }
        else if (a[0] == '-') {
            fprintf(stderr, "ctune %s: unknown option '%s'\n%s", plan ? "plan" : "train", a, plan ? PLAN_USAGE : USAGE);
            return 2;
        }
        else if (!path) path = a;
        else { fprintf(stderr, "ctune %s: unexpected argument '%s'\n", plan ? "plan" : "train", a); return 2; }
#undef INT
#undef FLT
    }
    if (plan && (!path || !method)) { fputs(PLAN_USAGE, stderr); return 2; }
    if (!plan && (!path || !o.data_path || !o.out_dir || !method)) { fputs(USAGE, stderr); return 2; }
    if (!strcmp(method, "full")) o.method = CT_METHOD_FULL;
    else if (!strcmp(method, "lora")) o.method = CT_METHOD_LORA;
    else if (!strcmp(method, "qlora")) o.method = CT_METHOD_QLORA;
    else if (!strcmp(method, "prompt")) o.method = CT_METHOD_PROMPT;
    else if (!strcmp(method, "prefix")) o.method = CT_METHOD_PREFIX;
    else { fprintf(stderr, "ctune train: --method %s: use full, lora, qlora, prompt or prefix\n", method); return 2; }
    if (o.prefix_projection && o.method != CT_METHOD_PREFIX) {
        fprintf(stderr, "ctune train: --prefix-projection is for --method prefix\n");
        return 2;
    }
    if (base) {
        if (o.method != CT_METHOD_QLORA) {
            fprintf(stderr, "ctune train: --base-dtype is for --method qlora (LoRA over a converted base)\n");
            return 2;
        }
        if (!strcmp(base, "nf4")) o.base_dtype = CT_BASE_NF4;
        else if (!strcmp(base, "q8")) o.base_dtype = CT_BASE_Q8;
        else if (!strcmp(base, "bf16")) o.base_dtype = CT_BASE_BF16;
        else if (!strcmp(base, "f32")) o.base_dtype = CT_BASE_F32;
        else { fprintf(stderr, "ctune train: --base-dtype %s: use nf4, q8, bf16 or f32\n", base); return 2; }
    }
    if (!lr_set)
        o.lr = o.method == CT_METHOD_FULL     ? 5e-5f
               : o.method == CT_METHOD_PROMPT ? 3e-2f
               : o.method == CT_METHOD_PREFIX ? 1e-2f
                                              : 2e-4f;
    if (o.prompt_init_text && o.prompt_init != CT_PROMPT_INIT_TEXT) o.prompt_init = CT_PROMPT_INIT_TEXT;
    if (ckpt_set >= 0) o.checkpointing = ckpt_set;
    else o.checkpointing = o.method == CT_METHOD_QLORA; /* on by default for QLoRA */

    ct_model *m = NULL;
    ct_status s = cli_load_model(path, tokpath, 0, &m);
    if (s != CT_OK) return cli_fail(path, s);
    if (plan) {
        int rc = print_plan(path, m, &o, json);
        ct_model_free(m);
        return rc;
    }
    ct_train_result r;
    s = ct_train(m, &o, &r);
    ct_model_free(m);
    if (s != CT_OK) return cli_fail("train", s);
    if (!o.quiet) {
        fprintf(stderr, "done: %d steps in %.1f s (%.0f tokens/s), final train loss %.4f", r.steps, r.seconds,
                r.tokens_per_s, r.train_loss);
        if (r.best_val_loss == r.best_val_loss)
            fprintf(stderr, ", best val loss %.4f (ppl %.2f) at step %d", r.best_val_loss, exp(r.best_val_loss),
                    r.best_step);
        if (r.peak_rss_bytes) {
            char b[32];
            fmt_bytes(b, sizeof b, r.peak_rss_bytes);
            fprintf(stderr, ", peak RSS %s", b);
        }
        fprintf(stderr, "\n%s written to %s\n", o.method == CT_METHOD_FULL ? "model" : "adapter", o.out_dir);
    }
    return 0;
}

int cmd_train(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if ((!strcmp(argv[i], "--method") && !strcmp(argv[i + 1], "head")) ||
            (!strcmp(argv[i], "--task") && (!strcmp(argv[i + 1], "classify") || !strcmp(argv[i + 1], "cls"))))
            return cmd_train_head(argc, argv);
    return train_or_plan(argc, argv, 0);
}
int cmd_plan(int argc, char **argv) { return train_or_plan(argc, argv, 1); }
