// The subcommands of the `hybrid` binary; each takes the arguments after its name.
#ifndef HY_COMMANDS_H
#define HY_COMMANDS_H

int cmd_init(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_sft(int argc, char **argv);
int cmd_dpo(int argc, char **argv);
int cmd_rl(int argc, char **argv);
int cmd_learn(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_runs(int argc, char **argv);
int cmd_reward_server(int argc, char **argv);

// ---- shared by the training commands (sft, dpo, rl); defined in cmd_sft.c ----
#include "../common/run_store.h"
#include "../learner/param_groups.h"
#include "../learner/sft_data.h"
#include "../learner/sft_loop.h"
#include "../learner/trainer.h"
#include "../model/tokenizer.h"
#include "args.h"

extern const arg_spec train_common_specs[];  // model, data, out, recipe, set, resume, steps, optimizer, store, ...
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
// --save-dir created, loop's tokenizer_path, config_yaml, peak_tflops and sink filled. With
// --store, the run is recorded there as kind ("sft", "dpo", "rl"; also the messages' prefix): the
// store is opened before the model loads (a bad store fails here), the run begun — or, with
// --resume, the newest run of the same --run-name and kind continued — once it has loaded; then
// every step's metrics and every checkpoint go to it. A store write that fails later is a warning
// and the rest of the run is not stored; training goes on. Started as one rank of a data-parallel
// job (`hybrid learn`, or RANK / WORLD_SIZE / MASTER_ADDR from a cluster launcher: learner/dp.h),
// it picks its GPU, joins the others and trains its share; rank 0 alone writes metrics, progress
// and the store. 0 / −1.
typedef struct {
    hy_model m;
    hy_tokenizer *tok;
    hy_param_groups groups;
    hy_trainer t;
    char tokenizer_path[4096];
    const char *kind;
    run_store *store;  // NULL = no --store
    int64_t run_id;
    int store_broken;  // a write failed: warned once, nothing more is written
    hy_train_sink sink;
    hy_dp *dp;         // data-parallel ranks (WORLD_SIZE > 1 in the environment), else NULL
    FILE *quiet;       // ranks other than 0: their metrics and progress go here (/dev/null)
} train_session;
int train_session_open(train_session *s, const arg_values *a, const char *kind, const char *model_dir,
                       hy_sft_loop *loop, const char *config_yaml);
// rc: the run's result (0 = done, else failed), recorded in the store.
void train_session_close(train_session *s, int rc);
// Reference logprobs per token of ds (learner/ref_logprobs.h) for a run: the reference is
// --ref-model, else --model (the starting weights: s->m itself unless resuming); cached under
// --ref-cache, else OUT.ref-cache. settings goes into the cache key. out (ds->total). 0 / −1.
int train_reference_logprobs(const arg_values *a, train_session *s, const hy_dataset *ds, const char *settings,
                             float *out);

#endif
