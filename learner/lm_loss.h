// Language-model head on the final hidden state, in row chunks so (T, V) fp32 logits never exist.
//
// Two uses share one chunk loop:
// - one pass, when the gradient of each token's logprob is known before the forward: mean token
//   cross-entropy (SFT, pretraining), dlogp = −1/N on every target;
// - two passes, when the loss needs the logprobs first (DPO sums them per sequence, RL forms
//   ratios against the behaviour policy): lm_token_logprobs, then a loss in learner/losses.h turns
//   the logprobs into dlogp, then lm_logprobs_backward recomputes each chunk's logits and
//   back-propagates dlogp. Recomputing one matmul per chunk is what it costs not to keep (T, V)
//   logits between the passes.
// Gradients go to the final hidden state and to lm_head (both +=), ready for
// hy_model_backward_hidden. Everything runs through the model's backend, so the same code serves
// the CPU reference and CUDA; at a 100k vocabulary a chunk of 64 rows is 25 MB of fp32 logits.
// Targets must lie in [−1, V): the logprobs op aborts on anything else (token ids are validated
// where they enter, by hy_model_check_tokens).
#ifndef HY_LM_LOSS_H
#define HY_LM_LOSS_H

#include <stdint.h>

#include "../model/model.h"

// xf (T, C) backend activations; targets (T) host, −1 = none. Returns the mean cross-entropy over
// the targets (0 when there are none); dxf (T, C) activations and dlm_head (V, C) fp32 += its
// gradient (either may be NULL; both backend memory).
double lm_loss_mean_ce(const hy_model *m, const hy_act *xf, const int32_t *targets, int T, hy_act *dxf,
                       float *dlm_head);

// First pass: logp_host_out (T) host fp32 = log softmax(xf[t]·lm_headᵀ)[targets[t]], 0 where
// targets[t] = −1. xf (T, C) backend activations; targets (T) host.
void lm_token_logprobs(const hy_model *m, const hy_act *xf, const int32_t *targets, int T, float *logp_host_out);

// Second pass: with dlogp_host (T) host fp32 the gradient of some loss with respect to each
// token's logprob (ignored where targets[t] = −1), dxf (T, C) activations and dlm_head (V, C) fp32
// += the gradient of that loss (either may be NULL; both backend memory).
void lm_logprobs_backward(const hy_model *m, const hy_act *xf, const int32_t *targets, int T,
                          const float *dlogp_host, hy_act *dxf, float *dlm_head);

#endif
