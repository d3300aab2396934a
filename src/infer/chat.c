/* src/infer/chat.c — chat templates: recognising the family of a tokenizer's
 * Jinja template and producing its format (see include/ctune/chat.h).
 *
 * Each family is written out here the way its reference template renders it
 * in `transformers` (which runs Jinja with trim_blocks and lstrip_blocks):
 * the Python str.strip() of the Llama-2 template and Jinja's |trim of
 * Llama-3 are applied to the content as there. Left out: evaluating Jinja,
 * tool calls, Llama-3.1's date header, Mistral v0.3's system-in-last-turn.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "infer/chat_internal.h"
#include "tokenizer/tok_internal.h"

/* ---- detection ------------------------------------------------------------------ */

const char *ct__chat_family_name(ct__chat_family fam) {
    switch (fam) {
    case CT__CHAT_CHATML: return "chatml";
    case CT__CHAT_LLAMA2: return "llama2";
    case CT__CHAT_MISTRAL: return "mistral";
    case CT__CHAT_LLAMA3: return "llama3";
    case CT__CHAT_ZEPHYR: return "zephyr";
    }
    return "?";
}

/* ChatML default system turn: the first "<|im_start|>system" followed by a
 * newline (literal, or "\n" inside a Jinja string) and plain text up to
 * "<|im_end|>", in a template that tests for a missing system message
 * (SmolLM2: "...!= 'system' %}{{ '<|im_start|>system\nYou are ...<|im_end|>"). */
static void chatml_default_system(const char *tmpl, ct__chat_fmt *f) {
    if (!strstr(tmpl, "!= 'system'") && !strstr(tmpl, "!= \"system\"")) return;
    const char *key = "<|im_start|>system";
    for (const char *p = strstr(tmpl, key); p; p = strstr(p + 1, key)) {
        const char *q = p + strlen(key);
        if (*q == '\n') q++;
        else if (q[0] == '\\' && q[1] == 'n') q += 2;
        else continue;
        const char *e = strstr(q, "<|im_end|>");
        if (!e || e == q) continue;
        size_t n = (size_t)(e - q);
        int plain = 1;
        for (size_t i = 0; i < n && plain; i++)
            if (strchr("'\"{}\\\n", q[i])) plain = 0;
        if (!plain) continue;
        f->sys = q;
        f->sys_len = n;
        return;
    }
}

ct_status ct__chat_detect(const char *tmpl, const char *src, ct__chat_fmt *f) {
    memset(f, 0, sizeof *f);
    f->bos = "<s>";
    f->eos = "</s>";
    if (!src) src = "tokenizer";
    if (!tmpl || !*tmpl)
        return ct__err(CT_ERR_UNSUPPORTED, "%s: no chat template (the tokenizer source carries none)", src);
    if (strstr(tmpl, "<|im_start|>")) {
        f->fam = CT__CHAT_CHATML;
        chatml_default_system(tmpl, f);
    } else if (strstr(tmpl, "<|start_header_id|>")) {
        if (strstr(tmpl, "Cutting Knowledge Date"))
            return ct__err(CT_ERR_UNSUPPORTED, "%s: Llama-3.1-style chat template (date header, tools) is not supported",
                           src);
        f->fam = CT__CHAT_LLAMA3;
        f->bos = "<|begin_of_text|>";
        f->eos = "<|eot_id|>";
    } else if (strstr(tmpl, "[INST]")) {
        f->fam = strstr(tmpl, "<<SYS>>") ? CT__CHAT_LLAMA2 : CT__CHAT_MISTRAL;
    } else if (strstr(tmpl, "<|user|>") && strstr(tmpl, "<|assistant|>")) {
        f->fam = CT__CHAT_ZEPHYR;
    } else {
        char head[61];
        size_t n = strlen(tmpl);
        if (n > 60) n = 60;
        memcpy(head, tmpl, n);
        head[n] = 0;
        for (size_t i = 0; i < n; i++)
            if (head[i] == '\n') head[i] = ' ';
        return ct__err(CT_ERR_UNSUPPORTED,
                       "%s: unknown chat template \"%s%s\" (known: ChatML, Llama-2, Mistral [INST], Llama-3, Zephyr)",
                       src, head, strlen(tmpl) > 60 ? "..." : "");
    }
    return CT_OK;
}

/* ---- rendering ------------------------------------------------------------------ */

typedef struct {
    ct__buf b;
    ct_chat_span *sp; size_t nsp, capsp;
    ct_status st;
} out;

static void put(out *o, const char *s, size_t n) {
    if (!o->st) o->st = ct__buf_put(&o->b, s, n);
}
static void puts_(out *o, const char *s) { put(o, s, strlen(s)); }

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
/* Python str.strip() on ASCII whitespace: [*s, *s + *n) shrunk. */
static void strip(const char **s, size_t *n) {
    while (*n && is_ws(**s)) (*s)++, (*n)--;
    while (*n && is_ws((*s)[*n - 1])) (*n)--;
}

/* Append an assistant content [c, c+n) then the end-of-turn text; record its span. */
static void put_answer(out *o, const char *c, size_t n, const char *eot) {
    if (o->st) return;
    ct_chat_span s;
    s.start = o->b.n;
    put(o, c, n);
    s.end = o->b.n;
    puts_(o, eot);
    s.turn_end = o->b.n;
    if (o->st) return;
    if (o->nsp == o->capsp) {
        size_t cap = o->capsp ? 2 * o->capsp : 8;
        ct_chat_span *q = ct__realloc(o->sp, cap * sizeof *q);
        if (!q) { o->st = ct__err(CT_ERR_NOMEM, "chat: out of memory"); return; }
        o->sp = q;
        o->capsp = cap;
    }
    o->sp[o->nsp++] = s;
}

static int role_is(const ct_chat_msg *m, const char *r) { return m->role && !strcmp(m->role, r); }

static ct_status check_roles(const ct_chat_msg *msgs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].role || !msgs[i].content)
            return ct__err(CT_ERR_ARG, "chat: message %zu has no %s", i, msgs[i].role ? "content" : "role");
        if (!role_is(&msgs[i], "system") && !role_is(&msgs[i], "user") && !role_is(&msgs[i], "assistant"))
            return ct__err(CT_ERR_ARG, "chat: message %zu has role '%s' (expected system, user or assistant)", i,
                           msgs[i].role);
    }
    return CT_OK;
}

/* llama2 and mistral: after an optional leading system message, user and
 * assistant alternate starting with user (their templates raise otherwise). */
static ct_status check_alternate(const ct_chat_msg *msgs, size_t n, size_t first, const char *fam) {
    for (size_t i = first; i < n; i++) {
        const char *want = (i - first) % 2 == 0 ? "user" : "assistant";
        if (!role_is(&msgs[i], want))
            return ct__err(CT_ERR_ARG, "chat: %s format: message %zu is '%s' where '%s' is expected (roles must "
                           "alternate user/assistant%s)", fam, i, msgs[i].role, want,
                           first ? " after the system message" : "");
    }
    return CT_OK;
}

static void render_chatml(const ct__chat_fmt *f, const ct_chat_msg *m, size_t n, int gen, out *o) {
    if (f->sys && (n == 0 || !role_is(&m[0], "system"))) {
        puts_(o, "<|im_start|>system\n");
        put(o, f->sys, f->sys_len);
        puts_(o, "<|im_end|>\n");
    }
    for (size_t i = 0; i < n; i++) {
        puts_(o, "<|im_start|>");
        puts_(o, m[i].role);
        puts_(o, "\n");
        if (role_is(&m[i], "assistant")) put_answer(o, m[i].content, strlen(m[i].content), "<|im_end|>");
        else { puts_(o, m[i].content); puts_(o, "<|im_end|>"); }
        puts_(o, "\n");
    }
    if (gen) puts_(o, "<|im_start|>assistant\n");
}

static void render_llama2(const ct__chat_fmt *f, const ct_chat_msg *m, size_t n, out *o) {
    size_t first = n && role_is(&m[0], "system");
    for (size_t i = first; i < n; i++) {
        const char *c = m[i].content;
        size_t cn = strlen(c);
        if (role_is(&m[i], "user")) {
            if (i > first) puts_(o, f->bos); /* the first BOS is *add_bos */
            puts_(o, "[INST] ");
            if (i == first && first) { /* ('<<SYS>>\n' + sys + '\n<</SYS>>\n\n' + user).strip() */
                const char *s = m[0].content;
                size_t sn = strlen(s);
                puts_(o, "<<SYS>>\n");
                put(o, s, sn);
                puts_(o, "\n<</SYS>>\n\n");
                while (cn && is_ws(c[cn - 1])) cn--;
                if (!cn) { /* strip() reaches back into the header */
                    while (o->b.n && is_ws(o->b.p[o->b.n - 1])) o->b.n--;
                }
                put(o, c, cn);
            } else {
                strip(&c, &cn);
                put(o, c, cn);
            }
            puts_(o, " [/INST]");
        } else {
            strip(&c, &cn);
            puts_(o, " ");
            put_answer(o, c, cn, "");
            /* the span ends after " </s>": include the space the template puts before EOS */
            puts_(o, " ");
            puts_(o, f->eos);
            if (!o->st) o->sp[o->nsp - 1].turn_end = o->b.n;
        }
    }
}

static void render_mistral(const ct__chat_fmt *f, const ct_chat_msg *m, size_t n, out *o) {
    for (size_t i = 0; i < n; i++) {
        if (role_is(&m[i], "user")) {
            puts_(o, "[INST] ");
            puts_(o, m[i].content);
            puts_(o, " [/INST]");
        } else {
            put_answer(o, m[i].content, strlen(m[i].content), f->eos);
            puts_(o, " ");
        }
    }
}

static void render_llama3(const ct_chat_msg *m, size_t n, int gen, out *o) {
    for (size_t i = 0; i < n; i++) {
        const char *c = m[i].content;
        size_t cn = strlen(c);
        strip(&c, &cn);
        puts_(o, "<|start_header_id|>");
        puts_(o, m[i].role);
        puts_(o, "<|end_header_id|>\n\n");
        if (role_is(&m[i], "assistant")) put_answer(o, c, cn, "<|eot_id|>");
        else { put(o, c, cn); puts_(o, "<|eot_id|>"); }
    }
    if (gen) puts_(o, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void render_zephyr(const ct__chat_fmt *f, const ct_chat_msg *m, size_t n, int gen, out *o) {
    for (size_t i = 0; i < n; i++) {
        puts_(o, "<|");
        puts_(o, m[i].role);
        puts_(o, "|>\n");
        if (role_is(&m[i], "assistant")) put_answer(o, m[i].content, strlen(m[i].content), f->eos);
        else { puts_(o, m[i].content); puts_(o, f->eos); }
        puts_(o, "\n");
    }
    if (gen) puts_(o, "<|assistant|>\n");
}

ct_status ct__chat_render_fmt(const ct__chat_fmt *f, const ct_chat_msg *msgs, size_t n, int add_gen, char **text,
                              int *add_bos, ct_chat_span **spans, size_t *n_spans) {
    *text = NULL;
    if (spans) { *spans = NULL; *n_spans = 0; }
    if (n && !msgs) return ct__err(CT_ERR_ARG, "chat: msgs is NULL");
    ct_status st = check_roles(msgs, n);
    if (st) return st;
    size_t first = n && role_is(&msgs[0], "system");
    if (f->fam == CT__CHAT_LLAMA2 && (st = check_alternate(msgs, n, first, "llama2"))) return st;
    if (f->fam == CT__CHAT_MISTRAL && (st = check_alternate(msgs, n, 0, "mistral"))) {
        if (first) return ct__err(CT_ERR_ARG, "chat: mistral format has no system role (message 0 is 'system')");
        return st;
    }
    out o = {{0}, NULL, 0, 0, CT_OK};
    switch (f->fam) {
    case CT__CHAT_CHATML: render_chatml(f, msgs, n, add_gen, &o); break;
    case CT__CHAT_LLAMA2: render_llama2(f, msgs, n, &o); break;
    case CT__CHAT_MISTRAL: render_mistral(f, msgs, n, &o); break;
    case CT__CHAT_LLAMA3: render_llama3(msgs, n, add_gen, &o); break;
    case CT__CHAT_ZEPHYR: render_zephyr(f, msgs, n, add_gen, &o); break;
    }
    put(&o, "", 1); /* NUL */
    if (o.st) { free(o.b.p); free(o.sp); return o.st; }
    *text = o.b.p;
    *add_bos = f->fam == CT__CHAT_LLAMA2 || f->fam == CT__CHAT_MISTRAL || f->fam == CT__CHAT_LLAMA3;
    if (spans) { *spans = o.sp; *n_spans = o.nsp; }
    else free(o.sp);
    return CT_OK;
}

/* ---- with a tokenizer ------------------------------------------------------------ */

/* The token text of id (as the vocabulary spells it), or NULL. */
static const char *piece_text(const ct_tokenizer *t, int id, char *buf, size_t cap) {
    if (id < 0 || id >= t->n_vocab || t->plen[id] >= cap) return NULL;
    memcpy(buf, t->pool + t->poff[id], t->plen[id]);
    buf[t->plen[id]] = 0;
    return buf;
}

/* Detect t's format and check that its vocabulary has the format's special tokens. */
static ct_status detect(const ct_tokenizer *t, ct__chat_fmt *f, char *bos, char *eos, size_t cap) {
    if (!t) return ct__err(CT_ERR_ARG, "chat: no tokenizer");
    const char *src = t->source ? t->source : "tokenizer";
    ct_status st = ct__chat_detect(t->chat_template, src, f);
    if (st) return st;
    static const char *need[][3] = {
        [CT__CHAT_CHATML] = {"<|im_start|>", "<|im_end|>", NULL},
        [CT__CHAT_LLAMA3] = {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"},
    };
    if (f->fam == CT__CHAT_CHATML || f->fam == CT__CHAT_LLAMA3)
        for (int i = 0; i < 3 && need[f->fam][i]; i++)
            if (ct_tokenizer_token_id(t, need[f->fam][i]) < 0)
                return ct__err(CT_ERR_UNSUPPORTED, "%s: %s chat template, but the vocabulary has no %s token", src,
                               ct__chat_family_name(f->fam), need[f->fam][i]);
    if (f->fam == CT__CHAT_LLAMA3) {
        if (!piece_text(t, t->bos_id, bos, cap))
            return ct__err(CT_ERR_UNSUPPORTED, "%s: llama3 chat template, but the tokenizer has no BOS", src);
        f->bos = bos;
    } else {
        if (f->fam != CT__CHAT_CHATML && !piece_text(t, t->eos_id, eos, cap))
            return ct__err(CT_ERR_UNSUPPORTED, "%s: %s chat template, but the tokenizer has no EOS", src,
                           ct__chat_family_name(f->fam));
        if ((f->fam == CT__CHAT_LLAMA2 || f->fam == CT__CHAT_MISTRAL) && !piece_text(t, t->bos_id, bos, cap))
            return ct__err(CT_ERR_UNSUPPORTED, "%s: %s chat template, but the tokenizer has no BOS", src,
                           ct__chat_family_name(f->fam));
        if (f->fam != CT__CHAT_CHATML) { f->eos = eos; if (f->fam != CT__CHAT_ZEPHYR) f->bos = bos; }
    }
    return CT_OK;
}

ct_status ct_chat_render_spans(const ct_tokenizer *t, const ct_chat_msg *msgs, size_t n, int add_generation_prompt,
                               char **text, int *add_bos, ct_chat_span **spans, size_t *n_spans) {
    if (!text || !add_bos || (spans && !n_spans)) return ct__err(CT_ERR_ARG, "ct_chat_render: NULL output");
    *text = NULL;
    if (spans) { *spans = NULL; *n_spans = 0; }
    ct__chat_fmt f;
    char bos[64], eos[64];
    ct_status st = detect(t, &f, bos, eos, sizeof bos);
    if (st) return st;
    return ct__chat_render_fmt(&f, msgs, n, add_generation_prompt, text, add_bos, spans, n_spans);
}

ct_status ct_chat_render(const ct_tokenizer *t, const ct_chat_msg *msgs, size_t n, int add_generation_prompt,
                         char **text, int *add_bos) {
    return ct_chat_render_spans(t, msgs, n, add_generation_prompt, text, add_bos, NULL, NULL);
}

const char *ct_chat_format_name(const ct_tokenizer *t) {
    ct__chat_fmt f;
    char bos[64], eos[64];
    return detect(t, &f, bos, eos, sizeof bos) ? NULL : ct__chat_family_name(f.fam);
}

int ct_chat_end_token(const ct_tokenizer *t) {
    ct__chat_fmt f;
    char bos[64], eos[64];
    if (detect(t, &f, bos, eos, sizeof bos)) return -1;
    if (f.fam == CT__CHAT_CHATML) return ct_tokenizer_token_id(t, "<|im_end|>");
    if (f.fam == CT__CHAT_LLAMA3) return ct_tokenizer_token_id(t, "<|eot_id|>");
    return t->eos_id;
}
