/* cli/cmd_compare.c — `ctune compare MODEL --data FILE --methods ...`: every
 * classification method on the same data and the same split, one table
 * (docs/classify.md "Comparing methods"):
 *   method, trainable parameters (count, % of the model), adapter/head file
 *   size, training time, peak RSS, validation accuracy and macro-F1, and
 *   forgetting: the perplexity of a general text with the method's weights
 *   (only LoRA, QLoRA and full fine-tuning change the base's weights; a head, a prompt, a prefix or label
 *   words leave them as they are).
 * Each method runs in its own child process (fork), so its peak RSS is its
 * own; the validation split is the same stratified split in every child
 * (ct_cls_dataset_split with the same fraction and seed). Also written as CSV
 * and JSON. Full fine-tuning's forgetting is measured with the trained
 * embeddings as the head when the base ties them; an untied base's LM head is
 * not part of a classifier, so that cell stays empty. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "ctune/cls_train.h"

static const char *USAGE =
    "usage: ctune compare MODEL --data FILE --words LABEL=WORD,... -o WORKDIR [options]\n"
    "  runs each method on the same data and split and prints one table\n"
    "  --methods LIST       zero-shot,few-shot,head,prompt,prefix,lora,qlora,full (default: all)\n"
    "  --val FILE | --val-split F (0.2)   --seed S (42)   --max-len N (256)\n"
    "  --shots K (4)        demonstrations for few-shot   --prefix T --suffix T (label-word template)\n"
    "  --general FILE.txt   general text for forgetting (perplexity with each method's weights)\n"
    "  --csv FILE --json FILE   the table as CSV / JSON as well\n"
    "  --text-column C --label-column L  -t THREADS  --tokenizer F\n";

typedef struct {
    char method[16];
    int ok;
    char err[256];
    long long trainable, n_params;
    long long file_bytes;
    double seconds, acc, f1, ppl;
    double peak_mib;
    long long n_val;
} row;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double vm_hwm_mib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    double v = 0;
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) v = atof(line + 6) / 1024.0;
    if (f) fclose(f);
    return v;
}

static long long file_size(const char *dir, const char *name) {
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0 ? (long long)st.st_size : 0;
}

typedef struct {
    const char *path, *tokpath, *data, *val, *general, *work, *prefix, *suffix;
    double val_split;
    uint64_t seed;
    int max_len, shots, threads;
    ct_cls_opts dopt;
    const char *const *wl, *const *ww;
    int nw;
} setup;

static double perplexity(ct_model *m, const char *path, int threads) {
    FILE *f = fopen(path, "rb");
    if (!f) return NAN;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)len + 1);
    if (!text || fread(text, 1, (size_t)len, f) != (size_t)len) { fclose(f); free(text); return NAN; }
    fclose(f);
    ct_tokenizer *tok = ct_model_tokenizer(m);
    int32_t *ids = NULL;
    size_t n = 0;
    double ppl = NAN;
    if (ct_tokenizer_encode(tok, text, (size_t)len, ct_tokenizer_adds_bos(tok) ? CT_TOK_ADD_BOS : 0, &ids, &n) == CT_OK) {
        int ctx = ct_model_config(m)->max_seq_len < 256 ? ct_model_config(m)->max_seq_len : 256;
        ct_ctx *c = NULL;
        if (ct_ctx_create(m, ctx, threads, &c) == CT_OK) {
            ct_eval_opts eo = {ctx, ctx / 2};
            ct_eval_result r;
            if (ct_eval_perplexity(c, ids, n, &eo, &r) == CT_OK) ppl = r.perplexity;
            ct_ctx_free(c);
        }
    }
    free(ids);
    free(text);
    return ppl;
}

/* The validation set every method scores: --val, or the split of --data. */
static ct_status load_val(const setup *S, ct_model *m, ct_cls_dataset **va, ct_cls_dataset **tr) {
    ct_tokenizer *tok = ct_model_tokenizer(m);
    ct_cls_dataset *all = NULL;
    ct_status s = ct_cls_dataset_load(S->data, tok, &S->dopt, &all);
    if (s) return s;
    if (S->val) {
        s = ct_cls_dataset_load_labels(S->val, tok, &S->dopt, ct_cls_dataset_labels(all), ct_cls_dataset_num_labels(all),
                                       va);
        *tr = all;
        return s;
    }
    s = ct_cls_dataset_split(all, S->val_split, S->seed, tr, va);
    ct_cls_dataset_free(all);
    return s;
}

static void run_method(const setup *S, const char *meth, row *r) {
    ct_model *m = NULL;
    ct_status s = cli_load_model(S->path, S->tokpath, 0, &m);
    if (s) { snprintf(r->err, sizeof r->err, "%s", ct_errmsg()); return; }
    r->n_params = (long long)ct_model_n_params(m);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", S->work, meth);
    double t0 = now_s();
    if (!strcmp(meth, "zero-shot") || !strcmp(meth, "few-shot")) {
        ct_cls_dataset *va = NULL, *tr = NULL;
        s = load_val(S, m, &va, &tr);
        int *pred = NULL, k = 0;
        char **lab = NULL;
        const char *labs[64], *wds[64];
        int K = 0;
        if (!s) {
            K = ct_cls_dataset_num_labels(va);
            for (int i = 0; i < K && !s; i++) {
                labs[i] = ct_cls_dataset_label(va, i);
                wds[i] = NULL;
                for (int w = 0; w < S->nw; w++)
                    if (!strcmp(S->wl[w], labs[i])) wds[i] = S->ww[w];
                if (!wds[i]) { snprintf(r->err, sizeof r->err, "--words has no word for label '%s'", labs[i]); s = CT_ERR_ARG; }
            }
        }
        if (!s) {
            ct_classify_opts o = {.words = wds, .labels = labs, .n_labels = K, .prefix = S->prefix, .suffix = S->suffix,
                                  .shots = meth[0] == 'f' ? tr : NULL, .n_shots = meth[0] == 'f' ? S->shots : 0,
                                  .n_threads = S->threads};
            const size_t n = ct_cls_dataset_size(va);
            pred = malloc(sizeof(int) * (n ? n : 1));
            int *gold = malloc(sizeof(int) * (n ? n : 1));
            if (pred && gold && !(s = ct_classify(m, va, &o, pred, NULL, &lab, &k))) {
                for (size_t i = 0; i < n; i++) gold[i] = ct_cls_dataset_get(va, i).label;
                ct_cls_metrics mt;
                memset(&mt, 0, sizeof mt);
                if (!(s = ct_cls_metrics_compute(gold, pred, n, k, &mt))) {
                    r->acc = mt.accuracy;
                    r->f1 = mt.macro_f1;
                    r->n_val = (long long)n;
                }
                ct_cls_metrics_deinit(&mt);
            }
            free(gold);
        }
        if (s && !r->err[0]) snprintf(r->err, sizeof r->err, "%s", ct_errmsg());
        ct_classify_labels_free(lab, k);
        free(pred);
        ct_cls_dataset_free(va);
        ct_cls_dataset_free(tr);
        r->seconds = now_s() - t0;
        r->ok = !s;
    } else {
        ct_head_train_opts o;
        ct_head_train_opts_default(&o);
        o.data_path = S->data;
        o.val_path = S->val;
        o.val_split = S->val_split;
        o.seed = S->seed;
        o.data = S->dopt;
        o.out_dir = dir;
        o.n_threads = S->threads;
        o.quiet = 1;
        if (strcmp(meth, "head")) {
            o.head_only = 0;
            o.method = !strcmp(meth, "lora")     ? CT_METHOD_LORA
                       : !strcmp(meth, "qlora")  ? CT_METHOD_QLORA
                       : !strcmp(meth, "prefix") ? CT_METHOD_PREFIX
                       : !strcmp(meth, "full")   ? CT_METHOD_FULL
                                                 : CT_METHOD_PROMPT;
            o.lr = o.method == CT_METHOD_PROMPT   ? 3e-2f
                   : o.method == CT_METHOD_PREFIX ? 1e-2f
                   : o.method == CT_METHOD_FULL   ? 5e-5f
                                                  : 1e-3f;
            o.epochs = 3;
            o.batch = 8;
            o.words = S->ww;
            o.word_labels = S->wl;
            o.n_words = S->nw;
            o.prefix = S->prefix;
            o.suffix = S->suffix;
        }
        ct_head_result hr;
        s = ct_head_train(m, &o, &hr);
        r->seconds = now_s() - t0;
        if (s) { snprintf(r->err, sizeof r->err, "%s", ct_errmsg()); }
        else {
            r->ok = 1;
            r->trainable = hr.trainable;
            r->acc = hr.val_accuracy;
            r->f1 = hr.val_macro_f1;
            r->n_val = (long long)hr.n_val;
            r->file_bytes = file_size(dir, !strcmp(meth, "head")   ? "head.safetensors"
                                           : !strcmp(meth, "full") ? "model.safetensors"
                                                                   : "adapter_model.safetensors");
        }
    }
    r->peak_mib = vm_hwm_mib();
    /* forgetting: only LoRA / QLoRA change the base's weights */
    if (r->ok && S->general) {
        if (!strcmp(meth, "lora") || !strcmp(meth, "qlora")) {
            ct_model *m2 = NULL;
            if (cli_load_model_adapter(S->path, S->tokpath, 0, dir, &m2) == CT_OK) r->ppl = perplexity(m2, S->general, S->threads);
            ct_model_free(m2);
        } else if (!strcmp(meth, "full")) {
            /* the fine-tuned weights as a language model: with tied embeddings the (trained)
               embedding table is the head; an untied base's head is not in a classifier */
            ct_model *m2 = NULL;
            if (ct_model_config(m)->tie_embeddings && cli_load_model(dir, S->tokpath, 0, &m2) == CT_OK)
                r->ppl = perplexity(m2, S->general, S->threads);
            else r->ppl = NAN;
            ct_model_free(m2);
        } else {
            r->ppl = -1; /* unchanged: the parent fills in the base's */
        }
    }
    ct_model_free(m);
}

int cmd_compare(int argc, char **argv) {
    setup S = {.val_split = 0.2, .seed = 42, .max_len = 256, .shots = 4};
    const char *methods = "zero-shot,few-shot,head,prompt,prefix,lora,qlora,full", *words = NULL, *csv = NULL, *json = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        long v;
        double d;
        if (!strcmp(a, "--data") && more) S.data = argv[++i];
        else if (!strcmp(a, "--val") && more) S.val = argv[++i];
        else if (!strcmp(a, "--general") && more) S.general = argv[++i];
        else if (!strcmp(a, "--methods") && more) methods = argv[++i];
        else if (!strcmp(a, "--words") && more) words = argv[++i];
        else if (!strcmp(a, "--prefix") && more) S.prefix = argv[++i];
        else if (!strcmp(a, "--suffix") && more) S.suffix = argv[++i];
        else if (!strcmp(a, "--csv") && more) csv = argv[++i];
        else if (!strcmp(a, "--json") && more) json = argv[++i];
        else if ((!strcmp(a, "-o") || !strcmp(a, "--out")) && more) S.work = argv[++i];
        else if (!strcmp(a, "--tokenizer") && more) S.tokpath = argv[++i];
        else if (!strcmp(a, "--text-column") && more) S.dopt.text_key = argv[++i];
        else if (!strcmp(a, "--label-column") && more) S.dopt.label_key = argv[++i];
        else if (!strcmp(a, "--val-split") && more) { if (!cli_parse_float(a, argv[++i], 0.01, 0.9, &d)) return 2; S.val_split = d; }
        else if (!strcmp(a, "--seed") && more) { if (!cli_parse_int(a, argv[++i], 0, 0x7fffffffL, &v)) return 2; S.seed = (uint64_t)v; }
        else if (!strcmp(a, "--max-len") && more) { if (!cli_parse_int(a, argv[++i], 2, 1 << 20, &v)) return 2; S.max_len = (int)v; }
        else if (!strcmp(a, "--shots") && more) { if (!cli_parse_int(a, argv[++i], 0, 64, &v)) return 2; S.shots = (int)v; }
        else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && more) { if (!cli_parse_int(a, argv[++i], 1, 256, &v)) return 2; S.threads = (int)v; }
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(USAGE, stdout); return 0; }
        else if (a[0] == '-') { fprintf(stderr, "ctune compare: unknown option '%s'\n%s", a, USAGE); return 2; }
        else if (!S.path) S.path = a;
        else { fprintf(stderr, "ctune compare: unexpected argument '%s'\n", a); return 2; }
    }
    if (!S.path || !S.data || !words || !S.work) { fputs(USAGE, stderr); return 2; }
    S.dopt.max_len = S.max_len;
    char *wbuf = strdup(words), *mbuf = strdup(methods);
    const char *wl[64], *ww[64], *ml[16];
    int nm = 0;
    for (char *tk = strtok(wbuf, ","); tk && S.nw < 64; tk = strtok(NULL, ",")) {
        char *eq = strchr(tk, '=');
        if (!eq || eq == tk || !eq[1]) { fprintf(stderr, "ctune compare: --words: '%s' is not LABEL=WORD\n", tk); return 2; }
        *eq = '\0';
        wl[S.nw] = tk;
        ww[S.nw++] = eq + 1;
    }
    S.wl = wl;
    S.ww = ww;
    static const char *const known[] = {"zero-shot", "few-shot", "head", "prompt", "prefix", "lora", "qlora", "full"};
    for (char *tk = strtok(mbuf, ","); tk && nm < 16; tk = strtok(NULL, ",")) {
        int ok = 0;
        for (int k = 0; k < 8; k++) ok |= !strcmp(tk, known[k]);
        if (!ok) {
            fprintf(stderr, "ctune compare: method '%s' is unknown; use %s\n", tk,
                    "zero-shot, few-shot, head, prompt, prefix, lora, qlora, full");
            return 2;
        }
        ml[nm++] = tk;
    }
    mkdir(S.work, 0777);
    /* the base's perplexity on the general text, once */
    double base_ppl = NAN;
    if (S.general) {
        ct_model *m = NULL;
        if (cli_load_model(S.path, S.tokpath, 0, &m) == CT_OK) base_ppl = perplexity(m, S.general, S.threads);
        ct_model_free(m);
    }
    row rows[16];
    memset(rows, 0, sizeof rows);
    for (int i = 0; i < nm; i++) {
        row *r = &rows[i];
        snprintf(r->method, sizeof r->method, "%s", ml[i]);
        r->ppl = NAN; /* no --general: no forgetting column */
        fprintf(stderr, "compare: %s ...\n", ml[i]);
        fflush(stderr);
        int fd[2];
        if (pipe(fd)) { snprintf(r->err, sizeof r->err, "pipe failed"); continue; }
        pid_t pid = fork();
        if (pid == 0) {
            close(fd[0]);
            row out = *r;
            run_method(&S, ml[i], &out);
            ssize_t w = write(fd[1], &out, sizeof out);
            _exit(w == (ssize_t)sizeof out ? 0 : 1);
        }
        close(fd[1]);
        row got;
        ssize_t n = pid > 0 ? read(fd[0], &got, sizeof got) : -1;
        close(fd[0]);
        int st = 0;
        if (pid > 0) waitpid(pid, &st, 0);
        if (n == (ssize_t)sizeof got) *r = got;
        else snprintf(r->err, sizeof r->err, "the child process failed (status %d)", st);
        if (r->ok && r->ppl < 0) r->ppl = base_ppl;
        if (!r->ok) fprintf(stderr, "compare: %s failed: %s\n", ml[i], r->err);
    }
    /* the table */
    printf("| method | trainable | %% of model | file | time | peak RSS | val accuracy | macro-F1 | general ppl |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < nm; i++) {
        const row *r = &rows[i];
        if (!r->ok) { printf("| %s | failed: %s |||||||\n", r->method, r->err); continue; }
        char fb[32];
        if (r->file_bytes >= 1 << 20) snprintf(fb, sizeof fb, "%.1f MiB", r->file_bytes / 1048576.0);
        else if (r->file_bytes > 0) snprintf(fb, sizeof fb, "%.1f KiB", r->file_bytes / 1024.0);
        else snprintf(fb, sizeof fb, "—");
        printf("| %s | %lld | %.3f%% | %s | %.1f s | %.0f MiB | %.4f | %.4f | ", r->method, r->trainable,
               100.0 * (double)r->trainable / (double)(r->n_params ? r->n_params : 1), fb, r->seconds, r->peak_mib,
               r->acc, r->f1);
        if (isnan(r->ppl)) printf("— |\n");
        else printf("%.3f (%+.3f) |\n", r->ppl, r->ppl - base_ppl);
    }
    if (S.general) printf("\nbase model's perplexity on %s: %.3f\n", S.general, base_ppl);
    FILE *fc = csv ? fopen(csv, "w") : NULL, *fj = json ? fopen(json, "w") : NULL;
    if (fc) fprintf(fc, "method,ok,trainable,pct_of_model,file_bytes,seconds,peak_rss_mib,val_accuracy,val_macro_f1,general_ppl,n_val\n");
    if (fj) fprintf(fj, "[\n");
    for (int i = 0; i < nm; i++) {
        const row *r = &rows[i];
        const double pct = 100.0 * (double)r->trainable / (double)(r->n_params ? r->n_params : 1);
        if (fc)
            fprintf(fc, "%s,%d,%lld,%.6f,%lld,%.3f,%.1f,%.6f,%.6f,%.6f,%lld\n", r->method, r->ok, r->trainable, pct,
                    r->file_bytes, r->seconds, r->peak_mib, r->acc, r->f1, r->ppl, r->n_val);
        if (fj)
            fprintf(fj, "  {\"method\": \"%s\", \"ok\": %s, \"trainable\": %lld, \"pct_of_model\": %.6f, \"file_bytes\": %lld, "
                    "\"seconds\": %.3f, \"peak_rss_mib\": %.1f, \"val_accuracy\": %.6f, \"val_macro_f1\": %.6f, "
                    "\"general_ppl\": ", r->method, r->ok ? "true" : "false", r->trainable, pct, r->file_bytes,
                    r->seconds, r->peak_mib, r->acc, r->f1);
        if (fj) {
            if (isnan(r->ppl)) fprintf(fj, "null");
            else fprintf(fj, "%.6f", r->ppl);
            fprintf(fj, ", \"n_val\": %lld}%s\n", r->n_val, i + 1 < nm ? "," : "");
        }
    }
    if (fj) fprintf(fj, "]\n");
    if (fc) fclose(fc);
    if (fj) fclose(fj);
    free(wbuf);
    free(mbuf);
    int bad = 0;
    for (int i = 0; i < nm; i++) bad |= !rows[i].ok;
    return bad;
}
