// GPU tests of the bandwidth-bound ops (conversions and elementwise helpers, embedding, RMSNorm and
// its residual form, gated RMSNorm, L2 norm, conv1d + SiLU, GDN gates, SwiGLU, logprobs, AdamW,
// grad sum of squares / scale) against their CPU references (ops_cpu.h), forward and backward.
//
// Inputs come from each op's real range and are rounded to bf16 before either side sees them;
// shapes are ragged on purpose (N = 1, D not a multiple of 8 or 32, T not a multiple of 64, three
// packed documents including a 1-token one, V = 100352), and pointers are offset by one element
// in places so the narrow (unaligned) kernel paths run too. Backward gradients are pre-filled with
// nonzero values on both sides, so a kernel that writes (=) instead of accumulating (+=) fails.
//
// Tolerances (docs/tolerances.md section 3):
// - bf16 outputs: check_bf16 with factor 2 (≤ 2× the error of rounding the fp32 reference to bf16).
// - Exact (0, 0): pure data movement (conversions, column copies, embedding gather, conv windows),
//   grad_scale and AdamW, whose kernel reproduces the CPU arithmetic rounding step by rounding step.
// - fp32 values computed per row or element (rstd, rnorm, β, g, lse, logp): 1e-5 + 1e-5·|ref|, the
//   project's fp32 rule; the GPU sums in fp32 where the reference uses double, which moves a
//   3840-term positive sum by ≤ ~1e-6 relative.
// - fp32 sums across rows in another order (dw, dA_log, ddt_bias, conv dw): 1e-4 relative to the
//   largest accumulated gradient plus 1e-4·|ref| (the document's cross-row rule); the
//   accumulated part is measured without the pre-filled value, which would otherwise hide errors.
// - embedding dtable, conv dwindow_in: sums of a few terms in a different order, 1e-5 of the
//   largest accumulated value plus 1e-5·|ref|.
// - grad_sumsq: double accumulation in another order, 1e-12 relative.
// `test_ops_gpu perf` then times every kernel at the 7B model's shapes (GB/s and % of the ceiling).
#include <algorithm>
#include <cstring>
#include <memory>

#include "../../model/backend.h"
#include "gpu_test.h"

namespace {

int g_checks = 0, g_failed = 0;

void tally(int fail) {
    g_checks++;
    g_failed += fail != 0;
}

template <typename T>
using dptr = std::unique_ptr<dev_buf<T>>;

dptr<__nv_bfloat16> up_bf16(const std::vector<float> &h) { return dptr<__nv_bfloat16>(upload_bf16(h)); }
template <typename T>
dptr<T> up(const std::vector<T> &h) { return dptr<T>(upload(h)); }
template <typename T>
dptr<T> alloc(size_t n) { return std::make_unique<dev_buf<T>>(n); }

void sync() { CUDA_CHECK(cudaDeviceSynchronize()); }

std::vector<float> bf16_normal(hy_rng *r, size_t n, float std) {
    auto x = normal_vec(r, n, std);
    round_to_bf16(x);
    return x;
}
std::vector<float> bf16_uniform(hy_rng *r, size_t n, float lo, float hi) {
    auto x = random_vec(r, n, lo, hi);
    round_to_bf16(x);
    return x;
}

// check_f32 plus the measured error itself (its line shows the element nearest the limit).
int check_f32_err(const char *what, const std::vector<float> &got, const std::vector<float> &ref, double atol,
                  double rtol) {
    const int fail = check_f32(what, got, ref, atol, rtol);
    double abs_err = 0, rel_err = 0;
    for (size_t i = 0; i < got.size(); i++) {
        const double e = std::fabs((double)got[i] - ref[i]);
        abs_err = std::max(abs_err, e);
        if (ref[i] != 0) rel_err = std::max(rel_err, e / std::fabs((double)ref[i]));
    }
    printf("  %-28s   max |err| %.3g, max rel err %.3g\n", "", abs_err, rel_err);
    return fail;
}

// Largest |after − before|: the scale of what a backward accumulated into a pre-filled buffer.
double max_delta(const std::vector<float> &after, const std::vector<float> &before) {
    double m = 0;
    for (size_t i = 0; i < after.size(); i++) m = std::max(m, std::fabs((double)after[i] - before[i]));
    return m;
}

// Cross-row fp32 sums (parameter gradients): 1e-4 of the accumulated magnitude + 1e-4 relative.
int check_sum(const char *what, const std::vector<float> &got, const std::vector<float> &ref,
              const std::vector<float> &prefill, double rel = 1e-4) {
    return check_f32_err(what, got, ref, rel * max_delta(ref, prefill), rel);
}

// ---- conversions and elementwise helpers -------------------------------------------------------

void test_elementwise(hy_rng *r) {
    printf("elementwise\n");
    for (int off : {0, 1}) {  // off = 1: pointers one element in, the unaligned paths
        const size_t n = 10007;
        auto x32 = normal_vec(r, n, 3.0f);
        auto dx = up(x32);
        auto db = alloc<__nv_bfloat16>(n);
        f32_to_bf16_cuda(db->p + off, dx->p + off, n - off, 0);
        sync();
        auto got = download_bf16(db->p + off, n - off);
        std::vector<float> ref(x32.begin() + off, x32.end());
        round_to_bf16(ref);
        tally(check_f32(off ? "f32_to_bf16 (offset)" : "f32_to_bf16", got, ref, 0, 0));

        auto xb = bf16_normal(r, n, 3.0f);
        auto dxb = up_bf16(xb);
        auto dy = alloc<float>(n);
        bf16_to_f32_cuda(dy->p + off, dxb->p + off, n - off, 0);
        sync();
        tally(check_f32(off ? "bf16_to_f32 (offset)" : "bf16_to_f32", download(dy->p + off, n - off),
                        std::vector<float>(xb.begin() + off, xb.end()), 0, 0));

        auto a = bf16_normal(r, n, 1.0f), b = bf16_normal(r, n, 1.0f);
        std::vector<float> sum(n - off);
        for (size_t i = off; i < n; i++) sum[i - off] = a[i] + b[i];
        auto da = up_bf16(a), dbb = up_bf16(b);
        auto dsum = alloc<__nv_bfloat16>(n);
        add_bf16_cuda(dsum->p + off, da->p + off, dbb->p + off, n - off, 0);
        sync();
        tally(check_bf16(off ? "add_bf16 (offset)" : "add_bf16", download_bf16(dsum->p + off, n - off), sum));
        add_bf16_cuda(da->p + off, da->p + off, dbb->p + off, n - off, 0);  // y aliasing a
        sync();
        tally(check_bf16("add_bf16 y=a", download_bf16(da->p + off, n - off), sum));
        accumulate_bf16_cuda(dbb->p + off, dsum->p + off, n - off, 0);  // b += (a + b)
        sync();
        auto dsum_h = download_bf16(dsum->p + off, n - off);
        std::vector<float> acc(n - off);
        for (size_t i = off; i < n; i++) acc[i - off] = b[i] + dsum_h[i - off];
        tally(check_bf16("accumulate_bf16", download_bf16(dbb->p + off, n - off), acc));
    }

    struct cols_case {
        int T, stride, col, width;
    };
    for (cols_case c : {cols_case{37, 203, 17, 61}, cols_case{64, 384, 64, 128}, cols_case{1, 11520, 2880, 5760}}) {
        auto wide = bf16_normal(r, (size_t)c.T * c.stride, 1.0f);
        auto dwide = up_bf16(wide);
        auto dnarrow = alloc<__nv_bfloat16>((size_t)c.T * c.width);
        copy_columns_bf16_cuda(dnarrow->p, dwide->p, c.T, c.stride, c.col, c.width, 0);
        sync();
        std::vector<float> band((size_t)c.T * c.width);
        for (int t = 0; t < c.T; t++)
            for (int j = 0; j < c.width; j++) band[(size_t)t * c.width + j] = wide[(size_t)t * c.stride + c.col + j];
        char what[64];
        snprintf(what, sizeof what, "copy_columns T%d w%d", c.T, c.width);
        tally(check_f32(what, download_bf16(dnarrow->p, band.size()), band, 0, 0));

        auto src = bf16_normal(r, band.size(), 1.0f);
        auto dsrc = up_bf16(src);
        accumulate_columns_bf16_cuda(dwide->p, dsrc->p, c.T, c.stride, c.col, c.width, 0);
        sync();
        std::vector<float> ref = wide;
        for (int t = 0; t < c.T; t++)
            for (int j = 0; j < c.width; j++) ref[(size_t)t * c.stride + c.col + j] += src[(size_t)t * c.width + j];
        snprintf(what, sizeof what, "accumulate_columns T%d w%d", c.T, c.width);
        tally(check_bf16(what, download_bf16(dwide->p, ref.size()), ref));
    }

    // row gather / scatter between a slot pool and a batch buffer: a GDN state row (float4 path), a
    // conv window of odd length (scalar path), and a base offset by one float (scalar path)
    for (size_t per : {(size_t)552960, (size_t)33, (size_t)64}) {
        const int slots = 7, n = 4;
        const int32_t rows[n] = {5, 0, 6, 2};
        const size_t off = per == 64 ? 1 : 0;
        auto pool = random_vec(r, (size_t)slots * per + off, -1.0f, 1.0f);
        auto dpool = up(pool);
        auto dbatch = alloc<float>((size_t)n * per + off);
        hy_backend *cpu = hy_backend_cpu_new();
        std::vector<float> want((size_t)n * per);
        cpu->f32_copy_rows(cpu, want.data(), NULL, pool.data() + off, rows, n, per);
        int32_t *drows = nullptr;
        CUDA_CHECK(cudaMalloc(&drows, sizeof rows));
        CUDA_CHECK(cudaMemcpy(drows, rows, sizeof rows, cudaMemcpyHostToDevice));
        copy_rows_f32_cuda(dbatch->p + off, NULL, dpool->p + off, drows, n, per, 0);
        sync();
        char what[64];
        snprintf(what, sizeof what, "copy_rows gather per %zu%s", per, off ? " (offset)" : "");
        tally(check_f32(what, download(dbatch->p + off, want.size()), want, 0, 0));
        // scatter changed rows back: the pool holds them there, the other slots are untouched
        auto upd = random_vec(r, (size_t)n * per, -1.0f, 1.0f);
        auto dupd = up(upd);
        std::vector<float> pool_want(pool.begin() + off, pool.end());
        cpu->f32_copy_rows(cpu, pool_want.data(), rows, upd.data(), NULL, n, per);
        copy_rows_f32_cuda(dpool->p + off, drows, dupd->p, NULL, n, per, 0);
        sync();
        snprintf(what, sizeof what, "copy_rows scatter per %zu%s", per, off ? " (offset)" : "");
        tally(check_f32(what, download(dpool->p + off, pool_want.size()), pool_want, 0, 0));
        CUDA_CHECK(cudaFree(drows));
        cpu->destroy(cpu);
    }
}

// ---- sampling ----------------------------------------------------------------------------------

// sample_rows_cuda against the host's sample_row on 100k-entry rows: greedy and tempered, each
// row drawn several times (rows may repeat: forked samples share their parent's row). Tokens must
// agree except where the host's cumulative probability at the boundary is within 1e-5 of u (the
// two sum in different orders); logprobs within 1e-4 absolute (fp32 sums over 100k terms).
void test_sampling(hy_rng *r) {
    printf("sampling\n");
    const int V = 100352, n_rows = 6, n = 24;
    std::vector<float> logits = normal_vec(r, (size_t)n_rows * V, 2.5f);
    for (int i = 0; i < V; i += 997) logits[i] += 8.0f;  // a few likely tokens, as real rows have
    std::vector<int32_t> rows(n);
    std::vector<float> temp(n);
    std::vector<double> u(n);
    const float temps[] = {0.0f, 0.7f, 1.0f, 1.3f};
    for (int j = 0; j < n; j++) {
        rows[j] = j % n_rows;
        temp[j] = temps[j % 4];
        u[j] = hy_rng_uniform(r);
    }
    u[5] = 0.0;          // the first token's interval
    u[6] = 0.999999999;  // at the top of the distribution
    auto dlog = up(logits);
    auto drows = up(rows);
    auto dtemp = up(temp);
    auto du = up(u);
    auto dtok = alloc<int32_t>(n);
    auto dlp = alloc<float>(2 * (size_t)n);
    sample_rows_cuda(dlog->p, drows->p, n, V, dtemp->p, du->p, dtok->p, dlp->p, dlp->p + n, 0);
    sync();
    std::vector<int32_t> tok(n);
    std::vector<float> lp(2 * (size_t)n);
    CUDA_CHECK(cudaMemcpy(tok.data(), dtok->p, sizeof(int32_t) * n, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(lp.data(), dlp->p, sizeof(float) * 2 * n, cudaMemcpyDeviceToHost));
    int bad_tok = 0, near = 0;
    double worst_lp = 0.0;
    for (int j = 0; j < n; j++) {
        const float *x = logits.data() + (size_t)rows[j] * V;
        int32_t want;
        float want_lp, want_mlp;
        sample_row(x, V, temp[j], u[j], &want, &want_lp, &want_mlp);
        if (tok[j] != want) {
            // ambiguous only if u sits within rounding of the host's cumulative at the boundary
            const double lse_t = row_log_sum_exp(x, V, 1.0f / temp[j]);
            double acc = 0.0;
            for (int i = 0; i <= std::min(want, tok[j]); i++) acc += exp((double)x[i] / temp[j] - lse_t);
            if (temp[j] > 0.0f && fabs(acc - u[j]) < 1e-5)
                near++;
            else
                bad_tok++;
            continue;
        }
        worst_lp = std::max(worst_lp, (double)fabsf(lp[j] - want_lp));
        worst_lp = std::max(worst_lp, (double)fabsf(lp[n + j] - want_mlp));
    }
    printf("  sample_rows: %d of %d draws as on the host (%d within rounding of u), logprobs within %.2g\n",
           n - bad_tok - near, n, near, worst_lp);
    tally(bad_tok != 0 || worst_lp > 1e-4);
}

// ---- embedding ---------------------------------------------------------------------------------

void test_embedding(hy_rng *r) {
    printf("embedding\n");
    const int V = 50, T = 203, skip = 3;
    for (int C : {3840, 77}) {
        auto table = bf16_normal(r, (size_t)V * C, 1.0f);
        std::vector<int32_t> ids(T);
        for (int t = 0; t < T; t++) ids[t] = (int32_t)(hy_rng_next(r) % V);  // ~4 tokens per id: duplicates
        ids[5] = ids[9] = skip;
        auto dtab = up_bf16(table);
        auto dids = up(ids);
        auto dout = alloc<__nv_bfloat16>((size_t)T * C);
        embedding_forward_cuda(dout->p, dids->p, dtab->p, T, C, 0);
        sync();
        std::vector<float> ref((size_t)T * C);
        embedding_forward(ref.data(), ids.data(), table.data(), T, C);
        char what[64];
        snprintf(what, sizeof what, "embedding fwd C%d", C);
        tally(check_f32(what, download_bf16(dout->p, ref.size()), ref, 0, 0));

        auto g = bf16_normal(r, (size_t)T * C, 1.0f);
        auto pre = normal_vec(r, (size_t)V * C, 1.0f);
        auto dg = up_bf16(g);
        auto ddt = up(pre);
        embedding_backward_cuda(ddt->p, dids->p, dg->p, T, C, skip, 0);
        sync();
        std::vector<float> dref = pre;
        embedding_backward(dref.data(), ids.data(), g.data(), T, C, skip);
        snprintf(what, sizeof what, "embedding bwd dtable C%d", C);
        tally(check_sum(what, download(ddt->p, dref.size()), dref, pre, 1e-5));
    }
}

// ---- RMSNorm -----------------------------------------------------------------------------------

void test_rmsnorm(hy_rng *r) {
    printf("rmsnorm\n");
    const float eps = 1e-6f;
    struct nd {
        int N, D;
    };
    for (nd c : {nd{1, 3840}, nd{37, 1000}, nd{5, 203}, nd{64, 130}, nd{300, 3840}}) {
        const size_t n = (size_t)c.N * c.D;
        auto x = bf16_normal(r, n, 2.0f);
        auto w = normal_vec(r, c.D, 0.2f);
        for (auto &v : w) v += 1.0f;
        auto dy = bf16_normal(r, n, 1.0f);
        auto dx0 = bf16_normal(r, n, 0.5f);
        auto dw0 = normal_vec(r, c.D, 1.0f);

        std::vector<float> y(n), rstd(c.N), dx = dx0, dw = dw0;
        rmsnorm_forward(y.data(), rstd.data(), x.data(), w.data(), c.N, c.D, eps);
        rmsnorm_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), rstd.data(), c.N, c.D);

        auto d_x = up_bf16(x), d_dy = up_bf16(dy), d_dx = up_bf16(dx0);
        auto d_w = up(w), d_dw = up(dw0);
        auto d_y = alloc<__nv_bfloat16>(n);
        auto d_rstd = alloc<float>(c.N);
        rmsnorm_forward_cuda(d_y->p, d_rstd->p, d_x->p, d_w->p, c.N, c.D, eps, 0);
        rmsnorm_backward_cuda(d_dx->p, d_dw->p, d_dy->p, d_x->p, d_w->p, d_rstd->p, c.N, c.D, 0);
        sync();
        printf(" N=%d D=%d\n", c.N, c.D);
        tally(check_bf16("y", download_bf16(d_y->p, n), y));
        tally(check_f32_err("rstd", download(d_rstd->p, c.N), rstd, 1e-5, 1e-5));
        tally(check_bf16("dx (+=)", download_bf16(d_dx->p, n), dx));
        tally(check_sum("dw (+=)", download(d_dw->p, c.D), dw, dw0));

        // residual form: h = x + r rounded to bf16, then the norm of that h
        auto res = bf16_normal(r, n, 2.0f);
        std::vector<float> h(n), hb(n), y2(n), rstd2(c.N);
        for (size_t i = 0; i < n; i++) h[i] = x[i] + res[i], hb[i] = bf16_round(h[i]);
        rmsnorm_forward(y2.data(), rstd2.data(), hb.data(), w.data(), c.N, c.D, eps);
        auto d_r = up_bf16(res);
        auto d_h = alloc<__nv_bfloat16>(n);
        residual_rmsnorm_forward_cuda(d_h->p, d_y->p, d_rstd->p, d_x->p, d_r->p, d_w->p, c.N, c.D, eps, 0);
        sync();
        tally(check_bf16("residual h", download_bf16(d_h->p, n), h));
        tally(check_bf16("residual y", download_bf16(d_y->p, n), y2));
        tally(check_f32_err("residual rstd", download(d_rstd->p, c.N), rstd2, 1e-5, 1e-5));
    }
}

// ---- gated RMSNorm -----------------------------------------------------------------------------

void test_gated_rmsnorm(hy_rng *r) {
    printf("gated_rmsnorm\n");
    const float eps = 1e-5f;
    struct nd {
        int N, D;
        bool with_dz;
    };
    for (nd c : {nd{1, 192, true}, nd{300, 192, true}, nd{77, 100, true}, nd{9, 61, true}, nd{40, 192, false}}) {
        const size_t n = (size_t)c.N * c.D;
        auto x = bf16_normal(r, n, 1.0f);
        auto z = bf16_normal(r, n, 3.0f);
        auto w = normal_vec(r, c.D, 0.2f);
        for (auto &v : w) v += 1.0f;
        auto dy = bf16_normal(r, n, 1.0f);
        auto dx0 = bf16_normal(r, n, 0.5f), dz0 = bf16_normal(r, n, 0.5f);
        auto dw0 = normal_vec(r, c.D, 1.0f);

        std::vector<float> y(n), rstd(c.N), dx = dx0, dz = dz0, dw = dw0;
        gated_rmsnorm_forward(y.data(), rstd.data(), x.data(), z.data(), w.data(), c.N, c.D, eps);
        gated_rmsnorm_backward(dx.data(), c.with_dz ? dz.data() : nullptr, dw.data(), dy.data(), x.data(), z.data(),
                               w.data(), rstd.data(), c.N, c.D);

        auto d_x = up_bf16(x), d_z = up_bf16(z), d_dy = up_bf16(dy), d_dx = up_bf16(dx0), d_dz = up_bf16(dz0);
        auto d_w = up(w), d_dw = up(dw0);
        auto d_y = alloc<__nv_bfloat16>(n);
        auto d_rstd = alloc<float>(c.N);
        gated_rmsnorm_forward_cuda(d_y->p, d_rstd->p, d_x->p, d_z->p, d_w->p, c.N, c.D, eps, 0);
        gated_rmsnorm_backward_cuda(d_dx->p, c.with_dz ? d_dz->p : nullptr, d_dw->p, d_dy->p, d_x->p, d_z->p, d_w->p,
                                    d_rstd->p, c.N, c.D, 0);
        sync();
        printf(" N=%d D=%d%s\n", c.N, c.D, c.with_dz ? "" : " (dz NULL)");
        tally(check_bf16("y", download_bf16(d_y->p, n), y));
        tally(check_f32_err("rstd", download(d_rstd->p, c.N), rstd, 1e-5, 1e-5));
        tally(check_bf16("dx (+=)", download_bf16(d_dx->p, n), dx));
        if (c.with_dz) tally(check_bf16("dz (+=)", download_bf16(d_dz->p, n), dz));
        tally(check_sum("dw (+=)", download(d_dw->p, c.D), dw, dw0));
    }
}

// ---- L2 norm -----------------------------------------------------------------------------------

void test_l2norm(hy_rng *r) {
    printf("l2norm\n");
    const float eps = 1e-6f;
    struct nd {
        int N, D;
    };
    for (nd c : {nd{1, 96}, nd{500, 96}, nd{13, 45}, nd{7, 256}}) {
        const size_t n = (size_t)c.N * c.D;
        auto x = bf16_normal(r, n, 1.0f);
        if (c.N == 13)  // one zero row: y = 0, r = eps^(-1/2); its dx (~1e3) sets this case's bf16 limit
            for (int d = 0; d < c.D; d++) x[(size_t)2 * c.D + d] = 0.0f;
        auto dy = bf16_normal(r, n, 1.0f);
        auto dx0 = bf16_normal(r, n, 0.5f);
        std::vector<float> y(n), rn(c.N), dx = dx0;
        l2norm_forward(y.data(), rn.data(), x.data(), c.N, c.D, eps);
        l2norm_backward(dx.data(), dy.data(), x.data(), rn.data(), c.N, c.D);

        auto d_x = up_bf16(x), d_dy = up_bf16(dy), d_dx = up_bf16(dx0);
        auto d_y = alloc<__nv_bfloat16>(n);
        auto d_rn = alloc<float>(c.N);
        l2norm_forward_cuda(d_y->p, d_rn->p, d_x->p, c.N, c.D, eps, 0);
        l2norm_backward_cuda(d_dx->p, d_dy->p, d_x->p, d_rn->p, c.N, c.D, 0);
        sync();
        printf(" N=%d D=%d\n", c.N, c.D);
        tally(check_bf16("y", download_bf16(d_y->p, n), y));
        tally(check_f32_err("rnorm", download(d_rn->p, c.N), rn, 1e-5, 1e-5));
        tally(check_bf16("dx (+=)", download_bf16(d_dx->p, n), dx));
    }
}

// ---- conv1d + SiLU -----------------------------------------------------------------------------

void test_conv1d(hy_rng *r) {
    printf("conv1d_silu\n");
    struct conv_case {
        const char *name;
        std::vector<int32_t> lens;
        int Ch, K;
        bool window_in, in_place;
    };
    const conv_case cases[] = {
        {"train, no window", {150, 1, 52}, 384, 4, false, false},
        {"short docs, window in place", {2, 1, 70}, 77, 4, true, true},
        {"decode, window in place", {1, 1, 1}, 384, 4, true, true},
        {"K=3, window", {5, 1, 40}, 130, 3, true, false},
        {"K=6, empty doc, window in place", {9, 0, 1, 20}, 66, 6, true, true},
    };
    for (const conv_case &c : cases) {
        const int n_docs = (int)c.lens.size(), Ch = c.Ch, K = c.K;
        std::vector<int32_t> cu(n_docs + 1, 0);
        for (int d = 0; d < n_docs; d++) cu[d + 1] = cu[d] + c.lens[d];
        const int T = cu[n_docs];
        const size_t n = (size_t)T * Ch, nw = (size_t)n_docs * Ch * (K - 1);
        auto x = bf16_normal(r, n, 1.0f);
        auto w = random_vec(r, (size_t)Ch * K, -0.5f, 0.5f);
        auto win = bf16_normal(r, nw, 1.0f);  // earlier pre-conv inputs: bf16 values held in fp32
        auto dy = bf16_normal(r, n, 1.0f);
        auto dx0 = bf16_normal(r, n, 0.5f);
        auto dw0 = normal_vec(r, (size_t)Ch * K, 1.0f);
        auto dwin0 = normal_vec(r, nw, 1.0f);
        const float *win_ref = c.window_in ? win.data() : nullptr;

        std::vector<float> y(n), wout(nw), dx = dx0, dw = dw0, dwin = dwin0;
        conv1d_silu_forward(y.data(), wout.data(), x.data(), w.data(), win_ref, cu.data(), n_docs, T, Ch, K);
        conv1d_silu_backward(dx.data(), dw.data(), dwin.data(), dy.data(), x.data(), w.data(), win_ref, cu.data(),
                             n_docs, T, Ch, K);

        auto d_x = up_bf16(x), d_dy = up_bf16(dy), d_dx = up_bf16(dx0);
        auto d_w = up(w), d_win = up(win), d_win_keep = up(win), d_dw = up(dw0), d_dwin = up(dwin0);
        auto d_cu = up(cu);
        auto d_y = alloc<__nv_bfloat16>(n);
        auto d_wout = alloc<float>(nw);
        float *wo = c.in_place ? d_win->p : d_wout->p;
        conv1d_silu_forward_cuda(d_y->p, wo, d_x->p, d_w->p, c.window_in ? d_win->p : nullptr, d_cu->p, n_docs, T,
                                 Ch, K, 0);
        conv1d_silu_backward_cuda(d_dx->p, d_dw->p, d_dwin->p, d_dy->p, d_x->p, d_w->p,
                                  c.window_in ? d_win_keep->p : nullptr, d_cu->p, n_docs, T, Ch, K, 0);
        sync();
        printf(" %s: docs", c.name);
        for (int l : c.lens) printf(" %d", l);
        printf(", Ch=%d K=%d\n", Ch, K);
        tally(check_bf16("y", download_bf16(d_y->p, n), y));
        tally(check_f32(c.in_place ? "window_out (aliasing in)" : "window_out", download(wo, nw), wout, 0, 0));
        tally(check_bf16("dx (+=)", download_bf16(d_dx->p, n), dx));
        tally(check_sum("dw (+=)", download(d_dw->p, dw.size()), dw, dw0));
        tally(check_sum("dwindow_in (+=)", download(d_dwin->p, nw), dwin, dwin0, 1e-5));
        if (!c.window_in || K < 2) continue;
        // the pool form (the rollout cache): windows at rows of a larger pool, in reverse order with
        // spare rows around them; the same y bit for bit, the rows updated in place, the rest untouched
        const size_t per = (size_t)Ch * (K - 1);
        const int n_rows = n_docs + 3;
        std::vector<int32_t> rows(n_docs);
        std::vector<float> pool((size_t)n_rows * per, 7.0f);
        for (int d = 0; d < n_docs; d++) {
            rows[d] = n_rows - 2 - d;
            std::copy(win.begin() + (long)(d * per), win.begin() + (long)((d + 1) * per), pool.begin() + (long)(rows[d] * per));
        }
        std::vector<float> want_pool = pool;
        for (int d = 0; d < n_docs; d++)
            std::copy(wout.begin() + (long)(d * per), wout.begin() + (long)((d + 1) * per), want_pool.begin() + (long)(rows[d] * per));
        auto d_pool = up(pool);
        auto d_rows = up(rows);
        auto d_yp = alloc<__nv_bfloat16>(n);
        conv1d_silu_forward_pool_cuda(d_yp->p, d_pool->p, d_rows->p, d_x->p, d_w->p, d_cu->p, n_docs, T, Ch, K, 0);
        sync();
        const auto y_plain = download_bf16(d_y->p, n), y_pool = download_bf16(d_yp->p, n);
        const bool same = y_plain == y_pool;
        printf("  pool form, rows reversed: y %s the plain kernel's\n", same ? "bit-identical to" : "DIFFERS from");
        tally(same ? 0 : 1);
        tally(check_f32("pool rows (in place) and the rest", download(d_pool->p, pool.size()), want_pool, 0, 0));
    }
}

// ---- GDN gates ---------------------------------------------------------------------------------

void test_gdn_gates(hy_rng *r) {
    printf("gdn_gates\n");
    struct gate_case {
        int T, H, neg;
    };
    for (gate_case c : {gate_case{203, 30, 1}, gate_case{77, 45, 0}, gate_case{1, 30, 1}}) {
        const size_t n = (size_t)c.T * c.H;
        auto b = bf16_normal(r, n, 3.0f);
        auto a = bf16_uniform(r, n, -8.0f, 25.0f);  // a + dt_bias crosses softplus's threshold of 20
        std::vector<float> A_log(c.H), dt_bias(c.H);
        for (int h = 0; h < c.H; h++) {
            A_log[h] = logf(hy_rng_range(r, 1.0f, 16.0f));
            dt_bias[h] = hy_rng_range(r, -6.9f, -2.3f);  // inverse softplus of dt ∈ [1e-3, 0.1]
        }
        auto dbeta = normal_vec(r, n, 1.0f), dg = normal_vec(r, n, 1.0f);
        auto db0 = bf16_normal(r, n, 0.5f), da0 = bf16_normal(r, n, 0.5f);
        auto dA0 = normal_vec(r, c.H, 1.0f), ddt0 = normal_vec(r, c.H, 1.0f);

        std::vector<float> beta(n), g(n), db = db0, da = da0, dA = dA0, ddt = ddt0;
        gdn_gates_forward(beta.data(), g.data(), b.data(), a.data(), A_log.data(), dt_bias.data(), c.T, c.H, c.neg);
        gdn_gates_backward(db.data(), da.data(), dA.data(), ddt.data(), dbeta.data(), dg.data(), b.data(), a.data(),
                           A_log.data(), dt_bias.data(), c.T, c.H, c.neg);

        auto d_b = up_bf16(b), d_a = up_bf16(a), d_db = up_bf16(db0), d_da = up_bf16(da0);
        auto d_Alog = up(A_log), d_dtb = up(dt_bias), d_dbeta = up(dbeta), d_dg = up(dg), d_dA = up(dA0),
             d_ddt = up(ddt0);
        auto d_beta = alloc<float>(n), d_g = alloc<float>(n);
        gdn_gates_forward_cuda(d_beta->p, d_g->p, d_b->p, d_a->p, d_Alog->p, d_dtb->p, c.T, c.H, c.neg, 0);
        gdn_gates_backward_cuda(d_db->p, d_da->p, d_dA->p, d_ddt->p, d_dbeta->p, d_dg->p, d_b->p, d_a->p, d_Alog->p,
                                d_dtb->p, c.T, c.H, c.neg, 0);
        sync();
        printf(" T=%d H=%d allow_neg_eigval=%d\n", c.T, c.H, c.neg);
        tally(check_f32_err("beta", download(d_beta->p, n), beta, 1e-5, 1e-5));
        tally(check_f32_err("g", download(d_g->p, n), g, 1e-5, 1e-5));
        tally(check_bf16("db (+=)", download_bf16(d_db->p, n), db));
        tally(check_bf16("da (+=)", download_bf16(d_da->p, n), da));
        tally(check_sum("dA_log (+=)", download(d_dA->p, c.H), dA, dA0));
        tally(check_sum("ddt_bias (+=)", download(d_ddt->p, c.H), ddt, ddt0));
    }
}

// ---- SwiGLU ------------------------------------------------------------------------------------

void test_swiglu(hy_rng *r) {
    printf("swiglu\n");
    struct nf {
        int N, F;
    };
    for (nf c : {nf{37, 1000}, nf{1, 11008}, nf{3, 77}}) {
        const size_t n = (size_t)c.N * c.F;
        auto gate = bf16_normal(r, n, 3.0f), up_ = bf16_normal(r, n, 1.0f), dh = bf16_normal(r, n, 1.0f);
        auto dg0 = bf16_normal(r, n, 0.5f), du0 = bf16_normal(r, n, 0.5f);
        std::vector<float> h(n), dg = dg0, du = du0;
        swiglu_forward(h.data(), gate.data(), up_.data(), c.N, c.F);
        swiglu_backward(dg.data(), du.data(), dh.data(), gate.data(), up_.data(), c.N, c.F);
        auto d_gate = up_bf16(gate), d_up = up_bf16(up_), d_dh = up_bf16(dh), d_dg = up_bf16(dg0), d_du = up_bf16(du0);
        auto d_h = alloc<__nv_bfloat16>(n);
        swiglu_forward_cuda(d_h->p, d_gate->p, d_up->p, c.N, c.F, 0);
        swiglu_backward_cuda(d_dg->p, d_du->p, d_dh->p, d_gate->p, d_up->p, c.N, c.F, 0);
        sync();
        printf(" N=%d F=%d\n", c.N, c.F);
        tally(check_bf16("h", download_bf16(d_h->p, n), h));
        tally(check_bf16("dgate (+=)", download_bf16(d_dg->p, n), dg));
        tally(check_bf16("dup (+=)", download_bf16(d_du->p, n), du));
    }
}

// ---- logprobs ----------------------------------------------------------------------------------

void test_logprobs(hy_rng *r) {
    printf("logprobs\n");
    struct lp_case {
        int V;
        std::vector<int32_t> targets;
    };
    const lp_case cases[] = {{100352, {17, -1, 100351, 0, 55555}}, {1001, {5, 1000, -1}}};
    for (const lp_case &c : cases) {
        const int N = (int)c.targets.size(), V = c.V;
        const size_t n = (size_t)N * V;
        auto logits = normal_vec(r, n, 3.0f);  // fp32 from the lm_head GEMM; not rounded
        for (int i = 0; i < N; i++) {  // a peaked row and a spike past the target: lse far from the mean
            if (c.targets[i] >= 0 && i % 2 == 0) logits[(size_t)i * V + c.targets[i]] = 18.0f;
            logits[(size_t)i * V + (size_t)(i * 7919) % V] = 25.0f;
        }
        auto dlogp = normal_vec(r, N, 1.0f);
        auto dl0 = bf16_normal(r, n, 1e-3f);
        std::vector<float> logp(N), lse(N), dl = dl0;
        logprobs_forward(logp.data(), lse.data(), logits.data(), c.targets.data(), N, V);
        logprobs_backward(dl.data(), dlogp.data(), logits.data(), lse.data(), c.targets.data(), N, V);

        auto d_logits = up(logits), d_dlogp = up(dlogp);
        auto d_t = up(c.targets);
        auto d_dl = up_bf16(dl0);
        auto d_logp = alloc<float>(N), d_lse = alloc<float>(N);
        logprobs_forward_cuda(d_logp->p, d_lse->p, d_logits->p, d_t->p, N, V, 0);
        logprobs_backward_cuda(d_dl->p, d_dlogp->p, d_logits->p, d_lse->p, d_t->p, N, V, 0);
        sync();
        printf(" N=%d V=%d\n", N, V);
        tally(check_f32_err("lse", download(d_lse->p, N), lse, 1e-5, 1e-5));
        tally(check_f32_err("logp", download(d_logp->p, N), logp, 1e-5, 1e-5));
        tally(check_bf16("dlogits (+=)", download_bf16(d_dl->p, n), dl));
    }
}

// ---- AdamW and gradient clipping helpers -------------------------------------------------------

void test_adamw(hy_rng *r) {
    printf("adamw\n");
    struct adam_case {
        adamw_params hp;
        int step, decay, off;
        bool bf16_copy;
    };
    const adam_case cases[] = {
        {{1e-3, 0.9, 0.95, 1e-8, 0.1}, 7, 1, 0, true},
        {{3e-4, 0.3, 0.999, 1e-8, 0.1}, 1, 0, 1, false},  // β1 < 0.5: lerp's other branch; unaligned
        {{1e-2, 0.9, 0.95, 1e-6, 0.01}, 1000, 1, 1, true},
    };
    for (const adam_case &c : cases) {
        const size_t n = 10007;
        auto p = normal_vec(r, n, 0.02f), m = normal_vec(r, n, 1e-3f), g = normal_vec(r, n, 1e-3f);
        auto v = random_vec(r, n, 0.0f, 1e-6f);
        auto d_p = up(p), d_m = up(m), d_v = up(v), d_g = up(g);
        auto d_pb = alloc<__nv_bfloat16>(n);
        const int o = c.off;
        adamw_step_cuda(d_p->p + o, c.bf16_copy ? d_pb->p + o : nullptr, d_m->p + o, d_v->p + o, d_g->p + o, n - o,
                        c.hp, c.step, c.decay, 0);
        sync();
        adamw_step(p.data() + o, m.data() + o, v.data() + o, g.data() + o, n - o, &c.hp, c.step, c.decay);
        printf(" lr=%g beta1=%g step=%d decay=%d%s\n", c.hp.lr, c.hp.beta1, c.step, c.decay, o ? " (offset)" : "");
        tally(check_f32("p (exact)", download(d_p->p, n), p, 0, 0));
        tally(check_f32("m (exact)", download(d_m->p, n), m, 0, 0));
        tally(check_f32("v (exact)", download(d_v->p, n), v, 0, 0));
        if (c.bf16_copy) {
            std::vector<float> pb(p.begin() + o, p.end());
            round_to_bf16(pb);
            tally(check_f32("p_bf16 (exact)", download_bf16(d_pb->p + o, n - o), pb, 0, 0));
        }
    }

    printf("grad_sumsq, grad_scale\n");
    for (int o : {0, 1}) {
        const size_t n = 10007;
        auto g = normal_vec(r, n, 1e-2f);
        auto d_g = up(g);
        auto d_s = up(std::vector<double>{1.5});
        grad_sumsq_cuda(d_s->p, d_g->p + o, n - o, 0);
        double got = 0;
        CUDA_CHECK(cudaMemcpy(&got, d_s->p, sizeof got, cudaMemcpyDeviceToHost));
        const double ref = 1.5 + grad_sumsq(g.data() + o, n - o);
        const int fail = !(std::fabs(got - ref) <= 1e-12 * std::fabs(ref));
        printf("  %-28s %.17g vs %.17g (rtol 1e-12)%s\n", o ? "sumsq (+=, offset)" : "sumsq (+=)", got, ref,
               fail ? "  FAIL" : "");
        tally(fail);

        grad_scale_cuda(d_g->p + o, n - o, 0.37f, 0);
        sync();
        grad_scale(g.data() + o, n - o, 0.37f);
        tally(check_f32(o ? "grad_scale (exact, offset)" : "grad_scale (exact)", download(d_g->p, n), g, 0, 0));
    }
}


// ---- perf: bandwidth of each kernel at the 7B model's shapes -----------------------------------
// Bytes are the fewest an op must move (each input read once, each output written once; an
// accumulated gradient read and written), so GB/s over the H100's ~3000 GB/s copy ceiling
// (docs/performance.md) is the fraction of the floor reached. Inputs are random (hashed on the
// device), larger than L2 where the shape allows; median of 20 timed runs after 3 warm-ups.

__global__ void fill_bf16_kernel(__nv_bfloat16 *p, size_t n, uint32_t seed, float scale) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        uint32_t h = (uint32_t)i * 2654435761u ^ seed;
        h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
        p[i] = __float2bfloat16_rn(scale * ((float)(h >> 8) * (2.0f / 16777216.0f) - 1.0f));
    }
}
__global__ void fill_f32_kernel(float *p, size_t n, uint32_t seed, float scale, float bias) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        uint32_t h = (uint32_t)i * 2654435761u ^ seed;
        h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
        p[i] = bias + scale * ((float)(h >> 8) * (2.0f / 16777216.0f) - 1.0f);
    }
}
dptr<__nv_bfloat16> rand_bf16(size_t n, float scale) {
    static uint32_t seed = 1;
    auto d = alloc<__nv_bfloat16>(n);
    fill_bf16_kernel<<<1024, 256>>>(d->p, n, seed++ * 0x9E3779B9u, scale);
    return d;
}
dptr<float> rand_f32(size_t n, float scale, float bias = 0.0f) {
    static uint32_t seed = 7;
    auto d = alloc<float>(n);
    fill_f32_kernel<<<1024, 256>>>(d->p, n, seed++ * 0x85EBCA6Bu, scale, bias);
    return d;
}

template <typename F>
void perf_row(const char *name, const char *shape, double bytes, F f) {
    cudaEvent_t a, b;
    CUDA_CHECK(cudaEventCreate(&a));
    CUDA_CHECK(cudaEventCreate(&b));
    for (int i = 0; i < 3; i++) f();
    std::vector<float> ms(20);
    for (float &m : ms) {
        CUDA_CHECK(cudaEventRecord(a));
        f();
        CUDA_CHECK(cudaEventRecord(b));
        CUDA_CHECK(cudaEventSynchronize(b));
        CUDA_CHECK(cudaEventElapsedTime(&m, a, b));
    }
    std::sort(ms.begin(), ms.end());
    const double t = ms[ms.size() / 2], gbs = bytes / (t * 1e-3) / 1e9;
    printf("  %-30s %-26s %9.4f ms %7.0f GB/s %5.1f %%\n", name, shape, t, gbs, 100.0 * gbs / 3000.0);
    CUDA_CHECK(cudaEventDestroy(a));
    CUDA_CHECK(cudaEventDestroy(b));
}

void perf() {
    printf("perf (H100 copy ceiling ~3000 GB/s)\n");
    const int T = 8192, C = 3840, F = 11008, H = 30, Dk = 96, Dv = 192, V = 100352;
    {
        const size_t n = (size_t)T * C;
        auto x = rand_bf16(n, 2), r = rand_bf16(n, 2), y = rand_bf16(n, 1), h = rand_bf16(n, 1), dy = rand_bf16(n, 1);
        auto dx = rand_bf16(n, 1);
        auto w = rand_f32(C, 0.2f, 1.0f), rstd = rand_f32(T, 0.1f, 1.0f), dw = rand_f32(C, 1);
        perf_row("add_bf16", "8192x3840", 6.0 * n, [&] { add_bf16_cuda(y->p, x->p, r->p, n, 0); });
        perf_row("rmsnorm fwd", "8192x3840", 4.0 * n, [&] { rmsnorm_forward_cuda(y->p, rstd->p, x->p, w->p, T, C, 1e-6f, 0); });
        perf_row("residual_rmsnorm fwd", "8192x3840", 8.0 * n,
                 [&] { residual_rmsnorm_forward_cuda(h->p, y->p, rstd->p, x->p, r->p, w->p, T, C, 1e-6f, 0); });
        perf_row("rmsnorm bwd dx+dw", "8192x3840", 8.0 * n,
                 [&] { rmsnorm_backward_cuda(dx->p, dw->p, dy->p, x->p, w->p, rstd->p, T, C, 0); });
        perf_row("  of which dx", "8192x3840", 8.0 * n,
                 [&] { rmsnorm_backward_cuda(dx->p, nullptr, dy->p, x->p, w->p, rstd->p, T, C, 0); });
        perf_row("  of which dw", "8192x3840", 4.0 * n,
                 [&] { rmsnorm_backward_cuda(nullptr, dw->p, dy->p, x->p, w->p, rstd->p, T, C, 0); });
        std::vector<int32_t> ids(T);
        for (int t = 0; t < T; t++) ids[t] = (int32_t)((t * 7919u) % V);
        auto d_ids = up(ids);
        auto table = rand_bf16((size_t)V * C, 1);
        auto dtable = rand_f32((size_t)V * C, 1);
        perf_row("embedding fwd", "8192x3840", 4.0 * n, [&] { embedding_forward_cuda(y->p, d_ids->p, table->p, T, C, 0); });
        perf_row("embedding bwd", "8192x3840", 10.0 * n,
                 [&] { embedding_backward_cuda(dtable->p, d_ids->p, dy->p, T, C, -1, 0); });
    }
    {
        const int N = T * H;
        const size_t n = (size_t)N * Dv;
        auto x = rand_bf16(n, 1), z = rand_bf16(n, 3), y = rand_bf16(n, 1), dy = rand_bf16(n, 1);
        auto dx = rand_bf16(n, 1), dz = rand_bf16(n, 1);
        auto w = rand_f32(Dv, 0.2f, 1.0f), rstd = rand_f32(N, 0.1f, 1.0f), dw = rand_f32(Dv, 1);
        perf_row("gated_rmsnorm fwd", "245760x192", 6.0 * n,
                 [&] { gated_rmsnorm_forward_cuda(y->p, rstd->p, x->p, z->p, w->p, N, Dv, 1e-5f, 0); });
        perf_row("gated_rmsnorm bwd dx+dz+dw", "245760x192", 14.0 * n,
                 [&] { gated_rmsnorm_backward_cuda(dx->p, dz->p, dw->p, dy->p, x->p, z->p, w->p, rstd->p, N, Dv, 0); });
        perf_row("  of which dw", "245760x192", 6.0 * n,
                 [&] { gated_rmsnorm_backward_cuda(nullptr, nullptr, dw->p, dy->p, x->p, z->p, w->p, rstd->p, N, Dv, 0); });
        const size_t nk = (size_t)N * Dk;
        perf_row("l2norm fwd", "245760x96", 4.0 * nk, [&] { l2norm_forward_cuda(y->p, rstd->p, x->p, N, Dk, 1e-6f, 0); });
        perf_row("l2norm bwd", "245760x96", 8.0 * nk, [&] { l2norm_backward_cuda(dx->p, dy->p, x->p, rstd->p, N, Dk, 0); });
    }
    {
        const int Ch = 2 * H * Dk + H * Dv, K = 4, n_docs = 8;
        const size_t n = (size_t)T * Ch;
        std::vector<int32_t> cu(n_docs + 1);
        for (int d = 0; d <= n_docs; d++) cu[d] = d * T / n_docs;
        auto d_cu = up(cu);
        auto x = rand_bf16(n, 1), y = rand_bf16(n, 1), dy = rand_bf16(n, 1), dx = rand_bf16(n, 1);
        auto w = rand_f32((size_t)Ch * K, 0.5f), dw = rand_f32((size_t)Ch * K, 1);
        perf_row("conv1d_silu fwd", "8192x11520 K4 8 docs", 4.0 * n,
                 [&] { conv1d_silu_forward_cuda(y->p, nullptr, x->p, w->p, nullptr, d_cu->p, n_docs, T, Ch, K, 0); });
        perf_row("conv1d_silu bwd dx+dw", "8192x11520 K4 8 docs", 8.0 * n, [&] {
            conv1d_silu_backward_cuda(dx->p, dw->p, nullptr, dy->p, x->p, w->p, nullptr, d_cu->p, n_docs, T, Ch, K, 0);
        });
        const int B = 64;  // decode: one token for each of 64 sequences, windows in place
        std::vector<int32_t> cu1(B + 1);
        for (int d = 0; d <= B; d++) cu1[d] = d;
        auto d_cu1 = up(cu1);
        auto win = rand_f32((size_t)B * Ch * (K - 1), 1);
        perf_row("conv1d_silu decode", "64 seqs x11520", (4.0 + 24.0) * B * Ch,
                 [&] { conv1d_silu_forward_cuda(y->p, win->p, x->p, w->p, win->p, d_cu1->p, B, B, Ch, K, 0); });
    }
    {
        const size_t n = (size_t)T * F;
        auto g = rand_bf16(n, 3), u = rand_bf16(n, 1), h = rand_bf16(n, 1), dh = rand_bf16(n, 1);
        auto dg = rand_bf16(n, 1), du = rand_bf16(n, 1);
        perf_row("swiglu fwd", "8192x11008", 6.0 * n, [&] { swiglu_forward_cuda(h->p, g->p, u->p, T, F, 0); });
        perf_row("swiglu bwd", "8192x11008", 14.0 * n,
                 [&] { swiglu_backward_cuda(dg->p, du->p, dh->p, g->p, u->p, T, F, 0); });
    }
    {
        const int N = 1024;
        const size_t n = (size_t)N * V;
        auto logits = rand_f32(n, 8);
        auto dl = rand_bf16(n, 1e-3f);
        std::vector<int32_t> t(N);
        for (int i = 0; i < N; i++) t[i] = (int32_t)((i * 104729u) % V);
        auto d_t = up(t);
        auto logp = rand_f32(N, 1), lse = rand_f32(N, 1), dlogp = rand_f32(N, 1);
        perf_row("logprobs fwd", "1024x100352", 4.0 * n,
                 [&] { logprobs_forward_cuda(logp->p, lse->p, logits->p, d_t->p, N, V, 0); });
        perf_row("logprobs bwd", "1024x100352", 8.0 * n,
                 [&] { logprobs_backward_cuda(dl->p, dlogp->p, logits->p, lse->p, d_t->p, N, V, 0); });
    }
    {
        const size_t n = 100u << 20;
        auto p = rand_f32(n, 0.02f), m = rand_f32(n, 1e-3f), v = rand_f32(n, 1e-7f, 1e-7f), g = rand_f32(n, 1e-3f);
        auto pb = alloc<__nv_bfloat16>(n);
        auto sq = alloc<double>(1);
        const adamw_params hp = {1e-4, 0.9, 0.95, 1e-8, 0.1};
        perf_row("adamw (+bf16 copy)", "104.9M", 30.0 * n,
                 [&] { adamw_step_cuda(p->p, pb->p, m->p, v->p, g->p, n, hp, 10, 1, 0); });
        perf_row("grad_sumsq", "104.9M", 4.0 * n, [&] { grad_sumsq_cuda(sq->p, g->p, n, 0); });
        perf_row("grad_scale", "104.9M", 8.0 * n, [&] { grad_scale_cuda(g->p, n, 0.999f, 0); });
        perf_row("f32_to_bf16", "104.9M", 6.0 * n, [&] { f32_to_bf16_cuda(pb->p, p->p, n, 0); });
    }
}

}  // namespace

int main(int argc, char **argv) {
    hy_rng r;
    hy_rng_init(&r, 20261122);
    test_elementwise(&r);
    test_sampling(&r);
    test_embedding(&r);
    test_rmsnorm(&r);
    test_gated_rmsnorm(&r);
    test_l2norm(&r);
    test_conv1d(&r);
    test_gdn_gates(&r);
    test_swiglu(&r);
    test_logprobs(&r);
    test_adamw(&r);
    CUDA_CHECK(cudaDeviceSynchronize());
    printf("test_ops_gpu: %d checks, %d failed\n", g_checks, g_failed);
    if (argc > 1 && !strcmp(argv[1], "perf")) perf();
    return g_failed ? 1 : 0;
}
