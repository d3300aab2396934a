/* ctune/data.h — training examples from a data file: token ids and a loss mask.
 *
 * Formats (docs/data.md): JSONL (one object per line, blank lines skipped) or
 * a .json file holding one array of objects, with rows of one kind per file
 * (detected from the first row's keys unless forced):
 *   {"text"}                               all tokens trained
 *   {"prompt","completion"}                completion trained
 *   {"instruction","input","output"}       Alpaca prompt; output trained
 *   {"messages":[{"role","content"},...]}  chat template (ctune/chat.h);
 *                                          assistant turns trained
 * and plain text (.txt) for continued pre-training: the whole file tokenized
 * and cut into windows of max_len tokens.
 */
#ifndef CTUNE_DATA_H
#define CTUNE_DATA_H
#include <stddef.h>
#include <stdint.h>
#include "ctune/status.h"
#include "ctune/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CT_DATA_AUTO = 0,      /* .txt: plain text; otherwise from the first row's keys */
    CT_DATA_TEXT,          /* {"text"} */
    CT_DATA_PROMPT_COMPLETION,
    CT_DATA_ALPACA,
    CT_DATA_CHAT,
    CT_DATA_PLAIN          /* plain text file */
} ct_data_format;

typedef struct {
    ct_data_format format; /* CT_DATA_AUTO to detect */
    int max_len;           /* truncate each example to this many tokens, keeping the start;
                              0 = no limit (plain text needs max_len >= 2) */
    int train_on_prompt;   /* also put the loss on prompt/system/user tokens */
    int skip_bad_rows;     /* skip and count malformed rows instead of failing */
} ct_data_opts;

/* One example: n tokens; mask[i] = 1 when token i is a target (predicted
 * from tokens 0..i-1). mask[0] is always 0: nothing precedes it. */
typedef struct {
    const int32_t *ids;    /* (n) */
    const uint8_t *mask;   /* (n) */
    int n;
    int line;              /* source line (JSONL), element index + 1 (.json array), window index + 1 (.txt) */
} ct_example;

typedef struct {
    size_t n_examples;
    size_t n_tokens;       /* sum of example lengths */
    size_t n_targets;      /* tokens with mask 1 */
    size_t n_truncated;    /* examples cut to max_len */
    size_t n_dropped;      /* examples left with no target after truncation (not kept) */
    size_t n_bad_rows;     /* rows skipped with skip_bad_rows */
    int max_tokens;        /* longest example */
} ct_data_stats;

typedef struct ct_dataset ct_dataset;

/* Load path with tokenizer tok (opts NULL: defaults, all zero). A malformed
 * row fails with CT_ERR_FORMAT and a message naming file and line, e.g.
 * "data.jsonl:17: Alpaca row has no 'output' string"; with skip_bad_rows it
 * is skipped, counted, and its message kept (ct_dataset_bad_rows). A file
 * with no example left is an error. *out is freed with ct_dataset_free. */
ct_status ct_dataset_load(const char *path, const ct_tokenizer *tok, const ct_data_opts *opts, ct_dataset **out);
void ct_dataset_free(ct_dataset *ds);

size_t ct_dataset_size(const ct_dataset *ds);
/* Example i (0 <= i < size); the pointers live as long as ds. */
ct_example ct_dataset_get(const ct_dataset *ds, size_t i);
ct_data_format ct_dataset_format(const ct_dataset *ds);
const char *ct_data_format_name(ct_data_format f); /* "text", "prompt-completion", "alpaca", "chat", "plain" */
void ct_dataset_stats(const ct_dataset *ds, ct_data_stats *st);

/* Number of rows skipped (skip_bad_rows); when msgs is not NULL, *msgs gets
 * the messages of the first few of them, one per line ("" when none). */
size_t ct_dataset_bad_rows(const ct_dataset *ds, const char **msgs);

/* One line: "412 examples (chat), 51234 tokens, 20177 targets, longest 512, 3 truncated". */
void ct_dataset_summary(const ct_dataset *ds, char *buf, size_t cap);

/* Deterministic split for --val-split: a permutation of the examples by seed
 * (xoshiro256**, seeded with splitmix64); the first round(fraction * n) of it
 * (at least 1 when fraction > 0) become *val, the rest *train, each kept in
 * file order. fraction in [0, 1); both outputs are new datasets (copies). */
ct_status ct_dataset_split(const ct_dataset *ds, double fraction, uint64_t seed, ct_dataset **train,
                           ct_dataset **val);

/* Order of examples for an epoch: perm[0..n) = a permutation of 0..n-1 fixed by seed. */
void ct_data_permutation(size_t n, uint64_t seed, size_t *perm);

#ifdef __cplusplus
}
#endif
#endif
