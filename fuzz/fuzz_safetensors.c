/* fuzz/fuzz_safetensors.c — libFuzzer target for the safetensors reader:
 * ct__safetensors_parse on the input buffer (no temp files).
 *
 * Checks the reader's promises: on failure the store is untouched and the
 * message names the file; on success every tensor's bytes lie inside the
 * input's data buffer (or in a buffer the store owns, for misaligned ones),
 * nbytes matches dtype x shape, the tensors cover the data buffer exactly,
 * and every byte of every tensor is readable. Seeds: fuzz/seeds/safetensors/.
 * Leaves out: the HF directory layer (paths and shards; see test_hf_config). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/loaders.h"
#include "formats/tstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ct_tstore ts;
    ct__tstore_init(&ts);
    volatile uint64_t acc = 0;
    ct_status s = ct__safetensors_parse(data, size, "fuzz.safetensors", 3, &ts);
    if (s != CT_OK) {
        if (ts.n || ts.nowned || strncmp(ct_errmsg(), "fuzz.safetensors", 16) != 0) abort();
        return 0;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | data[i];
    const uint8_t *buf = data + 8 + hlen, *end = data + size;
    size_t total = 0;
    for (size_t i = 0; i < ts.n; i++) {
        const ct_tref *t = &ts.t[i];
        const uint8_t *p = t->data;
        int64_t numel = ct__tref_numel(t);
        if (t->file != 3 || t->ndim > CT_MAX_DIMS || (numel == 0) != (t->nbytes == 0)) abort();
        if (numel && ct__dtype_nbytes(t->dtype, numel) != t->nbytes) abort();
        int owned = 0;
        for (size_t k = 0; k < ts.nowned; k++) owned |= p == ts.owned[k];
        if (t->nbytes && !owned && (p < buf || p + t->nbytes > end)) abort();
        for (size_t k = 0; k < t->nbytes; k++) acc += p[k];
        total += t->nbytes;
    }
    if (total != (size_t)(end - buf)) abort();
    ct__tstore_free(&ts);
    (void)acc;
    return 0;
}
