/* src/formats/bnb4.c — reading bitsandbytes 4-bit Hugging Face checkpoints
 * (see bnb4.h for the layout): config.json's quantization_config, and each
 * quantized Linear's tensors into one CT_DT_NF4 ct_mat that points into the
 * mapped safetensors data (nothing is dequantized or copied).
 * The format was learned from transformers 5.x (its bitsandbytes quantizer
 * and BitsAndBytesConfig.to_dict) and bitsandbytes 0.50.2 (QuantState.as_dict
 * (packed=True) / from_dict), and checked against files they saved.
 * Leaves out: the writer (bnb4_write.c), 8-bit checkpoints. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "formats/bnb4.h"
#include "tensor/nf4_matmul.h"

/* ---- config.json ------------------------------------------------------------- */

static int is_true(const ct_json *v) { return v && v->type == CT_JSON_BOOL && v->u.b; }

ct_status ct__bnb4_check_config(const ct_json *root, const char *path, int *q4, ct_q4_type *type, int *dq) {
    if (q4) *q4 = 0;
    const ct_json *qc = ct__json_get(root, "quantization_config");
    if (!qc || qc->type == CT_JSON_NULL) return CT_OK;
    if (qc->type != CT_JSON_OBJ) return ct__err(CT_ERR_FORMAT, "%s: quantization_config must be an object", path);
    const ct_json *qm = ct__json_get(qc, "quant_method");
    if (!qm || qm->type != CT_JSON_STR)
        return ct__err(CT_ERR_FORMAT, "%s: quantization_config.quant_method is missing or not a string", path);
    if (strcmp(qm->u.str.s, "bitsandbytes") != 0)
        return ct__err(CT_ERR_UNSUPPORTED, "%s: quantization_config.quant_method '%.40s' is not supported (only "
                       "bitsandbytes 4-bit; load the unquantized model)", path, qm->u.str.s);
    if (is_true(ct__json_get(qc, "load_in_8bit")) || is_true(ct__json_get(qc, "_load_in_8bit")))
        return ct__err(CT_ERR_UNSUPPORTED, "%s: quantization_config.load_in_8bit: bitsandbytes 8-bit (LLM.int8) "
                       "checkpoints are not supported (only load_in_4bit)", path);
    if (!is_true(ct__json_get(qc, "load_in_4bit")) && !is_true(ct__json_get(qc, "_load_in_4bit")))
        return ct__err(CT_ERR_UNSUPPORTED, "%s: quantization_config.load_in_4bit is not true: only bitsandbytes "
                       "4-bit checkpoints are supported", path);
    const ct_json *qt = ct__json_get(qc, "bnb_4bit_quant_type");
    ct_q4_type t = CT_Q4_FP4; /* BitsAndBytesConfig's default */
    if (qt && qt->type != CT_JSON_NULL) {
        if (qt->type != CT_JSON_STR || (strcmp(qt->u.str.s, "nf4") && strcmp(qt->u.str.s, "fp4")))
            return ct__err(CT_ERR_UNSUPPORTED, "%s: quantization_config.bnb_4bit_quant_type '%.40s' is not supported "
                           "(nf4 or fp4)", path, qt->type == CT_JSON_STR ? qt->u.str.s : "(not a string)");
        t = strcmp(qt->u.str.s, "nf4") == 0 ? CT_Q4_NF4 : CT_Q4_FP4;
    }
    const ct_json *st = ct__json_get(qc, "bnb_4bit_quant_storage");
    if (st && st->type != CT_JSON_NULL && (st->type != CT_JSON_STR || strcmp(st->u.str.s, "uint8") != 0))
        return ct__err(CT_ERR_UNSUPPORTED, "%s: quantization_config.bnb_4bit_quant_storage '%.40s' is not "
                       "supported (only uint8)", path, st->type == CT_JSON_STR ? st->u.str.s : "(not a string)");
    const ct_json *d = ct__json_get(qc, "bnb_4bit_use_double_quant");
    if (d && d->type != CT_JSON_NULL && d->type != CT_JSON_BOOL)
        return ct__err(CT_ERR_FORMAT, "%s: quantization_config.bnb_4bit_use_double_quant must be true or false", path);
    if (q4) *q4 = 1;
    if (type) *type = t;
    if (dq) *dq = is_true(d);
    return CT_OK;
}

/* ---- tensor names ------------------------------------------------------------ */

static const char *const k_state[2] = {".quant_state.bitsandbytes__nf4", ".quant_state.bitsandbytes__fp4"};

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

int ct__bnb4_part(const char *name) {
    if (ends_with(name, k_state[0])) return 2;
    if (ends_with(name, k_state[1])) return 3;
    static const char *const side[] = {".weight.absmax", ".weight.quant_map", ".weight.nested_absmax",
                                       ".weight.nested_quant_map"};
    for (size_t i = 0; i < sizeof side / sizeof *side; i++)
        if (ends_with(name, side[i])) return 1;
    return 0;
}

static const ct_tref *find_sfx(const ct_tstore *ts, const char *wname, const char *sfx) {
    char nm[512];
    if ((size_t)snprintf(nm, sizeof nm, "%s%s", wname, sfx) >= sizeof nm) return NULL;
    return ct__tstore_find(ts, nm);
}

int ct__bnb4_is_quantized(const ct_tstore *ts, const char *wname) {
    return find_sfx(ts, wname, k_state[0]) || find_sfx(ts, wname, k_state[1]);
}

/* ---- one matrix -------------------------------------------------------------- */

typedef struct {
    const ct_tstore *ts;
    const char *wname;
    const char *file; /* of the codes tensor */
} ctx;

static const char *file_of(const ctx *c, const ct_tref *t) {
    return t && t->file >= 0 && (size_t)t->file < c->ts->nfiles ? c->ts->files[t->file].path : c->file;
}

/* The side tensor wname+sfx with dtype dt and exactly n elements (1-D, or
 * [n, 1] for the codes). */
static ct_status part(const ctx *c, const char *sfx, ct_dtype dt, int64_t n, const ct_tref **out) {
    const ct_tref *t = find_sfx(c->ts, c->wname, sfx);
    *out = t;
    if (!t)
        return ct__err(CT_ERR_MISSING, "%s: tensor '%s%s' not found (a bitsandbytes 4-bit weight needs it)", c->file,
                       c->wname, sfx);
    int64_t numel = ct__tref_numel(t);
    if (t->dtype != dt || numel != n || t->nbytes != (size_t)n * ct_dtype_block_bytes(dt))
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s' is %s with %lld elements (%zu bytes); the quant state implies "
                       "%s with %lld", file_of(c, t), t->name, ct_dtype_name(t->dtype), (long long)numel, t->nbytes,
                       ct_dtype_name(dt), (long long)n);
    return CT_OK;
}

/* The quant-state JSON blob: quant type, blocksize, shape, nested fields. */
static ct_status parse_state(const ctx *c, const ct_tref *js, ct_q4_type t, int *rows, int *cols, int *nested,
                             float *offset) {
    const char *f = file_of(c, js);
    if (js->dtype != CT_DT_U8 || js->ndim != 1)
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s' must be a 1-D U8 tensor (JSON bytes), not %s", f, js->name,
                       ct_dtype_name(js->dtype));
    char nm[560];
    snprintf(nm, sizeof nm, "%s: tensor '%s'", f, js->name);
    ct_json *j = NULL;
    ct_status s = ct__json_parse(js->data, js->nbytes, nm, &j);
    if (s) return s;
    int64_t bs = 0;
    const char *qt = ct__json_get_str(j, "quant_type");
    const ct_json *sh = ct__json_get(j, "shape");
    if (j->type != CT_JSON_OBJ) s = ct__err(CT_ERR_FORMAT, "%s is not a JSON object", nm);
    else if (!qt || strcmp(qt, t == CT_Q4_NF4 ? "nf4" : "fp4") != 0)
        s = ct__err(CT_ERR_FORMAT, "%s: quant_type '%.20s' does not match the tensor name (%s)", nm, qt ? qt : "(none)",
                    t == CT_Q4_NF4 ? "nf4" : "fp4");
    else if (!ct__json_get_int(j, "blocksize", &bs))
        s = ct__err(CT_ERR_FORMAT, "%s: blocksize missing or not an integer", nm);
    else if (bs != CT_NF4_BLOCK)
        s = ct__err(CT_ERR_UNSUPPORTED, "%s: blocksize %lld is not supported (only 64, the QLoRA default)", nm,
                    (long long)bs);
    else if (!sh || sh->type != CT_JSON_ARR || sh->u.arr.n != 2)
        s = ct__err(CT_ERR_FORMAT, "%s: shape must be [out, in]", nm);
    for (int i = 0; s == CT_OK && i < 2; i++) {
        const ct_json *v = &sh->u.arr.items[i];
        if (v->type != CT_JSON_NUM || v->u.num < 1 || v->u.num > INT_MAX || v->u.num != floor(v->u.num))
            s = ct__err(CT_ERR_FORMAT, "%s: shape[%d] must be a positive integer below 2^31", nm, i);
        else *(i ? cols : rows) = (int)v->u.num;
    }
    *nested = 0;
    if (s == CT_OK && ct__json_get(j, "nested_blocksize")) {
        int64_t nbs = 0;
        double off = 0;
        const char *nd = ct__json_get_str(j, "nested_dtype");
        *nested = 1;
        if (!ct__json_get_int(j, "nested_blocksize", &nbs) || nbs != CT_NF4_NESTED_BLOCK)
            s = ct__err(CT_ERR_UNSUPPORTED, "%s: nested_blocksize must be 256", nm);
        else if (nd && strcmp(nd, "float32") != 0)
            s = ct__err(CT_ERR_UNSUPPORTED, "%s: nested_dtype '%.20s' is not supported (float32)", nm, nd);
        else if (!ct__json_get_num(j, "nested_offset", &off) || !isfinite(off))
            s = ct__err(CT_ERR_FORMAT, "%s: nested_offset missing or not a finite number", nm);
        else *offset = (float)off; /* the repr of an f32: exact */
    }
    ct__json_free(j);
    return s;
}

ct_status ct__bnb4_mat(ct_tstore *ts, const char *wname, ct_mat *out) {
    memset(out, 0, sizeof *out);
    const ct_tref *w = ct__tstore_find(ts, wname), *js = find_sfx(ts, wname, k_state[0]);
    ct_q4_type type = CT_Q4_NF4;
    if (!js) { js = find_sfx(ts, wname, k_state[1]); type = CT_Q4_FP4; }
    ctx c = {ts, wname, w && w->file >= 0 && (size_t)w->file < ts->nfiles ? ts->files[w->file].path : "?"};
    if (!js) return ct__err(CT_ERR_MISSING, "%s: tensor '%s' has no bitsandbytes quant state", c.file, wname);
    if (!w) {
        c.file = file_of(&c, js);
        return ct__err(CT_ERR_MISSING, "%s: tensor '%s' not found (its quant state '%s' is there)", c.file, wname,
                       js->name);
    }
    int rows = 0, cols = 0, nested = 0;
    float offset = 0.0f;
    ct_status s = parse_state(&c, js, type, &rows, &cols, &nested, &offset);
    if (s) return s;
    const int64_t n = (int64_t)rows * cols, nb = ct__q4_nblocks(n, CT_NF4_BLOCK);
    if (w->dtype != CT_DT_U8 || (w->ndim != 1 && !(w->ndim == 2 && w->shape[1] == 1)) ||
        w->nbytes != (size_t)((n + 1) / 2))
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s' (%s, %zu bytes) does not hold the 4-bit codes of a (%d, %d) "
                       "matrix: expected U8 [%lld, 1]", c.file, wname, ct_dtype_name(w->dtype), w->nbytes, rows, cols,
                       (long long)((n + 1) / 2));
    const ct_tref *qm, *am, *na = NULL, *nm = NULL;
    if ((s = part(&c, ".quant_map", CT_DT_F32, 16, &qm))) return s;
    const float *tab = type == CT_Q4_NF4 ? ct__nf4_map : ct__fp4_map;
    for (int i = 0; i < 16; i++) {
        float v;
        memcpy(&v, (const float *)qm->data + i, 4);
        if (v != tab[i]) /* by value: FP4's code 8 is +0 or -0 */
            return ct__err(CT_ERR_UNSUPPORTED, "%s: tensor '%s': entry %d is %.9g, not bitsandbytes' %s table value "
                           "%.9g (a custom 4-bit table is not supported)", file_of(&c, qm), qm->name, i, (double)v,
                           type == CT_Q4_NF4 ? "NF4" : "FP4", (double)tab[i]);
    }
    if ((s = part(&c, ".absmax", nested ? CT_DT_U8 : CT_DT_F32, nb, &am))) return s;
    if (nested) {
        if ((s = part(&c, ".nested_absmax", CT_DT_F32, ct__q4_nblocks(nb, CT_NF4_NESTED_BLOCK), &na))) return s;
        if ((s = part(&c, ".nested_quant_map", CT_DT_F32, 256, &nm))) return s;
        for (int i = 0; i < 256; i++)
            if (!isfinite(((const float *)nm->data)[i]))
                return ct__err(CT_ERR_FORMAT, "%s: tensor '%s': entry %d is not finite", file_of(&c, nm), nm->name, i);
    } else if (find_sfx(ts, wname, ".nested_absmax")) {
        return ct__err(CT_ERR_FORMAT, "%s: tensor '%s.nested_absmax' is there but the quant state has no nested "
                       "fields", c.file, wname);
    }
    ct_nf4_mat *q = ct__calloc(1, sizeof *q);
    if (!q || ct__tstore_own(ts, q) < 0) {
        free(q);
        return ct__err(CT_ERR_NOMEM, "%s: out of memory", wname);
    }
    *q = (ct_nf4_mat){.rows = rows, .cols = cols, .packed = w->data, .type = type};
    if (nested) {
        q->qabsmax = am->data;
        q->nested_absmax = na->data;
        q->nested_map = nm->data;
        q->offset = offset;
    } else {
        q->absmax = am->data;
    }
    *out = (ct_mat){.dtype = CT_DT_NF4, .rows = rows, .cols = cols, .data = q->packed, .row_bytes = 0, .q4 = q};
    return CT_OK;
}
