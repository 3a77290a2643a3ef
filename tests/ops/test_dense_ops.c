// Tests for the dense CPU reference ops (embedding, linear, RMSNorm, RoPE, attention, SwiGLU,
// logprobs, AdamW): the `dense_op_tests` table of the op test driver.
//
// Each op gets structured cases first (ones, arange, uniform scores: inputs whose outputs can be
// worked out by hand), then random inputs from the op's real range checked against a naive
// double-precision reference written here, then consistency properties (packed documents equal
// each document alone, GQA equals MHA with repeated KV heads, cached attention equals full
// attention, RoPE's backward undoes its forward). The grad entries compare every input and
// parameter gradient with central finite differences on tiny ragged shapes (op_test.h policy).
// Backward checks start gradient buffers at a non-zero value, so "accumulate, don't overwrite" is
// tested too. AdamW is also checked bit for bit against values recorded from PyTorch.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/hy_error.h"
#include "../../kernels/ops_cpu.h"
#include "op_test.h"

// op_test.h policy: h = 1e-3 on O(1) inputs, pass at relative norm error ≤ 1e-2.
static const double FD_H = 1e-3, FD_TOL = 1e-2;

// ---- scratch buffers: every test frees all of its buffers at once ------------------------------
enum { MAX_BUFS = 64 };
static void *bufs[MAX_BUFS];
static int n_bufs;

static void *buf_bytes(size_t bytes) {
    if (n_bufs == MAX_BUFS) {
        fprintf(stderr, "test_dense_ops: raise MAX_BUFS\n");
        abort();
    }
    return bufs[n_bufs++] = hy_calloc(bytes ? bytes : 1, 1);
}
static float *buf(size_t n) { return buf_bytes(n * sizeof(float)); }
static int32_t *ibuf(size_t n) { return buf_bytes(n * sizeof(int32_t)); }
static double *dbuf(size_t n) { return buf_bytes(n * sizeof(double)); }
static void bufs_free(void) {
    while (n_bufs) free(bufs[--n_bufs]);
}

static float *copy_of(const float *x, size_t n) { return memcpy(buf(n), x, n * sizeof(float)); }
static void fset(float *x, size_t n, float value) {
    for (size_t i = 0; i < n; i++) x[i] = value;
}
static float *normal_buf(hy_rng *r, size_t n, float std) {
    float *x = buf(n);
    fill_normal(r, x, n, std);
    return x;
}
static void add_const(float *x, size_t n, float c) {
    for (size_t i = 0; i < n; i++) x[i] += c;
}

// Gradient buffers in backward checks start at this value, and the reference adds it back: an op
// that overwrites instead of accumulating fails.
static const float GRAD_PREFILL = 0.5f;
static float *grad_buf(size_t n) {
    float *g = buf(n);
    fset(g, n, GRAD_PREFILL);
    return g;
}

// Runs fd_check for one tensor and also requires its analytic gradient to be non-zero.
static int fd_tensor(const char *what, float *x, const float *analytic, size_t n, fd_loss_fn f, void *ctx) {
    return check_nonzero(what, analytic, n) | fd_check(what, x, analytic, n, f, ctx, FD_H, FD_TOL);
}

// =================================================================================================
// embedding
// =================================================================================================

static int test_embedding(void) {
    int fail = 0;
    {  // table[v, c] = 10·v + c: each output value names the row and column it came from
        enum { V = 5, C = 3, T = 4 };
        float *table = buf(V * C), *out = buf(T * C), *want = buf(V * C), *dout = buf(T * C), *dtable = buf(V * C);
        int32_t ids[T] = {2, 0, 4, 2};
        for (int i = 0; i < V * C; i++) table[i] = (float)(10 * (i / C) + i % C);
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) want[t * C + c] = (float)(10 * ids[t] + c);
        embedding_forward(out, ids, table, T, C);
        fail |= check_close("embedding arange forward", out, want, T * C, 0, 0);  // a gather is exact
        fail |= check_nonzero("embedding out", out, T * C);
        // dout = 1: each row's gradient counts its tokens. The first call skips row 4 (padding_idx),
        // the second skips nothing and accumulates on top.
        fset(dout, T * C, 1.0f);
        embedding_backward(dtable, ids, dout, T, C, 4);
        embedding_backward(dtable, ids, dout, T, C, -1);
        const float per_row[V] = {2, 0, 4, 0, 1};
        for (int i = 0; i < V * C; i++) want[i] = per_row[i / C];
        fail |= check_close("embedding counts backward", dtable, want, V * C, 0, 0);  // sums of ones: exact
    }
    {  // random table, ids with repeats (V small against T)
        enum { V = 29, C = 19, T = 41 };
        hy_rng r;
        hy_rng_init(&r, 11);
        float *table = normal_buf(&r, V * C, 1.0f), *dout = normal_buf(&r, T * C, 1.0f);
        float *out = buf(T * C), *dtable = grad_buf(V * C), *want = buf(V * C);
        int32_t *ids = ibuf(T);
        for (int t = 0; t < T; t++) ids[t] = (int32_t)(hy_rng_next(&r) % V);
        embedding_forward(out, ids, table, T, C);
        for (int t = 0; t < T; t++)
            fail |= check_close("embedding random forward", out + t * C, table + ids[t] * C, C, 0, 0);
        int skip = ids[3];
        embedding_backward(dtable, ids, dout, T, C, skip);
        double *ref = dbuf(V * C);
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C && ids[t] != skip; c++) ref[ids[t] * C + c] += dout[t * C + c];
        for (int i = 0; i < V * C; i++) want[i] = (float)(ref[i] + GRAD_PREFILL);
        // fp32 sums of a few O(1) terms against double: a few ulp of values ≤ ~5.
        fail |= check_close("embedding random backward", dtable, want, V * C, 1e-6f, 1e-6f);
        fail |= check_nonzero("embedding dtable", dtable, V * C);
    }
    bufs_free();
    return fail;
}

typedef struct {
    const int32_t *ids;
    float *table, *out;
    const float *proj;
    int T, C;
} embedding_ctx;

static double embedding_loss(void *p) {
    embedding_ctx *c = p;
    embedding_forward(c->out, c->ids, c->table, c->T, c->C);
    return dot_loss(c->out, c->proj, (size_t)c->T * c->C);
}

static int grad_embedding(void) {
    enum { V = 7, C = 4, T = 9 };
    hy_rng r;
    hy_rng_init(&r, 12);
    int32_t ids[T] = {3, 1, 3, 0, 6, 3, 1, 5, 0};  // repeats; row 2 and 4 unused (zero gradient)
    embedding_ctx c = {ids, normal_buf(&r, V * C, 1.0f), buf(T * C), normal_buf(&r, T * C, 1.0f), T, C};
    float *dtable = buf(V * C);
    embedding_backward(dtable, ids, c.proj, T, C, -1);
    int fail = fd_tensor("embedding dtable", c.table, dtable, V * C, embedding_loss, &c);
    bufs_free();
    return fail;
}

// =================================================================================================
// linear
// =================================================================================================

static void linear_ref(double *y, const float *x, const float *w, int N, int in, int out) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < out; o++) {
            double s = 0.0;
            for (int i = 0; i < in; i++) s += (double)x[n * in + i] * w[o * in + i];
            y[n * out + o] = s;
        }
}

static void to_float_plus(float *dst, const double *src, size_t n, float plus) {
    for (size_t i = 0; i < n; i++) dst[i] = (float)(src[i] + plus);
}

static int test_linear(void) {
    int fail = 0;
    {  // x = 1, w[o, i] = 4o + i + 1: y[n, o] = Σ_i (4o + i + 1) = 16o + 10
        enum { N = 3, IN = 4, OUT = 2 };
        float *x = buf(N * IN), *w = buf(OUT * IN), *y = buf(N * OUT), *want = buf(N * IN);
        fset(x, N * IN, 1.0f);
        for (int i = 0; i < OUT * IN; i++) w[i] = (float)(i + 1);
        linear_forward(y, x, w, N, IN, OUT);
        for (int i = 0; i < N * OUT; i++) want[i] = (float)(16 * (i % OUT) + 10);
        fail |= check_close("linear arange forward", y, want, N * OUT, 0, 0);  // small integers: exact
        fail |= check_nonzero("linear y", y, N * OUT);
        // dy = 1: dx[n, i] = Σ_o w[o, i] = 2i + 6, dw[o, i] = Σ_n x[n, i] = 3
        float *dy = buf(N * OUT), *dx = buf(N * IN), *dw = buf(OUT * IN);
        fset(dy, N * OUT, 1.0f);
        linear_backward(dx, dw, dy, x, w, N, IN, OUT);
        for (int i = 0; i < N * IN; i++) want[i] = (float)(2 * (i % IN) + 6);
        fail |= check_close("linear arange dx", dx, want, N * IN, 0, 0);
        fset(want, OUT * IN, 3.0f);
        fail |= check_close("linear arange dw", dw, want, OUT * IN, 0, 0);
    }
    {  // random; N spans three row blocks, in and out are not multiples of the 8 dot-product lanes
        enum { N = 70, IN = 37, OUT = 45 };
        hy_rng r;
        hy_rng_init(&r, 21);
        float *x = normal_buf(&r, N * IN, 1.0f), *w = normal_buf(&r, OUT * IN, 1.0f / sqrtf(IN));
        float *dy = normal_buf(&r, N * OUT, 1.0f), *y = buf(N * OUT), *want = buf(N * OUT);
        double *ref = dbuf(N * OUT);
        linear_forward(y, x, w, N, IN, OUT);
        linear_ref(ref, x, w, N, IN, OUT);
        to_float_plus(want, ref, N * OUT, 0.0f);
        // |y| ~ 1 from 37 products: fp32 accumulation error ~ 37 · 6e-8 ≈ 2e-6 worst case; 1e-5 slack.
        fail |= check_close("linear random forward", y, want, N * OUT, 1e-5f, 1e-5f);
        fail |= check_nonzero("linear y", y, N * OUT);

        float *dx = grad_buf(N * IN), *dw = grad_buf(OUT * IN), *want_dx = buf(N * IN), *want_dw = buf(OUT * IN);
        double *rdx = dbuf(N * IN), *rdw = dbuf(OUT * IN);
        linear_backward(dx, dw, dy, x, w, N, IN, OUT);
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OUT; o++)
                for (int i = 0; i < IN; i++) {
                    rdx[n * IN + i] += (double)dy[n * OUT + o] * w[o * IN + i];
                    rdw[o * IN + i] += (double)dy[n * OUT + o] * x[n * IN + i];
                }
        to_float_plus(want_dx, rdx, N * IN, GRAD_PREFILL);
        to_float_plus(want_dw, rdw, OUT * IN, GRAD_PREFILL);
        // dx sums 45 terms of ~0.2, dw 70 terms of ~1 (|dw| ~ 8): same fp32 accumulation bound.
        fail |= check_close("linear random dx", dx, want_dx, N * IN, 1e-5f, 1e-5f);
        fail |= check_close("linear random dw", dw, want_dw, OUT * IN, 1e-5f, 1e-5f);
        // NULL gradients are skipped: dw alone must equal the dw above.
        float *dw_only = grad_buf(OUT * IN);
        linear_backward(NULL, dw_only, dy, x, w, N, IN, OUT);
        fail |= check_close("linear dw without dx", dw_only, dw, OUT * IN, 0, 0);
    }
    bufs_free();
    return fail;
}

typedef struct {
    float *x, *w, *y;
    const float *proj;
    int N, in, out;
} linear_ctx;

static double linear_loss(void *p) {
    linear_ctx *c = p;
    linear_forward(c->y, c->x, c->w, c->N, c->in, c->out);
    return dot_loss(c->y, c->proj, (size_t)c->N * c->out);
}

static int grad_linear(void) {
    enum { N = 5, IN = 11, OUT = 3 };
    hy_rng r;
    hy_rng_init(&r, 22);
    linear_ctx c = {normal_buf(&r, N * IN, 1.0f), normal_buf(&r, OUT * IN, 0.3f), buf(N * OUT),
                    normal_buf(&r, N * OUT, 1.0f), N, IN, OUT};
    float *dx = buf(N * IN), *dw = buf(OUT * IN);
    linear_backward(dx, dw, c.proj, c.x, c.w, N, IN, OUT);
    int fail = fd_tensor("linear dx", c.x, dx, N * IN, linear_loss, &c);
    fail |= fd_tensor("linear dw", c.w, dw, OUT * IN, linear_loss, &c);
    bufs_free();
    return fail;
}

// =================================================================================================
// RMSNorm
// =================================================================================================

static int test_rmsnorm(void) {
    int fail = 0;
    {  // rows (1,−1,1,−1) and (2,2,2,2), eps 0: rstd = 1 and 1/2 exactly, y = w·sign pattern
        enum { N = 2, D = 4 };
        const float x[N * D] = {1, -1, 1, -1, 2, 2, 2, 2}, w[D] = {1, 2, 3, 4};
        const float want_y[N * D] = {1, -2, 3, -4, 1, 2, 3, 4}, want_rstd[N] = {1, 0.5f};
        float y[N * D], rstd[N];
        rmsnorm_forward(y, rstd, x, w, N, D, 0.0f);
        fail |= check_close("rmsnorm structured y", y, want_y, N * D, 0, 0);  // exact in fp32
        fail |= check_close("rmsnorm structured rstd", rstd, want_rstd, N, 0, 0);
    }
    {  // where eps matters: a row of 1e-3 with eps 1e-6 has rstd = 1/sqrt(2e-6), so y = w/sqrt(2);
       // an all-zero row has rstd = 1/sqrt(eps) = 1000 and y = 0
        enum { N = 2, D = 4 };
        const float x[N * D] = {1e-3f, 1e-3f, 1e-3f, 1e-3f, 0, 0, 0, 0}, w[D] = {1, 2, 3, 4};
        float y[N * D], rstd[N], want_y[N * D] = {0};
        const float want_rstd[N] = {(float)(1.0 / sqrt(2e-6)), 1000.0f};
        for (int i = 0; i < D; i++) want_y[i] = (float)(w[i] / sqrt(2.0));
        rmsnorm_forward(y, rstd, x, w, N, D, 1e-6f);
        // 1e-3 and 1e-6 are inexact in fp32; a few roundings of them: ~3e-7 relative.
        fail |= check_close("rmsnorm eps-dominated y", y, want_y, N * D, 0, 1e-6f);
        fail |= check_close("rmsnorm eps-dominated rstd", rstd, want_rstd, N, 0, 1e-6f);
    }
    {  // random residual-stream rows (std 5), weights near 1
        enum { N = 6, D = 300 };
        const float eps = 1e-6f;
        hy_rng r;
        hy_rng_init(&r, 31);
        float *x = normal_buf(&r, N * D, 5.0f), *w = normal_buf(&r, D, 0.1f), *dy = normal_buf(&r, N * D, 1.0f);
        add_const(w, D, 1.0f);
        float *y = buf(N * D), *rstd = buf(N), *want = buf(N * D);
        float *dx = grad_buf(N * D), *dw = grad_buf(D), *want_dx = buf(N * D), *want_dw = buf(D);
        double *rdw = dbuf(D);
        rmsnorm_forward(y, rstd, x, w, N, D, eps);
        rmsnorm_backward(dx, dw, dy, x, w, rstd, N, D);
        for (int n = 0; n < N; n++) {
            const float *xr = x + n * D, *gr = dy + n * D;
            double ss = 0.0, dot = 0.0;
            for (int i = 0; i < D; i++) ss += (double)xr[i] * xr[i];
            double rs = 1.0 / sqrt(ss / D + eps);
            for (int i = 0; i < D; i++) {
                want[n * D + i] = (float)(w[i] * xr[i] * rs);
                dot += (double)gr[i] * w[i] * xr[i];
                rdw[i] += (double)gr[i] * xr[i] * rs;
            }
            for (int i = 0; i < D; i++)
                want_dx[n * D + i] = (float)(rs * w[i] * gr[i] - rs * rs * rs / D * dot * xr[i] + GRAD_PREFILL);
        }
        to_float_plus(want_dw, rdw, D, GRAD_PREFILL);
        // A handful of fp32 roundings per element on O(1) outputs: ~5e-7; 2e-6 leaves room.
        fail |= check_close("rmsnorm random y", y, want, N * D, 2e-6f, 2e-6f);
        fail |= check_close("rmsnorm random dx", dx, want_dx, N * D, 2e-6f, 2e-6f);
        // dw sums 6 rows of ~1: same bound.
        fail |= check_close("rmsnorm random dw", dw, want_dw, D, 2e-6f, 2e-6f);
        fail |= check_nonzero("rmsnorm y", y, N * D) | check_nonzero("rmsnorm dx", dx, N * D);
    }
    bufs_free();
    return fail;
}

typedef struct {
    float *x, *w, *y, *rstd;
    const float *proj;
    int N, D;
    float eps;
} rmsnorm_ctx;

static double rmsnorm_loss(void *p) {
    rmsnorm_ctx *c = p;
    rmsnorm_forward(c->y, c->rstd, c->x, c->w, c->N, c->D, c->eps);
    return dot_loss(c->y, c->proj, (size_t)c->N * c->D);
}

static int grad_rmsnorm(void) {
    enum { N = 3, D = 7 };
    hy_rng r;
    hy_rng_init(&r, 32);
    rmsnorm_ctx c = {normal_buf(&r, N * D, 1.0f), normal_buf(&r, D, 0.2f), buf(N * D), buf(N),
                     normal_buf(&r, N * D, 1.0f), N, D, 1e-5f};
    add_const(c.w, D, 1.0f);
    float *dx = buf(N * D), *dw = buf(D);
    rmsnorm_loss(&c);
    rmsnorm_backward(dx, dw, c.proj, c.x, c.w, c.rstd, N, D);
    int fail = fd_tensor("rmsnorm dx", c.x, dx, N * D, rmsnorm_loss, &c);
    fail |= fd_tensor("rmsnorm dw", c.w, dw, D, rmsnorm_loss, &c);
    bufs_free();
    return fail;
}

// =================================================================================================
// RoPE
// =================================================================================================

// The rotation with HF's fp32 angle (the spec), everything after the angle in double.
static void rope_ref(float *out, const float *x, const int32_t *pos, int T, int H, int D, float theta) {
    int half = D / 2;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            float angle = (float)pos[t] * (1.0f / powf(theta, (float)(2 * i) / (float)D));
            double c = cos(angle), s = sin(angle);
            for (int h = 0; h < H; h++) {
                size_t a = ((size_t)t * H + h) * D + i;
                out[a] = (float)(x[a] * c - x[a + half] * s);
                out[a + half] = (float)(x[a + half] * c + x[a] * s);
            }
        }
}

static int test_rope(void) {
    int fail = 0;
    hy_rng r;
    hy_rng_init(&r, 41);
    {  // position 0 is the identity, exactly (cos 0 = 1, sin 0 = 0)
        enum { T = 3, H = 2, D = 8 };
        const int32_t pos[T] = {0, 0, 0};
        float *x = normal_buf(&r, T * H * D, 1.0f), *x0 = copy_of(x, T * H * D);
        rope_forward(x, pos, T, H, D, 10000.0f);
        fail |= check_close("rope position 0", x, x0, T * H * D, 0, 0);
    }
    {  // D = 2: inv_freq = 1, so (1, 0) at position p becomes (cos p, sin p)
        enum { T = 3 };
        const int32_t pos[T] = {1, 2, 3};
        float x[2 * T] = {1, 0, 1, 0, 1, 0}, want[2 * T];
        for (int t = 0; t < T; t++) {
            want[2 * t] = (float)cos(pos[t]);
            want[2 * t + 1] = (float)sin(pos[t]);
        }
        rope_forward(x, pos, T, 1, 2, 10000.0f);
        // cosf/sinf of small exact integers: ≤ 1 ulp (6e-8); 1e-6 leaves room.
        fail |= check_close("rope D=2 unit vector", x, want, 2 * T, 1e-6f, 0);
    }
    {  // D = 4, theta 1e4: inv_freq = (1, 0.01); (1, 1, 0, 0) at position 5 → (cos 5, cos .05, sin 5, sin .05)
        const int32_t pos[1] = {5};
        float x[4] = {1, 1, 0, 0};
        const float want[4] = {(float)cos(5.0), (float)cos(0.05), (float)sin(5.0), (float)sin(0.05)};
        rope_forward(x, pos, 1, 1, 4, 10000.0f);
        // 0.01 is inexact in fp32 (angle off by ~1e-10): far under 1e-6.
        fail |= check_close("rope D=4 two frequencies", x, want, 4, 1e-6f, 0);
    }
    {  // random heads at positions across the model's 64k range, theta of the RoPE checkpoints
        enum { T = 13, H = 3, D = 16 };
        int32_t pos[T];
        for (int t = 0; t < T; t++) pos[t] = (int32_t)(hy_rng_next(&r) % 65536);
        float *x = normal_buf(&r, T * H * D, 1.0f), *x0 = copy_of(x, T * H * D), *want = buf(T * H * D);
        rope_ref(want, x0, pos, T, H, D, 500000.0f);
        rope_forward(x, pos, T, H, D, 500000.0f);
        // Same fp32 angle; cosf/sinf vs double cos/sin of it (≤ 1 ulp) plus the products: ~3e-7.
        fail |= check_close("rope random forward", x, want, T * H * D, 1e-6f, 1e-6f);
        fail |= check_nonzero("rope x", x, T * H * D);
        // backward is the transpose, so backward(forward(x)) = x. cos² + sin² = 1 to ~1 ulp and two
        // rotations of O(1) values: ~4e-7.
        rope_backward(x, pos, T, H, D, 500000.0f);
        fail |= check_close("rope backward∘forward", x, x0, T * H * D, 1e-6f, 1e-6f);
    }
    bufs_free();
    return fail;
}

typedef struct {
    const float *x;
    float *work;
    const float *proj;
    const int32_t *pos;
    int T, H, D;
    float theta;
} rope_ctx;

static double rope_loss(void *p) {
    rope_ctx *c = p;
    size_t n = (size_t)c->T * c->H * c->D;
    memcpy(c->work, c->x, n * sizeof(float));
    rope_forward(c->work, c->pos, c->T, c->H, c->D, c->theta);
    return dot_loss(c->work, c->proj, n);
}

static int grad_rope(void) {
    enum { T = 5, H = 2, D = 6 };
    hy_rng r;
    hy_rng_init(&r, 42);
    const int32_t pos[T] = {3, 0, 7, 100, 1};  // unsorted, as in packed documents
    float *x = normal_buf(&r, T * H * D, 1.0f);
    rope_ctx c = {x, buf(T * H * D), normal_buf(&r, T * H * D, 1.0f), pos, T, H, D, 10000.0f};
    float *dx = copy_of(c.proj, T * H * D);  // rope_backward transforms in place
    rope_backward(dx, pos, T, H, D, c.theta);
    int fail = fd_tensor("rope dx", x, dx, T * H * D, rope_loss, &c);
    bufs_free();
    return fail;
}

// =================================================================================================
// attention
// =================================================================================================

// Naive attention in double, independent of attention.c: full score rows, explicit softmax.
static void attention_ref(const attn_shape *s, float *o, float *lse, const float *q, const float *k,
                          const float *v) {
    int H = s->H, Hkv = s->H_kv, D = s->D;
    double *p = dbuf(s->T);
    for (int d = 0; d < s->n_docs; d++)
        for (int t = s->cu_seqlens[d]; t < s->cu_seqlens[d + 1]; t++)
            for (int h = 0; h < H; h++) {
                const float *qi = q + ((size_t)t * H + h) * D;
                int kh = h / (H / Hkv);
                double m = -INFINITY, sum = 0.0;
                for (int j = s->cu_seqlens[d]; j <= t; j++) {
                    double sc = 0.0;
                    for (int e = 0; e < D; e++) sc += (double)qi[e] * k[((size_t)j * Hkv + kh) * D + e];
                    p[j] = sc * s->scale;
                    m = fmax(m, p[j]);
                }
                for (int j = s->cu_seqlens[d]; j <= t; j++) sum += exp(p[j] - m);
                for (int e = 0; e < D; e++) {
                    double acc = 0.0;
                    for (int j = s->cu_seqlens[d]; j <= t; j++)
                        acc += exp(p[j] - m) / sum * v[((size_t)j * Hkv + kh) * D + e];
                    o[((size_t)t * H + h) * D + e] = (float)acc;
                }
                lse[(size_t)t * H + h] = (float)(m + log(sum));
            }
}

// Runs forward then backward with d_o, gradients starting at zero.
static void attention_fwd_bwd(const attn_shape *s, float *o, float *lse, float *dq, float *dk, float *dv,
                              const float *d_o, const float *q, const float *k, const float *v) {
    attention_forward(s, o, lse, q, k, v);
    attention_backward(s, dq, dk, dv, d_o, q, k, v, o, lse);
}

static int test_attention(void) {
    int fail = 0;
    hy_rng r;
    hy_rng_init(&r, 51);
    {  // q = k = 1: every score is equal, so o_t is the plain mean of v_0..v_t. With v_t = t that is
       // t/2; the scores are scale·D = 2, so lse_t = 2 + log(t + 1).
        enum { T = 6, H = 2, HKV = 1, D = 4 };
        const int32_t cu[2] = {0, T};
        attn_shape s = {T, 1, cu, H, HKV, D, 0.5f};
        float *q = buf(T * H * D), *k = buf(T * HKV * D), *v = buf(T * HKV * D);
        float *o = buf(T * H * D), *lse = buf(T * H), *want_o = buf(T * H * D), *want_lse = buf(T * H);
        fset(q, T * H * D, 1.0f);
        fset(k, T * HKV * D, 1.0f);
        for (int i = 0; i < T * HKV * D; i++) v[i] = (float)(i / (HKV * D));
        for (int i = 0; i < T * H * D; i++) want_o[i] = (float)(i / (H * D)) / 2.0f;
        for (int i = 0; i < T * H; i++) want_lse[i] = (float)(2.0 + log(i / H + 1.0));
        attention_forward(&s, o, lse, q, k, v);
        // Means of ≤ 6 small integers with an fp32 reciprocal: a few ulp of values ≤ 2.5.
        fail |= check_close("attention uniform o", o, want_o, T * H * D, 1e-6f, 1e-6f);
        fail |= check_close("attention uniform lse", lse, want_lse, T * H, 1e-6f, 1e-6f);
    }
    // Random packed batch: three documents, one of length 1; GQA with 2 query heads per KV head.
    enum { T = 19, H = 4, HKV = 2, D = 8, NDOC = 3 };
    const int32_t cu[NDOC + 1] = {0, 7, 8, T};
    attn_shape s = {T, NDOC, cu, H, HKV, D, 1.0f / sqrtf(D)};
    const size_t nq = T * H * D, nkv = T * HKV * D;
    float *q = normal_buf(&r, nq, 1.0f), *k = normal_buf(&r, nkv, 1.0f), *v = normal_buf(&r, nkv, 1.0f);
    float *d_o = normal_buf(&r, nq, 1.0f);
    float *o = buf(nq), *lse = buf(T * H), *want_o = buf(nq), *want_lse = buf(T * H);
    float *dq = buf(nq), *dk = buf(nkv), *dv = buf(nkv);
    attention_fwd_bwd(&s, o, lse, dq, dk, dv, d_o, q, k, v);
    attention_ref(&s, want_o, want_lse, q, k, v);
    // fp32 dot products of 8 terms and softmax sums of ≤ 11 terms on O(1) values: ~1e-6.
    fail |= check_close("attention random o", o, want_o, nq, 2e-6f, 1e-5f);
    fail |= check_close("attention random lse", lse, want_lse, T * H, 2e-6f, 1e-5f);
    fail |= check_nonzero("attention o", o, nq) | check_nonzero("attention dq", dq, nq);
    fail |= check_nonzero("attention dk", dk, nkv) | check_nonzero("attention dv", dv, nkv);
    {  // each document run alone gives the same rows, bit for bit (no information crosses a boundary)
        for (int d = 0; d < NDOC; d++) {
            int t0 = cu[d], len = cu[d + 1] - cu[d];
            const int32_t cu1[2] = {0, len};
            attn_shape s1 = {len, 1, cu1, H, HKV, D, s.scale};
            float *o1 = buf(len * H * D), *l1 = buf(len * H);
            float *dq1 = buf(len * H * D), *dk1 = buf(len * HKV * D), *dv1 = buf(len * HKV * D);
            attention_fwd_bwd(&s1, o1, l1, dq1, dk1, dv1, d_o + t0 * H * D, q + t0 * H * D, k + t0 * HKV * D,
                              v + t0 * HKV * D);
            fail |= check_close("attention doc alone o", o1, o + t0 * H * D, len * H * D, 0, 0);
            fail |= check_close("attention doc alone lse", l1, lse + t0 * H, len * H, 0, 0);
            fail |= check_close("attention doc alone dq", dq1, dq + t0 * H * D, len * H * D, 0, 0);
            fail |= check_close("attention doc alone dk", dk1, dk + t0 * HKV * D, len * HKV * D, 0, 0);
            fail |= check_close("attention doc alone dv", dv1, dv + t0 * HKV * D, len * HKV * D, 0, 0);
        }
    }
    {  // GQA equals MHA on KV heads repeated per group (repeat_kv); its dk, dv are the group sums
        const int group = H / HKV;
        attn_shape sm = s;
        sm.H_kv = H;
        float *kr = buf(nq), *vr = buf(nq), *om = buf(nq), *lm = buf(T * H);
        float *dqm = buf(nq), *dkm = buf(nq), *dvm = buf(nq), *dk_sum = buf(nkv), *dv_sum = buf(nkv);
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++)
                for (int e = 0; e < D; e++) {
                    kr[(t * H + h) * D + e] = k[(t * HKV + h / group) * D + e];
                    vr[(t * H + h) * D + e] = v[(t * HKV + h / group) * D + e];
                }
        attention_fwd_bwd(&sm, om, lm, dqm, dkm, dvm, d_o, q, kr, vr);
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++)
                for (int e = 0; e < D; e++) {
                    dk_sum[(t * HKV + h / group) * D + e] += dkm[(t * H + h) * D + e];
                    dv_sum[(t * HKV + h / group) * D + e] += dvm[(t * H + h) * D + e];
                }
        fail |= check_close("attention GQA vs MHA o", o, om, nq, 0, 0);  // identical arithmetic
        fail |= check_close("attention GQA vs MHA lse", lse, lm, T * H, 0, 0);
        fail |= check_close("attention GQA vs MHA dq", dq, dqm, nq, 0, 0);
        // GQA accumulates the group's heads in another order than the sum here: a few ulp of O(1).
        fail |= check_close("attention GQA vs MHA dk", dk, dk_sum, nkv, 1e-6f, 1e-6f);
        fail |= check_close("attention GQA vs MHA dv", dv, dv_sum, nkv, 1e-6f, 1e-6f);
    }
    {  // sharp scores (q, k std 6: scores in the hundreds) stay finite, softmax near one-hot
        float *qs = normal_buf(&r, nq, 6.0f), *ks = normal_buf(&r, nkv, 6.0f);
        attention_forward(&s, o, lse, qs, ks, v);
        attention_ref(&s, want_o, want_lse, qs, ks, v);
        // Scores ~300 carry fp32 error up to ~ulp(300) = 3e-5 absolute, which moves p by as much
        // relative; lse ~300 is also off by up to that much absolute.
        fail |= check_close("attention sharp o", o, want_o, nq, 3e-5f, 3e-5f);
        fail |= check_close("attention sharp lse", lse, want_lse, T * H, 3e-5f, 1e-7f);
    }
    bufs_free();
    return fail;
}

static int test_attention_cached(void) {
    int fail = 0;
    hy_rng r;
    hy_rng_init(&r, 52);
    enum { T = 13, H = 4, D = 8 };
    for (int HKV = 1; HKV <= 2; HKV++) {  // MQA and GQA
        const int32_t cu[2] = {0, T};
        attn_shape s = {T, 1, cu, H, HKV, D, 1.0f / sqrtf(D)};
        const size_t row_q = H * D, row_kv = (size_t)HKV * D;
        float *q = normal_buf(&r, T * row_q, 1.0f), *k = normal_buf(&r, T * row_kv, 1.0f);
        float *v = normal_buf(&r, T * row_kv, 1.0f);
        float *o = buf(T * row_q), *lse = buf(T * H), *want_o = buf(T * row_q), *want_lse = buf(T * H);
        attention_forward(&s, o, lse, q, k, v);
        attention_ref(&s, want_o, want_lse, q, k, v);
        // Same bound as the random full-attention check.
        fail |= check_close("attention_cached: full vs reference", o, want_o, T * row_q, 2e-6f, 1e-5f);
        // Prefill of 5, continuation of 7, one decode step: each call sees a cache of exactly p0 + Tq
        // entries (copied to a buffer of that size, so reading past it trips ASan).
        const int splits[4] = {0, 5, 12, T};
        for (int c = 0; c < 3; c++) {
            int p0 = splits[c], Tq = splits[c + 1] - splits[c];
            float *kc = copy_of(k, (p0 + Tq) * row_kv), *vc = copy_of(v, (p0 + Tq) * row_kv);
            float *oc = buf(Tq * row_q);
            attention_cached_forward(oc, q + p0 * row_q, kc, vc, Tq, p0, H, HKV, D, s.scale);
            // The same computation over the same keys; slack for a reordering implementation.
            fail |= check_close("attention_cached vs full rows", oc, o + p0 * row_q, Tq * row_q, 1e-6f, 1e-6f);
            fail |= check_nonzero("attention_cached o", oc, Tq * row_q);
        }
        float *oall = buf(T * row_q);  // the whole sequence as one prefill
        attention_cached_forward(oall, q, k, v, T, 0, H, HKV, D, s.scale);
        fail |= check_close("attention_cached one prefill", oall, o, T * row_q, 1e-6f, 1e-6f);
    }
    bufs_free();
    return fail;
}

typedef struct {
    const attn_shape *s;
    float *q, *k, *v, *o, *lse;
    const float *proj;
} attention_ctx;

static double attention_loss(void *p) {
    attention_ctx *c = p;
    attention_forward(c->s, c->o, c->lse, c->q, c->k, c->v);
    return dot_loss(c->o, c->proj, (size_t)c->s->T * c->s->H * c->s->D);
}

static int grad_attention_case(hy_rng *r, int T, int n_docs, const int32_t *cu, int H, int Hkv, int D) {
    attn_shape s = {T, n_docs, cu, H, Hkv, D, 1.0f / sqrtf((float)D)};
    size_t nq = (size_t)T * H * D, nkv = (size_t)T * Hkv * D;
    attention_ctx c = {&s,     normal_buf(r, nq, 1.0f), normal_buf(r, nkv, 1.0f), normal_buf(r, nkv, 1.0f),
                       buf(nq), buf((size_t)T * H),     normal_buf(r, nq, 1.0f)};
    float *dq = buf(nq), *dk = buf(nkv), *dv = buf(nkv);
    attention_fwd_bwd(&s, c.o, c.lse, dq, dk, dv, c.proj, c.q, c.k, c.v);
    int fail = fd_tensor("attention dq", c.q, dq, nq, attention_loss, &c);
    fail |= fd_tensor("attention dk", c.k, dk, nkv, attention_loss, &c);
    fail |= fd_tensor("attention dv", c.v, dv, nkv, attention_loss, &c);
    return fail;
}

static int grad_attention(void) {
    hy_rng r;
    hy_rng_init(&r, 53);
    const int32_t cu3[4] = {0, 4, 5, 11};  // three documents, one of length 1
    const int32_t cu2[3] = {0, 3, 7};
    int fail = grad_attention_case(&r, 11, 3, cu3, 4, 2, 5);  // GQA, groups of 2
    fail |= grad_attention_case(&r, 7, 2, cu2, 3, 1, 4);      // MQA, odd head count
    bufs_free();
    return fail;
}

// =================================================================================================
// SwiGLU
// =================================================================================================

static int test_swiglu(void) {
    int fail = 0;
    {  // silu at hand-picked points: silu(1) = 1/(1+e⁻¹), silu(−1) = −1/(1+e), silu(2) = 2/(1+e⁻²);
       // silu(−30)·2 ≈ −60·e⁻³⁰ (no overflow trouble), silu(30)·0.5 = 15 to fp32 precision.
        enum { N = 1, F = 6 };
        const float gate[F] = {0, 1, -1, 2, -30, 30}, up[F] = {1, 1, 1, 1, 2, 0.5f};
        const float want[F] = {0, 0.7310585786f, -0.2689414214f, 1.7615941560f, -5.6145738e-12f, 15.0f};
        float h[F];
        swiglu_forward(h, gate, up, N, F);
        // Values good to 10 digits; fp32 computation is within 2 ulp: 3e-7 relative.
        fail |= check_close("swiglu hand values", h, want, F, 0, 3e-7f);
    }
    {  // random pre-activations (std 2, as gate_proj outputs), backward against the double formula
        enum { N = 4, F = 37 };
        hy_rng r;
        hy_rng_init(&r, 61);
        float *gate = normal_buf(&r, N * F, 2.0f), *up = normal_buf(&r, N * F, 1.0f), *dh = normal_buf(&r, N * F, 1.0f);
        float *h = buf(N * F), *dgate = grad_buf(N * F), *dup = grad_buf(N * F);
        float *want = buf(N * F), *want_dg = buf(N * F), *want_du = buf(N * F);
        for (int i = 0; i < N * F; i++) {
            double g = gate[i], sg = 1.0 / (1.0 + exp(-g));
            want[i] = (float)(g * sg * up[i]);
            want_dg[i] = (float)(dh[i] * up[i] * sg * (1.0 + g * (1.0 - sg)) + GRAD_PREFILL);
            want_du[i] = (float)(dh[i] * g * sg + GRAD_PREFILL);
        }
        swiglu_forward(h, gate, up, N, F);
        swiglu_backward(dgate, dup, dh, gate, up, N, F);
        // expf plus ~4 roundings on O(1) values: a few ulp; 1e-6 abs + rel leaves room.
        fail |= check_close("swiglu random h", h, want, N * F, 1e-6f, 1e-6f);
        fail |= check_close("swiglu random dgate", dgate, want_dg, N * F, 1e-6f, 1e-6f);
        fail |= check_close("swiglu random dup", dup, want_du, N * F, 1e-6f, 1e-6f);
        fail |= check_nonzero("swiglu h", h, N * F);
    }
    bufs_free();
    return fail;
}

typedef struct {
    float *gate, *up, *h;
    const float *proj;
    int N, F;
} swiglu_ctx;

static double swiglu_loss(void *p) {
    swiglu_ctx *c = p;
    swiglu_forward(c->h, c->gate, c->up, c->N, c->F);
    return dot_loss(c->h, c->proj, (size_t)c->N * c->F);
}

static int grad_swiglu(void) {
    enum { N = 3, F = 5 };
    hy_rng r;
    hy_rng_init(&r, 62);
    swiglu_ctx c = {normal_buf(&r, N * F, 2.0f), normal_buf(&r, N * F, 1.0f), buf(N * F),
                    normal_buf(&r, N * F, 1.0f), N, F};
    float *dgate = buf(N * F), *dup = buf(N * F);
    swiglu_backward(dgate, dup, c.proj, c.gate, c.up, N, F);
    int fail = fd_tensor("swiglu dgate", c.gate, dgate, N * F, swiglu_loss, &c);
    fail |= fd_tensor("swiglu dup", c.up, dup, N * F, swiglu_loss, &c);
    bufs_free();
    return fail;
}

// =================================================================================================
// logprobs
// =================================================================================================

// log-softmax reference in double: lse and logp (0 without a target) of each row.
static void logprobs_ref(float *logp, float *lse, const float *logits, const int32_t *targets, int N, int V) {
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        double m = -INFINITY, sum = 0.0;
        for (int i = 0; i < V; i++) m = fmax(m, x[i]);
        for (int i = 0; i < V; i++) sum += exp(x[i] - m);
        double l = m + log(sum);
        lse[n] = (float)l;
        logp[n] = targets[n] < 0 ? 0.0f : (float)(x[targets[n]] - l);
    }
}

static int test_logprobs(void) {
    int fail = 0;
    {  // row 0: all zeros → lse = ln 8, logp = −ln 8; row 1: the same without a target → logp 0;
       // row 2: logits 0..7, target 7 → lse = 7 + ln Σ_k e^−k = 7 + ln((1 − e⁻⁸)/(1 − e⁻¹))
        enum { N = 3, V = 8 };
        float logits[N * V] = {0};
        for (int i = 0; i < V; i++) logits[2 * V + i] = (float)i;
        const int32_t targets[N] = {3, -1, 7};
        const double lse2 = 7.0 + log((1.0 - exp(-8.0)) / (1.0 - exp(-1.0)));
        const float want_lse[N] = {(float)log(8.0), (float)log(8.0), (float)lse2};
        const float want_logp[N] = {(float)-log(8.0), 0.0f, (float)(7.0 - lse2)};
        float logp[N], lse[N];
        logprobs_forward(logp, lse, logits, targets, N, V);
        // fp32 exponentials summed in double: within 2 ulp of values ~2..8.
        fail |= check_close("logprobs structured lse", lse, want_lse, N, 0, 3e-7f);
        fail |= check_close("logprobs structured logp", logp, want_logp, N, 1e-6f, 3e-7f);
        // dlogp = 1: row 0 gets onehot(3) − 1/8, row 1 (no target) nothing, row 2 onehot(7) − softmax.
        float dlogits[N * V], want[N * V];
        const float dlogp[N] = {1, 1, 1};
        fset(dlogits, N * V, GRAD_PREFILL);
        logprobs_backward(dlogits, dlogp, logits, lse, targets, N, V);
        for (int i = 0; i < V; i++) {
            want[i] = GRAD_PREFILL + (i == 3) - 0.125f;
            want[V + i] = GRAD_PREFILL;
            want[2 * V + i] = (float)(GRAD_PREFILL + (i == 7) - exp(i - lse2));
        }
        // expf of an fp32 lse: ≤ 1e-7 absolute on probabilities ≤ 1.
        fail |= check_close("logprobs structured backward", dlogits, want, N * V, 1e-6f, 0);
        // all logits −1000: exp underflows to 0 unless the row max is subtracted; lse = −1000 + ln 8
        fset(logits, V, -1000.0f);
        logprobs_forward(logp, lse, logits, targets, 1, V);
        const float want_low_lse = (float)(-1000.0 + log(8.0)), want_low_logp = (float)-log(8.0);
        // ulp of 1000 is 6.1e-5: allow two on lse; logp = x − lse inherits that.
        fail |= check_close("logprobs all −1000 lse", lse, &want_low_lse, 1, 1.2e-4f, 0);
        fail |= check_close("logprobs all −1000 logp", logp, &want_low_logp, 1, 1.2e-4f, 0);
    }
    {  // a real vocabulary row: 100352 logits of moderate size plus a few huge ones (up to 1e4)
        enum { V = 100352 };
        hy_rng r;
        hy_rng_init(&r, 71);
        float *logits = normal_buf(&r, V, 3.0f), *dlogits = buf(V);
        logits[17] = 1.0e4f;
        logits[50000] = 9.99e3f;
        logits[V - 1] = 9.995e3f;
        int32_t target = 50000;
        float logp, lse, want_logp, want_lse, dlogp = 1.0f;
        logprobs_forward(&logp, &lse, logits, &target, 1, V);
        logprobs_ref(&want_logp, &want_lse, logits, &target, 1, V);
        // lse ≈ 1e4 holds ~1e-3 of fp32 resolution (ulp 9.8e-4); logp = x − lse inherits it.
        fail |= check_close("logprobs wide lse", &lse, &want_lse, 1, 2e-3f, 0);
        fail |= check_close("logprobs wide logp", &logp, &want_logp, 1, 2e-3f, 0);
        logprobs_backward(dlogits, &dlogp, logits, &lse, &target, 1, V);
        double sum = 0.0;
        for (int i = 0; i < V; i++) sum += dlogits[i];
        float sumf = (float)sum, zero = 0.0f;
        // Σ(onehot − softmax) = 0; softmax rebuilt from an fp32 lse (error 5e-4) is off by that
        // much relative: |Σ| ≲ 1e-3.
        fail |= check_close("logprobs wide gradient sum", &sumf, &zero, 1, 2e-3f, 0);
        fail |= check_nonzero("logprobs wide dlogits", dlogits, V);
        // every logit at 8e4: exp would overflow without the max shift; lse = 8e4 + ln V
        fset(logits, V, 8.0e4f);
        logprobs_forward(&logp, &lse, logits, &target, 1, V);
        want_lse = (float)(8.0e4 + log((double)V));
        want_logp = (float)-log((double)V);
        // ulp of 8e4 is 7.8e-3: allow two.
        fail |= check_close("logprobs flat 8e4 lse", &lse, &want_lse, 1, 1.6e-2f, 0);
        fail |= check_close("logprobs flat 8e4 logp", &logp, &want_logp, 1, 1.6e-2f, 0);
    }
    {  // random rows with some targets missing
        enum { N = 6, V = 1000 };
        hy_rng r;
        hy_rng_init(&r, 72);
        float *logits = normal_buf(&r, N * V, 3.0f), *dlogp = normal_buf(&r, N, 1.0f);
        float logp[N], lse[N], want_logp[N], want_lse[N];
        const int32_t targets[N] = {5, -1, 999, 0, -1, 321};
        logprobs_forward(logp, lse, logits, targets, N, V);
        logprobs_ref(want_logp, want_lse, logits, targets, N, V);
        // |lse| ~ 10: fp32 result of a double sum, ≤ 1 ulp (1e-6); rel 1e-6 with atol for logp ~ 0.
        fail |= check_close("logprobs random lse", lse, want_lse, N, 1e-6f, 1e-6f);
        fail |= check_close("logprobs random logp", logp, want_logp, N, 2e-6f, 1e-6f);
        fail |= check_nonzero("logprobs logp", logp, N);
        float *dlogits = grad_buf(N * V), *want = buf(N * V);
        logprobs_backward(dlogits, dlogp, logits, lse, targets, N, V);
        for (int n = 0; n < N; n++)
            for (int i = 0; i < V; i++) {
                double g = targets[n] < 0 ? 0.0 : dlogp[n] * ((i == targets[n]) - exp(logits[n * V + i] - want_lse[n]));
                want[n * V + i] = (float)(g + GRAD_PREFILL);
            }
        // Probabilities from expf of fp32 values ~10: relative error ~1e-6, on values ≤ 2.
        fail |= check_close("logprobs random backward", dlogits, want, N * V, 2e-6f, 1e-6f);
    }
    bufs_free();
    return fail;
}

typedef struct {
    float *logits, *logp, *lse;
    const float *dlogp;
    const int32_t *targets;
    int N, V;
} logprobs_ctx;

static double logprobs_loss(void *p) {
    logprobs_ctx *c = p;
    logprobs_forward(c->logp, c->lse, c->logits, c->targets, c->N, c->V);
    return dot_loss(c->logp, c->dlogp, (size_t)c->N);
}

static int grad_logprobs(void) {
    enum { N = 4, V = 11 };
    hy_rng r;
    hy_rng_init(&r, 73);
    const int32_t targets[N] = {2, -1, 10, 0};
    logprobs_ctx c = {normal_buf(&r, N * V, 2.0f), buf(N), buf(N), normal_buf(&r, N, 1.0f), targets, N, V};
    float *dlogits = buf(N * V);
    logprobs_loss(&c);
    logprobs_backward(dlogits, c.dlogp, c.logits, c.lse, targets, N, V);
    int fail = fd_tensor("logprobs dlogits", c.logits, dlogits, N * V, logprobs_loss, &c);
    bufs_free();
    return fail;
}

// =================================================================================================
// AdamW and gradient clipping
// =================================================================================================

// Three AdamW steps in double, written out from the algorithm (decoupled decay, bias-corrected
// moments).
static void adamw_ref(double *p, double *m, double *v, const float grads[3][4], int n, const adamw_params *hp,
                      int apply_decay) {
    double lr = hp->lr, b1 = hp->beta1, b2 = hp->beta2, eps = hp->eps, wd = apply_decay ? hp->weight_decay : 0.0;
    for (int t = 1; t <= 3; t++)
        for (int i = 0; i < n; i++) {
            double g = grads[t - 1][i];
            p[i] *= 1.0 - lr * wd;
            m[i] = b1 * m[i] + (1.0 - b1) * g;
            v[i] = b2 * v[i] + (1.0 - b2) * g * g;
            double m_hat = m[i] / (1.0 - pow(b1, t)), v_hat = v[i] / (1.0 - pow(b2, t));
            p[i] -= lr * m_hat / (sqrt(v_hat) + eps);
        }
}

// Relative error against the double value, all finite.
static int check_rel(const char *what, const float *got, const double *want, int n, double rtol) {
    for (int i = 0; i < n; i++)
        if (!isfinite(got[i]) || fabs(got[i] - want[i]) > rtol * fabs(want[i])) {
            fprintf(stderr, "  %s: element %d got %.9g want %.9g (rtol %g)\n", what, i, got[i], want[i], rtol);
            return 1;
        }
    return 0;
}

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

// Recorded from torch 2.11.0 on CPU: torch.optim.AdamW(lr=1e-3, betas=(0.9, 0.95), eps=1e-8,
// weight_decay=0.1, foreach=False, fused=False) on 37 fp32 elements (vector body and scalar tail),
// p0[i] = (float)((0.37·i − 5.1)·scale[i mod 3]), scale = (1, 0.01, 1e-4), grad at step s =
// (float)(0.0713·((7i + 3s) mod 17 − 8) + 0.01·s); p and both moments after 3 steps. Full-mantissa
// inputs exercise every rounding step (the fused lerp and addcmul, the decay product), and the
// parameters as small as the update (1e-4 against lr 1e-3) expose the order inside addcdiv and the
// denominator's rounding, which larger parameters absorb.
static const uint32_t torch_adamw_p[37] = {
    0xc0a31323, 0xbd4d6005, 0x3b1bf831, 0xc07f4b56, 0xbd161108, 0x3adac1d0, 0xc0386475, 0xbcb71c15, 0xbb378668,
    0xbfe29635, 0xbc4e3c45, 0xbb14f647, 0xbf283da4, 0xbbb9ae25, 0xba8872ae, 0x3ee6a551, 0x3bc07e30, 0x3b24037f,
    0x3fc74133, 0x3cb52000, 0x387bb360, 0x402accd0, 0x3d04a5e3, 0xbad8dc7d, 0x407205d5, 0x3d1f56c6, 0xb99715ca,
    0x409c7a65, 0x3d4e7f22, 0x3b5007a7, 0x40bfda95, 0x3d804523, 0x3aa8ee49, 0x40e3609e, 0x3d9e06b8, 0xbb07a603,
    0x4103868e
};
static const uint32_t torch_adamw_m[37] = {
    0xbced538b, 0x3dd9ac44, 0xbdb20c3c, 0x3d45e9d5, 0xbd3f61e1, 0xbc1e137c, 0x3b901c3b, 0xbd8a79ca, 0x3d8a875d,
    0xbce079f1, 0x3c1e801d, 0x3cc250df, 0xbd45ceac, 0x3db219d0, 0xbc04604b, 0x3ced89dd, 0x3d304d54, 0xbced538b,
    0x3dd9ac44, 0xbdb20c3c, 0x3d45e9d5, 0xbd3f61e1, 0xbc1e137c, 0x3b901c3b, 0xbd8a79ca, 0x3d8a875d, 0xbce079f1,
    0x3c1e801d, 0x3cc250df, 0xbd45ceac, 0x3db219d0, 0xbc04604b, 0x3ced89dd, 0x3d304d54, 0xbced538b, 0x3dd9ac44,
    0xbdb20c3c
};
static const uint32_t torch_adamw_v[37] = {
    0x3bd9bd16, 0x3cd36b69, 0x3ca558b0, 0x3c11ba52, 0x3ce865be, 0x3ba4e435, 0x3cd82d24, 0x3c68fe30, 0x3c5656e6,
    0x3cd3cdd1, 0x3b9f8fd6, 0x3ce333c6, 0x3c1f0d3c, 0x3c995ade, 0x3ccb1701, 0x3bc9bffc, 0x3cfa1b8a, 0x3bd9bd16,
    0x3cd36b69, 0x3ca558b0, 0x3c11ba52, 0x3ce865be, 0x3ba4e435, 0x3cd82d24, 0x3c68fe30, 0x3c5656e6, 0x3cd3cdd1,
    0x3b9f8fd6, 0x3ce333c6, 0x3c1f0d3c, 0x3c995ade, 0x3ccb1701, 0x3bc9bffc, 0x3cfa1b8a, 0x3bd9bd16, 0x3cd36b69,
    0x3ca558b0
};

static int check_bits(const char *what, const float *got, const uint32_t *want, int n) {
    for (int i = 0; i < n; i++)
        if (float_bits(got[i]) != want[i]) {
            fprintf(stderr, "  %s: element %d is 0x%08x, torch has 0x%08x\n", what, i, float_bits(got[i]), want[i]);
            return 1;
        }
    return 0;
}

static int test_adamw(void) {
    int fail = 0;
    {  // hand computation in double, decay on and off
        enum { N = 4 };
        const float p0[N] = {1.0f, -0.5f, 0.25f, 2.0f};
        const float grads[3][N] = {{0.5f, -1.25f, 3e-3f, 2.0f}, {0.25f, 1.0f, -4e-3f, 1.5f}, {-0.75f, 0.5f, 1e-3f, 1.0f}};
        const adamw_params hp = {1e-3, 0.9, 0.95, 1e-8, 0.1};
        for (int decay = 0; decay <= 1; decay++) {
            float p[N], m[N] = {0}, v[N] = {0};
            double rp[N], rm[N] = {0}, rv[N] = {0};
            for (int i = 0; i < N; i++) rp[i] = p[i] = p0[i];
            for (int t = 1; t <= 3; t++) adamw_step(p, m, v, grads[t - 1], N, &hp, t, decay);
            adamw_ref(rp, rm, rv, grads, N, &hp, decay);
            // fp32 carries 6e-8 relative per rounding, ~10 roundings across 3 steps: 1e-6 as asked.
            // The tightest element is exp_avg of the third, a cancellation (−1.7e-5 out of terms of
            // 3e-4) that amplifies its rounding to 5.9e-7.
            fail |= check_rel(decay ? "adamw hand p (decay)" : "adamw hand p (no decay)", p, rp, N, 1e-6);
            fail |= check_rel("adamw hand exp_avg", m, rm, N, 1e-6);
            fail |= check_rel("adamw hand exp_avg_sq", v, rv, N, 1e-6);
        }
        // Step 1 without decay: m̂/sqrt(v̂) = g/|g|, so each parameter moves by lr against its
        // gradient's sign (eps 1e-8 against |g| ≥ 3e-3 changes that by < 4e-6 relative).
        float p[N], m[N] = {0}, v[N] = {0};
        memcpy(p, p0, sizeof p);
        adamw_step(p, m, v, grads[0], N, &hp, 1, 0);
        for (int i = 0; i < N; i++) {
            float moved = p0[i] - p[i], want = grads[0][i] > 0 ? 1e-3f : -1e-3f;
            // |p| ≤ 2 gives the difference an fp32 error of 2.4e-7 absolute (2.4e-4 of lr).
            fail |= check_close("adamw first step is lr·sign(g)", &moved, &want, 1, 0, 5e-4f);
        }
        // weight_decay 0 with decay on is the same as decay off, bit for bit
        float pa[N], ma[N] = {0}, va[N] = {0}, pb[N], mb[N] = {0}, vb[N] = {0};
        adamw_params hp0 = hp;
        hp0.weight_decay = 0.0;
        memcpy(pa, p0, sizeof pa);
        memcpy(pb, p0, sizeof pb);
        for (int t = 1; t <= 3; t++) {
            adamw_step(pa, ma, va, grads[t - 1], N, &hp0, t, 1);
            adamw_step(pb, mb, vb, grads[t - 1], N, &hp, t, 0);
        }
        fail |= check_close("adamw wd 0 vs decay off", pa, pb, N, 0, 0);
        fail |= check_nonzero("adamw p", pa, N) | check_nonzero("adamw exp_avg", ma, N);
    }
    {  // bit-exact against PyTorch
        enum { N = 37 };
        const adamw_params hp = {1e-3, 0.9, 0.95, 1e-8, 0.1};
        float p[N], m[N] = {0}, v[N] = {0}, g[N];
        const double scale[3] = {1.0, 0.01, 1e-4};
        for (int i = 0; i < N; i++) p[i] = (float)((i * 0.37 - 5.1) * scale[i % 3]);
        for (int s = 1; s <= 3; s++) {
            for (int i = 0; i < N; i++) g[i] = (float)(((7 * i + 3 * s) % 17 - 8) * 0.0713 + 0.01 * s);
            adamw_step(p, m, v, g, N, &hp, s, 1);
        }
        fail |= check_bits("adamw vs torch p", p, torch_adamw_p, N);
        fail |= check_bits("adamw vs torch exp_avg", m, torch_adamw_m, N);
        fail |= check_bits("adamw vs torch exp_avg_sq", v, torch_adamw_v, N);
    }
    {  // clipping against torch.nn.utils.clip_grad_norm_(max_norm=0.75, foreach=False) (torch 2.11
       // CPU): gradients after clipping, bit for bit. The last case has norm 0.5 < 0.75: coefficient 1.
        // The first three make max_norm / (norm + 1e-6) differ from torch's reciprocal-then-multiply.
        enum { CASES = 7 };
        static const float grads[CASES][3] = {{0.136999995f, 0.873000026f}, {0.136999995f, 2.03699994f},
                                              {0.136999995f, 3.20099998f},  {3.0f, 4.0f},
                                              {1.1f, 2.3f, 0.7f},           {0.123f, -0.456f, 0.789f},
                                              {0.3f, 0.4f}};
        static const int n[CASES] = {2, 2, 2, 2, 3, 3, 2};
        static const uint32_t torch_clipped[CASES][3] = {{0x3dee2147, 0x3f3dadaa},
                                                         {0x3d4e24d8, 0x3f3f9130},
                                                         {0x3d035bcf, 0x3f3fd308},
                                                         {0x3ee66664, 0x3f199998},
                                                         {0x3e9fc42c, 0x3f270745, 0x3e4b56c3},
                                                         {0x3dcd7483, 0xbebe6bfc, 0x3f24bd6c},
                                                         {0x3e99999a, 0x3ecccccd}};
        for (int c = 0; c < CASES; c++) {
            float g[3];
            memcpy(g, grads[c], sizeof g);
            grad_scale(g, (size_t)n[c], grad_clip_coef(sqrt(grad_sumsq(g, (size_t)n[c])), 0.75f));
            fail |= check_bits("grad clip vs torch", g, torch_clipped[c], n[c]);
        }
        float g34[2] = {3.0f, 4.0f};
        double sumsq = grad_sumsq(g34, 2);
        if (sumsq != 25.0) {  // a sum of squares (not the norm), exact here
            fprintf(stderr, "  grad_sumsq(3, 4) = %.17g, want 25\n", sumsq);
            fail = 1;
        }
    }
    bufs_free();
    return fail;
}

const op_test_entry dense_op_tests[] = {
    {"embedding", test_embedding, grad_embedding},
    {"linear", test_linear, grad_linear},
    {"rmsnorm", test_rmsnorm, grad_rmsnorm},
    {"rope", test_rope, grad_rope},
    {"attention", test_attention, grad_attention},
    {"attention_cached", test_attention_cached, NULL},
    {"swiglu", test_swiglu, grad_swiglu},
    {"logprobs", test_logprobs, grad_logprobs},
    {"adamw", test_adamw, NULL},
    {NULL, NULL, NULL},
};
