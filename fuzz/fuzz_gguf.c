/* fuzz/fuzz_gguf.c — libFuzzer target for the GGUF reader: parse the input
 * as a GGUF file from memory (ct__gguf_open_mem, no temp files), and when it
 * validates, read every metadata value through the typed getters and
 * dequantize the start of every tensor, so any range the validator accepted
 * is actually touched under ASan. Seeds: fuzz/seeds/gguf/ (written by
 * tests/golden/gen_gguf.py --seeds). Leaves out the model-config layer
 * (gguf_model.c needs a path and the tokenizer). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "formats/gguf.h"
#include "tensor/quant.h"

/* Read key `key` every way the getters allow; fold results into *acc. */
static void touch_key(const ct_gguf *g, const char *key, ct_gguf_type type, volatile uint64_t *acc) {
    uint32_t u;
    float f;
    int b;
    const char *s;
    size_t len, n;
    ct_gguf_type et;
    if (ct__gguf_get_u32(g, key, &u)) *acc += u;
    if (ct__gguf_get_f32(g, key, &f)) *acc += (uint64_t)(f == f);
    if (ct__gguf_get_bool(g, key, &b)) *acc += (uint64_t)b;
    if (ct__gguf_get_str(g, key, &s, &len) && len) *acc += (unsigned char)s[len - 1];
    if (type != CT_GGUF_ARRAY || !ct__gguf_get_arr(g, key, &et, &n)) return;
    for (size_t i = 0; i < n && i < 4096; i++) {
        int32_t v;
        if (ct__gguf_arr_str(g, key, i, &s, &len) && len) *acc += (unsigned char)s[len - 1];
        if (ct__gguf_arr_f32(g, key, i, &f)) *acc += (uint64_t)(f == f);
        if (ct__gguf_arr_i32(g, key, i, &v)) *acc += (uint64_t)v;
    }
    /* one past the end must be refused */
    if (ct__gguf_arr_str(g, key, n, &s, &len) || ct__gguf_arr_i32(g, key, n, &(int32_t){0})) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ct_tstore ts;
    ct__tstore_init(&ts);
    ct_gguf *g = NULL;
    volatile uint64_t acc = 0;
    if (ct__gguf_open_mem(data, size, "fuzz.gguf", &g, &ts) == CT_OK) {
        for (size_t i = 0; i < ct__gguf_n_kv(g); i++) {
            const char *k;
            size_t klen;
            ct_gguf_type t;
            char key[256];
            if (!ct__gguf_key_at(g, i, &k, &klen, &t) || klen >= sizeof key) continue;
            memcpy(key, k, klen);
            key[klen] = 0;
            touch_key(g, key, t, &acc);
        }
        float row[256] = {0};
        for (size_t i = 0; i < ts.n; i++) {
            const ct_tref *t = &ts.t[i];
            /* the data range must lie inside the input */
            if (t->nbytes && ((const uint8_t *)t->data < data || (const uint8_t *)t->data + t->nbytes > data + size))
                abort();
            int64_t numel = ct__tref_numel(t), blk = ct_dtype_block(t->dtype);
            int64_t n = numel < 256 ? numel : 256;
            n -= n % blk;
            if (n > 0 && ct__dtype_nbytes(t->dtype, n) <= t->nbytes) ct__dequant_row(t->dtype, t->data, row, n);
            acc += (uint64_t)(row[0] == row[0]);
        }
    }
    ct__gguf_close(g);
    ct__tstore_free(&ts);
    (void)acc;
    return 0;
}
