// Shared helpers of the GPU op tests: device buffers, bf16 rounding, and the tolerance rule of
// docs/tolerances.md section 3.
//
// The reference is the CPU op (ops_cpu.h) run in fp32 on the very bf16-rounded inputs the GPU
// sees, so the only differences are the GPU's storage roundings and summation order. A bf16
// output passes when its worst error is at most `factor` (normally 2) times the worst error of
// rounding the fp32 reference itself to bf16 — the error a naive same-precision implementation
// cannot avoid — plus 1e-6 of the largest reference value (for outputs that are exactly zero
// somewhere). fp32 outputs use scaled abs + rel. NaN/inf fail; all-zero outputs fail.
#ifndef HY_GPU_TEST_H
#define HY_GPU_TEST_H

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

extern "C" {
#include "../../common/rng.h"
#include "../../kernels/ops_cpu.h"
}
#include "../../kernels/cuda/cuda_check.h"
#include "../../kernels/ops_cuda.h"

static inline float bf16_round(float x) { return __bfloat162float(__float2bfloat16(x)); }

// Rounds every element to bf16 in place (so CPU and GPU see identical inputs).
static inline void round_to_bf16(std::vector<float> &x) {
    for (auto &v : x) v = bf16_round(v);
}

template <typename T>
struct dev_buf {
    T *p = nullptr;
    size_t n = 0;
    explicit dev_buf(size_t count) : n(count) {
        CUDA_CHECK(cudaMalloc(&p, (count ? count : 1) * sizeof(T)));
        CUDA_CHECK(cudaMemset(p, 0, (count ? count : 1) * sizeof(T)));
    }
    ~dev_buf() { cudaFree(p); }
    dev_buf(const dev_buf &) = delete;
    dev_buf &operator=(const dev_buf &) = delete;
};

static inline dev_buf<__nv_bfloat16> *upload_bf16(const std::vector<float> &h) {
    std::vector<__nv_bfloat16> t(h.size());
    for (size_t i = 0; i < h.size(); i++) t[i] = __float2bfloat16(h[i]);
    auto *d = new dev_buf<__nv_bfloat16>(h.size());
    CUDA_CHECK(cudaMemcpy(d->p, t.data(), t.size() * sizeof(__nv_bfloat16), cudaMemcpyHostToDevice));
    return d;
}

template <typename T>
static inline dev_buf<T> *upload(const std::vector<T> &h) {
    auto *d = new dev_buf<T>(h.size());
    CUDA_CHECK(cudaMemcpy(d->p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

static inline std::vector<float> download_bf16(const __nv_bfloat16 *d, size_t n) {
    std::vector<__nv_bfloat16> t(n);
    CUDA_CHECK(cudaMemcpy(t.data(), d, n * sizeof(__nv_bfloat16), cudaMemcpyDeviceToHost));
    std::vector<float> h(n);
    for (size_t i = 0; i < n; i++) h[i] = __bfloat162float(t[i]);
    return h;
}

static inline std::vector<float> download(const float *d, size_t n) {
    std::vector<float> h(n);
    CUDA_CHECK(cudaMemcpy(h.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost));
    return h;
}

// bf16 output vs fp32 reference under the "factor × naive bf16 rounding error" rule.
static inline int check_bf16(const char *what, const std::vector<float> &got, const std::vector<float> &ref,
                             double factor = 2.0) {
    double err = 0, naive = 0, scale = 0;
    size_t worst = 0;
    int nonzero = 0;
    for (size_t i = 0; i < got.size(); i++) {
        if (!std::isfinite(got[i])) {
            fprintf(stderr, "  %s: non-finite at %zu\n", what, i);
            return 1;
        }
        double e = std::fabs((double)got[i] - ref[i]);
        if (e > err) err = e, worst = i;
        naive = std::fmax(naive, std::fabs((double)bf16_round(ref[i]) - ref[i]));
        scale = std::fmax(scale, std::fabs((double)ref[i]));
        nonzero |= got[i] != 0.0f;
    }
    double limit = factor * naive + 1e-6 * scale;
    int fail = err > limit || !nonzero;
    printf("  %-28s max err %.3g (limit %.3g = %.1f x naive bf16 %.3g)%s\n", what, err, limit, factor, naive,
           fail ? (nonzero ? "  FAIL" : "  FAIL (all zero)") : "");
    if (fail && nonzero) fprintf(stderr, "  %s: worst at %zu: got %.6g want %.6g\n", what, worst, got[worst], ref[worst]);
    return fail;
}

// fp32 output vs fp32 reference: |Δ| ≤ atol + rtol·|ref|.
static inline int check_f32(const char *what, const std::vector<float> &got, const std::vector<float> &ref, double atol,
                            double rtol) {
    double worst_excess = -1;
    size_t worst = 0;
    int nonzero = 0;
    for (size_t i = 0; i < got.size(); i++) {
        if (!std::isfinite(got[i])) {
            fprintf(stderr, "  %s: non-finite at %zu\n", what, i);
            return 1;
        }
        double ex = std::fabs((double)got[i] - ref[i]) - (atol + rtol * std::fabs((double)ref[i]));
        if (ex > worst_excess) worst_excess = ex, worst = i;
        nonzero |= got[i] != 0.0f;
    }
    int fail = worst_excess > 0 || !nonzero;
    printf("  %-28s worst %.6g vs %.6g (atol %g rtol %g)%s\n", what, got[worst], ref[worst], atol, rtol,
           fail ? "  FAIL" : "");
    return fail;
}

static inline std::vector<float> random_vec(hy_rng *r, size_t n, float lo, float hi) {
    std::vector<float> x(n);
    for (auto &v : x) v = hy_rng_range(r, lo, hi);
    return x;
}

static inline std::vector<float> normal_vec(hy_rng *r, size_t n, float std) {
    std::vector<float> x(n);
    for (auto &v : x) v = std * hy_rng_normal(r);
    return x;
}

#endif
