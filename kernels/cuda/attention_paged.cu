// Attention of new queries against the rollout engine's paged KV pool, and the scatter that writes
// new keys and values into it (layout: paged_attn_shape in ops_cpu.h).
//
// The first, plain version: one block of NW warps per (query, head, sequence). The block's warps
// take interleaved keys (warp w: keys w, w + NW, ...); each lane holds D / 32 of the head's
// columns, so a key's score is a warp-wide dot product, and each warp runs an online softmax
// (fp32, log2 domain) over its keys. At the end the NW partial (max, sum, output) are merged in
// shared memory. Keys are reached through the sequence's block table, one lookup per key, so the
// pool's block order never matters. No tensor cores and no key splitting across blocks: decode of
// long contexts is bandwidth-bound either way, and this kernel's job is to be obviously right; a
// tensor-core paged variant (the flat cache's attention_cached.cu with a block-table row lookup)
// belongs in kernels/dev until it beats this one. Positions past a query's causal limit are
// never read, so stale pool rows (or NaN poison) cannot leak in.
#include <cstdio>
#include <cstdlib>

#include "../ops_cuda.h"
#include "cuda_check.h"

namespace {

constexpr int NW = 4;       // warps per block
constexpr int DMAX = 256;   // largest head dim
constexpr int PER = DMAX / 32;
constexpr float LOG2E = 1.4426950408889634f;

struct paged_params {
    hy_bf16 *o;
    const hy_bf16 *q, *k_pool, *v_pool;
    const int32_t *block_table, *q_start, *q_len, *lens;
    int max_blocks, block_size, H, H_kv, D;
    float scale_log2;
};

__global__ void __launch_bounds__(NW * 32) attention_paged_kernel(const paged_params p) {
    const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int ql = p.q_len[b];
    if (i >= ql) return;
    const int n_keys = p.lens[b] - ql + i + 1;  // causal: positions 0 .. p0 + i
    const int hk = h / (p.H / p.H_kv), D = p.D;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int32_t *table = p.block_table + (size_t)b * p.max_blocks;
    const size_t q_off = ((size_t)(p.q_start[b] + i) * p.H + h) * D;

    float q[PER], acc[PER];
#pragma unroll
    for (int c = 0; c < PER; c++) {
        const int d = lane + 32 * c;
        q[c] = d < D ? __bfloat162float(p.q[q_off + d]) * p.scale_log2 : 0.0f;
        acc[c] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int j = warp; j < n_keys; j += NW) {
        const size_t row = (size_t)table[j / p.block_size] * p.block_size + j % p.block_size;
        const size_t kv_off = (row * p.H_kv + hk) * D;
        float s = 0.0f;
#pragma unroll
        for (int c = 0; c < PER; c++) {
            const int d = lane + 32 * c;
            if (d < D) s += q[c] * __bfloat162float(p.k_pool[kv_off + d]);
        }
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
        const float m_new = fmaxf(m, s);
        const float alpha = exp2f(m - m_new), w = exp2f(s - m_new);  // m = −inf at first: alpha = 0
        l = l * alpha + w;
#pragma unroll
        for (int c = 0; c < PER; c++) {
            const int d = lane + 32 * c;
            const float v = d < D ? __bfloat162float(p.v_pool[kv_off + d]) : 0.0f;
            acc[c] = acc[c] * alpha + w * v;
        }
        m = m_new;
    }

    __shared__ float s_m[NW], s_l[NW];
    __shared__ float s_o[NW][DMAX];
    if (lane == 0) {
        s_m[warp] = m;
        s_l[warp] = l;
    }
#pragma unroll
    for (int c = 0; c < PER; c++) {
        const int d = lane + 32 * c;
        if (d < D) s_o[warp][d] = acc[c];
    }
    __syncthreads();
    float M = -INFINITY;
#pragma unroll
    for (int w = 0; w < NW; w++) M = fmaxf(M, s_m[w]);
    float L = 0.0f, wgt[NW];
#pragma unroll
    for (int w = 0; w < NW; w++) {
        wgt[w] = s_m[w] == -INFINITY ? 0.0f : exp2f(s_m[w] - M);  // a warp with no keys adds nothing
        L += wgt[w] * s_l[w];
    }
    const float inv = 1.0f / L;  // ≥ 1 term: the warp holding the max contributes exp2(0)·l ≥ 1
    for (int d = threadIdx.x; d < D; d += NW * 32) {
        float o = 0.0f;
#pragma unroll
        for (int w = 0; w < NW; w++) o += wgt[w] * s_o[w][d];
        p.o[q_off + d] = __float2bfloat16(o * inv);
    }
}

__global__ void kv_paged_write_kernel(hy_bf16 *pool, const hy_bf16 *kv, const int32_t *rows, int T, int width) {
    const size_t n = (size_t)T * width;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (size_t)gridDim.x * blockDim.x) {
        const size_t t = e / width, c = e % width;
        pool[(size_t)rows[t] * width + c] = kv[e];
    }
}

}  // namespace

extern "C" void attention_paged_cuda(const paged_attn_shape *s, hy_bf16 *o, const hy_bf16 *q, const hy_bf16 *k_pool,
                                     const hy_bf16 *v_pool, int max_tq, int max_len, cudaStream_t stream) {
    if (s->D <= 0 || s->D > DMAX || s->D % 8 || s->H_kv <= 0 || s->H % s->H_kv || s->block_size <= 0) {
        fprintf(stderr, "hybrid: attention_paged_cuda: unsupported shape H %d H_kv %d D %d block %d\n", s->H, s->H_kv,
                s->D, s->block_size);
        abort();
    }
    if (s->n_seqs <= 0 || max_tq <= 0 || max_len <= 0) return;
    paged_params p = {o, q, k_pool, v_pool, s->block_table, s->q_start, s->q_len, s->lens, s->max_blocks,
                      s->block_size, s->H, s->H_kv, s->D, s->scale * LOG2E};
    attention_paged_kernel<<<dim3(max_tq, s->H, s->n_seqs), NW * 32, 0, stream>>>(p);
    CUDA_CHECK(cudaGetLastError());
}

extern "C" void kv_paged_write_cuda(hy_bf16 *pool, const hy_bf16 *kv, const int32_t *rows, int T, int width,
                                    cudaStream_t stream) {
    if (T <= 0 || width <= 0) return;
    const size_t n = (size_t)T * width;
    const int threads = 256, blocks = (int)((n + threads - 1) / threads < 4096 ? (n + threads - 1) / threads : 4096);
    kv_paged_write_kernel<<<blocks, threads, 0, stream>>>(pool, kv, rows, T, width);
    CUDA_CHECK(cudaGetLastError());
}
