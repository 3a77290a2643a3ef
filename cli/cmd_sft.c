// `hybrid sft`: supervised fine-tuning — options, recipe and resume around the learner's loop.
//
// Configuration comes from one option table (below): defaults, then a YAML recipe (--recipe), then
// command-line options, then --set KEY=VALUE overrides in order; every source is checked against
// the same types, ranges and choices, and the resolved configuration is printed to stderr and
// stored in every checkpoint as recipe.yaml. All data is read and validated before the first step
// (a bad line costs nothing and nothing is written), and --out is checked to be replaceable before
// training, so a long run cannot fail at its very end for a reason known at its start.
//
// The option machinery is shared with `hybrid dpo` and `hybrid rl` (declared in commands.h): the
// common option table (each command appends its own entries at run time), option resolution, the
// loop fields, the model/trainer session and the reference logprobs of a run.
//
// The loop itself is learner/sft_loop.h. --save-every writes checkpoints to --save-dir; the final
// state always goes to --out, which is itself a checkpoint that --resume accepts
// (learner/train_state.h). With --store, the session records the run in the run store through the
// loop's sink (common/run_store.h): the store is checked before the model loads, and once training
// runs, a failing store costs a warning, never the run.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/atomic_file.h"
#include "../common/hy_error.h"
#include "../common/text_list.h"
#include "../learner/param_groups.h"
#include "../learner/ref_logprobs.h"
#include "../learner/sft_data.h"
#include "../learner/sft_loop.h"
#include "../learner/train_state.h"
#include "../learner/trainer.h"
#include "../proto/weights.h"
#include "args.h"
#include "cli_common.h"
#include "commands.h"

// The options every training command takes (sft, dpo, rl): shared through commands.h.
const arg_spec train_common_specs[] = {
    {"model", ARG_STR, NULL, "model directory to start from (not needed with --resume)", 0, 0},
    {"kind", ARG_CHOICE, NULL, "{sft|dpo|rl}: the command a recipe is for (hybrid run RECIPE hands it over)", 0, 0},
    {"data", ARG_STR, NULL, "JSONL of {\"tokens\"[, \"mask\"]}, {\"text\"} or {\"messages\"} lines", 0, 0},
    {"out", ARG_STR, NULL, "where the final checkpoint goes (an HF model directory plus optimizer and data state)", 0,
     0},
    {"recipe", ARG_STR, NULL, "YAML file of option: value lines (any option below but recipe, set, resume)", 0, 0},
    {"set", ARG_STR, NULL, "KEY=VALUE override of an option, applied after the recipe and options (repeatable)", 0, 0},
    {"resume", ARG_STR, NULL, "checkpoint directory to continue from: weights, optimizer state, data position", 0, 0},
    {"steps", ARG_INT, "1", "optimizer steps in all (a resumed run continues up to this)", 0, 1e9},
    {"batch-size", ARG_INT, "0", "sequences per optimizer step; 0 = every sequence (full batch)", 0, 1e9},
    {"micro-batch-tokens", ARG_INT, "0",
     "token budget of one micro-batch; a step's sequences are split over as many as needed (gradient accumulation); "
     "0 = the whole step in one",
     0, 1e9},
    {"max-seq-len", ARG_INT, "0", "cut longer sequences to their first N tokens; 0 = no limit", 0, 1e9},
    {"seed", ARG_INT, "0", "data-order seed (a new shuffle each epoch)", 0, 9e15},
    {"shuffle", ARG_INT, "1", "1 = shuffle every epoch, 0 = file order", 0, 1},
    {"lr", ARG_FLOAT, "1e-3", "peak learning rate (torch AdamW default)", 0, 0},
    {"lr-schedule", ARG_CHOICE, "constant", "after warmup {constant|linear|cosine} decay to min-lr-ratio·lr", 0, 0},
    {"warmup-steps", ARG_INT, "0", "linear warmup steps from 0 up to lr", 0, 1e9},
    {"min-lr-ratio", ARG_FLOAT, "0", "floor of the linear / cosine decay, as a fraction of lr", 0, 1},
    {"beta1", ARG_FLOAT, "0.9", "AdamW beta1", 0, 1},
    {"beta2", ARG_FLOAT, "0.999", "AdamW beta2", 0, 1},
    {"eps", ARG_FLOAT, "1e-8", "AdamW epsilon", 0, 0},
    {"weight-decay", ARG_FLOAT, "0.01", "AdamW decoupled weight decay (except the no-decay parameters)", 0, 0},
    {"no-decay", ARG_STR, HY_NO_DECAY_DEFAULT,
     "parameters without weight decay, comma-separated: kinds (norm, bias, a_log, dt_bias, embed, conv, lm_head) or "
     "name substrings; none = decay every parameter",
     0, 0},
    {"grad-clip", ARG_FLOAT, "1.0", "global grad-norm clipping threshold; 0 = no clipping", 0, 1e30},
    {"save-every", ARG_INT, "0", "also write a checkpoint to save-dir every N steps; 0 = only the final one", 0, 1e9},
    {"save-dir", ARG_STR, NULL, "directory for periodic checkpoints (step-NNNNNN inside; created if missing)", 0, 0},
    {"save-final", ARG_INT, "1", "0 = no final checkpoint at --out (timing runs of large models)", 0, 1},
    {"activation-checkpointing", ARG_INT, "0",
     "1 = keep only each layer's input in the forward and recompute the layer in the backward (less memory, one "
     "more forward; the same numbers)",
     0, 1},
    {"peak-tflops", ARG_FLOAT, "989",
     "the GPU's dense bf16 peak in TFLOP/s, for the MFU column on CUDA (989 = H100 SXM)", 0, 1e6},
    {"tokenizer", ARG_STR, NULL, "tokenizer.json (default: the model directory's)", 0, 0},
    {"device", ARG_STR, "auto", "cpu, cuda, or auto (CUDA when a GPU is present)", 0, 0},
    {"store", ARG_STR, NULL,
     "run store (SQLite, created if missing) to record the run in: recipe, metrics per step, checkpoints "
     "(docs/run-store.md); none by default",
     0, 0},
    {"run-name", ARG_STR, NULL, "the run's name in the store (default: COMMAND-BASENAME of --out, e.g. sft-tiny-sft)",
     0, 0},
};
const int train_common_n = sizeof train_common_specs / sizeof *train_common_specs;

static const arg_spec sft_specs[] = {
    {"loss-norm", ARG_CHOICE, "token",
     "loss normalisation {token|sequence}: mean over the step's trained tokens, or mean over its sequences of each "
     "one's token mean",
     0, 0},
    {"train-on", ARG_CHOICE, "assistant",
     "trained tokens of conversations {assistant|all}: each assistant turn's content and its <|im_end|>, or every "
     "token",
     0, 0},
};
static arg_spec specs[ARGS_MAX];
static arg_command command = {
    "sft",
    "sft --model DIR --data IN.jsonl --out DIR [--recipe FILE.yaml] [--set KEY=VALUE ...] [--resume CKPT] "
    "[--steps N --batch-size B --micro-batch-tokens T --lr X ...]",
    "Supervised fine-tuning: AdamW (PyTorch semantics) on fp32 master weights over shuffled, packed batches of\n"
    "sequences with loss masks, gradient accumulation, warmup + decay, grad clipping and weight-decay\n"
    "exclusions. Prints one JSON line of metrics per step on stdout and a progress line on stderr; writes a\n"
    "checkpoint (HF model + optimizer and data state) to --out, and every --save-every steps to --save-dir.\n"
    "Options may come from a YAML recipe; command-line options and --set override it (docs/recipes.md).",
    specs, 0};

// Options that are not recipe keys, and not part of the stored configuration.
const char *const train_not_in_recipe[] = {"recipe", "set", "resume", NULL};

int train_command_build(arg_spec *buf, const arg_spec *own, int n_own, const char *batch_help) {
    int n = 0;
    for (int i = 0; i < train_common_n; i++) {
        buf[n] = train_common_specs[i];
        if (batch_help && !strcmp(buf[n].name, "batch-size")) buf[n].help = batch_help;
        n++;
    }
    if (n + n_own > ARGS_MAX) {
        fprintf(stderr, "hybrid: internal error: %d options exceed ARGS_MAX (%d)\n", n + n_own, ARGS_MAX);
        abort();
    }
    for (int i = 0; i < n_own; i++) buf[n++] = own[i];
    return n;
}

// Moves every "--set K=V" / "--set=K=V" out of argv (into sets), keeping the rest in order.
static int extract_sets(const char *name, int argc, char **argv, char **rest, int *n_rest, const char **sets,
                        int *n_sets) {
    *n_rest = *n_sets = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--set")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "hybrid %s: option '--set' needs a value (KEY=VALUE)\n", name);
                return -1;
            }
            sets[(*n_sets)++] = argv[++i];
        } else if (!strncmp(argv[i], "--set=", 6)) {
            sets[(*n_sets)++] = argv[i] + 6;
        } else {
            rest[(*n_rest)++] = argv[i];
        }
    }
    return 0;
}

// Applies one --set KEY=VALUE (0 / −1 with an hy_fail message).
static int apply_set(const arg_command *cmd, arg_values *a, const char *kv) {
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) return hy_fail("--set '%s': expected KEY=VALUE", kv);
    char key[64];
    snprintf(key, sizeof key, "%.*s", (int)(eq - kv), kv);
    for (const char *const *k = train_not_in_recipe; *k; k++)
        if (!strcmp(key, *k)) return hy_fail("--set '%s': %s cannot be set this way; use --%s", key, key, key);
    return args_set(cmd, a, key, eq + 1, "--set");
}

int train_resolve_options(const arg_command *cmd, int argc, char **argv, arg_values *a) {
    memset(a, 0, sizeof *a);
    char **rest = hy_malloc(sizeof *rest * (size_t)(argc + 1));
    const char **sets = hy_malloc(sizeof *sets * (size_t)(argc + 1));
    int n_rest, n_sets, status = 0;
    if (extract_sets(cmd->name, argc, argv, rest, &n_rest, sets, &n_sets)) {
        status = 2;
    } else {
        const int rc = args_parse(cmd, n_rest, rest, a);
        status = rc > 0 ? -1 : rc < 0 ? 2 : 0;  // −1: help printed
    }
    if (!status && arg_str(a, "recipe") && args_apply_recipe(cmd, a, arg_str(a, "recipe"), train_not_in_recipe))
        status = cli_error(cmd->name);
    for (int i = 0; i < n_sets && !status; i++)
        if (apply_set(cmd, a, sets[i])) {
            fprintf(stderr, "hybrid %s: %s\n", cmd->name, hy_last_error());
            status = 2;
        }
    free(rest);
    free(sets);
    return status;
}

void train_loop_from_args(const arg_values *a, hy_sft_loop *l) {
    memset(l, 0, sizeof *l);
    l->steps = arg_int(a, "steps");
    l->batch_size = (int)arg_int(a, "batch-size");
    l->micro_tokens = (int)arg_int(a, "micro-batch-tokens");
    l->schedule.peak = arg_float(a, "lr");
    l->schedule.warmup_steps = arg_int(a, "warmup-steps");
    l->schedule.total_steps = l->steps;
    l->schedule.min_ratio = arg_float(a, "min-lr-ratio");
    hy_lr_decay_parse(arg_str(a, "lr-schedule"), &l->schedule.decay);  // a choice: already validated
    l->seed = (uint64_t)arg_int(a, "seed");
    l->shuffle = (int)arg_int(a, "shuffle");
    l->save_every = arg_int(a, "save-every");
    l->save_dir = arg_str(a, "save-dir");
    l->out = arg_str(a, "out");
    l->no_final_save = !arg_int(a, "save-final");
    l->resume = arg_str(a, "resume");
    l->metrics = stdout;
    l->progress = stderr;
}

// ---- the run store (--store) ----

// Metrics stored under the report's standard name (run_store.h) rather than their JSON name.
static const struct {
    const char *json, *store;
} store_renames[] = {
    {"reward_accuracy", RUN_METRIC_ACCURACY},
};

static void store_warn(train_session *s) {
    fprintf(stderr, "hybrid %s: warning: run store: %s; training goes on, the rest of this run is not stored\n",
            s->kind, hy_last_error());
    s->store_broken = 1;
}

// One transaction per step. RL's two clip fractions (disjoint shares of the same tokens) also go in
// summed, as the report's clip_fraction.
static void store_step(void *ctx, long step, const hy_step_metrics *m) {
    train_session *s = ctx;
    if (s->store_broken) return;
    const char *names[HY_STEP_METRICS_MAX + 1];
    double values[HY_STEP_METRICS_MAX + 1], clip = 0;
    int n = 0, n_clip = 0;
    for (int i = 0; i < m->n; i++) {
        names[n] = m->names[i];
        for (size_t r = 0; r < sizeof store_renames / sizeof *store_renames; r++)
            if (!strcmp(names[n], store_renames[r].json)) names[n] = store_renames[r].store;
        if (!strcmp(names[n], "clip_low_frac") || !strcmp(names[n], "clip_high_frac")) {
            clip += m->values[i];
            n_clip++;
        }
        values[n++] = m->values[i];
    }
    if (n_clip == 2) {
        names[n] = RUN_METRIC_CLIP_FRACTION;
        values[n++] = clip;
    }
    if (run_store_metrics_log(s->store, s->run_id, step, n, names, values)) store_warn(s);
}

static void store_checkpoint(void *ctx, long step, const char *dir) {
    train_session *s = ctx;
    if (!s->store_broken && run_store_checkpoint_add(s->store, s->run_id, step, dir)) store_warn(s);
}

// --run-name, else KIND-BASENAME(--out).
static void store_run_name(const arg_values *a, const char *kind, char *buf, size_t n) {
    if (arg_str(a, "run-name")) {
        snprintf(buf, n, "%s", arg_str(a, "run-name"));
        return;
    }
    const char *out = arg_str(a, "out");
    size_t len = strlen(out);
    while (len > 1 && out[len - 1] == '/') len--;
    size_t start = len;
    while (start > 0 && out[start - 1] != '/') start--;
    snprintf(buf, n, "%s-%.*s", kind, (int)(len - start), out + start);
}

// With --resume: the newest run of this name and kind, if there is one (*found).
static int store_run_continued(train_session *s, const char *name, int *found) {
    *found = 0;
    int64_t id;
    if (run_store_run_find(s->store, name, &id)) return 0;  // no such run: a new one
    run_store_run r;
    if (run_store_run_get(s->store, id, &r)) return -1;
    if (!strcmp(r.name, name) && !strcmp(r.kind, s->kind)) {
        s->run_id = id;
        *found = 1;
    }
    run_store_run_free(&r);
    return 0;
}

static int store_run_start(train_session *s, const arg_values *a, const char *model_dir, const char *yaml) {
    char name[1024];
    store_run_name(a, s->kind, name, sizeof name);
    int found = 0;
    if (arg_str(a, "resume") && store_run_continued(s, name, &found)) return -1;
    if (!found) {
        const char *model = arg_str(a, "model") ? arg_str(a, "model") : model_dir;
        const run_store_run_info info = {name, s->kind, yaml, model, NULL};
        if (run_store_run_begin(s->store, &info, &s->run_id)) return -1;
    }
    fprintf(stderr, "hybrid %s: %s run %lld '%s' in the run store %s\n", s->kind, found ? "continuing" : "recording",
            (long long)s->run_id, name, run_store_path(s->store));
    s->sink = (hy_train_sink){store_step, store_checkpoint, s};
    return 0;
}

// A rank's GPU: with several visible (a cluster launcher's node), the LOCAL_RANK-th of them; with
// one (`hybrid learn` gives each rank its own), that one. Set before CUDA starts in this process.
static int pin_rank_gpu(const hy_dp_env *env) {
    const char *vis = getenv("CUDA_VISIBLE_DEVICES");
    if (vis && *vis && !strchr(vis, ',')) return 0;
    char pick[64];
    if (!vis || !*vis) {
        snprintf(pick, sizeof pick, "%d", env->local_rank);
    } else {
        if (env->local_rank >= hy_list_count(vis))
            return hy_fail("environment: LOCAL_RANK=%d but CUDA_VISIBLE_DEVICES='%s' lists fewer GPUs", env->local_rank,
                           vis);
        hy_list_entry(vis, env->local_rank, pick, sizeof pick);
    }
    setenv("CUDA_VISIBLE_DEVICES", pick, 1);
    return 0;
}

// Joins the other ranks once the model is loaded: the fingerprint covers the parameter table and
// the resolved configuration (data, losses, batch sizes), so ranks started differently are refused.
static int session_join(train_session *s, const hy_dp_env *env, hy_sft_loop *loop, const char *config_yaml) {
    uint64_t fp = hy_weights_table_hash(&s->m);
    if (config_yaml) fp = hy_hash_bytes(fp, config_yaml, strlen(config_yaml));
    int timeout_s = 600;
    if (getenv("HY_DP_JOIN_TIMEOUT")) timeout_s = atoi(getenv("HY_DP_JOIN_TIMEOUT"));
    if (hy_dp_join(&s->dp, env, s->m.be, fp, timeout_s > 0 ? timeout_s : 600))
        return hy_fail_prefix("rank %d of %d", env->rank, env->world);
    if (env->rank == 0)
        fprintf(stderr, "hybrid %s: %d data-parallel ranks joined at %s; gradients and parameters over %s\n", s->kind,
                env->world, env->endpoint, hy_dp_transport(s->dp));
    if (env->rank != 0) {
        s->quiet = fopen("/dev/null", "w");
        if (!s->quiet) return hy_fail("/dev/null: cannot open");
        loop->metrics = loop->progress = s->quiet;
    }
    return 0;
}

int train_session_open(train_session *s, const arg_values *a, const char *kind, const char *model_dir,
                       hy_sft_loop *loop, const char *config_yaml) {
    memset(s, 0, sizeof *s);
    s->kind = kind;
    hy_dp_env env;
    if (hy_dp_env_read(&env) || (env.world > 1 && pin_rank_gpu(&env))) return -1;
    if (hy_atomic_dir_check_replaceable(loop->out, hy_checkpoint_files)) return -1;
    if (env.rank == 0 && arg_str(a, "store") && run_store_open(arg_str(a, "store"), RUN_STORE_CREATE, &s->store))
        return hy_fail_prefix("--store");
    if (loop->save_dir && loop->save_every > 0 && hy_mkdir_p(loop->save_dir)) {
        run_store_close(s->store);
        return -1;
    }
    if (cli_load_model(model_dir, arg_str(a, "tokenizer"), arg_str(a, "device"), &s->m, &s->tok)) {
        run_store_close(s->store);
        return -1;
    }
    s->m.recompute_layers = (int)arg_int(a, "activation-checkpointing");
    if (hy_param_groups_build(&s->groups, &s->m.table, arg_str(a, "no-decay"))) {
        cli_unload_model(&s->m, s->tok);
        run_store_close(s->store);
        return -1;
    }
    if (env.world > 1 && session_join(s, &env, loop, config_yaml)) {
        if (s->quiet) fclose(s->quiet);
        hy_dp_leave(s->dp);
        hy_param_groups_free(&s->groups);
        cli_unload_model(&s->m, s->tok);
        run_store_close(s->store);
        return -1;
    }
    adamw_params hp = {loop->schedule.peak, arg_float(a, "beta1"), arg_float(a, "beta2"), arg_float(a, "eps"),
                       arg_float(a, "weight-decay")};
    hy_trainer_init_dp(&s->t, &s->m, &hp, (float)arg_float(a, "grad-clip"), s->dp);
    hy_trainer_set_groups(&s->t, &s->groups);
    char buf[4096];
    const char *tok_file = cli_tokenizer_path(model_dir, arg_str(a, "tokenizer"), buf, sizeof buf);
    snprintf(s->tokenizer_path, sizeof s->tokenizer_path, "%s", tok_file ? tok_file : "");
    loop->tokenizer_path = tok_file ? s->tokenizer_path : NULL;
    loop->config_yaml = config_yaml;
    // MFU counts the whole job's tokens, so the peak is every rank's GPU together
    loop->peak_tflops = s->m.be->device == HY_DEVICE_CUDA ? arg_float(a, "peak-tflops") * hy_dp_world(s->dp) : 0.0;
    if (s->store) {
        if (store_run_start(s, a, model_dir, config_yaml)) {
            train_session_close(s, 0);
            return hy_fail_prefix("--store");
        }
        loop->sink = &s->sink;
    }
    return 0;
}

void train_session_close(train_session *s, int rc) {
    if (s->store && s->sink.step && run_store_run_end(s->store, s->run_id, rc ? "failed" : "done"))
        fprintf(stderr, "hybrid %s: warning: run store: %s\n", s->kind, hy_last_error());
    run_store_close(s->store);
    hy_trainer_free(&s->t);
    hy_dp_leave(s->dp);
    if (s->quiet) fclose(s->quiet);
    hy_param_groups_free(&s->groups);
    cli_unload_model(&s->m, s->tok);
    memset(s, 0, sizeof *s);
}

typedef struct {
    const char *data, *out, *resume, *model_dir, *save_dir;
    hy_sft_data_options data_opts;
    hy_sft_loop loop;
} sft_config;

static void config_from_args(const arg_values *a, sft_config *c) {
    memset(c, 0, sizeof *c);
    c->data = arg_str(a, "data");
    c->out = arg_str(a, "out");
    c->resume = arg_str(a, "resume");
    c->model_dir = c->resume ? c->resume : arg_str(a, "model");
    c->save_dir = arg_str(a, "save-dir");
    c->data_opts.train_on = strcmp(arg_str(a, "train-on"), "all") ? HY_TRAIN_ON_ASSISTANT : HY_TRAIN_ON_ALL;
    c->data_opts.max_seq_len = (int)arg_int(a, "max-seq-len");
    c->data_opts.max_tokens = (int)arg_int(a, "micro-batch-tokens");
    train_loop_from_args(a, &c->loop);
    c->loop.norm = strcmp(arg_str(a, "loss-norm"), "sequence") ? HY_LOSS_NORM_TOKEN : HY_LOSS_NORM_SEQUENCE;
}

// Usage problems found after parsing (exit status 2).
static int check_usage(const arg_values *a, const sft_config *c) {
    if (!c->model_dir || !c->data || !c->out)
        return hy_fail("--model (or --resume), --data and --out are required");
    if (c->loop.save_every > 0 && !c->save_dir) return hy_fail("--save-every needs --save-dir");
    if (c->resume && arg_str(a, "model"))
        fprintf(stderr, "hybrid sft: --resume given: weights come from %s, --model is ignored\n", c->resume);
    return 0;
}

int train_reference_logprobs(const arg_values *a, train_session *s, const hy_dataset *ds, const char *settings,
                             float *out) {
    const char *ref_dir = arg_str(a, "ref-model") ? arg_str(a, "ref-model") : arg_str(a, "model");
    if (!ref_dir) return hy_fail("the reference model is --ref-model, or --model: give one (with --resume too)");
    char cache[4200];
    if (arg_str(a, "ref-cache"))
        snprintf(cache, sizeof cache, "%s", arg_str(a, "ref-cache"));
    else
        snprintf(cache, sizeof cache, "%s.ref-cache", arg_str(a, "out"));
    // before training the policy is the starting model: no second copy needed
    const int own = arg_str(a, "resume") || arg_str(a, "ref-model");
    hy_model ref_m;
    hy_tokenizer *ref_tok = NULL;
    const hy_model *ref = &s->m;
    if (own) {
        if (cli_load_model(ref_dir, NULL, arg_str(a, "device"), &ref_m, &ref_tok))
            return hy_fail_prefix("reference model");
        ref = &ref_m;
    }
    uint64_t key;
    int reused, rc = hy_ref_key(arg_str(a, "data"), ds, settings, s->tokenizer_path[0] ? s->tokenizer_path : NULL,
                                ref, &key);
    // data-parallel: rank 0 computes (or reuses) the cache while the others wait, then they read it
    const int rank = hy_dp_rank(s->dp);
    if (!rc && rank == 0)
        rc = hy_ref_logprobs_cached(cache, key, ref, ds, (int)arg_int(a, "micro-batch-tokens"), out, &reused, stderr);
    if (s->dp) {
        double failed = rc != 0;
        if (hy_dp_sum_host(s->dp, &failed, 1)) rc = -1;
        else if (failed != 0.0 && !rc) rc = hy_fail("reference logprobs: another rank failed");
    }
    if (!rc && rank != 0)
        rc = hy_ref_logprobs_cached(cache, key, ref, ds, (int)arg_int(a, "micro-batch-tokens"), out, &reused,
                                    s->quiet ? s->quiet : stderr);
    if (own) cli_unload_model(&ref_m, ref_tok);
    return rc;
}

// Everything after the configuration: load, validate, train, save. Returns 0 / −1 (hy_fail).
static int run(const arg_values *a, sft_config *c, const char *config_yaml) {
    train_session ts;
    if (train_session_open(&ts, a, "sft", c->model_dir, &c->loop, config_yaml)) return -1;
    hy_sft_data_options opts = c->data_opts;
    opts.vocab = ts.m.cfg.vocab_size;
    hy_dataset ds;
    int rc = hy_dataset_load_jsonl(&ds, c->data, ts.tok, &opts);
    if (!rc) {
        fprintf(stderr,
                "hybrid sft: %d sequences (%lld tokens; %d without targets dropped, %d cut to max-seq-len), %zu "
                "parameters (%zu without weight decay), on %s\n",
                ds.n, (long long)ds.total, ds.n_dropped, ds.n_truncated, ts.m.table.n_params, ts.groups.n_no_decay,
                ts.m.be->name);
        rc = hy_sft_loop_run(&c->loop, &ts.t, &ds);
        hy_dataset_free(&ds);
    }
    train_session_close(&ts, rc);
    return rc;
}

// The resolved configuration, once per job: data-parallel ranks other than 0 would repeat it.
static void print_resolved(const char *cmd, const char *yaml) {
    const char *rank = getenv("RANK");
    if (!rank || !strcmp(rank, "0") || !getenv("WORLD_SIZE")) fprintf(stderr, "hybrid %s: resolved configuration:\n%s", cmd, yaml);
}

int train_command_main(const arg_command *cmd, int argc, char **argv, train_run_fn run) {
    arg_values a;
    int status = train_resolve_options(cmd, argc, argv, &a);
    if (status) {
        args_free(&a);
        return status < 0 ? 0 : status;
    }
    hy_sft_loop loop;
    train_loop_from_args(&a, &loop);
    const char *model_dir = loop.resume ? loop.resume : arg_str(&a, "model");
    status = 2;
    if (!model_dir || !arg_str(&a, "data") || !loop.out)
        fprintf(stderr, "hybrid %s: --model (or --resume), --data and --out are required\n", cmd->name);
    else if (loop.save_every > 0 && !loop.save_dir)
        fprintf(stderr, "hybrid %s: --save-every needs --save-dir\n", cmd->name);
    else {
        char *yaml = args_to_yaml(&a, train_not_in_recipe);
        print_resolved(cmd->name, yaml);
        status = run(&a, &loop, model_dir, yaml) ? cli_error(cmd->name) : 0;
        free(yaml);
    }
    args_free(&a);
    return status;
}

int cmd_sft(int argc, char **argv) {
    command.n_specs = train_command_build(specs, sft_specs, sizeof sft_specs / sizeof *sft_specs, NULL);
    arg_values a;
    int status = train_resolve_options(&command, argc, argv, &a);
    if (status) {
        args_free(&a);
        return status < 0 ? 0 : status;
    }
    sft_config c;
    config_from_args(&a, &c);
    if (check_usage(&a, &c)) {
        fprintf(stderr, "hybrid sft: %s\n", hy_last_error());
        args_free(&a);
        return 2;
    }
    char *yaml = args_to_yaml(&a, train_not_in_recipe);
    print_resolved("sft", yaml);
    status = run(&a, &c, yaml) ? cli_error("sft") : 0;
    free(yaml);
    args_free(&a);
    return status;
}
