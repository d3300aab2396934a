/* fuzz/fuzz_data.c — libFuzzer target for the training data loader
 * (src/train/data.c) and the chat templates it renders (src/infer/chat.c).
 *
 * Input: byte 0 picks the file kind (.jsonl, .json array, .txt), byte 1 the
 * options (format forced or detected, skip_bad_rows, train_on_prompt,
 * max_len); the rest is the file, written to a temporary file and loaded
 * with a real tokenizer: SmolLM2's GGUF (ChatML template) when
 * $CTUNE_CACHE/models/ has it, else GPT-2's encoder.json from ../shared.
 * On success every example must have 1 <= n <= max_len tokens, ids inside the
 * vocabulary, a 0/1 mask with mask[0] == 0 and at least one target; the stats
 * must add up. On failure the message must name the file. Seeds:
 * fuzz/seeds/data/. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctune/ctune.h"
#include "ctune/data.h"

static ct_tokenizer *g_tok;
static char g_path[3][256];

static void setup(void) {
    char p[1024];
    const char *cache = getenv("CTUNE_CACHE"), *home = getenv("HOME");
    if (cache) snprintf(p, sizeof p, "%s/models/SmolLM2-135M-Instruct-Q4_1.gguf", cache);
    else snprintf(p, sizeof p, "%s/.cache/ctune/models/SmolLM2-135M-Instruct-Q4_1.gguf", home ? home : "");
    if (access(p, R_OK) != 0 || ct_tokenizer_load(p, &g_tok) != CT_OK) {
        const char *sh = getenv("CTUNE_SHARED");
        snprintf(p, sizeof p, "%s/models/tokenizers/gpt2-encoder.json", sh ? sh : "../shared");
        if (ct_tokenizer_load(p, &g_tok) != CT_OK) {
            fprintf(stderr, "fuzz_data: no tokenizer (%s): %s\n", p, ct_errmsg());
            abort();
        }
    }
    static const char *ext[3] = {"jsonl", "json", "txt"};
    for (int i = 0; i < 3; i++) snprintf(g_path[i], sizeof g_path[i], "/tmp/ctune-fuzz-data-%d.%s", (int)getpid(), ext[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_tok) setup();
    if (size < 2) return 0;
    const char *path = g_path[data[0] % 3];
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size > 2 && fwrite(data + 2, 1, size - 2, f) != size - 2) abort();
    fclose(f);

    ct_data_opts o = {0};
    uint8_t b = data[1];
    o.format = (b & 7) < 6 ? (ct_data_format)(b & 7) : CT_DATA_AUTO;
    o.skip_bad_rows = (b >> 3) & 1;
    o.train_on_prompt = (b >> 4) & 1;
    o.max_len = (b >> 5) ? 2 + 5 * (b >> 5) : 0; /* 0 or 7..37 */
    ct_dataset *ds = NULL;
    ct_status s = ct_dataset_load(path, g_tok, &o, &ds);
    if (s != CT_OK) {
        if (ds) abort();
        const char *slash = strrchr(path, '/');
        if (!strstr(ct_errmsg(), slash + 1)) {
            fprintf(stderr, "error message without the file name: %s\n", ct_errmsg());
            abort();
        }
        return 0;
    }
    const int V = ct_tokenizer_vocab_size(g_tok);
    size_t n = ct_dataset_size(ds), tokens = 0, targets = 0;
    if (n == 0) abort();
    for (size_t i = 0; i < n; i++) {
        ct_example e = ct_dataset_get(ds, i);
        if (e.n < 1 || (o.max_len && e.n > o.max_len) || e.mask[0] != 0) abort();
        size_t t = 0;
        for (int k = 0; k < e.n; k++) {
            if (e.ids[k] < 0 || e.ids[k] >= V || e.mask[k] > 1) abort();
            t += e.mask[k];
        }
        if (t == 0) abort();
        tokens += (size_t)e.n;
        targets += t;
    }
    ct_data_stats st;
    ct_dataset_stats(ds, &st);
    if (st.n_examples != n || st.n_tokens != tokens || st.n_targets != targets) abort();
    const char *msgs = NULL;
    if (ct_dataset_bad_rows(ds, &msgs) != st.n_bad_rows || !msgs) abort();
    char line[256];
    ct_dataset_summary(ds, line, sizeof line);
    ct_dataset *tr = NULL, *va = NULL;
    if (n >= 2) {
        if (ct_dataset_split(ds, 0.5, b, &tr, &va) != CT_OK) abort();
        if (ct_dataset_size(tr) + ct_dataset_size(va) != n) abort();
    }
    ct_dataset_free(tr);
    ct_dataset_free(va);
    ct_dataset_free(ds);
    return 0;
}
