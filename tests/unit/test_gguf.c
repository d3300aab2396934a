/* tests/unit/test_gguf.c — the GGUF reader (src/formats/gguf.c) and the GGUF
 * model config reader (src/formats/gguf_model.c).
 *
 *  - stories260K.gguf against stories260K.bin (the llama2.c loader): every
 *    tensor bit-identical, config fields equal, values as the README states;
 *  - metadata of the real files as gguf-py reads them (counts, token strings,
 *    total string bytes of 50k-entry arrays);
 *  - a small valid GGUF built here byte by byte, then corrupted one field at a
 *    time (and truncated at every length): each open fails with a message
 *    naming the file and the key or tensor at fault;
 *  - with CTUNE_GGUF_PY_DIR (tests/e2e/test_gguf_py.sh): files written by
 *    gguf-py with every value type and tiny qwen2/gpt2/llama model headers.
 */
#include <string.h>
#include "check.h"
#include "core/internal.h"
#include "formats/gguf.h"
#include "formats/loaders.h"

static const char *shared_dir(void) {
    const char *s = getenv("CTUNE_SHARED");
    return s && *s ? s : "../shared";
}

static char *shared_path(const char *rel) {
    char *p = ct__path_join(shared_dir(), rel);
    if (!p) abort();
    return p;
}

/* ---- stories260K: GGUF vs llama2.c --------------------------------------- */

static void test_stories(void) {
    char *gp = shared_path("models/stories260K/stories260K.gguf");
    char *bp = shared_path("models/stories260K/stories260K.bin");
    ct_tstore tg, tb;
    ct__tstore_init(&tg);
    ct__tstore_init(&tb);
    ct_config cg, cb;
    CHECK_OK(ct__load_gguf_model(gp, &tg, &cg, NULL));
    CHECK_OK(ct__load_llama2c(bp, &tb, &cb));
    CHECK_EQ_INT(tg.n, 48); /* 9 per layer x 5 + embedding, final norm, output */
    CHECK_EQ_INT(tb.n, 47); /* tied: no output.weight */
    for (size_t i = 0; i < tb.n; i++) {
        const ct_tref *b = &tb.t[i], *g = ct__tstore_find(&tg, b->name);
        CHECK(g != NULL);
        if (!g) { fprintf(stderr, "missing in GGUF: %s\n", b->name); continue; }
        CHECK_EQ_INT(g->dtype, CT_DT_F32);
        CHECK_EQ_INT(b->dtype, CT_DT_F32);
        CHECK_EQ_INT(g->ndim, b->ndim);
        for (int d = 0; d < b->ndim; d++) CHECK_EQ_INT(g->shape[d], b->shape[d]);
        CHECK_EQ_INT(g->nbytes, b->nbytes);
        int same = g->nbytes == b->nbytes && memcmp(g->data, b->data, b->nbytes) == 0;
        if (!same) fprintf(stderr, "tensor %s differs\n", b->name);
        CHECK(same);
    }
    const ct_tref *out = ct__tstore_find(&tg, "output.weight"), *emb = ct__tstore_find(&tb, "token_embd.weight");
    CHECK(out && emb && out->nbytes == emb->nbytes && memcmp(out->data, emb->data, emb->nbytes) == 0);
    const ct_tref *wk = ct__tstore_find(&tb, "blk.4.attn_k.weight");
    CHECK(wk && wk->ndim == 2 && wk->shape[0] == 32 && wk->shape[1] == 64); /* (KV, C) */
    const ct_tref *w2 = ct__tstore_find(&tg, "blk.0.ffn_down.weight");
    CHECK(w2 && w2->ndim == 2 && w2->shape[0] == 64 && w2->shape[1] == 172); /* (C, H) */
    int64_t nparams = 0;
    for (size_t i = 0; i < tb.n; i++) nparams += ct__tref_numel(&tb.t[i]);
    CHECK_EQ_INT(nparams, 264128 - 512 * 8); /* README's float count less freq_cis (T*HS) */

    /* README: dim 64, hidden 172, 5 layers, 8 heads, 4 KV heads, vocab 512, context 512, tied */
    const ct_config *cs[2] = {&cg, &cb};
    for (int k = 0; k < 2; k++) {
        const ct_config *c = cs[k];
        CHECK_EQ_INT(c->arch, CT_ARCH_LLAMA);
        CHECK(strcmp(c->model_type, "llama") == 0);
        CHECK_EQ_INT(c->dim, 64);
        CHECK_EQ_INT(c->hidden_dim, 172);
        CHECK_EQ_INT(c->n_layers, 5);
        CHECK_EQ_INT(c->n_heads, 8);
        CHECK_EQ_INT(c->n_kv_heads, 4);
        CHECK_EQ_INT(c->head_dim, 8);
        CHECK_EQ_INT(c->vocab_size, 512);
        CHECK(c->norm_eps == 1e-5f);
        CHECK(c->rope_theta == 10000.0f);
        CHECK_EQ_INT(c->rope_style, CT_ROPE_NORM);
        CHECK_EQ_INT(c->qkv_bias, 0);
        CHECK_EQ_INT(c->bos_id, 1);
        CHECK_EQ_INT(c->eos_id, 2);
    }
    CHECK_EQ_INT(cb.max_seq_len, 512);
    CHECK_EQ_INT(cg.max_seq_len, 2048); /* llama.context_length in the GGUF */
    CHECK_EQ_INT(cb.tie_embeddings, 1);
    CHECK_EQ_INT(cg.tie_embeddings, 0); /* the GGUF carries a copy as output.weight */
    ct__tstore_free(&tg);
    ct__tstore_free(&tb);

    /* with a tokenizer requested: built from tokenizer.ggml.* (512 SPM tokens) */
    ct__tstore_init(&tg);
    ct_tokenizer *tok = NULL;
    CHECK_OK(ct__load_gguf_model(gp, &tg, &cg, &tok));
    CHECK(tok != NULL);
    if (tok) {
        CHECK_EQ_INT(ct_tokenizer_vocab_size(tok), 512);
        CHECK_EQ_INT(ct_tokenizer_bos(tok), 1);
        CHECK_EQ_INT(ct_tokenizer_eos(tok), 2);
    }
    ct_tokenizer_free(tok);
    ct__tstore_free(&tg);
    free(gp);
    free(bp);
}

/* ---- metadata of the real files ---------------------------------------------- */

/* Count and total bytes of a string array; checks a few entries. */
static void check_tokens(const ct_gguf *g, const char *key, size_t want_n, size_t want_bytes,
                         const char *const *first, size_t nfirst, const char *last) {
    ct_gguf_type et;
    size_t n = 0, total = 0;
    CHECK(ct__gguf_get_arr(g, key, &et, &n));
    CHECK_EQ_INT(et, CT_GGUF_STRING);
    CHECK_EQ_INT(n, want_n);
    const char *s;
    size_t len;
    for (size_t i = 0; i < n; i++) {
        if (!ct__gguf_arr_str(g, key, i, &s, &len)) { CHECK(0); break; }
        total += len;
    }
    CHECK_EQ_INT(total, want_bytes);
    for (size_t i = 0; i < nfirst; i++)
        CHECK(ct__gguf_arr_str(g, key, i, &s, &len) && len == strlen(first[i]) && !memcmp(s, first[i], len));
    CHECK(ct__gguf_arr_str(g, key, n - 1, &s, &len) && len == strlen(last) && !memcmp(s, last, len));
    CHECK(!ct__gguf_arr_str(g, key, n, &s, &len));
}

static void test_vocab_files(void) {
    char *p = shared_path("models/tokenizers/vocab-gpt-2.gguf");
    ct_gguf *g = NULL;
    CHECK_OK(ct__gguf_open(p, &g, NULL));
    if (g) {
        /* expected values as gguf-py's GGUFReader reports them */
        const char *first[] = {"!", "\"", "#", "$"};
        check_tokens(g, "tokenizer.ggml.tokens", 50257, 356735, first, 4, "<|endoftext|>");
        const char *m0[] = {"\xc4\xa0 t", "\xc4\xa0 a", "h e", "i n"};
        check_tokens(g, "tokenizer.ggml.merges", 50000, 406304, m0, 4, "\xc4\xa0g azed");
        const char *s;
        size_t len;
        CHECK(ct__gguf_get_str(g, "tokenizer.ggml.pre", &s, &len) && len == 5 && !memcmp(s, "gpt-2", 5));
        uint32_t u = 0;
        CHECK(ct__gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u) && u == 50256);
        int32_t tt = 0;
        CHECK(ct__gguf_arr_i32(g, "tokenizer.ggml.token_type", 0, &tt) && tt == 1);
        float f = 0;
        CHECK(ct__gguf_get_f32(g, "gpt2.attention.layer_norm_epsilon", &f) && f == 1e-5f);
        CHECK(!ct__gguf_get_u32(g, "tokenizer.ggml.pre", &u)); /* a string is not an int */
        CHECK(!ct__gguf_has(g, "tokenizer.ggml.scores"));
    }
    ct__gguf_close(g);
    free(p);

    p = shared_path("models/tokenizers/vocab-llama-spm.gguf");
    g = NULL;
    CHECK_OK(ct__gguf_open(p, &g, NULL));
    if (g) {
        const char *first[] = {"<unk>", "<s>", "</s>", "<0x00>"};
        check_tokens(g, "tokenizer.ggml.tokens", 32000, 210919, first, 4, "\xe7\xbb\x99");
        ct_gguf_type et;
        size_t n;
        CHECK(ct__gguf_get_arr(g, "tokenizer.ggml.scores", &et, &n) && et == CT_GGUF_F32 && n == 32000);
        int32_t tt = 0;
        CHECK(ct__gguf_arr_i32(g, "tokenizer.ggml.token_type", 3, &tt) && tt == 6);
        int b = 0;
        CHECK(ct__gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b) && b == 1);
        CHECK(ct__gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b) && b == 0);
    }
    ct__gguf_close(g);
    free(p);

    /* a vocabulary-only file is not a model: no token_embd.weight */
    p = shared_path("models/tokenizers/vocab-llama-spm.gguf");
    ct_tstore ts;
    ct__tstore_init(&ts);
    ct_config cfg;
    CHECK_EQ_INT(ct__load_gguf_model(p, &ts, &cfg, NULL), CT_ERR_MISSING);
    CHECK(strstr(ct_errmsg(), "vocab-llama-spm.gguf") && strstr(ct_errmsg(), "no tensors"));
    ct__tstore_free(&ts);
    free(p);
}

/* ---- a small GGUF built by hand, and its corruptions ----------------------- */

typedef struct { uint8_t b[1024]; size_t n; } buf;
static void put(buf *w, const void *p, size_t n) { memcpy(w->b + w->n, p, n); w->n += n; }
static void u32(buf *w, uint32_t v) { put(w, &v, 4); }
static void u64(buf *w, uint64_t v) { put(w, &v, 8); }
static void str(buf *w, const char *s) { u64(w, strlen(s)); put(w, s, strlen(s)); }

typedef struct {
    uint32_t version, align;       /* align 0: no general.alignment key */
    uint64_t nkv, nt;              /* counts written in the header */
    uint64_t arch_len;             /* length written for the architecture string */
    const char *key2;              /* name of the third key */
    uint32_t t2_type, t2_ndims;
    uint64_t t2_off, t2_ne0, t2_ne1;
    int nest;                      /* extra array nesting of the 'nested' key */
} spec;

static spec valid_spec(void) {
    spec s = {3, 32, 4, 2, 5, "general.alignment", 8, 2, 32, 64, 1, 1};
    return s;
}

/* Tensors: "w.f32" F32 ne [4, 2] = 0..7 at 0; "w.q8" (ne [64, 1]) Q8_0 at 32. */
static void build(buf *w, const spec *s) {
    w->n = 0;
    put(w, "GGUF", 4);
    u32(w, s->version);
    u64(w, s->nt);
    u64(w, s->nkv);
    str(w, "general.architecture");
    u32(w, CT_GGUF_STRING);
    u64(w, s->arch_len);
    put(w, "llama", 5);
    str(w, "tok");
    u32(w, CT_GGUF_ARRAY);
    u32(w, CT_GGUF_STRING);
    u64(w, 2);
    str(w, "a");
    str(w, "bcd");
    str(w, "nested"); /* [[7]] wrapped in s->nest more array levels */
    u32(w, CT_GGUF_ARRAY);
    for (int i = 0; i < s->nest; i++) { u32(w, CT_GGUF_ARRAY); u64(w, 1); }
    u32(w, CT_GGUF_I16);
    u64(w, 1);
    uint16_t seven = 7;
    put(w, &seven, 2);
    str(w, s->key2);
    u32(w, CT_GGUF_U32);
    u32(w, s->align);
    str(w, "w.f32");
    u32(w, 2);
    u64(w, 4);
    u64(w, 2);
    u32(w, 0);
    u64(w, 0);
    str(w, "w.q8");
    u32(w, s->t2_ndims);
    u64(w, s->t2_ne0);
    if (s->t2_ndims > 1) u64(w, s->t2_ne1);
    for (uint32_t d = 2; d < s->t2_ndims && d < 8; d++) u64(w, 1);
    u32(w, s->t2_type);
    u64(w, s->t2_off);
    while (w->n % (s->align ? s->align : 32)) w->b[w->n++] = 0;
    size_t data_start = w->n;
    for (int i = 0; i < 8; i++) { float f = (float)i; put(w, &f, 4); }
    if (s->t2_off <= 256) while (w->n < data_start + s->t2_off) w->b[w->n++] = 0;
    for (int i = 0; i < 2 * 34; i++) w->b[w->n++] = (uint8_t)i; /* two Q8_0 blocks */
}

static void test_handmade_valid(void) {
    buf w;
    spec s = valid_spec();
    build(&w, &s);
    ct_tstore ts;
    ct__tstore_init(&ts);
    ct_gguf *g = NULL;
    CHECK_OK(ct__gguf_open_mem(w.b, w.n, "hand.gguf", &g, &ts));
    CHECK_EQ_INT(ts.n, 2);
    const ct_tref *a = ct__tstore_find(&ts, "w.f32"), *q = ct__tstore_find(&ts, "w.q8");
    CHECK(a && a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 4 && a->nbytes == 32); /* ne reversed */
    CHECK(a && ((const float *)a->data)[5] == 5.0f);
    CHECK(q && q->dtype == CT_DT_Q8_0 && q->ndim == 2 && q->shape[0] == 1 && q->shape[1] == 64);
    CHECK(q && q->nbytes == 68 && ((const uint8_t *)q->data)[67] == 67);
    const char *str_;
    size_t len;
    CHECK(g && ct__gguf_arr_str(g, "tok", 1, &str_, &len) && len == 3 && !memcmp(str_, "bcd", 3));
    ct_gguf_type et;
    size_t n;
    CHECK(g && ct__gguf_get_arr(g, "nested", &et, &n) && et == CT_GGUF_ARRAY && n == 1);
    CHECK(g && !ct__gguf_arr_i32(g, "nested", 0, &(int32_t){0}));
    uint32_t al = 0;
    CHECK(g && ct__gguf_get_u32(g, "general.alignment", &al) && al == 32);
    const char *k;
    ct_gguf_type kt;
    CHECK(g && ct__gguf_n_kv(g) == 4);
    CHECK(g && ct__gguf_key_at(g, 1, &k, &len, &kt) && len == 3 && !memcmp(k, "tok", 3) && kt == CT_GGUF_ARRAY);
    CHECK(g && !ct__gguf_key_at(g, 4, &k, &len, &kt));
    ct__gguf_close(g);
    ct__tstore_free(&ts);

    /* general.alignment 64 moves the data section start to a multiple of 64 */
    s.align = 64;
    s.t2_off = 64;
    build(&w, &s);
    ct__tstore_init(&ts);
    CHECK_OK(ct__gguf_open_mem(w.b, w.n, "hand64.gguf", &g, &ts));
    a = ct__tstore_find(&ts, "w.f32");
    q = ct__tstore_find(&ts, "w.q8");
    CHECK(a && (size_t)((const uint8_t *)a->data - w.b) % 64 == 0 && ((const float *)a->data)[7] == 7.0f);
    CHECK(q && (const uint8_t *)q->data - (const uint8_t *)a->data == 64 && ((const uint8_t *)q->data)[1] == 1);
    ct__gguf_close(g);
    ct__tstore_free(&ts);

    /* every strict prefix of the valid file fails cleanly */
    s = valid_spec();
    build(&w, &s);
    int bad = 0;
    for (size_t cut = 0; cut < w.n; cut++) {
        ct_tstore t2;
        ct__tstore_init(&t2);
        ct_status st = ct__gguf_open_mem(w.b, cut, "cut.gguf", &g, &t2);
        if (st == CT_OK) { bad++; ct__gguf_close(g); }
        else if (!strstr(ct_errmsg(), "cut.gguf")) bad++;
        ct__tstore_free(&t2);
    }
    CHECK_EQ_INT(bad, 0);
}

/* Open a corrupted variant; expect status want and a message with both needles. */
static void expect_fail(const char *name, const spec *s, ct_status want, const char *needle) {
    buf w;
    build(&w, s);
    char fname[64];
    snprintf(fname, sizeof fname, "corrupt-%s.gguf", name);
    ct_tstore ts;
    ct__tstore_init(&ts);
    ct_gguf *g = NULL;
    ct_status st = ct__gguf_open_mem(w.b, w.n, fname, &g, &ts);
    const char *msg = ct_errmsg();
    int ok = st == want && g == NULL && ts.n == 0 && strstr(msg, fname) && strstr(msg, needle) &&
             !strchr(msg, '\n');
    if (!ok) fprintf(stderr, "case %s: status %d (want %d), message: %s\n", name, st, want, msg);
    else printf("ok   %s: %s\n", name, msg);
    CHECK(ok);
    ct__gguf_close(g);
    ct__tstore_free(&ts);
}

static void test_corrupt(void) {
    spec s;
    buf w;
    s = valid_spec();
    build(&w, &s);
    w.b[3] = 'X';
    CHECK(ct__gguf_open_mem(w.b, w.n, "magic.gguf", &(ct_gguf *){0}, NULL) == CT_ERR_FORMAT &&
          strstr(ct_errmsg(), "magic.gguf") && strstr(ct_errmsg(), "magic"));
    s = valid_spec(); s.version = 1;  expect_fail("v1", &s, CT_ERR_UNSUPPORTED, "version 1");
    s = valid_spec(); s.version = 4;  expect_fail("v4", &s, CT_ERR_UNSUPPORTED, "version 4");
    s = valid_spec(); s.version = 0x03000000; expect_fail("bigendian", &s, CT_ERR_UNSUPPORTED, "big-endian");
    s = valid_spec(); s.nkv = 1ull << 60; expect_fail("kv_count", &s, CT_ERR_FORMAT, "metadata count");
    s = valid_spec(); s.nt = 1ull << 40;  expect_fail("tensor_count", &s, CT_ERR_FORMAT, "tensor count");
    s = valid_spec(); s.arch_len = 1ull << 20; expect_fail("strlen", &s, CT_ERR_FORMAT, "general.architecture");
    s = valid_spec(); s.arch_len = ~0ull; expect_fail("strlen_max", &s, CT_ERR_FORMAT, "general.architecture");
    s = valid_spec(); s.nest = 20;    expect_fail("deep_nesting", &s, CT_ERR_FORMAT, "'nested'");
    s = valid_spec(); s.key2 = "tok"; expect_fail("dup_key", &s, CT_ERR_FORMAT, "'tok' appears twice");
    s = valid_spec(); s.align = 24;   expect_fail("align", &s, CT_ERR_FORMAT, "general.alignment");
    s = valid_spec(); s.align = 0;    expect_fail("align0", &s, CT_ERR_FORMAT, "general.alignment");
    s = valid_spec(); s.t2_off = 1ull << 30; expect_fail("offset_range", &s, CT_ERR_FORMAT, "'w.q8'");
    s = valid_spec(); s.t2_off = ~0ull & ~31ull; expect_fail("offset_wrap", &s, CT_ERR_FORMAT, "'w.q8'");
    s = valid_spec(); s.t2_off = 36;  expect_fail("misaligned", &s, CT_ERR_FORMAT, "not a multiple");
    s = valid_spec(); s.t2_type = 12; expect_fail("q4_k", &s, CT_ERR_UNSUPPORTED, "Q4_K");
    s = valid_spec(); s.t2_type = 14; expect_fail("q6_k", &s, CT_ERR_UNSUPPORTED, "'w.q8': GGML type Q6_K");
    s = valid_spec(); s.t2_type = 99; expect_fail("unknown_type", &s, CT_ERR_FORMAT, "unknown GGML type id 99");
    s = valid_spec(); s.t2_ne0 = 1ull << 40; s.t2_ne1 = 1ull << 40;
    expect_fail("ne_overflow", &s, CT_ERR_FORMAT, "overflow");
    s = valid_spec(); s.t2_ne0 = 1ull << 63; expect_fail("ne_negative", &s, CT_ERR_FORMAT, "'w.q8'");
    s = valid_spec(); s.t2_ne0 = 48;  expect_fail("block_multiple", &s, CT_ERR_FORMAT, "block size");
    s = valid_spec(); s.t2_ne0 = 96;  expect_fail("data_past_eof", &s, CT_ERR_FORMAT, "past the end");
    s = valid_spec(); s.t2_ndims = 5; expect_fail("ndims", &s, CT_ERR_FORMAT, "5 dimensions");
    s = valid_spec(); s.t2_ndims = 1u << 31; expect_fail("ndims_huge", &s, CT_ERR_FORMAT, "dimensions");

    /* through the file path too: a truncated copy of the real model */
    char *gp = shared_path("models/stories260K/stories260K.gguf");
    char *data = NULL;
    size_t len = 0;
    CHECK_OK(ct__read_file(gp, &data, &len));
    char tmp[] = "/tmp/ctune-test-gguf-XXXXXX";
    int fd = mkstemp(tmp);
    CHECK(fd >= 0);
    if (fd >= 0 && data) {
        FILE *f = fdopen(fd, "wb");
        fwrite(data, 1, len / 2, f);
        fclose(f);
        ct_tstore ts;
        ct__tstore_init(&ts);
        ct_config cfg;
        ct_status st = ct__load_gguf_model(tmp, &ts, &cfg, NULL);
        CHECK_EQ_INT(st, CT_ERR_FORMAT);
        CHECK(strstr(ct_errmsg(), tmp) && strstr(ct_errmsg(), "tensor '") && strstr(ct_errmsg(), "truncated"));
        printf("ok   truncated file: %s\n", ct_errmsg());
        ct__tstore_free(&ts);
        remove(tmp);
    }
    free(data);
    free(gp);
}

/* ---- files written by gguf-py ---------------------------------------------- */

static void test_py_meta(const char *dir) {
    char *p = ct__path_join(dir, "meta.gguf");
    ct_tstore ts;
    ct__tstore_init(&ts);
    ct_gguf *g = NULL;
    CHECK_OK(ct__gguf_open(p, &g, &ts));
    free(p);
    if (!g) return;
    uint32_t u = 0;
    float f = 0;
    int b = 0;
    CHECK(ct__gguf_get_u32(g, "test.u8", &u) && u == 200);
    CHECK(!ct__gguf_get_u32(g, "test.i8", &u));          /* -100: out of u32 range */
    CHECK(ct__gguf_get_u32(g, "test.u16", &u) && u == 60000);
    CHECK(!ct__gguf_get_u32(g, "test.i16", &u));
    CHECK(ct__gguf_get_u32(g, "test.u32", &u) && u == 4000000000u);
    CHECK(!ct__gguf_get_u32(g, "test.i32", &u));
    CHECK(!ct__gguf_get_u32(g, "test.u64", &u));         /* 2^40 */
    CHECK(ct__gguf_get_f32(g, "test.f32", &f) && f == 0.15625f);
    CHECK(ct__gguf_get_f32(g, "test.f64", &f) && f == 2.5f);
    CHECK(!ct__gguf_get_f32(g, "test.u8", &f));
    CHECK(ct__gguf_get_bool(g, "test.bool", &b) && b == 1);
    const char *s;
    size_t len;
    CHECK(ct__gguf_get_str(g, "test.str", &s, &len) && len == 13 && !memcmp(s, "h\xc3\xa9llo w\xc3\xb6rld", 13));
    int32_t iv;
    CHECK(ct__gguf_arr_i32(g, "test.arr_i32", 1, &iv) && iv == -2);
    CHECK(ct__gguf_arr_i32(g, "test.arr_i32", 2, &iv) && iv == 3);
    CHECK(!ct__gguf_arr_i32(g, "test.arr_i32", 3, &iv));
    CHECK(ct__gguf_arr_f32(g, "test.arr_f32", 1, &f) && f == -1.25f);
    CHECK(ct__gguf_arr_i32(g, "test.arr_u8", 3, &iv) && iv == 10);
    CHECK(ct__gguf_arr_str(g, "test.arr_str", 1, &s, &len) && len == 0);
    CHECK(ct__gguf_arr_str(g, "test.arr_str", 2, &s, &len) && len == 3 && !memcmp(s, "xyz", 3));
    ct_gguf_type et;
    size_t n;
    CHECK(ct__gguf_get_arr(g, "test.nested", &et, &n) && et == CT_GGUF_ARRAY && n == 2);
    CHECK(ct__gguf_get_arr(g, "test.nested_str", &et, &n) && et == CT_GGUF_ARRAY && n == 2);
    CHECK(ct__gguf_get_u32(g, "test.after", &u) && u == 77);
    const ct_tref *t = ct__tstore_find(&ts, "i8");
    CHECK(t && t->dtype == CT_DT_I8 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 &&
          ((const int8_t *)t->data)[0] == -128 && ((const int8_t *)t->data)[5] == 3);
    t = ct__tstore_find(&ts, "i64");
    int64_t v64 = 0;
    if (t) memcpy(&v64, t->data, 8);
    CHECK(t && t->dtype == CT_DT_I64 && v64 == (1ll << 40));
    t = ct__tstore_find(&ts, "f64");
    double dv = 0;
    if (t) memcpy(&dv, (const double *)t->data + 1, 8);
    CHECK(t && t->dtype == CT_DT_F64 && t->shape[0] == 1 && t->shape[1] == 2 && dv == -2.0);
    t = ct__tstore_find(&ts, "i16");
    CHECK(t && t->dtype == CT_DT_I16 && t->nbytes == 4);
    t = ct__tstore_find(&ts, "i32");
    CHECK(t && t->dtype == CT_DT_I32 && ((const int32_t *)t->data)[1] == 123456);
    ct__gguf_close(g);
    ct__tstore_free(&ts);
}

static void load_tiny(const char *dir, const char *file, ct_config *c) {
    char *p = ct__path_join(dir, file);
    ct_tstore ts;
    ct__tstore_init(&ts);
    memset(c, 0, sizeof *c);
    CHECK_OK(ct__load_gguf_model(p, &ts, c, NULL));
    ct__tstore_free(&ts);
    free(p);
}

static void test_py_models(const char *dir) {
    ct_config c;
    load_tiny(dir, "qwen2.gguf", &c);
    CHECK(c.arch == CT_ARCH_LLAMA && strcmp(c.model_type, "qwen2") == 0);
    CHECK(c.dim == 64 && c.hidden_dim == 128 && c.n_layers == 2 && c.n_heads == 4 && c.n_kv_heads == 2);
    CHECK(c.head_dim == 16 && c.vocab_size == 96 && c.max_seq_len == 1024);
    CHECK(c.norm_eps == 1e-6f && c.rope_theta == 1e6f && c.rope_style == CT_ROPE_NEOX);
    CHECK(c.tie_embeddings == 1 && c.qkv_bias == 1 && c.bos_id == 11 && c.eos_id == 12);
    load_tiny(dir, "gpt2.gguf", &c);
    CHECK(c.arch == CT_ARCH_GPT2 && strcmp(c.model_type, "gpt2") == 0);
    CHECK(c.n_heads == 4 && c.n_kv_heads == 4 && c.head_dim == 16 && c.norm_eps == 1e-5f);
    CHECK(c.tie_embeddings == 1 && c.qkv_bias == 0 && c.vocab_size == 96);
    load_tiny(dir, "llama.gguf", &c);
    CHECK(c.arch == CT_ARCH_LLAMA && c.rope_style == CT_ROPE_NORM && c.tie_embeddings == 0);
    CHECK(c.sliding_window == 256 && c.rope_theta == 1e6f && c.norm_eps == 1e-6f);

    /* meta.gguf's architecture 'ctune-test' is not a model we know */
    char *p = ct__path_join(dir, "meta.gguf");
    ct_tstore ts;
    ct__tstore_init(&ts);
    CHECK_EQ_INT(ct__load_gguf_model(p, &ts, &c, NULL), CT_ERR_UNSUPPORTED);
    CHECK(strstr(ct_errmsg(), "meta.gguf") && strstr(ct_errmsg(), "'ctune-test'"));
    ct__tstore_free(&ts);
    free(p);
}

int main(void) {
    char *probe = shared_path("models/stories260K/stories260K.gguf");
    int have_shared = ct__file_exists(probe);
    free(probe);
    if (!have_shared) {
        printf("SKIP: %s/models not found (set CTUNE_SHARED)\n", shared_dir());
        return 77;
    }
    test_stories();
    test_vocab_files();
    test_handmade_valid();
    test_corrupt();
    const char *dir = getenv("CTUNE_GGUF_PY_DIR");
    if (dir && *dir) {
        test_py_meta(dir);
        test_py_models(dir);
    } else {
        printf("test_gguf: CTUNE_GGUF_PY_DIR not set: gguf-py files are checked in e2e_test_gguf_py\n");
    }
    return ct_check_done("test_gguf");
}
