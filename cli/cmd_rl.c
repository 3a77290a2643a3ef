// `hybrid rl`: offline RL from a JSONL of trajectories (group rewards, rollout logprobs, weight
// versions) — options, recipe, optional reference logprobs and resume around the learner's loop.
//
// Options are sft's shared table (commands.h) plus the RL ones below, resolved the same way. Every
// trajectory is validated before the first step (file:line and field). A step takes batch-size
// whole groups (learner/rl.h): GRPO or Dr.GRPO advantages over them, ppo-epochs PPO-clip updates
// with clip-higher, truncated importance weights from the rollout logprobs, an optional k3 KL to
// the reference (whose logprobs are then computed once and cached, as for dpo), and stale tokens
// dropped or kept by weight version.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "../learner/rl.h"
#include "cli_common.h"
#include "commands.h"

static const arg_spec rl_specs[] = {
    {"advantage", ARG_CHOICE, "grpo", "{grpo|drgrpo}: (r − mean)/std per group, or r − mean (Dr.GRPO)", 0, 0},
    {"clip-low", ARG_FLOAT, "0.2", "PPO ratio clip below: 1 − clip-low", 0, 0.999},
    {"clip-high", ARG_FLOAT, "0.28", "PPO ratio clip above: 1 + clip-high (DAPO clip-higher)", 0, 1e6},
    {"is-cap", ARG_FLOAT, "2", "cap of the truncated importance weight π_old/π_rollout; 0 = no correction", 0, 1e6},
    {"kl-coef", ARG_FLOAT, "0", "k3 KL-to-reference coefficient; 0 = off (no reference needed)", 0, 1e6},
    {"stale", ARG_CHOICE, "drop", "{drop|keep} tokens older than max-staleness versions (keep: IS-corrected)", 0, 0},
    {"max-staleness", ARG_INT, "-1", "versions a token may lag the learner; -1 = versions are not checked", -1, 1e9},
    {"start-version", ARG_INT, "-1",
     "the learner's weight version before step 1 (then + 1 per step); -1 = the newest in the data", -1, 2e9},
    {"loss-norm", ARG_CHOICE, "token",
     "{token|sequence|constant}: per trained token (DAPO), per-sequence means, or sequences × max-new-tokens "
     "(Dr.GRPO)",
     0, 0},
    {"max-new-tokens", ARG_INT, "0", "generation budget for loss-norm constant; 0 = the longest completion", 0, 1e9},
    {"ppo-epochs", ARG_INT, "1", "optimizer updates on each batch (old logprobs recorded on the first)", 1, 1000},
    {"ref-model", ARG_STR, NULL, "reference model for the KL (default: --model, the starting weights)", 0, 0},
    {"ref-cache", ARG_STR, NULL, "directory of the reference-logprob cache (default: OUT.ref-cache)", 0, 0},
};
static arg_spec specs[ARGS_MAX];
static arg_command command = {
    "rl",
    "rl --model DIR --data TRAJ.jsonl --out DIR [--recipe FILE.yaml] [--set KEY=VALUE ...] [--resume CKPT] "
    "[--advantage grpo|drgrpo --clip-low X --clip-high X --is-cap X --kl-coef X --ppo-epochs N ...]",
    "Offline RL on trajectories from the rollout engine: each JSONL line is one completion with its group,\n"
    "reward, rollout logprobs and weight version(s); only generated tokens train (not prompt or appended tool\n"
    "output). Steps take whole groups. Metrics add clip fractions, mean ratio, mismatch KL, reward mean,\n"
    "dropped groups and stale tokens. Checkpoints and --resume as in sft (docs/learner.md, docs/cli.md).",
    specs, 0};

static void options_from_args(const arg_values *a, const hy_rl_data *d, hy_rl_options *o) {
    hy_rl_options_default(o);
    o->advantage = strcmp(arg_str(a, "advantage"), "drgrpo") ? LOSS_ADV_GRPO : LOSS_ADV_DR_GRPO;
    o->loss.clip_low = arg_float(a, "clip-low");
    o->loss.clip_high = arg_float(a, "clip-high");
    o->use_rollout_logp = arg_float(a, "is-cap") > 0;
    o->loss.is_cap = o->use_rollout_logp ? arg_float(a, "is-cap") : 1.0;
    o->loss.kl_coef = arg_float(a, "kl-coef");
    o->loss.stale = strcmp(arg_str(a, "stale"), "keep") ? LOSS_STALE_DROP : LOSS_STALE_KEEP;
    o->use_versions = arg_int(a, "max-staleness") >= 0;
    o->loss.max_staleness = o->use_versions ? (int)arg_int(a, "max-staleness") : 0;
    o->start_version = arg_int(a, "start-version") >= 0 ? (int)arg_int(a, "start-version") : d->max_version;
    const char *norm = arg_str(a, "loss-norm");
    o->loss.norm.kind = !strcmp(norm, "sequence")   ? LOSS_NORM_SEQUENCE
                        : !strcmp(norm, "constant") ? LOSS_NORM_CONSTANT
                                                    : LOSS_NORM_TOKEN;
    o->loss.norm.max_tokens = (int)arg_int(a, "max-new-tokens");
    o->ppo_epochs = (int)arg_int(a, "ppo-epochs");
}

static int run(const arg_values *a, hy_sft_loop *loop, const char *model_dir, const char *yaml) {
    train_session ts;
    if (train_session_open(&ts, a, "rl", model_dir, loop, yaml)) return -1;
    const hy_rl_data_options o = {(int)arg_int(a, "max-seq-len"), loop->micro_tokens, ts.m.cfg.vocab_size};
    hy_rl_data d;
    int rc = hy_rl_data_load(&d, arg_str(a, "data"), &o);
    if (rc) {
        train_session_close(&ts, rc);
        return -1;
    }
    hy_rl_options ro;
    options_from_args(a, &d, &ro);
    if (ro.loss.stale == LOSS_STALE_KEEP && ro.use_versions && !ro.use_rollout_logp)
        rc = hy_fail("stale: keep corrects stale tokens with the importance weight: it needs is-cap > 0");
    if (!rc && ro.loss.norm.kind == LOSS_NORM_CONSTANT && ro.loss.norm.max_tokens > 0 &&
        ro.loss.norm.max_tokens < d.max_completion)
        rc = hy_fail("max-new-tokens = %d is below the longest completion in the data (%d)", ro.loss.norm.max_tokens,
                     d.max_completion);
    fprintf(stderr, "hybrid rl: %d trajectories in %d groups (%lld tokens), weight versions up to %d (start %d), %zu "
                    "parameters, on %s\n",
            d.ds.n, d.n_groups, (long long)d.ds.total, d.max_version, ro.start_version, ts.m.table.n_params,
            ts.m.be->name);
    float *ref = NULL;
    if (!rc && ro.loss.kl_coef > 0) {
        ref = hy_malloc(sizeof *ref * (size_t)(d.ds.total + 1));
        rc = train_reference_logprobs(a, &ts, &d.ds, "rl", ref);
    }
    if (!rc) {
        hy_rl_stepper x;
        hy_rl_stepper_init(&x, &ts.t, &d, ref, &ro, loop->micro_tokens);
        const hy_loop_task task = hy_rl_loop_task(&x);
        rc = hy_train_loop_run(loop, &ts.t, &task);
        hy_rl_stepper_free(&x);
    }
    free(ref);
    hy_rl_data_free(&d);
    train_session_close(&ts, rc);
    return rc;
}

int cmd_rl(int argc, char **argv) {
    command.n_specs = train_command_build(specs, rl_specs, sizeof rl_specs / sizeof *rl_specs,
                                          "whole groups per optimizer step; 0 = every group (full batch)");
    return train_command_main(&command, argc, argv, run);
}
