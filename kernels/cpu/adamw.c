// AdamW step and gradient-norm clipping, reproducing PyTorch's arithmetic to the rounding step.
//
// adamw_step is torch.optim.AdamW's single-tensor (foreach=False, capturable=False) path for fp32
// tensors, operation by operation, because end-to-end parity runs compare parameters after several
// steps against PyTorch and any reordering shows up there. The rounding points mirrored:
//   p   = p · (float)(1 − lr·wd)                     param.mul_, the scalar formed in double
//   m   = fma(w, g − m, m), w = (float)(1 − β1)      exp_avg.lerp_: torch's lerp is m + w·(g − m)
//         (or g − (g − m)·(1 − w) when |w| ≥ 0.5), and its vectorised CPU code fuses it (fmadd)
//   v   = fma((1 − β2)·g, g, v·β2)                    mul_, then addcmul_ (v + (1 − β2)·g·g), whose
//         multiply-add PyTorch's CPU build fuses: recorded torch results match only the fused form
//   bc1 = 1 − β1^t, bc2 = 1 − β2^t, step_size = lr / bc1, sqrt(bc2)       all in double (Python)
//   den = sqrt(v) / (float)sqrt(bc2) + (float)eps    exp_avg_sq.sqrt() / scalar (a true division on
//         CPU; torch's CUDA build multiplies by the reciprocal instead), then add_
//   p   = p + ((float)(−step_size) · m) / den        addcdiv_
// Hyperparameters are doubles, as in Python, so that these scalars are the same numbers PyTorch
// forms. Checked bit for bit against torch 2.11 on CPU (tests/ops/test_dense_ops.c).
//
// grad_clip_coef mirrors torch.nn.utils.clip_grad_norm_: the total norm is an fp32 tensor there,
// max_norm / (norm + 1e-6) is evaluated as reciprocal-then-multiply (Tensor.__rtruediv__), and the
// coefficient is clamped to 1 and always applied.
#include "../ops_cpu.h"

#include <math.h>

void adamw_step(float *p, float *m, float *v, const float *grad, size_t n, const adamw_params *hp, int step,
                int apply_decay) {
    double lr = hp->lr, beta1 = hp->beta1, beta2 = hp->beta2;
    double wd = apply_decay ? hp->weight_decay : 0.0;
    float decay = (float)(1.0 - lr * wd);
    float w = (float)(1.0 - beta1);
    float b2 = (float)beta2, one_minus_b2 = (float)(1.0 - beta2);
    double bias_correction1 = 1.0 - pow(beta1, step);
    double bias_correction2 = 1.0 - pow(beta2, step);
    float neg_step_size = (float)-(lr / bias_correction1);
    float bc2_sqrt = (float)sqrt(bias_correction2);
    float eps = (float)hp->eps;
    int small_weight = fabsf(w) < 0.5f;
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        if (wd != 0.0) p[i] *= decay;
        m[i] = small_weight ? fmaf(w, g - m[i], m[i]) : fmaf(w - 1.0f, g - m[i], g);
        v[i] = fmaf(one_minus_b2 * g, g, v[i] * b2);
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] = p[i] + neg_step_size * m[i] / denom;
    }
}

double grad_sumsq(const float *g, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return s;
}

float grad_clip_coef(double total_norm, float max_norm) {
    float denom = (float)total_norm + 1e-6f;
    float coef = (1.0f / denom) * max_norm;
    return coef < 1.0f ? coef : 1.0f;
}

void grad_scale(float *g, size_t n, float coef) {
    for (size_t i = 0; i < n; i++) g[i] *= coef;
}
