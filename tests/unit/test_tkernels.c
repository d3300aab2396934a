/* tests/unit/test_tkernels.c — the training kernels of src/train/tkernels.h.
 *
 * For every op: (1) the forward equals a plain double-precision
 * re-implementation here (and, for norms, RoPE, SwiGLU, GELU and attention,
 * the inference kernels of src/model/kernels.h); (2) the backward equals
 * central finite differences, in double, of L = sum(dout * out) computed by
 * that double re-implementation; (3) a pool of 2 threads gives the same bits
 * as pool NULL. Shapes: packed sequences of lengths 5, 9, 3 (and 1), GQA
 * NH=4 NKV=2, a window of 4, HS 8 and 16, NORM and NEOX RoPE, masked
 * cross-entropy rows, dropout p=0 and p=0.3, repeated embedding ids. */
#include <string.h>
#include "check.h"
#include "model/kernels.h"
#include "train/tkernels.h"

/* named tolerances: |got - want| <= TOL * (1 + |want|) */
#define TOL_FWD 2e-5      /* float kernel vs double reference forward */
#define TOL_GRAD 1e-4     /* float backward vs double finite differences */
#define TOL_INFER 1e-5    /* training attention vs inference attention (different summation order) */
#define FD_EPS 1e-5       /* central-difference step (double arithmetic) */
#define TOL_DROP_RATE 0.01 /* |dropped fraction - p| over 100000 elements */

static uint64_t rng = 88172645463325252ull;
static double urand(void) { /* uniform [-1, 1) */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (double)(rng >> 11) / 4503599627370496.0 - 1.0;
}
static float *frand(size_t n, double amp) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(amp * urand());
    return x;
}
static double *todbl(const float *x, size_t n) {
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

/* one CHECK per array: counts elements off by more than tol, prints the first */
static void close_arr(const char *what, const float *got, const double *want, size_t n, double tol) {
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= tol * (1.0 + fabs(want[i])))) { if (!bad) first = i; bad++; }
    if (bad) fprintf(stderr, "%s: %zu of %zu off, first [%zu] %.9g vs %.9g\n", what, bad, n, first, got[first], want[first]);
    CHECK(bad == 0);
}
static void same_bits(const char *what, const void *a, const void *b, size_t bytes) {
    int ok = memcmp(a, b, bytes) == 0;
    if (!ok) fprintf(stderr, "%s: threaded result differs from single-threaded\n", what);
    CHECK(ok);
}

/* g[i] = dL/dx[i] by central differences of f, which reads x */
typedef double (*loss_fn)(void *ctx);
static void fd_grad(double *x, size_t n, loss_fn f, void *ctx, double *g) {
    for (size_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + FD_EPS; double lp = f(ctx);
        x[i] = x0 - FD_EPS; double lm = f(ctx);
        x[i] = x0;
        g[i] = (lp - lm) / (2 * FD_EPS);
    }
}
static double dotd(const double *a, const double *b, size_t n) {
    double s = 0; for (size_t i = 0; i < n; i++) s += a[i] * b[i]; return s;
}

static ct_pool *pool2;

/* ---- norms ------------------------------------------------------------------ */

typedef struct { double *x, *w, *b, *dout, *out; int N, C, ln; double eps; } norm_ref;
static void norm_fwd_ref(norm_ref *r) {
    for (int t = 0; t < r->N; t++) {
        const double *x = r->x + (size_t)t * r->C;
        double m = 0, v = 0;
        if (r->ln) { for (int i = 0; i < r->C; i++) m += x[i]; m /= r->C; }
        for (int i = 0; i < r->C; i++) v += (x[i] - m) * (x[i] - m);
        double rs = 1.0 / sqrt(v / r->C + r->eps);
        for (int i = 0; i < r->C; i++) r->out[(size_t)t * r->C + i] = (x[i] - m) * rs * r->w[i] + (r->ln ? r->b[i] : 0);
    }
}
static double norm_loss(void *c) { norm_ref *r = c; norm_fwd_ref(r); return dotd(r->dout, r->out, (size_t)r->N * r->C); }

static void test_norms(int ln) {
    const int N = 7, C = 37; const float eps = 1e-5f;
    size_t n = (size_t)N * C;
    float *x = frand(n, 2.0), *w = frand(C, 1.0), *b = frand(C, 1.0), *dout = frand(n, 1.0);
    for (int i = 0; i < C; i++) w[i] += 1.5f;
    float *out[2], *dx[2], *dw[2], *db[2], mean[2][N], rstd[2][N];
    for (int k = 0; k < 2; k++) {
        ct_pool *p = k ? pool2 : NULL;
        out[k] = calloc(n, 4); dx[k] = calloc(n, 4); dw[k] = calloc(C, 4); db[k] = calloc(C, 4);
        for (size_t i = 0; i < n; i++) dx[k][i] = 0.25f; /* accumulates */
        for (int i = 0; i < C; i++) { dw[k][i] = 0.5f; db[k][i] = -0.5f; }
        if (ln) {
            ct__layernorm_fwd(out[k], mean[k], rstd[k], x, w, b, N, C, eps, p);
            ct__layernorm_bwd(dx[k], dw[k], db[k], dout, x, w, mean[k], rstd[k], N, C, p);
        } else {
            ct__rmsnorm_fwd(out[k], rstd[k], x, w, N, C, eps, p);
            ct__rmsnorm_bwd(dx[k], dw[k], dout, x, w, rstd[k], N, C, p);
        }
    }
    const char *nm = ln ? "layernorm" : "rmsnorm";
    /* inference kernel: the same forward */
    float *inf = calloc(n, 4);
    if (ln) ct__layernorm_forward(inf, x, w, b, N, C, eps); else ct__rmsnorm_forward(inf, x, w, N, C, eps);
    double *infd = todbl(inf, n);
    close_arr(ln ? "layernorm fwd vs inference" : "rmsnorm fwd vs inference", out[0], infd, n, 1e-6);
    if (!ln) same_bits("rmsnorm fwd == inference bits", out[0], inf, n * 4);
    norm_ref r = {todbl(x, n), todbl(w, C), todbl(b, C), todbl(dout, n), calloc(n, 8), N, C, ln, eps};
    norm_fwd_ref(&r);
    close_arr(nm, out[0], r.out, n, TOL_FWD);
    double *g = malloc(n * 8);
    fd_grad(r.x, n, norm_loss, &r, g);
    for (size_t i = 0; i < n; i++) g[i] += 0.25;
    close_arr(ln ? "layernorm dx" : "rmsnorm dx", dx[0], g, n, TOL_GRAD);
    fd_grad(r.w, C, norm_loss, &r, g);
    for (int i = 0; i < C; i++) g[i] += 0.5;
    close_arr(ln ? "layernorm dw" : "rmsnorm dw", dw[0], g, C, TOL_GRAD);
    if (ln) {
        fd_grad(r.b, C, norm_loss, &r, g);
        for (int i = 0; i < C; i++) g[i] -= 0.5;
        close_arr("layernorm db", db[0], g, C, TOL_GRAD);
    }
    same_bits(nm, out[0], out[1], n * 4);
    same_bits(nm, dx[0], dx[1], n * 4);
    same_bits(nm, dw[0], dw[1], C * 4);
    same_bits(nm, db[0], db[1], C * 4);
    /* frozen weights: dw NULL leaves dx the same */
    float *dx2 = calloc(n, 4);
    for (size_t i = 0; i < n; i++) dx2[i] = 0.25f;
    if (ln) ct__layernorm_bwd(dx2, NULL, NULL, dout, x, w, mean[0], rstd[0], N, C, pool2);
    else ct__rmsnorm_bwd(dx2, NULL, dout, x, w, rstd[0], N, C, pool2);
    same_bits("norm bwd with dw NULL", dx2, dx[0], n * 4);
    free(dx2); free(inf); free(infd); free(g);
    free(r.x); free(r.w); free(r.b); free(r.dout); free(r.out);
    for (int k = 0; k < 2; k++) { free(out[k]); free(dx[k]); free(dw[k]); free(db[k]); }
    free(x); free(w); free(b); free(dout);
}

/* ---- RoPE ------------------------------------------------------------------- */

typedef struct { double *x, *dout, *out; const float *c, *s; const int32_t *pos; int N, NHx, HS; ct_rope_style st; } rope_ref;
static double rope_loss(void *cx) {
    rope_ref *r = cx;
    int half = r->HS / 2, ld = r->NHx * r->HS;
    double L = 0;
    for (int t = 0; t < r->N; t++)
        for (int h = 0; h < r->NHx; h++)
            for (int i = 0; i < half; i++) {
                int ia = r->st == CT_ROPE_NEOX ? i : 2 * i, ib = r->st == CT_ROPE_NEOX ? i + half : 2 * i + 1;
                size_t o = (size_t)t * ld + (size_t)h * r->HS;
                double c = r->c[(size_t)r->pos[t] * half + i], s = r->s[(size_t)r->pos[t] * half + i];
                double a = r->x[o + ia], b = r->x[o + ib];
                L += r->dout[o + ia] * (a * c - b * s) + r->dout[o + ib] * (b * c + a * s);
            }
    return L;
}

static void test_rope(void) {
    const int lens[3] = {5, 9, 3}, N = 17, NHx = 3;
    int32_t pos[17];
    for (int s = 0, t = 0; s < 3; s++) for (int i = 0; i < lens[s]; i++) pos[t++] = i;
    for (int HS = 8; HS <= 16; HS += 8)
        for (int st = 0; st < 2; st++) {
            int ld = NHx * HS + 3; /* a stride wider than the heads */
            size_t n = (size_t)N * ld;
            float *ct = malloc(16 * HS / 2 * 4), *sn = malloc(16 * HS / 2 * 4);
            ct__rope_tables(ct, sn, 16, HS, 10000.0f);
            float *x = frand(n, 1.0), *y = malloc(n * 4), *ref = malloc(n * 4);
            memcpy(y, x, n * 4); memcpy(ref, x, n * 4);
            ct__rope_apply(y, N, ld, NHx, HS, pos, ct, sn, (ct_rope_style)st, 0);
            for (int s = 0, t0 = 0; s < 3; t0 += lens[s], s++)
                ct__rope_forward(ref + (size_t)t0 * ld, lens[s], ld, NHx, HS, 0, ct, sn, (ct_rope_style)st);
            same_bits("rope fwd == inference bits", y, ref, n * 4);
            /* inverse undoes it (orthogonal) */
            ct__rope_apply(y, N, ld, NHx, HS, pos, ct, sn, (ct_rope_style)st, 1);
            double *xd = todbl(x, n);
            close_arr("rope inverse(apply(x)) == x", y, xd, n, 1e-6);
            /* backward = inverse rotation of dout = FD gradient */
            size_t nh = (size_t)N * NHx * HS;
            float *dout = frand(nh, 1.0), *dx = malloc(nh * 4);
            memcpy(dx, dout, nh * 4);
            ct__rope_apply(dx, N, NHx * HS, NHx, HS, pos, ct, sn, (ct_rope_style)st, 1);
            float *xp = frand(nh, 1.0);
            rope_ref r = {todbl(xp, nh), todbl(dout, nh), NULL, ct, sn, pos, N, NHx, HS, (ct_rope_style)st};
            double *g = malloc(nh * 8);
            fd_grad(r.x, nh, rope_loss, &r, g);
            close_arr(st ? "rope NEOX dx" : "rope NORM dx", dx, g, nh, TOL_GRAD);
            free(g); free(r.x); free(r.dout); free(xp); free(dout); free(dx); free(xd);
            free(x); free(y); free(ref); free(ct); free(sn);
        }
}

/* ---- attention ------------------------------------------------------------ */

typedef struct { double *q, *k, *v, *dout, *out; ct__attn_shape s; } attn_ref;
static void attn_fwd_ref(attn_ref *r) {
    const ct__attn_shape *s = &r->s;
    int grp = s->NH / s->NKV, HS = s->HS;
    double sc = 1.0 / sqrt((double)HS), p[64];
    for (int q = 0; q < s->n_seq; q++) {
        int b = s->seq[q], L = s->seq[q + 1] - b;
        for (int h = 0; h < s->NH; h++)
            for (int i = 0; i < L; i++) {
                int lo = s->window > 0 && i - s->window + 1 > 0 ? i - s->window + 1 : 0;
                double mx = -1e300, sum = 0;
                for (int j = lo; j <= i; j++) {
                    double d = 0;
                    for (int e = 0; e < HS; e++)
                        d += r->q[(size_t)(b + i) * s->q_ld + h * HS + e] * r->k[(size_t)(b + j) * s->kv_ld + (h / grp) * HS + e];
                    p[j] = d * sc; mx = p[j] > mx ? p[j] : mx;
                }
                for (int j = lo; j <= i; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
                for (int e = 0; e < HS; e++) {
                    double o = 0;
                    for (int j = lo; j <= i; j++) o += p[j] / sum * r->v[(size_t)(b + j) * s->kv_ld + (h / grp) * HS + e];
                    r->out[(size_t)(b + i) * s->out_ld + h * HS + e] = o;
                }
            }
    }
}
static double attn_loss(void *c) {
    attn_ref *r = c; attn_fwd_ref(r);
    return dotd(r->dout, r->out, (size_t)r->s.N * r->s.out_ld);
}

static void test_attention(int HS, int window, int NH, int NKV) {
    const int32_t seq[5] = {0, 5, 14, 15, 18};
    ct__attn_shape s = {18, 4, seq, NH, NKV, HS, window, NH * HS + 2, NKV * HS + 1, NH * HS};
    size_t nq = (size_t)s.N * s.q_ld, nkv = (size_t)s.N * s.kv_ld, no = (size_t)s.N * s.out_ld;
    size_t np = ct__attn_probs_size(&s);
    CHECK_EQ_INT(np, (size_t)NH * (25 + 81 + 1 + 9));
    float *q = frand(nq, 1.5), *k = frand(nkv, 1.5), *v = frand(nkv, 1.0), *dout = frand(no, 1.0);
    float *out[2], *pr[2], *dq[2], *dk[2], *dv[2];
    for (int t = 0; t < 2; t++) {
        ct_pool *p = t ? pool2 : NULL;
        out[t] = calloc(no, 4); pr[t] = malloc(np * 4); dq[t] = calloc(nq, 4); dk[t] = calloc(nkv, 4); dv[t] = calloc(nkv, 4);
        for (size_t i = 0; i < np; i++) pr[t][i] = NAN; /* every float must be written */
        for (size_t i = 0; i < nkv; i++) dk[t][i] = dv[t][i] = 7.0f; /* overwritten */
        ct__attention_fwd(out[t], pr[t], q, k, v, &s, p);
        ct__attention_bwd(dq[t], dk[t], dv[t], dout, pr[t], q, k, v, &s, p);
    }
    char nm[96];
    snprintf(nm, sizeof nm, "attention HS=%d window=%d NH=%d NKV=%d", HS, window, NH, NKV);
    attn_ref r = {todbl(q, nq), todbl(k, nkv), todbl(v, nkv), todbl(dout, no), calloc(no, 8), s};
    attn_fwd_ref(&r);
    close_arr(nm, out[0], r.out, no, TOL_FWD);
    /* probabilities: rows sum to 1, zero outside the causal window */
    int bad = 0;
    size_t off = 0;
    for (int sq = 0; sq < 4; sq++) {
        int L = seq[sq + 1] - seq[sq];
        for (int h = 0; h < NH; h++, off += (size_t)L * L)
            for (int i = 0; i < L; i++) {
                double sum = 0;
                for (int j = 0; j < L; j++) {
                    float pij = pr[0][off + (size_t)i * L + j];
                    int vis = j <= i && (window == 0 || j > i - window);
                    if (!vis && pij != 0.0f) bad++;
                    if (vis && !(pij > 0.0f)) bad++;
                    sum += pij;
                }
                if (fabs(sum - 1.0) > 1e-5) bad++;
            }
    }
    CHECK_EQ_INT(bad, 0);
    /* inference kernel on the middle sequence (its KV cache = its k, v rows) */
    {
        int L = 9, b = 5;
        float *qc = malloc((size_t)L * NH * HS * 4), *kc = malloc((size_t)L * NKV * HS * 4), *vc = malloc((size_t)L * NKV * HS * 4);
        float *oc = calloc((size_t)L * NH * HS, 4), *att = malloc((size_t)2 * L * 4);
        for (int i = 0; i < L; i++) {
            memcpy(qc + (size_t)i * NH * HS, q + (size_t)(b + i) * s.q_ld, (size_t)NH * HS * 4);
            memcpy(kc + (size_t)i * NKV * HS, k + (size_t)(b + i) * s.kv_ld, (size_t)NKV * HS * 4);
            memcpy(vc + (size_t)i * NKV * HS, v + (size_t)(b + i) * s.kv_ld, (size_t)NKV * HS * 4);
        }
        ct__attn_args a = {oc, qc, kc, vc, att, L, 0, NH, NKV, HS, L, window};
        ct__attention_forward(&a, NULL);
        double *od = todbl(oc, (size_t)L * NH * HS);
        float *mine = malloc((size_t)L * NH * HS * 4);
        for (int i = 0; i < L; i++) memcpy(mine + (size_t)i * NH * HS, out[0] + (size_t)(b + i) * s.out_ld, (size_t)NH * HS * 4);
        close_arr("attention fwd vs inference", mine, od, (size_t)L * NH * HS, TOL_INFER);
        free(qc); free(kc); free(vc); free(oc); free(att); free(od); free(mine);
    }
    /* gradients vs finite differences (only the head columns carry gradients) */
    double *g = malloc((nq > nkv ? nq : nkv) * 8);
    fd_grad(r.q, nq, attn_loss, &r, g);
    for (int i = 0; i < s.N; i++) for (int c = NH * HS; c < s.q_ld; c++) dq[0][(size_t)i * s.q_ld + c] = 0.0f;
    close_arr("attention dq", dq[0], g, nq, TOL_GRAD);
    fd_grad(r.k, nkv, attn_loss, &r, g);
    for (int i = 0; i < s.N; i++) dk[0][(size_t)i * s.kv_ld + NKV * HS] = 0.0f;
    close_arr("attention dk", dk[0], g, nkv, TOL_GRAD);
    fd_grad(r.v, nkv, attn_loss, &r, g);
    for (int i = 0; i < s.N; i++) dv[0][(size_t)i * s.kv_ld + NKV * HS] = 0.0f;
    close_arr("attention dv", dv[0], g, nkv, TOL_GRAD);
    for (int i = 0; i < s.N; i++) {
        for (int c = NH * HS; c < s.q_ld; c++) dq[1][(size_t)i * s.q_ld + c] = 0.0f;
        dk[1][(size_t)i * s.kv_ld + NKV * HS] = dv[1][(size_t)i * s.kv_ld + NKV * HS] = 0.0f;
    }
    same_bits("attention out", out[0], out[1], no * 4);
    same_bits("attention probs", pr[0], pr[1], np * 4);
    same_bits("attention dq", dq[0], dq[1], nq * 4);
    same_bits("attention dk", dk[0], dk[1], nkv * 4);
    same_bits("attention dv", dv[0], dv[1], nkv * 4);
    free(g); free(r.q); free(r.k); free(r.v); free(r.dout); free(r.out);
    for (int t = 0; t < 2; t++) { free(out[t]); free(pr[t]); free(dq[t]); free(dk[t]); free(dv[t]); }
    free(q); free(k); free(v); free(dout);
}

/* Longer sequences (the AVX-512 path's 16x16 transposes, 32-key score
 * blocks and full 8-row query blocks): forward vs the double reference,
 * gradients by directional finite differences (random direction per input),
 * 1 vs 2 threads bit-identical. */
static void test_attention_long(int HS, int window) {
    const int32_t seq[4] = {0, 40, 77, 80};
    const int NH = 2, NKV = 1;
    ct__attn_shape s = {80, 3, seq, NH, NKV, HS, window, NH * HS + 3, NKV * HS + 5, NH * HS + 1};
    size_t nq = (size_t)s.N * s.q_ld, nkv = (size_t)s.N * s.kv_ld, no = (size_t)s.N * s.out_ld;
    size_t np = ct__attn_probs_size(&s);
    float *q = frand(nq, 1.5), *k = frand(nkv, 1.5), *v = frand(nkv, 1.0), *dout = frand(no, 1.0);
    float *out[2], *pr[2], *dq[2], *dk[2], *dv[2];
    for (int t = 0; t < 2; t++) {
        ct_pool *p = t ? pool2 : NULL;
        out[t] = calloc(no, 4); pr[t] = malloc(np * 4); dq[t] = calloc(nq, 4); dk[t] = calloc(nkv, 4); dv[t] = calloc(nkv, 4);
        ct__attention_fwd(out[t], pr[t], q, k, v, &s, p);
        ct__attention_bwd(dq[t], dk[t], dv[t], dout, pr[t], q, k, v, &s, p);
    }
    /* columns outside the heads: zero in the reference and in the results */
    for (int i = 0; i < s.N; i++) {
        for (int c = NH * HS; c < s.out_ld; c++) dout[(size_t)i * s.out_ld + c] = 0.0f;
        for (int t = 0; t < 2; t++) {
            for (int c = NH * HS; c < s.q_ld; c++) dq[t][(size_t)i * s.q_ld + c] = 0.0f;
            for (int c = NKV * HS; c < s.kv_ld; c++) dk[t][(size_t)i * s.kv_ld + c] = dv[t][(size_t)i * s.kv_ld + c] = 0.0f;
            for (int c = NH * HS; c < s.out_ld; c++) out[t][(size_t)i * s.out_ld + c] = 0.0f;
        }
    }
    char nm[96];
    snprintf(nm, sizeof nm, "attention long HS=%d window=%d", HS, window);
    attn_ref r = {todbl(q, nq), todbl(k, nkv), todbl(v, nkv), todbl(dout, no), calloc(no, 8), s};
    attn_fwd_ref(&r);
    close_arr(nm, out[0], r.out, no, TOL_FWD);
    double *x[3] = {r.q, r.k, r.v};
    const float *gr[3] = {dq[0], dk[0], dv[0]};
    size_t n[3] = {nq, nkv, nkv};
    for (int w = 0; w < 3; w++) {
        float *u = frand(n[w], 1.0);
        double *x0 = todbl(x[w] == r.q ? q : x[w] == r.k ? k : v, n[w]), want = 0, got = 0;
        for (size_t i = 0; i < n[w]; i++) { x[w][i] = x0[i] + FD_EPS * u[i]; got += (double)gr[w][i] * u[i]; }
        double lp = attn_loss(&r);
        for (size_t i = 0; i < n[w]; i++) x[w][i] = x0[i] - FD_EPS * u[i];
        double lm = attn_loss(&r);
        for (size_t i = 0; i < n[w]; i++) x[w][i] = x0[i];
        want = (lp - lm) / (2 * FD_EPS);
        int ok = fabs(got - want) <= TOL_GRAD * (1.0 + fabs(want));
        if (!ok) fprintf(stderr, "%s: directional gradient %d: %.9g vs %.9g\n", nm, w, got, want);
        CHECK(ok);
        free(u); free(x0);
    }
    same_bits("attention long out", out[0], out[1], no * 4);
    same_bits("attention long probs", pr[0], pr[1], np * 4);
    same_bits("attention long dq", dq[0], dq[1], nq * 4);
    same_bits("attention long dk", dk[0], dk[1], nkv * 4);
    same_bits("attention long dv", dv[0], dv[1], nkv * 4);
    free(r.q); free(r.k); free(r.v); free(r.dout); free(r.out);
    for (int t = 0; t < 2; t++) { free(out[t]); free(pr[t]); free(dq[t]); free(dk[t]); free(dv[t]); }
    free(q); free(k); free(v); free(dout);
}

/* ---- activations ------------------------------------------------------------ */

static double silu(double g) { return g / (1 + exp(-g)); }
static double gelu(double x) { return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }

static void test_activations(void) {
    const size_t n = 1000; /* not a multiple of 16 or 256 */
    float *g = frand(n, 4.0), *u = frand(n, 2.0), *dout = frand(n, 1.0);
    g[0] = 30.0f; g[1] = -30.0f; /* saturated ends */
    float *o[2], *dg[2], *du[2], *go[2], *gx[2];
    for (int t = 0; t < 2; t++) {
        ct_pool *p = t ? pool2 : NULL;
        o[t] = malloc(n * 4); dg[t] = malloc(n * 4); du[t] = malloc(n * 4); go[t] = malloc(n * 4); gx[t] = malloc(n * 4);
        ct__swiglu_fwd(o[t], g, u, n, p);
        ct__swiglu_bwd(dg[t], du[t], dout, g, u, n, p);
        ct__gelu_fwd(go[t], g, n, p);
        ct__gelu_bwd(gx[t], dout, g, n, p);
    }
    float *inf = malloc(n * 4);
    ct__swiglu_forward(inf, g, u, (int)n);
    same_bits("swiglu fwd == inference bits", o[0], inf, n * 4);
    ct__gelu_forward(inf, g, (int)n);
    same_bits("gelu fwd == inference bits", go[0], inf, n * 4);
    double *w = malloc(n * 8), *wg = malloc(n * 8), *wu = malloc(n * 8), *wx = malloc(n * 8), *wo = malloc(n * 8);
    for (size_t i = 0; i < n; i++) {
        double gg = g[i], uu = u[i], d = dout[i], e = FD_EPS;
        wo[i] = silu(gg) * uu;
        wg[i] = d * uu * (silu(gg + e) - silu(gg - e)) / (2 * e);
        wu[i] = d * silu(gg);
        w[i] = gelu(gg);
        wx[i] = d * (gelu(gg + e) - gelu(gg - e)) / (2 * e);
    }
    close_arr("swiglu fwd", o[0], wo, n, TOL_FWD);
    close_arr("swiglu dg", dg[0], wg, n, TOL_GRAD);
    close_arr("swiglu du", du[0], wu, n, TOL_GRAD);
    close_arr("gelu fwd", go[0], w, n, TOL_FWD);
    close_arr("gelu dx", gx[0], wx, n, TOL_GRAD);
    same_bits("swiglu", o[0], o[1], n * 4); same_bits("swiglu dg", dg[0], dg[1], n * 4);
    same_bits("swiglu du", du[0], du[1], n * 4); same_bits("gelu", go[0], go[1], n * 4);
    same_bits("gelu dx", gx[0], gx[1], n * 4);
    /* aliasing allowed by the header: dg, du over g, u; gelu in place; dx over dout */
    float *ga = malloc(n * 4), *ua = malloc(n * 4);
    memcpy(ga, g, n * 4); memcpy(ua, u, n * 4);
    ct__swiglu_bwd(ga, ua, dout, ga, ua, n, pool2);
    same_bits("swiglu bwd aliased", ga, dg[0], n * 4);
    same_bits("swiglu bwd aliased du", ua, du[0], n * 4);
    memcpy(ga, dout, n * 4);
    ct__gelu_bwd(ga, ga, g, n, pool2);
    same_bits("gelu bwd aliased", ga, gx[0], n * 4);
    memcpy(ga, g, n * 4);
    ct__gelu_fwd(ga, ga, n, NULL);
    same_bits("gelu fwd in place", ga, go[0], n * 4);
    free(ga); free(ua); free(inf); free(w); free(wg); free(wu); free(wx); free(wo);
    for (int t = 0; t < 2; t++) { free(o[t]); free(dg[t]); free(du[t]); free(go[t]); free(gx[t]); }
    free(g); free(u); free(dout);
}

static void test_dropout(void) {
    const size_t n = 100003;
    float *x = frand(n, 1.0), *dout = frand(n, 1.0);
    for (size_t i = 0; i < n; i++) { if (x[i] == 0.0f) x[i] = 0.5f; if (dout[i] == 0.0f) dout[i] = 0.5f; }
    float *o[2], *dx[2];
    for (int t = 0; t < 2; t++) {
        o[t] = malloc(n * 4); dx[t] = malloc(n * 4);
        for (size_t i = 0; i < n; i++) dx[t][i] = 1.0f;
        ct__dropout_fwd(o[t], x, n, 0.3f, 12345, t ? pool2 : NULL);
        ct__dropout_bwd(dx[t], dout, n, 0.3f, 12345, t ? pool2 : NULL);
    }
    size_t dropped = 0, bad = 0;
    const float sc = 1.0f / (1.0f - 0.3f);
    for (size_t i = 0; i < n; i++) {
        int kept = o[0][i] != 0.0f;
        dropped += !kept;
        if (kept && o[0][i] != x[i] * sc) bad++;
        volatile float ds = dout[i] * sc; /* rounded before the add, as in the kernel (no FMA contraction) */
        if (dx[0][i] != (kept ? 1.0f + ds : 1.0f)) bad++; /* the same mask, accumulated */
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_NEAR((double)dropped / n, 0.3, TOL_DROP_RATE);
    same_bits("dropout", o[0], o[1], n * 4);
    same_bits("dropout dx", dx[0], dx[1], n * 4);
    /* another seed: another mask; p = 0: identity, dx += dout */
    ct__dropout_fwd(o[1], x, n, 0.3f, 12346, NULL);
    size_t diff = 0;
    for (size_t i = 0; i < n; i++) diff += (o[0][i] == 0.0f) != (o[1][i] == 0.0f);
    CHECK(diff > n / 4);
    ct__dropout_fwd(o[0], x, n, 0.0f, 1, pool2);
    same_bits("dropout p=0", o[0], x, n * 4);
    memcpy(o[0], x, n * 4);
    ct__dropout_fwd(o[0], o[0], n, 0.0f, 1, pool2);
    same_bits("dropout p=0 in place", o[0], x, n * 4);
    for (size_t i = 0; i < n; i++) dx[0][i] = 1.0f;
    ct__dropout_bwd(dx[0], dout, n, 0.0f, 1, NULL);
    for (size_t i = 0; i < n; i++) if (dx[0][i] != 1.0f + dout[i]) bad++;
    CHECK_EQ_INT(bad, 0);
    for (int t = 0; t < 2; t++) { free(o[t]); free(dx[t]); }
    free(x); free(dout);
}

/* ---- embeddings, bias ---------------------------------------------------- */

static void test_embed_bias(void) {
    const int N = 11, C = 45, V = 6, NP = 8;
    int32_t ids[11] = {3, 1, 3, 3, 0, 5, 1, 3, 2, 2, 3}, pos[11] = {0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 7};
    float *wte = frand((size_t)V * C, 1.0), *wpe = frand((size_t)NP * C, 1.0), *dout = frand((size_t)N * C, 1.0);
    float *out = malloc((size_t)N * C * 4);
    double *want = malloc((size_t)N * C * 8);
    ct__embed_fwd(out, ids, pos, wte, wpe, N, C);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++) want[(size_t)i * C + c] = (double)wte[(size_t)ids[i] * C + c] + wpe[(size_t)pos[i] * C + c];
    close_arr("embed fwd", out, want, (size_t)N * C, 1e-7);
    ct__embed_fwd(out, ids, pos, wte, NULL, N, C);
    for (int i = 0; i < N; i++) same_bits("embed fwd no wpe", out + (size_t)i * C, wte + (size_t)ids[i] * C, (size_t)C * 4);
    float *dwte[2], *dwpe[2], *db[2];
    for (int t = 0; t < 2; t++) {
        dwte[t] = malloc((size_t)V * C * 4); dwpe[t] = malloc((size_t)NP * C * 4); db[t] = malloc((size_t)C * 4);
        for (int i = 0; i < V * C; i++) dwte[t][i] = 0.5f;
        for (int i = 0; i < NP * C; i++) dwpe[t][i] = -0.5f;
        for (int i = 0; i < C; i++) db[t][i] = 0.25f;
        ct__embed_bwd(dwte[t], dwpe[t], dout, ids, pos, N, C, t ? pool2 : NULL);
        ct__bias_bwd(db[t], dout, N, C, t ? pool2 : NULL);
    }
    /* exact: rows added in order, so a float re-implementation gives the same bits */
    float *wt = malloc((size_t)V * C * 4), *wp = malloc((size_t)NP * C * 4), *wb = malloc((size_t)C * 4);
    for (int i = 0; i < V * C; i++) wt[i] = 0.5f;
    for (int i = 0; i < NP * C; i++) wp[i] = -0.5f;
    for (int i = 0; i < C; i++) wb[i] = 0.25f;
    for (int i = 0; i < N; i++)
        for (int c = 0; c < C; c++) {
            float d = dout[(size_t)i * C + c];
            wt[(size_t)ids[i] * C + c] += d; wp[(size_t)pos[i] * C + c] += d; wb[c] += d;
        }
    same_bits("embed dwte", dwte[0], wt, (size_t)V * C * 4);
    same_bits("embed dwpe", dwpe[0], wp, (size_t)NP * C * 4);
    same_bits("bias db", db[0], wb, (size_t)C * 4);
    same_bits("embed dwte threads", dwte[0], dwte[1], (size_t)V * C * 4);
    same_bits("embed dwpe threads", dwpe[0], dwpe[1], (size_t)NP * C * 4);
    same_bits("bias db threads", db[0], db[1], (size_t)C * 4);
    ct__embed_bwd(NULL, dwpe[1], dout, ids, pos, N, C, pool2); /* frozen wte: no crash */
    for (int t = 0; t < 2; t++) { free(dwte[t]); free(dwpe[t]); free(db[t]); }
    free(wt); free(wp); free(wb); free(wte); free(wpe); free(dout); free(out); free(want);
}

/* ---- cross-entropy ----------------------------------------------------------- */

typedef struct { double *x; const int32_t *t; int n, V; } xent_ref;
static double xent_loss(void *c) {
    xent_ref *r = c;
    double L = 0;
    for (int i = 0; i < r->n; i++) {
        if (r->t[i] < 0) continue;
        const double *x = r->x + (size_t)i * r->V;
        double mx = x[0], s = 0;
        for (int j = 1; j < r->V; j++) mx = x[j] > mx ? x[j] : mx;
        for (int j = 0; j < r->V; j++) s += exp(x[j] - mx);
        L += log(s) + mx - x[r->t[i]];
    }
    return L;
}

static void test_xent(void) {
    const int n = 6, V = 53;
    const int32_t tg[6] = {3, -1, 52, 0, -100, 3};
    const float scale = 0.25f;
    float *lg = frand((size_t)n * V, 8.0), *l[2];
    lg[2 * V + 7] = 80.0f; /* a big logit: stability */
    double loss[2];
    for (int t = 0; t < 2; t++) {
        l[t] = malloc((size_t)n * V * 4);
        memcpy(l[t], lg, (size_t)n * V * 4);
        loss[t] = ct__xent_fwd_bwd(l[t], tg, n, V, scale, t ? pool2 : NULL);
    }
    xent_ref r = {todbl(lg, (size_t)n * V), tg, n, V};
    double want = xent_loss(&r);
    CHECK_NEAR(loss[0], want, TOL_FWD * (1 + fabs(want)));
    CHECK(loss[0] == loss[1]);
    double *g = malloc((size_t)n * V * 8);
    fd_grad(r.x, (size_t)n * V, xent_loss, &r, g);
    for (int i = 0; i < n * V; i++) g[i] *= scale;
    close_arr("xent dlogits", l[0], g, (size_t)n * V, TOL_GRAD);
    same_bits("xent dlogits threads", l[0], l[1], (size_t)n * V * 4);
    free(g); free(r.x); free(l[0]); free(l[1]); free(lg);
}

int main(void) {
    CHECK_OK(ct__pool_create(2, &pool2));
    test_norms(0);
    test_norms(1);
    test_rope();
    test_attention(8, 0, 4, 2);
    test_attention(16, 4, 4, 2);
    test_attention(16, 0, 4, 4);
    test_attention(8, 3, 4, 1);
    test_attention_long(32, 0);
    test_attention_long(48, 19);
    test_activations();
    test_dropout();
    test_embed_bias();
    test_xent();
    ct__pool_free(pool2);
    return ct_check_done("test_tkernels");
}
