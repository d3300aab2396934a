/* cli/cmd_classify.c — `ctune classify MODEL --data FILE (--head DIR | --words ...)`
 * (predictions and, with gold labels, accuracy, macro-F1 and the confusion
 * matrix) and `ctune train MODEL --method head ...` (a linear head on the
 * frozen base). docs/classify.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "ctune/cls_train.h"

static const char *CLS_USAGE =
    "usage: ctune classify MODEL --data FILE [--head DIR | --words LABEL=WORD,...] [--adapter DIR] [options]\n"
    "  --head DIR           what `ctune train --task classify` wrote: a head, a LoRA + head, prompt or\n"
    "                       prefix adapter (its label set), or a fully fine-tuned classifier directory\n"
    "  (neither)            MODEL is a *ForSequenceClassification checkpoint (its score head, id2label)\n"
    "  --adapter DIR        a trained classifier (as --head), or a language-model adapter (LoRA/QLoRA:\n"
    "                       merged; prompt/prefix: its virtual tokens) under --words\n"
    "  --words L=W,L=W      label words: each label is scored by the model's next-token logit of\n"
    "                       its word after the prompt (zero-shot), e.g. --words 'ham= normal,spam= spam'\n"
    "  --prefix TEXT        prompt text before each example (default none)\n"
    "  --suffix TEXT        prompt text after it, before the label word (default \"\\nLabel:\")\n"
    "  --shots K --shots-from FILE   few-shot: K demonstrations (one per class in turn) from FILE\n"
    "  --text-column C --label-column L   columns / JSON keys (defaults: text|sentence|content, label)\n"
    "  --max-len N          tokens per text (head; default 256) or per prompt (words; default 512)\n"
    "  --base-dtype nf4|q8|bf16   read the frozen base converted   --precision f32|bf16\n"
    "  --predictions FILE   write line<TAB>gold<TAB>predicted per example\n"
    "  -t THREADS  --tokenizer F  --skip-bad-rows\n";

static const char *HEAD_USAGE =
    "usage: ctune train MODEL --method head --data FILE -o DIR [options]\n"
    "       ctune train MODEL --task classify --method lora|qlora|full|prompt|prefix --data FILE -o DIR\n"
    "  head: a linear head (score.weight, K x hidden) over the frozen base's final hidden state at\n"
    "  the last token; the features are computed once, then the head trains in seconds\n"
    "  lora|qlora: LoRA on the base and the head trained together (PEFT SEQ_CLS adapter, score in\n"
    "  modules_to_save); --r (8) --alpha (16) --targets (q,v); lr default 1e-3, epochs 3\n"    "  full: every weight and the head (transformers' *ForSequenceClassification directory); lr 5e-5\n"
    "  prompt: prompt tuning scored by label words, --words LABEL=WORD,... [--prefix T --suffix T]\n"
    "  --num-virtual-tokens K (8); lr default 3e-2 (PEFT PROMPT_TUNING adapter + the words)\n"
    "  prefix: prefix tuning, the same way: K learned keys/values per layer, starting as the cache of\n"
    "  K sampled tokens, or --prefix-projection H (PEFT's MLP); lr default 1e-2 (PREFIX_TUNING adapter)\n"
    "  --val FILE | --val-split F (0.1, stratified)   --epochs N (30)  --batch N (32)  --lr X (1e-2)\n"
    "  --weight-decay X (0.01)  --patience N (5 epochs without a better val score)  --seed S\n"
    "  --early-stop accuracy|loss  what the best epoch and the patience look at (default accuracy)\n"
    "  --text-column C --label-column L  --max-len N (256)  --skip-bad-rows\n"
    "  --base-dtype nf4|q8|bf16  --precision f32|bf16  -t THREADS  --tokenizer F  --quiet\n";

static int parse_base(const char *cmd, const char *b, ct_base_dtype *out) {
    if (!strcmp(b, "nf4")) *out = CT_BASE_NF4;
    else if (!strcmp(b, "q8")) *out = CT_BASE_Q8;
    else if (!strcmp(b, "bf16")) *out = CT_BASE_BF16;
    else { fprintf(stderr, "ctune %s: --base-dtype %s: use nf4, q8 or bf16\n", cmd, b); return 0; }
    return 1;
}

int cmd_train_head(int argc, char **argv) {
    const char *path = NULL, *tokpath = NULL;
    ct_head_train_opts o;
    ct_head_train_opts_default(&o);
    int lr_set = 0, ep_set = 0, b_set = 0;
    const char *words = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        long v;
        double d;
        if (!strcmp(a, "--method") && more) {
            const char *mm = argv[++i];
            if (!strcmp(mm, "head")) o.head_only = 1;
            else if (!strcmp(mm, "lora")) { o.head_only = 0; o.method = CT_METHOD_LORA; }
            else if (!strcmp(mm, "qlora")) { o.head_only = 0; o.method = CT_METHOD_QLORA; }
            else if (!strcmp(mm, "prompt")) { o.head_only = 0; o.method = CT_METHOD_PROMPT; }
            else if (!strcmp(mm, "prefix")) { o.head_only = 0; o.method = CT_METHOD_PREFIX; }
            else if (!strcmp(mm, "full")) { o.head_only = 0; o.method = CT_METHOD_FULL; }
            else {
                fprintf(stderr, "ctune train --task classify: --method %s: use head, lora, qlora, full, prompt or prefix\n", mm);
                return 2;
            }
        }
        else if (!strcmp(a, "--task") && more) i++; /* classify (checked by cmd_train) */
        else if (!strcmp(a, "--targets") && more) o.targets = argv[++i];
        else if (!strcmp(a, "--words") && more) words = argv[++i];
        else if (!strcmp(a, "--prefix") && more) o.prefix = argv[++i];
        else if (!strcmp(a, "--suffix") && more) o.suffix = argv[++i];
        else if (!strcmp(a, "--num-virtual-tokens") && more) { if (!cli_parse_int(a, argv[++i], 1, 4096, &v)) return 2; o.num_virtual_tokens = (int)v; }
        else if (!strcmp(a, "--prefix-projection") && more) { if (!cli_parse_int(a, argv[++i], 1, 65536, &v)) return 2; o.prefix_projection = (int)v; }
        else if (!strcmp(a, "--r") && more) { if (!cli_parse_int(a, argv[++i], 1, 4096, &v)) return 2; o.lora_r = (int)v; }
        else if (!strcmp(a, "--alpha") && more) { if (!cli_parse_float(a, argv[++i], 0, 1e6, &d)) return 2; o.lora_alpha = (float)d; }
        else if (!strcmp(a, "--data") && more) o.data_path = argv[++i];
        else if (!strcmp(a, "--val") && more) o.val_path = argv[++i];
        else if ((!strcmp(a, "-o") || !strcmp(a, "--out")) && more) o.out_dir = argv[++i];
        else if (!strcmp(a, "--tokenizer") && more) tokpath = argv[++i];
        else if (!strcmp(a, "--text-column") && more) o.data.text_key = argv[++i];
        else if (!strcmp(a, "--label-column") && more) o.data.label_key = argv[++i];
        else if (!strcmp(a, "--base-dtype") && more) { if (!parse_base("train", argv[++i], &o.base_dtype)) return 2; }
        else if (!strcmp(a, "--precision") && more) o.bf16 = !strcmp(argv[++i], "bf16");
        else if (!strcmp(a, "--val-split") && more) { if (!cli_parse_float(a, argv[++i], 0, 0.9, &d)) return 2; o.val_split = d; }
        else if (!strcmp(a, "--lr") && more) { if (!cli_parse_float(a, argv[++i], 0, 10, &d)) return 2; o.lr = (float)d; lr_set = 1; }
        else if (!strcmp(a, "--weight-decay") && more) { if (!cli_parse_float(a, argv[++i], 0, 10, &d)) return 2; o.weight_decay = (float)d; }
        else if (!strcmp(a, "--epochs") && more) { if (!cli_parse_int(a, argv[++i], 1, 100000, &v)) return 2; o.epochs = (int)v; ep_set = 1; }
        else if (!strcmp(a, "--batch") && more) { if (!cli_parse_int(a, argv[++i], 1, 1 << 20, &v)) return 2; o.batch = (int)v; b_set = 1; }
        else if (!strcmp(a, "--early-stop") && more) {
            const char *w = argv[++i];
            if (!strcmp(w, "loss")) o.early_stop_loss = 1;
            else if (!strcmp(w, "accuracy")) o.early_stop_loss = 0;
            else { fprintf(stderr, "ctune train: --early-stop %s: use accuracy or loss\n", w); return 2; }
        }
        else if (!strcmp(a, "--patience") && more) { if (!cli_parse_int(a, argv[++i], 0, 100000, &v)) return 2; o.patience = (int)v; }
        else if (!strcmp(a, "--max-len") && more) { if (!cli_parse_int(a, argv[++i], 2, 1 << 20, &v)) return 2; o.data.max_len = (int)v; }
        else if (!strcmp(a, "--seed") && more) { if (!cli_parse_int(a, argv[++i], 0, 0x7fffffffL, &v)) return 2; o.seed = (uint64_t)v; }
        else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && more) { if (!cli_parse_int(a, argv[++i], 1, 256, &v)) return 2; o.n_threads = (int)v; }
        else if (!strcmp(a, "--skip-bad-rows")) o.data.skip_bad_rows = 1;
        else if (!strcmp(a, "--quiet")) o.quiet = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(HEAD_USAGE, stdout); return 0; }
        else if (a[0] == '-') { fprintf(stderr, "ctune train --method head: unknown option '%s'\n%s", a, HEAD_USAGE); return 2; }
        else if (!path) path = a;
        else { fprintf(stderr, "ctune train: unexpected argument '%s'\n", a); return 2; }
    }
    if (!path || !o.data_path || !o.out_dir) { fputs(HEAD_USAGE, stderr); return 2; }
    char *wbuf = NULL;
    const char *wl[64], *ww[64];
    if (words) { /* label=word,... */
        wbuf = strdup(words);
        for (char *tk = strtok(wbuf, ","); tk && o.n_words < 64; tk = strtok(NULL, ",")) {
            char *eq = strchr(tk, '=');
            if (!eq || eq == tk || !eq[1]) { fprintf(stderr, "ctune train: --words: '%s' is not LABEL=WORD\n", tk); free(wbuf); return 2; }
            *eq = '\0';
            wl[o.n_words] = tk;
            ww[o.n_words++] = eq + 1;
        }
        o.words = ww;
        o.word_labels = wl;
    }
    const int soft = o.method == CT_METHOD_PROMPT || o.method == CT_METHOD_PREFIX;
    if (!o.head_only && soft && !words) {
        fprintf(stderr, "ctune train --task classify --method %s: give the label words, --words LABEL=WORD,...\n",
                o.method == CT_METHOD_PREFIX ? "prefix" : "prompt");
        return 2;
    }
    if (o.prefix_projection && (o.head_only || o.method != CT_METHOD_PREFIX)) {
        fprintf(stderr, "ctune train: --prefix-projection is for --method prefix\n");
        return 2;
    }
    if (!o.head_only && !lr_set)
        o.lr = o.method == CT_METHOD_PROMPT   ? 3e-2f
               : o.method == CT_METHOD_PREFIX ? 1e-2f
               : o.method == CT_METHOD_FULL   ? 5e-5f
                                              : 1e-3f;
    if (!o.head_only && !ep_set) o.epochs = 3;
    if (!o.head_only && !b_set) o.batch = 8;
    ct_model *m = NULL;
    ct_status s = cli_load_model(path, tokpath, 0, &m);
    if (s) { free(wbuf); return cli_fail(path, s); }
    ct_head_result r;
    s = ct_head_train(m, &o, &r);
    ct_model_free(m);
    free(wbuf);
    if (s) return cli_fail("train", s);
    if (o.head_only)
        fprintf(stderr, "done: head of %d labels (%lld parameters), features %.1f s, head %.2f s (%d epochs, best %d)",
                r.n_labels, (long long)r.trainable, r.feature_seconds, r.train_seconds, r.epochs_run, r.best_epoch);
    else
        fprintf(stderr, "done: %s of %d labels (%lld trainable parameters), %.1f s (%d epochs, best %d)",
                o.method == CT_METHOD_PROMPT   ? "prompt tuning"
                : o.method == CT_METHOD_PREFIX ? "prefix tuning"
                : o.method == CT_METHOD_FULL   ? "full fine-tuning + head"
                                               : "LoRA + head",
                r.n_labels, (long long)r.trainable,
                r.train_seconds, r.epochs_run, r.best_epoch);
    if (r.n_val)
        fprintf(stderr, ", val accuracy %.4f, macro-F1 %.4f (%zu examples)", r.val_accuracy, r.val_macro_f1, r.n_val);
    if (r.n_truncated) fprintf(stderr, ", %zu texts truncated to %d tokens", r.n_truncated, o.data.max_len);
    fprintf(stderr, ", peak RSS %.1f MiB\nhead written to %s\n", (double)r.peak_rss_bytes / 1048576.0, o.out_dir);
    return 0;
}

/* A Hugging Face model directory (config.json) that is not an adapter: a fully fine-tuned classifier. */
static int is_model_dir(const char *dir) {
    char a[4096], b[4096];
    snprintf(a, sizeof a, "%s/config.json", dir);
    snprintf(b, sizeof b, "%s/adapter_config.json", dir);
    return access(a, F_OK) == 0 && access(b, F_OK) != 0;
}

int cmd_classify(int argc, char **argv) {
    const char *path = NULL, *tokpath = NULL, *data = NULL, *head = NULL, *words = NULL, *shots_from = NULL;
    const char *preds = NULL, *adapter = NULL, *soft = NULL;
    ct_classify_opts o = {0};
    ct_cls_opts dopt = {0};
    int shots = 0, maxlen = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        long v;
        if (!strcmp(a, "--data") && more) data = argv[++i];
        else if (!strcmp(a, "--head") && more) head = argv[++i];
        else if (!strcmp(a, "--adapter") && more) adapter = argv[++i];
        else if (!strcmp(a, "--words") && more) words = argv[++i];
        else if (!strcmp(a, "--prefix") && more) o.prefix = argv[++i];
        else if (!strcmp(a, "--suffix") && more) o.suffix = argv[++i];
        else if (!strcmp(a, "--shots-from") && more) shots_from = argv[++i];
        else if (!strcmp(a, "--predictions") && more) preds = argv[++i];
        else if (!strcmp(a, "--tokenizer") && more) tokpath = argv[++i];
        else if (!strcmp(a, "--text-column") && more) dopt.text_key = argv[++i];
        else if (!strcmp(a, "--label-column") && more) dopt.label_key = argv[++i];
        else if (!strcmp(a, "--base-dtype") && more) { if (!parse_base("classify", argv[++i], &o.base_dtype)) return 2; }
        else if (!strcmp(a, "--precision") && more) o.bf16 = !strcmp(argv[++i], "bf16");
        else if (!strcmp(a, "--shots") && more) { if (!cli_parse_int(a, argv[++i], 0, 64, &v)) return 2; shots = (int)v; }
        else if (!strcmp(a, "--max-len") && more) { if (!cli_parse_int(a, argv[++i], 2, 1 << 20, &v)) return 2; maxlen = (int)v; }
        else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && more) { if (!cli_parse_int(a, argv[++i], 1, 256, &v)) return 2; o.n_threads = (int)v; }
        else if (!strcmp(a, "--skip-bad-rows")) dopt.skip_bad_rows = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(CLS_USAGE, stdout); return 0; }
        else if (a[0] == '-') { fprintf(stderr, "ctune classify: unknown option '%s'\n%s", a, CLS_USAGE); return 2; }
        else if (!path) path = a;
        else { fprintf(stderr, "ctune classify: unexpected argument '%s'\n", a); return 2; }
    }
    if (!path || !data || (head && words) || (head && adapter)) { fputs(CLS_USAGE, stderr); return 2; }
    if (adapter) { /* what kind of adapter: a trained classifier, or a language-model one for the words */
        char hc[4096];
        snprintf(hc, sizeof hc, "%s/head_config.json", adapter);
        if (access(hc, F_OK) == 0 || is_model_dir(adapter)) {
            if (words) {
                fprintf(stderr, "ctune classify: %s is a trained classifier with its own labels; drop --words\n", adapter);
                return 2;
            }
            head = adapter;
            adapter = NULL;
        } else if (!words) {
            fprintf(stderr, "ctune classify: %s is a language-model adapter: give the label words, --words L=W,...\n",
                    adapter);
            return 2;
        } else if (ct_adapter_is_soft_prompt(adapter)) {
            soft = adapter;
            adapter = NULL;
        }
    }
    if (head && is_model_dir(head)) path = head, head = NULL; /* full fine-tuning's output: the model itself */
    /* --words "ham= normal,spam= spam": labels and their words */
    char *wbuf = NULL;
    const char *labs[64], *wds[64];
    int K = 0;
    if (words) {
        wbuf = strdup(words);
        for (char *tok = strtok(wbuf, ","); tok && K < 64; tok = strtok(NULL, ",")) {
            char *eq = strchr(tok, '=');
            if (!eq || eq == tok || !eq[1]) {
                fprintf(stderr, "ctune classify: --words: '%s' is not LABEL=WORD\n", tok);
                free(wbuf);
                return 2;
            }
            *eq = '\0';
            labs[K] = tok;
            wds[K++] = eq + 1;
        }
        o.words = wds;
        o.labels = labs;
        o.n_labels = K;
    }
    ct_model *m = NULL;
    ct_status s = adapter ? cli_load_model_adapter(path, tokpath, 0, adapter, &m) : cli_load_model(path, tokpath, 0, &m);
    if (s) { free(wbuf); return cli_fail(adapter ? adapter : path, s); }
    ct_tokenizer *tok = ct_model_tokenizer(m);
    ct_cls_dataset *d = NULL, *sd = NULL;
    int *pred = NULL;
    char **labels = NULL;
    int k = 0, rc = 0;
    dopt.max_len = maxlen ? maxlen : (head || !words) ? 256 : 0;
    dopt.allow_unlabeled = 1;
    o.max_len = maxlen;
    if (head) { /* the data is read against the head's label set */
        s = ct_head_labels(head, &labels, &k);
        if (!s) s = ct_cls_dataset_load_labels(data, tok, &dopt, (const char *const *)labels, k, &d);
    } else if (!words) { /* a *ForSequenceClassification checkpoint: its own labels */
        if (!ct_model_config(m)->num_labels) {
            fprintf(stderr, "ctune classify: %s has no classifier head: give --head DIR (a trained head or "
                    "adapter) or --words LABEL=WORD,...\n", path);
            rc = 2;
            goto done;
        }
        s = ct_model_labels(m, &labels, &k);
        if (!s) s = ct_cls_dataset_load_labels(data, tok, &dopt, (const char *const *)labels, k, &d);
    } else {
        s = ct_cls_dataset_load_labels(data, tok, &dopt, labs, K, &d);
    }
    if (!s && shots_from) {
        o.n_shots = shots;
        s = ct_cls_dataset_load_labels(shots_from, tok, &dopt, labs, K, &sd);
        o.shots = sd;
    }
    if (s) { rc = cli_fail(data, s); goto done; }
    char sum[512];
    ct_cls_dataset_summary(d, sum, sizeof sum);
    fprintf(stderr, "data: %s\n", sum);
    const size_t n = ct_cls_dataset_size(d);
    pred = malloc(sizeof(int) * (n ? n : 1));
    char **lab2 = NULL;
    int k2 = 0;
    o.head_dir = head ? head : soft;
    if (!pred) { rc = cli_fail("classify", CT_ERR_NOMEM); goto done; }
    if ((s = ct_classify(m, d, &o, pred, NULL, &lab2, &k2))) { rc = cli_fail("classify", s); goto done; }
    FILE *pf = preds ? fopen(preds, "w") : NULL;
    if (preds && !pf) { fprintf(stderr, "ctune classify: cannot write %s\n", preds); rc = 1; }
    for (size_t i = 0; pf && i < n; i++) {
        ct_cls_example e = ct_cls_dataset_get(d, i);
        fprintf(pf, "%d\t%s\t%s\n", e.line, e.label >= 0 ? lab2[e.label] : "", lab2[pred[i]]);
    }
    if (pf) fclose(pf);
    if (ct_cls_dataset_has_labels(d)) {
        int *gold = malloc(sizeof(int) * (n ? n : 1));
        ct_cls_metrics mt;
        memset(&mt, 0, sizeof mt);
        for (size_t i = 0; gold && i < n; i++) gold[i] = ct_cls_dataset_get(d, i).label;
        if (gold && !(s = ct_cls_metrics_compute(gold, pred, n, k2, &mt))) ct_cls_metrics_print(&mt, (const char *const *)lab2, stdout);
        else rc = cli_fail("metrics", s ? s : CT_ERR_NOMEM);
        ct_cls_metrics_deinit(&mt);
        free(gold);
    } else {
        for (size_t i = 0; i < n; i++) printf("%s\n", lab2[pred[i]]);
    }
    ct_classify_labels_free(lab2, k2);
done:
    ct_classify_labels_free(labels, k);
    free(pred);
    ct_cls_dataset_free(d);
    ct_cls_dataset_free(sd);
    ct_model_free(m);
    free(wbuf);
    return rc;
}
