// Signed integers of any size, enough for exact multi-digit arithmetic tasks.
//
// The arithmetic task multiplies operands of up to 30 digits, so answers run past what int64 or
// __int128 hold; a wrong last digit must still be caught, which rules out doubles. Magnitudes are
// little-endian base-10^9 limbs (printing is then just zero-padded limbs); schoolbook
// multiplication is plenty at these sizes. Zero has n == 0 and neg == 0.
#ifndef HY_EVALS_BIGINT_H
#define HY_EVALS_BIGINT_H

#include <stdint.h>

typedef struct {
    int neg;
    int n;         // limbs in use
    uint32_t *d;   // (n) each < 10^9
} hy_bigint;

void hy_bigint_init(hy_bigint *a);  // = 0
void hy_bigint_free(hy_bigint *a);
void hy_bigint_set_i64(hy_bigint *a, int64_t v);
// r = a + b, a − b, a · b; r may alias a or b.
void hy_bigint_add(hy_bigint *r, const hy_bigint *a, const hy_bigint *b);
void hy_bigint_sub(hy_bigint *r, const hy_bigint *a, const hy_bigint *b);
void hy_bigint_mul(hy_bigint *r, const hy_bigint *a, const hy_bigint *b);
// Decimal, with '-' when negative (caller frees).
char *hy_bigint_to_string(const hy_bigint *a);

#endif
