// Token sampling from one row of logits: temperature, top-k, top-p, seeded.
//
// Order of the transforms follows the common (HF / vLLM) convention: temperature scales the logits,
// then top-k keeps the k largest, then top-p keeps the smallest prefix of the sorted distribution
// whose mass reaches p; sampling draws from what is left, renormalised. temperature 0 is greedy.
// Each result carries the logprob of the chosen token under the sampling distribution actually
// used and under the untempered model distribution (what RL importance ratios need), and on
// request the most likely alternatives under the untempered distribution.
#ifndef HY_SAMPLER_H
#define HY_SAMPLER_H

#include <stdint.h>

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

enum { HY_MAX_TOP_LOGPROBS = 20 };

// logits (V) are read only. The rng advances by one draw unless greedy.
hy_sample hy_sample_token(const float *logits, int V, const hy_sampling *s, hy_rng *rng);
// The n most likely tokens of logits (V) under the untempered model distribution, most likely
// first (ties: lower id first), with their log_softmax values: ids (n), logprobs (n). n ≤ V.
void hy_top_logprobs(const float *logits, int V, int n, int32_t *ids, float *logprobs);
// 0 when s is usable with a vocabulary of V; otherwise −1 with a message naming the field, prefixed
// by where (e.g. "request 3").
int hy_sampling_check(const hy_sampling *s, int V, const char *where);

#endif
