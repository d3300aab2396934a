/* src/train/cls_head.h — sequence classification on a frozen base: the
 * features (the final norm's output at the last token of each text, the
 * pooling of transformers' *ForSequenceClassification), a linear head over
 * them (`score.weight` (K, C), no bias, as transformers' `score`) trained
 * with AdamW on features computed once, and label words scored by the
 * language model's own head (verbalizers: zero-/few-shot baselines).
 * docs/classify.md. */
#ifndef CT_TRAIN_CLS_HEAD_H
#define CT_TRAIN_CLS_HEAD_H
#include <stddef.h>
#include <stdint.h>
#include "train/tmodel.h"

typedef struct {
    const int32_t *ids;  /* (n) token ids, BOS included as the model wants it */
    int n;
} ct__cls_text;

/* feat (n_ex, C) = final hidden state at the last token of each text,
 * computed by t (any method; CT_TM_FROZEN for a frozen base) in packed
 * micro-batches of at most its max_rows tokens (each text at most max_seq). */
ct_status ct__cls_features(ct__tmodel *t, const ct__cls_text *ex, size_t n_ex, float *feat);

typedef struct {
    int epochs;          /* passes over the training features (default 30) */
    int batch;           /* examples per step (default 32) */
    float lr;            /* AdamW learning rate (default 1e-3) */
    float weight_decay;  /* default 0.01 */
    int patience;        /* stop after this many epochs without a better validation score (0: off) */
    int on_loss;         /* the score is the validation loss (default: accuracy) */
    uint64_t seed;       /* init N(0, 0.02) as transformers' score, and the shuffling */
    int quiet;
} ct__head_opts;

typedef struct {
    int epochs_run, best_epoch;
    double train_loss;   /* mean loss of the last epoch */
    double val_loss, val_acc; /* at the best epoch (NAN without validation) */
} ct__head_result;

/* Train W (K, C) on features F (n, C) with labels y in [0, K); Fv/yv (nv):
 * validation set (nv 0: none, the last epoch is kept), the best epoch by
 * accuracy (ties: lower loss) is returned in W. */
ct_status ct__head_train(const float *F, const int *y, size_t n, int C, int K, const float *Fv, const int *yv,
                         size_t nv, const ct__head_opts *o, float *W, ct__head_result *res, ct_pool *pool);

/* Mean cross-entropy of F (n, C) under W (K, C), its gradient (K, C) into
 * gW (NULL: none); scratch logits (n, K). Returns the mean loss. */
double ct__head_loss(const float *F, const int *y, size_t n, int C, int K, const float *W, float *gW, float *logits,
                     ct_pool *pool);

/* pred (n) = argmax of F W^T; probs (n, K) softmax (NULL: not needed). */
void ct__head_predict(const float *F, size_t n, int C, int K, const float *W, int *pred, float *probs,
                      ct_pool *pool);

/* dir/head.safetensors ("score.weight" (K, C), F32) and dir/head_config.json
 * (labels, pooling, base model, hidden size, method "head"); atomic per
 * file. W NULL: the config only, method "lora" (a LoRA SEQ_CLS adapter in
 * dir holds the head). */
ct_status ct__head_save(const char *dir, const float *W, int K, int C, const char *const *labels,
                        const char *base_model);
/* Read them back: *W (K, C) and *labels (K strings) malloc'd (free with
 * ct__head_free); C must match the model's. */
ct_status ct__head_load(const char *dir, int C, float **W, int *K, char ***labels);
void ct__head_free(float *W, char **labels, int K);
/* Only the label set of dir/head_config.json. */
ct_status ct__head_read_labels(const char *dir, char ***labels, int *K);

/* Early stopping of the classifier trainers: the best validation accuracy,
 * ties going to the lower loss (on_loss: the lowest loss, ties going to the
 * higher accuracy); patience evaluations without a better one stop the run
 * (0: never). */
typedef struct {
    double acc, loss;
    int bad, patience, on_loss;
} ct__best;
void ct__best_init(ct__best *b, int patience, int on_loss);
/* 1: a new best (keep these parameters); 0: not; -1: not, and patience is spent. */
int ct__best_update(ct__best *b, double acc, double loss);

/* Verbalizers: the language model's next-token score of each label's word
 * after the text: scores (n_ex, K) = logit of token word_ids[k] at the last
 * token of each text (the head row of that token dotted with the feature). */
ct_status ct__verbalizer_scores(ct__tmodel *t, const float *feat, size_t n_ex, const int32_t *word_ids, int K,
                                float *scores);
#endif
