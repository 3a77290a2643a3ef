// Attention of new queries against the rollout engine's paged KV pool, and the scatter that writes
// new keys and values into it (layout: paged_attn_shape in ops_cpu.h).
//
// Kernels chosen by max_tq, the shape and pointer alignment alone. Keys are always reached through
// the sequence's block table, one lookup per key, so the pool's block order never matters, and
// positions past a query's causal limit are never read, so stale pool rows (or NaN poison) cannot
// leak in.
//
// max_tq > 1 (prefill chunks, possibly beside decodes) runs on tensor cores in
// attention_paged_prefill.cu (attention_cached.cu's kernel with a block-table row lookup) for
// D ≤ 256 a multiple of 16 and 16-byte aligned q and pools; other shapes fall back to the general
// kernel here, the first, plain version. One block of NW warps per (query, head, sequence). The
// block's warps take interleaved keys (warp w: keys w, w + NW, ...); each lane holds D / 32 of the
// head's columns, so a key's score is a warp-wide dot product, and each warp runs an online
// softmax (fp32, log2 domain) over its keys. At the end the NW partial (max, sum, output) are
// merged in shared memory. No tensor cores: ~70 ms per layer for a 2048-query chunk at 8k context
// beside 32 decodes (H 32/8, D 128, H100); kept as the fallback and as the baseline of
// test_paged_gpu --perf.
//
// Decode (max_tq == 1): flash-decoding. One query per sequence is pure K/V streaming, and the
// general grid starves it (B = 1, H = 32 gives 32 blocks, each walking every key in series: ~18 ms
// per layer at 32k keys on an H100) and reads each KV head once per q head of its group. Here:
//   - Grid (split, KV head × head chunk, sequence). A block takes one contiguous key range of one
//     sequence for all q heads of its KV head's group (up to DEC_GMAX; larger groups take a few
//     chunks), so a K/V row is read once per group rather than once per q head.
//   - The split count depends on the shape and the SM count only, never on lens: the engine
//     replays this launch inside a CUDA graph while lens change on the device. The capacity
//     max_blocks · block_size is cut into equal ranges of ≥ SPLIT_MIN_KEYS keys, as few as fill
//     the SMs' resident block slots in whole waves (plan_decode). A block whose range starts past
//     lens[b] exits at once, and the merge reads only the splits lens[b] reaches, so a short
//     sequence in a wide table costs empty launch slots, not memory traffic.
//   - T = D / 8 lanes (rounded up to a power of two) hold one key row, one 16-byte load each of K
//     and V, so a warp takes 32 / T keys at a time; each thread issues U keys' loads before using
//     any, to keep enough bytes in flight. Scores are T-lane shuffle sums; each lane group runs an
//     online softmax (fp32, log2 domain) per q head; at the end the groups of a warp merge by
//     shuffles and the warps through shared memory.
//   - Each block leaves per head (max, sum, unnormalised fp32 output) in the workspace, and
//     attention_paged_merge_kernel rescales the splits to their common max and writes o. With a
//     single split the decode kernel normalises and writes o itself and needs no workspace.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "../ops_cuda.h"
#include "cuda_check.h"
#include "kernel_util.cuh"

namespace {

constexpr int NW = 4;       // warps per general block
constexpr int DMAX = 256;   // largest head dim
constexpr int PER = DMAX / 32;
constexpr float LOG2E = 1.4426950408889634f;

// ---- general: one block per (query, head, sequence) -------------------------------------------

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

// ---- decode: split keys, one block per KV head group ------------------------------------------

constexpr int DEC_NW = 4;            // warps per decode block
constexpr int DEC_GMAX = 8;          // q heads per block at most: each costs a thread 16 fp32 registers
constexpr int SPLIT_MIN_KEYS = 256;  // below this a split's fixed cost (q load, merges) starts to show
constexpr int SPLIT_ALIGN = 64;      // split boundaries on whole pool blocks for the usual sizes 16, 64

// Head slots GP (a power of two ≥ the heads of a block) set the per-thread registers, so they set
// how many keys a thread loads ahead (U) and how many blocks an SM holds: the launch bound below,
// which at these register counts is also the residency the planner counts on.
__host__ __device__ constexpr int dec_keys_ahead(int GP) { return GP <= 2 ? 8 : GP == 4 ? 4 : 2; }
__host__ __device__ constexpr int dec_min_blocks(int GP) { return GP <= 2 ? 4 : GP == 4 ? 3 : 2; }

struct decode_plan {
    int T;           // lanes per key row: D / 8 rounded up to a power of two (≥ 2)
    int heads, GP;   // q heads per block; its power-of-two register slots
    int chunks;      // blocks per KV head's group: ceil(group / heads)
    int n_split;     // key ranges per sequence
    int split_keys;  // keys per range (the last may hold fewer)
};

struct decode_params {
    hy_bf16 *o;
    float *part_o;    // (B, H, n_split, D) unnormalised outputs of the splits
    float2 *part_ml;  // (B, H, n_split) their (max, sum), log2 domain
    const hy_bf16 *q, *k_pool, *v_pool;
    const int32_t *block_table, *q_start, *q_len, *lens;
    int max_blocks, block_size, H, H_kv, D;
    int heads, chunks, n_split, split_keys;
    float scale_log2;
};

// A function of the shape and the device only (see the top of the file). Splits: the fewest that
// keep ≥ 85 % of the SMs' block slots busy over whole waves (a full-context batch is as slow as
// its last wave), but no more than leave SPLIT_MIN_KEYS of capacity each. 85 % is untuned: it
// takes B = 32, H_kv = 8 on 132 SMs to 3 splits (768 blocks in 2 waves of 396) rather than 2
// (512: a second wave 30 % full); test_paged_gpu --perf is where to tune it.
decode_plan plan_decode(const paged_attn_shape *s) {
    decode_plan pl;
    pl.T = 2;
    while (pl.T * 8 < s->D) pl.T *= 2;
    const int group = s->H / s->H_kv;
    pl.chunks = (group + DEC_GMAX - 1) / DEC_GMAX;
    pl.heads = (group + pl.chunks - 1) / pl.chunks;
    pl.GP = 1;
    while (pl.GP < pl.heads) pl.GP *= 2;
    const long cap = (long)s->max_blocks * s->block_size;
    const long per_split = (long)s->n_seqs * s->H_kv * pl.chunks;
    const long slots = (long)dec_min_blocks(pl.GP) * hy::sm_count();
    const long most = cap / SPLIT_MIN_KEYS;
    long n = 1;
    auto busy = [&](long splits) {
        const long blocks = per_split * splits, waves = (blocks + slots - 1) / slots;
        return (double)blocks / (double)(waves * slots);
    };
    while (n < most && busy(n) < 0.85) n++;
    long keys = (cap + n - 1) / n;
    keys = (keys + SPLIT_ALIGN - 1) / SPLIT_ALIGN * SPLIT_ALIGN;
    pl.split_keys = (int)keys;
    pl.n_split = (int)((cap + keys - 1) / keys);  // rounding up may leave fewer ranges than n
    return pl;
}

// Grid (n_split, H_kv · chunks, B), DEC_NW warps. Lane group `sub` (T lanes) owns columns
// col .. col + 7 of keys j0 + u·SUB + sub of each step.
template <int T, int GP>
__global__ void __launch_bounds__(DEC_NW * 32, dec_min_blocks(GP))
    attention_paged_decode_kernel(const decode_params p) {
    constexpr int U = dec_keys_ahead(GP), SUB = DEC_NW * 32 / T, W = 8 * T;
    const int split = blockIdx.x, b = blockIdx.z;
    if (p.q_len[b] < 1) return;  // no query of this sequence in this step
    const int n_keys = p.lens[b], k0 = split * p.split_keys;
    if (k0 >= n_keys) return;  // past the sequence: the merge never reads this split
    const int k1 = min(n_keys, k0 + p.split_keys);
    const int group = p.H / p.H_kv, hk = blockIdx.y / p.chunks, chunk = blockIdx.y % p.chunks;
    const int h0 = hk * group + chunk * p.heads, n_heads = min(p.heads, group - chunk * p.heads);
    const int D = p.D, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int sub = threadIdx.x / T, col = (threadIdx.x % T) * 8;
    const bool has_col = col < D;  // D not a power of two: the last lanes of a group sit idle
    const int32_t *table = p.block_table + (size_t)b * p.max_blocks;
    const size_t q_row = (size_t)p.q_start[b] * p.H;

    float q[GP][8], acc[GP][8], m[GP], l[GP];
#pragma unroll
    for (int g = 0; g < GP; g++) {
        // spare head slots keep q = 0: they compute harmless finite numbers and are never stored
        if (g < n_heads && has_col) hy::load_bf16<8>(q[g], p.q + (q_row + h0 + g) * D + col);
#pragma unroll
        for (int c = 0; c < 8; c++) {
            q[g][c] = g < n_heads && has_col ? q[g][c] * p.scale_log2 : 0.0f;
            acc[g][c] = 0.0f;
        }
        m[g] = -INFINITY;
        l[g] = 0.0f;
    }

    // The loop bounds are block-uniform, so every lane reaches the full-warp shuffles.
    for (int j0 = k0; j0 < k1; j0 += SUB * U) {
        hy::bf16_bits<8> kb[U], vb[U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int j = j0 + u * SUB + sub;
            kb[u] = vb[u] = make_uint4(0, 0, 0, 0);
            if (j < k1 && has_col) {
                const size_t row = (size_t)table[j / p.block_size] * p.block_size + j % p.block_size;
                const size_t off = (row * p.H_kv + hk) * D + col;
                kb[u] = hy::load_bf16_bits<8>(p.k_pool + off);
                vb[u] = hy::load_bf16_bits<8>(p.v_pool + off);
            }
        }
        float s[GP][U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            float k[8];
            hy::unpack_bf16<8>(k, kb[u]);
#pragma unroll
            for (int g = 0; g < GP; g++) {
                s[g][u] = 0.0f;
#pragma unroll
                for (int c = 0; c < 8; c++) s[g][u] += q[g][c] * k[c];
            }
        }
#pragma unroll
        for (int off = T / 2; off > 0; off >>= 1)
#pragma unroll
            for (int g = 0; g < GP; g++)
#pragma unroll
                for (int u = 0; u < U; u++) s[g][u] += __shfl_xor_sync(0xffffffffu, s[g][u], off);
#pragma unroll
        for (int u = 0; u < U; u++)
            if (j0 + u * SUB + sub >= k1)
#pragma unroll
                for (int g = 0; g < GP; g++) s[g][u] = -INFINITY;
        float v[U][8];
#pragma unroll
        for (int u = 0; u < U; u++) hy::unpack_bf16<8>(v[u], vb[u]);
#pragma unroll
        for (int g = 0; g < GP; g++) {
            float mx = m[g];
#pragma unroll
            for (int u = 0; u < U; u++) mx = fmaxf(mx, s[g][u]);
            const float base = mx == -INFINITY ? 0.0f : mx;  // no key yet: keep exp2 away from −inf − −inf
            const float alpha = exp2f(m[g] - base);
            float w[U];
            l[g] *= alpha;
#pragma unroll
            for (int u = 0; u < U; u++) {
                w[u] = exp2f(s[g][u] - base);
                l[g] += w[u];
            }
#pragma unroll
            for (int c = 0; c < 8; c++) {
                float a = acc[g][c] * alpha;
#pragma unroll
                for (int u = 0; u < U; u++) a += w[u] * v[u][c];
                acc[g][c] = a;
            }
            m[g] = mx;
        }
    }

    // Lane groups of a warp (lanes l, l ^ T, l ^ 2T, ... share columns) merge by shuffles.
#pragma unroll
    for (int off = T; off < 32; off <<= 1)
#pragma unroll
        for (int g = 0; g < GP; g++) {
            const float mo = __shfl_xor_sync(0xffffffffu, m[g], off), lo = __shfl_xor_sync(0xffffffffu, l[g], off);
            const float mx = fmaxf(m[g], mo), base = mx == -INFINITY ? 0.0f : mx;
            const float a = exp2f(m[g] - base), c_o = exp2f(mo - base);
            l[g] = l[g] * a + lo * c_o;
#pragma unroll
            for (int c = 0; c < 8; c++) acc[g][c] = acc[g][c] * a + __shfl_xor_sync(0xffffffffu, acc[g][c], off) * c_o;
            m[g] = mx;
        }

    // Then the warps through shared memory; key k0 went to warp 0, so the block's max is finite.
    __shared__ float s_m[DEC_NW][GP], s_l[DEC_NW][GP];
    __shared__ float s_o[DEC_NW][GP][W];
    if (lane < T) {
#pragma unroll
        for (int g = 0; g < GP; g++) {
#pragma unroll
            for (int c = 0; c < 8; c++) s_o[warp][g][col + c] = acc[g][c];
            if (lane == 0) {
                s_m[warp][g] = m[g];
                s_l[warp][g] = l[g];
            }
        }
    }
    __syncthreads();
    for (int e = threadIdx.x; e < n_heads * D; e += DEC_NW * 32) {
        const int g = e / D, d = e % D;
        float M = -INFINITY;
#pragma unroll
        for (int w = 0; w < DEC_NW; w++) M = fmaxf(M, s_m[w][g]);
        float L = 0.0f, o = 0.0f;
#pragma unroll
        for (int w = 0; w < DEC_NW; w++) {
            const float wgt = exp2f(s_m[w][g] - M);  // a warp with no keys: exp2(−inf) = 0
            L += wgt * s_l[w][g];
            o += wgt * s_o[w][g][d];
        }
        const int h = h0 + g;
        if (p.n_split == 1) {
            p.o[(q_row + h) * D + d] = __float2bfloat16(o / L);
        } else {
            const size_t part = ((size_t)b * p.H + h) * p.n_split + split;
            p.part_o[part * D + d] = o;
            if (d == 0) p.part_ml[part] = make_float2(M, L);
        }
    }
}

// Grid (H, B): o = Σ_s 2^(m_s − M)·o_s / Σ_s 2^(m_s − M)·l_s over the splits lens[b] reaches (the
// ones the decode kernel wrote; split 0 always, as lens[b] ≥ 1 for a sequence with a query).
__global__ void attention_paged_merge_kernel(const decode_params p) {
    const int h = blockIdx.x, b = blockIdx.y;
    if (p.q_len[b] < 1) return;
    const int used = min(p.n_split, (p.lens[b] + p.split_keys - 1) / p.split_keys);
    const size_t part = ((size_t)b * p.H + h) * p.n_split;
    float M = -INFINITY, L = 0.0f;
    for (int s = 0; s < used; s++) M = fmaxf(M, p.part_ml[part + s].x);
    for (int s = 0; s < used; s++) L += exp2f(p.part_ml[part + s].x - M) * p.part_ml[part + s].y;
    const float inv = 1.0f / L;
    const size_t o_off = ((size_t)p.q_start[b] * p.H + h) * p.D;
    for (int d = threadIdx.x; d < p.D; d += blockDim.x) {
        float o = 0.0f;
        for (int s = 0; s < used; s++) o += exp2f(p.part_ml[part + s].x - M) * p.part_o[(part + s) * p.D + d];
        p.o[o_off + d] = __float2bfloat16(o * inv);
    }
}

using decode_fn = void (*)(decode_params);

template <int T>
decode_fn decode_kernel_for(int GP) {
    switch (GP) {
    case 1: return attention_paged_decode_kernel<T, 1>;
    case 2: return attention_paged_decode_kernel<T, 2>;
    case 4: return attention_paged_decode_kernel<T, 4>;
    default: return attention_paged_decode_kernel<T, 8>;
    }
}

decode_fn decode_kernel_for(int T, int GP) {
    switch (T) {
    case 2: return decode_kernel_for<2>(GP);
    case 4: return decode_kernel_for<4>(GP);
    case 8: return decode_kernel_for<8>(GP);
    case 16: return decode_kernel_for<16>(GP);
    default: return decode_kernel_for<32>(GP);
    }
}

size_t decode_workspace_bytes(const paged_attn_shape *s, const decode_plan &pl) {
    if (pl.n_split == 1) return 0;
    return (size_t)s->n_seqs * s->H * pl.n_split * (s->D * sizeof(float) + sizeof(float2));
}

void check_shape(const paged_attn_shape *s) {
    if (s->D <= 0 || s->D > DMAX || s->D % 8 || s->H_kv <= 0 || s->H % s->H_kv || s->block_size <= 0 ||
        s->max_blocks < 0) {
        fprintf(stderr, "hybrid: attention_paged_cuda: unsupported shape H %d H_kv %d D %d block %d\n", s->H, s->H_kv,
                s->D, s->block_size);
        abort();
    }
}

bool aligned16(const void *p) { return (uintptr_t)p % 16 == 0; }

void launch_decode(const paged_attn_shape *s, hy_bf16 *o, const hy_bf16 *q, const hy_bf16 *k_pool,
                   const hy_bf16 *v_pool, void *workspace, cudaStream_t stream) {
    if ((long)s->max_blocks * s->block_size <= 0) return;  // a table with no room holds no keys
    const decode_plan pl = plan_decode(s);
    const size_t ws = decode_workspace_bytes(s, pl);
    if (!aligned16(q) || !aligned16(k_pool) || !aligned16(v_pool) || !aligned16(workspace) || (ws && !workspace)) {
        fprintf(stderr, "hybrid: attention_paged_cuda: decode needs 16-byte aligned q, pools and workspace "
                        "(%zu bytes)\n", ws);
        abort();
    }
    float *part_o = (float *)workspace;
    float2 *part_ml = ws ? (float2 *)(part_o + (size_t)s->n_seqs * s->H * pl.n_split * s->D) : nullptr;
    const decode_params p = {o, part_o, part_ml, q, k_pool, v_pool, s->block_table, s->q_start, s->q_len, s->lens,
                             s->max_blocks, s->block_size, s->H, s->H_kv, s->D, pl.heads, pl.chunks, pl.n_split,
                             pl.split_keys, s->scale * LOG2E};
    const dim3 grid(pl.n_split, s->H_kv * pl.chunks, s->n_seqs);
    decode_kernel_for(pl.T, pl.GP)<<<grid, DEC_NW * 32, 0, stream>>>(p);
    CUDA_CHECK(cudaGetLastError());
    if (pl.n_split > 1) {
        attention_paged_merge_kernel<<<dim3(s->H, s->n_seqs), (s->D + 31) / 32 * 32, 0, stream>>>(p);
        CUDA_CHECK(cudaGetLastError());
    }
}

// ---- the scatter ------------------------------------------------------------------------------

__global__ void kv_paged_write_kernel(hy_bf16 *pool, const hy_bf16 *kv, const int32_t *rows, int T, int width) {
    const size_t n = (size_t)T * width;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (size_t)gridDim.x * blockDim.x) {
        const size_t t = e / width, c = e % width;
        pool[(size_t)rows[t] * width + c] = kv[e];
    }
}

}  // namespace

extern "C" size_t attention_paged_workspace_bytes(const paged_attn_shape *s, int max_tq) {
    check_shape(s);
    if (max_tq != 1 || s->n_seqs <= 0 || (long)s->max_blocks * s->block_size <= 0) return 0;
    return decode_workspace_bytes(s, plan_decode(s));
}

extern "C" void attention_paged_cuda(const paged_attn_shape *s, hy_bf16 *o, const hy_bf16 *q, const hy_bf16 *k_pool,
                                     const hy_bf16 *v_pool, int max_tq, void *workspace, cudaStream_t stream) {
    check_shape(s);
    if (s->n_seqs <= 0 || max_tq <= 0) return;
    if (max_tq == 1) {
        launch_decode(s, o, q, k_pool, v_pool, workspace, stream);
        return;
    }
    if (attention_paged_prefill_cuda(s, o, q, k_pool, v_pool, max_tq, stream) == 0) return;
    attention_paged_general_cuda(s, o, q, k_pool, v_pool, max_tq, stream);
}

extern "C" void attention_paged_general_cuda(const paged_attn_shape *s, hy_bf16 *o, const hy_bf16 *q,
                                             const hy_bf16 *k_pool, const hy_bf16 *v_pool, int max_tq,
                                             cudaStream_t stream) {
    check_shape(s);
    if (s->n_seqs <= 0 || max_tq <= 0) return;
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
