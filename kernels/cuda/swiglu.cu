// SwiGLU of the MLP: h = silu(gate)·up over (N, F) bf16, and its backward, in fp32 math.
//
// Pure streaming over the flat N·F elements (rows are contiguous, so the row structure does not
// matter): a grid-stride loop of 16-byte packs (8 bf16) with a scalar tail. silu(g) is evaluated
// as g / (1 + exp(−g)), the form torch uses, and σ(g) = 1 / (1 + exp(−g)); for very negative g
// the exponential overflows to inf and both correctly become (−)0. Backward:
//   dgate += dh·up·σ·(1 + g·(1 − σ)),   dup += dh·silu(g)
#include "kernel_util.cuh"

namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ void swiglu_fwd(float &h, float g, float u) { h = g / (1.0f + expf(-g)) * u; }

__device__ __forceinline__ void swiglu_bwd(float &dg, float &du, float dh, float g, float u) {
    const float s = 1.0f / (1.0f + expf(-g));
    dg += dh * u * s * (1.0f + g * (1.0f - s));
    du += dh * (g / (1.0f + expf(-g)));
}

template <int VEC>
__global__ void swiglu_forward_kernel(hy_bf16 *__restrict__ h, const hy_bf16 *__restrict__ gate,
                                      const hy_bf16 *__restrict__ up, size_t n) {
    const size_t nvec = n / VEC, stride = (size_t)gridDim.x * blockDim.x;
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (size_t i = tid; i < nvec; i += stride) {
        float g[VEC], u[VEC], o[VEC];
        hy::load_bf16<VEC>(g, gate + i * VEC);
        hy::load_bf16<VEC>(u, up + i * VEC);
#pragma unroll
        for (int k = 0; k < VEC; k++) swiglu_fwd(o[k], g[k], u[k]);
        hy::store_bf16<VEC>(h + i * VEC, o);
    }
    if (tid < n - nvec * VEC) {
        const size_t i = nvec * VEC + tid;
        float o;
        swiglu_fwd(o, __bfloat162float(gate[i]), __bfloat162float(up[i]));
        h[i] = __float2bfloat16_rn(o);
    }
}

// dgate or dup may be NULL (not needed).
template <int VEC>
__global__ void swiglu_backward_kernel(hy_bf16 *__restrict__ dgate, hy_bf16 *__restrict__ dup,
                                       const hy_bf16 *__restrict__ dh, const hy_bf16 *__restrict__ gate,
                                       const hy_bf16 *__restrict__ up, size_t n) {
    const size_t nvec = n / VEC, stride = (size_t)gridDim.x * blockDim.x;
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (size_t i = tid; i < nvec; i += stride) {
        float d[VEC], g[VEC], u[VEC], dg[VEC], du[VEC];
        hy::load_bf16<VEC>(d, dh + i * VEC);
        hy::load_bf16<VEC>(g, gate + i * VEC);
        hy::load_bf16<VEC>(u, up + i * VEC);
        if (dgate) hy::load_bf16<VEC>(dg, dgate + i * VEC);
        if (dup) hy::load_bf16<VEC>(du, dup + i * VEC);
#pragma unroll
        for (int k = 0; k < VEC; k++) {
            if (!dgate) dg[k] = 0.0f;
            if (!dup) du[k] = 0.0f;
            swiglu_bwd(dg[k], du[k], d[k], g[k], u[k]);
        }
        if (dgate) hy::store_bf16<VEC>(dgate + i * VEC, dg);
        if (dup) hy::store_bf16<VEC>(dup + i * VEC, du);
    }
    if (tid < n - nvec * VEC) {
        const size_t i = nvec * VEC + tid;
        float dg = dgate ? __bfloat162float(dgate[i]) : 0.0f, du = dup ? __bfloat162float(dup[i]) : 0.0f;
        swiglu_bwd(dg, du, __bfloat162float(dh[i]), __bfloat162float(gate[i]), __bfloat162float(up[i]));
        if (dgate) dgate[i] = __float2bfloat16_rn(dg);
        if (dup) dup[i] = __float2bfloat16_rn(du);
    }
}

}  // namespace

extern "C" void swiglu_forward_cuda(hy_bf16 *h, const hy_bf16 *gate, const hy_bf16 *up, int N, int F,
                                    cudaStream_t stream) {
    const size_t n = (size_t)(N > 0 ? N : 0) * (size_t)(F > 0 ? F : 0);
    if (n == 0) return;
    const int vec = hy::pick_vec(8, {{h, 2}, {gate, 2}, {up, 2}}, {});
    const unsigned blocks = hy::stream_blocks(n / vec, kThreads);
    if (vec == 8) swiglu_forward_kernel<8><<<blocks, kThreads, 0, stream>>>(h, gate, up, n);
    else if (vec == 4) swiglu_forward_kernel<4><<<blocks, kThreads, 0, stream>>>(h, gate, up, n);
    else if (vec == 2) swiglu_forward_kernel<2><<<blocks, kThreads, 0, stream>>>(h, gate, up, n);
    else swiglu_forward_kernel<1><<<blocks, kThreads, 0, stream>>>(h, gate, up, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void swiglu_backward_cuda(hy_bf16 *dgate, hy_bf16 *dup, const hy_bf16 *dh, const hy_bf16 *gate,
                                     const hy_bf16 *up, int N, int F, cudaStream_t stream) {
    const size_t n = (size_t)(N > 0 ? N : 0) * (size_t)(F > 0 ? F : 0);
    if (n == 0 || (!dgate && !dup)) return;
    const int vec = hy::pick_vec(8, {{dgate, 2}, {dup, 2}, {dh, 2}, {gate, 2}, {up, 2}}, {});
    const unsigned blocks = hy::stream_blocks(n / vec, kThreads);
    if (vec == 8) swiglu_backward_kernel<8><<<blocks, kThreads, 0, stream>>>(dgate, dup, dh, gate, up, n);
    else if (vec == 4) swiglu_backward_kernel<4><<<blocks, kThreads, 0, stream>>>(dgate, dup, dh, gate, up, n);
    else if (vec == 2) swiglu_backward_kernel<2><<<blocks, kThreads, 0, stream>>>(dgate, dup, dh, gate, up, n);
    else swiglu_backward_kernel<1><<<blocks, kThreads, 0, stream>>>(dgate, dup, dh, gate, up, n);
    CUDA_CHECK_LAUNCH();
}
