// Language-model head + mean token cross-entropy, in row chunks so (T, V) fp32 logits never exist.
//
// loss = −(1/N) Σ_{t: target[t] ≥ 0} log softmax(xf[t]·lm_headᵀ)[target[t]], N = number of targets.
// The gradient goes to the final hidden state and to lm_head (both +=), ready for
// hy_model_backward_hidden. At a 100k vocabulary a chunk of 64 rows is 25 MB of logits.
#ifndef HY_LM_LOSS_H
#define HY_LM_LOSS_H

#include <stdint.h>

// xf (T, C); lm_head (V, C); targets (T), −1 = none. Returns the loss (0 when there are no
// targets); dxf (T, C) and dlm_head (V, C) += gradient of the loss (either may be NULL).
double lm_loss_mean_ce(const float *xf, const float *lm_head, const int32_t *targets, int T, int C, int V,
                       float *dxf, float *dlm_head);

#endif
