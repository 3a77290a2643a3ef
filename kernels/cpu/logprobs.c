// Token log-probabilities from logits: log_softmax gathered at the target, and its backward.
//
// lse = max + log Σ exp(x − max): each exponential in fp32 (x − max ≤ 0, so it cannot overflow for
// any logit size), their sum in double, since 100k terms summed in fp32 drift by ~1e-4 relative.
// logp = x[target] − lse is formed in double and rounded once. Rows whose target is −1 (prompt
// tokens, padding) get logp = 0 and no gradient; their lse is still written. The backward of
// logp = x_tgt − lse is onehot(tgt) − softmax(x), with softmax rebuilt from the saved lse.
#include "../ops_cpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

// A target outside [−1, V) is a bug upstream (tokenizer / data), and reading past the row would
// silently train on garbage: abort loudly, in release builds too.
static void check_target(int32_t target, int n, int V) {
    if (target >= -1 && target < V) return;
    fprintf(stderr, "logprobs: target %d of row %d outside [-1, %d)\n", (int)target, n, V);
    abort();
}

void logprobs_forward(float *logp, float *lse, const float *logits, const int32_t *targets, int N, int V) {
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        check_target(targets[n], n, V);
        float m = -INFINITY;
        for (int i = 0; i < V; i++)
            if (x[i] > m) m = x[i];
        double sum = 0.0;
        for (int i = 0; i < V; i++) sum += expf(x[i] - m);
        double l = m + log(sum);
        if (lse) lse[n] = (float)l;
        if (logp) logp[n] = targets[n] < 0 ? 0.0f : (float)((double)x[targets[n]] - l);
    }
}

void logprobs_backward(float *dlogits, const float *dlogp, const float *logits, const float *lse,
                       const int32_t *targets, int N, int V) {
    if (!dlogits) return;
    for (int n = 0; n < N; n++) {
        int32_t tgt = targets[n];
        check_target(tgt, n, V);
        if (tgt < 0) continue;
        const float *x = logits + (size_t)n * V;
        float *dx = dlogits + (size_t)n * V;
        float g = dlogp[n], l = lse[n];
        for (int i = 0; i < V; i++) dx[i] -= g * expf(x[i] - l);
        dx[tgt] += g;
    }
}
