// The rollout worker loop (see worker.h).
#include "rollout/worker.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "common/hy_error.h"
#include "proto/nccl_ops.h"
#include "proto/transport.h"
#include "proto/weights.h"
#include "rollout/generator.h"

void hy_worker_options_default(hy_worker_options *o) {
    memset(o, 0, sizeof *o);
    hy_engine_config_default(&o->engine);
    o->heartbeat_s = 1.0;
}

typedef struct {
    const hy_worker_options *o;
    hy_model *m;
    hy_engine *e;
    hy_generator *g;
    proto_ctx *ctx;
    proto_socket *sock, *wsock;  // to the learner; to its weight endpoint
    hy_nccl *comm;               // NCCL weight sync: joined on the first NCCL notice
    char wendpoint[1024];
    int have_weights;
    proto_gen_request *waiting;  // requests received before the first weights
    int n_waiting;
    proto_trajectory *outbox;    // trajectories the learner's queue had no room for yet
    int n_outbox, cap_outbox;
    int paused, draining, stop;
    double last_heard, last_beat, t_start;
    long tokens_done;
    uint64_t bad_frames;
} worker;

static volatile sig_atomic_t g_signal;
static void on_signal(int sig) { g_signal = sig; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double wall_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void send_heartbeat(worker *w) {
    hy_engine_stats st;
    hy_engine_stats_get(w->e, &st);
    const double elapsed = now_s() - w->t_start;
    proto_msg msg = {.type = PROTO_HEARTBEAT};
    msg.u.heartbeat = (proto_heartbeat){(char *)w->o->name, PROTO_ROLE_ROLLOUT, wall_s(), (uint32_t)st.waiting,
                                        (uint32_t)st.running,
                                        elapsed > 0 ? (double)st.generated_tokens / elapsed : 0.0,
                                        st.pool_bytes ? (double)st.bytes_in_use / (double)st.pool_bytes : 0.0,
                                        hy_generator_version(w->g)};
    if (msg.u.heartbeat.memory_used > 1) msg.u.heartbeat.memory_used = 1;
    proto_socket_send(w->sock, NULL, &msg, 0);  // a heartbeat that finds the queue full is simply skipped
    w->last_beat = now_s();
}

static void queue_out(worker *w, proto_trajectory *tr) {
    if (w->n_outbox == w->cap_outbox) {
        w->cap_outbox = w->cap_outbox ? 2 * w->cap_outbox : 64;
        w->outbox = hy_realloc(w->outbox, sizeof *w->outbox * (size_t)w->cap_outbox);
    }
    w->outbox[w->n_outbox++] = *tr;
}

// Sends what the learner has room for, in order.
static int flush_outbox(worker *w) {
    int k = 0;
    for (; k < w->n_outbox; k++) {
        proto_msg msg = {.type = PROTO_TRAJECTORY};
        msg.u.trajectory = w->outbox[k];
        const int rc = proto_socket_send(w->sock, NULL, &msg, 0);
        if (rc == 1) break;
        if (rc < 0) fprintf(stderr, "worker %s: dropping a trajectory: %s\n", w->o->name, hy_last_error());
        proto_trajectory_free(&w->outbox[k]);
    }
    if (k > 0) memmove(w->outbox, w->outbox + k, sizeof *w->outbox * (size_t)(w->n_outbox - k));
    w->n_outbox -= k;
    return 0;
}

// NCCL: joins the communicator named by the notice (once), takes part in the broadcast into the
// fp32 master parameters, rebuilds the matmul copy and checks the checksum.
static int load_weights_nccl(worker *w, const proto_weight_notice *n) {
    const hy_nccl_ops *ops = hy_nccl_ops_get();
    hy_model *m = w->m;
    if (!ops) return hy_fail("weight notice over NCCL, but this build has no NCCL (a CUDA build with libnccl)");
    if (m->be->device != HY_DEVICE_CUDA) return hy_fail("weight notice over NCCL, but the model is not on a GPU");
    char id[HY_NCCL_ID_HEX + 1];
    int rank = 0, nranks = 0;
    if (sscanf(n->location, "%256[0-9a-f]:%d:%d", id, &rank, &nranks) != 3 || rank < 1 || rank >= nranks)
        return hy_fail("weight notice: NCCL location '%.40s...' is not HEXID:RANK:NRANKS", n->location);
    const double t0 = now_s();
    if (!w->comm && ops->init(&w->comm, id, rank, nranks)) return -1;
    if (ops->broadcast(w->comm, m->dev, m->table.total)) return -1;
    m->be->params_to_matmul_view(m->be, m->mm, m->dev, m->table.total);
    m->be->synchronize(m->be);
    const uint64_t sum = ops->checksum(m->dev, m->table.total);
    if (sum != n->checksum)  // the engine keeps the old version number: its tokens say what they ran on
        return hy_fail("weights version %llu over NCCL: checksum %016llx, the learner's is %016llx",
                       (unsigned long long)n->version, (unsigned long long)sum, (unsigned long long)n->checksum);
    hy_generator_weights(w->g, n->version);
    w->have_weights = 1;
    fprintf(stderr, "worker %s: weights version %llu received over NCCL (rank %d of %d, checksum %016llx, %.3f s)\n",
            w->o->name, (unsigned long long)n->version, rank, nranks, (unsigned long long)sum, now_s() - t0);
    return 0;
}

// Fetches and loads the weights a notice announces.
static int load_weights(worker *w, const proto_weight_notice *n) {
    if (n->transport == PROTO_WEIGHTS_NCCL) return load_weights_nccl(w, n);
    if (n->transport != PROTO_WEIGHTS_ZMQ)
        return hy_fail("weight notice for version %llu uses transport '%s'; this worker takes zmq and nccl",
                       (unsigned long long)n->version, proto_weight_transport_name(n->transport));
    if (!w->wsock || strcmp(w->wendpoint, n->location)) {
        proto_socket_destroy(w->wsock);
        proto_socket_opts so;
        proto_socket_opts_default(&so);
        so.key_file = w->o->key_file;
        so.server_key_file = w->o->server_key_file;
        w->wsock = proto_socket_new(w->ctx, ZMQ_DEALER, &so);
        if (!w->wsock || proto_socket_connect(w->wsock, n->location)) return -1;
        snprintf(w->wendpoint, sizeof w->wendpoint, "%s", n->location);
    }
    const double t0 = now_s();
    uint8_t req[HY_WEIGHTS_REQUEST_BYTES];
    memcpy(req, HY_WEIGHTS_REQUEST_MAGIC, 4);
    memcpy(req + 4, &n->version, 8);
    if (proto_socket_send_raw(w->wsock, NULL, req, sizeof req, 10000)) return hy_fail("weight request not sent");
    zmq_pollitem_t it = {proto_socket_handle(w->wsock), 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, 60000) <= 0) return hy_fail("no weight image from %s within 60 s", n->location);
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, proto_socket_handle(w->wsock), 0) < 0) {
        zmq_msg_close(&msg);
        return hy_fail("weight image receive: %s", zmq_strerror(zmq_errno()));
    }
    uint64_t version, checksum;
    const int rc = hy_weights_load(w->m, zmq_msg_data(&msg), zmq_msg_size(&msg), &version, &checksum);
    zmq_msg_close(&msg);
    if (rc) return -1;
    hy_generator_weights(w->g, version);
    w->have_weights = 1;
    fprintf(stderr, "worker %s: weights version %llu loaded (checksum %016llx, %.3f s)\n", w->o->name,
            (unsigned long long)version, (unsigned long long)checksum, now_s() - t0);
    return 0;
}

static void handle(worker *w, proto_msg *msg) {
    switch (msg->type) {
    case PROTO_GEN_REQUEST:
        if (!w->have_weights) {  // generate nothing from weights the learner did not send
            w->waiting = hy_realloc(w->waiting, sizeof *w->waiting * (size_t)(w->n_waiting + 1));
            w->waiting[w->n_waiting++] = msg->u.gen_request;
            msg->type = PROTO_HEARTBEAT;  // ownership moved; nothing left to free
            memset(&msg->u, 0, sizeof msg->u);
        } else {
            hy_generator_submit(w->g, &msg->u.gen_request);
        }
        break;
    case PROTO_WEIGHT_NOTICE:
        if (load_weights(w, &msg->u.weight_notice))
            fprintf(stderr, "worker %s: weights not loaded: %s\n", w->o->name, hy_last_error());
        else
            send_heartbeat(w);  // tells the learner the new version is in use (sync latency)
        if (w->have_weights) {
            for (int i = 0; i < w->n_waiting; i++) {
                hy_generator_submit(w->g, &w->waiting[i]);
                proto_gen_request_free(&w->waiting[i]);
            }
            w->n_waiting = 0;
        }
        break;
    case PROTO_CONTROL:
        switch (msg->u.control.command) {
        case PROTO_CMD_PAUSE: w->paused = 1; break;
        case PROTO_CMD_RESUME: w->paused = 0; break;
        case PROTO_CMD_DRAIN: w->draining = 1; break;
        case PROTO_CMD_SHUTDOWN: w->stop = 1; break;
        }
        break;
    default:
        fprintf(stderr, "worker %s: ignoring a %d message\n", w->o->name, (int)msg->type);
    }
}

static int send_finished(worker *w) {
    proto_trajectory tr;
    while (hy_generator_take(w->g, &tr)) queue_out(w, &tr);
    return flush_outbox(w);
}

static int serve(worker *w) {
    proto_socket *socks[1] = {w->sock};
    while (!w->stop && !g_signal) {
        hy_engine_stats st;
        hy_engine_stats_get(w->e, &st);
        const int busy = !w->paused && (st.waiting + st.running) > 0;
        if (w->draining && !busy && !w->n_outbox) break;
        int readable = 0;
        const int ready = proto_poll(socks, 1, busy || w->n_outbox ? 0 : 50, &readable);
        if (ready < 0) return -1;
        for (int k = 0; ready && k < 256; k++) {  // take what is queued, then step again
            proto_msg msg;
            char peer[PROTO_PEER_ID_MAX + 1];
            const int rc = proto_socket_recv(w->sock, &msg, peer, 0);
            if (rc == 1) break;
            w->last_heard = now_s();
            if (rc < 0) {
                w->bad_frames++;
                fprintf(stderr, "worker %s: %s\n", w->o->name, hy_last_error());
                continue;
            }
            handle(w, &msg);
            proto_msg_free(&msg);
        }
        if (busy && hy_generator_step(w->g) < 0) return -1;
        if (send_finished(w)) return -1;
        if (now_s() - w->last_beat >= w->o->heartbeat_s) send_heartbeat(w);
        if (w->o->orphan_s > 0 && now_s() - w->last_heard > w->o->orphan_s) {
            fprintf(stderr, "worker %s: nothing from the learner for %.0f s; exiting\n", w->o->name, w->o->orphan_s);
            break;
        }
    }
    return 0;
}

int hy_worker_run(hy_model *m, const hy_worker_options *o) {
    worker w = {0};
    w.o = o;
    w.m = m;
    w.t_start = w.last_heard = now_s();
    int rc = -1;
    if (hy_engine_new(&w.e, m, &o->engine)) goto done;
    w.g = hy_generator_new(w.e, o->engine.tok, &m->cfg, 0, o->name, stderr);
    if (!(w.ctx = proto_ctx_new())) goto done;
    proto_socket_opts so;
    proto_socket_opts_default(&so);
    so.key_file = o->key_file;
    so.server_key_file = o->server_key_file;
    so.routing_id = o->name;
    so.linger_ms = 2000;
    if (!(w.sock = proto_socket_new(w.ctx, ZMQ_DEALER, &so)) || proto_socket_connect(w.sock, o->connect)) goto done;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    fprintf(stderr, "worker %s: connected to %s; %s\n", o->name, o->connect, hy_engine_pool_text(w.e));
    send_heartbeat(&w);
    rc = serve(&w);
    hy_generator_stats gs;
    hy_generator_stats_get(w.g, &gs);
    fprintf(stderr, "worker %s: exiting: %llu trajectories (%llu episodes), %llu requests refused, %llu bad frames%s\n",
            o->name, (unsigned long long)gs.trajectories, (unsigned long long)gs.episodes,
            (unsigned long long)gs.refused, (unsigned long long)w.bad_frames, g_signal ? " (signal)" : "");
done:
    for (int i = 0; i < w.n_outbox; i++) proto_trajectory_free(&w.outbox[i]);
    for (int i = 0; i < w.n_waiting; i++) proto_gen_request_free(&w.waiting[i]);
    free(w.outbox);
    free(w.waiting);
    proto_socket_destroy(w.wsock);
    proto_socket_destroy(w.sock);
    if (w.ctx) proto_ctx_destroy(w.ctx);
    if (w.comm) hy_nccl_ops_get()->destroy(w.comm);
    hy_generator_destroy(w.g);
    hy_engine_destroy(w.e);
    return rc;
}
