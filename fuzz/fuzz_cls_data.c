/* fuzz/fuzz_cls_data.c — libFuzzer target for the classification data loader
 * (src/train/cls_data.c: JSONL / JSON array, TSV, CSV with quotes) and the
 * metrics on what it loads (src/train/cls_metrics.c).
 *
 * Input: byte 0 picks the file name (.jsonl, .tsv, .csv, or no extension:
 * detected from the contents) and whether a fixed label set {"0", "1", "ham"}
 * is given; byte 1 the options (header auto/on/off, quoting auto/on/off,
 * skip_bad_rows, skip_unseen_labels, allow_unlabeled, max_len); the rest is
 * the file. Tokenizer: stories260K's tok512.bin from $CTUNE_SHARED.
 * On success: 1 <= n <= max_len tokens per example with ids in the
 * vocabulary, labels in [0, K) (or all -1 for an unlabeled file), class
 * counts that add up, a training label set that is sorted and distinct, a
 * stratified split that partitions the examples, and a metrics report whose
 * length _format predicts. On failure the message names the file.
 * Seeds: fuzz/seeds/cls_data/. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctune/classify.h"
#include "ctune/ctune.h"

static ct_tokenizer *g_tok;
static char g_path[4][256];

static void setup(void) {
    char p[1024];
    const char *sh = getenv("CTUNE_SHARED");
    snprintf(p, sizeof p, "%s/models/stories260K/tok512.bin", sh ? sh : "../shared");
    if (ct_tokenizer_load(p, &g_tok) != CT_OK) {
        fprintf(stderr, "fuzz_cls_data: no tokenizer (%s): %s\n", p, ct_errmsg());
        abort();
    }
    static const char *ext[4] = {".jsonl", ".tsv", ".csv", ""};
    for (int i = 0; i < 4; i++) snprintf(g_path[i], sizeof g_path[i], "/tmp/ctune-fuzz-cls-%d%s", (int)getpid(), ext[i]);
    ct_set_log(NULL, NULL, CT_LOG_ERROR + 1); /* the loader's warnings would flood the output */
}

static void check_metrics(const ct_cls_dataset *ds) {
    size_t n = ct_cls_dataset_size(ds);
    int K = ct_cls_dataset_num_labels(ds);
    int *gold = malloc(n * sizeof *gold), *pred = malloc(n * sizeof *pred);
    if (!gold || !pred) abort();
    for (size_t i = 0; i < n; i++) {
        gold[i] = ct_cls_dataset_get(ds, i).label;
        pred[i] = (int)((i * 7 + (size_t)gold[i]) % (size_t)K);
    }
    ct_cls_metrics m;
    if (ct_cls_metrics_compute(gold, pred, n, K, &m) != CT_OK) abort();
    size_t sum = 0;
    for (size_t i = 0; i < (size_t)K * (size_t)K; i++) sum += m.confusion[i];
    if (sum != n || m.accuracy < 0 || m.accuracy > 1 || m.macro_f1 < 0 || m.macro_f1 > 1 + 1e-12) abort();
    size_t len = ct_cls_metrics_format(&m, ct_cls_dataset_labels(ds), NULL, 0);
    char *buf = malloc(len + 1);
    if (!buf || ct_cls_metrics_format(&m, ct_cls_dataset_labels(ds), buf, len + 1) != len || strlen(buf) > len) abort();
    free(buf);
    ct_cls_metrics_deinit(&m);
    free(gold);
    free(pred);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_tok) setup();
    if (size < 2) return 0;
    const char *path = g_path[data[0] & 3];
    int fixed = (data[0] >> 2) & 1;
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size > 2 && fwrite(data + 2, 1, size - 2, f) != size - 2) abort();
    fclose(f);

    uint8_t b = data[1];
    ct_cls_opts o = {0};
    o.header = (b & 3) % 3;
    o.quoting = ((b >> 2) & 3) % 3;
    o.skip_bad_rows = (b >> 4) & 1;
    o.skip_unseen_labels = (b >> 5) & 1;
    o.allow_unlabeled = (b >> 6) & 1;
    o.max_len = (b >> 7) ? 3 + (data[0] >> 4) : 0;
    static const char *const set[3] = {"0", "1", "ham"};
    ct_cls_dataset *ds = NULL;
    ct_status s = fixed ? ct_cls_dataset_load_labels(path, g_tok, &o, set, 3, &ds)
                        : ct_cls_dataset_load(path, g_tok, &o, &ds);
    if (s != CT_OK) {
        if (ds) abort();
        const char *slash = strrchr(path, '/');
        if (!strstr(ct_errmsg(), slash + 1)) {
            fprintf(stderr, "error message without the file name: %s\n", ct_errmsg());
            abort();
        }
        return 0;
    }
    const int V = ct_tokenizer_vocab_size(g_tok), K = ct_cls_dataset_num_labels(ds);
    const int labeled = ct_cls_dataset_has_labels(ds);
    size_t n = ct_cls_dataset_size(ds), tokens = 0, trunc = 0;
    if (n == 0 || (fixed && K != 3) || (labeled && K < 1) || (!labeled && !fixed && K != 0)) abort();
    size_t *count = calloc((size_t)K + 1, sizeof *count);
    if (!count) abort();
    for (size_t i = 0; i < n; i++) {
        ct_cls_example e = ct_cls_dataset_get(ds, i);
        if (e.n < 1 || (o.max_len && e.n > o.max_len) || e.line < 1) abort();
        if (labeled ? e.label < 0 || e.label >= K : e.label != -1) abort();
        for (int k = 0; k < e.n; k++)
            if (e.ids[k] < 0 || e.ids[k] >= V) abort();
        if (labeled) count[e.label]++;
        tokens += (size_t)e.n;
        trunc += (size_t)e.truncated;
    }
    for (int c = 0; c < K; c++) {
        if (count[c] != ct_cls_dataset_class_count(ds, c)) abort();
        if (!fixed && !count[c]) abort(); /* a training label set holds only labels seen */
        if (ct_cls_dataset_label_index(ds, ct_cls_dataset_label(ds, c)) != c) abort(); /* distinct */
        if (!fixed && c && strcmp(ct_cls_dataset_label(ds, c - 1), ct_cls_dataset_label(ds, c)) == 0) abort();
    }
    free(count);
    ct_cls_stats st;
    ct_cls_dataset_stats(ds, &st);
    if (st.n_examples != n || st.n_tokens != tokens || st.n_truncated != trunc) abort();
    const char *msgs = NULL;
    if (ct_cls_dataset_bad_rows(ds, &msgs) != st.n_bad_rows || !msgs) abort();
    char line[512];
    ct_cls_dataset_summary(ds, line, sizeof line);
    if (strlen(line) >= sizeof line) abort();
    if (labeled) {
        check_metrics(ds);
        ct_cls_dataset *tr = NULL, *va = NULL;
        ct_status ss = ct_cls_dataset_split(ds, 0.25, b, &tr, &va);
        if (ss == CT_OK && ct_cls_dataset_size(tr) + ct_cls_dataset_size(va) != n) abort();
        if (ss == CT_OK && ct_cls_dataset_num_labels(tr) != K) abort();
        if (ss != CT_OK && (tr || va)) abort();
        ct_cls_dataset_free(tr);
        ct_cls_dataset_free(va);
    }
    ct_cls_dataset_free(ds);
    return 0;
}
