// Multi-turn environment episodes through the rollout generator, end to end on the CPU backend.
//
// A random model never writes a tool call, so the test first teaches one: a `demo` model with the
// byte-level tokenizer is fine-tuned in-process (full-batch AdamW on three sequences) to answer one
// calculator problem (digits=1, terms=2, ops=+, a fixed env seed) with a tool call, then the answer:
//   Compute E.\n <calc>E</calc> <result>V</result> \boxed{V}<|endoftext|>                 (twice)
//   Compute E.\n <calc>E</calc> <result>V</result> The answer is \boxed{V}<|endoftext|>   (once)
// The loss covers the model's own turns only (not the prompt, not the tool result), and the tool
// result is the environment's own observation. The 2:1 split of the final turn gives greedy decoding
// one answer and sampling two. Requests then go through hy_generator, as the rollout worker and
// the colocated source send them:
//   episode    greedy, n = 2: two turns; a tool call ending "</calc>", then the observation appended
//              (generated = 0, logprobs 0) decoding to the environment's "<result>V</result>", then
//              the final answer and eos; weight versions on every token; the learner's replay
//              (online_rl.c env_reward: each generated segment, a final eos left out, through a
//              fresh environment reset with the same seed) reproduces the appended observations and
//              ends the episode with reward 1; no sequence stays held
//   refused    unknown environment, bad parameters, missing env_seed: n trajectories of finish
//              "error" each, the reason logged; the next request is served
//   cut        max_tokens shorter than the tool call: one turn, finish "length", replay reward 0
//   diversity  temperature 1, n = 16: samples that made the same tool call draw their next turn from
//              different random streams, so the 2:1 final answer shows up in both forms
//   room       an engine whose max_len holds the whole episode but not a second turn of the full
//              max_tokens: the second turn gets the room that is left and the episode completes
//
// Everything is deterministic (greedy, or fixed sampling seeds on the bit-exact CPU engine). The
// diversity check cannot flake by chance once the seeds are fixed; with other seeds its miss
// probability is (2/3)^k + (1/3)^k for k samples sharing a first turn, 1.5e-3 at k = 16.
//
// Usage: test_episode [SOURCE_DIR] (CTest passes it; nothing is read from it: the tokenizer is generated)
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "../common/hy_error.h"
#include "../evals/env.h"
#include "../learner/packing.h"
#include "../learner/sft_data.h"
#include "../learner/trainer.h"
#include "../model/model.h"
#include "../model/tokenizer.h"
#include "../model/tokenizer_bytes.h"
#include "../proto/messages.h"
#include "../rollout/engine.h"
#include "../rollout/episode.h"
#include "../rollout/generator.h"

static const char *const ENV_PARAMS = "digits=1,terms=2,ops=+";
static const char *const ENV_SEED = "11";
enum { MAX_TOKENS = 32, MAX_OUT = 32 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "%s: %s\n", what, hy_last_error());
    exit(1);
}

// ---- the problem and what the model is taught ----------------------------------------------------

typedef struct {
    char prompt[64];  // "Compute E.\n": the problem line of the environment's first observation
    char call[64];    // "<calc>E</calc>"
    char obs[64];     // the environment's answer to the call: "<result>V</result>"
    char answer[32];  // V
} problem;

static void problem_make(problem *pb) {
    hy_env *env;
    char *first = NULL;
    if (hy_env_new(&env, "calculator", ENV_PARAMS)) die("calculator");
    hy_env_reset(env, strtoull(ENV_SEED, NULL, 10), &first);
    const char *dot = strchr(first, '.');
    if (strncmp(first, "Compute ", 8) || !dot) {
        fprintf(stderr, "unexpected calculator observation: %s\n", first);
        exit(1);
    }
    const int n_expr = (int)(dot - first) - 8;
    snprintf(pb->prompt, sizeof pb->prompt, "Compute %.*s.\n", n_expr, first + 8);
    snprintf(pb->call, sizeof pb->call, "<calc>%.*s</calc>", n_expr, first + 8);
    snprintf(pb->answer, sizeof pb->answer, "%s", hy_env_answer(env));
    hy_env_step_result sr;
    if (hy_env_step(env, pb->call, &sr) || sr.done) die("calculator tool call");
    snprintf(pb->obs, sizeof pb->obs, "%s", sr.observation);
    hy_env_step_result_free(&sr);
    free(first);
    hy_env_destroy(env);
}

// Appends text's bytes (the byte tokenizer's ids) to ids/mask with the given mask bit.
static int put(int32_t *ids, uint8_t *mask, int n, const char *text, uint8_t bit) {
    for (const char *c = text; *c; c++) {
        ids[n] = (uint8_t)*c;
        mask[n++] = bit;
    }
    return n;
}

static void add_episode(hy_dataset *ds, const problem *pb, const char *final_turn) {
    int32_t ids[256];
    uint8_t mask[256];
    int n = put(ids, mask, 0, pb->prompt, 0);
    n = put(ids, mask, n, pb->call, 1);
    n = put(ids, mask, n, pb->obs, 0);
    n = put(ids, mask, n, final_turn, 1);
    ids[n] = HY_BYTES_ENDOFTEXT;
    mask[n++] = 1;
    hy_dataset_add(ds, ids, mask, n);
}

// Full-batch AdamW until the loss is within 0.005 of its floor (the split's entropy share: then the
// turns are learnt and the split is near 2:1), at most 400 steps; returns the final loss. lr 1e-2
// gets there in 33 steps (3.5 s on 2 cores); 3e-3 takes 86 steps, 9 s.
static double teach(hy_model *m, const problem *pb, int *steps_out) {
    char boxed[64], sentence[80];
    snprintf(boxed, sizeof boxed, "\\boxed{%s}", pb->answer);
    snprintf(sentence, sizeof sentence, "The answer is \\boxed{%s}", pb->answer);
    hy_dataset ds;
    hy_dataset_init(&ds);
    add_episode(&ds, pb, boxed);
    add_episode(&ds, pb, boxed);
    add_episode(&ds, pb, sentence);
    const int idx[3] = {0, 1, 2};
    hy_step_batch sb = {0};
    hy_pack_step(&ds, idx, 3, 0, &sb);
    // The floor of the token-mean loss: the split token costs −log(2/3) twice and −log(1/3) once.
    const double floor_loss = (2.0 * -log(2.0 / 3.0) - log(1.0 / 3.0)) / (double)sb.targets;
    const adamw_params hp = {1e-2, 0.9, 0.95, 1e-8, 0.0};
    hy_trainer t;
    hy_trainer_init(&t, m, &hp, 1.0f);
    hy_step_stats st = {0};
    int s = 0;
    for (; s < 400; s++) {
        if (hy_trainer_step_batch(&t, &sb, HY_LOSS_NORM_TOKEN, hp.lr, &st)) die("training step");
        if (st.loss < floor_loss + 0.005) break;
    }
    CHECK(st.loss < floor_loss + 0.005, "not taught: loss %.4f after %d steps, floor %.4f", st.loss, s, floor_loss);
    *steps_out = s + 1;
    hy_trainer_free(&t);
    hy_step_batch_free(&sb);
    hy_dataset_free(&ds);
    return st.loss;
}

// ---- requests, trajectories, replay --------------------------------------------------------------

typedef struct {
    proto_gen_request r;
    int32_t prompt[64];
    proto_str_pair meta[2];
} request;

// A calculator request for pb's prompt; env_id, params and seed may be overridden (NULL: left out).
static void request_make(request *q, uint64_t id, const problem *pb, uint32_t n, float temperature, int max_tokens,
                         const char *env_id, const char *params, const char *seed) {
    memset(q, 0, sizeof *q);
    int n_prompt = 0;
    for (const char *c = pb->prompt; *c; c++) q->prompt[n_prompt++] = (uint8_t)*c;
    int n_meta = 0;
    if (seed) q->meta[n_meta++] = (proto_str_pair){"env_seed", (char *)seed};
    if (params) q->meta[n_meta++] = (proto_str_pair){"env_params", (char *)params};
    q->r.id = id;
    q->r.group_id = id;
    q->r.prompt = q->prompt;
    q->r.n_prompt = (uint32_t)n_prompt;
    q->r.sampling = (proto_sampling){temperature, 1.0f, 0, 1000 + id * 4096u, true, 0};
    q->r.n = n;
    q->r.max_tokens = (uint32_t)max_tokens;
    q->r.env_id = (char *)env_id;
    q->r.metadata = (proto_str_map){q->meta, (uint32_t)n_meta};
}

// Steps g until idle, taking every trajectory into out (n_out of MAX_OUT so far). 0 / −1.
static int drain(hy_generator *g, proto_trajectory *out, int *n_out) {
    for (int steps = 0; steps < 20000; steps++) {
        const int rc = hy_generator_step(g);
        proto_trajectory tr;
        while (hy_generator_take(g, &tr)) {
            if (*n_out < MAX_OUT)
                out[(*n_out)++] = tr;
            else
                proto_trajectory_free(&tr);
        }
        if (rc <= 0) return rc;
    }
    return hy_fail("generator still busy after 20000 steps");
}

static void free_all(proto_trajectory *t, int *n) {
    for (int i = 0; i < *n; i++) proto_trajectory_free(&t[i]);
    *n = 0;
}

static char *decode(const hy_tokenizer *tok, const int32_t *ids, int n) {
    char *text = NULL;
    size_t len = 0;
    if (hy_tokenizer_decode(tok, ids, n, 0, &text, &len)) die("decode");
    return text;
}

// A completion's runs of equal origin: run k is [start[k], start[k + 1]), generated or appended.
typedef struct {
    int n, start[HY_EPISODE_MAX_TURNS * 2 + 1];
    int generated[HY_EPISODE_MAX_TURNS * 2];
} runs;

static void runs_of(const proto_trajectory *tr, runs *r) {
    r->n = 0;
    for (uint32_t i = 0; i < tr->n_completion; i++)
        if (i == 0 || tr->generated[i] != tr->generated[i - 1]) {
            r->generated[r->n] = tr->generated[i];
            r->start[r->n++] = (int)i;
        }
    r->start[r->n] = (int)tr->n_completion;
}

typedef struct {
    int turns, done;
    double reward;
    char obs[512];  // the observations the replay produced, concatenated
} replay;

// The learner's scoring (learner/online_rl.c, env_reward): each generated segment, a final eos left
// out, decoded without special tokens, through a fresh environment reset with the episode's seed.
static void replay_run(const hy_tokenizer *tok, const hy_config *cfg, const proto_trajectory *tr, replay *rp) {
    memset(rp, 0, sizeof *rp);
    hy_env *env;
    char *first = NULL;
    if (hy_env_new(&env, "calculator", ENV_PARAMS)) die("calculator");
    hy_env_reset(env, strtoull(ENV_SEED, NULL, 10), &first);
    free(first);
    runs r;
    runs_of(tr, &r);
    for (int k = 0; k < r.n && !rp->done; k++) {
        if (!r.generated[k]) continue;
        int n = r.start[k + 1] - r.start[k];
        for (int e = 0; n > 0 && e < cfg->n_eos; e++)
            if (tr->completion[r.start[k] + n - 1] == cfg->eos_token_ids[e]) {
                n--;
                break;
            }
        char *text = NULL;
        size_t len = 0;
        if (hy_tokenizer_decode(tok, tr->completion + r.start[k], n, 1, &text, &len)) die("decode");
        hy_env_step_result sr;
        const int rc = hy_env_step(env, text, &sr);
        free(text);
        CHECK(rc == 0, "replay step: %s", hy_last_error());
        if (rc) break;
        rp->turns++;
        rp->done = sr.done;
        rp->reward = sr.reward;
        strncat(rp->obs, sr.observation, sizeof rp->obs - strlen(rp->obs) - 1);
        hy_env_step_result_free(&sr);
    }
    hy_env_destroy(env);
}

// The concatenated text of the completion's appended runs.
static void appended_text(const hy_tokenizer *tok, const proto_trajectory *tr, char *out, size_t cap) {
    runs r;
    runs_of(tr, &r);
    out[0] = '\0';
    for (int k = 0; k < r.n; k++)
        if (!r.generated[k]) {
            char *t = decode(tok, tr->completion + r.start[k], r.start[k + 1] - r.start[k]);
            strncat(out, t, cap - strlen(out) - 1);
            free(t);
        }
}

static const proto_trajectory *find(const proto_trajectory *t, int n, uint64_t request, uint32_t sample) {
    for (int i = 0; i < n; i++)
        if (t[i].request_id == request && t[i].sample_index == sample) return &t[i];
    return NULL;
}

static void check_nothing_held(const hy_engine *e, const char *when) {
    hy_engine_stats st;
    hy_engine_stats_get(e, &st);
    CHECK(st.held == 0 && st.running == 0 && st.waiting == 0 && st.free_slots == st.n_slots &&
              st.free_blocks == st.n_blocks,
          "%s: engine not empty (held %d, running %d, waiting %d, free slots %d of %d, blocks %d of %d)", when,
          st.held, st.running, st.waiting, st.free_slots, st.n_slots, st.free_blocks, st.n_blocks);
}

static hy_engine *engine_make(const hy_model *m, const hy_tokenizer *tok, int max_seqs, int max_len) {
    hy_engine_config c;
    hy_engine_config_default(&c);
    c.max_seqs = max_seqs;
    c.max_len = max_len;
    c.block_size = 16;
    c.prefill_chunk = 64;
    c.step_tokens = 128;
    c.memory_bytes = (size_t)64 << 20;
    c.tok = tok;
    hy_engine *e;
    if (hy_engine_new(&e, m, &c)) die("engine");
    return e;
}

// ---- the cases -----------------------------------------------------------------------------------

// One greedy episode trajectory: layout, texts, logprobs, versions, replay.
static void check_episode(const hy_tokenizer *tok, const hy_config *cfg, const problem *pb,
                          const proto_trajectory *tr, uint64_t version) {
    CHECK(tr->finish_reason == PROTO_FINISH_EOS || tr->finish_reason == PROTO_FINISH_ENV,
          "sample %u: finish %s, want eos (the final answer ended the episode)", tr->sample_index,
          proto_finish_name(tr->finish_reason));
    CHECK(tr->n_turns == 2, "sample %u: %u turns, want 2 (tool call, final answer)", tr->sample_index, tr->n_turns);
    CHECK(tr->n_prompt == strlen(pb->prompt), "sample %u: prompt of %u tokens", tr->sample_index, tr->n_prompt);
    runs r;
    runs_of(tr, &r);
    CHECK(r.n == 3 && r.generated[0] && !r.generated[1] && r.generated[2],
          "sample %u: want generated, appended, generated runs (got %d runs)", tr->sample_index, r.n);
    if (r.n == 3) {
        char *call = decode(tok, tr->completion, r.start[1]);
        char *obs = decode(tok, tr->completion + r.start[1], r.start[2] - r.start[1]);
        char *final = decode(tok, tr->completion + r.start[2], r.start[3] - r.start[2]);
        const size_t lc = strlen(call);
        CHECK(lc >= 7 && !strcmp(call + lc - 7, "</calc>"), "sample %u: the first turn \"%s\" ends at </calc>",
              tr->sample_index, call);
        CHECK(!strcmp(call, pb->call), "sample %u: tool call \"%s\", taught \"%s\"", tr->sample_index, call, pb->call);
        CHECK(!strcmp(obs, pb->obs), "sample %u: appended \"%s\", the environment's observation is \"%s\"",
              tr->sample_index, obs, pb->obs);
        char want[96];
        snprintf(want, sizeof want, "\\boxed{%s}<|endoftext|>", pb->answer);
        CHECK(!strcmp(final, want), "sample %u: final turn \"%s\", want \"%s\" (greedy takes the 2/3 form)",
              tr->sample_index, final, want);
        free(call);
        free(obs);
        free(final);
    }
    CHECK(tr->n_completion > 0 && tr->completion[tr->n_completion - 1] == HY_BYTES_ENDOFTEXT,
          "sample %u: the completion ends with eos", tr->sample_index);
    CHECK(tr->n_logprobs == tr->n_completion, "sample %u: %u logprobs for %u tokens", tr->sample_index,
          tr->n_logprobs, tr->n_completion);
    int bad_lp = 0, bad_version = 0;
    for (uint32_t i = 0; i < tr->n_logprobs; i++) {
        if (tr->generated[i])
            bad_lp += !(isfinite(tr->logprobs[i]) && tr->logprobs[i] <= 0.0f && isfinite(tr->model_logprobs[i]) &&
                        tr->model_logprobs[i] <= 0.0f);
        else
            bad_lp += tr->logprobs[i] != 0.0f || tr->model_logprobs[i] != 0.0f;
        bad_version += tr->weight_version[i] != version;
    }
    CHECK(bad_lp == 0, "sample %u: %d tokens with bad logprobs (appended: exactly 0; generated: finite, <= 0)",
          tr->sample_index, bad_lp);
    CHECK(bad_version == 0, "sample %u: %d tokens not of weight version %llu", tr->sample_index, bad_version,
          (unsigned long long)version);
    replay rp;
    replay_run(tok, cfg, tr, &rp);
    char appended[512];
    appended_text(tok, tr, appended, sizeof appended);
    CHECK(!strcmp(rp.obs, appended), "sample %u: the replay's observations \"%s\" differ from the appended \"%s\"",
          tr->sample_index, rp.obs, appended);
    CHECK(rp.done && rp.reward == 1.0 && rp.turns == (int)tr->n_turns,
          "sample %u: replay done %d, reward %g over %d turns (want done, 1, %u turns)", tr->sample_index, rp.done,
          rp.reward, rp.turns, tr->n_turns);
}

static void test_episode_and_refusals(const hy_model *m, const hy_tokenizer *tok, const problem *pb) {
    hy_engine *e = engine_make(m, tok, 16, 128);
    FILE *log = tmpfile();
    if (!log) die("tmpfile");
    hy_generator *g = hy_generator_new(e, tok, &m->cfg, 5, "test", log);
    proto_trajectory out[MAX_OUT];
    int n_out = 0;

    // Refused at submission: answered at once with error trajectories, before any step.
    request bad[3];
    request_make(&bad[0], 1, pb, 3, 0.0f, MAX_TOKENS, "calculater", ENV_PARAMS, ENV_SEED);
    request_make(&bad[1], 2, pb, 1, 0.0f, MAX_TOKENS, "calculator", "digits=9", ENV_SEED);
    request_make(&bad[2], 3, pb, 2, 0.0f, MAX_TOKENS, "calculator", ENV_PARAMS, NULL);
    for (int i = 0; i < 3; i++) hy_generator_submit(g, &bad[i].r);
    proto_trajectory tr;
    while (n_out < MAX_OUT && hy_generator_take(g, &tr)) out[n_out++] = tr;
    CHECK(n_out == 6, "refused requests answered at once: %d trajectories, want 3 + 1 + 2", n_out);
    int errors = 0;
    for (int i = 0; i < n_out; i++)
        errors += out[i].finish_reason == PROTO_FINISH_ERROR && out[i].n_completion == 0 && out[i].n_turns == 1 &&
                  out[i].n_prompt == bad[0].r.n_prompt &&
                  !memcmp(out[i].prompt, bad[0].prompt, sizeof(int32_t) * out[i].n_prompt);
    CHECK(errors == 6, "%d of the refusals are error trajectories with the prompt and no completion", errors);
    for (int i = 0; i < 3; i++)
        for (uint32_t s = 0; s < bad[i].r.n; s++)
            CHECK(find(out, n_out, bad[i].r.id, s), "request %llu sample %u answered", (unsigned long long)bad[i].r.id,
                  s);
    char logged[4096] = {0};
    fflush(log);
    rewind(log);
    const size_t n_log = fread(logged, 1, sizeof logged - 1, log);
    logged[n_log] = '\0';
    CHECK(strstr(logged, "request 1 refused") && strstr(logged, "calculater"), "unknown environment logged:\n%s",
          logged);
    CHECK(strstr(logged, "request 2 refused") && strstr(logged, "digits"), "bad parameter logged:\n%s", logged);
    CHECK(strstr(logged, "request 3 refused") && strstr(logged, "env_seed"), "missing env_seed logged:\n%s", logged);
    free_all(out, &n_out);

    // The next request is served: the taught episode, greedy, two samples.
    request ok;
    request_make(&ok, 4, pb, 2, 0.0f, MAX_TOKENS, "calculator", ENV_PARAMS, ENV_SEED);
    hy_generator_submit(g, &ok.r);
    CHECK(drain(g, out, &n_out) == 0, "generator: %s", hy_last_error());
    CHECK(n_out == 2, "the episode request gives %d trajectories, want 2", n_out);
    for (uint32_t s = 0; s < 2; s++) {
        const proto_trajectory *t = find(out, n_out, 4, s);
        CHECK(t != NULL, "sample %u of the episode request", s);
        if (t) check_episode(tok, &m->cfg, pb, t, 5);
    }
    if (n_out >= 1) {
        char *text = decode(tok, out[0].completion, (int)out[0].n_completion);
        printf("  episode    greedy, 2 samples of %u turns: %s\n", out[0].n_turns, text);
        free(text);
    }
    check_nothing_held(e, "after the episodes");
    hy_generator_stats gs;
    hy_generator_stats_get(g, &gs);
    CHECK(gs.refused == 3 && gs.episodes == 2 && gs.trajectories == 2,
          "generator stats: refused %llu, episodes %llu, trajectories %llu (want 3, 2, 2)",
          (unsigned long long)gs.refused, (unsigned long long)gs.episodes, (unsigned long long)gs.trajectories);
    free_all(out, &n_out);
    printf("  refused    unknown environment, bad parameter, missing env_seed: 6 error trajectories, logged\n");

    // A first turn cut by max_tokens ends the episode there; later tokens carry the new version.
    hy_generator_weights(g, 9);
    request cut;
    request_make(&cut, 5, pb, 1, 0.0f, 4, "calculator", ENV_PARAMS, ENV_SEED);
    hy_generator_submit(g, &cut.r);
    CHECK(drain(g, out, &n_out) == 0, "generator: %s", hy_last_error());
    CHECK(n_out == 1, "the cut request gives %d trajectories, want 1", n_out);
    if (n_out == 1) {
        const proto_trajectory *t = &out[0];
        int generated = 0, version_ok = 1;
        for (uint32_t i = 0; i < t->n_completion; i++) {
            generated += t->generated[i];
            version_ok &= t->weight_version[i] == 9;
        }
        CHECK(t->n_turns == 1 && t->finish_reason == PROTO_FINISH_LENGTH && t->n_completion == 4 && generated == 4,
              "cut: %u turns, finish %s, %u tokens (%d generated); want 1 turn, length, 4 generated", t->n_turns,
              proto_finish_name(t->finish_reason), t->n_completion, generated);
        CHECK(version_ok, "cut: tokens carry the weight version 9 set before the request");
        replay rp;
        replay_run(tok, &m->cfg, t, &rp);
        CHECK(rp.turns == 1 && rp.done && rp.reward == 0.0, "cut: replay %d turns, done %d, reward %g (want 1, 1, 0)",
              rp.turns, rp.done, rp.reward);
    }
    check_nothing_held(e, "after the cut episode");
    free_all(out, &n_out);
    printf("  cut        max_tokens 4: one turn, finish length, replay reward 0\n");
    hy_generator_destroy(g);
    hy_engine_destroy(e);
    fclose(log);
}

// Samples of a group that made the same tool call must still differ afterwards: each turn of each
// sample needs its own random stream.
static void test_diversity(const hy_model *m, const hy_tokenizer *tok, const problem *pb) {
    enum { N = 16 };
    hy_engine *e = engine_make(m, tok, N, 128);
    hy_generator *g = hy_generator_new(e, tok, &m->cfg, 0, "test", stderr);
    request q;
    request_make(&q, 6, pb, N, 1.0f, MAX_TOKENS, "calculator", ENV_PARAMS, ENV_SEED);
    hy_generator_submit(g, &q.r);
    proto_trajectory out[MAX_OUT];
    int n_out = 0;
    CHECK(drain(g, out, &n_out) == 0, "generator: %s", hy_last_error());
    CHECK(n_out == N, "%d trajectories, want %d", n_out, N);
    // Among samples whose first turn and observation are the same token for token, the rest must
    // not all be the same either.
    int taught_call = 0, same_prefix = 0, differ_after = 0, two_turns = 0, rewarded = 0;
    char first_form[96] = "";
    for (int i = 0; i < n_out; i++) {
        runs r;
        runs_of(&out[i], &r);
        two_turns += out[i].n_turns == 2;
        replay rp;
        replay_run(tok, &m->cfg, &out[i], &rp);
        rewarded += rp.done && rp.reward == 1.0;
        if (r.n < 3 || !r.generated[0]) continue;
        char *call = decode(tok, out[i].completion, r.start[1]);
        taught_call += !strcmp(call, pb->call);
        free(call);
        for (int j = 0; j < i; j++) {
            runs rj;
            runs_of(&out[j], &rj);
            if (rj.n < 3 || rj.start[2] != r.start[2] ||
                memcmp(out[i].completion, out[j].completion, sizeof(int32_t) * (size_t)r.start[2]))
                continue;
            same_prefix++;
            differ_after += out[i].n_completion != out[j].n_completion ||
                            memcmp(out[i].completion, out[j].completion, sizeof(int32_t) * out[i].n_completion);
        }
        if (!first_form[0]) {
            char *t = decode(tok, out[i].completion + r.start[2], r.start[3] - r.start[2]);
            snprintf(first_form, sizeof first_form, "%s", t);
            free(t);
        }
    }
    CHECK(same_prefix > 0, "no two samples made the same tool call (%d of %d made the taught one)", taught_call, n_out);
    CHECK(differ_after > 0,
          "all %d pairs of samples with the same tool call continued identically: later turns reuse one random "
          "stream for every sample",
          same_prefix);
    check_nothing_held(e, "after the sampled episodes");
    printf("  diversity  temperature 1, %d samples: %d taught tool calls, %d two-turn episodes, %d rewarded; "
           "%d of %d pairs with one tool call differ later\n",
           n_out, taught_call, two_turns, rewarded, differ_after, same_prefix);
    free_all(out, &n_out);
    hy_generator_destroy(g);
    hy_engine_destroy(e);
}

// The engine's max_len bounds the whole episode; a later turn gets the room that is left.
static void test_room(const hy_model *m, const hy_tokenizer *tok, const problem *pb) {
    const int n_prompt = (int)strlen(pb->prompt), n_call = (int)strlen(pb->call), n_obs = (int)strlen(pb->obs);
    const int n_final = (int)strlen("\\boxed{}") + (int)strlen(pb->answer) + 1;
    // Room for the prompt, the call, the observation and the final answer with some slack, but not
    // for a second turn of MAX_TOKENS: the first turn fits whole, an append of MAX_TOKENS does not.
    const int max_len = n_prompt + n_call + n_obs + n_final + 4;
    if (n_prompt + MAX_TOKENS > max_len || n_prompt + n_call + n_obs + MAX_TOKENS <= max_len) {
        fprintf(stderr, "room: the problem's lengths do not make the case\n");
        exit(1);
    }
    hy_engine *e = engine_make(m, tok, 2, max_len);
    hy_generator *g = hy_generator_new(e, tok, &m->cfg, 0, "test", stderr);
    request q;
    request_make(&q, 7, pb, 1, 0.0f, MAX_TOKENS, "calculator", ENV_PARAMS, ENV_SEED);
    hy_generator_submit(g, &q.r);
    proto_trajectory out[MAX_OUT];
    int n_out = 0;
    CHECK(drain(g, out, &n_out) == 0, "generator: %s", hy_last_error());
    CHECK(n_out == 1, "%d trajectories, want 1", n_out);
    if (n_out == 1) {
        replay rp;
        replay_run(tok, &m->cfg, &out[0], &rp);
        CHECK(out[0].n_turns == 2 && rp.done && rp.reward == 1.0,
              "max_len %d: %u turns, finish %s, replay reward %g; want the episode completed in 2 turns "
              "(the last turn cut to the room left, not refused)",
              max_len, out[0].n_turns, proto_finish_name(out[0].finish_reason), rp.reward);
    }
    check_nothing_held(e, "after the episode at max_len");
    printf("  room       max_len %d (< a second turn of %d tokens): %u turns, finish %s\n", max_len, MAX_TOKENS,
           n_out ? out[0].n_turns : 0, n_out ? proto_finish_name(out[0].finish_reason) : "-");
    free_all(out, &n_out);
    hy_generator_destroy(g);
    hy_engine_destroy(e);
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    const double t0 = now_s();
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "/tmp/hy_test_episode.%d", (int)getpid());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    hy_tokenizer *tok;
    if (hy_tokenizer_bytes_write(path) || hy_tokenizer_load(&tok, path)) die("byte tokenizer");
    remove(path);
    rmdir(dir);

    hy_config cfg;
    if (hy_config_preset(&cfg, "demo")) die("preset demo");
    hy_model m;
    hy_model_init(&m, &cfg, 3);
    problem pb;
    problem_make(&pb);
    int steps = 0;
    const double loss = teach(&m, &pb, &steps);
    const double t1 = now_s();
    printf("  teach      \"%.*s\" -> %s %s \\boxed{%s}: %d full-batch steps, loss %.4f (%.1f s)\n",
           (int)strlen(pb.prompt) - 1, pb.prompt, pb.call, pb.obs, pb.answer, steps, loss, t1 - t0);

    test_episode_and_refusals(&m, tok, &pb);
    test_diversity(&m, tok, &pb);
    test_room(&m, tok, &pb);

    hy_model_free(&m);
    hy_tokenizer_free(tok);
    printf("  total      %.1f s\n", now_s() - t0);
    return check_summary("test_episode");
}
