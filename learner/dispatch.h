// The learner's side of remote rollout workers: one ROUTER socket they connect to, a weight
// endpoint they fetch images from, and the bookkeeping that makes delivery exactly-once even when
// workers die (see rollout/source.h for the interface, rollout/worker.h for the other side,
// docs/proto.md "Run topology").
//
// Workers register by sending anything (a heartbeat first); each gets the current weight notice.
// Requests are handed to the live worker with the fewest samples in flight. A worker is lost when
// its process exits (for the ones started here: waitpid) or nothing has come from it for
// worker_timeout_s: its requests go back to the queue and to another worker, and a worker started
// here is started again (up to max_restarts). Trajectories are filed per (request, sample):
// duplicates — a lost worker that comes back, a request sent twice — are dropped, so every sample is
// delivered exactly once. A bad frame from any peer is logged and dropped. Weight images are built
// once per version (proto/weights.h) and served to whoever asks; or, with nccl, broadcast from GPU
// to GPU after a notice to every worker.
#ifndef HY_LEARNER_DISPATCH_H
#define HY_LEARNER_DISPATCH_H

#include "model/model.h"
#include "rollout/source.h"

typedef struct {
    const char *bind;            // endpoint workers connect to (tcp://127.0.0.1:* = an ephemeral port)
    const char *weights_bind;    // weight endpoint (same rules); NULL = bind's host (or ipc path + ".weights"), any port
    const char *key_file, *authorized_keys;  // CURVE (required off loopback)
    int n_spawn;                 // worker processes to start here; 0 = they are started elsewhere
    const char *const *spawn_argv;  // a worker's argv (NULL-terminated, argv[0] a path); --connect
                                    // ENDPOINT --name wI are appended
    double worker_timeout_s;     // default 30
    int max_restarts;            // per worker started here; default 3
    int hwm;                     // ZeroMQ high-water mark (messages per peer); default 256
    // Weight sync: 0 = ZeroMQ weight images; 1 = NCCL broadcast from this process's GPU to the
    // workers' (proto/nccl_ops.h): the n_spawn workers started here are ranks 1..n_spawn, the first
    // weights go out once all have joined, and losing one ends the run (a communicator cannot go on
    // without a rank).
    int nccl;
    const char *worker_gpus;     // "1,2,...": CUDA_VISIBLE_DEVICES of worker i = entry i mod count; NULL = inherit
    double join_timeout_s;       // NCCL: how long to wait for every worker to join; default 600
} hy_dispatch_options;

void hy_dispatch_options_default(hy_dispatch_options *o);

typedef struct hy_dispatch hy_dispatch;

// Binds, then starts the workers. m: the learner's model (weights images are made from it).
int hy_dispatch_new(hy_dispatch **out, hy_model *m, const hy_dispatch_options *o, uint64_t start_version);
// Shuts the workers down (control shutdown, then SIGTERM to the ones started here) and closes.
void hy_dispatch_destroy(hy_dispatch *d);
hy_rollout_source hy_dispatch_iface(hy_dispatch *d);
const char *hy_dispatch_endpoint(const hy_dispatch *d);

// Pumps until every live worker reports weight version ≥ version in a heartbeat (workers send one
// as soon as they have loaded new weights): the end-to-end sync latency. 0, or −1 on timeout.
int hy_dispatch_wait_version(hy_dispatch *d, uint64_t version, double timeout_s);

typedef struct {
    uint64_t trajectories, duplicates, unknown, bad_frames, resent, workers_lost, restarts;
    int workers_alive;
} hy_dispatch_stats;
void hy_dispatch_stats_get(const hy_dispatch *d, hy_dispatch_stats *s);

#endif
