/* tests/unit/test_safetensors.c — the safetensors reader (src/formats/safetensors.c).
 *
 * 1. Hand-built files (bytes written here, values chosen as exact IEEE bit
 *    patterns) load with the right names, dtypes, shapes and data, in any
 *    header order, including a header not padded to 8 bytes (misaligned data).
 * 2. Each corruption gives the right status, names the file (and the tensor
 *    where there is one), and leaves the store unchanged.
 * 3. A file written by the Python `safetensors` library (torch API: F32, F16,
 *    BF16, F64, I64, I32, I16, I8, U8) is read back and compared element by
 *    element with the values Python printed. Part 3 is skipped (with a note)
 *    when the venv is missing; parts 1-2 always run.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/internal.h"
#include "formats/loaders.h"
#include "formats/tstore.h"

static char g_dir[256];

/* Write 8-byte length (hlen, or the real length when hlen == UINT64_MAX), the
 * header text, and data. Returns the path (static buffer). */
static const char *write_st(const char *fname, const char *hdr, uint64_t hlen, const void *data, size_t dlen) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, fname);
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    uint64_t n = hlen == UINT64_MAX ? strlen(hdr) : hlen;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(n >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(hdr, 1, strlen(hdr), f);
    if (dlen) fwrite(data, 1, dlen, f);
    fclose(f);
    return path;
}

static void write_raw(const char *fname, const void *p, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, fname);
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

/* The valid file's data: a F32 (2,3) = 0.5*i, b F16 (4), c BF16 (2), e I64 (1), z F32 (0). */
static unsigned char g_data[24 + 8 + 4 + 8];
static void make_data(void) {
    float a[6];
    for (int i = 0; i < 6; i++) a[i] = 0.5f * (float)i;
    uint16_t b[4] = {0x3C00, 0xC000, 0x3800, 0x7BFF};       /* 1, -2, 0.5, 65504 */
    uint16_t c[2] = {0x3F80, 0xC040};                       /* 1, -3 */
    int64_t e = -1234567890123LL;
    memcpy(g_data, a, 24);
    memcpy(g_data + 24, b, 8);
    memcpy(g_data + 32, c, 4);
    memcpy(g_data + 36, &e, 8);
}
/* Header with the entries out of offset order; padded or not. */
static const char *k_valid_hdr =
    "{\"c\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[32,36]},"
    "\"__metadata__\":{\"format\":\"pt\"},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[24,24]},"
    "\"e\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[36,44]},"
    "\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]}}";

static void check_valid_store(const ct_tstore *ts, int file) {
    CHECK_EQ_INT(ts->n, 5);
    const ct_tref *a = ct__tstore_find(ts, "a"), *b = ct__tstore_find(ts, "b"), *c = ct__tstore_find(ts, "c"),
                  *e = ct__tstore_find(ts, "e"), *z = ct__tstore_find(ts, "z");
    CHECK(a && b && c && e && z);
    CHECK(ct__tstore_find(ts, "__metadata__") == NULL);
    if (!(a && b && c && e && z)) return;
    CHECK(a->dtype == CT_DT_F32 && a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 3 && a->nbytes == 24);
    CHECK_EQ_INT(ct__tref_numel(a), 6);
    CHECK_EQ_INT(a->file, file);
    CHECK((uintptr_t)a->data % 4 == 0);
    for (int i = 0; i < 6; i++) CHECK(((const float *)a->data)[i] == 0.5f * (float)i);
    CHECK(b->dtype == CT_DT_F16 && b->ndim == 1 && b->shape[0] == 4 && b->nbytes == 8);
    const uint16_t *bh = b->data;
    CHECK(ct__f16_to_f32(bh[0]) == 1.0f && ct__f16_to_f32(bh[1]) == -2.0f && ct__f16_to_f32(bh[2]) == 0.5f &&
          ct__f16_to_f32(bh[3]) == 65504.0f);
    CHECK(c->dtype == CT_DT_BF16 && c->nbytes == 4);
    const uint16_t *cb = c->data;
    CHECK(ct__bf16_to_f32(cb[0]) == 1.0f && ct__bf16_to_f32(cb[1]) == -3.0f);
    CHECK(e->dtype == CT_DT_I64 && e->nbytes == 8 && ((const int64_t *)e->data)[0] == -1234567890123LL);
    CHECK(z->dtype == CT_DT_F32 && z->ndim == 1 && z->shape[0] == 0 && z->nbytes == 0);
    CHECK_EQ_INT(ct__dtype_nbytes(CT_DT_F32, 6), 24);
    CHECK_EQ_INT(ct__dtype_nbytes(CT_DT_Q8_0, 64), 68);
    CHECK_EQ_INT(ct__dtype_nbytes(CT_DT_Q4_0, 33), 0); /* not a whole block */
}

static void test_valid(void) {
    ct_tstore ts;
    ct__tstore_init(&ts);
    /* padded to a multiple of 8, as the reference writer does */
    char hdr[1024];
    size_t hl = strlen(k_valid_hdr);
    memcpy(hdr, k_valid_hdr, hl);
    while ((8 + hl) % 8) hdr[hl++] = ' ';
    hdr[hl] = 0;
    const char *p = write_st("valid.safetensors", hdr, UINT64_MAX, g_data, sizeof g_data);
    CHECK_OK(ct__safetensors_load(p, &ts));
    CHECK_EQ_INT(ts.nfiles, 1);
    check_valid_store(&ts, 0);
    CHECK_EQ_INT(ts.nowned, 1); /* only 'e' (I64 at offset 36) is misaligned */
    ct__tstore_free(&ts);

    /* not padded: 8 + strlen is odd, so the data is misaligned and copied */
    CHECK((8 + strlen(k_valid_hdr)) % 4 != 0);
    p = write_st("unpadded.safetensors", k_valid_hdr, UINT64_MAX, g_data, sizeof g_data);
    ct__tstore_init(&ts);
    CHECK_OK(ct__safetensors_load(p, &ts));
    check_valid_store(&ts, 0);
    CHECK(ts.nowned >= 1);
    ct__tstore_free(&ts);

    /* no tensors at all */
    p = write_st("empty.safetensors", "{}      ", UINT64_MAX, NULL, 0);
    ct__tstore_init(&ts);
    CHECK_OK(ct__safetensors_load(p, &ts));
    CHECK_EQ_INT(ts.n, 0);
    ct__tstore_free(&ts);
}

/* Load fname into a store that already holds the valid file; expect status
 * want with the file and `what` in the message, and the store unchanged. */
static void expect_fail(const char *fname, ct_status want, const char *what) {
    char valid[512], path[512];
    snprintf(valid, sizeof valid, "%s/valid.safetensors", g_dir);
    snprintf(path, sizeof path, "%s/%s", g_dir, fname);
    ct_tstore ts;
    ct__tstore_init(&ts);
    CHECK_OK(ct__safetensors_load(valid, &ts));
    ct_status s = ct__safetensors_load(path, &ts);
    const char *m = ct_errmsg();
    if (s != want) fprintf(stderr, "%s: got %s (%s), want %s\n", fname, ct_status_str(s), m, ct_status_str(want));
    CHECK(s == want);
    if (!strstr(m, fname) || (what && !strstr(m, what))) {
        fprintf(stderr, "%s: message [%s] must name the file and [%s]\n", fname, m, what ? what : "");
        CHECK(0);
    }
    CHECK(strchr(m, '\n') == NULL);
    CHECK_EQ_INT(ts.n, 5);
    CHECK_EQ_INT(ts.nfiles, 1);
    ct__tstore_free(&ts);
}

static void bad_hdr(const char *fname, const char *hdr, size_t dlen, ct_status want, const char *what) {
    static unsigned char zeros[256];
    write_st(fname, hdr, UINT64_MAX, zeros, dlen);
    expect_fail(fname, want, what);
}

static void test_corrupt(void) {
    unsigned char buf[sizeof g_data + 8 + 1024];
    /* bad / huge header length, header longer than the file, short file */
    write_raw("empty0.safetensors", "", 0);
    expect_fail("empty0.safetensors", CT_ERR_FORMAT, "too short");
    write_raw("short.safetensors", "\x02\0\0\0", 4);
    expect_fail("short.safetensors", CT_ERR_FORMAT, "too short");
    write_st("huge.safetensors", "{}", 1ull << 62, NULL, 0);
    expect_fail("huge.safetensors", CT_ERR_FORMAT, "100 MB");
    write_st("huge2.safetensors", "{}", UINT64_MAX - 1, NULL, 0);
    expect_fail("huge2.safetensors", CT_ERR_FORMAT, "100 MB");
    write_st("hdrlong.safetensors", k_valid_hdr, strlen(k_valid_hdr) + 100, g_data, 40);
    expect_fail("hdrlong.safetensors", CT_ERR_FORMAT, "exceeds the file");
    /* truncated data: the last tensor ('e', bytes [36,44)) is cut */
    write_st("trunc.safetensors", k_valid_hdr, UINT64_MAX, g_data, sizeof g_data - 4);
    expect_fail("trunc.safetensors", CT_ERR_FORMAT, "tensor 'e'");
    /* header not JSON, or not an object */
    write_st("notjson.safetensors", "not json", UINT64_MAX, NULL, 0);
    expect_fail("notjson.safetensors", CT_ERR_FORMAT, "(JSON header):1:1:");
    snprintf((char *)buf, sizeof buf, "%s", k_valid_hdr);
    char *comma = strstr((char *)buf, "]},") + 2, where[64];
    *comma = '#';
    snprintf(where, sizeof where, "(JSON header):1:%d: expected ','", (int)(comma - (char *)buf) + 1);
    write_st("badjson.safetensors", (char *)buf, UINT64_MAX, g_data, sizeof g_data);
    expect_fail("badjson.safetensors", CT_ERR_FORMAT, where);
    bad_hdr("array.safetensors", "[1, 2]", 0, CT_ERR_FORMAT, "not an object");
    bad_hdr("garbage.safetensors", "{} x", 0, CT_ERR_FORMAT, "unexpected data");

    /* offsets */
    bad_hdr("range.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1000000000000,1000000000008]}}",
            8, CT_ERR_FORMAT, "tensor 'w': data_offsets [1000000000000, 1000000000008) exceed the data buffer (8 bytes)");
    bad_hdr("gap.safetensors",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}",
            24, CT_ERR_FORMAT, "tensor 'b': data_offsets [16, 24) leave a gap of 8 bytes after tensor 'a'");
    bad_hdr("startgap.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
            CT_ERR_FORMAT, "tensor 'a'");
    bad_hdr("overlap.safetensors",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
            20, CT_ERR_FORMAT, "tensor 'b': data_offsets [12, 20) overlap tensor 'a'");
    bad_hdr("same.safetensors",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
            8, CT_ERR_FORMAT, "overlap");
    bad_hdr("trailing.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12,
            CT_ERR_FORMAT, "4 bytes after the last tensor ('a')");
    bad_hdr("notensors.safetensors", "{\"__metadata__\":{}}", 4, CT_ERR_FORMAT, "no tensors");
    bad_hdr("reversed.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8,
            CT_ERR_FORMAT, "tensor 'a'");
    bad_hdr("offfrac.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2.5]}}", 8,
            CT_ERR_FORMAT, "tensor 'a'");
    bad_hdr("offneg.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[-2,0]}}", 8,
            CT_ERR_FORMAT, "tensor 'a'");
    bad_hdr("off3.safetensors", "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2,4]}}", 2,
            CT_ERR_FORMAT, "tensor 'a'");

    /* shapes */
    bad_hdr("overflow.safetensors",
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, CT_ERR_FORMAT,
            "tensor 'w': shape [4294967296, 4294967296] of F32 overflows");
    bad_hdr("overflow2.safetensors",
            "{\"w\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,0]}}", 0, CT_ERR_FORMAT,
            "tensor 'w'");
    bad_hdr("mismatch.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
            CT_ERR_FORMAT, "tensor 'w': shape [3] of F32 needs 12 bytes but data_offsets [0, 8) hold 8");
    bad_hdr("negshape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
            CT_ERR_FORMAT, "tensor 'w': shape[0]");
    bad_hdr("bigint.safetensors", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1e300],\"data_offsets\":[0,8]}}", 8,
            CT_ERR_FORMAT, "tensor 'w': shape[0]");
    bad_hdr("5d.safetensors", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,2]}}", 2,
            CT_ERR_UNSUPPORTED, "tensor 'w': 5 dimensions");
    bad_hdr("noshape.safetensors", "{\"w\":{\"dtype\":\"U8\",\"data_offsets\":[0,2]}}", 2, CT_ERR_FORMAT,
            "tensor 'w': missing or non-array \"shape\"");
    bad_hdr("nooffsets.safetensors", "{\"w\":{\"dtype\":\"U8\",\"shape\":[2]}}", 2, CT_ERR_FORMAT, "tensor 'w'");
    bad_hdr("entry.safetensors", "{\"w\":[1,2]}", 0, CT_ERR_FORMAT, "tensor 'w': header entry is not an object");

    /* dtypes */
    bad_hdr("unknowndt.safetensors", "{\"w\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
            CT_ERR_FORMAT, "tensor 'w': unknown dtype 'Q7'");
    bad_hdr("f8.safetensors", "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
            CT_ERR_UNSUPPORTED, "tensor 'w': dtype F8_E4M3 is not supported");
    bad_hdr("bool.safetensors", "{\"w\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
            CT_ERR_UNSUPPORTED, "BOOL");
    bad_hdr("nodtype.safetensors", "{\"w\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,2]}}", 2, CT_ERR_FORMAT,
            "tensor 'w': missing or non-string \"dtype\"");

    /* names and metadata */
    bad_hdr("dup.safetensors",
            "{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
            "\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}",
            4, CT_ERR_FORMAT, "tensor 'w' appears twice");
    bad_hdr("nul.safetensors", "{\"w\\u0000x\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
            CT_ERR_FORMAT, "NUL");
    bad_hdr("meta.safetensors",
            "{\"__metadata__\":{\"format\":1},\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
            CT_ERR_FORMAT, "__metadata__ 'format' is not a string");
    bad_hdr("meta2.safetensors",
            "{\"__metadata__\":[],\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
            CT_ERR_FORMAT, "__metadata__");

    /* a missing file is an I/O error naming it */
    expect_fail("does-not-exist.safetensors", CT_ERR_IO, NULL);
}

/* ---- a file written by the Python safetensors library --------------------- */

static const char *k_py =
    "import sys, torch\n"
    "from safetensors.torch import save_file\n"
    "out = sys.argv[1]\n"
    "g = torch.Generator().manual_seed(0)\n"
    "t = {\n"
    " 'model.embed_tokens.weight': torch.randn(5, 3, generator=g),\n"
    " 'h.f16': (torch.randn(2, 3, 2, generator=g) * 100).half(),\n"
    " 'h.bf16': torch.randn(7, generator=g).bfloat16(),\n"
    " 'h.f64': torch.randn(2, 2, generator=g).double(),\n"
    " 'ids.i64': torch.tensor([0, -1, 2**40, -2**50]),\n"
    " 'ids.i32': torch.tensor([[1, -2], [3, 2**31 - 1]], dtype=torch.int32),\n"
    " 'ids.i16': torch.tensor([-32768, 32767], dtype=torch.int16),\n"
    " 'ids.i8': torch.tensor([-128, 5, 127], dtype=torch.int8),\n"
    " 'ids.u8': torch.tensor([0, 200, 255], dtype=torch.uint8),\n"
    " 'scalar': torch.tensor(3.25),\n"
    " 'a.b.c.d': torch.randn(1, 2, 1, 3, generator=g),\n"
    "}\n"
    "save_file(t, out + '/py.safetensors', metadata={'format': 'pt'})\n"
    "names = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.float64: 'F64',\n"
    "         torch.int64: 'I64', torch.int32: 'I32', torch.int16: 'I16', torch.int8: 'I8', torch.uint8: 'U8'}\n"
    "with open(out + '/py.txt', 'w') as f:\n"
    "    for k, v in t.items():\n"
    "        vals = v.flatten().tolist() if v.dim() else [v.item()]\n"
    "        f.write('%s %s %d %s %d %s\\n' % (k, names[v.dtype], v.dim(), ' '.join(map(str, v.shape)),\n"
    "                len(vals), ' '.join(repr(float(x)) for x in vals)))\n";

static double elem(const ct_tref *t, int64_t i) {
    switch (t->dtype) {
    case CT_DT_F32: return ((const float *)t->data)[i];
    case CT_DT_F16: return ct__f16_to_f32(((const uint16_t *)t->data)[i]);
    case CT_DT_BF16: return ct__bf16_to_f32(((const uint16_t *)t->data)[i]);
    case CT_DT_F64: return ((const double *)t->data)[i];
    case CT_DT_I64: return (double)((const int64_t *)t->data)[i];
    case CT_DT_I32: return ((const int32_t *)t->data)[i];
    case CT_DT_I16: return ((const int16_t *)t->data)[i];
    case CT_DT_I8: return ((const int8_t *)t->data)[i];
    case CT_DT_U8: return ((const uint8_t *)t->data)[i];
    default: return NAN;
    }
}

static void test_python(void) {
    const char *cache = getenv("CTUNE_CACHE");
    char py[512], cmd[1024];
    if (cache && *cache) snprintf(py, sizeof py, "%s/venv/bin/python", cache);
    else snprintf(py, sizeof py, "%s/.cache/ctune/venv/bin/python", getenv("HOME") ? getenv("HOME") : "");
    if (access(py, X_OK) != 0) {
        printf("test_safetensors: SKIP part 3: no Python venv at %s (run scripts/setup.sh)\n", py);
        return;
    }
    snprintf(cmd, sizeof cmd, "'%s' - '%s'", py, g_dir);
    FILE *p = popen(cmd, "w");
    CHECK(p != NULL);
    if (!p) return;
    fputs(k_py, p);
    int rc = pclose(p);
    CHECK_EQ_INT(rc, 0);
    if (rc) return;
    char path[512];
    snprintf(path, sizeof path, "%s/py.safetensors", g_dir);
    ct_tstore ts;
    ct__tstore_init(&ts);
    CHECK_OK(ct__safetensors_load(path, &ts));
    snprintf(path, sizeof path, "%s/py.txt", g_dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    int ntens = 0;
    char name[256], dt[16];
    int ndim;
    while (f && fscanf(f, "%255s %15s %d", name, dt, &ndim) == 3) {
        ntens++;
        const ct_tref *t = ct__tstore_find(&ts, name);
        CHECK(t != NULL);
        int64_t shape[8] = {0}, n;
        for (int i = 0; i < ndim && i < 8; i++) CHECK(fscanf(f, "%lld", (long long *)&shape[i]) == 1);
        CHECK(fscanf(f, "%lld", (long long *)&n) == 1);
        if (t) {
            CHECK(strcmp(ct_dtype_name(t->dtype), dt) == 0);
            CHECK_EQ_INT(t->ndim, ndim);
            for (int i = 0; i < ndim && i < CT_MAX_DIMS; i++) CHECK_EQ_INT(t->shape[i], shape[i]);
            CHECK_EQ_INT(ct__tref_numel(t), n);
            CHECK_EQ_INT(t->nbytes, ct__dtype_nbytes(t->dtype, n));
        }
        int bad = 0;
        for (int64_t i = 0; i < n; i++) {
            double want;
            CHECK(fscanf(f, "%lf", &want) == 1);
            if (t && i < ct__tref_numel(t) && elem(t, i) != want) bad++;
        }
        if (bad) fprintf(stderr, "tensor %s: %d values differ from Python's\n", name, bad);
        CHECK_EQ_INT(bad, 0);
    }
    if (f) fclose(f);
    CHECK_EQ_INT(ntens, 11);
    CHECK_EQ_INT(ts.n, 11);
    ct__tstore_free(&ts);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/ctune-st.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 1; }
    make_data();
    test_valid();
    test_corrupt();
    test_python();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return ct_check_done("test_safetensors");
}
