// GDN gates on the GPU: β = sigmoid(b) (×2 when allow_neg_eigval) and g = −exp(A_log)·softplus(a +
// dt_bias), per token and value head, from bf16 projections b, a (T, H) and fp32 A_log, dt_bias (H);
// β and g are fp32. softplus follows torch (threshold 20: the identity above it, with gradient
// exactly 1 there), as the CPU reference does.
//
// Forward is elementwise (grid-stride, one element per thread). Backward computes db and da
// elementwise and sums, over all T tokens, dA_log = Σ_t dg·g (∂g/∂A_log = g) and
// ddt_bias = Σ_t dg·(−A)·softplus'(a + dt_bias) (the same term as da). Those sums use the clustered column pattern of kernel_util.cuh: a block covers
// up to 32 heads × 16 row lanes, the (at most 8) blocks of a cluster split the tokens, partials
// add in a fixed order, so dA_log and ddt_bias are bitwise reproducible. The whole op moves a few
// MB, so the 8-SM cluster is not a bottleneck worth a workspace.
#include "kernel_util.cuh"

namespace {

constexpr int kThreads = 256;
constexpr int kHeadLanes = 32, kRowLanes = 16;
constexpr float kSoftplusThreshold = 20.0f;

__device__ __forceinline__ float softplus(float x) { return x > kSoftplusThreshold ? x : log1pf(expf(x)); }
__device__ __forceinline__ float softplus_grad(float x) {
    return x > kSoftplusThreshold ? 1.0f : 1.0f / (1.0f + expf(-x));
}
__device__ __forceinline__ float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

__global__ void gdn_gates_forward_kernel(float *__restrict__ beta, float *__restrict__ g,
                                         const hy_bf16 *__restrict__ b, const hy_bf16 *__restrict__ a,
                                         const float *__restrict__ A_log, const float *__restrict__ dt_bias,
                                         size_t n, int H, float beta_scale) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        const int h = (int)(i % H);
        if (beta) beta[i] = beta_scale * sigmoidf(__bfloat162float(b[i]));
        if (g) g[i] = -expf(A_log[h]) * softplus(__bfloat162float(a[i]) + dt_bias[h]);
    }
}

// Block (kHeadLanes, kRowLanes); grid (head tiles, cluster of token chunks).
__global__ void __launch_bounds__(kHeadLanes *kRowLanes)
    gdn_gates_backward_kernel(hy_bf16 *__restrict__ db, hy_bf16 *__restrict__ da, float *dA_log, float *ddt_bias,
                              const float *__restrict__ dbeta, const float *__restrict__ dg,
                              const hy_bf16 *__restrict__ b, const hy_bf16 *__restrict__ a,
                              const float *__restrict__ A_log, const float *__restrict__ dt_bias, int T, int H,
                              float beta_scale) {
    __shared__ float part[kRowLanes][2 * kHeadLanes];
    __shared__ float tile[2 * kHeadLanes];  // dA_log of the tile's heads, then ddt_bias
    const int h = blockIdx.x * kHeadLanes + threadIdx.x;
    const long chunk = ((long)T + gridDim.y - 1) / gridDim.y;
    const long t0 = blockIdx.y * chunk, t1 = min((long)T, t0 + chunk);
    float acc_A = 0.0f, acc_dt = 0.0f;
    if (h < H) {
        const float A = expf(A_log[h]), bias = dt_bias[h];
#pragma unroll 4
        for (long t = t0 + threadIdx.y; t < t1; t += kRowLanes) {
            const size_t i = (size_t)t * H + h;
            if (db && dbeta) {
                const float s = sigmoidf(__bfloat162float(b[i]));
                db[i] = __float2bfloat16_rn(__bfloat162float(db[i]) + dbeta[i] * beta_scale * s * (1.0f - s));
            }
            if (dg) {
                const float x = __bfloat162float(a[i]) + bias;
                acc_A += dg[i] * (-A * softplus(x));
                const float dx = dg[i] * -A * softplus_grad(x);
                if (da) da[i] = __float2bfloat16_rn(__bfloat162float(da[i]) + dx);
                acc_dt += dx;
            }
        }
    }
    part[threadIdx.y][threadIdx.x] = acc_A;
    part[threadIdx.y][kHeadLanes + threadIdx.x] = acc_dt;
    __syncthreads();
    if (threadIdx.y == 0) {
        for (int k = threadIdx.x; k < 2 * kHeadLanes; k += kHeadLanes) {
            float s = 0.0f;
            for (int r = 0; r < kRowLanes; r++) s += part[r][k];
            tile[k] = s;
        }
    }
    const int h0 = blockIdx.x * kHeadLanes;
    hy::cluster_sum_columns(tile, 2 * kHeadLanes, [&](int k, float s) {
        const int hh = h0 + k % kHeadLanes;
        if (hh >= H) return;
        float *dst = k < kHeadLanes ? dA_log : ddt_bias;
        if (dst) dst[hh] += s;
    });
}

}  // namespace

extern "C" void gdn_gates_forward_cuda(float *beta, float *g, const hy_bf16 *b, const hy_bf16 *a, const float *A_log,
                                       const float *dt_bias, int T, int H, int allow_neg_eigval, cudaStream_t stream) {
    const size_t n = (size_t)(T > 0 ? T : 0) * (size_t)(H > 0 ? H : 0);
    if (n == 0 || (!beta && !g)) return;
    gdn_gates_forward_kernel<<<hy::stream_blocks(n, kThreads), kThreads, 0, stream>>>(
        beta, g, b, a, A_log, dt_bias, n, H, allow_neg_eigval ? 2.0f : 1.0f);
    CUDA_CHECK_LAUNCH();
}

extern "C" void gdn_gates_backward_cuda(hy_bf16 *db, hy_bf16 *da, float *dA_log, float *ddt_bias, const float *dbeta,
                                        const float *dg, const hy_bf16 *b, const hy_bf16 *a, const float *A_log,
                                        const float *dt_bias, int T, int H, int allow_neg_eigval,
                                        cudaStream_t stream) {
    if (T <= 0 || H <= 0) return;
    const bool beta_part = db && dbeta, g_part = dg && (da || dA_log || ddt_bias);
    if (!beta_part && !g_part) return;
    const long tiles = (H + kHeadLanes - 1) / kHeadLanes;
    const unsigned cs = hy::cluster_blocks(tiles, ((long)T + kRowLanes - 1) / kRowLanes);
    hy::launch_clustered(gdn_gates_backward_kernel, (unsigned)tiles, cs, dim3(kHeadLanes, kRowLanes), stream,
                         beta_part ? db : nullptr, da, dA_log, ddt_bias, dbeta, g_part ? dg : nullptr, b, a, A_log,
                         dt_bias, T, H, allow_neg_eigval ? 2.0f : 1.0f);
}
