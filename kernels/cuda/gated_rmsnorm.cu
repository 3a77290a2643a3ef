// Gated RMSNorm (the GDN output norm): y = x·r·w·silu(z), r = (mean(x²) + eps)^(-1/2), over rows
// of D = Dv (192 in the model), one row per (token, value head), weight w shared by the heads.
// bf16 x, z, y and gradients; fp32 w, rstd, dw; fp32 math.
//
// Rows are short and numerous (N = T·H_v ≈ 250k at T = 8192), so each warp owns one row: the row
// reduction is a pure warp-shuffle sum, no block barriers, 8 rows per 256-thread block. The second
// pass re-reads the row from L1. Backward, with n = x·r and σ = sigmoid(z):
//   dz += dy·n·w·σ·(1 + z·(1 − σ))
//   dx += r·(dn − n·mean(dn·n)),  dn = dy·w·silu(z)
// dw (+= Σ_rows dy·n·silu(z)) is the clustered column sum of kernel_util.cuh: 12 tiles of 16
// columns at D = 192, the 8 blocks of each tile's cluster split the rows, and their partials add
// in rank order (deterministic). σ(z) is hy::fast_sigmoid (fast exponential, ~1e-6 relative);
// with it and 16-column tiles the backward at N = 245760 went from 0.66 to 0.52 ms on an H100.
#include "kernel_util.cuh"

namespace {

constexpr int kThreads = 256, kRowsPerBlock = kThreads / 32;

__device__ __forceinline__ float sigmoidf(float z) { return hy::fast_sigmoid(z); }

template <int VEC>
__global__ void gated_rmsnorm_forward_kernel(hy_bf16 *__restrict__ y, float *__restrict__ rstd,
                                             const hy_bf16 *__restrict__ x, const hy_bf16 *__restrict__ z,
                                             const float *__restrict__ w, int N, int D, float eps) {
    const long row = (long)blockIdx.x * kRowsPerBlock + threadIdx.x / 32;
    const int lane = threadIdx.x % 32, nvec = D / VEC;
    if (row >= N) return;
    const size_t base = (size_t)row * D;
    float ss = 0.0f;
    for (int i = lane; i < nvec; i += 32) {
        float v[VEC];
        hy::load_bf16<VEC>(v, x + base + i * VEC);
#pragma unroll
        for (int k = 0; k < VEC; k++) ss += v[k] * v[k];
    }
    const float r = 1.0f / sqrtf(hy::warp_sum(ss) / D + eps);
    for (int i = lane; i < nvec; i += 32) {
        float v[VEC], zv[VEC], wv[VEC];
        hy::load_bf16<VEC>(v, x + base + i * VEC);
        hy::load_bf16<VEC>(zv, z + base + i * VEC);
        hy::load_f32<VEC>(wv, w + i * VEC);
#pragma unroll
        for (int k = 0; k < VEC; k++) v[k] = v[k] * r * wv[k] * (zv[k] * sigmoidf(zv[k]));
        hy::store_bf16<VEC>(y + base + i * VEC, v);
    }
    if (rstd && lane == 0) rstd[row] = r;
}

template <int VEC>
__global__ void gated_rmsnorm_backward_kernel(hy_bf16 *__restrict__ dx, hy_bf16 *__restrict__ dz,
                                              const hy_bf16 *__restrict__ dy, const hy_bf16 *__restrict__ x,
                                              const hy_bf16 *__restrict__ z, const float *__restrict__ w,
                                              const float *__restrict__ rstd, int N, int D) {
    const long row = (long)blockIdx.x * kRowsPerBlock + threadIdx.x / 32;
    const int lane = threadIdx.x % 32, nvec = D / VEC;
    if (row >= N) return;
    const size_t base = (size_t)row * D;
    const float r = rstd[row];
    float mean = 0.0f;
    if (dx) {
        float dot = 0.0f;
        for (int i = lane; i < nvec; i += 32) {
            float g[VEC], v[VEC], zv[VEC], wv[VEC];
            hy::load_bf16<VEC>(g, dy + base + i * VEC);
            hy::load_bf16<VEC>(v, x + base + i * VEC);
            hy::load_bf16<VEC>(zv, z + base + i * VEC);
            hy::load_f32<VEC>(wv, w + i * VEC);
#pragma unroll
            for (int k = 0; k < VEC; k++) dot += g[k] * wv[k] * (zv[k] * sigmoidf(zv[k])) * (v[k] * r);
        }
        mean = hy::warp_sum(dot) / D;
    }
    for (int i = lane; i < nvec; i += 32) {
        float g[VEC], v[VEC], zv[VEC], wv[VEC];
        hy::load_bf16<VEC>(g, dy + base + i * VEC);
        hy::load_bf16<VEC>(v, x + base + i * VEC);
        hy::load_bf16<VEC>(zv, z + base + i * VEC);
        hy::load_f32<VEC>(wv, w + i * VEC);
        float s[VEC];
#pragma unroll
        for (int k = 0; k < VEC; k++) s[k] = sigmoidf(zv[k]);
        if (dz) {
            float o[VEC];
            hy::load_bf16<VEC>(o, dz + base + i * VEC);
#pragma unroll
            for (int k = 0; k < VEC; k++) o[k] += g[k] * (v[k] * r) * wv[k] * s[k] * (1.0f + zv[k] * (1.0f - s[k]));
            hy::store_bf16<VEC>(dz + base + i * VEC, o);
        }
        if (dx) {
            float o[VEC];
            hy::load_bf16<VEC>(o, dx + base + i * VEC);
#pragma unroll
            for (int k = 0; k < VEC; k++) {
                const float dn = g[k] * wv[k] * (zv[k] * s[k]);
                o[k] += r * (dn - v[k] * r * mean);
            }
            hy::store_bf16<VEC>(dx + base + i * VEC, o);
        }
    }
}

// dw term of row n: dy·(x·r)·silu(z).
struct gated_dw_term {
    const hy_bf16 *dy, *x, *z;
    const float *rstd;
    int D;
    template <int VEC>
    __device__ __forceinline__ void operator()(float (&acc)[VEC], int n, int col) const {
        float g[VEC], v[VEC], zv[VEC];
        const size_t off = (size_t)n * D + col;
        hy::load_bf16<VEC>(g, dy + off);
        hy::load_bf16<VEC>(v, x + off);
        hy::load_bf16<VEC>(zv, z + off);
        const float r = rstd[n];
#pragma unroll
        for (int k = 0; k < VEC; k++) acc[k] += g[k] * (v[k] * r) * (zv[k] * sigmoidf(zv[k]));
    }
};

unsigned row_blocks(int N) { return (unsigned)((N + kRowsPerBlock - 1) / kRowsPerBlock); }

}  // namespace

extern "C" void gated_rmsnorm_forward_cuda(hy_bf16 *y, float *rstd, const hy_bf16 *x, const hy_bf16 *z,
                                           const float *w, int N, int D, float eps, cudaStream_t stream) {
    if (N <= 0 || D <= 0) return;
    const int vec = hy::pick_vec(8, {{y, 2}, {x, 2}, {z, 2}, {w, 4}}, {D});
    const unsigned blocks = row_blocks(N);
    if (vec == 8) gated_rmsnorm_forward_kernel<8><<<blocks, kThreads, 0, stream>>>(y, rstd, x, z, w, N, D, eps);
    else if (vec == 4) gated_rmsnorm_forward_kernel<4><<<blocks, kThreads, 0, stream>>>(y, rstd, x, z, w, N, D, eps);
    else if (vec == 2) gated_rmsnorm_forward_kernel<2><<<blocks, kThreads, 0, stream>>>(y, rstd, x, z, w, N, D, eps);
    else gated_rmsnorm_forward_kernel<1><<<blocks, kThreads, 0, stream>>>(y, rstd, x, z, w, N, D, eps);
    CUDA_CHECK_LAUNCH();
}

extern "C" void gated_rmsnorm_backward_cuda(hy_bf16 *dx, hy_bf16 *dz, float *dw, const hy_bf16 *dy,
                                            const hy_bf16 *x, const hy_bf16 *z, const float *w, const float *rstd,
                                            int N, int D, cudaStream_t stream) {
    if (N <= 0 || D <= 0) return;
    if (dx || dz) {
        const int vec = hy::pick_vec(8, {{dx, 2}, {dz, 2}, {dy, 2}, {x, 2}, {z, 2}, {w, 4}}, {D});
        const unsigned blocks = row_blocks(N);
        if (vec == 8) gated_rmsnorm_backward_kernel<8><<<blocks, kThreads, 0, stream>>>(dx, dz, dy, x, z, w, rstd, N, D);
        else if (vec == 4) gated_rmsnorm_backward_kernel<4><<<blocks, kThreads, 0, stream>>>(dx, dz, dy, x, z, w, rstd, N, D);
        else if (vec == 2) gated_rmsnorm_backward_kernel<2><<<blocks, kThreads, 0, stream>>>(dx, dz, dy, x, z, w, rstd, N, D);
        else gated_rmsnorm_backward_kernel<1><<<blocks, kThreads, 0, stream>>>(dx, dz, dy, x, z, w, rstd, N, D);
        CUDA_CHECK_LAUNCH();
    }
    if (dw) {
        const gated_dw_term term{dy, x, z, rstd, D};
        if (hy::pick_vec(2, {{dy, 2}, {x, 2}, {z, 2}}, {D}) == 2) hy::launch_column_grad<2>(dw, term, N, D, stream);
        else hy::launch_column_grad<1>(dw, term, N, D, stream);
    }
}
