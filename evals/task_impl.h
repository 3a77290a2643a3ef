// Internal to evals/: how a task kind plugs into the registry, and helpers the generators and
// environments share. Not for use outside evals/.
//
// A kind declares its parameters as a table (params.h) and three functions: open (validate the
// parsed parameters beyond their ranges, load files), sample (fill one sample from an index) and
// close. Generators draw all randomness from hy_task_rng(seed, index), never from shared state,
// which is what makes a sample a pure function of its index.
#ifndef HY_EVALS_TASK_IMPL_H
#define HY_EVALS_TASK_IMPL_H

#include "common/rng.h"
#include "evals/params.h"
#include "evals/task.h"

typedef struct {
    const char *name;
    const char *help;
    const hy_param_spec *params;
    int n_params;
    int (*open)(hy_task *t);  // may set t->impl; NULL = nothing to do
    int (*sample)(const hy_task *t, long index, hy_task_sample *s);
    void (*close)(hy_task *t);  // NULL = nothing to free
    long (*size)(const hy_task *t);  // NULL = unbounded
} hy_task_kind;

struct hy_task {
    const hy_task_kind *kind;
    hy_params params;
    uint64_t seed;
    void *impl;
};

extern const hy_task_kind hy_task_arithmetic, hy_task_permutation, hy_task_variables, hy_task_kv_recall,
    hy_task_jsonl;

// The generator for sample index of a task seeded with seed.
void hy_task_rng(hy_rng *r, uint64_t seed, long index);
// Uniform integer in [0, n), n ≥ 1 (the modulo bias is below 2^-40 for the n used here).
uint64_t hy_task_uniform(hy_rng *r, uint64_t n);

// Fills a synthetic sample: id "<task>:<seed>:<index>", one user message = prompt (taken over),
// answer (taken over), verifier, and metadata {task, seed, index, params..., extra...} where extra
// (may be NULL; reference taken over) adds task-specific facts.
void hy_task_sample_fill(const hy_task *t, long index, hy_task_sample *s, char *prompt, char *answer,
                         const char *verifier, json_t *extra);

// A random expression of `terms` operands with `digits` digits each, operators drawn from ops
// (a non-empty subset of "+-*"), and its exact value. Shared by the arithmetic task and the
// calculator environment. *expr and *value: caller frees.
void hy_arith_make(hy_rng *r, int digits, int terms, const char *ops, char **expr, char **value);

#endif
