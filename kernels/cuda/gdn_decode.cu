// Gated delta rule, one decode step for B sequences, in place on their fp32 states in a pool:
//   S ← exp(g)·S;  u = β·(v − Sᵀk);  S ← S + k·uᵀ;  o = Sᵀ(scale·q)
// (kernels/cpu/gdn_recurrent.c, one token). The work is a few flops per state element, so the step
// is pure state streaming: each CTA owns a Dk × 64 column block of one (sequence, value head) state,
// reads it once into registers (coalesced float4 along Dv), reduces Sᵀk across its rows (a warp
// shuffle pairs the two row groups of a warp, shared memory the eight warps), updates the registers,
// writes them back once and reduces the output from them. Grid (ceil(Dv / 64), H_v, B) gives
// thousands of CTAs at serving batch sizes. Rows per thread are a template parameter (the smallest
// of 2, 4, 6, 8, 12, 16 that covers Dk / 16) so the row loop unrolls with no runtime bound: every
// thread issues all its float4 loads before the first use, keeping ROWS × 16 bytes in flight per
// thread, and small ROWS keep registers low enough for 4 CTAs per SM. Dk ≤ 256 and Dv a multiple of
// 16 (so float4 groups never straddle the end of a row).
#include "gdn_common.cuh"

#include "cuda_check.h"

namespace gdn {

constexpr int DEC_COLS = 64;          // columns of the state per CTA
constexpr int DEC_TX = DEC_COLS / 4;  // float4 lanes across the columns
constexpr int DEC_THREADS = 256;
constexpr int DEC_TY = DEC_THREADS / DEC_TX;  // row groups: thread row ty owns rows ty, ty + 16, ...
constexpr int DEC_WARPS = DEC_THREADS / 32;   // each warp holds two row groups (ty even, ty odd)

struct decode_params {
    hy_bf16 *o;
    float *states;
    const int32_t *slots;
    const hy_bf16 *q, *k, *v;
    const float *g, *beta;
    int H_k, H_v, Dk, Dv;
    float scale;
};

__device__ __forceinline__ float4 f4_add(float4 a, float4 b) {
    return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
}
__device__ __forceinline__ float4 f4_fma(float s, float4 a, float4 c) {
    return make_float4(fmaf(s, a.x, c.x), fmaf(s, a.y, c.y), fmaf(s, a.z, c.z), fmaf(s, a.w, c.w));
}
// Sum of a float4 over the two row groups of a warp (lanes l and l ^ 16 share a column).
__device__ __forceinline__ float4 f4_pair_sum(float4 a) {
    a.x += __shfl_xor_sync(0xffffffffu, a.x, 16);
    a.y += __shfl_xor_sync(0xffffffffu, a.y, 16);
    a.z += __shfl_xor_sync(0xffffffffu, a.z, 16);
    a.w += __shfl_xor_sync(0xffffffffu, a.w, 16);
    return a;
}

// Registers per thread fall with ROWS; 4 CTAs per SM up to ROWS = 6 (Dk ≤ 96), fewer above.
template <int ROWS>
__global__ void __launch_bounds__(DEC_THREADS, ROWS <= 6 ? 4 : (ROWS <= 8 ? 3 : 2))
    decode_kernel(decode_params p) {
    __shared__ float qs[256], ks[256];
    __shared__ float4 red_r[DEC_WARPS][DEC_TX], red_o[DEC_WARPS][DEC_TX];
    __shared__ float4 us[DEC_TX];
    const int tx = threadIdx.x % DEC_TX, ty = threadIdx.x / DEC_TX, warp = threadIdx.x / 32;
    const int h = blockIdx.y, b = blockIdx.z, kh = h / (p.H_v / p.H_k);
    const int col = blockIdx.x * DEC_COLS + 4 * tx;
    const int Dk = p.Dk, Dv = p.Dv;
    const bool active = col < Dv;
    float *S = p.states + ((size_t)p.slots[b] * p.H_v + h) * Dk * Dv + col;

    // Issue every state load first; q, k, g, β are a few hundred bytes and arrive meanwhile.
    float4 s[ROWS];
#pragma unroll
    for (int i = 0; i < ROWS; i++) {
        const int a = ty + DEC_TY * i;
        s[i] = make_float4(0, 0, 0, 0);
        if (active && a < Dk) s[i] = *reinterpret_cast<const float4 *>(S + (size_t)a * Dv);
    }
    const size_t qk_off = ((size_t)b * p.H_k + kh) * Dk, gate = (size_t)b * p.H_v + h;
    for (int a = threadIdx.x; a < Dk; a += blockDim.x) {
        qs[a] = p.scale * __bfloat162float(p.q[qk_off + a]);
        ks[a] = __bfloat162float(p.k[qk_off + a]);
    }
    const float decay = expf(p.g[gate]), beta = p.beta[gate];
    __syncthreads();

    // S ← exp(g)·S and r = Sᵀk over this thread's rows (rows past Dk hold zeros).
    float4 r = make_float4(0, 0, 0, 0);
#pragma unroll
    for (int i = 0; i < ROWS; i++) {
        const int a = min(ty + DEC_TY * i, Dk - 1);
        s[i] = make_float4(decay * s[i].x, decay * s[i].y, decay * s[i].z, decay * s[i].w);
        r = f4_fma(ks[a], s[i], r);
    }
    r = f4_pair_sum(r);
    if ((threadIdx.x & 31) < DEC_TX) red_r[warp][tx] = r;
    __syncthreads();
    if (ty == 0) {
        float4 sum = red_r[0][tx];
#pragma unroll
        for (int j = 1; j < DEC_WARPS; j++) sum = f4_add(sum, red_r[j][tx]);
        float4 vv = make_float4(0, 0, 0, 0);
        if (active) {
            const hy_bf16 *vp = p.v + gate * Dv + col;
            vv = make_float4(__bfloat162float(vp[0]), __bfloat162float(vp[1]), __bfloat162float(vp[2]),
                             __bfloat162float(vp[3]));
        }
        us[tx] =
            make_float4(beta * (vv.x - sum.x), beta * (vv.y - sum.y), beta * (vv.z - sum.z), beta * (vv.w - sum.w));
    }
    __syncthreads();

    // S ← S + k·uᵀ, written back once; o = Sᵀ(scale·q) from the updated registers.
    const float4 u = us[tx];
    float4 o = make_float4(0, 0, 0, 0);
#pragma unroll
    for (int i = 0; i < ROWS; i++) {
        const int a = ty + DEC_TY * i;
        if (a < Dk) {
            s[i] = f4_fma(ks[a], u, s[i]);
            if (active) *reinterpret_cast<float4 *>(S + (size_t)a * Dv) = s[i];
            o = f4_fma(qs[a], s[i], o);
        }
    }
    o = f4_pair_sum(o);
    if ((threadIdx.x & 31) < DEC_TX) red_o[warp][tx] = o;
    __syncthreads();
    if (ty == 0 && active) {
        float4 sum = red_o[0][tx];
#pragma unroll
        for (int j = 1; j < DEC_WARPS; j++) sum = f4_add(sum, red_o[j][tx]);
        hy_bf16 *op = p.o + gate * Dv + col;
        op[0] = __float2bfloat16(sum.x);
        op[1] = __float2bfloat16(sum.y);
        op[2] = __float2bfloat16(sum.z);
        op[3] = __float2bfloat16(sum.w);
    }
}

}  // namespace gdn

extern "C" void gdn_decode_step_cuda(hy_bf16 *o, float *states, const int32_t *slots, const hy_bf16 *q,
                                     const hy_bf16 *k, const hy_bf16 *v, const float *g, const float *beta, int B,
                                     int H_k, int H_v, int Dk, int Dv, float scale, cudaStream_t stream) {
    using namespace gdn;
    if (B <= 0) return;
    decode_params p = {o, states, slots, q, k, v, g, beta, H_k, H_v, Dk, Dv, scale};
    dim3 grid((Dv + DEC_COLS - 1) / DEC_COLS, H_v, B);
    const int rows = (Dk + DEC_TY - 1) / DEC_TY;
    if (rows <= 2) decode_kernel<2><<<grid, DEC_THREADS, 0, stream>>>(p);
    else if (rows <= 4) decode_kernel<4><<<grid, DEC_THREADS, 0, stream>>>(p);
    else if (rows <= 6) decode_kernel<6><<<grid, DEC_THREADS, 0, stream>>>(p);
    else if (rows <= 8) decode_kernel<8><<<grid, DEC_THREADS, 0, stream>>>(p);
    else if (rows <= 12) decode_kernel<12><<<grid, DEC_THREADS, 0, stream>>>(p);
    else decode_kernel<16><<<grid, DEC_THREADS, 0, stream>>>(p);
    CUDA_CHECK_LAUNCH();
}
