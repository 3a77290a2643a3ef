// Frame header and the pre-unpack bounds walk (see frame.h; layout in docs/proto.md).
//
// The walk relies on a property of msgpack: every value, however small, takes at least one byte.
// So with `pending` values still to read, fewer than `pending` bytes left means the input lies
// about its sizes. Counting pending values instead of keeping a stack of containers makes the
// walk O(bytes) with no recursion and no depth limit of its own (msgpack-c enforces its own
// nesting limit afterwards).
#include "proto/frame.h"

#include <inttypes.h>
#include <string.h>

#include "common/hy_error.h"

static const char *const k_type_names[] = {
    [PROTO_GEN_REQUEST] = "gen_request",     [PROTO_TRAJECTORY] = "trajectory",
    [PROTO_REWARD_REQUEST] = "reward_request", [PROTO_REWARD_RESULT] = "reward_result",
    [PROTO_WEIGHT_NOTICE] = "weight_notice", [PROTO_CONTROL] = "control",
    [PROTO_HEARTBEAT] = "heartbeat",
};

const char *proto_type_name(proto_type type) {
    if (type < PROTO_TYPE_FIRST || type > PROTO_TYPE_LAST) return "unknown";
    return k_type_names[type];
}

int proto_frame_begin(msgpack_packer *pk, proto_type type) {
    int rc = msgpack_pack_array(pk, 4);
    rc |= msgpack_pack_str(pk, PROTO_MAGIC_LEN);
    rc |= msgpack_pack_str_body(pk, PROTO_MAGIC, PROTO_MAGIC_LEN);
    rc |= msgpack_pack_unsigned_int(pk, PROTO_VERSION);
    rc |= msgpack_pack_unsigned_int(pk, (unsigned)type);
    return rc ? hy_fail("out of memory") : 0;
}

// Big-endian unsigned of width w (1, 2, 4 or 8) at p; the caller has checked the bytes exist.
static uint64_t read_be(const uint8_t *p, int w) {
    uint64_t v = 0;
    for (int i = 0; i < w; i++) v = (v << 8) | p[i];
    return v;
}

int proto_frame_bounds_check(const void *data, size_t size) {
    const uint8_t *p = data;
    size_t pos = 0;
    uint64_t pending = 1;
    while (pending > 0) {
        if (pending > size - pos)
            return hy_fail("truncated or malformed: %" PRIu64 " more values declared at byte %zu "
                           "than the %zu bytes left can hold", pending, pos, size - pos);
        pending--;
        const uint8_t b = p[pos++];
        int len_width = 0;     // width of a length field that follows the type byte
        uint64_t payload = 0;  // bytes of payload to skip (fixed-size types)
        uint64_t children = 0; // values the container adds
        int is_map = 0, extra = 0;  // extra: ext type byte
        if (b <= 0x7f || b >= 0xe0) {
            // positive / negative fixint
        } else if (b <= 0x8f) {
            children = 2u * (b & 0x0f);
        } else if (b <= 0x9f) {
            children = b & 0x0f;
        } else if (b <= 0xbf) {
            payload = b & 0x1f;
        } else {
            switch (b) {
            case 0xc0: case 0xc2: case 0xc3: break;                       // nil, false, true
            case 0xc1: return hy_fail("malformed: reserved byte 0xc1 at byte %zu", pos - 1);
            case 0xc4: case 0xd9: len_width = 1; break;                   // bin8, str8
            case 0xc5: case 0xda: len_width = 2; break;                   // bin16, str16
            case 0xc6: case 0xdb: len_width = 4; break;                   // bin32, str32
            case 0xc7: len_width = 1; extra = 1; break;                   // ext8
            case 0xc8: len_width = 2; extra = 1; break;                   // ext16
            case 0xc9: len_width = 4; extra = 1; break;                   // ext32
            case 0xca: payload = 4; break;                                // float32
            case 0xcb: payload = 8; break;                                // float64
            case 0xcc: case 0xd0: payload = 1; break;                     // uint8, int8
            case 0xcd: case 0xd1: payload = 2; break;
            case 0xce: case 0xd2: payload = 4; break;
            case 0xcf: case 0xd3: payload = 8; break;
            case 0xd4: payload = 2; break;                                // fixext 1..16 (+type)
            case 0xd5: payload = 3; break;
            case 0xd6: payload = 5; break;
            case 0xd7: payload = 9; break;
            case 0xd8: payload = 17; break;
            case 0xdc: len_width = 2; break;                              // array16
            case 0xdd: len_width = 4; break;                              // array32
            case 0xde: len_width = 2; is_map = 1; break;                  // map16
            case 0xdf: len_width = 4; is_map = 1; break;                  // map32
            default: return hy_fail("malformed: byte 0x%02x at %zu", b, pos - 1);
            }
        }
        if (len_width) {
            if ((size_t)len_width > size - pos)
                return hy_fail("truncated: a length field at byte %zu runs past the end", pos);
            const uint64_t n = read_be(p + pos, len_width);
            pos += (size_t)len_width;
            if (b >= 0xdc && b <= 0xdf) children = is_map ? 2 * n : n;
            else payload = n + (uint64_t)extra;
        }
        if (payload > size - pos)
            return hy_fail("truncated: a value at byte %zu declares %" PRIu64 " bytes, %zu remain",
                           pos, payload, size - pos);
        pos += (size_t)payload;
        pending += children;
    }
    if (pos != size) return hy_fail("malformed: %zu trailing bytes after the msgpack value", size - pos);
    return 0;
}

int proto_frame_open(const void *data, size_t size, msgpack_unpacked *u, proto_type *type,
                     const msgpack_object **body) {
    if (size == 0) return hy_fail("empty");
    if (size > PROTO_MAX_FRAME_BYTES)
        return hy_fail("%zu bytes exceed the frame limit of %u", size, PROTO_MAX_FRAME_BYTES);
    if (proto_frame_bounds_check(data, size) != 0) return -1;
    size_t off = 0;
    const msgpack_unpack_return r = msgpack_unpack_next(u, data, size, &off);
    // the bounds walk has capped what unpacking allocates, so msgpack-c's "no memory" here almost
    // always means its fixed nesting stack ran out
    if (r == MSGPACK_UNPACK_NOMEM_ERROR)
        return hy_fail("malformed: values nested deeper than msgpack-c's limit (or out of memory)");
    if (r != MSGPACK_UNPACK_SUCCESS || off != size) return hy_fail("malformed: not one complete msgpack value");
    const msgpack_object *root = &u->data;
    if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size != 4)
        return hy_fail("malformed: not an array of 4 [magic, version, type, body]");
    const msgpack_object *f = root->via.array.ptr;
    if (f[0].type != MSGPACK_OBJECT_STR || f[0].via.str.size != PROTO_MAGIC_LEN ||
        memcmp(f[0].via.str.ptr, PROTO_MAGIC, PROTO_MAGIC_LEN) != 0)
        return hy_fail("wrong magic (not a hybrid protocol frame)");
    if (f[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return hy_fail("version is not an unsigned integer");
    if (f[1].via.u64 != PROTO_VERSION)
        return hy_fail("version %" PRIu64 " is not supported (this build speaks version %u)",
                       f[1].via.u64, PROTO_VERSION);
    if (f[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER) return hy_fail("type is not an unsigned integer");
    if (f[2].via.u64 < PROTO_TYPE_FIRST || f[2].via.u64 > PROTO_TYPE_LAST)
        return hy_fail("type %" PRIu64 " is unknown (known: %d..%d)", f[2].via.u64, PROTO_TYPE_FIRST,
                       PROTO_TYPE_LAST);
    *type = (proto_type)f[2].via.u64;
    if (f[3].type != MSGPACK_OBJECT_MAP) return hy_fail("%s body is not a map", proto_type_name(*type));
    *body = &f[3];
    return 0;
}
