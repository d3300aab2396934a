/* tests/unit/test_model_sampler.c — ct_sampler against the definitions.
 *
 * Greedy: argmax with the lowest id on ties. Sampling: over many draws, the
 * empirical frequencies must match the distribution computed here in double
 * from the definitions (softmax of logits/T; top-k keeps the k largest;
 * top-p keeps the smallest most-likely prefix whose mass reaches p, then
 * renormalizes), within FREQ_TOL; tokens outside the kept set never appear;
 * a seed reproduces its sequence. */
#include <stdint.h>
#include <string.h>
#include "check.h"
#include "ctune/ctune.h"

enum { V = 10, DRAWS = 200000 };
#define FREQ_TOL 0.006 /* ~5 standard deviations of a frequency near 0.25 at 200k draws */

static const float L0[V] = {1.0f, 2.5f, 0.3f, 2.4f, -1.0f, 0.0f, 1.7f, 2.5f, -3.0f, 0.9f};

/* Expected probabilities: softmax(L0/T), top-k, top-p, renormalized. */
static void expected(double T, int k, double p, double *out) {
    int order[V];
    double pr[V], z = 0, mx = -1e30;
    for (int i = 0; i < V; i++) { order[i] = i; mx = fmax(mx, L0[i] / T); }
    /* sort ids by logit desc, id asc (insertion sort) */
    for (int i = 1; i < V; i++)
        for (int j = i; j > 0 && (L0[order[j]] > L0[order[j - 1]] ||
                                  (L0[order[j]] == L0[order[j - 1]] && order[j] < order[j - 1])); j--) {
            int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
        }
    int keep = k > 0 && k < V ? k : V;
    for (int i = 0; i < keep; i++) z += exp(L0[order[i]] / T - mx);
    for (int i = 0; i < V; i++) pr[i] = 0;
    for (int i = 0; i < keep; i++) pr[order[i]] = exp(L0[order[i]] / T - mx) / z;
    if (p < 1) {
        double cum = 0;
        int n = keep;
        for (int i = 0; i < keep; i++) { cum += pr[order[i]]; if (cum >= p) { n = i + 1; break; } }
        double m = 0;
        for (int i = 0; i < n; i++) m += pr[order[i]];
        for (int i = 0; i < keep; i++) pr[order[i]] = i < n ? pr[order[i]] / m : 0;
    }
    memcpy(out, pr, sizeof pr);
}

static void check_freq(float T, int k, float p) {
    ct_sampler_opts o = {T, k, p, 42};
    ct_sampler *s = NULL;
    CHECK_OK(ct_sampler_create(&o, V, &s));
    if (!s) return;
    long cnt[V] = {0}, out_of_range = 0;
    for (int d = 0; d < DRAWS; d++) {
        float lg[V];
        memcpy(lg, L0, sizeof lg);
        int id = ct_sampler_sample(s, lg);
        if (id >= 0 && id < V) cnt[id]++;
        else out_of_range++;
    }
    CHECK_EQ_INT(out_of_range, 0);
    ct_sampler_free(s);
    double want[V], worst = 0;
    expected(T, k, p, want);
    for (int i = 0; i < V; i++) {
        double f = (double)cnt[i] / DRAWS;
        worst = fmax(worst, fabs(f - want[i]));
        if (want[i] == 0) CHECK_EQ_INT(cnt[i], 0); /* filtered tokens never drawn */
        CHECK_NEAR(f, want[i], FREQ_TOL);
    }
    printf("temp %.2f top-k %d top-p %.2f: max |freq - p| %.4f over %d draws\n", T, k, p, worst, DRAWS);
}

static void sequence(uint64_t seed, int32_t *out, int n) {
    ct_sampler_opts o = {1.0f, 0, 1.0f, seed};
    ct_sampler *s = NULL;
    CHECK_OK(ct_sampler_create(&o, V, &s));
    for (int i = 0; i < n && s; i++) {
        float lg[V];
        memcpy(lg, L0, sizeof lg);
        out[i] = ct_sampler_sample(s, lg);
    }
    ct_sampler_free(s);
}

int main(void) {
    /* greedy: ids 1 and 7 tie at 2.5 -> 1 */
    ct_sampler_opts g = {0};
    ct_sampler *s = NULL;
    CHECK_OK(ct_sampler_create(&g, V, &s));
    float lg[V];
    memcpy(lg, L0, sizeof lg);
    if (s) CHECK_EQ_INT(ct_sampler_sample(s, lg), 1);
    ct_sampler_free(s);

    check_freq(1.0f, 0, 1.0f);
    check_freq(0.7f, 0, 1.0f);
    check_freq(1.3f, 3, 1.0f);  /* top-k 3 with a tie at the top */
    check_freq(1.0f, 0, 0.6f);  /* nucleus */
    check_freq(0.9f, 5, 0.8f);  /* both */

    int32_t a[64], b[64], c[64];
    sequence(7, a, 64);
    sequence(7, b, 64);
    sequence(8, c, 64);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);

    /* invalid options are refused */
    ct_sampler_opts bad = {-1.0f, 0, 1.0f, 0};
    CHECK(ct_sampler_create(&bad, V, &s) == CT_ERR_ARG);
    CHECK(ct_sampler_create(&g, 0, &s) == CT_ERR_ARG);
    return ct_check_done("test_model_sampler");
}
