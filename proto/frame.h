// The frame: the envelope every protocol message travels in (spec: docs/proto.md, "Frames").
//
// A frame is one ZeroMQ message part holding exactly one msgpack value, an array of four:
//     [ "HYBR", version, type, body ]
// magic a 4-byte str, version and type unsigned integers, body a map whose layout the type fixes
// (proto/messages.h). The magic tells a hybrid frame from stray traffic on a port; the version
// lets a receiver refuse a peer built from another protocol revision with a message saying so
// instead of misreading fields; type ids are fixed forever and never reused.
//
// Opening a frame is the only place untrusted bytes meet msgpack-c. msgpack-c allocates the full
// declared size of an array or map as soon as it reads its header, so a 5-byte input declaring
// 2^32 elements asks for ~100 GB. proto_frame_open therefore first walks the bytes (headers and
// lengths only, building nothing) and refuses any input whose declared counts and lengths are not
// backed by the bytes that follow; only then does msgpack_unpack_next build objects, whose memory
// is thus bounded by ~24x the frame size. Nothing here aborts on bad input: -1 and a message.
#ifndef HY_PROTO_FRAME_H
#define HY_PROTO_FRAME_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC "HYBR"
#define PROTO_MAGIC_LEN 4
// Bump on any change to a message's fields, types, ranges or meaning (docs/proto.md, "Versions").
#define PROTO_VERSION 1u
// Largest frame accepted or produced; also set as ZMQ_MAXMSGSIZE on every socket, so a bigger
// message drops the connection before it is buffered.
#define PROTO_MAX_FRAME_BYTES (64u << 20)

// Message type ids (wire values; fixed forever, never reused).
typedef enum {
    PROTO_GEN_REQUEST = 1,
    PROTO_TRAJECTORY = 2,
    PROTO_REWARD_REQUEST = 3,
    PROTO_REWARD_RESULT = 4,
    PROTO_WEIGHT_NOTICE = 5,
    PROTO_CONTROL = 6,
    PROTO_HEARTBEAT = 7,
} proto_type;
#define PROTO_TYPE_FIRST PROTO_GEN_REQUEST
#define PROTO_TYPE_LAST PROTO_HEARTBEAT

// "gen_request", "trajectory", ... ; "unknown" for ids outside the table.
const char *proto_type_name(proto_type type);

// Writes the frame header (array of 4, magic, version, type); the caller packs the body next.
// 0, or -1 when the packer's buffer failed to grow.
int proto_frame_begin(msgpack_packer *pk, proto_type type);

// Checks and unpacks a frame: bounds walk, one complete msgpack value and no trailing bytes, an
// array of 4, the magic, this build's version, a known type and a map body. On success *type and
// *body (pointing into u, which the caller has msgpack_unpacked_init'ed and destroys) are set. On
// failure -1 with a message naming the problem ("version 2 is not supported (this build speaks
// version 1)").
int proto_frame_open(const void *data, size_t size, msgpack_unpacked *u, proto_type *type,
                     const msgpack_object **body);

// The bounds walk on its own (exposed for tests): 0 when data holds exactly one msgpack value
// whose every declared length fits in the bytes that remain, else -1 with a message.
int proto_frame_bounds_check(const void *data, size_t size);

#endif
