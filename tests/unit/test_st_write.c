/* tests/unit/test_st_write.c — the atomic writers (src/formats/st_write.c)
 * and the JSON writer (src/formats/json_write.c).
 *
 * 1. JSON writer: escaping (quotes, backslash, control bytes, NUL, UTF-8
 *    kept), shortest round-trip floats, pretty layout, NaN and misuse fail;
 *    output parses back with the project's reader.
 * 2. Safetensors round trip through the project's reader
 *    (ct__safetensors_load): F32 exact; F16/BF16 equal to round-to-nearest-
 *    even of the source (known bit patterns for 1/3, 65504, overflow, tiny
 *    values, plus a whole array), a tensor bigger than the 4 MiB conversion
 *    buffer, an empty tensor; header keys sorted, "__metadata__" first,
 *    header length a multiple of 8, metadata values (with escapes) intact.
 * 3. Errors: an unwritable path names the path and leaves no temp file; bad
 *    metadata / duplicate names / bad dtype fail before any file exists; a
 *    write failing mid-file (injected ENOSPC, and a real EFBIG from
 *    RLIMIT_FSIZE) keeps an old file at path byte for byte, removes the temp
 *    file, and the ENOSPC message has the hint.
 * 4. ct__write_file_atomic overwrite, ct__mkdir_p (nested, existing, a file
 *    in the way).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "check.h"
#include "core/internal.h"
#include "formats/json.h"
#include "formats/json_write.h"
#include "formats/loaders.h"
#include "formats/st_write.h"
#include "formats/tstore.h"

static char g_dir[256];

static const char *pth(const char *name) {
    static char b[4][512];
    static int k;
    k = (k + 1) & 3;
    snprintf(b[k], sizeof b[k], "%s/%s", g_dir, name);
    return b[k];
}

/* Number of files in g_dir whose name contains ".tmp." */
static int count_tmp(void) {
    DIR *d = opendir(g_dir);
    int n = 0;
    struct dirent *e;
    if (!d) return -1;
    while ((e = readdir(d))) n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static int has(const char *msg, const char *needle) {
    if (strstr(msg, needle)) return 1;
    fprintf(stderr, "message [%s] lacks [%s]\n", msg, needle);
    return 0;
}

/* ---- 1. JSON writer ----------------------------------------------------------- */

static void test_json_write(void) {
    ct_jw w;
    ct__jw_init(&w, 0);
    ct__jw_obj_begin(&w);
    ct__jw_key(&w, "s");
    ct__jw_strn(&w, "a\"b\\c\n\t\x01\x1f\0z\xc3\xa9", 13);
    ct__jw_key(&w, "f");
    ct__jw_f32(&w, 0.05f);
    ct__jw_key(&w, "g");
    ct__jw_f32(&w, 1e-5f);
    ct__jw_key(&w, "third");
    ct__jw_f32(&w, 1.0f / 3.0f);
    ct__jw_key(&w, "d");
    ct__jw_f64(&w, 0.1);
    ct__jw_key(&w, "whole");
    ct__jw_f32(&w, 10000.0f);
    ct__jw_key(&w, "i");
    ct__jw_int(&w, -9007199254740991LL);
    ct__jw_key(&w, "a");
    ct__jw_arr_begin(&w);
    ct__jw_bool(&w, 1);
    ct__jw_null(&w);
    ct__jw_arr_begin(&w);
    ct__jw_arr_end(&w);
    ct__jw_arr_end(&w);
    ct__jw_obj_end(&w);
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(ct__jw_finish(&w, "t.json", &text, &len));
    if (!text) return;
    CHECK(strcmp(text, "{\"s\":\"a\\\"b\\\\c\\n\\t\\u0001\\u001f\\u0000z\xc3\xa9\",\"f\":0.05,\"g\":1e-05,"
                       "\"third\":0.33333334,\"d\":0.1,\"whole\":10000.0,\"i\":-9007199254740991,\"a\":[true,null,[]]}") == 0);
    ct_json *j = NULL;
    CHECK_OK(ct__json_parse(text, len, "t.json", &j));
    if (j) {
        const ct_json *s = ct__json_get(j, "s");
        CHECK(s && s->u.str.len == 13 && memcmp(s->u.str.s, "a\"b\\c\n\t\x01\x1f\0z\xc3\xa9", 13) == 0);
        double f;
        CHECK(ct__json_get_num(j, "third", &f) && (float)f == 1.0f / 3.0f);
        ct__json_free(j);
    }
    free(text);

    /* every f32 bit pattern class round-trips through the shortest form */
    uint32_t pats[] = {0x00000001u, 0x007fffffu, 0x00800000u, 0x3f800001u, 0x7f7fffffu, 0xbf9d70a4u, 0x3dcccccdu};
    for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++) {
        float v;
        memcpy(&v, &pats[i], 4);
        char b[32];
        CHECK(ct__jw_fmt_f32(b, v) > 0 && strtof(b, NULL) == v);
    }

    /* pretty layout = Python's json.dumps(indent=2) */
    ct__jw_init(&w, 1);
    ct__jw_obj_begin(&w);
    ct__jw_key(&w, "a");
    ct__jw_arr_begin(&w);
    ct__jw_str(&w, "x");
    ct__jw_int(&w, 2);
    ct__jw_arr_end(&w);
    ct__jw_key(&w, "b");
    ct__jw_obj_begin(&w);
    ct__jw_obj_end(&w);
    ct__jw_obj_end(&w);
    CHECK_OK(ct__jw_finish(&w, "p.json", &text, &len));
    CHECK(text && strcmp(text, "{\n  \"a\": [\n    \"x\",\n    2\n  ],\n  \"b\": {}\n}") == 0);
    free(text);

    /* failures: NaN, unbalanced, value without key */
    ct__jw_init(&w, 0);
    ct__jw_arr_begin(&w);
    ct__jw_f32(&w, NAN);
    ct__jw_arr_end(&w);
    CHECK(ct__jw_finish(&w, "nan.json", &text, &len) == CT_ERR_NUMERIC && text == NULL);
    CHECK(has(ct_errmsg(), "nan.json"));
    ct__jw_init(&w, 0);
    ct__jw_obj_begin(&w);
    CHECK(ct__jw_finish(&w, "open.json", &text, &len) == CT_ERR_ARG);
    ct__jw_init(&w, 0);
    ct__jw_obj_begin(&w);
    ct__jw_int(&w, 1);
    ct__jw_obj_end(&w);
    CHECK(ct__jw_finish(&w, "nokey.json", &text, &len) == CT_ERR_ARG);
}

/* ---- 2. safetensors round trip ----------------------------------------------- */

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((float)(*s >> 40) / (float)(1 << 24) - 0.5f) * 8.0f;
}

static uint16_t u16at(const ct_tref *t, size_t i) {
    uint16_t v;
    memcpy(&v, (const uint8_t *)t->data + 2 * i, 2);
    return v;
}

static void test_roundtrip(void) {
    enum { NA = 3 * 5, NB = 3 * 1000 * 1024 + 7 }; /* b: 6 MB as F16, more than one 4 MiB chunk */
    static float a[NA], b[NB];
    uint64_t seed = 42;
    for (int i = 0; i < NA; i++) a[i] = frand(&seed);
    for (int i = 0; i < NB; i++) b[i] = frand(&seed);
    /* known conversions (round to nearest even) */
    float special[8] = {1.0f / 3.0f, 65504.0f, 65520.0f, -2.0f, 1e-8f, 6.0e-8f, 0.0f, -0.0f};
    uint16_t want_f16[8] = {0x3555, 0x7BFF, 0x7C00, 0xC000, 0x0000, 0x0001, 0x0000, 0x8000};
    uint16_t want_bf16[8] = {0x3EAB, 0x4780, 0x4780, 0xC000, 0x322C, 0x3381, 0x0000, 0x8000};
    float c[2 * 3 * 4 * 5];
    for (int i = 0; i < 120; i++) c[i] = (float)i * 0.25f - 7.0f;

    ct__st_out t[] = {
        {"zeta.weight", CT_DT_F16, 2, {3, NB / 3}, b},  /* NB/3 truncates: 3 * 1024002 = NB - 1 */
        {"alpha", CT_DT_F32, 2, {3, 5}, a},
        {"mid.bf16", CT_DT_BF16, 1, {8}, special},
        {"mid.f16", CT_DT_F16, 1, {8}, special},
        {"bf16.big", CT_DT_BF16, 1, {NB}, b},
        {"c4d", CT_DT_F32, 4, {2, 3, 4, 5}, c},
        {"empty", CT_DT_F32, 2, {0, 4}, NULL},
    };
    int n = (int)(sizeof t / sizeof t[0]);
    const char *meta = "{\"format\":\"pt\",\"note\":\"a \\\"quoted\\\" \\u00e9 line\\n\"}";
    const char *path = pth("rt.safetensors");
    CHECK_OK(ct__st_write(path, t, n, meta));
    CHECK_EQ_INT(count_tmp(), 0);

    ct_tstore ts;
    ct__tstore_init(&ts);
    CHECK_OK(ct__safetensors_load(path, &ts));
    CHECK_EQ_INT(ts.n, n);
    const ct_tref *ra = ct__tstore_find(&ts, "alpha"), *rz = ct__tstore_find(&ts, "zeta.weight"),
                  *rb = ct__tstore_find(&ts, "bf16.big"), *rf = ct__tstore_find(&ts, "mid.f16"),
                  *rh = ct__tstore_find(&ts, "mid.bf16"), *rc = ct__tstore_find(&ts, "c4d"),
                  *re = ct__tstore_find(&ts, "empty");
    CHECK(ra && rz && rb && rf && rh && rc && re);
    if (ra && rz && rb && rf && rh && rc && re) {
        CHECK(ra->dtype == CT_DT_F32 && ra->ndim == 2 && ra->shape[0] == 3 && ra->shape[1] == 5);
        CHECK(memcmp(ra->data, a, sizeof a) == 0);
        CHECK(rc->ndim == 4 && rc->shape[3] == 5 && memcmp(rc->data, c, sizeof c) == 0);
        CHECK(re->ndim == 2 && re->shape[0] == 0 && re->nbytes == 0);
        CHECK(rf->dtype == CT_DT_F16 && rh->dtype == CT_DT_BF16);
        for (int i = 0; i < 8; i++) {
            if (u16at(rf, (size_t)i) != want_f16[i] || u16at(rh, (size_t)i) != want_bf16[i]) {
                fprintf(stderr, "special %d (%g): f16 %04x want %04x, bf16 %04x want %04x\n", i, (double)special[i],
                        u16at(rf, (size_t)i), want_f16[i], u16at(rh, (size_t)i), want_bf16[i]);
                CHECK(0);
            }
        }
        CHECK(rz->dtype == CT_DT_F16 && rz->shape[0] == 3 && rz->shape[1] == NB / 3);
        CHECK(rb->dtype == CT_DT_BF16 && rb->shape[0] == NB);
        int bad16 = 0, badb = 0;
        for (size_t i = 0; i < (size_t)NB; i++) {
            if (i < (size_t)(NB / 3) * 3) {
                uint16_t h = u16at(rz, i);
                float back = ct__f16_to_f32(h);
                bad16 += h != ct__f32_to_f16(b[i]) || fabsf(back - b[i]) > fabsf(b[i]) * (1.0f / 2048) + 6e-8f;
            }
            uint16_t g = u16at(rb, i);
            float back = ct__bf16_to_f32(g);
            badb += g != ct__f32_to_bf16(b[i]) || fabsf(back - b[i]) > fabsf(b[i]) * (1.0f / 256);
        }
        CHECK_EQ_INT(bad16, 0);
        CHECK_EQ_INT(badb, 0);
    }
    ct__tstore_free(&ts);

    /* the header itself: length % 8, metadata first, keys sorted, metadata intact */
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(ct__read_file(path, &text, &len));
    if (text && len >= 8) {
        uint64_t hl = 0;
        for (int i = 0; i < 8; i++) hl |= (uint64_t)(uint8_t)text[i] << (8 * i);
        CHECK(hl % 8 == 0 && hl + 8 <= len);
        CHECK(text[8 + hl - 1] == ' ' || text[8 + hl - 1] == '}');
        CHECK(strncmp(text + 8, "{\"__metadata__\":{", 17) == 0);
        ct_json *j = NULL;
        CHECK_OK(ct__json_parse(text + 8, (size_t)hl, "hdr", &j));
        if (j) {
            CHECK_EQ_INT(j->u.obj.n, n + 1);
            for (size_t i = 2; i < j->u.obj.n; i++) CHECK(strcmp(j->u.obj.keys[i - 1], j->u.obj.keys[i]) < 0);
            const ct_json *md = ct__json_get(j, "__metadata__");
            CHECK(md && md->type == CT_JSON_OBJ && md->u.obj.n == 2);
            CHECK(md && strcmp(ct__json_get_str(md, "format"), "pt") == 0);
            const char *note = md ? ct__json_get_str(md, "note") : NULL;
            CHECK(note && strcmp(note, "a \"quoted\" \xc3\xa9 line\n") == 0);
            const ct_json *al = ct__json_get(j, "alpha");
            CHECK(al && strcmp(ct__json_get_str(al, "dtype"), "F32") == 0);
            const ct_json *off = al ? ct__json_get(al, "data_offsets") : NULL;
            CHECK(off && off->type == CT_JSON_ARR && off->u.arr.n == 2 && off->u.arr.items[0].u.num == 0 &&
                  off->u.arr.items[1].u.num == 60);
            ct__json_free(j);
        }
    }
    free(text);

    /* no metadata, no tensors: a valid file "{}" padded to 8 */
    CHECK_OK(ct__st_write(pth("empty.safetensors"), NULL, 0, NULL));
    ct__tstore_init(&ts);
    CHECK_OK(ct__safetensors_load(pth("empty.safetensors"), &ts));
    CHECK_EQ_INT(ts.n, 0);
    ct__tstore_free(&ts);
}

/* ---- 3. errors and atomicity ---------------------------------------------------- */

static void write_old(const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    fputs("OLD CONTENT", f);
    fclose(f);
}
static int is_old(const char *path) {
    char *t = NULL;
    size_t n = 0;
    int ok = ct__read_file(path, &t, &n) == CT_OK && n == 11 && memcmp(t, "OLD CONTENT", 11) == 0;
    free(t);
    return ok;
}

static void test_errors(void) {
    static float big[1 << 20];
    for (int i = 0; i < (1 << 20); i++) big[i] = (float)i;
    ct__st_out ok1[] = {{"w", CT_DT_F32, 2, {1024, 1024}, big}};

    /* unwritable path */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/m.safetensors", g_dir);
    ct_status s = ct__st_write(bad, ok1, 1, NULL);
    CHECK(s == CT_ERR_IO);
    CHECK(has(ct_errmsg(), bad));
    CHECK(has(ct_errmsg(), strerror(ENOENT)));
    CHECK_EQ_INT(count_tmp(), 0);
    CHECK(ct__write_file_atomic(bad, "x", 1) == CT_ERR_IO && has(ct_errmsg(), bad));

    /* invalid descriptions fail before any file is created; the old file stays */
    const char *p = pth("keep.safetensors");
    write_old(p);
    ct__st_out dup[] = {{"w", CT_DT_F32, 1, {4}, big}, {"w", CT_DT_F32, 1, {4}, big}};
    CHECK(ct__st_write(p, dup, 2, NULL) == CT_ERR_ARG && has(ct_errmsg(), "'w' appears twice"));
    ct__st_out q8[] = {{"q", CT_DT_Q8_0, 1, {32}, big}};
    CHECK(ct__st_write(p, q8, 1, NULL) == CT_ERR_UNSUPPORTED && has(ct_errmsg(), "'q'"));
    ct__st_out nd[] = {{"x", CT_DT_F32, 5, {1, 1, 1, 1}, big}};
    CHECK(ct__st_write(p, nd, 1, NULL) == CT_ERR_ARG && has(ct_errmsg(), "ndim 5"));
    ct__st_out nosrc[] = {{"x", CT_DT_F32, 1, {4}, NULL}};
    CHECK(ct__st_write(p, nosrc, 1, NULL) == CT_ERR_ARG && has(ct_errmsg(), "no source"));
    ct__st_out res[] = {{"__metadata__", CT_DT_F32, 1, {4}, big}};
    CHECK(ct__st_write(p, res, 1, NULL) == CT_ERR_ARG);
    CHECK(ct__st_write(p, ok1, 1, "{\"a\":1}") == CT_ERR_ARG && has(ct_errmsg(), "'a' is not a string"));
    CHECK(ct__st_write(p, ok1, 1, "[\"a\"]") == CT_ERR_ARG && has(ct_errmsg(), "object"));
    CHECK(ct__st_write(p, ok1, 1, "{\"a\":\"b\"") == CT_ERR_ARG && has(ct_errmsg(), p));
    CHECK(is_old(p));
    CHECK_EQ_INT(count_tmp(), 0);

    /* a write failing mid-file: injected ENOSPC after 1 MB of the 4 MB */
    ct__write_inject_fault(1 << 20, ENOSPC);
    s = ct__st_write(p, ok1, 1, "{\"format\":\"pt\"}");
    ct__write_inject_fault(-1, 0);
    CHECK(s == CT_ERR_IO);
    CHECK(has(ct_errmsg(), p) && has(ct_errmsg(), strerror(ENOSPC)) && has(ct_errmsg(), "free some space"));
    CHECK(is_old(p));
    CHECK_EQ_INT(count_tmp(), 0);
    /* the same for a BF16 tensor (the chunked conversion path) and a small file */
    ct__st_out b1[] = {{"w", CT_DT_BF16, 1, {1 << 20}, big}};
    ct__write_inject_fault(100, ENOSPC);
    CHECK(ct__st_write(p, b1, 1, NULL) == CT_ERR_IO);
    ct__write_inject_fault(3, EIO);
    CHECK(ct__write_file_atomic(p, "new content", 11) == CT_ERR_IO && has(ct_errmsg(), strerror(EIO)));
    ct__write_inject_fault(-1, 0);
    CHECK(is_old(p));
    CHECK_EQ_INT(count_tmp(), 0);

    /* a real kernel error: the file-size limit (EFBIG with SIGXFSZ ignored) */
    struct rlimit old;
    if (getrlimit(RLIMIT_FSIZE, &old) == 0) {
        struct rlimit lim = old;
        lim.rlim_cur = 65536;
        void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
            s = ct__st_write(p, ok1, 1, NULL);
            setrlimit(RLIMIT_FSIZE, &old);
            CHECK(s == CT_ERR_IO && has(ct_errmsg(), p) && has(ct_errmsg(), strerror(EFBIG)));
            CHECK(is_old(p));
            CHECK_EQ_INT(count_tmp(), 0);
        }
        signal(SIGXFSZ, prev);
    }

    /* and when it works, the new file replaces the old one */
    CHECK_OK(ct__st_write(p, ok1, 1, NULL));
    ct_tstore ts;
    ct__tstore_init(&ts);
    CHECK_OK(ct__safetensors_load(p, &ts));
    CHECK(ts.n == 1 && ts.t[0].nbytes == sizeof big && memcmp(ts.t[0].data, big, sizeof big) == 0);
    ct__tstore_free(&ts);
}

/* ---- 4. small files and directories ------------------------------------------ */

static void test_files(void) {
    const char *p = pth("small.json");
    write_old(p);
    CHECK_OK(ct__write_file_atomic(p, "{}\n", 3));
    char *t = NULL;
    size_t n = 0;
    CHECK_OK(ct__read_file(p, &t, &n));
    CHECK(t && n == 3 && memcmp(t, "{}\n", 3) == 0);
    free(t);
    CHECK_OK(ct__write_file_atomic(p, NULL, 0));
    CHECK_OK(ct__read_file(p, &t, &n));
    CHECK(n == 0);
    free(t);

    CHECK_OK(ct__mkdir_p(pth("a/b//c/")));
    CHECK(ct__is_dir(pth("a/b/c")));
    CHECK_OK(ct__mkdir_p(pth("a/b")));
    CHECK_OK(ct__mkdir_p(pth("a/b/c/d")));
    CHECK(ct__is_dir(pth("a/b/c/d")));
    write_old(pth("a/file"));
    CHECK(ct__mkdir_p(pth("a/file/x")) == CT_ERR_IO && has(ct_errmsg(), "a/file"));
    CHECK_OK(ct__write_file_atomic(pth("a/b/c/d/x.json"), "1", 1));
    CHECK(ct__file_exists(pth("a/b/c/d/x.json")));
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "%s/ctune-stw.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 1; }
    test_json_write();
    test_roundtrip();
    test_errors();
    test_files();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return ct_check_done("test_st_write");
}
