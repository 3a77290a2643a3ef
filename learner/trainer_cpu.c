// CPU full-batch trainer (see trainer_cpu.h).
#include "trainer_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "lm_loss.h"

void hy_trainer_init(hy_trainer *t, hy_model *m, const adamw_params *hp, float grad_clip) {
    memset(t, 0, sizeof *t);
    t->model = m;
    t->hp = *hp;
    t->grad_clip = grad_clip;
    t->grads = hy_calloc(m->table.total, sizeof(float));
    t->exp_avg = hy_calloc(m->table.total, sizeof(float));
    t->exp_avg_sq = hy_calloc(m->table.total, sizeof(float));
}

void hy_trainer_free(hy_trainer *t) {
    free(t->grads);
    free(t->exp_avg);
    free(t->exp_avg_sq);
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
    const int C = m->cfg.hidden_size, V = m->cfg.vocab_size;
    hy_acts *acts = NULL;
    if (hy_model_forward(m, b, HY_LOGITS_NONE, NULL, &acts, NULL, NULL)) return -1;
    memset(t->grads, 0, sizeof(float) * m->table.total);
    hy_params g;
    hy_params_bind(&g, &m->table, &m->cfg, t->grads);
    float *dxf = hy_calloc((size_t)b->T * C, sizeof(float));
    *loss = lm_loss_mean_ce(hy_acts_final_hidden(acts), m->p.lm_head, targets, b->T, C, V, dxf, g.lm_head);
    hy_model_backward_hidden(m, acts, dxf, t->grads);
    free(dxf);
    hy_acts_free(acts);
    *grad_norm = sqrt(grad_sumsq(t->grads, m->table.total));
    return 0;
}

int hy_trainer_step(hy_trainer *t, const hy_batch *b, const int32_t *targets, double *loss, double *grad_norm) {
    if (hy_trainer_loss_and_grads(t, b, targets, loss, grad_norm)) return -1;
    const size_t n = t->model->table.total;
    if (t->grad_clip > 0.0f) {
        float coef = grad_clip_coef(*grad_norm, t->grad_clip);
        if (coef < 1.0f) grad_scale(t->grads, n, coef);
    }
    t->step++;
    adamw_step(t->model->arena, t->exp_avg, t->exp_avg_sq, t->grads, n, &t->hp, t->step, 1);
    return 0;
}
