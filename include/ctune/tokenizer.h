/* ctune/tokenizer.h — text <-> token ids, giving exactly the ids of the
 * reference tokenizers (Hugging Face `tokenizers`, SentencePiece).
 *
 * Supported kinds:
 *   BPE, byte-level (GPT-2, Llama-3, Qwen2, SmolLM): pre-tokenizer regex (PCRE2),
 *     bytes mapped to unicode, merges by rank;
 *   SPM-style (Llama-2, Mistral, TinyLlama, llama2.c): "▁" for spaces, dummy
 *     prefix, merges by rank or score, <0xNN> byte fallback;
 * from tokenizer.json, GGUF metadata (tokenizer.ggml.*), GPT-2 encoder.json +
 * vocab.bpe, or llama2.c tokenizer.bin. Added/special tokens are matched in
 * the text before the model's splitting, as `tokenizers` does.
 */
#ifndef CTUNE_TOKENIZER_H
#define CTUNE_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>
#include "ctune/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_tokenizer ct_tokenizer;

/* Load a tokenizer alone: tokenizer.json, a .gguf (vocabulary-only or full),
 * encoder.json (vocab.bpe beside it), or a llama2.c tokenizer.bin.
 * For tokenizer.bin, vocab_size is taken from the file's entries. */
ct_status ct_tokenizer_load(const char *path, ct_tokenizer **out);
void ct_tokenizer_free(ct_tokenizer *t);

int ct_tokenizer_vocab_size(const ct_tokenizer *t);
int ct_tokenizer_bos(const ct_tokenizer *t); /* -1 if none */
int ct_tokenizer_eos(const ct_tokenizer *t); /* -1 if none */
/* Whether encoding adds BOS by default (true for SPM/Llama-2 style). */
int ct_tokenizer_adds_bos(const ct_tokenizer *t);
/* "bpe-bytelevel" or "spm"; for `ctune info`. */
const char *ct_tokenizer_kind(const ct_tokenizer *t);
/* Chat template (Jinja text) if the source carried one, else NULL. */
const char *ct_tokenizer_chat_template(const ct_tokenizer *t);
/* Token id of an exact token string (e.g. "<|im_end|>"), or -1. */
int ct_tokenizer_token_id(const ct_tokenizer *t, const char *piece);

enum { CT_TOK_ADD_BOS = 1, CT_TOK_NO_SPECIAL = 2 /* don't match special tokens in text */ };

/* Encode len bytes of UTF-8 text. *ids is malloc'd (caller frees with free()),
 * *n its length. flags: CT_TOK_ADD_BOS adds BOS when the tokenizer has one. */
ct_status ct_tokenizer_encode(const ct_tokenizer *t, const char *text, size_t len,
                              unsigned flags, int32_t **ids, size_t *n);

/* Decode ids to text as the reference decoders do (SPM: the dummy-prefix space
 * after BOS/at start is removed; special tokens are kept as text, BOS/EOS are
 * skipped). *text is malloc'd and NUL-terminated; *len excludes the NUL. */
ct_status ct_tokenizer_decode(const ct_tokenizer *t, const int32_t *ids, size_t n,
                              char **text, size_t *len);

/* Streaming decode: the raw bytes token `id` contributes when it follows `prev`
 * (prev = -1 at the start). Writes at most cap bytes to buf; returns the
 * number of bytes (may be a partial UTF-8 sequence), or negative on error. */
int ct_tokenizer_piece(const ct_tokenizer *t, int32_t prev, int32_t id, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
