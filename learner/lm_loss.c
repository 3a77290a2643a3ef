// Chunked lm_head + cross-entropy (see lm_loss.h).
#include "lm_loss.h"

#include <stdlib.h>

#include "../common/hy_error.h"
#include "../kernels/ops_cpu.h"

enum { ROW_CHUNK = 64 };

double lm_loss_mean_ce(const float *xf, const float *lm_head, const int32_t *targets, int T, int C, int V,
                       float *dxf, float *dlm_head) {
    int n_targets = 0;
    for (int t = 0; t < T; t++) n_targets += targets[t] >= 0;
    if (n_targets == 0) return 0.0;
    float *logits = hy_malloc(sizeof(float) * (size_t)ROW_CHUNK * V);
    float *dlogits = hy_malloc(sizeof(float) * (size_t)ROW_CHUNK * V);
    float lse[ROW_CHUNK], logp[ROW_CHUNK], dlogp[ROW_CHUNK];
    double total = 0.0;
    for (int t0 = 0; t0 < T; t0 += ROW_CHUNK) {
        const int rows = T - t0 < ROW_CHUNK ? T - t0 : ROW_CHUNK;
        linear_forward(logits, xf + (size_t)t0 * C, lm_head, rows, C, V);
        logprobs_forward(logp, lse, logits, targets + t0, rows, V);
        for (int r = 0; r < rows; r++) {
            if (targets[t0 + r] >= 0) total -= logp[r];
            dlogp[r] = -1.0f / (float)n_targets;
        }
        if (!dxf && !dlm_head) continue;
        for (size_t i = 0; i < (size_t)rows * V; i++) dlogits[i] = 0.0f;
        logprobs_backward(dlogits, dlogp, logits, lse, targets + t0, rows, V);
        linear_backward(dxf ? dxf + (size_t)t0 * C : NULL, dlm_head, dlogits, xf + (size_t)t0 * C, lm_head, rows, C,
                        V);
    }
    free(logits);
    free(dlogits);
    return total / n_targets;
}
