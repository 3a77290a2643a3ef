// ZeroMQ transport: sockets that carry one protocol frame per message, with backpressure, timeouts,
// a loopback-by-default rule and CURVE authentication (docs/proto.md, "Sockets" and "Security").
//
// Security rule, enforced at bind and connect: tcp:// to a loopback address (127.0.0.0/8, ::1,
// localhost), ipc:// and inproc:// may run in plaintext; any other tcp:// address needs CURVE
// keys, else bind / connect fails. With keys (allowed on loopback too) the binding side is the
// CURVE server: it proves its identity with its key pair and admits only clients whose public
// keys are in its authorized-keys file. The check is done by a ZAP handler (ZeroMQ RFC 27), a
// thread per proto_ctx answering on inproc://zeromq.zap.01; each CURVE server socket registers its
// own authorized list under its own ZAP domain. A refused client is logged with its key and
// address; a handshake that fails before ZAP (a plaintext peer on a CURVE socket, a wrong server
// key) is logged from the socket's monitor.
//
// Backpressure: each socket has a high-water mark (messages queued per peer, send and receive).
// When the peer stops reading, the queues fill and proto_socket_send waits up to its timeout and
// then returns 1 without queueing the message: the sender keeps it and decides (retry, slow down).
// A bad frame never stops a receiver: proto_socket_recv drops it, returns -1 with the reason and
// the peer's address, and the next call receives the next message.
//
// Threading: a proto_socket, like a ZeroMQ socket, belongs to one thread at a time. The log
// callback may be called from the ZAP thread.
#ifndef HY_PROTO_TRANSPORT_H
#define HY_PROTO_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "proto/messages.h"

#define PROTO_DEFAULT_HWM 64
#define PROTO_DEFAULT_LINGER_MS 1000
#define PROTO_PEER_ID_MAX 255  // ROUTER peer ids (ZeroMQ routing ids are 1..255 bytes)

typedef struct proto_ctx proto_ctx;
typedef struct proto_socket proto_socket;

typedef struct {
    int hwm;        // ZMQ_SNDHWM and ZMQ_RCVHWM, messages per peer; ≥ 1 (0 would mean unbounded)
    int linger_ms;  // how long closing waits to deliver queued messages; -1 = until delivered
    // CURVE (all NULL = plaintext, allowed only on local endpoints):
    const char *key_file;          // this side's key pair (keys.h); both sides
    const char *server_key_file;   // connecting side: the server's public key file
    const char *authorized_keys;   // binding side: public keys of the clients let in
    const char *routing_id;        // DEALER / ROUTER identity, ≤ PROTO_PEER_ID_MAX bytes; NULL = ZeroMQ's
} proto_socket_opts;

void proto_socket_opts_default(proto_socket_opts *o);

// Where log lines go (refused peers, failed handshakes); default stderr. fn may be called from the
// ZAP thread, so it must be thread-safe; calls are serialised by a mutex here.
void proto_log_set(void (*fn)(void *ud, const char *line), void *ud);

// A ZeroMQ context plus its ZAP handler thread. NULL on failure (message set).
proto_ctx *proto_ctx_new(void);
// Close every socket of the context first.
void proto_ctx_destroy(proto_ctx *c);
// Counts of CURVE clients the ZAP handler admitted and refused so far.
void proto_ctx_auth_counts(proto_ctx *c, uint64_t *admitted, uint64_t *refused);

// zmq_type: ZMQ_PUSH, ZMQ_PULL, ZMQ_DEALER, ZMQ_ROUTER, ZMQ_PAIR (others refused). Reads key files
// now, so a bad key is reported before any bind / connect. NULL on failure.
proto_socket *proto_socket_new(proto_ctx *c, int zmq_type, const proto_socket_opts *o);
void proto_socket_destroy(proto_socket *s);
// Endpoints: tcp://HOST:PORT (PORT may be * on bind: an ephemeral port), ipc://PATH, inproc://NAME.
// A socket either binds or connects (one or more times), not both.
int proto_socket_bind(proto_socket *s, const char *endpoint);
int proto_socket_connect(proto_socket *s, const char *endpoint);
// The endpoint last bound, with the real port for tcp://HOST:* ("" before any bind).
const char *proto_socket_endpoint(const proto_socket *s);
// The underlying ZeroMQ socket (for zmq_poll with other sockets); do not close it.
void *proto_socket_handle(proto_socket *s);

// timeout_ms: -1 waits forever, 0 does not wait. Returns 0 when sent or received, 1 on timeout
// (nothing sent / nothing received), -1 on error with a message.
// send: encodes and sends m (to `peer` on a ROUTER socket, which must be NULL otherwise; an unknown
// peer is an error). send_raw sends bytes as they are (forwarding; tests).
int proto_socket_send(proto_socket *s, const char *peer, const proto_msg *m, int timeout_ms);
int proto_socket_send_raw(proto_socket *s, const char *peer, const void *data, size_t size, int timeout_ms);
// recv: receives one message into *m (proto_msg_free it). On a ROUTER socket the sender's routing
// id is written to peer (≥ PROTO_PEER_ID_MAX + 1 bytes; may be NULL otherwise). A frame that fails
// to decode is dropped: -1 with "proto recv on ENDPOINT from PEER: <decode error>".
int proto_socket_recv(proto_socket *s, proto_msg *m, char *peer, int timeout_ms);

// Waits until one of s[0..n) (1 ≤ n ≤ 64) has a message to read; readable[i] = 1 for those that
// do. Returns how many are readable (0 on timeout), -1 on error.
int proto_poll(proto_socket *const *s, int n, int timeout_ms, int *readable);

// 1 when an endpoint may run without CURVE (loopback tcp, ipc, inproc), 0 when it is a network
// address, -1 (message set) when malformed or of a transport we do not use.
int proto_endpoint_is_local(const char *endpoint);

#endif
