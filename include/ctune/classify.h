/* ctune/classify.h — classification data sets (texts with labels) and their
 * metrics (docs/classify.md).
 *
 * Data (src/train/cls_data.c): JSONL {"text","label"} rows, or TSV/CSV with a
 * header row naming the label and text columns, or a headerless
 * label<TAB>text file (the UCI SMS Spam Collection). Each text is encoded
 * with BOS as the tokenizer adds it (no EOS), cut to max_len tokens keeping
 * the start. The label set of a training file is sorted (integers
 * numerically, otherwise strings bytewise); validation/test files are loaded
 * against a given label set.
 *
 * Metrics (src/train/cls_metrics.c): accuracy, per-class precision / recall /
 * F1, macro averages, the confusion matrix, and its printer.
 */
#ifndef CTUNE_CLASSIFY_H
#define CTUNE_CLASSIFY_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "ctune/status.h"
#include "ctune/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- data -------------------------------------------------------------------------- */

typedef enum {
    CT_CLS_AUTO = 0, /* from the extension (.jsonl/.json/.ndjson, .tsv/.tab, .csv), else the contents */
    CT_CLS_JSONL,    /* one object per line, or one JSON array of objects */
    CT_CLS_TSV,      /* tab-separated; no quoting unless opts.quoting = CT_CLS_QUOTES */
    CT_CLS_CSV       /* comma-separated, RFC 4180 quoting */
} ct_cls_format;

enum { CT_CLS_QUOTES_AUTO = 0, CT_CLS_QUOTES = 1, CT_CLS_NO_QUOTES = 2 };
enum { CT_CLS_HEADER_AUTO = 0, CT_CLS_HEADER = 1, CT_CLS_NO_HEADER = 2 };

typedef struct {
    ct_cls_format format;   /* CT_CLS_AUTO to detect */
    const char *label_key;  /* JSON key / column name of the label; NULL = "label" */
    const char *text_key;   /* JSON key / column of the text; NULL = the first of "text",
                               "sentence", "content" present (a 2-column file: the other column) */
    int header;             /* TSV/CSV: CT_CLS_HEADER_AUTO (see ct_cls_dataset_load), _HEADER, _NO_HEADER */
    int quoting;            /* CT_CLS_QUOTES_AUTO: CSV quoted (RFC 4180), TSV not (as GLUE reads it) */
    int max_len;            /* truncate each text to this many tokens (BOS included), keeping the
                               start; 0 = no limit */
    int skip_bad_rows;      /* skip and count malformed rows (and empty texts) instead of failing */
    int skip_unseen_labels; /* with a given label set: skip and count rows whose label is not in it */
    int allow_unlabeled;    /* a file without labels loads, every label -1 (for predictions only) */
} ct_cls_opts;

typedef struct {
    const int32_t *ids; /* (n) token ids, BOS first when the tokenizer adds it */
    int n;
    int label;          /* index into the label set, or -1 (unlabeled file) */
    int line;           /* source line where the row starts (JSON array: element index + 1) */
    int truncated;      /* 1 when cut to max_len */
} ct_cls_example;

typedef struct {
    size_t n_examples;
    size_t n_tokens;      /* sum of example lengths */
    size_t n_truncated;   /* examples cut to max_len */
    size_t n_bad_rows;    /* rows skipped with skip_bad_rows */
    size_t n_unseen;      /* rows skipped with skip_unseen_labels */
    int max_tokens;       /* longest example (after truncation) */
    int n_labels;
    int n_empty_classes;  /* labels of the label set with no example in this file */
} ct_cls_stats;

typedef struct ct_cls_dataset ct_cls_dataset;

/* Load a training file: its label set is every label it holds, sorted (all
 * labels canonical integers -> numerically, else bytewise), as strings ("0",
 * "1" / "ham", "spam"). TSV/CSV header rule (CT_CLS_HEADER_AUTO): the first
 * row is a header when one of its fields is the label column name; else, when
 * one is a text column name, a header without a label column (an error unless
 * allow_unlabeled); else the file has no header and each row is label, text
 * (2 fields). Malformed rows (bad JSON, wrong field count, missing key, a
 * label neither string nor integer, an empty label or text) fail with
 * CT_ERR_FORMAT naming file:line, e.g. "spam.tsv:17: empty text"; with
 * skip_bad_rows they are skipped, counted and their first messages kept
 * (ct_cls_dataset_bad_rows). A file with no example is an error.
 * tok is only used during the call. *out is freed with ct_cls_dataset_free. */
ct_status ct_cls_dataset_load(const char *path, const ct_tokenizer *tok, const ct_cls_opts *opts,
                              ct_cls_dataset **out);

/* Load a validation/test file against labels[0..n_labels) (distinct strings,
 * e.g. ct_cls_dataset_labels of the training set, or the label set saved with
 * a head); label i keeps index i. A label not in the set fails with
 * CT_ERR_FORMAT: "dev.tsv:5: label 'neutral' is not in the label set (0, 1)",
 * or, with skip_unseen_labels, is skipped and counted. Classes with no
 * example here are counted (ct_cls_stats.n_empty_classes, a warning is logged). */
ct_status ct_cls_dataset_load_labels(const char *path, const ct_tokenizer *tok, const ct_cls_opts *opts,
                                     const char *const *labels, int n_labels, ct_cls_dataset **out);
void ct_cls_dataset_free(ct_cls_dataset *ds);

size_t ct_cls_dataset_size(const ct_cls_dataset *ds);
/* Example i (0 <= i < size); the pointers live as long as ds. */
ct_cls_example ct_cls_dataset_get(const ct_cls_dataset *ds, size_t i);
int ct_cls_dataset_has_labels(const ct_cls_dataset *ds);  /* 0 for an unlabeled file */
int ct_cls_dataset_num_labels(const ct_cls_dataset *ds);
const char *ct_cls_dataset_label(const ct_cls_dataset *ds, int i);  /* NULL outside [0, n_labels) */
const char *const *ct_cls_dataset_labels(const ct_cls_dataset *ds); /* (n_labels), lives as long as ds */
int ct_cls_dataset_label_index(const ct_cls_dataset *ds, const char *label); /* -1 if absent */
size_t ct_cls_dataset_class_count(const ct_cls_dataset *ds, int i); /* examples with label i */
ct_cls_format ct_cls_dataset_format(const ct_cls_dataset *ds);     /* as detected */
int ct_cls_dataset_has_header(const ct_cls_dataset *ds);           /* TSV/CSV: 1 when a header row was read */
const char *ct_cls_format_name(ct_cls_format f);                   /* "auto", "jsonl", "tsv", "csv" */
void ct_cls_dataset_stats(const ct_cls_dataset *ds, ct_cls_stats *st);
/* Rows skipped (skip_bad_rows); *msgs (if not NULL) gets the first few
 * messages, one per line ("" when none). */
size_t ct_cls_dataset_bad_rows(const ct_cls_dataset *ds, const char **msgs);

/* One line: "4574 examples (tsv, no header: label<TAB>text), 2 labels (ham 3957,
 * spam 617), 98812 tokens, longest 180, 12 truncated". */
void ct_cls_dataset_summary(const ct_cls_dataset *ds, char *buf, size_t cap);

/* Stratified deterministic split: within each class (in label order) the
 * examples are shuffled by one xoshiro256** stream seeded with seed, and the
 * first round(fraction * n_c) of class c go to *val, never all of a class
 * (at least one stays in *train); when that gives no validation example at
 * all, one of the largest class is taken. Both outputs keep file order and
 * the full label set; they are new datasets. fraction in [0, 1). */
ct_status ct_cls_dataset_split(const ct_cls_dataset *ds, double fraction, uint64_t seed,
                               ct_cls_dataset **train, ct_cls_dataset **val);

/* ---- metrics ----------------------------------------------------------------------- */

typedef struct {
    int n_labels;          /* K */
    size_t n;              /* examples scored */
    size_t correct;
    double accuracy;       /* correct / n (0 when n = 0) */
    double macro_precision, macro_recall, macro_f1; /* means over the classes present in gold or
                                                       predictions (n_classes_averaged of them) */
    int n_classes_averaged;
    size_t *confusion;     /* (K, K): [gold * K + pred] */
    size_t *support;       /* (K) gold count */
    size_t *predicted;     /* (K) predicted count */
    double *precision, *recall, *f1; /* (K); 0 where the denominator is 0 */
} ct_cls_metrics;

/* Metrics of pred against gold, each (n) label indices in [0, K); a value
 * outside it is CT_ERR_RANGE naming the example. m is caller-owned; its arrays
 * are allocated here and released by ct_cls_metrics_deinit (also after failure). */
ct_status ct_cls_metrics_compute(const int *gold, const int *pred, size_t n, int K, ct_cls_metrics *m);
void ct_cls_metrics_deinit(ct_cls_metrics *m);

/* The report `ctune classify` prints: accuracy and macro-F1, a per-class
 * precision/recall/F1/support table and the confusion matrix (rows gold,
 * columns predicted), with labels[0..K) as names (NULL: the indices).
 * _format writes at most cap bytes (NUL-terminated when cap > 0) and returns
 * the full length, as snprintf does; _print writes to f. */
size_t ct_cls_metrics_format(const ct_cls_metrics *m, const char *const *labels, char *buf, size_t cap);
ct_status ct_cls_metrics_print(const ct_cls_metrics *m, const char *const *labels, FILE *f);

#ifdef __cplusplus
}
#endif
#endif
