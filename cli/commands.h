// The subcommands of the `hybrid` binary; each takes the arguments after its name.
#ifndef HY_COMMANDS_H
#define HY_COMMANDS_H

int cmd_init(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_sft(int argc, char **argv);
int cmd_dpo(int argc, char **argv);
int cmd_rl(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_runs(int argc, char **argv);

// ---- shared by the training commands (sft, dpo, rl); defined in cmd_sft.c ----
#include "../learner/param_groups.h"
#include "../learner/sft_data.h"
#include "../learner/sft_loop.h"
#include "../learner/trainer.h"
#include "../model/tokenizer.h"
#include "args.h"

extern const arg_spec train_common_specs[];  // model, data, out, recipe, set, resume, steps, optimizer, ...
extern const int train_common_n;
extern const char *const train_not_in_recipe[];  // recipe, set, resume
// buf (ARGS_MAX) = the common options (batch-size's help replaced when batch_help is given), then own.
// Returns the count.
int train_command_build(arg_spec *buf, const arg_spec *own, int n_own, const char *batch_help);
// Defaults < recipe < command line < --set. 0, −1 when --help was printed, or the exit status.
int train_resolve_options(const arg_command *cmd, int argc, char **argv, arg_values *a);
// The loop fields every command shares (steps, batches, schedule, order, checkpoints, streams).
void train_loop_from_args(const arg_values *a, hy_sft_loop *l);
// What dpo and rl do once their option table is built: resolve the options, require a model (or
// --resume), --data and --out, print the resolved configuration, then run(); the exit status.
typedef int (*train_run_fn)(const arg_values *a, hy_sft_loop *loop, const char *model_dir, const char *yaml);
int train_command_main(const arg_command *cmd, int argc, char **argv, train_run_fn run);

// The model, tokenizer, weight-decay groups and trainer of a run: --out checked replaceable,
// --save-dir created, loop's tokenizer_path, config_yaml and peak_tflops filled. 0 / −1.
typedef struct {
    hy_model m;
    hy_tokenizer *tok;
    hy_param_groups groups;
    hy_trainer t;
    char tokenizer_path[4096];
} train_session;
int train_session_open(train_session *s, const arg_values *a, const char *model_dir, hy_sft_loop *loop,
                       const char *config_yaml);
void train_session_close(train_session *s);
// Reference logprobs per token of ds (learner/ref_logprobs.h) for a run: the reference is
// --ref-model, else --model (the starting weights: s->m itself unless resuming); cached under
// --ref-cache, else OUT.ref-cache. settings goes into the cache key. out (ds->total). 0 / −1.
int train_reference_logprobs(const arg_values *a, train_session *s, const hy_dataset *ds, const char *settings,
                             float *out);

#endif
