/* ctune/cls_train.h — classification with a pretrained model: a linear head
 * on the frozen base (features computed once, then seconds of training), and
 * label words scored by the language model itself (zero- and few-shot
 * prompting, the baselines). docs/classify.md.
 *
 * Pooling: the final norm's output at the last token of each text (BOS
 * first, no padding), what transformers' *ForSequenceClassification reads
 * for a right-padded batch; the head is `score.weight` (K, C) with no bias,
 * as there. */
#ifndef CTUNE_CLS_TRAIN_H
#define CTUNE_CLS_TRAIN_H
#include <stddef.h>
#include <stdint.h>
#include "ctune/classify.h"
#include "ctune/model.h"
#include "ctune/train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    ct_method method;       /* FULL: every weight and the head; LORA / QLORA: LoRA on the base and the
                               head trained together (PEFT SEQ_CLS, score in modules_to_save); anything
                               else: the head alone on the frozen base (features computed once) */
    int head_only;          /* 1 (default): the head alone, whatever method says */
    int lora_r;             /* LoRA: default 8 */
    float lora_alpha;       /* default 16 */
    const char *targets;    /* default "q,v" */
    /* PROMPT: prompt tuning scored by label words (the loss on each label's word after the prompt);
       PREFIX: prefix tuning, the same way (the prefix starts as the key/value cache of sampled
       vocabulary tokens, or PEFT's projection MLP with prefix_projection > 0) */
    int num_virtual_tokens; /* default 8 */
    int prefix_projection;  /* PREFIX: > 0 the MLP's hidden size */
    const char *const *words;       /* (n_words) label words ... */
    const char *const *word_labels; /* ... and the labels they stand for (every training label needs one) */
    int n_words;
    const char *prefix, *suffix; /* the template around each text (suffix default "\nLabel:") */
    const char *data_path;  /* training file (ct_cls_dataset_load) */
    const char *val_path;   /* validation file (NULL: val_split of the training file) */
    double val_split;       /* stratified fraction held out (default 0.1) */
    ct_cls_opts data;       /* format, columns, max_len (default 256), skip_bad_rows */
    int epochs;             /* default 30 */
    int batch;              /* default 32 */
    float lr;               /* default 1e-2 */
    float weight_decay;     /* default 0.01 */
    int patience;           /* epochs without a better validation score before stopping (default 5; 0 off) */
    int early_stop_loss;    /* 1: that score is the validation loss; 0 (default): accuracy, ties to the loss */
    uint64_t seed;          /* default 42 */
    ct_base_dtype base_dtype; /* frozen base as read (DEFAULT) or converted (NF4/Q8/BF16) */
    int bf16;               /* bf16 products for the feature pass */
    int n_threads;
    const char *out_dir;    /* head.safetensors (or the LoRA adapter) + head_config.json */
    int quiet;
} ct_head_train_opts;

void ct_head_train_opts_default(ct_head_train_opts *o);

typedef struct {
    size_t n_train, n_val;
    int n_labels;
    int64_t trainable;      /* K * C */
    int epochs_run, best_epoch;
    double train_loss, val_loss, val_accuracy, val_macro_f1;
    double feature_seconds; /* the frozen base's forward over every text */
    double train_seconds;   /* the head's epochs */
    size_t n_truncated;
    size_t peak_rss_bytes;
} ct_head_result;

/* Train a head on o->data_path and write it to o->out_dir. */
ct_status ct_head_train(ct_model *m, const ct_head_train_opts *o, ct_head_result *res);

/* How ct_classify decides. */
typedef struct {
    const char *head_dir;        /* a trained head (its label set); or NULL for label words: */
    const char *const *words;    /* (n_labels) the word each label is scored by (" spam", "positive", ...) */
    const char *const *labels;   /*   the labels they stand for (the data's label strings) */
    int n_labels;
    const char *prefix;          /* text before each example (default "") */
    const char *suffix;          /* text after it, before the label word (default "\nLabel:") */
    const ct_cls_dataset *shots; /* few-shot: demonstrations taken from here (NULL: zero-shot) */
    int n_shots;                 /*   how many, the first of each class in turn */
    int max_len;                 /* longest prompt in tokens (default 512; longer: the text is cut) */
    ct_base_dtype base_dtype;
    int bf16;
    int n_threads;
} ct_classify_opts;

/* Predict every example of d: pred (n) label indices in the label set of
 * the head (head_dir), of labels[] (words; with a prompt/prefix language-model
 * adapter as head_dir, scored after its virtual tokens), or, with neither, of m itself
 * when it is a *ForSequenceClassification checkpoint (its score head on the
 * last token's final hidden state; ct_model_labels); scores (n, K) when not NULL
 * (softmax probabilities for a head, label-word logits otherwise). The
 * labels used are returned in *labels_out (K strings, valid until
 * ct_classify_labels_free). */
ct_status ct_classify(ct_model *m, const ct_cls_dataset *d, const ct_classify_opts *o, int *pred, float *scores,
                      char ***labels_out, int *k_out);
void ct_classify_labels_free(char **labels, int k);
/* The label set a head was trained on (free with ct_classify_labels_free). */
ct_status ct_head_labels(const char *head_dir, char ***labels, int *k);
/* 1 when dir holds a PEFT prompt- or prefix-tuning adapter (adapter_config.json). */
int ct_adapter_is_soft_prompt(const char *dir);
/* The labels of a *ForSequenceClassification checkpoint (config.json's
 * id2label, else "0", "1", ...). */
ct_status ct_model_labels(const ct_model *m, char ***labels, int *k);

#ifdef __cplusplus
}
#endif
#endif
