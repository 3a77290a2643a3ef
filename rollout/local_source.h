// The colocated rollout source: a rollout engine inside the learner's process, generating from the
// learner's model (see rollout/source.h). The engine reads the model's parameters where the trainer
// updates them (the bf16 matmul copy on CUDA, the fp32 arena on the CPU), so publishing a version
// only bumps the engine's weight version, which drops prefix snapshots of the old weights.
// Generation happens inside collect: the learner's thread runs engine steps until the request it
// waits for is complete (there is nothing to overlap with in one thread).
#ifndef HY_ROLLOUT_LOCAL_SOURCE_H
#define HY_ROLLOUT_LOCAL_SOURCE_H

#include "rollout/engine.h"
#include "rollout/source.h"

typedef struct hy_local_source hy_local_source;

// m must outlive the source. start_version: the learner's version of m's current weights.
int hy_local_source_new(hy_local_source **out, const hy_model *m, const hy_engine_config *cfg,
                        uint64_t start_version);
void hy_local_source_destroy(hy_local_source *s);
hy_rollout_source hy_local_source_iface(hy_local_source *s);

// The generation parameters of a request (shared with the rollout worker).
void hy_gen_params_from_request(const proto_gen_request *r, hy_gen_params *p);

#endif
