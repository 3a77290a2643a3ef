// Rollout benchmarks (see bench_rollout.h; workloads and ceiling model: docs/rollout.md,
// "Benchmark").
//
// Measuring latency without an engine hook: the bench drives the engine step by step and keeps
// the wall time at the end of each step. Every running sequence decodes one token in every step
// (scheduler.h), so a turn that finished in step s after generating n tokens produced its first
// token in step s − (n − 1); this is exact unless the sequence was preempted in between (the report
// says when any was). TTFT is the end of that step minus the time the turn was asked for; ITL the
// mean gap between a turn's tokens, pooled over turns (vLLM's definitions). A step returns once
// its logits are on the host (the CUDA backend's copy synchronises), so its end time is when its
// tokens exist.
//
// Ceiling model, per workload: every prefill piece costs its FLOPs at the measured GEMM rate;
// decoding costs (decode tokens / B) steps, each max(bytes / copy rate, FLOPs / GEMM rate), where
// a step of B sequences at mean context c moves the weights once (matrices + lm_head in the matmul
// type), B·c tokens of K and V, and B GDN states + conv windows read and written; the two are
// added, not overlapped. B is the workload's concurrency, capped by how many sequences of its final
// length the pool holds. FLOPs: 2 per matrix parameter per token, attention 4·H·D per (query,
// context token) pair per attention layer, the chunked GDN form (C = 64) per prefill token and
// 6·H_v·Dk·Dv per GDN layer per decode token; norms, convolutions and gates are left out.
#include "bench_rollout.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/hy_error.h"
#include "../common/parallel.h"
#include "../common/rng.h"
#include "engine.h"
#include "sampler.h"
#include "state_pool.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// "13.3 G" + unit: numbers of any size in 4 significant characters.
static const char *si(double v, const char *unit, char *buf, size_t n) {
    static const char *const prefix[] = {"", "k", "M", "G", "T", "P"};
    int p = 0;
    while (fabs(v) >= 1000.0 && p < 5) {
        v /= 1000.0;
        p++;
    }
    snprintf(buf, n, "%.3g %s%s", v, prefix[p], unit);
    return buf;
}

static uint64_t mix64(uint64_t z) {  // splitmix64's finaliser
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// A seed per (run seed, purpose, index), so workloads and requests draw unrelated streams.
static uint64_t seed_of(uint64_t base, int purpose, int64_t i) {
    return mix64(mix64(base * 0x9e3779b97f4a7c15ull + (uint64_t)purpose) + (uint64_t)i);
}

static void random_tokens(int32_t *t, int n, int V, uint64_t seed) {
    hy_rng r;
    hy_rng_init(&r, seed);
    for (int i = 0; i < n; i++) t[i] = (int32_t)(hy_rng_next(&r) % (uint64_t)V);
}

// ---- the inference-only model --------------------------------------------------------------------

enum { STAGE_FLOATS = 1 << 24 };  // values staged per host → backend copy (64 MiB)

static int is_matrix(const hy_param_spec *s) { return s->role == HY_ROLE_MATRIX || s->role == HY_ROLE_EMBED; }

// Values [start, start + n) of tensor `tensor`, start a multiple of STAGE_FLOATS and n at most
// STAGE_FLOATS: uniform on [−a, a) with a = std·√3 (variance std²), from a xorshift64* stream per
// (seed, tensor, chunk) giving two 24-bit values per draw — ~1 ns a value, where a hash per value
// took 6.6 ns here and 7.4 B values are to be drawn.
static void random_values(float *x, size_t n, uint64_t seed, int tensor, size_t start, float std) {
    uint64_t s = mix64(mix64(seed * 0x9e3779b97f4a7c15ull + (uint64_t)tensor + 1) + start / STAGE_FLOATS) | 1;
    const float a = std * 1.7320508f, k = 2.0f / 16777216.0f;
    for (size_t i = 0; i < n; i += 2) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        const uint64_t h = s * 0x2545f4914f6cdd1dull;
        // through int32: converting a uint64_t to float is a slow path on x86-64
        x[i] = a * ((float)(int32_t)(h >> 40) * k - 1.0f);
        if (i + 1 < n) x[i + 1] = a * ((float)(int32_t)((h >> 16) & 0xffffff) * k - 1.0f);
    }
}

// n fp32 host values → n elements of the backend's activation type at dst. stage: a backend fp32
// buffer of at least n floats, used when the activation type is not fp32 (CUDA: bf16).
static void upload_elems(hy_backend *be, void *dst, const float *host, size_t n, float *stage) {
    if (be->act_bytes == sizeof(float)) {
        be->bytes_from_host(be, dst, host, n * sizeof(float));
    } else {
        be->f32_from_host(be, stage, host, n);
        be->params_to_matmul_view(be, dst, stage, n);
    }
}

int hy_bench_model_build(hy_model *m, const hy_config *cfg, const hy_model *src, hy_backend *be, uint64_t seed) {
    memset(m, 0, sizeof *m);
    if (!src && !cfg) return hy_fail("bench model: needs a config or a source model");
    m->cfg = src ? src->cfg : *cfg;
    hy_param_table_build(&m->table, &m->cfg);
    m->be = be;
    // the small tensors get a table of their own, so their fp32 copy is all that is allocated
    hy_param_table small = {hy_malloc(sizeof(hy_param_spec) * (size_t)m->table.n), 0, 0, 0};
    size_t *from = hy_malloc(sizeof(size_t) * (size_t)m->table.n);  // their offsets in m->table
    for (int i = 0; i < m->table.n; i++) {
        const hy_param_spec *s = &m->table.specs[i];
        if (is_matrix(s)) continue;
        from[small.n] = s->offset;
        small.specs[small.n] = *s;
        small.specs[small.n].offset = small.total;
        small.total += s->numel;
        small.n++;
    }
    float *host = hy_calloc(small.total ? small.total : 1, sizeof(float));
    if (src)
        for (int i = 0; i < small.n; i++)
            memcpy(host + small.specs[i].offset, src->arena + from[i], sizeof(float) * small.specs[i].numel);
    else
        hy_params_init_random(host, &small, &m->cfg, seed);
    m->dev = be->alloc_persistent(be, sizeof(float) * (small.total ? small.total : 1));
    be->f32_from_host(be, m->dev, host, small.total);
    hy_params_bind(&m->p, &small, &m->cfg, m->dev);  // matrix fields stay NULL: only pmm has them
    free(host);
    free(from);
    hy_param_table_free(&small);

    m->mm = be->alloc_persistent(be, m->table.total * be->act_bytes);
    float *stage_host = hy_malloc(sizeof(float) * STAGE_FLOATS);
    float *stage = be->act_bytes == sizeof(float) ? NULL : be->alloc_persistent(be, sizeof(float) * STAGE_FLOATS);
    const size_t C = (size_t)m->cfg.hidden_size;
    const int pad = m->cfg.pad_token_id;
    for (int i = 0; i < m->table.n; i++) {
        const hy_param_spec *s = &m->table.specs[i];
        if (!is_matrix(s)) continue;
        for (size_t done = 0; done < s->numel; done += STAGE_FLOATS) {
            const size_t n = s->numel - done < STAGE_FLOATS ? s->numel - done : STAGE_FLOATS;
            if (src) {
                memcpy(stage_host, src->arena + s->offset + done, sizeof(float) * n);
            } else {
                random_values(stage_host, n, seed, i, done, m->cfg.initializer_range);
                if (s->role == HY_ROLE_EMBED && pad >= 0 && pad < m->cfg.vocab_size) {
                    const size_t r0 = (size_t)pad * C, r1 = r0 + C;  // HF zeroes the padding row
                    for (size_t j = r0 > done ? r0 : done; j < r1 && j < done + n; j++) stage_host[j - done] = 0.0f;
                }
            }
            upload_elems(be, (char *)m->mm + (s->offset + done) * be->act_bytes, stage_host, n, stage);
        }
    }
    if (stage) be->free_persistent(be, stage);
    free(stage_host);
    hy_params_bind_elems(&m->pmm, &m->table, &m->cfg, m->mm, be->act_bytes);
    return 0;
}

size_t hy_bench_model_bytes(const hy_model *m) {
    size_t small = 0;
    for (int i = 0; i < m->table.n; i++)
        if (!is_matrix(&m->table.specs[i])) small += m->table.specs[i].numel;
    return m->table.total * m->be->act_bytes + small * sizeof(float);
}

// ---- ceilings ------------------------------------------------------------------------------------

static int by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// Median over `samples` timings of `reps` calls of fn, after one untimed sample (warm-up).
typedef void (*timed_fn)(hy_backend *be, void *ctx);
static double median_seconds(hy_backend *be, timed_fn fn, void *ctx, int reps, int samples) {
    double t[16];
    if (samples > 16) samples = 16;
    for (int k = -1; k < samples; k++) {
        be->synchronize(be);
        const double t0 = now_s();
        for (int r = 0; r < reps; r++) fn(be, ctx);
        be->synchronize(be);
        if (k >= 0) t[k] = (now_s() - t0) / reps;
    }
    qsort(t, (size_t)samples, sizeof *t, by_value);
    return t[samples / 2];
}

typedef struct {
    void *a, *b, *c;
    size_t n;
} bufs;

static void copy_once(hy_backend *be, void *ctx) {
    bufs *x = ctx;
    be->f32_copy(be, x->b, x->a, x->n);
}

static void gemm_once(hy_backend *be, void *ctx) {
    bufs *x = ctx;
    be->linear_forward(be, x->c, x->a, x->b, (int)x->n, (int)x->n, (int)x->n);
}

void hy_bench_measure_ceilings(hy_backend *be, hy_bench_ceilings *c) {
    const int gpu = be->device != HY_DEVICE_CPU;
    // copy: buffers well beyond any cache (1 GiB on a GPU, 64 MiB on the CPU)
    bufs x = {0};
    x.n = gpu ? (size_t)1 << 28 : (size_t)1 << 24;
    x.a = be->alloc_persistent(be, x.n * sizeof(float));
    x.b = be->alloc_persistent(be, x.n * sizeof(float));
    c->copy_gbs = 2.0 * x.n * sizeof(float) / median_seconds(be, copy_once, &x, gpu ? 10 : 2, 7) / 1e9;
    be->free_persistent(be, x.a);
    be->free_persistent(be, x.b);

    // GEMM: the model's own linear op on random activations (never zeros: performance.md)
    const int N = gpu ? 8192 : 256;
    const size_t nn = (size_t)N * N;
    bufs g = {be->alloc_persistent(be, nn * be->act_bytes), be->alloc_persistent(be, nn * be->act_bytes),
              be->alloc_persistent(be, nn * be->act_bytes), (size_t)N};
    const size_t chunk = nn < STAGE_FLOATS ? nn : STAGE_FLOATS;
    float *stage_host = hy_malloc(sizeof(float) * chunk);
    float *stage = be->act_bytes == sizeof(float) ? NULL : be->alloc_persistent(be, sizeof(float) * chunk);
    for (int which = 0; which < 2; which++)
        for (size_t done = 0; done < nn; done += chunk) {
            const size_t n = nn - done < chunk ? nn - done : chunk;
            random_values(stage_host, n, 12345, which, done, 1.0f);
            upload_elems(be, (char *)(which ? g.b : g.a) + done * be->act_bytes, stage_host, n, stage);
        }
    if (stage) be->free_persistent(be, stage);
    free(stage_host);
    c->gemm_n = N;
    c->gemm_tflops = 2.0 * (double)N * N * N / median_seconds(be, gemm_once, &g, gpu ? 5 : 1, 7) / 1e12;
    be->free_persistent(be, g.a);
    be->free_persistent(be, g.b);
    be->free_persistent(be, g.c);
}

// ---- cost model (the file's opening comment) -------------------------------------------------------

typedef struct {
    double matmul_params;    // matrix elements every token multiplies (not the embedding, not lm_head)
    double head_params;      // lm_head: V·C (tied or not)
    double weight_bytes;     // weights a decode step reads: matrices + lm_head (matmul type), fp32 small tensors
    double kv_bytes_tok;     // K and V of one context token over all attention layers
    double state_bytes;      // one sequence's GDN states + conv windows, read and written
    double attn_flops_ctx;   // attention FLOPs per (query, context token) pair, all attention layers
    double gdn_chunk_flops;  // chunked GDN per prefill token, all GDN layers
    double gdn_step_flops;   // recurrent GDN per decode token, all GDN layers
} cost_model;

static void cost_model_init(cost_model *cm, const hy_model *m) {
    const hy_config *c = &m->cfg;
    memset(cm, 0, sizeof *cm);
    double small = 0;
    for (int i = 0; i < m->table.n; i++) {
        const hy_param_spec *s = &m->table.specs[i];
        if (s->role == HY_ROLE_MATRIX && strcmp(s->name, "lm_head.weight"))
            cm->matmul_params += (double)s->numel;
        else if (!is_matrix(s))
            small += (double)s->numel;
    }
    cm->head_params = (double)c->vocab_size * c->hidden_size;
    const double act = (double)m->be->act_bytes;
    cm->weight_bytes = (cm->matmul_params + cm->head_params) * act + small * sizeof(float);
    cm->kv_bytes_tok = (double)hy_cache_block_bytes(c, m->be->act_bytes, 1);
    cm->state_bytes = 2.0 * (double)hy_cache_slot_bytes(c);
    const int L_gdn = hy_config_n_gdn_layers(c), L_attn = c->num_hidden_layers - L_gdn;
    const double Hv = c->linear_num_value_heads, Dk = c->linear_key_head_dim, Dv = c->linear_value_head_dim;
    cm->attn_flops_ctx = 4.0 * c->num_attention_heads * c->head_dim * L_attn;
    cm->gdn_chunk_flops = L_gdn * Hv * 2.0 * (64.0 * (3.0 * Dk + 2.0 * Dv) + 3.0 * Dk * Dv);
    cm->gdn_step_flops = L_gdn * Hv * 6.0 * Dk * Dv;
}

// A workload's work: prefill FLOPs, and decode tokens with the sum of their contexts.
typedef struct {
    double prefill_flops, prefill_tokens, decode_tokens, decode_ctx;
} work;

// n tokens fed in one piece after ctx0 held tokens; the engine makes one logits row per piece.
static double prefill_flops(const cost_model *cm, double n, double ctx0) {
    return 2.0 * cm->matmul_params * n + cm->attn_flops_ctx * (n * ctx0 + n * (n + 1) / 2) + cm->gdn_chunk_flops * n +
           2.0 * cm->head_params;
}

static void add_prefill(const cost_model *cm, work *w, double n, double ctx0) {
    w->prefill_flops += prefill_flops(cm, n, ctx0);
    w->prefill_tokens += n;
}

// n decode feeds after ctx0 held tokens: the i-th attends to ctx0 + i tokens.
static void add_decode(work *w, double n, double ctx0) {
    w->decode_tokens += n;
    w->decode_ctx += n * ctx0 + n * (n + 1) / 2;
}

typedef struct {
    double s, bytes, flops;
} step_cost;

static step_cost decode_step(const cost_model *cm, const hy_bench_ceilings *k, double B, double ctx) {
    step_cost r;
    r.bytes = cm->weight_bytes + B * (cm->kv_bytes_tok * ctx + cm->state_bytes);
    r.flops = B * (2.0 * (cm->matmul_params + cm->head_params) + cm->attn_flops_ctx * ctx + cm->gdn_step_flops);
    const double tb = r.bytes / (k->copy_gbs * 1e9), tf = r.flops / (k->gemm_tflops * 1e12);
    r.s = tb > tf ? tb : tf;
    return r;
}

typedef struct {
    double total_s, prefill_s, decode_s, ctx;
    step_cost step;  // one decode step at B and the mean context
} ceiling;

static ceiling workload_ceiling(const cost_model *cm, const hy_bench_ceilings *k, const work *w, double B) {
    ceiling c;
    c.prefill_s = w->prefill_flops / (k->gemm_tflops * 1e12);
    c.ctx = w->decode_tokens > 0 ? w->decode_ctx / w->decode_tokens : 0.0;
    c.step = decode_step(cm, k, B, c.ctx);
    c.decode_s = w->decode_tokens / B * c.step.s;
    c.total_s = c.prefill_s + c.decode_s;
    return c;
}

// ---- driving the engine ----------------------------------------------------------------------------

typedef struct {
    hy_engine *e;
    const char *name;
    int progress;
    double t0, last_print;
    double *t_step;  // seconds since t0 at the end of each step
    int64_t n_step, cap_step;
    double *t_req;   // per sequence id: when its current turn was asked for
    int64_t cap_req;
    double ttft_sum, itl_sum;
    int64_t ttft_n, itl_n, out_tokens, done, total;
} run;

static void run_init(run *r, hy_engine *e, const char *name, int64_t total, int progress) {
    memset(r, 0, sizeof *r);
    r->e = e;
    r->name = name;
    r->total = total;
    r->progress = progress;
    r->t0 = now_s();
}

static void run_free(run *r) {
    free(r->t_step);
    free(r->t_req);
}

static void run_requested(run *r, int64_t id) {
    if (id >= r->cap_req) {
        int64_t cap = r->cap_req ? 2 * r->cap_req : 64;
        while (cap <= id) cap *= 2;
        r->t_req = hy_realloc(r->t_req, sizeof(double) * (size_t)cap);
        r->cap_req = cap;
    }
    r->t_req[id] = now_s() - r->t0;
}

static int run_step(run *r) {
    const int rc = hy_engine_step(r->e);
    if (r->n_step == r->cap_step) {
        r->cap_step = r->cap_step ? 2 * r->cap_step : 1024;
        r->t_step = hy_realloc(r->t_step, sizeof(double) * (size_t)r->cap_step);
    }
    r->t_step[r->n_step++] = now_s() - r->t0;
    return rc;
}

// A finished turn, polled right after the step that finished it (the opening comment).
static void run_account(run *r, const hy_result *res) {
    const int64_t s_end = r->n_step - 1;
    int64_t s1 = s_end - (res->n_new - 1);
    if (s1 < 0) s1 = 0;
    if (res->id < r->cap_req) {
        r->ttft_sum += r->t_step[s1] - r->t_req[res->id];
        r->ttft_n++;
    }
    if (res->n_new > 1) {
        r->itl_sum += r->t_step[s_end] - r->t_step[s1];
        r->itl_n += res->n_new - 1;
    }
    r->out_tokens += res->n_new;
}

static void run_progress(run *r, int final) {
    if (!r->progress) return;
    const double t = now_s() - r->t0;
    if (!final && t - r->last_print < 1.0) return;
    r->last_print = t;
    hy_engine_stats st;
    hy_engine_stats_get(r->e, &st);
    char used[32], pool[32];
    fprintf(stderr, "\rhybrid bench rollout: %s %lld/%lld done, %.1f tok/s generated, %.1f tok/s prefill, pool %s of %s "
                    "in use%s",
            r->name, (long long)r->done, (long long)r->total, t > 0 ? st.generated_tokens / t : 0.0,
            t > 0 ? st.prefill_tokens / t : 0.0, hy_bytes_text(st.bytes_in_use, used, sizeof used),
            hy_bytes_text(st.pool_bytes, pool, sizeof pool), final ? "\n" : "");
}

// Steps once and hands every finished turn to on_done. 1 while work remains, 0 idle, −1 error.
typedef int (*turn_fn)(run *r, const hy_result *res, void *ctx);
static int run_step_poll(run *r, turn_fn on_done, void *ctx) {
    const int more = run_step(r);
    if (more < 0) return -1;
    hy_result res;
    int rc = 0;
    while (hy_engine_poll(r->e, &res)) {
        run_account(r, &res);
        if (!rc && on_done(r, &res, ctx)) rc = -1;
        hy_result_free(&res);
    }
    run_progress(r, 0);
    if (rc) return -1;
    if (more) return more;
    // idle before the callbacks ran: they may have queued more (an appended turn)
    hy_engine_stats st;
    hy_engine_stats_get(r->e, &st);
    return st.running + st.waiting > 0;
}

// Sequences of len tokens whose whole state (GDN slot + KV blocks) fits in budget.
static int seqs_fitting(const hy_model *m, size_t budget, int len) {
    const int bs = HY_CACHE_BLOCK_DEFAULT;
    const size_t per = hy_cache_slot_bytes(&m->cfg) +
                       (size_t)((len + bs - 1) / bs) * hy_cache_block_bytes(&m->cfg, m->be->act_bytes, bs);
    const size_t n = budget / (per ? per : 1);
    return n > INT_MAX ? INT_MAX : (int)n;
}

static int engine_for(const hy_model *m, const hy_bench_rollout_opts *o, int max_seqs, int max_len, hy_engine **e) {
    hy_engine_config c;
    hy_engine_config_default(&c);
    c.memory_bytes = o->memory_bytes;
    c.max_seqs = max_seqs;
    c.max_len = max_len;
    c.prefill_chunk = o->chunk;
    c.step_tokens = o->chunk + max_seqs;  // one full prefill chunk beside every decode
    c.verbose = o->progress;
    c.cuda_graphs = o->cuda_graphs;
    return hy_engine_new(e, m, &c);
}

static int scaled(int n, double f) {
    const long v = lround(n * f);
    return v < 1 ? 1 : (int)v;
}

// ---- report ----------------------------------------------------------------------------------------

static void print_columns(void) {
    printf("\n%-16s %-42s %11s %20s %7s  %-44s %s\n", "workload", "shape", "ms", "rate", "%ceil", "ceiling", "peer");
}

static void print_row(const char *name, const char *shape, double ms, const char *rate, double pct, const char *ceil,
                      const char *peer) {
    char p[16] = "-";
    if (pct >= 0) snprintf(p, sizeof p, "%.1f%%", pct);
    printf("%-16s %-42s %11.1f %20s %7s  %-44s %s\n", name, shape, ms, rate, p, ceil, peer ? peer : "-");
}

typedef struct {
    const hy_model *m;
    const hy_bench_rollout_opts *o;
    cost_model cm;
    hy_bench_ceilings k;
} bench_env;

// The rows every throughput workload prints: output tokens/s against the ceiling, and the mean
// inter-token latency against a decode step's floor (including its share of interleaved prefill).
static void print_throughput(const bench_env *v, const char *name, const char *shape, const run *r, const work *w,
                             double B, const char *peer_rate, const char *peer_itl) {
    const ceiling c = workload_ceiling(&v->cm, &v->k, w, B);
    const double wall = r->n_step ? r->t_step[r->n_step - 1] : 0.0;
    const double out = wall > 0 ? r->out_tokens / wall : 0.0, out_ceil = r->out_tokens / c.total_s;
    char rate[48], ceil[96], label[32];
    snprintf(rate, sizeof rate, "%.1f tok/s", out);
    snprintf(ceil, sizeof ceil, "%.1f tok/s (B=%.0f; %.0f%% of it prefill)", out_ceil, B, 100.0 * c.prefill_s / c.total_s);
    print_row(name, shape, wall * 1e3, rate, 100.0 * out / out_ceil, ceil, peer_rate);
    if (r->itl_n) {
        const double itl = r->itl_sum / r->itl_n, floor_s = c.total_s * B / w->decode_tokens;
        snprintf(label, sizeof label, "%s ITL", name);
        char bw[32];
        snprintf(rate, sizeof rate, "%s", si(c.step.bytes / itl, "B/s", bw, sizeof bw));
        snprintf(ceil, sizeof ceil, "%.3g ms (step %.3g + prefill %.3g, ctx %.0f)", floor_s * 1e3, c.step.s * 1e3,
                 (floor_s - c.step.s) * 1e3, c.ctx);
        char gaps[64];
        snprintf(gaps, sizeof gaps, "mean of %lld gaps", (long long)r->itl_n);
        print_row(label, gaps, itl * 1e3, rate, 100.0 * floor_s / itl, ceil, peer_itl);
    }
}

// Where the engine's steps spent their time (measured in the engine: hy_engine_stats).
static void print_step_split(const hy_engine_stats *st) {
    if (st->steps <= 0 || st->step_s <= 0) return;
    const double n = (double)st->steps, other = st->step_s - st->forward_s - st->sample_s;
    printf("%-16s per step (mean of %lld): %.2f ms = forward %.2f ms (%.0f%%) + sampling %.2f ms (%.0f%%) + host "
           "bookkeeping %.2f ms (%.0f%%)\n",
           "", (long long)st->steps, 1e3 * st->step_s / n, 1e3 * st->forward_s / n, 100 * st->forward_s / st->step_s,
           1e3 * st->sample_s / n, 100 * st->sample_s / st->step_s, 1e3 * other / n, 100 * other / st->step_s);
    if (st->graph_steps)
        printf("%-16s %lld of the steps were replayed CUDA graphs (%lld captured); their forward includes the draws\n",
               "", (long long)st->graph_steps, (long long)st->graph_captures);
}

static void print_preemptions(const hy_engine_stats *st) {
    print_step_split(st);
    if (st->preemptions)
        printf("%-16s %lld preemption(s) (%lld swapped, %lld recomputed): latencies of preempted turns are approximate\n",
               "", (long long)st->preemptions, (long long)st->swapped, (long long)st->recomputed);
}

// Host time of sampling: one token from a row of V logits on one core, and a decode step's B
// tokens drawn as the engine draws them (B rows at once over the host thread pool).
typedef struct {
    const float *row;
    int V;
    hy_sampling s;
} sample_job;

static void sample_one(void *ctx, int i) {
    const sample_job *j = ctx;
    hy_rng rng;
    hy_rng_init(&rng, (uint64_t)i + 1);
    hy_sample_token(j->row, j->V, &j->s, &rng);
}

static void print_host_sampling(int V, float temperature, int B) {
    float *row = hy_malloc(sizeof(float) * (size_t)V);
    random_values(row, (size_t)V, 99, 0, 0, 2.0f);
    sample_job j = {row, V, {temperature, 0, 1.0f}};
    const int reps = V > 50000 ? 20 : 200;
    double t0 = now_s();
    for (int i = 0; i < reps; i++) sample_one(&j, i);
    const double one = (now_s() - t0) * 1e3 / reps;
    hy_parallel_for(B, sample_one, &j);  // the pool's threads start outside the timing
    t0 = now_s();
    for (int i = 0; i < reps; i++) hy_parallel_for(B, sample_one, &j);
    const double step = (now_s() - t0) * 1e3 / reps;
    free(row);
    printf("%-16s host sampling (%s, V=%d): %.3f ms per token on one core; %.2f ms per decode step of %d on %d "
           "threads\n",
           "", temperature > 0 ? "temperature 1" : "greedy", V, one, step, B, hy_parallel_threads());
}

// ---- workloads -------------------------------------------------------------------------------------

static int count_done(run *r, const hy_result *res, void *ctx) {
    r->done++;
    return 0;
}

// The vLLM serving benchmark: random prompts, fixed output length (eos ignored), greedy (the
// `vllm bench serve` default), at most 32 requests in flight on the client side; TTFT counts from
// the request's submission, as vLLM's client does.
static int bench_serving(const bench_env *v) {
    const hy_model *m = v->m;
    const hy_bench_rollout_opts *o = v->o;
    const int n_req = scaled(512, o->scale * o->count_scale), P = scaled(8192, o->scale), M = scaled(1024, o->scale);
    const int conc = n_req < 32 ? n_req : 32, V = m->cfg.vocab_size;
    const int fit = seqs_fitting(m, o->memory_bytes, P + M), B = fit < conc ? fit : conc;
    char have[32];
    if (B < 1)
        return hy_fail("serving: a pool budget of %s cannot hold one sequence of %d tokens (give more --memory or a "
                       "smaller --scale)",
                       hy_bytes_text(o->memory_bytes, have, sizeof have), P + M);
    hy_engine *e;
    if (engine_for(m, o, B, P + M, &e)) return hy_fail_prefix("serving");
    hy_gen_params p;
    hy_gen_params_default(&p);
    p.temperature = 0.0f;
    p.max_tokens = M;
    p.ignore_eos = 1;
    int32_t *prompt = hy_malloc(sizeof(int32_t) * (size_t)P);
    run r;
    run_init(&r, e, "serving", n_req, o->progress);
    int64_t submitted = 0;
    int rc = 0;
    while (r.done < n_req && !rc) {
        while (submitted < n_req && submitted - r.done < conc) {
            random_tokens(prompt, P, V, seed_of(o->seed, 1, submitted));
            const int64_t id = hy_engine_submit(e, prompt, P, &p);
            if (id < 0) {
                rc = -1;
                break;
            }
            run_requested(&r, id);
            submitted++;
        }
        if (rc) break;
        const int more = run_step_poll(&r, count_done, NULL);
        if (more < 0)
            rc = -1;
        else if (more == 0 && r.done < n_req && submitted - r.done > 0)
            rc = hy_fail("the engine went idle with %lld request(s) unfinished", (long long)(submitted - r.done));
    }
    run_progress(&r, 1);
    free(prompt);
    hy_engine_stats st;
    hy_engine_stats_get(e, &st);
    if (!rc) {
        work w = {0};
        for (int i = 0; i < n_req; i++) {
            add_prefill(&v->cm, &w, P, 0);
            add_decode(&w, M - 1, P);
        }
        char shape[96], peer_rate[64] = "-", peer_itl[64] = "-", peer_ttft[64] = "-", rate[48], ceil[96];
        snprintf(shape, sizeof shape, "%d x %d in, %d out, %d in flight", n_req, P, M, conc);
        const int full = o->peers && P == 8192 && M == 1024;
        const double wall = r.t_step[r.n_step - 1], itl = r.itl_n ? r.itl_sum / r.itl_n : 0.0;
        const double ttft = r.ttft_n ? r.ttft_sum / r.ttft_n : 0.0;
        if (full) {  // vLLM on 1x H100, published (performance.md): 1,066 tok/s, TTFT 4,665 ms, ITL 25 ms
            snprintf(peer_rate, sizeof peer_rate, "vLLM 1066 tok/s: %.2fx", r.out_tokens / wall / 1066.0);
            snprintf(peer_itl, sizeof peer_itl, "vLLM 25 ms: %.2fx", itl > 0 ? 0.025 / itl : 0.0);
            snprintf(peer_ttft, sizeof peer_ttft, "vLLM 4665 ms: %.2fx", ttft > 0 ? 4.665 / ttft : 0.0);
        }
        print_throughput(v, "serving", shape, &r, &w, B, peer_rate, peer_itl);
        // TTFT floor: the prompt's prefill alone at the GEMM rate (under load it shares its steps)
        const double floor_s = prefill_flops(&v->cm, P, 0) / (v->k.gemm_tflops * 1e12);
        snprintf(shape, sizeof shape, "mean of %lld requests", (long long)r.ttft_n);
        snprintf(rate, sizeof rate, "%.0f prompt tok/s", ttft > 0 ? P / ttft : 0.0);
        snprintf(ceil, sizeof ceil, "%.3g ms (the prompt's prefill alone)", floor_s * 1e3);
        print_row("serving TTFT", shape, ttft * 1e3, rate, ttft > 0 ? 100.0 * floor_s / ttft : -1, ceil, peer_ttft);
        print_preemptions(&st);
        print_host_sampling(V, 0.0f, B);
        if (full)
            printf("%-16s peer: vLLM serving OLMo-Hybrid-7B-Instruct-DPO on 1x H100, published figures (not run here); "
                   "Nx = our speed relative to it\n",
                   "");
        fflush(stdout);
    }
    hy_engine_destroy(e);
    run_free(&r);
    return rc ? hy_fail_prefix("serving") : 0;
}

// GRPO sampling: every prompt prefilled once and forked into 16 samples (temperature 1); all
// groups are queued at once and admitted as whole groups fit.
static int bench_grpo(const bench_env *v) {
    const hy_model *m = v->m;
    const hy_bench_rollout_opts *o = v->o;
    enum { K = 16 };
    const int n_p = scaled(64, o->scale * o->count_scale), P = scaled(512, o->scale), M = scaled(4096, o->scale);
    const int total = n_p * K, V = m->cfg.vocab_size, fit = seqs_fitting(m, o->memory_bytes, P + M);
    int B = fit / K * K;
    if (B > total) B = total;
    char have[32];
    if (B < K)
        return hy_fail("grpo: a pool budget of %s holds %d sequence(s) of %d tokens; a group of %d samples needs %d "
                       "(give more --memory or a smaller --scale)",
                       hy_bytes_text(o->memory_bytes, have, sizeof have), fit, P + M, K, K);
    hy_engine *e;
    if (engine_for(m, o, B, P + M, &e)) return hy_fail_prefix("grpo");
    hy_gen_params p;
    hy_gen_params_default(&p);
    p.temperature = 1.0f;
    p.max_tokens = M;
    p.ignore_eos = 1;
    int32_t *prompt = hy_malloc(sizeof(int32_t) * (size_t)P);
    int64_t ids[K];
    run r;
    run_init(&r, e, "grpo", total, o->progress);
    int rc = 0;
    for (int g = 0; g < n_p && !rc; g++) {
        random_tokens(prompt, P, V, seed_of(o->seed, 2, g));
        p.seed = seed_of(o->seed, 3, g);
        rc = hy_engine_submit_n(e, prompt, P, &p, K, ids);
        for (int i = 0; i < K && !rc; i++) run_requested(&r, ids[i]);
    }
    free(prompt);
    int more = 1;
    while (!rc && more > 0) {
        more = run_step_poll(&r, count_done, NULL);
        if (more < 0) rc = -1;
    }
    run_progress(&r, 1);
    hy_engine_stats st;
    hy_engine_stats_get(e, &st);
    if (!rc && r.done != total) rc = hy_fail("%lld of %d samples finished", (long long)r.done, total);
    if (!rc) {
        work w = {0};
        for (int g = 0; g < n_p; g++) add_prefill(&v->cm, &w, P, 0);
        for (int i = 0; i < total; i++) add_decode(&w, M - 1, P);
        char shape[96];
        snprintf(shape, sizeof shape, "%d x %d in x %d samples, %d out", n_p, P, K, M);
        print_throughput(v, "grpo", shape, &r, &w, B, NULL, NULL);
        print_preemptions(&st);
        print_host_sampling(V, 1.0f, B);
        fflush(stdout);
    }
    hy_engine_destroy(e);
    run_free(&r);
    return rc ? hy_fail_prefix("grpo") : 0;
}

typedef struct {
    const bench_env *v;
    int *turn;  // per episode (= sequence id): turns finished
    int n_ep, turns, A;
    hy_gen_params p;
    int32_t *buf;
} agentic_ctx;

// A turn finished: the next turn's tokens (a tool result, the next user message) are appended at
// once, so no sequence is ever left held across a step; the last turn releases the state.
static int agentic_done(run *r, const hy_result *res, void *ctx) {
    agentic_ctx *a = ctx;
    if (res->id < 0 || res->id >= a->n_ep) return hy_fail("internal: result for unknown sequence %lld", (long long)res->id);
    const int ep = (int)res->id, t = ++a->turn[ep];
    if (t == a->turns) {
        r->done++;
        return 0;
    }
    random_tokens(a->buf, a->A, a->v->m->cfg.vocab_size, seed_of(a->v->o->seed, 6, (int64_t)ep * a->turns + t));
    hy_gen_params q = a->p;
    q.seed = seed_of(a->v->o->seed, 5, ep) + (uint64_t)t;
    q.hold = t < a->turns - 1;
    if (hy_engine_append(r->e, ep, a->buf, a->A, &q)) return -1;
    run_requested(r, ep);
    return 0;
}

// Agentic episodes: 8 turns each; a turn appends 256 tokens to the held sequence and generates
// 512 (temperature 1), so the prefix is never recomputed.
static int bench_agentic(const bench_env *v) {
    const hy_model *m = v->m;
    const hy_bench_rollout_opts *o = v->o;
    const int E = scaled(64, o->scale * o->count_scale), U = 8, A = scaled(256, o->scale), G = scaled(512, o->scale);
    const int max_len = U * (A + G), fit = seqs_fitting(m, o->memory_bytes, max_len), B = fit < E ? fit : E;
    char have[32];
    if (B < 1)
        return hy_fail("agentic: a pool budget of %s cannot hold one sequence of %d tokens (give more --memory or a "
                       "smaller --scale)",
                       hy_bytes_text(o->memory_bytes, have, sizeof have), max_len);
    hy_engine *e;
    if (engine_for(m, o, B, max_len, &e)) return hy_fail_prefix("agentic");
    agentic_ctx a;
    memset(&a, 0, sizeof a);
    a.v = v;
    a.turn = hy_calloc((size_t)E, sizeof(int));
    a.n_ep = E;
    a.turns = U;
    a.A = A;
    a.buf = hy_malloc(sizeof(int32_t) * (size_t)A);
    hy_gen_params_default(&a.p);
    a.p.temperature = 1.0f;
    a.p.max_tokens = G;
    a.p.ignore_eos = 1;
    a.p.hold = 1;
    run r;
    run_init(&r, e, "agentic episodes", E, o->progress);
    int rc = 0;
    for (int ep = 0; ep < E && !rc; ep++) {
        random_tokens(a.buf, A, m->cfg.vocab_size, seed_of(o->seed, 4, ep));
        hy_gen_params q = a.p;
        q.seed = seed_of(o->seed, 5, ep);
        const int64_t id = hy_engine_submit(e, a.buf, A, &q);
        if (id != ep) rc = id < 0 ? -1 : hy_fail("internal: episode %d got sequence id %lld", ep, (long long)id);
        else run_requested(&r, id);
    }
    int more = 1;
    while (!rc && more > 0) {
        more = run_step_poll(&r, agentic_done, &a);
        if (more < 0) rc = -1;
    }
    run_progress(&r, 1);
    hy_engine_stats st;
    hy_engine_stats_get(e, &st);
    if (!rc && r.done != E) rc = hy_fail("%lld of %d episodes finished", (long long)r.done, E);
    if (!rc) {
        work w = {0};
        double piece_flops = 0;
        for (int ep = 0; ep < E; ep++)
            for (int u = 0; u < U; u++) {
                // a later turn's piece is the previous turn's last token (not yet fed) + the appended ones
                const double n = u ? A + 1 : A, ctx0 = u ? (double)u * (A + G) - 1 : 0;
                add_prefill(&v->cm, &w, n, ctx0);
                add_decode(&w, G - 1, (double)u * (A + G) + A);
                if (ep == 0) piece_flops += prefill_flops(&v->cm, n, ctx0) / U;
            }
        char shape[96], rate[48], ceil[96];
        snprintf(shape, sizeof shape, "%d episodes x %d turns, +%d in, %d out", E, U, A, G);
        print_throughput(v, "agentic", shape, &r, &w, B, NULL, NULL);
        // a turn's first token comes out of one step that also decodes every other sequence
        const ceiling c = workload_ceiling(&v->cm, &v->k, &w, B);
        const double tf = (c.step.flops + piece_flops) / (v->k.gemm_tflops * 1e12);
        const double tb = c.step.bytes / (v->k.copy_gbs * 1e9), floor_s = tf > tb ? tf : tb;
        const double ttft = r.ttft_n ? r.ttft_sum / r.ttft_n : 0.0;
        snprintf(shape, sizeof shape, "mean of %lld turns", (long long)r.ttft_n);
        snprintf(rate, sizeof rate, "%.0f appended tok/s", ttft > 0 ? A / ttft : 0.0);
        snprintf(ceil, sizeof ceil, "%.3g ms (one step with the turn's piece)", floor_s * 1e3);
        print_row("agentic TTFT", shape, ttft * 1e3, rate, ttft > 0 ? 100.0 * floor_s / ttft : -1, ceil, NULL);
        print_preemptions(&st);
        print_host_sampling(m->cfg.vocab_size, 1.0f, B);
        fflush(stdout);
    }
    free(a.turn);
    free(a.buf);
    hy_engine_destroy(e);
    run_free(&r);
    return rc ? hy_fail_prefix("agentic") : 0;
}

int hy_bench_agreement_run(const hy_model *m, int total, int generated, int chunk, uint64_t seed,
                           hy_bench_agreement *out) {
    memset(out, 0, sizeof *out);
    if (generated < 1 || generated >= total)
        return hy_fail("agreement: %d generated tokens of %d in all (need 1 <= generated < total)", generated, total);
    const int P = total - generated, V = m->cfg.vocab_size, bs = HY_CACHE_BLOCK_DEFAULT;
    hy_engine_config c;
    hy_engine_config_default(&c);
    c.max_seqs = 1;
    c.max_len = total;
    c.prefill_chunk = chunk;
    c.step_tokens = chunk + 1;
    c.swap_bytes = 0;
    // a pool for exactly this sequence, so the scoring forward after it has the memory it needs
    c.memory_bytes = hy_cache_slot_bytes(&m->cfg) +
                     (size_t)((total + bs - 1) / bs + 1) * hy_cache_block_bytes(&m->cfg, m->be->act_bytes, bs) + 4096;
    int32_t *prompt = hy_malloc(sizeof(int32_t) * (size_t)P);
    random_tokens(prompt, P, V, seed);
    hy_gen_params p;
    hy_gen_params_default(&p);
    p.temperature = 1.0f;
    p.seed = seed;
    p.max_tokens = generated;
    p.ignore_eos = 1;
    hy_engine *e;
    if (hy_engine_new(&e, m, &c)) {
        free(prompt);
        return hy_fail_prefix("agreement");
    }
    hy_result r;
    memset(&r, 0, sizeof r);
    double t0 = now_s();
    int rc = hy_engine_submit(e, prompt, P, &p) < 0 || hy_engine_run(e) ? -1 : 0;
    if (!rc && !hy_engine_poll(e, &r)) rc = hy_fail("the engine returned no result");
    out->gen_s = now_s() - t0;
    hy_engine_destroy(e);
    free(prompt);
    if (!rc && r.n != total)
        rc = hy_fail("the sequence has %d tokens, expected %d (finish: %s)", r.n, total, hy_finish_name(r.finish));
    float *score = NULL;
    if (!rc) {
        score = hy_malloc(sizeof(float) * (size_t)(total - 1));
        int32_t cu[2] = {0, total};
        hy_batch b = {r.tokens, cu, total, 1};
        t0 = now_s();
        rc = hy_model_score(m, &b, score);
        out->score_s = now_s() - t0;
    }
    if (!rc) {
        out->total = total;
        out->prompt = P;
        out->generated = r.n - r.turn_start;
        double sum = 0;
        for (int t = r.turn_start; t < r.n && !rc; t++) {
            // score[t − 1] = log p(tokens[t] | tokens[..t−1]) under the full-sequence forward
            const double eng = r.model_logprobs[t], ref = score[t - 1], d = fabs(eng - ref);
            if (!isfinite(eng) || !isfinite(ref)) {
                rc = hy_fail("non-finite logprob at position %d (engine %g, full forward %g)", t, eng, ref);
                break;
            }
            sum += d;
            if (d > out->max_abs || t == r.turn_start) {
                out->max_abs = d;
                out->max_at = t;
            }
        }
        out->mean_abs = sum / out->generated;
    }
    free(score);
    hy_result_free(&r);
    return rc ? hy_fail_prefix("agreement at %d tokens", total) : 0;
}

static int bench_agreement(const bench_env *v) {
    const hy_bench_rollout_opts *o = v->o;
    static const int totals[3] = {1024, 8192, 32768};
    printf("\nagreement: the engine's untempered logprob of each generated token (chunked prefill, recurrent decode, "
           "fp32 GDN state, paged KV) vs hy_model_score over the whole sequence (the learner's path), same backend "
           "and weights\n");
    printf("%-10s %8s %10s %14s %14s %10s %10s %10s\n", "total", "prompt", "generated", "mean |dlogp|", "max |dlogp|",
           "at", "gen ms", "score ms");
    for (int i = 0; i < 3; i++) {
        int total = scaled(totals[i], o->scale);
        if (total < 2) total = 2;
        int gen = total / 4 < 1024 ? total / 4 : 1024;
        if (gen < 1) gen = 1;
        hy_bench_agreement a;
        if (hy_bench_agreement_run(v->m, total, gen, o->chunk, seed_of(o->seed, 7, i), &a)) return -1;
        printf("%-10d %8d %10d %14.3g %14.3g %10d %10.1f %10.1f\n", a.total, a.prompt, a.generated, a.mean_abs,
               a.max_abs, a.max_at, a.gen_s * 1e3, a.score_s * 1e3);
        fflush(stdout);
    }
    return 0;
}

int hy_bench_rollout_run(const hy_model *m, const hy_bench_rollout_opts *o) {
    static const char *const names[5] = {"serving", "grpo", "agentic", "agreement", "all"};
    int which = -1;
    for (int i = 0; i < 5 && o->workload; i++)
        if (!strcmp(o->workload, names[i])) which = i;
    if (which < 0)
        return hy_fail("workload '%s': expected serving, grpo, agentic, agreement or all", o->workload ? o->workload : "");
    if (o->chunk < 1) return hy_fail("prefill chunk must be positive (got %d)", o->chunk);
    bench_env v;
    memset(&v, 0, sizeof v);
    v.m = m;
    v.o = o;
    cost_model_init(&v.cm, m);
    hy_bench_measure_ceilings(m->be, &v.k);
    const hy_config *c = &m->cfg;
    char b[7][32];
    printf("device: %s; model: %s: %s parameters, %s on the device (matmul view + fp32 small tensors, no fp32 "
           "master); C=%d, L=%d (%d GDN), V=%d\n",
           o->device_name ? o->device_name : m->be->name, o->model_name ? o->model_name : "?",
           si((double)m->table.n_params, "", b[0], sizeof b[0]), hy_bytes_text(hy_bench_model_bytes(m), b[1], sizeof b[1]),
           c->hidden_size, c->num_hidden_layers, hy_config_n_gdn_layers(c), c->vocab_size);
    printf("ceilings (measured now, through the backend): device copy %s (read + written); linear op %d^3 %s\n",
           si(v.k.copy_gbs * 1e9, "B/s", b[0], sizeof b[0]), v.k.gemm_n, si(v.k.gemm_tflops * 1e12, "FLOP/s", b[1], sizeof b[1]));
    printf("pool budget %s; prefill chunk %d; scale %g, count scale %g; seed %llu\n",
           hy_bytes_text(o->memory_bytes, b[0], sizeof b[0]), o->chunk, o->scale, o->count_scale,
           (unsigned long long)o->seed);
    printf("ceiling model: prefill = FLOPs / linear rate; a decode step of B sequences = max((weights + K,V of their "
           "contexts + GDN states and conv windows read and written) / copy rate, FLOPs / linear rate); a workload = "
           "its prefills + its decode steps at B, not overlapped, with B its concurrency capped by the sequences of "
           "full length the pool holds; ITL floor = the workload's ceiling time per decode step.\n");
    printf("  per token: %s in matrices (+ %s lm_head per logits row), %s per attended token, %s chunked GDN "
           "(prefill); per decode step: %s of weights, %s of K,V per context token, 2 x %s of GDN state per "
           "sequence\n",
           si(2 * v.cm.matmul_params, "FLOP", b[0], sizeof b[0]), si(2 * v.cm.head_params, "FLOP", b[1], sizeof b[1]),
           si(v.cm.attn_flops_ctx, "FLOP", b[2], sizeof b[2]), si(v.cm.gdn_chunk_flops, "FLOP", b[3], sizeof b[3]),
           si(v.cm.weight_bytes, "B", b[4], sizeof b[4]), hy_bytes_text((size_t)v.cm.kv_bytes_tok, b[5], sizeof b[5]),
           hy_bytes_text(hy_cache_slot_bytes(c), b[6], sizeof b[6]));
    int rc = 0;
    if (which <= 2 || which == 4) print_columns();
    fflush(stdout);
    if (!rc && (which == 0 || which == 4)) rc = bench_serving(&v);
    if (!rc && (which == 1 || which == 4)) rc = bench_grpo(&v);
    if (!rc && (which == 2 || which == 4)) rc = bench_agentic(&v);
    if (!rc && (which == 3 || which == 4)) rc = bench_agreement(&v);
    return rc;
}
