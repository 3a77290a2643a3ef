// NCCL weight broadcast and data-parallel collectives, reachable from host code that is built without CUDA.
//
// The learner's dispatch and the rollout worker live in the core library, which compiles without
// nvcc; NCCL and the checksum kernel live in the CUDA library. A build with CUDA and NCCL registers
// its implementation here at start-up (the CLI does, before any command runs); without one,
// hy_nccl_ops_get() is NULL and asking for weight-sync nccl is an error naming why.
//
// Protocol (docs/proto.md, "Weight transfer (NCCL)"): the learner is rank 0 of a communicator
// with one rank per rollout worker; the weight notice's location is "HEXID:RANK:NRANKS" (the
// 128-byte ncclUniqueId in hex and the receiver's rank). On each notice the worker joins the
// communicator if it has not yet, then takes part in a broadcast of the fp32 master parameters
// from rank 0 into its own, rebuilds its bf16 matmul copy and checks the notice's checksum —
// computed on the GPU over the received parameters — before its engine uses them.
#ifndef HY_PROTO_NCCL_OPS_H
#define HY_PROTO_NCCL_OPS_H

#include <stddef.h>
#include <stdint.h>

#define HY_NCCL_ID_HEX 256  // hex characters of an ncclUniqueId

typedef struct hy_nccl hy_nccl;

typedef struct {
    // A new unique id as hex (HY_NCCL_ID_HEX characters + NUL). 0 / −1.
    int (*unique_id)(char *hex);
    // Joins the communicator (blocks until all nranks have joined). 0 / −1.
    int (*init)(hy_nccl **out, const char *hex, int rank, int nranks);
    // Broadcast of n floats of device memory from rank 0, in place; returns when done here. 0 / −1.
    int (*broadcast)(hy_nccl *c, float *dev, size_t n);
    // Order-independent 64-bit checksum of n floats of device memory (the same on every GPU).
    uint64_t (*checksum)(const float *dev, size_t n);
    void (*destroy)(hy_nccl *c);
    // Data-parallel training (learner/dp.h), in place on W·shard floats of device memory where this
    // rank owns [rank·shard, (rank+1)·shard): the sum over ranks of its own slice, or every slice
    // from its owner. Return when done here. 0 / −1.
    int (*reduce_scatter)(hy_nccl *c, float *dev, size_t shard, int rank);
    int (*all_gather)(hy_nccl *c, float *dev, size_t shard, int rank);
} hy_nccl_ops;

void hy_nccl_ops_set(const hy_nccl_ops *ops);
const hy_nccl_ops *hy_nccl_ops_get(void);  // NULL in a build without CUDA

#endif
