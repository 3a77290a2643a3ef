// The CPU backend: the fp32 reference ops of kernels/cpu behind the hy_backend table.
//
// Activations are fp32, the matmul view of the parameters is the fp32 master arena itself, and
// "arena" memory is a stack of calloc'd blocks released in reverse (mark/release): the CPU path
// runs tiny models and tests, where clarity beats a bump allocator.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/hy_error.h"
#include "../common/parallel.h"
#include "backend.h"
#include "backend_table.h"

typedef struct {
    hy_backend base;
    void **blocks;
    size_t n_blocks, cap_blocks;
} cpu_backend;

static void *push_block(hy_backend *be, size_t bytes) {
    cpu_backend *c = (cpu_backend *)be;
    if (c->n_blocks == c->cap_blocks) {
        c->cap_blocks = c->cap_blocks ? 2 * c->cap_blocks : 256;
        c->blocks = hy_realloc(c->blocks, c->cap_blocks * sizeof *c->blocks);
    }
    void *p = hy_calloc(1, bytes ? bytes : 1);
    c->blocks[c->n_blocks++] = p;
    return p;
}

static hy_act *act_alloc(hy_backend *be, size_t n) { return push_block(be, n * sizeof(float)); }
static float *f32_alloc(hy_backend *be, size_t n) { return push_block(be, n * sizeof(float)); }
static int32_t *i32_upload(hy_backend *be, const int32_t *host, size_t n) {
    int32_t *p = push_block(be, n * sizeof(int32_t));
    memcpy(p, host, n * sizeof(int32_t));
    return p;
}
static size_t mark(hy_backend *be) { return ((cpu_backend *)be)->n_blocks; }
static void release(hy_backend *be, size_t m) {
    cpu_backend *c = (cpu_backend *)be;
    while (c->n_blocks > m) free(c->blocks[--c->n_blocks]);
}
static void act_zero(hy_backend *be, hy_act *x, size_t n) { memset(x, 0, n * sizeof(float)); }
static void f32_zero(hy_backend *be, float *x, size_t n) { memset(x, 0, n * sizeof(float)); }
static void act_copy(hy_backend *be, hy_act *d, const hy_act *s, size_t n) { memmove(d, s, n * sizeof(float)); }
static void f32_copy(hy_backend *be, float *d, const float *s, size_t n) { memmove(d, s, n * sizeof(float)); }
static void f32_copy_rows(hy_backend *be, float *d, const int32_t *d_rows, const float *s, const int32_t *s_rows, int n,
                          size_t per) {
    for (int i = 0; i < n; i++)
        memcpy(d + (size_t)(d_rows ? d_rows[i] : i) * per, s + (size_t)(s_rows ? s_rows[i] : i) * per, per * sizeof(float));
}
static void *alloc_persistent(hy_backend *be, size_t bytes) { return hy_calloc(1, bytes ? bytes : 1); }
static void free_persistent(hy_backend *be, void *p) { free(p); }
static void bytes_to_host(hy_backend *be, void *h, const void *s, size_t n) { memcpy(h, s, n); }
static void bytes_from_host(hy_backend *be, void *d, const void *h, size_t n) { memcpy(d, h, n); }
static void memory_info(hy_backend *be, size_t *free_bytes, size_t *total_bytes) {
    const long page = sysconf(_SC_PAGESIZE);
    *free_bytes = (size_t)sysconf(_SC_AVPHYS_PAGES) * (size_t)page;
    *total_bytes = (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)page;
}
static void synchronize(hy_backend *be) {}
static void destroy(hy_backend *be) {
    release(be, 0);
    free(((cpu_backend *)be)->blocks);
    free(be);
}

static void add(hy_backend *be, hy_act *y, const hy_act *a, const hy_act *b, size_t n) {
    float *yy = y;
    const float *aa = a, *bb = b;
    for (size_t i = 0; i < n; i++) yy[i] = aa[i] + bb[i];
}
static void accumulate(hy_backend *be, hy_act *y, const hy_act *x, size_t n) {
    float *yy = y;
    const float *xx = x;
    for (size_t i = 0; i < n; i++) yy[i] += xx[i];
}
static void copy_columns(hy_backend *be, hy_act *dst, const hy_act *src, int T, int stride, int col, int width) {
    for (int t = 0; t < T; t++)
        memcpy((float *)dst + (size_t)t * width, (const float *)src + (size_t)t * stride + col, sizeof(float) * width);
}
static void accumulate_columns(hy_backend *be, hy_act *dst, const hy_act *src, int T, int stride, int col, int width) {
    for (int t = 0; t < T; t++)
        for (int i = 0; i < width; i++) ((float *)dst)[(size_t)t * stride + col + i] += ((const float *)src)[(size_t)t * width + i];
}

static void embedding_fwd(hy_backend *be, hy_act *out, const int32_t *ids, const void *table, int T, int C) {
    embedding_forward(out, ids, table, T, C);
}
static void embedding_bwd(hy_backend *be, float *dt, const int32_t *ids, const hy_act *dout, int T, int C, int skip) {
    embedding_backward(dt, ids, dout, T, C, skip);
}
static void linear_fwd(hy_backend *be, hy_act *y, const hy_act *x, const void *w, int N, int in, int out) {
    linear_forward(y, x, w, N, in, out);
}
static void linear_fwd_f32(hy_backend *be, float *y, const hy_act *x, const void *w, int N, int in, int out) {
    linear_forward(y, x, w, N, in, out);
}
static void linear_bwd(hy_backend *be, hy_act *dx, float *dw, const hy_act *dy, const hy_act *x, const void *w, int N,
                       int in, int out) {
    linear_backward(dx, dw, dy, x, w, N, in, out);
}
static void rmsnorm_fwd(hy_backend *be, hy_act *y, float *rstd, const hy_act *x, const float *w, int N, int D,
                        float eps) {
    rmsnorm_forward(y, rstd, x, w, N, D, eps);
}
static void rmsnorm_bwd(hy_backend *be, hy_act *dx, float *dw, const hy_act *dy, const hy_act *x, const float *w,
                        const float *rstd, int N, int D) {
    rmsnorm_backward(dx, dw, dy, x, w, rstd, N, D);
}
static void gated_fwd(hy_backend *be, hy_act *y, float *rstd, const hy_act *x, const hy_act *z, const float *w, int N,
                      int D, float eps) {
    gated_rmsnorm_forward(y, rstd, x, z, w, N, D, eps);
}
static void gated_bwd(hy_backend *be, hy_act *dx, hy_act *dz, float *dw, const hy_act *dy, const hy_act *x,
                      const hy_act *z, const float *w, const float *rstd, int N, int D) {
    gated_rmsnorm_backward(dx, dz, dw, dy, x, z, w, rstd, N, D);
}
static void l2_fwd(hy_backend *be, hy_act *y, float *r, const hy_act *x, int N, int D, float eps) {
    l2norm_forward(y, r, x, N, D, eps);
}
static void l2_bwd(hy_backend *be, hy_act *dx, const hy_act *dy, const hy_act *x, const float *r, int N, int D) {
    l2norm_backward(dx, dy, x, r, N, D);
}
static void conv_fwd(hy_backend *be, hy_act *y, float *wout, const hy_act *x, const float *w, const float *win,
                     const int32_t *cu, int n_docs, int T, int Ch, int K) {
    conv1d_silu_forward(y, wout, x, w, win, cu, n_docs, T, Ch, K);
}
// The reference of the pool form: gather the windows, run the plain op, scatter them back.
static void conv_fwd_pool(hy_backend *be, hy_act *y, float *pool, const int32_t *slots, const hy_act *x, const float *w,
                          const int32_t *cu, int n_docs, int T, int Ch, int K) {
    const size_t per = (size_t)Ch * (K - 1);
    float *win = hy_malloc(sizeof(float) * (per * (size_t)n_docs + 1));
    f32_copy_rows(be, win, NULL, pool, slots, n_docs, per);
    conv1d_silu_forward(y, win, x, w, win, cu, n_docs, T, Ch, K);
    f32_copy_rows(be, pool, slots, win, NULL, n_docs, per);
    free(win);
}
static void conv_bwd(hy_backend *be, hy_act *dx, float *dw, const hy_act *dy, const hy_act *x, const float *w,
                     const int32_t *cu, int n_docs, int T, int Ch, int K) {
    conv1d_silu_backward(dx, dw, NULL, dy, x, w, NULL, cu, n_docs, T, Ch, K);
}
static void gates_fwd(hy_backend *be, float *beta, float *g, const hy_act *b, const hy_act *a, const float *A_log,
                      const float *dt_bias, int T, int H, int neg) {
    gdn_gates_forward(beta, g, b, a, A_log, dt_bias, T, H, neg);
}
static void gates_bwd(hy_backend *be, hy_act *db, hy_act *da, float *dA_log, float *ddt, const float *dbeta,
                      const float *dg, const hy_act *b, const hy_act *a, const float *A_log, const float *dt_bias,
                      int T, int H, int neg) {
    gdn_gates_backward(db, da, dA_log, ddt, dbeta, dg, b, a, A_log, dt_bias, T, H, neg);
}
static void chunked_fwd(hy_backend *be, const gdn_shape *s, hy_act *o, float *so, const hy_act *q, const hy_act *k,
                        const hy_act *v, const float *g, const float *beta, const float *si, void **saved) {
    if (saved) *saved = NULL;  // the reference recomputes in its backward
    gdn_chunked_forward(s, o, so, q, k, v, g, beta, si);
}
static void recurrent_fwd(hy_backend *be, const gdn_shape *s, hy_act *o, float *so, const hy_act *q, const hy_act *k,
                          const hy_act *v, const float *g, const float *beta, const float *si, void **saved) {
    gdn_recurrent_forward(s, o, so, q, k, v, g, beta, si);
}
typedef struct {
    const float *logits;
    const int32_t *rows;
    int V;
    const float *temperature;
    const double *u;
    int32_t *token;
    float *logprob, *model_logprob;
} sample_job;

static void sample_one(void *ctx, int j) {
    const sample_job *x = ctx;
    sample_row(x->logits + (size_t)x->rows[j] * x->V, x->V, x->temperature[j], x->u[j], &x->token[j], &x->logprob[j],
               &x->model_logprob[j]);
}

// Rows at once over the host's cores: each draw reads only its row and its u.
static void sample_rows(hy_backend *be, const float *logits, const int32_t *rows, int n, int V, const float *temperature,
                        const double *u, int32_t *token, float *logprob, float *model_logprob) {
    sample_job x = {logits, rows, V, temperature, u, token, logprob, model_logprob};
    hy_parallel_for(n, sample_one, &x);
}

// One document at a time on its pool row: the same per-document arithmetic as one batched call.
static void decode_pool(hy_backend *be, const gdn_shape *s, hy_act *o, float *pool, const int32_t *slots,
                        const hy_act *q, const hy_act *k, const hy_act *v, const float *g, const float *beta) {
    const int32_t cu[2] = {0, 1};
    const size_t per = (size_t)s->H_v * s->Dk * s->Dv, kd = (size_t)s->H_k * s->Dk, vd = (size_t)s->H_v * s->Dv;
    for (int b = 0; b < s->n_docs; b++) {
        gdn_shape one = *s;
        one.T = 1;
        one.n_docs = 1;
        one.cu_seqlens = cu;
        float *st = pool + (size_t)slots[b] * per;
        gdn_recurrent_forward(&one, (float *)o + b * vd, st, (const float *)q + b * kd, (const float *)k + b * kd,
                              (const float *)v + b * vd, g + (size_t)b * s->H_v, beta + (size_t)b * s->H_v, st);
    }
}
static void chunked_bwd(hy_backend *be, const gdn_shape *s, hy_act *dq, hy_act *dk, hy_act *dv, float *dg,
                        float *dbeta, const hy_act *d_o, const hy_act *q, const hy_act *k, const hy_act *v,
                        const float *g, const float *beta, const void *saved) {
    gdn_chunked_backward(s, dq, dk, dv, dg, dbeta, NULL, d_o, NULL, q, k, v, g, beta, NULL);
}
static void rope_fwd(hy_backend *be, hy_act *x, const int32_t *pos, int T, int H, int D, float theta) {
    rope_forward(x, pos, T, H, D, theta);
}
static void rope_bwd(hy_backend *be, hy_act *dx, const int32_t *pos, int T, int H, int D, float theta) {
    rope_backward(dx, pos, T, H, D, theta);
}
static void attn_fwd(hy_backend *be, const attn_shape *s, hy_act *o, float *lse, const hy_act *q, const hy_act *k,
                     const hy_act *v) {
    attention_forward(s, o, lse, q, k, v);
}
static void attn_bwd(hy_backend *be, const attn_shape *s, hy_act *dq, hy_act *dk, hy_act *dv, const hy_act *d_o,
                     const hy_act *q, const hy_act *k, const hy_act *v, const hy_act *o, const float *lse) {
    attention_backward(s, dq, dk, dv, d_o, q, k, v, o, lse);
}
static void kv_write_paged(hy_backend *be, hy_act *pool, const hy_act *kv, const int32_t *rows, int T, int width) {
    kv_paged_write(pool, kv, rows, T, width);
}
static void attn_paged(hy_backend *be, const paged_attn_shape *s, hy_act *o, const hy_act *q, const hy_act *kp,
                       const hy_act *vp) {
    attention_paged_forward(s, o, q, kp, vp);
}
static void swiglu_fwd(hy_backend *be, hy_act *h, const hy_act *g, const hy_act *u, int N, int F) {
    swiglu_forward(h, g, u, N, F);
}
static void swiglu_bwd(hy_backend *be, hy_act *dg, hy_act *du, const hy_act *dh, const hy_act *g, const hy_act *u,
                       int N, int F) {
    swiglu_backward(dg, du, dh, g, u, N, F);
}
static void logp_fwd(hy_backend *be, float *logp, float *lse, const float *logits, const int32_t *t, int N, int V) {
    logprobs_forward(logp, lse, logits, t, N, V);
}
static void logp_bwd(hy_backend *be, hy_act *dl, const float *dlogp, const float *logits, const float *lse,
                     const int32_t *t, int N, int V) {
    logprobs_backward(dl, dlogp, logits, lse, t, N, V);
}
static void adamw(hy_backend *be, float *p, void *mm, float *m, float *v, const float *g, size_t n,
                  const adamw_params *hp, int step, int decay) {
    adamw_step(p, m, v, g, n, hp, step, decay);
}
static double sumsq(hy_backend *be, const float *g, size_t n) { return grad_sumsq(g, n); }
static void scale(hy_backend *be, float *g, size_t n, float coef) { grad_scale(g, n, coef); }
static void to_mm(hy_backend *be, void *mm, const float *p, size_t n) {}
static void f32_to_host(hy_backend *be, float *h, const float *s, size_t n) { memcpy(h, s, n * sizeof(float)); }
static void f32_from_host(hy_backend *be, float *d, const float *h, size_t n) { memcpy(d, h, n * sizeof(float)); }

// Nothing to replay on the CPU: a bracketed step simply runs.
static void replay_begin(hy_backend *be, uint64_t key) {}
static int replay_end(hy_backend *be, int ok) { return HY_REPLAY_EAGER; }
static void replay_reset(hy_backend *be) {}

#define AS_IS(f) f

hy_backend *hy_backend_cpu_new(void) {
    cpu_backend *c = hy_calloc(1, sizeof *c);
    hy_backend *b = &c->base;
    b->device = HY_DEVICE_CPU;
    b->name = "cpu";
    b->act_bytes = sizeof(float);
    HY_BACKEND_BIND_ENTRIES(b, AS_IS);
    return b;
}
