// L2 normalisation of rows: the q and k of the GDN sublayer, normalised over Dk before the delta
// rule. Same formula as fla and HF (eps inside the root, not a clamp on the norm), so a zero row
// maps to zero instead of NaN. The squared norm is accumulated in double: it is the only reduction
// and a long row (Dk = 96 or more) would otherwise drift from the oracle in the last bits.
#include "../ops_cpu.h"

#include <math.h>

// y (N, D) =, rnorm (N) = 1 / sqrt(Σx² + eps); rnorm may be NULL when no backward follows.
void l2norm_forward(float *y, float *rnorm, const float *x, int N, int D, float eps) {
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D;
        float *yr = y + (size_t)n * D;
        double ss = 0.0;
        for (int d = 0; d < D; d++) ss += (double)xr[d] * xr[d];
        float r = (float)(1.0 / sqrt(ss + eps));
        for (int d = 0; d < D; d++) yr[d] = xr[d] * r;
        if (rnorm) rnorm[n] = r;
    }
}

// With y = r·x and r = (Σx² + eps)^(-1/2): dx = r·dy − r³·(x·dy)·x. This form holds for any eps
// (it does not assume ‖y‖ = 1), which matters for rows with a tiny norm.
void l2norm_backward(float *dx, const float *dy, const float *x, const float *rnorm, int N, int D) {
    if (!dx) return;
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D;
        const float *dyr = dy + (size_t)n * D;
        float *dxr = dx + (size_t)n * D;
        double r = rnorm[n];
        double xdy = 0.0;
        for (int d = 0; d < D; d++) xdy += (double)xr[d] * dyr[d];
        double c = r * r * r * xdy;
        for (int d = 0; d < D; d++) dxr[d] += (float)(r * dyr[d] - c * xr[d]);
    }
}
