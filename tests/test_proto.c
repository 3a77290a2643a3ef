// Tests for proto/: frames, every message's encode/decode/check, key files, endpoints, and ZeroMQ
// for real on loopback (tcp://127.0.0.1 on an ephemeral port, ipc:// in a temporary directory).
//
// Round trips compare bytes: a frame decoded and re-encoded must be identical, which catches any
// field the decoder drops or alters (encoding is deterministic). Bad frames are made by unpacking a
// valid frame, editing one value of the msgpack tree and packing it again, so each case changes
// exactly one thing; every refusal must carry a message naming the message type and field.
// Transport cases show backpressure (a send times out while the peer does not read, nothing is
// lost), a receive loop surviving bad frames, and CURVE admitting the right client and refusing a
// plaintext one, an unauthorized key and a wrong server key — with a log line for each refusal.
//
// Usage: test_proto SOURCE_DIR [CASE]   (CASE: run only that case; the list is printed on a typo)
#include "common/hy_error.h"
#include "proto/frame.h"
#include "proto/keys.h"
#include "proto/messages.h"
#include "proto/transport.h"
#include "tests/fuzz/proto_samples.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static int n_fail, n_pass;
static char g_tmp[256];

static void report(const char *name, int ok, const char *fmt, ...) {
    if (ok) {
        n_pass++;
        return;
    }
    n_fail++;
    char detail[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    printf("FAIL %s: %s\n", name, detail);
}

// ---------------------------------------------------------------- log capture

static pthread_mutex_t g_log_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_log[16384];

static void capture_log(void *ud, const char *line) {
    pthread_mutex_lock(&g_log_lock);
    const size_t n = strlen(g_log);
    snprintf(g_log + n, sizeof g_log - n, "%s\n", line);
    pthread_mutex_unlock(&g_log_lock);
}

static void log_clear(void) {
    pthread_mutex_lock(&g_log_lock);
    g_log[0] = '\0';
    pthread_mutex_unlock(&g_log_lock);
}

static int log_has(const char *needle) {
    pthread_mutex_lock(&g_log_lock);
    const int found = strstr(g_log, needle) != NULL;
    pthread_mutex_unlock(&g_log_lock);
    return found;
}

// ---------------------------------------------------------------- helpers

static int encode(const proto_msg *m, msgpack_sbuffer *out) {
    msgpack_sbuffer_init(out);
    return proto_msg_encode(m, out);
}

// Decodes frame with the generic and the typed decoder; both must agree. On success *m is filled
// from the generic one (proto_msg_free it); on failure the message is the typed decoder's, which
// names the expected type even when the frame is refused before its type is read.
static int decode_both(const char *data, size_t size, proto_type type, proto_msg *m) {
    const int rc = proto_msg_decode(data, size, m);
    proto_msg typed = {.type = type};
    int rc2 = -1;
    switch (type) {
    case PROTO_GEN_REQUEST: rc2 = proto_gen_request_decode(data, size, &typed.u.gen_request); break;
    case PROTO_TRAJECTORY: rc2 = proto_trajectory_decode(data, size, &typed.u.trajectory); break;
    case PROTO_REWARD_REQUEST: rc2 = proto_reward_request_decode(data, size, &typed.u.reward_request); break;
    case PROTO_REWARD_RESULT: rc2 = proto_reward_result_decode(data, size, &typed.u.reward_result); break;
    case PROTO_WEIGHT_NOTICE: rc2 = proto_weight_notice_decode(data, size, &typed.u.weight_notice); break;
    case PROTO_CONTROL: rc2 = proto_control_decode(data, size, &typed.u.control); break;
    case PROTO_HEARTBEAT: rc2 = proto_heartbeat_decode(data, size, &typed.u.heartbeat); break;
    }
    if (rc2 == 0) proto_msg_free(&typed);
    if (rc != rc2) {
        if (rc == 0) proto_msg_free(m);
        return hy_fail("generic decode returned %d, typed %d (%s)", rc, rc2, hy_last_error());
    }
    return rc;
}

static double seconds_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0->tv_nsec);
}

// encode → decode → encode: the two frames must be byte-identical. Frames over 4 MB skip the typed
// decoder (the same code as the generic one past the type check) to keep sanitizer runs short,
// and print what they cost.
static void check_roundtrip(const char *name, const proto_msg *m) {
    msgpack_sbuffer a, b;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (encode(m, &a)) {
        report(name, 0, "encode: %s", hy_last_error());
        msgpack_sbuffer_destroy(&a);
        return;
    }
    const double t_enc = seconds_since(&t0);
    const int big = a.size > (4u << 20);
    proto_msg d;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (big ? proto_msg_decode(a.data, a.size, &d) : decode_both(a.data, a.size, m->type, &d)) {
        report(name, 0, "decode: %s", hy_last_error());
        msgpack_sbuffer_destroy(&a);
        return;
    }
    if (big)
        printf("     %s: %.1f MB frame, encode %.0f ms, decode %.0f ms\n", name, (double)a.size / 1e6, 1e3 * t_enc,
               1e3 * seconds_since(&t0));
    const int enc2 = encode(&d, &b);
    report(name, enc2 == 0 && d.type == m->type && a.size == b.size && memcmp(a.data, b.data, a.size) == 0,
           "re-encoded frame differs (%zu vs %zu bytes) %s", a.size, b.size, enc2 ? hy_last_error() : "");
    proto_msg_free(&d);
    msgpack_sbuffer_destroy(&a);
    msgpack_sbuffer_destroy(&b);
}

// Decoding must fail and the message must contain every needle (NULL-terminated list).
static void expect_refused(const char *name, const char *data, size_t size, proto_type type, ...) {
    proto_msg m;
    hy_error_clear();
    if (decode_both(data, size, type, &m) == 0) {
        proto_msg_free(&m);
        report(name, 0, "decoded, expected a refusal");
        return;
    }
    const char *err = hy_last_error();
    va_list ap;
    va_start(ap, type);
    for (const char *needle; (needle = va_arg(ap, const char *));) {
        if (!strstr(err, needle)) {
            report(name, 0, "message lacks \"%s\": %s", needle, err);
            va_end(ap);
            return;
        }
    }
    va_end(ap);
    report(name, 1, "");
}

// ---------------------------------------------------------------- building bad frames

static msgpack_object o_str(const char *s) {
    msgpack_object o = {.type = MSGPACK_OBJECT_STR};
    o.via.str.ptr = s;
    o.via.str.size = (uint32_t)strlen(s);
    return o;
}
static msgpack_object o_uint(uint64_t v) {
    msgpack_object o = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER};
    o.via.u64 = v;
    return o;
}
static msgpack_object o_int(int64_t v) {
    msgpack_object o = {.type = MSGPACK_OBJECT_NEGATIVE_INTEGER};
    o.via.i64 = v;
    return o;
}
static msgpack_object o_f64(double v) {
    msgpack_object o = {.type = MSGPACK_OBJECT_FLOAT64};
    o.via.f64 = v;
    return o;
}
static msgpack_object o_bool(bool v) {
    msgpack_object o = {.type = MSGPACK_OBJECT_BOOLEAN};
    o.via.boolean = v;
    return o;
}
static msgpack_object o_array(msgpack_object *items, uint32_t n) {
    msgpack_object o = {.type = MSGPACK_OBJECT_ARRAY};
    o.via.array.ptr = items;
    o.via.array.size = n;
    return o;
}

typedef enum { SET, DROP, RENAME, DUPLICATE } edit_op;

// Re-packs sample `m` with one edit at `path` inside the body ("sampling.top_p", "prompt[3]",
// "header[1]" for the frame array itself): SET replaces the value, DROP removes a map field,
// RENAME gives the field the key v->via.str, DUPLICATE renames the field to the key of the entry
// before it.
static int mutated(const proto_msg *m, const char *path, edit_op op, const msgpack_object *v, msgpack_sbuffer *out) {
    msgpack_sbuffer orig;
    if (encode(m, &orig)) return -1;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    msgpack_unpack_next(&u, orig.data, orig.size, &off);
    msgpack_object *cur = &u.data;
    if (strncmp(path, "header[", 7) == 0) {
        cur->via.array.ptr[atoi(path + 7)] = *v;
    } else {
        cur = &cur->via.array.ptr[3];
        char buf[128];
        snprintf(buf, sizeof buf, "%s", path);
        char *save = NULL;
        for (char *tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save)) {
            char *br = strchr(tok, '[');
            const int idx = br ? atoi(br + 1) : -1;
            if (br) *br = '\0';
            const int last = !save || !*save;
            uint32_t j = 0;
            while (j < cur->via.map.size &&
                   !(cur->via.map.ptr[j].key.via.str.size == strlen(tok) &&
                     memcmp(cur->via.map.ptr[j].key.via.str.ptr, tok, strlen(tok)) == 0))
                j++;
            if (j == cur->via.map.size) {
                fprintf(stderr, "test bug: no field %s\n", tok);
                abort();
            }
            msgpack_object_kv *kv = &cur->via.map.ptr[j];
            if (last && idx < 0 && op != SET) {
                if (op == DROP) kv[0] = cur->via.map.ptr[--cur->via.map.size];
                if (op == RENAME) kv->key = *v;
                if (op == DUPLICATE) kv->key = cur->via.map.ptr[j - 1].key;
                break;
            }
            cur = &kv->val;
            if (idx >= 0) cur = &cur->via.array.ptr[idx];
            if (last) *cur = *v;
        }
    }
    msgpack_sbuffer_init(out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, u.data);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&orig);
    return 0;
}

// One edit of sample `si`, then expect a refusal naming `needle1` (and needle2 when given).
static void refuse_edit(const char *name, int si, const char *path, edit_op op, msgpack_object v, const char *needle1,
                        const char *needle2) {
    const proto_msg m = sample_msg(si);
    msgpack_sbuffer b;
    if (mutated(&m, path, op, &v, &b)) {
        report(name, 0, "could not build: %s", hy_last_error());
        return;
    }
    expect_refused(name, b.data, b.size, m.type, needle1, needle2, (const char *)NULL);
    msgpack_sbuffer_destroy(&b);
}

// ---------------------------------------------------------------- cases: codec

static void case_roundtrip(void) {
    for (int i = 0; i < N_SAMPLES; i++) {
        const proto_msg m = sample_msg(i);
        char name[64];
        snprintf(name, sizeof name, "roundtrip sample %d (%s)", i, proto_type_name(m.type));
        check_roundtrip(name, &m);
    }
    // field values survive, not just bytes: spot checks on the multi-turn trajectory
    const proto_msg m = sample_msg(4);
    msgpack_sbuffer b;
    encode(&m, &b);
    proto_trajectory t;
    const int rc = proto_trajectory_decode(b.data, b.size, &t);
    report("trajectory fields", rc == 0 && t.n_completion == 7 && t.generated[3] == 0 && t.generated[5] == 1 &&
                                    t.logprobs[4] == 0.0f && t.logprobs[6] == -0.5f && t.model_logprobs[6] == -0.55f &&
                                    t.weight_version[6] == 4 &&
                                    t.top_k == 2 && t.n_top == 10 && t.top_ids[9] == 95 &&
                                    t.finish_reason == PROTO_FINISH_ENV && t.n_turns == 2 &&
                                    proto_trajectory_n_generated(&t) == 5,
           "%s", rc ? hy_last_error() : "a field differs");
    if (rc == 0) proto_trajectory_free(&t);
    msgpack_sbuffer_destroy(&b);
    const proto_msg g = sample_msg(0);
    encode(&g, &b);
    proto_gen_request r;
    const int rc2 = proto_gen_request_decode(b.data, b.size, &r);
    report("gen_request fields", rc2 == 0 && r.sampling.top_p == 0.95f && r.sampling.seed == 1234567890123ull &&
                                     r.prompt[8] == 2147483647 && strcmp(r.stop_strings[1], "\nUser:") == 0 &&
                                     r.ignore_eos &&
                                     r.metadata.n == 3 && strcmp(r.metadata.items[2].value, "") == 0 &&
                                     strcmp(r.env_id, "python-sandbox") == 0,
           "%s", rc2 ? hy_last_error() : "a field differs");
    if (rc2 == 0) proto_gen_request_free(&r);
    msgpack_sbuffer_destroy(&b);
    // the frame starts with the documented bytes: fixarray 4, fixstr "HYBR", version 1, type
    encode(&g, &b);
    const unsigned char head[] = {0x94, 0xa4, 'H', 'Y', 'B', 'R', 0x01, 0x01};
    report("frame header bytes", b.size > 8 && memcmp(b.data, head, 8) == 0, "unexpected first bytes");
    msgpack_sbuffer_destroy(&b);
}

static char *filled(size_t n, char c) {
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

// Every field at its limit round-trips; one past a limit is refused by the encoder.
static void case_maximal(void) {
    enum { NT = PROTO_MAX_TOKENS };
    int32_t *tok = malloc(NT * sizeof *tok);
    uint8_t *gen = malloc(NT);
    float *lp = malloc(NT * sizeof *lp);
    uint64_t *ver = malloc(NT * sizeof *ver);
    for (int i = 0; i < NT; i++) {
        tok[i] = (int32_t)((i * 2654435761u) & 0x7fffffff);
        gen[i] = (i % 7) != 3;
        lp[i] = gen[i] ? -(float)(i % 1000) / 64.0f : 0.0f;
        ver[i] = UINT64_MAX - (uint64_t)i;
    }
    char *strs[PROTO_MAX_STOP_STRINGS];
    for (int i = 0; i < PROTO_MAX_STOP_STRINGS; i++) strs[i] = filled(PROTO_MAX_STOP_STRING_BYTES, (char)('a' + i));
    proto_str_pair meta[PROTO_MAX_MAP_ENTRIES];
    proto_score scores[PROTO_MAX_MAP_ENTRIES];
    for (int i = 0; i < PROTO_MAX_MAP_ENTRIES; i++) {
        meta[i].key = filled(PROTO_MAX_NAME_BYTES, 'k');
        meta[i].key[0] = (char)('0' + i / 10), meta[i].key[1] = (char)('0' + i % 10);
        meta[i].value = filled(PROTO_MAX_VALUE_BYTES, 'v');
        scores[i].name = meta[i].key;
        scores[i].value = i % 2 ? -1e300 : 1e300;
    }
    char *name = filled(PROTO_MAX_NAME_BYTES, 'n');
    char *reason = filled(PROTO_MAX_REASON_BYTES, 'r');
    char *text = filled(PROTO_MAX_TEXT_BYTES, 't');

    proto_msg m = {.type = PROTO_GEN_REQUEST};
    m.u.gen_request = (proto_gen_request){
        .id = UINT64_MAX, .group_id = UINT64_MAX, .prompt = tok, .n_prompt = NT,
        .sampling = {.temperature = (float)PROTO_MAX_TEMPERATURE, .top_p = 1, .top_k = INT32_MAX, .seed = UINT64_MAX,
                     .logprobs = true, .top_logprobs = PROTO_MAX_TOP_LOGPROBS},
        .n = PROTO_MAX_N, .max_tokens = PROTO_MAX_TOKENS, .stop_token_ids = tok,
        .n_stop_token_ids = PROTO_MAX_STOP_TOKENS, .stop_strings = strs, .n_stop_strings = PROTO_MAX_STOP_STRINGS,
        .env_id = name, .metadata = {meta, PROTO_MAX_MAP_ENTRIES}};
    check_roundtrip("maximal gen_request", &m);
    msgpack_sbuffer b;
    m.u.gen_request.n_prompt = NT + 1;
    report("gen_request over the token limit", encode(&m, &b) != 0 && strstr(hy_last_error(), "gen_request.prompt"),
           "%s", hy_last_error());
    msgpack_sbuffer_destroy(&b);
    m.u.gen_request.n_prompt = 1;
    m.u.gen_request.n_stop_strings = PROTO_MAX_STOP_STRINGS + 1;
    report("gen_request over the stop-string limit",
           encode(&m, &b) != 0 && strstr(hy_last_error(), "gen_request.stop_strings"), "%s", hy_last_error());
    msgpack_sbuffer_destroy(&b);

    m.type = PROTO_TRAJECTORY;
    m.u.trajectory = (proto_trajectory){
        .id = UINT64_MAX, .request_id = UINT64_MAX, .group_id = UINT64_MAX, .sample_index = PROTO_MAX_N - 1,
        .prompt = tok, .n_prompt = NT, .completion = tok, .n_completion = NT, .generated = gen, .logprobs = lp,
        .model_logprobs = lp, .n_logprobs = NT, .weight_version = ver, .finish_reason = PROTO_FINISH_LENGTH,
        .n_turns = PROTO_MAX_TURNS,
        .queue_s = PROTO_MAX_SECONDS, .prefill_s = PROTO_MAX_SECONDS, .decode_s = PROTO_MAX_SECONDS};
    check_roundtrip("maximal trajectory", &m);
    // alternatives at top_k = 20 (the frame limit, not a count, bounds them)
    m.u.trajectory.n_prompt = 1;
    m.u.trajectory.n_completion = m.u.trajectory.n_logprobs = 20000;
    const uint32_t ngen = proto_trajectory_n_generated(&m.u.trajectory);
    int32_t *top_ids = malloc((size_t)ngen * 20 * sizeof *top_ids);
    float *top_lp = malloc((size_t)ngen * 20 * sizeof *top_lp);
    for (uint32_t i = 0; i < ngen * 20; i++) top_ids[i] = (int32_t)i, top_lp[i] = -(float)(i % 20);
    m.u.trajectory.top_k = 20, m.u.trajectory.top_ids = top_ids, m.u.trajectory.top_logprobs = top_lp;
    m.u.trajectory.n_top = ngen * 20;
    check_roundtrip("trajectory with 20 alternatives per token", &m);
    m.u.trajectory.n_top--;
    report("trajectory alternatives count checked",
           encode(&m, &b) != 0 && strstr(hy_last_error(), "trajectory.top_ids"), "%s", hy_last_error());
    msgpack_sbuffer_destroy(&b);
    free(top_ids);
    free(top_lp);

    m.type = PROTO_REWARD_REQUEST;
    m.u.reward_request = (proto_reward_request){
        .trajectory_id = UINT64_MAX, .verifier = name, .completion_text = text, .completion_tokens = tok,
        .n_completion_tokens = NT, .reference = text, .metadata = {meta, PROTO_MAX_MAP_ENTRIES}};
    check_roundtrip("maximal reward_request", &m);
    m.type = PROTO_REWARD_RESULT;
    m.u.reward_result = (proto_reward_result){.trajectory_id = UINT64_MAX, .reward = -1e308,
                                              .scores = {scores, PROTO_MAX_MAP_ENTRIES}, .error = reason};
    check_roundtrip("maximal reward_result", &m);
    m.u.reward_result.scores.n = PROTO_MAX_MAP_ENTRIES + 1;
    report("reward_result over the map limit", encode(&m, &b) != 0 && strstr(hy_last_error(), "reward_result.scores"),
           "%s", hy_last_error());
    msgpack_sbuffer_destroy(&b);
    m.type = PROTO_WEIGHT_NOTICE;
    m.u.weight_notice = (proto_weight_notice){.version = UINT64_MAX, .checksum = UINT64_MAX,
                                              .transport = PROTO_WEIGHTS_ZMQ, .location = reason};
    check_roundtrip("maximal weight_notice", &m);
    m.type = PROTO_CONTROL;
    m.u.control = (proto_control){.command = PROTO_CMD_RESUME, .reason = reason};
    check_roundtrip("maximal control", &m);
    m.type = PROTO_HEARTBEAT;
    m.u.heartbeat = (proto_heartbeat){.sender = name, .role = PROTO_ROLE_VERIFIER, .timestamp = PROTO_MAX_TIMESTAMP,
                                      .queued = UINT32_MAX, .running = UINT32_MAX, .tokens_per_s = 1e12,
                                      .memory_used = 1, .weight_version = UINT64_MAX};
    check_roundtrip("maximal heartbeat", &m);
    m.u.heartbeat.sender = text;
    report("heartbeat sender over the name limit",
           encode(&m, &b) != 0 && strstr(hy_last_error(), "heartbeat.sender"), "%s", hy_last_error());
    msgpack_sbuffer_destroy(&b);

    for (int i = 0; i < PROTO_MAX_STOP_STRINGS; i++) free(strs[i]);
    for (int i = 0; i < PROTO_MAX_MAP_ENTRIES; i++) free(meta[i].key), free(meta[i].value);
    free(name), free(reason), free(text), free(tok), free(gen), free(lp), free(ver);
}

// Structs that break a rule are refused by the encoder (so no sender produces a bad frame).
static void case_encode_checks(void) {
    const struct {
        int sample;
        const char *needle;
    } cases[] = {
        {0, "gen_request.sampling.temperature"}, {0, "gen_request.sampling.top_p"}, {2, "trajectory.logprobs[1]"},
        {4, "trajectory.logprobs[3]"},           {13, "heartbeat.memory_used"},     {7, "reward_result.reward"},
        {11, "control.command"},                 {2, "trajectory.completion[2]"},
    };
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        proto_msg m = sample_msg(cases[i].sample);
        float lp[7];
        int32_t toks[7];
        switch (i) {
        case 0: m.u.gen_request.sampling.temperature = NAN; break;
        case 1: m.u.gen_request.sampling.top_p = 0; break;
        case 2:
            memcpy(lp, sample_logprobs, sizeof lp), lp[1] = 0.5f;
            m.u.trajectory.logprobs = lp;
            break;
        case 3:
            memcpy(lp, sample_mt_logprobs, sizeof lp), lp[3] = -1.0f;  // an appended token with a logprob
            m.u.trajectory.logprobs = lp;
            break;
        case 4: m.u.heartbeat.memory_used = 1.5; break;
        case 5: m.u.reward_result.reward = INFINITY; break;
        case 6: m.u.control.command = (proto_command)9; break;
        case 7:
            memcpy(toks, sample_completion, sizeof toks), toks[2] = -5;
            m.u.trajectory.completion = toks;
            break;
        }
        msgpack_sbuffer b;
        char name[96];
        snprintf(name, sizeof name, "encoder refuses %s", cases[i].needle);
        report(name, encode(&m, &b) != 0 && strstr(hy_last_error(), cases[i].needle), "%s", hy_last_error());
        msgpack_sbuffer_destroy(&b);
    }
}

static void case_frame_errors(void) {
    const proto_msg m = sample_msg(0);
    msgpack_sbuffer b;
    encode(&m, &b);
    // every strict prefix of a valid frame is refused (never read past the end)
    int all = 1;
    for (size_t n = 0; n < b.size && all; n++) {
        char *copy = malloc(n ? n : 1);  // exact-size copy so ASan sees any over-read
        memcpy(copy, b.data, n);
        proto_msg d;
        if (proto_msg_decode(copy, n, &d) == 0) all = 0, proto_msg_free(&d);
        free(copy);
    }
    report("every truncation refused", all, "a truncated frame decoded");
    expect_refused("truncated message names the problem", b.data, b.size - 3, PROTO_GEN_REQUEST, "truncated", NULL);
    char *extra = malloc(b.size + 1);
    memcpy(extra, b.data, b.size);
    extra[b.size] = 0x00;
    expect_refused("trailing bytes", extra, b.size + 1, PROTO_GEN_REQUEST, "trailing", NULL);
    free(extra);
    expect_refused("empty frame", "", 0, PROTO_GEN_REQUEST, "gen_request frame", "empty", NULL);
    msgpack_sbuffer_destroy(&b);

    // declared sizes far beyond the bytes: refused before msgpack-c would allocate them
    const char huge_array[] = "\x94\xa4HYBR\x01\x01\xdd\xff\xff\xff\xff";
    expect_refused("huge declared array", huge_array, sizeof huge_array - 1, PROTO_GEN_REQUEST, "truncated", NULL);
    const char huge_map[] = "\xdf\x7f\xff\xff\xff";
    expect_refused("huge declared map", huge_map, sizeof huge_map - 1, PROTO_GEN_REQUEST, "truncated", NULL);
    const char huge_str[] = "\xdb\xff\xff\xff\xf0xyz";
    expect_refused("huge declared string", huge_str, sizeof huge_str - 1, PROTO_GEN_REQUEST, "truncated", NULL);
    const char reserved[] = "\xc1";
    expect_refused("reserved byte", reserved, 1, PROTO_GEN_REQUEST, "0xc1", NULL);
    // 40 nested arrays: well-formed msgpack, deeper than msgpack-c's stack
    char deep[41];
    memset(deep, 0x91, 40);
    deep[40] = 0x01;
    expect_refused("nesting too deep", deep, sizeof deep, PROTO_GEN_REQUEST, "nested deeper", NULL);
    const char not_array[] = "\xa4HYBR";
    expect_refused("not an array", not_array, sizeof not_array - 1, PROTO_GEN_REQUEST, "array of 4", NULL);

    msgpack_object v;
    v = o_str("HYBX");
    refuse_edit("wrong magic", 0, "header[0]", SET, v, "gen_request frame", "wrong magic");
    v = o_uint(2);
    refuse_edit("unknown version", 0, "header[1]", SET, v, "version 2 is not supported", "speaks version 1");
    v = o_uint(0);
    refuse_edit("version 0", 0, "header[1]", SET, v, "version 0 is not supported", NULL);
    v = o_str("1");
    refuse_edit("version as a string", 0, "header[1]", SET, v, "version is not an unsigned integer", NULL);
    v = o_uint(99);
    refuse_edit("unknown type", 0, "header[2]", SET, v, "type 99 is unknown", NULL);
    v = o_uint(0);
    refuse_edit("type 0", 13, "header[2]", SET, v, "type 0 is unknown", NULL);
    v = o_array(NULL, 0);
    refuse_edit("body not a map", 11, "header[3]", SET, v, "body is not a map", NULL);

    // a frame of one type given to another type's decoder
    const proto_msg hb = sample_msg(13);
    encode(&hb, &b);
    proto_trajectory t;
    report("typed decoder refuses another type",
           proto_trajectory_decode(b.data, b.size, &t) != 0 &&
               strstr(hy_last_error(), "expected a trajectory frame, got heartbeat"),
           "%s", hy_last_error());
    msgpack_sbuffer_destroy(&b);
}

// Field-level refusals: types, ranges, lengths, unknown / missing / repeated keys.
static void case_field_errors(void) {
    msgpack_object items[PROTO_MAX_STOP_TOKENS + 1];
    for (int i = 0; i <= PROTO_MAX_STOP_TOKENS; i++) items[i] = o_uint(5);
    static char with_nul[] = "ab\0cd";
    msgpack_object nul = o_str("ab");
    nul.via.str.ptr = with_nul, nul.via.str.size = 5;
    char *long_name = filled(PROTO_MAX_NAME_BYTES + 1, 'x');
    msgpack_object two[2] = {o_uint(1), o_uint(2)};
    msgpack_object wrong_elems[2] = {o_uint(1), o_str("x")};
    msgpack_object bools[2] = {o_bool(true), o_bool(false)};

    // gen_request
    refuse_edit("id negative", 0, "id", SET, o_int(-1), "gen_request.id", "negative");
    refuse_edit("id as a float", 0, "id", SET, o_f64(1.0), "gen_request.id", "expected an unsigned integer");
    refuse_edit("prompt as a string", 0, "prompt", SET, o_str("hello"), "gen_request.prompt", "expected an array");
    refuse_edit("prompt token negative", 0, "prompt[2]", SET, o_int(-7), "gen_request.prompt[2]", "token id");
    refuse_edit("prompt token too big", 0, "prompt[2]", SET, o_uint(1ull << 31), "gen_request.prompt[2]", NULL);
    refuse_edit("prompt token as a string", 0, "prompt[0]", SET, o_str("7"), "gen_request.prompt[0]", "got a string");
    refuse_edit("prompt empty", 0, "prompt", SET, o_array(NULL, 0), "gen_request.prompt", "at least 1");
    refuse_edit("sampling not a map", 0, "sampling", SET, o_uint(1), "gen_request.sampling", "expected a map");
    refuse_edit("temperature negative", 0, "sampling.temperature", SET, o_f64(-0.5), "gen_request.sampling.temperature",
                "outside");
    refuse_edit("temperature NaN", 0, "sampling.temperature", SET, o_f64(NAN), "gen_request.sampling.temperature",
                "not a finite");
    refuse_edit("temperature beyond float32", 0, "sampling.temperature", SET, o_f64(1e300),
                "gen_request.sampling.temperature", "float32");
    refuse_edit("temperature as a string", 0, "sampling.temperature", SET, o_str("hot"),
                "gen_request.sampling.temperature", "expected a number");
    refuse_edit("top_p above 1", 0, "sampling.top_p", SET, o_f64(1.5), "gen_request.sampling.top_p", "(0, 1]");
    refuse_edit("top_p zero", 0, "sampling.top_p", SET, o_uint(0), "gen_request.sampling.top_p", NULL);
    refuse_edit("top_k negative", 0, "sampling.top_k", SET, o_int(-1), "gen_request.sampling.top_k", "negative");
    refuse_edit("top_logprobs 21", 0, "sampling.top_logprobs", SET, o_uint(21), "gen_request.sampling.top_logprobs",
                "[0, 20]");
    refuse_edit("top_logprobs without logprobs", 0, "sampling.logprobs", SET, o_bool(false),
                "gen_request.sampling.top_logprobs", "needs logprobs");
    refuse_edit("logprobs as an integer", 0, "sampling.logprobs", SET, o_uint(1), "gen_request.sampling.logprobs",
                "expected a boolean");
    refuse_edit("seed negative", 0, "sampling.seed", SET, o_int(-3), "gen_request.sampling.seed", NULL);
    refuse_edit("sampling field missing", 0, "sampling.seed", DROP, o_uint(0), "gen_request.sampling.seed",
                "missing field");
    refuse_edit("n zero", 0, "n", SET, o_uint(0), "gen_request.n", "[1, 1024]");
    refuse_edit("n too large", 0, "n", SET, o_uint(5000), "gen_request.n", NULL);
    refuse_edit("n beyond uint32", 0, "n", SET, o_uint(1ull << 33), "gen_request.n", "exceeds");
    refuse_edit("max_tokens zero", 0, "max_tokens", SET, o_uint(0), "gen_request.max_tokens", NULL);
    refuse_edit("stop_token_ids oversized", 0, "stop_token_ids", SET, o_array(items, PROTO_MAX_STOP_TOKENS + 1),
                "gen_request.stop_token_ids", "exceed the limit of 64");
    refuse_edit("stop_strings element not a string", 0, "stop_strings", SET, o_array(two, 2),
                "gen_request.stop_strings[0]", "expected a string");
    refuse_edit("stop string empty", 0, "stop_strings[1]", SET, o_str(""), "gen_request.stop_strings[1]", "empty");
    refuse_edit("stop string with NUL", 0, "stop_strings[0]", SET, nul, "gen_request.stop_strings[0]", "NUL");
    refuse_edit("env_id too long", 0, "env_id", SET, o_str(long_name), "gen_request.env_id", "exceed the limit");
    refuse_edit("metadata not a map", 0, "metadata", SET, o_array(NULL, 0), "gen_request.metadata", "expected a map");
    refuse_edit("metadata value not a string", 0, "metadata.split", SET, o_uint(3), "gen_request.metadata[\"split\"]",
                "expected a string");
    refuse_edit("metadata key repeated", 0, "metadata.split", DUPLICATE, o_uint(0), "gen_request.metadata",
                "appears twice");
    refuse_edit("metadata key empty", 0, "metadata.split", RENAME, o_str(""), "gen_request.metadata key", "empty");
    refuse_edit("metadata key not a string", 0, "metadata.split", RENAME, o_uint(1), "gen_request.metadata key",
                "expected a string");
    refuse_edit("unknown field", 0, "env_id", RENAME, o_str("environment"), "gen_request",
                "unknown field \"environment\"");
    refuse_edit("missing field", 0, "max_tokens", DROP, o_uint(0), "gen_request.max_tokens", "missing field");
    refuse_edit("repeated field", 0, "group_id", DUPLICATE, o_uint(0), "gen_request.id", "appears twice");
    refuse_edit("key not a string", 0, "n", RENAME, o_uint(4), "gen_request", "key is an unsigned integer");

    // trajectory
    refuse_edit("generated flag count", 2, "generated", SET, o_array(bools, 2), "trajectory.generated", "2 flags");
    refuse_edit("generated flag type", 2, "generated[1]", SET, o_uint(1), "trajectory.generated[1]",
                "expected a boolean");
    refuse_edit("logprob positive", 2, "logprobs[4]", SET, o_f64(0.25), "trajectory.logprobs[4]", "logprob");
    refuse_edit("logprob -inf", 2, "logprobs[0]", SET, o_f64(-INFINITY), "trajectory.logprobs[0]", "finite");
    refuse_edit("logprob count", 2, "logprobs", SET, o_array(two, 2), "trajectory.model_logprobs", "7 values for 2");
    refuse_edit("logprob arrays empty but tokens", 2, "logprobs", SET, o_array(NULL, 0), "trajectory.model_logprobs",
                NULL);
    refuse_edit("model_logprob positive", 2, "model_logprobs[6]", SET, o_f64(1e-3), "trajectory.model_logprobs[6]",
                "logprob");
    refuse_edit("appended token with a logprob", 4, "logprobs[3]", SET, o_f64(-1), "trajectory.logprobs[3]",
                "appended");
    refuse_edit("weight_version count", 2, "weight_version", SET, o_array(two, 2), "trajectory.weight_version",
                "2 versions");
    refuse_edit("weight_version negative", 2, "weight_version[0]", SET, o_int(-1), "trajectory.weight_version[0]",
                "negative");
    refuse_edit("top_k 21", 4, "top_k", SET, o_uint(21), "trajectory.top_k", NULL);
    refuse_edit("top_ids count", 4, "top_ids", SET, o_array(two, 2), "trajectory.top_logprobs", "2 top_ids");
    refuse_edit("top_ids element", 4, "top_ids", SET, o_array(wrong_elems, 2), "trajectory.top_ids[1]", NULL);
    refuse_edit("finish_reason unknown", 2, "finish_reason", SET, o_str("bored"), "trajectory.finish_reason",
                "\"bored\"");
    refuse_edit("finish_reason as a number", 2, "finish_reason", SET, o_uint(0), "trajectory.finish_reason",
                "expected a string");
    refuse_edit("n_turns zero", 2, "n_turns", SET, o_uint(0), "trajectory.n_turns", NULL);
    refuse_edit("queue_s negative", 2, "queue_s", SET, o_f64(-1), "trajectory.queue_s", "outside");
    refuse_edit("decode_s NaN", 2, "decode_s", SET, o_f64(NAN), "trajectory.decode_s", "finite");
    refuse_edit("sample_index too big", 2, "sample_index", SET, o_uint(PROTO_MAX_N), "trajectory.sample_index", NULL);
    refuse_edit("completion longer than its flags", 2, "completion", SET, o_array(items, 3), "trajectory.generated",
                "7 flags for 3");

    // reward_request / reward_result
    refuse_edit("verifier empty", 5, "verifier", SET, o_str(""), "reward_request.verifier", "empty");
    refuse_edit("completion_text as binary", 5, "completion_text", SET,
                (msgpack_object){.type = MSGPACK_OBJECT_BIN, .via.bin = {3, "abc"}}, "reward_request.completion_text",
                "got binary");
    refuse_edit("completion_tokens element", 5, "completion_tokens[6]", SET, o_f64(1.5),
                "reward_request.completion_tokens[6]", "got a float");
    refuse_edit("reward NaN", 7, "reward", SET, o_f64(NAN), "reward_result.reward", "finite");
    refuse_edit("reward as a string", 7, "reward", SET, o_str("1"), "reward_result.reward", "expected a number");
    refuse_edit("score not a number", 7, "scores.format", SET, o_str("yes"), "reward_result.scores[\"format\"]",
                "expected a number");
    refuse_edit("score infinite", 7, "scores.exact", SET, o_f64(INFINITY), "reward_result.scores[\"exact\"]", "finite");
    refuse_edit("score name repeated", 7, "scores.exact", DUPLICATE, o_uint(0), "reward_result.scores",
                "appears twice");
    refuse_edit("error not a string", 8, "error", SET, o_bool(true), "reward_result.error", NULL);

    // weight_notice / control / heartbeat
    refuse_edit("transport unknown", 9, "transport", SET, o_str("rdma"), "weight_notice.transport", "\"rdma\"");
    refuse_edit("checksum negative", 9, "checksum", SET, o_int(-9), "weight_notice.checksum", "negative");
    refuse_edit("command unknown", 11, "command", SET, o_str("reboot"), "control.command", "\"reboot\"");
    refuse_edit("reason missing", 11, "reason", DROP, o_uint(0), "control.reason", "missing");
    refuse_edit("role unknown", 13, "role", SET, o_str("admin"), "heartbeat.role", NULL);
    refuse_edit("sender empty", 13, "sender", SET, o_str(""), "heartbeat.sender", "empty");
    refuse_edit("memory_used above 1", 13, "memory_used", SET, o_f64(1.01), "heartbeat.memory_used", NULL);
    refuse_edit("timestamp negative", 13, "timestamp", SET, o_int(-5), "heartbeat.timestamp", NULL);
    refuse_edit("queued beyond uint32", 13, "queued", SET, o_uint(1ull << 32), "heartbeat.queued", NULL);
    free(long_name);

    // leniency that loses nothing: integers and float64 in float fields decode
    const proto_msg hb = sample_msg(13);
    msgpack_sbuffer b;
    msgpack_object one = o_uint(1);
    mutated(&hb, "memory_used", SET, &one, &b);
    proto_heartbeat h;
    const int rc = proto_heartbeat_decode(b.data, b.size, &h);
    report("integer accepted in a float field", rc == 0 && h.memory_used == 1.0, "%s", hy_last_error());
    if (rc == 0) proto_heartbeat_free(&h);
    msgpack_sbuffer_destroy(&b);
}

// ---------------------------------------------------------------- cases: keys and endpoints

static void write_text(const char *path, const char *text, mode_t mode) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void case_keys(void) {
    char prefix[300], path[320], path2[320];
    snprintf(prefix, sizeof prefix, "%s/server", g_tmp);
    char pub[PROTO_KEY_Z85_LEN + 1];
    report("keygen", proto_keygen(prefix, pub) == 0 && strlen(pub) == 40, "%s", hy_last_error());
    report("keygen refuses to overwrite",
           proto_keygen(prefix, NULL) != 0 && strstr(hy_last_error(), "refusing to overwrite"), "%s", hy_last_error());
    snprintf(path, sizeof path, "%s.key", prefix);
    struct stat st;
    report("key pair file is 0600", stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "mode %o", st.st_mode & 0777);
    proto_keypair kp;
    report("key pair reads back", proto_keypair_read(path, &kp) == 0 && strcmp(kp.public_key, pub) == 0, "%s",
           hy_last_error());
    snprintf(path2, sizeof path2, "%s.pub", prefix);
    char pub2[PROTO_KEY_Z85_LEN + 1];
    report("public key reads back", proto_public_key_read(path2, pub2) == 0 && strcmp(pub2, pub) == 0, "%s",
           hy_last_error());
    report("public key file refused as a pair",
           proto_keypair_read(path2, &kp) != 0 && strstr(hy_last_error(), "one secret-key"), "%s", hy_last_error());
    report("pair file refused where a public key is expected",
           proto_public_key_read(path, pub2) != 0 && strstr(hy_last_error(), "holds a secret key"), "%s",
           hy_last_error());
    chmod(path, 0640);
    report("group-readable secret refused", proto_keypair_read(path, &kp) != 0 && strstr(hy_last_error(), "chmod 600"),
           "%s", hy_last_error());
    chmod(path, 0600);

    // an authorized-keys file is public key files concatenated
    proto_keypair a, b2;
    proto_keypair_generate(&a);
    proto_keypair_generate(&b2);
    char text[512];
    snprintf(text, sizeof text, "hybrid-curve-keys 1\npublic-key %s\r\n\n# second client\nhybrid-curve-keys 1\n"
             "public-key   %s  \n", a.public_key, b2.public_key);
    proto_key_list l;
    const int rc = proto_keys_parse(text, strlen(text), "authorized", &l, pub2);
    // the repeated magic line is not a comment: it must be refused (line 5)
    report("repeated header refused", rc != 0 && strstr(hy_last_error(), "authorized:5"), "%s", hy_last_error());
    snprintf(text, sizeof text, "hybrid-curve-keys 1\npublic-key %s\r\n\n# second client\npublic-key   %s  \n",
             a.public_key, b2.public_key);
    snprintf(path, sizeof path, "%s/authorized", g_tmp);
    write_text(path, text, 0644);
    report("authorized keys read", proto_authorized_keys_read(path, &l) == 0 && l.n == 2 &&
                                       strcmp(l.keys[1], b2.public_key) == 0,
           "%s", hy_last_error());
    proto_key_list_free(&l);

    struct {
        const char *name, *text, *needle;
    } bad[] = {
        {"no header", "public-key 0000000000000000000000000000000000000000\n", "not a hybrid key file"},
        {"future version", "hybrid-curve-keys 2\n", "version \"2\" is not supported"},
        {"short key", "hybrid-curve-keys 1\npublic-key abc\n", ":2: the key is not 40 Z85"},
        {"bad character", "hybrid-curve-keys 1\npublic-key 000000000000000000000000000000000000000~\n", ":2:"},
        {"unknown entry", "hybrid-curve-keys 1\nprivate-key 0000000000000000000000000000000000000000\n",
         ":2: expected"},
        {"empty file", "", "empty"},
    };
    for (int i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
        char name[96], sec[PROTO_KEY_Z85_LEN + 1];
        snprintf(name, sizeof name, "key file: %s", bad[i].name);
        const int r = proto_keys_parse(bad[i].text, strlen(bad[i].text), "k", &l, sec);
        report(name, r != 0 && strstr(hy_last_error(), bad[i].needle), "%s", hy_last_error());
        if (r == 0) proto_key_list_free(&l);
    }
    // a pair whose halves do not belong together
    snprintf(text, sizeof text, "hybrid-curve-keys 1\npublic-key %s\nsecret-key %s\n", a.public_key, b2.secret_key);
    snprintf(path, sizeof path, "%s/mismatch.key", g_tmp);
    write_text(path, text, 0600);
    report("mismatched pair refused", proto_keypair_read(path, &kp) != 0 && strstr(hy_last_error(), "does not belong"),
           "%s", hy_last_error());
}

static void case_endpoints(void) {
    struct {
        const char *ep;
        int want;
    } cases[] = {
        {"tcp://127.0.0.1:5555", 1}, {"tcp://127.0.0.1:*", 1},    {"tcp://127.1.2.3:80", 1},
        {"tcp://localhost:9000", 1}, {"tcp://[::1]:7000", 1},     {"tcp://[::ffff:127.0.0.1]:7000", 1},
        {"ipc:///tmp/x.sock", 1},    {"inproc://work", 1},        {"tcp://0.0.0.0:5555", 0},
        {"tcp://*:5555", 0},         {"tcp://10.0.0.7:5555", 0},  {"tcp://128.0.0.1:5555", 0},
        {"tcp://[::]:5555", 0},      {"tcp://eth0:5555", 0},      {"tcp://gpu-node-3:5555", 0},
        {"tcp://127.0.0.1;10.0.0.7:5555", 0},                     {"tcp://10.0.0.7:1;127.0.0.1:5555", 1},
        {"tcp://127.0.0.1", -1},     {"tcp://127.0.0.1:0", -1},   {"tcp://127.0.0.1:65536", -1},
        {"tcp://:5555", -1},         {"pgm://eth0;239.1.1.1:5555", -1}, {"ipc://", -1},
        {"udp://127.0.0.1:5555", -1}, {"tcp://[::1:5555", -1},
    };
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        char name[96];
        snprintf(name, sizeof name, "endpoint %s", cases[i].ep);
        const int got = proto_endpoint_is_local(cases[i].ep);
        report(name, got == cases[i].want, "got %d, want %d (%s)", got, cases[i].want, hy_last_error());
    }
}

// ---------------------------------------------------------------- cases: ZeroMQ

static proto_socket *open_socket(proto_ctx *c, int type, int hwm, const char *key, const char *server_key,
                                 const char *authorized, const char *routing_id) {
    proto_socket_opts o;
    proto_socket_opts_default(&o);
    o.hwm = hwm;
    o.linger_ms = 0;
    o.key_file = key;
    o.server_key_file = server_key;
    o.authorized_keys = authorized;
    o.routing_id = routing_id;
    proto_socket *s = proto_socket_new(c, type, &o);
    if (!s) printf("FAIL open socket: %s\n", hy_last_error()), n_fail++;
    return s;
}

// Sends every sample over push and receives each on pull, byte-identical after re-encoding.
static void exchange_samples(const char *name, proto_socket *push, proto_socket *pull) {
    int ok = 1;
    for (int i = 0; i < N_SAMPLES && ok; i++) {
        const proto_msg m = sample_msg(i);
        if (proto_socket_send(push, NULL, &m, 2000) != 0) {
            report(name, 0, "send %d: %s", i, hy_last_error());
            return;
        }
        proto_msg got;
        const int rc = proto_socket_recv(pull, &got, NULL, 2000);
        if (rc != 0) {
            report(name, 0, "recv %d returned %d: %s", i, rc, hy_last_error());
            return;
        }
        msgpack_sbuffer a, b;
        encode(&m, &a);
        encode(&got, &b);
        ok = a.size == b.size && memcmp(a.data, b.data, a.size) == 0;
        proto_msg_free(&got);
        msgpack_sbuffer_destroy(&a);
        msgpack_sbuffer_destroy(&b);
    }
    report(name, ok, "a message changed in transit");
}

static void case_tcp_ipc(void) {
    proto_ctx *c = proto_ctx_new();
    proto_socket *pull = open_socket(c, ZMQ_PULL, 16, NULL, NULL, NULL, NULL);
    proto_socket *push = open_socket(c, ZMQ_PUSH, 16, NULL, NULL, NULL, NULL);
    const int b = proto_socket_bind(pull, "tcp://127.0.0.1:*");
    report("tcp bind ephemeral", b == 0 && strncmp(proto_socket_endpoint(pull), "tcp://127.0.0.1:", 16) == 0 &&
                                     strcmp(proto_socket_endpoint(pull), "tcp://127.0.0.1:*") != 0,
           "%s / %s", hy_last_error(), proto_socket_endpoint(pull));
    report("tcp connect", proto_socket_connect(push, proto_socket_endpoint(pull)) == 0, "%s", hy_last_error());
    exchange_samples("tcp PUSH/PULL samples", push, pull);
    proto_msg m;
    report("recv times out when idle", proto_socket_recv(pull, &m, NULL, 50) == 1, "%s", hy_last_error());
    report("a socket binds or connects, not both",
           proto_socket_bind(push, "tcp://127.0.0.1:*") != 0 && strstr(hy_last_error(), "either binds or connects"),
           "%s", hy_last_error());
    proto_socket_destroy(push);
    proto_socket_destroy(pull);

    // ipc, DEALER / ROUTER with a reply to the sender
    char ep[400];
    snprintf(ep, sizeof ep, "ipc://%s/router.ipc", g_tmp);
    proto_socket *router = open_socket(c, ZMQ_ROUTER, 16, NULL, NULL, NULL, NULL);
    proto_socket *dealer = open_socket(c, ZMQ_DEALER, 16, NULL, NULL, NULL, "rollout-0");
    report("ipc bind", proto_socket_bind(router, ep) == 0, "%s", hy_last_error());
    report("ipc connect", proto_socket_connect(dealer, ep) == 0, "%s", hy_last_error());
    const proto_msg hb = sample_msg(13), ctl = sample_msg(11);
    char peer[PROTO_PEER_ID_MAX + 1];
    int rc = proto_socket_send(dealer, NULL, &hb, 1000);
    rc = rc ? rc : proto_socket_recv(router, &m, peer, 1000);
    report("ipc DEALER to ROUTER", rc == 0 && m.type == PROTO_HEARTBEAT && strcmp(peer, "rollout-0") == 0 &&
                                       strcmp(m.u.heartbeat.sender, hb.u.heartbeat.sender) == 0,
           "rc %d peer '%s': %s", rc, peer, hy_last_error());
    if (rc == 0) proto_msg_free(&m);
    rc = proto_socket_send(router, "rollout-0", &ctl, 1000);
    rc = rc ? rc : proto_socket_recv(dealer, &m, NULL, 1000);
    report("ipc ROUTER reply to the peer", rc == 0 && m.type == PROTO_CONTROL && m.u.control.command == PROTO_CMD_DRAIN,
           "rc %d: %s", rc, hy_last_error());
    if (rc == 0) proto_msg_free(&m);
    report("ROUTER send to an unknown peer fails",
           proto_socket_send(router, "nobody", &ctl, 100) == -1 && strstr(hy_last_error(), "no connected peer"), "%s",
           hy_last_error());
    report("ROUTER send needs a peer", proto_socket_send(router, NULL, &ctl, 100) == -1, "sent");
    // a DEALER without a routing id cannot be answered: its messages are dropped with a reason
    proto_socket *anon = open_socket(c, ZMQ_DEALER, 16, NULL, NULL, NULL, NULL);
    proto_socket_connect(anon, ep);
    proto_socket_send(anon, NULL, &hb, 1000);
    rc = proto_socket_recv(router, &m, peer, 1000);
    report("ROUTER drops a peer without routing id", rc == -1 && strstr(hy_last_error(), "routing_id"), "rc %d: %s", rc,
           hy_last_error());
    proto_socket_destroy(anon);
    proto_socket_destroy(dealer);
    proto_socket_destroy(router);

    // proto_poll over two receivers
    proto_socket *p1 = open_socket(c, ZMQ_PULL, 16, NULL, NULL, NULL, NULL);
    proto_socket *p2 = open_socket(c, ZMQ_PULL, 16, NULL, NULL, NULL, NULL);
    proto_socket *s2 = open_socket(c, ZMQ_PUSH, 16, NULL, NULL, NULL, NULL);
    proto_socket_bind(p1, "tcp://127.0.0.1:*");
    proto_socket_bind(p2, "inproc://poll-two");
    proto_socket_connect(s2, "inproc://poll-two");
    int readable[2] = {-1, -1};
    report("poll times out", proto_poll((proto_socket *const[]){p1, p2}, 2, 30, readable) == 0, "%s", hy_last_error());
    proto_socket_send(s2, NULL, &ctl, 1000);
    const int n = proto_poll((proto_socket *const[]){p1, p2}, 2, 1000, readable);
    report("poll finds the readable socket", n == 1 && readable[0] == 0 && readable[1] == 1, "n %d [%d %d]", n,
           readable[0], readable[1]);
    proto_socket_destroy(s2);
    proto_socket_destroy(p1);
    proto_socket_destroy(p2);
    proto_ctx_destroy(c);
}

// A 1 MB trajectory frame per message; with HWM 1 on both sides and a reader that does not read,
// sends must start timing out after a handful (kernel socket buffers hold a few MB on loopback).
static void case_backpressure(void) {
    proto_ctx *c = proto_ctx_new();
    proto_socket *pull = open_socket(c, ZMQ_PULL, 1, NULL, NULL, NULL, NULL);
    proto_socket *push = open_socket(c, ZMQ_PUSH, 1, NULL, NULL, NULL, NULL);
    proto_socket_bind(pull, "tcp://127.0.0.1:*");
    proto_socket_connect(push, proto_socket_endpoint(pull));
    enum { NT = 200000 };
    int32_t *tok = malloc(NT * sizeof *tok);
    uint8_t *gen = malloc(NT);
    uint64_t *ver = malloc(NT * sizeof *ver);
    for (int i = 0; i < NT; i++) tok[i] = 100000 + i, gen[i] = 1, ver[i] = 1;
    proto_msg m = {.type = PROTO_TRAJECTORY};
    m.u.trajectory = (proto_trajectory){.prompt = tok, .n_prompt = 1, .completion = tok, .n_completion = NT,
                                        .generated = gen, .weight_version = ver, .n_turns = 1};
    msgpack_sbuffer frame;
    encode(&m, &frame);  // once: the same frame every time keeps sanitizer runs short
    int sent = 0, rc = 0;
    double waited = 0;
    while (sent < 200) {
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = proto_socket_send_raw(push, NULL, frame.data, frame.size, 200);
        waited = seconds_since(&t0);
        if (rc != 0) break;
        sent++;
    }
    report("send times out when the peer does not read",
           rc == 1 && sent >= 1 && sent < 100 && waited >= 0.15 && strstr(hy_last_error(), "high-water mark"),
           "rc %d after %d sends, waited %.3f s: %s", rc, sent, waited, hy_last_error());
    printf("     backpressure: %d messages of ~1 MB queued before the send timed out\n", sent);
    // the reader catches up: everything queued arrives intact, and sending works again
    int got = 0, intact = 1;
    proto_msg r;
    while (got < sent && proto_socket_recv(pull, &r, NULL, 1000) == 0) {
        intact &= r.type == PROTO_TRAJECTORY && r.u.trajectory.n_completion == NT;
        proto_msg_free(&r);
        got++;
    }
    report("nothing lost under backpressure", got == sent && intact, "got %d of %d", got, sent);
    msgpack_sbuffer_destroy(&frame);
    rc = proto_socket_send(push, NULL, &m, 2000);
    report("send works again once the peer reads", rc == 0, "rc %d: %s", rc, hy_last_error());
    if (proto_socket_recv(pull, &r, NULL, 2000) == 0) proto_msg_free(&r);
    free(tok), free(gen), free(ver);
    proto_socket_destroy(push);
    proto_socket_destroy(pull);
    proto_ctx_destroy(c);
}

// A receiving loop meets garbage, a wrong magic, a bad field and a multi-part message, drops each
// with a message, and then receives the good frame that follows.
static void case_bad_frames_dropped(void) {
    proto_ctx *c = proto_ctx_new();
    proto_socket *pull = open_socket(c, ZMQ_PULL, 16, NULL, NULL, NULL, NULL);
    proto_socket *push = open_socket(c, ZMQ_PUSH, 16, NULL, NULL, NULL, NULL);
    proto_socket_bind(pull, "tcp://127.0.0.1:*");
    proto_socket_connect(push, proto_socket_endpoint(pull));
    const proto_msg good = sample_msg(2);
    msgpack_sbuffer wrong_magic, bad_field;
    const msgpack_object magic = o_str("XXXX"), lp = o_f64(3.0);
    mutated(&good, "header[0]", SET, &magic, &wrong_magic);
    mutated(&good, "logprobs[2]", SET, &lp, &bad_field);
    proto_socket_send_raw(push, NULL, "\xde\xad\xbe\xef", 4, 1000);
    proto_socket_send_raw(push, NULL, wrong_magic.data, wrong_magic.size, 1000);
    proto_socket_send_raw(push, NULL, bad_field.data, bad_field.size, 1000);
    void *z = proto_socket_handle(push);
    zmq_send(z, "part1", 5, ZMQ_SNDMORE);
    zmq_send(z, "part2", 5, 0);
    proto_socket_send(push, NULL, &good, 1000);
    const char *want[] = {"malformed", "wrong magic", "trajectory.logprobs[2]", "2 parts"};
    proto_msg m;
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "bad frame %d dropped", i);
        const int rc = proto_socket_recv(pull, &m, NULL, 1000);
        report(name, rc == -1 && strstr(hy_last_error(), want[i]) && strstr(hy_last_error(), "proto recv on tcp://") &&
                         strstr(hy_last_error(), "127.0.0.1"),
               "rc %d: %s", rc, hy_last_error());
        if (rc == 0) proto_msg_free(&m);
    }
    const int rc = proto_socket_recv(pull, &m, NULL, 1000);
    report("good frame after bad ones", rc == 0 && m.type == PROTO_TRAJECTORY && m.u.trajectory.id == 1001, "rc %d: %s",
           rc, hy_last_error());
    if (rc == 0) proto_msg_free(&m);
    msgpack_sbuffer_destroy(&wrong_magic);
    msgpack_sbuffer_destroy(&bad_field);
    proto_socket_destroy(push);
    proto_socket_destroy(pull);
    proto_ctx_destroy(c);
}

// CURVE on 127.0.0.1: the authorized client gets through; a plaintext client, a client whose key is
// not authorized and a client with the wrong server key are refused, and each refusal is logged.
static void case_curve(void) {
    char server[300], client[300], rogue[300], server_key[320], server_pub[320], client_key[320], client_pub[320],
        rogue_key[320], rogue_pub[320];
    snprintf(server, sizeof server, "%s/curve-server", g_tmp);
    snprintf(client, sizeof client, "%s/curve-client", g_tmp);
    snprintf(rogue, sizeof rogue, "%s/curve-rogue", g_tmp);
    char rogue_public[PROTO_KEY_Z85_LEN + 1];
    if (proto_keygen(server, NULL) || proto_keygen(client, NULL) || proto_keygen(rogue, rogue_public)) {
        report("curve keygen", 0, "%s", hy_last_error());
        return;
    }
    snprintf(server_key, sizeof server_key, "%s.key", server);
    snprintf(server_pub, sizeof server_pub, "%s.pub", server);
    snprintf(client_key, sizeof client_key, "%s.key", client);
    snprintf(client_pub, sizeof client_pub, "%s.pub", client);
    snprintf(rogue_key, sizeof rogue_key, "%s.key", rogue);
    snprintf(rogue_pub, sizeof rogue_pub, "%s.pub", rogue);

    proto_ctx *c = proto_ctx_new();
    proto_log_set(capture_log, NULL);
    proto_socket *pull = open_socket(c, ZMQ_PULL, 16, server_key, NULL, client_pub, NULL);
    report("curve bind on loopback", proto_socket_bind(pull, "tcp://127.0.0.1:*") == 0, "%s", hy_last_error());
    const char *ep = proto_socket_endpoint(pull);
    const proto_msg msg = sample_msg(11);
    proto_msg m;

    proto_socket *good = open_socket(c, ZMQ_PUSH, 16, client_key, server_pub, NULL, NULL);
    proto_socket_connect(good, ep);
    int rc = proto_socket_send(good, NULL, &msg, 1000);
    rc = rc ? rc : proto_socket_recv(pull, &m, NULL, 2000);
    uint64_t admitted, refused;
    proto_ctx_auth_counts(c, &admitted, &refused);
    report("curve: authorized client exchanges", rc == 0 && m.type == PROTO_CONTROL && admitted >= 1,
           "rc %d admitted %llu: %s", rc, (unsigned long long)admitted, hy_last_error());
    if (rc == 0) proto_msg_free(&m);
    proto_socket_destroy(good);

    // not authorized: ZAP refuses the key
    log_clear();
    proto_socket *bad = open_socket(c, ZMQ_PUSH, 16, rogue_key, server_pub, NULL, NULL);
    proto_socket_connect(bad, ep);
    proto_socket_send(bad, NULL, &msg, 1000);  // queued locally: the connection never completes
    rc = proto_socket_recv(pull, &m, NULL, 400);
    proto_ctx_auth_counts(c, &admitted, &refused);
    char needle[120];
    snprintf(needle, sizeof needle, "refused CURVE client %s from 127.0.0.1", rogue_public);
    report("curve: unauthorized key refused and logged", rc == 1 && refused >= 1 && log_has(needle),
           "rc %d refused %llu log: %s", rc, (unsigned long long)refused, g_log);
    if (rc == 0) proto_msg_free(&m);
    proto_socket_destroy(bad);

    // no keys at all (plaintext is allowed by our API on loopback, but the server speaks CURVE)
    log_clear();
    proto_socket *plain = open_socket(c, ZMQ_PUSH, 16, NULL, NULL, NULL, NULL);
    proto_socket_connect(plain, ep);
    proto_socket_send(plain, NULL, &msg, 1000);
    rc = proto_socket_recv(pull, &m, NULL, 400);
    report("curve: plaintext client refused and logged", rc == 1 && log_has("mechanism mismatch"), "rc %d log: %s", rc,
           g_log);
    if (rc == 0) proto_msg_free(&m);
    proto_socket_destroy(plain);

    // an authorized client key but the wrong server key: the server cannot open the handshake
    log_clear();
    proto_socket *wrong = open_socket(c, ZMQ_PUSH, 16, client_key, rogue_pub, NULL, NULL);
    proto_socket_connect(wrong, ep);
    proto_socket_send(wrong, NULL, &msg, 1000);
    rc = proto_socket_recv(pull, &m, NULL, 400);
    report("curve: wrong server key refused and logged", rc == 1 && log_has("handshake with a peer"), "rc %d log: %s",
           rc, g_log);
    if (rc == 0) proto_msg_free(&m);
    proto_socket_destroy(wrong);
    proto_socket_destroy(pull);

    // the API refuses network addresses without CURVE, and CURVE without its other half
    proto_socket *s = open_socket(c, ZMQ_PULL, 16, NULL, NULL, NULL, NULL);
    report("bind 0.0.0.0 without keys refused",
           proto_socket_bind(s, "tcp://0.0.0.0:*") != 0 && strstr(hy_last_error(), "needs CURVE"), "%s",
           hy_last_error());
    report("bind * without keys refused", proto_socket_bind(s, "tcp://*:*") != 0, "bound");
    report("connect to a network address without keys refused",
           proto_socket_connect(s, "tcp://192.0.2.1:5555") != 0 && strstr(hy_last_error(), "needs CURVE"), "%s",
           hy_last_error());
    proto_socket_destroy(s);
    s = open_socket(c, ZMQ_PULL, 16, server_key, NULL, NULL, NULL);
    report("CURVE server without authorized keys refused",
           proto_socket_bind(s, "tcp://127.0.0.1:*") != 0 && strstr(hy_last_error(), "authorized_keys"), "%s",
           hy_last_error());
    proto_socket_destroy(s);
    s = open_socket(c, ZMQ_PUSH, 16, client_key, NULL, NULL, NULL);
    report("CURVE client without server key refused",
           proto_socket_connect(s, "tcp://127.0.0.1:5555") != 0 && strstr(hy_last_error(), "server_key_file"), "%s",
           hy_last_error());
    proto_socket_destroy(s);
    proto_socket_opts o;
    proto_socket_opts_default(&o);
    o.authorized_keys = client_pub;
    report("authorized keys without a key pair refused",
           proto_socket_new(c, ZMQ_PULL, &o) == NULL && strstr(hy_last_error(), "key_file"), "%s", hy_last_error());
    o.authorized_keys = NULL;
    o.key_file = server_pub;
    report("a public key file as the key pair refused", proto_socket_new(c, ZMQ_PULL, &o) == NULL, "created");
    proto_ctx_destroy(c);
    proto_log_set(NULL, NULL);
}

// ---------------------------------------------------------------- driver

static const struct {
    const char *name;
    void (*fn)(void);
} k_cases[] = {
    {"roundtrip", case_roundtrip},   {"maximal", case_maximal},       {"encode_checks", case_encode_checks},
    {"frame_errors", case_frame_errors}, {"field_errors", case_field_errors}, {"keys", case_keys},
    {"endpoints", case_endpoints},   {"tcp_ipc", case_tcp_ipc},       {"backpressure", case_backpressure},
    {"bad_frames_dropped", case_bad_frames_dropped}, {"curve", case_curve},
};

static void remove_tree(const char *dir) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_proto SOURCE_DIR [CASE]\n");
        return 2;
    }
    const char *only = argc > 2 ? argv[2] : NULL;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/test_proto.XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 1;
    }
    int ran = 0;
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
        if (only && strcmp(only, k_cases[i].name) != 0) continue;
        const int before = n_fail;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        k_cases[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("%s %-20s %.2f s\n", n_fail == before ? "ok  " : "FAIL", k_cases[i].name,
               (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
        ran++;
    }
    remove_tree(g_tmp);
    if (!ran) {
        fprintf(stderr, "no case named %s; cases:", only);
        for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) fprintf(stderr, " %s", k_cases[i].name);
        fprintf(stderr, "\n");
        return 2;
    }
    printf("%d checks passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
