// Internal to the gated-delta-rule kernels (gdn_chunked_fwd.cu, gdn_chunked_bwd.cu, gdn_decode.cu):
// the kernel parameters, the workspace layout, the warp-level tensor-core product every intra-chunk
// matrix product goes through, and the forward phases that the backward re-runs.
//
// Tensor-core products and precision. Every intra-chunk product is a sum of 16×8 output tiles, each
// owned by one warp and computed with mma.sync m16n8k16 (bf16 operands, fp32 accumulate). Operands
// are read through accessors, functions (row, col) → float that return 0 outside the chunk, so a
// chunk of L < 64 tokens is zero-padded to a multiple of 16 without any copy. q, k, v and dO are
// bf16 already and go to the tensor cores exactly (EXACT). Everything else (the UT inverse T, W, U,
// the states and their gradients, decay-weighted matrices) is fp32 and goes in as the sum of two
// bf16 numbers, hi = bf16(x) and lo = bf16(x − hi) (SPLIT): hi·b + lo·b (+ a·lo) keeps about 16
// mantissa bits of each operand, so a product differs from an fp32 one only by summation order and
// a relative operand error near 2^-17. Nothing that must stay precise is kept in bf16: states,
// cumulative decays γ, T, W, U and all gradients are fp32 in registers, shared memory and the
// workspace. Splitting costs two or three mma per product instead of one; which products can drop
// their lo half under the test tolerance is a tuning question for later.
#ifndef HY_GDN_COMMON_CUH
#define HY_GDN_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "../ops_cuda.h"

namespace gdn {

constexpr int CHUNK = GDN_CHUNK;  // 64 tokens; chunks restart at each document start
constexpr int LDS = CHUNK + 4;    // row stride (floats) of the L×L shared-memory matrices
constexpr int THREADS = 256;      // every chunk kernel runs 8 warps

// Intermediates in the workspace. Token-indexed arrays use the layout of v, (T, H_v, ·); chunk-
// indexed ones are (max_chunks, H_v, ·), chunks numbered document by document.
struct workspace {
    int max_chunks;    // upper bound on Σ_d ceil(len_d / 64), from T and n_docs alone
    int *chunk_first;  // (n_docs + 1) index of each document's first chunk; [n_docs] = chunk count
    int4 *chunks;      // (max_chunks) {doc, first token, length L, 0}; L = 0 past the last chunk
    float *gamma;      // (T, H_v) cumulative log decay from the chunk start, inclusive
    float *tmat;       // (max_chunks, H_v, 64, 64) T = (I + A)⁻¹
    float *w;          // (T, H_v, Dk) W = T·diag(β·exp(γ))·K
    float *u;          // (T, H_v, Dv) T·diag(β)·V, then (after the state pass) U = that − W·S0
    float *s0;         // (max_chunks, H_v, Dk, Dv) state at each chunk start
    // backward only
    float *du;       // (T, H_v, Dv) dU: first the output part Mᵀ·dO, then complete
    float *ds;       // (max_chunks, H_v, Dk, Dv) gradient with respect to each chunk's end state
    float *dw;       // (T, H_v, Dk) dW = −dU·S0ᵀ
    float *dq, *dk;  // (T, H_v, Dk) per value head, summed over each key head's group at the end
};

// Host: the layout inside `base` (NULL: only the size); total bytes in *bytes.
workspace workspace_layout(const gdn_shape *s, void *base, size_t *bytes);

// Everything a kernel may need; one struct passed by value to all of them.
struct params {
    int T, n_docs, H_k, H_v, Dk, Dv;
    float scale;
    const int32_t *cu_seqlens;  // device
    const hy_bf16 *q, *k, *v, *d_o;
    const float *g, *beta, *state_in, *dstate_out;
    hy_bf16 *o, *dq, *dk, *dv;
    float *state_out, *dg, *dbeta, *dstate_in;
    workspace ws;
};

params params_make(const gdn_shape *s, void *workspace);

// Forward phases shared with the backward (defined in gdn_chunked_fwd.cu), in launch order:
// the chunk table; per chunk γ, T, W and T·diag(β)·V; the sequential pass over chunks that stores
// each chunk-start state and completes U (and writes state_out when p.state_out is set).
void launch_chunk_table(const params &p, cudaStream_t stream);
void launch_prepare(const params &p, cudaStream_t stream);
void launch_state_forward(const params &p, cudaStream_t stream);
// Width of the Dv tiles the state passes use (each CTA owns Dk × dv_tile of one state).
int dv_tile(int Dv);

// ---- device helpers ----------------------------------------------------------------------------

__device__ __forceinline__ int round16(int x) { return (x + 15) & ~15; }
__device__ __forceinline__ float bf(hy_bf16 x) { return __bfloat162float(x); }

__device__ __forceinline__ uint32_t bits(__nv_bfloat162 v) { return *reinterpret_cast<uint32_t *>(&v); }

// (a, b) → two packed bf16 pairs with hi + lo ≈ (a, b); the element with the lower index sits in
// the low half, as mma expects.
__device__ __forceinline__ void split_pack(float a, float b, uint32_t &hi, uint32_t &lo) {
    __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    __nv_bfloat162 l = __floats2bfloat162_rn(a - __low2float(h), b - __high2float(h));
    hi = bits(h);
    lo = bits(l);
}

__device__ __forceinline__ void mma16816(float c[4], const uint32_t a[4], const uint32_t b[2]) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

enum operand { EXACT = 0, SPLIT = 1 };

// c (the warp's 16×8 tile at rows m0, columns n0) += Σ_{k<K} A(m, k)·B(k, n); K a multiple of 16.
// Fragment layout of m16n8k16 (g = lane/4, t = lane%4): A rows g, g+8 × columns 2t, 2t+1, 2t+8,
// 2t+9; B rows 2t, 2t+1, 2t+8, 2t+9 × column g; C rows g, g+8 × columns 2t, 2t+1.
template <int PA, int PB, class FA, class FB>
__device__ __forceinline__ void mma_tile(float c[4], const FA &A, const FB &B, int m0, int n0, int K) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int r0 = m0 + g, r1 = r0 + 8, n = n0 + g;
    for (int k0 = 0; k0 < K; k0 += 16) {
        const int c0 = k0 + 2 * t, c1 = c0 + 8;
        uint32_t ah[4], al[4], bh[2], bl[2];
        split_pack(A(r0, c0), A(r0, c0 + 1), ah[0], al[0]);
        split_pack(A(r1, c0), A(r1, c0 + 1), ah[1], al[1]);
        split_pack(A(r0, c1), A(r0, c1 + 1), ah[2], al[2]);
        split_pack(A(r1, c1), A(r1, c1 + 1), ah[3], al[3]);
        split_pack(B(c0, n), B(c0 + 1, n), bh[0], bl[0]);
        split_pack(B(c1, n), B(c1 + 1, n), bh[1], bl[1]);
        if (PA) mma16816(c, al, bh);  // small terms first
        if (PB) mma16816(c, ah, bl);
        mma16816(c, ah, bh);
    }
}

// f(row, col, value&) for the four accumulator elements a lane holds in the tile at (m0, n0).
template <class F>
__device__ __forceinline__ void frag_each(float c[4], int m0, int n0, const F &f) {
    const int lane = threadIdx.x & 31, r = m0 + (lane >> 2), col = n0 + 2 * (lane & 3);
    f(r, col, c[0]);
    f(r, col + 1, c[1]);
    f(r + 8, col, c[2]);
    f(r + 8, col + 1, c[3]);
}

// Σ over the tile's 8 columns of c(row, col)·x(row, col), for the lane's two rows (m0 + g and
// m0 + g + 8), reduced across the four lanes that share those rows; every lane gets the sums.
template <class FX>
__device__ __forceinline__ void frag_rowdot(const float c[4], int m0, int n0, const FX &x, float &lo, float &hi) {
    const int lane = threadIdx.x & 31, r = m0 + (lane >> 2), col = n0 + 2 * (lane & 3);
    lo = c[0] * x(r, col) + c[1] * x(r, col + 1);
    hi = c[2] * x(r + 8, col) + c[3] * x(r + 8, col + 1);
    lo += __shfl_xor_sync(0xffffffffu, lo, 1);
    hi += __shfl_xor_sync(0xffffffffu, hi, 1);
    lo += __shfl_xor_sync(0xffffffffu, lo, 2);
    hi += __shfl_xor_sync(0xffffffffu, hi, 2);
}

// Tile `idx` of an M×N output in row-major tile order: its first row and column.
__device__ __forceinline__ void tile_at(int idx, int N, int &m0, int &n0) {
    m0 = (idx / (N / 8)) * 16;
    n0 = (idx % (N / 8)) * 8;
}

__device__ __forceinline__ int warp_id() { return threadIdx.x >> 5; }
__device__ __forceinline__ int n_warps() { return blockDim.x >> 5; }

}  // namespace gdn

#endif
