/* tests/unit/test_llama2c.c — the llama2.c checkpoint loader
 * (src/formats/llama2c.c).
 *
 * Tiny checkpoints are written here in the legacy export layout (karpathy's
 * export.py legacy_export / run.c memory_map_weights) with each float equal
 * to its own index, so every tensor's slice can be checked by value: the
 * first element of blk.N.attn_k.weight must be the index where wk starts plus
 * N * KV * C. Then corrupt headers and sizes, each failing with a one-line
 * message naming the file and the field. (stories260K.bin against its GGUF
 * twin is in test_gguf.c.)
 */
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "core/internal.h"
#include "formats/loaders.h"

enum { C = 8, H = 12, L = 2, NH = 2, NKV = 1, V = 5, T = 4 };
enum { HS = C / NH, KV = NKV * HS };

/* Start index (in floats after the header) of each stacked array, in the order
 * export.py writes them. */
enum {
    O_EMB = 0,
    O_RMS_ATT = O_EMB + V * C,
    O_WQ = O_RMS_ATT + L * C,
    O_WK = O_WQ + L * C * C,
    O_WV = O_WK + L * KV * C,
    O_WO = O_WV + L * KV * C,
    O_RMS_FFN = O_WO + L * C * C,
    O_W1 = O_RMS_FFN + L * C,
    O_W2 = O_W1 + L * H * C,
    O_W3 = O_W2 + L * C * H,
    O_RMS_FINAL = O_W3 + L * H * C,
    O_FREQ = O_RMS_FINAL + C,          /* freq_cis_real, freq_cis_imag: T * HS/2 each */
    O_WCLS = O_FREQ + 2 * T * HS / 2,
    N_SHARED = O_WCLS,
    N_UNSHARED = O_WCLS + V * C,
};

static char g_path[64];

/* Write header ints hdr[7] then n floats 0, 1, 2, ... (+ extra raw bytes). */
static void write_ckpt(const int32_t *hdr, size_t n, size_t extra) {
    snprintf(g_path, sizeof g_path, "/tmp/ctune-l2c-XXXXXX");
    int fd = mkstemp(g_path);
    if (fd < 0) { perror("mkstemp"); exit(1); }
    FILE *f = fdopen(fd, "wb");
    fwrite(hdr, 4, 7, f);
    for (size_t i = 0; i < n; i++) { float v = (float)i; fwrite(&v, 4, 1, f); }
    for (size_t i = 0; i < extra; i++) fputc(0, f);
    fclose(f);
}

static float first(const ct_tstore *ts, const char *name) {
    const ct_tref *t = ct__tstore_find(ts, name);
    return t ? ((const float *)t->data)[0] : -1.0f;
}

static int shape_is(const ct_tstore *ts, const char *name, int64_t r, int64_t c) {
    const ct_tref *t = ct__tstore_find(ts, name);
    if (!t || t->dtype != CT_DT_F32) return 0;
    if (r == 0) return t->ndim == 1 && t->shape[0] == c && t->nbytes == (size_t)c * 4;
    return t->ndim == 2 && t->shape[0] == r && t->shape[1] == c && t->nbytes == (size_t)(r * c) * 4;
}

static void test_unshared(void) {
    const int32_t hdr[7] = {C, H, L, NH, NKV, -V, T};
    write_ckpt(hdr, N_UNSHARED, 0);
    ct_tstore ts;
    ct__tstore_init(&ts);
    ct_config c;
    CHECK_OK(ct__load_llama2c(g_path, &ts, &c));
    CHECK_EQ_INT(ts.n, 2 + 9 * L + 1);
    CHECK(shape_is(&ts, "token_embd.weight", V, C));
    CHECK(shape_is(&ts, "output.weight", V, C));
    CHECK(shape_is(&ts, "output_norm.weight", 0, C));
    CHECK_EQ_INT(first(&ts, "output.weight"), O_WCLS);
    CHECK_EQ_INT(first(&ts, "output_norm.weight"), O_RMS_FINAL);
    for (int l = 0; l < L; l++) {
        char n[64];
#define AT(fmt, want, r, cc)                                  \
        snprintf(n, sizeof n, fmt, l);                        \
        CHECK_EQ_INT(first(&ts, n), want);                    \
        CHECK(shape_is(&ts, n, r, cc));
        AT("blk.%d.attn_norm.weight", O_RMS_ATT + l * C, 0, C)
        AT("blk.%d.attn_q.weight", O_WQ + l * C * C, C, C)
        AT("blk.%d.attn_k.weight", O_WK + l * KV * C, KV, C)
        AT("blk.%d.attn_v.weight", O_WV + l * KV * C, KV, C)
        AT("blk.%d.attn_output.weight", O_WO + l * C * C, C, C)
        AT("blk.%d.ffn_norm.weight", O_RMS_FFN + l * C, 0, C)
        AT("blk.%d.ffn_gate.weight", O_W1 + l * H * C, H, C)
        AT("blk.%d.ffn_down.weight", O_W2 + l * C * H, C, H)
        AT("blk.%d.ffn_up.weight", O_W3 + l * H * C, H, C)
#undef AT
    }
    /* last element of the last layer's w3 */
    const ct_tref *w3 = ct__tstore_find(&ts, "blk.1.ffn_up.weight");
    CHECK(w3 && ((const float *)w3->data)[H * C - 1] == (float)(O_RMS_FINAL - 1));
    CHECK(c.arch == CT_ARCH_LLAMA && strcmp(c.model_type, "llama") == 0);
    CHECK(c.dim == C && c.hidden_dim == H && c.n_layers == L && c.n_heads == NH && c.n_kv_heads == NKV);
    CHECK(c.head_dim == HS && c.vocab_size == V && c.max_seq_len == T && c.tie_embeddings == 0);
    CHECK(c.rope_style == CT_ROPE_NORM && c.rope_theta == 10000.0f && c.norm_eps == 1e-5f);
    CHECK(c.bos_id == 1 && c.eos_id == 2 && c.qkv_bias == 0);
    ct__tstore_free(&ts);
    remove(g_path);
}

static void test_shared(void) {
    const int32_t hdr[7] = {C, H, L, NH, NKV, V, T};
    write_ckpt(hdr, N_SHARED, 0);
    ct_tstore ts;
    ct__tstore_init(&ts);
    ct_config c;
    CHECK_OK(ct__load_llama2c(g_path, &ts, &c));
    CHECK_EQ_INT(ts.n, 2 + 9 * L);
    CHECK(ct__tstore_find(&ts, "output.weight") == NULL);
    CHECK_EQ_INT(c.tie_embeddings, 1);
    CHECK_EQ_INT(c.vocab_size, V);
    ct__tstore_free(&ts);
    remove(g_path);

    /* trailing bytes are tolerated (with a warning) */
    write_ckpt(hdr, N_SHARED, 12);
    ct__tstore_init(&ts);
    CHECK_OK(ct__load_llama2c(g_path, &ts, &c));
    ct__tstore_free(&ts);
    remove(g_path);
}

/* Load a checkpoint with header hdr and n floats; expect failure `want` and a
 * single-line message naming the file and `needle`. */
static void expect_fail(const char *name, const int32_t *hdr, size_t n, ct_status want, const char *needle) {
    write_ckpt(hdr, n, 0);
    ct_tstore ts;
    ct__tstore_init(&ts);
    ct_config c;
    ct_status st = ct__load_llama2c(g_path, &ts, &c);
    const char *msg = ct_errmsg();
    int ok = st == want && ts.n == 0 && ts.nfiles == 0 && strstr(msg, g_path) && strstr(msg, needle) &&
             !strchr(msg, '\n');
    if (!ok) fprintf(stderr, "case %s: status %d (want %d): %s\n", name, st, want, msg);
    else printf("ok   %s: %s\n", name, msg);
    CHECK(ok);
    ct__tstore_free(&ts);
    remove(g_path);
}

static void test_bad(void) {
    int32_t h[7];
#define HDR(a, b, c_, d, e, f, g) (h[0] = a, h[1] = b, h[2] = c_, h[3] = d, h[4] = e, h[5] = f, h[6] = g, h)
    expect_fail("truncated", HDR(C, H, L, NH, NKV, V, T), N_SHARED - 1, CT_ERR_FORMAT, "truncated");
    expect_fail("unshared_missing_wcls", HDR(C, H, L, NH, NKV, -V, T), N_SHARED, CT_ERR_FORMAT, "truncated");
    expect_fail("zero_dim", HDR(0, H, L, NH, NKV, V, T), N_SHARED, CT_ERR_FORMAT, "dim = 0");
    expect_fail("neg_layers", HDR(C, H, -1, NH, NKV, V, T), N_SHARED, CT_ERR_FORMAT, "n_layers");
    expect_fail("heads_divide", HDR(C, H, L, 3, 1, V, T), N_SHARED, CT_ERR_FORMAT, "n_heads = 3");
    expect_fail("kv_heads", HDR(C, H, L, NH, 3, V, T), N_SHARED, CT_ERR_FORMAT, "n_kv_heads = 3");
    expect_fail("odd_head", HDR(6, H, L, 2, 1, V, T), N_SHARED, CT_ERR_FORMAT, "even");
    expect_fail("zero_vocab", HDR(C, H, L, NH, NKV, 0, T), N_SHARED, CT_ERR_FORMAT, "vocab_size");
    expect_fail("zero_seq", HDR(C, H, L, NH, NKV, V, 0), N_SHARED, CT_ERR_FORMAT, "seq_len");
    expect_fail("huge", HDR(1 << 30, 1 << 30, 1 << 30, 2, 1, V, T), 16, CT_ERR_FORMAT, "overflow");
    expect_fail("huge_fits", HDR(1 << 20, 1 << 20, 4, 2, 1, -(1 << 20), 1 << 20), 16, CT_ERR_FORMAT,
                "truncated");
    expect_fail("ak42", HDR(0x616b3432, 1, 0, 0, 0, 0, 0), 16, CT_ERR_UNSUPPORTED, "ak42");
#undef HDR
    /* shorter than the header */
    snprintf(g_path, sizeof g_path, "/tmp/ctune-l2c-XXXXXX");
    int fd = mkstemp(g_path);
    if (fd >= 0) {
        if (write(fd, "abcdefghij", 10) != 10) perror("write");
        close(fd);
        ct_tstore ts;
        ct__tstore_init(&ts);
        ct_config c;
        CHECK_EQ_INT(ct__load_llama2c(g_path, &ts, &c), CT_ERR_FORMAT);
        CHECK(strstr(ct_errmsg(), g_path) && strstr(ct_errmsg(), "header"));
        ct__tstore_free(&ts);
        remove(g_path);
    }
    ct_tstore ts;
    ct__tstore_init(&ts);
    ct_config c;
    CHECK_EQ_INT(ct__load_llama2c("/nonexistent/model.bin", &ts, &c), CT_ERR_IO);
    CHECK(strstr(ct_errmsg(), "/nonexistent/model.bin") != NULL);
}

/* The real checkpoint: header values as README states them. */
static void test_stories(void) {
    const char *sh = getenv("CTUNE_SHARED");
    char *p = ct__path_join(sh && *sh ? sh : "../shared", "models/stories260K/stories260K.bin");
    if (!ct__file_exists(p)) {
        printf("test_llama2c: %s not found, skipping the real checkpoint\n", p);
        free(p);
        return;
    }
    ct_tstore ts;
    ct__tstore_init(&ts);
    ct_config c;
    CHECK_OK(ct__load_llama2c(p, &ts, &c));
    CHECK(c.dim == 64 && c.hidden_dim == 172 && c.n_layers == 5 && c.n_heads == 8 && c.n_kv_heads == 4);
    CHECK(c.vocab_size == 512 && c.max_seq_len == 512 && c.tie_embeddings == 1);
    const ct_tref *n = ct__tstore_find(&ts, "output_norm.weight");
    /* the final norm sits 64 floats + 2 * 512*4 freq floats before the end of the file */
    CHECK(n && (const uint8_t *)n->data == ts.files[0].data + ts.files[0].size - (64 + 4096) * 4);
    ct__tstore_free(&ts);
    free(p);
}

int main(void) {
    test_unshared();
    test_shared();
    test_bad();
    test_stories();
    return ct_check_done("test_llama2c");
}
