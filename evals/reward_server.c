// Reward server (see reward_server.h; the messages in docs/proto.md).
//
// Threads and sockets: the run thread owns the ROUTER and, per worker, one end of an inproc PAIR;
// the worker owns the other end. A job travels to its worker as the reward_request frame itself
// and comes back as the reward_result frame, so workers use the same proto calls as any remote
// peer and share no memory with the run thread. The run thread remembers, per worker, which peer
// asked (ROUTER routing id): a worker holds one job at a time, so that is all the routing state.
// One zmq_poll (proto_poll) covers the ROUTER and every PAIR; the ROUTER is in it only while a
// worker is idle and the server is not stopping. The poll's timeout is the stop flag's latency.
//
// Stopping: on a control "shutdown" or the stop flag the run thread takes nothing more off the
// ROUTER, waits for busy workers, forwards their results, and returns; destroy then sends each
// worker a control frame on its PAIR (its stop message) and joins it.
#include "evals/reward_server.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/hy_error.h"

// Requests taken off the ROUTER per wake-up at most, so a flood of bad frames cannot keep the run
// thread from checking the stop flag and its workers.
#define TAKE_BURST 64

typedef struct {
    pthread_t thread;
    int started;
    proto_socket *here;   // PAIR, the run thread's end
    proto_socket *there;  // PAIR, the worker's end: the worker thread's once started
    const hy_verify_options *verify;
    int busy;
    char peer[PROTO_PEER_ID_MAX + 1];  // who asked, while busy
    uint64_t trajectory_id;
} worker;

struct hy_reward_server {
    proto_socket *router;
    hy_reward_server_opts o;
    worker *w;
    int n_workers;
    int shutdown;  // a control shutdown arrived
    hy_reward_server_stats st;
};

static atomic_uint g_server_seq;

void hy_reward_server_opts_default(hy_reward_server_opts *o) {
    memset(o, 0, sizeof *o);
    proto_socket_opts_default(&o->sock);
    o->threads = 1;
    o->poll_ms = 100;
    o->send_timeout_ms = 1000;
    o->verify = hy_verify_options_default();
}

static void slog(const hy_reward_server *s, const char *fmt, ...) HY_PRINTF(2, 3);
static void slog(const hy_reward_server *s, const char *fmt, ...) {
    if (s->o.quiet) return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (s->o.log) s->o.log(s->o.log_ud, line);
    else fprintf(stderr, "%s\n", line);
}

// ---------------------------------------------------------------- workers

// The verdict as a result that always passes proto_reward_result_check (error within its limit,
// reward finite), so the worker's answer can never fail to encode and leave its job unanswered.
static void score(const hy_verify_options *opt, const proto_reward_request *q, proto_reward_result *r) {
    *r = (proto_reward_result){.trajectory_id = q->trajectory_id};
    hy_verdict v;
    const char *why = NULL;
    if (hy_verify(q->verifier, q->completion_text ? q->completion_text : "", q->reference ? q->reference : "", opt,
                  &v) != 0)
        why = hy_last_error();
    else if (!isfinite(v.reward))
        why = "the verifier returned a non-finite reward";
    else
        r->reward = v.reward;
    const size_t n = why ? strnlen(why, PROTO_MAX_REASON_BYTES) : 0;
    r->error = hy_malloc(n + 1);
    memcpy(r->error, why ? why : "", n);
    r->error[n] = '\0';
}

static void *worker_main(void *arg) {
    worker *w = arg;
    for (;;) {
        proto_msg m;
        // Only the run thread writes here, frames it decoded itself: a failure means the context
        // is going away, and so is the server.
        if (proto_socket_recv(w->there, &m, NULL, -1) != 0) break;
        if (m.type != PROTO_REWARD_REQUEST) {  // the stop message
            proto_msg_free(&m);
            break;
        }
        proto_msg out = {.type = PROTO_REWARD_RESULT};
        score(w->verify, &m.u.reward_request, &out.u.reward_result);
        proto_socket_send(w->there, NULL, &out, -1);
        proto_reward_result_free(&out.u.reward_result);
        proto_msg_free(&m);
    }
    return NULL;
}

static proto_socket *pair_socket(proto_ctx *ctx) {
    proto_socket_opts o;
    proto_socket_opts_default(&o);
    o.hwm = 4;  // one job or result at a time, plus the stop message
    o.linger_ms = 0;
    return proto_socket_new(ctx, ZMQ_PAIR, &o);
}

static int worker_start(worker *w, proto_ctx *ctx, const hy_verify_options *verify) {
    char ep[96];
    snprintf(ep, sizeof ep, "inproc://hy-reward-server-%u", atomic_fetch_add(&g_server_seq, 1));
    w->verify = verify;
    if (!(w->here = pair_socket(ctx)) || !(w->there = pair_socket(ctx)) || proto_socket_bind(w->here, ep) ||
        proto_socket_connect(w->there, ep))
        return hy_fail_prefix("reward server: worker channel");
    // SIGINT / SIGTERM are the run thread's business (its stop flag); blocked here they never
    // interrupt a verifier's system calls. The sandbox resets the mask for the programs it runs.
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    const int rc = pthread_create(&w->thread, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) return hy_fail("reward server: cannot start a worker thread: %s", strerror(rc));
    w->started = 1;
    return 0;
}

static void worker_stop(worker *w) {
    if (w->started) {
        const proto_msg stop = {.type = PROTO_CONTROL, .u.control = {PROTO_CMD_SHUTDOWN, "server stopping"}};
        proto_socket_send(w->here, NULL, &stop, -1);
        pthread_join(w->thread, NULL);
    }
    proto_socket_destroy(w->there);
    proto_socket_destroy(w->here);
}

// ---------------------------------------------------------------- lifetime

int hy_reward_server_new(hy_reward_server **out, proto_ctx *ctx, const char *endpoint, const hy_reward_server_opts *o) {
    *out = NULL;
    hy_reward_server_opts def;
    if (!o) {
        hy_reward_server_opts_default(&def);
        o = &def;
    }
    if (o->threads < 1 || o->threads > HY_REWARD_SERVER_MAX_THREADS)
        return hy_fail("reward server: threads %d is outside 1..%d", o->threads, HY_REWARD_SERVER_MAX_THREADS);
    if (o->poll_ms < 1 || o->send_timeout_ms < 0)
        return hy_fail("reward server: poll_ms %d must be ≥ 1 and send_timeout_ms %d ≥ 0", o->poll_ms,
                       o->send_timeout_ms);
    hy_reward_server *s = hy_calloc(1, sizeof *s);
    s->o = *o;
    s->router = proto_socket_new(ctx, ZMQ_ROUTER, &o->sock);
    if (!s->router || proto_socket_bind(s->router, endpoint)) {
        hy_fail_prefix("reward server");
        hy_reward_server_destroy(s);
        return -1;
    }
    s->w = hy_calloc((size_t)o->threads, sizeof *s->w);
    for (; s->n_workers < o->threads; s->n_workers++) {
        if (worker_start(&s->w[s->n_workers], ctx, &s->o.verify)) {
            s->n_workers++;  // so destroy releases its sockets
            hy_reward_server_destroy(s);
            return -1;
        }
    }
    *out = s;
    return 0;
}

const char *hy_reward_server_endpoint(const hy_reward_server *s) { return proto_socket_endpoint(s->router); }

void hy_reward_server_stats_get(const hy_reward_server *s, hy_reward_server_stats *st) { *st = s->st; }

void hy_reward_server_destroy(hy_reward_server *s) {
    if (!s) return;
    for (int i = 0; i < s->n_workers; i++) worker_stop(&s->w[i]);
    free(s->w);
    proto_socket_destroy(s->router);
    free(s);
}

// ---------------------------------------------------------------- the run loop

static worker *idle_worker(hy_reward_server *s) {
    for (int i = 0; i < s->n_workers; i++)
        if (!s->w[i].busy) return &s->w[i];
    return NULL;
}

// A worker's finished result, on to the peer that asked.
static void forward_result(hy_reward_server *s, worker *w) {
    proto_msg m;
    const int rc = proto_socket_recv(w->here, &m, NULL, 0);
    if (rc == 1) return;
    w->busy = 0;
    if (rc < 0 || m.type != PROTO_REWARD_RESULT) {  // cannot happen: the worker sends only results
        s->st.undeliverable++;
        slog(s, "reward server: worker channel: %s", rc < 0 ? hy_last_error() : "not a reward_result");
        if (rc == 0) proto_msg_free(&m);
        return;
    }
    const proto_reward_result *r = &m.u.reward_result;
    if (proto_socket_send(s->router, w->peer, &m, s->o.send_timeout_ms) != 0) {
        s->st.undeliverable++;
        slog(s, "reward server: result for trajectory %" PRIu64 " not delivered: %s", r->trajectory_id,
             hy_last_error());
    } else if (r->error && r->error[0]) {
        s->st.errors++;
        slog(s, "reward server: trajectory %" PRIu64 " from peer \"%s\" not scored: %s", r->trajectory_id, w->peer,
             r->error);
    } else {
        s->st.served++;
    }
    proto_msg_free(&m);
}

// Takes one message off the ROUTER: a request goes to w (idle), a shutdown stops the server,
// anything else is dropped. 1 when there was nothing to take, else 0.
static int take_message(hy_reward_server *s, worker *w) {
    char peer[PROTO_PEER_ID_MAX + 1];
    proto_msg m;
    const int rc = proto_socket_recv(s->router, &m, peer, 0);
    if (rc == 1) return 1;
    if (rc < 0) {
        s->st.dropped++;
        slog(s, "reward server: %s", hy_last_error());
        return 0;
    }
    const char *ep = proto_socket_endpoint(s->router);
    if (m.type == PROTO_REWARD_REQUEST) {
        // w is idle, so its queue is empty and this cannot wait
        if (proto_socket_send(w->here, NULL, &m, s->o.send_timeout_ms) == 0) {
            w->busy = 1;
            w->trajectory_id = m.u.reward_request.trajectory_id;
            snprintf(w->peer, sizeof w->peer, "%s", peer);
        } else {
            s->st.dropped++;
            slog(s, "reward server: request for trajectory %" PRIu64 " from peer \"%s\" dropped: %s",
                 m.u.reward_request.trajectory_id, peer, hy_last_error());
        }
    } else if (m.type == PROTO_CONTROL && m.u.control.command == PROTO_CMD_SHUTDOWN) {
        s->shutdown = 1;
        slog(s, "reward server on %s: shutdown requested by peer \"%s\" (%s); finishing the requests in flight", ep,
             peer, m.u.control.reason && m.u.control.reason[0] ? m.u.control.reason : "no reason given");
    } else {
        s->st.dropped++;
        if (m.type == PROTO_CONTROL)
            slog(s, "reward server on %s: ignored control \"%s\" from peer \"%s\" (a reward server acts on shutdown "
                 "only)", ep, proto_command_name(m.u.control.command), peer);
        else
            slog(s, "reward server on %s: dropped a %s message from peer \"%s\" (a reward server takes reward_request "
                 "and control)", ep, proto_type_name(m.type), peer);
    }
    proto_msg_free(&m);
    return 0;
}

int hy_reward_server_run(hy_reward_server *s, const atomic_int *stop) {
    proto_socket *socks[HY_REWARD_SERVER_MAX_THREADS + 1];
    int readable[HY_REWARD_SERVER_MAX_THREADS + 1];
    const int nw = s->n_workers;
    for (int i = 0; i < nw; i++) socks[i] = s->w[i].here;
    socks[nw] = s->router;
    for (;;) {
        const int stopping = s->shutdown || (stop && atomic_load(stop));
        int busy = 0;
        for (int i = 0; i < nw; i++) busy += s->w[i].busy;
        if (stopping && busy == 0) return 0;
        const int take = !stopping && busy < nw;
        const int n = proto_poll(socks, nw + take, s->o.poll_ms, readable);
        if (n < 0) return hy_fail_prefix("reward server");
        for (int i = 0; i < nw; i++)
            if (readable[i]) forward_result(s, &s->w[i]);
        if (!take || !readable[nw]) continue;
        worker *w;
        for (int k = 0; k < TAKE_BURST && !s->shutdown && (w = idle_worker(s)); k++)
            if (take_message(s, w)) break;
    }
}
