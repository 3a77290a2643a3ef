// Causal flash attention backward over packed documents, GQA; accumulates into dq, dk, dv (bf16).
//
// FlashAttention-2's backward, in three launches:
//   1. pre:  δ_i = rowsum(dO_i ∘ O_i) (fp32, workspace) and zeroing of the fp32 dQ accumulator.
//   2. main: one block per (tile of BN = 16·NW keys, KV head). K and V stay in shared memory; each
//      warp owns 16 keys and keeps their dK, dV in fp32 registers. The block walks every query
//      head of the KV group and every query tile that can see its keys (from its first key to the
//      end of the last key's document), double-buffering Q, dO, lse and δ with cp.async. Per tile,
//      in the transposed layout (keys as rows) so that P and dS feed the next products straight
//      from registers:  Sᵀ = K·Qᵀ, Pᵀ = exp2(Sᵀ·scale·log2 e − lse·log2 e), dPᵀ = V·dOᵀ,
//      dSᵀ = Pᵀ∘(dPᵀ − δ)·scale;  dV += Pᵀ·dO, dK += dSᵀ·Q. dSᵀ goes through shared memory for
//      dQ = dS·K, added to the fp32 accumulator with float2 atomics.
//   3. post: dq += accumulator (read bf16, add in fp32, round once).
// Because a block covers every query head that shares its KV head, dK and dV of a GQA group are
// summed in registers and written once (read-add-round): no atomics and no expanded buffers.
// All products are bf16 mma.sync with fp32 accumulation; P and dS are rounded to bf16 only as
// operands. The masking rule is the forward's: key j is visible to row i iff doc_start(i) ≤ j ≤ i.
#include <climits>
#include <cstdio>
#include <cstdlib>

#include "../ops_cuda.h"
#include "attention_common.cuh"
#include "cuda_check.h"

namespace {

using namespace attn;

struct bwd_params {
    hy_bf16 *dk, *dv;
    float *dq_acc;       // (T, H, D) fp32, or nullptr when dq is not needed
    const float *delta;  // (T, H)
    const bf16 *d_o, *q, *k, *v;
    const float *lse;
    const int32_t *cu_seqlens;
    int T, n_docs, H, H_kv, D;
    float scale, scale_log2;
};

inline size_t align256(size_t n) { return (n + 255) & ~(size_t)255; }

// δ for each (token, head) row, one warp per row; zeroes the row's dQ accumulator.
__global__ void attention_bwd_pre_kernel(float *delta, float *dq_acc, const bf16 *d_o, const bf16 *o, int rows,
                                         int D) {
    const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (row >= rows) return;
    const bf16 *a = d_o + (size_t)row * D, *b = o + (size_t)row * D;
    float s = 0.0f;
    for (int c = lane * 2; c < D; c += 64) {
        const float2 x = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(a + c));
        const float2 y = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162 *>(b + c));
        s += x.x * y.x + x.y * y.y;
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (lane == 0) delta[row] = s;
    if (dq_acc)
        for (int c = lane * 4; c < D; c += 128)
            *reinterpret_cast<float4 *>(dq_acc + (size_t)row * D + c) = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
}

// dq += acc, elementwise over n (even) values.
__global__ void attention_bwd_post_kernel(bf16 *dq, const float *acc, size_t n) {
    const size_t step = 2 * (size_t)gridDim.x * blockDim.x;
    for (size_t i = 2 * ((size_t)blockIdx.x * blockDim.x + threadIdx.x); i < n; i += step) {
        __nv_bfloat162 *d = reinterpret_cast<__nv_bfloat162 *>(dq + i);
        const float2 x = __bfloat1622float2(*d);
        const float2 a = *reinterpret_cast<const float2 *>(acc + i);
        *d = __floats2bfloat162_rn(x.x + a.x, x.y + a.y);
    }
}

template <int DMAX, int NW, int BM>
struct bwd_cfg {
    static constexpr int BN = 16 * NW, NT = 32 * NW, LD = DMAX + 8, LDS = BM + 8;
    static constexpr int WMQ = BM / 16, WDQ = NW / WMQ, DW = DMAX / WDQ;  // dQ phase: warps over rows × cols
    static_assert(NW % WMQ == 0 && DW % 16 == 0, "dQ warp layout");
    static constexpr size_t smem = (size_t)(2 * BN + 4 * BM) * LD * sizeof(bf16)  // K, V, Q×2, dO×2
                                   + (size_t)BN * LDS * sizeof(bf16)               // dSᵀ
                                   + (size_t)2 * BM * (2 * sizeof(float) + sizeof(int));  // lse, δ, doc start ×2
};

template <int DMAX, int NW, int BM>
__global__ void __launch_bounds__(NW * 32) attention_bwd_kernel(const bwd_params p) {
    using cfg = bwd_cfg<DMAX, NW, BM>;
    constexpr int BN = cfg::BN, NT = cfg::NT, LD = cfg::LD, LDS = cfg::LDS;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16 *sK = reinterpret_cast<bf16 *>(smem_raw);
    bf16 *sV = sK + BN * LD;
    bf16 *sQ = sV + BN * LD;        // [2][BM][LD]
    bf16 *sdO = sQ + 2 * BM * LD;   // [2][BM][LD]
    bf16 *sdS = sdO + 2 * BM * LD;  // [BN][LDS]: dSᵀ, keys × queries
    float *sLse = reinterpret_cast<float *>(sdS + BN * LDS);  // [2][BM], log2 domain
    float *sDelta = sLse + 2 * BM;                            // [2][BM]
    int *sQds = reinterpret_cast<int *>(sDelta + 2 * BM);     // [2][BM]: document start of each query row

    const int j0 = blockIdx.x * BN, hk = blockIdx.y, group = p.H / p.H_kv;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const int T = p.T, D = p.D, H = p.H;
    const size_t q_stride = (size_t)H * D, kv_stride = (size_t)p.H_kv * D;

    const int j_last = min(j0 + BN, T) - 1;
    const int q_end = __ldg(p.cu_seqlens + doc_of(p.cu_seqlens, p.n_docs, j_last) + 1);
    const int nq = (q_end - j0 + BM - 1) / BM;
    const int n_iter = group * nq;

    load_tile<BN, DMAX, NT>(sK, [&](int r) -> const bf16 * {
        return j0 + r < T ? p.k + (size_t)(j0 + r) * kv_stride + (size_t)hk * D : nullptr;
    }, D);
    load_tile<BN, DMAX, NT>(sV, [&](int r) -> const bf16 * {
        return j0 + r < T ? p.v + (size_t)(j0 + r) * kv_stride + (size_t)hk * D : nullptr;
    }, D);
    auto load_q = [&](int it, int buf) {
        const int h = hk * group + it / nq, i0 = j0 + (it % nq) * BM;
        load_tile<BM, DMAX, NT>(sQ + buf * BM * LD, [&](int r) -> const bf16 * {
            return i0 + r < q_end ? p.q + (size_t)(i0 + r) * q_stride + (size_t)h * D : nullptr;
        }, D);
        load_tile<BM, DMAX, NT>(sdO + buf * BM * LD, [&](int r) -> const bf16 * {
            return i0 + r < q_end ? p.d_o + (size_t)(i0 + r) * q_stride + (size_t)h * D : nullptr;
        }, D);
        for (int r = threadIdx.x; r < BM; r += NT) {
            const int i = i0 + r;
            const bool ok = i < q_end;
            sLse[buf * BM + r] = ok ? p.lse[(size_t)i * H + h] * LOG2E : 0.0f;
            sDelta[buf * BM + r] = ok ? p.delta[(size_t)i * H + h] : 0.0f;
            sQds[buf * BM + r] = ok ? __ldg(p.cu_seqlens + doc_of(p.cu_seqlens, p.n_docs, i)) : INT_MAX;
        }
    };
    if (n_iter > 0) load_q(0, 0);
    cp_async_commit();

    const int kr0 = j0 + warp * 16 + g, kr1 = kr0 + 8;  // this thread's two keys
    float dk[DMAX / 8][4], dv[DMAX / 8][4];
#pragma unroll
    for (int i = 0; i < DMAX / 8; i++)
#pragma unroll
        for (int e = 0; e < 4; e++) dk[i][e] = dv[i][e] = 0.0f;

    for (int it = 0; it < n_iter; it++) {
        const int buf = it & 1;
        if (it + 1 < n_iter) load_q(it + 1, buf ^ 1);
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        const int h = hk * group + it / nq, i0 = j0 + (it % nq) * BM;
        const bf16 *q_s = sQ + buf * BM * LD, *do_s = sdO + buf * BM * LD;
        const float *lse_s = sLse + buf * BM, *delta_s = sDelta + buf * BM;
        const int *qds_s = sQds + buf * BM;

        float st[BM / 8][4], dpt[BM / 8][4];
#pragma unroll
        for (int i = 0; i < BM / 8; i++)
#pragma unroll
            for (int e = 0; e < 4; e++) st[i][e] = dpt[i][e] = 0.0f;
#pragma unroll
        for (int ks = 0; ks < DMAX / 16; ks++) {
            if (ks * 16 >= D) break;
            uint32_t ak[4], av[4];
            frag_a(ak, sK, LD, warp * 16, ks * 16, lane);
            frag_a(av, sV, LD, warp * 16, ks * 16, lane);
#pragma unroll
            for (int np = 0; np < BM / 16; np++) {
                uint32_t b[4];
                frag_b_n(b, q_s, LD, np * 16, ks * 16, lane);
                mma_bf16(st[2 * np], ak, b[0], b[1]);
                mma_bf16(st[2 * np + 1], ak, b[2], b[3]);
                frag_b_n(b, do_s, LD, np * 16, ks * 16, lane);
                mma_bf16(dpt[2 * np], av, b[0], b[1]);
                mma_bf16(dpt[2 * np + 1], av, b[2], b[3]);
            }
        }

        // Every pair visible (no masking) iff all rows are ≥ the last key, real, and in a
        // document that starts at or before the first key.
        const bool need_mask = i0 < j0 + BN - 1 || i0 + BM > q_end || qds_s[BM - 1] > j0;
#pragma unroll
        for (int nt = 0; nt < BM / 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int c = nt * 8 + 2 * t4 + (e & 1);
                float pv = exp2f(st[nt][e] * p.scale_log2 - lse_s[c]);
                if (need_mask) {
                    const int i = i0 + c, j = e < 2 ? kr0 : kr1;
                    if (j > i || qds_s[c] > j) pv = 0.0f;
                }
                st[nt][e] = pv;
                dpt[nt][e] = pv * (dpt[nt][e] - delta_s[c]) * p.scale;
            }

#pragma unroll
        for (int kk = 0; kk < BM / 16; kk++) {
            uint32_t ap[4], as[4];
            c_to_a(ap, st, kk);
            c_to_a(as, dpt, kk);
#pragma unroll
            for (int dp = 0; dp < DMAX / 16; dp++) {
                if (dp * 16 >= D) break;
                uint32_t b[4];
                frag_b_k(b, do_s, LD, kk * 16, dp * 16, lane);
                mma_bf16(dv[2 * dp], ap, b[0], b[1]);
                mma_bf16(dv[2 * dp + 1], ap, b[2], b[3]);
                frag_b_k(b, q_s, LD, kk * 16, dp * 16, lane);
                mma_bf16(dk[2 * dp], as, b[0], b[1]);
                mma_bf16(dk[2 * dp + 1], as, b[2], b[3]);
            }
        }

        if (p.dq_acc) {
#pragma unroll
            for (int nt = 0; nt < BM / 8; nt++) {
                bf16 *row = sdS + (warp * 16 + g) * LDS + nt * 8 + 2 * t4;
                *reinterpret_cast<uint32_t *>(row) = pack_bf16(dpt[nt][0], dpt[nt][1]);
                *reinterpret_cast<uint32_t *>(row + 8 * LDS) = pack_bf16(dpt[nt][2], dpt[nt][3]);
            }
        }
        __syncthreads();  // dSᵀ complete; Q/dO of this buffer no longer read (the next copy reuses it)
        if (p.dq_acc) {
            const int wm = warp % cfg::WMQ, wd = warp / cfg::WMQ;
            constexpr int DW = cfg::DW;
            float acc[DW / 8][4];
#pragma unroll
            for (int i = 0; i < DW / 8; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;
#pragma unroll
            for (int kk = 0; kk < BN / 16; kk++) {
                uint32_t a[4];
                frag_a_t(a, sdS, LDS, kk * 16, wm * 16, lane);
#pragma unroll
                for (int dp = 0; dp < DW / 16; dp++) {
                    if (wd * DW + dp * 16 >= D) break;
                    uint32_t b[4];
                    frag_b_k(b, sK, LD, kk * 16, wd * DW + dp * 16, lane);
                    mma_bf16(acc[2 * dp], a, b[0], b[1]);
                    mma_bf16(acc[2 * dp + 1], a, b[2], b[3]);
                }
            }
            const int ia = i0 + wm * 16 + g, ib = ia + 8;
            float *qa = p.dq_acc + ((size_t)ia * H + h) * D, *qb = p.dq_acc + ((size_t)ib * H + h) * D;
#pragma unroll
            for (int dn = 0; dn < DW / 8; dn++) {
                const int col = wd * DW + dn * 8 + 2 * t4;
                if (col >= D) break;
                if (ia < q_end) atomicAdd(reinterpret_cast<float2 *>(qa + col), make_float2(acc[dn][0], acc[dn][1]));
                if (ib < q_end) atomicAdd(reinterpret_cast<float2 *>(qb + col), make_float2(acc[dn][2], acc[dn][3]));
            }
        }
    }
    cp_async_wait<0>();

    // dk, dv += the group's sums: read bf16, add in fp32, round once.
#pragma unroll
    for (int half = 0; half < 2; half++) {
        const int key = half ? kr1 : kr0;
        if (key >= T) continue;
        const size_t off = (size_t)key * kv_stride + (size_t)hk * D;
#pragma unroll
        for (int dn = 0; dn < DMAX / 8; dn++) {
            const int col = dn * 8 + 2 * t4;
            if (col >= D) break;
            if (p.dk) {
                __nv_bfloat162 *d = reinterpret_cast<__nv_bfloat162 *>(p.dk + off + col);
                const float2 x = __bfloat1622float2(*d);
                *d = __floats2bfloat162_rn(x.x + dk[dn][2 * half], x.y + dk[dn][2 * half + 1]);
            }
            if (p.dv) {
                __nv_bfloat162 *d = reinterpret_cast<__nv_bfloat162 *>(p.dv + off + col);
                const float2 x = __bfloat1622float2(*d);
                *d = __floats2bfloat162_rn(x.x + dv[dn][2 * half], x.y + dv[dn][2 * half + 1]);
            }
        }
    }
}

template <int DMAX, int NW, int BM>
void launch_bwd(const bwd_params &p, cudaStream_t stream) {
    using cfg = bwd_cfg<DMAX, NW, BM>;
    auto kernel = attention_bwd_kernel<DMAX, NW, BM>;
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)cfg::smem));
    dim3 grid((p.T + cfg::BN - 1) / cfg::BN, p.H_kv);
    kernel<<<grid, cfg::NT, cfg::smem, stream>>>(p);
    CUDA_CHECK_LAUNCH();
}

}  // namespace

extern "C" size_t attention_backward_workspace_bytes(const attn_shape *s) {
    return align256((size_t)s->T * s->H * s->D * sizeof(float)) + align256((size_t)s->T * s->H * sizeof(float));
}

extern "C" void attention_backward_cuda(const attn_shape *s, hy_bf16 *dq, hy_bf16 *dk, hy_bf16 *dv,
                                        const hy_bf16 *d_o, const hy_bf16 *q, const hy_bf16 *k, const hy_bf16 *v,
                                        const hy_bf16 *o, const float *lse, void *workspace, cudaStream_t stream) {
    if (s->D <= 0 || s->D > 256 || s->D % 16 || s->H_kv <= 0 || s->H % s->H_kv) {
        fprintf(stderr, "hybrid: attention_backward_cuda: unsupported shape H %d H_kv %d D %d\n", s->H, s->H_kv, s->D);
        abort();
    }
    if (s->T <= 0 || (!dq && !dk && !dv)) return;
    const int rows = s->T * s->H;
    float *dq_acc = dq ? static_cast<float *>(workspace) : nullptr;
    float *delta = reinterpret_cast<float *>(static_cast<char *>(workspace) +
                                             align256((size_t)rows * s->D * sizeof(float)));

    attention_bwd_pre_kernel<<<(rows + 7) / 8, 256, 0, stream>>>(delta, dq_acc, d_o, o, rows, s->D);
    CUDA_CHECK_LAUNCH();

    bwd_params p = {dk, dv, dq_acc, delta, d_o, q, k, v, lse, s->cu_seqlens, s->T, s->n_docs,
                    s->H, s->H_kv, s->D, s->scale, s->scale * LOG2E};
    switch (dmax_bucket(s->D)) {
        case 32: launch_bwd<32, 4, 64>(p, stream); break;
        case 64: launch_bwd<64, 4, 64>(p, stream); break;
        case 128: launch_bwd<128, 8, 64>(p, stream); break;
        default: launch_bwd<256, 4, 32>(p, stream); break;
    }

    if (dq) {
        const size_t n = (size_t)rows * s->D;
        const int blocks = (int)((n / 2 + 255) / 256 < 4096 ? (n / 2 + 255) / 256 : 4096);
        attention_bwd_post_kernel<<<blocks, 256, 0, stream>>>(dq, dq_acc, n);
        CUDA_CHECK_LAUNCH();
    }
}
