// Deterministic random numbers for init, sampling and tests: xoshiro256** seeded by splitmix64.
// The same seed gives the same stream on every platform (no libc rand), which is what makes
// `--seed` reproducible across machines.
#ifndef HY_RNG_H
#define HY_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} hy_rng;

void hy_rng_init(hy_rng *r, uint64_t seed);
uint64_t hy_rng_next(hy_rng *r);
// Uniform in [0, 1) with 24 random bits (exactly representable in float).
float hy_rng_uniform(hy_rng *r);
// Uniform in [lo, hi).
float hy_rng_range(hy_rng *r, float lo, float hi);
// Standard normal (Box-Muller in double precision).
float hy_rng_normal(hy_rng *r);

#endif
