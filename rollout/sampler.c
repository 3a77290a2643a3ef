// Sampling implementation (see sampler.h). Work is O(V log V) only when top-k/top-p need a sort;
// the plain tempered path is a few passes over the row (max, exponentials, the draw's scan).
#include "sampler.h"

#include <math.h>
#include <stdlib.h>

#include "../common/hy_error.h"

typedef struct {
    float logit;
    int id;
} scored;

static int by_logit_desc(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return x->id - y->id;  // ties: lower id first, so results do not depend on qsort's order
}

// log Σ exp(scale·x). The exponentials are single precision (a few ulp each) and summed in float
// blocks of 256, the blocks in double: the result is good to ~1e-6 absolute, far inside what a
// bf16 model's logits carry, and single-precision exponentials cost a fraction of double ones —
// this runs over a 100k-entry row for every sampled token.
static double log_sum_exp(const float *x, int n, float scale) {
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

hy_sample hy_sample_token(const float *logits, int V, const hy_sampling *s, hy_rng *rng) {
    hy_sample out;
    const double lse = log_sum_exp(logits, V, 1.0f);
    if (s->temperature <= 0.0f) {
        int best = 0;
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        out.token = best;
        out.model_logprob = out.logprob = (float)(logits[best] - lse);
        return out;
    }
    const float inv_t = 1.0f / s->temperature;
    const int need_sort = (s->top_k > 0 && s->top_k < V) || s->top_p < 1.0f;
    if (!need_sort) {
        const double lse_t = inv_t == 1.0f ? lse : log_sum_exp(logits, V, inv_t);  // RL samples at T = 1
        const float lse_tf = (float)lse_t;
        double u = hy_rng_uniform(rng), acc = 0.0;
        int pick = V - 1;
        for (int i = 0; i < V; i++) {
            acc += expf(logits[i] * inv_t - lse_tf);
            if (u < acc) {
                pick = i;
                break;
            }
        }
        out.token = pick;
        out.logprob = (float)(logits[pick] * inv_t - lse_t);
        out.model_logprob = (float)(logits[pick] - lse);
        return out;
    }
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
    const double lse = log_sum_exp(logits, V, 1.0f);
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
