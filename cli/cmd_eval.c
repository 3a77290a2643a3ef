// `hybrid eval`: held-out evaluation of a model on a task (evals/eval_run.h does the work).
//
// The command only opens things and reports: the task (a registered name, or a JSONL file), the
// model, the --out file and the run store. stdout carries one JSON line with the numbers, so a
// script can read it without parsing prose; stderr the pool line, the progress line and a
// one-line summary. With --store the run is opened before the model loads, so a bad store or run
// fails in a second, not after the evaluation; the results go into its evaluations table, where
// `hybrid report` draws them beside a training run's metrics.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/hy_error.h"
#include "../common/run_store.h"
#include "../evals/eval_run.h"
#include "../evals/task.h"
#include "../model/tokenizer_utf8.h"
#include "args.h"
#include "cli_common.h"
#include "commands.h"

static const arg_spec specs[] = {
    {"model", ARG_STR, NULL, "model directory: config.json + safetensors (+ tokenizer.json)", 0, 0},
    {"task", ARG_STR, NULL, "a task name (arithmetic, permutation, variables, kv_recall) or a JSONL file", 0, 0},
    {"task-params", ARG_STR, NULL, "the task's key=value,... parameters (a JSONL file: verifier=NAME)", 0, 0},
    {"task-seed", ARG_INT, "0", "the synthetic task's seed", 0, 0},
    {"first-index", ARG_INT, "0", "task index of the first evaluated sample (held-out range start)", 0, 1e15},
    {"prompts", ARG_INT, "0", "samples evaluated from --first-index on; 0 = every one (JSONL files only)", 0, 1e9},
    {"samples", ARG_INT, "1", "completions per prompt, k: pass@1 and pass@k are reported", 1, 4096},
    {"temperature", ARG_FLOAT, "0", "sampling temperature; 0 = greedy (then k samples are identical)", 0, 100},
    {"top-p", ARG_FLOAT, "1.0", "nucleus sampling mass (1 = off)", 1e-6, 1},
    {"top-k", ARG_INT, "0", "keep the k most likely tokens (0 = off)", 0, 1e9},
    {"seed", ARG_INT, "0", "sampling seed: completion j of index i samples with seed + i*samples + j", 0, 0},
    {"max-tokens", ARG_INT, "512", "tokens per completion at most", 1, 1e7},
    {"chat", ARG_INT, "1", "1: the sample's messages in the chat template; 0: its plain prompt text as is", 0, 1},
    {"out", ARG_STR, NULL, "JSONL written: one line per completion (id, index, sample, prompt, completion, ...)", 0, 0},
    {"store", ARG_STR, NULL, "run store (SQLite, created if missing) to record pass@1 and pass@k in", 0, 0},
    {"run-name", ARG_STR, NULL,
     "the store's run to record in: a name, id or 'latest' (default: latest)", 0, 0},
    {"step", ARG_INT, "0", "the training step the evaluation is recorded at", 0, 0},
    {"memory", ARG_STR, "0.5", "state pool budget: bytes (2GiB, 512MiB) or a fraction of free memory", 0, 0},
    {"max-seqs", ARG_INT, "64", "sequences held at once at most", 1, 1e6},
    {"tokenizer", ARG_STR, NULL, "tokenizer.json (default: the model directory's)", 0, 0},
    {"device", ARG_STR, "auto", "cpu, cuda, or auto (CUDA when a GPU is present)", 0, 0},
};
static const arg_command command = {
    "eval",
    "eval --model DIR --task NAME|FILE.jsonl [--task-params k=v,...] [--first-index I --prompts N] [--samples K] "
    "[--temperature T --top-p P --top-k K --seed S --max-tokens N] [--chat 0|1] [--out OUT.jsonl] "
    "[--store DB --run-name NAME --step S]",
    "Generates k completions for each of the task's samples first-index .. first-index + prompts - 1,\n"
    "scores each with the sample's verifier and reports pass@1, the unbiased pass@k estimate\n"
    "1 - C(n-c, k)/C(n, k) (n = k completions, c passed: reward >= 0.5) and the mean reward.\n"
    "Completions stop at the config's eos ids and, with --chat 1, at <|im_end|>. Tasks, their\n"
    "parameters and the output fields: docs/evals.md.",
    specs, sizeof specs / sizeof *specs};

// ---- --out: one line per completion ----

typedef struct {
    FILE *f;
    const char *path;
    long first_index;
    int samples;
    long written;
    int failed;
} out_file;

// A JSON string of text that may not be valid UTF-8: a verdict's reason quotes the completion cut
// at a byte count (%.60s), possibly inside a character, which json_string would refuse.
static json_t *json_text(const char *text) {
    char *fixed;
    size_t len;
    hy_utf8_lossy(text, strlen(text), &fixed, &len);
    json_t *j = json_stringn(fixed, len);
    free(fixed);
    return j;
}

static void write_completion(void *ctx, const hy_task_sample *s, int j, const char *completion, const hy_verdict *v) {
    out_file *o = ctx;
    // hy_eval_run hands completions on in (index, sample) order, so the index is a count
    const long index = o->first_index + o->written / o->samples;
    json_t *line = json_object();
    json_object_set_new(line, "id", json_string(s->id));
    json_object_set_new(line, "index", json_integer(index));
    json_object_set_new(line, "sample", json_integer(j));
    if (s->prompt) {
        json_object_set_new(line, "prompt", json_string(s->prompt));
    } else {
        json_t *msgs = json_array();
        for (int i = 0; i < s->n_messages; i++)
            json_array_append_new(msgs, json_pack("{s:s, s:s%}", "role", s->messages[i].role, "content",
                                                  s->messages[i].content, s->messages[i].content_len));
        json_object_set_new(line, "messages", msgs);
    }
    json_object_set_new(line, "completion", json_text(completion));
    json_object_set_new(line, "answer", json_string(s->answer));
    json_object_set_new(line, "reward", json_real(v->reward));
    json_object_set_new(line, "reason", json_text(v->reason));
    if (!o->failed && (json_dumpf(line, o->f, JSON_COMPACT | JSON_REAL_PRECISION(9)) || fputc('\n', o->f) == EOF))
        o->failed = 1;
    json_decref(line);
    o->written++;
}

// ---- --store ----

typedef struct {
    run_store *store;
    int64_t run_id;
} store_run;

// Opens the store and finds the run (--run-name: a name, id or 'latest') to record in. Evaluations
// belong to a training run (hybrid run, sft, dpo, rl): a name that matches none is an error.
static int store_open(const arg_values *a, store_run *s) {
    memset(s, 0, sizeof *s);
    if (!arg_str(a, "store")) return 0;
    if (run_store_open(arg_str(a, "store"), RUN_STORE_CREATE, &s->store)) return hy_fail_prefix("--store");
    char name[1024];
    snprintf(name, sizeof name, "%s", arg_str(a, "run-name") ? arg_str(a, "run-name") : "latest");
    if (run_store_run_find(s->store, name, &s->run_id) == 0) return 0;
    run_store_close(s->store);
    s->store = NULL;
    return hy_fail("--store %s: no run '%s' to record the evaluation in (evaluations belong to a training run: "
                   "name one with --run-name)",
                   arg_str(a, "store"), name);
}

static int store_results(store_run *s, const arg_values *a, const char *label, const hy_eval_result *r) {
    const int64_t step = arg_int(a, "step");
    char metric[32];
    snprintf(metric, sizeof metric, "pass@%d", r->k);
    if (run_store_eval_add(s->store, s->run_id, step, label, "pass@1", r->pass_at_1, r->n_prompts) ||
        (r->k > 1 && run_store_eval_add(s->store, s->run_id, step, label, metric, r->pass_at_k, r->n_prompts)))
        return hy_fail_prefix("--store");
    fprintf(stderr, "hybrid eval: recorded in run %lld of the run store %s at step %lld\n", (long long)s->run_id,
            run_store_path(s->store), (long long)step);
    return 0;
}

static void store_close(store_run *s) { run_store_close(s->store); }

// ---- the command ----

static void report(const char *label, const hy_eval_result *r) {
    const double tps = r->seconds > 0 ? r->generated_tokens / r->seconds : 0.0;
    fprintf(stderr, "eval %s: pass@1 %.4f (n=%d)", label, r->pass_at_1, r->n_prompts);
    if (r->k > 1) fprintf(stderr, ", pass@%d %.4f", r->k, r->pass_at_k);
    fprintf(stderr, ", mean reward %.4f, %.1f tok/s (%ld tokens in %.2f s)\n", r->mean_reward, tps,
            r->generated_tokens, r->seconds);
    json_t *o = json_pack("{s:s, s:i, s:i, s:i, s:f, s:f, s:f, s:I, s:f, s:f}", "task", label, "n_prompts",
                          r->n_prompts, "k", r->k, "n_completions", r->n_completions, "pass_at_1", r->pass_at_1,
                          "pass_at_k", r->pass_at_k, "mean_reward", r->mean_reward, "generated_tokens",
                          (json_int_t)r->generated_tokens, "seconds", r->seconds, "tokens_per_s", tps);
    json_dumpf(o, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9));
    putchar('\n');
    fflush(stdout);
    json_decref(o);
}

static int options_from_args(const arg_values *a, hy_eval_options *o) {
    hy_eval_options_default(o);
    o->first_index = arg_int(a, "first-index");
    o->n_prompts = (int)arg_int(a, "prompts");
    o->samples = (int)arg_int(a, "samples");
    o->temperature = (float)arg_float(a, "temperature");
    o->top_p = (float)arg_float(a, "top-p");
    o->top_k = (int)arg_int(a, "top-k");
    o->seed = (uint64_t)arg_int(a, "seed");
    o->max_tokens = (int)arg_int(a, "max-tokens");
    o->chat = (int)arg_int(a, "chat");
    o->max_seqs = (int)arg_int(a, "max-seqs");
    o->progress = stderr;
    if (o->samples > 1 && o->temperature == 0.0f)
        fprintf(stderr, "hybrid eval: warning: --samples %d at temperature 0 gives %d identical completions\n",
                o->samples, o->samples);
    return cli_parse_memory(arg_str(a, "memory"), &o->memory_bytes, &o->memory_fraction);
}

// Everything after the task and store are open: the model, --out, the evaluation.
static int evaluate(const arg_values *a, const hy_eval_options *o, const hy_task *task, hy_eval_result *r) {
    hy_model m;
    hy_tokenizer *tok;
    if (cli_load_model(arg_str(a, "model"), arg_str(a, "tokenizer"), arg_str(a, "device"), &m, &tok)) return -1;
    int rc = 0;
    if (!tok) rc = hy_fail("no tokenizer: put tokenizer.json in the model directory or pass --tokenizer FILE");
    out_file out = {NULL, arg_str(a, "out"), o->first_index, o->samples, 0, 0};
    if (!rc && out.path && !(out.f = fopen(out.path, "w")))
        rc = hy_fail("%s: cannot create: %s", out.path, strerror(errno));
    if (!rc) rc = hy_eval_run(&m, tok, task, o, r, out.f ? write_completion : NULL, &out);
    if (out.f && (fclose(out.f) || out.failed) && !rc) rc = hy_fail("%s: write failed", out.path);
    cli_unload_model(&m, tok);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    arg_values a;
    int rc = args_parse(&command, argc, argv, &a);
    if (rc) return rc > 0 ? 0 : 2;
    if (!arg_str(&a, "model") || !arg_str(&a, "task")) {
        fprintf(stderr, "hybrid eval: --model and --task are required\n");
        return 2;
    }
    hy_eval_options o;
    hy_task *task;
    char label[512];
    if (options_from_args(&a, &o) || cli_open_task(arg_str(&a, "task"), arg_str(&a, "task-params"), (uint64_t)arg_int(&a, "task-seed"), &task, label,
                                                           sizeof label)) return cli_error("eval");
    store_run store;
    if (store_open(&a, &store)) {
        hy_task_destroy(task);
        return cli_error("eval");
    }
    hy_eval_result r;
    rc = evaluate(&a, &o, task, &r);
    if (!rc) report(label, &r);
    if (!rc && store.store) rc = store_results(&store, &a, label, &r);
    if (store.store) store_close(&store);
    hy_task_destroy(task);
    return rc ? cli_error("eval") : 0;
}
