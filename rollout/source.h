// Where the learner's rollouts come from: one interface, two implementations.
//   colocated (rollout/local_source.h)  the engine runs in the learner's process on the learner's
//                                       own model: it reads the updated weights in place, no copy.
//   workers   (learner/dispatch.h)      rollout worker processes over ZeroMQ; weights are pushed
//                                       to them after every update.
// The learner submits generation requests ahead (so workers keep generating while it trains),
// collects each request's n trajectories when it needs them, and publishes each new weight version.
#ifndef HY_ROLLOUT_SOURCE_H
#define HY_ROLLOUT_SOURCE_H

#include <stdint.h>

#include "proto/messages.h"

typedef struct {
    // Queues request r (copied). A request the generator refuses still completes, with trajectories
    // of finish "error". 0 / −1.
    int (*submit)(void *ctx, const proto_gen_request *r);
    // Blocks until request_id's n trajectories are in: *out (n of them in sample order; the caller
    // proto_trajectory_frees each and frees the array). 0 / −1 (message), e.g. no worker left.
    int (*collect)(void *ctx, uint64_t request_id, proto_trajectory **out, int *n);
    // The learner's weights are now version (already updated in its model): make later tokens use
    // them. *sync_s = seconds it took (send, or nothing when read in place). 0 / −1.
    int (*publish)(void *ctx, uint64_t version, double *sync_s);
    // One line of counters for the log (trajectories, duplicates dropped, workers lost, ...).
    void (*describe)(void *ctx, char *buf, int n);
    void *ctx;
} hy_rollout_source;

#endif
