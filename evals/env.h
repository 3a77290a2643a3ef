// Environments: multi-turn episodes in which the model acts and the environment answers.
//
// An episode starts with reset(seed), which draws a problem and returns the first observation
// (the user message to prompt with). Then the rollout alternates: the model generates a turn, the
// environment's step reads it and either returns an observation to append after it (the episode
// goes on) or ends the episode with a reward in [0, 1]. The environment works on text; the rollout
// tokenizes what it appends and marks those tokens as not generated (proto_trajectory.generated).
//
// Built-in environments are tool environments: the model calls a tool by ending its turn with
// <tag>argument</tag>; the rollout stops generation at the environment's stop string (the closing
// tag, hy_env_stop_strings) and calls step, which appends <result>...</result> right after the
// call, inside the same assistant message, and generation continues. A turn that does not end with
// a complete tool call is the final answer, scored by the environment's verifier against the
// problem's answer. Each environment takes max_calls: one more call ends the episode with reward 0.
//   calculator  an arithmetic problem; <calc>12*(3+4)</calc> → <result>84</result>
//                (calc_expr.h: numbers, + − × ÷, parentheses; errors come back as
//                <result>error: division by zero at position 5</result>)
//   kv_lookup   follow a chain of keys in a hidden store; <lookup>k3f9a</lookup> → <result>...</result>
//
// An env object holds one episode's state: use one per concurrent episode (reset reuses it).
// Functions return 0, or −1 with a message for misuse (step before reset or after the end, an
// unknown name or parameter); what the model writes never makes a call fail.
#ifndef HY_EVALS_ENV_H
#define HY_EVALS_ENV_H

#include <stdint.h>
#include <stdio.h>

typedef struct hy_env hy_env;

typedef struct {
    char *observation;  // text to append after the turn (new string; "" when done)
    int done;
    double reward;      // set when done
    char reason[256];   // what happened: the tool call and its result, or the final verdict
} hy_env_step_result;

// Opens the named environment with "key=value,..." parameters (NULL or "" = defaults).
int hy_env_new(hy_env **out, const char *name, const char *params);
void hy_env_destroy(hy_env *e);
const char *hy_env_name(const hy_env *e);

// Starts an episode drawn from seed: *observation is the first user message (caller frees).
int hy_env_reset(hy_env *e, uint64_t seed, char **observation);
// Consumes one model turn (the text generated since the last observation).
int hy_env_step(hy_env *e, const char *turn, hy_env_step_result *r);
void hy_env_step_result_free(hy_env_step_result *r);

// Where generation should pause for step (NULL-terminated list), e.g. {"</calc>", NULL}.
const char *const *hy_env_stop_strings(const hy_env *e);
// The current episode's reference answer (for logs); NULL before reset.
const char *hy_env_answer(const hy_env *e);

int hy_env_kind_count(void);
const char *hy_env_kind_name(int i);
void hy_env_print_help(FILE *out);

#endif
