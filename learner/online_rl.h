// Online RL with verifiable rewards: the learner's loop of `hybrid run` (docs/run.md).
//
// Step s (1-based) of S:
//   1. requests: groups_per_step prompts, each a generation request of group_size samples. Prompt
//      j of step s is task sample (s−1)·G + j (a bounded task is walked in a seeded permutation,
//      cycling), so a resumed run asks the same prompts. Requests of steps s+1 .. s+k (k =
//      max_staleness) are already out while step s trains: workers keep generating, and their
//      tokens are at most k versions old by the time they train.
//   2. collect the step's groups (exactly once each, whatever workers died on the way), decode
//      every completion's generated tokens and score it with the task's verifier.
//   3. one RL step (learner/rl.h) on those groups: group advantages, PPO-clip with truncated
//      importance weights against the rollout logprobs, tokens older than k versions dropped.
//   4. publish weight version s to the rollout source.
//   5. metrics (one JSON line, a progress line, the run store), trajectories to the run store,
//      a held-out evaluation every eval_every steps (and after the last), a checkpoint every
//      save_every steps (and after the last) with the run state beside it.
// The weight version before step s is s − 1: version 0 is the starting (e.g. post-SFT) weights.
#ifndef HY_LEARNER_ONLINE_RL_H
#define HY_LEARNER_ONLINE_RL_H

#include <stdio.h>

#include "common/run_store.h"
#include "evals/eval_run.h"
#include "evals/task.h"
#include "learner/lr_schedule.h"
#include "learner/rl.h"
#include "rollout/source.h"

typedef struct {
    const hy_task *task;  // training prompts (NULL with env_name)
    // Multi-turn episodes instead of a task: prompt j of step s is the first observation of the
    // environment reset with seed task_seed·1000003 + (s−1)·G + j; workers run the episodes
    // (rollout/episode.h) and the reward is the environment's, found by replaying the generated
    // turns through a copy here.
    const char *env_name, *env_params;
    uint64_t task_seed;   // permutation of a bounded task
    long train_size;      // a bounded task: train on samples 0 .. train_size − 1 (the rest held out); 0 = all
    long steps;           // RL steps in all
    long start_step;      // steps already done (a resumed run); the model holds version start_step
    int groups_per_step, group_size;
    int max_tokens;
    float temperature, top_p;
    int top_k;
    uint64_t seed;
    int chat;           // prompts rendered with the chat template (else the plain prompt text)
    const char *reward_server;  // score with this reward server (evals/reward_client.h); NULL = in-process
    int max_staleness;  // k ≥ 0
    hy_rl_options rl;   // rl.use_versions / max_staleness are set from max_staleness
    hy_lr_schedule schedule;
    int micro_tokens;   // token budget of a micro-batch; 0 = the whole step at once
    // held-out evaluation
    const hy_task *eval_task;  // NULL = none
    hy_eval_options eval;      // its first_index, n_prompts, samples, sampling
    const char *eval_name;     // task name for the run store
    long eval_every;           // 0 = only after the last step
    int eval_at_start;         // also evaluate before the first step (not when resuming)
    // checkpoints: OUT/step-NNNNNN and OUT/run_state.json
    const char *out;
    long save_every;  // 0 = only after the last step
    const char *config_yaml, *tokenizer_path;
    // reporting
    run_store *store;  // NULL = none
    int64_t run_id;
    FILE *metrics, *progress;
} hy_online_config;

// Runs steps start_step+1 .. steps on trainer t (its model is the policy) with rollouts from src.
// tok decodes completions for the verifier. 0 / −1.
int hy_online_rl_run(const hy_online_config *c, hy_trainer *t, const hy_tokenizer *tok, hy_rollout_source *src);

// Held-out evaluation of m as the loop runs it (also used by the CLI after SFT): *pass1 and the
// result line on progress; writes pass@1 / pass@k / mean_reward rows to the store at step. 0 / −1.
int hy_online_eval(const hy_online_config *c, const hy_model *m, const hy_tokenizer *tok, long step,
                   hy_eval_result *r);

// Writes OUT/run_state.json atomically: {"phase", "step", "checkpoint"} — what a restarted run
// resumes from. Reads it back (found = 0 when there is none). 0 / −1.
int hy_run_state_write(const char *out, const char *phase, long step, const char *checkpoint);
int hy_run_state_read(const char *out, int *found, char *phase, size_t phase_n, long *step, char *checkpoint,
                      size_t checkpoint_n);

#endif
