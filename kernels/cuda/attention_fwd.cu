// Causal flash attention forward over packed documents, GQA, bf16 in/out, fp32 lse.
//
// FlashAttention-2's forward: one block per (tile of BM = 16·NW query rows, query head); each warp
// owns 16 rows, keeps its Q fragments in registers and streams key/value tiles of BN rows through
// double-buffered shared memory (cp.async). S = Q·Kᵀ and O += P·V run on tensor cores (bf16
// mma.sync m16n8k16, fp32 accumulate); softmax is online in the log2 domain (scores pre-multiplied
// by scale·log2 e), with the row max and row sum in fp32. P is rounded to bf16 for the P·V product
// (as in FlashAttention) while the row sum uses the fp32 values. Where registers are the occupancy
// limit (D = 128), Q is read from shared memory per key tile instead of kept in registers.
//
// Packed documents: tiles run over the global token index, so a tile may straddle a document
// boundary. Row i sees keys j with doc_start(i) ≤ j ≤ i; a block visits keys from the start of
// its first row's document to its last row, and masks only the key tiles that are not visible to
// every row. No host-side knowledge of cu_seqlens is needed (it stays on the device).
// Invariants: every real row sees at least itself, so its sum is > 0; rows past T and keys past the
// block's range are zero-filled (never read as garbage) and masked.
#include <climits>
#include <cstdio>
#include <cstdlib>

#include "../ops_cuda.h"
#include "attention_common.cuh"
#include "cuda_check.h"

namespace {

using namespace attn;

struct fwd_params {
    bf16 *o;
    float *lse;
    const bf16 *q, *k, *v;
    const int32_t *cu_seqlens;
    int T, n_docs, H, H_kv, D;
    float scale_log2;  // scale · log2 e
};

template <int DMAX, int NW, int BN>
struct fwd_cfg {
    static constexpr int BM = 16 * NW, NT = 32 * NW, LD = DMAX + 8;
    static constexpr size_t smem = (size_t)(BM + 4 * BN) * LD * sizeof(bf16);  // Q, K×2, V×2
};

// s (16 × BN, fp32) = Q · K[0 .. BN)ᵀ with Q fragments fetched from the shared tile per k-step
// (ldmatrix), instead of held in registers: frees DMAX/4 registers per thread.
template <int NS, int DMAX>
__device__ __forceinline__ void tile_qk_smem_q(float (&s)[NS][4], const bf16 *q, const bf16 *k, int ld, int m0,
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

// MINB: blocks per SM the register allocation must allow (0: no bound). Q_SMEM: Q fragments are
// re-read from shared memory every key tile rather than held in registers. D = 128 uses both
// (MINB 2): holding Q took 176 registers, one block of 8 warps per SM, whose two barriers per key
// tile left the tensor cores idle; at ≤ 128 registers two blocks overlap (3.63 → 2.93 ms at
// T = 8192, H = 30 on an H100), and the extra ldmatrix of Q costs less than it wins.
template <int DMAX, int NW, int BN, int MINB, bool Q_SMEM>
__global__ void __launch_bounds__(NW * 32, MINB) attention_fwd_kernel(const fwd_params p) {
    using cfg = fwd_cfg<DMAX, NW, BN>;
    constexpr int BM = cfg::BM, NT = cfg::NT, LD = cfg::LD;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16 *sQ = reinterpret_cast<bf16 *>(smem_raw);
    bf16 *sK = sQ + BM * LD;       // [2][BN][LD]
    bf16 *sV = sK + 2 * BN * LD;   // [2][BN][LD]

    const int tile = gridDim.x - 1 - blockIdx.x;  // the longest (last) tiles start first
    const int i0 = tile * BM, h = blockIdx.y, hk = h / (p.H / p.H_kv);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const int T = p.T, D = p.D;
    const size_t q_stride = (size_t)p.H * D, kv_stride = (size_t)p.H_kv * D;

    const int i_last = min(i0 + BM, T) - 1;
    const int kv_lo = __ldg(p.cu_seqlens + doc_of(p.cu_seqlens, p.n_docs, i0));
    const int ds_last = __ldg(p.cu_seqlens + doc_of(p.cu_seqlens, p.n_docs, i_last));
    const int kv_hi = i_last + 1;
    const int n_tiles = (kv_hi - kv_lo + BN - 1) / BN;
    const bool ragged_rows = i0 + BM > T;

    const bf16 *kbase = p.k + (size_t)hk * D, *vbase = p.v + (size_t)hk * D;
    auto load_kv = [&](int it, int buf) {
        const int j0 = kv_lo + it * BN;
        load_tile<BN, DMAX, NT>(sK + buf * BN * LD, [&](int r) -> const bf16 * {
            return j0 + r < kv_hi ? kbase + (size_t)(j0 + r) * kv_stride : nullptr;
        }, D);
        load_tile<BN, DMAX, NT>(sV + buf * BN * LD, [&](int r) -> const bf16 * {
            return j0 + r < kv_hi ? vbase + (size_t)(j0 + r) * kv_stride : nullptr;
        }, D);
    };

    load_tile<BM, DMAX, NT>(sQ, [&](int r) -> const bf16 * {
        return i0 + r < T ? p.q + (size_t)(i0 + r) * q_stride + (size_t)h * D : nullptr;
    }, D);
    cp_async_commit();
    load_kv(0, 0);
    cp_async_commit();

    // This thread's two rows and their document starts (INT_MAX past T: everything masked).
    const int r0 = i0 + warp * 16 + g, r1 = r0 + 8;
    const int ds0 = r0 < T ? __ldg(p.cu_seqlens + doc_of(p.cu_seqlens, p.n_docs, r0)) : INT_MAX;
    const int ds1 = r1 < T ? __ldg(p.cu_seqlens + doc_of(p.cu_seqlens, p.n_docs, r1)) : INT_MAX;

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

    for (int it = 0; it < n_tiles; it++) {
        if (it + 1 < n_tiles) load_kv(it + 1, (it + 1) & 1);
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        const bf16 *k = sK + (it & 1) * BN * LD, *v = sV + (it & 1) * BN * LD;
        const int j0 = kv_lo + it * BN;

        float s[BN / 8][4];
        if constexpr (Q_SMEM)
            tile_qk_smem_q<BN / 8, DMAX>(s, sQ, k, LD, warp * 16, D, lane);
        else
            tile_qk<BN / 8, DMAX>(s, qf, k, LD, 0, D, lane);
        const bool need_mask = ragged_rows || j0 + BN - 1 > i0 || j0 < ds_last;
#pragma unroll
        for (int nt = 0; nt < BN / 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float x = s[nt][e] * p.scale_log2;
                if (need_mask) {
                    const int j = j0 + nt * 8 + 2 * t4 + (e & 1);
                    const int row = e < 2 ? r0 : r1, ds = e < 2 ? ds0 : ds1;
                    if (j > row || j < ds) x = -INFINITY;
                }
                s[nt][e] = x;
            }
        softmax_update(s, o, m0, m1, l0, l1);
        tile_pv<BN / 8, DMAX>(o, s, v, LD, 0, D, lane);
        __syncthreads();  // the next iteration's copy overwrites this buffer
    }
    cp_async_wait<0>();

    l0 = quad_sum(l0);
    l1 = quad_sum(l1);
    const float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
    bf16 *o0 = p.o + (size_t)r0 * q_stride + (size_t)h * D, *o1 = p.o + (size_t)r1 * q_stride + (size_t)h * D;
#pragma unroll
    for (int dn = 0; dn < DMAX / 8; dn++) {
        const int col = dn * 8 + 2 * t4;
        if (col >= D) break;
        if (r0 < T)
            *reinterpret_cast<__nv_bfloat162 *>(o0 + col) = __floats2bfloat162_rn(o[dn][0] * inv0, o[dn][1] * inv0);
        if (r1 < T)
            *reinterpret_cast<__nv_bfloat162 *>(o1 + col) = __floats2bfloat162_rn(o[dn][2] * inv1, o[dn][3] * inv1);
    }
    if (p.lse && t4 == 0) {
        if (r0 < T) p.lse[(size_t)r0 * p.H + h] = (m0 + log2f(l0)) * LN2;
        if (r1 < T) p.lse[(size_t)r1 * p.H + h] = (m1 + log2f(l1)) * LN2;
    }
}

template <int DMAX, int NW, int BN, int MINB = 0, bool Q_SMEM = false>
void launch_fwd(const fwd_params &p, cudaStream_t stream) {
    using cfg = fwd_cfg<DMAX, NW, BN>;
    auto kernel = attention_fwd_kernel<DMAX, NW, BN, MINB, Q_SMEM>;
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)cfg::smem));
    dim3 grid((p.T + cfg::BM - 1) / cfg::BM, p.H);
    kernel<<<grid, cfg::NT, cfg::smem, stream>>>(p);
    CUDA_CHECK_LAUNCH();
}

}  // namespace

extern "C" void attention_forward_cuda(const attn_shape *s, hy_bf16 *o, float *lse, const hy_bf16 *q,
                                       const hy_bf16 *k, const hy_bf16 *v, cudaStream_t stream) {
    if (s->D <= 0 || s->D > 256 || s->D % 16 || s->H_kv <= 0 || s->H % s->H_kv) {
        fprintf(stderr, "hybrid: attention_forward_cuda: unsupported shape H %d H_kv %d D %d\n", s->H, s->H_kv, s->D);
        abort();
    }
    if (s->T <= 0) return;
    fwd_params p = {o, lse, q, k, v, s->cu_seqlens, s->T, s->n_docs, s->H, s->H_kv, s->D, s->scale * LOG2E};
    switch (dmax_bucket(s->D)) {
        case 32: launch_fwd<32, 4, 64>(p, stream); break;
        case 64: launch_fwd<64, 4, 64>(p, stream); break;
        case 128: launch_fwd<128, 8, 64, 2, true>(p, stream); break;
        default: launch_fwd<256, 4, 32>(p, stream); break;
    }
}
