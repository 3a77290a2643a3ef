// Arbitrary-size signed integers (see bigint.h).
#include "evals/bigint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"

static const uint32_t BASE = 1000000000u;

void hy_bigint_init(hy_bigint *a) { memset(a, 0, sizeof *a); }

void hy_bigint_free(hy_bigint *a) {
    free(a->d);
    memset(a, 0, sizeof *a);
}

static void trim(hy_bigint *a) {
    while (a->n > 0 && a->d[a->n - 1] == 0) a->n--;
    if (a->n == 0) a->neg = 0;
}

// Replaces r's contents with the given limbs (takes ownership of d).
static void assign(hy_bigint *r, int neg, uint32_t *d, int n) {
    free(r->d);
    r->d = d;
    r->n = n;
    r->neg = neg;
    trim(r);
}

void hy_bigint_set_i64(hy_bigint *a, int64_t v) {
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;  // |INT64_MIN| without overflow
    uint32_t *d = hy_calloc(3, sizeof *d);
    int n = 0;
    while (m) {
        d[n++] = (uint32_t)(m % BASE);
        m /= BASE;
    }
    assign(a, v < 0, d, n);
}

static int cmp_abs(const hy_bigint *a, const hy_bigint *b) {
    if (a->n != b->n) return a->n < b->n ? -1 : 1;
    for (int i = a->n - 1; i >= 0; i--)
        if (a->d[i] != b->d[i]) return a->d[i] < b->d[i] ? -1 : 1;
    return 0;
}

// |a| + |b| into fresh limbs.
static uint32_t *add_abs(const hy_bigint *a, const hy_bigint *b, int *n) {
    const int m = (a->n > b->n ? a->n : b->n) + 1;
    uint32_t *d = hy_calloc((size_t)m, sizeof *d);
    uint32_t carry = 0;
    for (int i = 0; i < m; i++) {
        uint32_t s = carry + (i < a->n ? a->d[i] : 0) + (i < b->n ? b->d[i] : 0);
        carry = s >= BASE;
        d[i] = carry ? s - BASE : s;
    }
    *n = m;
    return d;
}

// |a| − |b| for |a| ≥ |b|, into fresh limbs.
static uint32_t *sub_abs(const hy_bigint *a, const hy_bigint *b, int *n) {
    uint32_t *d = hy_calloc((size_t)a->n + 1, sizeof *d);
    int64_t borrow = 0;
    for (int i = 0; i < a->n; i++) {
        int64_t s = (int64_t)a->d[i] - borrow - (i < b->n ? b->d[i] : 0);
        borrow = s < 0;
        d[i] = (uint32_t)(s < 0 ? s + BASE : s);
    }
    *n = a->n;
    return d;
}

// a + (flip ? −b : b): signs decide whether magnitudes add or subtract.
static void add_signed(hy_bigint *r, const hy_bigint *a, const hy_bigint *b, int flip) {
    const int bneg = b->n ? b->neg ^ flip : 0;
    int n;
    uint32_t *d;
    int neg;
    if (a->neg == bneg) {
        d = add_abs(a, b, &n);
        neg = a->neg;
    } else if (cmp_abs(a, b) >= 0) {
        d = sub_abs(a, b, &n);
        neg = a->neg;
    } else {
        d = sub_abs(b, a, &n);
        neg = bneg;
    }
    assign(r, neg, d, n);
}

void hy_bigint_add(hy_bigint *r, const hy_bigint *a, const hy_bigint *b) { add_signed(r, a, b, 0); }
void hy_bigint_sub(hy_bigint *r, const hy_bigint *a, const hy_bigint *b) { add_signed(r, a, b, 1); }

void hy_bigint_mul(hy_bigint *r, const hy_bigint *a, const hy_bigint *b) {
    const int m = a->n + b->n;
    uint64_t *acc = hy_calloc((size_t)m + 1, sizeof *acc);
    for (int i = 0; i < a->n; i++) {
        uint64_t carry = 0;
        for (int j = 0; j < b->n; j++) {
            // < 10^18 + 10^9 + 10^9: fits in 64 bits with room to spare
            uint64_t cur = acc[i + j] + (uint64_t)a->d[i] * b->d[j] + carry;
            acc[i + j] = cur % BASE;
            carry = cur / BASE;
        }
        for (int k = i + b->n; carry; k++) {
            uint64_t cur = acc[k] + carry;
            acc[k] = cur % BASE;
            carry = cur / BASE;
        }
    }
    uint32_t *d = hy_calloc((size_t)m + 1, sizeof *d);
    for (int i = 0; i < m; i++) d[i] = (uint32_t)acc[i];
    free(acc);
    assign(r, a->neg ^ b->neg, d, m);
}

char *hy_bigint_to_string(const hy_bigint *a) {
    if (a->n == 0) return hy_strdup("0");
    char *s = hy_malloc((size_t)a->n * 9 + 2);
    int w = sprintf(s, "%s%u", a->neg ? "-" : "", a->d[a->n - 1]);
    for (int i = a->n - 2; i >= 0; i--) w += sprintf(s + w, "%09u", a->d[i]);
    return s;
}
