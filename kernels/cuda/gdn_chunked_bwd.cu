// Gated delta rule, chunked backward on the GPU: the CUDA twin of gdn_chunked_backward in
// kernels/cpu/gdn_chunked.c, whose header comment derives every term used here. Phases:
//   1. the forward's prepare and state pass, re-run: γ, T, W, U and every chunk-start state S0 —
//      or, with gdn_chunked_backward_saved_cuda, read from the part of the workspace the forward
//      filled and the caller kept (memory for time: ~25 % of the backward at the benchmark shape);
//   2. du_local (chunk-parallel): dU's output part, Mᵀ·dO with M_ij = scale·(q_i·k_j)·D_ij, j ≤ i,
//      and the part of each chunk's state-gradient step that does not depend on the carried dS,
//      Qᵀ·diag(scale·exp(γ))·dO (into ws.ds), so the sequential pass only streams it in;
//   3. reverse state pass (sequential over chunks, last first; parallel over documents, value heads
//      and Dv tiles; gdn_state_pass.cu), carrying dS, the gradient with respect to the current
//      chunk's end state: stores dS per chunk, completes dU += diag(exp(γ_last − γ))·K·dS, and steps
//      dS ← exp(γ_last)·dS + Qᵀ·diag(scale·exp(γ))·dO − Wᵀ·dU; the first chunk's dS goes to dstate_in;
//   4. chunk gradients (chunk-parallel), with S0, dS, U and dU known: the output, state, UT and
//      inverse terms of dq, dk, dv, dβ and dγ exactly as the CPU's backward_outputs / backward_ut /
//      backward_inverse steps, then dg = reverse cumsum of dγ inside the chunk;
//   5. dq and dk, kept per value head in the workspace, are summed over each key head's group of
//      value heads and added to the bf16 gradients once.
// dγ and dβ are accumulated in double (shared-memory atomics): their terms cancel pairwise.
// Every gradient is added (+=) to what the caller's buffers hold; NULL gradients are skipped.
// Precision of the tensor-core products: see gdn_common.cuh.
#include "gdn_common.cuh"

#include "cuda_check.h"

namespace gdn {

// ---- 2. dU's output part -----------------------------------------------------------------------

// Grid (max_chunks, H_v). Shared: M (64 × LDS), γ.
__global__ void __launch_bounds__(THREADS) du_local_kernel(params p) {
    extern __shared__ float sm[];
    float *M = sm, *gam = M + CHUNK * LDS;
    const int4 ch = p.ws.chunks[blockIdx.x];
    const int L = ch.z;
    if (L == 0) return;
    const int t0 = ch.y, h = blockIdx.y, kh = h / (p.H_v / p.H_k), Lp = round16(L), Dk = p.Dk, Dv = p.Dv;
    const int tid = threadIdx.x;
    if (tid < CHUNK) gam[tid] = tid < L ? p.ws.gamma[(size_t)(t0 + tid) * p.H_v + h] : 0.0f;
    __syncthreads();

    const size_t sk = (size_t)p.H_k * Dk, sv = (size_t)p.H_v * Dv;
    const hy_bf16 *qb = p.q + ((size_t)t0 * p.H_k + kh) * Dk, *kb = p.k + ((size_t)t0 * p.H_k + kh) * Dk;
    const hy_bf16 *dob = p.d_o + ((size_t)t0 * p.H_v + h) * Dv;
    auto Q = [&](int i, int a) { return i < L ? bf(qb[i * sk + a]) : 0.0f; };
    auto Kt = [&](int a, int j) { return j < L ? bf(kb[j * sk + a]) : 0.0f; };
    decayed_qk(M, Q, Kt, gam, p.scale, L, Lp, Dk);
    __syncthreads();

    auto Mt = [&](int j, int i) { return M[i * LDS + j]; };
    auto dO = [&](int i, int b) { return i < L ? bf(dob[i * sv + b]) : 0.0f; };
    float *dug = p.ws.du + ((size_t)t0 * p.H_v + h) * Dv;
    // Qᵀ·diag(scale·exp(γ))·dO, (Dk, Dv), the dS-independent term of the reverse state step.
    auto Qt = [&](int a, int i) { return i < L ? bf(qb[i * sk + a]) : 0.0f; };
    auto dOe = [&](int i, int b) { return i < L ? p.scale * expf(gam[i]) * bf(dob[i * sv + b]) : 0.0f; };
    float *pg = p.ws.ds + ((size_t)blockIdx.x * p.H_v + h) * Dk * Dv;
    with_block_width(Dv, [&](auto nt) {
        constexpr int NT = decltype(nt)::value;
        for_each_block<NT>(Lp + Dk, Dv, [&](int mm, int n0) {
            float c[NT][4];
            block_zero(c);
            if (mm < Lp) {
                mma_block<SPLIT, EXACT, NT>(c, Mt, dO, mm, n0, Lp);
                block_each(c, mm, n0, [&](int j, int b, float &x) {
                    if (j < L) dug[j * sv + b] = x;
                });
            } else {
                const int m0 = mm - Lp;
                mma_block<EXACT, SPLIT, NT>(c, Qt, dOe, m0, n0, Lp);
                block_each(c, m0, n0, [&](int a, int b, float &x) { pg[(size_t)a * Dv + b] = x; });
            }
        });
    });
}

// ---- 3. the reverse state pass is in gdn_state_pass.cu ------------------------------------------

// ---- 4. chunk gradients ------------------------------------------------------------------------

// Grid (max_chunks, H_v). Shared: five 64 × LDS matrices (T; KKᵀ; QKᵀ, later Y = dT·Tᵀ; dP ⊙ D;
// dUVᵀ, later dT, later dA ⊙ D), γ, exp(γ), exp(γ_last − γ), β, and dγ, dβ in double.
__global__ void __launch_bounds__(THREADS) chunk_grad_kernel(params p) {
    extern __shared__ double smd[];
    double *dgam = smd, *dbet = dgam + CHUNK;
    float *sm = (float *)(dbet + CHUNK);
    float *Tm = sm, *KK = Tm + CHUNK * LDS, *QK = KK + CHUNK * LDS, *dPD = QK + CHUNK * LDS, *dT = dPD + CHUNK * LDS;
    float *gam = dT + CHUNK * LDS, *eg = gam + CHUNK, *el = eg + CHUNK, *bet = el + CHUNK;
    float *Y = QK, *dAD = dT;  // reuses, see the grid comment

    const int c = blockIdx.x;
    const int4 ch = p.ws.chunks[c];
    const int L = ch.z;
    if (L == 0) return;
    const int t0 = ch.y, h = blockIdx.y, kh = h / (p.H_v / p.H_k), Lp = round16(L), Dk = p.Dk, Dv = p.Dv;
    const int tid = threadIdx.x;
    const float scale = p.scale;

    for (int i = tid; i < 5 * CHUNK * LDS; i += blockDim.x) sm[i] = 0.0f;
    if (tid < CHUNK) {
        dgam[tid] = 0.0;
        dbet[tid] = 0.0;
        gam[tid] = tid < L ? p.ws.gamma[(size_t)(t0 + tid) * p.H_v + h] : 0.0f;
        bet[tid] = tid < L ? p.beta[(size_t)(t0 + tid) * p.H_v + h] : 0.0f;
    }
    __syncthreads();
    const float gl = gam[L - 1];
    if (tid < CHUNK) {
        eg[tid] = tid < L ? expf(gam[tid]) : 0.0f;
        el[tid] = tid < L ? expf(gl - gam[tid]) : 0.0f;
    }
    const float *tg = p.ws.tmat + ((size_t)c * p.H_v + h) * CHUNK * CHUNK;
    for (int i = tid; i < CHUNK * CHUNK; i += blockDim.x) Tm[(i / CHUNK) * LDS + i % CHUNK] = tg[i];
    __syncthreads();

    const size_t sk = (size_t)p.H_k * Dk, sv = (size_t)p.H_v * Dv, sw = (size_t)p.H_v * Dk;
    const hy_bf16 *qb = p.q + ((size_t)t0 * p.H_k + kh) * Dk, *kb = p.k + ((size_t)t0 * p.H_k + kh) * Dk;
    const hy_bf16 *vb = p.v + ((size_t)t0 * p.H_v + h) * Dv, *dob = p.d_o + ((size_t)t0 * p.H_v + h) * Dv;
    const float *ug = p.ws.u + ((size_t)t0 * p.H_v + h) * Dv, *dug = p.ws.du + ((size_t)t0 * p.H_v + h) * Dv;
    const float *S0 = p.ws.s0 + ((size_t)c * p.H_v + h) * Dk * Dv, *dSg = p.ws.ds + ((size_t)c * p.H_v + h) * Dk * Dv;
    float *dwg = p.ws.dw + ((size_t)t0 * p.H_v + h) * Dk, *dqg = p.ws.dq + ((size_t)t0 * p.H_v + h) * Dk;
    float *dkg = p.ws.dk + ((size_t)t0 * p.H_v + h) * Dk;

    auto Q = [&](int i, int a) { return i < L ? bf(qb[i * sk + a]) : 0.0f; };
    auto K = [&](int i, int a) { return i < L ? bf(kb[i * sk + a]) : 0.0f; };
    auto Kt = [&](int a, int j) { return j < L ? bf(kb[j * sk + a]) : 0.0f; };
    auto V = [&](int i, int b) { return i < L ? bf(vb[i * sv + b]) : 0.0f; };
    auto Vt = [&](int b, int j) { return j < L ? bf(vb[j * sv + b]) : 0.0f; };
    auto dO = [&](int i, int b) { return i < L ? bf(dob[i * sv + b]) : 0.0f; };
    auto Ut = [&](int b, int j) { return j < L ? ug[j * sv + b] : 0.0f; };
    auto U = [&](int j, int b) { return j < L ? ug[j * sv + b] : 0.0f; };
    auto dU = [&](int i, int b) { return i < L ? dug[i * sv + b] : 0.0f; };
    auto negdU = [&](int i, int b) { return i < L ? -dug[i * sv + b] : 0.0f; };
    auto S0t = [&](int b, int a) { return S0[(size_t)a * Dv + b]; };  // S0ᵀ, (Dv, Dk)
    auto dSt = [&](int b, int a) { return dSg[(size_t)a * Dv + b]; };
    auto dW = [&](int i, int a) { return i < L ? dwg[i * sw + a] : 0.0f; };
    auto Tt = [&](int i, int j) { return Tm[j * LDS + i]; };  // Tᵀ
    const int t4 = threadIdx.x & 3;  // lane within its quad: lane 0 of each quad adds the row sums

    // Products run in 16 × 8·NT register blocks (gdn_common.cuh); L×L outputs that are only read on
    // or below the diagonal skip the blocks that lie wholly above it (shared memory starts zeroed).
    auto above = [](int m0, int n0) { return n0 > m0 + 15; };

    // A. L×L products: KKᵀ, QKᵀ, dP = dO·Uᵀ (→ dP ⊙ D on and below the diagonal), dU·Vᵀ (→ dT).
    // Only the lower triangles are read later (dT's upper part is rewritten as zeros in C).
    with_block_width(Lp, [&](auto nt) {
        constexpr int NT = decltype(nt)::value;
        for_each_block<NT>(4 * Lp, Lp, [&](int mm, int n0) {
            const int which = mm / Lp, m0 = mm % Lp;
            if (above(m0, n0)) return;
            float acc[NT][4];
            block_zero(acc);
            if (which == 0) {
                mma_block<EXACT, EXACT, NT>(acc, K, Kt, m0, n0, Dk);
                block_each(acc, m0, n0, [&](int i, int j, float &x) { KK[i * LDS + j] = x; });
            } else if (which == 1) {
                mma_block<EXACT, EXACT, NT>(acc, Q, Kt, m0, n0, Dk);
                block_each(acc, m0, n0, [&](int i, int j, float &x) { QK[i * LDS + j] = x; });
            } else if (which == 2) {
                mma_block<EXACT, SPLIT, NT>(acc, dO, Ut, m0, n0, Dv);
                block_each(acc, m0, n0, [&](int i, int j, float &x) {
                    dPD[i * LDS + j] = (j <= i && i < L) ? x * expf(gam[i] - gam[j]) : 0.0f;
                });
            } else {
                mma_block<SPLIT, EXACT, NT>(acc, dU, Vt, m0, n0, Dv);
                block_each(acc, m0, n0, [&](int i, int j, float &x) { dT[i * LDS + j] = x; });
            }
        });
    });
    __syncthreads();

    // Intra-chunk output terms of dγ: Z_ij = dPD_ij·(q̃_i·k_j), j < i, adds to dγ_i, subtracts from dγ_j.
    if (tid < L) {
        const int i = tid;
        float s = 0.0f;
        for (int j = 0; j < i; j++) s += dPD[i * LDS + j] * QK[i * LDS + j];
        atomicAdd(&dgam[i], (double)(scale * s));
    } else if (tid >= CHUNK && tid < CHUNK + L) {
        const int j = tid - CHUNK;
        float s = 0.0f;
        for (int i = j + 1; i < L; i++) s += dPD[i * LDS + j] * QK[i * LDS + j];
        atomicAdd(&dgam[j], -(double)(scale * s));
    }

    // B. L×Dk products reducing over Dv: dO·S0ᵀ (inter-chunk output, for dq̃), U·dSᵀ (chunk-end
    // state, for dk) and dW = −dU·S0ᵀ; plus ⟨S0, dS⟩ for dγ_last.
    {
        double part = 0.0;
        for (size_t i = tid; i < (size_t)Dk * Dv; i += blockDim.x) part += (double)S0[i] * dSg[i];
        atomicAdd(&dgam[L - 1], (double)eg[L - 1] * part);
    }
    with_block_width(Dk, [&](auto nt) {
        constexpr int NT = decltype(nt)::value;
        for_each_block<NT>(3 * Lp, Dk, [&](int mm, int n0) {
            const int which = mm / Lp, m0 = mm % Lp, r = m0 + ((threadIdx.x & 31) >> 2);
            float acc[NT][4];
            block_zero(acc);
            float lo, hi;
            if (which == 0) {
                mma_block<EXACT, SPLIT, NT>(acc, dO, S0t, m0, n0, Dv);
                block_rowdot(acc, m0, n0, Q, lo, hi);  // dγ_i += exp(γ_i)·q̃_i·(S0·dO_i)
                if (t4 == 0) {
                    if (r < L) atomicAdd(&dgam[r], (double)(scale * eg[r] * lo));
                    if (r + 8 < L) atomicAdd(&dgam[r + 8], (double)(scale * eg[r + 8] * hi));
                }
                block_each(acc, m0, n0, [&](int i, int a, float &x) {
                    if (i < L) dqg[i * sw + a] = eg[i] * x;
                });
            } else if (which == 1) {
                mma_block<SPLIT, SPLIT, NT>(acc, U, dSt, m0, n0, Dv);
                // x_j = exp(γ_last − γ_j)·k_j·(dS·u_j): dγ_last += x_j, dγ_j −= x_j
                block_rowdot(acc, m0, n0, K, lo, hi);
                if (t4 == 0) {
                    if (r < L) {
                        double x = (double)el[r] * lo;
                        atomicAdd(&dgam[L - 1], x);
                        atomicAdd(&dgam[r], -x);
                    }
                    if (r + 8 < L) {
                        double x = (double)el[r + 8] * hi;
                        atomicAdd(&dgam[L - 1], x);
                        atomicAdd(&dgam[r + 8], -x);
                    }
                }
                block_each(acc, m0, n0, [&](int j, int a, float &x) {
                    if (j < L) dkg[j * sw + a] = el[j] * x;
                });
            } else {
                mma_block<SPLIT, SPLIT, NT>(acc, negdU, S0t, m0, n0, Dv);
                block_each(acc, m0, n0, [&](int i, int a, float &x) {
                    if (i < L) dwg[i * sw + a] = x;
                });
            }
        });
    });
    __syncthreads();

    // C. dT_ij = β_j·(dU_i·v_j + exp(γ_j)·dW_i·k_j), strictly below the diagonal (zeros above).
    with_block_width(Lp, [&](auto nt) {
        constexpr int NT = decltype(nt)::value;
        for_each_block<NT>(Lp, Lp, [&](int m0, int n0) {
            float acc[NT][4];
            block_zero(acc);
            if (!above(m0, n0)) mma_block<SPLIT, EXACT, NT>(acc, dW, Kt, m0, n0, Dk);
            block_each(acc, m0, n0, [&](int i, int j, float &x) {
                dT[i * LDS + j] = (j < i && i < L) ? bet[j] * (dT[i * LDS + j] + eg[j] * x) : 0.0f;
            });
        });
    });
    __syncthreads();

    // D. Y = dT·Tᵀ (into QK's place: QKᵀ was last read before B).
    auto dTm = [&](int i, int j) { return dT[i * LDS + j]; };
    with_block_width(Lp, [&](auto nt) {
        constexpr int NT = decltype(nt)::value;
        for_each_block<NT>(Lp, Lp, [&](int m0, int n0) {
            float acc[NT][4];
            block_zero(acc);
            mma_block<SPLIT, SPLIT, NT>(acc, dTm, Tt, m0, n0, Lp);
            block_each(acc, m0, n0, [&](int i, int j, float &x) { Y[i * LDS + j] = x; });
        });
    });
    __syncthreads();

    // E. dA = −Tᵀ·Y, strictly lower; kept as dA ⊙ D (into dT's place: dT was last read in D, and
    // its blocks above the diagonal are zeros already).
    auto Ym = [&](int i, int j) { return Y[i * LDS + j]; };
    with_block_width(Lp, [&](auto nt) {
        constexpr int NT = decltype(nt)::value;
        for_each_block<NT>(Lp, Lp, [&](int m0, int n0) {
            if (above(m0, n0)) return;
            float acc[NT][4];
            block_zero(acc);
            mma_block<SPLIT, SPLIT, NT>(acc, Tt, Ym, m0, n0, Lp);
            block_each(acc, m0, n0, [&](int i, int j, float &x) {
                dAD[i * LDS + j] = (j < i && i < L) ? -x * expf(gam[i] - gam[j]) : 0.0f;
            });
        });
    });
    __syncthreads();

    // A_ij = β_i·(k_i·k_j)·D_ij: dβ_i += Σ_j dAD_ij·kk_ij; with X = β_i·dAD_ij, X_ij·kk_ij adds to
    // dγ_i and subtracts from dγ_j.
    if (tid < L) {
        const int i = tid;
        float s = 0.0f;
        for (int j = 0; j < i; j++) s += dAD[i * LDS + j] * KK[i * LDS + j];
        atomicAdd(&dbet[i], (double)s);
        atomicAdd(&dgam[i], (double)(bet[i] * s));
    } else if (tid >= CHUNK && tid < CHUNK + L) {
        const int j = tid - CHUNK;
        float s = 0.0f;
        for (int i = j + 1; i < L; i++) s += bet[i] * dAD[i * LDS + j] * KK[i * LDS + j];
        atomicAdd(&dgam[j], -(double)s);
    }

    // F. dk and dq̃ (L × Dk), then dv (L × Dv).
    auto sdPDt = [&](int j, int i) { return scale * dPD[i * LDS + j]; };  // scale·(dP ⊙ D)ᵀ
    auto dPDm = [&](int i, int j) { return dPD[i * LDS + j]; };
    auto X = [&](int j, int i) { return bet[j] * dAD[j * LDS + i]; };
    auto Xt = [&](int j, int i) { return bet[i] * dAD[i * LDS + j]; };
    with_block_width(Dk, [&](auto nt) {
        constexpr int NT = decltype(nt)::value;
        for_each_block<NT>(2 * Lp, Dk, [&](int mm, int n0) {
            const int m0 = mm % Lp, r = m0 + ((threadIdx.x & 31) >> 2);
            float acc[NT][4];
            block_zero(acc);
            if (mm < Lp) {
                // dkb = Tᵀ·dW, the gradient of β_j·exp(γ_j)·k_j: kdk_j = k_j·dkb_j feeds dβ_j and dγ_j.
                mma_block<SPLIT, SPLIT, NT>(acc, Tt, dW, m0, n0, Lp);
                float lo, hi;
                block_rowdot(acc, m0, n0, K, lo, hi);
                if (t4 == 0) {
                    if (r < L) {
                        atomicAdd(&dbet[r], (double)(eg[r] * lo));
                        atomicAdd(&dgam[r], (double)(bet[r] * eg[r] * lo));
                    }
                    if (r + 8 < L) {
                        atomicAdd(&dbet[r + 8], (double)(eg[r + 8] * hi));
                        atomicAdd(&dgam[r + 8], (double)(bet[r + 8] * eg[r + 8] * hi));
                    }
                }
                block_each(acc, m0, n0,
                           [&](int j, int a, float &x) { x = j < L ? dkg[j * sw + a] + bet[j] * eg[j] * x : 0.0f; });
                mma_block<SPLIT, EXACT, NT>(acc, sdPDt, Q, m0, n0, Lp);
                mma_block<SPLIT, EXACT, NT>(acc, X, K, m0, n0, Lp);
                mma_block<SPLIT, EXACT, NT>(acc, Xt, K, m0, n0, Lp);
                block_each(acc, m0, n0, [&](int j, int a, float &x) {
                    if (j < L) dkg[j * sw + a] = x;
                });
            } else {
                block_each(acc, m0, n0, [&](int i, int a, float &x) { x = i < L ? dqg[i * sw + a] : 0.0f; });
                mma_block<SPLIT, EXACT, NT>(acc, dPDm, K, m0, n0, Lp);
                block_each(acc, m0, n0, [&](int i, int a, float &x) {
                    if (i < L) dqg[i * sw + a] = scale * x;
                });
            }
        });
    });
    with_block_width(Dv, [&](auto nt) {
        constexpr int NT = decltype(nt)::value;
        for_each_block<NT>(Lp, Dv, [&](int m0, int n0) {
            const int r = m0 + ((threadIdx.x & 31) >> 2);
            float acc[NT][4];
            block_zero(acc);
            // dvb = Tᵀ·dU, the gradient of β_j·v_j: dv_j += β_j·dvb_j, dβ_j += v_j·dvb_j.
            mma_block<SPLIT, SPLIT, NT>(acc, Tt, dU, m0, n0, Lp);
            float lo, hi;
            block_rowdot(acc, m0, n0, V, lo, hi);
            if (t4 == 0) {
                if (r < L) atomicAdd(&dbet[r], (double)lo);
                if (r + 8 < L) atomicAdd(&dbet[r + 8], (double)hi);
            }
            if (p.dv) {
                hy_bf16 *dvg = p.dv + ((size_t)t0 * p.H_v + h) * Dv;
                block_each(acc, m0, n0, [&](int j, int b, float &x) {
                    if (j < L) dvg[j * sv + b] = __float2bfloat16(bf(dvg[j * sv + b]) + bet[j] * x);
                });
            }
        });
    });
    __syncthreads();
    // dg_i = Σ_{j≥i} dγ_j (γ_j contains g_i for every j ≥ i): a suffix scan in double over the first
    // two warps, the first adding the second's total.
    __shared__ double second_half;
    double x = 0.0;
    if (tid < CHUNK) {
        x = tid < L ? dgam[tid] : 0.0;
        for (int off = 1; off < 32; off <<= 1) {
            double y = __shfl_down_sync(0xffffffffu, x, off);
            if ((tid & 31) + off < 32) x += y;
        }
        if (tid == 32) second_half = x;
    }
    __syncthreads();
    if (tid < 32) x += second_half;
    if (tid < L) {
        const size_t at = (size_t)(t0 + tid) * p.H_v + h;
        if (p.dg) p.dg[at] += (float)x;
        if (p.dbeta) p.dbeta[at] += (float)dbet[tid];
    }
}

// ---- 5. dq, dk over each key head's group ------------------------------------------------------

__global__ void qk_group_sum_kernel(params p) {
    const int group = p.H_v / p.H_k;
    const size_t n = (size_t)p.T * p.H_k * p.Dk;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < n; idx += (size_t)gridDim.x * blockDim.x) {
        const size_t t = idx / ((size_t)p.H_k * p.Dk);
        const int kh = (int)(idx / p.Dk % p.H_k), a = (int)(idx % p.Dk);
        float sq = 0.0f, sk = 0.0f;
        for (int j = 0; j < group; j++) {
            size_t at = (t * p.H_v + (size_t)kh * group + j) * p.Dk + a;
            sq += p.ws.dq[at];
            sk += p.ws.dk[at];
        }
        if (p.dq) p.dq[idx] = __float2bfloat16(bf(p.dq[idx]) + sq);
        if (p.dk) p.dk[idx] = __float2bfloat16(bf(p.dk[idx]) + sk);
    }
}

// Phases 2–5, given the forward part of the workspace (recomputed or kept from the forward).
static void backward_from_forward(params &p, cudaStream_t stream) {
    size_t smem_ll = (CHUNK * LDS + CHUNK) * sizeof(float);
    du_local_kernel<<<dim3(p.ws.max_chunks, p.H_v), THREADS, smem_ll, stream>>>(p);
    CUDA_CHECK_LAUNCH();

    launch_state_backward(p, stream);

    const size_t smem_grad = 2 * CHUNK * sizeof(double) + (5 * CHUNK * LDS + 4 * CHUNK) * sizeof(float);
    static const bool smem_grad_set = [&] {  // a constant size: raise the limit once per process
        CUDA_CHECK(cudaFuncSetAttribute((const void *)chunk_grad_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        (int)smem_grad));
        return true;
    }();
    (void)smem_grad_set;
    chunk_grad_kernel<<<dim3(p.ws.max_chunks, p.H_v), THREADS, smem_grad, stream>>>(p);
    CUDA_CHECK_LAUNCH();

    if (p.dq || p.dk) {
        size_t n = (size_t)p.T * p.H_k * p.Dk;
        int blocks = (int)((n + 255) / 256 < 4096 ? (n + 255) / 256 : 4096);
        if (blocks > 0) {
            qk_group_sum_kernel<<<blocks, 256, 0, stream>>>(p);
            CUDA_CHECK_LAUNCH();
        }
    }
}

}  // namespace gdn

extern "C" void gdn_chunked_backward_cuda(const gdn_shape *s, hy_bf16 *dq, hy_bf16 *dk, hy_bf16 *dv, float *dg,
                                          float *dbeta, float *dstate_in, const hy_bf16 *d_o, const float *dstate_out,
                                          const hy_bf16 *q, const hy_bf16 *k, const hy_bf16 *v, const float *g,
                                          const float *beta, const float *state_in, void *workspace,
                                          cudaStream_t stream) {
    using namespace gdn;
    if (s->n_docs <= 0) return;
    params p = params_make(s, workspace, (char *)workspace + gdn_chunked_saved_bytes(s));
    p.q = q, p.k = k, p.v = v, p.g = g, p.beta = beta, p.state_in = state_in;
    p.d_o = d_o, p.dstate_out = dstate_out;
    p.dq = dq, p.dk = dk, p.dv = dv, p.dg = dg, p.dbeta = dbeta, p.dstate_in = dstate_in;
    launch_chunk_table(p, stream);
    launch_prepare(p, stream);
    launch_state_forward(p, stream);  // p.state_out is NULL: chunk-start states and U only
    backward_from_forward(p, stream);
}

extern "C" void gdn_chunked_backward_saved_cuda(const gdn_shape *s, hy_bf16 *dq, hy_bf16 *dk, hy_bf16 *dv, float *dg,
                                                float *dbeta, float *dstate_in, const hy_bf16 *d_o,
                                                const float *dstate_out, const hy_bf16 *q, const hy_bf16 *k,
                                                const hy_bf16 *v, const float *g, const float *beta,
                                                const void *saved, void *workspace, cudaStream_t stream) {
    using namespace gdn;
    if (s->n_docs <= 0) return;
    params p = params_make(s, const_cast<void *>(saved), workspace);  // the forward part is only read
    p.q = q, p.k = k, p.v = v, p.g = g, p.beta = beta;
    p.d_o = d_o, p.dstate_out = dstate_out;
    p.dq = dq, p.dk = dk, p.dv = dv, p.dg = dg, p.dbeta = dbeta, p.dstate_in = dstate_in;
    backward_from_forward(p, stream);
}
