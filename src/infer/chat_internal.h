/* src/infer/chat_internal.h — the chat formats without a tokenizer: detection
 * from template text and rendering with given BOS/EOS texts. Used by chat.c
 * and by the tests that render hand-written templates (tests/unit/test_chat*.c). */
#ifndef CT_INFER_CHAT_INTERNAL_H
#define CT_INFER_CHAT_INTERNAL_H
#include "ctune/chat.h"

typedef enum { CT__CHAT_CHATML = 1, CT__CHAT_LLAMA2, CT__CHAT_MISTRAL, CT__CHAT_LLAMA3, CT__CHAT_ZEPHYR } ct__chat_family;

typedef struct {
    ct__chat_family fam;
    const char *sys; size_t sys_len; /* chatml: default system text (points into the template), or NULL */
    const char *bos, *eos;           /* token texts the format writes ("<s>", "</s>") */
} ct__chat_fmt;

/* Recognise tmpl (NULL: error "no chat template"). src names it in messages. */
ct_status ct__chat_detect(const char *tmpl, const char *src, ct__chat_fmt *f);
const char *ct__chat_family_name(ct__chat_family fam);
/* Render as ct_chat_render_spans does, with f's texts (spans may be NULL). */
ct_status ct__chat_render_fmt(const ct__chat_fmt *f, const ct_chat_msg *msgs, size_t n, int add_gen, char **text,
                              int *add_bos, ct_chat_span **spans, size_t *n_spans);
#endif
