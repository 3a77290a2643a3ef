// The rollout engine: many sequences generated at once from one model, with their state in a
// pool sized once at start-up (design: docs/rollout.md).
//
// Usage: hy_engine_new; hy_engine_submit (or _submit_n for n samples of one prompt) any number of
// requests; call hy_engine_step until it returns 0, taking finished turns with hy_engine_poll as
// they come. A request made with hold keeps its state after finishing: hy_engine_append adds
// tokens (a tool result, the next user turn) and generates again without recomputing the prefix,
// hy_engine_fork copies it, hy_engine_release frees it. hy_engine_bump_weights marks a weight
// update: later tokens carry the new version and prefix snapshots of the old weights are dropped.
//
// Written only against the model's backend table, so the same engine runs on the CPU reference
// and on CUDA. Requests that are invalid are refused at submission (−1, hy_last_error names the
// request and the field); the engine keeps serving the others. No request is dropped for lack of
// memory: it waits, or is preempted (swapped to host memory, or recomputed) and resumed.
//
// Determinism: every sequence samples with its own RNG (seeded by its request), its prefill is cut
// at positions that depend on the sequence alone (scheduler.h) and the forward treats every
// document independently, so on the CPU backend the tokens and logprobs of a request are bit for
// bit the same however it is batched, forked, preempted by swapping, or resumed from a snapshot.
#ifndef HY_ENGINE_H
#define HY_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "../model/model.h"
#include "../model/tokenizer.h"
#include "sampler.h"
#include "stop.h"

typedef struct {
    size_t memory_bytes;      // backend memory for GDN states + KV blocks; 0 = memory_fraction
    double memory_fraction;   // of the backend's free memory, when memory_bytes is 0
    int max_seqs;             // sequences held at once at most (the budget may allow fewer)
    int max_len;              // tokens per sequence at most: prompt + generated + appended
    int block_size;           // tokens per KV block
    int prefill_chunk;        // prefill tokens of one sequence per step (best a multiple of 64)
    int step_tokens;          // token budget of a step (decodes + prefill pieces)
    size_t swap_bytes;        // host memory for preempted sequences; beyond it they are recomputed
    size_t snapshot_bytes;    // host memory for prefix snapshots; 0 = no prefix cache
    const hy_tokenizer *tok;  // for stop strings (may be NULL: then stop strings are refused)
    int verbose;              // start-up line (pool sizing) on stderr
    int cuda_graphs;          // replay decode steps as CUDA graphs, one per batch size (backend.h)
} hy_engine_config;

// Defaults: fraction 0.5, 64 sequences of up to 2048 tokens, blocks of 16, chunk 256, 1024 tokens
// a step, 1 GiB of swap, no prefix cache, no tokenizer, quiet, CUDA graphs on.
void hy_engine_config_default(hy_engine_config *c);

typedef struct {
    float temperature;  // 0 = greedy
    int top_k;          // 0 = off
    float top_p;        // 1 = off
    uint64_t seed;      // the sequence's RNG; sample i of submit_n uses seed + i
    int max_tokens;     // tokens to generate in this turn at most
    int n_logprobs;     // alternatives per generated token (untempered), 0 .. HY_MAX_TOP_LOGPROBS
    int ignore_eos;
    const char *const *stop;  // stop strings (copied), at most HY_MAX_STOP_STRINGS
    int n_stop;
    int hold;           // keep the state after the turn (for append / fork) until released
} hy_gen_params;

// Defaults: temperature 1, no top-k / top-p, seed 0, 16 tokens, no alternatives, no stop strings.
void hy_gen_params_default(hy_gen_params *p);

typedef enum { HY_TOKEN_PROMPT = 0, HY_TOKEN_GENERATED = 1, HY_TOKEN_APPENDED = 2 } hy_token_origin;

// One finished turn of a sequence: its whole trajectory so far, and which part this turn made.
typedef struct {
    int64_t id;
    hy_finish finish;
    int stop_index;           // the stop string matched (HY_FINISH_STOP_STRING), −1 otherwise
    int n;                    // trajectory length
    int32_t *tokens;          // (n)
    uint8_t *origin;          // (n) hy_token_origin
    float *logprobs;          // (n) generated tokens: under the sampling distribution; 0 otherwise
    float *model_logprobs;    // (n) generated tokens: under the untempered model; 0 otherwise
    uint32_t *weight_version; // (n) generated tokens: the weight version that sampled them
    int n_top;                // alternatives per token in this turn's request
    int32_t *top_ids;         // (n, n_top) generated tokens' alternatives, most likely first; −1 elsewhere
    float *top_logprobs;      // (n, n_top)
    int turn_start, n_new;    // this turn generated tokens [turn_start, turn_start + n_new)
    int held;                 // the state is still held (hy_engine_append / fork / release)
} hy_result;

void hy_result_free(hy_result *r);

typedef struct {
    int waiting, running, held;
    int64_t finished, steps, generated_tokens, prefill_tokens;
    int64_t preemptions, swapped, recomputed, snapshot_hits, forks;
    int n_slots, free_slots, n_blocks, free_blocks, block_size, max_len;
    size_t pool_bytes;        // the backend memory of the pool
    size_t bytes_in_use;      // of it: slots and blocks taken
    size_t swap_bytes_in_use, snapshot_bytes_in_use;
    uint32_t weight_version;
    // wall time of all steps so far, and of their parts: the batched forward (on a GPU it ends
    // when the logits are on the host) and the drawing of tokens; the rest is host bookkeeping
    double step_s, forward_s, sample_s;
    // decode steps launched as a CUDA graph (captured: the first run of a batch size's graph)
    int64_t graph_steps, graph_captures;
} hy_engine_stats;

typedef struct hy_engine hy_engine;

// −1 when the budget cannot hold one sequence of max_len, or a field is out of range.
int hy_engine_new(hy_engine **out, const hy_model *m, const hy_engine_config *cfg);
void hy_engine_destroy(hy_engine *e);

// A request: id ≥ 0, or −1 with a message naming the request and field (empty prompt, token id
// out of range, max_tokens beyond max_len, sampling parameter out of range, ...).
int64_t hy_engine_submit(hy_engine *e, const int32_t *prompt, int n_prompt, const hy_gen_params *p);
// n samples of one prompt: prefilled once, then forked (GDN states and conv windows copied, KV
// blocks shared copy-on-write); sample i samples with seed p->seed + i. ids (n). 0 / −1.
int hy_engine_submit_n(hy_engine *e, const int32_t *prompt, int n_prompt, const hy_gen_params *p, int n,
                       int64_t *ids);
// One step: admit, plan, one batched forward, sample. 1 while work remains, 0 when idle, −1 on an
// internal failure (message set).
int hy_engine_step(hy_engine *e);
// Runs steps until idle. 0 / −1.
int hy_engine_run(hy_engine *e);
// 1 with the next finished turn in *r (free with hy_result_free), 0 when none is ready.
int hy_engine_poll(hy_engine *e, hy_result *r);
// Continues a held sequence: tokens (n ≥ 1) appended, then a new turn generated under p. 0 / −1.
int hy_engine_append(hy_engine *e, int64_t id, const int32_t *tokens, int n, const hy_gen_params *p);
// A copy of a held sequence (new id, held, its state forked): −1 when not held or no slot is free.
int64_t hy_engine_fork(hy_engine *e, int64_t id);
// Frees a held sequence's state. 0 / −1 (not held).
int hy_engine_release(hy_engine *e, int64_t id);
// The weights changed: the version goes up and prefix snapshots are dropped.
void hy_engine_bump_weights(hy_engine *e);
void hy_engine_stats_get(const hy_engine *e, hy_engine_stats *s);
// The start-up description of the pool (how many sequences of which length fit).
const char *hy_engine_pool_text(const hy_engine *e);

#endif
