// cuBLASLt GEMMs for the linear layers (see gemm.h for the row-/column-major mapping).
//
// Every product is D = α·op(A)·op(B) + β·C with C = D in column-major terms, compute type fp32.
// β = 0 writes, β = 1 accumulates (the backward contract). The algorithm comes from cuBLASLt's
// heuristic for each shape; shapes repeat every step, so the choice is cached per shape.
#include "gemm.h"

#include <stdint.h>
#include <string.h>

#include "cuda_check.h"
#include "kernel_util.cuh"

namespace {

constexpr int kCacheSize = 64;

struct algo_entry {
    int m, n, k, ta, tb, d_f32;
    float beta;
    cublasLtMatmulAlgo_t algo;
    bool used;
};

}  // namespace

struct hy_gemm {
    cublasLtHandle_t lt;
    void *workspace;
    size_t workspace_bytes;
    algo_entry cache[kCacheSize];
    int next;
};

extern "C" hy_gemm *hy_gemm_new(size_t workspace_bytes) {
    hy_gemm *g = (hy_gemm *)calloc(1, sizeof *g);
    CUBLAS_CHECK(cublasLtCreate(&g->lt));
    g->workspace_bytes = workspace_bytes;
    if (workspace_bytes) CUDA_CHECK(cudaMalloc(&g->workspace, workspace_bytes));
    return g;
}

extern "C" void hy_gemm_destroy(hy_gemm *g) {
    if (!g) return;
    cublasLtDestroy(g->lt);
    cudaFree(g->workspace);
    free(g);
}

// D[at] = acc (+ β·D[at]) in D's type: the epilogue every fallback kernel ends with.
__device__ __forceinline__ void store_d(void *d, bool d_f32, size_t at, float acc, float beta) {
    if (d_f32) {
        float *D = (float *)d;
        D[at] = beta != 0.0f ? acc + beta * D[at] : acc;
    } else {
        hy_bf16 *D = (hy_bf16 *)d;
        D[at] = __float2bfloat16(beta != 0.0f ? acc + beta * __bfloat162float(D[at]) : acc);
    }
}

// cuBLASLt needs 16-byte aligned pointers and leading dimensions; the model has a few narrow
// projections that are not (a_proj / b_proj with H_v outputs, tiny test configs). Those go to
// this plain kernel: one thread per output element, fp32 accumulation, the same β semantics.
__global__ void matmul_small_kernel(void *d, bool d_f32, const hy_bf16 *a, bool ta, int lda, const hy_bf16 *b, bool tb,
                                    int ldb, int m, int n, int k, int ldd, float beta) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x, j = blockIdx.y;
    if (i >= m) return;
    float acc = 0.0f;
    for (int p = 0; p < k; p++) {
        float av = __bfloat162float(ta ? a[(size_t)i * lda + p] : a[(size_t)p * lda + i]);
        float bv = __bfloat162float(tb ? b[(size_t)p * ldb + j] : b[(size_t)j * ldb + p]);
        acc = fmaf(av, bv, acc);
    }
    store_d(d, d_f32, (size_t)j * ldd + i, acc, beta);
}

// The same fallback when both operands run along k (a linear layer's forward: weight rows and
// input rows, D = Wᵀ·X column-major) — the shape of the narrow GDN gate projections, where one
// thread per output would leave most of a block idle and walk k alone. One warp per output: the
// lanes split k with VEC-wide loads (VEC = 8 when rows are 16-byte aligned) and sum by shuffles.
template <int VEC>
__global__ void matmul_rows_kernel(void *d, bool d_f32, const hy_bf16 *a, int lda, const hy_bf16 *b, int ldb, int m,
                                   int n, int k, int ldd, float beta) {
    const long warp = ((long)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (warp >= (long)m * n) return;
    const int i = (int)(warp % m), j = (int)(warp / m);
    const hy_bf16 *ar = a + (size_t)i * lda, *br = b + (size_t)j * ldb;
    float acc = 0.0f;
    for (int p = lane * VEC; p < k; p += 32 * VEC) {
        float av[VEC], bv[VEC];
        hy::load_bf16<VEC>(av, ar + p);
        hy::load_bf16<VEC>(bv, br + p);
#pragma unroll
        for (int q = 0; q < VEC; q++) acc = fmaf(av[q], bv[q], acc);
    }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane) return;
    store_d(d, d_f32, (size_t)j * ldd + i, acc, beta);
}

// And when A runs along m and B along n with few columns (n ≤ 32): a linear layer's weight
// gradient dWᵀ = Xᵀ·dY for the narrow gate projections, k = the tokens of a step (thousands). Each
// thread owns one row i of D and keeps all n of its sums in registers, so X is read once rather
// than once per column; dY's rows are staged in shared memory. k is split across blocks for
// parallelism, each split's partial sums go to the GEMM workspace and a second kernel adds them in
// split order — deterministic, no atomics.
constexpr int kColsMax = 32, kColRows = 256, kColTile = 64;

__global__ void __launch_bounds__(kColRows) matmul_cols_partial_kernel(float *part, const hy_bf16 *a, int lda,
                                                                      const hy_bf16 *b, int ldb, int m, int n, int k,
                                                                      int k_per_split) {
    __shared__ float bt[kColTile][kColsMax];
    const int i = blockIdx.x * kColRows + threadIdx.x, split = blockIdx.y;
    const int p_begin = split * k_per_split, p_end = min(k, p_begin + k_per_split);
    float acc[kColsMax];
#pragma unroll
    for (int j = 0; j < kColsMax; j++) acc[j] = 0.0f;
    for (int p0 = p_begin; p0 < p_end; p0 += kColTile) {
        const int np = min(kColTile, p_end - p0);
        __syncthreads();
        for (int t = threadIdx.x; t < np * n; t += kColRows) bt[t / n][t % n] = __bfloat162float(b[(size_t)(p0 + t / n) * ldb + t % n]);
        __syncthreads();
        if (i >= m) continue;
        for (int pp = 0; pp < np; pp++) {
            const float av = __bfloat162float(a[(size_t)(p0 + pp) * lda + i]);
#pragma unroll
            for (int j = 0; j < kColsMax; j++)
                if (j < n) acc[j] = fmaf(av, bt[pp][j], acc[j]);
        }
    }
    if (i >= m) return;
#pragma unroll
    for (int j = 0; j < kColsMax; j++)
        if (j < n) part[((size_t)split * n + j) * m + i] = acc[j];
}

__global__ void matmul_cols_reduce_kernel(void *d, bool d_f32, const float *part, int splits, int m, int n, int ldd,
                                          float beta) {
    const long idx = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (long)m * n) return;
    const int i = (int)(idx % m), j = (int)(idx / m);
    float acc = 0.0f;
    for (int s = 0; s < splits; s++) acc += part[((size_t)s * n + j) * m + i];
    store_d(d, d_f32, (size_t)j * ldd + i, acc, beta);
}

// 1 when the column kernels took the product (the workspace holds the partial sums).
static int matmul_cols(hy_gemm *g, void *d, bool d_f32, const hy_bf16 *a, int lda, const hy_bf16 *b, int ldb, int m,
                       int n, int k, int ldd, float beta, cudaStream_t stream) {
    if (n > kColsMax || !g->workspace) return 0;
    const int blocks_x = (m + kColRows - 1) / kColRows;
    int splits = (264 + blocks_x - 1) / blocks_x;  // ~2 waves of the GPU's SMs
    if (splits > (k + kColTile - 1) / kColTile) splits = (k + kColTile - 1) / kColTile;
    while (splits > 1 && (size_t)splits * n * m * sizeof(float) > g->workspace_bytes) splits /= 2;
    if (splits < 1 || (size_t)splits * n * m * sizeof(float) > g->workspace_bytes) return 0;
    const int k_per_split = ((k + splits - 1) / splits + kColTile - 1) / kColTile * kColTile;
    splits = (k + k_per_split - 1) / k_per_split;
    float *part = (float *)g->workspace;
    matmul_cols_partial_kernel<<<dim3(blocks_x, splits), kColRows, 0, stream>>>(part, a, lda, b, ldb, m, n, k,
                                                                                k_per_split);
    CUDA_CHECK_LAUNCH();
    const long outs = (long)m * n;
    matmul_cols_reduce_kernel<<<(unsigned)((outs + 255) / 256), 256, 0, stream>>>(d, d_f32, part, splits, m, n, ldd,
                                                                                   beta);
    CUDA_CHECK_LAUNCH();
    return 1;
}

static void matmul_fallback(hy_gemm *g, void *d, bool d_f32, const hy_bf16 *a, bool ta, int lda, const hy_bf16 *b,
                            bool tb, int ldb, int m, int n, int k, int ldd, float beta, cudaStream_t stream) {
    if (!ta && tb && k > 256 && matmul_cols(g, d, d_f32, a, lda, b, ldb, m, n, k, ldd, beta, stream)) return;
    if (ta && !tb) {
        const long warps = (long)m * n;
        const unsigned blocks = (unsigned)((warps * 32 + 255) / 256);
        if (hy::pick_vec(8, {{a, 2}, {b, 2}}, {lda, ldb, k}) == 8)
            matmul_rows_kernel<8><<<blocks, 256, 0, stream>>>(d, d_f32, a, lda, b, ldb, m, n, k, ldd, beta);
        else
            matmul_rows_kernel<1><<<blocks, 256, 0, stream>>>(d, d_f32, a, lda, b, ldb, m, n, k, ldd, beta);
    } else {
        dim3 grid((m + 127) / 128, n);
        matmul_small_kernel<<<grid, 128, 0, stream>>>(d, d_f32, a, ta, lda, b, tb, ldb, m, n, k, ldd, beta);
    }
    CUDA_CHECK_LAUNCH();
}

static bool aligned16(const void *p, int ld, size_t elem) {
    return ((uintptr_t)p % 16 == 0) && ((size_t)ld * elem) % 16 == 0;
}

// Column-major D (m, n) = op(A) (m, k) · op(B) (k, n) [+ D], A/B bf16, D bf16 or fp32.
static void matmul(hy_gemm *g, void *d, bool d_f32, const hy_bf16 *a, bool ta, int lda, const hy_bf16 *b, bool tb,
                   int ldb, int m, int n, int k, int ldd, float beta, cudaStream_t stream) {
    if (m == 0 || n == 0) return;
    if (!aligned16(a, lda, 2) || !aligned16(b, ldb, 2) || !aligned16(d, ldd, d_f32 ? 4 : 2)) {
        matmul_fallback(g, d, d_f32, a, ta, lda, b, tb, ldb, m, n, k, ldd, beta, stream);
        return;
    }
    const float alpha = 1.0f;
    cublasLtMatmulDesc_t desc;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
    cublasLtMatrixLayout_t la, lb, ld;
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, ta ? k : m, ta ? m : k, lda));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, tb ? n : k, tb ? k : n, ldb));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&ld, d_f32 ? CUDA_R_32F : CUDA_R_16BF, m, n, ldd));

    algo_entry *hit = NULL;
    for (int i = 0; i < kCacheSize; i++) {
        algo_entry *e = &g->cache[i];
        if (e->used && e->m == m && e->n == n && e->k == k && e->ta == ta && e->tb == tb && e->d_f32 == d_f32 &&
            e->beta == beta) {
            hit = e;
            break;
        }
    }
    if (!hit) {
        cublasLtMatmulPreference_t pref;
        CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                          &g->workspace_bytes, sizeof g->workspace_bytes));
        cublasLtMatmulHeuristicResult_t result;
        int found = 0;
        CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(g->lt, desc, la, lb, ld, ld, pref, 1, &result, &found));
        cublasLtMatmulPreferenceDestroy(pref);
        if (!found) hy_cuda_die("cublasLtMatmulAlgoGetHeuristic", "no algorithm for this shape", __FILE__, __LINE__);
        hit = &g->cache[g->next];
        g->next = (g->next + 1) % kCacheSize;
        *hit = algo_entry{m, n, k, ta, tb, d_f32, beta, result.algo, true};
    }
    CUBLAS_CHECK(cublasLtMatmul(g->lt, desc, &alpha, a, la, b, lb, &beta, d, ld, d, ld, &hit->algo, g->workspace,
                                g->workspace_bytes, stream));
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(ld);
    cublasLtMatmulDescDestroy(desc);
}

extern "C" void linear_forward_cuda(hy_gemm *g, hy_bf16 *y, float *y_f32, const hy_bf16 *x, const hy_bf16 *w, int N,
                                    int in, int out, cudaStream_t stream) {
    // column-major: Yᵀ (out, N) = W (out, in) · Xᵀ (in, N); W is stored as column-major (in, out)
    if (y)
        matmul(g, y, false, w, true, in, x, false, in, out, N, in, out, 0.0f, stream);
    else
        matmul(g, y_f32, true, w, true, in, x, false, in, out, N, in, out, 0.0f, stream);
}

extern "C" void linear_backward_cuda(hy_gemm *g, hy_bf16 *dx, float *dw, const hy_bf16 *dy, const hy_bf16 *x,
                                     const hy_bf16 *w, int N, int in, int out, cudaStream_t stream) {
    // dXᵀ (in, N) += Wᵀ (in, out) · dYᵀ (out, N)
    if (dx) matmul(g, dx, false, w, false, in, dy, false, out, in, N, out, in, 1.0f, stream);
    // dWᵀ (in, out) += Xᵀ (in, N) · dY (N, out)
    if (dw) matmul(g, dw, true, x, false, in, dy, true, out, in, out, N, in, 1.0f, stream);
}
