// L2 normalisation of rows (the GDN q and k over Dk = 96): y = x·r, r = (Σx² + eps)^(-1/2), the
// fla / HF form with eps inside the root, so a zero row maps to zero. bf16 x, y, dx; fp32 rnorm.
//
// Rows are short and numerous (N = T·H_k), so one warp owns a row: a warp-shuffle reduction, no
// block barriers, 8 rows per 256-thread block, 16-byte packs along the row; the second pass hits
// L1. Backward holds for any eps (it does not assume ‖y‖ = 1, which fails for tiny rows):
//   dx += r·dy − r³·(x·dy)·x
#include "kernel_util.cuh"

namespace {

constexpr int kThreads = 256, kRowsPerBlock = kThreads / 32;

template <int VEC>
__global__ void l2norm_forward_kernel(hy_bf16 *__restrict__ y, float *__restrict__ rnorm,
                                      const hy_bf16 *__restrict__ x, int N, int D, float eps) {
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
    const float r = 1.0f / sqrtf(hy::warp_sum(ss) + eps);
    for (int i = lane; i < nvec; i += 32) {
        float v[VEC];
        hy::load_bf16<VEC>(v, x + base + i * VEC);
#pragma unroll
        for (int k = 0; k < VEC; k++) v[k] *= r;
        hy::store_bf16<VEC>(y + base + i * VEC, v);
    }
    if (rnorm && lane == 0) rnorm[row] = r;
}

template <int VEC>
__global__ void l2norm_backward_kernel(hy_bf16 *__restrict__ dx, const hy_bf16 *__restrict__ dy,
                                       const hy_bf16 *__restrict__ x, const float *__restrict__ rnorm, int N, int D) {
    const long row = (long)blockIdx.x * kRowsPerBlock + threadIdx.x / 32;
    const int lane = threadIdx.x % 32, nvec = D / VEC;
    if (row >= N) return;
    const size_t base = (size_t)row * D;
    const float r = rnorm[row];
    float xdy = 0.0f;
    for (int i = lane; i < nvec; i += 32) {
        float g[VEC], v[VEC];
        hy::load_bf16<VEC>(g, dy + base + i * VEC);
        hy::load_bf16<VEC>(v, x + base + i * VEC);
#pragma unroll
        for (int k = 0; k < VEC; k++) xdy += v[k] * g[k];
    }
    const float c = r * r * r * hy::warp_sum(xdy);
    for (int i = lane; i < nvec; i += 32) {
        float g[VEC], v[VEC], o[VEC];
        hy::load_bf16<VEC>(g, dy + base + i * VEC);
        hy::load_bf16<VEC>(v, x + base + i * VEC);
        hy::load_bf16<VEC>(o, dx + base + i * VEC);
#pragma unroll
        for (int k = 0; k < VEC; k++) o[k] += r * g[k] - c * v[k];
        hy::store_bf16<VEC>(dx + base + i * VEC, o);
    }
}

unsigned row_blocks(int N) { return (unsigned)((N + kRowsPerBlock - 1) / kRowsPerBlock); }

}  // namespace

extern "C" void l2norm_forward_cuda(hy_bf16 *y, float *rnorm, const hy_bf16 *x, int N, int D, float eps,
                                    cudaStream_t stream) {
    if (N <= 0 || D <= 0) return;
    const int vec = hy::pick_vec(8, {{y, 2}, {x, 2}}, {D});
    const unsigned blocks = row_blocks(N);
    if (vec == 8) l2norm_forward_kernel<8><<<blocks, kThreads, 0, stream>>>(y, rnorm, x, N, D, eps);
    else if (vec == 4) l2norm_forward_kernel<4><<<blocks, kThreads, 0, stream>>>(y, rnorm, x, N, D, eps);
    else if (vec == 2) l2norm_forward_kernel<2><<<blocks, kThreads, 0, stream>>>(y, rnorm, x, N, D, eps);
    else l2norm_forward_kernel<1><<<blocks, kThreads, 0, stream>>>(y, rnorm, x, N, D, eps);
    CUDA_CHECK_LAUNCH();
}

extern "C" void l2norm_backward_cuda(hy_bf16 *dx, const hy_bf16 *dy, const hy_bf16 *x, const float *rnorm, int N,
                                     int D, cudaStream_t stream) {
    if (!dx || N <= 0 || D <= 0) return;
    const int vec = hy::pick_vec(8, {{dx, 2}, {dy, 2}, {x, 2}}, {D});
    const unsigned blocks = row_blocks(N);
    if (vec == 8) l2norm_backward_kernel<8><<<blocks, kThreads, 0, stream>>>(dx, dy, x, rnorm, N, D);
    else if (vec == 4) l2norm_backward_kernel<4><<<blocks, kThreads, 0, stream>>>(dx, dy, x, rnorm, N, D);
    else if (vec == 2) l2norm_backward_kernel<2><<<blocks, kThreads, 0, stream>>>(dx, dy, x, rnorm, N, D);
    else l2norm_backward_kernel<1><<<blocks, kThreads, 0, stream>>>(dx, dy, x, rnorm, N, D);
    CUDA_CHECK_LAUNCH();
}
