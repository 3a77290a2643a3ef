// Data-parallel ranks of one training job: who they are, how they find each other, and the few
// collectives a ZeRO-style optimizer step needs (design: docs/learner.md, "Several GPUs").
//
// A job of W ranks is W processes (one per GPU), started by `hybrid learn` or by a cluster
// launcher that sets RANK, WORLD_SIZE (and LOCAL_RANK, MASTER_ADDR, MASTER_PORT) as torchrun does.
// Rank 0 binds a ZeroMQ rendezvous; every other rank connects to it and says hello with the job's
// fingerprint (parameter table and data), so a rank started on another model or other data is
// refused by name before any work. The rendezvous then carries the small collectives (scalars,
// barriers, a checkpoint's temporary path) and, when NCCL is available and the model runs on
// CUDA, rank 0's NCCL unique id; the parameter-sized collectives then run GPU to GPU over NCCL.
// Without NCCL (the CPU backend, or a CUDA build without NCCL) they run through the rendezvous
// too, staged through host memory — slow, but the same results, which is what lets the CPU tests
// check that W ranks equal one.
//
// Collectives over backend memory work on a flat fp32 arena of W·shard floats (the gradient arena,
// padded): rank r owns [r·shard, (r+1)·shard). Sums are formed in rank order through the
// rendezvous; NCCL uses its own order (results agree to fp32 rounding).
//
// Every call must be made by every rank in the same order. A rank that dies leaves the others
// waiting in their next collective: `hybrid learn` then stops the whole job (it watches its
// children); a cluster launcher should do the same. Errors come back as −1 with hy_fail messages.
#ifndef HY_LEARNER_DP_H
#define HY_LEARNER_DP_H

#include <stddef.h>
#include <stdint.h>

#include "../model/backend.h"

typedef struct hy_dp hy_dp;

typedef struct {
    int rank, world, local_rank;
    char endpoint[512];  // the rendezvous: tcp://HOST:PORT or ipc://PATH
    // CURVE keys for a rendezvous on a network address (proto/transport.h's rule); NULL = none
    const char *key_file, *server_key_file, *authorized_keys;
} hy_dp_env;

// Reads the environment: WORLD_SIZE (absent or 1: *env->world = 1, not data-parallel), RANK,
// LOCAL_RANK (default RANK), and the rendezvous from HY_DP_ENDPOINT or MASTER_ADDR + MASTER_PORT
// (keys from HY_DP_KEY_FILE, HY_DP_SERVER_KEY, HY_DP_AUTHORIZED_KEYS). −1 naming the variable when
// one is malformed or missing.
int hy_dp_env_read(hy_dp_env *env);

// Joins the job: rank 0 waits (up to timeout_s) for all others, checking each one's world size and
// fingerprint; the others connect and wait for rank 0's welcome. When be is CUDA and NCCL is
// registered (proto/nccl_ops.h), the NCCL communicator is set up too. 0 / −1.
int hy_dp_join(hy_dp **out, const hy_dp_env *env, hy_backend *be, uint64_t fingerprint, int timeout_s);
void hy_dp_leave(hy_dp *dp);

int hy_dp_rank(const hy_dp *dp);
int hy_dp_world(const hy_dp *dp);
const char *hy_dp_transport(const hy_dp *dp);  // "nccl" or "rendezvous": what the arena collectives use

// Element-wise sums of n doubles of host memory over all ranks; every rank gets the result.
int hy_dp_sum_host(hy_dp *dp, double *v, int n);
// Rank 0's n bytes (host memory) to every rank.
int hy_dp_broadcast_host(hy_dp *dp, void *bytes, size_t n);
int hy_dp_barrier(hy_dp *dp);

// buf: W·shard floats of backend memory. After reduce_scatter, buf[r·shard, (r+1)·shard) holds the
// sum over ranks of that slice (other slices: unspecified). After all_gather, every slice holds
// what its owner had in it.
int hy_dp_reduce_scatter(hy_dp *dp, float *buf, size_t shard);
int hy_dp_all_gather(hy_dp *dp, float *buf, size_t shard);

#endif
