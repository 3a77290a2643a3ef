// The rollout worker: a process that generates for a learner over ZeroMQ (docs/proto.md, "Run
// topology").
//
// It connects a DEALER socket (routing id = its name) to the learner's ROUTER, announces itself
// with a heartbeat and repeats one every heartbeat_s with its queue, running sequences, tokens/s
// and weight version. It generates nothing until it holds weights: a weight notice (transport zmq)
// names the learner's weight endpoint, from which it fetches the image (proto/weights.h), checks
// names, shapes and checksum, and loads it between two engine steps — sequences in flight carry on
// under the new weights, and every token records the version that sampled it. Generation requests
// become engine requests (n samples of a prompt share one prefill); each finished sample goes back
// as a trajectory. A request the engine refuses (a token id out of range, a bad sampling value) is
// answered with trajectories of finish "error" and logged; the worker keeps serving. A bad frame is
// logged and dropped. Control messages: pause / resume stepping, drain (finish what is running,
// then exit), shutdown (exit now).
#ifndef HY_ROLLOUT_WORKER_H
#define HY_ROLLOUT_WORKER_H

#include "model/model.h"
#include "model/tokenizer.h"
#include "rollout/engine.h"

typedef struct {
    const char *connect;  // the learner's endpoint
    const char *name;     // routing id, 1..64 bytes
    const char *key_file, *server_key_file;  // CURVE, both or neither (needed off loopback)
    hy_engine_config engine;
    double heartbeat_s;   // default 1
    double orphan_s;      // exit when nothing has come from the learner for this long; 0 = never
} hy_worker_options;

void hy_worker_options_default(hy_worker_options *o);

// Serves until shutdown / drain / orphaned. m's weights are replaced by the learner's. 0 / −1.
int hy_worker_run(hy_model *m, const hy_worker_options *o);

#endif
