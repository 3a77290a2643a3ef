// Causal depthwise conv1d + SiLU over packed documents (the GDN short convolution, K = 4):
// y[t, c] = silu(Σ_j w[c, j]·in(t − (K−1) + j, c)), where in() is x inside the token's document,
// that document's window_in (its previous K−1 pre-conv inputs, fp32) just before it, and zero
// further back. bf16 x, y, dx; fp32 w, windows, dw. cu_seqlens lives on the device.
//
// Layout of the work: a thread owns a pair of adjacent channels (one bf16x2 access, so a warp
// covers 64 channels = one 128-byte line per row) and a run of kRun consecutive tokens. It finds
// its first token's document by binary search in cu_seqlens and steps forward across boundaries,
// so one launch serves training (many documents), prefill and decode (one token per document).
// All the x (and dy, dx) rows a run needs are loaded up front, packed, before the document walk:
// loading them as the walk reaches them put one DRAM latency per token in series (H100, T = 8192,
// 11520 channels: forward 0.40 → 0.25 ms, backward 1.50 → 0.61 ms with the preload). σ uses the
// fast exponential (hy::fast_sigmoid, ~1e-6 relative, far inside bf16).
//
// Forward runs two kernels: outputs, then the next windows (window_out = the last K−1 pre-conv
// inputs of each document). The second is ordered after the first on the stream and each of its
// threads reads a (document, channel)'s old window before overwriting it, which is what makes
// window_out == window_in safe.
//
// Backward recomputes the pre-activation (K multiply-adds) instead of saving it. Per run, a thread
// computes dpre = dy·silu'(pre) for its kRun tokens plus the K−1 that follow (their taps reach
// back into the run), then gathers dx[p] = Σ_j dpre[p + K−1−j]·w[j] over taps that stay in p's
// document — a gather, so no atomics on dx. dw[c, j] = Σ_t dpre[t]·in(t − (K−1) + j) is a column
// sum over all T: per-thread partials, a fixed-order shared-memory sum over the block's run lanes,
// then the cluster sum of kernel_util.cuh across the blocks that split T (deterministic).
// dwindow_in (the taps that reached before a document's start) is a small third kernel over
// (document, channel).
#include <cstdio>
#include <cstdlib>

#include "kernel_util.cuh"

namespace {

constexpr int kRun = 8;                          // tokens per thread
constexpr int kFwdChanLanes = 64, kFwdRunLanes = 4;
constexpr int kBwdChanLanes = 32, kBwdRunLanes = 16;

// Largest d with cu[d] ≤ t (skips empty documents, whose start equals the next one's).
__device__ __forceinline__ int doc_of(const int32_t *cu, int n_docs, long t) {
    int lo = 0, hi = n_docs - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (cu[mid] <= t) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

// Window entry `back` positions before document d's start (1 = the newest), zero past the window.
template <int VEC>
__device__ __forceinline__ void window_input(float (&v)[VEC], const float *window_in, int d, long back, int c, int Ch,
                                             int K) {
#pragma unroll
    for (int k = 0; k < VEC; k++)
        v[k] = window_in && back <= K - 1 ? window_in[((size_t)d * Ch + c + k) * (K - 1) + (K - 1 - back)] : 0.0f;
}

// Pre-conv input of channels c .. c+VEC−1 at position p for document d starting at `start`.
template <int VEC>
__device__ __forceinline__ void conv_input(float (&v)[VEC], const hy_bf16 *x, const float *window_in, int d,
                                           int start, long p, int c, int Ch, int K) {
    if (p >= start) {
        hy::load_bf16<VEC>(v, x + (size_t)p * Ch + c);
        return;
    }
    window_input<VEC>(v, window_in, d, start - p, c, Ch, K);
}

// Reversed taps: wr[m] multiplies the input m tokens back (m = 0: the current token).
template <int VEC, int KMAX>
__device__ __forceinline__ void load_taps(float (&wr)[KMAX][VEC], const float *w, int c, int K) {
#pragma unroll
    for (int m = 0; m < KMAX; m++)
#pragma unroll
        for (int k = 0; k < VEC; k++) wr[m][k] = m < K ? w[(size_t)(c + k) * K + (K - 1 - m)] : 0.0f;
}

// Pre-activation at token t of document d (oldest tap first, the reference's order); `in`
// receives the inputs, in[m] m tokens back. Reads x directly: for the per-document kernels.
template <int VEC, int KMAX>
__device__ __forceinline__ void conv_preact(float (&acc)[VEC], float (&in)[KMAX][VEC], const float (&wr)[KMAX][VEC],
                                            const hy_bf16 *x, const float *window_in, int d, int start, long t,
                                            int c, int Ch, int K) {
#pragma unroll
    for (int k = 0; k < VEC; k++) acc[k] = 0.0f;
#pragma unroll
    for (int m = KMAX - 1; m >= 0; m--) {
        if (m < K) {
            conv_input<VEC>(in[m], x, window_in, d, start, t - m, c, Ch, K);
#pragma unroll
            for (int k = 0; k < VEC; k++) acc[k] = fmaf(wr[m][k], in[m][k], acc[k]);
        } else {
#pragma unroll
            for (int k = 0; k < VEC; k++) in[m][k] = 0.0f;
        }
    }
}

// Rows t0 + first .. t0 + first + R − 1 of a (T, Ch) bf16 tensor at channel c, packed, zero outside
// [0, T). Issued together, before any of the document walk they feed, so a thread has all of
// them in flight at once instead of one DRAM latency per token.
template <int VEC, int R>
__device__ __forceinline__ void preload_rows(hy::bf16_bits<VEC> (&rows)[R], const hy_bf16 *a, long t0, int first,
                                             int T, int c, int Ch) {
#pragma unroll
    for (int j = 0; j < R; j++) {
        const long p = t0 + first + j;
        rows[j] = p >= 0 && p < T ? hy::load_bf16_bits<VEC>(a + (size_t)p * Ch + c) : hy::bf16_bits<VEC>(0);
    }
}

// Pre-activation at token t0 + i (document d from `start`) from preloaded rows: xr[j] holds
// position t0 − (KMAX−1) + j. Taps before the document's start read its window instead.
template <int VEC, int KMAX, int R>
__device__ __forceinline__ void conv_preact_rows(float (&acc)[VEC], float (&in)[KMAX][VEC],
                                                 const float (&wr)[KMAX][VEC], const hy::bf16_bits<VEC> (&xr)[R],
                                                 int i, long t0, const float *window_in, int d, int start, int c,
                                                 int Ch, int K) {
#pragma unroll
    for (int k = 0; k < VEC; k++) acc[k] = 0.0f;
#pragma unroll
    for (int m = KMAX - 1; m >= 0; m--) {
        const long p = t0 + i - m;
        if (m < K && p >= start) hy::unpack_bf16<VEC>(in[m], xr[i - m + KMAX - 1]);
        else if (m < K) window_input<VEC>(in[m], window_in, d, start - p, c, Ch, K);
        else
#pragma unroll
            for (int k = 0; k < VEC; k++) in[m][k] = 0.0f;
#pragma unroll
        for (int k = 0; k < VEC; k++) acc[k] = fmaf(wr[m][k], in[m][k], acc[k]);
    }
}

// Block (kFwdChanLanes, kFwdRunLanes); grid (channel tiles, run groups), grid-stride over runs.
template <int VEC, int KMAX>
__global__ void conv1d_forward_kernel(hy_bf16 *__restrict__ y, const hy_bf16 *__restrict__ x,
                                      const float *__restrict__ w, const float *__restrict__ window_in,
                                      const int32_t *__restrict__ rows, const int32_t *__restrict__ cu, int n_docs,
                                      int T, int Ch, int K) {
    constexpr int R = kRun + KMAX - 1;  // x rows t0 − (KMAX−1) .. t0 + kRun − 1
    const int c = (blockIdx.x * kFwdChanLanes + threadIdx.x) * VEC;
    if (c >= Ch) return;
    float wr[KMAX][VEC];
    load_taps<VEC, KMAX>(wr, w, c, K);
    const long nruns = ((long)T + kRun - 1) / kRun;
    for (long run = (long)blockIdx.y * kFwdRunLanes + threadIdx.y; run < nruns; run += (long)gridDim.y * kFwdRunLanes) {
        const long t0 = run * kRun;
        hy::bf16_bits<VEC> xr[R];
        preload_rows<VEC, R>(xr, x, t0, -(KMAX - 1), T, c, Ch);
        int d = doc_of(cu, n_docs, t0);
#pragma unroll
        for (int i = 0; i < kRun; i++) {
            const long t = t0 + i;
            if (t >= T) break;
            while (t >= cu[d + 1]) d++;
            float acc[VEC], in[KMAX][VEC];
            // document d's window: its row of window_in, or row rows[d] of a slot pool
            const float *win = window_in ? window_in + (size_t)(rows ? rows[d] : d) * Ch * (K - 1) : nullptr;
            conv_preact_rows<VEC, KMAX, R>(acc, in, wr, xr, i, t0, win, 0, cu[d], c, Ch, K);
#pragma unroll
            for (int k = 0; k < VEC; k++) acc[k] *= hy::fast_sigmoid(acc[k]);
            hy::store_bf16<VEC>(y + (size_t)t * Ch + c, acc);
        }
    }
}

// One thread per (document, channel): reads the old window first, then writes the new one.
template <int KMAX>
__global__ void conv1d_window_kernel(float *window_out, const hy_bf16 *__restrict__ x, const float *window_in,
                                     const int32_t *__restrict__ rows, const int32_t *__restrict__ cu, int n_docs,
                                     int Ch, int K) {
    const size_t n = (size_t)n_docs * Ch;
    for (size_t i_dc = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i_dc < n; i_dc += (size_t)gridDim.x * blockDim.x) {
        const int d = (int)(i_dc / Ch), c = (int)(i_dc % Ch);
        const size_t idx = (size_t)(rows ? rows[d] : d) * Ch + c;  // the window's (row, channel)
        const int start = cu[d], len = cu[d + 1] - start;
        float old[KMAX - 1], next[KMAX - 1];
#pragma unroll
        for (int j = 0; j < KMAX - 1; j++) old[j] = window_in && j < K - 1 ? window_in[idx * (K - 1) + j] : 0.0f;
#pragma unroll
        for (int i = 0; i < KMAX - 1; i++) {
            if (i >= K - 1) break;
            // position end − (K−1) + i: inside the document, or old window slot i + len
            if (i + len >= K - 1) {
                next[i] = __bfloat162float(x[(size_t)(start + len - (K - 1) + i) * Ch + c]);
            } else {
                next[i] = 0.0f;
#pragma unroll
                for (int j = 0; j < KMAX - 1; j++)
                    if (j == i + len) next[i] = old[j];
            }
        }
#pragma unroll
        for (int i = 0; i < KMAX - 1; i++)
            if (i < K - 1) window_out[idx * (K - 1) + i] = next[i];
    }
}

// Block (kBwdChanLanes, kBwdRunLanes); grid (channel tiles, cluster of run chunks).
template <int VEC, int KMAX>
__global__ void __launch_bounds__(kBwdChanLanes *kBwdRunLanes)
    conv1d_backward_kernel(hy_bf16 *__restrict__ dx, float *dw, const hy_bf16 *__restrict__ dy,
                           const hy_bf16 *__restrict__ x, const float *__restrict__ w,
                           const float *__restrict__ window_in, const int32_t *__restrict__ cu, int n_docs, int T,
                           int Ch, int K) {
    constexpr int kTile = kBwdChanLanes * VEC * KMAX;  // (tile channel, reversed tap)
    constexpr int RD = kRun + KMAX - 1;                // dpre at t0 .. t0 + kRun + KMAX − 2
    constexpr int RX = RD + KMAX - 1;                  // x rows t0 − (KMAX−1) .. t0 + kRun + KMAX − 2
    __shared__ float part[kBwdRunLanes][kTile];
    __shared__ float tile[kTile];
    const int c = (blockIdx.x * kBwdChanLanes + threadIdx.x) * VEC;
    const bool active = c < Ch;
    float wr[KMAX][VEC], dwr[KMAX][VEC];
#pragma unroll
    for (int m = 0; m < KMAX; m++)
#pragma unroll
        for (int k = 0; k < VEC; k++) dwr[m][k] = 0.0f;
    if (active) {
        load_taps<VEC, KMAX>(wr, w, c, K);
        const long nruns = ((long)T + kRun - 1) / kRun, chunk = (nruns + gridDim.y - 1) / gridDim.y;
        const long r0 = blockIdx.y * chunk, r1 = min(nruns, r0 + chunk);
        for (long run = r0 + threadIdx.y; run < r1; run += kBwdRunLanes) {
            const long t0 = run * kRun;
            hy::bf16_bits<VEC> xr[RX], dyr[RD], dxr[kRun];
            preload_rows<VEC, RX>(xr, x, t0, -(KMAX - 1), T, c, Ch);
            preload_rows<VEC, RD>(dyr, dy, t0, 0, T, c, Ch);
            if (dx) preload_rows<VEC, kRun>(dxr, dx, t0, 0, T, c, Ch);
            int d = doc_of(cu, n_docs, t0);
            float dp[RD][VEC];
            int end[kRun];
#pragma unroll
            for (int i = 0; i < RD; i++) {
                const long t = t0 + i;
#pragma unroll
                for (int k = 0; k < VEC; k++) dp[i][k] = 0.0f;
                if (i < kRun) end[i] = 0;
                if (i >= kRun + K - 1 || t >= T) continue;
                while (t >= cu[d + 1]) d++;
                if (i < kRun) end[i] = cu[d + 1];
                float a[VEC], in[KMAX][VEC], g[VEC];
                conv_preact_rows<VEC, KMAX, RX>(a, in, wr, xr, i, t0, window_in, d, cu[d], c, Ch, K);
                hy::unpack_bf16<VEC>(g, dyr[i]);
#pragma unroll
                for (int k = 0; k < VEC; k++) {
                    const float s = hy::fast_sigmoid(a[k]);
                    dp[i][k] = g[k] * s * (1.0f + a[k] * (1.0f - s));
                }
                if (i < kRun && dw) {
#pragma unroll
                    for (int m = 0; m < KMAX; m++)
#pragma unroll
                        for (int k = 0; k < VEC; k++) dwr[m][k] = fmaf(dp[i][k], in[m][k], dwr[m][k]);
                }
            }
            if (!dx) continue;
#pragma unroll
            for (int i = 0; i < kRun; i++) {
                const long t = t0 + i;
                if (t >= T) break;
                float o[VEC];
                hy::unpack_bf16<VEC>(o, dxr[i]);
#pragma unroll
                for (int m = 0; m < KMAX; m++)
                    if (m < K && t + m < end[i])
#pragma unroll
                        for (int k = 0; k < VEC; k++) o[k] = fmaf(dp[i + m][k], wr[m][k], o[k]);
                hy::store_bf16<VEC>(dx + (size_t)t * Ch + c, o);
            }
        }
    }
    if (!dw) return;  // uniform over the grid, so no block of a cluster waits on a missing one
#pragma unroll
    for (int k = 0; k < VEC; k++)
#pragma unroll
        for (int m = 0; m < KMAX; m++) part[threadIdx.y][(threadIdx.x * VEC + k) * KMAX + m] = dwr[m][k];
    __syncthreads();
    const int tid = threadIdx.x + threadIdx.y * kBwdChanLanes;
    for (int e = tid; e < kTile; e += kBwdChanLanes * kBwdRunLanes) {
        float s = 0.0f;
        for (int r = 0; r < kBwdRunLanes; r++) s += part[r][e];
        tile[e] = s;
    }
    const int c0 = blockIdx.x * kBwdChanLanes * VEC;
    hy::cluster_sum_columns(tile, kTile, [&](int e, float s) {
        const int ch = c0 + e / KMAX, m = e % KMAX;
        if (ch < Ch && m < K) dw[(size_t)ch * K + (K - 1 - m)] += s;
    });
}

// One thread per (document, channel): window slot i (position start − (K−1) + i) received
// dpre[t]·w[i − (t − start)] from each of the document's first tokens t whose taps reach it.
template <int KMAX>
__global__ void conv1d_dwindow_kernel(float *__restrict__ dwindow_in, const hy_bf16 *__restrict__ dy,
                                      const hy_bf16 *__restrict__ x, const float *__restrict__ w,
                                      const float *__restrict__ window_in, const int32_t *__restrict__ cu,
                                      int n_docs, int Ch, int K) {
    const size_t n = (size_t)n_docs * Ch;
    for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < n; idx += (size_t)gridDim.x * blockDim.x) {
        const int d = (int)(idx / Ch), c = (int)(idx % Ch);
        const int start = cu[d], end = cu[d + 1];
        float wr[KMAX][1];
        load_taps<1, KMAX>(wr, w, c, K);
        float dp[KMAX - 1];
#pragma unroll
        for (int u = 0; u < KMAX - 1; u++) {
            dp[u] = 0.0f;
            if (u >= K - 1 || start + u >= end) continue;
            float a[1], in[KMAX][1], g = __bfloat162float(dy[(size_t)(start + u) * Ch + c]);
            conv_preact<1, KMAX>(a, in, wr, x, window_in, d, start, start + u, c, Ch, K);
            const float s = hy::fast_sigmoid(a[0]);
            dp[u] = g * s * (1.0f + a[0] * (1.0f - s));
        }
#pragma unroll
        for (int i = 0; i < KMAX - 1; i++) {
            if (i >= K - 1) break;
            float s = 0.0f;
#pragma unroll
            for (int u = 0; u <= i; u++) s = fmaf(dp[u], w[(size_t)c * K + (i - u)], s);
            dwindow_in[idx * (K - 1) + i] += s;
        }
    }
}

[[noreturn]] void unsupported_k(int K) {
    fprintf(stderr, "conv1d_silu_cuda: kernel size K=%d unsupported (1..8)\n", K);
    abort();
}

template <int KMAX>
void forward_k(hy_bf16 *y, float *window_out, const hy_bf16 *x, const float *w, const float *window_in,
               const int32_t *rows, const int32_t *cu, int n_docs, int T, int Ch, int K, cudaStream_t stream) {
    if (T > 0) {
        const int vec = hy::pick_vec(2, {{y, 2}, {x, 2}}, {Ch});
        const long nvec = Ch / vec, nruns = ((long)T + kRun - 1) / kRun;
        const long gy = (nruns + kFwdRunLanes - 1) / kFwdRunLanes;
        const dim3 grid((unsigned)((nvec + kFwdChanLanes - 1) / kFwdChanLanes), (unsigned)(gy < 65535 ? gy : 65535));
        const dim3 block(kFwdChanLanes, kFwdRunLanes);
        if (vec == 2)
            conv1d_forward_kernel<2, KMAX><<<grid, block, 0, stream>>>(y, x, w, window_in, rows, cu, n_docs, T, Ch, K);
        else
            conv1d_forward_kernel<1, KMAX><<<grid, block, 0, stream>>>(y, x, w, window_in, rows, cu, n_docs, T, Ch, K);
        CUDA_CHECK_LAUNCH();
    }
    if (window_out && K > 1) {
        const size_t n = (size_t)n_docs * Ch;
        conv1d_window_kernel<KMAX><<<hy::stream_blocks(n, 256), 256, 0, stream>>>(window_out, x, window_in, rows, cu,
                                                                                    n_docs, Ch, K);
        CUDA_CHECK_LAUNCH();
    }
}

template <int KMAX>
void backward_k(hy_bf16 *dx, float *dw, float *dwindow_in, const hy_bf16 *dy, const hy_bf16 *x, const float *w,
                const float *window_in, const int32_t *cu, int n_docs, int T, int Ch, int K, cudaStream_t stream) {
    if (T > 0 && (dx || dw)) {
        const int vec = hy::pick_vec(2, {{dx, 2}, {dy, 2}, {x, 2}}, {Ch});
        const long nvec = Ch / vec, nruns = ((long)T + kRun - 1) / kRun;
        const long tiles = (nvec + kBwdChanLanes - 1) / kBwdChanLanes;
        const unsigned cs = hy::cluster_blocks(tiles, (nruns + kBwdRunLanes - 1) / kBwdRunLanes);
        const dim3 block(kBwdChanLanes, kBwdRunLanes);
        if (vec == 2)
            hy::launch_clustered(conv1d_backward_kernel<2, KMAX>, (unsigned)tiles, cs, block, stream, dx, dw, dy, x, w,
                                 window_in, cu, n_docs, T, Ch, K);
        else
            hy::launch_clustered(conv1d_backward_kernel<1, KMAX>, (unsigned)tiles, cs, block, stream, dx, dw, dy, x, w,
                                 window_in, cu, n_docs, T, Ch, K);
    }
    if (dwindow_in && K > 1) {
        const size_t n = (size_t)n_docs * Ch;
        conv1d_dwindow_kernel<KMAX><<<hy::stream_blocks(n, 256), 256, 0, stream>>>(dwindow_in, dy, x, w, window_in, cu,
                                                                                     n_docs, Ch, K);
        CUDA_CHECK_LAUNCH();
    }
}

}  // namespace

extern "C" void conv1d_silu_forward_cuda(hy_bf16 *y, float *window_out, const hy_bf16 *x, const float *w,
                                         const float *window_in, const int32_t *cu_seqlens, int n_docs, int T, int Ch,
                                         int K, cudaStream_t stream) {
    if (n_docs <= 0 || Ch <= 0) return;
    if (K >= 1 && K <= 4) forward_k<4>(y, window_out, x, w, window_in, nullptr, cu_seqlens, n_docs, T, Ch, K, stream);
    else if (K >= 1 && K <= 8) forward_k<8>(y, window_out, x, w, window_in, nullptr, cu_seqlens, n_docs, T, Ch, K, stream);
    else unsupported_k(K);
}

extern "C" void conv1d_silu_forward_pool_cuda(hy_bf16 *y, float *window_pool, const int32_t *rows, const hy_bf16 *x,
                                              const float *w, const int32_t *cu_seqlens, int n_docs, int T, int Ch,
                                              int K, cudaStream_t stream) {
    if (n_docs <= 0 || Ch <= 0) return;
    // in place: the forward kernel reads every window before the window kernel (next on the
    // stream) rewrites it, and each document owns its row
    if (K >= 1 && K <= 4) forward_k<4>(y, window_pool, x, w, window_pool, rows, cu_seqlens, n_docs, T, Ch, K, stream);
    else if (K >= 1 && K <= 8) forward_k<8>(y, window_pool, x, w, window_pool, rows, cu_seqlens, n_docs, T, Ch, K, stream);
    else unsupported_k(K);
}

extern "C" void conv1d_silu_backward_cuda(hy_bf16 *dx, float *dw, float *dwindow_in, const hy_bf16 *dy,
                                          const hy_bf16 *x, const float *w, const float *window_in,
                                          const int32_t *cu_seqlens, int n_docs, int T, int Ch, int K,
                                          cudaStream_t stream) {
    if (n_docs <= 0 || Ch <= 0) return;
    if (K >= 1 && K <= 4)
        backward_k<4>(dx, dw, dwindow_in, dy, x, w, window_in, cu_seqlens, n_docs, T, Ch, K, stream);
    else if (K >= 1 && K <= 8)
        backward_k<8>(dx, dw, dwindow_in, dy, x, w, window_in, cu_seqlens, n_docs, T, Ch, K, stream);
    else unsupported_k(K);
}
