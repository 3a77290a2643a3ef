// Reward client (see reward_client.h; the messages in docs/proto.md).
//
// One batch is one loop around zmq_poll on the DEALER, asking for POLLOUT only while requests are
// left to send: every writable moment sends as many as the high-water mark takes (proto sends with
// timeout 0, which return 1 instead of queueing past it), every readable one takes up to a window
// of results. Reading between sends is what keeps a large batch from deadlocking against a server
// whose own sends back to us are blocked by a full queue. The poll wakes at least every TICK_MS
// so that the proto calls, which also report failed CURVE handshakes from the socket's monitor, run
// even while nothing moves.
//
// Results are matched through the batch's ids sorted once (binary search), which is also where a
// repeated id is refused, before anything is sent.
#include "evals/reward_client.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "common/hy_error.h"

#define TICK_MS 100
// Messages read per readable wake-up before going back to sending; also bounds the loop when the
// socket itself fails (every recv then returns -1).
#define READ_WINDOW 256

struct hy_reward_client {
    proto_socket *sock;
    void (*log)(void *ud, const char *line);
    void *log_ud;
    hy_reward_client_stats st;
};

static atomic_uint g_client_seq;

static void clog_line(hy_reward_client *c, const char *fmt, ...) HY_PRINTF(2, 3);
static void clog_line(hy_reward_client *c, const char *fmt, ...) {
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (c->log) c->log(c->log_ud, line);
    else fprintf(stderr, "%s\n", line);
}

int hy_reward_client_new(hy_reward_client **out, proto_ctx *ctx, const char *endpoint, const proto_socket_opts *opts) {
    *out = NULL;
    proto_socket_opts o;
    if (opts) o = *opts;
    else proto_socket_opts_default(&o);
    char id[64];
    if (!o.routing_id) {
        snprintf(id, sizeof id, "reward-client-%ld-%u", (long)getpid(), atomic_fetch_add(&g_client_seq, 1));
        o.routing_id = id;
    }
    proto_socket *s = proto_socket_new(ctx, ZMQ_DEALER, &o);
    if (!s) return hy_fail_prefix("reward client");
    if (proto_socket_connect(s, endpoint)) {
        proto_socket_destroy(s);
        return hy_fail_prefix("reward client");
    }
    hy_reward_client *c = hy_calloc(1, sizeof *c);
    c->sock = s;
    *out = c;
    return 0;
}

void hy_reward_client_destroy(hy_reward_client *c) {
    if (!c) return;
    proto_socket_destroy(c->sock);
    free(c);
}

void hy_reward_client_set_log(hy_reward_client *c, void (*fn)(void *ud, const char *line), void *ud) {
    c->log = fn;
    c->log_ud = ud;
}

void hy_reward_client_stats_get(const hy_reward_client *c, hy_reward_client_stats *st) { *st = c->st; }

// ---------------------------------------------------------------- one batch

typedef struct {
    uint64_t id;
    int index;  // into the batch
} id_slot;

static int slot_cmp(const void *a, const void *b) {
    const uint64_t x = ((const id_slot *)a)->id, y = ((const id_slot *)b)->id;
    return (x > y) - (x < y);
}

// The batch index of trajectory id, or -1.
static int slot_find(const id_slot *slots, int n, uint64_t id) {
    int lo = 0, hi = n;
    while (lo < hi) {
        const int mid = lo + (hi - lo) / 2;
        if (slots[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && slots[lo].id == id ? slots[lo].index : -1;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef struct {
    const id_slot *slots;
    int n;
    int sent;             // requests 0..sent-1 are on the wire
    int answered;         // how many of them have their result
    uint8_t *done;        // (n) 1 = out[i] holds the server's result
    proto_reward_result *out;
} batch;

// Takes what has arrived, up to READ_WINDOW messages.
static void read_results(hy_reward_client *c, batch *b) {
    const char *ep = proto_socket_endpoint(c->sock);
    for (int k = 0; k < READ_WINDOW && b->answered < b->n; k++) {
        proto_msg m;
        const int rc = proto_socket_recv(c->sock, &m, NULL, 0);
        if (rc == 1) return;
        if (rc < 0) {
            c->st.dropped++;
            clog_line(c, "reward client: %s", hy_last_error());
            continue;
        }
        if (m.type != PROTO_REWARD_RESULT) {
            c->st.dropped++;
            clog_line(c, "reward client on %s: dropped a %s message (a reward server answers with reward_result)", ep,
                      proto_type_name(m.type));
            proto_msg_free(&m);
            continue;
        }
        const uint64_t id = m.u.reward_result.trajectory_id;
        const int i = slot_find(b->slots, b->n, id);
        // batch order is send order, so i < sent means "asked for"
        if (i < 0 || i >= b->sent || b->done[i]) {
            c->st.ignored++;
            clog_line(c, "reward client on %s: ignored a result for trajectory %" PRIu64 " (%s)", ep, id,
                      i < 0 || i >= b->sent ? "not in this batch: late from an earlier one?" : "already answered");
            proto_msg_free(&m);
            continue;
        }
        b->out[i] = m.u.reward_result;  // ownership moves to the caller
        b->done[i] = 1;
        b->answered++;
        c->st.received++;
    }
}

// Every out[i] without a result gets error text, so the caller can free all n alike.
static void fill_missing(batch *b, const char *text) {
    for (int i = 0; i < b->n; i++)
        if (!b->done[i]) b->out[i].error = hy_strdup(text);
}

int hy_reward_client_score(hy_reward_client *c, const proto_reward_request *reqs, int n, proto_reward_result *out,
                           int timeout_ms) {
    if (n < 0) return hy_fail("reward client: batch of %d requests", n);
    if (n == 0) return 0;
    for (int i = 0; i < n; i++) out[i] = (proto_reward_result){.trajectory_id = reqs[i].trajectory_id};
    id_slot *slots = hy_malloc(sizeof *slots * (size_t)n);
    batch b = {slots, n, 0, 0, hy_calloc((size_t)n, 1), out};
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        slots[i] = (id_slot){reqs[i].trajectory_id, i};
        if (proto_reward_request_check(&reqs[i])) rc = hy_fail_prefix("reward client: request %d", i);
    }
    qsort(slots, (size_t)n, sizeof *slots, slot_cmp);
    for (int i = 1; i < n && !rc; i++)
        if (slots[i].id == slots[i - 1].id)
            rc = hy_fail("reward client: trajectory_id %" PRIu64 " appears twice in the batch (requests %d and %d); "
                         "results are matched by it", slots[i].id, slots[i - 1].index, slots[i].index);
    if (rc) {
        fill_missing(&b, "not sent: the batch was refused");
        free(b.done);
        free(slots);
        return -1;
    }

    const int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    proto_msg m = {.type = PROTO_REWARD_REQUEST};
    while (b.answered < n) {
        const int64_t left = deadline < 0 ? TICK_MS : deadline - now_ms();
        if (left <= 0) break;
        zmq_pollitem_t item = {proto_socket_handle(c->sock), 0, (short)(ZMQ_POLLIN | (b.sent < n ? ZMQ_POLLOUT : 0)), 0};
        if (zmq_poll(&item, 1, left < TICK_MS ? (long)left : TICK_MS) < 0 && zmq_errno() != EINTR) {
            rc = hy_fail("reward client on %s: zmq_poll: %s", proto_socket_endpoint(c->sock), zmq_strerror(zmq_errno()));
            break;
        }
        if (item.revents & ZMQ_POLLOUT) {
            while (b.sent < n) {
                m.u.reward_request = reqs[b.sent];
                const int s = proto_socket_send(c->sock, NULL, &m, 0);
                if (s == 1) break;  // high-water mark: read results, then send on
                if (s < 0) {
                    rc = hy_fail_prefix("reward client");
                    break;
                }
                b.sent++;
            }
            if (rc) break;
        }
        read_results(c, &b);
    }

    if (!rc && b.answered < n) {
        char text[128];
        snprintf(text, sizeof text, "no result within %d ms", timeout_ms);
        fill_missing(&b, text);
        rc = hy_fail("reward client on %s: %d of %d results missing after %d ms (%d of them never sent: %s)",
                     proto_socket_endpoint(c->sock), n - b.answered, n, timeout_ms, n - b.sent,
                     b.sent < n ? "is the server running and reading?" : "the server is slow or lost them");
    } else if (rc) {
        char text[160];
        snprintf(text, sizeof text, "no result: the client failed (%.100s)", hy_last_error());
        fill_missing(&b, text);
    }
    free(b.done);
    free(slots);
    return rc;
}
