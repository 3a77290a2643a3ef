// Training steps on the model's backend: forward, token cross-entropy, backward, global grad-norm
// clipping and AdamW (PyTorch semantics) on the fp32 master weights; on CUDA the AdamW kernel also
// refreshes the bf16 matmul copy.
//
// Gradients and the optimizer state (m, v) are fp32 arenas in backend memory laid out like the
// parameter arena (params.h). Weight decay follows parameter groups (param_groups.h); a fresh
// trainer decays every parameter, as torch.optim.AdamW(model.parameters()) does.
//
// A step over several micro-batches (gradient accumulation) normalises the loss by the whole
// step's counts, so it yields the same gradient as one batch of the same sequences:
//   token:     loss = Σ_tokens CE / N                 (N = trained tokens of the step)
//   sequence:  loss = (1/S) Σ_seq (Σ_tokens CE / n_s) (S sequences, n_s trained tokens each)
// lm_loss_mean_ce normalises each call by its own count n_c, so a micro-batch's gradient reaches
// the accumulator with weight w_i (n_i/N, or 1/S with one call per sequence). The accumulator is
// kept in units of the current micro-batch's weight: before micro-batch i adds its gradient, the
// sum so far is scaled by w_{i−1}/w_i, and the final sum by w_last — one fp32 scale per micro-batch
// (a few ulp), no second gradient arena, and a single micro-batch in token mode is never scaled.
//
// Data-parallel (learner/dp.h, hy_trainer_init_dp): every rank packs the whole step, so the step's
// counts — and with them every loss's normaliser — are the same everywhere; rank r runs the
// micro-batches i ≡ r (mod W). Then gradients are reduce-scattered, each rank clips and updates
// its shard of the parameters with its shard of m and v (ZeRO stage 1–2: the optimizer state is
// sharded, the fp32 master copy is all-gathered after the update), and the loss and the
// gradient norm are summed over ranks, so every rank takes the same skip decision.
//
// A step whose loss or gradient norm is NaN or inf is skipped: no clipping, no AdamW, the weights,
// m, v and the AdamW step count stay as they were; it is counted in `skipped`.
#ifndef HY_TRAINER_H
#define HY_TRAINER_H

#include "../kernels/ops_cpu.h"
#include "../model/model.h"
#include "packing.h"
#include "dp.h"
#include "param_groups.h"

typedef enum { HY_LOSS_NORM_TOKEN, HY_LOSS_NORM_SEQUENCE } hy_loss_norm;

typedef struct {
    hy_model *model;
    adamw_params hp;                       // hp.lr: the rate of hy_trainer_step; batch steps take theirs
    float grad_clip;                       // 0 = no clipping
    hy_param_groups groups;                // weight-decay ranges
    float *grads;                          // (shard · world ≥ table.total) backend memory
    float *exp_avg, *exp_avg_sq;           // (shard) this rank's part of the optimizer state
    hy_dp *dp;                             // NULL: one rank
    size_t shard;                          // floats of the arena each rank's optimizer owns
    size_t own_lo, own_n;                  // this rank's parameters: [own_lo, own_lo + own_n)
    int step;                              // AdamW steps taken
    long skipped;                          // steps refused for a non-finite loss or gradient
} hy_trainer;

typedef struct {
    double loss;       // normalised as asked (see above), before the update
    double grad_norm;  // global, before clipping
    long tokens;       // tokens run through the model
    long targets;      // tokens in the loss
    int sequences, micro_batches;
    int skipped;       // 1 when this step was refused (non-finite loss or gradient)
} hy_step_stats;

void hy_trainer_init(hy_trainer *t, hy_model *m, const adamw_params *hp, float grad_clip);
// The same as one rank of a data-parallel group (dp NULL: hy_trainer_init). The trainer does not
// own dp. Every rank must start from the same weights.
void hy_trainer_init_dp(hy_trainer *t, hy_model *m, const adamw_params *hp, float grad_clip, hy_dp *dp);
// Sums n host values (a step's statistics of the micro-batches this rank ran) over the ranks;
// nothing with one rank. 0 / −1.
int hy_trainer_sum_over_ranks(hy_trainer *t, double *v, int n);
void hy_trainer_free(hy_trainer *t);
// Replaces the weight-decay groups (the trainer keeps its own copy).
void hy_trainer_set_groups(hy_trainer *t, const hy_param_groups *g);

// One optimizer step over a step batch (packing.h) with loss normalisation norm at learning rate
// lr. Data errors cannot occur here; a backend failure returns −1.
int hy_trainer_step_batch(hy_trainer *t, const hy_step_batch *sb, hy_loss_norm norm, double lr, hy_step_stats *st);

// Loss and gradients of batch b (targets (T), host: next token within the document, −1 = none),
// on this rank alone (no data-parallel reduction), without updating: *loss and *grad_norm (before clipping). Returns 0 / −1.
int hy_trainer_loss_and_grads(hy_trainer *t, const hy_batch *b, const int32_t *targets, double *loss,
                              double *grad_norm);
// One full-batch step at hp.lr: loss/gradients as above, then (unless non-finite) clip and AdamW.
int hy_trainer_step(hy_trainer *t, const hy_batch *b, const int32_t *targets, double *loss, double *grad_norm);
// Next-token targets of a packed batch (−1 at each document's last token).
void hy_next_token_targets(const hy_batch *b, int32_t *targets);

// ---- Steps with any loss over per-token logprobs (DPO, RL: learner/losses.h) ------------------
// Per micro-batch: forward (activations kept) → lm_token_logprobs → the loss callback turns the
// logprobs into dlogp → lm_logprobs_backward → hy_model_backward_hidden, gradients += into
// t->grads. The callback must normalise by the whole step's counts (losses.h), so the micro-batch
// gradients simply add up; nothing is rescaled here.

// The loss of micro-batch i (mb) given logp (T) host fp32, the logprobs of mb->targets (0 where a
// target is −1): writes dlogp (T) = ∂(step loss)/∂logp (=) and *loss = this micro-batch's share of
// the step's loss. Returns 0 / −1 (hy_fail message: the step is abandoned).
typedef int (*hy_logp_loss_fn)(void *ctx, int i, const hy_micro_batch *mb, const float *logp, float *dlogp,
                               double *loss);

// logp (T) host = log π(targets[t] | tokens ..t) under m's current weights, 0 where targets[t] = −1: the
// same forward and lm-head pass a training step runs, so the numbers are those a step would see.
int hy_model_target_logprobs(const hy_model *m, const hy_batch *b, const int32_t *targets, float *logp);

// Gradients (t->grads =) of the loss fn defines over every micro-batch of sb, no update: *loss = Σ of
// the callback's shares, *grad_norm before clipping. Returns 0 / −1.
int hy_trainer_grads_custom(hy_trainer *t, const hy_step_batch *sb, hy_logp_loss_fn fn, void *ctx, double *loss,
                            double *grad_norm);
// One optimizer step with that loss at rate lr: gradients as above, then (unless non-finite) clip
// and AdamW. st as for hy_trainer_step_batch (targets: positions with a target). Returns 0 / −1.
int hy_trainer_step_custom(hy_trainer *t, const hy_step_batch *sb, hy_logp_loss_fn fn, void *ctx, double lr,
                           hy_step_stats *st);

#endif
