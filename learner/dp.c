// Data-parallel ranks: the rendezvous, its small collectives, and the arena collectives over NCCL
// or through the rendezvous (see dp.h).
//
// Wire format of the rendezvous (docs/proto.md, "Data-parallel rendezvous"): one ZeroMQ message
// per piece, a 32-byte little-endian header {"HYDP", op, rank, 0, seq, nbytes} followed by nbytes
// of payload. Rank 0 binds a ROUTER; rank r connects a DEALER whose routing id is "rank-r". A
// collective is a gather to rank 0 and a reply from it; pieces of parameter-sized arrays are cut
// to CHUNK_FLOATS so no message comes near the transport's frame limit and rank 0 holds only
// W − 1 chunks at a time. Every message carries the collective's sequence number: ranks that
// disagree about which collective comes next (a bug, or ranks of different jobs) fail with both
// sides named instead of summing the wrong arrays.
#include "dp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "../common/hy_error.h"
#include "../proto/nccl_ops.h"
#include "../proto/transport.h"

enum { OP_HELLO = 1, OP_WELCOME, OP_REFUSE, OP_SUM, OP_BCAST, OP_GATHER };
enum { HEADER_BYTES = 32, CHUNK_FLOATS = 1 << 22 };  // 16 MB pieces

struct hy_dp {
    int rank, world;
    hy_backend *be;
    proto_ctx *ctx;
    proto_socket *sock;
    void *zs;  // its ZeroMQ socket
    uint64_t seq;
    hy_nccl *nccl;
    const hy_nccl_ops *nccl_ops;
    float *host;  // CHUNK_FLOATS staging (rendezvous path)
    float *acc;   // rank 0: CHUNK_FLOATS accumulator
};

static const char *op_name(uint32_t op) {
    static const char *const names[] = {"?", "hello", "welcome", "refuse", "sum", "broadcast", "gather"};
    return op < sizeof names / sizeof *names ? names[op] : "?";
}

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

// Sends one message: to rank `to` from rank 0 (ROUTER), or to rank 0 from the others (DEALER).
static int send_msg(hy_dp *dp, int to, uint32_t op, const void *data, size_t n) {
    if (dp->rank == 0) {
        char id[32];
        snprintf(id, sizeof id, "rank-%d", to);
        if (zmq_send(dp->zs, id, strlen(id), ZMQ_SNDMORE) < 0)
            return hy_fail("data-parallel rendezvous: sending %s to rank %d: %s", op_name(op), to, zmq_strerror(errno));
    }
    zmq_msg_t msg;
    if (zmq_msg_init_size(&msg, HEADER_BYTES + n)) return hy_fail("zmq_msg_init_size: %s", zmq_strerror(errno));
    unsigned char *p = zmq_msg_data(&msg);
    memcpy(p, "HYDP", 4);
    put_u32(p + 4, op);
    put_u32(p + 8, (uint32_t)dp->rank);
    put_u32(p + 12, 0);
    put_u64(p + 16, dp->seq);
    put_u64(p + 24, n);
    if (n) memcpy(p + HEADER_BYTES, data, n);
    if (zmq_msg_send(&msg, dp->zs, 0) < 0) {
        zmq_msg_close(&msg);
        return hy_fail("data-parallel rendezvous: sending %s (%zu bytes) to rank %d: %s", op_name(op), n,
                       dp->rank ? 0 : to, zmq_strerror(errno));
    }
    return 0;
}

// Receives one message (waiting up to timeout_ms; −1 = forever) into msg (initialised here; the
// caller closes it). Checks the header: magic, the sender's rank (rank 0 hears from 1..W−1, the
// others only from 0), the op expected (a refusal is always accepted) and the sequence number.
// 1 on timeout.
static int recv_msg(hy_dp *dp, uint32_t want_op, zmq_msg_t *msg, int *from, int timeout_ms) {
    zmq_pollitem_t item = {dp->zs, 0, ZMQ_POLLIN, 0};
    const int r = zmq_poll(&item, 1, timeout_ms);
    if (r < 0) return hy_fail("data-parallel rendezvous: poll: %s", zmq_strerror(errno));
    if (r == 0) return 1;
    char id[64] = "";
    if (dp->rank == 0) {
        const int k = zmq_recv(dp->zs, id, sizeof id - 1, 0);
        if (k < 0) return hy_fail("data-parallel rendezvous: recv: %s", zmq_strerror(errno));
        id[k < (int)sizeof id - 1 ? k : (int)sizeof id - 1] = 0;
    }
    zmq_msg_init(msg);
    if (zmq_msg_recv(msg, dp->zs, 0) < 0) {
        zmq_msg_close(msg);
        return hy_fail("data-parallel rendezvous: recv: %s", zmq_strerror(errno));
    }
    const unsigned char *p = zmq_msg_data(msg);
    const size_t size = zmq_msg_size(msg);
    const char *problem = NULL;
    uint32_t op = 0, rank = 0;
    uint64_t seq = 0;
    if (size < HEADER_BYTES || memcmp(p, "HYDP", 4) || get_u64(p + 24) != size - HEADER_BYTES) {
        problem = "not a rendezvous message (bad header)";
    } else {
        op = get_u32(p + 4);
        rank = get_u32(p + 8);
        seq = get_u64(p + 16);
        char want_id[32];
        snprintf(want_id, sizeof want_id, "rank-%u", rank);
        if (dp->rank == 0 ? (rank == 0 || (int)rank >= dp->world || strcmp(id, want_id)) : rank != 0)
            problem = "from an unexpected rank";
        else if (op != want_op && op != OP_REFUSE)
            problem = "the wrong collective";
        else if (seq != dp->seq && op != OP_REFUSE)
            problem = "out of sequence";
    }
    if (problem) {
        hy_fail("data-parallel rendezvous: rank %d got a message %s (peer '%s', rank %u, op %s #%llu; expected %s "
                "#%llu): the ranks disagree about the job's steps",
                dp->rank, problem, id, rank, op_name(op), (unsigned long long)seq, op_name(want_op),
                (unsigned long long)dp->seq);
        zmq_msg_close(msg);
        return -1;
    }
    if (op == OP_REFUSE) {
        hy_fail("data-parallel: rank %u refused the job: %.*s", rank, (int)(size - HEADER_BYTES), p + HEADER_BYTES);
        zmq_msg_close(msg);
        return -1;
    }
    *from = (int)rank;
    return 0;
}

static const void *payload(zmq_msg_t *msg) { return (const unsigned char *)zmq_msg_data(msg) + HEADER_BYTES; }
static size_t payload_size(zmq_msg_t *msg) { return zmq_msg_size(msg) - HEADER_BYTES; }

// Receives want_op with exactly n payload bytes; waits forever (a dead peer is the launcher's to see).
static int recv_exact(hy_dp *dp, uint32_t want_op, size_t n, zmq_msg_t *msg, int *from) {
    const int rc = recv_msg(dp, want_op, msg, from, -1);
    if (rc) return rc < 0 ? -1 : hy_fail("data-parallel rendezvous: timed out");
    if (payload_size(msg) != n) {
        hy_fail("data-parallel rendezvous: rank %d sent %s of %zu bytes, expected %zu", *from, op_name(want_op),
                payload_size(msg), n);
        zmq_msg_close(msg);
        return -1;
    }
    return 0;
}

// ---- joining ----------------------------------------------------------------------------------

static int env_int(const char *name, int *v, int lo, int hi) {
    const char *s = getenv(name);
    char *end;
    errno = 0;
    const long x = strtol(s, &end, 10);
    if (!*s || *end || errno || x < lo || x > hi)
        return hy_fail("environment variable %s='%s': expected an integer in [%d, %d]", name, s, lo, hi);
    *v = (int)x;
    return 0;
}

int hy_dp_env_read(hy_dp_env *env) {
    memset(env, 0, sizeof *env);
    env->world = 1;
    if (!getenv("WORLD_SIZE")) return 0;
    if (env_int("WORLD_SIZE", &env->world, 1, 65536)) return -1;
    if (env->world == 1) return 0;
    if (!getenv("RANK")) return hy_fail("environment: WORLD_SIZE=%d but RANK is not set", env->world);
    if (env_int("RANK", &env->rank, 0, env->world - 1)) return -1;
    env->local_rank = env->rank;
    if (getenv("LOCAL_RANK") && env_int("LOCAL_RANK", &env->local_rank, 0, 65535)) return -1;
    const char *ep = getenv("HY_DP_ENDPOINT"), *addr = getenv("MASTER_ADDR"), *port = getenv("MASTER_PORT");
    if (ep && *ep) {
        snprintf(env->endpoint, sizeof env->endpoint, "%s", ep);
    } else if (addr && *addr && port && *port) {
        int p = 0;
        if (env_int("MASTER_PORT", &p, 1, 65535)) return -1;
        snprintf(env->endpoint, sizeof env->endpoint, strchr(addr, ':') ? "tcp://[%s]:%d" : "tcp://%s:%d", addr, p);
    } else {
        return hy_fail("environment: WORLD_SIZE=%d needs HY_DP_ENDPOINT, or MASTER_ADDR and MASTER_PORT (the rank-0 "
                       "rendezvous)",
                       env->world);
    }
    env->key_file = getenv("HY_DP_KEY_FILE");
    env->server_key_file = getenv("HY_DP_SERVER_KEY");
    env->authorized_keys = getenv("HY_DP_AUTHORIZED_KEYS");
    return 0;
}

// What a rank tells rank 0 in its hello.
typedef struct {
    uint64_t world, fingerprint, pid;
} hello_body;

static void refuse_all(hy_dp *dp, const int *joined, const char *why) {
    for (int r = 1; r < dp->world; r++)
        if (joined[r]) send_msg(dp, r, OP_REFUSE, why, strlen(why));
}

// Rank 0: waits for every other rank's hello, then welcomes them all with the NCCL id (or "").
static int join_as_root(hy_dp *dp, uint64_t fingerprint, int timeout_s, const char *nccl_id) {
    int *joined = hy_calloc((size_t)dp->world, sizeof *joined), n = 1, rc = 0;
    for (int waited_ms = 0; n < dp->world && !rc;) {
        zmq_msg_t msg;
        int from = 0;
        const int r = recv_msg(dp, OP_HELLO, &msg, &from, 1000);
        if (r == 1) {
            waited_ms += 1000;
            if (waited_ms >= timeout_s * 1000) {
                char missing[256] = "";
                for (int k = 1, len = 0; k < dp->world && len < 200; k++)
                    if (!joined[k]) len += snprintf(missing + len, sizeof missing - len, "%s%d", len ? ", " : "", k);
                rc = hy_fail("data-parallel rendezvous: %d of %d ranks joined within %d s (missing: %s)", n,
                             dp->world, timeout_s, missing);
            }
            continue;
        }
        if (r < 0) {
            rc = -1;
            break;
        }
        hello_body h = {0};
        if (payload_size(&msg) == sizeof h) memcpy(&h, payload(&msg), sizeof h);
        zmq_msg_close(&msg);
        char why[256] = "";
        if (h.world != (uint64_t)dp->world)
            snprintf(why, sizeof why, "rank %d was started with WORLD_SIZE=%llu, rank 0 with %d", from,
                     (unsigned long long)h.world, dp->world);
        else if (h.fingerprint != fingerprint)
            snprintf(why, sizeof why, "rank %d has another model or other data (fingerprint %016llx, rank 0's %016llx)",
                     from, (unsigned long long)h.fingerprint, (unsigned long long)fingerprint);
        else if (joined[from])
            snprintf(why, sizeof why, "two processes claim rank %d", from);
        if (*why) {
            joined[from] = 1;
            refuse_all(dp, joined, why);
            rc = hy_fail("data-parallel rendezvous: %s", why);
            break;
        }
        joined[from] = 1;
        n++;
    }
    for (int r = 1; r < dp->world && !rc; r++) rc = send_msg(dp, r, OP_WELCOME, nccl_id, strlen(nccl_id));
    free(joined);
    return rc;
}

// Other ranks: hello, then the welcome (with rank 0's NCCL id, "" when none) within timeout_s.
static int join_as_peer(hy_dp *dp, uint64_t fingerprint, int timeout_s, char *nccl_id, size_t id_size) {
    const hello_body h = {(uint64_t)dp->world, fingerprint, (uint64_t)getpid()};
    if (send_msg(dp, 0, OP_HELLO, &h, sizeof h)) return -1;
    zmq_msg_t msg;
    int from;
    const int r = recv_msg(dp, OP_WELCOME, &msg, &from, timeout_s * 1000);
    if (r == 1) return hy_fail("data-parallel rendezvous: rank 0 did not welcome rank %d within %d s", dp->rank, timeout_s);
    if (r < 0) return -1;
    const size_t n = payload_size(&msg);
    if (n >= id_size) {
        zmq_msg_close(&msg);
        return hy_fail("data-parallel rendezvous: rank 0's welcome is %zu bytes (at most %zu)", n, id_size - 1);
    }
    memcpy(nccl_id, payload(&msg), n);
    nccl_id[n] = 0;
    zmq_msg_close(&msg);
    return 0;
}

int hy_dp_join(hy_dp **out, const hy_dp_env *env, hy_backend *be, uint64_t fingerprint, int timeout_s) {
    *out = NULL;
    if (env->world < 2) return hy_fail("data-parallel: a job of %d rank(s) needs no rendezvous", env->world);
    hy_dp *dp = hy_calloc(1, sizeof *dp);
    dp->rank = env->rank;
    dp->world = env->world;
    dp->be = be;
    dp->ctx = proto_ctx_new();
    char rid[32];
    snprintf(rid, sizeof rid, "rank-%d", env->rank);
    proto_socket_opts o;
    proto_socket_opts_default(&o);
    o.hwm = 1000;  // every rank's pieces of one collective are in flight at once
    o.linger_ms = 0;
    if (env->rank == 0) {
        o.key_file = env->key_file;
        o.authorized_keys = env->authorized_keys;
    } else {
        o.key_file = env->key_file;
        o.server_key_file = env->server_key_file;
        o.routing_id = rid;
    }
    int rc = dp->ctx ? 0 : -1;
    if (!rc) dp->sock = proto_socket_new(dp->ctx, env->rank == 0 ? ZMQ_ROUTER : ZMQ_DEALER, &o);
    if (!rc && !dp->sock) rc = -1;
    if (!rc) {
        dp->zs = proto_socket_handle(dp->sock);
        rc = env->rank == 0 ? proto_socket_bind(dp->sock, env->endpoint) : proto_socket_connect(dp->sock, env->endpoint);
        if (rc) hy_fail_prefix("data-parallel rendezvous %s (rank %d)", env->endpoint, env->rank);
    }
    const hy_nccl_ops *ops = hy_nccl_ops_get();
    const int use_nccl = be->device == HY_DEVICE_CUDA && ops != NULL;
    char nccl_id[HY_NCCL_ID_HEX + 1] = "";
    if (!rc && env->rank == 0 && use_nccl) rc = ops->unique_id(nccl_id);
    if (!rc)
        rc = env->rank == 0 ? join_as_root(dp, fingerprint, timeout_s, nccl_id)
                            : join_as_peer(dp, fingerprint, timeout_s, nccl_id, sizeof nccl_id);
    if (!rc && *nccl_id) {
        if (!use_nccl) {
            rc = hy_fail("data-parallel: rank 0 uses NCCL but rank %d cannot (%s)", env->rank,
                         ops ? "its model is not on CUDA" : "this build has no NCCL");
        } else {
            rc = ops->init(&dp->nccl, nccl_id, env->rank, env->world);
            dp->nccl_ops = ops;
        }
    } else if (!rc && use_nccl && env->rank != 0) {
        rc = hy_fail("data-parallel: rank 0 does not use NCCL but rank %d would: run every rank on the same device "
                     "kind and build",
                     env->rank);
    }
    dp->seq = 1;
    if (rc) {
        hy_dp_leave(dp);
        return -1;
    }
    dp->host = hy_malloc(sizeof(float) * CHUNK_FLOATS);
    if (dp->rank == 0) dp->acc = hy_malloc(sizeof(float) * CHUNK_FLOATS);
    *out = dp;
    return 0;
}

void hy_dp_leave(hy_dp *dp) {
    if (!dp) return;
    if (dp->nccl) dp->nccl_ops->destroy(dp->nccl);
    if (dp->sock) proto_socket_destroy(dp->sock);
    if (dp->ctx) proto_ctx_destroy(dp->ctx);
    free(dp->host);
    free(dp->acc);
    free(dp);
}

int hy_dp_rank(const hy_dp *dp) { return dp ? dp->rank : 0; }
int hy_dp_world(const hy_dp *dp) { return dp ? dp->world : 1; }
const char *hy_dp_transport(const hy_dp *dp) { return dp && dp->nccl ? "nccl" : "rendezvous"; }

// ---- collectives through the rendezvous ---------------------------------------------------------

// One gather-to-rank-0-and-reply round over n bytes. Rank 0 combines with combine(ctx, from, data)
// in rank order (its own data first, as from = 0), then sends reply(ctx, to) of reply_n(to) bytes
// to each rank; the others send data and receive their reply into out (n_out bytes).
typedef struct {
    void (*combine)(void *ctx, int from, const void *data);
    const void *(*reply)(void *ctx, int to, size_t *n);
    void *ctx;
} round_fns;

static int round_trip(hy_dp *dp, uint32_t op, const void *data, size_t n, void *out, size_t n_out,
                      const round_fns *f) {
    int rc = 0;
    if (dp->rank == 0) {
        zmq_msg_t *msgs = hy_calloc((size_t)dp->world, sizeof *msgs);
        int *have = hy_calloc((size_t)dp->world, sizeof *have);
        for (int k = 1; k < dp->world && !rc; k++) {
            zmq_msg_t msg;
            int from;
            if ((rc = recv_exact(dp, op, n, &msg, &from))) break;
            if (have[from]) {
                zmq_msg_close(&msg);
                rc = hy_fail("data-parallel rendezvous: rank %d sent %s twice", from, op_name(op));
                break;
            }
            msgs[from] = msg;
            have[from] = 1;
        }
        if (!rc) {
            f->combine(f->ctx, 0, data);
            for (int r = 1; r < dp->world; r++) f->combine(f->ctx, r, payload(&msgs[r]));
            for (int r = 1; r < dp->world && !rc; r++) {
                size_t k;
                const void *rep = f->reply(f->ctx, r, &k);
                rc = send_msg(dp, r, op, rep, k);
            }
        }
        for (int r = 1; r < dp->world; r++)
            if (have[r]) zmq_msg_close(&msgs[r]);
        free(msgs);
        free(have);
    } else {
        zmq_msg_t msg;
        int from;
        rc = send_msg(dp, 0, op, data, n);
        if (!rc) rc = recv_exact(dp, op, n_out, &msg, &from);
        if (!rc) {
            if (n_out) memcpy(out, payload(&msg), n_out);
            zmq_msg_close(&msg);
        }
    }
    dp->seq++;
    return rc;
}

typedef struct {
    double *acc;  // rank 0's running sum (its own values first)
    int n;
} sum_f64_ctx;

static void sum_f64_combine(void *ctx, int from, const void *data) {
    sum_f64_ctx *c = ctx;
    if (from == 0) return;  // acc holds rank 0's values already
    for (int i = 0; i < c->n; i++) {  // a message's payload need not be aligned for doubles
        double v;
        memcpy(&v, (const char *)data + sizeof v * (size_t)i, sizeof v);
        c->acc[i] += v;
    }
}
static const void *sum_f64_reply(void *ctx, int to, size_t *n) {
    (void)to;
    sum_f64_ctx *c = ctx;
    *n = sizeof(double) * (size_t)c->n;
    return c->acc;
}

int hy_dp_sum_host(hy_dp *dp, double *v, int n) {
    sum_f64_ctx c = {v, n};
    const round_fns f = {sum_f64_combine, sum_f64_reply, &c};
    return round_trip(dp, OP_SUM, v, sizeof(double) * (size_t)n, v, sizeof(double) * (size_t)n, &f);
}

int hy_dp_barrier(hy_dp *dp) { return hy_dp_sum_host(dp, NULL, 0); }

static void no_combine(void *ctx, int from, const void *data) { (void)ctx, (void)from, (void)data; }
typedef struct {
    const void *bytes;
    size_t n;
} bcast_ctx;
static const void *bcast_reply(void *ctx, int to, size_t *n) {
    (void)to;
    bcast_ctx *c = ctx;
    *n = c->n;
    return c->bytes;
}

int hy_dp_broadcast_host(hy_dp *dp, void *bytes, size_t n) {
    bcast_ctx c = {bytes, n};
    const round_fns f = {no_combine, bcast_reply, &c};
    return round_trip(dp, OP_BCAST, NULL, 0, bytes, n, &f);
}

// Arena collectives, chunk by chunk. reduce_scatter: every rank sends the whole arena; rank 0 sums
// each chunk in rank order and returns to each rank only the part of the chunk inside its shard.
typedef struct {
    float *acc;
    size_t n, off, shard;  // this chunk: floats, arena offset; shard size
} chunk_ctx;

static void sum_chunk(void *ctx, int from, const void *data) {
    chunk_ctx *c = ctx;
    if (from == 0) {
        memcpy(c->acc, data, sizeof(float) * c->n);
        return;
    }
    for (size_t i = 0; i < c->n; i++) {  // a message's payload need not be aligned for floats
        float v;
        memcpy(&v, (const char *)data + sizeof v * i, sizeof v);
        c->acc[i] += v;
    }
}

// The part of chunk [off, off + n) that lies in rank r's shard.
static void shard_part(const chunk_ctx *c, int r, size_t *lo, size_t *hi) {
    const size_t a = (size_t)r * c->shard, b = a + c->shard;
    *lo = a > c->off ? a - c->off : 0;
    *hi = b < c->off + c->n ? b - c->off : c->n;
    if (*hi < *lo) *hi = *lo;
}

static const void *scatter_reply(void *ctx, int to, size_t *n) {
    chunk_ctx *c = ctx;
    size_t lo, hi;
    shard_part(c, to, &lo, &hi);
    *n = sizeof(float) * (hi - lo);
    return c->acc + lo;
}

int hy_dp_reduce_scatter(hy_dp *dp, float *buf, size_t shard) {
    hy_backend *be = dp->be;
    const size_t total = shard * (size_t)dp->world;
    if (dp->nccl) return dp->nccl_ops->reduce_scatter(dp->nccl, buf, shard, dp->rank);
    for (size_t off = 0; off < total; off += CHUNK_FLOATS) {
        const size_t n = total - off < CHUNK_FLOATS ? total - off : CHUNK_FLOATS;
        be->f32_to_host(be, dp->host, buf + off, n);
        chunk_ctx c = {dp->acc, n, off, shard};
        size_t lo, hi;
        shard_part(&c, dp->rank, &lo, &hi);
        const round_fns f = {sum_chunk, scatter_reply, &c};
        // rank 0's reply to itself: the summed part of its own shard
        float *mine = dp->rank == 0 ? dp->acc : dp->host;
        if (round_trip(dp, OP_SUM, dp->host, sizeof(float) * n, dp->host + lo, sizeof(float) * (hi - lo), &f))
            return hy_fail_prefix("data-parallel reduce-scatter");
        if (hi > lo) be->f32_from_host(be, buf + off + lo, mine + lo, hi - lo);
    }
    return 0;
}

// all_gather: each rank sends the part of each chunk it owns; rank 0 assembles the chunk and sends
// it whole to everyone.
static void gather_chunk(void *ctx, int from, const void *data) {
    chunk_ctx *c = ctx;
    size_t lo, hi;
    shard_part(c, from, &lo, &hi);
    if (hi > lo) memcpy(c->acc + lo, (const char *)data + sizeof(float) * lo, sizeof(float) * (hi - lo));
}
static const void *gather_reply(void *ctx, int to, size_t *n) {
    (void)to;
    chunk_ctx *c = ctx;
    *n = sizeof(float) * c->n;
    return c->acc;
}

int hy_dp_all_gather(hy_dp *dp, float *buf, size_t shard) {
    hy_backend *be = dp->be;
    const size_t total = shard * (size_t)dp->world;
    if (dp->nccl) return dp->nccl_ops->all_gather(dp->nccl, buf, shard, dp->rank);
    for (size_t off = 0; off < total; off += CHUNK_FLOATS) {
        const size_t n = total - off < CHUNK_FLOATS ? total - off : CHUNK_FLOATS;
        chunk_ctx c = {dp->acc, n, off, shard};
        size_t lo, hi;
        shard_part(&c, dp->rank, &lo, &hi);
        // each rank's part sits at its place in a chunk-sized frame (the rest is not read): one frame
        // size for every rank keeps the round's length checks simple on this slow path
        if (hi > lo) be->f32_to_host(be, dp->host + lo, buf + off + lo, hi - lo);
        const round_fns f = {gather_chunk, gather_reply, &c};
        if (round_trip(dp, OP_GATHER, dp->host, sizeof(float) * n, dp->host, sizeof(float) * n, &f))
            return hy_fail_prefix("data-parallel all-gather");
        be->f32_from_host(be, buf + off, dp->rank == 0 ? dp->acc : dp->host, n);
    }
    return 0;
}
