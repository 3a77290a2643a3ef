// Tensor-core attention of new queries against the paged KV pool: the max_tq > 1 path of
// attention_paged_cuda (prefill chunks, possibly beside one-token decodes in the same call).
//
// Why: the general paged kernel (attention_paged.cu) gives every (query, q head) its own block and
// scalar dot products: ~70 ms per layer for a 2048-query chunk at 8k context beside 32 decodes
// (H 32/8, D 128) on an H100. This is attention_cached.cu's tensor-core kernel (mma.sync bf16,
// fp32 accumulate, the online softmax of attention_common.cuh) with two changes:
//   - K/V row j of sequence b is read through its block table: pool row
//     block_table[b · max_blocks + j / block_size] · block_size + j % block_size, row stride
//     H_kv · D elements. One lookup per (key row, 16-byte chunk) serves both the K and the V copy.
//   - No key split: a launch with max_tq > 1 has enough row tiles to fill the GPU, so each block
//     walks all the keys its rows see and normalises its own output (no cluster, no workspace).
//     The tile shapes are attention_fwd.cu's, tuned there for the same inner loop: D ≤ 64 4 warps
//     and 64-key tiles; D ≤ 128 8 warps, 64-key tiles, Q re-read from shared memory so that two
//     blocks (2 × 102 KB) fit an SM; D ≤ 256 4 warps and 32-key tiles.
//
// Grid (row tiles, H_kv, B); block NW warps, BM = 16·NW rows. As in attention_cached.cu the rows
// of a tile are (query, q head of the GQA group) pairs, R = query · group + head, so the heads that
// share a KV head read each K/V tile once. Each warp owns 16 rows and streams BN-key tiles through
// double-buffered shared memory (cp.async). A warp whose rows are all past q_len[b] (the decodes
// of a mixed call fill 1·group rows of a tile), or whose rows' causal limits all lie before the
// tile's first key, skips the products but still copies and meets the barriers. The grid's x runs
// backwards so a sequence's last tiles (the most keys) start first. The grid depends on the shape
// and max_tq only, never on lens or q_len; blocks past a sequence's rows exit at once.
//
// Invariants: query i of sequence b sits at position p0 + i (p0 = lens[b] − q_len[b]) and sees keys
// 0 .. p0 + i. A tile loads keys below its last row's limit (≤ lens[b]) and zero-fills the rest of
// its last key tile, so pool rows past lens[b] (stale, or NaN poison) are never read; keys past a
// row's limit are masked to −inf before the softmax. Every real row sees key 0, so its sum is > 0.
#include <cstdint>

#include "../ops_cuda.h"
#include "attention_common.cuh"
#include "cuda_check.h"

namespace {

using namespace attn;

struct prefill_params {
    bf16 *o;                                     // (Tq, H, D) =
    const bf16 *q;                               // (Tq, H, D)
    const bf16 *k_pool, *v_pool;                 // (n_blocks · block_size, H_kv, D)
    const int32_t *block_table;                  // (B, max_blocks)
    const int32_t *q_start, *q_len, *lens;       // (B)
    int max_blocks, block_size, H, H_kv, D;
    float scale_log2;                            // scale · log2 e
};

template <int DMAX, int NW, int BN>
struct prefill_cfg {
    static constexpr int BM = 16 * NW, NT = 32 * NW, LD = DMAX + 8;
    static constexpr size_t smem = (size_t)(BM + 4 * BN) * LD * sizeof(bf16);  // Q, K×2, V×2
};

// s (16 × 8·NS, fp32) = Q · K[0 .. 8·NS)ᵀ with the Q fragments re-read from the shared tile at each
// k-step instead of held in registers (Q_SMEM below).
template <int NS, int DMAX>
__device__ __forceinline__ void tile_qk_shared_q(float (&s)[NS][4], const bf16 *q, const bf16 *k, int ld, int m0,
                                                 int D, int lane) {
#pragma unroll
    for (int i = 0; i < NS; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < DMAX / 16; ks++) {
        if (ks * 16 >= D) break;
        uint32_t a[4];
        frag_a(a, q, ld, m0, ks * 16, lane);
#pragma unroll
        for (int np = 0; np < NS / 2; np++) {
            uint32_t b[4];
            frag_b_n(b, k, ld, np * 16, ks * 16, lane);
            mma_bf16(s[2 * np], a, b[0], b[1]);
            mma_bf16(s[2 * np + 1], a, b[2], b[3]);
        }
    }
}

// MINB: blocks per SM the register allocation must allow (0: no bound). Q_SMEM: Q fragments come
// from shared memory every key tile (frees DMAX/4 registers; attention_fwd.cu measured it a win at
// D = 128 together with MINB 2).
template <int DMAX, int NW, int BN, int MINB, bool Q_SMEM>
__global__ void __launch_bounds__(NW * 32, MINB) attention_paged_prefill_kernel(const prefill_params p) {
    using cfg = prefill_cfg<DMAX, NW, BN>;
    constexpr int BM = cfg::BM, NT = cfg::NT, LD = cfg::LD, CHUNKS = DMAX / 8;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16 *sQ = reinterpret_cast<bf16 *>(smem_raw);
    bf16 *sK = sQ + BM * LD;      // [2][BN][LD]
    bf16 *sV = sK + 2 * BN * LD;  // [2][BN][LD]

    const int mt = gridDim.x - 1 - blockIdx.x, hk = blockIdx.y, b = blockIdx.z;
    const int group = p.H / p.H_kv, D = p.D;
    const int ql = __ldg(p.q_len + b), rows = ql * group, R0 = mt * BM;
    if (R0 >= rows) return;  // a sequence with fewer queries than max_tq, or none
    const int p0 = __ldg(p.lens + b) - ql, qs = __ldg(p.q_start + b);
    const size_t q_stride = (size_t)p.H * D, kv_stride = (size_t)p.H_kv * D;
    const int n_keys = p0 + (min(R0 + BM, rows) - 1) / group + 1;  // the last real row's limit + 1
    const int n_tiles = (n_keys + BN - 1) / BN;
    const int32_t *table = p.block_table + (size_t)b * p.max_blocks;
    const int bs = p.block_size;

    auto load_kv = [&](int tile, int buf) {
        bf16 *k = sK + buf * BN * LD, *v = sV + buf * BN * LD;
        const int j0 = tile * BN;
#pragma unroll 4
        for (int idx = threadIdx.x; idx < BN * CHUNKS; idx += NT) {
            const int r = idx / CHUNKS, c = idx % CHUNKS, j = j0 + r;
            bf16 *dk = k + r * LD + c * 8, *dv = v + r * LD + c * 8;
            if (j < n_keys && c * 8 < D) {
                const size_t row = (size_t)__ldg(table + j / bs) * bs + j % bs;
                const size_t off = row * kv_stride + (size_t)hk * D + c * 8;
                cp_async16(dk, p.k_pool + off);
                cp_async16(dv, p.v_pool + off);
            } else {
                *reinterpret_cast<uint4 *>(dk) = make_uint4(0, 0, 0, 0);
                *reinterpret_cast<uint4 *>(dv) = make_uint4(0, 0, 0, 0);
            }
        }
    };
    auto q_row = [&](int R) -> size_t {  // row R of the sequence's tiles → element offset in q / o
        return (size_t)(qs + R / group) * q_stride + (size_t)(hk * group + R % group) * D;
    };

    load_tile<BM, DMAX, NT>(sQ, [&](int r) -> const bf16 * { return R0 + r < rows ? p.q + q_row(R0 + r) : nullptr; },
                            D);
    cp_async_commit();
    if (n_tiles > 0) load_kv(0, 0);
    cp_async_commit();

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const int Rw = R0 + warp * 16;                           // this warp's first row
    const bool live = Rw < rows;                             // any real row in this warp
    const int w_first = p0 + Rw / group;                     // position of its first row
    const int w_last = p0 + (min(Rw + 16, rows) - 1) / group;  // of its last real row
    // This thread's rows; rows past the queries are zero, never stored: leave them unmasked.
    const int ra = Rw + g, rb = ra + 8;
    const int pos_a = p0 + ra / group, pos_b = p0 + rb / group;

    cp_async_wait<1>();
    __syncthreads();
    uint32_t qf[Q_SMEM ? 1 : DMAX / 16][4];
    if constexpr (!Q_SMEM) {
#pragma unroll
        for (int ks = 0; ks < DMAX / 16; ks++) frag_a(qf[ks], sQ, LD, warp * 16, ks * 16, lane);
    }

    float o[DMAX / 8][4];
#pragma unroll
    for (int i = 0; i < DMAX / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;  // l: this thread's partial sums

    for (int tile = 0; tile < n_tiles; tile++) {
        const int buf = tile & 1, j0 = tile * BN;
        if (tile + 1 < n_tiles) load_kv(tile + 1, buf ^ 1);
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        if (live && j0 <= w_last) {  // warp-uniform: otherwise every score of the warp's rows is masked
            const bf16 *k = sK + buf * BN * LD, *v = sV + buf * BN * LD;
            float s[BN / 8][4];
            if constexpr (Q_SMEM)
                tile_qk_shared_q<BN / 8, DMAX>(s, sQ, k, LD, warp * 16, D, lane);
            else
                tile_qk<BN / 8, DMAX>(s, qf, k, LD, 0, D, lane);
            const bool need_mask = j0 + BN - 1 > w_first;
#pragma unroll
            for (int nt = 0; nt < BN / 8; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    float x = s[nt][e] * p.scale_log2;
                    if (need_mask && j0 + nt * 8 + 2 * t4 + (e & 1) > (e < 2 ? pos_a : pos_b)) x = -INFINITY;
                    s[nt][e] = x;
                }
            softmax_update(s, o, m0, m1, l0, l1);
            tile_pv<BN / 8, DMAX>(o, s, v, LD, 0, D, lane);
        }
        __syncthreads();  // the next iteration's copy overwrites this buffer
    }
    cp_async_wait<0>();

    l0 = quad_sum(l0);
    l1 = quad_sum(l1);
    const float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
    bf16 *oa = ra < rows ? p.o + q_row(ra) : nullptr, *ob = rb < rows ? p.o + q_row(rb) : nullptr;
#pragma unroll
    for (int dn = 0; dn < DMAX / 8; dn++) {
        const int col = dn * 8 + 2 * t4;
        if (col >= D) break;
        if (oa) *reinterpret_cast<__nv_bfloat162 *>(oa + col) = __floats2bfloat162_rn(o[dn][0] * inv0, o[dn][1] * inv0);
        if (ob) *reinterpret_cast<__nv_bfloat162 *>(ob + col) = __floats2bfloat162_rn(o[dn][2] * inv1, o[dn][3] * inv1);
    }
}

template <int DMAX, int NW, int BN, int MINB = 0, bool Q_SMEM = false>
void launch_prefill(const prefill_params &p, int B, int max_tq, cudaStream_t stream) {
    using cfg = prefill_cfg<DMAX, NW, BN>;
    auto kernel = attention_paged_prefill_kernel<DMAX, NW, BN, MINB, Q_SMEM>;
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)cfg::smem));
    const long rows = (long)max_tq * (p.H / p.H_kv);
    const dim3 grid((unsigned)((rows + cfg::BM - 1) / cfg::BM), p.H_kv, B);
    kernel<<<grid, cfg::NT, cfg::smem, stream>>>(p);
    CUDA_CHECK_LAUNCH();
}

bool aligned(const void *ptr, uintptr_t bytes) { return (uintptr_t)ptr % bytes == 0; }

}  // namespace

extern "C" int attention_paged_prefill_cuda(const paged_attn_shape *s, hy_bf16 *o, const hy_bf16 *q,
                                            const hy_bf16 *k_pool, const hy_bf16 *v_pool, int max_tq,
                                            cudaStream_t stream) {
    // cp.async copies 16-byte pieces of q and the pools; o takes 4-byte pairs.
    if (s->D <= 0 || s->D > 256 || s->D % 16 || s->H_kv <= 0 || s->H % s->H_kv || s->H_kv > 65535 ||
        s->n_seqs > 65535 || s->block_size <= 0 || s->max_blocks < 0 || !aligned(q, 16) || !aligned(k_pool, 16) ||
        !aligned(v_pool, 16) || !aligned(o, 4))
        return -1;
    if (s->n_seqs <= 0 || max_tq <= 0) return 0;
    const prefill_params p = {o, q, k_pool, v_pool, s->block_table, s->q_start, s->q_len, s->lens, s->max_blocks,
                              s->block_size, s->H, s->H_kv, s->D, s->scale * LOG2E};
    switch (dmax_bucket(s->D)) {
        case 32: launch_prefill<32, 4, 64>(p, s->n_seqs, max_tq, stream); break;
        case 64: launch_prefill<64, 4, 64>(p, s->n_seqs, max_tq, stream); break;
        case 128: launch_prefill<128, 8, 64, 2, true>(p, s->n_seqs, max_tq, stream); break;
        default: launch_prefill<256, 4, 32>(p, s->n_seqs, max_tq, stream); break;
    }
    return 0;
}
