// Chunked lm_head + token logprobs on the model's backend (see lm_loss.h).
//
// head_pass is the one chunk loop: per chunk of ROW_CHUNK rows, logits = xf·lm_headᵀ, logprobs
// (and lse), and, when a gradient is wanted, dlogits from the given dlogp and the lm_head
// backward. Logprobs of every chunk stay on the backend until the end, so the host sees one copy.
#include "lm_loss.h"

#include <stdlib.h>

#include "../common/hy_error.h"
#include "../model/acts.h"

enum { ROW_CHUNK = 64 };

// logp_host (T) = the targets' logprobs (may be NULL). When dlogp_host (T) is non-NULL and dxf or
// dlm_head is, back-propagates it into them (+=).
static void head_pass(const hy_model *m, const hy_act *xf, const int32_t *targets, int T, float *logp_host,
                      const float *dlogp_host, hy_act *dxf, float *dlm_head) {
    hy_backend *be = m->be;
    const int C = m->cfg.hidden_size, V = m->cfg.vocab_size;
    const int backward = dlogp_host && (dxf || dlm_head);
    if (T <= 0 || (!logp_host && !backward)) return;
    const size_t mark = be->mark(be);
    int32_t *targets_dev = be->i32_upload(be, targets, T);
    float *logits = be->f32_alloc(be, (size_t)ROW_CHUNK * V);
    float *lse = be->f32_alloc(be, ROW_CHUNK), *logp = be->f32_alloc(be, T);
    hy_act *dlogits = NULL;
    float *dlogp = NULL;
    if (backward) {
        dlogits = be->act_alloc(be, (size_t)ROW_CHUNK * V);
        dlogp = be->f32_alloc(be, T);
        be->f32_from_host(be, dlogp, dlogp_host, T);
    }
    for (int t0 = 0; t0 < T; t0 += ROW_CHUNK) {
        const int rows = T - t0 < ROW_CHUNK ? T - t0 : ROW_CHUNK;
        const hy_act *x = hy_act_at(be, xf, (size_t)t0 * C);
        be->linear_forward_f32(be, logits, x, m->pmm.lm_head, rows, C, V);
        be->logprobs_forward(be, logp + t0, lse, logits, targets_dev + t0, rows, V);
        if (!backward) continue;
        be->act_zero(be, dlogits, (size_t)rows * V);
        be->logprobs_backward(be, dlogits, dlogp + t0, logits, lse, targets_dev + t0, rows, V);
        be->linear_backward(be, dxf ? hy_act_at(be, dxf, (size_t)t0 * C) : NULL, dlm_head, dlogits, x, m->pmm.lm_head,
                            rows, C, V);
    }
    if (logp_host) be->f32_to_host(be, logp_host, logp, T);
    be->release(be, mark);
}

double lm_loss_mean_ce(const hy_model *m, const hy_act *xf, const int32_t *targets, int T, hy_act *dxf,
                       float *dlm_head) {
    int n_targets = 0;
    for (int t = 0; t < T; t++) n_targets += targets[t] >= 0;
    if (n_targets == 0) return 0.0;
    float *logp = hy_malloc(sizeof(float) * (size_t)T), *dlogp = hy_malloc(sizeof(float) * (size_t)T);
    // the gradient is known up front, so forward and backward share one pass over the chunks
    for (int t = 0; t < T; t++) dlogp[t] = targets[t] >= 0 ? -1.0f / (float)n_targets : 0.0f;
    head_pass(m, xf, targets, T, logp, dlogp, dxf, dlm_head);
    double total = 0.0;
    for (int t = 0; t < T; t++)
        if (targets[t] >= 0) total -= logp[t];
    free(logp);
    free(dlogp);
    return total / n_targets;
}

void lm_token_logprobs(const hy_model *m, const hy_act *xf, const int32_t *targets, int T, float *logp_host_out) {
    head_pass(m, xf, targets, T, logp_host_out, NULL, NULL, NULL);
}

void lm_logprobs_backward(const hy_model *m, const hy_act *xf, const int32_t *targets, int T,
                          const float *dlogp_host, hy_act *dxf, float *dlm_head) {
    head_pass(m, xf, targets, T, NULL, dlogp_host, dxf, dlm_head);
}
