// Chunked lm_head + cross-entropy on the model's backend (see lm_loss.h).
#include "lm_loss.h"

#include <stdlib.h>

#include "../common/hy_error.h"
#include "../model/acts.h"

enum { ROW_CHUNK = 64 };

double lm_loss_mean_ce(const hy_model *m, const hy_act *xf, const int32_t *targets, int T, hy_act *dxf,
                       float *dlm_head) {
    hy_backend *be = m->be;
    const int C = m->cfg.hidden_size, V = m->cfg.vocab_size;
    int n_targets = 0;
    for (int t = 0; t < T; t++) n_targets += targets[t] >= 0;
    if (n_targets == 0) return 0.0;
    const size_t mark = be->mark(be);
    int32_t *targets_dev = be->i32_upload(be, targets, T);
    float *logits = be->f32_alloc(be, (size_t)ROW_CHUNK * V);
    hy_act *dlogits = be->act_alloc(be, (size_t)ROW_CHUNK * V);
    float *lse = be->f32_alloc(be, ROW_CHUNK), *logp = be->f32_alloc(be, T), *dlogp = be->f32_alloc(be, ROW_CHUNK);
    float host_dlogp[ROW_CHUNK];
    for (int r = 0; r < ROW_CHUNK; r++) host_dlogp[r] = -1.0f / (float)n_targets;
    be->f32_from_host(be, dlogp, host_dlogp, ROW_CHUNK);
    for (int t0 = 0; t0 < T; t0 += ROW_CHUNK) {
        const int rows = T - t0 < ROW_CHUNK ? T - t0 : ROW_CHUNK;
        const hy_act *x = hy_act_at(be, xf, (size_t)t0 * C);
        be->linear_forward_f32(be, logits, x, m->pmm.lm_head, rows, C, V);
        be->logprobs_forward(be, logp + t0, lse, logits, targets_dev + t0, rows, V);
        if (!dxf && !dlm_head) continue;
        be->act_zero(be, dlogits, (size_t)rows * V);
        be->logprobs_backward(be, dlogits, dlogp, logits, lse, targets_dev + t0, rows, V);
        be->linear_backward(be, dxf ? hy_act_at(be, dxf, (size_t)t0 * C) : NULL, dlm_head, dlogits, x, m->pmm.lm_head,
                            rows, C, V);
    }
    float *host = hy_malloc(sizeof(float) * (size_t)T);
    be->f32_to_host(be, host, logp, T);
    be->release(be, mark);
    double total = 0.0;
    for (int t = 0; t < T; t++)
        if (targets[t] >= 0) total -= host[t];
    free(host);
    return total / n_targets;
}
