// Tests of the GDN-family CPU reference ops: L2 norm, gated RMSNorm, causal conv1d + SiLU (whole
// sequence and the one-token decode step), the GDN gates, and the gated delta rule in recurrent and
// chunked form. Each op's `test` runs structured cases with hand-computed values first, then random
// inputs from the real domain, then consistency between independent computations of the same
// function (chunked vs recurrent, packed documents vs one at a time, a prefix's final state fed to
// the continuation, token-by-token decode vs the whole sequence, backward accumulating). Each `grad`
// checks every input and parameter gradient against central differences (fd_check, op_test.h).
//
// Domain of the random GDN inputs: g = −exp(U(log 1e-4, log 20)), log-uniform over [−20, −1e-4],
// so that near-zero decays (state carried across whole chunks) occur as often as strong ones;
// uniform over that range would forget almost everything within a token. β ∈ [0, 2]
// (allow_neg_eigval), q and k unit-norm through l2norm_forward, v ~ N(0, 1), states ~ N(0, 0.5²).
// The finite-difference checks draw g from [−2, −0.05] instead: strong decays make most entries of
// the loss insensitive to early tokens (their numeric gradient is fp32 noise), and near-zero ones
// make the Jacobian of long products ill-conditioned; the milder range keeps every gradient entry
// well above the noise without changing the code paths.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/hy_error.h"
#include "../../kernels/ops_cpu.h"
#include "op_test.h"

// ---- small helpers -----------------------------------------------------------------------------

static float *new_zeros(size_t n) { return hy_calloc(n ? n : 1, sizeof(float)); }

static float *new_copy(const float *x, size_t n) {
    float *y = new_zeros(n);
    memcpy(y, x, n * sizeof(float));
    return y;
}

static double sigmoid_d(double x) { return 1.0 / (1.0 + exp(-x)); }
static double silu_d(double x) { return x * sigmoid_d(x); }

// Backward functions accumulate: the second of two identical calls into the same buffers must
// leave twice the first call's result. Tolerance: exact up to the rounding of the final additions
// (several value heads add into one key head's gradient, so the sums are not bit-identical); 1e-6
// relative plus 1e-6 absolute for entries where those partial sums cancel.
static int check_doubled(const char *what, const float *twice, const float *once, size_t n) {
    float *want = new_zeros(n);
    for (size_t i = 0; i < n; i++) want[i] = 2.0f * once[i];
    int rc = check_close(what, twice, want, n, 1e-6f, 1e-6f);
    free(want);
    return rc;
}

static double max_abs(const float *x, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i]));
    return m;
}

// check_close with atol = rel·max|want| and rtol = rel. Used to compare two fp32 evaluations of
// the same function in different orders (chunked vs recurrent): the rounding error of an entry
// that is a long sum scales with the size of the summed terms, which the largest entries bound,
// not with the entry itself (a small dg is often a difference of large terms). With
// HY_TEST_VERBOSE set it also prints max |Δ|, its ratio to max |want| and the largest fraction of
// the budget any element used: the numbers the tolerances below were set from.
static int check_scaled(const char *what, const float *got, const float *want, size_t n, float rel) {
    double scale = max_abs(want, n);
    float atol = (float)(rel * scale);
    if (getenv("HY_TEST_VERBOSE")) {
        double worst = 0.0, used = 0.0;
        for (size_t i = 0; i < n; i++) {
            double diff = fabs((double)got[i] - want[i]);
            worst = fmax(worst, diff);
            if (rel > 0) used = fmax(used, diff / (atol + rel * fabs((double)want[i])));
        }
        printf("    %-46s max|Δ| %.2e  max|ref| %.2e  ratio %.2e  budget used %.3f\n", what, worst, scale,
               worst / fmax(scale, 1e-30), used);
    }
    return check_close(what, got, want, n, atol, rel);
}

// ---- l2norm ------------------------------------------------------------------------------------

static int test_l2norm(void) {
    int fails = 0;
    const float eps = 1e-6f;
    // ones(4): ‖x‖² = 4;  (0, 1, 2, 3): ‖x‖² = 14.
    float x[8] = {1, 1, 1, 1, 0, 1, 2, 3}, y[8], rn[2];
    l2norm_forward(y, rn, x, 2, 4, eps);
    float want_rn[2] = {(float)(1.0 / sqrt(4.0 + 1e-6)), (float)(1.0 / sqrt(14.0 + 1e-6))};
    float want_y[8];
    for (int i = 0; i < 8; i++) want_y[i] = (float)(x[i] / sqrt((i < 4 ? 4.0 : 14.0) + 1e-6));
    // a root, a division and a product: a few ulp, so 1e-6 relative
    fails += check_close("l2norm hand rnorm", rn, want_rn, 2, 0.0f, 1e-6f);
    fails += check_close("l2norm hand y", y, want_y, 8, 0.0f, 1e-6f);

    // Backward by hand: x = ones(4), dy = e_0 gives dx = r·e_0 − r³·ones, r ≈ 1/2 → (3/8, −1/8, −1/8, −1/8)
    // (eps shifts this by ~1e-7 relative, well inside the tolerance).
    float dy[4] = {1, 0, 0, 0}, dx[4] = {0}, want_dx[4] = {0.375f, -0.125f, -0.125f, -0.125f};
    l2norm_backward(dx, dy, x, rn, 1, 4);
    fails += check_close("l2norm hand dx", dx, want_dx, 4, 0.0f, 1e-6f);

    // Random rows at the model's Dk: unit norm, and dx orthogonal to y (the normalisation removes
    // the radial component; eps leaves eps/‖x‖² of it, ~1e-8 here).
    enum { N = 6, D = 96 };
    hy_rng r;
    hy_rng_init(&r, 11);
    float *xr = new_zeros(N * D), *yr = new_zeros(N * D), *rr = new_zeros(N), *dyr = new_zeros(N * D);
    float *dxr = new_zeros(N * D), *dx2 = new_zeros(N * D);
    fill_normal(&r, xr, N * D, 1.0f);
    fill_normal(&r, dyr, N * D, 1.0f);
    l2norm_forward(yr, rr, xr, N, D, eps);
    l2norm_backward(dxr, dyr, xr, rr, N, D);
    float norms[N], ones[N], radial[N], zero[N];
    for (int n = 0; n < N; n++) {
        double s = 0, rad = 0;
        for (int d = 0; d < D; d++) {
            s += (double)yr[n * D + d] * yr[n * D + d];
            rad += (double)yr[n * D + d] * dxr[n * D + d];
        }
        norms[n] = (float)sqrt(s);
        radial[n] = (float)rad;
        ones[n] = 1.0f;
        zero[n] = 0.0f;
    }
    // fp32 rounding of 96 products: 1e-6 relative is ~10 ulp
    fails += check_close("l2norm unit norm", norms, ones, N, 0.0f, 1e-6f);
    // |dx| ~ 1/‖x‖ ~ 0.1 per entry; a dot of 96 such fp32 terms is good to ~1e-7
    fails += check_close("l2norm dx ⟂ y", radial, zero, N, 1e-6f, 0.0f);
    fails += check_nonzero("l2norm y", yr, N * D) + check_nonzero("l2norm dx", dxr, N * D);
    memcpy(dx2, dxr, N * D * sizeof(float));
    l2norm_backward(dx2, dyr, xr, rr, N, D);
    fails += check_doubled("l2norm dx accumulates", dx2, dxr, N * D);
    free(xr), free(yr), free(rr), free(dyr), free(dxr), free(dx2);
    return fails;
}

typedef struct {
    float *x, *w, *y, *rn;
    int N, D;
} l2norm_fd;

static double l2norm_fd_loss(void *p) {
    l2norm_fd *c = p;
    l2norm_forward(c->y, c->rn, c->x, c->N, c->D, 1e-6f);
    return dot_loss(c->y, c->w, (size_t)c->N * c->D);
}

static int grad_l2norm(void) {
    enum { N = 3, D = 8 };
    hy_rng r;
    hy_rng_init(&r, 12);
    l2norm_fd c = {
        .x = new_zeros(N * D), .w = new_zeros(N * D), .y = new_zeros(N * D), .rn = new_zeros(N), .N = N, .D = D};
    fill_normal(&r, c.x, N * D, 1.0f);
    fill_normal(&r, c.w, N * D, 1.0f);
    float *dx = new_zeros(N * D);
    l2norm_fd_loss(&c);
    l2norm_backward(dx, c.w, c.x, c.rn, N, D);
    int fails = check_nonzero("l2norm dx", dx, N * D);
    fails += fd_check("l2norm dx", c.x, dx, N * D, l2norm_fd_loss, &c, 1e-3, 1e-2);
    free(c.x), free(c.w), free(c.y), free(c.rn), free(dx);
    return fails;
}

// ---- gated RMSNorm -----------------------------------------------------------------------------

static int test_gated_rmsnorm(void) {
    int fails = 0;
    const float eps = 1e-5f;  // the model's GDN output-norm eps
    // Row 0: x = (1, 2, 3, 4), mean(x²) = 7.5, gate z = 30 where silu(z) rounds to exactly 30 in fp32.
    // Row 1: x = (−2, 2, −2, 2), mean(x²) = 4; z = (0, 0, 30, 30): silu(0) = 0 gates the first two off.
    float x[8] = {1, 2, 3, 4, -2, 2, -2, 2}, z[8] = {30, 30, 30, 30, 0, 0, 30, 30}, w[4] = {0.5f, 1, 1.5f, 2};
    float y[8], rs[2];
    gated_rmsnorm_forward(y, rs, x, z, w, 2, 4, eps);
    float want_rs[2] = {(float)(1 / sqrt(7.5 + 1e-5)), (float)(1 / sqrt(4.0 + 1e-5))};
    float want_y[8];
    for (int i = 0; i < 8; i++) want_y[i] = (float)(x[i] * want_rs[i / 4] * w[i % 4] * (z[i] == 0 ? 0.0 : 30.0));
    // a root and three products in fp32: a few ulp, so 1e-6 relative
    fails += check_close("gated_rmsnorm hand rstd", rs, want_rs, 2, 0.0f, 1e-6f);
    fails += check_close("gated_rmsnorm hand y", y, want_y, 8, 0.0f, 1e-6f);

    // Random rows laid out as the model lays them, (T, H_v, Dv) with the weight shared by heads,
    // against a double-precision evaluation of the definition.
    enum { T = 5, H = 3, D = 16, N = T * H };
    hy_rng r;
    hy_rng_init(&r, 21);
    float *xr = new_zeros(N * D), *zr = new_zeros(N * D), *wr = new_zeros(D), *yr = new_zeros(N * D);
    float *rr = new_zeros(N), *want = new_zeros(N * D);
    fill_normal(&r, xr, N * D, 1.0f);
    fill_normal(&r, zr, N * D, 2.0f);
    fill_uniform(&r, wr, D, 0.5f, 1.5f);
    gated_rmsnorm_forward(yr, rr, xr, zr, wr, N, D, eps);
    for (int n = 0; n < N; n++) {
        double ss = 0;
        for (int d = 0; d < D; d++) ss += (double)xr[n * D + d] * xr[n * D + d];
        for (int d = 0; d < D; d++)
            want[n * D + d] = (float)(xr[n * D + d] / sqrt(ss / D + eps) * wr[d] * silu_d(zr[n * D + d]));
    }
    // fp32 products vs double: ~5 ulp worst, 2e-6 relative plus an atol for entries near zero
    fails += check_close("gated_rmsnorm random y", yr, want, N * D, 1e-7f, 2e-6f);
    fails += check_nonzero("gated_rmsnorm y", yr, N * D);

    float *dy = new_zeros(N * D), *dx = new_zeros(N * D), *dz = new_zeros(N * D), *dw = new_zeros(D);
    fill_normal(&r, dy, N * D, 1.0f);
    gated_rmsnorm_backward(dx, dz, dw, dy, xr, zr, wr, rr, N, D);
    fails += check_nonzero("gated_rmsnorm dx", dx, N * D) + check_nonzero("gated_rmsnorm dz", dz, N * D) +
             check_nonzero("gated_rmsnorm dw", dw, D);
    float *dx2 = new_copy(dx, N * D), *dz2 = new_copy(dz, N * D), *dw2 = new_copy(dw, D);
    gated_rmsnorm_backward(dx2, dz2, dw2, dy, xr, zr, wr, rr, N, D);
    fails += check_doubled("gated_rmsnorm dx accumulates", dx2, dx, N * D) +
             check_doubled("gated_rmsnorm dz accumulates", dz2, dz, N * D) +
             check_doubled("gated_rmsnorm dw accumulates", dw2, dw, D);
    free(xr), free(zr), free(wr), free(yr), free(rr), free(want), free(dy), free(dx), free(dz), free(dw);
    free(dx2), free(dz2), free(dw2);
    return fails;
}

typedef struct {
    float *x, *z, *w, *wl, *y, *rs;
    int N, D;
} gated_rmsnorm_fd;

static double gated_rmsnorm_fd_loss(void *p) {
    gated_rmsnorm_fd *c = p;
    gated_rmsnorm_forward(c->y, c->rs, c->x, c->z, c->w, c->N, c->D, 1e-5f);
    return dot_loss(c->y, c->wl, (size_t)c->N * c->D);
}

static int grad_gated_rmsnorm(void) {
    enum { N = 4, D = 8 };
    hy_rng r;
    hy_rng_init(&r, 22);
    gated_rmsnorm_fd c = {.x = new_zeros(N * D),
                          .z = new_zeros(N * D),
                          .w = new_zeros(D),
                          .wl = new_zeros(N * D),
                          .y = new_zeros(N * D),
                          .rs = new_zeros(N),
                          .N = N,
                          .D = D};
    fill_normal(&r, c.x, N * D, 1.0f);
    fill_normal(&r, c.z, N * D, 2.0f);
    fill_uniform(&r, c.w, D, 0.5f, 1.5f);
    fill_normal(&r, c.wl, N * D, 1.0f);
    float *dx = new_zeros(N * D), *dz = new_zeros(N * D), *dw = new_zeros(D);
    gated_rmsnorm_fd_loss(&c);
    gated_rmsnorm_backward(dx, dz, dw, c.wl, c.x, c.z, c.w, c.rs, N, D);
    int fails = 0;
    fails += fd_check("gated_rmsnorm dx", c.x, dx, N * D, gated_rmsnorm_fd_loss, &c, 1e-3, 1e-2);
    fails += fd_check("gated_rmsnorm dz", c.z, dz, N * D, gated_rmsnorm_fd_loss, &c, 1e-3, 1e-2);
    fails += fd_check("gated_rmsnorm dw", c.w, dw, D, gated_rmsnorm_fd_loss, &c, 1e-3, 1e-2);
    free(c.x), free(c.z), free(c.w), free(c.wl), free(c.y), free(c.rs), free(dx), free(dz), free(dw);
    return fails;
}

// ---- causal conv1d + SiLU ----------------------------------------------------------------------

static int test_conv1d_silu(void) {
    int fails = 0;
    enum { K = 4 };
    // One document, x[t] = t + 1 (channel 1 negated), w = (1, 2, 3, 4) on both channels. Zeros before
    // the start, so the pre-activations are 1·4 = 4, 1·3 + 2·4 = 11, 1·2 + 2·3 + 3·4 = 20,
    // 1 + 4 + 9 + 16 = 30, 2 + 6 + 12 + 20 = 40; window_out keeps the last three inputs (3, 4, 5).
    {
        enum { T = 5, Ch = 2 };
        float x[T * Ch], w[Ch * K] = {1, 2, 3, 4, 1, 2, 3, 4}, y[T * Ch], win_out[Ch * (K - 1)];
        for (int t = 0; t < T; t++) x[t * Ch] = (float)(t + 1), x[t * Ch + 1] = -(float)(t + 1);
        int32_t cu[2] = {0, T};
        conv1d_silu_forward(y, win_out, x, w, NULL, cu, 1, T, Ch, K);
        const double pre[T] = {4, 11, 20, 30, 40};
        float want[T * Ch], want_win[Ch * (K - 1)] = {3, 4, 5, -3, -4, -5};
        for (int t = 0; t < T; t++) want[t * Ch] = (float)silu_d(pre[t]), want[t * Ch + 1] = (float)silu_d(-pre[t]);
        // integer pre-activations are exact; one expf and one division: 1e-6 relative
        fails += check_close("conv1d hand y", y, want, T * Ch, 0.0f, 1e-6f);
        fails += check_close("conv1d hand window_out", win_out, want_win, Ch * (K - 1), 0.0f, 0.0f);
    }
    // A one-token document after a window (1, 2, 3), x = 4: pre = 1 + 4 + 9 + 16 = 30, and the new
    // window (2, 3, 4) written over the old one in place.
    {
        float x[1] = {4}, w[K] = {1, 2, 3, 4}, win[K - 1] = {1, 2, 3}, y[1];
        int32_t cu[2] = {0, 1};
        conv1d_silu_forward(y, win, x, w, win, cu, 1, 1, 1, K);
        float want_y[1] = {(float)silu_d(30)}, want_win[K - 1] = {2, 3, 4};
        fails += check_close("conv1d hand decode y", y, want_y, 1, 0.0f, 1e-6f);
        fails += check_close("conv1d hand decode window", win, want_win, K - 1, 0.0f, 0.0f);
    }

    // Random packed documents (one shorter than K − 1, so its window_out mixes window_in and x) must
    // equal each document run on its own; the window written by a prefix, fed to the continuation,
    // must reproduce the whole run. Both are the same arithmetic in the same order, so exact.
    enum { Ch = 6, ND = 3, T = 12 };
    const int lens[ND] = {5, 1, 6};
    int32_t cu[ND + 1] = {0, 5, 6, 12};
    hy_rng r;
    hy_rng_init(&r, 31);
    float *x = new_zeros(T * Ch), *w = new_zeros(Ch * K), *win = new_zeros(ND * Ch * (K - 1));
    float *y = new_zeros(T * Ch), *wout = new_zeros(ND * Ch * (K - 1));
    fill_normal(&r, x, T * Ch, 1.0f);
    fill_normal(&r, w, Ch * K, 0.5f);
    fill_normal(&r, win, ND * Ch * (K - 1), 1.0f);
    fails += check_nonzero("conv1d x", x, T * Ch) + check_nonzero("conv1d window_in", win, ND * Ch * (K - 1));
    conv1d_silu_forward(y, wout, x, w, win, cu, ND, T, Ch, K);
    fails += check_nonzero("conv1d y", y, T * Ch);
    float *y1 = new_zeros(T * Ch), *w1 = new_zeros(Ch * (K - 1));
    for (int d = 0; d < ND; d++) {
        int32_t cu1[2] = {0, lens[d]};
        conv1d_silu_forward(y1, w1, x + cu[d] * Ch, w, win + d * Ch * (K - 1), cu1, 1, lens[d], Ch, K);
        fails += check_close("conv1d packed vs separate y", y + cu[d] * Ch, y1, lens[d] * Ch, 0.0f, 0.0f);
        fails += check_close("conv1d packed vs separate window", wout + d * Ch * (K - 1), w1, Ch * (K - 1), 0.0f, 0.0f);
    }
    {
        // doc 2 (6 tokens) as 2 + 4, the window carried in place
        float *wcarry = new_copy(win + 2 * Ch * (K - 1), Ch * (K - 1));
        int32_t cu_a[2] = {0, 2}, cu_b[2] = {0, 4};
        conv1d_silu_forward(y1, wcarry, x + cu[2] * Ch, w, wcarry, cu_a, 1, 2, Ch, K);
        conv1d_silu_forward(y1 + 2 * Ch, wcarry, x + (cu[2] + 2) * Ch, w, wcarry, cu_b, 1, 4, Ch, K);
        fails += check_close("conv1d prefix+continuation y", y1, y + cu[2] * Ch, 6 * Ch, 0.0f, 0.0f);
        fails +=
            check_close("conv1d prefix+continuation window", wcarry, wout + 2 * Ch * (K - 1), Ch * (K - 1), 0.0f, 0.0f);
        free(wcarry);
    }
    // window_in NULL means zeros.
    {
        float *zwin = new_zeros(ND * Ch * (K - 1)), *yz = new_zeros(T * Ch), *yn = new_zeros(T * Ch);
        conv1d_silu_forward(yz, NULL, x, w, zwin, cu, ND, T, Ch, K);
        conv1d_silu_forward(yn, NULL, x, w, NULL, cu, ND, T, Ch, K);
        fails += check_close("conv1d NULL window = zeros", yn, yz, T * Ch, 0.0f, 0.0f);
        free(zwin), free(yz), free(yn);
    }
    // Backward produces every gradient and accumulates.
    {
        float *dy = new_zeros(T * Ch), *dx = new_zeros(T * Ch), *dw = new_zeros(Ch * K);
        float *dwin = new_zeros(ND * Ch * (K - 1));
        fill_normal(&r, dy, T * Ch, 1.0f);
        conv1d_silu_backward(dx, dw, dwin, dy, x, w, win, cu, ND, T, Ch, K);
        fails += check_nonzero("conv1d dx", dx, T * Ch) + check_nonzero("conv1d dw", dw, Ch * K) +
                 check_nonzero("conv1d dwindow_in", dwin, ND * Ch * (K - 1));
        float *dx2 = new_copy(dx, T * Ch), *dw2 = new_copy(dw, Ch * K), *dwin2 = new_copy(dwin, ND * Ch * (K - 1));
        conv1d_silu_backward(dx2, dw2, dwin2, dy, x, w, win, cu, ND, T, Ch, K);
        fails += check_doubled("conv1d dx accumulates", dx2, dx, T * Ch) +
                 check_doubled("conv1d dw accumulates", dw2, dw, Ch * K) +
                 check_doubled("conv1d dwindow_in accumulates", dwin2, dwin, ND * Ch * (K - 1));
        free(dy), free(dx), free(dw), free(dwin), free(dx2), free(dw2), free(dwin2);
    }
    free(x), free(w), free(win), free(y), free(wout), free(y1), free(w1);
    return fails;
}

// Decode: three documents advanced one token per call (T = 1 per document, window_out aliasing
// window_in) must reproduce the whole-sequence outputs and final windows exactly.
static int test_conv1d_silu_step(void) {
    enum { K = 4, Ch = 5, ND = 3, LEN = 7, T = ND * LEN };
    hy_rng r;
    hy_rng_init(&r, 41);
    float *x = new_zeros(T * Ch), *w = new_zeros(Ch * K), *win0 = new_zeros(ND * Ch * (K - 1));
    float *y = new_zeros(T * Ch), *wout = new_zeros(ND * Ch * (K - 1));
    fill_normal(&r, x, T * Ch, 1.0f);
    fill_normal(&r, w, Ch * K, 0.5f);
    fill_normal(&r, win0, ND * Ch * (K - 1), 1.0f);
    int32_t cu[ND + 1];
    for (int d = 0; d <= ND; d++) cu[d] = d * LEN;
    conv1d_silu_forward(y, wout, x, w, win0, cu, ND, T, Ch, K);

    int32_t cu_step[ND + 1];
    for (int d = 0; d <= ND; d++) cu_step[d] = d;
    float *win = new_copy(win0, ND * Ch * (K - 1)), *xs = new_zeros(ND * Ch), *ys = new_zeros(ND * Ch);
    float *y_steps = new_zeros(T * Ch);
    for (int t = 0; t < LEN; t++) {
        for (int d = 0; d < ND; d++) memcpy(xs + d * Ch, x + (d * LEN + t) * Ch, Ch * sizeof(float));
        conv1d_silu_forward(ys, win, xs, w, win, cu_step, ND, ND, Ch, K);
        for (int d = 0; d < ND; d++) memcpy(y_steps + (d * LEN + t) * Ch, ys + d * Ch, Ch * sizeof(float));
    }
    int fails = check_nonzero("conv1d step y", y_steps, T * Ch);
    fails += check_close("conv1d decode vs whole y", y_steps, y, T * Ch, 0.0f, 0.0f);
    fails += check_close("conv1d decode vs whole window", win, wout, ND * Ch * (K - 1), 0.0f, 0.0f);
    free(x), free(w), free(win0), free(y), free(wout), free(win), free(xs), free(ys), free(y_steps);
    return fails;
}

typedef struct {
    float *x, *w, *win, *y, *wl;
    const int32_t *cu;
    int n_docs, T, Ch, K;
} conv_fd;

static double conv_fd_loss(void *p) {
    conv_fd *c = p;
    conv1d_silu_forward(c->y, NULL, c->x, c->w, c->win, c->cu, c->n_docs, c->T, c->Ch, c->K);
    return dot_loss(c->y, c->wl, (size_t)c->T * c->Ch);
}

static int conv_grad_case(const int32_t *cu, int n_docs, int T, uint64_t seed, const char *tag) {
    enum { Ch = 3, K = 4 };
    hy_rng r;
    hy_rng_init(&r, seed);
    size_t n_win = (size_t)n_docs * Ch * (K - 1);
    conv_fd c = {.x = new_zeros(T * Ch),
                 .w = new_zeros(Ch * K),
                 .win = new_zeros(n_win),
                 .y = new_zeros(T * Ch),
                 .wl = new_zeros(T * Ch),
                 .cu = cu,
                 .n_docs = n_docs,
                 .T = T,
                 .Ch = Ch,
                 .K = K};
    fill_normal(&r, c.x, T * Ch, 1.0f);
    fill_normal(&r, c.w, Ch * K, 0.5f);
    fill_normal(&r, c.win, n_win, 1.0f);
    fill_normal(&r, c.wl, T * Ch, 1.0f);
    float *dx = new_zeros(T * Ch), *dw = new_zeros(Ch * K), *dwin = new_zeros(n_win);
    conv1d_silu_backward(dx, dw, dwin, c.wl, c.x, c.w, c.win, cu, n_docs, T, Ch, K);
    char name[64];
    int fails = 0;
    snprintf(name, sizeof name, "%s dx", tag);
    fails += fd_check(name, c.x, dx, T * Ch, conv_fd_loss, &c, 1e-3, 1e-2);
    snprintf(name, sizeof name, "%s dw", tag);
    fails += fd_check(name, c.w, dw, Ch * K, conv_fd_loss, &c, 1e-3, 1e-2);
    snprintf(name, sizeof name, "%s dwindow_in", tag);
    fails += fd_check(name, c.win, dwin, n_win, conv_fd_loss, &c, 1e-3, 1e-2);
    free(c.x), free(c.w), free(c.win), free(c.y), free(c.wl), free(dx), free(dw), free(dwin);
    return fails;
}

static int grad_conv1d_silu(void) {
    const int32_t cu[4] = {0, 3, 4, 9};  // 3, 1 and 5 tokens: short and long against K − 1 = 3
    return conv_grad_case(cu, 3, 9, 51, "conv1d");
}

static int grad_conv1d_silu_step(void) {
    const int32_t cu[4] = {0, 1, 2, 3};  // decode shape: every input but one per document is the window
    return conv_grad_case(cu, 3, 3, 52, "conv1d step");
}

// ---- GDN gates ---------------------------------------------------------------------------------

static int test_gdn_gates(void) {
    int fails = 0;
    // Head 0: b = 0 → β = 1/2 (1 when doubled); A_log = 0, a + dt_bias = 0 → g = −ln 2.
    // Head 1: b = ln 3 → β = 3/4 (3/2); A_log = ln 2, a + dt_bias = 25 > 20 → softplus is the
    //         identity, g = −2·25 = −50; token 1 has a + dt_bias = −30 → g = −2·log1p(e^−30).
    enum { T = 2, H = 2 };
    float b[T * H] = {0, logf(3), 0, logf(3)}, a[T * H] = {-1, 24, -1, -31}, A_log[H] = {0, logf(2)};
    float dt_bias[H] = {1, 1}, beta[T * H], g[T * H];
    for (int neg = 0; neg <= 1; neg++) {
        gdn_gates_forward(beta, g, b, a, A_log, dt_bias, T, H, neg);
        float s = neg ? 2.0f : 1.0f;
        float want_beta[T * H] = {0.5f * s, 0.75f * s, 0.5f * s, 0.75f * s};
        float want_g[T * H] = {-logf(2), -50.0f, -logf(2), (float)(-2 * log1p(exp(-30.0)))};
        // sigmoid, exp and log1p in fp32: a few ulp, 1e-6 relative
        fails +=
            check_close(neg ? "gates hand beta (neg eigval)" : "gates hand beta", beta, want_beta, T * H, 0.0f, 1e-6f);
        fails += check_close("gates hand g", g, want_g, T * H, 0.0f, 1e-6f);
    }
    // Above the threshold the gradient is exactly 1 (torch's softplus backward), so da = −exp(A_log)·dg.
    {
        float dg[T * H] = {0, 1, 0, 0}, da[T * H] = {0}, want = -2.0f;
        gdn_gates_backward(NULL, da, NULL, NULL, NULL, dg, b, a, A_log, dt_bias, T, H, 1);
        fails += check_close("gates threshold da", &da[1], &want, 1, 0.0f, 1e-6f);
    }

    // Random gates at model-like scales: β within [0, 2], g ≤ 0, against double evaluations.
    enum { TR = 9, HR = 4, N = TR * HR };
    hy_rng r;
    hy_rng_init(&r, 61);
    float br[N], ar[N], Al[HR], dtb[HR], betar[N], gr[N], wb[N], wg[N];
    fill_normal(&r, br, N, 3.0f);
    fill_normal(&r, ar, N, 3.0f);
    ar[5] = 40.0f;  // one token past the softplus threshold
    fill_uniform(&r, Al, HR, logf(1.0f), logf(16.0f));
    fill_uniform(&r, dtb, HR, -4.0f, 0.5f);
    gdn_gates_forward(betar, gr, br, ar, Al, dtb, TR, HR, 1);
    for (int i = 0; i < N; i++) {
        double x = (double)ar[i] + dtb[i % HR];
        wb[i] = (float)(2.0 * sigmoid_d(br[i]));
        wg[i] = (float)(-exp((double)Al[i % HR]) * (x > 20 ? x : log1p(exp(x))));
    }
    // fp32 vs double evaluation of a few transcendental functions: 2e-6 relative
    fails += check_close("gates random beta", betar, wb, N, 0.0f, 2e-6f);
    fails += check_close("gates random g", gr, wg, N, 0.0f, 2e-6f);
    fails += check_nonzero("gates beta", betar, N) + check_nonzero("gates g", gr, N);
    for (int i = 0; i < N; i++)
        if (!(betar[i] >= 0.0f && betar[i] <= 2.0f && gr[i] <= 0.0f)) {
            fprintf(stderr, "  gates: out of domain at %d: beta %g g %g\n", i, betar[i], gr[i]);
            fails++;
        }
    float dbeta[N], dgr[N], db[N] = {0}, da[N] = {0}, dAl[HR] = {0}, ddt[HR] = {0};
    fill_normal(&r, dbeta, N, 1.0f);
    fill_normal(&r, dgr, N, 1.0f);
    gdn_gates_backward(db, da, dAl, ddt, dbeta, dgr, br, ar, Al, dtb, TR, HR, 1);
    float db2[N], da2[N], dAl2[HR], ddt2[HR];
    memcpy(db2, db, sizeof db);
    memcpy(da2, da, sizeof da);
    memcpy(dAl2, dAl, sizeof dAl);
    memcpy(ddt2, ddt, sizeof ddt);
    gdn_gates_backward(db2, da2, dAl2, ddt2, dbeta, dgr, br, ar, Al, dtb, TR, HR, 1);
    fails += check_doubled("gates db accumulates", db2, db, N) + check_doubled("gates da accumulates", da2, da, N) +
             check_doubled("gates dA_log accumulates", dAl2, dAl, HR) +
             check_doubled("gates ddt_bias accumulates", ddt2, ddt, HR);
    return fails;
}

typedef struct {
    float *b, *a, *A_log, *dt_bias, *beta, *g, *wb, *wg;
    int T, H, neg;
} gates_fd;

static double gates_fd_loss(void *p) {
    gates_fd *c = p;
    gdn_gates_forward(c->beta, c->g, c->b, c->a, c->A_log, c->dt_bias, c->T, c->H, c->neg);
    size_t n = (size_t)c->T * c->H;
    return dot_loss(c->beta, c->wb, n) + dot_loss(c->g, c->wg, n);
}

static int grad_gdn_gates(void) {
    enum { T = 5, H = 3, N = T * H };
    int fails = 0;
    for (int neg = 0; neg <= 1; neg++) {
        hy_rng r;
        hy_rng_init(&r, 71 + neg);
        gates_fd c = {.b = new_zeros(N),
                      .a = new_zeros(N),
                      .A_log = new_zeros(H),
                      .dt_bias = new_zeros(H),
                      .beta = new_zeros(N),
                      .g = new_zeros(N),
                      .wb = new_zeros(N),
                      .wg = new_zeros(N),
                      .T = T,
                      .H = H,
                      .neg = neg};
        fill_normal(&r, c.b, N, 2.0f);
        fill_uniform(&r, c.a, N, -6.0f, 6.0f);
        c.a[4] = c.a[9] = 25.0f;  // the identity branch of softplus, away from the threshold's kink
        fill_uniform(&r, c.A_log, H, -1.0f, 1.0f);
        fill_uniform(&r, c.dt_bias, H, -2.0f, 0.5f);
        fill_normal(&r, c.wb, N, 1.0f);
        // g reaches −exp(1)·25 ≈ −68, so its weight is scaled down to keep the loss O(1)-conditioned
        fill_normal(&r, c.wg, N, 0.1f);
        float *db = new_zeros(N), *da = new_zeros(N), *dAl = new_zeros(H), *ddt = new_zeros(H);
        gdn_gates_backward(db, da, dAl, ddt, c.wb, c.wg, c.b, c.a, c.A_log, c.dt_bias, T, H, neg);
        fails += fd_check("gates db", c.b, db, N, gates_fd_loss, &c, 1e-3, 1e-2);
        fails += fd_check("gates da", c.a, da, N, gates_fd_loss, &c, 1e-3, 1e-2);
        fails += fd_check("gates dA_log", c.A_log, dAl, H, gates_fd_loss, &c, 1e-3, 1e-2);
        fails += fd_check("gates ddt_bias", c.dt_bias, ddt, H, gates_fd_loss, &c, 1e-3, 1e-2);
        free(c.b), free(c.a), free(c.A_log), free(c.dt_bias), free(c.beta), free(c.g), free(c.wb), free(c.wg);
        free(db), free(da), free(dAl), free(ddt);
    }
    return fails;
}

// ---- gated delta rule: shared problem setup ------------------------------------------------------

typedef void (*gdn_forward_fn)(const gdn_shape *s, float *o, float *state_out, const float *q, const float *k,
                               const float *v, const float *g, const float *beta, const float *state_in);
typedef void (*gdn_backward_fn)(const gdn_shape *s, float *dq, float *dk, float *dv, float *dg, float *dbeta,
                                float *dstate_in, const float *d_o, const float *dstate_out, const float *q,
                                const float *k, const float *v, const float *g, const float *beta,
                                const float *state_in);

enum { GDN_TEST_MAX_DOCS = 8 };

// One random gated-delta-rule problem: inputs, upstream gradients (also the FD loss weights), and
// room for one forward's outputs and one backward's gradients.
typedef struct {
    gdn_shape s;
    int32_t cu[GDN_TEST_MAX_DOCS + 1];
    size_t n_qk, n_v, n_gate, n_state;
    float *q, *k, *v, *g, *beta, *state_in;
    float *d_o, *dstate_out;
    float *o, *state_out;
    float *dq, *dk, *dv, *dg, *dbeta, *dstate_in;
} gdn_problem;

static void gdn_problem_init(gdn_problem *p, const int *doc_lens, int n_docs, int H_k, int H_v, int Dk, int Dv,
                             float g_lo, float g_hi, uint64_t seed) {
    memset(p, 0, sizeof *p);
    p->cu[0] = 0;
    for (int d = 0; d < n_docs; d++) p->cu[d + 1] = p->cu[d] + doc_lens[d];
    int T = p->cu[n_docs];
    p->s = (gdn_shape){T, n_docs, p->cu, H_k, H_v, Dk, Dv, (float)(1.0 / sqrt(Dk))};
    p->n_qk = (size_t)T * H_k * Dk;
    p->n_v = (size_t)T * H_v * Dv;
    p->n_gate = (size_t)T * H_v;
    p->n_state = (size_t)n_docs * H_v * Dk * Dv;
    hy_rng r;
    hy_rng_init(&r, seed);
    p->q = new_zeros(p->n_qk), p->k = new_zeros(p->n_qk), p->v = new_zeros(p->n_v);
    p->g = new_zeros(p->n_gate), p->beta = new_zeros(p->n_gate), p->state_in = new_zeros(p->n_state);
    p->d_o = new_zeros(p->n_v), p->dstate_out = new_zeros(p->n_state);
    p->o = new_zeros(p->n_v), p->state_out = new_zeros(p->n_state);
    p->dq = new_zeros(p->n_qk), p->dk = new_zeros(p->n_qk), p->dv = new_zeros(p->n_v);
    p->dg = new_zeros(p->n_gate), p->dbeta = new_zeros(p->n_gate), p->dstate_in = new_zeros(p->n_state);

    fill_normal(&r, p->q, p->n_qk, 1.0f);
    fill_normal(&r, p->k, p->n_qk, 1.0f);
    l2norm_forward(p->q, NULL, p->q, T * H_k, Dk, 1e-6f);
    l2norm_forward(p->k, NULL, p->k, T * H_k, Dk, 1e-6f);
    fill_normal(&r, p->v, p->n_v, 1.0f);
    // g = −exp(U(log |g_hi|, log |g_lo|)): log-uniform magnitude (see the file comment)
    for (size_t i = 0; i < p->n_gate; i++) p->g[i] = -expf(hy_rng_range(&r, logf(-g_hi), logf(-g_lo)));
    fill_uniform(&r, p->beta, p->n_gate, 0.0f, 2.0f);
    fill_normal(&r, p->state_in, p->n_state, 0.5f);
    fill_normal(&r, p->d_o, p->n_v, 1.0f);
    fill_normal(&r, p->dstate_out, p->n_state, 1.0f);
}

static void gdn_problem_free(gdn_problem *p) {
    float *bufs[] = {p->q, p->k,         p->v,  p->g,  p->beta, p->state_in, p->d_o,   p->dstate_out,
                     p->o, p->state_out, p->dq, p->dk, p->dv,   p->dg,       p->dbeta, p->dstate_in};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
}

static void gdn_run_forward(gdn_problem *p, gdn_forward_fn f) {
    f(&p->s, p->o, p->state_out, p->q, p->k, p->v, p->g, p->beta, p->state_in);
}

static void gdn_run_backward(gdn_problem *p, gdn_backward_fn f) {
    f(&p->s, p->dq, p->dk, p->dv, p->dg, p->dbeta, p->dstate_in, p->d_o, p->dstate_out, p->q, p->k, p->v, p->g, p->beta,
      p->state_in);
}

static int gdn_check_inputs_nonzero(const gdn_problem *p) {
    return check_nonzero("gdn q", p->q, p->n_qk) + check_nonzero("gdn k", p->k, p->n_qk) +
           check_nonzero("gdn v", p->v, p->n_v) + check_nonzero("gdn g", p->g, p->n_gate) +
           check_nonzero("gdn beta", p->beta, p->n_gate) + check_nonzero("gdn state_in", p->state_in, p->n_state);
}

// ---- gated delta rule: structured and self-consistency checks --------------------------------------

// Three tokens, Dk = Dv = 2, scale 1/2, worked by hand from the definition:
//   t0: k = e1, v = (1, 2), β = 1, g = 0:       S = [[1, 2], [0, 0]],           o = ½·Sᵀe1 = (0.5, 1)
//   t1: k = e2, v = (3, 4), β = ½, g = ln ½:    S ← ½S; Sᵀe2 = 0, u = (1.5, 2);
//                                               S = [[0.5, 1], [1.5, 2]],       o = ½·Sᵀe1 = (0.25, 0.5)
//   t2: k = e1, v = (0, 0), β = 2, g = 0:       u = 2·(0 − Sᵀe1) = (−1, −2), a reflection of row 1:
//                                               S = [[−0.5, −1], [1.5, 2]],     o = ½·Sᵀe2 = (0.75, 1)
static int gdn_hand_case(gdn_forward_fn f, const char *tag) {
    int32_t cu[2] = {0, 3};
    gdn_shape s = {3, 1, cu, 1, 1, 2, 2, 0.5f};
    float q[6] = {1, 0, 1, 0, 0, 1}, k[6] = {1, 0, 0, 1, 1, 0}, v[6] = {1, 2, 3, 4, 0, 0};
    float g[3] = {0, logf(0.5f), 0}, beta[3] = {1, 0.5f, 2}, o[6], S[4];
    f(&s, o, S, q, k, v, g, beta, NULL);
    float want_o[6] = {0.5f, 1, 0.25f, 0.5f, 0.75f, 1}, want_S[4] = {-0.5f, -1, 1.5f, 2};
    char name[64];
    // exact but for expf(logf(0.5)) (one ulp off 0.5 at most): 1e-6 absolute on O(1) values
    snprintf(name, sizeof name, "%s hand o", tag);
    int fails = check_close(name, o, want_o, 6, 1e-6f, 0.0f);
    snprintf(name, sizeof name, "%s hand state", tag);
    fails += check_close(name, S, want_S, 4, 1e-6f, 0.0f);
    return fails;
}

// Packed documents equal one document at a time (with its slice of state_in); a document split in
// two with the prefix's state_out as the continuation's state_in equals the whole run; state_out
// may alias state_in. Same function, same arithmetic per document: exact, except where the split
// moves chunk boundaries (tolerance below).
static int gdn_consistency(gdn_forward_fn f, const char *tag, const gdn_problem *p, float rel) {
    int fails = 0;
    const gdn_shape *s = &p->s;
    size_t per_doc_state = (size_t)s->H_v * s->Dk * s->Dv;
    float *o1 = new_zeros(p->n_v), *st1 = new_zeros(per_doc_state), *st2 = new_zeros(per_doc_state);
    char name[96];
    for (int d = 0; d < s->n_docs; d++) {
        int t0 = s->cu_seqlens[d], len = s->cu_seqlens[d + 1] - t0;
        int32_t cu1[2] = {0, len};
        gdn_shape s1 = *s;
        s1.T = len, s1.n_docs = 1, s1.cu_seqlens = cu1;
        size_t qk0 = (size_t)t0 * s->H_k * s->Dk, v0 = (size_t)t0 * s->H_v * s->Dv, g0 = (size_t)t0 * s->H_v;
        f(&s1, o1, st1, p->q + qk0, p->k + qk0, p->v + v0, p->g + g0, p->beta + g0, p->state_in + d * per_doc_state);
        snprintf(name, sizeof name, "%s packed vs separate o (doc %d)", tag, d);
        fails += check_close(name, p->o + v0, o1, (size_t)len * s->H_v * s->Dv, 0.0f, 0.0f);
        snprintf(name, sizeof name, "%s packed vs separate state (doc %d)", tag, d);
        fails += check_close(name, p->state_out + d * per_doc_state, st1, per_doc_state, 0.0f, 0.0f);

        if (len < 2) continue;
        // split at 37: an odd prefix, so the continuation's chunks start 37 tokens later than the
        // whole run's; st2 is first the prefix's state_in, then updated in place (aliasing)
        int cut = len > 37 ? 37 : len / 2;
        int32_t cu_a[2] = {0, cut}, cu_b[2] = {0, len - cut};
        gdn_shape sa = s1, sb = s1;
        sa.T = cut, sa.cu_seqlens = cu_a;
        sb.T = len - cut, sb.cu_seqlens = cu_b;
        memcpy(st2, p->state_in + d * per_doc_state, per_doc_state * sizeof(float));
        f(&sa, o1, st2, p->q + qk0, p->k + qk0, p->v + v0, p->g + g0, p->beta + g0, st2);
        size_t qk1 = qk0 + (size_t)cut * s->H_k * s->Dk, v1 = v0 + (size_t)cut * s->H_v * s->Dv;
        size_t g1 = g0 + (size_t)cut * s->H_v;
        f(&sb, o1 + (size_t)cut * s->H_v * s->Dv, st2, p->q + qk1, p->k + qk1, p->v + v1, p->g + g1, p->beta + g1, st2);
        snprintf(name, sizeof name, "%s prefix+continuation o (doc %d)", tag, d);
        fails += check_scaled(name, o1, p->o + v0, (size_t)len * s->H_v * s->Dv, rel);
        snprintf(name, sizeof name, "%s prefix+continuation state (doc %d)", tag, d);
        fails += check_scaled(name, st2, p->state_out + d * per_doc_state, per_doc_state, rel);
    }
    free(o1), free(st1), free(st2);
    return fails;
}

// Decode: ND documents of LEN tokens advanced one token per call, state_out aliasing state_in, must
// equal the whole-sequence run (for the recurrence the same arithmetic, so exact).
static int gdn_decode_case(gdn_forward_fn f, const char *tag, float rel) {
    enum { ND = 3, LEN = 9, H_k = 2, H_v = 4, Dk = 8, Dv = 16 };
    const int lens[ND] = {LEN, LEN, LEN};
    gdn_problem p;
    gdn_problem_init(&p, lens, ND, H_k, H_v, Dk, Dv, -20.0f, -1e-4f, 81);
    gdn_run_forward(&p, f);
    int32_t cu[ND + 1] = {0, 1, 2, 3};
    gdn_shape s1 = p.s;
    s1.T = ND, s1.cu_seqlens = cu;
    float *state = new_copy(p.state_in, p.n_state), *o_steps = new_zeros(p.n_v);
    float *q = new_zeros(ND * H_k * Dk), *k = new_zeros(ND * H_k * Dk), *v = new_zeros(ND * H_v * Dv);
    float *g = new_zeros(ND * H_v), *beta = new_zeros(ND * H_v), *o = new_zeros(ND * H_v * Dv);
    for (int t = 0; t < LEN; t++) {
        for (int d = 0; d < ND; d++) {
            int tok = d * LEN + t;
            memcpy(q + d * H_k * Dk, p.q + tok * H_k * Dk, H_k * Dk * sizeof(float));
            memcpy(k + d * H_k * Dk, p.k + tok * H_k * Dk, H_k * Dk * sizeof(float));
            memcpy(v + d * H_v * Dv, p.v + tok * H_v * Dv, H_v * Dv * sizeof(float));
            memcpy(g + d * H_v, p.g + tok * H_v, H_v * sizeof(float));
            memcpy(beta + d * H_v, p.beta + tok * H_v, H_v * sizeof(float));
        }
        f(&s1, o, state, q, k, v, g, beta, state);
        for (int d = 0; d < ND; d++)
            memcpy(o_steps + (d * LEN + t) * H_v * Dv, o + d * H_v * Dv, H_v * Dv * sizeof(float));
    }
    char name[64];
    snprintf(name, sizeof name, "%s decode vs whole o", tag);
    int fails = check_scaled(name, o_steps, p.o, p.n_v, rel);
    snprintf(name, sizeof name, "%s decode vs whole state", tag);
    fails += check_scaled(name, state, p.state_out, p.n_state, rel);
    free(state), free(o_steps), free(q), free(k), free(v), free(g), free(beta), free(o);
    gdn_problem_free(&p);
    return fails;
}

// The ragged shape used throughout: documents of 70, 1 and 130 tokens (chunks of 64 cross no
// document boundary but leave partial chunks of 6 and 2), H_k = 2 key heads read by H_v = 4 value heads.
static const int ragged_lens[3] = {70, 1, 130};

static int test_gdn_recurrent(void) {
    int fails = gdn_hand_case(gdn_recurrent_forward, "recurrent");
    gdn_problem p;
    gdn_problem_init(&p, ragged_lens, 3, 2, 4, 8, 16, -20.0f, -1e-4f, 91);
    fails += gdn_check_inputs_nonzero(&p);
    gdn_run_forward(&p, gdn_recurrent_forward);
    fails += check_nonzero("recurrent o", p.o, p.n_v) + check_nonzero("recurrent state_out", p.state_out, p.n_state);
    // The recurrence is token-serial, so a split changes nothing in its arithmetic: exact.
    fails += gdn_consistency(gdn_recurrent_forward, "recurrent", &p, 0.0f);
    fails += gdn_decode_case(gdn_recurrent_forward, "recurrent", 0.0f);

    // Backward: every gradient non-zero, and accumulating.
    gdn_run_backward(&p, gdn_recurrent_backward);
    fails += check_nonzero("recurrent dq", p.dq, p.n_qk) + check_nonzero("recurrent dk", p.dk, p.n_qk) +
             check_nonzero("recurrent dv", p.dv, p.n_v) + check_nonzero("recurrent dg", p.dg, p.n_gate) +
             check_nonzero("recurrent dbeta", p.dbeta, p.n_gate) +
             check_nonzero("recurrent dstate_in", p.dstate_in, p.n_state);
    float *once = new_copy(p.dg, p.n_gate), *once_dk = new_copy(p.dk, p.n_qk);
    gdn_run_backward(&p, gdn_recurrent_backward);
    fails += check_doubled("recurrent dg accumulates", p.dg, once, p.n_gate);
    fails += check_doubled("recurrent dk accumulates", p.dk, once_dk, p.n_qk);
    free(once), free(once_dk);
    gdn_problem_free(&p);
    return fails;
}

// Compares two backward results gradient by gradient (a against reference b).
static int gdn_compare_grads(const char *tag, const gdn_problem *a, const gdn_problem *b, float rel) {
    struct {
        const char *name;
        const float *x, *y;
        size_t n;
    } g[] = {{"dq", a->dq, b->dq, a->n_qk},
             {"dk", a->dk, b->dk, a->n_qk},
             {"dv", a->dv, b->dv, a->n_v},
             {"dg", a->dg, b->dg, a->n_gate},
             {"dbeta", a->dbeta, b->dbeta, a->n_gate},
             {"dstate_in", a->dstate_in, b->dstate_in, a->n_state}};
    int fails = 0;
    char name[96];
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        snprintf(name, sizeof name, "%s %s", tag, g[i].name);
        fails += check_scaled(name, g[i].x, g[i].y, g[i].n, rel);
    }
    return fails;
}

// Chunked vs recurrent: both are fp32 evaluations of the same function in different orders. Over
// 30 seeds of each g regime below (and a very slow one, g ∈ [−1e-3, −1e-4]) the largest difference
// was 1.1e-6 of max|ref| for outputs and states and 1.9e-6 for gradients (dg and dk, sums of many
// cancelling terms, are the loosest); 1e-5 (check_scaled) leaves 5× room, and still fails when any
// single backward term is dropped or g is scaled by 1.001 in the chunked code (both tried).
static const float gdn_chunked_rel = 1e-5f;

// Chunked vs recurrent, forward and backward, on one problem (both copies share inputs and seeds).
static int gdn_chunked_vs_recurrent(const char *tag, const int *lens, int n_docs, int H_k, int H_v, int Dk, int Dv,
                                    float g_lo, float g_hi, uint64_t seed, int with_backward) {
    gdn_problem c, r;
    gdn_problem_init(&c, lens, n_docs, H_k, H_v, Dk, Dv, g_lo, g_hi, seed);
    gdn_problem_init(&r, lens, n_docs, H_k, H_v, Dk, Dv, g_lo, g_hi, seed);
    int fails = gdn_check_inputs_nonzero(&c);
    gdn_run_forward(&c, gdn_chunked_forward);
    gdn_run_forward(&r, gdn_recurrent_forward);
    char name[96];
    fails += check_nonzero("chunked o", c.o, c.n_v) + check_nonzero("chunked state_out", c.state_out, c.n_state);
    snprintf(name, sizeof name, "%s o", tag);
    fails += check_scaled(name, c.o, r.o, c.n_v, gdn_chunked_rel);
    snprintf(name, sizeof name, "%s state_out", tag);
    fails += check_scaled(name, c.state_out, r.state_out, c.n_state, gdn_chunked_rel);
    if (with_backward) {
        gdn_run_backward(&c, gdn_chunked_backward);
        gdn_run_backward(&r, gdn_recurrent_backward);
        fails += check_nonzero("chunked dq", c.dq, c.n_qk) + check_nonzero("chunked dk", c.dk, c.n_qk) +
                 check_nonzero("chunked dv", c.dv, c.n_v) + check_nonzero("chunked dg", c.dg, c.n_gate) +
                 check_nonzero("chunked dbeta", c.dbeta, c.n_gate) +
                 check_nonzero("chunked dstate_in", c.dstate_in, c.n_state);
        fails += gdn_compare_grads(tag, &c, &r, gdn_chunked_rel);
    }
    gdn_problem_free(&c);
    gdn_problem_free(&r);
    return fails;
}

static int test_gdn_chunked(void) {
    int fails = gdn_hand_case(gdn_chunked_forward, "chunked");
    // The model's domain, then slow and near-zero decays only (state carried across every chunk
    // boundary, the regime where a wrong inter-chunk term would show most).
    fails += gdn_chunked_vs_recurrent("chunked vs recurrent", ragged_lens, 3, 2, 4, 8, 16, -20.0f, -1e-4f, 101, 1);
    fails += gdn_chunked_vs_recurrent("chunked vs recurrent (slow decay)", ragged_lens, 3, 2, 4, 8, 16, -0.05f, -1e-4f,
                                      102, 1);
    fails += gdn_chunked_vs_recurrent("chunked vs recurrent (near-zero decay)", ragged_lens, 3, 2, 4, 8, 16, -1e-3f,
                                      -1e-4f, 107, 1);
    // Batch of one document, H_v = H_k, exactly two full chunks.
    const int one_doc[1] = {128};
    fails += gdn_chunked_vs_recurrent("chunked vs recurrent (1 doc)", one_doc, 1, 1, 1, 8, 16, -20.0f, -1e-4f, 103, 1);
    // The model's head dims, forward only (backward at this size is covered by the shapes above).
    const int big[2] = {130, 20};
    fails +=
        gdn_chunked_vs_recurrent("chunked vs recurrent (Dk 96, Dv 192)", big, 2, 1, 2, 96, 192, -20.0f, -1e-4f, 104, 0);

    gdn_problem p;
    gdn_problem_init(&p, ragged_lens, 3, 2, 4, 8, 16, -20.0f, -1e-4f, 105);
    gdn_run_forward(&p, gdn_chunked_forward);
    // Splitting a document at 37 moves every later chunk boundary, so the continuation is a
    // different fp32 evaluation; same tolerance as chunked vs recurrent.
    fails += gdn_consistency(gdn_chunked_forward, "chunked", &p, gdn_chunked_rel);
    // one-token chunks against 9-token chunks: a different evaluation order, chunked-vs-recurrent tolerance
    fails += gdn_decode_case(gdn_chunked_forward, "chunked", gdn_chunked_rel);

    // NULL state_in (zeros), NULL dstate_out, only some gradients requested; and accumulation.
    {
        gdn_problem z;
        gdn_problem_init(&z, ragged_lens, 3, 2, 4, 8, 16, -20.0f, -1e-4f, 106);
        float *o_c = new_zeros(z.n_v), *dg_c = new_zeros(z.n_gate), *dv_c = new_zeros(z.n_v);
        gdn_chunked_forward(&z.s, o_c, NULL, z.q, z.k, z.v, z.g, z.beta, NULL);
        gdn_recurrent_forward(&z.s, z.o, NULL, z.q, z.k, z.v, z.g, z.beta, NULL);
        fails += check_scaled("chunked vs recurrent o (no state)", o_c, z.o, z.n_v, gdn_chunked_rel);
        gdn_chunked_backward(&z.s, NULL, NULL, dv_c, dg_c, NULL, NULL, z.d_o, NULL, z.q, z.k, z.v, z.g, z.beta, NULL);
        gdn_recurrent_backward(&z.s, NULL, NULL, z.dv, z.dg, NULL, NULL, z.d_o, NULL, z.q, z.k, z.v, z.g, z.beta, NULL);
        fails += check_nonzero("chunked dg (no state)", dg_c, z.n_gate);
        fails += check_scaled("chunked vs recurrent dg (no state)", dg_c, z.dg, z.n_gate, gdn_chunked_rel);
        fails += check_scaled("chunked vs recurrent dv (no state)", dv_c, z.dv, z.n_v, gdn_chunked_rel);
        float *once = new_copy(dg_c, z.n_gate);
        gdn_chunked_backward(&z.s, NULL, NULL, NULL, dg_c, NULL, NULL, z.d_o, NULL, z.q, z.k, z.v, z.g, z.beta, NULL);
        fails += check_doubled("chunked dg accumulates", dg_c, once, z.n_gate);
        free(o_c), free(dg_c), free(dv_c), free(once);
        gdn_problem_free(&z);
    }
    gdn_problem_free(&p);
    return fails;
}

// ---- gated delta rule: finite differences ------------------------------------------------------

typedef struct {
    gdn_problem *p;
    gdn_forward_fn f;
} gdn_fd;

static double gdn_fd_loss(void *ctx) {
    gdn_fd *c = ctx;
    gdn_run_forward(c->p, c->f);
    return dot_loss(c->p->o, c->p->d_o, c->p->n_v) + dot_loss(c->p->state_out, c->p->dstate_out, c->p->n_state);
}

// Documents of 66, 1 and 4 tokens (the first crosses a chunk / checkpoint boundary), H_k = 1 read
// by H_v = 2, Dk = Dv = 4; loss Σ d_o·o + Σ dstate_out·state_out, so the gradient flows through
// dstate_out as well. g ∈ [−2, −0.05] (see the file comment).
static int gdn_grad_case(gdn_forward_fn f, gdn_backward_fn b, const char *tag) {
    const int lens[3] = {66, 1, 4};
    gdn_problem p;
    gdn_problem_init(&p, lens, 3, 1, 2, 4, 4, -2.0f, -0.05f, 111);
    gdn_run_backward(&p, b);
    gdn_fd c = {&p, f};
    struct {
        const char *name;
        float *x, *grad;
        size_t n;
    } in[] = {{"dq", p.q, p.dq, p.n_qk},
              {"dk", p.k, p.dk, p.n_qk},
              {"dv", p.v, p.dv, p.n_v},
              {"dg", p.g, p.dg, p.n_gate},
              {"dbeta", p.beta, p.dbeta, p.n_gate},
              {"dstate_in", p.state_in, p.dstate_in, p.n_state}};
    int fails = 0;
    char name[64];
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        snprintf(name, sizeof name, "%s %s", tag, in[i].name);
        fails += fd_check(name, in[i].x, in[i].grad, in[i].n, gdn_fd_loss, &c, 1e-3, 1e-2);
    }
    gdn_problem_free(&p);
    return fails;
}

static int grad_gdn_recurrent(void) {
    return gdn_grad_case(gdn_recurrent_forward, gdn_recurrent_backward, "recurrent");
}

static int grad_gdn_chunked(void) { return gdn_grad_case(gdn_chunked_forward, gdn_chunked_backward, "chunked"); }

// ---- registry ----------------------------------------------------------------------------------

const op_test_entry gdn_op_tests[] = {
    {"l2norm", test_l2norm, grad_l2norm},
    {"gated_rmsnorm", test_gated_rmsnorm, grad_gated_rmsnorm},
    {"conv1d_silu", test_conv1d_silu, grad_conv1d_silu},
    {"conv1d_silu_step", test_conv1d_silu_step, grad_conv1d_silu_step},
    {"gdn_gates", test_gdn_gates, grad_gdn_gates},
    {"gdn_recurrent", test_gdn_recurrent, grad_gdn_recurrent},
    {"gdn_chunked", test_gdn_chunked, grad_gdn_chunked},
    {NULL, NULL, NULL},
};
