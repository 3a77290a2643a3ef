// SwiGLU activation of the MLP: h = silu(gate) · up, elementwise over (N, F).
//
// silu(g) = g·σ(g) with σ(g) = 1 / (1 + exp(−g)); for very negative g, exp(−g) overflows to inf and
// σ correctly becomes 0, so no clamping is needed. Backward uses
//   ∂silu/∂g = σ(g)·(1 + g·(1 − σ(g))).
#include "../ops_cpu.h"

#include <math.h>

static float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// g / (1 + exp(−g)) rather than g·σ(g): the form torch's silu evaluates, so rounding matches it.
static float silu(float g) { return g / (1.0f + expf(-g)); }

void swiglu_forward(float *h, const float *gate, const float *up, int N, int F) {
    size_t n = (size_t)N * F;
    for (size_t i = 0; i < n; i++) h[i] = silu(gate[i]) * up[i];
}

void swiglu_backward(float *dgate, float *dup, const float *dh, const float *gate, const float *up, int N, int F) {
    size_t n = (size_t)N * F;
    for (size_t i = 0; i < n; i++) {
        float g = gate[i], s = sigmoid(g);
        if (dgate) dgate[i] += dh[i] * up[i] * s * (1.0f + g * (1.0f - s));
        if (dup) dup[i] += dh[i] * silu(g);
    }
}
