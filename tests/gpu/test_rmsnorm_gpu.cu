// RMSNorm CUDA vs the CPU reference on random inputs, ragged row widths included.
// Tolerance (docs/tolerances.md): both sides are fp32 with different summation orders, so
// |Δ| ≤ 1e-5 + 1e-5·|ref| elementwise for y and dx; dw sums N rows in a different order, so
// 1e-4 relative. Outputs are checked non-zero so a kernel that writes nothing fails.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

extern "C" {
#include "../../common/rng.h"
#include "../../kernels/ops_cpu.h"
}
#include "../../kernels/ops_cuda.h"

#define CUDA_CHECK(call)                                                                              \
    do {                                                                                              \
        cudaError_t e_ = (call);                                                                      \
        if (e_ != cudaSuccess) {                                                                      \
            fprintf(stderr, "%s failed at %s:%d: %s\n", #call, __FILE__, __LINE__, cudaGetErrorString(e_)); \
            exit(1);                                                                                  \
        }                                                                                             \
    } while (0)

static int close_enough(const char *what, const std::vector<float> &got, const std::vector<float> &want, float atol,
                        float rtol) {
    int any_nonzero = 0;
    for (size_t i = 0; i < got.size(); i++) {
        if (!std::isfinite(got[i]) || std::fabs(got[i] - want[i]) > atol + rtol * std::fabs(want[i])) {
            fprintf(stderr, "  %s[%zu]: got %.9g want %.9g\n", what, i, got[i], want[i]);
            return 1;
        }
        any_nonzero |= got[i] != 0.0f;
    }
    if (!any_nonzero) fprintf(stderr, "  %s: all zero\n", what);
    return !any_nonzero;
}

static float *to_device(const std::vector<float> &h) {
    float *d;
    CUDA_CHECK(cudaMalloc(&d, h.size() * sizeof(float)));
    CUDA_CHECK(cudaMemcpy(d, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice));
    return d;
}

static std::vector<float> to_host(const float *d, size_t n) {
    std::vector<float> h(n);
    CUDA_CHECK(cudaMemcpy(h.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost));
    return h;
}

static int run(int N, int D) {
    hy_rng r;
    hy_rng_init(&r, 1234 + N * 7 + D);
    std::vector<float> x(N * D), w(D), dy(N * D);
    for (auto &v : x) v = 2.0f * hy_rng_normal(&r);
    for (auto &v : w) v = 1.0f + 0.2f * hy_rng_normal(&r);
    for (auto &v : dy) v = hy_rng_normal(&r);
    std::vector<float> y_ref(N * D), rstd_ref(N), dx_ref(N * D, 0.0f), dw_ref(D, 0.0f);
    rmsnorm_forward(y_ref.data(), rstd_ref.data(), x.data(), w.data(), N, D, 1e-6f);
    rmsnorm_backward(dx_ref.data(), dw_ref.data(), dy.data(), x.data(), w.data(), rstd_ref.data(), N, D);

    float *dx_in = to_device(x), *dw_in = to_device(w), *ddy = to_device(dy);
    float *dy_out, *drstd, *ddx, *ddw;
    CUDA_CHECK(cudaMalloc(&dy_out, N * D * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&drstd, N * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&ddx, N * D * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&ddw, D * sizeof(float)));
    CUDA_CHECK(cudaMemset(ddx, 0, N * D * sizeof(float)));
    CUDA_CHECK(cudaMemset(ddw, 0, D * sizeof(float)));
    rmsnorm_forward_cuda(dy_out, drstd, dx_in, dw_in, N, D, 1e-6f, 0);
    rmsnorm_backward_cuda(ddx, ddw, ddy, dx_in, dw_in, drstd, N, D, 0);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());
    int fail = close_enough("y", to_host(dy_out, N * D), y_ref, 1e-5f, 1e-5f) ||
               close_enough("dx", to_host(ddx, N * D), dx_ref, 1e-5f, 1e-5f) ||
               close_enough("dw", to_host(ddw, D), dw_ref, 1e-4f, 1e-4f);
    printf("rmsnorm_cuda N=%d D=%d %s\n", N, D, fail ? "FAIL" : "ok");
    for (float *p : {dx_in, dw_in, ddy, dy_out, drstd, ddx, ddw}) cudaFree(p);
    return fail;
}

int main() {
    int fail = 0;
    const int shapes[][2] = {{1, 1}, {3, 17}, {64, 3840}, {257, 96}, {100, 4097}};
    for (auto &s : shapes) fail |= run(s[0], s[1]);
    return fail;
}
