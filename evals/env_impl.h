// Internal to evals/: how a tool environment plugs into env.c.
//
// env.c owns the episode loop (reset bookkeeping, recognising a tool call at the end of a turn,
// counting calls against max_calls, scoring the final answer with the kind's verifier). A kind
// supplies its parameters (which must include an int "max_calls"), its tool tags, a reset that
// draws the problem, and the tool itself.
#ifndef HY_EVALS_ENV_IMPL_H
#define HY_EVALS_ENV_IMPL_H

#include "evals/env.h"
#include "evals/params.h"
#include "evals/strbuf.h"

typedef struct {
    const char *name;
    const char *help;
    const hy_param_spec *params;
    int n_params;
    const char *open_tag, *close_tag;  // "<calc>", "</calc>"
    const char *const *stop_strings;   // {close_tag, NULL}
    const char *verifier;              // scores the final turn against the answer
    int (*open)(hy_env *e);            // validate parameters; NULL = nothing to do
    // Draws the problem for seed: the first observation and the reference answer (both new).
    void (*reset)(hy_env *e, uint64_t seed, char **observation, char **answer);
    // Runs the tool on the call's argument: appends the result text (what goes between
    // <result> and </result>) to out.
    void (*tool)(hy_env *e, const char *argument, hy_strbuf *out);
    void (*close)(hy_env *e);          // NULL = nothing to free
} hy_env_kind;

struct hy_env {
    const hy_env_kind *kind;
    hy_params params;
    void *impl;     // the kind's episode state
    char *answer;   // the episode's reference; NULL before the first reset
    int calls;      // tool calls so far in this episode
    int done;
};

extern const hy_env_kind hy_env_calculator, hy_env_kv_lookup;

#endif
