// Training steps on the model's backend (see trainer.h).
#include "trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "../model/acts.h"
#include "lm_loss.h"

// Shards are whole multiples of this many floats, so every rank's slice starts 256-byte aligned.
enum { SHARD_ALIGN = 64 };

void hy_trainer_init_dp(hy_trainer *t, hy_model *m, const adamw_params *hp, float grad_clip, hy_dp *dp) {
    memset(t, 0, sizeof *t);
    hy_backend *be = m->be;
    const size_t total = m->table.total, world = (size_t)hy_dp_world(dp), rank = (size_t)hy_dp_rank(dp);
    t->model = m;
    t->hp = *hp;
    t->grad_clip = grad_clip;
    t->dp = world > 1 ? dp : NULL;
    t->shard = world > 1 ? (total + world * SHARD_ALIGN - 1) / (world * SHARD_ALIGN) * SHARD_ALIGN : total;
    t->own_lo = rank * t->shard < total ? rank * t->shard : total;
    t->own_n = t->own_lo + t->shard < total ? t->shard : total - t->own_lo;
    t->grads = be->alloc_persistent(be, t->shard * world * sizeof(float));
    t->exp_avg = be->alloc_persistent(be, (t->shard ? t->shard : 1) * sizeof(float));
    t->exp_avg_sq = be->alloc_persistent(be, (t->shard ? t->shard : 1) * sizeof(float));
    if (hy_param_groups_build(&t->groups, &m->table, "none")) {
        fprintf(stderr, "hybrid: internal error: %s\n", hy_last_error());
        abort();
    }
}

void hy_trainer_init(hy_trainer *t, hy_model *m, const adamw_params *hp, float grad_clip) {
    hy_trainer_init_dp(t, m, hp, grad_clip, NULL);
}

int hy_trainer_sum_over_ranks(hy_trainer *t, double *v, int n) {
    return t->dp ? hy_dp_sum_host(t->dp, v, n) : 0;
}

// Micro-batch i belongs to this rank (round robin over the ranks).
static int runs_micro_batch(const hy_trainer *t, int i) {
    return !t->dp || i % hy_dp_world(t->dp) == hy_dp_rank(t->dp);
}

// After this rank's micro-batches: the step's loss (*loss: this rank's share in, the sum out) and
// gradient norm. Data-parallel: the gradient slices are summed onto their owners first, and the
// norm is taken over the owned slices and summed. −1 when a collective fails.
static int finish_grads(hy_trainer *t, double *loss, double *grad_norm) {
    hy_backend *be = t->model->be;
    if (!t->dp) {
        *grad_norm = sqrt(be->grad_sumsq(be, t->grads, t->model->table.total));
        return 0;
    }
    if (hy_dp_reduce_scatter(t->dp, t->grads, t->shard)) return -1;
    double v[2] = {*loss, t->own_n ? be->grad_sumsq(be, t->grads + t->own_lo, t->own_n) : 0.0};
    if (hy_dp_sum_host(t->dp, v, 2)) return -1;
    *loss = v[0];
    *grad_norm = sqrt(v[1]);
    return 0;
}

void hy_trainer_free(hy_trainer *t) {
    hy_backend *be = t->model->be;
    be->free_persistent(be, t->grads);
    be->free_persistent(be, t->exp_avg);
    be->free_persistent(be, t->exp_avg_sq);
    hy_param_groups_free(&t->groups);
    memset(t, 0, sizeof *t);
}

void hy_trainer_set_groups(hy_trainer *t, const hy_param_groups *g) {
    hy_param_groups_free(&t->groups);
    t->groups = *g;
    t->groups.ranges = hy_malloc(sizeof *g->ranges * (size_t)(g->n_ranges ? g->n_ranges : 1));
    memcpy(t->groups.ranges, g->ranges, sizeof *g->ranges * (size_t)g->n_ranges);
}

void hy_next_token_targets(const hy_batch *b, int32_t *targets) {
    for (int d = 0; d < b->n_docs; d++)
        for (int i = b->cu_seqlens[d]; i < b->cu_seqlens[d + 1]; i++)
            targets[i] = i + 1 < b->cu_seqlens[d + 1] ? b->tokens[i + 1] : -1;
}

// Forward and backward of one packed batch, gradients += into t->grads. Token mode: one loss call,
// returning the batch's mean CE. Sequence mode: one call per document with targets, returning the
// sum of the documents' mean CEs. The model works on documents independently, so the per-document
// calls see exactly the rows the one call would.
static int batch_loss_and_grads(hy_trainer *t, const hy_batch *b, const int32_t *targets, hy_loss_norm norm,
                                double *loss) {
    hy_model *m = t->model;
    hy_backend *be = m->be;
    hy_acts *acts = NULL;
    if (hy_model_forward(m, b, HY_LOGITS_NONE, NULL, &acts, NULL, NULL)) return -1;
    hy_params g;
    hy_params_bind(&g, &m->table, &m->cfg, t->grads);
    const int C = m->cfg.hidden_size;
    const size_t mark = be->mark(be);
    hy_act *dxf = be->act_alloc(be, (size_t)b->T * C);
    const hy_act *xf = hy_acts_final_hidden(acts);
    if (norm == HY_LOSS_NORM_TOKEN) {
        *loss = lm_loss_mean_ce(m, xf, targets, b->T, dxf, g.lm_head);
    } else {
        *loss = 0.0;
        for (int d = 0; d < b->n_docs; d++) {
            const int t0 = b->cu_seqlens[d], n = b->cu_seqlens[d + 1] - t0;
            *loss += lm_loss_mean_ce(m, hy_act_at(be, xf, (size_t)t0 * C), targets + t0, n,
                                     hy_act_at(be, dxf, (size_t)t0 * C), g.lm_head);
        }
    }
    hy_model_backward_hidden(m, acts, dxf, t->grads);
    be->release(be, mark);
    hy_acts_free(acts);
    return 0;
}

int hy_trainer_loss_and_grads(hy_trainer *t, const hy_batch *b, const int32_t *targets, double *loss,
                              double *grad_norm) {
    hy_model *m = t->model;
    hy_backend *be = m->be;
    be->f32_zero(be, t->grads, t->shard * (size_t)hy_dp_world(t->dp));
    if (batch_loss_and_grads(t, b, targets, HY_LOSS_NORM_TOKEN, loss)) return -1;
    *grad_norm = sqrt(be->grad_sumsq(be, t->grads, m->table.total));
    return 0;
}

// Data-parallel: every rank's updated slice of the fp32 master goes to all ranks, through the
// gradient arena (free until the next step, and padded to W·shard as the collective needs), and
// the matmul view is rebuilt from the whole master.
static int gather_parameters(hy_trainer *t) {
    hy_model *m = t->model;
    hy_backend *be = m->be;
    if (t->own_n) be->f32_copy(be, t->grads + t->own_lo, m->dev + t->own_lo, t->own_n);
    if (hy_dp_all_gather(t->dp, t->grads, t->shard)) return -1;
    be->f32_copy(be, m->dev, t->grads, m->table.total);
    if (m->mm != (void *)m->dev) be->params_to_matmul_view(be, m->mm, m->dev, m->table.total);
    return 0;
}

// Clip, then AdamW over each decay range (the parts this rank owns) at rate lr — unless the loss
// or the gradient is not finite, in which case nothing is touched (returns 1). −1 when a
// data-parallel collective fails.
static int clip_and_update(hy_trainer *t, double loss, double grad_norm, double lr) {
    if (!isfinite(loss) || !isfinite(grad_norm)) {
        t->skipped++;
        return 1;
    }
    hy_model *m = t->model;
    hy_backend *be = m->be;
    const size_t lo = t->own_lo, hi = t->own_lo + t->own_n;
    if (t->grad_clip > 0.0f) {
        const float coef = grad_clip_coef(grad_norm, t->grad_clip);
        if (coef < 1.0f && t->own_n) be->grad_scale(be, t->grads + lo, t->own_n, coef);
    }
    adamw_params hp = t->hp;
    hp.lr = lr;
    t->step++;
    // one rank: AdamW refreshes the matmul view as it goes; several: gather_parameters does
    void *mm = m->mm == (void *)m->dev || t->dp ? NULL : m->mm;
    for (int i = 0; i < t->groups.n_ranges; i++) {
        const hy_param_range *r = &t->groups.ranges[i];
        const size_t a = r->offset > lo ? r->offset : lo, b = r->offset + r->n < hi ? r->offset + r->n : hi;
        if (a >= b) continue;
        be->adamw_step(be, m->dev + a, mm ? (char *)mm + a * be->act_bytes : NULL, t->exp_avg + (a - lo),
                       t->exp_avg_sq + (a - lo), t->grads + a, b - a, &hp, t->step, r->decay);
    }
    if (t->dp && gather_parameters(t)) return -1;
    return 0;
}

int hy_trainer_step(hy_trainer *t, const hy_batch *b, const int32_t *targets, double *loss, double *grad_norm) {
    if (t->dp) return hy_fail("internal: hy_trainer_step is for one rank; data-parallel steps take a step batch");
    if (hy_trainer_loss_and_grads(t, b, targets, loss, grad_norm)) return -1;
    return clip_and_update(t, *loss, *grad_norm, t->hp.lr) < 0 ? -1 : 0;
}

// Weight of micro-batch mb's loss calls in the step's loss (see trainer.h); 0 when it has no targets.
static double micro_weight(const hy_micro_batch *mb, hy_loss_norm norm, long step_targets, long step_seqs) {
    if (mb->n_targets == 0) return 0.0;
    return norm == HY_LOSS_NORM_TOKEN ? (double)mb->n_targets / (double)step_targets : 1.0 / (double)step_seqs;
}

int hy_trainer_step_batch(hy_trainer *t, const hy_step_batch *sb, hy_loss_norm norm, double lr, hy_step_stats *st) {
    hy_model *m = t->model;
    hy_backend *be = m->be;
    const size_t n = t->shard * (size_t)hy_dp_world(t->dp);
    memset(st, 0, sizeof *st);
    st->tokens = sb->tokens;
    st->targets = sb->targets;
    st->sequences = sb->sequences;
    st->micro_batches = sb->n;
    long seqs_with_targets = 0;
    for (int i = 0; i < sb->n; i++)
        for (int d = 0; d < sb->mb[i].n_docs; d++) seqs_with_targets += sb->mb[i].doc_targets[d] > 0;
    be->f32_zero(be, t->grads, n);
    double prev_w = 0.0;
    for (int i = 0; i < sb->n; i++) {
        const hy_micro_batch *mb = &sb->mb[i];
        const double w = micro_weight(mb, norm, sb->targets, seqs_with_targets);
        if (w == 0.0 || !runs_micro_batch(t, i)) continue;
        // keep the accumulator in units of this micro-batch's weight
        if (prev_w != 0.0 && prev_w != w) be->grad_scale(be, t->grads, n, (float)(prev_w / w));
        const hy_batch b = hy_micro_batch_view(mb);
        double loss;
        if (batch_loss_and_grads(t, &b, mb->targets, norm, &loss)) return -1;
        st->loss += loss * w;
        prev_w = w;
    }
    if (prev_w != 0.0 && prev_w != 1.0) be->grad_scale(be, t->grads, n, (float)prev_w);
    if (finish_grads(t, &st->loss, &st->grad_norm)) return -1;
    st->skipped = clip_and_update(t, st->loss, st->grad_norm, lr);
    return st->skipped < 0 ? -1 : 0;
}

int hy_model_target_logprobs(const hy_model *m, const hy_batch *b, const int32_t *targets, float *logp) {
    hy_acts *acts = NULL;
    if (hy_model_forward(m, b, HY_LOGITS_NONE, NULL, &acts, NULL, NULL)) return -1;
    lm_token_logprobs(m, hy_acts_final_hidden(acts), targets, b->T, logp);
    hy_acts_free(acts);
    return 0;
}

// One micro-batch of a custom-loss step: both lm-head passes around the loss callback.
static int micro_custom(hy_trainer *t, int i, const hy_micro_batch *mb, hy_logp_loss_fn fn, void *ctx, double *loss) {
    hy_model *m = t->model;
    hy_backend *be = m->be;
    const hy_batch b = hy_micro_batch_view(mb);
    hy_acts *acts = NULL;
    if (hy_model_forward(m, &b, HY_LOGITS_NONE, NULL, &acts, NULL, NULL)) return -1;
    const hy_act *xf = hy_acts_final_hidden(acts);
    float *logp = hy_malloc(sizeof *logp * (size_t)(b.T > 0 ? b.T : 1));
    float *dlogp = hy_malloc(sizeof *dlogp * (size_t)(b.T > 0 ? b.T : 1));
    lm_token_logprobs(m, xf, mb->targets, b.T, logp);
    int rc = fn(ctx, i, mb, logp, dlogp, loss);
    if (!rc) {
        hy_params g;
        hy_params_bind(&g, &m->table, &m->cfg, t->grads);
        const size_t mark = be->mark(be);
        hy_act *dxf = be->act_alloc(be, (size_t)b.T * m->cfg.hidden_size);
        lm_logprobs_backward(m, xf, mb->targets, b.T, dlogp, dxf, g.lm_head);
        hy_model_backward_hidden(m, acts, dxf, t->grads);
        be->release(be, mark);
    }
    free(logp);
    free(dlogp);
    hy_acts_free(acts);
    return rc;
}

int hy_trainer_grads_custom(hy_trainer *t, const hy_step_batch *sb, hy_logp_loss_fn fn, void *ctx, double *loss,
                            double *grad_norm) {
    hy_model *m = t->model;
    hy_backend *be = m->be;
    be->f32_zero(be, t->grads, t->shard * (size_t)hy_dp_world(t->dp));
    *loss = 0.0;
    for (int i = 0; i < sb->n; i++) {
        double part = 0.0;
        if (!runs_micro_batch(t, i)) continue;
        if (micro_custom(t, i, &sb->mb[i], fn, ctx, &part)) return -1;
        *loss += part;
    }
    return finish_grads(t, loss, grad_norm);
}

int hy_trainer_step_custom(hy_trainer *t, const hy_step_batch *sb, hy_logp_loss_fn fn, void *ctx, double lr,
                           hy_step_stats *st) {
    memset(st, 0, sizeof *st);
    st->tokens = sb->tokens;
    st->targets = sb->targets;
    st->sequences = sb->sequences;
    st->micro_batches = sb->n;
    if (hy_trainer_grads_custom(t, sb, fn, ctx, &st->loss, &st->grad_norm)) return -1;
    st->skipped = clip_and_update(t, st->loss, st->grad_norm, lr);
    return st->skipped < 0 ? -1 : 0;
}
