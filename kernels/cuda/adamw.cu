// AdamW on fp32 master parameters with the bf16 working copy written in the same pass, and the
// two gradient-clipping helpers (Σ g² into a device double, g *= coef).
//
// adamw_step_cuda reproduces kernels/cpu/adamw.c (torch.optim.AdamW, single-tensor path)
// operation by operation, so GPU and CPU results are bit-identical: the scalar factors are formed
// on the host in double exactly as the CPU code forms them (PyTorch holds hyperparameters as Python
// floats) and rounded to float once; the kernel then uses explicit round-to-nearest intrinsics
// (__fmul_rn, __fdiv_rn, __fsqrt_rn, ...) and fmaf exactly where the CPU code fuses, so neither
// nvcc's automatic mul-add contraction nor --use_fast_math can change a rounding step:
//   p = p·decay;  m = fma(w, g − m, m) (or fma(w − 1, g − m, g) when w ≥ 0.5, torch's lerp);
//   v = fma((1 − β2)·g, g, v·β2);  p = p + (−step_size·m) / (sqrt(v) / sqrt(bc2) + eps)
// It is a grid-stride stream over float4 packs of p, m, v, grad (four fp32 reads, three fp32
// writes and one bf16 write per element), with a scalar tail and a scalar path for offset pointers.
//
// grad_sumsq accumulates exact fp32 squares in double per thread, reduces each block in double and
// adds one double per block with atomicAdd. The order of those block additions varies, so the sum
// can differ from run to run in its last double bits (~1e-16 relative) — far below the fp32
// clip coefficient it feeds; an exactly reproducible order would need a workspace.
#include "kernel_util.cuh"

#include <math.h>

namespace {

constexpr int kThreads = 256;

struct adamw_scalars {
    float decay, w, w_minus_1, b2, one_minus_b2, neg_step_size, bc2_sqrt, eps;
    int apply_decay, small_weight;
};

__device__ __forceinline__ void adamw_update(float &p, float &m, float &v, float g, const adamw_scalars &s) {
    if (s.apply_decay) p = __fmul_rn(p, s.decay);
    const float diff = __fsub_rn(g, m);
    m = s.small_weight ? __fmaf_rn(s.w, diff, m) : __fmaf_rn(s.w_minus_1, diff, g);
    v = __fmaf_rn(__fmul_rn(s.one_minus_b2, g), g, __fmul_rn(v, s.b2));
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), s.bc2_sqrt), s.eps);
    p = __fadd_rn(p, __fdiv_rn(__fmul_rn(s.neg_step_size, m), denom));
}

template <int VEC>
__global__ void adamw_kernel(float *__restrict__ p, hy_bf16 *__restrict__ p_bf16, float *__restrict__ m,
                             float *__restrict__ v, const float *__restrict__ grad, size_t n, adamw_scalars s) {
    const size_t nvec = n / VEC, stride = (size_t)gridDim.x * blockDim.x;
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (size_t i = tid; i < nvec; i += stride) {
        float pv[VEC], mv[VEC], vv[VEC], gv[VEC];
        hy::load_f32<VEC>(pv, p + i * VEC);
        hy::load_f32<VEC>(mv, m + i * VEC);
        hy::load_f32<VEC>(vv, v + i * VEC);
        hy::load_f32<VEC>(gv, grad + i * VEC);
#pragma unroll
        for (int k = 0; k < VEC; k++) adamw_update(pv[k], mv[k], vv[k], gv[k], s);
        hy::store_f32<VEC>(p + i * VEC, pv);
        hy::store_f32<VEC>(m + i * VEC, mv);
        hy::store_f32<VEC>(v + i * VEC, vv);
        if (p_bf16) hy::store_bf16<VEC>(p_bf16 + i * VEC, pv);
    }
    if (tid < n - nvec * VEC) {
        const size_t i = nvec * VEC + tid;
        float pv = p[i], mv = m[i], vv = v[i];
        adamw_update(pv, mv, vv, grad[i], s);
        p[i] = pv, m[i] = mv, v[i] = vv;
        if (p_bf16) p_bf16[i] = __float2bfloat16_rn(pv);
    }
}

template <int VEC>
__global__ void grad_sumsq_kernel(double *sumsq, const float *__restrict__ g, size_t n) {
    const size_t nvec = n / VEC, stride = (size_t)gridDim.x * blockDim.x;
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    double s = 0.0;
    for (size_t i = tid; i < nvec; i += stride) {
        float x[VEC];
        hy::load_f32<VEC>(x, g + i * VEC);
#pragma unroll
        for (int k = 0; k < VEC; k++) s = fma((double)x[k], (double)x[k], s);  // x² is exact in double
    }
    if (tid < n - nvec * VEC) s = fma((double)g[nvec * VEC + tid], (double)g[nvec * VEC + tid], s);
    s = hy::block_sum(s);
    if (threadIdx.x == 0) atomicAdd(sumsq, s);
}

template <int VEC>
__global__ void grad_scale_kernel(float *__restrict__ g, size_t n, float coef) {
    const size_t nvec = n / VEC, stride = (size_t)gridDim.x * blockDim.x;
    const size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (size_t i = tid; i < nvec; i += stride) {
        float x[VEC];
        hy::load_f32<VEC>(x, g + i * VEC);
#pragma unroll
        for (int k = 0; k < VEC; k++) x[k] = __fmul_rn(x[k], coef);
        hy::store_f32<VEC>(g + i * VEC, x);
    }
    if (tid < n - nvec * VEC) g[nvec * VEC + tid] = __fmul_rn(g[nvec * VEC + tid], coef);
}

}  // namespace

extern "C" void adamw_step_cuda(float *p, hy_bf16 *p_bf16, float *m, float *v, const float *grad, size_t n,
                                adamw_params hp, int step, int apply_decay, cudaStream_t stream) {
    if (n == 0) return;
    // The scalars exactly as adamw_step (kernels/cpu/adamw.c) forms them.
    const double lr = hp.lr, beta1 = hp.beta1, beta2 = hp.beta2;
    const double wd = apply_decay ? hp.weight_decay : 0.0;
    adamw_scalars s;
    s.decay = (float)(1.0 - lr * wd);
    s.apply_decay = wd != 0.0;
    s.w = (float)(1.0 - beta1);
    s.w_minus_1 = s.w - 1.0f;
    s.small_weight = fabsf(s.w) < 0.5f;
    s.b2 = (float)beta2;
    s.one_minus_b2 = (float)(1.0 - beta2);
    const double bias_correction1 = 1.0 - pow(beta1, step);
    const double bias_correction2 = 1.0 - pow(beta2, step);
    s.neg_step_size = (float)-(lr / bias_correction1);
    s.bc2_sqrt = (float)sqrt(bias_correction2);
    s.eps = (float)hp.eps;
    const bool wide = hy::pick_vec(4, {{p, 4}, {m, 4}, {v, 4}, {grad, 4}, {p_bf16, 2}}, {}) == 4;
    if (wide) adamw_kernel<4><<<hy::stream_blocks(n / 4, kThreads), kThreads, 0, stream>>>(p, p_bf16, m, v, grad, n, s);
    else adamw_kernel<1><<<hy::stream_blocks(n, kThreads), kThreads, 0, stream>>>(p, p_bf16, m, v, grad, n, s);
    CUDA_CHECK_LAUNCH();
}

extern "C" void grad_sumsq_cuda(double *sumsq, const float *g, size_t n, cudaStream_t stream) {
    if (n == 0) return;
    if (hy::aligned(g, 16)) grad_sumsq_kernel<4><<<hy::stream_blocks(n / 4, kThreads), kThreads, 0, stream>>>(sumsq, g, n);
    else grad_sumsq_kernel<1><<<hy::stream_blocks(n, kThreads), kThreads, 0, stream>>>(sumsq, g, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void grad_scale_cuda(float *g, size_t n, float coef, cudaStream_t stream) {
    if (n == 0) return;
    if (hy::aligned(g, 16)) grad_scale_kernel<4><<<hy::stream_blocks(n / 4, kThreads), kThreads, 0, stream>>>(g, n, coef);
    else grad_scale_kernel<1><<<hy::stream_blocks(n, kThreads), kThreads, 0, stream>>>(g, n, coef);
    CUDA_CHECK_LAUNCH();
}
