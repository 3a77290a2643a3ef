// Gated RMSNorm: the GDN output norm, y = x · rsqrt(mean(x²) + eps) · w · silu(z), one row per
// (token, value head), the weight w (D = Dv) shared by all heads. Norm first, then gate, as HF's
// OlmoHybridRMSNormGated and fla's FusedRMSNormGated do; the model uses eps = 1e-5 here, not the
// 1e-6 of the other norms, so eps is an argument. Row reductions and the dw column sums (over all
// N rows, i.e. T·H_v of them) are accumulated in double.
#include "../ops_cpu.h"

#include <math.h>
#include <stdlib.h>

#include "../../common/hy_error.h"

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

// y (N, D) =, rstd (N) = (mean(x²) + eps)^(-1/2), may be NULL when no backward follows.
void gated_rmsnorm_forward(float *y, float *rstd, const float *x, const float *z, const float *w, int N, int D,
                           float eps) {
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D, *zr = z + (size_t)n * D;
        float *yr = y + (size_t)n * D;
        double ss = 0.0;
        for (int d = 0; d < D; d++) ss += (double)xr[d] * xr[d];
        float r = (float)(1.0 / sqrt(ss / D + eps));
        for (int d = 0; d < D; d++) {
            float silu_z = (float)(zr[d] * sigmoid(zr[d]));
            yr[d] = xr[d] * r * w[d] * silu_z;
        }
        if (rstd) rstd[n] = r;
    }
}

// With n = x·r and y = n·w·silu(z):
//   dz = dy·n·w·silu'(z), silu'(z) = σ(z)·(1 + z·(1 − σ(z)));
//   dw = Σ_rows dy·n·silu(z);
//   dn = dy·w·silu(z) and, through the RMS, dx = r·(dn − n·mean(dn·n)).
void gated_rmsnorm_backward(float *dx, float *dz, float *dw, const float *dy, const float *x, const float *z,
                            const float *w, const float *rstd, int N, int D) {
    double *dw_acc = dw ? hy_calloc((size_t)D, sizeof(double)) : NULL;
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D, *zr = z + (size_t)n * D, *dyr = dy + (size_t)n * D;
        double r = rstd[n];
        double dn_dot_n = 0.0;
        for (int d = 0; d < D; d++) {
            double s = sigmoid(zr[d]);
            double silu_z = zr[d] * s;
            double nd = xr[d] * r;
            if (dz) dz[(size_t)n * D + d] += (float)(dyr[d] * nd * w[d] * s * (1.0 + zr[d] * (1.0 - s)));
            if (dw_acc) dw_acc[d] += dyr[d] * nd * silu_z;
            dn_dot_n += dyr[d] * w[d] * silu_z * nd;
        }
        if (!dx) continue;
        double mean_dn_n = dn_dot_n / D;
        for (int d = 0; d < D; d++) {
            double dn = dyr[d] * w[d] * (zr[d] * sigmoid(zr[d]));
            dx[(size_t)n * D + d] += (float)(r * (dn - xr[d] * r * mean_dn_n));
        }
    }
    if (dw_acc) {
        for (int d = 0; d < D; d++) dw[d] += (float)dw_acc[d];
        free(dw_acc);
    }
}
