// Gated delta rule, chunked forward on the GPU: the CUDA twin of kernels/cpu/gdn_chunked.c (read its
// header for the algebra), in three phases as the fast implementations do:
//   1. prepare (chunk-parallel, one CTA per chunk and value head): γ = cumsum g inside the chunk,
//      A = strictly-lower β_i·(k_i·k_j)·exp(γ_i − γ_j), T = (I + A)⁻¹ by forward substitution,
//      W = T·diag(β·exp(γ))·K and T·diag(β)·V, all with S0 still unknown.
//   2. state pass (sequential over the chunks of a document, parallel over documents, value heads
//      and Dv tiles): stores each chunk-start state S0, completes U = T·diag(β)·V − W·S0, and
//      advances S ← exp(γ_last)·S + Kᵀ·diag(exp(γ_last − γ))·U.
//   3. output (chunk-parallel): O = scale·diag(exp(γ))·Q·S0 + (scale·QKᵀ ⊙ D)·U, D_ij = exp(γ_i − γ_j)
//      on and below the diagonal.
// Chunks are 64 tokens and restart at every document start (cu_seqlens is a device array, so the
// chunk table is built on the device; the workspace is sized from an upper bound on the chunk count).
// Decays are only formed as exp of a non-positive difference. γ is an fp32 cumsum: at |γ| ~ 1000 it
// puts ~1e-4 relative error into a decay, far below the bf16 rounding of the outputs.
// Precision of the tensor-core products: see gdn_common.cuh.
#include "gdn_common.cuh"

#include "cuda_check.h"

namespace gdn {

static size_t align_up(size_t x) { return (x + 255) & ~(size_t)255; }

workspace workspace_layout(const gdn_shape *s, void *fwd_base, void *bwd_base, size_t *fwd_bytes,
                           size_t *bwd_bytes) {
    workspace ws = {};
    // Σ ceil(len_d / 64) ≤ floor((T + 63·n_docs) / 64), and no chunk is empty, so also ≤ T.
    long long bound = ((long long)s->T + 63LL * s->n_docs) / CHUNK;
    if (bound > s->T) bound = s->T;
    ws.max_chunks = bound < 1 ? 1 : (int)bound;
    size_t T = (size_t)s->T, H = (size_t)s->H_v, Dk = (size_t)s->Dk, Dv = (size_t)s->Dv;
    size_t C = (size_t)ws.max_chunks;
    char *base = (char *)fwd_base;
    size_t off = 0;
    auto take = [&](size_t n_bytes) {
        void *at = base ? base + off : nullptr;
        off += align_up(n_bytes);
        return at;
    };
    // the forward part: what the forward computes and the backward reads
    ws.chunk_first = (int *)take(((size_t)s->n_docs + 1) * sizeof(int));
    ws.chunks = (int4 *)take(C * sizeof(int4));
    ws.gamma = (float *)take(T * H * sizeof(float));
    ws.tmat = (float *)take(C * H * CHUNK * CHUNK * sizeof(float));
    ws.w = (float *)take(T * H * Dk * sizeof(float));
    ws.u = (float *)take(T * H * Dv * sizeof(float));
    ws.s0 = (float *)take(C * H * Dk * Dv * sizeof(float));
    *fwd_bytes = off;
    // the backward's own part
    base = (char *)bwd_base;
    off = 0;
    ws.du = (float *)take(T * H * Dv * sizeof(float));
    ws.ds = (float *)take(C * H * Dk * Dv * sizeof(float));
    ws.dw = (float *)take(T * H * Dk * sizeof(float));
    ws.dq = (float *)take(T * H * Dk * sizeof(float));
    ws.dk = (float *)take(T * H * Dk * sizeof(float));
    *bwd_bytes = off;
    return ws;
}

params params_make(const gdn_shape *s, void *fwd_base, void *bwd_base) {
    params p = {};
    p.T = s->T, p.n_docs = s->n_docs, p.H_k = s->H_k, p.H_v = s->H_v, p.Dk = s->Dk, p.Dv = s->Dv;
    p.scale = s->scale;
    p.cu_seqlens = s->cu_seqlens;
    size_t fwd_bytes, bwd_bytes;
    p.ws = workspace_layout(s, fwd_base, bwd_base, &fwd_bytes, &bwd_bytes);
    return p;
}

// ---- chunk table -------------------------------------------------------------------------------

// One block: an exclusive scan of the per-document chunk counts, then one entry per chunk slot.
__global__ void __launch_bounds__(1024) chunk_table_kernel(params p) {
    __shared__ int warp_sums[32];
    __shared__ int carry;
    const int *cu = p.cu_seqlens;
    int *first = p.ws.chunk_first;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (threadIdx.x == 0) carry = 0;
    __syncthreads();
    for (int base = 0; base < p.n_docs; base += blockDim.x) {
        int d = base + threadIdx.x;
        int n = d < p.n_docs ? (cu[d + 1] - cu[d] + CHUNK - 1) / CHUNK : 0;
        int x = n;  // inclusive scan within the warp
        for (int off = 1; off < 32; off <<= 1) {
            int y = __shfl_up_sync(0xffffffffu, x, off);
            if (lane >= off) x += y;
        }
        if (lane == 31) warp_sums[warp] = x;
        __syncthreads();
        if (warp == 0) {
            int s = lane < nw ? warp_sums[lane] : 0;
            for (int off = 1; off < 32; off <<= 1) {
                int y = __shfl_up_sync(0xffffffffu, s, off);
                if (lane >= off) s += y;
            }
            warp_sums[lane] = s;
        }
        __syncthreads();
        int excl = x - n + (warp > 0 ? warp_sums[warp - 1] : 0);
        if (d < p.n_docs) first[d] = carry + excl;
        __syncthreads();
        if (threadIdx.x == blockDim.x - 1) carry += excl + n;
        __syncthreads();
    }
    if (threadIdx.x == 0) first[p.n_docs] = carry;
    __syncthreads();
    const int total = carry;
    for (int c = threadIdx.x; c < p.ws.max_chunks; c += blockDim.x) {
        int4 e = make_int4(0, 0, 0, 0);
        if (c < total) {
            int lo = 0, hi = p.n_docs - 1;  // the last document whose first chunk is ≤ c
            while (lo < hi) {
                int mid = (lo + hi + 1) / 2;
                if (first[mid] <= c)
                    lo = mid;
                else
                    hi = mid - 1;
            }
            int ci = c - first[lo], len = cu[lo + 1] - cu[lo];
            e = make_int4(lo, cu[lo] + ci * CHUNK, min(CHUNK, len - ci * CHUNK), 0);
        }
        p.ws.chunks[c] = e;
    }
}

void launch_chunk_table(const params &p, cudaStream_t stream) {
    chunk_table_kernel<<<1, 1024, 0, stream>>>(p);
    CUDA_CHECK_LAUNCH();
}

// ---- phase 1: prepare --------------------------------------------------------------------------

// Grid (max_chunks, H_v). Shared: A and T (64 × LDS each), γ, β, β·exp(γ).
__global__ void __launch_bounds__(THREADS) prepare_kernel(params p) {
    extern __shared__ float sm[];
    float *A = sm, *Tm = A + CHUNK * LDS, *gam = Tm + CHUNK * LDS, *bet = gam + CHUNK, *beg = bet + CHUNK;
    const int4 ch = p.ws.chunks[blockIdx.x];
    const int L = ch.z;
    if (L == 0) return;
    const int t0 = ch.y, h = blockIdx.y, kh = h / (p.H_v / p.H_k), Lp = round16(L);
    const int tid = threadIdx.x, Dk = p.Dk, Dv = p.Dv;

    for (int i = tid; i < 2 * CHUNK * LDS; i += blockDim.x) sm[i] = 0.0f;
    // γ = inclusive cumsum of g over the chunk: a scan in each of the first two warps, then the
    // second adds the first's total (a serial loop here cost a dependent global load per token).
    __shared__ float first_half;
    if (tid < CHUNK) {
        float x = tid < L ? p.g[(size_t)(t0 + tid) * p.H_v + h] : 0.0f;
        for (int off = 1; off < 32; off <<= 1) {
            float y = __shfl_up_sync(0xffffffffu, x, off);
            if ((tid & 31) >= off) x += y;
        }
        if (tid == 31) first_half = x;
        gam[tid] = x;
    }
    __syncthreads();
    if (tid >= 32 && tid < CHUNK) gam[tid] += first_half;
    if (tid < CHUNK) {
        if (tid >= L) gam[tid] = 0.0f;
        else p.ws.gamma[(size_t)(t0 + tid) * p.H_v + h] = gam[tid];
    }
    if (tid < CHUNK) bet[tid] = tid < L ? p.beta[(size_t)(t0 + tid) * p.H_v + h] : 0.0f;
    __syncthreads();
    if (tid < CHUNK) beg[tid] = bet[tid] * expf(gam[tid]);

    const size_t sk = (size_t)p.H_k * Dk, sv = (size_t)p.H_v * Dv;
    const hy_bf16 *kb = p.k + ((size_t)t0 * p.H_k + kh) * Dk, *vb = p.v + ((size_t)t0 * p.H_v + h) * Dv;
    auto K = [&](int i, int a) { return i < L ? bf(kb[i * sk + a]) : 0.0f; };
    auto Kt = [&](int a, int j) { return j < L ? bf(kb[j * sk + a]) : 0.0f; };
    auto V = [&](int i, int b) { return i < L ? bf(vb[i * sv + b]) : 0.0f; };

    // A = strictly lower β_i·(k_i·k_j)·exp(γ_i − γ_j); blocks wholly above the diagonal stay zero.
    with_block_width(Lp, [&](auto nt) {
        constexpr int NT = decltype(nt)::value;
        for_each_block<NT>(Lp, Lp, [&](int m0, int n0) {
            if (n0 > m0 + 15) return;
            float c[NT][4];
            block_zero(c);
            mma_block<EXACT, EXACT, NT>(c, K, Kt, m0, n0, Dk);
            block_each(c, m0, n0, [&](int i, int j, float &x) {
                A[i * LDS + j] = (j < i && i < L) ? bet[i] * x * expf(gam[i] - gam[j]) : 0.0f;
            });
        });
    });
    __syncthreads();

    // T = (I + A)⁻¹ by forward substitution, T_im = −Σ_{m≤j<i} A_ij·T_jm, column m on the four lanes
    // 4m … 4m + 3, each summing every fourth j; all lanes run the same i loop so the shuffles that
    // join the four parts stay converged (a lane whose column has not started adds nothing).
    {
        const int m = tid >> 2, q = tid & 3;
        if (q == 0) Tm[m * LDS + m] = m < L ? 1.0f : 0.0f;
        __syncwarp();
        for (int i = 1; i < L; i++) {
            float acc = 0.0f;
            if (i > m)
                for (int j = m + q; j < i; j += 4) acc -= A[i * LDS + j] * Tm[j * LDS + m];
            acc += __shfl_xor_sync(0xffffffffu, acc, 1);
            acc += __shfl_xor_sync(0xffffffffu, acc, 2);
            if (q == 0 && i > m) Tm[i * LDS + m] = acc;
            __syncwarp();
        }
    }
    __syncthreads();
    float *tg = p.ws.tmat + ((size_t)blockIdx.x * p.H_v + h) * CHUNK * CHUNK;
    for (int i = tid; i < CHUNK * CHUNK; i += blockDim.x) tg[i] = Tm[(i / CHUNK) * LDS + i % CHUNK];

    // W = (T·diag(β·exp(γ)))·K and T·diag(β)·V, one tile space for both.
    auto Tbeg = [&](int i, int j) { return Tm[i * LDS + j] * beg[j]; };
    auto Tbet = [&](int i, int j) { return Tm[i * LDS + j] * bet[j]; };
    float *wg = p.ws.w + ((size_t)t0 * p.H_v + h) * Dk, *ug = p.ws.u + ((size_t)t0 * p.H_v + h) * Dv;
    const size_t sw = (size_t)p.H_v * Dk;
    with_block_width(Dk, [&](auto nt) {
        constexpr int NT = decltype(nt)::value;
        for_each_block<NT>(Lp, Dk, [&](int m0, int n0) {
            float c[NT][4];
            block_zero(c);
            mma_block<SPLIT, EXACT, NT>(c, Tbeg, K, m0, n0, Lp);
            block_each(c, m0, n0, [&](int i, int a, float &x) {
                if (i < L) wg[i * sw + a] = x;
            });
        });
    });
    with_block_width(Dv, [&](auto nt) {
        constexpr int NT = decltype(nt)::value;
        for_each_block<NT>(Lp, Dv, [&](int m0, int n0) {
            float c[NT][4];
            block_zero(c);
            mma_block<SPLIT, EXACT, NT>(c, Tbet, V, m0, n0, Lp);
            block_each(c, m0, n0, [&](int i, int b, float &x) {
                if (i < L) ug[i * sv + b] = x;
            });
        });
    });
}

void set_smem(const void *kernel, size_t bytes) {
    if (bytes > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

void launch_prepare(const params &p, cudaStream_t stream) {
    size_t smem = (2 * CHUNK * LDS + 3 * CHUNK) * sizeof(float);
    set_smem((const void *)prepare_kernel, smem);
    prepare_kernel<<<dim3(p.ws.max_chunks, p.H_v), THREADS, smem, stream>>>(p);
    CUDA_CHECK_LAUNCH();
}

// ---- phase 2: the state pass is in gdn_state_pass.cu ---------------------------------------------

// ---- phase 3: output ---------------------------------------------------------------------------

// Grid (max_chunks, H_v). Shared: P = scale·QKᵀ ⊙ D (64 × LDS), γ.
__global__ void __launch_bounds__(THREADS) output_kernel(params p) {
    extern __shared__ float sm[];
    float *P = sm, *gam = P + CHUNK * LDS;
    const int4 ch = p.ws.chunks[blockIdx.x];
    const int L = ch.z;
    if (L == 0) return;
    const int t0 = ch.y, h = blockIdx.y, kh = h / (p.H_v / p.H_k), Lp = round16(L), Dk = p.Dk, Dv = p.Dv;
    const int tid = threadIdx.x;
    if (tid < CHUNK) gam[tid] = tid < L ? p.ws.gamma[(size_t)(t0 + tid) * p.H_v + h] : 0.0f;
    __syncthreads();

    const size_t sk = (size_t)p.H_k * Dk, sv = (size_t)p.H_v * Dv;
    const hy_bf16 *qb = p.q + ((size_t)t0 * p.H_k + kh) * Dk, *kb = p.k + ((size_t)t0 * p.H_k + kh) * Dk;
    auto Q = [&](int i, int a) { return i < L ? bf(qb[i * sk + a]) : 0.0f; };
    auto Kt = [&](int a, int j) { return j < L ? bf(kb[j * sk + a]) : 0.0f; };
    decayed_qk(P, Q, Kt, gam, p.scale, L, Lp, Dk);
    __syncthreads();

    const float *s0 = p.ws.s0 + ((size_t)blockIdx.x * p.H_v + h) * Dk * Dv;
    const float *ug = p.ws.u + ((size_t)t0 * p.H_v + h) * Dv;
    hy_bf16 *og = p.o + ((size_t)t0 * p.H_v + h) * Dv;
    auto S0 = [&](int a, int b) { return s0[(size_t)a * Dv + b]; };
    auto Pm = [&](int i, int j) { return P[i * LDS + j]; };
    auto U = [&](int j, int b) { return j < L ? ug[j * sv + b] : 0.0f; };
    with_block_width(Dv, [&](auto nt) {
        constexpr int NT = decltype(nt)::value;
        for_each_block<NT>(Lp, Dv, [&](int m0, int n0) {
            float c[NT][4];
            block_zero(c);
            mma_block<EXACT, SPLIT, NT>(c, Q, S0, m0, n0, Dk);
            block_each(c, m0, n0, [&](int i, int b, float &x) { x *= p.scale * expf(gam[i]); });
            mma_block<SPLIT, SPLIT, NT>(c, Pm, U, m0, n0, Lp);
            block_each(c, m0, n0, [&](int i, int b, float &x) {
                if (i < L) og[i * sv + b] = __float2bfloat16(x);
            });
        });
    });
}

static void launch_output(const params &p, cudaStream_t stream) {
    size_t smem = (CHUNK * LDS + CHUNK) * sizeof(float);
    output_kernel<<<dim3(p.ws.max_chunks, p.H_v), THREADS, smem, stream>>>(p);
    CUDA_CHECK_LAUNCH();
}

}  // namespace gdn

extern "C" size_t gdn_chunked_saved_bytes(const gdn_shape *s) {
    size_t fwd, bwd;
    gdn::workspace_layout(s, nullptr, nullptr, &fwd, &bwd);
    return fwd;
}

extern "C" size_t gdn_chunked_backward_workspace_bytes(const gdn_shape *s) {
    size_t fwd, bwd;
    gdn::workspace_layout(s, nullptr, nullptr, &fwd, &bwd);
    return bwd;
}

extern "C" size_t gdn_chunked_workspace_bytes(const gdn_shape *s) {
    return gdn_chunked_saved_bytes(s) + gdn_chunked_backward_workspace_bytes(s);
}

extern "C" void gdn_chunked_forward_cuda(const gdn_shape *s, hy_bf16 *o, float *state_out, const hy_bf16 *q,
                                         const hy_bf16 *k, const hy_bf16 *v, const float *g, const float *beta,
                                         const float *state_in, void *workspace, cudaStream_t stream) {
    if (s->n_docs <= 0) return;
    gdn::params p = gdn::params_make(s, workspace, nullptr);
    p.q = q, p.k = k, p.v = v, p.g = g, p.beta = beta, p.state_in = state_in;
    p.o = o, p.state_out = state_out;
    gdn::launch_chunk_table(p, stream);
    gdn::launch_prepare(p, stream);
    gdn::launch_state_forward(p, stream);
    gdn::launch_output(p, stream);
}
