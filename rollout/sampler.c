// Sampling implementation (see sampler.h). Work is O(V log V) only when top-k/top-p need a sort;
// the plain tempered path is a few passes over the row (max, exponentials, the draw's scan).
#include "sampler.h"

#include <math.h>
#include <stdlib.h>

#include "../common/hy_error.h"
#include "../kernels/ops_cpu.h"

typedef struct {
    float logit;
    int id;
} scored;

static int by_logit_desc(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return x->id - y->id;  // ties: lower id first, so results do not depend on qsort's order
}

hy_sample hy_sample_token(const float *logits, int V, const hy_sampling *s, hy_rng *rng) {
    hy_sample out;
    const int need_sort = s->temperature > 0.0f && ((s->top_k > 0 && s->top_k < V) || s->top_p < 1.0f);
    if (!need_sort) {  // greedy, or the whole tempered distribution: the op the GPU also runs
        const double u = s->temperature > 0.0f ? hy_rng_uniform(rng) : 0.0;
        int32_t token;
        sample_row(logits, V, s->temperature, u, &token, &out.logprob, &out.model_logprob);
        out.token = token;
        return out;
    }
    const double lse = row_log_sum_exp(logits, V, 1.0f);
    const float inv_t = 1.0f / s->temperature;
    scored *row = hy_malloc(sizeof(scored) * (size_t)V);
    for (int i = 0; i < V; i++) row[i] = (scored){logits[i] * inv_t, i};
    qsort(row, (size_t)V, sizeof *row, by_logit_desc);
    int keep = (s->top_k > 0 && s->top_k < V) ? s->top_k : V;
    double z = 0.0;
    for (int i = 0; i < keep; i++) z += exp((double)row[i].logit - row[0].logit);
    if (s->top_p < 1.0f) {
        double mass = 0.0;
        int n = 0;
        while (n < keep) {
            mass += exp((double)row[n].logit - row[0].logit) / z;
            n++;
            if (mass >= s->top_p) break;
        }
        keep = n;
        z = 0.0;
        for (int i = 0; i < keep; i++) z += exp((double)row[i].logit - row[0].logit);
    }
    double u = hy_rng_uniform(rng) * z, acc = 0.0;
    int pick = keep - 1;
    for (int i = 0; i < keep; i++) {
        acc += exp((double)row[i].logit - row[0].logit);
        if (u < acc) {
            pick = i;
            break;
        }
    }
    out.token = row[pick].id;
    out.logprob = (float)((double)row[pick].logit - row[0].logit - log(z));
    out.model_logprob = (float)(logits[out.token] - lse);
    free(row);
    return out;
}

// Selection of the n best by insertion into a sorted list: n is small (≤ HY_MAX_TOP_LOGPROBS), so
// O(V·n) beats sorting the row.
void hy_top_logprobs(const float *logits, int V, int n, int32_t *ids, float *logprobs) {
    if (n <= 0) return;
    const double lse = row_log_sum_exp(logits, V, 1.0f);
    int have = 0;
    for (int i = 0; i < V; i++) {
        if (have == n && !(logits[i] > logits[ids[n - 1]])) continue;
        int at = have < n ? have++ : n - 1;
        while (at > 0 && logits[i] > logits[ids[at - 1]]) {
            ids[at] = ids[at - 1];
            at--;
        }
        ids[at] = i;
    }
    for (int j = 0; j < n; j++) logprobs[j] = (float)(logits[ids[j]] - lse);
}

int hy_sampling_check(const hy_sampling *s, int V, const char *where) {
    if (!isfinite(s->temperature) || s->temperature < 0.0f || s->temperature > 100.0f)
        return hy_fail("%s: temperature %g is outside [0, 100]", where, s->temperature);
    if (!isfinite(s->top_p) || s->top_p <= 0.0f || s->top_p > 1.0f)
        return hy_fail("%s: top_p %g is outside (0, 1]", where, s->top_p);
    if (s->top_k < 0 || s->top_k > V)
        return hy_fail("%s: top_k %d is outside [0, %d] (0 = off; the vocabulary has %d tokens)", where, s->top_k, V, V);
    return 0;
}
