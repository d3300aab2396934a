/* ctune/generate.h — sampling, text generation and perplexity evaluation. */
#ifndef CTUNE_GENERATE_H
#define CTUNE_GENERATE_H
#include <stddef.h>
#include <stdint.h>
#include "ctune/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float temperature; /* 0 = greedy (argmax, lowest id on ties) */
    int top_k;         /* 0 = off */
    float top_p;       /* 1 = off */
    uint64_t seed;
} ct_sampler_opts;

typedef struct ct_sampler ct_sampler;
ct_status ct_sampler_create(const ct_sampler_opts *o, int vocab_size, ct_sampler **out);
void ct_sampler_free(ct_sampler *s);
/* Pick the next token from logits (V,); logits may be modified in place. */
int32_t ct_sampler_sample(ct_sampler *s, float *logits);

/* Called for each generated token with its decoded bytes; return non-zero to stop. */
typedef int (*ct_token_cb)(int32_t id, const char *piece, size_t len, void *userdata);

typedef struct {
    int max_new_tokens;
    ct_sampler_opts sampling;
    int stop_at_eos;       /* stop on the tokenizer's EOS (default 1) */
    const int32_t *stop_ids; int n_stop_ids; /* extra stop tokens (e.g. <|im_end|>) */
} ct_gen_opts;

typedef struct {
    int n_prompt, n_generated;
    double prompt_seconds, gen_seconds;
} ct_gen_stats;

/* Feed the prompt (one batched forward) then generate up to max_new_tokens,
 * calling cb for each. Uses the model's tokenizer for pieces (may be NULL: pieces empty). */
ct_status ct_generate(ct_ctx *c, const int32_t *prompt, int n_prompt, const ct_gen_opts *o,
                      ct_token_cb cb, void *userdata, ct_gen_stats *stats);

typedef struct {
    int ctx;    /* window length in tokens (<= 0: the context's size) */
    int stride; /* window step (<= 0: ctx/2) */
} ct_eval_opts;

typedef struct {
    double nll_sum;      /* sum of -log p over scored tokens (nats) */
    int64_t n_scored;    /* tokens scored */
    int64_t n_tokens;    /* tokens in the input */
    int64_t n_processed; /* tokens run through the model (windows overlap) */
    double perplexity;   /* exp(nll_sum / n_scored) */
    double seconds;
} ct_eval_result;

/* Perplexity with sliding windows (see docs/eval.md): window w covers tokens
 * [w*stride, w*stride+ctx); it scores each target token not scored by an
 * earlier window, predicting it from the tokens before it in the same window.
 * Token 0 is never a target. */
ct_status ct_eval_perplexity(ct_ctx *c, const int32_t *tokens, size_t n, const ct_eval_opts *o,
                             ct_eval_result *res);

#ifdef __cplusplus
}
#endif
#endif
