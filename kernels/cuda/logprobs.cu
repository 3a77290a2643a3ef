// Token log-probabilities over fp32 logit rows (V up to ~100k), and their backward into bf16
// dlogits (the input of the lm_head backward GEMMs).
//
// Forward: one block per row, a single pass over the row with an online log-sum-exp: each thread
// keeps a running max m and Σ exp(x − m), rescaling the sum when its max grows; the per-thread
// (m, s) pairs are merged through a block max and a block sum. A two-pass max-then-sum would read
// every row twice (rows in flight exceed L2, so the second read comes from DRAM). The exponentials
// are fp32, their sums are double, as in the CPU reference (100k fp32 terms would drift by ~1e-4
// relative), and logp = x[target] − lse is formed in double and rounded once. Only the given rows
// are touched; nothing of size V is materialised.
// Backward: dlogits[n] += dlogp[n]·(onehot(target) − exp(x − lse)) with the saved lse; a 2-D grid
// (rows × segments of the row) of 16-byte packs, since this pass is pure streaming.
// A target outside [−1, V) is a bug upstream; as on the CPU, it stops the program (device trap)
// instead of reading past the row.
#include <cstdio>

#include "kernel_util.cuh"

namespace {

constexpr int kForwardThreads = 1024, kBackwardThreads = 256, kBackwardItems = 8;

__device__ __forceinline__ void check_target(int32_t tgt, long n, int V) {
    if (tgt < -1 || tgt >= V) {
        printf("logprobs: target %d of row %ld outside [-1, %d)\n", (int)tgt, n, V);
        __trap();
    }
}

template <int VEC>
__global__ void __launch_bounds__(kForwardThreads)
    logprobs_forward_kernel(float *__restrict__ logp, float *__restrict__ lse, const float *__restrict__ logits,
                            const int32_t *__restrict__ targets, int V) {
    const long n = blockIdx.x;
    const float *x = logits + (size_t)n * V;
    const int nvec = V / VEC;
    float m = -INFINITY;
    double s = 0.0;
#pragma unroll 4
    for (int i = threadIdx.x; i < nvec; i += blockDim.x) {
        float v[VEC];
        hy::load_f32<VEC>(v, x + (size_t)i * VEC);
        float mx = v[0];
#pragma unroll
        for (int k = 1; k < VEC; k++) mx = fmaxf(mx, v[k]);
        if (mx > m) {
            s *= (double)expf(m - mx);
            m = mx;
        }
#pragma unroll
        for (int k = 0; k < VEC; k++) s += (double)expf(v[k] - m);
    }
    const float M = hy::block_reduce(m, hy::op_max(), -INFINITY);
    s *= (double)expf(m - M);  // threads that saw no element: m = −inf, s = 0, factor 0
    const double total = hy::block_sum(s);
    if (threadIdx.x == 0) {
        const double l = (double)M + log(total);
        const int32_t tgt = targets[n];
        check_target(tgt, n, V);
        if (lse) lse[n] = (float)l;
        if (logp) logp[n] = tgt < 0 ? 0.0f : (float)((double)x[tgt] - l);
    }
}

// Grid (N rows, segments); each thread handles kBackwardItems packs per segment stride.
template <int VEC>
__global__ void logprobs_backward_kernel(hy_bf16 *__restrict__ dlogits, const float *__restrict__ dlogp,
                                         const float *__restrict__ logits, const float *__restrict__ lse,
                                         const int32_t *__restrict__ targets, int V) {
    const long n = blockIdx.x;
    const int32_t tgt = targets[n];
    check_target(tgt, n, V);
    if (tgt < 0) return;
    const float g = dlogp[n], l = lse[n];
    const float *x = logits + (size_t)n * V;
    hy_bf16 *d = dlogits + (size_t)n * V;
    const int nvec = V / VEC;
    for (int i = blockIdx.y * blockDim.x + threadIdx.x; i < nvec; i += gridDim.y * blockDim.x) {
        float xv[VEC], dv[VEC];
        hy::load_f32<VEC>(xv, x + (size_t)i * VEC);
        hy::load_bf16<VEC>(dv, d + (size_t)i * VEC);
#pragma unroll
        for (int k = 0; k < VEC; k++) {
            dv[k] -= g * expf(xv[k] - l);
            if (i * VEC + k == tgt) dv[k] += g;
        }
        hy::store_bf16<VEC>(d + (size_t)i * VEC, dv);
    }
}

}  // namespace

extern "C" void logprobs_forward_cuda(float *logp, float *lse, const float *logits, const int32_t *targets, int N,
                                      int V, cudaStream_t stream) {
    if (N <= 0 || V <= 0 || (!logp && !lse)) return;
    const int vec = hy::pick_vec(4, {{logits, 4}}, {V});
    if (vec == 4) logprobs_forward_kernel<4><<<N, kForwardThreads, 0, stream>>>(logp, lse, logits, targets, V);
    else if (vec == 2) logprobs_forward_kernel<2><<<N, kForwardThreads, 0, stream>>>(logp, lse, logits, targets, V);
    else logprobs_forward_kernel<1><<<N, kForwardThreads, 0, stream>>>(logp, lse, logits, targets, V);
    CUDA_CHECK_LAUNCH();
}

extern "C" void logprobs_backward_cuda(hy_bf16 *dlogits, const float *dlogp, const float *logits, const float *lse,
                                       const int32_t *targets, int N, int V, cudaStream_t stream) {
    if (!dlogits || N <= 0 || V <= 0) return;
    const int vec = hy::pick_vec(8, {{dlogits, 2}, {logits, 4}}, {V});
    const long per_block = (long)kBackwardThreads * kBackwardItems * vec;
    const long segs_l = (V + per_block - 1) / per_block;
    const dim3 grid((unsigned)N, (unsigned)(segs_l < 65535 ? segs_l : 65535));
    if (vec == 8) logprobs_backward_kernel<8><<<grid, kBackwardThreads, 0, stream>>>(dlogits, dlogp, logits, lse, targets, V);
    else if (vec == 4) logprobs_backward_kernel<4><<<grid, kBackwardThreads, 0, stream>>>(dlogits, dlogp, logits, lse, targets, V);
    else if (vec == 2) logprobs_backward_kernel<2><<<grid, kBackwardThreads, 0, stream>>>(dlogits, dlogp, logits, lse, targets, V);
    else logprobs_backward_kernel<1><<<grid, kBackwardThreads, 0, stream>>>(dlogits, dlogp, logits, lse, targets, V);
    CUDA_CHECK_LAUNCH();
}
