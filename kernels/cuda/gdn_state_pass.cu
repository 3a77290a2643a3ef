// Gated delta rule: the two sequential passes over chunks (forward and reverse), the only part of
// the chunked algorithm that cannot run chunk-parallel.
//
// Each CTA carries a Dk × BV column tile of one (document, value head) state — or of its gradient —
// through the document's chunks. Per chunk the work is two small products separated by barriers:
//   forward  phase 1  U = T·diag(β)·V − W·S0 (64 × BV; W from the chunk, S0 the carried state)
//            phase 2  S ← exp(γ_last)·S + Kᵀ·diag(exp(γ_last − γ))·U
//   reverse  phase 1  dU = Mᵀ·dO + diag(exp(γ_last − γ))·K·dS
//            phase 2  dS ← exp(γ_last)·dS + Qᵀ·diag(scale·exp(γ))·dO − Wᵀ·dU
// (the reverse Qᵀ·…·dO term does not depend on dS and arrives precomputed in ws.ds, written by the
// chunk-parallel du_local kernel). Nothing here is compute-bound: a chunk is ~1 MFLOP per CTA, so
// the time is the latency of fetching the chunk's operands. Hence the design:
// - operands are staged in shared memory with cp.async, one chunk ahead: the large ones (W fp32,
//   K bf16, 64 × Dk each) single-buffered but fetched during the phase that does not use them (W of
//   the next chunk while phase 2 runs on K, K while phase 1 runs on W), the small per-chunk tiles
//   (the 64 × BV U or dU part, the Dk × BV precomputed term, γ) double-buffered;
// - BV = 16 keeps three CTAs on an SM for Dk ≤ 96, so at the benchmark shape (H_v = 30, Dv = 192:
//   360 CTAs per document) every CTA is resident and one SM's CTAs hide each other's barriers.
// Products go through mma_tile with the precision rules of gdn_common.cuh (fp32 operands split).
#include "gdn_common.cuh"

#include "cuda_check.h"

namespace gdn {

constexpr int BV = 16;  // state columns per CTA (Dv is a multiple of 16)

// Shared-memory layout common to both passes (floats unless noted). Padded strides keep the
// fragment reads free of bank conflicts: +4 floats for the BV-wide tiles, +8 elements for 64 × Dk.
struct state_smem {
    float *S;      // (Dk, BV + 4) the carried state, or its gradient
    float *X;      // (64, BV + 4) forward: exp(γ_last − γ)·U; reverse: dU
    float *W;      // (64, Dk + 8)
    float *tile[2];  // (64, BV) the chunk's U part (forward) or dU output part (reverse)
    float *pre[2];   // (Dk, BV) reverse only: the precomputed Qᵀ·diag(scale·exp(γ))·dO
    float *gam[2];   // (64)
    hy_bf16 *K;      // (64, Dk + 8) bf16

    __host__ __device__ static size_t bytes(int Dk, bool reverse) {
        size_t floats = (size_t)Dk * (BV + 4) + CHUNK * (BV + 4) + CHUNK * (Dk + 8) + 2 * CHUNK * BV + 2 * CHUNK;
        if (reverse) floats += 2 * (size_t)Dk * BV;
        return floats * sizeof(float) + (size_t)CHUNK * (Dk + 8) * sizeof(hy_bf16);
    }
    __device__ state_smem(void *base, int Dk, bool reverse) {
        float *f = (float *)base;
        S = f, f += Dk * (BV + 4);
        X = f, f += CHUNK * (BV + 4);
        W = f, f += CHUNK * (Dk + 8);
        tile[0] = f, f += CHUNK * BV;
        tile[1] = f, f += CHUNK * BV;
        pre[0] = pre[1] = nullptr;
        if (reverse) {
            pre[0] = f, f += Dk * BV;
            pre[1] = f, f += Dk * BV;
        }
        gam[0] = f, f += CHUNK;
        gam[1] = f, f += CHUNK;
        K = (hy_bf16 *)f;
    }
};

// Issue the cp.async copies of one chunk's pieces (every thread of the block calls these).
__device__ __forceinline__ void stage_w(const params &p, const state_smem &sm, int t0, int h, int L) {
    const int Dk = p.Dk;
    stage_rows(sm.W, (Dk + 8) * 4, p.ws.w + ((size_t)t0 * p.H_v + h) * Dk, (size_t)p.H_v * Dk * 4, Dk * 4, L);
}
__device__ __forceinline__ void stage_k(const params &p, const state_smem &sm, const hy_bf16 *src, int t0, int kh,
                                        int L) {
    const int Dk = p.Dk;
    stage_rows(sm.K, (Dk + 8) * 2, src + ((size_t)t0 * p.H_k + kh) * Dk, (size_t)p.H_k * Dk * 2, Dk * 2, L);
}
// The chunk's 64 × BV tile of a (T, H_v, Dv) fp32 array, its γ, and (reverse) its precomputed term.
__device__ __forceinline__ void stage_small(const params &p, const state_smem &sm, int buf, const float *tokens,
                                            int c, int t0, int h, int v0, int L) {
    const int Dv = p.Dv;
    stage_rows(sm.tile[buf], BV * 4, tokens + ((size_t)t0 * p.H_v + h) * Dv + v0, (size_t)p.H_v * Dv * 4, BV * 4, L);
    if (threadIdx.x < CHUNK) {
        const int i = threadIdx.x < L ? threadIdx.x : 0;
        cp_async4(sm.gam[buf] + threadIdx.x, p.ws.gamma + (size_t)(t0 + i) * p.H_v + h, (int)threadIdx.x < L);
    }
    if (sm.pre[buf]) {
        const float *src = p.ws.ds + ((size_t)c * p.H_v + h) * p.Dk * Dv + v0;
        for (int idx = threadIdx.x; idx < p.Dk * (BV / 4); idx += blockDim.x) {
            const int a = idx / (BV / 4), q = idx % (BV / 4);
            cp_async16(sm.pre[buf] + a * BV + 4 * q, src + (size_t)a * Dv + 4 * q, true);
        }
    }
}

// Copies the Dk × BV tile between shared memory (stride BV + 4) and a (Dk, Dv) fp32 global matrix.
__device__ __forceinline__ void tile_to_global(float *dst, const float *S, int Dk, int Dv) {
    for (int i = threadIdx.x; i < Dk * BV; i += blockDim.x) dst[(size_t)(i / BV) * Dv + i % BV] = S[(i / BV) * (BV + 4) + i % BV];
}

// Grid (Dv / BV, H_v, min(n_docs, 65535)); documents blockIdx.z, + gridDim.z, ...
__global__ void __launch_bounds__(THREADS) state_forward_kernel(params p) {
    extern __shared__ __align__(16) float smem[];
    const int Dk = p.Dk, Dv = p.Dv, tid = threadIdx.x, ldS = BV + 4, ldW = Dk + 8;
    const state_smem sm(smem, Dk, false);
    const int v0 = blockIdx.x * BV, h = blockIdx.y, kh = h / (p.H_v / p.H_k);
    const size_t sv = (size_t)p.H_v * Dv;
    for (int d = blockIdx.z; d < p.n_docs; d += gridDim.z) {
        const size_t state_off = ((size_t)d * p.H_v + h) * Dk * Dv + v0;
        for (int i = tid; i < Dk * BV; i += blockDim.x)
            sm.S[(i / BV) * ldS + i % BV] = p.state_in ? p.state_in[state_off + (size_t)(i / BV) * Dv + i % BV] : 0.0f;
        const int c_begin = p.ws.chunk_first[d], c_end = p.ws.chunk_first[d + 1];
        if (c_begin < c_end) {  // prologue: the first chunk's pieces, in the order they are waited for
            const int4 ch = p.ws.chunks[c_begin];
            stage_small(p, sm, 0, p.ws.u, c_begin, ch.y, h, v0, ch.z);
            cp_async_commit();
            stage_w(p, sm, ch.y, h, ch.z);
            cp_async_commit();
            stage_k(p, sm, p.k, ch.y, kh, ch.z);
            cp_async_commit();
        }
        for (int c = c_begin; c < c_end; c++) {
            const int buf = (c - c_begin) & 1;
            const int4 ch = p.ws.chunks[c], next = c + 1 < c_end ? p.ws.chunks[c + 1] : ch;
            const int t0 = ch.y, L = ch.z, Lp = round16(L);
            if (c + 1 < c_end) stage_small(p, sm, buf ^ 1, p.ws.u, c + 1, next.y, h, v0, next.z);
            cp_async_commit();
            cp_async_wait<2>();  // this chunk's small pieces and W have landed (K may still fly)
            __syncthreads();
            const float *gam = sm.gam[buf], *ut = sm.tile[buf];
            const float gl = gam[L - 1];
            tile_to_global(p.ws.s0 + ((size_t)c * p.H_v + h) * Dk * Dv + v0, sm.S, Dk, Dv);

            // phase 1: U = (T·diag(β)·V) − W·S0 on this column tile; X = exp(γ_last − γ_i)·U_i.
            float *ug = p.ws.u + ((size_t)t0 * p.H_v + h) * Dv + v0;
            auto Wm = [&](int i, int a) { return sm.W[i * ldW + a]; };
            auto Sm = [&](int a, int b) { return sm.S[a * ldS + b]; };
            for (int idx = warp_id(); idx < (Lp / 16) * (BV / 8); idx += n_warps()) {
                int m0, n0;
                tile_at(idx, BV, m0, n0);
                float acc[4] = {0, 0, 0, 0};
                mma_tile<SPLIT, SPLIT>(acc, Wm, Sm, m0, n0, Dk);
                frag_each(acc, m0, n0, [&](int i, int b, float &x) {
                    float u = 0.0f;
                    if (i < L) {
                        u = ut[i * BV + b] - x;
                        ug[i * sv + b] = u;
                        u *= expf(gl - gam[i]);
                    }
                    sm.X[i * ldS + b] = u;
                });
            }
            __syncthreads();  // W is free, X complete
            if (c + 1 < c_end) stage_w(p, sm, next.y, h, next.z);
            cp_async_commit();
            cp_async_wait<2>();  // K of this chunk has landed
            __syncthreads();

            // phase 2: S ← exp(γ_last)·S + Kᵀ·X, each element read and written by the warp owning its tile.
            auto Kt = [&](int a, int j) { return bf(sm.K[j * ldW + a]); };
            auto Xm = [&](int j, int b) { return sm.X[j * ldS + b]; };
            const float total = expf(gl);
            for (int idx = warp_id(); idx < (Dk / 16) * (BV / 8); idx += n_warps()) {
                int m0, n0;
                tile_at(idx, BV, m0, n0);
                float acc[4];
                frag_each(acc, m0, n0, [&](int a, int b, float &x) { x = total * sm.S[a * ldS + b]; });
                mma_tile<EXACT, SPLIT>(acc, Kt, Xm, m0, n0, Lp);
                frag_each(acc, m0, n0, [&](int a, int b, float &x) { sm.S[a * ldS + b] = x; });
            }
            __syncthreads();  // K is free, S complete
            if (c + 1 < c_end) stage_k(p, sm, p.k, next.y, kh, next.z);
            cp_async_commit();
        }
        cp_async_wait<0>();
        if (p.state_out) tile_to_global(p.state_out + state_off, sm.S, Dk, Dv);
        __syncthreads();  // S is reloaded for the next document
    }
}

// Grid as the forward; chunks last first.
__global__ void __launch_bounds__(THREADS) state_backward_kernel(params p) {
    extern __shared__ __align__(16) float smem[];
    const int Dk = p.Dk, Dv = p.Dv, tid = threadIdx.x, ldS = BV + 4, ldW = Dk + 8;
    const state_smem sm(smem, Dk, true);
    const int v0 = blockIdx.x * BV, h = blockIdx.y, kh = h / (p.H_v / p.H_k);
    const size_t sv = (size_t)p.H_v * Dv;
    for (int d = blockIdx.z; d < p.n_docs; d += gridDim.z) {
        const size_t state_off = ((size_t)d * p.H_v + h) * Dk * Dv + v0;
        for (int i = tid; i < Dk * BV; i += blockDim.x)
            sm.S[(i / BV) * ldS + i % BV] =
                p.dstate_out ? p.dstate_out[state_off + (size_t)(i / BV) * Dv + i % BV] : 0.0f;
        const int c_begin = p.ws.chunk_first[d], c_end = p.ws.chunk_first[d + 1];
        if (c_begin < c_end) {  // prologue: the last chunk's pieces, in the order they are waited for
            const int4 ch = p.ws.chunks[c_end - 1];
            stage_small(p, sm, 0, p.ws.du, c_end - 1, ch.y, h, v0, ch.z);
            cp_async_commit();
            stage_k(p, sm, p.k, ch.y, kh, ch.z);
            cp_async_commit();
            stage_w(p, sm, ch.y, h, ch.z);
            cp_async_commit();
        }
        for (int c = c_end - 1; c >= c_begin; c--) {
            const int buf = (c_end - 1 - c) & 1;
            const int4 ch = p.ws.chunks[c], next = c > c_begin ? p.ws.chunks[c - 1] : ch;
            const int t0 = ch.y, L = ch.z, Lp = round16(L);
            if (c > c_begin) stage_small(p, sm, buf ^ 1, p.ws.du, c - 1, next.y, h, v0, next.z);
            cp_async_commit();
            cp_async_wait<2>();  // this chunk's small pieces and K have landed (W may still fly)
            __syncthreads();
            const float *gam = sm.gam[buf], *dut = sm.tile[buf], *pre = sm.pre[buf];
            const float gl = gam[L - 1];
            // the precomputed term of this chunk is in shared memory now; its place takes dS
            tile_to_global(p.ws.ds + ((size_t)c * p.H_v + h) * Dk * Dv + v0, sm.S, Dk, Dv);

            // phase 1: dU = Mᵀ·dO (du_local) + diag(exp(γ_last − γ))·K·dS
            float *dug = p.ws.du + ((size_t)t0 * p.H_v + h) * Dv + v0;
            auto Km = [&](int i, int a) { return bf(sm.K[i * ldW + a]); };
            auto dSm = [&](int a, int b) { return sm.S[a * ldS + b]; };
            for (int idx = warp_id(); idx < (Lp / 16) * (BV / 8); idx += n_warps()) {
                int m0, n0;
                tile_at(idx, BV, m0, n0);
                float acc[4] = {0, 0, 0, 0};
                mma_tile<EXACT, SPLIT>(acc, Km, dSm, m0, n0, Dk);
                frag_each(acc, m0, n0, [&](int i, int b, float &x) {
                    float du = 0.0f;
                    if (i < L) {
                        du = expf(gl - gam[i]) * x + dut[i * BV + b];
                        dug[i * sv + b] = du;
                    }
                    sm.X[i * ldS + b] = du;
                });
            }
            __syncthreads();  // K is free, X = dU complete
            if (c > c_begin) stage_k(p, sm, p.k, next.y, kh, next.z);
            cp_async_commit();
            cp_async_wait<2>();  // W of this chunk has landed
            __syncthreads();

            // phase 2: dS ← exp(γ_last)·dS + (Qᵀ·diag(scale·exp(γ))·dO) − Wᵀ·dU
            auto negWt = [&](int a, int i) { return -sm.W[i * ldW + a]; };
            auto dUm = [&](int i, int b) { return sm.X[i * ldS + b]; };
            const float total = expf(gl);
            for (int idx = warp_id(); idx < (Dk / 16) * (BV / 8); idx += n_warps()) {
                int m0, n0;
                tile_at(idx, BV, m0, n0);
                float acc[4];
                frag_each(acc, m0, n0,
                          [&](int a, int b, float &x) { x = total * sm.S[a * ldS + b] + pre[a * BV + b]; });
                mma_tile<SPLIT, SPLIT>(acc, negWt, dUm, m0, n0, Lp);
                frag_each(acc, m0, n0, [&](int a, int b, float &x) { sm.S[a * ldS + b] = x; });
            }
            __syncthreads();  // W is free, dS complete
            if (c > c_begin) stage_w(p, sm, next.y, h, next.z);
            cp_async_commit();
        }
        cp_async_wait<0>();
        if (p.dstate_in)
            for (int i = tid; i < Dk * BV; i += blockDim.x)
                p.dstate_in[state_off + (size_t)(i / BV) * Dv + i % BV] += sm.S[(i / BV) * ldS + i % BV];
        __syncthreads();  // dS is reloaded for the next document
    }
}

void launch_state_forward(const params &p, cudaStream_t stream) {
    const size_t smem = state_smem::bytes(p.Dk, false);
    set_smem((const void *)state_forward_kernel, smem);
    state_forward_kernel<<<dim3(p.Dv / BV, p.H_v, min(p.n_docs, 65535)), THREADS, smem, stream>>>(p);
    CUDA_CHECK_LAUNCH();
}

void launch_state_backward(const params &p, cudaStream_t stream) {
    const size_t smem = state_smem::bytes(p.Dk, true);
    set_smem((const void *)state_backward_kernel, smem);
    state_backward_kernel<<<dim3(p.Dv / BV, p.H_v, min(p.n_docs, 65535)), THREADS, smem, stream>>>(p);
    CUDA_CHECK_LAUNCH();
}

}  // namespace gdn
