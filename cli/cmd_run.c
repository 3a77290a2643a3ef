// `hybrid run RECIPE.yaml [--set k=v]`: the post-training loop in one command (docs/run.md).
//
// Stages: (0) a model — the recipe's, or one made with `hybrid init --preset` into OUT/init-model;
// (1) optional SFT on the task's reference answers (learner/task_sft.h), checkpoint OUT/sft;
// (2) online RL with verifiable rewards (learner/online_rl.h), rollouts from the colocated engine
// (workers: 0) or from N worker processes started here over ZeroMQ; held-out evaluations, metrics,
// trajectories and checkpoints into the run store; (3) the HTML report, OUT/report.html.
// Killed and started again with the same recipe, a run continues from OUT/run_state.json (the
// newest checkpoint and its stage) and appends to the same run in the store; --fresh starts over.
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/atomic_file.h"
#include "../common/hy_error.h"
#include "../common/yaml_recipe.h"
#include "../evals/eval_run.h"
#include "../learner/dispatch.h"
#include "../learner/online_rl.h"
#include "../learner/task_sft.h"
#include "../learner/train_state.h"
#include "../rollout/local_source.h"
#include "cli_common.h"
#include "commands.h"

static const arg_spec specs[] = {
    {"recipe", ARG_STR, NULL, "YAML recipe (also the positional argument); options and --set override it", 0, 0},
    {"kind", ARG_CHOICE, "run", "{run|rl}: online RL (recipes of kind sft or dpo are handed to hybrid sft / dpo)", 0, 0},
    {"set", ARG_STR, NULL, "KEY=VALUE override applied after the recipe (repeatable)", 0, 0},
    {"model", ARG_STR, NULL, "model directory to start from (or init-preset)", 0, 0},
    {"init-preset", ARG_STR, NULL, "without --model: make a random model of this preset (e.g. demo) in OUT/init-model", 0, 0},
    {"out", ARG_STR, NULL, "run directory: checkpoints, run_state.json, report.html", 0, 0},
    {"store", ARG_STR, NULL, "run store (SQLite; default OUT/runs.sqlite)", 0, 0},
    {"run-name", ARG_STR, NULL, "the run's name in the store (default: run-BASENAME of --out)", 0, 0},
    {"task", ARG_STR, NULL, "training prompts: a task name (arithmetic, permutation, variables, kv_recall) or FILE.jsonl", 0, 0},
    {"task-params", ARG_STR, "", "the task's key=value,... parameters (docs/evals.md)", 0, 0},
    {"reward-server", ARG_STR, NULL, "score completions on this reward server (hybrid reward-server, or yours: docs/evals.md)", 0, 0},
    {"env", ARG_STR, NULL, "multi-turn episodes of this environment instead of a task (calculator, kv_lookup)", 0, 0},
    {"env-params", ARG_STR, "", "the environment's key=value,... parameters (docs/evals.md)", 0, 0},
    {"task-seed", ARG_INT, "1", "the task's seed", 0, 9e15},
    {"chat", ARG_INT, "1", "1 = prompts in the chat template; 0 = the plain prompt text", 0, 1},
    {"sft-steps", ARG_INT, "0", "SFT steps on the task's reference answers before RL; 0 = none", 0, 1e9},
    {"sft-batch-size", ARG_INT, "32", "sequences per SFT step", 1, 1e6},
    {"sft-lr", ARG_FLOAT, "1e-3", "SFT peak learning rate (cosine decay to 10 %)", 0, 10},
    {"sft-format", ARG_STR, "{answer}", "the SFT completion: {answer} is replaced by the reference answer", 0, 0},
    {"steps", ARG_INT, "20", "RL steps", 0, 1e9},
    {"groups-per-step", ARG_INT, "8", "prompts per RL step", 1, 1e6},
    {"group-size", ARG_INT, "8", "samples per prompt (the GRPO group)", 1, 1024},
    {"max-tokens", ARG_INT, "64", "tokens generated per sample at most", 1, 1e7},
    {"temperature", ARG_FLOAT, "1.0", "rollout sampling temperature", 0, 100},
    {"top-p", ARG_FLOAT, "1.0", "rollout nucleus mass (1 = off)", 1e-6, 1},
    {"top-k", ARG_INT, "0", "rollout top-k (0 = off)", 0, 1e9},
    {"seed", ARG_INT, "0", "sampling and model-init seed", 0, 9e15},
    {"lr", ARG_FLOAT, "1e-4", "RL learning rate", 0, 10},
    {"warmup-steps", ARG_INT, "0", "RL linear warmup steps", 0, 1e9},
    {"weight-decay", ARG_FLOAT, "0.0", "AdamW decoupled weight decay (norms, biases, A_log, dt_bias, embeddings excluded)", 0, 10},
    {"grad-clip", ARG_FLOAT, "1.0", "global grad-norm clipping; 0 = off", 0, 1e30},
    {"micro-batch-tokens", ARG_INT, "0", "token budget of one micro-batch; 0 = a step at once", 0, 1e9},
    {"advantage", ARG_CHOICE, "grpo", "{grpo|drgrpo}: (r − mean)/std per group, or r − mean", 0, 0},
    {"clip-low", ARG_FLOAT, "0.2", "PPO ratio clip below", 0, 0.999},
    {"clip-high", ARG_FLOAT, "0.28", "PPO ratio clip above (clip-higher)", 0, 1e6},
    {"is-cap", ARG_FLOAT, "2", "cap of the truncated importance weight against the rollout logprobs", 1, 1e6},
    {"max-staleness", ARG_INT, "1", "k: requests go out k steps ahead; tokens older than k versions are dropped", 0, 64},
    {"ppo-epochs", ARG_INT, "1", "optimizer updates per batch", 1, 100},
    {"stale", ARG_CHOICE, "drop", "{drop|keep} tokens older than max-staleness versions (keep: importance-weighted)", 0, 0},
    {"eval-task", ARG_STR, NULL, "held-out prompts (task name or FILE.jsonl; default: held-out samples of --task)", 0, 0},
    {"eval-prompts", ARG_INT, "64", "held-out prompts per evaluation", 0, 1e7},
    {"eval-samples", ARG_INT, "1", "completions per held-out prompt (pass@k)", 1, 1024},
    {"eval-temperature", ARG_FLOAT, "0", "evaluation sampling temperature (0 = greedy)", 0, 100},
    {"eval-every", ARG_INT, "10", "evaluate every N RL steps (and before the first and after the last)", 0, 1e9},
    {"workers", ARG_INT, "0", "rollout worker processes; 0 = the engine runs in the learner (colocated)", 0, 256},
    {"bind", ARG_STR, "tcp://127.0.0.1:*", "endpoint workers connect to (non-loopback needs key-file)", 0, 0},
    {"weight-sync", ARG_CHOICE, "zmq", "{zmq|nccl}: weight images over ZeroMQ, or an NCCL broadcast GPU to GPU", 0, 0},
    {"worker-gpus", ARG_STR, NULL, "GPUs of the workers, e.g. \"1,2,3\" (CUDA_VISIBLE_DEVICES of worker i)", 0, 0},
    {"key-file", ARG_STR, NULL, "CURVE key pair of the learner (off loopback)", 0, 0},
    {"authorized-keys", ARG_STR, NULL, "CURVE public keys of the workers let in", 0, 0},
    {"save-every", ARG_INT, "0", "checkpoint every N RL steps (and after the last)", 0, 1e9},
    {"device", ARG_STR, "auto", "cpu, cuda, or auto", 0, 0},
    {"memory", ARG_STR, "0.25", "rollout state pool budget (bytes or a fraction of free memory)", 0, 0},
    {"max-len", ARG_INT, "1024", "tokens per rollout sequence at most", 16, 1e7},
    {"fresh", ARG_FLAG, NULL, "start over even if OUT holds a run to continue", 0, 0},
};
static const char *const not_in_recipe[] = {"recipe", "set", "fresh", NULL};
static const arg_command command = {
    "run",
    "run RECIPE.yaml [--set KEY=VALUE ...] [--fresh]",
    "The post-training loop: optional SFT on a verifiable task's answers, then online RL (GRPO family) with\n"
    "rollouts from the colocated engine or from worker processes over ZeroMQ, held-out evaluations, metrics,\n"
    "trajectories and checkpoints in the SQLite run store, and an HTML report. Started again after being\n"
    "killed, it continues from the last checkpoint (docs/run.md, recipes/demo.yaml).",
    specs, sizeof specs / sizeof *specs};

typedef struct {
    run_store *store;
    int64_t run_id;
    int broken;
} store_sink;

static void sink_warn(store_sink *s) {
    fprintf(stderr, "hybrid run: warning: run store write failed (%s); training goes on without it\n", hy_last_error());
    s->broken = 1;
}

// SFT metrics go to the store as sft_<name>, apart from the RL curves of the same names.
static void sft_sink_step(void *ctx, long step, const hy_step_metrics *m) {
    store_sink *s = ctx;
    if (s->broken) return;
    char names[HY_STEP_METRICS_MAX][64];
    const char *ptr[HY_STEP_METRICS_MAX];
    for (int i = 0; i < m->n; i++) {
        snprintf(names[i], sizeof names[i], "sft_%s", m->names[i]);
        ptr[i] = names[i];
    }
    if (run_store_metrics_log(s->store, s->run_id, step, m->n, ptr, m->values)) sink_warn(s);
}

static void sft_sink_checkpoint(void *ctx, long step, const char *dir) {
    (void)step;
    store_sink *s = ctx;
    if (!s->broken && run_store_checkpoint_add(s->store, s->run_id, 0, dir)) sink_warn(s);
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int open_task(const char *name, const char *params, uint64_t seed, hy_task **out) {
    char label[512];
    return cli_open_task(name, params, seed, out, label, sizeof label);
}

// The model to start from: OUT/init-model made with `hybrid init` when the recipe names a preset.
static int ensure_model(const arg_values *a, const char *out, char *dir, size_t n) {
    if (arg_str(a, "model")) {
        snprintf(dir, n, "%s", arg_str(a, "model"));
        return 0;
    }
    if (!arg_str(a, "init-preset")) return hy_fail("the recipe names neither model nor init-preset");
    snprintf(dir, n, "%s/init-model", out);
    char cfg[4300];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    if (is_file(cfg)) return 0;
    char seed[32];
    snprintf(seed, sizeof seed, "%ld", arg_int(a, "seed"));
    char *argv[] = {"--preset", (char *)arg_str(a, "init-preset"), "--out", dir, "--seed", seed, NULL};
    if (cmd_init(6, argv)) return hy_fail("could not make the initial model in %s", dir);
    return 0;
}

typedef struct {
    const arg_values *a;
    const char *out;
    char store_path[4200], run_name[512], model_dir[4200], start_dir[4200];
    char phase[32], tokenizer_path[4200];
    long start_step;
    int resuming;
    hy_model m;
    hy_tokenizer *tok;
    hy_task *task, *eval_task;
    store_sink sink;
    hy_param_groups groups;
    char *yaml;
} run_ctx;

static int open_store(run_ctx *r) {
    const arg_values *a = r->a;
    if (arg_str(a, "store")) snprintf(r->store_path, sizeof r->store_path, "%s", arg_str(a, "store"));
    else snprintf(r->store_path, sizeof r->store_path, "%s/runs.sqlite", r->out);
    if (arg_str(a, "run-name")) {
        snprintf(r->run_name, sizeof r->run_name, "%s", arg_str(a, "run-name"));
    } else {
        char tmp[4200];
        snprintf(tmp, sizeof tmp, "%s", r->out);
        snprintf(r->run_name, sizeof r->run_name, "run-%s", basename(tmp));
    }
    if (run_store_open(r->store_path, RUN_STORE_CREATE, &r->sink.store)) return -1;
    if (r->resuming && run_store_run_find(r->sink.store, r->run_name, &r->sink.run_id) == 0) {
        fprintf(stderr, "hybrid run: continuing run '%s' (id %lld) in %s\n", r->run_name,
                (long long)r->sink.run_id, r->store_path);
        return 0;
    }
    const run_store_run_info info = {r->run_name, "rl", r->yaml, r->model_dir, NULL};
    return run_store_run_begin(r->sink.store, &info, &r->sink.run_id);
}

static void eval_options(const arg_values *a, hy_eval_options *e) {
    hy_eval_options_default(e);
    e->n_prompts = (int)arg_int(a, "eval-prompts");
    e->samples = (int)arg_int(a, "eval-samples");
    e->temperature = (float)arg_float(a, "eval-temperature");
    e->seed = (uint64_t)arg_int(a, "seed") + 7777;
    e->max_tokens = (int)arg_int(a, "max-tokens");
    e->chat = (int)arg_int(a, "chat");
    e->max_seqs = 64;
}

static int sft_stage(run_ctx *r) {
    const arg_values *a = r->a;
    const long steps = arg_int(a, "sft-steps");
    const int batch = (int)arg_int(a, "sft-batch-size");
    const int chat = (int)arg_int(a, "chat");
    int32_t end = r->m.cfg.eos_token_ids[0];
    if (chat) {
        const int im_end = hy_tokenizer_token_id(r->tok, "<|im_end|>");
        if (im_end >= 0) end = im_end;
    }
    long n = steps * batch;
    const long size = hy_task_size(r->task);
    const long held_out = arg_str(a, "eval-task") ? 0 : arg_int(a, "eval-prompts");
    if (size > 0 && n > size - held_out) n = size - held_out;  // a bounded task: its training lines, in epochs
    if (size > 0 && n < 1) return hy_fail("eval-prompts = %ld leaves no SFT lines of the %ld", held_out, size);
    hy_dataset ds;
    hy_dataset_init(&ds);
    if (hy_task_sft_dataset(r->task, r->tok, chat, arg_str(a, "sft-format"), end, 0, n, &ds)) {
        hy_dataset_free(&ds);
        return -1;
    }
    hy_sft_loop loop = {0};
    char out[4200];
    snprintf(out, sizeof out, "%s/sft", r->out);
    loop.steps = steps;
    loop.batch_size = batch;
    loop.micro_tokens = (int)arg_int(a, "micro-batch-tokens");
    loop.norm = HY_LOSS_NORM_TOKEN;
    loop.schedule.peak = arg_float(a, "sft-lr");
    loop.schedule.warmup_steps = steps / 10;
    loop.schedule.total_steps = steps;
    loop.schedule.decay = HY_LR_COSINE;
    loop.schedule.min_ratio = 0.1;
    loop.seed = (uint64_t)arg_int(a, "seed");
    loop.shuffle = 1;
    loop.out = out;
    loop.config_yaml = r->yaml;
    loop.tokenizer_path = r->tokenizer_path;
    loop.metrics = stdout;
    loop.progress = stderr;
    const hy_train_sink sink = {sft_sink_step, sft_sink_checkpoint, &r->sink};
    loop.sink = &sink;
    adamw_params hp = {loop.schedule.peak, 0.9, 0.999, 1e-8, arg_float(a, "weight-decay")};
    hy_trainer t;
    hy_trainer_init(&t, &r->m, &hp, (float)arg_float(a, "grad-clip"));
    hy_trainer_set_groups(&t, &r->groups);
    fprintf(stderr, "hybrid run: SFT, %ld steps of %d demonstrations (%d in all, %lld tokens)\n", steps, batch, ds.n,
            (long long)ds.total);
    int rc = hy_sft_loop_run(&loop, &t, &ds);
    hy_trainer_free(&t);
    hy_dataset_free(&ds);
    if (!rc) rc = hy_run_state_write(r->out, "rl", 0, out);
    return rc;
}

static int make_source(run_ctx *r, const hy_online_config *c, hy_rollout_source *src, hy_local_source **local,
                       hy_dispatch **remote) {
    const arg_values *a = r->a;
    const int workers = (int)arg_int(a, "workers");
    hy_engine_config ec;
    hy_engine_config_default(&ec);
    if (cli_parse_memory(arg_str(a, "memory"), &ec.memory_bytes, &ec.memory_fraction)) return -1;
    ec.max_len = (int)arg_int(a, "max-len");
    ec.max_seqs = c->groups_per_step * c->group_size * (c->max_staleness + 1);
    if (ec.max_seqs > 512) ec.max_seqs = 512;
    ec.tok = r->tok;
    if (workers == 0) {
        if (hy_local_source_new(local, &r->m, &ec, (uint64_t)r->start_step)) return -1;
        *src = hy_local_source_iface(*local);
        fprintf(stderr, "hybrid run: rollouts colocated with the learner (weights read in place)\n");
        return 0;
    }
    char exe[4096];
    if (cli_self_exe(exe, sizeof exe)) return hy_fail_prefix("starting workers");
    char max_len[32], max_seqs[32];
    snprintf(max_len, sizeof max_len, "%ld", arg_int(a, "max-len"));
    snprintf(max_seqs, sizeof max_seqs, "%d", ec.max_seqs);
    const char *argv[] = {exe, "worker", "--model", r->model_dir, "--device", arg_str(a, "device"), "--memory",
                          arg_str(a, "memory"), "--max-len", max_len, "--max-seqs", max_seqs, NULL};
    hy_dispatch_options o;
    hy_dispatch_options_default(&o);
    o.bind = arg_str(a, "bind");
    o.key_file = arg_str(a, "key-file");
    o.authorized_keys = arg_str(a, "authorized-keys");
    o.n_spawn = workers;
    o.spawn_argv = argv;
    o.nccl = !strcmp(arg_str(a, "weight-sync"), "nccl");
    o.worker_gpus = arg_str(a, "worker-gpus");
    if (hy_dispatch_new(remote, &r->m, &o, (uint64_t)r->start_step)) return -1;
    *src = hy_dispatch_iface(*remote);
    fprintf(stderr, "hybrid run: %d rollout workers on %s\n", workers, hy_dispatch_endpoint(*remote));
    return 0;
}

static int rl_stage(run_ctx *r) {
    const arg_values *a = r->a;
    hy_online_config c = {0};
    c.task = r->task;
    c.task_seed = (uint64_t)arg_int(a, "task-seed");
    c.steps = arg_int(a, "steps");
    c.start_step = r->start_step;
    c.groups_per_step = (int)arg_int(a, "groups-per-step");
    c.group_size = (int)arg_int(a, "group-size");
    c.max_tokens = (int)arg_int(a, "max-tokens");
    c.temperature = (float)arg_float(a, "temperature");
    c.top_p = (float)arg_float(a, "top-p");
    c.top_k = (int)arg_int(a, "top-k");
    c.seed = (uint64_t)arg_int(a, "seed");
    c.chat = (int)arg_int(a, "chat");
    c.max_staleness = (int)arg_int(a, "max-staleness");
    hy_rl_options_default(&c.rl);
    c.rl.advantage = strcmp(arg_str(a, "advantage"), "drgrpo") ? LOSS_ADV_GRPO : LOSS_ADV_DR_GRPO;
    c.rl.loss.clip_low = arg_float(a, "clip-low");
    c.rl.loss.clip_high = arg_float(a, "clip-high");
    c.rl.use_rollout_logp = 1;
    c.rl.loss.is_cap = arg_float(a, "is-cap");
    c.rl.loss.stale = strcmp(arg_str(a, "stale"), "keep") ? LOSS_STALE_DROP : LOSS_STALE_KEEP;
    c.rl.ppo_epochs = (int)arg_int(a, "ppo-epochs");
    c.schedule.peak = arg_float(a, "lr");
    c.schedule.warmup_steps = arg_int(a, "warmup-steps");
    c.schedule.total_steps = c.steps;
    c.schedule.decay = HY_LR_CONSTANT;
    c.micro_tokens = (int)arg_int(a, "micro-batch-tokens");
    c.eval_task = r->eval_task;
    eval_options(a, &c.eval);
    c.eval_name = arg_str(a, "eval-task") ? arg_str(a, "eval-task")
                  : r->task                  ? hy_task_name(r->task)
                                             : arg_str(a, "env");
    c.eval_every = arg_int(a, "eval-every");
    c.eval_at_start = 1;
    c.out = r->out;
    c.save_every = arg_int(a, "save-every");
    c.config_yaml = r->yaml;
    c.tokenizer_path = r->tokenizer_path;
    c.store = r->sink.broken ? NULL : r->sink.store;
    c.run_id = r->sink.run_id;
    c.metrics = stdout;
    c.progress = stderr;
    c.env_name = arg_str(a, "env");
    c.reward_server = arg_str(a, "reward-server");
    if (c.reward_server && c.env_name) return hy_fail("reward-server scores task completions; an env scores its own");
    c.env_params = arg_str(a, "env-params");
    if (r->task && !arg_str(a, "eval-task")) {  // held out from the training task
        const long size = hy_task_size(r->task);
        c.eval.first_index = size < 0 ? 1000000000000L : size - c.eval.n_prompts;
        if (size >= 0 && c.eval.first_index < 1)
            return hy_fail("eval-prompts = %d leaves no training prompts of the %ld in %s", c.eval.n_prompts, size,
                           arg_str(a, "task"));
        if (size >= 0) c.train_size = c.eval.first_index;
    }
    if (!c.eval_task || c.eval.n_prompts == 0) c.eval_task = NULL;
    adamw_params hp = {c.schedule.peak, 0.9, 0.999, 1e-8, arg_float(a, "weight-decay")};
    hy_trainer t;
    hy_trainer_init(&t, &r->m, &hp, (float)arg_float(a, "grad-clip"));
    hy_trainer_set_groups(&t, &r->groups);
    int rc = 0;
    if (r->start_step > 0) {
        hy_train_state st;
        rc = hy_checkpoint_load_state(r->start_dir, &t, &st);
        if (!rc) fprintf(stderr, "hybrid run: resuming RL at step %ld from %s\n", r->start_step, r->start_dir);
    }
    hy_rollout_source src;
    hy_local_source *local = NULL;
    hy_dispatch *remote = NULL;
    if (!rc) rc = make_source(r, &c, &src, &local, &remote);
    if (!rc) {
        fprintf(stderr, "hybrid run: RL, steps %ld..%ld, %d prompts × %d samples a step, staleness ≤ %d\n",
                r->start_step + 1, c.steps, c.groups_per_step, c.group_size, c.max_staleness);
        rc = hy_online_rl_run(&c, &t, r->tok, &src);
        char line[512];
        src.describe(src.ctx, line, sizeof line);
        fprintf(stderr, "hybrid run: %s\n", line);
    }
    hy_local_source_destroy(local);
    hy_dispatch_destroy(remote);
    hy_trainer_free(&t);
    return rc;
}

static void write_report(run_ctx *r) {
    char out[4200], id[32];
    snprintf(out, sizeof out, "%s/report.html", r->out);
    snprintf(id, sizeof id, "%lld", (long long)r->sink.run_id);
    char *argv[] = {"--store", r->store_path, "--run", id, "--out", out, NULL};
    if (cmd_report(6, argv) == 0) fprintf(stderr, "hybrid run: report: %s\n", out);
}

// Where to start: OUT/run_state.json unless --fresh.
static int find_start(run_ctx *r) {
    int found = 0;
    long step = 0;
    if (!arg_flag(r->a, "fresh") &&
        hy_run_state_read(r->out, &found, r->phase, sizeof r->phase, &step, r->start_dir, sizeof r->start_dir))
        return -1;
    if (!found) {
        snprintf(r->phase, sizeof r->phase, "start");
        return ensure_model(r->a, r->out, r->model_dir, sizeof r->model_dir);
    }
    r->resuming = 1;
    r->start_step = step;
    snprintf(r->model_dir, sizeof r->model_dir, "%s", r->start_dir);
    fprintf(stderr, "hybrid run: continuing from %s (stage %s, step %ld); --fresh starts over\n", r->start_dir, r->phase,
            step);
    return 0;
}

static int run(run_ctx *r) {
    const arg_values *a = r->a;
    if (hy_mkdir_p(r->out) || find_start(r) || open_store(r)) return -1;
    if (cli_load_model(r->model_dir, NULL, arg_str(a, "device"), &r->m, &r->tok)) return -1;
    if (!r->tok) return hy_fail("%s has no tokenizer.json: completions cannot be decoded for the verifier", r->model_dir);
    cli_tokenizer_path(r->model_dir, NULL, r->tokenizer_path, sizeof r->tokenizer_path);
    const uint64_t seed = (uint64_t)arg_int(a, "task-seed");
    const char *task = arg_str(a, "task"), *eval = arg_str(a, "eval-task") ? arg_str(a, "eval-task") : task;
    if (task && open_task(task, arg_str(a, "task-params"), seed, &r->task)) return -1;
    if (eval && open_task(eval, arg_str(a, "task-params"), seed, &r->eval_task)) return -1;
    if (arg_str(a, "env") && arg_int(a, "sft-steps") > 0)
        return hy_fail("sft-steps needs a task with reference answers; an environment has none");
    if (hy_param_groups_build(&r->groups, &r->m.table, "norm,bias,a_log,dt_bias,embed")) return -1;
    fprintf(stderr, "hybrid run: %s, %zu parameters on %s; run '%s' in %s\n", r->model_dir, r->m.table.n_params,
            r->m.be->name, r->run_name, r->store_path);
    if (!r->resuming && arg_int(a, "sft-steps") > 0 && sft_stage(r)) return -1;
    return rl_stage(r);
}

// The recipe's "kind:" value (sft, dpo, run, ...) into buf; "" when it has none.
static void recipe_kind(const char *path, char *buf, size_t n) {
    buf[0] = 0;
    const int line = path ? hy_yaml_key_line(path, "kind") : 0;
    FILE *f = line > 0 ? fopen(path, "r") : NULL;
    if (!f) return;
    char text[512];
    for (int i = 1; fgets(text, sizeof text, f); i++)
        if (i == line) {
            const char *v = strchr(text, ':');
            v = v ? v + 1 : "";
            v += strspn(v, " \t\"'");
            size_t k = strcspn(v, " \t\"'#\r\n");
            if (k >= n) k = n - 1;
            memcpy(buf, v, k);
            buf[k] = 0;
            break;
        }
    fclose(f);
}

int cmd_run(int argc, char **argv) {
    // `hybrid run RECIPE.yaml ...`: the positional recipe is --recipe.
    char **args = hy_malloc(sizeof *args * (size_t)(argc + 2));
    const char *recipe = NULL;
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (i == 0 && argv[i][0] != '-') args[n++] = "--recipe";
        if (i > 0 && !strcmp(argv[i - 1], "--recipe")) recipe = argv[i];
        if (i == 0 && argv[i][0] != '-') recipe = argv[i];
        args[n++] = argv[i];
    }
    char kind[32];
    recipe_kind(recipe, kind, sizeof kind);
    if (!strcmp(kind, "sft") || !strcmp(kind, "dpo")) {  // offline recipes: their own command runs them
        fprintf(stderr, "hybrid run: %s is a %s recipe: running hybrid %s\n", recipe, kind, kind);
        const int rc = !strcmp(kind, "sft") ? cmd_sft(n, args) : cmd_dpo(n, args);
        free(args);
        return rc;
    }
    arg_values a;
    int status = train_resolve_options(&command, n, args, &a);
    free(args);
    if (status) {
        args_free(&a);
        return status < 0 ? 0 : status;
    }
    if (!arg_str(&a, "out") || !!arg_str(&a, "task") == !!arg_str(&a, "env")) {
        fprintf(stderr, "hybrid run: out and one of task or env are required (in the recipe or as options)\n");
        args_free(&a);
        return 2;
    }
    run_ctx r = {0};
    r.a = &a;
    r.out = arg_str(&a, "out");
    r.yaml = args_to_yaml(&a, not_in_recipe);
    fprintf(stderr, "hybrid run: resolved configuration:\n%s", r.yaml);
    const int rc = run(&r);
    if (rc) cli_error("run");
    if (r.sink.store) {
        if (r.sink.run_id > 0 && run_store_run_end(r.sink.store, r.sink.run_id, rc ? "failed" : "done"))
            fprintf(stderr, "hybrid run: warning: %s\n", hy_last_error());
        if (r.sink.run_id > 0) write_report(&r);
        run_store_close(r.sink.store);
    }
    hy_param_groups_free(&r.groups);
    hy_task_destroy(r.task);
    hy_task_destroy(r.eval_task);
    if (r.m.be) cli_unload_model(&r.m, r.tok);
    free(r.yaml);
    args_free(&a);
    return rc ? 1 : 0;
}
