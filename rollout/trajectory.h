// Finished engine turns as protocol trajectories: the one conversion both the rollout worker
// (which ships them to the learner) and the colocated in-process rollout use, so the learner sees
// the same fields whichever way generation ran.
//
// Versions: the engine counts weight versions from 0 and adds one per hy_engine_bump_weights; the
// learner names its versions. versions[e] is the learner version the engine ran as its version e,
// so each token carries the learner's number (proto_trajectory.weight_version). Appended tokens get
// the version current when the trajectory is finished (they carry no sampling decision, and the
// learner never trains on them).
#ifndef HY_ROLLOUT_TRAJECTORY_H
#define HY_ROLLOUT_TRAJECTORY_H

#include <stdint.h>

#include "proto/messages.h"
#include "rollout/engine.h"

typedef struct {
    uint64_t request_id, group_id;
    uint32_t sample_index;
    int n_prompt;            // tokens of the request's prompt at the start of r's trajectory
    const uint64_t *versions;  // (n_versions) learner version of each engine version
    int n_versions;
    double queue_s, prefill_s, decode_s;
} hy_trajectory_meta;

// *out (proto_trajectory_free it) from result r. 0 / −1 (message) when r is shorter than the prompt.
int hy_trajectory_from_result(const hy_result *r, const hy_trajectory_meta *meta, proto_trajectory *out);

// A trajectory that reports a refused request (finish "error"): the prompt, no completion.
void hy_trajectory_error(uint64_t request_id, uint64_t group_id, uint32_t sample_index, const int32_t *prompt,
                         int n_prompt, proto_trajectory *out);

// The wire finish reason of an engine finish.
proto_finish hy_trajectory_finish(hy_finish f);

#endif
