// Sample protocol messages of every type, shared by tests/test_proto.c (round trips, transport) and
// tests/fuzz/proto_seeds.c (the fuzz seed corpus, so the fuzzers start from valid frames).
//
// Per type a typical message and a minimal one (empty strings, arrays and maps wherever the spec
// allows them), plus a multi-turn trajectory with appended tokens and top-k alternatives. The
// structs point at static storage: never proto_*_free them.
#ifndef HY_TESTS_PROTO_SAMPLES_H
#define HY_TESTS_PROTO_SAMPLES_H

#include "proto/messages.h"

static int32_t sample_prompt[] = {100257, 9906, 11, 1268, 527, 499, 30, 0, 2147483647};
static int32_t sample_stop_ids[] = {100257, 100265};
static char *sample_stop_strings[] = {"</answer>", "\nUser:"};
static proto_str_pair sample_meta[] = {{"dataset", "gsm8k"}, {"split", "train"}, {"note", ""}};
static int32_t sample_completion[] = {791, 4320, 374, 220, 19, 13, 100257};
static uint8_t sample_generated[] = {1, 1, 1, 1, 1, 1, 1};
static float sample_logprobs[] = {-0.25f, -1.5f, -0.0f, -3.75f, -1e-7f, -20.0f, -0.5f};
static float sample_model_logprobs[] = {-0.5f, -2.25f, -0.125f, -4.0f, -1e-6f, -19.5f, -0.75f};
static uint64_t sample_versions[] = {7, 7, 7, 8, 8, 8, 18446744073709551615ull};
// multi-turn: 3 generated, 2 appended (a tool result), 2 generated; top_k = 2 over the 5 generated
static int32_t sample_mt_completion[] = {12, 13, 14, 500, 501, 15, 16};
static uint8_t sample_mt_generated[] = {1, 1, 1, 0, 0, 1, 1};
static float sample_mt_logprobs[] = {-0.1f, -0.2f, -0.3f, 0.0f, 0.0f, -0.4f, -0.5f};
static float sample_mt_model_logprobs[] = {-0.15f, -0.25f, -0.35f, 0.0f, 0.0f, -0.45f, -0.55f};
static uint64_t sample_mt_versions[] = {3, 3, 3, 3, 3, 4, 4};
static int32_t sample_mt_top_ids[] = {12, 99, 13, 98, 14, 97, 15, 96, 16, 95};
static float sample_mt_top_lp[] = {-0.1f, -2.5f, -0.2f, -2.6f, -0.3f, -2.7f, -0.4f, -2.8f, -0.5f, -2.9f};
static proto_score sample_scores[] = {{"format", 1.0}, {"length_penalty", -0.125}, {"exact", 0.0}};

enum { N_SAMPLES = 15 };

// Sample i of N_SAMPLES.
static proto_msg sample_msg(int i) {
    proto_msg m = {0};
    switch (i) {
    case 0:
        m.type = PROTO_GEN_REQUEST;
        m.u.gen_request = (proto_gen_request){
            .id = 42, .group_id = 7, .prompt = sample_prompt, .n_prompt = 9,
            .sampling = {.temperature = 1.0f, .top_p = 0.95f, .top_k = 50, .seed = 1234567890123ull,
                         .logprobs = true, .top_logprobs = 5},
            .n = 8, .max_tokens = 2048, .stop_token_ids = sample_stop_ids, .n_stop_token_ids = 2, .ignore_eos = true,
            .stop_strings = sample_stop_strings, .n_stop_strings = 2, .env_id = "python-sandbox",
            .metadata = {sample_meta, 3}};
        break;
    case 1:
        m.type = PROTO_GEN_REQUEST;
        m.u.gen_request = (proto_gen_request){
            .prompt = sample_prompt, .n_prompt = 1, .sampling = {.temperature = 0, .top_p = 1}, .n = 1,
            .max_tokens = 1};
        break;
    case 2:
        m.type = PROTO_TRAJECTORY;
        m.u.trajectory = (proto_trajectory){
            .id = 1001, .request_id = 42, .group_id = 7, .sample_index = 3, .prompt = sample_prompt, .n_prompt = 9,
            .completion = sample_completion, .n_completion = 7, .generated = sample_generated,
            .logprobs = sample_logprobs, .model_logprobs = sample_model_logprobs, .n_logprobs = 7,
            .weight_version = sample_versions, .finish_reason = PROTO_FINISH_EOS, .n_turns = 1, .queue_s = 0.5,
            .prefill_s = 0.0125, .decode_s = 1.75};
        break;
    case 3:
        m.type = PROTO_TRAJECTORY;
        m.u.trajectory = (proto_trajectory){.prompt = sample_prompt, .n_prompt = 1,
                                            .finish_reason = PROTO_FINISH_ABORT, .n_turns = 1};
        break;
    case 4:
        m.type = PROTO_TRAJECTORY;
        m.u.trajectory = (proto_trajectory){
            .id = 5, .request_id = 6, .group_id = 6, .prompt = sample_prompt, .n_prompt = 3,
            .completion = sample_mt_completion, .n_completion = 7, .generated = sample_mt_generated,
            .logprobs = sample_mt_logprobs, .model_logprobs = sample_mt_model_logprobs, .n_logprobs = 7,
            .weight_version = sample_mt_versions, .top_k = 2,
            .top_ids = sample_mt_top_ids, .top_logprobs = sample_mt_top_lp, .n_top = 10,
            .finish_reason = PROTO_FINISH_ENV, .n_turns = 2, .decode_s = 3};
        break;
    case 5:
        m.type = PROTO_REWARD_REQUEST;
        m.u.reward_request = (proto_reward_request){
            .trajectory_id = 1001, .verifier = "math_boxed", .completion_text = "The answer is \\boxed{4}. é ✓",
            .completion_tokens = sample_completion, .n_completion_tokens = 7, .reference = "4",
            .metadata = {sample_meta, 2}};
        break;
    case 6:
        m.type = PROTO_REWARD_REQUEST;
        m.u.reward_request = (proto_reward_request){.verifier = "v"};
        break;
    case 7:
        m.type = PROTO_REWARD_RESULT;
        m.u.reward_result = (proto_reward_result){.trajectory_id = 1001, .reward = 1.0, .scores = {sample_scores, 3},
                                                  .error = ""};
        break;
    case 8:
        m.type = PROTO_REWARD_RESULT;
        m.u.reward_result = (proto_reward_result){.trajectory_id = 9, .reward = -0.0, .error = "verifier timed out"};
        break;
    case 9:
        m.type = PROTO_WEIGHT_NOTICE;
        m.u.weight_notice = (proto_weight_notice){.version = 8, .checksum = 0xdeadbeefcafef00dull,
                                                  .transport = PROTO_WEIGHTS_NCCL, .location = "hybrid-sync-0"};
        break;
    case 10:
        m.type = PROTO_WEIGHT_NOTICE;
        m.u.weight_notice = (proto_weight_notice){.transport = PROTO_WEIGHTS_INPLACE};
        break;
    case 11:
        m.type = PROTO_CONTROL;
        m.u.control = (proto_control){.command = PROTO_CMD_DRAIN, .reason = "weights v8 ready"};
        break;
    case 12:
        m.type = PROTO_CONTROL;
        m.u.control = (proto_control){.command = PROTO_CMD_SHUTDOWN};
        break;
    case 13:
        m.type = PROTO_HEARTBEAT;
        m.u.heartbeat = (proto_heartbeat){.sender = "rollout-0@gpu-node-3", .role = PROTO_ROLE_ROLLOUT,
                                          .timestamp = 1767225600.125, .queued = 12, .running = 256,
                                          .tokens_per_s = 18500.5, .memory_used = 0.75, .weight_version = 8};
        break;
    default:
        m.type = PROTO_HEARTBEAT;
        m.u.heartbeat = (proto_heartbeat){.sender = "l", .role = PROTO_ROLE_LEARNER};
        break;
    }
    return m;
}

#endif
