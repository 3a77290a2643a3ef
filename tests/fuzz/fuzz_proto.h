// Shared by the protocol fuzz targets: the properties they check and a structure-aware mutator.
//
// Properties, beyond "no crash, no leak, no sanitizer report":
//  - a refused input leaves a message that starts with "proto decode" (the decoder said why);
//  - an accepted input re-encodes (whatever a decoder accepts, the encoder's check accepts too),
//    and that frame decodes again and re-encodes to the same bytes (no field is lost or altered).
// A violated property aborts, which libFuzzer reports as a crash with the input saved.
//
// Mutator: msgpack is length-prefixed, so a byte-level mutation that changes a string's length
// or an array's size must also fix its header, or the frame is just truncated; plain libFuzzer
// rarely gets both right and stays stuck at the bounds walk. So half the mutations unpack the
// input, change one value of the tree (an interesting number, a string of another length or a
// known field / enum name, an array or map entry dropped or repeated, a value of another type)
// and pack it again — always well-formed msgpack, so the fuzzer spends its time in the field
// readers and checks. The other half are libFuzzer's own byte mutations, which keep the framing
// code exercised.
//
// One target per decoder (tests/fuzz/fuzz_proto_<decoder>.c) so each gets its own corpus and
// coverage; tests/test_fuzz_proto.sh builds them with clang -fsanitize=fuzzer and runs each briefly
// from seeds written by tests/fuzz/proto_seeds.c.
#ifndef HY_TESTS_FUZZ_PROTO_H
#define HY_TESTS_FUZZ_PROTO_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"
#include "proto/frame.h"
#include "proto/messages.h"

static void fuzz_fail(const char *what) {
    fprintf(stderr, "fuzz property violated: %s (%s)\n", what, hy_last_error());
    abort();
}

// After a refusal.
static void fuzz_check_refusal(void) {
    if (strncmp(hy_last_error(), "proto decode", 12) != 0) fuzz_fail("refusal without a proto decode message");
}

// After an acceptance: m is the decoded message (freed here).
static void fuzz_check_reencode(proto_msg *m) {
    msgpack_sbuffer a, b;
    msgpack_sbuffer_init(&a);
    msgpack_sbuffer_init(&b);
    if (proto_msg_encode(m, &a) != 0) fuzz_fail("accepted message does not re-encode");
    proto_msg d;
    if (proto_msg_decode(a.data, a.size, &d) != 0) fuzz_fail("re-encoded frame does not decode");
    if (d.type != m->type) fuzz_fail("type changed");
    if (proto_msg_encode(&d, &b) != 0) fuzz_fail("second re-encode failed");
    if (a.size != b.size || memcmp(a.data, b.data, a.size) != 0) fuzz_fail("re-encoding is not stable");
    proto_msg_free(&d);
    proto_msg_free(m);
    msgpack_sbuffer_destroy(&a);
    msgpack_sbuffer_destroy(&b);
}

// ---------------------------------------------------------------- structure-aware mutator

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

static const char *const k_fuzz_words[] = {
    "HYBR", "id", "group_id", "prompt", "sampling", "temperature", "top_p", "top_k", "seed", "logprobs",
    "top_logprobs", "n", "max_tokens", "stop_token_ids", "ignore_eos", "stop_strings", "env_id", "metadata",
    "request_id", "sample_index", "completion", "generated", "model_logprobs", "weight_version", "top_ids",
    "finish_reason", "n_turns", "queue_s", "prefill_s", "decode_s", "trajectory_id", "verifier",
    "completion_text", "completion_tokens", "reference", "reward", "scores", "error", "version", "checksum",
    "transport", "location", "command", "reason", "sender", "role", "timestamp", "queued", "running",
    "tokens_per_s", "memory_used", "eos", "stop", "length", "max_len", "env", "abort", "nccl", "zmq", "inplace",
    "pause", "resume", "drain", "shutdown", "orchestrator", "rollout", "learner", "verifier", "", "x"};

static uint64_t fuzz_rand(uint64_t *s) {  // xorshift64*: reproducible from libFuzzer's seed
    *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

// Finds the k-th value of the tree in pre-order (counting down *k); NULL when k ≥ the count.
static msgpack_object *fuzz_nth(msgpack_object *o, uint64_t *k) {
    if ((*k)-- == 0) return o;
    if (o->type == MSGPACK_OBJECT_ARRAY)
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            msgpack_object *r = fuzz_nth(&o->via.array.ptr[i], k);
            if (r) return r;
        }
    if (o->type == MSGPACK_OBJECT_MAP)
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            msgpack_object *r = fuzz_nth(&o->via.map.ptr[i].key, k);
            if (!r) r = fuzz_nth(&o->via.map.ptr[i].val, k);
            if (r) return r;
        }
    return NULL;
}

static void fuzz_mutate_value(msgpack_object *o, msgpack_zone *z, uint64_t *rs) {
    static const uint64_t ints[] = {0, 1, 2, 7, 20, 21, 64, 65, 127, 128, 255, 256, 1023, 1024, 1025, 65535,
                                    65536, 1048576, 1048577, 2147483647, 2147483648ull, 4294967295ull,
                                    4294967296ull, 18446744073709551615ull};
    static const double floats[] = {0.0, -0.0, 1.0, -1.0, 0.5, 1.5, 100.0, 100.5, -1e-45, 3.5e38, 1e300,
                                    -1e300, 1e9, 1e11, 1e12};
    const uint64_t r = fuzz_rand(rs);
    switch (r % 8) {
    case 0:  // an interesting unsigned integer
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = ints[(r >> 8) % (sizeof ints / sizeof ints[0])];
        break;
    case 1:  // a negative integer
        o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        o->via.i64 = (r >> 8) % 2 ? -1 : INT64_MIN + (int64_t)((r >> 9) % 3) * INT32_MAX;
        break;
    case 2: {  // an interesting float
        const int pick = (int)((r >> 8) % 19);
        o->type = (r >> 16) % 2 ? MSGPACK_OBJECT_FLOAT32 : MSGPACK_OBJECT_FLOAT64;
        o->via.f64 = pick < 15 ? floats[pick] : pick == 15 ? NAN : pick == 16 ? INFINITY : pick == 17 ? -INFINITY
                                                                                             : (double)(r >> 20) / 1e6;
        break;
    }
    case 3:  // a known field / enum name
        o->type = MSGPACK_OBJECT_STR;
        o->via.str.ptr = k_fuzz_words[(r >> 8) % (sizeof k_fuzz_words / sizeof k_fuzz_words[0])];
        o->via.str.size = (uint32_t)strlen(o->via.str.ptr);
        break;
    case 4: {  // a string of another length, sometimes with a NUL byte
        const uint32_t n = (uint32_t)((r >> 8) % 4 == 0 ? (r >> 12) % 5000 : (r >> 12) % 300);
        char *s = msgpack_zone_malloc(z, n + 1);
        if (!s) return;
        memset(s, 'a' + (int)((r >> 24) % 26), n);
        if (n && (r >> 40) % 8 == 0) s[(r >> 44) % n] = '\0';
        o->type = (r >> 50) % 16 ? MSGPACK_OBJECT_STR : MSGPACK_OBJECT_BIN;
        o->via.str.ptr = s;
        o->via.str.size = n;
        break;
    }
    case 5:  // array: drop, repeat or empty
        if (o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size > 0) {
            const uint32_t n = o->via.array.size, i = (uint32_t)((r >> 8) % n);
            if ((r >> 40) % 3 == 0) {
                o->via.array.size = 0;
            } else if ((r >> 40) % 3 == 1) {
                o->via.array.ptr[i] = o->via.array.ptr[n - 1];
                o->via.array.size--;
            } else {
                msgpack_object *a = msgpack_zone_malloc(z, (n + 1) * sizeof *a);
                if (!a) return;
                memcpy(a, o->via.array.ptr, n * sizeof *a);
                a[n] = a[i];
                o->via.array.ptr = a;
                o->via.array.size = n + 1;
            }
        } else {
            o->type = MSGPACK_OBJECT_ARRAY;
            o->via.array.size = 0;
        }
        break;
    case 6:  // map: drop or repeat an entry, or rename a key
        if (o->type == MSGPACK_OBJECT_MAP && o->via.map.size > 0) {
            const uint32_t n = o->via.map.size, i = (uint32_t)((r >> 8) % n);
            if ((r >> 40) % 3 == 0) {
                o->via.map.ptr[i] = o->via.map.ptr[n - 1];
                o->via.map.size--;
            } else if ((r >> 40) % 3 == 1) {
                msgpack_object_kv *a = msgpack_zone_malloc(z, (n + 1) * sizeof *a);
                if (!a) return;
                memcpy(a, o->via.map.ptr, n * sizeof *a);
                a[n] = a[i];
                o->via.map.ptr = a;
                o->via.map.size = n + 1;
            } else {
                fuzz_mutate_value(&o->via.map.ptr[i].key, z, rs);
            }
        } else {
            o->type = MSGPACK_OBJECT_MAP;
            o->via.map.size = 0;
        }
        break;
    default:  // nil or a boolean
        o->type = (r >> 8) % 3 ? MSGPACK_OBJECT_BOOLEAN : MSGPACK_OBJECT_NIL;
        o->via.boolean = (r >> 10) % 2;
        break;
    }
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
    uint64_t rs = seed * 0x9E3779B97F4A7C15ull + 1;
    if (fuzz_rand(&rs) % 2 || proto_frame_bounds_check(data, size) != 0)
        return LLVMFuzzerMutate(data, size, max_size);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    // new strings and arrays go to a zone of our own: u's is NULL when the input needed none
    msgpack_zone *z = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
    size_t off = 0, out_size = 0;
    if (z && msgpack_unpack_next(&u, (const char *)data, size, &off) == MSGPACK_UNPACK_SUCCESS) {
        uint64_t count = UINT64_MAX;  // count the values: walk past the end
        fuzz_nth(&u.data, &count);
        count = UINT64_MAX - count;
        const int edits = 1 + (int)(fuzz_rand(&rs) % 3);
        for (int e = 0; e < edits; e++) {
            uint64_t k = fuzz_rand(&rs) % count;
            msgpack_object *o = fuzz_nth(&u.data, &k);
            if (o) fuzz_mutate_value(o, z, &rs);
        }
        msgpack_sbuffer b;
        msgpack_sbuffer_init(&b);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
        msgpack_pack_object(&pk, u.data);
        if (b.size <= max_size) {
            memcpy(data, b.data, b.size);
            out_size = b.size;
        }
        msgpack_sbuffer_destroy(&b);
    }
    msgpack_unpacked_destroy(&u);
    if (z) msgpack_zone_free(z);
    return out_size ? out_size : LLVMFuzzerMutate(data, size, max_size);
}

#endif
