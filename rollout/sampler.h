// Token sampling from one row of logits: temperature, top-k, top-p, seeded.
//
// Order of the transforms follows the common (HF / vLLM) convention: temperature scales the logits,
// then top-k keeps the k largest, then top-p keeps the smallest prefix of the sorted distribution
// whose mass reaches p; sampling draws from what is left, renormalised. temperature 0 is greedy.
// Each result carries the logprob of the chosen token under the sampling distribution actually
// used and under the untempered model distribution (what RL importance ratios need).
#ifndef HY_SAMPLER_H
#define HY_SAMPLER_H

#include "../common/rng.h"

typedef struct {
    float temperature;  // 0 = greedy
    int top_k;          // 0 = off
    float top_p;        // 1 = off
} hy_sampling;

typedef struct {
    int token;
    float logprob;        // under the sampling distribution (greedy: = model logprob)
    float model_logprob;  // log_softmax of the raw logits
} hy_sample;

// logits (V) are read only. The rng advances by one draw unless greedy.
hy_sample hy_sample_token(const float *logits, int V, const hy_sampling *s, hy_rng *rng);

#endif
