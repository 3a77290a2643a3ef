// The rollout engine on the CPU backend, from its parts up, on a tiny random model:
// - paged attention equals flat cached attention bit for bit, through any block table;
// - the paged cache: reserve, copy-on-write, fork refcounts, slot images round-trip;
// - scheduler pieces, top-k alternatives, sampling-parameter checks, the prefix cache, stop rules;
// - the engine: continuous batching gives exactly the tokens and logprobs of one-at-a-time
//   generation; submit_n (prefill once, fork) equals separate prefills; preemption by swapping is
//   exact and by recomputing loses nothing; a whole-prompt snapshot hit is exact and a weight bump
//   drops snapshots; continuation equals a fresh run over the whole text; bad requests are refused
//   with a message naming the field while the others are served.
//
// Tolerances. Everything the engine promises to be exact is compared with ==: the CPU forward
// treats each document independently and a sequence's prefill pieces depend on it alone, so
// batching, forking, swapping and snapshot hits cannot change a bit. Two comparisons are not exact
// by construction and use 1e-4 on logprobs (with equal greedy tokens): continuation and recompute
// feed earlier generated tokens in one chunked prefill instead of one recurrent step each, and
// a fresh run over the whole text cuts its chunks elsewhere; on this model the observed gap is
// ~1e-6, so 1e-4 is loose enough to be stable and tight enough to catch a lost or shifted token.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "../common/rng.h"
#include "../model/model.h"
#include "../model/tokenizer.h"
#include "../rollout/engine.h"
#include "../rollout/prefix_cache.h"
#include "../rollout/sampler.h"
#include "../rollout/scheduler.h"
#include "../rollout/state_pool.h"
#include "../rollout/stop.h"

static int failures;

#define CHECK(cond, ...)                             \
    do {                                             \
        if (!(cond)) {                               \
            fprintf(stderr, "  FAIL: " __VA_ARGS__); \
            fprintf(stderr, "\n");                   \
            failures++;                              \
        }                                            \
    } while (0)

static const char *src_dir = ".";

// ---- paged attention op --------------------------------------------------------------------------

static void test_paged_attention(void) {
    const int H = 4, H_kv = 2, D = 8, bs = 4, B = 3, max_blocks = 6;
    const int lens[3] = {9, 1, 21}, q_len[3] = {3, 1, 5};
    const int n_blocks = 20, width = H_kv * D;
    hy_rng rng;
    hy_rng_init(&rng, 11);
    // a scrambled block assignment: sequence b's logical block i lives in pool block table[b][i]
    int32_t table[3 * 6];
    int perm[20];
    for (int i = 0; i < n_blocks; i++) perm[i] = i;
    for (int i = n_blocks - 1; i > 0; i--) {
        int j = (int)(hy_rng_next(&rng) % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int i = 0; i < B * max_blocks; i++) table[i] = -1;
    int next = 0;
    for (int b = 0; b < B; b++)
        for (int i = 0; i * bs < lens[b]; i++) table[b * max_blocks + i] = perm[next++];
    float *kp = calloc((size_t)n_blocks * bs * width, sizeof(float)), *vp = calloc((size_t)n_blocks * bs * width, sizeof(float));
    int Tq = 0, q_start[3];
    for (int b = 0; b < B; b++) {
        q_start[b] = Tq;
        Tq += q_len[b];
    }
    float *q = malloc(sizeof(float) * (size_t)Tq * H * D), *o = malloc(sizeof(float) * (size_t)Tq * H * D);
    for (int i = 0; i < Tq * H * D; i++) q[i] = hy_rng_normal(&rng);
    float *flat_k[3], *flat_v[3];
    for (int b = 0; b < B; b++) {
        flat_k[b] = malloc(sizeof(float) * (size_t)lens[b] * width);
        flat_v[b] = malloc(sizeof(float) * (size_t)lens[b] * width);
        for (int i = 0; i < lens[b] * width; i++) {
            flat_k[b][i] = hy_rng_normal(&rng);
            flat_v[b][i] = hy_rng_normal(&rng);
        }
        int32_t *rows = malloc(sizeof(int32_t) * (size_t)lens[b]);
        for (int j = 0; j < lens[b]; j++) rows[j] = table[b * max_blocks + j / bs] * bs + j % bs;
        kv_paged_write(kp, flat_k[b], rows, lens[b], width);
        kv_paged_write(vp, flat_v[b], rows, lens[b], width);
        free(rows);
    }
    paged_attn_shape s = {B, table, max_blocks, bs, q_start, q_len, lens, H, H_kv, D, 0.35f};
    attention_paged_forward(&s, o, q, kp, vp);
    int exact = 1, nonzero = 0;
    for (int b = 0; b < B; b++) {
        float *want = malloc(sizeof(float) * (size_t)q_len[b] * H * D);
        attention_cached_forward(want, q + (size_t)q_start[b] * H * D, flat_k[b], flat_v[b], q_len[b],
                                 lens[b] - q_len[b], H, H_kv, D, 0.35f);
        for (int i = 0; i < q_len[b] * H * D; i++) {
            exact &= want[i] == o[(size_t)q_start[b] * H * D + i];
            nonzero |= want[i] != 0.0f;
        }
        free(want);
        free(flat_k[b]);
        free(flat_v[b]);
    }
    CHECK(exact, "paged attention differs from flat cached attention");
    CHECK(nonzero, "attention outputs are all zero");
    printf("  paged attention  %d sequences, scrambled blocks of %d: bit-identical to the flat cache\n", B, bs);
    free(kp);
    free(vp);
    free(q);
    free(o);
}

// ---- tiny model ----------------------------------------------------------------------------------

static void tiny_model(hy_model *m) {
    hy_config c;
    if (hy_config_preset(&c, "tiny")) {
        fprintf(stderr, "preset tiny: %s\n", hy_last_error());
        exit(1);
    }
    hy_model_init(m, &c, 7);
}

static void random_tokens(int32_t *t, int n, uint64_t seed) {
    hy_rng r;
    hy_rng_init(&r, seed);
    for (int i = 0; i < n; i++) t[i] = (int32_t)(hy_rng_next(&r) % 250);  // below the tiny eos/pad ids
}

static void test_cache(const hy_model *m) {
    hy_cache c;
    hy_cache_spec spec = {3, 40, 8, 4};
    CHECK(hy_cache_init_spec(&c, m, &spec) == 0, "cache init: %s", hy_last_error());
    int32_t toks[10];
    random_tokens(toks, 10, 3);
    int32_t cu[2] = {0, 6};
    hy_batch b = {toks, cu, 6, 1};
    const int V = m->cfg.vocab_size;
    float *logits = malloc(sizeof(float) * (size_t)V * 2);
    int slot0 = 0;
    CHECK(hy_model_forward(m, &b, HY_LOGITS_LAST_DOC, logits, NULL, &c, &slot0) == 0, "prefill: %s", hy_last_error());
    CHECK(c.n_free == 6, "6 tokens in blocks of 4 take 2 blocks (free %d of 8)", c.n_free);
    CHECK(hy_cache_fork_slot(&c, 0, 1) == 0, "fork: %s", hy_last_error());
    CHECK(c.n_free == 6 && c.ref[c.block_table[0]] == 2 && c.ref[c.block_table[1]] == 2,
          "fork shares blocks (free %d, refs %d %d)", c.n_free, c.ref[c.block_table[0]], c.ref[c.block_table[1]]);
    CHECK(hy_cache_blocks_needed(&c, 1, 1) == 1, "a write into the shared half-full block needs a copy");
    // both continue with the same token: the copy must not disturb the source
    int32_t next[2] = {toks[6], toks[6]}, cu2[3] = {0, 1, 2};
    int slots[2] = {0, 1};
    hy_batch step = {next, cu2, 2, 2};
    CHECK(hy_model_forward(m, &step, HY_LOGITS_LAST_DOC, logits, NULL, &c, slots) == 0, "decode: %s", hy_last_error());
    CHECK(memcmp(logits, logits + V, sizeof(float) * (size_t)V) == 0, "forked slots continue identically");
    CHECK(c.block_table[0] == c.block_table[c.max_blocks] && c.block_table[1] != c.block_table[c.max_blocks + 1],
          "full block stays shared, the written one was copied");
    // image round trip into slot 2 continues identically too
    hy_slot_image img;
    hy_cache_slot_save(&c, 1, &img);
    CHECK(img.len == 7 && img.bytes == hy_slot_image_bytes(&c, 7), "image of 7 tokens");
    CHECK(hy_cache_slot_load(&c, 2, &img) == 0, "image load: %s", hy_last_error());
    int32_t more[2] = {toks[7], toks[7]};
    int slots2[2] = {1, 2};
    hy_batch step2 = {more, cu2, 2, 2};
    CHECK(hy_model_forward(m, &step2, HY_LOGITS_LAST_DOC, logits, NULL, &c, slots2) == 0, "decode 2: %s",
          hy_last_error());
    CHECK(memcmp(logits, logits + V, sizeof(float) * (size_t)V) == 0, "a loaded image continues identically");
    hy_slot_image_free(&img);
    // pool exhaustion fails the whole batch and changes nothing
    const int free_before = c.n_free, len_before = c.len[0];
    int32_t big[33];
    random_tokens(big, 33, 9);
    int32_t cu3[2] = {0, 33};
    hy_batch too_big = {big, cu3, 33, 1};
    CHECK(hy_model_forward(m, &too_big, HY_LOGITS_LAST_DOC, logits, NULL, &c, &slot0) != 0 &&
              strstr(hy_last_error(), "KV pool exhausted"),
          "pool exhaustion is reported (%s)", hy_last_error());
    CHECK(c.n_free == free_before && c.len[0] == len_before, "a refused batch leaves the cache unchanged");
    for (int s = 0; s < 3; s++) hy_cache_reset_slot(&c, s);
    CHECK(c.n_free == 8, "reset returns every block (%d free)", c.n_free);
    printf("  paged cache      reserve, copy-on-write, fork refcounts, images, exhaustion: ok\n");
    free(logits);
    hy_cache_free(&c);
}

static void test_host_modules(const hy_model *m) {
    // scheduler: decode first, pieces end at chunk boundaries, first prefill piece always
    hy_sched_seq seqs[4] = {{10, 1}, {0, 150}, {70, 30}, {5, 1}};
    hy_sched_piece plan[4];
    int n = hy_sched_plan(seqs, 4, 64, 80, plan);
    CHECK(n == 3 && plan[0].seq == 0 && plan[1].seq == 3 && plan[2].seq == 1 && plan[2].n == 64,
          "plan: decodes then the first prefill piece [0, 64) (got %d pieces)", n);
    n = hy_sched_plan(seqs, 4, 64, 200, plan);
    CHECK(n == 4 && plan[3].seq == 2 && plan[3].n == 30, "a piece from 70 ends at the trajectory end (100)");
    // top-k alternatives
    float row[6] = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f, 0.0f};
    int32_t ids[3];
    float lp[3];
    hy_top_logprobs(row, 6, 3, ids, lp);
    CHECK(ids[0] == 1 && ids[1] == 3 && ids[2] == 4, "top-3 ids (ties: lower id first): %d %d %d", ids[0], ids[1], ids[2]);
    CHECK(lp[0] == lp[1] && lp[0] < 0.0f && lp[2] < lp[1], "top-3 logprobs ordered");
    hy_sampling bad = {-1.0f, 0, 1.0f};
    CHECK(hy_sampling_check(&bad, 256, "request 9") && strstr(hy_last_error(), "request 9: temperature"),
          "negative temperature refused (%s)", hy_last_error());
    // prefix cache: longest prefix, versions, LRU by budget
    hy_cache c;
    hy_cache_init(&c, m, 1, 16);
    hy_prefix_cache pc;
    const int V = m->cfg.vocab_size;
    int32_t toks[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    c.len[0] = 0;
    hy_slot_image img;
    hy_cache_slot_save(&c, 0, &img);
    const size_t one = img.bytes + sizeof(float) * V + sizeof(int32_t) * 3;
    hy_prefix_cache_init(&pc, 2 * one + 64, V);
    img.len = 3;  // the image's content does not matter here, only its bookkeeping
    CHECK(hy_prefix_cache_put(&pc, toks, 3, 0, &img, calloc(V, sizeof(float))) == 1, "store prefix of 3");
    hy_cache_slot_save(&c, 0, &img);
    img.len = 5;
    hy_prefix_cache_put(&pc, toks, 5, 0, &img, calloc(V, sizeof(float)));
    const hy_prefix_entry *hit = hy_prefix_cache_find(&pc, toks, 8, 0);
    CHECK(hit && hit->n == 5, "longest prefix found");
    CHECK(!hy_prefix_cache_find(&pc, toks, 8, 1), "another weight version misses");
    int32_t other[4] = {1, 2, 9, 9};
    hit = hy_prefix_cache_find(&pc, other, 4, 0);
    CHECK(!hit, "a diverging prompt misses");
    hy_prefix_cache_clear(&pc);
    CHECK(pc.n == 0 && pc.bytes == 0, "clear empties the cache");
    hy_prefix_cache_free(&pc);
    hy_cache_free(&c);
    // pool sizing refuses a budget that cannot hold one sequence, naming what it needs
    hy_pool_plan plan_out;
    CHECK(hy_pool_plan_make(&m->cfg, 4, 1000, 4, 2048, 16, &plan_out) && strstr(hy_last_error(), "cannot hold"),
          "tiny budget refused (%s)", hy_last_error());
    CHECK(hy_pool_plan_make(&m->cfg, 4, (size_t)64 << 20, 8, 512, 16, &plan_out) == 0 && plan_out.n_slots == 8 &&
              plan_out.n_blocks == 8 * 32 && plan_out.total_bytes <= ((size_t)64 << 20),
          "a roomy budget gives max_seqs slots and all their blocks");
    // stop strings, with the dolma2 tokenizer
    char path[1024];
    snprintf(path, sizeof path, "%s/model/tokenizers/dolma2-tokenizer.json", src_dir);
    hy_tokenizer *tok;
    if (hy_tokenizer_load(&tok, path) == 0) {
        int32_t *t;
        int nt;
        hy_tokenizer_encode(tok, "Hello world, stop here", 22, &t, &nt);
        const char *stops[1] = {"o w"};
        hy_stop_rules r;
        CHECK(hy_stop_rules_init(&r, &m->cfg, tok, 1, stops, 1, 100, "request 1") == 0, "stop rules: %s",
              hy_last_error());
        int which, first = -1;
        for (int i = 1; i <= nt && first < 0; i++)
            if (hy_stop_check(&r, t, i, &which) == HY_FINISH_STOP_STRING) first = i;
        CHECK(first == 2 && which == 0, "stop string 'o w' found when ' world' is generated (at %d)", first);
        hy_stop_rules_free(&r);
        free(t);
        hy_tokenizer_free(tok);
    } else {
        CHECK(0, "tokenizer: %s", hy_last_error());
    }
    printf("  host modules     scheduler, top-k alternatives, parameter checks, prefix cache, pool plan, stops: ok\n");
}

// ---- the engine ----------------------------------------------------------------------------------

enum { N_REQ = 6 };
static const int prompt_len[N_REQ] = {5, 70, 130, 1, 33, 64};

typedef struct {
    int32_t *prompt;
    hy_gen_params p;
} request;

static void make_requests(request *r) {
    for (int i = 0; i < N_REQ; i++) {
        r[i].prompt = malloc(sizeof(int32_t) * (size_t)prompt_len[i]);
        random_tokens(r[i].prompt, prompt_len[i], 100 + i);
        hy_gen_params_default(&r[i].p);
        r[i].p.seed = 1000 + i;
        r[i].p.max_tokens = 12 + 3 * i;
        r[i].p.ignore_eos = 1;
        r[i].p.n_logprobs = i % 2 ? 3 : 0;
        if (i % 3 == 1) r[i].p.temperature = 0.0f;
        if (i % 3 == 2) {
            r[i].p.temperature = 0.8f;
            r[i].p.top_k = 40;
            r[i].p.top_p = 0.9f;
        }
    }
}

static hy_engine *engine_len(const hy_model *m, int max_seqs, size_t memory, size_t swap, int max_len) {
    hy_engine_config c;
    hy_engine_config_default(&c);
    c.max_seqs = max_seqs;
    c.max_len = max_len;
    c.block_size = 16;
    c.prefill_chunk = 64;
    c.step_tokens = 96;
    c.memory_bytes = memory ? memory : (size_t)64 << 20;
    c.swap_bytes = swap;
    hy_engine *e;
    if (hy_engine_new(&e, m, &c)) {
        fprintf(stderr, "engine: %s\n", hy_last_error());
        exit(1);
    }
    return e;
}

static hy_engine *engine(const hy_model *m, int max_seqs, size_t memory, size_t swap) {
    return engine_len(m, max_seqs, memory, swap, 256);
}

// Runs to idle and files every result under its id.
static void run_all(hy_engine *e, hy_result *by_id, int n_ids) {
    CHECK(hy_engine_run(e) == 0, "engine run: %s", hy_last_error());
    hy_result r;
    while (hy_engine_poll(e, &r)) {
        if (r.id >= 0 && r.id < n_ids) {
            hy_result_free(&by_id[r.id]);
            by_id[r.id] = r;
        } else {
            hy_result_free(&r);
        }
    }
}

static int same_result(const hy_result *a, const hy_result *b) {
    if (a->n != b->n || a->finish != b->finish || a->n_top != b->n_top) return 0;
    const size_t n = (size_t)a->n;
    return !memcmp(a->tokens, b->tokens, sizeof(int32_t) * n) && !memcmp(a->logprobs, b->logprobs, sizeof(float) * n) &&
           !memcmp(a->model_logprobs, b->model_logprobs, sizeof(float) * n) && !memcmp(a->origin, b->origin, n) &&
           (!a->n_top || !memcmp(a->top_ids, b->top_ids, sizeof(int32_t) * n * a->n_top));
}

// One request alone in its own engine: the reference of every batching test.
static void reference(const hy_model *m, const request *rq, hy_result *out) {
    for (int i = 0; i < N_REQ; i++) {
        hy_engine *e = engine(m, 1, 0, 0);
        hy_result got[1] = {{0}};
        hy_engine_submit(e, rq[i].prompt, prompt_len[i], &rq[i].p);
        run_all(e, got, 1);
        out[i] = got[0];
        hy_engine_destroy(e);
    }
}

static void test_batching(const hy_model *m, const request *rq, const hy_result *ref) {
    hy_engine *e = engine(m, 8, 0, 0);
    hy_result got[N_REQ] = {{0}};
    for (int i = 0; i < N_REQ; i++) CHECK(hy_engine_submit(e, rq[i].prompt, prompt_len[i], &rq[i].p) == i, "submit");
    run_all(e, got, N_REQ);
    int same = 0;
    for (int i = 0; i < N_REQ; i++) {
        same += same_result(&got[i], &ref[i]);
        CHECK(got[i].finish == HY_FINISH_LENGTH && got[i].n_new == rq[i].p.max_tokens,
              "request %d: finish %s after %d tokens", i, hy_finish_name(got[i].finish), got[i].n_new);
        for (int t = 0; t < got[i].n; t++)
            CHECK(got[i].origin[t] == (t < prompt_len[i] ? HY_TOKEN_PROMPT : HY_TOKEN_GENERATED), "origin marks");
        if (got[i].n_top)
            CHECK(got[i].top_ids[(size_t)got[i].turn_start * got[i].n_top] >= 0 &&
                      (rq[i].p.temperature > 0 || (got[i].top_ids[(size_t)got[i].turn_start * got[i].n_top] ==
                                                       got[i].tokens[got[i].turn_start] &&
                                                   got[i].top_logprobs[(size_t)got[i].turn_start * got[i].n_top] ==
                                                       got[i].model_logprobs[got[i].turn_start])),
                  "request %d: the greedy token is the first alternative", i);
    }
    hy_engine_stats st;
    hy_engine_stats_get(e, &st);
    CHECK(same == N_REQ, "continuous batching differs from one-at-a-time generation in %d of %d requests",
          N_REQ - same, N_REQ);
    CHECK(st.steps < 100 && st.free_blocks == st.n_blocks && st.free_slots == st.n_slots,
          "everything returned after the run (%d/%d blocks free)", st.free_blocks, st.n_blocks);
    printf("  batching         %d requests (prompts 1..130, chunk 64, 96 tokens/step) in %lld steps: bit-identical "
           "to one at a time\n",
           N_REQ, (long long)st.steps);
    for (int i = 0; i < N_REQ; i++) hy_result_free(&got[i]);
    hy_engine_destroy(e);
}

static void test_fork(const hy_model *m) {
    int32_t prompt[50];
    random_tokens(prompt, 50, 77);
    hy_gen_params p;
    hy_gen_params_default(&p);
    p.seed = 500;
    p.max_tokens = 20;
    p.ignore_eos = 1;
    p.temperature = 0.9f;
    enum { K = 4 };
    hy_engine *e = engine(m, 8, 0, 0);
    int64_t ids[K];
    CHECK(hy_engine_submit_n(e, prompt, 50, &p, K, ids) == 0, "submit_n: %s", hy_last_error());
    hy_result fork[K] = {{0}}, sep[K] = {{0}};
    hy_engine_step(e);  // the prompt (50 tokens < chunk) is prefilled in one step and forked
    hy_engine_stats st;
    hy_engine_stats_get(e, &st);
    CHECK(st.forks == K - 1 && st.n_blocks - st.free_blocks == 4,
          "forks share all 4 prompt blocks (%d in use, forks %lld)", st.n_blocks - st.free_blocks, (long long)st.forks);
    CHECK(st.prefill_tokens == 50, "the prompt is prefilled once (%lld tokens)", (long long)st.prefill_tokens);
    hy_engine_step(e);  // every sample writes its first token into the shared, half-full 4th block
    hy_engine_stats_get(e, &st);
    CHECK(st.n_blocks - st.free_blocks == 4 + (K - 1),
          "copy-on-write: 3 full blocks shared, the 4th copied for all but one (%d in use)",
          st.n_blocks - st.free_blocks);
    run_all(e, fork, K);
    hy_engine_destroy(e);
    e = engine(m, 8, 0, 0);
    for (int i = 0; i < K; i++) {
        hy_gen_params q = p;
        q.seed = p.seed + (uint64_t)i;
        hy_engine_submit(e, prompt, 50, &q);
    }
    run_all(e, sep, K);
    int same = 0, distinct = 0;
    for (int i = 0; i < K; i++) {
        same += same_result(&fork[i], &sep[i]);
        distinct += i > 0 && memcmp(fork[i].tokens, fork[0].tokens, sizeof(int32_t) * (size_t)fork[0].n) != 0;
    }
    CHECK(same == K, "forked samples differ from separate prefills in %d of %d", K - same, K);
    CHECK(distinct == K - 1, "samples with different seeds differ");
    printf("  fork             %d samples of a 50-token prompt: prefilled once, %d blocks shared, equal to separate "
           "prefills\n",
           K, 3);
    for (int i = 0; i < K; i++) {
        hy_result_free(&fork[i]);
        hy_result_free(&sep[i]);
    }
    hy_engine_destroy(e);
}

static void test_preemption(const hy_model *m) {
    // 6 slots but 12 blocks of 16 tokens for 6 sequences that each grow to 110 tokens (7 blocks):
    // all are admitted on their short prompts, then decoding runs out of blocks, so sequences
    // are preempted and resumed
    enum { N = 6, LEN = 10 };
    request rq[N];
    hy_result ref[N] = {{0}};
    for (int i = 0; i < N; i++) {
        rq[i].prompt = malloc(sizeof(int32_t) * LEN);
        random_tokens(rq[i].prompt, LEN, 300 + i);
        hy_gen_params_default(&rq[i].p);
        rq[i].p.seed = 40 + i;
        rq[i].p.max_tokens = 100;
        rq[i].p.ignore_eos = 1;
        rq[i].p.temperature = i % 2 ? 0.0f : 0.7f;
        hy_engine *e = engine_len(m, 1, 0, 0, 160);
        hy_result one[1] = {{0}};
        hy_engine_submit(e, rq[i].prompt, LEN, &rq[i].p);
        run_all(e, one, 1);
        ref[i] = one[0];
        hy_engine_destroy(e);
    }
    hy_pool_plan plan;
    hy_pool_plan_make(&m->cfg, sizeof(float), (size_t)1 << 30, N, 160, 16, &plan);
    const size_t budget = N * plan.slot_bytes + 12 * plan.block_bytes;
    for (int mode = 0; mode < 2; mode++) {
        hy_engine *e = engine_len(m, N, budget, mode == 0 ? (size_t)1 << 30 : 0, 160);
        hy_result got[N] = {{0}};
        for (int i = 0; i < N; i++) hy_engine_submit(e, rq[i].prompt, LEN, &rq[i].p);
        run_all(e, got, N);
        hy_engine_stats st;
        hy_engine_stats_get(e, &st);
        CHECK(st.n_blocks == 12, "pool of 12 blocks (%d)", st.n_blocks);
        CHECK(st.preemptions > 0 && (mode ? st.recomputed : st.swapped) == st.preemptions,
              "%s: %lld preemptions, %lld swapped, %lld recomputed", mode ? "recompute" : "swap",
              (long long)st.preemptions, (long long)st.swapped, (long long)st.recomputed);
        int same = 0, close = 0;
        float worst = 0.0f;
        for (int i = 0; i < N; i++) {
            same += same_result(&got[i], &ref[i]);
            int ok = got[i].n == ref[i].n && got[i].finish == ref[i].finish &&
                     !memcmp(got[i].tokens, ref[i].tokens, sizeof(int32_t) * (size_t)ref[i].n);
            for (int t = 0; ok && t < ref[i].n; t++) {
                worst = fmaxf(worst, fabsf(got[i].logprobs[t] - ref[i].logprobs[t]));
                ok = fabsf(got[i].logprobs[t] - ref[i].logprobs[t]) <= 1e-4f;
            }
            close += ok;
        }
        if (mode == 0)
            CHECK(same == N, "swap preemption changed %d of %d results", N - same, N);
        else
            CHECK(close == N, "recompute preemption lost or changed tokens in %d of %d results", N - close, N);
        printf("  preemption       %s: %lld preemptions, all %d requests complete and %s (max |dlogp| %.2g)\n",
               mode ? "recompute" : "swap to host", (long long)st.preemptions, N,
               mode ? "equal within 1e-4" : "bit-identical", worst);
        for (int i = 0; i < N; i++) hy_result_free(&got[i]);
        hy_engine_destroy(e);
    }
    for (int i = 0; i < N; i++) {
        hy_result_free(&ref[i]);
        free(rq[i].prompt);
    }
}

static void test_snapshots(const hy_model *m, const request *rq, const hy_result *ref) {
    hy_engine_config c;
    hy_engine_config_default(&c);
    c.max_seqs = 4;
    c.max_len = 256;
    c.prefill_chunk = 64;
    c.step_tokens = 96;
    c.memory_bytes = (size_t)64 << 20;
    c.snapshot_bytes = (size_t)16 << 20;
    hy_engine *e;
    CHECK(hy_engine_new(&e, m, &c) == 0, "engine: %s", hy_last_error());
    hy_result got[3] = {{0}};
    hy_engine_submit(e, rq[2].prompt, prompt_len[2], &rq[2].p);
    run_all(e, got, 3);
    hy_engine_submit(e, rq[2].prompt, prompt_len[2], &rq[2].p);
    run_all(e, got, 3);
    hy_engine_stats st;
    hy_engine_stats_get(e, &st);
    CHECK(st.snapshot_hits == 1, "the repeated prompt hits the snapshot (%lld hits)", (long long)st.snapshot_hits);
    CHECK(same_result(&got[0], &ref[2]) && same_result(&got[1], &ref[2]), "a snapshot hit is bit-identical");
    const int64_t prefill_after_hit = st.prefill_tokens;
    hy_engine_bump_weights(e);
    hy_engine_stats_get(e, &st);
    CHECK(st.snapshot_bytes_in_use == 0 && st.weight_version == 1, "a weight bump drops the snapshots");
    hy_engine_submit(e, rq[2].prompt, prompt_len[2], &rq[2].p);
    run_all(e, got, 3);
    hy_engine_stats_get(e, &st);
    CHECK(st.snapshot_hits == 1 && st.prefill_tokens == prefill_after_hit + prompt_len[2],
          "after the bump the prompt is prefilled again");
    CHECK(got[2].weight_version[got[2].turn_start] == 1, "tokens record the weight version that sampled them");
    printf("  snapshots        whole-prompt hit bit-identical; a weight bump drops them\n");
    for (int i = 0; i < 3; i++) hy_result_free(&got[i]);
    hy_engine_destroy(e);
}

static void test_continuation(const hy_model *m) {
    int32_t prompt[40], tool[23];
    random_tokens(prompt, 40, 5);
    random_tokens(tool, 23, 6);
    hy_gen_params p;
    hy_gen_params_default(&p);
    p.temperature = 0.0f;
    p.max_tokens = 10;
    p.ignore_eos = 1;
    p.hold = 1;
    hy_engine *e = engine(m, 4, 0, 0);
    hy_result r[2] = {{0}};
    const int64_t id = hy_engine_submit(e, prompt, 40, &p);
    run_all(e, r, 2);
    CHECK(r[0].held && r[0].n == 50, "turn 1 held with 50 tokens");
    const int64_t copy = hy_engine_fork(e, id);
    CHECK(copy == 1, "fork of a held sequence: %s", hy_last_error());
    p.hold = 0;
    CHECK(hy_engine_append(e, id, tool, 23, &p) == 0, "append: %s", hy_last_error());
    CHECK(hy_engine_append(e, 99, tool, 23, &p) != 0 && strstr(hy_last_error(), "not held"), "append to unknown id");
    run_all(e, r, 2);
    const hy_result *t2 = &r[0];
    CHECK(t2->n == 83 && t2->turn_start == 73 && t2->n_new == 10 && !t2->held, "turn 2: 50 + 23 appended + 10");
    int marks = 1;
    for (int i = 0; i < t2->n; i++)
        marks &= t2->origin[i] == (i < 40 ? HY_TOKEN_PROMPT : i < 50 || i >= 73 ? HY_TOKEN_GENERATED : HY_TOKEN_APPENDED);
    CHECK(marks, "trajectory marks prompt, generated and appended tokens");
    // a fresh run over the whole text up to the append
    hy_result fresh[1] = {{0}};
    hy_engine *f = engine(m, 1, 0, 0);
    hy_engine_submit(f, t2->tokens, 73, &p);
    run_all(f, fresh, 1);
    int same_tokens = fresh[0].n == 83 && !memcmp(fresh[0].tokens + 73, t2->tokens + 73, sizeof(int32_t) * 10);
    float worst = 0.0f;
    for (int i = 73; i < 83 && same_tokens; i++) worst = fmaxf(worst, fabsf(fresh[0].model_logprobs[i] - t2->model_logprobs[i]));
    CHECK(same_tokens && worst <= 1e-4f, "continuation differs from a fresh run over the whole text (max |dlogp| %.3g)",
          worst);
    // the forked copy still holds turn 1's state: continuing it the same way gives the same tokens
    CHECK(hy_engine_append(e, copy, tool, 23, &p) == 0, "append to the fork: %s", hy_last_error());
    hy_result rc[2] = {{0}};
    run_all(e, rc, 2);
    CHECK(same_result(&rc[1], t2) || (rc[1].n == t2->n && !memcmp(rc[1].tokens, t2->tokens, sizeof(int32_t) * 83)),
          "the fork continues exactly like the original");
    CHECK(hy_engine_release(e, id) != 0, "a finished, unheld sequence cannot be released");
    hy_engine_stats st;
    hy_engine_stats_get(e, &st);
    CHECK(st.free_slots == st.n_slots && st.free_blocks == st.n_blocks, "all state returned");
    printf("  continuation     append 23 tokens to a held 50-token sequence: equal to a fresh run (max |dlogp| %.2g); "
           "fork of a held sequence\n",
           worst);
    hy_result_free(&r[0]);
    hy_result_free(&r[1]);
    hy_result_free(&rc[0]);
    hy_result_free(&rc[1]);
    hy_result_free(&fresh[0]);
    hy_engine_destroy(e);
    hy_engine_destroy(f);
}

static void test_eos(hy_model *m, const request *rq, const hy_result *ref) {
    // make the 4th greedy token of request 1 the eos id: the run must stop right there
    const hy_result *r = &ref[1];
    const int32_t eos = r->tokens[r->turn_start + 3];
    int first = 0;
    while (r->tokens[r->turn_start + first] != eos) first++;
    const int saved = m->cfg.eos_token_ids[0];
    m->cfg.eos_token_ids[0] = eos;
    hy_engine *e = engine(m, 2, 0, 0);
    hy_gen_params p = rq[1].p;
    p.ignore_eos = 0;
    hy_result got[1] = {{0}};
    hy_engine_submit(e, rq[1].prompt, prompt_len[1], &p);
    run_all(e, got, 1);
    CHECK(got[0].finish == HY_FINISH_EOS && got[0].n_new == first + 1, "eos stops the turn (%s after %d)",
          hy_finish_name(got[0].finish), got[0].n_new);
    m->cfg.eos_token_ids[0] = saved;
    hy_result_free(&got[0]);
    hy_engine_destroy(e);
    printf("  stops            eos after %d tokens; max_tokens gives 'length'\n", first + 1);
}

static void test_bad_requests(const hy_model *m, const request *rq, const hy_result *ref) {
    hy_engine *e = engine(m, 4, 0, 0);
    int32_t good[3] = {1, 2, 3}, oov[3] = {1, 999, 3};
    hy_gen_params p;
    hy_gen_params_default(&p);
    struct {
        const char *name, *needle;
        const int32_t *prompt;
        int n;
        hy_gen_params p;
    } bad[8];
    for (int i = 0; i < 8; i++) {
        bad[i].prompt = good;
        bad[i].n = 3;
        bad[i].p = p;
    }
    bad[0].name = "token out of range", bad[0].needle = "token 999", bad[0].prompt = oov;
    bad[1].name = "empty prompt", bad[1].needle = "empty prompt", bad[1].n = 0;
    bad[2].name = "absurd max_tokens", bad[2].needle = "max_tokens 1000000000", bad[2].p.max_tokens = 1000000000;
    bad[3].name = "temperature", bad[3].needle = "temperature", bad[3].p.temperature = -0.5f;
    bad[4].name = "top_p", bad[4].needle = "top_p", bad[4].p.top_p = 0.0f;
    bad[5].name = "top_k", bad[5].needle = "top_k", bad[5].p.top_k = 100000;
    bad[6].name = "n_logprobs", bad[6].needle = "n_logprobs", bad[6].p.n_logprobs = 99;
    const char *stops[1] = {"x"};
    bad[7].name = "stop without tokenizer", bad[7].needle = "tokenizer", bad[7].p.stop = stops, bad[7].p.n_stop = 1;
    hy_result got[N_REQ] = {{0}};
    int refused = 0;
    for (int i = 0; i < N_REQ; i++) {
        CHECK(hy_engine_submit(e, rq[i].prompt, prompt_len[i], &rq[i].p) == i, "good request %d accepted", i);
        if (i == 2)  // bad requests arrive while the engine is busy
            for (int k = 0; k < 3; k++) hy_engine_step(e);
        for (int b = i; b < 8; b += N_REQ) {
            const int64_t id = hy_engine_submit(e, bad[b].prompt, bad[b].n, &bad[b].p);
            const int ok = id == -1 && strstr(hy_last_error(), bad[b].needle) && strstr(hy_last_error(), "request");
            CHECK(ok, "%s: expected a refusal naming '%s', got id %lld: %s", bad[b].name, bad[b].needle, (long long)id,
                  hy_last_error());
            refused += ok;
        }
    }
    run_all(e, got, N_REQ);
    int same = 0;
    for (int i = 0; i < N_REQ; i++) same += same_result(&got[i], &ref[i]);
    CHECK(same == N_REQ, "good requests changed by the bad ones (%d of %d equal)", same, N_REQ);
    printf("  bad requests     %d refused with a message naming the field; the %d good ones unaffected\n", refused,
           N_REQ);
    for (int i = 0; i < N_REQ; i++) hy_result_free(&got[i]);
    hy_engine_destroy(e);
}

// usage: test_rollout [SOURCE_DIR [NAME]]: NAME runs one group (paged, cache, modules, batching,
// fork, preemption, snapshots, continuation, stops, bad).
int main(int argc, char **argv) {
    if (argc > 1) src_dir = argv[1];
    const char *only = argc > 2 ? argv[2] : NULL;
#define WANT(name) (!only || !strcmp(only, name))
    printf("rollout engine (CPU backend, tiny model)\n");
    if (WANT("paged")) test_paged_attention();
    hy_model m;
    tiny_model(&m);
    if (WANT("cache")) test_cache(&m);
    if (WANT("modules")) test_host_modules(&m);
    request rq[N_REQ];
    make_requests(rq);
    hy_result ref[N_REQ];
    reference(&m, rq, ref);
    if (WANT("batching")) test_batching(&m, rq, ref);
    if (WANT("fork")) test_fork(&m);
    if (WANT("preemption")) test_preemption(&m);
    if (WANT("snapshots")) test_snapshots(&m, rq, ref);
    if (WANT("continuation")) test_continuation(&m);
    if (WANT("stops")) test_eos(&m, rq, ref);
    if (WANT("bad")) test_bad_requests(&m, rq, ref);
#undef WANT
    for (int i = 0; i < N_REQ; i++) {
        hy_result_free(&ref[i]);
        free(rq[i].prompt);
    }
    hy_model_free(&m);
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("all rollout checks passed\n");
    return 0;
}
