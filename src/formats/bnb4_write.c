/* src/formats/bnb4_write.c — ct__bnb4_write_model (`ctune quantize`): a
 * loaded model written as the Hugging Face directory transformers'
 * save_pretrained writes for a BitsAndBytesConfig(load_in_4bit=True) model,
 * tensor for tensor byte-identical to it (tests/e2e/test_bnb4.sh).
 *
 * What is quantized: every linear layer of the blocks, as transformers'
 * replace_with_bnb_linear does (Llama q/k/v/o/gate/up/down; GPT-2 c_attn,
 * c_proj, c_fc, mlp.c_proj, its Conv1D weights transposed to (out, in)
 * first, as transformers does before quantizing). Kept in the model's float
 * dtype: embeddings, norms, biases and lm_head (transformers keeps the
 * output head unquantized). Each 4-bit weight is ct__quantize_4bit (its
 * blocks split over the threads: blocks are independent, so the bits do not
 * depend on the split) + ct__q4_double_quant with torch_threads 1 (the
 * offset is a torch f32 mean; above 32768 blocks torch's own result depends
 * on its thread count, see docs/qlora.md).
 *
 * model.safetensors is laid out as Python's safetensors writes it: tensors
 * ordered by dtype alignment (F32, then 2-byte types, then U8) and name, the
 * header in that order, compact, space-padded to 8 bytes. Its sizes are known
 * only after the double quantization (the JSON blob holds the offset's
 * repr), so a first pass computes every weight's block scales and offset
 * (reading the matrix once), the header is written, and a second pass
 * quantizes each matrix and writes its pieces at their offsets (pwrite).
 * Memory: one matrix in f32 plus its codes; the source's pages are dropped
 * after each matrix.
 * Atomicity: everything goes into OUT.tmp.<pid>/, fsync'ed, then the
 * directory is renamed to OUT; on failure it is removed.
 * Leaves out: sharding (transformers writes one file up to its 50 GB default
 * max_shard_size; ctune loads both), the output head in 4 bits, sources
 * already quantized (refused: re-quantizing loses precision twice). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ctune/export.h"
#include "formats/bnb4.h"
#include "formats/json_write.h"
#include "formats/st_write.h"
#include "model/model_internal.h"
#include "tensor/nf4_matmul.h"
#include "tokenizer/export_hf.h"
#include "train/peft.h"

/* ---- the tensor list --------------------------------------------------------- */

enum { K_PLAIN, K_CODES, K_ABSMAX, K_QMAP, K_NESTED, K_NMAP, K_STATE };

typedef struct {
    char name[200];
    int kind;          /* K_* */
    ct_dtype dt;       /* stored dtype */
    int ndim;
    int64_t shape[2];
    size_t nbytes;
    size_t off;        /* data offset (after the header) */
    int src;           /* index into the writer's sources */
} otensor;

/* A source: one plain tensor (mat or vec) or one 4-bit weight. */
typedef struct {
    char base[200];    /* HF name of the weight ("model.layers.0.self_attn.q_proj.weight") */
    const ct_mat *W;   /* matrix (plain or to quantize), or NULL */
    const ct_mat *W2, *W3; /* GPT-2 c_attn: k and v rows after W's */
    const float *vec;  /* vector (F32 copy), or NULL */
    int64_t n;         /* vector length */
    int quant;         /* 1: written in 4 bits */
    int rope_heads;    /* NORM-rope q/k: rows permuted to HF's layout, heads of head_dim */
    int64_t rows, cols;
    char *json;        /* quant-state JSON (pass 1) */
    size_t json_len;
} osrc;

typedef struct {
    ct_model *m;
    const ct__bnb4_write_opts *o;
    ct_dtype fdt;      /* float dtype of the plain tensors */
    const char *fdt_name; /* "float32", "bfloat16", "float16" */
    osrc *src;
    int nsrc, capsrc;
    otensor *t;
    int nt, capt;
    ct_pool *pool;
    int fd;
    const char *path;  /* model.safetensors being written, for messages */
    size_t data0;      /* file offset of the data */
} wctx;

static ct_status grow(void **p, int *cap, int n, size_t es) {
    if (n < *cap) return CT_OK;
    int nc = *cap ? 2 * *cap : 64;
    void *q = realloc(*p, (size_t)nc * es);
    if (!q) return ct__err(CT_ERR_NOMEM, "quantize: out of memory");
    *p = q;
    *cap = nc;
    return CT_OK;
}

static ct_status add_src(wctx *w, const char *name, const ct_mat *W, const float *vec, int64_t n, int quant,
                         int rope_heads) {
    ct_status s = grow((void **)&w->src, &w->capsrc, w->nsrc, sizeof *w->src);
    if (s) return s;
    osrc *o = &w->src[w->nsrc++];
    memset(o, 0, sizeof *o);
    snprintf(o->base, sizeof o->base, "%s", name);
    o->W = W;
    o->vec = vec;
    o->n = n;
    o->quant = quant;
    o->rope_heads = rope_heads;
    if (W) { o->rows = W->rows; o->cols = W->cols; }
    return CT_OK;
}

static ct_status add_vec(wctx *w, const char *name, const float *v, int64_t n) {
    return v ? add_src(w, name, NULL, v, n, 0, 0) : CT_OK;
}

static ct_status collect_llama(wctx *w) {
    ct_model *m = w->m;
    const ct_config *c = &m->cfg;
    const int norm_rope = c->rope_style == CT_ROPE_NORM;
    char nm[200];
    ct_status s;
#define T(x) do { if ((s = (x)) != CT_OK) return s; } while (0)
    T(add_src(w, "model.embed_tokens.weight", &m->tok_emb, NULL, 0, 0, 0));
    for (int l = 0; l < c->n_layers; l++) {
        ct__layer *L = &m->layers[l];
        static const char *const lin[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                          "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
        const ct_mat *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        const float *bias[] = {L->bq, L->bk, L->bv, L->bo, NULL, NULL, NULL};
        for (int i = 0; i < 7; i++) {
            snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, lin[i]);
            T(add_src(w, nm, mats[i], NULL, 0, 1, norm_rope && i < 2 ? c->head_dim : 0));
            if (bias[i]) {
                snprintf(nm, sizeof nm, "model.layers.%d.%s.bias", l, lin[i]);
                T(add_vec(w, nm, bias[i], mats[i]->rows));
                if (norm_rope && i < 2) w->src[w->nsrc - 1].rope_heads = c->head_dim;
            }
        }
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
        T(add_vec(w, nm, L->attn_norm, c->dim));
        snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l);
        T(add_vec(w, nm, L->ffn_norm, c->dim));
    }
    T(add_vec(w, "model.norm.weight", m->out_norm, c->dim));
    if (!c->tie_embeddings) T(add_src(w, "lm_head.weight", &m->output, NULL, 0, 0, 0));
    return CT_OK;
}

static ct_status collect_gpt2(wctx *w) {
    ct_model *m = w->m;
    const ct_config *c = &m->cfg;
    char nm[200];
    ct_status s;
    T(add_src(w, "transformer.wte.weight", &m->tok_emb, NULL, 0, 0, 0));
    T(add_src(w, "transformer.wpe.weight", &m->pos_emb, NULL, 0, 0, 0));
    for (int l = 0; l < c->n_layers; l++) {
        ct__layer *L = &m->layers[l];
#define P(fmt, ...) (snprintf(nm, sizeof nm, "transformer.h.%d." fmt, l), nm)
        T(add_vec(w, P("ln_1.weight"), L->attn_norm, c->dim));
        T(add_vec(w, P("ln_1.bias"), L->attn_norm_b, c->dim));
        T(add_src(w, P("attn.c_attn.weight"), &L->wq, NULL, 0, 1, 0));
        osrc *o = &w->src[w->nsrc - 1];
        o->W2 = &L->wk;
        o->W3 = &L->wv;
        o->rows = (int64_t)L->wq.rows + L->wk.rows + L->wv.rows;
        T(add_vec(w, P("attn.c_attn.bias"), L->bq, o->rows)); /* bq, bk, bv are consecutive */
        T(add_src(w, P("attn.c_proj.weight"), &L->wo, NULL, 0, 1, 0));
        T(add_vec(w, P("attn.c_proj.bias"), L->bo, c->dim));
        T(add_vec(w, P("ln_2.weight"), L->ffn_norm, c->dim));
        T(add_vec(w, P("ln_2.bias"), L->ffn_norm_b, c->dim));
        T(add_src(w, P("mlp.c_fc.weight"), &L->w_up, NULL, 0, 1, 0));
        T(add_vec(w, P("mlp.c_fc.bias"), L->b_up, c->hidden_dim));
        T(add_src(w, P("mlp.c_proj.weight"), &L->w_down, NULL, 0, 1, 0));
        T(add_vec(w, P("mlp.c_proj.bias"), L->b_down, c->dim));
#undef P
    }
    T(add_vec(w, "transformer.ln_f.weight", m->out_norm, c->dim));
    T(add_vec(w, "transformer.ln_f.bias", m->out_norm_b, c->dim));
    if (!c->tie_embeddings) T(add_src(w, "lm_head.weight", &m->output, NULL, 0, 0, 0));
    return CT_OK;
}

/* ---- reading a source in HF layout ------------------------------------------- */

/* HF row of our row r of a NORM-rope q/k matrix (GGUF / llama2.c sources
 * interleave each head's rotary pairs; HF keeps halves). */
static int64_t rope_row(int64_t r, int HS) {
    int64_t h = r / HS, j = r % HS;
    return h * HS + (j % 2 ? HS / 2 + j / 2 : j / 2);
}

/* Drop the source pages behind W's rows (a mapped file's), after use. */
static void drop_src(const wctx *w, const ct_mat *W) {
    if (!W || W->dtype == CT_DT_NF4) return;
    for (size_t i = 0; i < w->m->ts.nfiles; i++)
        if (ct__mfile_drop_range(&w->m->ts.files[i], W->data, (size_t)W->rows * W->row_bytes)) break;
}

/* The source as f32 in HF layout: out (rows, cols) or (n,). */
static void read_src(const wctx *w, const osrc *o, float *out) {
    if (o->vec) {
        for (int64_t i = 0; i < o->n; i++) out[o->rope_heads ? rope_row(i, o->rope_heads) : i] = o->vec[i];
        return;
    }
    const ct_mat *parts[3] = {o->W, o->W2, o->W3};
    int64_t r0 = 0;
    for (int p = 0; p < 3 && parts[p]; p++) {
        for (int r = 0; r < parts[p]->rows; r++) {
            int64_t hr = r0 + (o->rope_heads ? rope_row(r, o->rope_heads) : r);
            ct__mat_row_f32(parts[p], r, out + hr * o->cols);
        }
        r0 += parts[p]->rows;
    }
    for (int p = 0; p < 3; p++) drop_src(w, parts[p]);
}

/* ---- quantization of one matrix ---------------------------------------------- */

typedef struct {
    const float *x;
    int64_t n;
    ct_q4_type t;
    uint8_t *codes;
    float *absmax;
} qjob;

static void quant_task(void *ctx, int ith, int nth) {
    const qjob *j = ctx;
    const int64_t nb = ct__q4_nblocks(j->n, CT_NF4_BLOCK);
    const int64_t b0 = nb * ith / nth, b1 = nb * (ith + 1) / nth;
    if (b0 >= b1) return;
    const int64_t s = b0 * CT_NF4_BLOCK, e = b1 * CT_NF4_BLOCK < j->n ? b1 * CT_NF4_BLOCK : j->n;
    /* blocks are independent and s is even: the same bits as one call */
    ct__quantize_4bit(j->x + s, e - s, CT_NF4_BLOCK, j->t, j->codes + s / 2, j->absmax + b0);
}

/* Block maxima only (pass 1), as quantize_4bit computes them. */
typedef struct {
    const float *x;
    int64_t n;
    float *absmax;
} ajob;

static void absmax_task(void *ctx, int ith, int nth) {
    const ajob *j = ctx;
    const int64_t nb = ct__q4_nblocks(j->n, CT_NF4_BLOCK), full = j->n / CT_NF4_BLOCK;
    for (int64_t b = nb * ith / nth; b < nb * (ith + 1) / nth; b++) {
        const int64_t s = b * CT_NF4_BLOCK, e = s + CT_NF4_BLOCK < j->n ? s + CT_NF4_BLOCK : j->n;
        float am = 0.0f;
        for (int64_t i = s; i < e; i++) am = fmaxf(am, fabsf(j->x[i]));
        if (b >= full) am = fmaxf(am, 1e-38f);
        j->absmax[b] = am;
    }
}

/* ---- the file ------------------------------------------------------------------ */

static size_t align_of(ct_dtype d) { return d == CT_DT_U8 ? 1 : d == CT_DT_F32 ? 4 : 2; }

static int by_layout(const void *a, const void *b) {
    const otensor *x = a, *y = b;
    size_t ax = align_of(x->dt), ay = align_of(y->dt);
    if (ax != ay) return ax > ay ? -1 : 1;
    return strcmp(x->name, y->name);
}

static ct_status add_t(wctx *w, int src, const char *sfx, int kind, ct_dtype dt, int ndim, int64_t s0, int64_t s1) {
    ct_status s = grow((void **)&w->t, &w->capt, w->nt, sizeof *w->t);
    if (s) return s;
    otensor *t = &w->t[w->nt++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s%s", w->src[src].base, sfx);
    t->kind = kind;
    t->dt = dt;
    t->ndim = ndim;
    t->shape[0] = s0;
    t->shape[1] = s1;
    t->nbytes = (size_t)(ndim == 2 ? s0 * s1 : s0) * ct_dtype_block_bytes(dt);
    t->src = src;
    return CT_OK;
}

static const char *st_name(ct_dtype d) {
    return d == CT_DT_F32 ? "F32" : d == CT_DT_BF16 ? "BF16" : d == CT_DT_F16 ? "F16" : "U8";
}

/* Pass 1: every 4-bit weight's quant state (hence its JSON length), then the
 * tensor list in file order with offsets. */
static ct_status plan(wctx *w) {
    const int dq = !w->o->no_double_quant;
    float *buf = NULL, *am = NULL, *work = NULL, *nested = NULL;
    uint8_t *qa = NULL;
    size_t cap = 0, capb = 0;
    ct_status s = CT_OK;
    for (int i = 0; i < w->nsrc && !s; i++) {
        osrc *o = &w->src[i];
        if (!o->quant) {
            if (o->vec) s = add_t(w, i, "", K_PLAIN, w->fdt, 1, o->n, 0);
            else s = add_t(w, i, "", K_PLAIN, w->fdt, 2, o->rows, o->cols);
            continue;
        }
        const int64_t n = o->rows * o->cols, nb = ct__q4_nblocks(n, CT_NF4_BLOCK);
        const int64_t nn = ct__q4_nblocks(nb, CT_NF4_NESTED_BLOCK);
        float offset = 0.0f;
        if (dq) {
            if ((size_t)n > cap) {
                free(buf);
                buf = malloc(sizeof(float) * (size_t)n);
                cap = buf ? (size_t)n : 0;
            }
            if ((size_t)nb > capb) {
                free(am); free(work); free(nested); free(qa);
                am = malloc(sizeof(float) * nb);
                work = malloc(sizeof(float) * nb);
                nested = malloc(sizeof(float) * nn);
                qa = malloc((size_t)nb);
                capb = am && work && nested && qa ? (size_t)nb : 0;
            }
            if (!cap || !capb) { s = ct__err(CT_ERR_NOMEM, "quantize: out of memory for %s", o->base); break; }
            read_src(w, o, buf);
            ajob aj = {buf, n, am};
            ct__pool_run(w->pool, absmax_task, &aj);
            ct__q4_double_quant(am, nb, 1, work, qa, nested, &offset);
        }
        char js[512];
        const int64_t shape[2] = {o->rows, o->cols};
        int len = ct__bnb4_state_json(js, sizeof js, w->o->type, CT_NF4_BLOCK, w->fdt_name, shape, 2, dq, offset);
        o->json = len > 0 ? ct__strdup(js) : NULL;
        if (!o->json) { s = ct__err(CT_ERR_NOMEM, "quantize: quant state of %s", o->base); break; }
        o->json_len = (size_t)len;
        const char *st = w->o->type == CT_Q4_NF4 ? ".quant_state.bitsandbytes__nf4" : ".quant_state.bitsandbytes__fp4";
        if ((s = add_t(w, i, "", K_CODES, CT_DT_U8, 2, (n + 1) / 2, 1)) ||
            (s = add_t(w, i, ".absmax", K_ABSMAX, dq ? CT_DT_U8 : CT_DT_F32, 1, nb, 0)) ||
            (s = add_t(w, i, ".quant_map", K_QMAP, CT_DT_F32, 1, 16, 0)) ||
            (s = add_t(w, i, st, K_STATE, CT_DT_U8, 1, len, 0)))
            break;
        if (dq && ((s = add_t(w, i, ".nested_absmax", K_NESTED, CT_DT_F32, 1, nn, 0)) ||
                   (s = add_t(w, i, ".nested_quant_map", K_NMAP, CT_DT_F32, 1, 256, 0))))
            break;
    }
    free(buf); free(am); free(work); free(nested); free(qa);
    if (s) return s;
    qsort(w->t, (size_t)w->nt, sizeof *w->t, by_layout);
    size_t off = 0;
    for (int i = 0; i < w->nt; i++) {
        w->t[i].off = off;
        off += w->t[i].nbytes;
    }
    return CT_OK;
}

static ct_status io_fail(const wctx *w, const char *what, int e) {
    return ct__err(CT_ERR_IO, "%s: %s failed: %s%s", w->path, what, strerror(e),
                   e == ENOSPC || e == EFBIG || e == EDQUOT ? " (free space or choose another -o)" : "");
}

static ct_status put(const wctx *w, size_t off, const void *p, size_t n) {
    const uint8_t *b = p;
    while (n) {
        ssize_t k = pwrite(w->fd, b, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return io_fail(w, "write", k < 0 ? errno : ENOSPC);
        b += k;
        off += (size_t)k;
        n -= (size_t)k;
    }
    return CT_OK;
}

static ct_status write_header(wctx *w) {
    ct_jw j;
    ct__jw_init(&j, 0);
    ct__jw_obj_begin(&j);
    ct__jw_key(&j, "__metadata__");
    ct__jw_obj_begin(&j);
    ct__jw_key(&j, "format");
    ct__jw_str(&j, "pt");
    ct__jw_obj_end(&j);
    for (int i = 0; i < w->nt; i++) {
        const otensor *t = &w->t[i];
        ct__jw_key(&j, t->name);
        ct__jw_obj_begin(&j);
        ct__jw_key(&j, "dtype");
        ct__jw_str(&j, st_name(t->dt));
        ct__jw_key(&j, "shape");
        ct__jw_arr_begin(&j);
        for (int d = 0; d < t->ndim; d++) ct__jw_int(&j, t->shape[d]);
        ct__jw_arr_end(&j);
        ct__jw_key(&j, "data_offsets");
        ct__jw_arr_begin(&j);
        ct__jw_int(&j, (int64_t)t->off);
        ct__jw_int(&j, (int64_t)(t->off + t->nbytes));
        ct__jw_arr_end(&j);
        ct__jw_obj_end(&j);
    }
    ct__jw_obj_end(&j);
    while (j.len % 8) ct__jw_raw(&j, " ", 1);
    char *text;
    size_t len;
    ct_status s = ct__jw_finish(&j, "safetensors header", &text, &len);
    if (s) return s;
    uint8_t hl[8];
    for (int i = 0; i < 8; i++) hl[i] = (uint8_t)((uint64_t)len >> (8 * i));
    s = put(w, 0, hl, 8);
    if (!s) s = put(w, 8, text, len);
    free(text);
    w->data0 = 8 + len;
    return s;
}

/* f32 values into the stored float dtype, written at off. */
static ct_status put_floats(const wctx *w, size_t off, const float *v, int64_t n, ct_dtype dt) {
    if (dt == CT_DT_F32) return put(w, off, v, sizeof(float) * (size_t)n);
    enum { CH = 4096 };
    uint16_t b[CH];
    for (int64_t i = 0; i < n; i += CH) {
        int64_t k = n - i < CH ? n - i : CH;
        for (int64_t j = 0; j < k; j++) b[j] = dt == CT_DT_BF16 ? ct__f32_to_bf16(v[i + j]) : ct__f32_to_f16(v[i + j]);
        ct_status s = put(w, off + 2 * (size_t)i, b, 2 * (size_t)k);
        if (s) return s;
    }
    return CT_OK;
}

static const otensor *tensor_of(const wctx *w, int src, int kind) {
    for (int i = 0; i < w->nt; i++)
        if (w->t[i].src == src && w->t[i].kind == kind) return &w->t[i];
    return NULL;
}

/* Pass 2: each source once, its pieces at their offsets. */
static ct_status write_data(wctx *w) {
    const int dq = !w->o->no_double_quant;
    float map[256];
    ct__dynamic_map_signed(map);
    const float *qmap = w->o->type == CT_Q4_NF4 ? ct__nf4_map : ct__fp4_map;
    ct_status s = CT_OK;
    for (int i = 0; i < w->nsrc && !s; i++) {
        const osrc *o = &w->src[i];
        const int64_t n = o->vec ? o->n : o->rows * o->cols, nb = ct__q4_nblocks(n, CT_NF4_BLOCK);
        const int64_t nn = ct__q4_nblocks(nb, CT_NF4_NESTED_BLOCK);
        float *buf = ct__alloc_big(sizeof(float) * (size_t)n);
        if (!buf) return ct__err(CT_ERR_NOMEM, "quantize: out of memory for %s (%lld values)", o->base, (long long)n);
        read_src(w, o, buf);
        if (!o->quant) {
            s = put_floats(w, w->data0 + tensor_of(w, i, K_PLAIN)->off, buf, n, w->fdt);
            ct__free_big(buf, sizeof(float) * (size_t)n);
            continue;
        }
        uint8_t *codes = malloc((size_t)(n + 1) / 2), *qa = malloc((size_t)nb);
        float *am = malloc(sizeof(float) * nb), *work = malloc(sizeof(float) * nb), *nested = malloc(sizeof(float) * nn);
        if (!codes || !qa || !am || !work || !nested) s = ct__err(CT_ERR_NOMEM, "quantize: out of memory for %s", o->base);
        if (!s) {
            qjob qj = {buf, n, w->o->type, codes, am};
            ct__pool_run(w->pool, quant_task, &qj);
            s = put(w, w->data0 + tensor_of(w, i, K_CODES)->off, codes, (size_t)(n + 1) / 2);
        }
        if (!s) s = put(w, w->data0 + tensor_of(w, i, K_QMAP)->off, qmap, 64);
        if (!s) s = put(w, w->data0 + tensor_of(w, i, K_STATE)->off, o->json, o->json_len);
        if (!s && dq) {
            float off;
            ct__q4_double_quant(am, nb, 1, work, qa, nested, &off);
            s = put(w, w->data0 + tensor_of(w, i, K_ABSMAX)->off, qa, (size_t)nb);
            if (!s) s = put(w, w->data0 + tensor_of(w, i, K_NESTED)->off, nested, sizeof(float) * nn);
            if (!s) s = put(w, w->data0 + tensor_of(w, i, K_NMAP)->off, map, sizeof map);
        } else if (!s) {
            s = put(w, w->data0 + tensor_of(w, i, K_ABSMAX)->off, am, sizeof(float) * nb);
        }
        free(codes); free(qa); free(am); free(work); free(nested);
        ct__free_big(buf, sizeof(float) * (size_t)n);
        if (w->o->verbose) ct__log(CT_LOG_INFO, "quantized %s (%lld x %lld)", o->base, (long long)o->rows, (long long)o->cols);
    }
    return s;
}

/* ---- config.json ------------------------------------------------------------------- */

/* The source's config.json (a HF directory) or one written from the config,
 * with the quantization_config block transformers writes appended. */
static ct_status write_config(const wctx *w, const char *dir) {
    char path[4096], *text = NULL;
    size_t len = 0;
    if (snprintf(path, sizeof path, "%s/config.json", dir) >= (int)sizeof path)
        return ct__err(CT_ERR_ARG, "%s: path too long", dir);
    ct_status s;
    if (ct__is_dir(w->m->path)) {
        char src[4096];
        snprintf(src, sizeof src, "%s/config.json", w->m->path);
        s = ct__read_file(src, &text, &len);
    } else {
        s = ct__hf_config_write(path, &w->m->cfg);
        if (!s) s = ct__read_file(path, &text, &len);
    }
    if (s) return s;
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' ' || text[len - 1] == '\r')) len--;
    if (!len || text[len - 1] != '}') {
        free(text);
        return ct__err(CT_ERR_FORMAT, "%s: config.json does not end with '}'", w->m->path);
    }
    len--;
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' ')) len--;
    char q[1024];
    int n = snprintf(q, sizeof q,
                     ",\n  \"quantization_config\": {\n"
                     "    \"_load_in_4bit\": true,\n    \"_load_in_8bit\": false,\n"
                     "    \"bnb_4bit_compute_dtype\": \"float32\",\n    \"bnb_4bit_quant_storage\": \"uint8\",\n"
                     "    \"bnb_4bit_quant_type\": \"%s\",\n    \"bnb_4bit_use_double_quant\": %s,\n"
                     "    \"llm_int8_enable_fp32_cpu_offload\": false,\n    \"llm_int8_has_fp16_weight\": false,\n"
                     "    \"llm_int8_skip_modules\": null,\n    \"llm_int8_threshold\": 6.0,\n"
                     "    \"load_in_4bit\": true,\n    \"load_in_8bit\": false,\n"
                     "    \"quant_method\": \"bitsandbytes\"\n  }\n}\n",
                     w->o->type == CT_Q4_NF4 ? "nf4" : "fp4", w->o->no_double_quant ? "false" : "true");
    char *out = malloc(len + (size_t)n + 1);
    if (!out) { free(text); return ct__err(CT_ERR_NOMEM, "%s: out of memory", path); }
    memcpy(out, text, len);
    memcpy(out + len, q, (size_t)n);
    s = ct__write_file_atomic(path, out, len + (size_t)n);
    free(out);
    free(text);
    return s;
}

static ct_status copy_file(const char *src, const char *dst) {
    char *text;
    size_t len;
    ct_status s = ct__read_file(src, &text, &len);
    if (s) return s;
    s = ct__write_file_atomic(dst, text, len);
    free(text);
    return s;
}

static ct_status write_tokenizer(const wctx *w, const char *dir) {
    ct_status s = CT_OK;
    if (ct__is_dir(w->m->path)) {
        static const char *const files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                            "generation_config.json", "vocab.json", "merges.txt",
                                            "tokenizer.model", "chat_template.jinja"};
        for (size_t i = 0; i < sizeof files / sizeof files[0] && !s; i++) {
            char src[4096], dst[4096];
            snprintf(src, sizeof src, "%s/%s", w->m->path, files[i]);
            if (!ct__file_exists(src)) continue;
            if (snprintf(dst, sizeof dst, "%s/%s", dir, files[i]) >= (int)sizeof dst) continue;
            s = copy_file(src, dst);
        }
    } else if (w->m->tok) {
        s = ct__tokenizer_write_hf(w->m->tok, dir);
        if (s == CT_ERR_UNSUPPORTED) {
            ct__log(CT_LOG_WARN, "%s: no tokenizer.json written: %s", dir, ct_errmsg());
            s = CT_OK;
        }
    }
    return s;
}

/* rm -r of the temporary directory (flat: only files). */
static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char p[4096];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < (int)sizeof p) unlink(p);
            }
        closedir(d);
    }
    rmdir(dir);
}

/* ---- entry ---------------------------------------------------------------------------- */

static ct_status check_source(const ct_model *m) {
    const ct_mat *mats[] = {&m->tok_emb, &m->output};
    for (int i = 0; i < 2; i++)
        if (mats[i]->dtype == CT_DT_NF4)
            return ct__err(CT_ERR_UNSUPPORTED, "%s: the model is already 4-bit", m->path);
    for (int l = 0; l < m->cfg.n_layers; l++)
        if (m->layers[l].wq.dtype == CT_DT_NF4)
            return ct__err(CT_ERR_UNSUPPORTED, "%s: the model is already quantized to 4 bits (bitsandbytes); "
                           "quantize its unquantized original instead", m->path);
    return CT_OK;
}

ct_status ct__bnb4_write_model(ct_model *m, const char *out, const ct__bnb4_write_opts *o) {
    ct__bnb4_write_opts def = {0};
    if (!o) o = &def;
    if (!m || !out || !*out) return ct__err(CT_ERR_ARG, "quantize: model or output missing");
    char outb[3100];
    size_t ol = strlen(out);
    if (ol >= sizeof outb) return ct__err(CT_ERR_ARG, "%.100s...: output path too long", out);
    memcpy(outb, out, ol + 1);
    while (ol > 1 && outb[ol - 1] == '/') outb[--ol] = 0; /* "dir/" -> "dir": the temp dir goes beside it */
    out = outb;
    if (o->type != CT_Q4_NF4 && o->type != CT_Q4_FP4) return ct__err(CT_ERR_ARG, "quantize: unknown 4-bit type");
    ct_status s = check_source(m);
    if (s) return s;
    struct stat sb;
    if (stat(out, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode) || rmdir(out) != 0) /* an empty directory may be replaced */
            return ct__err(CT_ERR_IO, "%s: already exists (choose a new -o or remove it)", out);
    }
    wctx w = {.m = m, .o = o, .fd = -1};
    ct_dtype ed = m->tok_emb.dtype;
    w.fdt = ed == CT_DT_BF16 || ed == CT_DT_F16 ? ed : CT_DT_F32;
    w.fdt_name = w.fdt == CT_DT_BF16 ? "bfloat16" : w.fdt == CT_DT_F16 ? "float16" : "float32";
    char tmp[4096], path[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", out, (int)getpid());
    if (snprintf(path, sizeof path, "%s/model.safetensors", tmp) >= (int)sizeof path) return CT_ERR_ARG;
    w.path = path;
    if ((s = ct__pool_create(o->n_threads, &w.pool))) return s;
    s = m->cfg.arch == CT_ARCH_GPT2 ? collect_gpt2(&w) : collect_llama(&w);
    if (!s && mkdir(tmp, 0755) != 0)
        s = ct__err(CT_ERR_IO, "%s: cannot create the output directory: %s", tmp, strerror(errno));
    int made = !s;
    if (!s) s = plan(&w);
    if (!s) s = write_config(&w, tmp);
    if (!s) s = write_tokenizer(&w, tmp);
    if (!s && (w.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) s = io_fail(&w, "open", errno);
    if (!s) s = write_header(&w);
    if (!s) s = write_data(&w);
    if (!s && fsync(w.fd) != 0) s = io_fail(&w, "fsync", errno);
    if (w.fd >= 0 && close(w.fd) != 0 && !s) s = io_fail(&w, "close", errno);
    if (!s && rename(tmp, out) != 0)
        s = ct__err(CT_ERR_IO, "%s: cannot rename %s to it: %s", out, tmp, strerror(errno));
    if (s && made) remove_dir(tmp);
    for (int i = 0; i < w.nsrc; i++) free(w.src[i].json);
    free(w.src);
    free(w.t);
    ct__pool_free(w.pool);
    return s;
}
#undef T

ct_status ct_model_save_bnb4(ct_model *m, const char *out, const ct_quantize_opts *opts) {
    ct__bnb4_write_opts o = {.type = opts && opts->fp4 ? CT_Q4_FP4 : CT_Q4_NF4,
                             .no_double_quant = opts ? opts->no_double_quant : 0,
                             .n_threads = opts ? opts->n_threads : 0,
                             .verbose = opts ? opts->verbose : 0};
    return ct__bnb4_write_model(m, out, &o);
}
