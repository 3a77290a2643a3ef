// Reward server: answers proto reward_request messages with the built-in verifier registry, so an
// orchestrator can score completions in another process or on another host (`hybrid
// reward-server`; docs/evals.md, "Reward server").
//
// Each reward_request {trajectory_id, verifier, completion_text, reference} becomes
// hy_verify(verifier, completion_text, reference) and is answered with a reward_result to the peer
// that asked: reward = the verdict, scores empty, error "" — or, when hy_verify could not score
// (unknown verifier, malformed reference, no sandbox), reward 0 and error = its message.
// A frame that fails to decode, or a message of another type, is logged with its reason and
// dropped; the server keeps serving. A control "shutdown" stops it, as does the caller's stop flag
// (a signal handler's), checked between polls: in both cases requests already being scored are
// finished and answered first, and nothing new is taken.
//
// Verification runs on a fixed pool of worker threads (default 1, which makes the server
// sequential), because one verifier call can take seconds (the code sandbox). The thread that
// calls hy_reward_server_run owns the ROUTER socket and takes a request off it only when a worker
// is idle, so a saturated server leaves requests in ZeroMQ's queues and its clients feel
// backpressure instead of the server's memory growing.
#ifndef HY_EVALS_REWARD_SERVER_H
#define HY_EVALS_REWARD_SERVER_H

#include <stdatomic.h>
#include <stdint.h>

#include "evals/verifier.h"
#include "proto/transport.h"

#define HY_REWARD_SERVER_MAX_THREADS 63  // one poll takes the ROUTER and every worker (proto_poll: ≤ 64)

typedef struct {
    proto_socket_opts sock;  // hwm, linger; CURVE: key_file + authorized_keys
    int threads;             // worker threads, 1..HY_REWARD_SERVER_MAX_THREADS (default 1)
    int poll_ms;             // longest wait between checks of the stop flag (default 100)
    int send_timeout_ms;     // how long a result waits for a peer that is not reading (default 1000)
    hy_verify_options verify;
    int quiet;               // 1 = no log line per dropped frame or failed answer (counters still kept)
    void (*log)(void *ud, const char *line);  // NULL = stderr; called from the run thread only
    void *log_ud;
} hy_reward_server_opts;

void hy_reward_server_opts_default(hy_reward_server_opts *o);

typedef struct {
    uint64_t served;         // requests answered with a reward (error "")
    uint64_t errors;         // requests answered with an error (hy_verify returned -1)
    uint64_t dropped;        // frames dropped: undecodable, or not a reward_request / control
    uint64_t undeliverable;  // results that could not be sent back (the peer left or stopped reading)
} hy_reward_server_stats;

typedef struct hy_reward_server hy_reward_server;

// Binds a ROUTER to endpoint (tcp://127.0.0.1:* picks a free port) and starts the workers.
// 0, or -1 with a message (bad options, endpoint refused, keys unreadable).
int hy_reward_server_new(hy_reward_server **out, proto_ctx *ctx, const char *endpoint, const hy_reward_server_opts *o);
// The bound endpoint, with the real port.
const char *hy_reward_server_endpoint(const hy_reward_server *s);
// Serves until a control shutdown arrives or *stop becomes non-zero (stop may be NULL); the flag
// may be set from a signal handler or another thread. 0 on a clean stop, -1 when the socket
// failed (message set). Call once.
int hy_reward_server_run(hy_reward_server *s, const atomic_int *stop);
void hy_reward_server_stats_get(const hy_reward_server *s, hy_reward_server_stats *st);
// Stops and joins the workers, closes the sockets.
void hy_reward_server_destroy(hy_reward_server *s);

#endif
