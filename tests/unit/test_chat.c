/* tests/unit/test_chat.c — chat templates without Python: recognising the
 * families, the exact text of a two-turn conversation in each (as
 * transformers' apply_chat_template renders the families' published
 * templates: see tests/golden/gen_chat_refs.py, which test_chat.sh compares
 * in full), the assistant spans, and the errors (no template, unknown
 * template quoted, Llama-3.1, missing special tokens, bad roles, roles not
 * alternating). With the SmolLM2 GGUF present, its own template through the
 * public API (default system turn, end-of-turn token). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ctune/ctune.h"
#include "infer/chat_internal.h"
#include "tokenizer/tok_internal.h"

static const ct_chat_msg CONV[] = {{"user", "2+2?"}, {"assistant", "4."}, {"user", "And 3+3?"}, {"assistant", "6."}};

/* Render CONV with a template text; check text (BOS text prepended when add_bos) and spans. */
static void check_family(const char *tmpl, const char *fam, const char *bos, const char *eos, const char *want,
                         const char *turn_end_text) {
    ct__chat_fmt f;
    CHECK_OK(ct__chat_detect(tmpl, "test", &f));
    CHECK(!strcmp(ct__chat_family_name(f.fam), fam));
    f.bos = bos;
    f.eos = eos;
    char *text = NULL;
    int add_bos = -1;
    ct_chat_span *sp = NULL;
    size_t nsp = 0;
    CHECK_OK(ct__chat_render_fmt(&f, CONV, 4, 0, &text, &add_bos, &sp, &nsp));
    if (!text) return;
    char full[1024];
    snprintf(full, sizeof full, "%s%s", add_bos ? bos : "", text);
    if (strcmp(full, want)) fprintf(stderr, "%s:\n  want \"%s\"\n  got  \"%s\"\n", fam, want, full);
    CHECK(!strcmp(full, want));
    CHECK_EQ_INT(nsp, 2);
    if (nsp == 2) {
        CHECK(!strncmp(text + sp[0].start, "4.", 2) && sp[0].end - sp[0].start == 2);
        CHECK(!strncmp(text + sp[1].start, "6.", 2) && sp[1].end - sp[1].start == 2);
        size_t k = strlen(turn_end_text);
        CHECK_EQ_INT(sp[1].turn_end - sp[1].end, k);
        CHECK(!strncmp(text + sp[1].end, turn_end_text, k));
    }
    free(text);
    free(sp);
}

static void test_families(void) {
    check_family("{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}", "chatml",
                 "", "<|im_end|>",
                 "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4.<|im_end|>\n<|im_start|>user\nAnd 3+3?"
                 "<|im_end|>\n<|im_start|>assistant\n6.<|im_end|>\n", "<|im_end|>");
    check_family("{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }} <<SYS>>", "llama2", "<s>", "</s>",
                 "<s>[INST] 2+2? [/INST] 4. </s><s>[INST] And 3+3? [/INST] 6. </s>", " </s>");
    check_family("{{ bos_token }}{{ '[INST] ' + message['content'] + ' [/INST]' }}", "mistral", "<s>", "</s>",
                 "<s>[INST] 2+2? [/INST]4.</s> [INST] And 3+3? [/INST]6.</s> ", "</s>");
    check_family("<|start_header_id|>' + message['role'] + '<|end_header_id|>", "llama3", "<|begin_of_text|>",
                 "<|eot_id|>",
                 "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|><|start_header_id|>"
                 "assistant<|end_header_id|>\n\n4.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnd 3+3?"
                 "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n6.<|eot_id|>", "<|eot_id|>");
    check_family("{{ '<|user|>\\n' + message['content'] + eos_token }} <|assistant|>", "zephyr", "<s>", "</s>",
                 "<|user|>\n2+2?</s>\n<|assistant|>\n4.</s>\n<|user|>\nAnd 3+3?</s>\n<|assistant|>\n6.</s>\n", "</s>");
}

static void test_default_system(void) {
    /* Qwen2's template: escaped newlines inside the Jinja string */
    const char *qwen = "{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a "
                       "helpful assistant.<|im_end|>\\n' }}{% endif %}";
    ct__chat_fmt f;
    CHECK_OK(ct__chat_detect(qwen, "qwen", &f));
    CHECK(f.sys && f.sys_len == strlen("You are a helpful assistant.") && !strncmp(f.sys, "You are a helpful", 17));
    char *text = NULL;
    int add_bos = -1;
    ct_chat_msg u = {"user", "hi"};
    CHECK_OK(ct__chat_render_fmt(&f, &u, 1, 1, &text, &add_bos, NULL, NULL));
    CHECK(text && !strcmp(text, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi"
                                "<|im_end|>\n<|im_start|>assistant\n"));
    CHECK_EQ_INT(add_bos, 0);
    free(text);
    ct_chat_msg sys_u[2] = {{"system", "S"}, {"user", "hi"}}; /* a given system message replaces the default */
    CHECK_OK(ct__chat_render_fmt(&f, sys_u, 2, 0, &text, &add_bos, NULL, NULL));
    CHECK(text && !strcmp(text, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"));
    free(text);
}

static void test_errors(void) {
    ct__chat_fmt f;
    CHECK(ct__chat_detect(NULL, "x.gguf", &f) == CT_ERR_UNSUPPORTED);
    CHECK(strstr(ct_errmsg(), "x.gguf: no chat template"));
    const char *odd = "{% for m in messages %}<<<{{ m.role }}>>> {{ m.content }} and a long tail of template text";
    CHECK(ct__chat_detect(odd, "odd", &f) == CT_ERR_UNSUPPORTED);
    CHECK(strstr(ct_errmsg(), "unknown chat template \"{% for m in messages %}<<<{{ m.role }}>>> {{ m.content }} an...\""));
    CHECK(ct__chat_detect("<|start_header_id|> Cutting Knowledge Date: ", "l31", &f) == CT_ERR_UNSUPPORTED);
    CHECK(strstr(ct_errmsg(), "Llama-3.1"));

    CHECK_OK(ct__chat_detect("[INST] <<SYS>>", "l2", &f));
    char *text = NULL;
    int add_bos;
    ct_chat_msg two_users[2] = {{"user", "a"}, {"user", "b"}};
    CHECK(ct__chat_render_fmt(&f, two_users, 2, 0, &text, &add_bos, NULL, NULL) == CT_ERR_ARG);
    CHECK(strstr(ct_errmsg(), "alternate") && text == NULL);
    ct_chat_msg tool[1] = {{"tool", "x"}};
    CHECK(ct__chat_render_fmt(&f, tool, 1, 0, &text, &add_bos, NULL, NULL) == CT_ERR_ARG);
    CHECK(strstr(ct_errmsg(), "role 'tool'"));
    ct_chat_msg nul[1] = {{"user", NULL}};
    CHECK(ct__chat_render_fmt(&f, nul, 1, 0, &text, &add_bos, NULL, NULL) == CT_ERR_ARG);
    CHECK_OK(ct__chat_detect("[INST]", "mistral", &f));
    ct_chat_msg sys[2] = {{"system", "s"}, {"user", "u"}};
    CHECK(ct__chat_render_fmt(&f, sys, 2, 0, &text, &add_bos, NULL, NULL) == CT_ERR_ARG);
    CHECK(strstr(ct_errmsg(), "no system role"));
}

static void test_tokenizers(void) {
    const char *shared = getenv("CTUNE_SHARED");
    char path[4096];
    snprintf(path, sizeof path, "%s/models/tokenizers/gpt2-encoder.json", shared ? shared : "../shared");
    ct_tokenizer *t = NULL;
    CHECK_OK(ct_tokenizer_load(path, &t));
    if (t) {
        char *text = NULL;
        int add_bos;
        ct_chat_msg u = {"user", "hi"};
        CHECK(ct_chat_render(t, &u, 1, 1, &text, &add_bos) == CT_ERR_UNSUPPORTED);
        CHECK(strstr(ct_errmsg(), "no chat template"));
        CHECK(ct_chat_format_name(t) == NULL);
        CHECK_EQ_INT(ct_chat_end_token(t), -1);
        /* a ChatML template on a vocabulary without <|im_start|> */
        t->chat_template = ct__strdup("{{ '<|im_start|>' }}");
        CHECK(ct_chat_render(t, &u, 1, 1, &text, &add_bos) == CT_ERR_UNSUPPORTED);
        CHECK(strstr(ct_errmsg(), "no <|im_start|> token"));
        /* Zephyr is plain text plus EOS: fine on GPT-2's vocabulary (EOS <|endoftext|>) */
        free(t->chat_template);
        t->chat_template = ct__strdup("<|user|> <|assistant|>");
        CHECK_OK(ct_chat_render(t, &u, 1, 1, &text, &add_bos));
        CHECK(text && !strcmp(text, "<|user|>\nhi<|endoftext|>\n<|assistant|>\n"));
        CHECK_EQ_INT(ct_chat_end_token(t), ct_tokenizer_eos(t));
        free(text);
        ct_tokenizer_free(t);
    }

    const char *cache = getenv("CTUNE_CACHE");
    char gguf[4096];
    if (cache) snprintf(gguf, sizeof gguf, "%s/models/SmolLM2-135M-Instruct-Q4_1.gguf", cache);
    else snprintf(gguf, sizeof gguf, "%s/.cache/ctune/models/SmolLM2-135M-Instruct-Q4_1.gguf", getenv("HOME"));
    FILE *f = fopen(gguf, "rb");
    if (!f) { printf("SKIP (part): %s absent (scripts/get-models.sh): SmolLM2 template not checked\n", gguf); return; }
    fclose(f);
    t = NULL;
    CHECK_OK(ct_tokenizer_load(gguf, &t));
    if (!t) return;
    CHECK(ct_chat_format_name(t) && !strcmp(ct_chat_format_name(t), "chatml"));
    CHECK_EQ_INT(ct_chat_end_token(t), ct_tokenizer_token_id(t, "<|im_end|>"));
    ct_chat_msg m[2] = {{"user", "What is the capital of France?"}, {"assistant", "Paris."}};
    char *text = NULL;
    int add_bos = -1;
    ct_chat_span *sp = NULL;
    size_t nsp = 0;
    CHECK_OK(ct_chat_render(t, m, 1, 1, &text, &add_bos));
    CHECK(text && !strcmp(text, "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
                                "Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
                                "<|im_start|>assistant\n"));
    CHECK_EQ_INT(add_bos, 0);
    free(text);
    CHECK_OK(ct_chat_render_spans(t, m, 2, 0, &text, &add_bos, &sp, &nsp));
    CHECK_EQ_INT(nsp, 1);
    if (nsp == 1 && text) {
        CHECK(!strncmp(text + sp[0].start, "Paris.<|im_end|>\n", 17));
        CHECK_EQ_INT(sp[0].end - sp[0].start, 6);
        CHECK_EQ_INT(sp[0].turn_end - sp[0].start, 16);
        CHECK_EQ_INT(strlen(text), sp[0].turn_end + 1);
    }
    free(text);
    free(sp);
    ct_tokenizer_free(t);
}

int main(void) {
    test_families();
    test_default_system();
    test_errors();
    test_tokenizers();
    return ct_check_done("test_chat");
}
