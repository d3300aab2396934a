/* src/infer/generate.c — text generation: the prompt in one batched forward,
 * then one token at a time through the KV cache.
 *
 * The prompt is appended to whatever the context already holds (a fresh or
 * reset context starts at position 0). Generation stops at the tokenizer's EOS
 * (when stop_at_eos), at any of stop_ids (neither is passed to the callback),
 * after max_new_tokens, when the callback returns non-zero, or when the
 * context is full. Pieces come from ct_tokenizer_piece with the previous token
 * as context, so SentencePiece's leading-space rule and byte tokens come out
 * as the reference decoders produce them.
 * Leaves out: beam search, speculative decoding, stop strings (as opposed to
 * stop tokens).
 */
#include <stdlib.h>
#include "core/internal.h"
#include "ctune/generate.h"
#include "ctune/tokenizer.h"
#include "model/model_internal.h"

enum { PIECE_CAP = 4096 };

static int is_stop(int32_t id, int eos, const ct_gen_opts *o) {
    if (o->stop_at_eos && eos >= 0 && id == eos) return 1;
    for (int i = 0; i < o->n_stop_ids; i++)
        if (o->stop_ids && o->stop_ids[i] == id) return 1;
    return 0;
}

ct_status ct_generate(ct_ctx *c, const int32_t *prompt, int n_prompt, const ct_gen_opts *o, ct_token_cb cb,
                      void *userdata, ct_gen_stats *stats) {
    if (stats) *stats = (ct_gen_stats){0};
    if (!c || !o || (!prompt && n_prompt > 0) || n_prompt <= 0 || o->max_new_tokens < 0)
        return ct__err(CT_ERR_ARG, "ct_generate: needs a context, options and a non-empty prompt");
    ct_model *m = c->m;
    const ct_config *cfg = ct_model_config(m);
    ct_tokenizer *tok = ct_model_tokenizer(m);
    const int V = cfg->vocab_size;
    int eos = tok ? ct_tokenizer_eos(tok) : cfg->eos_id;
    if (n_prompt > ct_ctx_size(c) - ct_ctx_pos(c))
        return ct__err(CT_ERR_RANGE, "prompt of %d tokens does not fit the context (%d of %d positions free)",
                       n_prompt, ct_ctx_size(c) - ct_ctx_pos(c), ct_ctx_size(c));
    ct_sampler *smp = NULL;
    ct_status s = ct_sampler_create(&o->sampling, V, &smp);
    if (s) return s;
    float *logits = ct__malloc((size_t)V * sizeof(float));
    char *piece = ct__malloc(PIECE_CAP);
    if (!logits || !piece) { s = ct__err(CT_ERR_NOMEM, "ct_generate: out of memory"); goto done; }

    double t0 = ct__now();
    if ((s = ct_ctx_forward(c, prompt, n_prompt, logits, 0))) goto done;
    double t1 = ct__now();
    if (stats) { stats->n_prompt = n_prompt; stats->prompt_seconds = t1 - t0; }

    int32_t prev = prompt[n_prompt - 1];
    int n_gen = 0;
    for (int i = 0; i < o->max_new_tokens; i++) {
        int32_t id = ct_sampler_sample(smp, logits);
        if (is_stop(id, eos, o)) break;
        n_gen++;
        int len = tok ? ct_tokenizer_piece(tok, prev, id, piece, PIECE_CAP) : 0;
        if (len < 0) len = 0;
        prev = id;
        if (cb && cb(id, piece, (size_t)len, userdata)) break;
        if (i + 1 == o->max_new_tokens || ct_ctx_pos(c) >= ct_ctx_size(c)) break;
        if ((s = ct_ctx_forward(c, &id, 1, logits, 0))) break;
    }
    if (stats) { stats->n_generated = n_gen; stats->gen_seconds = ct__now() - t1; }
done:
    free(logits);
    free(piece);
    ct_sampler_free(smp);
    return s;
}
