// Held-out evaluation (see eval_run.h).
//
// Two passes over the prompts. The first only measures them: the engine's max_len (the width of
// its block tables and the least budget it accepts) is fixed when it is made, and the longest
// prompt + max_tokens fits every request without reserving the model's whole context. Encoding
// twice costs little next to generation, and keeping every prompt's ids instead would not be
// bounded.
//
// The second pass submits through a window: at most `window` prompts have completions
// outstanding (twice what the pool runs at once, so the engine never runs dry between refills),
// and their samples and ids are all the host holds. Results are handed on in index order, so a
// prompt that finishes early waits, holding only its texts and verdicts, for those before it;
// `ring` bounds how far ahead submission may run, so one slow prompt cannot make that wait grow
// without limit.
#include "evals/eval_run.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/hy_error.h"
#include "model/chat_template.h"
#include "rollout/engine.h"

void hy_eval_options_default(hy_eval_options *o) {
    memset(o, 0, sizeof *o);
    o->samples = 1;
    o->top_p = 1.0f;
    o->max_tokens = 512;
    o->chat = 1;
}

double hy_eval_pass_at_k(int n, int c, int k) {
    if (k < 1 || k > n || c < 0 || c > n) return NAN;
    if (n - c < k) return 1.0;  // every draw of k includes a passing completion
    // C(n−c, k) / C(n, k) = ∏_{i=n−c+1..n} (1 − k/i): no factorials, so no overflow at any n
    double fail_all = 1.0;
    for (int i = n - c + 1; i <= n; i++) fail_all *= 1.0 - (double)k / i;
    return 1.0 - fail_all;
}

int hy_eval_prompt_tokens(const hy_tokenizer *tok, const hy_task_sample *s, int chat, int32_t **ids, int *n) {
    *ids = NULL;
    *n = 0;
    int rc;
    if (chat) {
        rc = hy_chat_encode(tok, s->messages, s->n_messages, 1, ids, n);
    } else {
        if (!s->prompt)
            return hy_fail("sample %s: no plain 'prompt' text (its source gave 'messages'): evaluate it in chat mode",
                           s->id);
        rc = hy_tokenizer_encode(tok, s->prompt, strlen(s->prompt), ids, n);
    }
    if (rc) return hy_fail_prefix("sample %s: prompt", s->id);
    if (*n == 0) return hy_fail("sample %s: the prompt encodes to no tokens", s->id);
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// ---- the model the engine runs on ----------------------------------------------------------------

// The engine stops only at its model's config eos ids. A chat reply ends with <|im_end|>, which a
// base model's config need not list, so in chat mode the engine runs on a copy of the model struct
// (only pointers are copied: the same weights, on the same backend) whose config lists it too.
static int model_for_engine(const hy_model *m, const hy_tokenizer *tok, int chat, hy_model **view) {
    *view = hy_malloc(sizeof **view);
    **view = *m;
    const int32_t im_end = chat ? hy_tokenizer_token_id(tok, "<|im_end|>") : -1;
    if (im_end < 0) return 0;
    hy_config *c = &(*view)->cfg;
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_token_ids[i] == im_end) return 0;
    if (c->n_eos == HY_MAX_EOS) {
        free(*view);
        *view = NULL;
        return hy_fail("eval: the config lists %d eos ids already; no room to stop at <|im_end|> as well", HY_MAX_EOS);
    }
    c->eos_token_ids[c->n_eos++] = im_end;
    return 0;
}

// ---- prompts in flight ---------------------------------------------------------------------------

typedef struct {
    hy_task_sample s;
    int64_t first_id;  // engine id of completion 0; its k completions have consecutive ids
    char **text;       // (k) completions, NULL until finished
    hy_verdict *v;     // (k)
    int n_done;
} pending;

typedef struct {
    const hy_eval_options *o;
    const hy_task *task;
    const hy_tokenizer *tok;
    hy_engine *e;
    int n;                   // prompts in all
    int submitted, flushed;  // prompts [flushed, submitted) are live, in p[ordinal % ring]
    int outstanding;         // live prompts with completions still generating
    int window, ring;        // outstanding ≤ window, live ≤ ring
    pending *p;              // (ring)
    double sum_pass1, sum_passk, sum_reward;
    long tokens;
} eval_state;

static pending *live(eval_state *st, int ordinal) { return &st->p[ordinal % st->ring]; }

static void pending_free(pending *q, int k) {
    hy_task_sample_free(&q->s);
    if (q->text)
        for (int j = 0; j < k; j++) free(q->text[j]);
    free(q->text);
    free(q->v);
    memset(q, 0, sizeof *q);
}

static int submit_next(eval_state *st, const hy_gen_params *base) {
    const int k = st->o->samples;
    const long index = st->o->first_index + st->submitted;
    pending *q = live(st, st->submitted);
    memset(q, 0, sizeof *q);
    int32_t *ids;
    int n_ids;
    if (hy_task_sample_get(st->task, index, &q->s) ||
        hy_eval_prompt_tokens(st->tok, &q->s, st->o->chat, &ids, &n_ids)) {
        pending_free(q, k);
        return -1;
    }
    hy_gen_params p = *base;
    p.seed = st->o->seed + (uint64_t)index * (uint64_t)k;  // completion j: + j (submit_n)
    int64_t *eids = hy_malloc(sizeof(int64_t) * (size_t)k);
    const int rc = hy_engine_submit_n(st->e, ids, n_ids, &p, k, eids);
    free(ids);
    if (rc) {
        free(eids);
        hy_fail_prefix("sample %s", q->s.id);
        pending_free(q, k);
        return -1;
    }
    q->first_id = eids[0];
    free(eids);
    q->text = hy_calloc((size_t)k, sizeof *q->text);
    q->v = hy_calloc((size_t)k, sizeof *q->v);
    st->submitted++;
    st->outstanding++;
    return 0;
}

// The live prompt a finished completion belongs to: first_id grows with the ordinal.
static pending *owner_of(eval_state *st, int64_t id, int *j) {
    int lo = st->flushed, hi = st->submitted - 1;
    while (lo <= hi) {
        const int mid = lo + (hi - lo) / 2;
        pending *q = live(st, mid);
        if (id < q->first_id) {
            hi = mid - 1;
        } else if (id >= q->first_id + st->o->samples) {
            lo = mid + 1;
        } else {
            *j = (int)(id - q->first_id);
            return q;
        }
    }
    return NULL;
}

// The completion's text: the generated ids without the final stop token (eos, or <|im_end|> in
// chat mode, which the engine's view lists among eos), and without ids the tokenizer has no token
// for (a model's embedding has padding rows past the vocabulary that a weak model can sample; HF's
// decode leaves them out too).
static int completion_text(const hy_tokenizer *tok, const hy_result *r, char **text) {
    const int n = r->n_new - (r->finish == HY_FINISH_EOS);
    const int known = hy_tokenizer_vocab_size(tok);
    int32_t *kept = hy_malloc(sizeof(int32_t) * (size_t)(n > 0 ? n : 1));
    int n_kept = 0;
    for (int i = 0; i < n; i++) {
        const int32_t id = r->tokens[r->turn_start + i];
        if (id < known) kept[n_kept++] = id;
    }
    size_t len;
    const int rc = hy_tokenizer_decode(tok, kept, n_kept, 0, text, &len);
    free(kept);
    return rc;
}

static int take_result(eval_state *st, const hy_result *r) {
    int j;
    pending *q = owner_of(st, r->id, &j);
    if (!q || q->text[j])
        return hy_fail("eval: the engine returned request %lld, which was not outstanding", (long long)r->id);
    if (completion_text(st->tok, r, &q->text[j])) return hy_fail_prefix("sample %s: completion %d", q->s.id, j);
    if (hy_task_check(&q->s, q->text[j], NULL, &q->v[j])) return -1;
    st->tokens += r->n_new;
    if (++q->n_done == st->o->samples) st->outstanding--;
    return 0;
}

// Hands finished prompts on in index order and folds them into the sums.
static void flush_ready(eval_state *st, hy_eval_each_fn each, void *ctx) {
    const int k = st->o->samples;
    while (st->flushed < st->submitted && live(st, st->flushed)->n_done == k) {
        pending *q = live(st, st->flushed);
        int c = 0;
        for (int j = 0; j < k; j++) {
            if (each) each(ctx, &q->s, j, q->text[j], &q->v[j]);
            c += q->v[j].reward >= HY_EVAL_PASS_REWARD;
            st->sum_reward += q->v[j].reward;
        }
        st->sum_pass1 += (double)c / k;
        st->sum_passk += hy_eval_pass_at_k(k, c, k);
        pending_free(q, k);
        st->flushed++;
    }
}

static void progress_line(const eval_state *st, double dt, int final) {
    if (!st->o->progress) return;
    fprintf(st->o->progress, "\reval %s: %d/%d prompts, pass@1 %.3f so far, %.1f tok/s%s", hy_task_name(st->task),
            st->flushed, st->n, st->flushed ? st->sum_pass1 / st->flushed : 0.0, dt > 0 ? st->tokens / dt : 0.0,
            final ? "\n" : "");
    fflush(st->o->progress);
}

// ---- the evaluation ------------------------------------------------------------------------------

// How many prompts, from o and the task's size.
static int prompt_count(const hy_task *task, const hy_eval_options *o, int *n) {
    const long size = hy_task_size(task);
    if (o->first_index < 0) return hy_fail("eval: first_index must be ≥ 0 (got %ld)", o->first_index);
    if (o->n_prompts < 0) return hy_fail("eval: n_prompts must be ≥ 0 (got %d)", o->n_prompts);
    if (o->n_prompts == 0) {
        if (size < 0)
            return hy_fail("eval: task %s is an unbounded generator: give a number of prompts (0 = every sample "
                           "is only for a bounded task such as jsonl)",
                           hy_task_name(task));
        if (o->first_index >= size)
            return hy_fail("eval: task %s has %ld samples; first_index %ld leaves none", hy_task_name(task), size,
                           o->first_index);
        if (size - o->first_index > INT_MAX / o->samples)
            return hy_fail("eval: task %s: %ld samples × %d completions are too many for one evaluation",
                           hy_task_name(task), size - o->first_index, o->samples);
        *n = (int)(size - o->first_index);
        return 0;
    }
    if (o->n_prompts > INT_MAX / o->samples)
        return hy_fail("eval: %d prompts × %d completions are too many for one evaluation", o->n_prompts, o->samples);
    if (size >= 0 && o->first_index + o->n_prompts > size)
        return hy_fail("eval: task %s has %ld samples; indices %ld to %ld are past its end", hy_task_name(task), size,
                       o->first_index, o->first_index + o->n_prompts - 1);
    *n = o->n_prompts;
    return 0;
}

// Pass 1: the longest prompt + max_tokens, the max_len every request fits in.
static int longest_request(const hy_model *m, const hy_tokenizer *tok, const hy_task *task, const hy_eval_options *o,
                           int n, int *max_len) {
    *max_len = 0;
    for (int i = 0; i < n; i++) {
        hy_task_sample s;
        int32_t *ids = NULL;
        int n_ids = 0;
        int rc = hy_task_sample_get(task, o->first_index + i, &s);
        if (!rc) rc = hy_eval_prompt_tokens(tok, &s, o->chat, &ids, &n_ids);
        free(ids);
        if (!rc && (long)n_ids + o->max_tokens > m->cfg.max_position_embeddings)
            rc = hy_fail("sample %s: a prompt of %d tokens + max_tokens %d exceeds the model's %d positions", s.id,
                         n_ids, o->max_tokens, m->cfg.max_position_embeddings);
        hy_task_sample_free(&s);
        if (rc) return -1;
        if (n_ids + o->max_tokens > *max_len) *max_len = n_ids + o->max_tokens;
    }
    return 0;
}

static int make_engine(const hy_model *view, const hy_tokenizer *tok, const hy_eval_options *o, int max_len,
                       hy_engine **e) {
    hy_engine_config c;
    hy_engine_config_default(&c);
    if (o->memory_bytes) c.memory_bytes = o->memory_bytes;
    else if (o->memory_fraction > 0) c.memory_fraction = o->memory_fraction;
    if (o->max_seqs > 0) c.max_seqs = o->max_seqs;
    c.max_len = max_len;
    c.tok = tok;
    if (hy_engine_new(e, view, &c)) return hy_fail_prefix("eval");
    if (o->progress) fprintf(o->progress, "eval: %s\n", hy_engine_pool_text(*e));
    return 0;
}

// Pass 2: the window loop.
static int generate_and_score(eval_state *st, hy_eval_each_fn each, void *ctx, double t0) {
    const hy_eval_options *o = st->o;
    hy_gen_params base;
    hy_gen_params_default(&base);
    base.temperature = o->temperature;
    base.top_p = o->top_p;
    base.top_k = o->top_k;
    base.max_tokens = o->max_tokens;
    double last = 0.0;
    while (st->flushed < st->n) {
        while (st->submitted < st->n && st->outstanding < st->window && st->submitted - st->flushed < st->ring)
            if (submit_next(st, &base)) return -1;
        const int more = hy_engine_step(st->e);
        if (more < 0) return hy_fail_prefix("eval");
        hy_result r;
        while (hy_engine_poll(st->e, &r)) {
            const int rc = take_result(st, &r);
            hy_result_free(&r);
            if (rc) return -1;
        }
        flush_ready(st, each, ctx);
        if (!more && st->outstanding)
            return hy_fail("eval: the engine went idle with %d prompt(s) unfinished", st->outstanding);
        const double t = now_s() - t0;
        if (t - last >= 0.5) {
            progress_line(st, t, 0);
            last = t;
        }
    }
    return 0;
}

int hy_eval_run(const hy_model *m, const hy_tokenizer *tok, const hy_task *task, const hy_eval_options *o,
                hy_eval_result *r, hy_eval_each_fn each, void *ctx) {
    memset(r, 0, sizeof *r);
    const double t0 = now_s();
    if (!tok) return hy_fail("eval: needs the model's tokenizer (to render prompts and decode completions)");
    if (o->samples < 1) return hy_fail("eval: samples must be ≥ 1 (got %d)", o->samples);
    if (o->max_tokens < 1) return hy_fail("eval: max_tokens must be ≥ 1 (got %d)", o->max_tokens);
    int n = 0, max_len = 0;
    if (prompt_count(task, o, &n) || longest_request(m, tok, task, o, n, &max_len)) return -1;
    hy_model *view;
    if (model_for_engine(m, tok, o->chat, &view)) return -1;
    eval_state st = {.o = o, .task = task, .tok = tok, .n = n};
    if (make_engine(view, tok, o, max_len, &st.e)) {
        free(view);
        return -1;
    }
    hy_engine_stats es;
    hy_engine_stats_get(st.e, &es);
    st.window = (2 * es.n_slots + o->samples - 1) / o->samples;
    st.ring = 8 * st.window;
    st.p = hy_calloc((size_t)st.ring, sizeof *st.p);
    const int rc = generate_and_score(&st, each, ctx, t0);
    for (int i = st.flushed; i < st.submitted; i++) pending_free(live(&st, i), o->samples);
    free(st.p);
    hy_engine_destroy(st.e);
    free(view);
    const double dt = now_s() - t0;
    if (rc) {
        if (o->progress) fputc('\n', o->progress);
        return -1;
    }
    progress_line(&st, dt, 1);
    r->k = o->samples;
    r->n_prompts = n;
    r->n_completions = n * o->samples;
    r->pass_at_1 = st.sum_pass1 / n;
    r->pass_at_k = st.sum_passk / n;
    r->mean_reward = st.sum_reward / r->n_completions;
    r->generated_tokens = st.tokens;
    r->seconds = dt;
    return 0;
}
