/* fuzz/fuzz_adapter.c — libFuzzer target for LoRA adapter directories:
 * adapter_config.json (src/train/peft.c), adapter_model.safetensors
 * (src/formats/safetensors.c) and applying them to a model
 * (ct_model_apply_adapter: target mapping, tensor names, shape checks,
 * the merge).
 *
 * Input: a 4-byte little-endian length L, then L bytes of adapter_config.json,
 * then the rest as adapter_model.safetensors; both are written into a
 * temporary directory and applied to the real stories260K from ../shared
 * (reloaded for every input, since a successful merge changes it).
 * Any result is fine except a crash, a sanitizer report, or a failure whose
 * message is empty. Seeds: fuzz/seeds/adapter/ (a real adapter ctune trained). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctune/ctune.h"

static char g_dir[256], g_cfg[300], g_st[300], g_bin[1024], g_tok[1024];

static void setup(void) {
    const char *sh = getenv("CTUNE_SHARED");
    snprintf(g_bin, sizeof g_bin, "%s/models/stories260K/stories260K.bin", sh ? sh : "../shared");
    snprintf(g_tok, sizeof g_tok, "%s/models/stories260K/tok512.bin", sh ? sh : "../shared");
    snprintf(g_dir, sizeof g_dir, "/tmp/ctune-fuzz-adapter-%d", (int)getpid());
    mkdir(g_dir, 0755);
    snprintf(g_cfg, sizeof g_cfg, "%s/adapter_config.json", g_dir);
    snprintf(g_st, sizeof g_st, "%s/adapter_model.safetensors", g_dir);
}

static int put(const char *path, const uint8_t *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(d, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready;
    if (!ready) { setup(); ready = 1; }
    if (size < 4) return 0;
    uint32_t L = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
    if (L > size - 4) L = (uint32_t)(size - 4);
    if (!put(g_cfg, data + 4, L) || !put(g_st, data + 4 + L, size - 4 - L)) abort();
    ct_load_opts lo = {.tokenizer_path = g_tok};
    ct_model *m = NULL;
    if (ct_model_load(g_bin, &lo, &m) != CT_OK) {
        fprintf(stderr, "fuzz_adapter: cannot load %s: %s\n", g_bin, ct_errmsg());
        abort();
    }
    ct_status s = ct_model_apply_adapter(m, g_dir);
    if (s != CT_OK && ct_errmsg()[0] == '\0') abort();
    ct_model_free(m);
    return 0;
}
