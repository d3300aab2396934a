/* src/infer/sampler.c — picking the next token from logits.
 *
 * Greedy (temperature 0): argmax, the lowest id on ties. Otherwise, in the
 * order Hugging Face's logits warpers apply them: divide by the temperature,
 * keep the top-k logits, softmax, keep the smallest set of most likely tokens
 * whose probability reaches top_p (nucleus, renormalized), then draw with a
 * seeded xorshift64* generator — the same seed and logits give the same
 * tokens on every platform. Candidates are ordered by probability, then id.
 * top_k 0 and top_p <= 0 or 1 switch those filters off (zeroed options work).
 * Leaves out: repetition/frequency penalties, min-p, typical sampling, beams.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/internal.h"
#include "ctune/generate.h"

typedef struct { float p; int32_t id; } cand;

struct ct_sampler {
    ct_sampler_opts o;
    int V;
    uint64_t rng;   /* xorshift64* state, never 0 */
    int32_t *idx;   /* (V,) candidate ids */
    float *prob;    /* (V,) probabilities by id */
    cand *tmp;      /* (V,) sort buffer */
};

/* splitmix64: spreads a small seed over the state bits */
static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint64_t next_u64(ct_sampler *s) {
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * 0x2545F4914F6CDD1Dull;
}

/* uniform in [0, 1) with 24 random bits */
static float next_f32(ct_sampler *s) { return (float)(next_u64(s) >> 40) / 16777216.0f; }

ct_status ct_sampler_create(const ct_sampler_opts *o, int vocab_size, ct_sampler **out) {
    if (!out) return ct__err(CT_ERR_ARG, "ct_sampler_create: out is NULL");
    *out = NULL;
    if (vocab_size <= 0) return ct__err(CT_ERR_ARG, "ct_sampler_create: vocab_size %d", vocab_size);
    ct_sampler_opts d = {0.0f, 0, 1.0f, 0};
    if (o) d = *o;
    if (d.top_p <= 0.0f) d.top_p = 1.0f; /* zero-initialized options: nucleus off */
    if (!(d.temperature >= 0.0f) || d.top_k < 0 || !(d.top_p <= 1.0f))
        return ct__err(CT_ERR_ARG, "sampler: temperature %g must be >= 0, top_k %d >= 0, top_p %g <= 1 (<= 0 or 1: off)",
                       (double)d.temperature, d.top_k, (double)d.top_p);
    ct_sampler *s = ct__calloc(1, sizeof *s);
    if (!s) return ct__err(CT_ERR_NOMEM, "sampler: out of memory");
    s->o = d;
    s->V = vocab_size;
    s->rng = splitmix64(d.seed);
    if (!s->rng) s->rng = 0x853C49E6748FEA9Bull;
    s->idx = ct__malloc((size_t)vocab_size * sizeof *s->idx);
    s->prob = ct__malloc((size_t)vocab_size * sizeof *s->prob);
    s->tmp = ct__malloc((size_t)vocab_size * sizeof *s->tmp);
    if (!s->idx || !s->prob || !s->tmp) { ct_sampler_free(s); return ct__err(CT_ERR_NOMEM, "sampler: out of memory"); }
    *out = s;
    return CT_OK;
}

void ct_sampler_free(ct_sampler *s) {
    if (!s) return;
    free(s->idx);
    free(s->prob);
    free(s->tmp);
    free(s);
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* "a before b": higher value first, then lower id */
static int before(const float *v, int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); }

/* Min-heap (by `before` reversed) sift-down over h[0..n). */
static void heap_down(int32_t *h, int n, int i, const float *v) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && before(v, h[w], h[l])) w = l;
        if (r < n && before(v, h[w], h[r])) w = r;
        if (w == i) return;
        int32_t t = h[i]; h[i] = h[w]; h[w] = t;
        i = w;
    }
}

/* Move the k best ids (by v) to idx[0..k), sorted best first. O(V log k). */
static void top_k_select(int32_t *idx, int V, int k, const float *v) {
    for (int i = 0; i < k; i++) idx[i] = i;
    for (int i = k / 2 - 1; i >= 0; i--) heap_down(idx, k, i, v);
    for (int i = k; i < V; i++)
        if (before(v, i, idx[0])) { idx[0] = i; heap_down(idx, k, 0, v); }
    /* heap-sort: repeatedly move the worst (root) to the end */
    for (int n = k - 1; n > 0; n--) {
        int32_t t = idx[0]; idx[0] = idx[n]; idx[n] = t;
        heap_down(idx, n, 0, v);
    }
}

static int cmp_cand(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

int32_t ct_sampler_sample(ct_sampler *s, float *logits) {
    const int V = s->V;
    if (s->o.temperature <= 0.0f) return argmax(logits, V);
    float inv_t = 1.0f / s->o.temperature, mx = -INFINITY;
    for (int i = 0; i < V; i++) {
        logits[i] *= inv_t;
        if (logits[i] > mx) mx = logits[i];
    }
    int n = V;
    if (s->o.top_k > 0 && s->o.top_k < V) {
        n = s->o.top_k;
        top_k_select(s->idx, V, n, logits);
    } else {
        for (int i = 0; i < V; i++) s->idx[i] = i;
    }
    /* softmax over the candidates */
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        int32_t id = s->idx[i];
        s->prob[id] = expf(logits[id] - mx);
        sum += s->prob[id];
    }
    for (int i = 0; i < n; i++) s->prob[s->idx[i]] = (float)(s->prob[s->idx[i]] / sum);
    if (s->o.top_p < 1.0f) {
        if (n == V && V > 1) {
            /* a token below (1-p)/(V-1) can never be in the nucleus: drop before sorting */
            float cut = (1.0f - s->o.top_p) / (float)(V - 1);
            int m = 0;
            for (int i = 0; i < V; i++)
                if (s->prob[i] >= cut) s->tmp[m++] = (cand){s->prob[i], i};
            if (!m) return argmax(logits, V); /* p below 1/V on a flat distribution */
            n = m;
            qsort(s->tmp, (size_t)n, sizeof *s->tmp, cmp_cand);
            for (int i = 0; i < n; i++) s->idx[i] = s->tmp[i].id;
        }
        double cum = 0.0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += s->prob[s->idx[i]];
            if (cum >= s->o.top_p) { keep = i + 1; break; }
        }
        n = keep;
    }
    double mass = 0.0;
    for (int i = 0; i < n; i++) mass += s->prob[s->idx[i]];
    double r = (double)next_f32(s) * mass, cdf = 0.0;
    for (int i = 0; i < n; i++) {
        cdf += s->prob[s->idx[i]];
        if (r < cdf) return s->idx[i];
    }
    return s->idx[n - 1]; /* rounding */
}
