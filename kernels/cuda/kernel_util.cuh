// Device and launch helpers shared by the bandwidth-bound kernels (elementwise helpers, norms,
// conv1d, GDN gates, SwiGLU, logprobs, AdamW): packed loads and stores, warp and block reductions,
// grid sizing, and the deterministic cross-block column sum used for parameter gradients.
//
// Packed access: each kernel is instantiated for a few vector widths and the launcher picks the
// widest one that the pointers' alignment and the row lengths allow, so odd shapes and offset
// pointers take a narrower path instead of faulting. bf16 packs go through integer loads of 2·N
// bytes (one LDG.128 for 8 values); fp32 packs through float4/float2/float.
//
// Parameter gradients (norm weights, conv weights, A_log, dt_bias) are sums over all rows. These
// ops get no workspace, so per-block partial sums cannot be parked in global memory; instead the
// blocks that share a column tile form one thread-block cluster (sm_90) and their partials meet
// in distributed shared memory, added in rank order. Every sum thus has a fixed order, so
// parameter gradients are bitwise reproducible from run to run (atomics are not), while up to 8
// blocks per tile keep tall, narrow cases (gated RMSNorm: D = 192, N = T·H_v) off a handful of SMs.
#ifndef HY_KERNEL_UTIL_CUH
#define HY_KERNEL_UTIL_CUH

#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <stdint.h>

#include <initializer_list>

#include "../ops_cuda.h"
#include "cuda_check.h"

namespace hy {

namespace cg = cooperative_groups;

// ---- host side ---------------------------------------------------------------------------------

// Multiprocessor count of the current device, queried once per device (a cheap, non-synchronising
// call, but launches are frequent).
inline int sm_count() {
    static int cached[64];
    int dev = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    if (dev >= 0 && dev < 64 && cached[dev]) return cached[dev];
    int n = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
    if (dev >= 0 && dev < 64) cached[dev] = n;
    return n;
}

inline bool aligned(const void *p, size_t bytes) { return (uintptr_t)p % bytes == 0; }

// Blocks for a grid-stride loop over `items` work items of one thread each: all of them when few,
// else 16 blocks per SM (enough resident warps to cover memory latency; more only adds tail).
inline unsigned stream_blocks(size_t items, int threads) {
    size_t want = (items + threads - 1) / threads;
    size_t cap = (size_t)sm_count() * 16;
    if (want < 1) want = 1;
    return (unsigned)(want < cap ? want : cap);
}

// Blocks per column tile for the clustered column sums: enough that tiles × blocks reach ~264
// (two waves of an H100's 132 SMs), at most 8 (the portable cluster size) and at most `groups`
// (the independent row groups there are to share out). Depends on the shape only, never on the
// device, so a given shape sums in the same order on every GPU.
inline unsigned cluster_blocks(long tiles, long groups) {
    long cs = (264 + tiles - 1) / tiles;
    if (cs > 8) cs = 8;
    if (cs > groups) cs = groups;
    return (unsigned)(cs < 1 ? 1 : cs);
}

// Launches `kernel` on grid (x, cluster) with clusters of (1, cluster, 1) blocks.
template <typename... KArgs, typename... Args>
inline void launch_clustered(void (*kernel)(KArgs...), unsigned grid_x, unsigned cluster, dim3 block,
                             cudaStream_t stream, Args... args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(grid_x, cluster, 1);
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = 0;
    cfg.stream = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = 1;
    attr[0].val.clusterDim.y = cluster;
    attr[0].val.clusterDim.z = 1;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, args...));
}

// ---- packed loads and stores -------------------------------------------------------------------

template <int BYTES> struct raw_bits;
template <> struct raw_bits<2> { using type = unsigned short; };
template <> struct raw_bits<4> { using type = unsigned int; };
template <> struct raw_bits<8> { using type = uint2; };
template <> struct raw_bits<16> { using type = uint4; };

// N consecutive bf16 at p (2·N-byte aligned), as raw bits (one register for N ≤ 2): kernels that
// issue many rows' loads up front keep them packed until use.
template <int N>
using bf16_bits = typename raw_bits<2 * N>::type;

template <int N>
__device__ __forceinline__ bf16_bits<N> load_bf16_bits(const hy_bf16 *p) {
    return *reinterpret_cast<const bf16_bits<N> *>(p);
}

template <int N>
__device__ __forceinline__ void unpack_bf16(float (&out)[N], bf16_bits<N> bits) {
    union {
        bf16_bits<N> raw;
        unsigned short h[N];
    } u;
    u.raw = bits;
#pragma unroll
    for (int i = 0; i < N; i++) out[i] = __uint_as_float((unsigned)u.h[i] << 16);
}

// N consecutive bf16 at p (2·N-byte aligned) widened to fp32.
template <int N>
__device__ __forceinline__ void load_bf16(float (&out)[N], const hy_bf16 *p) {
    unpack_bf16<N>(out, load_bf16_bits<N>(p));
}

// Rounds N fp32 values to bf16 (nearest-even) and stores them at p (2·N-byte aligned).
template <int N>
__device__ __forceinline__ void store_bf16(hy_bf16 *p, const float (&in)[N]) {
    union {
        typename raw_bits<2 * N>::type raw;
        unsigned short h[N];
    } u;
#pragma unroll
    for (int i = 0; i < N; i++) u.h[i] = __bfloat16_as_ushort(__float2bfloat16_rn(in[i]));
    *reinterpret_cast<typename raw_bits<2 * N>::type *>(p) = u.raw;
}

// N consecutive fp32 at p; alignment 4·min(N, 4) bytes.
template <int N>
__device__ __forceinline__ void load_f32(float (&out)[N], const float *p) {
    if constexpr (N % 4 == 0) {
#pragma unroll
        for (int i = 0; i < N; i += 4) {
            float4 v = *reinterpret_cast<const float4 *>(p + i);
            out[i] = v.x, out[i + 1] = v.y, out[i + 2] = v.z, out[i + 3] = v.w;
        }
    } else if constexpr (N == 2) {
        float2 v = *reinterpret_cast<const float2 *>(p);
        out[0] = v.x, out[1] = v.y;
    } else {
#pragma unroll
        for (int i = 0; i < N; i++) out[i] = p[i];
    }
}

template <int N>
__device__ __forceinline__ void store_f32(float *p, const float (&in)[N]) {
    if constexpr (N % 4 == 0) {
#pragma unroll
        for (int i = 0; i < N; i += 4)
            *reinterpret_cast<float4 *>(p + i) = make_float4(in[i], in[i + 1], in[i + 2], in[i + 3]);
    } else if constexpr (N == 2) {
        *reinterpret_cast<float2 *>(p) = make_float2(in[0], in[1]);
    } else {
#pragma unroll
        for (int i = 0; i < N; i++) p[i] = in[i];
    }
}

// σ(x) = 1 / (1 + e^−x) with the fast exponential and a correctly rounded reciprocal: a few
// instructions instead of expf plus an IEEE division, ~1e-6 relative, far inside bf16 rounding.
// x → −∞ gives e^−x = inf and σ = 0, as it should.
__device__ __forceinline__ float fast_sigmoid(float x) { return __frcp_rn(1.0f + __expf(-x)); }

// ---- reductions --------------------------------------------------------------------------------

struct op_sum {
    template <typename T> __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
struct op_max {
    __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

template <typename T, typename Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

template <typename T>
__device__ __forceinline__ T warp_sum(T v) { return warp_reduce(v, op_sum()); }

// Reduction over the whole block (1-D, blockDim.x a multiple of 32), result returned to every
// thread. The leading barrier lets a kernel call it several times in a row.
template <typename T, typename Op>
__device__ T block_reduce(T v, Op op, T identity) {
    __shared__ T partial[32];
    __shared__ T total;
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    __syncthreads();
    v = warp_reduce(v, op);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? partial[lane] : identity;
        v = warp_reduce(v, op);
        if (lane == 0) total = v;
    }
    __syncthreads();
    return total;
}

template <typename T>
__device__ __forceinline__ T block_sum(T v) { return block_reduce(v, op_sum(), T(0)); }

// Sums tile[0..n) (one value per column of this block's tile, in shared memory) over every block
// of the cluster in rank order and hands each total to store(i, total). Called by all threads of
// all blocks of the cluster. The first cluster barrier publishes every block's tile (and doubles
// as __syncthreads); the second keeps each block's shared memory alive until rank 0 has read it.
template <typename Store>
__device__ void cluster_sum_columns(float *tile, int n, Store store) {
    cg::cluster_group cluster = cg::this_cluster();
    cluster.sync();
    if (cluster.block_rank() == 0) {
        const int tid = threadIdx.x + threadIdx.y * blockDim.x, nthreads = blockDim.x * blockDim.y;
        for (int i = tid; i < n; i += nthreads) {
            float s = 0.0f;
            for (unsigned r = 0; r < cluster.num_blocks(); r++) s += cluster.map_shared_rank(tile, r)[i];
            store(i, s);
        }
    }
    cluster.sync();
}

// ---- column gradients of the row norms ---------------------------------------------------------
// dw[col] += Σ_n term(n, col) over all N rows: grid (tiles of COLS columns, cluster of row
// chunks). Inside a block, (COLS / VEC) threads cover one row's tile and the remaining thread
// index walks rows; the loop body only loads and accumulates, so unrolling lets the compiler
// issue several rows' loads at once (the kernel is latency-bound otherwise). Tiles are 32 columns
// (64-byte row segments) when D is wide; 16 when D is narrow, to double the blocks at work.
constexpr int kColThreads = 1024;

// Term: a struct with  __device__ void operator()(float (&acc)[VEC], int n, int col) const
// adding the VEC terms of row n, columns col .. col+VEC−1 to acc.
template <int VEC, int COLS, typename Term>
__global__ void __launch_bounds__(kColThreads) column_grad_kernel(float *dw, Term term, int N, int D) {
    __shared__ float part[kColThreads * VEC];  // (row lane, COLS columns)
    __shared__ float tile[COLS];
    constexpr int lanes = COLS / VEC, row_lanes = kColThreads / lanes;
    const int tx = threadIdx.x % lanes, ty = threadIdx.x / lanes;
    const int col = blockIdx.x * COLS + tx * VEC;
    const long chunk = ((long)N + gridDim.y - 1) / gridDim.y;
    const long r0 = blockIdx.y * chunk, r1 = min((long)N, r0 + chunk);
    float acc[VEC];
#pragma unroll
    for (int v = 0; v < VEC; v++) acc[v] = 0.0f;
    if (col < D) {
#pragma unroll 8
        for (long n = r0 + ty; n < r1; n += row_lanes) term(acc, (int)n, col);
    }
#pragma unroll
    for (int v = 0; v < VEC; v++) part[ty * COLS + tx * VEC + v] = acc[v];
    __syncthreads();
    if (threadIdx.x < COLS) {
        float s = 0.0f;
        for (int r = 0; r < row_lanes; r++) s += part[r * COLS + threadIdx.x];
        tile[threadIdx.x] = s;
    }
    const int c0 = blockIdx.x * COLS;
    cluster_sum_columns(tile, COLS, [&](int i, float s) {
        if (c0 + i < D) dw[c0 + i] += s;
    });
}

template <int VEC, int COLS, typename Term>
inline void launch_column_grad_cols(float *dw, const Term &term, int N, int D, cudaStream_t stream) {
    constexpr int row_lanes = kColThreads / (COLS / VEC);
    const long tiles = (D + COLS - 1) / COLS;
    const unsigned cs = cluster_blocks(tiles, ((long)N + row_lanes - 1) / row_lanes);
    launch_clustered(column_grad_kernel<VEC, COLS, Term>, (unsigned)tiles, cs, dim3(kColThreads), stream, dw, term, N,
                     D);
}

// Launches column_grad_kernel for N rows of width D; VEC ∈ {1, 2} as the term's loads allow.
// 16-column tiles below D = 1056, where 32-column tiles in clusters of 8 would not reach 264 blocks.
template <int VEC, typename Term>
inline void launch_column_grad(float *dw, const Term &term, int N, int D, cudaStream_t stream) {
    if (D < 1056) launch_column_grad_cols<VEC, 16>(dw, term, N, D, stream);
    else launch_column_grad_cols<VEC, 32>(dw, term, N, D, stream);
}

// Largest width in {8, 4, 2, 1} (capped by max_vec) dividing every length in `lens` with each
// pointer aligned to width·elem bytes; used by the launchers to pick an instantiation.
struct ptr_req {
    const void *p;
    size_t elem;  // bytes per element
};
inline int pick_vec(int max_vec, std::initializer_list<ptr_req> ptrs, std::initializer_list<long> lens) {
    for (int v = max_vec; v > 1; v /= 2) {
        bool ok = true;
        for (const ptr_req &r : ptrs) ok = ok && aligned(r.p, v * r.elem > 16 ? 16 : v * r.elem);
        for (long l : lens) ok = ok && l % v == 0;
        if (ok) return v;
    }
    return 1;
}

}  // namespace hy

#endif
