// Backward pass of the OLMo Hybrid model: the reverse of forward.c, step by step, using the
// activations it kept. Every op's backward accumulates (ops_cpu.h), so gradients flowing into one
// tensor from several consumers (xn feeds six projections) simply add up, and parameter gradients
// accumulate into the caller's buffer (same layout as the parameter arena).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hy_error.h"
#include "../kernels/ops_cpu.h"
#include "acts.h"

typedef struct {
    const hy_model *m;
    const hy_acts *a;
    hy_params g;  // gradient views
    int T;
} bwd_ctx;

static float *zeros(size_t n) { return hy_calloc(n ? n : 1, sizeof(float)); }

// MLP: out = down(silu(gate(in)) · up(in)); din += ...
static void mlp_backward(const bwd_ctx *b, const hy_layer_acts *la, const hy_layer_params *p, hy_layer_params *g,
                         const float *in, const float *dout, float *din) {
    const hy_config *c = &b->m->cfg;
    const int T = b->T, C = c->hidden_size, F = c->intermediate_size;
    float *dmh = zeros((size_t)T * F), *dmg = zeros((size_t)T * F), *dmu = zeros((size_t)T * F);
    linear_backward(dmh, g->mlp_down, dout, la->mh, p->mlp_down, T, F, C);
    swiglu_backward(dmg, dmu, dmh, la->mg, la->mu, T, F);
    linear_backward(din, g->mlp_gate, dmg, in, p->mlp_gate, T, C, F);
    linear_backward(din, g->mlp_up, dmu, in, p->mlp_up, T, C, F);
    free(dmh);
    free(dmg);
    free(dmu);
}

static void put_columns(float *dst, int stride, int col, const float *src, int T, int width) {
    for (int t = 0; t < T; t++) memcpy(dst + (size_t)t * stride + col, src + (size_t)t * width, sizeof(float) * width);
}

// dy: gradient of the layer output; dx (zeroed by the caller) receives the input gradient.
static void gdn_layer_backward(const bwd_ctx *b, int l, const float *dy, float *dx) {
    const hy_config *c = &b->m->cfg;
    const hy_layer_acts *la = &b->a->layer[l];
    const hy_layer_params *p = &b->m->p.layer[l];
    hy_layer_params *g = (hy_layer_params *)&b->g.layer[l];
    const int T = b->T, C = c->hidden_size, Hk = c->linear_num_key_heads, Hv = c->linear_num_value_heads;
    const int Dk = c->linear_key_head_dim, Dv = c->linear_value_head_dim, K = c->linear_conv_kernel_dim;
    const int kdim = Hk * Dk, vdim = Hv * Dv, conv_dim = hy_config_conv_dim(c);
    const size_t TC = (size_t)T * C;

    // y = h + MLP(RMSNorm_post(h))
    float *dh = zeros(TC), *dhn = zeros(TC);
    memcpy(dh, dy, sizeof(float) * TC);
    mlp_backward(b, la, p, g, la->hn, dy, dhn);
    rmsnorm_backward(dh, g->post_norm, dhn, la->h, p->post_norm, la->rstd_post, T, C);

    // h = x + o_proj(gated_norm(o, gate))
    for (size_t i = 0; i < TC; i++) dx[i] += dh[i];
    float *dyn = zeros((size_t)T * vdim), *dout = zeros((size_t)T * vdim), *dgate = zeros((size_t)T * vdim);
    linear_backward(dyn, g->o_proj, dh, la->y, p->o_proj, T, vdim, C);
    gated_rmsnorm_backward(dout, dgate, g->o_norm, dyn, la->o, la->gate, p->o_norm, la->rstd_o, T * Hv, Dv);
    float *dxn = zeros(TC);
    linear_backward(dxn, g->g_proj, dgate, la->xn, p->g_proj, T, C, vdim);

    // the gated delta rule and its gates
    gdn_shape s = {T, b->a->n_docs, b->a->cu_seqlens, Hk, Hv, Dk, Dv, 1.0f / sqrtf((float)Dk)};
    float *dqn = zeros((size_t)T * kdim), *dkn = zeros((size_t)T * kdim), *dv = zeros((size_t)T * vdim);
    float *dg = zeros((size_t)T * Hv), *dbeta = zeros((size_t)T * Hv);
    gdn_chunked_backward(&s, dqn, dkn, dv, dg, dbeta, NULL, dout, NULL, la->qn, la->kn, la->v, la->g, la->beta, NULL);
    float *da = zeros((size_t)T * Hv), *db = zeros((size_t)T * Hv);
    gdn_gates_backward(db, da, g->A_log, g->dt_bias, dbeta, dg, la->b, la->a, p->A_log, p->dt_bias, T, Hv,
                       c->linear_allow_neg_eigval);
    linear_backward(dxn, g->a_proj, da, la->xn, p->a_proj, T, C, Hv);
    linear_backward(dxn, g->b_proj, db, la->xn, p->b_proj, T, C, Hv);

    // q, k l2 norms, then back through the split, the conv and the fused q|k|v projection
    float *dq = zeros((size_t)T * kdim), *dk = zeros((size_t)T * kdim);
    l2norm_backward(dq, dqn, la->q, la->rq, T * Hk, Dk);
    l2norm_backward(dk, dkn, la->k, la->rk, T * Hk, Dk);
    float *dconv_out = zeros((size_t)T * conv_dim), *dmixed = zeros((size_t)T * conv_dim);
    put_columns(dconv_out, conv_dim, 0, dq, T, kdim);
    put_columns(dconv_out, conv_dim, kdim, dk, T, kdim);
    put_columns(dconv_out, conv_dim, 2 * kdim, dv, T, vdim);
    conv1d_silu_backward(dmixed, g->conv, NULL, dconv_out, la->mixed, p->conv, NULL, b->a->cu_seqlens, b->a->n_docs,
                         T, conv_dim, K);
    linear_backward(dxn, g->qkv_proj, dmixed, la->xn, p->qkv_proj, T, C, conv_dim);

    rmsnorm_backward(dx, g->in_norm, dxn, la->x, p->in_norm, la->rstd_in, T, C);

    float *bufs[] = {dh, dhn, dyn, dout, dgate, dxn, dqn, dkn, dv, dg, dbeta, da, db, dq, dk, dconv_out, dmixed};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
}

static void attn_layer_backward(const bwd_ctx *b, int l, const float *dy, float *dx) {
    const hy_config *c = &b->m->cfg;
    const hy_layer_acts *la = &b->a->layer[l];
    const hy_layer_params *p = &b->m->p.layer[l];
    hy_layer_params *g = (hy_layer_params *)&b->g.layer[l];
    const int T = b->T, C = c->hidden_size, H = c->num_attention_heads, Hkv = c->num_key_value_heads;
    const int D = c->head_dim, qdim = H * D, kvdim = Hkv * D;
    const size_t TC = (size_t)T * C;

    // y = h + RMSNorm_pf(MLP(h))
    float *dh = zeros(TC), *dmo = zeros(TC);
    memcpy(dh, dy, sizeof(float) * TC);
    rmsnorm_backward(dmo, g->post_ff_norm, dy, la->mo, p->post_ff_norm, la->rstd_pf, T, C);
    mlp_backward(b, la, p, g, la->h, dmo, dh);

    // h = x + RMSNorm_pa(o_proj(attn))
    for (size_t i = 0; i < TC; i++) dx[i] += dh[i];
    float *dap = zeros(TC), *dattn = zeros((size_t)T * qdim);
    rmsnorm_backward(dap, g->post_attn_norm, dh, la->ap, p->post_attn_norm, la->rstd_pa, T, C);
    linear_backward(dattn, g->attn_o_proj, dap, la->attn, p->attn_o_proj, T, qdim, C);

    attn_shape s = {T, b->a->n_docs, b->a->cu_seqlens, H, Hkv, D, 1.0f / sqrtf((float)D)};
    float *dqr = zeros((size_t)T * qdim), *dkr = zeros((size_t)T * kvdim), *dav = zeros((size_t)T * kvdim);
    attention_backward(&s, dqr, dkr, dav, dattn, la->qr, la->kr, la->av, la->attn, la->lse);
    if (c->rope) {
        rope_backward(dqr, b->a->pos, T, H, D, c->rope_theta);
        rope_backward(dkr, b->a->pos, T, Hkv, D, c->rope_theta);
    }
    float *daq = zeros((size_t)T * qdim), *dak = zeros((size_t)T * kvdim);
    rmsnorm_backward(daq, g->q_norm, dqr, la->aq, p->q_norm, la->rstd_q, T, qdim);
    rmsnorm_backward(dak, g->k_norm, dkr, la->ak, p->k_norm, la->rstd_k, T, kvdim);
    linear_backward(dx, g->q_proj, daq, la->x, p->q_proj, T, C, qdim);
    linear_backward(dx, g->k_proj, dak, la->x, p->k_proj, T, C, kvdim);
    linear_backward(dx, g->v_proj, dav, la->x, p->v_proj, T, C, kvdim);

    float *bufs[] = {dh, dmo, dap, dattn, dqr, dkr, dav, daq, dak};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]);
}

void hy_model_backward(const hy_model *m, hy_acts *a, const float *dlogits, float *grads) {
    const int T = a->T, C = m->cfg.hidden_size, V = m->cfg.vocab_size;
    hy_params g;
    hy_params_bind(&g, &m->table, &m->cfg, grads);
    float *dxf = zeros((size_t)T * C);
    linear_backward(dxf, g.lm_head, dlogits, a->xf, m->p.lm_head, T, C, V);
    hy_model_backward_hidden(m, a, dxf, grads);
    free(dxf);
}

void hy_model_backward_hidden(const hy_model *m, hy_acts *a, const float *dxf, float *grads) {
    const hy_config *c = &m->cfg;
    const int T = a->T, C = c->hidden_size;
    const size_t TC = (size_t)T * C;
    bwd_ctx b = {m, a, {0}, T};
    hy_params_bind(&b.g, &m->table, c, grads);

    float *dx = zeros(TC), *dnext = zeros(TC);
    rmsnorm_backward(dx, b.g.final_norm, dxf, a->x_final, m->p.final_norm, a->rstd_final, T, C);
    for (int l = c->num_hidden_layers - 1; l >= 0; l--) {
        memset(dnext, 0, sizeof(float) * TC);
        if (c->layer_types[l] == HY_LAYER_GDN)
            gdn_layer_backward(&b, l, dx, dnext);
        else
            attn_layer_backward(&b, l, dx, dnext);
        float *t = dx;
        dx = dnext;
        dnext = t;
    }
    embedding_backward(b.g.embed, a->tokens, dx, T, C, c->pad_token_id);
    free(dx);
    free(dnext);
}
