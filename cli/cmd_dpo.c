// `hybrid dpo`: preference tuning (DPO, length-normalised DPO) — options, recipe, reference
// logprobs and resume around the learner's loop.
//
// Options are sft's shared table (commands.h: model, data, out, recipe, --set, resume, schedule,
// AdamW, checkpoints, ...) plus the DPO ones below, resolved the same way (defaults < recipe <
// command line < --set). All pairs are read and validated first; then the reference model's
// logprobs of every sequence are computed once (or reused from the cache, learner/ref_logprobs.h),
// and the loop (learner/sft_loop.h with learner/dpo.h's task) trains, checkpoints and resumes
// exactly as sft does.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "../learner/dpo.h"
#include "cli_common.h"
#include "commands.h"

static const arg_spec dpo_specs[] = {
    {"loss", ARG_CHOICE, "dpo_norm",
     "{dpo|dpo_norm}: sigmoid DPO on summed response logprobs, or length-normalised DPO (per-token log-ratios; "
     "Tulu 3 / OLMo)",
     0, 0},
    {"beta", ARG_FLOAT, "0", "DPO beta; 0 = the loss's default (0.1 for dpo, 5 for dpo_norm)", 0, 1e6},
    {"label-smoothing", ARG_FLOAT, "0", "conservative DPO: the preference is wrong with this probability", 0, 0.49},
    {"ref-model", ARG_STR, NULL, "reference model directory (default: --model, the starting weights)", 0, 0},
    {"ref-cache", ARG_STR, NULL, "directory of the reference-logprob cache (default: OUT.ref-cache)", 0, 0},
};
static arg_spec specs[ARGS_MAX];
static arg_command command = {
    "dpo",
    "dpo --model DIR --data PAIRS.jsonl --out DIR [--recipe FILE.yaml] [--set KEY=VALUE ...] [--resume CKPT] "
    "[--loss dpo|dpo_norm --beta X --ref-model DIR --ref-cache DIR ...]",
    "Direct preference optimisation: each JSONL line is a prompt with a chosen and a rejected response\n"
    "(text, messages or token ids); the loss is on response tokens only, against the reference model's\n"
    "logprobs, computed once before training and cached by a hash of data, tokenizer settings and reference\n"
    "weights. Metrics add reward accuracy, margin and chosen/rejected rewards. Checkpoints and --resume as\n"
    "in sft (docs/learner.md, docs/cli.md).",
    specs, 0};

static int run(const arg_values *a, hy_sft_loop *loop, const char *model_dir, const char *yaml) {
    train_session ts;
    if (train_session_open(&ts, a, "dpo", model_dir, loop, yaml)) return -1;
    const hy_dpo_data_options o = {(int)arg_int(a, "max-seq-len"), loop->micro_tokens, ts.m.cfg.vocab_size};
    hy_dpo_data d;
    int rc = hy_dpo_data_load(&d, arg_str(a, "data"), ts.tok, &o);
    if (rc) {
        train_session_close(&ts, rc);
        return -1;
    }
    loss_dpo_opts lo;
    loss_dpo_opts_default(&lo, strcmp(arg_str(a, "loss"), "dpo") ? LOSS_DPO_NORM : LOSS_DPO_SIGMOID, 1.0);
    if (arg_float(a, "beta") > 0) lo.beta = arg_float(a, "beta");
    lo.label_smoothing = arg_float(a, "label-smoothing");
    fprintf(stderr, "hybrid dpo: %d pairs (%lld tokens; %d dropped without a response token, %d sequences cut), %s "
                    "beta %g, %zu parameters, on %s\n",
            d.n_pairs, (long long)d.ds.total, d.n_dropped, d.n_truncated, arg_str(a, "loss"), lo.beta, ts.m.table.n_params,
            ts.m.be->name);
    float *ref = hy_malloc(sizeof *ref * (size_t)(d.ds.total + 1));
    char settings[128];
    snprintf(settings, sizeof settings, "dpo max-seq-len=%ld", arg_int(a, "max-seq-len"));
    rc = train_reference_logprobs(a, &ts, &d.ds, settings, ref);
    if (!rc) {
        hy_dpo_stepper x;
        hy_dpo_stepper_init(&x, &ts.t, &d, &lo, loop->micro_tokens);
        hy_dpo_set_reference(&x, ref);
        const hy_loop_task task = hy_dpo_loop_task(&x);
        rc = hy_train_loop_run(loop, &ts.t, &task);
        hy_dpo_stepper_free(&x);
    }
    free(ref);
    hy_dpo_data_free(&d);
    train_session_close(&ts, rc);
    return rc;
}

int cmd_dpo(int argc, char **argv) {
    command.n_specs = train_command_build(specs, dpo_specs, sizeof dpo_specs / sizeof *dpo_specs,
                                          "preference pairs per optimizer step; 0 = every pair (full batch)");
    return train_command_main(&command, argc, argv, run);
}
