// The run store: one SQLite file that keeps everything a training run leaves behind — the run and
// its resolved recipe, metrics per step, trajectories, checkpoints and evaluations — so that
// `hybrid report` can draw it and people can query it with sqlite3 (docs/run-store.md).
//
// Several processes write one store at once (the learner its metrics, rollout workers their
// trajectories), each through its own run_store: SQLite's file locks serialise the writers, WAL
// lets readers (the report) run beside them, and a busy timeout makes contention wait instead of
// fail. Every write call is one transaction, so a step's metrics or a batch of trajectories land
// together or not at all. Writing a row that is already there (same run and step for a metric,
// same run and id for a trajectory) replaces it, so a run resumed from a checkpoint simply
// rewrites the steps it repeats.
//
// Errors: every function returns 0 on success and −1 on failure with an hy_fail message naming the
// store file, the step that failed and SQLite's reason. Nothing here aborts on bad input or a bad
// file; a store written by a newer build (higher schema version) is refused and left untouched.
// A run_store is used by one thread at a time.
#ifndef HY_RUN_STORE_H
#define HY_RUN_STORE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RUN_STORE_DEFAULT_PATH "runs/hybrid.sqlite"
// The schema this build writes and reads; older stores are migrated on open, newer ones refused.
#define RUN_STORE_SCHEMA_VERSION 1

// Metric names the report draws first, with titles (other names are drawn after them). Writers
// should log these names so every run's dashboard reads the same.
#define RUN_METRIC_LOSS "loss"
#define RUN_METRIC_REWARD "reward_mean"
#define RUN_METRIC_ACCURACY "accuracy"
#define RUN_METRIC_MISMATCH_KL "mismatch_kl"      // KL(rollout ‖ learner) estimate over sampled tokens
#define RUN_METRIC_CLIP_FRACTION "clip_fraction"  // share of tokens whose ratio was clipped
#define RUN_METRIC_GRAD_NORM "grad_norm"
#define RUN_METRIC_LR "lr"
#define RUN_METRIC_TOKENS_PER_S "tokens_per_s"
#define RUN_METRIC_SYNC_TIME "sync_time_s"  // weight sync learner → workers, seconds

typedef struct run_store run_store;

typedef enum {
    RUN_STORE_CREATE,    // create the file (and its parent folders) and the schema when missing
    RUN_STORE_EXISTING,  // the file must already be a run store (readers: nothing is created)
} run_store_mode;

// Opens path (NULL = RUN_STORE_DEFAULT_PATH). Refuses a file that is not SQLite, a SQLite database
// that is not a run store, and a store with a newer schema, naming the file.
int run_store_open(const char *path, run_store_mode mode, run_store **out);
void run_store_close(run_store *s);  // NULL is fine
const char *run_store_path(const run_store *s);
// How long a write waits for another process's transaction before failing (default 30 s).
void run_store_set_busy_timeout(run_store *s, int ms);

// ---- runs ----
typedef struct {
    const char *name;        // required, free text (shown escaped by the report)
    const char *kind;        // "sft", "dpo" or "rl"
    const char *recipe;      // the resolved recipe (YAML or JSON text); NULL = none
    const char *model;       // model path; NULL = none
    const char *git_commit;  // NULL = none
} run_store_run_info;

typedef struct {
    int64_t id;
    char *name, *kind, *status;         // status: running, done, failed or stopped
    char *recipe, *model, *git_commit;  // NULL when not given
    double created, updated, ended;     // Unix seconds; updated = last write; ended = 0 while running
    int64_t last_step;                  // highest step with a metric, −1 when none
} run_store_run;

// Starts a run (status "running"); *run_id is its id in this store.
int run_store_run_begin(run_store *s, const run_store_run_info *info, int64_t *run_id);
// Ends a run: status is "done", "failed" or "stopped".
int run_store_run_end(run_store *s, int64_t run_id, const char *status);
int run_store_run_get(run_store *s, int64_t run_id, run_store_run *out);
// Resolves ref: "latest" (the highest id), a run id, or a run name (the newest run of that name).
// An id wins over a name that reads like one.
int run_store_run_find(run_store *s, const char *ref, int64_t *run_id);
// Every run, in id order. Free with run_store_runs_free.
int run_store_runs_list(run_store *s, run_store_run **runs, int *n);
void run_store_run_free(run_store_run *r);
void run_store_runs_free(run_store_run *runs, int n);

// ---- metrics: generic (step, name, value) rows ----
// Logs n values for one step in one transaction (time = now). NaN is stored as NULL and read back
// as NaN. Logging a name again at the same step replaces the value.
int run_store_metrics_log(run_store *s, int64_t run_id, int64_t step, int n, const char *const *names,
                          const double *values);
// The names logged for a run, sorted. Free with run_store_names_free.
int run_store_metric_names(run_store *s, int64_t run_id, char ***names, int *n);
void run_store_names_free(char **names, int n);
// One metric's (step, value) points in step order; *n = 0 when never logged. Caller frees both.
int run_store_metric_series(run_store *s, int64_t run_id, const char *name, int64_t **steps, double **values, int *n);
// The value at the highest step; *found = 0 when the metric was never logged.
int run_store_metric_last(run_store *s, int64_t run_id, const char *name, int *found, int64_t *step, double *value);

// ---- trajectories ----
// Arrays are stored as little-endian blobs (int32 tokens and versions, float32 logprobs, uint8
// mask), so a store moves between machines. n_completion entries each for the optional arrays.
typedef struct {
    int64_t step;            // learner step the trajectory was used in (or produced for)
    int64_t id;              // unique within the run
    int64_t group_id;        // GRPO group (prompt) id; −1 = none
    int64_t weight_version;  // weight version that started the trajectory
    const int32_t *prompt_tokens;
    int n_prompt;
    const int32_t *completion_tokens;
    int n_completion;
    const uint8_t *generated_mask;  // 1 = sampled by the policy, 0 = inserted (tool output); NULL = none
    const float *logprobs;          // rollout logprob of each completion token; NULL = none
    const int32_t *token_versions;  // weight version per completion token (async RL); NULL = none
    double reward;
    const char *finish_reason;  // "stop", "length", ...; NULL = none
    const char *text;           // decoded completion; NULL = none
    void *owned;                // readers: the one allocation behind every pointer above
} run_store_trajectory;

// Adds n trajectories of one run in one transaction.
int run_store_trajectory_add(run_store *s, int64_t run_id, const run_store_trajectory *t, int n);
int run_store_trajectory_get(run_store *s, int64_t run_id, int64_t id, run_store_trajectory *out);
// The limit most recent trajectories (highest step, then id), newest first.
int run_store_trajectories_recent(run_store *s, int64_t run_id, int limit, run_store_trajectory **out, int *n);
int run_store_trajectory_count(run_store *s, int64_t run_id, int64_t *n);
void run_store_trajectory_free(run_store_trajectory *t);
void run_store_trajectories_free(run_store_trajectory *t, int n);

// ---- checkpoints and evaluations ----
typedef struct {
    int64_t step;
    char *path;
    double created;
} run_store_checkpoint;

typedef struct {
    int64_t step;
    char *task, *metric;
    double value;
    int64_t n;  // examples behind the value
    double created;
} run_store_eval;

int run_store_checkpoint_add(run_store *s, int64_t run_id, int64_t step, const char *path);
// In step order.
int run_store_checkpoints_list(run_store *s, int64_t run_id, run_store_checkpoint **out, int *n);
void run_store_checkpoints_free(run_store_checkpoint *c, int n);
int run_store_eval_add(run_store *s, int64_t run_id, int64_t step, const char *task, const char *metric, double value,
                       int64_t n);
// Ordered by task, metric, step.
int run_store_evals_list(run_store *s, int64_t run_id, run_store_eval **out, int *n);
void run_store_evals_free(run_store_eval *e, int n);

#ifdef __cplusplus
}
#endif

#endif
