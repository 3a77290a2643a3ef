// Attention of new queries against a KV cache (decode, prefill and continuation), with the key
// range split across a thread-block cluster (flash-decoding) and no global workspace.
//
// Sequence b has q_len[b] queries at positions p0 .. lens[b]−1 (p0 = lens[b] − q_len[b]) and reads
// the first lens[b] entries of cache slot slots[b]; query i sees keys j ≤ p0 + i. The rows of a
// block's query tile are (query, head of the GQA group) pairs, so the heads sharing a KV head read
// each K/V tile once: for decode the group fills the rows of the tensor-core tile.
//
// Work split, chosen on the host from max_tq, H/H_kv and max_len (the device lens are not seen):
//   - Rows: BM = 16·WM rows per block. Decode-sized tiles (≤ 16 rows) use WM = 1 with WN = 4 warps
//     that take different keys of each 64-key stage; larger tiles use WM = 4 warps over rows.
//   - Keys: the S blocks of a cluster (S ≤ 8, the portable cluster size) take contiguous ranges of
//     key tiles. Each warp runs the forward's online softmax (attention_common.cuh) over its keys,
//     leaves an unnormalised partial (O, max, sum) in its block's shared memory, and after a
//     cluster barrier every block combines a share of the rows from all S·WN partials through
//     distributed shared memory. A second barrier keeps the partials alive until all are read.
// So the scratch of the split is on chip and bounded by the cluster (no workspace argument).
// Cache entries past what a row may see are never used unmasked; rows of K/V past the tile's
// last visible key are zero-filled, never loaded, so stale or NaN cache contents cannot leak in.
#include <cooperative_groups.h>

#include <cstdio>
#include <cstdlib>

#include "../ops_cuda.h"
#include "attention_common.cuh"
#include "cuda_check.h"

namespace cg = cooperative_groups;

namespace {

using namespace attn;

struct cached_params {
    bf16 *o;
    const bf16 *q, *k_cache, *v_cache;
    const int32_t *slots, *q_start, *q_len, *lens;
    int max_len, H, H_kv, D;
    float scale_log2;
};

template <int DMAX, int WM, int WN>
struct cached_cfg {
    static constexpr int KT = 64, KW = KT / WN, BM = 16 * WM, NT = 32 * WM * WN, LD = DMAX + 8;
    static constexpr size_t kv_bytes = (size_t)4 * KT * LD * sizeof(bf16);  // K×2, V×2
    static constexpr size_t partial_bytes = (size_t)WN * BM * (DMAX + 2) * sizeof(float);
    static_assert(partial_bytes <= kv_bytes, "partials reuse the K/V buffers");
    static_assert(KW % 16 == 0, "each warp takes whole 16-key steps");
    static constexpr size_t smem = (size_t)BM * LD * sizeof(bf16) + kv_bytes;
};

template <int DMAX, int WM, int WN>
__global__ void __launch_bounds__(WM *WN * 32) attention_cached_kernel(const cached_params p) {
    using cfg = cached_cfg<DMAX, WM, WN>;
    constexpr int KT = cfg::KT, KW = cfg::KW, BM = cfg::BM, NT = cfg::NT, LD = cfg::LD;
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16 *sQ = reinterpret_cast<bf16 *>(smem_raw);
    bf16 *sK = sQ + BM * LD;      // [2][KT][LD]
    bf16 *sV = sK + 2 * KT * LD;  // [2][KT][LD]
    // After the key loop the K/V buffers hold the partials: O [WN][BM][DMAX], max and sum [WN][BM].
    float *pO = reinterpret_cast<float *>(sK);
    float *pM = pO + WN * BM * DMAX;
    float *pL = pM + WN * BM;

    cg::cluster_group cluster = cg::this_cluster();
    const int S = gridDim.x, rank = blockIdx.x;  // the cluster spans the grid's x dimension
    const int mt = blockIdx.y / p.H_kv, hk = blockIdx.y % p.H_kv, b = blockIdx.z;
    const int group = p.H / p.H_kv, D = p.D;
    const int ql = __ldg(p.q_len + b), rows = ql * group, R0 = mt * BM;
    if (R0 >= rows) return;  // the same for every block of the cluster
    const int len = __ldg(p.lens + b), p0 = len - ql, qs = __ldg(p.q_start + b);
    const size_t q_stride = (size_t)p.H * D, kv_stride = (size_t)p.H_kv * D;

    const int R_last = min(R0 + BM, rows) - 1;
    const int n_keys = p0 + R_last / group + 1, p_first = p0 + R0 / group;
    const int n_tiles = (n_keys + KT - 1) / KT, per = (n_tiles + S - 1) / S;
    const int t_begin = rank * per, t_end = min(n_tiles, t_begin + per);

    const size_t slot_off = (size_t)__ldg(p.slots + b) * p.max_len * kv_stride + (size_t)hk * D;
    const bf16 *kbase = p.k_cache + slot_off, *vbase = p.v_cache + slot_off;
    auto load_kv = [&](int tile, int buf) {
        const int j0 = tile * KT;
        load_tile<KT, DMAX, NT>(sK + buf * KT * LD, [&](int r) -> const bf16 * {
            return j0 + r < n_keys ? kbase + (size_t)(j0 + r) * kv_stride : nullptr;
        }, D);
        load_tile<KT, DMAX, NT>(sV + buf * KT * LD, [&](int r) -> const bf16 * {
            return j0 + r < n_keys ? vbase + (size_t)(j0 + r) * kv_stride : nullptr;
        }, D);
    };
    auto q_row = [&](int R) -> size_t {  // row R of the tile → element offset of (query, head) in q / o
        return (size_t)(qs + R / group) * q_stride + (size_t)(hk * group + R % group) * D;
    };

    load_tile<BM, DMAX, NT>(sQ, [&](int r) -> const bf16 * { return R0 + r < rows ? p.q + q_row(R0 + r) : nullptr; },
                            D);
    cp_async_commit();
    if (t_begin < t_end) load_kv(t_begin, 0);
    cp_async_commit();

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const int wm = warp / WN, wn = warp % WN;
    const int ra = wm * 16 + g, rb = ra + 8;  // this thread's rows in the tile
    // Positions of the rows (rows past the queries are zero and never stored: leave them unmasked).
    const int pos_a = p0 + (R0 + ra) / group, pos_b = p0 + (R0 + rb) / group;

    cp_async_wait<1>();
    __syncthreads();
    uint32_t qf[DMAX / 16][4];
#pragma unroll
    for (int ks = 0; ks < DMAX / 16; ks++) frag_a(qf[ks], sQ, LD, wm * 16, ks * 16, lane);

    float o[DMAX / 8][4];
#pragma unroll
    for (int i = 0; i < DMAX / 8; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;

    for (int tile = t_begin; tile < t_end; tile++) {
        const int buf = (tile - t_begin) & 1;
        if (tile + 1 < t_end) load_kv(tile + 1, buf ^ 1);
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        const int j0 = tile * KT + wn * KW;  // this warp's first key

        float s[KW / 8][4];
        tile_qk<KW / 8, DMAX>(s, qf, sK + buf * KT * LD, LD, wn * KW, D, lane);
        const bool need_mask = tile * KT + KT - 1 > p_first;
#pragma unroll
        for (int nt = 0; nt < KW / 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float x = s[nt][e] * p.scale_log2;
                if (need_mask && j0 + nt * 8 + 2 * t4 + (e & 1) > (e < 2 ? pos_a : pos_b)) x = -INFINITY;
                s[nt][e] = x;
            }
        softmax_update(s, o, m0, m1, l0, l1);
        tile_pv<KW / 8, DMAX>(o, s, sV + buf * KT * LD, LD, wn * KW, D, lane);
        __syncthreads();  // the next iteration's copy overwrites this buffer
    }
    cp_async_wait<0>();
    __syncthreads();  // K/V buffers become the partials

    l0 = quad_sum(l0);
    l1 = quad_sum(l1);
#pragma unroll
    for (int dn = 0; dn < DMAX / 8; dn++) {
        const int col = dn * 8 + 2 * t4;
        if (col >= D) break;
        *reinterpret_cast<float2 *>(pO + (wn * BM + ra) * DMAX + col) = make_float2(o[dn][0], o[dn][1]);
        *reinterpret_cast<float2 *>(pO + (wn * BM + rb) * DMAX + col) = make_float2(o[dn][2], o[dn][3]);
    }
    if (t4 == 0) {
        pM[wn * BM + ra] = m0;
        pL[wn * BM + ra] = l0;
        pM[wn * BM + rb] = m1;
        pL[wn * BM + rb] = l1;
    }
    cluster.sync();

    // Combine: block `rank` finishes rows rank, rank + S, ...; one warp per row, lane s reads the
    // max and sum of partial s (S·WN ≤ 32 partials: block s / WN, warp column s % WN).
    const int n_part = S * WN;
    for (int r = rank + S * warp; r < BM; r += S * (NT / 32)) {
        if (R0 + r >= rows) break;
        float mv = -INFINITY, lv = 0.0f;
        if (lane < n_part) {
            const int src = lane / WN, w = lane % WN;
            mv = cluster.map_shared_rank(pM, src)[w * BM + r];
            lv = cluster.map_shared_rank(pL, src)[w * BM + r];
        }
        float M = mv;
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, off));
        const float wgt = lane < n_part && mv != -INFINITY ? exp2f(mv - M) : 0.0f;
        float L = lv * wgt;
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) L += __shfl_xor_sync(0xffffffffu, L, off);
        const float inv = 1.0f / L;  // L ≥ 1: the partial holding the row max contributes exp2(0)·l ≥ 1
        bf16 *out = p.o + q_row(R0 + r);
        for (int c0 = 0; c0 < D; c0 += 64) {  // the whole warp iterates: the shuffles need every lane
            const int col = c0 + lane * 2;
            float2 acc = make_float2(0.0f, 0.0f);
            for (int s = 0; s < n_part; s++) {
                const float ws = __shfl_sync(0xffffffffu, wgt, s);
                if (ws == 0.0f || col >= D) continue;
                const float2 v = *reinterpret_cast<const float2 *>(
                    cluster.map_shared_rank(pO, s / WN) + ((s % WN) * BM + r) * DMAX + col);
                acc.x += ws * v.x;
                acc.y += ws * v.y;
            }
            if (col < D)
                *reinterpret_cast<__nv_bfloat162 *>(out + col) = __floats2bfloat162_rn(acc.x * inv, acc.y * inv);
        }
    }
    cluster.sync();  // peers may still be reading this block's partials
}

template <int DMAX, int WM, int WN>
void launch_cached(const cached_params &p, int B, int max_tq, cudaStream_t stream) {
    using cfg = cached_cfg<DMAX, WM, WN>;
    auto kernel = attention_cached_kernel<DMAX, WM, WN>;
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)cfg::smem));
    const int group = p.H / p.H_kv;
    const int n_mt = (max_tq * group + cfg::BM - 1) / cfg::BM;
    // Splits: up to 8, each worth at least one 64-key tile at full context, halved while the grid
    // would still hold ≥ 8 blocks per SM without them.
    int dev = 0, sms = 132;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    const long work = (long)B * p.H_kv * n_mt;
    int S = 1;
    while (S < 8 && 2 * S * cfg::KT <= p.max_len) S *= 2;
    while (S > 1 && work * (S / 2) >= 8L * sms) S /= 2;

    cudaLaunchConfig_t lc = {};
    lc.gridDim = dim3(S, n_mt * p.H_kv, B);
    lc.blockDim = dim3(cfg::NT);
    lc.dynamicSmemBytes = cfg::smem;
    lc.stream = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = S;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    lc.attrs = attr;
    lc.numAttrs = 1;
    CUDA_CHECK(cudaLaunchKernelEx(&lc, kernel, p));
}

template <int DMAX>
void launch_cached_dmax(const cached_params &p, int B, int max_tq, cudaStream_t stream) {
    if (max_tq * (p.H / p.H_kv) <= 16)
        launch_cached<DMAX, 1, 4>(p, B, max_tq, stream);  // decode: warps split the keys
    else
        launch_cached<DMAX, 4, 1>(p, B, max_tq, stream);  // prefill: warps split the rows
}

}  // namespace

extern "C" void attention_cached_cuda(hy_bf16 *o, const hy_bf16 *q, const hy_bf16 *k_cache, const hy_bf16 *v_cache,
                                      const int32_t *slots, const int32_t *q_start, const int32_t *q_len,
                                      const int32_t *lens, int B, int max_tq, int max_len, int H, int H_kv, int D,
                                      float scale, cudaStream_t stream) {
    if (D <= 0 || D > 256 || D % 16 || H_kv <= 0 || H % H_kv) {
        fprintf(stderr, "hybrid: attention_cached_cuda: unsupported shape H %d H_kv %d D %d\n", H, H_kv, D);
        abort();
    }
    if (B <= 0 || max_tq <= 0) return;
    cached_params p = {o, q, k_cache, v_cache, slots, q_start, q_len, lens, max_len, H, H_kv, D, scale * LOG2E};
    switch (dmax_bucket(D)) {
        case 32: launch_cached_dmax<32>(p, B, max_tq, stream); break;
        case 64: launch_cached_dmax<64>(p, B, max_tq, stream); break;
        case 128: launch_cached_dmax<128>(p, B, max_tq, stream); break;
        default: launch_cached_dmax<256>(p, B, max_tq, stream); break;
    }
}
