/* src/core/rng.h — a small deterministic PRNG for data shuffling and
 * initialisation: xoshiro256** (Blackman & Vigna, https://prng.di.unimi.it/),
 * its state filled from a 64-bit seed by splitmix64. The same seed gives the
 * same stream on every platform. Not for cryptography. */
#ifndef CT_CORE_RNG_H
#define CT_CORE_RNG_H
#include <stddef.h>
#include <stdint.h>

typedef struct { uint64_t s[4]; } ct__rng; /* plain data: can be saved in a checkpoint */

void ct__rng_seed(ct__rng *r, uint64_t seed);
uint64_t ct__rng_next(ct__rng *r);
/* Uniform in [0, n) without modulo bias (n > 0). */
uint64_t ct__rng_below(ct__rng *r, uint64_t n);
/* N(0, 1) by Box-Muller from two draws (u1 in (0, 1), u2 in [0, 1), 53 bits each). */
double ct__rng_normal(ct__rng *r);
/* Fisher-Yates shuffle of a[0..n). */
void ct__rng_shuffle(ct__rng *r, size_t *a, size_t n);

#endif
