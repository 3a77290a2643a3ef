// Language-model head + mean token cross-entropy, in row chunks so (T, V) fp32 logits never exist.
//
// loss = −(1/N) Σ_{t: target[t] ≥ 0} log softmax(xf[t]·lm_headᵀ)[target[t]], N = number of targets.
// The gradient goes to the final hidden state and to lm_head (both +=), ready for
// hy_model_backward_hidden. Runs on the model's backend; at a 100k vocabulary a chunk of 64 rows
// is 25 MB of fp32 logits.
#ifndef HY_LM_LOSS_H
#define HY_LM_LOSS_H

#include <stdint.h>

#include "../model/model.h"

// xf (T, C) backend activations; targets (T) host, −1 = none. Returns the loss (0 when there are
// no targets); dxf (T, C) activations and dlm_head (V, C) fp32 += gradient of the loss (either may
// be NULL; both backend memory).
double lm_loss_mean_ce(const hy_model *m, const hy_act *xf, const int32_t *targets, int T, hy_act *dxf,
                       float *dlm_head);

#endif
