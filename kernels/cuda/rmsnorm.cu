// RMSNorm over rows of D (the model's pre-norms, D = C = 3840): bf16 activations, fp32 weight,
// fp32 rstd, fp32 math; and the residual add fused in front of it.
//
// Forward / dx: one block per row, enough threads that each holds about one 16-byte pack of the
// row; Σx² (forward) and Σ dy·w·x (backward) are block reductions (warp shuffles, then one
// shared-memory pass). The second pass over the row re-reads it, which hits L1: the row was just
// read by the same block, so DRAM sees each input once.
//   y = w·(x·r),  r = (mean(x²) + eps)^(-1/2)
//   dx += r·w·dy − x·(r³/D)·Σ dy·w·x
// dw (fp32, += Σ_rows dy·x·r) is a separate column-sum kernel (kernel_util.cuh): blocks own
// 32-column tiles and walk rows; the up-to-8 blocks sharing a tile form a cluster and add their
// partials in rank order, so dw is bitwise reproducible. Fusing dw into the row kernel would save
// one read of dy and x but needs atomics across rows (nondeterministic) or a workspace.
//
// residual_rmsnorm_forward writes h = bf16(x + r) and normalises that rounded h, the value the
// backward (and the next residual add) will see, so forward and backward agree exactly.
#include "kernel_util.cuh"

namespace {

template <int VEC, bool RESIDUAL>
__global__ void rmsnorm_forward_kernel(hy_bf16 *h, hy_bf16 *__restrict__ y, float *__restrict__ rstd,
                                       const hy_bf16 *x, const hy_bf16 *r, const float *__restrict__ w, int D,
                                       float eps) {
    const size_t row = (size_t)blockIdx.x * D;
    const int nvec = D / VEC;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < nvec; i += blockDim.x) {
        float v[VEC];
        hy::load_bf16<VEC>(v, x + row + i * VEC);
        if (RESIDUAL) {
            float u[VEC];
            hy::load_bf16<VEC>(u, r + row + i * VEC);
#pragma unroll
            for (int k = 0; k < VEC; k++) v[k] = __bfloat162float(__float2bfloat16_rn(v[k] + u[k]));
            hy::store_bf16<VEC>(h + row + i * VEC, v);
        }
#pragma unroll
        for (int k = 0; k < VEC; k++) ss += v[k] * v[k];
    }
    const float rs = 1.0f / sqrtf(hy::block_sum(ss) / D + eps);
    const hy_bf16 *src = RESIDUAL ? h : x;  // each thread re-reads exactly the packs it wrote
    for (int i = threadIdx.x; i < nvec; i += blockDim.x) {
        float v[VEC], wv[VEC];
        hy::load_bf16<VEC>(v, src + row + i * VEC);
        hy::load_f32<VEC>(wv, w + i * VEC);
#pragma unroll
        for (int k = 0; k < VEC; k++) v[k] = wv[k] * (v[k] * rs);
        hy::store_bf16<VEC>(y + row + i * VEC, v);
    }
    if (rstd && threadIdx.x == 0) rstd[blockIdx.x] = rs;
}

template <int VEC>
__global__ void rmsnorm_backward_dx_kernel(hy_bf16 *__restrict__ dx, const hy_bf16 *__restrict__ dy,
                                           const hy_bf16 *__restrict__ x, const float *__restrict__ w,
                                           const float *__restrict__ rstd, int D) {
    const size_t row = (size_t)blockIdx.x * D;
    const int nvec = D / VEC;
    const float r = rstd[blockIdx.x];
    float dot = 0.0f;
    for (int i = threadIdx.x; i < nvec; i += blockDim.x) {
        float g[VEC], v[VEC], wv[VEC];
        hy::load_bf16<VEC>(g, dy + row + i * VEC);
        hy::load_bf16<VEC>(v, x + row + i * VEC);
        hy::load_f32<VEC>(wv, w + i * VEC);
#pragma unroll
        for (int k = 0; k < VEC; k++) dot += g[k] * wv[k] * v[k];
    }
    const float c = hy::block_sum(dot) * r * r * r / D;
    for (int i = threadIdx.x; i < nvec; i += blockDim.x) {
        float g[VEC], v[VEC], wv[VEC], d[VEC];
        hy::load_bf16<VEC>(g, dy + row + i * VEC);
        hy::load_bf16<VEC>(v, x + row + i * VEC);
        hy::load_f32<VEC>(wv, w + i * VEC);
        hy::load_bf16<VEC>(d, dx + row + i * VEC);
#pragma unroll
        for (int k = 0; k < VEC; k++) d[k] += r * wv[k] * g[k] - c * v[k];
        hy::store_bf16<VEC>(dx + row + i * VEC, d);
    }
}

// dw term of row n: dy·x·r.
struct rms_dw_term {
    const hy_bf16 *dy, *x;
    const float *rstd;
    int D;
    template <int VEC>
    __device__ __forceinline__ void operator()(float (&acc)[VEC], int n, int col) const {
        float g[VEC], v[VEC];
        hy::load_bf16<VEC>(g, dy + (size_t)n * D + col);
        hy::load_bf16<VEC>(v, x + (size_t)n * D + col);
        const float r = rstd[n];
#pragma unroll
        for (int k = 0; k < VEC; k++) acc[k] += g[k] * v[k] * r;
    }
};

int row_threads(int nvec) {
    const int t = (nvec + 31) / 32 * 32;
    return t < 32 ? 32 : (t > 1024 ? 1024 : t);
}

template <bool RESIDUAL>
void launch_forward(hy_bf16 *h, hy_bf16 *y, float *rstd, const hy_bf16 *x, const hy_bf16 *r, const float *w, int N,
                    int D, float eps, cudaStream_t stream) {
    if (N <= 0 || D <= 0) return;
    const int vec = hy::pick_vec(8, {{h, 2}, {y, 2}, {x, 2}, {r, 2}, {w, 4}}, {D});
    const int threads = row_threads(D / vec);
    if (vec == 8) rmsnorm_forward_kernel<8, RESIDUAL><<<N, threads, 0, stream>>>(h, y, rstd, x, r, w, D, eps);
    else if (vec == 4) rmsnorm_forward_kernel<4, RESIDUAL><<<N, threads, 0, stream>>>(h, y, rstd, x, r, w, D, eps);
    else if (vec == 2) rmsnorm_forward_kernel<2, RESIDUAL><<<N, threads, 0, stream>>>(h, y, rstd, x, r, w, D, eps);
    else rmsnorm_forward_kernel<1, RESIDUAL><<<N, threads, 0, stream>>>(h, y, rstd, x, r, w, D, eps);
    CUDA_CHECK_LAUNCH();
}

}  // namespace

extern "C" void rmsnorm_forward_cuda(hy_bf16 *y, float *rstd, const hy_bf16 *x, const float *w, int N, int D,
                                     float eps, cudaStream_t stream) {
    launch_forward<false>(nullptr, y, rstd, x, nullptr, w, N, D, eps, stream);
}

extern "C" void residual_rmsnorm_forward_cuda(hy_bf16 *h, hy_bf16 *y, float *rstd, const hy_bf16 *x,
                                              const hy_bf16 *r, const float *w, int N, int D, float eps,
                                              cudaStream_t stream) {
    launch_forward<true>(h, y, rstd, x, r, w, N, D, eps, stream);
}

extern "C" void rmsnorm_backward_cuda(hy_bf16 *dx, float *dw, const hy_bf16 *dy, const hy_bf16 *x, const float *w,
                                      const float *rstd, int N, int D, cudaStream_t stream) {
    if (N <= 0 || D <= 0) return;
    if (dx) {
        const int vec = hy::pick_vec(8, {{dx, 2}, {dy, 2}, {x, 2}, {w, 4}}, {D});
        const int threads = row_threads(D / vec);
        if (vec == 8) rmsnorm_backward_dx_kernel<8><<<N, threads, 0, stream>>>(dx, dy, x, w, rstd, D);
        else if (vec == 4) rmsnorm_backward_dx_kernel<4><<<N, threads, 0, stream>>>(dx, dy, x, w, rstd, D);
        else if (vec == 2) rmsnorm_backward_dx_kernel<2><<<N, threads, 0, stream>>>(dx, dy, x, w, rstd, D);
        else rmsnorm_backward_dx_kernel<1><<<N, threads, 0, stream>>>(dx, dy, x, w, rstd, D);
        CUDA_CHECK_LAUNCH();
    }
    if (dw) {
        const rms_dw_term term{dy, x, rstd, D};
        if (hy::pick_vec(2, {{dy, 2}, {x, 2}}, {D}) == 2) hy::launch_column_grad<2>(dw, term, N, D, stream);
        else hy::launch_column_grad<1>(dw, term, N, D, stream);
    }
}
