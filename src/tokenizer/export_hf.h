/* src/tokenizer/export_hf.h — write a loaded tokenizer as Hugging Face files
 * (tokenizer.json, tokenizer_config.json, special_tokens_map.json) that
 * `tokenizers` / `transformers` read back to exactly ctune's ids.
 * Leaves out: the slow-tokenizer files (vocab.json + merges.txt,
 * tokenizer.model). */
#ifndef CT_TOKENIZER_EXPORT_HF_H
#define CT_TOKENIZER_EXPORT_HF_H
#include "ctune/status.h"
#include "ctune/tokenizer.h"

/* Write dir/tokenizer.json, dir/tokenizer_config.json and
 * dir/special_tokens_map.json for tok (dir is created if missing; files are
 * written atomically). The files encode as ct_tokenizer_encode(...,
 * CT_TOK_ADD_BOS) when the caller asks for special tokens
 * (add_special_tokens=True, the default), and decode as ct_tokenizer_decode.
 *   tokenizer.json source: the file is copied byte for byte, with the
 *     tokenizer_config.json / special_tokens_map.json / chat_template.jinja
 *     beside it when present (a config is generated otherwise);
 *   GGUF "gpt2", encoder.json + vocab.bpe: byte-level BPE, the same regexes
 *     as Split steps, merges in rank order;
 *   llama2.c tokenizer.bin, GGUF "llama": BPE with byte fallback whose merges
 *     are derived from the scores (see docs/tokenizer.md).
 * Returns CT_ERR_UNSUPPORTED (message naming the reason) and writes nothing
 * when the tokenizer cannot be expressed exactly; the caller may warn and skip. */
ct_status ct__tokenizer_write_hf(const ct_tokenizer *tok, const char *dir);

#endif
