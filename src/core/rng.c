/* src/core/rng.c — xoshiro256** seeded by splitmix64 (see rng.h). */
#include <math.h>
#include "core/rng.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void ct__rng_seed(ct__rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed); /* never all zero in practice */
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ct__rng_next(ct__rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

uint64_t ct__rng_below(ct__rng *r, uint64_t n) {
    uint64_t lim = -n % n; /* 2^64 mod n: reject the low values that would bias */
    for (;;) {
        uint64_t x = ct__rng_next(r);
        if (x >= lim) return x % n;
    }
}

void ct__rng_shuffle(ct__rng *r, size_t *a, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)ct__rng_below(r, i);
        size_t t = a[i - 1]; a[i - 1] = a[j]; a[j] = t;
    }
}

double ct__rng_normal(ct__rng *r) {
    const double u1 = ((double)(ct__rng_next(r) >> 11) + 0.5) * 0x1.0p-53;
    const double u2 = (double)(ct__rng_next(r) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
