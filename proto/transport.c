// ZeroMQ transport (see transport.h; socket patterns and security in docs/proto.md).
//
// Waiting: sends and receives are non-blocking ZeroMQ calls inside a loop that zmq_polls the
// socket together with its monitor until a deadline, so a failed handshake is logged while the
// owner is waiting rather than whenever it next returns, and a timeout never leaves half a
// multi-part message queued (ZeroMQ checks the high-water mark only at a message's first part).
// A ROUTER socket always polls as writable, so for it the loop retries on a short tick instead.
//
// The ZAP handler is one thread per context owning a REP socket bound to inproc://zeromq.zap.01
// (ZeroMQ consults it for every CURVE handshake in the context) and a PAIR on which
// proto_ctx_destroy tells it to stop. Each CURVE server socket gets its own ZAP domain
// ("hy-<n>") and registers its authorized keys under it; a request for an unknown domain is
// refused, so the handler fails closed.
#include "proto/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "common/hy_error.h"
#include "proto/keys.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ENDPOINT_MAX 512
#define ROUTER_RETRY_MS 2

static atomic_uint g_next_id;

// ---------------------------------------------------------------- log

static pthread_mutex_t g_log_lock = PTHREAD_MUTEX_INITIALIZER;
static void (*g_log_fn)(void *ud, const char *line);
static void *g_log_ud;

void proto_log_set(void (*fn)(void *ud, const char *line), void *ud) {
    pthread_mutex_lock(&g_log_lock);
    g_log_fn = fn;
    g_log_ud = ud;
    pthread_mutex_unlock(&g_log_lock);
}

static void plog(const char *fmt, ...) HY_PRINTF(1, 2);
static void plog(const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&g_log_lock);
    if (g_log_fn) g_log_fn(g_log_ud, line);
    else fprintf(stderr, "%s\n", line);
    pthread_mutex_unlock(&g_log_lock);
}

// A peer that is refused retries every reconnect interval (100 ms by default), so refusal lines
// are limited to one per LOG_INTERVAL_MS per source, with a count of those held back.
#define LOG_INTERVAL_MS 10000

typedef struct {
    int64_t last_ms;  // 0 = never logged
    unsigned held;
} log_limit;

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// 1 when a line may go out now (then *held is how many were held back before it).
static int log_limit_pass(log_limit *l, unsigned *held) {
    const int64_t t = now_ms();
    if (l->last_ms && t - l->last_ms < LOG_INTERVAL_MS) {
        l->held++;
        return 0;
    }
    *held = l->held;
    l->held = 0;
    l->last_ms = t;
    return 1;
}

// ---------------------------------------------------------------- context and ZAP handler

typedef struct {
    char name[32];       // ZAP domain
    uint8_t (*keys)[32]; // (n) authorized client public keys
    int n;
    char *source;        // authorized-keys file, for the log
    log_limit refusals;
} auth_domain;

struct proto_ctx {
    void *zctx;
    // All three are made here and handed to the thread at pthread_create (ZeroMQ allows moving a
    // socket between threads across a full memory barrier), so the thread has no failure path.
    void *zap;         // REP; the thread's
    void *ctl;         // PAIR, main side: proto_ctx_destroy sends "stop"
    void *ctl_thread;  // PAIR, the thread's side
    pthread_t thread;
    pthread_mutex_t lock;  // guards domains
    auth_domain *domains;
    int n_domains, cap_domains;
    atomic_uint_least64_t admitted, refused;
};

// Receives one frame of a multi-part message into buf (NUL-terminated, truncated to cap - 1).
// Returns its length, or -1. *more says whether parts follow.
static int recv_part(void *sock, char *buf, size_t cap, int *more) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    int rc;
    while ((rc = zmq_msg_recv(&m, sock, 0)) < 0 && zmq_errno() == EINTR) {
    }
    if (rc < 0) {
        zmq_msg_close(&m);
        return -1;
    }
    size_t n = zmq_msg_size(&m);
    if (n > cap - 1) n = cap - 1;
    memcpy(buf, zmq_msg_data(&m), n);
    buf[n] = '\0';
    *more = zmq_msg_more(&m);
    const int len = (int)zmq_msg_size(&m);
    zmq_msg_close(&m);
    return len;
}

// 1 when key is authorized in domain. Otherwise logs the refusal (rate-limited per domain).
static int zap_admits(proto_ctx *c, const char *domain, const uint8_t key[32], const char *address) {
    int ok = 0, found = 0, log = 1;
    unsigned held = 0;
    char source[300] = "no such ZAP domain";
    pthread_mutex_lock(&c->lock);
    for (int d = 0; d < c->n_domains && !found; d++) {
        if (strcmp(c->domains[d].name, domain) != 0) continue;
        found = 1;
        snprintf(source, sizeof source, "not in %s", c->domains[d].source);
        for (int i = 0; i < c->domains[d].n && !ok; i++) ok = memcmp(c->domains[d].keys[i], key, 32) == 0;
        if (!ok) log = log_limit_pass(&c->domains[d].refusals, &held);
    }
    pthread_mutex_unlock(&c->lock);
    if (!ok && log) {
        char z85[PROTO_KEY_Z85_LEN + 1];
        zmq_z85_encode(z85, key, 32);
        char note[64] = "";
        if (held) snprintf(note, sizeof note, " [%u more refusals in the last %d s]", held, LOG_INTERVAL_MS / 1000);
        plog("proto auth: refused CURVE client %s from %s (%s)%s", z85, address, source, note);
    }
    return ok;
}

// Answers one ZAP request (RFC 27): frames version, request id, domain, address, routing id,
// mechanism, credentials.
static void zap_answer(proto_ctx *c) {
    char parts[8][256];
    int lens[8], n = 0, more = 1;
    while (more) {
        char scratch[256];
        char *dst = n < 8 ? parts[n] : scratch;
        const int len = recv_part(c->zap, dst, sizeof scratch, &more);
        if (len < 0) return;
        if (n < 8) lens[n] = len;
        n++;
    }
    const char *status = "400", *text = "refused";
    char user[64] = "";
    if (n < 6 || strcmp(parts[0], "1.0") != 0) {
        plog("proto auth: malformed ZAP request (%d frames)", n);
    } else if (strcmp(parts[5], "NULL") == 0 && n == 6) {
        // plaintext sockets exist only on local endpoints (proto_socket_bind enforces it)
        status = "200", text = "OK";
    } else if (strcmp(parts[5], "CURVE") == 0 && n == 7 && lens[6] == 32) {
        const uint8_t *key = (const uint8_t *)parts[6];
        if (zap_admits(c, parts[2], key, parts[3])) {
            status = "200", text = "OK";
            zmq_z85_encode(user, key, 32);
            atomic_fetch_add(&c->admitted, 1);
        } else {
            atomic_fetch_add(&c->refused, 1);
        }
    } else {
        plog("proto auth: refused a %s client from %s (only CURVE is accepted)", parts[5], parts[3]);
        atomic_fetch_add(&c->refused, 1);
    }
    // REP must answer every request, even a malformed one, or it can receive no other
    const char *reply[6] = {"1.0", n >= 2 ? parts[1] : "", status, text, user, ""};
    size_t len[6];
    for (int i = 0; i < 6; i++) len[i] = strlen(reply[i]);
    if (n >= 2) len[1] = (size_t)(lens[1] < 255 ? lens[1] : 255);  // request ids are opaque bytes
    for (int i = 0; i < 6; i++) zmq_send(c->zap, reply[i], len[i], i < 5 ? ZMQ_SNDMORE : 0);
}

static void *zap_thread(void *arg) {
    proto_ctx *c = arg;
    for (;;) {
        zmq_pollitem_t items[2] = {{c->zap, 0, ZMQ_POLLIN, 0}, {c->ctl_thread, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, -1) < 0) {
            if (zmq_errno() == EINTR) continue;
            break;
        }
        if (items[1].revents & ZMQ_POLLIN) break;
        if (items[0].revents & ZMQ_POLLIN) zap_answer(c);
    }
    zmq_close(c->ctl_thread);
    zmq_close(c->zap);
    return NULL;
}

proto_ctx *proto_ctx_new(void) {
    proto_ctx *c = hy_calloc(1, sizeof *c);
    c->zctx = zmq_ctx_new();
    if (!c->zctx) {
        free(c);
        hy_fail("zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    char ctl_endpoint[64];
    snprintf(ctl_endpoint, sizeof ctl_endpoint, "inproc://proto-zap-ctl-%u", atomic_fetch_add(&g_next_id, 1));
    c->zap = zmq_socket(c->zctx, ZMQ_REP);
    c->ctl = zmq_socket(c->zctx, ZMQ_PAIR);
    c->ctl_thread = zmq_socket(c->zctx, ZMQ_PAIR);
    const int linger = 0;
    void *socks[3] = {c->zap, c->ctl, c->ctl_thread};
    for (int i = 0; i < 3; i++)
        if (socks[i]) zmq_setsockopt(socks[i], ZMQ_LINGER, &linger, sizeof linger);
    if (!c->zap || !c->ctl || !c->ctl_thread || zmq_bind(c->zap, ZAP_ENDPOINT) != 0 ||
        zmq_bind(c->ctl, ctl_endpoint) != 0 || zmq_connect(c->ctl_thread, ctl_endpoint) != 0 ||
        pthread_create(&c->thread, NULL, zap_thread, c) != 0) {
        hy_fail("proto: cannot start the ZAP handler: %s", zmq_strerror(zmq_errno()));
        for (int i = 0; i < 3; i++)
            if (socks[i]) zmq_close(socks[i]);
        zmq_ctx_term(c->zctx);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return NULL;
    }
    return c;
}

void proto_ctx_destroy(proto_ctx *c) {
    if (!c) return;
    zmq_send(c->ctl, "", 0, 0);
    pthread_join(c->thread, NULL);
    zmq_close(c->ctl);
    zmq_ctx_term(c->zctx);
    for (int d = 0; d < c->n_domains; d++) {
        free(c->domains[d].keys);
        free(c->domains[d].source);
    }
    free(c->domains);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void proto_ctx_auth_counts(proto_ctx *c, uint64_t *admitted, uint64_t *refused) {
    *admitted = atomic_load(&c->admitted);
    *refused = atomic_load(&c->refused);
}

static void domain_register(proto_ctx *c, const char *name, const proto_key_list *keys, const char *source) {
    auth_domain d = {.n = keys->n, .source = hy_strdup(source)};
    snprintf(d.name, sizeof d.name, "%s", name);
    d.keys = hy_malloc((size_t)keys->n * sizeof *d.keys);
    for (int i = 0; i < keys->n; i++) zmq_z85_decode(d.keys[i], keys->keys[i]);  // validated when read
    pthread_mutex_lock(&c->lock);
    if (c->n_domains == c->cap_domains) {
        c->cap_domains = c->cap_domains ? 2 * c->cap_domains : 4;
        c->domains = hy_realloc(c->domains, (size_t)c->cap_domains * sizeof *c->domains);
    }
    c->domains[c->n_domains++] = d;
    pthread_mutex_unlock(&c->lock);
}

static void domain_unregister(proto_ctx *c, const char *name) {
    pthread_mutex_lock(&c->lock);
    for (int d = 0; d < c->n_domains; d++) {
        if (strcmp(c->domains[d].name, name) != 0) continue;
        free(c->domains[d].keys);
        free(c->domains[d].source);
        c->domains[d] = c->domains[--c->n_domains];
        break;
    }
    pthread_mutex_unlock(&c->lock);
}

// ---------------------------------------------------------------- endpoints

// 1 for a loopback host: 127.0.0.0/8, ::1, ::ffff:127.x.y.z, "localhost".
static int host_is_loopback(const char *host) {
    if (strcmp(host, "localhost") == 0) return 1;
    struct in_addr a4;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    struct in6_addr a6;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return 0;
}

int proto_endpoint_is_local(const char *ep) {
    if (!ep) return hy_fail("endpoint missing");
    if (strlen(ep) >= ENDPOINT_MAX) return hy_fail("endpoint \"%.64s...\" is too long", ep);
    if (strncmp(ep, "inproc://", 9) == 0 || strncmp(ep, "ipc://", 6) == 0) {
        if (ep[strncmp(ep, "ipc://", 6) == 0 ? 6 : 9] == '\0') return hy_fail("endpoint \"%s\" has no name", ep);
        return 1;
    }
    if (strncmp(ep, "tcp://", 6) != 0)
        return hy_fail("endpoint \"%s\": unsupported transport (use tcp://, ipc:// or inproc://)", ep);
    // "tcp://source;destination" (connect with a source address): the destination decides
    const char *addr = strrchr(ep, ';');
    addr = addr ? addr + 1 : ep + 6;
    char host[ENDPOINT_MAX];
    const char *port;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':') return hy_fail("endpoint \"%s\": malformed IPv6 address", ep);
        snprintf(host, sizeof host, "%.*s", (int)(close - addr - 1), addr + 1);
        port = close + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (!colon) return hy_fail("endpoint \"%s\": missing :PORT", ep);
        snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
        port = colon + 1;
    }
    if (host[0] == '\0') return hy_fail("endpoint \"%s\": missing host", ep);
    if (strcmp(port, "*") != 0) {
        char *end;
        errno = 0;
        const long p = strtol(port, &end, 10);
        if (*port == '\0' || *end != '\0' || errno || p < 1 || p > 65535)
            return hy_fail("endpoint \"%s\": port must be 1..65535 or *", ep);
    }
    return host_is_loopback(host);
}

// ---------------------------------------------------------------- sockets

enum { ROLE_NONE, ROLE_BOUND, ROLE_CONNECTED };

struct proto_socket {
    proto_ctx *ctx;
    void *zs;
    void *mon;  // PAIR receiving zs's handshake-failure events
    int type, role;
    int curve;  // key_file given
    proto_keypair kp;
    char server_key[PROTO_KEY_Z85_LEN + 1];  // connecting side
    proto_key_list authorized;                 // binding side
    char *authorized_path;
    char domain[32];  // registered ZAP domain, "" when none
    char endpoint[ENDPOINT_MAX];
    msgpack_sbuffer buf;  // reused encode buffer
    log_limit handshake_log[4];  // per kind of failure: mechanism, crypto, other protocol, no detail
};

void proto_socket_opts_default(proto_socket_opts *o) {
    memset(o, 0, sizeof *o);
    o->hwm = PROTO_DEFAULT_HWM;
    o->linger_ms = PROTO_DEFAULT_LINGER_MS;
}

static const char *zerr(void) { return zmq_strerror(zmq_errno()); }

static const char *protocol_error_text(int v) {
    switch (v) {
    case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return "security mechanism mismatch (one side uses CURVE, the other not)";
    case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC: return "cryptographic error (wrong server key?)";
    case ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE: return "key exchange failed";
    default: return "protocol error";
    }
}

// Logs every handshake failure queued on the monitor; never blocks.
static void drain_monitor(proto_socket *s) {
    for (;;) {
        zmq_msg_t ev;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, s->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return;
        }
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&ev) >= 6) {
            memcpy(&event, zmq_msg_data(&ev), 2);
            memcpy(&value, (const char *)zmq_msg_data(&ev) + 2, 4);
        }
        const int more = zmq_msg_more(&ev);
        zmq_msg_close(&ev);
        char where[ENDPOINT_MAX] = "";
        if (more) {
            int m2;
            recv_part(s->mon, where, sizeof where, &m2);
        }
        // ZAP refusals (HANDSHAKE_FAILED_AUTH) are logged by the ZAP handler, with the key
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) continue;
        const int kind = event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL          ? 3
                         : value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH ? 0
                         : value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC      ? 1
                                                                               : 2;
        unsigned held = 0;
        if (!log_limit_pass(&s->handshake_log[kind], &held)) continue;
        const char *why = event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ? protocol_error_text((int)value)
                                                                       : zmq_strerror((int)value);
        char note[64] = "";
        if (held) snprintf(note, sizeof note, " [%u more in the last %d s]", held, LOG_INTERVAL_MS / 1000);
        plog("proto: handshake with a peer on %s failed: %s%s", where, why, note);
    }
}

proto_socket *proto_socket_new(proto_ctx *c, int zmq_type, const proto_socket_opts *o) {
    if (zmq_type != ZMQ_PUSH && zmq_type != ZMQ_PULL && zmq_type != ZMQ_DEALER && zmq_type != ZMQ_ROUTER &&
        zmq_type != ZMQ_PAIR) {
        hy_fail("proto socket: ZeroMQ socket type %d is not one we use (PUSH, PULL, DEALER, ROUTER, PAIR)", zmq_type);
        return NULL;
    }
    if (o->hwm < 1) {
        hy_fail("proto socket: hwm %d must be ≥ 1 (ZeroMQ reads 0 as unbounded)", o->hwm);
        return NULL;
    }
    if ((o->server_key_file || o->authorized_keys) && !o->key_file) {
        hy_fail("proto socket: CURVE needs key_file (this side's key pair) as well");
        return NULL;
    }
    if (o->routing_id) {
        const size_t n = strlen(o->routing_id);
        int printable = n >= 1 && n <= PROTO_PEER_ID_MAX;
        for (size_t i = 0; i < n && printable; i++) printable = o->routing_id[i] >= 0x20 && o->routing_id[i] <= 0x7e;
        if (!printable) {
            hy_fail("proto socket: routing_id must be 1..%d bytes of printable ASCII", PROTO_PEER_ID_MAX);
            return NULL;
        }
    }
    proto_socket *s = hy_calloc(1, sizeof *s);
    s->ctx = c;
    s->type = zmq_type;
    msgpack_sbuffer_init(&s->buf);
    if (o->key_file) {
        s->curve = 1;
        if (proto_keypair_read(o->key_file, &s->kp)) goto fail;
        if (o->server_key_file && proto_public_key_read(o->server_key_file, s->server_key)) goto fail;
        if (o->authorized_keys) {
            if (proto_authorized_keys_read(o->authorized_keys, &s->authorized)) goto fail;
            s->authorized_path = hy_strdup(o->authorized_keys);
        }
    }
    s->zs = zmq_socket(c->zctx, zmq_type);
    if (!s->zs) {
        hy_fail("zmq_socket: %s", zerr());
        goto fail;
    }
    const int64_t max_size = PROTO_MAX_FRAME_BYTES;
    const int one = 1;
    int rc = zmq_setsockopt(s->zs, ZMQ_SNDHWM, &o->hwm, sizeof o->hwm);
    rc |= zmq_setsockopt(s->zs, ZMQ_RCVHWM, &o->hwm, sizeof o->hwm);
    rc |= zmq_setsockopt(s->zs, ZMQ_LINGER, &o->linger_ms, sizeof o->linger_ms);
    rc |= zmq_setsockopt(s->zs, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size);
    if (zmq_type == ZMQ_ROUTER) rc |= zmq_setsockopt(s->zs, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    if (o->routing_id) rc |= zmq_setsockopt(s->zs, ZMQ_ROUTING_ID, o->routing_id, strlen(o->routing_id));
    if (rc) {
        hy_fail("zmq_setsockopt: %s", zerr());
        goto fail;
    }
    char mon_ep[64];
    snprintf(mon_ep, sizeof mon_ep, "inproc://proto-monitor-%u", atomic_fetch_add(&g_next_id, 1));
    const int events = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                       ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    const int zero = 0;
    if (zmq_socket_monitor(s->zs, mon_ep, events) != 0 || !(s->mon = zmq_socket(c->zctx, ZMQ_PAIR)) ||
        zmq_setsockopt(s->mon, ZMQ_LINGER, &zero, sizeof zero) != 0 || zmq_connect(s->mon, mon_ep) != 0) {
        hy_fail("proto socket: cannot monitor the socket: %s", zerr());
        goto fail;
    }
    return s;
fail:
    proto_socket_destroy(s);
    return NULL;
}

void proto_socket_destroy(proto_socket *s) {
    if (!s) return;
    if (s->zs) {
        if (s->mon) zmq_socket_monitor(s->zs, NULL, 0);
        zmq_close(s->zs);
    }
    if (s->mon) zmq_close(s->mon);
    if (s->domain[0]) domain_unregister(s->ctx, s->domain);
    proto_key_list_free(&s->authorized);
    free(s->authorized_path);
    msgpack_sbuffer_destroy(&s->buf);
    memset(&s->kp, 0, sizeof s->kp);
    free(s);
}

const char *proto_socket_endpoint(const proto_socket *s) { return s->endpoint; }
void *proto_socket_handle(proto_socket *s) { return s->zs; }

// The endpoint check and the options every bind / connect needs before it happens.
static int prepare(proto_socket *s, const char *ep, int role, const char *verb) {
    if (s->role != ROLE_NONE && s->role != role)
        return hy_fail("proto %s %s: this socket already %s; a socket either binds or connects", verb, ep,
                       s->role == ROLE_BOUND ? "binds" : "connects");
    const int local = proto_endpoint_is_local(ep);
    if (local < 0) return hy_fail_prefix("proto %s", verb);
    if (!local && !s->curve)
        return hy_fail("proto %s %s: a non-loopback address needs CURVE (key_file and %s); refusing to %s in "
                       "plaintext", verb, ep, role == ROLE_BOUND ? "authorized_keys" : "server_key_file", verb);
    const int ipv6 = strchr(ep, '[') != NULL;
    if (ipv6 && zmq_setsockopt(s->zs, ZMQ_IPV6, &ipv6, sizeof ipv6) != 0)
        return hy_fail("proto %s %s: ZMQ_IPV6: %s", verb, ep, zerr());
    if (!s->curve || s->role != ROLE_NONE) return 0;  // CURVE options are set once, before the first use
    if (role == ROLE_BOUND) {
        if (!s->authorized.n)
            return hy_fail("proto bind %s: a CURVE server needs authorized_keys (the clients it admits)", ep);
        const int one = 1;
        snprintf(s->domain, sizeof s->domain, "hy-%u", atomic_fetch_add(&g_next_id, 1));
        if (zmq_setsockopt(s->zs, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
            zmq_setsockopt(s->zs, ZMQ_CURVE_SECRETKEY, s->kp.secret_key, PROTO_KEY_Z85_LEN + 1) != 0 ||
            zmq_setsockopt(s->zs, ZMQ_ZAP_DOMAIN, s->domain, strlen(s->domain)) != 0) {
            s->domain[0] = '\0';
            return hy_fail("proto bind %s: CURVE server options: %s", ep, zerr());
        }
        domain_register(s->ctx, s->domain, &s->authorized, s->authorized_path);
    } else {
        if (!s->server_key[0]) return hy_fail("proto connect %s: a CURVE client needs server_key_file", ep);
        if (zmq_setsockopt(s->zs, ZMQ_CURVE_SERVERKEY, s->server_key, PROTO_KEY_Z85_LEN + 1) != 0 ||
            zmq_setsockopt(s->zs, ZMQ_CURVE_PUBLICKEY, s->kp.public_key, PROTO_KEY_Z85_LEN + 1) != 0 ||
            zmq_setsockopt(s->zs, ZMQ_CURVE_SECRETKEY, s->kp.secret_key, PROTO_KEY_Z85_LEN + 1) != 0)
            return hy_fail("proto connect %s: CURVE client options: %s", ep, zerr());
    }
    return 0;
}

int proto_socket_bind(proto_socket *s, const char *endpoint) {
    if (prepare(s, endpoint, ROLE_BOUND, "bind")) return -1;
    if (zmq_bind(s->zs, endpoint) != 0) return hy_fail("proto bind %s: %s", endpoint, zerr());
    s->role = ROLE_BOUND;
    size_t n = sizeof s->endpoint;
    if (zmq_getsockopt(s->zs, ZMQ_LAST_ENDPOINT, s->endpoint, &n) != 0)
        snprintf(s->endpoint, sizeof s->endpoint, "%s", endpoint);
    return 0;
}

int proto_socket_connect(proto_socket *s, const char *endpoint) {
    if (prepare(s, endpoint, ROLE_CONNECTED, "connect")) return -1;
    if (zmq_connect(s->zs, endpoint) != 0) return hy_fail("proto connect %s: %s", endpoint, zerr());
    s->role = ROLE_CONNECTED;
    snprintf(s->endpoint, sizeof s->endpoint, "%s", endpoint);
    return 0;
}

// ---------------------------------------------------------------- waiting

// Milliseconds left until deadline (-1: none), for zmq_poll.
static long remaining(int64_t deadline) {
    if (deadline < 0) return -1;
    const int64_t left = deadline - now_ms();
    return left > 0 ? (long)left : 0;
}

// Waits for `events` on s (and logs monitor events meanwhile) up to `ms` (-1 forever). 0 when the
// wait ended (ready or time is up: the caller retries and checks the deadline), -1 on error.
static int wait_on(proto_socket *s, short events, long ms) {
    zmq_pollitem_t items[2] = {{s->zs, 0, events, 0}, {s->mon, 0, ZMQ_POLLIN, 0}};
    if (zmq_poll(items, 2, ms) < 0 && zmq_errno() != EINTR) return hy_fail("zmq_poll: %s", zerr());
    if (items[1].revents & ZMQ_POLLIN) drain_monitor(s);
    return 0;
}

int proto_socket_send_raw(proto_socket *s, const char *peer, const void *data, size_t size, int timeout_ms) {
    const int router = s->type == ZMQ_ROUTER;
    if (router && (!peer || !peer[0] || strlen(peer) > PROTO_PEER_ID_MAX))
        return hy_fail("proto send on %s: a ROUTER socket needs a peer id of 1..%d bytes", s->endpoint,
                       PROTO_PEER_ID_MAX);
    if (!router && peer) return hy_fail("proto send on %s: only ROUTER sockets address a peer", s->endpoint);
    if (size > PROTO_MAX_FRAME_BYTES)
        return hy_fail("proto send on %s: %zu bytes exceed the frame limit of %u", s->endpoint, size,
                       PROTO_MAX_FRAME_BYTES);
    const int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        drain_monitor(s);
        int rc = router ? zmq_send(s->zs, peer, strlen(peer), ZMQ_SNDMORE | ZMQ_DONTWAIT) : 0;
        // after a queued first part ZeroMQ accepts the rest of the message without blocking
        if (rc >= 0) rc = zmq_send(s->zs, data, size, ZMQ_DONTWAIT);
        if (rc >= 0) return 0;
        const int err = zmq_errno();
        if (err == EHOSTUNREACH) return hy_fail("proto send on %s: no connected peer \"%s\"", s->endpoint, peer);
        if (err != EAGAIN && err != EINTR) return hy_fail("proto send on %s: %s", s->endpoint, zmq_strerror(err));
        const long left = remaining(deadline);
        if (left == 0) {
            hy_fail("proto send on %s: timed out after %d ms (the peer is not reading: high-water mark reached)",
                    s->endpoint, timeout_ms);
            return 1;
        }
        const long step = router ? (left < 0 || left > ROUTER_RETRY_MS ? ROUTER_RETRY_MS : left) : left;
        if (router) {
            zmq_pollitem_t item = {s->mon, 0, ZMQ_POLLIN, 0};
            if (zmq_poll(&item, 1, step) > 0) drain_monitor(s);
        } else if (wait_on(s, ZMQ_POLLOUT, step)) {
            return -1;
        }
    }
}

int proto_socket_send(proto_socket *s, const char *peer, const proto_msg *m, int timeout_ms) {
    if (proto_msg_encode(m, &s->buf)) return hy_fail_prefix("proto send on %s", s->endpoint);
    return proto_socket_send_raw(s, peer, s->buf.data, s->buf.size, timeout_ms);
}

// Discards the remaining parts of a multi-part message; returns how many there were.
static int skip_parts(void *zs) {
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, zs, 0) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        zmq_msg_close(&m);
        n++;
    }
    return n;
}

int proto_socket_recv(proto_socket *s, proto_msg *m, char *peer, int timeout_ms) {
    memset(m, 0, sizeof *m);
    if (peer) peer[0] = '\0';
    const int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    zmq_msg_t part;
    zmq_msg_init(&part);
    for (;;) {
        drain_monitor(s);
        if (zmq_msg_recv(&part, s->zs, ZMQ_DONTWAIT) >= 0) break;
        const int err = zmq_errno();
        if (err != EAGAIN && err != EINTR) {
            zmq_msg_close(&part);
            return hy_fail("proto recv on %s: %s", s->endpoint, zmq_strerror(err));
        }
        const long left = remaining(deadline);
        if (left == 0) {
            zmq_msg_close(&part);
            return 1;
        }
        if (wait_on(s, ZMQ_POLLIN, left)) {
            zmq_msg_close(&part);
            return -1;
        }
    }
    char who[PROTO_PEER_ID_MAX + 64] = "a peer";
    int anonymous = 0;
    if (s->type == ZMQ_ROUTER) {
        // first part: the sender's routing id. Replies address peers by it as a C string, so it
        // must be printable text; ZeroMQ's automatic ids (5 binary bytes) are not.
        const size_t n = zmq_msg_size(&part);
        const unsigned char *id = zmq_msg_data(&part);
        anonymous = n == 0 || n > PROTO_PEER_ID_MAX;
        for (size_t i = 0; i < n && !anonymous; i++) anonymous = id[i] < 0x20 || id[i] > 0x7e;
        if (anonymous) {
            snprintf(who, sizeof who, "a peer without a routing id");
        } else {
            if (peer) {
                memcpy(peer, id, n);
                peer[n] = '\0';
            }
            snprintf(who, sizeof who, "peer \"%.*s\"", (int)n, (const char *)id);
        }
        const int more = zmq_msg_more(&part);
        zmq_msg_close(&part);
        zmq_msg_init(&part);
        if (!more || zmq_msg_recv(&part, s->zs, 0) < 0) {
            zmq_msg_close(&part);
            return hy_fail("proto recv on %s from %s: an empty message (no frame)", s->endpoint, who);
        }
    }
    const char *addr = zmq_msg_gets(&part, "Peer-Address");
    if (addr) snprintf(who + strlen(who), sizeof who - strlen(who), " at %s", addr);
    int rc;
    if (anonymous) {
        if (zmq_msg_more(&part)) skip_parts(s->zs);
        if (peer) peer[0] = '\0';
        rc = hy_fail("proto recv on %s: dropped a message from %s (peers of a ROUTER must set routing_id to "
                     "printable text)", s->endpoint, who);
    } else if (zmq_msg_more(&part)) {
        const int extra = skip_parts(s->zs);
        rc = hy_fail("proto recv on %s from %s: dropped a message of %d parts (a frame is one part)", s->endpoint,
                     who, extra + 1 + (s->type == ZMQ_ROUTER));
    } else {
        rc = proto_msg_decode(zmq_msg_data(&part), zmq_msg_size(&part), m);
        if (rc) hy_fail_prefix("proto recv on %s from %s: dropped", s->endpoint, who);
    }
    zmq_msg_close(&part);
    return rc;
}

int proto_poll(proto_socket *const *s, int n, int timeout_ms, int *readable) {
    if (n < 1 || n > 64) return hy_fail("proto poll: %d sockets (1..64)", n);
    zmq_pollitem_t items[128];
    const int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        for (int i = 0; i < n; i++) {
            items[i] = (zmq_pollitem_t){s[i]->zs, 0, ZMQ_POLLIN, 0};
            items[n + i] = (zmq_pollitem_t){s[i]->mon, 0, ZMQ_POLLIN, 0};
        }
        if (zmq_poll(items, 2 * n, remaining(deadline)) < 0 && zmq_errno() != EINTR)
            return hy_fail("zmq_poll: %s", zerr());
        int ready = 0;
        for (int i = 0; i < n; i++) {
            if (items[n + i].revents & ZMQ_POLLIN) drain_monitor(s[i]);
            readable[i] = (items[i].revents & ZMQ_POLLIN) != 0;
            ready += readable[i];
        }
        if (ready || remaining(deadline) == 0) return ready;
    }
}
