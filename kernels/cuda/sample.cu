// Token sampling on the GPU (see ops_cuda.h): the rollout engine's plain path — greedy, or a draw
// from the whole tempered distribution — so the logits never leave the device and a decode step's
// rows are sampled in parallel instead of on the host's cores.
//
// One block per drawn token. Each thread owns a contiguous segment of the row: one pass gives the
// maximum (and the argmax, ties to the lower id), one the segments' sums of exponentials for the
// untempered and the tempered softmax; a block scan of the tempered segment sums tells which
// segment the draw u lands in, and that segment's thread walks it in id order — the same inverse-
// CDF rule as the host's sample_row, so a draw agrees with it except where the cumulative sum sits
// within rounding of u.
#include <cuda_runtime.h>
#include <math.h>

#include "../ops_cuda.h"
#include "cuda_check.h"

namespace {

constexpr int kThreads = 512;

struct row_params {
    const float *logits;
    const int32_t *rows;
    const float *temperature;
    const double *u;
    int V;
    int32_t *token;
    float *logprob, *model_logprob;
};

__device__ float block_reduce_max(float v, float *sh) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (threadIdx.x % 32 == 0) sh[threadIdx.x / 32] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        v = threadIdx.x < kThreads / 32 ? sh[threadIdx.x] : -INFINITY;
        for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
        if (threadIdx.x == 0) sh[0] = v;
    }
    __syncthreads();
    v = sh[0];
    __syncthreads();
    return v;
}

__device__ double block_reduce_sum(double v, double *sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x % 32 == 0) sh[threadIdx.x / 32] = v;
    __syncthreads();
    if (threadIdx.x < 32) {
        v = threadIdx.x < kThreads / 32 ? sh[threadIdx.x] : 0.0;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
        if (threadIdx.x == 0) sh[0] = v;
    }
    __syncthreads();
    v = sh[0];
    __syncthreads();
    return v;
}

__global__ void __launch_bounds__(kThreads) sample_rows_kernel(row_params p) {
    __shared__ float shf[kThreads / 32];
    __shared__ double shd[kThreads / 32];
    __shared__ double prefix[kThreads];
    __shared__ int pick_sh, best_sh;
    const int j = blockIdx.x, V = p.V;
    const float *x = p.logits + (size_t)p.rows[j] * V;
    const float temp = p.temperature[j];
    const int per = (V + kThreads - 1) / kThreads, lo = threadIdx.x * per, hi = min(V, lo + per);

    // maximum, and the lowest id holding it
    float mx = -INFINITY;
    int arg = V;
    for (int i = lo; i < hi; i++)
        if (x[i] > mx) mx = x[i], arg = i;
    const float gmax = block_reduce_max(mx, shf);
    if (threadIdx.x == 0) best_sh = V;
    __syncthreads();
    if (mx == gmax) atomicMin(&best_sh, arg);
    __syncthreads();
    const int best = best_sh;

    double s = 0.0;
    for (int i = lo; i < hi; i++) s += expf(x[i] - gmax);
    const double lse = gmax + log(block_reduce_sum(s, shd));
    if (temp <= 0.0f) {
        if (threadIdx.x == 0) {
            p.token[j] = best;
            p.logprob[j] = p.model_logprob[j] = (float)(x[best] - lse);
        }
        return;
    }
    const float inv_t = 1.0f / temp;
    double lse_t = lse;
    if (inv_t != 1.0f) {
        double st = 0.0;
        for (int i = lo; i < hi; i++) st += expf(x[i] * inv_t - gmax * inv_t);
        lse_t = gmax * inv_t + log(block_reduce_sum(st, shd));
    }
    const float lse_tf = (float)lse_t;
    // each segment's probability mass, then an exclusive scan over the segments in id order
    double seg = 0.0;
    for (int i = lo; i < hi; i++) seg += expf(x[i] * inv_t - lse_tf);
    prefix[threadIdx.x] = seg;
    __syncthreads();
    for (int o = 1; o < kThreads; o <<= 1) {
        const double add = threadIdx.x >= o ? prefix[threadIdx.x - o] : 0.0;
        __syncthreads();
        prefix[threadIdx.x] += add;
        __syncthreads();
    }
    if (threadIdx.x == 0) pick_sh = V - 1;
    __syncthreads();
    // the segments' intervals [prefix[t−1], prefix[t]) tile [0, total): exactly one holds u (none
    // when rounding leaves u at or above the total: the last token, as on the host)
    const double u = p.u[j], before = threadIdx.x ? prefix[threadIdx.x - 1] : 0.0;
    if (hi > lo && before <= u && u < prefix[threadIdx.x]) {
        double acc = before;
        int t = hi - 1;  // if the walk's own rounding never crosses u, the segment's last token
        for (int i = lo; i < hi; i++) {
            acc += expf(x[i] * inv_t - lse_tf);
            if (u < acc) {
                t = i;
                break;
            }
        }
        pick_sh = t;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        const int t = pick_sh;
        p.token[j] = t;
        p.logprob[j] = (float)(x[t] * inv_t - lse_t);
        p.model_logprob[j] = (float)(x[t] - lse);
    }
}

}  // namespace

extern "C" void sample_rows_cuda(const float *logits, const int32_t *rows, int n, int V, const float *temperature,
                                 const double *u, int32_t *token, float *logprob, float *model_logprob,
                                 cudaStream_t stream) {
    if (n <= 0) return;
    const row_params p = {logits, rows, temperature, u, V, token, logprob, model_logprob};
    sample_rows_kernel<<<n, kThreads, 0, stream>>>(p);
    CUDA_CHECK_LAUNCH();
}
