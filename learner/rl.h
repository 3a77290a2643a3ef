// Offline RL on the learner (GRPO-family): trajectory data, per-step group advantages, PPO-clip
// passes with truncated importance sampling, and the loop task.
//
// A trajectory is prompt_tokens + completion_tokens as one hy_dataset sequence. Only generated
// completion tokens are trained (mask = generated_mask; prompt and appended tool output are 0), so
// appended tokens get no gradient by construction: their positions have no target, hence dlogp = 0
// and a zero row of dlogits. Per dataset token we keep the rollout engine's logprob and the weight
// version that generated it.
//
// A step takes whole groups (the data order permutes groups, not sequences): advantages
// (loss_rl_advantages) are computed over the step's sequences, so a group split between steps
// would get the wrong baseline — hy_rl_prepare refuses one. The normaliser is summed over every
// micro-batch first (loss_rl_count), so micro-batches add up to one batch. ppo_epochs optimizer
// updates run on the same micro-batches; old_logp is recorded during the first pass (where it
// equals logp, so the first pass passes old_logp = NULL: ratio 1 with slope 1) and reused after.
//
// Weight versions: the learner's version before loop step s is start_version + s − 1; with
// max_staleness ≥ 0 older tokens are stale (dropped, or kept with the importance weight).
#ifndef HY_RL_H
#define HY_RL_H

#include <stdint.h>

#include "losses.h"
#include "sft_loop.h"
#include "trainer.h"
#include "unit_batch.h"

typedef struct {
    int max_seq_len;  // 0 = no limit; a longer trajectory is an error (cutting would change its reward's meaning)
    int max_tokens;   // 0 = no limit; a trajectory longer than this is an error
    int vocab;
} hy_rl_data_options;

typedef struct {
    hy_dataset ds;          // one sequence per trajectory: prompt, then completion
    float *rollout_logp;    // (ds.total) per token; 0 on prompt and appended tokens
    int32_t *version;       // (ds.total) per token; −1 on prompt and appended tokens
    double *reward;         // (ds.n)
    int32_t *group;         // (ds.n) group id as in the file
    int *group_of;          // (ds.n) dense group index, 0 .. n_groups
    int32_t *prompt_len;    // (ds.n)
    int n_groups;
    int *group_start;       // (n_groups + 1) into group_seqs
    int *group_seqs;        // (ds.n) sequences of each group, in file order
    int max_completion;     // longest completion (the constant normaliser's default budget)
    int max_version;        // newest version in the data
    uint64_t hash;          // tokens, masks, rewards, groups, logprobs, versions
} hy_rl_data;

int hy_rl_data_load(hy_rl_data *d, const char *path, const hy_rl_data_options *o);
void hy_rl_data_init(hy_rl_data *d);
// Adds a trajectory (tests); gen_mask, rollout_logp, version (n_completion each) may be NULL (all
// 1, 0, 0). Call hy_rl_data_finish after the last one.
void hy_rl_data_add(hy_rl_data *d, int group, const int32_t *prompt, int n_prompt, const int32_t *completion,
                    int n_completion, const uint8_t *gen_mask, const float *rollout_logp, const int32_t *version,
                    double reward);
void hy_rl_data_finish(hy_rl_data *d);
void hy_rl_data_free(hy_rl_data *d);

typedef struct {
    loss_adv_kind advantage;  // LOSS_ADV_GRPO
    double adv_eps;           // 1e-6
    loss_rl_opts loss;        // clip, IS cap, KL coefficient, staleness, normaliser kind and budget
    int use_versions;         // 0: no token is stale (versions ignored)
    int use_rollout_logp;     // 0: no importance-sampling correction
    int start_version;        // learner's version before step 1
    int ppo_epochs;           // ≥ 1
} hy_rl_options;

void hy_rl_options_default(hy_rl_options *o);

typedef struct {
    loss_adv_stats adv;
    loss_rl_stats rl;   // means over all passes' contributing tokens; pg_loss, kl_loss of the first pass
    int n_tokens, n_seqs;  // the normaliser's counts
    int updates;        // optimizer updates made (0 when nothing contributes)
} hy_rl_step_stats;

typedef struct {
    hy_trainer *t;
    const hy_rl_data *d;
    const float *ref_tok;  // (ds.total) reference logprobs per token, or NULL (needed when kl_coef > 0)
    hy_rl_options o;
    int micro_tokens;
    hy_unit_batch ub;       // the prepared step
    double *adv;            // (ds.n) advantage per sequence of the prepared step
    uint8_t *keep;          // (ds.n)
    int pass;               // 0 = first pass (records old logprobs)
    float **old;            // per micro-batch: (T) old logprobs
    int *old_cap, n_old;
    hy_rl_step_stats stats;
} hy_rl_stepper;

void hy_rl_stepper_init(hy_rl_stepper *x, hy_trainer *t, const hy_rl_data *d, const float *ref_tok,
                        const hy_rl_options *o, int micro_tokens);
void hy_rl_stepper_free(hy_rl_stepper *x);
// Prepares a step over sequences seqs[0..n) at learner version current_version: whole groups only
// (−1 naming the group otherwise), advantages, packing, the step-wide normaliser. 0 / −1.
int hy_rl_prepare(hy_rl_stepper *x, const int *seqs, int n, int current_version);
// hy_logp_loss_fn for the prepared step (ctx = the stepper).
int hy_rl_loss_fn(void *ctx, int i, const hy_micro_batch *mb, const float *logp, float *dlogp, double *loss);
// ppo_epochs optimizer updates on the prepared step at rate lr; st from the first pass (tokens and
// micro-batches summed over passes), x->stats the RL stats. 0 / −1.
int hy_rl_step(hy_rl_stepper *x, double lr, hy_step_stats *st);
// The loop task over groups; metrics add the RL stats.
hy_loop_task hy_rl_loop_task(hy_rl_stepper *x);

#endif
