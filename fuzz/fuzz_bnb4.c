/* fuzz/fuzz_bnb4.c — libFuzzer target for the bitsandbytes 4-bit reader
 * (src/formats/bnb4.c): the input is a safetensors image
 * (ct__safetensors_parse); every weight with a quant state beside it goes
 * through ct__bnb4_mat. Checks its promises: on failure the message starts
 * with the file ("?" here: the image is not a mapped file); on success the matrix has a positive shape, its codes and scales
 * lie in the store, and every row decodes (ct__mat_row_f32 reads each code
 * and scale once, so ASan sees any size it got wrong) and the fused product
 * runs. Inputs that parse as JSON also go through ct__bnb4_check_config
 * (config.json's quantization_config). Seeds: fuzz/seeds/bnb4/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/bnb4.h"
#include "formats/json.h"
#include "formats/loaders.h"
#include "formats/tstore.h"
#include "tensor/nf4_matmul.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size && data[0] == '{') {
        ct_json *j = NULL;
        if (ct__json_parse((const char *)data, size, "config.json", &j) == CT_OK) {
            int q4 = 0, dq = 0;
            ct_q4_type t = CT_Q4_NF4;
            ct_status s = ct__bnb4_check_config(j, "config.json", &q4, &t, &dq);
            if (s != CT_OK && strncmp(ct_errmsg(), "config.json", 11) != 0) abort();
            ct__json_free(j);
        }
        return 0;
    }
    ct_tstore ts;
    ct__tstore_init(&ts);
    if (ct__safetensors_parse(data, size, "fuzz.safetensors", 0, &ts) != CT_OK) return 0;
    volatile float acc = 0;
    size_t n0 = ts.n;
    for (size_t i = 0; i < n0; i++) {
        int part = ct__bnb4_part(ts.t[i].name);
        if (part != 2 && part != 3) continue;
        char wname[512];
        size_t len = strlen(ts.t[i].name) - strlen(".quant_state.bitsandbytes__nf4");
        if (len >= sizeof wname) continue;
        memcpy(wname, ts.t[i].name, len);
        wname[len] = 0;
        ct_mat W;
        ct_status s = ct__bnb4_mat(&ts, wname, &W);
        if (s != CT_OK) {
            /* no mapped file here: messages start with the file, "?" */
            if (strncmp(ct_errmsg(), "?: ", 3) != 0 && s != CT_ERR_NOMEM) abort();
            continue;
        }
        if (W.dtype != CT_DT_NF4 || !W.q4 || W.rows <= 0 || W.cols <= 0 || W.data != W.q4->packed) abort();
        if ((int64_t)W.rows * W.cols > (1 << 22)) continue; /* keep runs fast */
        float *row = malloc(sizeof(float) * (size_t)W.cols), *x = calloc((size_t)W.cols, sizeof(float)),
              *y = malloc(sizeof(float) * (size_t)W.rows);
        if (!row || !x || !y) abort();
        for (int r = 0; r < W.rows; r++) {
            ct__mat_row_f32(&W, r, row);
            acc += row[0];
        }
        x[0] = 1.0f;
        ct__matmul(y, x, &W, NULL, 1, NULL);
        acc += y[0];
        free(row);
        free(x);
        free(y);
    }
    ct__tstore_free(&ts);
    (void)acc;
    return 0;
}
