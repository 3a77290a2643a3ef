// Multi-turn environment episodes on the rollout engine: what a generation request with an env_id
// becomes (evals/env.h for environments; docs/run.md).
//
// Each sample of such a request is one episode: the environment is opened by name with the
// request's metadata "env_params" and reset with "env_seed" (the learner reset its own copy the same
// way to write the prompt, so both hold the same problem). The engine generates a turn held, with
// the environment's stop strings (a tool call's closing tag); the turn's text, a final eos left
// out, goes to the environment's step; its observation is tokenized and appended to the held
// sequence (marked appended, not generated), and the next turn starts without recomputing the
// prefix. The episode ends when the environment says done, when a turn hits a length limit, or
// after max_turns; the sequence is released and its whole trajectory is the result. The learner
// scores it by replaying the generated turns through its own copy of the environment.
#ifndef HY_ROLLOUT_EPISODE_H
#define HY_ROLLOUT_EPISODE_H

#include <stdint.h>

#include "model/tokenizer.h"
#include "proto/messages.h"
#include "rollout/engine.h"

enum { HY_EPISODE_MAX_TURNS = 64 };

typedef struct hy_episodes hy_episodes;

hy_episodes *hy_episodes_new(hy_engine *e, const hy_tokenizer *tok, const hy_config *cfg);
void hy_episodes_destroy(hy_episodes *x);

// Starts the n episodes of request r: ids (r->n) the engine ids of their sequences. 0 / −1 (message
// names the request: unknown environment, bad parameters, no tokenizer, a refused prompt).
int hy_episodes_start(hy_episodes *x, const proto_gen_request *r, int64_t *ids);
// 1 when engine id belongs to an episode.
int hy_episodes_owns(const hy_episodes *x, int64_t id);
// A finished turn of an episode's sequence: 1 = the episode is over (res is its final trajectory,
// *n_turns its turns), 0 = it goes on (an observation was appended; res can be freed), −1 on error
// (the episode is over, message set).
int hy_episodes_on_result(hy_episodes *x, const hy_result *res, int *n_turns);

// The request fields of an episode: the environment's name and the metadata keys read above.
const char *hy_episode_meta(const proto_gen_request *r, const char *key);

#endif
