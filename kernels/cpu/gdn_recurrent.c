// The gated delta rule, token by token: the reference definition of the GDN mixer and the decode
// path. Per document d, value head h (key head h / (H_v / H_k)) and token t, with S (Dk, Dv):
//   S ← exp(g_t)·S;  u = β_t·(v_t − Sᵀk_t);  S ← S + k_t·uᵀ;  o_t = Sᵀ(scale·q_t)
//
// Backward is plain reverse-mode through that loop. It needs the state before every token; keeping
// all of them would cost T·Dk·Dv floats per head (hundreds of MB at 7B shapes), so the forward
// sweep keeps a checkpoint every GDN_CHUNK tokens and each segment's states are recomputed from
// its checkpoint just before the reverse sweep walks through it: (T/64 + 65)·Dk·Dv floats per head.
// Dot products over Dk or Dv are accumulated in fp32, as the kernels do; the Dk·Dv-long reduction
// that gives dg is accumulated in double.
#include "../ops_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/hy_error.h"

// Strided views of one (value head, token) of the packed inputs.
typedef struct {
    const gdn_shape *s;
    int h, kh;  // value head and the key head it reads
} head_view;

static head_view head_view_make(const gdn_shape *s, int h) {
    head_view hv = {s, h, h / (s->H_v / s->H_k)};
    return hv;
}
static size_t qk_at(const head_view *hv, int t) { return ((size_t)t * hv->s->H_k + hv->kh) * hv->s->Dk; }
static size_t v_at(const head_view *hv, int t) { return ((size_t)t * hv->s->H_v + hv->h) * hv->s->Dv; }
static size_t gate_at(const head_view *hv, int t) { return (size_t)t * hv->s->H_v + hv->h; }
static size_t state_at(const gdn_shape *s, int d, int h) { return ((size_t)d * s->H_v + h) * s->Dk * s->Dv; }

// One step of the recurrence on S in place; u (Dv) receives β·(v − Sᵀk) (with S already decayed).
static void delta_step(float *S, float *u, const float *k, const float *v, float g, float beta, int Dk, int Dv) {
    float decay = expf(g);
    for (size_t i = 0; i < (size_t)Dk * Dv; i++) S[i] *= decay;
    for (int j = 0; j < Dv; j++) {
        float r = 0.0f;
        for (int i = 0; i < Dk; i++) r += S[(size_t)i * Dv + j] * k[i];
        u[j] = beta * (v[j] - r);
    }
    for (int i = 0; i < Dk; i++)
        for (int j = 0; j < Dv; j++) S[(size_t)i * Dv + j] += k[i] * u[j];
}

// o (Dv) = Sᵀ·(scale·q).
static void read_out(float *o, const float *S, const float *q, float scale, int Dk, int Dv) {
    for (int j = 0; j < Dv; j++) {
        float acc = 0.0f;
        for (int i = 0; i < Dk; i++) acc += S[(size_t)i * Dv + j] * (scale * q[i]);
        o[j] = acc;
    }
}

static void load_state(float *S, const float *state_in, const gdn_shape *s, int d, int h) {
    size_t n = (size_t)s->Dk * s->Dv;
    if (state_in)
        memcpy(S, state_in + state_at(s, d, h), n * sizeof(float));
    else
        memset(S, 0, n * sizeof(float));
}

void gdn_recurrent_forward(const gdn_shape *s, float *o, float *state_out, const float *q, const float *k,
                           const float *v, const float *g, const float *beta, const float *state_in) {
    int Dk = s->Dk, Dv = s->Dv;
    float *S = hy_malloc((size_t)Dk * Dv * sizeof(float));
    float *u = hy_malloc((size_t)Dv * sizeof(float));
    for (int d = 0; d < s->n_docs; d++)
        for (int h = 0; h < s->H_v; h++) {
            head_view hv = head_view_make(s, h);
            load_state(S, state_in, s, d, h);  // before any write, so state_out may alias state_in
            for (int t = s->cu_seqlens[d]; t < s->cu_seqlens[d + 1]; t++) {
                delta_step(S, u, k + qk_at(&hv, t), v + v_at(&hv, t), g[gate_at(&hv, t)], beta[gate_at(&hv, t)], Dk,
                           Dv);
                read_out(o + v_at(&hv, t), S, q + qk_at(&hv, t), s->scale, Dk, Dv);
            }
            if (state_out) memcpy(state_out + state_at(s, d, h), S, (size_t)Dk * Dv * sizeof(float));
        }
    free(S);
    free(u);
}

// Reverse-mode through one token. On entry dS is the gradient of the loss with respect to the state
// after token t (S_t); on exit it is the gradient with respect to the state before it (S_{t−1}).
// S_prev is S_{t−1}, S_cur is S_t. With S_a = exp(g)·S_prev, r = S_aᵀk, u = β(v − r), S_t = S_a + k·uᵀ,
// o = S_tᵀ(scale·q):
//   dS += scale·q·doᵀ;  dq += scale·S_t·do;  du = dSᵀk;  dk += dS·u;
//   dβ += du·(v − r);  dv += β·du;  dr = −β·du;  dS_a = dS + k·drᵀ;  dk += S_a·dr;
//   dg += ⟨S_a, dS_a⟩;  dS_{t−1} = exp(g)·dS_a.
typedef struct {
    float *du, *dr, *u, *r, *S_a;  // scratch: Dv, Dv, Dv, Dv, Dk·Dv
} step_scratch;

static void delta_step_backward(float *dS, float *dq, float *dk, float *dv, float *dg, float *dbeta, const float *d_o,
                                const float *S_prev, const float *S_cur, const float *q, const float *k, const float *v,
                                float g, float beta, float scale, int Dk, int Dv, step_scratch *w) {
    float decay = expf(g);
    for (size_t i = 0; i < (size_t)Dk * Dv; i++) w->S_a[i] = decay * S_prev[i];
    for (int j = 0; j < Dv; j++) {
        float r = 0.0f;
        for (int i = 0; i < Dk; i++) r += w->S_a[(size_t)i * Dv + j] * k[i];
        w->r[j] = r;
        w->u[j] = beta * (v[j] - r);
    }
    for (int i = 0; i < Dk; i++) {
        float dq_i = 0.0f;
        for (int j = 0; j < Dv; j++) {
            dS[(size_t)i * Dv + j] += scale * q[i] * d_o[j];
            dq_i += S_cur[(size_t)i * Dv + j] * d_o[j];
        }
        if (dq) dq[i] += scale * dq_i;
    }
    for (int j = 0; j < Dv; j++) {
        float du = 0.0f;
        for (int i = 0; i < Dk; i++) du += dS[(size_t)i * Dv + j] * k[i];
        w->du[j] = du;
        w->dr[j] = -beta * du;
    }
    float dbeta_acc = 0.0f;
    for (int j = 0; j < Dv; j++) {
        dbeta_acc += w->du[j] * (v[j] - w->r[j]);
        if (dv) dv[j] += beta * w->du[j];
    }
    if (dbeta) *dbeta += dbeta_acc;
    for (int i = 0; i < Dk; i++) {
        float dk_i = 0.0f;
        for (int j = 0; j < Dv; j++) dk_i += dS[(size_t)i * Dv + j] * w->u[j] + w->S_a[(size_t)i * Dv + j] * w->dr[j];
        if (dk) dk[i] += dk_i;
    }
    double dg_acc = 0.0;
    for (int i = 0; i < Dk; i++)
        for (int j = 0; j < Dv; j++) {
            size_t ij = (size_t)i * Dv + j;
            float dSa = dS[ij] + k[i] * w->dr[j];
            dg_acc += (double)w->S_a[ij] * dSa;
            dS[ij] = decay * dSa;
        }
    if (dg) *dg += (float)dg_acc;
}

void gdn_recurrent_backward(const gdn_shape *s, float *dq, float *dk, float *dv, float *dg, float *dbeta,
                            float *dstate_in, const float *d_o, const float *dstate_out, const float *q, const float *k,
                            const float *v, const float *g, const float *beta, const float *state_in) {
    int Dk = s->Dk, Dv = s->Dv;
    size_t state_n = (size_t)Dk * Dv;
    int max_len = 0;
    for (int d = 0; d < s->n_docs; d++)
        if (s->cu_seqlens[d + 1] - s->cu_seqlens[d] > max_len) max_len = s->cu_seqlens[d + 1] - s->cu_seqlens[d];
    int max_segments = (max_len + GDN_CHUNK - 1) / GDN_CHUNK;
    // checkpoint c: the state before token c·GDN_CHUNK of the document
    float *checkpoints = hy_malloc((size_t)(max_segments > 0 ? max_segments : 1) * state_n * sizeof(float));
    // states[i]: the state before token i of the segment; states[L]: after its last token
    float *states = hy_malloc((size_t)(GDN_CHUNK + 1) * state_n * sizeof(float));
    float *dS = hy_malloc(state_n * sizeof(float));
    float *u = hy_malloc((size_t)Dv * sizeof(float));
    float *scratch = hy_malloc((4 * (size_t)Dv + state_n) * sizeof(float));
    step_scratch w = {scratch, scratch + Dv, scratch + 2 * Dv, scratch + 3 * Dv, scratch + 4 * Dv};

    for (int d = 0; d < s->n_docs; d++)
        for (int h = 0; h < s->H_v; h++) {
            head_view hv = head_view_make(s, h);
            int start = s->cu_seqlens[d], len = s->cu_seqlens[d + 1] - start;
            int n_seg = (len + GDN_CHUNK - 1) / GDN_CHUNK;

            load_state(states, state_in, s, d, h);
            for (int c = 0; c < n_seg; c++) {
                memcpy(checkpoints + c * state_n, states, state_n * sizeof(float));
                int t_end = start + (c + 1) * GDN_CHUNK < start + len ? start + (c + 1) * GDN_CHUNK : start + len;
                for (int t = start + c * GDN_CHUNK; t < t_end; t++)
                    delta_step(states, u, k + qk_at(&hv, t), v + v_at(&hv, t), g[gate_at(&hv, t)],
                               beta[gate_at(&hv, t)], Dk, Dv);
            }

            if (dstate_out)
                memcpy(dS, dstate_out + state_at(s, d, h), state_n * sizeof(float));
            else
                memset(dS, 0, state_n * sizeof(float));
            for (int c = n_seg - 1; c >= 0; c--) {
                int t0 = start + c * GDN_CHUNK;
                int L = len - c * GDN_CHUNK < GDN_CHUNK ? len - c * GDN_CHUNK : GDN_CHUNK;
                memcpy(states, checkpoints + c * state_n, state_n * sizeof(float));
                for (int i = 0; i < L; i++) {
                    memcpy(states + (i + 1) * state_n, states + i * state_n, state_n * sizeof(float));
                    delta_step(states + (i + 1) * state_n, u, k + qk_at(&hv, t0 + i), v + v_at(&hv, t0 + i),
                               g[gate_at(&hv, t0 + i)], beta[gate_at(&hv, t0 + i)], Dk, Dv);
                }
                for (int i = L - 1; i >= 0; i--) {
                    int t = t0 + i;
                    delta_step_backward(dS, dq ? dq + qk_at(&hv, t) : NULL, dk ? dk + qk_at(&hv, t) : NULL,
                                        dv ? dv + v_at(&hv, t) : NULL, dg ? dg + gate_at(&hv, t) : NULL,
                                        dbeta ? dbeta + gate_at(&hv, t) : NULL, d_o + v_at(&hv, t),
                                        states + i * state_n, states + (i + 1) * state_n, q + qk_at(&hv, t),
                                        k + qk_at(&hv, t), v + v_at(&hv, t), g[gate_at(&hv, t)], beta[gate_at(&hv, t)],
                                        s->scale, Dk, Dv, &w);
                }
            }
            if (dstate_in) {
                float *dst = dstate_in + state_at(s, d, h);
                for (size_t i = 0; i < state_n; i++) dst[i] += dS[i];
            }
        }
    free(checkpoints);
    free(states);
    free(dS);
    free(u);
    free(scratch);
}
