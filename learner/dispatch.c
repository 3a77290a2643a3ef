// Remote rollout workers (see dispatch.h).
#include "learner/dispatch.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "common/hy_error.h"
#include "common/text_list.h"
#include "proto/nccl_ops.h"
#include "proto/transport.h"
#include "proto/weights.h"
#include "rollout/request_table.h"

typedef struct {
    char name[PROTO_PEER_ID_MAX + 1];
    pid_t pid;         // its process while it runs (workers started here); 0 otherwise
    int spawned;       // started here (and so restarted here when lost)
    int alive, restarts;
    double last_seen;
    uint64_t version;  // the weight version it last reported
    int in_flight;     // samples it holds
} remote_worker;

struct hy_dispatch {
    hy_dispatch_options o;
    char **argv;  // a copy of o.spawn_argv: workers are started again long after the caller's returned
    hy_model *m;
    proto_ctx *ctx;
    proto_socket *sock, *wsock;
    char endpoint[1024], wendpoint[1024];
    remote_worker *w;
    int n_w;
    hy_request_table table;
    uint8_t *image;  // the newest weights
    size_t image_size;
    uint64_t version, checksum;
    hy_dispatch_stats st;
    hy_nccl *comm;                      // NCCL mode: the communicator (after the first broadcast)
    char nccl_id[HY_NCCL_ID_HEX + 1];
    char failed[512];                   // NCCL mode: why the run cannot go on ("" = it can)
    double last_pump;  // when pump last ran: the time between pumps is not a worker's silence
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void hy_dispatch_options_default(hy_dispatch_options *o) {
    memset(o, 0, sizeof *o);
    o->bind = "tcp://127.0.0.1:*";
    o->weights_bind = NULL;
    o->worker_timeout_s = 30;
    o->max_restarts = 3;
    o->hwm = 256;
    o->join_timeout_s = 600;
}

static int spawn(hy_dispatch *d, remote_worker *w) {
    int n = 0;
    while (d->argv[n]) n++;
    const char **argv = hy_calloc((size_t)n + 8, sizeof *argv);
    for (int i = 0; i < n; i++) argv[i] = d->argv[i];
    argv[n] = "--connect";
    argv[n + 1] = d->endpoint;
    argv[n + 2] = "--name";
    argv[n + 3] = w->name;
    char table[32];
    if (d->o.nccl) {  // a broadcast carries bare floats: the worker checks the layout before it joins
        snprintf(table, sizeof table, "%016llx", (unsigned long long)hy_weights_table_hash(d->m));
        argv[n + 4] = "--table-hash";
        argv[n + 5] = table;
    }
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
        free(argv);
        return hy_fail("starting worker %s: fork: %s", w->name, strerror(errno));
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);  // a killed learner takes its workers with it
        if (getppid() != parent) _exit(1);
        dup2(2, 1);  // the learner's stdout carries metrics lines only
        if (hy_list_count(d->o.worker_gpus)) {  // entry (worker index mod count) of the list
            char gpu[32];
            hy_list_entry(d->o.worker_gpus, (int)(w - d->w), gpu, sizeof gpu);
            setenv("CUDA_VISIBLE_DEVICES", gpu, 1);
        }
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "worker %s: exec %s: %s\n", w->name, argv[0], strerror(errno));
        _exit(127);
    }
    free(argv);
    w->pid = pid;
    w->alive = 0;  // until it registers
    w->last_seen = now_s();
    return 0;
}

static int make_image(hy_dispatch *d, uint64_t version) {
    if (d->o.nccl) {  // no image: the checksum of the device parameters the broadcast sends
        d->version = version;
        d->checksum = hy_nccl_ops_get()->checksum(d->m->dev, d->m->table.total);
        return 0;
    }
    hy_model_sync_to_host(d->m);
    free(d->image);
    hy_weights_image(d->m, d->m->arena, version, &d->image, &d->image_size);
    d->version = version;
    d->checksum = hy_weights_checksum(d->m->arena, d->m->table.total);
    return 0;
}

static void send_notice(hy_dispatch *d, remote_worker *w) {
    proto_msg msg = {.type = PROTO_WEIGHT_NOTICE};
    char where[HY_NCCL_ID_HEX + 64];
    if (d->o.nccl) snprintf(where, sizeof where, "%s:%d:%d", d->nccl_id, (int)(w - d->w) + 1, d->o.n_spawn + 1);
    msg.u.weight_notice = (proto_weight_notice){d->version, d->checksum, d->o.nccl ? PROTO_WEIGHTS_NCCL : PROTO_WEIGHTS_ZMQ,
                                                d->o.nccl ? where : d->wendpoint};
    if (proto_socket_send(d->sock, w->name, &msg, 5000))
        fprintf(stderr, "hybrid: weight notice to %s not sent: %s\n", w->name, hy_last_error());
}

// Where the weight endpoint binds when the caller names none: beside the workers' endpoint, so a
// worker that can reach one reaches the other (tcp://HOST:PORT → tcp://HOST:*, ipc://P → ipc://P.weights).
static void weights_endpoint_for(const char *bind, char *out, size_t n) {
    if (!strncmp(bind, "ipc://", 6) || !strncmp(bind, "inproc://", 9)) {
        snprintf(out, n, "%s.weights", bind);
        return;
    }
    const char *colon = strrchr(bind, ':');
    if (!strncmp(bind, "tcp://", 6) && colon && colon > bind + 6)
        snprintf(out, n, "%.*s:*", (int)(colon - bind), bind);
    else
        snprintf(out, n, "tcp://127.0.0.1:*");
}

static int wait_all_joined(hy_dispatch *d);
static int dispatch_publish(void *ctx, uint64_t version, double *sync_s);

int hy_dispatch_new(hy_dispatch **out, hy_model *m, const hy_dispatch_options *o, uint64_t start_version) {
    hy_dispatch *d = hy_calloc(1, sizeof *d);
    d->o = *o;
    d->m = m;
    int n_args = 0;
    while (o->spawn_argv && o->spawn_argv[n_args]) n_args++;
    d->argv = hy_calloc((size_t)n_args + 1, sizeof *d->argv);
    for (int i = 0; i < n_args; i++) d->argv[i] = hy_strdup(o->spawn_argv[i]);
    d->o.spawn_argv = NULL;
    hy_request_table_init(&d->table);
    proto_socket_opts so;
    proto_socket_opts_default(&so);
    so.hwm = o->hwm;
    so.key_file = o->key_file;
    so.authorized_keys = o->authorized_keys;
    if (o->weights_bind) snprintf(d->wendpoint, sizeof d->wendpoint, "%s", o->weights_bind);
    else weights_endpoint_for(o->bind, d->wendpoint, sizeof d->wendpoint);
    if (!(d->ctx = proto_ctx_new()) || !(d->sock = proto_socket_new(d->ctx, ZMQ_ROUTER, &so)) ||
        proto_socket_bind(d->sock, o->bind) || !(d->wsock = proto_socket_new(d->ctx, ZMQ_ROUTER, &so)) ||
        proto_socket_bind(d->wsock, d->wendpoint)) {
        hy_dispatch_destroy(d);
        return -1;
    }
    snprintf(d->endpoint, sizeof d->endpoint, "%s", proto_socket_endpoint(d->sock));
    snprintf(d->wendpoint, sizeof d->wendpoint, "%s", proto_socket_endpoint(d->wsock));
    if (o->nccl) {
        const char *why = !hy_nccl_ops_get()               ? "this build has no NCCL (a CUDA build with libnccl)"
                          : m->be->device != HY_DEVICE_CUDA ? "the learner's model is not on a GPU (--device cuda)"
                          : o->n_spawn < 1                  ? "it needs workers started here (workers ≥ 1)"
                                                            : NULL;
        if (why || hy_nccl_ops_get()->unique_id(d->nccl_id)) {
            if (why) hy_fail("weight-sync nccl: %s", why);
            hy_dispatch_destroy(d);
            return -1;
        }
    }
    make_image(d, start_version);
    for (int i = 0; i < o->n_spawn; i++) {
        d->w = hy_realloc(d->w, sizeof *d->w * (size_t)(d->n_w + 1));
        remote_worker *w = &d->w[d->n_w++];
        memset(w, 0, sizeof *w);
        snprintf(w->name, sizeof w->name, "w%d", i);
        w->spawned = 1;
        if (spawn(d, w)) {
            hy_dispatch_destroy(d);
            return -1;
        }
    }
    *out = d;
    if (o->nccl) {  // every rank must be there for the first broadcast
        double sync_s;
        if (wait_all_joined(d) || dispatch_publish(d, start_version, &sync_s)) {
            hy_dispatch_destroy(d);
            *out = NULL;
            return -1;
        }
        fprintf(stderr, "hybrid: NCCL weight sync with %d workers: first broadcast %.3f s\n", o->n_spawn, sync_s);
    }
    return 0;
}

static remote_worker *find_worker(hy_dispatch *d, const char *name) {
    for (int i = 0; i < d->n_w; i++)
        if (!strcmp(d->w[i].name, name)) return &d->w[i];
    return NULL;
}

// Its requests go back to the queue; a worker started here is started again.
static void lose_worker(hy_dispatch *d, remote_worker *w, const char *why, int reaped) {
    const int idx = (int)(w - d->w);
    if (d->o.nccl && !d->failed[0])
        snprintf(d->failed, sizeof d->failed,
                 "rollout worker %s lost (%s): an NCCL communicator cannot go on without a rank; restart the run "
                 "(it resumes from its last checkpoint)",
                 w->name, why);
    fprintf(stderr, "hybrid: rollout worker %s lost (%s); its requests go to other workers\n", w->name, why);
    d->st.workers_lost++;
    w->alive = 0;
    w->in_flight = 0;
    for (int i = 0; i < d->table.n; i++)
        if (d->table.e[i].owner == idx) d->table.e[i].owner = -1;
    if (w->pid > 0 && !reaped) {  // silent but running: make sure it is gone before replacing it
        kill(w->pid, SIGKILL);
        waitpid(w->pid, NULL, 0);
    }
    w->pid = 0;
    if (w->spawned && !d->o.nccl) {
        if (w->restarts < d->o.max_restarts) {
            w->restarts++;
            d->st.restarts++;
            if (spawn(d, w)) fprintf(stderr, "hybrid: %s\n", hy_last_error());
        }
    }
}

static void check_workers(hy_dispatch *d) {
    const double t = now_s();
    for (int i = 0; i < d->n_w; i++) {
        remote_worker *w = &d->w[i];
        if (w->pid > 0) {
            int status;
            if (waitpid(w->pid, &status, WNOHANG) == w->pid) {
                char why[64];
                if (WIFSIGNALED(status)) snprintf(why, sizeof why, "killed by signal %d", WTERMSIG(status));
                else snprintf(why, sizeof why, "exited with status %d", WEXITSTATUS(status));
                lose_worker(d, w, why, 1);
                continue;
            }
        }
        if ((w->alive || w->pid > 0) && t - w->last_seen > d->o.worker_timeout_s) {
            char why[64];
            snprintf(why, sizeof why, "silent for %.0f s", t - w->last_seen);
            lose_worker(d, w, why, 0);
        }
    }
}

static void assign(hy_dispatch *d) {
    for (int i = 0; i < d->table.n; i++) {
        hy_request_entry *e = &d->table.e[i];
        if (e->owner >= 0) continue;
        remote_worker *best = NULL;
        for (int k = 0; k < d->n_w; k++)
            if (d->w[k].alive && (!best || d->w[k].in_flight < best->in_flight)) best = &d->w[k];
        if (!best) return;
        proto_msg msg = {.type = PROTO_GEN_REQUEST};
        msg.u.gen_request = e->req;
        const int rc = proto_socket_send(d->sock, best->name, &msg, 1000);
        if (rc) {
            if (rc < 0) fprintf(stderr, "hybrid: request %llu to %s: %s\n", (unsigned long long)e->req.id,
                                best->name, hy_last_error());
            return;  // its queue is full: try again on the next pump
        }
        if (e->sent_at > 0) d->st.resent++;
        e->owner = (int)(best - d->w);
        e->sent_at = now_s();
        best->in_flight += (int)(e->req.n - e->received);
    }
}

static void serve_weights(hy_dispatch *d) {
    void *s = proto_socket_handle(d->wsock);
    for (;;) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        if (zmq_msg_recv(&id, s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&id);
            return;
        }
        zmq_msg_init(&body);
        const int got = zmq_msg_more(&id) ? zmq_msg_recv(&body, s, 0) : -1;
        while (zmq_msg_more(&body)) zmq_msg_recv(&body, s, 0);  // extra parts are not ours
        if (got != HY_WEIGHTS_REQUEST_BYTES || memcmp(zmq_msg_data(&body), HY_WEIGHTS_REQUEST_MAGIC, 4)) {
            d->st.bad_frames++;
            fprintf(stderr, "hybrid: weight endpoint: dropped a %d-byte message that is not a weight request\n", got);
        } else {
            zmq_send(s, zmq_msg_data(&id), zmq_msg_size(&id), ZMQ_SNDMORE);
            zmq_send(s, d->image, d->image_size, 0);
        }
        zmq_msg_close(&id);
        zmq_msg_close(&body);
    }
}

static void on_message(hy_dispatch *d, proto_msg *msg, const char *peer) {
    remote_worker *w = find_worker(d, peer);
    // Only a rollout worker's heartbeat makes a peer a worker: anything else from a stranger is not
    // given requests it would never answer.
    if (!w && !(msg->type == PROTO_HEARTBEAT && msg->u.heartbeat.role == PROTO_ROLE_ROLLOUT)) {
        d->st.bad_frames++;
        fprintf(stderr, "hybrid: ignoring a message of type %d from %s, which is not a rollout worker\n",
                (int)msg->type, peer);
        return;
    }
    if (!w) {
        d->w = hy_realloc(d->w, sizeof *d->w * (size_t)(d->n_w + 1));
        w = &d->w[d->n_w++];
        memset(w, 0, sizeof *w);
        snprintf(w->name, sizeof w->name, "%s", peer);
    }
    w->last_seen = now_s();
    if (!w->alive) {
        w->alive = 1;
        fprintf(stderr, "hybrid: rollout worker %s joined\n", w->name);
        if (!d->o.nccl) send_notice(d, w);  // NCCL: every rank gets the notice of each broadcast
    }
    if (msg->type == PROTO_HEARTBEAT) {
        w->version = msg->u.heartbeat.weight_version;
    } else if (msg->type == PROTO_TRAJECTORY) {
        proto_trajectory *tr = &msg->u.trajectory;
        hy_request_entry *e = hy_request_table_find(&d->table, tr->request_id);
        if (e && e->owner == (int)(w - d->w) && w->in_flight > 0) w->in_flight--;
        if (hy_request_table_file(&d->table, tr)) {
            d->st.trajectories++;
            memset(&msg->u, 0, sizeof msg->u);  // the table owns it now
            msg->type = PROTO_HEARTBEAT;
        }
    } else {
        d->st.bad_frames++;
        fprintf(stderr, "hybrid: ignoring a message of type %d from worker %s\n", (int)msg->type, peer);
    }
}

// One round: worker messages, weight requests, lost workers, assignments. Waits up to timeout_ms.
static int pump(hy_dispatch *d, int timeout_ms) {
    const double t = now_s(), gap = d->last_pump > 0 ? t - d->last_pump : 0;
    if (gap > 1.0)  // the learner was busy (a training step): nobody was listening, so nobody was silent
        for (int i = 0; i < d->n_w; i++) d->w[i].last_seen += gap;
    proto_socket *socks[2] = {d->sock, d->wsock};
    int readable[2] = {0, 0};
    if (proto_poll(socks, 2, timeout_ms, readable) < 0) return -1;
    if (readable[1]) serve_weights(d);
    for (int k = 0; readable[0] && k < 1024; k++) {
        proto_msg msg;
        char peer[PROTO_PEER_ID_MAX + 1] = "";
        const int rc = proto_socket_recv(d->sock, &msg, peer, 0);
        if (rc == 1) break;
        if (rc < 0) {
            d->st.bad_frames++;
            fprintf(stderr, "hybrid: %s\n", hy_last_error());
            remote_worker *w = peer[0] ? find_worker(d, peer) : NULL;
            if (w) w->last_seen = now_s();
            continue;
        }
        on_message(d, &msg, peer);
        proto_msg_free(&msg);
    }
    check_workers(d);
    assign(d);
    d->last_pump = now_s();
    return 0;
}

static int dispatch_submit(void *ctx, const proto_gen_request *r) {
    hy_dispatch *d = ctx;
    if (hy_request_table_add(&d->table, r)) return -1;
    return pump(d, 0);
}

static int any_worker_possible(const hy_dispatch *d) {
    if (d->o.n_spawn == 0) return 1;  // workers come from elsewhere: wait for them
    for (int i = 0; i < d->n_w; i++)
        if (d->w[i].alive || d->w[i].pid > 0) return 1;
    return 0;
}

static int dispatch_collect(void *ctx, uint64_t request_id, proto_trajectory **out, int *n) {
    hy_dispatch *d = ctx;
    if (!hy_request_table_find(&d->table, request_id))
        return hy_fail("collect: request %llu was never submitted", (unsigned long long)request_id);
    while (!hy_request_table_take(&d->table, request_id, out, n)) {
        if (d->failed[0]) return hy_fail("%s", d->failed);
        if (!any_worker_possible(d)) return hy_fail("no rollout worker left (every restart used)");
        if (pump(d, 100)) return -1;
    }
    return 0;
}

static int wait_all_joined(hy_dispatch *d) {
    const double t0 = now_s();
    for (;;) {
        int alive = 0;
        for (int i = 0; i < d->n_w; i++) alive += d->w[i].alive;
        if (alive == d->o.n_spawn) return 0;
        if (d->failed[0]) return hy_fail("%s", d->failed);
        if (now_s() - t0 > d->o.join_timeout_s)
            return hy_fail("weight-sync nccl: %d of %d workers joined within %.0f s", alive, d->o.n_spawn,
                           d->o.join_timeout_s);
        if (pump(d, 200)) return -1;
    }
}

static int dispatch_publish(void *ctx, uint64_t version, double *sync_s) {
    hy_dispatch *d = ctx;
    const double t0 = now_s();
    make_image(d, version);
    if (d->o.nccl && d->failed[0]) return hy_fail("%s", d->failed);
    for (int i = 0; i < d->n_w; i++)
        if (d->w[i].alive) send_notice(d, &d->w[i]);
    if (d->o.nccl) {  // the workers join the broadcast when they read the notice
        const hy_nccl_ops *ops = hy_nccl_ops_get();
        if (!d->comm && ops->init(&d->comm, d->nccl_id, 0, d->o.n_spawn + 1)) return -1;
        if (ops->broadcast(d->comm, d->m->dev, d->m->table.total)) return -1;
    }
    *sync_s = now_s() - t0;
    return pump(d, 0);
}

int hy_dispatch_wait_version(hy_dispatch *d, uint64_t version, double timeout_s) {
    const double t0 = now_s();
    for (;;) {
        int behind = 0, alive = 0;
        for (int i = 0; i < d->n_w; i++) {
            alive += d->w[i].alive;
            behind += d->w[i].alive && d->w[i].version < version;
        }
        if (alive > 0 && behind == 0) return 0;
        if (d->failed[0]) return hy_fail("%s", d->failed);
        if (now_s() - t0 > timeout_s)
            return hy_fail("%d of %d workers did not report weights version %llu within %.0f s", behind, alive,
                           (unsigned long long)version, timeout_s);
        if (pump(d, 5)) return -1;
    }
}

static void dispatch_describe(void *ctx, char *buf, int n) {
    hy_dispatch_stats s;
    hy_dispatch_stats_get(ctx, &s);
    snprintf(buf, (size_t)n,
             "%d workers alive: %llu trajectories, %llu duplicates dropped, %llu unknown, %llu bad frames, %llu "
             "requests resent, %llu workers lost, %llu restarted",
             s.workers_alive, (unsigned long long)s.trajectories, (unsigned long long)s.duplicates,
             (unsigned long long)s.unknown, (unsigned long long)s.bad_frames, (unsigned long long)s.resent,
             (unsigned long long)s.workers_lost, (unsigned long long)s.restarts);
}

hy_rollout_source hy_dispatch_iface(hy_dispatch *d) {
    return (hy_rollout_source){dispatch_submit, dispatch_collect, dispatch_publish, dispatch_describe, d};
}

const char *hy_dispatch_endpoint(const hy_dispatch *d) { return d->endpoint; }

void hy_dispatch_stats_get(const hy_dispatch *d, hy_dispatch_stats *s) {
    *s = d->st;
    s->duplicates = d->table.duplicates;
    s->unknown = d->table.unknown;
    s->workers_alive = 0;
    for (int i = 0; i < d->n_w; i++) s->workers_alive += d->w[i].alive;
}

void hy_dispatch_destroy(hy_dispatch *d) {
    if (!d) return;
    proto_msg msg = {.type = PROTO_CONTROL};
    msg.u.control = (proto_control){PROTO_CMD_SHUTDOWN, "run finished"};
    for (int i = 0; i < d->n_w; i++)
        if (d->w[i].alive && d->sock) proto_socket_send(d->sock, d->w[i].name, &msg, 100);
    const double t0 = now_s();
    for (int i = 0; i < d->n_w; i++) {
        remote_worker *w = &d->w[i];
        if (w->pid <= 0) continue;
        while (waitpid(w->pid, NULL, WNOHANG) == 0) {
            if (d->wsock) serve_weights(d);  // a worker fetching the last version finishes that first
            if (now_s() - t0 > 5) {
                kill(w->pid, SIGTERM);
                waitpid(w->pid, NULL, 0);
                break;
            }
            struct timespec ts = {0, 20000000};
            nanosleep(&ts, NULL);
        }
    }
    if (d->comm) hy_nccl_ops_get()->destroy(d->comm);
    proto_socket_destroy(d->sock);
    proto_socket_destroy(d->wsock);
    if (d->ctx) proto_ctx_destroy(d->ctx);
    hy_request_table_free(&d->table);
    for (int i = 0; d->argv && d->argv[i]; i++) free(d->argv[i]);
    free(d->argv);
    free(d->image);
    free(d->w);
    free(d);
}
