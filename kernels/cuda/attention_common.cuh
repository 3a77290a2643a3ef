// Device helpers shared by the attention kernels (attention_fwd.cu, attention_bwd.cu,
// attention_cached.cu): warp-level bf16 tensor-core products (mma.sync m16n8k16, fp32 accumulate),
// ldmatrix fragment loads from padded shared-memory tiles, cp.async tile copies, and the
// document lookup of packed batches. Internal to kernels/cuda; not part of ops_cuda.h.
//
// Fragment conventions (PTX ISA, "mma.m16n8k16" for .bf16), with g = lane/4, t = lane%4:
//   A (16×16, row-major) in 4 registers: {row g, cols 2t..2t+1}, {row g+8, cols 2t..}, {row g,
//   cols 2t+8..}, {row g+8, cols 2t+8..};  B (16×8, "col-major") in 2: {rows 2t..2t+1, col g},
//   {rows 2t+8.., col g};  C (16×8, fp32) in 4: {row g, cols 2t, 2t+1}, {row g+8, cols 2t, 2t+1}.
// Two adjacent C tiles of a product are therefore exactly one A fragment of the next product
// (the register reuse FlashAttention relies on: P never leaves registers).
//
// Shared tiles hold rows of DMAX bf16 padded by 8 elements (16 bytes), so the 8 row addresses
// of an ldmatrix fall in 8 different bank groups. Head dims below DMAX are zero-filled, which
// leaves QKᵀ unchanged; output columns ≥ D are computed and dropped.
#ifndef HY_ATTENTION_COMMON_CUH
#define HY_ATTENTION_COMMON_CUH

#include <cuda_bf16.h>
#include <stdint.h>

namespace attn {

typedef __nv_bfloat16 bf16;

constexpr float LOG2E = 1.4426950408889634f;
constexpr float LN2 = 0.6931471805599453f;

__device__ __forceinline__ uint32_t smem_u32(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void cp_async16(void *smem, const void *gmem) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_u32(smem)), "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldsm_x4(uint32_t r[4], const bf16 *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(p)));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t r[4], const bf16 *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(p)));
}

// c (16×8 fp32) += a (16×16 bf16) · b (16×8 bf16).
__device__ __forceinline__ void mma_bf16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

// Fragment loads, for one warp, from a shared tile with row stride ld (elements).
// A from a row-major tile (rows = M, cols = K): rows m0..m0+15, cols k0..k0+15.
__device__ __forceinline__ void frag_a(uint32_t a[4], const bf16 *s, int ld, int m0, int k0, int lane) {
    ldsm_x4(a, s + (m0 + (lane & 15)) * ld + k0 + (lane >> 4) * 8);
}
// A from a tile stored transposed (rows = K, cols = M): A = rows k0..k0+15 → cols, cols m0.. → rows.
__device__ __forceinline__ void frag_a_t(uint32_t a[4], const bf16 *s, int ld, int k0, int m0, int lane) {
    ldsm_x4_t(a, s + (k0 + (lane >> 4) * 8 + (lane & 7)) * ld + m0 + ((lane >> 3) & 1) * 8);
}
// B for two n-tiles from a tile stored N-major (rows = N, cols = K), e.g. K rows for Q·Kᵀ:
// b[0..1] for n0..n0+7, b[2..3] for n0+8..n0+15, k0..k0+15.
__device__ __forceinline__ void frag_b_n(uint32_t b[4], const bf16 *s, int ld, int n0, int k0, int lane) {
    ldsm_x4(b, s + (n0 + (lane >> 4) * 8 + (lane & 7)) * ld + k0 + ((lane >> 3) & 1) * 8);
}
// B for two n-tiles from a tile stored K-major (rows = K, cols = N), e.g. V rows for P·V.
__device__ __forceinline__ void frag_b_k(uint32_t b[4], const bf16 *s, int ld, int k0, int n0, int lane) {
    ldsm_x4_t(b, s + (k0 + ((lane >> 3) & 1) * 8 + (lane & 7)) * ld + n0 + (lane >> 4) * 8);
}

// Copies ROWS rows of a head (DMAX columns, of which the first D are real) into a padded shared
// tile with cp.async; row_ptr(r) gives the global row or nullptr for a zero row. Columns ≥ D are
// zeroed. All NT threads of the block take part; the caller commits and waits.
template <int ROWS, int DMAX, int NT, class RowPtr>
__device__ __forceinline__ void load_tile(bf16 *s, RowPtr row_ptr, int D) {
    constexpr int CHUNKS = DMAX / 8;  // 16-byte pieces per row
    constexpr int LD = DMAX + 8;
#pragma unroll 4
    for (int idx = threadIdx.x; idx < ROWS * CHUNKS; idx += NT) {
        int r = idx / CHUNKS, c = idx % CHUNKS;
        bf16 *dst = s + r * LD + c * 8;
        const bf16 *src = row_ptr(r);
        if (src && c * 8 < D)
            cp_async16(dst, src + c * 8);
        else
            *reinterpret_cast<uint4 *>(dst) = make_uint4(0, 0, 0, 0);
    }
}

// Index of the document holding token t: the largest d < n_docs with cu_seqlens[d] ≤ t.
__device__ __forceinline__ int doc_of(const int32_t *cu_seqlens, int n_docs, int t) {
    int lo = 0, hi = n_docs - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) >> 1;
        if (__ldg(cu_seqlens + mid) <= t)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

// Sum and max over the 4 threads of a quad (the threads that share a row of a C fragment).
__device__ __forceinline__ float quad_sum(float x) {
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    return x + __shfl_xor_sync(0xffffffffu, x, 2);
}
__device__ __forceinline__ float quad_max(float x) {
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
    return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

// ---- the forward's per-tile steps, shared by attention_fwd.cu and attention_cached.cu ------------
// One warp, 16 query rows whose Q fragments qf are in registers; keys are rows n0.. of a shared tile.

// s (16 × 8·NS, fp32) = Q · K[n0 .. n0 + 8·NS)ᵀ over the first D columns.
template <int NS, int DMAX>
__device__ __forceinline__ void tile_qk(float (&s)[NS][4], const uint32_t (&qf)[DMAX / 16][4], const bf16 *k,
                                        int ld, int n0, int D, int lane) {
    static_assert(NS % 2 == 0, "key tiles come in pairs of 8");
#pragma unroll
    for (int i = 0; i < NS; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < DMAX / 16; ks++) {
        if (ks * 16 >= D) break;
#pragma unroll
        for (int np = 0; np < NS / 2; np++) {
            uint32_t b[4];
            frag_b_n(b, k, ld, n0 + np * 16, ks * 16, lane);
            mma_bf16(s[2 * np], qf[ks], b[0], b[1]);
            mma_bf16(s[2 * np + 1], qf[ks], b[2], b[3]);
        }
    }
}

// Online softmax step (log2 domain): s holds scaled, masked scores (−inf = masked) of this thread's
// rows g (entries 0, 1) and g+8 (entries 2, 3). Updates the running max m and this thread's partial
// sums l (summed over the quad at the end), rescales o, and leaves p = exp2(s − m) in s.
template <int NS, int NO>
__device__ __forceinline__ void softmax_update(float (&s)[NS][4], float (&o)[NO][4], float &m0, float &m1,
                                               float &l0, float &l1) {
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int i = 0; i < NS; i++) {
        mx0 = fmaxf(mx0, fmaxf(s[i][0], s[i][1]));
        mx1 = fmaxf(mx1, fmaxf(s[i][2], s[i][3]));
    }
    const float mn0 = fmaxf(m0, quad_max(mx0)), mn1 = fmaxf(m1, quad_max(mx1));
    // A row with no visible key so far keeps max −inf; subtract 0 instead (all its p are 0).
    const float b0 = mn0 == -INFINITY ? 0.0f : mn0, b1 = mn1 == -INFINITY ? 0.0f : mn1;
    const float a0 = exp2f(m0 - b0), a1 = exp2f(m1 - b1);
    m0 = mn0;
    m1 = mn1;
    l0 *= a0;
    l1 *= a1;
#pragma unroll
    for (int i = 0; i < NO; i++) {
        o[i][0] *= a0;
        o[i][1] *= a0;
        o[i][2] *= a1;
        o[i][3] *= a1;
    }
#pragma unroll
    for (int i = 0; i < NS; i++) {
        s[i][0] = exp2f(s[i][0] - b0);
        s[i][1] = exp2f(s[i][1] - b0);
        s[i][2] = exp2f(s[i][2] - b1);
        s[i][3] = exp2f(s[i][3] - b1);
        l0 += s[i][0] + s[i][1];
        l1 += s[i][2] + s[i][3];
    }
}

// A fragment (16 × 16, bf16) of columns 16·kk .. 16·kk+15 of a C-layout fp32 tile.
template <int NS>
__device__ __forceinline__ void c_to_a(uint32_t a[4], const float (&c)[NS][4], int kk) {
    a[0] = pack_bf16(c[2 * kk][0], c[2 * kk][1]);
    a[1] = pack_bf16(c[2 * kk][2], c[2 * kk][3]);
    a[2] = pack_bf16(c[2 * kk + 1][0], c[2 * kk + 1][1]);
    a[3] = pack_bf16(c[2 * kk + 1][2], c[2 * kk + 1][3]);
}

// o (16 × DMAX) += bf16(p) (16 × 8·NS) · V[k0 .. k0 + 8·NS) over the first D columns.
template <int NS, int DMAX>
__device__ __forceinline__ void tile_pv(float (&o)[DMAX / 8][4], const float (&p)[NS][4], const bf16 *v, int ld,
                                        int k0, int D, int lane) {
#pragma unroll
    for (int kk = 0; kk < NS / 2; kk++) {
        uint32_t a[4];
        c_to_a(a, p, kk);
#pragma unroll
        for (int dp = 0; dp < DMAX / 16; dp++) {
            if (dp * 16 >= D) break;
            uint32_t b[4];
            frag_b_k(b, v, ld, k0 + kk * 16, dp * 16, lane);
            mma_bf16(o[2 * dp], a, b[0], b[1]);
            mma_bf16(o[2 * dp + 1], a, b[2], b[3]);
        }
    }
}

// Smallest supported padded head dim holding D (D ≤ 256, a multiple of 16).
inline int dmax_bucket(int D) { return D <= 32 ? 32 : D <= 64 ? 64 : D <= 128 ? 128 : 256; }

}  // namespace attn

#endif
