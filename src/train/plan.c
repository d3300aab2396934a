/* src/train/plan.c — what a training run needs before it starts: trainable
 * parameters, the output file's size and the peak resident memory, from the
 * model's shapes and the options (ct_train_plan_memory, `ctune plan`), and the
 * trainer's check that the run fits before it allocates anything
 * (ct__train_check_memory). docs/plan.md has the model of memory and how it
 * compares with measured peaks.
 *
 * The prediction is the sum of what ct__tm_create and the trainer allocate
 * (ct__tm_estimate walks the same tables and activation plan without
 * allocating) plus the resident pages of the frozen weights as they will be
 * read, plus a fixed allowance for the program, its threads' scratch, the
 * tokenizer and the tokenized data. Leaves out: the allocator's own slack,
 * the page cache (not this process's memory), evaluation batches (the same
 * buffers as training). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/internal.h"
#include "train/plan.h"
#include "train/tmodel.h"

/* the program, libc, thread stacks and GEMM scratch, tokenizer, a small data
 * set: measured 15-16 MiB beside the predicted buffers for stories260K on
 * tinyshakespeare (docs/plan.md); the trainer's check uses its real RSS
 * (tokenized data included) when that is larger */
#define OTHER_BYTES ((size_t)20 << 20)

ct_status ct__train_tm_opts(const ct_train_opts *o, const ct_config *g, int max_seq, ct__tm_opts *to) {
    int micro = o->micro_batch > 0 ? o->micro_batch : o->batch;
    if (micro <= 0 || max_seq <= 0) return ct__err(CT_ERR_ARG, "training: need a batch and a sequence length");
    const int soft = o->method == CT_METHOD_PROMPT || o->method == CT_METHOD_PREFIX;
    const int nv = soft ? (o->num_virtual_tokens > 0 ? o->num_virtual_tokens : 8) : 0;
    if (o->method == CT_METHOD_PROMPT) max_seq += nv; /* the virtual tokens ride in front of every sequence */
    *to = (ct__tm_opts){.method = o->method == CT_METHOD_FULL     ? CT_TM_FULL
                                  : o->method == CT_METHOD_PROMPT ? CT_TM_PROMPT
                                  : o->method == CT_METHOD_PREFIX ? CT_TM_PREFIX
                                                                  : CT_TM_LORA,
                        .n_virtual = nv,
                        .prefix_hidden = o->method == CT_METHOD_PREFIX ? o->prefix_projection : 0,
                        .max_seqs = o->method == CT_METHOD_PREFIX ? micro : 0,
                        .base = o->method == CT_METHOD_QLORA
                                    ? (ct__tm_base)(o->base_dtype ? o->base_dtype : CT_BASE_NF4)
                                    : CT_TB_ASIS,
                        .lora_r = o->lora_r, .lora_alpha = o->lora_alpha, .lora_dropout = o->lora_dropout,
                        .rslora = o->rslora, .max_seq = max_seq, .max_rows = micro * max_seq,
                        .checkpointing = o->checkpointing, .n_threads = o->n_threads, .seed = o->seed,
                        .bf16 = o->bf16};
    if (o->method == CT_METHOD_LORA || o->method == CT_METHOD_QLORA)
        return ct__parse_targets(o->targets, g->arch, &to->lora_targets);
    return CT_OK;
}

ct_status ct_train_plan_memory(ct_model *m, const ct_train_opts *o, int max_seq, ct_train_plan *out) {
    if (!m || !o || !out) return ct__err(CT_ERR_ARG, "ct_train_plan_memory: NULL argument");
    memset(out, 0, sizeof *out);
    const ct_config *g = ct_model_config(m);
    if (g->arch == CT_ARCH_GPT2 && max_seq > g->max_seq_len) max_seq = g->max_seq_len;
    ct__tm_opts to;
    ct_status s = ct__train_tm_opts(o, g, max_seq, &to);
    if (s) return s;
    ct__tm_mem e;
    if ((s = ct__tm_estimate(m, &to, &e))) return s;
    out->n_params = ct_model_n_params(m);
    out->n_trainable = (int64_t)(e.save_bytes / sizeof(float));
    out->file_bytes = e.file_bytes;
    out->weights_bytes = e.base_bytes + e.heademb_bytes;
    out->trainable_bytes = e.trainable_bytes;
    out->grad_bytes = e.grad_bytes;
    out->optim_bytes = e.optim_bytes;
    out->act_bytes = e.act_bytes;
    out->save_bytes = e.save_bytes;
    out->other_bytes = OTHER_BYTES;
    out->peak_bytes = out->weights_bytes + out->trainable_bytes + out->grad_bytes + out->optim_bytes +
                      out->act_bytes + out->save_bytes + out->other_bytes;
    out->max_rows = to.max_rows;
    out->max_seq = to.max_seq;
    return CT_OK;
}

/* a "Key:   123 kB" line of a /proc file, in bytes (0 when absent) */
static size_t proc_kb(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256];
    size_t kl = strlen(key), v = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = (size_t)strtoull(line + kl + 1, NULL, 10) * 1024;
            break;
        }
    fclose(f);
    return v;
}

size_t ct__peak_rss(void) { return proc_kb("/proc/self/status", "VmHWM"); }

size_t ct_memory_available(void) {
    size_t avail = proc_kb("/proc/meminfo", "MemAvailable");
    return avail ? avail + proc_kb("/proc/self/status", "VmRSS") : 0;
}

int ct__fmt_bytes(char *buf, size_t cap, size_t b) {
    if (b >= ((size_t)1 << 30)) return snprintf(buf, cap, "%.2f GiB", (double)b / (double)(1 << 30));
    if (b >= ((size_t)1 << 20)) return snprintf(buf, cap, "%.1f MiB", (double)b / (double)(1 << 20));
    return snprintf(buf, cap, "%.1f KiB", (double)b / 1024.0);
}

ct_status ct__train_check_memory(ct_model *m, const ct_train_opts *o, int max_seq) {
    if (o->no_memory_check) return CT_OK;
    size_t limit = o->memory_limit ? o->memory_limit : ct_memory_available();
    if (!limit) return CT_OK; /* unknown (no /proc): nothing to compare with */
    ct_train_plan p;
    ct_status s = ct_train_plan_memory(m, o, max_seq, &p);
    if (s) return s;
    const size_t now = proc_kb("/proc/self/status", "VmRSS"); /* program, tokenizer, the loaded data */
    if (now > p.other_bytes) {
        p.peak_bytes += now - p.other_bytes;
        p.other_bytes = now;
    }
    if (p.peak_bytes <= limit) return CT_OK;
    char need[32], have[32], w[32], tr[32], ad[32], ac[32];
    ct__fmt_bytes(need, sizeof need, p.peak_bytes);
    ct__fmt_bytes(have, sizeof have, limit);
    ct__fmt_bytes(w, sizeof w, p.weights_bytes);
    ct__fmt_bytes(tr, sizeof tr, p.trainable_bytes + p.grad_bytes + p.save_bytes);
    ct__fmt_bytes(ad, sizeof ad, p.optim_bytes);
    ct__fmt_bytes(ac, sizeof ac, p.act_bytes);
    /* what would fit: the usual levers, one at a time */
    char alt[640];
    size_t n = 0;
    alt[0] = '\0';
    struct { ct_train_opts o; int seq; char what[64]; } v[5];
    int nv = 0;
    if (o->method != CT_METHOD_QLORA) {
        v[nv].o = *o;
        v[nv].o.method = CT_METHOD_QLORA;
        v[nv].o.base_dtype = CT_BASE_NF4;
        v[nv].o.checkpointing = 1;
        v[nv].seq = max_seq;
        snprintf(v[nv++].what, 64, "--method qlora");
    }
    if (!o->checkpointing) {
        v[nv].o = *o;
        v[nv].o.checkpointing = 1;
        v[nv].seq = max_seq;
        snprintf(v[nv++].what, 64, "--grad-checkpoint");
    }
    if (o->method != CT_METHOD_FULL && o->lora_r > 1) {
        v[nv].o = *o;
        v[nv].o.lora_r = o->lora_r / 2;
        v[nv].seq = max_seq;
        snprintf(v[nv++].what, 64, "--r %d", o->lora_r / 2);
    }
    if (max_seq >= 32) {
        v[nv].o = *o;
        v[nv].seq = max_seq / 2;
        snprintf(v[nv++].what, 64, "--max-len %d", max_seq / 2);
    }
    if ((o->micro_batch > 0 ? o->micro_batch : o->batch) > 1) {
        v[nv].o = *o;
        v[nv].o.micro_batch = 1;
        v[nv].seq = max_seq;
        snprintf(v[nv++].what, 64, "--micro-batch 1");
    }
    for (int i = 0; i < nv; i++) {
        ct_train_plan q;
        if (ct_train_plan_memory(m, &v[i].o, v[i].seq, &q)) continue;
        char b[32];
        ct__fmt_bytes(b, sizeof b, q.peak_bytes);
        int k = snprintf(alt + n, sizeof alt - n, "%s%s %s (%s)", n ? "; " : "", v[i].what,
                         q.peak_bytes <= limit ? "fits" : "does not fit", b);
        if (k < 0 || (size_t)k >= sizeof alt - n) break;
        n += (size_t)k;
    }
    return ct__err(CT_ERR_NOMEM,
                   "not enough memory: this run needs about %s at peak (frozen weights %s, trainable + "
                   "gradients + save copy %s, AdamW %s, activations %s for %d rows) but %s is available%s. "
                   "Changes: %s. `ctune plan` shows the whole table; --no-memory-check starts anyway",
                   need, w, tr, ad, ac, p.max_rows, have, o->memory_limit ? " (--memory-limit)" : "",
                   n ? alt : "none known");
}
