// Encode, decode and check for every protocol message (see messages.h; fields in docs/proto.md).
//
// Decoding is two passes over a frame that proto_frame_open has already bounded and unpacked:
// a reader per message takes each field from the body map with its msgpack type checked and
// converts it to the C field (only "does it fit the C type" there), then the message's check
// function applies every range rule — the same function the encoder runs, so the two sides can
// never disagree about what is valid. Readers copy everything they keep out of the msgpack zone,
// which is freed before decode returns.
//
// Type leniency, on purpose and only where no information is lost: a float field accepts float32,
// float64 or an integer (Python packs 1.0 as float64 and 1 as int); an integer field accepts only
// integers; strings must be msgpack str (not bin) without NUL bytes, since they become C strings.
#include "proto/messages.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/hy_error.h"

// ---------------------------------------------------------------- enum names

static const char *const k_finish[] = {"eos", "stop", "length", "max_len", "env", "abort", "error"};
static const char *const k_transport[] = {"nccl", "zmq", "inplace"};
static const char *const k_command[] = {"pause", "resume", "drain", "shutdown"};
static const char *const k_role[] = {"orchestrator", "rollout", "learner", "verifier"};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *enum_name(const char *const *names, int n, int v) { return v >= 0 && v < n ? names[v] : NULL; }
const char *proto_finish_name(proto_finish f) { return enum_name(k_finish, COUNT(k_finish), (int)f); }
const char *proto_weight_transport_name(proto_weight_transport t) {
    return enum_name(k_transport, COUNT(k_transport), (int)t);
}
const char *proto_command_name(proto_command c) { return enum_name(k_command, COUNT(k_command), (int)c); }
const char *proto_role_name(proto_role r) { return enum_name(k_role, COUNT(k_role), (int)r); }

// ---------------------------------------------------------------- readers: msgpack object → C field
// `msg` is the error prefix: the message name, or "gen_request.sampling" inside a nested map.

static const char *kind(const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "a boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return "an unsigned integer";
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "a negative integer";
    case MSGPACK_OBJECT_FLOAT32: case MSGPACK_OBJECT_FLOAT64: return "a float";
    case MSGPACK_OBJECT_STR: return "a string";
    case MSGPACK_OBJECT_BIN: return "binary";
    case MSGPACK_OBJECT_ARRAY: return "an array";
    case MSGPACK_OBJECT_MAP: return "a map";
    case MSGPACK_OBJECT_EXT: return "an extension value";
    }
    return "an unknown msgpack type";
}

static int bad_type(const char *msg, const char *field, const msgpack_object *o, const char *want) {
    return hy_fail("%s.%s: expected %s, got %s", msg, field, want, kind(o));
}

// A peer's string echoed into a message: at most 64 bytes, anything but printable ASCII as '?', so a
// hostile key cannot put newlines or escape codes into the logs.
static const char *echo(const msgpack_object *o, char out[68]) {
    const uint32_t n = o->via.str.size > 64 ? 64 : o->via.str.size;
    for (uint32_t i = 0; i < n; i++) {
        const unsigned char ch = (unsigned char)o->via.str.ptr[i];
        out[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    snprintf(out + n, 4, "%s", o->via.str.size > 64 ? "..." : "");
    return out;
}

// The same for a C string (map keys once decoded), at most 40 bytes.
static const char *echo_key(const char *s, char out[44]) {
    const msgpack_object o = {.type = MSGPACK_OBJECT_STR, .via.str = {(uint32_t)strnlen(s, 64), s}};
    char tmp[68];
    echo(&o, tmp);
    snprintf(out, 44, "%.40s", tmp);
    return out;
}

static int key_is(const msgpack_object *k, const char *name) {
    const size_t n = strlen(name);
    return k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0;
}

// Finds names[0..n) in a map; an unknown, repeated or missing key, or a key that is not a string,
// is an error. out[i] = the value of names[i].
static int map_fields(const char *msg, const msgpack_object *map, const char *const *names, int n,
                      const msgpack_object **out) {
    for (int i = 0; i < n; i++) out[i] = NULL;
    for (uint32_t j = 0; j < map->via.map.size; j++) {
        const msgpack_object *k = &map->via.map.ptr[j].key;
        if (k->type != MSGPACK_OBJECT_STR) return hy_fail("%s: a key is %s, not a string", msg, kind(k));
        int found = -1;
        for (int i = 0; i < n && found < 0; i++)
            if (key_is(k, names[i])) found = i;
        char shown[68];
        if (found < 0) return hy_fail("%s: unknown field \"%s\"", msg, echo(k, shown));
        if (out[found]) return hy_fail("%s.%s: field appears twice", msg, names[found]);
        out[found] = &map->via.map.ptr[j].val;
    }
    for (int i = 0; i < n; i++)
        if (!out[i]) return hy_fail("%s.%s: missing field", msg, names[i]);
    return 0;
}

static int get_uint(const char *msg, const char *field, const msgpack_object *o, uint64_t max, uint64_t *out) {
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return hy_fail("%s.%s: %" PRId64 " is negative", msg, field, o->via.i64);
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) return bad_type(msg, field, o, "an unsigned integer");
    if (o->via.u64 > max) return hy_fail("%s.%s: %" PRIu64 " exceeds %" PRIu64, msg, field, o->via.u64, max);
    *out = o->via.u64;
    return 0;
}

static int get_u32(const char *msg, const char *field, const msgpack_object *o, uint32_t *out) {
    uint64_t v;
    if (get_uint(msg, field, o, UINT32_MAX, &v)) return -1;
    *out = (uint32_t)v;
    return 0;
}

static int get_u64(const char *msg, const char *field, const msgpack_object *o, uint64_t *out) {
    return get_uint(msg, field, o, UINT64_MAX, out);
}

static int get_i32(const char *msg, const char *field, const msgpack_object *o, int32_t *out) {
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > INT32_MAX) return hy_fail("%s.%s: %" PRIu64 " exceeds %d", msg, field, o->via.u64, INT32_MAX);
        *out = (int32_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        if (o->via.i64 < INT32_MIN) return hy_fail("%s.%s: %" PRId64 " is below %d", msg, field, o->via.i64, INT32_MIN);
        *out = (int32_t)o->via.i64;
        return 0;
    }
    return bad_type(msg, field, o, "an integer");
}

static int get_f64(const char *msg, const char *field, const msgpack_object *o, double *out) {
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32: case MSGPACK_OBJECT_FLOAT64: *out = o->via.f64; return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double)o->via.u64; return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double)o->via.i64; return 0;
    default: return bad_type(msg, field, o, "a number");
    }
}

// float32 fields: a finite double beyond float's range is refused here (converting it is undefined
// behaviour in C); NaN and ±inf pass through for the check to reject with the field's range.
static int get_f32(const char *msg, const char *field, const msgpack_object *o, float *out) {
    double v = 0;
    if (get_f64(msg, field, o, &v)) return -1;
    if (isfinite(v) && fabs(v) > FLT_MAX) return hy_fail("%s.%s: %g is outside the float32 range", msg, field, v);
    *out = (float)v;
    return 0;
}

static int get_bool(const char *msg, const char *field, const msgpack_object *o, bool *out) {
    if (o->type != MSGPACK_OBJECT_BOOLEAN) return bad_type(msg, field, o, "a boolean");
    *out = o->via.boolean;
    return 0;
}

static int get_str(const char *msg, const char *field, const msgpack_object *o, uint32_t max_bytes, char **out) {
    if (o->type != MSGPACK_OBJECT_STR) return bad_type(msg, field, o, "a string");
    const uint32_t n = o->via.str.size;
    if (n > max_bytes) return hy_fail("%s.%s: %u bytes exceed the limit of %u", msg, field, n, max_bytes);
    if (n && memchr(o->via.str.ptr, '\0', n)) return hy_fail("%s.%s: contains a NUL byte", msg, field);
    char *s = hy_malloc((size_t)n + 1);
    if (n) memcpy(s, o->via.str.ptr, n);
    s[n] = '\0';
    *out = s;
    return 0;
}

static int get_enum(const char *msg, const char *field, const msgpack_object *o, const char *const *names, int n,
                    int *out) {
    if (o->type != MSGPACK_OBJECT_STR) return bad_type(msg, field, o, "a string");
    for (int i = 0; i < n; i++)
        if (key_is(o, names[i])) {
            *out = i;
            return 0;
        }
    char shown[68], known[160] = "";
    for (int i = 0; i < n; i++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", names[i]);
    return hy_fail("%s.%s: \"%s\" is not one of: %s", msg, field, echo(o, shown), known);
}

// An array of at most max_n items; its elements are read by the typed readers below.
static int get_array(const char *msg, const char *field, const msgpack_object *o, uint32_t max_n) {
    if (o->type != MSGPACK_OBJECT_ARRAY) return bad_type(msg, field, o, "an array");
    if (o->via.array.size > max_n)
        return hy_fail("%s.%s: %u items exceed the limit of %u", msg, field, o->via.array.size, max_n);
    return 0;
}

#define ELEM(buf, field, i) (snprintf(buf, sizeof buf, "%s[%u]", field, (unsigned)(i)), buf)

static int get_tokens(const char *msg, const char *field, const msgpack_object *o, uint32_t max_n, int32_t **out,
                      uint32_t *n) {
    if (get_array(msg, field, o, max_n)) return -1;
    const uint32_t len = o->via.array.size;
    int32_t *t = len ? hy_malloc(len * sizeof *t) : NULL;
    for (uint32_t i = 0; i < len; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        char f[96];
        if (e->type != MSGPACK_OBJECT_POSITIVE_INTEGER || e->via.u64 > INT32_MAX) {
            free(t);
            if (e->type == MSGPACK_OBJECT_POSITIVE_INTEGER || e->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                return hy_fail("%s.%s: not a token id (0..%d)", msg, ELEM(f, field, i), INT32_MAX);
            return bad_type(msg, ELEM(f, field, i), e, "a token id");
        }
        t[i] = (int32_t)e->via.u64;
    }
    *out = t;
    *n = len;
    return 0;
}

static int get_f32_array(const char *msg, const char *field, const msgpack_object *o, uint32_t max_n, float **out,
                         uint32_t *n) {
    if (get_array(msg, field, o, max_n)) return -1;
    const uint32_t len = o->via.array.size;
    float *v = len ? hy_malloc(len * sizeof *v) : NULL;
    for (uint32_t i = 0; i < len; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        // fast path for the usual element; anything else goes through get_f32 for its message
        if ((e->type == MSGPACK_OBJECT_FLOAT32 || e->type == MSGPACK_OBJECT_FLOAT64) && fabs(e->via.f64) <= FLT_MAX) {
            v[i] = (float)e->via.f64;
            continue;
        }
        char f[96];
        if (get_f32(msg, ELEM(f, field, i), e, &v[i])) {
            free(v);
            return -1;
        }
    }
    *out = v;
    *n = len;
    return 0;
}

static int get_u64_array(const char *msg, const char *field, const msgpack_object *o, uint32_t max_n, uint64_t **out,
                         uint32_t *n) {
    if (get_array(msg, field, o, max_n)) return -1;
    const uint32_t len = o->via.array.size;
    uint64_t *v = len ? hy_malloc(len * sizeof *v) : NULL;
    for (uint32_t i = 0; i < len; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        char f[96];
        if (e->type == MSGPACK_OBJECT_POSITIVE_INTEGER) v[i] = e->via.u64;
        else if (get_u64(msg, ELEM(f, field, i), e, &v[i])) {
            free(v);
            return -1;
        }
    }
    *out = v;
    *n = len;
    return 0;
}

static int get_bool_array(const char *msg, const char *field, const msgpack_object *o, uint32_t max_n,
                          uint8_t **out, uint32_t *n) {
    if (get_array(msg, field, o, max_n)) return -1;
    const uint32_t len = o->via.array.size;
    uint8_t *v = len ? hy_malloc(len) : NULL;
    for (uint32_t i = 0; i < len; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        char f[96];
        if (e->type != MSGPACK_OBJECT_BOOLEAN) {
            free(v);
            return bad_type(msg, ELEM(f, field, i), e, "a boolean");
        }
        v[i] = e->via.boolean;
    }
    *out = v;
    *n = len;
    return 0;
}

static void free_strs(char **s, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) free(s[i]);
    free(s);
}

static int get_str_array(const char *msg, const char *field, const msgpack_object *o, uint32_t max_n,
                         uint32_t max_bytes, char ***out, uint32_t *n) {
    if (get_array(msg, field, o, max_n)) return -1;
    const uint32_t len = o->via.array.size;
    char **v = len ? hy_calloc(len, sizeof *v) : NULL;
    for (uint32_t i = 0; i < len; i++) {
        char f[96];
        if (get_str(msg, ELEM(f, field, i), &o->via.array.ptr[i], max_bytes, &v[i])) {
            free_strs(v, i);
            return -1;
        }
    }
    *out = v;
    *n = len;
    return 0;
}

static void str_map_free(proto_str_map *m) {
    for (uint32_t i = 0; i < m->n; i++) {
        free(m->items[i].key);
        free(m->items[i].value);
    }
    free(m->items);
    m->items = NULL;
    m->n = 0;
}

static void score_map_free(proto_score_map *m) {
    for (uint32_t i = 0; i < m->n; i++) free(m->items[i].name);
    free(m->items);
    m->items = NULL;
    m->n = 0;
}

static int get_map(const char *msg, const char *field, const msgpack_object *o) {
    if (o->type != MSGPACK_OBJECT_MAP) return bad_type(msg, field, o, "a map");
    if (o->via.map.size > PROTO_MAX_MAP_ENTRIES)
        return hy_fail("%s.%s: %u entries exceed the limit of %d", msg, field, o->via.map.size, PROTO_MAX_MAP_ENTRIES);
    return 0;
}

// Map entries are filled in place (n counts the complete ones) so str_map_free can always clean up.
static int get_str_map(const char *msg, const char *field, const msgpack_object *o, proto_str_map *out) {
    if (get_map(msg, field, o)) return -1;
    const uint32_t len = o->via.map.size;
    out->items = len ? hy_calloc(len, sizeof *out->items) : NULL;
    out->n = 0;
    for (uint32_t i = 0; i < len; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        char f[96], shown[44];
        snprintf(f, sizeof f, "%s key", field);
        if (get_str(msg, f, &kv->key, PROTO_MAX_NAME_BYTES, &out->items[i].key)) return -1;
        snprintf(f, sizeof f, "%s[\"%s\"]", field, echo_key(out->items[i].key, shown));
        if (get_str(msg, f, &kv->val, PROTO_MAX_VALUE_BYTES, &out->items[i].value)) {
            free(out->items[i].key);
            return -1;
        }
        out->n = i + 1;
    }
    return 0;
}

static int get_score_map(const char *msg, const char *field, const msgpack_object *o, proto_score_map *out) {
    if (get_map(msg, field, o)) return -1;
    const uint32_t len = o->via.map.size;
    out->items = len ? hy_calloc(len, sizeof *out->items) : NULL;
    out->n = 0;
    for (uint32_t i = 0; i < len; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        char f[96], shown[44];
        snprintf(f, sizeof f, "%s key", field);
        if (get_str(msg, f, &kv->key, PROTO_MAX_NAME_BYTES, &out->items[i].name)) return -1;
        out->n = i + 1;
        snprintf(f, sizeof f, "%s[\"%s\"]", field, echo_key(out->items[i].name, shown));
        if (get_f64(msg, f, &kv->val, &out->items[i].value)) return -1;
    }
    return 0;
}

// ---------------------------------------------------------------- checks: range rules per field

static int check_str(const char *msg, const char *field, const char *s, size_t min, size_t max) {
    const size_t n = s ? strlen(s) : 0;
    if (n < min) return hy_fail("%s.%s: must not be empty", msg, field);
    if (n > max) return hy_fail("%s.%s: %zu bytes exceed the limit of %zu", msg, field, n, max);
    return 0;
}

static int check_num(const char *msg, const char *field, double v, double lo, double hi) {
    if (!isfinite(v)) return hy_fail("%s.%s: %g is not a finite number", msg, field, v);
    if (v < lo || v > hi) return hy_fail("%s.%s: %g is outside [%g, %g]", msg, field, v, lo, hi);
    return 0;
}

static int check_tokens(const char *msg, const char *field, const int32_t *t, uint32_t n, uint32_t min_n,
                        uint32_t max_n) {
    if (n < min_n) return hy_fail("%s.%s: needs at least %u token(s), has %u", msg, field, min_n, n);
    if (n > max_n) return hy_fail("%s.%s: %u tokens exceed the limit of %u", msg, field, n, max_n);
    if (n && !t) return hy_fail("%s.%s: %u tokens but no array", msg, field, n);
    for (uint32_t i = 0; i < n; i++)
        if (t[i] < 0) return hy_fail("%s.%s[%u]: %d is not a token id", msg, field, i, (int)t[i]);
    return 0;
}

// Logprobs: finite and ≤ 0 (a probability is at most 1).
static int check_logprobs(const char *msg, const char *field, const float *v, uint32_t n) {
    if (n && !v) return hy_fail("%s.%s: %u values but no array", msg, field, n);
    for (uint32_t i = 0; i < n; i++)
        if (!isfinite(v[i]) || v[i] > 0)
            return hy_fail("%s.%s[%u]: %g is not a finite logprob ≤ 0", msg, field, i, (double)v[i]);
    return 0;
}

static int check_str_map(const char *msg, const char *field, const proto_str_map *m) {
    if (m->n > PROTO_MAX_MAP_ENTRIES)
        return hy_fail("%s.%s: %u entries exceed the limit of %d", msg, field, m->n, PROTO_MAX_MAP_ENTRIES);
    if (m->n && !m->items) return hy_fail("%s.%s: %u entries but no array", msg, field, m->n);
    for (uint32_t i = 0; i < m->n; i++) {
        char f[96], shown[44];
        snprintf(f, sizeof f, "%s key", field);
        if (check_str(msg, f, m->items[i].key, 1, PROTO_MAX_NAME_BYTES)) return -1;
        snprintf(f, sizeof f, "%s[\"%s\"]", field, echo_key(m->items[i].key, shown));
        if (check_str(msg, f, m->items[i].value, 0, PROTO_MAX_VALUE_BYTES)) return -1;
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(m->items[i].key, m->items[j].key) == 0)
                return hy_fail("%s.%s: key \"%s\" appears twice", msg, field, echo_key(m->items[i].key, shown));
    }
    return 0;
}

static int check_score_map(const char *msg, const char *field, const proto_score_map *m) {
    if (m->n > PROTO_MAX_MAP_ENTRIES)
        return hy_fail("%s.%s: %u entries exceed the limit of %d", msg, field, m->n, PROTO_MAX_MAP_ENTRIES);
    if (m->n && !m->items) return hy_fail("%s.%s: %u entries but no array", msg, field, m->n);
    for (uint32_t i = 0; i < m->n; i++) {
        char f[96], shown[44];
        snprintf(f, sizeof f, "%s key", field);
        if (check_str(msg, f, m->items[i].name, 1, PROTO_MAX_NAME_BYTES)) return -1;
        snprintf(f, sizeof f, "%s[\"%s\"]", field, echo_key(m->items[i].name, shown));
        if (check_num(msg, f, m->items[i].value, -HUGE_VAL, HUGE_VAL)) return -1;
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(m->items[i].name, m->items[j].name) == 0)
                return hy_fail("%s.%s: name \"%s\" appears twice", msg, field, echo_key(m->items[i].name, shown));
    }
    return 0;
}

static int check_enum(const char *msg, const char *field, int v, int n) {
    if (v < 0 || v >= n) return hy_fail("%s.%s: %d is not a valid value", msg, field, v);
    return 0;
}

// ---------------------------------------------------------------- writer
// Pack errors only come from the buffer failing to grow; they are collected and reported once.

typedef struct {
    msgpack_packer pk;
    int rc;
} writer;

static void w_str(writer *w, const char *s) {
    const size_t n = s ? strlen(s) : 0;
    w->rc |= msgpack_pack_str(&w->pk, n);
    w->rc |= msgpack_pack_str_body(&w->pk, s ? s : "", n);
}
static void w_map(writer *w, uint32_t n) { w->rc |= msgpack_pack_map(&w->pk, n); }
static void w_array(writer *w, uint32_t n) { w->rc |= msgpack_pack_array(&w->pk, n); }
static void w_u64(writer *w, uint64_t v) { w->rc |= msgpack_pack_uint64(&w->pk, v); }
static void w_i64(writer *w, int64_t v) { w->rc |= msgpack_pack_int64(&w->pk, v); }
static void w_f32(writer *w, float v) { w->rc |= msgpack_pack_float(&w->pk, v); }
static void w_f64(writer *w, double v) { w->rc |= msgpack_pack_double(&w->pk, v); }
static void w_bool(writer *w, bool v) { w->rc |= v ? msgpack_pack_true(&w->pk) : msgpack_pack_false(&w->pk); }

static void w_tokens(writer *w, const int32_t *t, uint32_t n) {
    w_array(w, n);
    for (uint32_t i = 0; i < n; i++) w_u64(w, (uint64_t)t[i]);
}
static void w_f32s(writer *w, const float *v, uint32_t n) {
    w_array(w, n);
    for (uint32_t i = 0; i < n; i++) w_f32(w, v[i]);
}
static void w_str_map(writer *w, const proto_str_map *m) {
    w_map(w, m->n);
    for (uint32_t i = 0; i < m->n; i++) {
        w_str(w, m->items[i].key);
        w_str(w, m->items[i].value);
    }
}

// ---------------------------------------------------------------- gen_request

static const char *const k_gen_fields[] = {"id", "group_id", "prompt", "sampling", "n", "max_tokens",
                                           "stop_token_ids", "ignore_eos", "stop_strings", "env_id", "metadata"};
static const char *const k_sampling_fields[] = {"temperature", "top_p", "top_k", "seed", "logprobs",
                                                "top_logprobs"};

static int gen_request_check(const void *p) {
    const proto_gen_request *m = p;
    const char *g = "gen_request", *gs = "gen_request.sampling";
    const proto_sampling *s = &m->sampling;
    if (check_tokens(g, "prompt", m->prompt, m->n_prompt, 1, PROTO_MAX_TOKENS)) return -1;
    if (check_num(gs, "temperature", s->temperature, 0, PROTO_MAX_TEMPERATURE)) return -1;
    if (!isfinite(s->top_p) || !(s->top_p > 0 && s->top_p <= 1))
        return hy_fail("%s.top_p: %g is outside (0, 1]", gs, (double)s->top_p);
    if (s->top_k < 0) return hy_fail("%s.top_k: %d is negative (0 = off)", gs, (int)s->top_k);
    if (s->top_logprobs < 0 || s->top_logprobs > PROTO_MAX_TOP_LOGPROBS)
        return hy_fail("%s.top_logprobs: %d is outside [0, %d]", gs, (int)s->top_logprobs, PROTO_MAX_TOP_LOGPROBS);
    if (s->top_logprobs > 0 && !s->logprobs)
        return hy_fail("%s.top_logprobs: %d needs logprobs = true", gs, (int)s->top_logprobs);
    if (m->n < 1 || m->n > PROTO_MAX_N) return hy_fail("%s.n: %u is outside [1, %d]", g, m->n, PROTO_MAX_N);
    if (m->max_tokens < 1 || m->max_tokens > PROTO_MAX_TOKENS)
        return hy_fail("%s.max_tokens: %u is outside [1, %d]", g, m->max_tokens, PROTO_MAX_TOKENS);
    if (check_tokens(g, "stop_token_ids", m->stop_token_ids, m->n_stop_token_ids, 0, PROTO_MAX_STOP_TOKENS)) return -1;
    if (m->n_stop_strings > PROTO_MAX_STOP_STRINGS)
        return hy_fail("%s.stop_strings: %u items exceed the limit of %d", g, m->n_stop_strings,
                       PROTO_MAX_STOP_STRINGS);
    if (m->n_stop_strings && !m->stop_strings)
        return hy_fail("%s.stop_strings: %u items but no array", g, m->n_stop_strings);
    for (uint32_t i = 0; i < m->n_stop_strings; i++) {
        char f[48];
        if (check_str(g, ELEM(f, "stop_strings", i), m->stop_strings[i], 1, PROTO_MAX_STOP_STRING_BYTES)) return -1;
    }
    if (check_str(g, "env_id", m->env_id, 0, PROTO_MAX_NAME_BYTES)) return -1;
    return check_str_map(g, "metadata", &m->metadata);
}

static void gen_request_write(writer *w, const void *p) {
    const proto_gen_request *m = p;
    w_map(w, COUNT(k_gen_fields));
    w_str(w, "id"); w_u64(w, m->id);
    w_str(w, "group_id"); w_u64(w, m->group_id);
    w_str(w, "prompt"); w_tokens(w, m->prompt, m->n_prompt);
    w_str(w, "sampling");
    w_map(w, COUNT(k_sampling_fields));
    w_str(w, "temperature"); w_f32(w, m->sampling.temperature);
    w_str(w, "top_p"); w_f32(w, m->sampling.top_p);
    w_str(w, "top_k"); w_i64(w, m->sampling.top_k);
    w_str(w, "seed"); w_u64(w, m->sampling.seed);
    w_str(w, "logprobs"); w_bool(w, m->sampling.logprobs);
    w_str(w, "top_logprobs"); w_i64(w, m->sampling.top_logprobs);
    w_str(w, "n"); w_u64(w, m->n);
    w_str(w, "max_tokens"); w_u64(w, m->max_tokens);
    w_str(w, "stop_token_ids"); w_tokens(w, m->stop_token_ids, m->n_stop_token_ids);
    w_str(w, "ignore_eos"); w_bool(w, m->ignore_eos);
    w_str(w, "stop_strings");
    w_array(w, m->n_stop_strings);
    for (uint32_t i = 0; i < m->n_stop_strings; i++) w_str(w, m->stop_strings[i]);
    w_str(w, "env_id"); w_str(w, m->env_id);
    w_str(w, "metadata"); w_str_map(w, &m->metadata);
}

static int gen_request_read(const msgpack_object *body, void *p) {
    proto_gen_request *m = p;
    const char *g = "gen_request", *gs = "gen_request.sampling";
    const msgpack_object *f[COUNT(k_gen_fields)], *s[COUNT(k_sampling_fields)];
    if (map_fields(g, body, k_gen_fields, COUNT(k_gen_fields), f)) return -1;
    if (get_u64(g, "id", f[0], &m->id) || get_u64(g, "group_id", f[1], &m->group_id)) return -1;
    if (get_tokens(g, "prompt", f[2], PROTO_MAX_TOKENS, &m->prompt, &m->n_prompt)) return -1;
    if (f[3]->type != MSGPACK_OBJECT_MAP) return bad_type(g, "sampling", f[3], "a map");
    if (map_fields(gs, f[3], k_sampling_fields, COUNT(k_sampling_fields), s)) return -1;
    if (get_f32(gs, "temperature", s[0], &m->sampling.temperature) || get_f32(gs, "top_p", s[1], &m->sampling.top_p) ||
        get_i32(gs, "top_k", s[2], &m->sampling.top_k) || get_u64(gs, "seed", s[3], &m->sampling.seed) ||
        get_bool(gs, "logprobs", s[4], &m->sampling.logprobs) ||
        get_i32(gs, "top_logprobs", s[5], &m->sampling.top_logprobs))
        return -1;
    if (get_u32(g, "n", f[4], &m->n) || get_u32(g, "max_tokens", f[5], &m->max_tokens)) return -1;
    if (get_tokens(g, "stop_token_ids", f[6], PROTO_MAX_STOP_TOKENS, &m->stop_token_ids, &m->n_stop_token_ids))
        return -1;
    if (get_bool(g, "ignore_eos", f[7], &m->ignore_eos)) return -1;
    if (get_str_array(g, "stop_strings", f[8], PROTO_MAX_STOP_STRINGS, PROTO_MAX_STOP_STRING_BYTES, &m->stop_strings,
                      &m->n_stop_strings))
        return -1;
    if (get_str(g, "env_id", f[9], PROTO_MAX_NAME_BYTES, &m->env_id)) return -1;
    return get_str_map(g, "metadata", f[10], &m->metadata);
}

static void gen_request_release(void *p) {
    proto_gen_request *m = p;
    free(m->prompt);
    free(m->stop_token_ids);
    free_strs(m->stop_strings, m->n_stop_strings);
    free(m->env_id);
    str_map_free(&m->metadata);
    memset(m, 0, sizeof *m);
}

// ---------------------------------------------------------------- trajectory

static const char *const k_traj_fields[] = {
    "id", "request_id", "group_id", "sample_index", "prompt", "completion", "generated", "logprobs",
    "model_logprobs", "weight_version", "top_k", "top_ids", "top_logprobs", "finish_reason", "n_turns",
    "queue_s", "prefill_s", "decode_s"};

uint32_t proto_trajectory_n_generated(const proto_trajectory *t) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->n_completion; i++) n += t->generated && t->generated[i] != 0;
    return n;
}

static int trajectory_check(const void *p) {
    const proto_trajectory *m = p;
    const char *g = "trajectory";
    if (m->sample_index >= PROTO_MAX_N)
        return hy_fail("%s.sample_index: %u is outside [0, %d)", g, m->sample_index, PROTO_MAX_N);
    if (check_tokens(g, "prompt", m->prompt, m->n_prompt, 1, PROTO_MAX_TOKENS)) return -1;
    if (check_tokens(g, "completion", m->completion, m->n_completion, 0, PROTO_MAX_TOKENS)) return -1;
    if (m->n_completion && (!m->generated || !m->weight_version))
        return hy_fail("%s: %u completion tokens but no generated / weight_version arrays", g, m->n_completion);
    for (uint32_t i = 0; i < m->n_completion; i++)
        if (m->generated[i] > 1) return hy_fail("%s.generated[%u]: %u is not 0 or 1", g, i, m->generated[i]);
    if (m->n_logprobs != 0 && m->n_logprobs != m->n_completion)
        return hy_fail("%s.logprobs: %u values for %u completion tokens (must be 0 or equal)", g, m->n_logprobs,
                       m->n_completion);
    if (check_logprobs(g, "logprobs", m->logprobs, m->n_logprobs)) return -1;
    if (check_logprobs(g, "model_logprobs", m->model_logprobs, m->n_logprobs)) return -1;
    for (uint32_t i = 0; i < m->n_logprobs; i++) {
        if (!m->generated[i] && m->logprobs[i] != 0)
            return hy_fail("%s.logprobs[%u]: %g on an appended token (must be 0)", g, i, (double)m->logprobs[i]);
        if (!m->generated[i] && m->model_logprobs[i] != 0)
            return hy_fail("%s.model_logprobs[%u]: %g on an appended token (must be 0)", g, i,
                           (double)m->model_logprobs[i]);
    }
    if (m->top_k < 0 || m->top_k > PROTO_MAX_TOP_LOGPROBS)
        return hy_fail("%s.top_k: %d is outside [0, %d]", g, (int)m->top_k, PROTO_MAX_TOP_LOGPROBS);
    if (m->top_k > 0 && m->n_logprobs == 0 && m->n_completion > 0)
        return hy_fail("%s.top_k: %d alternatives but no logprobs", g, (int)m->top_k);
    const uint64_t want_top = (uint64_t)proto_trajectory_n_generated(m) * (uint64_t)m->top_k;
    if (m->n_top != want_top)
        return hy_fail("%s.top_ids: %u entries, expected generated tokens x top_k = %" PRIu64, g, m->n_top, want_top);
    if (check_tokens(g, "top_ids", m->top_ids, m->n_top, 0, UINT32_MAX)) return -1;
    if (check_logprobs(g, "top_logprobs", m->top_logprobs, m->n_top)) return -1;
    if (check_enum(g, "finish_reason", (int)m->finish_reason, COUNT(k_finish))) return -1;
    if (m->n_turns < 1 || m->n_turns > PROTO_MAX_TURNS)
        return hy_fail("%s.n_turns: %u is outside [1, %d]", g, m->n_turns, PROTO_MAX_TURNS);
    if (check_num(g, "queue_s", m->queue_s, 0, PROTO_MAX_SECONDS) ||
        check_num(g, "prefill_s", m->prefill_s, 0, PROTO_MAX_SECONDS) ||
        check_num(g, "decode_s", m->decode_s, 0, PROTO_MAX_SECONDS))
        return -1;
    return 0;
}

static void trajectory_write(writer *w, const void *p) {
    const proto_trajectory *m = p;
    w_map(w, COUNT(k_traj_fields));
    w_str(w, "id"); w_u64(w, m->id);
    w_str(w, "request_id"); w_u64(w, m->request_id);
    w_str(w, "group_id"); w_u64(w, m->group_id);
    w_str(w, "sample_index"); w_u64(w, m->sample_index);
    w_str(w, "prompt"); w_tokens(w, m->prompt, m->n_prompt);
    w_str(w, "completion"); w_tokens(w, m->completion, m->n_completion);
    w_str(w, "generated");
    w_array(w, m->n_completion);
    for (uint32_t i = 0; i < m->n_completion; i++) w_bool(w, m->generated[i] != 0);
    w_str(w, "logprobs"); w_f32s(w, m->logprobs, m->n_logprobs);
    w_str(w, "model_logprobs"); w_f32s(w, m->model_logprobs, m->n_logprobs);
    w_str(w, "weight_version");
    w_array(w, m->n_completion);
    for (uint32_t i = 0; i < m->n_completion; i++) w_u64(w, m->weight_version[i]);
    w_str(w, "top_k"); w_i64(w, m->top_k);
    w_str(w, "top_ids"); w_tokens(w, m->top_ids, m->n_top);
    w_str(w, "top_logprobs"); w_f32s(w, m->top_logprobs, m->n_top);
    w_str(w, "finish_reason"); w_str(w, k_finish[m->finish_reason]);
    w_str(w, "n_turns"); w_u64(w, m->n_turns);
    w_str(w, "queue_s"); w_f64(w, m->queue_s);
    w_str(w, "prefill_s"); w_f64(w, m->prefill_s);
    w_str(w, "decode_s"); w_f64(w, m->decode_s);
}

static int trajectory_read(const msgpack_object *body, void *p) {
    proto_trajectory *m = p;
    const char *g = "trajectory";
    const msgpack_object *f[COUNT(k_traj_fields)];
    if (map_fields(g, body, k_traj_fields, COUNT(k_traj_fields), f)) return -1;
    if (get_u64(g, "id", f[0], &m->id) || get_u64(g, "request_id", f[1], &m->request_id) ||
        get_u64(g, "group_id", f[2], &m->group_id) || get_u32(g, "sample_index", f[3], &m->sample_index))
        return -1;
    if (get_tokens(g, "prompt", f[4], PROTO_MAX_TOKENS, &m->prompt, &m->n_prompt)) return -1;
    if (get_tokens(g, "completion", f[5], PROTO_MAX_TOKENS, &m->completion, &m->n_completion)) return -1;
    uint32_t n = 0;
    if (get_bool_array(g, "generated", f[6], PROTO_MAX_TOKENS, &m->generated, &n)) return -1;
    // the per-token arrays are checked against the completion here, before the check pass
    // indexes them by n_completion
    if (n != m->n_completion)
        return hy_fail("%s.generated: %u flags for %u completion tokens", g, n, m->n_completion);
    if (get_f32_array(g, "logprobs", f[7], PROTO_MAX_TOKENS, &m->logprobs, &m->n_logprobs)) return -1;
    uint32_t n_lp = 0;
    if (get_f32_array(g, "model_logprobs", f[8], PROTO_MAX_TOKENS, &m->model_logprobs, &n_lp)) return -1;
    if (n_lp != m->n_logprobs)
        return hy_fail("%s.model_logprobs: %u values for %u logprobs", g, n_lp, m->n_logprobs);
    if (get_u64_array(g, "weight_version", f[9], PROTO_MAX_TOKENS, &m->weight_version, &n)) return -1;
    if (n != m->n_completion)
        return hy_fail("%s.weight_version: %u versions for %u completion tokens", g, n, m->n_completion);
    if (get_i32(g, "top_k", f[10], &m->top_k)) return -1;
    const uint32_t max_top = PROTO_MAX_TOKENS * PROTO_MAX_TOP_LOGPROBS;
    if (get_tokens(g, "top_ids", f[11], max_top, &m->top_ids, &m->n_top)) return -1;
    if (get_f32_array(g, "top_logprobs", f[12], max_top, &m->top_logprobs, &n_lp)) return -1;
    if (n_lp != m->n_top) return hy_fail("%s.top_logprobs: %u values for %u top_ids", g, n_lp, m->n_top);
    int e;
    if (get_enum(g, "finish_reason", f[13], k_finish, COUNT(k_finish), &e)) return -1;
    m->finish_reason = (proto_finish)e;
    if (get_u32(g, "n_turns", f[14], &m->n_turns)) return -1;
    return get_f64(g, "queue_s", f[15], &m->queue_s) || get_f64(g, "prefill_s", f[16], &m->prefill_s) ||
                   get_f64(g, "decode_s", f[17], &m->decode_s)
               ? -1
               : 0;
}

static void trajectory_release(void *p) {
    proto_trajectory *m = p;
    free(m->prompt);
    free(m->completion);
    free(m->generated);
    free(m->logprobs);
    free(m->model_logprobs);
    free(m->weight_version);
    free(m->top_ids);
    free(m->top_logprobs);
    memset(m, 0, sizeof *m);
}

// ---------------------------------------------------------------- reward_request

static const char *const k_rreq_fields[] = {"trajectory_id", "verifier", "completion_text", "completion_tokens",
                                            "reference", "metadata"};

static int reward_request_check(const void *p) {
    const proto_reward_request *m = p;
    const char *g = "reward_request";
    if (check_str(g, "verifier", m->verifier, 1, PROTO_MAX_NAME_BYTES)) return -1;
    if (check_str(g, "completion_text", m->completion_text, 0, PROTO_MAX_TEXT_BYTES)) return -1;
    if (check_tokens(g, "completion_tokens", m->completion_tokens, m->n_completion_tokens, 0, PROTO_MAX_TOKENS))
        return -1;
    if (check_str(g, "reference", m->reference, 0, PROTO_MAX_TEXT_BYTES)) return -1;
    return check_str_map(g, "metadata", &m->metadata);
}

static void reward_request_write(writer *w, const void *p) {
    const proto_reward_request *m = p;
    w_map(w, COUNT(k_rreq_fields));
    w_str(w, "trajectory_id"); w_u64(w, m->trajectory_id);
    w_str(w, "verifier"); w_str(w, m->verifier);
    w_str(w, "completion_text"); w_str(w, m->completion_text);
    w_str(w, "completion_tokens"); w_tokens(w, m->completion_tokens, m->n_completion_tokens);
    w_str(w, "reference"); w_str(w, m->reference);
    w_str(w, "metadata"); w_str_map(w, &m->metadata);
}

static int reward_request_read(const msgpack_object *body, void *p) {
    proto_reward_request *m = p;
    const char *g = "reward_request";
    const msgpack_object *f[COUNT(k_rreq_fields)];
    if (map_fields(g, body, k_rreq_fields, COUNT(k_rreq_fields), f)) return -1;
    if (get_u64(g, "trajectory_id", f[0], &m->trajectory_id) ||
        get_str(g, "verifier", f[1], PROTO_MAX_NAME_BYTES, &m->verifier) ||
        get_str(g, "completion_text", f[2], PROTO_MAX_TEXT_BYTES, &m->completion_text) ||
        get_tokens(g, "completion_tokens", f[3], PROTO_MAX_TOKENS, &m->completion_tokens, &m->n_completion_tokens) ||
        get_str(g, "reference", f[4], PROTO_MAX_TEXT_BYTES, &m->reference))
        return -1;
    return get_str_map(g, "metadata", f[5], &m->metadata);
}

static void reward_request_release(void *p) {
    proto_reward_request *m = p;
    free(m->verifier);
    free(m->completion_text);
    free(m->completion_tokens);
    free(m->reference);
    str_map_free(&m->metadata);
    memset(m, 0, sizeof *m);
}

// ---------------------------------------------------------------- reward_result

static const char *const k_rres_fields[] = {"trajectory_id", "reward", "scores", "error"};

static int reward_result_check(const void *p) {
    const proto_reward_result *m = p;
    const char *g = "reward_result";
    if (check_num(g, "reward", m->reward, -HUGE_VAL, HUGE_VAL)) return -1;
    if (check_score_map(g, "scores", &m->scores)) return -1;
    return check_str(g, "error", m->error, 0, PROTO_MAX_REASON_BYTES);
}

static void reward_result_write(writer *w, const void *p) {
    const proto_reward_result *m = p;
    w_map(w, COUNT(k_rres_fields));
    w_str(w, "trajectory_id"); w_u64(w, m->trajectory_id);
    w_str(w, "reward"); w_f64(w, m->reward);
    w_str(w, "scores");
    w_map(w, m->scores.n);
    for (uint32_t i = 0; i < m->scores.n; i++) {
        w_str(w, m->scores.items[i].name);
        w_f64(w, m->scores.items[i].value);
    }
    w_str(w, "error"); w_str(w, m->error);
}

static int reward_result_read(const msgpack_object *body, void *p) {
    proto_reward_result *m = p;
    const char *g = "reward_result";
    const msgpack_object *f[COUNT(k_rres_fields)];
    if (map_fields(g, body, k_rres_fields, COUNT(k_rres_fields), f)) return -1;
    if (get_u64(g, "trajectory_id", f[0], &m->trajectory_id) || get_f64(g, "reward", f[1], &m->reward) ||
        get_score_map(g, "scores", f[2], &m->scores))
        return -1;
    return get_str(g, "error", f[3], PROTO_MAX_REASON_BYTES, &m->error);
}

static void reward_result_release(void *p) {
    proto_reward_result *m = p;
    score_map_free(&m->scores);
    free(m->error);
    memset(m, 0, sizeof *m);
}

// ---------------------------------------------------------------- weight_notice

static const char *const k_wn_fields[] = {"version", "checksum", "transport", "location"};

static int weight_notice_check(const void *p) {
    const proto_weight_notice *m = p;
    if (check_enum("weight_notice", "transport", (int)m->transport, COUNT(k_transport))) return -1;
    return check_str("weight_notice", "location", m->location, 0, PROTO_MAX_REASON_BYTES);
}

static void weight_notice_write(writer *w, const void *p) {
    const proto_weight_notice *m = p;
    w_map(w, COUNT(k_wn_fields));
    w_str(w, "version"); w_u64(w, m->version);
    w_str(w, "checksum"); w_u64(w, m->checksum);
    w_str(w, "transport"); w_str(w, k_transport[m->transport]);
    w_str(w, "location"); w_str(w, m->location);
}

static int weight_notice_read(const msgpack_object *body, void *p) {
    proto_weight_notice *m = p;
    const char *g = "weight_notice";
    const msgpack_object *f[COUNT(k_wn_fields)];
    int e;
    if (map_fields(g, body, k_wn_fields, COUNT(k_wn_fields), f)) return -1;
    if (get_u64(g, "version", f[0], &m->version) || get_u64(g, "checksum", f[1], &m->checksum) ||
        get_enum(g, "transport", f[2], k_transport, COUNT(k_transport), &e))
        return -1;
    m->transport = (proto_weight_transport)e;
    return get_str(g, "location", f[3], PROTO_MAX_REASON_BYTES, &m->location);
}

static void weight_notice_release(void *p) {
    proto_weight_notice *m = p;
    free(m->location);
    memset(m, 0, sizeof *m);
}

// ---------------------------------------------------------------- control

static const char *const k_ctl_fields[] = {"command", "reason"};

static int control_check(const void *p) {
    const proto_control *m = p;
    if (check_enum("control", "command", (int)m->command, COUNT(k_command))) return -1;
    return check_str("control", "reason", m->reason, 0, PROTO_MAX_REASON_BYTES);
}

static void control_write(writer *w, const void *p) {
    const proto_control *m = p;
    w_map(w, COUNT(k_ctl_fields));
    w_str(w, "command"); w_str(w, k_command[m->command]);
    w_str(w, "reason"); w_str(w, m->reason);
}

static int control_read(const msgpack_object *body, void *p) {
    proto_control *m = p;
    const msgpack_object *f[COUNT(k_ctl_fields)];
    int e;
    if (map_fields("control", body, k_ctl_fields, COUNT(k_ctl_fields), f)) return -1;
    if (get_enum("control", "command", f[0], k_command, COUNT(k_command), &e)) return -1;
    m->command = (proto_command)e;
    return get_str("control", "reason", f[1], PROTO_MAX_REASON_BYTES, &m->reason);
}

static void control_release(void *p) {
    proto_control *m = p;
    free(m->reason);
    memset(m, 0, sizeof *m);
}

// ---------------------------------------------------------------- heartbeat

static const char *const k_hb_fields[] = {"sender", "role", "timestamp", "queued", "running", "tokens_per_s",
                                          "memory_used", "weight_version"};

static int heartbeat_check(const void *p) {
    const proto_heartbeat *m = p;
    const char *g = "heartbeat";
    if (check_str(g, "sender", m->sender, 1, PROTO_MAX_NAME_BYTES)) return -1;
    if (check_enum(g, "role", (int)m->role, COUNT(k_role))) return -1;
    if (check_num(g, "timestamp", m->timestamp, 0, PROTO_MAX_TIMESTAMP)) return -1;
    if (check_num(g, "tokens_per_s", m->tokens_per_s, 0, 1e12)) return -1;
    return check_num(g, "memory_used", m->memory_used, 0, 1);
}

static void heartbeat_write(writer *w, const void *p) {
    const proto_heartbeat *m = p;
    w_map(w, COUNT(k_hb_fields));
    w_str(w, "sender"); w_str(w, m->sender);
    w_str(w, "role"); w_str(w, k_role[m->role]);
    w_str(w, "timestamp"); w_f64(w, m->timestamp);
    w_str(w, "queued"); w_u64(w, m->queued);
    w_str(w, "running"); w_u64(w, m->running);
    w_str(w, "tokens_per_s"); w_f64(w, m->tokens_per_s);
    w_str(w, "memory_used"); w_f64(w, m->memory_used);
    w_str(w, "weight_version"); w_u64(w, m->weight_version);
}

static int heartbeat_read(const msgpack_object *body, void *p) {
    proto_heartbeat *m = p;
    const char *g = "heartbeat";
    const msgpack_object *f[COUNT(k_hb_fields)];
    int e;
    if (map_fields(g, body, k_hb_fields, COUNT(k_hb_fields), f)) return -1;
    if (get_str(g, "sender", f[0], PROTO_MAX_NAME_BYTES, &m->sender) ||
        get_enum(g, "role", f[1], k_role, COUNT(k_role), &e))
        return -1;
    m->role = (proto_role)e;
    return get_f64(g, "timestamp", f[2], &m->timestamp) || get_u32(g, "queued", f[3], &m->queued) ||
                   get_u32(g, "running", f[4], &m->running) || get_f64(g, "tokens_per_s", f[5], &m->tokens_per_s) ||
                   get_f64(g, "memory_used", f[6], &m->memory_used) ||
                   get_u64(g, "weight_version", f[7], &m->weight_version)
               ? -1
               : 0;
}

static void heartbeat_release(void *p) {
    proto_heartbeat *m = p;
    free(m->sender);
    memset(m, 0, sizeof *m);
}

// ---------------------------------------------------------------- one codec table, shared entry points

typedef struct {
    int (*check)(const void *m);
    void (*write)(writer *w, const void *m);
    int (*read)(const msgpack_object *body, void *m);
    void (*release)(void *m);
} codec;

static const codec k_codecs[] = {
    [PROTO_GEN_REQUEST] = {gen_request_check, gen_request_write, gen_request_read, gen_request_release},
    [PROTO_TRAJECTORY] = {trajectory_check, trajectory_write, trajectory_read, trajectory_release},
    [PROTO_REWARD_REQUEST] = {reward_request_check, reward_request_write, reward_request_read, reward_request_release},
    [PROTO_REWARD_RESULT] = {reward_result_check, reward_result_write, reward_result_read, reward_result_release},
    [PROTO_WEIGHT_NOTICE] = {weight_notice_check, weight_notice_write, weight_notice_read, weight_notice_release},
    [PROTO_CONTROL] = {control_check, control_write, control_read, control_release},
    [PROTO_HEARTBEAT] = {heartbeat_check, heartbeat_write, heartbeat_read, heartbeat_release},
};

static int valid_type(proto_type t) { return t >= PROTO_TYPE_FIRST && t <= PROTO_TYPE_LAST; }

static int encode_as(proto_type type, const void *m, msgpack_sbuffer *out) {
    msgpack_sbuffer_clear(out);
    if (k_codecs[type].check(m)) return hy_fail_prefix("proto encode");
    writer w = {.rc = 0};
    msgpack_packer_init(&w.pk, out, msgpack_sbuffer_write);
    if (proto_frame_begin(&w.pk, type)) return hy_fail_prefix("proto encode %s", proto_type_name(type));
    k_codecs[type].write(&w, m);
    if (w.rc) return hy_fail("proto encode %s: out of memory", proto_type_name(type));
    if (out->size > PROTO_MAX_FRAME_BYTES)
        return hy_fail("proto encode %s: frame of %zu bytes exceeds the limit of %u", proto_type_name(type), out->size,
                       PROTO_MAX_FRAME_BYTES);
    return 0;
}

// want: the expected type, or 0 for any (then *got says which).
static int decode_as(proto_type want, const void *data, size_t size, void *m, proto_type *got) {
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    proto_type type = 0;
    const msgpack_object *body = NULL;
    int rc = proto_frame_open(data, size, &u, &type, &body);
    if (rc && want) hy_fail_prefix("%s frame", proto_type_name(want));
    if (rc && !want) hy_fail_prefix("frame");
    if (rc == 0 && want && type != want)
        rc = hy_fail("expected a %s frame, got %s", proto_type_name(want), proto_type_name(type));
    if (rc == 0) {
        rc = k_codecs[type].read(body, m);
        if (rc == 0) rc = k_codecs[type].check(m);
        if (rc) k_codecs[type].release(m);
    }
    msgpack_unpacked_destroy(&u);
    if (rc) return hy_fail_prefix("proto decode");
    if (got) *got = type;
    return 0;
}

int proto_gen_request_check(const proto_gen_request *m) { return gen_request_check(m); }
int proto_gen_request_encode(const proto_gen_request *m, msgpack_sbuffer *out) {
    return encode_as(PROTO_GEN_REQUEST, m, out);
}
int proto_gen_request_decode(const void *data, size_t size, proto_gen_request *out) {
    memset(out, 0, sizeof *out);
    return decode_as(PROTO_GEN_REQUEST, data, size, out, NULL);
}
void proto_gen_request_free(proto_gen_request *m) { gen_request_release(m); }

int proto_trajectory_check(const proto_trajectory *m) { return trajectory_check(m); }
int proto_trajectory_encode(const proto_trajectory *m, msgpack_sbuffer *out) {
    return encode_as(PROTO_TRAJECTORY, m, out);
}
int proto_trajectory_decode(const void *data, size_t size, proto_trajectory *out) {
    memset(out, 0, sizeof *out);
    return decode_as(PROTO_TRAJECTORY, data, size, out, NULL);
}
void proto_trajectory_free(proto_trajectory *m) { trajectory_release(m); }

int proto_reward_request_check(const proto_reward_request *m) { return reward_request_check(m); }
int proto_reward_request_encode(const proto_reward_request *m, msgpack_sbuffer *out) {
    return encode_as(PROTO_REWARD_REQUEST, m, out);
}
int proto_reward_request_decode(const void *data, size_t size, proto_reward_request *out) {
    memset(out, 0, sizeof *out);
    return decode_as(PROTO_REWARD_REQUEST, data, size, out, NULL);
}
void proto_reward_request_free(proto_reward_request *m) { reward_request_release(m); }

int proto_reward_result_check(const proto_reward_result *m) { return reward_result_check(m); }
int proto_reward_result_encode(const proto_reward_result *m, msgpack_sbuffer *out) {
    return encode_as(PROTO_REWARD_RESULT, m, out);
}
int proto_reward_result_decode(const void *data, size_t size, proto_reward_result *out) {
    memset(out, 0, sizeof *out);
    return decode_as(PROTO_REWARD_RESULT, data, size, out, NULL);
}
void proto_reward_result_free(proto_reward_result *m) { reward_result_release(m); }

int proto_weight_notice_check(const proto_weight_notice *m) { return weight_notice_check(m); }
int proto_weight_notice_encode(const proto_weight_notice *m, msgpack_sbuffer *out) {
    return encode_as(PROTO_WEIGHT_NOTICE, m, out);
}
int proto_weight_notice_decode(const void *data, size_t size, proto_weight_notice *out) {
    memset(out, 0, sizeof *out);
    return decode_as(PROTO_WEIGHT_NOTICE, data, size, out, NULL);
}
void proto_weight_notice_free(proto_weight_notice *m) { weight_notice_release(m); }

int proto_control_check(const proto_control *m) { return control_check(m); }
int proto_control_encode(const proto_control *m, msgpack_sbuffer *out) {
    return encode_as(PROTO_CONTROL, m, out);
}
int proto_control_decode(const void *data, size_t size, proto_control *out) {
    memset(out, 0, sizeof *out);
    return decode_as(PROTO_CONTROL, data, size, out, NULL);
}
void proto_control_free(proto_control *m) { control_release(m); }

int proto_heartbeat_check(const proto_heartbeat *m) { return heartbeat_check(m); }
int proto_heartbeat_encode(const proto_heartbeat *m, msgpack_sbuffer *out) {
    return encode_as(PROTO_HEARTBEAT, m, out);
}
int proto_heartbeat_decode(const void *data, size_t size, proto_heartbeat *out) {
    memset(out, 0, sizeof *out);
    return decode_as(PROTO_HEARTBEAT, data, size, out, NULL);
}
void proto_heartbeat_free(proto_heartbeat *m) { heartbeat_release(m); }

int proto_msg_check(const proto_msg *m) {
    if (!valid_type(m->type)) return hy_fail("proto: message type %d is unknown", (int)m->type);
    return k_codecs[m->type].check(&m->u);
}

int proto_msg_encode(const proto_msg *m, msgpack_sbuffer *out) {
    if (!valid_type(m->type)) return hy_fail("proto encode: message type %d is unknown", (int)m->type);
    return encode_as(m->type, &m->u, out);
}

int proto_msg_decode(const void *data, size_t size, proto_msg *out) {
    memset(out, 0, sizeof *out);
    return decode_as(0, data, size, &out->u, &out->type);
}

void proto_msg_free(proto_msg *m) {
    if (valid_type(m->type)) k_codecs[m->type].release(&m->u);
    m->type = 0;
}
