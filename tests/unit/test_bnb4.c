/* tests/unit/test_bnb4.c — bitsandbytes 4-bit Hugging Face checkpoints
 * (src/formats/bnb4.c) through ct_model_load.
 *
 * 1. Loader errors, on small checkpoints this test writes itself (a 1-layer
 *    Llama, every linear layer NF4 with double quantization, written the way
 *    transformers saves them): the good one loads, its q_proj is an NF4
 *    matrix whose rows equal the dequantized codes, and each corruption is
 *    refused with the status and a message naming the file and tensor:
 *    missing absmax, truncated codes, a changed quant_map entry, a quant
 *    state that is not JSON, blocksize 128, quant_type not matching the
 *    name, a nested map of 255 floats, a quant-state shape not matching
 *    config.json, load_in_8bit and quant_method "gptq" in config.json.
 * 2. With CTUNE_BNB4_REF_DIR (set by tests/e2e/test_bnb4.sh, which runs
 *    tests/golden/gen_bnb4_refs.py): every checkpoint of cases.txt, saved by
 *    transformers, is loaded and its logits for ids.bin compared with
 *    transformers' 4-bit model's (its exact f32 path, see the script):
 *    max |diff| <= TOL_LOGITS * max(1, max |logit|). TOL_LOGITS = 1e-5: the
 *    same dequantized weights, f32 sums in another order over <= 192 terms
 *    per product and a few layers (a wrong block scale moves logits ~1e-2). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"
#include "core/internal.h"
#include "ctune/ctune.h"
#include "model/model_internal.h"
#include "tensor/nf4.h"
#include "tensor/nf4_matmul.h"

#define TOL_LOGITS 1e-5

/* ---- a tiny safetensors writer (any dtype, raw bytes) ------------------------ */
typedef struct {
    char name[160];
    const char *dtype; /* "F32", "U8" */
    int ndim;
    int64_t shape[2];
    uint8_t *data;
    size_t nbytes;
} tens;

typedef struct {
    tens t[64];
    int n;
} tlist;

static tens *add(tlist *l, const char *name, const char *dt, int ndim, int64_t s0, int64_t s1, const void *src,
                 size_t nbytes) {
    tens *t = &l->t[l->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dt;
    t->ndim = ndim;
    t->shape[0] = s0;
    t->shape[1] = s1;
    t->data = malloc(nbytes ? nbytes : 1);
    memcpy(t->data, src, nbytes);
    t->nbytes = nbytes;
    return t;
}
static tens *find(tlist *l, const char *name) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->t[i].name, name)) return &l->t[i];
    return NULL;
}
static void drop(tlist *l, const char *name) {
    tens *t = find(l, name);
    if (!t) return;
    free(t->data);
    *t = l->t[--l->n];
}
static void free_list(tlist *l) {
    for (int i = 0; i < l->n; i++) free(l->t[i].data);
    l->n = 0;
}

static void write_st(const char *path, const tlist *l) {
    char *h = malloc(1 << 16);
    size_t n = (size_t)sprintf(h, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t off = 0;
    for (int i = 0; i < l->n; i++) {
        const tens *t = &l->t[i];
        n += (size_t)sprintf(h + n, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld", t->name, t->dtype, (long long)t->shape[0]);
        if (t->ndim == 2) n += (size_t)sprintf(h + n, ",%lld", (long long)t->shape[1]);
        n += (size_t)sprintf(h + n, "],\"data_offsets\":[%zu,%zu]}", off, off + t->nbytes);
        off += t->nbytes;
    }
    h[n++] = '}';
    while (n % 8) h[n++] = ' ';
    FILE *f = fopen(path, "wb");
    uint64_t hl = n;
    fwrite(&hl, 8, 1, f);
    fwrite(h, 1, n, f);
    for (int i = 0; i < l->n; i++) fwrite(l->t[i].data, 1, l->t[i].nbytes, f);
    fclose(f);
    free(h);
}

static uint64_t rng = 12345;
static float frand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

enum { C = 64, H = 128, V = 32 };
static const char *CONFIG =
    "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 1,\n"
    " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\": 32, \"tie_word_embeddings\": false,\n"
    " \"quantization_config\": {\"_load_in_4bit\": true, \"_load_in_8bit\": false, \"bnb_4bit_compute_dtype\": "
    "\"float32\", \"bnb_4bit_quant_storage\": \"uint8\", \"bnb_4bit_quant_type\": \"nf4\", "
    "\"bnb_4bit_use_double_quant\": true, \"load_in_4bit\": true, \"load_in_8bit\": false, \"quant_method\": "
    "\"bitsandbytes\"%s}}\n";

static float g_deq_q[C * C]; /* q_proj dequantized, for the good checkpoint */

static void add_f32(tlist *l, const char *name, int64_t r, int64_t c) {
    size_t n = (size_t)(r * c);
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = c == 1 && r == C ? 1.0f + 0.1f * frand() : 0.05f * frand();
    add(l, name, "F32", c == 1 ? 1 : 2, r, c, v, n * sizeof(float));
    free(v);
}

/* X.weight of (rows, cols) as transformers' bnb layout, NF4 + double quant */
static void add_q4(tlist *l, const char *x, int rows, int cols, float *deq) {
    const int64_t n = (int64_t)rows * cols, nb = ct__q4_nblocks(n, 64), nn = ct__q4_nblocks(nb, 256);
    float *w = malloc(sizeof(float) * n), *am = malloc(sizeof(float) * nb), *work = malloc(sizeof(float) * nb),
          *nested = malloc(sizeof(float) * nn), map[256], off;
    uint8_t *codes = malloc((size_t)(n + 1) / 2), *qa = malloc((size_t)nb);
    for (int64_t i = 0; i < n; i++) w[i] = 0.05f * frand();
    ct__quantize_4bit_ref(w, n, 64, CT_Q4_NF4, codes, am);
    ct__dynamic_map_signed(map);
    ct__q4_double_quant(am, nb, 1, work, qa, nested, &off);
    if (deq) {
        ct_nf4_mat q = {.rows = rows, .cols = cols, .packed = codes, .qabsmax = qa, .nested_absmax = nested,
                        .nested_map = map, .offset = off};
        ct__nf4_mat_dequant_ref(&q, deq);
    }
    char nm[200], js[512];
    int64_t shape[2] = {rows, cols};
    int len = ct__bnb4_state_json(js, sizeof js, CT_Q4_NF4, 64, "float32", shape, 2, 1, off);
    snprintf(nm, sizeof nm, "%s.weight", x);
    add(l, nm, "U8", 2, (n + 1) / 2, 1, codes, (size_t)(n + 1) / 2);
    snprintf(nm, sizeof nm, "%s.weight.absmax", x);
    add(l, nm, "U8", 1, nb, 0, qa, (size_t)nb);
    snprintf(nm, sizeof nm, "%s.weight.quant_map", x);
    add(l, nm, "F32", 1, 16, 0, ct__nf4_map, 64);
    snprintf(nm, sizeof nm, "%s.weight.nested_absmax", x);
    add(l, nm, "F32", 1, nn, 0, nested, sizeof(float) * nn);
    snprintf(nm, sizeof nm, "%s.weight.nested_quant_map", x);
    add(l, nm, "F32", 1, 256, 0, map, sizeof map);
    snprintf(nm, sizeof nm, "%s.weight.quant_state.bitsandbytes__nf4", x);
    add(l, nm, "U8", 1, len, 0, js, (size_t)len);
    free(w); free(am); free(work); free(nested); free(codes); free(qa);
}

static void make_good(tlist *l) {
    rng = 12345;
    add_f32(l, "model.embed_tokens.weight", V, C);
    add_f32(l, "lm_head.weight", V, C);
    add_f32(l, "model.norm.weight", C, 1);
    add_f32(l, "model.layers.0.input_layernorm.weight", C, 1);
    add_f32(l, "model.layers.0.post_attention_layernorm.weight", C, 1);
    add_q4(l, "model.layers.0.self_attn.q_proj", C, C, g_deq_q);
    add_q4(l, "model.layers.0.self_attn.k_proj", 32, C, NULL);
    add_q4(l, "model.layers.0.self_attn.v_proj", 32, C, NULL);
    add_q4(l, "model.layers.0.self_attn.o_proj", C, C, NULL);
    add_q4(l, "model.layers.0.mlp.gate_proj", H, C, NULL);
    add_q4(l, "model.layers.0.mlp.up_proj", H, C, NULL);
    add_q4(l, "model.layers.0.mlp.down_proj", C, H, NULL);
}

static char g_dir[256];

static void write_dir(const tlist *l, const char *cfg_extra) {
    char p[512];
    snprintf(p, sizeof p, "%s/config.json", g_dir);
    FILE *f = fopen(p, "w");
    fprintf(f, CONFIG, cfg_extra);
    fclose(f);
    snprintf(p, sizeof p, "%s/model.safetensors", g_dir);
    write_st(p, l);
}

/* Load must fail with st and a message containing want1 and want2. */
static void expect_fail(const char *what, ct_status st, const char *want1, const char *want2) {
    ct_model *m = NULL;
    ct_status s = ct_model_load(g_dir, NULL, &m);
    const char *msg = ct_errmsg();
    int ok = s == st && m == NULL && strstr(msg, want1) && (!want2 || strstr(msg, want2));
    if (!ok) fprintf(stderr, "%s: got %s: %s\n", what, ct_status_str(s), msg);
    CHECK(ok);
    ct_model_free(m);
}

static void loader_errors(void) {
    snprintf(g_dir, sizeof g_dir, "%s/ctune-bnb4-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    mkdir(g_dir, 0755);
    tlist l = {.n = 0};
    make_good(&l);
    write_dir(&l, "");
    ct_model *m = NULL;
    CHECK_OK(ct_model_load(g_dir, NULL, &m));
    if (m) {
        const ct_mat *W = &m->layers[0].wq;
        CHECK(W->dtype == CT_DT_NF4 && W->q4 && W->rows == C && W->cols == C && W->row_bytes == 0);
        float row[C];
        int same = 1;
        for (int r = 0; r < C; r++) {
            ct__mat_row_f32(W, r, row);
            same &= memcmp(row, g_deq_q + r * C, sizeof row) == 0;
        }
        CHECK(same);
        CHECK(strstr(ct_model_dtype_summary(m), "NF4: 7") != NULL);
        ct_model_free(m);
    }
    const char *Q = "model.layers.0.self_attn.q_proj.weight";
    char nm[200];
    /* missing absmax */
    snprintf(nm, sizeof nm, "%s.absmax", Q);
    tens saved = *find(&l, nm);
    saved.data = malloc(saved.nbytes);
    memcpy(saved.data, find(&l, nm)->data, saved.nbytes);
    drop(&l, nm);
    write_dir(&l, "");
    expect_fail("missing absmax", CT_ERR_MISSING, "model.safetensors", "q_proj.weight.absmax");
    l.t[l.n++] = saved;
    /* truncated codes */
    tens *w = find(&l, Q);
    w->nbytes -= 1;
    w->shape[0] -= 1;
    write_dir(&l, "");
    expect_fail("truncated codes", CT_ERR_FORMAT, "model.safetensors", "q_proj.weight' (U8, 2047 bytes)");
    w->nbytes += 1;
    w->shape[0] += 1;
    /* a changed quant_map entry */
    snprintf(nm, sizeof nm, "%s.quant_map", Q);
    float *qm = (float *)find(&l, nm)->data;
    qm[3] += 0.01f;
    write_dir(&l, "");
    expect_fail("quant_map", CT_ERR_UNSUPPORTED, "model.safetensors", "q_proj.weight.quant_map': entry 3");
    qm[3] -= 0.01f;
    memcpy(qm, ct__nf4_map, 64);
    /* quant state: not JSON, blocksize 128, wrong quant_type, shape */
    snprintf(nm, sizeof nm, "%s.quant_state.bitsandbytes__nf4", Q);
    tens *js = find(&l, nm);
    char *orig = malloc(js->nbytes + 1);
    memcpy(orig, js->data, js->nbytes);
    orig[js->nbytes] = 0;
    size_t olen = js->nbytes;
    js->data[0] = 'x';
    write_dir(&l, "");
    expect_fail("bad JSON", CT_ERR_FORMAT, "bitsandbytes__nf4'", "model.safetensors");
    struct { const char *from, *to; ct_status st; const char *want; } ed[] = {
        {"\"blocksize\": 64", "\"blocksize\": 128", CT_ERR_UNSUPPORTED, "blocksize 128 is not supported"},
        {"\"quant_type\": \"nf4\"", "\"quant_type\": \"fp4\"", CT_ERR_FORMAT, "quant_type 'fp4' does not match"},
        {"\"shape\": [64, 64]", "\"shape\": [32, 128]", CT_ERR_SHAPE, "has shape (32, 128) in its quant state"},
    };
    for (size_t i = 0; i < sizeof ed / sizeof *ed; i++) {
        char buf[600];
        const char *p = strstr(orig, ed[i].from);
        CHECK(p != NULL);
        if (!p) continue;
        int n = snprintf(buf, sizeof buf, "%.*s%s%s", (int)(p - orig), orig, ed[i].to, p + strlen(ed[i].from));
        free(js->data);
        js->data = malloc((size_t)n);
        memcpy(js->data, buf, (size_t)n);
        js->nbytes = (size_t)n;
        js->shape[0] = n;
        write_dir(&l, "");
        expect_fail(ed[i].to, ed[i].st, ed[i].want, Q);
    }
    memcpy(js->data = realloc(js->data, olen), orig, olen);
    js->nbytes = olen;
    js->shape[0] = (int64_t)olen;
    free(orig);
    /* nested map of 255 floats */
    snprintf(nm, sizeof nm, "%s.nested_quant_map", Q);
    tens *nmap = find(&l, nm);
    nmap->nbytes -= 4;
    nmap->shape[0] -= 1;
    write_dir(&l, "");
    expect_fail("nested map", CT_ERR_FORMAT, "q_proj.weight.nested_quant_map' is F32 with 255 elements", NULL);
    nmap->nbytes += 4;
    nmap->shape[0] += 1;
    write_dir(&l, "");
    CHECK_OK(ct_model_load(g_dir, NULL, &m)); /* restored: loads again */
    ct_model_free(m);
    m = NULL;
    /* config.json: 8-bit and another quant method */
    char p[512];
    snprintf(p, sizeof p, "%s/config.json", g_dir);
    FILE *f = fopen(p, "w");
    fprintf(f, "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 1, "
               "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\": 32, "
               "\"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": 4}}");
    fclose(f);
    expect_fail("gptq", CT_ERR_UNSUPPORTED, "config.json", "quant_method 'gptq'");
    f = fopen(p, "w");
    fprintf(f, "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 1, "
               "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\": 32, "
               "\"quantization_config\": {\"quant_method\": \"bitsandbytes\", \"load_in_8bit\": true}}");
    fclose(f);
    expect_fail("8-bit only", CT_ERR_UNSUPPORTED, "config.json", "quantization_config.load_in_8bit");
    /* a truncated file */
    write_dir(&l, "");
    snprintf(p, sizeof p, "%s/model.safetensors", g_dir);
    CHECK(truncate(p, 4000) == 0);
    ct_model *m2 = NULL;
    CHECK(ct_model_load(g_dir, NULL, &m2) != CT_OK && strstr(ct_errmsg(), "model.safetensors"));
    free_list(&l);
    unlink(p);
    snprintf(p, sizeof p, "%s/config.json", g_dir);
    unlink(p);
    rmdir(g_dir);
}

/* ---- logits vs transformers ----------------------------------------------------- */
static void *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc((size_t)sz + 1);
    *n = fread(p, 1, (size_t)sz, f);
    fclose(f);
    return p;
}

static void ref_logits(const char *dir) {
    char path[1024], name[128], mdir[1024], lpath[1024];
    size_t nids = 0, nl = 0;
    snprintf(path, sizeof path, "%s/ids.bin", dir);
    int32_t *ids = read_all(path, &nids);
    CHECK(ids != NULL);
    if (!ids) return;
    int T = (int)(nids / 4);
    snprintf(path, sizeof path, "%s/cases.txt", dir);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    while (f && fscanf(f, "%127s %1023s %1023s", name, mdir, lpath) == 3) {
        ct_model *m = NULL;
        ct_ctx *c = NULL;
        CHECK_OK(ct_model_load(mdir, NULL, &m));
        if (m) CHECK_OK(ct_ctx_create(m, 64, 2, &c));
        if (!c) { ct_model_free(m); continue; }
        int Vv = ct_model_config(m)->vocab_size;
        float *ref = read_all(lpath, &nl), *got = calloc((size_t)T * Vv, sizeof(float));
        CHECK(ref && nl == sizeof(float) * (size_t)T * Vv);
        CHECK_OK(ct_ctx_forward(c, ids, T, got, 1));
        double d = 0, mx = 0;
        for (size_t i = 0; ref && i < (size_t)T * Vv; i++) {
            double e = fabs((double)got[i] - ref[i]);
            if (!(e <= d)) d = e;
            if (fabs(ref[i]) > mx) mx = fabs(ref[i]);
        }
        /* decode one token at a time through the cache: the T = 1 kernels */
        ct_ctx_reset(c);
        double d1 = 0;
        for (int t = 0; t < T; t++) {
            CHECK_OK(ct_ctx_forward(c, ids + t, 1, got, 0));
            for (int v = 0; ref && v < Vv; v++) {
                double e = fabs((double)got[v] - ref[(size_t)t * Vv + v]);
                if (!(e <= d1)) d1 = e;
            }
        }
        printf("%s (%s): logits vs transformers' 4-bit model: max |diff| %.3g batched, %.3g one token at a time "
               "(max |logit| %.3g)\n", name, ct_model_dtype_summary(m), d, d1, mx);
        CHECK(d <= TOL_LOGITS * (mx > 1 ? mx : 1));
        CHECK(d1 <= TOL_LOGITS * (mx > 1 ? mx : 1));
        free(ref);
        free(got);
        ct_ctx_free(c);
        ct_model_free(m);
    }
    if (f) fclose(f);
    free(ids);
}

int main(void) {
    loader_errors();
    const char *dir = getenv("CTUNE_BNB4_REF_DIR");
    if (dir) ref_logits(dir);
    else printf("test_bnb4: no CTUNE_BNB4_REF_DIR: the transformers comparison runs from tests/e2e/test_bnb4.sh\n");
    return ct_check_done("test_bnb4");
}
