/* fuzz/fuzz_json.c — libFuzzer target for the JSON reader (src/formats/json.c)
 * and the config.json layer above it (ct__parse_hf_config).
 *
 * On success the whole tree is walked: every string must be NUL-terminated at
 * its length and valid to read, every number finite, every object's keys
 * readable, and the getters and ct__json_has_dup_keys are exercised. On
 * failure the message must start with the document name. Seeds:
 * fuzz/seeds/json/ (small configs, tokenizer fragments, escapes).
 * Leaves out: comparison with another parser (see tests/unit/test_json.c). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "ctune/model.h"
#include "formats/json.h"
#include "formats/loaders.h"

static void walk(const ct_json *j, int depth, volatile uint64_t *acc) {
    if (depth > CT_JSON_MAX_DEPTH) abort();
    switch (j->type) {
    case CT_JSON_NULL: break;
    case CT_JSON_BOOL: if (j->u.b != 0 && j->u.b != 1) abort(); break;
    case CT_JSON_NUM: if (!isfinite(j->u.num)) abort(); break;
    case CT_JSON_STR:
        if (j->u.str.s[j->u.str.len] != 0) abort();
        if (j->u.str.len) *acc += (unsigned char)j->u.str.s[0] + (unsigned char)j->u.str.s[j->u.str.len - 1];
        break;
    case CT_JSON_ARR:
        for (size_t i = 0; i < j->u.arr.n; i++) walk(&j->u.arr.items[i], depth + 1, acc);
        break;
    case CT_JSON_OBJ: {
        for (size_t i = 0; i < j->u.obj.n; i++) {
            const char *k = j->u.obj.keys[i];
            if (k[j->u.obj.klens[i]] != 0) abort();
            walk(&j->u.obj.vals[i], depth + 1, acc);
            /* the getters must find the first member with this key */
            if (strlen(k) == j->u.obj.klens[i]) {
                const ct_json *v = ct__json_get(j, k);
                if (!v) abort();
                double d;
                int64_t iv;
                int b;
                *acc += (uint64_t)ct__json_get_num(j, k, &d) + (uint64_t)ct__json_get_int(j, k, &iv) +
                        (uint64_t)ct__json_get_bool(j, k, &b) + (ct__json_get_str(j, k) != NULL);
            }
        }
        *acc += (uint64_t)ct__json_has_dup_keys(j);
        break;
    }
    default: abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    volatile uint64_t acc = 0;
    ct_json *j = NULL;
    ct_status s = ct__json_parse((const char *)data, size, "fuzz.json", &j);
    if (s == CT_OK) {
        if (!j) abort();
        walk(j, 1, &acc);
        ct__json_free(j);
    } else {
        if (j || strncmp(ct_errmsg(), "fuzz.json", 9) != 0) abort();
    }
    ct_config cfg;
    s = ct__parse_hf_config((const char *)data, size, "fuzz/config.json", &cfg);
    if (s == CT_OK && (cfg.dim <= 0 || cfg.n_heads <= 0 || cfg.head_dim <= 0 || cfg.n_kv_heads <= 0 ||
                       cfg.n_heads % cfg.n_kv_heads != 0 || cfg.vocab_size <= 0 || cfg.n_layers <= 0))
        abort();
    (void)acc;
    return 0;
}
