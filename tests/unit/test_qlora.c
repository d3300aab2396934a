/* tests/unit/test_qlora.c — LoRA over a converted base (ct__tm_opts.base =
 * CT_TB_NF4, Q8, BF16) on the real stories260K: the frozen linear layers are
 * converted on creation (NF4: blocks of 64, double-quantized scales; Q8_0;
 * BF16) and read in place through the fused kernels (the head too), so
 * QLoRA must equal plain LoRA on a base whose weights are the dequantized
 * values: logits, loss and every A/B gradient (f32, and bf16 with its own
 * tolerance). Also: bytes per weight of each base type, and the converted
 * base differs from the original (it really was converted). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "tensor/nf4.h"
#include "train/tmodel_internal.h"

#define TOL_LOGIT 2e-5     /* relative to the largest logit, f32 */
#define TOL_GRAD 1e-4      /* relative to each tensor's largest gradient, f32 */
#define TOL_GRAD_BF16 2e-2 /* bf16: operands rounded differently (dequantized before / inside the kernel) */

static ct_model *load(void) {
    const char *sh = getenv("CTUNE_SHARED");
    char bin[1024], tok[1024];
    snprintf(bin, sizeof bin, "%s/models/stories260K/stories260K.bin", sh ? sh : "../shared");
    snprintf(tok, sizeof tok, "%s/models/stories260K/tok512.bin", sh ? sh : "../shared");
    ct_load_opts lo = {.tokenizer_path = tok};
    ct_model *m = NULL;
    CHECK_OK(ct_model_load(bin, &lo, &m));
    return m;
}

static void run(ct_model *m, int bf16, ct__tm_base base) {
    const ct_config *g = ct_model_config(m);
    int V = g->vocab_size;
    int32_t ids[20], targets[20], seq[3] = {0, 12, 20};
    for (int i = 0; i < 20; i++) ids[i] = (int32_t)((i * 53 + 7) % V);
    for (int i = 0; i < 20; i++) targets[i] = (i == 11 || i == 19) ? -1 : ids[i + 1];
    ct__tm_batch b = {.ids = ids, .targets = targets, .seq = seq, .N = 20, .n_seq = 2};
    ct__tm_opts o = {.method = CT_TM_LORA, .lora_r = 4, .lora_alpha = 8, .lora_targets = CT_LT_ALL,
                     .max_rows = 20, .max_seq = 12, .n_threads = 2, .seed = 5, .bf16 = bf16};
    ct__tmodel *q = NULL, *ref = NULL;
    o.base = base;
    CHECK_OK(ct__tm_create(m, &o, &q));
    o.base = CT_TB_ASIS;
    CHECK_OK(ct__tm_create(m, &o, &ref));
    if (!q || !ref) goto done;
    /* the reference's frozen bases: the dequantized NF4 matrices (F32) */
    float **deq = calloc((size_t)g->n_layers * LIN_COUNT, sizeof *deq);
    size_t n4 = 0, nw = 0;
    double changed = 0;
    for (int l = 0; l < g->n_layers; l++)
        for (int i = 0; i < LIN_COUNT; i++) {
            ct__tlin *Lq = &q->blk[l].lin[i], *Lr = &ref->blk[l].lin[i];
            if (!Lq->out) continue;
            /* q8: Q8_0 where in % 32 == 0, else BF16 (stories260K's down_proj has in = 172) */
            const ct_dtype want = base == CT_TB_NF4                      ? CT_DT_NF4
                                  : base == CT_TB_Q8 && Lq->in % 32 == 0 ? CT_DT_Q8_0
                                                                         : CT_DT_BF16;
            CHECK(Lq->fused && Lq->base.dtype == want);
            if (!Lq->fused || Lq->base.dtype != want) continue;
            size_t n = (size_t)Lq->out * Lq->in;
            float *w = deq[l * LIN_COUNT + i] = malloc(n * sizeof(float)), *orig = malloc(n * sizeof(float));
            if (want == CT_DT_NF4) ct__nf4_mat_dequant_ref(Lq->base.q4, w);
            else
                for (int r = 0; r < Lq->out; r++) ct__mat_row_f32(&Lq->base, r, w + (size_t)r * Lq->in);
            for (int r = 0; r < Lr->out; r++) ct__mat_row_f32(&Lr->base, r, orig + (size_t)r * Lr->in);
            changed += ct_test_max_rel(w, orig, n);
            if (want == CT_DT_NF4) { /* the threaded conversion = one serial bitsandbytes quantize_4bit */
                const int64_t nb = ct__q4_nblocks((int64_t)n, CT_NF4_BLOCK);
                uint8_t *pk = malloc((n + 1) / 2), *qa = malloc((size_t)nb);
                float *am = malloc(sizeof(float) * 2 * (size_t)(nb + 1)), *ne = malloc(sizeof(float) * (size_t)(nb / 256 + 1));
                float off;
                ct__quantize_4bit_ref(orig, (int64_t)n, CT_NF4_BLOCK, CT_Q4_NF4, pk, am);
                ct__q4_double_quant(am, nb, 1, am + nb, qa, ne, &off);
                CHECK(memcmp(pk, Lq->base.q4->packed, (n + 1) / 2) == 0);
                CHECK(memcmp(qa, Lq->base.q4->qabsmax, (size_t)nb) == 0);
                CHECK(off == Lq->base.q4->offset);
                free(pk); free(qa); free(am); free(ne);
            }
            free(orig);
            Lr->base = (ct_mat){.dtype = CT_DT_F32, .rows = Lr->out, .cols = Lr->in, .data = w,
                                .row_bytes = (size_t)Lr->in * sizeof(float)};
            Lr->pk_fwd = Lr->pk_bwd = NULL; /* bf16: use the unpacked product on the dequantized base */
            nw += n;
        }
    n4 = q->base_bytes;
    const char *bname = base == CT_TB_NF4 ? "nf4" : base == CT_TB_Q8 ? "q8" : "bf16";
    /* bytes/weight: NF4 0.5 + 1/64 + 4/(64*256); Q8_0 34/32; BF16 2 */
    const double bpw_lo = base == CT_TB_NF4 ? 0.5 : base == CT_TB_Q8 ? 1.0625 : 2.0;
    const double bpw_hi = base == CT_TB_NF4 ? 0.55 : 2.0;
    /* max relative change of the weights: a 4-bit grid moves them by ~0.1-1, Q8_0 by ~1e-2, bf16 by <= 2^-8 */
    const double chg_lo = base == CT_TB_NF4 ? 0.01 : base == CT_TB_Q8 ? 1e-3 : 1e-4;
    if (!bf16) {
        printf("%s base: %zu bytes for %zu weights (%.4f bytes/weight); converted vs original: mean max rel %.3g\n",
               bname, n4, nw, (double)n4 / (double)nw, changed / (g->n_layers * 7));
        CHECK((double)n4 / (double)nw >= bpw_lo - 1e-9 && (double)n4 / (double)nw <= bpw_hi + 1e-9);
        CHECK(changed > chg_lo); /* the base really was converted */
        CHECK(q->head_fused);
    }
    /* identical A (same seed); give B the same non-zero values in both */
    size_t np, np2;
    float *pq = ct__tm_params(q, &np), *pr = ct__tm_params(ref, &np2);
    CHECK(np == np2);
    for (size_t i = 0; i < np && np == np2; i++) {
        if (pq[i] == 0.0f) pq[i] = (float)(((i * 2654435761u) % 1000) / 1000.0 - 0.5) * 0.2f;
        pr[i] = pq[i];
    }
    float *lq = malloc((size_t)20 * V * sizeof(float)), *lr = malloc((size_t)20 * V * sizeof(float));
    CHECK_OK(ct__tm_run(q, &b, 1.0f, 0, lq, NULL));
    CHECK_OK(ct__tm_run(ref, &b, 1.0f, 0, lr, NULL));
    double rl = ct_test_max_rel(lq, lr, (size_t)20 * V);
    double sq, sr;
    CHECK_OK(ct__tm_run(q, &b, 1.0f / 18, 1, NULL, &sq));
    CHECK_OK(ct__tm_run(ref, &b, 1.0f / 18, 1, NULL, &sr));
    int ntab;
    const ct__tparam *tab = ct__tm_ptable(q, &ntab);
    double worst = 0;
    for (int k = 0; k < ntab; k++) {
        double r = ct_test_max_rel(ct__tm_grads(q) + tab[k].off, ct__tm_grads(ref) + tab[k].off, tab[k].n);
        if (r > worst) worst = r;
    }
    printf("QLoRA (%s base) vs LoRA on the dequantized base (%s): logits %.2e, loss %.7f vs %.7f, worst grad %.2e\n",
           bname, bf16 ? "bf16" : "f32", rl, sq / 18, sr / 18, worst);
    CHECK(rl <= (bf16 ? 1e-2 : TOL_LOGIT));
    CHECK(fabs(sq - sr) <= (bf16 ? 1e-2 : 1e-5) * fabs(sr));
    CHECK(worst <= (bf16 ? TOL_GRAD_BF16 : TOL_GRAD));
    free(lq);
    free(lr);
    for (int i = 0; i < g->n_layers * LIN_COUNT; i++) free(deq[i]);
    free(deq);
done:
    ct__tm_free(q);
    ct__tm_free(ref);
}

int main(void) {
    ct_model *m = load();
    if (!m) return ct_check_done("test_qlora");
    for (int b = CT_TB_NF4; b <= CT_TB_BF16; b++) {
        run(m, 0, (ct__tm_base)b);
        run(m, 1, (ct__tm_base)b);
    }
    /* a 4-bit base is for LoRA only */
    ct__tm_opts o = {.method = CT_TM_FULL, .base = CT_TB_NF4, .max_rows = 8, .max_seq = 8, .n_threads = 1};
    ct__tmodel *t = NULL;
    CHECK(ct__tm_create(m, &o, &t) == CT_ERR_ARG && t == NULL);
    ct_model_free(m);
    return ct_check_done("test_qlora");
}
