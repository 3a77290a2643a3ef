// Protocol messages: C structs, their limits, and msgpack encode / decode / check / free for each.
//
// Every message body is a msgpack map with string keys equal to the struct field names below
// (docs/proto.md lists each field's msgpack type and range). Maps rather than positional arrays so
// a bad frame is reported by field name and a hex dump can be read; the key bytes are small next to
// the token arrays. Within one protocol version the field set is closed: every field is required,
// an unknown or repeated key is an error, and any change bumps PROTO_VERSION (frame.h).
//
// One validation path: proto_<msg>_check holds every range rule and runs in the encoder (a sender
// cannot produce a frame its peer would refuse) and after the decoder has read the fields with
// their types. Decoders never abort and never keep a partial result: on -1 the output is freed and
// zeroed and the message reads "<message>.<field>: <problem>", e.g.
// "trajectory.logprobs[7]: nan is not a finite number".
//
// Ownership: decoded structs own every pointer (heap); proto_<msg>_free releases them. Structs a
// caller fills for encoding are only read; a NULL string there means "".
// Token ids are int32 in [0, 2^31); a receiver checks them against its own vocabulary.
#ifndef HY_PROTO_MESSAGES_H
#define HY_PROTO_MESSAGES_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"

// Limits (docs/proto.md, "Limits"); a frame must also stay within PROTO_MAX_FRAME_BYTES.
enum {
    PROTO_MAX_TOKENS = 1 << 20,          // per token array (prompt, completion) and max_tokens
    PROTO_MAX_N = 1024,                  // completions per generation request
    PROTO_MAX_TOP_LOGPROBS = 20,         // alternatives per generated token
    PROTO_MAX_STOP_TOKENS = 64,
    PROTO_MAX_STOP_STRINGS = 8,          // = the rollout engine's HY_MAX_STOP_STRINGS
    PROTO_MAX_STOP_STRING_BYTES = 256,
    PROTO_MAX_NAME_BYTES = 256,          // ids and names: env_id, verifier, sender, map keys
    PROTO_MAX_MAP_ENTRIES = 64,          // metadata and score maps
    PROTO_MAX_VALUE_BYTES = 1 << 16,     // a metadata value
    PROTO_MAX_REASON_BYTES = 4096,       // error strings, control reasons, weight locations
    PROTO_MAX_TEXT_BYTES = 1 << 24,      // completion text, reference
    PROTO_MAX_TURNS = 1 << 16,
};
#define PROTO_MAX_TEMPERATURE 100.0
#define PROTO_MAX_SECONDS 1e9     // durations
#define PROTO_MAX_TIMESTAMP 1e11  // seconds since the Unix epoch

typedef struct {
    char *key;
    char *value;
} proto_str_pair;

typedef struct {  // string → string, keys unique, at most PROTO_MAX_MAP_ENTRIES
    proto_str_pair *items;
    uint32_t n;
} proto_str_map;

typedef struct {
    char *name;
    double value;
} proto_score;

typedef struct {  // string → finite double, names unique, at most PROTO_MAX_MAP_ENTRIES
    proto_score *items;
    uint32_t n;
} proto_score_map;

typedef struct {
    float temperature;     // [0, PROTO_MAX_TEMPERATURE]; 0 = greedy
    float top_p;           // (0, 1]; 1 = off
    int32_t top_k;         // ≥ 0; 0 = off
    uint64_t seed;
    bool logprobs;         // return each generated token's rollout logprob
    int32_t top_logprobs;  // [0, PROTO_MAX_TOP_LOGPROBS] alternatives per generated token; > 0 needs logprobs
} proto_sampling;

// orchestrator → rollout worker: generate n completions of one prompt (a GRPO group shares one).
typedef struct {
    uint64_t id;
    uint64_t group_id;
    int32_t *prompt;  // (n_prompt) token ids, 1..PROTO_MAX_TOKENS of them
    uint32_t n_prompt;
    proto_sampling sampling;
    uint32_t n;           // [1, PROTO_MAX_N]
    uint32_t max_tokens;  // per completion, [1, PROTO_MAX_TOKENS]
    int32_t *stop_token_ids;  // (n_stop_token_ids) ≤ PROTO_MAX_STOP_TOKENS, besides the model's eos ids
    uint32_t n_stop_token_ids;
    bool ignore_eos;      // do not stop at the model's eos ids (benchmarks, forced lengths)
    char **stop_strings;  // (n_stop_strings) ≤ PROTO_MAX_STOP_STRINGS, each 1..PROTO_MAX_STOP_STRING_BYTES
    uint32_t n_stop_strings;
    char *env_id;  // environment for multi-turn rollouts; "" = none. ≤ PROTO_MAX_NAME_BYTES
    proto_str_map metadata;
} proto_gen_request;

// The first four are the rollout engine's (rollout/stop.h), under the same wire names.
typedef enum {
    PROTO_FINISH_EOS = 0,      // "eos": an eos id of the model or a stop token id was generated
    PROTO_FINISH_STOP = 1,     // "stop": a stop string appeared in the generated text
    PROTO_FINISH_LENGTH = 2,   // "length": max_tokens generated
    PROTO_FINISH_MAX_LEN = 3,  // "max_len": the sequence reached the engine's length limit
    PROTO_FINISH_ENV = 4,      // "env": the environment ended the episode
    PROTO_FINISH_ABORT = 5,    // "abort": cancelled (drain, shutdown)
    PROTO_FINISH_ERROR = 6,    // "error"
} proto_finish;

// rollout worker → learner: one finished sequence. Per-token arrays cover the completion only;
// in a multi-turn episode the completion interleaves generated tokens with appended ones (tool
// output, observations), told apart by `generated`.
typedef struct {
    uint64_t id;
    uint64_t request_id;
    uint64_t group_id;
    uint32_t sample_index;  // which of the request's n, [0, PROTO_MAX_N)
    int32_t *prompt;        // (n_prompt) 1..PROTO_MAX_TOKENS
    uint32_t n_prompt;
    int32_t *completion;    // (n_completion) 0..PROTO_MAX_TOKENS
    uint32_t n_completion;
    uint8_t *generated;     // (n_completion) 1 = sampled by the policy, 0 = appended
    // Rollout logprobs, each (n_logprobs) with n_logprobs ∈ {0 = not recorded, n_completion}; finite,
    // ≤ 0, and exactly 0 for appended tokens. logprobs: under the sampling distribution (after
    // temperature / top-k / top-p) that drew the token; model_logprobs: under the untempered model
    // (log_softmax of the logits), what the learner's own forward is compared with.
    float *logprobs;
    float *model_logprobs;
    uint32_t n_logprobs;
    uint64_t *weight_version;  // (n_completion) weight version that produced each token
    int32_t top_k;          // [0, PROTO_MAX_TOP_LOGPROBS] alternatives per generated token (> 0 needs logprobs)
    int32_t *top_ids;       // (n_generated, top_k) most likely first
    float *top_logprobs;    // (n_generated, top_k) finite ≤ 0
    uint32_t n_top;         // = n_generated * top_k
    proto_finish finish_reason;
    uint32_t n_turns;       // [1, PROTO_MAX_TURNS]
    double queue_s, prefill_s, decode_s;  // [0, PROTO_MAX_SECONDS]
} proto_trajectory;

// orchestrator → verifier.
typedef struct {
    uint64_t trajectory_id;
    char *verifier;  // task / verifier name, 1..PROTO_MAX_NAME_BYTES
    char *completion_text;  // ≤ PROTO_MAX_TEXT_BYTES; may be "" (then the verifier uses the tokens)
    int32_t *completion_tokens;  // (n_completion_tokens) ≤ PROTO_MAX_TOKENS
    uint32_t n_completion_tokens;
    char *reference;  // ground truth, tests; ≤ PROTO_MAX_TEXT_BYTES
    proto_str_map metadata;
} proto_reward_request;

// verifier → orchestrator.
typedef struct {
    uint64_t trajectory_id;
    double reward;           // finite
    proto_score_map scores;  // extra named scores (format, length, ...)
    char *error;             // "" = scored; else why not (reward then meaningless). ≤ PROTO_MAX_REASON_BYTES
} proto_reward_result;

typedef enum { PROTO_WEIGHTS_NCCL = 0, PROTO_WEIGHTS_ZMQ = 1, PROTO_WEIGHTS_INPLACE = 2 } proto_weight_transport;

// learner → rollout workers: weights of `version` are available.
typedef struct {
    uint64_t version;
    uint64_t checksum;  // of the weights, as the weight-sync module defines it
    proto_weight_transport transport;  // wire names "nccl", "zmq", "inplace"
    char *location;     // where: NCCL group / ZeroMQ endpoint / "" for inplace; ≤ PROTO_MAX_REASON_BYTES
} proto_weight_notice;

typedef enum { PROTO_CMD_PAUSE = 0, PROTO_CMD_RESUME = 1, PROTO_CMD_DRAIN = 2, PROTO_CMD_SHUTDOWN = 3 } proto_command;

typedef struct {
    proto_command command;  // wire names "pause", "resume", "drain", "shutdown"
    char *reason;           // for the log; ≤ PROTO_MAX_REASON_BYTES
} proto_control;

typedef enum {
    PROTO_ROLE_ORCHESTRATOR = 0,
    PROTO_ROLE_ROLLOUT = 1,
    PROTO_ROLE_LEARNER = 2,
    PROTO_ROLE_VERIFIER = 3,
} proto_role;

typedef struct {
    char *sender;      // 1..PROTO_MAX_NAME_BYTES
    proto_role role;   // wire names "orchestrator", "rollout", "learner", "verifier"
    double timestamp;  // seconds since the Unix epoch, [0, PROTO_MAX_TIMESTAMP]
    uint32_t queued;   // requests waiting
    uint32_t running;  // sequences in flight
    double tokens_per_s;    // [0, 1e12]
    double memory_used;     // fraction of the state / KV pool in use, [0, 1]
    uint64_t weight_version;
} proto_heartbeat;

// Any message, for receive loops that take whatever comes.
typedef struct {
    proto_type type;
    union {
        proto_gen_request gen_request;
        proto_trajectory trajectory;
        proto_reward_request reward_request;
        proto_reward_result reward_result;
        proto_weight_notice weight_notice;
        proto_control control;
        proto_heartbeat heartbeat;
    } u;
} proto_msg;

// Per message: check (0, or -1 naming the field), encode (checks, then writes one frame into
// `out`, which the caller has msgpack_sbuffer_init'ed; previous contents are cleared, so one
// buffer can be reused), decode (one frame of this type; anything else is -1), free.
int proto_gen_request_check(const proto_gen_request *m);
int proto_gen_request_encode(const proto_gen_request *m, msgpack_sbuffer *out);
int proto_gen_request_decode(const void *data, size_t size, proto_gen_request *out);
void proto_gen_request_free(proto_gen_request *m);

int proto_trajectory_check(const proto_trajectory *m);
int proto_trajectory_encode(const proto_trajectory *m, msgpack_sbuffer *out);
int proto_trajectory_decode(const void *data, size_t size, proto_trajectory *out);
void proto_trajectory_free(proto_trajectory *m);

int proto_reward_request_check(const proto_reward_request *m);
int proto_reward_request_encode(const proto_reward_request *m, msgpack_sbuffer *out);
int proto_reward_request_decode(const void *data, size_t size, proto_reward_request *out);
void proto_reward_request_free(proto_reward_request *m);

int proto_reward_result_check(const proto_reward_result *m);
int proto_reward_result_encode(const proto_reward_result *m, msgpack_sbuffer *out);
int proto_reward_result_decode(const void *data, size_t size, proto_reward_result *out);
void proto_reward_result_free(proto_reward_result *m);

int proto_weight_notice_check(const proto_weight_notice *m);
int proto_weight_notice_encode(const proto_weight_notice *m, msgpack_sbuffer *out);
int proto_weight_notice_decode(const void *data, size_t size, proto_weight_notice *out);
void proto_weight_notice_free(proto_weight_notice *m);

int proto_control_check(const proto_control *m);
int proto_control_encode(const proto_control *m, msgpack_sbuffer *out);
int proto_control_decode(const void *data, size_t size, proto_control *out);
void proto_control_free(proto_control *m);

int proto_heartbeat_check(const proto_heartbeat *m);
int proto_heartbeat_encode(const proto_heartbeat *m, msgpack_sbuffer *out);
int proto_heartbeat_decode(const void *data, size_t size, proto_heartbeat *out);
void proto_heartbeat_free(proto_heartbeat *m);

// The same for proto_msg, dispatching on its type (decode takes any known type).
int proto_msg_check(const proto_msg *m);
int proto_msg_encode(const proto_msg *m, msgpack_sbuffer *out);
int proto_msg_decode(const void *data, size_t size, proto_msg *out);
void proto_msg_free(proto_msg *m);

// Wire names of the enums; NULL for a value outside the enum.
const char *proto_finish_name(proto_finish f);
const char *proto_weight_transport_name(proto_weight_transport t);
const char *proto_command_name(proto_command c);
const char *proto_role_name(proto_role r);

// Generated tokens in a trajectory (count of generated[i] != 0).
uint32_t proto_trajectory_n_generated(const proto_trajectory *t);

#endif
