// Tasks: sources of prompts with reference answers, each checked by a named verifier.
//
// A task is opened by name with "key=value" parameters and a seed, then indexed: sample i is a
// pure function of (task, params, seed, i), so any sample can be regenerated on any machine and a
// worker can take indices i, i+W, i+2W, ... without coordination. Synthetic tasks are unbounded
// generators with exact answers; "jsonl" reads a dataset file once at open (every line validated
// there, so a bad line fails early with file:line and field) and has as many samples as lines.
//
//   arithmetic   multi-digit integer expressions, + − × with precedence; exact big-integer answers
//   permutation  state tracking: a row of items under swaps and one-line-notation permutations
//   variables    state tracking: integer variables through a chain of assignments
//   kv_recall    long-context recall: one key's value out of many key: value lines
//   jsonl        {"prompt" | "messages", "answer" | "ground_truth", "verifier" | "dataset",
//                 "id"?, "metadata"?} per line (open-instruct RLVR lines work as they are)
//
// docs/evals.md lists every parameter; hy_task_print_help prints them from the same tables.
// A task is immutable once opened: samples may be drawn from many threads at once.
#ifndef HY_EVALS_TASK_H
#define HY_EVALS_TASK_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "evals/verifier.h"
#include "model/chat_template.h"

typedef struct {
    char *id;                    // "<task>:<seed>:<index>", or the line's "id", or "<file>:<line>"
    hy_chat_message *messages;   // (n_messages ≥ 1) the prompt as a conversation
    int n_messages;
    char *prompt;                // the prompt as plain text when the source gave one (synthetic
                                 //   tasks, {"prompt"} lines; then messages = one user turn); NULL
                                 //   for {"messages"} lines
    char *answer;                // the reference handed to the verifier
    char *verifier;              // registry name (verifier.h)
    json_t *metadata;            // object: task, seed, index, parameters, task-specific facts
} hy_task_sample;

typedef struct hy_task hy_task;

// Opens the named task. params: "key=value,..." (NULL or "" = defaults). Errors name the task and
// parameter; an unknown task name lists the known ones.
int hy_task_new(hy_task **out, const char *name, const char *params, uint64_t seed);
// Shorthand for hy_task_new(out, "jsonl", "path=<path>", 0), for paths holding commas.
int hy_task_open_jsonl(hy_task **out, const char *path, const char *default_verifier);
void hy_task_destroy(hy_task *t);

const char *hy_task_name(const hy_task *t);
// Number of samples: lines for jsonl, −1 for unbounded generators.
long hy_task_size(const hy_task *t);

// Sample index (≥ 0, and < size when bounded) into *s (caller frees with hy_task_sample_free).
int hy_task_sample_get(const hy_task *t, long index, hy_task_sample *s);
void hy_task_sample_free(hy_task_sample *s);

// Scores a completion of the sample: hy_verify(s->verifier, completion, s->answer, opt, v).
int hy_task_check(const hy_task_sample *s, const char *completion, const hy_verify_options *opt, hy_verdict *v);

// Registry listing, and every task's parameters.
int hy_task_kind_count(void);
const char *hy_task_kind_name(int i);
void hy_task_print_help(FILE *out);

#endif
