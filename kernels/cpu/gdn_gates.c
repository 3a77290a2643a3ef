// GDN gates: the per-token, per-value-head write strength β and log decay g.
//   β = sigmoid(b), doubled when allow_neg_eigval (β ∈ [0, 2] lets I − β·k·kᵀ have a negative
//       eigenvalue, the OLMo Hybrid setting);
//   g = −exp(A_log) · softplus(a + dt_bias), always ≤ 0, computed in fp32 as HF does.
// softplus follows torch exactly (beta 1, threshold 20): the identity above 20, in forward and in
// backward (torch's gradient is then exactly 1, not sigmoid(x)). dA_log and ddt_bias are sums over
// all T tokens and are accumulated in double.
#include "../ops_cpu.h"

#include <math.h>
#include <stdlib.h>

#include "../../common/hy_error.h"

enum { SOFTPLUS_THRESHOLD = 20 };

static float softplus(float x) { return x > SOFTPLUS_THRESHOLD ? x : log1pf(expf(x)); }
static float softplus_grad(float x) { return x > SOFTPLUS_THRESHOLD ? 1.0f : 1.0f / (1.0f + expf(-x)); }
static float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

void gdn_gates_forward(float *beta, float *g, const float *b, const float *a, const float *A_log, const float *dt_bias,
                       int T, int H, int allow_neg_eigval) {
    float beta_scale = allow_neg_eigval ? 2.0f : 1.0f;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
            size_t i = (size_t)t * H + h;
            if (beta) beta[i] = beta_scale * sigmoid(b[i]);
            if (g) g[i] = -expf(A_log[h]) * softplus(a[i] + dt_bias[h]);
        }
}

// dβ/db = scale·σ(1 − σ);  dg/dA_log = g itself;  dg/da = dg/ddt_bias = −exp(A_log)·softplus'(a + dt_bias).
void gdn_gates_backward(float *db, float *da, float *dA_log, float *ddt_bias, const float *dbeta, const float *dg,
                        const float *b, const float *a, const float *A_log, const float *dt_bias, int T, int H,
                        int allow_neg_eigval) {
    float beta_scale = allow_neg_eigval ? 2.0f : 1.0f;
    double *acc = hy_calloc(2 * (size_t)H, sizeof(double));  // dA_log (H), then ddt_bias (H)
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
            size_t i = (size_t)t * H + h;
            if (db && dbeta) {
                float s = sigmoid(b[i]);
                db[i] += dbeta[i] * beta_scale * s * (1.0f - s);
            }
            if (!dg) continue;
            float x = a[i] + dt_bias[h];
            float A = expf(A_log[h]);
            acc[h] += (double)dg[i] * (-A * softplus(x));
            float dx = dg[i] * -A * softplus_grad(x);
            if (da) da[i] += dx;
            acc[H + h] += dx;
        }
    for (int h = 0; h < H; h++) {
        if (dA_log) dA_log[h] += (float)acc[h];
        if (ddt_bias) ddt_bias[h] += (float)acc[H + h];
    }
    free(acc);
}
