// The gated delta rule in chunked (WY / UT transform) form, forward and backward: the same function
// as gdn_recurrent.c, computed the way the training kernels compute it, so that each CUDA kernel has
// a readable CPU twin. Derivation: Yang, Kautz, Hatamizadeh, "Gated Delta Networks" (arXiv
// 2412.06464); HF's torch_chunk_gated_delta_rule is the same forward in PyTorch.
//
// Each document is cut into chunks of GDN_CHUNK = 64 tokens (the last one shorter; no padding, and
// no chunk straddles a document boundary). Inside a chunk of L tokens, per value head, with S0 the
// state at the chunk start, q̃ = scale·q and the cumulative log decay γ_i = g_0 + … + g_i:
//   D_ij = exp(γ_i − γ_j)                      decay from token j to token i (≤ 1 for j ≤ i)
//   A_ij = β_i·(k_i·k_j)·D_ij, j < i           strictly lower: how token j's write is read at i
//   T    = (I + A)⁻¹                           lower unitriangular, by forward substitution
//   W    = T·diag(β·exp(γ))·K                  (L, Dk) how each u reads the chunk-start state
//   U    = T·diag(β)·V − W·S0                  (L, Dv) the delta-rule writes u_i of the recurrence
//   O_i  = exp(γ_i)·S0ᵀq̃_i + Σ_{j≤i} D_ij·(q̃_i·k_j)·u_j
//   S'   = exp(γ_{L−1})·S0 + Σ_j D_{L−1,j}·k_j·u_jᵀ
// Unrolling the recurrence inside the chunk gives u_i + Σ_{j<i} A_ij·u_j = β_i·v_i − β_i·exp(γ_i)·S0ᵀk_i,
// i.e. (I + A)·U = diag(β)·V − diag(β·exp(γ))·K·S0, which is where T, W and U come from.
// Decays are only ever formed as exp of a non-positive difference, so nothing overflows however
// strong the decay (g down to −20 per token gives γ near −1300 inside one chunk). γ is kept in
// double: a float cumsum at |γ| ~ 1000 would put 6e-5 of absolute error into every decay.
//
// Backward: a forward sweep recomputes the chunk-start states (one Dk·Dv state per chunk), then the
// chunks are visited in reverse carrying dS, the gradient with respect to the state at the current
// chunk's end (dstate_out, or zero, for the last chunk). Within a chunk the steps are the forward's
// in reverse: output and state-passing terms give dU, dS0 and the direct q / k / γ terms; dU and
// dW = −dU·S0ᵀ go through U = T·βV, W = T·βΓK to dT and to dv, dk, dβ, dγ; dT goes through the
// inverse (dA = −Tᵀ·dT·Tᵀ, strictly lower part) to the entries of A; finally dg is the reverse
// cumulative sum of dγ. dγ is accumulated in double because its terms cancel pairwise (every decay
// D_ij adds to dγ_i and subtracts the same amount from dγ_j).
#include "../ops_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/hy_error.h"

// One chunk of one (document, value head): gathered inputs and the forward intermediates.
typedef struct {
    int L, Dk, Dv;
    float *q;       // (L, Dk) scale·q
    float *k;       // (L, Dk)
    float *v;       // (L, Dv)
    float *beta;    // (L)
    double *gamma;  // (L) cumulative log decay from the chunk start, inclusive
    float *decay0;  // (L) exp(γ_i): decay from the chunk start through token i
    float *T;       // (L, L) (I + A)⁻¹, lower unitriangular
    float *W;       // (L, Dk)
    float *U;       // (L, Dv)
    float *O;       // (L, Dv) forward output of the chunk
    float *block;   // the one allocation the float arrays above live in
} gdn_chunk;

// Backward scratch of one chunk; gradients here are chunk-local and added to the outputs at the end.
typedef struct {
    float *dq, *dk;  // (L, Dk), dq with respect to scale·q
    float *dv;       // (L, Dv)
    float *dbeta;    // (L)
    double *dgamma;  // (L)
    float *dU;       // (L, Dv)
    float *dW;       // (L, Dk)
    float *dT, *Y;   // (L, L) each
    float *dS0;      // (Dk, Dv)
    float *vec;      // (Dk)
    float *block;    // the one allocation the float arrays above live in
} gdn_chunk_grad;

static float *take(float **cursor, size_t n) {
    float *p = *cursor;
    *cursor += n;
    return p;
}

// Sized for a full chunk; shorter chunks use the leading rows.
static void gdn_chunk_init(gdn_chunk *c, int Dk, int Dv) {
    size_t Lm = GDN_CHUNK;
    c->Dk = Dk;
    c->Dv = Dv;
    c->gamma = hy_malloc(Lm * sizeof(double));
    float *f = c->block = hy_malloc((Lm * (3 * (size_t)Dk + 3 * (size_t)Dv + 2 + Lm)) * sizeof(float));
    c->q = take(&f, Lm * Dk);
    c->k = take(&f, Lm * Dk);
    c->W = take(&f, Lm * Dk);
    c->v = take(&f, Lm * Dv);
    c->U = take(&f, Lm * Dv);
    c->O = take(&f, Lm * Dv);
    c->beta = take(&f, Lm);
    c->decay0 = take(&f, Lm);
    c->T = take(&f, Lm * Lm);
}

static void gdn_chunk_free(gdn_chunk *c) {
    free(c->gamma);
    free(c->block);
}

static void gdn_chunk_grad_init(gdn_chunk_grad *gr, int Dk, int Dv) {
    size_t Lm = GDN_CHUNK;
    gr->dgamma = hy_malloc(Lm * sizeof(double));
    float *f = gr->block =
        hy_malloc((Lm * (3 * (size_t)Dk + 2 * (size_t)Dv + 1 + 2 * Lm) + (size_t)Dk * Dv + Dk) * sizeof(float));
    gr->dq = take(&f, Lm * Dk);
    gr->dk = take(&f, Lm * Dk);
    gr->dW = take(&f, Lm * Dk);
    gr->dv = take(&f, Lm * Dv);
    gr->dU = take(&f, Lm * Dv);
    gr->dbeta = take(&f, Lm);
    gr->dT = take(&f, Lm * Lm);
    gr->Y = take(&f, Lm * Lm);
    gr->dS0 = take(&f, (size_t)Dk * Dv);
    gr->vec = take(&f, Dk);
}

static void gdn_chunk_grad_free(gdn_chunk_grad *gr) {
    free(gr->dgamma);
    free(gr->block);
}

// Index helpers for the packed layouts of gdn_shape.
static size_t qk_at(const gdn_shape *s, int t, int kh) { return ((size_t)t * s->H_k + kh) * s->Dk; }
static size_t v_at(const gdn_shape *s, int t, int h) { return ((size_t)t * s->H_v + h) * s->Dv; }
static size_t state_at(const gdn_shape *s, int d, int h) { return ((size_t)d * s->H_v + h) * s->Dk * s->Dv; }

static float dotf(const float *a, const float *b, int n) {
    float acc = 0.0f;
    for (int i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
}

static float decay(const gdn_chunk *c, int i, int j) { return (float)exp(c->gamma[i] - c->gamma[j]); }
static float decay_from_start(const gdn_chunk *c, int i) { return c->decay0[i]; }

// Gathers tokens [t0, t0 + L) of value head h and forms γ.
static void gdn_chunk_load(gdn_chunk *c, const gdn_shape *s, int h, int t0, int L, const float *q, const float *k,
                           const float *v, const float *g, const float *beta) {
    int kh = h / (s->H_v / s->H_k), Dk = s->Dk, Dv = s->Dv;
    c->L = L;
    double gamma = 0.0;
    for (int i = 0; i < L; i++) {
        int t = t0 + i;
        for (int a = 0; a < Dk; a++) {
            c->q[(size_t)i * Dk + a] = s->scale * q[qk_at(s, t, kh) + a];
            c->k[(size_t)i * Dk + a] = k[qk_at(s, t, kh) + a];
        }
        memcpy(c->v + (size_t)i * Dv, v + v_at(s, t, h), (size_t)Dv * sizeof(float));
        c->beta[i] = beta[(size_t)t * s->H_v + h];
        gamma += g[(size_t)t * s->H_v + h];
        c->gamma[i] = gamma;
        c->decay0[i] = (float)exp(gamma);
    }
}

// The UT transform: T = (I + A)⁻¹ row by row (row i of T is e_i − Σ_{j<i} A_ij·T_j, and T_j is zero
// right of column j), then W = T·diag(β·exp(γ))·K and the state-free part of U, T·diag(β)·V.
static void gdn_chunk_solve(gdn_chunk *c) {
    int L = c->L, Dk = c->Dk, Dv = c->Dv;
    float *T = c->T;
    memset(T, 0, (size_t)L * L * sizeof(float));
    for (int i = 0; i < L; i++) {
        T[(size_t)i * L + i] = 1.0f;
        for (int j = 0; j < i; j++) {
            float A_ij = c->beta[i] * dotf(c->k + (size_t)i * Dk, c->k + (size_t)j * Dk, Dk) * decay(c, i, j);
            for (int m = 0; m <= j; m++) T[(size_t)i * L + m] -= A_ij * T[(size_t)j * L + m];
        }
    }
    for (int i = 0; i < L; i++) {
        float *W = c->W + (size_t)i * Dk, *U = c->U + (size_t)i * Dv;
        memset(W, 0, (size_t)Dk * sizeof(float));
        memset(U, 0, (size_t)Dv * sizeof(float));
        for (int j = 0; j <= i; j++) {
            float t_ij = T[(size_t)i * L + j];
            float kb = t_ij * c->beta[j] * decay_from_start(c, j);
            float vb = t_ij * c->beta[j];
            for (int a = 0; a < Dk; a++) W[a] += kb * c->k[(size_t)j * Dk + a];
            for (int b = 0; b < Dv; b++) U[b] += vb * c->v[(size_t)j * Dv + b];
        }
    }
}

// U −= W·S0: what the chunk-start state already predicts is not written again (the delta rule).
static void gdn_chunk_apply_state(gdn_chunk *c, const float *S0) {
    int Dk = c->Dk, Dv = c->Dv;
    for (int i = 0; i < c->L; i++)
        for (int b = 0; b < Dv; b++) {
            float acc = 0.0f;
            for (int a = 0; a < Dk; a++) acc += c->W[(size_t)i * Dk + a] * S0[(size_t)a * Dv + b];
            c->U[(size_t)i * Dv + b] -= acc;
        }
}

// O_i = exp(γ_i)·S0ᵀq̃_i + Σ_{j≤i} D_ij·(q̃_i·k_j)·u_j.
static void gdn_chunk_output(gdn_chunk *c, const float *S0) {
    int Dk = c->Dk, Dv = c->Dv;
    for (int i = 0; i < c->L; i++) {
        const float *qi = c->q + (size_t)i * Dk;
        float *Oi = c->O + (size_t)i * Dv;
        float gi = decay_from_start(c, i);
        for (int b = 0; b < Dv; b++) {
            float acc = 0.0f;
            for (int a = 0; a < Dk; a++) acc += qi[a] * S0[(size_t)a * Dv + b];
            Oi[b] = gi * acc;
        }
        for (int j = 0; j <= i; j++) {
            float p = decay(c, i, j) * dotf(qi, c->k + (size_t)j * Dk, Dk);
            for (int b = 0; b < Dv; b++) Oi[b] += p * c->U[(size_t)j * Dv + b];
        }
    }
}

// S ← exp(γ_{L−1})·S + Σ_j D_{L−1,j}·k_j·u_jᵀ, in place.
static void gdn_chunk_advance(const gdn_chunk *c, float *S) {
    int L = c->L, Dk = c->Dk, Dv = c->Dv;
    float total = decay_from_start(c, L - 1);
    for (size_t i = 0; i < (size_t)Dk * Dv; i++) S[i] *= total;
    for (int j = 0; j < L; j++) {
        float e = decay(c, L - 1, j);
        for (int a = 0; a < Dk; a++) {
            float ka = e * c->k[(size_t)j * Dk + a];
            for (int b = 0; b < Dv; b++) S[(size_t)a * Dv + b] += ka * c->U[(size_t)j * Dv + b];
        }
    }
}

static void load_state(float *S, const float *state_in, const gdn_shape *s, int d, int h) {
    if (state_in)
        memcpy(S, state_in + state_at(s, d, h), (size_t)s->Dk * s->Dv * sizeof(float));
    else
        memset(S, 0, (size_t)s->Dk * s->Dv * sizeof(float));
}

static int chunk_len(int doc_len, int c) {
    int left = doc_len - c * GDN_CHUNK;
    return left < GDN_CHUNK ? left : GDN_CHUNK;
}

void gdn_chunked_forward(const gdn_shape *s, float *o, float *state_out, const float *q, const float *k, const float *v,
                         const float *g, const float *beta, const float *state_in) {
    gdn_chunk c;
    gdn_chunk_init(&c, s->Dk, s->Dv);
    float *S = hy_malloc((size_t)s->Dk * s->Dv * sizeof(float));
    for (int d = 0; d < s->n_docs; d++)
        for (int h = 0; h < s->H_v; h++) {
            int start = s->cu_seqlens[d], len = s->cu_seqlens[d + 1] - start;
            load_state(S, state_in, s, d, h);  // before any write, so state_out may alias state_in
            for (int ci = 0; ci * GDN_CHUNK < len; ci++) {
                int t0 = start + ci * GDN_CHUNK, L = chunk_len(len, ci);
                gdn_chunk_load(&c, s, h, t0, L, q, k, v, g, beta);
                gdn_chunk_solve(&c);
                gdn_chunk_apply_state(&c, S);
                gdn_chunk_output(&c, S);
                for (int i = 0; i < L; i++)
                    memcpy(o + v_at(s, t0 + i, h), c.O + (size_t)i * s->Dv, (size_t)s->Dv * sizeof(float));
                gdn_chunk_advance(&c, S);
            }
            if (state_out) memcpy(state_out + state_at(s, d, h), S, (size_t)s->Dk * s->Dv * sizeof(float));
        }
    free(S);
    gdn_chunk_free(&c);
}

// Backward step 1, through the outputs O and the chunk-end state S' (dS, its gradient): dU, dW,
// dS0 and the direct terms of q̃, k and γ.
static void gdn_chunk_backward_outputs(const gdn_chunk *c, gdn_chunk_grad *gr, const float *S0, const float *dO,
                                       const float *dS) {
    int L = c->L, Dk = c->Dk, Dv = c->Dv, last = L - 1;
    const float *q = c->q, *k = c->k, *U = c->U, *W = c->W;
    float *dq = gr->dq, *dk = gr->dk, *dU = gr->dU, *dW = gr->dW;
    double *dgamma = gr->dgamma;

    // dU_j: from every output that read u_j (O_i, i ≥ j) and from the chunk-end state S'.
    for (int j = 0; j < L; j++) {
        float *dUj = dU + (size_t)j * Dv;
        memset(dUj, 0, (size_t)Dv * sizeof(float));
        for (int i = j; i < L; i++) {
            float p = decay(c, i, j) * dotf(q + (size_t)i * Dk, k + (size_t)j * Dk, Dk);
            for (int b = 0; b < Dv; b++) dUj[b] += p * dO[(size_t)i * Dv + b];
        }
        float e = decay(c, last, j);
        for (int a = 0; a < Dk; a++) {
            float ka = e * k[(size_t)j * Dk + a];
            for (int b = 0; b < Dv; b++) dUj[b] += ka * dS[(size_t)a * Dv + b];
        }
    }

    // Intra-chunk output O_i ∋ D_ij·(q̃_i·k_j)·u_j: dP_ij = dO_i·u_j reaches q̃_i, k_j and the decay.
    for (int i = 0; i < L; i++)
        for (int j = 0; j <= i; j++) {
            float dP = dotf(dO + (size_t)i * Dv, U + (size_t)j * Dv, Dv);
            float Dij = decay(c, i, j);
            float x = dP * Dij;
            for (int a = 0; a < Dk; a++) {
                dq[(size_t)i * Dk + a] += x * k[(size_t)j * Dk + a];
                dk[(size_t)j * Dk + a] += x * q[(size_t)i * Dk + a];
            }
            if (j < i) {
                double y = (double)x * dotf(q + (size_t)i * Dk, k + (size_t)j * Dk, Dk);
                dgamma[i] += y;
                dgamma[j] -= y;
            }
        }

    // Inter-chunk output O_i ∋ exp(γ_i)·S0ᵀq̃_i: with t = S0·dO_i, dq̃_i += exp(γ_i)·t.
    for (int i = 0; i < L; i++) {
        float gi = decay_from_start(c, i);
        for (int a = 0; a < Dk; a++) gr->vec[a] = dotf(S0 + (size_t)a * Dv, dO + (size_t)i * Dv, Dv);
        for (int a = 0; a < Dk; a++) dq[(size_t)i * Dk + a] += gi * gr->vec[a];
        dgamma[i] += (double)gi * dotf(q + (size_t)i * Dk, gr->vec, Dk);
    }

    // Chunk-end state S' ∋ exp(γ_last − γ_j)·k_j·u_jᵀ and exp(γ_last)·S0.
    for (int j = 0; j < L; j++) {
        float e = decay(c, last, j);
        for (int a = 0; a < Dk; a++) gr->vec[a] = dotf(dS + (size_t)a * Dv, U + (size_t)j * Dv, Dv);
        for (int a = 0; a < Dk; a++) dk[(size_t)j * Dk + a] += e * gr->vec[a];
        double x = (double)e * dotf(k + (size_t)j * Dk, gr->vec, Dk);
        dgamma[last] += x;
        dgamma[j] -= x;
    }
    float total = decay_from_start(c, last);
    double s0_ds = 0.0;
    for (size_t i = 0; i < (size_t)Dk * Dv; i++) s0_ds += (double)S0[i] * dS[i];
    dgamma[last] += total * s0_ds;

    // dS0 = exp(γ_last)·dS' + Σ_i exp(γ_i)·q̃_i·dO_iᵀ − Σ_i W_i·dU_iᵀ; and U = … − W·S0 gives dW_i = −S0·dU_i.
    for (int a = 0; a < Dk; a++)
        for (int b = 0; b < Dv; b++) {
            float acc = total * dS[(size_t)a * Dv + b];
            for (int i = 0; i < L; i++)
                acc += decay_from_start(c, i) * q[(size_t)i * Dk + a] * dO[(size_t)i * Dv + b] -
                       W[(size_t)i * Dk + a] * dU[(size_t)i * Dv + b];
            gr->dS0[(size_t)a * Dv + b] = acc;
        }
    for (int i = 0; i < L; i++)
        for (int a = 0; a < Dk; a++) dW[(size_t)i * Dk + a] = -dotf(S0 + (size_t)a * Dv, dU + (size_t)i * Dv, Dv);
}

// Backward step 2, through the right-hand sides of the UT transform: U = T·diag(β)·V − W·S0 and
// W = T·diag(β·exp(γ))·K give dT and the v, k, β and γ terms.
static void gdn_chunk_backward_ut(const gdn_chunk *c, gdn_chunk_grad *gr) {
    int L = c->L, Dk = c->Dk, Dv = c->Dv;
    const float *k = c->k, *v = c->v, *T = c->T, *beta = c->beta;
    float *dk = gr->dk, *dv = gr->dv, *dbeta = gr->dbeta, *dU = gr->dU, *dW = gr->dW;
    double *dgamma = gr->dgamma;
    // Through T: dT_ij = dU_i·β_j·v_j + dW_i·β_j·exp(γ_j)·k_j, needed strictly below the diagonal
    // only (the diagonal of T is the constant 1). Through the right-hand sides:
    // d(β_j·v_j) = Σ_{i≥j} T_ij·dU_i and d(β_j·exp(γ_j)·k_j) = Σ_{i≥j} T_ij·dW_i.
    float *dT = gr->dT;
    memset(dT, 0, (size_t)L * L * sizeof(float));
    for (int i = 0; i < L; i++)
        for (int j = 0; j < i; j++)
            dT[(size_t)i * L + j] =
                beta[j] * (dotf(dU + (size_t)i * Dv, v + (size_t)j * Dv, Dv) +
                           decay_from_start(c, j) * dotf(dW + (size_t)i * Dk, k + (size_t)j * Dk, Dk));
    for (int j = 0; j < L; j++) {
        float gj = decay_from_start(c, j);
        for (int b = 0; b < Dv; b++) {
            float dvb = 0.0f;  // gradient of β_j·v_j
            for (int i = j; i < L; i++) dvb += T[(size_t)i * L + j] * dU[(size_t)i * Dv + b];
            dv[(size_t)j * Dv + b] += beta[j] * dvb;
            dbeta[j] += v[(size_t)j * Dv + b] * dvb;
        }
        double kdk = 0.0;
        for (int a = 0; a < Dk; a++) {
            float dkb = 0.0f;  // gradient of β_j·exp(γ_j)·k_j
            for (int i = j; i < L; i++) dkb += T[(size_t)i * L + j] * dW[(size_t)i * Dk + a];
            dk[(size_t)j * Dk + a] += beta[j] * gj * dkb;
            kdk += (double)k[(size_t)j * Dk + a] * dkb;
        }
        dbeta[j] += (float)(gj * kdk);
        dgamma[j] += beta[j] * gj * kdk;
    }
}

// Backward step 3, through the inverse: T = (I + A)⁻¹ ⇒ dA = −Tᵀ·dT·Tᵀ, kept strictly below the
// diagonal (A has nothing else), then A_ij = β_i·(k_i·k_j)·D_ij gives the β, k and γ terms.
static void gdn_chunk_backward_inverse(const gdn_chunk *c, gdn_chunk_grad *gr) {
    int L = c->L, Dk = c->Dk;
    const float *k = c->k, *T = c->T, *beta = c->beta, *dT = gr->dT;
    float *dk = gr->dk, *dbeta = gr->dbeta;
    double *dgamma = gr->dgamma;
    // Y = dT·Tᵀ, then dA_ij = −Σ_{m≥i} T_mi·Y_mj; triangularity bounds both sums.
    float *Y = gr->Y;
    for (int m = 0; m < L; m++)
        for (int j = 0; j < L; j++) {
            float acc = 0.0f;
            int top = m - 1 < j ? m - 1 : j;
            for (int b = 0; b <= top; b++) acc += dT[(size_t)m * L + b] * T[(size_t)j * L + b];
            Y[(size_t)m * L + j] = acc;
        }
    for (int i = 1; i < L; i++)
        for (int j = 0; j < i; j++) {
            float dA = 0.0f;
            for (int m = i; m < L; m++) dA -= T[(size_t)m * L + i] * Y[(size_t)m * L + j];
            float kk = dotf(k + (size_t)i * Dk, k + (size_t)j * Dk, Dk);
            float Dij = decay(c, i, j);
            float x = dA * beta[i] * Dij;
            dbeta[i] += dA * kk * Dij;
            for (int a = 0; a < Dk; a++) {
                dk[(size_t)i * Dk + a] += x * k[(size_t)j * Dk + a];
                dk[(size_t)j * Dk + a] += x * k[(size_t)i * Dk + a];
            }
            double y = (double)x * kk;
            dgamma[i] += y;
            dgamma[j] -= y;
        }
}

// Reverse-mode through one chunk whose forward (load, solve, apply_state) has been redone with the
// chunk-start state S0. dO (L, Dv) is the output gradient; dS (Dk, Dv) enters as the gradient with
// respect to the chunk-end state S' and leaves as the gradient with respect to S0. The chunk-local
// gradients land in gr (zeroed here), dq with respect to q̃ and γ in place of g.
static void gdn_chunk_backward(const gdn_chunk *c, gdn_chunk_grad *gr, const float *S0, const float *dO, float *dS) {
    int L = c->L, Dk = c->Dk, Dv = c->Dv;
    memset(gr->dq, 0, (size_t)L * Dk * sizeof(float));
    memset(gr->dk, 0, (size_t)L * Dk * sizeof(float));
    memset(gr->dv, 0, (size_t)L * Dv * sizeof(float));
    memset(gr->dbeta, 0, (size_t)L * sizeof(float));
    for (int i = 0; i < L; i++) gr->dgamma[i] = 0.0;
    gdn_chunk_backward_outputs(c, gr, S0, dO, dS);
    gdn_chunk_backward_ut(c, gr);
    gdn_chunk_backward_inverse(c, gr);
    memcpy(dS, gr->dS0, (size_t)Dk * Dv * sizeof(float));
}

void gdn_chunked_backward(const gdn_shape *s, float *dq, float *dk, float *dv, float *dg, float *dbeta,
                          float *dstate_in, const float *d_o, const float *dstate_out, const float *q, const float *k,
                          const float *v, const float *g, const float *beta, const float *state_in) {
    int Dk = s->Dk, Dv = s->Dv;
    size_t state_n = (size_t)Dk * Dv;
    int max_chunks = 1;
    for (int d = 0; d < s->n_docs; d++) {
        int n = (s->cu_seqlens[d + 1] - s->cu_seqlens[d] + GDN_CHUNK - 1) / GDN_CHUNK;
        if (n > max_chunks) max_chunks = n;
    }
    // starts[ci]: the state at the start of chunk ci of the current (document, head)
    float *starts = hy_malloc((size_t)(max_chunks + 1) * state_n * sizeof(float));
    float *dS = hy_malloc(state_n * sizeof(float));
    float *dO = hy_malloc((size_t)GDN_CHUNK * Dv * sizeof(float));
    gdn_chunk c;
    gdn_chunk_init(&c, Dk, Dv);
    gdn_chunk_grad gr;
    gdn_chunk_grad_init(&gr, Dk, Dv);

    for (int d = 0; d < s->n_docs; d++)
        for (int h = 0; h < s->H_v; h++) {
            int kh = h / (s->H_v / s->H_k);
            int start = s->cu_seqlens[d], len = s->cu_seqlens[d + 1] - start;
            int n_chunks = (len + GDN_CHUNK - 1) / GDN_CHUNK;

            // Forward sweep: chunk-start states only.
            load_state(starts, state_in, s, d, h);
            for (int ci = 0; ci < n_chunks; ci++) {
                float *S = starts + (size_t)(ci + 1) * state_n;
                memcpy(S, starts + (size_t)ci * state_n, state_n * sizeof(float));
                gdn_chunk_load(&c, s, h, start + ci * GDN_CHUNK, chunk_len(len, ci), q, k, v, g, beta);
                gdn_chunk_solve(&c);
                gdn_chunk_apply_state(&c, S);
                gdn_chunk_advance(&c, S);
            }

            // Reverse sweep carrying dS.
            if (dstate_out)
                memcpy(dS, dstate_out + state_at(s, d, h), state_n * sizeof(float));
            else
                memset(dS, 0, state_n * sizeof(float));
            for (int ci = n_chunks - 1; ci >= 0; ci--) {
                int t0 = start + ci * GDN_CHUNK, L = chunk_len(len, ci);
                const float *S0 = starts + (size_t)ci * state_n;
                gdn_chunk_load(&c, s, h, t0, L, q, k, v, g, beta);
                gdn_chunk_solve(&c);
                gdn_chunk_apply_state(&c, S0);
                for (int i = 0; i < L; i++)
                    memcpy(dO + (size_t)i * Dv, d_o + v_at(s, t0 + i, h), (size_t)Dv * sizeof(float));
                gdn_chunk_backward(&c, &gr, S0, dO, dS);

                double dg_suffix = 0.0;  // dg_i = Σ_{j≥i} dγ_j: γ_j contains g_i for every j ≥ i
                for (int i = L - 1; i >= 0; i--) {
                    int t = t0 + i;
                    dg_suffix += gr.dgamma[i];
                    if (dg) dg[(size_t)t * s->H_v + h] += (float)dg_suffix;
                    if (dbeta) dbeta[(size_t)t * s->H_v + h] += gr.dbeta[i];
                    for (int a = 0; a < Dk; a++) {
                        if (dq) dq[qk_at(s, t, kh) + a] += s->scale * gr.dq[(size_t)i * Dk + a];
                        if (dk) dk[qk_at(s, t, kh) + a] += gr.dk[(size_t)i * Dk + a];
                    }
                    if (dv)
                        for (int b = 0; b < Dv; b++) dv[v_at(s, t, h) + b] += gr.dv[(size_t)i * Dv + b];
                }
            }
            if (dstate_in) {
                float *dst = dstate_in + state_at(s, d, h);
                for (size_t i = 0; i < state_n; i++) dst[i] += dS[i];
            }
        }
    free(starts);
    free(dS);
    free(dO);
    gdn_chunk_free(&c);
    gdn_chunk_grad_free(&gr);
}
