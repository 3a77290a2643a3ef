// RMSNorm over rows of D (weight only, no bias), as OlmoHybridRMSNorm computes it in fp32:
// y = w · (x · rstd), rstd = 1 / sqrt(mean(x²) + eps).
//
// The mean of squares is accumulated in double: this is the oracle, and a long row (C = 3840) summed
// in fp32 would carry more error than the kernels it judges. rstd is saved so backward need not
// recompute it. With r = rstd and y_i = w_i·x_i·r, ∂r/∂x_j = −r³·x_j / D, so
//   dx_j = r·w_j·dy_j − (r³ / D)·x_j·Σ_i dy_i·w_i·x_i,    dw_i += dy_i·x_i·r.
#include "../ops_cpu.h"

#include <math.h>

void rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, int N, int D, float eps) {
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D;
        float *yr = y + (size_t)n * D;
        double ss = 0.0;
        for (int i = 0; i < D; i++) ss += (double)xr[i] * xr[i];
        float r = 1.0f / sqrtf((float)(ss / D) + eps);
        for (int i = 0; i < D; i++) yr[i] = w[i] * (xr[i] * r);
        if (rstd) rstd[n] = r;
    }
}

void rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w, const float *rstd,
                      int N, int D) {
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D;
        const float *gr = dy + (size_t)n * D;
        float r = rstd[n];
        if (dx) {
            double dot = 0.0;  // Σ dy·w·x, the one row reduction of the backward
            for (int i = 0; i < D; i++) dot += (double)gr[i] * w[i] * xr[i];
            float c = (float)(dot * r * r * r / D);
            float *dxr = dx + (size_t)n * D;
            for (int i = 0; i < D; i++) dxr[i] += r * w[i] * gr[i] - c * xr[i];
        }
        if (dw)
            for (int i = 0; i < D; i++) dw[i] += gr[i] * xr[i] * r;
    }
}
