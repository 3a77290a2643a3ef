// Engine results → protocol trajectories (see trajectory.h).
#include "rollout/trajectory.h"

#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"

proto_finish hy_trajectory_finish(hy_finish f) {
    switch (f) {
    case HY_FINISH_EOS: return PROTO_FINISH_EOS;
    case HY_FINISH_STOP_STRING: return PROTO_FINISH_STOP;
    case HY_FINISH_LENGTH: return PROTO_FINISH_LENGTH;
    case HY_FINISH_MAX_LEN: return PROTO_FINISH_MAX_LEN;
    default: return PROTO_FINISH_ERROR;
    }
}

static uint64_t learner_version(const hy_trajectory_meta *m, uint32_t engine_version) {
    if (m->n_versions <= 0) return engine_version;
    return m->versions[engine_version < (uint32_t)m->n_versions ? engine_version : (uint32_t)m->n_versions - 1];
}

int hy_trajectory_from_result(const hy_result *r, const hy_trajectory_meta *meta, proto_trajectory *out) {
    memset(out, 0, sizeof *out);
    if (meta->n_prompt < 1 || r->n < meta->n_prompt)
        return hy_fail("trajectory of request %llu: %d tokens, shorter than its %d-token prompt",
                       (unsigned long long)meta->request_id, r->n, meta->n_prompt);
    const int np = meta->n_prompt, nc = r->n - np;
    out->id = (meta->request_id << 11) | meta->sample_index;  // unique per request and sample (n ≤ 1024)
    out->request_id = meta->request_id;
    out->group_id = meta->group_id;
    out->sample_index = meta->sample_index;
    out->n_prompt = (uint32_t)np;
    out->prompt = hy_malloc(sizeof(int32_t) * (size_t)np);
    memcpy(out->prompt, r->tokens, sizeof(int32_t) * (size_t)np);
    out->n_completion = out->n_logprobs = (uint32_t)nc;
    out->completion = hy_malloc(sizeof(int32_t) * (size_t)nc + 1);
    out->generated = hy_malloc((size_t)nc + 1);
    out->logprobs = hy_malloc(sizeof(float) * (size_t)nc + 1);
    out->model_logprobs = hy_malloc(sizeof(float) * (size_t)nc + 1);
    out->weight_version = hy_malloc(sizeof(uint64_t) * (size_t)nc + 1);
    uint64_t current = learner_version(meta, UINT32_MAX);
    for (int i = 0; i < nc; i++) {
        const int t = np + i;
        const int gen = r->origin[t] == HY_TOKEN_GENERATED;
        out->completion[i] = r->tokens[t];
        out->generated[i] = (uint8_t)gen;
        out->logprobs[i] = gen ? r->logprobs[t] : 0.0f;
        out->model_logprobs[i] = gen ? r->model_logprobs[t] : 0.0f;
        out->weight_version[i] = gen ? learner_version(meta, r->weight_version[t]) : current;
    }
    out->finish_reason = hy_trajectory_finish(r->finish);
    out->n_turns = 1;
    out->queue_s = meta->queue_s;
    out->prefill_s = meta->prefill_s;
    out->decode_s = meta->decode_s;
    return 0;
}

void hy_trajectory_error(uint64_t request_id, uint64_t group_id, uint32_t sample_index, const int32_t *prompt,
                         int n_prompt, proto_trajectory *out) {
    memset(out, 0, sizeof *out);
    out->id = (request_id << 11) | sample_index;
    out->request_id = request_id;
    out->group_id = group_id;
    out->sample_index = sample_index;
    out->n_prompt = (uint32_t)(n_prompt > 0 ? n_prompt : 1);
    out->prompt = hy_calloc(out->n_prompt, sizeof(int32_t));
    if (n_prompt > 0) memcpy(out->prompt, prompt, sizeof(int32_t) * (size_t)n_prompt);
    out->finish_reason = PROTO_FINISH_ERROR;
    out->n_turns = 1;
}
