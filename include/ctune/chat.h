/* ctune/chat.h — rendering a conversation with a model's chat template.
 *
 * Not a Jinja engine: the template text carried by the tokenizer (GGUF
 * tokenizer.chat_template, tokenizer_config.json, chat_template.jinja) is
 * recognised as one of the common families and that family's format is
 * produced in C, byte for byte what `transformers`' apply_chat_template gives
 * for it (tests/e2e/test_chat.sh checks this):
 *   chatml   <|im_start|>role\ncontent<|im_end|>\n  (Qwen2, SmolLM2; a default
 *            system turn when the template inserts one for a conversation
 *            without a system message, e.g. SmolLM2's "You are a helpful AI
 *            assistant named SmolLM, trained by Hugging Face")
 *   llama2   <s>[INST] <<SYS>>\nsys\n<</SYS>>\n\nuser [/INST] answer </s><s>[INST] ...
 *   mistral  <s>[INST] user [/INST]answer</s> [INST] ...  (v0.1; no system role)
 *   llama3   <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>
 *   zephyr   <|role|>\ncontent</s>\n  (Zephyr, TinyLlama-Chat)
 * Any other template, or none, is an error that quotes the template's start.
 */
#ifndef CTUNE_CHAT_H
#define CTUNE_CHAT_H
#include <stddef.h>
#include "ctune/status.h"
#include "ctune/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One turn. role: "system", "user" or "assistant"; content: UTF-8, NUL-terminated. */
typedef struct { const char *role, *content; } ct_chat_msg;

/* Where an assistant message landed in the rendered text (byte offsets):
 * [start, end) is its content as rendered (stripped where the template strips),
 * [start, turn_end) adds the end-of-turn token text (<|im_end|>, </s>, <|eot_id|>):
 * the bytes a trainer puts the loss on. */
typedef struct { size_t start, end, turn_end; } ct_chat_span;

/* Render msgs[0..n) with t's chat template. add_generation_prompt appends the
 * opening of an assistant turn (for generation; the llama2/mistral formats
 * have none: their user turn already ends with [/INST]).
 * *text: malloc'd, NUL-terminated (caller frees). It never contains the
 * leading BOS: *add_bos is set to 1 when the template starts with BOS, and
 * the caller encodes with CT_TOK_ADD_BOS. Later BOS/EOS appear as token text
 * ("</s><s>[INST]"), which the tokenizer matches as special tokens.
 * Errors: no or unknown template (CT_ERR_UNSUPPORTED, quoting its first 60
 * characters), a role the format does not take, roles not alternating where
 * the format requires it (CT_ERR_ARG), a vocabulary lacking the format's
 * special tokens (CT_ERR_UNSUPPORTED). */
ct_status ct_chat_render(const ct_tokenizer *t, const ct_chat_msg *msgs, size_t n, int add_generation_prompt,
                         char **text, int *add_bos);

/* As ct_chat_render, and when spans is not NULL also *spans (malloc'd, one
 * per assistant message in order; caller frees) and *n_spans. */
ct_status ct_chat_render_spans(const ct_tokenizer *t, const ct_chat_msg *msgs, size_t n, int add_generation_prompt,
                               char **text, int *add_bos, ct_chat_span **spans, size_t *n_spans);

/* The family name of t's template ("chatml", "llama2", "mistral", "llama3",
 * "zephyr"), or NULL (no or unknown template; ct_errmsg() says why). */
const char *ct_chat_format_name(const ct_tokenizer *t);

/* Token id that ends a turn in t's chat format (<|im_end|>, <|eot_id|>, EOS),
 * for stopping generation; -1 without a known template. */
int ct_chat_end_token(const ct_tokenizer *t);

#ifdef __cplusplus
}
#endif
#endif
