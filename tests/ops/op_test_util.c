// Shared checks for the op test driver (see op_test.h for the tolerance policy).
#include "op_test.h"

#include <math.h>
#include <stdio.h>

void fill_uniform(hy_rng *r, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = hy_rng_range(r, lo, hi);
}

void fill_normal(hy_rng *r, float *x, size_t n, float std) {
    for (size_t i = 0; i < n; i++) x[i] = std * hy_rng_normal(r);
}

int check_close(const char *what, const float *got, const float *want, size_t n, float atol, float rtol) {
    size_t worst = 0;
    double worst_excess = -1.0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) || !isfinite(want[i])) {
            fprintf(stderr, "  %s: non-finite at %zu: got %g want %g\n", what, i, got[i], want[i]);
            return 1;
        }
        double excess = fabs((double)got[i] - want[i]) - (atol + rtol * fabs((double)want[i]));
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    if (worst_excess > 0) {
        fprintf(stderr, "  %s: mismatch at %zu: got %.9g want %.9g (atol %g rtol %g)\n", what, worst, got[worst],
                want[worst], atol, rtol);
        return 1;
    }
    return 0;
}

int check_nonzero(const char *what, const float *x, size_t n) {
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) {
            fprintf(stderr, "  %s: non-finite at %zu\n", what, i);
            return 1;
        }
        if (x[i] != 0.0f) any = 1;
    }
    if (!any) fprintf(stderr, "  %s: all zero\n", what);
    return !any;
}

int fd_check(const char *what, float *x, const float *analytic, size_t n, fd_loss_fn f, void *ctx, double h,
             double tol) {
    double err2 = 0.0, ref2 = 0.0, worst = 0.0;
    size_t worst_i = 0;
    for (size_t i = 0; i < n; i++) {
        float saved = x[i];
        x[i] = (float)(saved + h);
        double up = f(ctx);
        x[i] = (float)(saved - h);
        double down = f(ctx);
        // the step actually taken in fp32, not the requested one
        double step = (double)(float)(saved + h) - (double)(float)(saved - h);
        x[i] = saved;
        double numeric = (up - down) / step;
        if (!isfinite(numeric) || !isfinite(analytic[i])) {
            fprintf(stderr, "  %s: non-finite gradient at %zu\n", what, i);
            return 1;
        }
        double d = analytic[i] - numeric;
        err2 += d * d;
        ref2 += numeric * numeric;
        if (fabs(d) > worst) {
            worst = fabs(d);
            worst_i = i;
        }
    }
    double rel = sqrt(err2) / fmax(sqrt(ref2), 1e-6);
    if (rel > tol || ref2 == 0.0) {
        fprintf(stderr, "  %s: gradient relative error %.3g (tol %.3g), worst at %zu (|Δ| %.3g)%s\n", what, rel,
                tol, worst_i, worst, ref2 == 0.0 ? ", numeric gradient all zero" : "");
        return 1;
    }
    return 0;
}

double dot_loss(const float *out, const float *weights, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)out[i] * weights[i];
    return s;
}
