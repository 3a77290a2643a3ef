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

#include <type_traits>

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

// Host: the layout of the forward part inside fwd_base and of the backward's own part inside
// bwd_base (NULL: only the sizes), with their sizes in bytes. The forward writes only its part,
// and the backward only reads it, so a forward's part can be kept and handed to the backward.
workspace workspace_layout(const gdn_shape *s, void *fwd_base, void *bwd_base, size_t *fwd_bytes,
                           size_t *bwd_bytes);

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

params params_make(const gdn_shape *s, void *fwd_base, void *bwd_base);

// Forward phases shared with the backward (gdn_chunked_fwd.cu), in launch order: the chunk table;
// per chunk γ, T, W and T·diag(β)·V.
void launch_chunk_table(const params &p, cudaStream_t stream);
void launch_prepare(const params &p, cudaStream_t stream);
// The sequential passes over chunks (gdn_state_pass.cu). Forward: stores each chunk-start state
// S0, completes U (and writes state_out when p.state_out is set). Backward: expects ws.du to hold
// dU's output part and ws.ds each chunk's Qᵀ·diag(scale·exp(γ))·dO; completes dU, replaces ws.ds
// by the gradient with respect to each chunk's end state and adds the first one to dstate_in.
void launch_state_forward(const params &p, cudaStream_t stream);
void launch_state_backward(const params &p, cudaStream_t stream);
// Raises a kernel's dynamic shared-memory limit when it needs more than the default 48 KB.
void set_smem(const void *kernel, size_t bytes);

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
    // The lo·hi terms go to their own accumulator so each k step issues two independent mma
    // chains instead of one chain of three; unrolling lets the next step's operand loads start
    // while this step's mma run. The two sums meet once, after the loop.
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll 2
    for (int k0 = 0; k0 < K; k0 += 16) {
        const int c0 = k0 + 2 * t, c1 = c0 + 8;
        uint32_t ah[4], al[4], bh[2], bl[2];
        split_pack(A(r0, c0), A(r0, c0 + 1), ah[0], al[0]);
        split_pack(A(r1, c0), A(r1, c0 + 1), ah[1], al[1]);
        split_pack(A(r0, c1), A(r0, c1 + 1), ah[2], al[2]);
        split_pack(A(r1, c1), A(r1, c1 + 1), ah[3], al[3]);
        split_pack(B(c0, n), B(c0 + 1, n), bh[0], bl[0]);
        split_pack(B(c1, n), B(c1 + 1, n), bh[1], bl[1]);
        if (PA) mma16816(s, al, bh);
        if (PB) mma16816(s, ah, bl);
        mma16816(c, ah, bh);
    }
    if (PA || PB)
        for (int e = 0; e < 4; e++) c[e] += s[e];
}

// The same over a 16 × 8·NT block (columns n0 … n0 + 8·NT): the NT tiles share each A fragment,
// so a strip of A is loaded and split once per block instead of once per 8 columns.
template <int PA, int PB, int NT, class FA, class FB>
__device__ __forceinline__ void mma_block(float (&c)[NT][4], const FA &A, const FB &B, int m0, int n0, int K) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int r0 = m0 + g, r1 = r0 + 8;
    float s[NT][4];
#pragma unroll
    for (int j = 0; j < NT; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
    for (int k0 = 0; k0 < K; k0 += 16) {
        const int c0 = k0 + 2 * t, c1 = c0 + 8;
        uint32_t ah[4], al[4];
        split_pack(A(r0, c0), A(r0, c0 + 1), ah[0], al[0]);
        split_pack(A(r1, c0), A(r1, c0 + 1), ah[1], al[1]);
        split_pack(A(r0, c1), A(r0, c1 + 1), ah[2], al[2]);
        split_pack(A(r1, c1), A(r1, c1 + 1), ah[3], al[3]);
#pragma unroll
        for (int j = 0; j < NT; j++) {
            const int n = n0 + 8 * j + g;
            uint32_t bh[2], bl[2];
            split_pack(B(c0, n), B(c0 + 1, n), bh[0], bl[0]);
            split_pack(B(c1, n), B(c1 + 1, n), bh[1], bl[1]);
            if (PA) mma16816(s[j], al, bh);
            if (PB) mma16816(s[j], ah, bl);
            mma16816(c[j], ah, bh);
        }
    }
    if (PA || PB)
#pragma unroll
        for (int j = 0; j < NT; j++)
            for (int e = 0; e < 4; e++) c[j][e] += s[j][e];
}

template <int NT>
__device__ __forceinline__ void block_zero(float (&c)[NT][4]) {
#pragma unroll
    for (int j = 0; j < NT; j++) c[j][0] = c[j][1] = c[j][2] = c[j][3] = 0.0f;
}

// Calls f(std::integral_constant<int, NT>) with the widest block of 8·NT columns, NT ∈ {6, 4, 2},
// that divides N (a multiple of 16), so one kernel serves every head dim with register blocks.
template <class F>
__device__ __forceinline__ void with_block_width(int N, const F &f) {
    if ((N / 8) % 6 == 0)
        f(std::integral_constant<int, 6>());
    else if ((N / 8) % 4 == 0)
        f(std::integral_constant<int, 4>());
    else
        f(std::integral_constant<int, 2>());
}

// The warp's share of the 16 × 8·NT blocks of an M × N output: f(m0, n0) for each.
template <int NT, class F>
__device__ __forceinline__ void for_each_block(int M, int N, const F &f) {
    const int per_row = N / (8 * NT);
    for (int idx = threadIdx.x >> 5; idx < (M / 16) * per_row; idx += blockDim.x >> 5)
        f((idx / per_row) * 16, (idx % per_row) * 8 * NT);
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

// frag_each and frag_rowdot over the NT tiles of a block.
template <int NT, class F>
__device__ __forceinline__ void block_each(float (&c)[NT][4], int m0, int n0, const F &f) {
#pragma unroll
    for (int j = 0; j < NT; j++) frag_each(c[j], m0, n0 + 8 * j, f);
}
template <int NT, class FX>
__device__ __forceinline__ void block_rowdot(const float (&c)[NT][4], int m0, int n0, const FX &x, float &lo,
                                             float &hi) {
    const int lane = threadIdx.x & 31, r = m0 + (lane >> 2);
    lo = 0.0f, hi = 0.0f;
#pragma unroll
    for (int j = 0; j < NT; j++) {
        const int col = n0 + 8 * j + 2 * (lane & 3);
        lo += c[j][0] * x(r, col) + c[j][1] * x(r, col + 1);
        hi += c[j][2] * x(r + 8, col) + c[j][3] * x(r + 8, col + 1);
    }
    lo += __shfl_xor_sync(0xffffffffu, lo, 1);
    hi += __shfl_xor_sync(0xffffffffu, hi, 1);
    lo += __shfl_xor_sync(0xffffffffu, lo, 2);
    hi += __shfl_xor_sync(0xffffffffu, hi, 2);
}

// Out (64 × LDS, shared) = scale·(Q·Kᵀ) ⊙ D for one chunk, D_ij = exp(γ_i − γ_j) on and below the
// diagonal, zero elsewhere and past row L: the intra-chunk attention-like matrix the output
// (forward) and dU's output part (backward) both start from. Q, Kt: accessors as for mma_block.
template <class FQ, class FK>
__device__ __forceinline__ void decayed_qk(float *out, const FQ &Q, const FK &Kt, const float *gam, float scale,
                                           int L, int Lp, int Dk) {
    with_block_width(Lp, [&](auto nt) {
        constexpr int NT = decltype(nt)::value;
        for_each_block<NT>(Lp, Lp, [&](int m0, int n0) {
            float c[NT][4];
            block_zero(c);
            mma_block<EXACT, EXACT, NT>(c, Q, Kt, m0, n0, Dk);
            block_each(c, m0, n0, [&](int i, int j, float &x) {
                out[i * LDS + j] = (j <= i && i < L) ? scale * x * expf(gam[i] - gam[j]) : 0.0f;
            });
        });
    });
}

// Tile `idx` of an M×N output in row-major tile order: its first row and column.
__device__ __forceinline__ void tile_at(int idx, int N, int &m0, int &n0) {
    m0 = (idx / (N / 8)) * 16;
    n0 = (idx % (N / 8)) * 8;
}

// Asynchronous global → shared copies (cp.async): a chunk's operands are staged while the CTA
// computes on the previous ones. A copy marked invalid writes zeros and reads nothing (rows past
// a chunk's end); `src` must still be a mapped address.
__device__ __forceinline__ void cp_async16(void *dst, const void *src, bool valid) {
    unsigned s = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async4(void *dst, const void *src, bool valid) {
    unsigned s = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(s), "l"(src), "r"(valid ? 4 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Stages rows [0, 64) of a row-major global matrix into shared memory, row_bytes (a multiple of
// 16) from each; rows ≥ L become zeros. Strides in bytes. Every thread of the block takes part.
__device__ __forceinline__ void stage_rows(void *dst, int dst_ld_bytes, const void *src, size_t src_ld_bytes,
                                           int row_bytes, int L) {
    const int per_row = row_bytes >> 4;
    for (int idx = threadIdx.x; idx < CHUNK * per_row; idx += blockDim.x) {
        const int r = idx / per_row, c = idx - r * per_row;
        const bool ok = r < L;
        cp_async16((char *)dst + r * dst_ld_bytes + c * 16, (const char *)src + (ok ? r : 0) * src_ld_bytes + c * 16,
                   ok);
    }
}

__device__ __forceinline__ int warp_id() { return threadIdx.x >> 5; }
__device__ __forceinline__ int n_warps() { return blockDim.x >> 5; }

}  // namespace gdn

#endif
