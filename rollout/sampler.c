// Sampling implementation (see sampler.h). Work is O(V log V) only when top-k/top-p need a sort;
// the plain tempered path is two passes over the row.
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

static double log_sum_exp(const float *x, int n, float scale) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = fmaxf(mx, x[i] * scale);
    double s = 0.0;
    for (int i = 0; i < n; i++) s += exp((double)x[i] * scale - mx);
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
        const double lse_t = log_sum_exp(logits, V, inv_t);
        double u = hy_rng_uniform(rng), acc = 0.0;
        int pick = V - 1;
        for (int i = 0; i < V; i++) {
            acc += exp((double)logits[i] * inv_t - lse_t);
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
