/* tests/unit/test_chat_hf.c — chat rendering against Hugging Face transformers.
 *
 * Reads $CTUNE_CHAT_REF_DIR/chat_refs.json written by tests/golden/gen_chat_refs.py
 * (apply_chat_template with each family's published Jinja template, and the
 * SmolLM2 GGUF's own) and renders every case with ctune: the hand-written
 * templates through the detection + rendering of src/infer/chat.c with the
 * case's BOS/EOS texts, "smollm2" through the public ct_chat_render on the
 * GGUF's tokenizer ($CTUNE_CHAT_GGUF). The text (BOS text prepended when
 * add_bos) must equal the reference byte for byte; where the template raises,
 * ctune must fail too. Every assistant span must cover its content in the text.
 * Skips (77) when CTUNE_CHAT_REF_DIR is unset: tests/e2e/test_chat.sh drives it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/internal.h"
#include "ctune/ctune.h"
#include "formats/json.h"
#include "infer/chat_internal.h"

static void show_diff(const char *want, const char *got) {
    size_t i = 0;
    while (want[i] && want[i] == got[i]) i++;
    fprintf(stderr, "  differ at byte %zu\n  want: \"%s\"\n  got:  \"%s\"\n", i, want, got);
}

/* The span's bytes are the message content, as is or stripped (llama2, llama3). */
static int same_content(const char *c, const char *span, size_t n) {
    size_t cn = strlen(c);
    if (cn == n && !memcmp(c, span, n)) return 1;
    while (cn && strchr(" \t\n\r\f\v", c[0])) c++, cn--;
    while (cn && strchr(" \t\n\r\f\v", c[cn - 1])) cn--;
    return cn == n && !memcmp(c, span, n);
}

int main(void) {
    const char *dir = getenv("CTUNE_CHAT_REF_DIR");
    if (!dir) { printf("SKIP: CTUNE_CHAT_REF_DIR not set (run tests/e2e/test_chat.sh)\n"); return 77; }
    char *path = ct__path_join(dir, "chat_refs.json"), *js = NULL;
    size_t jn = 0;
    ct_json *root = NULL;
    CHECK_OK(ct__read_file(path, &js, &jn));
    if (js) CHECK_OK(ct__json_parse(js, jn, path, &root));
    if (!root) return ct_check_done("test_chat_hf");
    const ct_json *tmpls = ct__json_get(root, "templates"), *cases = ct__json_get(root, "cases");
    CHECK(tmpls && cases && cases->type == CT_JSON_ARR);

    ct_tokenizer *smol = NULL;
    const char *gguf = getenv("CTUNE_CHAT_GGUF");
    if (gguf && ct__json_get(tmpls, "smollm2")) CHECK_OK(ct_tokenizer_load(gguf, &smol));

    int n_ok = 0, n_err = 0;
    for (size_t i = 0; cases && i < cases->u.arr.n; i++) {
        const ct_json *c = &cases->u.arr.items[i];
        const char *name = ct__json_get_str(c, "template"), *want = ct__json_get_str(c, "text");
        const ct_json *t = ct__json_get(tmpls, name), *ms = ct__json_get(c, "messages");
        int gen = 0;
        ct__json_get_bool(c, "add_generation_prompt", &gen);
        size_t n = ms->u.arr.n;
        ct_chat_msg m[16];
        for (size_t k = 0; k < n && k < 16; k++)
            m[k] = (ct_chat_msg){ct__json_get_str(&ms->u.arr.items[k], "role"),
                                 ct__json_get_str(&ms->u.arr.items[k], "content")};
        char *text = NULL;
        int add_bos = 0;
        ct_chat_span *sp = NULL;
        size_t nsp = 0;
        ct_status st;
        const char *bos = ct__json_get_str(t, "bos");
        if (!strcmp(name, "smollm2")) {
            if (!smol) continue;
            st = ct_chat_render_spans(smol, m, n, gen, &text, &add_bos, &sp, &nsp);
        } else {
            ct__chat_fmt f;
            st = ct__chat_detect(ct__json_get_str(t, "template"), name, &f);
            f.bos = bos;
            f.eos = ct__json_get_str(t, "eos");
            if (!st) st = ct__chat_render_fmt(&f, m, n, gen, &text, &add_bos, &sp, &nsp);
        }
        if (!want) { /* the template raises */
            ct_test_checks++;
            if (st == CT_OK) { ct_test_fails++; fprintf(stderr, "case %zu (%s): transformers raises, ctune rendered \"%s\"\n", i, name, text); }
            else n_err++;
        } else if (st != CT_OK) {
            ct_test_checks++; ct_test_fails++;
            fprintf(stderr, "case %zu (%s): %s\n", i, name, ct_errmsg());
        } else {
            size_t bn = add_bos ? strlen(bos) : 0;
            char *full = malloc(bn + strlen(text) + 1);
            memcpy(full, bos, bn);
            strcpy(full + bn, text);
            ct_test_checks++;
            if (strcmp(full, want)) { ct_test_fails++; fprintf(stderr, "case %zu (%s):\n", i, name); show_diff(want, full); }
            else n_ok++;
            /* spans: one per assistant message, its stripped content in order */
            size_t na = 0;
            for (size_t k = 0; k < n; k++) {
                if (strcmp(m[k].role, "assistant")) continue;
                CHECK(na < nsp);
                if (na >= nsp) break;
                const ct_chat_span *s = &sp[na++];
                CHECK(s->start <= s->end && s->end <= s->turn_end && s->turn_end <= strlen(text));
                CHECK(same_content(m[k].content, text + s->start, s->end - s->start));
                CHECK(s->turn_end > s->end); /* the end-of-turn token text follows */
            }
            CHECK_EQ_INT(na, nsp);
            free(full);
        }
        free(text);
        free(sp);
    }
    printf("chat: %d renderings equal transformers', %d errors where the template raises%s\n", n_ok, n_err,
           smol ? "" : " (no SmolLM2 GGUF)");
    ct_tokenizer_free(smol);
    ct__json_free(root);
    free(js);
    free(path);
    return ct_check_done("test_chat_hf");
}
