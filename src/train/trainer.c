/* src/train/trainer.c — the training loop behind ct_train (ctune/train.h).
 *
 * Data order: epoch e visits the training examples in the permutation fixed
 * by (seed, e); optimizer step k of the epoch takes examples
 * [k*batch, (k+1)*batch) of it (the last step of an epoch may be smaller),
 * split into micro-batches of micro_batch examples (or, with pack, of up to
 * micro_batch*max_len tokens) whose gradients add up. The loss of a step is
 * the summed cross-entropy of its targets over their count, so accumulation
 * gives exactly the full batch's gradient. Everything a step does follows
 * from (seed, step): a checkpoint stores the weights, AdamW's moments and the
 * counters, and a resumed run repeats the remaining steps bit for bit.
 * Evaluation (every eval_every steps and at the end of each epoch) computes
 * the validation loss over all validation targets; the lowest one is kept
 * in out_dir/best/; patience evaluations without improvement stop the run.
 * A NaN/Inf loss or gradient norm stops the run before the update, naming
 * the step and the last checkpoint.
 * Leaves out: mixed-precision training, multiple epochs of packing
 * different groupings, distributed training.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ctune/train.h"
#include "formats/loaders.h"
#include "formats/st_write.h"
#include "formats/json.h"
#include "train/lora_io.h"
#include "train/optim.h"
#include "train/plan.h"
#include "train/peft.h"
#include "train/prompt_io.h"
#include "train/save_full.h"
#include "train/tmodel_internal.h"

void ct_train_opts_default(ct_train_opts *o, ct_method method) {
    memset(o, 0, sizeof *o);
    o->method = method;
    o->lora_r = 8;
    o->lora_alpha = 16;
    o->lora_dropout = 0.05f;
    o->targets = "q,v";
    o->val_split = 0.0;
    o->data.max_len = 256;
    o->lr = method == CT_METHOD_FULL ? 5e-5f : 2e-4f;
    o->checkpointing = method == CT_METHOD_QLORA;
    o->num_virtual_tokens = 8;
    if (method == CT_METHOD_PROMPT) o->lr = 3e-2f; /* prompt tuning wants a large step (PEFT's examples: 3e-2) */
    if (method == CT_METHOD_PREFIX) o->lr = 1e-2f; /* PEFT's prefix-tuning examples: 1e-2 */
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
    o->schedule = "cosine";
    o->clip = 1.0f;
    o->batch = 8;
    o->epochs = 1;
    o->log_every = 1;
    o->seed = 42;
    o->progress = isatty(2);
}

static const char *method_name(ct_method m) {
    return m == CT_METHOD_PREFIX   ? "prefix"
           : m == CT_METHOD_PROMPT ? "prompt"
           : m == CT_METHOD_QLORA  ? "qlora"
           : m == CT_METHOD_LORA   ? "lora"
                                   : "full";
}

/* ---- targets ------------------------------------------------------------------ */

ct_status ct__parse_targets(const char *s, ct_arch arch, unsigned *out) {
    *out = 0;
    if (!s || !*s) s = "q,v";
    if (!strcmp(s, "all-linear") || !strcmp(s, "all")) {
        *out = arch == CT_ARCH_GPT2 ? (CT_LT_Q | CT_LT_O | CT_LT_UP | CT_LT_DOWN) : CT_LT_ALL;
        return CT_OK;
    }
    static const struct { const char *n; unsigned llama, gpt2; } k[] = {
        {"q", CT_LT_Q, CT_LT_Q},          {"k", CT_LT_K, CT_LT_Q},       {"v", CT_LT_V, CT_LT_Q},
        {"o", CT_LT_O, CT_LT_O},          {"gate", CT_LT_GATE, 0},       {"up", CT_LT_UP, CT_LT_UP},
        {"down", CT_LT_DOWN, CT_LT_DOWN}, {"q_proj", CT_LT_Q, 0},        {"k_proj", CT_LT_K, 0},
        {"v_proj", CT_LT_V, 0},           {"o_proj", CT_LT_O, 0},        {"gate_proj", CT_LT_GATE, 0},
        {"up_proj", CT_LT_UP, 0},         {"down_proj", CT_LT_DOWN, 0},  {"c_attn", 0, CT_LT_Q},
        {"c_proj", 0, CT_LT_O | CT_LT_DOWN}, {"c_fc", 0, CT_LT_UP},
    };
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        unsigned bits = 0;
        for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
            if (strlen(k[i].n) == n && !strncmp(k[i].n, p, n)) bits = arch == CT_ARCH_GPT2 ? k[i].gpt2 : k[i].llama;
        if (!bits)
            return ct__err(CT_ERR_ARG, "--targets: '%.*s' is not a linear layer of a %s model (use %s or all-linear)",
                           (int)n, p, arch == CT_ARCH_GPT2 ? "GPT-2" : "Llama-family",
                           arch == CT_ARCH_GPT2 ? "c_attn,c_proj,c_fc" : "q,k,v,o,gate,up,down");
        *out |= bits;
        p += n + (e ? 1 : 0);
    }
    return CT_OK;
}

/* ---- micro-batches ---------------------------------------------------------------- */

typedef struct {
    int32_t *ids, *targets, *seq;
    int cap_rows, cap_seq;
    int n_virtual;             /* prompt tuning: virtual rows -1..-K before each example */
} mbuf;

/* Append example ex; returns 0 when it does not fit. */
static int mb_add(mbuf *b, ct__tm_batch *tb, const ct_example *ex) {
    const int K = b->n_virtual;
    if (tb->N + K + ex->n > b->cap_rows || tb->n_seq + 1 > b->cap_seq) return 0;
    for (int j = 0; j < K; j++) { /* no loss on them; the last one predicts nothing (mask[0] is 0) */
        b->ids[tb->N + j] = -(j + 1);
        b->targets[tb->N + j] = -1;
    }
    tb->N += K;
    int r0 = tb->N;
    for (int j = 0; j < ex->n; j++) {
        b->ids[r0 + j] = ex->ids[j];
        b->targets[r0 + j] = (j + 1 < ex->n && ex->mask[j + 1]) ? ex->ids[j + 1] : -1;
    }
    tb->N += ex->n;
    b->seq[++tb->n_seq] = tb->N;
    return 1;
}

static size_t ex_targets(const ct_example *ex) {
    size_t n = 0;
    for (int j = 1; j < ex->n; j++) n += ex->mask[j] != 0;
    return n;
}

/* ---- the run state ------------------------------------------------------------------ */

typedef struct {
    const ct_train_opts *o;
    ct_model *m;
    ct__tmodel *t;
    ct_dataset *train, *val;
    ct__adamw_opts ao;
    float *mom, *vel;          /* AdamW moments (n_params) */
    size_t n;
    size_t *perm;              /* (n_train) this epoch's order */
    int perm_epoch;
    mbuf mb;
    int spe, total;            /* steps per epoch, total steps */
    int micro;                 /* examples per micro-batch */
    int fault_nan_step;        /* test hook: CTUNE_FAULT_NAN_STEP=S poisons step S's gradient */
    int step;                  /* steps done */
    double best_val;
    int best_step, bad_evals;
    double tokens;             /* rows processed this run */
    FILE *metrics;
    char last_ckpt[1024];
} run;

static void ensure_perm(run *r, int epoch) {
    if (r->perm_epoch == epoch) return;
    size_t n = ct_dataset_size(r->train);
    ct_data_permutation(n, r->o->seed * 1000003ULL + (uint64_t)epoch, r->perm);
    r->perm_epoch = epoch;
}

/* Mean validation loss over every validation target. */
static ct_status evaluate(run *r, double *out) {
    size_t n = ct_dataset_size(r->val), i = 0;
    double sum = 0;
    size_t cnt = 0;
    while (i < n) {
        ct__tm_batch tb = {.ids = r->mb.ids, .targets = r->mb.targets, .seq = r->mb.seq};
        r->mb.seq[0] = 0;
        while (i < n) {
            ct_example ex = ct_dataset_get(r->val, i);
            if (!mb_add(&r->mb, &tb, &ex)) break;
            cnt += ex_targets(&ex);
            i++;
        }
        if (tb.N == 0) return ct__err(CT_ERR_RANGE, "validation example %zu does not fit a micro-batch", i);
        double ls;
        ct_status s = ct__tm_run(r->t, &tb, 1.0f, 0, NULL, &ls);
        if (s) return s;
        sum += ls;
    }
    *out = cnt ? sum / (double)cnt : NAN;
    return CT_OK;
}

/* One optimizer step (the r->step-th, 0-based). */
static ct_status train_step(run *r, double *loss, double *gnorm, float *lr, size_t *rows) {
    const ct_train_opts *o = r->o;
    size_t ntr = ct_dataset_size(r->train);
    int epoch = r->step / r->spe, k = r->step % r->spe;
    ensure_perm(r, epoch);
    size_t e0 = (size_t)k * o->batch, e1 = e0 + (size_t)o->batch < ntr ? e0 + (size_t)o->batch : ntr;
    size_t targets = 0;
    for (size_t i = e0; i < e1; i++) {
        ct_example ex = ct_dataset_get(r->train, r->perm[i]);
        targets += ex_targets(&ex);
    }
    ct__tm_zero_grad(r->t);
    float scale = targets ? 1.0f / (float)targets : 0.0f;
    double sum = 0;
    *rows = 0;
    int micro = 0;
    for (size_t i = e0; i < e1;) {
        ct__tm_batch tb = {.ids = r->mb.ids, .targets = r->mb.targets, .seq = r->mb.seq};
        r->mb.seq[0] = 0;
        int taken = 0;
        while (i < e1 && (o->pack || taken < r->micro)) {
            ct_example ex = ct_dataset_get(r->train, r->perm[i]);
            if (!mb_add(&r->mb, &tb, &ex)) break;
            i++;
            taken++;
        }
        if (!taken) return ct__err(CT_ERR_RANGE, "training example does not fit a micro-batch");
        ct__tm_set_dropout_seed(r->t, r->o->seed ^ ((uint64_t)r->step << 20) ^ (uint64_t)micro);
        double ls;
        ct_status s = ct__tm_run(r->t, &tb, scale, 1, NULL, &ls);
        if (s) return s;
        sum += ls;
        *rows += (size_t)tb.N;
        micro++;
    }
    *loss = targets ? sum / (double)targets : 0;
    size_t n;
    float *p = ct__tm_params(r->t, &n), *g = ct__tm_grads(r->t);
    if (r->fault_nan_step == r->step + 1 && n) g[0] = NAN; /* test hook, see setup() */
    *gnorm = ct__grad_norm(g, n);
    *lr = ct__lr_at(&r->ao, r->step);
    if (!isfinite(*loss) || !isfinite(*gnorm))
        return ct__err(CT_ERR_NUMERIC, "step %d: the loss is %g and the gradient norm %g; stopped before the update%s%s. "
                       "Try a lower --lr, --clip, or check the data", r->step + 1, *loss, *gnorm,
                       r->last_ckpt[0] ? "; the last good checkpoint is " : " (no checkpoint was saved)",
                       r->last_ckpt);
    int ntab;
    const ct__tparam *tab = ct__tm_ptable(r->t, &ntab);
    ct__adamw_update(p, g, r->mom, r->vel, tab, ntab, &r->ao, *lr, (long)r->step + 1,
                     ct__clip_scale(*gnorm, r->ao.clip));
    return CT_OK;
}

/* ---- outputs ------------------------------------------------------------------------ */

static ct_status save_weights(run *r, const char *dir) {
    if (r->o->method == CT_METHOD_PROMPT) {
        static const char *const init[] = {"RANDOM", "SAMPLE_VOCAB", "TEXT"};
        return ct__prompt_save(r->t, dir, r->m->path, init[r->o->prompt_init],
                               r->o->prompt_init == CT_PROMPT_INIT_TEXT ? r->o->prompt_init_text : NULL, r->m->path);
    }
    if (r->o->method == CT_METHOD_PREFIX) return ct__prompt_save(r->t, dir, r->m->path, NULL, NULL, r->m->path);
    if (r->o->method != CT_METHOD_FULL) return ct__lora_save(r->t, dir, r->m->path);
    return ct__save_full(r->t, dir);
}

/* checkpoint-N/: state.safetensors (params, adam_m, adam_v) + trainer_state.json,
 * built in a temporary directory and renamed into place. */
static ct_status save_checkpoint(run *r) {
    char dir[1024], tmp[1100], path[1200];
    snprintf(dir, sizeof dir, "%s/checkpoint-%d", r->o->out_dir, r->step);
    snprintf(tmp, sizeof tmp, "%s.tmp", dir);
    ct_status s = ct__mkdir_p(tmp);
    if (s) return s;
    size_t n;
    float *p = ct__tm_params(r->t, &n);
    ct__st_out t[3] = {
        {.name = "params", .dtype = CT_DT_F32, .ndim = 1, .shape = {(int64_t)n}, .src = p},
        {.name = "adam_m", .dtype = CT_DT_F32, .ndim = 1, .shape = {(int64_t)n}, .src = r->mom},
        {.name = "adam_v", .dtype = CT_DT_F32, .ndim = 1, .shape = {(int64_t)n}, .src = r->vel},
    };
    snprintf(path, sizeof path, "%s/state.safetensors", tmp);
    if ((s = ct__st_write(path, t, 3, NULL))) return s;
    char js[1024];
    int len = snprintf(js, sizeof js,
                       "{\n  \"step\": %d,\n  \"total_steps\": %d,\n  \"epoch\": %d,\n  \"n_params\": %zu,\n"
                       "  \"best_val_loss\": %.17g,\n  \"best_step\": %d,\n  \"bad_evals\": %d,\n  \"seed\": %llu,\n"
                       "  \"method\": \"%s\"\n}\n",
                       r->step, r->total, r->step / r->spe, n, isfinite(r->best_val) ? r->best_val : -1.0,
                       r->best_step, r->bad_evals, (unsigned long long)r->o->seed,
                       method_name(r->o->method));
    snprintf(path, sizeof path, "%s/trainer_state.json", tmp);
    if ((s = ct__write_file_atomic(path, js, (size_t)len))) return s;
    /* the weights in their usable form too, so a checkpoint is also a result */
    if ((s = save_weights(r, tmp))) return s;
    char old[1100];
    snprintf(old, sizeof old, "%s.old", dir);
    if (ct__is_dir(dir)) rename(dir, old);
    if (rename(tmp, dir) != 0)
        return ct__err(CT_ERR_IO, "%s: cannot rename the checkpoint into place: %s", dir, strerror(errno));
    if (ct__is_dir(old)) ct__rmtree(old);
    /* keep only the newest checkpoint of this output directory */
    char mine[1100];
    int ml = snprintf(mine, sizeof mine, "%s/checkpoint-", r->o->out_dir);
    if (r->last_ckpt[0] && strcmp(r->last_ckpt, dir) != 0 && !strncmp(r->last_ckpt, mine, (size_t)ml))
        ct__rmtree(r->last_ckpt);
    snprintf(r->last_ckpt, sizeof r->last_ckpt, "%s", dir);
    return CT_OK;
}

static ct_status load_checkpoint(run *r, const char *dir) {
    char path[1200];
    snprintf(path, sizeof path, "%s/trainer_state.json", dir);
    char *text;
    size_t len;
    ct_json *j;
    ct_status s = ct__read_file(path, &text, &len);
    if (s) return ct__err_prefix(s, "--resume %s", dir);
    s = ct__json_parse(text, len, path, &j);
    free(text);
    if (s) return s;
    int64_t step = -1, np = -1, best_step = 0, bad = 0, seed = -1;
    double best = -1;
    ct__json_get_int(j, "step", &step);
    ct__json_get_int(j, "n_params", &np);
    ct__json_get_int(j, "best_step", &best_step);
    ct__json_get_int(j, "bad_evals", &bad);
    ct__json_get_int(j, "seed", &seed);
    ct__json_get_num(j, "best_val_loss", &best);
    const char *meth = ct__json_get_str(j, "method");
    int meth_ok = meth && !strcmp(meth, method_name(r->o->method));
    ct__json_free(j);
    size_t n;
    float *p = ct__tm_params(r->t, &n);
    if (step < 0 || np != (int64_t)n || !meth_ok)
        return ct__err(CT_ERR_FORMAT, "%s: this checkpoint does not belong to this run (%s, %lld parameters; this "
                       "run trains %zu with --method %s)", path, meth ? meth : "?", (long long)np, n,
                       method_name(r->o->method));
    if ((uint64_t)seed != r->o->seed)
        ct__log(CT_LOG_WARN, "%s: the checkpoint was made with --seed %lld, this run uses %llu", path,
                (long long)seed, (unsigned long long)r->o->seed);
    snprintf(path, sizeof path, "%s/state.safetensors", dir);
    ct_tstore ts;
    ct__tstore_init(&ts);
    s = ct__safetensors_load(path, &ts);
    const char *names[3] = {"params", "adam_m", "adam_v"};
    float *dst[3] = {p, r->mom, r->vel};
    for (int i = 0; !s && i < 3; i++) {
        const ct_tref *t = ct__tstore_find(&ts, names[i]);
        if (!t || t->dtype != CT_DT_F32 || t->nbytes != n * sizeof(float))
            s = ct__err(CT_ERR_FORMAT, "%s: tensor '%s' is missing or has the wrong size", path, names[i]);
        else memcpy(dst[i], t->data, t->nbytes);
    }
    ct__tstore_free(&ts);
    if (s) return s;
    r->step = (int)step;
    r->best_val = best >= 0 ? best : INFINITY;
    r->best_step = (int)best_step;
    r->bad_evals = (int)bad;
    snprintf(r->last_ckpt, sizeof r->last_ckpt, "%s", dir);
    return CT_OK;
}

/* Keep the metric lines of steps <= step (a resumed run rewrites the rest). */
static void trim_metrics(const char *path, int step) {
    char *text;
    size_t len;
    if (ct__read_file(path, &text, &len)) return;
    char *out = ct__malloc(len + 1);
    size_t o = 0;
    for (char *line = text; out && line < text + len;) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        size_t n = nl ? (size_t)(nl - line + 1) : (size_t)(text + len - line);
        const char *sp = strstr(line, "\"step\":");
        if (sp && sp < line + n && atoi(sp + 7) <= step) {
            memcpy(out + o, line, n);
            o += n;
        }
        line += n;
    }
    if (out) ct__write_file_atomic(path, out, o);
    free(out);
    free(text);
}

static void fmt_time(char *b, size_t n, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    int h = (int)(s / 3600), m = (int)(fmod(s, 3600) / 60), sec = (int)fmod(s, 60);
    if (h) snprintf(b, n, "%dh%02dm", h, m);
    else snprintf(b, n, "%dm%02ds", m, sec);
}

/* ---- ct_train ------------------------------------------------------------------------- */

/* Prompt tuning's start (ct_prompt_init): vocabulary rows or a text's tokens
 * (with BOS when the tokenizer adds one, as PEFT's tokenizer call does),
 * repeated or cut to K; RANDOM keeps the model's N(0, 1). */
static ct_status init_prompt(run *r, const ct_tokenizer *tok) {
    const ct_train_opts *o = r->o;
    if ((o->method != CT_METHOD_PROMPT && o->method != CT_METHOD_PREFIX) || o->prompt_init == CT_PROMPT_INIT_RANDOM)
        return CT_OK;
    if (o->method == CT_METHOD_PREFIX && o->prefix_projection > 0)
        return ct__err(CT_ERR_ARG, "--prompt-init vocab|text is for a plain prefix (without --prefix-projection)");
    ct__tmodel *t = r->t;
    const int K = ct__tm_options(t)->n_virtual;
    int32_t *ids = NULL;
    size_t n = 0;
    if (o->prompt_init == CT_PROMPT_INIT_TEXT) {
        const char *txt = o->prompt_init_text;
        if (!txt || !*txt) return ct__err(CT_ERR_ARG, "--prompt-init text needs --prompt-init-text \"...\"");
        ct_status s = ct_tokenizer_encode(tok, txt, strlen(txt), CT_TOK_ADD_BOS, &ids, &n);
        if (s) return s;
        if (!n) { free(ids); return ct__err(CT_ERR_ARG, "--prompt-init-text: the text has no tokens"); }
    }
    if (!ids) { /* vocab: sampled tokens */
        ids = ct__malloc(sizeof(int32_t) * (size_t)K);
        if (!ids) return ct__err(CT_ERR_NOMEM, "out of memory");
        ct__vocab_sample(o->seed, ct_model_config(r->m)->vocab_size, K, ids);
        n = (size_t)K;
    }
    /* prompt: their embeddings; prefix: the key/value cache they leave */
    ct_status s = ct__soft_init_from_ids(t, ids, (int)n);
    free(ids);
    return s;
}

static ct_status setup(run *r, ct_train_result *res) {
    const ct_train_opts *o = r->o;
    ct_model *m = r->m;
    const ct_config *g = ct_model_config(m);
    ct_tokenizer *tok = ct_model_tokenizer(m);
    if (!tok) return ct__err(CT_ERR_ARG, "%s has no tokenizer (needed to read the training data)", m->path);
    if (!o->data_path) return ct__err(CT_ERR_ARG, "no training data (--data FILE)");
    if (!o->out_dir) return ct__err(CT_ERR_ARG, "no output directory (-o DIR)");
    if (o->batch <= 0 || o->micro_batch < 0 || o->micro_batch > o->batch)
        return ct__err(CT_ERR_ARG, "--batch %d / --micro-batch %d: need 0 < micro-batch <= batch", o->batch,
                       o->micro_batch);
    ct_data_opts dopt = o->data;
    int maxlen = dopt.max_len > 0 ? dopt.max_len : 256;
    if (g->arch == CT_ARCH_GPT2 && maxlen > g->max_seq_len) maxlen = g->max_seq_len;
    dopt.max_len = maxlen;
    ct_dataset *all = NULL;
    ct_status s = ct_dataset_load(o->data_path, tok, &dopt, &all);
    if (s) return s;
    if (o->val_path) {
        r->train = all;
        s = ct_dataset_load(o->val_path, tok, &dopt, &r->val);
        if (s) return s;
    } else if (o->val_split > 0) {
        s = ct_dataset_split(all, o->val_split, o->seed, &r->train, &r->val);
        ct_dataset_free(all);
        if (s) return s;
    } else {
        r->train = all;
    }
    ct_data_stats st, sv = {0};
    ct_dataset_stats(r->train, &st);
    if (r->val) ct_dataset_stats(r->val, &sv);
    int longest = st.max_tokens > sv.max_tokens ? st.max_tokens : sv.max_tokens;
    int micro = o->micro_batch > 0 ? o->micro_batch : o->batch;
    r->micro = micro;
    const char *fault = getenv("CTUNE_FAULT_NAN_STEP"); /* tests/e2e/test_train_cli.sh */
    r->fault_nan_step = fault ? atoi(fault) : 0;
    ct__tm_opts to;
    if ((s = ct__train_tm_opts(o, g, longest, &to))) return s;
    if ((s = ct__train_check_memory(m, o, longest))) return s;
    if ((s = ct__tm_create(m, &to, &r->t))) return s;
    size_t n;
    ct__tm_params(r->t, &n);
    r->n = n;
    r->mom = ct__alloc_big((n ? n : 1) * sizeof(float));
    r->vel = ct__alloc_big((n ? n : 1) * sizeof(float));
    r->perm = ct__malloc((st.n_examples ? st.n_examples : 1) * sizeof(size_t));
    if ((s = init_prompt(r, tok))) return s;
    r->mb.n_virtual = to.method == CT_TM_PROMPT ? to.n_virtual : 0; /* prefix tuning adds no rows */
    r->mb.cap_rows = to.max_rows;
    r->mb.cap_seq = to.method == CT_TM_PREFIX ? to.max_seqs : to.max_rows + 1;
    r->mb.ids = ct__malloc((size_t)to.max_rows * sizeof(int32_t));
    r->mb.targets = ct__malloc((size_t)to.max_rows * sizeof(int32_t));
    r->mb.seq = ct__malloc(((size_t)to.max_rows + 2) * sizeof(int32_t));
    if (!r->mom || !r->vel || !r->perm || !r->mb.ids || !r->mb.targets || !r->mb.seq)
        return ct__err(CT_ERR_NOMEM, "training: out of memory for the optimizer state (%zu parameters)", n);
    memset(r->mom, 0, n * sizeof(float));
    memset(r->vel, 0, n * sizeof(float));
    r->perm_epoch = -1;
    r->spe = (int)((st.n_examples + (size_t)o->batch - 1) / (size_t)o->batch);
    r->total = o->max_steps > 0 ? o->max_steps : o->epochs * r->spe;
    ct__sched sch = CT_SCHED_COSINE;
    if (o->schedule && !strcmp(o->schedule, "constant")) sch = CT_SCHED_CONSTANT;
    else if (o->schedule && !strcmp(o->schedule, "linear")) sch = CT_SCHED_LINEAR;
    else if (o->schedule && strcmp(o->schedule, "cosine"))
        return ct__err(CT_ERR_ARG, "--schedule %s: use constant, linear or cosine", o->schedule);
    r->ao = (ct__adamw_opts){.lr = o->lr, .beta1 = o->beta1, .beta2 = o->beta2, .eps = o->eps,
                             .weight_decay = o->weight_decay, .sched = sch, .warmup = o->warmup,
                             .total = r->total, .clip = o->clip};
    r->best_val = INFINITY;
    res->trainable = (int64_t)0;
    int ntab;
    const ct__tparam *tab = ct__tm_ptable(r->t, &ntab);
    for (int i = 0; i < ntab; i++) res->trainable += (int64_t)tab[i].n;
    if (!o->quiet) {
        char sum[256];
        ct_dataset_summary(r->train, sum, sizeof sum);
        fprintf(stderr, "train: %s\n", sum);
        if (r->val) {
            ct_dataset_summary(r->val, sum, sizeof sum);
            fprintf(stderr, "val:   %s\n", sum);
        }
        static const char *const qn[] = {"QLoRA (NF4 base)", "QLoRA (NF4 base)", "QLoRA (Q8_0 base)",
                                         "QLoRA (BF16 base)", "LoRA (F32 base)"};
        fprintf(stderr, "%s: %lld trainable parameters (%.3f%% of %lld), %d steps (%d per epoch), batch %d, "
                "micro-batch %d, activations %.1f MiB\n",
                o->method == CT_METHOD_QLORA    ? qn[o->base_dtype]
                : o->method == CT_METHOD_LORA   ? "LoRA"
                : o->method == CT_METHOD_PROMPT ? "prompt tuning"
                : o->method == CT_METHOD_PREFIX ? "prefix tuning"
                                                : "full fine-tuning",
                (long long)res->trainable,
                100.0 * (double)res->trainable / (double)ct_model_n_params(m), (long long)ct_model_n_params(m),
                r->total, r->spe, o->batch, micro, ct__tm_act_bytes(r->t) / 1048576.0);
    }
    return CT_OK;
}

static void teardown(run *r) {
    ct__tm_free(r->t);
    ct_dataset_free(r->train);
    ct_dataset_free(r->val);
    if (r->mom) ct__free_big(r->mom, (r->n ? r->n : 1) * sizeof(float));
    if (r->vel) ct__free_big(r->vel, (r->n ? r->n : 1) * sizeof(float));
    free(r->perm);
    free(r->mb.ids);
    free(r->mb.targets);
    free(r->mb.seq);
    if (r->metrics) fclose(r->metrics);
}

static ct_status do_eval(run *r, ct_train_result *res, int *stop) {
    double vl = NAN;
    ct_status s = evaluate(r, &vl);
    if (s) return s;
    res->val_loss = vl;
    if (vl < r->best_val) {
        r->best_val = vl;
        r->best_step = r->step;
        r->bad_evals = 0;
        char dir[1100];
        snprintf(dir, sizeof dir, "%s/best", r->o->out_dir);
        if ((s = save_weights(r, dir))) return s;
    } else if (++r->bad_evals >= r->o->patience && r->o->patience > 0) {
        *stop = 1;
    }
    return CT_OK;
}

ct_status ct_train(ct_model *m, const ct_train_opts *o, ct_train_result *res) {
    ct_train_result dummy;
    if (!res) res = &dummy;
    memset(res, 0, sizeof *res);
    res->val_loss = res->best_val_loss = NAN;
    if (!m || !o) return ct__err(CT_ERR_ARG, "ct_train: model or options NULL");
    run r = {.o = o, .m = m};
    const int had_out = o->out_dir && ct__file_exists(o->out_dir);
    ct_status s = ct__mkdir_p(o->out_dir ? o->out_dir : "");
    if (!s) s = setup(&r, res);
    if (s == CT_ERR_NOMEM && !had_out && o->out_dir) rmdir(o->out_dir); /* refused before anything was written */
    if (!s && o->resume_dir) s = load_checkpoint(&r, o->resume_dir);
    char mpath[1100];
    if (!s) {
        snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", o->out_dir);
        if (o->resume_dir) trim_metrics(mpath, r.step);
        else remove(mpath);
        r.metrics = fopen(mpath, "a");
        if (!r.metrics) s = ct__err(CT_ERR_IO, "%s: cannot open for writing: %s", mpath, strerror(errno));
    }
    /* the starting point: validation loss before any update (step 0) */
    int stop = 0, start = r.step;
    if (!s && r.val && !o->resume_dir) {
        s = do_eval(&r, res, &stop);
        if (!s) {
            fprintf(r.metrics, "{\"step\": 0, \"epoch\": 0, \"val_loss\": %.6f, \"val_ppl\": %.4f}\n", res->val_loss,
                    exp(res->val_loss));
            fflush(r.metrics);
            if (!o->quiet)
                fprintf(stderr, "step 0/%d  val %.4f (ppl %.2f) before training\n", r.total, res->val_loss,
                        exp(res->val_loss));
        }
    }
    double t0 = ct__now();
    while (!s && r.step < r.total && !stop) {
        double loss = 0, gn = 0;
        float lr = 0;
        size_t rows = 0;
        s = train_step(&r, &loss, &gn, &lr, &rows);
        if (s) break;
        r.step++;
        r.tokens += (double)rows;
        res->train_loss = loss;
        int epoch_end = r.step % r.spe == 0, last = r.step == r.total;
        int ev = r.val && ((o->eval_every > 0 && r.step % o->eval_every == 0) || epoch_end || last);
        if (ev && (s = do_eval(&r, res, &stop))) break;
        double el = ct__now() - t0, tps = r.tokens / (el > 0 ? el : 1e-9);
        if (ev || r.step % (o->log_every > 0 ? o->log_every : 1) == 0 || last) {
            fprintf(r.metrics, "{\"step\": %d, \"epoch\": %.4f, \"train_loss\": %.6f, ", r.step,
                    (double)r.step / r.spe, loss);
            if (ev) fprintf(r.metrics, "\"val_loss\": %.6f, \"val_ppl\": %.4f, ", res->val_loss, exp(res->val_loss));
            fprintf(r.metrics, "\"lr\": %.6g, \"grad_norm\": %.5g, \"tokens_per_s\": %.1f}\n", lr, gn, tps);
            fflush(r.metrics);
        }
        if (!o->quiet && (o->progress || ev || last)) {
            char eta[32];
            fmt_time(eta, sizeof eta, el / (r.step - start) * (r.total - r.step));
            fprintf(stderr, "%sstep %d/%d  epoch %.2f  loss %.4f", o->progress ? "\r\033[K" : "", r.step, r.total,
                    (double)r.step / r.spe, loss);
            if (ev) fprintf(stderr, "  val %.4f (ppl %.2f)", res->val_loss, exp(res->val_loss));
            fprintf(stderr, "  lr %.2e  %.0f tok/s  ETA %s%s", lr, tps, eta, (o->progress && !ev && !last) ? "" : "\n");
        }
        if (o->save_every > 0 && r.step % o->save_every == 0 && !last && (s = save_checkpoint(&r))) break;
        if (o->stop_after > 0 && r.step - start >= o->stop_after) {
            stop = 2;
            break;
        }
    }
    if (!s && stop != 2) s = save_weights(&r, o->out_dir);
    res->steps = r.step;
    res->best_val_loss = isfinite(r.best_val) ? r.best_val : NAN;
    res->best_step = r.best_step;
    res->seconds = ct__now() - t0;
    res->tokens_per_s = r.tokens / (res->seconds > 0 ? res->seconds : 1e-9);
    res->stopped_early = stop == 1;
    res->peak_rss_bytes = ct__peak_rss();
    if (!s && stop == 1 && !o->quiet)
        fprintf(stderr, "early stop: no improvement in %d evaluations; best val loss %.4f at step %d (in %s/best)\n",
                o->patience, r.best_val, r.best_step, o->out_dir);
    teardown(&r);
    return s;
}
