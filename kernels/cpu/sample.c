// Plain sampling from one row of logits (see ops_cpu.h): the host reference of the CUDA kernel and
// the path rollout/sampler.c takes when neither top-k nor top-p is set.
#include <math.h>

#include "../ops_cpu.h"

// log Σ exp(scale·x). Single-precision exponentials summed in float blocks of 256, the blocks in
// double: good to ~1e-6 absolute, far inside what a bf16 model's logits carry, and a fraction of
// the cost of double exponentials — this runs over a 100k-entry row for every sampled token.
double row_log_sum_exp(const float *x, int n, float scale) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = fmaxf(mx, x[i] * scale);
    double s = 0.0;
    for (int i0 = 0; i0 < n; i0 += 256) {
        const int i1 = i0 + 256 < n ? i0 + 256 : n;
        float part = 0.0f;
        for (int i = i0; i < i1; i++) part += expf(x[i] * scale - mx);
        s += part;
    }
    return mx + log(s);
}

void sample_row(const float *logits, int V, float temperature, double u, int32_t *token, float *logprob,
                float *model_logprob) {
    const double lse = row_log_sum_exp(logits, V, 1.0f);
    if (temperature <= 0.0f) {
        int best = 0;
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        *token = best;
        *model_logprob = *logprob = (float)(logits[best] - lse);
        return;
    }
    const float inv_t = 1.0f / temperature;
    const double lse_t = inv_t == 1.0f ? lse : row_log_sum_exp(logits, V, inv_t);  // RL samples at T = 1
    const float lse_tf = (float)lse_t;
    double acc = 0.0;
    int pick = V - 1;
    for (int i = 0; i < V; i++) {
        acc += expf(logits[i] * inv_t - lse_tf);
        if (u < acc) {
            pick = i;
            break;
        }
    }
    *token = pick;
    *logprob = (float)(logits[pick] * inv_t - lse_t);
    *model_logprob = (float)(logits[pick] - lse);
}
