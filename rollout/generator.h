// Generation requests in, trajectories out: the rollout engine behind the protocol's messages,
// shared by the rollout worker process and the colocated source, so both answer a request alike.
//
// A request of n samples becomes n engine sequences (one prefill, forked); one with an env_id
// becomes n environment episodes (episode.h). Each finished sample is turned into a trajectory
// (trajectory.h) whose tokens carry the learner's weight versions. A request the engine refuses
// (a token id out of range, a bad sampling value, an unknown environment) still gets its n
// trajectories, of finish "error", and the reason is logged: whoever waits for it is answered.
#ifndef HY_ROLLOUT_GENERATOR_H
#define HY_ROLLOUT_GENERATOR_H

#include <stdint.h>
#include <stdio.h>

#include "proto/messages.h"
#include "rollout/engine.h"

typedef struct hy_generator hy_generator;

// e, tok (may be NULL: no stop strings, no episodes) and cfg outlive the generator. start_version:
// the learner's version of the weights the engine runs now. log: where refusals are reported.
hy_generator *hy_generator_new(hy_engine *e, const hy_tokenizer *tok, const hy_config *cfg, uint64_t start_version,
                               const char *name, FILE *log);
void hy_generator_destroy(hy_generator *g);

void hy_generator_submit(hy_generator *g, const proto_gen_request *r);
// The engine now runs the learner's weights of version (call after they were loaded, or updated
// in place): later tokens carry it, prefix snapshots of older weights are dropped.
void hy_generator_weights(hy_generator *g, uint64_t version);
uint64_t hy_generator_version(const hy_generator *g);
// One engine step (when there is work): 1 while work remains, 0 idle, −1 on an engine failure.
int hy_generator_step(hy_generator *g);
// 1 with the next finished trajectory in *out (proto_trajectory_free it), 0 when none is ready.
int hy_generator_take(hy_generator *g, proto_trajectory *out);

typedef struct {
    uint64_t trajectories, refused, episodes;
} hy_generator_stats;
void hy_generator_stats_get(const hy_generator *g, hy_generator_stats *s);

#endif
