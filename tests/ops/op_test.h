// The op test driver's registry and shared checks (house style: one driver, modes test / grad /
// perf, filter by op name, every op has an entry).
//
// Tolerance policy (docs/tolerances.md holds the full text):
// - CPU reference vs an independent computation of the same math (e.g. chunked vs recurrence,
//   cached vs full attention): scaled abs+rel, |a − b| ≤ atol + rtol·|b| elementwise, thresholds
//   set per test with a comment on how they were chosen.
// - Finite differences (mode grad): central differences with step h in double around fp32 ops;
//   pass when ‖analytic − numeric‖ / max(‖numeric‖, 1e-6) ≤ 1e-2 (fp32 rounding of an O(1) loss
//   with h = 1e-3 gives ~1e-4 per entry; 1e-2 leaves room and still fails any wrong term).
// - NaN or inf never passes. Inputs and outputs are checked non-zero so an op that writes nothing
//   fails.
#ifndef HY_OP_TEST_H
#define HY_OP_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "../../common/rng.h"

typedef struct {
    const char *name;
    int (*test)(void);  // forward/structured/consistency checks; 0 = pass
    int (*grad)(void);  // finite-difference gradient check; 0 = pass; NULL when not applicable
} op_test_entry;

// Each op family file defines one table ending with a {NULL} entry.
extern const op_test_entry dense_op_tests[];
extern const op_test_entry gdn_op_tests[];

void fill_uniform(hy_rng *r, float *x, size_t n, float lo, float hi);
void fill_normal(hy_rng *r, float *x, size_t n, float std);
// Elementwise |got − want| ≤ atol + rtol·|want|, all finite. Prints the worst element on failure.
int check_close(const char *what, const float *got, const float *want, size_t n, float atol, float rtol);
// Fails when every element is zero or any is non-finite.
int check_nonzero(const char *what, const float *x, size_t n);

// Scalar loss of the current parameter values, computed in double from fp32 op outputs.
typedef double (*fd_loss_fn)(void *ctx);
// Compares analytic (n) against central differences of f over each element of x (perturbed in
// place and restored). Returns 0 when the relative norm error ≤ tol.
int fd_check(const char *what, float *x, const float *analytic, size_t n, fd_loss_fn f, void *ctx, double h,
             double tol);
// Σ out·weights in double: the usual random projection that turns an op output into a loss.
double dot_loss(const float *out, const float *weights, size_t n);

#endif
