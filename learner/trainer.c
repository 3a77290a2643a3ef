// Full-batch trainer on the model's backend (see trainer.h).
#include "trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "lm_loss.h"

void hy_trainer_init(hy_trainer *t, hy_model *m, const adamw_params *hp, float grad_clip) {
    memset(t, 0, sizeof *t);
    hy_backend *be = m->be;
    const size_t bytes = m->table.total * sizeof(float);
    t->model = m;
    t->hp = *hp;
    t->grad_clip = grad_clip;
    t->grads = be->alloc_persistent(be, bytes);
    t->exp_avg = be->alloc_persistent(be, bytes);
    t->exp_avg_sq = be->alloc_persistent(be, bytes);
}

void hy_trainer_free(hy_trainer *t) {
    hy_backend *be = t->model->be;
    be->free_persistent(be, t->grads);
    be->free_persistent(be, t->exp_avg);
    be->free_persistent(be, t->exp_avg_sq);
    memset(t, 0, sizeof *t);
}

void hy_next_token_targets(const hy_batch *b, int32_t *targets) {
    for (int d = 0; d < b->n_docs; d++)
        for (int i = b->cu_seqlens[d]; i < b->cu_seqlens[d + 1]; i++)
            targets[i] = i + 1 < b->cu_seqlens[d + 1] ? b->tokens[i + 1] : -1;
}

int hy_trainer_loss_and_grads(hy_trainer *t, const hy_batch *b, const int32_t *targets, double *loss,
                              double *grad_norm) {
    hy_model *m = t->model;
    hy_backend *be = m->be;
    hy_acts *acts = NULL;
    if (hy_model_forward(m, b, HY_LOGITS_NONE, NULL, &acts, NULL, NULL)) return -1;
    be->f32_zero(be, t->grads, m->table.total);
    hy_params g;
    hy_params_bind(&g, &m->table, &m->cfg, t->grads);
    const size_t mark = be->mark(be);
    hy_act *dxf = be->act_alloc(be, (size_t)b->T * m->cfg.hidden_size);
    *loss = lm_loss_mean_ce(m, hy_acts_final_hidden(acts), targets, b->T, dxf, g.lm_head);
    hy_model_backward_hidden(m, acts, dxf, t->grads);
    be->release(be, mark);
    hy_acts_free(acts);
    *grad_norm = sqrt(be->grad_sumsq(be, t->grads, m->table.total));
    return 0;
}

int hy_trainer_step(hy_trainer *t, const hy_batch *b, const int32_t *targets, double *loss, double *grad_norm) {
    if (hy_trainer_loss_and_grads(t, b, targets, loss, grad_norm)) return -1;
    hy_model *m = t->model;
    hy_backend *be = m->be;
    const size_t n = m->table.total;
    if (t->grad_clip > 0.0f) {
        float coef = grad_clip_coef(*grad_norm, t->grad_clip);
        if (coef < 1.0f) be->grad_scale(be, t->grads, n, coef);
    }
    t->step++;
    be->adamw_step(be, m->dev, m->mm == (void *)m->dev ? NULL : m->mm, t->exp_avg, t->exp_avg_sq, t->grads, n, &t->hp,
                   t->step, 1);
    return 0;
}
