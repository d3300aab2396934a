/* tests/unit/test_data.c — training data sets (src/train/data.c).
 *
 * Small JSONL / JSON / text files written to a temporary directory; the
 * expected ids and masks are computed here through the tokenizer, segment by
 * segment, and for the common seams also checked against the encoding of the
 * joined text. Tokenizers: GPT-2 (byte-level, no BOS) and Llama-2 (SPM, BOS)
 * from ../shared, and the SmolLM2 GGUF (its ChatML template) when present.
 * Checks: each row format, masks (completion only; train_on_prompt), BOS/EOS,
 * chat rows (ChatML, Llama-2), truncation and dropping, plain text windows,
 * every malformed-row case naming file and line, skip_bad_rows counting,
 * the 5000-row Alpaca file, and a deterministic disjoint split.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ctune/ctune.h"
#include "tokenizer/tok_internal.h"

static char dir[64];
static char shared[4096];

typedef struct { int32_t v[4096]; uint8_t m[4096]; int n; } seq;

static const char *file(const char *name, const char *body) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(1); }
    fputs(body, f);
    fclose(f);
    return path;
}

/* Append the encoding of text (no BOS) with mask value m. */
static void add(seq *s, const ct_tokenizer *t, const char *text, int m) {
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_OK(ct_tokenizer_encode(t, text, strlen(text), 0, &ids, &n));
    for (size_t i = 0; i < n && s->n < 4096; i++) { s->v[s->n] = ids[i]; s->m[s->n++] = (uint8_t)m; }
    free(ids);
}
static void add_id(seq *s, int id, int m) { s->v[s->n] = id; s->m[s->n++] = (uint8_t)m; }
static void begin(seq *s, const ct_tokenizer *t) {
    s->n = 0;
    if (ct_tokenizer_adds_bos(t)) add_id(s, ct_tokenizer_bos(t), 0);
}

/* Example e equals s (the mask of position 0 is always 0). */
static int same(ct_example e, const seq *s, const char *what) {
    int ok = e.n == s->n;
    for (int i = 0; ok && i < e.n; i++) ok = e.ids[i] == s->v[i] && e.mask[i] == (i ? s->m[i] : 0);
    if (!ok) {
        fprintf(stderr, "%s: example differs\n  want:", what);
        for (int i = 0; i < s->n; i++) fprintf(stderr, " %d/%d", s->v[i], i ? s->m[i] : 0);
        fprintf(stderr, "\n  got: ");
        for (int i = 0; i < e.n; i++) fprintf(stderr, " %d/%d", e.ids[i], e.mask[i]);
        fprintf(stderr, "\n");
    }
    return ok;
}

/* Whole text encoded (with BOS as the tokenizer adds it): the joined-text reference. */
static int same_ids_as_joined(ct_example e, const ct_tokenizer *t, const char *text, int eos) {
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK_OK(ct_tokenizer_encode(t, text, strlen(text), ct_tokenizer_adds_bos(t) ? CT_TOK_ADD_BOS : 0, &ids, &n));
    int ok = (size_t)e.n == n + (eos >= 0);
    for (size_t i = 0; ok && i < n; i++) ok = e.ids[i] == ids[i];
    if (ok && eos >= 0) ok = e.ids[n] == eos;
    free(ids);
    if (!ok) fprintf(stderr, "ids differ from the joined text \"%s\"\n", text);
    return ok;
}

static ct_dataset *load(const char *path, const ct_tokenizer *t, const ct_data_opts *o) {
    ct_dataset *ds = NULL;
    CHECK_OK(ct_dataset_load(path, t, o, &ds));
    return ds;
}

/* Loading fails with CT_ERR_FORMAT and a message containing want. */
static void load_fails(const char *name, const char *body, const ct_tokenizer *t, const char *want) {
    const char *p = file(name, body);
    ct_dataset *ds = NULL;
    ct_status st = ct_dataset_load(p, t, NULL, &ds);
    CHECK(st == CT_ERR_FORMAT && ds == NULL);
    char full[512];
    snprintf(full, sizeof full, "%s/%s", dir, want);
    if (!strstr(ct_errmsg(), full)) fprintf(stderr, "want \"%s\"\n got \"%s\"\n", full, ct_errmsg());
    CHECK(strstr(ct_errmsg(), full) != NULL);
}

/* ---- formats and masks ------------------------------------------------------------- */

static void test_rows(const ct_tokenizer *t, const char *tag) {
    char name[64];
    seq s;
    int eos = ct_tokenizer_eos(t);
    snprintf(name, sizeof name, "rows_%s.jsonl", tag);
    const char *p = file(name, "{\"text\": \"Hello world. The end.\"}\n\n  \n{\"text\": \"second\"}\n");
    ct_dataset *ds = load(p, t, NULL);
    if (ds) {
        CHECK_EQ_INT(ct_dataset_size(ds), 2);
        CHECK(ct_dataset_format(ds) == CT_DATA_TEXT);
        begin(&s, t); add(&s, t, "Hello world. The end.", 1); add_id(&s, eos, 1);
        CHECK(same(ct_dataset_get(ds, 0), &s, "text row"));
        CHECK_EQ_INT(ct_dataset_get(ds, 1).line, 4); /* blank lines skipped, still counted */
        ct_dataset_free(ds);
    }

    /* prompt/completion: the completion (and EOS) trained; seams with a space */
    snprintf(name, sizeof name, "pc_%s.jsonl", tag);
    p = file(name, "{\"prompt\": \"Q: 2+2?\\nA:\", \"completion\": \" 4\"}\n"
                   "{\"prompt\": \"Q: 3+3?\\nA: \", \"completion\": \"6\"}\n"
                   "{\"completion\": \"no prompt\", \"prompt\": \"\"}\n");
    ds = load(p, t, NULL);
    if (ds) {
        CHECK_EQ_INT(ct_dataset_size(ds), 3);
        CHECK(ct_dataset_format(ds) == CT_DATA_PROMPT_COMPLETION);
        int spm = !strcmp(ct_tokenizer_kind(t), "spm");
        begin(&s, t); add(&s, t, "Q: 2+2?\nA:", 0); add(&s, t, spm ? "4" : " 4", 1); add_id(&s, eos, 1);
        CHECK(same(ct_dataset_get(ds, 0), &s, "prompt/completion"));
        CHECK(same_ids_as_joined(ct_dataset_get(ds, 0), t, "Q: 2+2?\nA: 4", eos));
        begin(&s, t); add(&s, t, "Q: 3+3?\nA:", 0); add(&s, t, spm ? "6" : " 6", 1); add_id(&s, eos, 1);
        CHECK(same(ct_dataset_get(ds, 1), &s, "prompt ending in a space"));
        CHECK(same_ids_as_joined(ct_dataset_get(ds, 1), t, "Q: 3+3?\nA: 6", eos));
        begin(&s, t); add(&s, t, "no prompt", 1); add_id(&s, eos, 1);
        CHECK(same(ct_dataset_get(ds, 2), &s, "empty prompt"));
        ct_dataset_free(ds);
        ct_data_opts o = {0};
        o.train_on_prompt = 1;
        ds = load(p, t, &o);
        ct_example e = ct_dataset_get(ds, 0);
        int all = e.n > 2;
        for (int i = 1; i < e.n; i++) all &= e.mask[i] == 1;
        CHECK(all && e.mask[0] == 0);
        ct_dataset_free(ds);
    }

    /* Alpaca, with and without input; the prompt spelled out here independently */
    snprintf(name, sizeof name, "alpaca_%s.jsonl", tag);
    p = file(name, "{\"instruction\": \"Add the numbers.\", \"input\": \"2 and 3\", \"output\": \"5\"}\n"
                   "{\"instruction\": \"Say hi.\", \"input\": \"\", \"output\": \"Hi!\"}\n");
    ds = load(p, t, NULL);
    if (ds) {
        CHECK(ct_dataset_format(ds) == CT_DATA_ALPACA);
        begin(&s, t);
        add(&s, t, "Below is an instruction that describes a task, paired with an input that provides further "
                   "context. Write a response that appropriately completes the request.\n\n### Instruction:\n"
                   "Add the numbers.\n\n### Input:\n2 and 3\n\n### Response:\n", 0);
        add(&s, t, "5", 1); add_id(&s, eos, 1);
        CHECK(same(ct_dataset_get(ds, 0), &s, "Alpaca with input"));
        begin(&s, t);
        add(&s, t, "Below is an instruction that describes a task. Write a response that appropriately completes "
                   "the request.\n\n### Instruction:\nSay hi.\n\n### Response:\n", 0);
        add(&s, t, "Hi!", 1); add_id(&s, eos, 1);
        CHECK(same(ct_dataset_get(ds, 1), &s, "Alpaca without input"));
        ct_dataset_free(ds);
    }

    /* truncation keeps the start; an example without targets left is dropped */
    snprintf(name, sizeof name, "trunc_%s.jsonl", tag);
    p = file(name, "{\"prompt\": \"a b\", \"completion\": \" c d e f g h i j k l m n o p\"}\n"
                   "{\"prompt\": \"one two three four five six seven eight nine ten\", \"completion\": \" x\"}\n");
    ct_data_opts o = {0};
    o.max_len = 6;
    ds = load(p, t, &o);
    if (ds) {
        ct_data_stats st;
        ct_dataset_stats(ds, &st);
        CHECK_EQ_INT(st.n_examples, 1);
        CHECK_EQ_INT(st.n_truncated, 2);
        CHECK_EQ_INT(st.n_dropped, 1);
        CHECK_EQ_INT(ct_dataset_get(ds, 0).n, 6);
        ds = (ct_dataset_free(ds), NULL);
        ct_dataset *full = load(p, t, NULL);
        ct_example a = ct_dataset_get(full, 0);
        ds = load(p, t, &o);
        ct_example b = ct_dataset_get(ds, 0);
        CHECK(a.n > 6 && !memcmp(a.ids, b.ids, 6 * sizeof(int32_t)) && !memcmp(a.mask, b.mask, 6));
        ct_dataset_free(full);
        ct_dataset_free(ds);
    }
    o.max_len = 2;
    snprintf(name, sizeof name, "trunc2_%s.jsonl", tag);
    p = file(name, "{\"prompt\": \"one two three four five six\", \"completion\": \" x\"}\n");
    ds = NULL;
    CHECK(ct_dataset_load(p, t, &o, &ds) == CT_ERR_FORMAT && !ds);
    CHECK(strstr(ct_errmsg(), "no examples"));
}

/* Plain text: windows of max_len overlapping by one token; all but the first trained. */
static void test_plain(const ct_tokenizer *t) {
    const char *text = "Once upon a time there was a tiny model. It read a file and learned from every token of it.\n";
    const char *p = file("book.txt", text);
    ct_data_opts o = {0};
    o.max_len = 8;
    ct_dataset *ds = load(p, t, &o);
    seq s;
    begin(&s, t);
    add(&s, t, text, 1);
    if (ds) {
        CHECK(ct_dataset_format(ds) == CT_DATA_PLAIN);
        size_t pos = 0, targets = 0;
        int ok = 1;
        for (size_t w = 0; w < ct_dataset_size(ds); w++) {
            ct_example e = ct_dataset_get(ds, w);
            ok &= e.n <= 8 && e.n >= 2 && e.mask[0] == 0 && pos + (size_t)e.n <= (size_t)s.n;
            for (int i = 0; ok && i < e.n; i++) ok &= e.ids[i] == s.v[pos + i] && (i == 0 || e.mask[i] == 1);
            for (int i = 0; i < e.n; i++) targets += e.mask[i];
            pos += (size_t)e.n - 1;
        }
        CHECK(ok);
        CHECK_EQ_INT(pos, s.n - 1);      /* the windows cover the file */
        CHECK_EQ_INT(targets, s.n - 1);  /* every token but the first once */
        ct_dataset_free(ds);
    }
    ds = NULL;
    CHECK(ct_dataset_load(p, t, NULL, &ds) == CT_ERR_ARG && !ds);
    CHECK(strstr(ct_errmsg(), "max_len"));
}

/* ---- chat -------------------------------------------------------------------------- */

static const char *CHAT_ROW =
    "{\"messages\": [{\"role\": \"user\", \"content\": \"2+2?\"}, {\"role\": \"assistant\", \"content\": \"4.\"},"
    " {\"role\": \"user\", \"content\": \"And 3+3?\"}, {\"role\": \"assistant\", \"content\": \"6.\"}]}\n";

static void test_chat_llama2(ct_tokenizer *t) {
    free(t->chat_template);
    t->chat_template = ct__strdup("{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }} <<SYS>>");
    ct_dataset *ds = load(file("chat_l2.jsonl", CHAT_ROW), t, NULL);
    if (!ds) return;
    seq s;
    begin(&s, t);
    add(&s, t, "[INST] 2+2? [/INST]", 0); /* the space before the answer: SPM's dummy prefix */
    add(&s, t, "4. </s>", 1);
    add(&s, t, "<s>[INST] And 3+3? [/INST]", 0);
    add(&s, t, "6. </s>", 1);
    CHECK(same(ct_dataset_get(ds, 0), &s, "llama2 chat"));
    CHECK(same_ids_as_joined(ct_dataset_get(ds, 0), t, "[INST] 2+2? [/INST] 4. </s><s>[INST] And 3+3? [/INST] 6. </s>",
                             -1));
    ct_dataset_free(ds);
    free(t->chat_template);
    t->chat_template = NULL;
    ds = NULL;
    CHECK(ct_dataset_load(file("chat_l2.jsonl", CHAT_ROW), t, NULL, &ds) == CT_ERR_UNSUPPORTED);
    CHECK(strstr(ct_errmsg(), "no chat template"));
}

static void test_chat_smollm2(void) {
    const char *cache = getenv("CTUNE_CACHE");
    char gguf[4096];
    if (cache) snprintf(gguf, sizeof gguf, "%s/models/SmolLM2-135M-Instruct-Q4_1.gguf", cache);
    else snprintf(gguf, sizeof gguf, "%s/.cache/ctune/models/SmolLM2-135M-Instruct-Q4_1.gguf", getenv("HOME"));
    if (access(gguf, R_OK)) { printf("SKIP (part): %s absent: ChatML data not checked\n", gguf); return; }
    ct_tokenizer *t = NULL;
    CHECK_OK(ct_tokenizer_load(gguf, &t));
    if (!t) return;
    ct_dataset *ds = load(file("chat_smol.jsonl", CHAT_ROW), t, NULL);
    const char *sys = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                      "<|im_end|>\n";
    seq s;
    char pre[512];
    if (ds) {
        CHECK(ct_dataset_format(ds) == CT_DATA_CHAT);
        begin(&s, t);
        snprintf(pre, sizeof pre, "%s<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n", sys);
        add(&s, t, pre, 0);
        add(&s, t, "4.<|im_end|>", 1);
        add(&s, t, "\n<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n", 0);
        add(&s, t, "6.<|im_end|>", 1);
        add(&s, t, "\n", 0);
        CHECK(same(ct_dataset_get(ds, 0), &s, "ChatML chat"));
        char full[1024];
        snprintf(full, sizeof full, "%s<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4.<|im_end|>\n"
                 "<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n6.<|im_end|>\n", sys);
        CHECK(same_ids_as_joined(ct_dataset_get(ds, 0), t, full, -1));
        ct_dataset_free(ds);
    }
    ct_tokenizer_free(t);
}

/* ---- malformed rows ------------------------------------------------------------------ */

static void test_bad_rows(const ct_tokenizer *t) {
    char body[8192] = "";
    for (int i = 0; i < 16; i++)
        strcat(body, "{\"instruction\": \"Say hi.\", \"input\": \"\", \"output\": \"Hi!\"}\n");
    strcat(body, "{\"instruction\": \"Say hi.\", \"input\": \"\"}\n");
    load_fails("data.jsonl", body, t, "data.jsonl:17: Alpaca row has no 'output' string");

    const char *good = "{\"text\": \"fine\"}\n";
    char b[1024];
    struct { const char *row, *want; } cases[] = {
        {"{\"text\": \"a\",}", "bad1.jsonl:2: bad JSON at column"},
        {"{\"text\": 5}", "bad2.jsonl:2: text row has no 'text' string"},
        {"{\"text\": \"\"}", "bad3.jsonl:2: text row has an empty 'text'"},
        {"[1, 2]", "bad4.jsonl:2: row is not a JSON object"},
        {"{\"prompt\": \"p\", \"completion\": \"c\"}", "bad5.jsonl:2: a prompt-completion row, but the file's rows are text (from line 1)"},
        {"{\"messages\": []}", "bad6.jsonl:2: a chat row, but the file's rows are text"},
        {"{\"txt\": \"typo\"}", "bad7.jsonl:2: text row has no 'text' string"},
        {"\"just a string\"", "bad8.jsonl:2: row is not a JSON object"},
        {"{\"text\": \"a\"} trailing", "bad9.jsonl:2: bad JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char name[32];
        snprintf(name, sizeof name, "bad%zu.jsonl", i + 1);
        snprintf(b, sizeof b, "%s%s\n%s", good, cases[i].row, good);
        load_fails(name, b, t, cases[i].want);
    }
    const char *pc = "{\"prompt\": \"p\", \"completion\": \"c\"}\n";
    snprintf(b, sizeof b, "%s{\"prompt\": \"p\", \"completion\": \"\"}\n", pc);
    load_fails("pc_empty.jsonl", b, t, "pc_empty.jsonl:2: prompt-completion row has an empty 'completion'");
    snprintf(b, sizeof b, "%s{\"prompt\": \"p\"}\n", pc);
    load_fails("pc_missing.jsonl", b, t, "pc_missing.jsonl:2: prompt-completion row has no 'completion' string");
    snprintf(b, sizeof b, "%s{\"prompt\": [\"p\"], \"completion\": \"c\"}\n", pc);
    load_fails("pc_type.jsonl", b, t, "pc_type.jsonl:2: prompt-completion row has no 'prompt' string");
    load_fails("alp_in.jsonl", "{\"instruction\": \"i\", \"input\": 3, \"output\": \"o\"}\n", t,
               "alp_in.jsonl:1: Alpaca row: 'input' is not a string");
    load_fails("alp_empty.jsonl", "{\"instruction\": \"i\", \"input\": \"\", \"output\": \"\"}\n", t,
               "alp_empty.jsonl:1: Alpaca row has an empty 'output'");
    load_fails("unknown.jsonl", "\n{\"question\": \"q\", \"answer\": \"a\"}\n", t,
               "unknown.jsonl:2: the first row has none of the known keys");
    load_fails("arr.json", "[{\"text\": \"a\"},\n {\"text\": 3}]", t, "arr.json: element 2: text row has no 'text' string");
    load_fails("arr_bad.json", "[{\"text\": \"a\"},\n {\"text\": 3]", t, "arr_bad.json:2:");
    load_fails("empty.jsonl", "\n\n", t, "empty.jsonl: no examples");

    /* skip_bad_rows: counted, the first messages kept, the good rows loaded */
    char mixed[4096] = "";
    strcat(mixed, good);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) { strcat(mixed, cases[i].row); strcat(mixed, "\n"); strcat(mixed, good); }
    const char *p = file("mixed.jsonl", mixed);
    ct_data_opts o = {0};
    o.skip_bad_rows = 1;
    ct_dataset *ds = load(p, t, &o);
    if (ds) {
        const char *msgs = NULL;
        CHECK_EQ_INT(ct_dataset_size(ds), 10);
        CHECK_EQ_INT(ct_dataset_bad_rows(ds, &msgs), 9);
        CHECK(msgs && strstr(msgs, "mixed.jsonl:2: bad JSON") && strstr(msgs, "mixed.jsonl:4: text row has no 'text'"));
        CHECK(!strstr(msgs, "mixed.jsonl:18")); /* only the first few are kept */
        CHECK_EQ_INT(ct_dataset_get(ds, 1).line, 3);
        char sum[256];
        ct_dataset_summary(ds, sum, sizeof sum);
        CHECK(strstr(sum, "10 examples (text)") && strstr(sum, "9 bad rows skipped"));
        ct_dataset_free(ds);
    }
    /* chat rows that are malformed (a chat template is not needed to see these) */
    struct { const char *row, *want; } chat[] = {
        {"{\"messages\": {\"role\": \"user\"}}", "chat1.jsonl:1: chat row: 'messages' is not an array"},
        {"{\"messages\": [{\"content\": \"x\"}]}", "chat2.jsonl:1: chat row: message 0 has no 'role' string"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": 1}]}", "chat3.jsonl:1: chat row: message 0 has no 'content' string"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}", "chat4.jsonl:1: chat row has no assistant message"},
        {"{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"assistant\", \"content\": \"\"}]}",
         "chat5.jsonl:1: chat row: message 1 (assistant) has empty content"},
        {"{\"messages\": [\"x\"]}", "chat6.jsonl:1: chat row: message 0 is not an object"},
    };
    for (size_t i = 0; i < sizeof chat / sizeof *chat; i++) {
        char name[32];
        snprintf(name, sizeof name, "chat%zu.jsonl", i + 1);
        load_fails(name, chat[i].row, t, chat[i].want);
    }
}

static void test_chat_roles(ct_tokenizer *t) {
    /* a conversation the format rejects is a bad row of its line */
    free(t->chat_template);
    t->chat_template = ct__strdup("[INST] <<SYS>>");
    load_fails("chat_alt.jsonl", "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"user\", "
                                 "\"content\": \"b\"}, {\"role\": \"assistant\", \"content\": \"c\"}]}\n",
               t, "chat_alt.jsonl:1: chat: llama2 format: message 1 is 'user' where 'assistant' is expected");
    free(t->chat_template);
    t->chat_template = NULL;
}

/* ---- the Alpaca file, splitting --------------------------------------------------------- */

static void test_alpaca_file(const ct_tokenizer *t) {
    char p[4200];
    /* seed_tasks.jsonl keeps its outputs in "instances": not a row format; its line 1 is named */
    snprintf(p, sizeof p, "%s/data/alpaca/seed_tasks.jsonl", shared);
    ct_dataset *seed = NULL;
    CHECK(ct_dataset_load(p, t, NULL, &seed) == CT_ERR_FORMAT);
    CHECK(strstr(ct_errmsg(), "seed_tasks.jsonl:1: Alpaca row has no 'output' string"));
    snprintf(p, sizeof p, "%s/data/alpaca/alpaca_5000.json", shared);
    if (access(p, R_OK)) { fprintf(stderr, "%s missing\n", p); CHECK(0); return; }
    /* two of its 5000 records have an empty output (elements 2336 and 4659):
     * an error by default, skipped and counted with skip_bad_rows */
    ct_data_opts o = {0};
    o.max_len = 256;
    ct_dataset *ds = NULL;
    CHECK(ct_dataset_load(p, t, &o, &ds) == CT_ERR_FORMAT && !ds);
    CHECK(strstr(ct_errmsg(), "alpaca_5000.json: element 2336: Alpaca row has an empty 'output'"));
    o.skip_bad_rows = 1;
    ds = load(p, t, &o);
    if (!ds) return;
    const char *msgs = NULL;
    CHECK_EQ_INT(ct_dataset_bad_rows(ds, &msgs), 2);
    CHECK(strstr(msgs, "element 4659: Alpaca row has an empty 'output'"));
    ct_data_stats st;
    ct_dataset_stats(ds, &st);
    CHECK_EQ_INT(st.n_examples + st.n_dropped, 4998);
    CHECK(st.n_examples >= 4990);
    CHECK(ct_dataset_format(ds) == CT_DATA_ALPACA);
    CHECK(st.max_tokens <= 256 && st.n_targets > 0 && st.n_targets < st.n_tokens);
    char sum[256];
    ct_dataset_summary(ds, sum, sizeof sum);
    printf("alpaca_5000.json: %s\n", sum);
    CHECK(strstr(sum, "2 bad rows skipped"));

    ct_dataset *tr = NULL, *va = NULL, *tr2 = NULL, *va2 = NULL, *tr3 = NULL, *va3 = NULL;
    CHECK_OK(ct_dataset_split(ds, 0.1, 42, &tr, &va));
    CHECK_OK(ct_dataset_split(ds, 0.1, 42, &tr2, &va2));
    CHECK_OK(ct_dataset_split(ds, 0.1, 43, &tr3, &va3));
    if (tr && va && tr2 && va2 && tr3 && va3) {
        size_t n = ct_dataset_size(ds), nv = ct_dataset_size(va);
        CHECK_EQ_INT(nv, (size_t)(0.1 * (double)n + 0.5));
        CHECK_EQ_INT(ct_dataset_size(tr) + nv, n);
        uint8_t *seen = calloc(5001, 1);
        int disjoint = 1, same_split = ct_dataset_size(va2) == nv, differs = 0;
        for (size_t i = 0; i < nv; i++) seen[ct_dataset_get(va, i).line] |= 1;
        for (size_t i = 0; i < ct_dataset_size(tr); i++) {
            int l = ct_dataset_get(tr, i).line;
            disjoint &= !(seen[l] & 1);
            seen[l] |= 2;
        }
        size_t covered = 0;
        for (int l = 1; l <= 5000; l++) covered += seen[l] != 0;
        for (size_t i = 0; same_split && i < nv; i++) {
            ct_example a = ct_dataset_get(va, i), b = ct_dataset_get(va2, i);
            same_split = a.line == b.line && a.n == b.n && !memcmp(a.ids, b.ids, (size_t)a.n * 4) && !memcmp(a.mask, b.mask, (size_t)a.n);
        }
        for (size_t i = 0; i < nv; i++) differs |= ct_dataset_get(va, i).line != ct_dataset_get(va3, i).line;
        CHECK(disjoint);
        CHECK_EQ_INT(covered, n);
        CHECK(same_split);
        CHECK(differs);
        /* examples keep file order within each part */
        int ordered = 1;
        for (size_t i = 1; i < nv; i++) ordered &= ct_dataset_get(va, i - 1).line < ct_dataset_get(va, i).line;
        CHECK(ordered);
        free(seen);
    }
    ct_dataset_free(tr); ct_dataset_free(va); ct_dataset_free(tr2); ct_dataset_free(va2);
    ct_dataset_free(tr3); ct_dataset_free(va3);
    CHECK(ct_dataset_split(ds, 1.0, 1, &tr, &va) == CT_ERR_RANGE && !tr && !va);
    CHECK_OK(ct_dataset_split(ds, 0, 1, &tr, &va));
    CHECK_EQ_INT(ct_dataset_size(va), 0);
    CHECK_EQ_INT(ct_dataset_size(tr), ct_dataset_size(ds));
    ct_dataset_free(tr); ct_dataset_free(va);

    size_t perm[100], perm2[100];
    uint8_t hit[100] = {0};
    ct_data_permutation(100, 5, perm);
    ct_data_permutation(100, 5, perm2);
    int ok = !memcmp(perm, perm2, sizeof perm), moved = 0;
    for (int i = 0; i < 100; i++) { ok &= perm[i] < 100 && !hit[perm[i]]; hit[perm[i] % 100] = 1; moved += perm[i] != (size_t)i; }
    CHECK(ok && moved > 50);
    ct_dataset_free(ds);
}

int main(void) {
    const char *sh = getenv("CTUNE_SHARED");
    snprintf(shared, sizeof shared, "%s", sh ? sh : "../shared");
    snprintf(dir, sizeof dir, "%s", "/tmp/ctune-data.XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    char p[4200];
    ct_tokenizer *gpt2 = NULL, *llama = NULL;
    snprintf(p, sizeof p, "%s/models/tokenizers/gpt2-encoder.json", shared);
    CHECK_OK(ct_tokenizer_load(p, &gpt2));
    snprintf(p, sizeof p, "%s/models/tokenizers/llama2-tokenizer.bin", shared);
    CHECK_OK(ct_tokenizer_load(p, &llama));
    if (!gpt2 || !llama) return ct_check_done("test_data");
    test_rows(gpt2, "gpt2");
    test_rows(llama, "llama");
    test_plain(gpt2);
    test_plain(llama);
    test_chat_llama2(llama);
    test_chat_roles(llama);
    test_chat_smollm2();
    test_bad_rows(gpt2);
    test_alpaca_file(gpt2);
    ct_tokenizer_free(gpt2);
    ct_tokenizer_free(llama);
    if (!getenv("CT_TEST_KEEP")) {
        snprintf(p, sizeof p, "rm -rf '%s'", dir);
        if (system(p) != 0) fprintf(stderr, "could not remove %s\n", dir);
    } else printf("files kept in %s\n", dir);
    return ct_check_done("test_data");
}
