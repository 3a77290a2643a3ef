// Reward client: how the training orchestrator has a batch of completions scored by a reward
// server in another process (ours, `hybrid reward-server`, or one written in any language that
// speaks docs/proto.md).
//
// One DEALER socket connected to the server's ROUTER. A batch is pipelined: requests go out as fast
// as the socket's high-water mark lets them while results are read in between, so neither side
// waits on the other and a slow server slows the sender instead of growing its queues. Results come
// back in any order and are matched by trajectory_id; a result for an id that is not outstanding (a
// late answer from a batch that timed out, a duplicate) is logged and ignored, and a frame that
// fails to decode is logged and dropped: a misbehaving server costs results, never the client.
//
// The DEALER needs a printable routing id for the server to answer it (proto/transport.h); when
// opts->routing_id is NULL one is made from the pid and a counter.
//
// Not thread-safe by design: like its ZeroMQ socket, a client belongs to the one thread that
// calls it. Use one client per thread.
#ifndef HY_EVALS_REWARD_CLIENT_H
#define HY_EVALS_REWARD_CLIENT_H

#include <stdint.h>

#include "proto/transport.h"

typedef struct hy_reward_client hy_reward_client;

typedef struct {
    uint64_t received;  // results matched to an outstanding request
    uint64_t ignored;   // valid results for an unknown or already-answered trajectory_id
    uint64_t dropped;   // frames that failed to decode, or were not a reward_result
} hy_reward_client_stats;

// Connects to endpoint with opts (NULL = proto_socket_opts_default; CURVE: key_file and
// server_key_file). Connecting succeeds before the server exists: ZeroMQ reconnects in the
// background. 0, or -1 with a message.
int hy_reward_client_new(hy_reward_client **out, proto_ctx *ctx, const char *endpoint, const proto_socket_opts *opts);
void hy_reward_client_destroy(hy_reward_client *c);

// Where log lines go (ignored results, dropped frames); NULL = stderr.
void hy_reward_client_set_log(hy_reward_client *c, void (*fn)(void *ud, const char *line), void *ud);

// Scores reqs (n ≥ 0, trajectory ids unique within the batch) and writes out (n) in request order,
// waiting at most timeout_ms (-1 = forever) in all. On return every out[i] is initialised, whatever
// the result: the server's answer (error "" = scored, else the server's reason), or, when none came,
// reward 0 and error "no result within ... ms"; the caller proto_reward_result_free's each one.
// 0 when all n were answered; -1 with a message naming how many were missing on timeout, or the
// problem with the batch (an invalid request or a repeated id: then nothing is sent) or the socket.
int hy_reward_client_score(hy_reward_client *c, const proto_reward_request *reqs, int n, proto_reward_result *out,
                           int timeout_ms);

// Counters over the client's lifetime.
void hy_reward_client_stats_get(const hy_reward_client *c, hy_reward_client_stats *st);

#endif
