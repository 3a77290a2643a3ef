// The rollout engine (see engine.h; design and policies in docs/rollout.md).
//
// A sequence is its trajectory (tokens with their origin, logprobs and weight versions) plus how
// much of it the cache holds: fed ≤ n. Running sequences have a slot; whatever is not fed yet is
// pending and goes into the next forwards — a prompt in chunks, one sampled token per decode step,
// appended tokens after a turn. When the last pending token has been fed, the logits of that
// position produce the next token. So prefill, decode, continuation and resume are one path.
//
// Life of a sequence: WAITING (queued, or preempted) → RUNNING (holds a slot) → DONE (result
// queued, slot freed) or HELD (result queued, slot kept for append / fork / release). A prompt
// group of submit_n is one parent that prefills and, once its prompt is done, forks into the
// slots its children reserved at admission. Preemption takes the most recently admitted running
// sequence: its state goes to host memory when the swap budget allows (exact resume), else it is
// dropped and the trajectory is recomputed on resume (generated tokens are kept, not resampled).
#include "engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/hy_error.h"
#include "../common/parallel.h"
#include "prefix_cache.h"
#include "scheduler.h"
#include "state_pool.h"

typedef enum { SEQ_WAITING, SEQ_RUNNING, SEQ_HELD, SEQ_DONE, SEQ_CHILD } seq_status;

typedef struct {
    int64_t id;
    seq_status status;
    int slot;      // −1 when it holds none
    int64_t order; // admission order: preemption takes the highest
    // trajectory (cap entries allocated; top arrays HY_MAX_TOP_LOGPROBS per token, on first use)
    int n, cap, fed, prompt_len;
    int32_t *tokens;
    uint8_t *origin;
    float *logprob, *model_logprob;
    uint32_t *version;
    int32_t *top_ids;
    float *top_lp;
    // the current turn
    int turn_start, n_gen, n_top, hold;
    hy_sampling sampling;
    hy_rng rng;
    hy_stop_rules stop;
    hy_finish finish;
    int stop_index;
    // preemption and snapshots
    hy_slot_image swap;  // swap.len > 0: swapped out
    float *start_logits; // a whole-prompt snapshot hit: the logits to sample from first
    int snapshot;        // store a prefix snapshot when the prompt is done
    // prompt group (submit_n): the parent lists its children until it forks them
    int64_t *children;
    int n_children;
    // the next token, drawn ahead on the host threads (draw_samples) for sample_into to take
    int drawn;
    hy_sample next;
    int32_t next_top_ids[HY_MAX_TOP_LOGPROBS];
    float next_top_lp[HY_MAX_TOP_LOGPROBS];
} seq;

struct hy_engine {
    const hy_model *m;
    hy_engine_config cfg;
    hy_pool_plan plan;
    char pool_text[400];
    hy_cache cache;
    hy_slot_pool slots;
    hy_prefix_cache prefix;
    seq **seqs;
    int64_t n_seqs, cap_seqs;
    int64_t *waiting;  // FIFO of ids; preempted sequences go to the front
    int n_waiting, cap_waiting;
    int64_t *done;     // finished turns not yet polled
    int n_done, cap_done, done_head;
    int64_t next_order;
    uint32_t version;
    size_t swap_in_use;
    hy_engine_stats st;
    float *logits;     // (max batch, V) host
    int logits_rows;
    float *dev_logits; // (dev_rows, V) backend memory: steps that sample on the backend
    int dev_rows;
};

void hy_engine_config_default(hy_engine_config *c) {
    memset(c, 0, sizeof *c);
    c->memory_fraction = 0.5;
    c->max_seqs = 64;
    c->max_len = 2048;
    c->block_size = HY_CACHE_BLOCK_DEFAULT;
    c->prefill_chunk = 256;
    c->step_tokens = 1024;
    c->swap_bytes = (size_t)1 << 30;
    c->cuda_graphs = 1;
}

void hy_gen_params_default(hy_gen_params *p) {
    memset(p, 0, sizeof *p);
    p->temperature = 1.0f;
    p->top_p = 1.0f;
    p->max_tokens = 16;
}

// ---- sequences ---------------------------------------------------------------------------------

static seq *get(const hy_engine *e, int64_t id) { return id >= 0 && id < e->n_seqs ? e->seqs[id] : NULL; }

static void grow(seq *s, int need) {
    if (need <= s->cap) return;
    int cap = s->cap ? s->cap : 64;
    while (cap < need) cap *= 2;
    s->tokens = hy_realloc(s->tokens, sizeof(int32_t) * (size_t)cap);
    s->origin = hy_realloc(s->origin, (size_t)cap);
    s->logprob = hy_realloc(s->logprob, sizeof(float) * (size_t)cap);
    s->model_logprob = hy_realloc(s->model_logprob, sizeof(float) * (size_t)cap);
    s->version = hy_realloc(s->version, sizeof(uint32_t) * (size_t)cap);
    if (s->top_ids) {
        s->top_ids = hy_realloc(s->top_ids, sizeof(int32_t) * (size_t)cap * HY_MAX_TOP_LOGPROBS);
        s->top_lp = hy_realloc(s->top_lp, sizeof(float) * (size_t)cap * HY_MAX_TOP_LOGPROBS);
    }
    s->cap = cap;
}

static void push_tokens(seq *s, const int32_t *t, int n, hy_token_origin origin) {
    grow(s, s->n + n);
    for (int i = 0; i < n; i++) {
        s->tokens[s->n] = t[i];
        s->origin[s->n] = (uint8_t)origin;
        s->logprob[s->n] = s->model_logprob[s->n] = 0.0f;
        s->version[s->n] = 0;
        if (s->top_ids)
            for (int j = 0; j < HY_MAX_TOP_LOGPROBS; j++) {
                s->top_ids[(size_t)s->n * HY_MAX_TOP_LOGPROBS + j] = -1;
                s->top_lp[(size_t)s->n * HY_MAX_TOP_LOGPROBS + j] = 0.0f;
            }
        s->n++;
    }
}

static void seq_free(seq *s) {
    if (!s) return;
    free(s->tokens);
    free(s->origin);
    free(s->logprob);
    free(s->model_logprob);
    free(s->version);
    free(s->top_ids);
    free(s->top_lp);
    free(s->children);
    free(s->start_logits);
    hy_stop_rules_free(&s->stop);
    hy_slot_image_free(&s->swap);
    free(s);
}

static seq *seq_new(hy_engine *e) {
    if (e->n_seqs == e->cap_seqs) {
        e->cap_seqs = e->cap_seqs ? 2 * e->cap_seqs : 64;
        e->seqs = hy_realloc(e->seqs, sizeof(seq *) * (size_t)e->cap_seqs);
    }
    seq *s = hy_calloc(1, sizeof *s);
    s->id = e->n_seqs;
    s->slot = -1;
    s->stop_index = -1;
    e->seqs[e->n_seqs++] = s;
    return s;
}

static void push_i64(int64_t **a, int *n, int *cap, int64_t v) {
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        *a = hy_realloc(*a, sizeof(int64_t) * (size_t)*cap);
    }
    (*a)[(*n)++] = v;
}

static void wait_back(hy_engine *e, int64_t id) { push_i64(&e->waiting, &e->n_waiting, &e->cap_waiting, id); }
static void wait_front(hy_engine *e, int64_t id) {
    wait_back(e, id);
    memmove(e->waiting + 1, e->waiting, sizeof(int64_t) * (size_t)(e->n_waiting - 1));
    e->waiting[0] = id;
}

// Starts a turn: sampling parameters, RNG and stop rules of p (validated by the caller).
static int start_turn(hy_engine *e, seq *s, const hy_gen_params *p, uint64_t seed, const char *where) {
    hy_stop_rules rules;
    if (hy_stop_rules_init(&rules, &e->m->cfg, e->cfg.tok, p->ignore_eos, p->stop, p->n_stop, p->max_tokens, where))
        return -1;
    hy_stop_rules_free(&s->stop);
    s->stop = rules;
    s->sampling = (hy_sampling){p->temperature, p->top_k, p->top_p};
    hy_rng_init(&s->rng, seed);
    s->n_top = p->n_logprobs;
    if (s->n_top && !s->top_ids) {
        s->top_ids = hy_malloc(sizeof(int32_t) * (size_t)(s->cap ? s->cap : 1) * HY_MAX_TOP_LOGPROBS);
        s->top_lp = hy_malloc(sizeof(float) * (size_t)(s->cap ? s->cap : 1) * HY_MAX_TOP_LOGPROBS);
        for (size_t i = 0; i < (size_t)s->cap * HY_MAX_TOP_LOGPROBS; i++) {
            s->top_ids[i] = -1;
            s->top_lp[i] = 0.0f;
        }
    }
    s->hold = p->hold;
    s->turn_start = s->n;
    s->n_gen = 0;
    s->finish = HY_FINISH_NONE;
    s->stop_index = -1;
    return 0;
}

// Checks what submit and append share: tokens, sampling parameters, lengths.
static int check_request(const hy_engine *e, const int32_t *tokens, int n, int held_len, const hy_gen_params *p,
                         const char *where) {
    const hy_config *c = &e->m->cfg;
    if (!tokens || n <= 0) return hy_fail("%s: empty %s (no tokens)", where, held_len ? "append" : "prompt");
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return hy_fail("%s: token %d (position %d) is outside the vocabulary [0, %d)", where, tokens[i], i,
                           c->vocab_size);
    hy_sampling smp = {p->temperature, p->top_k, p->top_p};
    if (hy_sampling_check(&smp, c->vocab_size, where)) return -1;
    if (p->n_logprobs < 0 || p->n_logprobs > HY_MAX_TOP_LOGPROBS)
        return hy_fail("%s: n_logprobs %d is outside [0, %d]", where, p->n_logprobs, HY_MAX_TOP_LOGPROBS);
    if (p->max_tokens <= 0) return hy_fail("%s: max_tokens must be at least 1 (got %d)", where, p->max_tokens);
    const long total = (long)held_len + n + p->max_tokens;
    if (total > e->cache.max_len)
        return hy_fail("%s: %d held + %d new tokens + max_tokens %d = %ld exceeds the engine's max_len %d", where,
                       held_len, n, p->max_tokens, total, e->cache.max_len);
    return 0;
}

// ---- engine lifetime ---------------------------------------------------------------------------

int hy_engine_new(hy_engine **out, const hy_model *m, const hy_engine_config *cfg) {
    *out = NULL;
    if (cfg->prefill_chunk <= 0) return hy_fail("engine: prefill_chunk must be positive (got %d)", cfg->prefill_chunk);
    if (cfg->step_tokens < cfg->prefill_chunk)
        return hy_fail("engine: step_tokens (%d) must be at least prefill_chunk (%d)", cfg->step_tokens,
                       cfg->prefill_chunk);
    size_t budget = cfg->memory_bytes;
    if (!budget) {
        if (!(cfg->memory_fraction > 0.0 && cfg->memory_fraction <= 1.0))
            return hy_fail("engine: memory_fraction %g is outside (0, 1]", cfg->memory_fraction);
        size_t free_b = 0, total_b = 0;
        m->be->memory_info(m->be, &free_b, &total_b);
        budget = (size_t)(cfg->memory_fraction * (double)free_b);
    }
    hy_pool_plan plan;
    if (hy_pool_plan_make(&m->cfg, m->be->act_bytes, budget, cfg->max_seqs, cfg->max_len, cfg->block_size, &plan))
        return -1;
    hy_engine *e = hy_calloc(1, sizeof *e);
    e->m = m;
    e->cfg = *cfg;
    e->plan = plan;
    if (hy_pool_cache_init(&e->cache, m, &plan)) {
        free(e);
        return -1;
    }
    hy_pool_plan_describe(&plan, e->pool_text, sizeof e->pool_text);
    if (cfg->verbose) fprintf(stderr, "hybrid: %s\n", e->pool_text);
    hy_slot_pool_init(&e->slots, plan.n_slots);
    hy_prefix_cache_init(&e->prefix, cfg->snapshot_bytes, m->cfg.vocab_size);
    m->be->replay_reset(m->be);  // graphs of an engine that lived at this address before
    *out = e;
    return 0;
}

void hy_engine_destroy(hy_engine *e) {
    if (!e) return;
    for (int64_t i = 0; i < e->n_seqs; i++) seq_free(e->seqs[i]);
    free(e->seqs);
    free(e->waiting);
    free(e->done);
    free(e->logits);
    e->m->be->replay_reset(e->m->be);  // they point into this engine's pool and logits
    if (e->dev_logits) e->m->be->free_persistent(e->m->be, e->dev_logits);
    hy_prefix_cache_free(&e->prefix);
    hy_slot_pool_free(&e->slots);
    hy_cache_free(&e->cache);
    free(e);
}

const char *hy_engine_pool_text(const hy_engine *e) { return e->pool_text; }

// ---- submission --------------------------------------------------------------------------------

int hy_engine_submit_n(hy_engine *e, const int32_t *prompt, int n_prompt, const hy_gen_params *p, int n,
                       int64_t *ids) {
    char where[64];
    snprintf(where, sizeof where, "request %lld", (long long)e->n_seqs);
    if (n < 1 || n > e->plan.n_slots)
        return hy_fail("%s: n = %d samples, but the pool holds %d sequences at once (n must be in [1, %d])", where,
                       n, e->plan.n_slots, e->plan.n_slots);
    if (check_request(e, prompt, n_prompt, 0, p, where)) return -1;
    hy_stop_rules probe;  // stop strings are checked before anything is created
    if (hy_stop_rules_init(&probe, &e->m->cfg, e->cfg.tok, p->ignore_eos, p->stop, p->n_stop, p->max_tokens, where))
        return -1;
    hy_stop_rules_free(&probe);
    seq *parent = NULL;
    for (int i = 0; i < n; i++) {
        seq *s = seq_new(e);
        push_tokens(s, prompt, n_prompt, HY_TOKEN_PROMPT);
        s->prompt_len = n_prompt;
        start_turn(e, s, p, p->seed + (uint64_t)i, where);
        ids[i] = s->id;
        if (i == 0) {
            parent = s;
            s->status = SEQ_WAITING;
            s->snapshot = e->cfg.snapshot_bytes > 0;
            if (n > 1) s->children = hy_malloc(sizeof(int64_t) * (size_t)(n - 1));
            wait_back(e, s->id);
        } else {
            s->status = SEQ_CHILD;
            parent->children[parent->n_children++] = s->id;
        }
    }
    return 0;
}

int64_t hy_engine_submit(hy_engine *e, const int32_t *prompt, int n_prompt, const hy_gen_params *p) {
    int64_t id;
    return hy_engine_submit_n(e, prompt, n_prompt, p, 1, &id) ? -1 : id;
}

// A finished sequence whose result has been taken: only its id stays.
static void retire(hy_engine *e, seq *s) {
    const int64_t id = s->id;
    seq_free(s);
    seq *stub = hy_calloc(1, sizeof *stub);
    stub->id = id;
    stub->status = SEQ_DONE;
    stub->slot = -1;
    e->seqs[id] = stub;
}

// ---- finishing, preemption ---------------------------------------------------------------------

static void give_slot(hy_engine *e, seq *s) {
    hy_cache_reset_slot(&e->cache, s->slot);
    hy_slot_give(&e->slots, s->slot);
    s->slot = -1;
}

static void finish(hy_engine *e, seq *s, hy_finish why, int which) {
    s->finish = why;
    s->stop_index = which;
    if (s->hold) {
        s->status = SEQ_HELD;
    } else {
        give_slot(e, s);
        s->status = SEQ_DONE;
    }
    e->st.finished++;
    if (e->done_head == e->n_done) e->done_head = e->n_done = 0;
    push_i64(&e->done, &e->n_done, &e->cap_done, s->id);
}

// Back to the queue's front. A parent that has not forked yet gives back its children's slots too.
static void preempt(hy_engine *e, seq *s) {
    e->st.preemptions++;
    for (int i = 0; i < s->n_children; i++) {
        seq *c = get(e, s->children[i]);
        if (c->slot >= 0) give_slot(e, c);
    }
    const size_t bytes = hy_slot_image_bytes(&e->cache, s->fed);
    if (s->fed > 0 && e->swap_in_use + bytes <= e->cfg.swap_bytes) {
        hy_cache_slot_save(&e->cache, s->slot, &s->swap);
        e->swap_in_use += s->swap.bytes;
        e->st.swapped++;
    } else {
        e->st.recomputed++;
    }
    s->fed = 0;  // a swapped sequence gets fed back from its image on admission
    give_slot(e, s);
    s->status = SEQ_WAITING;
    wait_front(e, s->id);
}

// ---- admission ---------------------------------------------------------------------------------

static int blocks_for(const hy_engine *e, int len) { return (len + e->cache.block_size - 1) / e->cache.block_size; }

// Blocks running sequences will take to feed what they have pending, and one more each to grow:
// admission leaves these free so new sequences do not at once preempt the running ones.
static int blocks_promised(const hy_engine *e) {
    int n = 0;
    for (int64_t i = 0; i < e->n_seqs; i++) {
        const seq *s = e->seqs[i];
        if (s->status == SEQ_RUNNING) n += blocks_for(e, s->n + 1) - blocks_for(e, s->fed);
    }
    return n;
}

// Loads the longest snapshot of the prompt, if any: fed moves past it; a whole-prompt hit also
// hands over the logits to sample the first token from.
static void load_snapshot(hy_engine *e, seq *s) {
    const hy_prefix_entry *hit = hy_prefix_cache_find(&e->prefix, s->tokens, s->prompt_len, e->version);
    if (!hit || hy_cache_slot_load(&e->cache, s->slot, &hit->img)) return;
    e->st.snapshot_hits++;
    s->fed = hit->n;
    if (hit->n == s->prompt_len) {
        s->start_logits = hy_malloc(sizeof(float) * (size_t)e->m->cfg.vocab_size);
        memcpy(s->start_logits, hit->logits, sizeof(float) * (size_t)e->m->cfg.vocab_size);
        s->snapshot = 0;  // already stored
    }
}

// Admits waiting sequences in queue order while slots and blocks allow (first come, first served:
// a sequence that does not fit blocks those behind it, so large requests are not starved).
static void admit(hy_engine *e) {
    int promised = blocks_promised(e);
    while (e->n_waiting) {
        seq *s = get(e, e->waiting[0]);
        const int slots_needed = 1 + s->n_children;
        const int len = s->swap.len ? s->swap.len : s->n;
        const int blocks = blocks_for(e, len + 1);
        if (e->slots.n_free < slots_needed || blocks + promised > e->cache.n_free) {
            // nothing running would ever free room: admit anyway and let preemption sort it out
            int running = 0;
            for (int64_t i = 0; i < e->n_seqs && !running; i++) running = e->seqs[i]->status == SEQ_RUNNING;
            if (running || e->slots.n_free < slots_needed) break;
        }
        memmove(e->waiting, e->waiting + 1, sizeof(int64_t) * (size_t)--e->n_waiting);
        s->slot = hy_slot_take(&e->slots);
        for (int i = 0; i < s->n_children; i++) get(e, s->children[i])->slot = hy_slot_take(&e->slots);
        s->status = SEQ_RUNNING;
        s->order = e->next_order++;
        if (s->swap.len) {
            // a pool too full for the image (admitted because nothing runs) recomputes instead
            if (hy_cache_slot_load(&e->cache, s->slot, &s->swap) == 0) s->fed = s->swap.len;
            e->swap_in_use -= s->swap.bytes;
            hy_slot_image_free(&s->swap);
        } else if (e->cfg.snapshot_bytes && s->n == s->prompt_len) {
            load_snapshot(e, s);
        }
        promised += blocks_for(e, s->n + 1) - blocks_for(e, s->fed);
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// ---- sampling ----------------------------------------------------------------------------------

// Draws s's next token from row (its own RNG, so the draw is the same on whatever thread runs it).
static void draw(const hy_engine *e, seq *s, const float *row) {
    const int V = e->m->cfg.vocab_size;
    s->next = hy_sample_token(row, V, &s->sampling, &s->rng);
    if (s->n_top) hy_top_logprobs(row, V, s->n_top, s->next_top_ids, s->next_top_lp);
    s->drawn = 1;
}

static void sample_into(hy_engine *e, seq *s, const float *row) {
    if (!s->drawn) draw(e, s, row);
    s->drawn = 0;
    const hy_sample smp = s->next;
    push_tokens(s, &smp.token, 1, HY_TOKEN_GENERATED);
    const int at = s->n - 1;
    s->logprob[at] = smp.logprob;
    s->model_logprob[at] = smp.model_logprob;
    s->version[at] = e->version;
    if (s->n_top) {
        memcpy(s->top_ids + (size_t)at * HY_MAX_TOP_LOGPROBS, s->next_top_ids, sizeof(int32_t) * (size_t)s->n_top);
        memcpy(s->top_lp + (size_t)at * HY_MAX_TOP_LOGPROBS, s->next_top_lp, sizeof(float) * (size_t)s->n_top);
    }
    s->n_gen++;
    e->st.generated_tokens++;
    int which;
    hy_finish why = hy_stop_check(&s->stop, s->tokens + s->turn_start, s->n_gen, &which);
    if (why == HY_FINISH_NONE && s->n >= e->cache.max_len) why = HY_FINISH_MAX_LEN;
    if (why != HY_FINISH_NONE) finish(e, s, why, which);
}

// The prompt's last position has been fed: snapshot it, fork the children, sample every sample's
// first token from the same logits row.
static void prompt_done(hy_engine *e, seq *s, const float *row) {
    if (s->snapshot && s->fed == s->prompt_len) {
        hy_slot_image img;
        hy_cache_slot_save(&e->cache, s->slot, &img);
        float *copy = hy_malloc(sizeof(float) * (size_t)e->m->cfg.vocab_size);
        memcpy(copy, row, sizeof(float) * (size_t)e->m->cfg.vocab_size);
        hy_prefix_cache_put(&e->prefix, s->tokens, s->prompt_len, e->version, &img, copy);
        s->snapshot = 0;
    }
    for (int i = 0; i < s->n_children; i++) {
        seq *c = get(e, s->children[i]);
        hy_cache_fork_slot(&e->cache, s->slot, c->slot);
        c->fed = s->fed;
        c->status = SEQ_RUNNING;
        c->order = e->next_order++;
        e->st.forks++;
    }
    const int n_children = s->n_children;
    s->n_children = 0;
    sample_into(e, s, row);
    for (int i = 0; i < n_children; i++) sample_into(e, get(e, s->children[i]), row);
}

static void logits_ready(hy_engine *e, seq *s, const float *row) {
    if (s->n_children || s->snapshot)
        prompt_done(e, s, row);
    else
        sample_into(e, s, row);
}

// Every token a step's logits lead to — each finished sequence's, and the first of each of its
// not yet forked samples, from the same row — drawn at once on the host's threads: sampling a
// 100k-entry row is ~1 ms on one core, so one thread would spend most of a decode step of 64
// sequences on it. The results wait in each sequence (drawn) until the serial pass takes them.
typedef struct {
    const hy_engine *e;
    seq **who;
    const float **row;
} draw_jobs;

static void draw_one(void *ctx, int i) {
    const draw_jobs *j = ctx;
    draw(j->e, j->who[i], j->row[i]);
}

static void draw_samples(hy_engine *e, seq *const *ready, const float *const *rows, int n) {
    int total = 0;
    for (int i = 0; i < n; i++) total += 1 + ready[i]->n_children;
    draw_jobs j = {e, hy_malloc(sizeof(seq *) * (size_t)(total + 1)), hy_malloc(sizeof(float *) * (size_t)(total + 1))};
    int k = 0;
    for (int i = 0; i < n; i++) {
        j.who[k] = ready[i];
        j.row[k++] = rows[i];
        for (int c = 0; c < ready[i]->n_children; c++) {
            j.who[k] = get(e, ready[i]->children[c]);
            j.row[k++] = rows[i];
        }
    }
    hy_parallel_for(total, draw_one, &j);
    free(j.who);
    free(j.row);
}

// A sequence can draw its next token on the backend: plain sampling (no top-k / top-p), no
// alternatives to report, no prefix snapshot to store (those need its logits row on the host).
static int backend_drawable(const seq *s, int V) {
    return (s->sampling.temperature <= 0.0f || ((s->sampling.top_k == 0 || s->sampling.top_k >= V) &&
                                                s->sampling.top_p >= 1.0f)) &&
           s->n_top == 0 && !s->snapshot;
}

// Whether this step's tokens are all drawn on the backend: every sequence the plan completes (and
// every sample forked from it) can be. Then the logits stay in backend memory — on a GPU, 400 KB
// a row that need not cross to the host — and only the tokens and their logprobs come back.
static int step_draws_on_backend(const hy_engine *e, seq *const *run, const hy_sched_piece *plan, int n_plan) {
    const int V = e->m->cfg.vocab_size;
    for (int i = 0; i < n_plan; i++) {
        const seq *s = run[plan[i].seq];
        if (s->fed + plan[i].n != s->n) continue;
        if (!backend_drawable(s, V)) return 0;
        for (int c = 0; c < s->n_children; c++)
            if (!backend_drawable(get(e, s->children[c]), V)) return 0;
    }
    return 1;
}

// The backend's draws for ready[i] (from row row_of[i] of the backend logits) and its unforked
// samples: each sequence's uniform comes from its own RNG exactly as hy_sample_token would take it
// (one draw per tempered token), so a request's tokens do not depend on where it was sampled.
// Queued in two halves: inside a replayed step (backend.h) the results arrive only at replay_end.
typedef struct {
    int n;
    seq **who;
    int32_t *tok;
    float *lp, *mlp;
} backend_draws;

static void draw_on_backend(hy_engine *e, seq *const *ready, const int *row_of, int n, backend_draws *d) {
    int total = 0;
    for (int i = 0; i < n; i++) total += 1 + ready[i]->n_children;
    d->n = total;
    d->who = hy_malloc(sizeof(seq *) * (size_t)(total + 1));
    d->tok = hy_malloc(sizeof(int32_t) * (size_t)(total + 1));
    d->lp = hy_malloc(sizeof(float) * (size_t)(total + 1));
    d->mlp = hy_malloc(sizeof(float) * (size_t)(total + 1));
    int32_t *rows = hy_malloc(sizeof(int32_t) * (size_t)(total + 1));
    float *temp = hy_malloc(sizeof(float) * (size_t)(total + 1));
    double *u = hy_malloc(sizeof(double) * (size_t)(total + 1));
    int k = 0;
    for (int i = 0; i < n; i++)
        for (int c = -1; c < ready[i]->n_children; c++) {
            seq *s = c < 0 ? ready[i] : get(e, ready[i]->children[c]);
            d->who[k] = s;
            rows[k] = row_of[i];
            temp[k] = s->sampling.temperature;
            u[k] = s->sampling.temperature > 0.0f ? hy_rng_uniform(&s->rng) : 0.0;
            k++;
        }
    hy_backend *be = e->m->be;
    be->sample_rows(be, e->dev_logits, rows, total, e->m->cfg.vocab_size, temp, u, d->tok, d->lp, d->mlp);
    free(rows);
    free(temp);
    free(u);
}

static void take_backend_draws(backend_draws *d) {
    for (int j = 0; j < d->n; j++) {
        d->who[j]->next = (hy_sample){d->tok[j], d->lp[j], d->mlp[j]};
        d->who[j]->drawn = 1;
    }
    free(d->who);
    free(d->tok);
    free(d->lp);
    free(d->mlp);
}

// ---- one step ----------------------------------------------------------------------------------

typedef struct {
    seq **run;
    hy_sched_seq *sched;
    hy_sched_piece *plan;
    int n_run, n_plan;
} step_plan;

static int by_order(const void *a, const void *b) {
    const seq *x = *(seq *const *)a, *y = *(seq *const *)b;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void collect_running(hy_engine *e, step_plan *sp) {
    sp->n_run = 0;
    for (int64_t i = 0; i < e->n_seqs; i++)
        if (e->seqs[i]->status == SEQ_RUNNING && e->seqs[i]->n > e->seqs[i]->fed) sp->run[sp->n_run++] = e->seqs[i];
    qsort(sp->run, (size_t)sp->n_run, sizeof *sp->run, by_order);
    for (int i = 0; i < sp->n_run; i++) sp->sched[i] = (hy_sched_seq){sp->run[i]->fed, sp->run[i]->n - sp->run[i]->fed};
    sp->n_plan = hy_sched_plan(sp->sched, sp->n_run, e->cfg.prefill_chunk, e->cfg.step_tokens, sp->plan);
}

static int plan_blocks(const hy_engine *e, const step_plan *sp) {
    int need = 0;
    for (int i = 0; i < sp->n_plan; i++) need += hy_cache_blocks_needed(&e->cache, sp->run[sp->plan[i].seq]->slot, sp->plan[i].n);
    return need;
}

// Makes the plan fit the free blocks: drops prefill pieces (the latest admitted first), then
// preempts the latest admitted sequences and plans again. Returns 0 when it fits.
static int fit_plan(hy_engine *e, step_plan *sp) {
    for (;;) {
        if (plan_blocks(e, sp) <= e->cache.n_free) return 0;
        int drop = -1;
        for (int i = sp->n_plan - 1; i >= 0 && drop < 0; i--)
            if (sp->plan[i].n > 1 || sp->sched[sp->plan[i].seq].pending > 1) drop = i;
        if (drop >= 0 && sp->n_plan > 1) {
            memmove(sp->plan + drop, sp->plan + drop + 1, sizeof *sp->plan * (size_t)(sp->n_plan - drop - 1));
            sp->n_plan--;
            continue;
        }
        seq *victim = NULL;
        for (int64_t i = 0; i < e->n_seqs; i++) {
            seq *s = e->seqs[i];
            if (s->status == SEQ_RUNNING && (!victim || s->order > victim->order)) victim = s;
        }
        int running = 0;
        for (int64_t i = 0; i < e->n_seqs; i++) running += e->seqs[i]->status == SEQ_RUNNING;
        if (!victim || running == 1) {
            // one sequence alone does not fit: only held sequences can be holding the blocks
            return hy_fail("KV pool exhausted: %d blocks free, the step needs %d, and no running sequence is left "
                           "to preempt (held sequences keep their blocks until released)",
                           e->cache.n_free, plan_blocks(e, sp));
        }
        preempt(e, victim);
        collect_running(e, sp);
    }
}

// A step is replayed (backend.h, replay_begin; CUDA graphs) when its work has the same shape
// every time for its batch size: every piece is one token that completes its sequence (so every
// sequence draws one token from its own row) and nothing forks from it.
static int replayable(const hy_engine *e, const step_plan *sp) {
    for (int i = 0; i < sp->n_plan; i++) {
        const seq *s = sp->run[sp->plan[i].seq];
        if (sp->plan[i].n != 1 || s->fed + 1 != s->n || s->n_children) return 0;
    }
    return 1;
}

static int engine_step(hy_engine *e);

int hy_engine_step(hy_engine *e) {
    const double t0 = now_s();
    const int rc = engine_step(e);
    e->st.step_s += now_s() - t0;
    return rc;
}

static int engine_step(hy_engine *e) {
    admit(e);
    // whole-prompt snapshot hits sample before anything is fed
    for (int64_t i = 0; i < e->n_seqs; i++) {
        seq *s = e->seqs[i];
        if (s->status == SEQ_RUNNING && s->start_logits) {
            float *row = s->start_logits;
            s->start_logits = NULL;
            logits_ready(e, s, row);
            free(row);
        }
    }
    step_plan sp;
    int64_t n_running = 0;
    for (int64_t i = 0; i < e->n_seqs; i++) n_running += e->seqs[i]->status == SEQ_RUNNING;
    sp.run = hy_malloc(sizeof(seq *) * (size_t)(n_running + 1));
    sp.sched = hy_malloc(sizeof(hy_sched_seq) * (size_t)(n_running + 1));
    sp.plan = hy_malloc(sizeof(hy_sched_piece) * (size_t)(n_running + 1));
    collect_running(e, &sp);
    int rc = sp.n_plan ? fit_plan(e, &sp) : 0;
    if (!rc && sp.n_plan) {
        int T = 0;
        for (int i = 0; i < sp.n_plan; i++) T += sp.plan[i].n;
        int32_t *tokens = hy_malloc(sizeof(int32_t) * (size_t)T), *cu = hy_malloc(sizeof(int32_t) * (size_t)(sp.n_plan + 1));
        int *slots = hy_malloc(sizeof(int) * (size_t)sp.n_plan);
        cu[0] = 0;
        for (int i = 0; i < sp.n_plan; i++) {
            const seq *s = sp.run[sp.plan[i].seq];
            memcpy(tokens + cu[i], s->tokens + s->fed, sizeof(int32_t) * (size_t)sp.plan[i].n);
            cu[i + 1] = cu[i] + sp.plan[i].n;
            slots[i] = s->slot;
        }
        const int V = e->m->cfg.vocab_size;
        hy_backend *be = e->m->be;
        const int on_backend = step_draws_on_backend(e, sp.run, sp.plan, sp.n_plan);
        if (on_backend && sp.n_plan > e->dev_rows) {
            be->replay_reset(be);  // captured with the old buffer
            if (e->dev_logits) be->free_persistent(be, e->dev_logits);
            e->dev_rows = sp.n_plan;
            e->dev_logits = be->alloc_persistent(be, sizeof(float) * (size_t)V * (size_t)sp.n_plan);
        } else if (!on_backend && sp.n_plan > e->logits_rows) {
            e->logits_rows = sp.n_plan;
            e->logits = hy_realloc(e->logits, sizeof(float) * (size_t)V * (size_t)sp.n_plan);
        }
        hy_batch b = {tokens, cu, T, sp.n_plan};
        const int replay = on_backend && e->cfg.cuda_graphs && replayable(e, &sp);
        if (replay) {
            // the blocks first (fit_plan made room): a copy-on-write of a shared last block is
            // work of this step only, and must not be part of what is replayed
            for (int i = 0; i < sp.n_plan; i++) hy_cache_reserve(&e->cache, slots[i], 1);
            be->replay_begin(be, (uint64_t)sp.n_plan);
        }
        const double t_fwd = now_s();
        rc = hy_model_forward(e->m, &b, on_backend ? HY_LOGITS_LAST_DOC_BACKEND : HY_LOGITS_LAST_DOC,
                              on_backend ? e->dev_logits : e->logits, NULL, &e->cache, slots);
        const double t_queued = now_s();
        seq **ready = hy_malloc(sizeof(seq *) * (size_t)sp.n_plan);
        const float **rows = hy_malloc(sizeof(float *) * (size_t)sp.n_plan);
        int *row_of = hy_malloc(sizeof(int) * (size_t)sp.n_plan), n_ready = 0;
        backend_draws drawn = {0};
        if (!rc) {
            for (int i = 0; i < sp.n_plan; i++) {
                seq *s = sp.run[sp.plan[i].seq];
                s->fed += sp.plan[i].n;
                if (sp.plan[i].n > 1 || s->n_gen == 0) e->st.prefill_tokens += sp.plan[i].n;
                if (s->fed == s->n) {
                    ready[n_ready] = s;
                    row_of[n_ready] = i;
                    rows[n_ready++] = on_backend ? NULL : e->logits + (size_t)i * V;  // NULL: drawn already
                }
            }
            if (on_backend) draw_on_backend(e, ready, row_of, n_ready, &drawn);
        }
        if (replay) {
            const int how = be->replay_end(be, !rc);
            if (how < 0) rc = -1;
            e->st.graph_steps += how == HY_REPLAY_CAPTURED || how == HY_REPLAY_REPLAYED;
            e->st.graph_captures += how == HY_REPLAY_CAPTURED;
            e->st.forward_s += now_s() - t_fwd;  // forward and draws are one launch
        } else {
            e->st.forward_s += t_queued - t_fwd;
            e->st.sample_s += now_s() - t_queued;
        }
        if (!rc) {
            e->st.steps++;
            const double t_draw = now_s();
            if (on_backend)
                take_backend_draws(&drawn);
            else
                draw_samples(e, ready, rows, n_ready);
            e->st.sample_s += now_s() - t_draw;
            for (int i = 0; i < n_ready; i++) logits_ready(e, ready[i], rows[i]);
        } else if (drawn.who) {
            drawn.n = 0;
            take_backend_draws(&drawn);  // frees them
        }
        free(ready);
        free(rows);
        free(row_of);
        free(tokens);
        free(cu);
        free(slots);
    }
    free(sp.run);
    free(sp.sched);
    free(sp.plan);
    if (rc) return -1;
    admit(e);  // into slots this step's finished sequences gave back
    for (int64_t i = 0; i < e->n_seqs; i++)
        if (e->seqs[i]->status == SEQ_RUNNING) return 1;
    if (e->n_waiting) {
        // nothing runs, so admission failed for want of slots that only held sequences occupy
        return hy_fail("%d request(s) wait for slots held by %d held sequence(s): release some", e->n_waiting,
                       e->plan.n_slots - e->slots.n_free);
    }
    return 0;
}

int hy_engine_run(hy_engine *e) {
    int rc;
    while ((rc = hy_engine_step(e)) > 0) {
    }
    return rc;
}

// ---- results, continuation, fork, release --------------------------------------------------------

int hy_engine_poll(hy_engine *e, hy_result *r) {
    memset(r, 0, sizeof *r);
    if (e->done_head == e->n_done) return 0;
    seq *s = get(e, e->done[e->done_head++]);
    const size_t n = (size_t)s->n;
    r->id = s->id;
    r->finish = s->finish;
    r->stop_index = s->stop_index;
    r->n = s->n;
    r->tokens = hy_malloc(sizeof(int32_t) * n);
    r->origin = hy_malloc(n);
    r->logprobs = hy_malloc(sizeof(float) * n);
    r->model_logprobs = hy_malloc(sizeof(float) * n);
    r->weight_version = hy_malloc(sizeof(uint32_t) * n);
    memcpy(r->tokens, s->tokens, sizeof(int32_t) * n);
    memcpy(r->origin, s->origin, n);
    memcpy(r->logprobs, s->logprob, sizeof(float) * n);
    memcpy(r->model_logprobs, s->model_logprob, sizeof(float) * n);
    memcpy(r->weight_version, s->version, sizeof(uint32_t) * n);
    r->n_top = s->n_top;
    if (s->n_top) {
        r->top_ids = hy_malloc(sizeof(int32_t) * n * (size_t)s->n_top);
        r->top_logprobs = hy_malloc(sizeof(float) * n * (size_t)s->n_top);
        for (size_t i = 0; i < n; i++)
            for (int j = 0; j < s->n_top; j++) {
                r->top_ids[i * s->n_top + j] = s->top_ids[i * HY_MAX_TOP_LOGPROBS + j];
                r->top_logprobs[i * s->n_top + j] = s->top_lp[i * HY_MAX_TOP_LOGPROBS + j];
            }
    }
    r->turn_start = s->turn_start;
    r->n_new = s->n_gen;
    r->held = s->status == SEQ_HELD;
    if (s->status == SEQ_DONE) retire(e, s);
    return 1;
}

void hy_result_free(hy_result *r) {
    free(r->tokens);
    free(r->origin);
    free(r->logprobs);
    free(r->model_logprobs);
    free(r->weight_version);
    free(r->top_ids);
    free(r->top_logprobs);
    memset(r, 0, sizeof *r);
}

static seq *held(hy_engine *e, int64_t id, const char *what) {
    seq *s = get(e, id);
    if (!s || s->status != SEQ_HELD) {
        hy_fail("%s of sequence %lld: it is not held (only a finished turn requested with hold can be continued, "
                "forked or released)",
                what, (long long)id);
        return NULL;
    }
    return s;
}

int hy_engine_append(hy_engine *e, int64_t id, const int32_t *tokens, int n, const hy_gen_params *p) {
    seq *s = held(e, id, "append");
    if (!s) return -1;
    char where[64];
    snprintf(where, sizeof where, "append to sequence %lld", (long long)id);
    if (check_request(e, tokens, n, s->n, p, where)) return -1;
    hy_stop_rules probe;
    if (hy_stop_rules_init(&probe, &e->m->cfg, e->cfg.tok, p->ignore_eos, p->stop, p->n_stop, p->max_tokens, where))
        return -1;
    hy_stop_rules_free(&probe);
    push_tokens(s, tokens, n, HY_TOKEN_APPENDED);
    start_turn(e, s, p, p->seed, where);
    s->status = SEQ_RUNNING;
    return 0;
}

int64_t hy_engine_fork(hy_engine *e, int64_t id) {
    seq *s = held(e, id, "fork");
    if (!s) return -1;
    if (e->slots.n_free == 0) return hy_fail("fork of sequence %lld: no free slot (release held sequences)", (long long)id);
    seq *c = seq_new(e);
    c->slot = hy_slot_take(&e->slots);
    hy_cache_fork_slot(&e->cache, s->slot, c->slot);
    grow(c, s->n);
    c->n = s->n;
    memcpy(c->tokens, s->tokens, sizeof(int32_t) * (size_t)s->n);
    memcpy(c->origin, s->origin, (size_t)s->n);
    memcpy(c->logprob, s->logprob, sizeof(float) * (size_t)s->n);
    memcpy(c->model_logprob, s->model_logprob, sizeof(float) * (size_t)s->n);
    memcpy(c->version, s->version, sizeof(uint32_t) * (size_t)s->n);
    if (s->top_ids) {
        c->top_ids = hy_malloc(sizeof(int32_t) * (size_t)c->cap * HY_MAX_TOP_LOGPROBS);
        c->top_lp = hy_malloc(sizeof(float) * (size_t)c->cap * HY_MAX_TOP_LOGPROBS);
        memcpy(c->top_ids, s->top_ids, sizeof(int32_t) * (size_t)s->n * HY_MAX_TOP_LOGPROBS);
        memcpy(c->top_lp, s->top_lp, sizeof(float) * (size_t)s->n * HY_MAX_TOP_LOGPROBS);
    }
    c->fed = s->fed;
    c->prompt_len = s->prompt_len;
    c->turn_start = s->turn_start;
    c->n_gen = s->n_gen;
    c->n_top = s->n_top;
    c->sampling = s->sampling;
    c->rng = s->rng;
    c->finish = s->finish;
    c->stop_index = s->stop_index;
    c->hold = 1;
    c->status = SEQ_HELD;
    c->order = e->next_order++;
    e->st.forks++;
    return c->id;
}

int hy_engine_release(hy_engine *e, int64_t id) {
    seq *s = held(e, id, "release");
    if (!s) return -1;
    give_slot(e, s);
    retire(e, s);
    return 0;
}

void hy_engine_bump_weights(hy_engine *e) {
    e->version++;
    hy_prefix_cache_clear(&e->prefix);
    // weights are updated in place, so the graphs would stay right; dropping them costs one
    // capture per batch size and keeps that from being an assumption
    e->m->be->replay_reset(e->m->be);
}

void hy_engine_stats_get(const hy_engine *e, hy_engine_stats *out) {
    hy_engine_stats s = e->st;
    s.waiting = e->n_waiting;
    s.running = s.held = 0;
    for (int64_t i = 0; i < e->n_seqs; i++) {
        s.running += e->seqs[i]->status == SEQ_RUNNING;
        s.held += e->seqs[i]->status == SEQ_HELD;
    }
    s.n_slots = e->plan.n_slots;
    s.free_slots = e->slots.n_free;
    s.n_blocks = e->plan.n_blocks;
    s.free_blocks = e->cache.n_free;
    s.block_size = e->plan.block_size;
    s.max_len = e->plan.max_len;
    s.pool_bytes = e->plan.total_bytes;
    s.bytes_in_use = (size_t)(s.n_slots - s.free_slots) * e->plan.slot_bytes +
                     (size_t)(s.n_blocks - s.free_blocks) * e->plan.block_bytes;
    s.swap_bytes_in_use = e->swap_in_use;
    s.snapshot_bytes_in_use = e->prefix.bytes;
    s.weight_version = e->version;
    *out = s;
}
